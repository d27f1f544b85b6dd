/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-hook"

/* The hook runner of password rotation (daemon/hook.c) and its hook launcher
 * (daemon/hook-launcher*.c), without TPM or bus: hooks are shell scripts in a root-owned
 * temporary directory; what they see (user, argv, environment, session, open files, standard
 * input) they write where the test reads it. The launchers are forked at the start, as tkmsd
 * does (one for the hook user, one for a user that does not exist), so every test shares their
 * directories. Needs root, to switch to the hook user (nobody); exits 77 otherwise. */

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hook-launcher.h"
#include "hook.h"
#include "key.h"
#include "tkms-error.h"

#define HOOK_USER "nobody"
#define NO_USER	  "no-such-user-tkms"

/* made once, before the launchers are forked */
static gchar *base_dir;
static gchar *hooks_dir;
static gchar *out_dir;
static TkmsHookLauncher *launcher;
static TkmsHookLauncher *no_user_launcher;
static TkmsHookLauncher *doomed_launcher; /* killed by /hook/launcher-gone */

typedef struct {
	gchar *base;  /* root-owned, 0755 */
	gchar *hooks; /* the hook directory */
	gchar *out;   /* where hooks write what they saw: owned by the hook user */
	TkmsHookConfig config;
	struct passwd *pw;
} Fixture;

static void
remove_tree(const gchar *path, gboolean top)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const gchar *name;

	if (dir != NULL) {
		while ((name = g_dir_read_name(dir)) != NULL) {
			g_autofree gchar *child = g_build_filename(path, name, NULL);
			if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
			    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
				remove_tree(child, TRUE);
			else
				g_unlink(child);
		}
	}
	if (top)
		g_rmdir(path);
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	f->pw = getpwnam(HOOK_USER);
	g_assert_nonnull(f->pw);
	f->base = g_strdup(base_dir);
	f->hooks = g_strdup(hooks_dir);
	f->out = g_strdup(out_dir);
	/* what an earlier test left or changed */
	remove_tree(f->hooks, FALSE);
	remove_tree(f->out, FALSE);
	g_assert_cmpint(chmod(f->base, 0755), ==, 0);
	g_assert_cmpint(chown(f->hooks, 0, 0), ==, 0);
	g_assert_cmpint(chmod(f->hooks, 0755), ==, 0);
	g_assert_cmpint(chmod(f->out, 0700), ==, 0);
	g_assert_cmpint(chown(f->out, f->pw->pw_uid, f->pw->pw_gid), ==, 0);
	f->config.directory = f->hooks;
	f->config.user = HOOK_USER;
	f->config.timeout = 10;
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	tkms_hook_launcher_set_default(launcher);
	g_free(f->base);
	g_free(f->hooks);
	g_free(f->out);
}

/* A hook named name: "#!/bin/sh", OUT replaced by the output directory. */
static void
write_hook(Fixture *f, const gchar *name, const gchar *body)
{
	g_autofree gchar *path = g_build_filename(f->hooks, name, NULL);
	g_autoptr(GString) text = g_string_new("#!/bin/sh\n");
	g_autoptr(GError) error = NULL;

	g_string_append(text, body);
	g_string_replace(text, "OUT", f->out, 0);
	g_assert_true(g_file_set_contents(path, text->str, -1, &error));
	g_assert_no_error(error);
	g_assert_cmpint(chmod(path, 0755), ==, 0);
}

static gchar *
read_out(Fixture *f, const gchar *name)
{
	g_autofree gchar *path = g_build_filename(f->out, name, NULL);
	g_autoptr(GError) error = NULL;
	gchar *text = NULL;

	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	return text;
}

static void
got_result(GObject *source, GAsyncResult *res, gpointer user_data)
{
	*(GAsyncResult **)user_data = g_object_ref(res);
}

