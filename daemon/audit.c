/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-audit"

#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "audit-chain.h"
#include "tkms-error.h"

#define GROUP_COMMIT_MS 100
#define TKMS_AUDIT_MESSAGE_ID "5b8f3c1e2a9d4e7f8c6b0a1d2e3f4a5b"

struct _TkmsAudit {
	GObject parent_instance;
	gchar *path;
	gchar *head_path;
	int fd;
	guint64 next_seq;
	gchar *prev_hash;
	guint sync_source;
	gboolean committing;
	gboolean commit_pending;
	gboolean to_journal;
	gchar *failure; /* why the log cannot be written, NULL while it can */
	GQueue waiters; /* GTask of tkms_audit_append_durable, oldest first */
};

G_DEFINE_TYPE(TkmsAudit, tkms_audit, G_TYPE_OBJECT)

/* Finds where the chain stands; drops a torn last line left by a crash mid-write (it was never
 * acknowledged: lifecycle records are synced before the reply). */
static gboolean
recover_tail(TkmsAudit *self, GError **error)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;
	gchar *end, *start;
	g_autoptr(JsonParser) parser = json_parser_new();

	if (!g_file_get_contents(self->path, &contents, &len, NULL) || len == 0)
		return TRUE;
	end = contents + len;
	if (end[-1] != '\n') {
		gchar *nl = g_strrstr_len(contents, len, "\n");
		gsize keep = nl ? (gsize)(nl - contents + 1) : 0;
		g_warning("audit log %s ends in a partial record; truncating it", self->path);
		if (ftruncate(self->fd, keep) != 0) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot repair %s: %s",
				    self->path, g_strerror(errno));
			return FALSE;
		}
		len = keep;
		end = contents + len;
		if (len == 0)
			return TRUE;
	}
	end[-1] = '\0';
	start = strrchr(contents, '\n');
	start = start ? start + 1 : contents;
	if (json_parser_load_from_data(parser, start, -1, NULL) &&
	    JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
		JsonObject *obj = json_node_get_object(json_parser_get_root(parser));
		self->next_seq = json_object_get_int_member_with_default(obj, "seq", 0) + 1;
		g_free(self->prev_hash);
		self->prev_hash =
			g_strdup(json_object_get_string_member_with_default(obj, "hash", ""));
		return TRUE;
	}
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
		    "The last record of %s is unreadable; run `tkmsctl audit verify` and move "
		    "the damaged log aside",
		    self->path);
	return FALSE;
}

TkmsAudit *
tkms_audit_new(const gchar *state_dir, GError **error)
{
	g_autoptr(TkmsAudit) self = g_object_new(TKMS_TYPE_AUDIT, NULL);

	self->path = g_build_filename(state_dir, "audit.log", NULL);
	self->head_path = g_build_filename(state_dir, "audit.head", NULL);
	self->fd = open(self->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (self->fd < 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot open audit log %s: %s",
			    self->path, g_strerror(errno));
		return NULL;
	}
	if (!recover_tail(self, error))
		return NULL;
	self->to_journal = g_log_writer_is_journald(fileno(stderr));
	return g_steal_pointer(&self);
}

static gchar *
head_line(TkmsAudit *self)
{
	if (self->next_seq == 0)
		return NULL;
	return g_strdup_printf("%" G_GUINT64_FORMAT " %s\n", self->next_seq - 1, self->prev_hash);
}

#define FAILED_MESSAGE "The audit log cannot be written: %s; tkmsd refuses work until it can"

static gboolean
commit(int fd, const gchar *head_path, const gchar *head, GError **error)
{
	if (fdatasync(fd) != 0) {
		int err = errno;
		g_autofree gchar *reason = g_strdup_printf("fdatasync failed (%s)", g_strerror(err));
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, FAILED_MESSAGE, reason);
		return FALSE;
	}
	if (head != NULL)
		g_file_set_contents_full(head_path, head, -1, G_FILE_SET_CONTENTS_CONSISTENT,
					 0600, NULL);
	return TRUE;
}

/* Latches the failed state: once a record could not be written or synced, no call may succeed
 * until a write and an fdatasync work again (tried by the next call, see append_probe). */
static void
latch_failure(TkmsAudit *self, const GError *error)
{
	if (self->failure == NULL)
		g_warning("%s", error->message);
	g_free(self->failure);
	self->failure = g_strdup(error->message);
}

static void
clear_failure(TkmsAudit *self)
{
	if (self->failure == NULL)
		return;
	g_message("the audit log can be written again; tkmsd resumes work");
	g_clear_pointer(&self->failure, g_free);
}

static gboolean
sync_now(TkmsAudit *self, GError **error)
{
	g_autofree gchar *head = head_line(self);
	GError *local = NULL;

	if (commit(self->fd, self->head_path, head, &local))
		return TRUE;
	latch_failure(self, local);
	g_propagate_error(error, local);
	return FALSE;
}

typedef struct {
	int fd;
	gchar *head_path;
	gchar *head;
	guint64 covered; /* the records before this seq are on disk once the job succeeds */
} CommitJob;

