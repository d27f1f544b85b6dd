/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-hook"

/* The hook runner (hook.h). A hook is started by fork and exec (GLib's spawn with a child
 * setup function), as [passwords] HookUser, in a session of its own; its standard input is a
 * pipe fed from a buffer that is wiped when freed, its standard output goes to /dev/null and
 * the first 4 KiB of its standard error are kept (the rest is read and dropped). Everything
 * runs on the caller's main context: no thread. */

#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <openssl/crypto.h>

#include "key.h"
#include "tkms-error.h"

/* what is kept of a hook's standard error */
#define STDERR_KEEP 4096
/* a hook's user's supplementary groups, at most */
#define MAX_GROUPS 256
#define MASK "********"

/* ---- buffers that hold passwords ---- */

typedef struct {
	gchar *data;
	gsize len;
	gsize cap;
} WipedBuf;

static void
wiped_buf_init(WipedBuf *b, gsize cap)
{
	b->data = g_malloc(cap);
	b->len = 0;
	b->cap = cap;
}

/* Grows by moving to a new block: the old one is wiped first, so no copy of what it held is
 * left behind (g_realloc could leave one). */
static void
wiped_buf_reserve(WipedBuf *b, gsize more)
{
	gchar *bigger;
	gsize cap;

	if (b->len + more <= b->cap)
		return;
	cap = MAX(b->cap * 2, b->len + more);
	bigger = g_malloc(cap);
	memcpy(bigger, b->data, b->len);
	OPENSSL_cleanse(b->data, b->cap);
	g_free(b->data);
	b->data = bigger;
	b->cap = cap;
}

static void
wiped_buf_append(WipedBuf *b, const gchar *data, gsize len)
{
	wiped_buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static void
wiped_buf_clear(WipedBuf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	g_clear_pointer(&b->data, g_free);
	b->len = b->cap = 0;
}

/* A JSON string: ", \ and control characters escaped (\u00XX), the rest as it is (UTF-8, which
 * the caller checked). */
static void
json_string(WipedBuf *b, const gchar *s, gsize len)
{
	static const gchar hex[] = "0123456789abcdef";

	wiped_buf_append(b, "\"", 1);
	for (gsize i = 0; i < len; i++) {
		guchar c = s[i];
		if (c == '"' || c == '\\') {
			gchar e[2] = {'\\', c};
			wiped_buf_append(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			gchar e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
			wiped_buf_append(b, e, 6);
		} else {
			wiped_buf_append(b, (const gchar *)&c, 1);
		}
	}
	wiped_buf_append(b, "\"", 1);
}

static void
json_member(WipedBuf *b, const gchar *name)
{
	if (b->len > 1)
		wiped_buf_append(b, ", ", 2);
	json_string(b, name, strlen(name));
	wiped_buf_append(b, ": ", 2);
}

static void
json_uint(WipedBuf *b, const gchar *name, guint32 value)
{
	gchar num[16];
	gint n = g_snprintf(num, sizeof(num), "%u", value);

	json_member(b, name);
	wiped_buf_append(b, num, n);
}

static gboolean
json_bytes(WipedBuf *b, const gchar *name, GBytes *value, GError **error)
{
	gsize len;
	const gchar *data = g_bytes_get_data(value, &len);

	if (!g_utf8_validate(data, len, NULL)) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The %s password is not UTF-8 text, which a hook's JSON input cannot "
			    "carry; import a text password",
			    name);
		return FALSE;
	}
	json_member(b, name);
	json_string(b, data, len);
	return TRUE;
}

static gboolean
build_input(WipedBuf *b, const TkmsHookInput *in, GError **error)
{
	wiped_buf_init(b, 512);
	wiped_buf_append(b, "{", 1);
	json_member(b, "step");
	json_string(b, in->step, strlen(in->step));
	json_uint(b, "owner", in->owner);
	json_member(b, "key");
	json_string(b, in->key, strlen(in->key));
	if (in->current_version != 0)
		json_uint(b, "current-version", in->current_version);
	if (in->pending_version != 0)
		json_uint(b, "pending-version", in->pending_version);
	if (in->previous_version != 0)
		json_uint(b, "previous-version", in->previous_version);
	if ((in->current != NULL && !json_bytes(b, "current", in->current, error)) ||
	    (in->pending != NULL && !json_bytes(b, "pending", in->pending, error)) ||
	    (in->previous != NULL && !json_bytes(b, "previous", in->previous, error)))
		return FALSE;
	wiped_buf_append(b, "}\n", 2);
	return TRUE;
}

