/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-env"

#include "tkms-test-env.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tkms-test-env-private.h"

/* ---------------------------------------------------------------------------------------- */
/* tkmsd                                                                                     */

/*
 * Checking tkmsd itself, for the whole suite (./run_tests.sh --sanitize and --valgrind):
 *   TKMS_TEST_DAEMON_ASAN_OPTIONS  ASAN_OPTIONS for tkmsd alone (the sanitizer build: leak
 *                                  detection in tkmsd, not in the test programs)
 *   TKMS_TEST_VALGRIND=1           tkmsd runs under valgrind memcheck; any error, or a
 *                                  definite leak at exit, makes it exit 99 (its report is in
 *                                  tkmsd's log); tests/valgrind.supp is used
 *   TKMS_TEST_DAEMON_EXIT_CHECK=1  tkmsd's last stop (tkms_test_env_free) must end with status
 *                                  0 too, as every tkms_test_env_stop_daemon() must, or the
 *                                  test aborts with its log
 * Under valgrind the exit status speaks only for a tkmsd that exits: one the test kills (kill
 * -9 in test-crash, test-tpm, ...) dies without it. memcheck marks every error it prints
 * (--error-markers), and tkms_test_env_free() fails the test if tkmsd's log, which every start
 * appends to, holds a marker.
 */
#define MEMCHECK_ERROR_BEGIN "tkms-memcheck-error-begin"
#define MEMCHECK_ERROR_END   "tkms-memcheck-error-end"

/* In a sanitizer build, the swtpm TCTI stays loaded in tkmsd until its exit, so that
 * LeakSanitizer's report there names its frames: tpm2-tss's TCTI loader unloads the module
 * when a connection closes, and tests/lsan.supp's entry for it matches a function name. */
#define SWTPM_TCTI_MODULE "libtss2-tcti-swtpm.so.0"

/* tkmsd's LD_PRELOAD: a sanitizer build's runtimes first (tests/meson.build), then what the
 * checker and the test (tkms_test_env_set_daemon_preload) add; NULL: nothing to preload. */
static gchar *
daemon_preload(TkmsTestEnv *env, gboolean sanitized)
{
	const gchar *runtimes = g_getenv("TKMS_TEST_SANITIZER_PRELOAD");
	const gchar *parts[4] = {NULL};
	guint n = 0;

	if (!sanitized && env->daemon_preload == NULL)
		return NULL;
	if (runtimes != NULL && *runtimes != '\0')
		parts[n++] = runtimes;
	if (sanitized)
		parts[n++] = SWTPM_TCTI_MODULE;
	if (env->daemon_preload != NULL)
		parts[n++] = env->daemon_preload;
	return g_strjoinv(":", (gchar **)parts);
}

/* Adds the checker's command and tkmsd's environment before tkmsd's (argv frees its
 * strings). */
static void
add_checker_argv(TkmsTestEnv *env, GPtrArray *argv)
{
	const gchar *asan = g_getenv("TKMS_TEST_DAEMON_ASAN_OPTIONS");
	gboolean sanitized = asan != NULL && *asan != '\0';
	gchar *preload = daemon_preload(env, sanitized);

	if (sanitized || preload != NULL)
		g_ptr_array_add(argv, g_strdup("env"));
	if (sanitized)
		g_ptr_array_add(argv, g_strdup_printf("ASAN_OPTIONS=%s", asan));
	if (preload != NULL)
		g_ptr_array_add(argv, g_strdup_printf("LD_PRELOAD=%s", preload));
	g_free(preload);
	if (g_strcmp0(g_getenv("TKMS_TEST_VALGRIND"), "1") == 0) {
		const gchar *src = g_getenv("TKMS_SOURCE_ROOT");
		g_autofree gchar *supp =
			src != NULL ? g_build_filename(src, "tests", "valgrind.supp", NULL) : NULL;
		g_ptr_array_add(argv, g_strdup("valgrind"));
		g_ptr_array_add(argv, g_strdup("--tool=memcheck"));
		g_ptr_array_add(argv, g_strdup("--error-exitcode=99"));
		g_ptr_array_add(argv, g_strdup("--leak-check=full"));
		g_ptr_array_add(argv, g_strdup("--show-leak-kinds=definite"));
		g_ptr_array_add(argv, g_strdup("--errors-for-leak-kinds=definite"));
		g_ptr_array_add(argv, g_strdup("--num-callers=30"));
		g_ptr_array_add(argv, g_strdup("--error-markers=" MEMCHECK_ERROR_BEGIN
					       "," MEMCHECK_ERROR_END));
		if (supp != NULL && g_file_test(supp, G_FILE_TEST_EXISTS))
			g_ptr_array_add(argv, g_strdup_printf("--suppressions=%s", supp));
	}
}

