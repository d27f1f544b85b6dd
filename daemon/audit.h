/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
	gint64 uid; /* -1: unknown (never 0) */
	guint32 pid;
	const gchar *sender;
	const gchar *actor;	/* "tkmsd" when no caller started the work, else NULL */
	const gchar *method;
	const gchar *owner_key; /* key name as addressed, or NULL */
	gint64 owner;		/* the addressed key's owner uid, or -1 */
	guint32 version;	/* 0 when none */
	const gchar *result;	/* "ok", "denied", "error" */
	const gchar *error;	/* D-Bus error short name, or NULL */
	const gchar *detail;	/* what changed (a state transition), or NULL */
	const gchar *warning;	/* a use that deserves attention (a compromised version), or NULL */
} TkmsAuditRecord;

#define TKMS_TYPE_AUDIT (tkms_audit_get_type())
G_DECLARE_FINAL_TYPE(TkmsAudit, tkms_audit, TKMS, AUDIT, GObject)

/* Opens the log in state_dir (reading only the tail of its newest segment). A segment is
 * closed before a record would take it past segment_size bytes; keep_segments closed segments
 * are kept, older ones deleted (audit-chain.h, "Segments"). */
TkmsAudit *tkms_audit_new(const gchar *state_dir, guint64 segment_size, guint keep_segments,
			  GError **error);
/* Appends a record. durable: fsync before returning (lifecycle changes); otherwise the record
 * is group-committed within ~100 ms. Fails if the record could not be written: the caller
 * must then fail the operation, never succeed unaudited. */
gboolean tkms_audit_append(TkmsAudit *self, const TkmsAuditRecord *rec, gboolean durable,
			   GError **error);
/* Appends n records of use (not durable, as above) with one write() where the segments allow:
 * a batch's items. FALSE if they could not all be written (some may be). */
gboolean tkms_audit_append_many(TkmsAudit *self, const TkmsAuditRecord *recs, guint n,
				GError **error);
/* Appends a record and calls back once it is on disk: the fdatasync runs off the main loop
 * (together with the group commit), so a lifecycle change does not stall other callers.
 * Fails at once if the record could not be written. */
void tkms_audit_append_durable(TkmsAudit *self, const TkmsAuditRecord *rec,
			       GAsyncReadyCallback callback, gpointer user_data);
gboolean tkms_audit_append_durable_finish(TkmsAudit *self, GAsyncResult *result,
					  GError **error);
/* Flushes pending records (at shutdown). */
void tkms_audit_sync(TkmsAudit *self);

G_END_DECLS
