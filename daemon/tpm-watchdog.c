/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

#include "tpm-watchdog.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

struct _TkmsTpmWatchdog {
	guint timeout_ms;
	guint16 port; /* the TPM's TCP port (swtpm/mssim), 0: not a socket TCTI */
	GThread *thread;
	GMutex lock;
	GCond cond;
	gboolean stopping;
	gint64 deadline; /* monotonic µs; 0: not armed */
	/* what the thread sleeps until (0: until signalled): a later deadline needs no wake-up,
	 * since the thread looks again when it wakes; so a request costs it none while requests
	 * follow each other, only the first after an idle spell */
	gint64 sleeping_until;
	gboolean fired;
};

/* "swtpm:host=H,port=N" or "mssim:...": the socket TCTIs. Their default port is 2321. */
static guint16
tcti_port(const gchar *conf)
{
	const gchar *p;
	if (!g_str_has_prefix(conf, "swtpm") && !g_str_has_prefix(conf, "mssim"))
		return 0;
	p = strstr(conf, "port=");
	return p ? (guint16)atoi(p + 5) : 2321;
}

/* The swtpm TCTI opens a new connection per command, so the socket is found when needed: any
 * TCP socket of ours whose peer is the TPM's port on a loopback or other address. */
static void
shutdown_tpm_sockets(TkmsTpmWatchdog *wd)
{
	g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
	const gchar *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		int fd = atoi(name);
		struct stat st;
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		guint16 port = 0;

		if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
		    getpeername(fd, (struct sockaddr *)&peer, &len) != 0)
			continue;
		if (peer.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&peer)->sin_port);
		else if (peer.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
		/* the swtpm TCTI also talks to the control channel, one port up */
		if (port == wd->port || port == wd->port + 1)
			shutdown(fd, SHUT_RDWR);
	}
}

static gpointer
watchdog_thread(gpointer data)
{
	TkmsTpmWatchdog *wd = data;

	g_mutex_lock(&wd->lock);
	while (!wd->stopping) {
		if (wd->deadline == 0) {
			wd->sleeping_until = 0;
			g_cond_wait(&wd->cond, &wd->lock);
			continue;
		}
		if (g_get_monotonic_time() < wd->deadline) {
			/* woken early, or at a deadline since moved on: look again */
			wd->sleeping_until = wd->deadline;
			g_cond_wait_until(&wd->cond, &wd->lock, wd->deadline);
			continue;
		}
		g_warning("the TPM did not answer within %u s; dropping the connection",
			  wd->timeout_ms / 1000);
		if (wd->port != 0)
			shutdown_tpm_sockets(wd);
		wd->fired = TRUE;
		wd->deadline = 0;
	}
	g_mutex_unlock(&wd->lock);
	return NULL;
}

TkmsTpmWatchdog *
tkms_tpm_watchdog_new(guint timeout_ms, const gchar *tcti_conf)
{
	TkmsTpmWatchdog *wd = g_new0(TkmsTpmWatchdog, 1);
	wd->timeout_ms = timeout_ms;
	wd->port = tcti_port(tcti_conf);
	g_mutex_init(&wd->lock);
	g_cond_init(&wd->cond);
	wd->thread = g_thread_new("tkms-tpm-watchdog", watchdog_thread, wd);
	return wd;
}

void
tkms_tpm_watchdog_free(TkmsTpmWatchdog *wd)
{
	if (wd == NULL)
		return;
	g_mutex_lock(&wd->lock);
	wd->stopping = TRUE;
	g_cond_signal(&wd->cond);
	g_mutex_unlock(&wd->lock);
	g_thread_join(wd->thread);
	g_mutex_clear(&wd->lock);
	g_cond_clear(&wd->cond);
	g_free(wd);
}

void
tkms_tpm_watchdog_arm(TkmsTpmWatchdog *wd)
{
	g_mutex_lock(&wd->lock);
	wd->fired = FALSE;
	wd->deadline = g_get_monotonic_time() + (gint64)wd->timeout_ms * 1000;
	if (wd->sleeping_until == 0 || wd->sleeping_until > wd->deadline)
		g_cond_signal(&wd->cond);
	g_mutex_unlock(&wd->lock);
}

gboolean
tkms_tpm_watchdog_disarm(TkmsTpmWatchdog *wd)
{
	gboolean fired;
	g_mutex_lock(&wd->lock);
	/* the thread finds it disarmed when it wakes */
	wd->deadline = 0;
	fired = wd->fired;
	wd->fired = FALSE;
	g_mutex_unlock(&wd->lock);
	return fired;
}

guint
tkms_tpm_watchdog_get_timeout_ms(TkmsTpmWatchdog *wd)
{
	return wd->timeout_ms;
}
