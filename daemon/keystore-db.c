/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-keystore"

/* The key store's file. It holds only TPM blobs (wrapped by this TPM's storage root key) and
 * passwords encrypted under keys sealed in them, never key material. A file that is not ours, or
 * not whole, is refused and left as it is: recreating it would silently lose every key. */

#include "keystore-db.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tkms-error.h"

#define BUSY_TIMEOUT_MS 10000
#define HEADER_SIZE 100

/* Schema migrations: migrations[n] takes a file from user_version n to n + 1. Never edit one
 * that has shipped; add the next. */
static const gchar *const migrations[] = {
	/* 0 -> 1: keys and their versions */
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
	");",
	/* 1 -> 2: the life cycle (issue 7): version states with their dates and usage counts,
	 * rotation policies, and each key's next due event for the scheduler. Keys made before
	 * keep their versions as they were (active, primary), activated when created. */
	"ALTER TABLE keys ADD COLUMN rotation_period INTEGER NOT NULL DEFAULT 0;"
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
	"CREATE INDEX keys_next_due ON keys (next_due) WHERE next_due > 0;",
	/* 2 -> 3: password keys (issue 8): how their versions are generated, the rotation
	 * policy's hook, the rotation under way (its step is the one that runs next, so that a
	 * restarted tkmsd resumes there) and the last one that ended. Steps and charsets are
	 * stored by name; other key types keep the defaults. */
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
	"ALTER TABLE keys ADD COLUMN last_rotation_reason TEXT;",
	/* 3 -> 4: a password version's password, AES-256-GCM under the 32 bytes sealed in its
	 * TPM object (a sealed object holds at most 128 bytes; a password may have 4096) */
	"ALTER TABLE key_versions ADD COLUMN wrapped_secret BLOB;",
};
G_STATIC_ASSERT(G_N_ELEMENTS(migrations) == TKMS_KEYSTORE_DB_SCHEMA_VERSION);

/* The tables of each schema version, sorted: anything else means the file is not ours. */
static const gchar *const tables_v1[] = {"key_versions", "keys", NULL};

static const gchar *const remedy =
	"tkmsd does not recreate it; restore it from a backup of the state directory, or move it "
	"away to start with an empty key store";

void
tkms_keystore_db_set_error(sqlite3 *db, GError **error, const gchar *what)
{
	const gchar *file = db ? sqlite3_db_filename(db, "main") : NULL;
	gint code = db ? sqlite3_errcode(db) : SQLITE_NOMEM;

	if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The key store %s is damaged (%s while %s); %s", file ? file : "",
			    sqlite3_errmsg(db), what, remedy);
	else
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "Cannot use the key store %s: %s (while %s)", file ? file : "",
			    db ? sqlite3_errmsg(db) : "out of memory", what);
}

gboolean
tkms_keystore_db_exec(sqlite3 *db, const gchar *sql, GError **error)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return TRUE;
	tkms_keystore_db_set_error(db, error, sql);
	return FALSE;
}

static gboolean
query_int(sqlite3 *db, const gchar *sql, gint64 *out, GError **error)
{
	sqlite3_stmt *stmt = NULL;
	gint rc;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		tkms_keystore_db_set_error(db, error, sql);
		return FALSE;
	}
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		tkms_keystore_db_set_error(db, error, sql);
		sqlite3_finalize(stmt);
		return FALSE;
	}
	*out = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	return TRUE;
}

