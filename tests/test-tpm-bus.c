/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-tpm-bus"

/*
 * Nothing secret crosses the TPM bus in clear (issue 9, item 1). tkmsd reaches swtpm through a
 * recording proxy (tests/tkms-test-tpm-proxy.h). After each call, none of the secrets the
 * caller handled (Hmac messages and MACs, DeriveKey contexts and derived bytes, random bytes,
 * plaintexts, data keys, sealed and unsealed data) appears in the recorded bytes: not whole,
 * and no 8-byte window of it. Nor does the key material behind them, found through the
 * documented formats: the HKDF pseudo-random key of DeriveKey (a 32-byte window W with
 * HMAC-SHA256(W, info | 1) = the first derived block), and the AES-256 keys of an
 * aes-256-gcm key and of a Seal blob's data key (a window K with AES_K(IV | 2) = the first
 * keystream block, known plaintext XOR ciphertext). PCR-bound objects are covered too (policy
 * sessions). A positive control shows that the recording holds what it should: the public key
 * of a key that signed.
 *
 * The recording also shows the session reuse (issue 10): calls that carry secrets start no
 * salted session once one is open, and a TPM reset (swtpm's control channel, tkmsd's
 * connection untouched) costs one new session, after which the same key gives the same MAC.
 */

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/core_names.h>
#include <string.h>

#include "tkms-test-store.h"
#include "tkms-test-tpm-proxy.h"
#include "tkms-test-util.h"

static TkmsTestEnv *env;
static TkmsTestTpmProxy *proxy;
static gchar *record_path;
#define CLIENT (tkms_test_env_get_client(env))

#define WINDOW	      8
#define WHOLE_MIN     16
#define KEY_LEN	      32
#define IV_LEN	      12
#define CT_HEADER_LEN 12	       /* ciphertext format 1 (docs/dbus-api.md) */
#define DERIVE_LABEL  "tkms-derive-v1" /* with its NUL: "tkms-derive-v1" 0x00 */

/* Everything a caller got back or passed in that must not cross the bus, for the last check. */
static GPtrArray *all_secrets; /* GBytes */
static GPtrArray *all_names;   /* gchar* */

/* ---- the recording ---- */

typedef struct {
	GBytes *dir[2];	  /* to the TPM, from it */
	guint64 *windows; /* every 8-byte window of both, sorted */
	gsize n_windows;
} Recording;

static void
recording_free(Recording *rec)
{
	g_clear_pointer(&rec->dir[0], g_bytes_unref);
	g_clear_pointer(&rec->dir[1], g_bytes_unref);
	g_free(rec->windows);
	g_free(rec);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Recording, recording_free)

static gint
cmp_u64(gconstpointer a, gconstpointer b)
{
	guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;
	return x < y ? -1 : x > y;
}

static Recording *
recording_read(void)
{
	g_autoptr(GError) error = NULL;
	Recording *rec = g_new0(Recording, 1);
	gsize total = 0;

	tkms_test_tpm_proxy_read(record_path, &rec->dir[0], &rec->dir[1], &error);
	g_assert_no_error(error);
	for (guint d = 0; d < 2; d++)
		total += g_bytes_get_size(rec->dir[d]);
	rec->windows = g_new(guint64, total);
	for (guint d = 0; d < 2; d++) {
		gsize len;
		const guint8 *p = g_bytes_get_data(rec->dir[d], &len);
		for (gsize i = 0; i + WINDOW <= len; i++)
			memcpy(&rec->windows[rec->n_windows++], p + i, WINDOW);
	}
	qsort(rec->windows, rec->n_windows, sizeof(guint64), cmp_u64);
	return rec;
}

static const gchar *
dir_name(guint d)
{
	return d == 0 ? "to the TPM" : "from the TPM";
}

/* NULL if no trace of secret is in rec, else where it was found. */
static gchar *
find_secret(Recording *rec, GBytes *secret)
{
	gsize len;
	const guint8 *s = g_bytes_get_data(secret, &len);

	g_assert_cmpuint(len, >=, WHOLE_MIN);
	for (guint d = 0; d < 2; d++) {
		gsize hlen;
		const guint8 *h = g_bytes_get_data(rec->dir[d], &hlen);
		const guint8 *hit = hlen >= len ? memmem(h, hlen, s, len) : NULL;
		if (hit != NULL)
			return g_strdup_printf("all %" G_GSIZE_FORMAT " bytes, %s at byte %td", len,
					       dir_name(d), hit - h);
	}
	for (gsize i = 0; i + WINDOW <= len; i++) {
		guint64 w;
		memcpy(&w, s + i, WINDOW);
		if (bsearch(&w, rec->windows, rec->n_windows, sizeof(guint64), cmp_u64) != NULL)
			return g_strdup_printf("its bytes %" G_GSIZE_FORMAT "-%" G_GSIZE_FORMAT, i,
					       i + WINDOW - 1);
	}
	return NULL;
}

