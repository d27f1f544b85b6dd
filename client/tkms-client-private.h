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

/* Internal to libtkms: kept out of the shared library's ABI. */
#pragma GCC visibility push(hidden)

/*
 * The one path of every method. The generated tkms_dbus_key_manager_call_* functions
 * always send G_DBUS_CALL_FLAGS_NONE, so methods call through these instead, with the
 * D-Bus method name and its in-arguments as a tuple (floating, consumed). The proxy's
 * interface info makes GDBus check the reply's type, so the _tkms_reply_* unpackers can
 * rely on it.
 *
 * Async: _tkms_call() starts the call on a GTask tagged @source_tag (the public async
 * function) and _tkms_call_finish() returns its reply tuple. Sync: _tkms_call_sync() blocks
 * on the bus connection (no main loop is run). Both return errors with the remote error
 * prefix stripped (TKMS_ERROR codes for the daemon's errors).
 */
void _tkms_call(TkmsClient *self, gpointer source_tag, const gchar *method, GVariant *params,
		GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
GVariant *_tkms_call_finish(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
			    GError **error);
GVariant *_tkms_call_sync(TkmsClient *self, const gchar *method, GVariant *params,
			  GCancellable *cancellable, GError **error);

/* Reply unpackers: each takes the reply tuple (transfer full; NULL after an error passes
 * through as NULL / FALSE) and returns its single out-argument. */
/* (ay) as GBytes sharing the reply message's buffer: no copy of the payload */
GBytes *_tkms_reply_bytes(GVariant *reply);
/* (a{sv}) or (aa{sv}) */
GVariant *_tkms_reply_variant(GVariant *reply);
/* (s) */
gchar *_tkms_reply_string(GVariant *reply);
/* (b) into *valid (may be NULL), or () for methods without a result; TRUE unless @reply is
 * NULL. */
gboolean _tkms_reply_boolean(GVariant *reply, gboolean *valid);

/* A floating `ay` over @bytes without copying; NULL is the empty array. */
GVariant *_tkms_bytes_to_variant(GBytes *bytes);
/* A floating empty a{sv} for NULL, else @options unchanged (the tuple sinks it). */
GVariant *_tkms_options_or_empty(GVariant *options);

/* Drops the "GDBus.Error:name: " prefix where the domain and code already carry the name.
 * @error may be NULL or point to NULL. */
void _tkms_error_strip(GError **error);

#pragma GCC visibility pop

G_END_DECLS
