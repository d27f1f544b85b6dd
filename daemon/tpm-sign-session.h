/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm-context.h"

G_BEGIN_DECLS

/*
 * TPM2_Sign on a bound key version's object, authorized in the sign session: an unbound,
 * unsalted HMAC session that tkmsd keeps open (continueSession) and runs itself through the
 * SYS API, computing its HMACs and nonces with OpenSSL's default library context. ESYS in
 * tpm2-tss 3.2.1 makes and frees an OpenSSL library context for every caller nonce, about a
 * millisecond of CPU per command in a session: more than the TPM's own Sign on swtpm.
 *
 * Sign carries no secret either way (a digest in, a signature out), so nothing is encrypted.
 * Unbound, each command's HMAC is keyed with the object's auth value alone (256 bits derived
 * by tkmsd, tpm-seal-auth.c): it proves that value and nothing else, so the session can
 * authorize no object whose auth value tkmsd did not use for that command, and an eavesdropper
 * sees only HMACs under a key it cannot search for. Every response's HMAC is checked.
 *
 * A command that fails in it ends it (flushed if the TPM may still hold it); the next Sign
 * starts another. It dies with the connection (context_teardown) and is flushed at a clean
 * stop.
 */

/* TPM2_Sign with obj, whose name is name, and whose auth value is auth.
 * What the TPM answered (or SYS, or TSS2_ESYS_RC_RSP_AUTH_FAILED for a response whose HMAC
 * does not check), as Esys_Sign would; on success *sig is the signature (g_free). */
TSS2_RC tkms_tpm_sign_session_sign(TkmsTpmContext *ctx, ESYS_TR obj, const TPM2B_NAME *name,
				   const TPM2B_AUTH *auth, const TPM2B_DIGEST *digest,
				   const TPMT_SIG_SCHEME *scheme, const TPMT_TK_HASHCHECK *check,
				   TPMT_SIGNATURE **sig);
/* Flushes the sign session (if the TPM still answers) and forgets it. */
void tkms_tpm_sign_session_drop(TkmsTpmContext *ctx);

typedef struct _TkmsTpmKey TkmsTpmKey;
/* TPM2_Sign of digest (SHA-256) with key (tkms_tpm_key_load, not secret): in the sign session
 * if key->own_session, else through ESYS in key->auth. As Esys_Sign: the TPM's answer, and on
 * success *sig (g_free). */
TSS2_RC tkms_tpm_key_sign(TkmsTpmContext *ctx, TkmsTpmKey *key, const TPM2B_DIGEST *digest,
			  TPMT_SIGNATURE **sig);

G_END_DECLS
