/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-audit-chain"

/* The audit log's hash chain (daemon/audit-chain.c), over records written by tkmsd's own writer
 * (daemon/audit.c): an untouched log verifies; an edited byte, a removed, inserted or swapped
 * record, a cut at the end, or a last record forged with a correct hash does not. */

#include <glib/gstdio.h>
#include <string.h>

#include "audit-chain.h"
#include "audit.h"

#define N_RECORDS 5

typedef struct {
	gchar *dir;
	gchar *log;
	gchar *head;
	gchar **lines; /* the records, without newlines */
} Fixture;

/* N_RECORDS records through the real writer; durable, so the head file is written too. */
static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsAudit) audit = NULL;
	g_autofree gchar *contents = NULL;

	f->dir = g_dir_make_tmp("tkms-test-audit-XXXXXX", &error);
	g_assert_no_error(error);
	f->log = g_build_filename(f->dir, "audit.log", NULL);
	f->head = g_build_filename(f->dir, "audit.head", NULL);
	audit = tkms_audit_new(f->dir, 16 * 1024 * 1024, 8, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < N_RECORDS; i++) {
		g_autofree gchar *key = g_strdup_printf("key-%u", i);
		TkmsAuditRecord rec = {
			.uid = 1000 + i,
			.pid = 4242,
			.sender = ":1.42",
			.method = i % 2 ? "Encrypt" : "CreateKey",
			.owner_key = key,
			.owner = 1000,
			.version = 1,
			.result = "ok",
			.error = NULL,
		};
		g_assert_true(tkms_audit_append(audit, &rec, TRUE, &error));
		g_assert_no_error(error);
	}
	g_clear_object(&audit);
	g_assert_true(g_file_get_contents(f->log, &contents, NULL, NULL));
	g_assert_true(g_str_has_suffix(contents, "}\n"));
	contents[strlen(contents) - 1] = '\0';
	f->lines = g_strsplit(contents, "\n", -1);
	g_assert_cmpuint(g_strv_length(f->lines), ==, N_RECORDS);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	g_unlink(f->log);
	g_unlink(f->head);
	g_rmdir(f->dir);
	g_free(f->dir);
	g_free(f->log);
	g_free(f->head);
	g_strfreev(f->lines);
}

/* Replaces the log with lines (each followed by a newline). */
static void
write_log(Fixture *f, gchar **lines)
{
	g_autoptr(GString) text = g_string_new(NULL);

	for (guint i = 0; lines[i] != NULL; i++)
		g_string_append_printf(text, "%s\n", lines[i]);
	g_assert_true(g_file_set_contents(f->log, text->str, (gssize)text->len, NULL));
}

/* Verifies with the head file; returns the error message, or NULL if it verified. */
static gchar *
verify(Fixture *f, gboolean with_head)
{
	g_autoptr(GError) error = NULL;
	guint64 n = 0;

	if (tkms_audit_chain_verify_file(f->log, with_head ? f->head : NULL, &n, &error))
		return NULL;
	g_assert_nonnull(error);
	g_test_message("refused: %s", error->message);
	return g_strdup(error->message);
}

static void
assert_refused(Fixture *f, gboolean with_head, const gchar *reason)
{
	g_autofree gchar *message = verify(f, with_head);

	g_assert_nonnull(message);
	if (reason != NULL)
		g_assert_nonnull(strstr(message, reason));
}

/* A record with the same body but a hash recomputed over it: what a forger with write access
 * but without the head file can make. */
static gchar *
rehash(const gchar *line, const gchar *from, const gchar *to)
{
	g_autofree gchar *edited = NULL;
	gchar *hash_at;
	g_autofree gchar *hash = NULL;
	g_auto(GStrv) parts = g_strsplit(line, from, 2);

	g_assert_nonnull(parts[1]);
	edited = g_strconcat(parts[0], to, parts[1], NULL);
	hash_at = strstr(edited, ",\"hash\":\"");
	g_assert_nonnull(hash_at);
	hash = tkms_audit_chain_hash(edited, (gsize)(hash_at - edited));
	*hash_at = '\0';
	return g_strdup_printf("%s,\"hash\":\"%s\"}", edited, hash);
}

