/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-datakey"

/* GenerateDataKey, ReEncrypt, SignDigest and VerifyDigest against a real tkmsd and swtpm.
 * The methods are called on the bus directly (their D-Bus signatures are the contract);
 * Encrypt, Decrypt, Sign and Verify through libtkms, so that each new method is checked
 * against the one it must agree with. */

#include <openssl/evp.h>
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
	g_autoptr(GError) error = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	tkms_test_env_run(env, argv, out, &err, &status, &error);
	g_assert_no_error(error);
	g_test_message("%s: status %d, stderr: %s", argv[1], status, err);
	return status;
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

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	for (guint i = 0; i < G_N_ELEMENTS(keys); i++)
		g_free(*keys[i].name);
	return ret;
}
