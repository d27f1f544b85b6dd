/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-keystore"

/* Key metadata on disk: one JSON document per key, STATE/keys/<uid>/<name>.json, holding
 * only TPM blobs (wrapped by this TPM's storage root key), never key material. */

#include "keystore.h"
#include "key.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "tkms-error.h"

struct _TkmsKeystore {
	GObject parent_instance;
	gchar *keys_dir;
	GHashTable *keys;     /* "uid/name" -> TkmsKey */
	GHashTable *reserved; /* "uid/name" */
};

G_DEFINE_TYPE(TkmsKeystore, tkms_keystore, G_TYPE_OBJECT)

/* ---- JSON ---- */

static gchar *
b64(GBytes *bytes)
{
	gsize len = 0;
	const guint8 *p = bytes ? g_bytes_get_data(bytes, &len) : NULL;
	return p ? g_base64_encode(p, len) : g_strdup("");
}

static gchar *
key_to_json(TkmsKey *key)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "format");
	json_builder_add_int_value(b, 1);
	json_builder_set_member_name(b, "name");
	json_builder_add_string_value(b, key->name);
	json_builder_set_member_name(b, "owner");
	json_builder_add_int_value(b, key->owner);
	json_builder_set_member_name(b, "type");
	json_builder_add_string_value(b, tkms_key_type_to_string(key->type));
	json_builder_set_member_name(b, "created");
	json_builder_add_int_value(b, key->created);
	json_builder_set_member_name(b, "description");
	json_builder_add_string_value(b, key->description ? key->description : "");
	json_builder_set_member_name(b, "pcrs");
	json_builder_add_int_value(b, key->pcrs);
	json_builder_set_member_name(b, "primary-version");
	json_builder_add_int_value(b, key->primary_version);
	json_builder_set_member_name(b, "versions");
	json_builder_begin_array(b);
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		g_autofree gchar *pub = b64(v->blob.public);
		g_autofree gchar *priv = b64(v->blob.private);
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "version");
		json_builder_add_int_value(b, v->version);
		json_builder_set_member_name(b, "state");
		json_builder_add_string_value(b, v->state);
		json_builder_set_member_name(b, "created");
		json_builder_add_int_value(b, v->created);
		json_builder_set_member_name(b, "tpm-public");
		json_builder_add_string_value(b, pub);
		json_builder_set_member_name(b, "tpm-private");
		json_builder_add_string_value(b, priv);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	json_generator_set_pretty(gen, TRUE);
	return json_generator_to_data(gen, NULL);
}

static GBytes *
unb64(JsonObject *obj, const gchar *member)
{
	const gchar *s = json_object_get_string_member_with_default(obj, member, "");
	gsize len = 0;
	guchar *data;
	if (*s == '\0')
		return NULL;
	data = g_base64_decode(s, &len);
	return g_bytes_new_take(data, len);
}

static TkmsKey *
key_from_json(const gchar *path, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(TkmsKey) key = NULL;
	JsonObject *obj;
	JsonArray *versions;
	TkmsKeyType type;
	const gchar *name;

	if (!json_parser_load_from_file(parser, path, error))
		return NULL;
	if (!JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
		goto bad;
	obj = json_node_get_object(json_parser_get_root(parser));
	name = json_object_get_string_member_with_default(obj, "name", "");
	if (!tkms_key_name_is_valid(name) ||
	    !tkms_key_type_from_string(
		    json_object_get_string_member_with_default(obj, "type", ""), &type) ||
	    !json_object_has_member(obj, "versions"))
		goto bad;
	key = tkms_key_new(json_object_get_int_member_with_default(obj, "owner", -1), name, type);
	key->created = json_object_get_int_member_with_default(obj, "created", 0);
	key->description =
		g_strdup(json_object_get_string_member_with_default(obj, "description", ""));
	key->pcrs = json_object_get_int_member_with_default(obj, "pcrs", 0);
	key->primary_version = json_object_get_int_member_with_default(obj, "primary-version", 0);
	versions = json_object_get_array_member(obj, "versions");
	for (guint i = 0; versions != NULL && i < json_array_get_length(versions); i++) {
		JsonObject *vo = json_array_get_object_element(versions, i);
		TkmsKeyVersion *v = g_new0(TkmsKeyVersion, 1);
		if (vo == NULL) {
			g_free(v);
			goto bad;
		}
		v->version = json_object_get_int_member_with_default(vo, "version", 0);
		v->state = g_strdup(json_object_get_string_member_with_default(vo, "state", ""));
		v->created = json_object_get_int_member_with_default(vo, "created", 0);
		v->blob.public = unb64(vo, "tpm-public");
		v->blob.private = unb64(vo, "tpm-private");
		g_ptr_array_add(key->versions, v);
	}
	return g_steal_pointer(&key);
bad:
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "%s is not a valid tkms key document",
		    path);
	return NULL;
}

