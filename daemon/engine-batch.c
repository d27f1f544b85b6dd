/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-engine"

/* EncryptBatch, DecryptBatch, SignBatch, HmacBatch: the single operations on up to
 * TKMS_BATCH_MAX items at once. What a call costs beyond its item is paid once per batch: the
 * key lookup and its checks, the count of uses (all items' uses reserved at once), the unseal
 * of AES key material (once per version named) or the load of the TPM object (tpm-batch.c).
 * Each item has its own audit record, written when the whole batch has succeeded; one item
 * that fails fails the batch with one record, and its index leads the error message. */

#include "engine-private.h"

#include <string.h>

#include "crypto.h"
#include "tpm-batch.h"

/* Above this many bytes in all, AES-GCM runs in a worker thread rather than on the main
 * loop (as for Encrypt and Decrypt). */
#define INLINE_CRYPTO_MAX (64 * 1024)
/* "item 1023 of 1024" */
#define DETAIL_MAX 32

typedef enum {
	BATCH_ENCRYPT,
	BATCH_DECRYPT,
	BATCH_SIGN,
	BATCH_HMAC,
} BatchKind;

typedef struct {
	BatchKind kind;
	GPtrArray *items; /* GBytes: the caller's */
	GBytes *context;
	GPtrArray *out;	   /* GBytes: one per item done */
	guint32 *versions; /* the version each item used, for its record */
	/* EncryptBatch */
	TkmsSecret *key;
	/* DecryptBatch: each item parsed (pointing into it), the versions still to unseal,
	 * and the AES key of each version named (version -> TkmsSecret) */
	TkmsCiphertext *cts;
	GArray *to_unseal;
	GHashTable *materials;
	GHashTable *compromised; /* versions used that are compromised (an admin's batch) */
	/* SignBatch, HmacBatch */
	TkmsTpmBatch req;
	TkmsTpmHmac single; /* HmacBatch: an item longer than one TPM command takes */
	/* the crypto thread: the index of the item that failed, or -1 */
	gint failed;
} BatchData;

static void
batch_data_free(gpointer data)
{
	BatchData *d = data;

	g_ptr_array_unref(d->items);
	g_clear_pointer(&d->context, g_bytes_unref);
	g_clear_pointer(&d->out, g_ptr_array_unref);
	g_free(d->versions);
	g_clear_pointer(&d->key, tkms_secret_unref);
	g_free(d->cts);
	g_clear_pointer(&d->to_unseal, g_array_unref);
	g_clear_pointer(&d->materials, g_hash_table_unref);
	g_clear_pointer(&d->compromised, g_hash_table_unref);
	tkms_tpm_blob_clear(&d->req.blob);
	g_clear_pointer(&d->req.out, g_ptr_array_unref);
	tkms_tpm_blob_clear(&d->single.blob);
	g_clear_pointer(&d->single.data, g_bytes_unref);
	g_clear_pointer(&d->single.out, tkms_secret_unref);
	g_free(d);
}

static BatchData *
batch_data(TkmsEngineOp *op)
{
	return op->data;
}

/* ---- the end: one record per item, or one for the failure ---- */

static void
detail_of(gchar *buf, guint index, guint n)
{
	g_snprintf(buf, DETAIL_MAX, "item %u of %u", index, n);
}

/* Item index failed: the message leads with its index, and the batch's one record says
 * which item and version. Takes error. */
static void
batch_fail(TkmsEngineOp *op, guint index, GError *error)
{
	BatchData *d = batch_data(op);
	g_autoptr(GError) audit_error = NULL;
	gchar detail[DETAIL_MAX];
	GTask *task = op->task;

	if (error->domain != TKMS_ERROR) {
		/* not a caller's mistake: Failed, without details (tkms_engine_op_fail) */
		tkms_engine_op_fail(op, error);
		return;
	}
	g_prefix_error(&error, "item %u: ", index);
	detail_of(detail, index, d->items->len);
	tkms_engine_audit_full(op->engine, &op->actor, op->name, &op->key,
			       d->versions != NULL ? d->versions[index] : op->version, detail, NULL,
			       error, FALSE, &audit_error);
	g_task_return_error(task, error);
	g_object_unref(task);
}

