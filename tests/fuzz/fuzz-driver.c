/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "fuzz"

/* Without libFuzzer (gcc builds, the test suite): runs a fuzz target over every file of the
 * given directories, so the seed corpus and every crash ever found stay regression tests. */

#include <glib.h>

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);
/* Optional, in a target whose seeds include inputs that must succeed (a genuine ciphertext, a
 * valid signature): called after the whole corpus ran, it fails if one of them did not, so
 * the target is known to reach its success path and not only its refusals. */
void tkms_fuzz_corpus_done(void) __attribute__((weak));

int
main(int argc, char **argv)
{
	guint n = 0;

	for (int i = 1; i < argc; i++) {
		g_autoptr(GDir) dir = g_dir_open(argv[i], 0, NULL);
		const gchar *name;

		if (dir == NULL) {
			g_printerr("cannot open corpus %s\n", argv[i]);
			return 1;
		}
		while ((name = g_dir_read_name(dir)) != NULL) {
			g_autofree gchar *path = g_build_filename(argv[i], name, NULL);
			g_autofree gchar *data = NULL;
			gsize len = 0;

			if (!g_file_get_contents(path, &data, &len, NULL))
				return 1;
			LLVMFuzzerTestOneInput((const guint8 *)data, len);
			/* and every prefix: truncation is the commonest corruption */
			for (gsize cut = 0; cut < len; cut++)
				LLVMFuzzerTestOneInput((const guint8 *)data, cut);
			n++;
		}
	}
	if (tkms_fuzz_corpus_done != NULL)
		tkms_fuzz_corpus_done();
	g_print("%u inputs ran\n", n);
	return n > 0 ? 0 : 1;
}
