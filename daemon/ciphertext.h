/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "crypto.h"

G_BEGIN_DECLS

/*
 * Ciphertext format 1 (all integers big-endian):
 *   "TKMS" | format u8 = 1 | algorithm u8 = 1 (AES-256-GCM) | reserved u16 = 0 |
 *   key version u32 | IV (12) | ciphertext | tag (16)
 * The AEAD associated data is "tkms-aead-v1" 0x00 | the 12-byte header | owner uid u32 |
 * name length u8 | name | context length u32 | context, so a ciphertext only opens under the
 * same owner, key, version and context.
 */
#define TKMS_CT_HEADER_LEN 12
#define TKMS_CT_OVERHEAD (TKMS_CT_HEADER_LEN + TKMS_GCM_IV_LEN + TKMS_GCM_TAG_LEN)

typedef struct {
	guint32 version;
	const guint8 *header;
	const guint8 *iv;
	const guint8 *body;
	gsize body_len;
	const guint8 *tag;
} TkmsCiphertext;

void tkms_ciphertext_write_header(guint8 *out, guint32 version);
/* Returns FALSE if data is not a tkms ciphertext of a known format. */
gboolean tkms_ciphertext_parse(const guint8 *data, gsize len, TkmsCiphertext *ct);
GBytes *tkms_ciphertext_aad(const guint8 *header, guint32 owner, const gchar *name,
			    const guint8 *context, gsize context_len);

G_END_DECLS