static void
batch_fail_literal(TkmsEngineOp *op, guint index, TkmsError code, const gchar *message)
{
	batch_fail(op, index, g_error_new_literal(TKMS_ERROR, code, message));
}

/* Every item done: a record for each (records that cannot be written fail the batch: no
 * unaudited success), then the outputs. */
static void
batch_return(TkmsEngineOp *op)
{
	BatchData *d = batch_data(op);
	g_autofree const gchar **warnings = NULL;
	GError *error = NULL;
	GTask *task;

	g_assert(d->out->len == d->items->len);
	if (d->compromised != NULL) {
		warnings = g_new0(const gchar *, d->items->len);
		for (guint i = 0; i < d->items->len; i++)
			if (g_hash_table_contains(d->compromised, GUINT_TO_POINTER(d->versions[i])))
				warnings[i] = "compromised key version used";
	}
	if (!tkms_engine_audit_items(op->engine, &op->actor, op->name, &op->key, d->items->len,
				     d->versions, warnings, &error)) {
		task = op->task;
		g_task_return_error(task, error);
		g_object_unref(task);
		return;
	}
	op->audited = TRUE;
	tkms_engine_op_return_pointer(op, g_ptr_array_ref(d->out),
				      (GDestroyNotify)g_ptr_array_unref);
}

/* ---- the start: what every batch checks ---- */

gboolean
tkms_engine_check_batch_count(TkmsEngine *self, gsize n_items, GError **error)
{
	if (n_items <= TKMS_BATCH_MAX)
		return TRUE;
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED,
		    "The batch has %" G_GSIZE_FORMAT " items, over the limit of %d; split it",
		    n_items, TKMS_BATCH_MAX);
	return FALSE;
}

gboolean
tkms_engine_check_batch(TkmsEngine *self, GPtrArray *items, gsize overhead, GError **error)
{
	gsize total = 0;

	if (!tkms_engine_check_batch_count(self, items->len, error))
		return FALSE;
	for (guint i = 0; i < items->len; i++) {
		gsize len = g_bytes_get_size(g_ptr_array_index(items, i));
		total += len - MIN(len, overhead);
	}
	return tkms_engine_check_payload(self, "batch", total, TRUE, error);
}

/* The key (of type a or b), the batch's size, and each item's own checks; fails the op and
 * returns NULL if one fails. */
static BatchData *
batch_begin(TkmsEngineOp *op, BatchKind kind, GPtrArray *items, GBytes *context)
{
	static const gchar *const whats[] = {"plaintexts", "ciphertexts", "messages", "messages"};
	static const gchar *const item_whats[] = {"plaintext", "ciphertext", "message", "message"};
	gsize overhead = kind == BATCH_DECRYPT ? TKMS_CT_OVERHEAD : 0;
	GError *error = NULL;
	TkmsKey *key;
	BatchData *d;

	if ((key = tkms_engine_op_lookup_key(op)) == NULL)
		return NULL;
	if (kind == BATCH_ENCRYPT || kind == BATCH_DECRYPT
		    ? !tkms_engine_op_require_type(op, key, TKMS_KEY_TYPE_AES_256_GCM,
						   TKMS_KEY_TYPE_AES_256_GCM, "an aes-256-gcm")
	    : kind == BATCH_SIGN
		    ? !tkms_engine_op_require_type(op, key, TKMS_KEY_TYPE_ECDSA_P256,
						   TKMS_KEY_TYPE_RSA_2048,
						   "an ecdsa-p256 or rsa-2048")
		    : !tkms_engine_op_require_type(op, key, TKMS_KEY_TYPE_HMAC_SHA256,
						   TKMS_KEY_TYPE_HMAC_SHA256, "an hmac-sha256"))
		return NULL;
	if (items->len == 0) {
		tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
						    "The batch has no %s; pass 1 to %d",
						    whats[kind], TKMS_BATCH_MAX));
		return NULL;
	}
	if (!tkms_engine_check_batch(op->engine, items, overhead, &error)) {
		tkms_engine_op_fail(op, error);
		return NULL;
	}
	if (context != NULL &&
	    !tkms_engine_op_check_payload(op, "context", g_bytes_get_size(context), TRUE))
		return NULL;
	d = g_new0(BatchData, 1);
	d->kind = kind;
	d->items = g_ptr_array_ref(items);
	d->context = context != NULL ? g_bytes_ref(context) : NULL;
	d->out = g_ptr_array_new_full(items->len, (GDestroyNotify)g_bytes_unref);
	d->versions = g_new0(guint32, items->len);
	d->failed = -1;
	tkms_engine_op_set_data(op, d, batch_data_free);
	/* an empty plaintext is refused as by Encrypt; anything else may be empty */
	for (guint i = 0; i < items->len; i++) {
		gsize len = g_bytes_get_size(g_ptr_array_index(items, i));
		if (!tkms_engine_check_payload(op->engine, item_whats[kind],
					       len - MIN(len, overhead), kind != BATCH_ENCRYPT,
					       &error)) {
			batch_fail(op, i, error);
			return NULL;
		}
	}
	return d;
}

