/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-password-rotation"

/* The rotation of password keys (issue 8, "Rotation with hooks") against tkmsd on swtpm: with
 * and without a hook, every way a hook can fail (status, kill, timeout), the rollback and its
 * retry by the scheduler, Busy while a rotation waits, a kill -9 of tkmsd in each step and
 * the resumption, who may set a hook, and no password in the audit log or tkmsd's log.
 *
 * The hook is one Python script in a root-owned 0755 directory (HookDirectory): it records
 * each step and its JSON input in out/KEY.log (out/ belongs to the hook user, nobody) and
 * does what ctl/KEY.STEP says: fail, fail-once, kill (itself, with signal 9), sleep (past the
 * timeout), wait (until ctl/KEY.STEP.go exists; out/KEY.STEP.waiting says it waits), or
 * wait-once (waits only on its first run). */

#include <json-glib/json-glib.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "tkms-test-env.h"
#include "tkms-test-util.h"

#define HOOK_USER "nobody"
#define HOOK_TIMEOUT 30
#define SHORT_TIMEOUT 2 /* /password-rotation/timeout */

static TkmsTestEnv *env;
static gchar *base_dir; /* root-owned, 0755 */
static gchar *hooks_dir;
static gchar *ctl_dir;
static gchar *out_dir; /* owned by the hook user */
/* every password the tests have seen, to look for in the logs */
static GPtrArray *seen;

#define E_BUSY "org.tkms.KeyManager.Error.Busy"
#define E_INVALID "org.tkms.KeyManager.Error.InvalidArgument"
#define E_DENIED "org.tkms.KeyManager.Error.PermissionDenied"
#define E_NOT_FOUND "org.tkms.KeyManager.Error.NotFound"

static const gchar hook_script[] =
	"#!/usr/bin/python3\n"
	"import json, os, sys, time\n"
	"OUT = '@OUT@'\n"
	"CTL = '@CTL@'\n"
	"step = sys.argv[1]\n"
	"data = json.load(sys.stdin)\n"
	"key = data['key']\n"
	"with open(os.path.join(OUT, key + '.log'), 'a') as f:\n"
	"    f.write(json.dumps({'step': step, 'argc': len(sys.argv), 'input': data}) + '\\n')\n"
	"def ctl(name):\n"
	"    try:\n"
	"        with open(os.path.join(CTL, key + '.' + name)) as f:\n"
	"            return f.read().strip()\n"
	"    except FileNotFoundError:\n"
	"        return ''\n"
	"def marker(name):\n"
	"    return os.path.join(OUT, key + '.' + name)\n"
	"act = ctl(step)\n"
	"if act == 'fail':\n"
	"    sys.stderr.write('%s refused the password %s\\n' % (step, data.get('pending', '')))\n"
	"    sys.exit(3)\n"
	"if act == 'fail-once' and not os.path.exists(marker(step + '.failed')):\n"
	"    open(marker(step + '.failed'), 'w').close()\n"
	"    sys.stderr.write('the first %s fails\\n' % step)\n"
	"    sys.exit(3)\n"
	"if act == 'kill':\n"
	"    os.kill(os.getpid(), 9)\n"
	"if act == 'sleep':\n"
	"    time.sleep(300)\n"
	"if act == 'wait' or (act == 'wait-once' and not os.path.exists(marker(step + "
	"'.waiting'))):\n"
	"    open(marker(step + '.waiting'), 'w').close()\n"
	"    while not os.path.exists(os.path.join(CTL, key + '.' + step + '.go')):\n"
	"        time.sleep(0.05)\n"
	"sys.exit(0)\n";

/* ---- calls ---- */

static GVariant *
call(const gchar *method, GVariant *params, const gchar *reply, GError **error)
{
	return g_dbus_connection_call_sync(tkms_test_env_get_connection(env), TKMS_BUS_NAME,
					   TKMS_OBJECT_PATH, "org.tkms.KeyManager", method, params,
					   reply ? G_VARIANT_TYPE(reply) : NULL,
					   G_DBUS_CALL_FLAGS_NONE, 60000, NULL, error);
}

static void
call_ok(const gchar *method, GVariant *params)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call(method, params, NULL, &error);
	g_assert_no_error(error);
}

static void
call_fails(const gchar *method, GVariant *params, const gchar *error_name, const gchar *says)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call(method, params, NULL, &error);
	g_autofree gchar *remote = NULL;

	g_assert_null(r);
	g_assert_nonnull(error);
	remote = g_dbus_error_get_remote_error(error);
	g_test_message("%s -> %s: %s", method, remote, error->message);
	g_assert_cmpstr(remote, ==, error_name);
	if (says != NULL)
		g_assert_nonnull(strstr(error->message, says));
}

