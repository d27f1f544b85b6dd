/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "fuzz"

/* Verify and VerifyDigest (tkms_crypto_verify): the signature and the data are the caller's,
 * the public key is a stored TPM2B_PUBLIC (here make-seeds.py's fixed P-256 and RSA-2048 test
 * keys, marshalled as tkmsd stores them). Whatever the bytes, a signature verifies only if it
 * is the exact canonical encoding of a valid one (issue 9, defect 7): for ECDSA the DER that
 * OpenSSL writes for the (r, s) it parses, byte for byte, each in [1, n - 1]; for RSA the
 * modulus' length, opening to exactly the PKCS #1 v1.5 encoding of the SHA-256 digest. For
 * every signature that verifies, its spellings with a trailing byte, a long-form or indefinite
 * length, a padded integer or a wrong length must not, and the other S of an ECDSA signature
 * must (the TPM makes both). Only the signatures of the seed corpus verify, and in the plain
 * driver each of them must.
 *
 * Input: selector u8 (bit 0: the RSA key, else P-256; bit 1: the data is a digest) |
 * signature length u16 big-endian | signature | data. A digest that is not 32 bytes is
 * skipped: VerifyDigest refuses it before. */

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "crypto.h"
#include "fuzz-fail.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);
void tkms_fuzz_corpus_done(void);

#define SELECT_RSA	 1
#define SELECT_PREHASHED 2
#define RSA_LEN		 256

