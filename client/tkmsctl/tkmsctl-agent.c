/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <glib-unix.h>

#include "tkmsctl.h"

/* The text authentication agent: pkttyagent from polkit, started for this process only. */

#define PKTTYAGENT "/usr/bin/pkttyagent"
/* the fd number the agent gets for --notify-fd */
#define NOTIFY_FD 3
/* registering takes a bus round trip or two; past this we go on without waiting */
#define READY_TIMEOUT_MS 10000

static GSubprocess *agent;

/* In the agent, before exec: it must not outlive tkmsctl, which stops it on a normal exit
 * but cannot when it is killed (kill -9, a lost terminal); an agent left behind would keep
 * answering polkit for a process that is gone and hold the terminal. */
static void
die_with_parent(gpointer user_data)
{
	pid_t parent = GPOINTER_TO_INT(user_data);

	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
		_exit(1);
}

/* The agent closes its end of the pipe once it is registered (or exits if it cannot). */
static void
wait_ready(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	gint64 deadline = g_get_monotonic_time() + READY_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;

	for (;;) {
		gint64 left = (deadline - g_get_monotonic_time()) / G_TIME_SPAN_MILLISECOND;
		char buf[64];
		int n;

		if (left <= 0) {
			g_debug("pkttyagent did not report ready in time");
			return;
		}
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		/* EOF: closed by the agent; data is not part of the protocol, drain it */
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return;
	}
}

void
tkmsctl_agent_start(const gchar *bus_address)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *pid = g_strdup_printf("%d", (int)getpid());
	g_autofree gchar *fd_arg = g_strdup_printf("%d", NOTIFY_FD);
	const gchar *path = g_getenv("TKMS_PKTTYAGENT");
	const gchar *argv[] = {NULL, "--process", pid, "--notify-fd", fd_arg, "--fallback", NULL};
	int fds[2];

	if (agent != NULL)
		return;
	/* TKMS_PKTTYAGENT: another agent program with pkttyagent's options (tests) */
	argv[0] = path != NULL && *path != '\0' ? path : PKTTYAGENT;
	if (!g_file_test(argv[0], G_FILE_TEST_IS_EXECUTABLE)) {
		g_debug("no %s: no authentication agent", argv[0]);
		return;
	}
	if (!g_unix_open_pipe(fds, FD_CLOEXEC, &error)) {
		g_debug("no authentication agent: %s", error->message);
		return;
	}
	/* the agent reads the password from the terminal: it shares our stdin */
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_INHERIT);
	/* it must register with the polkit authority that tkmsd asks: the one on tkmsd's bus */
	if (bus_address != NULL)
		g_subprocess_launcher_setenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS", bus_address, TRUE);
	g_subprocess_launcher_take_fd(launcher, fds[1], NOTIFY_FD);
	g_subprocess_launcher_set_child_setup(launcher, die_with_parent,
					      GINT_TO_POINTER((int)getpid()), NULL);
	agent = g_subprocess_launcher_spawnv(launcher, argv, &error);
	/* the launcher holds the write end until it is freed: drop it before waiting for EOF */
	g_clear_object(&launcher);
	if (agent == NULL) {
		g_debug("cannot start %s: %s", argv[0], error->message);
		close(fds[0]);
		return;
	}
	wait_ready(fds[0]);
	close(fds[0]);
}

void
tkmsctl_agent_stop(void)
{
	if (agent == NULL)
		return;
	g_subprocess_send_signal(agent, SIGTERM);
	g_subprocess_wait(agent, NULL, NULL);
	g_clear_object(&agent);
}
