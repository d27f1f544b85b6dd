/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

/* The TPM commands behind each request. All of this runs on the TPM worker thread. A key
 * version's object may stay loaded between requests in the object cache (tpm-object-cache.h,
 * bounded by the TPM's free slots); anything else is loaded, used and flushed within one
 * request (or one piece of it): transient slots are scarce. Every command that carries a
 * secret, or whose answer does, runs with the shared session encrypting it (tpm-context.h,
 * TkmsTpmAuth). */

#include "tpm-private.h"

#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <string.h>

#include "crypto.h"
#include "tkms-error.h"
#include "tpm-drbg.h"
#include "tpm-object-cache.h"
#include "tpm-object.h"
#include "tpm-seal-auth.h"

/* ---- create ---- */

static gboolean
create_func(TkmsTpmContext *ctx, gpointer data, GError **error)
{
	TkmsTpmCreate *req = data;
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl;
	ESYS_TR session = ESYS_TR_PASSWORD;
	guint8 sens_copy[TPM2_MAX_SYM_DATA / 2] = {0};
	gboolean ok;
	TSS2_RC rc;

	g_return_val_if_fail(!(req->owner_auth && req->bind), FALSE);
	tkms_tpm_fill_template(req->kind, &tmpl);
	/* the material from the RNG and the auth value travel into Create in the shared session;
	 * the TPM generates other keys itself: nothing secret goes in, the password is enough */
	if ((req->kind == TKMS_TPM_OBJECT_SEALED || req->owner_auth || req->bind) &&
	    !tkms_tpm_session(ctx, &session, error))
		return FALSE;
	if (req->kind == TKMS_TPM_OBJECT_SEALED) {
		g_return_val_if_fail(req->seal_size <= TPM2_MAX_SYM_DATA / 2, FALSE);
		if (!tkms_tpm_get_random(ctx, session, sens.sensitive.data.buffer, req->seal_size,
					 error))
			goto out_fail;
		sens.sensitive.data.size = req->seal_size;
		memcpy(sens_copy, sens.sensitive.data.buffer, req->seal_size);
	}
	if (req->owner_auth &&
	    !tkms_tpm_seal_auth_value(ctx, req->owner, &sens.sensitive.userAuth, error))
		goto out_fail;
	if (req->bind &&
	    !tkms_tpm_key_auth_value(ctx, &req->key_id, &sens.sensitive.userAuth, error))
		goto out_fail;
	if (req->pcrs != 0) {
		g_autofree TPM2B_DIGEST *digest = NULL;
		ESYS_TR trial = ESYS_TR_NONE;
		if (!tkms_tpm_start_pcr_session(ctx, req->pcrs, TRUE,
						req->owner_auth || req->bind, &trial, error))
			goto out_fail;
		rc = Esys_PolicyGetDigest(ctx->esys, trial, ESYS_TR_NONE, ESYS_TR_NONE,
					  ESYS_TR_NONE, &digest);
		tkms_tpm_flush(ctx, &trial);
		if (!tkms_tpm_check(rc, "computing the PCR policy", error))
			goto out_fail;
		tmpl.publicArea.authPolicy = *digest;
		/* only the policy may authorize use, never the auth value alone */
		tmpl.publicArea.objectAttributes &= ~TPMA_OBJECT_USERWITHAUTH;
	}
	ok = tkms_tpm_create_object(ctx, session, &sens, &tmpl, req->bind, &req->out, error);
	OPENSSL_cleanse(&sens, sizeof(sens));
	if (ok && req->want_material &&
	    (req->material = tkms_secret_new_from_data(sens_copy, req->seal_size, error)) == NULL)
		ok = FALSE;
	OPENSSL_cleanse(sens_copy, sizeof(sens_copy));
	return ok;
out_fail:
	OPENSSL_cleanse(&sens, sizeof(sens));
	OPENSSL_cleanse(sens_copy, sizeof(sens_copy));
	return FALSE;
}

void
tkms_tpm_create(TkmsTpm *self, guint32 uid, TkmsTpmCreate *req, GCancellable *cancellable,
		GAsyncReadyCallback callback, gpointer user_data)
{
	tkms_tpm_submit(self, uid, create_func, req, cancellable, callback, user_data);
}

