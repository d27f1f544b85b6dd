/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

#include <string.h>

#include "tkms-client-private.h"
#include "tkms-key-info.h"

/* The pieces every method shares: call flags, the GTask around a generated async call, and
 * the conversions between D-Bus values and the public types. */

GDBusCallFlags
_tkms_call_flags(TkmsClient *self)
{
	/* interactive authorization only when the application asked */
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

GTask *
_tkms_task_new(TkmsClient *self, gpointer source_tag, const gchar *name, GCallback finish,
	       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);

	/* the generated _finish the reply callback calls: see TkmsVariantFinish */
	g_task_set_task_data(task, (gpointer)finish, NULL);
	g_task_set_source_tag(task, source_tag);
	/* name is a string literal: static, as g_task_set_name() wants before GLib 2.76 */
	g_task_set_name(task, name);
	return task;
}

gboolean
_tkms_sync_done(gboolean ok, GError **error)
{
	if (!ok)
		_tkms_error_strip(error);
	return ok;
}

gboolean
_tkms_task_check(TkmsClient *self, GAsyncResult *result, gpointer source_tag)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == source_tag, FALSE);
	return TRUE;
}

void
_tkms_on_variant_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	TkmsVariantFinish finish = (TkmsVariantFinish)g_task_get_task_data(task);
	GVariant *out = NULL;
	GError *error = NULL;

	if (!finish(TKMS_DBUS_KEY_MANAGER(source), &out, res, &error)) {
		_tkms_error_strip(&error);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, out, (GDestroyNotify)g_variant_unref);
}

void
_tkms_on_boolean_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	TkmsBooleanFinish finish = (TkmsBooleanFinish)g_task_get_task_data(task);
	gboolean out = FALSE;
	GError *error = NULL;

	if (!finish(TKMS_DBUS_KEY_MANAGER(source), &out, res, &error)) {
		_tkms_error_strip(&error);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, out);
}

GVariant *
_tkms_task_variant(TkmsClient *self, GAsyncResult *result, gpointer source_tag, GError **error)
{
	if (!_tkms_task_check(self, result, source_tag))
		return NULL;
	return g_task_propagate_pointer(G_TASK(result), error);
}

GBytes *
_tkms_task_bytes(TkmsClient *self, GAsyncResult *result, gpointer source_tag, GError **error)
{
	return _tkms_variant_to_bytes(_tkms_task_variant(self, result, source_tag, error));
}

GBytes *
_tkms_task_wiped_bytes(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
		       GError **error)
{
	return _tkms_variant_to_wiped_bytes(_tkms_task_variant(self, result, source_tag, error));
}

gboolean
_tkms_task_boolean(TkmsClient *self, GAsyncResult *result, gpointer source_tag, gboolean *valid,
		   GError **error)
{
	GError *local = NULL;
	gboolean value;

	if (!_tkms_task_check(self, result, source_tag))
		return FALSE;
	value = g_task_propagate_boolean(G_TASK(result), &local);
	if (local != NULL) {
		g_propagate_error(error, local);
		return FALSE;
	}
	if (valid != NULL)
		*valid = value;
	return TRUE;
}

GBytes *
_tkms_variant_to_bytes(GVariant *value)
{
	g_autoptr(GVariant) owned = value;

	/* shares the reply message's buffer: no copy of the payload */
	return value != NULL ? g_variant_get_data_as_bytes(value) : NULL;
}

typedef struct {
	gsize len;
	guint8 data[];
} WipedBuffer;

static void
wiped_buffer_free(gpointer user_data)
{
	WipedBuffer *buf = user_data;

	explicit_bzero(buf->data, buf->len);
	g_free(buf);
}

GBytes *
_tkms_variant_to_wiped_bytes(GVariant *value)
{
	g_autoptr(GVariant) owned = value;
	gsize len = 0;
	const guint8 *p;
	WipedBuffer *buf;

	if (value == NULL)
		return NULL;
	p = g_variant_get_fixed_array(value, &len, 1);
	buf = g_malloc(sizeof(WipedBuffer) + MAX(len, 1));
	buf->len = len;
	if (len > 0) {
		memcpy(buf->data, p, len);
		/* the reply's serialized body is heap memory this variant alone holds now */
		explicit_bzero((gpointer)p, len);
	}
	return g_bytes_new_with_free_func(buf->data, len, wiped_buffer_free, buf);
}

GVariant *
_tkms_bytes_to_variant(GBytes *bytes)
{
	if (bytes == NULL)
		return g_variant_new_from_data(G_VARIANT_TYPE_BYTESTRING, "", 0, TRUE, NULL,
					       NULL);
	/* trusted: every byte sequence is a valid `ay`, so there is nothing to check */
	return g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, bytes, TRUE);
}

GVariant *
_tkms_options_or_empty(GVariant *options)
{
	return options != NULL ? options : g_variant_new("a{sv}", NULL);
}

GPtrArray *
_tkms_key_infos_from_variant(GVariant *keys, GError **error)
{
	g_autoptr(GVariant) owned = keys;
	g_autoptr(GPtrArray) infos = NULL;
	GVariantIter iter;
	GVariant *child;

	if (keys == NULL)
		return NULL;
	infos = g_ptr_array_new_full(g_variant_n_children(keys), g_object_unref);
	g_variant_iter_init(&iter, keys);
	while ((child = g_variant_iter_next_value(&iter)) != NULL) {
		TkmsKeyInfo *info = tkms_key_info_new_from_variant(child, error);

		g_variant_unref(child);
		if (info == NULL)
			return NULL;
		g_ptr_array_add(infos, info);
	}
	return g_steal_pointer(&infos);
}