static gchar *
create_password_key(const gchar *prefix)
{
	gchar *name = tkms_test_key_name(prefix);
	call_ok("CreateKey", g_variant_new("(ss@a{sv})", name, "password",
					   g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)));
	return name;
}

static void
set_policy(const gchar *name, guint64 period, const gchar *hook)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	if (period > 0)
		g_variant_builder_add(&b, "{sv}", "period", g_variant_new_uint64(period));
	if (hook != NULL)
		g_variant_builder_add(&b, "{sv}", "hook", g_variant_new_string(hook));
	call_ok("SetRotationPolicy", g_variant_new("(sa{sv})", name, &b));
}

static GVariant *
policy_args(const gchar *name, const gchar *hook)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	if (hook != NULL)
		g_variant_builder_add(&b, "{sv}", "hook", g_variant_new_string(hook));
	return g_variant_new("(sa{sv})", name, &b);
}

static guint32
rotate(const gchar *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call("RotateKey", g_variant_new("(s)", name), "(u)", &error);
	guint32 v = 0;

	g_assert_no_error(error);
	g_variant_get(r, "(u)", &v);
	return v;
}

static void
remember(GBytes *password)
{
	for (guint i = 0; i < seen->len; i++)
		if (g_bytes_equal(g_ptr_array_index(seen, i), password))
			return;
	g_ptr_array_add(seen, g_bytes_ref(password));
}

static GBytes *
get_secret(const gchar *name, const gchar *stage, GError **error)
{
	g_autoptr(GVariant) r =
		call("GetSecret", g_variant_new("(ss)", name, stage), "(ay)", error);
	g_autoptr(GVariant) child = NULL;
	GBytes *bytes;

	if (r == NULL)
		return NULL;
	child = g_variant_get_child_value(r, 0);
	bytes = g_variant_get_data_as_bytes(child);
	remember(bytes);
	return bytes;
}

static GBytes *
secret(const gchar *name, const gchar *stage)
{
	g_autoptr(GError) error = NULL;
	GBytes *b = get_secret(name, stage, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(b), >, 0);
	return b;
}

static GVariant *
info(const gchar *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call("GetKeyInfo", g_variant_new("(s)", name), "(a{sv})", &error);
	g_assert_no_error(error);
	return g_variant_get_child_value(r, 0);
}

/* The info of one version: its state and stage ("" for none). */
static void
version_info(GVariant *inf, guint32 version, const gchar **state, const gchar **stage)
{
	g_autoptr(GVariant) versions =
		g_variant_lookup_value(inf, "versions", G_VARIANT_TYPE("aa{sv}"));
	GVariantIter iter;
	GVariant *v;

	*state = *stage = NULL;
	g_variant_iter_init(&iter, versions);
	while ((v = g_variant_iter_next_value(&iter)) != NULL) {
		guint32 n = 0;
		g_variant_lookup(v, "version", "u", &n);
		if (n == version) {
			g_variant_lookup(v, "state", "&s", state);
			if (!g_variant_lookup(v, "stage", "&s", stage))
				*stage = "";
		}
		g_variant_unref(v);
	}
	g_assert_nonnull(*state);
}

static void
assert_version(GVariant *inf, guint32 version, const gchar *state, const gchar *stage)
{
	const gchar *st, *sg;

	version_info(inf, version, &st, &sg);
	g_assert_cmpstr(st, ==, state);
	g_assert_cmpstr(sg, ==, stage);
}

static guint32
primary(GVariant *inf)
{
	guint32 p = 0;
	g_assert_true(g_variant_lookup(inf, "primary-version", "u", &p));
	return p;
}

/* Waits until the rotation to version has ended; returns its last-rotation. */
static GVariant *
wait_done(const gchar *name, guint32 version)
{
	gint64 end = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < end) {
		g_autoptr(GVariant) inf = info(name);
		g_autoptr(GVariant) rotation = g_variant_lookup_value(inf, "rotation", NULL);
		g_autoptr(GVariant) last = g_variant_lookup_value(inf, "last-rotation", NULL);
		guint32 v = 0;

		if (rotation == NULL && last != NULL &&
		    g_variant_lookup(last, "version", "u", &v) && v == version)
			return g_steal_pointer(&last);
		g_usleep(50000);
	}
	g_error("the rotation of %s to version %u did not end", name, version);
}

/* ---- the hook's side ---- */

