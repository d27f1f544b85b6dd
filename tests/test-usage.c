/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-usage"

/* Usage counting and max-uses (issue 7 "Automation"), against tkmsd on swtpm: every protect
 * call counts one use of the primary, the key rotates by itself (actor tkmsd) when its
 * primary reaches max-uses, counts survive restarts without ever passing the cap, and with
 * the TPM gone protect calls fail with LimitExceeded while processing goes on. Also: changes
 * to one key queue instead of failing with Busy, and compromised versions verify only for
 * admins. */

#include <signal.h>
#include <string.h>

#include "tkms-test-env.h"
#include "tkms-test-polkit.h"
#include "tkms-test-util.h"

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))

static GVariant *
call(const gchar *method, GVariant *params, const gchar *reply, GError **error)
{
	return g_dbus_connection_call_sync(tkms_test_env_get_connection(env), "org.tkms.KeyManager",
	                                   "/org/tkms/KeyManager", "org.tkms.KeyManager", method,
	                                   params, reply ? G_VARIANT_TYPE(reply) : NULL,
	                                   G_DBUS_CALL_FLAGS_NONE, 60000, NULL, error);
}

static void
call_ok(const gchar *method, GVariant *params)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call(method, params, NULL, &error);
	g_assert_no_error(error);
}

static void
set_max_uses(const gchar *name, guint64 max)
{
	call_ok("SetRotationPolicy",
	        g_variant_new_parsed("(%s, {'max-uses': <%t>})", name, (guint64)max));
}

static GVariant *
info(const gchar *name)
{
	g_autoptr(GError) error = NULL;
	GVariant *i = tkms_client_get_key_info_sync(CLIENT, name, NULL, &error);
	g_assert_no_error(error);
	return i;
}

static guint32
primary_of(const gchar *name)
{
	g_autoptr(GVariant) i = info(name);
	guint32 p = 0;
	g_assert_true(g_variant_lookup(i, "primary-version", "u", &p));
	return p;
}

/* uses of a version as GetKeyInfo shows it; G_MAXUINT64 if the version does not exist */
static guint64
uses_of(const gchar *name, guint32 version)
{
	g_autoptr(GVariant) i = info(name);
	g_autoptr(GVariant) versions =
	    g_variant_lookup_value(i, "versions", G_VARIANT_TYPE("aa{sv}"));
	for (gsize k = 0; k < g_variant_n_children(versions); k++) {
		g_autoptr(GVariant) v = g_variant_get_child_value(versions, k);
		guint32 n = 0;
		guint64 uses = 0;
		g_variant_lookup(v, "version", "u", &n);
		if (n != version)
			continue;
		g_assert_true(g_variant_lookup(v, "uses", "t", &uses));
		return uses;
	}
	return G_MAXUINT64;
}

/* The key version a ciphertext names (format 1: "TKMS", format, algorithm, reserved u16,
 * then the version, big-endian). */
static guint32
ct_version(GBytes *ct)
{
	gsize len;
	const guint8 *p = g_bytes_get_data(ct, &len);
	g_assert_cmpuint(len, >, 12);
	return (guint32)p[8] << 24 | (guint32)p[9] << 16 | (guint32)p[10] << 8 | p[11];
}

static GBytes *
encrypt(const gchar *name, GBytes *data, GError **error)
{
	return tkms_client_encrypt_sync(CLIENT, name, data, data, NULL, error);
}

static void
wait_primary(const gchar *name, guint32 want, guint timeout_s)
{
	gint64 end = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;
	while (primary_of(name) < want) {
		if (g_get_monotonic_time() > end)
			g_error("key %s has primary %u after %u s, not %u", name, primary_of(name),
			        timeout_s, want);
		tkms_test_spin(100);
	}
}

/* The audit records (lines) of method for key name that succeeded and contain text (NULL:
 * any), by actor tkmsd if tkmsd. */
