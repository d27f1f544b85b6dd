/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-docs"

/* The documentation is executable: every ```sh block of README.md's "Quick tour", of
 * docs/dbus-api.md and of docs/passwords.md runs, in document order, in one `bash -e` against
 * a fresh daemon, as a reader would paste them after `source /var/tmp/tkms-demo/env`. The
 * blocks share one shell (docs/dbus-api.md defines $B, $G and helpers once) and one key store,
 * so an example that uses a key an earlier one did not create, or creates a name an earlier
 * one took, fails.
 *
 * Convention: a block that must not run here (it needs the demo itself, or a real PostgreSQL
 * server: the two of docs/passwords.md's walk-through, which tests/test-password-pg.c does
 * against a private one) is preceded, on the line right before its fence, by
 * `<!-- not-run -->`. The list stays tiny: /docs/not-run-blocks fails when it grows past
 * MAX_NOT_RUN.
 *
 * The environment is the demo's env file's: DBUS_SYSTEM_BUS_ADDRESS and TKMS_ADDRESS name the
 * fixture's private bus, TKMS_STATE_DIR its state directory, and the build's tkmsctl is first
 * on PATH. The working directory is a fresh temporary one. */

#include <string.h>

#include "tkms-test-util.h"

#define NOT_RUN_MARKER "<!-- not-run -->"
#define MAX_NOT_RUN 4
#define SCRIPT_TIMEOUT_S 240

typedef struct {
	const gchar *file;    /* relative to the source root */
	const gchar *section; /* only this "## " section, or NULL for the whole file */
} DocSource;

static const DocSource doc_sources[] = {
    {"README.md", "## Quick tour"},
    {"docs/dbus-api.md", NULL},
    {"docs/passwords.md", NULL},
};

typedef struct {
	gchar *file;
	guint first_line; /* 1-based line of the block's first command line */
	guint index;      /* 1-based number among the file's ```sh blocks */
	gboolean not_run;
	gchar **lines;
} DocBlock;

static TkmsTestEnv *env;

static void doc_block_free(gpointer data)
{
	DocBlock *b = data;

	g_free(b->file);
	g_strfreev(b->lines);
	g_free(b);
}

static const gchar *source_root(void)
{
	const gchar *root = g_getenv("TKMS_SOURCE_ROOT");

	if (root == NULL)
		g_error("TKMS_SOURCE_ROOT is not set (tests/meson.build sets it)");
	return root;
}

/* Appends the ```sh blocks of source (in its section) to blocks. */
static void extract_blocks(const DocSource *source, GPtrArray *blocks)
{
	g_autofree gchar *path = g_build_filename(source_root(), source->file, NULL);
	g_autofree gchar *text = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GPtrArray) current = NULL;
	gboolean in_section = source->section == NULL;
	gboolean section_seen = FALSE;
	DocBlock *block = NULL;
	guint n_blocks = 0;

	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	lines = g_strsplit(text, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++) {
		const gchar *line = lines[i];

		if (block != NULL) {
			if (g_str_has_prefix(line, "```")) {
				g_ptr_array_add(current, NULL);
				block->lines =
				    (gchar **)g_ptr_array_free(g_steal_pointer(&current), FALSE);
				g_ptr_array_add(blocks, block);
				block = NULL;
			} else {
				g_ptr_array_add(current, g_strdup(line));
			}
			continue;
		}
		if (source->section != NULL && g_str_has_prefix(line, "## ")) {
			in_section = g_str_equal(line, source->section);
			section_seen |= in_section;
			continue;
		}
		if (!in_section || !g_str_equal(line, "```sh"))
			continue;
		block = g_new0(DocBlock, 1);
		block->file = g_strdup(source->file);
		block->first_line = i + 2;
		block->index = ++n_blocks;
		block->not_run = i > 0 && g_str_equal(lines[i - 1], NOT_RUN_MARKER);
		current = g_ptr_array_new_with_free_func(g_free);
	}
	if (block != NULL)
		g_error("%s: the ```sh block at line %u has no closing fence", source->file,
		        block->first_line - 1);
	if (source->section != NULL && !section_seen)
		g_error("%s has no section \"%s\"", source->file, source->section);
}

static GPtrArray *all_blocks(void)
{
	GPtrArray *blocks = g_ptr_array_new_with_free_func(doc_block_free);

	for (guint i = 0; i < G_N_ELEMENTS(doc_sources); i++)
		extract_blocks(&doc_sources[i], blocks);
	return blocks;
}

/* One bash script: each block preceded by where it comes from, so that the ERR trap can
 * name the file, line, block and command that failed. */
