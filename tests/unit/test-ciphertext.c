/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-ciphertext"

/* Ciphertext framing (daemon/ciphertext.c): what Encrypt returns and Decrypt accepts. A
 * ciphertext is refused unless its header is exactly format 1, and it opens only under the
 * owner, key name, version and context it was made for (the AEAD's associated data). */

#include <string.h>

#include "ciphertext.h"
#include "crypto.h"
#include "secret.h"

#define OWNER 1000
#define NAME "backup"
#define VERSION 7

static const guint8 key_bytes[TKMS_AES_KEY_LEN] = {
	1,  2,	3,  4,	5,  6,	7,  8,	9,  10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};
static const guint8 context[] = "db=prod";

/* A ciphertext as tkmsd frames it, sealed under (owner, name, VERSION, ctx). */
static GBytes *
seal(const gchar *plaintext, guint32 owner, const gchar *name, const guint8 *ctx, gsize ctx_len)
{
	gsize len = strlen(plaintext);
	g_autofree guint8 *out = g_malloc(TKMS_CT_OVERHEAD + len);
	g_autoptr(TkmsSecret) key = tkms_secret_new_from_data(key_bytes, sizeof(key_bytes), NULL);
	g_autoptr(GBytes) aad = NULL;
	guint8 *iv = out + TKMS_CT_HEADER_LEN;

	tkms_ciphertext_write_header(out, VERSION);
	g_assert_true(tkms_crypto_random(iv, TKMS_GCM_IV_LEN));
	aad = tkms_ciphertext_aad(out, owner, name, ctx, ctx_len);
	g_assert_true(tkms_crypto_gcm_encrypt(key, iv, g_bytes_get_data(aad, NULL),
					      g_bytes_get_size(aad), (const guint8 *)plaintext,
					      len, iv + TKMS_GCM_IV_LEN,
					      iv + TKMS_GCM_IV_LEN + len));
	return g_bytes_new_take(g_steal_pointer(&out), TKMS_CT_OVERHEAD + len);
}

/* Parses and decrypts as tkmsd does; NULL if refused. */
static gchar *
open_ct(const guint8 *data, gsize len, guint32 owner, const gchar *name, const guint8 *ctx,
	gsize ctx_len)
{
	g_autoptr(TkmsSecret) key = tkms_secret_new_from_data(key_bytes, sizeof(key_bytes), NULL);
	g_autoptr(GBytes) aad = NULL;
	g_autofree gchar *out = NULL;
	TkmsCiphertext ct;

	if (!tkms_ciphertext_parse(data, len, &ct))
		return NULL;
	out = g_malloc0(ct.body_len + 1);
	aad = tkms_ciphertext_aad(ct.header, owner, name, ctx, ctx_len);
	if (!tkms_crypto_gcm_decrypt(key, ct.iv, g_bytes_get_data(aad, NULL),
				     g_bytes_get_size(aad), ct.body, ct.body_len, ct.tag,
				     (guint8 *)out))
		return NULL;
	return g_steal_pointer(&out);
}

static void
test_header(void)
{
	static const guint8 want[TKMS_CT_HEADER_LEN] = {'T', 'K', 'M', 'S', 1, 1,
							0,   0,	  1,   2,   3, 4};
	guint8 header[TKMS_CT_HEADER_LEN];

	tkms_ciphertext_write_header(header, 0x01020304);
	g_assert_cmpmem(header, sizeof(header), want, sizeof(want));
}

