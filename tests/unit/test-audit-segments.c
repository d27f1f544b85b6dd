/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-audit-segments"

/* The audit log in segments (daemon/audit.c's writer, daemon/audit-chain.c's verifier): a
 * segment is closed before it would pass SegmentSize and the oldest go past KeepSegments; the
 * chain runs on across segments and across restarts (which read only the tail), also after a
 * crash in the middle of a rotation; verification streams every kept segment with bounded
 * memory, names the file and line of the first bad record, and says when the chain starts at
 * a dropped segment (while records cut from the start of a file are still caught). */

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "audit-chain.h"
#include "audit.h"

#ifdef __SANITIZE_ADDRESS__
/* test_bounded_memory measures the peak RSS, and AddressSanitizer's quarantine (256 MiB by
 * default) keeps every freed block from reuse for a while: each buffer verification ever
 * freed would count as held. A small one still catches a use after free of the last ones. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "quarantine_size_mb=1";
}
#endif

#define SEGMENT_SIZE (64 * 1024) /* the smallest [audit] SegmentSize */
#define KEEP 3

typedef struct {
	gchar *dir;
	guint64 appended;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	f->dir = g_dir_make_tmp("tkms-test-segments-XXXXXX", &error);
	g_assert_no_error(error);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
	const gchar *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *path = g_build_filename(f->dir, name, NULL);
		g_unlink(path);
	}
	g_rmdir(f->dir);
	g_free(f->dir);
}

static TkmsAudit *
open_log(Fixture *f, guint64 segment_size, guint keep)
{
	g_autoptr(GError) error = NULL;
	TkmsAudit *audit = tkms_audit_new(f->dir, segment_size, keep, &error);

	g_assert_no_error(error);
	g_assert_nonnull(audit);
	return audit;
}

/* n records of about 250 bytes; every durable_every-th durable, like a lifecycle change
 * (0: none, they are synced when the log is closed). */
static void
append_some(Fixture *f, TkmsAudit *audit, guint n, guint durable_every)
{
	for (guint i = 0; i < n; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *key = g_strdup_printf("key-%" G_GUINT64_FORMAT, f->appended);
		TkmsAuditRecord rec = {
			.uid = 1000,
			.pid = 4242,
			.sender = ":1.42",
			.method = i % 7 ? "Encrypt" : "CreateKey",
			.owner_key = key,
			.owner = 1000,
			.version = 1,
			.result = "ok",
		};
		g_assert_true(tkms_audit_append(
			audit, &rec, durable_every > 0 && i % durable_every == 0, &error));
		g_assert_no_error(error);
		f->appended++;
	}
}

static void
append(Fixture *f, TkmsAudit *audit, guint n)
{
	append_some(f, audit, n, 7);
}

static gchar *
path_of(Fixture *f, const gchar *name)
{
	return g_build_filename(f->dir, name, NULL);
}

static gchar *
segment_path(Fixture *f, guint64 n)
{
	g_autofree gchar *name = tkms_audit_segment_name(n);
	return path_of(f, name);
}

static GArray *
segments(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	GArray *list = tkms_audit_segments_list(f->dir, &error);

	g_assert_no_error(error);
	return list;
}

static gchar **
read_lines(const gchar *path)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;

	g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
	if (len > 0) {
		g_assert_cmpint(contents[len - 1], ==, '\n');
		contents[len - 1] = '\0';
	}
	return len > 0 ? g_strsplit(contents, "\n", -1) : g_new0(gchar *, 1);
}

static void
write_lines(const gchar *path, gchar **lines)
{
	g_autoptr(GString) text = g_string_new(NULL);

	for (guint i = 0; lines[i] != NULL; i++)
		g_string_append_printf(text, "%s\n", lines[i]);
	g_assert_true(g_file_set_contents(path, text->str, (gssize)text->len, NULL));
}

