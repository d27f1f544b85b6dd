/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "audit.h"
#include "ciphertext.h"
#include "engine.h"
#include "keycache.h"
#include "keystore.h"
#include "scheduler.h"
#include "tkms-error.h"
#include "tpm.h"

G_BEGIN_DECLS

struct _TkmsEngine {
	GObject parent_instance;
	TkmsConfig config;
	TkmsTpm *tpm;
	TkmsKeystore *keystore;
	TkmsAudit *audit;
	TkmsKeyCache *keycache;
	/* "owner/name" of a key with a life-cycle change under way -> the changes queued behind
	 * it (engine-lifecycle.c) */
	GHashTable *changing;
	TkmsScheduler *scheduler;
	GHashTable *counters;	     /* "owner/name/version" -> TkmsUseCounter (engine-usage.c) */
	GHashTable *usage_rotations; /* "owner/name" -> the calls waiting for its rotation */
	gboolean counting_stopped;   /* tkms_engine_usage_release ran: no more uses */
	/* password rotations this tkmsd drives, "owner/name" -> its driver
	 * (engine-password-rotation.c) */
	GHashTable *rotations;
	GCancellable *rotation_cancellable; /* cancelled at stop: hooks are killed */
	gboolean rotations_stopped;
	guint resume_source;
};

typedef struct _TkmsUseCounter TkmsUseCounter;

/* One asynchronous operation, from its start through its audit record to its result. It is
 * the task data of its GTask; exactly one of the tkms_engine_op_return_* / _fail functions
 * ends it (and frees it). */
typedef struct {
	TkmsEngine *engine;
	GTask *task;
	const gchar *name; /* the operation, as in the audit log */
	gboolean lifecycle; /* its record is durable before it finishes */
	gboolean audited;   /* its record of success is written (tkms_engine_op_save) */
	TkmsActor actor;
	gboolean has_key;
	TkmsKeyRef key;
	guint32 version; /* the key version used, for the audit record */
	TkmsKey *k;	 /* the key, once looked up */
	gpointer data;
	GDestroyNotify data_free;
	gchar *detail;	       /* for the audit record: what changed */
	const gchar *warning; /* for the audit record */
	GArray *compromised;  /* verify: compromised versions (guint32) not tried, newest first */
} TkmsEngineOp;

TkmsEngineOp *tkms_engine_op_new(TkmsEngine *self, const gchar *name, const TkmsActor *actor,
				 const TkmsKeyRef *key, GCancellable *cancellable,
				 GAsyncReadyCallback callback, gpointer user_data);
void tkms_engine_op_set_data(TkmsEngineOp *op, gpointer data, GDestroyNotify data_free);
GCancellable *tkms_engine_op_get_cancellable(TkmsEngineOp *op);
void tkms_engine_op_return_bytes(TkmsEngineOp *op, GBytes *bytes);
void tkms_engine_op_return_boolean(TkmsEngineOp *op, gboolean value);
void tkms_engine_op_return_key(TkmsEngineOp *op, TkmsKey *key);
/* Any other result: the finish function knows its type. */
void tkms_engine_op_return_pointer(TkmsEngineOp *op, gpointer result, GDestroyNotify result_free);
/* Takes error; an error outside TKMS_ERROR becomes Failed (its details go to the log only). */
void tkms_engine_op_fail(TkmsEngineOp *op, GError *error);
void tkms_engine_op_fail_literal(TkmsEngineOp *op, TkmsError code, const gchar *message);
/* Ends the op's TPM request: FALSE, with the op failed, if the TPM work failed. */
gboolean tkms_engine_op_tpm_finish(TkmsEngineOp *op, GAsyncResult *result);

/* Checks that fail the op and return FALSE / NULL. */
TkmsKey *tkms_engine_op_lookup_key(TkmsEngineOp *op);
TkmsKeyVersion *tkms_engine_op_primary_version(TkmsEngineOp *op, TkmsKey *key);
/* Whether v may process (decrypt, verify) for the op's actor: active or deactivated, or
 * compromised for an admin (then the op's record carries a warning). */
gboolean tkms_engine_op_check_processing(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v);
/* The same check without the op's warning: KeyState in error if v may not process. */
gboolean tkms_engine_check_processing(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v,
				      GError **error);
/* The newest version that may verify, and in *rest the others that may, newest first (NULL
 * if none); KeyState if no version may. Compromised versions come last, for an admin; for
 * a caller whose admin is not known they go to op->compromised (see below). */
TkmsKeyVersion *tkms_engine_op_verify_versions(TkmsEngineOp *op, TkmsKey *key, GArray **rest);
/* Verify found no match among the versions tried: if compromised versions are left and the
 * front-end can ask, asks whether the caller holds admin and returns TRUE; then calls
 * then(op, versions) with the compromised versions to try (held: each use is audited with a
 * warning) or NULL (not held: the signature does not verify). FALSE: nothing to ask. */
