/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-tpm"

/* The daemon's properties, and a TPM that goes away and comes back: calls fail fast with
 * TpmUnavailable (no hang), TpmAvailable follows, and tkmsd recovers without a restart. */

#include <signal.h>
#include <string.h>

#include "tkms-test-util.h"

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))

/* A TPM command must not take long; a hang would hit D-Bus's timeout far later. */
#define FAST_US (10 * G_USEC_PER_SEC)

static gboolean
get_bool(const gchar *property)
{
	g_autoptr(GVariant) v = tkms_test_get_property(env, property);
	g_assert_true(g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN));
	return g_variant_get_boolean(v);
}

static gchar *
get_string(const gchar *property)
{
	g_autoptr(GVariant) v = tkms_test_get_property(env, property);
	g_assert_true(g_variant_is_of_type(v, G_VARIANT_TYPE_STRING));
	return g_variant_dup_string(v, NULL);
}

/* The daemon publishes TPM state changes from its worker: the property follows a call's
 * outcome shortly, not necessarily before the reply. Waits up to 5 s for the value. */
static gboolean
tpm_available_becomes(gboolean value)
{
	gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

	while (get_bool("TpmAvailable") != value) {
		if (g_get_monotonic_time() > deadline)
			return FALSE;
		tkms_test_spin(20);
	}
	return TRUE;
}

/* Waits (up to 5 s) until the client's cached TpmAvailable, updated by PropertiesChanged,
 * has the value. */
static gboolean
client_tpm_available_becomes(gboolean value)
{
	gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

	while (g_get_monotonic_time() < deadline) {
		if (tkms_client_get_tpm_available(CLIENT) == value)
			return TRUE;
		tkms_test_spin(20);
	}
	return tkms_client_get_tpm_available(CLIENT) == value;
}

static void
test_properties(void)
{
	g_autofree gchar *version = NULL;
	g_autofree gchar *manufacturer = NULL;
	g_autofree gchar *firmware = NULL;
	g_autoptr(GVariant) counter = NULL;
	g_auto(GStrv) parts = NULL;

	/* tkmsd owns its name before its TPM worker has connected: TpmAvailable turns TRUE
	 * (with a PropertiesChanged) a moment later. */
	g_assert_true(tpm_available_becomes(TRUE));
	g_assert_true(client_tpm_available_becomes(TRUE));

	version = get_string("Version");
	manufacturer = get_string("TpmManufacturer");
	firmware = get_string("TpmFirmwareVersion");
	counter = tkms_test_get_property(env, "TpmLockoutCounter");
	g_assert_cmpstr(version, ==, TKMS_TEST_PROJECT_VERSION);
	g_assert_false(get_bool("TpmLockedOut"));
	g_assert_cmpstr(manufacturer, ==, "IBM");
	/* "major.minor.x.y" */
	g_assert_cmpuint(strlen(firmware), >, 0);
	parts = g_strsplit(firmware, ".", -1);
	g_assert_cmpuint(g_strv_length(parts), ==, 4);
	for (guint i = 0; parts[i] != NULL; i++) {
		g_assert_cmpuint(strlen(parts[i]), >, 0);
		g_assert_cmpuint(strspn(parts[i], "0123456789"), ==, strlen(parts[i]));
	}
	g_assert_true(g_variant_is_of_type(counter, G_VARIANT_TYPE_UINT32));
	g_assert_cmpuint(g_variant_get_uint32(counter), ==, 0);

	/* The client's cached view agrees. */
	g_assert_cmpstr(tkms_client_get_daemon_version(CLIENT), ==, TKMS_TEST_PROJECT_VERSION);
	g_assert_cmpstr(tkms_client_get_tpm_manufacturer(CLIENT), ==, manufacturer);
	g_assert_cmpstr(tkms_client_get_tpm_firmware_version(CLIENT), ==, firmware);
	g_assert_true(tkms_client_get_tpm_available(CLIENT));
	g_assert_false(tkms_client_get_tpm_locked_out(CLIENT));
	g_assert_cmpuint(tkms_client_get_tpm_lockout_counter(CLIENT), ==, 0);

	/* Read-only. */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) r = g_dbus_connection_call_sync(
			tkms_test_env_get_connection(env), TKMS_BUS_NAME, TKMS_OBJECT_PATH,
			"org.freedesktop.DBus.Properties", "Set",
			g_variant_new("(ssv)", "org.tkms.KeyManager", "TpmAvailable",
				      g_variant_new_boolean(FALSE)),
			NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
		g_assert_null(r);
		g_assert_nonnull(error);
		g_assert_true(get_bool("TpmAvailable"));
	}
}

