/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-audit"

#include "audit-chain.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_MEMBER ",\"hash\":\""
#define SEGMENT_PREFIX TKMS_AUDIT_LOG_NAME "."
#define SEGMENT_DIGITS 8
/* what one read() asks for: the log is streamed, never held whole */
#define READ_CHUNK (64 * 1024)

gchar *
tkms_audit_chain_hash(const gchar *body, gsize body_len)
{
	guint8 md[32];
	unsigned int md_len = sizeof(md);
	gchar *hex = g_malloc(TKMS_AUDIT_HASH_HEX_LEN + 1);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, body, body_len);
	EVP_DigestUpdate(ctx, "}", 1);
	EVP_DigestFinal_ex(ctx, md, &md_len);
	EVP_MD_CTX_free(ctx);
	for (guint i = 0; i < sizeof(md); i++) {
		hex[2 * i] = "0123456789abcdef"[md[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[md[i] & 0xf];
	}
	hex[TKMS_AUDIT_HASH_HEX_LEN] = '\0';
	return hex;
}

/* ---- segment files ---- */

gchar *
tkms_audit_segment_name(guint64 number)
{
	return g_strdup_printf(SEGMENT_PREFIX "%0*" G_GUINT64_FORMAT, SEGMENT_DIGITS, number);
}

gboolean
tkms_audit_segment_parse(const gchar *file_name, guint64 *number)
{
	const gchar *digits;
	guint64 n;

	if (!g_str_has_prefix(file_name, SEGMENT_PREFIX))
		return FALSE;
	digits = file_name + strlen(SEGMENT_PREFIX);
	/* exactly what tkms_audit_segment_name() makes: no sign, no other text */
	if (strlen(digits) < SEGMENT_DIGITS || strspn(digits, "0123456789") != strlen(digits) ||
	    !g_ascii_string_to_unsigned(digits, 10, 1, G_MAXUINT64, &n, NULL))
		return FALSE;
	*number = n;
	return TRUE;
}

static gint
compare_u64(gconstpointer a, gconstpointer b)
{
	guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;
	return x < y ? -1 : x > y;
}

GArray *
tkms_audit_segments_list(const gchar *dir, GError **error)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, error);
	g_autoptr(GArray) numbers = g_array_new(FALSE, FALSE, sizeof(guint64));
	const gchar *name;

	if (d == NULL)
		return NULL;
	while ((name = g_dir_read_name(d)) != NULL) {
		guint64 n;
		if (tkms_audit_segment_parse(name, &n))
			g_array_append_val(numbers, n);
	}
	g_array_sort(numbers, compare_u64);
	return g_steal_pointer(&numbers);
}

/* ---- reading lines with bounded memory ---- */

typedef struct {
	int fd;
	gchar *buf;
	gsize len; /* bytes held */
	gsize pos; /* where the next line starts */
	gsize cap;
	gboolean eof;
	guint64 line_no; /* of the line returned last, from 1 */
} LineReader;

static void
line_reader_clear(LineReader *r)
{
	g_free(r->buf);
	r->buf = NULL;
}

/* The next line without its newline, NUL-terminated and valid until the next call; NULL at
 * the end of the file (*error unset) or on an error. A last line without a newline is
 * returned as it is. */
static gchar *
line_reader_next(LineReader *r, const gchar *file, GError **error)
{
	for (;;) {
		/* no buffer before the first read: NULL + 0 is undefined behaviour in C */
		gchar *line = r->buf != NULL ? r->buf + r->pos : NULL;
		gchar *nl = r->len > r->pos ? memchr(line, '\n', r->len - r->pos) : NULL;
		gssize n;

		if (nl != NULL) {
			*nl = '\0';
			r->pos = (gsize)(nl - r->buf) + 1;
			r->line_no++;
			return line;
		}
		if (r->len - r->pos > TKMS_AUDIT_MAX_RECORD) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "%s line %" G_GUINT64_FORMAT
				    ": longer than %d bytes, not a record of tkmsd",
				    file, r->line_no + 1, TKMS_AUDIT_MAX_RECORD);
			return NULL;
		}
		if (r->eof) {
			if (r->pos == r->len)
				return NULL;
			r->buf[r->len] = '\0'; /* cap keeps a byte for it */
			r->pos = r->len;
			r->line_no++;
			return line;
		}
		if (r->pos > 0) {
			memmove(r->buf, r->buf + r->pos, r->len - r->pos);
			r->len -= r->pos;
			r->pos = 0;
		}
		if (r->cap < r->len + READ_CHUNK + 1) {
			r->cap = r->len + READ_CHUNK + 1;
			r->buf = g_realloc(r->buf, r->cap);
		}
		do
			n = read(r->fd, r->buf + r->len, READ_CHUNK);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			int err = errno;
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err),
				    "Cannot read %s: %s", file, g_strerror(err));
			return NULL;
		}
		if (n == 0)
			r->eof = TRUE;
		r->len += (gsize)n;
	}
}

