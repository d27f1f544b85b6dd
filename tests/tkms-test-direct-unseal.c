/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-direct-unseal"

/*
 * The attacker of test /seal/direct-tpm: someone with direct access to the TPM and a copy of
 * a Seal blob, but not tkmsd's state directory. It recreates tkmsd's storage root key (the
 * template is public), loads the blob's sealed object under it and tries to unseal it with
 * the empty auth value.
 *
 * Usage: tkms-test-direct-unseal TCTI BLOB-FILE
 * Exit: 0 the TPM refused (auth failure), 1 the data key came out (tkms is broken),
 *       2 anything else (e.g. the object did not load: the test itself is wrong).
 */

#include <stdio.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "sealblob.h"
#include "tpm-srk.h"

int
main(int argc, char **argv)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	ESYS_TR srk = ESYS_TR_NONE, obj = ESYS_TR_NONE;
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl, pub = {0};
	TPM2B_PRIVATE priv = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION pcrs = {0};
	TPM2B_SENSITIVE_DATA *out = NULL;
	g_autofree gchar *data = NULL;
	g_autoptr(GBytes) bytes = NULL;
	TkmsSealBlob blob;
	gsize len = 0;
	size_t off = 0;
	TSS2_RC rc;

	if (argc != 3 || !g_file_get_contents(argv[2], &data, &len, NULL))
		return 2;
	bytes = g_bytes_new_take(g_steal_pointer(&data), len);
	if (!tkms_seal_blob_parse(bytes, &blob) ||
	    Tss2_MU_TPM2B_PUBLIC_Unmarshal(g_bytes_get_data(blob.object.public, NULL),
					   g_bytes_get_size(blob.object.public), &off,
					   &pub) != TSS2_RC_SUCCESS)
		return 2;
	off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(g_bytes_get_data(blob.object.private, NULL),
					    g_bytes_get_size(blob.object.private), &off,
					    &priv) != TSS2_RC_SUCCESS)
		return 2;
	if (Tss2_TctiLdr_Initialize(argv[1], &tcti) != TSS2_RC_SUCCESS ||
	    Esys_Initialize(&esys, tcti, NULL) != TSS2_RC_SUCCESS)
		return 2;
	tkms_tpm_srk_template(&tmpl);
	rc = Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
				ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, &srk, NULL, NULL, NULL,
				NULL);
	if (rc != TSS2_RC_SUCCESS)
		return 2;
	rc = Esys_Load(esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &obj);
	if (rc != TSS2_RC_SUCCESS) {
		printf("load failed: 0x%x\n", rc);
		Esys_FlushContext(esys, srk);
		return 2;
	}
	rc = Esys_Unseal(esys, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &out);
	Esys_FlushContext(esys, obj);
	Esys_FlushContext(esys, srk);
	Esys_Finalize(&esys);
	Tss2_TctiLdr_Finalize(&tcti);
	printf("unseal: 0x%x\n", rc);
	if (rc == TSS2_RC_SUCCESS)
		return 1;
	/* TPM_RC_AUTH_FAIL or TPM_RC_BAD_AUTH, for the first session */
	return ((rc & TPM2_RC_FMT1) && ((rc & 0x3f) == (TPM2_RC_AUTH_FAIL & 0x3f) ||
					 (rc & 0x3f) == (TPM2_RC_BAD_AUTH & 0x3f)))
		       ? 0
		       : 2;
}
