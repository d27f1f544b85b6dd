/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-crypto"

#include "sealblob.h"

#include <string.h>

#include "crypto.h"

#define MAGIC "TKSB"
/* 2: the sealed object's auth value is derived from the owner (format 1 had none) */
#define FORMAT 2

static void
put_u32(GByteArray *a, guint32 v)
{
	guint32 be = GUINT32_TO_BE(v);
	g_byte_array_append(a, (const guint8 *)&be, 4);
}

static void
put_part(GByteArray *a, GBytes *b)
{
	gsize len = g_bytes_get_size(b);
	guint16 be = GUINT16_TO_BE((guint16)len);
	g_byte_array_append(a, (const guint8 *)&be, 2);
	g_byte_array_append(a, g_bytes_get_data(b, NULL), len);
}

GByteArray *
tkms_seal_blob_write_head(guint32 owner, TkmsPcrMask pcrs, const TkmsTpmBlob *obj)
{
	GByteArray *a = g_byte_array_new();
	static const guint8 fmt[4] = {FORMAT, 0, 0, 0};
	g_byte_array_append(a, (const guint8 *)MAGIC, 4);
	g_byte_array_append(a, fmt, 4);
	put_u32(a, owner);
	put_u32(a, pcrs);
	put_part(a, obj->public);
	put_part(a, obj->private);
	return a;
}

typedef struct {
	const guint8 *p;
	gsize left;
} Reader;

static gboolean
take(Reader *r, gsize n, const guint8 **out)
{
	if (r->left < n)
		return FALSE;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return TRUE;
}

static gboolean
take_u32(Reader *r, guint32 *v)
{
	const guint8 *p;
	guint32 be;
	if (!take(r, 4, &p))
		return FALSE;
	memcpy(&be, p, 4);
	*v = GUINT32_FROM_BE(be);
	return TRUE;
}

static gboolean
take_part(Reader *r, GBytes **out)
{
	const guint8 *p;
	guint16 be;
	if (!take(r, 2, &p))
		return FALSE;
	memcpy(&be, p, 2);
	if (!take(r, GUINT16_FROM_BE(be), &p))
		return FALSE;
	*out = g_bytes_new(p, GUINT16_FROM_BE(be));
	return TRUE;
}

gboolean
tkms_seal_blob_parse(GBytes *data, TkmsSealBlob *blob)
{
	gsize len = 0;
	const guint8 *start = g_bytes_get_data(data, &len);
	Reader r = {start, len};
	const guint8 *p;
	guint32 body_len;

	memset(blob, 0, sizeof(*blob));
	if (!take(&r, 8, &p) || memcmp(p, MAGIC, 4) != 0 || p[4] != FORMAT || p[5] || p[6] ||
	    p[7] || !take_u32(&r, &blob->owner) || !take_u32(&r, &blob->pcrs) ||
	    blob->pcrs >= (1u << TKMS_PCR_MAX) || !take_part(&r, &blob->object.public) ||
	    !take_part(&r, &blob->object.private))
		goto bad;
	blob->aad_prefix = start;
	blob->aad_prefix_len = r.p - start;
	if (!take(&r, TKMS_GCM_IV_LEN, &blob->iv) || !take_u32(&r, &body_len) ||
	    !take(&r, body_len, &blob->body) || !take(&r, TKMS_GCM_TAG_LEN, &blob->tag) ||
	    r.left != 0 || body_len == 0)
		goto bad;
	blob->body_len = body_len;
	return TRUE;
bad:
	tkms_tpm_blob_clear(&blob->object);
	return FALSE;
}

GBytes *
tkms_seal_blob_aad(const guint8 *prefix, gsize len)
{
	GByteArray *a = g_byte_array_new();
	g_byte_array_append(a, (const guint8 *)TKMS_SEAL_AAD_LABEL, sizeof(TKMS_SEAL_AAD_LABEL));
	g_byte_array_append(a, prefix, len);
	return g_byte_array_free_to_bytes(a);
}