static void
test_verifies(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	guint64 n = 0;
	g_autofree gchar *head = NULL;

	g_assert_true(tkms_audit_chain_verify_file(f->log, f->head, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, N_RECORDS);
	/* the chain starts at zero and the head names the last record */
	g_assert_nonnull(strstr(f->lines[0], "\"seq\":0,"));
	g_assert_nonnull(strstr(f->lines[0], "\"prev\":\"" TKMS_AUDIT_ZERO_HASH "\""));
	g_assert_true(g_file_get_contents(f->head, &head, NULL, NULL));
	g_assert_true(g_str_has_prefix(head, "4 "));
	g_assert_cmpuint(strlen(head), ==, 2 + TKMS_AUDIT_HASH_HEX_LEN + 1);
	head[2 + TKMS_AUDIT_HASH_HEX_LEN] = '\0';
	{
		g_autofree gchar *tail = g_strdup_printf(",\"hash\":\"%s\"}", head + 2);
		g_assert_true(g_str_has_suffix(f->lines[N_RECORDS - 1], tail));
	}
}

/* Any single changed byte of any record is caught. */
static void
test_edited_byte(Fixture *f, gconstpointer data)
{
	for (guint r = 0; r < N_RECORDS; r++) {
		gsize len = strlen(f->lines[r]);
		for (gsize i = 0; i < len; i++) {
			g_auto(GStrv) lines = g_strdupv(f->lines);
			g_autofree gchar *message = NULL;

			lines[r][i] = lines[r][i] == 'x' ? 'y' : 'x';
			write_log(f, lines);
			message = verify(f, FALSE);
			g_assert_nonnull(message);
		}
	}
}

static void
test_removed(Fixture *f, gconstpointer data)
{
	for (guint r = 0; r + 1 < N_RECORDS; r++) {
		g_autoptr(GPtrArray) lines = g_ptr_array_new();

		for (guint i = 0; i < N_RECORDS; i++)
			if (i != r)
				g_ptr_array_add(lines, f->lines[i]);
		g_ptr_array_add(lines, NULL);
		write_log(f, (gchar **)lines->pdata);
		assert_refused(f, FALSE, "out of sequence");
	}
}

static void
test_swapped(Fixture *f, gconstpointer data)
{
	g_auto(GStrv) lines = g_strdupv(f->lines);
	gchar *tmp = lines[1];

	lines[1] = lines[2];
	lines[2] = tmp;
	write_log(f, lines);
	assert_refused(f, FALSE, "out of sequence");
}

static void
test_duplicated(Fixture *f, gconstpointer data)
{
	gchar *lines[N_RECORDS + 2];

	for (guint i = 0; i < N_RECORDS; i++)
		lines[i] = f->lines[i];
	lines[N_RECORDS] = f->lines[N_RECORDS - 1];
	lines[N_RECORDS + 1] = NULL;
	write_log(f, lines);
	assert_refused(f, FALSE, "out of sequence");
}

static void
test_empty_line(Fixture *f, gconstpointer data)
{
	gchar *lines[N_RECORDS + 2];

	lines[0] = f->lines[0];
	lines[1] = (gchar *)"";
	for (guint i = 1; i < N_RECORDS; i++)
		lines[i + 1] = f->lines[i];
	lines[N_RECORDS + 1] = NULL;
	write_log(f, lines);
	assert_refused(f, FALSE, "empty line");
}

/* Records cut from the end still form a chain; only the head file tells. */
static void
test_cut(Fixture *f, gconstpointer data)
{
	for (guint keep = 0; keep < N_RECORDS; keep++) {
		g_auto(GStrv) lines = g_strdupv(f->lines);

		g_free(lines[keep]);
		lines[keep] = NULL;
		write_log(f, lines);
		g_assert_null(verify(f, FALSE));
		assert_refused(f, TRUE, "cut from the end");
		for (guint i = keep + 1; i < N_RECORDS; i++)
			g_free(lines[i]);
	}
}

/* A rewritten last record with a correct hash chains to its predecessor; the head file, which
 * holds the hash tkmsd committed, refuses it. */
static void
test_forged_last(Fixture *f, gconstpointer data)
{
	g_auto(GStrv) lines = g_strdupv(f->lines);
	guint last = N_RECORDS - 1;

	g_free(lines[last]);
	lines[last] = rehash(f->lines[last], "\"result\":\"ok\"", "\"result\":\"denied\"");
	write_log(f, lines);
	g_assert_null(verify(f, FALSE));
	assert_refused(f, TRUE, "does not match the committed head");
}

/* A rewritten record in the middle, rehashed, breaks the next record's link. */
static void
test_forged_middle(Fixture *f, gconstpointer data)
{
	g_auto(GStrv) lines = g_strdupv(f->lines);

	g_free(lines[2]);
	lines[2] = rehash(f->lines[2], "\"uid\":1002", "\"uid\":0");
	write_log(f, lines);
	assert_refused(f, FALSE, "record 3 does not chain");
}

/* A record appended by hand, chained and hashed correctly, is beyond the committed head:
 * allowed (tkmsd commits the head after the record), so its seq and prev must be right. */
static void
test_appended_wrong_prev(Fixture *f, gconstpointer data)
{
	gchar *lines[N_RECORDS + 2];
	g_autofree gchar *extra = rehash(f->lines[N_RECORDS - 1], "\"seq\":4,", "\"seq\":5,");

	for (guint i = 0; i < N_RECORDS; i++)
		lines[i] = f->lines[i];
	lines[N_RECORDS] = extra; /* prev still names record 3 */
	lines[N_RECORDS + 1] = NULL;
	write_log(f, lines);
	assert_refused(f, FALSE, "does not chain");
}

static void
test_no_hash(Fixture *f, gconstpointer data)
{
	g_auto(GStrv) lines = g_strdupv(f->lines);
	gchar *hash_at = strstr(lines[1], ",\"hash\":\"");

	g_assert_nonnull(hash_at);
	strcpy(hash_at, "}");
	write_log(f, lines);
	assert_refused(f, FALSE, "has no hash");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD("/audit-chain/verifies", test_verifies);
	ADD("/audit-chain/edited-byte", test_edited_byte);
	ADD("/audit-chain/removed", test_removed);
	ADD("/audit-chain/swapped", test_swapped);
	ADD("/audit-chain/duplicated", test_duplicated);
	ADD("/audit-chain/empty-line", test_empty_line);
	ADD("/audit-chain/cut", test_cut);
	ADD("/audit-chain/forged-last", test_forged_last);
	ADD("/audit-chain/forged-middle", test_forged_middle);
	ADD("/audit-chain/appended-wrong-prev", test_appended_wrong_prev);
	ADD("/audit-chain/no-hash", test_no_hash);
#undef ADD
	return g_test_run();
}
