/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm-context.h"

G_BEGIN_DECLS

/* Loads (or creates, once per state directory) the key behind sealed blobs' auth values. */
gboolean tkms_tpm_ensure_seal_auth_key(TkmsTpmContext *ctx, GError **error);
/* Reads seal-auth.key into ctx; TRUE without a key only if it is absent and may be made. */
gboolean tkms_tpm_load_seal_auth_key(TkmsTpmContext *ctx, GError **error);
/* owner's auth value for sealed blobs, derived in the shared session (the result is a
 * credential and travels encrypted). */
gboolean tkms_tpm_seal_auth_value(TkmsTpmContext *ctx, guint32 owner, TPM2B_AUTH *auth,
				  GError **error);

/* The auth value of a bound key version's object (tpm.h), likewise. */
gboolean tkms_tpm_key_auth_value(TkmsTpmContext *ctx, const TkmsTpmKeyId *id, TPM2B_AUTH *auth,
				 GError **error);
/* Loads a key version's object and prepares the sessions that authorize a command on it
 * (TkmsTpmAuth; secret: the command or its answer carries a secret): for a bound blob its
 * derived auth value, else the empty one (tkms_tpm_object_auth). On failure nothing stays
 * loaded; otherwise tkms_tpm_auth_clear after the command. */
gboolean tkms_tpm_load_key(TkmsTpmContext *ctx, const TkmsTpmBlob *blob, const TkmsTpmKeyId *id,
			   TkmsPcrMask pcrs, gboolean secret, ESYS_TR *obj, TkmsTpmAuth *auth,
			   GError **error);

G_END_DECLS
