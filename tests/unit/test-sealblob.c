/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-sealblob"

/* Seal blob framing (daemon/sealblob.c): what Seal returns and Unseal accepts. The owner and
 * the PCR set survive the round trip, every byte before the IV is associated data, and any
 * blob that is not exactly format 2 with consistent lengths is refused before the TPM sees it. */

#include <string.h>

#include "crypto.h"
#include "sealblob.h"

#define OWNER 1000
#define PCRS ((1u << 0) | (1u << 7) | (1u << 23))
#define BODY_LEN 40

static GBytes *
pattern(gsize len, guint8 seed)
{
	guint8 *data = g_malloc(len);

	for (gsize i = 0; i < len; i++)
		data[i] = (guint8)(seed + i * 7);
	return g_bytes_new_take(data, len);
}

/* A whole blob as tkmsd writes it: head, IV, data length, ciphertext, tag. head_len: the
 * length of the head (the associated data). */
static GBytes *
make_blob(guint32 owner, TkmsPcrMask pcrs, gsize public_len, gsize private_len,
	  guint32 body_len, gsize *head_len)
{
	g_autoptr(GBytes) pub = pattern(public_len, 1);
	g_autoptr(GBytes) priv = pattern(private_len, 2);
	TkmsTpmBlob obj = {pub, priv};
	GByteArray *a = tkms_seal_blob_write_head(owner, pcrs, &obj);
	g_autoptr(GBytes) iv = pattern(TKMS_GCM_IV_LEN, 3);
	g_autoptr(GBytes) body = pattern(body_len, 4);
	g_autoptr(GBytes) tag = pattern(TKMS_GCM_TAG_LEN, 5);
	guint32 be = GUINT32_TO_BE(body_len);

	if (head_len != NULL)
		*head_len = a->len;
	g_byte_array_append(a, g_bytes_get_data(iv, NULL), TKMS_GCM_IV_LEN);
	g_byte_array_append(a, (const guint8 *)&be, 4);
	g_byte_array_append(a, g_bytes_get_data(body, NULL), body_len);
	g_byte_array_append(a, g_bytes_get_data(tag, NULL), TKMS_GCM_TAG_LEN);
	return g_byte_array_free_to_bytes(a);
}

static gboolean
parses(const guint8 *data, gsize len)
{
	g_autoptr(GBytes) b = g_bytes_new(data, len);
	TkmsSealBlob blob;
	gboolean ok = tkms_seal_blob_parse(b, &blob);

	tkms_tpm_blob_clear(&blob.object);
	return ok;
}

static void
test_roundtrip(void)
{
	gsize head_len = 0;
	g_autoptr(GBytes) bytes = make_blob(OWNER, PCRS, 90, 130, BODY_LEN, &head_len);
	g_autoptr(GBytes) pub = pattern(90, 1);
	g_autoptr(GBytes) priv = pattern(130, 2);
	g_autoptr(GBytes) iv = pattern(TKMS_GCM_IV_LEN, 3);
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);
	TkmsSealBlob blob;

	g_assert_cmpuint(head_len, ==, 16 + 2 + 90 + 2 + 130);
	g_assert_cmpmem(data, 5, "TKSB\x02", 5);
	g_assert_true(tkms_seal_blob_parse(bytes, &blob));
	g_assert_cmpuint(blob.owner, ==, OWNER);
	g_assert_cmpuint(blob.pcrs, ==, PCRS);
	g_assert_true(g_bytes_equal(blob.object.public, pub));
	g_assert_true(g_bytes_equal(blob.object.private, priv));
	g_assert_true(blob.aad_prefix == data);
	g_assert_cmpuint(blob.aad_prefix_len, ==, head_len);
	g_assert_true(blob.iv == data + head_len);
	g_assert_true(blob.body == data + head_len + TKMS_GCM_IV_LEN + 4);
	g_assert_cmpuint(blob.body_len, ==, BODY_LEN);
	g_assert_true(blob.tag == data + len - TKMS_GCM_TAG_LEN);
	g_assert_cmpmem(blob.iv, TKMS_GCM_IV_LEN, g_bytes_get_data(iv, NULL), TKMS_GCM_IV_LEN);
	tkms_tpm_blob_clear(&blob.object);
}

/* Owners and PCR sets at their limits come back as written. */
static void
test_fields_preserved(void)
{
	static const guint32 owners[] = {0, 1, 65534, G_MAXUINT32};
	static const TkmsPcrMask masks[] = {0, 1, 1u << 23, (1u << TKMS_PCR_MAX) - 1};

	for (guint o = 0; o < G_N_ELEMENTS(owners); o++)
		for (guint m = 0; m < G_N_ELEMENTS(masks); m++) {
			g_autoptr(GBytes) bytes = make_blob(owners[o], masks[m], 1, 0, 1, NULL);
			TkmsSealBlob blob;

			g_assert_true(tkms_seal_blob_parse(bytes, &blob));
			g_assert_cmpuint(blob.owner, ==, owners[o]);
			g_assert_cmpuint(blob.pcrs, ==, masks[m]);
			g_assert_cmpuint(g_bytes_get_size(blob.object.private), ==, 0);
			tkms_tpm_blob_clear(&blob.object);
		}
}

