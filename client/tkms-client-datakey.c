/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

/* Data keys, rewrapping and digests: GenerateDataKey, ReEncrypt, SignDigest, VerifyDigest.
 * Each method has the same three forms; see tkms-client-call.c for the shared parts. */

#include "tkms-client-private.h"

typedef struct {
	GBytes *plaintext;
	GBytes *wrapped;
} DataKey;

static void
data_key_free(DataKey *dk)
{
	g_clear_pointer(&dk->plaintext, g_bytes_unref);
	g_clear_pointer(&dk->wrapped, g_bytes_unref);
	g_free(dk);
}

static void
on_data_key_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GVariant *plaintext = NULL;
	GVariant *wrapped = NULL;
	GError *error = NULL;
	DataKey *dk;

	if (!tkms_dbus_key_manager_call_generate_data_key_finish(
		    TKMS_DBUS_KEY_MANAGER(source), &plaintext, &wrapped, res, &error)) {
		_tkms_error_strip(&error);
		g_task_return_error(task, error);
		return;
	}
	dk = g_new0(DataKey, 1);
	dk->plaintext = _tkms_variant_to_wiped_bytes(plaintext);
	dk->wrapped = _tkms_variant_to_bytes(wrapped);
	g_task_return_pointer(task, dk, (GDestroyNotify)data_key_free);
}

/**
 * tkms_client_generate_data_key:
 * @self: a #TkmsClient
 * @name: an `aes-256-gcm` key
 * @length: the data key's length in bytes, 1 to 64 (32 for AES-256)
 * @context: (nullable): associated data that decrypting the wrapped key needs again; %NULL
 *   is empty
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Asks for a fresh data key for envelope encryption (D-Bus `GenerateDataKey`); finish with
 * tkms_client_generate_data_key_finish().
 *
 * Since: 0.2
 */
void
tkms_client_generate_data_key(TkmsClient *self, const gchar *name, guint length,
			      GBytes *context, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	GTask *task = g_task_new(self, cancellable, callback, user_data);

	g_task_set_source_tag(task, tkms_client_generate_data_key);
	g_task_set_name(task, "GenerateDataKey");
	tkms_dbus_key_manager_call_generate_data_key(
		self->proxy, name, length, _tkms_bytes_to_variant(context),
		_tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, cancellable, on_data_key_reply,
		task);
}

static gboolean
data_key_out(DataKey *dk, GBytes **out_plaintext, GBytes **out_wrapped)
{
	if (out_plaintext != NULL)
		*out_plaintext = g_steal_pointer(&dk->plaintext);
	if (out_wrapped != NULL)
		*out_wrapped = g_steal_pointer(&dk->wrapped);
	data_key_free(dk);
	return TRUE;
}

