/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-keystore"

/* The key store: STATE/keys.db (daemon/keystore-db.c), read on use through a cache of hot
 * keys, written by one thread so that a commit's fsync never blocks the main loop and saves
 * commit in the order they were asked for. */

#include "keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "keystore-cache.h"
#include "keystore-db.h"
#include "keystore-import.h"
#include "tkms-error.h"

#define CACHE_CAPACITY 4096

enum {
	LIST_OWNER,
	LIST_OWNER_AFTER,
	LIST_ALL,
	LIST_ALL_AFTER,
	N_LIST,
};

struct _TkmsKeystore {
	GObject parent_instance;
	gchar *path;
	sqlite3 *reader; /* the main thread's */
	sqlite3 *writer; /* the writer thread's */
	GThreadPool *writer_pool;
	TkmsKeystoreCache *cache;
	GHashTable *reserved; /* "uid/name" */
	GHashTable *alive;    /* owner -> count of keys not destroyed, once counted */
	guint saves_pending;
	sqlite3_stmt *lookup_stmt;
	sqlite3_stmt *exists_stmt;
	sqlite3_stmt *has_owner_stmt;
	sqlite3_stmt *count_stmt;
	sqlite3_stmt *list_stmt[N_LIST];
	sqlite3_stmt *due_stmt;
	sqlite3_stmt *next_due_stmt;
};

G_DEFINE_TYPE(TkmsKeystore, tkms_keystore, G_TYPE_OBJECT)

#define KEY_COLUMNS                                                                                \
	"k.id, k.owner, k.name, k.type, k.description, k.created, k.pcrs, k.primary_version, "     \
	"v.version, v.state, v.created, v.tpm_public, v.tpm_private, k.rotation_period, "          \
	"k.max_uses, k.deactivate_after, k.destroy_after, v.activated, v.superseded, "             \
	"v.deactivated, v.destroy_at, v.destroyed, v.prior_state, v.uses, v.uses_reserved, "       \
	"k.password_length, k.password_charset, k.password_exclude, k.hook, k.rotation_step, "     \
	"k.rotation_pending_version, k.rotation_previous_version, k.rotation_started, "            \
	"k.rotation_attempts, k.rotation_retry_at, k.last_rotation_step, k.last_rotation_time, "   \
	"k.last_rotation_version, k.last_rotation_ok, k.last_rotation_reason, "                    \
	"v.wrapped_secret"

static const gchar lookup_sql[] =
	"SELECT " KEY_COLUMNS " FROM keys AS k LEFT JOIN key_versions AS v ON v.key_id = k.id "
	"WHERE k.owner = ?1 AND k.name = ?2 ORDER BY v.version";

#define LIST_SQL(where)                                                                        \
	"SELECT " KEY_COLUMNS " FROM (SELECT * FROM keys WHERE " where                         \
	" ORDER BY owner, name LIMIT ?4) AS k LEFT JOIN key_versions AS v ON v.key_id = k.id " \
	"ORDER BY k.owner, k.name, v.version"

static const gchar *const list_sql[N_LIST] = {
	[LIST_OWNER] = LIST_SQL("owner = ?1"),
	/* (owner, name) > (?2, ?3) would not let SQLite seek to the cursor within one owner */
	[LIST_OWNER_AFTER] = LIST_SQL("owner = ?1 AND name > ?3"),
	[LIST_ALL] = LIST_SQL("?1 IS NOT NULL"),
	[LIST_ALL_AFTER] = LIST_SQL("?1 IS NOT NULL AND (owner, name) > (?2, ?3)"),
};

/* the keys whose next event is due, oldest first (the index keys_next_due) */
static const gchar due_sql[] =
	"SELECT " KEY_COLUMNS " FROM (SELECT * FROM keys WHERE next_due > 0 AND next_due <= ?1 "
	"ORDER BY next_due LIMIT ?2) AS k LEFT JOIN key_versions AS v ON v.key_id = k.id "
	"ORDER BY k.next_due, k.id, v.version";

