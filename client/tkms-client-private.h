/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tkms-client.h"
#include "tkms-dbus-generated.h"

G_BEGIN_DECLS

/* Shared by the tkms-client-*.c files; nothing here is public API. */

struct _TkmsClient {
	GObject parent_instance;

	GDBusConnection *connection;
	/* NULL until initialized; every method is a thin call on it */
	TkmsDbusKeyManager *proxy;
	/* G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION on every call */
	gboolean allow_interactive_authorization;
};

/* Internal to libtkms: kept out of the shared library's ABI (the version script exports
 * only the public names; this keeps the compiler from even offering them). */
#pragma GCC visibility push(hidden)

/*
 * Every method calls the generated tkms_dbus_key_manager_call_*() with these, so that the
 * interface XML stays the one place where a signature is written. The timeout is -1: the
 * proxy's default, set long enough for TPM key generation.
 */
GDBusCallFlags _tkms_call_flags(TkmsClient *self);
#define TKMS_CALL_TIMEOUT_DEFAULT (-1)

/*
 * The async forms: the public function makes a GTask tagged with itself and starts the
 * generated call with one of the _tkms_on_*_reply callbacks and the task as user data; the
 * task data is the generated _finish function. The public _finish propagates the task.
 */
GTask *_tkms_task_new(TkmsClient *self, gpointer source_tag, const gchar *name,
		      GCallback finish, GCancellable *cancellable, GAsyncReadyCallback callback,
		      gpointer user_data);
/* After a generated _sync call: strips the remote error prefix; returns @ok. */
gboolean _tkms_sync_done(gboolean ok, GError **error);
gboolean _tkms_task_check(TkmsClient *self, GAsyncResult *result, gpointer source_tag);

/* The generated finish of a method with one GVariant out-argument (ay, a{sv}, aa{sv}). */
typedef gboolean (*TkmsVariantFinish)(TkmsDbusKeyManager *proxy, GVariant **out,
				      GAsyncResult *res, GError **error);
/* ... with one b out-argument (Verify, VerifyHmac). */
typedef gboolean (*TkmsBooleanFinish)(TkmsDbusKeyManager *proxy, gboolean *out,
				      GAsyncResult *res, GError **error);

/* Task data: a TkmsVariantFinish; the task's result is the GVariant. */
void _tkms_on_variant_reply(GObject *source, GAsyncResult *res, gpointer user_data);
/* Task data: a TkmsBooleanFinish; the task's result is the boolean. */
void _tkms_on_boolean_reply(GObject *source, GAsyncResult *res, gpointer user_data);

/* The results of those tasks: the GVariant (or NULL), as GBytes sharing the reply's buffer,
 * or the boolean in *valid with TRUE for success. */
GVariant *_tkms_task_variant(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
			     GError **error);
GBytes *_tkms_task_bytes(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
			 GError **error);
/* The same for a secret `ay` (_tkms_variant_to_wiped_bytes). */
GBytes *_tkms_task_wiped_bytes(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
			       GError **error);
gboolean _tkms_task_boolean(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
			    gboolean *valid, GError **error);

/* An `ay` (transfer full) as GBytes without copying; NULL passes through. */
GBytes *_tkms_variant_to_bytes(GVariant *value);
/* A secret `ay` (transfer full; NULL passes through) as GBytes of our own that wipe their
 * bytes when the last reference goes; the reply's copy is wiped at once. */
GBytes *_tkms_variant_to_wiped_bytes(GVariant *value);
/* A floating `ay` over @bytes without copying; NULL is the empty array. */
GVariant *_tkms_bytes_to_variant(GBytes *bytes);
/* A floating empty a{sv} for NULL, else @options unchanged (the call sinks it). */
GVariant *_tkms_options_or_empty(GVariant *options);

/* Drops the "GDBus.Error:name: " prefix where the domain and code already carry the name.
 * @error may be NULL or point to NULL. */
void _tkms_error_strip(GError **error);

/* aa{sv} (transfer full; NULL passes through as NULL) -> TkmsKeyInfo array; a dictionary
 * that is not a key info is an error. */
GPtrArray *_tkms_key_infos_from_variant(GVariant *keys, GError **error);

#pragma GCC visibility pop

G_END_DECLS
