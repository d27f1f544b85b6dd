/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-crypto"

#include "ciphertext.h"

#include <string.h>

#define MAGIC "TKMS"
#define FORMAT 1
#define ALG_AES_256_GCM 1
#define AAD_LABEL "tkms-aead-v1"

void
tkms_ciphertext_write_header(guint8 *out, guint32 version)
{
	guint32 be = GUINT32_TO_BE(version);
	memcpy(out, MAGIC, 4);
	out[4] = FORMAT;
	out[5] = ALG_AES_256_GCM;
	out[6] = out[7] = 0;
	memcpy(out + 8, &be, 4);
}

gboolean
tkms_ciphertext_parse(const guint8 *data, gsize len, TkmsCiphertext *ct)
{
	guint32 be;
	if (len <= TKMS_CT_OVERHEAD || memcmp(data, MAGIC, 4) != 0 || data[4] != FORMAT ||
	    data[5] != ALG_AES_256_GCM || data[6] != 0 || data[7] != 0)
		return FALSE;
	memcpy(&be, data + 8, 4);
	ct->version = GUINT32_FROM_BE(be);
	ct->header = data;
	ct->iv = data + TKMS_CT_HEADER_LEN;
	ct->body = ct->iv + TKMS_GCM_IV_LEN;
	ct->body_len = len - TKMS_CT_OVERHEAD;
	ct->tag = ct->body + ct->body_len;
	return TRUE;
}

GBytes *
tkms_ciphertext_aad(const guint8 *header, guint32 owner, const gchar *name,
		    const guint8 *context, gsize context_len)
{
	GByteArray *aad = g_byte_array_new();
	guint32 be_owner = GUINT32_TO_BE(owner);
	guint32 be_ctx = GUINT32_TO_BE((guint32)context_len);
	guint8 name_len = (guint8)strlen(name);

	g_byte_array_append(aad, (const guint8 *)AAD_LABEL, sizeof(AAD_LABEL)); /* with NUL */
	g_byte_array_append(aad, header, TKMS_CT_HEADER_LEN);
	g_byte_array_append(aad, (const guint8 *)&be_owner, 4);
	g_byte_array_append(aad, &name_len, 1);
	g_byte_array_append(aad, (const guint8 *)name, name_len);
	g_byte_array_append(aad, (const guint8 *)&be_ctx, 4);
	if (context_len > 0)
		g_byte_array_append(aad, context, context_len);
	return g_byte_array_free_to_bytes(aad);
}
