/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-keycache"

#include "keycache.h"

struct _TkmsKeyCache {
	guint ttl;
	GHashTable *entries; /* "owner/name/version" -> Entry */
};

typedef struct {
	TkmsSecret *secret;
	guint timeout;
	TkmsKeyCache *cache;
	gchar *id;
} Entry;

static void
entry_free(Entry *e)
{
	g_clear_handle_id(&e->timeout, g_source_remove);
	tkms_secret_unref(e->secret);
	g_free(e->id);
	g_free(e);
}

TkmsKeyCache *
tkms_key_cache_new(guint ttl_seconds)
{
	TkmsKeyCache *cache = g_new0(TkmsKeyCache, 1);
	cache->ttl = ttl_seconds;
	cache->entries =
		g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)entry_free);
	return cache;
}

void
tkms_key_cache_free(TkmsKeyCache *cache)
{
	if (cache == NULL)
		return;
	g_hash_table_unref(cache->entries);
	g_free(cache);
}

static gchar *
entry_id(guint32 owner, const gchar *name, guint32 version)
{
	return g_strdup_printf("%u/%s/%u", owner, name, version);
}

TkmsSecret *
tkms_key_cache_lookup(TkmsKeyCache *cache, guint32 owner, const gchar *name, guint32 version)
{
	g_autofree gchar *id = entry_id(owner, name, version);
	Entry *e = g_hash_table_lookup(cache->entries, id);
	return e ? tkms_secret_ref(e->secret) : NULL;
}

static gboolean
expire_cb(gpointer data)
{
	Entry *e = data;
	e->timeout = 0;
	g_hash_table_remove(e->cache->entries, e->id);
	return G_SOURCE_REMOVE;
}

void
tkms_key_cache_insert(TkmsKeyCache *cache, guint32 owner, const gchar *name, guint32 version,
		      TkmsSecret *secret)
{
	Entry *e;
	if (cache->ttl == 0)
		return;
	e = g_new0(Entry, 1);
	e->cache = cache;
	e->id = entry_id(owner, name, version);
	e->secret = tkms_secret_ref(secret);
	/* the TTL counts from unsealing, not from last use: material leaves memory on time */
	e->timeout = g_timeout_add_seconds(cache->ttl, expire_cb, e);
	g_hash_table_replace(cache->entries, e->id, e);
}

void
tkms_key_cache_remove_key(TkmsKeyCache *cache, guint32 owner, const gchar *name)
{
	g_autofree gchar *prefix = g_strdup_printf("%u/%s/", owner, name);
	GHashTableIter iter;
	gpointer key;

	g_hash_table_iter_init(&iter, cache->entries);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		if (g_str_has_prefix(key, prefix))
			g_hash_table_iter_remove(&iter);
}