/* ---- the chain ---- */

typedef struct {
	gboolean started;
	guint64 next_seq;
	gchar *prev; /* what the next record must link to */
	gboolean have_head;
	guint64 head_seq;
	gchar head_hash[TKMS_AUDIT_HASH_HEX_LEN + 1];
	TkmsAuditChainReport report;
	gchar *last_file; /* the file of the last record read */
	JsonParser *parser; /* one for every record */
} Chain;

static void
chain_init(Chain *c)
{
	memset(c, 0, sizeof(*c));
	c->prev = g_strdup(TKMS_AUDIT_ZERO_HASH);
	c->parser = json_parser_new_immutable();
}

static void
chain_clear(Chain *c)
{
	g_free(c->prev);
	g_free(c->last_file);
	g_clear_object(&c->parser);
	tkms_audit_chain_report_clear(&c->report);
}

void
tkms_audit_chain_report_clear(TkmsAuditChainReport *report)
{
	g_clear_pointer(&report->first_file, g_free);
}

/* Reads the head file ("<seq> <hash>\n"); a missing one is no head. */
static void
chain_read_head(Chain *c, const gchar *head_path)
{
	g_autofree gchar *head = NULL;
	const gchar *sp;

	if (head_path == NULL || !g_file_get_contents(head_path, &head, NULL, NULL))
		return;
	sp = strchr(head, ' ');
	c->have_head = TRUE;
	c->head_seq = g_ascii_strtoull(head, NULL, 10);
	g_strlcpy(c->head_hash, sp != NULL ? sp + 1 : "", sizeof(c->head_hash));
}

G_GNUC_PRINTF(5, 6)
static gboolean
bad_record(GError **error, const gchar *file, guint64 line_no, guint64 seq, const gchar *format,
	   ...)
{
	g_autofree gchar *what = NULL;
	va_list args;

	va_start(args, format);
	what = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		    "%s line %" G_GUINT64_FORMAT ": record %" G_GUINT64_FORMAT " %s", file,
		    line_no, seq, what);
	return FALSE;
}

/* Checks one record against the chain so far and appends it. segment: the number of the
 * closed segment the file is (or will be), 0 if unknown. */
