/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

#include "tpm-sys-session.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <string.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_sys.h>

#include "tpm-seal-auth.h"

/* SHA-256 throughout: the session's hash, its nonces' and session key's size */
#define DIGEST_SIZE  32
#define AES_KEY_SIZE 16
#define AES_BLOCK    16

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
	nonce->size = DIGEST_SIZE;
	return RAND_bytes(nonce->buffer, DIGEST_SIZE) == 1;
}

/* KDFa (TPM 2.0 Part 1, 11.4.10.2) with SHA-256, for at most 256 bits: one HMAC. */
static gboolean
kdfa(const guint8 *key, gsize key_len, const gchar *label, const TPM2B_NONCE *u,
     const TPM2B_NONCE *v, guint bits, guint8 *out)
{
	guint8 msg[4 + 8 + 2 * sizeof(u->buffer) + 4];
	guint8 md[DIGEST_SIZE];
	guint32 be;
	gsize len = 0, label_len = strlen(label) + 1;
	unsigned int md_len = 0;
	gboolean ok;

	g_assert(bits <= 8 * DIGEST_SIZE && label_len <= 8);
	be = GUINT32_TO_BE(1);
	memcpy(msg, &be, 4);
	len = 4;
	memcpy(msg + len, label, label_len);
	len += label_len;
	memcpy(msg + len, u->buffer, u->size);
	len += u->size;
	memcpy(msg + len, v->buffer, v->size);
	len += v->size;
	be = GUINT32_TO_BE(bits);
	memcpy(msg + len, &be, 4);
	len += 4;
	ok = HMAC(EVP_sha256(), key_len > 0 ? key : (const guint8 *)"", (int)key_len, msg, len, md,
		  &md_len) != NULL &&
	     md_len == DIGEST_SIZE;
	if (ok)
		memcpy(out, md, bits / 8);
	OPENSSL_cleanse(md, sizeof(md));
	return ok;
}

/* The uncompressed point 04 | x | y of a P-256 TPMS_ECC_POINT; FALSE if it is not one. */
static gboolean
point_octets(const TPMS_ECC_POINT *p, guint8 out[65])
{
	if (p->x.size != 32 || p->y.size != 32)
		return FALSE;
	out[0] = 4;
	memcpy(out + 1, p->x.buffer, 32);
	memcpy(out + 33, p->y.buffer, 32);
	return TRUE;
}

/* The salt for a session salted on srk (Part 1, C.6.4 and 11.4.10.3): an ephemeral P-256 key
 * agreed with the SRK's, salt = KDFe(Z, "SECRET", ephemeral x, SRK x); the TPM gets the
 * ephemeral public point in encrypted. */
static gboolean
make_salt(const TPMS_ECC_POINT *srk, guint8 salt[DIGEST_SIZE], TPM2B_ENCRYPTED_SECRET *encrypted)
{
	EVP_PKEY *eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *pctx = NULL, *dctx = NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	guint8 srk_octets[65], eph_octets[65], z[32];
	size_t len = 0, z_len = sizeof(z);
	TPMS_ECC_POINT eph_point = {.x.size = 32, .y.size = 32};
	guint32 one = GUINT32_TO_BE(1);
	unsigned int md_len = 0;
	gboolean ok = FALSE;

	if (eph == NULL || bld == NULL || md == NULL || !point_octets(srk, srk_octets) ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, srk_octets, 65) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(pctx) != 1 ||
	    EVP_PKEY_fromdata(pctx, &peer, EVP_PKEY_PUBLIC_KEY, params) != 1 ||
	    (dctx = EVP_PKEY_CTX_new(eph, NULL)) == NULL || EVP_PKEY_derive_init(dctx) != 1 ||
	    /* checks that the SRK's point is on the curve */
	    EVP_PKEY_derive_set_peer(dctx, peer) != 1 || EVP_PKEY_derive(dctx, z, &z_len) != 1 ||
	    z_len != 32 ||
	    EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_PUB_KEY, eph_octets,
					    sizeof(eph_octets), &len) != 1 ||
	    len != 65 || eph_octets[0] != 4)
		goto out;
	memcpy(eph_point.x.buffer, eph_octets + 1, 32);
	memcpy(eph_point.y.buffer, eph_octets + 33, 32);
	len = 0;
	if (Tss2_MU_TPMS_ECC_POINT_Marshal(&eph_point, encrypted->secret, sizeof(encrypted->secret),
					   &len) != TSS2_RC_SUCCESS)
		goto out;
	encrypted->size = (UINT16)len;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, &one, 4) &&
	     EVP_DigestUpdate(md, z, 32) && EVP_DigestUpdate(md, "SECRET", 7) &&
	     EVP_DigestUpdate(md, eph_octets + 1, 32) && EVP_DigestUpdate(md, srk_octets + 1, 32) &&
	     EVP_DigestFinal_ex(md, salt, &md_len) && md_len == DIGEST_SIZE;