/* Fails the test case, and says so in the log: a case may find several. */
static void
leak(const gchar *what, const gchar *where)
{
	g_test_message("LEAK: %s crossed the TPM bus in clear: %s", what, where);
	g_test_fail_printf("%s crossed the TPM bus in clear: %s", what, where);
}

/* Asserts that none of the secrets (name, GBytes*, ..., NULL) is on the bus; remembers them
 * for the last check. */
static void
assert_secrets_absent(const gchar *first_name, ...)
{
	g_autoptr(Recording) rec = recording_read();
	va_list ap;

	va_start(ap, first_name);
	for (const gchar *name = first_name; name != NULL; name = va_arg(ap, const gchar *)) {
		GBytes *secret = va_arg(ap, GBytes *);
		g_autofree gchar *where = find_secret(rec, secret);

		g_ptr_array_add(all_secrets, g_bytes_ref(secret));
		g_ptr_array_add(all_names, g_strdup(name));
		if (where != NULL)
			leak(name, where);
		else
			g_test_message("%s (%" G_GSIZE_FORMAT " bytes): not on the bus", name,
				       g_bytes_get_size(secret));
	}
	va_end(ap);
}

/* Calls test(window, data) for every 32-byte window recorded since mark; returns where the
 * first that passes was, or NULL. */
typedef gboolean (*WindowTest)(const guint8 *window, gpointer data);

static gchar *
find_key_window(const TkmsTestTpmMark *mark, WindowTest test, gpointer data)
{
	g_autoptr(Recording) rec = recording_read();

	for (guint d = 0; d < 2; d++) {
		gsize len;
		const guint8 *p = g_bytes_get_data(rec->dir[d], &len);
		for (gsize i = mark->len[d]; i + KEY_LEN <= len; i++)
			if (test(p + i, data))
				return g_strdup_printf("%s at byte %" G_GSIZE_FORMAT, dir_name(d),
						       i);
	}
	return NULL;
}

/* AES-256-GCM with a 96-bit IV encrypts the first plaintext block with AES_K(IV | 00000002). */
typedef struct {
	EVP_CIPHER_CTX *ctx;
	guint8 counter_block[16];
	guint8 keystream[16]; /* plaintext XOR ciphertext, first block */
} AesProbe;

static gboolean
is_aes_key(const guint8 *window, gpointer data)
{
	AesProbe *probe = data;
	guint8 out[32];
	int n = 0;

	g_assert_true(EVP_EncryptInit_ex(probe->ctx, NULL, NULL, window, NULL) == 1);
	g_assert_true(EVP_EncryptUpdate(probe->ctx, out, &n, probe->counter_block, 16) == 1);
	return n == 16 && memcmp(out, probe->keystream, 16) == 0;
}

/* Asserts that the AES key that made (iv, ciphertext) from plaintext (>= 16 bytes) was not
 * recorded since mark. */
static void
assert_aes_key_absent(const gchar *what, const TkmsTestTpmMark *mark, const guint8 *iv,
		      const guint8 *ciphertext, const guint8 *plaintext)
{
	AesProbe probe = {.ctx = EVP_CIPHER_CTX_new()};
	g_autofree gchar *where = NULL;

	g_assert_true(EVP_EncryptInit_ex(probe.ctx, EVP_aes_256_ecb(), NULL, NULL, NULL) == 1);
	EVP_CIPHER_CTX_set_padding(probe.ctx, 0);
	memcpy(probe.counter_block, iv, IV_LEN);
	probe.counter_block[15] = 2;
	for (guint i = 0; i < 16; i++)
		probe.keystream[i] = plaintext[i] ^ ciphertext[i];
	where = find_key_window(mark, is_aes_key, &probe);
	EVP_CIPHER_CTX_free(probe.ctx);
	if (where != NULL)
		leak(what, where);
	else
		g_test_message("%s: not on the bus", what);
}

