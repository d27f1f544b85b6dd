/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-hook-launcher"

/* tkmsd's end of the hook launcher (hook-launcher.h): the fork, the requests, and the
 * answers handed to the runs that wait for them. */

#include "hook-launcher.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <openssl/crypto.h>

#include "hook-launcher-process.h"
#include "key.h"
#include "tkms-error.h"

/* how long a stop waits for the launcher to exit before it is killed */
#define STOP_WAIT_MS 2000
/* room for the socket buffers: a few of the longest messages */
#define SOCKET_BUFFER (4 * TKMS_HOOK_WIRE_MESSAGE_MAX)
/* the longest answer */
#define ANSWER_MAX \
	(sizeof(TkmsHookWireHeader) + MAX(TKMS_HOOK_WIRE_STDERR_MAX, TKMS_HOOK_WIRE_TEXT_MAX))

struct _TkmsHookLauncher {
	GObject parent_instance;

	GPid pid;
	gint fd; /* -1 once closed */
	gchar *directory;
	gchar *user;
	GMainContext *context; /* where the watches are attached, once they are */
	GSource *socket_source;
	GSource *child_source;
	GSource *kill_source; /* kills a launcher that closed its end but lives on */
	gboolean reaped;      /* by GLib's child watch, which alone reaps it while it runs */
	gboolean stopping;
	gchar *broken; /* how it broke the protocol, if it did */

	/* cancellation may come from any thread */
	GMutex lock;
	GHashTable *pending; /* id -> GTask (a reference) */
	guint32 next_id;
	gchar *gone; /* why hooks cannot run any more; NULL while they can */
};

G_DEFINE_FINAL_TYPE(TkmsHookLauncher, tkms_hook_launcher, G_TYPE_OBJECT)

static TkmsHookLauncher *default_launcher;

typedef struct {
	guint32 id;
	gulong cancel_id;
} Request;

/* ---- results ---- */

static void
wipe_free(gpointer data)
{
	GBytes *copy = data;
	gsize len;
	gpointer bytes = (gpointer)g_bytes_get_data(copy, &len);

	OPENSSL_cleanse(bytes, len);
	g_bytes_unref(copy);
}

/* A copy of data that is wiped when the last reference goes. */
static GBytes *
wiped_bytes_new(const guint8 *data, gsize len)
{
	GBytes *inner = g_bytes_new_take(g_memdup2(data, MAX(len, 1)), len);
	gsize size;
	gconstpointer p = g_bytes_get_data(inner, &size);

	return g_bytes_new_with_free_func(p, size, wipe_free, inner);
}

void
tkms_hook_launcher_result_free(TkmsHookLauncherResult *result)
{
	if (result == NULL)
		return;
	g_clear_pointer(&result->output, g_bytes_unref);
	g_free(result);
}

/* ---- the launcher's end ---- */

static gchar *
describe_status(gint status)
{
	if (WIFEXITED(status))
		return g_strdup_printf("exited with status %d", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return g_strdup_printf("was killed by signal %d", WTERMSIG(status));
	return g_strdup_printf("ended with wait status %d", status);
}

static void
close_socket(TkmsHookLauncher *self)
{
	if (self->socket_source != NULL) {
		g_source_destroy(self->socket_source);
		g_clear_pointer(&self->socket_source, g_source_unref);
	}
	if (self->fd >= 0)
		close(self->fd);
	self->fd = -1;
}

/* From now on no hook can run: every pending run fails with why. */
static void
set_gone(TkmsHookLauncher *self, const gchar *why)
{
	g_autoptr(GPtrArray) tasks = g_ptr_array_new_with_free_func(g_object_unref);
	GHashTableIter iter;
	gpointer value;

	g_mutex_lock(&self->lock);
	if (self->gone != NULL) {
		g_mutex_unlock(&self->lock);
		return;
	}
	self->gone = g_strdup(why);
	g_hash_table_iter_init(&iter, self->pending);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		g_ptr_array_add(tasks, value);
		g_hash_table_iter_steal(&iter);
	}
	g_mutex_unlock(&self->lock);

	close_socket(self);
	for (guint i = 0; i < tasks->len; i++) {
		GTask *task = g_ptr_array_index(tasks, i);
		Request *req = g_task_get_task_data(task);
		if (req->cancel_id != 0)
			g_cancellable_disconnect(g_task_get_cancellable(task), req->cancel_id);
		req->cancel_id = 0;
		g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED, "%s", self->gone);
	}
}