static gchar *
verify_fails(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	TkmsAuditChainReport report = {0};

	g_assert_false(tkms_audit_chain_verify_dir(f->dir, &report, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
	g_test_message("refused: %s", error->message);
	return g_strdup(error->message);
}

static void
assert_verifies(Fixture *f, TkmsAuditChainReport *report)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(tkms_audit_chain_verify_dir(f->dir, report, &error));
	g_assert_no_error(error);
	g_test_message("%" G_GUINT64_FORMAT " records from %" G_GUINT64_FORMAT
		       " (%s) in %u segments%s",
		       report->n_records, report->first_seq, report->first_file,
		       report->n_segments, report->anchored ? ", anchored" : "");
}

/* Closed segments stay under SegmentSize, are numbered in order, start with a record naming
 * them and link to the one before; only KEEP are kept, and verification starts at the oldest
 * kept one, saying so. */
static void
test_rotation(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsAudit) audit = open_log(f, SEGMENT_SIZE, KEEP);
	g_autoptr(GArray) list = NULL;
	TkmsAuditChainReport report = {0};
	guint64 records = 0;
	g_autofree gchar *current = path_of(f, TKMS_AUDIT_LOG_NAME);

	append(f, audit, 2500); /* about 10 segments */
	g_clear_object(&audit);
	list = segments(f);
	g_assert_cmpuint(list->len, ==, KEEP);
	for (guint i = 0; i < list->len; i++) {
		guint64 n = g_array_index(list, guint64, i);
		g_autofree gchar *path = segment_path(f, n);
		g_autofree gchar *marker =
			g_strdup_printf("\"segment\":%" G_GUINT64_FORMAT ",", n);
		g_auto(GStrv) lines = read_lines(path);
		GStatBuf st;

		g_assert_cmpint(g_stat(path, &st), ==, 0);
		g_assert_cmpint(st.st_size, <=, SEGMENT_SIZE);
		g_assert_cmpint(st.st_size, >, SEGMENT_SIZE / 2);
		g_assert_nonnull(strstr(lines[0], marker));
		if (i > 0)
			g_assert_cmpuint(n, ==, g_array_index(list, guint64, i - 1) + 1);
		records += g_strv_length(lines);
	}
	g_assert_cmpuint(g_array_index(list, guint64, 0), >, 1); /* older ones dropped */
	{
		g_auto(GStrv) lines = read_lines(current);
		records += g_strv_length(lines);
	}
	assert_verifies(f, &report);
	g_assert_true(report.anchored);
	g_assert_cmpuint(report.n_records, ==, records);
	g_assert_cmpuint(report.first_seq + report.n_records, ==, f->appended);
	g_assert_cmpuint(report.n_segments, ==, KEEP + 1);
	g_assert_true(report.head_checked);
	{
		g_autofree gchar *oldest = tkms_audit_segment_name(g_array_index(list, guint64, 0));
		g_assert_cmpstr(report.first_file, ==, oldest);
	}
	tkms_audit_chain_report_clear(&report);
}

/* A batch's records (tkms_audit_append_many), 1,024 at a time: in order, each with its own
 * sequence number and hash, across segment boundaries (a segment closed in the middle of a
 * batch stays under SegmentSize and the next starts with its marker), and the chain verifies
 * as if they were written one by one. */
static void
test_many(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsAudit) audit = open_log(f, SEGMENT_SIZE, 100);
	g_autoptr(GArray) list = NULL;
	TkmsAuditChainReport report = {0};
	guint64 seq = 0;
	enum { BATCHES = 3, ITEMS = 1024 };
	g_autofree TkmsAuditRecord *recs = g_new0(TkmsAuditRecord, ITEMS);
	g_autofree gchar *details = g_malloc(ITEMS * 32);

	for (guint i = 0; i < ITEMS; i++) {
		g_snprintf(details + i * 32, 32, "item %u of %u", i, ITEMS);
		recs[i] = (TkmsAuditRecord){
			.uid = 1000,
			.pid = 4242,
			.sender = ":1.42",
			.method = "EncryptBatch",
			.owner_key = "batch-key",
			.owner = 1000,
			.version = 1,
			.result = "ok",
			.detail = details + i * 32,
		};
	}
	append(f, audit, 3);
	for (guint b = 0; b < BATCHES; b++) {
		g_autoptr(GError) error = NULL;

		g_assert_true(tkms_audit_append_many(audit, recs, ITEMS, &error));
		g_assert_no_error(error);
		f->appended += ITEMS;
	}
	append(f, audit, 3);
	g_clear_object(&audit);
	list = segments(f);
	g_assert_cmpuint(list->len, >=, 4); /* 3,078 records of ~270 bytes, 64 KiB segments */
	for (guint i = 0; i <= list->len; i++) {
		g_autofree gchar *path = i < list->len
						 ? segment_path(f, g_array_index(list, guint64, i))
						 : path_of(f, TKMS_AUDIT_LOG_NAME);
		g_auto(GStrv) lines = read_lines(path);
		GStatBuf st;

		g_assert_cmpint(g_stat(path, &st), ==, 0);
		g_assert_cmpint(st.st_size, <=, SEGMENT_SIZE);
		if (i < list->len) {
			g_autofree gchar *marker = g_strdup_printf(
				"\"segment\":%" G_GUINT64_FORMAT ",", g_array_index(list, guint64, i));
			g_assert_nonnull(strstr(lines[0], marker));
		}
		for (guint l = 0; lines[l] != NULL; l++, seq++) {
			g_autofree gchar *want = g_strdup_printf("{\"seq\":%" G_GUINT64_FORMAT ",", seq);
			g_assert_true(g_str_has_prefix(lines[l], want));
			if (seq >= 3 && seq < 3 + BATCHES * ITEMS) {
				g_autofree gchar *detail = g_strdup_printf(
					"\"detail\":\"item %u of %u\"", (guint)((seq - 3) % ITEMS),
					(guint)ITEMS);
				g_assert_nonnull(strstr(lines[l], detail));
			}
		}
	}
	g_assert_cmpuint(seq, ==, f->appended);
	assert_verifies(f, &report);
	g_assert_cmpuint(report.n_records, ==, f->appended);
	tkms_audit_chain_report_clear(&report);
}

