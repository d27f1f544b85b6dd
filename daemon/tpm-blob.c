/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

#include "tpm.h"

void
tkms_tpm_blob_clear(TkmsTpmBlob *blob)
{
	g_clear_pointer(&blob->public, g_bytes_unref);
	g_clear_pointer(&blob->private, g_bytes_unref);
}

void
tkms_tpm_blob_copy(TkmsTpmBlob *dst, const TkmsTpmBlob *src)
{
	dst->public = src->public ? g_bytes_ref(src->public) : NULL;
	dst->private = src->private ? g_bytes_ref(src->private) : NULL;
}