/* The launcher is gone: said once (every hook fails from now on, each with this reason). */
static void
ended(TkmsHookLauncher *self, gint status, const gchar *detail)
{
	g_autofree gchar *how = describe_status(status);
	g_autofree gchar *why = NULL;

	if (self->stopping)
		return;
	why = g_strdup_printf("The hook launcher (pid %d) %s%s%s: password rotation hooks cannot "
			      "run until tkmsd is restarted",
			      (gint)self->pid, how, detail ? " after " : "", detail ? detail : "");
	g_warning("%s", why);
	set_gone(self, why);
}

static gboolean read_answers(TkmsHookLauncher *self, gchar **broken);

static void
child_cb(GPid pid, gint status, gpointer user_data)
{
	TkmsHookLauncher *self = user_data;

	self->reaped = TRUE;
	g_spawn_close_pid(pid);
	g_clear_pointer(&self->child_source, g_source_unref);
	if (self->kill_source != NULL) {
		g_source_destroy(self->kill_source);
		g_clear_pointer(&self->kill_source, g_source_unref);
	}
	/* what it answered before it ended still counts */
	if (self->fd >= 0) {
		g_autofree gchar *broken = NULL;
		if (!read_answers(self, &broken) && broken != NULL && self->broken == NULL)
			self->broken = g_steal_pointer(&broken);
	}
	ended(self, status, self->broken);
}

static gboolean
kill_cb(gpointer user_data)
{
	TkmsHookLauncher *self = user_data;

	g_clear_pointer(&self->kill_source, g_source_unref);
	/* not reaped yet as far as the child watch said; at worst GLib's worker thread reaped
	 * it this instant, and a pid is reused only once the whole range has cycled */
	if (!self->reaped && self->pid > 0)
		kill(self->pid, SIGKILL);
	return G_SOURCE_REMOVE;
}

/* Its end of the socket is gone, or it broke the protocol (@broken says how): nothing more is
 * sent. It is killed (at once if it broke the protocol, else if it does not exit within a
 * second); the child watch then says how it ended and fails what waits. */
static void
lost(TkmsHookLauncher *self, const gchar *broken)
{
	close_socket(self);
	if (broken != NULL && self->broken == NULL)
		self->broken = g_strdup(broken);
	if (self->reaped || self->pid <= 0 || self->stopping)
		return;
	if (broken != NULL) {
		kill(self->pid, SIGKILL);
	} else if (self->kill_source == NULL && self->context != NULL) {
		self->kill_source = g_timeout_source_new(1000);
		g_source_set_callback(self->kill_source, kill_cb, self, NULL);
		g_source_attach(self->kill_source, self->context);
	}
}

static void
answer(TkmsHookLauncher *self, const TkmsHookWireHeader *h, const guint8 *data)
{
	GTask *task = NULL;
	Request *req;
	TkmsHookLauncherResult *result;

	g_mutex_lock(&self->lock);
	if (!g_hash_table_steal_extended(self->pending, GUINT_TO_POINTER(h->id), NULL,
					 (gpointer *)&task))
		task = NULL;
	g_mutex_unlock(&self->lock);
	if (task == NULL) {
		g_debug("an answer from the hook launcher for no pending run (%u)", h->id);
		return;
	}
	req = g_task_get_task_data(task);
	if (req->cancel_id != 0)
		g_cancellable_disconnect(g_task_get_cancellable(task), req->cancel_id);
	req->cancel_id = 0;
	result = g_new0(TkmsHookLauncherResult, 1);
	result->outcome = h->outcome;
	result->status = h->status;
	result->cut = h->cut != 0;
	result->output = wiped_bytes_new(data, h->data_len);
	g_task_return_pointer(task, result, (GDestroyNotify)tkms_hook_launcher_result_free);
	g_object_unref(task);
}

