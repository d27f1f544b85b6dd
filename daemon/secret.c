/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-secret"

#include "secret.h"

#include <openssl/crypto.h>

#include "tkms-error.h"

struct _TkmsSecret {
	gint refcount;
	gsize len;
	guint8 *data;
};

gboolean
tkms_secret_init_heap(GError **error)
{
	/* 1 MiB of locked memory: the key cache holds 32-byte keys, so this is thousands. */
	if (CRYPTO_secure_malloc_init(1 << 20, 32) == 0) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "Cannot set up the secure heap for key material; check "
				    "RLIMIT_MEMLOCK (LimitMEMLOCK= in the unit)");
		return FALSE;
	}
	return TRUE;
}

TkmsSecret *
tkms_secret_new(gsize len)
{
	TkmsSecret *secret = g_new0(TkmsSecret, 1);
	secret->refcount = 1;
	secret->len = len;
	secret->data = OPENSSL_secure_zalloc(MAX(len, 1));
	if (secret->data == NULL)
		g_error("secure heap exhausted");
	return secret;
}

TkmsSecret *
tkms_secret_new_from_data(const guint8 *data, gsize len)
{
	TkmsSecret *secret = tkms_secret_new(len);
	memcpy(secret->data, data, len);
	return secret;
}

TkmsSecret *
tkms_secret_ref(TkmsSecret *secret)
{
	g_atomic_int_inc(&secret->refcount);
	return secret;
}

void
tkms_secret_unref(TkmsSecret *secret)
{
	if (secret == NULL || !g_atomic_int_dec_and_test(&secret->refcount))
		return;
	OPENSSL_secure_clear_free(secret->data, MAX(secret->len, 1));
	g_free(secret);
}

guint8 *
tkms_secret_get_data(TkmsSecret *secret)
{
	return secret->data;
}

gsize
tkms_secret_get_len(TkmsSecret *secret)
{
	return secret->len;
}

/* ---- secret bytes in ordinary memory ---- */

typedef struct {
	gsize len;
	guint8 data[];
} WipedBuffer;

static void
wiped_buffer_free(gpointer user_data)
{
	WipedBuffer *buf = user_data;

	OPENSSL_cleanse(buf->data, buf->len);
	g_free(buf);
}

GBytes *
tkms_secret_bytes_new(gsize len, guint8 **data)
{
	WipedBuffer *buf = g_malloc(sizeof(WipedBuffer) + MAX(len, 1));

	buf->len = len;
	*data = buf->data;
	return g_bytes_new_with_free_func(buf->data, len, wiped_buffer_free, buf);
}

GBytes *
tkms_secret_bytes_new_copy(const guint8 *data, gsize len)
{
	guint8 *p;
	GBytes *bytes = tkms_secret_bytes_new(len, &p);

	if (len > 0)
		memcpy(p, data, len);
	return bytes;
}
