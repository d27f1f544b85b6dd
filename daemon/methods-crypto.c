/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-manager"

/* Encrypt, Decrypt (AES-256-GCM in OpenSSL on briefly unsealed keys), and Sign, Verify,
 * Hmac, VerifyHmac, DeriveKey (in the TPM). */

#include <openssl/crypto.h>
#include <string.h>

#include "ciphertext.h"
#include "crypto.h"
#include "manager-private.h"
#include "tkms-error.h"

/* Above this, AES-GCM runs in a worker thread rather than on the main loop. */
#define INLINE_CRYPTO_MAX (64 * 1024)
#define DERIVE_LABEL "tkms-derive-v1"
#define DERIVE_CONTEXT_MAX 1024
#define DERIVE_LENGTH_MAX (255 * 32)

static gboolean
require_type(TkmsCall *call, TkmsKey *key, TkmsKeyType a, TkmsKeyType b, const gchar *need)
{
	if (key->type == a || key->type == b)
		return TRUE;
	tkms_call_fail(call, g_error_new(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
					 "Key \"%s\" is a %s key; this operation needs %s key",
					 key->name, tkms_key_type_to_string(key->type), need));
	return FALSE;
}

/* ---- key material: cache, else unseal in the TPM ---- */

typedef void (*WithSecretFunc)(TkmsCall *call, TkmsSecret *secret);

typedef struct {
	TkmsCall *call;
	TkmsTpmUnseal req;
	guint32 version;
	WithSecretFunc then;
} UnsealData;

static void
unseal_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	UnsealData *d = user_data;
	TkmsCall *call = d->call;
	GError *error = NULL;
	TkmsSecret *secret = d->req.out;
	gboolean ok = tkms_tpm_finish(TKMS_TPM(source), res, &error);

	tkms_tpm_blob_clear(&d->req.blob);
	d->req.out = NULL;
	if (!ok) {
		g_clear_pointer(&secret, tkms_secret_unref);
		tkms_call_fail(call, error);
	} else {
		tkms_key_cache_insert(call->manager->keycache, call->key->owner, call->key->name,
				      d->version, secret);
		d->then(call, secret);
		tkms_secret_unref(secret);
	}
	g_free(d);
}

static void
with_key_material(TkmsCall *call, TkmsKey *key, TkmsKeyVersion *v, WithSecretFunc then)
{
	g_autoptr(TkmsSecret) secret =
		tkms_key_cache_lookup(call->manager->keycache, key->owner, key->name, v->version);
	UnsealData *d;

	if (secret != NULL) {
		then(call, secret);
		return;
	}
	d = g_new0(UnsealData, 1);
	d->call = call;
	d->version = v->version;
	d->then = then;
	tkms_tpm_blob_copy(&d->req.blob, &v->blob);
	d->req.pcrs = key->pcrs;
	tkms_tpm_unseal(call->manager->tpm, call->caller->uid, &d->req, tkms_call_get_cancellable(call), unseal_cb,
			d);
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
	out = g_malloc(MAX(job->ct.body_len, 1));
	if (!tkms_crypto_gcm_decrypt(job->key, job->ct.iv, aad, aad_len, job->ct.body,
				     job->ct.body_len, job->ct.tag, out)) {
		g_free(out);
		return FALSE;
	}
	job->output = g_bytes_new_take(out, job->ct.body_len);
	return TRUE;
}

static void
gcm_finish(TkmsCall *call, GcmJob *job, gboolean ok)
{
	if (!ok && job->encrypt) {
		tkms_call_fail_literal(call, TKMS_ERROR_FAILED,
				       "Encryption failed; see the daemon log");
	} else if (!ok) {
		tkms_call_fail_literal(call, TKMS_ERROR_INTEGRITY_FAILURE,
				       "The ciphertext does not authenticate: it was changed, or "
				       "belongs to another key, user or context");
	} else {
		tkms_call_return_bytes(call, job->output);
	}
}

