/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * TkmsEngine: every tkms operation with plain arguments, knowing nothing of D-Bus. Front-ends
 * (the D-Bus layer in manager.c, the scheduler of key rotation) authorize first, then call the
 * engine with an actor: who the work is done for. The engine checks the input, does the work
 * (key store, TPM worker, crypto, key cache), and writes the operation's audit record itself:
 * there is no unaudited success (if the record cannot be written, the operation fails), and
 * lifecycle changes (CreateKey, DestroyKey) are durable, record included, before they finish.
 * Every error is in TKMS_ERROR. Operation names, used in the audit log, are those of the D-Bus
 * methods.
 */

#include <gio/gio.h>

#include "key-ref.h"
#include "key.h"
#include "tkms-config.h"

G_BEGIN_DECLS

/* uid of an actor whose uid could not be learned (only ever in refusals' audit records) */
#define TKMS_ACTOR_UID_UNKNOWN G_MAXUINT32

/* Who an operation is done for: a caller (its uid, and for the audit record its pid and bus
 * name when known), or tkmsd itself (daemon: work no caller started, e.g. the scheduler). */
typedef struct {
	guint32 uid;
	guint32 pid;	      /* 0: unknown */
	const gchar *bus_name; /* NULL: not a bus caller */
	gboolean daemon;
	/* holds org.tkms.KeyManager.admin (the front-end asks only when it matters: another
	 * owner's key, or a compromised version to process) */
	gboolean admin;
	/* If set, the engine may ask whether the caller holds admin when only a compromised
	 * version could still make the call succeed (Verify, VerifyHmac, VerifyDigest): the
	 * front-end calls answer(held, op) once, in the main context. */
	void (*ask_admin)(gpointer data, void (*answer)(gboolean held, gpointer op), gpointer op);
	gpointer ask_admin_data;
} TkmsActor;

/* tkmsd itself, acting as root. */
#define TKMS_ACTOR_INIT_DAEMON {.uid = 0, .pid = 0, .bus_name = NULL, .daemon = TRUE}

/* CreateKey's optional arguments. */
typedef struct {
	const gchar *protection;  /* NULL, or the protection of the key's type */
	const gchar *description; /* NULL, or at most 256 bytes */
	TkmsPcrMask pcrs;	  /* PCRs to bind the key to (PolicyPCR), or 0 */
	gint64 activate_at;	  /* Unix time: pre-active until then; 0 or past: active now */
	/* password keys only; unset: the defaults (32, alnum-symbols, nothing excluded) */
	gboolean has_length;
	guint32 length;
	const gchar *charset;
	const gchar *exclude;
} TkmsKeyOptions;

/* PCR indices as a mask; an index past the last PCR is InvalidArgument. */
gboolean tkms_pcr_mask_from_indices(const guint32 *indices, gsize n, TkmsPcrMask *mask,
				    GError **error);

#define TKMS_TYPE_ENGINE (tkms_engine_get_type())
G_DECLARE_FINAL_TYPE(TkmsEngine, tkms_engine, TKMS, ENGINE, GObject)

/* Opens the key store and the audit log in config->state_dir and starts the TPM worker.
 * Signal "tpm-status-changed" (main context) when the TPM's availability or state changed. */
TkmsEngine *tkms_engine_new(const TkmsConfig *config, GError **error);
const TkmsConfig *tkms_engine_get_config(TkmsEngine *self);
void tkms_engine_get_tpm_status(TkmsEngine *self, TkmsTpmStatus *status);
/* Reconnects to the TPM if needed and refreshes its status (no audit record). */
void tkms_engine_refresh_tpm(TkmsEngine *self);
/* Ends the TPM worker and flushes the audit log and the key cache (at exit). */
void tkms_engine_shutdown(TkmsEngine *self);

/* The audit record of an operation refused before it reached the engine (authorization,
 * limits, a malformed OWNER): one record, result "denied" for PermissionDenied, else
 * "error". key may be NULL. */
void tkms_engine_audit_refusal(TkmsEngine *self, const TkmsActor *actor, const gchar *operation,
			       const TkmsKeyRef *key, const GError *error);
/* Whether uid has an account or keys: an OWNER:NAME naming neither is NotFound. */
gboolean tkms_engine_owner_exists(TkmsEngine *self, guint32 uid);

/* ---- keys (engine-keys.c) ---- */
void tkms_engine_create_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			    const gchar *type, const TkmsKeyOptions *options,
			    GCancellable *cancellable, GAsyncReadyCallback callback,
			    gpointer user_data);
TkmsKey *tkms_engine_create_key_finish(TkmsEngine *self, GAsyncResult *result, GError **error);
/* A new reference to the key. */
TkmsKey *tkms_engine_get_key_info(TkmsEngine *self, const TkmsActor *actor,
				  const TkmsKeyRef *key, GError **error);
/* Every owner, for the list operations. */
#define TKMS_ENGINE_ALL_OWNERS G_MAXUINT32

/* Every key of owner (TKMS_ENGINE_ALL_OWNERS: of everybody, "ListAllKeys") as aa{sv} key
 * info; LimitExceeded, naming the paged operation, past 16 MiB. */
