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
 */

#include <gio/gio.h>

#include "tkms-client.h"

G_BEGIN_DECLS

/* The polkit action ids of DESIGN.md (a contract). */
#define TKMS_ACTION_READ_KEY "org.tkms.KeyManager.read-key"
#define TKMS_ACTION_CREATE_KEY "org.tkms.KeyManager.create-key"
#define TKMS_ACTION_USE_KEY "org.tkms.KeyManager.use-key"
#define TKMS_ACTION_SEAL "org.tkms.KeyManager.seal"
#define TKMS_ACTION_DESTROY_KEY "org.tkms.KeyManager.destroy-key"
#define TKMS_ACTION_MANAGE_KEY "org.tkms.KeyManager.manage-key"
#define TKMS_ACTION_READ_SECRET "org.tkms.KeyManager.read-secret"
#define TKMS_ACTION_ADMIN "org.tkms.KeyManager.admin"

/* The uid tkms_test_env_run_as_user() runs commands as (nobody). */
#define TKMS_TEST_OTHER_UID 65534

typedef struct _TkmsTestEnv TkmsTestEnv;

/* NULL-terminated list of every action id above. */
const gchar *const *tkms_test_all_actions(void);

/* config: contents of a tkmsd.conf (GKeyFile text) or NULL for the daemon's defaults. */
TkmsTestEnv *tkms_test_env_new(const gchar *config, GError **error);
/* Like tkms_test_env_new() but without starting tkmsd (call tkms_test_env_start_daemon()). */
TkmsTestEnv *tkms_test_env_new_without_daemon(const gchar *config, GError **error);
void tkms_test_env_free(TkmsTestEnv *env);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsTestEnv, tkms_test_env_free)

/* Creates an env or aborts the test with the error (for test main() and fixtures). */
TkmsTestEnv *tkms_test_env_new_or_abort(const gchar *config);

const gchar *tkms_test_env_get_bus_address(TkmsTestEnv *env);
GDBusConnection *tkms_test_env_get_connection(TkmsTestEnv *env);
/* The client on get_connection(); valid as long as env (survives daemon restarts). */
TkmsClient *tkms_test_env_get_client(TkmsTestEnv *env);
const gchar *tkms_test_env_get_state_dir(TkmsTestEnv *env);
const gchar *tkms_test_env_get_tmp_dir(TkmsTestEnv *env);
const gchar *tkms_test_env_get_config_path(TkmsTestEnv *env); /* NULL without config */
guint16 tkms_test_env_get_tpm_port(TkmsTestEnv *env);
/* "swtpm:host=127.0.0.1,port=N" */
const gchar *tkms_test_env_get_tcti(TkmsTestEnv *env);
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

/* Stops / restarts swtpm on the same port with the same state directory. */
gboolean tkms_test_env_stop_tpm(TkmsTestEnv *env, GError **error);
/* Sends sig (e.g. SIGSTOP/SIGCONT to make the TPM hang and come back) to swtpm. */
gboolean tkms_test_env_signal_tpm(TkmsTestEnv *env, gint sig);
gboolean tkms_test_env_start_tpm(TkmsTestEnv *env, GError **error);

/* Extends SHA-256 PCR pcr with a fixed digest using tpm2_pcrextend. swtpm serves one client
 * at a time and tkmsd keeps its connection open, so the daemon is stopped around the command
 * (and restarted if it was running). */
gboolean tkms_test_env_extend_pcr(TkmsTestEnv *env, guint pcr, GError **error);

/* Replaces the polkit mock's allowed action list (NULL or empty: deny everything). */
gboolean tkms_test_env_polkit_set_allowed(TkmsTestEnv *env, const gchar *const *actions,
					  GError **error);
gboolean tkms_test_env_polkit_allow_all(TkmsTestEnv *env, GError **error);

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

/* Copies the program at path (once per env) where every user can run it, with the build's
 * shared libraries ($TKMS_TEST_LIB_DIR) beside it, and returns the copy's path (valid as long
 * as env). run_as_user, run_as and spawn_as do this by themselves for the build's programs and
 * for any program the other user could not reach (a checkout in /root is mode 0700); their
 * runs get LD_LIBRARY_PATH for the staged libraries. */
