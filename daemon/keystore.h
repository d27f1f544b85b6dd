/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "key.h"

G_BEGIN_DECLS

#define TKMS_TYPE_KEYSTORE (tkms_keystore_get_type())
G_DECLARE_FINAL_TYPE(TkmsKeystore, tkms_keystore, TKMS, KEYSTORE, GObject)

/* Opens the key store in state_dir. A damaged or foreign store is refused with an error that
 * names the file, never recreated. */
TkmsKeystore *tkms_keystore_new(const gchar *state_dir, GError **error);

/* The key (a new reference), read on use. NULL with TKMS_ERROR_NOT_FOUND if owner has no key
 * of that name (destroyed keys are found: their metadata stays), or another error if the
 * store cannot be read. */
TkmsKey *tkms_keystore_lookup(TkmsKeystore *self, guint32 owner, const gchar *name,
			      GError **error);

/* Every owner, for tkms_keystore_list. */
#define TKMS_KEYSTORE_ALL_OWNERS G_MAXUINT32

/* Up to limit keys (new references) of owner, or of every owner with
 * TKMS_KEYSTORE_ALL_OWNERS, sorted by owner, then name (bytewise), that sort strictly after
 * (after_owner, after_name); after_name NULL starts from the first key. */
GPtrArray *tkms_keystore_list(TkmsKeystore *self, guint32 owner, guint32 after_owner,
			      const gchar *after_name, guint limit, GError **error);

/* Up to limit keys (new references) whose next event (tkms_key_next_event) is due at now,
 * the longest due first. */
GPtrArray *tkms_keystore_list_due(TkmsKeystore *self, gint64 now, guint limit, GError **error);
/* The password keys (new references) with a rotation under way (rotation.step not none), to
 * resume at start. */
GPtrArray *tkms_keystore_list_rotating(TkmsKeystore *self, GError **error);
/* The time of the earliest event of any key, or *when 0 if none. */
gboolean tkms_keystore_next_due(TkmsKeystore *self, gint64 *when, GError **error);

gboolean tkms_keystore_has_owner(TkmsKeystore *self, guint32 owner);

/* Claims a name while its key is being generated, so that a concurrent create fails early:
 * TKMS_ERROR_ALREADY_EXISTS if the name is taken (or was: names are never reused),
 * TKMS_ERROR_LIMIT_EXCEEDED if owner already has max_keys keys that are not destroyed,
 * reservations included (max_keys 0: no limit). */
gboolean tkms_keystore_reserve(TkmsKeystore *self, guint32 owner, const gchar *name,
			       guint max_keys, GError **error);
void tkms_keystore_release(TkmsKeystore *self, guint32 owner, const gchar *name);

/* Writes the key and all its versions durably, in one transaction (in a thread), then makes
 * the new state visible to lookups. */
void tkms_keystore_save(TkmsKeystore *self, TkmsKey *key, GCancellable *cancellable,
			GAsyncReadyCallback callback, gpointer user_data);
gboolean tkms_keystore_save_finish(TkmsKeystore *self, GAsyncResult *result, GError **error);

/* Records the usage counts of one version durably, in one transaction of the same thread as
 * the saves (so in order with them): uses and uses_reserved only ever grow. due > 0: the key's
 * next event falls due at due at the latest (its primary reached its usage cap). The cached key
 * is not changed: the engine holds the live counts. Finished by tkms_keystore_save_finish. */
void tkms_keystore_save_uses(TkmsKeystore *self, guint32 owner, const gchar *name,
			     guint32 version, guint64 uses, guint64 uses_reserved, gint64 due,
			     GAsyncReadyCallback callback, gpointer user_data);

/* At a clean stop, once no use is counted any more: sets the counts of one version to exactly
 * uses (the unused part of its reservation returns), waiting for the write. */
gboolean tkms_keystore_release_uses_sync(TkmsKeystore *self, guint32 owner, const gchar *name,
					 guint32 version, guint64 uses, GError **error);

G_END_DECLS
