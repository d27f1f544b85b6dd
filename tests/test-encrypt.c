/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-encrypt"

/* Encrypt / Decrypt with aes-256-gcm keys: round trips, the self-describing format, context
 * binding, tampering, limits and wrong inputs. */

#include <string.h>

#include "tkms-test-util.h"

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))

/* Format 1 (interfaces XML, daemon/ciphertext.h): "TKMS" | format u8 = 1 | algorithm u8 |
 * reserved u16 | key version u32 BE | IV (12) | ciphertext | tag (16). */
#define HEADER_LEN 12
#define IV_LEN 12
#define TAG_LEN 16
#define OVERHEAD (HEADER_LEN + IV_LEN + TAG_LEN)
#define MIB (1024 * 1024)

static gchar *aes_key;
static gchar *aes_key2;
static guint32 aes_key_version;

static GBytes *
encrypt_ok(const gchar *key, GBytes *pt, GBytes *ctx)
{
	g_autoptr(GError) error = NULL;
	GBytes *ct = tkms_client_encrypt_sync(CLIENT, key, pt, ctx, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(ct);
	return ct;
}

static GBytes *
decrypt_ok(const gchar *key, GBytes *ct, GBytes *ctx)
{
	g_autoptr(GError) error = NULL;
	GBytes *pt = tkms_client_decrypt_sync(CLIENT, key, ct, ctx, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(pt);
	return pt;
}

static void
check_format(GBytes *ct, gsize pt_len)
{
	gsize len;
	const guint8 *d = g_bytes_get_data(ct, &len);

	g_assert_cmpuint(len, ==, pt_len + OVERHEAD);
	g_assert_cmpmem(d, 4, "TKMS", 4);
	g_assert_cmpuint(d[4], ==, 1);
	g_assert_cmpuint(GUINT32_FROM_BE(*(const guint32 *)(d + 8)), ==, aes_key_version);
}

static void
test_roundtrip(gconstpointer data)
{
	gsize size = GPOINTER_TO_SIZE(data);
	g_autoptr(GBytes) pt = tkms_test_bytes_pattern(size, (guint32)size);
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("roundtrip context");
	g_autoptr(GBytes) ct = encrypt_ok(aes_key, pt, ctx);
	g_autoptr(GBytes) ct2 = encrypt_ok(aes_key, pt, ctx);
	g_autoptr(GBytes) back = decrypt_ok(aes_key, ct, ctx);
	g_autoptr(GBytes) back2 = decrypt_ok(aes_key, ct2, ctx);

	check_format(ct, size);
	check_format(ct2, size);
	tkms_assert_bytes_equal(back, pt);
	tkms_assert_bytes_equal(back2, pt);
	/* A fresh IV each time: same plaintext, different ciphertexts and IVs. */
	g_assert_false(g_bytes_equal(ct, ct2));
	g_assert_cmpint(memcmp((const guint8 *)g_bytes_get_data(ct, NULL) + HEADER_LEN,
			       (const guint8 *)g_bytes_get_data(ct2, NULL) + HEADER_LEN, IV_LEN),
			!=, 0);
	/* The plaintext does not appear in the ciphertext. */
	if (size >= 8)
		g_assert_false(tkms_test_bytes_contain(ct, g_bytes_get_data(pt, NULL), 8));
}

static void
test_empty_plaintext(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
	g_autoptr(GBytes) ct = tkms_client_encrypt_sync(CLIENT, aes_key, empty, NULL, NULL, &error);

	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_assert_null(ct);
}

static void
test_too_large(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) big = tkms_test_bytes_pattern(MIB + 1, 7);
	g_autoptr(GBytes) ct = tkms_client_encrypt_sync(CLIENT, aes_key, big, NULL, NULL, &error);

	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	g_assert_null(ct);
}

static void
test_context(void)
{
	g_autoptr(GBytes) pt = tkms_test_bytes_str("context-bound secret");
	g_autoptr(GBytes) ctx_a = tkms_test_bytes_str("ctx-A");
	g_autoptr(GBytes) ctx_b = tkms_test_bytes_str("ctx-B");
	g_autoptr(GBytes) ctx_a_longer = g_bytes_new("ctx-A", 6); /* with the NUL */
	g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
	g_autoptr(GBytes) ct = encrypt_ok(aes_key, pt, ctx_a);
	g_autoptr(GBytes) ct_empty = encrypt_ok(aes_key, pt, empty);
	g_autoptr(GBytes) back = decrypt_ok(aes_key, ct, ctx_a);
	g_autoptr(GBytes) back_empty = decrypt_ok(aes_key, ct_empty, NULL);
	GBytes *wrong[] = {ctx_b, empty, ctx_a_longer};

	tkms_assert_bytes_equal(back, pt);
	tkms_assert_bytes_equal(back_empty, pt);
	for (guint i = 0; i < G_N_ELEMENTS(wrong); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = tkms_client_decrypt_sync(CLIENT, aes_key, ct, wrong[i],
								 NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INTEGRITY_FAILURE);
		g_assert_null(out);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = tkms_client_decrypt_sync(CLIENT, aes_key, ct_empty, ctx_a,
								 NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INTEGRITY_FAILURE);
		g_assert_null(out);
	}
}

/* Every single-bit change of a ciphertext is refused. In the IV, body and tag it is an
 * IntegrityFailure; in the header it may instead be rejected as malformed or as naming
 * another version, but it is never accepted. */
static void
test_bitflips(void)
{
	g_autoptr(GBytes) pt = tkms_test_bytes_str("sixteen byte msg");
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("bitflip");
	g_autoptr(GBytes) ct = encrypt_ok(aes_key, pt, ctx);
	gsize n_bits = g_bytes_get_size(ct) * 8;

	check_format(ct, 16);
	for (gsize bit = 0; bit < n_bits; bit++) {
		g_autoptr(GBytes) bad = tkms_test_bytes_flip_bit(ct, bit);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out =
			tkms_client_decrypt_sync(CLIENT, aes_key, bad, ctx, NULL, &error);

		if (out != NULL || error == NULL || error->domain != TKMS_ERROR)
			g_test_message("bit %zu (byte %zu) was not refused properly", bit, bit / 8);
		g_assert_null(out);
		if (bit / 8 < HEADER_LEN)
			tkms_assert_error_one_of(error, TKMS_ERROR_INVALID_ARGUMENT,
						 TKMS_ERROR_NOT_FOUND, TKMS_ERROR_KEY_STATE,
						 TKMS_ERROR_INTEGRITY_FAILURE);
		else
			tkms_assert_error(error, TKMS_ERROR_INTEGRITY_FAILURE);
	}
	/* The original still opens. */
	{
		g_autoptr(GBytes) back = decrypt_ok(aes_key, ct, ctx);
		tkms_assert_bytes_equal(back, pt);
	}
}

static void
test_other_key(void)
{
	g_autoptr(GBytes) pt = tkms_test_bytes_str("for key one only");
	g_autoptr(GBytes) ct = encrypt_ok(aes_key, pt, NULL);
	g_autoptr(GBytes) ct2 = encrypt_ok(aes_key2, pt, NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) out = NULL;

	out = tkms_client_decrypt_sync(CLIENT, aes_key2, ct, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INTEGRITY_FAILURE);
	g_assert_null(out);
	g_clear_error(&error);
	out = tkms_client_decrypt_sync(CLIENT, aes_key, ct2, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INTEGRITY_FAILURE);
	g_assert_null(out);
}

static void
test_truncated(void)
{
	g_autoptr(GBytes) pt = tkms_test_bytes_str("truncate me, please");
	g_autoptr(GBytes) ct = encrypt_ok(aes_key, pt, NULL);
	gsize len = g_bytes_get_size(ct);
	/* Shorter than header + IV + tag: not a ciphertext at all. */
	gsize short_lens[] = {0, 1, 4, 5, HEADER_LEN, HEADER_LEN + IV_LEN, OVERHEAD - 1};
	/* Long enough to parse: the tag no longer matches (or the daemon rejects the shape). */
	gsize cut_lens[] = {OVERHEAD, OVERHEAD + 1, len - 1};

	for (guint i = 0; i < G_N_ELEMENTS(short_lens); i++) {
		g_autoptr(GBytes) bad = tkms_test_bytes_truncate(ct, short_lens[i]);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out =
			tkms_client_decrypt_sync(CLIENT, aes_key, bad, NULL, NULL, &error);
		g_test_message("truncated to %zu bytes", short_lens[i]);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(out);
	}
	for (guint i = 0; i < G_N_ELEMENTS(cut_lens); i++) {
		g_autoptr(GBytes) bad = tkms_test_bytes_truncate(ct, cut_lens[i]);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out =
			tkms_client_decrypt_sync(CLIENT, aes_key, bad, NULL, NULL, &error);
		g_test_message("truncated to %zu bytes", cut_lens[i]);
		tkms_assert_error_one_of(error, TKMS_ERROR_INVALID_ARGUMENT,
					 TKMS_ERROR_INTEGRITY_FAILURE);
		g_assert_null(out);
	}
	/* Appended bytes are tampering too. */
	{
		g_autoptr(GByteArray) longer = g_byte_array_new();
		g_autoptr(GBytes) bad = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = NULL;

		g_byte_array_append(longer, g_bytes_get_data(ct, NULL), (guint)len);
		g_byte_array_append(longer, (const guint8 *)"\0", 1);
		bad = g_byte_array_free_to_bytes(g_steal_pointer(&longer));
		out = tkms_client_decrypt_sync(CLIENT, aes_key, bad, NULL, NULL, &error);
		tkms_assert_error_one_of(error, TKMS_ERROR_INVALID_ARGUMENT,
					 TKMS_ERROR_INTEGRITY_FAILURE);
		g_assert_null(out);
	}
}

static void
test_garbage(void)
{
	g_autoptr(GBytes) random = tkms_test_bytes_pattern(100, 99);
	g_autoptr(GBytes) pt = tkms_test_bytes_str("garbage test");
	g_autoptr(GBytes) ct = encrypt_ok(aes_key, pt, NULL);
	g_autoptr(GBytes) bad_magic = tkms_test_bytes_xor_byte(ct, 3, 0x20);  /* TKMs */
	g_autoptr(GBytes) bad_format = tkms_test_bytes_xor_byte(ct, 4, 0x03); /* format 2 */
	g_autoptr(GBytes) bad_alg = tkms_test_bytes_xor_byte(ct, 5, 0x80);
	g_autoptr(GBytes) text = tkms_test_bytes_str(
		"this is not a ciphertext, only a sentence long enough to be parsed as one");
	GBytes *cases[] = {random, bad_magic, bad_format, bad_alg, text};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out =
			tkms_client_decrypt_sync(CLIENT, aes_key, cases[i], NULL, NULL, &error);
		g_test_message("garbage case %u", i);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(out);
	}
}

