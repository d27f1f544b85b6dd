/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-privsep"

/* Privilege separation (issue 9, "Shipped defaults"): tkmsd started exactly as the shipped
 * unit starts it, as the user tkms (made from the built data/tkms.sysusers with
 * systemd-sysusers) in group tss, with CAP_SETUID, CAP_SETGID and CAP_KILL as its only
 * (ambient) capabilities and no_new_privs, against the real polkitd and the built .policy.
 * The main process holds no capability at all, its hook launcher exactly those three; keys
 * work for root and for another user (polkitd answers a non-root tkmsd because the .policy
 * names tkms as the actions' owner); a password rotation runs its hook as nobody, without a
 * capability and unable to read tkmsd's state; and once the launcher is killed a rotation
 * fails saying why, while tkmsd serves on.
 *
 * Needs root, setpriv, systemd-sysusers and the real polkitd (suite authz: machine-global
 * polkit files); skipped (77) otherwise. Creates the system user tkms if it is missing. */

#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tkms-test-env.h"
#include "tkms-test-util.h"

#define DAEMON_USER "tkms"
#define HOOK_USER   "nobody"
/* CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7) */
#define UNIT_CAPS "00000000000000e0"
#define NO_CAPS	  "0000000000000000"

static TkmsTestEnv *env;
static gchar *base_dir; /* root-owned, 0755 */
static gchar *hooks_dir;
static gchar *out_dir; /* owned by the hook user */

/* Records, per run, its step and what it is and may do: uid, groups, capabilities, whether
 * tkmsd's state directory opens to it. */
static const gchar hook_script[] =
	"#!/bin/sh\n"
	"cat > /dev/null\n"
	"{\n"
	"  printf 'step=%s uid=%s groups=%s' \"$1\" \"$(id -u)\" \"$(id -G | tr ' ' ,)\"\n"
	"  for c in CapInh CapPrm CapEff CapAmb; do\n"
	"    printf ' %s=%s' $c $(sed -n \"s/^$c:[[:space:]]*//p\" /proc/self/status)\n"
	"  done\n"
	"  if ls '@STATE@' > /dev/null 2>&1; then echo ' state=readable'; else echo ' "
	"state=closed'; fi\n"
	"} >> '@OUT@/runs'\n";

/* ---- what a process is ---- */

/* The value of a "Name:\tvalue" line of /proc/PID/status. */
static gchar *
proc_status(gint pid, const gchar *name)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/status", pid);
	g_autofree gchar *text = NULL;
	g_autofree gchar *prefix = g_strdup_printf("\n%s:", name);
	const gchar *line, *end;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	line = strstr(text, prefix);
	g_assert_nonnull(line);
	line += strlen(prefix);
	while (*line == ' ' || *line == '\t')
		line++;
	end = strchr(line, '\n');
	return g_strndup(line, end ? (gsize)(end - line) : strlen(line));
}

static void
assert_status(gint pid, const gchar *name, const gchar *value)
{
	g_autofree gchar *v = proc_status(pid, name);
	g_test_message("pid %d %s: %s", pid, name, v);
	g_assert_cmpstr(v, ==, value);
}

static void
assert_runs_as_daemon_user(gint pid)
{
	struct passwd *pw = getpwnam(DAEMON_USER);
	struct group *gr = getgrnam("tss");
	g_autofree gchar *uids = NULL;
	g_autofree gchar *gids = NULL;
	g_autofree gchar *groups = NULL;
	g_auto(GStrv) list = NULL;

	g_assert_nonnull(pw);
	g_assert_nonnull(gr);
	uids = g_strdup_printf("%u\t%u\t%u\t%u", (guint)pw->pw_uid, (guint)pw->pw_uid,
			       (guint)pw->pw_uid, (guint)pw->pw_uid);
	gids = g_strdup_printf("%u\t%u\t%u\t%u", (guint)gr->gr_gid, (guint)gr->gr_gid,
			       (guint)gr->gr_gid, (guint)gr->gr_gid);
	assert_status(pid, "Uid", uids);
	assert_status(pid, "Gid", gids);
	/* /dev/tpmrm0 is tss:tss 0660: the group is what opens it */
	groups = proc_status(pid, "Groups");
	list = g_strsplit(g_strstrip(groups), " ", -1);
	g_assert_true(g_strv_contains((const gchar *const *)list,
				      g_strdup_printf("%u", (guint)gr->gr_gid)));
}

/* ---- calls ---- */