out:
	OPENSSL_cleanse(z, sizeof(z));
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(eph);
	return ok;
}

/* The SRK's public point, read from the TPM and checked against the name ESYS holds for it
 * (the one pinned in the state directory). */
static gboolean
srk_point(TkmsTpmContext *ctx, TPMS_ECC_POINT *point)
{
	g_autofree TPM2B_PUBLIC *pub = NULL;
	g_autofree TPM2B_NAME *name = NULL;
	guint8 buf[sizeof(TPMT_PUBLIC)], md[DIGEST_SIZE];
	size_t len = 0;
	unsigned int md_len = 0;

	if (Esys_ReadPublic(ctx->esys, ctx->srk, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub,
			    NULL, NULL) != TSS2_RC_SUCCESS ||
	    Esys_TR_GetName(ctx->esys, ctx->srk, &name) != TSS2_RC_SUCCESS ||
	    pub->publicArea.type != TPM2_ALG_ECC || pub->publicArea.nameAlg != TPM2_ALG_SHA256 ||
	    Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, buf, sizeof(buf), &len) !=
		    TSS2_RC_SUCCESS ||
	    EVP_Digest(buf, len, md, &md_len, EVP_sha256(), NULL) != 1 || name->size != 34 ||
	    name->name[0] != 0 || name->name[1] != TPM2_ALG_SHA256 ||
	    memcmp(name->name + 2, md, DIGEST_SIZE) != 0)
		return FALSE;
	*point = pub->publicArea.unique.ecc;
	return TRUE;
}

static TSS2_RC
start(TkmsTpmContext *ctx, TSS2_SYS_CONTEXT *sys)
{
	static const TPMT_SYM_DEF sym = {
		.algorithm = TPM2_ALG_AES,
		.keyBits = {.aes = 128},
		.mode = {.aes = TPM2_ALG_CFB},
	};
	TPM2B_NONCE caller;
	TPM2B_ENCRYPTED_SECRET encrypted = {0};
	TPMS_ECC_POINT srk;
	TPMI_SH_AUTH_SESSION handle = 0;
	TPM2_HANDLE srk_handle = 0;
	guint8 salt[DIGEST_SIZE];
	TSS2_RC rc;

	if (!new_nonce(&caller) || !srk_point(ctx, &srk) ||
	    Esys_TR_GetTpmHandle(ctx->esys, ctx->srk, &srk_handle) != TSS2_RC_SUCCESS ||
	    !make_salt(&srk, salt, &encrypted))
		return TSS2_SYS_RC_GENERAL_FAILURE;
	/* salted on the SRK, unbound (bind TPM_RH_NULL) */
	rc = Tss2_Sys_StartAuthSession(sys, srk_handle, TPM2_RH_NULL, NULL, &caller, &encrypted,
				       TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256, &handle,
				       &ctx->sys_nonce_tpm, NULL);
	if (rc == TSS2_RC_SUCCESS) {
		ctx->sys_session = handle;
		/* session key = KDFa(salt, "ATH", nonceTPM, nonceCaller) */
		if (!kdfa(salt, sizeof(salt), "ATH", &ctx->sys_nonce_tpm, &caller, 8 * DIGEST_SIZE,
			  ctx->sys_session_key))
			rc = TSS2_SYS_RC_GENERAL_FAILURE;
		else
			g_debug("started the SYS session");
	}
	OPENSSL_cleanse(salt, sizeof(salt));
	return rc;
}