static void
write_text(const gchar *path, const gchar *text, mode_t mode)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_set_contents(path, text, -1, &error));
	g_assert_no_error(error);
	g_assert_cmpint(chmod(path, mode), ==, 0);
}

static void
set_ctl(const gchar *name, const gchar *what, const gchar *action)
{
	g_autofree gchar *file = g_strdup_printf("%s.%s", name, what);
	g_autofree gchar *path = g_build_filename(ctl_dir, file, NULL);
	write_text(path, action, 0644);
}

static void
wait_marker(const gchar *name, const gchar *what)
{
	g_autofree gchar *file = g_strdup_printf("%s.%s", name, what);
	g_autofree gchar *path = g_build_filename(out_dir, file, NULL);
	gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

	while (!g_file_test(path, G_FILE_TEST_EXISTS)) {
		if (g_get_monotonic_time() > end)
			g_error("the hook did not reach %s", file);
		g_usleep(20000);
	}
}

/* The hook's records for key: JSON objects {step, argc, input}. */
static GPtrArray *
hook_log(const gchar *name)
{
	g_autofree gchar *file = g_strdup_printf("%s.log", name);
	g_autofree gchar *path = g_build_filename(out_dir, file, NULL);
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return out;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(JsonParser) parser = json_parser_new();
		g_autoptr(GError) error = NULL;
		JsonObject *input;

		if (*lines[i] == '\0')
			continue;
		json_parser_load_from_data(parser, lines[i], -1, &error);
		g_assert_no_error(error);
		g_ptr_array_add(
			out, json_object_ref(json_node_get_object(json_parser_get_root(parser))));
		input = json_object_get_object_member(g_ptr_array_index(out, out->len - 1),
						      "input");
		for (guint j = 0; j < 3; j++) {
			const gchar *m = (const gchar *[]){"current", "pending", "previous"}[j];
			if (json_object_has_member(input, m)) {
				g_autoptr(GBytes) b = tkms_test_bytes_str(
					json_object_get_string_member(input, m));
				remember(b);
			}
		}
	}
	return out;
}

static const gchar *
log_step(GPtrArray *log, guint i)
{
	g_assert_cmpuint(i, <, log->len);
	return json_object_get_string_member(g_ptr_array_index(log, i), "step");
}

static JsonObject *
log_input(GPtrArray *log, guint i)
{
	JsonObject *rec = g_ptr_array_index(log, i);
	/* the step is its only argument */
	g_assert_cmpint(json_object_get_int_member(rec, "argc"), ==, 2);
	return json_object_get_object_member(rec, "input");
}

static void
assert_steps(GPtrArray *log, const gchar *const *steps)
{
	guint n = g_strv_length((gchar **)steps);

	for (guint i = 0; i < log->len; i++)
		g_test_message("hook step %u: %s", i, log_step(log, i));
	g_assert_cmpuint(log->len, ==, n);
	for (guint i = 0; i < n; i++)
		g_assert_cmpstr(log_step(log, i), ==, steps[i]);
}

static void
assert_member_is(JsonObject *o, const gchar *member, GBytes *expected)
{
	const gchar *s;

	g_assert_true(json_object_has_member(o, member));
	s = json_object_get_string_member(o, member);
	g_assert_cmpmem(s, strlen(s), g_bytes_get_data(expected, NULL), g_bytes_get_size(expected));
}

static gboolean
bytes_equal_str(GBytes *b, const gchar *s)
{
	return g_bytes_get_size(b) == strlen(s) &&
	       memcmp(g_bytes_get_data(b, NULL), s, strlen(s)) == 0;
}

/* ---- the tests ---- */

/* Without a hook: RotateKey answers once the switch is made; the new version is current, the
 * old one previous; the third rotation deactivates the oldest previous. */
static void
test_no_hook(void)
{
	g_autofree gchar *name = create_password_key("nohook");
	g_autoptr(GBytes) s1 = secret(name, "current");
	g_autoptr(GBytes) s2 = NULL;
	g_autoptr(GBytes) prev = NULL;
	g_autoptr(GVariant) inf = NULL;
	g_autoptr(GVariant) last = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) none = NULL;
	const gchar *s;

	g_assert_cmpuint(rotate(name), ==, 2);
	inf = info(name);
	g_assert_cmpuint(primary(inf), ==, 2);
	g_assert_null(g_variant_lookup_value(inf, "rotation", NULL));
	last = g_variant_lookup_value(inf, "last-rotation", G_VARIANT_TYPE_VARDICT);
	g_assert_nonnull(last);
	g_assert_true(g_variant_lookup(last, "result", "&s", &s));
	g_assert_cmpstr(s, ==, "ok");
	assert_version(inf, 1, "active", "previous");
	assert_version(inf, 2, "active", "current");
	s2 = secret(name, "current");
	prev = secret(name, "previous");
	g_assert_false(g_bytes_equal(s1, s2));
	g_assert_true(g_bytes_equal(s1, prev));
	none = get_secret(name, "pending", &error);
	g_assert_null(none);
	g_assert_nonnull(error);

	g_assert_cmpuint(rotate(name), ==, 3);
	g_assert_cmpuint(rotate(name), ==, 4);
	g_clear_pointer(&inf, g_variant_unref);
	inf = info(name);
	g_assert_cmpuint(primary(inf), ==, 4);
	assert_version(inf, 1, "deactivated", "");
	assert_version(inf, 2, "deactivated", "");
	assert_version(inf, 3, "active", "previous");
	assert_version(inf, 4, "active", "current");
}

