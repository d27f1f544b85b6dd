/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm-context.h"

G_BEGIN_DECLS

/* Loads (or creates, once per state directory) the key behind sealed blobs' auth values. */
gboolean tkms_tpm_ensure_seal_auth_key(TkmsTpmContext *ctx, GError **error);
/* Reads seal-auth.key into ctx; TRUE without a key only if it is absent and may be made. */
gboolean tkms_tpm_load_seal_auth_key(TkmsTpmContext *ctx, GError **error);
/* owner's auth value for sealed blobs; session: a salted session (the result is a credential
 * and travels encrypted). */
gboolean tkms_tpm_seal_auth_value(TkmsTpmContext *ctx, guint32 owner, ESYS_TR session,
				  TPM2B_AUTH *auth, GError **error);

/* The auth value of a bound key version's object (tpm.h); session as above. */
gboolean tkms_tpm_key_auth_value(TkmsTpmContext *ctx, const TkmsTpmKeyId *id, ESYS_TR session,
				 TPM2B_AUTH *auth, GError **error);
/* Loads a key version's object and starts the session that authorizes its use: for a bound
 * blob its derived auth value, proven by a salted HMAC session (PCR-bound: a policy session
 * with PolicyPCR and PolicyAuthValue); otherwise tkms_tpm_object_session (secret: the command
 * or its answer carries a secret). On failure nothing stays loaded. */
gboolean tkms_tpm_load_key(TkmsTpmContext *ctx, const TkmsTpmBlob *blob, const TkmsTpmKeyId *id,
			   TkmsPcrMask pcrs, gboolean secret, ESYS_TR *obj, ESYS_TR *session,
			   GError **error);

G_END_DECLS