static void
assert_unavailable_fast(const gchar *what, GError *error, gint64 start)
{
	gint64 took = g_get_monotonic_time() - start;

	g_test_message("%s without TPM: %s (%.2f s)", what, error ? error->message : "success",
		       took / 1e6);
	tkms_assert_error(error, TKMS_ERROR_TPM_UNAVAILABLE);
	g_assert_cmpint(took, <, FAST_US);
}

static void
test_tpm_gone(void)
{
	g_autofree gchar *hmac = tkms_test_key_name("gone-hmac");
	g_autofree gchar *ec = tkms_test_key_name("gone-ec");
	g_autofree gchar *aes = tkms_test_key_name("gone-aes");
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, hmac, "hmac-sha256", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GVariant) i3 = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("tpm gone");
	g_autoptr(GBytes) mac = NULL, sig = NULL, blob = NULL;
	g_autoptr(GError) error = NULL;

	mac = tkms_client_hmac_sync(CLIENT, hmac, data, NULL, &error);
	g_assert_no_error(error);
	sig = tkms_client_sign_sync(CLIENT, ec, data, NULL, &error);
	g_assert_no_error(error);
	blob = tkms_client_seal_sync(CLIENT, data, NULL, NULL, &error);
	g_assert_no_error(error);

	for (guint round = 0; round < 2; round++) {
		g_test_message("round %u", round);
		tkms_test_env_stop_tpm(env, &error);
		g_assert_no_error(error);

		/* Each kind of TPM work fails fast with TpmUnavailable. */
		{
			gint64 t = g_get_monotonic_time();
			g_autoptr(GBytes) r = tkms_client_get_random_sync(CLIENT, 16, NULL, &error);
			assert_unavailable_fast("GetRandom", error, t);
			g_clear_error(&error);
		}
		{
			gint64 t = g_get_monotonic_time();
			g_autoptr(GBytes) r =
				tkms_client_hmac_sync(CLIENT, hmac, data, NULL, &error);
			assert_unavailable_fast("Hmac", error, t);
			g_clear_error(&error);
		}
		{
			gint64 t = g_get_monotonic_time();
			g_autoptr(GBytes) r = tkms_client_sign_sync(CLIENT, ec, data, NULL, &error);
			assert_unavailable_fast("Sign", error, t);
			g_clear_error(&error);
		}
		{
			gint64 t = g_get_monotonic_time();
			g_autoptr(GBytes) r = tkms_client_unseal_sync(CLIENT, blob, NULL, &error);
			assert_unavailable_fast("Unseal", error, t);
			g_clear_error(&error);
		}
		{
			g_autofree gchar *name = tkms_test_key_name("gone-new");
			gint64 t = g_get_monotonic_time();
			g_autoptr(GVariant) info = tkms_client_create_key_sync(
				CLIENT, name, "hmac-sha256", NULL, NULL, &error);
			assert_unavailable_fast("CreateKey", error, t);
			g_clear_error(&error);
			/* and no half-created key is left behind */
			info = tkms_client_get_key_info_sync(CLIENT, name, NULL, &error);
			tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
			g_clear_error(&error);
		}
		/* Metadata needs no TPM. */
		{
			g_autoptr(GVariant) info =
				tkms_client_get_key_info_sync(CLIENT, hmac, NULL, &error);
			g_assert_no_error(error);
		}
		g_assert_true(tkms_test_env_daemon_is_running(env));
		g_assert_true(tpm_available_becomes(FALSE));
		g_assert_true(client_tpm_available_becomes(FALSE));

		/* Back: tkmsd reconnects on the next request, without a restart. */
		tkms_test_env_start_tpm(env, &error);
		g_assert_no_error(error);
		{
			g_autoptr(GBytes) r = tkms_client_get_random_sync(CLIENT, 16, NULL, &error);
			g_assert_no_error(error);
			g_assert_cmpuint(g_bytes_get_size(r), ==, 16);
		}
		{
			g_autoptr(GBytes) mac2 =
				tkms_client_hmac_sync(CLIENT, hmac, data, NULL, &error);
			g_autoptr(GBytes) out = NULL;
			gboolean valid = FALSE;
			g_assert_no_error(error);
			tkms_assert_bytes_equal(mac2, mac);
			tkms_client_verify_sync(CLIENT, ec, data, sig, &valid, NULL, &error);
			g_assert_no_error(error);
			g_assert_true(valid);
			out = tkms_client_unseal_sync(CLIENT, blob, NULL, &error);
			g_assert_no_error(error);
			tkms_assert_bytes_equal(out, data);
		}
		{
			g_autofree gchar *name = tkms_test_key_name("back-new");
			g_autoptr(GVariant) info =
				tkms_test_create_key(CLIENT, name, "rsa-2048", NULL);
		}
		g_assert_true(tpm_available_becomes(TRUE));
		g_assert_true(client_tpm_available_becomes(TRUE));
	}
}

