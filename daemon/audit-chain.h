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
 */

#define TKMS_AUDIT_HASH_HEX_LEN 64
#define TKMS_AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* Returns the hex hash of a record body: the JSON text without the closing "}". */
gchar *tkms_audit_chain_hash(const gchar *body, gsize body_len);

/* Verifies a whole log (and the head file if head_path is not NULL and exists). */
gboolean tkms_audit_chain_verify_file(const gchar *log_path, const gchar *head_path,
				      guint64 *n_records, GError **error);

G_END_DECLS
