/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-keystore"

/* Reads the JSON key store that tkms used before SQLite, for its one-time import. Strict:
 * whatever is not exactly what the old tkmsd wrote stops the import, so that no key is
 * silently dropped or altered on the way. */

#include "keystore-import.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "tkms-error.h"

#define FORMAT_VERSION 1

static const gchar *const version_states[] = {
	"pre-active", "active",		   "deactivated", "suspended",
	"compromised", "destroy-scheduled", "destroyed",   NULL,
};

static gboolean
get_int(JsonObject *obj, const gchar *member, gint64 min, gint64 max, gint64 *out)
{
	JsonNode *node = json_object_get_member(obj, member);

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_INT64)
		return FALSE;
	*out = json_node_get_int(node);
	return *out >= min && *out <= max;
}

static const gchar *
get_string(JsonObject *obj, const gchar *member)
{
	JsonNode *node = json_object_get_member(obj, member);

	if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
	    json_node_get_value_type(node) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(node);
}

/* Strict base64: g_base64_decode() skips what it does not know. Empty is no blob. */
static gboolean
get_blob(JsonObject *obj, const gchar *member, GBytes **out)
{
	const gchar *s = get_string(obj, member);
	gsize len, n = 0;
	guchar *data;

	*out = NULL;
	if (s == NULL)
		return FALSE;
	len = strlen(s);
	if (len == 0)
		return TRUE;
	if (len % 4 != 0 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789+/=") != len ||
	    (strchr(s, '=') != NULL && strspn(strchr(s, '='), "=") != strlen(strchr(s, '='))))
		return FALSE;
	data = g_base64_decode(s, &n);
	if (n == 0) {
		g_free(data);
		return FALSE;
	}
	*out = g_bytes_new_take(data, n);
	return TRUE;
}

static TkmsKey *
key_from_json(const gchar *path, guint32 uid, const gchar *file_name, const gchar **what,
	      GError **read_error)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(TkmsKey) key = NULL;
	JsonObject *obj;
	JsonNode *vnode;
	JsonArray *versions;
	TkmsKeyType type;
	const gchar *name, *s;
	gint64 n;

	*what = "it cannot be read as JSON";
	if (!json_parser_load_from_file(parser, path, read_error))
		return NULL;
	*what = "it is not a JSON object";
	if (!JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
		return NULL;
	obj = json_node_get_object(json_parser_get_root(parser));
	*what = "its \"format\" is not 1";
	if (!get_int(obj, "format", FORMAT_VERSION, FORMAT_VERSION, &n))
		return NULL;
	*what = "its \"name\" is not a valid key name matching the file name";
	name = get_string(obj, "name");
	if (name == NULL || !tkms_key_name_is_valid(name) ||
	    !g_str_has_suffix(file_name, ".json") ||
	    strlen(file_name) != strlen(name) + strlen(".json") ||
	    strncmp(file_name, name, strlen(name)) != 0)
		return NULL;
	*what = "its \"owner\" is not the uid of its directory";
	if (!get_int(obj, "owner", 0, G_MAXUINT32 - 1, &n) || n != uid)
		return NULL;
	*what = "its \"type\" is not a key type";
	if (!tkms_key_type_from_string(get_string(obj, "type"), &type))
		return NULL;
	key = tkms_key_new(uid, name, type);
	*what = "its \"created\" is not a time";
	if (!get_int(obj, "created", 0, G_MAXINT64, &key->created))
		return NULL;
	*what = "its \"description\" is not a string";
	if ((s = get_string(obj, "description")) == NULL)
		return NULL;
	key->description = g_strdup(s);
	*what = "its \"pcrs\" is not a PCR mask";
	if (!get_int(obj, "pcrs", 0, (1 << TKMS_PCR_MAX) - 1, &n))
		return NULL;
	key->pcrs = n;
	*what = "its \"primary-version\" is not a version number";
	if (!get_int(obj, "primary-version", 0, G_MAXUINT32, &n))
		return NULL;
	key->primary_version = n;
	*what = "its \"versions\" is not an array";
	vnode = json_object_get_member(obj, "versions");
	if (vnode == NULL || !JSON_NODE_HOLDS_ARRAY(vnode))
		return NULL;
	versions = json_node_get_array(vnode);
	for (guint i = 0; i < json_array_get_length(versions); i++) {
		JsonNode *node = json_array_get_element(versions, i);
		TkmsKeyVersion *v;
		JsonObject *vo;

		*what = "one of its \"versions\" is not a valid version";
		if (!JSON_NODE_HOLDS_OBJECT(node))
			return NULL;
		vo = json_node_get_object(node);
		v = g_new0(TkmsKeyVersion, 1);
		/* added first, so that the key frees it whatever follows */
		g_ptr_array_add(key->versions, v);
		if (!get_int(vo, "version", 1, G_MAXUINT32, &n) ||
		    tkms_key_get_version(key, n) != NULL)
			return NULL;
		v->version = n;
		s = get_string(vo, "state");
		if (s == NULL || !g_strv_contains(version_states, s))
			return NULL;
		v->state = g_strdup(s);
		if (!get_int(vo, "created", 0, G_MAXINT64, &v->created))
			return NULL;
		/* the JSON store knew no other date: its versions were active from creation */
		v->activated = v->created;
		*what = "one of its versions has a malformed TPM blob";
		if (!get_blob(vo, "tpm-public", &v->blob.public) ||
		    !get_blob(vo, "tpm-private", &v->blob.private))
			return NULL;
		*what = "one of its versions that is not destroyed has no TPM blob";
		if (!g_str_equal(v->state, "destroyed") &&
		    (v->blob.public == NULL || v->blob.private == NULL))
			return NULL;
	}
	*what = "its \"primary-version\" is not one of its versions";
	if (key->versions->len > 0 && tkms_key_get_version(key, key->primary_version) == NULL)
		return NULL;
	return g_steal_pointer(&key);
}

