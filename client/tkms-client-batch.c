/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

/* Batches: EncryptBatch, DecryptBatch, SignBatch, HmacBatch, each a GPtrArray of GBytes in
 * and out. Each method has the same three forms; see tkms-client-call.c for the shared
 * parts. */

#include "tkms-client-private.h"

/* A floating `aay` over the items without copying them. */
static GVariant *
items_to_variant(GPtrArray *items)
{
	g_autofree GVariant **children = g_new(GVariant *, MAX(items->len, 1));

	for (guint i = 0; i < items->len; i++)
		children[i] = _tkms_bytes_to_variant(g_ptr_array_index(items, i));
	return g_variant_new_array(G_VARIANT_TYPE_BYTESTRING, children, items->len);
}

/* An `aay` reply (transfer full; NULL passes through) as GBytes sharing its buffer, or for
 * secrets as GBytes of our own that wipe their bytes (the reply's copy is wiped at once). */
static GPtrArray *
items_from_variant(GVariant *value, gboolean wiped)
{
	g_autoptr(GVariant) owned = value;
	GPtrArray *items;
	gsize n;

	if (value == NULL)
		return NULL;
	n = g_variant_n_children(value);
	items = g_ptr_array_new_full(n, (GDestroyNotify)g_bytes_unref);
	for (gsize i = 0; i < n; i++) {
		GVariant *item = g_variant_get_child_value(value, i);
		g_ptr_array_add(items, wiped ? _tkms_variant_to_wiped_bytes(item)
					     : _tkms_variant_to_bytes(item));
	}
	return items;
}

/**
 * tkms_client_encrypt_batch:
 * @self: a #TkmsClient
 * @name: an `aes-256-gcm` key
 * @plaintexts: (element-type GBytes): 1 to 1024 messages of at least one byte each, at most
 *   the daemon's MaxPayload in all
 * @context: (nullable): associated data that decryption must be given again; %NULL is empty
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Encrypts every message of @plaintexts with the key's primary version in one call (D-Bus
 * `EncryptBatch`): each output is a ciphertext as tkms_client_encrypt() makes it. One message
 * that fails fails the whole batch; the error's message starts with its index ("item 17: ...").
 * Finish with tkms_client_encrypt_batch_finish().
 *
 * Since: 0.2
 */
