/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "fuzz"

/* Parsing of Seal's blob: it fails, or every region lies inside the input, the TPM parts are
 * copied out, and writing the head back gives the same bytes. */

#include <string.h>

#include "crypto.h"
#include "sealblob.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	g_autoptr(GBytes) bytes = g_bytes_new(data, size);
	const guint8 *start = g_bytes_get_data(bytes, NULL);
	TkmsSealBlob blob;

	if (!tkms_seal_blob_parse(bytes, &blob))
		return 0;
	g_assert_true(blob.aad_prefix == start);
	g_assert_true(blob.iv == start + blob.aad_prefix_len);
	g_assert_true(blob.tag + TKMS_GCM_TAG_LEN == start + size);
	g_assert_cmpuint(blob.aad_prefix_len + TKMS_GCM_IV_LEN + 4 + blob.body_len +
				 TKMS_GCM_TAG_LEN,
			 ==, size);
	{
		g_autoptr(GByteArray) head =
			tkms_seal_blob_write_head(blob.owner, blob.pcrs, &blob.object);
		g_assert_cmpuint(head->len, ==, blob.aad_prefix_len);
		g_assert_cmpint(memcmp(head->data, start, head->len), ==, 0);
	}
	tkms_tpm_blob_clear(&blob.object);
	return 0;
}