/* The AES key of an aes-256-gcm key, from a ciphertext (format 1) of a known plaintext. */
static void
assert_ciphertext_key_absent(const gchar *what, const TkmsTestTpmMark *mark, GBytes *ciphertext,
			     GBytes *plaintext)
{
	const guint8 *ct = g_bytes_get_data(ciphertext, NULL);

	g_assert_cmpuint(g_bytes_get_size(plaintext), >=, 16);
	g_assert_cmpuint(g_bytes_get_size(ciphertext), >=, CT_HEADER_LEN + IV_LEN + 16);
	assert_aes_key_absent(what, mark, ct + CT_HEADER_LEN, ct + CT_HEADER_LEN + IV_LEN,
			      g_bytes_get_data(plaintext, NULL));
}

/* The data key of a Seal blob (format 2: "TKSB" | 12 bytes | public | private | IV | length
 * u32 | ciphertext | tag) of a known plaintext. */
static void
assert_seal_key_absent(const TkmsTestTpmMark *mark, GBytes *blob, GBytes *data)
{
	gsize len, off = 16;
	const guint8 *b = g_bytes_get_data(blob, &len);

	for (guint part = 0; part < 2; part++) {
		g_assert_cmpuint(len, >=, off + 2);
		off += 2 + ((gsize)b[off] << 8 | b[off + 1]);
	}
	g_assert_cmpuint(len, >=, off + IV_LEN + 4 + 16);
	assert_aes_key_absent("the sealed data key", mark, b + off, b + off + IV_LEN + 4,
			      g_bytes_get_data(data, NULL));
}

/* HKDF-Expand's first block is HMAC-SHA256(PRK, info | 0x01). */
typedef struct {
	GBytes *message; /* info | 0x01 */
	const guint8 *first_block;
} PrkProbe;

static gboolean
is_prk(const guint8 *window, gpointer data)
{
	PrkProbe *probe = data;
	guint8 mac[32];
	unsigned int n = 0;

	HMAC(EVP_sha256(), window, KEY_LEN, g_bytes_get_data(probe->message, NULL),
	     g_bytes_get_size(probe->message), mac, &n);
	return n == 32 && memcmp(mac, probe->first_block, 32) == 0;
}

static GVariant *
pcr_options(void)
{
	static const guint32 pcrs[] = {7};
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);

	g_variant_dict_insert_value(d, "pcrs",
				    g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, pcrs, 1, 4));
	return g_variant_dict_end(d);
}

/* ---- the calls ---- */

static void
test_positive_control(void)
{
	g_autofree gchar *name = tkms_test_key_name("bus-ec");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "ecdsa-p256", NULL);
	g_autoptr(GBytes) msg = tkms_test_bytes_str("sign me");
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) sig = tkms_client_sign_sync(CLIENT, name, msg, NULL, &error);
	g_autofree gchar *pem = NULL;
	BIO *bio;
	EVP_PKEY *pkey;
	guint8 point[65];
	size_t point_len = 0;

	g_assert_no_error(error);
	pem = tkms_client_get_public_key_sync(CLIENT, name, NULL, &error);
	g_assert_no_error(error);
	bio = BIO_new_mem_buf(pem, -1);
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	g_assert_nonnull(pkey);
	g_assert_true(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point,
						      sizeof(point), &point_len) == 1);
	EVP_PKEY_free(pkey);
	g_assert_cmpuint(point_len, ==, 65);
	/* Sign loaded the key: its public area, with x, went to the TPM */
	{
		g_autoptr(Recording) rec = recording_read();
		g_autoptr(GBytes) x = g_bytes_new(point + 1, 32);
		g_autofree gchar *where = find_secret(rec, x);
		g_assert_nonnull(where);
		g_test_message("the public key's x: %s", where);
		g_assert_cmpuint(tkms_test_tpm_proxy_get_connections(proxy), >=, 1);
	}
}

static void
seal_unseal(GVariant *options, const gchar *what)
{
	g_autoptr(GVariant) opts = options ? g_variant_ref_sink(options) : NULL;
	g_autoptr(GBytes) data = tkms_test_bytes_random(256);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) blob = NULL;
	g_autoptr(GBytes) back = NULL;
	TkmsTestTpmMark mark = tkms_test_tpm_proxy_mark(record_path);

	blob = tkms_client_seal_sync(CLIENT, data, opts, NULL, &error);
	g_assert_no_error(error);
	back = tkms_client_unseal_sync(CLIENT, blob, NULL, &error);
	g_assert_no_error(error);
	tkms_assert_bytes_equal(back, data);
	g_test_message("%s", what);
	assert_secrets_absent("Seal's data", data, "Unseal's data", back, NULL);
	assert_seal_key_absent(&mark, blob, data);
}