/* Hands every answer waiting on the socket to its run: TRUE once none is left, FALSE at the
 * socket's end or if the launcher broke the protocol (*@broken then says how). */
static gboolean
read_answers(TkmsHookLauncher *self, gchar **broken)
{
	guint8 buf[ANSWER_MAX];

	for (;;) {
		g_autoptr(GError) error = NULL;
		TkmsHookWireHeader h;
		const guint8 *name, *data;
		gssize n;

		do
			n = recv(self->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return TRUE;
		if (n <= 0)
			return FALSE;
		if ((gsize)n > sizeof(buf) ||
		    !tkms_hook_wire_parse(buf, n, &h, &name, &data, &error) ||
		    h.type != TKMS_HOOK_WIRE_DONE) {
			*broken = error ? g_strdup_printf("sending a malformed answer (%s)",
							  error->message)
					: g_strdup("sending a malformed answer");
			OPENSSL_cleanse(buf, sizeof(buf));
			return FALSE;
		}
		answer(self, &h, data);
		OPENSSL_cleanse(buf, n);
	}
}

static gboolean
socket_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	TkmsHookLauncher *self = user_data;
	g_autofree gchar *broken = NULL;

	if (read_answers(self, &broken))
		return G_SOURCE_CONTINUE;
	/* the end of its socket: it has ended, or is no use any more (this source goes with
	 * the socket) */
	g_clear_pointer(&self->socket_source, g_source_unref);
	lost(self, broken);
	return G_SOURCE_REMOVE;
}

static void
ensure_watched(TkmsHookLauncher *self)
{
	if (self->context != NULL)
		return;
	self->context = g_main_context_ref_thread_default();
	if (self->fd >= 0) {
		self->socket_source = g_unix_fd_source_new(self->fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
		g_source_set_callback(self->socket_source, (GSourceFunc)(void (*)(void))socket_cb,
				      self, NULL);
		g_source_attach(self->socket_source, self->context);
	}
	if (!self->reaped && self->pid > 0) {
		self->child_source = g_child_watch_source_new(self->pid);
		g_source_set_callback(self->child_source, (GSourceFunc)(void (*)(void))child_cb,
				      self, NULL);
		g_source_attach(self->child_source, self->context);
	}
}

/* ---- runs ---- */

static void
request_free(gpointer data)
{
	g_free(data);
}

static void
cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	GTask *task = user_data;
	TkmsHookLauncher *self = g_task_get_source_object(task);
	Request *req = g_task_get_task_data(task);
	TkmsHookWireHeader h = {.type = TKMS_HOOK_WIRE_CANCEL, .id = req->id};

	/* the launcher kills the hook and answers CANCELLED; one that ended meanwhile was
	 * answered already */
	g_mutex_lock(&self->lock);
	if (self->fd >= 0 && g_hash_table_contains(self->pending, GUINT_TO_POINTER(req->id)))
		send(self->fd, &h, sizeof(h), MSG_DONTWAIT | MSG_NOSIGNAL);
	g_mutex_unlock(&self->lock);
}

