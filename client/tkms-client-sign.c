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
 */
void
tkms_client_sign(TkmsClient *self, const gchar *name, GBytes *data, GCancellable *cancellable,
		 GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(data != NULL);

	_tkms_call(self, tkms_client_sign, "Sign",
		   g_variant_new("(s@ay)", name, _tkms_bytes_to_variant(data)), cancellable,
		   callback, user_data);
}

/**
 * tkms_client_sign_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a DER ECDSA or RSASSA-PKCS1-v1_5 signature, or %NULL with @error
 *   set
 */
GBytes *
tkms_client_sign_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_reply_bytes(_tkms_call_finish(self, result, tkms_client_sign, error));
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
 */
GBytes *
tkms_client_sign_sync(TkmsClient *self, const gchar *name, GBytes *data, GCancellable *cancellable,
		      GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(data != NULL, NULL);

	return _tkms_reply_bytes(_tkms_call_sync(
		self, "Sign", g_variant_new("(s@ay)", name, _tkms_bytes_to_variant(data)),
		cancellable, error));
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
 * Checks a signature in the TPM (D-Bus `Verify`); finish with tkms_client_verify_finish().
 */
void
tkms_client_verify(TkmsClient *self, const gchar *name, GBytes *data, GBytes *signature,
		   GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(data != NULL);
	g_return_if_fail(signature != NULL);

	_tkms_call(self, tkms_client_verify, "Verify",
		   g_variant_new("(s@ay@ay)", name, _tkms_bytes_to_variant(data),
				 _tkms_bytes_to_variant(signature)),
		   cancellable, callback, user_data);
}

/**
 * tkms_client_verify_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @valid: (out) (optional): set to whether it is valid
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the call succeeded (then @valid holds the answer), %FALSE with @error set
 */
gboolean
tkms_client_verify_finish(TkmsClient *self, GAsyncResult *result, gboolean *valid, GError **error)
{
	return _tkms_reply_boolean(_tkms_call_finish(self, result, tkms_client_verify, error),
				   valid);
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
 */
gboolean
tkms_client_verify_sync(TkmsClient *self, const gchar *name, GBytes *data, GBytes *signature,
			gboolean *valid, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);
	g_return_val_if_fail(data != NULL, FALSE);
	g_return_val_if_fail(signature != NULL, FALSE);

	return _tkms_reply_boolean(_tkms_call_sync(self, "Verify",
						   g_variant_new("(s@ay@ay)", name,
								 _tkms_bytes_to_variant(data),
								 _tkms_bytes_to_variant(signature)),
						   cancellable, error),
				   valid);
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
 */
void
tkms_client_hmac(TkmsClient *self, const gchar *name, GBytes *data, GCancellable *cancellable,
		 GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(data != NULL);

	_tkms_call(self, tkms_client_hmac, "Hmac",
		   g_variant_new("(s@ay)", name, _tkms_bytes_to_variant(data)), cancellable,
		   callback, user_data);
}

/**
 * tkms_client_hmac_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the 32-byte MAC, or %NULL with @error set
 */
GBytes *
tkms_client_hmac_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_reply_bytes(_tkms_call_finish(self, result, tkms_client_hmac, error));
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
 */
GBytes *
tkms_client_hmac_sync(TkmsClient *self, const gchar *name, GBytes *data, GCancellable *cancellable,
		      GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(data != NULL, NULL);

	return _tkms_reply_bytes(_tkms_call_sync(
		self, "Hmac", g_variant_new("(s@ay)", name, _tkms_bytes_to_variant(data)),
		cancellable, error));
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
 */
void
tkms_client_verify_hmac(TkmsClient *self, const gchar *name, GBytes *data, GBytes *mac,
			GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(data != NULL);
	g_return_if_fail(mac != NULL);

	_tkms_call(self, tkms_client_verify_hmac, "VerifyHmac",
		   g_variant_new("(s@ay@ay)", name, _tkms_bytes_to_variant(data),
				 _tkms_bytes_to_variant(mac)),
		   cancellable, callback, user_data);
}

/**
 * tkms_client_verify_hmac_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @valid: (out) (optional): set to whether it is valid
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the call succeeded (then @valid holds the answer), %FALSE with @error set
 */
gboolean
tkms_client_verify_hmac_finish(TkmsClient *self, GAsyncResult *result, gboolean *valid,
			       GError **error)
{
	return _tkms_reply_boolean(_tkms_call_finish(self, result, tkms_client_verify_hmac, error),
				   valid);
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
 */
gboolean
tkms_client_verify_hmac_sync(TkmsClient *self, const gchar *name, GBytes *data, GBytes *mac,
			     gboolean *valid, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);
	g_return_val_if_fail(data != NULL, FALSE);
	g_return_val_if_fail(mac != NULL, FALSE);

	return _tkms_reply_boolean(_tkms_call_sync(self, "VerifyHmac",
						   g_variant_new("(s@ay@ay)", name,
								 _tkms_bytes_to_variant(data),
								 _tkms_bytes_to_variant(mac)),
						   cancellable, error),
				   valid);
}