static gboolean
chain_add(Chain *c, gchar *line, const gchar *file, guint64 line_no, guint64 segment,
	  GError **error)
{
	gsize len = strlen(line);
	gsize suffix = strlen(HASH_MEMBER) + TKMS_AUDIT_HASH_HEX_LEN + 2;
	g_autofree gchar *computed = NULL;
	JsonParser *parser = c->parser;
	JsonObject *obj;
	const gchar *prev;
	guint64 seq;

	if (len == 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "%s line %" G_GUINT64_FORMAT
			    ": empty line after record %" G_GUINT64_FORMAT,
			    file, line_no, c->next_seq > 0 ? c->next_seq - 1 : 0);
		return FALSE;
	}
	if (len < suffix || strncmp(line + len - suffix, HASH_MEMBER, strlen(HASH_MEMBER)) != 0 ||
	    strcmp(line + len - 2, "\"}") != 0)
		return bad_record(error, file, line_no, c->next_seq, "has no hash");
	computed = tkms_audit_chain_hash(line, len - suffix);
	if (strncmp(computed, line + len - suffix + strlen(HASH_MEMBER), TKMS_AUDIT_HASH_HEX_LEN))
		return bad_record(error, file, line_no, c->next_seq,
				  "was modified (hash mismatch)");
	if (!json_parser_load_from_data(parser, line, (gssize)len, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
		return bad_record(error, file, line_no, c->next_seq, "is not a JSON object");
	obj = json_node_get_object(json_parser_get_root(parser));
	if (!json_object_has_member(obj, "seq"))
		return bad_record(error, file, line_no, c->next_seq,
				  "is out of sequence (records removed or inserted)");
	seq = (guint64)json_object_get_int_member(obj, "seq");
	prev = json_object_get_string_member_with_default(obj, "prev", NULL);
	/* The first record read is the chain's start only if it is record 0 or a segment's
	 * first record (the ones before were in a dropped segment); anything else is a cut. */
	if (!c->started && seq > 0 && prev != NULL && json_object_has_member(obj, "segment")) {
		gint64 claimed = json_object_get_int_member(obj, "segment");

		if (segment != 0 && claimed != (gint64)segment)
			return bad_record(error, file, line_no, seq,
					  "starts segment %" G_GINT64_FORMAT
					  ", not this file's segment %" G_GUINT64_FORMAT
					  " (segment files renamed?)",
					  claimed, segment);
		c->next_seq = seq;
		g_free(c->prev);
		c->prev = g_strdup(prev);
		c->report.anchored = TRUE;
	}
	if (seq != c->next_seq)
		return bad_record(error, file, line_no, c->next_seq,
				  "is out of sequence (records removed or inserted)");
	if (g_strcmp0(prev, c->prev) != 0)
		return bad_record(error, file, line_no, seq,
				  "does not chain to the previous record");
	if (c->have_head && seq == c->head_seq) {
		if (strncmp(c->head_hash, computed, TKMS_AUDIT_HASH_HEX_LEN) != 0)
			return bad_record(error, file, line_no, seq,
					  "does not match the committed head");
		c->report.head_checked = TRUE;
	}
	if (!c->started) {
		c->started = TRUE;
		c->report.first_seq = seq;
		c->report.first_file = g_strdup(file);
	}
	if (g_strcmp0(c->last_file, file) != 0) {
		g_free(c->last_file);
		c->last_file = g_strdup(file);
		c->report.n_segments++;
	}
	c->report.n_records++;
	c->next_seq = seq + 1;
	g_free(c->prev);
	c->prev = g_steal_pointer(&computed);
	return TRUE;
}

/* Streams the records of the open file fd (named file) into the chain. */
static gboolean
chain_add_file(Chain *c, int fd, const gchar *file, guint64 segment, GError **error)
{
	LineReader r = {.fd = fd};
	gboolean ok = TRUE;
	gchar *line;
	GError *local = NULL;

	while ((line = line_reader_next(&r, file, &local)) != NULL)
		if (!(ok = chain_add(c, line, file, r.line_no, segment, &local)))
			break;
	line_reader_clear(&r);
	if (local != NULL) {
		g_propagate_error(error, local);
		return FALSE;
	}
	return ok;
}

/* After the last file: records cut from the end leave the chain short of the head. */
static gboolean
chain_finish(Chain *c, GError **error)
{
	if (!c->have_head)
		return TRUE;
	/* the head's record was in a dropped segment: there is nothing to compare */
	if (c->started && c->head_seq < c->report.first_seq)
		return TRUE;
	if (!c->started || c->head_seq >= c->next_seq) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "%s: log ends before committed record %" G_GUINT64_FORMAT
			    " (records cut from the end)",
			    c->last_file != NULL ? c->last_file : TKMS_AUDIT_LOG_NAME, c->head_seq);
		return FALSE;
	}
	return TRUE;
}

static int
open_read(const gchar *path, GError **error)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int err = errno;
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err),
			    "Failed to open file “%s”: %s", path, g_strerror(err));
	}
	return fd;
}

gboolean
tkms_audit_chain_verify_log(const gchar *log_path, const gchar *head_path,
			    TkmsAuditChainReport *report, GError **error)
{
	g_autofree gchar *file = g_path_get_basename(log_path);
	guint64 segment = 0;
	Chain c;
	gboolean ok;
	int fd;

	chain_init(&c);
	/* the head before the log: tkmsd may append and commit while we read, which can only
	 * make the log longer than the head we hold, never shorter */
	chain_read_head(&c, head_path);
	fd = open_read(log_path, error);
	tkms_audit_segment_parse(file, &segment);
	ok = fd >= 0 && chain_add_file(&c, fd, file, segment, error) && chain_finish(&c, error);
	if (fd >= 0)
		close(fd);
	if (ok && report != NULL) {
		*report = c.report;
		c.report.first_file = NULL;
	}
	chain_clear(&c);
	return ok;
}