/* ---- AES-GCM, on the main loop or, for large batches, in a thread ---- */

static gboolean
encrypt_items(BatchData *d, TkmsKey *key, guint32 version)
{
	guint n = d->items->len;
	guint8 header[TKMS_CT_HEADER_LEN];
	g_autofree guint8 *ivs = g_malloc((gsize)n * TKMS_GCM_IV_LEN);
	g_autoptr(TkmsGcm) gcm = tkms_crypto_gcm_new(d->key, TRUE);
	g_autoptr(GBytes) aad = NULL;
	gsize aad_len = 0;
	const guint8 *aad_data;

	/* every item's IV from one draw of the DRBG, the key schedule set up once */
	if (gcm == NULL || !tkms_crypto_random(ivs, (gsize)n * TKMS_GCM_IV_LEN)) {
		d->failed = 0;
		return FALSE;
	}
	/* the header is the same for every item: so is the associated data */
	tkms_ciphertext_write_header(header, version);
	aad = tkms_ciphertext_aad(header, key->owner, key->name, g_bytes_get_data(d->context, NULL),
				  g_bytes_get_size(d->context));
	aad_data = g_bytes_get_data(aad, &aad_len);
	for (guint i = 0; i < n; i++) {
		gsize len = 0;
		const guint8 *in = g_bytes_get_data(g_ptr_array_index(d->items, i), &len);
		gsize total = len + TKMS_CT_OVERHEAD;
		guint8 *out = g_malloc(total);
		guint8 *iv = out + TKMS_CT_HEADER_LEN;

		memcpy(out, header, TKMS_CT_HEADER_LEN);
		memcpy(iv, ivs + (gsize)i * TKMS_GCM_IV_LEN, TKMS_GCM_IV_LEN);
		if (!tkms_crypto_gcm_seal(gcm, iv, aad_data, aad_len, in, len, iv + TKMS_GCM_IV_LEN,
					  out + total - TKMS_GCM_TAG_LEN)) {
			g_free(out);
			d->failed = i;
			return FALSE;
		}
		g_ptr_array_add(d->out, g_bytes_new_take(out, total));
	}
	return TRUE;
}

static gboolean
decrypt_items(BatchData *d, TkmsKey *key)
{
	/* version -> TkmsGcm: each version's key schedule set up once */
	g_autoptr(GHashTable) gcms =
		g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)tkms_crypto_gcm_free);

	for (guint i = 0; i < d->items->len; i++) {
		TkmsCiphertext *ct = &d->cts[i];
		TkmsGcm *gcm = g_hash_table_lookup(gcms, GUINT_TO_POINTER(ct->version));
		g_autoptr(GBytes) aad = tkms_ciphertext_aad(ct->header, key->owner, key->name,
							    g_bytes_get_data(d->context, NULL),
							    g_bytes_get_size(d->context));
		gsize aad_len = 0;
		const guint8 *aad_data = g_bytes_get_data(aad, &aad_len);
		guint8 *out;
		/* wiped when freed, also when the tag fails: what came out before is
		 * unauthenticated plaintext */
		g_autoptr(GBytes) plain = tkms_secret_bytes_new(ct->body_len, &out);

		if (gcm == NULL) {
			gcm = tkms_crypto_gcm_new(
				g_hash_table_lookup(d->materials, GUINT_TO_POINTER(ct->version)),
				FALSE);
			if (gcm != NULL)
				g_hash_table_insert(gcms, GUINT_TO_POINTER(ct->version), gcm);
		}
		if (gcm == NULL || !tkms_crypto_gcm_open(gcm, ct->iv, aad_data, aad_len, ct->body,
							 ct->body_len, ct->tag, out)) {
			d->failed = i;
			return FALSE;
		}
		g_ptr_array_add(d->out, g_steal_pointer(&plain));
	}
	return TRUE;
}

