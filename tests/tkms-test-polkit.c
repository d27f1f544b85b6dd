/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-polkit"

#include "tkms-test-polkit.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "tkms-test-env-private.h"

#define POLKIT_BUS_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_IFACE "org.freedesktop.PolicyKit1.Authority"
#define DBUSMOCK_IFACE "org.freedesktop.DBus.Mock"
#define PYTHON "/usr/bin/python3"

static const gchar *const all_actions[] = {
	TKMS_ACTION_READ_KEY, TKMS_ACTION_CREATE_KEY, TKMS_ACTION_USE_KEY,
	TKMS_ACTION_SEAL, TKMS_ACTION_DESTROY_KEY, TKMS_ACTION_MANAGE_KEY,
	TKMS_ACTION_READ_SECRET, TKMS_ACTION_ADMIN, NULL,
};

const gchar *const *
tkms_test_all_actions(void)
{
	return all_actions;
}

/* ---------------------------------------------------------------------------------------- */
/* The mock (python-dbusmock)                                                                */

/* Test-only: the polkit mock runs as root and everybody may call it, as on a real system. */
static const gchar polkit_mock_policy[] =
	"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	"<busconfig>\n"
	"  <policy user=\"root\">\n"
	"    <allow own=\"org.freedesktop.PolicyKit1\"/>\n"
	"  </policy>\n"
	"  <policy context=\"default\">\n"
	"    <allow send_destination=\"org.freedesktop.PolicyKit1\"/>\n"
	"  </policy>\n"
	"</busconfig>\n";

/* python3-dbusmock and its polkitd template, with /usr/bin/python3 (the python3 first on PATH
 * may lack gi). */