/* Notes in the log and the op's record that compromised version is tried (for an admin). */
void tkms_engine_op_note_compromised(TkmsEngineOp *op, guint32 version);
gboolean tkms_engine_op_ask_compromised(TkmsEngineOp *op,
					void (*then)(TkmsEngineOp *op, GArray *versions));
gboolean tkms_engine_op_check_payload(TkmsEngineOp *op, const gchar *what, gsize len,
				      gboolean allow_empty);
gboolean tkms_engine_op_require_type(TkmsEngineOp *op, TkmsKey *key, TkmsKeyType a,
				     TkmsKeyType b, const gchar *need);

/* The same checks for synchronous operations: they set error instead. */
TkmsKey *tkms_engine_lookup_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref,
				GError **error);
/* New bindings to a resettable PCR (16, 23) need [tpm] AllowResettablePcrs=true. */
gboolean tkms_engine_check_pcrs(TkmsEngine *self, TkmsPcrMask pcrs, GError **error);

/* ---- usage counting (engine-usage.c) ---- */
typedef void (*TkmsEngineUseFunc)(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v);
void tkms_engine_usage_init(TkmsEngine *self);
void tkms_engine_usage_clear(TkmsEngine *self);
/* At a clean stop: writes the exact counts (unused reservations return); later protect
 * calls fail with Busy. */
void tkms_engine_usage_release(TkmsEngine *self);
/* For a protect operation: checks that key's primary may protect (KeyState), counts one use
 * of it, and calls then with the key and its primary. When the primary has reached its
 * max-uses, the key is rotated first (then gets the new key and primary), or the op fails with
 * LimitExceeded if that fails. then may run later (the op waits for a reservation of uses or
 * a rotation). */
void tkms_engine_op_use_primary(TkmsEngineOp *op, TkmsKey *key, TkmsEngineUseFunc then);
/* The same for a batch of n items, all under one version: n uses are counted at once. A
 * primary with fewer than n uses left counts as used up (the key is rotated first); n over
 * max-uses is LimitExceeded. */
void tkms_engine_op_use_primary_n(TkmsEngineOp *op, TkmsKey *key, guint64 n,
				  TkmsEngineUseFunc then);
/* Sets the versions' uses and uses_reserved of key (a copy, or the stored key for display)
 * from the live counts. */
void tkms_engine_usage_patch(TkmsEngine *self, TkmsKey *key);

/* Saves a lifecycle change: its audit record (op's version and detail, result ok) goes to disk
 * first, then the store commits key, then callback runs as for tkms_keystore_save() (source:
 * the key store). So a crash at any instant leaves no change without its record; a record of a
 * change the store never got can only belong to a call that was never answered, and a failed
 * commit appends an error record after it. The op's success is not audited again. */
void tkms_engine_op_save(TkmsEngineOp *op, TkmsKey *key, GAsyncReadyCallback callback);

/* ---- shared by the AES-GCM operations (engine-crypto.c, engine-datakey.c) ---- */
typedef void (*TkmsEngineWithSecretFunc)(TkmsEngineOp *op, TkmsSecret *secret);
/* Calls then with version v's AES key: from the key cache, else unsealed in the TPM (then
 * cached); a TPM failure fails the op instead. */
void tkms_engine_op_with_key_material(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v,
				      TkmsEngineWithSecretFunc then);
/* Decrypt's checks (ReEncrypt's too): looks the op's key up (op->k), checks that it is an
 * aes-256-gcm key and the sizes of ctb and context, parses ctb (ct points into it) and returns
 * the version it names, if that version may decrypt; else fails the op (NotFound,
 * InvalidArgument type, size or framing, LimitExceeded, IntegrityFailure unknown version,
 * KeyState) and returns NULL. Sets op->version. */
TkmsKeyVersion *tkms_engine_op_open_ciphertext(TkmsEngineOp *op, GBytes *ctb, GBytes *context,
					       TkmsCiphertext *ct);

/* Writes the record of a finished operation (error NULL: success) and logs a failure once.
 * FALSE if the record could not be written: the operation must then fail. */
gboolean tkms_engine_audit_full(TkmsEngine *self, const TkmsActor *actor, const gchar *operation,
				const TkmsKeyRef *key, guint32 version, const gchar *detail,
				const gchar *warning, const GError *error, gboolean durable,
				GError **audit_error);
gboolean tkms_engine_audit(TkmsEngine *self, const TkmsActor *actor, const gchar *operation,
			   const TkmsKeyRef *key, guint32 version, const GError *error,
			   gboolean durable, GError **audit_error);
/* The records of a batch's n items, all successes: item i's with versions[i], detail "item i
 * of n" and warnings[i] (warnings may be NULL); written together (tkms_audit_append_many).
 * FALSE if they could not all be written: the batch must then fail. */
