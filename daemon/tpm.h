/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "secret.h"

G_BEGIN_DECLS

/* What the daemon knows about the TPM, published as D-Bus properties. */
typedef struct {
	gboolean available;
	gchar manufacturer[5];
	gchar firmware[32];
	gboolean locked_out;
	guint32 lockout_counter;
} TkmsTpmStatus;

/* A TPM object as stored on disk: the marshalled TPM2B_PUBLIC and TPM2B_PRIVATE. A password
 * key's version also has wrapped: the password, AES-256-GCM under the 32 bytes sealed in the
 * object (engine-password.c), kept with the object so that it goes wherever the object goes
 * (copies, destruction); the TPM layer never reads it. */
typedef struct {
	GBytes *public;
	GBytes *private;
	GBytes *wrapped;
} TkmsTpmBlob;

void tkms_tpm_blob_clear(TkmsTpmBlob *blob);
void tkms_tpm_blob_copy(TkmsTpmBlob *dst, const TkmsTpmBlob *src);

/*
 * Key versions bound to their owner. The TPM object of a bound version has an auth value
 * derived inside tkmsd, HMAC(K, "tkms-key-auth-v1" 0 | owner u32 | name length u8 | name |
 * version u32) with K the daemon's TPM HMAC key (seal-auth.key), so a copy of the key's row
 * plus TPM access is not enough to use it. A bound blob is marked by its stored private part:
 * TKMS_TPM_BOUND_MAGIC followed by the TPM2B_PRIVATE (whose big-endian size can never start
 * with those bytes). Blobs made before have no mark and an empty auth value, and keep working.
 */
#define TKMS_TPM_BOUND_MAGIC "TKAB"
#define TKMS_TPM_KEY_NAME_MAX 64

/* Whose key version an object is. */
typedef struct {
	guint32 owner;
	gchar name[TKMS_TPM_KEY_NAME_MAX + 1];
	guint32 version;
} TkmsTpmKeyId;

void tkms_tpm_key_id_set(TkmsTpmKeyId *id, guint32 owner, const gchar *name, guint32 version);
/* Whether blob is a bound key version's (made with TkmsTpmCreate.bind). */
gboolean tkms_tpm_blob_is_bound(const TkmsTpmBlob *blob);

typedef enum {
	TKMS_TPM_OBJECT_SEALED, /* keyedhash holding caller-supplied (TPM RNG) data */
	TKMS_TPM_OBJECT_HMAC,
	TKMS_TPM_OBJECT_ECC_P256,
	TKMS_TPM_OBJECT_RSA_2048,
} TkmsTpmObjectKind;

#define TKMS_PCR_MAX 24

/* A set of SHA-256 PCR indices as a bit mask (bit i = PCR i). */
typedef guint32 TkmsPcrMask;

/* Sets OpenSSL up for tpm2-tss; call it first thing in main(), before anything uses OpenSSL.
 * tpm2-tss 3.2's ESYS makes a new OpenSSL library context for every hash and HMAC of a
 * session (several per TPM command), and each new context copies OpenSSL's legacy algorithm
 * name tables unless they were never loaded: that copy was about two thirds of the CPU of a
 * TPM command with a session. tkms looks no algorithm up by legacy name. */
void tkms_tpm_global_init(void);

#define TKMS_TYPE_TPM (tkms_tpm_get_type())
G_DECLARE_FINAL_TYPE(TkmsTpm, tkms_tpm, TKMS, TPM, GObject)

/* state_is_new: srk.name and seal-auth.key may be made if absent; otherwise each must be
 * present and readable, or this fails naming it. */
/* max_loaded_objects: key objects kept loaded between requests at most ([tpm]
 * MaxLoadedObjects; the TPM's free slots bound it too, tpm-object-cache.h); 0: none. */
TkmsTpm *tkms_tpm_new(const gchar *tcti, const gchar *state_dir, guint timeout_seconds,
		      guint max_loaded_objects, gboolean state_is_new, GError **error);
