/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <sqlite3.h>

#include "key.h"

G_BEGIN_DECLS

/* The key store's SQLite file: its checks, its schema and its migrations, and the one way a
 * key is written. Everything here runs on one connection at a time; the caller decides which
 * thread that is. */

#define TKMS_KEYSTORE_DB_FILE "keys.db"
/* PRAGMA application_id of a tkms key store: "tkms" */
#define TKMS_KEYSTORE_DB_APPLICATION_ID 0x746b6d73
/* PRAGMA user_version this tkmsd writes; it migrates older files up to it */
#define TKMS_KEYSTORE_DB_SCHEMA_VERSION 4

/* Creates a new, empty store at path, which must not exist (created 0600), with the current
 * schema, in rollback-journal mode so that the finished file can be renamed into place. */
sqlite3 *tkms_keystore_db_create(const gchar *path, GError **error);

/* Opens the existing store at path read-write: refuses a damaged file, another application's
 * database or a newer schema (the file is left as it is), migrates an older schema, and
 * switches to WAL with synchronous=FULL and foreign keys on. */
sqlite3 *tkms_keystore_db_open(const gchar *path, GError **error);

/* A second connection to an opened store, for reads only. */
sqlite3 *tkms_keystore_db_open_reader(const gchar *path, GError **error);

gboolean tkms_keystore_db_exec(sqlite3 *db, const gchar *sql, GError **error);

/* Writes key and all its versions (replacing those stored), inside a transaction the caller
 * holds. *alive_delta is how the owner's count of keys not destroyed changed: -1, 0 or 1. */
gboolean tkms_keystore_db_write_key(sqlite3 *db, TkmsKey *key, gint *alive_delta,
				    GError **error);

/* Raises the usage counts of one version (never lowers them) and, due > 0, brings the key's
 * next_due forward to due; inside a transaction the caller holds. */
gboolean tkms_keystore_db_write_uses(sqlite3 *db, guint32 owner, const gchar *name,
				     guint32 version, guint64 uses, guint64 uses_reserved,
				     gint64 due, GError **error);
/* Sets both counts of one version to uses (a clean stop returns unused reservations). */
gboolean tkms_keystore_db_release_uses(sqlite3 *db, guint32 owner, const gchar *name,
				       guint32 version, guint64 uses, GError **error);

/* Sets error from db's last error, saying what was being done. */
void tkms_keystore_db_set_error(sqlite3 *db, GError **error, const gchar *what);

/* Whether the key's primary version is not destroyed (what the quota counts). */
gboolean tkms_keystore_db_key_is_alive(TkmsKey *key);

G_END_DECLS