/* make-seeds.py prints these with the seeds it writes */
static const guint8 ecc_x[32] = {
	0x4f, 0x29, 0x72, 0x67, 0x10, 0x11, 0xc5, 0x7f, 0xb0, 0xbc, 0x89,
	0x55, 0x9a, 0x5d, 0x25, 0x0a, 0x28, 0x4d, 0x45, 0x2a, 0x24, 0x12,
	0x95, 0xe9, 0xcd, 0x7f, 0x72, 0xd4, 0x33, 0x64, 0x7c, 0xbe,
};
static const guint8 ecc_y[32] = {
	0x1c, 0x14, 0xda, 0xfc, 0x00, 0x60, 0x4c, 0xb0, 0xb8, 0x83, 0x31,
	0x45, 0xd3, 0x7e, 0x7b, 0xc3, 0x8d, 0xa0, 0xee, 0xfd, 0xbc, 0xeb,
	0xf7, 0x4c, 0xd7, 0x0c, 0x15, 0xd0, 0x99, 0x70, 0xb1, 0x9b,
};
static const guint8 rsa_n[256] = {
	0xd4, 0x27, 0x97, 0x7c, 0xa7, 0xb3, 0x66, 0x62, 0xc3, 0x31, 0xd2, 0x6c, 0x25, 0x3e, 0xce,
	0xac, 0xd0, 0xfa, 0x23, 0xce, 0x3c, 0xe1, 0x9a, 0x96, 0x41, 0x6e, 0x50, 0x4b, 0x0a, 0x81,
	0xae, 0x62, 0xc2, 0x5e, 0xa9, 0xc8, 0x2c, 0xc0, 0xa9, 0x77, 0x9e, 0xd5, 0x1f, 0xdc, 0x1f,
	0x8f, 0x01, 0x4d, 0x60, 0x8d, 0xd4, 0x18, 0x12, 0xb1, 0xdc, 0x77, 0xf9, 0xe1, 0x78, 0x15,
	0x6f, 0xdb, 0x5a, 0x46, 0x68, 0xc2, 0xc8, 0x67, 0x2f, 0xb6, 0x8d, 0xb9, 0x82, 0x27, 0x34,
	0xc7, 0x2a, 0xca, 0x05, 0x35, 0x08, 0x00, 0xa6, 0x4e, 0x2a, 0x0a, 0x94, 0xdf, 0xdf, 0x6f,
	0xd8, 0xc2, 0x32, 0x1b, 0x14, 0xd9, 0x01, 0xfd, 0x67, 0xd6, 0xea, 0x58, 0x39, 0x46, 0xdc,
	0xd6, 0xd8, 0x36, 0x41, 0xa5, 0x55, 0xb3, 0xa9, 0x51, 0x4b, 0xcb, 0x56, 0xdc, 0xdc, 0x50,
	0x6e, 0x41, 0x93, 0x03, 0x01, 0xd9, 0x36, 0xf5, 0xde, 0x67, 0x1b, 0x1e, 0x8e, 0xdc, 0x70,
	0x24, 0x24, 0xb6, 0x9d, 0xbb, 0x68, 0x63, 0xb4, 0xd5, 0xfb, 0x95, 0x3d, 0x34, 0x92, 0x01,
	0xb0, 0xc9, 0x6f, 0xbf, 0x46, 0xe6, 0xff, 0x4b, 0x1f, 0xf1, 0x73, 0xc2, 0x1b, 0xe6, 0x71,
	0x87, 0x39, 0xa2, 0x0c, 0xe0, 0xb6, 0x7a, 0xf5, 0x7a, 0xbf, 0xf6, 0xb3, 0xa2, 0x79, 0x0b,
	0x41, 0x45, 0x14, 0xa1, 0x85, 0xa2, 0x56, 0x17, 0x9a, 0xe5, 0xd1, 0xbd, 0x08, 0xd0, 0x35,
	0xa2, 0x3c, 0xf1, 0x51, 0x39, 0xa5, 0x56, 0x6e, 0xe9, 0x00, 0x5a, 0x0d, 0xe8, 0xa5, 0x75,
	0x99, 0xd3, 0x5b, 0xa5, 0xd2, 0xb6, 0x13, 0xb7, 0xa8, 0x6b, 0x31, 0xde, 0x84, 0xce, 0x64,
	0x19, 0x0b, 0x40, 0x65, 0x26, 0x70, 0x02, 0xff, 0x4e, 0x5b, 0x59, 0x79, 0x30, 0x00, 0xc8,
	0xf5, 0xb8, 0x84, 0x6e, 0xe4, 0xcc, 0x36, 0x1c, 0x7c, 0x93, 0x34, 0xf5, 0xe8, 0x4c, 0x88,
	0x5d,
};
/* SHA-256 of each signature that must verify */
static const guint8 valid_sha256[][32] = {
	{
		0xd1, 0xc9, 0x87, 0x3d, 0xb8, 0xbc, 0x11, 0xf2, 0x8f, 0xe5, 0x70,
		0x6a, 0xcc, 0xf4, 0xe1, 0x04, 0x93, 0x38, 0xa4, 0xac, 0x72, 0xbd,
		0x12, 0xad, 0xce, 0x8b, 0x1f, 0xb6, 0x8c, 0xf2, 0x04, 0x37,
	},
	{
		0x84, 0x6f, 0xa7, 0xb4, 0x6d, 0x05, 0x9b, 0x77, 0xc8, 0xe2, 0x22,
		0xe0, 0x4a, 0xa0, 0xf0, 0x89, 0x93, 0x32, 0xd1, 0x1a, 0x98, 0x86,
		0x08, 0xb8, 0xf6, 0xc0, 0x3e, 0x45, 0x99, 0x16, 0x59, 0xa1,
	},
	{
		0xed, 0xb3, 0x9f, 0x11, 0x91, 0x75, 0xc1, 0x27, 0x22, 0x1d, 0xe8,
		0x6e, 0x25, 0xcc, 0x19, 0x57, 0x7f, 0x4b, 0x48, 0x31, 0xf5, 0xf8,
		0xe0, 0x9a, 0x68, 0xcf, 0x60, 0x14, 0x53, 0x57, 0xf8, 0xf5,
	},
	{
		0x7e, 0x42, 0xca, 0xc2, 0xcc, 0x1d, 0xa7, 0x31, 0xa3, 0x03, 0xe9,
		0x17, 0x01, 0x4f, 0x9e, 0x5b, 0x0e, 0x80, 0xaf, 0x49, 0x9c, 0x61,
		0xd1, 0xde, 0x0b, 0x42, 0xc1, 0x32, 0xa0, 0xdd, 0x42, 0x5d,
	},
	{
		0x62, 0x87, 0x71, 0x0d, 0xb0, 0x10, 0x05, 0x1b, 0xde, 0xb6, 0x0f,
		0x7c, 0xa7, 0x88, 0x7a, 0xe6, 0x21, 0xe6, 0x0d, 0xef, 0x32, 0x54,
		0x62, 0x11, 0xcc, 0xaf, 0x83, 0xb6, 0xdf, 0xa2, 0x5b, 0x0d,
	},
	{
		0x10, 0x24, 0xda, 0xb1, 0x9c, 0x34, 0x63, 0x31, 0xe4, 0xe2, 0xe4,
		0x52, 0x09, 0x4a, 0xf3, 0xb1, 0xa1, 0xef, 0xe1, 0x05, 0x42, 0x4e,
		0xf9, 0xd0, 0x98, 0x5a, 0x7d, 0xc1, 0x18, 0x10, 0x02, 0x54,
	},
	{
		0xc5, 0xce, 0x31, 0x1c, 0x3b, 0x92, 0xa9, 0x53, 0x02, 0xc4, 0x09,
		0x7a, 0x76, 0x28, 0x68, 0xf7, 0xbb, 0xd8, 0x64, 0x22, 0x1f, 0xd4,
		0x96, 0x37, 0x48, 0x80, 0xa8, 0xd0, 0x87, 0xf0, 0x20, 0xda,
	},
};