/* The TPM gone while tkmsd is idle and back before the next call: no error at all. */
static void
test_tpm_bounce(void)
{
	g_autofree gchar *hmac = tkms_test_key_name("bounce-hmac");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, hmac, "hmac-sha256", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("bounce");
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) mac = tkms_client_hmac_sync(CLIENT, hmac, data, NULL, &error);

	g_assert_no_error(error);
	tkms_test_env_stop_tpm(env, &error);
	g_assert_no_error(error);
	tkms_test_env_start_tpm(env, &error);
	g_assert_no_error(error);
	/* The first call finds a dead connection; tkmsd may report TpmUnavailable once, but
	 * it must recover by the second call. */
	{
		g_autoptr(GBytes) mac2 = tkms_client_hmac_sync(CLIENT, hmac, data, NULL, &error);
		if (error != NULL) {
			g_test_message("first call after the bounce: %s", error->message);
			tkms_assert_error(error, TKMS_ERROR_TPM_UNAVAILABLE);
			g_clear_error(&error);
		} else {
			tkms_assert_bytes_equal(mac2, mac);
		}
	}
	{
		g_autoptr(GBytes) mac3 = tkms_client_hmac_sync(CLIENT, hmac, data, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(mac3, mac);
	}
	g_assert_true(tpm_available_becomes(TRUE));
}

/* tkmsd started while the TPM is missing still comes up on the bus and reports it. */
static void
test_start_without_tpm(void)
{
	g_autoptr(GError) error = NULL;

	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	tkms_test_env_stop_tpm(env, &error);
	g_assert_no_error(error);
	if (!tkms_test_env_start_daemon(env, &error)) {
		/* Refusing to start is a defensible choice too; then it must say why. */
		g_test_message("tkmsd does not start without a TPM: %s", error->message);
		g_clear_error(&error);
		tkms_test_env_start_tpm(env, &error);
		g_assert_no_error(error);
		tkms_test_env_start_daemon(env, &error);
		g_assert_no_error(error);
		return;
	}
	g_assert_true(tpm_available_becomes(FALSE));
	{
		g_autoptr(GBytes) r = tkms_client_get_random_sync(CLIENT, 16, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_TPM_UNAVAILABLE);
		g_clear_error(&error);
	}
	tkms_test_env_start_tpm(env, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GBytes) r = tkms_client_get_random_sync(CLIENT, 16, NULL, &error);
		g_assert_no_error(error);
	}
	g_assert_true(tpm_available_becomes(TRUE));
	{
		g_autofree gchar *manufacturer = get_string("TpmManufacturer");
		g_assert_cmpstr(manufacturer, ==, "IBM");
	}
}