/* op->k is the key the uses were counted on (after a rotation, the new one). */
static gboolean
gcm_run(TkmsEngineOp *op)
{
	BatchData *d = batch_data(op);

	if (d->kind == BATCH_ENCRYPT)
		return encrypt_items(d, op->k, op->version);
	return decrypt_items(d, op->k);
}

static void
gcm_finish(TkmsEngineOp *op, gboolean ok)
{
	BatchData *d = batch_data(op);

	if (ok)
		batch_return(op);
	else if (d->kind == BATCH_ENCRYPT)
		batch_fail_literal(op, d->failed, TKMS_ERROR_FAILED,
				   "Encryption failed; see the daemon log");
	else
		batch_fail_literal(op, d->failed, TKMS_ERROR_INTEGRITY_FAILURE,
				   "The ciphertext does not authenticate: it was changed, or "
				   "belongs to another key, user or context");
}

static void
gcm_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	/* the op waits for this thread and touches nothing of its data meanwhile */
	gboolean ok = gcm_run(data);

	tkms_crypto_thread_done();
	g_task_return_boolean(task, ok);
}

static void
gcm_thread_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	gcm_finish(user_data, g_task_propagate_boolean(G_TASK(res), NULL));
}

static void
gcm_start(TkmsEngineOp *op)
{
	BatchData *d = batch_data(op);
	g_autoptr(GTask) task = NULL;
	gsize total = 0;

	for (guint i = 0; i < d->items->len; i++)
		total += g_bytes_get_size(g_ptr_array_index(d->items, i));
	if (total <= INLINE_CRYPTO_MAX) {
		gcm_finish(op, gcm_run(op));
		return;
	}
	task = g_task_new(NULL, NULL, gcm_thread_done, op);
	g_task_set_task_data(task, op, NULL);
	g_task_run_in_thread(task, gcm_thread);
}

/* ---- EncryptBatch ---- */

static void
encrypt_keyed(TkmsEngineOp *op, TkmsSecret *secret)
{
	batch_data(op)->key = tkms_secret_ref(secret);
	gcm_start(op);
}

/* n uses of the primary v are counted: encrypt every item under it. */
static void
encrypt_with(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v)
{
	BatchData *d = batch_data(op);

	for (guint i = 0; i < d->items->len; i++)
		d->versions[i] = v->version;
	tkms_engine_op_with_key_material(op, key, v, encrypt_keyed);
}

void
tkms_engine_encrypt_batch(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref,
			  GPtrArray *plaintexts, GBytes *context, GCancellable *cancellable,
			  GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op = tkms_engine_op_new(self, "EncryptBatch", actor, ref, cancellable,
					      callback, user_data);

	if (batch_begin(op, BATCH_ENCRYPT, plaintexts, context) == NULL)
		return;
	tkms_engine_op_use_primary_n(op, op->k, plaintexts->len, encrypt_with);
}

/* ---- DecryptBatch ---- */

static void unseal_next(TkmsEngineOp *op);

static void
decrypt_keyed(TkmsEngineOp *op, TkmsSecret *secret)
{
	BatchData *d = batch_data(op);
	guint32 version = g_array_index(d->to_unseal, guint32, 0);

	g_hash_table_insert(d->materials, GUINT_TO_POINTER(version), tkms_secret_ref(secret));
	g_array_remove_index(d->to_unseal, 0);
	unseal_next(op);
}

/* The AES key of each version the items name, one after another (from the key cache, or
 * unsealed once), then the items. */
static void
unseal_next(TkmsEngineOp *op)
{
	BatchData *d = batch_data(op);
	TkmsKeyVersion *v;

	if (d->to_unseal->len == 0) {
		gcm_start(op);
		return;
	}
	v = tkms_key_get_version(op->k, g_array_index(d->to_unseal, guint32, 0));
	tkms_engine_op_with_key_material(op, op->k, v, decrypt_keyed);
}