static gboolean
run_hook(Fixture *f, const gchar *name, const TkmsHookInput *in, gchar **reason, GError **error)
{
	g_autoptr(GAsyncResult) res = NULL;

	tkms_hook_run_async(&f->config, name, in, NULL, got_result, &res);
	while (res == NULL)
		g_main_context_iteration(NULL, TRUE);
	return tkms_hook_run_finish(res, reason, error);
}

static GBytes *
bytes(const gchar *s)
{
	return g_bytes_new(s, strlen(s));
}

static JsonObject *
parse_object(const gchar *text)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	JsonNode *root;

	json_parser_load_from_data(parser, text, -1, &error);
	g_assert_no_error(error);
	root = json_parser_get_root(parser);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
	return json_object_ref(json_node_get_object(root));
}

static const gchar *
line_value(gchar **lines, const gchar *prefix)
{
	for (guint i = 0; lines[i] != NULL; i++)
		if (g_str_has_prefix(lines[i], prefix))
			return lines[i] + strlen(prefix);
	return NULL;
}

/* The hook runs as the hook user with its groups, with the step as its only argument, in /,
 * with nothing but PATH and LANG in its environment, in a session of its own (no controlling
 * terminal), with no file of tkmsd's open, and gets the JSON object on its standard input. */
static void
test_environment(Fixture *f, gconstpointer data)
{
	/* a descriptor tkmsd has open without close-on-exec must not reach the hook */
	gint leaked = open("/dev/null", O_RDONLY);
	g_autoptr(GBytes) current = bytes("cur\"rent\\pass\x01word\n\xc3\xa9");
	g_autoptr(GBytes) pending = bytes("pending-password-1234");
	TkmsHookInput in = {.step = "set",
			    .owner = 1000,
			    .key = "db-app",
			    .current_version = 3,
			    .current = current,
			    .pending_version = 4,
			    .pending = pending};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reason = NULL;
	g_autofree gchar *meta = NULL;
	g_autofree gchar *input = NULL;
	g_autofree gchar *environ_text = NULL;
	g_autofree gchar *uid = g_strdup_printf("%u", (guint)f->pw->pw_uid);
	g_autofree gchar *gid = g_strdup_printf("%u", (guint)f->pw->pw_gid);
	g_auto(GStrv) lines = NULL;
	g_autoptr(JsonObject) obj = NULL;
	g_autofree gchar *fds = NULL;
	const gchar *sid, *pid, *tty_nr;

	g_assert_cmpint(leaked, >=, 0);
	write_hook(
		f, "record",
		"ls /proc/self/fd > OUT/fds 2>/dev/null\n"
		"{\n"
		"  echo \"uid=$(id -u)\"\n"
		"  echo \"euid=$(id -ru)\"\n"
		"  echo \"gid=$(id -g)\"\n"
		"  echo \"groups=$(id -G)\"\n"
		"  echo \"argc=$#\"\n"
		"  echo \"arg0=$0\"\n"
		"  echo \"arg1=$1\"\n"
		"  echo \"cwd=$(pwd)\"\n"
		"  echo \"pid=$$\"\n"
		"  echo \"sid=$(ps -o sid= -p $$ | tr -d ' ')\"\n"
		"  echo \"tty_nr=$(cut -d ' ' -f 7 /proc/$$/stat)\"\n"
		"  if (: < /dev/tty) 2>/dev/null; then echo devtty=yes; else echo devtty=no; fi\n"
		"  echo \"umask=$(umask)\"\n"
		"} > OUT/meta\n"
		"tr '\\0' '\\n' < /proc/$$/environ > OUT/environ\n"
		"cat > OUT/stdin\n");
	g_assert_true(run_hook(f, "record", &in, &reason, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(reason, ==, "");
	close(leaked);

	meta = read_out(f, "meta");
	g_test_message("%s", meta);
	lines = g_strsplit(meta, "\n", -1);
	g_assert_cmpstr(line_value(lines, "uid="), ==, uid);
	g_assert_cmpstr(line_value(lines, "euid="), ==, uid);
	g_assert_cmpstr(line_value(lines, "gid="), ==, gid);
	g_assert_cmpstr(line_value(lines, "groups="), ==, gid);
	g_assert_cmpstr(line_value(lines, "argc="), ==, "1");
	g_assert_true(g_str_has_suffix(line_value(lines, "arg0="), "/hooks/record"));
	g_assert_cmpstr(line_value(lines, "arg1="), ==, "set");
	g_assert_cmpstr(line_value(lines, "cwd="), ==, "/");
	g_assert_cmpstr(line_value(lines, "umask="), ==, "0077");
	/* a session leader without a controlling terminal */
	pid = line_value(lines, "pid=");
	sid = line_value(lines, "sid=");
	g_assert_nonnull(pid);
	g_assert_cmpstr(sid, ==, pid);
	g_assert_cmpint(getsid(0), !=, atoi(pid));
	tty_nr = line_value(lines, "tty_nr=");
	g_assert_cmpstr(tty_nr, ==, "0");
	g_assert_cmpstr(line_value(lines, "devtty="), ==, "no");

	/* 0, 1, 2, and the directory ls reads */
	fds = read_out(f, "fds");
	g_assert_cmpstr(fds, ==, "0\n1\n2\n3\n");

	environ_text = read_out(f, "environ");
	g_assert_cmpstr(environ_text, ==, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLANG=C.UTF-8\n");

	input = read_out(f, "stdin");
	g_assert_null(strstr(input, "\x01")); /* control characters are escaped */
	obj = parse_object(input);
	g_assert_cmpuint(json_object_get_size(obj), ==, 7);
	g_assert_cmpstr(json_object_get_string_member(obj, "step"), ==, "set");
	g_assert_cmpint(json_object_get_int_member(obj, "owner"), ==, 1000);
	g_assert_cmpstr(json_object_get_string_member(obj, "key"), ==, "db-app");
	g_assert_cmpint(json_object_get_int_member(obj, "current-version"), ==, 3);
	g_assert_cmpint(json_object_get_int_member(obj, "pending-version"), ==, 4);
	g_assert_cmpstr(json_object_get_string_member(obj, "current"), ==,
			"cur\"rent\\pass\x01word\n\xc3\xa9");
	g_assert_cmpstr(json_object_get_string_member(obj, "pending"), ==, "pending-password-1234");
}

/* At finish the switch is made: current and previous, no pending. */
static void
test_finish_input(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) current = bytes("new-current");
	g_autoptr(GBytes) previous = bytes("old-one");
	TkmsHookInput in = {.step = "finish",
			    .owner = 0,
			    .key = "k",
			    .current_version = 5,
			    .current = current,
			    .previous_version = 4,
			    .previous = previous};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *input = NULL;
	g_autoptr(JsonObject) obj = NULL;

	write_hook(f, "finish", "cat > OUT/stdin\necho \"$1\" > OUT/argv\n");
	g_assert_true(run_hook(f, "finish", &in, NULL, &error));
	g_assert_no_error(error);
	input = read_out(f, "stdin");
	obj = parse_object(input);
	g_assert_cmpuint(json_object_get_size(obj), ==, 7);
	g_assert_cmpstr(json_object_get_string_member(obj, "step"), ==, "finish");
	g_assert_cmpint(json_object_get_int_member(obj, "owner"), ==, 0);
	g_assert_cmpint(json_object_get_int_member(obj, "current-version"), ==, 5);
	g_assert_cmpint(json_object_get_int_member(obj, "previous-version"), ==, 4);
	g_assert_cmpstr(json_object_get_string_member(obj, "current"), ==, "new-current");
	g_assert_cmpstr(json_object_get_string_member(obj, "previous"), ==, "old-one");
	g_assert_false(json_object_has_member(obj, "pending"));
	g_assert_false(json_object_has_member(obj, "pending-version"));
	g_free(input);
	input = read_out(f, "argv");
	g_assert_cmpstr(input, ==, "finish\n");
}

/* Exit status and standard error: a status other than 0 is the error, stderr its reason;
 * every password in it, whole or cut off at the end, is masked. */
static void
test_failure_masked(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) current = bytes("CurrentSecret-9f8e7d");
	g_autoptr(GBytes) pending = bytes("PendingSecret\"quote");
	TkmsHookInput in = {.step = "test",
			    .owner = 1000,
			    .key = "db",
			    .current_version = 1,
			    .current = current,
			    .pending_version = 2,
			    .pending = pending};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reason = NULL;

	write_hook(f, "fails",
		   "echo 'login failed for CurrentSecret-9f8e7d and PendingSecret\"quote' >&2\n"
		   "cat >&2\n" /* its input, in which the quote is escaped */
		   "printf 'last words: PendingSec' >&2\n"
		   "exit 3\n");
	g_assert_false(run_hook(f, "fails", &in, &reason, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_test_message("%s", error->message);
	g_assert_nonnull(strstr(error->message, "exited with status 3"));
	g_assert_nonnull(strstr(error->message, "login failed for ******** and ********"));
	g_assert_nonnull(strstr(reason, "login failed for ******** and ********"));
	g_assert_nonnull(strstr(reason, "\"pending\": \"********\""));
	g_assert_true(g_str_has_suffix(reason, "last words: ********"));
	g_assert_null(strstr(reason, "Secret"));
	g_assert_null(strstr(error->message, "Secret"));
}

/* Only the first 4 KiB of standard error are kept, the rest is read and dropped (the hook
 * is not blocked by a full pipe); a password cut at the limit is masked too. */
static void
test_stderr_limit(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) pending = bytes("abcdefghij-PASSWORD-klmnopqrst");
	TkmsHookInput in = {
		.step = "set", .owner = 1, .key = "k", .pending_version = 1, .pending = pending};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reason = NULL;

	/* 4080 bytes, then the password across the 4096-byte limit, then 1 MiB more */
	write_hook(f, "chatty",
		   "head -c 4080 /dev/zero | tr '\\0' x >&2\n"
		   "printf 'abcdefghij-PASSWORD-klmnopqrst' >&2\n"
		   "head -c 1048576 /dev/zero | tr '\\0' y >&2\n"
		   "exit 0\n");
	g_assert_true(run_hook(f, "chatty", &in, &reason, &error));
	g_assert_no_error(error);
	g_assert_null(strstr(reason, "abcdefghij"));
	g_assert_null(strstr(reason, "y"));
	g_assert_true(g_str_has_suffix(reason, "xxxx********"));
	g_assert_cmpuint(strlen(reason), ==, 4080 + 8);
}

/* Killed by a signal, and a hook that never reads its input (tkmsd must not get SIGPIPE). */
static void
test_signal_and_no_read(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) pending = g_bytes_new_take(g_strnfill(200, 'p'), 200);
	TkmsHookInput in = {
		.step = "set", .owner = 1, .key = "k", .pending_version = 1, .pending = pending};
	g_autoptr(GError) error = NULL;

	write_hook(f, "killed", "kill -9 $$\n");
	g_assert_false(run_hook(f, "killed", &in, NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "killed by signal 9"));
	g_clear_error(&error);

	write_hook(f, "quick", "exec 0<&-\nexit 0\n");
	for (guint i = 0; i < 20; i++) {
		g_assert_true(run_hook(f, "quick", &in, NULL, &error));
		g_assert_no_error(error);
	}
}

static gboolean
process_gone(pid_t pid)
{
	g_autofree gchar *stat_path = g_strdup_printf("/proc/%d/stat", pid);
	g_autofree gchar *stat = NULL;

	if (!g_file_get_contents(stat_path, &stat, NULL, NULL))
		return TRUE;
	/* a zombie not yet reaped by init is gone too */
	return strstr(stat, ") Z ") != NULL;
}

/* Past the timeout the hook and everything it started (its process group) is killed. */
static void
test_timeout(Fixture *f, gconstpointer data)
{
	TkmsHookInput in = {.step = "set", .owner = 1, .key = "k"};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *child = NULL;
	gint64 start = g_get_monotonic_time();
	pid_t pid;

	f->config.timeout = 1;
	write_hook(f, "slow",
		   "sleep 300 &\n"
		   "echo $! > OUT/child\n"
		   "echo waiting >&2\n"
		   "sleep 300\n");
	g_assert_false(run_hook(f, "slow", &in, NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_test_message("%s", error->message);
	g_assert_nonnull(strstr(error->message, "timed out after 1 s"));
	g_assert_nonnull(strstr(error->message, "waiting"));
	g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
	child = read_out(f, "child");
	pid = atoi(child);
	g_assert_cmpint(pid, >, 1);
	for (guint i = 0; i < 200 && !process_gone(pid); i++)
		g_usleep(10000);
	g_assert_true(process_gone(pid));
}

/* A hook that exits while something it started runs on: that is killed too, and the run
 * ends at once, not at the timeout. */
static void
test_leftovers_killed(Fixture *f, gconstpointer data)
{
	TkmsHookInput in = {.step = "finish", .owner = 1, .key = "k"};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *child = NULL;
	gint64 start = g_get_monotonic_time();
	pid_t pid;

	write_hook(f, "leaves", "sleep 300 &\necho $! > OUT/child\nexit 0\n");
	g_assert_true(run_hook(f, "leaves", &in, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
	child = read_out(f, "child");
	pid = atoi(child);
	for (guint i = 0; i < 200 && !process_gone(pid); i++)
		g_usleep(10000);
	g_assert_true(process_gone(pid));
}

static void
assert_refused(Fixture *f, const gchar *name, const gchar *why)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(tkms_hook_check(&f->config, name, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
	g_test_message("%s: %s", name, error->message);
	g_assert_nonnull(strstr(error->message, why));
}

/* tkms_hook_check: names, and only hooks only root can change. A refused hook is not run. */
static void
test_check(Fixture *f, gconstpointer data)
{
	g_autofree gchar *path = NULL;
	g_autofree gchar *target = NULL;
	g_autofree gchar *open_dir = NULL;
	g_autoptr(GError) error = NULL;
	TkmsHookInput in = {.step = "set", .owner = 1, .key = "k"};

	write_hook(f, "good", "exit 0\n");
	g_assert_true(tkms_hook_check(&f->config, "good", &error));
	g_assert_no_error(error);

	assert_refused(f, "../hooks/good", "not a hook name");
	assert_refused(f, "..", "not a hook name");
	assert_refused(f, ".", "not a hook name");
	assert_refused(f, "a/b", "not a hook name");
	assert_refused(f, "/bin/true", "not a hook name");
	assert_refused(f, "", "not a hook name");
	assert_refused(f, ".hidden", "not a hook name");
	assert_refused(f, "sp ace", "not a hook name");
	assert_refused(f, "missing", "There is no hook");

	/* the file: owner, mode, type */
	write_hook(f, "theirs", "exit 0\n");
	path = g_build_filename(f->hooks, "theirs", NULL);
	g_assert_cmpint(chown(path, f->pw->pw_uid, 0), ==, 0);
	assert_refused(f, "theirs", "not root");
	g_clear_pointer(&path, g_free);
	write_hook(f, "writable", "exit 0\n");
	path = g_build_filename(f->hooks, "writable", NULL);
	g_assert_cmpint(chmod(path, 0775), ==, 0);
	assert_refused(f, "writable", "writable by group or others");
	g_assert_cmpint(chmod(path, 0757), ==, 0);
	assert_refused(f, "writable", "writable by group or others");
	g_clear_pointer(&path, g_free);
	write_hook(f, "noexec", "exit 0\n");
	path = g_build_filename(f->hooks, "noexec", NULL);
	g_assert_cmpint(chmod(path, 0644), ==, 0);
	assert_refused(f, "noexec", "not executable");
	g_clear_pointer(&path, g_free);
	path = g_build_filename(f->hooks, "link", NULL);
	target = g_build_filename(f->hooks, "good", NULL);
	g_assert_cmpint(symlink(target, path), ==, 0);
	assert_refused(f, "link", "symbolic link");
	g_clear_pointer(&path, g_free);
	path = g_build_filename(f->hooks, "subdir", NULL);
	g_assert_cmpint(g_mkdir(path, 0755), ==, 0);
	assert_refused(f, "subdir", "not a regular file");

	/* the directory */
	g_assert_cmpint(chmod(f->hooks, 0777), ==, 0);
	assert_refused(f, "good", "writable by group or others");
	/* a refused hook does not run */
	g_assert_false(run_hook(f, "good", &in, NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "writable by group or others"));
	g_clear_error(&error);
	g_assert_cmpint(chmod(f->hooks, 01777), ==, 0);
	assert_refused(f, "good", "writable by group or others");
	g_assert_cmpint(chmod(f->hooks, 0755), ==, 0);
	g_assert_cmpint(chown(f->hooks, f->pw->pw_uid, 0), ==, 0);
	assert_refused(f, "good", "not root");
	g_assert_cmpint(chown(f->hooks, 0, 0), ==, 0);
	/* a directory above it that others can change */
	g_assert_cmpint(chmod(f->base, 0777), ==, 0);
	assert_refused(f, "good", "writable by group or others");
	g_assert_cmpint(chmod(f->base, 0755), ==, 0);
	g_assert_true(tkms_hook_check(&f->config, "good", &error));
	g_assert_no_error(error);
	open_dir = g_build_filename(f->base, "nope", NULL);
	f->config.directory = open_dir;
	assert_refused(f, "good", "cannot be read");
	f->config.directory = "hooks";
	assert_refused(f, "good", "absolute path");
}

/* A hook user that does not exist: the run fails before anything is started. */
static void
test_bad_user(Fixture *f, gconstpointer data)
{
	TkmsHookInput in = {.step = "set", .owner = 1, .key = "k"};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *ran = g_build_filename(f->out, "ran", NULL);

	write_hook(f, "ok", "touch OUT/ran\n");
	f->config.user = NO_USER;
	tkms_hook_launcher_set_default(no_user_launcher);
	g_assert_false(run_hook(f, "ok", &in, NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, NO_USER));
	g_assert_false(g_file_test(ran, G_FILE_TEST_EXISTS));
}

/* The launcher does not take tkmsd's word for a hook: asked directly (as a compromised tkmsd
 * could), it checks the name and the hook again with its own directory, and runs nothing it
 * refuses. */
static void
launcher_run(const gchar *name, const gchar *step, TkmsHookLauncherResult **result, GError **error)
{
	g_autoptr(GAsyncResult) res = NULL;
	static const gchar input[] = "{}\n";

	tkms_hook_launcher_run_async(launcher, name, step, 5, (const guint8 *)input, strlen(input),
				     NULL, got_result, &res);
	while (res == NULL)
		g_main_context_iteration(NULL, TRUE);
	*result = tkms_hook_launcher_run_finish(launcher, res, error);
}

static void
assert_launcher_refuses(Fixture *f, const gchar *name, const gchar *why)
{
	g_autoptr(TkmsHookLauncherResult) r = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *text = NULL;
	g_autofree gchar *ran = g_build_filename(f->out, "ran", NULL);
	gsize len;
	const gchar *data;

	launcher_run(name, "set", &r, &error);
	g_assert_no_error(error);
	g_assert_nonnull(r);
	data = g_bytes_get_data(r->output, &len);
	text = g_strndup(data, len);
	g_test_message("%s: %s", name, text);
	g_assert_cmpint(r->outcome, ==, TKMS_HOOK_WIRE_NOT_RUN);
	g_assert_nonnull(strstr(text, why));
	g_assert_false(g_file_test(ran, G_FILE_TEST_EXISTS));
}

static void
test_launcher_checks_again(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsHookLauncherResult) r = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *theirs = NULL;
	g_autofree gchar *ran = g_build_filename(f->out, "ran", NULL);

	write_hook(f, "good", "touch OUT/ran\n");
	write_hook(f, "theirs", "touch OUT/ran\n");
	theirs = g_build_filename(f->hooks, "theirs", NULL);
	g_assert_cmpint(chown(theirs, f->pw->pw_uid, 0), ==, 0);

	assert_launcher_refuses(f, "../hooks/good", "not a hook name");
	assert_launcher_refuses(f, ".", "not a hook name");
	assert_launcher_refuses(f, "theirs", "not root");
	g_assert_cmpint(chmod(f->hooks, 0777), ==, 0);
	assert_launcher_refuses(f, "good", "writable by group or others");
	g_assert_cmpint(chmod(f->hooks, 0755), ==, 0);

	/* and no step but the four */
	launcher_run("good", "install", &r, &error);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_assert_null(r);
	g_assert_false(g_file_test(ran, G_FILE_TEST_EXISTS));
	g_clear_error(&error);

	launcher_run("good", "rollback", &r, &error);
	g_assert_no_error(error);
	g_assert_cmpint(r->outcome, ==, TKMS_HOOK_WIRE_ENDED);
	g_assert_true(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0);
	g_assert_true(g_file_test(ran, G_FILE_TEST_EXISTS));
}

/* The launcher runs the hooks of the directory and user it was started with: a run for
 * another configuration fails and runs nothing. */
static void
test_config_mismatch(Fixture *f, gconstpointer data)
{
	TkmsHookInput in = {.step = "set", .owner = 1, .key = "k"};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *other = g_build_filename(f->base, "other", NULL);
	g_autofree gchar *hook = g_build_filename(other, "ok", NULL);
	g_autofree gchar *ran = g_build_filename(f->out, "ran", NULL);
	g_autofree gchar *text = g_strdup_printf("#!/bin/sh\ntouch %s\n", ran);

	g_assert_cmpint(g_mkdir(other, 0755), ==, 0);
	g_assert_true(g_file_set_contents(hook, text, -1, NULL));
	g_assert_cmpint(chmod(hook, 0755), ==, 0);
	f->config.directory = other;
	g_assert_false(run_hook(f, "ok", &in, NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_test_message("%s", error->message);
	g_assert_nonnull(strstr(error->message, "restart tkmsd"));
	g_assert_false(g_file_test(ran, G_FILE_TEST_EXISTS));
	g_unlink(hook);
	g_rmdir(other);
}

/* A launcher that dies (kill -9): the hook it was running dies with it and that run fails,
 * saying so; so does every later run. The process that asked goes on. */
static void
test_launcher_gone(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) pending = bytes("pending-password");
	TkmsHookInput in = {
		.step = "set", .owner = 1, .key = "k", .pending_version = 1, .pending = pending};
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *started = g_build_filename(f->out, "started", NULL);
	g_autofree gchar *child = NULL;
	gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	pid_t pid;

	tkms_hook_launcher_set_default(doomed_launcher);
	write_hook(f, "slow",
		   "echo $$ > OUT/started.tmp\nmv OUT/started.tmp OUT/started\n"
		   "exec sleep 300\n");
	tkms_hook_run_async(&f->config, "slow", &in, NULL, got_result, &res);
	while (!g_file_test(started, G_FILE_TEST_EXISTS) && g_get_monotonic_time() < end) {
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(10000);
	}
	g_assert_true(g_file_test(started, G_FILE_TEST_EXISTS));
	child = read_out(f, "started");
	pid = atoi(child);
	g_assert_cmpint(pid, >, 1);

	/* said once */
	g_test_expect_message("tkms-hook-launcher", G_LOG_LEVEL_WARNING,
			      "The hook launcher (pid *) was killed by signal 9: *");
	g_assert_cmpint(kill(tkms_hook_launcher_get_pid(doomed_launcher), SIGKILL), ==, 0);
	while (res == NULL)
		g_main_context_iteration(NULL, TRUE);
	g_test_assert_expected_messages();
	g_assert_false(tkms_hook_run_finish(res, NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_test_message("%s", error->message);
	g_assert_nonnull(strstr(error->message, "The hook \"slow\" set could not be run: "
						"The hook launcher"));
	g_assert_nonnull(strstr(error->message, "killed by signal 9"));
	g_assert_nonnull(strstr(error->message, "until tkmsd is restarted"));
	g_assert_false(tkms_hook_launcher_is_running(doomed_launcher));
	for (guint i = 0; i < 200 && !process_gone(pid); i++)
		g_usleep(10000);
	g_assert_true(process_gone(pid));

	g_clear_error(&error);
	write_hook(f, "ok", "touch OUT/ran\n");
	g_assert_false(run_hook(f, "ok", &in, NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "killed by signal 9"));
}

static TkmsHookLauncher *
start_launcher(const gchar *user)
{
	TkmsHookConfig config = {.directory = hooks_dir, .user = user, .timeout = 10};
	g_autoptr(GError) error = NULL;
	TkmsHookLauncher *l = tkms_hook_launcher_start(&config, &error);

	g_assert_no_error(error);
	return l;
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	struct passwd *pw;
	int ret;

	g_test_init(&argc, &argv, NULL);
	if (geteuid() != 0) {
		g_printerr("test-hook switches to the user %s: it needs root\n", HOOK_USER);
		return 77;
	}
	pw = getpwnam(HOOK_USER);
	if (pw == NULL) {
		g_printerr("no user %s\n", HOOK_USER);
		return 77;
	}
	base_dir = g_dir_make_tmp("tkms-hook-XXXXXX", &error);
	g_assert_no_error(error);
	g_assert_cmpint(chmod(base_dir, 0755), ==, 0);
	hooks_dir = g_build_filename(base_dir, "hooks", NULL);
	out_dir = g_build_filename(base_dir, "out", NULL);
	g_assert_cmpint(g_mkdir(hooks_dir, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(out_dir, 0700), ==, 0);
	g_assert_cmpint(chown(out_dir, pw->pw_uid, pw->pw_gid), ==, 0);
	/* forked while this process has one thread, as tkmsd does */
	launcher = start_launcher(HOOK_USER);
	no_user_launcher = start_launcher(NO_USER);
	doomed_launcher = start_launcher(HOOK_USER);
	tkms_hook_launcher_set_default(launcher);

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD("/hook/environment", test_environment);
	ADD("/hook/finish-input", test_finish_input);
	ADD("/hook/failure-masked", test_failure_masked);
	ADD("/hook/stderr-limit", test_stderr_limit);
	ADD("/hook/signal-and-no-read", test_signal_and_no_read);
	ADD("/hook/timeout", test_timeout);
	ADD("/hook/leftovers-killed", test_leftovers_killed);
	ADD("/hook/check", test_check);
	ADD("/hook/bad-user", test_bad_user);
	ADD("/hook/launcher-checks-again", test_launcher_checks_again);
	ADD("/hook/config-mismatch", test_config_mismatch);
	ADD("/hook/launcher-gone", test_launcher_gone);
	ret = g_test_run();

	tkms_hook_launcher_set_default(NULL);
	g_clear_object(&launcher);
	g_clear_object(&no_user_launcher);
	g_clear_object(&doomed_launcher);
	if (g_getenv("TKMS_TEST_KEEP") == NULL)
		remove_tree(base_dir, TRUE);
	return ret;
}
