/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "tkms-error.h"
#include "tkms-key-info.h"

G_BEGIN_DECLS

#define TKMS_BUS_NAME "org.tkms.KeyManager"
#define TKMS_OBJECT_PATH "/org/tkms/KeyManager"

#define TKMS_TYPE_CLIENT (tkms_client_get_type())
G_DECLARE_FINAL_TYPE(TkmsClient, tkms_client, TKMS, CLIENT, GObject)

/* Construction: from a connection (any bus, e.g. a private test bus) or the system bus. */
void tkms_client_new(GDBusConnection *connection, GCancellable *cancellable,
		     GAsyncReadyCallback callback, gpointer user_data);
TkmsClient *tkms_client_new_finish(GAsyncResult *result, GError **error);
TkmsClient *tkms_client_new_sync(GDBusConnection *connection, GCancellable *cancellable,
				 GError **error);
TkmsClient *tkms_client_new_for_system_bus_sync(GCancellable *cancellable, GError **error);

GDBusConnection *tkms_client_get_connection(TkmsClient *self);
/* The daemon's unique bus name, or NULL when tkmsd is not running (and could not be
 * activated): then every call fails with G_DBUS_ERROR_SERVICE_UNKNOWN. */
gchar *tkms_client_dup_name_owner(TkmsClient *self);

/* Properties (cached from the daemon, updated by PropertiesChanged). */
const gchar *tkms_client_get_daemon_version(TkmsClient *self);
gboolean tkms_client_get_tpm_available(TkmsClient *self);
const gchar *tkms_client_get_tpm_manufacturer(TkmsClient *self);
const gchar *tkms_client_get_tpm_firmware_version(TkmsClient *self);
gboolean tkms_client_get_tpm_locked_out(TkmsClient *self);
guint tkms_client_get_tpm_lockout_counter(TkmsClient *self);

/* Whether calls carry G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, so that polkit may
 * ask the user through an authentication agent (default FALSE: fail instead of asking). */
void tkms_client_set_allow_interactive_authorization(TkmsClient *self, gboolean allow);
gboolean tkms_client_get_allow_interactive_authorization(TkmsClient *self);

/* Every method below maps 1:1 to org.tkms.KeyManager; see the D-Bus reference.
 * Byte arrays are GBytes; dictionaries are GVariant a{sv} (floating refs are sunk).
 * A key name may be OWNER:NAME (OWNER a uid or "system") to address another owner's key;
 * that needs the polkit action org.tkms.KeyManager.admin. */

void tkms_client_create_key(TkmsClient *self, const gchar *name, const gchar *type,
			    GVariant *options, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);
GVariant *tkms_client_create_key_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GVariant *tkms_client_create_key_sync(TkmsClient *self, const gchar *name, const gchar *type,
				      GVariant *options, GCancellable *cancellable, GError **error);

void tkms_client_list_keys(TkmsClient *self, GCancellable *cancellable,
			   GAsyncReadyCallback callback, gpointer user_data);
GVariant *tkms_client_list_keys_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GVariant *tkms_client_list_keys_sync(TkmsClient *self, GCancellable *cancellable, GError **error);

