/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-audit"

#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit-chain.h"
#include "tkms-error.h"

#define GROUP_COMMIT_MS 100
#define TKMS_AUDIT_MESSAGE_ID "5b8f3c1e2a9d4e7f8c6b0a1d2e3f4a5b"

/* the tail of a segment is read backwards in pieces of this size */
#define TAIL_CHUNK (64 * 1024)

struct _TkmsAudit {
	GObject parent_instance;
	gchar *dir;
	gchar *path; /* the current segment, audit.log */
	gchar *head_path;
	int fd;
	guint64 size;		/* of the current segment */
	guint64 segment_size;	/* [audit] SegmentSize */
	guint keep_segments;	/* [audit] KeepSegments: closed segments kept */
	GArray *segments;	/* numbers of the closed segments, oldest first */
	guint64 next_segment;	/* the number audit.log gets when it is closed */
	gboolean fd_renamed;	/* fd is already the closed segment next_segment (see rotate) */
	guint64 next_seq;
	gchar *prev_hash;
	guint sync_source;
	gboolean committing;
	gboolean commit_pending;
	gboolean to_journal;
	gchar *failure; /* why the log cannot be written, NULL while it can */
	/* the records' time down to the second, formatted once a second */
	gint64 time_secs;
	gchar time_prefix[24]; /* "2026-11-30T19:25:00." */
	GQueue waiters; /* GTask of tkms_audit_append_durable, oldest first */
};

G_DEFINE_TYPE(TkmsAudit, tkms_audit, G_TYPE_OBJECT)

static gboolean
fsync_dir(const gchar *dir, GError **error)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err;

	if (fd >= 0 && fsync(fd) == 0) {
		close(fd);
		return TRUE;
	}
	err = errno;
	if (fd >= 0)
		close(fd);
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "fsync of %s failed (%s)", dir,
		    g_strerror(err));
	return FALSE;
}

/*
 * Finds the last complete line of a file of size bytes by reading it backwards from the end,
 * never more than a record or two: *end is where the file should end (after that line's
 * newline; a torn line after it was never acknowledged), *line that line (NULL if there is
 * none).
 */
static gboolean
read_tail(int fd, guint64 size, const gchar *path, gchar **line, guint64 *end, GError **error)
{
	g_autoptr(GByteArray) buf = g_byte_array_new(); /* the file's bytes [off, size) */
	guint64 off = size;
	gint64 line_end = -1, line_start = -1;

	while (line_start < 0) {
		gsize chunk;
		gssize n;

		if (off == 0) {
			if (line_end < 0)
				line_end = 0;
			line_start = 0;
			break;
		}
		if (size - off > 2 * (guint64)TKMS_AUDIT_MAX_RECORD) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "The end of %s is not a record of tkmsd (no line break in its "
				    "last %d bytes); run `tkmsctl audit verify` and move the "
				    "damaged log aside",
				    path, 2 * TKMS_AUDIT_MAX_RECORD);
			return FALSE;
		}
		chunk = (gsize)MIN((guint64)TAIL_CHUNK, off);
		off -= chunk;
		g_byte_array_set_size(buf, buf->len + chunk);
		memmove(buf->data + chunk, buf->data, buf->len - chunk);
		n = pread(fd, buf->data, chunk, (off_t)off);
		if (n != (gssize)chunk) {
			int err = n < 0 ? errno : EIO;
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot read %s: %s",
				    path, g_strerror(err));
			return FALSE;
		}
		for (gsize i = chunk; i-- > 0;) {
			if (buf->data[i] != '\n')
				continue;
			if (line_end < 0) {
				line_end = (gint64)(off + i + 1);
			} else {
				line_start = (gint64)(off + i + 1);
				break;
			}
		}
	}
	*end = (guint64)line_end;
	*line = NULL;
	if (line_end > line_start)
		*line = g_strndup((const gchar *)buf->data + (line_start - (gint64)off),
				  (gsize)(line_end - 1 - line_start));
	return TRUE;
}

