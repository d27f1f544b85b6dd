/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

/* The TPM commands behind each request. All of this runs on the TPM worker thread. Every
 * object is loaded, used and flushed within one request: transient slots are scarce. */

#include "tpm-private.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "tkms-error.h"

#define OBJECT_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA)

/* ---- blobs ---- */

static GBytes *
marshal_public(const TPM2B_PUBLIC *pub)
{
	guint8 buf[sizeof(TPM2B_PUBLIC)];
	size_t off = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
		return NULL;
	return g_bytes_new(buf, off);
}

static GBytes *
marshal_private(const TPM2B_PRIVATE *priv)
{
	guint8 buf[sizeof(TPM2B_PRIVATE)];
	size_t off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
		return NULL;
	return g_bytes_new(buf, off);
}

static gboolean
unmarshal_blob(const TkmsTpmBlob *blob, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv, GError **error)
{
	gsize plen = 0, slen = 0;
	const guint8 *p = blob->public ? g_bytes_get_data(blob->public, &plen) : NULL;
	const guint8 *s = blob->private ? g_bytes_get_data(blob->private, &slen) : NULL;
	size_t poff = 0, soff = 0;

	memset(pub, 0, sizeof(*pub));
	memset(priv, 0, sizeof(*priv));
	if (p == NULL || s == NULL ||
	    Tss2_MU_TPM2B_PUBLIC_Unmarshal(p, plen, &poff, pub) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_PRIVATE_Unmarshal(s, slen, &soff, priv) != TSS2_RC_SUCCESS ||
	    poff != plen || soff != slen) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE,
				    "The TPM object is malformed; it was damaged or is not from "
				    "tkms");
		return FALSE;
	}
	return TRUE;
}

static gboolean
load_object(TkmsTpmContext *ctx, const TkmsTpmBlob *blob, gboolean untrusted, ESYS_TR *handle,
	    GError **error)
{
	TPM2B_PUBLIC pub;
	TPM2B_PRIVATE priv;
	TSS2_RC rc;

	if (!unmarshal_blob(blob, &pub, &priv, error))
		return FALSE;
	/* Load carries no secret (the private part is wrapped by the SRK) and the SRK's auth is
	 * empty: a password session costs nothing, a salted one several ms of ESYS crypto */
	rc = Esys_Load(ctx->esys, ctx->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv,
		       &pub, handle);
	OPENSSL_cleanse(&priv, sizeof(priv));
	if (rc != TSS2_RC_SUCCESS && untrusted && tkms_tpm_rc_base(rc) != 0 &&
	    tkms_tpm_rc_base(rc) != TPM2_RC_LOCKOUT) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE,
				    "The TPM refused to load the blob: it was changed, or it was "
				    "made by another TPM or tkms installation");
		return FALSE;
	}
	return tkms_tpm_check(rc, "loading a key", error);
}

/* The session that authorizes use of an object: PolicyPCR for PCR-bound objects; else a salted
 * HMAC session when the command or its answer carries a secret (it then encrypts that
 * parameter), else the empty password (objects have an empty auth value; the TPM-wrapped
 * blob is the credential). */
static gboolean
object_session(TkmsTpmContext *ctx, TkmsPcrMask pcrs, gboolean secret, ESYS_TR *session,
	       GError **error)
{
	if (pcrs != 0)
		return tkms_tpm_start_pcr_session(ctx, pcrs, FALSE, FALSE, session, error);
	if (!secret) {
		*session = ESYS_TR_PASSWORD;
		return TRUE;
	}
	return tkms_tpm_start_hmac_session(ctx, session, error);
}

/* ---- per-owner auth values of sealed blobs ---- */

/*
 * Seal's blobs leave the daemon, so their sealed object must not open for whoever holds a copy
 * and can reach the TPM directly: its auth value is HMAC(K, "tkms-seal-auth-v1" 0 uid), K an
 * HMAC key in the TPM whose blob (seal-auth.key) stays in the root-only state directory.
 */
#define SEAL_AUTH_LABEL "tkms-seal-auth-v1"
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
	ctx->seal_auth_key.public = parts[0];
	ctx->seal_auth_key.private = parts[1];
	return TRUE;