static void
test_seal(void)
{
	seal_unseal(NULL, "Seal and Unseal");
}

static void
test_seal_pcr(void)
{
	seal_unseal(pcr_options(), "Seal and Unseal bound to PCR 7");
}

static void
hmac_calls(GVariant *options)
{
	g_autoptr(GVariant) opts = options ? g_variant_ref_sink(options) : NULL;
	g_autofree gchar *name = tkms_test_key_name("bus-hmac");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "hmac-sha256", opts);
	g_autoptr(GBytes) small = tkms_test_bytes_random(200);
	g_autoptr(GBytes) large = tkms_test_bytes_random(64 * 1024);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) mac_small = tkms_client_hmac_sync(CLIENT, name, small, NULL, &error);
	g_autoptr(GBytes) mac_large = NULL;

	g_assert_no_error(error);
	mac_large = tkms_client_hmac_sync(CLIENT, name, large, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(mac_small), ==, 32);
	g_assert_cmpuint(g_bytes_get_size(mac_large), ==, 32);
	assert_secrets_absent("Hmac's message (200 B)", small, "Hmac's MAC (200 B)", mac_small,
			      "Hmac's message (64 KiB)", large, "Hmac's MAC (64 KiB)", mac_large,
			      NULL);
}

static void
test_hmac(void)
{
	hmac_calls(NULL);
}

static void
test_hmac_pcr(void)
{
	hmac_calls(pcr_options());
}

static void
derive(gsize context_len)
{
	g_autofree gchar *name = tkms_test_key_name("bus-derive");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "hmac-sha256", NULL);
	g_autoptr(GBytes) context = tkms_test_bytes_random(context_len);
	g_autoptr(GByteArray) msg = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) okm = NULL;
	g_autofree gchar *where = NULL;
	guint32 be_len = GUINT32_TO_BE(64);
	PrkProbe probe;
	TkmsTestTpmMark mark = tkms_test_tpm_proxy_mark(record_path);

	okm = tkms_client_derive_key_sync(CLIENT, name, context, 64, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(okm), ==, 64);
	assert_secrets_absent("DeriveKey's context", context, "DeriveKey's derived bytes", okm,
			      NULL);
	g_byte_array_append(msg, (const guint8 *)DERIVE_LABEL, sizeof(DERIVE_LABEL));
	g_byte_array_append(msg, g_bytes_get_data(context, NULL), context_len);
	g_byte_array_append(msg, (const guint8 *)&be_len, 4);
	g_byte_array_append(msg, (const guint8 *)"\x01", 1);
	probe.message = g_byte_array_free_to_bytes(g_steal_pointer(&msg));
	probe.first_block = g_bytes_get_data(okm, NULL);
	where = find_key_window(&mark, is_prk, &probe);
	g_bytes_unref(probe.message);
	if (where != NULL)
		leak("DeriveKey's pseudo-random key", where);
	else
		g_test_message("DeriveKey's pseudo-random key: not on the bus");
}

static void
test_derive_small(void)
{
	derive(32);
}

static void
test_derive_large(void)
{
	derive(1024);
}

static void
test_random(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) r32 = tkms_client_get_random_sync(CLIENT, 32, NULL, &error);
	g_autoptr(GBytes) r4k = NULL;

	g_assert_no_error(error);
	r4k = tkms_client_get_random_sync(CLIENT, 4096, NULL, &error);
	g_assert_no_error(error);
	assert_secrets_absent("GetRandom(32)", r32, "GetRandom(4096)", r4k, NULL);
}

static void
test_decrypt_fresh_key(void)
{
	g_autofree gchar *name = tkms_test_key_name("bus-aes");
	g_autoptr(GBytes) plaintext = tkms_test_bytes_random(100);
	g_autoptr(GBytes) context = tkms_test_bytes_str("bus");
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) back = NULL;
	g_autoptr(GVariant) info = NULL;
	TkmsTestTpmMark mark = tkms_test_tpm_proxy_mark(record_path);

	info = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	ct = tkms_client_encrypt_sync(CLIENT, name, plaintext, context, NULL, &error);
	g_assert_no_error(error);
	back = tkms_client_decrypt_sync(CLIENT, name, ct, context, NULL, &error);
	g_assert_no_error(error);
	tkms_assert_bytes_equal(back, plaintext);
	assert_secrets_absent("Encrypt's plaintext", plaintext, "Decrypt's plaintext", back, NULL);
	assert_ciphertext_key_absent("the aes-256-gcm key", &mark, ct, plaintext);
}