/* A ciphertext naming a key version that does not exist. */
static void
test_unknown_version(void)
{
	g_autoptr(GBytes) pt = tkms_test_bytes_str("version test");
	g_autoptr(GBytes) ct = encrypt_ok(aes_key, pt, NULL);
	g_autoptr(GBytes) v = tkms_test_bytes_xor_byte(ct, 10, 0x10); /* version + 4096 */
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) out = tkms_client_decrypt_sync(CLIENT, aes_key, v, NULL, NULL, &error);

	tkms_assert_error_one_of(error, TKMS_ERROR_INTEGRITY_FAILURE, TKMS_ERROR_NOT_FOUND,
				 TKMS_ERROR_INVALID_ARGUMENT, TKMS_ERROR_KEY_STATE);
	g_assert_null(out);
}

static void
test_wrong_key_type(void)
{
	g_autofree gchar *hmac = tkms_test_key_name("enc-hmac");
	g_autofree gchar *ec = tkms_test_key_name("enc-ec");
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, hmac, "hmac-sha256", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GBytes) pt = tkms_test_bytes_str("wrong type");
	g_autoptr(GBytes) ct = encrypt_ok(aes_key, pt, NULL);
	const gchar *keys[] = {hmac, ec};

	for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = NULL;

		out = tkms_client_encrypt_sync(CLIENT, keys[i], pt, NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(out);
		g_clear_error(&error);
		out = tkms_client_decrypt_sync(CLIENT, keys[i], ct, NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(out);
	}
}