/* ---- reading ---- */

static GBytes *
column_bytes(sqlite3_stmt *stmt, gint col)
{
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return NULL;
	return g_bytes_new(sqlite3_column_blob(stmt, col), sqlite3_column_bytes(stmt, col));
}

/* A text column copied into a fixed buffer: FALSE if it does not fit. */
static gboolean
column_text_to(sqlite3_stmt *stmt, gint col, gchar *buf, gsize size)
{
	const gchar *text = (const gchar *)sqlite3_column_text(stmt, col);
	return g_strlcpy(buf, text ? text : "", size) < size;
}

/* The columns of a password key (schema 3); FALSE if one holds what tkmsd never writes. */
static gboolean
read_password_columns(TkmsKeystore *self, sqlite3_stmt *stmt, TkmsKey *key, GError **error)
{
	TkmsKeyRotation *r = &key->rotation;
	const gchar *what = NULL;

	key->password.length = sqlite3_column_int64(stmt, 25);
	if (!tkms_charset_from_string((const gchar *)sqlite3_column_text(stmt, 26),
				      &key->password.charset))
		what = "password charset";
	else if (!column_text_to(stmt, 27, key->password.exclude, sizeof(key->password.exclude)))
		what = "password exclusion";
	else if (!column_text_to(stmt, 28, key->policy.hook, sizeof(key->policy.hook)))
		what = "hook";
	else if (!tkms_rotation_step_from_string((const gchar *)sqlite3_column_text(stmt, 29),
						 &r->step))
		what = "rotation step";
	else if (!tkms_rotation_step_from_string((const gchar *)sqlite3_column_text(stmt, 35),
						 &r->last_step))
		what = "last rotation step";
	if (what != NULL) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The key store %s is damaged: key \"%s\" has an invalid %s; restore "
			    "it from a backup",
			    self->path, key->name, what);
		return FALSE;
	}
	r->pending_version = sqlite3_column_int64(stmt, 30);
	r->previous_version = sqlite3_column_int64(stmt, 31);
	r->started = sqlite3_column_int64(stmt, 32);
	r->attempts = sqlite3_column_int64(stmt, 33);
	r->retry_at = sqlite3_column_int64(stmt, 34);
	r->last_time = sqlite3_column_int64(stmt, 36);
	r->last_version = sqlite3_column_int64(stmt, 37);
	r->last_ok = sqlite3_column_int64(stmt, 38) != 0;
	r->last_reason = g_strdup((const gchar *)sqlite3_column_text(stmt, 39));
	return TRUE;
}