bad:
	g_clear_pointer(&parts[0], g_bytes_unref);
	return FALSE;
}

static gboolean create_func(TkmsTpmContext *ctx, gpointer data, GError **error);

gboolean
tkms_tpm_ensure_seal_auth_key(TkmsTpmContext *ctx, GError **error)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;
	TkmsTpmCreate req = {.kind = TKMS_TPM_OBJECT_HMAC};

	if (ctx->seal_auth_key.public != NULL)
		return TRUE;
	if (g_file_get_contents(ctx->seal_auth_path, &contents, &len, NULL)) {
		if (read_seal_auth_key(ctx, (const guint8 *)contents, len))
			return TRUE;
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "%s is damaged; sealed blobs cannot be opened without it: restore it "
			    "from a backup",
			    ctx->seal_auth_path);
		return FALSE;
	}
	if (!create_func(ctx, &req, error))
		return FALSE;
	ctx->seal_auth_key = req.out;
	if (!write_seal_auth_key(ctx, error)) {
		tkms_tpm_blob_clear(&ctx->seal_auth_key);
		return FALSE;
	}
	return TRUE;
}

/* session: a salted session (the result is a credential and travels encrypted). */
static gboolean
seal_auth_value(TkmsTpmContext *ctx, guint32 owner, ESYS_TR session, TPM2B_AUTH *auth,
		GError **error)
{
	ESYS_TR obj = ESYS_TR_NONE;
	TPM2B_MAX_BUFFER msg = {0};
	g_autofree TPM2B_DIGEST *mac = NULL;
	guint32 be = GUINT32_TO_BE(owner);
	TSS2_RC rc;

	if (!tkms_tpm_ensure_seal_auth_key(ctx, error) ||
	    !load_object(ctx, &ctx->seal_auth_key, FALSE, &obj, error))
		return FALSE;
	memcpy(msg.buffer, SEAL_AUTH_LABEL, sizeof(SEAL_AUTH_LABEL));
	memcpy(msg.buffer + sizeof(SEAL_AUTH_LABEL), &be, 4);
	msg.size = sizeof(SEAL_AUTH_LABEL) + 4;
	tkms_tpm_set_session_crypt(ctx, session, TRUE, TRUE);
	rc = Esys_HMAC(ctx->esys, obj, session, ESYS_TR_NONE, ESYS_TR_NONE, &msg, TPM2_ALG_SHA256,
		       &mac);
	tkms_tpm_flush(ctx, &obj);
	if (!tkms_tpm_check(rc, "deriving the blob's auth value", error))
		return FALSE;
	auth->size = mac->size;
	memcpy(auth->buffer, mac->buffer, mac->size);
	OPENSSL_cleanse(mac->buffer, mac->size);
	return TRUE;
}

/* ---- create ---- */

static void
fill_template(TkmsTpmObjectKind kind, TPM2B_PUBLIC *tmpl)
{
	TPMT_PUBLIC *p = &tmpl->publicArea;
	memset(tmpl, 0, sizeof(*tmpl));
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = OBJECT_ATTRS | TPMA_OBJECT_USERWITHAUTH;
	switch (kind) {
	case TKMS_TPM_OBJECT_SEALED:
		p->type = TPM2_ALG_KEYEDHASH;
		p->parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
		break;
	case TKMS_TPM_OBJECT_HMAC:
		p->type = TPM2_ALG_KEYEDHASH;
		p->objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
		p->parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_HMAC;
		p->parameters.keyedHashDetail.scheme.details.hmac.hashAlg = TPM2_ALG_SHA256;
		break;
	case TKMS_TPM_OBJECT_ECC_P256:
		p->type = TPM2_ALG_ECC;
		p->objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
		p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
		p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
		p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
		p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
		break;
	case TKMS_TPM_OBJECT_RSA_2048:
		p->type = TPM2_ALG_RSA;
		p->objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
		p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
		p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
		p->parameters.rsaDetail.keyBits = 2048;
		p->parameters.rsaDetail.exponent = 0;
		break;
	}
}

/* session: a salted session; the response is encrypted because the bytes may become key
 * material. */
