/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "tpm.h"

G_BEGIN_DECLS

typedef enum {
	TKMS_KEY_TYPE_AES_256_GCM,
	TKMS_KEY_TYPE_HMAC_SHA256,
	TKMS_KEY_TYPE_ECDSA_P256,
	TKMS_KEY_TYPE_RSA_2048,
	TKMS_KEY_TYPE_PASSWORD,
} TkmsKeyType;

/* NIST SP 800-57 Part 1 states of a key version (DESIGN.md "Keys"). */
#define TKMS_STATE_PRE_ACTIVE "pre-active"
#define TKMS_STATE_ACTIVE "active"
#define TKMS_STATE_DEACTIVATED "deactivated"
#define TKMS_STATE_SUSPENDED "suspended"
#define TKMS_STATE_COMPROMISED "compromised"
#define TKMS_STATE_DESTROY_SCHEDULED "destroy-scheduled"
#define TKMS_STATE_DESTROYED "destroyed"

/* A hook's file name: [A-Za-z0-9._-]{1,64}, not starting with a dot. */
#define TKMS_HOOK_NAME_MAX 64

/* Dates are Unix seconds, 0 = not (yet). */
typedef struct {
	guint32 version;
	gchar *state;
	gint64 created;
	gint64 activated;   /* pre-active: when it becomes active */
	gint64 superseded;  /* when it stopped being the primary */
	gint64 deactivated;
	gint64 destroy_at;  /* destroy-scheduled: when it is destroyed */
	gint64 destroyed;
	gchar *prior_state; /* destroy-scheduled: the state a cancellation restores */
	guint64 uses;	    /* messages protected (counted within reserved blocks) */
	guint64 uses_reserved; /* counts durably reserved: uses never passes it */
	TkmsTpmBlob blob;
} TkmsKeyVersion;

/* A rotation policy; 0 = not set, for each. */
typedef struct {
	guint64 period;		  /* seconds between rotations */
	guint64 max_uses;	  /* rotate when the primary has protected this many messages */
	guint64 deactivate_after; /* seconds after a version stops being primary */
	guint64 destroy_after;	  /* seconds after a version is deactivated */
	/* password keys: the hook's file name in [passwords] HookDirectory, "" = none. Inline so
	 * that a policy stays a plain value to copy. */
	gchar hook[TKMS_HOOK_NAME_MAX + 1];
} TkmsKeyPolicy;

/* How a password key's versions are generated (CreateKey options). */
typedef enum {
	TKMS_CHARSET_ALNUM,
	TKMS_CHARSET_ALNUM_SYMBOLS,
	TKMS_CHARSET_HEX,
	TKMS_CHARSET_BASE64URL,
} TkmsCharset;

typedef struct {
	guint32 length; /* 8-256 */
	TkmsCharset charset;
	gchar exclude[128]; /* ASCII characters left out, NUL-terminated */
} TkmsPasswordSpec;

/* The steps of a password rotation (DESIGN.md "Keys"), in order. The step stored is the one
 * that runs next, so that a restarted tkmsd resumes there. */
typedef enum {
	TKMS_ROTATION_STEP_NONE,     /* no rotation in progress */
	TKMS_ROTATION_STEP_SET,	     /* the pending version exists: the hook's set runs */
	TKMS_ROTATION_STEP_TEST,     /* set succeeded: the hook's test runs */
	TKMS_ROTATION_STEP_FINISH,   /* the switch is made: the hook's finish runs */
	TKMS_ROTATION_STEP_ROLLBACK, /* set or test failed: rollback runs, then the pending
				      * version is discarded */
} TkmsRotationStep;

typedef struct {
	TkmsRotationStep step;
	guint32 pending_version;  /* while step != NONE */
	guint32 previous_version; /* GetSecret(previous), 0 = none */
	gint64 started;
	guint32 attempts; /* failed attempts in a row, for the backoff */
	gint64 retry_at;  /* after a failure: when the next attempt falls due, 0 = none */
	/* the last rotation that ended (result "ok") or failed ("failed"); last_time 0 = none */
	TkmsRotationStep last_step;
	gint64 last_time;
	guint32 last_version;
	gboolean last_ok;
	gchar *last_reason; /* masked; at most 4 KiB; owned by the key */
} TkmsKeyRotation;

/* The names of the steps as GetKeyInfo and the audit log show them; NONE is "none". */
const gchar *tkms_rotation_step_to_string(TkmsRotationStep step);
gboolean tkms_rotation_step_from_string(const gchar *str, TkmsRotationStep *step);
/* alnum, alnum-symbols, hex, base64url */
const gchar *tkms_charset_to_string(TkmsCharset charset);
gboolean tkms_charset_from_string(const gchar *str, TkmsCharset *charset);