/* Steps stmt to its end, one key per run of rows with the same k.id. */
static gboolean
read_keys(TkmsKeystore *self, sqlite3_stmt *stmt, GPtrArray *out, GError **error)
{
	TkmsKey *key = NULL;
	gint64 key_id = 0;
	gint rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		TkmsKeyVersion *v;
		if (key == NULL || sqlite3_column_int64(stmt, 0) != key_id) {
			const gchar *type_str = (const gchar *)sqlite3_column_text(stmt, 3);
			TkmsKeyType type;
			if (!tkms_key_type_from_string(type_str, &type)) {
				g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
					    "The key store %s is damaged: a key has the unknown "
					    "type \"%s\"; restore it from a backup",
					    self->path, type_str ? type_str : "");
				sqlite3_reset(stmt);
				return FALSE;
			}
			key_id = sqlite3_column_int64(stmt, 0);
			key = tkms_key_new(sqlite3_column_int64(stmt, 1),
					   (const gchar *)sqlite3_column_text(stmt, 2), type);
			key->description = g_strdup((const gchar *)sqlite3_column_text(stmt, 4));
			key->created = sqlite3_column_int64(stmt, 5);
			key->pcrs = sqlite3_column_int64(stmt, 6);
			key->primary_version = sqlite3_column_int64(stmt, 7);
			key->policy.period = sqlite3_column_int64(stmt, 13);
			key->policy.max_uses = sqlite3_column_int64(stmt, 14);
			key->policy.deactivate_after = sqlite3_column_int64(stmt, 15);
			key->policy.destroy_after = sqlite3_column_int64(stmt, 16);
			g_ptr_array_add(out, key);
			if (!read_password_columns(self, stmt, key, error)) {
				sqlite3_reset(stmt);
				return FALSE;
			}
		}
		if (sqlite3_column_type(stmt, 8) == SQLITE_NULL)
			continue; /* a key without versions */
		v = g_new0(TkmsKeyVersion, 1);
		v->version = sqlite3_column_int64(stmt, 8);
		v->state = g_strdup((const gchar *)sqlite3_column_text(stmt, 9));
		v->created = sqlite3_column_int64(stmt, 10);
		v->blob.public = column_bytes(stmt, 11);
		v->blob.private = column_bytes(stmt, 12);
		v->blob.wrapped = column_bytes(stmt, 40);
		v->activated = sqlite3_column_int64(stmt, 17);
		v->superseded = sqlite3_column_int64(stmt, 18);
		v->deactivated = sqlite3_column_int64(stmt, 19);
		v->destroy_at = sqlite3_column_int64(stmt, 20);
		v->destroyed = sqlite3_column_int64(stmt, 21);
		v->prior_state = g_strdup((const gchar *)sqlite3_column_text(stmt, 22));
		v->uses = sqlite3_column_int64(stmt, 23);
		v->uses_reserved = sqlite3_column_int64(stmt, 24);
		g_ptr_array_add(key->versions, v);
	}
	if (rc != SQLITE_DONE) {
		tkms_keystore_db_set_error(self->reader, error, "reading keys");
		sqlite3_reset(stmt);
		return FALSE;
	}
	sqlite3_reset(stmt);
	return TRUE;
}

static void
stmt_done(sqlite3_stmt *stmt)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
}

TkmsKey *
tkms_keystore_lookup(TkmsKeystore *self, guint32 owner, const gchar *name, GError **error)
{
	g_autoptr(GPtrArray) found = NULL;
	TkmsKey *key = tkms_keystore_cache_lookup(self->cache, owner, name);

	if (key != NULL)
		return tkms_key_ref(key);
	found = g_ptr_array_new_with_free_func((GDestroyNotify)tkms_key_unref);
	sqlite3_bind_int64(self->lookup_stmt, 1, owner);
	sqlite3_bind_text(self->lookup_stmt, 2, name, -1, SQLITE_STATIC);
	if (!read_keys(self, self->lookup_stmt, found, error)) {
		stmt_done(self->lookup_stmt);
		return NULL;
	}
	stmt_done(self->lookup_stmt);
	if (found->len == 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND, "There is no key named \"%s\"",
			    name);
		return NULL;
	}
	key = g_ptr_array_index(found, 0);
	tkms_keystore_cache_insert(self->cache, key);
	return tkms_key_ref(key);
}

