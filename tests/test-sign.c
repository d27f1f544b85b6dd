/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-sign"

/* Sign / Verify / GetPublicKey (checked against the openssl CLI), Hmac / VerifyHmac and
 * DeriveKey (checked against the documented HKDF construction). */

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <string.h>

#include "tkms-test-util.h"

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))

static gchar *aes_key;
static gchar *hmac_key;
static gchar *hmac_key2;
static gchar *ec_key;
static gchar *ec_key2;
static gchar *rsa_key;
static gchar *rsa_key2;

/* ---- signatures ---------------------------------------------------------------------- */

static GBytes *
sign_ok(const gchar *key, GBytes *data)
{
	g_autoptr(GError) error = NULL;
	GBytes *sig = tkms_client_sign_sync(CLIENT, key, data, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(sig);
	return sig;
}

static gboolean
verify_ok(const gchar *key, GBytes *data, GBytes *sig)
{
	g_autoptr(GError) error = NULL;
	gboolean valid = FALSE;

	g_assert_true(tkms_client_verify_sync(CLIENT, key, data, sig, &valid, NULL, &error));
	g_assert_no_error(error);
	return valid;
}

/* A malformed signature may be refused as InvalidArgument; it must never verify. */
static void
assert_not_valid(const gchar *key, GBytes *data, GBytes *sig)
{
	g_autoptr(GError) error = NULL;
	gboolean valid = TRUE;

	if (tkms_client_verify_sync(CLIENT, key, data, sig, &valid, NULL, &error)) {
		g_assert_no_error(error);
		g_assert_false(valid);
	} else {
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	}
}

static gchar *
get_pem(const gchar *key)
{
	g_autoptr(GError) error = NULL;
	gchar *pem = tkms_client_get_public_key_sync(CLIENT, key, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(pem);
	return pem;
}

static gint
run_openssl(const gchar *const *argv, gchar **out)
{
	return tkms_test_env_run_status(env, argv, out);
}

static void
test_sign_verify(gconstpointer user_data)
{
	gboolean is_rsa = g_str_equal(user_data, "rsa-2048");
	const gchar *key = is_rsa ? rsa_key : ec_key;
	const gchar *other_key = is_rsa ? rsa_key2 : ec_key2;
	g_autoptr(GBytes) data = tkms_test_bytes_str("The quick brown fox signs the lazy dog.");
	g_autoptr(GBytes) other = tkms_test_bytes_str("The quick brown fox signs the lazy cat.");
	g_autoptr(GBytes) big = tkms_test_bytes_pattern(256 * 1024, 42);
	g_autoptr(GBytes) sig = sign_ok(key, data);
	g_autoptr(GBytes) sig2 = sign_ok(key, data);
	g_autoptr(GBytes) sig_big = sign_ok(key, big);
	g_autoptr(GBytes) sig_other_key = sign_ok(other_key, data);
	gsize len = g_bytes_get_size(sig);
	const guint8 *s = g_bytes_get_data(sig, NULL);

	if (is_rsa) {
		/* RSASSA-PKCS1-v1_5 is deterministic and as long as the modulus. */
		g_assert_cmpuint(len, ==, 256);
		g_assert_true(g_bytes_equal(sig, sig2));
	} else {
		/* DER SEQUENCE of two INTEGERs */
		g_assert_cmpuint(len, >=, 8);
		g_assert_cmpuint(len, <=, 72);
		g_assert_cmpuint(s[0], ==, 0x30);
		g_assert_cmpuint(s[1], ==, len - 2);
	}

	g_assert_true(verify_ok(key, data, sig));
	g_assert_true(verify_ok(key, data, sig2));
	g_assert_true(verify_ok(key, big, sig_big));
	g_assert_false(verify_ok(key, other, sig));
	g_assert_false(verify_ok(key, big, sig));
	g_assert_false(verify_ok(key, data, sig_big));
	/* Another key of the same type did not make this signature. */
	g_assert_false(verify_ok(key, data, sig_other_key));
	g_assert_false(verify_ok(other_key, data, sig));

	/* Flipped bits: in the values (still well-formed DER) the answer is FALSE. */
	{
		gsize offsets[] = {len - 1, len - 5, len / 2, is_rsa ? len / 3 : 6};
		for (guint i = 0; i < G_N_ELEMENTS(offsets); i++) {
			g_autoptr(GBytes) bad = tkms_test_bytes_xor_byte(sig, offsets[i], 0x01);
			g_test_message("flipped byte %zu", offsets[i]);
			g_assert_false(verify_ok(key, data, bad));
		}
	}
	/* Anywhere, truncated, empty, garbage: never valid. */
	for (gsize bit = 0; bit < len * 8; bit += 13) {
		g_autoptr(GBytes) bad = tkms_test_bytes_flip_bit(sig, bit);
		assert_not_valid(key, data, bad);
	}
	{
		g_autoptr(GBytes) truncated = tkms_test_bytes_truncate(sig, len - 1);
		g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
		g_autoptr(GBytes) garbage = tkms_test_bytes_pattern(len, 5);
		g_autoptr(GBytes) huge = tkms_test_bytes_pattern(4096, 6);
		assert_not_valid(key, data, truncated);
		assert_not_valid(key, data, empty);
		assert_not_valid(key, data, garbage);
		assert_not_valid(key, data, huge);
	}
	/* The original still verifies. */
	g_assert_true(verify_ok(key, data, sig));
	/* A signature that does not verify is an answer, not an error in tkmsd's log. */
	{
		g_autofree gchar *log = tkms_test_env_get_daemon_log(env);
		g_assert_nonnull(log);
		g_assert_null(strstr(log, "ERROR:esys"));
	}
}

static void
test_public_key_openssl(gconstpointer user_data)
{
	gboolean is_rsa = g_str_equal(user_data, "rsa-2048");
	const gchar *key = is_rsa ? rsa_key : ec_key;
	const gchar *dir = tkms_test_env_get_tmp_dir(env);
	g_autofree gchar *pem = get_pem(key);
	g_autofree gchar *pem2 = get_pem(key);
	g_autofree gchar *pem_other = get_pem(is_rsa ? rsa_key2 : ec_key2);
	g_autoptr(GBytes) data = tkms_test_bytes_pattern(5000, 77);
	g_autoptr(GBytes) other = tkms_test_bytes_pattern(5000, 78);
	g_autoptr(GBytes) sig = sign_ok(key, data);
	g_autoptr(GBytes) pem_bytes = tkms_test_bytes_str(pem);
	g_autofree gchar *prefix = g_strdup_printf("%s-", (const gchar *)user_data);
	g_autofree gchar *f_pem = NULL, *f_data = NULL, *f_other = NULL, *f_sig = NULL;
	g_autofree gchar *n_pem = g_strconcat(prefix, "pub.pem", NULL);
	g_autofree gchar *n_data = g_strconcat(prefix, "data", NULL);
	g_autofree gchar *n_other = g_strconcat(prefix, "other", NULL);
	g_autofree gchar *n_sig = g_strconcat(prefix, "sig", NULL);
	g_autofree gchar *text = NULL;

	g_assert_true(g_str_has_prefix(pem, "-----BEGIN PUBLIC KEY-----\n"));
	g_assert_nonnull(strstr(pem, "-----END PUBLIC KEY-----"));
	g_assert_null(strstr(pem, "PRIVATE"));
	g_assert_cmpstr(pem, ==, pem2);
	g_assert_cmpstr(pem, !=, pem_other);

	f_pem = tkms_test_write_file(dir, n_pem, pem_bytes);
	f_data = tkms_test_write_file(dir, n_data, data);
	f_other = tkms_test_write_file(dir, n_other, other);
	f_sig = tkms_test_write_file(dir, n_sig, sig);

	{
		const gchar *argv[] = {"openssl", "pkey",   "-pubin", "-in",
				       f_pem,	  "-noout", "-text",  NULL};
		g_assert_cmpint(run_openssl(argv, &text), ==, 0);
		if (is_rsa)
			g_assert_nonnull(strstr(text, "2048 bit"));
		else
			g_assert_nonnull(strstr(text, "prime256v1"));
	}
	{
		const gchar *argv[] = {"openssl",    "dgst", "-sha256", "-verify", f_pem,
				       "-signature", f_sig,  f_data,	NULL};
		g_autofree gchar *out = NULL;
		g_assert_cmpint(run_openssl(argv, &out), ==, 0);
		g_assert_nonnull(strstr(out, "Verified OK"));
	}
	{
		const gchar *argv[] = {"openssl",    "dgst", "-sha256", "-verify", f_pem,
				       "-signature", f_sig,  f_other,	NULL};
		g_autofree gchar *out = NULL;
		g_assert_cmpint(run_openssl(argv, &out), !=, 0);
		g_assert_null(strstr(out, "Verified OK"));
	}
}

/* ---- strict verification in OpenSSL --------------------------------------------------- */

static gboolean
verify_digest_ok(const gchar *key, GBytes *digest, GBytes *sig)
{
	g_autoptr(GError) error = NULL;
	gboolean valid = FALSE;

	g_assert_true(
		tkms_client_verify_digest_sync(CLIENT, key, digest, sig, &valid, NULL, &error));
	g_assert_no_error(error);
	return valid;
}

/* What OpenSSL says of sig over data with the key tkms exports. */
static gboolean
openssl_verify(const gchar *pem, GBytes *data, GBytes *sig)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	gsize sig_len = 0, len = 0;
	const guint8 *s = g_bytes_get_data(sig, &sig_len);
	const guint8 *p = g_bytes_get_data(data, &len);
	int rc;

	g_assert_nonnull(pkey);
	g_assert_cmpint(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey), ==, 1);
	rc = EVP_DigestVerify(md, s, sig_len, p, len);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return rc == 1;
}

