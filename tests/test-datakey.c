/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-datakey"

/* GenerateDataKey, ReEncrypt, SignDigest and VerifyDigest against a real tkmsd and swtpm, and
 * the binding of key versions' TPM objects to their owner (the /binding tests).
 * The methods are called on the bus directly (their D-Bus signatures are the contract);
 * Encrypt, Decrypt, Sign and Verify through libtkms, so that each new method is checked
 * against the one it must agree with. */

#include <openssl/evp.h>
#include <sqlite3.h>
#include <string.h>

#include "tkms-test-util.h"

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))

static gchar *aes_key;
static gchar *aes_key2;
static gchar *hmac_key;
static gchar *ec_key;
static gchar *ec_key2;
static gchar *rsa_key;

#define MIB (1024 * 1024)
#define CT_OVERHEAD (12 + 12 + 16)

/* ---- raw calls ------------------------------------------------------------------------ */

static GVariant *
bytes_v(GBytes *b)
{
	return g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, b, TRUE);
}

static GBytes *
child_bytes(GVariant *reply, gsize i)
{
	g_autoptr(GVariant) child = g_variant_get_child_value(reply, i);
	return g_variant_get_data_as_bytes(child);
}

static GVariant *
call(const gchar *method, GVariant *args, const gchar *reply_type, GError **error)
{
	return g_dbus_connection_call_sync(tkms_test_env_get_connection(env),
					   "org.tkms.KeyManager", "/org/tkms/KeyManager",
					   "org.tkms.KeyManager", method, args,
					   G_VARIANT_TYPE(reply_type), G_DBUS_CALL_FLAGS_NONE, 60000,
					   NULL, error);
}

/* GenerateDataKey; FALSE with error on failure. */
static gboolean
generate(const gchar *key, guint32 length, GBytes *context, GBytes **plaintext,
	 GBytes **wrapped, GError **error)
{
	g_autoptr(GVariant) r = call("GenerateDataKey",
				     g_variant_new("(su@ay)", key, length, bytes_v(context)),
				     "(ayay)", error);
	if (r == NULL)
		return FALSE;
	*plaintext = child_bytes(r, 0);
	*wrapped = child_bytes(r, 1);
	return TRUE;
}

static GBytes *
re_encrypt(const gchar *key, GBytes *ct, GBytes *context, GError **error)
{
	g_autoptr(GVariant) r = call("ReEncrypt",
				     g_variant_new("(s@ay@ay)", key, bytes_v(ct), bytes_v(context)),
				     "(ay)", error);
	return r != NULL ? child_bytes(r, 0) : NULL;
}

static GBytes *
sign_digest(const gchar *key, GBytes *digest, GError **error)
{
	g_autoptr(GVariant) r = call("SignDigest", g_variant_new("(s@ay)", key, bytes_v(digest)),
				     "(ay)", error);
	return r != NULL ? child_bytes(r, 0) : NULL;
}

/* VerifyDigest; FALSE with error on failure, else TRUE and *valid. */
static gboolean
verify_digest(const gchar *key, GBytes *digest, GBytes *sig, gboolean *valid, GError **error)
{
	g_autoptr(GVariant) r = call("VerifyDigest",
				     g_variant_new("(s@ay@ay)", key, bytes_v(digest), bytes_v(sig)),
				     "(b)", error);
	if (r == NULL)
		return FALSE;
	g_variant_get(r, "(b)", valid);
	return TRUE;
}

static GBytes *
sha256(GBytes *data)
{
	guint8 md[32];
	unsigned int len = sizeof(md);

	g_assert_true(EVP_Digest(g_bytes_get_data(data, NULL), g_bytes_get_size(data), md, &len,
				 EVP_sha256(), NULL) == 1);
	return g_bytes_new(md, len);
}

static GBytes *
encrypt_ok(const gchar *key, GBytes *pt, GBytes *context)
{
	g_autoptr(GError) error = NULL;
	GBytes *ct = tkms_client_encrypt_sync(CLIENT, key, pt, context, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(ct);
	return ct;
}

static GBytes *
decrypt_ok(const gchar *key, GBytes *ct, GBytes *context)
{
	g_autoptr(GError) error = NULL;
	GBytes *pt = tkms_client_decrypt_sync(CLIENT, key, ct, context, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(pt);
	return pt;
}

static void
assert_decrypt_fails(const gchar *key, GBytes *ct, GBytes *context, gint code)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) pt = tkms_client_decrypt_sync(CLIENT, key, ct, context, NULL, &error);
	tkms_assert_error(error, code);
	g_assert_null(pt);
}

static guint32
ct_version(GBytes *ct)
{
	const guint8 *p = g_bytes_get_data(ct, NULL);
	g_assert_cmpuint(g_bytes_get_size(ct), >, CT_OVERHEAD);
	g_assert_cmpmem(p, 4, "TKMS", 4);
	g_assert_cmpuint(p[4], ==, 1);
	return ((guint32)p[8] << 24) | ((guint32)p[9] << 16) | ((guint32)p[10] << 8) | p[11];
}

/* ---- GenerateDataKey ------------------------------------------------------------------- */