/* DigestInfo of SHA-256 (RFC 8017 9.2, note 1) */
static const guint8 sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
				       0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

static GBytes *ecc_public, *rsa_public;
static EVP_PKEY *rsa_pkey; /* for the raw public operation */
static EC_GROUP *p256;
static guint seen; /* bit i: the signature of valid_sha256[i] verified */

/* A public area as tkms_tpm_fill_template() makes it, with the test key's public part. */
static GBytes *
marshal_public(gboolean rsa)
{
	TPM2B_PUBLIC pub = {0};
	TPMT_PUBLIC *p = &pub.publicArea;
	guint8 buf[sizeof(TPM2B_PUBLIC)];
	size_t off = 0;

	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA |
			      TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT |
			      TPMA_OBJECT_SENSITIVEDATAORIGIN;
	if (rsa) {
		p->type = TPM2_ALG_RSA;
		p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
		p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
		p->parameters.rsaDetail.keyBits = 2048;
		p->unique.rsa.size = sizeof(rsa_n);
		memcpy(p->unique.rsa.buffer, rsa_n, sizeof(rsa_n));
	} else {
		p->type = TPM2_ALG_ECC;
		p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
		p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
		p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
		p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
		p->unique.ecc.x.size = sizeof(ecc_x);
		memcpy(p->unique.ecc.x.buffer, ecc_x, sizeof(ecc_x));
		p->unique.ecc.y.size = sizeof(ecc_y);
		memcpy(p->unique.ecc.y.buffer, ecc_y, sizeof(ecc_y));
	}
	g_assert_cmpint(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, buf, sizeof(buf), &off), ==,
			TSS2_RC_SUCCESS);
	return g_bytes_new(buf, off);
}

static void
setup(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *pem = NULL;
	BIO *bio;

	if (ecc_public != NULL)
		return;
	ecc_public = marshal_public(FALSE);
	rsa_public = marshal_public(TRUE);
	pem = tkms_crypto_public_pem(rsa_public, &error);
	g_assert_no_error(error);
	bio = BIO_new_mem_buf(pem, -1);
	rsa_pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	g_assert_nonnull(rsa_pkey);
	g_assert_cmpint(EVP_PKEY_get_size(rsa_pkey), ==, RSA_LEN);
	p256 = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	g_assert_nonnull(p256);
}

static gboolean
verify(gboolean rsa, gboolean prehashed, const guint8 *sig, gsize sig_len, const guint8 *data,
       gsize len)
{
	g_autoptr(GBytes) sig_bytes = g_bytes_new(sig, sig_len);
	g_autoptr(GBytes) data_bytes = g_bytes_new(data, len);
	g_autoptr(GError) error = NULL;
	gboolean valid = TRUE;

	/* the key is good: any signature is an answer, never an error */
	g_assert_true(tkms_crypto_verify(rsa ? rsa_public : ecc_public, data_bytes, prehashed,
					 sig_bytes, &valid, &error));
	g_assert_no_error(error);
	return valid;
}

