/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "key.h"

G_BEGIN_DECLS

/* The most recently used keys, so that a hot key is not read from the file at every call.
 * Holds a reference to each; the least recently used goes when it is full. */
typedef struct _TkmsKeystoreCache TkmsKeystoreCache;

TkmsKeystoreCache *tkms_keystore_cache_new(guint capacity);
void tkms_keystore_cache_free(TkmsKeystoreCache *cache);
/* The cached key (borrowed), now the most recently used; NULL if not cached. */
TkmsKey *tkms_keystore_cache_lookup(TkmsKeystoreCache *cache, guint32 owner, const gchar *name);
/* Adds key (takes a reference), replacing the entry of the same owner and name. */
void tkms_keystore_cache_insert(TkmsKeystoreCache *cache, TkmsKey *key);
void tkms_keystore_cache_remove(TkmsKeystoreCache *cache, guint32 owner, const gchar *name);
guint tkms_keystore_cache_size(TkmsKeystoreCache *cache);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsKeystoreCache, tkms_keystore_cache_free)

G_END_DECLS
