/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

/* Key lifecycle and description: CreateKey, ListKeys, GetKeyInfo, DestroyKey,
 * GetPublicKey.
 * Each method has the same three forms; see tkms-client-call.c for the shared parts. */

#include "tkms-client-private.h"
#include "tkms-key-info.h"

/* DestroyKey has no out-argument and GetPublicKey a string: their own reply callbacks. */
static void
on_destroy_key_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;

	if (!tkms_dbus_key_manager_call_destroy_key_finish(TKMS_DBUS_KEY_MANAGER(source), res,
							   &error)) {
		_tkms_error_strip(&error);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void
on_get_public_key_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;
	gchar *pem = NULL;

	if (!tkms_dbus_key_manager_call_get_public_key_finish(TKMS_DBUS_KEY_MANAGER(source),
							      &pem, res, &error)) {
		_tkms_error_strip(&error);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, pem, g_free);
}

/**
 * tkms_client_create_key:
 * @self: a #TkmsClient
 * @name: the new key's name, unique among the caller's keys
 * @type: `aes-256-gcm`, `hmac-sha256`, `ecdsa-p256` or `rsa-2048`
 * @options: (nullable): an a{sv} of `protection` (s), `pcrs` (au), `description` (s);
 *   %NULL for none. A floating reference is consumed
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Generates a new key in the TPM (D-Bus `CreateKey`); finish with
 * tkms_client_create_key_finish().
 *
 * Since: 0.1
 */