void
tkms_tpm_sys_session_drop(TkmsTpmContext *ctx)
{
	TSS2_SYS_CONTEXT *sys = sys_context(ctx);
	TPM2_HANDLE shared = 0;

	OPENSSL_cleanse(ctx->sys_session_key, sizeof(ctx->sys_session_key));
	if (ctx->sys_session == 0)
		return;
	/* never the shared session: after a TPM reset the same handle may be ESYS's by now */
	if (ctx->session != ESYS_TR_NONE)
		Esys_TR_GetTpmHandle(ctx->esys, ctx->session, &shared);
	if (sys != NULL && shared != ctx->sys_session)
		Tss2_Sys_FlushContext(sys, ctx->sys_session);
	ctx->sys_session = 0;
	g_debug("dropped the SYS session");
}

/* The session value, session key || auth value without its trailing zero octets (Part 1,
 * 19.6.8 and 21.1), the key of its HMACs and of its parameter encryption; wipe it. */
static gsize
session_value(TkmsTpmContext *ctx, const TPM2B_AUTH *auth, guint8 out[DIGEST_SIZE + 64])
{
	gsize len = auth->size;

	while (len > 0 && auth->buffer[len - 1] == 0)
		len--;
	memcpy(out, ctx->sys_session_key, DIGEST_SIZE);
	memcpy(out + DIGEST_SIZE, auth->buffer, len);
	return DIGEST_SIZE + len;
}

/* The session's HMAC (Part 1, 19.6): over pHash, the newer and the older nonce and the
 * session attributes. */
static gboolean
session_hmac(const guint8 *key, gsize key_len, const guint8 *p_hash, const TPM2B_NONCE *newer,
	     const TPM2B_NONCE *older, TPMA_SESSION attrs, TPM2B_AUTH *out)
{
	guint8 msg[DIGEST_SIZE + 2 * sizeof(newer->buffer) + 1];
	gsize len;
	unsigned int out_len = 0;
	gboolean ok;

	memcpy(msg, p_hash, DIGEST_SIZE);
	len = DIGEST_SIZE;
	memcpy(msg + len, newer->buffer, newer->size);
	len += newer->size;
	memcpy(msg + len, older->buffer, older->size);
	len += older->size;
	msg[len++] = attrs;
	ok = HMAC(EVP_sha256(), key, (int)key_len, msg, len, out->buffer, &out_len) != NULL;
	out->size = out_len;
	return ok && out_len == DIGEST_SIZE;
}

/* SHA-256 of first || [second] || more || params (cpHash and rpHash, Part 1, 18.7). */
static gboolean
p_hash(guint32 first, guint32 second, gboolean has_second, const guint8 *more, gsize more_len,
       const guint8 *params, gsize params_len, guint8 out[DIGEST_SIZE])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	guint32 be1 = GUINT32_TO_BE(first), be2 = GUINT32_TO_BE(second);
	unsigned int len = DIGEST_SIZE;
	gboolean ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
		      EVP_DigestUpdate(md, &be1, 4) &&
		      (!has_second || EVP_DigestUpdate(md, &be2, 4)) &&
		      (more_len == 0 || EVP_DigestUpdate(md, more, more_len)) &&
		      (params_len == 0 || EVP_DigestUpdate(md, params, params_len)) &&
		      EVP_DigestFinal_ex(md, out, &len);

	EVP_MD_CTX_free(md);
	return ok && len == DIGEST_SIZE;
}

/* Encrypts or decrypts a first parameter's bytes (after its size) in place: AES-128-CFB with
 * key and IV from KDFa(session value, "CFB", newer nonce, older nonce) (Part 1, 21.3): the
 * caller's nonce first for a command, the TPM's for its answer. */