GPtrArray *
tkms_keystore_list(TkmsKeystore *self, guint32 owner, guint32 after_owner,
		   const gchar *after_name, guint limit, GError **error)
{
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)tkms_key_unref);
	gboolean all = owner == TKMS_KEYSTORE_ALL_OWNERS;
	sqlite3_stmt *stmt;

	/* one owner's keys after a cursor in another owner's: all of them, or none */
	if (!all && after_name != NULL && after_owner != owner) {
		if (after_owner > owner)
			return g_steal_pointer(&out);
		after_name = NULL;
	}
	if (after_name != NULL)
		stmt = self->list_stmt[all ? LIST_ALL_AFTER : LIST_OWNER_AFTER];
	else
		stmt = self->list_stmt[all ? LIST_ALL : LIST_OWNER];
	sqlite3_bind_int64(stmt, 1, owner);
	if (after_name != NULL) {
		sqlite3_bind_int64(stmt, 2, after_owner);
		sqlite3_bind_text(stmt, 3, after_name, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(stmt, 4, limit);
	if (!read_keys(self, stmt, out, error)) {
		stmt_done(stmt);
		return NULL;
	}
	stmt_done(stmt);
	return g_steal_pointer(&out);
}

gboolean
tkms_keystore_has_owner(TkmsKeystore *self, guint32 owner)
{
	gint rc;

	sqlite3_bind_int64(self->has_owner_stmt, 1, owner);
	rc = sqlite3_step(self->has_owner_stmt);
	stmt_done(self->has_owner_stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		g_autoptr(GError) error = NULL;
		tkms_keystore_db_set_error(self->reader, &error, "looking for an owner");
		g_warning("%s", error->message);
	}
	return rc == SQLITE_ROW;
}

GPtrArray *
tkms_keystore_list_due(TkmsKeystore *self, gint64 now, guint limit, GError **error)
{
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)tkms_key_unref);

	sqlite3_bind_int64(self->due_stmt, 1, now);
	sqlite3_bind_int64(self->due_stmt, 2, limit);
	if (!read_keys(self, self->due_stmt, out, error)) {
		stmt_done(self->due_stmt);
		return NULL;
	}
	stmt_done(self->due_stmt);
	return g_steal_pointer(&out);
}

/* Read once, at start: a scan of keys is fine there (a few ms for 100,000 keys). */
GPtrArray *
tkms_keystore_list_rotating(TkmsKeystore *self, GError **error)
{
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)tkms_key_unref);
	sqlite3_stmt *stmt = NULL;
	gboolean ok;

	if (sqlite3_prepare_v2(self->reader,
			       "SELECT " KEY_COLUMNS " FROM (SELECT * FROM keys WHERE "
			       "rotation_step <> 'none') AS k LEFT JOIN key_versions AS v "
			       "ON v.key_id = k.id ORDER BY k.id, v.version",
			       -1, &stmt, NULL) != SQLITE_OK) {
		tkms_keystore_db_set_error(self->reader, error, "looking for rotations under way");
		return NULL;
	}
	ok = read_keys(self, stmt, out, error);
	sqlite3_finalize(stmt);
	return ok ? g_steal_pointer(&out) : NULL;
}

gboolean
tkms_keystore_next_due(TkmsKeystore *self, gint64 *when, GError **error)
{
	gint rc;

	*when = 0;
	rc = sqlite3_step(self->next_due_stmt);
	if (rc == SQLITE_ROW && sqlite3_column_type(self->next_due_stmt, 0) != SQLITE_NULL)
		*when = sqlite3_column_int64(self->next_due_stmt, 0);
	stmt_done(self->next_due_stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		tkms_keystore_db_set_error(self->reader, error, "looking for due events");
		return FALSE;
	}
	return TRUE;
}

/* ---- reservations and the quota ---- */

static gchar *
reservation_id(guint32 owner, const gchar *name)
{
	return g_strdup_printf("%u/%s", owner, name);
}