static void
test_data_key(void)
{
	g_autofree gchar *name = tkms_test_key_name("bus-kek");
	g_autoptr(GBytes) context = tkms_test_bytes_str("bus-dk");
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) dk = NULL;
	g_autoptr(GBytes) wrapped = NULL;
	g_autoptr(GVariant) info = NULL;
	TkmsTestTpmMark mark = tkms_test_tpm_proxy_mark(record_path);

	info = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	g_assert_true(tkms_client_generate_data_key_sync(CLIENT, name, 32, context, &dk, &wrapped,
							 NULL, &error));
	g_assert_no_error(error);
	assert_secrets_absent("GenerateDataKey's data key", dk, NULL);
	assert_ciphertext_key_absent("the key that wrapped the data key", &mark, wrapped, dk);
}

/* ---- sessions ---- */

#define TPM_CC_START_AUTH_SESSION 0x176
#define TPM_RH_NULL		  0x40000007

#define TPM_CC_SIGN		 0x15d
#define TPM_CC_UNSEAL		 0x15e
#define TPMA_SESSION_ENCRYPT_BIT 0x40
#define TPMA_SESSION_DECRYPT_BIT 0x20
#define TPM_CC_HMAC		 0x155
#define TPM_HT_HMAC_SESSION	 0x02

/* TPM2_StartAuthSession commands with a salt key (tpmKey not TPM_RH_NULL) sent since mark. */
static guint
salted_sessions_since(const TkmsTestTpmMark *mark)
{
	g_autoptr(GArray) commands = tkms_test_tpm_proxy_commands_since(record_path, mark);
	guint n = 0;

	for (guint i = 0; i < commands->len; i++) {
		TkmsTestTpmCommand *c = &g_array_index(commands, TkmsTestTpmCommand, i);
		if (c->code == TPM_CC_START_AUTH_SESSION && c->handle != TPM_RH_NULL)
			n++;
	}
	return n;
}

/* A hot key's Sign is one TPM command: TPM2_Sign, its auth value proven in a session that
 * stays open from call to call (no TPM2_StartAuthSession, no TPM2_FlushContext per call), and
 * the signatures verify. */
static void
test_sign_hot(void)
{
	g_autofree gchar *name = tkms_test_key_name("bus-sign-hot");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "ecdsa-p256", NULL);
	g_autoptr(GBytes) msg = tkms_test_bytes_str("sign me, hot");
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) first = tkms_client_sign_sync(CLIENT, name, msg, NULL, &error);
	g_autoptr(GArray) commands = NULL;
	g_autoptr(GPtrArray) sigs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	guint32 session = 0;
	TkmsTestTpmMark mark;

	g_assert_no_error(error);
	mark = tkms_test_tpm_proxy_mark(record_path);
	for (guint i = 0; i < 10; i++) {
		GBytes *sig = tkms_client_sign_sync(CLIENT, name, msg, NULL, &error);
		g_assert_no_error(error);
		g_ptr_array_add(sigs, sig);
	}
	commands = tkms_test_tpm_proxy_commands_since(record_path, &mark);
	g_assert_cmpuint(commands->len, ==, 10);
	for (guint i = 0; i < commands->len; i++) {
		TkmsTestTpmCommand *c = &g_array_index(commands, TkmsTestTpmCommand, i);
		g_assert_cmphex(c->code, ==, TPM_CC_SIGN);
		g_assert_cmphex(c->session >> 24, ==, TPM_HT_HMAC_SESSION);
		if (i == 0)
			session = c->session;
		g_assert_cmphex(c->session, ==, session);
	}
	for (guint i = 0; i < sigs->len; i++) {
		gboolean valid = FALSE;
		g_assert_true(tkms_client_verify_sync(CLIENT, name, msg, g_ptr_array_index(sigs, i),
						      &valid, NULL, &error));
		g_assert_no_error(error);
		g_assert_true(valid);
	}
}

/* The Sign session proves exactly the auth value of the key it signs with: a copy of a bound
 * key's row under another name (the same TPM object, so an auth value derived from another
 * name) is refused however warm the session is, before and after the original signs in it. */