/* ---- unseal ---- */

/* A Seal blob's object: its auth value is derived from the owner (tpm-seal-auth.c). */
static gboolean
load_sealed_blob(TkmsTpmContext *ctx, TkmsTpmUnseal *req, ESYS_TR *obj, TkmsTpmAuth *a,
		 GError **error)
{
	TPM2B_AUTH auth = {0};
	gboolean ok;

	*a = (TkmsTpmAuth)TKMS_TPM_AUTH_INIT;
	/* derived before the blob is loaded: the derivation loads the daemon's key into the slot
	 * kept free beside the object cache, which the blob's object takes after it (the other
	 * way round, one object too many is loaded and the cache shrinks for good) */
	if (!tkms_tpm_seal_auth_value(ctx, req->owner, &auth, error))
		return FALSE;
	ok = tkms_tpm_load_object(ctx, &req->blob, req->untrusted_blob, obj, error);
	if (ok)
		Esys_TR_SetAuth(ctx->esys, *obj, &auth);
	OPENSSL_cleanse(&auth, sizeof(auth));
	if (!ok)
		return FALSE;
	/* PCR-bound: the policy session asserts PolicyAuthValue as well, the shared session
	 * encrypts beside it; otherwise the shared session proves the auth value and encrypts */
	if (ok && req->pcrs != 0)
		ok = tkms_tpm_start_pcr_session(ctx, req->pcrs, FALSE, TRUE, &a->auth, error) &&
		     tkms_tpm_session(ctx, &a->crypt, error);
	else if (ok)
		ok = tkms_tpm_session(ctx, &a->auth, error);
	if (!ok) {
		tkms_tpm_auth_clear(ctx, a);
		tkms_tpm_flush(ctx, obj);
	}
	return ok;
}

static gboolean
unseal_func(TkmsTpmContext *ctx, gpointer data, GError **error)
{
	TkmsTpmUnseal *req = data;
	g_autofree TPM2B_SENSITIVE_DATA *out = NULL;
	TSS2_RC rc;

	if (req->owner_auth) {
		/* a Seal blob came from the caller: loaded for this request only */
		ESYS_TR obj = ESYS_TR_NONE;
		TkmsTpmAuth a;

		if (!load_sealed_blob(ctx, req, &obj, &a, error))
			return FALSE;
		/* encrypted response: the data never crosses the TPM bus in the clear */
		tkms_tpm_auth_crypt(ctx, &a, FALSE, TRUE);
		rc = Esys_Unseal(ctx->esys, obj, a.auth, a.crypt, ESYS_TR_NONE, &out);
		tkms_tpm_auth_clear(ctx, &a);
		tkms_tpm_flush(ctx, &obj);
	} else {
		/* a key version's sealed material: its object may stay loaded */
		TkmsTpmKey key;

		if (!tkms_tpm_key_load(ctx, &req->blob, &req->key_id, req->pcrs,
				       TKMS_TPM_KEY_UNSEAL, &key, error))
			return FALSE;
		for (;;) {
			/* encrypted response: the key material never crosses the TPM bus in the
			 * clear */
			rc = tkms_tpm_key_unseal(ctx, &key, &out);
			if (!tkms_tpm_key_stale(ctx, &key, rc))
				break;
			if (!tkms_tpm_key_reload(ctx, &key, error))
				return FALSE;
		}
		tkms_tpm_key_release(ctx, &key);
	}
	if (req->untrusted_blob && (tkms_tpm_rc_base(rc) == TPM2_RC_AUTH_FAIL ||
				    tkms_tpm_rc_base(rc) == TPM2_RC_BAD_AUTH)) {
		/* the object is noDA, so this moved no lockout counter */
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE,
				    "The sealed blob does not belong to its stated owner: it was "
				    "changed after sealing");
		return FALSE;
	}
	if (!tkms_tpm_check(rc, "unsealing", error))
		return FALSE;
	req->out = tkms_secret_new_from_data(out->buffer, out->size, error);
	OPENSSL_cleanse(out->buffer, out->size);
	return req->out != NULL;
}