/* The names of the tables that are not SQLite's own, sorted. */
static GStrv
list_tables(sqlite3 *db, GError **error)
{
	const gchar *sql = "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE "
			   "'sqlite\\_%' ESCAPE '\\' ORDER BY name";
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	sqlite3_stmt *stmt = NULL;
	gint rc;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		tkms_keystore_db_set_error(db, error, "reading its schema");
		return NULL;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_strv_builder_add(b, (const gchar *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		tkms_keystore_db_set_error(db, error, "reading its schema");
		return NULL;
	}
	return g_strv_builder_end(b);
}

static gboolean
configure(sqlite3 *db, gboolean wal, GError **error)
{
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(db, TRUE);
	/* secure_delete: a destroyed version's blobs are overwritten in the file, not left in a
	 * free page */
	return tkms_keystore_db_exec(db,
				     wal ? "PRAGMA journal_mode = WAL;"
					 : "PRAGMA journal_mode = DELETE;",
				     error) &&
	       tkms_keystore_db_exec(db,
				     "PRAGMA synchronous = FULL;"
				     "PRAGMA foreign_keys = ON;"
				     "PRAGMA secure_delete = ON;",
				     error);
}

static gboolean
migrate(sqlite3 *db, gint64 from, GError **error)
{
	for (gint64 v = from; v < TKMS_KEYSTORE_DB_SCHEMA_VERSION; v++) {
		g_autofree gchar *set = g_strdup_printf(
			"PRAGMA application_id = %d; PRAGMA user_version = %" G_GINT64_FORMAT ";",
			TKMS_KEYSTORE_DB_APPLICATION_ID, v + 1);
		if (!tkms_keystore_db_exec(db, "BEGIN IMMEDIATE", error))
			return FALSE;
		if (!tkms_keystore_db_exec(db, migrations[v], error) ||
		    !tkms_keystore_db_exec(db, set, error) ||
		    !tkms_keystore_db_exec(db, "COMMIT", error)) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return FALSE;
		}
		if (from > 0)
			g_message("Key store %s: schema migrated from version %" G_GINT64_FORMAT
				  " to %" G_GINT64_FORMAT,
				  sqlite3_db_filename(db, "main"), v, v + 1);
	}
	return TRUE;
}

static sqlite3 *
open_connection(const gchar *path, gint flags, GError **error)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot open the key store %s: %s",
			    path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

sqlite3 *
tkms_keystore_db_create(const gchar *path, GError **error)
{
	sqlite3 *db;
	gint fd;

	/* created by us first, so that it is never readable by others, not even for a moment */
	fd = g_open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot create %s: %s", path,
			    g_strerror(errno));
		return NULL;
	}
	close(fd);
	db = open_connection(path, SQLITE_OPEN_READWRITE, error);
	if (db == NULL)
		return NULL;
	if (!configure(db, FALSE, error) || !migrate(db, 0, error)) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static guint32
be32(const guint8 *p)
{
	return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

typedef enum {
	FILE_EMPTY, /* 0 bytes: what SQLite makes of a new file before its first write */
	FILE_OURS,
	FILE_UNMARKED, /* an SQLite database without an application_id */
} FileKind;

/* Reads the file's header without SQLite, so that a file that is not ours is never opened
 * for writing (an open could create a -wal beside it, or roll back its journal). */
static gboolean
check_header(const gchar *path, FileKind *kind, GError **error)
{
	g_autofree gchar *wal = g_strconcat(path, "-wal", NULL);
	guint8 h[HEADER_SIZE];
	GStatBuf st, wst;
	guint32 page_size, pages, app_id;
	gssize n;
	gint fd;

	fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0 || fstat(fd, &st) != 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot read the key store %s: %s",
			    path, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return FALSE;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The key store %s is not a regular file; %s", path, remedy);
		return FALSE;
	}
	if (st.st_size == 0) {
		close(fd);
		*kind = FILE_EMPTY;
		return TRUE;
	}
	n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (n != sizeof(h) || memcmp(h, "SQLite format 3", 16) != 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The key store %s is damaged: it is not an SQLite database; %s", path,
			    remedy);
		return FALSE;
	}
	page_size = (guint32)h[16] << 8 | h[17];
	if (page_size == 1)
		page_size = 65536;
	/* the fields every SQLite header has fixed: junk behind the magic is damage */
	if (page_size < 512 || (page_size & (page_size - 1)) != 0 || h[18] < 1 || h[18] > 2 ||
	    h[19] < 1 || h[19] > 2 || h[21] != 64 || h[22] != 32 || h[23] != 32) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The key store %s is damaged: its SQLite header is invalid; %s", path,
			    remedy);
		return FALSE;
	}
	pages = be32(h + 28);
	app_id = be32(h + 68);
	if (app_id != 0 && app_id != TKMS_KEYSTORE_DB_APPLICATION_ID) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "%s is not a tkms key store: it belongs to another application "
			    "(application_id 0x%08x); move it away, tkmsd does not overwrite it",
			    path, app_id);
		return FALSE;
	}
	/* The page count is valid when the change counter matches "version valid for". A
	 * shorter file lost pages, unless a WAL still holds them (a checkpoint was cut short). */
	if (pages > 0 && be32(h + 24) == be32(h + 92) &&
	    (guint64)pages * page_size > (guint64)st.st_size &&
	    !(g_stat(wal, &wst) == 0 && wst.st_size > 0)) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The key store %s is damaged: it is truncated (%" G_GOFFSET_FORMAT
			    " of %" G_GUINT64_FORMAT " bytes); %s",
			    path, (goffset)st.st_size, (guint64)pages * page_size, remedy);
		return FALSE;
	}
	*kind = app_id == 0 ? FILE_UNMARKED : FILE_OURS;
	return TRUE;
}

