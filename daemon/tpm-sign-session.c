/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

#include "tpm-sign-session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>
#include <tss2/tss2_sys.h>

#include "tpm-seal-auth.h"

#define NONCE_SIZE 32 /* SHA-256's digest size, as ESYS's sessions */

static TSS2_SYS_CONTEXT *
sys_context(TkmsTpmContext *ctx)
{
	TSS2_SYS_CONTEXT *sys = NULL;

	if (ctx->esys == NULL || Esys_GetSysContext(ctx->esys, &sys) != TSS2_RC_SUCCESS)
		return NULL;
	return sys;
}

static gboolean
new_nonce(TPM2B_NONCE *nonce)
{
	/* nonces are public: OpenSSL's default (public) generator */
	nonce->size = NONCE_SIZE;
	return RAND_bytes(nonce->buffer, NONCE_SIZE) == 1;
}

static TSS2_RC
start(TkmsTpmContext *ctx, TSS2_SYS_CONTEXT *sys)
{
	TPM2B_NONCE caller;
	TPM2B_ENCRYPTED_SECRET salt = {.size = 0};
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	TPMI_SH_AUTH_SESSION handle = 0;
	TSS2_RC rc;

	if (!new_nonce(&caller))
		return TSS2_SYS_RC_GENERAL_FAILURE;
	/* tpmKey and bind TPM_RH_NULL: unsalted and unbound, so the session key is empty and
	 * every HMAC is keyed with the authorized object's auth value alone */
	rc = Tss2_Sys_StartAuthSession(sys, TPM2_RH_NULL, TPM2_RH_NULL, NULL, &caller, &salt,
				       TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256, &handle,
				       &ctx->sign_nonce_tpm, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return rc;
	ctx->sign_session = handle;
	g_debug("started the sign session");
	return TSS2_RC_SUCCESS;
}

void
tkms_tpm_sign_session_drop(TkmsTpmContext *ctx)
{
	TSS2_SYS_CONTEXT *sys = sys_context(ctx);
	TPM2_HANDLE shared = 0;

	if (ctx->sign_session == 0)
		return;
	/* never the shared session: after a TPM reset the same handle may be ESYS's by now */
	if (ctx->session != ESYS_TR_NONE)
		Esys_TR_GetTpmHandle(ctx->esys, ctx->session, &shared);
	if (sys != NULL && shared != ctx->sign_session)
		Tss2_Sys_FlushContext(sys, ctx->sign_session);
	ctx->sign_session = 0;
	OPENSSL_cleanse(&ctx->sign_nonce_tpm, sizeof(ctx->sign_nonce_tpm));
	g_debug("dropped the sign session");
}

/* The session's HMAC (TPM 2.0 Part 1, 19.6): keyed with the auth value without its trailing
 * zero octets (the session key is empty: unsalted, unbound), over pHash, the newer and the
 * older nonce and the session attributes. */
static gboolean
session_hmac(const TPM2B_AUTH *auth, const guint8 *p_hash, const TPM2B_NONCE *newer,
	     const TPM2B_NONCE *older, TPMA_SESSION attrs, TPM2B_AUTH *out)
{
	guint8 msg[32 + 2 * sizeof(((TPM2B_NONCE *)0)->buffer) + 1];
	gsize key_len = auth->size, len = 0;
	unsigned int out_len = 0;
	gboolean ok;

	while (key_len > 0 && auth->buffer[key_len - 1] == 0)
		key_len--;
	memcpy(msg, p_hash, 32);
	len = 32;
	memcpy(msg + len, newer->buffer, newer->size);
	len += newer->size;
	memcpy(msg + len, older->buffer, older->size);
	len += older->size;
	msg[len++] = attrs;
	ok = HMAC(EVP_sha256(), key_len > 0 ? auth->buffer : (const guint8 *)"", (int)key_len, msg,
		  len, out->buffer, &out_len) != NULL;
	out->size = out_len;
	return ok && out_len == 32;
}

/* SHA-256 of code-or-rc || more || params (cpHash and rpHash, Part 1, 18.7). */
static gboolean
p_hash(guint32 first, guint32 second, gboolean has_second, const guint8 *more, gsize more_len,
       const guint8 *params, gsize params_len, guint8 out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	guint32 be1 = GUINT32_TO_BE(first), be2 = GUINT32_TO_BE(second);
	unsigned int len = 32;
	gboolean ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
		      EVP_DigestUpdate(md, &be1, 4) &&
		      (!has_second || EVP_DigestUpdate(md, &be2, 4)) &&
		      (more_len == 0 || EVP_DigestUpdate(md, more, more_len)) &&
		      (params_len == 0 || EVP_DigestUpdate(md, params, params_len)) &&
		      EVP_DigestFinal_ex(md, out, &len);

	EVP_MD_CTX_free(md);
	return ok && len == 32;
}

static TSS2_RC
sign_in_session(TkmsTpmContext *ctx, TSS2_SYS_CONTEXT *sys, TPM2_HANDLE key, const TPM2B_NAME *name,
		const TPM2B_AUTH *auth, const TPM2B_DIGEST *digest, const TPMT_SIG_SCHEME *scheme,
		const TPMT_TK_HASHCHECK *check, TPMT_SIGNATURE *sig)
{
	TSS2L_SYS_AUTH_COMMAND cmd = {.count = 1};
	TSS2L_SYS_AUTH_RESPONSE rsp = {0};
	TPMS_AUTH_COMMAND *a = &cmd.auths[0];
	TPM2B_AUTH expect;
	const guint8 *params = NULL;
	size_t params_len = 0;
	guint8 hash[32];
	TSS2_RC rc;

	rc = Tss2_Sys_Sign_Prepare(sys, key, digest, scheme, check);
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Sys_GetCpBuffer(sys, &params_len, &params);
	if (rc != TSS2_RC_SUCCESS)
		return rc;
	a->sessionHandle = ctx->sign_session;
	a->sessionAttributes = TPMA_SESSION_CONTINUESESSION;
	if (!new_nonce(&a->nonce) ||
	    !p_hash(TPM2_CC_Sign, 0, FALSE, name->name, name->size, params, params_len, hash) ||
	    !session_hmac(auth, hash, &a->nonce, &ctx->sign_nonce_tpm, a->sessionAttributes,
			  &a->hmac))
		return TSS2_SYS_RC_GENERAL_FAILURE;
	rc = Tss2_Sys_SetCmdAuths(sys, &cmd);
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Sys_Execute(sys);
	OPENSSL_cleanse(&a->hmac, sizeof(a->hmac));
	if (rc != TSS2_RC_SUCCESS)
		return rc;
	rc = Tss2_Sys_GetRspAuths(sys, &rsp);
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Sys_GetRpBuffer(sys, &params_len, &params);
	if (rc != TSS2_RC_SUCCESS)
		return rc;
	/* the answer is the TPM's, for this command in this session, keyed with auth */
	if (rsp.count != 1 ||
	    !p_hash(TSS2_RC_SUCCESS, TPM2_CC_Sign, TRUE, NULL, 0, params, params_len, hash) ||
	    !session_hmac(auth, hash, &rsp.auths[0].nonce, &a->nonce,
			  rsp.auths[0].sessionAttributes, &expect) ||
	    rsp.auths[0].hmac.size != expect.size ||
	    CRYPTO_memcmp(rsp.auths[0].hmac.buffer, expect.buffer, expect.size) != 0)
		return TSS2_ESYS_RC_RSP_AUTH_FAILED;
	ctx->sign_nonce_tpm = rsp.auths[0].nonce;
	return Tss2_Sys_Sign_Complete(sys, sig);
}

TSS2_RC
tkms_tpm_sign_session_sign(TkmsTpmContext *ctx, ESYS_TR obj, const TPM2B_NAME *name,
			   const TPM2B_AUTH *auth, const TPM2B_DIGEST *digest,
			   const TPMT_SIG_SCHEME *scheme, const TPMT_TK_HASHCHECK *check,
			   TPMT_SIGNATURE **sig)
{
	TSS2_SYS_CONTEXT *sys = sys_context(ctx);
	g_autofree TPMT_SIGNATURE *out = g_new0(TPMT_SIGNATURE, 1);
	TPM2_HANDLE key = 0;
	TSS2_RC rc;

	*sig = NULL;
	if (sys == NULL)
		return TSS2_SYS_RC_GENERAL_FAILURE;
	rc = Esys_TR_GetTpmHandle(ctx->esys, obj, &key);
	if (rc == TSS2_RC_SUCCESS && ctx->sign_session == 0)
		rc = start(ctx, sys);
	if (rc == TSS2_RC_SUCCESS)
		rc = sign_in_session(ctx, sys, key, name, auth, digest, scheme, check, out);
	if (rc != TSS2_RC_SUCCESS) {
		/* out of step, or gone with a TPM reset: a reference to it is not flushed */
		TSS2_RC base = tkms_tpm_rc_base(rc);
		if (base >= TPM2_RC_REFERENCE_H0 && base <= TPM2_RC_REFERENCE_S6)
			ctx->sign_session = 0;
		tkms_tpm_sign_session_drop(ctx);
		return rc;
	}
	*sig = g_steal_pointer(&out);
	return TSS2_RC_SUCCESS;
}

/* The object's name, nameAlg || H(publicArea), from the blob it was loaded from: ESYS's
 * Esys_TR_GetName computes it again on every call, at the cost of a fetch of SHA-256 in
 * OpenSSL's provider tables (tpm2-tss 3.2.1) that takes longer than the rest of the command's
 * own work. Our objects' nameAlg is SHA-256 (tkms_tpm_fill_template); for another, FALSE. */
static gboolean
blob_name(const TkmsTpmBlob *blob, TPM2B_NAME *name)
{
	gsize len = 0;
	const guint8 *p = blob->public != NULL ? g_bytes_get_data(blob->public, &len) : NULL;
	unsigned int md_len = 32;

	/* TPM2B_PUBLIC: size, then TPMT_PUBLIC: type, nameAlg, ... (tkms_tpm_load_object has
	 * checked that it unmarshals) */
	if (p == NULL || len < 6 || (gsize)((p[0] << 8) | p[1]) != len - 2 ||
	    ((p[4] << 8) | p[5]) != TPM2_ALG_SHA256)
		return FALSE;
	name->size = 2 + 32;
	name->name[0] = p[4];
	name->name[1] = p[5];
	return EVP_Digest(p + 2, len - 2, name->name + 2, &md_len, EVP_sha256(), NULL) == 1 &&
	       md_len == 32;
}

TSS2_RC
tkms_tpm_key_sign(TkmsTpmContext *ctx, TkmsTpmKey *key, const TPM2B_DIGEST *digest,
		  TPMT_SIGNATURE **sig)
{
	static const TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
	/* A NULL hashcheck ticket is enough for any digest, ours or the caller's, because our
	 * signing keys are not restricted (tkms_tpm_fill_template): a restricted key would refuse
	 * a digest the TPM did not hash itself. */
	static const TPMT_TK_HASHCHECK check = {.tag = TPM2_ST_HASHCHECK,
						.hierarchy = TPM2_RH_NULL};
	TPM2B_AUTH auth = {0};
	TPM2B_NAME name;
	TSS2_RC rc;

	*sig = NULL;
	if (!key->own_session) {
		tkms_tpm_set_session_crypt(ctx, key->auth.auth, FALSE, FALSE);
		return Esys_Sign(ctx->esys, key->obj, key->auth.auth, ESYS_TR_NONE, ESYS_TR_NONE,
				 digest, &scheme, &check, sig);
	}
	/* derived when the key was opened: now a lookup (ctx->key_auth_cache) */
	if (!blob_name(key->blob, &name)) {
		TPM2B_NAME *esys_name = NULL;

		rc = Esys_TR_GetName(ctx->esys, key->obj, &esys_name);
		if (rc != TSS2_RC_SUCCESS)
			return rc;
		name = *esys_name;
		Esys_Free(esys_name);
	}
	if (!tkms_tpm_key_auth_value(ctx, key->id, &auth, NULL))
		return TSS2_SYS_RC_GENERAL_FAILURE;
	rc = tkms_tpm_sign_session_sign(ctx, key->obj, &name, &auth, digest, &scheme, &check, sig);
	OPENSSL_cleanse(&auth, sizeof(auth));
	return rc;
}
