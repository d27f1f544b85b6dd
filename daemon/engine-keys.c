/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-engine"

/* CreateKey, GetKeyInfo, ListKeys (whole and paged), GetPublicKey; the changes of a key's
 * life are in engine-lifecycle.c. */

#include <string.h>

#include "crypto.h"
#include "engine-private.h"

#define DESCRIPTION_MAX 256
/* under the bus's 32 MiB message limit, with room for the header */
#define LIST_REPLY_MAX (16 * 1024 * 1024)
#define PAGE_SIZE_DEFAULT 100
#define PAGE_SIZE_MAX 1000
/* keys read from the store at a time for ListKeys / ListAllKeys */
#define LIST_CHUNK 1000

G_STATIC_ASSERT(TKMS_ENGINE_ALL_OWNERS == TKMS_KEYSTORE_ALL_OWNERS);

/* ---- create ---- */

typedef struct {
	TkmsTpmCreate req;
	TkmsKey *key;
	gboolean reserved;
	gint64 activate_at;
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
release_reservation(TkmsEngineOp *op)
{
	CreateData *d = op->data;
	if (d->reserved)
		tkms_keystore_release(op->engine->keystore, d->key->owner, d->key->name);
	d->reserved = FALSE;
}

static void
create_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	CreateData *d = op->data;
	GError *error = NULL;

	release_reservation(op);
	if (!tkms_keystore_save_finish(TKMS_KEYSTORE(source), res, &error)) {
		tkms_engine_op_fail(op, error);
		return;
	}
	tkms_engine_op_return_key(op, d->key);
}

static void
create_tpm_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	CreateData *d = op->data;
	GError *error = NULL;
	gboolean ok = d->key->type == TKMS_KEY_TYPE_PASSWORD
			      ? tkms_engine_password_seal_finish(TKMS_ENGINE(source), res,
								 &d->req.out, &error)
			      : tkms_tpm_finish(TKMS_TPM(source), res, &error);

	if (!ok) {
		release_reservation(op);
		tkms_engine_op_fail(op, error);
		return;
	}
	tkms_key_add_version(d->key, &d->req.out, g_get_real_time() / G_USEC_PER_SEC,
			     d->activate_at);
	op->version = d->key->primary_version;
	tkms_engine_op_save(op, d->key, create_saved_cb);
}

static gboolean
check_create(const TkmsKeyRef *key, const gchar *type_str, const TkmsKeyOptions *options,
	     TkmsKeyType *type, TkmsPasswordSpec *spec, GError **error)
{
	if (!tkms_key_name_is_valid(key->name)) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "Invalid key name; use 1-64 characters from A-Z a-z 0-9 . _ - "
				    "not starting with a dot (or OWNER:NAME)");
		return FALSE;
	}
	if (!tkms_key_type_from_string(type_str, type)) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "Unknown key type; use aes-256-gcm, hmac-sha256, ecdsa-p256, "
				    "rsa-2048 or password");
		return FALSE;
	}
	if (options->protection != NULL &&
	    !g_str_equal(options->protection, tkms_key_type_protection(*type))) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "%s keys have protection \"%s\"; omit the option or pass that value",
			    tkms_key_type_to_string(*type), tkms_key_type_protection(*type));
		return FALSE;
	}
	if (options->description != NULL && strlen(options->description) > DESCRIPTION_MAX) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "The description must be a string of at most 256 bytes");
		return FALSE;
	}
	if (*type != TKMS_KEY_TYPE_PASSWORD) {
		if (options->has_length || options->charset != NULL || options->exclude != NULL) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "The length, charset and exclude options are for password "
				    "keys; omit them for %s keys",
				    tkms_key_type_to_string(*type));
			return FALSE;
		}
		return TRUE;
	}
	/* a service needs its password from the start: a first version that waits would
	 * leave GetSecret nothing to reveal */
	if (options->activate_at != 0) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "Password keys have no activate-at; omit the option");
		return FALSE;
	}
	return tkms_engine_password_spec(options, spec, error);
}