/* A hook that succeeds: set, test, finish in that order, each with the right JSON; during the
 * run GetSecret(pending) is the password the hook gets, and GetKeyInfo shows the step. */
static void
test_hook_success(void)
{
	g_autofree gchar *name = create_password_key("hookok");
	g_autoptr(GBytes) s1 = secret(name, "current");
	g_autoptr(GBytes) pending = NULL;
	g_autoptr(GBytes) current = NULL;
	g_autoptr(GBytes) previous = NULL;
	g_autoptr(GVariant) inf = NULL;
	g_autoptr(GVariant) rotation = NULL;
	g_autoptr(GVariant) last = NULL;
	g_autoptr(GPtrArray) log = NULL;
	const gchar *s;
	guint32 p, v = 0;
	JsonObject *in;

	set_policy(name, 0, "rec");
	set_ctl(name, "set", "wait");
	p = rotate(name);
	g_assert_cmpuint(p, ==, 2);
	wait_marker(name, "set.waiting");
	inf = info(name);
	rotation = g_variant_lookup_value(inf, "rotation", G_VARIANT_TYPE_VARDICT);
	g_assert_nonnull(rotation);
	g_assert_true(g_variant_lookup(rotation, "step", "&s", &s));
	g_assert_cmpstr(s, ==, "set");
	g_assert_true(g_variant_lookup(rotation, "version", "u", &v));
	g_assert_cmpuint(v, ==, p);
	g_assert_cmpuint(primary(inf), ==, 1);
	assert_version(inf, 2, "pre-active", "pending");
	pending = secret(name, "pending");
	current = secret(name, "current");
	g_assert_true(g_bytes_equal(current, s1));
	g_assert_false(g_bytes_equal(pending, s1));
	g_clear_pointer(&current, g_bytes_unref);

	set_ctl(name, "set.go", "");
	last = wait_done(name, p);
	g_assert_true(g_variant_lookup(last, "result", "&s", &s));
	g_assert_cmpstr(s, ==, "ok");
	g_assert_true(g_variant_lookup(last, "step", "&s", &s));
	g_assert_cmpstr(s, ==, "finish");
	g_clear_pointer(&inf, g_variant_unref);
	inf = info(name);
	g_assert_cmpuint(primary(inf), ==, 2);
	assert_version(inf, 1, "active", "previous");
	assert_version(inf, 2, "active", "current");
	current = secret(name, "current");
	previous = secret(name, "previous");
	g_assert_true(g_bytes_equal(current, pending));
	g_assert_true(g_bytes_equal(previous, s1));

	log = hook_log(name);
	assert_steps(log, (const gchar *const[]){"set", "test", "finish", NULL});
	for (guint i = 0; i < 2; i++) {
		in = log_input(log, i);
		g_assert_cmpstr(json_object_get_string_member(in, "step"), ==, log_step(log, i));
		g_assert_cmpint(json_object_get_int_member(in, "owner"), ==, getuid());
		g_assert_cmpstr(json_object_get_string_member(in, "key"), ==, name);
		g_assert_cmpint(json_object_get_int_member(in, "current-version"), ==, 1);
		g_assert_cmpint(json_object_get_int_member(in, "pending-version"), ==, 2);
		assert_member_is(in, "current", s1);
		assert_member_is(in, "pending", pending);
		g_assert_false(json_object_has_member(in, "previous"));
	}
	in = log_input(log, 2);
	g_assert_cmpstr(json_object_get_string_member(in, "step"), ==, "finish");
	g_assert_cmpint(json_object_get_int_member(in, "current-version"), ==, 2);
	g_assert_cmpint(json_object_get_int_member(in, "previous-version"), ==, 1);
	assert_member_is(in, "current", pending);
	assert_member_is(in, "previous", s1);
	g_assert_false(json_object_has_member(in, "pending"));
	g_assert_false(json_object_has_member(in, "pending-version"));
}