/* ---- masking ---- */

static void
wiped_buf_free(WipedBuf *b)
{
	wiped_buf_clear(b);
	g_free(b);
}

static gint
longest_first(gconstpointer a, gconstpointer b)
{
	gsize la = (*(WipedBuf *const *)a)->len;
	gsize lb = (*(WipedBuf *const *)b)->len;
	return la < lb ? 1 : la > lb ? -1 : 0;
}

/* The forms in which a password may show up in a hook's standard error: as it is, and as its
 * JSON input spells it (a hook that echoes its input). Longest first, so that the longer of
 * two overlapping forms is masked whole. */
static GPtrArray *
mask_forms(const TkmsHookInput *in)
{
	GBytes *passwords[] = {in->current, in->pending, in->previous};
	GPtrArray *forms = g_ptr_array_new_with_free_func((GDestroyNotify)wiped_buf_free);

	for (guint i = 0; i < G_N_ELEMENTS(passwords); i++) {
		WipedBuf *plain, *esc;
		gsize len;
		const gchar *data;

		if (passwords[i] == NULL || g_bytes_get_size(passwords[i]) == 0)
			continue;
		data = g_bytes_get_data(passwords[i], &len);
		plain = g_new0(WipedBuf, 1);
		wiped_buf_init(plain, len);
		wiped_buf_append(plain, data, len);
		g_ptr_array_add(forms, plain);
		esc = g_new0(WipedBuf, 1);
		wiped_buf_init(esc, len + 16);
		json_string(esc, data, len);
		/* without the quotes */
		esc->len -= 2;
		memmove(esc->data, esc->data + 1, esc->len);
		if (esc->len != len)
			g_ptr_array_add(forms, esc);
		else
			wiped_buf_free(esc);
	}
	g_ptr_array_sort(forms, longest_first);
	return forms;
}

/* text with every form of a password replaced by "********", and a tail that begins one
 * (cut: by the 4 KiB limit or a kill; otherwise only if at least 4 bytes long, which is no
 * accident) as well; then made valid UTF-8. */
static gchar *
mask(const guint8 *text, gsize len, GPtrArray *forms, gboolean cut)
{
	g_autoptr(GString) out = g_string_sized_new(len + 16);
	gsize i = 0;

	while (i < len) {
		gboolean masked = FALSE;
		for (guint f = 0; f < forms->len && !masked; f++) {
			const WipedBuf *form = g_ptr_array_index(forms, f);
			gsize plen = form->len;
			const guint8 *p = (const guint8 *)form->data;
			gsize rest = len - i;
			if (rest >= plen && memcmp(text + i, p, plen) == 0) {
				g_string_append(out, MASK);
				i += plen;
				masked = TRUE;
			} else if (rest < plen && (cut || rest >= 4) &&
				   memcmp(text + i, p, rest) == 0) {
				g_string_append(out, MASK);
				i = len;
				masked = TRUE;
			}
		}
		if (!masked)
			g_string_append_c(out, text[i++]);
	}
	return g_utf8_make_valid(out->str, out->len);
}

/* ---- tkms_hook_check ---- */

