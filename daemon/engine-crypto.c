/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-engine"

/* Encrypt, Decrypt (AES-256-GCM in OpenSSL on briefly unsealed keys), Verify, VerifyDigest (in
 * OpenSSL on the stored public key), and Sign, SignDigest, Hmac, VerifyHmac, DeriveKey (in the
 * TPM). Inputs are the caller's bytes, shared, not copied. */

#include <openssl/crypto.h>
#include <string.h>

#include "ciphertext.h"
#include "crypto.h"
#include "engine-private.h"

/* Above this, AES-GCM runs in a worker thread rather than on the main loop. */
#define INLINE_CRYPTO_MAX (64 * 1024)
#define DERIVE_LABEL "tkms-derive-v1"
#define DERIVE_CONTEXT_MAX 1024
#define DERIVE_LENGTH_MAX (255 * 32)
#define SHA256_DIGEST_LEN 32

/* ---- key material: cache, else unseal in the TPM ---- */

typedef struct {
	TkmsEngineOp *op;
	TkmsTpmUnseal req;
	guint32 version;
	TkmsEngineWithSecretFunc then;
} UnsealData;

static void
unseal_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	UnsealData *d = user_data;
	TkmsEngineOp *op = d->op;
	GError *error = NULL;
	TkmsSecret *secret = d->req.out;
	gboolean ok = tkms_tpm_finish(TKMS_TPM(source), res, &error);

	tkms_tpm_blob_clear(&d->req.blob);
	d->req.out = NULL;
	if (!ok) {
		g_clear_pointer(&secret, tkms_secret_unref);
		tkms_engine_op_fail(op, error);
	} else {
		tkms_key_cache_insert(op->engine->keycache, op->k->owner, op->k->name,
				      d->version, secret);
		d->then(op, secret);
		tkms_secret_unref(secret);
	}
	g_free(d);
}

void
tkms_engine_op_with_key_material(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v,
				 TkmsEngineWithSecretFunc then)
{
	g_autoptr(TkmsSecret) secret =
		tkms_key_cache_lookup(op->engine->keycache, key->owner, key->name, v->version);
	UnsealData *d;

	if (secret != NULL) {
		then(op, secret);
		return;
	}
	d = g_new0(UnsealData, 1);
	d->op = op;
	d->version = v->version;
	d->then = then;
	tkms_tpm_blob_copy(&d->req.blob, &v->blob);
	tkms_tpm_key_id_set(&d->req.key_id, key->owner, key->name, v->version);
	d->req.pcrs = key->pcrs;
	tkms_tpm_unseal(op->engine->tpm, op->actor.uid, &d->req,
			tkms_engine_op_get_cancellable(op), unseal_cb, d);
}

/* ---- AES-GCM job ---- */

typedef struct {
	gboolean encrypt;
	TkmsSecret *key;
	GBytes *input; /* plaintext, or the whole ciphertext */
	GBytes *aad;
	TkmsCiphertext ct;
	guint32 version;
	GBytes *output;
} GcmJob;

static void
gcm_job_free(gpointer data)
{
	GcmJob *job = data;
	tkms_secret_unref(job->key);
	g_bytes_unref(job->input);
	g_clear_pointer(&job->aad, g_bytes_unref);
	g_clear_pointer(&job->output, g_bytes_unref);
	g_free(job);
}

static gboolean
gcm_job_run(GcmJob *job)
{
	gsize len = 0, aad_len = 0;
	const guint8 *in = g_bytes_get_data(job->input, &len);
	const guint8 *aad = g_bytes_get_data(job->aad, &aad_len);
	guint8 *out;

	if (job->encrypt) {
		gsize total = len + TKMS_CT_OVERHEAD;
		guint8 *iv;
		out = g_malloc(total);
		tkms_ciphertext_write_header(out, job->version);
		iv = out + TKMS_CT_HEADER_LEN;
		if (!tkms_crypto_random(iv, TKMS_GCM_IV_LEN) ||
		    !tkms_crypto_gcm_encrypt(job->key, iv, aad, aad_len, in, len,
					     iv + TKMS_GCM_IV_LEN, out + total - TKMS_GCM_TAG_LEN)) {
			g_free(out);
			return FALSE;
		}
		job->output = g_bytes_new_take(out, total);
		return TRUE;
	}
	/* the plaintext is wiped when the reply no longer needs it (also when the tag fails:
	 * what came out before is unauthenticated plaintext) */
	job->output = tkms_secret_bytes_new(job->ct.body_len, &out);
	if (!tkms_crypto_gcm_decrypt(job->key, job->ct.iv, aad, aad_len, job->ct.body,
				     job->ct.body_len, job->ct.tag, out)) {
		g_clear_pointer(&job->output, g_bytes_unref);
		return FALSE;
	}
	return TRUE;
}