static gboolean
crypt_param(const guint8 *value, gsize value_len, const TPM2B_NONCE *newer,
	    const TPM2B_NONCE *older, gboolean encrypt, guint8 *p, gsize len)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	guint8 key_iv[AES_KEY_SIZE + AES_BLOCK];
	int out_len = 0, fin_len = 0;
	gboolean ok = c != NULL &&
		      kdfa(value, value_len, "CFB", newer, older, 8 * sizeof(key_iv), key_iv) &&
		      EVP_CipherInit_ex(c, EVP_aes_128_cfb128(), NULL, key_iv,
					key_iv + AES_KEY_SIZE, encrypt ? 1 : 0) == 1 &&
		      (len == 0 || EVP_CipherUpdate(c, p, &out_len, p, (int)len) == 1) &&
		      EVP_CipherFinal_ex(c, p + out_len, &fin_len) == 1 &&
		      (gsize)(out_len + fin_len) == len;

	OPENSSL_cleanse(key_iv, sizeof(key_iv));
	EVP_CIPHER_CTX_free(c);
	return ok;
}

/* The command prepared in sys (code, on the object named name), authorized in the SYS session
 * with auth and the caller's nonce, and sent; its answer's HMAC checked. decrypt: its first
 * parameter went in encrypted; encrypt: the answer's comes encrypted. */
static TSS2_RC
run_in_session(TkmsTpmContext *ctx, TSS2_SYS_CONTEXT *sys, TPM2_CC code, const TPM2B_NAME *name,
	       const TPM2B_AUTH *auth, gboolean decrypt, gboolean encrypt,
	       const TPM2B_NONCE *caller)
{
	TSS2L_SYS_AUTH_COMMAND cmd = {0};
	TSS2L_SYS_AUTH_RESPONSE rsp = {0};
	TPMS_AUTH_COMMAND *a = &cmd.auths[0];
	TPM2B_AUTH expect;
	const guint8 *params = NULL;
	size_t params_len = 0;
	guint8 value[DIGEST_SIZE + 64], hash[DIGEST_SIZE];
	gsize value_len = session_value(ctx, auth, value);
	TSS2_RC rc = Tss2_Sys_GetCpBuffer(sys, &params_len, &params);

	cmd.count = 1;
	a->sessionHandle = ctx->sys_session;
	a->sessionAttributes = TPMA_SESSION_CONTINUESESSION | (encrypt ? TPMA_SESSION_ENCRYPT : 0) |
			       (decrypt ? TPMA_SESSION_DECRYPT : 0);
	a->nonce = *caller;
	if (rc == TSS2_RC_SUCCESS &&
	    (!p_hash(code, 0, FALSE, name->name, name->size, params, params_len, hash) ||
	     !session_hmac(value, value_len, hash, &a->nonce, &ctx->sys_nonce_tpm,
			   a->sessionAttributes, &a->hmac)))
		rc = TSS2_SYS_RC_GENERAL_FAILURE;
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Sys_SetCmdAuths(sys, &cmd);
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Sys_Execute(sys);
	/* the answer is the TPM's, to this command in this session, with this auth value; one
	 * that says success without a session SYS can read (none at all: SYS calls that a
	 * function called in the wrong order) is not, and is no lost connection either */
	if (rc == TSS2_RC_SUCCESS &&
	    (Tss2_Sys_GetRspAuths(sys, &rsp) != TSS2_RC_SUCCESS ||
	     Tss2_Sys_GetRpBuffer(sys, &params_len, &params) != TSS2_RC_SUCCESS || rsp.count != 1 ||
	     !p_hash(TSS2_RC_SUCCESS, code, TRUE, NULL, 0, params, params_len, hash) ||
	     !session_hmac(value, value_len, hash, &rsp.auths[0].nonce, &a->nonce,
			   rsp.auths[0].sessionAttributes, &expect) ||
	     rsp.auths[0].hmac.size != expect.size ||
	     CRYPTO_memcmp(rsp.auths[0].hmac.buffer, expect.buffer, expect.size) != 0))
		rc = TSS2_ESYS_RC_RSP_AUTH_FAILED;
	OPENSSL_cleanse(value, sizeof(value));
	OPENSSL_cleanse(&a->hmac, sizeof(a->hmac));
	if (rc != TSS2_RC_SUCCESS)
		return rc;
	ctx->sys_nonce_tpm = rsp.auths[0].nonce;
	return TSS2_RC_SUCCESS;
}

