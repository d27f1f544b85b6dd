/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-hook-launcher"

/* The hook launcher process (hook-launcher.h): the only part of tkmsd that may switch users.
 * It was forked before tkmsd made any thread and keeps the privileges the main process drops;
 * it never opens the state directory or the TPM. For each RUN it checks the hook again with
 * its own configuration (the directory and user it was started with, never ones from the
 * request), starts it by fork and exec (GLib's spawn with a child setup function) as the hook
 * user, in a session of its own, feeds it the JSON on a pipe from a buffer that is wiped, sends
 * its standard output to /dev/null, keeps the first 4 KiB of its standard error, and answers
 * DONE with how it ended. */

#include "hook-launcher-process.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <openssl/crypto.h>

#include "hook-launcher-wire.h"
#include "privileges.h"
#include "tkms-error.h"

/* a hook's user's supplementary groups, at most */
#define MAX_GROUPS 256
/* hooks running at once, at most: more are refused (a runaway tkmsd cannot fork-bomb) */
#define MAX_RUNS 256

typedef struct {
	gint fd;
	const TkmsHookConfig *config;
	GMainLoop *loop;
	GHashTable *runs; /* id -> Run */
	guint8 *buf;	  /* one received message, wiped after use */
} Launcher;

/* What the child needs after fork: resolved before, since a forked child of a threaded
 * process (GLib's worker thread runs here) may only make async-signal-safe calls (no NSS
 * lookups, no malloc). */
typedef struct {
	gboolean switch_user;
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	gint n_groups;
	pid_t parent;
} ChildSetup;

typedef struct {
	Launcher *launcher;
	guint32 id;
	gchar *name;
	const gchar *step;
	guint timeout;
	ChildSetup setup;
	GPid pid; /* also its process group and session */
	gboolean running;
	gint status;
	gboolean timed_out;
	gboolean cancelled;
	guint8 *input; /* the JSON, wiped once written or given up on */
	gsize input_len;
	gsize written;
	gint stdin_fd;
	gint stderr_fd;
	GSource *stdin_source;
	GSource *stderr_source;
	GSource *child_source;
	GSource *timeout_source;
	guint8 err[TKMS_HOOK_WIRE_STDERR_MAX];
	gsize err_len;
	gboolean err_cut; /* more came than is kept */
} Run;

static void
drop_source(GSource **source)
{
	if (*source == NULL)
		return;
	g_source_destroy(*source);
	g_clear_pointer(source, g_source_unref);
}

static void
close_fd(gint *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
wipe_input(Run *run)
{
	if (run->input != NULL)
		OPENSSL_cleanse(run->input, run->input_len);
	g_clear_pointer(&run->input, g_free);
	run->input_len = 0;
}

static void
kill_group(Run *run)
{
	/* the session leader's pid is the group's id until the last member is gone, so this
	 * cannot hit anybody else while the leader is not reaped, and (pid numbers cycle
	 * through pid_max before reuse) not in practice just after */
	if (run->pid > 0)
		kill(-run->pid, SIGKILL);
}

static void
run_free(gpointer data)
{
	Run *run = data;

	drop_source(&run->stdin_source);
	drop_source(&run->stderr_source);
	drop_source(&run->child_source);
	drop_source(&run->timeout_source);
	close_fd(&run->stdin_fd);
	close_fd(&run->stderr_fd);
	if (run->running)
		kill_group(run);
	wipe_input(run);
	OPENSSL_cleanse(run->err, sizeof(run->err));
	g_free(run->name);
	g_free(run);
}

/* ---- answers ---- */

/* A failed send means tkmsd is gone (or broke the protocol): stop. */
static void
send_done(Launcher *l, guint32 id, TkmsHookWireOutcome outcome, gint status, gboolean cut,
	  const guint8 *data, gsize len)
{
	TkmsHookWireHeader h = {.type = TKMS_HOOK_WIRE_DONE,
				.id = id,
				.outcome = outcome,
				.status = status,
				.cut = cut,
				.data_len = len};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)data, len}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1};
	gssize n;

	do
		n = sendmsg(l->fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		g_message("tkmsd cannot be answered (%s): the hook launcher stops",
			  g_strerror(errno));
		g_main_loop_quit(l->loop);
	}
}

static void
send_not_run(Launcher *l, guint32 id, const gchar *why)
{
	gsize len = MIN(strlen(why), TKMS_HOOK_WIRE_TEXT_MAX);

	send_done(l, id, TKMS_HOOK_WIRE_NOT_RUN, 0, FALSE, (const guint8 *)why, len);
}

/* ---- the child, between fork and exec ---- */

