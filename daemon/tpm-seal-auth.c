/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

#include "tpm-seal-auth.h"

#include <openssl/crypto.h>
#include <string.h>

#include "tkms-error.h"
#include "tpm-object-cache.h"
#include "tpm-object.h"

/*
 * Seal's blobs leave the daemon, so their sealed object must not open for whoever holds a copy
 * and can reach the TPM directly: its auth value is HMAC(K, "tkms-seal-auth-v1" 0 uid), K an
 * HMAC key in the TPM whose blob (seal-auth.key) stays in the root-only state directory.
 * Key versions' objects are bound the same way to owner, name and version (tpm.h), so that a
 * copy of a key's row is not enough either.
 */
#define SEAL_AUTH_LABEL "tkms-seal-auth-v1"
/* key versions' objects (tpm.h): label 0 | owner u32 | name length u8 | name | version u32 */
#define KEY_AUTH_LABEL "tkms-key-auth-v1"
#define SEAL_AUTH_MAGIC "TKSA"

static gboolean
write_seal_auth_key(TkmsTpmContext *ctx, GError **error)
{
	g_autoptr(GByteArray) a = g_byte_array_new();
	GBytes *parts[] = {ctx->seal_auth_key.public, ctx->seal_auth_key.private};

	g_byte_array_append(a, (const guint8 *)SEAL_AUTH_MAGIC, 4);
	for (guint i = 0; i < G_N_ELEMENTS(parts); i++) {
		guint16 be = GUINT16_TO_BE((guint16)g_bytes_get_size(parts[i]));
		g_byte_array_append(a, (const guint8 *)&be, 2);
		g_byte_array_append(a, g_bytes_get_data(parts[i], NULL), g_bytes_get_size(parts[i]));
	}
	return g_file_set_contents_full(ctx->seal_auth_path, (const gchar *)a->data, a->len,
					G_FILE_SET_CONTENTS_CONSISTENT |
						G_FILE_SET_CONTENTS_DURABLE,
					0600, error);
}

static gboolean
read_seal_auth_key(TkmsTpmContext *ctx, const guint8 *p, gsize len)
{
	GBytes *parts[2] = {NULL, NULL};
	gsize off = 4;

	if (len < 4 || memcmp(p, SEAL_AUTH_MAGIC, 4) != 0)
		return FALSE;
	for (guint i = 0; i < 2; i++) {
		guint16 be;
		if (len - off < 2)
			goto bad;
		memcpy(&be, p + off, 2);
		off += 2;
		if (len - off < GUINT16_FROM_BE(be))
			goto bad;
		parts[i] = g_bytes_new(p + off, GUINT16_FROM_BE(be));
		off += GUINT16_FROM_BE(be);
	}
	if (off != len)
		goto bad;
	ctx->seal_auth_key.public = parts[0];
	ctx->seal_auth_key.private = parts[1];
	return TRUE;
bad:
	g_clear_pointer(&parts[0], g_bytes_unref);
	g_clear_pointer(&parts[1], g_bytes_unref);
	return FALSE;
}

gboolean
tkms_tpm_load_seal_auth_key(TkmsTpmContext *ctx, GError **error)
{
	g_autofree gchar *contents = NULL;
	g_autoptr(GError) local = NULL;
	gsize len = 0;

	if (!g_file_get_contents(ctx->seal_auth_path, &contents, &len, &local)) {
		if (ctx->may_create_seal_auth &&
		    g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "Cannot read %s (%s); it is never recreated, since sealed blobs and "
			    "bound keys cannot be opened without it: restore it from a backup",
			    ctx->seal_auth_path, local->message);
		return FALSE;
	}
	if (read_seal_auth_key(ctx, (const guint8 *)contents, len))
		return TRUE;
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
		    "%s is damaged (%" G_GSIZE_FORMAT " bytes, not a tkms seal-auth key); sealed "
		    "blobs cannot be opened without it: restore it from a backup",
		    ctx->seal_auth_path, len);
	return FALSE;
}