gboolean
tkms_hook_name_is_valid(const gchar *name)
{
	gsize len = strlen(name);

	if (len == 0 || len > TKMS_HOOK_NAME_MAX || name[0] == '.')
		return FALSE;
	for (gsize i = 0; i < len; i++)
		if (!g_ascii_isalnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
			return FALSE;
	return TRUE;
}

static gboolean refuse(GError **error, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

static gboolean
refuse(GError **error, const gchar *format, ...)
{
	va_list ap;
	g_autofree gchar *msg = NULL;

	va_start(ap, format);
	msg = g_strdup_vprintf(format, ap);
	va_end(ap);
	g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT, msg);
	return FALSE;
}

/* Only root may change what a directory holds: owned by root and writable by no one else (a
 * sticky directory such as /tmp is fine: others cannot rename or remove root's entries). */
static gboolean
check_directory(const gchar *path, gboolean above, GError **error)
{
	const gchar *what = above ? "A directory above the hook directory" : "The hook directory";
	struct stat st;

	if (stat(path, &st) != 0)
		return refuse(error, "%s %s cannot be read: %s", what, path, g_strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return refuse(error, "%s %s is not a directory", what, path);
	if (st.st_uid != 0)
		return refuse(error,
			      "%s %s is owned by uid %u, not root; hooks must be "
			      "in a directory only root can change",
			      what, path, (guint)st.st_uid);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !(above && (st.st_mode & S_ISVTX)))
		return refuse(error,
			      "%s %s is writable by group or others (mode %04o); "
			      "make it writable by root alone (chmod go-w)",
			      what, path, (guint)(st.st_mode & 07777));
	return TRUE;
}

gboolean
tkms_hook_check(const TkmsHookConfig *config, const gchar *name, GError **error)
{
	g_autofree gchar *real_dir = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *path = NULL;
	struct stat st;

	if (!tkms_hook_name_is_valid(name))
		return refuse(error,
			      "\"%s\" is not a hook name: a file name in the hook directory "
			      "([A-Za-z0-9._-], 1 to %u characters, not starting with a dot)",
			      name, TKMS_HOOK_NAME_MAX);
	if (config->directory == NULL || !g_path_is_absolute(config->directory))
		return refuse(error, "[passwords] HookDirectory must be an absolute path");
	if (!check_directory(config->directory, FALSE, error))
		return FALSE;
	/* and every directory above it (where the directory itself could be swapped) */
	real_dir = realpath(config->directory, NULL);
	if (real_dir == NULL)
		return refuse(error, "The hook directory %s cannot be resolved: %s",
			      config->directory, g_strerror(errno));
	dir = g_strdup(real_dir);
	while (!g_str_equal(dir, "/")) {
		gchar *up = g_path_get_dirname(dir);
		g_free(dir);
		dir = up;
		if (!check_directory(dir, TRUE, error))
			return FALSE;
	}
	path = g_build_filename(config->directory, name, NULL);
	if (lstat(path, &st) != 0)
		return refuse(error, "There is no hook \"%s\" in %s: %s", name, config->directory,
			      g_strerror(errno));
	if (S_ISLNK(st.st_mode))
		return refuse(error,
			      "The hook %s is a symbolic link; put the executable itself in the "
			      "hook directory",
			      path);
	if (!S_ISREG(st.st_mode))
		return refuse(error, "The hook %s is not a regular file", path);
	if (st.st_uid != 0)
		return refuse(error, "The hook %s is owned by uid %u, not root; chown root it",
			      path, (guint)st.st_uid);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return refuse(error,
			      "The hook %s is writable by group or others (mode %04o); chmod go-w "
			      "it",
			      path, (guint)(st.st_mode & 07777));
	if ((st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0)
		return refuse(error, "The hook %s is not executable; chmod +x it", path);
	return TRUE;
}

/* ---- running a hook ---- */

/* What the child needs after fork: resolved before, since a forked child of a threaded
 * process may only make async-signal-safe calls (no NSS lookups, no malloc). */
typedef struct {
	gboolean switch_user;
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	gint n_groups;
	pid_t parent;
} ChildSetup;

typedef struct {
	gchar *name;
	gchar *step;
	guint timeout;
	GMainContext *context;
	ChildSetup setup;
	GPid pid; /* also its process group and session */
	gboolean running;
	gint status;
	gboolean timed_out;
	gboolean cancelled;
	WipedBuf input; /* the JSON, wiped once written or given up on */
	gsize written;
	gint stdin_fd;
	gint stderr_fd;
	GSource *stdin_source;
	GSource *stderr_source;
	GSource *child_source;
	GSource *timeout_source;
	gulong cancel_id;
	guint8 err[STDERR_KEEP];
	gsize err_len;
	gboolean err_cut; /* more came than is kept */
	GPtrArray *forms; /* the passwords, to mask */
	gchar *reason;
} HookRun;

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
hook_run_free(gpointer data)
{
	HookRun *run = data;

	drop_source(&run->stdin_source);
	drop_source(&run->stderr_source);
	drop_source(&run->child_source);
	drop_source(&run->timeout_source);
	close_fd(&run->stdin_fd);
	close_fd(&run->stderr_fd);
	/* a run is only freed once its child is reaped, or if it never started */
	g_warn_if_fail(!run->running);
	wiped_buf_clear(&run->input);
	OPENSSL_cleanse(run->err, sizeof(run->err));
	g_clear_pointer(&run->forms, g_ptr_array_unref);
	g_clear_pointer(&run->context, g_main_context_unref);
	g_free(run->reason);
	g_free(run->name);
	g_free(run->step);
	g_free(run);
}

/* In the child, between fork and exec: async-signal-safe calls only. A failure is told on
 * standard error (the hook's, which tkmsd reads) and ends the child before exec, so that a
 * hook never runs as a user it was not meant to. */
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

	/* what tkmsd ignores or blocks is inherited through exec: give the hook defaults */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
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
		if (c->uid != 0 && (setuid(0) == 0 || geteuid() == 0))
			child_die("root privileges could not be dropped");
	}
	/* dies with tkmsd (set after setuid, which clears it) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		child_die("PR_SET_PDEATHSIG failed");
	if (getppid() != c->parent)
		_exit(126);
}

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
	if (me != 0) {
		if (found->pw_uid != me) {
			g_set_error(
				error, TKMS_ERROR, TKMS_ERROR_FAILED,
				"tkmsd runs as uid %u, not root, and so cannot run hooks as "
				"[passwords] HookUser \"%s\" (uid %u); run tkmsd as root or set "
				"HookUser to its own user",
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

static void
finish(HookRun *run, GTask *task)
{
	g_autofree gchar *what = NULL;
	g_autofree gchar *reason = NULL;
	gboolean killed = run->timed_out || run->cancelled ||
			  !(WIFEXITED(run->status) && WEXITSTATUS(run->status) == 0);

	reason = mask(run->err, run->err_len, run->forms, run->err_cut || killed);
	OPENSSL_cleanse(run->err, sizeof(run->err));
	run->err_len = 0;
	g_strchomp(reason);
	run->reason = g_strdup(reason);
	if (run->cancelled)
		what = g_strdup("was cancelled");
	else if (run->timed_out)
		what = g_strdup_printf("timed out after %u s", run->timeout);
	else if (WIFEXITED(run->status) && WEXITSTATUS(run->status) == 0) {
		g_task_return_boolean(task, TRUE);
		return;
	} else if (WIFEXITED(run->status))
		what = g_strdup_printf("exited with status %d", WEXITSTATUS(run->status));
	else if (WIFSIGNALED(run->status))
		what = g_strdup_printf("killed by signal %d", WTERMSIG(run->status));
	else
		what = g_strdup_printf("ended with wait status %d", run->status);
	g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED, "The hook \"%s\" %s %s%s%s",
				run->name, run->step, what, *reason ? ": " : "", reason);
}

/* Reads what the hook wrote to standard error: the first 4 KiB are kept, the rest dropped.
 * FALSE at the end (EOF or an error) or if nothing more is there now. */
static gboolean
read_stderr(HookRun *run)
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
	HookRun *run = g_task_get_task_data(user_data);

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
	HookRun *run = g_task_get_task_data(user_data);

	while (run->written < run->input.len) {
		gssize n = write(run->stdin_fd, run->input.data + run->written,
				 run->input.len - run->written);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return G_SOURCE_CONTINUE;
		if (n <= 0)
			break; /* EPIPE: it did not read */
		run->written += n;
	}
	wiped_buf_clear(&run->input);
	close_fd(&run->stdin_fd);
	g_clear_pointer(&run->stdin_source, g_source_unref);
	return G_SOURCE_REMOVE;
}

