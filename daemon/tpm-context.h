/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <tss2/tss2_esys.h>

#include "tpm.h"

G_BEGIN_DECLS

/* Worker-thread state: only ever touched by the TPM worker thread. */
typedef struct {
	ESYS_CONTEXT *esys;
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_TR srk;
	/* the daemon's HMAC key behind per-uid auth values of sealed blobs (kept across
	 * reconnections; loaded from or created at seal_auth_path on first use) */
	gchar *seal_auth_path;
	/* the file was absent in a new state directory: it may be made (DESIGN.md) */
	gboolean may_create_seal_auth;
	TkmsTpmBlob seal_auth_key;
	/* bound key versions' derived auth values ("owner/version/name" -> TkmsSecret), so that
	 * a use costs no derivation (tpm-seal-auth.c); NULL until the first */
	GHashTable *key_auth_cache;
} TkmsTpmContext;

/* The TPM's response code without the parameter/handle/session number (TPM2_RC_AUTH_FAIL
 * and so on), or 0 if rc did not come from the TPM. */
TSS2_RC tkms_tpm_rc_base(TSS2_RC rc);
/* Maps a TSS2 return code to a TKMS_ERROR; `what` names the failed step for the message. */
gboolean tkms_tpm_check(TSS2_RC rc, const gchar *what, GError **error);

/* A salted HMAC session on the SRK (AES-128-CFB parameter encryption). */
gboolean tkms_tpm_start_hmac_session(TkmsTpmContext *ctx, ESYS_TR *session, GError **error);
/* An unsalted, unbound HMAC session without parameter encryption: it proves an object's auth
 * value without sending it, for commands that carry no secret; it costs no asymmetric
 * operation. Only for high-entropy auth values (an eavesdropper sees HMACs keyed with it). */
gboolean tkms_tpm_start_plain_hmac_session(TkmsTpmContext *ctx, ESYS_TR *session,
					   GError **error);
/* A salted policy session satisfied by PolicyPCR on the current PCR values (or a trial);
 * with_auth_value adds PolicyAuthValue, so the object's auth value is needed too. */
gboolean tkms_tpm_start_pcr_session(TkmsTpmContext *ctx, TkmsPcrMask pcrs, gboolean trial,
				    gboolean with_auth_value, ESYS_TR *session, GError **error);
void tkms_tpm_set_session_crypt(TkmsTpmContext *ctx, ESYS_TR session, gboolean decrypt,
				gboolean encrypt);
void tkms_tpm_flush(TkmsTpmContext *ctx, ESYS_TR *handle);
void tkms_tpm_pcr_selection(TkmsPcrMask pcrs, TPML_PCR_SELECTION *sel);

/* The session that authorizes use of an object: PolicyPCR for PCR-bound objects; else a salted
 * HMAC session when the command or its answer carries a secret, else the empty password. */
gboolean tkms_tpm_object_session(TkmsTpmContext *ctx, TkmsPcrMask pcrs, gboolean secret,
				 ESYS_TR *session, GError **error);

G_END_DECLS
