/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-keystore"

/* The SQLite key store (daemon/keystore*.c) on a temporary state directory: what tkmsd
 * relies on it for, its file checks and migrations, and the import of the JSON store. */

#include <errno.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keystore-db.h"
#include "keystore.h"
#include "tkms-error.h"

typedef struct {
	gchar *dir;
	gchar *db;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
	GError *error = NULL;
	f->dir = g_dir_make_tmp("test-keystore-XXXXXX", &error);
	g_assert_no_error(error);
	f->db = g_build_filename(f->dir, "keys.db", NULL);
}

static void
rm_rf(const gchar *path)
{
	GDir *d = g_dir_open(path, 0, NULL);
	const gchar *name;

	if (d == NULL) {
		g_unlink(path);
		return;
	}
	while ((name = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *sub = g_build_filename(path, name, NULL);
		rm_rf(sub);
	}
	g_dir_close(d);
	g_rmdir(path);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
	if (g_getenv("TKMS_TEST_KEEP") == NULL)
		rm_rf(f->dir);
	g_free(f->dir);
	g_free(f->db);
}

/* ---- helpers ---- */

static GBytes *
random_bytes(gsize len)
{
	guint8 *p = g_malloc(len);
	for (gsize i = 0; i < len; i++)
		p[i] = g_random_int_range(0, 256);
	return g_bytes_new_take(p, len);
}

static TkmsKey *
make_key(guint32 owner, const gchar *name, guint n_versions)
{
	TkmsKey *key = tkms_key_new(owner, name, TKMS_KEY_TYPE_AES_256_GCM);
	key->description = g_strdup_printf("key %s of %u", name, owner);
	key->pcrs = 1u << 7;
	for (guint i = 0; i < n_versions; i++) {
		TkmsTpmBlob blob = {random_bytes(90), random_bytes(130)};
		tkms_key_add_version(key, &blob, 1700000000 + i, 0);
	}
	return key;
}

static void
assert_same_key(TkmsKey *a, TkmsKey *b)
{
	g_assert_cmpuint(a->owner, ==, b->owner);
	g_assert_cmpstr(a->name, ==, b->name);
	g_assert_cmpint(a->type, ==, b->type);
	g_assert_cmpstr(a->description, ==, b->description);
	g_assert_cmpint(a->created, ==, b->created);
	g_assert_cmpuint(a->pcrs, ==, b->pcrs);
	g_assert_cmpuint(a->primary_version, ==, b->primary_version);
	g_assert_true(memcmp(&a->policy, &b->policy, sizeof(a->policy)) == 0);
	g_assert_cmpuint(a->password.length, ==, b->password.length);
	g_assert_cmpint(a->password.charset, ==, b->password.charset);
	g_assert_cmpstr(a->password.exclude, ==, b->password.exclude);
	g_assert_cmpint(a->rotation.step, ==, b->rotation.step);
	g_assert_cmpuint(a->rotation.pending_version, ==, b->rotation.pending_version);
	g_assert_cmpuint(a->rotation.previous_version, ==, b->rotation.previous_version);
	g_assert_cmpint(a->rotation.started, ==, b->rotation.started);
	g_assert_cmpuint(a->rotation.attempts, ==, b->rotation.attempts);
	g_assert_cmpint(a->rotation.retry_at, ==, b->rotation.retry_at);
	g_assert_cmpint(a->rotation.last_step, ==, b->rotation.last_step);
	g_assert_cmpint(a->rotation.last_time, ==, b->rotation.last_time);
	g_assert_cmpuint(a->rotation.last_version, ==, b->rotation.last_version);
	g_assert_cmpint(a->rotation.last_ok, ==, b->rotation.last_ok);
	g_assert_cmpstr(a->rotation.last_reason, ==, b->rotation.last_reason);
	g_assert_cmpuint(a->versions->len, ==, b->versions->len);
	for (guint i = 0; i < a->versions->len; i++) {
		TkmsKeyVersion *va = g_ptr_array_index(a->versions, i);
		TkmsKeyVersion *vb = g_ptr_array_index(b->versions, i);
		g_assert_cmpuint(va->version, ==, vb->version);
		g_assert_cmpstr(va->state, ==, vb->state);
		g_assert_cmpint(va->created, ==, vb->created);
		g_assert_cmpint(va->activated, ==, vb->activated);
		g_assert_cmpint(va->superseded, ==, vb->superseded);
		g_assert_cmpint(va->deactivated, ==, vb->deactivated);
		g_assert_cmpint(va->destroy_at, ==, vb->destroy_at);
		g_assert_cmpint(va->destroyed, ==, vb->destroyed);
		g_assert_cmpstr(va->prior_state, ==, vb->prior_state);
		g_assert_cmpuint(va->uses, ==, vb->uses);
		g_assert_cmpuint(va->uses_reserved, ==, vb->uses_reserved);
		g_assert_true((va->blob.public == NULL) == (vb->blob.public == NULL));
		g_assert_true((va->blob.private == NULL) == (vb->blob.private == NULL));
		if (va->blob.public != NULL)
			g_assert_true(g_bytes_equal(va->blob.public, vb->blob.public));
		if (va->blob.private != NULL)
			g_assert_true(g_bytes_equal(va->blob.private, vb->blob.private));
		g_assert_true((va->blob.wrapped == NULL) == (vb->blob.wrapped == NULL));
		if (va->blob.wrapped != NULL)
			g_assert_true(g_bytes_equal(va->blob.wrapped, vb->blob.wrapped));
	}
}

static void
save_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GError **out = user_data;
	gboolean ok = tkms_keystore_save_finish(TKMS_KEYSTORE(source), res, out);
	g_assert_true(ok == (*out == NULL));
	(*(guint *)g_object_get_data(source, "done"))++;
}

static gboolean
save_sync(TkmsKeystore *store, TkmsKey *key, GError **error)
{
	guint done = 0;
	GError *local = NULL;

	g_object_set_data(G_OBJECT(store), "done", &done);
	tkms_keystore_save(store, key, NULL, save_cb, &local);
	while (done == 0)
		g_main_context_iteration(NULL, TRUE);
	g_object_set_data(G_OBJECT(store), "done", NULL);
	if (local != NULL) {
		g_propagate_error(error, local);
		return FALSE;
	}
	return TRUE;
}

static TkmsKeystore *
open_ok(Fixture *f)
{
	GError *error = NULL;
	TkmsKeystore *store = tkms_keystore_new(f->dir, &error);
	g_assert_no_error(error);
	g_assert_nonnull(store);
	return store;
}

static void
save_ok(TkmsKeystore *store, TkmsKey *key)
{
	GError *error = NULL;
	g_assert_true(save_sync(store, key, &error));
	g_assert_no_error(error);
}

static GBytes *
file_bytes(const gchar *path)
{
	gchar *contents = NULL;
	gsize len = 0;
	g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
	return g_bytes_new_take(contents, len);
}

static gint
cmp_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const gchar *const *)a, *(const gchar *const *)b);
}

static gchar *
dir_listing(const gchar *dir)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *name;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, cmp_names);
	g_ptr_array_add(names, NULL);
	return g_strjoinv(" ", (gchar **)names->pdata);
}

