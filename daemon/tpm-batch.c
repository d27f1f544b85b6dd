/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

/* SignBatch and HmacBatch on the TPM worker thread: one load of the key version's object (none
 * if the object cache has it loaded) and one session for many commands. */

#include "tpm-batch.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "crypto.h"
#include "tkms-error.h"
#include "tpm-private.h"
#include "tpm-seal-auth.h"

/* TPM work one request does while other uids wait for the worker, and at most (at least one
 * item either way): as an HMAC sequence's pieces (tpm-ops.c), each request is one short
 * attempt under the watchdog's CommandTimeout */
#define BATCH_BUDGET_US 10000
#define BATCH_MAX_US	1000000

gboolean
tkms_tpm_batch_hmac_fits(gsize len)
{
	return len <= TPM2_MAX_DIGEST_BUFFER;
}

static gboolean
sign_one(TkmsTpmContext *ctx, TkmsTpmKey *key, GBytes *item, GBytes **out, GError **error)
{
	TPM2B_DIGEST digest = {.size = 32};
	g_autofree TPMT_SIGNATURE *sig = NULL;
	gsize len = 0;
	const guint8 *p = g_bytes_get_data(item, &len);
	unsigned int md_len = sizeof(digest.buffer);
	TSS2_RC rc;

	/* as Sign: the message's SHA-256, with a NULL ticket (our keys are not restricted) */
	EVP_Digest(p != NULL ? p : (const guint8 *)"", len, digest.buffer, &md_len, EVP_sha256(),
		   NULL);
	for (;;) {
		rc = tkms_tpm_key_sign(ctx, key, &digest, &sig);
		if (!tkms_tpm_key_stale(ctx, key, rc))
			break;
		if (!tkms_tpm_key_reload(ctx, key, error))
			return FALSE;
	}
	if (!tkms_tpm_check(rc, "signing", error))
		return FALSE;
	if (sig->sigAlg == TPM2_ALG_ECDSA)
		*out = tkms_crypto_ecdsa_der(sig->signature.ecdsa.signatureR.buffer,
					     sig->signature.ecdsa.signatureR.size,
					     sig->signature.ecdsa.signatureS.buffer,
					     sig->signature.ecdsa.signatureS.size);
	else
		*out = g_bytes_new(sig->signature.rsassa.sig.buffer,
				   sig->signature.rsassa.sig.size);
	if (*out == NULL)
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "Cannot encode a signature; see the daemon log");
	return *out != NULL;
}

static gboolean
hmac_one(TkmsTpmContext *ctx, TkmsTpmKey *key, GBytes *item, GBytes **out, GError **error)
{
	g_autofree TPM2B_DIGEST *mac = NULL;
	TPM2B_MAX_BUFFER buf = {.size = g_bytes_get_size(item)};
	TSS2_RC rc;

	if (buf.size > 0)
		memcpy(buf.buffer, g_bytes_get_data(item, NULL), buf.size);
	for (;;) {
		/* the message may be secret and so may the MAC: encrypted both ways */
		rc = tkms_tpm_key_hmac(ctx, key, &buf, &mac);
		if (!tkms_tpm_key_stale(ctx, key, rc))
			break;
		if (!tkms_tpm_key_reload(ctx, key, error)) {
			OPENSSL_cleanse(&buf, sizeof(buf));
			return FALSE;
		}
	}
	OPENSSL_cleanse(&buf, sizeof(buf));
	if (!tkms_tpm_check(rc, "computing an HMAC", error))
		return FALSE;
	*out = tkms_secret_bytes_new_copy(mac->buffer, mac->size);
	OPENSSL_cleanse(mac->buffer, mac->size);
	return TRUE;
}

/* A policy session is reset by every command it authorizes: assert it again for the next. */
static gboolean
policy_again(TkmsTpmContext *ctx, ESYS_TR session, TkmsPcrMask pcrs, gboolean auth_value,
	     GError **error)
{
	TPML_PCR_SELECTION sel;
	TPM2B_DIGEST empty = {.size = 0};
	TSS2_RC rc;

	tkms_tpm_pcr_selection(pcrs, &sel);
	rc = Esys_PolicyPCR(ctx->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty,
			    &sel);
	if (!tkms_tpm_check(rc, "binding the session to PCRs", error))
		return FALSE;
	if (!auth_value)
		return TRUE;
	rc = Esys_PolicyAuthValue(ctx->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
	return tkms_tpm_check(rc, "binding the session to the auth value", error);
}

static gboolean
batch_func(TkmsTpmContext *ctx, gpointer data, GError **error)
{
	TkmsTpmBatch *req = data;
	gboolean hmac = req->op == TKMS_TPM_BATCH_HMAC;
	TkmsTpmKey key;
	guint first = req->out->len;
	gint64 start = g_get_monotonic_time();
	gboolean ok = TRUE;

	req->item_failed = FALSE;
	if (!tkms_tpm_key_load(ctx, &req->blob, &req->key_id, req->pcrs,
			       hmac ? TKMS_TPM_KEY_HMAC : TKMS_TPM_KEY_SIGN, &key, error))
		return FALSE;
	while (ok && req->out->len < req->items->len) {
		GBytes *item = g_ptr_array_index(req->items, req->out->len);
		GBytes *result = NULL;
		gint64 spent = g_get_monotonic_time() - start;

		if (req->out->len > first &&
		    (spent >= BATCH_MAX_US ||
		     (spent >= BATCH_BUDGET_US && g_atomic_int_get(&ctx->waiting) > 0)))
			break;
		if (hmac && !tkms_tpm_batch_hmac_fits(g_bytes_get_size(item)))
			break;
		if (req->pcrs != 0 && req->out->len > first)
			ok = policy_again(ctx, key.auth.auth, req->pcrs,
					  tkms_tpm_blob_is_bound(&req->blob), error);
		if (ok)
			ok = hmac ? hmac_one(ctx, &key, item, &result, error)
				  : sign_one(ctx, &key, item, &result, error);
		if (ok)
			g_ptr_array_add(req->out, result);
		else
			req->item_failed = TRUE;
	}
	tkms_tpm_key_release(ctx, &key);
	return ok;
}

void
tkms_tpm_batch(TkmsTpm *self, guint32 uid, TkmsTpmBatch *req, GCancellable *cancellable,
	       GAsyncReadyCallback callback, gpointer user_data)
{
	tkms_tpm_submit(self, uid, batch_func, req, cancellable, callback, user_data);
}