/* A set or test that fails (status, kill, timeout): the current password stays, rollback
 * runs with the pending one, the pending version is destroyed, and last-rotation says why
 * (passwords masked) and when the retry is. */
static void
check_failure(const gchar *prefix, const gchar *step, const gchar *action, const gchar *says)
{
	g_autofree gchar *name = create_password_key(prefix);
	g_autoptr(GBytes) s1 = secret(name, "current");
	g_autoptr(GBytes) current = NULL;
	g_autoptr(GBytes) none = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) inf = NULL;
	g_autoptr(GVariant) last = NULL;
	g_autoptr(GPtrArray) log = NULL;
	const gchar *reason = NULL, *s = NULL;
	const gchar *pending_seen;
	guint64 retry = 0;
	guint32 p;
	gint64 t0 = g_get_real_time() / G_USEC_PER_SEC;

	set_policy(name, 0, "rec");
	set_ctl(name, step, action);
	p = rotate(name);
	g_assert_cmpuint(p, ==, 2);
	last = wait_done(name, p);
	g_assert_true(g_variant_lookup(last, "result", "&s", &s));
	g_assert_cmpstr(s, ==, "failed");
	g_assert_true(g_variant_lookup(last, "step", "&s", &s));
	g_assert_cmpstr(s, ==, step);
	g_assert_true(g_variant_lookup(last, "reason", "&s", &reason));
	g_test_message("reason: %s", reason);
	g_assert_nonnull(strstr(reason, says));
	g_assert_true(g_variant_lookup(last, "next-retry", "t", &retry));
	g_assert_cmpuint(retry, >=, t0 + 1);

	inf = info(name);
	g_assert_cmpuint(primary(inf), ==, 1);
	assert_version(inf, 1, "active", "current");
	assert_version(inf, 2, "destroyed", "");
	g_assert_null(g_variant_lookup_value(inf, "rotation", NULL));
	current = secret(name, "current");
	g_assert_true(g_bytes_equal(current, s1));
	none = get_secret(name, "pending", &error);
	g_assert_null(none);
	g_assert_nonnull(error);

	log = hook_log(name);
	if (g_str_equal(step, "set"))
		assert_steps(log, (const gchar *const[]){"set", "rollback", NULL});
	else
		assert_steps(log, (const gchar *const[]){"set", "test", "rollback", NULL});
	pending_seen = json_object_get_string_member(log_input(log, 0), "pending");
	g_assert_false(bytes_equal_str(s1, pending_seen));
	g_assert_cmpstr(json_object_get_string_member(log_input(log, log->len - 1), "pending"), ==,
			pending_seen);
	assert_member_is(log_input(log, log->len - 1), "current", s1);
	/* the hook wrote the pending password to its stderr: masked */
	g_assert_null(strstr(reason, pending_seen));
	if (g_str_equal(action, "fail"))
		g_assert_nonnull(strstr(reason, "refused the password ********"));
}

static void
test_fail_set(void)
{
	check_failure("failset", "set", "fail", "exited with status 3");
}

static void
test_fail_test(void)
{
	check_failure("failtest", "test", "fail", "exited with status 3");
}

static void
test_killed(void)
{
	check_failure("killed", "set", "kill", "killed by signal 9");
}

static void
write_config(guint timeout)
{
	g_autofree gchar *text = g_strdup_printf("[passwords]\n"
						 "HookDirectory=%s\n"
						 "HookUser=" HOOK_USER "\n"
						 "HookTimeout=%u\n"
						 "[cache]\n"
						 "AuthorizationTtl=0\n",
						 hooks_dir, timeout);
	write_text(tkms_test_env_get_config_path(env), text, 0644);
}

static void
restart_daemon(void)
{
	g_autoptr(GError) error = NULL;

	tkms_test_env_stop_daemon(env, NULL);
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
}

/* HookTimeout=2: a hook that sleeps is killed after 2 s. */
static void
test_timeout(void)
{
	write_config(SHORT_TIMEOUT);
	restart_daemon();
	check_failure("timeout", "test", "sleep", "timed out after 2 s");
	write_config(HOOK_TIMEOUT);
	restart_daemon();
}

/* The scheduler's period rotation runs the same hook steps; a failed one is retried after
 * its backoff (here the period, 2 s) and then succeeds. */
