/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

/* The TPM commands behind each request. All of this runs on the TPM worker thread. Every
 * object is loaded, used and flushed within one request: transient slots are scarce. */

#include "tpm-private.h"

#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <string.h>

#include "crypto.h"
#include "tkms-error.h"
#include "tpm-object.h"
#include "tpm-seal-auth.h"

/* ---- create ---- */

static gboolean
create_func(TkmsTpmContext *ctx, gpointer data, GError **error)
{
	TkmsTpmCreate *req = data;
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl;
	ESYS_TR session = ESYS_TR_NONE;
	guint8 sens_copy[TPM2_MAX_SYM_DATA / 2] = {0};
	gboolean ok;
	TSS2_RC rc;

	g_return_val_if_fail(!(req->owner_auth && req->bind), FALSE);
	tkms_tpm_fill_template(req->kind, &tmpl);
	/* one salted session carries the material from the RNG and the auth value into Create */
	if ((req->kind == TKMS_TPM_OBJECT_SEALED || req->owner_auth || req->bind) &&
	    !tkms_tpm_start_hmac_session(ctx, &session, error))
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
	    !tkms_tpm_seal_auth_value(ctx, req->owner, session, &sens.sensitive.userAuth, error))
		goto out_fail;
	if (req->bind &&
	    !tkms_tpm_key_auth_value(ctx, &req->key_id, session, &sens.sensitive.userAuth, error))
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
	if (session == ESYS_TR_NONE)
		session = ESYS_TR_PASSWORD; /* the TPM generates the key: nothing secret goes in */
	ok = tkms_tpm_create_object(ctx, session, &sens, &tmpl, req->bind, &req->out, error);
	tkms_tpm_flush(ctx, &session);
	OPENSSL_cleanse(&sens, sizeof(sens));
	if (ok && req->want_material)
		req->material = tkms_secret_new_from_data(sens_copy, req->seal_size);
	OPENSSL_cleanse(sens_copy, sizeof(sens_copy));
	return ok;
out_fail:
	tkms_tpm_flush(ctx, &session);
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