static gchar *build_script(GPtrArray *blocks, guint *n_run)
{
	GString *s = g_string_new(NULL);
	guint script_line;

	g_string_append(s,
	                "set -eEo pipefail\n"
	                "__doc_file=; __doc_block=0; __doc_delta=0\n"
	                "trap '__doc_rc=$?; printf \"test-docs: %s:%d (sh block %d): exit status "
	                "%d: %s\\n\" \"$__doc_file\" $((LINENO + __doc_delta)) \"$__doc_block\" "
	                "\"$__doc_rc\" \"$BASH_COMMAND\" >&2' ERR\n");
	script_line = 4;
	*n_run = 0;
	for (guint i = 0; i < blocks->len; i++) {
		DocBlock *b = g_ptr_array_index(blocks, i);
		g_autofree gchar *quoted = NULL;

		if (b->not_run)
			continue;
		(*n_run)++;
		quoted = g_shell_quote(b->file);
		/* two lines of bookkeeping; the block's first line is then script_line + 2 */
		g_string_append_printf(s, "__doc_file=%s; __doc_block=%u; __doc_delta=%d\n", quoted,
		                       b->index, (gint)b->first_line - (gint)(script_line + 2));
		g_string_append_printf(s, "printf '\\n### %%s:%u\\n' %s\n", b->first_line, quoted);
		script_line += 2;
		for (guint j = 0; b->lines[j] != NULL; j++) {
			g_string_append_printf(s, "%s\n", b->lines[j]);
			script_line++;
		}
	}
	g_string_append(s, "trap - ERR\nprintf '\\n### all blocks ran\\n'\n");
	return g_string_free(s, FALSE);
}

static void test_examples_run(void)
{
	g_autoptr(GPtrArray) blocks = all_blocks();
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) bash = NULL;
	g_autofree gchar *script = NULL;
	g_autofree gchar *script_path = NULL;
	g_autofree gchar *work = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *path = NULL;
	const gchar *tkmsctl = g_getenv("TKMSCTL");
	const gchar *address = tkms_test_env_get_bus_address(env);
	guint n_run = 0;

	g_assert_nonnull(tkmsctl);
	g_assert_true(g_file_test(tkmsctl, G_FILE_TEST_IS_EXECUTABLE));

	script = build_script(blocks, &n_run);
	/* both files contribute: a renamed section must not silently run nothing */
	g_assert_cmpuint(n_run, >=, 20);

	work = g_build_filename(tkms_test_env_get_tmp_dir(env), "docs", NULL);
	g_assert_cmpint(g_mkdir_with_parents(work, 0700), ==, 0);
	script_path = g_build_filename(tkms_test_env_get_tmp_dir(env), "docs.sh", NULL);
	g_file_set_contents(script_path, script, -1, &error);
	g_assert_no_error(error);

	{
		g_autofree gchar *bindir = g_path_get_dirname(tkmsctl);
		const gchar *inherited = g_getenv("PATH");

		path = g_strdup_printf("%s:%s", bindir,
		                       inherited != NULL ? inherited : "/usr/bin:/bin");
	}
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDERR_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDIN_INHERIT);
	g_subprocess_launcher_set_cwd(launcher, work);
	g_subprocess_launcher_setenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS", address, TRUE);
	g_subprocess_launcher_setenv(launcher, "TKMS_ADDRESS", address, TRUE);
	g_subprocess_launcher_setenv(launcher, "TKMS_STATE_DIR", tkms_test_env_get_state_dir(env),
	                             TRUE);
	g_subprocess_launcher_setenv(launcher, "PATH", path, TRUE);
	g_subprocess_launcher_setenv(launcher, "HOME", work, TRUE);
	g_subprocess_launcher_setenv(launcher, "LC_ALL", "C.UTF-8", TRUE);
	bash = g_subprocess_launcher_spawn(launcher, &error, "timeout", "--kill-after=5",
	                                   G_STRINGIFY(SCRIPT_TIMEOUT_S), "bash", "--noprofile",
	                                   "--norc", script_path, NULL);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(bash, NULL, NULL, &out, &err, &error);
	g_assert_no_error(error);

	if (!g_subprocess_get_successful(bash)) {
		g_autoptr(GString) where = g_string_new(NULL);
		g_auto(GStrv) err_lines = g_strsplit(err, "\n", -1);

		g_test_message("stdout of the examples:\n%s", out);
		g_test_message("stderr of the examples:\n%s", err);
		for (guint i = 0; err_lines[i] != NULL; i++)
			if (g_str_has_prefix(err_lines[i], "test-docs: "))
				g_string_append_printf(where, "%s%s", where->len > 0 ? "; " : "",
				                       err_lines[i] + strlen("test-docs: "));
		if (where->len == 0)
			g_string_append_printf(where, "bash exited with status %d (timeout %d s?)",
			                       g_subprocess_get_exit_status(bash),
			                       SCRIPT_TIMEOUT_S);
		g_test_fail_printf("a documented example failed: %s", where->str);
		return;
	}
	g_assert_true(g_str_has_suffix(out, "### all blocks ran\n"));
	g_test_message("%u example blocks ran", n_run);
}

/* The not-run list stays tiny, and names what it holds. */
static void test_not_run_blocks(void)
{
	g_autoptr(GPtrArray) blocks = all_blocks();
	g_autoptr(GString) list = g_string_new(NULL);
	guint n = 0;

	for (guint i = 0; i < blocks->len; i++) {
		DocBlock *b = g_ptr_array_index(blocks, i);

		if (!b->not_run)
			continue;
		n++;
		g_string_append_printf(list, "  %s:%u\n", b->file, b->first_line);
	}
	g_test_message("not-run blocks:\n%s", list->str);
	if (n > MAX_NOT_RUN)
		g_test_fail_printf("%u blocks are marked %s (at most %d): %s", n, NOT_RUN_MARKER,
		                   MAX_NOT_RUN, g_strdelimit(list->str, "\n", ' '));
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/docs/not-run-blocks", test_not_run_blocks);
	g_test_add_func("/docs/examples-run", test_examples_run);

	env = tkms_test_env_new_or_abort(NULL);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	return ret;
}