/* Async-signal-safe calls only. A failure is told on standard error (the hook's, which tkmsd
 * reads) and ends the child before exec, so that a hook never runs as a user it was not meant
 * to, nor with a capability. */
static void
child_die(const gchar *what)
{
	static const gchar prefix[] = "tkmsd: cannot start the hook: ";
	gssize r G_GNUC_UNUSED;

	r = write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
	r = write(STDERR_FILENO, what, strlen(what));
	r = write(STDERR_FILENO, "\n", 1);
	_exit(126);
}

static void
child_setup(gpointer data)
{
	const ChildSetup *c = data;
	struct rlimit no_core = {0, 0};
	sigset_t none;

	/* what the launcher ignores or blocks is inherited through exec: give the hook
	 * defaults */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	/* no controlling terminal, and a process group of its own, killed as one */
	if (setsid() < 0)
		child_die("setsid failed");
	umask(077);
	/* it holds passwords */
	setrlimit(RLIMIT_CORE, &no_core);
	if (c->switch_user) {
		if (setgroups(c->n_groups, c->groups) != 0)
			child_die("setgroups failed");
		if (setgid(c->gid) != 0)
			child_die("setgid failed");
		if (setuid(c->uid) != 0)
			child_die("setuid failed");
	}
	if (c->uid != 0) {
		/* a launcher that is not root keeps its capabilities across setuid, and its
		 * ambient ones (CAP_SETUID...) would pass on through exec: none for the hook */
		if (!tkms_privileges_clear_in_child())
			child_die("capabilities could not be dropped");
		if (setuid(0) == 0 || geteuid() == 0)
			child_die("root privileges could not be dropped");
	}
	/* dies with the launcher (set after setuid, which clears it) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		child_die("PR_SET_PDEATHSIG failed");
	if (getppid() != c->parent)
		_exit(126);
}

/* The hook user's ids and groups, and whether this process can switch to them. */
static gboolean
resolve_user(const gchar *user, ChildSetup *c, GError **error)
{
	struct passwd pw, *found = NULL;
	gchar buf[4096];
	gint err;
	uid_t me = geteuid();

	err = getpwnam_r(user, &pw, buf, sizeof(buf), &found);
	if (found == NULL) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "[passwords] HookUser \"%s\" is not a user of this system%s%s", user,
			    err ? ": " : "", err ? g_strerror(err) : "");
		return FALSE;
	}
	c->uid = found->pw_uid;
	c->gid = found->pw_gid;
	c->parent = getpid();
	if (!tkms_privileges_can_switch_user()) {
		if (found->pw_uid != me) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "tkmsd runs as uid %u without CAP_SETUID and CAP_SETGID, and "
				    "so cannot run hooks as [passwords] HookUser \"%s\" (uid %u); "
				    "run it as the shipped unit does (AmbientCapabilities=), as "
				    "root, or set HookUser to its own user",
				    (guint)me, user, (guint)found->pw_uid);
			return FALSE;
		}
		c->switch_user = FALSE;
		return TRUE;
	}
	c->switch_user = TRUE;
	c->n_groups = MAX_GROUPS;
	if (getgrouplist(found->pw_name, found->pw_gid, c->groups, &c->n_groups) < 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "[passwords] HookUser \"%s\" is in more than %u groups", user,
			    MAX_GROUPS);
		return FALSE;
	}
	return TRUE;
}

/* ---- a run ---- */

static void
finish(Run *run)
{
	Launcher *l = run->launcher;
	TkmsHookWireOutcome outcome = run->cancelled   ? TKMS_HOOK_WIRE_CANCELLED
				      : run->timed_out ? TKMS_HOOK_WIRE_TIMED_OUT
						       : TKMS_HOOK_WIRE_ENDED;

	send_done(l, run->id, outcome, run->status, run->err_cut, run->err, run->err_len);
	OPENSSL_cleanse(run->err, sizeof(run->err));
	run->err_len = 0;
	g_hash_table_remove(l->runs, GUINT_TO_POINTER(run->id));
}

/* Reads what the hook wrote to standard error: the first 4 KiB are kept, the rest dropped.
 * FALSE at the end (EOF or an error) or if nothing more is there now. */
