/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * TkmsTestEnv: an isolated tkms stack for integration tests and the benchmark.
 *
 * tkms_test_env_new() starts, on free TCP ports and in a fresh temporary directory:
 *   - swtpm (socket mode, TPM 2.0, empty state, startup-clear) on 127.0.0.1:port/port+1,
 *   - a private dbus-daemon with a system-bus-like, deny-by-default config that includes the
 *     shipped data/org.tkms.KeyManager.conf and a test-only policy for the polkit mock,
 *   - python-dbusmock's polkitd template (every tkms action allowed at start),
 *   - with TKMS_TEST_TPM_VIA=abrmd, tpm2-abrmd in front of the swtpm on that bus
 *     (tests/tkms-test-abrmd.h),
 *   - tkmsd (path from $TKMSD) on that bus and that TPM, with its own state directory,
 * then connects to the bus and builds a TkmsClient.
 *
 * Environment (set by tests/meson.build): TKMSD (tkmsd binary), TKMS_DATA_DIR (source data/),
 * TKMS_TEST_HELPER (tests/tkms-test-helper), TKMSCTL (optional), TKMS_TEST_LIB_DIR (the
 * directory of the built libtkms, staged for programs run as other users). TKMS_TEST_KEEP=1 keeps the
 * temporary directory for inspection.
 *
 * Cleanup: tkms_test_env_free() stops every process and deletes the directory. Children die
 * with the test process (PR_SET_PDEATHSIG); if the test aborts (failed assertion, crash, meson
 * timeout) a signal handler prints the tail of every log and removes the directory, and
 * directories left by killed runs are swept at the next start.
 *
 * The fixture's parts, one file each: tkms-test-process.{c,h} (processes, commands, other
 * users, staging, abort cleanup), tkms-test-swtpm.{c,h}, tkms-test-bus.{c,h} (the private
 * dbus-daemon), tkms-test-polkit.{c,h} (the mock and the real polkitd) and this file's
 * tkms-test-env.c (the env and tkmsd). Tests include this header only.
 *
 * A missing dependency (swtpm, dbus-daemon, python3-dbusmock, polkitd, setpriv, useradd, root
 * for the real polkitd...) is a TKMS_TEST_ERROR_MISSING_DEPENDENCY error, and the *_or_abort()
 * constructors skip the test naming it (status 77, or a TAP SKIP plan under meson).
 */

#include <gio/gio.h>

#include "tkms-client.h"
#include "tkms-test-process.h"
#include "tkms-test-swtpm.h"

G_BEGIN_DECLS

/* The uid tkms_test_env_run_as_user() runs commands as (nobody). */
#define TKMS_TEST_OTHER_UID 65534

typedef struct _TkmsTestEnv TkmsTestEnv;

/* config: contents of a tkmsd.conf (GKeyFile text) or NULL for the daemon's defaults. */
TkmsTestEnv *tkms_test_env_new(const gchar *config, GError **error);
/* Like tkms_test_env_new() but without starting tkmsd (call tkms_test_env_start_daemon()). */
TkmsTestEnv *tkms_test_env_new_without_daemon(const gchar *config, GError **error);
void tkms_test_env_free(TkmsTestEnv *env);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsTestEnv, tkms_test_env_free)

/* Creates an env or ends the test: skipped if a dependency is missing
 * (tkms_test_skip_missing()), else exit 1 (for test main() and fixtures). */
TkmsTestEnv *tkms_test_env_new_or_abort(const gchar *config);

const gchar *tkms_test_env_get_bus_address(TkmsTestEnv *env);
GDBusConnection *tkms_test_env_get_connection(TkmsTestEnv *env);
/* Adds a bus policy file (busconfig XML) to the running private bus, which reads it at once:
 * for other services of a test's own (the bench's echo service). */
gboolean tkms_test_env_add_bus_policy(TkmsTestEnv *env, const gchar *file_name,
				      const gchar *contents, GError **error);
