/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The audit log is JSON lines. Each record ends with ,"hash":"<64 hex>"} where the hash is
 * SHA-256 over the record's text with that member removed (the text up to the comma, then
 * "}"). Each record carries "seq" (0, 1, ...) and "prev" (the hash of the previous record,
 * 64 zeros for seq 0), so an edited, inserted or removed record breaks the chain. The head
 * file ("<seq> <hash>\n", rewritten after each durable commit) catches a cut at the end.
 *
 * Segments: the log is a series of files in the state directory. The current segment is
 * "audit.log"; when it would pass [audit] SegmentSize it is renamed to "audit.log.NNNNNNNN"
 * (its number: 1, 2, ..., zero-padded to 8 digits so that the names sort) and a new
 * "audit.log" begins. The chain runs on across segments: the first record of a segment links
 * to the last record of the one before, and carries "segment":N, the number its file has or
 * will have. Past [audit] KeepSegments closed segments the oldest are deleted; verification
 * then starts at the first record of the oldest kept segment (its "segment" member tells a
 * segment's start from records cut from the start of a file) and says so.
 */

#define TKMS_AUDIT_HASH_HEX_LEN 64
#define TKMS_AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define TKMS_AUDIT_LOG_NAME "audit.log"
#define TKMS_AUDIT_HEAD_NAME "audit.head"
/* Longer lines are not records of tkmsd (they are refused, not read into memory). */
#define TKMS_AUDIT_MAX_RECORD (1024 * 1024)

/* Returns the hex hash of a record body: the JSON text without the closing "}". */
gchar *tkms_audit_chain_hash(const gchar *body, gsize body_len);

/* "audit.log.00000042" for 42. */
gchar *tkms_audit_segment_name(guint64 number);
/* Whether file_name is a closed segment's name; its number in *number. */
gboolean tkms_audit_segment_parse(const gchar *file_name, guint64 *number);
/* The numbers of the closed segments in dir, oldest first (a guint64 GArray). */
GArray *tkms_audit_segments_list(const gchar *dir, GError **error);

typedef struct {
	guint64 n_records;  /* records checked */
	guint n_segments;   /* files that held them */
	guint64 first_seq;  /* the first record checked */
	gboolean anchored;  /* first_seq > 0: the records before were in dropped segments */
	gchar *first_file;  /* the file of the first record checked */
	gboolean head_checked; /* the head file's record was among those checked */
} TkmsAuditChainReport;

void tkms_audit_chain_report_clear(TkmsAuditChainReport *report);

/*
 * Verifies, reading each file once with bounded memory: a failure to read is a G_FILE_ERROR;
 * a broken chain is G_IO_ERROR_INVALID_DATA whose message starts with the file and line of the
 * first bad record ("audit.log.00000003 line 17: record 1234 was modified (hash mismatch)").
 * report may be NULL.
 */
/* One file (and the head file if head_path is not NULL and exists). It must start at record 0,
 * or at a segment's first record. */
gboolean tkms_audit_chain_verify_log(const gchar *log_path, const gchar *head_path,
				     TkmsAuditChainReport *report, GError **error);
/* The same, for the number of records only. */
gboolean tkms_audit_chain_verify_file(const gchar *log_path, const gchar *head_path,
				      guint64 *n_records, GError **error);
/* Every kept segment of the state directory dir in order, then audit.log, against
 * audit.head. tkmsd may be running (and rotating) meanwhile. */
gboolean tkms_audit_chain_verify_dir(const gchar *dir, TkmsAuditChainReport *report,
				     GError **error);

G_END_DECLS
