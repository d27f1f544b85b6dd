/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-env"

/* Self-test of the fixture: the private bus enforces the shipped policy, the polkit mock
 * answers, swtpm restarts on the same port with the same state, tkmsd starts and stops. */

#include "tkms-test-util.h"

static TkmsTestEnv *env;

static gboolean
polkit_check(const gchar *action)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariantBuilder) details = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
	gboolean authorized = FALSE, challenge = TRUE;

	g_variant_builder_add(details, "{sv}", "name",
			      g_variant_new_string(g_dbus_connection_get_unique_name(
				      tkms_test_env_get_connection(env))));
	reply = g_dbus_connection_call_sync(
		tkms_test_env_get_connection(env), "org.freedesktop.PolicyKit1",
		"/org/freedesktop/PolicyKit1/Authority", "org.freedesktop.PolicyKit1.Authority",
		"CheckAuthorization",
		g_variant_new("((sa{sv})sa{ss}us)", "system-bus-name", details, action, NULL, 0u,
			      ""),
		G_VARIANT_TYPE("((bba{ss}))"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
	g_assert_no_error(error);
	g_variant_get(reply, "((bba{ss}))", &authorized, &challenge, NULL);
	return authorized;
}

static void
test_polkit_mock(void)
{
	g_autoptr(GError) error = NULL;
	const gchar *only_seal[] = {TKMS_ACTION_SEAL, NULL};

	for (const gchar *const *a = tkms_test_all_actions(); *a != NULL; a++)
		g_assert_true(polkit_check(*a));
	g_assert_false(polkit_check("org.example.unknown"));

	tkms_test_env_polkit_set_allowed(env, only_seal, &error);
	g_assert_no_error(error);
	g_assert_true(polkit_check(TKMS_ACTION_SEAL));
	g_assert_false(polkit_check(TKMS_ACTION_USE_KEY));

	tkms_test_env_polkit_set_allowed(env, NULL, &error);
	g_assert_no_error(error);
	for (const gchar *const *a = tkms_test_all_actions(); *a != NULL; a++)
		g_assert_false(polkit_check(*a));

	tkms_test_env_polkit_allow_all(env, &error);
	g_assert_no_error(error);
	g_assert_true(polkit_check(TKMS_ACTION_ADMIN));
}

static void
test_run_as_user(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	const gchar *argv[] = {"sh", "-c", "id -u; id -g; id -G; echo $DBUS_SYSTEM_BUS_ADDRESS",
			       NULL};
	g_autofree gchar *expected = NULL;
	gint status = -1;

	tkms_test_env_run_as_user(env, argv, &out, &err, &status, &error);
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, 0);
	expected = g_strdup_printf("65534\n65534\n65534\n%s\n", tkms_test_env_get_bus_address(env));
	g_assert_cmpstr(out, ==, expected);
}

/* The shipped policy: only root may own org.tkms.KeyManager; the test policy: only root may
 * own the polkit name. */
static void
test_bus_policy(void)
{
	const gchar *helper = tkms_test_helper_path();
	const gchar *names[] = {"org.tkms.KeyManager", "org.freedesktop.PolicyKit1",
				"org.example.Other"};

	g_assert_nonnull(helper);
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *out = NULL;
		const gchar *argv[] = {helper, "own", names[i], NULL};
		gint status = -1;

		tkms_test_env_run_as_user(env, argv, &out, NULL, &status, &error);
		g_assert_no_error(error);
		g_test_message("nobody owning %s: %s", names[i], out);
		g_assert_cmpint(status, ==, 2);
		g_assert_nonnull(strstr(out, "AccessDenied"));
	}
}

static void
test_tpm_restart(void)
{
	g_autoptr(GError) error = NULL;
	guint16 port = tkms_test_env_get_tpm_port(env);

	/* below the ephemeral range, where a reconnecting client could take it (tkms-test-util.h) */
	g_assert_cmpuint(port, >=, 10000);
	g_assert_cmpuint(port, <, 32768);
	tkms_test_env_extend_pcr(env, 16, &error);
	g_assert_no_error(error);
	tkms_test_env_stop_tpm(env, &error);
	g_assert_no_error(error);
	/* With the TPM gone tpm2-tools cannot connect. */
	g_assert_false(tkms_test_env_extend_pcr(env, 16, &error));
	g_assert_nonnull(error);
	g_clear_error(&error);
	tkms_test_env_start_tpm(env, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(tkms_test_env_get_tpm_port(env), ==, port);
	tkms_test_env_extend_pcr(env, 16, &error);
	g_assert_no_error(error);
}

static void
test_daemon(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) version = NULL;

	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	g_assert_true(tkms_test_env_daemon_is_running(env));
	g_assert_nonnull(tkms_test_env_get_client(env));
	version = tkms_test_get_property(env, "Version");
	g_assert_cmpstr(g_variant_get_string(version, NULL), ==, TKMS_TEST_PROJECT_VERSION);

	/* SIGTERM: clean exit with status 0; a restart on the same state works. */
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	g_assert_false(tkms_test_env_daemon_is_running(env));
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	g_assert_true(g_file_test(tkms_test_env_get_state_dir(env), G_FILE_TEST_IS_DIR));
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int ret;

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_without_daemon(NULL, &error);
	if (env == NULL)
		tkms_test_exit_on_error("cannot set up the test environment", error);
	g_test_add_func("/env/polkit-mock", test_polkit_mock);
	g_test_add_func("/env/run-as-user", test_run_as_user);
	g_test_add_func("/env/bus-policy", test_bus_policy);
	g_test_add_func("/env/tpm-restart", test_tpm_restart);
	g_test_add_func("/env/daemon", test_daemon);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	return ret;
}