static void
test_generate_round_trip(void)
{
	guint lengths[] = {1, 16, 32, 48, 64};
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("backup volume 7");
	g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);

	for (guint i = 0; i < G_N_ELEMENTS(lengths); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) pt = NULL, wrapped = NULL, pt2 = NULL, wrapped2 = NULL;
		g_autoptr(GBytes) back = NULL;

		g_test_message("length %u", lengths[i]);
		g_assert_true(generate(aes_key, lengths[i], ctx, &pt, &wrapped, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(g_bytes_get_size(pt), ==, lengths[i]);
		/* Encrypt's format, under the primary version */
		g_assert_cmpuint(g_bytes_get_size(wrapped), ==, lengths[i] + CT_OVERHEAD);
		g_assert_cmpuint(ct_version(wrapped), ==, 1);
		if (lengths[i] >= 16)
			g_assert_false(tkms_test_bytes_contain(wrapped, g_bytes_get_data(pt, NULL),
							       g_bytes_get_size(pt)));
		back = decrypt_ok(aes_key, wrapped, ctx);
		tkms_assert_bytes_equal(back, pt);

		/* a fresh key every time */
		g_assert_true(generate(aes_key, lengths[i], ctx, &pt2, &wrapped2, &error));
		g_assert_no_error(error);
		if (lengths[i] >= 8)
			g_assert_false(g_bytes_equal(pt, pt2));
		g_assert_false(g_bytes_equal(wrapped, wrapped2));
	}
	/* an empty context is a context too */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) pt = NULL, wrapped = NULL, back = NULL;
		g_assert_true(generate(aes_key, 32, empty, &pt, &wrapped, &error));
		g_assert_no_error(error);
		back = decrypt_ok(aes_key, wrapped, empty);
		tkms_assert_bytes_equal(back, pt);
		assert_decrypt_fails(aes_key, wrapped, ctx, TKMS_ERROR_INTEGRITY_FAILURE);
	}
}

/* 32-byte keys of 200 calls: no repeats, and about half of the bits set (a broken RNG path
 * that returned zeros or a constant would fail this). */
static void
test_generate_random(void)
{
	g_autoptr(GHashTable) seen =
		g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref,
				      NULL);
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("rng");
	guint64 ones = 0;

	for (guint i = 0; i < 200; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) pt = NULL, wrapped = NULL;
		const guint8 *p;

		g_assert_true(generate(aes_key, 32, ctx, &pt, &wrapped, &error));
		g_assert_no_error(error);
		p = g_bytes_get_data(pt, NULL);
		for (guint j = 0; j < 32; j++)
			ones += __builtin_popcount(p[j]);
		g_assert_false(g_hash_table_contains(seen, pt));
		g_hash_table_add(seen, g_bytes_ref(pt));
	}
	/* 51,200 bits: mean 25,600, sd 113 */
	g_assert_cmpuint(ones, >, 25600 - 1200);
	g_assert_cmpuint(ones, <, 25600 + 1200);
}

static void
test_generate_context(void)
{
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("tenant=alice");
	g_autoptr(GBytes) other = tkms_test_bytes_str("tenant=alicf");
	g_autoptr(GBytes) pt = NULL, wrapped = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_true(generate(aes_key, 32, ctx, &pt, &wrapped, &error));
	g_assert_no_error(error);
	assert_decrypt_fails(aes_key, wrapped, other, TKMS_ERROR_INTEGRITY_FAILURE);
	/* another aes key of the same owner cannot unwrap it */
	assert_decrypt_fails(aes_key2, wrapped, ctx, TKMS_ERROR_INTEGRITY_FAILURE);
	{
		g_autoptr(GBytes) bad = tkms_test_bytes_flip_bit(wrapped, 8 * (CT_OVERHEAD - 16));
		assert_decrypt_fails(aes_key, bad, ctx, TKMS_ERROR_INTEGRITY_FAILURE);
	}
}

static void
test_generate_bad(void)
{
	guint bad_lengths[] = {0, 65, 1024, G_MAXUINT32};
	const gchar *wrong[] = {hmac_key, ec_key, rsa_key};
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("ctx");

	for (guint i = 0; i < G_N_ELEMENTS(bad_lengths); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) pt = NULL, wrapped = NULL;
		g_test_message("length %u", bad_lengths[i]);
		g_assert_false(generate(aes_key, bad_lengths[i], ctx, &pt, &wrapped, &error));
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	}
	for (guint i = 0; i < G_N_ELEMENTS(wrong); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) pt = NULL, wrapped = NULL;
		g_test_message("key %s", wrong[i]);
		g_assert_false(generate(wrong[i], 32, ctx, &pt, &wrapped, &error));
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) pt = NULL, wrapped = NULL;
		g_assert_false(generate("no-such-key", 32, ctx, &pt, &wrapped, &error));
		tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) pt = NULL, wrapped = NULL;
		g_autoptr(GBytes) huge = tkms_test_bytes_pattern(MIB + 1, 9);
		g_assert_false(generate(aes_key, 32, huge, &pt, &wrapped, &error));
		tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	}
}

/* ---- ReEncrypt ------------------------------------------------------------------------- */

