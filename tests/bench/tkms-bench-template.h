/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <tss2/tss2_tpm2_types.h>

/* The ECC P-256 ECDSA signing key the raw and peer rows sign with, as a primary. */
void tkms_bench_ecc_sign_template(TPM2B_PUBLIC *tmpl);