static gboolean
name_taken(TkmsKeystore *self, guint32 owner, const gchar *name, gboolean *taken,
	   GError **error)
{
	gint rc;

	if (tkms_keystore_cache_lookup(self->cache, owner, name) != NULL) {
		*taken = TRUE;
		return TRUE;
	}
	sqlite3_bind_int64(self->exists_stmt, 1, owner);
	sqlite3_bind_text(self->exists_stmt, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(self->exists_stmt);
	stmt_done(self->exists_stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		tkms_keystore_db_set_error(self->reader, error, "looking up a key name");
		return FALSE;
	}
	*taken = rc == SQLITE_ROW;
	return TRUE;
}

/* Counted once per owner, then kept exact by the deltas of the saves. */
static gboolean
alive_count(TkmsKeystore *self, guint32 owner, guint *count, GError **error)
{
	gpointer value;
	gint rc;

	if (g_hash_table_lookup_extended(self->alive, GUINT_TO_POINTER(owner), NULL, &value)) {
		*count = GPOINTER_TO_UINT(value);
		return TRUE;
	}
	sqlite3_bind_int64(self->count_stmt, 1, owner);
	rc = sqlite3_step(self->count_stmt);
	if (rc != SQLITE_ROW) {
		tkms_keystore_db_set_error(self->reader, error, "counting keys");
		stmt_done(self->count_stmt);
		return FALSE;
	}
	*count = sqlite3_column_int64(self->count_stmt, 0);
	stmt_done(self->count_stmt);
	/* a save in flight may or may not be in this count: its delta would count it twice */
	if (self->saves_pending == 0)
		g_hash_table_insert(self->alive, GUINT_TO_POINTER(owner),
				    GUINT_TO_POINTER(*count));
	return TRUE;
}

gboolean
tkms_keystore_reserve(TkmsKeystore *self, guint32 owner, const gchar *name, guint max_keys,
		      GError **error)
{
	g_autofree gchar *id = reservation_id(owner, name);
	g_autofree gchar *prefix = g_strdup_printf("%u/", owner);
	GHashTableIter iter;
	gpointer other;
	gboolean taken = FALSE;
	guint count = 0;

	if (!g_hash_table_contains(self->reserved, id) &&
	    !name_taken(self, owner, name, &taken, error))
		return FALSE;
	if (taken || g_hash_table_contains(self->reserved, id)) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_ALREADY_EXISTS,
			    "A key named \"%s\" exists (or existed: names are never reused); "
			    "choose another name",
			    name);
		return FALSE;
	}
	if (max_keys > 0) {
		if (!alive_count(self, owner, &count, error))
			return FALSE;
		g_hash_table_iter_init(&iter, self->reserved);
		while (g_hash_table_iter_next(&iter, &other, NULL))
			if (g_str_has_prefix(other, prefix))
				count++;
		if (count >= max_keys) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED,
				    "You have %u keys, the most allowed; destroy keys you no "
				    "longer need or ask an administrator to raise MaxKeysPerUser",
				    count);
			return FALSE;
		}
	}
	g_hash_table_add(self->reserved, g_steal_pointer(&id));
	return TRUE;
}

void
tkms_keystore_release(TkmsKeystore *self, guint32 owner, const gchar *name)
{
	g_autofree gchar *id = reservation_id(owner, name);
	g_hash_table_remove(self->reserved, id);
}

/* ---- saving ---- */

typedef struct {
	TkmsKeystore *self;
	GTask *task;
	GMainContext *context;
	TkmsKey *key; /* a copy: the caller may change its key while this one is written */
	gint alive_delta;
	/* a usage record (tkms_keystore_save_uses) rather than a whole key */
	gboolean uses_only;
	guint32 version;
	guint64 uses, uses_reserved;
	gint64 due;
	gboolean release; /* tkms_keystore_release_uses_sync: the caller waits */
	GMutex lock;
	GCond cond;
	gboolean finished;
	GError *error;
} SaveJob;

static gboolean
save_done(gpointer data)
{
	SaveJob *job = data;
	TkmsKeystore *self = job->self;
	guint32 owner = job->key->owner;
	gpointer value;

	if (!job->uses_only)
		self->saves_pending--;
	if (job->uses_only && job->error == NULL) {
		g_task_return_boolean(job->task, TRUE);
	} else if (job->uses_only) {
		g_task_return_error(job->task, g_steal_pointer(&job->error));
	} else if (job->error == NULL) {
		tkms_keystore_cache_insert(self->cache, job->key);
		if (g_hash_table_lookup_extended(self->alive, GUINT_TO_POINTER(owner), NULL,
						 &value))
			g_hash_table_insert(
				self->alive, GUINT_TO_POINTER(owner),
				GUINT_TO_POINTER(GPOINTER_TO_UINT(value) + job->alive_delta));
		g_task_return_boolean(job->task, TRUE);
	} else {
		/* counted again when next needed */
		g_hash_table_remove(self->alive, GUINT_TO_POINTER(owner));
		g_task_return_error(job->task, g_steal_pointer(&job->error));
	}
	g_object_unref(job->task);
	g_main_context_unref(job->context);
	tkms_key_unref(job->key);
	g_object_unref(job->self);
	g_free(job);
	return G_SOURCE_REMOVE;
}