gboolean tkms_engine_audit_items(TkmsEngine *self, const TkmsActor *actor, const gchar *operation,
				 const TkmsKeyRef *key, guint n, const guint32 *versions,
				 const gchar *const *warnings, GError **audit_error);
/* A synchronous operation's end: audits it; on success returns TRUE, else sets error (the
 * operation's own, or the audit's) and returns FALSE. op_error is taken. */
gboolean tkms_engine_finish_sync(TkmsEngine *self, const TkmsActor *actor,
				 const gchar *operation, const TkmsKeyRef *key, guint32 version,
				 GError *op_error, GError **error);

/* ---- life-cycle changes made outside engine-lifecycle.c ---- */
typedef gboolean (*TkmsEngineChangeFunc)(TkmsEngineOp *op, TkmsKey *key, gint64 now,
					 GError **error);
/* Runs a life-cycle change of op's key in the key's queue (engine.h: one at a time, in
 * order). When its turn comes, start(op) runs with tkms_engine_op_change_copy(op), a fresh
 * copy of the stored key, and ends with tkms_engine_op_change_apply(op) or _fail(op, error).
 * Apply calls change(op, copy, now, error) to edit the copy (FALSE: refused, nothing written),
 * then saves it with its durable audit record, and the op returns it. data is the change's
 * own (tkms_engine_op_change_data), freed with the op. */
void tkms_engine_op_begin_change(TkmsEngineOp *op, TkmsEngineChangeFunc change,
				 void (*start)(TkmsEngineOp *op), gpointer data,
				 GDestroyNotify data_free);
gpointer tkms_engine_op_change_data(TkmsEngineOp *op);
TkmsKey *tkms_engine_op_change_copy(TkmsEngineOp *op);
void tkms_engine_op_change_apply(TkmsEngineOp *op);
void tkms_engine_op_change_fail(TkmsEngineOp *op, GError *error);

/* ---- password keys (engine-password.c) ---- */
/* The spec that CreateKey's options give, with defaults for those unset; InvalidArgument for
 * a length out of 8-256, an unknown charset, or an exclude that is not printable ASCII or
 * leaves fewer than 2 characters. */
gboolean tkms_engine_password_spec(const TkmsKeyOptions *options, TkmsPasswordSpec *spec,
				   GError **error);
/* Generates a password by key's spec from the TPM's RNG (rejection sampling: no modulo
 * bias) and seals it as version `version` of key (bound to key's owner, name and that
 * number, and to its PCRs); uid: whose turn at the TPM. Finished by
 * tkms_engine_password_seal_finish. */
void tkms_engine_password_generate(TkmsEngine *self, guint32 uid, TkmsKey *key, guint32 version,
				   GCancellable *cancellable, GAsyncReadyCallback callback,
				   gpointer user_data);
/* Seals password (len bytes, 1 to TKMS_SECRET_MAX) as version `version` of key. */
void tkms_engine_password_seal(TkmsEngine *self, guint32 uid, TkmsKey *key, guint32 version,
			       const guint8 *password, gsize len, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
/* *blob: the version's TPM object, the password in blob->wrapped, for
 * tkms_key_add_pending_version (or tkms_key_add_version). */
gboolean tkms_engine_password_seal_finish(TkmsEngine *self, GAsyncResult *result, TkmsTpmBlob *blob,
					  GError **error);

/* ---- the rotation of password keys (engine-password-rotation.c) ---- */
/* RotateKey of a password key, and the scheduler's ROTATE event of one (scheduled): creates
 * the pending version, then runs set, test, finish (or rollback) in the background. Finished
 * by tkms_engine_key_change_finish with the key as saved: with a hook once the pending
 * version is on disk (rotation.pending_version is the new version), without one once the
 * switch is made (the new version is the primary). A rotation under way is Busy. */
void tkms_engine_rotate_password(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
				 gboolean scheduled, GCancellable *cancellable,
				 GAsyncReadyCallback callback, gpointer user_data);
/* Whether ref names a stored password key (FALSE for anything else, errors included). */
gboolean tkms_engine_is_password_key(TkmsEngine *self, const TkmsKeyRef *ref);
/* At start: the rotations under way resume at their step once the main loop runs. */
void tkms_engine_password_rotation_init(TkmsEngine *self);
/* At stop: running hooks are killed; the rotations stay where they are on disk. */
void tkms_engine_password_rotation_stop(TkmsEngine *self);
void tkms_engine_password_rotation_clear(TkmsEngine *self);

/* The scheduler's view (engine-lifecycle.c): runs one due event of key (a copy is changed
 * and saved), then calls done (main context). */
void tkms_engine_run_event(TkmsEngine *self, TkmsKey *key, GAsyncReadyCallback callback,
			   gpointer user_data);
/* Tells the scheduler that a key's next event may have changed. */
void tkms_engine_key_changed(TkmsEngine *self);

G_END_DECLS