/* A command failed in the session: it may be out of step, so it is flushed and forgotten, and
 * the next command starts another. An error answer carries no session HMAC: whoever sits on
 * the bus can forge one, even TPM_RC_REFERENCE_S0 ("no such session"), while the TPM still
 * holds the session; forgotten unflushed, each would take one of the TPM's few session slots
 * for good (TPM_RC_SESSION_MEMORY for everyone after). A session really gone with a TPM reset
 * is harmless to flush: only a session started since the reset can hold its slot, and in a
 * request on the SYS session that is at most ESYS's shared one, whose handle
 * tkms_tpm_sys_session_drop never flushes. Only a failed connection sends nothing more: the
 * TPM may hang and the watchdog has fired already; the worker drops the connection and the
 * next one flushes what is left. The flush's own answer is ignored: rc is what failed. */
static TSS2_RC
failed(TkmsTpmContext *ctx, TSS2_RC rc)
{
	g_debug("a command in the SYS session failed: %s", Tss2_RC_Decode(rc));
	if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER)
		ctx->sys_session = 0;
	tkms_tpm_sys_session_drop(ctx);
	return rc;
}

/* The object's name, nameAlg || H(publicArea), from the blob it was loaded from: ESYS's
 * Esys_TR_GetName computes it again on every call, at the cost of a fetch of SHA-256 in
 * OpenSSL's provider tables (tpm2-tss 3.2.1). Our objects' nameAlg is SHA-256
 * (tkms_tpm_fill_template); for another, ESYS's. */
static TSS2_RC
key_name(TkmsTpmContext *ctx, TkmsTpmKey *key, TPM2B_NAME *name)
{
	gsize len = 0;
	const guint8 *p =
		key->blob->public != NULL ? g_bytes_get_data(key->blob->public, &len) : NULL;
	unsigned int md_len = DIGEST_SIZE;
	TPM2B_NAME *esys_name = NULL;
	TSS2_RC rc;

	/* TPM2B_PUBLIC: size, then TPMT_PUBLIC: type, nameAlg, ... (tkms_tpm_load_object has
	 * checked that it unmarshals) */
	if (p != NULL && len >= 6 && (gsize)((p[0] << 8) | p[1]) == len - 2 &&
	    ((p[4] << 8) | p[5]) == TPM2_ALG_SHA256) {
		name->size = 2 + DIGEST_SIZE;
		name->name[0] = p[4];
		name->name[1] = p[5];
		if (EVP_Digest(p + 2, len - 2, name->name + 2, &md_len, EVP_sha256(), NULL) == 1 &&
		    md_len == DIGEST_SIZE)
			return TSS2_RC_SUCCESS;
	}
	rc = Esys_TR_GetName(ctx->esys, key->obj, &esys_name);
	if (rc == TSS2_RC_SUCCESS)
		*name = *esys_name;
	Esys_Free(esys_name);
	return rc;
}

