/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

/* Key versions' objects kept loaded between requests: tpm-object-cache.h. */

#include "tpm-object-cache.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "tkms-config.h"
#include "tpm-object.h"

typedef struct {
	guint8 id[TKMS_TPM_OBJECT_ID_SIZE];
	TkmsTpmKeyId key_id;
	ESYS_TR handle;
} Entry;

struct _TkmsTpmObjectCache {
	GQueue lru;	   /* Entry, most recently used first */
	GQueue doomed;	   /* Entry: of a changed key, flushed before the next request */
	guint max_entries; /* [tpm] MaxLoadedObjects */
	guint limit;	   /* on this connection */
	GArray *forgotten; /* TkmsTpmChangedKey: requests made before must not keep its objects */
};

TkmsTpmObjectCache *
tkms_tpm_object_cache_new(guint max_entries)
{
	TkmsTpmObjectCache *cache = g_new0(TkmsTpmObjectCache, 1);

	g_queue_init(&cache->lru);
	g_queue_init(&cache->doomed);
	/* the lookup scans the entries: never more than the configuration allows */
	cache->max_entries = MIN(max_entries, TKMS_MAX_LOADED_OBJECTS);
	cache->forgotten = g_array_new(FALSE, FALSE, sizeof(TkmsTpmChangedKey));
	return cache;
}

void
tkms_tpm_object_cache_free(TkmsTpmObjectCache *cache)
{
	if (cache == NULL)
		return;
	tkms_tpm_object_cache_forget_all(cache);
	g_array_unref(cache->forgotten);
	g_free(cache);
}

void
tkms_tpm_object_cache_connected(TkmsTpmObjectCache *cache, guint free_slots)
{
	tkms_tpm_object_cache_forget_all(cache);
	cache->limit = free_slots > TKMS_TPM_OBJECT_CACHE_RESERVE
			       ? MIN(free_slots - TKMS_TPM_OBJECT_CACHE_RESERVE, cache->max_entries)
			       : 0;
	g_debug("object cache: keeps at most %u loaded objects (%u free transient slots, "
		"MaxLoadedObjects=%u)",
		cache->limit, free_slots, cache->max_entries);
}

void
tkms_tpm_object_cache_forget_all(TkmsTpmObjectCache *cache)
{
	Entry *e;

	if (cache == NULL)
		return;
	while ((e = g_queue_pop_head(&cache->lru)) != NULL)
		g_free(e);
	while ((e = g_queue_pop_head(&cache->doomed)) != NULL)
		g_free(e);
}

guint
tkms_tpm_object_cache_get_limit(TkmsTpmObjectCache *cache)
{
	return cache->limit;
}

/* Flushes an entry's object; its ESYS_TR is freed either way. */
static void
entry_flush(TkmsTpmContext *ctx, Entry *e)
{
	static const TPM2B_AUTH empty = {0};

	if (ctx->esys != NULL && e->handle != ESYS_TR_NONE) {
		/* its auth value does not outlive the object in ESYS's memory */
		Esys_TR_SetAuth(ctx->esys, e->handle, &empty);
		if (Esys_FlushContext(ctx->esys, e->handle) != TSS2_RC_SUCCESS)
			/* gone already (it was in doubt): only ESYS's record of it is left */
			Esys_TR_Close(ctx->esys, &e->handle);
	}
	g_debug("object cache: flushed %u/%s version %u", e->key_id.owner, e->key_id.name,
		e->key_id.version);
	g_free(e);
}

void
tkms_tpm_object_cache_flush_all(TkmsTpmContext *ctx)
{
	Entry *e;

	while ((e = g_queue_pop_head(&ctx->objects->lru)) != NULL)
		entry_flush(ctx, e);
	tkms_tpm_object_cache_flush_doomed(ctx);
}

void
tkms_tpm_object_cache_flush_doomed(TkmsTpmContext *ctx)
{
	Entry *e;

	while ((e = g_queue_pop_head(&ctx->objects->doomed)) != NULL)
		entry_flush(ctx, e);
}

void
tkms_tpm_object_id(const TkmsTpmBlob *blob, const TkmsTpmKeyId *key_id, TkmsPcrMask pcrs,
		   guint8 id[TKMS_TPM_OBJECT_ID_SIZE])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	guint8 head[4 + 4 + 4 + 1];
	guint32 be;
	guint8 name_len = (guint8)strlen(key_id->name);
	GBytes *parts[] = {blob->public, blob->private};
	unsigned int len = TKMS_TPM_OBJECT_ID_SIZE;

	be = GUINT32_TO_BE(key_id->owner);
	memcpy(head, &be, 4);
	be = GUINT32_TO_BE(key_id->version);
	memcpy(head + 4, &be, 4);
	be = GUINT32_TO_BE(pcrs);
	memcpy(head + 8, &be, 4);
	head[12] = name_len;
	/* without a digest there is no identity: an all-zero id matches nothing (lookup) */
	memset(id, 0, TKMS_TPM_OBJECT_ID_SIZE);
	if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, head, sizeof(head)) ||
	    !EVP_DigestUpdate(md, key_id->name, name_len))
		goto out;
	for (guint i = 0; i < G_N_ELEMENTS(parts); i++) {
		gsize n = 0;
		const guint8 *p = parts[i] != NULL ? g_bytes_get_data(parts[i], &n) : NULL;
		guint8 n_be[4];

		be = GUINT32_TO_BE((guint32)n);
		memcpy(n_be, &be, 4);
		if (!EVP_DigestUpdate(md, n_be, 4) || (n > 0 && !EVP_DigestUpdate(md, p, n)))
			goto out;
	}
	if (!EVP_DigestFinal_ex(md, id, &len))
		memset(id, 0, TKMS_TPM_OBJECT_ID_SIZE);