/* Without dropping, the chain is checked from record 0 across every segment. */
static void
test_all_kept(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsAudit) audit = open_log(f, SEGMENT_SIZE, 10000);
	g_autoptr(GArray) list = NULL;
	TkmsAuditChainReport report = {0};

	append(f, audit, 1500);
	g_clear_object(&audit);
	list = segments(f);
	g_assert_cmpuint(list->len, >=, 4);
	g_assert_cmpuint(g_array_index(list, guint64, 0), ==, 1);
	assert_verifies(f, &report);
	g_assert_false(report.anchored);
	g_assert_cmpuint(report.first_seq, ==, 0);
	g_assert_cmpuint(report.n_records, ==, 1500);
	g_assert_cmpuint(report.n_segments, ==, list->len + 1);
	tkms_audit_chain_report_clear(&report);
}

static guint64
last_seq(Fixture *f)
{
	TkmsAuditChainReport report = {0};
	guint64 last;

	assert_verifies(f, &report);
	last = report.first_seq + report.n_records - 1;
	tkms_audit_chain_report_clear(&report);
	return last;
}

/* A restart reads the tail and continues the chain, also from a crash in the middle of a
 * rotation: closed but no new audit.log yet, or an empty new one. */
static void
test_restart(Fixture *f, gconstpointer data)
{
	g_autofree gchar *current = path_of(f, TKMS_AUDIT_LOG_NAME);
	TkmsAudit *audit = open_log(f, SEGMENT_SIZE, KEEP);

	append(f, audit, 700);
	g_object_unref(audit);
	g_assert_cmpuint(last_seq(f), ==, 699);

	audit = open_log(f, SEGMENT_SIZE, KEEP);
	append(f, audit, 10);
	g_object_unref(audit);
	g_assert_cmpuint(last_seq(f), ==, 709);

	/* crash after the rename: the chain's end is in the newest closed segment */
	{
		g_autoptr(GArray) list = segments(f);
		guint64 newest = g_array_index(list, guint64, list->len - 1);
		g_autofree gchar *next = segment_path(f, newest + 1);
		g_assert_cmpint(g_rename(current, next), ==, 0);
	}
	audit = open_log(f, SEGMENT_SIZE, KEEP);
	append(f, audit, 5);
	g_object_unref(audit);
	g_assert_cmpuint(last_seq(f), ==, 714);

	/* and after the new audit.log was made, before any record went in */
	{
		g_autoptr(GArray) list = segments(f);
		guint64 newest = g_array_index(list, guint64, list->len - 1);
		g_autofree gchar *next = segment_path(f, newest + 1);
		g_assert_cmpint(g_rename(current, next), ==, 0);
		g_assert_true(g_file_set_contents(current, "", 0, NULL));
	}
	audit = open_log(f, SEGMENT_SIZE, KEEP);
	append(f, audit, 5);
	g_object_unref(audit);
	g_assert_cmpuint(last_seq(f), ==, 719);

	/* a torn last line (a crash mid-write) is dropped, the chain goes on */
	{
		g_autofree gchar *contents = NULL;
		g_autoptr(GString) torn = NULL;
		g_assert_true(g_file_get_contents(current, &contents, NULL, NULL));
		torn = g_string_new(contents);
		g_string_append(torn, "{\"seq\":720,\"time\":\"2026-");
		g_assert_true(g_file_set_contents(current, torn->str, -1, NULL));
	}
	g_test_expect_message("tkms-audit", G_LOG_LEVEL_WARNING, "*ends in a partial record*");
	audit = open_log(f, SEGMENT_SIZE, KEEP);
	g_test_assert_expected_messages();
	append(f, audit, 1);
	g_object_unref(audit);
	g_assert_cmpuint(last_seq(f), ==, 720);
}