/* Takes the chain's state from a record line: its seq and hash. */
static gboolean
take_last_record(TkmsAudit *self, const gchar *line, const gchar *path, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new();

	if (json_parser_load_from_data(parser, line, -1, NULL) &&
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
		    path);
	return FALSE;
}

/* Finds where the chain stands from the tail of the current segment only, or, if it holds no
 * record (a new segment), of the newest closed one; drops a torn last line left in audit.log by
 * a crash mid-write (it was never acknowledged: lifecycle records are synced before the
 * reply). */
static gboolean
recover_tail(TkmsAudit *self, GError **error)
{
	g_autofree gchar *line = NULL;
	guint64 end = 0;
	int fd = open(self->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot read audit log %s: %s",
			    self->path, g_strerror(errno));
		return FALSE;
	}
	if (!read_tail(fd, self->size, self->path, &line, &end, error)) {
		close(fd);
		return FALSE;
	}
	close(fd);
	if (end < self->size) {
		g_warning("audit log %s ends in a partial record; truncating it", self->path);
		if (ftruncate(self->fd, (off_t)end) != 0) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot repair %s: %s",
				    self->path, g_strerror(errno));
			return FALSE;
		}
		self->size = end;
	}
	if (line != NULL)
		return take_last_record(self, line, self->path, error);

	/* a closed segment was synced before it was closed: a torn end there is damage */
	for (guint i = self->segments->len; i-- > 0;) {
		g_autofree gchar *name =
			tkms_audit_segment_name(g_array_index(self->segments, guint64, i));
		g_autofree gchar *path = g_build_filename(self->dir, name, NULL);
		struct stat st;
		gboolean ok;

		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) != 0) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "Cannot read audit log segment %s: %s", path,
				    g_strerror(errno));
			if (fd >= 0)
				close(fd);
			return FALSE;
		}
		ok = read_tail(fd, (guint64)st.st_size, path, &line, &end, error);
		close(fd);
		if (!ok)
			return FALSE;
		if (end < (guint64)st.st_size) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "The audit log segment %s ends in a partial record; run "
				    "`tkmsctl audit verify` and move the damaged log aside",
				    path);
			return FALSE;
		}
		if (line != NULL)
			return take_last_record(self, line, path, error);
	}
	return TRUE;
}

/* Deletes the oldest closed segments past keep_segments. */
static void
drop_segments(TkmsAudit *self)
{
	gboolean dropped = FALSE;
	g_autoptr(GError) error = NULL;

	while (self->segments->len > self->keep_segments) {
		g_autofree gchar *name =
			tkms_audit_segment_name(g_array_index(self->segments, guint64, 0));
		g_autofree gchar *path = g_build_filename(self->dir, name, NULL);

		if (g_unlink(path) != 0 && errno != ENOENT) {
			g_warning("cannot delete the old audit log segment %s: %s", path,
				  g_strerror(errno));
			break;
		}
		g_debug("dropped the audit log segment %s ([audit] KeepSegments=%u)", name,
			self->keep_segments);
		g_array_remove_index(self->segments, 0);
		dropped = TRUE;
	}
	/* not durable yet is harmless: a segment back after a crash goes at the next rotation */
	if (dropped && !fsync_dir(self->dir, &error))
		g_warning("%s", error->message);
}

