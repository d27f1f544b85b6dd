/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-key"

/* A key and its versions as the engine sees them, the key types, and the key-name rule. */

#include "key.h"

#include <string.h>

static const struct {
	const gchar *name;
	const gchar *protection;
	TkmsTpmObjectKind kind;
} key_types[] = {
	[TKMS_KEY_TYPE_AES_256_GCM] = {"aes-256-gcm", "sealed", TKMS_TPM_OBJECT_SEALED},
	[TKMS_KEY_TYPE_HMAC_SHA256] = {"hmac-sha256", "tpm", TKMS_TPM_OBJECT_HMAC},
	[TKMS_KEY_TYPE_ECDSA_P256] = {"ecdsa-p256", "tpm", TKMS_TPM_OBJECT_ECC_P256},
	[TKMS_KEY_TYPE_RSA_2048] = {"rsa-2048", "tpm", TKMS_TPM_OBJECT_RSA_2048},
};

gboolean
tkms_key_name_is_valid(const gchar *name)
{
	gsize len = strlen(name);
	if (len == 0 || len > TKMS_KEY_NAME_MAX || name[0] == '.')
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		gchar c = name[i];
		if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-')
			return FALSE;
	}
	return TRUE;
}

gboolean
tkms_key_type_from_string(const gchar *str, TkmsKeyType *type)
{
	for (guint i = 0; i < G_N_ELEMENTS(key_types); i++) {
		if (g_strcmp0(str, key_types[i].name) == 0) {
			*type = i;
			return TRUE;
		}
	}
	return FALSE;
}

const gchar *
tkms_key_type_to_string(TkmsKeyType type)
{
	return key_types[type].name;
}

const gchar *
tkms_key_type_protection(TkmsKeyType type)
{
	return key_types[type].protection;
}

TkmsTpmObjectKind
tkms_key_type_object_kind(TkmsKeyType type)
{
	return key_types[type].kind;
}

static void
key_version_free(TkmsKeyVersion *v)
{
	tkms_tpm_blob_clear(&v->blob);
	g_free(v->state);
	g_free(v);
}

TkmsKey *
tkms_key_new(guint32 owner, const gchar *name, TkmsKeyType type)
{
	TkmsKey *key = g_new0(TkmsKey, 1);
	key->refcount = 1;
	key->owner = owner;
	key->name = g_strdup(name);
	key->type = type;
	key->created = g_get_real_time() / G_USEC_PER_SEC;
	key->versions = g_ptr_array_new_with_free_func((GDestroyNotify)key_version_free);
	return key;
}

TkmsKey *
tkms_key_ref(TkmsKey *key)
{
	key->refcount++;
	return key;
}

void
tkms_key_unref(TkmsKey *key)
{
	if (key == NULL || --key->refcount > 0)
		return;
	g_free(key->name);
	g_free(key->description);
	g_ptr_array_unref(key->versions);
	g_free(key);
}

TkmsKeyVersion *
tkms_key_get_version(TkmsKey *key, guint32 version)
{
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		if (v->version == version)
			return v;
	}
	return NULL;
}

TkmsKeyVersion *
tkms_key_add_version(TkmsKey *key, TkmsTpmBlob *blob_stolen)
{
	TkmsKeyVersion *v = g_new0(TkmsKeyVersion, 1);
	v->version = key->versions->len + 1;
	v->state = g_strdup("active");
	v->created = g_get_real_time() / G_USEC_PER_SEC;
	v->blob = *blob_stolen;
	memset(blob_stolen, 0, sizeof(*blob_stolen));
	g_ptr_array_add(key->versions, v);
	key->primary_version = v->version;
	return v;
}

GVariant *
tkms_key_to_variant(TkmsKey *key)
{
	GVariantBuilder b, vb, pb;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "name", g_variant_new_string(key->name));
	g_variant_builder_add(&b, "{sv}", "type",
			      g_variant_new_string(tkms_key_type_to_string(key->type)));
	g_variant_builder_add(&b, "{sv}", "protection",
			      g_variant_new_string(tkms_key_type_protection(key->type)));
	g_variant_builder_add(&b, "{sv}", "owner", g_variant_new_uint32(key->owner));
	g_variant_builder_add(&b, "{sv}", "created", g_variant_new_uint64(key->created));
	g_variant_builder_add(&b, "{sv}", "primary-version",
			      g_variant_new_uint32(key->primary_version));
	g_variant_builder_init(&vb, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		g_variant_builder_open(&vb, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&vb, "{sv}", "version", g_variant_new_uint32(v->version));
		g_variant_builder_add(&vb, "{sv}", "state", g_variant_new_string(v->state));
		g_variant_builder_add(&vb, "{sv}", "created", g_variant_new_uint64(v->created));
		g_variant_builder_close(&vb);
	}
	g_variant_builder_add(&b, "{sv}", "versions", g_variant_builder_end(&vb));
	g_variant_builder_init(&pb, G_VARIANT_TYPE("au"));
	for (guint i = 0; i < TKMS_PCR_MAX; i++)
		if (key->pcrs & (1u << i))
			g_variant_builder_add(&pb, "u", i);
	g_variant_builder_add(&b, "{sv}", "pcrs", g_variant_builder_end(&pb));
	g_variant_builder_add(&b, "{sv}", "description",
			      g_variant_new_string(key->description ? key->description : ""));
	return g_variant_builder_end(&b);
}