/* Each item's framing, version and its state (as Decrypt checks them). */
static gboolean
open_items(TkmsEngineOp *op, BatchData *d)
{
	d->cts = g_new0(TkmsCiphertext, d->items->len);
	d->to_unseal = g_array_new(FALSE, FALSE, sizeof(guint32));
	d->materials = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)tkms_secret_unref);
	for (guint i = 0; i < d->items->len; i++) {
		GBytes *item = g_ptr_array_index(d->items, i);
		TkmsCiphertext *ct = &d->cts[i];
		GError *error = NULL;
		TkmsKeyVersion *v;

		if (!tkms_ciphertext_parse(g_bytes_get_data(item, NULL), g_bytes_get_size(item),
					   ct)) {
			batch_fail_literal(op, i, TKMS_ERROR_INVALID_ARGUMENT,
					   "This is not a tkms ciphertext (bad header or too "
					   "short); pass the exact output of Encrypt");
			return FALSE;
		}
		d->versions[i] = ct->version;
		v = tkms_key_get_version(op->k, ct->version);
		if (v == NULL) {
			batch_fail_literal(op, i, TKMS_ERROR_INTEGRITY_FAILURE,
					   "The ciphertext names a version this key does not "
					   "have: it was changed or belongs to another key");
			return FALSE;
		}
		if (!tkms_engine_check_processing(op, op->k, v, &error)) {
			batch_fail(op, i, error);
			return FALSE;
		}
		if (g_hash_table_contains(d->materials, GUINT_TO_POINTER(v->version)))
			continue;
		/* a placeholder until unsealed: each version is looked at once */
		g_hash_table_insert(d->materials, GUINT_TO_POINTER(v->version), NULL);
		g_array_append_val(d->to_unseal, v->version);
		if (g_str_equal(v->state, TKMS_STATE_COMPROMISED)) {
			if (d->compromised == NULL)
				d->compromised = g_hash_table_new(NULL, NULL);
			g_hash_table_add(d->compromised, GUINT_TO_POINTER(v->version));
			g_warning("%s of key %s version %u, which is compromised, by uid %u "
				  "(admin)",
				  op->name, tkms_key_ref_audit_text(&op->key), v->version,
				  op->actor.uid);
		}
	}
	return TRUE;
}

void
tkms_engine_decrypt_batch(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref,
			  GPtrArray *ciphertexts, GBytes *context, GCancellable *cancellable,
			  GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op = tkms_engine_op_new(self, "DecryptBatch", actor, ref, cancellable,
					      callback, user_data);
	BatchData *d = batch_begin(op, BATCH_DECRYPT, ciphertexts, context);

	if (d == NULL || !open_items(op, d))
		return;
	unseal_next(op);
}

gboolean
tkms_engine_decrypt_batch_needs_admin(TkmsEngine *self, const TkmsKeyRef *ref,
				      GPtrArray *ciphertexts)
{
	g_autoptr(TkmsKey) key = NULL;

	if (!tkms_key_name_is_valid(ref->name))
		return FALSE;
	key = tkms_keystore_lookup(self->keystore, ref->owner, ref->name, NULL);
	if (key == NULL)
		return FALSE;
	for (guint i = 0; i < ciphertexts->len; i++) {
		GBytes *item = g_ptr_array_index(ciphertexts, i);
		TkmsCiphertext ct;
		TkmsKeyVersion *v;

		if (!tkms_ciphertext_parse(g_bytes_get_data(item, NULL), g_bytes_get_size(item),
					   &ct))
			continue;
		v = tkms_key_get_version(key, ct.version);
		if (v != NULL && g_str_equal(v->state, TKMS_STATE_COMPROMISED))
			return TRUE;
	}
	return FALSE;
}

/* ---- SignBatch, HmacBatch: the TPM ---- */

static void tpm_next(TkmsEngineOp *op);

