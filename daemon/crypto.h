/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "secret.h"

G_BEGIN_DECLS

#define TKMS_GCM_IV_LEN 12
#define TKMS_GCM_TAG_LEN 16
#define TKMS_AES_KEY_LEN 32

/* AES-256-GCM; out must hold len bytes, tag TKMS_GCM_TAG_LEN. */
gboolean tkms_crypto_gcm_encrypt(TkmsSecret *key, const guint8 *iv, const guint8 *aad,
				 gsize aad_len, const guint8 *in, gsize len, guint8 *out,
				 guint8 *tag);
/* Returns FALSE on authentication failure (out is wiped then). */
gboolean tkms_crypto_gcm_decrypt(TkmsSecret *key, const guint8 *iv, const guint8 *aad,
				 gsize aad_len, const guint8 *in, gsize len, const guint8 *tag,
				 guint8 *out);
/* The same for many messages under one key: its schedule is set up once (a batch). NULL if the
 * key is not an AES-256 key. */
typedef struct _TkmsGcm TkmsGcm;
TkmsGcm *tkms_crypto_gcm_new(TkmsSecret *key, gboolean encrypt);
gboolean tkms_crypto_gcm_seal(TkmsGcm *gcm, const guint8 *iv, const guint8 *aad, gsize aad_len,
			      const guint8 *in, gsize len, guint8 *out, guint8 *tag);
gboolean tkms_crypto_gcm_open(TkmsGcm *gcm, const guint8 *iv, const guint8 *aad, gsize aad_len,
			      const guint8 *in, gsize len, const guint8 *tag, guint8 *out);
void tkms_crypto_gcm_free(TkmsGcm *gcm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsGcm, tkms_crypto_gcm_free)
gboolean tkms_crypto_random(guint8 *out, gsize len);
/* For secret values (data keys): OpenSSL's private DRBG, separate from the one behind public
 * values such as IVs. */
gboolean tkms_crypto_random_private(guint8 *out, gsize len);
/* Ends a job on a thread tkmsd does not own (GLib's pool behind g_task_run_in_thread()):
 * frees, and so wipes, the thread's OpenSSL state, its DRBGs above all, now rather than when
 * the pool lets the thread go, which may be never before exit. */
void tkms_crypto_thread_done(void);

/* RFC 5869 HKDF-Expand with SHA-256. */
GBytes *tkms_crypto_hkdf_expand(TkmsSecret *prk, const guint8 *info, gsize info_len,
				gsize length);

/* An ECDSA signature (r, s as big-endian integers) in DER, as Sign returns it; NULL if it
 * cannot be encoded. */
GBytes *tkms_crypto_ecdsa_der(const guint8 *r, gsize r_len, const guint8 *s, gsize s_len);

/* PEM SubjectPublicKeyInfo from a marshalled TPM2B_PUBLIC (ECC P-256 or RSA). */
gchar *tkms_crypto_public_pem(GBytes *tpm2b_public, GError **error);
/* Verifies a signature (SHA-256; ECDSA as strict DER, RSASSA-PKCS1-v1_5 of the modulus'
 * length) over data, or over the 32-byte digest data if prehashed, with the public key in a
 * marshalled TPM2B_PUBLIC: no TPM needed. *valid is FALSE for any signature that is not the
 * exact encoding of a valid one; high-S ECDSA signatures are valid (the TPM makes both forms).
 * FALSE with error only if the public key cannot be used. */
gboolean tkms_crypto_verify(GBytes *tpm2b_public, GBytes *data, gboolean prehashed,
			    GBytes *signature, gboolean *valid, GError **error);

G_END_DECLS
