/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-direct-key"

/*
 * Direct TPM access to key versions' objects, for the /binding tests of tests/test-datakey.c, without
 * tkmsd and without its state directory: the public SRK template is recreated under the owner
 * hierarchy as tkmsd does.
 *
 *   tkms-test-direct-key TCTI use KIND PUBLIC-FILE PRIVATE-FILE
 *     The attacker with a copy of a key's row: loads the object (dropping the mark of a bound
 *     blob) and uses it with the empty auth value (sealed: Unseal; hmac: HMAC; ecc, rsa:
 *     Sign of a digest). Exit 0: the TPM refused the authorization; 1: the key was usable
 *     (tkms is broken); 2: anything else (the test itself is wrong).
 *
 *   tkms-test-direct-key TCTI create KIND PUBLIC-FILE PRIVATE-FILE
 *     A key version in the format from before binding (empty auth value, no mark), with
 *     tkmsd's template; for sealed, prints the sealed AES key in hex. Exit 0 on success.
 *
 * KIND: sealed, hmac, ecc, rsa.
 */

#include <stdio.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "tpm-object.h"
#include "tpm-srk.h"

static gboolean
kind_from_string(const gchar *s, TkmsTpmObjectKind *kind)
{
	if (g_str_equal(s, "sealed"))
		*kind = TKMS_TPM_OBJECT_SEALED;
	else if (g_str_equal(s, "hmac"))
		*kind = TKMS_TPM_OBJECT_HMAC;
	else if (g_str_equal(s, "ecc"))
		*kind = TKMS_TPM_OBJECT_ECC_P256;
	else if (g_str_equal(s, "rsa"))
		*kind = TKMS_TPM_OBJECT_RSA_2048;
	else
		return FALSE;
	return TRUE;
}

static gboolean
is_auth_failure(TSS2_RC rc)
{
	return (rc & TPM2_RC_FMT1) && ((rc & 0x3f) == (TPM2_RC_AUTH_FAIL & 0x3f) ||
				       (rc & 0x3f) == (TPM2_RC_BAD_AUTH & 0x3f));
}

static int
use(ESYS_CONTEXT *esys, ESYS_TR srk, TkmsTpmObjectKind kind, const gchar *pub_file,
    const gchar *priv_file)
{
	g_autofree gchar *p = NULL, *s = NULL;
	gsize plen = 0, slen = 0;
	size_t off = 0;
	TPM2B_PUBLIC pub = {0};
	TPM2B_PRIVATE priv = {0};
	ESYS_TR obj = ESYS_TR_NONE;
	const guint8 *sp;
	TSS2_RC rc;

	if (!g_file_get_contents(pub_file, &p, &plen, NULL) ||
	    !g_file_get_contents(priv_file, &s, &slen, NULL))
		return 2;
	sp = (const guint8 *)s;
	/* the mark tells tkmsd to derive an auth value; the TPM never sees it */
	if (slen >= 4 && memcmp(sp, "TKAB", 4) == 0) {
		sp += 4;
		slen -= 4;
	}
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal((const guint8 *)p, plen, &off, &pub) != 0)
		return 2;
	off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(sp, slen, &off, &priv) != 0)
		return 2;
	rc = Esys_Load(esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &obj);
	if (rc != TSS2_RC_SUCCESS) {
		printf("load failed: 0x%x\n", rc);
		return 2;
	}
	if (kind == TKMS_TPM_OBJECT_SEALED) {
		TPM2B_SENSITIVE_DATA *out = NULL;
		rc = Esys_Unseal(esys, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &out);
		Esys_Free(out);
	} else if (kind == TKMS_TPM_OBJECT_HMAC) {
		TPM2B_MAX_BUFFER msg = {.size = 4, .buffer = "test"};
		TPM2B_DIGEST *mac = NULL;
		rc = Esys_HMAC(esys, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &msg,
			       TPM2_ALG_SHA256, &mac);
		Esys_Free(mac);
	} else {
		TPM2B_DIGEST digest = {.size = 32};
		TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
		TPMT_TK_HASHCHECK check = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
		TPMT_SIGNATURE *sig = NULL;
		rc = Esys_Sign(esys, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &digest,
			       &scheme, &check, &sig);
		Esys_Free(sig);
	}
	Esys_FlushContext(esys, obj);
	printf("use: 0x%x\n", rc);
	if (rc == TSS2_RC_SUCCESS)
		return 1;
	return is_auth_failure(rc) ? 0 : 2;
}

static int
create(ESYS_CONTEXT *esys, ESYS_TR srk, TkmsTpmObjectKind kind, const gchar *pub_file,
       const gchar *priv_file)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl;
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION pcrs = {0};
	TPM2B_PUBLIC *pub = NULL;
	TPM2B_PRIVATE *priv = NULL;
	guint8 pbuf[sizeof(TPM2B_PUBLIC)], sbuf[sizeof(TPM2B_PRIVATE)];
	size_t poff = 0, soff = 0;
	TSS2_RC rc;

	tkms_tpm_fill_template(kind, &tmpl);
	if (kind == TKMS_TPM_OBJECT_SEALED) {
		sens.sensitive.data.size = 32;
		for (guint i = 0; i < 32; i++)
			sens.sensitive.data.buffer[i] = (guint8)g_random_int();
	}
	rc = Esys_Create(esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
			 &outside, &pcrs, &priv, &pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		printf("create failed: 0x%x\n", rc);
		return 2;
	}
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, pbuf, sizeof(pbuf), &poff) != 0 ||
	    Tss2_MU_TPM2B_PRIVATE_Marshal(priv, sbuf, sizeof(sbuf), &soff) != 0 ||
	    !g_file_set_contents(pub_file, (const gchar *)pbuf, poff, NULL) ||
	    !g_file_set_contents(priv_file, (const gchar *)sbuf, soff, NULL))
		return 2;
	Esys_Free(pub);
	Esys_Free(priv);
	if (kind == TKMS_TPM_OBJECT_SEALED) {
		for (guint i = 0; i < 32; i++)
			printf("%02x", sens.sensitive.data.buffer[i]);
		printf("\n");
	}
	return 0;
}

int
main(int argc, char **argv)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	ESYS_TR srk = ESYS_TR_NONE;
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl;
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION pcrs = {0};
	TkmsTpmObjectKind kind;
	int ret;

	if (argc != 6 || !kind_from_string(argv[3], &kind) ||
	    (!g_str_equal(argv[2], "use") && !g_str_equal(argv[2], "create")))
		return 2;
	if (Tss2_TctiLdr_Initialize(argv[1], &tcti) != TSS2_RC_SUCCESS ||
	    Esys_Initialize(&esys, tcti, NULL) != TSS2_RC_SUCCESS)
		return 2;
	tkms_tpm_srk_template(&tmpl);
	if (Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			       ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, &srk, NULL, NULL, NULL,
			       NULL) != TSS2_RC_SUCCESS)
		return 2;
	if (g_str_equal(argv[2], "use"))
		ret = use(esys, srk, kind, argv[4], argv[5]);
	else
		ret = create(esys, srk, kind, argv[4], argv[5]);
	Esys_FlushContext(esys, srk);
	Esys_Finalize(&esys);
	Tss2_TctiLdr_Finalize(&tcti);
	return ret;
}