/* Runs a shell script with tpm2-tools against the swtpm while tkmsd is stopped (swtpm serves
 * one connection at a time), then starts tkmsd again. */
static void
with_tpm_tools(const gchar *script)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *full = g_strdup_printf(
		"set -e; export TPM2TOOLS_TCTI='%s'; cd '%s'; %s", tkms_test_env_get_tcti(env),
		tkms_test_env_get_tmp_dir(env), script);
	const gchar *argv[] = {"/bin/sh", "-c", full, NULL};
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	g_assert_true(tkms_test_env_run(env, argv, &out, &err, &status, &error));
	g_assert_no_error(error);
	if (status != 0)
		g_test_message("tpm2-tools: %s%s", out, err);
	g_assert_cmpint(status, ==, 0);
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
}

static guint32
lockout_counter(void)
{
	g_autoptr(GVariant) v = tkms_test_get_property(env, "TpmLockoutCounter");
	return g_variant_get_uint32(v);
}

static gboolean
locked_out_becomes(gboolean value)
{
	gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

	while (get_bool("TpmLockedOut") != value) {
		if (g_get_monotonic_time() > deadline)
			return FALSE;
		tkms_test_spin(20);
	}
	return TRUE;
}

/* Dictionary-attack lockout caused by another TPM user: tkms reports it (TpmLockedOut,
 * TpmLockoutCounter) and, because every object it makes is noDA under a noDA SRK, its keys
 * keep working; clearing the lockout shows in the properties again. */
static void
test_lockout(void)
{
	g_autofree gchar *aes = tkms_test_key_name("lk-aes");
	g_autofree gchar *ec = tkms_test_key_name("lk-ec");
	g_autofree gchar *fresh = tkms_test_key_name("lk-new");
	g_autoptr(GBytes) data = tkms_test_bytes_str("during lockout");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) pt = NULL;
	g_autoptr(GBytes) sig = NULL;
	g_autoptr(GBytes) blob = NULL;
	g_autoptr(GBytes) unsealed = NULL;
	g_autoptr(GVariant) info1 = NULL;
	g_autoptr(GVariant) info2 = NULL;
	g_autoptr(GVariant) info3 = NULL;
	g_autoptr(GError) error = NULL;
	gboolean valid = FALSE;

	info1 = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
	info2 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	ct = tkms_client_encrypt_sync(CLIENT, aes, data, NULL, NULL, &error);
	g_assert_no_error(error);

	/* three wrong passwords on a DA-protected object put swtpm into lockout */
	with_tpm_tools("tpm2_createprimary -Q -C o -c lk-prim.ctx; tpm2_flushcontext -t;"
		       "echo x | tpm2_create -Q -C lk-prim.ctx -p right -i- -u lk.pub -r lk.priv;"
		       "tpm2_flushcontext -t;"
		       "tpm2_load -Q -C lk-prim.ctx -u lk.pub -r lk.priv -c lk.ctx;"
		       "tpm2_flushcontext -t;"
		       "for i in 1 2 3 4; do tpm2_unseal -c lk.ctx -p wrong >/dev/null 2>&1 || :;"
		       " tpm2_flushcontext -t; done;"
		       "tpm2_getcap properties-variable | grep -q 'inLockout: *1'");
	g_assert_true(locked_out_becomes(TRUE));
	g_assert_cmpuint(lockout_counter(), >=, 3);

	pt = tkms_client_decrypt_sync(CLIENT, aes, ct, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(pt, data));
	sig = tkms_client_sign_sync(CLIENT, ec, data, NULL, &error);
	g_assert_no_error(error);
	tkms_client_verify_sync(CLIENT, ec, data, sig, &valid, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(valid);
	blob = tkms_client_seal_sync(CLIENT, data, NULL, NULL, &error);
	g_assert_no_error(error);
	unsealed = tkms_client_unseal_sync(CLIENT, blob, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(unsealed, data));
	info3 = tkms_client_create_key_sync(CLIENT, fresh, "hmac-sha256", NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(get_bool("TpmLockedOut"));

	with_tpm_tools("tpm2_dictionarylockout -c");
	g_assert_true(locked_out_becomes(FALSE));
	g_assert_cmpuint(lockout_counter(), ==, 0);
}

/* tkmsd's transient SRK and sessions must not pile up in a TPM without a resource manager
 * (swtpm has 3 object slots): a clean stop flushes them, and a start after a crash flushes
 * what the crashed run left. */
static void
test_restarts_leave_no_objects(void)
{
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < 5; i++) {
		g_autofree gchar *name = tkms_test_key_name("rs");
		g_autoptr(GVariant) info = NULL;
		gboolean crash = i % 2 == 1;

		/* a TPM command makes sure the daemon is connected before it goes */
		info = tkms_test_create_key(CLIENT, name, "ecdsa-p256", NULL);
		if (crash) {
			gint pid = tkms_test_env_get_daemon_pid(env);
			g_assert_cmpint(pid, >, 0);
			g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
			tkms_test_env_stop_daemon(env, NULL); /* reaps it; the status is not 0 */
			tkms_test_env_start_daemon(env, &error);
			g_assert_no_error(error);
		} else {
			/* after a clean stop the TPM holds no transient object of ours */
			with_tpm_tools("test -z \"$(tpm2_getcap handles-transient)\"");
		}
	}
	{
		g_autofree gchar *name = tkms_test_key_name("rs-last");
		g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "rsa-2048", NULL);
	}
}