/* An unmarked SQLite file is ours to migrate only if it is empty: no table, version 0. It is
 * read immutable: nothing is written to it or beside it. */
static gboolean
check_unmarked(const gchar *path, GError **error)
{
	g_autofree gchar *escaped = g_uri_escape_string(path, "/", FALSE);
	g_autofree gchar *uri = g_strconcat("file:", escaped, "?immutable=1", NULL);
	sqlite3 *db;
	gint64 version = 0, objects = 0;

	db = open_connection(uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, error);
	if (db == NULL)
		return FALSE;
	if (!query_int(db, "PRAGMA user_version", &version, error) ||
	    !query_int(db, "SELECT count(*) FROM sqlite_schema", &objects, error)) {
		sqlite3_close(db);
		return FALSE;
	}
	sqlite3_close(db);
	if (version != 0 || objects != 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "%s is not a tkms key store: it is another application's SQLite "
			    "database (no tkms application_id, %" G_GINT64_FORMAT
			    " schema objects); move it away, tkmsd does not overwrite it",
			    path, objects);
		return FALSE;
	}
	return TRUE;
}

static gboolean
check_schema(sqlite3 *db, const gchar *path, gint64 version, GError **error)
{
	g_auto(GStrv) tables = list_tables(db, error);
	g_autofree gchar *found = NULL;
	g_autofree gchar *want = NULL;

	if (tables == NULL)
		return FALSE;
	if (version == 0 && tables[0] == NULL)
		return TRUE;
	/* every schema version so far has the same tables */
	if (version >= 1 && g_strv_equal((const gchar *const *)tables, tables_v1))
		return TRUE;
	found = g_strjoinv(", ", tables);
	want = version >= 1 ? g_strjoinv(", ", (gchar **)tables_v1) : g_strdup("none");
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
		    "%s is not a tkms key store of schema %" G_GINT64_FORMAT
		    ": it has the tables (%s), not (%s); %s",
		    path, version, found, want, remedy);
	return FALSE;
}

sqlite3 *
tkms_keystore_db_open(const gchar *path, GError **error)
{
	FileKind kind;
	sqlite3 *db;
	gint64 app_id = 0, version = 0;

	if (!check_header(path, &kind, error))
		return NULL;
	if (kind == FILE_UNMARKED && !check_unmarked(path, error))
		return NULL;
	db = open_connection(path, SQLITE_OPEN_READWRITE, error);
	if (db == NULL)
		return NULL;
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(db, TRUE);
	/* again through SQLite, which also sees what a WAL holds */
	if (!query_int(db, "PRAGMA application_id", &app_id, error) ||
	    !query_int(db, "PRAGMA user_version", &version, error))
		goto fail;
	if (app_id != TKMS_KEYSTORE_DB_APPLICATION_ID && !(app_id == 0 && version == 0)) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "%s is not a tkms key store (application_id 0x%08x); move it away, "
			    "tkmsd does not overwrite it",
			    path, (guint32)app_id);
		goto fail;
	}
	if (version > TKMS_KEYSTORE_DB_SCHEMA_VERSION) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The key store %s has schema version %" G_GINT64_FORMAT
			    ", written by a newer tkmsd (this one knows up to %d); run that newer "
			    "tkmsd, or restore a backup of the state directory made by this version",
			    path, version, TKMS_KEYSTORE_DB_SCHEMA_VERSION);
		goto fail;
	}
	if (version < 0 || !check_schema(db, path, version, error))
		goto fail;
	if (!configure(db, TRUE, error) || !migrate(db, version, error))
		goto fail;
	return db;
