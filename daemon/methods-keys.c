/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-manager"

/* CreateKey, ListKeys, GetKeyInfo, DestroyKey, GetPublicKey. */

#include <string.h>

#include "crypto.h"
#include "manager-private.h"
#include "tkms-error.h"

#define DESCRIPTION_MAX 256
/* under the bus's 32 MiB message limit, with room for the header */
#define LIST_REPLY_MAX (16 * 1024 * 1024)

typedef struct {
	TkmsTpmCreate req;
	TkmsKey *key;
	gboolean reserved;
} CreateData;

static void
create_data_free(gpointer data)
{
	CreateData *d = data;
	tkms_tpm_blob_clear(&d->req.out);
	if (d->key != NULL)
		tkms_key_unref(d->key);
	g_free(d);
}

static void
release_reservation(TkmsCall *call)
{
	CreateData *d = call->data;
	if (d->reserved)
		tkms_keystore_release(call->manager->keystore, d->key->owner, d->key->name);
	d->reserved = FALSE;
}

static void
create_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	CreateData *d = call->data;
	GError *error = NULL;

	release_reservation(call);
	if (!tkms_keystore_save_finish(TKMS_KEYSTORE(source), res, &error)) {
		tkms_call_fail(call, error);
		return;
	}
	call->key_version = d->key->primary_version;
	tkms_call_return(call, g_variant_new("(@a{sv})", tkms_key_to_variant(d->key)));
}

static void
create_tpm_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	CreateData *d = call->data;
	GError *error = NULL;

	if (!tkms_tpm_finish(TKMS_TPM(source), res, &error)) {
		release_reservation(call);
		tkms_call_fail(call, error);
		return;
	}
	tkms_key_add_version(d->key, &d->req.out);
	tkms_keystore_save(call->manager->keystore, d->key, NULL, create_saved_cb, call);
}

static gboolean
check_options(TkmsCall *call, GVariant *options, TkmsKeyType type, const gchar **description)
{
	GVariantIter iter;
	const gchar *opt;
	GVariant *value;

	g_variant_iter_init(&iter, options);
	while (g_variant_iter_loop(&iter, "{&sv}", &opt, &value)) {
		if (g_str_equal(opt, "protection")) {
			if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING) ||
			    !g_str_equal(g_variant_get_string(value, NULL),
					 tkms_key_type_protection(type))) {
				tkms_call_fail(call,
					       g_error_new(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
							   "%s keys have protection \"%s\"; omit "
							   "the option or pass that value",
							   tkms_key_type_to_string(type),
							   tkms_key_type_protection(type)));
				g_variant_unref(value);
				return FALSE;
			}
		} else if (g_str_equal(opt, "description")) {
			if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING) ||
			    strlen(g_variant_get_string(value, NULL)) > DESCRIPTION_MAX) {
				tkms_call_fail_literal(call, TKMS_ERROR_INVALID_ARGUMENT,
						       "The description must be a string of at "
						       "most 256 bytes");
				g_variant_unref(value);
				return FALSE;
			}
			*description = g_variant_get_string(value, NULL);
		} else if (!g_str_equal(opt, "pcrs")) {
			tkms_call_fail(call, g_error_new(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
							 "Unknown option \"%s\"; known options "
							 "are protection, pcrs and description",
							 opt));
			g_variant_unref(value);
			return FALSE;
		}
	}
	return TRUE;
}