/* One call a hang test makes: TRUE if it succeeded (and its answer checks). */
typedef gboolean (*HangCall)(TkmsClient *client, GError **error);

static gboolean
get_random_call(TkmsClient *client, GError **error)
{
	g_autoptr(GBytes) r = tkms_client_get_random_sync(client, 8, NULL, error);
	return r != NULL;
}

#define HANG_KEY "hang-ec"

static gboolean
sign_call(TkmsClient *client, GError **error)
{
	g_autoptr(GBytes) msg = tkms_test_bytes_str("sign me, hung");
	g_autoptr(GBytes) sig = tkms_client_sign_sync(client, HANG_KEY, msg, NULL, error);
	gboolean valid = FALSE;

	return sig != NULL &&
	       tkms_client_verify_sync(client, HANG_KEY, msg, sig, &valid, NULL, error) && valid;
}

/* A TPM that hangs (swtpm stopped with SIGSTOP: the socket stays open, nothing answers) in call
 * ends in TpmUnavailable after [tpm] CommandTimeout (henv's: 2 s), not in a worker blocked
 * forever; once the TPM answers again, so does tkmsd, without a restart. */
static void
hang_and_recover(TkmsTestEnv *henv, HangCall call)
{
	TkmsClient *client = tkms_test_env_get_client(henv);
	g_autoptr(GError) error = NULL;
	gint64 start, deadline;
	gboolean ok = FALSE;

	g_assert_true(call(client, &error));
	g_assert_no_error(error);
	g_assert_true(tkms_test_env_signal_tpm(henv, SIGSTOP));
	start = g_get_monotonic_time();
	call(client, &error);
	g_test_message("hung TPM: %s after %.1f s", error ? error->message : "success",
		       (g_get_monotonic_time() - start) / 1e6);
	tkms_assert_error(error, TKMS_ERROR_TPM_UNAVAILABLE);
	g_clear_error(&error);
	/* the timeout, plus one reconnection attempt that meets the same silence */
	g_assert_cmpint(g_get_monotonic_time() - start, <, 15 * G_USEC_PER_SEC);
	g_assert_true(tkms_test_env_signal_tpm(henv, SIGCONT));
	deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
	while (!ok && g_get_monotonic_time() < deadline) {
		ok = call(client, &error);
		g_clear_error(&error);
	}
	g_assert_true(ok);
}

static void
test_tpm_hang(void)
{
	g_autoptr(TkmsTestEnv) henv = tkms_test_env_new_or_abort("[tpm]\nCommandTimeout=2\n");

	hang_and_recover(henv, get_random_call);
}