/* The events the scheduler runs (key.c computes when each falls due). */
typedef enum {
	TKMS_KEY_EVENT_NONE,
	TKMS_KEY_EVENT_ACTIVATE,
	TKMS_KEY_EVENT_ROTATE,
	TKMS_KEY_EVENT_DEACTIVATE,
	TKMS_KEY_EVENT_SCHEDULE_DESTROY,
	TKMS_KEY_EVENT_DESTROY,
} TkmsKeyEvent;

typedef struct {
	gint refcount; /* atomic: keys are shared with the store's writer thread */
	guint32 owner;
	gchar *name;
	TkmsKeyType type;
	gchar *description;
	gint64 created;
	TkmsPcrMask pcrs;
	guint32 primary_version;
	TkmsKeyPolicy policy;
	GPtrArray *versions; /* TkmsKeyVersion, ascending */
	/* password keys only */
	TkmsPasswordSpec password;
	TkmsKeyRotation rotation;
} TkmsKey;

#define TKMS_KEY_NAME_MAX 64

gboolean tkms_key_name_is_valid(const gchar *name);
gboolean tkms_key_type_from_string(const gchar *str, TkmsKeyType *type);
const gchar *tkms_key_type_to_string(TkmsKeyType type);
const gchar *tkms_key_type_protection(TkmsKeyType type);
TkmsTpmObjectKind tkms_key_type_object_kind(TkmsKeyType type);

TkmsKey *tkms_key_new(guint32 owner, const gchar *name, TkmsKeyType type);
TkmsKey *tkms_key_ref(TkmsKey *key);
void tkms_key_unref(TkmsKey *key);
TkmsKeyVersion *tkms_key_get_version(TkmsKey *key, guint32 version);
/* A new version (the next number), active and primary from now, or pre-active until
 * activate_at if that is in the future; the previous primary is marked superseded. */
TkmsKeyVersion *tkms_key_add_version(TkmsKey *key, TkmsTpmBlob *blob_stolen, gint64 now,
				     gint64 activate_at);
/* A password key's new version, pre-active without an activation date (pending: only
 * tkms_key_password_promote makes it active), not the primary. */
TkmsKeyVersion *tkms_key_add_pending_version(TkmsKey *key, TkmsTpmBlob *blob_stolen, gint64 now);
/* The switch of a password key: version becomes active and the primary (current), the old
 * primary stays as it is, superseded now, as rotation.previous_version, and the previous one
 * before it is deactivated if it was active. Returns that deactivated version, or 0. */
guint32 tkms_key_password_promote(TkmsKey *key, guint32 version, gint64 now);
/* A deep copy (blobs included), to change while the original stays what is stored. */
TkmsKey *tkms_key_copy(TkmsKey *key);
/* Sets a version's state and the date that goes with it. */
void tkms_key_version_set_state(TkmsKeyVersion *v, const gchar *state, gint64 now);
gboolean tkms_key_state_is_valid(const gchar *state);
/* Whether a version is a signing key's: it has a public key to show. */
gboolean tkms_key_type_is_signing(TkmsKeyType type);
/* AES-256-GCM with random 96-bit IVs: at most 2^32 messages per key (NIST SP 800-38D §8.3) */
#define TKMS_GCM_MAX_USES (G_GUINT64_CONSTANT(1) << 32)
/* How many messages one version of key may protect: the policy's max-uses, else 2^32 for
 * aes-256-gcm, else no limit (G_MAXUINT64). */
guint64 tkms_key_max_uses(TkmsKey *key);
/* Whether the primary version has protected its max-uses (its rotation is then due at once). */
gboolean tkms_key_primary_used_up(TkmsKey *key);
/* The time of the key's next rotation by period, or of a password key's retry after a failed
 * rotation (rotation.retry_at); 0 if none, or while a password rotation is under way. */
gint64 tkms_key_next_rotation(TkmsKey *key);
/* The earliest event of the key and its version (0 for key-wide events), or 0 if none. */
gint64 tkms_key_next_event(TkmsKey *key, TkmsKeyEvent *event, guint32 *version);
/* A password key's version's stage: "current" (the primary), "pending" (while a rotation
 * runs), "previous", or NULL (none, another key type, or destroyed: nothing to reveal). */
const gchar *tkms_key_version_stage(TkmsKey *key, TkmsKeyVersion *v);
/* The version at that stage, or NULL. */
TkmsKeyVersion *tkms_key_version_at_stage(TkmsKey *key, const gchar *stage);
/* The key info dictionary (docs/dbus-api.md), floating. */
GVariant *tkms_key_to_variant(TkmsKey *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsKey, tkms_key_unref)

G_END_DECLS
