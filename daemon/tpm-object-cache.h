/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm-context.h"

G_BEGIN_DECLS

/*
 * Key versions' objects kept loaded in the TPM between requests (DESIGN.md, "TPM usage"), so
 * that a hot key costs its command alone rather than Load, command and FlushContext.
 *
 * An entry is found by the identity of the stored blob: SHA-256 of the owner, key name,
 * version, PCR mask and both marshalled parts of the blob. A request can only reach an object
 * by presenting the very blob it was loaded from, for the same owner and key version: a new
 * version, another owner's copy or an edited blob never hits an old entry.
 *
 * Bound: at most the TPM's free transient slots at connection time (TPM_PT_HR_TRANSIENT_AVAIL,
 * read with the storage root key loaded; through the kernel's resource manager at most its 3
 * objects per connection less the SRK) less TKMS_TPM_OBJECT_CACHE_RESERVE, the slot that one
 * object in flight of a request needs besides (the daemon key deriving an auth value, an HMAC
 * sequence, a Seal blob, the scratch object of TPM2_Create); and at most [tpm]
 * MaxLoadedObjects. Sessions take no transient slot (the TPM counts them apart). The least
 * recently used entry is flushed first. A load that still meets TPM_RC_OBJECT_MEMORY flushes
 * every entry and lowers the bound (tkms_tpm_object_cache_relieve).
 *
 * Everything is forgotten when the connection goes (a lost or reset TPM: the ESYS context is
 * rebuilt, and the next connection flushes what is left), flushed at a clean stop, and a key's
 * entries are flushed when the key changes (tkms_tpm_forget_key). All of it runs on the TPM
 * worker thread.
 */

/* transient slots kept free for the object in flight of a request */
#define TKMS_TPM_OBJECT_CACHE_RESERVE 1
/* objects per connection of the kernel's resource manager (/dev/tpmrm*) */
#define TKMS_TPM_KERNEL_RM_OBJECTS 3
#define TKMS_TPM_OBJECT_ID_SIZE 32

TkmsTpmObjectCache *tkms_tpm_object_cache_new(guint max_entries);
/* Frees the entries without a TPM command (the connection is gone or going). */
void tkms_tpm_object_cache_free(TkmsTpmObjectCache *cache);

/* A new connection: the TPM reports free_slots free transient slots with the SRK loaded. */
void tkms_tpm_object_cache_connected(TkmsTpmObjectCache *cache, guint free_slots);
/* The connection is gone: every entry is forgotten without a TPM command. */
void tkms_tpm_object_cache_forget_all(TkmsTpmObjectCache *cache);
/* Flushes every entry (clean stop). */
void tkms_tpm_object_cache_flush_all(TkmsTpmContext *ctx);
/* Entries at most on this connection (0: nothing is kept). */
guint tkms_tpm_object_cache_get_limit(TkmsTpmObjectCache *cache);

/* The identity of a key version's stored blob. */
void tkms_tpm_object_id(const TkmsTpmBlob *blob, const TkmsTpmKeyId *key_id, TkmsPcrMask pcrs,
			guint8 id[TKMS_TPM_OBJECT_ID_SIZE]);
/* The loaded object of id (now the most recently used), or ESYS_TR_NONE. */
ESYS_TR tkms_tpm_object_cache_lookup(TkmsTpmContext *ctx, const guint8 id[TKMS_TPM_OBJECT_ID_SIZE]);
/* Before a load meant for the cache: whether it may be kept (the cache is on, and the key was
 * not changed after the current request was made); if so, least recently used entries are
 * flushed until there is room for it. */
gboolean tkms_tpm_object_cache_make_room(TkmsTpmContext *ctx, const TkmsTpmKeyId *key_id);
/* Keeps handle, loaded from the blob of id, as the most recently used entry; FALSE if there is
 * no room after all (the caller flushes it after use). */
gboolean tkms_tpm_object_cache_add(TkmsTpmContext *ctx, const guint8 id[TKMS_TPM_OBJECT_ID_SIZE],
				   const TkmsTpmKeyId *key_id, ESYS_TR handle);
/* The entry of handle is in doubt (a command on it failed): it is flushed and forgotten. */
void tkms_tpm_object_cache_drop(TkmsTpmContext *ctx, ESYS_TR handle);
/* rc came from a load: if it is TPM_RC_OBJECT_MEMORY and entries are loaded, they are flushed,
 * the bound is lowered, and TRUE says to load again. */
gboolean tkms_tpm_object_cache_relieve(TkmsTpmContext *ctx, TSS2_RC rc);

/* A key that changed (rotation, state change, destruction) before the request numbered seq
 * was made (tkms_tpm_forget_key). */
typedef struct {
	guint64 seq;
	guint32 owner;
	gchar name[TKMS_TPM_KEY_NAME_MAX + 1];
} TkmsTpmChangedKey;

/* Requests made before key->seq must not keep the key's objects (make_room), and its entries
 * are taken out, to be flushed by flush_doomed. No TPM command: callable under a lock. */
void tkms_tpm_object_cache_forget_key(TkmsTpmObjectCache *cache, const TkmsTpmChangedKey *key);
/* Flushes the entries forget_key took out. */
void tkms_tpm_object_cache_flush_doomed(TkmsTpmContext *ctx);
/* No request made before oldest_seq is left: what forget_key remembered for them goes. */
void tkms_tpm_object_cache_prune(TkmsTpmObjectCache *cache, guint64 oldest_seq);

G_END_DECLS
