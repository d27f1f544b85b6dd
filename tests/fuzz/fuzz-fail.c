/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "fuzz"

#include "fuzz-fail.h"

#include <stdlib.h>

void
tkms_fuzz_fail(const gchar *why)
{
	g_printerr("%s\n", why);
	abort();
}