/* The errors memcheck reported in the log of every tkmsd the test started (the first ones and
 * how many), or NULL if none. */
static gchar *
memcheck_errors(const gchar *log_path)
{
	g_autofree gchar *log = NULL;
	const gchar *first, *p;
	guint n = 0;

	if (log_path == NULL || !g_file_get_contents(log_path, &log, NULL, NULL))
		return NULL;
	/* the marker line as memcheck prints it ("==PID== marker"), not tkmsd's command line */
	first = strstr(log, "== " MEMCHECK_ERROR_BEGIN "\n");
	if (first == NULL)
		return NULL;
	for (p = first; (p = strstr(p, "== " MEMCHECK_ERROR_BEGIN "\n")) != NULL; p++)
		n++;
	/* the first errors are the ones to fix first; their stacks are 30 frames at most */
	return g_strdup_printf("%u error(s); from the first:\n%.16000s", n, first);
}

/* The capabilities the shipped unit gives tkmsd (AmbientCapabilities=, CapabilityBoundingSet=). */
#define UNIT_CAPS  "+setuid,+setgid,+kill"
#define UNIT_GROUP "tss"

/* setpriv as the unit starts tkmsd (tkms_test_env_set_daemon_user()), then the staged tkmsd. */
static gboolean
add_unit_prefix(TkmsTestEnv *env, GPtrArray *argv, const gchar *tkmsd, GError **error)
{
	struct passwd *pw = getpwnam(env->daemon_user);
	struct group *gr = getgrnam(UNIT_GROUP);
	gchar *program = tkms_test_stage_argv0(env->stage, tkmsd, error);

	if (program == NULL)
		return FALSE;
	g_ptr_array_add(argv, program);
	if (pw == NULL || gr == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no user %s or group %s",
			    env->daemon_user, UNIT_GROUP);
		return FALSE;
	}
	g_ptr_array_insert(argv, 0, g_strdup("setpriv"));
	g_ptr_array_insert(argv, 1, g_strdup_printf("--reuid=%u", (guint)pw->pw_uid));
	g_ptr_array_insert(argv, 2, g_strdup_printf("--regid=%u", (guint)gr->gr_gid));
	g_ptr_array_insert(argv, 3, g_strdup("--init-groups"));
	g_ptr_array_insert(argv, 4, g_strdup("--inh-caps=-all," UNIT_CAPS));
	g_ptr_array_insert(argv, 5, g_strdup("--ambient-caps=-all," UNIT_CAPS));
	g_ptr_array_insert(argv, 6, g_strdup("--bounding-set=-all," UNIT_CAPS));
	g_ptr_array_insert(argv, 7, g_strdup("--no-new-privs"));
	g_ptr_array_insert(argv, 8, g_strdup("--"));
	return TRUE;
}

