/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-authz"

#include "tkms-test-authz.h"

#include <string.h>

#include "tkms-test-store.h"

guint32 authz_uid_a, authz_uid_b, authz_uid_admin;

void
authz_setup_users(void)
{
	g_autoptr(GError) error = NULL;

	if (!tkms_test_ensure_user(AUTHZ_USER_A, &authz_uid_a, NULL, &error) ||
	    !tkms_test_ensure_user(AUTHZ_USER_B, &authz_uid_b, NULL, &error) ||
	    !tkms_test_ensure_user(AUTHZ_USER_ADMIN, &authz_uid_admin, NULL, &error))
		tkms_test_exit_on_error("cannot set up the test users", error);
	g_assert_cmpuint(authz_uid_a, !=, 0);
	g_assert_cmpuint(authz_uid_b, !=, 0);
	g_assert_cmpuint(authz_uid_admin, !=, 0);
}

/* ---- callers ---- */

AuthzCaller *
authz_caller_new(TkmsTestEnv *env, const gchar *user)
{
	g_autoptr(GError) error = NULL;
	const gchar *helper = tkms_test_helper_path();
	const gchar *argv[] = {helper, "serve", NULL};
	AuthzCaller *c = g_new0(AuthzCaller, 1);

	g_assert_nonnull(helper);
	c->user = g_strdup(user ? user : "root");
	if (g_str_equal(c->user, "root")) {
		c->uid = 0;
	} else {
		g_assert_true(tkms_test_ensure_user(c->user, &c->uid, NULL, &error));
		g_assert_no_error(error);
	}
	c->proc = tkms_test_env_spawn_as(env, c->user, argv, &error);
	g_assert_no_error(error);
	c->in = g_object_ref(g_subprocess_get_stdin_pipe(c->proc));
	c->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(c->proc));
	return c;
}

void
authz_caller_free(AuthzCaller *c)
{
	if (c == NULL)
		return;
	g_output_stream_close(c->in, NULL, NULL);
	if (!g_subprocess_wait(c->proc, NULL, NULL))
		g_subprocess_force_exit(c->proc);
	g_object_unref(c->in);
	g_object_unref(c->out);
	g_object_unref(c->proc);
	g_free(c->user);
	g_free(c);
}

void
authz_reply_free(AuthzReply *r)
{
	if (r == NULL)
		return;
	g_clear_pointer(&r->value, g_variant_unref);
	g_free(r->error);
	g_free(r->message);
	g_free(r);
}

AuthzReply *
authz_call_text(AuthzCaller *c, const gchar *method, const gchar *flags, const gchar *args)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *line = g_strdup_printf("%s %s %s\n", method, flags, args);
	g_autofree gchar *answer = NULL;
	AuthzReply *r = g_new0(AuthzReply, 1);

	g_assert_null(strchr(args, '\n'));
	g_output_stream_write_all(c->in, line, strlen(line), NULL, NULL, &error);
	g_assert_no_error(error);
	g_output_stream_flush(c->in, NULL, &error);
	g_assert_no_error(error);
	answer = g_data_input_stream_read_line_utf8(c->out, NULL, NULL, &error);
	g_assert_no_error(error);
	if (answer == NULL)
		g_error("tkms-test-helper (as %s) ended without answering %s", c->user, method);
	if (g_str_has_prefix(answer, "OK ")) {
		r->ok = TRUE;
		r->value = g_variant_parse(NULL, answer + 3, NULL, NULL, &error);
		g_assert_no_error(error);
	} else if (g_str_has_prefix(answer, "ERR ")) {
		const gchar *name = answer + 4;
		const gchar *space = strchr(name, ' ');
		r->error = space ? g_strndup(name, space - name) : g_strdup(name);
		r->message = g_strdup(space ? space + 1 : "");
	} else {
		g_error("tkms-test-helper (as %s) answered %s: %s", c->user, method, answer);
	}
	return r;
}

AuthzReply *
authz_call(AuthzCaller *c, const gchar *method, gboolean interactive, GVariant *args)
{
	g_autoptr(GVariant) owned = g_variant_ref_sink(args);
	g_autofree gchar *text = g_variant_print(owned, TRUE);

	return authz_call_text(c, method, interactive ? "i" : "-", text);
}

AuthzReply *
authz_call_kept(AuthzCaller *c, const gchar *method, GVariant *args)
{
	g_autoptr(GVariant) owned = g_variant_ref_sink(args);
	g_autofree gchar *text = g_variant_print(owned, TRUE);

	return authz_call_text(c, method, "k", text);
}

const gchar *
authz_reply_outcome(const AuthzReply *r)
{
	if (r->ok)
		return "OK";
	if (g_str_has_prefix(r->error, AUTHZ_ERROR_PREFIX))
		return r->error + strlen(AUTHZ_ERROR_PREFIX);
	return r->error;
}

GVariant *
authz_assert_ok(AuthzReply *r, const gchar *what)
{
	if (!r->ok)
		g_error("%s failed: %s: %s", what, r->error, r->message);
	return r->value;
}

/* ---- state ---- */