/* key's name and TPM handle, a new caller nonce and, if the session is not open, a new one. */
static TSS2_RC
prepare(TkmsTpmContext *ctx, TSS2_SYS_CONTEXT *sys, TkmsTpmKey *key, TPM2B_NAME *name,
	TPM2_HANDLE *handle, TPM2B_NONCE *caller)
{
	TSS2_RC rc;

	if (sys == NULL || !new_nonce(caller))
		return TSS2_SYS_RC_GENERAL_FAILURE;
	rc = key_name(ctx, key, name);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_TR_GetTpmHandle(ctx->esys, key->obj, handle);
	if (rc == TSS2_RC_SUCCESS && ctx->sys_session == 0)
		rc = start(ctx, sys);
	return rc;
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
	TSS2_SYS_CONTEXT *sys = sys_context(ctx);
	g_autofree TPMT_SIGNATURE *out = NULL;
	TPM2B_NONCE caller;
	TPM2B_NAME name;
	TPM2_HANDLE handle = 0;
	TSS2_RC rc;

	*sig = NULL;
	if (!key->sys_session) {
		tkms_tpm_set_session_crypt(ctx, key->auth.auth, FALSE, FALSE);
		return Esys_Sign(ctx->esys, key->obj, key->auth.auth, ESYS_TR_NONE, ESYS_TR_NONE,
				 digest, &scheme, &check, sig);
	}
	rc = prepare(ctx, sys, key, &name, &handle, &caller);
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Sys_Sign_Prepare(sys, handle, digest, &scheme, &check);
	if (rc == TSS2_RC_SUCCESS)
		rc = run_in_session(ctx, sys, TPM2_CC_Sign, &name, &key->sys_auth, FALSE, FALSE,
				    &caller);
	if (rc == TSS2_RC_SUCCESS) {
		out = g_new0(TPMT_SIGNATURE, 1);
		rc = Tss2_Sys_Sign_Complete(sys, out);
	}
	if (rc != TSS2_RC_SUCCESS)
		return failed(ctx, rc);
	*sig = g_steal_pointer(&out);
	return TSS2_RC_SUCCESS;
}

/* The answer's first parameter, a TPM2B of at most max bytes in all, decrypted into buf
 * (its size included); *len its length. */
static TSS2_RC
response_param(TkmsTpmContext *ctx, TSS2_SYS_CONTEXT *sys, TkmsTpmKey *key,
	       const TPM2B_NONCE *caller, guint8 *buf, gsize max, gsize *len)
{
	const guint8 *params = NULL;
	size_t params_len = 0;
	guint8 value[DIGEST_SIZE + 64];
	gsize value_len;
	TSS2_RC rc = Tss2_Sys_GetRpBuffer(sys, &params_len, &params);

	if (rc != TSS2_RC_SUCCESS)
		return rc;
	if (params_len < 2 || params_len > max ||
	    (gsize)((params[0] << 8) | params[1]) != params_len - 2)
		return TSS2_SYS_RC_MALFORMED_RESPONSE;
	value_len = session_value(ctx, &key->sys_auth, value);
	memcpy(buf, params, params_len);
	*len = params_len;
	if (!crypt_param(value, value_len, &ctx->sys_nonce_tpm, caller, FALSE, buf + 2,
			 params_len - 2))
		rc = TSS2_SYS_RC_GENERAL_FAILURE;
	OPENSSL_cleanse(value, sizeof(value));
	return rc;
}

TSS2_RC
tkms_tpm_key_unseal(TkmsTpmContext *ctx, TkmsTpmKey *key, TPM2B_SENSITIVE_DATA **out)
{
	TSS2_SYS_CONTEXT *sys = sys_context(ctx);
	g_autofree TPM2B_SENSITIVE_DATA *data = NULL;
	TPM2B_SENSITIVE_DATA enc = {0};
	TPM2B_NONCE caller;
	TPM2B_NAME name;
	TPM2_HANDLE handle = 0;
	guint8 buf[sizeof(TPM2B_SENSITIVE_DATA)];
	gsize len = 0, off = 0;
	TSS2_RC rc;

	*out = NULL;
	if (!key->sys_session) {
		/* encrypted response: the key material never crosses the TPM bus in the clear */
		tkms_tpm_auth_crypt(ctx, &key->auth, FALSE, TRUE);
		return Esys_Unseal(ctx->esys, key->obj, key->auth.auth, key->auth.crypt,
				   ESYS_TR_NONE, out);
	}
	rc = prepare(ctx, sys, key, &name, &handle, &caller);
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Sys_Unseal_Prepare(sys, handle);
	/* the answer encrypted: the key material never crosses the TPM bus in the clear */
	if (rc == TSS2_RC_SUCCESS)
		rc = run_in_session(ctx, sys, TPM2_CC_Unseal, &name, &key->sys_auth, FALSE, TRUE,
				    &caller);
	if (rc == TSS2_RC_SUCCESS)
		rc = response_param(ctx, sys, key, &caller, buf, sizeof(buf), &len);
	data = g_new0(TPM2B_SENSITIVE_DATA, 1);
	if (rc == TSS2_RC_SUCCESS &&
	    (Tss2_MU_TPM2B_SENSITIVE_DATA_Unmarshal(buf, len, &off, data) != TSS2_RC_SUCCESS ||
	     off != len))
		rc = TSS2_SYS_RC_MALFORMED_RESPONSE;
	/* ends the command in SYS; what it gives is the encrypted copy */
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Sys_Unseal_Complete(sys, &enc);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc != TSS2_RC_SUCCESS) {
		OPENSSL_cleanse(data, sizeof(*data));
		return failed(ctx, rc);
	}
	*out = g_steal_pointer(&data);
	return TSS2_RC_SUCCESS;
}

