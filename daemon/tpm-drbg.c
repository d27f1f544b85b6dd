/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

#include "tpm-drbg.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "tkms-error.h"
#include "tpm-object.h"

#define SEED_LEN 48 /* CTR-DRBG AES-256's seed length */
#define ADIN_LEN 32
#define STRENGTH 256

static gboolean
drbg_failed(const gchar *what, GError **error)
{
	gchar buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	ERR_clear_error();
	g_warning("DRBG: %s failed: %s", what, buf);
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
		    "The random generator could not %s; see the daemon log", what);
	return FALSE;
}

/* len bytes of the TPM's RNG, encrypted on the bus */
static gboolean
tpm_bytes(TkmsTpmContext *ctx, guint8 *out, gsize len, GError **error)
{
	ESYS_TR session = ESYS_TR_NONE;

	return tkms_tpm_session(ctx, &session, error) &&
	       tkms_tpm_get_random(ctx, session, out, len, error);
}

static gboolean
instantiate(TkmsTpmContext *ctx, const guint8 *seed, GError **error)
{
	EVP_RAND *rand = EVP_RAND_fetch(NULL, "CTR-DRBG", NULL);
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_DRBG_PARAM_CIPHER, "AES-256-CTR", 0),
	    OSSL_PARAM_construct_end(),
	};

	if (rand == NULL)
		return drbg_failed("be made", error);
	/* no parent: OpenSSL's own seed source feeds it besides the TPM's bytes */
	ctx->drbg = EVP_RAND_CTX_new(rand, NULL);
	EVP_RAND_free(rand);
	if (ctx->drbg == NULL ||
	    !EVP_RAND_instantiate(ctx->drbg, STRENGTH, 0, seed, SEED_LEN, params)) {
		g_clear_pointer(&ctx->drbg, EVP_RAND_CTX_free);
		return drbg_failed("be seeded", error);
	}
	return TRUE;
}

gboolean
tkms_tpm_drbg_generate(TkmsTpmContext *ctx, guint8 *out, gsize len, GError **error)
{
	guint8 seed[SEED_LEN], adin[ADIN_LEN];
	gint64 now = g_get_monotonic_time();
	gboolean due = ctx->drbg == NULL || ctx->drbg_output >= TKMS_TPM_DRBG_RESEED_BYTES ||
		       now - ctx->drbg_seeded_at >= TKMS_TPM_DRBG_RESEED_SECONDS * G_USEC_PER_SEC;
	size_t max_request = 0;
	OSSL_PARAM get[] = {
	    OSSL_PARAM_construct_size_t(OSSL_RAND_PARAM_MAX_REQUEST, &max_request),
	    OSSL_PARAM_construct_end(),
	};
	gboolean ok = TRUE;

	if (due) {
		ok = tpm_bytes(ctx, seed, SEED_LEN, error);
		if (ok && ctx->drbg == NULL)
			ok = instantiate(ctx, seed, error);
		else if (ok && !EVP_RAND_reseed(ctx->drbg, 0, seed, SEED_LEN, NULL, 0))
			ok = drbg_failed("be reseeded", error);
		OPENSSL_cleanse(seed, sizeof(seed));
		if (!ok)
			return FALSE;
		ctx->drbg_output = 0;
		ctx->drbg_seeded_at = now;
	}
	if (!tpm_bytes(ctx, adin, ADIN_LEN, error))
		return FALSE;
	if (!EVP_RAND_CTX_get_params(ctx->drbg, get) || max_request == 0)
		max_request = 4096;
	for (gsize off = 0; ok && off < len;) {
		gsize n = MIN(len - off, max_request);
		/* the TPM's bytes go into the first block of the request */
		ok = EVP_RAND_generate(ctx->drbg, out + off, n, STRENGTH, 0, off == 0 ? adin : NULL,
				       off == 0 ? ADIN_LEN : 0);
		off += n;
	}
	OPENSSL_cleanse(adin, sizeof(adin));
	if (!ok) {
		OPENSSL_cleanse(out, len);
		/* a DRBG in error state must not serve again */
		g_clear_pointer(&ctx->drbg, EVP_RAND_CTX_free);
		return drbg_failed("generate", error);
	}
	ctx->drbg_output += len;
	return TRUE;
}

void
tkms_tpm_drbg_free(TkmsTpmContext *ctx)
{
	/* uninstantiating wipes its state */
	g_clear_pointer(&ctx->drbg, EVP_RAND_CTX_free);
}