static void
test_scheduled_retry(void)
{
	g_autofree gchar *name = create_password_key("sched");
	g_autoptr(GBytes) s1 = secret(name, "current");
	g_autoptr(GBytes) current = NULL;
	g_autoptr(GPtrArray) log = NULL;
	gint64 end = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
	const gchar *expected[] = {"set", "rollback", "set", "test", "finish"};
	GVariant *ok_last = NULL;

	set_ctl(name, "set", "fail-once");
	set_policy(name, 2, "rec");
	/* the first attempt fails at set, the retry succeeds */
	while (ok_last == NULL && g_get_monotonic_time() < end) {
		g_autoptr(GVariant) inf = info(name);
		g_autoptr(GVariant) last = g_variant_lookup_value(inf, "last-rotation", NULL);
		const gchar *s;
		if (last != NULL && g_variant_lookup(last, "result", "&s", &s) &&
		    g_str_equal(s, "ok"))
			ok_last = g_steal_pointer(&last);
		else
			g_usleep(100000);
	}
	g_assert_nonnull(ok_last);
	g_variant_unref(ok_last);
	/* no more rotations by period (the same hook: no admin question) */
	set_policy(name, 0, "rec");
	log = hook_log(name);
	g_assert_cmpuint(log->len, >=, G_N_ELEMENTS(expected));
	for (guint i = 0; i < G_N_ELEMENTS(expected); i++)
		g_assert_cmpstr(log_step(log, i), ==, expected[i]);
	/* the retry made a new pending version (2 was destroyed) */
	g_assert_cmpint(json_object_get_int_member(log_input(log, 0), "pending-version"), ==, 2);
	g_assert_cmpint(json_object_get_int_member(log_input(log, 2), "pending-version"), ==, 3);
	current = secret(name, "current");
	g_assert_false(g_bytes_equal(current, s1));
}

/* While a rotation waits on its hook, RotateKey and ImportSecret are Busy and say which step
 * it waits on. */
static void
test_busy(void)
{
	g_autofree gchar *name = create_password_key("busy");
	g_autoptr(GVariant) last = NULL;
	guint32 p;

	set_policy(name, 0, "rec");
	set_ctl(name, "set", "wait");
	p = rotate(name);
	wait_marker(name, "set.waiting");
	call_fails("RotateKey", g_variant_new("(s)", name), E_BUSY, "set");
	call_fails("ImportSecret",
		   g_variant_new("(s@ay)", name,
				 g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, "abcdefgh", 8, 1)),
		   E_BUSY, "set");
	set_ctl(name, "set.go", "");
	last = wait_done(name, p);
	g_assert_cmpuint(rotate(name), ==, p + 1);
}

/* kill -9 of tkmsd while the hook blocks in step: after the restart the rotation resumes at
 * that step (the hook runs it again) and ends with the password the hook saw as pending
 * current. */
static void
check_kill_in(const gchar *step, gboolean sigterm, const gchar *const *steps)
{
	g_autofree gchar *name = create_password_key(sigterm ? "stop" : step);
	g_autofree gchar *marker = g_strdup_printf("%s.waiting", step);
	g_autoptr(GBytes) s1 = secret(name, "current");
	g_autoptr(GBytes) current = NULL;
	g_autoptr(GBytes) previous = NULL;
	g_autoptr(GVariant) last = NULL;
	g_autoptr(GPtrArray) log = NULL;
	const gchar *pending_seen, *s;
	gint pid;
	guint32 p;

	set_policy(name, 0, "rec");
	set_ctl(name, step, "wait-once");
	p = rotate(name);
	wait_marker(name, marker);
	pid = tkms_test_env_get_daemon_pid(env);
	g_assert_cmpint(pid, >, 0);
	if (sigterm) {
		g_autoptr(GError) error = NULL;
		/* a clean stop kills the hook and exits 0 at once */
		g_assert_true(tkms_test_env_stop_daemon(env, &error));
		g_assert_no_error(error);
	} else {
		g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
	}
	restart_daemon();
	last = wait_done(name, p);
	g_assert_true(g_variant_lookup(last, "result", "&s", &s));
	g_assert_cmpstr(s, ==, "ok");

	log = hook_log(name);
	assert_steps(log, steps);
	pending_seen = json_object_get_string_member(log_input(log, 0), "pending");
	current = secret(name, "current");
	previous = secret(name, "previous");
	g_assert_true(bytes_equal_str(current, pending_seen));
	g_assert_true(g_bytes_equal(previous, s1));
	/* every run of set and test got the same pending password */
	for (guint i = 0; i < log->len; i++) {
		JsonObject *in = log_input(log, i);
		if (json_object_has_member(in, "pending"))
			g_assert_cmpstr(json_object_get_string_member(in, "pending"), ==,
					pending_seen);
		else
			assert_member_is(in, "current", current);
	}
}