static void
gcm_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	g_task_return_boolean(task, gcm_job_run(data));
}

static void
gcm_thread_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	GcmJob *job = g_task_get_task_data(G_TASK(res));
	gcm_finish(call, job, g_task_propagate_boolean(G_TASK(res), NULL));
}

static void
gcm_start(TkmsCall *call, TkmsSecret *secret)
{
	GcmJob *job = call->data;
	g_autoptr(GTask) task = NULL;

	job->key = tkms_secret_ref(secret);
	if (g_bytes_get_size(job->input) <= INLINE_CRYPTO_MAX) {
		gcm_finish(call, job, gcm_job_run(job));
		return;
	}
	/* the task holds the job; the call keeps none so that it is freed exactly once */
	call->data = NULL;
	call->data_free = NULL;
	task = g_task_new(NULL, NULL, gcm_thread_done, call);
	g_task_set_task_data(task, job, gcm_job_free);
	g_task_run_in_thread(task, gcm_thread);
}

void
tkms_method_encrypt(TkmsCall *call)
{
	g_autoptr(GBytes) pt = tkms_call_param_bytes(call, 1);
	g_autoptr(GBytes) context = tkms_call_param_bytes(call, 2);
	guint8 header[TKMS_CT_HEADER_LEN];
	TkmsKey *key;
	TkmsKeyVersion *v;
	GcmJob *job;

	if ((key = tkms_call_lookup_key(call)) == NULL ||
	    !require_type(call, key, TKMS_KEY_TYPE_AES_256_GCM, TKMS_KEY_TYPE_AES_256_GCM,
			  "an aes-256-gcm") ||
	    !tkms_call_check_payload(call, "plaintext", g_bytes_get_size(pt), FALSE) ||
	    !tkms_call_check_payload(call, "context", g_bytes_get_size(context), TRUE) ||
	    (v = tkms_call_primary_version(call, key)) == NULL)
		return;
	job = g_new0(GcmJob, 1);
	job->encrypt = TRUE;
	job->version = v->version;
	job->input = g_bytes_ref(pt);
	tkms_ciphertext_write_header(header, v->version);
	job->aad = tkms_ciphertext_aad(header, key->owner, key->name,
				       g_bytes_get_data(context, NULL), g_bytes_get_size(context));
	tkms_call_set_data(call, job, gcm_job_free);
	with_key_material(call, key, v, gcm_start);
}

void
tkms_method_decrypt(TkmsCall *call)
{
	g_autoptr(GBytes) ctb = tkms_call_param_bytes(call, 1);
	g_autoptr(GBytes) context = tkms_call_param_bytes(call, 2);
	TkmsCiphertext ct;
	TkmsKey *key;
	TkmsKeyVersion *v;
	GcmJob *job;

	if ((key = tkms_call_lookup_key(call)) == NULL ||
	    !require_type(call, key, TKMS_KEY_TYPE_AES_256_GCM, TKMS_KEY_TYPE_AES_256_GCM,
			  "an aes-256-gcm") ||
	    !tkms_call_check_payload(call, "ciphertext",
				     g_bytes_get_size(ctb) - MIN(g_bytes_get_size(ctb), TKMS_CT_OVERHEAD),
				     TRUE) ||
	    !tkms_call_check_payload(call, "context", g_bytes_get_size(context), TRUE))
		return;
	if (!tkms_ciphertext_parse(g_bytes_get_data(ctb, NULL), g_bytes_get_size(ctb), &ct)) {
		tkms_call_fail_literal(call, TKMS_ERROR_INVALID_ARGUMENT,
				       "This is not a tkms ciphertext (bad header or too short); "
				       "pass the exact output of Encrypt");
		return;
	}
	call->key_version = ct.version;
	v = tkms_key_get_version(key, ct.version);
	if (v == NULL) {
		tkms_call_fail_literal(call, TKMS_ERROR_INTEGRITY_FAILURE,
				       "The ciphertext names a version this key does not have: it "
				       "was changed or belongs to another key");
		return;
	}
	if (g_strcmp0(v->state, "active") != 0 && g_strcmp0(v->state, "deactivated") != 0) {
		tkms_call_fail(call, g_error_new(TKMS_ERROR, TKMS_ERROR_KEY_STATE,
						 "Version %u of key \"%s\" is %s and cannot "
						 "decrypt",
						 v->version, key->name, v->state));
		return;
	}
	job = g_new0(GcmJob, 1);
	job->input = g_bytes_ref(ctb);
	job->ct = ct;
	job->aad = tkms_ciphertext_aad(ct.header, key->owner, key->name,
				       g_bytes_get_data(context, NULL), g_bytes_get_size(context));
	tkms_call_set_data(call, job, gcm_job_free);
	with_key_material(call, key, v, gcm_start);
}

