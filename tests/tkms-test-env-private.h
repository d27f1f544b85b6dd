/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the fixture's files share about a TkmsTestEnv; tests include tkms-test-env.h only. */

#include "tkms-test-abrmd.h"
#include "tkms-test-bus.h"
#include "tkms-test-env.h"
#include "tkms-test-process.h"
#include "tkms-test-swtpm.h"

G_BEGIN_DECLS

#define TKMS_TEST_NAME_TIMEOUT_MS 20000
#define TKMS_TEST_STOP_TIMEOUT_MS 10000

struct _TkmsTestEnv {
	gchar *tmp_dir;
	gchar *state_dir;
	gchar *config_path;
	gboolean keep;

	TkmsTestSwtpm *swtpm;
	TkmsTestAbrmd *abrmd; /* in front of swtpm (TKMS_TEST_TPM_VIA=abrmd), or NULL */
	gchar *tcti; /* tkmsd's --tcti if not the swtpm's (tkms_test_env_set_tcti) */
	/* tpm2-abrmd's TCTI to the TPM if not the swtpm's (tkms_test_env_set_abrmd_tpm_tcti) */
	gchar *abrmd_tpm_tcti;
	TkmsTestBus *bus;
	TkmsTestStage *stage; /* what runs as other users */
	TkmsTestProc polkit;
	TkmsTestProc daemon;
	gchar **daemon_wrapper; /* runs tkmsd (tkms_test_env_set_daemon_wrapper) */
	gchar *daemon_preload;	/* tkms_test_env_set_daemon_preload */

	TkmsClient *client;

	/* tkmsd runs as this user, as the shipped unit starts it; NULL: as root */
	gchar *daemon_user;

	/* the real polkitd instead of the mock (tkms-test-polkit.c) */
	gboolean real_polkit;
	gchar *polkit_rules;
	guint rules_generation;
};

/* tkms-test-polkit.c: the authority's bus policy (before the bus starts), then the mock or
 * the real polkitd (after), and the real one's machine-global files on free. */
gboolean tkms_test_polkit_add_bus_policy(TkmsTestEnv *env, GError **error);
gboolean tkms_test_polkit_start_mock(TkmsTestEnv *env, GError **error);
gboolean tkms_test_polkit_setup_real(TkmsTestEnv *env, const gchar *rules, GError **error);
void tkms_test_polkit_teardown_real(TkmsTestEnv *env);

G_END_DECLS