/* sig with bytes inserted at offset at, and n bytes from skip on dropped */
static GByteArray *
respell(const guint8 *sig, gsize len, gsize at, const guint8 *insert, gsize insert_len, gsize skip)
{
	GByteArray *out = g_byte_array_new();

	g_byte_array_append(out, sig, at);
	g_byte_array_append(out, insert, insert_len);
	g_byte_array_append(out, sig + at + skip, len - at - skip);
	return out;
}

static void
refused(gboolean rsa, gboolean prehashed, GByteArray *sig, const guint8 *data, gsize len,
	const gchar *what)
{
	gboolean valid = verify(rsa, prehashed, sig->data, sig->len, data, len);

	g_byte_array_unref(sig);
	if (valid) {
		g_printerr("a valid signature %s verifies too: ", what);
		tkms_fuzz_fail("not its exact encoding");
	}
}

static void
check_ecdsa(gboolean prehashed, const guint8 *sig, gsize sig_len, const guint8 *data, gsize len)
{
	const guint8 *q = sig;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)sig_len);
	const BIGNUM *r, *s, *order = EC_GROUP_get0_order(p256);
	BIGNUM *other = BN_new();
	guint8 *der = NULL, rb[32], sb[32];
	g_autoptr(GBytes) twin = NULL;
	int n;

	g_assert_nonnull(es);
	g_assert_true(q == sig + sig_len);
	n = i2d_ECDSA_SIG(es, &der);
	g_assert_cmpmem(der, n, sig, sig_len);
	OPENSSL_free(der);
	ECDSA_SIG_get0(es, &r, &s);
	g_assert_true(!BN_is_negative(r) && !BN_is_zero(r) && BN_cmp(r, order) < 0);
	g_assert_true(!BN_is_negative(s) && !BN_is_zero(s) && BN_cmp(s, order) < 0);

	/* sig is 30 L 02 Lr r 02 Ls s, all lengths short-form (at most 72 bytes) */
	g_assert_cmpuint(sig_len, <, 128);
	g_assert_cmpuint(sig[1] + 2, ==, sig_len);
	refused(FALSE, prehashed, respell(sig, sig_len, sig_len, (const guint8 *)"\0", 1, 0), data,
		len, "with a trailing byte");
	refused(FALSE, prehashed, respell(sig, sig_len, 1, (const guint8 *)"\x81", 1, 0), data, len,
		"with a long-form length");
	{
		GByteArray *ber = respell(sig, sig_len, 1, (const guint8 *)"\x80", 1, 1);
		g_byte_array_append(ber, (const guint8 *)"\0\0", 2);
		refused(FALSE, prehashed, ber, data, len, "with an indefinite length");
	}
	{
		/* 30 L+1 02 Lr+1 00 r ...: a needless leading zero */
		GByteArray *pad = respell(sig, sig_len, 4, (const guint8 *)"\0", 1, 0);
		pad->data[1]++;
		pad->data[3]++;
		refused(FALSE, prehashed, pad, data, len, "with a padded r");
	}
	{
		/* the trailing byte inside the SEQUENCE */
		GByteArray *inner = respell(sig, sig_len, sig_len, (const guint8 *)"\0", 1, 0);
		inner->data[1]++;
		refused(FALSE, prehashed, inner, data, len, "with a byte after s");
	}
	refused(FALSE, prehashed, respell(sig, sig_len, sig_len - 1, NULL, 0, 1), data, len,
		"cut short");

	/* (r, n - s) is the same signature in the other S form: valid too */
	g_assert_cmpint(BN_sub(other, order, s), ==, 1);
	g_assert_cmpint(BN_bn2binpad(r, rb, sizeof(rb)), ==, sizeof(rb));
	g_assert_cmpint(BN_bn2binpad(other, sb, sizeof(sb)), ==, sizeof(sb));
	twin = tkms_crypto_ecdsa_der(rb, sizeof(rb), sb, sizeof(sb));
	g_assert_nonnull(twin);
	g_assert_true(verify(FALSE, prehashed, g_bytes_get_data(twin, NULL), g_bytes_get_size(twin),
			     data, len));
	BN_free(other);
	ECDSA_SIG_free(es);
}

