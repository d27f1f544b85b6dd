/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

/* The worker's TPM context: response codes, handles and sessions. */

#include "tpm-context.h"

#include <string.h>
#include <tss2/tss2_rc.h>

#include "tkms-error.h"

TSS2_RC
tkms_tpm_rc_base(TSS2_RC rc)
{
	if ((rc & TSS2_RC_LAYER_MASK) != 0)
		return 0;
	/* format-one codes carry the parameter/handle/session number in bits 6 and 8-11 */
	if (rc & TPM2_RC_FMT1)
		return TPM2_RC_FMT1 | (rc & 0x3f);
	return rc & 0xfff;
}

gboolean
tkms_tpm_check(TSS2_RC rc, const gchar *what, GError **error)
{
	TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
	TSS2_RC base;

	if (rc == TSS2_RC_SUCCESS)
		return TRUE;
	if (rc == TSS2_ESYS_RC_RSP_AUTH_FAILED) {
		/* An answer whose session HMAC does not check (ESYS's sessions or ours,
		 * tpm-sys-session.c) was altered between the TPM and us, or the TPM is faulty. It
		 * is not a lost connection: the worker would reconnect and silently retry, and an
		 * attacker on the TPM bus would leave no trace in the log or the audit trail. */
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE,
			    "The TPM's answer (%s) failed its integrity check: it was altered on "
			    "the way from the TPM, or the TPM is faulty",
			    what);
		return FALSE;
	}
	if (layer == TSS2_TCTI_RC_LAYER || layer == TSS2_SYS_RC_LAYER ||
	    layer == TSS2_MU_RC_LAYER || layer == TSS2_ESAPI_RC_LAYER) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_TPM_UNAVAILABLE,
			    "The TPM did not answer (%s: %s); check that the TPM or swtpm is "
			    "running, then retry",
			    what, Tss2_RC_Decode(rc));
		return FALSE;
	}
	base = tkms_tpm_rc_base(rc);
	if (base >= TPM2_RC_REFERENCE_H0 && base <= TPM2_RC_REFERENCE_S6) {
		/* our storage root key or session vanished: the TPM was reset under us */
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_TPM_UNAVAILABLE,
			    "The TPM was reset (%s: %s); retry", what, Tss2_RC_Decode(rc));
		return FALSE;
	}
	switch (base) {
	case TPM2_RC_LOCKOUT:
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_TPM_LOCKOUT,
			    "The TPM is in dictionary-attack lockout (%s); an administrator must "
			    "reset it or wait for the lockout to expire",
			    what);
		return FALSE;
	case TPM2_RC_POLICY_FAIL:
	case TPM2_RC_PCR_CHANGED:
	case TPM2_RC_POLICY:
		g_set_error(
			error, TKMS_ERROR, TKMS_ERROR_POLICY_MISMATCH,
			"The TPM policy is not satisfied (%s): a PCR this object is bound to has "
			"changed; it can only be used in the platform state it was bound to",
			what);
		return FALSE;
	case TPM2_RC_BAD_AUTH:
	case TPM2_RC_AUTH_FAIL:
		/* every object's auth value is derived from the owner, name and version recorded
		 * with it: a refusal means the record does not belong to the object */
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE,
			    "The TPM object does not match its record (%s): the key store was "
			    "copied or edited, or the blob belongs to another key or user; restore "
			    "the state directory from a backup",
			    what);
		return FALSE;
	case TPM2_RC_SESSION_MEMORY:
	case TPM2_RC_SESSION_HANDLES:
		/* Its session slots are full, and tkmsd holds at most three sessions: the others
		 * are sessions it cannot flush, for it never learnt their handles (the TPM started
		 * them, and an error answer forged on the bus hid them). As for a lost connection,
		 * the worker connects again, which flushes whatever the TPM holds (tpm.c,
		 * flush_leftovers; a resource manager flushes a closed connection's own). */
	case TPM2_RC_INITIALIZE:
	case TPM2_RC_FAILURE:
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_TPM_UNAVAILABLE,
			    "The TPM is not ready (%s: %s); retry shortly", what,
			    Tss2_RC_Decode(rc));
		return FALSE;
	default:
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The TPM refused %s (%s); see the daemon log", what,
			    Tss2_RC_Decode(rc));
		return FALSE;
	}
}

/* TPM2_FlushContext of handle, and ESYS's record of it freed: ESYS keeps it when the answer is
 * an error, which may be forged (a session the TPM still holds is flushed with the next
 * connection, which a TPM short of session slots brings about: tkms_tpm_check). */
static void
flush_esys(TkmsTpmContext *ctx, ESYS_TR handle)
{
	if (Esys_FlushContext(ctx->esys, handle) != TSS2_RC_SUCCESS)
		Esys_TR_Close(ctx->esys, &handle);
}

void
tkms_tpm_flush(TkmsTpmContext *ctx, ESYS_TR *handle)
{
	if (*handle == ESYS_TR_NONE || *handle == ESYS_TR_PASSWORD)
		return;
	/* the shared session stays open: whoever holds it forgets it here */
	if (*handle != ctx->session && ctx->esys != NULL)
		flush_esys(ctx, *handle);
	*handle = ESYS_TR_NONE;
}

void
tkms_tpm_pcr_selection(TkmsPcrMask pcrs, TPML_PCR_SELECTION *sel)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	for (guint i = 0; i < TKMS_PCR_MAX; i++)
		if (pcrs & (1u << i))
			sel->pcrSelections[0].pcrSelect[i / 8] |= 1 << (i % 8);
}

