/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-engine"

/* GenerateDataKey (envelope encryption: a fresh data key and the same key wrapped as Encrypt
 * would wrap it) and ReEncrypt (a ciphertext moved to the primary version without its
 * plaintext leaving tkmsd). Both write ciphertext format 1 (ciphertext.h), so Decrypt opens
 * what they make. */

#include <openssl/crypto.h>
#include <string.h>

#include "ciphertext.h"
#include "crypto.h"
#include "engine-private.h"

/* Above this, ReEncrypt runs in a worker thread rather than on the main loop (as Decrypt). */
#define INLINE_CRYPTO_MAX (64 * 1024)

/* Format 1 of plaintext under key version (key material secret), bound to owner, name and
 * context; NULL if OpenSSL failed. */
static GBytes *
wrap(TkmsSecret *secret, guint32 version, const TkmsKey *key, GBytes *context,
     const guint8 *in, gsize len)
{
	gsize total = len + TKMS_CT_OVERHEAD;
	guint8 *out = g_malloc(total);
	guint8 *iv = out + TKMS_CT_HEADER_LEN;
	g_autoptr(GBytes) aad = NULL;

	tkms_ciphertext_write_header(out, version);
	aad = tkms_ciphertext_aad(out, key->owner, key->name, g_bytes_get_data(context, NULL),
				  g_bytes_get_size(context));
	if (!tkms_crypto_random(iv, TKMS_GCM_IV_LEN) ||
	    !tkms_crypto_gcm_encrypt(secret, iv, g_bytes_get_data(aad, NULL),
				     g_bytes_get_size(aad), in, len, iv + TKMS_GCM_IV_LEN,
				     out + total - TKMS_GCM_TAG_LEN)) {
		g_free(out);
		return NULL;
	}
	return g_bytes_new_take(out, total);
}

/* ---- GenerateDataKey ---- */

typedef struct {
	TkmsSecret *plaintext;
	GBytes *context;
	guint32 version;
} DataKeyData;

typedef struct {
	GBytes *plaintext;
	GBytes *wrapped;
} DataKeyResult;

static void
data_key_data_free(gpointer p)
{
	DataKeyData *d = p;
	g_clear_pointer(&d->plaintext, tkms_secret_unref);
	g_clear_pointer(&d->context, g_bytes_unref);
	g_free(d);
}

static void
data_key_result_free(gpointer p)
{
	DataKeyResult *r = p;
	g_clear_pointer(&r->plaintext, g_bytes_unref);
	g_clear_pointer(&r->wrapped, g_bytes_unref);
	g_free(r);
}

static void
data_key_wrap(TkmsEngineOp *op, TkmsSecret *secret)
{
	DataKeyData *d = op->data;
	DataKeyResult *r;
	GBytes *wrapped = wrap(secret, d->version, op->k, d->context,
			       tkms_secret_get_data(d->plaintext),
			       tkms_secret_get_len(d->plaintext));

	if (wrapped == NULL) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_FAILED,
					    "Wrapping the data key failed; see the daemon log");
		return;
	}
	r = g_new0(DataKeyResult, 1);
	r->wrapped = wrapped;
	/* The bytes stay in the secure heap, wiped when the reply no longer needs them (the
	 * secret's reference goes with the GBytes). */
	r->plaintext = g_bytes_new_with_free_func(tkms_secret_get_data(d->plaintext),
						  tkms_secret_get_len(d->plaintext),
						  (GDestroyNotify)tkms_secret_unref,
						  tkms_secret_ref(d->plaintext));
	tkms_engine_op_return_pointer(op, r, data_key_result_free);
}

/* The primary v is counted: wrap under it. */
static void
data_key_with(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v)
{
	DataKeyData *d = op->data;
	d->version = v->version;
	tkms_engine_op_with_key_material(op, key, v, data_key_wrap);
}

void
tkms_engine_generate_data_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref,
			      guint32 length, GBytes *context, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op = tkms_engine_op_new(self, "GenerateDataKey", actor, ref, cancellable,
					      callback, user_data);
	TkmsKey *key;
	DataKeyData *d;
	GError *error = NULL;

	if ((key = tkms_engine_op_lookup_key(op)) == NULL ||
	    !tkms_engine_op_require_type(op, key, TKMS_KEY_TYPE_AES_256_GCM,
					 TKMS_KEY_TYPE_AES_256_GCM, "an aes-256-gcm"))
		return;
	if (length == 0 || length > TKMS_DATA_KEY_MAX) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_INVALID_ARGUMENT,
					    "The data key length must be 1 to 64 bytes (32 for "
					    "AES-256)");
		return;
	}
	if (!tkms_engine_op_check_payload(op, "context", g_bytes_get_size(context), TRUE))
		return;
	d = g_new0(DataKeyData, 1);
	d->context = g_bytes_ref(context);
	tkms_engine_op_set_data(op, d, data_key_data_free);
	if ((d->plaintext = tkms_secret_new(length, &error)) == NULL) {
		tkms_engine_op_fail(op, error);
		return;
	}
	if (!tkms_crypto_random_private(tkms_secret_get_data(d->plaintext), length)) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_FAILED,
					    "The random number generator failed; see the daemon "
					    "log");
		return;
	}
	tkms_engine_op_use_primary(op, key, data_key_with);
}

