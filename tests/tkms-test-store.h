/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The key store (STATE/keys.db) as tests see it: its content, not its bytes. SQLite may
 * touch keys.db-shm on a read, and checkpoints move pages between keys.db and keys.db-wal,
 * so a byte comparison of those files says nothing; their logical content does. */

/* keys.db and the files SQLite keeps beside it. */
gboolean tkms_test_store_is_store_file(const gchar *name);

/* Adds the store's content to snap (name -> text, like a file snapshot): one entry
 * "keys.db/OWNER/NAME" per key (its row and its versions' rows, blobs in hex), and one entry
 * "keys.db" for the rest (schema, user_version, application_id, every other row). Opens the
 * store read-only; aborts the test if it cannot be read. */
void tkms_test_store_snapshot(const gchar *state_dir, GHashTable *snap);

/* All of the above, in order, as one string. */
gchar *tkms_test_store_dump(const gchar *state_dir);

/* Whether the store holds a key owner:name. */
gboolean tkms_test_store_has_key(const gchar *state_dir, guint32 owner, const gchar *name);

/* The number of keys in the store (of every owner). */
guint64 tkms_test_store_count_keys(const gchar *state_dir);

/* With tkmsd stopped: count copies of the key owner:name (its row and its versions' rows),
 * named PREFIX000001, PREFIX000002... (six digits at least, so that the names sort in number
 * order), written straight into keys.db in one transaction. A sealed AES object does not bind
 * its key's name, so each copy of an aes-256-gcm key is a working key. description NULL keeps
 * the key's own. Fails if the key does not exist or a name is taken; then the store is as it
 * was. */
gboolean tkms_test_store_clone_key(const gchar *state_dir, guint32 owner, const gchar *name,
				   const gchar *prefix, guint count, const gchar *description,
				   GError **error);

G_END_DECLS