static void
test_sign_copy_refused(void)
{
	g_autofree gchar *name = tkms_test_key_name("bus-sign-orig");
	g_autofree gchar *prefix = tkms_test_key_name("bus-sign-copy");
	g_autofree gchar *copy = g_strdup_printf("%s000001", prefix);
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "ecdsa-p256", NULL);
	g_autoptr(GBytes) msg = tkms_test_bytes_str("sign me, copy");
	g_autoptr(GError) error = NULL;

	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	g_assert_true(tkms_test_store_clone_key(tkms_test_env_get_state_dir(env), 0, name, prefix,
						1, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(tkms_test_env_start_daemon(env, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < 3; i++) {
		g_autoptr(GBytes) sig = tkms_test_sign_verified(CLIENT, name, msg);
		g_autoptr(GBytes) bad = tkms_client_sign_sync(CLIENT, copy, msg, NULL, &error);

		g_assert_null(bad);
		tkms_assert_error(error, TKMS_ERROR_INTEGRITY_FAILURE);
		g_clear_error(&error);
	}
}

/* A TPM reset with the Sign session open: the first Sign after it at most says so, then the
 * key signs again, one TPM2_Sign per call in one session. */
static void
test_sign_reset(void)
{
	g_autofree gchar *name = tkms_test_key_name("bus-sign-reset");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "ecdsa-p256", NULL);
	g_autoptr(GBytes) msg = tkms_test_bytes_str("sign me, reset");
	g_autoptr(GBytes) before = tkms_test_sign_verified(CLIENT, name, msg);
	g_autoptr(GBytes) after = NULL;
	g_autoptr(GArray) commands = NULL;
	g_autoptr(GError) error = NULL;
	TkmsTestTpmMark mark;

	tkms_test_swtpm_reset(tkms_test_env_get_swtpm(env), &error);
	g_assert_no_error(error);
	after = tkms_client_sign_sync(CLIENT, name, msg, NULL, &error);
	if (after == NULL) {
		g_test_message("first Sign after the reset: %s", error->message);
		tkms_assert_error(error, TKMS_ERROR_TPM_UNAVAILABLE);
		g_clear_error(&error);
	}
	g_clear_pointer(&after, g_bytes_unref);
	after = tkms_test_sign_verified(CLIENT, name, msg);
	mark = tkms_test_tpm_proxy_mark(record_path);
	for (guint i = 0; i < 3; i++) {
		g_clear_pointer(&after, g_bytes_unref);
		after = tkms_test_sign_verified(CLIENT, name, msg);
	}
	commands = tkms_test_tpm_proxy_commands_since(record_path, &mark);
	/* three Signs and three Verifies (which need no TPM) */
	g_assert_cmpuint(commands->len, ==, 3);
	for (guint i = 0; i < commands->len; i++) {
		g_assert_cmphex(g_array_index(commands, TkmsTestTpmCommand, i).code, ==,
				TPM_CC_SIGN);
		g_assert_cmphex(g_array_index(commands, TkmsTestTpmCommand, i).session, ==,
				g_array_index(commands, TkmsTestTpmCommand, 0).session);
	}
}

/* A key version's material is unsealed, and an HMAC computed, in the session Sign runs in,
 * kept open: Unseal's answer encrypted, HMAC's message and answer too (what they carry is
 * absent from the bus: /tpm-bus/decrypt-fresh-key, /tpm-bus/hmac). */
static void
test_secrets_kept_session(void)
{
	g_autofree gchar *ec = tkms_test_key_name("bus-unseal-ec");
	g_autofree gchar *hm = tkms_test_key_name("bus-unseal-hmac");
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, hm, "hmac-sha256", NULL);
	g_autoptr(GBytes) hmac_msg = tkms_test_bytes_random(64);
	g_autoptr(GBytes) mac1 = tkms_test_hmac(CLIENT, hm, hmac_msg);
	guint hmacs = 0;
	g_autoptr(GBytes) msg = tkms_test_bytes_str("sign me, unseal");
	g_autoptr(GBytes) sig = tkms_test_sign_verified(CLIENT, ec, msg);
	g_autoptr(GArray) commands = NULL;
	guint32 session = 0;
	guint unseals = 0;
	TkmsTestTpmMark mark = tkms_test_tpm_proxy_mark(record_path), mark_hmac;

	for (guint i = 0; i < 3; i++) {
		g_autofree gchar *aes = tkms_test_key_name("bus-unseal-aes");
		g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
		g_autoptr(GBytes) pt = tkms_test_bytes_random(32);
		g_autoptr(GBytes) ctx_bytes = tkms_test_bytes_str("ctx");
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) ct =
			tkms_client_encrypt_sync(CLIENT, aes, pt, ctx_bytes, NULL, &error);
		g_autoptr(GBytes) back = NULL;

		g_assert_no_error(error);
		back = tkms_client_decrypt_sync(CLIENT, aes, ct, ctx_bytes, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(back, pt);
	}
	/* from here on the calls make no key (whose auth value tkmsd derives with TPM2_HMAC on
	 * its own key, in the shared session) */
	mark_hmac = tkms_test_tpm_proxy_mark(record_path);
	for (guint i = 0; i < 2; i++) {
		g_autoptr(GBytes) mac2 = tkms_test_hmac(CLIENT, hm, hmac_msg);
		tkms_assert_bytes_equal(mac2, mac1);
	}
	g_clear_pointer(&sig, g_bytes_unref);
	sig = tkms_test_sign_verified(CLIENT, ec, msg);
	commands = tkms_test_tpm_proxy_commands_since(record_path, &mark);
	for (guint i = 0; i < commands->len; i++) {
		TkmsTestTpmCommand *c = &g_array_index(commands, TkmsTestTpmCommand, i);
		if (c->code == TPM_CC_SIGN)
			session = c->session;
	}
	g_assert_cmphex(session >> 24, ==, TPM_HT_HMAC_SESSION);
	for (guint i = 0; i < commands->len; i++) {
		TkmsTestTpmCommand *c = &g_array_index(commands, TkmsTestTpmCommand, i);
		if (c->code != TPM_CC_UNSEAL)
			continue;
		unseals++;
		g_assert_cmphex(c->session, ==, session);
		g_assert_cmphex(c->attributes & TPMA_SESSION_ENCRYPT_BIT, ==,
				TPMA_SESSION_ENCRYPT_BIT);
	}
	g_assert_cmpuint(unseals, >=, 3);
	g_clear_pointer(&commands, g_array_unref);
	commands = tkms_test_tpm_proxy_commands_since(record_path, &mark_hmac);
	for (guint i = 0; i < commands->len; i++) {
		TkmsTestTpmCommand *c = &g_array_index(commands, TkmsTestTpmCommand, i);
		if (c->code != TPM_CC_HMAC)
			continue;
		hmacs++;
		g_assert_cmphex(c->session, ==, session);
		g_assert_cmphex(c->attributes & TPMA_SESSION_DECRYPT_BIT, ==,
				TPMA_SESSION_DECRYPT_BIT);
		g_assert_cmphex(c->attributes & TPMA_SESSION_ENCRYPT_BIT, ==,
				TPMA_SESSION_ENCRYPT_BIT);
	}
	g_assert_cmpuint(hmacs, ==, 2);
	/* one session all along */
	g_assert_cmpuint(salted_sessions_since(&mark), ==, 0);
}