void
tkms_method_create_key(TkmsCall *call)
{
	const gchar *name, *type_str, *description = NULL;
	g_autoptr(GVariant) options = NULL;
	GError *error = NULL;
	TkmsKeyType type;
	TkmsPcrMask pcrs;
	CreateData *d;

	g_variant_get(call->params, "(&s&s@a{sv})", NULL, &type_str, &options);
	name = call->target_name;
	if (!tkms_call_check_new_name(call))
		return;
	if (!tkms_key_type_from_string(type_str, &type)) {
		tkms_call_fail_literal(call, TKMS_ERROR_INVALID_ARGUMENT,
				       "Unknown key type; use aes-256-gcm, hmac-sha256, "
				       "ecdsa-p256 or rsa-2048");
		return;
	}
	if (!check_options(call, options, type, &description) ||
	    !tkms_call_parse_pcrs(call, options, &pcrs))
		return;
	if (!tkms_keystore_reserve(call->manager->keystore, call->target_owner, name,
				   call->manager->config.max_keys_per_user, &error)) {
		tkms_call_fail(call, error);
		return;
	}
	d = g_new0(CreateData, 1);
	d->reserved = TRUE;
	d->key = tkms_key_new(call->target_owner, name, type);
	d->key->pcrs = pcrs;
	d->key->description = g_strdup(description);
	d->req.kind = tkms_key_type_object_kind(type);
	d->req.pcrs = pcrs;
	d->req.seal_size = TKMS_AES_KEY_LEN;
	tkms_call_set_data(call, d, create_data_free);
	tkms_tpm_create(call->manager->tpm, call->caller->uid, &d->req, NULL, create_tpm_cb, call);
}

static void
return_key_list(TkmsCall *call, guint32 owner)
{
	GError *error = NULL;
	g_autoptr(GPtrArray) keys =
		tkms_keystore_list(call->manager->keystore, owner, 0, NULL, G_MAXUINT, &error);
	GVariantBuilder b;
	gsize size = 0;

	if (keys == NULL) {
		tkms_call_fail(call, error);
		return;
	}
	g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; i < keys->len; i++) {
		GVariant *info = tkms_key_to_variant(g_ptr_array_index(keys, i));
		size += g_variant_get_size(info) + 8;
		g_variant_builder_add_value(&b, info);
		if (size > LIST_REPLY_MAX) {
			g_variant_builder_clear(&b);
			tkms_call_fail(call, g_error_new(TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED,
							 "The list is too long for one reply; "
							 "use %s to read it a page at a time",
							 owner == TKMS_KEYSTORE_ALL_OWNERS
								 ? "ListAllKeysPage"
								 : "ListKeysPage"));
			return;
		}
	}
	tkms_call_return(call, g_variant_new("(aa{sv})", &b));
}

void
tkms_method_list_keys(TkmsCall *call)
{
	return_key_list(call, call->caller->uid);
}

void
tkms_method_list_all_keys(TkmsCall *call)
{
	return_key_list(call, TKMS_KEYSTORE_ALL_OWNERS);
}

/* A page token is the position of the last key handed out, "OWNER/NAME", in base64 so that
 * callers treat it as opaque. */
static gchar *
page_token_new(TkmsKey *last)
{
	g_autofree gchar *pos = g_strdup_printf("%u/%s", last->owner, last->name);
	return g_base64_encode((const guchar *)pos, strlen(pos));
}

static gboolean
page_token_parse(const gchar *token, guint32 *owner, gchar **name)
{
	g_autofree guchar *raw = NULL;
	g_autofree gchar *pos = NULL;
	gsize len = 0;
	const gchar *slash;
	guint64 uid;

	if (strlen(token) > 4 * (TKMS_KEY_NAME_MAX + 12) / 3 + 4)
		return FALSE;
	raw = g_base64_decode(token, &len);
	if (raw == NULL || len == 0)
		return FALSE;
	pos = g_strndup((const gchar *)raw, len);
	if (strlen(pos) != len || (slash = strchr(pos, '/')) == NULL)
		return FALSE;
	pos[slash - pos] = '\0';
	if (!g_ascii_string_to_unsigned(pos, 10, 0, G_MAXUINT32 - 1, &uid, NULL) ||
	    !tkms_key_name_is_valid(slash + 1))
		return FALSE;
	*owner = uid;
	*name = g_strdup(slash + 1);
	return TRUE;
}

#define PAGE_SIZE_DEFAULT 100
#define PAGE_SIZE_MAX 1000

