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

G_END_DECLS