gboolean
tkms_audit_chain_verify_file(const gchar *log_path, const gchar *head_path, guint64 *n_records,
			     GError **error)
{
	TkmsAuditChainReport report = {0};

	if (!tkms_audit_chain_verify_log(log_path, head_path, &report, error))
		return FALSE;
	if (n_records != NULL)
		*n_records = report.n_records;
	tkms_audit_chain_report_clear(&report);
	return TRUE;
}

static gboolean
same_file(int fd_a, int fd_b)
{
	struct stat a, b;
	return fstat(fd_a, &a) == 0 && fstat(fd_b, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* The kept segments, then audit.log. tkmsd may rotate meanwhile: audit.log is opened first and
 * read last, through that descriptor, even if it has become a numbered segment since (the
 * segments after it hold only records newer than the head read before it); segments dropped
 * before we reach them were older than the rest. */
gboolean
tkms_audit_chain_verify_dir(const gchar *dir, TkmsAuditChainReport *report, GError **error)
{
	g_autofree gchar *head_path = g_build_filename(dir, TKMS_AUDIT_HEAD_NAME, NULL);
	g_autofree gchar *current_path = g_build_filename(dir, TKMS_AUDIT_LOG_NAME, NULL);
	g_autoptr(GArray) numbers = NULL;
	GError *local = NULL;
	guint64 current_segment = 0;
	gboolean current_read = FALSE, ok = TRUE;
	int current;
	Chain c;

	chain_init(&c);
	chain_read_head(&c, head_path);
	current = open(current_path, O_RDONLY | O_CLOEXEC);
	if (current < 0 && errno != ENOENT) {
		int err = errno;
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err),
			    "Failed to open file “%s”: %s", current_path, g_strerror(err));
		chain_clear(&c);
		return FALSE;
	}
	numbers = tkms_audit_segments_list(dir, &local);
	for (guint i = 0; ok && numbers != NULL && i < numbers->len; i++) {
		guint64 n = g_array_index(numbers, guint64, i);
		g_autofree gchar *name = tkms_audit_segment_name(n);
		g_autofree gchar *path = g_build_filename(dir, name, NULL);
		int fd = open(path, O_RDONLY | O_CLOEXEC);

		if (fd < 0 && errno == ENOENT && !c.started)
			continue; /* dropped by tkmsd ([audit] KeepSegments) since the listing */
		if (fd < 0) {
			int err = errno;
			g_set_error(&local, G_FILE_ERROR, g_file_error_from_errno(err),
				    "Cannot open %s: %s%s", path, g_strerror(err),
				    err == ENOENT ? " (dropped by tkmsd while being verified? "
						    "run the verification again)"
						  : "");
			ok = FALSE;
			break;
		}
		if (current >= 0 && same_file(fd, current)) {
			/* audit.log became this segment after we opened it */
			current_segment = n;
			close(fd);
			break;
		}
		ok = chain_add_file(&c, fd, name, n, &local);
		close(fd);
		current_segment = n + 1;
	}
	if (ok && local == NULL && current >= 0) {
		ok = chain_add_file(&c, current, TKMS_AUDIT_LOG_NAME, current_segment, &local);
		current_read = TRUE;
	}
	if (current >= 0)
		close(current);
	if (local == NULL && ok && !current_read && numbers != NULL && numbers->len == 0) {
		g_set_error(&local, G_FILE_ERROR, G_FILE_ERROR_NOENT,
			    "Failed to open file “%s”: %s", current_path, g_strerror(ENOENT));
	}
	if (local == NULL && ok)
		ok = chain_finish(&c, &local);
	if (local != NULL) {
		g_propagate_error(error, local);
		ok = FALSE;
	}
	if (ok && report != NULL) {
		*report = c.report;
		c.report.first_file = NULL;
	}
	chain_clear(&c);
	return ok;
}
