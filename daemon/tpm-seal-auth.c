/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

#include "tpm-seal-auth.h"

#include <openssl/crypto.h>
#include <string.h>

#include "tkms-error.h"
#include "tpm-object.h"

/*
 * Seal's blobs leave the daemon, so their sealed object must not open for whoever holds a copy
 * and can reach the TPM directly: its auth value is HMAC(K, "tkms-seal-auth-v1" 0 uid), K an
 * HMAC key in the TPM whose blob (seal-auth.key) stays in the root-only state directory.
 */
#define SEAL_AUTH_LABEL "tkms-seal-auth-v1"
#define SEAL_AUTH_MAGIC "TKSA"

static gboolean
write_seal_auth_key(TkmsTpmContext *ctx, GError **error)
{
	g_autoptr(GByteArray) a = g_byte_array_new();
	GBytes *parts[] = {ctx->seal_auth_key.public, ctx->seal_auth_key.private};

	g_byte_array_append(a, (const guint8 *)SEAL_AUTH_MAGIC, 4);
	for (guint i = 0; i < G_N_ELEMENTS(parts); i++) {
		guint16 be = GUINT16_TO_BE((guint16)g_bytes_get_size(parts[i]));
		g_byte_array_append(a, (const guint8 *)&be, 2);
		g_byte_array_append(a, g_bytes_get_data(parts[i], NULL), g_bytes_get_size(parts[i]));
	}
	return g_file_set_contents_full(ctx->seal_auth_path, (const gchar *)a->data, a->len,
					G_FILE_SET_CONTENTS_CONSISTENT |
						G_FILE_SET_CONTENTS_DURABLE,
					0600, error);
}

static gboolean
read_seal_auth_key(TkmsTpmContext *ctx, const guint8 *p, gsize len)
{
	GBytes *parts[2] = {NULL, NULL};
	gsize off = 4;

	if (len < 4 || memcmp(p, SEAL_AUTH_MAGIC, 4) != 0)
		return FALSE;
	for (guint i = 0; i < 2; i++) {
		guint16 be;
		if (len - off < 2)
			goto bad;
		memcpy(&be, p + off, 2);
		off += 2;
		if (len - off < GUINT16_FROM_BE(be))
			goto bad;
		parts[i] = g_bytes_new(p + off, GUINT16_FROM_BE(be));
		off += GUINT16_FROM_BE(be);
	}
	ctx->seal_auth_key.public = parts[0];
	ctx->seal_auth_key.private = parts[1];
	return TRUE;
bad:
	g_clear_pointer(&parts[0], g_bytes_unref);
	return FALSE;
}

gboolean
tkms_tpm_ensure_seal_auth_key(TkmsTpmContext *ctx, GError **error)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl;

	if (ctx->seal_auth_key.public != NULL)
		return TRUE;
	if (g_file_get_contents(ctx->seal_auth_path, &contents, &len, NULL)) {
		if (read_seal_auth_key(ctx, (const guint8 *)contents, len))
			return TRUE;
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "%s is damaged; sealed blobs cannot be opened without it: restore it "
			    "from a backup",
			    ctx->seal_auth_path);
		return FALSE;
	}
	/* the TPM generates the key: nothing secret goes in */
	tkms_tpm_fill_template(TKMS_TPM_OBJECT_HMAC, &tmpl);
	if (!tkms_tpm_create_object(ctx, ESYS_TR_PASSWORD, &sens, &tmpl, &ctx->seal_auth_key,
				    error))
		return FALSE;
	if (!write_seal_auth_key(ctx, error)) {
		tkms_tpm_blob_clear(&ctx->seal_auth_key);
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_tpm_seal_auth_value(TkmsTpmContext *ctx, guint32 owner, ESYS_TR session, TPM2B_AUTH *auth,
			 GError **error)
{
	ESYS_TR obj = ESYS_TR_NONE;
	TPM2B_MAX_BUFFER msg = {0};
	g_autofree TPM2B_DIGEST *mac = NULL;
	guint32 be = GUINT32_TO_BE(owner);
	TSS2_RC rc;

	if (!tkms_tpm_ensure_seal_auth_key(ctx, error) ||
	    !tkms_tpm_load_object(ctx, &ctx->seal_auth_key, FALSE, &obj, error))
		return FALSE;
	memcpy(msg.buffer, SEAL_AUTH_LABEL, sizeof(SEAL_AUTH_LABEL));
	memcpy(msg.buffer + sizeof(SEAL_AUTH_LABEL), &be, 4);
	msg.size = sizeof(SEAL_AUTH_LABEL) + 4;
	tkms_tpm_set_session_crypt(ctx, session, TRUE, TRUE);
	rc = Esys_HMAC(ctx->esys, obj, session, ESYS_TR_NONE, ESYS_TR_NONE, &msg, TPM2_ALG_SHA256,
		       &mac);
	tkms_tpm_flush(ctx, &obj);
	if (!tkms_tpm_check(rc, "deriving the blob's auth value", error))
		return FALSE;
	auth->size = mac->size;
	memcpy(auth->buffer, mac->buffer, mac->size);
	OPENSSL_cleanse(mac->buffer, mac->size);
	return TRUE;
}