void
tkms_hook_launcher_run_async(TkmsHookLauncher *self, const gchar *name, const gchar *step,
			     guint timeout, const guint8 *input, gsize input_len,
			     GCancellable *cancellable, GAsyncReadyCallback callback,
			     gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
	Request *req = g_new0(Request, 1);
	gint step_index = tkms_hook_wire_step_from_name(step);
	gsize name_len = strlen(name);
	TkmsHookWireHeader h = {.type = TKMS_HOOK_WIRE_RUN,
				.step = step_index,
				.timeout = CLAMP(timeout, 1, TKMS_HOOK_WIRE_TIMEOUT_MAX),
				.name_len = name_len,
				.data_len = input_len};
	struct iovec iov[3] = {
		{&h, sizeof(h)}, {(void *)name, name_len}, {(void *)input, input_len}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 3};
	gssize n;
	gint saved;

	g_return_if_fail(TKMS_IS_HOOK_LAUNCHER(self));
	g_task_set_source_tag(task, tkms_hook_launcher_run_async);
	g_task_set_task_data(task, req, request_free);
	ensure_watched(self);
	if (step_index < 0 || name_len == 0 || name_len > TKMS_HOOK_NAME_MAX ||
	    input_len > TKMS_HOOK_WIRE_INPUT_MAX) {
		g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED,
					"A hook run that cannot be asked for (step \"%s\", a name "
					"of %zu bytes, an input of %zu bytes)",
					step, name_len, input_len);
		return;
	}

	g_mutex_lock(&self->lock);
	if (self->gone != NULL) {
		g_mutex_unlock(&self->lock);
		g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED, "%s", self->gone);
		return;
	}
	if (self->fd < 0) {
		/* lost, and not reaped yet: how it ended comes with the child watch */
		g_mutex_unlock(&self->lock);
		g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED,
					"The hook launcher (pid %d) has ended: password rotation "
					"hooks cannot run until tkmsd is restarted",
					(gint)self->pid);
		return;
	}
	do
		req->id = ++self->next_id;
	while (req->id == 0 || g_hash_table_contains(self->pending, GUINT_TO_POINTER(req->id)));
	h.id = req->id;
	/* the JSON goes straight from the caller's wiped buffer into the socket */
	do
		n = sendmsg(self->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	saved = errno;
	if (n >= 0)
		g_hash_table_insert(self->pending, GUINT_TO_POINTER(req->id), g_object_ref(task));
	g_mutex_unlock(&self->lock);

	if (n < 0 && (saved == EAGAIN || saved == EWOULDBLOCK)) {
		g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED,
					"The hook launcher (pid %d) is not taking requests (its "
					"queue is full)",
					(gint)self->pid);
		return;
	}
	if (n < 0) {
		/* its end is closed: it has ended */
		lost(self, NULL);
		g_task_return_new_error(
			task, TKMS_ERROR, TKMS_ERROR_FAILED,
			"The hook launcher (pid %d) cannot be reached (%s): password "
			"rotation hooks cannot run until tkmsd is restarted",
			(gint)self->pid, g_strerror(saved));
		return;
	}
	if (cancellable != NULL)
		req->cancel_id = g_cancellable_connect(cancellable, G_CALLBACK(cancelled_cb),
						       g_object_ref(task), g_object_unref);
}

TkmsHookLauncherResult *
tkms_hook_launcher_run_finish(TkmsHookLauncher *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == tkms_hook_launcher_run_async,
			     NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- life cycle ---- */

/* In the launcher: closes every descriptor but the standard ones and @fd (moved to 3), so that
 * it holds nothing of tkmsd's (another launcher's socket would keep that one from seeing
 * tkmsd's end close). */
static gint
keep_only(gint fd)
{
	if (fd != 3) {
		if (dup2(fd, 3) < 0)
			_exit(1);
		close(fd);
	}
	if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0) {
		glong max = sysconf(_SC_OPEN_MAX);
		for (glong i = 4; i < (max > 0 ? MIN(max, 65536) : 1024); i++)
			close(i);
	}
	fcntl(3, F_SETFD, FD_CLOEXEC);
	return 3;
}