static GVariant *
call(const gchar *method, GVariant *params, const gchar *reply, GError **error)
{
	return g_dbus_connection_call_sync(tkms_test_env_get_connection(env), TKMS_BUS_NAME,
					   TKMS_OBJECT_PATH, "org.tkms.KeyManager", method, params,
					   reply ? G_VARIANT_TYPE(reply) : NULL,
					   G_DBUS_CALL_FLAGS_NONE, 60000, NULL, error);
}

static GVariant *
call_ok(const gchar *method, GVariant *params, const gchar *reply)
{
	g_autoptr(GError) error = NULL;
	GVariant *r = call(method, params, reply, &error);

	g_assert_no_error(error);
	return r;
}

static gchar *
create_password_key(const gchar *prefix, const gchar *hook)
{
	gchar *name = tkms_test_key_name(prefix);
	GVariantBuilder b;
	g_autoptr(GVariant) r1 = NULL;
	g_autoptr(GVariant) r2 = NULL;

	r1 = call_ok("CreateKey",
		     g_variant_new("(ss@a{sv})", name, "password",
				   g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)),
		     NULL);
	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "hook", g_variant_new_string(hook));
	r2 = call_ok("SetRotationPolicy", g_variant_new("(sa{sv})", name, &b), NULL);
	return name;
}

