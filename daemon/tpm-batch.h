/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm.h"

G_BEGIN_DECLS

/*
 * SignBatch and HmacBatch in the TPM: a key version's object is loaded once and does the
 * command for one item after another. While other uids wait for the worker, a request ends
 * after about 10 ms of TPM work so that their requests take their turns (else after a second
 * at most); the caller submits the same request again for the rest (a request always makes
 * progress). An HMAC
 * request also ends at a message longer than one TPM2_HMAC command takes
 * (tkms_tpm_batch_hmac_fits): tkms_tpm_hmac does that one.
 */
typedef enum {
	TKMS_TPM_BATCH_SIGN,
	TKMS_TPM_BATCH_HMAC,
} TkmsTpmBatchOp;

typedef struct {
	TkmsTpmBatchOp op;
	TkmsTpmBlob blob;
	TkmsPcrMask pcrs;
	TkmsTpmKeyId key_id; /* used if the blob is bound */
	GPtrArray *items;    /* GBytes: the messages */
	/* GBytes: the results of the items done so far, in order (the caller makes it, with
	 * g_bytes_unref to free): signatures (DER for ECDSA), or MACs wiped when freed */
	GPtrArray *out;
	/* on failure: the command for item out->len failed (not the load) */
	gboolean item_failed;
} TkmsTpmBatch;

void tkms_tpm_batch(TkmsTpm *self, guint32 uid, TkmsTpmBatch *req, GCancellable *cancellable,
		    GAsyncReadyCallback callback, gpointer user_data);
/* Whether an HMAC of a message of len bytes is one TPM2_HMAC command (a batch item). */
gboolean tkms_tpm_batch_hmac_fits(gsize len);

G_END_DECLS