TkmsHookLauncher *
tkms_hook_launcher_start(const TkmsHookConfig *config, GError **error)
{
	TkmsHookLauncher *self;
	gint fds[2];
	gint size = SOCKET_BUFFER;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "Cannot make the hook launcher's socket pair: %s", g_strerror(errno));
		return NULL;
	}
	/* the longest request must fit (the kernel caps this at net.core.wmem_max, whose
	 * default still holds one) */
	for (guint i = 0; i < 2; i++) {
		setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	pid = fork();
	if (pid < 0) {
		gint saved = errno;
		close(fds[0]);
		close(fds[1]);
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "Cannot start the hook launcher: fork: %s", g_strerror(saved));
		return NULL;
	}
	if (pid == 0) {
		TkmsHookConfig own = {.directory = g_strdup(config->directory),
				      .user = g_strdup(config->user),
				      .timeout = config->timeout};
		close(fds[0]);
		tkms_hook_launcher_serve(keep_only(fds[1]), &own);
	}
	close(fds[1]);
	self = g_object_new(TKMS_TYPE_HOOK_LAUNCHER, NULL);
	self->pid = pid;
	self->fd = fds[0];
	self->directory = g_strdup(config->directory);
	self->user = g_strdup(config->user);
	return self;
}

void
tkms_hook_launcher_stop(TkmsHookLauncher *self)
{
	gint64 deadline;
	gint status;

	g_return_if_fail(TKMS_IS_HOOK_LAUNCHER(self));
	if (self->stopping)
		return;
	self->stopping = TRUE;
	set_gone(self, "tkmsd is stopping: hooks are not run any more");
	if (self->kill_source != NULL) {
		g_source_destroy(self->kill_source);
		g_clear_pointer(&self->kill_source, g_source_unref);
	}
	if (self->child_source != NULL) {
		g_source_destroy(self->child_source);
		g_clear_pointer(&self->child_source, g_source_unref);
	}
	if (self->reaped || self->pid <= 0)
		return;
	/* it sees the end of its socket, kills its hooks and exits; -1 (ECHILD): GLib's
	 * child watch reaped it already */
	deadline = g_get_monotonic_time() + STOP_WAIT_MS * 1000;
	while (waitpid(self->pid, &status, WNOHANG) == 0) {
		if (g_get_monotonic_time() > deadline) {
			g_message("The hook launcher (pid %d) did not exit: killing it",
				  (gint)self->pid);
			kill(self->pid, SIGKILL);
			waitpid(self->pid, &status, 0);
			break;
		}
		g_usleep(5000);
	}
	self->reaped = TRUE;
}

void
tkms_hook_launcher_set_default(TkmsHookLauncher *launcher)
{
	if (launcher != NULL)
		ensure_watched(launcher);
	g_set_object(&default_launcher, launcher);
}

TkmsHookLauncher *
tkms_hook_launcher_get_default(void)
{
	return default_launcher;
}

GPid
tkms_hook_launcher_get_pid(TkmsHookLauncher *self)
{
	return self->pid;
}

const gchar *
tkms_hook_launcher_get_directory(TkmsHookLauncher *self)
{
	return self->directory;
}

const gchar *
tkms_hook_launcher_get_user(TkmsHookLauncher *self)
{
	return self->user;
}

gboolean
tkms_hook_launcher_is_running(TkmsHookLauncher *self)
{
	gboolean running;

	g_mutex_lock(&self->lock);
	running = self->gone == NULL;
	g_mutex_unlock(&self->lock);
	return running;
}

static void
tkms_hook_launcher_finalize(GObject *object)
{
	TkmsHookLauncher *self = TKMS_HOOK_LAUNCHER(object);

	tkms_hook_launcher_stop(self);
	g_hash_table_destroy(self->pending);
	g_clear_pointer(&self->context, g_main_context_unref);
	g_mutex_clear(&self->lock);
	g_free(self->gone);
	g_free(self->broken);
	g_free(self->directory);
	g_free(self->user);
	G_OBJECT_CLASS(tkms_hook_launcher_parent_class)->finalize(object);
}

static void
tkms_hook_launcher_class_init(TkmsHookLauncherClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = tkms_hook_launcher_finalize;
}

static void
tkms_hook_launcher_init(TkmsHookLauncher *self)
{
	self->fd = -1;
	g_mutex_init(&self->lock);
	self->pending = g_hash_table_new(NULL, NULL);
}