/* The client on get_connection(); valid as long as env (survives daemon restarts). */
TkmsClient *tkms_test_env_get_client(TkmsTestEnv *env);
const gchar *tkms_test_env_get_state_dir(TkmsTestEnv *env);
const gchar *tkms_test_env_get_tmp_dir(TkmsTestEnv *env);
const gchar *tkms_test_env_get_config_path(TkmsTestEnv *env); /* NULL without config */
guint16 tkms_test_env_get_tpm_port(TkmsTestEnv *env);
/* The TCTI of the TPM as tkmsd and the tests' TPM tools reach it: "swtpm:host=127.0.0.1,port=N",
 * or "tabrmd:bus_type=system" with TKMS_TEST_TPM_VIA=abrmd (tests/tkms-test-abrmd.h; give
 * the command the private bus, as tkms_test_env_run() does). */
const gchar *tkms_test_env_get_tcti(TkmsTestEnv *env);
/* The TCTI tkmsd gets at its next starts instead of the swtpm's (NULL: the swtpm's again), e.g.
 * a recording proxy's (tests/tkms-test-tpm-proxy.h). */
void tkms_test_env_set_tcti(TkmsTestEnv *env, const gchar *tcti);
/* Whether tpm2-abrmd stands between tkmsd and the swtpm (TKMS_TEST_TPM_VIA=abrmd). */
gboolean tkms_test_env_tpm_via_abrmd(TkmsTestEnv *env);
/* With tpm2-abrmd: the TCTI it reaches the TPM by at its next starts (tkms_test_env_start_tpm)
 * instead of the swtpm's (NULL: the swtpm's again), e.g. a recording proxy's, which then sees
 * what the resource manager sends on tkmsd's behalf. */
void tkms_test_env_set_abrmd_tpm_tcti(TkmsTestEnv *env, const gchar *tcti);
/* The daemon's combined stdout/stderr so far (all runs). */
gchar *tkms_test_env_get_daemon_log(TkmsTestEnv *env);
/* Prints the tail of every process's log to stderr (done automatically on abort). */
void tkms_test_env_dump_logs(TkmsTestEnv *env);

/* SIGTERM; fails if the daemon does not exit within 10 s (then it is killed) or exits with a
 * status other than 0. The state directory is kept. */
gboolean tkms_test_env_stop_daemon(TkmsTestEnv *env, GError **error);
/* Starts tkmsd with the same arguments and waits (20 s) until it owns org.tkms.KeyManager. */
gboolean tkms_test_env_start_daemon(TkmsTestEnv *env, GError **error);
gboolean tkms_test_env_daemon_is_running(TkmsTestEnv *env);

/* GDBusProxy sends calls to the unique name it last saw owning org.tkms.KeyManager, and
 * learns about a new owner only from the main context. Iterates the default main context
 * until client follows the current owner (or none). start/stop_daemon do this for the env's
 * own client; call it for other clients (tkms_test_new_client()) after a restart. */
gboolean tkms_test_env_sync_client(TkmsTestEnv *env, TkmsClient *client, GError **error);

/* Stops / restarts swtpm on the same port with the same state directory (and tpm2-abrmd in
 * front of it, with TKMS_TEST_TPM_VIA=abrmd). */
gboolean tkms_test_env_stop_tpm(TkmsTestEnv *env, GError **error);
/* Sends sig (e.g. SIGSTOP/SIGCONT to make the TPM hang and come back) to swtpm. */
gboolean tkms_test_env_signal_tpm(TkmsTestEnv *env, gint sig);
gboolean tkms_test_env_start_tpm(TkmsTestEnv *env, GError **error);

/* Extends SHA-256 PCR pcr with a fixed digest using tpm2_pcrextend. swtpm serves one client
 * at a time and tkmsd keeps its connection open, so the daemon is stopped around the command
 * (and restarted if it was running). */
gboolean tkms_test_env_extend_pcr(TkmsTestEnv *env, guint pcr, GError **error);

/* Runs argv as uid/gid TKMS_TEST_OTHER_UID (setpriv, no supplementary groups) with
 * DBUS_SYSTEM_BUS_ADDRESS and TKMS_TEST_BUS_ADDRESS set to the private bus, and waits (at
 * most 30 s). Returns FALSE only if it could not be run or timed out; *exit_status is the exit
 * code (or 128 + signal). out_stdout/out_stderr may be NULL. */
gboolean tkms_test_env_run_as_user(TkmsTestEnv *env, const gchar *const *argv,
				   gchar **out_stdout, gchar **out_stderr, gint *exit_status,
				   GError **error);

/* Runs argv as the current user with the same environment additions. */
gboolean tkms_test_env_run(TkmsTestEnv *env, const gchar *const *argv, gchar **out_stdout,
			   gchar **out_stderr, gint *exit_status, GError **error);