static guint
find_records(const gchar *method, const gchar *name, const gchar *detail, gboolean tkmsd)
{
	g_autofree gchar *path =
	    g_build_filename(tkms_test_env_get_state_dir(env), "audit.log", NULL);
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autofree gchar *m = g_strdup_printf("\"method\":\"%s\"", method);
	g_autofree gchar *k = g_strdup_printf("\"key\":\"%s\"", name);
	guint n = 0;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++)
		if (strstr(lines[i], m) && strstr(lines[i], k) &&
		    (!tkmsd || strstr(lines[i], "\"actor\":\"tkmsd\"")) &&
		    strstr(lines[i], "\"result\":\"ok\"") &&
		    (detail == NULL || strstr(lines[i], detail)))
			n++;
	return n;
}

#define tkmsd_records(m, n, d) find_records(m, n, d, TRUE)
#define records(m, n, d) find_records(m, n, d, FALSE)

/* ---- usage ---- */

/* max-uses 5: five Encrypts count 1..5 on version 1, tkmsd then rotates (audited, actor
 * tkmsd), the sixth Encrypt is under version 2, and the first ciphertexts still decrypt. */
static void
test_max_uses(void)
{
	g_autofree gchar *name = tkms_test_key_name("use");
	g_autoptr(GVariant) created = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("count me");
	g_autoptr(GBytes) first = NULL;
	g_autoptr(GBytes) sixth = NULL;
	g_autoptr(GBytes) pt = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_cmpuint(uses_of(name, 1), ==, 0);
	set_max_uses(name, 5);
	for (guint i = 1; i <= 5; i++) {
		g_autoptr(GBytes) ct = encrypt(name, data, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(ct_version(ct), ==, 1);
		g_assert_cmpuint(uses_of(name, 1), ==, i);
		if (i == 1)
			first = g_bytes_ref(ct);
	}
	sixth = encrypt(name, data, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(ct_version(sixth), ==, 2);
	g_assert_cmpuint(primary_of(name), ==, 2);
	g_assert_cmpuint(uses_of(name, 1), ==, 5);
	g_assert_cmpuint(uses_of(name, 2), ==, 1);
	g_assert_cmpuint(tkmsd_records("RotateKey", name, "max-uses 5 reached"), ==, 1);
	/* processing does not count */
	pt = tkms_client_decrypt_sync(CLIENT, name, first, data, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(pt, data));
	g_assert_cmpuint(uses_of(name, 1), ==, 5);
	g_assert_cmpuint(uses_of(name, 2), ==, 1);
}

/* Every protect operation counts one use: GenerateDataKey, ReEncrypt, Sign, SignDigest,
 * Hmac, DeriveKey; Verify, VerifyHmac, Decrypt do not. */
static void
test_every_protect_counts(void)
{
	g_autofree gchar *aes = tkms_test_key_name("use-aes");
	g_autofree gchar *ec = tkms_test_key_name("use-ec");
	g_autofree gchar *hm = tkms_test_key_name("use-hm");
	g_autoptr(GVariant) c1 = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
	g_autoptr(GVariant) c2 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GVariant) c3 = tkms_test_create_key(CLIENT, hm, "hmac-sha256", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("count");
	g_autoptr(GBytes) digest = g_bytes_new_static("0123456789abcdef0123456789abcdef", 32);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = NULL;
	g_autoptr(GBytes) ct = NULL, ct2 = NULL, sig = NULL, sig2 = NULL, mac = NULL, okm = NULL;
	gboolean valid = FALSE;

	ct = encrypt(aes, data, &error);
	g_assert_no_error(error);
	r = call("GenerateDataKey",
	         g_variant_new("(su@ay)", aes, 32,
	                       g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, "", 0, 1)),
	         "(ayay)", &error);
	g_assert_no_error(error);
	ct2 = tkms_client_re_encrypt_sync(CLIENT, aes, ct, data, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(uses_of(aes, 1), ==, 3);
	g_clear_pointer(&ct, g_bytes_unref);
	ct = tkms_client_decrypt_sync(CLIENT, aes, ct2, data, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(uses_of(aes, 1), ==, 3);

	sig = tkms_client_sign_sync(CLIENT, ec, data, NULL, &error);
	g_assert_no_error(error);
	sig2 = tkms_client_sign_digest_sync(CLIENT, ec, digest, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(tkms_client_verify_sync(CLIENT, ec, data, sig, &valid, NULL, &error));
	g_assert_true(valid);
	g_assert_cmpuint(uses_of(ec, 1), ==, 2);

	mac = tkms_client_hmac_sync(CLIENT, hm, data, NULL, &error);
	g_assert_no_error(error);
	okm = tkms_client_derive_key_sync(CLIENT, hm, data, 32, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(tkms_client_verify_hmac_sync(CLIENT, hm, data, mac, &valid, NULL, &error));
	g_assert_true(valid);
	g_assert_cmpuint(uses_of(hm, 1), ==, 2);
}

/* Counts survive a restart and never pass the cap: a restart in the middle of a reserved
 * block counts the whole reservation as used (GetKeyInfo shows the high-water mark), and the
 * next protect call rotates rather than passing the cap. */
static void
test_restart(void)
{
	g_autofree gchar *name = tkms_test_key_name("use-rs");
	g_autofree gchar *big = tkms_test_key_name("use-rs-big");
	g_autoptr(GVariant) c1 = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	g_autoptr(GVariant) c2 = tkms_test_create_key(CLIENT, big, "aes-256-gcm", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("restart");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GError) error = NULL;
	guint64 after;

	set_max_uses(name, 5);
	for (guint i = 0; i < 3; i++) {
		g_clear_pointer(&ct, g_bytes_unref);
		ct = encrypt(name, data, &error);
		g_assert_no_error(error);
		g_clear_pointer(&ct, g_bytes_unref);
		ct = encrypt(big, data, &error);
		g_assert_no_error(error);
	}
	g_assert_cmpuint(uses_of(name, 1), ==, 3);
	g_assert_cmpuint(uses_of(big, 1), ==, 3);

	/* kill -9: no chance to write anything more */
	g_assert_cmpint(kill(tkms_test_env_get_daemon_pid(env), SIGKILL), ==, 0);
	tkms_test_env_stop_daemon(env, NULL);
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);

	after = uses_of(name, 1);
	g_test_message("uses after the restart: %" G_GUINT64_FORMAT " (cap 5)", after);
	g_assert_cmpuint(after, >=, 3);
	g_assert_cmpuint(after, <=, 5);
	/* a block of at least 1024 was reserved for the key without a policy */
	after = uses_of(big, 1);
	g_test_message("uses of the key without a policy after the restart: %" G_GUINT64_FORMAT,
	               after);
	g_assert_cmpuint(after, >=, 3);
	g_assert_cmpuint(after, <=, 65536);
	/* until the cap, version 1; never more than 5 uses of it */
	for (guint i = 0; i < 3; i++) {
		g_clear_pointer(&ct, g_bytes_unref);
		ct = encrypt(name, data, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(uses_of(name, 1), <=, 5);
	}
	g_assert_cmpuint(ct_version(ct), ==, 2);
	g_assert_cmpuint(uses_of(name, 1), ==, 5);
	g_clear_pointer(&ct, g_bytes_unref);
	ct = encrypt(big, data, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(uses_of(big, 1), ==, after + 1);
}

/* The cap reached while the TPM is gone: Encrypt fails with LimitExceeded and says what to
 * do, Decrypt goes on (its key material is cached); once the TPM is back, tkmsd rotates by
 * itself and Encrypt works under version 2. */
static void
test_tpm_gone(void)
{
	g_autofree gchar *name = tkms_test_key_name("use-tpm");
	g_autoptr(GVariant) created = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("no tpm");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) pt = NULL;
	g_autoptr(GBytes) more = NULL;
	g_autoptr(GError) error = NULL;

	set_max_uses(name, 2);
	ct = encrypt(name, data, &error);
	g_assert_no_error(error);
	tkms_test_env_stop_tpm(env, &error);
	g_assert_no_error(error);
	/* the second use is the last: the rotation tkmsd starts fails */
	more = encrypt(name, data, &error);
	g_assert_no_error(error);
	g_clear_pointer(&more, g_bytes_unref);
	more = encrypt(name, data, &error);
	g_assert_null(more);
	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	g_test_message("%s", error->message);
	g_assert_nonnull(strstr(error->message, "max-uses"));
	g_assert_nonnull(strstr(error->message, "RotateKey"));
	g_clear_error(&error);
	pt = tkms_client_decrypt_sync(CLIENT, name, ct, data, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(pt, data));
	g_assert_cmpuint(uses_of(name, 1), ==, 2);
	g_assert_cmpuint(primary_of(name), ==, 1);

	tkms_test_env_start_tpm(env, &error);
	g_assert_no_error(error);
	/* tkmsd retries the rotation by itself (its scheduler) */
	wait_primary(name, 2, 20);
	more = encrypt(name, data, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(ct_version(more), ==, 2);
	g_assert_cmpuint(uses_of(name, 1), ==, 2);
	g_assert_cmpuint(tkmsd_records("RotateKey", name, "max-uses 2 reached"), ==, 1);
}

/* ---- changes to one key ---- */

typedef struct {
	guint pending;
	guint failed;
} Calls;

static void
change_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Calls *calls = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r =
		g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

	if (r == NULL) {
		g_test_message("a change failed: %s", error->message);
		calls->failed++;
	}
	calls->pending--;
}

/* 20 RotateKey and SetKeyVersionState calls on one key at once (the scheduler's events go
 * the same way): none gets Busy, they all succeed, and the key ends up consistent. */
static void
test_concurrent_changes(void)
{
	g_autofree gchar *name = tkms_test_key_name("use-conc");
	g_autoptr(GVariant) created = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("concurrent");
	g_autoptr(GBytes) ct = NULL, pt = NULL;
	g_autoptr(GVariant) i = NULL, versions = NULL;
	g_autoptr(GError) error = NULL;
	Calls calls = {0};

	ct = encrypt(name, data, &error);
	g_assert_no_error(error);
	call_ok("RotateKey", g_variant_new("(s)", name));
	for (guint n = 0; n < 20; n++) {
		gboolean rot = n % 2 == 0;
		calls.pending++;
		g_dbus_connection_call(
			tkms_test_env_get_connection(env), "org.tkms.KeyManager",
			"/org/tkms/KeyManager", "org.tkms.KeyManager",
			rot ? "RotateKey" : "SetKeyVersionState",
			rot ? g_variant_new("(s)", name)
			    : g_variant_new("(sus)", name, 1, n % 4 == 1 ? "deactivated" : "active"),
			NULL, G_DBUS_CALL_FLAGS_NONE, 120000, NULL, change_done_cb, &calls);
	}
	while (calls.pending > 0)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpuint(calls.failed, ==, 0);

	/* 2 + 10 versions, the last one primary, every one but version 1 active; version 1
	 * active or deactivated, as the last of its changes left it */
	i = info(name);
	versions = g_variant_lookup_value(i, "versions", G_VARIANT_TYPE("aa{sv}"));
	g_assert_cmpuint(g_variant_n_children(versions), ==, 12);
	g_assert_cmpuint(primary_of(name), ==, 12);
	for (gsize k = 0; k < 12; k++) {
		g_autoptr(GVariant) v = g_variant_get_child_value(versions, k);
		const gchar *state = NULL;
		guint32 n = 0;
		g_assert_true(g_variant_lookup(v, "version", "u", &n));
		g_assert_cmpuint(n, ==, k + 1);
		g_assert_true(g_variant_lookup(v, "state", "&s", &state));
		if (n == 1)
			g_assert_true(g_str_equal(state, "active") ||
				      g_str_equal(state, "deactivated"));
		else
			g_assert_cmpstr(state, ==, "active");
	}
	pt = tkms_client_decrypt_sync(CLIENT, name, ct, data, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(pt, data));
	g_clear_pointer(&ct, g_bytes_unref);
	ct = encrypt(name, data, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(ct_version(ct), ==, 12);
}

/* ---- compromised versions ---- */

/* Verify and VerifyHmac of what a compromised version made: polkit is asked for admin only
 * when no usable version matches; an admin gets TRUE, the record of the call carrying the
 * warning, anybody else FALSE. What the usable versions made verifies without admin. */
static void
test_verify_compromised(void)
{
	static const gchar *const no_admin[] = {
		"org.tkms.KeyManager.read-key",	   "org.tkms.KeyManager.create-key",
		"org.tkms.KeyManager.use-key",	   "org.tkms.KeyManager.seal",
		"org.tkms.KeyManager.destroy-key", "org.tkms.KeyManager.manage-key",
		NULL};
	g_autofree gchar *ec = tkms_test_key_name("use-cmp-ec");
	g_autofree gchar *hm = tkms_test_key_name("use-cmp-hm");
	g_autoptr(GVariant) c1 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GVariant) c2 = tkms_test_create_key(CLIENT, hm, "hmac-sha256", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("compromised");
	g_autoptr(GBytes) sig1 = NULL, sig2 = NULL, mac1 = NULL, mac2 = NULL;
	g_autoptr(GError) error = NULL;
	gboolean valid = FALSE;

	sig1 = tkms_client_sign_sync(CLIENT, ec, data, NULL, &error);
	g_assert_no_error(error);
	mac1 = tkms_client_hmac_sync(CLIENT, hm, data, NULL, &error);
	g_assert_no_error(error);
	call_ok("RotateKey", g_variant_new("(s)", ec));
	call_ok("RotateKey", g_variant_new("(s)", hm));
	call_ok("SetKeyVersionState", g_variant_new("(sus)", ec, 1, "compromised"));
	call_ok("SetKeyVersionState", g_variant_new("(sus)", hm, 1, "compromised"));
	sig2 = tkms_client_sign_sync(CLIENT, ec, data, NULL, &error);
	g_assert_no_error(error);
	mac2 = tkms_client_hmac_sync(CLIENT, hm, data, NULL, &error);
	g_assert_no_error(error);

	/* an admin (the mock allows every action) */
	g_assert_true(tkms_client_verify_sync(CLIENT, ec, data, sig1, &valid, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(valid);
	g_assert_true(tkms_client_verify_hmac_sync(CLIENT, hm, data, mac1, &valid, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(valid);
	tkms_test_spin(300); /* records of use are group-committed */
	g_assert_cmpuint(records("Verify", ec, "compromised key version used"), ==, 1);
	g_assert_cmpuint(records("VerifyHmac", hm, "compromised key version used"), ==, 1);

	/* not an admin: no match, no error; the usable version still verifies */
	tkms_test_env_polkit_set_allowed(env, no_admin, &error);
	g_assert_no_error(error);
	g_assert_true(tkms_client_verify_sync(CLIENT, ec, data, sig1, &valid, NULL, &error));
	g_assert_no_error(error);
	g_assert_false(valid);
	g_assert_true(tkms_client_verify_hmac_sync(CLIENT, hm, data, mac1, &valid, NULL, &error));
	g_assert_no_error(error);
	g_assert_false(valid);
	g_assert_true(tkms_client_verify_sync(CLIENT, ec, data, sig2, &valid, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(valid);
	g_assert_true(tkms_client_verify_hmac_sync(CLIENT, hm, data, mac2, &valid, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(valid);
	tkms_test_spin(300);
	g_assert_cmpuint(records("Verify", ec, "compromised key version used"), ==, 1);
	tkms_test_env_polkit_allow_all(env, &error);
	g_assert_no_error(error);
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_or_abort(NULL);
	g_test_add_func("/usage/max-uses", test_max_uses);
	g_test_add_func("/usage/every-protect-counts", test_every_protect_counts);
	g_test_add_func("/usage/restart", test_restart);
	g_test_add_func("/usage/tpm-gone", test_tpm_gone);
	g_test_add_func("/usage/concurrent-changes", test_concurrent_changes);
	g_test_add_func("/usage/verify-compromised", test_verify_compromised);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	return ret;
}