GVariant *tkms_engine_list_keys(TkmsEngine *self, const TkmsActor *actor, guint32 owner,
				GError **error);
/* One page (aa{sv}) after page_token ("" starts); *next_page_token is "" after the last.
 * page_size 0 is the default (100), at most 1000. */
GVariant *tkms_engine_list_keys_page(TkmsEngine *self, const TkmsActor *actor, guint32 owner,
				     const gchar *page_token, guint page_size,
				     gchar **next_page_token, GError **error);
void tkms_engine_destroy_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			     GCancellable *cancellable, GAsyncReadyCallback callback,
			     gpointer user_data);
gboolean tkms_engine_destroy_key_finish(TkmsEngine *self, GAsyncResult *result, GError **error);
/* The PEM SubjectPublicKeyInfo of a signing key's primary version. */
gchar *tkms_engine_get_public_key(TkmsEngine *self, const TkmsActor *actor,
				  const TkmsKeyRef *key, GError **error);

/* ---- the life cycle (engine-lifecycle.c): versions, states, destruction, policies ----
 * Each change is one durable transaction of the key store and one durable audit record.
 * Changes to one key run one at a time in the order they came, each on the key the previous
 * one saved; past 64 waiting changes to one key, Busy. Every _finish returns the key as saved
 * (a new reference). */
void tkms_engine_rotate_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			    GCancellable *cancellable, GAsyncReadyCallback callback,
			    gpointer user_data);
void tkms_engine_set_primary_version(TkmsEngine *self, const TkmsActor *actor,
				     const TkmsKeyRef *key, guint32 version,
				     GCancellable *cancellable, GAsyncReadyCallback callback,
				     gpointer user_data);
/* state: active (resume), deactivated, suspended or compromised */
void tkms_engine_set_key_version_state(TkmsEngine *self, const TkmsActor *actor,
				       const TkmsKeyRef *key, guint32 version, const gchar *state,
				       GCancellable *cancellable, GAsyncReadyCallback callback,
				       gpointer user_data);
/* version 0: every version (DestroyKey), else one version that is not the primary
 * (DestroyKeyVersion): destroy-scheduled for [lifecycle] DestroyWaitingPeriod, or destroyed
 * at once if that is 0. */
void tkms_engine_destroy_key_version(TkmsEngine *self, const TkmsActor *actor,
				     const TkmsKeyRef *key, guint32 version,
				     GCancellable *cancellable, GAsyncReadyCallback callback,
				     gpointer user_data);
/* version 0: every destroy-scheduled version; restores the states from before. */
void tkms_engine_cancel_key_destruction(TkmsEngine *self, const TkmsActor *actor,
					const TkmsKeyRef *key, guint32 version,
					GCancellable *cancellable, GAsyncReadyCallback callback,
					gpointer user_data);
/* policy: period, max-uses, deactivate-after, destroy-after (t each); empty removes it. */
void tkms_engine_set_rotation_policy(TkmsEngine *self, const TkmsActor *actor,
				     const TkmsKeyRef *key, GVariant *policy,
				     GCancellable *cancellable, GAsyncReadyCallback callback,
				     gpointer user_data);
TkmsKey *tkms_engine_key_change_finish(TkmsEngine *self, GAsyncResult *result, GError **error);
/* Whether decrypting ciphertext with key needs the admin action: its version is compromised
 * (FALSE for anything else, errors included: the engine reports those itself). */
gboolean tkms_engine_decrypt_needs_admin(TkmsEngine *self, const TkmsKeyRef *key,
					 GBytes *ciphertext);

/* ---- crypto (engine-crypto.c); every _finish but the verifying ones returns the output ---- */
void tkms_engine_encrypt(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			 GBytes *plaintext, GBytes *context, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data);
void tkms_engine_decrypt(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			 GBytes *ciphertext, GBytes *context, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data);
void tkms_engine_sign(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
		      GBytes *data, GCancellable *cancellable, GAsyncReadyCallback callback,
		      gpointer user_data);
void tkms_engine_hmac(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
		      GBytes *data, GCancellable *cancellable, GAsyncReadyCallback callback,
		      gpointer user_data);
void tkms_engine_derive_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			    GBytes *context, guint32 length, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);
GBytes *tkms_engine_bytes_finish(TkmsEngine *self, GAsyncResult *result, GError **error);

void tkms_engine_verify(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			GBytes *data, GBytes *signature, GCancellable *cancellable,
			GAsyncReadyCallback callback, gpointer user_data);
void tkms_engine_verify_hmac(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			     GBytes *data, GBytes *mac, GCancellable *cancellable,
			     GAsyncReadyCallback callback, gpointer user_data);
/* Sign and Verify of a SHA-256 digest the caller computed (exactly 32 bytes): the same
 * signatures as Sign / Verify of the message. SignDigest finishes with bytes_finish,
 * VerifyDigest with verify_finish. */
void tkms_engine_sign_digest(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			     GBytes *digest, GCancellable *cancellable,
			     GAsyncReadyCallback callback, gpointer user_data);
void tkms_engine_verify_digest(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			       GBytes *digest, GBytes *signature, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);