gboolean
tkms_tpm_ensure_seal_auth_key(TkmsTpmContext *ctx, GError **error)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl;

	if (ctx->seal_auth_key.public != NULL)
		return TRUE;
	/* made only where the state directory was new and it was absent; else it was read at
	 * the start, or its loss is an error, never a silently different key */
	if (!ctx->may_create_seal_auth || g_file_test(ctx->seal_auth_path, G_FILE_TEST_EXISTS)) {
		if (!tkms_tpm_load_seal_auth_key(ctx, error))
			return FALSE;
		if (ctx->seal_auth_key.public != NULL)
			return TRUE;
	}
	/* the TPM generates the key: nothing secret goes in */
	tkms_tpm_fill_template(TKMS_TPM_OBJECT_HMAC, &tmpl);
	if (!tkms_tpm_create_object(ctx, ESYS_TR_PASSWORD, &sens, &tmpl, FALSE,
				    &ctx->seal_auth_key, error))
		return FALSE;
	if (!write_seal_auth_key(ctx, error)) {
		tkms_tpm_blob_clear(&ctx->seal_auth_key);
		return FALSE;
	}
	ctx->may_create_seal_auth = FALSE;
	return TRUE;
}

/* HMAC(K, msg) into auth, in the shared session (the result is a credential and travels
 * encrypted). */
static gboolean
derive_auth(TkmsTpmContext *ctx, const TPM2B_MAX_BUFFER *msg, TPM2B_AUTH *auth, GError **error)
{
	ESYS_TR obj = ESYS_TR_NONE, session = ESYS_TR_NONE;
	g_autofree TPM2B_DIGEST *mac = NULL;
	TSS2_RC rc;

	if (!tkms_tpm_ensure_seal_auth_key(ctx, error) || !tkms_tpm_session(ctx, &session, error) ||
	    !tkms_tpm_load_object(ctx, &ctx->seal_auth_key, FALSE, &obj, error))
		return FALSE;
	/* the key's auth value is empty: the shared session authorizes it and encrypts */
	tkms_tpm_set_session_crypt(ctx, session, TRUE, TRUE);
	rc = Esys_HMAC(ctx->esys, obj, session, ESYS_TR_NONE, ESYS_TR_NONE, msg, TPM2_ALG_SHA256,
		       &mac);
	tkms_tpm_flush(ctx, &obj);
	if (!tkms_tpm_check(rc, "deriving the blob's auth value", error))
		return FALSE;
	auth->size = mac->size;
	memcpy(auth->buffer, mac->buffer, mac->size);
	OPENSSL_cleanse(mac->buffer, mac->size);
	return TRUE;
}

gboolean
tkms_tpm_seal_auth_value(TkmsTpmContext *ctx, guint32 owner, TPM2B_AUTH *auth, GError **error)
{
	TPM2B_MAX_BUFFER msg = {0};
	guint32 be = GUINT32_TO_BE(owner);

	memcpy(msg.buffer, SEAL_AUTH_LABEL, sizeof(SEAL_AUTH_LABEL));
	memcpy(msg.buffer + sizeof(SEAL_AUTH_LABEL), &be, 4);
	msg.size = sizeof(SEAL_AUTH_LABEL) + 4;
	return derive_auth(ctx, &msg, auth, error);
}

static gboolean key_auth_cached(TkmsTpmContext *ctx, const TkmsTpmKeyId *id, TPM2B_AUTH *auth);
static void key_auth_cache_add(TkmsTpmContext *ctx, const TkmsTpmKeyId *id, const TPM2B_AUTH *auth);

gboolean
tkms_tpm_key_auth_value(TkmsTpmContext *ctx, const TkmsTpmKeyId *id, TPM2B_AUTH *auth,
			GError **error)
{
	TPM2B_MAX_BUFFER msg = {0};
	guint32 be_owner = GUINT32_TO_BE(id->owner);
	guint32 be_version = GUINT32_TO_BE(id->version);
	guint8 name_len = (guint8)strlen(id->name);
	gsize off = 0;

	g_return_val_if_fail(name_len > 0 && id->version > 0, FALSE);
	/* kept from CreateKey or RotateKey on: a version's first use derives nothing */
	if (key_auth_cached(ctx, id, auth))
		return TRUE;
	memcpy(msg.buffer, KEY_AUTH_LABEL, sizeof(KEY_AUTH_LABEL));
	off = sizeof(KEY_AUTH_LABEL);
	memcpy(msg.buffer + off, &be_owner, 4);
	off += 4;
	msg.buffer[off++] = name_len;
	memcpy(msg.buffer + off, id->name, name_len);
	off += name_len;
	memcpy(msg.buffer + off, &be_version, 4);
	msg.size = off + 4;
	if (!derive_auth(ctx, &msg, auth, error))
		return FALSE;
	key_auth_cache_add(ctx, id, auth);
	return TRUE;
}

