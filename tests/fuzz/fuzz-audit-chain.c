/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "fuzz"

/* The audit log verifier reads files an attacker may have edited: any content gives a verdict,
 * never a crash. */

#include <glib/gstdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "audit-chain.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

static gchar *path = NULL;

/* Every run left its scratch file in $TMPDIR (libFuzzer and the plain driver both end with
 * exit()). */
static void
remove_scratch(void)
{
	if (path != NULL)
		g_unlink(path);
}

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	g_autoptr(GError) error = NULL;
	guint64 n = 0;

	if (path == NULL) {
		gint fd = g_file_open_tmp("tkms-fuzz-audit-XXXXXX", &path, NULL);
		g_assert_cmpint(fd, >=, 0);
		close(fd);
		atexit(remove_scratch);
	}
	/* no fsync: thousands of inputs, and nothing here needs them on disk */
	g_assert_true(g_file_set_contents_full(path, (const gchar *)data, (gssize)size,
					       G_FILE_SET_CONTENTS_NONE, 0600, NULL));
	if (!tkms_audit_chain_verify_file(path, NULL, &n, &error))
		g_assert_nonnull(error);
	return 0;
}
