/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test"

#include "tkms-test-store.h"

#include <gio/gio.h>
#include <sqlite3.h>
#include <string.h>

#define STORE_FILE "keys.db"

gboolean
tkms_test_store_is_store_file(const gchar *name)
{
	return g_str_equal(name, STORE_FILE) || g_str_equal(name, STORE_FILE "-wal") ||
	       g_str_equal(name, STORE_FILE "-shm") || g_str_equal(name, STORE_FILE "-journal");
}

static sqlite3 *
open_store(const gchar *state_dir)
{
	g_autofree gchar *path = g_build_filename(state_dir, STORE_FILE, NULL);
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		g_error("cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_busy_timeout(db, 10000);
	return db;
}

static sqlite3_stmt *
prepare(sqlite3 *db, const gchar *sql)
{
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		g_error("%s: %s", sql, sqlite3_errmsg(db));
	return stmt;
}

static void
append_row(GString *out, sqlite3_stmt *stmt)
{
	for (gint i = 0; i < sqlite3_column_count(stmt); i++) {
		if (i > 0)
			g_string_append_c(out, '|');
		switch (sqlite3_column_type(stmt, i)) {
		case SQLITE_NULL:
			g_string_append(out, "NULL");
			break;
		case SQLITE_INTEGER:
			g_string_append_printf(out, "%lld", (long long)sqlite3_column_int64(stmt, i));
			break;
		case SQLITE_FLOAT:
			g_string_append_printf(out, "%.17g", sqlite3_column_double(stmt, i));
			break;
		case SQLITE_TEXT:
			g_string_append_printf(out, "'%s'", sqlite3_column_text(stmt, i));
			break;
		default: {
			const guint8 *p = sqlite3_column_blob(stmt, i);
			gint n = sqlite3_column_bytes(stmt, i);
			g_string_append(out, "x'");
			for (gint j = 0; j < n; j++)
				g_string_append_printf(out, "%02x", p[j]);
			g_string_append_c(out, '\'');
		}
		}
	}
	g_string_append_c(out, '\n');
}

/* Every row of the query, ordered by all its columns (not by where SQLite put them). */
static void
append_rows(GString *out, sqlite3 *db, const gchar *select)
{
	g_autofree gchar *probe = g_strdup_printf("SELECT * FROM (%s) LIMIT 0", select);
	g_autoptr(GString) order = g_string_new(NULL);
	g_autofree gchar *sql = NULL;
	sqlite3_stmt *stmt = prepare(db, probe);
	gint rc;

	for (gint i = 1; i <= sqlite3_column_count(stmt); i++)
		g_string_append_printf(order, "%s%d", i > 1 ? ", " : "", i);
	sqlite3_finalize(stmt);
	sql = g_strdup_printf("SELECT * FROM (%s) ORDER BY %s", select, order->str);
	stmt = prepare(db, sql);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		append_row(out, stmt);
	if (rc != SQLITE_DONE)
		g_error("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_finalize(stmt);
}

/* key_versions of schema 2 but its usage counts */
#define VERSION_COLUMNS_BUT_USES                                                               \
	"key_id, version, state, created, tpm_public, tpm_private, activated, superseded, "    \
	"deactivated, destroy_at, destroyed, prior_state"

void
tkms_test_store_snapshot(const gchar *state_dir, GHashTable *snap)
{
	sqlite3 *db = open_store(state_dir);
	GString *rest = g_string_new(NULL);
	g_autoptr(GPtrArray) tables = g_ptr_array_new_with_free_func(g_free);
	sqlite3_stmt *stmt;
	gint rc;

	/* one read transaction: every entry from the same state */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		g_error("BEGIN: %s", sqlite3_errmsg(db));
	g_string_append(rest, "schema:\n");
	append_rows(rest, db, "SELECT type, name, tbl_name, sql FROM sqlite_schema");
	g_string_append(rest, "pragmas:\n");
	append_rows(rest, db, "SELECT * FROM pragma_user_version, pragma_application_id");
	stmt = prepare(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name");
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_ptr_array_add(tables, g_strdup((const gchar *)sqlite3_column_text(stmt, 0)));
	sqlite3_finalize(stmt);
	for (guint i = 0; i < tables->len; i++) {
		const gchar *t = g_ptr_array_index(tables, i);
		g_autofree gchar *select = NULL;
		if (g_str_equal(t, "keys"))
			continue;
		if (g_str_equal(t, "key_versions"))
			select = g_strdup("SELECT * FROM key_versions WHERE key_id NOT IN "
					  "(SELECT id FROM keys)");
		else
			select = g_strdup_printf("SELECT * FROM \"%s\"", t);
		g_string_append_printf(rest, "table %s:\n", t);
		append_rows(rest, db, select);
	}
	g_hash_table_replace(snap, g_strdup(STORE_FILE), g_string_free(rest, FALSE));

	if (g_ptr_array_find_with_equal_func(tables, "keys", g_str_equal, NULL)) {
		sqlite3_stmt *probe = NULL;
		gboolean counted = sqlite3_prepare_v2(db, "SELECT uses FROM key_versions LIMIT 0",
						      -1, &probe, NULL) == SQLITE_OK;
		sqlite3_finalize(probe);
		stmt = prepare(db, "SELECT id, owner, name FROM keys");
		while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
			gint64 id = sqlite3_column_int64(stmt, 0);
			g_autofree gchar *key_sql = g_strdup_printf(
				"SELECT * FROM keys WHERE id = %" G_GINT64_FORMAT, id);
			/* without the usage counts, which every allowed protect call may raise
			 * (a reservation of uses): a snapshot compares what keys are */
			g_autofree gchar *versions_sql = g_strdup_printf(
				"SELECT %s FROM key_versions WHERE key_id = %" G_GINT64_FORMAT,
				counted ? VERSION_COLUMNS_BUT_USES : "*", id);
			GString *entry = g_string_new(NULL);
			append_rows(entry, db, key_sql);
			append_rows(entry, db, versions_sql);
			g_hash_table_replace(snap,
					     g_strdup_printf(STORE_FILE "/%lld/%s",
							     (long long)sqlite3_column_int64(stmt, 1),
							     sqlite3_column_text(stmt, 2)),
					     g_string_free(entry, FALSE));
		}
		if (rc != SQLITE_DONE)
			g_error("reading keys: %s", sqlite3_errmsg(db));
		sqlite3_finalize(stmt);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
}

static gint
cmp_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const gchar *const *)a, *(const gchar *const *)b);
}

