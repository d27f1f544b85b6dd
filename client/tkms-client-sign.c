/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

/* Authentication with a named key: Sign, Verify, Hmac, VerifyHmac.
 * Each method has the same three forms; see tkms-client-call.c for the shared parts. */

#include "tkms-client-private.h"

/**
 * tkms_client_sign:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @data: the message; its SHA-256 digest is signed
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Signs @data in the TPM (D-Bus `Sign`); finish with tkms_client_sign_finish().
 *
 * Since: 0.1
 */
void
tkms_client_sign(TkmsClient *self, const gchar *name, GBytes *data, GCancellable *cancellable,
		 GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(data != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_sign, "Sign",
				     G_CALLBACK(tkms_dbus_key_manager_call_sign_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_sign(self->proxy, name, _tkms_bytes_to_variant(data),
					_tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_sign_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a DER ECDSA or RSASSA-PKCS1-v1_5 signature, or %NULL with @error
 *   set
 *
 * Since: 0.1
 */
GBytes *
tkms_client_sign_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_bytes(self, result, tkms_client_sign, error);
}

/**
 * tkms_client_sign_sync:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @data: the message; its SHA-256 digest is signed
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_sign().
 *
 * Returns: (transfer full): a DER ECDSA or RSASSA-PKCS1-v1_5 signature, or %NULL with @error
 *   set
 *
 * Since: 0.1
 */
GBytes *
tkms_client_sign_sync(TkmsClient *self, const gchar *name, GBytes *data,
		      GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(data != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_sign_sync(
				     self->proxy, name, _tkms_bytes_to_variant(data),
				     _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, &out,
				     cancellable, error),
			     error))
		return NULL;
	return _tkms_variant_to_bytes(out);
}

/**
 * tkms_client_verify:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @data: the message
 * @signature: the signature to check
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Checks a signature against the key's public keys (D-Bus `Verify`); finish with
 * tkms_client_verify_finish().
 *
 * Since: 0.1
 */
void
tkms_client_verify(TkmsClient *self, const gchar *name, GBytes *data, GBytes *signature,
		   GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(data != NULL);
	g_return_if_fail(signature != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_verify, "Verify",
				     G_CALLBACK(tkms_dbus_key_manager_call_verify_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_verify(self->proxy, name, _tkms_bytes_to_variant(data),
					  _tkms_bytes_to_variant(signature),
					  _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					  cancellable, _tkms_on_boolean_reply, task);
}

/**
 * tkms_client_verify_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @valid: (out) (optional): set to whether it is valid
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the call succeeded (then @valid holds the answer), %FALSE with @error set
 *
 * Since: 0.1
 */
gboolean
tkms_client_verify_finish(TkmsClient *self, GAsyncResult *result, gboolean *valid,
			  GError **error)
{
	return _tkms_task_boolean(self, result, tkms_client_verify, valid, error);
}

/**
 * tkms_client_verify_sync:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @data: the message
 * @signature: the signature to check
 * @valid: (out) (optional): set to whether it is valid
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_verify().
 *
 * Returns: %TRUE if the call succeeded (then @valid holds the answer), %FALSE with @error set
 *
 * Since: 0.1
 */
gboolean
tkms_client_verify_sync(TkmsClient *self, const gchar *name, GBytes *data, GBytes *signature,
			gboolean *valid, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);
	g_return_val_if_fail(data != NULL, FALSE);
	g_return_val_if_fail(signature != NULL, FALSE);

	gboolean out = FALSE;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_verify_sync(
				     self->proxy, name, _tkms_bytes_to_variant(data),
				     _tkms_bytes_to_variant(signature), _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return FALSE;
	if (valid != NULL)
		*valid = out;
	return TRUE;
}

/**
 * tkms_client_hmac:
 * @self: a #TkmsClient
 * @name: an `hmac-sha256` key
 * @data: the message
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Computes HMAC-SHA256 of @data in the TPM (D-Bus `Hmac`); finish with
 * tkms_client_hmac_finish().
 *
 * Since: 0.1
 */
void
tkms_client_hmac(TkmsClient *self, const gchar *name, GBytes *data, GCancellable *cancellable,
		 GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(data != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_hmac, "Hmac",
				     G_CALLBACK(tkms_dbus_key_manager_call_hmac_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_hmac(self->proxy, name, _tkms_bytes_to_variant(data),
					_tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_hmac_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the 32-byte MAC, or %NULL with @error set
 *
 * Since: 0.1
 */
GBytes *
tkms_client_hmac_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_bytes(self, result, tkms_client_hmac, error);
}

/**
 * tkms_client_hmac_sync:
 * @self: a #TkmsClient
 * @name: an `hmac-sha256` key
 * @data: the message
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_hmac().
 *
 * Returns: (transfer full): the 32-byte MAC, or %NULL with @error set
 *
 * Since: 0.1
 */
GBytes *
tkms_client_hmac_sync(TkmsClient *self, const gchar *name, GBytes *data,
		      GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(data != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_hmac_sync(
				     self->proxy, name, _tkms_bytes_to_variant(data),
				     _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, &out,
				     cancellable, error),
			     error))
		return NULL;
	return _tkms_variant_to_bytes(out);
}

/**
 * tkms_client_verify_hmac:
 * @self: a #TkmsClient
 * @name: an `hmac-sha256` key
 * @data: the message
 * @mac: the MAC to check
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Checks a MAC in constant time (D-Bus `VerifyHmac`); finish with
 * tkms_client_verify_hmac_finish().
 *
 * Since: 0.1
 */
void
tkms_client_verify_hmac(TkmsClient *self, const gchar *name, GBytes *data, GBytes *mac,
			GCancellable *cancellable, GAsyncReadyCallback callback,
			gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(data != NULL);
	g_return_if_fail(mac != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_verify_hmac, "VerifyHmac",
				     G_CALLBACK(tkms_dbus_key_manager_call_verify_hmac_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_verify_hmac(
		self->proxy, name, _tkms_bytes_to_variant(data), _tkms_bytes_to_variant(mac),
		_tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
		_tkms_on_boolean_reply, task);
}

/**
 * tkms_client_verify_hmac_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @valid: (out) (optional): set to whether it is valid
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the call succeeded (then @valid holds the answer), %FALSE with @error set
 *
 * Since: 0.1
 */
gboolean
tkms_client_verify_hmac_finish(TkmsClient *self, GAsyncResult *result, gboolean *valid,
			       GError **error)
{
	return _tkms_task_boolean(self, result, tkms_client_verify_hmac, valid, error);
}

/**
 * tkms_client_verify_hmac_sync:
 * @self: a #TkmsClient
 * @name: an `hmac-sha256` key
 * @data: the message
 * @mac: the MAC to check
 * @valid: (out) (optional): set to whether it is valid
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_verify_hmac().
 *
 * Returns: %TRUE if the call succeeded (then @valid holds the answer), %FALSE with @error set
 *
 * Since: 0.1
 */
gboolean
tkms_client_verify_hmac_sync(TkmsClient *self, const gchar *name, GBytes *data, GBytes *mac,
			     gboolean *valid, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);
	g_return_val_if_fail(data != NULL, FALSE);
	g_return_val_if_fail(mac != NULL, FALSE);

	gboolean out = FALSE;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_verify_hmac_sync(
				     self->proxy, name, _tkms_bytes_to_variant(data),
				     _tkms_bytes_to_variant(mac), _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return FALSE;
	if (valid != NULL)
		*valid = out;
	return TRUE;
}