static void
kill_group(HookRun *run)
{
	/* the session leader's pid is the group's id until the last member is gone, so this
	 * cannot hit anybody else while the leader is not reaped, and (pid numbers cycle
	 * through pid_max before reuse) not in practice just after */
	if (run->pid > 0)
		kill(-run->pid, SIGKILL);
}

static void
child_cb(GPid pid, gint status, gpointer user_data)
{
	GTask *task = user_data;
	HookRun *run = g_task_get_task_data(task);

	run->running = FALSE;
	run->status = status;
	/* what the hook left behind in its group goes with it */
	kill_group(run);
	g_spawn_close_pid(pid);
	g_clear_pointer(&run->child_source, g_source_unref);
	drop_source(&run->timeout_source);
	drop_source(&run->stdin_source);
	close_fd(&run->stdin_fd);
	wiped_buf_clear(&run->input);
	/* what it wrote before it ended is in the pipe: take it, and no more (a process that
	 * escaped its group must not hold the rotation up) */
	if (run->stderr_fd >= 0)
		read_stderr(run);
	drop_source(&run->stderr_source);
	close_fd(&run->stderr_fd);
	if (run->cancel_id != 0)
		g_cancellable_disconnect(g_task_get_cancellable(task), run->cancel_id);
	run->cancel_id = 0;
	finish(run, task);
}

static gboolean
timeout_cb(gpointer user_data)
{
	HookRun *run = g_task_get_task_data(user_data);

	g_message("hook \"%s\" %s: timed out after %u s, killing its process group", run->name,
		  run->step, run->timeout);
	run->timed_out = TRUE;
	kill_group(run);
	g_clear_pointer(&run->timeout_source, g_source_unref);
	return G_SOURCE_REMOVE;
}