static void
return_key_page(TkmsCall *call, guint32 owner)
{
	const gchar *token;
	guint32 size, after_owner = 0;
	g_autofree gchar *after_name = NULL;
	g_autofree gchar *next = NULL;
	g_autoptr(GPtrArray) keys = NULL;
	GError *error = NULL;
	GVariantBuilder b;

	g_variant_get(call->params, "(&su)", &token, &size);
	if (size > PAGE_SIZE_MAX) {
		tkms_call_fail_literal(call, TKMS_ERROR_INVALID_ARGUMENT,
				       "The page size is at most 1000; pass 0 for the default");
		return;
	}
	if (size == 0)
		size = PAGE_SIZE_DEFAULT;
	if (*token != '\0' && !page_token_parse(token, &after_owner, &after_name)) {
		tkms_call_fail_literal(call, TKMS_ERROR_INVALID_ARGUMENT,
				       "This page token was not handed out by tkmsd; start again "
				       "with an empty token");
		return;
	}
	/* one more than asked tells whether another page follows */
	keys = tkms_keystore_list(call->manager->keystore, owner, after_owner, after_name,
				  size + 1, &error);
	if (keys == NULL) {
		tkms_call_fail(call, error);
		return;
	}
	if (keys->len > size) {
		g_ptr_array_set_size(keys, size);
		next = page_token_new(g_ptr_array_index(keys, size - 1));
	}
	g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; i < keys->len; i++)
		g_variant_builder_add_value(&b, tkms_key_to_variant(g_ptr_array_index(keys, i)));
	tkms_call_return(call, g_variant_new("(aa{sv}s)", &b, next ? next : ""));
}

void
tkms_method_list_keys_page(TkmsCall *call)
{
	return_key_page(call, call->caller->uid);
}

void
tkms_method_list_all_keys_page(TkmsCall *call)
{
	return_key_page(call, TKMS_KEYSTORE_ALL_OWNERS);
}

void
tkms_method_get_key_info(TkmsCall *call)
{
	TkmsKey *key;

	key = tkms_call_lookup_key(call);
	if (key == NULL)
		return;
	tkms_call_return(call, g_variant_new("(@a{sv})", tkms_key_to_variant(key)));
}

static void
destroy_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	GError *error = NULL;

	if (!tkms_keystore_save_finish(TKMS_KEYSTORE(source), res, &error)) {
		tkms_call_fail(call, error);
		return;
	}
	tkms_call_return(call, NULL);
}

void
tkms_method_destroy_key(TkmsCall *call)
{
	TkmsKey *key;

	key = tkms_call_lookup_key(call);
	if (key == NULL)
		return;
	/* the blobs go; the metadata stays so that the name is never reused */
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		g_free(v->state);
		v->state = g_strdup("destroyed");
		tkms_tpm_blob_clear(&v->blob);
	}
	tkms_key_cache_remove_key(call->manager->keycache, key->owner, key->name);
	tkms_keystore_save(call->manager->keystore, key, NULL, destroy_saved_cb, call);
}

void
tkms_method_get_public_key(TkmsCall *call)
{
	TkmsKey *key;
	TkmsKeyVersion *v;
	GError *error = NULL;
	g_autofree gchar *pem = NULL;

	key = tkms_call_lookup_key(call);
	if (key == NULL)
		return;
	if (key->type != TKMS_KEY_TYPE_ECDSA_P256 && key->type != TKMS_KEY_TYPE_RSA_2048) {
		tkms_call_fail(call, g_error_new(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
						 "Key \"%s\" is a %s key and has no public key; "
						 "use an ecdsa-p256 or rsa-2048 key",
						 key->name, tkms_key_type_to_string(key->type)));
		return;
	}
	v = tkms_call_primary_version(call, key);
	if (v == NULL)
		return;
	pem = tkms_crypto_public_pem(v->blob.public, &error);
	if (pem == NULL) {
		tkms_call_fail(call, error);
		return;
	}
	tkms_call_return(call, g_variant_new("(s)", pem));
}