/* RotateKey, then waits until that rotation has ended; returns its last-rotation. */
static GVariant *
rotate_and_wait(const gchar *name)
{
	g_autoptr(GVariant) r = call_ok("RotateKey", g_variant_new("(s)", name), "(u)");
	gint64 end = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
	guint32 version = 0;

	g_variant_get(r, "(u)", &version);
	while (g_get_monotonic_time() < end) {
		g_autoptr(GVariant) reply =
			call_ok("GetKeyInfo", g_variant_new("(s)", name), "(a{sv})");
		g_autoptr(GVariant) inf = g_variant_get_child_value(reply, 0);
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

/* ---- tests ---- */

/* The main process has no capability in any set, and no way to gain one; the launcher has
 * exactly the unit's three. Both run as tkms in group tss. */
static void
test_capabilities(void)
{
	gint pid = tkms_test_env_get_daemon_pid(env);
	gint launcher = tkms_test_env_get_hook_launcher_pid(env);

	g_assert_cmpint(pid, >, 0);
	g_assert_cmpint(launcher, >, 0);
	assert_runs_as_daemon_user(pid);
	assert_status(pid, "CapInh", NO_CAPS);
	assert_status(pid, "CapPrm", NO_CAPS);
	assert_status(pid, "CapEff", NO_CAPS);
	assert_status(pid, "CapAmb", NO_CAPS);
	assert_status(pid, "NoNewPrivs", "1");
	/* every thread: capabilities belong to each (the drop came before the first) */
	{
		g_autofree gchar *task_dir = g_strdup_printf("/proc/%d/task", pid);
		g_autoptr(GDir) tasks = g_dir_open(task_dir, 0, NULL);
		const gchar *tid;
		guint n = 0;

		g_assert_nonnull(tasks);
		while ((tid = g_dir_read_name(tasks)) != NULL) {
			g_autofree gchar *path =
				g_strdup_printf("/proc/%d/task/%s/status", pid, tid);
			g_autofree gchar *text = NULL;
			g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
			g_assert_nonnull(strstr(text, "\nCapPrm:\t" NO_CAPS "\n"));
			g_assert_nonnull(strstr(text, "\nCapEff:\t" NO_CAPS "\n"));
			g_assert_nonnull(strstr(text, "\nCapAmb:\t" NO_CAPS "\n"));
			n++;
		}
		g_test_message("%u threads, none with a capability", n);
		g_assert_cmpuint(n, >, 1);
	}

	assert_runs_as_daemon_user(launcher);
	assert_status(launcher, "CapPrm", UNIT_CAPS);
	assert_status(launcher, "CapEff", UNIT_CAPS);
	assert_status(launcher, "CapAmb", UNIT_CAPS);
	/* neither can be read through ptrace or dumped */
	assert_status(pid, "TracerPid", "0");
}

/* Keys work: root's (encrypt and decrypt) and another user's, whose every call tkmsd asks
 * polkitd about as a process that is not root. */
static void
test_keys_work(void)
{
	g_autofree gchar *name = tkms_test_key_name("privsep");
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GBytes) plain = tkms_test_bytes_str("privilege separation");
	g_autoptr(GBytes) ciphertext = NULL;
	g_autoptr(GBytes) back = NULL;
	g_autoptr(GError) error = NULL;
	TkmsClient *client = tkms_test_env_get_client(env);
	const gchar *tkmsctl = g_getenv("TKMSCTL");
	g_autofree gchar *other = tkms_test_key_name("other");
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	info = tkms_test_create_key(client, name, "aes-256-gcm", NULL);
	ciphertext = tkms_client_encrypt_sync(client, name, plain, NULL, NULL, &error);
	g_assert_no_error(error);
	back = tkms_client_decrypt_sync(client, name, ciphertext, NULL, NULL, &error);
	g_assert_no_error(error);
	tkms_assert_bytes_equal(back, plain);

	if (tkmsctl == NULL) {
		g_test_skip("tkmsctl is not built");
		return;
	}
	{
		const gchar *create[] = {tkmsctl, "create", other, "hmac-sha256", NULL};
		const gchar *show[] = {tkmsctl, "info", other, NULL};

		g_assert_true(tkms_test_env_run_as_user(env, create, &out, &err, &status, &error));
		g_assert_no_error(error);
		g_test_message("tkmsctl create as nobody: %d %s %s", status, out, err);
		g_assert_cmpint(status, ==, 0);
		g_clear_pointer(&out, g_free);
		g_clear_pointer(&err, g_free);
		g_assert_true(tkms_test_env_run_as_user(env, show, &out, &err, &status, &error));
		g_assert_no_error(error);
		g_assert_cmpint(status, ==, 0);
		g_assert_nonnull(strstr(out, "hmac-sha256"));
	}
}

static gchar **
hook_runs(void)
{
	g_autofree gchar *path = g_build_filename(out_dir, "runs", NULL);
	g_autofree gchar *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return g_new0(gchar *, 1);
	g_strchomp(text);
	return g_strsplit(text, "\n", -1);
}

/* A rotation with a hook: the launcher runs each step as nobody with nobody's groups, no
 * capability in any set, and tkmsd's state directory closed to it. */
static void
test_hook_runs_as_nobody(void)
{
	g_autofree gchar *name = create_password_key("pw", "rec");
	g_autoptr(GVariant) last = rotate_and_wait(name);
	struct passwd *pw = getpwnam(HOOK_USER);
	g_autofree gchar *expect = NULL;
	g_auto(GStrv) runs = NULL;
	const gchar *s = NULL;
	const gchar *steps[] = {"set", "test", "finish"};

	g_assert_true(g_variant_lookup(last, "result", "&s", &s));
	g_assert_cmpstr(s, ==, "ok");
	runs = hook_runs();
	g_assert_cmpuint(g_strv_length(runs), ==, 3);
	for (guint i = 0; i < 3; i++) {
		expect = g_strdup_printf("step=%s uid=%u groups=%u CapInh=" NO_CAPS
					 " CapPrm=" NO_CAPS " CapEff=" NO_CAPS " CapAmb=" NO_CAPS
					 " state=closed",
					 steps[i], (guint)pw->pw_uid, (guint)pw->pw_gid);
		g_test_message("%s", runs[i]);
		g_assert_cmpstr(runs[i], ==, expect);
		g_clear_pointer(&expect, g_free);
	}
}

/* kill -9 of the launcher: tkmsd says so once and serves on; a rotation fails at set with
 * that reason and keeps the current password. */
static void
test_launcher_killed(void)
{
	gint pid = tkms_test_env_get_daemon_pid(env);
	gint launcher = tkms_test_env_get_hook_launcher_pid(env);
	g_autofree gchar *name = create_password_key("dead", "rec");
	g_autoptr(GVariant) last = NULL;
	g_autoptr(GVariant) r = NULL;
	g_autofree gchar *log = NULL;
	g_autofree gchar *said = NULL;
	const gchar *s = NULL;
	gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	g_assert_cmpint(launcher, >, 0);
	g_assert_cmpint(kill(launcher, SIGKILL), ==, 0);
	said = g_strdup_printf("The hook launcher (pid %d) was killed by signal 9", launcher);
	do {
		g_free(log);
		log = tkms_test_env_get_daemon_log(env);
		if (strstr(log, said) != NULL)
			break;
		g_usleep(20000);
	} while (g_get_monotonic_time() < end);
	g_assert_nonnull(strstr(log, said));

	last = rotate_and_wait(name);
	g_assert_true(g_variant_lookup(last, "result", "&s", &s));
	g_assert_cmpstr(s, ==, "failed");
	g_assert_true(g_variant_lookup(last, "step", "&s", &s));
	g_assert_cmpstr(s, ==, "set");
	g_assert_true(g_variant_lookup(last, "reason", "&s", &s));
	g_test_message("reason: %s", s);
	g_assert_nonnull(strstr(s, said));
	g_assert_nonnull(strstr(s, "until tkmsd is restarted"));

	/* the same tkmsd serves on; it said it once */
	g_assert_true(tkms_test_env_daemon_is_running(env));
	g_assert_cmpint(tkms_test_env_get_daemon_pid(env), ==, pid);
	r = call_ok("GetSecret", g_variant_new("(ss)", name, "current"), "(ay)");
	g_free(log);
	log = tkms_test_env_get_daemon_log(env);
	{
		g_auto(GStrv) lines = g_strsplit(log, "\n", -1);
		guint warned = 0;
		for (guint i = 0; lines[i] != NULL; i++)
			if (strstr(lines[i], "WARNING") != NULL && strstr(lines[i], said) != NULL)
				warned++;
		g_assert_cmpuint(warned, ==, 1);
	}
}

/* ---- set-up ---- */

/* The user the unit runs as, from the built sysusers file: what a package install does. */
static void
ensure_daemon_user(void)
{
	const gchar *file = g_getenv("TKMS_SYSUSERS");
	const gchar *argv[] = {"systemd-sysusers", file, NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	tkms_test_require_program_or_skip("systemd-sysusers", "systemd");
	g_assert_nonnull(file);
	g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL,
				   G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
				   NULL, &err, &status, &error));
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("systemd-sysusers %s: %s", file, err);
	g_assert_nonnull(getpwnam(DAEMON_USER));
}