static void
test_reencrypt_round_trip(void)
{
	gsize sizes[] = {1, 100, 64 * 1024, 64 * 1024 + 1, 300 * 1024};
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("invoices/2024");

	for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
		g_autoptr(GBytes) pt = tkms_test_bytes_pattern(sizes[i], 100 + i);
		g_autoptr(GBytes) ct = encrypt_ok(aes_key, pt, ctx);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) ct2 = re_encrypt(aes_key, ct, ctx, &error);
		g_autoptr(GBytes) ct3 = NULL;
		g_autoptr(GBytes) back = NULL, back3 = NULL;

		g_test_message("size %zu", sizes[i]);
		g_assert_no_error(error);
		g_assert_nonnull(ct2);
		g_assert_cmpuint(g_bytes_get_size(ct2), ==, g_bytes_get_size(ct));
		g_assert_false(g_bytes_equal(ct, ct2));
		/* a fresh IV: bytes 12..23 */
		g_assert_true(memcmp((const guint8 *)g_bytes_get_data(ct, NULL) + 12,
				     (const guint8 *)g_bytes_get_data(ct2, NULL) + 12, 12) != 0);
		g_assert_cmpuint(ct_version(ct2), ==, 1);
		back = decrypt_ok(aes_key, ct2, ctx);
		tkms_assert_bytes_equal(back, pt);
		/* the input still decrypts: rewrapping changes nothing stored */
		{
			g_autoptr(GBytes) again = decrypt_ok(aes_key, ct, ctx);
			tkms_assert_bytes_equal(again, pt);
		}
		/* and the output rewraps again */
		ct3 = re_encrypt(aes_key, ct2, ctx, &error);
		g_assert_no_error(error);
		g_assert_false(g_bytes_equal(ct2, ct3));
		back3 = decrypt_ok(aes_key, ct3, ctx);
		tkms_assert_bytes_equal(back3, pt);
		/* the output is bound to the same context */
		{
			g_autoptr(GBytes) other = tkms_test_bytes_str("invoices/2025");
			assert_decrypt_fails(aes_key, ct2, other, TKMS_ERROR_INTEGRITY_FAILURE);
		}
	}
	/* a wrapped data key rewraps like any ciphertext */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) pt = NULL, wrapped = NULL, rewrapped = NULL, back = NULL;
		g_assert_true(generate(aes_key, 32, ctx, &pt, &wrapped, &error));
		g_assert_no_error(error);
		rewrapped = re_encrypt(aes_key, wrapped, ctx, &error);
		g_assert_no_error(error);
		back = decrypt_ok(aes_key, rewrapped, ctx);
		tkms_assert_bytes_equal(back, pt);
	}
}

static void
assert_reencrypt_fails(const gchar *key, GBytes *ct, GBytes *ctx, gint code)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) out = re_encrypt(key, ct, ctx, &error);
	tkms_assert_error(error, code);
	g_assert_null(out);
}

static void
test_reencrypt_refused(void)
{
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("ctx-a");
	g_autoptr(GBytes) other_ctx = tkms_test_bytes_str("ctx-b");
	g_autoptr(GBytes) pt = tkms_test_bytes_pattern(1000, 7);
	g_autoptr(GBytes) ct = encrypt_ok(aes_key, pt, ctx);
	gsize len = g_bytes_get_size(ct);
	g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);

	/* authentication: IV, body and tag bits, context, another key of the owner */
	{
		gsize bits[] = {12 * 8, 24 * 8 + 3, (len / 2) * 8, (len - 16) * 8 + 1,
				len * 8 - 1};
		for (guint i = 0; i < G_N_ELEMENTS(bits); i++) {
			g_autoptr(GBytes) bad = tkms_test_bytes_flip_bit(ct, bits[i]);
			g_test_message("bit %zu", bits[i]);
			assert_reencrypt_fails(aes_key, bad, ctx, TKMS_ERROR_INTEGRITY_FAILURE);
		}
	}
	assert_reencrypt_fails(aes_key, ct, other_ctx, TKMS_ERROR_INTEGRITY_FAILURE);
	assert_reencrypt_fails(aes_key2, ct, ctx, TKMS_ERROR_INTEGRITY_FAILURE);
	/* a version the key does not have (the header's version field) */
	{
		g_autoptr(GBytes) bad = tkms_test_bytes_xor_byte(ct, 11, 0x06);
		assert_reencrypt_fails(aes_key, bad, ctx, TKMS_ERROR_INTEGRITY_FAILURE);
	}
	/* framing: magic, format, algorithm, reserved, truncated, empty, garbage */
	{
		gsize offsets[] = {0, 4, 5, 6};
		for (guint i = 0; i < G_N_ELEMENTS(offsets); i++) {
			g_autoptr(GBytes) bad = tkms_test_bytes_xor_byte(ct, offsets[i], 0x40);
			g_test_message("header byte %zu", offsets[i]);
			assert_reencrypt_fails(aes_key, bad, ctx, TKMS_ERROR_INVALID_ARGUMENT);
		}
	}
	{
		g_autoptr(GBytes) shortest = tkms_test_bytes_truncate(ct, CT_OVERHEAD);
		g_autoptr(GBytes) garbage = tkms_test_bytes_pattern(500, 3);
		assert_reencrypt_fails(aes_key, shortest, ctx, TKMS_ERROR_INVALID_ARGUMENT);
		assert_reencrypt_fails(aes_key, empty, ctx, TKMS_ERROR_INVALID_ARGUMENT);
		assert_reencrypt_fails(aes_key, garbage, ctx, TKMS_ERROR_INVALID_ARGUMENT);
	}
	/* a cut tag is an authentication failure (the frame is still long enough) */
	{
		g_autoptr(GBytes) cut = tkms_test_bytes_truncate(ct, len - 1);
		assert_reencrypt_fails(aes_key, cut, ctx, TKMS_ERROR_INTEGRITY_FAILURE);
	}
	/* wrong key types, unknown key, over the payload limit */
	assert_reencrypt_fails(hmac_key, ct, ctx, TKMS_ERROR_INVALID_ARGUMENT);
	assert_reencrypt_fails(ec_key, ct, ctx, TKMS_ERROR_INVALID_ARGUMENT);
	assert_reencrypt_fails(rsa_key, ct, ctx, TKMS_ERROR_INVALID_ARGUMENT);
	assert_reencrypt_fails("no-such-key", ct, ctx, TKMS_ERROR_NOT_FOUND);
	{
		g_autoptr(GBytes) huge = tkms_test_bytes_pattern(MIB + CT_OVERHEAD + 1, 4);
		assert_reencrypt_fails(aes_key, huge, ctx, TKMS_ERROR_LIMIT_EXCEEDED);
	}
	/* the original is intact */
	{
		g_autoptr(GBytes) back = decrypt_ok(aes_key, ct, ctx);
		tkms_assert_bytes_equal(back, pt);
	}
}

