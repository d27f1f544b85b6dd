/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-engine"

/* Seal, Unseal (an envelope: a fresh TPM-sealed data key, AES-256-GCM over the data, so the
 * size is not bound by the TPM's 128-byte sealed-object limit) and GetRandom. */

#include <string.h>

#include "crypto.h"
#include "engine-private.h"
#include "sealblob.h"

typedef struct {
	GBytes *data;
	TkmsPcrMask pcrs;
	TkmsTpmCreate create;
	TkmsTpmUnseal unseal;
	TkmsSealBlob blob;
} SealData;

static void
seal_data_free(gpointer p)
{
	SealData *d = p;
	g_clear_pointer(&d->data, g_bytes_unref);
	tkms_tpm_blob_clear(&d->create.out);
	g_clear_pointer(&d->create.material, tkms_secret_unref);
	tkms_tpm_blob_clear(&d->unseal.blob);
	g_clear_pointer(&d->unseal.out, tkms_secret_unref);
	tkms_tpm_blob_clear(&d->blob.object);
	g_free(d);
}

static void
seal_created_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	SealData *d = op->data;
	g_autoptr(GByteArray) out = NULL;
	g_autoptr(GBytes) aad = NULL;
	g_autoptr(GBytes) blob = NULL;
	gsize len = 0;
	const guint8 *in;
	guint32 be_len;
	gsize iv_off, body_off;

	if (!tkms_engine_op_tpm_finish(op, res))
		return;
	in = g_bytes_get_data(d->data, &len);
	out = tkms_seal_blob_write_head(op->actor.uid, d->pcrs, &d->create.out);
	aad = tkms_seal_blob_aad(out->data, out->len);
	iv_off = out->len;
	be_len = GUINT32_TO_BE((guint32)len);
	g_byte_array_set_size(out, iv_off + TKMS_GCM_IV_LEN + 4 + len + TKMS_GCM_TAG_LEN);
	memcpy(out->data + iv_off + TKMS_GCM_IV_LEN, &be_len, 4);
	body_off = iv_off + TKMS_GCM_IV_LEN + 4;
	if (!tkms_crypto_random(out->data + iv_off, TKMS_GCM_IV_LEN) ||
	    !tkms_crypto_gcm_encrypt(d->create.material, out->data + iv_off,
				     g_bytes_get_data(aad, NULL), g_bytes_get_size(aad), in, len,
				     out->data + body_off, out->data + body_off + len)) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_FAILED,
					    "Sealing failed; see the daemon log");
		return;
	}
	blob = g_byte_array_free_to_bytes(g_steal_pointer(&out));
	tkms_engine_op_return_bytes(op, blob);
}

void
tkms_engine_seal(TkmsEngine *self, const TkmsActor *actor, GBytes *data, TkmsPcrMask pcrs,
		 GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op =
		tkms_engine_op_new(self, "Seal", actor, NULL, cancellable, callback, user_data);
	GError *error = NULL;
	SealData *d;

	if (!tkms_engine_op_check_payload(op, "data", g_bytes_get_size(data), FALSE))
		return;
	if (!tkms_engine_check_pcrs(self, pcrs, &error)) {
		tkms_engine_op_fail(op, error);
		return;
	}
	d = g_new0(SealData, 1);
	d->data = g_bytes_ref(data);
	d->pcrs = pcrs;
	d->create.kind = TKMS_TPM_OBJECT_SEALED;
	d->create.pcrs = pcrs;
	d->create.seal_size = TKMS_AES_KEY_LEN;
	d->create.want_material = TRUE;
	d->create.owner_auth = TRUE;
	d->create.owner = actor->uid;
	tkms_engine_op_set_data(op, d, seal_data_free);
	tkms_tpm_create(self->tpm, actor->uid, &d->create, cancellable, seal_created_cb, op);
}

static void
unsealed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	SealData *d = op->data;
	g_autoptr(GBytes) aad = NULL;
	g_autoptr(GBytes) plain = NULL;
	guint8 *out;

	if (!tkms_engine_op_tpm_finish(op, res))
		return;
	aad = tkms_seal_blob_aad(d->blob.aad_prefix, d->blob.aad_prefix_len);
	plain = tkms_secret_bytes_new(d->blob.body_len, &out); /* wiped when freed */
	if (tkms_secret_get_len(d->unseal.out) != TKMS_AES_KEY_LEN ||
	    !tkms_crypto_gcm_decrypt(d->unseal.out, d->blob.iv, g_bytes_get_data(aad, NULL),
				     g_bytes_get_size(aad), d->blob.body, d->blob.body_len,
				     d->blob.tag, out)) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_INTEGRITY_FAILURE,
				       "The sealed blob does not authenticate: it was changed "
				       "after sealing");
		return;
	}
	tkms_engine_op_return_bytes(op, plain);
}

void
tkms_engine_unseal(TkmsEngine *self, const TkmsActor *actor, GBytes *blob,
		   GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op =
		tkms_engine_op_new(self, "Unseal", actor, NULL, cancellable, callback, user_data);
	SealData *d = g_new0(SealData, 1);

	tkms_engine_op_set_data(op, d, seal_data_free);
	/* keep the blob's bytes alive: blob.* point into them */
	d->data = g_bytes_ref(blob);
	if (!tkms_seal_blob_parse(d->data, &d->blob)) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_INVALID_ARGUMENT,
					    "This is not a tkms sealed blob (bad header or "
					    "truncated); pass the exact output of Seal");
		return;
	}
	if (!tkms_engine_op_check_payload(op, "sealed data", d->blob.body_len, FALSE))
		return;
	if (d->blob.owner != actor->uid) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_PERMISSION_DENIED,
					    "This blob was sealed by another user; only that user "
					    "can unseal it");
		return;
	}
	tkms_tpm_blob_copy(&d->unseal.blob, &d->blob.object);
	d->unseal.pcrs = d->blob.pcrs;
	d->unseal.untrusted_blob = TRUE;
	d->unseal.owner_auth = TRUE;
	d->unseal.owner = d->blob.owner;
	tkms_tpm_unseal(self->tpm, actor->uid, &d->unseal, cancellable, unsealed_cb, op);
}

static void
random_free(gpointer p)
{
	TkmsTpmRandom *req = p;
	g_clear_pointer(&req->out, g_bytes_unref);
	g_free(req);
}

static void
random_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	TkmsTpmRandom *req = op->data;

	if (!tkms_engine_op_tpm_finish(op, res))
		return;
	tkms_engine_op_return_bytes(op, req->out);
}

void
tkms_engine_get_random(TkmsEngine *self, const TkmsActor *actor, guint32 length,
		       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op = tkms_engine_op_new(self, "GetRandom", actor, NULL, cancellable,
					      callback, user_data);
	TkmsTpmRandom *req;

	if (!tkms_engine_op_check_payload(op, "requested length", length, FALSE))
		return;
	req = g_new0(TkmsTpmRandom, 1);
	req->length = length;
	tkms_engine_op_set_data(op, req, random_free);
	tkms_tpm_random(self->tpm, actor->uid, req, cancellable, random_cb, op);
}