static void
test_kill_in_set(void)
{
	check_kill_in("set", FALSE, (const gchar *const[]){"set", "set", "test", "finish", NULL});
}

static void
test_kill_in_test(void)
{
	check_kill_in("test", FALSE, (const gchar *const[]){"set", "test", "test", "finish", NULL});
}

static void
test_kill_in_finish(void)
{
	check_kill_in("finish", FALSE,
		      (const gchar *const[]){"set", "test", "finish", "finish", NULL});
}

/* SIGTERM while the hook blocks in set: tkmsd kills it and stops; the rotation resumes at
 * set after the restart. */
static void
test_stop_in_set(void)
{
	check_kill_in("set", TRUE, (const gchar *const[]){"set", "set", "test", "finish", NULL});
}

/* Setting, changing or removing a hook needs admin; the hook must exist and be safe to run;
 * only password keys take one. */
static void
test_policy_hook(void)
{
	static const gchar *const no_admin[] = {TKMS_ACTION_READ_KEY, TKMS_ACTION_CREATE_KEY,
						TKMS_ACTION_MANAGE_KEY, TKMS_ACTION_READ_SECRET,
						NULL};
	g_autofree gchar *name = create_password_key("policy");
	g_autofree gchar *aes = tkms_test_key_name("aes");
	g_autofree gchar *ww = g_build_filename(hooks_dir, "writable", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) inf = NULL;
	g_autoptr(GVariant) policy = NULL;
	const gchar *hook = NULL;

	g_assert_true(tkms_test_env_polkit_set_allowed(env, no_admin, &error));
	g_assert_no_error(error);
	call_fails("SetRotationPolicy", policy_args(name, "rec"), E_DENIED, "admin");
	/* a policy that leaves the hook as it is needs no admin */
	set_policy(name, 3600, NULL);
	g_assert_true(tkms_test_env_polkit_allow_all(env, &error));
	g_assert_no_error(error);

	call_fails("SetRotationPolicy", policy_args(name, "nope"), E_INVALID, "no hook");
	call_fails("SetRotationPolicy", policy_args(name, "../rec"), E_INVALID, "hook");
	call_fails("SetRotationPolicy", policy_args(name, "/bin/true"), E_INVALID, "hook");
	write_text(ww, "#!/bin/sh\nexit 0\n", 0757);
	call_fails("SetRotationPolicy", policy_args(name, "writable"), E_INVALID, "writable");
	tkms_test_create_key(tkms_test_env_get_client(env), aes, "aes-256-gcm", NULL);
	call_fails("SetRotationPolicy", policy_args(aes, "rec"), E_INVALID, "password keys");

	set_policy(name, 0, "rec");
	inf = info(name);
	policy = g_variant_lookup_value(inf, "policy", G_VARIANT_TYPE_VARDICT);
	g_assert_true(g_variant_lookup(policy, "hook", "&s", &hook));
	g_assert_cmpstr(hook, ==, "rec");

	g_assert_true(tkms_test_env_polkit_set_allowed(env, no_admin, &error));
	g_assert_no_error(error);
	/* the same hook: no question */
	set_policy(name, 7200, "rec");
	/* removing it is a change */
	call_fails("SetRotationPolicy", policy_args(name, NULL), E_DENIED, "admin");
	g_assert_true(tkms_test_env_polkit_allow_all(env, &error));
	g_assert_no_error(error);
	set_policy(name, 0, NULL);
}

static gboolean
file_contains(const gchar *path, GBytes *needle)
{
	g_autofree gchar *text = NULL;
	gsize len = 0;
	g_autoptr(GBytes) hay = NULL;

	if (!g_file_get_contents(path, &text, &len, NULL))
		return FALSE;
	hay = g_bytes_new_static(text, len);
	return tkms_test_bytes_contain(hay, g_bytes_get_data(needle, NULL),
				       g_bytes_get_size(needle));
}

/* No password the tests saw (from GetSecret or given to the hook) is in the audit log or in
 * tkmsd's log; and every step left its audit record. */