/* ---- SignDigest / VerifyDigest --------------------------------------------------------- */

static gboolean
verify_ok(const gchar *key, GBytes *data, GBytes *sig)
{
	g_autoptr(GError) error = NULL;
	gboolean valid = FALSE;
	g_assert_true(tkms_client_verify_sync(CLIENT, key, data, sig, &valid, NULL, &error));
	g_assert_no_error(error);
	return valid;
}

static gboolean
verify_digest_ok(const gchar *key, GBytes *digest, GBytes *sig)
{
	g_autoptr(GError) error = NULL;
	gboolean valid = FALSE;
	g_assert_true(verify_digest(key, digest, sig, &valid, &error));
	g_assert_no_error(error);
	return valid;
}

static gint
run_openssl(const gchar *const *argv, gchar **out)
{
	return tkms_test_env_run_status(env, argv, out);
}

static void
test_sign_digest(gconstpointer user_data)
{
	gboolean is_rsa = g_str_equal(user_data, "rsa-2048");
	const gchar *key = is_rsa ? rsa_key : ec_key;
	const gchar *dir = tkms_test_env_get_tmp_dir(env);
	/* larger than MaxPayload: what SignDigest is for */
	g_autoptr(GBytes) msg = tkms_test_bytes_pattern(3 * MIB, 21);
	g_autoptr(GBytes) other = tkms_test_bytes_xor_byte(msg, 3 * MIB - 1, 0x80);
	g_autoptr(GBytes) d = sha256(msg);
	g_autoptr(GBytes) d_other = sha256(other);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) sig = sign_digest(key, d, &error);
	g_autofree gchar *pem = NULL;
	g_autofree gchar *prefix = g_strdup_printf("sd-%s-", (const gchar *)user_data);
	g_autofree gchar *n_pem = g_strconcat(prefix, "pub.pem", NULL);
	g_autofree gchar *n_msg = g_strconcat(prefix, "msg", NULL);
	g_autofree gchar *n_other = g_strconcat(prefix, "other", NULL);
	g_autofree gchar *n_sig = g_strconcat(prefix, "sig", NULL);
	g_autofree gchar *f_pem = NULL, *f_msg = NULL, *f_other = NULL, *f_sig = NULL;

	g_assert_no_error(error);
	g_assert_nonnull(sig);
	if (is_rsa) {
		g_assert_cmpuint(g_bytes_get_size(sig), ==, 256);
	} else {
		const guint8 *s = g_bytes_get_data(sig, NULL);
		g_assert_cmpuint(s[0], ==, 0x30);
		g_assert_cmpuint(s[1], ==, g_bytes_get_size(sig) - 2);
	}

	/* OpenSSL over the whole message */
	pem = tkms_client_get_public_key_sync(CLIENT, key, NULL, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GBytes) pem_b = tkms_test_bytes_str(pem);
		f_pem = tkms_test_write_file(dir, n_pem, pem_b);
	}
	f_msg = tkms_test_write_file(dir, n_msg, msg);
	f_other = tkms_test_write_file(dir, n_other, other);
	f_sig = tkms_test_write_file(dir, n_sig, sig);
	{
		const gchar *argv[] = {"openssl", "dgst", "-sha256", "-verify", f_pem,
				       "-signature", f_sig, f_msg, NULL};
		g_autofree gchar *out = NULL;
		g_assert_cmpint(run_openssl(argv, &out), ==, 0);
		g_assert_nonnull(strstr(out, "Verified OK"));
	}
	{
		const gchar *argv[] = {"openssl", "dgst", "-sha256", "-verify", f_pem,
				       "-signature", f_sig, f_other, NULL};
		g_autofree gchar *out = NULL;
		g_assert_cmpint(run_openssl(argv, &out), !=, 0);
	}

	/* VerifyDigest agrees; a wrong digest or another key's signature is false */
	g_assert_true(verify_digest_ok(key, d, sig));
	g_assert_false(verify_digest_ok(key, d_other, sig));
	if (!is_rsa)
		g_assert_false(verify_digest_ok(ec_key2, d, sig));
	{
		g_autoptr(GBytes) bad = tkms_test_bytes_flip_bit(sig, g_bytes_get_size(sig) * 8 - 9);
		g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
		g_assert_false(verify_digest_ok(key, d, bad));
		g_assert_false(verify_digest_ok(key, d, empty));
	}

	/* the same formats as Sign / Verify, both ways, on a message Sign accepts */
	{
		g_autoptr(GBytes) small = tkms_test_bytes_str("a message Sign itself can take");
		g_autoptr(GBytes) d_small = sha256(small);
		g_autoptr(GBytes) sd = sign_digest(key, d_small, &error);
		g_autoptr(GBytes) s = NULL;

		g_assert_no_error(error);
		s = tkms_client_sign_sync(CLIENT, key, small, NULL, &error);
		g_assert_no_error(error);
		g_assert_true(verify_ok(key, small, sd));
		g_assert_true(verify_digest_ok(key, d_small, s));
		g_assert_false(verify_digest_ok(key, d, s));
		/* PKCS#1 v1.5 is deterministic: the very same bytes */
		if (is_rsa)
			tkms_assert_bytes_equal(sd, s);
	}
}

