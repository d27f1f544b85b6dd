/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-password-pg"

/* Issue 8 end to end: tkmsd rotates the password of a real PostgreSQL role (a private cluster,
 * tests/tkms-test-postgres.h) through the shipped hook (data/hooks/postgresql) run as nobody
 * from a root-owned hook directory. A password key holds the role's password (imported), its
 * policy names the hook, and:
 *   - 20 rotations: after each, the role logs in with GetSecret(current) and not with the
 *     previous password, which GetSecret(previous) returns;
 *   - kill -9 of tkmsd while a step's hook runs (set, test, finish): the restarted tkmsd
 *     resumes at that step and the rotation ends with the role on the new current password;
 *   - a hook that fails at set, at test, or is killed (after the real hook did its work): the
 *     rollback restores the role's password, the pending version is discarded, and the role
 *     logs in with the unchanged current password and not with the discarded one;
 *   - no password appears in the server's files or log (every statement logged), tkmsd's log
 *     or its state directory.
 * The failures use pg-wrapper, a script in the hook directory that runs the real hook and
 * then does what marker files say (block, fail, kill itself), and notes each step it ran. */

#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tkms-test-env.h"
#include "tkms-test-postgres.h"
#include "tkms-test-util.h"

#define NOBODY 65534
#define KEY "db-app"
#define ROLE "app"
#define ROTATIONS 20
#define ROTATION_TIMEOUT_S 120
#define E_BUSY "org.tkms.KeyManager.Error.Busy"
#define E_NOT_FOUND "org.tkms.KeyManager.Error.NotFound"

static TkmsTestEnv *env;
static TkmsTestPostgres *pg;
static gchar *hook_dir;
static gchar *markers_dir; /* root's: what pg-wrapper is told */
static gchar *notify_dir;  /* nobody's: what pg-wrapper tells */
/* every password the test saw */
static GPtrArray *seen;

/* pg-wrapper: @HOOK@ the real hook, @MARKERS@ and @NOTIFY@ the directories. */
static const gchar wrapper_template[] =
    "#!/bin/sh\n"
    "# test-password-pg: the PostgreSQL hook, then what the marker files say\n"
    "@HOOK@ \"$1\"\n"
    "rc=$?\n"
    "echo \"$1 $rc\" >>@NOTIFY@/steps\n"
    "if [ -e @MARKERS@/block-\"$1\" ]; then\n"
    "\t: >@NOTIFY@/blocked-\"$1\"\n"
    "\twhile [ -e @MARKERS@/block-\"$1\" ]; do sleep 0.05; done\n"
    "fi\n"
    "if [ -e @MARKERS@/fail-\"$1\" ]; then\n"
    "\techo \"test wrapper: told to fail at $1\" >&2\n"
    "\texit 1\n"
    "fi\n"
    "[ -e @MARKERS@/kill-\"$1\" ] && kill -9 $$\n"
    "exit $rc\n";

/* ---------------------------------------------------------------------------------------- */
/* Calls                                                                                     */

static GVariant *call(const gchar *method, GVariant *params, const gchar *reply, GError **error)
{
	return g_dbus_connection_call_sync(tkms_test_env_get_connection(env), "org.tkms.KeyManager",
	                                   "/org/tkms/KeyManager", "org.tkms.KeyManager", method,
	                                   params, reply ? G_VARIANT_TYPE(reply) : NULL,
	                                   G_DBUS_CALL_FLAGS_NONE, 60000, NULL, error);
}

static void call_ok(const gchar *method, GVariant *params)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call(method, params, NULL, &error);

	g_assert_no_error(error);
}

static void remember(const gchar *password)
{
	for (guint i = 0; i < seen->len; i++)
		if (g_str_equal(g_ptr_array_index(seen, i), password))
			return;
	g_ptr_array_add(seen, g_strdup(password));
}

/* GetSecret that must succeed: the password as a string. */
static gchar *get_secret(const gchar *stage)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r =
	    call("GetSecret", g_variant_new("(ss)", KEY, stage), "(ay)", &error);
	g_autoptr(GVariant) bytes = NULL;
	const gchar *data;
	gsize len = 0;
	gchar *password;

	g_assert_no_error(error);
	bytes = g_variant_get_child_value(r, 0);
	data = g_variant_get_fixed_array(bytes, &len, 1);
	g_assert_cmpuint(len, >, 0);
	g_assert_null(memchr(data, '\0', len));
	password = g_strndup(data, len);
	remember(password);
	return password;
}