static gchar *
table_key(guint32 owner, const gchar *name)
{
	return g_strdup_printf("%u/%s", owner, name);
}

static gboolean
load_all(TkmsKeystore *self, GError **error)
{
	g_autoptr(GDir) dir = g_dir_open(self->keys_dir, 0, error);
	const gchar *uid_name;

	if (dir == NULL)
		return FALSE;
	while ((uid_name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *udir_path = g_build_filename(self->keys_dir, uid_name, NULL);
		g_autoptr(GDir) udir = g_dir_open(udir_path, 0, NULL);
		const gchar *file;
		while (udir != NULL && (file = g_dir_read_name(udir)) != NULL) {
			g_autofree gchar *path = NULL;
			g_autoptr(GError) local = NULL;
			TkmsKey *key;
			if (!g_str_has_suffix(file, ".json"))
				continue; /* e.g. a temp file left by a crash mid-write */
			path = g_build_filename(udir_path, file, NULL);
			key = key_from_json(path, &local);
			if (key == NULL) {
				g_warning("skipping %s: %s", path, local->message);
				continue;
			}
			g_hash_table_insert(self->keys, table_key(key->owner, key->name), key);
		}
	}
	return TRUE;
}

TkmsKeystore *
tkms_keystore_new(const gchar *state_dir, GError **error)
{
	g_autoptr(TkmsKeystore) self = g_object_new(TKMS_TYPE_KEYSTORE, NULL);
	self->keys_dir = g_build_filename(state_dir, "keys", NULL);
	if (g_mkdir_with_parents(self->keys_dir, 0700) != 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot create %s: %s",
			    self->keys_dir, g_strerror(errno));
		return NULL;
	}
	if (!load_all(self, error))
		return NULL;
	return g_steal_pointer(&self);
}

TkmsKey *
tkms_keystore_lookup(TkmsKeystore *self, guint32 owner, const gchar *name, GError **error)
{
	g_autofree gchar *k = table_key(owner, name);
	TkmsKey *key = g_hash_table_lookup(self->keys, k);
	if (key == NULL) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND, "There is no key named \"%s\"",
			    name);
		return NULL;
	}
	return tkms_key_ref(key);
}

static gint
key_cmp(gconstpointer a, gconstpointer b)
{
	const TkmsKey *ka = *(TkmsKey **)a, *kb = *(TkmsKey **)b;
	if (ka->owner != kb->owner)
		return ka->owner < kb->owner ? -1 : 1;
	return strcmp(ka->name, kb->name);
}

GPtrArray *
tkms_keystore_list(TkmsKeystore *self, guint32 owner, guint32 after_owner,
		   const gchar *after_name, guint limit, GError **error)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)tkms_key_unref);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->keys);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		TkmsKey *key = value;
		if (owner == TKMS_KEYSTORE_ALL_OWNERS || key->owner == owner)
			g_ptr_array_add(out, tkms_key_ref(key));
	}
	g_ptr_array_sort(out, key_cmp);
	if (after_name != NULL) {
		guint skip = 0;
		while (skip < out->len) {
			TkmsKey *key = g_ptr_array_index(out, skip);
			if (key->owner > after_owner ||
			    (key->owner == after_owner && strcmp(key->name, after_name) > 0))
				break;
			skip++;
		}
		g_ptr_array_remove_range(out, 0, skip);
	}
	if (out->len > limit)
		g_ptr_array_set_size(out, limit);
	return out;
}