static void
test_session_kept(void)
{
	g_autofree gchar *name = tkms_test_key_name("bus-kept");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "hmac-sha256", NULL);
	g_autoptr(GBytes) msg = tkms_test_bytes_random(64);
	g_autoptr(GBytes) big = tkms_test_bytes_random(3000);
	g_autoptr(GBytes) data = tkms_test_bytes_random(32);
	g_autoptr(GBytes) first = tkms_test_hmac(CLIENT, name, msg);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) blob = tkms_client_seal_sync(CLIENT, data, NULL, NULL, &error);
	TkmsTestTpmMark mark;

	g_assert_no_error(error);
	mark = tkms_test_tpm_proxy_mark(record_path);
	for (guint i = 0; i < 10; i++) {
		g_autoptr(GBytes) mac = tkms_test_hmac(CLIENT, name, msg);
		g_autoptr(GBytes) mac_big = tkms_test_hmac(CLIENT, name, big);
		g_autoptr(GBytes) back = tkms_client_unseal_sync(CLIENT, blob, NULL, &error);
		g_autoptr(GBytes) r = NULL;
		g_assert_no_error(error);
		r = tkms_client_get_random_sync(CLIENT, 64, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(mac, first);
		tkms_assert_bytes_equal(back, data);
	}
	g_assert_cmpuint(salted_sessions_since(&mark), ==, 0);
}