void tkms_tpm_get_status(TkmsTpm *self, TkmsTpmStatus *status);
/* Ends the worker thread (from the main thread, at shutdown): queued requests are dropped. */
void tkms_tpm_stop(TkmsTpm *self);

/*
 * Requests. Each runs on the one TPM worker thread, which serves the callers' uids in turn
 * (one request each, round robin) so that one user's flood cannot starve another; the callback runs on the caller's
 * thread-default main context. Results are written into the request struct, which the
 * caller owns and must keep alive until the callback.
 */
typedef struct {
	TkmsTpmObjectKind kind;
	TkmsPcrMask pcrs;
	gsize seal_size; /* TKMS_TPM_OBJECT_SEALED: bytes of TPM RNG material to seal */
	gboolean want_material; /* also hand back the sealed material (Seal's data key) */
	gboolean owner_auth;	/* bind to owner: an auth value only tkmsd can derive */
	guint32 owner;
	gboolean bind;		/* a key version: bind it to key_id (the blob is marked) */
	TkmsTpmKeyId key_id;
	TkmsTpmBlob out;
	TkmsSecret *material;
} TkmsTpmCreate;

typedef struct {
	TkmsTpmBlob blob;
	TkmsPcrMask pcrs;
	gboolean untrusted_blob; /* came from the caller: a bad blob is IntegrityFailure */
	gboolean owner_auth;	 /* made with TkmsTpmCreate.owner_auth for owner */
	guint32 owner;
	TkmsTpmKeyId key_id; /* a key version: whose (used if the blob is bound) */
	TkmsSecret *out;
} TkmsTpmUnseal;

typedef struct {
	TkmsTpmBlob blob;
	TkmsPcrMask pcrs;
	TkmsTpmKeyId key_id; /* used if the blob is bound */
	TkmsTpmObjectKind kind;
	GBytes *data;
	gboolean prehashed; /* data is already a SHA-256 digest (32 bytes) */
	GBytes *signature; /* out (DER for ECDSA) */
} TkmsTpmSign;

typedef struct {
	TkmsTpmBlob blob;
	TkmsPcrMask pcrs;
	TkmsTpmKeyId key_id; /* used if the blob is bound */
	GBytes *data;
	TkmsSecret *out; /* 32 bytes */
} TkmsTpmHmac;

typedef struct {
	gsize length;
	GBytes *out;
} TkmsTpmRandom;

void tkms_tpm_create(TkmsTpm *self, guint32 uid, TkmsTpmCreate *req, GCancellable *cancellable,
		     GAsyncReadyCallback callback, gpointer user_data);
void tkms_tpm_unseal(TkmsTpm *self, guint32 uid, TkmsTpmUnseal *req, GCancellable *cancellable,
		     GAsyncReadyCallback callback, gpointer user_data);
void tkms_tpm_sign(TkmsTpm *self, guint32 uid, TkmsTpmSign *req, GCancellable *cancellable,
		   GAsyncReadyCallback callback, gpointer user_data);
void tkms_tpm_hmac(TkmsTpm *self, guint32 uid, TkmsTpmHmac *req, GCancellable *cancellable,
		   GAsyncReadyCallback callback, gpointer user_data);
void tkms_tpm_random(TkmsTpm *self, guint32 uid, TkmsTpmRandom *req, GCancellable *cancellable,
		     GAsyncReadyCallback callback, gpointer user_data);
/* A key changed (rotation, state change, destruction): its objects kept loaded are flushed
 * soon, and requests made until now do not keep them loaded again. */
void tkms_tpm_forget_key(TkmsTpm *self, guint32 owner, const gchar *name);
/* Reconnects if needed and refreshes the status. */
void tkms_tpm_refresh(TkmsTpm *self, GCancellable *cancellable, GAsyncReadyCallback callback,
		      gpointer user_data);
gboolean tkms_tpm_finish(TkmsTpm *self, GAsyncResult *result, GError **error);

G_END_DECLS