TkmsAudit *
tkms_audit_new(const gchar *state_dir, guint64 segment_size, guint keep_segments,
	       GError **error)
{
	g_autoptr(TkmsAudit) self = g_object_new(TKMS_TYPE_AUDIT, NULL);
	g_autoptr(GError) local = NULL;
	struct stat st;

	g_return_val_if_fail(segment_size > 0 && keep_segments > 0, NULL);
	self->dir = g_strdup(state_dir);
	self->path = g_build_filename(state_dir, TKMS_AUDIT_LOG_NAME, NULL);
	self->head_path = g_build_filename(state_dir, TKMS_AUDIT_HEAD_NAME, NULL);
	self->segment_size = segment_size;
	self->keep_segments = keep_segments;
	self->segments = tkms_audit_segments_list(state_dir, &local);
	if (self->segments == NULL) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot list %s: %s", state_dir,
			    local->message);
		return NULL;
	}
	self->next_segment =
		self->segments->len > 0
			? g_array_index(self->segments, guint64, self->segments->len - 1) + 1
			: 1;
	self->fd = open(self->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (self->fd < 0 || fstat(self->fd, &st) != 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "Cannot open audit log %s: %s",
			    self->path, g_strerror(errno));
		return NULL;
	}
	self->size = (guint64)st.st_size;
	if (!recover_tail(self, error))
		return NULL;
	/* [audit] KeepSegments may have been lowered */
	drop_segments(self);
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
/* ,"member": */
static void
put_member(GString *out, const gchar *member)
{
	g_string_append_len(out, ",\"", 2);
	g_string_append(out, member);
	g_string_append_len(out, "\":", 2);
}

static void
put_string(GString *out, const gchar *member, const gchar *value)
{
	static const gchar hex[] = "0123456789abcdef";

	put_member(out, member);
	if (value == NULL) {
		g_string_append_len(out, "null", 4);
		return;
	}
	g_string_append_c(out, '"');
	for (const guchar *p = (const guchar *)value; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			g_string_append_c(out, '\\');
			g_string_append_c(out, *p);
		} else if (*p < 0x20 || *p == 0x7f) {
			g_string_append_len(out, "\\u00", 4);
			g_string_append_c(out, hex[*p >> 4]);
			g_string_append_c(out, hex[*p & 0xf]);
		} else {
			g_string_append_c(out, *p);
		}
	}
	g_string_append_c(out, '"');
}

