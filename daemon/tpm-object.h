/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm-context.h"

G_BEGIN_DECLS

/* Loads a stored object under the SRK. untrusted: the blob came from a caller, so a refusal
 * is IntegrityFailure rather than an internal error. */
gboolean tkms_tpm_load_object(TkmsTpmContext *ctx, const TkmsTpmBlob *blob, gboolean untrusted,
			      ESYS_TR *handle, GError **error);
/* The public template of a kind of object (fixedTPM, fixedParent, noDA). */
void tkms_tpm_fill_template(TkmsTpmObjectKind kind, TPM2B_PUBLIC *tmpl);
/* len bytes of the TPM's RNG, through session (the shared one: the answer travels encrypted). */
gboolean tkms_tpm_get_random(TkmsTpmContext *ctx, ESYS_TR session, guint8 *out, gsize len,
			     GError **error);
/* TPM2_Create under the SRK, authorized by session (the shared one, which encrypts sens; the
 * password when sens holds nothing); out gets the marshalled blob, marked as a bound key
 * version's if bound (tpm.h). */
gboolean tkms_tpm_create_object(TkmsTpmContext *ctx, ESYS_TR session,
				const TPM2B_SENSITIVE_CREATE *sens, const TPM2B_PUBLIC *tmpl,
				gboolean bound, TkmsTpmBlob *out, GError **error);

G_END_DECLS
