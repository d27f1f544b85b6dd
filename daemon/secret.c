/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-secret"

#include "secret.h"

#include <openssl/crypto.h>
#include <sys/resource.h>

#include "tkms-error.h"

/* 1 MiB of locked memory: the key cache holds 32-byte keys, so this is thousands. */
#define SECURE_HEAP_SIZE (1 << 20)
#define SECURE_HEAP_MIN 32

struct _TkmsSecret {
	gint refcount;
	gsize len;
	guint8 *data;
};

static gchar *
memlock_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0)
		return g_strdup("unknown");
	if (rl.rlim_cur == RLIM_INFINITY)
		return g_strdup("unlimited");
	return g_strdup_printf("%llu bytes", (unsigned long long)rl.rlim_cur);
}

gboolean
tkms_secret_init_heap(gboolean require_locked, GError **error)
{
	int rc = CRYPTO_secure_malloc_init(SECURE_HEAP_SIZE, SECURE_HEAP_MIN);
	g_autofree gchar *limit = NULL;

	/* 2: the heap exists but could not be locked (mlock) or kept out of core dumps */
	if (rc == 1)
		return TRUE;
	limit = memlock_limit();
	if (require_locked) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "[security] RequireLockedMemory=true, but the secure heap for key "
			    "material (%d bytes) %s (RLIMIT_MEMLOCK is %s); raise LimitMEMLOCK= "
			    "in tkmsd.service (or ulimit -l), or set RequireLockedMemory=false",
			    SECURE_HEAP_SIZE, rc == 0 ? "cannot be set up" : "cannot be locked",
			    limit);
		return FALSE;
	}
	g_warning("the secure heap for key material (%d bytes) %s (RLIMIT_MEMLOCK is %s): key "
		  "material may be swapped to disk; raise LimitMEMLOCK= in tkmsd.service (or "
		  "ulimit -l), or set [security] RequireLockedMemory=true to refuse to start",
		  SECURE_HEAP_SIZE,
		  rc == 0 ? "cannot be set up, ordinary memory is used" : "cannot be locked",
		  limit);
	return TRUE;
}

TkmsSecret *
tkms_secret_new(gsize len, GError **error)
{
	guint8 *data = OPENSSL_secure_zalloc(MAX(len, 1));
	TkmsSecret *secret;

	if (data == NULL) {
		/* full (held by the key cache and the calls in flight): it empties as they end */
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_BUSY,
			    "tkmsd's locked memory for key material is full (%zu of %d bytes in "
			    "use); retry later",
			    CRYPTO_secure_used(), SECURE_HEAP_SIZE);
		return NULL;
	}
	secret = g_new0(TkmsSecret, 1);
	secret->refcount = 1;
	secret->len = len;
	secret->data = data;
	return secret;
}

TkmsSecret *
tkms_secret_new_from_data(const guint8 *data, gsize len, GError **error)
{
	TkmsSecret *secret = tkms_secret_new(len, error);

	if (secret != NULL)
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