void
tkms_tpm_unseal(TkmsTpm *self, guint32 uid, TkmsTpmUnseal *req, GCancellable *cancellable,
		GAsyncReadyCallback callback, gpointer user_data)
{
	tkms_tpm_submit(self, uid, unseal_func, req, cancellable, callback, user_data);
}

/* ---- sign (Verify needs no TPM: tkms_crypto_verify) ---- */

static void
sha256(GBytes *data, TPM2B_DIGEST *digest)
{
	gsize len = 0;
	const guint8 *p = data ? g_bytes_get_data(data, &len) : NULL;
	unsigned int md_len = 32;
	EVP_Digest(p != NULL ? p : (const guint8 *)"", len, digest->buffer, &md_len, EVP_sha256(),
		   NULL);
	digest->size = md_len;
}

/* The digest to sign or verify: the caller's own (SignDigest) or the message's. */
static void
request_digest(const TkmsTpmSign *req, TPM2B_DIGEST *digest)
{
	if (req->prehashed) {
		g_assert(g_bytes_get_size(req->data) == 32);
		digest->size = 32;
		memcpy(digest->buffer, g_bytes_get_data(req->data, NULL), 32);
	} else {
		sha256(req->data, digest);
	}
}

static GBytes *
ecdsa_to_der(const TPMS_SIGNATURE_ECC *ecc)
{
	return tkms_crypto_ecdsa_der(ecc->signatureR.buffer, ecc->signatureR.size,
				     ecc->signatureS.buffer, ecc->signatureS.size);
}

static gboolean
sign_func(TkmsTpmContext *ctx, gpointer data, GError **error)
{
	TkmsTpmSign *req = data;
	TkmsTpmKey key;
	TPM2B_DIGEST digest;
	g_autofree TPMT_SIGNATURE *sig = NULL;
	TSS2_RC rc;

	request_digest(req, &digest);
	/* a digest in, a signature out: nothing secret crosses the TPM bus (a bound key's auth
	 * value is proven by an HMAC session, never sent) */
	if (!tkms_tpm_key_load(ctx, &req->blob, &req->key_id, req->pcrs, TKMS_TPM_KEY_SIGN, &key,
			       error))
		return FALSE;
	for (;;) {
		rc = tkms_tpm_key_sign(ctx, &key, &digest, &sig);
		if (!tkms_tpm_key_stale(ctx, &key, rc))
			break;
		if (!tkms_tpm_key_reload(ctx, &key, error))
			return FALSE;
	}
	tkms_tpm_key_release(ctx, &key);
	if (!tkms_tpm_check(rc, "signing", error))
		return FALSE;
	if (sig->sigAlg == TPM2_ALG_ECDSA)
		req->signature = ecdsa_to_der(&sig->signature.ecdsa);
	else
		req->signature = g_bytes_new(sig->signature.rsassa.sig.buffer,
					     sig->signature.rsassa.sig.size);
	return req->signature != NULL;
}

void
tkms_tpm_sign(TkmsTpm *self, guint32 uid, TkmsTpmSign *req, GCancellable *cancellable,
	      GAsyncReadyCallback callback, gpointer user_data)
{
	tkms_tpm_submit(self, uid, sign_func, req, cancellable, callback, user_data);
}

/* ---- hmac ---- */

/*
 * A message of up to 1 KiB is one TPM2_HMAC. A longer one is an HMAC sequence fed 1 KiB per
 * SequenceUpdate, which would hold the TPM worker for the whole message (1 MiB: 1,024
 * commands). While other uids wait for the worker it runs in pieces of about
 * HMAC_PIECE_BUDGET_US (at least one update each), and between them the sequence is saved
 * (ContextSave, FlushContext) so that it holds no slot while their requests take their turns;
 * nobody waiting, a piece runs on for up to HMAC_PIECE_MAX_US (each piece is one attempt
 * under the watchdog's [tpm] CommandTimeout). The key's own authorization
 * (tkms_tpm_key_load) starts the sequence; the sequence's auth value is fresh random, sent
 * encrypted, and the shared session authorizes every later command on it and encrypts the
 * data and the MAC.
 */
#define HMAC_PIECE_BUDGET_US 10000
#define HMAC_PIECE_MAX_US 1000000

typedef struct {
	TPMS_CONTEXT *saved; /* the sequence between pieces */
	TPM2B_AUTH auth;     /* the sequence's auth value */
	gsize fed;	     /* bytes of the message sent so far */
} HmacSequence;