static void
test_sign_digest_bad(void)
{
	gsize bad_lengths[] = {0, 1, 20, 31, 33, 48, 64};
	const gchar *wrong[] = {aes_key, hmac_key};
	const gchar *keys[] = {ec_key, rsa_key};
	g_autoptr(GBytes) msg = tkms_test_bytes_str("m");
	g_autoptr(GBytes) d = sha256(msg);
	g_autoptr(GBytes) sig = NULL;
	g_autoptr(GError) error = NULL;

	sig = sign_digest(ec_key, d, &error);
	g_assert_no_error(error);
	for (guint k = 0; k < G_N_ELEMENTS(keys); k++) {
		for (guint i = 0; i < G_N_ELEMENTS(bad_lengths); i++) {
			g_autoptr(GBytes) bad = tkms_test_bytes_pattern(bad_lengths[i], 1);
			g_autoptr(GError) e1 = NULL, e2 = NULL;
			g_autoptr(GBytes) out = NULL;
			gboolean valid = TRUE;

			g_test_message("%s, %zu bytes", keys[k], bad_lengths[i]);
			out = sign_digest(keys[k], bad, &e1);
			tkms_assert_error(e1, TKMS_ERROR_INVALID_ARGUMENT);
			g_assert_null(out);
			g_assert_false(verify_digest(keys[k], bad, sig, &valid, &e2));
			tkms_assert_error(e2, TKMS_ERROR_INVALID_ARGUMENT);
		}
	}
	for (guint i = 0; i < G_N_ELEMENTS(wrong); i++) {
		g_autoptr(GError) e1 = NULL, e2 = NULL;
		g_autoptr(GBytes) out = sign_digest(wrong[i], d, &e1);
		gboolean valid = TRUE;

		tkms_assert_error(e1, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(out);
		g_assert_false(verify_digest(wrong[i], d, sig, &valid, &e2));
		tkms_assert_error(e2, TKMS_ERROR_INVALID_ARGUMENT);
	}
	{
		g_autoptr(GError) e = NULL;
		g_autoptr(GBytes) out = sign_digest("no-such-key", d, &e);
		tkms_assert_error(e, TKMS_ERROR_NOT_FOUND);
	}
}

/* The figure of the report: SignDigest of a digest against Sign of a 64 KiB message. */
static void
test_sign_digest_latency(void)
{
	const guint n = 20;
	g_autoptr(GBytes) msg = tkms_test_bytes_pattern(64 * 1024, 5);
	g_autoptr(GBytes) d = sha256(msg);
	const gchar *keys[] = {ec_key, rsa_key};

	for (guint k = 0; k < G_N_ELEMENTS(keys); k++) {
		gint64 t0, t_sign, t_digest;

		t0 = g_get_monotonic_time();
		for (guint i = 0; i < n; i++) {
			g_autoptr(GError) error = NULL;
			g_autoptr(GBytes) s = tkms_client_sign_sync(CLIENT, keys[k], msg, NULL,
								    &error);
			g_assert_no_error(error);
		}
		t_sign = g_get_monotonic_time() - t0;
		t0 = g_get_monotonic_time();
		for (guint i = 0; i < n; i++) {
			g_autoptr(GError) error = NULL;
			g_autoptr(GBytes) s = sign_digest(keys[k], d, &error);
			g_assert_no_error(error);
		}
		t_digest = g_get_monotonic_time() - t0;
		g_test_message("%s: Sign (64 KiB) %.2f ms, SignDigest %.2f ms per call",
			       keys[k], t_sign / 1000.0 / n, t_digest / 1000.0 / n);
		g_printerr("# %s: Sign (64 KiB) %.2f ms, SignDigest %.2f ms per call\n", keys[k],
			   t_sign / 1000.0 / n, t_digest / 1000.0 / n);
	}
}

/* ---- binding key blobs to their owner -------------------------------------------------- */

static const struct {
	const gchar *type;
	const gchar *kind; /* tkms-test-direct-key's */
} bind_types[] = {
	{"aes-256-gcm", "sealed"},
	{"hmac-sha256", "hmac"},
	{"ecdsa-p256", "ecc"},
	{"rsa-2048", "rsa"},
};

static sqlite3 *
open_store(gboolean write)
{
	g_autofree gchar *path =
		g_build_filename(tkms_test_env_get_state_dir(env), "keys.db", NULL);
	sqlite3 *db = NULL;

	g_assert_cmpint(sqlite3_open_v2(path, &db,
					write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY,
					NULL),
			==, SQLITE_OK);
	return db;
}

#define VERSION_ROW                                                                             \
	"FROM key_versions WHERE version = ?2 AND key_id = "                                    \
	"(SELECT id FROM keys WHERE owner = 0 AND name = ?1)"

/* Version 1's blob of root's key name, as stored. */
static void
read_blob_version(const gchar *name, guint32 version, GBytes **pub, GBytes **priv)
{
	sqlite3 *db = open_store(FALSE);
	sqlite3_stmt *st = NULL;

	g_assert_cmpint(sqlite3_prepare_v2(db, "SELECT tpm_public, tpm_private " VERSION_ROW, -1,
					   &st, NULL),
			==, SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, version);
	g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
	*pub = g_bytes_new(sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0));
	*priv = g_bytes_new(sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void
read_blob(const gchar *name, GBytes **pub, GBytes **priv)
{
	read_blob_version(name, 1, pub, priv);
}

static void
write_blob(const gchar *name, GBytes *pub, GBytes *priv)
{
	sqlite3 *db = open_store(TRUE);
	sqlite3_stmt *st = NULL;

	g_assert_cmpint(sqlite3_prepare_v2(db,
					   "UPDATE key_versions SET tpm_public = ?2, "
					   "tpm_private = ?3 WHERE version = 1 AND key_id = "
					   "(SELECT id FROM keys WHERE owner = 0 AND name = ?1)",
					   -1, &st, NULL),
			==, SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, g_bytes_get_data(pub, NULL), g_bytes_get_size(pub),
			  SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, g_bytes_get_data(priv, NULL), g_bytes_get_size(priv),
			  SQLITE_STATIC);
	g_assert_cmpint(sqlite3_step(st), ==, SQLITE_DONE);
	g_assert_cmpint(sqlite3_changes(db), ==, 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Runs tkms-test-direct-key (tkmsd must be stopped: swtpm serves one connection). */
static gint
direct_key(const gchar *op, const gchar *kind, const gchar *f_pub, const gchar *f_priv,
	   gchar **out)
{
	const gchar *prog = g_getenv("TKMS_TEST_DIRECT_KEY");
	const gchar *argv[] = {prog, tkms_test_env_get_tcti(env), op, kind, f_pub, f_priv, NULL};
	g_autoptr(GError) error = NULL;
	gint status = -1;

	g_assert_nonnull(prog);
	g_assert_true(tkms_test_env_run(env, argv, out, NULL, &status, &error));
	g_assert_no_error(error);
	g_test_message("direct %s %s: status %d, %s", op, kind, status, *out);
	return status;
}

/* One use of each key through tkmsd, compared with what it gave before (NULL: first). */
typedef struct {
	GBytes *ct, *mac, *sig;
} Uses;

static void
use_all(gchar **names, Uses *before)
{
	g_autoptr(GBytes) data = tkms_test_bytes_str("bound to its owner");
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) mac = NULL;

	if (before->ct == NULL)
		before->ct = encrypt_ok(names[0], data, data);
	{
		g_autoptr(GBytes) back = decrypt_ok(names[0], before->ct, data);
		tkms_assert_bytes_equal(back, data);
	}
	mac = tkms_client_hmac_sync(CLIENT, names[1], data, NULL, &error);
	g_assert_no_error(error);
	if (before->mac == NULL)
		before->mac = g_bytes_ref(mac);
	tkms_assert_bytes_equal(mac, before->mac);
	for (guint i = 2; i < 4; i++) {
		g_autoptr(GBytes) d = sha256(data);
		g_autoptr(GBytes) sig = sign_digest(names[i], d, &error);
		g_assert_no_error(error);
		g_assert_true(verify_ok(names[i], data, sig));
	}
}

/* DESIGN "TPM usage": a copy of a key's row plus TPM access is not enough to use it. The
 * attacker recreates the SRK (its template is public), loads each new key's object from the
 * row in keys.db and is refused; tkmsd still uses them. */
static void
test_binding_direct_tpm(void)
{
	gchar *names[G_N_ELEMENTS(bind_types)];
	const gchar *dir = tkms_test_env_get_tmp_dir(env);
	g_autoptr(GError) error = NULL;
	Uses uses = {0};

	for (guint i = 0; i < G_N_ELEMENTS(bind_types); i++) {
		g_autoptr(GVariant) info = NULL;
		names[i] = tkms_test_key_name("bound");
		info = tkms_test_create_key(CLIENT, names[i], bind_types[i].type, NULL);
	}
	use_all(names, &uses);
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(bind_types); i++) {
		g_autoptr(GBytes) pub = NULL, priv = NULL;
		g_autofree gchar *n_pub = g_strdup_printf("%s.pub", names[i]);
		g_autofree gchar *n_priv = g_strdup_printf("%s.priv", names[i]);
		g_autofree gchar *f_pub = NULL, *f_priv = NULL, *out = NULL;

		read_blob(names[i], &pub, &priv);
		/* the mark of a bound version */
		g_assert_cmpmem(g_bytes_get_data(priv, NULL), 4, "TKAB", 4);
		f_pub = tkms_test_write_file(dir, n_pub, pub);
		f_priv = tkms_test_write_file(dir, n_priv, priv);
		g_assert_cmpint(direct_key("use", bind_types[i].kind, f_pub, f_priv, &out), ==, 0);
	}
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	use_all(names, &uses);
	for (guint i = 0; i < G_N_ELEMENTS(bind_types); i++)
		g_free(names[i]);
	g_clear_pointer(&uses.ct, g_bytes_unref);
	g_clear_pointer(&uses.mac, g_bytes_unref);
}

/* tkms's AEAD (docs/dbus-api.md "Data formats") with a key known outside tkmsd. */
static GBytes *
open_ciphertext(const guint8 key[32], const gchar *name, GBytes *ct, GBytes *context)
{
	gsize len = g_bytes_get_size(ct), body = len - CT_OVERHEAD;
	const guint8 *p = g_bytes_get_data(ct, NULL);
	g_autoptr(GByteArray) aad = g_byte_array_new();
	guint32 be_owner = 0, be_ctx = GUINT32_TO_BE((guint32)g_bytes_get_size(context));
	guint8 name_len = strlen(name);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	guint8 *out = g_malloc(body + 16);
	int n = 0;
	gboolean ok;

	g_byte_array_append(aad, (const guint8 *)"tkms-aead-v1", 13);
	g_byte_array_append(aad, p, 12);
	g_byte_array_append(aad, (const guint8 *)&be_owner, 4);
	g_byte_array_append(aad, &name_len, 1);
	g_byte_array_append(aad, (const guint8 *)name, name_len);
	g_byte_array_append(aad, (const guint8 *)&be_ctx, 4);
	g_byte_array_append(aad, g_bytes_get_data(context, NULL), g_bytes_get_size(context));
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, p + 12) == 1 &&
	     EVP_DecryptUpdate(c, NULL, &n, aad->data, aad->len) == 1 &&
	     EVP_DecryptUpdate(c, out, &n, p + 24, body) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(p + len - 16)) == 1 &&
	     EVP_DecryptFinal_ex(c, out + body, &n) == 1;
	EVP_CIPHER_CTX_free(c);
	if (!ok) {
		g_free(out);
		return NULL;
	}
	return g_bytes_new_take(out, body);
}