/* Every file under dir, path -> contents, as one string. */
static void
tree_dump(GString *out, const gchar *dir, const gchar *rel)
{
	g_autofree gchar *path = rel ? g_build_filename(dir, rel, NULL) : g_strdup(dir);
	g_autofree gchar *listing = NULL;
	g_auto(GStrv) names = NULL;

	if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
		g_autoptr(GBytes) b = file_bytes(path);
		g_autofree gchar *hex = NULL;
		GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
		g_checksum_update(sum, g_bytes_get_data(b, NULL), g_bytes_get_size(b));
		g_string_append_printf(out, "%s %s\n", rel, g_checksum_get_string(sum));
		g_checksum_free(sum);
		return;
	}
	listing = dir_listing(path);
	names = g_strsplit(listing, " ", -1);
	g_string_append_printf(out, "%s/\n", rel ? rel : ".");
	for (guint i = 0; names[i] != NULL && names[i][0] != '\0'; i++) {
		g_autofree gchar *sub = rel ? g_build_filename(rel, names[i], NULL)
					    : g_strdup(names[i]);
		tree_dump(out, dir, sub);
	}
}

static gchar *
tree_snapshot(const gchar *dir)
{
	GString *out = g_string_new(NULL);
	tree_dump(out, dir, NULL);
	return g_string_free(out, FALSE);
}

static void
sql(const gchar *path, const gchar *statements)
{
	sqlite3 *db = NULL;
	gchar *msg = NULL;
	g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
	if (sqlite3_exec(db, statements, NULL, NULL, &msg) != SQLITE_OK)
		g_error("%s: %s", statements, msg);
	g_assert_cmpint(sqlite3_close(db), ==, SQLITE_OK);
}

static gint64
sql_int(const gchar *path, const gchar *query)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	gint64 v;
	g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_prepare_v2(db, query, -1, &stmt, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return v;
}

/* Opening is refused with a message naming the file; the file is left exactly as it was,
 * and nothing is created beside it. */
static void
assert_refused(Fixture *f, const gchar *why)
{
	g_autoptr(GBytes) before = file_bytes(f->db);
	g_autofree gchar *listing_before = dir_listing(f->dir);
	g_autofree gchar *listing_after = NULL;
	g_autoptr(GBytes) after = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKeystore) store = tkms_keystore_new(f->dir, &error);

	g_assert_null(store);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_test_message("refused: %s", error->message);
	g_assert_nonnull(strstr(error->message, f->db));
	g_assert_nonnull(strstr(error->message, why));
	after = file_bytes(f->db);
	g_assert_true(g_bytes_equal(before, after));
	listing_after = dir_listing(f->dir);
	g_assert_cmpstr(listing_before, ==, listing_after);
}

/* ---- the store ---- */

static void
test_new(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = open_ok(f);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(TkmsKey) missing = NULL;
	GStatBuf st;

	g_assert_cmpint(g_stat(f->db, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_cmpint(sql_int(f->db, "PRAGMA application_id"), ==,
			TKMS_KEYSTORE_DB_APPLICATION_ID);
	g_assert_cmpint(sql_int(f->db, "PRAGMA user_version"), ==, TKMS_KEYSTORE_DB_SCHEMA_VERSION);
	g_assert_cmpint(sql_int(f->db, "SELECT count(*) FROM keys"), ==, 0);
	all = tkms_keystore_list(store, TKMS_KEYSTORE_ALL_OWNERS, 0, NULL, 100, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(all->len, ==, 0);
	g_assert_false(tkms_keystore_has_owner(store, 0));
	missing = tkms_keystore_lookup(store, 0, "nothing", &error);
	g_assert_null(missing);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND);
	/* nothing else was made beside it */
	g_assert_false(g_file_test(f->db, G_FILE_TEST_IS_DIR));
	{
		g_autofree gchar *tmp = g_strconcat(f->db, ".new", NULL);
		g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
	}
}

static void
test_save_lookup(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = open_ok(f);
	g_autoptr(TkmsKey) key = make_key(1000, "k1", 3);
	g_autoptr(TkmsKey) other = make_key(1001, "k1", 1);
	g_autoptr(GError) error = NULL;

	save_ok(store, key);
	save_ok(store, other);
	for (guint round = 0; round < 2; round++) { /* read from the file, then the cache */
		g_autoptr(TkmsKey) got = tkms_keystore_lookup(store, 1000, "k1", &error);
		g_autoptr(TkmsKey) got2 = tkms_keystore_lookup(store, 1001, "k1", &error);
		g_assert_no_error(error);
		assert_same_key(got, key);
		assert_same_key(got2, other);
	}
	{
		g_autoptr(TkmsKey) none = tkms_keystore_lookup(store, 1002, "k1", &error);
		g_assert_null(none);
		g_assert_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND);
		g_clear_error(&error);
	}
	/* a change is seen at once, cached or not */
	{
		g_autoptr(TkmsKey) cached = tkms_keystore_lookup(store, 1000, "k1", &error);
		g_autoptr(TkmsKey) got = NULL;
		TkmsTpmBlob blob = {random_bytes(50), random_bytes(60)};
		g_assert_no_error(error);
		tkms_key_add_version(key, &blob, 1800000000, 0);
		g_free(key->description);
		key->description = g_strdup("changed");
		save_ok(store, key);
		got = tkms_keystore_lookup(store, 1000, "k1", &error);
		g_assert_no_error(error);
		assert_same_key(got, key);
		g_assert_cmpuint(got->versions->len, ==, 4);
		/* a reference handed out earlier is not changed behind its holder's back */
		g_assert_cmpuint(cached->versions->len, ==, 3);
	}
	/* destroyed: the blobs go, the metadata stays */
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		g_free(v->state);
		v->state = g_strdup("destroyed");
		tkms_tpm_blob_clear(&v->blob);
	}
	save_ok(store, key);
	g_clear_object(&store);

	/* reopened: everything is still there */
	store = open_ok(f);
	{
		g_autoptr(TkmsKey) got = tkms_keystore_lookup(store, 1000, "k1", &error);
		g_autoptr(TkmsKey) got2 = tkms_keystore_lookup(store, 1001, "k1", &error);
		g_assert_no_error(error);
		assert_same_key(got, key);
		assert_same_key(got2, other);
		g_assert_null(((TkmsKeyVersion *)g_ptr_array_index(got->versions, 0))->blob.public);
	}
	g_assert_cmpint(sql_int(f->db, "SELECT count(*) FROM key_versions WHERE tpm_public IS "
				       "NOT NULL AND key_id = (SELECT id FROM keys WHERE owner = "
				       "1000)"),
			==, 0);
}

/* The order of saves is the order of commits, whatever the threads do. */
static void
test_save_order(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = open_ok(f);
	g_autoptr(TkmsKey) key = make_key(0, "ordered", 1);
	g_autoptr(TkmsKey) got = NULL;
	g_autoptr(GError) error = NULL;
	GError *errors[20] = {NULL};
	guint done = 0;

	g_object_set_data(G_OBJECT(store), "done", &done);
	for (guint i = 0; i < G_N_ELEMENTS(errors); i++) {
		g_free(key->description);
		key->description = g_strdup_printf("save %u", i);
		tkms_keystore_save(store, key, NULL, save_cb, &errors[i]);
	}
	/* changed after the last save was asked for: not what that save writes */
	g_free(key->description);
	key->description = g_strdup("not saved");
	while (done < G_N_ELEMENTS(errors))
		g_main_context_iteration(NULL, TRUE);
	for (guint i = 0; i < G_N_ELEMENTS(errors); i++)
		g_assert_no_error(errors[i]);
	g_clear_object(&store);
	store = open_ok(f);
	got = tkms_keystore_lookup(store, 0, "ordered", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got->description, ==, "save 19");
}