/* A platform reset, as firmware does it; tkmsd's side of things is untouched. */
static void
reset_tpm(void)
{
	g_autoptr(GError) error = NULL;

	tkms_test_swtpm_reset(tkms_test_env_get_swtpm(env), &error);
	g_assert_no_error(error);
}

static void
test_tpm_reset(void)
{
	g_autofree gchar *name = tkms_test_key_name("bus-reset");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "hmac-sha256", NULL);
	g_autoptr(GBytes) msg = tkms_test_bytes_random(64);
	g_autoptr(GBytes) before = tkms_test_hmac(CLIENT, name, msg);
	g_autoptr(GBytes) after = NULL;
	g_autoptr(GError) error = NULL;
	TkmsTestTpmMark mark = tkms_test_tpm_proxy_mark(record_path);

	reset_tpm();
	/* the first call finds the session and the storage key gone: at most it says so */
	after = tkms_client_hmac_sync(CLIENT, name, msg, NULL, &error);
	if (after == NULL) {
		g_test_message("first Hmac after the reset: %s", error->message);
		tkms_assert_error(error, TKMS_ERROR_TPM_UNAVAILABLE);
		g_clear_error(&error);
		after = tkms_test_hmac(CLIENT, name, msg);
	}
	tkms_assert_bytes_equal(after, before);
	g_clear_pointer(&after, g_bytes_unref);
	after = tkms_test_hmac(CLIENT, name, msg);
	tkms_assert_bytes_equal(after, before);
	/* one new session after the reset, kept again */
	g_assert_cmpuint(salted_sessions_since(&mark), ==, 1);
}

/* Everything again, against the whole recording. */
static void
test_all_absent(void)
{
	g_autoptr(Recording) rec = recording_read();

	g_test_message("recorded: %" G_GSIZE_FORMAT " bytes to the TPM, %" G_GSIZE_FORMAT
		       " from it, %u connections",
		       g_bytes_get_size(rec->dir[0]), g_bytes_get_size(rec->dir[1]),
		       tkms_test_tpm_proxy_get_connections(proxy));
	/* the 64 KiB messages went to the TPM, one way or another */
	g_assert_cmpuint(g_bytes_get_size(rec->dir[0]), >, 2 * 64 * 1024);
	for (guint i = 0; i < all_secrets->len; i++) {
		g_autofree gchar *where = find_secret(rec, g_ptr_array_index(all_secrets, i));
		if (where != NULL)
			leak(g_ptr_array_index(all_names, i), where);
	}
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int ret;

	g_test_init(&argc, &argv, NULL);
	/* every leak is reported, not only the first */
	g_test_set_nonfatal_assertions();
	env = tkms_test_env_new_behind_tpm_proxy(NULL, &proxy, &record_path);
	all_secrets = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	all_names = g_ptr_array_new_with_free_func(g_free);

	g_test_add_func("/tpm-bus/positive-control", test_positive_control);
	g_test_add_func("/tpm-bus/seal", test_seal);
	g_test_add_func("/tpm-bus/seal-pcr", test_seal_pcr);
	g_test_add_func("/tpm-bus/hmac", test_hmac);
	g_test_add_func("/tpm-bus/hmac-pcr", test_hmac_pcr);
	g_test_add_func("/tpm-bus/derive-small-context", test_derive_small);
	g_test_add_func("/tpm-bus/derive-large-context", test_derive_large);
	g_test_add_func("/tpm-bus/random", test_random);
	g_test_add_func("/tpm-bus/decrypt-fresh-key", test_decrypt_fresh_key);
	g_test_add_func("/tpm-bus/data-key", test_data_key);
	g_test_add_func("/tpm-bus/session-kept", test_session_kept);
	g_test_add_func("/tpm-bus/sign-hot", test_sign_hot);
	g_test_add_func("/tpm-bus/sign-copy-refused", test_sign_copy_refused);
	g_test_add_func("/tpm-bus/sign-reset", test_sign_reset);
	g_test_add_func("/tpm-bus/secrets-kept-session", test_secrets_kept_session);
	g_test_add_func("/tpm-bus/tpm-reset", test_tpm_reset);
	g_test_add_func("/tpm-bus/all-absent", test_all_absent);

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	g_ptr_array_unref(all_secrets);
	g_ptr_array_unref(all_names);
	/* tkmsd first: it holds the proxy's connection */
	tkms_test_env_free(env);
	tkms_test_tpm_proxy_free(proxy);
	g_free(record_path);
	return ret;
}
