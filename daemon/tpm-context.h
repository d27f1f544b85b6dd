/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/types.h>
#include <tss2/tss2_esys.h>

#include "tpm.h"

G_BEGIN_DECLS

typedef struct _TkmsTpmObjectCache TkmsTpmObjectCache;

/* Worker-thread state: only ever touched by the TPM worker thread. */
typedef struct {
	ESYS_CONTEXT *esys;
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_TR srk;
	/* The shared session (DESIGN.md, "TPM usage"): an unbound HMAC session salted on the SRK,
	 * with AES-128-CFB parameter encryption, kept open across commands (continueSession) for
	 * every command that carries a secret, since starting one costs ~11 ms of ESYS CPU.
	 * ESYS_TR_NONE until it is needed, and again once it may be spoilt (tkms_tpm_session). */
	ESYS_TR session;
	/* a command of the current attempt ran in it: if the attempt fails, it is restarted */
	gboolean session_used;
	/* the SYS session (tpm-sys-session.h), 0 until it is needed, the TPM's last nonce in it,
	 * and its session key (a secret) */
	TPMI_SH_AUTH_SESSION sys_session;
	TPM2B_NONCE sys_nonce_tpm;
	guint8 sys_session_key[32];
	/* key versions' objects kept loaded between requests (tpm-object-cache.h) */
	TkmsTpmObjectCache *objects;
	/* the number of the request being served, in the order requests were made */
	guint64 job_seq;
	/* the daemon's HMAC key behind per-uid auth values of sealed blobs (kept across
	 * reconnections; loaded from or created at seal_auth_path on first use) */
	gchar *seal_auth_path;
	/* the file was absent in a new state directory: it may be made (DESIGN.md) */
	gboolean may_create_seal_auth;
	TkmsTpmBlob seal_auth_key;
	/* bound key versions' derived auth values ("owner/version/name" -> TkmsSecret), so that
	 * a use costs no derivation (tpm-seal-auth.c); NULL until the first */
	GHashTable *key_auth_cache;
	/* GetRandom's DRBG, seeded from the TPM (tpm-drbg.c); NULL until the first request */
	EVP_RAND_CTX *drbg;
	gsize drbg_output;     /* bytes generated since it was last seeded */
	gint64 drbg_seeded_at; /* monotonic time of that seeding */
	/* uids in line for the worker besides the one it serves (tpm.c keeps it; atomic): a
	 * request in pieces ends its piece soon when others wait */
	gint waiting;
} TkmsTpmContext;

/* The TPM's response code without the parameter/handle/session number (TPM2_RC_AUTH_FAIL
 * and so on), or 0 if rc did not come from the TPM. */
TSS2_RC tkms_tpm_rc_base(TSS2_RC rc);
/* Maps a TSS2 return code to a TKMS_ERROR; `what` names the failed step for the message. */
gboolean tkms_tpm_check(TSS2_RC rc, const gchar *what, GError **error);

/* The shared session, started if there is none; the current attempt is marked as using it.
 * Never flush it: tkms_tpm_session_drop does, when a failure may have spoilt it. */
gboolean tkms_tpm_session(TkmsTpmContext *ctx, ESYS_TR *session, GError **error);
/* Flushes the shared session (if the TPM still answers) and forgets it. */
void tkms_tpm_session_drop(TkmsTpmContext *ctx);
/* A policy session satisfied by PolicyPCR on the current PCR values (or a trial);
 * with_auth_value adds PolicyAuthValue, so the object's auth value is needed too. Unsalted and
 * without parameter encryption: the shared session joins it when a secret travels. */
gboolean tkms_tpm_start_pcr_session(TkmsTpmContext *ctx, TkmsPcrMask pcrs, gboolean trial,
				    gboolean with_auth_value, ESYS_TR *session, GError **error);
/* Sets the parameter encryption of the next command in session (a no-op for the password
 * "session"); continueSession is always set. */
void tkms_tpm_set_session_crypt(TkmsTpmContext *ctx, ESYS_TR session, gboolean decrypt,
				gboolean encrypt);
/* Flushes a transient object or a session of this request; never the shared session. */
void tkms_tpm_flush(TkmsTpmContext *ctx, ESYS_TR *handle);
void tkms_tpm_pcr_selection(TkmsPcrMask pcrs, TPML_PCR_SELECTION *sel);

/*
 * The sessions of one command on an object:
 *   auth:  what authorizes the object. The empty password (no secret travels); the shared
 *          session, for an object whose auth value tkmsd holds (empty or derived): it is
 *          unbound, so each command's HMAC is keyed with that object's own auth value and
 *          proves exactly it, nothing else (a derived auth value: whether a secret travels
 *          or not); or a policy session of this command (PCR-bound).
 *   crypt: the shared session as an encrypt/decrypt-only session beside a policy session,
 *          when a secret travels; else ESYS_TR_NONE.
 */
typedef struct {
	ESYS_TR auth;
	ESYS_TR crypt;
} TkmsTpmAuth;

#define TKMS_TPM_AUTH_INIT                                                                         \
	{                                                                                          \
		ESYS_TR_NONE, ESYS_TR_NONE                                                         \
	}

/* The authorization of an object whose auth value is empty: a policy session for PCR-bound
 * ones (beside the shared session if secret: the command or its answer carries a secret);
 * else the shared session if secret, else the password. */
gboolean tkms_tpm_object_auth(TkmsTpmContext *ctx, TkmsPcrMask pcrs, gboolean secret,
			      TkmsTpmAuth *auth, GError **error);
/* Parameter encryption of the next command, in the shared session wherever it is in auth. */
void tkms_tpm_auth_crypt(TkmsTpmContext *ctx, const TkmsTpmAuth *auth, gboolean decrypt,
			 gboolean encrypt);
/* Flushes the sessions of this command, leaves the shared one open; auth is emptied. */
void tkms_tpm_auth_clear(TkmsTpmContext *ctx, TkmsTpmAuth *auth);

G_END_DECLS
