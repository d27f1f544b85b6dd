/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm-context.h"
#include "tpm-object-cache.h"
#include "tpm-sys-session.h"

G_BEGIN_DECLS

/* Loads (or creates, once per state directory) the key behind sealed blobs' auth values. */
gboolean tkms_tpm_ensure_seal_auth_key(TkmsTpmContext *ctx, GError **error);
/* Reads seal-auth.key into ctx; TRUE without a key only if it is absent and may be made. */
gboolean tkms_tpm_load_seal_auth_key(TkmsTpmContext *ctx, GError **error);
/* owner's auth value for sealed blobs, derived in the shared session (the result is a
 * credential and travels encrypted). */
gboolean tkms_tpm_seal_auth_value(TkmsTpmContext *ctx, guint32 owner, TPM2B_AUTH *auth,
				  GError **error);

/* The auth value of a bound key version's object (tpm.h), likewise; derived once and kept
 * (ctx->key_auth_cache). */
gboolean tkms_tpm_key_auth_value(TkmsTpmContext *ctx, const TkmsTpmKeyId *id, TPM2B_AUTH *auth,
				 GError **error);
/*
 * A key version's object for one request: loaded, or found loaded in the object cache
 * (tpm-object-cache.h), with the sessions that authorize a command on it (auth; secret: the
 * command or its answer carries a secret): for a bound blob its derived auth value, else the
 * empty one (tkms_tpm_object_auth). A PCR-bound object gets a fresh policy session for each
 * command, cached or not.
 */
struct _TkmsTpmKey {
	ESYS_TR obj;
	TkmsTpmAuth auth;
	/* a bound object without PCRs, for Sign, Unseal or HMAC: no ESYS session; the SYS
	 * session authorizes it (tkms_tpm_key_sign, _unseal, _hmac) */
	gboolean sys_session;
	TPM2B_AUTH sys_auth; /* its auth value then, for this request (wiped at release) */
	gboolean cached;  /* obj is the cache's: it stays loaded after the request */
	gboolean fresh;	  /* obj was loaded for this request, not found loaded */
	gboolean retried; /* loaded afresh once already */
	const TkmsTpmBlob *blob;
	const TkmsTpmKeyId *id;
	TkmsPcrMask pcrs;
	gboolean secret;
	guint8 object_id[TKMS_TPM_OBJECT_ID_SIZE];
};

/* The commands a request sends on the key: Sign (nothing secret travels), Unseal (the answer
 * is secret), HMAC (the message and the MAC), or others that carry a secret (HMAC_Start). */
typedef enum {
	TKMS_TPM_KEY_SIGN,
	TKMS_TPM_KEY_UNSEAL,
	TKMS_TPM_KEY_HMAC,
	TKMS_TPM_KEY_SECRET,
} TkmsTpmKeyUse;

/* blob and id must outlive key. On failure nothing of this request stays loaded; otherwise
 * tkms_tpm_key_release after the commands. */
gboolean tkms_tpm_key_load(TkmsTpmContext *ctx, const TkmsTpmBlob *blob, const TkmsTpmKeyId *id,
			   TkmsPcrMask pcrs, TkmsTpmKeyUse use, TkmsTpmKey *key, GError **error);
/* A command on key failed with rc: TRUE (once per request) if the object came from the cache
 * and the TPM or a resource manager refused: the entry is in doubt, so it has been flushed and
 * forgotten; tkms_tpm_key_reload loads it afresh, then send the command again. An object loaded
 * for this request whose command failed is not kept either (FALSE). */
gboolean tkms_tpm_key_stale(TkmsTpmContext *ctx, TkmsTpmKey *key, TSS2_RC rc);
gboolean tkms_tpm_key_reload(TkmsTpmContext *ctx, TkmsTpmKey *key, GError **error);
/* Flushes the sessions of the request, and the object unless the cache keeps it; its auth
 * value is wiped from ESYS's memory either way. */
void tkms_tpm_key_release(TkmsTpmContext *ctx, TkmsTpmKey *key);

G_END_DECLS