/**
 * tkms_client_generate_data_key_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @out_plaintext: (out) (optional) (transfer full): the data key; its bytes are wiped when
 *   the last reference is dropped
 * @out_wrapped: (out) (optional) (transfer full): the data key encrypted under the key's
 *   primary version, in Encrypt's ciphertext format
 * @error: return location for a #GError
 *
 * Returns: %TRUE with both out arguments set, or %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_generate_data_key_finish(TkmsClient *self, GAsyncResult *result,
				     GBytes **out_plaintext, GBytes **out_wrapped,
				     GError **error)
{
	DataKey *dk;

	if (!_tkms_task_check(self, result, tkms_client_generate_data_key))
		return FALSE;
	dk = g_task_propagate_pointer(G_TASK(result), error);
	if (dk == NULL)
		return FALSE;
	return data_key_out(dk, out_plaintext, out_wrapped);
}

/**
 * tkms_client_generate_data_key_sync:
 * @self: a #TkmsClient
 * @name: an `aes-256-gcm` key
 * @length: the data key's length in bytes, 1 to 64 (32 for AES-256)
 * @context: (nullable): associated data that decrypting the wrapped key needs again; %NULL
 *   is empty
 * @out_plaintext: (out) (optional) (transfer full): the data key; its bytes are wiped when
 *   the last reference is dropped
 * @out_wrapped: (out) (optional) (transfer full): the data key encrypted under the key's
 *   primary version, in Encrypt's ciphertext format
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_generate_data_key(). tkms_client_decrypt() of the wrapped
 * key with the same @context gives the data key back.
 *
 * Returns: %TRUE with both out arguments set, or %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_generate_data_key_sync(TkmsClient *self, const gchar *name, guint length,
				   GBytes *context, GBytes **out_plaintext,
				   GBytes **out_wrapped, GCancellable *cancellable,
				   GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);

	GVariant *plaintext = NULL;
	GVariant *wrapped = NULL;
	DataKey *dk;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_generate_data_key_sync(
				     self->proxy, name, length, _tkms_bytes_to_variant(context),
				     _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
				     &plaintext, &wrapped, cancellable, error),
			     error))
		return FALSE;
	dk = g_new0(DataKey, 1);
	dk->plaintext = _tkms_variant_to_wiped_bytes(plaintext);
	dk->wrapped = _tkms_variant_to_bytes(wrapped);
	return data_key_out(dk, out_plaintext, out_wrapped);
}

/**
 * tkms_client_re_encrypt:
 * @self: a #TkmsClient
 * @name: the `aes-256-gcm` key that made @ciphertext
 * @ciphertext: output of tkms_client_encrypt(), tkms_client_generate_data_key() (the
 *   wrapped key) or tkms_client_re_encrypt()
 * @context: (nullable): the context it was made with (the new ciphertext keeps it); %NULL
 *   is empty
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Rewraps @ciphertext under the key's primary version inside tkmsd, so the plaintext never
 * reaches the caller (D-Bus `ReEncrypt`); finish with tkms_client_re_encrypt_finish().
 *
 * Since: 0.2
 */