static void assert_no_secret(const gchar *stage)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r =
	    call("GetSecret", g_variant_new("(ss)", KEY, stage), "(ay)", &error);
	g_autofree gchar *remote = NULL;

	g_assert_null(r);
	g_assert_nonnull(error);
	remote = g_dbus_error_get_remote_error(error);
	g_assert_cmpstr(remote, ==, E_NOT_FOUND);
}

static GVariant *key_info(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call("GetKeyInfo", g_variant_new("(s)", KEY), "(a{sv})", &error);

	g_assert_no_error(error);
	return g_variant_get_child_value(r, 0);
}

/* The state and stage of a version. */
static void version_info(guint32 version, gchar **state, gchar **stage)
{
	g_autoptr(GVariant) info = key_info();
	g_autoptr(GVariant) versions =
	    g_variant_lookup_value(info, "versions", G_VARIANT_TYPE("aa{sv}"));

	g_assert_nonnull(versions);
	for (gsize i = 0; i < g_variant_n_children(versions); i++) {
		g_autoptr(GVariant) v = g_variant_get_child_value(versions, i);
		guint32 n = 0;

		g_assert_true(g_variant_lookup(v, "version", "u", &n));
		if (n != version)
			continue;
		g_assert_true(g_variant_lookup(v, "state", "s", state));
		if (!g_variant_lookup(v, "stage", "s", stage))
			*stage = NULL;
		return;
	}
	g_error("key %s has no version %u", KEY, version);
}

/* The version of the rotation under way, or 0. */
static guint32 rotation_running(void)
{
	g_autoptr(GVariant) info = key_info();
	g_autoptr(GVariant) rotation =
	    g_variant_lookup_value(info, "rotation", G_VARIANT_TYPE_VARDICT);
	guint32 version = 0;

	if (rotation == NULL)
		return 0;
	g_assert_true(g_variant_lookup(rotation, "version", "u", &version));
	g_assert_cmpuint(version, >, 0);
	return version;
}

/* RotateKey: the pending version. A rotation that tkmsd started by itself (the retry of a
 * failed one) makes it Busy: that one is then the rotation under test. */
static guint32 rotate(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call("RotateKey", g_variant_new("(s)", KEY), "(u)", &error);
	guint32 version = 0;

	if (r == NULL) {
		g_autofree gchar *remote = g_dbus_error_get_remote_error(error);
		g_test_message("RotateKey: %s", error->message);
		g_assert_cmpstr(remote, ==, E_BUSY);
		version = rotation_running();
		g_assert_cmpuint(version, >, 0);
		return version;
	}
	g_variant_get(r, "(u)", &version);
	return version;
}

/* Waits until the rotation of version has ended; returns last-rotation. */
static GVariant *wait_rotation_end(guint32 version)
{
	gint64 deadline = g_get_monotonic_time() + ROTATION_TIMEOUT_S * G_USEC_PER_SEC;

	for (;;) {
		g_autoptr(GVariant) info = key_info();
		g_autoptr(GVariant) rotation =
		    g_variant_lookup_value(info, "rotation", G_VARIANT_TYPE_VARDICT);
		GVariant *last;
		guint32 last_version = 0;

		if (rotation == NULL) {
			last =
			    g_variant_lookup_value(info, "last-rotation", G_VARIANT_TYPE_VARDICT);
			g_assert_nonnull(last);
			g_assert_true(g_variant_lookup(last, "version", "u", &last_version));
			g_assert_cmpuint(last_version, ==, version);
			return last;
		}
		if (g_get_monotonic_time() > deadline) {
			g_autofree gchar *text = g_variant_print(rotation, FALSE);
			g_error("the rotation of version %u has not ended after %d s: %s", version,
			        ROTATION_TIMEOUT_S, text);
		}
		g_usleep(50000);
	}
}

static void assert_last_rotation(GVariant *last, const gchar *result, const gchar *step,
                                 const gchar *reason_says)
{
	const gchar *r = NULL, *s = NULL, *reason = "";
	g_autofree gchar *text = g_variant_print(last, FALSE);

	g_test_message("last-rotation: %s", text);
	g_assert_true(g_variant_lookup(last, "result", "&s", &r));
	g_assert_cmpstr(r, ==, result);
	g_assert_true(g_variant_lookup(last, "step", "&s", &s));
	g_assert_cmpstr(s, ==, step);
	g_variant_lookup(last, "reason", "&s", &reason);
	if (reason_says != NULL && strstr(reason, reason_says) == NULL)
		g_error("last-rotation.reason does not say \"%s\": %s", reason_says, reason);
	if (g_str_equal(result, "failed"))
		g_assert_true(g_variant_lookup(last, "next-retry", "t", NULL));
}

