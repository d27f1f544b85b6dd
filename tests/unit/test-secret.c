/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-secret"

/* Key material in the secure heap (daemon/secret.c): when it is full, a new secret is an
 * error the caller can report (Busy: retry later), never an abort of tkmsd, and the heap is
 * usable again as soon as secrets are freed; secret bytes outside it are the size asked for. */

#include <string.h>

#include "secret.h"
#include "tkms-error.h"

#define CHUNK (64 * 1024)

static void
test_heap_full(void)
{
	g_autoptr(GPtrArray) held =
		g_ptr_array_new_with_free_func((GDestroyNotify)tkms_secret_unref);
	g_autoptr(GError) error = NULL;
	TkmsSecret *secret = NULL;

	g_assert_true(tkms_secret_init_heap(FALSE, &error));
	g_assert_no_error(error);
	/* 1 MiB: sixteen of these at most, fewer with the allocator's own overhead */
	for (guint i = 0; i < 64; i++) {
		secret = tkms_secret_new(CHUNK, &error);
		if (secret == NULL)
			break;
		memset(tkms_secret_get_data(secret), 0xa5, CHUNK);
		g_ptr_array_add(held, secret);
	}
	g_test_message("%u secrets of %d bytes, then: %s", held->len, CHUNK,
		       error ? error->message : "(no error)");
	g_assert_null(secret);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_BUSY);
	g_assert_nonnull(strstr(error->message, "locked memory for key material is full"));
	g_assert_nonnull(strstr(error->message, "retry later"));
	g_assert_cmpuint(held->len, >=, 8);
	g_assert_cmpuint(held->len, <=, 16);
	g_clear_error(&error);

	/* usable again once some are freed */
	g_ptr_array_remove_range(held, 0, 2);
	secret = tkms_secret_new(CHUNK, &error);
	g_assert_no_error(error);
	g_assert_nonnull(secret);
	g_ptr_array_add(held, secret);
	secret = tkms_secret_new_from_data((const guint8 *)"key", 3, &error);
	g_assert_no_error(error);
	g_assert_cmpmem(tkms_secret_get_data(secret), 3, "key", 3);
	tkms_secret_unref(secret);
}

static void
test_secret_bytes(void)
{
	guint8 *p = NULL;
	g_autoptr(GBytes) empty = tkms_secret_bytes_new(0, &p);
	g_autoptr(GBytes) some = NULL;
	g_autoptr(GBytes) copy = tkms_secret_bytes_new_copy((const guint8 *)"plaintext", 9);

	g_assert_nonnull(p);
	g_assert_cmpuint(g_bytes_get_size(empty), ==, 0);
	some = tkms_secret_bytes_new(5, &p);
	memcpy(p, "abcde", 5);
	g_assert_cmpmem(g_bytes_get_data(some, NULL), g_bytes_get_size(some), "abcde", 5);
	g_assert_cmpmem(g_bytes_get_data(copy, NULL), g_bytes_get_size(copy), "plaintext", 9);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/secret/heap-full", test_heap_full);
	g_test_add_func("/secret/bytes", test_secret_bytes);
	return g_test_run();
}
