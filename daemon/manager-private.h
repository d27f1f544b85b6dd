/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "audit.h"
#include "authority.h"
#include "keycache.h"
#include "keystore.h"
#include "manager.h"
#include "tkms-error.h"
#include "tpm.h"

G_BEGIN_DECLS

struct _TkmsManager {
	TkmsDbusKeyManagerSkeleton parent_instance;
	TkmsConfig config;
	TkmsTpm *tpm;
	TkmsKeystore *keystore;
	TkmsAudit *audit;
	TkmsAuthority *authority;
	TkmsKeyCache *keycache;
	guint status_timer;
	GHashTable *ready; /* uid -> GQueue of authorized TkmsCall waiting for their turn */
	GQueue turns;	   /* uids with calls in ready, in serving order */
	guint run_source;
};

typedef struct _TkmsCall TkmsCall;
typedef void (*TkmsMethodFunc)(TkmsCall *call);

typedef struct {
	const gchar *name;
	const gchar *action;
	gboolean lifecycle; /* audited durably before the reply */
	gboolean key_arg;   /* the first argument names a key (OWNER:NAME allowed) */
	gboolean admin;	    /* also needs org.tkms.KeyManager.admin */
	TkmsMethodFunc run;
} TkmsMethod;

/* One D-Bus call, from arrival through authorization, the work, the audit record and the
 * reply. Exactly one of tkms_call_return / tkms_call_fail ends it. */
struct _TkmsCall {
	TkmsManager *manager;
	GDBusMethodInvocation *invocation;
	const TkmsMethod *method;
	TkmsCaller *caller;
	gboolean interactive; /* the message allows interactive authorization */
	void (*next)(TkmsCall *call); /* what runs once polkit has answered yes */
	gboolean uid_counted; /* counted against the per-uid cap (known after authorization) */
	GVariant *params;
	gchar *key_name; /* for the audit record: as the caller wrote it */
	guint32 key_version;
	guint32 target_owner; /* whose key the call addresses (the caller's unless OWNER:) */
	const gchar *target_name; /* the NAME part, pointing into params */
	TkmsKey *key;
	gpointer data;
	GDestroyNotify data_free;
};

GCancellable *tkms_call_get_cancellable(TkmsCall *call);
void tkms_call_return(TkmsCall *call, GVariant *value);
void tkms_call_return_bytes(TkmsCall *call, GBytes *bytes);
void tkms_call_fail(TkmsCall *call, GError *error);
/* Ends the call's TPM request: FALSE, with the call failed, if the TPM work failed. */
gboolean tkms_call_tpm_finish(TkmsCall *call, GAsyncResult *result);
/* The `ay` argument at index, sharing the message's buffer. */
GBytes *tkms_call_param_bytes(TkmsCall *call, guint index);
void tkms_call_fail_literal(TkmsCall *call, TkmsError code, const gchar *message);
void tkms_call_set_data(TkmsCall *call, gpointer data, GDestroyNotify data_free);

void tkms_call_set_key_name(TkmsCall *call, const gchar *name);
/* Validates the addressed name and finds the key; fails the call and returns NULL otherwise. */
TkmsKey *tkms_call_lookup_key(TkmsCall *call);
/* Validates the addressed name for a new key; fails the call and returns FALSE otherwise. */
gboolean tkms_call_check_new_name(TkmsCall *call);
/* The caller's key version usable for new data (primary, active) or NULL (call failed). */
TkmsKeyVersion *tkms_call_primary_version(TkmsCall *call, TkmsKey *key);
/* Fails the call unless 1 <= len <= MaxPayload (allow_empty: 0 <= len). */
gboolean tkms_call_check_payload(TkmsCall *call, const gchar *what, gsize len,
				 gboolean allow_empty);
/* Parses an "au" PCR list option; fails the call on a bad index. */
gboolean tkms_call_parse_pcrs(TkmsCall *call, GVariant *options, TkmsPcrMask *pcrs);

/* methods-keys.c */
void tkms_method_create_key(TkmsCall *call);
void tkms_method_list_keys(TkmsCall *call);
void tkms_method_list_all_keys(TkmsCall *call);
void tkms_method_list_keys_page(TkmsCall *call);
void tkms_method_list_all_keys_page(TkmsCall *call);
void tkms_method_get_key_info(TkmsCall *call);
void tkms_method_destroy_key(TkmsCall *call);
void tkms_method_get_public_key(TkmsCall *call);
/* methods-crypto.c */
void tkms_method_encrypt(TkmsCall *call);
void tkms_method_decrypt(TkmsCall *call);
void tkms_method_sign(TkmsCall *call);
void tkms_method_verify(TkmsCall *call);
void tkms_method_hmac(TkmsCall *call);
void tkms_method_verify_hmac(TkmsCall *call);
void tkms_method_derive_key(TkmsCall *call);
/* methods-seal.c */
void tkms_method_seal(TkmsCall *call);
void tkms_method_unseal(TkmsCall *call);
void tkms_method_get_random(TkmsCall *call);

G_END_DECLS