static GBytes *
bytes_join(const guint8 *a, gsize a_len, const guint8 *b, gsize b_len)
{
	GByteArray *out = g_byte_array_new();
	g_byte_array_append(out, a, a_len);
	g_byte_array_append(out, b, b_len);
	return g_byte_array_free_to_bytes(out);
}

static void
der_integer(GByteArray *out, const BIGNUM *bn, gboolean extra_zero)
{
	guint8 buf[40];
	int n = BN_bn2bin(bn, buf + 2);
	guint8 *start = buf + 2;

	/* minimal: one 0x00 only when the top bit is set */
	if (start[0] & 0x80) {
		*--start = 0;
		n++;
	}
	if (extra_zero) {
		*--start = 0;
		n++;
	}
	g_byte_array_append(out, (const guint8 *)"\x02", 1);
	g_byte_array_append(out, (const guint8[]){(guint8)n}, 1);
	g_byte_array_append(out, start, n);
}

/* (r, s) as DER, with a non-minimal r or a long-form SEQUENCE length if asked. */
static GBytes *
ecdsa_der(const BIGNUM *r, const BIGNUM *s, gboolean r_extra_zero, gboolean long_length)
{
	g_autoptr(GByteArray) body = g_byte_array_new();
	GByteArray *out = g_byte_array_new();

	der_integer(body, r, r_extra_zero);
	der_integer(body, s, FALSE);
	g_byte_array_append(out, (const guint8 *)"\x30", 1);
	if (long_length)
		g_byte_array_append(out, (const guint8 *)"\x81", 1);
	g_byte_array_append(out, (const guint8[]){(guint8)body->len}, 1);
	g_byte_array_append(out, body->data, body->len);
	return g_byte_array_free_to_bytes(out);
}