static void set_hook(const gchar *hook)
{
	g_auto(GVariantBuilder) policy = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);

	g_variant_builder_add(&policy, "{sv}", "hook", g_variant_new_string(hook));
	call_ok("SetRotationPolicy", g_variant_new("(sa{sv})", KEY, &policy));
}

/* ---------------------------------------------------------------------------------------- */
/* The role, and pg-wrapper's files                                                          */

static gboolean can_login(const gchar *password)
{
	g_autoptr(GError) error = NULL;
	gboolean ok = tkms_test_postgres_can_login(pg, ROLE, password, &error);

	g_assert_no_error(error);
	return ok;
}

/* The role logs in with GetSecret(current), which is expected (if not NULL), and not with
 * not_password (if not NULL). */
static void assert_role_on_current(const gchar *expected, const gchar *not_password)
{
	g_autofree gchar *current = get_secret("current");

	if (expected != NULL)
		g_assert_cmpstr(current, ==, expected);
	g_assert_true(can_login(current));
	if (not_password != NULL) {
		g_assert_cmpstr(current, !=, not_password);
		g_assert_false(can_login(not_password));
	}
}

static void set_marker(const gchar *name, gboolean on)
{
	g_autofree gchar *path = g_build_filename(markers_dir, name, NULL);
	g_autoptr(GError) error = NULL;

	if (on) {
		g_file_set_contents(path, "", 0, &error);
		g_assert_no_error(error);
	} else {
		g_assert_true(g_unlink(path) == 0 || errno == ENOENT);
	}
}

/* The steps pg-wrapper ran since the last call ("set 0\ntest 0\n..."). */
static gchar *take_steps(void)
{
	g_autofree gchar *path = g_build_filename(notify_dir, "steps", NULL);
	gchar *steps = NULL;

	if (!g_file_get_contents(path, &steps, NULL, NULL))
		return g_strdup("");
	g_assert_cmpint(g_unlink(path), ==, 0);
	return steps;
}

/* Waits until pg-wrapper blocks at step. */
static void wait_blocked(const gchar *step)
{
	g_autofree gchar *name = g_strdup_printf("blocked-%s", step);
	g_autofree gchar *path = g_build_filename(notify_dir, name, NULL);
	gint64 deadline = g_get_monotonic_time() + ROTATION_TIMEOUT_S * G_USEC_PER_SEC;

	while (!g_file_test(path, G_FILE_TEST_EXISTS)) {
		if (g_get_monotonic_time() > deadline)
			g_error("the hook never blocked at %s; its steps: %s", step, take_steps());
		g_usleep(20000);
	}
	g_assert_cmpint(g_unlink(path), ==, 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                     */

/* 20 rotations through the hook: each switch is seen by the server. */
static void test_rotations(void)
{
	for (guint i = 0; i < ROTATIONS; i++) {
		g_autofree gchar *before = get_secret("current");
		g_autofree gchar *previous = NULL;
		g_autofree gchar *state = NULL;
		g_autofree gchar *stage = NULL;
		g_autoptr(GVariant) last = NULL;
		guint32 version = rotate();
		guint32 primary = 0;

		last = wait_rotation_end(version);
		assert_last_rotation(last, "ok", "finish", NULL);
		assert_role_on_current(NULL, before);
		previous = get_secret("previous");
		g_assert_cmpstr(previous, ==, before);
		{
			g_autoptr(GVariant) info = key_info();
			g_assert_true(g_variant_lookup(info, "primary-version", "u", &primary));
		}
		g_assert_cmpuint(primary, ==, version);
		version_info(version, &state, &stage);
		g_assert_cmpstr(state, ==, "active");
		g_assert_cmpstr(stage, ==, "current");
		assert_no_secret("pending");
	}
}

/* kill -9 of tkmsd while the hook runs step: the restarted tkmsd runs that step again and the
 * rotation ends with the role on the new password. */
static void kill_daemon_at(const gchar *step, const gchar *expected_steps)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *marker = g_strdup_printf("block-%s", step);
	g_autofree gchar *before = get_secret("current");
	g_autofree gchar *pending = NULL;
	g_autofree gchar *steps = NULL;
	g_autofree gchar *previous = NULL;
	g_autoptr(GVariant) last = NULL;
	guint32 version;
	gint pid;

	g_test_message("kill -9 of tkmsd while the hook runs %s", step);
	g_free(take_steps());
	set_marker(marker, TRUE);
	version = rotate();
	wait_blocked(step);
	/* at finish the switch is made: the pending password is the current one */
	pending = get_secret(g_str_equal(step, "finish") ? "current" : "pending");
	g_assert_cmpstr(pending, !=, before);

	pid = tkms_test_env_get_daemon_pid(env);
	g_assert_cmpint(pid, >, 0);
	g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
	while (tkms_test_env_daemon_is_running(env))
		g_usleep(10000);
	set_marker(marker, FALSE);
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);

	last = wait_rotation_end(version);
	assert_last_rotation(last, "ok", "finish", NULL);
	steps = take_steps();
	g_assert_cmpstr(steps, ==, expected_steps);
	assert_role_on_current(pending, before);
	previous = get_secret("previous");
	g_assert_cmpstr(previous, ==, before);
}

