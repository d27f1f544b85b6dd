/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

/* Key lifecycle and description: CreateKey, ListKeys, GetKeyInfo, DestroyKey,
 * GetPublicKey.
 * Each method has the same three forms; see tkms-client-call.c for the shared parts. */

#include "tkms-client-private.h"

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
 */
void
tkms_client_create_key(TkmsClient *self, const gchar *name, const gchar *type, GVariant *options,
		       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(type != NULL);
	g_return_if_fail(options == NULL || g_variant_is_of_type(options, G_VARIANT_TYPE_VARDICT));

	_tkms_call(self, tkms_client_create_key, "CreateKey",
		   g_variant_new("(ss@a{sv})", name, type, _tkms_options_or_empty(options)),
		   cancellable, callback, user_data);
}

/**
 * tkms_client_create_key_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the new key's info dictionary (a{sv}), or %NULL with @error set
 */
GVariant *
tkms_client_create_key_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_reply_variant(_tkms_call_finish(self, result, tkms_client_create_key, error));
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
 */
GVariant *
tkms_client_create_key_sync(TkmsClient *self, const gchar *name, const gchar *type,
			    GVariant *options, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(type != NULL, NULL);
	g_return_val_if_fail(options == NULL ||
				     g_variant_is_of_type(options, G_VARIANT_TYPE_VARDICT),
			     NULL);

	return _tkms_reply_variant(_tkms_call_sync(
		self, "CreateKey",
		g_variant_new("(ss@a{sv})", name, type, _tkms_options_or_empty(options)),
		cancellable, error));
}

/**
 * tkms_client_list_keys:
 * @self: a #TkmsClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Lists the caller's keys (D-Bus `ListKeys`); finish with tkms_client_list_keys_finish().
 */
void
tkms_client_list_keys(TkmsClient *self, GCancellable *cancellable, GAsyncReadyCallback callback,
		      gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);

	_tkms_call(self, tkms_client_list_keys, "ListKeys", NULL, cancellable, callback,
		   user_data);
}

/**
 * tkms_client_list_keys_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): an aa{sv} of key info dictionaries sorted by name, or %NULL with
 *   @error set
 */
GVariant *
tkms_client_list_keys_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_reply_variant(_tkms_call_finish(self, result, tkms_client_list_keys, error));
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
 */
GVariant *
tkms_client_list_keys_sync(TkmsClient *self, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);

	return _tkms_reply_variant(_tkms_call_sync(self, "ListKeys", NULL, cancellable, error));
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
 */
void
tkms_client_list_all_keys(TkmsClient *self, GCancellable *cancellable,
			  GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);

	_tkms_call(self, tkms_client_list_all_keys, "ListAllKeys", NULL, cancellable, callback,
		   user_data);
}

/**
 * tkms_client_list_all_keys_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): an aa{sv} of key info dictionaries sorted by owner, then name, or
 *   %NULL with @error set
 */
GVariant *
tkms_client_list_all_keys_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_reply_variant(
		_tkms_call_finish(self, result, tkms_client_list_all_keys, error));
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
 */
GVariant *
tkms_client_list_all_keys_sync(TkmsClient *self, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);

	return _tkms_reply_variant(_tkms_call_sync(self, "ListAllKeys", NULL, cancellable, error));
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
 */
void
tkms_client_get_key_info(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	_tkms_call(self, tkms_client_get_key_info, "GetKeyInfo", g_variant_new("(s)", name),
		   cancellable, callback, user_data);
}

/**
 * tkms_client_get_key_info_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the key info dictionary (a{sv}), or %NULL with @error set
 */
GVariant *
tkms_client_get_key_info_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_reply_variant(
		_tkms_call_finish(self, result, tkms_client_get_key_info, error));
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
 */
GVariant *
tkms_client_get_key_info_sync(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			      GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);

	return _tkms_reply_variant(_tkms_call_sync(self, "GetKeyInfo", g_variant_new("(s)", name),
						   cancellable, error));
}

/**
 * tkms_client_destroy_key:
 * @self: a #TkmsClient
 * @name: the key's name
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Destroys every version of a key; the name is never reused (D-Bus `DestroyKey`); finish with
 * tkms_client_destroy_key_finish().
 */
void
tkms_client_destroy_key(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	_tkms_call(self, tkms_client_destroy_key, "DestroyKey", g_variant_new("(s)", name),
		   cancellable, callback, user_data);
}

/**
 * tkms_client_destroy_key_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean
tkms_client_destroy_key_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_reply_boolean(_tkms_call_finish(self, result, tkms_client_destroy_key, error),
				   NULL);
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
 */
gboolean
tkms_client_destroy_key_sync(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			     GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);

	return _tkms_reply_boolean(_tkms_call_sync(self, "DestroyKey", g_variant_new("(s)", name),
						   cancellable, error),
				   NULL);
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
 */
void
tkms_client_get_public_key(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			   GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	_tkms_call(self, tkms_client_get_public_key, "GetPublicKey", g_variant_new("(s)", name),
		   cancellable, callback, user_data);
}

/**
 * tkms_client_get_public_key_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the PEM SubjectPublicKeyInfo, or %NULL with @error set
 */
gchar *
tkms_client_get_public_key_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_reply_string(
		_tkms_call_finish(self, result, tkms_client_get_public_key, error));
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
 */
gchar *
tkms_client_get_public_key_sync(TkmsClient *self, const gchar *name, GCancellable *cancellable,
				GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);

	return _tkms_reply_string(_tkms_call_sync(self, "GetPublicKey",
						  g_variant_new("(s)", name), cancellable, error));
}