gboolean
tkms_test_env_start_daemon(TkmsTestEnv *env, GError **error)
{
	const gchar *tkmsd = g_getenv("TKMSD");
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);

	g_return_val_if_fail(!tkms_test_proc_is_running(&env->daemon), FALSE);
	if (tkmsd == NULL || !g_file_test(tkmsd, G_FILE_TEST_IS_EXECUTABLE)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
			    "tkmsd not found: TKMSD=%s (is daemon/ built?)",
			    tkmsd ? tkmsd : "(unset)");
		return FALSE;
	}
	add_checker_argv(env, argv);
	if (env->daemon_user == NULL)
		g_ptr_array_add(argv, g_strdup(tkmsd));
	else if (!add_unit_prefix(env, argv, tkmsd, error))
		return FALSE;
	g_ptr_array_add(argv, g_strdup("--bus-address"));
	g_ptr_array_add(argv, g_strdup(tkms_test_bus_get_address(env->bus)));
	g_ptr_array_add(argv, g_strdup("--tcti"));
	g_ptr_array_add(argv,
			g_strdup(env->tcti != NULL ? env->tcti : tkms_test_env_get_tcti(env)));
	g_ptr_array_add(argv, g_strdup("--state-dir"));
	g_ptr_array_add(argv, g_strdup(env->state_dir));
	if (env->config_path != NULL) {
		g_ptr_array_add(argv, g_strdup("--config"));
		g_ptr_array_add(argv, g_strdup(env->config_path));
	}
	g_ptr_array_add(argv, g_strdup("--verbose"));
	g_ptr_array_add(argv, NULL);
	for (guint i = 0; env->daemon_wrapper != NULL && env->daemon_wrapper[i] != NULL; i++)
		g_ptr_array_insert(argv, (gint)i, g_strdup(env->daemon_wrapper[i]));

	if (!tkms_test_proc_start(&env->daemon, (const gchar *const *)argv->pdata, env->tmp_dir,
				  tkms_test_bus_get_address(env->bus), error) ||
	    !tkms_test_bus_wait_for_name(env->bus, &env->daemon, TKMS_BUS_NAME, error)) {
		tkms_test_proc_stop(&env->daemon, SIGKILL, 1000, NULL);
		return FALSE;
	}
	if (env->client == NULL) {
		env->client =
			tkms_client_new_sync(tkms_test_bus_get_connection(env->bus), NULL, error);
		if (env->client == NULL) {
			g_prefix_error(error, "tkms_client_new_sync: ");
			return FALSE;
		}
	}
	return tkms_test_env_sync_client(env, env->client, error);
}

gboolean
tkms_test_env_sync_client(TkmsTestEnv *env, TkmsClient *client, GError **error)
{
	g_autofree gchar *want = tkms_test_bus_name_owner(env->bus, TKMS_BUS_NAME);
	gint64 deadline = g_get_monotonic_time() + (gint64)TKMS_TEST_NAME_TIMEOUT_MS * 1000;

	for (;;) {
		g_autofree gchar *have = tkms_client_dup_name_owner(client);
		if (g_strcmp0(have, want) == 0)
			return TRUE;
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				    "the client still sees %s as the owner of %s, not %s",
				    have ? have : "nobody", TKMS_BUS_NAME, want ? want : "nobody");
			return FALSE;
		}
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(1000);
	}
}

gboolean
tkms_test_env_stop_daemon(TkmsTestEnv *env, GError **error)
{
	gint status = 0;

	if (!tkms_test_proc_is_running(&env->daemon)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "tkmsd is not running");
		return FALSE;
	}
	if (!tkms_test_proc_stop(&env->daemon, SIGTERM,
				 TKMS_TEST_STOP_TIMEOUT_MS * tkms_test_timeout_factor(), &status)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "tkmsd did not exit within %u s of SIGTERM (killed)",
			    TKMS_TEST_STOP_TIMEOUT_MS * tkms_test_timeout_factor() / 1000);
		return FALSE;
	}
	/* Wait until the bus has dropped the name, so that a restart is observable (the
	 * client's check below says if it never did). */
	tkms_test_bus_wait_name_gone(env->bus, TKMS_BUS_NAME, NULL);
	if (env->client != NULL && !tkms_test_env_sync_client(env, env->client, error))
		return FALSE;
	if (status != 0) {
		g_autofree gchar *log = tkms_test_read_log_tail(env->daemon.log_path);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "tkmsd exited with %s %d on SIGTERM; its output:\n%s",
			    status < 0 ? "signal" : "status", ABS(status), log);
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_env_daemon_is_running(TkmsTestEnv *env)
{
	return tkms_test_proc_is_running(&env->daemon);
}

