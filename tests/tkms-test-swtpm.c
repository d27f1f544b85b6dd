/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-swtpm"

#include "tkms-test-swtpm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tkms-test-process.h"
#include "tkms-test-util.h"

/* swtpm control channel command (swtpm's tpm_ioctl.h) */
#define SWTPM_CMD_INIT 0x02

#define TPM_TIMEOUT_MS	10000
#define STOP_TIMEOUT_MS 10000

struct _TkmsTestSwtpm {
	TkmsTestProc proc;
	gchar *state_dir;
	gchar *tcti;
	guint16 port;
};

gboolean
tkms_test_port_is_free(guint16 port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	gboolean ok;

	if (fd < 0)
		return FALSE;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

gboolean
tkms_test_port_accepts(guint16 port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	gboolean ok;

	if (fd < 0)
		return FALSE;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Sends cmd to 127.0.0.1:port and reads the answer's first resp_len bytes. */
static gboolean
exchange(guint16 port, const guint8 *cmd, gsize cmd_len, guint8 *resp, gsize resp_len,
	 GError **error)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	const gchar *why = NULL;
	gsize got = 0;

	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    write(fd, cmd, cmd_len) != (gssize)cmd_len)
		why = g_strerror(errno);
	while (why == NULL && got < resp_len) {
		gssize n = read(fd, resp + got, resp_len - got);
		if (n <= 0)
			why = n == 0 ? "the answer ended early" : g_strerror(errno);
		else
			got += (gsize)n;
	}
	if (fd >= 0)
		close(fd);
	if (why != NULL)
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "swtpm on port %u: %s", port,
			    why);
	return why == NULL;
}

gboolean
tkms_test_swtpm_reset(TkmsTestSwtpm *tpm, GError **error)
{
	static const guint8 init[8] = {0, 0, 0, SWTPM_CMD_INIT, 0, 0, 0, 0};
	static const guint8 startup[12] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0};
	guint8 resp[10];

	if (!exchange(tpm->port + 1, init, sizeof(init), resp, 4, error))
		return FALSE;
	if (tkms_test_be32(resp) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "swtpm's CMD_INIT answered %u",
			    tkms_test_be32(resp));
		return FALSE;
	}
	if (!exchange(tpm->port, startup, sizeof(startup), resp, 10, error))
		return FALSE;
	if (tkms_test_be32(resp + 6) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "TPM2_Startup answered 0x%x",
			    tkms_test_be32(resp + 6));
		return FALSE;
	}
	return TRUE;
}

/* Starts swtpm on tpm->port and waits until its control port accepts connections. */
static gboolean
start_on_port(TkmsTestSwtpm *tpm, GError **error)
{
	g_autofree gchar *server =
		g_strdup_printf("type=tcp,port=%u,bindaddr=127.0.0.1", tpm->port);
	g_autofree gchar *ctrl =
		g_strdup_printf("type=tcp,port=%u,bindaddr=127.0.0.1", tpm->port + 1);
	g_autofree gchar *state = g_strdup_printf("dir=%s", tpm->state_dir);
	const gchar *argv[] = {
		"swtpm",    "socket", "--tpm2", "--flags", "not-need-init,startup-clear",
		"--server", server,   "--ctrl", ctrl,	   "--tpmstate",
		state,	    NULL};
	gint64 deadline = g_get_monotonic_time() + (gint64)TPM_TIMEOUT_MS * 1000;

	if (!tkms_test_proc_start(&tpm->proc, argv, tpm->state_dir, NULL, error))
		return FALSE;
	for (;;) {
		if (!tkms_test_proc_is_running(&tpm->proc)) {
			tkms_test_proc_set_error(&tpm->proc, "exited during start-up", error);
			return FALSE;
		}
		if (tkms_test_port_accepts(tpm->port + 1)) {
			/* Make sure it is our swtpm that answered, not one of a parallel test. */
			g_usleep(50000);
			if (tkms_test_proc_is_running(&tpm->proc))
				return TRUE;
			continue;
		}
		if (g_get_monotonic_time() > deadline) {
			tkms_test_proc_set_error(&tpm->proc, "control port never accepted", error);
			tkms_test_proc_stop(&tpm->proc, SIGKILL, 1000, NULL);
			return FALSE;
		}
		g_usleep(10000);
	}
}