gboolean
tkms_keystore_has_owner(TkmsKeystore *self, guint32 owner)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->keys);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		if (((TkmsKey *)value)->owner == owner)
			return TRUE;
	return FALSE;
}

gboolean
tkms_keystore_reserve(TkmsKeystore *self, guint32 owner, const gchar *name, guint max_keys,
		      GError **error)
{
	g_autofree gchar *k = table_key(owner, name);
	GHashTableIter iter;
	gpointer value;
	guint count = 0;

	if (g_hash_table_contains(self->keys, k) || g_hash_table_contains(self->reserved, k)) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_ALREADY_EXISTS,
			    "A key named \"%s\" exists (or existed: names are never reused); "
			    "choose another name",
			    name);
		return FALSE;
	}
	g_hash_table_iter_init(&iter, self->keys);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		TkmsKey *key = value;
		TkmsKeyVersion *v = tkms_key_get_version(key, key->primary_version);
		if (key->owner == owner && !(v != NULL && g_str_equal(v->state, "destroyed")))
			count++;
	}
	if (max_keys > 0 && count >= max_keys) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED,
			    "You have %u keys, the most allowed; destroy keys you no longer need "
			    "or ask an administrator to raise MaxKeysPerUser",
			    count);
		return FALSE;
	}
	g_hash_table_add(self->reserved, g_steal_pointer(&k));
	return TRUE;
}

void
tkms_keystore_release(TkmsKeystore *self, guint32 owner, const gchar *name)
{
	g_autofree gchar *k = table_key(owner, name);
	g_hash_table_remove(self->reserved, k);
}

typedef struct {
	gchar *dir;
	gchar *path;
	gchar *json;
	TkmsKey *key;
} SaveData;

static void
save_data_free(SaveData *d)
{
	g_free(d->dir);
	g_free(d->path);
	g_free(d->json);
	tkms_key_unref(d->key);
	g_free(d);
}

static void
save_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	SaveData *d = data;
	GError *error = NULL;

	if (g_mkdir_with_parents(d->dir, 0700) != 0) {
		g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED,
					"Cannot create %s: %s", d->dir, g_strerror(errno));
		return;
	}
	/* CONSISTENT|DURABLE: a crash leaves the old or the new document, never a torn one */
	if (!g_file_set_contents_full(d->path, d->json, -1,
				      G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
				      0600, &error)) {
		g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED,
					"Cannot save the key: %s; check the state directory",
					error->message);
		g_error_free(error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

void
tkms_keystore_save(TkmsKeystore *self, TkmsKey *key, GCancellable *cancellable,
		   GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	SaveData *d = g_new0(SaveData, 1);
	g_autofree gchar *uid = g_strdup_printf("%u", key->owner);
	g_autofree gchar *file = g_strconcat(key->name, ".json", NULL);

	d->dir = g_build_filename(self->keys_dir, uid, NULL);
	d->path = g_build_filename(d->dir, file, NULL);
	d->json = key_to_json(key);
	d->key = tkms_key_ref(key);
	g_task_set_task_data(task, d, (GDestroyNotify)save_data_free);
	g_task_run_in_thread(task, save_thread);
}

gboolean
tkms_keystore_save_finish(TkmsKeystore *self, GAsyncResult *result, GError **error)
{
	SaveData *d = g_task_get_task_data(G_TASK(result));
	if (!g_task_propagate_boolean(G_TASK(result), error))
		return FALSE;
	g_hash_table_replace(self->keys, table_key(d->key->owner, d->key->name),
			     tkms_key_ref(d->key));
	return TRUE;
}

static void
tkms_keystore_finalize(GObject *object)
{
	TkmsKeystore *self = TKMS_KEYSTORE(object);
	g_hash_table_unref(self->keys);
	g_hash_table_unref(self->reserved);
	g_free(self->keys_dir);
	G_OBJECT_CLASS(tkms_keystore_parent_class)->finalize(object);
}

static void
tkms_keystore_class_init(TkmsKeystoreClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = tkms_keystore_finalize;
}

static void
tkms_keystore_init(TkmsKeystore *self)
{
	self->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					   (GDestroyNotify)tkms_key_unref);
	self->reserved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}