static void
write_one(gpointer data, gpointer user_data)
{
	SaveJob *job = data;
	sqlite3 *db = job->self->writer;

	if (!tkms_keystore_db_exec(db, "BEGIN IMMEDIATE", &job->error))
		goto out;
	if (!(job->release ? tkms_keystore_db_release_uses(db, job->key->owner, job->key->name,
							  job->version, job->uses, &job->error)
	      : job->uses_only ? tkms_keystore_db_write_uses(db, job->key->owner, job->key->name,
							   job->version, job->uses,
							   job->uses_reserved, job->due, &job->error)
			     : tkms_keystore_db_write_key(db, job->key, &job->alive_delta,
							  &job->error)) ||
	    !tkms_keystore_db_exec(db, "COMMIT", &job->error)) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
out:
	if (job->error != NULL)
		g_prefix_error(&job->error, "Cannot save the key \"%s\": ", job->key->name);
	if (job->release) {
		g_mutex_lock(&job->lock);
		job->finished = TRUE;
		g_cond_signal(&job->cond);
		g_mutex_unlock(&job->lock);
		return;
	}
	g_main_context_invoke_full(job->context, G_PRIORITY_DEFAULT, save_done, job, NULL);
}

void
tkms_keystore_save(TkmsKeystore *self, TkmsKey *key, GCancellable *cancellable,
		   GAsyncReadyCallback callback, gpointer user_data)
{
	SaveJob *job = g_new0(SaveJob, 1);

	job->self = g_object_ref(self);
	job->task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(job->task, tkms_keystore_save);
	job->context = g_main_context_ref_thread_default();
	job->key = tkms_key_copy(key);
	/* until the commit, lookups read the committed state from the file */
	tkms_keystore_cache_remove(self->cache, key->owner, key->name);
	self->saves_pending++;
	g_thread_pool_push(self->writer_pool, job, NULL);
}

void
tkms_keystore_save_uses(TkmsKeystore *self, guint32 owner, const gchar *name, guint32 version,
			guint64 uses, guint64 uses_reserved, gint64 due,
			GAsyncReadyCallback callback, gpointer user_data)
{
	SaveJob *job = g_new0(SaveJob, 1);

	job->self = g_object_ref(self);
	job->task = g_task_new(self, NULL, callback, user_data);
	g_task_set_source_tag(job->task, tkms_keystore_save);
	job->context = g_main_context_ref_thread_default();
	/* only its owner and name are written */
	job->key = tkms_key_new(owner, name, TKMS_KEY_TYPE_AES_256_GCM);
	job->uses_only = TRUE;
	job->version = version;
	job->uses = uses;
	job->uses_reserved = uses_reserved;
	job->due = due;
	g_thread_pool_push(self->writer_pool, job, NULL);
}

gboolean
tkms_keystore_release_uses_sync(TkmsKeystore *self, guint32 owner, const gchar *name,
				guint32 version, guint64 uses, GError **error)
{
	SaveJob job = {0};
	gboolean ok;

	job.self = self;
	job.key = tkms_key_new(owner, name, TKMS_KEY_TYPE_AES_256_GCM);
	job.uses_only = job.release = TRUE;
	job.version = version;
	job.uses = uses;
	g_mutex_init(&job.lock);
	g_cond_init(&job.cond);
	g_thread_pool_push(self->writer_pool, &job, NULL);
	g_mutex_lock(&job.lock);
	while (!job.finished)
		g_cond_wait(&job.cond, &job.lock);
	g_mutex_unlock(&job.lock);
	g_mutex_clear(&job.lock);
	g_cond_clear(&job.cond);
	tkms_key_unref(job.key);
	ok = job.error == NULL;
	if (!ok)
		g_propagate_error(error, job.error);
	return ok;
}