static void
gcm_finish(TkmsEngineOp *op, GcmJob *job, gboolean ok)
{
	if (!ok && job->encrypt) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_FAILED,
				       "Encryption failed; see the daemon log");
	} else if (!ok) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_INTEGRITY_FAILURE,
				       "The ciphertext does not authenticate: it was changed, or "
				       "belongs to another key, user or context");
	} else {
		tkms_engine_op_return_bytes(op, job->output);
	}
}

static void
gcm_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	gboolean ok = gcm_job_run(data);

	tkms_crypto_thread_done();
	g_task_return_boolean(task, ok);
}

static void
gcm_thread_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	GcmJob *job = g_task_get_task_data(G_TASK(res));
	gcm_finish(op, job, g_task_propagate_boolean(G_TASK(res), NULL));
}

static void
gcm_start(TkmsEngineOp *op, TkmsSecret *secret)
{
	GcmJob *job = op->data;
	g_autoptr(GTask) task = NULL;

	job->key = tkms_secret_ref(secret);
	if (g_bytes_get_size(job->input) <= INLINE_CRYPTO_MAX) {
		gcm_finish(op, job, gcm_job_run(job));
		return;
	}
	/* the task holds the job; the op keeps none so that it is freed exactly once */
	op->data = NULL;
	op->data_free = NULL;
	task = g_task_new(NULL, NULL, gcm_thread_done, op);
	g_task_set_task_data(task, job, gcm_job_free);
	g_task_run_in_thread(task, gcm_thread);
}

/* The primary v is counted: encrypt under it. */
static void
encrypt_with(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v)
{
	GcmJob *job = op->data;
	g_autoptr(GBytes) context = job->aad;
	guint8 header[TKMS_CT_HEADER_LEN];

	job->version = v->version;
	tkms_ciphertext_write_header(header, v->version);
	job->aad = tkms_ciphertext_aad(header, key->owner, key->name,
				       g_bytes_get_data(context, NULL), g_bytes_get_size(context));
	tkms_engine_op_with_key_material(op, key, v, gcm_start);
}

void
tkms_engine_encrypt(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref,
		    GBytes *pt, GBytes *context, GCancellable *cancellable,
		    GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op =
		tkms_engine_op_new(self, "Encrypt", actor, ref, cancellable, callback, user_data);
	TkmsKey *key;
	GcmJob *job;

	if ((key = tkms_engine_op_lookup_key(op)) == NULL ||
	    !tkms_engine_op_require_type(op, key, TKMS_KEY_TYPE_AES_256_GCM,
					 TKMS_KEY_TYPE_AES_256_GCM, "an aes-256-gcm") ||
	    !tkms_engine_op_check_payload(op, "plaintext", g_bytes_get_size(pt), FALSE) ||
	    !tkms_engine_op_check_payload(op, "context", g_bytes_get_size(context), TRUE))
		return;
	job = g_new0(GcmJob, 1);
	job->encrypt = TRUE;
	job->input = g_bytes_ref(pt);
	/* until the version is known, aad holds the context */
	job->aad = g_bytes_ref(context);
	tkms_engine_op_set_data(op, job, gcm_job_free);
	tkms_engine_op_use_primary(op, key, encrypt_with);
}

