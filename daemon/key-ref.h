/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A key as an operation addresses it: its owner's uid and its name. Callers may write
 * OWNER:NAME (OWNER a uid number or "system", which is uid 0) to address another owner's key;
 * text keeps what they wrote, for the audit record. */
typedef struct {
	guint32 owner;
	gchar *name;
	gchar *text; /* as written (at most TKMS_KEY_NAME_MAX + 1 bytes, valid UTF-8), or NULL */
} TkmsKeyRef;

/* Splits text into owner and name; without an OWNER: part the owner is default_owner. Only
 * the owner's syntax is checked here (TKMS_ERROR_INVALID_ARGUMENT): whether NAME is a valid
 * key name is checked where the key is used, after authorization. ref is filled in either
 * way (a malformed OWNER leaves default_owner) and must be cleared. */
gboolean tkms_key_ref_parse(TkmsKeyRef *ref, const gchar *text, guint32 default_owner,
			    GError **error);
/* A reference made by tkmsd itself (no text as written). */
void tkms_key_ref_init(TkmsKeyRef *ref, guint32 owner, const gchar *name);
void tkms_key_ref_copy(TkmsKeyRef *dst, const TkmsKeyRef *src);
void tkms_key_ref_clear(TkmsKeyRef *ref);
/* What the audit record names: the text as written, else NAME. */
const gchar *tkms_key_ref_audit_text(const TkmsKeyRef *ref);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TkmsKeyRef, tkms_key_ref_clear)

G_END_DECLS