static void
test_parse(void)
{
	g_autoptr(GBytes) ct_bytes = seal("hello", OWNER, NAME, context, sizeof(context));
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(ct_bytes, &len);
	TkmsCiphertext ct;

	g_assert_cmpuint(len, ==, TKMS_CT_OVERHEAD + 5);
	g_assert_true(tkms_ciphertext_parse(data, len, &ct));
	g_assert_cmpuint(ct.version, ==, VERSION);
	g_assert_true(ct.header == data);
	g_assert_true(ct.iv == data + TKMS_CT_HEADER_LEN);
	g_assert_true(ct.body == data + TKMS_CT_HEADER_LEN + TKMS_GCM_IV_LEN);
	g_assert_cmpuint(ct.body_len, ==, 5);
	g_assert_true(ct.tag == data + len - TKMS_GCM_TAG_LEN);
	{
		g_autofree gchar *pt =
			open_ct(data, len, OWNER, NAME, context, sizeof(context));
		g_assert_cmpstr(pt, ==, "hello");
	}
}

/* Up to the overhead (no body) the frame is refused; a longer cut parses (the tag is taken
 * from the end) but never opens. */
static void
test_truncations(void)
{
	g_autoptr(GBytes) ct_bytes = seal("a longer plaintext", OWNER, NAME, context,
					  sizeof(context));
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(ct_bytes, &len);

	for (gsize cut = 0; cut < len; cut++) {
		g_autofree guint8 *copy = g_memdup2(data, cut);
		g_autofree gchar *pt = NULL;
		TkmsCiphertext ct;

		if (cut <= TKMS_CT_OVERHEAD)
			g_assert_false(tkms_ciphertext_parse(copy, cut, &ct));
		pt = open_ct(copy, cut, OWNER, NAME, context, sizeof(context));
		g_assert_null(pt);
	}
}

/* Every header byte but the version is fixed: magic, format, algorithm, reserved. */
static void
test_bad_header(void)
{
	g_autoptr(GBytes) ct_bytes = seal("hello", OWNER, NAME, context, sizeof(context));
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(ct_bytes, &len);

	for (guint i = 0; i < 8; i++) {
		static const guint8 deltas[] = {0x01, 0x80, 0xff};
		for (guint d = 0; d < G_N_ELEMENTS(deltas); d++) {
			g_autofree guint8 *copy = g_memdup2(data, len);
			TkmsCiphertext ct;

			copy[i] ^= deltas[d];
			g_assert_false(tkms_ciphertext_parse(copy, len, &ct));
		}
	}
	{
		g_autofree guint8 *copy = g_memdup2(data, len);
		TkmsCiphertext ct;

		copy[4] = 2; /* a future format */
		g_assert_false(tkms_ciphertext_parse(copy, len, &ct));
		copy[4] = 1;
		copy[5] = 0; /* no such algorithm */
		g_assert_false(tkms_ciphertext_parse(copy, len, &ct));
	}
}

/* Another version number parses (it picks the key version) but the header is in the AAD. */
static void
test_version_bound(void)
{
	g_autoptr(GBytes) ct_bytes = seal("hello", OWNER, NAME, context, sizeof(context));
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(ct_bytes, &len);

	for (guint i = 8; i < TKMS_CT_HEADER_LEN; i++) {
		g_autofree guint8 *copy = g_memdup2(data, len);
		g_autofree gchar *pt = NULL;
		TkmsCiphertext ct;

		copy[i] ^= 0x01;
		g_assert_true(tkms_ciphertext_parse(copy, len, &ct));
		g_assert_cmpuint(ct.version, !=, VERSION);
		pt = open_ct(copy, len, OWNER, NAME, context, sizeof(context));
		g_assert_null(pt);
	}
}

/* Any flipped bit of IV, body or tag is caught. */
static void
test_tamper(void)
{
	g_autoptr(GBytes) ct_bytes = seal("hello", OWNER, NAME, context, sizeof(context));
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(ct_bytes, &len);

	for (gsize i = TKMS_CT_HEADER_LEN; i < len; i++) {
		g_autofree guint8 *copy = g_memdup2(data, len);
		g_autofree gchar *pt = NULL;

		copy[i] ^= 0x04;
		pt = open_ct(copy, len, OWNER, NAME, context, sizeof(context));
		g_assert_null(pt);
	}
}