gchar *
tkms_test_store_dump(const gchar *state_dir)
{
	g_autoptr(GHashTable) snap = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(GPtrArray) names = g_ptr_array_new();
	GString *out = g_string_new(NULL);
	GHashTableIter iter;
	gpointer name;

	tkms_test_store_snapshot(state_dir, snap);
	g_hash_table_iter_init(&iter, snap);
	while (g_hash_table_iter_next(&iter, &name, NULL))
		g_ptr_array_add(names, name);
	g_ptr_array_sort(names, cmp_str);
	for (guint i = 0; i < names->len; i++)
		g_string_append_printf(out, "== %s\n%s", (const gchar *)names->pdata[i],
				       (const gchar *)g_hash_table_lookup(snap, names->pdata[i]));
	return g_string_free(out, FALSE);
}

gboolean
tkms_test_store_has_key(const gchar *state_dir, guint32 owner, const gchar *name)
{
	sqlite3 *db = open_store(state_dir);
	sqlite3_stmt *stmt = prepare(db, "SELECT 1 FROM keys WHERE owner = ?1 AND name = ?2");
	gboolean found;

	sqlite3_bind_int64(stmt, 1, owner);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	found = sqlite3_step(stmt) == SQLITE_ROW;
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return found;
}

guint64
tkms_test_store_count_keys(const gchar *state_dir)
{
	sqlite3 *db = open_store(state_dir);
	sqlite3_stmt *stmt = prepare(db, "SELECT count(*) FROM keys");
	guint64 n;

	if (sqlite3_step(stmt) != SQLITE_ROW)
		g_error("counting keys: %s", sqlite3_errmsg(db));
	n = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return n;
}