/* Keys made before binding (empty auth value, no mark) keep working: each key's version 1 is
 * replaced, tkmsd stopped, by an object made directly in the TPM in the old format. */
static void
test_binding_old_format(void)
{
	gchar *names[G_N_ELEMENTS(bind_types)];
	const gchar *dir = tkms_test_env_get_tmp_dir(env);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *aes_hex = NULL;
	Uses uses = {0};

	for (guint i = 0; i < G_N_ELEMENTS(bind_types); i++) {
		g_autoptr(GVariant) info = NULL;
		names[i] = tkms_test_key_name("old");
		info = tkms_test_create_key(CLIENT, names[i], bind_types[i].type, NULL);
	}
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(bind_types); i++) {
		g_autofree gchar *f_pub = g_strdup_printf("%s/%s.pub", dir, names[i]);
		g_autofree gchar *f_priv = g_strdup_printf("%s/%s.priv", dir, names[i]);
		g_autofree gchar *out = NULL, *again = NULL;
		g_autofree gchar *p = NULL, *s = NULL;
		gsize plen = 0, slen = 0;
		g_autoptr(GBytes) pub = NULL, priv = NULL;

		g_assert_cmpint(direct_key("create", bind_types[i].kind, f_pub, f_priv, &out), ==,
				0);
		if (i == 0)
			aes_hex = g_strstrip(g_strdup(out));
		/* the old format is usable with the empty auth value: what binding ends */
		g_assert_cmpint(direct_key("use", bind_types[i].kind, f_pub, f_priv, &again), ==,
				1);
		g_assert_true(g_file_get_contents(f_pub, &p, &plen, NULL));
		g_assert_true(g_file_get_contents(f_priv, &s, &slen, NULL));
		pub = g_bytes_new(p, plen);
		priv = g_bytes_new(s, slen);
		write_blob(names[i], pub, priv);
	}
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	use_all(names, &uses);
	/* tkmsd really used the old object: its ciphertext opens with that object's content */
	{
		guint8 key[32];
		g_autoptr(GBytes) data = tkms_test_bytes_str("bound to its owner");
		g_autoptr(GBytes) opened = NULL;
		g_autoptr(GBytes) pt = NULL, wrapped = NULL, pt_opened = NULL;

		g_assert_cmpuint(strlen(aes_hex), ==, 64);
		for (guint i = 0; i < 32; i++)
			key[i] = (g_ascii_xdigit_value(aes_hex[2 * i]) << 4) |
				 g_ascii_xdigit_value(aes_hex[2 * i + 1]);
		opened = open_ciphertext(key, names[0], uses.ct, data);
		g_assert_nonnull(opened);
		tkms_assert_bytes_equal(opened, data);
		g_assert_true(generate(names[0], 32, data, &pt, &wrapped, &error));
		g_assert_no_error(error);
		pt_opened = open_ciphertext(key, names[0], wrapped, data);
		g_assert_nonnull(pt_opened);
		tkms_assert_bytes_equal(pt_opened, pt);
	}
	/* ISSUE 7: rotation moves an old-format key to the bound form; what the old version
	 * protected still opens, and ReEncrypt carries it to the new version */
	for (guint i = 0; i < G_N_ELEMENTS(bind_types); i++) {
		g_autoptr(GVariant) r =
			call("RotateKey", g_variant_new("(s)", names[i]), "(u)", &error);
		g_autoptr(GBytes) pub = NULL, priv = NULL;
		guint32 version = 0;

		g_assert_no_error(error);
		g_variant_get(r, "(u)", &version);
		g_assert_cmpuint(version, ==, 2);
		read_blob_version(names[i], 2, &pub, &priv);
		g_assert_cmpmem(g_bytes_get_data(priv, NULL), 4, "TKAB", 4);
	}
	{
		g_autoptr(GBytes) data = tkms_test_bytes_str("bound to its owner");
		g_autoptr(GBytes) back = decrypt_ok(names[0], uses.ct, data);
		g_autoptr(GBytes) moved = re_encrypt(names[0], uses.ct, data, &error);
		g_autoptr(GBytes) moved_back = NULL;
		guint32 be_version;

		g_assert_no_error(error);
		tkms_assert_bytes_equal(back, data);

		/* the header names version 2 (docs/dbus-api.md "Data formats": bytes 8..11) */
		memcpy(&be_version, (const guint8 *)g_bytes_get_data(moved, NULL) + 8, 4);
		g_assert_cmpuint(GUINT32_FROM_BE(be_version), ==, 2);
		moved_back = decrypt_ok(names[0], moved, data);
		tkms_assert_bytes_equal(moved_back, data);
	}
	g_clear_pointer(&uses.mac, g_bytes_unref); /* Hmac now uses version 2 */
	use_all(names, &uses);
	for (guint i = 0; i < G_N_ELEMENTS(bind_types); i++)
		g_free(names[i]);
	g_clear_pointer(&uses.ct, g_bytes_unref);
	g_clear_pointer(&uses.mac, g_bytes_unref);
}