/* The ECDSA twin (r, n - s) of a signature: the high-S form if sig is low-S, and back. */
static GBytes *
ecdsa_twin(GBytes *sig, GBytes **reencoded)
{
	const guint8 *p = g_bytes_get_data(sig, NULL);
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, g_bytes_get_size(sig));
	EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	BIGNUM *twin_s = BN_new();
	const BIGNUM *r, *s;
	GBytes *twin;

	g_assert_nonnull(es);
	ECDSA_SIG_get0(es, &r, &s);
	g_assert_cmpint(BN_sub(twin_s, EC_GROUP_get0_order(group), s), ==, 1);
	twin = ecdsa_der(r, twin_s, FALSE, FALSE);
	if (reencoded != NULL)
		*reencoded = ecdsa_der(r, s, FALSE, FALSE);
	BN_free(twin_s);
	EC_GROUP_free(group);
	ECDSA_SIG_free(es);
	return twin;
}

/* Verify runs in OpenSSL with strict encodings: only the exact bytes of a valid signature
 * verify; trailing bytes, short or long RSA signatures and non-minimal DER are simply FALSE.
 * High-S ECDSA signatures are accepted: the TPM makes either form, and Verify always took both
 * (ECDSA signatures are malleable; do not use one as a unique identifier). */
static void
test_verify_strict(gconstpointer user_data)
{
	gboolean is_rsa = g_str_equal(user_data, "rsa-2048");
	const gchar *key = is_rsa ? rsa_key : ec_key;
	g_autoptr(GBytes) data = tkms_test_bytes_str("Strictly encoded, or not at all.");
	g_autoptr(GBytes) sig = sign_ok(key, data);
	g_autofree gchar *pem = get_pem(key);
	gsize len = g_bytes_get_size(sig);
	const guint8 *s = g_bytes_get_data(sig, NULL);
	guint8 digest[32];
	g_autoptr(GBytes) digest_b = NULL;
	g_autoptr(GPtrArray) invalid =
		g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);

	g_assert_true(EVP_Digest(g_bytes_get_data(data, NULL), g_bytes_get_size(data), digest, NULL,
				 EVP_sha256(), NULL) == 1);
	digest_b = g_bytes_new(digest, sizeof(digest));

	g_assert_true(verify_ok(key, data, sig));
	g_assert_true(verify_digest_ok(key, digest_b, sig));
	g_assert_true(openssl_verify(pem, data, sig));

	g_ptr_array_add(invalid, bytes_join(s, len, (const guint8 *)"\0", 1));
	g_ptr_array_add(invalid, bytes_join(s, len, (const guint8 *)"\x30\x00", 2));
	g_ptr_array_add(invalid, tkms_test_bytes_truncate(sig, len - 1));
	g_ptr_array_add(invalid, bytes_join((const guint8 *)"\0", 1, s, len));
	if (is_rsa) {
		g_ptr_array_add(invalid, tkms_test_bytes_truncate(sig, 128));
		g_ptr_array_add(invalid, bytes_join(s, len, s, len));
	} else {
		const guint8 *p = s;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, len);
		const BIGNUM *r, *ss;
		g_autoptr(GBytes) same = NULL;
		g_autoptr(GBytes) twin = ecdsa_twin(sig, &same);
		g_autoptr(GBytes) twin_twin = ecdsa_twin(twin, NULL);

		g_assert_nonnull(es);
		ECDSA_SIG_get0(es, &r, &ss);
		/* our own DER writer agrees with the TPM's signature, byte for byte */
		g_assert_true(g_bytes_equal(same, sig));
		g_ptr_array_add(invalid, ecdsa_der(r, ss, TRUE, FALSE));
		g_ptr_array_add(invalid, ecdsa_der(r, ss, FALSE, TRUE));
		ECDSA_SIG_free(es);

		/* the decision: both S forms verify, in tkms as in OpenSSL */
		g_assert_true(g_bytes_equal(twin_twin, sig));
		g_assert_true(openssl_verify(pem, data, twin));
		g_assert_true(verify_ok(key, data, twin));
		g_assert_true(verify_digest_ok(key, digest_b, twin));
	}
	for (guint i = 0; i < invalid->len; i++) {
		GBytes *bad = g_ptr_array_index(invalid, i);
		g_test_message("variant %u: %zu bytes", i, g_bytes_get_size(bad));
		g_assert_false(verify_ok(key, data, bad));
		g_assert_false(verify_digest_ok(key, digest_b, bad));
		g_assert_false(openssl_verify(pem, data, bad));
	}
	g_assert_true(verify_ok(key, data, sig));
}