gint
tkms_test_env_get_daemon_pid(TkmsTestEnv *env)
{
	return tkms_test_proc_is_running(&env->daemon) ? env->daemon.pid : 0;
}

gint
tkms_test_env_get_hook_launcher_pid(TkmsTestEnv *env)
{
	gint daemon = tkms_test_env_get_daemon_pid(env);
	g_autoptr(GDir) proc = NULL;
	const gchar *name;

	if (daemon <= 0 || (proc = g_dir_open("/proc", 0, NULL)) == NULL)
		return 0;
	while ((name = g_dir_read_name(proc)) != NULL) {
		g_autofree gchar *path = NULL;
		g_autofree gchar *stat = NULL;
		const gchar *end;
		gint ppid = 0;

		if (!g_ascii_isdigit(name[0]))
			continue;
		path = g_strdup_printf("/proc/%s/stat", name);
		/* "PID (COMM) STATE PPID ...", COMM may hold anything: the last ')' ends it */
		if (!g_file_get_contents(path, &stat, NULL, NULL) ||
		    (end = strrchr(stat, ')')) == NULL || !g_str_has_prefix(end, ") ") ||
		    sscanf(end + 2, "%*c %d", &ppid) != 1 || ppid != daemon ||
		    strstr(stat, " (tkmsd-hooks) ") == NULL)
			continue;
		return atoi(name);
	}
	return 0;
}

static gboolean
chown_tree(const gchar *path, uid_t uid, gid_t gid, GError **error)
{
	g_autoptr(GDir) dir = NULL;
	const gchar *name;

	if (lchown(path, uid, gid) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "chown %s: %s", path,
			    g_strerror(errno));
		return FALSE;
	}
	if (!g_file_test(path, G_FILE_TEST_IS_DIR) || g_file_test(path, G_FILE_TEST_IS_SYMLINK))
		return TRUE;
	dir = g_dir_open(path, 0, error);
	if (dir == NULL)
		return FALSE;
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, name, NULL);
		if (!chown_tree(child, uid, gid, error))
			return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_env_set_daemon_user(TkmsTestEnv *env, const gchar *user, GError **error)
{
	struct passwd *pw;
	struct group *gr;

	g_clear_pointer(&env->daemon_user, g_free);
	if (user == NULL)
		return chown_tree(env->state_dir, 0, 0, error);
	if (geteuid() != 0) {
		g_set_error(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY,
			    "starting tkmsd as %s needs root", user);
		return FALSE;
	}
	if (!tkms_test_require_program("setpriv", "util-linux", error))
		return FALSE;
	gr = getgrnam(UNIT_GROUP);
	if (gr == NULL) {
		g_set_error(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY,
			    "no group %s (the TPM's; tkms.sysusers makes it)", UNIT_GROUP);
		return FALSE;
	}
	pw = getpwnam(user);
	if (pw == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no user %s", user);
		return FALSE;
	}
	if (!chown_tree(env->state_dir, pw->pw_uid, gr->gr_gid, error))
		return FALSE;
	env->daemon_user = g_strdup(user);
	return TRUE;
}

void
tkms_test_env_set_daemon_wrapper(TkmsTestEnv *env, const gchar *const *wrapper)
{
	g_strfreev(env->daemon_wrapper);
	env->daemon_wrapper = g_strdupv((gchar **)wrapper);
}

void
tkms_test_env_set_daemon_preload(TkmsTestEnv *env, const gchar *library)
{
	g_free(env->daemon_preload);
	env->daemon_preload = g_strdup(library);
}