/* Entries of ctx->key_auth_cache; past this many it starts again (32 bytes of secure heap
 * each). */
#define KEY_AUTH_CACHE_MAX 1024

static gchar *
key_auth_cache_key(const TkmsTpmKeyId *id)
{
	return g_strdup_printf("%u/%u/%s", id->owner, id->version, id->name);
}

static gboolean
key_auth_cached(TkmsTpmContext *ctx, const TkmsTpmKeyId *id, TPM2B_AUTH *auth)
{
	g_autofree gchar *k = key_auth_cache_key(id);
	TkmsSecret *v = ctx->key_auth_cache ? g_hash_table_lookup(ctx->key_auth_cache, k) : NULL;

	if (v == NULL)
		return FALSE;
	auth->size = tkms_secret_get_len(v);
	memcpy(auth->buffer, tkms_secret_get_data(v), auth->size);
	return TRUE;
}

static void
key_auth_cache_add(TkmsTpmContext *ctx, const TkmsTpmKeyId *id, const TPM2B_AUTH *auth)
{
	/* with the secure heap full, the value is derived again next time */
	TkmsSecret *value = tkms_secret_new_from_data(auth->buffer, auth->size, NULL);

	if (value == NULL)
		return;
	if (ctx->key_auth_cache == NULL)
		ctx->key_auth_cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
							    (GDestroyNotify)tkms_secret_unref);
	if (g_hash_table_size(ctx->key_auth_cache) >= KEY_AUTH_CACHE_MAX)
		g_hash_table_remove_all(ctx->key_auth_cache);
	g_hash_table_insert(ctx->key_auth_cache, key_auth_cache_key(id), value);
}

/* The sessions of the next command on key->obj. */
static gboolean
key_sessions(TkmsTpmContext *ctx, TkmsTpmKey *key, GError **error)
{
	TkmsTpmAuth *a = &key->auth;

	if (!tkms_tpm_blob_is_bound(key->blob))
		return tkms_tpm_object_auth(ctx, key->pcrs, key->secret, a, error);
	/* the auth value is proven without sending it: a policy session with PolicyAuthValue for
	 * a PCR-bound object (the shared session beside it when a secret travels); Sign, Unseal
	 * and HMAC in the SYS session (tpm-sys-session.h), which needs nothing of ESYS; else the
	 * shared session (its HMACs are keyed with this object's auth value, and it encrypts) */
	if (key->pcrs != 0)
		return tkms_tpm_start_pcr_session(ctx, key->pcrs, FALSE, TRUE, &a->auth, error) &&
		       (!key->secret || tkms_tpm_session(ctx, &a->crypt, error));
	if (key->sys_session)
		return TRUE;
	return tkms_tpm_session(ctx, &a->auth, error);
}