static void
commit_job_free(CommitJob *job)
{
	close(job->fd);
	g_free(job->head_path);
	g_free(job->head);
	g_free(job);
}

static void
commit_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	CommitJob *job = data;
	GError *error = NULL;
	if (!commit(job->fd, job->head_path, job->head, &error))
		g_task_return_error(task, error);
	else
		g_task_return_boolean(task, TRUE);
}

static void start_commit(TkmsAudit *self);

/* Answers the durable appends that the finished commit covered. */
static void
wake_waiters(TkmsAudit *self, guint64 covered, const GError *error)
{
	while (!g_queue_is_empty(&self->waiters)) {
		GTask *task = g_queue_peek_head(&self->waiters);
		guint64 seq = *(guint64 *)g_task_get_task_data(task);
		if (seq >= covered)
			break;
		g_queue_pop_head(&self->waiters);
		if (error != NULL)
			g_task_return_error(task, g_error_copy(error));
		else
			g_task_return_boolean(task, TRUE);
		g_object_unref(task);
	}
}

static gboolean
group_commit_cb(gpointer data)
{
	TkmsAudit *self = data;

	self->sync_source = 0;
	if (self->committing) {
		self->commit_pending = TRUE;
		return G_SOURCE_REMOVE;
	}
	start_commit(self);
	return G_SOURCE_REMOVE;
}

static void
commit_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsAudit *self = TKMS_AUDIT(source);
	CommitJob *job = g_task_get_task_data(G_TASK(res));
	g_autoptr(GError) error = NULL;

	self->committing = FALSE;
	/* records of use acknowledged before this commit may be lost: from now on nothing
	 * succeeds until the log can be written again */
	if (!g_task_propagate_boolean(G_TASK(res), &error))
		latch_failure(self, error);
	wake_waiters(self, job->covered, error);
	/* a durable append waits for the next commit at once; use records for the timer */
	if (!g_queue_is_empty(&self->waiters)) {
		g_clear_handle_id(&self->sync_source, g_source_remove);
		self->commit_pending = FALSE;
		start_commit(self);
	} else if (self->commit_pending && self->sync_source == 0) {
		self->commit_pending = FALSE;
		self->sync_source = g_timeout_add(GROUP_COMMIT_MS, group_commit_cb, self);
	}
}

/* Group commit: one fdatasync, off the main loop, for every record written so far. */
static void
start_commit(TkmsAudit *self)
{
	g_autoptr(GTask) task = NULL;
	CommitJob *job;

	job = g_new0(CommitJob, 1);
	job->fd = dup(self->fd);
	job->head_path = g_strdup(self->head_path);
	job->head = head_line(self);
	job->covered = self->next_seq;
	self->committing = TRUE;
	task = g_task_new(self, NULL, commit_done, NULL);
	g_task_set_task_data(task, job, (GDestroyNotify)commit_job_free);
	g_task_run_in_thread(task, commit_thread);
}

void
tkms_audit_sync(TkmsAudit *self)
{
	g_autoptr(GError) error = NULL;

	g_clear_handle_id(&self->sync_source, g_source_remove);
	sync_now(self, &error);
	wake_waiters(self, self->next_seq, error);
}

/* JSON string member: a record is written for every call, so it is formatted directly rather
 * than through a JSON tree; inputs are valid UTF-8 (bus strings, sanitized key names). */
static void
put_string(GString *out, const gchar *member, const gchar *value)
{
	g_string_append_printf(out, ",\"%s\":", member);
	if (value == NULL) {
		g_string_append(out, "null");
		return;
	}
	g_string_append_c(out, '"');
	for (const guchar *p = (const guchar *)value; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_printf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			g_string_append_printf(out, "\\u%04x", *p);
		else
			g_string_append_c(out, *p);
	}
	g_string_append_c(out, '"');
}

static void
put_int(GString *out, const gchar *member, gint64 value, gboolean present)
{
	if (present)
		g_string_append_printf(out, ",\"%s\":%" G_GINT64_FORMAT, member, value);
	else
		g_string_append_printf(out, ",\"%s\":null", member);
}

/* The record without its closing brace (the body the hash covers). */
static GString *
format_body(TkmsAudit *self, const TkmsAuditRecord *rec)
{
	GString *out = g_string_sized_new(320);
	gint64 now = g_get_real_time();
	time_t secs = now / G_USEC_PER_SEC;
	struct tm tm;
	gchar time[40];

	gmtime_r(&secs, &tm);
	g_snprintf(time, sizeof(time), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
		   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		   (int)(now % G_USEC_PER_SEC));
	g_string_append_printf(out, "{\"seq\":%" G_GUINT64_FORMAT, self->next_seq);
	put_string(out, "time", time);
	put_int(out, "uid", rec->uid, rec->uid >= 0);
	put_int(out, "pid", rec->pid, rec->pid > 0);
	put_string(out, "sender", rec->sender);
	if (rec->actor != NULL)
		put_string(out, "actor", rec->actor);
	put_string(out, "method", rec->method);
	put_string(out, "key", rec->owner_key);
	put_int(out, "owner", rec->owner, rec->owner >= 0);
	put_int(out, "version", rec->version, TRUE);
	put_string(out, "result", rec->result);
	put_string(out, "error", rec->error ? rec->error : "");
	if (rec->detail != NULL)
		put_string(out, "detail", rec->detail);
	if (rec->warning != NULL)
		put_string(out, "warning", rec->warning);
	put_string(out, "prev", self->prev_hash);
	return out;
}

