/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "key.h"

G_BEGIN_DECLS

/* The key store of tkms before SQLite: one JSON document per key, DIR/<uid>/<name>.json. */

typedef gboolean (*TkmsKeystoreImportFunc)(TkmsKey *key, gpointer user_data, GError **error);

/* Reads every document under dir, in order, and hands each key to func. Stops at the first
 * document that cannot be read or is not a valid key document, with an error naming it.
 * Files not ending in .json (a temporary file left by a crash mid-write) are not documents. */
gboolean tkms_keystore_import_json(const gchar *dir, TkmsKeystoreImportFunc func,
				   gpointer user_data, guint *n_keys, GError **error);

G_END_DECLS
