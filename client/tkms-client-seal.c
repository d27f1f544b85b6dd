/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

/* Keyless TPM services: Seal, Unseal, GetRandom.
 * Each method has the same three forms; see tkms-client-call.c for the shared parts. */

#include "tkms-client-private.h"

/**
 * tkms_client_seal:
 * @self: a #TkmsClient
 * @data: the data
 * @options: (nullable): an a{sv} of `pcrs` (au); %NULL for none. A floating reference
 *   is consumed
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Seals @data so that only this TPM and the caller's uid can unseal it (D-Bus `Seal`); finish
 * with tkms_client_seal_finish().
 */
void
tkms_client_seal(TkmsClient *self, GBytes *data, GVariant *options, GCancellable *cancellable,
		 GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(data != NULL);
	g_return_if_fail(options == NULL || g_variant_is_of_type(options, G_VARIANT_TYPE_VARDICT));

	_tkms_call(self, tkms_client_seal, "Seal",
		   g_variant_new("(@ay@a{sv})", _tkms_bytes_to_variant(data),
				 _tkms_options_or_empty(options)),
		   cancellable, callback, user_data);
}

/**
 * tkms_client_seal_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the sealed blob, or %NULL with @error set
 */
GBytes *
tkms_client_seal_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_reply_bytes(_tkms_call_finish(self, result, tkms_client_seal, error));
}

/**
 * tkms_client_seal_sync:
 * @self: a #TkmsClient
 * @data: the data
 * @options: (nullable): an a{sv} of `pcrs` (au); %NULL for none. A floating reference
 *   is consumed
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_seal().
 *
 * Returns: (transfer full): the sealed blob, or %NULL with @error set
 */
GBytes *
tkms_client_seal_sync(TkmsClient *self, GBytes *data, GVariant *options, GCancellable *cancellable,
		      GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(data != NULL, NULL);
	g_return_val_if_fail(options == NULL ||
				     g_variant_is_of_type(options, G_VARIANT_TYPE_VARDICT),
			     NULL);

	return _tkms_reply_bytes(_tkms_call_sync(self, "Seal",
						 g_variant_new("(@ay@a{sv})",
							       _tkms_bytes_to_variant(data),
							       _tkms_options_or_empty(options)),
						 cancellable, error));
}

/**
 * tkms_client_unseal:
 * @self: a #TkmsClient
 * @blob: output of tkms_client_seal()
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Unseals a blob made by tkms_client_seal() (D-Bus `Unseal`); finish with
 * tkms_client_unseal_finish().
 */
void
tkms_client_unseal(TkmsClient *self, GBytes *blob, GCancellable *cancellable,
		   GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(blob != NULL);

	_tkms_call(self, tkms_client_unseal, "Unseal",
		   g_variant_new("(@ay)", _tkms_bytes_to_variant(blob)), cancellable, callback,
		   user_data);
}

/**
 * tkms_client_unseal_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the data, or %NULL with @error set (%TKMS_ERROR_POLICY_MISMATCH if
 *   a bound PCR changed)
 */
GBytes *
tkms_client_unseal_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_reply_bytes(_tkms_call_finish(self, result, tkms_client_unseal, error));
}

/**
 * tkms_client_unseal_sync:
 * @self: a #TkmsClient
 * @blob: output of tkms_client_seal()
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_unseal().
 *
 * Returns: (transfer full): the data, or %NULL with @error set (%TKMS_ERROR_POLICY_MISMATCH if
 *   a bound PCR changed)
 */
GBytes *
tkms_client_unseal_sync(TkmsClient *self, GBytes *blob, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(blob != NULL, NULL);

	return _tkms_reply_bytes(_tkms_call_sync(
		self, "Unseal", g_variant_new("(@ay)", _tkms_bytes_to_variant(blob)), cancellable,
		error));
}

/**
 * tkms_client_get_random:
 * @self: a #TkmsClient
 * @length: number of bytes
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Reads random bytes from the TPM's RNG (D-Bus `GetRandom`); finish with
 * tkms_client_get_random_finish().
 */
void
tkms_client_get_random(TkmsClient *self, guint length, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);

	_tkms_call(self, tkms_client_get_random, "GetRandom", g_variant_new("(u)", length),
		   cancellable, callback, user_data);
}

/**
 * tkms_client_get_random_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): @length random bytes, or %NULL with @error set
 */
GBytes *
tkms_client_get_random_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_reply_bytes(_tkms_call_finish(self, result, tkms_client_get_random, error));
}

/**
 * tkms_client_get_random_sync:
 * @self: a #TkmsClient
 * @length: number of bytes
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_get_random().
 *
 * Returns: (transfer full): @length random bytes, or %NULL with @error set
 */
GBytes *
tkms_client_get_random_sync(TkmsClient *self, guint length, GCancellable *cancellable,
			    GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);

	return _tkms_reply_bytes(_tkms_call_sync(self, "GetRandom", g_variant_new("(u)", length),
						 cancellable, error));
}
