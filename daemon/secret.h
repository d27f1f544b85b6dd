/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Key material in OpenSSL's secure heap (locked, excluded from core dumps, wiped on free). */
typedef struct _TkmsSecret TkmsSecret;

gboolean tkms_secret_init_heap(GError **error);
TkmsSecret *tkms_secret_new(gsize len);
TkmsSecret *tkms_secret_new_from_data(const guint8 *data, gsize len);
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
