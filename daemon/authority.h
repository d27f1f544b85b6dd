/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* One peer on the bus, by unique name. Unique names are never reused, so what we learn about
 * a peer (its uid, its polkit "yes" answers) stays true until it leaves the bus. */
typedef struct {
	gint refcount;
	gchar *sender;
	guint32 uid;
	guint32 pid;
	gboolean have_creds;
	GHashTable *allowed; /* action id -> expiry (monotonic µs) */
	guint in_flight;
	GCancellable *cancellable; /* cancelled when the peer leaves the bus */
} TkmsCaller;

TkmsCaller *tkms_caller_ref(TkmsCaller *caller);
void tkms_caller_unref(TkmsCaller *caller);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsCaller, tkms_caller_unref)

#define TKMS_TYPE_AUTHORITY (tkms_authority_get_type())
G_DECLARE_FINAL_TYPE(TkmsAuthority, tkms_authority, TKMS, AUTHORITY, GObject)

TkmsAuthority *tkms_authority_new(GDBusConnection *connection, guint cache_ttl_seconds);
/* Asks about callers on connection from now on (tkmsd connected to the bus again): calls that
 * arrived on the old one are cancelled, and nothing learnt on it is kept. */
void tkms_authority_set_connection(TkmsAuthority *self, GDBusConnection *connection);

/* The caller object for a sender (created on first use). */
TkmsCaller *tkms_authority_get_caller(TkmsAuthority *self, const gchar *sender);
/* Number of calls in flight for a uid (maintained by the caller of begin/end). */
guint *tkms_authority_uid_in_flight(TkmsAuthority *self, guint32 uid);

/* Resolves the caller's credentials, then asks polkit (or the cache) about action. Any doubt
 * (no polkitd, caller gone, challenge, error) is TKMS_ERROR_PERMISSION_DENIED. */
void tkms_authority_check(TkmsAuthority *self, TkmsCaller *caller, const gchar *action,
			  gboolean allow_interaction, GAsyncReadyCallback callback,
			  gpointer user_data);
gboolean tkms_authority_check_finish(TkmsAuthority *self, GAsyncResult *result, GError **error);
/* The hot path: TRUE if polkit's "yes" for this caller and action is cached and fresh, so the
 * call can go on without a trip through the main loop. */
gboolean tkms_authority_is_cached(TkmsAuthority *self, TkmsCaller *caller, const gchar *action);

G_END_DECLS
