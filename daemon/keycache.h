/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "secret.h"

G_BEGIN_DECLS

/* Unsealed key material, kept for a short TTL so that the hot path does not go to the TPM;
 * each entry is wiped when its TTL runs out, when its key is destroyed, or at exit. */
typedef struct _TkmsKeyCache TkmsKeyCache;

TkmsKeyCache *tkms_key_cache_new(guint ttl_seconds);
void tkms_key_cache_free(TkmsKeyCache *cache);
/* Returns a new reference or NULL. */
TkmsSecret *tkms_key_cache_lookup(TkmsKeyCache *cache, guint32 owner, const gchar *name,
				  guint32 version);
void tkms_key_cache_insert(TkmsKeyCache *cache, guint32 owner, const gchar *name,
			   guint32 version, TkmsSecret *secret);
void tkms_key_cache_remove_key(TkmsKeyCache *cache, guint32 owner, const gchar *name);

G_END_DECLS
