/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define TKMS_TYPE_KEY_VERSION_INFO (tkms_key_version_info_get_type())
G_DECLARE_FINAL_TYPE(TkmsKeyVersionInfo, tkms_key_version_info, TKMS, KEY_VERSION_INFO, GObject)

TkmsKeyVersionInfo *tkms_key_version_info_new_from_variant(GVariant *version, GError **error);

guint tkms_key_version_info_get_version(TkmsKeyVersionInfo *self);
const gchar *tkms_key_version_info_get_state(TkmsKeyVersionInfo *self);
guint64 tkms_key_version_info_get_created(TkmsKeyVersionInfo *self);
/* Since 0.2: the dates of the life cycle (0: not yet), uses, and the public key. */
guint64 tkms_key_version_info_get_activated(TkmsKeyVersionInfo *self);
guint64 tkms_key_version_info_get_superseded(TkmsKeyVersionInfo *self);
guint64 tkms_key_version_info_get_deactivated(TkmsKeyVersionInfo *self);
guint64 tkms_key_version_info_get_destroy_at(TkmsKeyVersionInfo *self);
guint64 tkms_key_version_info_get_destroyed(TkmsKeyVersionInfo *self);
guint64 tkms_key_version_info_get_uses(TkmsKeyVersionInfo *self);
const gchar *tkms_key_version_info_get_public_key(TkmsKeyVersionInfo *self);
/* Since 0.2: the stage of a password key's version, NULL if it has none. */
const gchar *tkms_key_version_info_get_stage(TkmsKeyVersionInfo *self);

G_END_DECLS