/* Verify calls per second over the bus (a figure, not a threshold). */
static void
test_verify_rate(gconstpointer user_data)
{
	gboolean is_rsa = g_str_equal(user_data, "rsa-2048");
	const gchar *key = is_rsa ? rsa_key : ec_key;
	g_autoptr(GBytes) data = tkms_test_bytes_str("rate");
	g_autoptr(GBytes) sig = sign_ok(key, data);
	const guint n = 200;
	gint64 start = g_get_monotonic_time();
	gdouble secs;

	for (guint i = 0; i < n; i++)
		g_assert_true(verify_ok(key, data, sig));
	secs = (g_get_monotonic_time() - start) / 1e6;
	g_test_message("Verify %s: %u calls in %.3f s = %.0f calls/s", (const gchar *)user_data, n,
		       secs, n / secs);
}

/* ---- wrong key types ------------------------------------------------------------------ */

static void
test_wrong_types(void)
{
	g_autoptr(GBytes) data = tkms_test_bytes_str("wrong type");
	g_autoptr(GBytes) sig = sign_ok(ec_key, data);
	g_autoptr(GBytes) mac = NULL;
	const gchar *not_signing[] = {aes_key, hmac_key};
	const gchar *not_hmac[] = {aes_key, ec_key, rsa_key};

	{
		g_autoptr(GError) error = NULL;
		mac = tkms_client_hmac_sync(CLIENT, hmac_key, data, NULL, &error);
		g_assert_no_error(error);
	}
	for (guint i = 0; i < G_N_ELEMENTS(not_signing); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = NULL;
		g_autofree gchar *pem = NULL;
		gboolean valid = TRUE;

		g_test_message("signing with %s", not_signing[i]);
		out = tkms_client_sign_sync(CLIENT, not_signing[i], data, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(out);
		g_clear_error(&error);
		g_assert_false(tkms_client_verify_sync(CLIENT, not_signing[i], data, sig, &valid,
						       NULL, &error));
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
		pem = tkms_client_get_public_key_sync(CLIENT, not_signing[i], NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(pem);
	}
	for (guint i = 0; i < G_N_ELEMENTS(not_hmac); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = NULL;
		gboolean valid = TRUE;

		g_test_message("hmac with %s", not_hmac[i]);
		out = tkms_client_hmac_sync(CLIENT, not_hmac[i], data, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(out);
		g_clear_error(&error);
		g_assert_false(tkms_client_verify_hmac_sync(CLIENT, not_hmac[i], data, mac, &valid,
							    NULL, &error));
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
		out = tkms_client_derive_key_sync(CLIENT, not_hmac[i], data, 32, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(out);
	}
}

/* ---- HMAC ------------------------------------------------------------------------------ */

static gboolean
verify_hmac_ok(const gchar *key, GBytes *data, GBytes *mac)
{
	g_autoptr(GError) error = NULL;
	gboolean valid = FALSE;

	g_assert_true(tkms_client_verify_hmac_sync(CLIENT, key, data, mac, &valid, NULL, &error));
	g_assert_no_error(error);
	return valid;
}

static void
assert_hmac_not_valid(const gchar *key, GBytes *data, GBytes *mac)
{
	g_autoptr(GError) error = NULL;
	gboolean valid = TRUE;

	if (tkms_client_verify_hmac_sync(CLIENT, key, data, mac, &valid, NULL, &error)) {
		g_assert_no_error(error);
		g_assert_false(valid);
	} else {
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	}
}

static void
test_hmac(void)
{
	g_autoptr(GBytes) data = tkms_test_bytes_str("message to authenticate");
	g_autoptr(GBytes) other = tkms_test_bytes_str("message to authenticatf");
	g_autoptr(GBytes) mac = tkms_test_hmac(CLIENT, hmac_key, data);
	g_autoptr(GBytes) mac_again = tkms_test_hmac(CLIENT, hmac_key, data);
	g_autoptr(GBytes) mac_other = tkms_test_hmac(CLIENT, hmac_key, other);
	g_autoptr(GBytes) mac_key2 = tkms_test_hmac(CLIENT, hmac_key2, data);
	g_autoptr(GBytes) zeros = g_bytes_new_take(g_malloc0(32), 32);

	g_assert_cmpuint(g_bytes_get_size(mac), ==, 32);
	g_assert_true(g_bytes_equal(mac, mac_again));
	g_assert_false(g_bytes_equal(mac, mac_other));
	g_assert_false(g_bytes_equal(mac, mac_key2));
	g_assert_false(g_bytes_equal(mac, zeros));

	g_assert_true(verify_hmac_ok(hmac_key, data, mac));
	g_assert_true(verify_hmac_ok(hmac_key2, data, mac_key2));
	g_assert_false(verify_hmac_ok(hmac_key, other, mac));
	g_assert_false(verify_hmac_ok(hmac_key, data, mac_other));
	g_assert_false(verify_hmac_ok(hmac_key2, data, mac));
	g_assert_false(verify_hmac_ok(hmac_key, data, zeros));
	/* One flipped bit in each byte position. */
	for (gsize i = 0; i < 32; i++) {
		g_autoptr(GBytes) bad = tkms_test_bytes_flip_bit(mac, i * 8 + (i % 8));
		g_assert_false(verify_hmac_ok(hmac_key, data, bad));
	}
	/* Wrong lengths never match (a prefix of the right MAC included). */
	{
		g_autoptr(GBytes) truncated = tkms_test_bytes_truncate(mac, 31);
		g_autoptr(GBytes) half = tkms_test_bytes_truncate(mac, 16);
		g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
		g_autoptr(GByteArray) longer = g_byte_array_new();
		g_autoptr(GBytes) longer_b = NULL;

		g_byte_array_append(longer, g_bytes_get_data(mac, NULL), 32);
		g_byte_array_append(longer, (const guint8 *)"x", 1);
		longer_b = g_byte_array_free_to_bytes(g_steal_pointer(&longer));
		assert_hmac_not_valid(hmac_key, data, truncated);
		assert_hmac_not_valid(hmac_key, data, half);
		assert_hmac_not_valid(hmac_key, data, empty);
		assert_hmac_not_valid(hmac_key, data, longer_b);
	}
}

/* Data longer than one TPM buffer (sequence commands in the TPM) gives stable results. */
static void
test_hmac_large(void)
{
	g_autoptr(GBytes) data = tkms_test_bytes_pattern(64 * 1024, 3);
	g_autoptr(GBytes) data2 = tkms_test_bytes_xor_byte(data, 64 * 1024 - 1, 0x01);
	g_autoptr(GBytes) mac = tkms_test_hmac(CLIENT, hmac_key, data);
	g_autoptr(GBytes) mac_again = tkms_test_hmac(CLIENT, hmac_key, data);
	g_autoptr(GBytes) mac2 = tkms_test_hmac(CLIENT, hmac_key, data2);
	g_autoptr(GBytes) too_big = tkms_test_bytes_pattern(1024 * 1024 + 1, 4);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) out = NULL;

	g_assert_cmpuint(g_bytes_get_size(mac), ==, 32);
	g_assert_true(g_bytes_equal(mac, mac_again));
	g_assert_false(g_bytes_equal(mac, mac2));
	g_assert_true(verify_hmac_ok(hmac_key, data, mac));
	g_assert_false(verify_hmac_ok(hmac_key, data2, mac));

	out = tkms_client_hmac_sync(CLIENT, hmac_key, too_big, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	g_assert_null(out);
}

/* ---- DeriveKey ------------------------------------------------------------------------- */

static GBytes *
derive_ok(const gchar *key, GBytes *context, guint length)
{
	g_autoptr(GError) error = NULL;
	GBytes *out = tkms_client_derive_key_sync(CLIENT, key, context, length, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(out);
	g_assert_cmpuint(g_bytes_get_size(out), ==, length);
	return out;
}

#define DERIVE_LABEL "tkms-derive-v1"

/* The documented construction: PRK = HMAC(key, label || 0 || context) computed by the
 * daemon's own Hmac method, then HKDF-Expand (RFC 5869) here with OpenSSL. */
static GBytes *
derive_reference(const gchar *key, GBytes *context, guint length)
{
	g_autoptr(GByteArray) prk_in = g_byte_array_new();
	g_autoptr(GByteArray) info = g_byte_array_new();
	g_autoptr(GBytes) prk_in_b = NULL;
	g_autoptr(GBytes) prk = NULL;
	guint8 *okm = g_malloc(length);
	guint8 t[32];
	guint t_len = 0;
	guint32 be_len = GUINT32_TO_BE(length);
	gsize done = 0;

	g_byte_array_append(prk_in, (const guint8 *)DERIVE_LABEL, sizeof(DERIVE_LABEL));
	g_byte_array_append(prk_in, g_bytes_get_data(context, NULL),
			    (guint)g_bytes_get_size(context));
	prk_in_b = g_byte_array_free_to_bytes(g_steal_pointer(&prk_in));
	prk = tkms_test_hmac(CLIENT, key, prk_in_b);

	g_byte_array_append(info, (const guint8 *)DERIVE_LABEL, sizeof(DERIVE_LABEL));
	g_byte_array_append(info, g_bytes_get_data(context, NULL),
			    (guint)g_bytes_get_size(context));
	g_byte_array_append(info, (const guint8 *)&be_len, 4);

	for (guint8 counter = 1; done < length; counter++) {
		g_autoptr(GByteArray) msg = g_byte_array_new();
		unsigned int out_len = sizeof(t);

		g_byte_array_append(msg, t, t_len);
		g_byte_array_append(msg, info->data, info->len);
		g_byte_array_append(msg, &counter, 1);
		g_assert_nonnull(HMAC(EVP_sha256(), g_bytes_get_data(prk, NULL),
				      (int)g_bytes_get_size(prk), msg->data, msg->len, t,
				      &out_len));
		t_len = out_len;
		memcpy(okm + done, t, MIN(t_len, length - done));
		done += MIN(t_len, length - done);
	}
	return g_bytes_new_take(okm, length);
}

static void
test_derive(void)
{
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("database encryption key");
	g_autoptr(GBytes) ctx2 = tkms_test_bytes_str("database encryption kez");
	g_autoptr(GBytes) d = derive_ok(hmac_key, ctx, 32);
	g_autoptr(GBytes) d_again = derive_ok(hmac_key, ctx, 32);
	g_autoptr(GBytes) d_ctx2 = derive_ok(hmac_key, ctx2, 32);
	g_autoptr(GBytes) d_64 = derive_ok(hmac_key, ctx, 64);
	g_autoptr(GBytes) d_key2 = derive_ok(hmac_key2, ctx, 32);
	g_autoptr(GBytes) d_1 = derive_ok(hmac_key, ctx, 1);
	g_autoptr(GBytes) d_max = derive_ok(hmac_key, ctx, 8160);
	g_autoptr(GBytes) d_64_prefix = tkms_test_bytes_truncate(d_64, 32);
	g_autoptr(GBytes) d_max_again = derive_ok(hmac_key, ctx, 8160);

	g_assert_true(g_bytes_equal(d, d_again));
	g_assert_true(g_bytes_equal(d_max, d_max_again));
	g_assert_false(g_bytes_equal(d, d_ctx2));
	g_assert_false(g_bytes_equal(d, d_key2));
	/* The length is part of the info: 64 bytes do not start with the 32. */
	g_assert_false(g_bytes_equal(d, d_64_prefix));
	/* The derived bytes are not the HMAC of the context. */
	{
		g_autoptr(GBytes) mac = tkms_test_hmac(CLIENT, hmac_key, ctx);
		g_assert_false(g_bytes_equal(d, mac));
	}
}

static void
test_derive_reference(void)
{
	guint lengths[] = {1, 16, 32, 33, 100, 8160};
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("reference context");
	g_autoptr(GBytes) ctx_bin = tkms_test_bytes_pattern(1024, 11);

	for (guint i = 0; i < G_N_ELEMENTS(lengths); i++) {
		g_autoptr(GBytes) got = derive_ok(hmac_key, ctx, lengths[i]);
		g_autoptr(GBytes) want = derive_reference(hmac_key, ctx, lengths[i]);
		g_test_message("length %u", lengths[i]);
		tkms_assert_bytes_equal(got, want);
	}
	{
		/* 1 KiB context, binary */
		g_autoptr(GBytes) got = derive_ok(hmac_key2, ctx_bin, 48);
		g_autoptr(GBytes) want = derive_reference(hmac_key2, ctx_bin, 48);
		tkms_assert_bytes_equal(got, want);
	}
}

static void
test_derive_bad(void)
{
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("ctx");
	g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
	g_autoptr(GBytes) ctx_long = tkms_test_bytes_pattern(1025, 1);
	guint bad_lengths[] = {0, 8161, 65536, G_MAXUINT32};

	for (guint i = 0; i < G_N_ELEMENTS(bad_lengths); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = tkms_client_derive_key_sync(CLIENT, hmac_key, ctx,
								    bad_lengths[i], NULL, &error);
		g_test_message("length %u", bad_lengths[i]);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(out);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out =
			tkms_client_derive_key_sync(CLIENT, hmac_key, empty, 32, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(out);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out =
			tkms_client_derive_key_sync(CLIENT, hmac_key, ctx_long, 32, NULL, &error);
		tkms_assert_error_one_of(error, TKMS_ERROR_INVALID_ARGUMENT,
					 TKMS_ERROR_LIMIT_EXCEEDED);
		g_assert_null(out);
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
		{&aes_key, "aes-256-gcm"}, {&hmac_key, "hmac-sha256"}, {&hmac_key2, "hmac-sha256"},
		{&ec_key, "ecdsa-p256"},   {&ec_key2, "ecdsa-p256"},   {&rsa_key, "rsa-2048"},
		{&rsa_key2, "rsa-2048"},
	};

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_or_abort(NULL);
	for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
		g_autoptr(GVariant) info = NULL;
		*keys[i].name = tkms_test_key_name(keys[i].type);
		info = tkms_test_create_key(CLIENT, *keys[i].name, keys[i].type, NULL);
	}

	g_test_add_data_func("/sign/ecdsa-p256", "ecdsa-p256", test_sign_verify);
	g_test_add_data_func("/sign/rsa-2048", "rsa-2048", test_sign_verify);
	g_test_add_data_func("/sign/verify-rate/ecdsa-p256", "ecdsa-p256", test_verify_rate);
	g_test_add_data_func("/sign/verify-rate/rsa-2048", "rsa-2048", test_verify_rate);
	g_test_add_data_func("/sign/verify-strict/ecdsa-p256", "ecdsa-p256", test_verify_strict);
	g_test_add_data_func("/sign/verify-strict/rsa-2048", "rsa-2048", test_verify_strict);
	g_test_add_data_func("/sign/public-key/ecdsa-p256", "ecdsa-p256", test_public_key_openssl);
	g_test_add_data_func("/sign/public-key/rsa-2048", "rsa-2048", test_public_key_openssl);
	g_test_add_func("/sign/wrong-key-types", test_wrong_types);
	g_test_add_func("/hmac/basic", test_hmac);
	g_test_add_func("/hmac/large", test_hmac_large);
	g_test_add_func("/derive/deterministic", test_derive);
	g_test_add_func("/derive/reference", test_derive_reference);
	g_test_add_func("/derive/bad-arguments", test_derive_bad);

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	for (guint i = 0; i < G_N_ELEMENTS(keys); i++)
		g_free(*keys[i].name);
	return ret;
}