static void
snapshot_dir(GHashTable *snap, const gchar *root, const gchar *rel)
{
	g_autofree gchar *dir = rel ? g_build_filename(root, rel, NULL) : g_strdup(root);
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *name;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *sub = rel ? g_build_filename(rel, name, NULL) : g_strdup(name);
		g_autofree gchar *path = g_build_filename(root, sub, NULL);
		gchar *contents = NULL;

		/* audit.log, its closed segments, audit.head and the head's temporary files
		 * (rewritten off the main loop by the group commit) */
		if (rel == NULL && g_str_has_prefix(name, "audit."))
			continue;
		/* the key store by its content (tkms_test_store_snapshot), not its bytes */
		if (rel == NULL && tkms_test_store_is_store_file(name))
			continue;
		if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
			snapshot_dir(snap, root, sub);
			continue;
		}
		if (!g_file_get_contents(path, &contents, NULL, NULL))
			contents = g_strdup("(unreadable)");
		g_hash_table_insert(snap, g_steal_pointer(&sub), contents);
	}
}

GHashTable *
authz_snapshot(const gchar *state_dir)
{
	GHashTable *snap = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	snapshot_dir(snap, state_dir, NULL);
	tkms_test_store_snapshot(state_dir, snap);
	return snap;
}

gchar *
authz_snapshot_diff(GHashTable *before, GHashTable *after)
{
	g_autoptr(GString) s = g_string_new(NULL);
	GHashTableIter iter;
	gpointer k, v;

	g_hash_table_iter_init(&iter, before);
	while (g_hash_table_iter_next(&iter, &k, &v)) {
		const gchar *now = g_hash_table_lookup(after, k);
		if (now == NULL)
			g_string_append_printf(s, " removed %s;", (const gchar *)k);
		else if (!g_str_equal(now, v))
			g_string_append_printf(s, " changed %s;", (const gchar *)k);
	}
	g_hash_table_iter_init(&iter, after);
	while (g_hash_table_iter_next(&iter, &k, &v))
		if (!g_hash_table_contains(before, k))
			g_string_append_printf(s, " added %s;", (const gchar *)k);
	if (s->len == 0)
		return NULL;
	return g_string_free(g_steal_pointer(&s), FALSE);
}

void
authz_snapshot_compare(GHashTable *before, GHashTable *after, GPtrArray **added,
		       GPtrArray **removed, GPtrArray **changed)
{
	GHashTableIter iter;
	gpointer k, v;

	*added = g_ptr_array_new_with_free_func(g_free);
	*removed = g_ptr_array_new_with_free_func(g_free);
	*changed = g_ptr_array_new_with_free_func(g_free);
	g_hash_table_iter_init(&iter, before);
	while (g_hash_table_iter_next(&iter, &k, &v)) {
		const gchar *now = g_hash_table_lookup(after, k);
		if (now == NULL)
			g_ptr_array_add(*removed, g_strdup(k));
		else if (!g_str_equal(now, v))
			g_ptr_array_add(*changed, g_strdup(k));
	}
	g_hash_table_iter_init(&iter, after);
	while (g_hash_table_iter_next(&iter, &k, &v))
		if (!g_hash_table_contains(before, k))
			g_ptr_array_add(*added, g_strdup(k));
}

GPtrArray *
authz_audit_lines_since(const gchar *state_dir, goffset *offset)
{
	g_autofree gchar *path = g_build_filename(state_dir, "audit.log", NULL);
	g_autoptr(GFile) file = g_file_new_for_path(path);
	g_autoptr(GFileInputStream) in = g_file_read(file, NULL, NULL);
	g_autoptr(GByteArray) buf = g_byte_array_new();
	GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
	guint8 chunk[16384];
	gsize start = 0;
	gssize n;

	if (in == NULL)
		return lines;
	g_assert_true(g_seekable_seek(G_SEEKABLE(in), *offset, G_SEEK_SET, NULL, NULL));
	while ((n = g_input_stream_read(G_INPUT_STREAM(in), chunk, sizeof(chunk), NULL, NULL)) > 0)
		g_byte_array_append(buf, chunk, (guint)n);
	/* whole lines only: a record is written with one write(), but be safe */
	for (gsize i = 0; i < buf->len; i++) {
		if (buf->data[i] != '\n')
			continue;
		if (i > start)
			g_ptr_array_add(lines,
					g_strndup((const gchar *)buf->data + start, i - start));
		start = i + 1;
	}
	*offset += (goffset)start;
	return lines;
}

GPtrArray *
authz_audit_lines(const gchar *state_dir)
{
	g_autofree gchar *path = g_build_filename(state_dir, "audit.log", NULL);
	g_autofree gchar *contents = NULL;
	GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
	gchar **split;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return lines;
	split = g_strsplit(contents, "\n", -1);
	for (guint i = 0; split[i] != NULL; i++)
		if (split[i][0] != '\0')
			g_ptr_array_add(lines, g_strdup(split[i]));
	g_strfreev(split);
	return lines;
}

JsonObject *
authz_audit_parse(const gchar *line)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonNode *root;

	if (!json_parser_load_from_data(parser, line, -1, NULL))
		return NULL;
	root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
		return NULL;
	return json_object_ref(json_node_get_object(root));
}

gchar *
authz_key_list_names(GVariant *list, gboolean with_owner)
{
	g_autoptr(GString) s = g_string_new(NULL);
	GVariantIter iter;
	GVariant *info;

	g_variant_iter_init(&iter, list);
	while ((info = g_variant_iter_next_value(&iter)) != NULL) {
		const gchar *name = "?";
		guint32 owner = G_MAXUINT32;

		g_variant_lookup(info, "name", "&s", &name);
		g_variant_lookup(info, "owner", "u", &owner);
		if (s->len > 0)
			g_string_append_c(s, ',');
		if (with_owner)
			g_string_append_printf(s, "%u:", owner);
		g_string_append(s, name);
		g_variant_unref(info);
	}
	return g_string_free(g_steal_pointer(&s), FALSE);
}