/* ---- data keys and rewrapping (engine-datakey.c) ---- */
/* Data key lengths: 1 to 64 bytes (512 bits: AES-256-XTS, HMAC-SHA-512). */
#define TKMS_DATA_KEY_MAX 64
/* A fresh data key of length bytes, and the same bytes as Encrypt(key, plaintext, context)
 * would wrap them. */
void tkms_engine_generate_data_key(TkmsEngine *self, const TkmsActor *actor,
				   const TkmsKeyRef *key, guint32 length, GBytes *context,
				   GCancellable *cancellable, GAsyncReadyCallback callback,
				   gpointer user_data);
/* *plaintext is wiped when its last reference goes. */
gboolean tkms_engine_generate_data_key_finish(TkmsEngine *self, GAsyncResult *result,
					      GBytes **plaintext, GBytes **wrapped,
					      GError **error);
/* Decrypt under the ciphertext's version, encrypt under the primary with a fresh IV; the
 * plaintext stays in tkmsd. Finished by bytes_finish. */
void tkms_engine_re_encrypt(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			    GBytes *ciphertext, GBytes *context, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);

/* FALSE with error set on failure; else TRUE and *valid. */
gboolean tkms_engine_verify_finish(TkmsEngine *self, GAsyncResult *result, gboolean *valid,
				   GError **error);

/* ---- sealing and randomness (engine-seal.c), finished by tkms_engine_bytes_finish ---- */
/* A blob only this TPM and actor's uid can unseal. */
void tkms_engine_seal(TkmsEngine *self, const TkmsActor *actor, GBytes *data, TkmsPcrMask pcrs,
		      GCancellable *cancellable, GAsyncReadyCallback callback,
		      gpointer user_data);
void tkms_engine_unseal(TkmsEngine *self, const TkmsActor *actor, GBytes *blob,
			GCancellable *cancellable, GAsyncReadyCallback callback,
			gpointer user_data);
void tkms_engine_get_random(TkmsEngine *self, const TkmsActor *actor, guint32 length,
			    GCancellable *cancellable, GAsyncReadyCallback callback,
			    gpointer user_data);

/* ---- password keys (engine-password.c) ---- */
/* A password ImportSecret takes has 1 to this many bytes. */
#define TKMS_SECRET_MAX 4096
/* Seals secret (1-4096 bytes of UTF-8 without NUL) as a new version of a password key, which
 * becomes the current one (the old current the previous). A life-cycle change (engine.h
 * above): finished by tkms_engine_key_change_finish, with the key as saved, whose primary is
 * the new version. */
void tkms_engine_import_secret(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			       GBytes *secret, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
/* The password of a password key at stage ("current", "" for it, "pending" or "previous");
 * finished by tkms_engine_bytes_finish: bytes that are wiped when their last reference goes. */
void tkms_engine_get_secret(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			    const gchar *stage, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);

/* ---- batches (engine-batch.c) ----
 * EncryptBatch, DecryptBatch, SignBatch and HmacBatch: the single operation on each of 1 to
 * TKMS_BATCH_MAX items (GBytes), with one key lookup and one unseal or TPM object load for the
 * batch, and one audit record per item. One item that fails fails the batch: the error's
 * message starts with "item N: " (N from 0). Finished by tkms_engine_batch_finish. */
#define TKMS_BATCH_MAX 1024
void tkms_engine_encrypt_batch(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			       GPtrArray *plaintexts, GBytes *context, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
void tkms_engine_decrypt_batch(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			       GPtrArray *ciphertexts, GBytes *context, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
void tkms_engine_sign_batch(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			    GPtrArray *messages, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);
void tkms_engine_hmac_batch(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			    GPtrArray *messages, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);
/* The outputs (GBytes, in the items' order; DecryptBatch's and HmacBatch's are wiped when
 * freed), or NULL with error set. */
GPtrArray *tkms_engine_batch_finish(TkmsEngine *self, GAsyncResult *result, GError **error);
/* Whether decrypting any of ciphertexts with key needs the admin action (as
 * tkms_engine_decrypt_needs_admin). */
gboolean tkms_engine_decrypt_batch_needs_admin(TkmsEngine *self, const TkmsKeyRef *key,
					       GPtrArray *ciphertexts);
/* A batch's size against the limits (also on arrival, by the D-Bus layer): at most
 * TKMS_BATCH_MAX items (LimitExceeded; n_items: how many there are), and their bytes, less
 * overhead per item, at most [limits] MaxPayload. An empty batch passes here (the operation
 * refuses it). */
gboolean tkms_engine_check_batch_count(TkmsEngine *self, gsize n_items, GError **error);
gboolean tkms_engine_check_batch(TkmsEngine *self, GPtrArray *items, gsize overhead,
				 GError **error);

/* A payload named what of len bytes against [limits] MaxPayload (and, unless allow_empty,
 * not empty): the one check and message, used by the engine and, on arrival, by the D-Bus
 * layer. */
gboolean tkms_engine_check_payload(TkmsEngine *self, const gchar *what, gsize len,
				   gboolean allow_empty, GError **error);

G_END_DECLS