/* The associated data binds the owner, the key name and the context. */
static void
test_aad_binds(void)
{
	static const guint8 other_ctx[] = "db=test";
	g_autoptr(GBytes) ct_bytes = seal("hello", OWNER, NAME, context, sizeof(context));
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(ct_bytes, &len);
	g_autofree gchar *ok = open_ct(data, len, OWNER, NAME, context, sizeof(context));

	g_assert_cmpstr(ok, ==, "hello");
	g_assert_null(open_ct(data, len, OWNER + 1, NAME, context, sizeof(context)));
	g_assert_null(open_ct(data, len, 0, NAME, context, sizeof(context)));
	g_assert_null(open_ct(data, len, OWNER, "backup2", context, sizeof(context)));
	g_assert_null(open_ct(data, len, OWNER, "Backup", context, sizeof(context)));
	g_assert_null(open_ct(data, len, OWNER, NAME, other_ctx, sizeof(other_ctx)));
	g_assert_null(open_ct(data, len, OWNER, NAME, context, sizeof(context) - 1));
	g_assert_null(open_ct(data, len, OWNER, NAME, NULL, 0));
	{
		/* no context at all is a context of its own */
		g_autoptr(GBytes) plain = seal("hello", OWNER, NAME, NULL, 0);
		const guint8 *p = g_bytes_get_data(plain, &len);
		g_autofree gchar *pt = open_ct(p, len, OWNER, NAME, NULL, 0);

		g_assert_cmpstr(pt, ==, "hello");
		g_assert_null(open_ct(p, len, OWNER, NAME, (const guint8 *)"", 1));
	}
}

/* The layout of the associated data, as ciphertext.h documents it: length-prefixed fields, so
 * moving bytes between name and context changes it. */
static void
test_aad_layout(void)
{
	guint8 header[TKMS_CT_HEADER_LEN];
	g_autoptr(GByteArray) want = g_byte_array_new();
	g_autoptr(GBytes) aad = NULL;
	g_autoptr(GBytes) ab_c = NULL;
	g_autoptr(GBytes) a_bc = NULL;
	static const guint8 owner_be[4] = {0, 0, 0x03, 0xe8};
	static const guint8 name_len = 6;
	static const guint8 ctx_len_be[4] = {0, 0, 0, 3};

	tkms_ciphertext_write_header(header, VERSION);
	g_byte_array_append(want, (const guint8 *)"tkms-aead-v1", 13); /* with the NUL */
	g_byte_array_append(want, header, sizeof(header));
	g_byte_array_append(want, owner_be, 4);
	g_byte_array_append(want, &name_len, 1);
	g_byte_array_append(want, (const guint8 *)NAME, 6);
	g_byte_array_append(want, ctx_len_be, 4);
	g_byte_array_append(want, (const guint8 *)"xyz", 3);
	aad = tkms_ciphertext_aad(header, OWNER, NAME, (const guint8 *)"xyz", 3);
	g_assert_cmpmem(g_bytes_get_data(aad, NULL), g_bytes_get_size(aad), want->data,
			want->len);

	ab_c = tkms_ciphertext_aad(header, OWNER, "ab", (const guint8 *)"c", 1);
	a_bc = tkms_ciphertext_aad(header, OWNER, "a", (const guint8 *)"bc", 2);
	g_assert_false(g_bytes_equal(ab_c, a_bc));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ciphertext/header", test_header);
	g_test_add_func("/ciphertext/parse", test_parse);
	g_test_add_func("/ciphertext/truncations", test_truncations);
	g_test_add_func("/ciphertext/bad-header", test_bad_header);
	g_test_add_func("/ciphertext/version-bound", test_version_bound);
	g_test_add_func("/ciphertext/tamper", test_tamper);
	g_test_add_func("/ciphertext/aad-binds", test_aad_binds);
	g_test_add_func("/ciphertext/aad-layout", test_aad_layout);
	return g_test_run();
}