static gboolean
cancel_idle(gpointer user_data)
{
	HookRun *run = g_task_get_task_data(user_data);

	if (run->running) {
		run->cancelled = TRUE;
		kill_group(run);
	}
	return G_SOURCE_REMOVE;
}

/* May run in another thread: the kill is done in the run's context, at once if that can be
 * had (also when no main loop runs any more, at tkmsd's stop), else from an idle. */
static void
cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
	HookRun *run = g_task_get_task_data(user_data);
	GSource *idle;

	if (g_main_context_acquire(run->context)) {
		cancel_idle(user_data);
		g_main_context_release(run->context);
		return;
	}
	idle = g_idle_source_new();
	g_source_set_callback(idle, cancel_idle, g_object_ref(user_data), g_object_unref);
	g_source_attach(idle, run->context);
	g_source_unref(idle);
}

/* The sources hold no reference to the task: the child watch does, and it removes the others
 * before it drops it. */
static GSource *
attach(GSource *source, GSourceFunc func, gpointer task, GDestroyNotify notify)
{
	HookRun *run = g_task_get_task_data(task);

	g_source_set_callback(source, func, task, notify);
	g_source_attach(source, run->context);
	return source;
}

static void
ignore_sigpipe_once(void)
{
	static gsize done = 0;

	/* A hook that ends without reading its input must not kill tkmsd with SIGPIPE: the
	 * write fails with EPIPE instead. (The child puts SIGPIPE back to default.) */
	if (g_once_init_enter(&done)) {
		struct sigaction sa;
		if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
			signal(SIGPIPE, SIG_IGN);
		g_once_init_leave(&done, 1);
	}
}

static gboolean
spawn(HookRun *run, const TkmsHookConfig *config, GError **error)
{
	g_autofree gchar *path = g_build_filename(config->directory, run->name, NULL);
	gchar *argv[] = {path, run->step, NULL};
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

void
tkms_hook_run_async(const TkmsHookConfig *config, const gchar *name, const TkmsHookInput *input,
		    GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	HookRun *run = g_new0(HookRun, 1);
	GError *error = NULL;

	g_task_set_source_tag(task, tkms_hook_run_async);
	run->name = g_strdup(name);
	run->step = g_strdup(input->step);
	run->timeout = MAX(config->timeout, 1);
	run->context = g_main_context_ref_thread_default();
	run->stdin_fd = run->stderr_fd = -1;
	run->forms = mask_forms(input);
	g_task_set_task_data(task, run, hook_run_free);
	ignore_sigpipe_once();

	/* the hook is checked again before every run: the directory may have changed since
	 * the policy named it */
	if (!tkms_hook_check(config, name, &error) ||
	    !resolve_user(config->user, &run->setup, &error) ||
	    !build_input(&run->input, input, &error) || !spawn(run, config, &error)) {
		if (error->code == TKMS_ERROR_INVALID_ARGUMENT)
			error->code = TKMS_ERROR_FAILED;
		if (!g_str_has_prefix(error->message, "The hook \""))
			g_prefix_error(&error, "The hook \"%s\" %s could not be run: ", name,
				       input->step);
		run->reason = g_strdup("");
		g_task_return_error(task, error);
		return;
	}
	run->child_source =
		attach(g_child_watch_source_new(run->pid), (GSourceFunc)(void (*)(void))child_cb,
		       g_object_ref(task), g_object_unref);
	run->stdin_source = attach(g_unix_fd_source_new(run->stdin_fd, G_IO_OUT | G_IO_ERR),
				   (GSourceFunc)(void (*)(void))stdin_cb, task, NULL);
	run->stderr_source =
		attach(g_unix_fd_source_new(run->stderr_fd, G_IO_IN | G_IO_HUP | G_IO_ERR),
		       (GSourceFunc)(void (*)(void))stderr_cb, task, NULL);
	run->timeout_source =
		attach(g_timeout_source_new_seconds(run->timeout), timeout_cb, task, NULL);
	if (cancellable != NULL)
		run->cancel_id =
			g_cancellable_connect(cancellable, G_CALLBACK(cancelled_cb), task, NULL);
}

gboolean
tkms_hook_run_finish(GAsyncResult *result, gchar **reason, GError **error)
{
	HookRun *run;

	g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == tkms_hook_run_async, FALSE);
	run = g_task_get_task_data(G_TASK(result));
	if (reason != NULL)
		*reason = g_strdup(run->reason ? run->reason : "");
	return g_task_propagate_boolean(G_TASK(result), error);
}