TSS2_RC
tkms_tpm_key_hmac(TkmsTpmContext *ctx, TkmsTpmKey *key, const TPM2B_MAX_BUFFER *msg,
		  TPM2B_DIGEST **mac)
{
	TSS2_SYS_CONTEXT *sys = sys_context(ctx);
	g_autofree TPM2B_DIGEST *data = NULL;
	TPM2B_MAX_BUFFER in = *msg;
	TPM2B_DIGEST enc = {0};
	TPM2B_NONCE caller;
	TPM2B_NAME name;
	TPM2_HANDLE handle = 0;
	guint8 buf[sizeof(TPM2B_DIGEST)], value[DIGEST_SIZE + 64];
	gsize len = 0, off = 0, value_len;
	TSS2_RC rc;

	*mac = NULL;
	if (!key->sys_session) {
		OPENSSL_cleanse(&in, sizeof(in));
		/* the message may be secret and so may the MAC: encrypted both ways */
		tkms_tpm_auth_crypt(ctx, &key->auth, TRUE, TRUE);
		return Esys_HMAC(ctx->esys, key->obj, key->auth.auth, key->auth.crypt, ESYS_TR_NONE,
				 msg, TPM2_ALG_SHA256, mac);
	}
	rc = prepare(ctx, sys, key, &name, &handle, &caller);
	/* the message goes in encrypted, the MAC comes back encrypted */
	value_len = session_value(ctx, &key->sys_auth, value);
	if (rc == TSS2_RC_SUCCESS &&
	    !crypt_param(value, value_len, &caller, &ctx->sys_nonce_tpm, TRUE, in.buffer, in.size))
		rc = TSS2_SYS_RC_GENERAL_FAILURE;
	OPENSSL_cleanse(value, sizeof(value));
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Sys_HMAC_Prepare(sys, handle, &in, TPM2_ALG_SHA256);
	if (rc == TSS2_RC_SUCCESS)
		rc = run_in_session(ctx, sys, TPM2_CC_HMAC, &name, &key->sys_auth, TRUE, TRUE,
				    &caller);
	if (rc == TSS2_RC_SUCCESS)
		rc = response_param(ctx, sys, key, &caller, buf, sizeof(buf), &len);
	data = g_new0(TPM2B_DIGEST, 1);
	if (rc == TSS2_RC_SUCCESS &&
	    (Tss2_MU_TPM2B_DIGEST_Unmarshal(buf, len, &off, data) != TSS2_RC_SUCCESS || off != len))
		rc = TSS2_SYS_RC_MALFORMED_RESPONSE;
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_Sys_HMAC_Complete(sys, &enc);
	OPENSSL_cleanse(&in, sizeof(in));
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc != TSS2_RC_SUCCESS) {
		OPENSSL_cleanse(data, sizeof(*data));
		return failed(ctx, rc);
	}
	*mac = g_steal_pointer(&data);
	return TSS2_RC_SUCCESS;
}