static void
hmac_sequence_free(gpointer data)
{
	HmacSequence *seq = data;

	Esys_Free(seq->saved);
	OPENSSL_cleanse(&seq->auth, sizeof(seq->auth));
	g_free(seq);
}

static gboolean
hmac_done(TkmsTpmHmac *req, TPM2B_DIGEST *mac, GError **error)
{
	req->out = tkms_secret_new_from_data(mac->buffer, mac->size, error);
	OPENSSL_cleanse(mac->buffer, mac->size);
	return req->out != NULL;
}

static gboolean
hmac_once(TkmsTpmContext *ctx, TkmsTpmHmac *req, const guint8 *p, gsize len, GError **error)
{
	TkmsTpmKey key;
	g_autofree TPM2B_DIGEST *mac = NULL;
	TPM2B_MAX_BUFFER buf = {.size = len};
	TSS2_RC rc;

	/* the message may be secret, and a MAC used for DeriveKey is key material */
	if (!tkms_tpm_key_load(ctx, &req->blob, &req->key_id, req->pcrs, TKMS_TPM_KEY_HMAC, &key,
			       error))
		return FALSE;
	if (len > 0)
		memcpy(buf.buffer, p, len);
	for (;;) {
		/* encrypted both ways */
		rc = tkms_tpm_key_hmac(ctx, &key, &buf, &mac);
		if (!tkms_tpm_key_stale(ctx, &key, rc))
			break;
		if (!tkms_tpm_key_reload(ctx, &key, error)) {
			OPENSSL_cleanse(&buf, sizeof(buf));
			return FALSE;
		}
	}
	OPENSSL_cleanse(&buf, sizeof(buf));
	tkms_tpm_key_release(ctx, &key);
	return tkms_tpm_check(rc, "computing an HMAC", error) && hmac_done(req, mac, error);
}

/* HMAC_Start on the key: the sequence is loaded on return; the key stays loaded only if the
 * object cache keeps it (its slot is the one kept free beside the cache). */
static gboolean
hmac_sequence_start(TkmsTpmContext *ctx, TkmsTpmHmac *req, HmacSequence *seq, ESYS_TR *handle,
		    GError **error)
{
	TkmsTpmKey key;
	TSS2_RC rc;

	seq->auth.size = 32;
	if (!tkms_crypto_random_private(seq->auth.buffer, seq->auth.size)) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "No random bytes for an HMAC sequence; see the daemon log");
		return FALSE;
	}
	if (!tkms_tpm_key_load(ctx, &req->blob, &req->key_id, req->pcrs, TKMS_TPM_KEY_SECRET, &key,
			       error))
		return FALSE;
	for (;;) {
		/* the sequence's auth value goes in encrypted; the answer carries only a handle */
		tkms_tpm_auth_crypt(ctx, &key.auth, TRUE, FALSE);
		rc = Esys_HMAC_Start(ctx->esys, key.obj, key.auth.auth, key.auth.crypt,
				     ESYS_TR_NONE, &seq->auth, TPM2_ALG_SHA256, handle);
		if (!tkms_tpm_key_stale(ctx, &key, rc))
			break;
		if (!tkms_tpm_key_reload(ctx, &key, error))
			return FALSE;
	}
	tkms_tpm_key_release(ctx, &key);
	if (!tkms_tpm_check(rc, "starting an HMAC sequence", error))
		return FALSE;
	Esys_TR_SetAuth(ctx->esys, *handle, &seq->auth);
	return TRUE;
}

