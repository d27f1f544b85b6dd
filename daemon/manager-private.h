/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "authority.h"
#include "engine.h"
#include "manager.h"
#include "tkms-error.h"

G_BEGIN_DECLS

struct _TkmsManager {
	TkmsDbusKeyManagerSkeleton parent_instance;
	TkmsEngine *engine;
	const TkmsConfig *config; /* the engine's */
	TkmsAuthority *authority;
	guint status_timer;
	GHashTable *ready; /* uid -> GQueue of authorized TkmsCall waiting for their turn */
	GQueue turns;	   /* uids with calls in ready, in serving order */
	guint run_source;
};

typedef struct _TkmsCall TkmsCall;
typedef void (*TkmsMethodFunc)(TkmsCall *call);
/* the generated tkms_dbus_key_manager_complete_* of a method returning ay / b */
typedef void (*TkmsCompleteBytes)(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
				  GVariant *bytes);
typedef void (*TkmsCompleteBool)(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
				 gboolean value);

/* An entry of the one method -> action table (manager-methods.c). */
typedef struct {
	const gchar *name;
	const gchar *action;
	gboolean key_arg; /* the first argument names a key (OWNER:NAME allowed) */
	gboolean admin;	  /* also needs org.tkms.KeyManager.admin */
	TkmsMethodFunc run;
} TkmsMethod;

const TkmsMethod *tkms_method_find(const gchar *name);
/* The generated handlers (manager-methods.c). */
void tkms_manager_iface_init(TkmsDbusKeyManagerIface *iface);

/* One D-Bus call, from arrival through authorization and its turn to the engine and the
 * reply. It holds the typed arguments the generated handler received. Exactly one of
 * tkms_call_refuse, tkms_call_fail or tkms_call_free (after a complete_* reply) ends it. */
struct _TkmsCall {
	TkmsManager *manager;
	TkmsDbusKeyManager *object;
	GDBusMethodInvocation *invocation;
	const TkmsMethod *method;
	TkmsCaller *caller;
	TkmsActor actor;
	gboolean interactive; /* the message allows interactive authorization */
	void (*next)(TkmsCall *call); /* what runs once polkit has answered yes */
	gboolean uid_counted; /* counted against the per-uid cap (known after authorization) */
	gchar *key_arg;	      /* key_arg methods: the key argument as sent */
	TkmsKeyRef key;	      /* its text at arrival, owner and name once parsed */
	/* the other typed arguments */
	gchar *str;	   /* CreateKey's type, List*Page's token */
	GVariant *options; /* a{sv} */
	GBytes *bytes[2];  /* ay arguments in order, sharing the message's buffer */
	/* batches: the aay's items (GBytes sharing the message's buffer; only the first
	 * TKMS_BATCH_MAX + 1 of a longer one), and in number their count */
	GPtrArray *items;
	guint32 number;	   /* DeriveKey's and GetRandom's length, List*Page's size */
	TkmsCompleteBytes complete_bytes;
	TkmsCompleteBool complete_bool;
};

/* Starts a call of method (by name) from invocation; key: the key argument or NULL. */
TkmsCall *tkms_call_new(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
			const gchar *method, const gchar *key);
/* Limits, authorization, owner, then the method's turn. Returns TRUE (handled). */
gboolean tkms_call_dispatch(TkmsCall *call);
/* Its byte arguments against [limits] MaxPayload (manager-methods.c). */
gboolean tkms_call_check_payloads(TkmsCall *call, GError **error);
GCancellable *tkms_call_get_cancellable(TkmsCall *call);
/* A refusal before the engine: audited here (once), replied, freed. Takes error. */
void tkms_call_refuse(TkmsCall *call, GError *error);
/* The engine's error (already audited): replied, freed. Takes error. */
void tkms_call_fail(TkmsCall *call, GError *error);
void tkms_call_free(TkmsCall *call);
/* ay <-> GBytes without copying */
GBytes *tkms_call_variant_to_bytes(GVariant *ay);
GVariant *tkms_call_bytes_to_variant(GBytes *bytes);

G_END_DECLS
