/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The polkit authority of a TkmsTestEnv: python-dbusmock's polkitd template (every tkms
 * action allowed at start; SetAllowed) or, in suite 'authz', the real polkitd.
 *
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

#include "tkms-test-env.h"

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

/* NULL-terminated list of every action id above. */
const gchar *const *tkms_test_all_actions(void);

/* The mock: replaces its allowed action list (NULL or empty: deny everything). */
gboolean tkms_test_env_polkit_set_allowed(TkmsTestEnv *env, const gchar *const *actions,
					  GError **error);
gboolean tkms_test_env_polkit_allow_all(TkmsTestEnv *env, GError **error);

typedef enum {
	TKMS_TEST_POLKIT_YES,
	TKMS_TEST_POLKIT_NO,
	TKMS_TEST_POLKIT_CHALLENGE,
} TkmsTestPolkitAnswer;

/* rules: polkit JavaScript (polkit.addRule(...)) or NULL for none (the policy defaults). */
TkmsTestEnv *tkms_test_env_new_real_polkit(const gchar *config, const gchar *rules,
					   GError **error);
/* The same without starting tkmsd (tkms_test_env_start_daemon()). */
TkmsTestEnv *tkms_test_env_new_real_polkit_without_daemon(const gchar *config, const gchar *rules,
							  GError **error);
/* Skips the test if a dependency is missing (not root, no polkitd...), exits 1 on any other
 * error. */
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

G_END_DECLS