static void
make_hook_dirs(void)
{
	struct passwd *pw = getpwnam(HOOK_USER);
	g_autoptr(GError) error = NULL;

	g_assert_nonnull(pw);
	base_dir = g_dir_make_tmp("tkms-privsep-XXXXXX", &error);
	g_assert_no_error(error);
	g_assert_cmpint(chmod(base_dir, 0755), ==, 0);
	hooks_dir = g_build_filename(base_dir, "hooks", NULL);
	out_dir = g_build_filename(base_dir, "out", NULL);
	g_assert_cmpint(g_mkdir(hooks_dir, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(out_dir, 0700), ==, 0);
	g_assert_cmpint(chown(out_dir, pw->pw_uid, pw->pw_gid), ==, 0);
}

/* The hook, once the state directory it looks at is known. */
static void
write_hook(const gchar *state_dir)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GString) script = g_string_new(hook_script);
	g_autofree gchar *hook = g_build_filename(hooks_dir, "rec", NULL);

	g_string_replace(script, "@OUT@", out_dir, 0);
	g_string_replace(script, "@STATE@", state_dir, 0);
	g_assert_true(g_file_set_contents(hook, script->str, -1, &error));
	g_assert_no_error(error);
	g_assert_cmpint(chmod(hook, 0755), ==, 0);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *config = NULL;
	int ret;

	g_test_init(&argc, &argv, NULL);
	if (geteuid() != 0) {
		g_printerr("test-privsep starts tkmsd as another user: it needs root\n");
		return 77;
	}
	if (getpwnam(HOOK_USER) == NULL) {
		g_printerr("no user %s\n", HOOK_USER);
		return 77;
	}
	tkms_test_require_program_or_skip("setpriv", "util-linux");
	/* before the bus starts: its policy names the user */
	ensure_daemon_user();
	make_hook_dirs();
	config = g_strdup_printf("[passwords]\n"
				 "HookDirectory=%s\n"
				 "HookUser=" HOOK_USER "\n"
				 "HookTimeout=30\n",
				 hooks_dir);
	env = tkms_test_env_new_real_polkit_without_daemon(config, NULL, &error);
	if (env == NULL)
		tkms_test_exit_on_error("cannot set up the test environment", error);
	write_hook(tkms_test_env_get_state_dir(env));
	if (!tkms_test_env_set_daemon_user(env, DAEMON_USER, &error) ||
	    !tkms_test_env_start_daemon(env, &error))
		tkms_test_exit_on_error("cannot start tkmsd as the unit does", error);

	g_test_add_func("/privsep/capabilities", test_capabilities);
	g_test_add_func("/privsep/keys-work", test_keys_work);
	g_test_add_func("/privsep/hook-runs-as-nobody", test_hook_runs_as_nobody);
	g_test_add_func("/privsep/launcher-killed", test_launcher_killed);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	if (g_getenv("TKMS_TEST_KEEP") == NULL)
		tkms_test_rm_rf(base_dir);
	return ret;
}