/* Every owner's keys; needs org.tkms.KeyManager.admin. */
void tkms_client_list_all_keys(TkmsClient *self, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
GVariant *tkms_client_list_all_keys_finish(TkmsClient *self, GAsyncResult *result,
					   GError **error);
GVariant *tkms_client_list_all_keys_sync(TkmsClient *self, GCancellable *cancellable,
					 GError **error);

void tkms_client_get_key_info(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data);
GVariant *tkms_client_get_key_info_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GVariant *tkms_client_get_key_info_sync(TkmsClient *self, const gchar *name,
					GCancellable *cancellable, GError **error);

void tkms_client_destroy_key(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			     GAsyncReadyCallback callback, gpointer user_data);
gboolean tkms_client_destroy_key_finish(TkmsClient *self, GAsyncResult *result, GError **error);
gboolean tkms_client_destroy_key_sync(TkmsClient *self, const gchar *name,
				      GCancellable *cancellable, GError **error);

void tkms_client_encrypt(TkmsClient *self, const gchar *name, GBytes *plaintext, GBytes *context,
			 GCancellable *cancellable, GAsyncReadyCallback callback,
			 gpointer user_data);
GBytes *tkms_client_encrypt_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GBytes *tkms_client_encrypt_sync(TkmsClient *self, const gchar *name, GBytes *plaintext,
				 GBytes *context, GCancellable *cancellable, GError **error);

void tkms_client_decrypt(TkmsClient *self, const gchar *name, GBytes *ciphertext, GBytes *context,
			 GCancellable *cancellable, GAsyncReadyCallback callback,
			 gpointer user_data);
GBytes *tkms_client_decrypt_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GBytes *tkms_client_decrypt_sync(TkmsClient *self, const gchar *name, GBytes *ciphertext,
				 GBytes *context, GCancellable *cancellable, GError **error);

void tkms_client_sign(TkmsClient *self, const gchar *name, GBytes *data,
		      GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
GBytes *tkms_client_sign_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GBytes *tkms_client_sign_sync(TkmsClient *self, const gchar *name, GBytes *data,
			      GCancellable *cancellable, GError **error);

/* verify/verify_hmac: the result is the "valid" flag in *valid; FALSE return means error. */
void tkms_client_verify(TkmsClient *self, const gchar *name, GBytes *data, GBytes *signature,
			GCancellable *cancellable, GAsyncReadyCallback callback,
			gpointer user_data);
gboolean tkms_client_verify_finish(TkmsClient *self, GAsyncResult *result, gboolean *valid,
				   GError **error);
gboolean tkms_client_verify_sync(TkmsClient *self, const gchar *name, GBytes *data,
				 GBytes *signature, gboolean *valid, GCancellable *cancellable,
				 GError **error);

void tkms_client_get_public_key(TkmsClient *self, const gchar *name, GCancellable *cancellable,
				GAsyncReadyCallback callback, gpointer user_data);
gchar *tkms_client_get_public_key_finish(TkmsClient *self, GAsyncResult *result, GError **error);
gchar *tkms_client_get_public_key_sync(TkmsClient *self, const gchar *name,
				       GCancellable *cancellable, GError **error);

void tkms_client_hmac(TkmsClient *self, const gchar *name, GBytes *data,
		      GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
GBytes *tkms_client_hmac_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GBytes *tkms_client_hmac_sync(TkmsClient *self, const gchar *name, GBytes *data,
			      GCancellable *cancellable, GError **error);

void tkms_client_verify_hmac(TkmsClient *self, const gchar *name, GBytes *data, GBytes *mac,
			     GCancellable *cancellable, GAsyncReadyCallback callback,
			     gpointer user_data);
gboolean tkms_client_verify_hmac_finish(TkmsClient *self, GAsyncResult *result, gboolean *valid,
					GError **error);
gboolean tkms_client_verify_hmac_sync(TkmsClient *self, const gchar *name, GBytes *data,
				      GBytes *mac, gboolean *valid, GCancellable *cancellable,
				      GError **error);

void tkms_client_derive_key(TkmsClient *self, const gchar *name, GBytes *context, guint length,
			    GCancellable *cancellable, GAsyncReadyCallback callback,
			    gpointer user_data);
GBytes *tkms_client_derive_key_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GBytes *tkms_client_derive_key_sync(TkmsClient *self, const gchar *name, GBytes *context,
				    guint length, GCancellable *cancellable, GError **error);

void tkms_client_seal(TkmsClient *self, GBytes *data, GVariant *options,
		      GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
GBytes *tkms_client_seal_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GBytes *tkms_client_seal_sync(TkmsClient *self, GBytes *data, GVariant *options,
			      GCancellable *cancellable, GError **error);

void tkms_client_unseal(TkmsClient *self, GBytes *blob, GCancellable *cancellable,
			GAsyncReadyCallback callback, gpointer user_data);
GBytes *tkms_client_unseal_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GBytes *tkms_client_unseal_sync(TkmsClient *self, GBytes *blob, GCancellable *cancellable,
				GError **error);

void tkms_client_get_random(TkmsClient *self, guint length, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);
GBytes *tkms_client_get_random_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GBytes *tkms_client_get_random_sync(TkmsClient *self, guint length, GCancellable *cancellable,
				    GError **error);

/* Since 0.2: key info as TkmsKeyInfo objects, and paged listing. */

/* CreateKey, returning a TkmsKeyInfo */
void tkms_client_generate_key(TkmsClient *self, const gchar *name, const gchar *type,
			      GVariant *options, GCancellable *cancellable,
			      GAsyncReadyCallback callback, gpointer user_data);
TkmsKeyInfo *tkms_client_generate_key_finish(TkmsClient *self, GAsyncResult *result,
					     GError **error);
TkmsKeyInfo *tkms_client_generate_key_sync(TkmsClient *self, const gchar *name,
					   const gchar *type, GVariant *options,
					   GCancellable *cancellable, GError **error);

/* GetKeyInfo, returning a TkmsKeyInfo */
void tkms_client_lookup_key(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);
TkmsKeyInfo *tkms_client_lookup_key_finish(TkmsClient *self, GAsyncResult *result,
					   GError **error);
TkmsKeyInfo *tkms_client_lookup_key_sync(TkmsClient *self, const gchar *name,
					 GCancellable *cancellable, GError **error);

/* ListKeysPage / ListAllKeysPage: an array of TkmsKeyInfo and the next page's token ("" after
 * the last page); a NULL or empty @page_token starts. */
void tkms_client_list_keys_page(TkmsClient *self, const gchar *page_token, guint page_size,
				GCancellable *cancellable, GAsyncReadyCallback callback,
				gpointer user_data);
GPtrArray *tkms_client_list_keys_page_finish(TkmsClient *self, GAsyncResult *result,
					     gchar **out_next_page_token, GError **error);
GPtrArray *tkms_client_list_keys_page_sync(TkmsClient *self, const gchar *page_token,
					   guint page_size, gchar **out_next_page_token,
					   GCancellable *cancellable, GError **error);

void tkms_client_list_all_keys_page(TkmsClient *self, const gchar *page_token,
				    guint page_size, GCancellable *cancellable,
				    GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *tkms_client_list_all_keys_page_finish(TkmsClient *self, GAsyncResult *result,
						 gchar **out_next_page_token, GError **error);
GPtrArray *tkms_client_list_all_keys_page_sync(TkmsClient *self, const gchar *page_token,
					       guint page_size, gchar **out_next_page_token,
					       GCancellable *cancellable, GError **error);

/* Every page of ListKeysPage (or of ListAllKeysPage with @all_owners) in one array. */
void tkms_client_collect_keys(TkmsClient *self, gboolean all_owners, guint page_size,
			      GCancellable *cancellable, GAsyncReadyCallback callback,
			      gpointer user_data);
GPtrArray *tkms_client_collect_keys_finish(TkmsClient *self, GAsyncResult *result,
					   GError **error);
GPtrArray *tkms_client_collect_keys_sync(TkmsClient *self, gboolean all_owners,
					 guint page_size, GCancellable *cancellable,
					 GError **error);

/* Since 0.2: data keys for envelope encryption, rewrapping, and signatures of digests. */

/* GenerateDataKey: the data key (wiped when its last reference goes) and the same key
 * wrapped under the key's primary version (Encrypt's format, with @context). */
void tkms_client_generate_data_key(TkmsClient *self, const gchar *name, guint length,
				   GBytes *context, GCancellable *cancellable,
				   GAsyncReadyCallback callback, gpointer user_data);
gboolean tkms_client_generate_data_key_finish(TkmsClient *self, GAsyncResult *result,
					      GBytes **out_plaintext, GBytes **out_wrapped,
					      GError **error);
gboolean tkms_client_generate_data_key_sync(TkmsClient *self, const gchar *name, guint length,
					    GBytes *context, GBytes **out_plaintext,
					    GBytes **out_wrapped, GCancellable *cancellable,
					    GError **error);

void tkms_client_re_encrypt(TkmsClient *self, const gchar *name, GBytes *ciphertext,
			    GBytes *context, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);
GBytes *tkms_client_re_encrypt_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GBytes *tkms_client_re_encrypt_sync(TkmsClient *self, const gchar *name, GBytes *ciphertext,
				    GBytes *context, GCancellable *cancellable, GError **error);

/* @digest: SHA-256 of the message, 32 bytes */
void tkms_client_sign_digest(TkmsClient *self, const gchar *name, GBytes *digest,
			     GCancellable *cancellable, GAsyncReadyCallback callback,
			     gpointer user_data);
GBytes *tkms_client_sign_digest_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GBytes *tkms_client_sign_digest_sync(TkmsClient *self, const gchar *name, GBytes *digest,
				     GCancellable *cancellable, GError **error);

void tkms_client_verify_digest(TkmsClient *self, const gchar *name, GBytes *digest,
			       GBytes *signature, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
gboolean tkms_client_verify_digest_finish(TkmsClient *self, GAsyncResult *result,
					  gboolean *valid, GError **error);
gboolean tkms_client_verify_digest_sync(TkmsClient *self, const gchar *name, GBytes *digest,
					GBytes *signature, gboolean *valid,
					GCancellable *cancellable, GError **error);

/* Since 0.2: the life cycle of key versions (see the D-Bus reference for the states). */

/* RotateKey: the new version, now the primary; 0 on error. */
void tkms_client_rotate_key(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);
guint tkms_client_rotate_key_finish(TkmsClient *self, GAsyncResult *result, GError **error);
guint tkms_client_rotate_key_sync(TkmsClient *self, const gchar *name, GCancellable *cancellable,
				  GError **error);

void tkms_client_set_primary_version(TkmsClient *self, const gchar *name, guint version,
				     GCancellable *cancellable, GAsyncReadyCallback callback,
				     gpointer user_data);
gboolean tkms_client_set_primary_version_finish(TkmsClient *self, GAsyncResult *result,
						GError **error);
gboolean tkms_client_set_primary_version_sync(TkmsClient *self, const gchar *name,
					      guint version, GCancellable *cancellable,
					      GError **error);

/* @state: active, deactivated, suspended or compromised */
void tkms_client_set_key_version_state(TkmsClient *self, const gchar *name, guint version,
				       const gchar *state, GCancellable *cancellable,
				       GAsyncReadyCallback callback, gpointer user_data);
gboolean tkms_client_set_key_version_state_finish(TkmsClient *self, GAsyncResult *result,
						  GError **error);
gboolean tkms_client_set_key_version_state_sync(TkmsClient *self, const gchar *name,
						guint version, const gchar *state,
						GCancellable *cancellable, GError **error);

/* Replaces the policy; each 0 is "none", all four 0 remove the policy. */
void tkms_client_set_rotation_policy(TkmsClient *self, const gchar *name, guint64 period,
				     guint64 max_uses, guint64 deactivate_after,
				     guint64 destroy_after, GCancellable *cancellable,
				     GAsyncReadyCallback callback, gpointer user_data);
gboolean tkms_client_set_rotation_policy_finish(TkmsClient *self, GAsyncResult *result,
						GError **error);
gboolean tkms_client_set_rotation_policy_sync(TkmsClient *self, const gchar *name,
					      guint64 period, guint64 max_uses,
					      guint64 deactivate_after, guint64 destroy_after,
					      GCancellable *cancellable, GError **error);

/* Since 0.2: the policy as its a{sv} (see SetRotationPolicy), for members the call above
 * has no argument for, such as a password key's `hook`; an empty dictionary (or NULL)
 * removes the policy. */
void tkms_client_set_rotation_policy_full(TkmsClient *self, const gchar *name, GVariant *policy,
					  GCancellable *cancellable, GAsyncReadyCallback callback,
					  gpointer user_data);
gboolean tkms_client_set_rotation_policy_full_finish(TkmsClient *self, GAsyncResult *result,
						     GError **error);
gboolean tkms_client_set_rotation_policy_full_sync(TkmsClient *self, const gchar *name,
						   GVariant *policy, GCancellable *cancellable,
						   GError **error);

void tkms_client_destroy_key_version(TkmsClient *self, const gchar *name, guint version,
				     GCancellable *cancellable, GAsyncReadyCallback callback,
				     gpointer user_data);
gboolean tkms_client_destroy_key_version_finish(TkmsClient *self, GAsyncResult *result,
						GError **error);
gboolean tkms_client_destroy_key_version_sync(TkmsClient *self, const gchar *name,
					      guint version, GCancellable *cancellable,
					      GError **error);

/* @version: 0 for every destroy-scheduled version of the key */
void tkms_client_cancel_key_destruction(TkmsClient *self, const gchar *name, guint version,
					GCancellable *cancellable, GAsyncReadyCallback callback,
					gpointer user_data);
gboolean tkms_client_cancel_key_destruction_finish(TkmsClient *self, GAsyncResult *result,
						   GError **error);
gboolean tkms_client_cancel_key_destruction_sync(TkmsClient *self, const gchar *name,
						 guint version, GCancellable *cancellable,
						 GError **error);

/* Since 0.2: service passwords (`password` keys). */

/* ImportSecret: the new version, now the current one; 0 on error. */
void tkms_client_import_secret(TkmsClient *self, const gchar *name, GBytes *secret,
			       GCancellable *cancellable, GAsyncReadyCallback callback,
			       gpointer user_data);
guint tkms_client_import_secret_finish(TkmsClient *self, GAsyncResult *result, GError **error);
guint tkms_client_import_secret_sync(TkmsClient *self, const gchar *name, GBytes *secret,
				     GCancellable *cancellable, GError **error);

/* GetSecret: @stage "current" (also NULL or ""), "pending" or "previous"; the returned bytes
 * are wiped when their last reference goes. */
void tkms_client_get_secret(TkmsClient *self, const gchar *name, const gchar *stage,
			    GCancellable *cancellable, GAsyncReadyCallback callback,
			    gpointer user_data);
GBytes *tkms_client_get_secret_finish(TkmsClient *self, GAsyncResult *result, GError **error);
GBytes *tkms_client_get_secret_sync(TkmsClient *self, const gchar *name, const gchar *stage,
				    GCancellable *cancellable, GError **error);

/* Since 0.2: batches of 1 to 1024 items (GPtrArray of GBytes) in one call; one item that
 * fails fails the batch, its index leading the error's message ("item 17: ..."). Decrypted
 * plaintexts and MACs are wiped when their last reference goes. */
void tkms_client_encrypt_batch(TkmsClient *self, const gchar *name, GPtrArray *plaintexts,
			       GBytes *context, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *tkms_client_encrypt_batch_finish(TkmsClient *self, GAsyncResult *result,
					    GError **error);
GPtrArray *tkms_client_encrypt_batch_sync(TkmsClient *self, const gchar *name,
					  GPtrArray *plaintexts, GBytes *context,
					  GCancellable *cancellable, GError **error);
void tkms_client_decrypt_batch(TkmsClient *self, const gchar *name, GPtrArray *ciphertexts,
			       GBytes *context, GCancellable *cancellable,
			       GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *tkms_client_decrypt_batch_finish(TkmsClient *self, GAsyncResult *result,
					    GError **error);
GPtrArray *tkms_client_decrypt_batch_sync(TkmsClient *self, const gchar *name,
					  GPtrArray *ciphertexts, GBytes *context,
					  GCancellable *cancellable, GError **error);
void tkms_client_sign_batch(TkmsClient *self, const gchar *name, GPtrArray *messages,
			    GCancellable *cancellable, GAsyncReadyCallback callback,
			    gpointer user_data);
GPtrArray *tkms_client_sign_batch_finish(TkmsClient *self, GAsyncResult *result,
					 GError **error);
GPtrArray *tkms_client_sign_batch_sync(TkmsClient *self, const gchar *name, GPtrArray *messages,
				       GCancellable *cancellable, GError **error);
void tkms_client_hmac_batch(TkmsClient *self, const gchar *name, GPtrArray *messages,
			    GCancellable *cancellable, GAsyncReadyCallback callback,
			    gpointer user_data);
GPtrArray *tkms_client_hmac_batch_finish(TkmsClient *self, GAsyncResult *result,
					 GError **error);
GPtrArray *tkms_client_hmac_batch_sync(TkmsClient *self, const gchar *name, GPtrArray *messages,
				       GCancellable *cancellable, GError **error);

G_END_DECLS