TkmsKeyVersion *
tkms_engine_op_open_ciphertext(TkmsEngineOp *op, GBytes *ctb, GBytes *context,
			       TkmsCiphertext *ct)
{
	gsize len = g_bytes_get_size(ctb);
	TkmsKeyVersion *v;
	TkmsKey *key;

	if ((key = tkms_engine_op_lookup_key(op)) == NULL ||
	    !tkms_engine_op_require_type(op, key, TKMS_KEY_TYPE_AES_256_GCM,
					 TKMS_KEY_TYPE_AES_256_GCM, "an aes-256-gcm") ||
	    !tkms_engine_op_check_payload(op, "ciphertext", len - MIN(len, TKMS_CT_OVERHEAD),
					  TRUE) ||
	    !tkms_engine_op_check_payload(op, "context", g_bytes_get_size(context), TRUE))
		return NULL;
	if (!tkms_ciphertext_parse(g_bytes_get_data(ctb, NULL), g_bytes_get_size(ctb), ct)) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_INVALID_ARGUMENT,
					    "This is not a tkms ciphertext (bad header or too "
					    "short); pass the exact output of Encrypt");
		return NULL;
	}
	op->version = ct->version;
	v = tkms_key_get_version(key, ct->version);
	if (v == NULL) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_INTEGRITY_FAILURE,
					    "The ciphertext names a version this key does not "
					    "have: it was changed or belongs to another key");
		return NULL;
	}
	if (!tkms_engine_op_check_processing(op, key, v))
		return NULL;
	return v;
}

void
tkms_engine_decrypt(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref,
		    GBytes *ctb, GBytes *context, GCancellable *cancellable,
		    GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op =
		tkms_engine_op_new(self, "Decrypt", actor, ref, cancellable, callback, user_data);
	TkmsCiphertext ct;
	TkmsKey *key;
	TkmsKeyVersion *v;
	GcmJob *job;

	if ((v = tkms_engine_op_open_ciphertext(op, ctb, context, &ct)) == NULL)
		return;
	key = op->k;
	job = g_new0(GcmJob, 1);
	job->input = g_bytes_ref(ctb);
	job->ct = ct;
	job->aad = tkms_ciphertext_aad(ct.header, key->owner, key->name,
				       g_bytes_get_data(context, NULL), g_bytes_get_size(context));
	tkms_engine_op_set_data(op, job, gcm_job_free);
	tkms_engine_op_with_key_material(op, key, v, gcm_start);
}

/* ---- sign / verify ---- */

typedef struct {
	TkmsTpmSign req;
	GArray *candidates; /* verify: versions (guint32) still to try, newest first */
} SignData;

static void
sign_free(gpointer data)
{
	SignData *d = data;
	tkms_tpm_blob_clear(&d->req.blob);
	g_clear_pointer(&d->req.data, g_bytes_unref);
	g_clear_pointer(&d->req.signature, g_bytes_unref);
	g_clear_pointer(&d->candidates, g_array_unref);
	g_free(d);
}

/* Verify, VerifyHmac: takes the next of the versions still to try (newest first) for the
 * op's request: its blob and id; FALSE if none is left. */
static gboolean
next_candidate(TkmsEngineOp *op, GArray *candidates, TkmsTpmBlob *blob, TkmsTpmKeyId *key_id)
{
	TkmsKeyVersion *v;

	if (candidates == NULL || candidates->len == 0)
		return FALSE;
	v = tkms_key_get_version(op->k, g_array_index(candidates, guint32, 0));
	g_array_remove_index(candidates, 0);
	op->version = v->version;
	if (g_str_equal(v->state, TKMS_STATE_COMPROMISED))
		tkms_engine_op_note_compromised(op, v->version);
	tkms_tpm_blob_clear(blob);
	tkms_tpm_blob_copy(blob, &v->blob);
	tkms_tpm_key_id_set(key_id, op->k->owner, op->k->name, v->version);
	return TRUE;
}

/* A match: with a compromised version, the record says it was used. */
static void
verified_with(TkmsEngineOp *op)
{
	TkmsKeyVersion *v = tkms_key_get_version(op->k, op->version);
	if (v != NULL && g_str_equal(v->state, TKMS_STATE_COMPROMISED))
		op->warning = "compromised key version used";
}

static void sign_compromised(TkmsEngineOp *op, GArray *versions);

/* Verify, VerifyDigest: a public operation, so it runs here in OpenSSL on the stored public
 * keys (DESIGN.md "TPM usage"), without the TPM worker: the version in the request first,
 * then the candidates left, newest first; then, if an admin says so, the compromised ones. */
