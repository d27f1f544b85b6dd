/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

/* Service passwords: ImportSecret and GetSecret. Each method has the same three forms; see
 * tkms-client-call.c for the shared parts. */

#include "tkms-client-private.h"

static void
on_import_secret_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;
	guint version = 0;

	if (!tkms_dbus_key_manager_call_import_secret_finish(TKMS_DBUS_KEY_MANAGER(source),
							     &version, res, &error)) {
		_tkms_error_strip(&error);
		g_task_return_error(task, error);
		return;
	}
	/* a version is never 0, so 0 can carry "failed" through the task */
	g_task_return_int(task, version);
}

/**
 * tkms_client_import_secret:
 * @self: a #TkmsClient
 * @name: a `password` key
 * @secret: the password a service already uses: 1 to 4096 bytes of UTF-8 without NUL
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Seals an existing password into the TPM as a new version of the key, which becomes the
 * current one; the old current one becomes the previous (D-Bus `ImportSecret`). tkmsd
 * never logs or audits the secret. Fails with %TKMS_ERROR_INVALID_ARGUMENT for another key
 * type or a malformed secret, %TKMS_ERROR_BUSY while a rotation of the key runs. Finish
 * with tkms_client_import_secret_finish().
 *
 * Since: 0.2
 */
void
tkms_client_import_secret(TkmsClient *self, const gchar *name, GBytes *secret,
			  GCancellable *cancellable, GAsyncReadyCallback callback,
			  gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(secret != NULL);

	task = _tkms_task_new(self, tkms_client_import_secret, "ImportSecret", NULL, cancellable,
			      callback, user_data);
	tkms_dbus_key_manager_call_import_secret(self->proxy, name, _tkms_bytes_to_variant(secret),
						 _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
						 cancellable, on_import_secret_reply, task);
}

/**
 * tkms_client_import_secret_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: the new version (now the current one), or 0 with @error set
 *
 * Since: 0.2
 */
guint
tkms_client_import_secret_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	gssize version;

	if (!_tkms_task_check(self, result, tkms_client_import_secret))
		return 0;
	version = g_task_propagate_int(G_TASK(result), error);
	return version > 0 ? (guint)version : 0;
}

/**
 * tkms_client_import_secret_sync:
 * @self: a #TkmsClient
 * @name: a `password` key
 * @secret: the password a service already uses: 1 to 4096 bytes of UTF-8 without NUL
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_import_secret().
 *
 * Returns: the new version (now the current one), or 0 with @error set
 *
 * Since: 0.2
 */
guint
tkms_client_import_secret_sync(TkmsClient *self, const gchar *name, GBytes *secret,
			       GCancellable *cancellable, GError **error)
{
	guint version = 0;

	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, 0);
	g_return_val_if_fail(name != NULL, 0);
	g_return_val_if_fail(secret != NULL, 0);

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_import_secret_sync(
				 self->proxy, name, _tkms_bytes_to_variant(secret),
				 _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, &version,
				 cancellable, error),
			     error))
		return 0;
	return version;
}

/* NULL is the daemon's default, the current version */
static const gchar *
stage_or_current(const gchar *stage)
{
	return stage != NULL ? stage : "";
}

static void
on_get_secret_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GVariant *secret = NULL;
	GError *error = NULL;

	if (!tkms_dbus_key_manager_call_get_secret_finish(TKMS_DBUS_KEY_MANAGER(source), &secret,
							  res, &error)) {
		_tkms_error_strip(&error);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, _tkms_variant_to_wiped_bytes(secret),
			      (GDestroyNotify)g_bytes_unref);
}

/**
 * tkms_client_get_secret:
 * @self: a #TkmsClient
 * @name: a `password` key
 * @stage: (nullable): `current` (also %NULL or empty), `pending` (while a rotation runs) or
 *   `previous` (the one before the current)
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Reveals a password for the program entitled to it (D-Bus `GetSecret`, polkit action
 * org.tkms.KeyManager.read-secret). Fails with %TKMS_ERROR_NOT_FOUND if the key has no
 * version at that stage, %TKMS_ERROR_INVALID_ARGUMENT for another key type. Finish with
 * tkms_client_get_secret_finish().
 *
 * Since: 0.2
 */
void
tkms_client_get_secret(TkmsClient *self, const gchar *name, const gchar *stage,
		       GCancellable *cancellable, GAsyncReadyCallback callback,
		       gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	task = _tkms_task_new(self, tkms_client_get_secret, "GetSecret", NULL, cancellable,
			      callback, user_data);
	tkms_dbus_key_manager_call_get_secret(self->proxy, name, stage_or_current(stage),
					      _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					      cancellable, on_get_secret_reply, task);
}

/**
 * tkms_client_get_secret_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the password, whose bytes are wiped when the last reference is
 *   dropped; %NULL with @error set
 *
 * Since: 0.2
 */
GBytes *
tkms_client_get_secret_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	if (!_tkms_task_check(self, result, tkms_client_get_secret))
		return NULL;
	return g_task_propagate_pointer(G_TASK(result), error);
}

/**
 * tkms_client_get_secret_sync:
 * @self: a #TkmsClient
 * @name: a `password` key
 * @stage: (nullable): `current` (also %NULL or empty), `pending` or `previous`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_get_secret().
 *
 * Returns: (transfer full): the password, whose bytes are wiped when the last reference is
 *   dropped; %NULL with @error set
 *
 * Since: 0.2
 */
GBytes *
tkms_client_get_secret_sync(TkmsClient *self, const gchar *name, const gchar *stage,
			    GCancellable *cancellable, GError **error)
{
	GVariant *secret = NULL;

	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_get_secret_sync(
				 self->proxy, name, stage_or_current(stage), _tkms_call_flags(self),
				 TKMS_CALL_TIMEOUT_DEFAULT, &secret, cancellable, error),
			     error))
		return NULL;
	return _tkms_variant_to_wiped_bytes(secret);
}
