/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Key material in OpenSSL's secure heap (locked, excluded from core dumps, wiped on free). */
typedef struct _TkmsSecret TkmsSecret;

/* Sets up the secure heap. If it cannot be locked in memory (RLIMIT_MEMLOCK too low), or not
 * set up at all: with require_locked an error naming the limit, else one warning and TRUE. */
gboolean tkms_secret_init_heap(gboolean require_locked, GError **error);
/* NULL with TKMS_ERROR_BUSY when the secure heap is full (never an abort). */
TkmsSecret *tkms_secret_new(gsize len, GError **error);
TkmsSecret *tkms_secret_new_from_data(const guint8 *data, gsize len, GError **error);
TkmsSecret *tkms_secret_ref(TkmsSecret *secret);
void tkms_secret_unref(TkmsSecret *secret);
guint8 *tkms_secret_get_data(TkmsSecret *secret);
gsize tkms_secret_get_len(TkmsSecret *secret);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsSecret, tkms_secret_unref)

/* Secrets too large or too many for the secure heap (replies: decrypted plaintexts, unsealed
 * data, derived keys, random bytes) in ordinary memory, wiped when the last reference to the
 * GBytes goes. _new hands out the (uninitialized) bytes to fill in *data. */
GBytes *tkms_secret_bytes_new(gsize len, guint8 **data);
GBytes *tkms_secret_bytes_new_copy(const guint8 *data, gsize len);

G_END_DECLS
