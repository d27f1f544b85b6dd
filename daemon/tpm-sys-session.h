/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm-context.h"

G_BEGIN_DECLS

/*
 * The hot commands on a key version's object without PCR binding (TPM2_Sign, TPM2_Unseal,
 * TPM2_HMAC) run in the SYS session: an unbound HMAC session salted on the SRK, with AES-128-CFB
 * parameter encryption, that tkmsd keeps open (continueSession) and drives itself through the SYS
 * API, computing its salt, session key, HMACs, nonces and parameter encryption with OpenSSL's
 * default library context. ESYS in tpm2-tss 3.2.1 makes and frees an OpenSSL library context
 * for every caller nonce and fetches its digests anew: about a millisecond of CPU per command
 * in a session, more than swtpm's own Sign.
 *
 * As the shared session (tpm-context.h): salted, so its session key is unknown to whoever
 * watches the bus, and unbound, so each command's HMAC is keyed with the session key and the
 * object's auth value: it proves that value and nothing else, and authorizes no object whose
 * auth value tkmsd did not use for that command. Unseal's answer is encrypted, HMAC's message
 * and answer too; Sign carries no secret and is not. Every response's HMAC is checked before
 * anything in it is used. The SRK's public key that salts it is checked against the SRK's name.
 *
 * A command that fails in it ends it, flushed whatever the TPM answered (an error answer
 * carries no HMAC and proves nothing), unless the connection failed; the next one starts
 * another. It dies with the connection (context_teardown) and is flushed at a clean
 * stop.
 */

/* Flushes the SYS session (if the TPM still answers) and forgets it. */
void tkms_tpm_sys_session_drop(TkmsTpmContext *ctx);

typedef struct _TkmsTpmKey TkmsTpmKey;
/* TPM2_Sign of digest (SHA-256) with key (tkms_tpm_key_load): in the SYS session for a bound
 * object without PCRs, else through ESYS in key->auth. As Esys_Sign: the TPM's answer (or
 * SYS's, or TSS2_ESYS_RC_RSP_AUTH_FAILED for an answer without a session or whose HMAC does
 * not check), and on success *sig (g_free). */
TSS2_RC tkms_tpm_key_sign(TkmsTpmContext *ctx, TkmsTpmKey *key, const TPM2B_DIGEST *digest,
			  TPMT_SIGNATURE **sig);
/* TPM2_Unseal with key (loaded for Unseal): likewise; the answer travels encrypted either
 * way. On success *out (g_free after wiping). */
TSS2_RC tkms_tpm_key_unseal(TkmsTpmContext *ctx, TkmsTpmKey *key, TPM2B_SENSITIVE_DATA **out);
/* TPM2_HMAC (SHA-256) of msg with key (loaded for HMAC): likewise, msg and the MAC encrypted
 * either way. On success *mac (g_free after wiping). */
TSS2_RC tkms_tpm_key_hmac(TkmsTpmContext *ctx, TkmsTpmKey *key, const TPM2B_MAX_BUFFER *msg,
			  TPM2B_DIGEST **mac);

G_END_DECLS
