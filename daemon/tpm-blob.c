/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

#include "tpm.h"

#include <string.h>

void
tkms_tpm_blob_clear(TkmsTpmBlob *blob)
{
	g_clear_pointer(&blob->public, g_bytes_unref);
	g_clear_pointer(&blob->private, g_bytes_unref);
	g_clear_pointer(&blob->wrapped, g_bytes_unref);
}

void
tkms_tpm_blob_copy(TkmsTpmBlob *dst, const TkmsTpmBlob *src)
{
	dst->public = src->public ? g_bytes_ref(src->public) : NULL;
	dst->private = src->private ? g_bytes_ref(src->private) : NULL;
	dst->wrapped = src->wrapped ? g_bytes_ref(src->wrapped) : NULL;
}

void
tkms_tpm_key_id_set(TkmsTpmKeyId *id, guint32 owner, const gchar *name, guint32 version)
{
	memset(id, 0, sizeof(*id));
	id->owner = owner;
	g_strlcpy(id->name, name, sizeof(id->name));
	id->version = version;
}

gboolean
tkms_tpm_blob_is_bound(const TkmsTpmBlob *blob)
{
	gsize len = 0;
	const guint8 *p = blob->private ? g_bytes_get_data(blob->private, &len) : NULL;
	return len >= 4 && memcmp(p, TKMS_TPM_BOUND_MAGIC, 4) == 0;
}
