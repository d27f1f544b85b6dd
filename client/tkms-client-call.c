/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

#include "tkms-client-private.h"

/* The flags of every call: interactive authorization only when the application asked. */
static GDBusCallFlags
call_flags(TkmsClient *self)
{
	return self->allow_interactive_authorization
		       ? G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION
		       : G_DBUS_CALL_FLAGS_NONE;
}

void
_tkms_error_strip(GError **error)
{
	GError *e = error != NULL ? *error : NULL;

	/* An unregistered remote name maps to G_IO_ERROR_DBUS_ERROR; its prefix is the only
	 * place the name survives (g_dbus_error_get_remote_error), so it stays. */
	if (e != NULL && (e->domain == TKMS_ERROR || e->domain == G_DBUS_ERROR))
		g_dbus_error_strip_remote_error(e);
}

static void
on_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;
	GVariant *reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), res, &error);

	if (reply == NULL) {
		_tkms_error_strip(&error);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, reply, (GDestroyNotify)g_variant_unref);
}

void
_tkms_call(TkmsClient *self, gpointer source_tag, const gchar *method, GVariant *params,
	   GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);

	g_task_set_source_tag(task, source_tag);
	/* method is a string literal: static, as g_task_set_name() wants before GLib 2.76 */
	g_task_set_name(task, method);
	/* timeout -1: the proxy's default, set long enough for TPM key generation */
	g_dbus_proxy_call(G_DBUS_PROXY(self->proxy), method, params, call_flags(self), -1,
			  cancellable, on_reply, task);
}

GVariant *
_tkms_call_finish(TkmsClient *self, GAsyncResult *result, gpointer source_tag, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == source_tag, NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

GVariant *
_tkms_call_sync(TkmsClient *self, const gchar *method, GVariant *params,
		GCancellable *cancellable, GError **error)
{
	GVariant *reply = g_dbus_proxy_call_sync(G_DBUS_PROXY(self->proxy), method, params,
						 call_flags(self), -1, cancellable, error);

	if (reply == NULL)
		_tkms_error_strip(error);
	return reply;
}

GBytes *
_tkms_reply_bytes(GVariant *reply)
{
	g_autoptr(GVariant) owned = reply;
	g_autoptr(GVariant) child = NULL;

	if (reply == NULL)
		return NULL;
	child = g_variant_get_child_value(reply, 0);
	/* shares the reply message's buffer: no copy of the payload */
	return g_variant_get_data_as_bytes(child);
}

GVariant *
_tkms_reply_variant(GVariant *reply)
{
	g_autoptr(GVariant) owned = reply;

	return reply != NULL ? g_variant_get_child_value(reply, 0) : NULL;
}

gchar *
_tkms_reply_string(GVariant *reply)
{
	g_autoptr(GVariant) owned = reply;
	gchar *out = NULL;

	if (reply != NULL)
		g_variant_get_child(reply, 0, "s", &out);
	return out;
}

gboolean
_tkms_reply_boolean(GVariant *reply, gboolean *valid)
{
	g_autoptr(GVariant) owned = reply;

	if (reply == NULL)
		return FALSE;
	if (valid != NULL && g_variant_n_children(reply) > 0)
		g_variant_get_child(reply, 0, "b", valid);
	return TRUE;
}

GVariant *
_tkms_bytes_to_variant(GBytes *bytes)
{
	if (bytes == NULL)
		return g_variant_new_from_data(G_VARIANT_TYPE_BYTESTRING, "", 0, TRUE, NULL, NULL);
	/* trusted: every byte sequence is a valid `ay`, so there is nothing to check */
	return g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, bytes, TRUE);
}

GVariant *
_tkms_options_or_empty(GVariant *options)
{
	return options != NULL ? options : g_variant_new("a{sv}", NULL);
}