/* A decimal without printf: a record is formatted for every call. */
static void
append_int(GString *out, gint64 value)
{
	gchar buf[24];
	gchar *p = buf + sizeof(buf);
	guint64 v = value < 0 ? -(guint64)value : (guint64)value;

	do {
		*--p = (gchar)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	if (value < 0)
		*--p = '-';
	g_string_append_len(out, p, buf + sizeof(buf) - p);
}

static void
put_int(GString *out, const gchar *member, gint64 value, gboolean present)
{
	put_member(out, member);
	if (present)
		append_int(out, value);
	else
		g_string_append_len(out, "null", 4);
}

/* The record without its closing brace (the body the hash covers). */
static GString *
format_body(TkmsAudit *self, const TkmsAuditRecord *rec)
{
	GString *out = g_string_sized_new(320);
	gint64 now = g_get_real_time();
	time_t secs = now / G_USEC_PER_SEC;
	guint usecs = (guint)(now % G_USEC_PER_SEC);
	gchar time[40];
	gsize n;

	if (secs != self->time_secs || self->time_prefix[0] == '\0') {
		struct tm tm;

		gmtime_r(&secs, &tm);
		g_snprintf(self->time_prefix, sizeof(self->time_prefix),
			   "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900, tm.tm_mon + 1,
			   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		self->time_secs = secs;
	}
	/* the prefix, six digits of microseconds and Z */
	n = g_strlcpy(time, self->time_prefix, sizeof(time));
	for (gint i = 5; i >= 0; i--, usecs /= 10)
		time[n + i] = (gchar)('0' + usecs % 10);
	time[n + 6] = 'Z';
	time[n + 7] = '\0';
	g_string_append_len(out, "{\"seq\":", 7);
	append_int(out, (gint64)self->next_seq);
	/* a segment's first record says which it is: verification can then tell a segment
	 * dropped by KeepSegments from records cut from the start of a file */
	if (self->size == 0)
		put_int(out, "segment", (gint64)self->next_segment, TRUE);
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

/* Closes the current segment and starts a new one. Crash-safe at every step: the segment is
 * synced (and the head names its last record) before its name changes; a crash before the new
 * audit.log exists leaves the chain's end in the newest closed segment, where the next start
 * finds it; the directory is synced before any record goes into the new file. */
static gboolean
rotate(TkmsAudit *self, GError **error)
{
	g_autofree gchar *name = tkms_audit_segment_name(self->next_segment);
	g_autofree gchar *closed = g_build_filename(self->dir, name, NULL);
	g_autofree gchar *head = head_line(self);
	g_autofree gchar *reason = NULL;
	GError *local = NULL;
	int fd;

	if (!commit(self->fd, self->head_path, head, &local)) {
		latch_failure(self, local);
		g_propagate_error(error, local);
		return FALSE;
	}
	/* a rotation that failed after the rename goes on from there */
	if (!self->fd_renamed && rename(self->path, closed) != 0) {
		reason = g_strdup_printf("cannot close the segment as %s (%s)", name,
					 g_strerror(errno));
		goto fail;
	}
	self->fd_renamed = TRUE;
	fd = open(self->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		reason = g_strdup_printf("cannot create a new %s (%s)", self->path,
					 g_strerror(errno));
		goto fail;
	}
	close(self->fd);
	self->fd = fd;
	self->fd_renamed = FALSE;
	self->size = 0;
	g_array_append_val(self->segments, self->next_segment);
	self->next_segment++;
	g_debug("audit log segment %s closed at record %" G_GUINT64_FORMAT, name,
		self->next_seq - 1);
	if (!fsync_dir(self->dir, &local)) {
		reason = g_strdup(local->message);
		g_clear_error(&local);
		goto fail;
	}
	drop_segments(self);
	return TRUE;

fail:
	local = g_error_new(TKMS_ERROR, TKMS_ERROR_FAILED, FAILED_MESSAGE, reason);
	latch_failure(self, local);
	g_propagate_error(error, local);
	return FALSE;
}

/* The record's line, newline included. */
static GString *
format_line(TkmsAudit *self, const TkmsAuditRecord *rec, gchar **hash)
{
	GString *line = format_body(self, rec);

	*hash = tkms_audit_chain_hash(line->str, line->len);
	g_string_append_len(line, ",\"hash\":\"", 9);
	g_string_append_len(line, *hash, TKMS_AUDIT_HASH_HEX_LEN);
	g_string_append_len(line, "\"}\n", 3);
	return line;
}

/* The lines of records formatted at the end of the chain but not written yet: the chain's
 * state (next_seq, prev_hash, size) already counts them, as the next record's line needs it;
 * mark is the state before them, to go back to if they cannot be written. */
typedef struct {
	GString *buf;
	const TkmsAuditRecord *first; /* the records of the lines in buf */
	guint count;
	guint64 seq, size;
	gchar *prev;
} Pending;

static void
journal_record(TkmsAudit *self, const TkmsAuditRecord *rec)
{
	g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "MESSAGE_ID", TKMS_AUDIT_MESSAGE_ID,
			 "TKMS_UID", "%" G_GINT64_FORMAT, rec->uid, "MESSAGE",
			 "%s uid=%" G_GINT64_FORMAT " key=%s result=%s %s", rec->method, rec->uid,
			 rec->owner_key ? rec->owner_key : "-", rec->result,
			 rec->error ? rec->error : "");
}

static void
pending_mark(TkmsAudit *self, Pending *p, const TkmsAuditRecord *next)
{
	g_string_truncate(p->buf, 0);
	p->first = next;
	p->count = 0;
	p->seq = self->next_seq;
	p->size = self->size;
	g_free(p->prev);
	p->prev = g_strdup(self->prev_hash);
}

/* One write() of the pending lines on the O_APPEND fd: never interleaved or half-done unless
 * the disk is full, in which case they are removed, the chain goes back to before them and the
 * operation fails. */
static gboolean
pending_write(TkmsAudit *self, Pending *p, GError **error)
{
	gssize n;

	if (p->count == 0)
		return TRUE;
	n = write(self->fd, p->buf->str, p->buf->len);
	if (n != (gssize)p->buf->len) {
		int err = errno;
		g_autofree gchar *reason = g_strdup_printf(
			"write failed (%s)", n < 0 ? g_strerror(err) : "short write, disk full?");
		GError *local = NULL;
		if (n > 0 && ftruncate(self->fd, lseek(self->fd, 0, SEEK_END) - n) != 0)
			g_warning("cannot remove a partial audit record");
		self->next_seq = p->seq;
		self->size = p->size;
		g_free(self->prev_hash);
		self->prev_hash = g_steal_pointer(&p->prev);
		local = g_error_new(TKMS_ERROR, TKMS_ERROR_FAILED, FAILED_MESSAGE, reason);
		latch_failure(self, local);
		g_propagate_error(error, local);
		return FALSE;
	}
	if (self->to_journal)
		for (guint i = 0; i < p->count; i++)
			journal_record(self, &p->first[i]);
	pending_mark(self, p, p->first + p->count);
	return TRUE;
}

/* Writes n records at the end of the chain (not yet on disk) with as few write()s as the
 * segments allow: a new segment starts where a record would take the current one past
 * [audit] SegmentSize. */
static gboolean
write_records(TkmsAudit *self, const TkmsAuditRecord *recs, guint n, GError **error)
{
	Pending p = {.buf = g_string_sized_new(400 * MIN(n, 64))};
	gboolean ok = TRUE;

	pending_mark(self, &p, recs);
	for (guint i = 0; ok && i < n; i++) {
		g_autofree gchar *hash = NULL;
		g_autoptr(GString) line = format_line(self, &recs[i], &hash);

		if (self->size > 0 && self->size + line->len > self->segment_size) {
			ok = pending_write(self, &p, error) && rotate(self, error);
			if (!ok)
				break;
			/* again, as the new segment's first record */
			pending_mark(self, &p, &recs[i]);
			g_clear_pointer(&hash, g_free);
			g_string_free(g_steal_pointer(&line), TRUE);
			line = format_line(self, &recs[i], &hash);
		}
		g_string_append_len(p.buf, line->str, line->len);
		p.count++;
		self->size += line->len;
		self->next_seq++;
		g_free(self->prev_hash);
		self->prev_hash = g_steal_pointer(&hash);
	}
	ok = ok && pending_write(self, &p, error);
	g_string_free(p.buf, TRUE);
	g_free(p.prev);
	return ok;
}

static gboolean
write_record(TkmsAudit *self, const TkmsAuditRecord *rec, GError **error)
{
	return write_records(self, rec, 1, error);
}

/* While the log is failed, every append is the probe: its record is written and synced at
 * once, and only when both work does the log (and tkmsd) resume. */
static gboolean
append_probe(TkmsAudit *self, const TkmsAuditRecord *rec, GError **error)
{
	GError *local = NULL;

	if (!write_record(self, rec, error))
		return FALSE;
	g_clear_handle_id(&self->sync_source, g_source_remove);
	if (!sync_now(self, error))
		return FALSE;
	/* a failed rotation may have left the directory's new entries unsynced */
	if (!fsync_dir(self->dir, &local)) {
		GError *failed =
			g_error_new(TKMS_ERROR, TKMS_ERROR_FAILED, FAILED_MESSAGE, local->message);
		g_error_free(local);
		latch_failure(self, failed);
		g_propagate_error(error, failed);
		return FALSE;
	}
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

gboolean
tkms_audit_append_many(TkmsAudit *self, const TkmsAuditRecord *recs, guint n, GError **error)
{
	if (self->failure != NULL) {
		for (guint i = 0; i < n; i++)
			if (!append_probe(self, &recs[i], error))
				return FALSE;
		return TRUE;
	}
	if (!write_records(self, recs, n, error))
		return FALSE;
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
	g_free(self->dir);
	g_free(self->path);
	g_free(self->head_path);
	g_clear_pointer(&self->segments, g_array_unref);
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