void
tkms_engine_create_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
		       const gchar *type_str, const TkmsKeyOptions *options,
		       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op =
		tkms_engine_op_new(self, "CreateKey", actor, key, cancellable, callback, user_data);
	GError *error = NULL;
	TkmsPasswordSpec spec;
	TkmsKeyType type;
	CreateData *d;

	op->lifecycle = TRUE;
	if (!check_create(key, type_str, options, &type, &spec, &error) ||
	    !tkms_engine_check_pcrs(self, options->pcrs, &error) ||
	    !tkms_keystore_reserve(self->keystore, key->owner, key->name,
				   self->config.max_keys_per_user, &error)) {
		tkms_engine_op_fail(op, error);
		return;
	}
	d = g_new0(CreateData, 1);
	d->reserved = TRUE;
	d->key = tkms_key_new(key->owner, key->name, type);
	d->key->pcrs = options->pcrs;
	d->key->description = g_strdup(options->description);
	d->activate_at = options->activate_at;
	tkms_engine_op_set_data(op, d, create_data_free);
	if (type == TKMS_KEY_TYPE_PASSWORD) {
		d->key->password = spec;
		/* not cancellable: a version the TPM made is saved even if its caller has gone */
		tkms_engine_password_generate(self, actor->uid, d->key, 1, NULL, create_tpm_cb, op);
		return;
	}
	d->req.kind = tkms_key_type_object_kind(type);
	d->req.pcrs = options->pcrs;
	d->req.seal_size = TKMS_AES_KEY_LEN;
	/* bound to owner, name and its version, the first (datakeys, issue 7) */
	d->req.bind = TRUE;
	tkms_tpm_key_id_set(&d->req.key_id, key->owner, key->name, 1);
	/* not cancellable: a key the TPM made is saved even if its caller has gone */
	tkms_tpm_create(self->tpm, actor->uid, &d->req, NULL, create_tpm_cb, op);
}

TkmsKey *
tkms_engine_create_key_finish(TkmsEngine *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- read ---- */

TkmsKey *
tkms_engine_get_key_info(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			 GError **error)
{
	GError *local = NULL;
	g_autoptr(TkmsKey) k = tkms_engine_lookup_key(self, actor, key, &local);

	if (!tkms_engine_finish_sync(self, actor, "GetKeyInfo", key, 0, local, error))
		return NULL;
	tkms_engine_usage_patch(self, k);
	return g_steal_pointer(&k);
}

static const gchar *
list_name(guint32 owner)
{
	return owner == TKMS_KEYSTORE_ALL_OWNERS ? "ListAllKeys" : "ListKeys";
}

/* The whole list in one reply, read LIST_CHUNK keys at a time, each key serialized at once: a
 * store past the limit is refused after reading about the limit's worth of keys, not all of
 * them (with 100,000 keys, reading them all took tkmsd's RSS from 13 to 294 MiB), and a reply
 * near the limit does not hold a variant tree of several KiB for each of its keys, only their
 * 560 or so bytes serialized. */
static GVariant *
key_list(TkmsEngine *self, guint32 owner, GError **error)
{
	g_autofree gchar *after_name = NULL;
	guint32 after_owner = 0;
	GVariantBuilder b;
	gsize size = 0;

	g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
	for (;;) {
		g_autoptr(GPtrArray) keys = tkms_keystore_list(self->keystore, owner, after_owner,
							       after_name, LIST_CHUNK, error);
		TkmsKey *last;

		if (keys == NULL) {
			g_variant_builder_clear(&b);
			return NULL;
		}
		for (guint i = 0; i < keys->len; i++) {
			GVariant *info;

			tkms_engine_usage_patch(self, g_ptr_array_index(keys, i));
			info = g_variant_ref_sink(tkms_key_to_variant(g_ptr_array_index(keys, i)));

			/* serialized now, its tree of children freed */
			(void)g_variant_get_data(info);
			/* D-Bus framing pads what GVariant packs (measured: 600 bytes on the wire
			 * for 559 here): count an eighth more, so no reply passes 16 MiB */
			size += g_variant_get_size(info) * 9 / 8 + 8;
			g_variant_builder_add_value(&b, info);
			g_variant_unref(info);
			if (size > LIST_REPLY_MAX) {
				g_variant_builder_clear(&b);
				g_set_error(error, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED,
					    "The list is too long for one reply; use %sPage to "
					    "read it a page at a time",
					    list_name(owner));
				return NULL;
			}
		}
		if (keys->len < LIST_CHUNK)
			break;
		last = g_ptr_array_index(keys, keys->len - 1);
		after_owner = last->owner;
		g_free(after_name);
		after_name = g_strdup(last->name);
	}
	return g_variant_ref_sink(g_variant_builder_end(&b));
}

GVariant *
tkms_engine_list_keys(TkmsEngine *self, const TkmsActor *actor, guint32 owner, GError **error)
{
	GError *local = NULL;
	g_autoptr(GVariant) list = key_list(self, owner, &local);

	if (!tkms_engine_finish_sync(self, actor, list_name(owner), NULL, 0, local, error))
		return NULL;
	return g_steal_pointer(&list);
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

static GVariant *
key_page(TkmsEngine *self, guint32 owner, const gchar *token, guint size, gchar **next,
	 GError **error)
{
	guint32 after_owner = 0;
	g_autofree gchar *after_name = NULL;
	g_autoptr(GPtrArray) keys = NULL;
	GVariantBuilder b;

	if (size > PAGE_SIZE_MAX) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "The page size is at most 1000; pass 0 for the default");
		return NULL;
	}
	if (size == 0)
		size = PAGE_SIZE_DEFAULT;
	if (*token != '\0' && !page_token_parse(token, &after_owner, &after_name)) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "This page token was not handed out by tkmsd; start again "
				    "with an empty token");
		return NULL;
	}
	/* one more than asked tells whether another page follows */
	keys = tkms_keystore_list(self->keystore, owner, after_owner, after_name, size + 1,
				  error);
	if (keys == NULL)
		return NULL;
	if (keys->len > size) {
		g_ptr_array_set_size(keys, size);
		*next = page_token_new(g_ptr_array_index(keys, size - 1));
	} else {
		*next = g_strdup("");
	}
	g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; i < keys->len; i++) {
		tkms_engine_usage_patch(self, g_ptr_array_index(keys, i));
		g_variant_builder_add_value(&b, tkms_key_to_variant(g_ptr_array_index(keys, i)));
	}
	return g_variant_ref_sink(g_variant_builder_end(&b));
}