gboolean
tkms_keystore_save_finish(TkmsKeystore *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- creation and the import of the JSON store ---- */

static gboolean
fsync_path(const gchar *path, GError **error)
{
	gint fd = g_open(path, O_RDONLY | O_CLOEXEC, 0);

	if (fd < 0 || fsync(fd) != 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot sync %s: %s", path,
			    g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return FALSE;
	}
	close(fd);
	return TRUE;
}

static gboolean
import_one(TkmsKey *key, gpointer user_data, GError **error)
{
	return tkms_keystore_db_write_key(user_data, key, NULL, error);
}

static void
remove_new(const gchar *tmp)
{
	g_autofree gchar *journal = g_strconcat(tmp, "-journal", NULL);
	g_unlink(journal);
	g_unlink(tmp);
}

/* The JSON store, imported: kept beside, never deleted. */
static void
move_aside(const gchar *state_dir, const gchar *json_dir, guint n_keys, const gchar *path)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree gchar *stamp = g_date_time_format(now, "%Y%m%dT%H%M%SZ");
	g_autofree gchar *aside = NULL;

	for (guint i = 0; i < 100; i++) {
		g_autofree gchar *base = i ? g_strdup_printf("keys.imported-%s-%u", stamp, i)
					   : g_strdup_printf("keys.imported-%s", stamp);
		g_free(aside);
		aside = g_build_filename(state_dir, base, NULL);
		if (!g_file_test(aside, G_FILE_TEST_EXISTS))
			break;
	}
	if (g_rename(json_dir, aside) != 0) {
		g_warning("Imported %u keys into %s, but cannot move %s aside: %s; it is no "
			  "longer read, move it away yourself",
			  n_keys, path, json_dir, g_strerror(errno));
		return;
	}
	fsync_path(state_dir, NULL);
	g_message("Imported %u keys from the JSON key store into %s; the JSON store is kept as %s",
		  n_keys, path, aside);
}

/* A new store is built beside (keys.db.new) and renamed into place once complete, so that a
 * start cut short never leaves a keys.db that lacks keys. */
static gboolean
create_store(const gchar *state_dir, const gchar *path, GError **error)
{
	g_autofree gchar *tmp = g_strconcat(path, ".new", NULL);
	g_autofree gchar *json_dir = g_build_filename(state_dir, "keys", NULL);
	gboolean import = g_file_test(json_dir, G_FILE_TEST_IS_DIR);
	sqlite3 *db;
	guint n_keys = 0;

	remove_new(tmp); /* a leftover of a start cut short: it never holds the only copy */
	db = tkms_keystore_db_create(tmp, error);
	if (db == NULL) {
		remove_new(tmp);
		return FALSE;
	}
	if (import) {
		if (!tkms_keystore_db_exec(db, "BEGIN IMMEDIATE", error) ||
		    !tkms_keystore_import_json(json_dir, import_one, db, &n_keys, error) ||
		    !tkms_keystore_db_exec(db, "COMMIT", error)) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			sqlite3_close(db);
			remove_new(tmp);
			return FALSE;
		}
	}
	if (sqlite3_close(db) != SQLITE_OK || !fsync_path(tmp, error)) {
		if (error != NULL && *error == NULL)
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot close %s", tmp);
		remove_new(tmp);
		return FALSE;
	}
	if (g_rename(tmp, path) != 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot create %s: %s", path,
			    g_strerror(errno));
		remove_new(tmp);
		return FALSE;
	}
	if (!fsync_path(state_dir, error))
		return FALSE;
	if (import)
		move_aside(state_dir, json_dir, n_keys, path);
	return TRUE;
}

static gboolean
prepare(TkmsKeystore *self, const gchar *sql, sqlite3_stmt **stmt, GError **error)
{
	if (sqlite3_prepare_v3(self->reader, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) ==
	    SQLITE_OK)
		return TRUE;
	tkms_keystore_db_set_error(self->reader, error, "preparing its queries");
	return FALSE;
}