static void
verify_versions(TkmsEngineOp *op, SignData *d)
{
	GError *error = NULL;
	gboolean valid = FALSE;

	for (;;) {
		if (!tkms_crypto_verify(d->req.blob.public, d->req.data, d->req.prehashed,
					d->req.signature, &valid, &error)) {
			tkms_engine_op_fail(op, error);
			return;
		}
		if (valid || !next_candidate(op, d->candidates, &d->req.blob, &d->req.key_id))
			break;
	}
	if (valid)
		verified_with(op);
	else if (tkms_engine_op_ask_compromised(op, sign_compromised))
		return;
	tkms_engine_op_return_boolean(op, valid);
}

/* After the question for admin: the compromised versions to try, or NULL (no match). */
static void
sign_compromised(TkmsEngineOp *op, GArray *versions)
{
	SignData *d = op->data;

	g_clear_pointer(&d->candidates, g_array_unref);
	d->candidates = versions;
	if (!next_candidate(op, d->candidates, &d->req.blob, &d->req.key_id)) {
		tkms_engine_op_return_boolean(op, FALSE);
		return;
	}
	verify_versions(op, d);
}

static void
sign_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	SignData *d = op->data;

	if (!tkms_engine_op_tpm_finish(op, res))
		return;
	tkms_engine_op_return_bytes(op, d->req.signature);
}

static void
sign_set_version(SignData *d, TkmsKey *key, TkmsKeyVersion *v)
{
	tkms_tpm_blob_clear(&d->req.blob);
	tkms_tpm_blob_copy(&d->req.blob, &v->blob);
	tkms_tpm_key_id_set(&d->req.key_id, key->owner, key->name, v->version);
	d->req.pcrs = key->pcrs;
	d->req.kind = tkms_key_type_object_kind(key->type);
}

/* The primary v is counted: sign with it. */
static void
sign_with(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v)
{
	SignData *d = op->data;

	sign_set_version(d, key, v);
	tkms_tpm_sign(op->engine->tpm, op->actor.uid, &d->req, tkms_engine_op_get_cancellable(op),
		      sign_cb, op);
}

/* signature NULL: sign. digest: data is a SHA-256 digest the caller computed. */
static void
sign_or_verify(TkmsEngineOp *op, GBytes *data, GBytes *signature, gboolean digest)
{
	TkmsKey *key;
	TkmsKeyVersion *v;
	SignData *d;
	GArray *candidates = NULL;

	if ((key = tkms_engine_op_lookup_key(op)) == NULL ||
	    !tkms_engine_op_require_type(op, key, TKMS_KEY_TYPE_ECDSA_P256,
					 TKMS_KEY_TYPE_RSA_2048, "an ecdsa-p256 or rsa-2048") ||
	    !tkms_engine_op_check_payload(op, "data", g_bytes_get_size(data), TRUE))
		return;
	if (digest && g_bytes_get_size(data) != SHA256_DIGEST_LEN) {
		tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
						    "The digest is %" G_GSIZE_FORMAT " bytes; pass "
						    "the 32-byte SHA-256 digest of the message",
						    g_bytes_get_size(data)));
		return;
	}
	if (signature != NULL &&
	    !tkms_engine_op_check_payload(op, "signature", g_bytes_get_size(signature), TRUE))
		return;
	d = g_new0(SignData, 1);
	d->req.data = g_bytes_ref(data);
	d->req.prehashed = digest;
	tkms_engine_op_set_data(op, d, sign_free);
	if (signature == NULL) {
		tkms_engine_op_use_primary(op, key, sign_with);
		return;
	}
	if ((v = tkms_engine_op_verify_versions(op, key, &candidates)) == NULL)
		return;
	d->candidates = candidates;
	d->req.signature = g_bytes_ref(signature);
	sign_set_version(d, key, v);
	verify_versions(op, d);
}

void
tkms_engine_sign(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key, GBytes *data,
		 GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	sign_or_verify(
		tkms_engine_op_new(self, "Sign", actor, key, cancellable, callback, user_data),
		data, NULL, FALSE);
}

void
tkms_engine_verify(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
		   GBytes *data, GBytes *signature, GCancellable *cancellable,
		   GAsyncReadyCallback callback, gpointer user_data)
{
	sign_or_verify(
		tkms_engine_op_new(self, "Verify", actor, key, cancellable, callback, user_data),
		data, signature, FALSE);
}