GVariant *
tkms_engine_list_keys_page(TkmsEngine *self, const TkmsActor *actor, guint32 owner,
			   const gchar *page_token, guint page_size, gchar **next_page_token,
			   GError **error)
{
	GError *local = NULL;
	g_autofree gchar *next = NULL;
	g_autoptr(GVariant) page = key_page(self, owner, page_token, page_size, &next, &local);
	g_autofree gchar *name = g_strconcat(list_name(owner), "Page", NULL);

	if (!tkms_engine_finish_sync(self, actor, name, NULL, 0, local, error))
		return NULL;
	*next_page_token = g_steal_pointer(&next);
	return g_steal_pointer(&page);
}

static gchar *
public_pem(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref, guint32 *version,
	   GError **error)
{
	g_autoptr(TkmsKey) key = tkms_engine_lookup_key(self, actor, ref, error);
	TkmsKeyVersion *v;

	if (key == NULL)
		return NULL;
	if (key->type == TKMS_KEY_TYPE_PASSWORD) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "Key \"%s\" is a password key and has no public key; use GetSecret to "
			    "read it",
			    key->name);
		return NULL;
	}
	if (key->type != TKMS_KEY_TYPE_ECDSA_P256 && key->type != TKMS_KEY_TYPE_RSA_2048) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "Key \"%s\" is a %s key and has no public key; use an ecdsa-p256 or "
			    "rsa-2048 key",
			    key->name, tkms_key_type_to_string(key->type));
		return NULL;
	}
	v = tkms_key_get_version(key, key->primary_version);
	if (v == NULL || g_strcmp0(v->state, "active") != 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_KEY_STATE,
			    "Key \"%s\" has no active version (it is %s); create a new key",
			    key->name, v ? v->state : "empty");
		return NULL;
	}
	*version = v->version;
	return tkms_crypto_public_pem(v->blob.public, error);
}

gchar *
tkms_engine_get_public_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			   GError **error)
{
	GError *local = NULL;
	guint32 version = 0;
	g_autofree gchar *pem = public_pem(self, actor, key, &version, &local);

	if (!tkms_engine_finish_sync(self, actor, "GetPublicKey", key, version, local, error))
		return NULL;
	return g_steal_pointer(&pem);
}