static gboolean
require_dbusmock(GError **error)
{
	const gchar *argv[] = {PYTHON, "-c", "import dbusmock.templates.polkitd", NULL};
	gint status = -1;

	if (!tkms_test_require_program(PYTHON, "python3", error))
		return FALSE;
	if (!g_spawn_sync("/", (gchar **)argv, NULL,
			  G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
			  NULL, NULL, &status, error))
		return FALSE;
	if (!g_spawn_check_wait_status(status, NULL)) {
		g_set_error(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY,
			    "python-dbusmock's polkitd template is missing (install the Debian "
			    "packages python3-dbusmock and python3-gi)");
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_polkit_start_mock(TkmsTestEnv *env, GError **error)
{
	const gchar *argv[] = {PYTHON, "-m", "dbusmock", "--system", "--template", "polkitd", NULL};

	return require_dbusmock(error) &&
	       tkms_test_proc_start(&env->polkit, argv, env->tmp_dir,
				    tkms_test_bus_get_address(env->bus), error) &&
	       tkms_test_bus_wait_for_name(env->bus, &env->polkit, POLKIT_BUS_NAME, error) &&
	       tkms_test_env_polkit_allow_all(env, error);
}

gboolean
tkms_test_env_polkit_set_allowed(TkmsTestEnv *env, const gchar *const *actions, GError **error)
{
	GDBusConnection *connection = tkms_test_bus_get_connection(env->bus);
	g_autoptr(GVariant) r1 = NULL;
	g_autoptr(GVariant) r2 = NULL;
	static const gchar *const none[] = {NULL};

	if (env->real_polkit) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
			    "SetAllowed is for the polkit mock; with the real polkitd use "
			    "tkms_test_env_polkit_set_rules()");
		return FALSE;
	}
	r1 = g_dbus_connection_call_sync(
		connection, POLKIT_BUS_NAME, POLKIT_PATH, DBUSMOCK_IFACE, "SetAllowed",
		g_variant_new("(@as)", g_variant_new_strv(actions ? actions : none, -1)), NULL,
		G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
	if (r1 == NULL) {
		g_prefix_error(error, "polkit mock SetAllowed: ");
		return FALSE;
	}
	/* Like polkitd when its rules change: authorities drop cached answers on Changed. The
	 * signal is sent before the reply, so it reaches tkmsd before any later call of ours. */
	r2 = g_dbus_connection_call_sync(
		connection, POLKIT_BUS_NAME, POLKIT_PATH, DBUSMOCK_IFACE, "EmitSignal",
		g_variant_new("(sss@av)", POLKIT_IFACE, "Changed", "",
			      g_variant_new_array(G_VARIANT_TYPE_VARIANT, NULL, 0)),
		NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
	if (r2 == NULL) {
		g_prefix_error(error, "polkit mock EmitSignal(Changed): ");
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_env_polkit_allow_all(TkmsTestEnv *env, GError **error)
{
	return tkms_test_env_polkit_set_allowed(env, all_actions, error);
}

/* ---------------------------------------------------------------------------------------- */
/* The real polkitd                                                                          */

#define POLKITD_PATH "/usr/lib/polkit-1/polkitd"
#define POLKITD_USER "polkitd"
#define POLKIT_POLICY_DEST "/usr/share/polkit-1/actions/org.tkms.KeyManager.policy"
#define POLKIT_POLICY_SAVED POLKIT_POLICY_DEST ".tkms-test-saved"
#define POLKIT_RULES_DIR "/etc/polkit-1/rules.d"
#define POLKIT_RULES_DEST POLKIT_RULES_DIR "/00-tkms-test.rules"
#define POLKIT_RULES_TMP POLKIT_RULES_DIR "/.00-tkms-test.rules.tmp"
#define POLKIT_LOCK_NAME "tkms-test-polkit.lock"
#define POLKIT_LOCK_TIMEOUT_S 900
#define POLKIT_RULES_TIMEOUT_MS 20000
#define POLKIT_MARKER "tkms-test-env: installed for a test run"
/* The probe: an answer that only the test fixture asks about, flipped by every rules file. */
#define POLKIT_PROBE_ACTION TKMS_ACTION_READ_SECRET

/* What this process installed; read by the abort handler. */
static volatile sig_atomic_t polkit_installed_policy;
static volatile sig_atomic_t polkit_saved_policy;
static volatile sig_atomic_t polkit_installed_rules;
static TkmsTestEnv *real_polkit_env;
static int polkit_lock_fd = -1;

/* Async-signal-safe: unlink() and rename() only. */
static void
polkit_files_remove_signal_safe(void)
{
	if (polkit_installed_rules) {
		unlink(POLKIT_RULES_TMP);
		unlink(POLKIT_RULES_DEST);
		polkit_installed_rules = 0;
	}
	if (polkit_installed_policy) {
		unlink(POLKIT_POLICY_DEST);
		polkit_installed_policy = 0;
	}
	if (polkit_saved_policy) {
		rename(POLKIT_POLICY_SAVED, POLKIT_POLICY_DEST);
		polkit_saved_policy = 0;
	}
}

gboolean
tkms_test_polkit_add_bus_policy(TkmsTestEnv *env, GError **error)
{
	/* polkitd drops privileges to POLKITD_USER: let that user own the name, as the system
	 * bus's own org.freedesktop.PolicyKit1.conf does. */
	static const gchar polkitd_policy[] =
		"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration "
		"1.0//EN\"\n"
		" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		"<busconfig>\n"
		"  <policy user=\"" POLKITD_USER "\">\n"
		"    <allow own=\"org.freedesktop.PolicyKit1\"/>\n"
		"    <allow send_interface=\"org.freedesktop.PolicyKit1.AuthenticationAgent\"/>\n"
		"  </policy>\n"
		"</busconfig>\n";

	if (!tkms_test_bus_add_policy(env->bus, "tkms-test-polkit-mock.conf", polkit_mock_policy,
				      error))
		return FALSE;
	/* an older polkitd that stays root: the mock policy lets root own */
	if (!env->real_polkit || getpwnam(POLKITD_USER) == NULL)
		return TRUE;
	return tkms_test_bus_add_policy(env->bus, "tkms-test-polkitd.conf", polkitd_policy,
					error);
}

static gboolean
polkit_lock(GError **error)
{
	const gchar *dir = g_file_test("/run/lock", G_FILE_TEST_IS_DIR) ? "/run/lock"
									 : g_get_tmp_dir();
	g_autofree gchar *path = g_build_filename(dir, POLKIT_LOCK_NAME, NULL);
	g_autofree gchar *pid = g_strdup_printf("%d\n", (int)getpid());
	gint64 deadline = g_get_monotonic_time() + (gint64)POLKIT_LOCK_TIMEOUT_S * G_USEC_PER_SEC;
	gboolean told = FALSE;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "open %s: %s", path,
			    g_strerror(errno));
		return FALSE;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "flock %s: %s",
				    path, g_strerror(errno));
			close(fd);
			return FALSE;
		}
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				    "another test has used the real polkitd for %d s (lock %s)",
				    POLKIT_LOCK_TIMEOUT_S, path);
			close(fd);
			return FALSE;
		}
		if (!told) {
			g_printerr("tkms-test-env: waiting for another test's real polkitd (%s)\n",
				   path);
			told = TRUE;
		}
		g_usleep(100000);
	}
	if (ftruncate(fd, 0) == 0 && write(fd, pid, strlen(pid)) < 0)
		g_debug("cannot write %s", path);
	polkit_lock_fd = fd;
	return TRUE;
}