void
tkms_engine_sign_digest(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			GBytes *digest, GCancellable *cancellable, GAsyncReadyCallback callback,
			gpointer user_data)
{
	sign_or_verify(tkms_engine_op_new(self, "SignDigest", actor, key, cancellable, callback,
					  user_data),
		       digest, NULL, TRUE);
}

void
tkms_engine_verify_digest(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			  GBytes *digest, GBytes *signature, GCancellable *cancellable,
			  GAsyncReadyCallback callback, gpointer user_data)
{
	sign_or_verify(tkms_engine_op_new(self, "VerifyDigest", actor, key, cancellable, callback,
					  user_data),
		       digest, signature, TRUE);
}

/* ---- hmac, verify-hmac, derive ---- */

typedef enum { HMAC_RETURN, HMAC_VERIFY, HMAC_DERIVE } HmacUse;

typedef struct {
	TkmsTpmHmac req;
	HmacUse use;
	GArray *candidates; /* verify: versions (guint32) still to try, newest first */
	GBytes *expected; /* verify */
	GBytes *info;	  /* derive */
	guint32 length;	  /* derive */
} HmacData;

static void
hmac_data_free(gpointer data)
{
	HmacData *d = data;
	tkms_tpm_blob_clear(&d->req.blob);
	g_clear_pointer(&d->req.data, g_bytes_unref);
	g_clear_pointer(&d->req.out, tkms_secret_unref);
	g_clear_pointer(&d->expected, g_bytes_unref);
	g_clear_pointer(&d->info, g_bytes_unref);
	g_clear_pointer(&d->candidates, g_array_unref);
	g_free(d);
}

static void hmac_start(TkmsEngineOp *op, HmacData *d);

/* VerifyHmac: tries the next version whose state allows processing; FALSE if none is left. */
static gboolean
hmac_next_version(TkmsEngineOp *op, HmacData *d)
{
	if (!next_candidate(op, d->candidates, &d->req.blob, &d->req.key_id))
		return FALSE;
	g_clear_pointer(&d->req.out, tkms_secret_unref);
	hmac_start(op, d);
	return TRUE;
}

static void
hmac_compromised(TkmsEngineOp *op, GArray *versions)
{
	HmacData *d = op->data;

	if (versions == NULL) {
		tkms_engine_op_return_boolean(op, FALSE);
		return;
	}
	g_clear_pointer(&d->candidates, g_array_unref);
	d->candidates = versions;
	hmac_next_version(op, d);
}

static void
hmac_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	HmacData *d = op->data;
	TkmsSecret *mac;
	gsize len;

	if (!tkms_engine_op_tpm_finish(op, res))
		return;
	mac = d->req.out;
	len = tkms_secret_get_len(mac);
	if (d->use == HMAC_VERIFY) {
		gboolean valid = g_bytes_get_size(d->expected) == len &&
				 CRYPTO_memcmp(g_bytes_get_data(d->expected, NULL),
					       tkms_secret_get_data(mac), len) == 0;
		if (!valid && (hmac_next_version(op, d) ||
			       tkms_engine_op_ask_compromised(op, hmac_compromised)))
			return;
		if (valid)
			verified_with(op);
		tkms_engine_op_return_boolean(op, valid);
	} else if (d->use == HMAC_DERIVE) {
		g_autoptr(GBytes) okm = tkms_crypto_hkdf_expand(
			mac, g_bytes_get_data(d->info, NULL), g_bytes_get_size(d->info), d->length);
		if (okm == NULL)
			tkms_engine_op_fail_literal(op, TKMS_ERROR_FAILED,
						    "Key derivation failed; see the daemon log");
		else
			tkms_engine_op_return_bytes(op, okm);
	} else {
		/* a MAC may serve as a secret too (a token, a derived password) */
		g_autoptr(GBytes) out = tkms_secret_bytes_new_copy(tkms_secret_get_data(mac), len);
		tkms_engine_op_return_bytes(op, out);
	}
}

static void
hmac_start(TkmsEngineOp *op, HmacData *d)
{
	tkms_tpm_hmac(op->engine->tpm, op->actor.uid, &d->req, tkms_engine_op_get_cancellable(op),
		      hmac_cb, op);
}