/* Copies a key's rows in keys.db to (owner, name): what a thief with write access to the
 * store would try, to use a key under another name or another user's namespace. */
static void
copy_key_row(const gchar *from, guint32 owner, const gchar *name)
{
	sqlite3 *db = open_store(TRUE);
	g_autofree gchar *sql = g_strdup_printf(
		"BEGIN;"
		"CREATE TEMP TABLE k AS SELECT * FROM keys WHERE owner = 0 AND name = '%s';"
		"CREATE TEMP TABLE v AS SELECT * FROM key_versions WHERE key_id = (SELECT id FROM k);"
		"UPDATE k SET id = (SELECT max(id) + 1 FROM keys), owner = %u, name = '%s';"
		"UPDATE v SET key_id = (SELECT id FROM k);"
		"INSERT INTO keys SELECT * FROM k;"
		"INSERT INTO key_versions SELECT * FROM v;"
		"DROP TABLE k; DROP TABLE v;"
		"COMMIT;",
		from, owner, name);
	gchar *err = NULL;

	g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, &err), ==, SQLITE_OK);
	g_assert_null(err);
	sqlite3_close(db);
}

/* ISSUE 7 "Binding key blobs to their owner": the owner and name recorded with a key are part
 * of its objects' auth value, so a key row copied under another name, or into another user's
 * namespace, cannot be used by anyone, while the original keeps working. */
