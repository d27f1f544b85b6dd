/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

#include "tkms-client-private.h"

GTask *
_tkms_task_new(TkmsClient *self, GCancellable *cancellable, GAsyncReadyCallback callback,
	       gpointer user_data, gpointer source_tag, const gchar *name, gpointer finish_func)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);

	g_task_set_source_tag(task, source_tag);
	g_task_set_name(task, name);
	g_task_set_task_data(task, finish_func, NULL);
	return task;
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

static void
return_error(GTask *task, GError *error)
{
	_tkms_error_strip(&error);
	g_task_return_error(task, error);
}

void
_tkms_on_bytes_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	TkmsVariantFinish finish = (TkmsVariantFinish)g_task_get_task_data(task);
	g_autoptr(GVariant) out = NULL;
	GError *error = NULL;

	if (!finish(TKMS_DBUS_KEY_MANAGER(source), &out, res, &error)) {
		return_error(task, error);
		return;
	}
	/* shares the reply message's buffer: no copy of the payload */
	g_task_return_pointer(task, g_variant_get_data_as_bytes(out),
			      (GDestroyNotify)g_bytes_unref);
}

void
_tkms_on_variant_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	TkmsVariantFinish finish = (TkmsVariantFinish)g_task_get_task_data(task);
	GVariant *out = NULL;
	GError *error = NULL;

	if (!finish(TKMS_DBUS_KEY_MANAGER(source), &out, res, &error)) {
		return_error(task, error);
		return;
	}
	g_task_return_pointer(task, out, (GDestroyNotify)g_variant_unref);
}

void
_tkms_on_boolean_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	TkmsBooleanFinish finish = (TkmsBooleanFinish)g_task_get_task_data(task);
	gboolean valid = FALSE;
	GError *error = NULL;

	if (!finish(TKMS_DBUS_KEY_MANAGER(source), &valid, res, &error)) {
		return_error(task, error);
		return;
	}
	/* an int so that "call failed" (-1) and "not valid" (0) stay distinct */
	g_task_return_int(task, valid ? 1 : 0);
}

void
_tkms_on_string_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	TkmsStringFinish finish = (TkmsStringFinish)g_task_get_task_data(task);
	gchar *out = NULL;
	GError *error = NULL;

	if (!finish(TKMS_DBUS_KEY_MANAGER(source), &out, res, &error)) {
		return_error(task, error);
		return;
	}
	g_task_return_pointer(task, out, g_free);
}

void
_tkms_on_void_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	TkmsVoidFinish finish = (TkmsVoidFinish)g_task_get_task_data(task);
	GError *error = NULL;

	if (!finish(TKMS_DBUS_KEY_MANAGER(source), res, &error)) {
		return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

GBytes *
_tkms_finish_bytes(TkmsClient *self, GAsyncResult *result, gpointer source_tag, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == source_tag, NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

GVariant *
_tkms_finish_variant(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
		     GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == source_tag, NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

gboolean
_tkms_finish_boolean(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
		     gboolean *valid, GError **error)
{
	gssize ret;

	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == source_tag, FALSE);
	ret = g_task_propagate_int(G_TASK(result), error);
	if (ret < 0)
		return FALSE;
	if (valid != NULL)
		*valid = ret == 1;
	return TRUE;
}

gchar *
_tkms_finish_string(TkmsClient *self, GAsyncResult *result, gpointer source_tag, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == source_tag, NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

gboolean
_tkms_finish_void(TkmsClient *self, GAsyncResult *result, gpointer source_tag, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == source_tag, FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}
