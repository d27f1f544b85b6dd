/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <tss2/tss2_tpm2_types.h>

/* The template of the storage root key every tkms object is wrapped under. */
void tkms_tpm_srk_template(TPM2B_PUBLIC *tmpl);