static void
test_binding_moved_row(void)
{
	gchar *names[G_N_ELEMENTS(bind_types)];
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) data = tkms_test_bytes_str("bound to its owner");
	g_autoptr(GBytes) d = sha256(data);
	Uses uses = {0};

	for (guint i = 0; i < G_N_ELEMENTS(bind_types); i++) {
		g_autoptr(GVariant) info = NULL;
		names[i] = tkms_test_key_name("moved");
		info = tkms_test_create_key(CLIENT, names[i], bind_types[i].type, NULL);
	}
	use_all(names, &uses);
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(bind_types); i++) {
		g_autofree gchar *renamed = g_strconcat(names[i], "-copy", NULL);
		copy_key_row(names[i], 0, renamed);
		copy_key_row(names[i], 65534, names[i]);
	}
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(bind_types); i++) {
		g_autofree gchar *renamed = g_strconcat(names[i], "-copy", NULL);
		g_autofree gchar *other = g_strdup_printf("65534:%s", names[i]);
		const gchar *stolen[] = {renamed, other};

		for (guint j = 0; j < G_N_ELEMENTS(stolen); j++) {
			g_autoptr(GError) e = NULL;
			g_autoptr(GBytes) out = NULL;

			if (i == 0)
				out = tkms_client_encrypt_sync(CLIENT, stolen[j], data, data, NULL,
							       &e);
			else if (i == 1)
				out = tkms_client_hmac_sync(CLIENT, stolen[j], data, NULL, &e);
			else
				out = sign_digest(stolen[j], d, &e);
			g_assert_null(out);
			g_test_message("%s as %s: %s", bind_types[i].type, stolen[j],
				       e != NULL ? e->message : "(no error)");
			g_assert_error(e, TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE);
		}
	}
	/* what the AES copy would decrypt stays closed too */
	{
		g_autofree gchar *renamed = g_strconcat(names[0], "-copy", NULL);
		g_autoptr(GError) e = NULL;
		g_autoptr(GBytes) out =
			tkms_client_decrypt_sync(CLIENT, renamed, uses.ct, data, NULL, &e);
		g_assert_null(out);
		g_assert_error(e, TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE);
	}
	use_all(names, &uses);
	for (guint i = 0; i < G_N_ELEMENTS(bind_types); i++)
		g_free(names[i]);
	g_clear_pointer(&uses.ct, g_bytes_unref);
	g_clear_pointer(&uses.mac, g_bytes_unref);
}

int
main(int argc, char **argv)
{
	int ret;
	struct {
		gchar **name;
		const gchar *type;
	} keys[] = {
		{&aes_key, "aes-256-gcm"}, {&aes_key2, "aes-256-gcm"}, {&hmac_key, "hmac-sha256"},
		{&ec_key, "ecdsa-p256"},   {&ec_key2, "ecdsa-p256"},   {&rsa_key, "rsa-2048"},
	};

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_or_abort(NULL);
	for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
		g_autoptr(GVariant) info = NULL;
		*keys[i].name = tkms_test_key_name(keys[i].type);
		info = tkms_test_create_key(CLIENT, *keys[i].name, keys[i].type, NULL);
	}

	g_test_add_func("/datakey/generate/round-trip", test_generate_round_trip);
	g_test_add_func("/datakey/generate/random", test_generate_random);
	g_test_add_func("/datakey/generate/context", test_generate_context);
	g_test_add_func("/datakey/generate/bad-arguments", test_generate_bad);
	g_test_add_func("/datakey/reencrypt/round-trip", test_reencrypt_round_trip);
	g_test_add_func("/datakey/reencrypt/refused", test_reencrypt_refused);
	g_test_add_data_func("/datakey/sign-digest/ecdsa-p256", "ecdsa-p256", test_sign_digest);
	g_test_add_data_func("/datakey/sign-digest/rsa-2048", "rsa-2048", test_sign_digest);
	g_test_add_func("/datakey/sign-digest/bad-arguments", test_sign_digest_bad);
	g_test_add_func("/datakey/sign-digest/latency", test_sign_digest_latency);
	g_test_add_func("/binding/direct-tpm", test_binding_direct_tpm);
	g_test_add_func("/binding/old-format", test_binding_old_format);
	g_test_add_func("/binding/moved-row", test_binding_moved_row);

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	for (guint i = 0; i < G_N_ELEMENTS(keys); i++)
		g_free(*keys[i].name);
	return ret;
}