static gboolean
hmac_piece(TkmsTpmContext *ctx, gpointer data, gpointer *state, gboolean *more, GError **error)
{
	TkmsTpmHmac *req = data;
	HmacSequence *seq = *state;
	ESYS_TR handle = ESYS_TR_NONE, session = ESYS_TR_NONE;
	gsize len = 0;
	const guint8 *p = req->data ? g_bytes_get_data(req->data, &len) : NULL;
	g_autofree TPM2B_DIGEST *mac = NULL;
	g_autofree TPMT_TK_HASHCHECK *ticket = NULL;
	TPM2B_MAX_BUFFER buf;
	gint64 t0;
	gboolean ok;
	TSS2_RC rc;

	*more = FALSE;
	if (seq == NULL && len <= TPM2_MAX_DIGEST_BUFFER)
		return hmac_once(ctx, req, p, len, error);
	if (seq == NULL) {
		seq = g_new0(HmacSequence, 1);
		ok = hmac_sequence_start(ctx, req, seq, &handle, error);
	} else {
		*state = NULL;
		rc = Esys_ContextLoad(ctx->esys, seq->saved, &handle);
		ok = tkms_tpm_check(rc, "resuming an HMAC sequence", error);
		g_clear_pointer(&seq->saved, Esys_Free);
		if (ok)
			Esys_TR_SetAuth(ctx->esys, handle, &seq->auth);
	}
	ok = ok && tkms_tpm_session(ctx, &session, error);
	t0 = g_get_monotonic_time();
	while (ok && len - seq->fed > TPM2_MAX_DIGEST_BUFFER) {
		gint64 spent = g_get_monotonic_time() - t0;
		if (spent >= HMAC_PIECE_MAX_US ||
		    (spent >= HMAC_PIECE_BUDGET_US && g_atomic_int_get(&ctx->waiting) > 0))
			break;
		buf.size = TPM2_MAX_DIGEST_BUFFER;
		memcpy(buf.buffer, p + seq->fed, buf.size);
		seq->fed += buf.size;
		tkms_tpm_set_session_crypt(ctx, session, TRUE, FALSE);
		rc = Esys_SequenceUpdate(ctx->esys, handle, session, ESYS_TR_NONE, ESYS_TR_NONE,
					 &buf);
		ok = tkms_tpm_check(rc, "feeding an HMAC sequence", error);
	}
	OPENSSL_cleanse(&buf, sizeof(buf));
	if (ok && len - seq->fed > TPM2_MAX_DIGEST_BUFFER) {
		/* more to come on this uid's next turn: nothing of it stays loaded meanwhile */
		rc = Esys_ContextSave(ctx->esys, handle, &seq->saved);
		ok = tkms_tpm_check(rc, "pausing an HMAC sequence", error);
		if (ok) {
			tkms_tpm_flush(ctx, &handle);
			*state = seq;
			*more = TRUE;
			return TRUE;
		}
	} else if (ok) {
		buf.size = len - seq->fed;
		memcpy(buf.buffer, p + seq->fed, buf.size);
		tkms_tpm_set_session_crypt(ctx, session, TRUE, TRUE);
		rc = Esys_SequenceComplete(ctx->esys, handle, session, ESYS_TR_NONE, ESYS_TR_NONE,
					   &buf, ESYS_TR_RH_NULL, &mac, &ticket);
		ok = tkms_tpm_check(rc, "completing an HMAC sequence", error);
		if (ok)
			handle = ESYS_TR_NONE; /* the TPM flushed it */
	}
	OPENSSL_cleanse(&buf, sizeof(buf));
	tkms_tpm_flush(ctx, &handle);
	hmac_sequence_free(seq);
	return ok && hmac_done(req, mac, error);
}

void
tkms_tpm_hmac(TkmsTpm *self, guint32 uid, TkmsTpmHmac *req, GCancellable *cancellable,
	      GAsyncReadyCallback callback, gpointer user_data)
{
	tkms_tpm_submit_pieces(self, uid, hmac_piece, hmac_sequence_free, req, cancellable,
			       callback, user_data);
}

/* ---- random ---- */

static gboolean
random_func(TkmsTpmContext *ctx, gpointer data, GError **error)
{
	TkmsTpmRandom *req = data;
	guint8 *buf;

	req->out = tkms_secret_bytes_new(req->length, &buf); /* wiped when freed */
	if (!tkms_tpm_drbg_generate(ctx, buf, req->length, error)) {
		g_clear_pointer(&req->out, g_bytes_unref);
		return FALSE;
	}
	return TRUE;
}

void
tkms_tpm_random(TkmsTpm *self, guint32 uid, TkmsTpmRandom *req, GCancellable *cancellable,
		GAsyncReadyCallback callback, gpointer user_data)
{
	tkms_tpm_submit(self, uid, random_func, req, cancellable, callback, user_data);
}
