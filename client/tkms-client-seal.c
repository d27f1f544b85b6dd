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
 *
 * Since: 0.1
 */
void
tkms_client_seal(TkmsClient *self, GBytes *data, GVariant *options, GCancellable *cancellable,
		 GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(data != NULL);
	g_return_if_fail(options == NULL ||
			 g_variant_is_of_type(options, G_VARIANT_TYPE_VARDICT));

	GTask *task = _tkms_task_new(self, tkms_client_seal, "Seal",
				     G_CALLBACK(tkms_dbus_key_manager_call_seal_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_seal(self->proxy, _tkms_bytes_to_variant(data),
					_tkms_options_or_empty(options), _tkms_call_flags(self),
					TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
					_tkms_on_variant_reply, task);
}

/**
 * tkms_client_seal_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the sealed blob, or %NULL with @error set
 *
 * Since: 0.1
 */
GBytes *
tkms_client_seal_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_bytes(self, result, tkms_client_seal, error);
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
 *
 * Since: 0.1
 */
GBytes *
tkms_client_seal_sync(TkmsClient *self, GBytes *data, GVariant *options,
		      GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(data != NULL, NULL);
	g_return_val_if_fail(
		options == NULL || g_variant_is_of_type(options, G_VARIANT_TYPE_VARDICT), NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_seal_sync(
				     self->proxy, _tkms_bytes_to_variant(data),
				     _tkms_options_or_empty(options), _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return NULL;
	return _tkms_variant_to_bytes(out);
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
 *
 * Since: 0.1
 */
void
tkms_client_unseal(TkmsClient *self, GBytes *blob, GCancellable *cancellable,
		   GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(blob != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_unseal, "Unseal",
				     G_CALLBACK(tkms_dbus_key_manager_call_unseal_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_unseal(self->proxy, _tkms_bytes_to_variant(blob),
					  _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					  cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_unseal_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the data (wiped when its last reference goes), or %NULL with
 *   @error set (%TKMS_ERROR_POLICY_MISMATCH if
 *   a bound PCR changed)
 *
 * Since: 0.1
 */
GBytes *
tkms_client_unseal_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_wiped_bytes(self, result, tkms_client_unseal, error);
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
 * Returns: (transfer full): the data (wiped when its last reference goes), or %NULL with
 *   @error set (%TKMS_ERROR_POLICY_MISMATCH if
 *   a bound PCR changed)
 *
 * Since: 0.1
 */
GBytes *
tkms_client_unseal_sync(TkmsClient *self, GBytes *blob, GCancellable *cancellable,
			GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(blob != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_unseal_sync(
				     self->proxy, _tkms_bytes_to_variant(blob),
				     _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, &out,
				     cancellable, error),
			     error))
		return NULL;
	return _tkms_variant_to_wiped_bytes(out);
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
 *
 * Since: 0.1
 */
void
tkms_client_get_random(TkmsClient *self, guint length, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_get_random, "GetRandom",
				     G_CALLBACK(tkms_dbus_key_manager_call_get_random_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_get_random(self->proxy, length, _tkms_call_flags(self),
					      TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
					      _tkms_on_variant_reply, task);
}

/**
 * tkms_client_get_random_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): @length random bytes (wiped when their last reference goes),
 *   or %NULL with @error set
 *
 * Since: 0.1
 */
GBytes *
tkms_client_get_random_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_wiped_bytes(self, result, tkms_client_get_random, error);
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
 * Returns: (transfer full): @length random bytes (wiped when their last reference goes),
 *   or %NULL with @error set
 *
 * Since: 0.1
 */
GBytes *
tkms_client_get_random_sync(TkmsClient *self, guint length, GCancellable *cancellable,
			    GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_get_random_sync(
				     self->proxy, length, _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return NULL;
	return _tkms_variant_to_wiped_bytes(out);
}
