/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "tpm.h"

G_BEGIN_DECLS

/*
 * Seal blob format 2 (integers big-endian):
 *   "TKSB" | format u8 = 2 | reserved u8 + u16 = 0 | owner uid u32 | PCR mask u32 |
 *   public length u16 | TPM2B_PUBLIC | private length u16 | TPM2B_PRIVATE |
 *   IV (12) | data length u32 | AES-256-GCM ciphertext | tag (16)
 * The data key is the sealed object's content; the object's auth value is derived from the
 * owner uid by a daemon key in the TPM, so only tkmsd can open it. The AEAD's associated data is
 * "tkms-seal-v1" 0x00 followed by every byte before the IV.
 */
typedef struct {
	guint32 owner;
	TkmsPcrMask pcrs;
	TkmsTpmBlob object;
	const guint8 *aad_prefix; /* the bytes before the IV */
	gsize aad_prefix_len;
	const guint8 *iv;
	const guint8 *body;
	gsize body_len;
	const guint8 *tag;
} TkmsSealBlob;

#define TKMS_SEAL_AAD_LABEL "tkms-seal-v1"

/* Writes everything up to the IV; the caller appends IV, length, ciphertext and tag. */
GByteArray *tkms_seal_blob_write_head(guint32 owner, TkmsPcrMask pcrs, const TkmsTpmBlob *obj);
/* Parses; blob->object holds new references. FALSE if malformed. */
gboolean tkms_seal_blob_parse(GBytes *data, TkmsSealBlob *blob);
GBytes *tkms_seal_blob_aad(const guint8 *prefix, gsize len);

G_END_DECLS
