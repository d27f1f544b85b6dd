/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* How a fuzz target reports a finding that is not a crash (a forged input accepted, a genuine
 * one refused). */

#include <glib.h>

/* Prints why and aborts: abort(), not g_error()'s trap, because libFuzzer catches SIGABRT and
 * keeps the input. */
G_NORETURN void tkms_fuzz_fail(const gchar *why);