static void
test_no_secret_in_logs(void)
{
	const gchar *state = tkms_test_env_get_state_dir(env);
	g_autoptr(GDir) dir = g_dir_open(state, 0, NULL);
	g_autofree gchar *daemon_log = tkms_test_env_get_daemon_log(env);
	g_autoptr(GBytes) log_bytes = g_bytes_new_static(daemon_log, strlen(daemon_log));
	g_autofree gchar *audit_path = g_build_filename(state, "audit.log", NULL);
	g_autofree gchar *audit = NULL;
	const gchar *file;
	guint files = 0;

	g_assert_nonnull(dir);
	g_assert_cmpuint(seen->len, >=, 20);
	while ((file = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(state, file, NULL);
		if (!g_str_has_prefix(file, "audit"))
			continue;
		files++;
		for (guint i = 0; i < seen->len; i++)
			g_assert_false(file_contains(path, g_ptr_array_index(seen, i)));
	}
	g_assert_cmpuint(files, >=, 1);
	for (guint i = 0; i < seen->len; i++) {
		GBytes *pw = g_ptr_array_index(seen, i);
		g_assert_false(tkms_test_bytes_contain(log_bytes, g_bytes_get_data(pw, NULL),
						       g_bytes_get_size(pw)));
	}
	g_assert_true(g_file_get_contents(audit_path, &audit, NULL, NULL));
	g_assert_nonnull(strstr(audit, "step=create result=ok"));
	g_assert_nonnull(strstr(audit, "step=set result=ok"));
	g_assert_nonnull(strstr(audit, "step=test result=ok"));
	g_assert_nonnull(strstr(audit, "step=finish result=ok"));
	g_assert_nonnull(strstr(audit, "step=set result=failed"));
	g_assert_nonnull(strstr(audit, "step=rollback result=ok"));
}

/* ---- set-up ---- */

static void
set_up_hooks(void)
{
	struct passwd *pw = getpwnam(HOOK_USER);
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) script = g_string_new(hook_script);
	g_autofree gchar *hook = NULL;

	g_assert_nonnull(pw);
	base_dir = g_dir_make_tmp("tkms-pwrot-XXXXXX", &error);
	g_assert_no_error(error);
	g_assert_cmpint(chmod(base_dir, 0755), ==, 0);
	hooks_dir = g_build_filename(base_dir, "hooks", NULL);
	ctl_dir = g_build_filename(base_dir, "ctl", NULL);
	out_dir = g_build_filename(base_dir, "out", NULL);
	g_assert_cmpint(g_mkdir(hooks_dir, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(ctl_dir, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(out_dir, 0700), ==, 0);
	g_assert_cmpint(chown(out_dir, pw->pw_uid, pw->pw_gid), ==, 0);
	g_string_replace(script, "@OUT@", out_dir, 0);
	g_string_replace(script, "@CTL@", ctl_dir, 0);
	hook = g_build_filename(hooks_dir, "rec", NULL);
	write_text(hook, script->str, 0755);
}

int
main(int argc, char **argv)
{
	g_autofree gchar *config = NULL;
	int ret;

	g_test_init(&argc, &argv, NULL);
	if (geteuid() != 0 || getpwnam(HOOK_USER) == NULL ||
	    !g_file_test("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE)) {
		g_printerr(
			"hooks run as %s: this test needs root, that user and /usr/bin/python3\n",
			HOOK_USER);
		return 77;
	}
	set_up_hooks();
	seen = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	config = g_strdup_printf("[passwords]\n"
				 "HookDirectory=%s\n"
				 "HookUser=" HOOK_USER "\n"
				 "HookTimeout=%u\n"
				 "[cache]\n"
				 "AuthorizationTtl=0\n",
				 hooks_dir, HOOK_TIMEOUT);
	env = tkms_test_env_new_or_abort(config);
	g_test_add_func("/password-rotation/no-hook", test_no_hook);
	g_test_add_func("/password-rotation/hook-success", test_hook_success);
	g_test_add_func("/password-rotation/fail-set", test_fail_set);
	g_test_add_func("/password-rotation/fail-test", test_fail_test);
	g_test_add_func("/password-rotation/killed", test_killed);
	g_test_add_func("/password-rotation/timeout", test_timeout);
	g_test_add_func("/password-rotation/scheduled-retry", test_scheduled_retry);
	g_test_add_func("/password-rotation/busy", test_busy);
	g_test_add_func("/password-rotation/kill-in-set", test_kill_in_set);
	g_test_add_func("/password-rotation/kill-in-test", test_kill_in_test);
	g_test_add_func("/password-rotation/kill-in-finish", test_kill_in_finish);
	g_test_add_func("/password-rotation/stop-in-set", test_stop_in_set);
	g_test_add_func("/password-rotation/policy-hook", test_policy_hook);
	g_test_add_func("/password-rotation/no-secret-in-logs", test_no_secret_in_logs);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	if (g_getenv("TKMS_TEST_KEEP") == NULL)
		tkms_test_rm_rf(base_dir);
	g_ptr_array_unref(seen);
	return ret;
}