static void test_tkmsd_killed(void)
{
	set_hook("pg-wrapper");
	kill_daemon_at("set", "set 0\nset 0\ntest 0\nfinish 0\n");
	kill_daemon_at("test", "set 0\ntest 0\ntest 0\nfinish 0\n");
	kill_daemon_at("finish", "set 0\ntest 0\nfinish 0\nfinish 0\n");
}

/* The hook applies the pending password (the real hook runs), then fails at step (exit 1) or
 * is killed: rollback puts the current password back on the role. */
static void fail_at(const gchar *step, const gchar *how, const gchar *reason_says,
                    const gchar *expected_steps)
{
	g_autofree gchar *block = g_strdup_printf("block-%s", step);
	g_autofree gchar *fail = g_strdup_printf("%s-%s", how, step);
	g_autofree gchar *before = get_secret("current");
	g_autofree gchar *pending = NULL;
	g_autofree gchar *steps = NULL;
	g_autofree gchar *state = NULL;
	g_autofree gchar *stage = NULL;
	g_autoptr(GVariant) last = NULL;
	guint32 version;

	g_test_message("the hook: %s at %s", how, step);
	g_free(take_steps());
	set_marker(block, TRUE);
	set_marker(fail, TRUE);
	version = rotate();
	wait_blocked(step);
	pending = get_secret("pending");
	/* the real hook did its work: the server has the pending password now */
	g_assert_true(can_login(pending));
	g_assert_false(can_login(before));
	set_marker(block, FALSE);

	last = wait_rotation_end(version);
	set_marker(fail, FALSE);
	assert_last_rotation(last, "failed", step, reason_says);
	steps = take_steps();
	g_assert_cmpstr(steps, ==, expected_steps);
	assert_role_on_current(before, pending);
	assert_no_secret("pending");
	version_info(version, &state, &stage);
	g_assert_cmpstr(state, ==, "destroyed");
	g_assert_null(stage);
}

static void test_hook_fails(void)
{
	set_hook("pg-wrapper");
	fail_at("set", "fail", "told to fail at set", "set 0\nrollback 0\n");
	fail_at("test", "fail", "told to fail at test", "set 0\ntest 0\nrollback 0\n");
	fail_at("set", "kill", "killed by signal 9", "set 0\nrollback 0\n");
}

