/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-crypto"

/* Software crypto on key material that the TPM has just unsealed, and format conversions. */

#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "tkms-error.h"

struct _TkmsGcm {
	EVP_CIPHER_CTX *ctx;
	gboolean encrypt;
};

TkmsGcm *
tkms_crypto_gcm_new(TkmsSecret *key, gboolean encrypt)
{
	TkmsGcm *gcm;
	EVP_CIPHER_CTX *ctx;

	if (tkms_secret_get_len(key) != TKMS_AES_KEY_LEN || (ctx = EVP_CIPHER_CTX_new()) == NULL)
		return NULL;
	/* the key schedule now, the IV per message */
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, tkms_secret_get_data(key), NULL,
			      encrypt) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	gcm = g_new0(TkmsGcm, 1);
	gcm->ctx = ctx;
	gcm->encrypt = encrypt;
	return gcm;
}

void
tkms_crypto_gcm_free(TkmsGcm *gcm)
{
	if (gcm == NULL)
		return;
	/* cleanses the key schedule */
	EVP_CIPHER_CTX_free(gcm->ctx);
	g_free(gcm);
}

static gboolean
gcm_one(TkmsGcm *gcm, const guint8 *iv, const guint8 *aad, gsize aad_len, const guint8 *in,
	gsize len, guint8 *out, guint8 *tag)
{
	EVP_CIPHER_CTX *ctx = gcm->ctx;
	gboolean enc = gcm->encrypt;
	int n = 0;
	gboolean ok;

	ok = EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, enc) == 1 &&
	     (aad_len == 0 || EVP_CipherUpdate(ctx, NULL, &n, aad, aad_len) == 1);
	for (gsize off = 0; ok && off < len;) {
		int chunk = (int)MIN(len - off, 1 << 20);
		ok = EVP_CipherUpdate(ctx, out + off, &n, in + off, chunk) == 1;
		off += chunk;
	}
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TKMS_GCM_TAG_LEN,
					 (void *)tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(ctx, out + len, &n) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TKMS_GCM_TAG_LEN, tag) == 1;
	if (!ok && len > 0)
		OPENSSL_cleanse(out, len);
	return ok;
}

gboolean
tkms_crypto_gcm_seal(TkmsGcm *gcm, const guint8 *iv, const guint8 *aad, gsize aad_len,
		     const guint8 *in, gsize len, guint8 *out, guint8 *tag)
{
	g_return_val_if_fail(gcm->encrypt, FALSE);
	return gcm_one(gcm, iv, aad, aad_len, in, len, out, tag);
}

gboolean
tkms_crypto_gcm_open(TkmsGcm *gcm, const guint8 *iv, const guint8 *aad, gsize aad_len,
		     const guint8 *in, gsize len, const guint8 *tag, guint8 *out)
{
	g_return_val_if_fail(!gcm->encrypt, FALSE);
	return gcm_one(gcm, iv, aad, aad_len, in, len, out, (guint8 *)tag);
}

static gboolean
gcm_run(gboolean enc, TkmsSecret *key, const guint8 *iv, const guint8 *aad, gsize aad_len,
	const guint8 *in, gsize len, guint8 *out, guint8 *tag)
{
	TkmsGcm *gcm = tkms_crypto_gcm_new(key, enc);
	gboolean ok = gcm != NULL && gcm_one(gcm, iv, aad, aad_len, in, len, out, tag);

	tkms_crypto_gcm_free(gcm);
	if (!ok && len > 0)
		OPENSSL_cleanse(out, len);
	return ok;
}

gboolean
tkms_crypto_gcm_encrypt(TkmsSecret *key, const guint8 *iv, const guint8 *aad, gsize aad_len,
			const guint8 *in, gsize len, guint8 *out, guint8 *tag)
{
	return gcm_run(TRUE, key, iv, aad, aad_len, in, len, out, tag);
}

gboolean
tkms_crypto_gcm_decrypt(TkmsSecret *key, const guint8 *iv, const guint8 *aad, gsize aad_len,
			const guint8 *in, gsize len, const guint8 *tag, guint8 *out)
{
	return gcm_run(FALSE, key, iv, aad, aad_len, in, len, out, (guint8 *)tag);
}

gboolean
tkms_crypto_random(guint8 *out, gsize len)
{
	return RAND_bytes(out, (int)len) == 1;
}

gboolean
tkms_crypto_random_private(guint8 *out, gsize len)
{
	return RAND_priv_bytes(out, (int)len) == 1;
}

void
tkms_crypto_thread_done(void)
{
	/* the next job on this thread gets fresh DRBGs, seeded from the primary one */
	OPENSSL_thread_stop();
}

GBytes *
tkms_crypto_hkdf_expand(TkmsSecret *prk, const guint8 *info, gsize info_len, gsize length)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[5];
	guint8 *out;
	GBytes *okm = tkms_secret_bytes_new(length, &out); /* a derived key: wiped when freed */
	gboolean ok;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						      tkms_secret_get_data(prk),
						      tkms_secret_get_len(prk));
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
						      info_len);
	params[4] = OSSL_PARAM_construct_end();
	ok = kctx != NULL && EVP_KDF_derive(kctx, out, length, params) == 1;
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	if (!ok) {
		g_bytes_unref(okm);
		return NULL;
	}
	return okm;
}