/* Holding the lock: whatever a killed run left goes; a policy installed for real is set aside
 * (and put back by polkit_files_remove_signal_safe()). Then ours goes in. */
static gboolean
polkit_install_policy(GError **error)
{
	const gchar *src = g_getenv("TKMS_POLKIT_POLICY");
	g_autofree gchar *contents = NULL;
	g_autofree gchar *existing = NULL;
	g_autofree gchar *ours = NULL;

	if (src == NULL || !g_file_get_contents(src, &contents, NULL, NULL)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
			    "the built polkit policy is required: TKMS_POLKIT_POLICY=%s "
			    "(is polkit/ built?)",
			    src ? src : "(unset)");
		return FALSE;
	}
	if (!g_file_test(POLKIT_RULES_DIR, G_FILE_TEST_IS_DIR)) {
		g_set_error(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY,
			    "%s does not exist (install the Debian package polkitd)",
			    POLKIT_RULES_DIR);
		return FALSE;
	}
	unlink(POLKIT_RULES_TMP);
	unlink(POLKIT_RULES_DEST);
	if (g_file_get_contents(POLKIT_POLICY_DEST, &existing, NULL, NULL) &&
	    strstr(existing, POLKIT_MARKER) != NULL) {
		g_printerr("tkms-test-env: removing %s left by a killed test\n",
			   POLKIT_POLICY_DEST);
		unlink(POLKIT_POLICY_DEST);
	}
	if (g_file_test(POLKIT_POLICY_SAVED, G_FILE_TEST_EXISTS)) {
		if (g_file_test(POLKIT_POLICY_DEST, G_FILE_TEST_EXISTS))
			unlink(POLKIT_POLICY_SAVED); /* reinstalled since: the saved one is old */
		else if (rename(POLKIT_POLICY_SAVED, POLKIT_POLICY_DEST) != 0)
			g_printerr("tkms-test-env: cannot restore %s\n", POLKIT_POLICY_DEST);
	}
	if (g_file_test(POLKIT_POLICY_DEST, G_FILE_TEST_EXISTS)) {
		if (rename(POLKIT_POLICY_DEST, POLKIT_POLICY_SAVED) != 0) {
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
				    "cannot set %s aside: %s", POLKIT_POLICY_DEST,
				    g_strerror(errno));
			return FALSE;
		}
		polkit_saved_policy = 1;
	}
	/* A comment after the root element marks our copy (still well-formed XML). */
	ours = g_strdup_printf("%s\n<!-- %s (pid %d); removed afterwards -->\n", contents,
			       POLKIT_MARKER, (int)getpid());
	polkit_installed_policy = 1;
	return g_file_set_contents_full(POLKIT_POLICY_DEST, ours, -1,
					G_FILE_SET_CONTENTS_CONSISTENT, 0644, error);
}

