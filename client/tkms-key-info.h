/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "tkms-key-version-info.h"

G_BEGIN_DECLS

#define TKMS_TYPE_KEY_INFO (tkms_key_info_get_type())
G_DECLARE_FINAL_TYPE(TkmsKeyInfo, tkms_key_info, TKMS, KEY_INFO, GObject)

TkmsKeyInfo *tkms_key_info_new_from_variant(GVariant *info, GError **error);

const gchar *tkms_key_info_get_name(TkmsKeyInfo *self);
guint tkms_key_info_get_owner(TkmsKeyInfo *self);
/* the "type" property; tkms_key_info_get_type() is the GType */
const gchar *tkms_key_info_get_key_type(TkmsKeyInfo *self);
const gchar *tkms_key_info_get_protection(TkmsKeyInfo *self);
guint64 tkms_key_info_get_created(TkmsKeyInfo *self);
guint tkms_key_info_get_primary_version(TkmsKeyInfo *self);
const gchar *tkms_key_info_get_state(TkmsKeyInfo *self);
const gchar *tkms_key_info_get_description(TkmsKeyInfo *self);
const guint32 *tkms_key_info_get_pcrs(TkmsKeyInfo *self, guint *n_pcrs);
GPtrArray *tkms_key_info_get_versions(TkmsKeyInfo *self);
GVariant *tkms_key_info_get_variant(TkmsKeyInfo *self);
/* Since 0.2: the rotation policy (0: none), the next rotation and scheduled destruction. */
guint64 tkms_key_info_get_rotation_period(TkmsKeyInfo *self);
guint64 tkms_key_info_get_max_uses(TkmsKeyInfo *self);
guint64 tkms_key_info_get_deactivate_after(TkmsKeyInfo *self);
guint64 tkms_key_info_get_destroy_after(TkmsKeyInfo *self);
guint64 tkms_key_info_get_next_rotation(TkmsKeyInfo *self);
guint64 tkms_key_info_get_destroy_at(TkmsKeyInfo *self);

/* Since 0.2: password keys: the hook, the spec of generated passwords, the rotation that
 * runs and the last one that ended (NULL and 0: none). */
const gchar *tkms_key_info_get_rotation_hook(TkmsKeyInfo *self);
guint tkms_key_info_get_password_length(TkmsKeyInfo *self);
const gchar *tkms_key_info_get_password_charset(TkmsKeyInfo *self);
const gchar *tkms_key_info_get_password_exclude(TkmsKeyInfo *self);
const gchar *tkms_key_info_get_rotation_step(TkmsKeyInfo *self);
guint tkms_key_info_get_rotation_version(TkmsKeyInfo *self);
guint64 tkms_key_info_get_rotation_started(TkmsKeyInfo *self);
const gchar *tkms_key_info_get_last_rotation_result(TkmsKeyInfo *self);
const gchar *tkms_key_info_get_last_rotation_step(TkmsKeyInfo *self);
guint64 tkms_key_info_get_last_rotation_time(TkmsKeyInfo *self);
guint tkms_key_info_get_last_rotation_version(TkmsKeyInfo *self);
const gchar *tkms_key_info_get_last_rotation_reason(TkmsKeyInfo *self);
guint64 tkms_key_info_get_last_rotation_next_retry(TkmsKeyInfo *self);

G_END_DECLS
