/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm-context.h"

G_BEGIN_DECLS

/* Loads (or creates, once per state directory) the key behind sealed blobs' auth values. */
gboolean tkms_tpm_ensure_seal_auth_key(TkmsTpmContext *ctx, GError **error);
/* owner's auth value for sealed blobs; session: a salted session (the result is a credential
 * and travels encrypted). */
gboolean tkms_tpm_seal_auth_value(TkmsTpmContext *ctx, guint32 owner, ESYS_TR session,
				  TPM2B_AUTH *auth, GError **error);

G_END_DECLS