/* No password in the server's files and log, tkmsd's log or its state directory. */
static void test_no_plaintext(void)
{
	g_autofree gchar *where = NULL;
	g_autofree gchar *daemon_log = tkms_test_env_get_daemon_log(env);
	const gchar *state_dir = tkms_test_env_get_state_dir(env);
	g_autoptr(GDir) dir = NULL;
	const gchar *entry;
	gboolean found;

	g_assert_cmpuint(seen->len, >, ROTATIONS);
	g_ptr_array_add(seen, NULL);
	found = tkms_test_postgres_files_contain(pg, (const gchar *const *)seen->pdata, &where);
	g_ptr_array_remove_index(seen, seen->len - 1);
	if (found)
		g_error("a password is in the cluster's %s", where);

	dir = g_dir_open(state_dir, 0, NULL);
	g_assert_nonnull(dir);
	while ((entry = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(state_dir, entry, NULL);
		g_autofree gchar *contents = NULL;
		gsize len = 0;

		if (!g_file_test(path, G_FILE_TEST_IS_REGULAR) ||
		    !g_file_get_contents(path, &contents, &len, NULL))
			continue;
		for (guint i = 0; i < seen->len; i++) {
			const gchar *password = g_ptr_array_index(seen, i);
			g_assert_null(memmem(contents, len, password, strlen(password)));
		}
	}
	for (guint i = 0; i < seen->len; i++)
		g_assert_null(strstr(daemon_log, g_ptr_array_index(seen, i)));
}

/* ---------------------------------------------------------------------------------------- */

static gchar *make_dir(const gchar *parent, const gchar *name, uid_t uid)
{
	gchar *path = g_build_filename(parent, name, NULL);

	g_assert_cmpint(g_mkdir(path, 0755), ==, 0);
	g_assert_cmpint(chmod(path, 0755), ==, 0);
	g_assert_cmpint(chown(path, uid, uid), ==, 0);
	return path;
}

static void write_wrapper(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *path = g_build_filename(hook_dir, "pg-wrapper", NULL);
	g_autofree gchar *real = g_build_filename(hook_dir, "postgresql", NULL);
	g_autoptr(GString) script = g_string_new(wrapper_template);

	g_string_replace(script, "@HOOK@", real, 0);
	g_string_replace(script, "@MARKERS@", markers_dir, 0);
	g_string_replace(script, "@NOTIFY@", notify_dir, 0);
	g_file_set_contents_full(path, script->str, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0755,
	                         &error);
	g_assert_no_error(error);
	g_assert_cmpint(chmod(path, 0755), ==, 0);
}

int main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *tmp_dir = NULL;
	g_autofree gchar *pg_dir = NULL;
	g_autofree gchar *config = NULL;
	g_autofree gchar *hook = NULL;
	g_autofree gchar *initial = NULL;
	gboolean keep = g_strcmp0(g_getenv("TKMS_TEST_KEEP"), "1") == 0;
	int ret;

	g_test_init(&argc, &argv, NULL);
	tmp_dir = tkms_test_make_tmp_dir(keep, &error);
	if (tmp_dir == NULL)
		tkms_test_exit_on_error("cannot make a temporary directory", error);
	pg_dir = g_build_filename(tmp_dir, "pg", NULL);
	pg = tkms_test_postgres_new_or_abort(pg_dir);

	/* the hook directory: root's, 0755, with the hook, its configuration and the admin's
	 * password file (readable by nobody's group, writable by no one but root) */
	hook_dir = g_build_filename(tmp_dir, "hooks", NULL);
	hook = tkms_test_postgres_setup_hook_dir(pg, hook_dir, NOBODY, &error);
	if (hook == NULL || !tkms_test_postgres_write_hook_config(
	                        pg, hook_dir, "[system:" KEY "]\nrole = " ROLE "\n", &error))
		tkms_test_exit_on_error("cannot set up the hook directory", error);
	markers_dir = make_dir(tmp_dir, "markers", 0);
	notify_dir = make_dir(tmp_dir, "notify", NOBODY);
	write_wrapper();

	seen = g_ptr_array_new_with_free_func(g_free);
	initial = g_strdup("initial-Password:of'the\\role");
	remember(initial);
	if (!tkms_test_postgres_create_role(pg, ROLE, initial, NULL, &error))
		tkms_test_exit_on_error("cannot create the role", error);

	config = g_strdup_printf("[passwords]\n"
	                         "HookDirectory=%s\n"
	                         "HookUser=nobody\n"
	                         "HookTimeout=60\n",
	                         hook_dir);
	env = tkms_test_env_new_or_abort(config);

	/* the key of the role's password: its present password imported, the hook named */
	{
		g_autoptr(GVariant) info =
		    tkms_test_create_key(tkms_test_env_get_client(env), KEY, "password", NULL);
		g_autoptr(GVariant) r = NULL;
		g_autofree gchar *current = NULL;

		r = call("ImportSecret",
		         g_variant_new("(s@ay)", KEY,
		                       g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, initial,
		                                                 strlen(initial), 1)),
		         "(u)", &error);
		if (r == NULL)
			tkms_test_exit_on_error("ImportSecret", error);
		set_hook("postgresql");
		current = get_secret("current");
		g_assert_cmpstr(current, ==, initial);
		g_assert_true(can_login(current));
	}

	g_test_add_func("/password-pg/rotations", test_rotations);
	g_test_add_func("/password-pg/tkmsd-killed", test_tkmsd_killed);
	/* last of the rotations: the retries of failed ones fall due 60 s later */
	g_test_add_func("/password-pg/hook-fails", test_hook_fails);
	g_test_add_func("/password-pg/no-plaintext", test_no_plaintext);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);

	tkms_test_env_free(env);
	tkms_test_postgres_free(pg);
	tkms_test_remove_tmp_dir(tmp_dir, keep);
	g_ptr_array_unref(seen);
	g_free(hook_dir);
	g_free(markers_dir);
	g_free(notify_dir);
	return ret;
}