TkmsTestSwtpm *
tkms_test_swtpm_new(const gchar *state_dir, const gchar *log_path, GError **error)
{
	g_autoptr(TkmsTestSwtpm) tpm = NULL;
	g_autoptr(GError) last = NULL;

	if (!tkms_test_require_program("swtpm", "swtpm", error))
		return NULL;
	if (g_mkdir_with_parents(state_dir, 0700) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "mkdir %s: %s",
			    state_dir, g_strerror(errno));
		return NULL;
	}
	tpm = g_new0(TkmsTestSwtpm, 1);
	tkms_test_proc_init(&tpm->proc, "swtpm", g_strdup(log_path));
	tpm->state_dir = g_strdup(state_dir);
	for (guint attempt = 0; attempt < 20; attempt++) {
		guint16 port = tkms_test_random_server_port();
		if (!tkms_test_port_is_free(port) || !tkms_test_port_is_free(port + 1))
			continue;
		tpm->port = port;
		g_clear_error(&last);
		if (start_on_port(tpm, &last))
			break;
	}
	if (last != NULL || tpm->port == 0) {
		if (last != NULL)
			g_propagate_error(error, g_steal_pointer(&last));
		else
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "no free pair of TCP ports found for swtpm");
		return NULL;
	}
	tpm->tcti = g_strdup_printf("swtpm:host=127.0.0.1,port=%u", tpm->port);
	return g_steal_pointer(&tpm);
}

void
tkms_test_swtpm_free(TkmsTestSwtpm *tpm)
{
	if (tpm == NULL)
		return;
	tkms_test_proc_clear(&tpm->proc);
	g_free(tpm->state_dir);
	g_free(tpm->tcti);
	g_free(tpm);
}

gboolean
tkms_test_swtpm_start(TkmsTestSwtpm *tpm, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)TPM_TIMEOUT_MS * 1000;

	g_return_val_if_fail(!tkms_test_proc_is_running(&tpm->proc), FALSE);
	/* Same port as before: the daemon was started with that TCTI. Retry while the old
	 * socket lingers. */
	for (;;) {
		g_autoptr(GError) local = NULL;
		if (start_on_port(tpm, &local))
			return TRUE;
		if (g_get_monotonic_time() > deadline) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		g_usleep(200000);
	}
}

gboolean
tkms_test_swtpm_stop(TkmsTestSwtpm *tpm, GError **error)
{
	if (!tkms_test_proc_stop(&tpm->proc, SIGTERM, STOP_TIMEOUT_MS, NULL)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "swtpm did not exit on SIGTERM within %d s", STOP_TIMEOUT_MS / 1000);
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_swtpm_is_running(TkmsTestSwtpm *tpm)
{
	return tkms_test_proc_is_running(&tpm->proc);
}

gboolean
tkms_test_swtpm_signal(TkmsTestSwtpm *tpm, gint sig)
{
	return tkms_test_proc_signal(&tpm->proc, sig);
}

guint16
tkms_test_swtpm_get_port(TkmsTestSwtpm *tpm)
{
	return tpm->port;
}

const gchar *
tkms_test_swtpm_get_tcti(TkmsTestSwtpm *tpm)
{
	return tpm->tcti;
}

void
tkms_test_swtpm_dump_log(TkmsTestSwtpm *tpm)
{
	tkms_test_proc_dump_log(&tpm->proc);
}

gboolean
tkms_test_swtpm_extend_pcr(TkmsTestSwtpm *tpm, guint pcr, GError **error)
{
	g_autofree gchar *spec = g_strdup_printf(
		"%u:sha256=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", pcr);
	const gchar *argv[] = {"tpm2_pcrextend", "-T", tpm->tcti, spec, NULL};
	TkmsTestRunSpec run = {.cwd = tpm->state_dir};
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	if (!tkms_test_require_program("tpm2_pcrextend", "tpm2-tools", error) ||
	    !tkms_test_run_command(&run, argv, &out, &err, &status, error))
		return FALSE;
	if (status != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "tpm2_pcrextend %s failed (%d): %s", spec, status, err);
		return FALSE;
	}
	return TRUE;
}