void
tkms_client_encrypt_batch(TkmsClient *self, const gchar *name, GPtrArray *plaintexts,
			  GBytes *context, GCancellable *cancellable, GAsyncReadyCallback callback,
			  gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(plaintexts != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_encrypt_batch, "EncryptBatch",
				     G_CALLBACK(tkms_dbus_key_manager_call_encrypt_batch_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_encrypt_batch(self->proxy, name, items_to_variant(plaintexts),
						 _tkms_bytes_to_variant(context),
						 _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
						 cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_encrypt_batch_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type GBytes): the ciphertexts, one per message in order,
 *   or %NULL with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_encrypt_batch_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return items_from_variant(
		_tkms_task_variant(self, result, tkms_client_encrypt_batch, error), FALSE);
}

/**
 * tkms_client_encrypt_batch_sync:
 * @self: a #TkmsClient
 * @name: an `aes-256-gcm` key
 * @plaintexts: (element-type GBytes): 1 to 1024 messages of at least one byte each, at most
 *   the daemon's MaxPayload in all
 * @context: (nullable): associated data that decryption must be given again; %NULL is empty
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_encrypt_batch().
 *
 * Returns: (transfer full) (element-type GBytes): the ciphertexts, one per message in order,
 *   or %NULL with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_encrypt_batch_sync(TkmsClient *self, const gchar *name, GPtrArray *plaintexts,
			       GBytes *context, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(plaintexts != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_encrypt_batch_sync(
				     self->proxy, name, items_to_variant(plaintexts),
				     _tkms_bytes_to_variant(context), _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return NULL;
	return items_from_variant(out, FALSE);
}

/**
 * tkms_client_decrypt_batch:
 * @self: a #TkmsClient
 * @name: the `aes-256-gcm` key that encrypted @ciphertexts
 * @ciphertexts: (element-type GBytes): 1 to 1024 outputs of tkms_client_encrypt() or
 *   tkms_client_encrypt_batch()
 * @context: (nullable): the context given to encryption, the same for every item; %NULL is
 *   empty
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Decrypts and authenticates every ciphertext of @ciphertexts in one call (D-Bus
 * `DecryptBatch`). One that fails (%TKMS_ERROR_INTEGRITY_FAILURE if it was changed or belongs
 * elsewhere) fails the whole batch; the error's message starts with its index ("item 5: ...").
 * Finish with tkms_client_decrypt_batch_finish().
 *
 * Since: 0.2
 */
void
tkms_client_decrypt_batch(TkmsClient *self, const gchar *name, GPtrArray *ciphertexts,
			  GBytes *context, GCancellable *cancellable, GAsyncReadyCallback callback,
			  gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(ciphertexts != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_decrypt_batch, "DecryptBatch",
				     G_CALLBACK(tkms_dbus_key_manager_call_decrypt_batch_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_decrypt_batch(self->proxy, name, items_to_variant(ciphertexts),
						 _tkms_bytes_to_variant(context),
						 _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
						 cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_decrypt_batch_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type GBytes): the plaintexts, one per ciphertext in
 *   order, each wiped when its last reference goes; or %NULL with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_decrypt_batch_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return items_from_variant(
		_tkms_task_variant(self, result, tkms_client_decrypt_batch, error), TRUE);
}

/**
 * tkms_client_decrypt_batch_sync:
 * @self: a #TkmsClient
 * @name: the `aes-256-gcm` key that encrypted @ciphertexts
 * @ciphertexts: (element-type GBytes): 1 to 1024 outputs of tkms_client_encrypt() or
 *   tkms_client_encrypt_batch()
 * @context: (nullable): the context given to encryption, the same for every item; %NULL is
 *   empty
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_decrypt_batch().
 *
 * Returns: (transfer full) (element-type GBytes): the plaintexts, one per ciphertext in
 *   order, each wiped when its last reference goes; or %NULL with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_decrypt_batch_sync(TkmsClient *self, const gchar *name, GPtrArray *ciphertexts,
			       GBytes *context, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(ciphertexts != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_decrypt_batch_sync(
				     self->proxy, name, items_to_variant(ciphertexts),
				     _tkms_bytes_to_variant(context), _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return NULL;
	return items_from_variant(out, TRUE);
}

/**
 * tkms_client_sign_batch:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @messages: (element-type GBytes): 1 to 1024 messages (empty ones allowed), at most the
 *   daemon's MaxPayload in all
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Signs the SHA-256 digest of every message of @messages with the key's primary version in one
 * call, the TPM object loaded once (D-Bus `SignBatch`); each signature is as tkms_client_sign()
 * makes it. One message that fails fails the whole batch; the error's message starts with its
 * index.
 * Finish with tkms_client_sign_batch_finish().
 *
 * Since: 0.2
 */
void
tkms_client_sign_batch(TkmsClient *self, const gchar *name, GPtrArray *messages,
		       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(messages != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_sign_batch, "SignBatch",
				     G_CALLBACK(tkms_dbus_key_manager_call_sign_batch_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_sign_batch(self->proxy, name, items_to_variant(messages),
					      _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					      cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_sign_batch_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type GBytes): the signatures, one per message in order,
 *   or %NULL with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_sign_batch_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return items_from_variant(_tkms_task_variant(self, result, tkms_client_sign_batch, error),
				  FALSE);
}

/**
 * tkms_client_sign_batch_sync:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @messages: (element-type GBytes): 1 to 1024 messages (empty ones allowed), at most the
 *   daemon's MaxPayload in all
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_sign_batch().
 *
 * Returns: (transfer full) (element-type GBytes): the signatures, one per message in order,
 *   or %NULL with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_sign_batch_sync(TkmsClient *self, const gchar *name, GPtrArray *messages,
			    GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(messages != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_sign_batch_sync(
				     self->proxy, name, items_to_variant(messages),
				     _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, &out,
				     cancellable, error),
			     error))
		return NULL;
	return items_from_variant(out, FALSE);
}

/**
 * tkms_client_hmac_batch:
 * @self: a #TkmsClient
 * @name: an `hmac-sha256` key
 * @messages: (element-type GBytes): 1 to 1024 messages (empty ones allowed), at most the
 *   daemon's MaxPayload in all
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Computes HMAC-SHA256 of every message of @messages in the TPM in one call, the key loaded
 * once (D-Bus `HmacBatch`); each MAC equals tkms_client_hmac()'s. One message that fails fails
 * the whole batch; the error's message starts with its index.
 * Finish with tkms_client_hmac_batch_finish().
 *
 * Since: 0.2
 */
void
tkms_client_hmac_batch(TkmsClient *self, const gchar *name, GPtrArray *messages,
		       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(messages != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_hmac_batch, "HmacBatch",
				     G_CALLBACK(tkms_dbus_key_manager_call_hmac_batch_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_hmac_batch(self->proxy, name, items_to_variant(messages),
					      _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					      cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_hmac_batch_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type GBytes): the MACs (32 bytes each), one per message
 *   in order, each wiped when its last reference goes; or %NULL with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_hmac_batch_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return items_from_variant(_tkms_task_variant(self, result, tkms_client_hmac_batch, error),
				  TRUE);
}

/**
 * tkms_client_hmac_batch_sync:
 * @self: a #TkmsClient
 * @name: an `hmac-sha256` key
 * @messages: (element-type GBytes): 1 to 1024 messages (empty ones allowed), at most the
 *   daemon's MaxPayload in all
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_hmac_batch().
 *
 * Returns: (transfer full) (element-type GBytes): the MACs (32 bytes each), one per message
 *   in order, each wiped when its last reference goes; or %NULL with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_hmac_batch_sync(TkmsClient *self, const gchar *name, GPtrArray *messages,
			    GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(messages != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_hmac_batch_sync(
				     self->proxy, name, items_to_variant(messages),
				     _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, &out,
				     cancellable, error),
			     error))
		return NULL;
	return items_from_variant(out, TRUE);
}