/* tkms_test_env_run for a tool whose verdict is its exit status (openssl): asserts that it
 * ran, logs its stderr, returns the status. */
gint tkms_test_env_run_status(TkmsTestEnv *env, const gchar *const *argv, gchar **out_stdout);

/* Copies the program at path (once per env) where every user can run it, with the build's
 * shared libraries ($TKMS_TEST_LIB_DIR) beside it, and returns the copy's path (valid as long
 * as env). run_as_user, run_as and spawn_as do this by themselves for the build's programs and
 * for any program the other user could not reach (a checkout in /root is mode 0700); their
 * runs get LD_LIBRARY_PATH for the staged libraries. */
const gchar *tkms_test_env_stage_program(TkmsTestEnv *env, const gchar *path, GError **error);

/* Path of the tkms-test-helper program ($TKMS_TEST_HELPER), or NULL. */
const gchar *tkms_test_helper_path(void);

/* The pid of the running tkmsd, or 0. */
gint tkms_test_env_get_daemon_pid(TkmsTestEnv *env);
/* The pid of the running tkmsd's hook launcher (its child process named tkmsd-hooks), or 0. */
gint tkms_test_env_get_hook_launcher_pid(TkmsTestEnv *env);

/* From the next tkms_test_env_start_daemon() on, tkmsd runs as the shipped unit starts it:
 * as user (which must exist) with group tss as its group and the user's groups, with
 * CAP_SETUID, CAP_SETGID and CAP_KILL as its ambient, inheritable and only bounding
 * capabilities and no_new_privs (setpriv, util-linux), from a staged copy; the state
 * directory is chowned to user:tss, as systemd does with StateDirectory=. NULL: as root.
 * Needs root; a missing setpriv or group tss is TKMS_TEST_ERROR_MISSING_DEPENDENCY. */
gboolean tkms_test_env_set_daemon_user(TkmsTestEnv *env, const gchar *user, GError **error);
/* The running tkmsd's resident set size (VmRSS) in KiB, or 0 if it does not run. */
guint64 tkms_test_env_get_daemon_rss_kib(TkmsTestEnv *env);
/* A command that runs tkmsd at its next starts, e.g. {"prlimit", "--memlock=0:0", NULL}: tkmsd's
 * command line follows it (it must exec tkmsd, keeping the pid); NULL: none. */
void tkms_test_env_set_daemon_wrapper(TkmsTestEnv *env, const gchar *const *wrapper);
/* A library preloaded into tkmsd at its next starts (LD_PRELOAD, after a sanitizer build's
 * runtimes, which must come first); NULL: none. */
void tkms_test_env_set_daemon_preload(TkmsTestEnv *env, const gchar *library);

/* The swtpm of env (for the benchmark's own measurements). */
TkmsTestSwtpm *tkms_test_env_get_swtpm(TkmsTestEnv *env);

/* ---------------------------------------------------------------------------------------- */
/* Real test users (suite 'authz')                                                           */

/* Creates the system user name (useradd --system --no-create-home --user-group, shell
 * nologin) unless it exists; returns its uid and gid (either may be NULL). Users are kept.
 * Without useradd, or not as root, the error is TKMS_TEST_ERROR_MISSING_DEPENDENCY. */
gboolean tkms_test_ensure_user(const gchar *name, guint32 *uid, guint32 *gid, GError **error);

/* Like tkms_test_env_run_as_user() but as the named user with its groups
 * (setpriv --reuid --regid --init-groups); user NULL or "root": as the current user. */
gboolean tkms_test_env_run_as(TkmsTestEnv *env, const gchar *user, const gchar *const *argv,
			      gchar **out_stdout, gchar **out_stderr, gint *exit_status,
			      GError **error);

/* Starts argv as user (NULL or "root": as the current user) with the same environment and
 * stdin/stdout pipes (stderr inherited), for long-running helpers ("tkms-test-helper serve").
 * It is not waited for: close its stdin and wait, or force_exit. */
GSubprocess *tkms_test_env_spawn_as(TkmsTestEnv *env, const gchar *user,
				    const gchar *const *argv, GError **error);

G_END_DECLS

/* The polkit authority's part of the API (the mock's SetAllowed, the real polkitd). */
#include "tkms-test-polkit.h"
