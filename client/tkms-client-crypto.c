/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

/* Symmetric operations on a named key: Encrypt, Decrypt, DeriveKey.
 * Each method has the same three forms; see tkms-client-call.c for the shared parts. */

#include "tkms-client-private.h"

/**
 * tkms_client_encrypt:
 * @self: a #TkmsClient
 * @name: an `aes-256-gcm` key
 * @plaintext: the data
 * @context: (nullable): associated data that decryption must be given again; %NULL is empty
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Encrypts @plaintext with the key's primary version (D-Bus `Encrypt`); finish with
 * tkms_client_encrypt_finish().
 *
 * Since: 0.1
 */
void
tkms_client_encrypt(TkmsClient *self, const gchar *name, GBytes *plaintext, GBytes *context,
		    GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(plaintext != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_encrypt, "Encrypt",
				     G_CALLBACK(tkms_dbus_key_manager_call_encrypt_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_encrypt(self->proxy, name, _tkms_bytes_to_variant(plaintext),
					   _tkms_bytes_to_variant(context),
					   _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					   cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_encrypt_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the self-describing ciphertext, or %NULL with @error set
 *
 * Since: 0.1
 */
GBytes *
tkms_client_encrypt_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_bytes(self, result, tkms_client_encrypt, error);
}

/**
 * tkms_client_encrypt_sync:
 * @self: a #TkmsClient
 * @name: an `aes-256-gcm` key
 * @plaintext: the data
 * @context: (nullable): associated data that decryption must be given again; %NULL is empty
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_encrypt().
 *
 * Returns: (transfer full): the self-describing ciphertext, or %NULL with @error set
 *
 * Since: 0.1
 */
GBytes *
tkms_client_encrypt_sync(TkmsClient *self, const gchar *name, GBytes *plaintext,
			 GBytes *context, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(plaintext != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_encrypt_sync(
				     self->proxy, name, _tkms_bytes_to_variant(plaintext),
				     _tkms_bytes_to_variant(context), _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return NULL;
	return _tkms_variant_to_bytes(out);
}

/**
 * tkms_client_decrypt:
 * @self: a #TkmsClient
 * @name: the `aes-256-gcm` key that encrypted @ciphertext
 * @ciphertext: output of tkms_client_encrypt()
 * @context: (nullable): the context given to encryption; %NULL is empty
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Decrypts and authenticates @ciphertext (D-Bus `Decrypt`); finish with
 * tkms_client_decrypt_finish().
 *
 * Since: 0.1
 */
void
tkms_client_decrypt(TkmsClient *self, const gchar *name, GBytes *ciphertext, GBytes *context,
		    GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(ciphertext != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_decrypt, "Decrypt",
				     G_CALLBACK(tkms_dbus_key_manager_call_decrypt_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_decrypt(
		self->proxy, name, _tkms_bytes_to_variant(ciphertext),
		_tkms_bytes_to_variant(context), _tkms_call_flags(self),
		TKMS_CALL_TIMEOUT_DEFAULT, cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_decrypt_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the plaintext (wiped when its last reference goes), or %NULL
 *   with @error set
 *   (%TKMS_ERROR_INTEGRITY_FAILURE if it was changed or belongs elsewhere)
 *
 * Since: 0.1
 */
GBytes *
tkms_client_decrypt_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_wiped_bytes(self, result, tkms_client_decrypt, error);
}

/**
 * tkms_client_decrypt_sync:
 * @self: a #TkmsClient
 * @name: the `aes-256-gcm` key that encrypted @ciphertext
 * @ciphertext: output of tkms_client_encrypt()
 * @context: (nullable): the context given to encryption; %NULL is empty
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_decrypt().
 *
 * Returns: (transfer full): the plaintext (wiped when its last reference goes), or %NULL
 *   with @error set
 *   (%TKMS_ERROR_INTEGRITY_FAILURE if it was changed or belongs elsewhere)
 *
 * Since: 0.1
 */
GBytes *
tkms_client_decrypt_sync(TkmsClient *self, const gchar *name, GBytes *ciphertext,
			 GBytes *context, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(ciphertext != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_decrypt_sync(
				     self->proxy, name, _tkms_bytes_to_variant(ciphertext),
				     _tkms_bytes_to_variant(context), _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return NULL;
	return _tkms_variant_to_wiped_bytes(out);
}

/**
 * tkms_client_derive_key:
 * @self: a #TkmsClient
 * @name: an `hmac-sha256` key
 * @context: (nullable): what the derived key is for
 * @length: number of bytes to derive, 1 to 8160
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Derives key material, deterministic per key, @context and @length (HKDF-SHA256 with the
 * extract step in the TPM) (D-Bus `DeriveKey`); finish with tkms_client_derive_key_finish().
 *
 * Since: 0.1
 */
void
tkms_client_derive_key(TkmsClient *self, const gchar *name, GBytes *context, guint length,
		       GCancellable *cancellable, GAsyncReadyCallback callback,
		       gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_derive_key, "DeriveKey",
				     G_CALLBACK(tkms_dbus_key_manager_call_derive_key_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_derive_key(self->proxy, name,
					      _tkms_bytes_to_variant(context), length,
					      _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					      cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_derive_key_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the derived bytes (wiped when their last reference goes), or
 *   %NULL with @error set
 *
 * Since: 0.1
 */
GBytes *
tkms_client_derive_key_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_wiped_bytes(self, result, tkms_client_derive_key, error);
}

/**
 * tkms_client_derive_key_sync:
 * @self: a #TkmsClient
 * @name: an `hmac-sha256` key
 * @context: (nullable): what the derived key is for
 * @length: number of bytes to derive, 1 to 8160
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_derive_key().
 *
 * Returns: (transfer full): the derived bytes (wiped when their last reference goes), or
 *   %NULL with @error set
 *
 * Since: 0.1
 */
GBytes *
tkms_client_derive_key_sync(TkmsClient *self, const gchar *name, GBytes *context, guint length,
			    GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_derive_key_sync(
				     self->proxy, name, _tkms_bytes_to_variant(context), length,
				     _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, &out,
				     cancellable, error),
			     error))
		return NULL;
	return _tkms_variant_to_wiped_bytes(out);
}