/* Writes the record at the end of the chain (not yet on disk). */
static gboolean
write_record(TkmsAudit *self, const TkmsAuditRecord *rec, GError **error)
{
	g_autoptr(GString) line = format_body(self, rec);
	g_autofree gchar *hash = tkms_audit_chain_hash(line->str, line->len);
	gsize len;
	gssize n;

	g_string_append_printf(line, ",\"hash\":\"%s\"}\n", hash);
	len = line->len;

	/* one write() of the whole line on an O_APPEND fd: never interleaved or half-done
	 * unless the disk is full, in which case the operation fails below */
	n = write(self->fd, line->str, len);
	if (n != (gssize)len) {
		int err = errno;
		g_autofree gchar *reason = g_strdup_printf(
			"write failed (%s)", n < 0 ? g_strerror(err) : "short write, disk full?");
		GError *local = NULL;
		if (n > 0 && ftruncate(self->fd, lseek(self->fd, 0, SEEK_END) - n) != 0)
			g_warning("cannot remove a partial audit record");
		local = g_error_new(TKMS_ERROR, TKMS_ERROR_FAILED, FAILED_MESSAGE, reason);
		latch_failure(self, local);
		g_propagate_error(error, local);
		return FALSE;
	}
	self->next_seq++;
	g_free(self->prev_hash);
	self->prev_hash = g_steal_pointer(&hash);
	if (self->to_journal)
		g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "MESSAGE_ID",
				 TKMS_AUDIT_MESSAGE_ID, "TKMS_UID", "%" G_GINT64_FORMAT, rec->uid,
				 "MESSAGE", "%s uid=%" G_GINT64_FORMAT " key=%s result=%s %s",
				 rec->method, rec->uid,
				 rec->owner_key ? rec->owner_key : "-", rec->result,
				 rec->error ? rec->error : "");
	return TRUE;
}

/* While the log is failed, every append is the probe: its record is written and synced at
 * once, and only when both work does the log (and tkmsd) resume. */
static gboolean
append_probe(TkmsAudit *self, const TkmsAuditRecord *rec, GError **error)
{
	if (!write_record(self, rec, error))
		return FALSE;
	g_clear_handle_id(&self->sync_source, g_source_remove);
	if (!sync_now(self, error))
		return FALSE;
	clear_failure(self);
	return TRUE;
}

gboolean
tkms_audit_append(TkmsAudit *self, const TkmsAuditRecord *rec, gboolean durable, GError **error)
{
	if (self->failure != NULL)
		return append_probe(self, rec, error);
	if (!write_record(self, rec, error))
		return FALSE;
	if (durable) {
		g_clear_handle_id(&self->sync_source, g_source_remove);
		return sync_now(self, error);
	}
	if (self->sync_source == 0)
		self->sync_source = g_timeout_add(GROUP_COMMIT_MS, group_commit_cb, self);
	return TRUE;
}

void
tkms_audit_append_durable(TkmsAudit *self, const TkmsAuditRecord *rec,
			  GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
	GError *error = NULL;
	guint64 *seq;

	if (self->failure != NULL) {
		if (!append_probe(self, rec, &error))
			g_task_return_error(task, error);
		else
			g_task_return_boolean(task, TRUE);
		return;
	}
	if (!write_record(self, rec, &error)) {
		g_task_return_error(task, error);
		return;
	}
	seq = g_new(guint64, 1);
	*seq = self->next_seq - 1;
	g_task_set_task_data(task, seq, g_free);
	g_queue_push_tail(&self->waiters, g_steal_pointer(&task));
	if (!self->committing) {
		g_clear_handle_id(&self->sync_source, g_source_remove);
		start_commit(self);
	}
}

gboolean
tkms_audit_append_durable_finish(TkmsAudit *self, GAsyncResult *result, GError **error)
{
	return g_task_propagate_boolean(G_TASK(result), error);
}

static void
tkms_audit_finalize(GObject *object)
{
	TkmsAudit *self = TKMS_AUDIT(object);
	if (self->fd >= 0) {
		tkms_audit_sync(self);
		close(self->fd);
	}
	g_free(self->path);
	g_free(self->head_path);
	g_free(self->prev_hash);
	g_free(self->failure);
	G_OBJECT_CLASS(tkms_audit_parent_class)->finalize(object);
}

static void
tkms_audit_class_init(TkmsAuditClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = tkms_audit_finalize;
}

static void
tkms_audit_init(TkmsAudit *self)
{
	self->fd = -1;
	self->prev_hash = g_strdup(TKMS_AUDIT_ZERO_HASH);
}