static gboolean
get_random(TkmsTpmContext *ctx, ESYS_TR session, guint8 *out, gsize len, GError **error)
{
	gboolean ok = TRUE;

	tkms_tpm_set_session_crypt(ctx, session, FALSE, TRUE);
	for (gsize done = 0; ok && done < len;) {
		g_autofree TPM2B_DIGEST *rnd = NULL;
		TSS2_RC rc = Esys_GetRandom(ctx->esys, session, ESYS_TR_NONE, ESYS_TR_NONE,
					    MIN(len - done, 32), &rnd);
		ok = tkms_tpm_check(rc, "reading the TPM random number generator", error);
		if (ok) {
			memcpy(out + done, rnd->buffer, MIN(rnd->size, len - done));
			done += MIN(rnd->size, len - done);
			OPENSSL_cleanse(rnd->buffer, rnd->size);
		}
	}
	return ok;
}

static gboolean
create_func(TkmsTpmContext *ctx, gpointer data, GError **error)
{
	TkmsTpmCreate *req = data;
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl;
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION creation_pcr = {0};
	g_autofree TPM2B_PRIVATE *priv = NULL;
	g_autofree TPM2B_PUBLIC *pub = NULL;
	ESYS_TR session = ESYS_TR_NONE;
	guint8 sens_copy[TPM2_MAX_SYM_DATA / 2] = {0};
	TSS2_RC rc;

	fill_template(req->kind, &tmpl);
	if (req->kind == TKMS_TPM_OBJECT_SEALED) {
		g_return_val_if_fail(req->seal_size <= TPM2_MAX_SYM_DATA / 2, FALSE);
		/* one salted session carries the material from the RNG and back into Create */
		if (!tkms_tpm_start_hmac_session(ctx, &session, error))
			return FALSE;
		if (!get_random(ctx, session, sens.sensitive.data.buffer, req->seal_size, error))
			goto out_fail;
		sens.sensitive.data.size = req->seal_size;
		memcpy(sens_copy, sens.sensitive.data.buffer, req->seal_size);
		if (req->owner_auth &&
		    !seal_auth_value(ctx, req->owner, session, &sens.sensitive.userAuth, error))
			goto out_fail;
	}
	if (req->pcrs != 0) {
		g_autofree TPM2B_DIGEST *digest = NULL;
		ESYS_TR trial = ESYS_TR_NONE;
		if (!tkms_tpm_start_pcr_session(ctx, req->pcrs, TRUE, req->owner_auth, &trial,
						error))
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
	/* the sensitive data travels encrypted to the TPM */
	tkms_tpm_set_session_crypt(ctx, session, TRUE, FALSE);
	rc = Esys_Create(ctx->esys, ctx->srk, session, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
			 &outside, &creation_pcr, &priv, &pub, NULL, NULL, NULL);
	tkms_tpm_flush(ctx, &session);
	OPENSSL_cleanse(&sens, sizeof(sens));
	if (!tkms_tpm_check(rc, "creating a key", error)) {
		OPENSSL_cleanse(sens_copy, sizeof(sens_copy));
		return FALSE;
	}
	if (req->want_material)
		req->material = tkms_secret_new_from_data(sens_copy, req->seal_size);
	OPENSSL_cleanse(sens_copy, sizeof(sens_copy));
	req->out.public = marshal_public(pub);
	req->out.private = marshal_private(priv);
	return req->out.public != NULL && req->out.private != NULL;
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

	if (!load_object(ctx, &req->blob, req->untrusted_blob, &obj, error))
		return FALSE;
	if (req->owner_auth) {
		TPM2B_AUTH auth = {0};
		gboolean ok = tkms_tpm_start_hmac_session(ctx, &session, error) &&
			      seal_auth_value(ctx, req->owner, session, &auth, error);
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
	} else if (!object_session(ctx, req->pcrs, TRUE, &session, error)) {
		tkms_tpm_flush(ctx, &obj);
		return FALSE;
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

/* ---- sign / verify ---- */

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

static GBytes *
ecdsa_to_der(const TPMS_SIGNATURE_ECC *ecc)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(ecc->signatureR.buffer, ecc->signatureR.size, NULL);
	BIGNUM *s = BN_bin2bn(ecc->signatureS.buffer, ecc->signatureS.size, NULL);
	guint8 *der = NULL;
	int len;
	GBytes *out = NULL;

	ECDSA_SIG_set0(sig, r, s);
	len = i2d_ECDSA_SIG(sig, &der);
	if (len > 0)
		out = g_bytes_new(der, len);
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	return out;
}

static gboolean
der_to_ecdsa(GBytes *der, TPMS_SIGNATURE_ECC *ecc)
{
	gsize len = 0;
	const guint8 *p = g_bytes_get_data(der, &len);
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, len);
	const BIGNUM *r, *s;
	gboolean ok = FALSE;

	if (sig == NULL)
		return FALSE;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_num_bytes(r) <= 32 && BN_num_bytes(s) <= 32) {
		ecc->hash = TPM2_ALG_SHA256;
		ecc->signatureR.size = 32;
		ecc->signatureS.size = 32;
		ok = BN_bn2binpad(r, ecc->signatureR.buffer, 32) == 32 &&
		     BN_bn2binpad(s, ecc->signatureS.buffer, 32) == 32;
	}
	ECDSA_SIG_free(sig);
	return ok;
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

	sha256(req->data, &digest);
	if (!load_object(ctx, &req->blob, FALSE, &obj, error))
		return FALSE;
	/* a digest in, a signature out: nothing secret crosses the TPM bus */
	if (!object_session(ctx, req->pcrs, FALSE, &session, error)) {
		tkms_tpm_flush(ctx, &obj);
		return FALSE;
	}
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

static gboolean
verify_func(TkmsTpmContext *ctx, gpointer data, GError **error)
{
	TkmsTpmSign *req = data;
	ESYS_TR obj = ESYS_TR_NONE;
	TPM2B_DIGEST digest;
	TPMT_SIGNATURE sig = {0};
	g_autofree TPMT_TK_VERIFIED *ticket = NULL;
	TSS2_RC rc;

	req->valid = FALSE;
	if (req->kind == TKMS_TPM_OBJECT_ECC_P256) {
		sig.sigAlg = TPM2_ALG_ECDSA;
		if (!der_to_ecdsa(req->signature, &sig.signature.ecdsa))
			return TRUE; /* not even a signature: simply invalid */
	} else {
		gsize len = g_bytes_get_size(req->signature);
		if (len != 256)
			return TRUE;
		sig.sigAlg = TPM2_ALG_RSASSA;
		sig.signature.rsassa.hash = TPM2_ALG_SHA256;
		sig.signature.rsassa.sig.size = len;
		memcpy(sig.signature.rsassa.sig.buffer, g_bytes_get_data(req->signature, NULL),
		       len);
	}
	sha256(req->data, &digest);
	if (!load_object(ctx, &req->blob, FALSE, &obj, error))
		return FALSE;
	rc = Esys_VerifySignature(ctx->esys, obj, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				  &digest, &sig, &ticket);
	tkms_tpm_flush(ctx, &obj);
	if (rc == TSS2_RC_SUCCESS) {
		req->valid = TRUE;
		return TRUE;
	}
	/* a TPM "this signature is wrong" answer (SIGNATURE, or a bad r/s VALUE) is a result */
	switch (tkms_tpm_rc_base(rc)) {
	case TPM2_RC_SIGNATURE:
	case TPM2_RC_VALUE:
	case TPM2_RC_SIZE:
	case TPM2_RC_ECC_POINT:
		return TRUE;
	default:
		return tkms_tpm_check(rc, "verifying a signature", error);
	}
}

void
tkms_tpm_verify(TkmsTpm *self, guint32 uid, TkmsTpmSign *req, GCancellable *cancellable,
		GAsyncReadyCallback callback, gpointer user_data)
{
	tkms_tpm_submit(self, uid, verify_func, req, cancellable, callback, user_data);
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

	if (!load_object(ctx, &req->blob, FALSE, &obj, error))
		return FALSE;
	/* the message may be secret, and a MAC used for DeriveKey is key material */
	if (!object_session(ctx, req->pcrs, TRUE, &session, error)) {
		tkms_tpm_flush(ctx, &obj);
		return FALSE;
	}
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
	ok = get_random(ctx, session, buf, req->length, error);
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
