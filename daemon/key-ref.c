/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-key"

#include "key-ref.h"

#include <string.h>

#include "key.h"
#include "tkms-error.h"

gboolean
tkms_key_ref_parse(TkmsKeyRef *ref, const gchar *text, guint32 default_owner, GError **error)
{
	g_autofree gchar *cut = g_strndup(text, TKMS_KEY_NAME_MAX + 1);
	g_autofree gchar *owner = NULL;
	const gchar *colon = strchr(text, ':');
	guint64 uid;

	/* the audit record shows what was asked for, bounded, and always valid UTF-8 */
	memset(ref, 0, sizeof(*ref));
	ref->text = g_utf8_make_valid(cut, -1);
	if (colon == NULL) {
		ref->owner = default_owner;
		ref->name = g_strdup(text);
		return TRUE;
	}
	owner = g_strndup(text, colon - text);
	/* a malformed owner's record still names the key, as the caller's */
	ref->owner = default_owner;
	ref->name = g_strdup(colon + 1);
	if (g_str_equal(owner, "system")) {
		uid = 0;
	} else if (owner[strspn(owner, "0123456789")] != '\0' ||
		   !g_ascii_string_to_unsigned(owner, 10, 0, G_MAXUINT32 - 1, &uid, NULL)) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "Malformed key owner; write OWNER:NAME with OWNER a uid number "
				    "or \"system\"");
		return FALSE;
	}
	ref->owner = uid;
	return TRUE;
}

void
tkms_key_ref_init(TkmsKeyRef *ref, guint32 owner, const gchar *name)
{
	ref->owner = owner;
	ref->name = g_strdup(name);
	ref->text = NULL;
}

void
tkms_key_ref_copy(TkmsKeyRef *dst, const TkmsKeyRef *src)
{
	dst->owner = src->owner;
	dst->name = g_strdup(src->name);
	dst->text = g_strdup(src->text);
}

void
tkms_key_ref_clear(TkmsKeyRef *ref)
{
	g_clear_pointer(&ref->name, g_free);
	g_clear_pointer(&ref->text, g_free);
}

const gchar *
tkms_key_ref_audit_text(const TkmsKeyRef *ref)
{
	return ref->text != NULL ? ref->text : ref->name;
}