TkmsKeystore *
tkms_keystore_new(const gchar *state_dir, GError **error)
{
	g_autoptr(TkmsKeystore) self = g_object_new(TKMS_TYPE_KEYSTORE, NULL);
	g_autofree gchar *json_dir = g_build_filename(state_dir, "keys", NULL);
	GStatBuf st;

	self->path = g_build_filename(state_dir, TKMS_KEYSTORE_DB_FILE, NULL);
	if (g_lstat(self->path, &st) != 0) {
		if (errno != ENOENT) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "Cannot read the key store %s: %s", self->path,
				    g_strerror(errno));
			return NULL;
		}
		if (!create_store(state_dir, self->path, error))
			return NULL;
	} else if (g_file_test(json_dir, G_FILE_TEST_IS_DIR)) {
		g_warning("%s is not read: keys live in %s (a JSON store is imported only when "
			  "there is no %s yet); move it away",
			  json_dir, self->path, TKMS_KEYSTORE_DB_FILE);
	}
	self->writer = tkms_keystore_db_open(self->path, error);
	if (self->writer == NULL)
		return NULL;
	self->reader = tkms_keystore_db_open_reader(self->path, error);
	if (self->reader == NULL)
		return NULL;
	if (!prepare(self, lookup_sql, &self->lookup_stmt, error) ||
	    !prepare(self, "SELECT 1 FROM keys WHERE owner = ?1 AND name = ?2",
		     &self->exists_stmt, error) ||
	    !prepare(self, "SELECT 1 FROM keys WHERE owner = ?1 LIMIT 1", &self->has_owner_stmt,
		     error) ||
	    !prepare(self,
		     "SELECT count(*) FROM keys AS k LEFT JOIN key_versions AS v "
		     "ON v.key_id = k.id AND v.version = k.primary_version "
		     "WHERE k.owner = ?1 AND (v.state IS NULL OR v.state <> 'destroyed')",
		     &self->count_stmt, error))
		return NULL;
	for (guint i = 0; i < N_LIST; i++)
		if (!prepare(self, list_sql[i], &self->list_stmt[i], error))
			return NULL;
	if (!prepare(self, due_sql, &self->due_stmt, error) ||
	    !prepare(self, "SELECT min(next_due) FROM keys WHERE next_due > 0",
		     &self->next_due_stmt, error))
		return NULL;
	/* one thread: saves commit in order, and the write connection is never shared */
	self->writer_pool = g_thread_pool_new(write_one, NULL, 1, FALSE, error);
	if (self->writer_pool == NULL)
		return NULL;
	return g_steal_pointer(&self);
}

static void
tkms_keystore_finalize(GObject *object)
{
	TkmsKeystore *self = TKMS_KEYSTORE(object);

	/* every save holds a reference: none is in flight here */
	if (self->writer_pool != NULL)
		g_thread_pool_free(self->writer_pool, FALSE, TRUE);
	sqlite3_finalize(self->lookup_stmt);
	sqlite3_finalize(self->exists_stmt);
	sqlite3_finalize(self->has_owner_stmt);
	sqlite3_finalize(self->count_stmt);
	for (guint i = 0; i < N_LIST; i++)
		sqlite3_finalize(self->list_stmt[i]);
	sqlite3_finalize(self->due_stmt);
	sqlite3_finalize(self->next_due_stmt);
	/* the reader first: the last connection to close checkpoints the WAL */
	sqlite3_close(self->reader);
	sqlite3_close(self->writer);
	tkms_keystore_cache_free(self->cache);
	g_hash_table_unref(self->reserved);
	g_hash_table_unref(self->alive);
	g_free(self->path);
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
	self->cache = tkms_keystore_cache_new(CACHE_CAPACITY);
	self->reserved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	self->alive = g_hash_table_new(g_direct_hash, g_direct_equal);
}