static gboolean
set_sql_error(sqlite3 *db, const gchar *what, GError **error)
{
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what, sqlite3_errmsg(db));
	return FALSE;
}

/* Runs stmt to its end; how many rows it changed in *changes. */
static gboolean
run_stmt(sqlite3 *db, sqlite3_stmt *stmt, const gchar *what, gint64 *changes, GError **error)
{
	gint rc = sqlite3_step(stmt);

	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return set_sql_error(db, what, error);
	if (changes != NULL)
		*changes = sqlite3_changes64(db);
	return TRUE;
}

static gboolean
clone_rows(sqlite3 *db, guint32 owner, const gchar *name, const gchar *prefix, guint count,
	   const gchar *description, GError **error)
{
	/* the copies get ids above every existing one (an INTEGER PRIMARY KEY takes max + 1) */
	sqlite3_stmt *stmt = prepare(db, "SELECT coalesce(max(id), 0) FROM keys");
	gint64 max_id, changes = 0;

	if (sqlite3_step(stmt) != SQLITE_ROW) {
		sqlite3_finalize(stmt);
		return set_sql_error(db, "reading the largest key id", error);
	}
	max_id = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);

	stmt = prepare(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
			   "WHERE i < ?3) "
			   "INSERT INTO keys (owner, name, type, description, created, pcrs, "
			   "primary_version) SELECT k.owner, ?4 || printf('%06d', n.i), k.type, "
			   "coalesce(?5, k.description), k.created, k.pcrs, k.primary_version "
			   "FROM n, keys AS k WHERE k.owner = ?1 AND k.name = ?2");
	sqlite3_bind_int64(stmt, 1, owner);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, count);
	sqlite3_bind_text(stmt, 4, prefix, -1, SQLITE_STATIC);
	if (description != NULL)
		sqlite3_bind_text(stmt, 5, description, -1, SQLITE_STATIC);
	if (!run_stmt(db, stmt, "copying the key's row", &changes, error))
		return FALSE;
	if (changes != count) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no key %u:%s to copy", owner,
			    name);
		return FALSE;
	}

	stmt = prepare(db, "INSERT INTO key_versions (key_id, version, state, created, "
			   "tpm_public, tpm_private) SELECT c.id, v.version, v.state, v.created, "
			   "v.tpm_public, v.tpm_private FROM keys AS c, keys AS k JOIN "
			   "key_versions AS v ON v.key_id = k.id WHERE k.owner = ?1 AND "
			   "k.name = ?2 AND c.id > ?3");
	sqlite3_bind_int64(stmt, 1, owner);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, max_id);
	return run_stmt(db, stmt, "copying the key's versions", NULL, error);
}

gboolean
tkms_test_store_clone_key(const gchar *state_dir, guint32 owner, const gchar *name,
			  const gchar *prefix, guint count, const gchar *description,
			  GError **error)
{
	g_autofree gchar *path = g_build_filename(state_dir, STORE_FILE, NULL);
	sqlite3 *db = NULL;
	gboolean ok;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", path,
			    db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return FALSE;
	}
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db, "PRAGMA foreign_keys = ON; BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		ok = set_sql_error(db, "BEGIN", error);
	} else {
		ok = clone_rows(db, owner, name, prefix, count, description, error);
		if (ok && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			ok = set_sql_error(db, "COMMIT", error);
		if (!ok)
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
	if (!ok)
		g_prefix_error(error, "%s: ", path);
	sqlite3_close(db);
	return ok;
}