guint64
tkms_test_env_get_daemon_rss_kib(TkmsTestEnv *env)
{
	gint pid = tkms_test_env_get_daemon_pid(env);
	g_autofree gchar *path = NULL;
	g_autofree gchar *status = NULL;
	const gchar *line;

	if (pid <= 0)
		return 0;
	path = g_strdup_printf("/proc/%d/status", pid);
	if (!g_file_get_contents(path, &status, NULL, NULL))
		return 0;
	line = strstr(status, "\nVmRSS:");
	return line != NULL ? g_ascii_strtoull(line + strlen("\nVmRSS:"), NULL, 10) : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The TPM                                                                                   */

gboolean
tkms_test_env_start_tpm(TkmsTestEnv *env, GError **error)
{
	if (!tkms_test_swtpm_start(env->swtpm, error))
		return FALSE;
	return env->abrmd == NULL ||
	       tkms_test_abrmd_start(env->abrmd,
				     env->abrmd_tpm_tcti != NULL
					     ? env->abrmd_tpm_tcti
					     : tkms_test_swtpm_get_tcti(env->swtpm),
				     error);
}

gboolean
tkms_test_env_tpm_via_abrmd(TkmsTestEnv *env)
{
	return env->abrmd != NULL;
}

void
tkms_test_env_set_abrmd_tpm_tcti(TkmsTestEnv *env, const gchar *tcti)
{
	g_free(env->abrmd_tpm_tcti);
	env->abrmd_tpm_tcti = g_strdup(tcti);
}

gboolean
tkms_test_env_stop_tpm(TkmsTestEnv *env, GError **error)
{
	/* the resource manager goes with the TPM it serves (it would fail on its own) */
	if (env->abrmd != NULL && tkms_test_abrmd_is_running(env->abrmd) &&
	    !tkms_test_abrmd_stop(env->abrmd, error))
		return FALSE;
	return tkms_test_swtpm_stop(env->swtpm, error);
}

gboolean
tkms_test_env_signal_tpm(TkmsTestEnv *env, gint sig)
{
	return tkms_test_swtpm_signal(env->swtpm, sig);
}

/* The resource manager holds the swtpm's one connection: tpm2_pcrextend goes through it. */
static gboolean
extend_pcr_via_abrmd(TkmsTestEnv *env, guint pcr, GError **error)
{
	g_autofree gchar *spec = g_strdup_printf(
		"%u:sha256=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", pcr);
	const gchar *argv[] = {"tpm2_pcrextend", "-T", TKMS_TEST_ABRMD_TCTI, spec, NULL};
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	if (!tkms_test_env_run(env, argv, &out, &err, &status, error))
		return FALSE;
	if (status != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "tpm2_pcrextend %s through tpm2-abrmd failed (%d): %s", spec, status,
			    err);
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_env_extend_pcr(TkmsTestEnv *env, guint pcr, GError **error)
{
	/* swtpm serves one client at a time and tkmsd keeps its connection open */
	gboolean restart = tkms_test_proc_is_running(&env->daemon);

	if (restart && !tkms_test_env_stop_daemon(env, error))
		return FALSE;
	if (env->abrmd != NULL ? !extend_pcr_via_abrmd(env, pcr, error)
			       : !tkms_test_swtpm_extend_pcr(env->swtpm, pcr, error))
		return FALSE;
	return !restart || tkms_test_env_start_daemon(env, error);
}

/* ---------------------------------------------------------------------------------------- */
/* Life cycle                                                                                */

static TkmsTestEnv *
env_new(const gchar *config, gboolean with_daemon, gboolean real_polkit, const gchar *rules,
	GError **error)
{
	g_autoptr(TkmsTestEnv) env = g_new0(TkmsTestEnv, 1);
	g_autofree gchar *tpm_dir = NULL;
	g_autofree gchar *tpm_log = NULL;
	g_autofree gchar *stage_dir = NULL;

	env->keep = g_strcmp0(g_getenv("TKMS_TEST_KEEP"), "1") == 0;
	env->real_polkit = real_polkit;
	env->tmp_dir = tkms_test_make_tmp_dir(env->keep, error);
	if (env->tmp_dir == NULL)
		return NULL;
	tkms_test_proc_init(&env->daemon, "tkmsd",
			    g_build_filename(env->tmp_dir, "tkmsd.log", NULL));
	tkms_test_proc_init(&env->polkit, real_polkit ? "polkitd" : "polkit-mock",
			    g_build_filename(env->tmp_dir,
					     real_polkit ? "polkitd.log" : "polkit-mock.log",
					     NULL));
	stage_dir = g_build_filename(env->tmp_dir, "stage", NULL);
	env->stage = tkms_test_stage_new(stage_dir);
	env->state_dir = g_build_filename(env->tmp_dir, "state", NULL);
	if (g_mkdir(env->state_dir, 0700) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "mkdir %s: %s",
			    env->state_dir, g_strerror(errno));
		return NULL;
	}
	if (config != NULL) {
		env->config_path = g_build_filename(env->tmp_dir, "tkmsd.conf", NULL);
		if (!g_file_set_contents(env->config_path, config, -1, error))
			return NULL;
	}

	tpm_dir = g_build_filename(env->tmp_dir, "tpm", NULL);
	tpm_log = g_build_filename(env->tmp_dir, "swtpm.log", NULL);
	env->swtpm = tkms_test_swtpm_new(tpm_dir, tpm_log, error);
	if (env->swtpm == NULL)
		return NULL;
	env->bus = tkms_test_bus_new(env->tmp_dir, error);
	if (env->bus == NULL || !tkms_test_polkit_add_bus_policy(env, error))
		return NULL;
	if (tkms_test_abrmd_wanted()) {
		g_autofree gchar *log = g_build_filename(env->tmp_dir, "tpm2-abrmd.log", NULL);
		env->abrmd = tkms_test_abrmd_new(env->bus, log, error);
		if (env->abrmd == NULL)
			return NULL;
	}
	if (!tkms_test_bus_start(env->bus, error))
		return NULL;
	if (env->abrmd != NULL &&
	    !tkms_test_abrmd_start(env->abrmd, tkms_test_swtpm_get_tcti(env->swtpm), error))
		return NULL;
	if (real_polkit ? !tkms_test_polkit_setup_real(env, rules, error)
			: !tkms_test_polkit_start_mock(env, error))
		return NULL;
	if (with_daemon && !tkms_test_env_start_daemon(env, error))
		return NULL;
	return g_steal_pointer(&env);
}

TkmsTestEnv *
tkms_test_env_new(const gchar *config, GError **error)
{
	return env_new(config, TRUE, FALSE, NULL, error);
}

TkmsTestEnv *
tkms_test_env_new_without_daemon(const gchar *config, GError **error)
{
	return env_new(config, FALSE, FALSE, NULL, error);
}

TkmsTestEnv *
tkms_test_env_new_real_polkit(const gchar *config, const gchar *rules, GError **error)
{
	return env_new(config, TRUE, TRUE, rules, error);
}

TkmsTestEnv *
tkms_test_env_new_real_polkit_without_daemon(const gchar *config, const gchar *rules,
					     GError **error)
{
	return env_new(config, FALSE, TRUE, rules, error);
}

TkmsTestEnv *
tkms_test_env_new_or_abort(const gchar *config)
{
	g_autoptr(GError) error = NULL;
	TkmsTestEnv *env = tkms_test_env_new(config, &error);

	if (env == NULL)
		tkms_test_exit_on_error("cannot set up the test environment", error);
	return env;
}

void
tkms_test_env_free(TkmsTestEnv *env)
{
	if (env == NULL)
		return;
	g_clear_object(&env->client);
	if (env->tmp_dir != NULL && tkms_test_proc_is_running(&env->daemon) &&
	    g_strcmp0(g_getenv("TKMS_TEST_DAEMON_EXIT_CHECK"), "1") == 0) {
		g_autoptr(GError) error = NULL;
		if (!tkms_test_env_stop_daemon(env, &error))
			g_error("tkmsd's last stop: %s", error->message);
	}
	if (env->tmp_dir != NULL && tkms_test_under_valgrind()) {
		g_autofree gchar *errors = memcheck_errors(env->daemon.log_path);
		if (errors != NULL)
			g_error("memcheck reported errors in tkmsd (%s): %s", env->daemon.log_path,
				errors);
	}
	g_strfreev(env->daemon_wrapper);
	g_free(env->daemon_preload);
	if (env->tmp_dir != NULL) {
		tkms_test_proc_clear(&env->daemon);
		tkms_test_proc_clear(&env->polkit);
	}
	if (env->real_polkit)
		tkms_test_polkit_teardown_real(env);
	g_clear_pointer(&env->abrmd, tkms_test_abrmd_free);
	g_clear_pointer(&env->abrmd_tpm_tcti, g_free);
	g_clear_pointer(&env->bus, tkms_test_bus_free);
	g_clear_pointer(&env->swtpm, tkms_test_swtpm_free);
	g_clear_pointer(&env->stage, tkms_test_stage_free);
	tkms_test_remove_tmp_dir(env->tmp_dir, env->keep);
	g_free(env->tmp_dir);
	g_free(env->state_dir);
	g_free(env->config_path);
	g_free(env->tcti);
	g_free(env->polkit_rules);
	g_free(env->daemon_user);
	g_free(env);
}

/* ---------------------------------------------------------------------------------------- */
/* Accessors                                                                                 */

const gchar *
tkms_test_env_get_bus_address(TkmsTestEnv *env)
{
	return tkms_test_bus_get_address(env->bus);
}

GDBusConnection *
tkms_test_env_get_connection(TkmsTestEnv *env)
{
	return tkms_test_bus_get_connection(env->bus);
}

gboolean
tkms_test_env_add_bus_policy(TkmsTestEnv *env, const gchar *file_name, const gchar *contents,
			     GError **error)
{
	return tkms_test_bus_add_policy(env->bus, file_name, contents, error) &&
	       tkms_test_bus_reload(env->bus, error);
}

TkmsClient *
tkms_test_env_get_client(TkmsTestEnv *env)
{
	return env->client;
}

const gchar *
tkms_test_env_get_state_dir(TkmsTestEnv *env)
{
	return env->state_dir;
}

const gchar *
tkms_test_env_get_tmp_dir(TkmsTestEnv *env)
{
	return env->tmp_dir;
}

const gchar *
tkms_test_env_get_config_path(TkmsTestEnv *env)
{
	return env->config_path;
}

guint16
tkms_test_env_get_tpm_port(TkmsTestEnv *env)
{
	return tkms_test_swtpm_get_port(env->swtpm);
}

const gchar *
tkms_test_env_get_tcti(TkmsTestEnv *env)
{
	if (env->abrmd != NULL)
		return TKMS_TEST_ABRMD_TCTI;
	return tkms_test_swtpm_get_tcti(env->swtpm);
}

void
tkms_test_env_set_tcti(TkmsTestEnv *env, const gchar *tcti)
{
	g_free(env->tcti);
	env->tcti = g_strdup(tcti);
}

TkmsTestSwtpm *
tkms_test_env_get_swtpm(TkmsTestEnv *env)
{
	return env->swtpm;
}

void
tkms_test_env_dump_logs(TkmsTestEnv *env)
{
	tkms_test_proc_dump_log(&env->daemon);
	tkms_test_proc_dump_log(&env->polkit);
	if (env->abrmd != NULL)
		tkms_test_abrmd_dump_log(env->abrmd);
	if (env->bus != NULL)
		tkms_test_bus_dump_log(env->bus);
	if (env->swtpm != NULL)
		tkms_test_swtpm_dump_log(env->swtpm);
}

gchar *
tkms_test_env_get_daemon_log(TkmsTestEnv *env)
{
	gchar *contents = NULL;

	if (!g_file_get_contents(env->daemon.log_path, &contents, NULL, NULL))
		return g_strdup("");
	return contents;
}

const gchar *
tkms_test_helper_path(void)
{
	return g_getenv("TKMS_TEST_HELPER");
}

/* ---------------------------------------------------------------------------------------- */
/* Commands, as root and as other users                                                      */

gboolean
tkms_test_env_run(TkmsTestEnv *env, const gchar *const *argv, gchar **out_stdout,
		  gchar **out_stderr, gint *exit_status, GError **error)
{
	TkmsTestRunSpec spec = {
		.cwd = env->tmp_dir,
		.bus_address = tkms_test_bus_get_address(env->bus),
	};

	return tkms_test_run_command(&spec, argv, out_stdout, out_stderr, exit_status, error);
}

gint
tkms_test_env_run_status(TkmsTestEnv *env, const gchar *const *argv, gchar **out_stdout)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	tkms_test_env_run(env, argv, out_stdout, &err, &status, &error);
	g_assert_no_error(error);
	g_test_message("%s: status %d, stderr: %s", argv[1], status, err);
	return status;
}

