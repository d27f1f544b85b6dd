/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-limits"

/* Configured limits: [limits] MaxPayload applies to every payload (and GetRandom's length);
 * MaxInFlightPerCaller turns excess concurrent calls into Busy; MaxKeysPerUser caps the keys
 * one uid owns (destroyed keys do not count, system keys count against root). And the
 * system's: with RLIMIT_MEMLOCK 0, [security] RequireLockedMemory decides whether tkmsd refuses
 * to start or starts with a warning. */

#include <string.h>

#include "tkms-test-util.h"

#define LIMIT 1024

static void
assert_limit(GError *error)
{
	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
}

static void
test_max_payload(void)
{
	g_autoptr(TkmsTestEnv) env = tkms_test_env_new_or_abort("[limits]\nMaxPayload=1024\n");
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *aes = tkms_test_key_name("lim-aes");
	g_autofree gchar *hmac = tkms_test_key_name("lim-hmac");
	g_autofree gchar *ec = tkms_test_key_name("lim-ec");
	g_autoptr(GVariant) i1 = tkms_test_create_key(client, aes, "aes-256-gcm", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(client, hmac, "hmac-sha256", NULL);
	g_autoptr(GVariant) i3 = tkms_test_create_key(client, ec, "ecdsa-p256", NULL);
	g_autoptr(GBytes) at_limit = tkms_test_bytes_pattern(LIMIT, 1);
	g_autoptr(GBytes) over = tkms_test_bytes_pattern(LIMIT + 1, 2);
	g_autoptr(GError) error = NULL;

	/* Exactly the limit works, including the way back (ciphertext and blob are longer
	 * than the limit by their overhead). */
	{
		g_autoptr(GBytes) ct = tkms_client_encrypt_sync(client, aes, at_limit, NULL, NULL,
								&error);
		g_autoptr(GBytes) pt = NULL;
		g_assert_no_error(error);
		pt = tkms_client_decrypt_sync(client, aes, ct, NULL, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(pt, at_limit);
	}
	{
		g_autoptr(GBytes) blob =
			tkms_client_seal_sync(client, at_limit, NULL, NULL, &error);
		g_autoptr(GBytes) data = NULL;
		g_assert_no_error(error);
		data = tkms_client_unseal_sync(client, blob, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(data, at_limit);
	}
	{
		g_autoptr(GBytes) r = tkms_client_get_random_sync(client, LIMIT, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(g_bytes_get_size(r), ==, LIMIT);
	}
	{
		g_autoptr(GBytes) mac = tkms_client_hmac_sync(client, hmac, at_limit, NULL, &error);
		g_assert_no_error(error);
	}
	{
		g_autoptr(GBytes) sig = tkms_client_sign_sync(client, ec, at_limit, NULL, &error);
		g_assert_no_error(error);
	}

	/* One byte more is LimitExceeded everywhere. */
	{
		g_autoptr(GBytes) ct =
			tkms_client_encrypt_sync(client, aes, over, NULL, NULL, &error);
		assert_limit(error);
		g_assert_null(ct);
		g_clear_error(&error);
	}
	{
		g_autoptr(GBytes) blob = tkms_client_seal_sync(client, over, NULL, NULL, &error);
		assert_limit(error);
		g_assert_null(blob);
		g_clear_error(&error);
	}
	{
		g_autoptr(GBytes) r = tkms_client_get_random_sync(client, LIMIT + 1, NULL, &error);
		assert_limit(error);
		g_assert_null(r);
		g_clear_error(&error);
	}
	{
		g_autoptr(GBytes) mac = tkms_client_hmac_sync(client, hmac, over, NULL, &error);
		assert_limit(error);
		g_assert_null(mac);
		g_clear_error(&error);
	}
	{
		g_autoptr(GBytes) sig = tkms_client_sign_sync(client, ec, over, NULL, &error);
		assert_limit(error);
		g_assert_null(sig);
		g_clear_error(&error);
	}
	/* An over-long context is a payload too. */
	{
		g_autoptr(GBytes) small = tkms_test_bytes_str("x");
		g_autoptr(GBytes) ct =
			tkms_client_encrypt_sync(client, aes, small, over, NULL, &error);
		tkms_assert_error_one_of(error, TKMS_ERROR_LIMIT_EXCEEDED,
					 TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(ct);
		g_clear_error(&error);
	}
}

typedef struct {
	guint pending;
	guint ok;
	guint busy;
	guint other;
} BusyCount;

static void
sign_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	BusyCount *c = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) sig = tkms_client_sign_finish(TKMS_CLIENT(source), res, &error);

	if (sig != NULL)
		c->ok++;
	else if (g_error_matches(error, TKMS_ERROR, TKMS_ERROR_BUSY))
		c->busy++;
	else {
		g_test_message("unexpected error: %s", error->message);
		c->other++;
	}
	c->pending--;
}

static void
test_busy(void)
{
	g_autoptr(TkmsTestEnv) env =
		tkms_test_env_new_or_abort("[limits]\nMaxInFlightPerCaller=2\n");
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *rsa = tkms_test_key_name("busy-rsa");
	g_autoptr(GVariant) info = tkms_test_create_key(client, rsa, "rsa-2048", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("busy");
	BusyCount c = {0};

	for (guint i = 0; i < 24; i++) {
		c.pending++;
		tkms_client_sign(client, rsa, data, NULL, sign_done, &c);
	}
	while (c.pending > 0)
		g_main_context_iteration(NULL, TRUE);
	g_test_message("%u ok, %u busy, %u other", c.ok, c.busy, c.other);
	g_assert_cmpuint(c.other, ==, 0);
	g_assert_cmpuint(c.ok, >=, 2);
	g_assert_cmpuint(c.busy, >=, 1);

	/* Busy is transient: one call at a time goes through. */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) sig = tkms_client_sign_sync(client, rsa, data, NULL, &error);
		g_assert_no_error(error);
	}
}

static gint
create_as_nobody(TkmsTestEnv *env, const gchar *name, gchar **out)
{
	const gchar *argv[] = {tkms_test_helper_path(), "create", name, "hmac-sha256", NULL};
	g_autoptr(GError) error = NULL;
	gint status = -1;

	tkms_test_env_run_as_user(env, argv, out, NULL, &status, &error);
	g_assert_no_error(error);
	return status;
}

static void
test_max_keys(void)
{
	g_autoptr(TkmsTestEnv) env = tkms_test_env_new_or_abort(
		"[limits]\nMaxKeysPerUser=3\n[lifecycle]\nDestroyWaitingPeriod=0\n");
	TkmsClient *client = tkms_test_env_get_client(env);
	g_auto(GStrv) name = g_new0(gchar *, 6);
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < 5; i++)
		name[i] = tkms_test_key_name("quota");
	for (guint i = 0; i < 3; i++) {
		g_autoptr(GVariant) info =
			tkms_test_create_key(client, name[i], "hmac-sha256", NULL);
	}
	/* the fourth key of this uid is refused, whatever its name or type */
	{
		g_autoptr(GVariant) info = tkms_client_create_key_sync(
			client, name[3], "ecdsa-p256", NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
		g_assert_null(info);
		g_clear_error(&error);
	}
	/* root's system keys are root's keys */
	{
		g_autofree gchar *sys = g_strconcat("system:", name[3], NULL);
		g_autoptr(GVariant) info = tkms_client_create_key_sync(client, sys, "hmac-sha256",
								       NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
		g_assert_null(info);
		g_clear_error(&error);
	}
	/* the refused name was not taken: nothing was created */
	{
		g_autoptr(GVariant) info =
			tkms_client_get_key_info_sync(client, name[3], NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
		g_clear_error(&error);
	}
	/* another user has a quota of their own */
	for (guint i = 0; i < 3; i++) {
		g_autofree gchar *out = NULL;
		g_assert_cmpint(create_as_nobody(env, name[i], &out), ==, 0);
	}
	{
		g_autofree gchar *out = NULL;
		g_assert_cmpint(create_as_nobody(env, name[3], &out), ==, 2);
		g_assert_true(g_str_has_prefix(out, "ERROR LimitExceeded"));
	}
	/* a destroyed key no longer counts (its name stays taken) */
	tkms_client_destroy_key_sync(client, name[0], NULL, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GVariant) info =
			tkms_test_create_key(client, name[4], "hmac-sha256", NULL);
		g_autoptr(GVariant) again = tkms_client_create_key_sync(client, name[3],
									"hmac-sha256", NULL, NULL,
									&error);
		tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
		g_assert_null(again);
	}
}

/* Payload sizes are checked when a call arrives, before polkit is asked: with every action
 * denied, an oversized Encrypt, Decrypt or Seal still gets LimitExceeded (the engine's message),
 * while one of normal size gets PermissionDenied. */
static void
test_max_payload_first(void)
{
	g_autoptr(TkmsTestEnv) env = tkms_test_env_new_or_abort(
		"[limits]\nMaxPayload=1024\n[cache]\nAuthorizationTtl=0\n");
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *aes = tkms_test_key_name("first-aes");
	g_autoptr(GVariant) info = tkms_test_create_key(client, aes, "aes-256-gcm", NULL);
	g_autoptr(GBytes) over = tkms_test_bytes_pattern(LIMIT + 1, 3);
	g_autoptr(GBytes) at_limit = tkms_test_bytes_pattern(LIMIT, 4);
	g_autoptr(GBytes) ct_over = tkms_test_bytes_pattern(LIMIT + 1 + 64, 5);
	g_autoptr(GError) error = NULL;

	tkms_test_env_polkit_set_allowed(env, NULL, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GBytes) ct =
			tkms_client_encrypt_sync(client, aes, over, NULL, NULL, &error);
		assert_limit(error);
		g_assert_nonnull(strstr(error->message, "The plaintext is 1025 bytes"));
		g_assert_null(ct);
		g_clear_error(&error);
	}
	{
		g_autoptr(GBytes) pt =
			tkms_client_decrypt_sync(client, aes, ct_over, NULL, NULL, &error);
		assert_limit(error);
		g_assert_nonnull(strstr(error->message, "The ciphertext is"));
		g_assert_null(pt);
		g_clear_error(&error);
	}
	{
		g_autoptr(GBytes) blob = tkms_client_seal_sync(client, over, NULL, NULL, &error);
		assert_limit(error);
		g_assert_null(blob);
		g_clear_error(&error);
	}
	{
		g_autoptr(GBytes) ct =
			tkms_client_encrypt_sync(client, aes, at_limit, NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_PERMISSION_DENIED);
		g_assert_null(ct);
		g_clear_error(&error);
	}
}

/* RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK (root's would lift the limit): the secure heap cannot be
 * locked. With [security] RequireLockedMemory=true tkmsd refuses to start and says why and what
 * to do; without, it starts, says so once, and works. */
static void
test_locked_memory(void)
{
	static const gchar *const wrapper[] = {"prlimit", "--memlock=0:0", "setpriv",
					       "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock",
					       NULL};
	g_autoptr(TkmsTestEnv) env = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *log = NULL;
	g_autoptr(GBytes) data = tkms_test_bytes_str("kept in locked memory, or not");
	g_autoptr(GBytes) ct = NULL, pt = NULL;
	g_autofree gchar *aes = tkms_test_key_name("lim-lock");
	g_autoptr(GVariant) info = NULL;
	const gchar *warning = "the secure heap for key material (1048576 bytes) cannot be locked "
			       "(RLIMIT_MEMLOCK is 0 bytes): key material may be swapped to disk";

	if (!g_find_program_in_path("prlimit") || !g_find_program_in_path("setpriv")) {
		g_test_skip("prlimit and setpriv (util-linux) are needed");
		return;
	}
	env = tkms_test_env_new_without_daemon("[security]\nRequireLockedMemory=true\n", &error);
	if (g_error_matches(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY)) {
		g_test_skip(error->message);
		return;
	}
	g_assert_no_error(error);
	tkms_test_env_set_daemon_wrapper(env, wrapper);
	g_assert_false(tkms_test_env_start_daemon(env, &error));
	g_test_message("RequireLockedMemory=true: %s", error->message);
	g_assert_nonnull(strstr(error->message, "exited with status 1"));
	g_clear_error(&error);
	log = tkms_test_env_get_daemon_log(env);
	g_assert_nonnull(strstr(log, "[security] RequireLockedMemory=true, but the secure heap for "
				     "key material (1048576 bytes) cannot be locked (RLIMIT_MEMLOCK "
				     "is 0 bytes); raise LimitMEMLOCK="));
	g_assert_null(strstr(log, warning));

	g_assert_true(g_file_set_contents(tkms_test_env_get_config_path(env),
					  "[security]\nRequireLockedMemory=false\n", -1, NULL));
	g_assert_true(tkms_test_env_start_daemon(env, &error));
	g_assert_no_error(error);
	g_clear_pointer(&log, g_free);
	log = tkms_test_env_get_daemon_log(env);
	g_assert_nonnull(strstr(log, warning));
	g_assert_true(strstr(log, warning) == g_strrstr(log, warning)); /* once */
	info = tkms_test_create_key(tkms_test_env_get_client(env), aes, "aes-256-gcm", NULL);
	ct = tkms_client_encrypt_sync(tkms_test_env_get_client(env), aes, data, NULL, NULL,
				      &error);
	g_assert_no_error(error);
	pt = tkms_client_decrypt_sync(tkms_test_env_get_client(env), aes, ct, NULL, NULL, &error);
	g_assert_no_error(error);
	tkms_assert_bytes_equal(pt, data);
	g_assert_true(tkms_test_env_stop_daemon(env, &error));
	g_assert_no_error(error);

	/* and with root's usual rights nothing is said */
	tkms_test_env_set_daemon_wrapper(env, NULL);
	g_assert_true(tkms_test_env_start_daemon(env, &error));
	g_assert_no_error(error);
	g_clear_pointer(&log, g_free);
	log = tkms_test_env_get_daemon_log(env);
	g_assert_true(strstr(log, warning) == g_strrstr(log, warning));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/limits/max-payload", test_max_payload);
	g_test_add_func("/limits/max-payload-first", test_max_payload_first);
	g_test_add_func("/limits/busy", test_busy);
	g_test_add_func("/limits/max-keys", test_max_keys);
	g_test_add_func("/limits/locked-memory", test_locked_memory);
	return g_test_run();
}