/* Several calls in flight at once all come back right (crypto runs off the main thread). */
typedef struct {
	guint pending;
	GBytes *ct[8];
	GError *error[8];
} Parallel;

typedef struct {
	Parallel *p;
	guint i;
} ParallelItem;

static void
parallel_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	ParallelItem *item = user_data;
	item->p->ct[item->i] = tkms_client_encrypt_finish(TKMS_CLIENT(source), res,
							  &item->p->error[item->i]);
	item->p->pending--;
	g_free(item);
}

static void
test_parallel(void)
{
	Parallel p = {0};
	GBytes *pts[G_N_ELEMENTS(p.ct)];

	for (guint i = 0; i < G_N_ELEMENTS(p.ct); i++) {
		ParallelItem *item = g_new0(ParallelItem, 1);
		item->p = &p;
		item->i = i;
		pts[i] = tkms_test_bytes_pattern(1000 + i, i);
		p.pending++;
		tkms_client_encrypt(CLIENT, aes_key, pts[i], NULL, NULL, parallel_done, item);
	}
	while (p.pending > 0)
		g_main_context_iteration(NULL, TRUE);
	for (guint i = 0; i < G_N_ELEMENTS(p.ct); i++) {
		g_autoptr(GBytes) back = NULL;
		/* Busy is the documented answer to too many calls in flight. */
		if (p.error[i] != NULL &&
		    g_error_matches(p.error[i], TKMS_ERROR, TKMS_ERROR_BUSY)) {
			g_test_message("call %u: Busy", i);
			g_clear_error(&p.error[i]);
			g_bytes_unref(pts[i]);
			continue;
		}
		g_assert_no_error(p.error[i]);
		back = decrypt_ok(aes_key, p.ct[i], NULL);
		tkms_assert_bytes_equal(back, pts[i]);
		g_bytes_unref(p.ct[i]);
		g_bytes_unref(pts[i]);
	}
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_or_abort(NULL);
	aes_key = tkms_test_key_name("aes");
	aes_key2 = tkms_test_key_name("aes");
	{
		g_autoptr(GVariant) info =
			tkms_test_create_key(CLIENT, aes_key, "aes-256-gcm", NULL);
		g_autoptr(GVariant) info2 =
			tkms_test_create_key(CLIENT, aes_key2, "aes-256-gcm", NULL);
		g_assert_true(g_variant_lookup(info, "primary-version", "u", &aes_key_version));
	}

	g_test_add_data_func("/encrypt/roundtrip/1", GSIZE_TO_POINTER(1), test_roundtrip);
	g_test_add_data_func("/encrypt/roundtrip/65536", GSIZE_TO_POINTER(65536), test_roundtrip);
	g_test_add_data_func("/encrypt/roundtrip/1048576", GSIZE_TO_POINTER(MIB), test_roundtrip);
	g_test_add_func("/encrypt/empty-plaintext", test_empty_plaintext);
	g_test_add_func("/encrypt/too-large", test_too_large);
	g_test_add_func("/encrypt/context", test_context);
	g_test_add_func("/encrypt/bitflips", test_bitflips);
	g_test_add_func("/encrypt/other-key", test_other_key);
	g_test_add_func("/encrypt/truncated", test_truncated);
	g_test_add_func("/encrypt/garbage", test_garbage);
	g_test_add_func("/encrypt/unknown-version", test_unknown_version);
	g_test_add_func("/encrypt/wrong-key-type", test_wrong_key_type);
	g_test_add_func("/encrypt/parallel", test_parallel);

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	g_free(aes_key);
	g_free(aes_key2);
	return ret;
}