static const gchar *
probe_user(void)
{
	struct passwd *pw = getpwuid(TKMS_TEST_OTHER_UID);
	return pw != NULL ? pw->pw_name : "nobody";
}

static gboolean
polkit_write_rules(TkmsTestEnv *env, GError **error)
{
	g_autofree gchar *text = NULL;

	env->rules_generation++;
	text = g_strdup_printf(
		"// %s (pid %d); removed afterwards.\n"
		"// Version %u. The probe: tkms-test-env polls this answer (it flips with every "
		"version)\n"
		"// to know that polkitd has read this file.\n"
		"polkit.addRule(function(action, subject) {\n"
		"    if (action.id == \"%s\" && subject.user == \"%s\")\n"
		"        return polkit.Result.%s;\n"
		"    return polkit.Result.NOT_HANDLED;\n"
		"});\n\n"
		"%s\n",
		POLKIT_MARKER, (int)getpid(), env->rules_generation, POLKIT_PROBE_ACTION,
		probe_user(), env->rules_generation % 2 ? "YES" : "NO",
		env->polkit_rules ? env->polkit_rules : "");
	polkit_installed_rules = 1;
	/* write beside, then rename: polkitd (inotify) never reads a half-written file */
	if (!g_file_set_contents_full(POLKIT_RULES_TMP, text, -1, G_FILE_SET_CONTENTS_NONE, 0644,
				      error))
		return FALSE;
	if (rename(POLKIT_RULES_TMP, POLKIT_RULES_DEST) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "rename to %s: %s",
			    POLKIT_RULES_DEST, g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_env_polkit_check_as(TkmsTestEnv *env, const gchar *user, const gchar *action,
			      TkmsTestPolkitAnswer *answer, GError **error)
{
	/* the subject is pkcheck's own process: sh execs it keeping its pid */
	const gchar *argv[] = {"sh", "-c", "exec pkcheck --action-id \"$0\" --process $$", action,
			       NULL};
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	if (!tkms_test_require_program("pkcheck", "polkitd", error) ||
	    !tkms_test_env_run_as(env, user, argv, &out, &err, &status, error))
		return FALSE;
	switch (status) {
	case 0:
		*answer = TKMS_TEST_POLKIT_YES;
		return TRUE;
	case 1:
		*answer = TKMS_TEST_POLKIT_NO;
		return TRUE;
	case 2:
		*answer = TKMS_TEST_POLKIT_CHALLENGE;
		return TRUE;
	default:
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "pkcheck %s as %s: exit status %d: %s", action, user ? user : "root",
			    status, err);
		return FALSE;
	}
}

/* Polls the probe until polkitd answers by the current rules file. */
static gboolean
polkit_wait_rules(TkmsTestEnv *env, GError **error)
{
	TkmsTestPolkitAnswer want =
		env->rules_generation % 2 ? TKMS_TEST_POLKIT_YES : TKMS_TEST_POLKIT_NO;
	gint64 deadline = g_get_monotonic_time() + (gint64)POLKIT_RULES_TIMEOUT_MS * 1000;

	for (;;) {
		g_autoptr(GError) local = NULL;
		TkmsTestPolkitAnswer got;

		if (tkms_test_env_polkit_check_as(env, probe_user(), POLKIT_PROBE_ACTION, &got,
						  &local) &&
		    got == want)
			return TRUE;
		if (local != NULL &&
		    g_error_matches(local, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		if (g_get_monotonic_time() > deadline) {
			tkms_test_proc_set_error(&env->polkit,
						 local ? local->message
						       : "did not load the new rules file in time",
						 error);
			return FALSE;
		}
		g_usleep(10000);
	}
}

gboolean
tkms_test_env_has_real_polkit(TkmsTestEnv *env)
{
	return env->real_polkit;
}

gboolean
tkms_test_env_polkit_is_running(TkmsTestEnv *env)
{
	return tkms_test_proc_is_running(&env->polkit);
}

gboolean
tkms_test_env_polkit_set_rules(TkmsTestEnv *env, const gchar *rules, GError **error)
{
	g_return_val_if_fail(env->real_polkit, FALSE);
	g_free(env->polkit_rules);
	env->polkit_rules = g_strdup(rules);
	if (!polkit_write_rules(env, error))
		return FALSE;
	return !tkms_test_proc_is_running(&env->polkit) || polkit_wait_rules(env, error);
}

gboolean
tkms_test_env_start_polkit(TkmsTestEnv *env, GError **error)
{
	const gchar *argv[] = {POLKITD_PATH, "--no-debug", NULL};

	g_return_val_if_fail(env->real_polkit, FALSE);
	if (!tkms_test_proc_start(&env->polkit, argv, env->tmp_dir,
				  tkms_test_bus_get_address(env->bus), error) ||
	    !tkms_test_bus_wait_for_name(env->bus, &env->polkit, POLKIT_BUS_NAME, error) ||
	    !polkit_wait_rules(env, error)) {
		tkms_test_proc_stop(&env->polkit, SIGKILL, 1000, NULL);
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_env_stop_polkit(TkmsTestEnv *env, GError **error)
{
	g_return_val_if_fail(env->real_polkit, FALSE);
	if (!tkms_test_proc_stop(&env->polkit, SIGTERM, TKMS_TEST_STOP_TIMEOUT_MS, NULL)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "polkitd did not exit within %d s of SIGTERM (killed)",
			    TKMS_TEST_STOP_TIMEOUT_MS / 1000);
		return FALSE;
	}
	if (!tkms_test_bus_wait_name_gone(env->bus, POLKIT_BUS_NAME, error)) {
		g_prefix_error(error, "after polkitd exited: ");
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_polkit_setup_real(TkmsTestEnv *env, const gchar *rules, GError **error)
{
	if (real_polkit_env != NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
			    "only one real-polkitd env per process (polkit's files are global)");
		return FALSE;
	}
	if (geteuid() != 0) {
		g_set_error(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY,
			    "the real polkitd needs root (it is started as root, and its policy "
			    "and rules are installed for the test)");
		return FALSE;
	}
	if (!tkms_test_require_program(POLKITD_PATH, "polkitd", error))
		return FALSE;
	if (!polkit_lock(error))
		return FALSE;
	tkms_test_add_abort_hook(polkit_files_remove_signal_safe);
	real_polkit_env = env;
	env->polkit_rules = g_strdup(rules);
	return polkit_install_policy(error) && polkit_write_rules(env, error) &&
	       tkms_test_env_start_polkit(env, error);
}

void
tkms_test_polkit_teardown_real(TkmsTestEnv *env)
{
	if (real_polkit_env != env)
		return;
	polkit_files_remove_signal_safe();
	if (polkit_lock_fd >= 0) {
		close(polkit_lock_fd);
		polkit_lock_fd = -1;
	}
	real_polkit_env = NULL;
}

TkmsTestEnv *
tkms_test_env_new_real_polkit_or_abort(const gchar *config, const gchar *rules)
{
	g_autoptr(GError) error = NULL;
	TkmsTestEnv *env = tkms_test_env_new_real_polkit(config, rules, &error);

	if (env == NULL)
		tkms_test_exit_on_error(
			"cannot set up the test environment with the real polkitd", error);
	return env;
}