static gboolean
key_open(TkmsTpmContext *ctx, TkmsTpmKey *key, GError **error)
{
	TPM2B_AUTH auth = {0};
	gboolean bound = tkms_tpm_blob_is_bound(key->blob);
	gboolean ok = TRUE;

	key->auth = (TkmsTpmAuth)TKMS_TPM_AUTH_INIT;
	/* derived before the object is looked up or loaded: the daemon key then takes the slot
	 * kept free beside the cache, and a load of it that relieves the cache cannot flush the
	 * object found */
	if (bound && !tkms_tpm_key_auth_value(ctx, key->id, &auth, error))
		return FALSE;
	key->obj = tkms_tpm_object_cache_lookup(ctx, key->object_id);
	key->cached = key->obj != ESYS_TR_NONE;
	key->fresh = !key->cached;
	if (key->fresh) {
		gboolean keep = tkms_tpm_object_cache_make_room(ctx, key->id);

		ok = tkms_tpm_load_object(ctx, key->blob, FALSE, &key->obj, error);
		key->cached = ok && keep &&
			      tkms_tpm_object_cache_add(ctx, key->object_id, key->id, key->obj);
	}
	/* set for this request only (tkms_tpm_key_release wipes it) */
	if (ok && key->sys_session)
		key->sys_auth = auth;
	else if (ok && bound)
		Esys_TR_SetAuth(ctx->esys, key->obj, &auth);
	OPENSSL_cleanse(&auth, sizeof(auth));
	ok = ok && key_sessions(ctx, key, error);
	if (!ok)
		tkms_tpm_key_release(ctx, key);
	return ok;
}

gboolean
tkms_tpm_key_load(TkmsTpmContext *ctx, const TkmsTpmBlob *blob, const TkmsTpmKeyId *id,
		  TkmsPcrMask pcrs, TkmsTpmKeyUse use, TkmsTpmKey *key, GError **error)
{
	memset(key, 0, sizeof(*key));
	key->obj = ESYS_TR_NONE;
	key->blob = blob;
	key->id = id;
	key->pcrs = pcrs;
	key->secret = use != TKMS_TPM_KEY_SIGN;
	key->sys_session =
		use != TKMS_TPM_KEY_SECRET && pcrs == 0 && tkms_tpm_blob_is_bound(blob);
	tkms_tpm_object_id(blob, id, pcrs, key->object_id);
	return key_open(ctx, key, error);
}

/* The cache's object of key is in doubt: flushed and forgotten, with the request's sessions. */
static void
key_drop_cached(TkmsTpmContext *ctx, TkmsTpmKey *key)
{
	tkms_tpm_auth_clear(ctx, &key->auth);
	tkms_tpm_object_cache_drop(ctx, key->obj);
	key->obj = ESYS_TR_NONE;
	key->cached = FALSE;
}

gboolean
tkms_tpm_key_stale(TkmsTpmContext *ctx, TkmsTpmKey *key, TSS2_RC rc)
{
	TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;

	if (rc == TSS2_RC_SUCCESS || !key->cached)
		return FALSE;
	if (key->fresh || key->retried) {
		/* it never served a command: nothing vouches for it (a copied blob whose auth
		 * value does not match, a PCR policy no longer met), so it is not kept */
		key_drop_cached(ctx, key);
		return FALSE;
	}
	/* the connection's own failures are the worker's (it rebuilds it, forgetting the cache);
	 * a refusal that names no object (lockout, policy) would only come again */
	if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_RC_LAYER &&
	    layer != TSS2_RESMGR_TPM_RC_LAYER)
		return FALSE;
	switch (tkms_tpm_rc_base(rc)) {
	case TPM2_RC_LOCKOUT:
	case TPM2_RC_POLICY_FAIL:
	case TPM2_RC_PCR_CHANGED:
	case TPM2_RC_POLICY:
		return FALSE;
	default:
		break;
	}
	key->retried = TRUE;
	key_drop_cached(ctx, key);
	return TRUE;
}

gboolean
tkms_tpm_key_reload(TkmsTpmContext *ctx, TkmsTpmKey *key, GError **error)
{
	return key_open(ctx, key, error);
}

void
tkms_tpm_key_release(TkmsTpmContext *ctx, TkmsTpmKey *key)
{
	static const TPM2B_AUTH empty = {0};

	tkms_tpm_auth_clear(ctx, &key->auth);
	OPENSSL_cleanse(&key->sys_auth, sizeof(key->sys_auth));
	if (key->obj == ESYS_TR_NONE)
		return;
	if (ctx->esys != NULL && tkms_tpm_blob_is_bound(key->blob))
		Esys_TR_SetAuth(ctx->esys, key->obj, &empty);
	if (key->cached)
		key->obj = ESYS_TR_NONE;
	else
		tkms_tpm_flush(ctx, &key->obj);
}
