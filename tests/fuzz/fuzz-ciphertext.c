/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "fuzz"

/* Parsing of Encrypt's self-describing ciphertext: whatever the bytes, the parse either fails
 * or describes regions that lie inside the input and add up to it. */

#include "ciphertext.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	TkmsCiphertext ct;

	if (!tkms_ciphertext_parse(data, size, &ct))
		return 0;
	g_assert_true(ct.header == data);
	g_assert_true(ct.iv == data + TKMS_CT_HEADER_LEN);
	g_assert_true(ct.body == ct.iv + TKMS_GCM_IV_LEN);
	g_assert_true(ct.tag + TKMS_GCM_TAG_LEN == data + size);
	g_assert_cmpuint(ct.body_len + TKMS_CT_OVERHEAD, ==, size);
	return 0;
}