const gchar *
tkms_test_env_stage_program(TkmsTestEnv *env, const gchar *path, GError **error)
{
	return tkms_test_stage_program(env->stage, path, error);
}

static gboolean
is_other_user(const gchar *user)
{
	return user != NULL && !g_str_equal(user, "root");
}

/* argv to run as user (NULL: as TKMS_TEST_OTHER_UID without groups), its program staged. */
static GPtrArray *
as_other_argv(TkmsTestEnv *env, const gchar *user, const gchar *const *argv, GError **error)
{
	g_autofree gchar *program = tkms_test_stage_argv0(env->stage, argv[0], error);

	if (program == NULL)
		return NULL;
	return tkms_test_setpriv_argv(user, TKMS_TEST_OTHER_UID, program, argv + 1, error);
}

static gboolean
run_as_other(TkmsTestEnv *env, const gchar *user, const gchar *const *argv, gchar **out_stdout,
	     gchar **out_stderr, gint *exit_status, GError **error)
{
	g_autoptr(GPtrArray) full = as_other_argv(env, user, argv, error);
	TkmsTestRunSpec spec = {
		.cwd = "/",
		.bus_address = tkms_test_bus_get_address(env->bus),
		.lib_dir = tkms_test_stage_get_lib_dir(env->stage),
	};

	if (full == NULL)
		return FALSE;
	return tkms_test_run_command(&spec, (const gchar *const *)full->pdata, out_stdout,
				     out_stderr, exit_status, error);
}