void
tkms_client_create_key(TkmsClient *self, const gchar *name, const gchar *type,
		       GVariant *options, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(type != NULL);
	g_return_if_fail(options == NULL ||
			 g_variant_is_of_type(options, G_VARIANT_TYPE_VARDICT));

	GTask *task = _tkms_task_new(self, tkms_client_create_key, "CreateKey",
				     G_CALLBACK(tkms_dbus_key_manager_call_create_key_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_create_key(self->proxy, name, type,
					      _tkms_options_or_empty(options),
					      _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					      cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_create_key_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the new key's info dictionary (a{sv}), or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tkms_client_create_key_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_variant(self, result, tkms_client_create_key, error);
}

/**
 * tkms_client_create_key_sync:
 * @self: a #TkmsClient
 * @name: the new key's name, unique among the caller's keys
 * @type: `aes-256-gcm`, `hmac-sha256`, `ecdsa-p256` or `rsa-2048`
 * @options: (nullable): an a{sv} of `protection` (s), `pcrs` (au), `description` (s);
 *   %NULL for none. A floating reference is consumed
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_create_key().
 *
 * Returns: (transfer full): the new key's info dictionary (a{sv}), or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tkms_client_create_key_sync(TkmsClient *self, const gchar *name, const gchar *type,
			    GVariant *options, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(type != NULL, NULL);
	g_return_val_if_fail(
		options == NULL || g_variant_is_of_type(options, G_VARIANT_TYPE_VARDICT), NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_create_key_sync(
				     self->proxy, name, type, _tkms_options_or_empty(options),
				     _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, &out,
				     cancellable, error),
			     error))
		return NULL;
	return out;
}

/**
 * tkms_client_list_keys:
 * @self: a #TkmsClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Lists the caller's keys (D-Bus `ListKeys`); finish with tkms_client_list_keys_finish().
 *
 * Since: 0.1
 */
void
tkms_client_list_keys(TkmsClient *self, GCancellable *cancellable, GAsyncReadyCallback callback,
		      gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_list_keys, "ListKeys",
				     G_CALLBACK(tkms_dbus_key_manager_call_list_keys_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_list_keys(self->proxy, _tkms_call_flags(self),
					     TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
					     _tkms_on_variant_reply, task);
}

/**
 * tkms_client_list_keys_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): an aa{sv} of key info dictionaries sorted by name, or %NULL with
 *   @error set
 *
 * Since: 0.1
 */
GVariant *
tkms_client_list_keys_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_variant(self, result, tkms_client_list_keys, error);
}

/**
 * tkms_client_list_keys_sync:
 * @self: a #TkmsClient
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_list_keys().
 *
 * Returns: (transfer full): an aa{sv} of key info dictionaries sorted by name, or %NULL with
 *   @error set
 *
 * Since: 0.1
 */
GVariant *
tkms_client_list_keys_sync(TkmsClient *self, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_list_keys_sync(
				     self->proxy, _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return NULL;
	return out;
}

/**
 * tkms_client_list_all_keys:
 * @self: a #TkmsClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Lists every owner's keys (D-Bus `ListAllKeys`, needs the polkit action
 * org.tkms.KeyManager.admin); finish with tkms_client_list_all_keys_finish().
 *
 * Since: 0.1
 */
void
tkms_client_list_all_keys(TkmsClient *self, GCancellable *cancellable,
			  GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);

	GTask *task =
		_tkms_task_new(self, tkms_client_list_all_keys, "ListAllKeys",
			       G_CALLBACK(tkms_dbus_key_manager_call_list_all_keys_finish),
			       cancellable, callback, user_data);

	tkms_dbus_key_manager_call_list_all_keys(self->proxy, _tkms_call_flags(self),
						 TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
						 _tkms_on_variant_reply, task);
}

/**
 * tkms_client_list_all_keys_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): an aa{sv} of key info dictionaries sorted by owner, then name, or
 *   %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tkms_client_list_all_keys_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_variant(self, result, tkms_client_list_all_keys, error);
}

/**
 * tkms_client_list_all_keys_sync:
 * @self: a #TkmsClient
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_list_all_keys().
 *
 * Returns: (transfer full): an aa{sv} of key info dictionaries, or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tkms_client_list_all_keys_sync(TkmsClient *self, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_list_all_keys_sync(
				     self->proxy, _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return NULL;
	return out;
}

/**
 * tkms_client_get_key_info:
 * @self: a #TkmsClient
 * @name: the key's name
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Describes one of the caller's keys (D-Bus `GetKeyInfo`); finish with
 * tkms_client_get_key_info_finish().
 *
 * Since: 0.1
 */
void
tkms_client_get_key_info(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_get_key_info, "GetKeyInfo",
				     G_CALLBACK(tkms_dbus_key_manager_call_get_key_info_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_get_key_info(self->proxy, name, _tkms_call_flags(self),
						TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
						_tkms_on_variant_reply, task);
}

/**
 * tkms_client_get_key_info_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the key info dictionary (a{sv}), or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tkms_client_get_key_info_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_variant(self, result, tkms_client_get_key_info, error);
}

/**
 * tkms_client_get_key_info_sync:
 * @self: a #TkmsClient
 * @name: the key's name
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_get_key_info().
 *
 * Returns: (transfer full): the key info dictionary (a{sv}), or %NULL with @error set
 *
 * Since: 0.1
 */
GVariant *
tkms_client_get_key_info_sync(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			      GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_get_key_info_sync(
				     self->proxy, name, _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return NULL;
	return out;
}

/**
 * tkms_client_destroy_key:
 * @self: a #TkmsClient
 * @name: the key's name
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Schedules the destruction of every version of a key after the daemon's waiting period
 * (`[lifecycle] DestroyWaitingPeriod`, default 7 days; 0 destroys at once), cancellable with
 * tkms_client_cancel_key_destruction() until then; the name is never reused (D-Bus
 * `DestroyKey`). Finish with tkms_client_destroy_key_finish().
 *
 * Since: 0.1
 */
void
tkms_client_destroy_key(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_destroy_key, "DestroyKey", NULL,
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_destroy_key(self->proxy, name, _tkms_call_flags(self),
					       TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
					       on_destroy_key_reply, task);
}

/**
 * tkms_client_destroy_key_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.1
 */
gboolean
tkms_client_destroy_key_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	if (!_tkms_task_check(self, result, tkms_client_destroy_key))
		return FALSE;
	return g_task_propagate_boolean(G_TASK(result), error);
}

/**
 * tkms_client_destroy_key_sync:
 * @self: a #TkmsClient
 * @name: the key's name
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_destroy_key().
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.1
 */
gboolean
tkms_client_destroy_key_sync(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			     GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);

	return _tkms_sync_done(tkms_dbus_key_manager_call_destroy_key_sync(
				       self->proxy, name, _tkms_call_flags(self),
				       TKMS_CALL_TIMEOUT_DEFAULT, cancellable, error),
			       error);
}

/**
 * tkms_client_get_public_key:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Gets the public half of a signing key (D-Bus `GetPublicKey`); finish with
 * tkms_client_get_public_key_finish().
 *
 * Since: 0.1
 */
void
tkms_client_get_public_key(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			   GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_get_public_key, "GetPublicKey", NULL,
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_get_public_key(self->proxy, name, _tkms_call_flags(self),
						  TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
						  on_get_public_key_reply, task);
}

/**
 * tkms_client_get_public_key_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the PEM SubjectPublicKeyInfo, or %NULL with @error set
 *
 * Since: 0.1
 */
gchar *
tkms_client_get_public_key_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	if (!_tkms_task_check(self, result, tkms_client_get_public_key))
		return NULL;
	return g_task_propagate_pointer(G_TASK(result), error);
}

/**
 * tkms_client_get_public_key_sync:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_get_public_key().
 *
 * Returns: (transfer full): the PEM SubjectPublicKeyInfo, or %NULL with @error set
 *
 * Since: 0.1
 */
gchar *
tkms_client_get_public_key_sync(TkmsClient *self, const gchar *name, GCancellable *cancellable,
				GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);

	gchar *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_get_public_key_sync(
				     self->proxy, name, _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return NULL;
	return out;
}

/* ---- the same replies as TkmsKeyInfo objects ---- */

/* @dict: transfer full; NULL (after an error) passes through */
static TkmsKeyInfo *
key_info_or_null(GVariant *dict, GError **error)
{
	g_autoptr(GVariant) owned = dict;

	return dict != NULL ? tkms_key_info_new_from_variant(dict, error) : NULL;
}

/**
 * tkms_client_generate_key:
 * @self: a #TkmsClient
 * @name: the new key's name, unique among the caller's keys
 * @type: `aes-256-gcm`, `hmac-sha256`, `ecdsa-p256` or `rsa-2048`
 * @options: (nullable): an a{sv} of `protection` (s), `pcrs` (au), `description` (s);
 *   %NULL for none. A floating reference is consumed
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Like tkms_client_create_key() (D-Bus `CreateKey`), with the new key's info as a
 * #TkmsKeyInfo; finish with tkms_client_generate_key_finish().
 *
 * Since: 0.2
 */
void
tkms_client_generate_key(TkmsClient *self, const gchar *name, const gchar *type,
			 GVariant *options, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(type != NULL);
	g_return_if_fail(options == NULL ||
			 g_variant_is_of_type(options, G_VARIANT_TYPE_VARDICT));

	task = _tkms_task_new(self, tkms_client_generate_key, "CreateKey",
			      G_CALLBACK(tkms_dbus_key_manager_call_create_key_finish),
			      cancellable, callback, user_data);
	tkms_dbus_key_manager_call_create_key(self->proxy, name, type,
					      _tkms_options_or_empty(options),
					      _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					      cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_generate_key_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the new key's info, or %NULL with @error set
 *
 * Since: 0.2
 */
TkmsKeyInfo *
tkms_client_generate_key_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return key_info_or_null(
		_tkms_task_variant(self, result, tkms_client_generate_key, error), error);
}

/**
 * tkms_client_generate_key_sync:
 * @self: a #TkmsClient
 * @name: the new key's name, unique among the caller's keys
 * @type: `aes-256-gcm`, `hmac-sha256`, `ecdsa-p256` or `rsa-2048`
 * @options: (nullable): an a{sv} of `protection` (s), `pcrs` (au), `description` (s);
 *   %NULL for none. A floating reference is consumed
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_generate_key().
 *
 * Returns: (transfer full): the new key's info, or %NULL with @error set
 *
 * Since: 0.2
 */
TkmsKeyInfo *
tkms_client_generate_key_sync(TkmsClient *self, const gchar *name, const gchar *type,
			      GVariant *options, GCancellable *cancellable, GError **error)
{
	return key_info_or_null(
		tkms_client_create_key_sync(self, name, type, options, cancellable, error),
		error);
}

/**
 * tkms_client_lookup_key:
 * @self: a #TkmsClient
 * @name: the key's name
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Like tkms_client_get_key_info() (D-Bus `GetKeyInfo`), with the info as a #TkmsKeyInfo;
 * finish with tkms_client_lookup_key_finish().
 *
 * Since: 0.2
 */
void
tkms_client_lookup_key(TkmsClient *self, const gchar *name, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	task = _tkms_task_new(self, tkms_client_lookup_key, "GetKeyInfo",
			      G_CALLBACK(tkms_dbus_key_manager_call_get_key_info_finish),
			      cancellable, callback, user_data);
	tkms_dbus_key_manager_call_get_key_info(self->proxy, name, _tkms_call_flags(self),
						TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
						_tkms_on_variant_reply, task);
}

/**
 * tkms_client_lookup_key_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the key's info, or %NULL with @error set
 *
 * Since: 0.2
 */
TkmsKeyInfo *
tkms_client_lookup_key_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return key_info_or_null(_tkms_task_variant(self, result, tkms_client_lookup_key, error),
				error);
}

/**
 * tkms_client_lookup_key_sync:
 * @self: a #TkmsClient
 * @name: the key's name
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_lookup_key().
 *
 * Returns: (transfer full): the key's info, or %NULL with @error set
 *
 * Since: 0.2
 */
TkmsKeyInfo *
tkms_client_lookup_key_sync(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			    GError **error)
{
	return key_info_or_null(tkms_client_get_key_info_sync(self, name, cancellable, error),
				error);
}