/* ---- sign / verify ---- */

static void
sign_free(gpointer data)
{
	TkmsTpmSign *req = data;
	tkms_tpm_blob_clear(&req->blob);
	g_clear_pointer(&req->data, g_bytes_unref);
	g_clear_pointer(&req->signature, g_bytes_unref);
	g_free(req);
}

static void
sign_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	TkmsTpmSign *req = call->data;

	if (!tkms_call_tpm_finish(call, res))
		return;
	if (g_str_equal(call->method->name, "Verify"))
		tkms_call_return(call, g_variant_new("(b)", req->valid));
	else
		tkms_call_return_bytes(call, req->signature);
}

static void
sign_or_verify(TkmsCall *call, gboolean verify)
{
	g_autoptr(GBytes) data = tkms_call_param_bytes(call, 1);
	TkmsKey *key;
	TkmsKeyVersion *v;
	TkmsTpmSign *req;

	if ((key = tkms_call_lookup_key(call)) == NULL ||
	    !require_type(call, key, TKMS_KEY_TYPE_ECDSA_P256, TKMS_KEY_TYPE_RSA_2048,
			  "an ecdsa-p256 or rsa-2048") ||
	    !tkms_call_check_payload(call, "data", g_bytes_get_size(data), TRUE) ||
	    (v = tkms_call_primary_version(call, key)) == NULL)
		return;
	req = g_new0(TkmsTpmSign, 1);
	tkms_tpm_blob_copy(&req->blob, &v->blob);
	req->pcrs = key->pcrs;
	req->kind = tkms_key_type_object_kind(key->type);
	req->data = g_bytes_ref(data);
	tkms_call_set_data(call, req, sign_free);
	if (verify) {
		req->signature = tkms_call_param_bytes(call, 2);
		if (!tkms_call_check_payload(call, "signature", g_bytes_get_size(req->signature),
					     TRUE))
			return;
		tkms_tpm_verify(call->manager->tpm, call->caller->uid, req, tkms_call_get_cancellable(call), sign_cb,
				call);
	} else {
		tkms_tpm_sign(call->manager->tpm, call->caller->uid, req, tkms_call_get_cancellable(call), sign_cb,
			      call);
	}
}

void
tkms_method_sign(TkmsCall *call)
{
	sign_or_verify(call, FALSE);
}

void
tkms_method_verify(TkmsCall *call)
{
	sign_or_verify(call, TRUE);
}

/* ---- hmac, verify-hmac, derive ---- */

typedef enum { HMAC_RETURN, HMAC_VERIFY, HMAC_DERIVE } HmacUse;

typedef struct {
	TkmsTpmHmac req;
	HmacUse use;
	GBytes *expected;  /* verify */
	GBytes *info;	   /* derive */
	guint32 length;	   /* derive */
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
	g_free(d);
}