/* The same with the TPM hanging in a hot key's Sign, which tkmsd sends in a session it drives
 * itself (daemon/tpm-sys-session.c). */
static void
test_tpm_hang_sign(void)
{
	g_autoptr(TkmsTestEnv) henv = tkms_test_env_new_or_abort("[tpm]\nCommandTimeout=2\n");
	g_autoptr(GVariant) info =
		tkms_test_create_key(tkms_test_env_get_client(henv), HANG_KEY, "ecdsa-p256", NULL);

	hang_and_recover(henv, sign_call);
}

static GVariant *
pcr_options(guint32 pcr)
{
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
	g_variant_dict_insert_value(d, "pcrs",
				    g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, &pcr, 1, 4));
	return g_variant_dict_end(d);
}

static void
assert_resettable_refused(GError *error, guint32 pcr)
{
	g_autofree gchar *named = g_strdup_printf("PCR %u ", pcr);

	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, named));
	g_assert_nonnull(strstr(error->message, "[tpm] AllowResettablePcrs=true"));
}

/* With the default configuration, PCRs 16 and 23 (resettable by any TPM user) are refused
 * for new keys and sealed data, naming the PCR and the setting; no key is left behind.
 * PCRs 0 and 7 still bind. */
static void
test_resettable_pcrs(void)
{
	static const guint32 refused[] = {16, 23};
	static const guint32 accepted[] = {0, 7};
	g_autoptr(GBytes) data = tkms_test_bytes_str("resettable");

	for (guint i = 0; i < G_N_ELEMENTS(refused); i++) {
		g_autofree gchar *name = g_strdup_printf("%s-%u", "reset-pcr", refused[i]);
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) info = tkms_client_create_key_sync(
			CLIENT, name, "aes-256-gcm", pcr_options(refused[i]), NULL, &error);
		g_autoptr(GBytes) blob = NULL;

		g_assert_null(info);
		assert_resettable_refused(error, refused[i]);
		g_clear_error(&error);
		info = tkms_client_get_key_info_sync(CLIENT, name, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
		g_clear_error(&error);
		blob = tkms_client_seal_sync(CLIENT, data, pcr_options(refused[i]), NULL, &error);
		g_assert_null(blob);
		assert_resettable_refused(error, refused[i]);
	}
	for (guint i = 0; i < G_N_ELEMENTS(accepted); i++) {
		g_autofree gchar *name = g_strdup_printf("%s-%u", "fixed-pcr", accepted[i]);
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) info = tkms_client_create_key_sync(
			CLIENT, name, "aes-256-gcm", pcr_options(accepted[i]), NULL, &error);
		g_autoptr(GBytes) blob = NULL;
		g_autoptr(GBytes) back = NULL;
		g_autoptr(GBytes) ct = NULL;

		g_assert_no_error(error);
		g_assert_nonnull(info);
		ct = tkms_client_encrypt_sync(CLIENT, name, data, NULL, NULL, &error);
		g_assert_no_error(error);
		blob = tkms_client_seal_sync(CLIENT, data, pcr_options(accepted[i]), NULL, &error);
		g_assert_no_error(error);
		back = tkms_client_unseal_sync(CLIENT, blob, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(back, data);
	}
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	/* the lockout and transient-object checks drive the TPM with tpm2-tools */
	tkms_test_require_program_or_skip("tpm2_createprimary", "tpm2-tools");
	env = tkms_test_env_new_or_abort(NULL);
	g_test_add_func("/tpm/properties", test_properties);
	g_test_add_func("/tpm/gone", test_tpm_gone);
	g_test_add_func("/tpm/bounce", test_tpm_bounce);
	g_test_add_func("/tpm/start-without-tpm", test_start_without_tpm);
	g_test_add_func("/tpm/lockout", test_lockout);
	g_test_add_func("/tpm/restarts-leave-no-objects", test_restarts_leave_no_objects);
	g_test_add_func("/tpm/hang", test_tpm_hang);
	g_test_add_func("/tpm/hang-sign", test_tpm_hang_sign);
	g_test_add_func("/tpm/resettable-pcrs", test_resettable_pcrs);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	return ret;
}