static gboolean
read_stderr(Run *run)
{
	guint8 chunk[1024];
	gssize n;

	for (;;) {
		gsize room = sizeof(run->err) - run->err_len;
		if (room > 0)
			n = read(run->stderr_fd, run->err + run->err_len, room);
		else
			n = read(run->stderr_fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (room > 0)
			run->err_len += n;
		else
			run->err_cut = TRUE;
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static gboolean
stderr_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	Run *run = user_data;

	if (read_stderr(run))
		return G_SOURCE_CONTINUE;
	close_fd(&run->stderr_fd);
	g_clear_pointer(&run->stderr_source, g_source_unref);
	return G_SOURCE_REMOVE;
}

/* Feeds the JSON to the hook's standard input, then closes it (the hook sees EOF). A hook
 * that exits or closes its input without reading it all is no error here. */
static gboolean
stdin_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	Run *run = user_data;

	while (run->written < run->input_len) {
		gssize n = write(run->stdin_fd, run->input + run->written,
				 run->input_len - run->written);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return G_SOURCE_CONTINUE;
		if (n <= 0)
			break; /* EPIPE: it did not read */
		run->written += n;
	}
	wipe_input(run);
	close_fd(&run->stdin_fd);
	g_clear_pointer(&run->stdin_source, g_source_unref);
	return G_SOURCE_REMOVE;
}

static void
child_cb(GPid pid, gint status, gpointer user_data)
{
	Run *run = user_data;

	run->running = FALSE;
	run->status = status;
	/* what the hook left behind in its group goes with it */
	kill_group(run);
	g_spawn_close_pid(pid);
	g_clear_pointer(&run->child_source, g_source_unref);
	drop_source(&run->timeout_source);
	drop_source(&run->stdin_source);
	close_fd(&run->stdin_fd);
	wipe_input(run);
	/* what it wrote before it ended is in the pipe: take it, and no more (a process that
	 * escaped its group must not hold the rotation up) */
	if (run->stderr_fd >= 0)
		read_stderr(run);
	drop_source(&run->stderr_source);
	close_fd(&run->stderr_fd);
	finish(run);
}

static gboolean
timeout_cb(gpointer user_data)
{
	Run *run = user_data;

	g_message("hook \"%s\" %s: timed out after %u s, killing its process group", run->name,
		  run->step, run->timeout);
	run->timed_out = TRUE;
	kill_group(run);
	g_clear_pointer(&run->timeout_source, g_source_unref);
	return G_SOURCE_REMOVE;
}

static GSource *
attach(GSource *source, GSourceFunc func, Run *run)
{
	g_source_set_callback(source, func, run, NULL);
	g_source_attach(source, NULL);
	return source;
}

static gboolean
spawn(Run *run, GError **error)
{
	g_autofree gchar *path =
		g_build_filename(run->launcher->config->directory, run->name, NULL);
	gchar *argv[] = {path, (gchar *)run->step, NULL};
	gchar *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", NULL};
	gint in[2] = {-1, -1}, err[2] = {-1, -1};
	g_autoptr(GError) local = NULL;
	gboolean ok;

	if (!g_unix_open_pipe(in, FD_CLOEXEC, error) || !g_unix_open_pipe(err, FD_CLOEXEC, error)) {
		close_fd(&in[0]);
		close_fd(&in[1]);
		return FALSE;
	}
	ok = g_spawn_async_with_pipes_and_fds(
		"/", (const gchar *const *)argv, (const gchar *const *)envp,
		G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL, child_setup, &run->setup,
		in[0], -1, err[1], NULL, NULL, 0, &run->pid, NULL, NULL, NULL, &local);
	close_fd(&in[0]);
	close_fd(&err[1]);
	run->stdin_fd = in[1];
	run->stderr_fd = err[0];
	if (!ok) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The hook \"%s\" %s could not be started: %s", run->name, run->step,
			    local->message);
		return FALSE;
	}
	run->running = TRUE;
	/* cannot fail on a pipe */
	g_unix_set_fd_nonblocking(run->stdin_fd, TRUE, NULL);
	g_unix_set_fd_nonblocking(run->stderr_fd, TRUE, NULL);
	return TRUE;
}