static void
hmac_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	HmacData *d = call->data;
	TkmsSecret *mac;
	gsize len;

	if (!tkms_call_tpm_finish(call, res))
		return;
	mac = d->req.out;
	len = tkms_secret_get_len(mac);
	if (d->use == HMAC_VERIFY) {
		gboolean valid = g_bytes_get_size(d->expected) == len &&
				 CRYPTO_memcmp(g_bytes_get_data(d->expected, NULL),
					       tkms_secret_get_data(mac), len) == 0;
		tkms_call_return(call, g_variant_new("(b)", valid));
	} else if (d->use == HMAC_DERIVE) {
		g_autoptr(GBytes) okm = tkms_crypto_hkdf_expand(
			mac, g_bytes_get_data(d->info, NULL), g_bytes_get_size(d->info), d->length);
		if (okm == NULL)
			tkms_call_fail_literal(call, TKMS_ERROR_FAILED,
					       "Key derivation failed; see the daemon log");
		else
			tkms_call_return_bytes(call, okm);
	} else {
		g_autoptr(GBytes) out = g_bytes_new(tkms_secret_get_data(mac), len);
		tkms_call_return_bytes(call, out);
	}
}

static HmacData *
hmac_prepare(TkmsCall *call, HmacUse use)
{
	TkmsKey *key;
	TkmsKeyVersion *v;
	HmacData *d;

	if ((key = tkms_call_lookup_key(call)) == NULL ||
	    !require_type(call, key, TKMS_KEY_TYPE_HMAC_SHA256, TKMS_KEY_TYPE_HMAC_SHA256,
			  "an hmac-sha256") ||
	    (v = tkms_call_primary_version(call, key)) == NULL)
		return NULL;
	d = g_new0(HmacData, 1);
	d->use = use;
	tkms_tpm_blob_copy(&d->req.blob, &v->blob);
	d->req.pcrs = key->pcrs;
	tkms_call_set_data(call, d, hmac_data_free);
	return d;
}

static void
hmac_or_verify(TkmsCall *call, HmacUse use)
{
	g_autoptr(GBytes) data = tkms_call_param_bytes(call, 1);
	HmacData *d;

	if (!tkms_call_check_payload(call, "data", g_bytes_get_size(data), TRUE))
		return;
	d = hmac_prepare(call, use);
	if (d == NULL)
		return;
	d->req.data = g_bytes_ref(data);
	if (use == HMAC_VERIFY)
		d->expected = tkms_call_param_bytes(call, 2);
	tkms_tpm_hmac(call->manager->tpm, call->caller->uid, &d->req, tkms_call_get_cancellable(call), hmac_cb,
		      call);
}

void
tkms_method_hmac(TkmsCall *call)
{
	hmac_or_verify(call, HMAC_RETURN);
}

void
tkms_method_verify_hmac(TkmsCall *call)
{
	hmac_or_verify(call, HMAC_VERIFY);
}

void
tkms_method_derive_key(TkmsCall *call)
{
	g_autoptr(GBytes) context = tkms_call_param_bytes(call, 1);
	guint32 length, be_len;
	gsize ctx_len = g_bytes_get_size(context);
	GByteArray *msg;
	HmacData *d;

	g_variant_get_child(call->params, 2, "u", &length);
	if (ctx_len == 0 || ctx_len > DERIVE_CONTEXT_MAX) {
		tkms_call_fail_literal(call, TKMS_ERROR_INVALID_ARGUMENT,
				       "The derivation context must be 1 to 1024 bytes");
		return;
	}
	if (length == 0 || length > DERIVE_LENGTH_MAX) {
		tkms_call_fail_literal(call, TKMS_ERROR_INVALID_ARGUMENT,
				       "The derived length must be 1 to 8160 bytes");
		return;
	}
	d = hmac_prepare(call, HMAC_DERIVE);
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
	tkms_tpm_hmac(call->manager->tpm, call->caller->uid, &d->req, tkms_call_get_cancellable(call), hmac_cb,
		      call);
}
