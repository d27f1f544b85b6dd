/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "fuzz"

/* What a caller's bytes reach in Decrypt and DecryptBatch: the ciphertext's framing, the
 * AEAD's associated data from owner, key name and context, and AES-256-GCM under a fixed key,
 * one-shot (Decrypt) and with one context reused from input to input (a batch reuses one per
 * key version, failed tags included). Whatever the bytes: the parse describes regions inside
 * the input; nothing opens but the genuine ciphertexts below (seeds made by make-seeds.py
 * under the same key), and those open to their plaintext; both forms agree; a plaintext buffer
 * is wiped when its tag fails.
 *
 * Input, integers big-endian: owner u32 | name length u8 | name | context length u16 |
 * context | ciphertext. A name tkmsd would never hold (empty, longer than TKMS_KEY_NAME_MAX,
 * with a NUL) is skipped. */

#include <openssl/evp.h>
#include <string.h>

#include "ciphertext.h"
#include "crypto.h"
#include "fuzz-fail.h"
#include "key.h"
#include "secret.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);
void tkms_fuzz_corpus_done(void);

/* AAD_LABEL in ciphertext.c, with its NUL */
#define AAD_LABEL_LEN 13

/* make-seeds.py: AES_KEY */
static const guint8 key_bytes[TKMS_AES_KEY_LEN] = {
	1,  2,	3,  4,	5,  6,	7,  8,	9,  10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

/* A ciphertext of the seed corpus made under key_bytes: its tag, and its plaintext's length
 * and SHA-256. */
typedef struct {
	guint8 tag[TKMS_GCM_TAG_LEN];
	gsize len;
	guint8 sha256[32];
} Genuine;

/* make-seeds.py prints this table with the seeds it writes */
static const Genuine genuine[] = {
	/* hello.bin: tag, length, SHA-256 */
	{
		{0x5f, 0x75, 0x48, 0x01, 0x29, 0xec, 0xe7, 0x22, 0x6a, 0x1a, 0xf9, 0xf7, 0xf0, 0xa1,
		 0x95, 0xe6},
		5,
		{
			0x2c, 0xf2, 0x4d, 0xba, 0x5f, 0xb0, 0xa3, 0x0e, 0x26, 0xe8, 0x3b,
			0x2a, 0xc5, 0xb9, 0xe2, 0x9e, 0x1b, 0x16, 0x1e, 0x5c, 0x1f, 0xa7,
			0x42, 0x5e, 0x73, 0x04, 0x33, 0x62, 0x93, 0x8b, 0x98, 0x24,
		},
	},
	/* one-byte.bin: tag, length, SHA-256 */
	{
		{0x38, 0x18, 0xf3, 0x09, 0xe9, 0x98, 0xd6, 0x2e, 0x79, 0xea, 0x1e, 0x53, 0xb4, 0x85,
		 0x5a, 0x03},
		1,
		{
			0x6e, 0x34, 0x0b, 0x9c, 0xff, 0xb3, 0x7a, 0x98, 0x9c, 0xa5, 0x44,
			0xe6, 0xbb, 0x78, 0x0a, 0x2c, 0x78, 0x90, 0x1d, 0x3f, 0xb3, 0x37,
			0x38, 0x76, 0x85, 0x11, 0xa3, 0x06, 0x17, 0xaf, 0xa0, 0x1d,
		},
	},
	/* long.bin: tag, length, SHA-256 */
	{
		{0x42, 0xab, 0xec, 0x95, 0x53, 0x30, 0x35, 0x23, 0x59, 0x2f, 0x04, 0x4e, 0xc7, 0x4a,
		 0xd8, 0xd6},
		1400,
		{
			0x63, 0x51, 0x66, 0xe8, 0x92, 0x21, 0xa5, 0x24, 0x38, 0x07, 0xa5,
			0x44, 0xb0, 0x96, 0x59, 0xe6, 0x53, 0xbd, 0x2c, 0x1d, 0x60, 0x5f,
			0xc6, 0x9a, 0xe1, 0x7d, 0xbc, 0x6a, 0x1a, 0xe0, 0x7d, 0x7f,
		},
	},
};

static TkmsSecret *key;
static TkmsGcm *batch;
static guint opened; /* bit i: genuine[i] opened */

static void
setup(void)
{
	if (key != NULL)
		return;
	g_assert_true(tkms_secret_init_heap(FALSE, NULL));
	key = tkms_secret_new_from_data(key_bytes, sizeof(key_bytes), NULL);
	g_assert_nonnull(key);
	batch = tkms_crypto_gcm_new(key, FALSE);
	g_assert_nonnull(batch);
}

static gboolean
is_wiped(const guint8 *p, gsize len)
{
	for (gsize i = 0; i < len; i++)
		if (p[i] != 0)
			return FALSE;
	return TRUE;
}

/* Opened: it must be one of the seeds, with its plaintext, and sealing that plaintext again
 * under the same IV and associated data must give back the input's body and tag. */
static void
check_genuine(const TkmsCiphertext *ct, const guint8 *aad, gsize aad_len, const guint8 *plain)
{
	g_autofree guint8 *again = g_malloc(ct->body_len);
	guint8 tag[TKMS_GCM_TAG_LEN];
	guint8 digest[32];
	guint i;

	for (i = 0; i < G_N_ELEMENTS(genuine); i++)
		if (memcmp(genuine[i].tag, ct->tag, TKMS_GCM_TAG_LEN) == 0)
			break;
	if (i == G_N_ELEMENTS(genuine))
		tkms_fuzz_fail("a ciphertext that is none of the seeds authenticated");
	g_assert_cmpuint(ct->body_len, ==, genuine[i].len);
	g_assert_true(EVP_Digest(plain, ct->body_len, digest, NULL, EVP_sha256(), NULL) == 1);
	g_assert_cmpmem(digest, sizeof(digest), genuine[i].sha256, sizeof(digest));
	g_assert_true(tkms_crypto_gcm_encrypt(key, ct->iv, aad, aad_len, plain, ct->body_len, again,
					      tag));
	g_assert_cmpmem(again, ct->body_len, ct->body, ct->body_len);
	g_assert_cmpmem(tag, sizeof(tag), ct->tag, sizeof(tag));
	opened |= 1u << i;
}

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	const guint8 *p = data, *context, *aad_data;
	gsize left = size, aad_len = 0, ctx_len, name_len;
	g_autofree gchar *name = NULL;
	g_autofree guint8 *one = NULL, *two = NULL;
	g_autoptr(GBytes) aad = NULL;
	TkmsCiphertext ct;
	gboolean ok_one, ok_two;
	guint32 owner;

	setup();
	if (left < 5)
		return 0;
	owner = (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
	name_len = p[4];
	p += 5;
	left -= 5;
	if (name_len == 0 || name_len > TKMS_KEY_NAME_MAX || left < name_len + 2 ||
	    memchr(p, 0, name_len) != NULL)
		return 0;
	name = g_strndup((const gchar *)p, name_len);
	ctx_len = (gsize)p[name_len] << 8 | p[name_len + 1];
	p += name_len + 2;
	left -= name_len + 2;
	if (left < ctx_len)
		return 0;
	context = p;
	p += ctx_len;
	left -= ctx_len;

	if (!tkms_ciphertext_parse(p, left, &ct))
		return 0;
	g_assert_true(ct.header == p);
	g_assert_true(ct.iv == p + TKMS_CT_HEADER_LEN);
	g_assert_true(ct.body == ct.iv + TKMS_GCM_IV_LEN);
	g_assert_true(ct.tag + TKMS_GCM_TAG_LEN == p + left);
	g_assert_cmpuint(ct.body_len + TKMS_CT_OVERHEAD, ==, left);

	aad = tkms_ciphertext_aad(ct.header, owner, name, context, ctx_len);
	aad_data = g_bytes_get_data(aad, &aad_len);
	g_assert_cmpuint(aad_len, ==,
			 AAD_LABEL_LEN + TKMS_CT_HEADER_LEN + 4 + 1 + name_len + 4 + ctx_len);

	/* what a refusal must overwrite */
	one = g_malloc(ct.body_len);
	two = g_malloc(ct.body_len);
	memset(one, 0xa5, ct.body_len);
	memset(two, 0xa5, ct.body_len);
	ok_one = tkms_crypto_gcm_decrypt(key, ct.iv, aad_data, aad_len, ct.body, ct.body_len,
					 ct.tag, one);
	ok_two = tkms_crypto_gcm_open(batch, ct.iv, aad_data, aad_len, ct.body, ct.body_len, ct.tag,
				      two);
	g_assert_cmpint(ok_one, ==, ok_two);
	if (!ok_one) {
		g_assert_true(is_wiped(one, ct.body_len));
		g_assert_true(is_wiped(two, ct.body_len));
		return 0;
	}
	g_assert_cmpmem(one, ct.body_len, two, ct.body_len);
	check_genuine(&ct, aad_data, aad_len, one);
	return 0;
}

/* The plain driver, after the seed corpus: every genuine ciphertext opened. */
void
tkms_fuzz_corpus_done(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(genuine); i++)
		if ((opened & (1u << i)) == 0)
			tkms_fuzz_fail("a genuine ciphertext of the seed corpus did not open");
}
