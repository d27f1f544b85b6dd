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
};

/* Internal to libtkms: kept out of the shared library's ABI. */
#pragma GCC visibility push(hidden)

/* The generated call_*_finish functions come in four shapes; each async method stores its
 * finish function in the task so one reply callback per shape serves every method. */
typedef gboolean (*TkmsVariantFinish)(TkmsDbusKeyManager *proxy, GVariant **out,
				      GAsyncResult *res, GError **error);
typedef gboolean (*TkmsBooleanFinish)(TkmsDbusKeyManager *proxy, gboolean *out,
				      GAsyncResult *res, GError **error);
typedef gboolean (*TkmsStringFinish)(TkmsDbusKeyManager *proxy, gchar **out, GAsyncResult *res,
				     GError **error);
typedef gboolean (*TkmsVoidFinish)(TkmsDbusKeyManager *proxy, GAsyncResult *res,
				   GError **error);

GTask *_tkms_task_new(TkmsClient *self, GCancellable *cancellable, GAsyncReadyCallback callback,
		      gpointer user_data, gpointer source_tag, const gchar *name,
		      gpointer finish_func);

/* Reply callbacks for the generated call_* functions; user_data is the GTask. */
void _tkms_on_bytes_reply(GObject *source, GAsyncResult *res, gpointer user_data);
void _tkms_on_variant_reply(GObject *source, GAsyncResult *res, gpointer user_data);
void _tkms_on_boolean_reply(GObject *source, GAsyncResult *res, gpointer user_data);
void _tkms_on_string_reply(GObject *source, GAsyncResult *res, gpointer user_data);
void _tkms_on_void_reply(GObject *source, GAsyncResult *res, gpointer user_data);

GBytes *_tkms_finish_bytes(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
			   GError **error);
GVariant *_tkms_finish_variant(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
			       GError **error);
gboolean _tkms_finish_boolean(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
			      gboolean *valid, GError **error);
gchar *_tkms_finish_string(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
			   GError **error);
gboolean _tkms_finish_void(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
			   GError **error);

/* A floating `ay` over @bytes without copying; NULL is the empty array. */
GVariant *_tkms_bytes_to_variant(GBytes *bytes);
/* A floating empty a{sv} for NULL, else @options unchanged (the generated call sinks it). */
GVariant *_tkms_options_or_empty(GVariant *options);

/* Drops the "GDBus.Error:name: " prefix where the domain and code already carry the name.
 * @error may be NULL or point to NULL. */
void _tkms_error_strip(GError **error);

#pragma GCC visibility pop

G_END_DECLS