/* A closed segment that ends in a torn line was damaged after it was synced: tkmsd refuses to
 * start, naming it. */
static void
test_damaged_segment(Fixture *f, gconstpointer data)
{
	g_autofree gchar *current = path_of(f, TKMS_AUDIT_LOG_NAME);
	g_autoptr(GArray) list = NULL;
	g_autofree gchar *newest = NULL;
	g_autoptr(GError) error = NULL;
	TkmsAudit *audit = open_log(f, SEGMENT_SIZE, KEEP);

	append(f, audit, 400);
	g_object_unref(audit);
	list = segments(f);
	newest = segment_path(f, g_array_index(list, guint64, list->len - 1));
	g_assert_cmpint(g_unlink(current), ==, 0);
	{
		g_autofree gchar *contents = NULL;
		gsize len;
		g_assert_true(g_file_get_contents(newest, &contents, &len, NULL));
		g_assert_true(g_file_set_contents(newest, contents, (gssize)len - 10, NULL));
	}
	audit = tkms_audit_new(f->dir, SEGMENT_SIZE, KEEP, &error);
	g_assert_null(audit);
	g_assert_nonnull(error);
	g_test_message("%s", error->message);
	g_assert_nonnull(strstr(error->message, newest));
	g_assert_nonnull(strstr(error->message, "partial record"));
}

/* An edited record in a middle segment: the file and line of the first bad record. */
static void
test_tampered_middle(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsAudit) audit = open_log(f, SEGMENT_SIZE, 10000);
	g_autoptr(GArray) list = NULL;
	g_autofree gchar *name = NULL, *path = NULL, *message = NULL, *where = NULL;
	g_auto(GStrv) lines = NULL;
	gchar *p;

	append(f, audit, 1500);
	g_clear_object(&audit);
	list = segments(f);
	name = tkms_audit_segment_name(g_array_index(list, guint64, 2));
	path = path_of(f, name);
	lines = read_lines(path);
	p = strstr(lines[17], "\"uid\":1000");
	g_assert_nonnull(p);
	p[7] = '1'; /* uid 1001 */
	write_lines(path, lines);
	message = verify_fails(f);
	where = g_strdup_printf("%s line 18: record ", name);
	g_assert_true(g_str_has_prefix(message, where));
	g_assert_nonnull(strstr(message, "hash mismatch"));
}

/* A missing middle segment, or records cut from the start of the oldest one, are not taken for
 * segments that KeepSegments dropped. */
static void
test_removed(Fixture *f, gconstpointer data)
{
	g_autoptr(TkmsAudit) audit = open_log(f, SEGMENT_SIZE, 10000);
	g_autoptr(GArray) list = NULL;
	g_autofree gchar *first = NULL, *third = NULL, *message = NULL;
	g_autofree gchar *third_copy = NULL;
	g_auto(GStrv) lines = NULL;

	append(f, audit, 1500);
	g_clear_object(&audit);
	list = segments(f);
	third = segment_path(f, g_array_index(list, guint64, 2));
	g_assert_true(g_file_get_contents(third, &third_copy, NULL, NULL));
	g_assert_cmpint(g_unlink(third), ==, 0);
	message = verify_fails(f);
	g_assert_nonnull(strstr(message, "out of sequence"));
	g_assert_true(g_file_set_contents(third, third_copy, -1, NULL));
	{
		TkmsAuditChainReport report = {0};
		assert_verifies(f, &report);
		tkms_audit_chain_report_clear(&report);
	}

	/* the oldest segment dropped (as KeepSegments would), then its successor cut */
	first = segment_path(f, g_array_index(list, guint64, 0));
	g_assert_cmpint(g_unlink(first), ==, 0);
	{
		TkmsAuditChainReport report = {0};
		assert_verifies(f, &report);
		g_assert_true(report.anchored);
		tkms_audit_chain_report_clear(&report);
	}
	g_free(first);
	first = segment_path(f, g_array_index(list, guint64, 1));
	lines = read_lines(first);
	write_lines(first, lines + 1);
	g_free(message);
	message = verify_fails(f);
	g_assert_nonnull(strstr(message, "out of sequence"));
	g_free(lines[0]);
	lines[0] = g_strdup(""); /* g_strfreev frees from lines[0] */
}