/* Every cut and one extra byte are refused. */
static void
test_truncations(void)
{
	g_autoptr(GBytes) bytes = make_blob(OWNER, PCRS, 30, 20, BODY_LEN, NULL);
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);
	g_autofree guint8 *longer = g_malloc0(len + 1);

	for (gsize cut = 0; cut < len; cut++)
		g_assert_false(parses(data, cut));
	memcpy(longer, data, len);
	g_assert_false(parses(longer, len + 1));
	g_assert_true(parses(data, len));
}

static void
test_bad_fields(void)
{
	g_autoptr(GBytes) bytes = make_blob(OWNER, PCRS, 30, 20, BODY_LEN, NULL);
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);
	const gsize pub_len_at = 16, priv_len_at = 16 + 2 + 30;
	const gsize body_len_at = priv_len_at + 2 + 20 + TKMS_GCM_IV_LEN;

	/* magic, format (1 had no owner-bound auth; 3 does not exist yet), reserved */
	for (gsize i = 0; i < 8; i++) {
		g_autofree guint8 *copy = g_memdup2(data, len);
		copy[i] ^= 0x01;
		g_assert_false(parses(copy, len));
	}
	{
		g_autofree guint8 *copy = g_memdup2(data, len);
		copy[4] = 1;
		g_assert_false(parses(copy, len));
	}
	/* a PCR beyond 23 */
	{
		g_autofree guint8 *copy = g_memdup2(data, len);
		copy[12] |= 0x01; /* bit 24 */
		g_assert_false(parses(copy, len));
	}
	/* part lengths that do not match what follows */
	for (gint delta = -1; delta <= 1; delta += 2) {
		g_autofree guint8 *a = g_memdup2(data, len);
		g_autofree guint8 *b = g_memdup2(data, len);
		g_autofree guint8 *c = g_memdup2(data, len);

		a[pub_len_at + 1] = (guint8)(a[pub_len_at + 1] + delta);
		b[priv_len_at + 1] = (guint8)(b[priv_len_at + 1] + delta);
		c[body_len_at + 3] = (guint8)(c[body_len_at + 3] + delta);
		g_assert_false(parses(a, len));
		g_assert_false(parses(b, len));
		g_assert_false(parses(c, len));
	}
	{
		g_autofree guint8 *copy = g_memdup2(data, len);
		copy[pub_len_at] = copy[pub_len_at + 1] = 0xff;
		g_assert_false(parses(copy, len));
	}
	{
		g_autofree guint8 *copy = g_memdup2(data, len);
		copy[body_len_at] = 0xff;
		g_assert_false(parses(copy, len));
	}
}

/* Empty data is not a blob tkmsd writes. */
static void
test_empty_body(void)
{
	g_autoptr(GBytes) bytes = make_blob(OWNER, PCRS, 30, 20, 0, NULL);
	TkmsSealBlob blob;

	g_assert_false(tkms_seal_blob_parse(bytes, &blob));
	g_assert_null(blob.object.public);
	g_assert_null(blob.object.private);
}

/* The associated data is the label, its NUL and every byte before the IV: owner, PCRs and the
 * TPM object are all bound. */
static void
test_aad(void)
{
	gsize head_len = 0;
	g_autoptr(GBytes) bytes = make_blob(OWNER, PCRS, 30, 20, BODY_LEN, &head_len);
	const guint8 *data = g_bytes_get_data(bytes, NULL);
	g_autoptr(GBytes) aad = tkms_seal_blob_aad(data, head_len);
	g_autoptr(GByteArray) want = g_byte_array_new();

	g_byte_array_append(want, (const guint8 *)"tkms-seal-v1", 13);
	g_byte_array_append(want, data, head_len);
	g_assert_cmpmem(g_bytes_get_data(aad, NULL), g_bytes_get_size(aad), want->data,
			want->len);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/sealblob/roundtrip", test_roundtrip);
	g_test_add_func("/sealblob/fields-preserved", test_fields_preserved);
	g_test_add_func("/sealblob/truncations", test_truncations);
	g_test_add_func("/sealblob/bad-fields", test_bad_fields);
	g_test_add_func("/sealblob/empty-body", test_empty_body);
	g_test_add_func("/sealblob/aad", test_aad);
	return g_test_run();
}