static void
start_run(Launcher *l, const TkmsHookWireHeader *h, const guint8 *name, const guint8 *data)
{
	Run *run;
	g_autoptr(GError) error = NULL;

	if (g_hash_table_contains(l->runs, GUINT_TO_POINTER(h->id))) {
		send_not_run(l, h->id, "a hook with this request's id is running");
		return;
	}
	if (g_hash_table_size(l->runs) >= MAX_RUNS) {
		send_not_run(l, h->id, "too many hooks are running at once");
		return;
	}
	run = g_new0(Run, 1);
	run->launcher = l;
	run->id = h->id;
	run->name = g_strndup((const gchar *)name, h->name_len);
	run->step = tkms_hook_wire_step_name(h->step);
	run->timeout = h->timeout;
	run->stdin_fd = run->stderr_fd = -1;
	run->input = g_memdup2(data, h->data_len);
	run->input_len = h->data_len;
	g_hash_table_insert(l->runs, GUINT_TO_POINTER(run->id), run);

	/* checked again here, where it counts: tkmsd's check could have been skipped, and the
	 * directory may have changed since */
	if (strlen(run->name) != h->name_len || !tkms_hook_check(l->config, run->name, &error) ||
	    !resolve_user(l->config->user, &run->setup, &error) || !spawn(run, &error)) {
		if (error == NULL)
			g_set_error_literal(&error, TKMS_ERROR, TKMS_ERROR_FAILED,
					    "The hook name contains a NUL byte");
		send_not_run(l, run->id, error->message);
		g_hash_table_remove(l->runs, GUINT_TO_POINTER(run->id));
		return;
	}
	run->child_source = attach(g_child_watch_source_new(run->pid),
				   (GSourceFunc)(void (*)(void))child_cb, run);
	run->stdin_source = attach(g_unix_fd_source_new(run->stdin_fd, G_IO_OUT | G_IO_ERR),
				   (GSourceFunc)(void (*)(void))stdin_cb, run);
	run->stderr_source =
		attach(g_unix_fd_source_new(run->stderr_fd, G_IO_IN | G_IO_HUP | G_IO_ERR),
		       (GSourceFunc)(void (*)(void))stderr_cb, run);
	run->timeout_source = attach(g_timeout_source_new_seconds(run->timeout), timeout_cb, run);
}

static void
cancel_run(Launcher *l, guint32 id)
{
	Run *run = g_hash_table_lookup(l->runs, GUINT_TO_POINTER(id));

	/* one that ended already has been answered */
	if (run != NULL && run->running) {
		run->cancelled = TRUE;
		kill_group(run);
	}
}

/* ---- requests ---- */

static gboolean
request_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	Launcher *l = user_data;
	g_autoptr(GError) error = NULL;
	TkmsHookWireHeader h, raw = {0};
	const guint8 *name, *data;
	gssize n;

	do
		n = recv(l->fd, l->buf, TKMS_HOOK_WIRE_MESSAGE_MAX, MSG_DONTWAIT | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		/* tkmsd has stopped (or died) */
		g_main_loop_quit(l->loop);
		return G_SOURCE_REMOVE;
	}
	if ((gsize)n >= sizeof(raw))
		memcpy(&raw, l->buf, sizeof(raw));
	if ((gsize)n > TKMS_HOOK_WIRE_MESSAGE_MAX) {
		g_set_error(&error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "A hook launcher message of %zd bytes, longer than any", n);
		n = TKMS_HOOK_WIRE_MESSAGE_MAX;
	} else if (tkms_hook_wire_parse(l->buf, n, &h, &name, &data, &error)) {
		if (h.type == TKMS_HOOK_WIRE_RUN)
			start_run(l, &h, name, data);
		else if (h.type == TKMS_HOOK_WIRE_CANCEL)
			cancel_run(l, h.id);
		else
			g_set_error_literal(&error, TKMS_ERROR, TKMS_ERROR_FAILED,
					    "An answer was sent to the hook launcher");
	}
	OPENSSL_cleanse(l->buf, n);
	if (error != NULL) {
		/* tkmsd sends no such thing: refuse it, and answer a request that can be told
		 * apart so that it does not wait for ever */
		g_warning("The hook launcher refuses a request: %s", error->message);
		if (raw.type == TKMS_HOOK_WIRE_RUN)
			send_not_run(l, raw.id, error->message);
	}
	return G_SOURCE_CONTINUE;
}

void
tkms_hook_launcher_serve(gint fd, const TkmsHookConfig *config)
{
	Launcher l = {.fd = fd, .config = config};
	GSource *source;

	prctl(PR_SET_NAME, "tkmsd-hooks");
	/* the JSON passes through here: no core dump, no ptrace by tkmsd's user */
	prctl(PR_SET_DUMPABLE, 0);
	/* it ends when tkmsd closes its end, not on the signals a terminal or systemd sends
	 * to tkmsd's whole group; a hook that does not read its input must not kill it */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	l.loop = g_main_loop_new(NULL, FALSE);
	l.runs = g_hash_table_new_full(NULL, NULL, NULL, run_free);
	l.buf = g_malloc(TKMS_HOOK_WIRE_MESSAGE_MAX);
	source = g_unix_fd_source_new(fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
	g_source_set_callback(source, (GSourceFunc)(void (*)(void))request_cb, &l, NULL);
	g_source_attach(source, NULL);
	g_source_unref(source);
	g_main_loop_run(l.loop);
	/* whatever still runs is killed with its group */
	g_hash_table_destroy(l.runs);
	OPENSSL_cleanse(l.buf, TKMS_HOOK_WIRE_MESSAGE_MAX);
	_exit(0);
}