static EVP_PKEY *
pkey_from_public(const TPMT_PUBLIC *pub)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *n = NULL, *e = NULL;
	guint8 point[1 + 2 * 32];

	if (pub->type == TPM2_ALG_ECC) {
		const TPMS_ECC_POINT *ecc = &pub->unique.ecc;
		if (ecc->x.size != 32 || ecc->y.size != 32)
			goto out;
		point[0] = 0x04; /* uncompressed */
		memcpy(point + 1, ecc->x.buffer, 32);
		memcpy(point + 33, ecc->y.buffer, 32);
		OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
		OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
						 sizeof(point));
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	} else if (pub->type == TPM2_ALG_RSA) {
		guint32 exp = pub->parameters.rsaDetail.exponent;
		n = BN_bin2bn(pub->unique.rsa.buffer, pub->unique.rsa.size, NULL);
		e = BN_new();
		BN_set_word(e, exp != 0 ? exp : 65537);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
		OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	} else {
		goto out;
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	if (ctx == NULL || params == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(n);
	BN_free(e);
	return pkey;
}

static EVP_PKEY *
pkey_from_blob(GBytes *tpm2b_public, GError **error)
{
	TPM2B_PUBLIC pub = {0};
	size_t off = 0;
	gsize len = 0;
	const guint8 *p = tpm2b_public ? g_bytes_get_data(tpm2b_public, &len) : NULL;
	EVP_PKEY *pkey = NULL;

	if (p != NULL && Tss2_MU_TPM2B_PUBLIC_Unmarshal(p, len, &off, &pub) == TSS2_RC_SUCCESS)
		pkey = pkey_from_public(&pub.publicArea);
	if (pkey == NULL)
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "The stored public key cannot be converted; the key metadata "
				    "may be damaged");
	return pkey;
}

/* Exactly the canonical DER of an ECDSA-Sig-Value: d2i_ECDSA_SIG alone would accept trailing
 * bytes and (in some versions) non-minimal lengths, which would give one signature many
 * accepted spellings. */
static gboolean
ecdsa_der_is_strict(const guint8 *sig, gsize len)
{
	const guint8 *p = sig;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
	guint8 *der = NULL;
	int n;
	gboolean ok;

	if (es == NULL)
		return FALSE;
	n = i2d_ECDSA_SIG(es, &der);
	ok = p == sig + len && n > 0 && (gsize)n == len && memcmp(der, sig, len) == 0;
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return ok;
}

gboolean
tkms_crypto_verify(GBytes *tpm2b_public, GBytes *data, gboolean prehashed, GBytes *signature,
		   gboolean *valid, GError **error)
{
	g_autoptr(GError) local = NULL;
	EVP_PKEY *pkey = pkey_from_blob(tpm2b_public, &local);
	EVP_PKEY_CTX *ctx = NULL;
	guint8 digest[32];
	gsize sig_len = 0, len = 0;
	const guint8 *sig = g_bytes_get_data(signature, &sig_len);
	const guint8 *p = data ? g_bytes_get_data(data, &len) : NULL;
	gboolean is_rsa;

	*valid = FALSE;
	if (pkey == NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	is_rsa = EVP_PKEY_is_a(pkey, "RSA");
	if (prehashed) {
		g_assert(len == sizeof(digest));
		memcpy(digest, p, sizeof(digest));
	} else if (EVP_Digest(p != NULL ? p : (const guint8 *)"", len, digest, NULL, EVP_sha256(),
			      NULL) != 1) {
		goto fail;
	}
	/* anything but the exact encoding is not a signature: an answer (FALSE), not an error */
	if (sig == NULL || (is_rsa ? sig_len != (gsize)EVP_PKEY_get_size(pkey)
				   : !ecdsa_der_is_strict(sig, sig_len))) {
		EVP_PKEY_free(pkey);
		return TRUE;
	}
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1 ||
	    (is_rsa && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1))
		goto fail;
	/* 1 valid, 0 invalid, < 0 malformed (e.g. r or s out of range): all but 1 are FALSE;
	 * both S forms of ECDSA verify, as in the TPM, which makes either */
	*valid = EVP_PKEY_verify(ctx, sig, sig_len, digest, sizeof(digest)) == 1;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return TRUE;
fail:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "Signature verification could not run in OpenSSL");
	return FALSE;
}

gchar *
tkms_crypto_public_pem(GBytes *tpm2b_public, GError **error)
{
	EVP_PKEY *pkey = pkey_from_blob(tpm2b_public, error);
	BIO *bio = NULL;
	gchar *pem = NULL;
	char *data;
	long n;

	if (pkey == NULL)
		return NULL;
	bio = BIO_new(BIO_s_mem());
	if (PEM_write_bio_PUBKEY(bio, pkey) == 1) {
		n = BIO_get_mem_data(bio, &data);
		pem = g_strndup(data, n);
	}
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	if (pem == NULL)
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "Cannot encode the public key as PEM");
	return pem;
}

GBytes *
tkms_crypto_ecdsa_der(const guint8 *r, gsize r_len, const guint8 *s, gsize s_len)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *bn_r = BN_bin2bn(r, r_len, NULL);
	BIGNUM *bn_s = BN_bin2bn(s, s_len, NULL);
	guint8 *der = NULL;
	int len;
	GBytes *out = NULL;

	ECDSA_SIG_set0(sig, bn_r, bn_s);
	len = i2d_ECDSA_SIG(sig, &der);
	if (len > 0)
		out = g_bytes_new(der, len);
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	return out;
}