const gchar *tkms_test_env_stage_program(TkmsTestEnv *env, const gchar *path, GError **error);

/* Path of the tkms-test-helper program ($TKMS_TEST_HELPER), or NULL. */
const gchar *tkms_test_helper_path(void);

/* Loopback TCP port helpers for starting servers (swtpm) on free ports. */
gboolean tkms_test_port_is_free(guint16 port);
gboolean tkms_test_port_accepts(guint16 port);

/* The pid of the running tkmsd, or 0. */
gint tkms_test_env_get_daemon_pid(TkmsTestEnv *env);

/* ---------------------------------------------------------------------------------------- */
/* The real polkitd and real test users (suite 'authz')                                      */
/*
 * tkms_test_env_new_real_polkit() is tkms_test_env_new() with the real polkitd instead of the
 * mock: `/usr/lib/polkit-1/polkitd --no-debug`, started as root with DBUS_SYSTEM_BUS_ADDRESS
 * set to the private bus. For the env's lifetime it installs the built, merged policy
 * ($TKMS_POLKIT_POLICY) as /usr/share/polkit-1/actions/org.tkms.KeyManager.policy (a file
 * already there is set aside and put back afterwards) and the given rules as
 * /etc/polkit-1/rules.d/00-tkms-test.rules; both are removed by tkms_test_env_free(), by the
 * abort handler, and (left by a SIGKILLed run) by the next real-polkitd env.
 *
 * Those files are machine-global, so real-polkitd envs never overlap: an flock on
 * /run/lock/tkms-test-polkit.lock is held for the env's lifetime (other processes wait for
 * it) and only one such env may exist per process. Tests using it are also is_parallel: false.
 *
 * Facts (polkit 122, Debian 12): polkitd drops privileges to the user 'polkitd' right after
 * start, so the private bus lets that user own org.freedesktop.PolicyKit1 (as the system bus
 * does); it re-reads rules.d through inotify within a few ms of a rename and emits Changed;
 * uid 0 is always authorized whatever the rules say; without an agent, a challenge
 * (AUTH_ADMIN*) answers "not authorized, challenge" at once, with or without
 * ALLOW_USER_INTERACTION; without logind no subject is in an active session.
 */

typedef enum {
	TKMS_TEST_POLKIT_YES,
	TKMS_TEST_POLKIT_NO,
	TKMS_TEST_POLKIT_CHALLENGE,
} TkmsTestPolkitAnswer;

/* rules: polkit JavaScript (polkit.addRule(...)) or NULL for none (the policy defaults). */
TkmsTestEnv *tkms_test_env_new_real_polkit(const gchar *config, const gchar *rules,
					   GError **error);
TkmsTestEnv *tkms_test_env_new_real_polkit_or_abort(const gchar *config, const gchar *rules);
gboolean tkms_test_env_has_real_polkit(TkmsTestEnv *env);

/* Replaces the rules file and, if polkitd runs, waits until it answers by the new file: the
 * file carries a probe rule for (nobody, org.tkms.KeyManager.read-secret) whose answer flips
 * with every version, polled with pkcheck. Leave that pair out of the test's own rules. */
gboolean tkms_test_env_polkit_set_rules(TkmsTestEnv *env, const gchar *rules, GError **error);

/* Asks polkitd (pkcheck, run as user) whether user may do action, without interaction. */
gboolean tkms_test_env_polkit_check_as(TkmsTestEnv *env, const gchar *user, const gchar *action,
				       TkmsTestPolkitAnswer *answer, GError **error);

/* Stops polkitd (SIGTERM; waits until its name has left the bus) / starts it again (waits
 * until it owns its name and answers by the current rules). */
gboolean tkms_test_env_stop_polkit(TkmsTestEnv *env, GError **error);
gboolean tkms_test_env_start_polkit(TkmsTestEnv *env, GError **error);
gboolean tkms_test_env_polkit_is_running(TkmsTestEnv *env);

/* Creates the system user name (useradd --system --no-create-home --user-group, shell
 * nologin) unless it exists; returns its uid and gid (either may be NULL). Users are kept. */
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
