/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

/* TPM objects: templates, blobs on disk, loading and creating under the SRK. */

#include "tpm-object.h"

#include <openssl/crypto.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "tkms-error.h"
#include "tpm-object-cache.h"

#define OBJECT_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA)

static GBytes *
marshal_public(const TPM2B_PUBLIC *pub)
{
	guint8 buf[sizeof(TPM2B_PUBLIC)];
	size_t off = 0;
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
		return NULL;
	return g_bytes_new(buf, off);
}

/* bound: with the mark of a bound key version in front (tpm.h) */
static GBytes *
marshal_private(const TPM2B_PRIVATE *priv, gboolean bound)
{
	guint8 buf[4 + sizeof(TPM2B_PRIVATE)];
	size_t off = 0;
	if (bound) {
		memcpy(buf, TKMS_TPM_BOUND_MAGIC, 4);
		off = 4;
	}
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

	/* a bound key version's mark (tpm.h): the TPM2B_PRIVATE follows */
	if (tkms_tpm_blob_is_bound(blob)) {
		s += 4;
		slen -= 4;
	}
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

gboolean
tkms_tpm_load_object(TkmsTpmContext *ctx, const TkmsTpmBlob *blob, gboolean untrusted,
		     ESYS_TR *handle, GError **error)
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
	if (tkms_tpm_object_cache_relieve(ctx, rc))
		rc = Esys_Load(ctx->esys, ctx->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
			       &priv, &pub, handle);
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

void
tkms_tpm_fill_template(TkmsTpmObjectKind kind, TPM2B_PUBLIC *tmpl)
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

/* session: the shared session; the response is encrypted because the bytes become key
 * material or seed. */
gboolean
tkms_tpm_get_random(TkmsTpmContext *ctx, ESYS_TR session, guint8 *out, gsize len,
		    GError **error)
{
	gboolean ok = TRUE;

	for (gsize done = 0; ok && done < len;) {
		g_autofree TPM2B_DIGEST *rnd = NULL;
		TSS2_RC rc;

		/* a TPM answers at most its largest digest's size per command */
		tkms_tpm_set_session_crypt(ctx, session, FALSE, TRUE);
		rc = Esys_GetRandom(ctx->esys, session, ESYS_TR_NONE, ESYS_TR_NONE,
				    MIN(len - done, sizeof(TPMU_HA)), &rnd);
		ok = tkms_tpm_check(rc, "reading the TPM random number generator", error);
		if (ok && rnd->size == 0) {
			g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_FAILED,
					    "The TPM's random number generator gave no bytes; see "
					    "the daemon log");
			ok = FALSE;
		}
		if (ok) {
			memcpy(out + done, rnd->buffer, MIN(rnd->size, len - done));
			done += MIN(rnd->size, len - done);
			OPENSSL_cleanse(rnd->buffer, rnd->size);
		}
	}
	return ok;
}

gboolean
tkms_tpm_create_object(TkmsTpmContext *ctx, ESYS_TR session, const TPM2B_SENSITIVE_CREATE *sens,
		       const TPM2B_PUBLIC *tmpl, gboolean bound, TkmsTpmBlob *out,
		       GError **error)
{
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION creation_pcr = {0};
	g_autofree TPM2B_PRIVATE *priv = NULL;
	g_autofree TPM2B_PUBLIC *pub = NULL;
	TSS2_RC rc;

	/* the sensitive data travels encrypted to the TPM */
	tkms_tpm_set_session_crypt(ctx, session, TRUE, FALSE);
	rc = Esys_Create(ctx->esys, ctx->srk, session, ESYS_TR_NONE, ESYS_TR_NONE, sens, tmpl,
			 &outside, &creation_pcr, &priv, &pub, NULL, NULL, NULL);
	if (!tkms_tpm_check(rc, "creating a key", error))
		return FALSE;
	out->public = marshal_public(pub);
	out->private = marshal_private(priv, bound);
	if (out->public == NULL || out->private == NULL) {
		tkms_tpm_blob_clear(out);
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "Cannot store the new TPM object; see the daemon log");
		return FALSE;
	}
	return TRUE;
}