void
tkms_client_re_encrypt(TkmsClient *self, const gchar *name, GBytes *ciphertext,
		       GBytes *context, GCancellable *cancellable, GAsyncReadyCallback callback,
		       gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(ciphertext != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_re_encrypt, "ReEncrypt",
				     G_CALLBACK(tkms_dbus_key_manager_call_re_encrypt_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_re_encrypt(
		self->proxy, name, _tkms_bytes_to_variant(ciphertext),
		_tkms_bytes_to_variant(context), _tkms_call_flags(self),
		TKMS_CALL_TIMEOUT_DEFAULT, cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_re_encrypt_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the new ciphertext, or %NULL with @error set
 *   (%TKMS_ERROR_INTEGRITY_FAILURE if the old one was changed or belongs elsewhere)
 *
 * Since: 0.2
 */
GBytes *
tkms_client_re_encrypt_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_bytes(self, result, tkms_client_re_encrypt, error);
}

/**
 * tkms_client_re_encrypt_sync:
 * @self: a #TkmsClient
 * @name: the `aes-256-gcm` key that made @ciphertext
 * @ciphertext: output of tkms_client_encrypt(), tkms_client_generate_data_key() (the
 *   wrapped key) or tkms_client_re_encrypt()
 * @context: (nullable): the context it was made with (the new ciphertext keeps it); %NULL
 *   is empty
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_re_encrypt().
 *
 * Returns: (transfer full): the new ciphertext, or %NULL with @error set
 *   (%TKMS_ERROR_INTEGRITY_FAILURE if the old one was changed or belongs elsewhere)
 *
 * Since: 0.2
 */
GBytes *
tkms_client_re_encrypt_sync(TkmsClient *self, const gchar *name, GBytes *ciphertext,
			    GBytes *context, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(ciphertext != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_re_encrypt_sync(
				     self->proxy, name, _tkms_bytes_to_variant(ciphertext),
				     _tkms_bytes_to_variant(context), _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return NULL;
	return _tkms_variant_to_bytes(out);
}

/**
 * tkms_client_sign_digest:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @digest: the SHA-256 digest of the message, 32 bytes
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Signs a digest computed by the caller, for messages of any size (D-Bus `SignDigest`);
 * finish with tkms_client_sign_digest_finish(). The signature is the one
 * tkms_client_sign() gives for the message.
 *
 * Since: 0.2
 */
void
tkms_client_sign_digest(TkmsClient *self, const gchar *name, GBytes *digest,
			GCancellable *cancellable, GAsyncReadyCallback callback,
			gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(digest != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_sign_digest, "SignDigest",
				     G_CALLBACK(tkms_dbus_key_manager_call_sign_digest_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_sign_digest(self->proxy, name, _tkms_bytes_to_variant(digest),
					       _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
					       cancellable, _tkms_on_variant_reply, task);
}

/**
 * tkms_client_sign_digest_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a DER ECDSA or RSASSA-PKCS1-v1_5 signature, or %NULL with @error
 *   set (%TKMS_ERROR_INVALID_ARGUMENT if the digest is not 32 bytes)
 *
 * Since: 0.2
 */
GBytes *
tkms_client_sign_digest_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return _tkms_task_bytes(self, result, tkms_client_sign_digest, error);
}

/**
 * tkms_client_sign_digest_sync:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @digest: the SHA-256 digest of the message, 32 bytes
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_sign_digest().
 *
 * Returns: (transfer full): a DER ECDSA or RSASSA-PKCS1-v1_5 signature, or %NULL with @error
 *   set (%TKMS_ERROR_INVALID_ARGUMENT if the digest is not 32 bytes)
 *
 * Since: 0.2
 */
GBytes *
tkms_client_sign_digest_sync(TkmsClient *self, const gchar *name, GBytes *digest,
			     GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);
	g_return_val_if_fail(name != NULL, NULL);
	g_return_val_if_fail(digest != NULL, NULL);

	GVariant *out = NULL;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_sign_digest_sync(
				     self->proxy, name, _tkms_bytes_to_variant(digest),
				     _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, &out,
				     cancellable, error),
			     error))
		return NULL;
	return _tkms_variant_to_bytes(out);
}

/**
 * tkms_client_verify_digest:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @digest: the SHA-256 digest of the message, 32 bytes
 * @signature: the signature to check (from tkms_client_sign() or
 *   tkms_client_sign_digest())
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Checks a signature of a digest against the key's public keys (D-Bus `VerifyDigest`);
 * finish with tkms_client_verify_digest_finish().
 *
 * Since: 0.2
 */
void
tkms_client_verify_digest(TkmsClient *self, const gchar *name, GBytes *digest,
			  GBytes *signature, GCancellable *cancellable,
			  GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(digest != NULL);
	g_return_if_fail(signature != NULL);

	GTask *task = _tkms_task_new(self, tkms_client_verify_digest, "VerifyDigest",
				     G_CALLBACK(tkms_dbus_key_manager_call_verify_digest_finish),
				     cancellable, callback, user_data);

	tkms_dbus_key_manager_call_verify_digest(
		self->proxy, name, _tkms_bytes_to_variant(digest),
		_tkms_bytes_to_variant(signature), _tkms_call_flags(self),
		TKMS_CALL_TIMEOUT_DEFAULT, cancellable, _tkms_on_boolean_reply, task);
}

/**
 * tkms_client_verify_digest_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @valid: (out) (optional): set to whether the signature is valid
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the call succeeded (then @valid holds the answer), %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_verify_digest_finish(TkmsClient *self, GAsyncResult *result, gboolean *valid,
				 GError **error)
{
	return _tkms_task_boolean(self, result, tkms_client_verify_digest, valid, error);
}

/**
 * tkms_client_verify_digest_sync:
 * @self: a #TkmsClient
 * @name: an `ecdsa-p256` or `rsa-2048` key
 * @digest: the SHA-256 digest of the message, 32 bytes
 * @signature: the signature to check
 * @valid: (out) (optional): set to whether the signature is valid
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_verify_digest().
 *
 * Returns: %TRUE if the call succeeded (then @valid holds the answer), %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_verify_digest_sync(TkmsClient *self, const gchar *name, GBytes *digest,
			       GBytes *signature, gboolean *valid, GCancellable *cancellable,
			       GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);
	g_return_val_if_fail(digest != NULL, FALSE);
	g_return_val_if_fail(signature != NULL, FALSE);

	gboolean out = FALSE;

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_verify_digest_sync(
				     self->proxy, name, _tkms_bytes_to_variant(digest),
				     _tkms_bytes_to_variant(signature), _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &out, cancellable, error),
			     error))
		return FALSE;
	if (valid != NULL)
		*valid = out;
	return TRUE;
}