gboolean
tkms_engine_generate_data_key_finish(TkmsEngine *self, GAsyncResult *result,
				     GBytes **plaintext, GBytes **wrapped, GError **error)
{
	DataKeyResult *r;

	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	r = g_task_propagate_pointer(G_TASK(result), error);
	if (r == NULL)
		return FALSE;
	*plaintext = g_steal_pointer(&r->plaintext);
	*wrapped = g_steal_pointer(&r->wrapped);
	data_key_result_free(r);
	return TRUE;
}

/* ---- ReEncrypt ---- */

typedef struct {
	GBytes *input; /* the whole ciphertext; ct points into it */
	TkmsCiphertext ct;
	GBytes *context;
	TkmsKey *key;
	TkmsKeyVersion *from;
	TkmsKeyVersion *to;
	TkmsSecret *from_key;
	TkmsSecret *to_key;
	GBytes *output;
	gboolean authentic; /* the input authenticated */
} RewrapJob;

static void
rewrap_job_free(gpointer p)
{
	RewrapJob *job = p;
	g_clear_pointer(&job->input, g_bytes_unref);
	g_clear_pointer(&job->context, g_bytes_unref);
	g_clear_pointer(&job->key, tkms_key_unref);
	g_clear_pointer(&job->from_key, tkms_secret_unref);
	g_clear_pointer(&job->to_key, tkms_secret_unref);
	g_clear_pointer(&job->output, g_bytes_unref);
	g_free(job);
}

static gboolean
rewrap_job_run(RewrapJob *job)
{
	gsize len = job->ct.body_len;
	g_autoptr(GBytes) aad =
		tkms_ciphertext_aad(job->ct.header, job->key->owner, job->key->name,
				    g_bytes_get_data(job->context, NULL),
				    g_bytes_get_size(job->context));
	guint8 *plain = g_malloc(len);

	job->authentic = tkms_crypto_gcm_decrypt(job->from_key, job->ct.iv,
						 g_bytes_get_data(aad, NULL),
						 g_bytes_get_size(aad), job->ct.body, len,
						 job->ct.tag, plain);
	if (job->authentic)
		job->output = wrap(job->to_key, job->to->version, job->key, job->context, plain,
				   len);
	/* the plaintext existed only here, between the two keys */
	OPENSSL_cleanse(plain, len);
	g_free(plain);
	return job->output != NULL;
}

static void
rewrap_finish(TkmsEngineOp *op, RewrapJob *job)
{
	if (!job->authentic)
		tkms_engine_op_fail_literal(op, TKMS_ERROR_INTEGRITY_FAILURE,
					    "The ciphertext does not authenticate: it was changed, "
					    "or belongs to another key, user or context");
	else if (job->output == NULL)
		tkms_engine_op_fail_literal(op, TKMS_ERROR_FAILED,
					    "Encryption failed; see the daemon log");
	else
		tkms_engine_op_return_bytes(op, job->output);
}

static void
rewrap_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	gboolean ok = rewrap_job_run(data);

	tkms_crypto_thread_done();
	g_task_return_boolean(task, ok);
}

static void
rewrap_thread_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	rewrap_finish(user_data, g_task_get_task_data(G_TASK(res)));
}

static void
rewrap_with_new_key(TkmsEngineOp *op, TkmsSecret *secret)
{
	RewrapJob *job = op->data;
	g_autoptr(GTask) task = NULL;

	job->to_key = tkms_secret_ref(secret);
	if (g_bytes_get_size(job->input) <= INLINE_CRYPTO_MAX) {
		rewrap_job_run(job);
		rewrap_finish(op, job);
		return;
	}
	/* the task holds the job; the op keeps none so that it is freed exactly once */
	op->data = NULL;
	op->data_free = NULL;
	task = g_task_new(NULL, NULL, rewrap_thread_done, op);
	g_task_set_task_data(task, job, rewrap_job_free);
	g_task_run_in_thread(task, rewrap_thread);
}

static void
rewrap_with_old_key(TkmsEngineOp *op, TkmsSecret *secret)
{
	RewrapJob *job = op->data;

	job->from_key = tkms_secret_ref(secret);
	tkms_engine_op_with_key_material(op, job->key, job->to, rewrap_with_new_key);
}

/* The primary to is counted. key may be newer than the one the ciphertext was checked
 * against (a rotation at the cap): the version it names is looked up again (versions are
 * never removed). The audit record names the version written (op->version). */
static void
rewrap_with(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *to)
{
	RewrapJob *job = op->data;
	TkmsKeyVersion *from = tkms_key_get_version(key, job->ct.version);

	if (from == NULL) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_INTEGRITY_FAILURE,
					    "The ciphertext names a version this key does not "
					    "have: it was changed or belongs to another key");
		return;
	}
	job->key = tkms_key_ref(key);
	job->from = from;
	job->to = to;
	tkms_engine_op_with_key_material(op, key, from, rewrap_with_old_key);
}

void
tkms_engine_re_encrypt(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref,
		       GBytes *ctb, GBytes *context, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op =
		tkms_engine_op_new(self, "ReEncrypt", actor, ref, cancellable, callback, user_data);
	TkmsCiphertext ct;
	RewrapJob *job;

	/* the checks of Decrypt, then those of Encrypt: the primary must protect */
	if (tkms_engine_op_open_ciphertext(op, ctb, context, &ct) == NULL)
		return;
	job = g_new0(RewrapJob, 1);
	job->input = g_bytes_ref(ctb);
	job->ct = ct;
	job->context = g_bytes_ref(context);
	tkms_engine_op_set_data(op, job, rewrap_job_free);
	/* one use of the primary: it encrypts */
	tkms_engine_op_use_primary(op, op->k, rewrap_with);
}
