/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm-context.h"

G_BEGIN_DECLS

/*
 * GetRandom's generator: an SP 800-90A CTR-DRBG (AES-256, derivation function; OpenSSL's
 * EVP_RAND) of the worker's own, so that a request of any size costs the TPM a command or two
 * instead of one per 32-64 bytes. Its seed comes from the TPM's RNG: 48 bytes as the
 * personalization string at instantiation and as entropy input at every reseed (after
 * TKMS_TPM_DRBG_RESEED_BYTES of output or TKMS_TPM_DRBG_RESEED_SECONDS), OpenSSL adding its
 * own seed source to both; and each request passes 32 fresh TPM bytes as additional input, so
 * a request never succeeds without the TPM. Prediction resistance is not used. Every TPM byte
 * travels encrypted in the shared session.
 */
#define TKMS_TPM_DRBG_RESEED_BYTES (1024 * 1024)
#define TKMS_TPM_DRBG_RESEED_SECONDS 60

/* len random bytes into out. */
gboolean tkms_tpm_drbg_generate(TkmsTpmContext *ctx, guint8 *out, gsize len, GError **error);
/* Wipes and frees the generator (at the worker's end). */
void tkms_tpm_drbg_free(TkmsTpmContext *ctx);

G_END_DECLS