fail:
	sqlite3_close(db);
	return NULL;
}

sqlite3 *
tkms_keystore_db_open_reader(const gchar *path, GError **error)
{
	sqlite3 *db = open_connection(path, SQLITE_OPEN_READWRITE, error);

	if (db == NULL)
		return NULL;
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(db, TRUE);
	/* query_only: this connection can never write, whatever a bug asks of it */
	if (!tkms_keystore_db_exec(db,
				   "PRAGMA foreign_keys = ON;"
				   "PRAGMA query_only = ON;",
				   error)) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

gboolean
tkms_keystore_db_key_is_alive(TkmsKey *key)
{
	TkmsKeyVersion *v = tkms_key_get_version(key, key->primary_version);
	return !(v != NULL && g_strcmp0(v->state, "destroyed") == 0);
}

static gboolean
bind_blob(sqlite3_stmt *stmt, gint col, GBytes *bytes)
{
	gsize len = 0;
	const void *data;

	if (bytes == NULL)
		return sqlite3_bind_null(stmt, col) == SQLITE_OK;
	data = g_bytes_get_data(bytes, &len);
	return sqlite3_bind_blob64(stmt, col, data ? data : "", len, SQLITE_TRANSIENT) ==
	       SQLITE_OK;
}

/* Whether the stored key's primary version is alive; FALSE with *id 0 if not stored. */
static gboolean
find_stored(sqlite3 *db, TkmsKey *key, gint64 *id, gboolean *alive, GError **error)
{
	const gchar *sql = "SELECT k.id, v.state FROM keys AS k LEFT JOIN key_versions AS v "
			   "ON v.key_id = k.id AND v.version = k.primary_version "
			   "WHERE k.owner = ?1 AND k.name = ?2";
	sqlite3_stmt *stmt = NULL;
	gint rc;

	*id = 0;
	*alive = FALSE;
	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(stmt, 1, key->owner);
	sqlite3_bind_text(stmt, 2, key->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const gchar *state = (const gchar *)sqlite3_column_text(stmt, 1);
		*id = sqlite3_column_int64(stmt, 0);
		*alive = g_strcmp0(state, "destroyed") != 0;
	} else if (rc != SQLITE_DONE) {
		goto fail;
	}
	sqlite3_finalize(stmt);
	return TRUE;
fail:
	tkms_keystore_db_set_error(db, error, "reading a key");
	sqlite3_finalize(stmt);
	return FALSE;
}

static gboolean
step_done(sqlite3 *db, sqlite3_stmt *stmt, GError **error)
{
	gint rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE)
		return TRUE;
	tkms_keystore_db_set_error(db, error, "writing a key");
	return FALSE;
}