/* A save that fails half way leaves the store as it was: no key, or the old versions. */
static void
test_save_atomic(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = open_ok(f);
	g_autoptr(TkmsKey) key = make_key(1000, "atomic", 3);
	g_autoptr(TkmsKey) old = make_key(1000, "old", 1);
	g_autoptr(TkmsKey) got = NULL;
	g_autoptr(GError) error = NULL;
	TkmsKeyVersion *bad;

	/* the third version breaks a constraint after two were written */
	bad = g_ptr_array_index(key->versions, 2);
	bad->version = 0;
	g_assert_false(save_sync(store, key, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_test_message("%s", error->message);
	g_clear_error(&error);
	got = tkms_keystore_lookup(store, 1000, "atomic", &error);
	g_assert_null(got);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_cmpint(sql_int(f->db, "SELECT count(*) FROM key_versions"), ==, 0);

	/* an existing key keeps its one version */
	save_ok(store, old);
	{
		g_autoptr(TkmsKey) changed = make_key(1000, "old", 3);
		TkmsKeyVersion *v = g_ptr_array_index(changed->versions, 2);
		v->version = 0;
		g_assert_false(save_sync(store, changed, &error));
		g_clear_error(&error);
	}
	g_clear_object(&store);
	store = open_ok(f);
	got = tkms_keystore_lookup(store, 1000, "old", &error);
	g_assert_no_error(error);
	assert_same_key(got, old);
	g_assert_cmpint(sql_int(f->db, "SELECT count(*) FROM key_versions"), ==, 1);
}

static void
check_pages(TkmsKeystore *store, guint32 owner, guint page, GPtrArray *want)
{
	g_autoptr(GError) error = NULL;
	guint32 after_owner = 0;
	g_autofree gchar *after_name = NULL;
	guint seen = 0;

	for (;;) {
		g_autoptr(GPtrArray) keys =
			tkms_keystore_list(store, owner, after_owner, after_name, page, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(keys->len, <=, page);
		for (guint i = 0; i < keys->len; i++) {
			TkmsKey *k = g_ptr_array_index(keys, i);
			g_assert_cmpuint(seen, <, want->len);
			g_assert_cmpstr(k->name, ==, g_ptr_array_index(want, seen));
			g_assert_true(owner == TKMS_KEYSTORE_ALL_OWNERS || k->owner == owner);
			g_assert_cmpuint(k->versions->len, ==, 1);
			seen++;
		}
		if (keys->len < page)
			break;
		after_owner = ((TkmsKey *)g_ptr_array_index(keys, keys->len - 1))->owner;
		g_free(after_name);
		after_name = g_strdup(((TkmsKey *)g_ptr_array_index(keys, keys->len - 1))->name);
	}
	g_assert_cmpuint(seen, ==, want->len);
}

static void
test_list(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = open_ok(f);
	/* bytewise order: '-' < '.' < '0' < 'A' < '_' < 'a' */
	const gchar *names[] = {"a", "A", "_u", "-x", "0", "b.c", "B", "zz", "a.", "a-"};
	const gchar *sorted[] = {"-x", "0", "A", "B", "_u", "a", "a-", "a.", "b.c", "zz"};
	const guint32 owners[] = {1000, 0, 4294967294u};
	g_autoptr(GPtrArray) want_all = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) want_one = g_ptr_array_new();

	for (guint o = 0; o < G_N_ELEMENTS(owners); o++)
		for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
			g_autoptr(TkmsKey) key = make_key(owners[o], names[i], 1);
			save_ok(store, key);
		}
	for (guint i = 0; i < G_N_ELEMENTS(sorted); i++)
		g_ptr_array_add(want_one, (gpointer)sorted[i]);
	/* owners sorted numerically: 0, 1000, 4294967294 */
	for (guint o = 0; o < 3; o++)
		for (guint i = 0; i < G_N_ELEMENTS(sorted); i++)
			g_ptr_array_add(want_all, g_strdup(sorted[i]));
	for (guint page = 1; page <= 11; page++) {
		check_pages(store, 1000, page, want_one);
		check_pages(store, 0, page, want_one);
		check_pages(store, TKMS_KEYSTORE_ALL_OWNERS, page, want_all);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) all =
			tkms_keystore_list(store, TKMS_KEYSTORE_ALL_OWNERS, 0, NULL, 1000, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(all->len, ==, 30);
		g_assert_cmpuint(((TkmsKey *)g_ptr_array_index(all, 0))->owner, ==, 0);
		g_assert_cmpuint(((TkmsKey *)g_ptr_array_index(all, 10))->owner, ==, 1000);
		g_assert_cmpuint(((TkmsKey *)g_ptr_array_index(all, 29))->owner, ==, 4294967294u);
		/* after a position between owners */
		g_clear_pointer(&all, g_ptr_array_unref);
		all = tkms_keystore_list(store, TKMS_KEYSTORE_ALL_OWNERS, 1000, "zz", 1000, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(all->len, ==, 10);
		g_clear_pointer(&all, g_ptr_array_unref);
		all = tkms_keystore_list(store, 1000, 1000, "b", 1000, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(all->len, ==, 2);
		g_assert_cmpstr(((TkmsKey *)g_ptr_array_index(all, 0))->name, ==, "b.c");
		g_clear_pointer(&all, g_ptr_array_unref);
		all = tkms_keystore_list(store, 1000, 0, NULL, 0, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(all->len, ==, 0);
	}
}

static void
test_has_owner(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = open_ok(f);
	g_autoptr(TkmsKey) key = make_key(4242, "x", 1);

	g_assert_false(tkms_keystore_has_owner(store, 4242));
	save_ok(store, key);
	g_assert_true(tkms_keystore_has_owner(store, 4242));
	g_assert_false(tkms_keystore_has_owner(store, 4243));
	g_assert_false(tkms_keystore_has_owner(store, 0));
	g_clear_object(&store);
	store = open_ok(f);
	g_assert_true(tkms_keystore_has_owner(store, 4242));
}

static void
destroy(TkmsKey *key)
{
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		g_free(v->state);
		v->state = g_strdup("destroyed");
		tkms_tpm_blob_clear(&v->blob);
	}
}

static void
test_reserve(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = open_ok(f);
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKey) k1 = make_key(1000, "k1", 1);
	g_autoptr(TkmsKey) k2 = make_key(1000, "k2", 1);

	save_ok(store, k1);
	save_ok(store, k2);
	/* a name in use, or reserved, is taken */
	g_assert_false(tkms_keystore_reserve(store, 1000, "k1", 0, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_ALREADY_EXISTS);
	g_clear_error(&error);
	g_assert_true(tkms_keystore_reserve(store, 1000, "new", 0, &error));
	g_assert_no_error(error);
	g_assert_false(tkms_keystore_reserve(store, 1000, "new", 0, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_ALREADY_EXISTS);
	g_clear_error(&error);
	/* another owner's names are its own */
	g_assert_true(tkms_keystore_reserve(store, 1001, "k1", 1, &error));
	g_assert_no_error(error);
	tkms_keystore_release(store, 1001, "k1");
	tkms_keystore_release(store, 1000, "new");
	g_assert_true(tkms_keystore_reserve(store, 1000, "new", 0, &error));
	g_assert_no_error(error);
	tkms_keystore_release(store, 1000, "new");

	/* quota 3: two keys and one reservation fill it */
	g_assert_true(tkms_keystore_reserve(store, 1000, "k3", 3, &error));
	g_assert_no_error(error);
	g_assert_false(tkms_keystore_reserve(store, 1000, "k4", 3, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED);
	g_clear_error(&error);
	/* 0: no limit; another owner has its own count */
	g_assert_true(tkms_keystore_reserve(store, 1000, "k4", 0, &error));
	tkms_keystore_release(store, 1000, "k4");
	g_assert_true(tkms_keystore_reserve(store, 1001, "k4", 1, &error));
	tkms_keystore_release(store, 1001, "k4");
	/* the reserved key is saved, then released, as tkmsd does */
	{
		g_autoptr(TkmsKey) k3 = make_key(1000, "k3", 1);
		save_ok(store, k3);
		tkms_keystore_release(store, 1000, "k3");
	}
	g_assert_false(tkms_keystore_reserve(store, 1000, "k4", 3, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED);
	g_clear_error(&error);
	g_assert_true(tkms_keystore_reserve(store, 1000, "k4", 4, &error));
	g_assert_no_error(error);
	tkms_keystore_release(store, 1000, "k4");
	/* a destroyed key does not count, and its name stays taken */
	destroy(k1);
	save_ok(store, k1);
	g_assert_true(tkms_keystore_reserve(store, 1000, "k4", 3, &error));
	g_assert_no_error(error);
	tkms_keystore_release(store, 1000, "k4");
	g_assert_false(tkms_keystore_reserve(store, 1000, "k1", 0, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_ALREADY_EXISTS);
	g_clear_error(&error);
	/* the same counts from the file, after a restart */
	g_clear_object(&store);
	store = open_ok(f);
	g_assert_false(tkms_keystore_reserve(store, 1000, "k2", 0, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_ALREADY_EXISTS);
	g_clear_error(&error);
	g_assert_true(tkms_keystore_reserve(store, 1000, "k4", 3, &error));
	g_assert_no_error(error);
	g_assert_false(tkms_keystore_reserve(store, 1000, "k5", 3, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED);
}

/* ---- the file ---- */

static void
test_reopen_wal(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = open_ok(f);
	g_autoptr(TkmsKey) key = make_key(7, "wal", 2);

	save_ok(store, key);
	{
		sqlite3 *db = NULL;
		sqlite3_stmt *stmt = NULL;
		g_assert_cmpint(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), ==,
				SQLITE_OK);
		g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL),
				==, SQLITE_OK);
		g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
		g_assert_cmpstr((const gchar *)sqlite3_column_text(stmt, 0), ==, "wal");
		sqlite3_finalize(stmt);
		sqlite3_close(db);
	}
	/* a second store on the same file (as after a crash: nothing closed) sees the key */
	{
		g_autoptr(TkmsKeystore) second = open_ok(f);
		g_autoptr(GError) error = NULL;
		g_autoptr(TkmsKey) got = tkms_keystore_lookup(second, 7, "wal", &error);
		g_assert_no_error(error);
		assert_same_key(got, key);
	}
}

static void
test_migrate_v0(Fixture *f, gconstpointer data)
{
	/* what SQLite leaves when it opened a new file and wrote nothing: 0 bytes */
	for (guint i = 0; i < 2; i++) {
		g_autoptr(TkmsKeystore) store = NULL;
		g_autoptr(TkmsKey) key = make_key(1, "m", 1);
		g_autoptr(TkmsKey) got = NULL;
		g_autoptr(GError) error = NULL;

		g_unlink(f->db);
		if (i == 0)
			g_assert_true(g_file_set_contents(f->db, "", 0, NULL));
		else /* an SQLite file with a header, version 0 and no table */
			sql(f->db, "PRAGMA page_size = 4096; VACUUM;");
		g_assert_cmpint(sql_int(f->db, "PRAGMA user_version"), ==, 0);
		store = open_ok(f);
		g_assert_cmpint(sql_int(f->db, "PRAGMA user_version"), ==,
				TKMS_KEYSTORE_DB_SCHEMA_VERSION);
		g_assert_cmpint(sql_int(f->db, "PRAGMA application_id"), ==,
				TKMS_KEYSTORE_DB_APPLICATION_ID);
		save_ok(store, key);
		g_clear_object(&store);
		store = open_ok(f);
		got = tkms_keystore_lookup(store, 1, "m", &error);
		g_assert_no_error(error);
		assert_same_key(got, key);
	}
}

/* A schema 1 file, as the tkmsd of issue 6 wrote it (its exact DDL), with an active key of
 * two versions and a destroyed key. */
static void
write_v1(const gchar *path)
{
	sql(path, "PRAGMA application_id = 1953197427;"
		  "CREATE TABLE keys ("
		  "  id INTEGER PRIMARY KEY,"
		  "  owner INTEGER NOT NULL CHECK (owner BETWEEN 0 AND 4294967294),"
		  "  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),"
		  "  type TEXT NOT NULL,"
		  "  description TEXT NOT NULL DEFAULT '',"
		  "  created INTEGER NOT NULL,"
		  "  pcrs INTEGER NOT NULL DEFAULT 0,"
		  "  primary_version INTEGER NOT NULL DEFAULT 0,"
		  "  UNIQUE (owner, name)"
		  ");"
		  "CREATE TABLE key_versions ("
		  "  key_id INTEGER NOT NULL REFERENCES keys (id) ON DELETE CASCADE,"
		  "  version INTEGER NOT NULL CHECK (version > 0),"
		  "  state TEXT NOT NULL,"
		  "  created INTEGER NOT NULL,"
		  "  tpm_public BLOB,"
		  "  tpm_private BLOB,"
		  "  PRIMARY KEY (key_id, version)"
		  ");"
		  "INSERT INTO keys VALUES (1, 1000, 'old', 'aes-256-gcm', 'd', 1600000000, 0, 2);"
		  "INSERT INTO key_versions VALUES (1, 1, 'active', 1600000000, x'0102', x'0304');"
		  "INSERT INTO key_versions VALUES (1, 2, 'active', 1600000100, x'0506', x'0708');"
		  "INSERT INTO keys VALUES (2, 1000, 'gone', 'hmac-sha256', '', 1600000000, 0, 1);"
		  "INSERT INTO key_versions VALUES (2, 1, 'destroyed', 1600000000, NULL, NULL);"
		  "PRAGMA user_version = 1;");
}

static void
test_migrate_v1(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = NULL;
	g_autoptr(TkmsKey) old = NULL;
	g_autoptr(TkmsKey) gone = NULL;
	g_autoptr(GError) error = NULL;
	TkmsKeyVersion *v;
	gint64 due = -1;

	write_v1(f->db);
	store = open_ok(f);
	g_assert_cmpint(sql_int(f->db, "PRAGMA user_version"), ==, TKMS_KEYSTORE_DB_SCHEMA_VERSION);
	g_assert_cmpint(sql_int(f->db, "SELECT count(*) FROM sqlite_schema WHERE name = "
				       "'keys_next_due'"),
			==, 1);
	old = tkms_keystore_lookup(store, 1000, "old", &error);
	g_assert_no_error(error);
	g_assert_cmpuint(old->primary_version, ==, 2);
	g_assert_cmpuint(old->versions->len, ==, 2);
	for (guint i = 0; i < 2; i++) {
		v = g_ptr_array_index(old->versions, i);
		g_assert_cmpstr(v->state, ==, "active");
		/* activated when created; no other date, no use counted, no policy */
		g_assert_cmpint(v->activated, ==, v->created);
		g_assert_cmpint(v->deactivated + v->destroy_at + v->destroyed + v->superseded, ==,
				0);
		g_assert_cmpuint(v->uses, ==, 0);
		g_assert_nonnull(v->blob.private);
	}
	g_assert_cmpuint(old->policy.period + old->policy.max_uses, ==, 0);
	gone = tkms_keystore_lookup(store, 1000, "gone", &error);
	g_assert_no_error(error);
	v = g_ptr_array_index(gone->versions, 0);
	g_assert_cmpstr(v->state, ==, "destroyed");
	g_assert_cmpint(v->activated, ==, 0);
	g_assert_null(v->blob.private);
	/* a name of schema 1 is still taken */
	g_assert_false(tkms_keystore_reserve(store, 1000, "gone", 0, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_ALREADY_EXISTS);
	g_clear_error(&error);
	/* nothing is due: migrated keys have no policy */
	g_assert_true(tkms_keystore_next_due(store, &due, &error));
	g_assert_cmpint(due, ==, 0);
	/* migrated once: a second open changes nothing */
	g_clear_object(&store);
	store = open_ok(f);
	g_assert_cmpint(sql_int(f->db, "PRAGMA user_version"), ==, TKMS_KEYSTORE_DB_SCHEMA_VERSION);
	g_assert_cmpint(sql_int(f->db, "SELECT count(*) FROM key_versions"), ==, 3);
}

/* A schema 2 file, as the tkmsd of issue 7 wrote it: schema 1 and that migration's exact DDL,
 * with a policy and a version's dates and uses set. */
static void
write_v2(const gchar *path)
{
	write_v1(path);
	sql(path, "ALTER TABLE keys ADD COLUMN rotation_period INTEGER NOT NULL DEFAULT 0;"
		  "ALTER TABLE keys ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 0;"
		  "ALTER TABLE keys ADD COLUMN deactivate_after INTEGER NOT NULL DEFAULT 0;"
		  "ALTER TABLE keys ADD COLUMN destroy_after INTEGER NOT NULL DEFAULT 0;"
		  "ALTER TABLE keys ADD COLUMN next_due INTEGER NOT NULL DEFAULT 0;"
		  "ALTER TABLE key_versions ADD COLUMN activated INTEGER NOT NULL DEFAULT 0;"
		  "ALTER TABLE key_versions ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;"
		  "ALTER TABLE key_versions ADD COLUMN deactivated INTEGER NOT NULL DEFAULT 0;"
		  "ALTER TABLE key_versions ADD COLUMN destroy_at INTEGER NOT NULL DEFAULT 0;"
		  "ALTER TABLE key_versions ADD COLUMN destroyed INTEGER NOT NULL DEFAULT 0;"
		  "ALTER TABLE key_versions ADD COLUMN prior_state TEXT;"
		  "ALTER TABLE key_versions ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;"
		  "ALTER TABLE key_versions ADD COLUMN uses_reserved INTEGER NOT NULL DEFAULT 0;"
		  "UPDATE key_versions SET activated = created WHERE state <> 'destroyed';"
		  "CREATE INDEX keys_next_due ON keys (next_due) WHERE next_due > 0;"
		  "UPDATE keys SET rotation_period = 86400, next_due = 1600086500 WHERE id = 1;"
		  "UPDATE key_versions SET superseded = 1600000100, uses = 7, uses_reserved = 64 "
		  "WHERE key_id = 1 AND version = 1;"
		  "PRAGMA user_version = 2;");
}

static void
test_migrate_v2(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = NULL;
	g_autoptr(TkmsKey) old = NULL;
	g_autoptr(TkmsKey) copy = NULL;
	g_autoptr(GError) error = NULL;
	TkmsKeyVersion *v;
	gint64 due = -1;

	write_v2(f->db);
	store = open_ok(f);
	g_assert_cmpint(sql_int(f->db, "PRAGMA user_version"), ==, TKMS_KEYSTORE_DB_SCHEMA_VERSION);
	old = tkms_keystore_lookup(store, 1000, "old", &error);
	g_assert_no_error(error);
	/* what schema 2 held is kept */
	g_assert_cmpstr(old->description, ==, "d");
	g_assert_cmpuint(old->primary_version, ==, 2);
	g_assert_cmpuint(old->policy.period, ==, 86400);
	v = g_ptr_array_index(old->versions, 0);
	g_assert_cmpint(v->superseded, ==, 1600000100);
	g_assert_cmpuint(v->uses, ==, 7);
	g_assert_cmpuint(v->uses_reserved, ==, 64);
	g_assert_nonnull(v->blob.private);
	g_assert_true(tkms_keystore_next_due(store, &due, &error));
	g_assert_cmpint(due, ==, 1600086500);
	/* the new fields read as a key made now has them: no hook, no rotation, no spec */
	g_assert_cmpstr(old->policy.hook, ==, "");
	g_assert_cmpuint(old->password.length, ==, 0);
	g_assert_cmpstr(old->password.exclude, ==, "");
	g_assert_cmpint(old->rotation.step, ==, TKMS_ROTATION_STEP_NONE);
	g_assert_cmpint(old->rotation.last_step, ==, TKMS_ROTATION_STEP_NONE);
	g_assert_cmpint(old->rotation.last_time, ==, 0);
	g_assert_null(old->rotation.last_reason);
	g_assert_null(v->blob.wrapped);
	/* a migrated key is saved and read back whole */
	copy = tkms_key_copy(old);
	copy->rotation.previous_version = 1;
	save_ok(store, copy);
	g_clear_object(&store);
	store = open_ok(f);
	g_clear_pointer(&old, tkms_key_unref);
	old = tkms_keystore_lookup(store, 1000, "old", &error);
	g_assert_no_error(error);
	assert_same_key(old, copy);
	g_assert_cmpint(sql_int(f->db, "PRAGMA user_version"), ==, TKMS_KEYSTORE_DB_SCHEMA_VERSION);
}

/* A schema 3 file: schema 2 and that migration's exact DDL, with a password key in the middle
 * of a rotation. */
static void
write_v3(const gchar *path)
{
	write_v2(path);
	sql(path,
	    "ALTER TABLE keys ADD COLUMN password_length INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE keys ADD COLUMN password_charset TEXT NOT NULL DEFAULT 'alnum';"
	    "ALTER TABLE keys ADD COLUMN password_exclude TEXT NOT NULL DEFAULT '';"
	    "ALTER TABLE keys ADD COLUMN hook TEXT NOT NULL DEFAULT '';"
	    "ALTER TABLE keys ADD COLUMN rotation_step TEXT NOT NULL DEFAULT 'none';"
	    "ALTER TABLE keys ADD COLUMN rotation_pending_version INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE keys ADD COLUMN rotation_previous_version INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE keys ADD COLUMN rotation_started INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE keys ADD COLUMN rotation_attempts INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE keys ADD COLUMN rotation_retry_at INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE keys ADD COLUMN last_rotation_step TEXT NOT NULL DEFAULT 'none';"
	    "ALTER TABLE keys ADD COLUMN last_rotation_time INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE keys ADD COLUMN last_rotation_version INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE keys ADD COLUMN last_rotation_ok INTEGER NOT NULL DEFAULT 0;"
	    "ALTER TABLE keys ADD COLUMN last_rotation_reason TEXT;"
	    "INSERT INTO keys (id, owner, name, type, created, primary_version, "
	    "password_length, password_charset, password_exclude, hook, rotation_step, "
	    "rotation_pending_version, rotation_started) VALUES (3, 1000, 'pw', "
	    "'password', 1600000000, 1, 20, 'hex', 'abc', 'postgresql', 'set', 2, "
	    "1600000200);"
	    "INSERT INTO key_versions (key_id, version, state, created, tpm_public, "
	    "tpm_private, activated) VALUES (3, 1, 'active', 1600000000, x'0a', x'0b', "
	    "1600000000);"
	    "INSERT INTO key_versions (key_id, version, state, created, tpm_public, "
	    "tpm_private) VALUES (3, 2, 'pre-active', 1600000200, x'0c', x'0d');"
	    "PRAGMA user_version = 3;");
}

static void
test_migrate_v3(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = NULL;
	g_autoptr(TkmsKey) pw = NULL;
	g_autoptr(GError) error = NULL;

	write_v3(f->db);
	store = open_ok(f);
	g_assert_cmpint(sql_int(f->db, "PRAGMA user_version"), ==, TKMS_KEYSTORE_DB_SCHEMA_VERSION);
	pw = tkms_keystore_lookup(store, 1000, "pw", &error);
	g_assert_no_error(error);
	g_assert_cmpint(pw->type, ==, TKMS_KEY_TYPE_PASSWORD);
	g_assert_cmpuint(pw->password.length, ==, 20);
	g_assert_cmpint(pw->password.charset, ==, TKMS_CHARSET_HEX);
	g_assert_cmpstr(pw->password.exclude, ==, "abc");
	g_assert_cmpstr(pw->policy.hook, ==, "postgresql");
	g_assert_cmpint(pw->rotation.step, ==, TKMS_ROTATION_STEP_SET);
	g_assert_cmpuint(pw->rotation.pending_version, ==, 2);
	g_assert_cmpint(pw->rotation.started, ==, 1600000200);
	g_assert_cmpuint(pw->versions->len, ==, 2);
	for (guint i = 0; i < 2; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(pw->versions, i);
		g_assert_nonnull(v->blob.private);
		g_assert_null(v->blob.wrapped);
	}
	g_assert_cmpstr(tkms_key_version_stage(pw, tkms_key_get_version(pw, 2)), ==, "pending");
}

/* Everything a password key carries beside its versions survives the store: its spec, the
 * policy's hook, a rotation under way and the last one that ended. */
static void
test_password_fields(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = open_ok(f);
	g_autoptr(TkmsKey) key = tkms_key_new(1000, "db-password", TKMS_KEY_TYPE_PASSWORD);
	g_autoptr(TkmsKey) idle = tkms_key_new(1000, "idle", TKMS_KEY_TYPE_PASSWORD);
	g_autoptr(GError) error = NULL;
	TkmsKeyVersion *pending;

	key->description = g_strdup("");
	idle->description = g_strdup("");
	for (guint i = 0; i < 3; i++) {
		TkmsTpmBlob blob = {random_bytes(90), random_bytes(130), random_bytes(40 + i)};
		tkms_key_add_version(key, &blob, 1700000000 + i, 0);
	}
	/* version 3 is pending: pre-active without an activation date, 2 is the primary */
	key->primary_version = 2;
	pending = tkms_key_get_version(key, 3);
	tkms_key_version_set_state(pending, TKMS_STATE_PRE_ACTIVE, 1700000002);
	pending->activated = 0;
	key->password.length = 200;
	key->password.charset = TKMS_CHARSET_BASE64URL;
	g_strlcpy(key->password.exclude, "-_0O'\"\\", sizeof(key->password.exclude));
	g_strlcpy(key->policy.hook, "postgresql", sizeof(key->policy.hook));
	key->policy.period = 30 * 86400;
	key->rotation.step = TKMS_ROTATION_STEP_TEST;
	key->rotation.pending_version = 3;
	key->rotation.previous_version = 1;
	key->rotation.started = 1700000002;
	key->rotation.attempts = 2;
	key->rotation.retry_at = 1700003600;
	key->rotation.last_step = TKMS_ROTATION_STEP_ROLLBACK;
	key->rotation.last_time = 1700000001;
	key->rotation.last_version = 3;
	key->rotation.last_ok = FALSE;
	key->rotation.last_reason = g_strdup("psql: FATAL: role \"app\" ******** failed");
	idle->password.length = 8;
	idle->password.charset = TKMS_CHARSET_HEX;
	idle->rotation.last_step = TKMS_ROTATION_STEP_FINISH;
	idle->rotation.last_time = 1700000005;
	idle->rotation.last_version = 4;
	idle->rotation.last_ok = TRUE;
	idle->rotation.last_reason = g_strdup("");
	{
		TkmsTpmBlob blob = {random_bytes(90), random_bytes(130), random_bytes(4096 + 33)};
		tkms_key_add_version(idle, &blob, 1700000000, 0);
	}
	save_ok(store, key);
	save_ok(store, idle);
	for (guint round = 0; round < 2; round++) { /* the same store, then a new one */
		g_autoptr(TkmsKey) got = tkms_keystore_lookup(store, 1000, "db-password", &error);
		g_autoptr(TkmsKey) got_idle = tkms_keystore_lookup(store, 1000, "idle", &error);
		g_assert_no_error(error);
		assert_same_key(got, key);
		assert_same_key(got_idle, idle);
		/* the pending version is never the scheduler's to activate */
		{
			TkmsKeyEvent event;
			guint32 version;
			tkms_key_next_event(got, &event, &version);
			g_assert_cmpint(event, !=, TKMS_KEY_EVENT_ACTIVATE);
		}
		g_assert_cmpstr(tkms_key_version_stage(got, tkms_key_get_version(got, 1)), ==,
				"previous");
		g_assert_cmpstr(tkms_key_version_stage(got, tkms_key_get_version(got, 2)), ==,
				"current");
		g_assert_cmpstr(tkms_key_version_stage(got, tkms_key_get_version(got, 3)), ==,
				"pending");
		g_clear_object(&store);
		store = open_ok(f);
	}
	/* the rotation ends: the fields go back to none */
	key->rotation.step = TKMS_ROTATION_STEP_NONE;
	key->rotation.pending_version = 0;
	g_clear_pointer(&key->rotation.last_reason, g_free);
	save_ok(store, key);
	{
		g_autoptr(TkmsKey) got = tkms_keystore_lookup(store, 1000, "db-password", &error);
		g_assert_no_error(error);
		assert_same_key(got, key);
		g_assert_null(tkms_key_version_stage(got, tkms_key_get_version(got, 3)));
	}
	/* a step that tkmsd never writes is damage, not "no rotation" */
	g_clear_object(&store);
	sql(f->db, "UPDATE keys SET rotation_step = 'bogus' WHERE name = 'db-password'");
	store = open_ok(f);
	{
		g_autoptr(TkmsKey) got = tkms_keystore_lookup(store, 1000, "db-password", &error);
		g_assert_null(got);
		g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
		g_assert_nonnull(strstr(error->message, "damaged"));
	}
}

/* The scheduler's queries: a key's next event is stored with it, found by time. */
static void
test_due(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsKeystore) store = open_ok(f);
	g_autoptr(TkmsKey) a = make_key(1, "rotates", 1);
	g_autoptr(TkmsKey) b = make_key(1, "retires", 2);
	g_autoptr(TkmsKey) c = make_key(1, "quiet", 1);
	g_autoptr(GPtrArray) due = NULL;
	g_autoptr(GError) error = NULL;
	TkmsKeyEvent event;
	guint32 version;
	gint64 when = 0;

	a->policy.period = 100; /* activated 1700000000: due 1700000100 */
	b->policy.deactivate_after = 50; /* v1 superseded 1700000001: due 1700000051 */
	g_assert_cmpint(tkms_key_next_event(a, &event, &version), ==, 1700000100);
	g_assert_cmpint(event, ==, TKMS_KEY_EVENT_ROTATE);
	g_assert_cmpint(tkms_key_next_event(b, &event, &version), ==, 1700000051);
	g_assert_cmpint(event, ==, TKMS_KEY_EVENT_DEACTIVATE);
	g_assert_cmpuint(version, ==, 1);
	g_assert_cmpint(tkms_key_next_event(c, &event, &version), ==, 0);
	save_ok(store, a);
	save_ok(store, b);
	save_ok(store, c);
	g_assert_true(tkms_keystore_next_due(store, &when, &error));
	g_assert_cmpint(when, ==, 1700000051);
	due = tkms_keystore_list_due(store, 1700000050, 10, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(due->len, ==, 0);
	g_clear_pointer(&due, g_ptr_array_unref);
	due = tkms_keystore_list_due(store, 1700000100, 10, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(due->len, ==, 2);
	assert_same_key(g_ptr_array_index(due, 0), b);
	assert_same_key(g_ptr_array_index(due, 1), a);
	/* a key whose policy is removed is no longer due */
	b->policy.deactivate_after = 0;
	save_ok(store, b);
	g_assert_true(tkms_keystore_next_due(store, &when, &error));
	g_assert_cmpint(when, ==, 1700000100);
}

static void
test_newer(Fixture *f, gconstpointer data)
{
	{
		g_autoptr(TkmsKeystore) store = open_ok(f);
		g_autoptr(TkmsKey) key = make_key(1, "n", 1);
		save_ok(store, key);
	}
	{
		g_autofree gchar *newer = g_strdup_printf("PRAGMA user_version = %d",
							  TKMS_KEYSTORE_DB_SCHEMA_VERSION + 1);
		sql(f->db, newer);
	}
	assert_refused(f, "newer tkmsd");
	g_assert_cmpint(sql_int(f->db, "SELECT count(*) FROM keys"), ==, 1);
}

static void
test_damaged_random(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) junk = random_bytes(8192);
	g_assert_true(g_file_set_contents(f->db, g_bytes_get_data(junk, NULL), 8192, NULL));
	assert_refused(f, "damaged");
	/* junk that starts like an SQLite file */
	{
		guint8 *p = g_bytes_unref_to_data(g_steal_pointer(&junk), &(gsize){0});
		memcpy(p, "SQLite format 3", 16);
		g_assert_true(g_file_set_contents(f->db, (gchar *)p, 8192, NULL));
		g_free(p);
	}
	assert_refused(f, "damaged");
	/* too short for a header */
	g_assert_true(g_file_set_contents(f->db, "SQLite", 6, NULL));
	assert_refused(f, "damaged");
}

static void
test_damaged_truncated(Fixture *f, gconstpointer data)
{
	GStatBuf st;

	{
		g_autoptr(TkmsKeystore) store = open_ok(f);
		for (guint i = 0; i < 200; i++) {
			g_autofree gchar *name = g_strdup_printf("key-%03u", i);
			g_autoptr(TkmsKey) key = make_key(1000, name, 2);
			save_ok(store, key);
		}
	}
	g_assert_cmpint(g_stat(f->db, &st), ==, 0);
	g_assert_cmpint(st.st_size, >, 16 * 4096);
	g_assert_cmpint(truncate(f->db, st.st_size / 2), ==, 0);
	assert_refused(f, "truncated");
}

static void
test_foreign(Fixture *f, gconstpointer data)
{
	/* someone else's database */
	sql(f->db, "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);"
		   "INSERT INTO notes (text) VALUES ('mine');");
	assert_refused(f, "another application");
	/* with its own application_id */
	g_unlink(f->db);
	sql(f->db, "PRAGMA application_id = 1234; CREATE TABLE t (x);");
	assert_refused(f, "another application");
	/* a WAL database of someone else: not even a -wal or -shm appears */
	g_unlink(f->db);
	sql(f->db, "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);");
	assert_refused(f, "another application");
	/* ours, with a table that the current schema does not have */
	g_unlink(f->db);
	{
		g_autoptr(TkmsKeystore) store = open_ok(f);
	}
	sql(f->db, "CREATE TABLE extra (x)");
	assert_refused(f, "extra");
	/* ours, without a table it needs */
	g_unlink(f->db);
	{
		g_autoptr(TkmsKeystore) store = open_ok(f);
	}
	sql(f->db, "DROP TABLE key_versions");
	assert_refused(f, "not a tkms key store of schema " G_STRINGIFY(
				  TKMS_KEYSTORE_DB_SCHEMA_VERSION));
}

/* ---- the import of the JSON store ---- */

static gchar *
b64(GBytes *b)
{
	return b ? g_base64_encode(g_bytes_get_data(b, NULL), g_bytes_get_size(b)) : g_strdup("");
}

/* A document as the JSON store of tkms before SQLite wrote it. */
static void
write_json(const gchar *keys_dir, TkmsKey *key)
{
	g_autofree gchar *uid = g_strdup_printf("%u", key->owner);
	g_autofree gchar *dir = g_build_filename(keys_dir, uid, NULL);
	g_autofree gchar *file = g_strconcat(key->name, ".json", NULL);
	g_autofree gchar *path = g_build_filename(dir, file, NULL);
	GString *s = g_string_new(NULL);

	g_string_append_printf(s,
			       "{\n  \"format\" : 1,\n  \"name\" : \"%s\",\n  \"owner\" : %u,\n"
			       "  \"type\" : \"%s\",\n  \"created\" : %" G_GINT64_FORMAT ",\n"
			       "  \"description\" : \"%s\",\n  \"pcrs\" : %u,\n"
			       "  \"primary-version\" : %u,\n  \"versions\" : [",
			       key->name, key->owner, tkms_key_type_to_string(key->type),
			       key->created, key->description, key->pcrs, key->primary_version);
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		g_autofree gchar *pub = b64(v->blob.public);
		g_autofree gchar *priv = b64(v->blob.private);
		g_string_append_printf(s,
				       "%s\n    {\n      \"version\" : %u,\n      \"state\" : "
				       "\"%s\",\n      \"created\" : %" G_GINT64_FORMAT
				       ",\n      \"tpm-public\" : \"%s\",\n      \"tpm-private\" : "
				       "\"%s\"\n    }",
				       i ? "," : "", v->version, v->state, v->created, pub, priv);
	}
	g_string_append(s, "\n  ]\n}");
	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	g_assert_true(g_file_set_contents(path, s->str, s->len, NULL));
	g_string_free(s, TRUE);
}

static GPtrArray *
make_json_store(Fixture *f)
{
	g_autofree gchar *keys_dir = g_build_filename(f->dir, "keys", NULL);
	GPtrArray *keys = g_ptr_array_new_with_free_func((GDestroyNotify)tkms_key_unref);
	const guint32 owners[] = {0, 1000, 1001};

	for (guint o = 0; o < G_N_ELEMENTS(owners); o++)
		for (guint i = 0; i < 4; i++) {
			g_autofree gchar *name = g_strdup_printf("k%u.%c", i, 'a' + o);
			TkmsKey *key = make_key(owners[o], name, 1 + i % 3);
			key->type = i % 4;
			if (i == 3)
				destroy(key);
			/* the JSON store of issue 6 knew a version's creation date only: an
			 * imported version was activated when created */
			for (guint j = 0; j < key->versions->len; j++) {
				TkmsKeyVersion *v = g_ptr_array_index(key->versions, j);
				v->superseded = 0;
				v->activated = v->created;
			}
			write_json(keys_dir, key);
			g_ptr_array_add(keys, key);
		}
	{
		/* a temporary file left by a crash mid-write is not a document */
		g_autofree gchar *tmp = g_build_filename(keys_dir, "1000", "k9.json.X1Y2Z3", NULL);
		g_assert_true(g_file_set_contents(tmp, "{ \"form", -1, NULL));
	}
	return keys;
}

static void
test_import(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) keys = make_json_store(f);
	g_autofree gchar *keys_dir = g_build_filename(f->dir, "keys", NULL);
	g_autofree gchar *json_before = tree_snapshot(keys_dir);
	g_autoptr(TkmsKeystore) store = open_ok(f);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *listing = dir_listing(f->dir);
	g_auto(GStrv) names = g_strsplit(listing, " ", -1);
	g_autofree gchar *aside = NULL;
	g_autoptr(GPtrArray) all = NULL;

	/* moved aside, intact */
	g_assert_false(g_file_test(keys_dir, G_FILE_TEST_EXISTS));
	for (guint i = 0; names[i] != NULL; i++)
		if (g_str_has_prefix(names[i], "keys.imported-"))
			aside = g_build_filename(f->dir, names[i], NULL);
	g_assert_nonnull(aside);
	{
		g_autofree gchar *json_after = tree_snapshot(aside);
		g_assert_cmpstr(json_before, ==, json_after);
	}
	/* every key, as it was */
	for (guint i = 0; i < keys->len; i++) {
		TkmsKey *want = g_ptr_array_index(keys, i);
		g_autoptr(TkmsKey) got = tkms_keystore_lookup(store, want->owner, want->name, &error);
		g_assert_no_error(error);
		assert_same_key(got, want);
	}
	all = tkms_keystore_list(store, TKMS_KEYSTORE_ALL_OWNERS, 0, NULL, 1000, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(all->len, ==, keys->len);
	/* the destroyed ones do not count against the quota: 3 alive of each owner */
	g_assert_true(tkms_keystore_reserve(store, 1000, "new", 4, &error));
	g_assert_no_error(error);
	g_assert_false(tkms_keystore_reserve(store, 1001, "new", 3, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED);
	g_clear_error(&error);

	/* imported once: the next start opens keys.db and does not look for keys/ */
	g_clear_object(&store);
	store = open_ok(f);
	{
		g_autoptr(TkmsKey) got = tkms_keystore_lookup(store, 1001, "k0.c", &error);
		g_assert_no_error(error);
	}
}

/* A bad document: nothing imported, the JSON store as it was, no database left behind. */
static void
import_refused(Fixture *f, const gchar *rel_path, const gchar *contents)
{
	g_autoptr(GPtrArray) keys = make_json_store(f);
	g_autofree gchar *keys_dir = g_build_filename(f->dir, "keys", NULL);
	g_autofree gchar *bad = g_build_filename(keys_dir, rel_path, NULL);
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	g_autofree gchar *listing_before = NULL;
	g_autofree gchar *listing_after = NULL;

	g_assert_true(g_file_set_contents(bad, contents, -1, NULL));
	before = tree_snapshot(keys_dir);
	listing_before = dir_listing(f->dir);
	for (guint attempt = 0; attempt < 2; attempt++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(TkmsKeystore) store = tkms_keystore_new(f->dir, &error);
		g_assert_null(store);
		g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
		g_test_message("refused: %s", error->message);
		g_assert_nonnull(strstr(error->message, bad));
	}
	after = tree_snapshot(keys_dir);
	g_assert_cmpstr(before, ==, after);
	listing_after = dir_listing(f->dir);
	g_assert_cmpstr(listing_before, ==, listing_after);
	g_assert_cmpstr(listing_after, ==, "keys");
	rm_rf(keys_dir);
}

static void
test_import_bad(Fixture *f, gconstpointer data)
{
	/* not JSON */
	import_refused(f, "1000/k1.b.json", "{ \"format\" : 1, \"name\" : ");
	/* JSON, not a key */
	import_refused(f, "1000/zz.json", "[1, 2, 3]");
	/* a key of another owner in this uid's directory */
	import_refused(f, "1001/k0.c.json",
		       "{\"format\": 1, \"name\": \"k0.c\", \"owner\": 1000, \"type\": "
		       "\"hmac-sha256\", \"created\": 1, \"description\": \"\", \"pcrs\": 0, "
		       "\"primary-version\": 0, \"versions\": []}");
	/* an unknown type */
	import_refused(f, "0/k0.a.json",
		       "{\"format\": 1, \"name\": \"k0.a\", \"owner\": 0, \"type\": \"des\", "
		       "\"created\": 1, \"description\": \"\", \"pcrs\": 0, "
		       "\"primary-version\": 0, \"versions\": []}");
	/* a blob that is not base64 */
	import_refused(f, "0/k0.a.json",
		       "{\"format\": 1, \"name\": \"k0.a\", \"owner\": 0, \"type\": "
		       "\"aes-256-gcm\", \"created\": 1, \"description\": \"\", \"pcrs\": 0, "
		       "\"primary-version\": 1, \"versions\": [{\"version\": 1, \"state\": "
		       "\"active\", \"created\": 1, \"tpm-public\": \"AAEC!!\", \"tpm-private\": "
		       "\"AAEC\"}]}");
	/* unreadable: a directory where a document should be */
	{
		g_autofree gchar *keys_dir = g_build_filename(f->dir, "keys", NULL);
		g_autoptr(GPtrArray) keys = make_json_store(f);
		g_autofree gchar *bad = g_build_filename(keys_dir, "0", "dir.json", NULL);
		g_autoptr(GError) error = NULL;
		g_autoptr(TkmsKeystore) store = NULL;
		g_assert_cmpint(g_mkdir(bad, 0700), ==, 0);
		store = tkms_keystore_new(f->dir, &error);
		g_assert_null(store);
		g_test_message("refused: %s", error->message);
		g_assert_nonnull(strstr(error->message, bad));
		g_assert_false(g_file_test(f->db, G_FILE_TEST_EXISTS));
		rm_rf(keys_dir);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)
	ADD("/keystore/new", test_new);
	ADD("/keystore/save-lookup", test_save_lookup);
	ADD("/keystore/save-order", test_save_order);
	ADD("/keystore/save-atomic", test_save_atomic);
	ADD("/keystore/list", test_list);
	ADD("/keystore/has-owner", test_has_owner);
	ADD("/keystore/reserve-quota", test_reserve);
	ADD("/keystore/reopen-wal", test_reopen_wal);
	ADD("/keystore/migrate-v0", test_migrate_v0);
	ADD("/keystore/migrate-v1", test_migrate_v1);
	ADD("/keystore/migrate-v2", test_migrate_v2);
	ADD("/keystore/migrate-v3", test_migrate_v3);
	ADD("/keystore/password-fields", test_password_fields);
	ADD("/keystore/due", test_due);
	ADD("/keystore/refuse/newer", test_newer);
	ADD("/keystore/refuse/random", test_damaged_random);
	ADD("/keystore/refuse/truncated", test_damaged_truncated);
	ADD("/keystore/refuse/foreign", test_foreign);
	ADD("/keystore/import", test_import);
	ADD("/keystore/import-bad", test_import_bad);
	return g_test_run();
}