static const TPMT_SYM_DEF session_sym = {
	.algorithm = TPM2_ALG_AES,
	.keyBits = {.aes = 128},
	.mode = {.aes = TPM2_ALG_CFB},
};

static const TPMT_SYM_DEF no_sym = {.algorithm = TPM2_ALG_NULL};

gboolean
tkms_tpm_session(TkmsTpmContext *ctx, ESYS_TR *session, GError **error)
{
	TSS2_RC rc;

	if (ctx->session == ESYS_TR_NONE) {
		/* salted on the SRK: the session key, and so every parameter it encrypts, is
		 * unknown to whoever watches the bus */
		rc = Esys_StartAuthSession(ctx->esys, ctx->srk, ESYS_TR_NONE, ESYS_TR_NONE,
					   ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_HMAC,
					   &session_sym, TPM2_ALG_SHA256, &ctx->session);
		if (!tkms_tpm_check(rc, "starting the encrypted session", error)) {
			ctx->session = ESYS_TR_NONE;
			return FALSE;
		}
		g_debug("started the shared encrypted session");
	}
	ctx->session_used = TRUE;
	*session = ctx->session;
	return TRUE;
}

void
tkms_tpm_session_drop(TkmsTpmContext *ctx)
{
	if (ctx->session == ESYS_TR_NONE)
		return;
	if (ctx->esys != NULL)
		flush_esys(ctx, ctx->session);
	ctx->session = ESYS_TR_NONE;
	g_debug("dropped the shared encrypted session");
}

gboolean
tkms_tpm_start_pcr_session(TkmsTpmContext *ctx, TkmsPcrMask pcrs, gboolean trial,
			   gboolean with_auth_value, ESYS_TR *session, GError **error)
{
	TPML_PCR_SELECTION sel;
	TPM2B_DIGEST empty = {.size = 0};
	TSS2_RC rc;

	/* unsalted: the policy proves PCR values, and with PolicyAuthValue a high-entropy auth
	 * value by HMAC without sending it; a secret travels in the shared session beside it */
	rc = Esys_StartAuthSession(
		ctx->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
		NULL, trial ? TPM2_SE_TRIAL : TPM2_SE_POLICY, &no_sym, TPM2_ALG_SHA256, session);
	if (!tkms_tpm_check(rc, "starting a policy session", error))
		return FALSE;
	/* An empty digest makes the TPM use the PCR values as they are now. */
	tkms_tpm_pcr_selection(pcrs, &sel);
	rc = Esys_PolicyPCR(ctx->esys, *session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty,
			    &sel);
	if (!tkms_tpm_check(rc, "binding the session to PCRs", error)) {
		tkms_tpm_flush(ctx, session);
		return FALSE;
	}
	if (with_auth_value) {
		rc = Esys_PolicyAuthValue(ctx->esys, *session, ESYS_TR_NONE, ESYS_TR_NONE,
					  ESYS_TR_NONE);
		if (!tkms_tpm_check(rc, "binding the session to the auth value", error)) {
			tkms_tpm_flush(ctx, session);
			return FALSE;
		}
	}
	return TRUE;
}

void
tkms_tpm_set_session_crypt(TkmsTpmContext *ctx, ESYS_TR session, gboolean decrypt, gboolean encrypt)
{
	TPMA_SESSION flags = TPMA_SESSION_CONTINUESESSION;
	if (session == ESYS_TR_PASSWORD || session == ESYS_TR_NONE)
		return;
	if (decrypt)
		flags |= TPMA_SESSION_DECRYPT;
	if (encrypt)
		flags |= TPMA_SESSION_ENCRYPT;
	Esys_TRSess_SetAttributes(ctx->esys, session, flags, 0xff);
}

gboolean
tkms_tpm_object_auth(TkmsTpmContext *ctx, TkmsPcrMask pcrs, gboolean secret, TkmsTpmAuth *auth,
		     GError **error)
{
	*auth = (TkmsTpmAuth)TKMS_TPM_AUTH_INIT;
	if (pcrs != 0) {
		if (!tkms_tpm_start_pcr_session(ctx, pcrs, FALSE, FALSE, &auth->auth, error))
			return FALSE;
		if (!secret || tkms_tpm_session(ctx, &auth->crypt, error))
			return TRUE;
		tkms_tpm_auth_clear(ctx, auth);
		return FALSE;
	}
	if (!secret) {
		/* the TPM-wrapped blob is the credential */
		auth->auth = ESYS_TR_PASSWORD;
		return TRUE;
	}
	return tkms_tpm_session(ctx, &auth->auth, error);
}

void
tkms_tpm_auth_crypt(TkmsTpmContext *ctx, const TkmsTpmAuth *auth, gboolean decrypt,
		    gboolean encrypt)
{
	if (auth->auth == ctx->session)
		tkms_tpm_set_session_crypt(ctx, auth->auth, decrypt, encrypt);
	else if (auth->crypt == ctx->session)
		tkms_tpm_set_session_crypt(ctx, auth->crypt, decrypt, encrypt);
}

void
tkms_tpm_auth_clear(TkmsTpmContext *ctx, TkmsTpmAuth *auth)
{
	tkms_tpm_flush(ctx, &auth->auth);
	tkms_tpm_flush(ctx, &auth->crypt);
}