out:
	EVP_MD_CTX_free(md);
}

static gboolean
id_is_valid(const guint8 id[TKMS_TPM_OBJECT_ID_SIZE])
{
	for (guint i = 0; i < TKMS_TPM_OBJECT_ID_SIZE; i++)
		if (id[i] != 0)
			return TRUE;
	return FALSE;
}

ESYS_TR
tkms_tpm_object_cache_lookup(TkmsTpmContext *ctx, const guint8 id[TKMS_TPM_OBJECT_ID_SIZE])
{
	GQueue *lru = &ctx->objects->lru;

	if (!id_is_valid(id))
		return ESYS_TR_NONE;
	for (GList *l = lru->head; l != NULL; l = l->next) {
		Entry *e = l->data;

		if (CRYPTO_memcmp(e->id, id, TKMS_TPM_OBJECT_ID_SIZE) != 0)
			continue;
		g_queue_unlink(lru, l);
		g_queue_push_head_link(lru, l);
		return e->handle;
	}
	return ESYS_TR_NONE;
}

static gboolean
key_is_forgotten(TkmsTpmObjectCache *cache, const TkmsTpmKeyId *key_id, guint64 seq)
{
	for (guint i = 0; i < cache->forgotten->len; i++) {
		TkmsTpmChangedKey *f = &g_array_index(cache->forgotten, TkmsTpmChangedKey, i);

		if (f->seq > seq && f->owner == key_id->owner && strcmp(f->name, key_id->name) == 0)
			return TRUE;
	}
	return FALSE;
}

gboolean
tkms_tpm_object_cache_make_room(TkmsTpmContext *ctx, const TkmsTpmKeyId *key_id)
{
	TkmsTpmObjectCache *cache = ctx->objects;

	tkms_tpm_object_cache_flush_doomed(ctx);
	if (cache->limit == 0 || key_is_forgotten(cache, key_id, ctx->job_seq))
		return FALSE;
	while (cache->lru.length >= cache->limit)
		entry_flush(ctx, g_queue_pop_tail(&cache->lru));
	return TRUE;
}

gboolean
tkms_tpm_object_cache_add(TkmsTpmContext *ctx, const guint8 id[TKMS_TPM_OBJECT_ID_SIZE],
			  const TkmsTpmKeyId *key_id, ESYS_TR handle)
{
	Entry *e;

	/* the load in between may have lowered the bound (tkms_tpm_object_cache_relieve) */
	if (ctx->objects->lru.length >= ctx->objects->limit)
		return FALSE;
	e = g_new0(Entry, 1);
	memcpy(e->id, id, TKMS_TPM_OBJECT_ID_SIZE);
	e->key_id = *key_id;
	e->handle = handle;
	g_queue_push_head(&ctx->objects->lru, e);
	return TRUE;
}

void
tkms_tpm_object_cache_drop(TkmsTpmContext *ctx, ESYS_TR handle)
{
	GQueue *lru = &ctx->objects->lru;

	for (GList *l = lru->head; l != NULL; l = l->next) {
		Entry *e = l->data;

		if (e->handle != handle)
			continue;
		g_queue_delete_link(lru, l);
		g_debug("object cache: a command on %u/%s version %u failed; unloading it",
			e->key_id.owner, e->key_id.name, e->key_id.version);
		entry_flush(ctx, e);
		return;
	}
}

gboolean
tkms_tpm_object_cache_relieve(TkmsTpmContext *ctx, TSS2_RC rc)
{
	TkmsTpmObjectCache *cache = ctx->objects;
	guint loaded = cache->lru.length;

	if (tkms_tpm_rc_base(rc) != TPM2_RC_OBJECT_MEMORY || loaded == 0)
		return FALSE;
	/* the TPM has fewer slots than it said (another user of a TPM without resource manager,
	 * or a miscount): keep fewer from now on */
	tkms_tpm_object_cache_flush_all(ctx);
	cache->limit = MIN(cache->limit, loaded - 1);
	g_warning("the TPM ran out of object memory with %u objects kept loaded; keeping at most "
		  "%u from now on",
		  loaded, cache->limit);
	return TRUE;
}

void
tkms_tpm_object_cache_forget_key(TkmsTpmObjectCache *cache, const TkmsTpmChangedKey *key)
{
	GList *l = cache->lru.head;

	g_array_append_val(cache->forgotten, *key);
	while (l != NULL) {
		Entry *e = l->data;
		GList *next = l->next;

		if (e->key_id.owner == key->owner && strcmp(e->key_id.name, key->name) == 0) {
			g_queue_unlink(&cache->lru, l);
			g_queue_push_tail_link(&cache->doomed, l);
		}
		l = next;
	}
}

void
tkms_tpm_object_cache_prune(TkmsTpmObjectCache *cache, guint64 oldest_seq)
{
	for (guint i = cache->forgotten->len; i > 0; i--)
		if (g_array_index(cache->forgotten, TkmsTpmChangedKey, i - 1).seq <= oldest_seq)
			g_array_remove_index_fast(cache->forgotten, i - 1);
}