static gint
cmp_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const gchar **)a, *(const gchar **)b);
}

/* The entries of dir, sorted, so that the first fault found is the same at every start. */
static GPtrArray *
sorted_entries(const gchar *dir, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(GDir) d = g_dir_open(dir, 0, &local);
	GPtrArray *out;
	const gchar *name;

	if (d == NULL) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "Cannot import the JSON key store: %s", local->message);
		return NULL;
	}
	out = g_ptr_array_new_with_free_func(g_free);
	while ((name = g_dir_read_name(d)) != NULL)
		g_ptr_array_add(out, g_strdup(name));
	g_ptr_array_sort(out, cmp_str);
	return out;
}

gboolean
tkms_keystore_import_json(const gchar *dir, TkmsKeystoreImportFunc func, gpointer user_data,
			  guint *n_keys, GError **error)
{
	g_autoptr(GPtrArray) uids = sorted_entries(dir, error);

	*n_keys = 0;
	if (uids == NULL)
		return FALSE;
	for (guint i = 0; i < uids->len; i++) {
		const gchar *uid_name = g_ptr_array_index(uids, i);
		g_autofree gchar *udir = g_build_filename(dir, uid_name, NULL);
		g_autoptr(GPtrArray) files = NULL;
		guint64 uid;

		if (!g_file_test(udir, G_FILE_TEST_IS_DIR) ||
		    !g_ascii_string_to_unsigned(uid_name, 10, 0, G_MAXUINT32 - 1, &uid, NULL)) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "Cannot import the JSON key store: %s is not a directory of "
				    "one uid's keys; move it out of %s and start tkmsd again",
				    udir, dir);
			return FALSE;
		}
		files = sorted_entries(udir, error);
		if (files == NULL)
			return FALSE;
		for (guint j = 0; j < files->len; j++) {
			const gchar *file = g_ptr_array_index(files, j);
			g_autofree gchar *path = NULL;
			g_autoptr(TkmsKey) key = NULL;
			g_autoptr(GError) read_error = NULL;
			const gchar *what = NULL;

			if (!g_str_has_suffix(file, ".json"))
				continue;
			path = g_build_filename(udir, file, NULL);
			key = key_from_json(path, uid, file, &what, &read_error);
			if (key == NULL) {
				g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
					    "Cannot import the JSON key store: %s is not a valid "
					    "tkms key document (%s%s%s); repair or restore that "
					    "file and start tkmsd again (nothing was imported)",
					    path, what, read_error ? ": " : "",
					    read_error ? read_error->message : "");
				return FALSE;
			}
			if (!func(key, user_data, error)) {
				g_prefix_error(error, "Cannot import %s: ", path);
				return FALSE;
			}
			(*n_keys)++;
		}
	}
	return TRUE;
}