static void
hmac_set_version(HmacData *d, TkmsKey *key, TkmsKeyVersion *v)
{
	tkms_tpm_blob_clear(&d->req.blob);
	tkms_tpm_blob_copy(&d->req.blob, &v->blob);
	tkms_tpm_key_id_set(&d->req.key_id, key->owner, key->name, v->version);
	d->req.pcrs = key->pcrs;
}

/* The primary v is counted (Hmac, DeriveKey): run with it. */
static void
hmac_with(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v)
{
	HmacData *d = op->data;
	hmac_set_version(d, key, v);
	hmac_start(op, d);
}

/* Checks the key and makes the op's data; the caller fills the request, then calls
 * hmac_run. */
static HmacData *
hmac_prepare(TkmsEngineOp *op, HmacUse use)
{
	HmacData *d;

	if (tkms_engine_op_lookup_key(op) == NULL ||
	    !tkms_engine_op_require_type(op, op->k, TKMS_KEY_TYPE_HMAC_SHA256,
					 TKMS_KEY_TYPE_HMAC_SHA256, "an hmac-sha256"))
		return NULL;
	d = g_new0(HmacData, 1);
	d->use = use;
	tkms_engine_op_set_data(op, d, hmac_data_free);
	return d;
}

/* Verify: from the newest version that may verify; else: the counted primary. */
static void
hmac_run(TkmsEngineOp *op, HmacData *d)
{
	TkmsKeyVersion *v;

	if (d->use != HMAC_VERIFY) {
		tkms_engine_op_use_primary(op, op->k, hmac_with);
		return;
	}
	if ((v = tkms_engine_op_verify_versions(op, op->k, &d->candidates)) == NULL)
		return;
	hmac_with(op, op->k, v);
}

/* mac NULL: compute, else verify */
static void
hmac_or_verify(TkmsEngineOp *op, GBytes *data, GBytes *mac)
{
	HmacData *d;

	if (!tkms_engine_op_check_payload(op, "data", g_bytes_get_size(data), TRUE))
		return;
	d = hmac_prepare(op, mac != NULL ? HMAC_VERIFY : HMAC_RETURN);
	if (d == NULL)
		return;
	d->req.data = g_bytes_ref(data);
	if (mac != NULL)
		d->expected = g_bytes_ref(mac);
	hmac_run(op, d);
}

void
tkms_engine_hmac(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key, GBytes *data,
		 GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	hmac_or_verify(
		tkms_engine_op_new(self, "Hmac", actor, key, cancellable, callback, user_data),
		data, NULL);
}

void
tkms_engine_verify_hmac(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			GBytes *data, GBytes *mac, GCancellable *cancellable,
			GAsyncReadyCallback callback, gpointer user_data)
{
	hmac_or_verify(tkms_engine_op_new(self, "VerifyHmac", actor, key, cancellable, callback,
					  user_data),
		       data, mac);
}

void
tkms_engine_derive_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
		       GBytes *context, guint32 length, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op =
		tkms_engine_op_new(self, "DeriveKey", actor, key, cancellable, callback, user_data);
	gsize ctx_len = g_bytes_get_size(context);
	guint32 be_len;
	GByteArray *msg;
	HmacData *d;

	if (ctx_len == 0 || ctx_len > DERIVE_CONTEXT_MAX) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_INVALID_ARGUMENT,
					    "The derivation context must be 1 to 1024 bytes");
		return;
	}
	if (length == 0 || length > DERIVE_LENGTH_MAX) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_INVALID_ARGUMENT,
					    "The derived length must be 1 to 8160 bytes");
		return;
	}
	d = hmac_prepare(op, HMAC_DERIVE);
	if (d == NULL)
		return;
	/* HKDF-Extract in the TPM, HKDF-Expand here (RFC 5869); see the D-Bus docs */
	msg = g_byte_array_new();
	g_byte_array_append(msg, (const guint8 *)DERIVE_LABEL, sizeof(DERIVE_LABEL));
	g_byte_array_append(msg, g_bytes_get_data(context, NULL), ctx_len);
	d->req.data = g_bytes_new(msg->data, msg->len);
	be_len = GUINT32_TO_BE(length);
	g_byte_array_append(msg, (const guint8 *)&be_len, 4);
	d->info = g_byte_array_free_to_bytes(msg);
	d->length = length;
	hmac_run(op, d);
}