static void
check_rsa(gboolean prehashed, const guint8 *sig, gsize sig_len, const guint8 *data, gsize len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, rsa_pkey, NULL);
	guint8 em[RSA_LEN], want[RSA_LEN];
	gsize em_len = sizeof(em), ps = RSA_LEN - 3 - sizeof(sha256_prefix) - 32;

	g_assert_cmpuint(sig_len, ==, RSA_LEN);
	/* sig^e mod n, unpadded: exactly 00 01 FF.. 00 DigestInfo digest, nothing looser */
	g_assert_nonnull(ctx);
	g_assert_cmpint(EVP_PKEY_encrypt_init(ctx), ==, 1);
	g_assert_cmpint(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), ==, 1);
	g_assert_cmpint(EVP_PKEY_encrypt(ctx, em, &em_len, sig, sig_len), ==, 1);
	EVP_PKEY_CTX_free(ctx);
	want[0] = 0x00;
	want[1] = 0x01;
	memset(want + 2, 0xff, ps);
	want[2 + ps] = 0x00;
	memcpy(want + 3 + ps, sha256_prefix, sizeof(sha256_prefix));
	if (prehashed)
		memcpy(want + RSA_LEN - 32, data, 32);
	else
		g_assert_true(
			EVP_Digest(data, len, want + RSA_LEN - 32, NULL, EVP_sha256(), NULL) == 1);
	g_assert_cmpmem(em, em_len, want, sizeof(want));

	refused(TRUE, prehashed, respell(sig, sig_len, sig_len, (const guint8 *)"\0", 1, 0), data,
		len, "with a trailing byte");
	refused(TRUE, prehashed, respell(sig, sig_len, 0, (const guint8 *)"\0", 1, 0), data, len,
		"with a leading zero");
	refused(TRUE, prehashed, respell(sig, sig_len, 0, NULL, 0, 1), data, len,
		"without its first byte");
}

/* Verified: it must be one of the seeds' signatures. */
static void
check_known(const guint8 *sig, gsize sig_len)
{
	guint8 digest[32];

	g_assert_true(EVP_Digest(sig, sig_len, digest, NULL, EVP_sha256(), NULL) == 1);
	for (guint i = 0; i < G_N_ELEMENTS(valid_sha256); i++) {
		if (memcmp(digest, valid_sha256[i], sizeof(digest)) == 0) {
			seen |= 1u << i;
			return;
		}
	}
	tkms_fuzz_fail("a signature that is none of the seeds' verified");
}

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	gboolean rsa, prehashed;
	const guint8 *sig, *msg;
	gsize sig_len, msg_len;

	setup();
	if (size < 3)
		return 0;
	rsa = (data[0] & SELECT_RSA) != 0;
	prehashed = (data[0] & SELECT_PREHASHED) != 0;
	sig_len = (gsize)data[1] << 8 | data[2];
	if (size - 3 < sig_len)
		return 0;
	sig = data + 3;
	msg = sig + sig_len;
	msg_len = size - 3 - sig_len;
	if (prehashed && msg_len != 32)
		return 0;
	if (!verify(rsa, prehashed, sig, sig_len, msg, msg_len))
		return 0;
	check_known(sig, sig_len);
	if (rsa)
		check_rsa(prehashed, sig, sig_len, msg, msg_len);
	else
		check_ecdsa(prehashed, sig, sig_len, msg, msg_len);
	return 0;
}

/* The plain driver, after the seed corpus: every valid signature in it verified. */
void
tkms_fuzz_corpus_done(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(valid_sha256); i++)
		if ((seen & (1u << i)) == 0)
			tkms_fuzz_fail("a valid signature of the seed corpus did not verify");
}