static gboolean
unseal_func(TkmsTpmContext *ctx, gpointer data, GError **error)
{
	TkmsTpmUnseal *req = data;
	ESYS_TR obj = ESYS_TR_NONE, session = ESYS_TR_NONE;
	g_autofree TPM2B_SENSITIVE_DATA *out = NULL;
	TSS2_RC rc;

	if (!req->owner_auth) {
		/* a key version's object */
		if (!tkms_tpm_load_key(ctx, &req->blob, &req->key_id, req->pcrs, TRUE, &obj,
				       &session, error))
			return FALSE;
	} else if (!tkms_tpm_load_object(ctx, &req->blob, req->untrusted_blob, &obj, error)) {
		return FALSE;
	} else {
		TPM2B_AUTH auth = {0};
		gboolean ok = tkms_tpm_start_hmac_session(ctx, &session, error) &&
			      tkms_tpm_seal_auth_value(ctx, req->owner, session, &auth, error);
		if (ok)
			Esys_TR_SetAuth(ctx->esys, obj, &auth);
		OPENSSL_cleanse(&auth, sizeof(auth));
		/* PCR-bound: the policy session asserts PolicyAuthValue as well; otherwise the
		 * salted session proves the auth value */
		if (ok && req->pcrs != 0) {
			tkms_tpm_flush(ctx, &session);
			ok = tkms_tpm_start_pcr_session(ctx, req->pcrs, FALSE, TRUE, &session,
							error);
		}
		if (!ok) {
			tkms_tpm_flush(ctx, &session);
			tkms_tpm_flush(ctx, &obj);
			return FALSE;
		}
	}
	/* encrypted response: the key material never crosses the TPM bus in the clear */
	tkms_tpm_set_session_crypt(ctx, session, FALSE, TRUE);
	rc = Esys_Unseal(ctx->esys, obj, session, ESYS_TR_NONE, ESYS_TR_NONE, &out);
	tkms_tpm_flush(ctx, &session);
	tkms_tpm_flush(ctx, &obj);
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
	req->out = tkms_secret_new_from_data(out->buffer, out->size);
	OPENSSL_cleanse(out->buffer, out->size);
	return TRUE;
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
	ESYS_TR obj = ESYS_TR_NONE, session = ESYS_TR_NONE;
	TPM2B_DIGEST digest;
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
	TPMT_TK_HASHCHECK check = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
	g_autofree TPMT_SIGNATURE *sig = NULL;
	TSS2_RC rc;

	/* A NULL hashcheck ticket is enough for any digest, ours or the caller's, because our
	 * signing keys are not restricted (tkms_tpm_fill_template): a restricted key would refuse
	 * a digest the TPM did not hash itself. */
	request_digest(req, &digest);
	/* a digest in, a signature out: nothing secret crosses the TPM bus (a bound key's auth
	 * value is proven by a salted session, never sent) */
	if (!tkms_tpm_load_key(ctx, &req->blob, &req->key_id, req->pcrs, FALSE, &obj, &session,
			       error))
		return FALSE;
	tkms_tpm_set_session_crypt(ctx, session, FALSE, FALSE);
	rc = Esys_Sign(ctx->esys, obj, session, ESYS_TR_NONE, ESYS_TR_NONE, &digest, &scheme,
		       &check, &sig);
	tkms_tpm_flush(ctx, &session);
	tkms_tpm_flush(ctx, &obj);
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

static gboolean
hmac_func(TkmsTpmContext *ctx, gpointer data, GError **error)
{
	TkmsTpmHmac *req = data;
	ESYS_TR obj = ESYS_TR_NONE, session = ESYS_TR_NONE, seq = ESYS_TR_NONE;
	gsize len = 0;
	const guint8 *p = req->data ? g_bytes_get_data(req->data, &len) : NULL;
	g_autofree TPM2B_DIGEST *mac = NULL;
	TPM2B_MAX_BUFFER buf;
	TSS2_RC rc;
	gboolean ok;

	/* the message may be secret, and a MAC used for DeriveKey is key material */
	if (!tkms_tpm_load_key(ctx, &req->blob, &req->key_id, req->pcrs, TRUE, &obj, &session,
			       error))
		return FALSE;
	tkms_tpm_set_session_crypt(ctx, session, TRUE, TRUE);
	if (len <= TPM2_MAX_DIGEST_BUFFER) {
		buf.size = len;
		if (len > 0)
			memcpy(buf.buffer, p, len);
		rc = Esys_HMAC(ctx->esys, obj, session, ESYS_TR_NONE, ESYS_TR_NONE, &buf,
			       TPM2_ALG_SHA256, &mac);
		ok = tkms_tpm_check(rc, "computing an HMAC", error);
	} else {
		/* longer messages go through an HMAC sequence, 1 KiB per command */
		TPM2B_AUTH seq_auth = {0};
		gsize off = 0;
		g_autofree TPMT_TK_HASHCHECK *ticket = NULL;
		rc = Esys_HMAC_Start(ctx->esys, obj, session, ESYS_TR_NONE, ESYS_TR_NONE,
				     &seq_auth, TPM2_ALG_SHA256, &seq);
		ok = tkms_tpm_check(rc, "starting an HMAC sequence", error);
		while (ok && len - off > TPM2_MAX_DIGEST_BUFFER) {
			buf.size = TPM2_MAX_DIGEST_BUFFER;
			memcpy(buf.buffer, p + off, buf.size);
			off += buf.size;
			rc = Esys_SequenceUpdate(ctx->esys, seq, ESYS_TR_PASSWORD, ESYS_TR_NONE,
						 ESYS_TR_NONE, &buf);
			ok = tkms_tpm_check(rc, "feeding an HMAC sequence", error);
		}
		if (ok) {
			buf.size = len - off;
			memcpy(buf.buffer, p + off, buf.size);
			rc = Esys_SequenceComplete(ctx->esys, seq, ESYS_TR_PASSWORD, ESYS_TR_NONE,
						   ESYS_TR_NONE, &buf, ESYS_TR_RH_NULL, &mac,
						   &ticket);
			ok = tkms_tpm_check(rc, "completing an HMAC sequence", error);
			if (ok)
				seq = ESYS_TR_NONE; /* the TPM flushed it */
		}
		tkms_tpm_flush(ctx, &seq);
	}
	OPENSSL_cleanse(&buf, sizeof(buf));
	tkms_tpm_flush(ctx, &session);
	tkms_tpm_flush(ctx, &obj);
	if (!ok)
		return FALSE;
	req->out = tkms_secret_new_from_data(mac->buffer, mac->size);
	OPENSSL_cleanse(mac->buffer, mac->size);
	return TRUE;
}

void
tkms_tpm_hmac(TkmsTpm *self, guint32 uid, TkmsTpmHmac *req, GCancellable *cancellable,
	      GAsyncReadyCallback callback, gpointer user_data)
{
	tkms_tpm_submit(self, uid, hmac_func, req, cancellable, callback, user_data);
}

/* ---- random ---- */

static gboolean
random_func(TkmsTpmContext *ctx, gpointer data, GError **error)
{
	TkmsTpmRandom *req = data;
	ESYS_TR session = ESYS_TR_NONE;
	guint8 *buf;
	gboolean ok;

	if (!tkms_tpm_start_hmac_session(ctx, &session, error))
		return FALSE;
	buf = g_malloc(req->length);
	ok = tkms_tpm_get_random(ctx, session, buf, req->length, error);
	tkms_tpm_flush(ctx, &session);
	if (!ok) {
		g_free(buf);
		return FALSE;
	}
	req->out = g_bytes_new_take(buf, req->length);
	return TRUE;
}

void
tkms_tpm_random(TkmsTpm *self, guint32 uid, TkmsTpmRandom *req, GCancellable *cancellable,
		GAsyncReadyCallback callback, gpointer user_data)
{
	tkms_tpm_submit(self, uid, random_func, req, cancellable, callback, user_data);
}
