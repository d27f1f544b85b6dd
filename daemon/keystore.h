/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "tpm.h"

G_BEGIN_DECLS

typedef enum {
	TKMS_KEY_TYPE_AES_256_GCM,
	TKMS_KEY_TYPE_HMAC_SHA256,
	TKMS_KEY_TYPE_ECDSA_P256,
	TKMS_KEY_TYPE_RSA_2048,
} TkmsKeyType;

typedef struct {
	guint32 version;
	gchar *state; /* NIST SP 800-57 state: "active", "destroyed", ... */
	gint64 created;
	TkmsTpmBlob blob;
} TkmsKeyVersion;

typedef struct {
	gint refcount;
	guint32 owner;
	gchar *name;
	TkmsKeyType type;
	gchar *description;
	gint64 created;
	TkmsPcrMask pcrs;
	guint32 primary_version;
	GPtrArray *versions; /* TkmsKeyVersion, ascending */
} TkmsKey;

#define TKMS_KEY_NAME_MAX 64

gboolean tkms_key_name_is_valid(const gchar *name);
gboolean tkms_key_type_from_string(const gchar *str, TkmsKeyType *type);
const gchar *tkms_key_type_to_string(TkmsKeyType type);
const gchar *tkms_key_type_protection(TkmsKeyType type);
TkmsTpmObjectKind tkms_key_type_object_kind(TkmsKeyType type);

TkmsKey *tkms_key_new(guint32 owner, const gchar *name, TkmsKeyType type);
TkmsKey *tkms_key_ref(TkmsKey *key);
void tkms_key_unref(TkmsKey *key);
TkmsKeyVersion *tkms_key_get_version(TkmsKey *key, guint32 version);
TkmsKeyVersion *tkms_key_add_version(TkmsKey *key, TkmsTpmBlob *blob_stolen);
GVariant *tkms_key_to_variant(TkmsKey *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsKey, tkms_key_unref)

#define TKMS_TYPE_KEYSTORE (tkms_keystore_get_type())
G_DECLARE_FINAL_TYPE(TkmsKeystore, tkms_keystore, TKMS, KEYSTORE, GObject)

TkmsKeystore *tkms_keystore_new(const gchar *state_dir, GError **error);
TkmsKey *tkms_keystore_lookup(TkmsKeystore *self, guint32 owner, const gchar *name);
/* Keys of one owner, or of every owner with TKMS_KEYSTORE_ALL_OWNERS; by owner, then name. */
#define TKMS_KEYSTORE_ALL_OWNERS G_MAXUINT32
GPtrArray *tkms_keystore_list(TkmsKeystore *self, guint32 owner);
gboolean tkms_keystore_has_owner(TkmsKeystore *self, guint32 owner);
/* Claims a name while its key is being generated, so a concurrent create fails early. */
gboolean tkms_keystore_reserve(TkmsKeystore *self, guint32 owner, const gchar *name,
			       GError **error);
void tkms_keystore_release(TkmsKeystore *self, guint32 owner, const gchar *name);
/* Writes the key durably (in a thread), then makes it visible to lookups. */
void tkms_keystore_save(TkmsKeystore *self, TkmsKey *key, GCancellable *cancellable,
			GAsyncReadyCallback callback, gpointer user_data);
gboolean tkms_keystore_save_finish(TkmsKeystore *self, GAsyncResult *result, GError **error);

G_END_DECLS