static guint64
status_kib(const gchar *field)
{
	g_autofree gchar *status = NULL;
	g_autofree gchar *key = g_strdup_printf("\n%s:", field);
	const gchar *line;

	g_assert_true(g_file_get_contents("/proc/self/status", &status, NULL, NULL));
	line = strstr(status, key);
	g_assert_nonnull(line);
	return g_ascii_strtoull(line + strlen(key), NULL, 10);
}

/* Resets the peak RSS (VmHWM) to the current RSS; FALSE if the kernel cannot. */
static gboolean
reset_peak_rss(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	gboolean ok = fd >= 0 && write(fd, "5", 1) == 1;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Verification holds one read buffer (and one record), whatever the log's size, and a
 * restart reads only the tail. */
static void
test_bounded_memory(Fixture *f, gconstpointer data)
{
	g_autofree gchar *current = path_of(f, TKMS_AUDIT_LOG_NAME);
	g_autofree gchar *head = path_of(f, TKMS_AUDIT_HEAD_NAME);
	g_autoptr(GError) error = NULL;
	TkmsAuditChainReport report = {0};
	guint64 n = 0, base, peak;
	GStatBuf st;
	TkmsAudit *audit = open_log(f, G_GUINT64_CONSTANT(1) << 32, KEEP);

	append_some(f, audit, 130000, 0); /* about 40 MiB in one file */
	g_object_unref(audit);
	g_assert_cmpint(g_stat(current, &st), ==, 0);
	g_assert_cmpint(st.st_size, >, 32 * 1024 * 1024);

	if (!reset_peak_rss()) {
		g_test_skip("/proc/self/clear_refs cannot reset the peak RSS");
		return;
	}
	base = status_kib("VmRSS");
	g_assert_true(tkms_audit_chain_verify_file(current, head, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, 130000);
	assert_verifies(f, &report);
	g_assert_cmpuint(report.n_records, ==, 130000);
	tkms_audit_chain_report_clear(&report);
	audit = open_log(f, G_GUINT64_CONSTANT(1) << 32, KEEP);
	append(f, audit, 1);
	g_object_unref(audit);
	peak = status_kib("VmHWM");
	g_test_message("a %" G_GINT64_FORMAT " byte log verified twice and reopened: RSS "
		       "%" G_GUINT64_FORMAT " KiB before, peak %" G_GUINT64_FORMAT " KiB",
		       (gint64)st.st_size, base, peak);
	g_assert_cmpuint(peak, <, base + 4 * 1024);
	g_assert_cmpuint(last_seq(f), ==, 130000);
}

/* The file names sort in the order of the segments, and nothing else parses as one. */
static void
test_names(Fixture *f, gconstpointer data)
{
	g_autofree gchar *one = tkms_audit_segment_name(1);
	g_autofree gchar *big = tkms_audit_segment_name(12345678);
	guint64 n = 0;

	g_assert_cmpstr(one, ==, "audit.log.00000001");
	g_assert_cmpstr(big, ==, "audit.log.12345678");
	g_assert_true(strcmp(one, big) < 0);
	g_assert_true(tkms_audit_segment_parse(big, &n));
	g_assert_cmpuint(n, ==, 12345678);
	g_assert_false(tkms_audit_segment_parse("audit.log", &n));
	g_assert_false(tkms_audit_segment_parse("audit.log.1", &n));
	g_assert_false(tkms_audit_segment_parse("audit.log.00000000", &n));
	g_assert_false(tkms_audit_segment_parse("audit.log.0000001x", &n));
	g_assert_false(tkms_audit_segment_parse("audit.log.-0000001", &n));
	g_assert_false(tkms_audit_segment_parse("audit.head", &n));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD("/audit-segments/names", test_names);
	ADD("/audit-segments/rotation", test_rotation);
	ADD("/audit-segments/many", test_many);
	ADD("/audit-segments/all-kept", test_all_kept);
	ADD("/audit-segments/restart", test_restart);
	ADD("/audit-segments/damaged-segment", test_damaged_segment);
	ADD("/audit-segments/tampered-middle", test_tampered_middle);
	ADD("/audit-segments/removed", test_removed);
	ADD("/audit-segments/bounded-memory", test_bounded_memory);
#undef ADD
	return g_test_run();
}
