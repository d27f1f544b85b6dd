/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-keystore"

/* A least-recently-used cache of keys: a hash table for lookup, a queue for the order. */

#include "keystore-cache.h"

struct _TkmsKeystoreCache {
	guint capacity;
	GHashTable *index; /* CacheId -> GList link in order */
	GQueue order;	   /* TkmsKey, most recently used first */
};

/* An entry's owner and name (the name is its key's); a lookup probes with one on the stack,
 * without formatting or allocating anything. */
typedef struct {
	guint32 owner;
	const gchar *name;
} CacheId;

static guint
cache_id_hash(gconstpointer p)
{
	const CacheId *id = p;
	return g_str_hash(id->name) * 31 + id->owner;
}

static gboolean
cache_id_equal(gconstpointer a, gconstpointer b)
{
	const CacheId *x = a, *y = b;
	return x->owner == y->owner && g_str_equal(x->name, y->name);
}

TkmsKeystoreCache *
tkms_keystore_cache_new(guint capacity)
{
	TkmsKeystoreCache *cache = g_new0(TkmsKeystoreCache, 1);
	cache->capacity = MAX(capacity, 1);
	cache->index = g_hash_table_new_full(cache_id_hash, cache_id_equal, g_free, NULL);
	g_queue_init(&cache->order);
	return cache;
}

void
tkms_keystore_cache_free(TkmsKeystoreCache *cache)
{
	if (cache == NULL)
		return;
	g_hash_table_unref(cache->index);
	g_queue_clear_full(&cache->order, (GDestroyNotify)tkms_key_unref);
	g_free(cache);
}

TkmsKey *
tkms_keystore_cache_lookup(TkmsKeystoreCache *cache, guint32 owner, const gchar *name)
{
	CacheId id = {owner, name};
	GList *link = g_hash_table_lookup(cache->index, &id);

	if (link == NULL)
		return NULL;
	g_queue_unlink(&cache->order, link);
	g_queue_push_head_link(&cache->order, link);
	return link->data;
}

void
tkms_keystore_cache_remove(TkmsKeystoreCache *cache, guint32 owner, const gchar *name)
{
	CacheId id = {owner, name};
	GList *link = g_hash_table_lookup(cache->index, &id);

	if (link == NULL)
		return;
	/* the entry's id points into its key: gone first */
	g_hash_table_remove(cache->index, &id);
	tkms_key_unref(link->data);
	g_queue_delete_link(&cache->order, link);
}

void
tkms_keystore_cache_insert(TkmsKeystoreCache *cache, TkmsKey *key)
{
	CacheId *id = g_new(CacheId, 1);

	tkms_keystore_cache_remove(cache, key->owner, key->name);
	while (cache->order.length >= cache->capacity) {
		TkmsKey *old = g_queue_peek_tail(&cache->order);
		tkms_keystore_cache_remove(cache, old->owner, old->name);
	}
	g_queue_push_head(&cache->order, tkms_key_ref(key));
	id->owner = key->owner;
	id->name = key->name;
	g_hash_table_insert(cache->index, id, g_queue_peek_head_link(&cache->order));
}

guint
tkms_keystore_cache_size(TkmsKeystoreCache *cache)
{
	return cache->order.length;
}