gboolean
tkms_test_env_run_as_user(TkmsTestEnv *env, const gchar *const *argv, gchar **out_stdout,
			  gchar **out_stderr, gint *exit_status, GError **error)
{
	return run_as_other(env, NULL, argv, out_stdout, out_stderr, exit_status, error);
}

gboolean
tkms_test_env_run_as(TkmsTestEnv *env, const gchar *user, const gchar *const *argv,
		     gchar **out_stdout, gchar **out_stderr, gint *exit_status, GError **error)
{
	TkmsTestRunSpec spec = {
		.cwd = "/",
		.bus_address = tkms_test_bus_get_address(env->bus),
	};

	if (is_other_user(user))
		return run_as_other(env, user, argv, out_stdout, out_stderr, exit_status, error);
	return tkms_test_run_command(&spec, argv, out_stdout, out_stderr, exit_status, error);
}

GSubprocess *
tkms_test_env_spawn_as(TkmsTestEnv *env, const gchar *user, const gchar *const *argv,
		       GError **error)
{
	g_autoptr(GPtrArray) full = NULL;
	TkmsTestRunSpec spec = {
		.cwd = "/",
		.bus_address = tkms_test_bus_get_address(env->bus),
	};

	if (!is_other_user(user))
		return tkms_test_spawn_piped(&spec, argv, error);
	full = as_other_argv(env, user, argv, error);
	if (full == NULL)
		return NULL;
	spec.lib_dir = tkms_test_stage_get_lib_dir(env->stage);
	return tkms_test_spawn_piped(&spec, (const gchar *const *)full->pdata, error);
}