static void
single_hmac_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	BatchData *d = batch_data(op);
	GError *error = NULL;
	TkmsSecret *mac;

	if (!tkms_tpm_finish(TKMS_TPM(source), res, &error)) {
		batch_fail(op, d->req.out->len, error);
		return;
	}
	mac = d->single.out;
	g_ptr_array_add(d->req.out, tkms_secret_bytes_new_copy(tkms_secret_get_data(mac),
							       tkms_secret_get_len(mac)));
	g_clear_pointer(&d->single.out, tkms_secret_unref);
	g_clear_pointer(&d->single.data, g_bytes_unref);
	tpm_next(op);
}

static void
batch_tpm_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	BatchData *d = batch_data(op);
	GError *error = NULL;

	if (!tkms_tpm_finish(TKMS_TPM(source), res, &error)) {
		/* a load that fails is the batch's, not an item's */
		if (d->req.item_failed)
			batch_fail(op, d->req.out->len, error);
		else
			tkms_engine_op_fail(op, error);
		return;
	}
	tpm_next(op);
}

/* The items left: the next request of the batch (it ends after its share of TPM time), or
 * for an HMAC of a long message the single request that feeds it in pieces. */
static void
tpm_next(TkmsEngineOp *op)
{
	BatchData *d = batch_data(op);
	GCancellable *cancellable = tkms_engine_op_get_cancellable(op);

	if (d->req.out->len == d->items->len) {
		g_clear_pointer(&d->out, g_ptr_array_unref);
		d->out = g_ptr_array_ref(d->req.out);
		batch_return(op);
		return;
	}
	if (d->kind == BATCH_HMAC && !tkms_tpm_batch_hmac_fits(g_bytes_get_size(
					     g_ptr_array_index(d->items, d->req.out->len)))) {
		tkms_tpm_blob_clear(&d->single.blob);
		tkms_tpm_blob_copy(&d->single.blob, &d->req.blob);
		d->single.pcrs = d->req.pcrs;
		d->single.key_id = d->req.key_id;
		d->single.data = g_bytes_ref(g_ptr_array_index(d->items, d->req.out->len));
		tkms_tpm_hmac(op->engine->tpm, op->actor.uid, &d->single, cancellable,
			      single_hmac_cb, op);
		return;
	}
	tkms_tpm_batch(op->engine->tpm, op->actor.uid, &d->req, cancellable, batch_tpm_cb, op);
}

/* n uses of the primary v are counted: its object does every item. */
static void
tpm_with(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v)
{
	BatchData *d = batch_data(op);

	for (guint i = 0; i < d->items->len; i++)
		d->versions[i] = v->version;
	d->req.op = d->kind == BATCH_SIGN ? TKMS_TPM_BATCH_SIGN : TKMS_TPM_BATCH_HMAC;
	tkms_tpm_blob_copy(&d->req.blob, &v->blob);
	tkms_tpm_key_id_set(&d->req.key_id, key->owner, key->name, v->version);
	d->req.pcrs = key->pcrs;
	d->req.items = d->items;
	d->req.out = g_ptr_array_new_full(d->items->len, (GDestroyNotify)g_bytes_unref);
	tpm_next(op);
}

static void
tpm_batch(TkmsEngine *self, const gchar *name, BatchKind kind, const TkmsActor *actor,
	  const TkmsKeyRef *ref, GPtrArray *messages, GCancellable *cancellable,
	  GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op =
		tkms_engine_op_new(self, name, actor, ref, cancellable, callback, user_data);

	if (batch_begin(op, kind, messages, NULL) == NULL)
		return;
	tkms_engine_op_use_primary_n(op, op->k, messages->len, tpm_with);
}

void
tkms_engine_sign_batch(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref,
		       GPtrArray *messages, GCancellable *cancellable, GAsyncReadyCallback callback,
		       gpointer user_data)
{
	tpm_batch(self, "SignBatch", BATCH_SIGN, actor, ref, messages, cancellable, callback,
		  user_data);
}

void
tkms_engine_hmac_batch(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref,
		       GPtrArray *messages, GCancellable *cancellable, GAsyncReadyCallback callback,
		       gpointer user_data)
{
	tpm_batch(self, "HmacBatch", BATCH_HMAC, actor, ref, messages, cancellable, callback,
		  user_data);
}

GPtrArray *
tkms_engine_batch_finish(TkmsEngine *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}