gboolean
tkms_keystore_db_write_key(sqlite3 *db, TkmsKey *key, gint *alive_delta, GError **error)
{
	const gchar *insert_key =
		"INSERT INTO keys (owner, name, type, description, created, pcrs, "
		"primary_version, rotation_period, max_uses, deactivate_after, destroy_after, "
		"next_due, password_length, password_charset, password_exclude, hook, "
		"rotation_step, rotation_pending_version, rotation_previous_version, "
		"rotation_started, rotation_attempts, rotation_retry_at, last_rotation_step, "
		"last_rotation_time, last_rotation_version, last_rotation_ok, "
		"last_rotation_reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, ?10, ?11, ?12, ?13, "
		"?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)";
	const gchar *update_key =
		"UPDATE keys SET owner = ?1, name = ?2, type = ?3, description = ?4, created = ?5, "
		"pcrs = ?6, primary_version = ?7, rotation_period = ?9, max_uses = ?10, "
		"deactivate_after = ?11, destroy_after = ?12, next_due = ?13, "
		"password_length = ?14, password_charset = ?15, password_exclude = ?16, hook = ?17, "
		"rotation_step = ?18, rotation_pending_version = ?19, "
		"rotation_previous_version = ?20, rotation_started = ?21, rotation_attempts = ?22, "
		"rotation_retry_at = ?23, last_rotation_step = ?24, last_rotation_time = ?25, "
		"last_rotation_version = ?26, last_rotation_ok = ?27, last_rotation_reason = ?28 "
		"WHERE id = ?8";
	const TkmsKeyRotation *r = &key->rotation;
	const gchar *delete_versions = "DELETE FROM key_versions WHERE key_id = ?1";
	const gchar *insert_version =
		"INSERT INTO key_versions (key_id, version, state, created, tpm_public, "
		"tpm_private, activated, superseded, deactivated, destroy_at, destroyed, "
		"prior_state, uses, uses_reserved, wrapped_secret) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
	sqlite3_stmt *stmt = NULL;
	gboolean was_alive;
	gint64 id;
	TkmsKeyEvent event;
	guint32 event_version;

	if (!find_stored(db, key, &id, &was_alive, error))
		return FALSE;
	if (sqlite3_prepare_v2(db, id ? update_key : insert_key, -1, &stmt, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(stmt, 1, key->owner);
	sqlite3_bind_text(stmt, 2, key->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, tkms_key_type_to_string(key->type), -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, key->description ? key->description : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, key->created);
	sqlite3_bind_int64(stmt, 6, key->pcrs);
	sqlite3_bind_int64(stmt, 7, key->primary_version);
	if (id)
		sqlite3_bind_int64(stmt, 8, id);
	sqlite3_bind_int64(stmt, 9, key->policy.period);
	sqlite3_bind_int64(stmt, 10, key->policy.max_uses);
	sqlite3_bind_int64(stmt, 11, key->policy.deactivate_after);
	sqlite3_bind_int64(stmt, 12, key->policy.destroy_after);
	sqlite3_bind_int64(stmt, 13, tkms_key_next_event(key, &event, &event_version));
	sqlite3_bind_int64(stmt, 14, key->password.length);
	sqlite3_bind_text(stmt, 15, tkms_charset_to_string(key->password.charset), -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(stmt, 16, key->password.exclude, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 17, key->policy.hook, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 18, tkms_rotation_step_to_string(r->step), -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 19, r->pending_version);
	sqlite3_bind_int64(stmt, 20, r->previous_version);
	sqlite3_bind_int64(stmt, 21, r->started);
	sqlite3_bind_int64(stmt, 22, r->attempts);
	sqlite3_bind_int64(stmt, 23, r->retry_at);
	sqlite3_bind_text(stmt, 24, tkms_rotation_step_to_string(r->last_step), -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 25, r->last_time);
	sqlite3_bind_int64(stmt, 26, r->last_version);
	sqlite3_bind_int64(stmt, 27, r->last_ok ? 1 : 0);
	if (r->last_reason != NULL)
		sqlite3_bind_text(stmt, 28, r->last_reason, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 28);
	if (!step_done(db, stmt, error))
		goto out;
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (id == 0) {
		id = sqlite3_last_insert_rowid(db);
	} else {
		if (sqlite3_prepare_v2(db, delete_versions, -1, &stmt, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_int64(stmt, 1, id);
		if (!step_done(db, stmt, error))
			goto out;
		sqlite3_finalize(stmt);
		stmt = NULL;
	}
	if (sqlite3_prepare_v2(db, insert_version, -1, &stmt, NULL) != SQLITE_OK)
		goto fail;
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		sqlite3_reset(stmt);
		sqlite3_bind_int64(stmt, 1, id);
		sqlite3_bind_int64(stmt, 2, v->version);
		sqlite3_bind_text(stmt, 3, v->state, -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 4, v->created);
		if (!bind_blob(stmt, 5, v->blob.public) || !bind_blob(stmt, 6, v->blob.private) ||
		    !bind_blob(stmt, 15, v->blob.wrapped))
			goto fail;
		sqlite3_bind_int64(stmt, 7, v->activated);
		sqlite3_bind_int64(stmt, 8, v->superseded);
		sqlite3_bind_int64(stmt, 9, v->deactivated);
		sqlite3_bind_int64(stmt, 10, v->destroy_at);
		sqlite3_bind_int64(stmt, 11, v->destroyed);
		if (v->prior_state != NULL)
			sqlite3_bind_text(stmt, 12, v->prior_state, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(stmt, 12);
		sqlite3_bind_int64(stmt, 13, (gint64)MIN(v->uses, (guint64)G_MAXINT64));
		sqlite3_bind_int64(stmt, 14, (gint64)MIN(v->uses_reserved, (guint64)G_MAXINT64));
		if (!step_done(db, stmt, error))
			goto out;
	}
	sqlite3_finalize(stmt);
	if (alive_delta != NULL)
		*alive_delta = (gint)tkms_keystore_db_key_is_alive(key) - (gint)was_alive;
	return TRUE;
fail:
	tkms_keystore_db_set_error(db, error, "writing a key");
out:
	sqlite3_finalize(stmt);
	return FALSE;
}

gboolean
tkms_keystore_db_write_uses(sqlite3 *db, guint32 owner, const gchar *name, guint32 version,
			    guint64 uses, guint64 uses_reserved, gint64 due, GError **error)
{
	const gchar *update_version =
		"UPDATE key_versions SET uses = max(uses, ?4), uses_reserved = max(uses_reserved, ?5) "
		"WHERE version = ?3 AND key_id = (SELECT id FROM keys WHERE owner = ?1 AND name = ?2)";
	const gchar *update_due = "UPDATE keys SET next_due = ?3 WHERE owner = ?1 AND name = ?2 "
				  "AND (next_due = 0 OR next_due > ?3)";
	sqlite3_stmt *stmt = NULL;

	if (sqlite3_prepare_v2(db, update_version, -1, &stmt, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(stmt, 1, owner);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, version);
	sqlite3_bind_int64(stmt, 4, (gint64)MIN(uses, (guint64)G_MAXINT64));
	sqlite3_bind_int64(stmt, 5, (gint64)MIN(uses_reserved, (guint64)G_MAXINT64));
	if (!step_done(db, stmt, error))
		goto out;
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (due <= 0)
		return TRUE;
	if (sqlite3_prepare_v2(db, update_due, -1, &stmt, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(stmt, 1, owner);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, due);
	if (!step_done(db, stmt, error))
		goto out;
	sqlite3_finalize(stmt);
	return TRUE;
fail:
	tkms_keystore_db_set_error(db, error, "recording key usage");
out:
	sqlite3_finalize(stmt);
	return FALSE;
}

gboolean
tkms_keystore_db_release_uses(sqlite3 *db, guint32 owner, const gchar *name, guint32 version,
			      guint64 uses, GError **error)
{
	const gchar *sql = "UPDATE key_versions SET uses = ?4, uses_reserved = ?4 WHERE version = ?3 "
			   "AND key_id = (SELECT id FROM keys WHERE owner = ?1 AND name = ?2)";
	sqlite3_stmt *stmt = NULL;
	gboolean ok;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		tkms_keystore_db_set_error(db, error, "recording key usage");
		return FALSE;
	}
	sqlite3_bind_int64(stmt, 1, owner);
	sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, version);
	sqlite3_bind_int64(stmt, 4, (gint64)MIN(uses, (guint64)G_MAXINT64));
	ok = step_done(db, stmt, error);
	sqlite3_finalize(stmt);
	return ok;
}
