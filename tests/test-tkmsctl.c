/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-tkmsctl"

/* tkmsctl end to end: the built binary ($TKMSCTL) against the test environment. Covers data
 * through files and stdin, --json output, signatures checked by openssl, the exit codes
 * scripts rely on, and the offline audit log check. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "tkms-test-util.h"

#include <json-glib/json-glib.h>
#include <openssl/evp.h>

static TkmsTestEnv *env;
static gchar *workdir;
/* tkmsd's [passwords] HookDirectory: root's, 0755, with the hooks below; NULL when hooks
 * cannot run here (they run as nobody) */
static gchar *hooks_dir;

#define HOOK_USER "nobody"

/* A target that takes its time, so that each step is seen as it runs. */
static const gchar hook_ok[] = "#!/bin/sh\n"
			       "/bin/cat > /dev/null\n"
			       "/bin/sleep 0.3\n"
			       "exit 0\n";
/* A target that takes the new password but does not let it log in. */
static const gchar hook_fail_test[] = "#!/bin/sh\n"
				      "/bin/cat > /dev/null\n"
				      "if [ \"$1\" = test ]; then\n"
				      "\techo 'cannot log in as app' >&2\n"
				      "\texit 1\n"
				      "fi\n"
				      "exit 0\n";

static gchar *
path_in_workdir(const gchar *name)
{
	return g_build_filename(workdir, name, NULL);
}

/* Runs argv with the NULL-terminated VAR, VALUE pairs @env added to the environment;
 * returns the exit status. A crash fails the test. */
static gint
run_argv_env(const gchar *const *argv, const gchar *const *env, GBytes *input,
	     GBytes **out_stdout, gchar **out_stderr)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
		G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
		G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) err = NULL;
	g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
	g_autoptr(GError) error = NULL;

	g_subprocess_launcher_set_cwd(launcher, workdir);
	for (guint i = 0; env != NULL && env[i] != NULL; i += 2)
		g_subprocess_launcher_setenv(launcher, env[i], env[i + 1], TRUE);
	proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
	g_assert_no_error(error);
	/* with a stdin pipe, communicate wants bytes to write: none is EOF at once */
	g_subprocess_communicate(proc, input != NULL ? input : empty, NULL, &out, &err, &error);
	g_assert_no_error(error);
	if (g_test_verbose() && g_bytes_get_size(err) > 0)
		g_test_message("%s stderr: %.*s", argv[0], (int)g_bytes_get_size(err),
			       (const gchar *)g_bytes_get_data(err, NULL));
	/* a crash shows its report (a sanitizer's, say) before it fails the test */
	if (!g_subprocess_get_if_exited(proc))
		g_printerr("%s was killed by signal %d; its stderr:\n%.*s\n", argv[0],
			   g_subprocess_get_term_sig(proc), (int)g_bytes_get_size(err),
			   (const gchar *)g_bytes_get_data(err, NULL));
	g_assert_true(g_subprocess_get_if_exited(proc));
	if (out_stdout != NULL)
		*out_stdout = g_steal_pointer(&out);
	if (out_stderr != NULL)
		*out_stderr = g_strndup(g_bytes_get_data(err, NULL), g_bytes_get_size(err));
	return g_subprocess_get_exit_status(proc);
}

static gint
run_argv(const gchar *const *argv, GBytes *input, GBytes **out_stdout, gchar **out_stderr)
{
	return run_argv_env(argv, NULL, input, out_stdout, out_stderr);
}

/* tkmsctl --address BUS args... with input on stdin (NULL: empty). */
static gint G_GNUC_NULL_TERMINATED
ctl(GBytes *input, GBytes **out_stdout, gchar **out_stderr, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	const gchar *arg;
	va_list ap;

	g_ptr_array_add(argv, (gpointer)g_getenv("TKMSCTL"));
	g_ptr_array_add(argv, (gpointer) "--address");
	g_ptr_array_add(argv, (gpointer)tkms_test_env_get_bus_address(env));
	va_start(ap, out_stderr);
	while ((arg = va_arg(ap, const gchar *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	return run_argv((const gchar *const *)argv->pdata, input, out_stdout, out_stderr);
}

static gchar *
bytes_to_str(GBytes *b)
{
	return g_strndup(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
}

static GBytes *
read_file(const gchar *path)
{
	gchar *contents = NULL;
	gsize len = 0;
	g_autoptr(GError) error = NULL;

	g_file_get_contents(path, &contents, &len, &error);
	g_assert_no_error(error);
	return g_bytes_new_take(contents, len);
}

static gchar *
create_key(const gchar *prefix, const gchar *type)
{
	gchar *name = tkms_test_key_name(prefix);

	g_assert_cmpint(ctl(NULL, NULL, NULL, "create", name, type, NULL), ==, 0);
	return name;
}

static JsonNode *
parse_json(GBytes *text)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;

	json_parser_load_from_data(parser, g_bytes_get_data(text, NULL),
				   (gssize)g_bytes_get_size(text), &error);
	g_assert_no_error(error);
	return json_node_copy(json_parser_get_root(parser));
}

static GBytes *
json_base64_member(GBytes *text)
{
	g_autoptr(JsonNode) root = parse_json(text);
	JsonObject *obj;
	gsize len = 0;
	guchar *data;

	g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
	obj = json_node_get_object(root);
	g_assert_true(json_object_has_member(obj, "base64"));
	data = g_base64_decode(json_object_get_string_member(obj, "base64"), &len);
	return g_bytes_new_take(data, len);
}

/* ---- --batch ---- */

/* The lines of text, without their newlines. */
static gchar **
lines_of(GBytes *text)
{
	g_autofree gchar *str = bytes_to_str(text);

	g_assert_true(g_str_has_suffix(str, "\n"));
	str[strlen(str) - 1] = '\0';
	return g_strsplit(str, "\n", -1);
}

/* The audit records of method for key that contain text. */
static guint
audit_records(const gchar *method, const gchar *key, const gchar *text)
{
	g_autofree gchar *path =
		g_build_filename(tkms_test_env_get_state_dir(env), "audit.log", NULL);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;
	g_autofree gchar *m = g_strdup_printf("\"method\":\"%s\"", method);
	g_autofree gchar *k = g_strdup_printf("\"key\":\"%s\"", key);
	guint n = 0;

	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	lines = g_strsplit(contents, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++)
		if (strstr(lines[i], m) && strstr(lines[i], k) && strstr(lines[i], text))
			n++;
	return n;
}

/* encrypt --batch and decrypt --batch: one base64 line per item both ways, in order (the
 * last line may lack its newline); 1,500 lines go as a batch of 1,024 and one of 476, two
 * items of 600 KiB as two batches (1 MiB each at most); --json writes {"base64"} lines; a
 * line that is not base64, or a ciphertext that does not authenticate, fails naming the
 * line; --stream does not combine. */
static void
test_batch_encrypt(void)
{
	g_autofree gchar *name = create_key("ctl-batch", "aes-256-gcm");
	g_autoptr(GBytes) in = tkms_test_bytes_str("aGVsbG8=\nd29ybGQ=\n\nIQ==");
	g_autoptr(GBytes) cts = NULL;
	g_autoptr(GBytes) back = NULL;
	g_auto(GStrv) ct_lines = NULL;
	g_autofree gchar *err = NULL;

	/* an empty line is an empty plaintext, which Encrypt refuses: named by its line */
	g_assert_cmpint(ctl(in, NULL, &err, "encrypt", name, "--batch", "-c", "ctx", NULL), ==,
			1);
	g_assert_nonnull(strstr(err, "line 3: "));
	g_assert_nonnull(strstr(err, "empty"));
	g_clear_pointer(&err, g_free);
	g_clear_pointer(&in, g_bytes_unref);

	in = tkms_test_bytes_str("aGVsbG8=\nd29ybGQ=\r\nIQ==");
	g_assert_cmpint(ctl(in, &cts, NULL, "encrypt", name, "--batch", "-c", "ctx", NULL), ==, 0);
	ct_lines = lines_of(cts);
	g_assert_cmpuint(g_strv_length(ct_lines), ==, 3);
	g_assert_cmpint(ctl(cts, &back, NULL, "decrypt", name, "--batch", "-c", "ctx", NULL), ==,
			0);
	{
		g_autofree gchar *text = bytes_to_str(back);
		g_assert_cmpstr(text, ==, "aGVsbG8=\nd29ybGQ=\nIQ==\n");
	}
	/* each line is a ciphertext of its own */
	{
		gsize len = 0;
		g_autofree guchar *raw = g_base64_decode(ct_lines[1], &len);
		g_autoptr(GBytes) ct = g_bytes_new(raw, len);
		g_autoptr(GBytes) pt = NULL;

		g_assert_cmpint(ctl(ct, &pt, NULL, "decrypt", name, "-c", "ctx", NULL), ==, 0);
		g_assert_cmpmem(g_bytes_get_data(pt, NULL), g_bytes_get_size(pt), "world", 5);
	}

	/* a tampered ciphertext on line 3, a line that is not base64 on line 2 */
	{
		g_autofree gchar *bad = g_strdup(ct_lines[2]);
		g_autofree gchar *text = NULL;
		g_autoptr(GBytes) input = NULL;

		bad[20] = bad[20] == 'A' ? 'B' : 'A';
		text = g_strdup_printf("%s\n%s\n%s\n", ct_lines[0], ct_lines[1], bad);
		input = g_bytes_new_take(g_steal_pointer(&text), strlen(bad) + strlen(ct_lines[0]) +
									 strlen(ct_lines[1]) + 3);
		g_assert_cmpint(ctl(input, NULL, &err, "decrypt", name, "--batch", "-c", "ctx",
				    NULL),
				==, 1);
		g_assert_nonnull(strstr(err, "line 3: "));
		g_assert_nonnull(strstr(err, "does not authenticate"));
		g_clear_pointer(&err, g_free);
	}
	{
		g_autoptr(GBytes) input = tkms_test_bytes_str("aGVsbG8=\nnot*base64\n");
		g_assert_cmpint(ctl(input, NULL, &err, "encrypt", name, "--batch", NULL), ==, 1);
		g_assert_nonnull(strstr(err, "line 2 of standard input is not base64"));
		g_clear_pointer(&err, g_free);
	}
	g_assert_cmpint(ctl(NULL, NULL, &err, "encrypt", name, "--batch", "--stream", NULL), ==, 2);
	g_clear_pointer(&err, g_free);

	/* 1,500 lines: two batches */
	{
		g_autoptr(GString) many = g_string_new(NULL);
		g_autoptr(GBytes) input = NULL;
		g_autoptr(GBytes) out = NULL;
		g_autoptr(GBytes) plain = NULL;

		for (guint i = 0; i < 1500; i++) {
			g_autofree gchar *item = g_strdup_printf("item %u", i);
			g_autofree gchar *b64 = g_base64_encode((const guchar *)item, strlen(item));
			g_string_append_printf(many, "%s\n", b64);
		}
		input = g_bytes_new(many->str, many->len);
		g_assert_cmpint(ctl(input, &out, NULL, "encrypt", name, "--batch", NULL), ==, 0);
		g_auto(GStrv) out_lines = lines_of(out);

		g_assert_cmpuint(g_strv_length(out_lines), ==, 1500);
		g_assert_cmpuint(audit_records("EncryptBatch", name, "\"item 0 of 1024\""), ==, 1);
		g_assert_cmpuint(audit_records("EncryptBatch", name, "\"item 475 of 476\""), ==, 1);
		g_assert_cmpint(ctl(out, &plain, NULL, "decrypt", name, "--batch", NULL), ==, 0);
		tkms_assert_bytes_equal(plain, input);
	}
	/* two items of 600 KiB: a batch each */
	{
		g_autoptr(GBytes) big = tkms_test_bytes_pattern(600 * 1024, 3);
		g_autofree gchar *b64 =
			g_base64_encode(g_bytes_get_data(big, NULL), g_bytes_get_size(big));
		g_autofree gchar *text = g_strdup_printf("%s\n%s\n", b64, b64);
		g_autoptr(GBytes) input = g_bytes_new(text, strlen(text));
		g_autoptr(GBytes) out = NULL;
		g_autoptr(GBytes) plain = NULL;

		g_assert_cmpint(ctl(input, &out, NULL, "encrypt", name, "--batch", NULL), ==, 0);
		g_assert_cmpuint(audit_records("EncryptBatch", name, "\"item 0 of 1\""), ==, 2);
		g_assert_cmpint(ctl(out, &plain, NULL, "decrypt", name, "--batch", NULL), ==, 0);
		tkms_assert_bytes_equal(plain, input);
	}
	/* --json: a {"base64": ...} object per line */
	{
		g_autoptr(GBytes) input = tkms_test_bytes_str("aGVsbG8=\n");
		g_autoptr(GBytes) out = NULL;
		g_autoptr(GBytes) ct = NULL;
		g_autoptr(GBytes) pt = NULL;

		g_assert_cmpint(ctl(input, &out, NULL, "--json", "encrypt", name, "--batch", NULL),
				==, 0);
		ct = json_base64_member(out);
		g_assert_cmpint(ctl(ct, &pt, NULL, "decrypt", name, NULL), ==, 0);
		g_assert_cmpmem(g_bytes_get_data(pt, NULL), g_bytes_get_size(pt), "hello", 5);
	}
}

/* sign --batch: each line's signature verifies with verify; hmac --batch: each line's MAC is
 * hmac's. */
static void
test_batch_sign_hmac(void)
{
	g_autofree gchar *ec = create_key("ctl-batch-ec", "ecdsa-p256");
	g_autofree gchar *hm = create_key("ctl-batch-hm", "hmac-sha256");
	const gchar *const messages[] = {"first message", "second", ""};
	g_autoptr(GString) input = g_string_new(NULL);
	g_autoptr(GBytes) in = NULL;
	g_autoptr(GBytes) sigs = NULL;
	g_autoptr(GBytes) macs = NULL;
	g_auto(GStrv) sig_lines = NULL;
	g_auto(GStrv) mac_lines = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(messages); i++) {
		g_autofree gchar *b64 =
			g_base64_encode((const guchar *)messages[i], strlen(messages[i]));
		g_string_append_printf(input, "%s\n", b64);
	}
	in = g_bytes_new(input->str, input->len);
	g_assert_cmpint(ctl(in, &sigs, NULL, "sign", ec, "--batch", NULL), ==, 0);
	g_assert_cmpint(ctl(in, &macs, NULL, "hmac", hm, "--batch", NULL), ==, 0);
	sig_lines = lines_of(sigs);
	mac_lines = lines_of(macs);
	g_assert_cmpuint(g_strv_length(sig_lines), ==, G_N_ELEMENTS(messages));
	g_assert_cmpuint(g_strv_length(mac_lines), ==, G_N_ELEMENTS(messages));
	for (guint i = 0; i < G_N_ELEMENTS(messages); i++) {
		g_autofree gchar *sig_path = path_in_workdir("batch.sig");
		g_autofree gchar *sig_text = g_strdup_printf("%s\n", sig_lines[i]);
		g_autoptr(GBytes) msg = tkms_test_bytes_str(messages[i]);
		g_autoptr(GBytes) mac = NULL;
		g_autofree gchar *mac_text = NULL;

		g_assert_true(g_file_set_contents(sig_path, sig_text, -1, NULL));
		g_assert_cmpint(ctl(msg, NULL, NULL, "verify", ec, "--signature", sig_path,
				    "--base64", NULL),
				==, 0);
		g_assert_cmpint(ctl(msg, &mac, NULL, "hmac", hm, "--base64", NULL), ==, 0);
		mac_text = bytes_to_str(mac);
		g_strchomp(mac_text);
		g_assert_cmpstr(mac_text, ==, mac_lines[i]);
	}
}

static void
test_usage(void)
{
	const gchar *ctl_path = g_getenv("TKMSCTL");
	const gchar *no_args[] = {ctl_path, NULL};
	const gchar *help[] = {ctl_path, "--help", NULL};
	const gchar *bad_option[] = {ctl_path, "--no-such-option", "list", NULL};
	g_autoptr(GBytes) out = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *help_text = NULL;

	g_assert_cmpint(run_argv(no_args, NULL, NULL, NULL), ==, 2);
	g_assert_cmpint(run_argv(bad_option, NULL, NULL, NULL), ==, 2);
	g_assert_cmpint(run_argv(help, NULL, &out, NULL), ==, 0);
	help_text = bytes_to_str(out);
	g_assert_nonnull(strstr(help_text, "Exit status"));
	g_assert_nonnull(strstr(help_text, "encrypt"));

	g_assert_cmpint(ctl(NULL, NULL, &err, "no-such-command", NULL), ==, 2);
	g_assert_true(g_str_has_prefix(err, "tkmsctl: "));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "create", "only-a-name", NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "info", "a", "b", NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "random", "0", NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "random", "many", NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "create", "k", "aes-256-gcm", "--pcrs", "0,x", NULL),
			==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "verify", "k", NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "derive", "k", "--length", "8", NULL), ==, 2);
}

static void
test_no_bus(void)
{
	const gchar *argv[] = {g_getenv("TKMSCTL"), "--address", "unix:path=/nonexistent/tkms-bus",
			       "list", NULL};
	g_autofree gchar *err = NULL;

	g_assert_cmpint(run_argv(argv, NULL, NULL, &err), ==, 4);
	g_assert_true(g_str_has_prefix(err, "tkmsctl: "));
}

static void
test_create_list_info(void)
{
	g_autofree gchar *name = tkms_test_key_name("ctl-info");
	g_autofree gchar *missing = tkms_test_key_name("ctl-missing");
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) list_out = NULL;
	g_autoptr(GBytes) info_out = NULL;
	g_autofree gchar *list_text = NULL;
	g_autofree gchar *err = NULL;

	g_assert_cmpint(ctl(NULL, &out, NULL, "--json", "create", name, "aes-256-gcm",
			    "--description", "made by tkmsctl", NULL),
			==, 0);
	g_assert_cmpint(ctl(NULL, &list_out, NULL, "list", NULL), ==, 0);
	list_text = bytes_to_str(list_out);
	g_assert_nonnull(strstr(list_text, name));
	g_clear_pointer(&list_out, g_bytes_unref);
	g_assert_cmpint(ctl(NULL, &list_out, NULL, "list", "--json", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, &info_out, NULL, "info", name, "--json", NULL), ==, 0);

	/* exit status 6: no such key, and the daemon's message on stderr */
	g_assert_cmpint(ctl(NULL, NULL, &err, "info", missing, NULL), ==, 6);
	g_assert_true(g_str_has_prefix(err, "tkmsctl: "));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "create", name, "aes-256-gcm", NULL), ==, 1);

	{
		g_autoptr(JsonNode) created = parse_json(out);
		g_autoptr(JsonNode) list = parse_json(list_out);
		g_autoptr(JsonNode) info = parse_json(info_out);
		JsonObject *obj;
		JsonArray *arr;
		gboolean found = FALSE;

		g_assert_true(JSON_NODE_HOLDS_OBJECT(created));
		obj = json_node_get_object(created);
		g_assert_cmpstr(json_object_get_string_member(obj, "name"), ==, name);
		g_assert_cmpstr(json_object_get_string_member(obj, "type"), ==, "aes-256-gcm");
		g_assert_cmpstr(json_object_get_string_member(obj, "protection"), ==, "sealed");
		g_assert_cmpint(json_object_get_int_member(obj, "primary-version"), >=, 1);

		g_assert_true(JSON_NODE_HOLDS_ARRAY(list));
		arr = json_node_get_array(list);
		for (guint i = 0; i < json_array_get_length(arr); i++) {
			JsonObject *key = json_array_get_object_element(arr, i);
			found |= g_strcmp0(json_object_get_string_member(key, "name"), name) == 0;
		}
		g_assert_true(found);

		g_assert_true(JSON_NODE_HOLDS_OBJECT(info));
		obj = json_node_get_object(info);
		g_assert_cmpstr(json_object_get_string_member(obj, "description"), ==,
				"made by tkmsctl");
		arr = json_object_get_array_member(obj, "versions");
		g_assert_cmpuint(json_array_get_length(arr), ==, 1);
	}
}

static void
test_encrypt_files(void)
{
	g_autofree gchar *name = create_key("ctl-aes", "aes-256-gcm");
	g_autofree gchar *pt = path_in_workdir("plain.bin");
	g_autofree gchar *ct = path_in_workdir("cipher.bin");
	g_autofree gchar *pt2 = path_in_workdir("plain2.bin");
	g_autoptr(GBytes) data = tkms_test_bytes_pattern(5000, 7);
	g_autoptr(GBytes) ciphertext = NULL;
	g_autoptr(GBytes) back = NULL;
	GStatBuf st;

	g_assert_true(g_file_set_contents(pt, g_bytes_get_data(data, NULL),
					  (gssize)g_bytes_get_size(data), NULL));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "encrypt", name, "--context", "file-test", "--in", pt,
			    "--out", ct, NULL),
			==, 0);
	/* output files may hold secrets: created private */
	g_assert_cmpint(g_stat(ct, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	ciphertext = read_file(ct);
	g_assert_cmpuint(g_bytes_get_size(ciphertext), >, g_bytes_get_size(data));
	g_assert_false(tkms_test_bytes_contain(ciphertext, g_bytes_get_data(data, NULL), 64));

	g_assert_cmpint(ctl(NULL, NULL, NULL, "decrypt", name, "--context", "file-test", "--in", ct,
			    "--out", pt2, NULL),
			==, 0);
	back = read_file(pt2);
	tkms_assert_bytes_equal(back, data);

	/* another context, or no context: the daemon refuses, exit status 1 */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "decrypt", name, "--context", "other", "--in", ct,
			    NULL),
			==, 1);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "decrypt", name, "--in", ct, NULL), ==, 1);
	/* a missing input file is "not found" */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "encrypt", name, "--in", "/nonexistent/input", NULL),
			==, 6);
}

static void
test_encrypt_stdin(void)
{
	g_autofree gchar *name = create_key("ctl-aes-stdin", "aes-256-gcm");
	g_autoptr(GBytes) data = tkms_test_bytes_str("attack at dawn");
	g_autoptr(GBytes) b64 = NULL;
	g_autoptr(GBytes) back = NULL;
	g_autoptr(GBytes) raw_ct = NULL;
	g_autoptr(GBytes) raw_back = NULL;
	g_autofree gchar *b64_text = NULL;

	/* base64 out of encrypt is base64 into decrypt, through pipes */
	g_assert_cmpint(ctl(data, &b64, NULL, "encrypt", name, "--base64", NULL), ==, 0);
	b64_text = bytes_to_str(b64);
	g_assert_true(g_str_has_suffix(b64_text, "\n"));
	g_assert_null(strstr(b64_text, "attack"));
	g_assert_cmpint(ctl(b64, &back, NULL, "decrypt", name, "--base64", "--in", "-", NULL), ==,
			0);
	tkms_assert_bytes_equal(back, data);

	/* raw binary through stdin and stdout */
	g_assert_cmpint(ctl(data, &raw_ct, NULL, "encrypt", name, NULL), ==, 0);
	g_assert_cmpint(ctl(raw_ct, &raw_back, NULL, "decrypt", name, NULL), ==, 0);
	tkms_assert_bytes_equal(raw_back, data);

	/* garbage that is not base64 is refused, not decoded into other bytes */
	{
		g_autoptr(GBytes) junk = tkms_test_bytes_str("not*base64!");
		g_assert_cmpint(ctl(junk, NULL, NULL, "decrypt", name, "--base64", NULL), ==, 1);
	}

	{
		g_autoptr(GBytes) json = NULL;
		g_autoptr(GBytes) ct = NULL;
		g_autoptr(GBytes) json_plain = NULL;
		g_autoptr(GBytes) plain = NULL;

		g_assert_cmpint(ctl(data, &json, NULL, "--json", "encrypt", name, NULL), ==, 0);
		ct = json_base64_member(json);
		g_assert_cmpint(ctl(ct, &json_plain, NULL, "decrypt", name, "--json", NULL), ==, 0);
		plain = json_base64_member(json_plain);
		tkms_assert_bytes_equal(plain, data);
	}
}

static void
test_sign_openssl(void)
{
	g_autofree gchar *name = create_key("ctl-ec", "ecdsa-p256");
	g_autofree gchar *msg = path_in_workdir("message.txt");
	g_autofree gchar *other = path_in_workdir("other.txt");
	g_autofree gchar *sig = path_in_workdir("message.sig");
	g_autofree gchar *sig64 = path_in_workdir("message.sig.b64");
	g_autofree gchar *pem = path_in_workdir("pub.pem");
	g_autoptr(GBytes) out = NULL;
	g_autofree gchar *out_text = NULL;
	const gchar *openssl[] = {"openssl", "dgst",	   "-sha256", "-verify", pem,
				  "-signature", sig, msg,	   NULL};

	g_assert_true(g_file_set_contents(msg, "signed by the TPM\n", -1, NULL));
	g_assert_true(g_file_set_contents(other, "not what was signed\n", -1, NULL));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "pubkey", name, "--out", pem, NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "sign", name, "--in", msg, "--out", sig, NULL), ==,
			0);

	/* the signature is standard: openssl checks it against the exported key */
	g_assert_cmpint(run_argv(openssl, NULL, NULL, NULL), ==, 0);

	g_assert_cmpint(ctl(NULL, &out, NULL, "verify", name, "--signature", sig, "--in", msg,
			    NULL),
			==, 0);
	out_text = bytes_to_str(out);
	g_assert_cmpstr(out_text, ==, "valid\n");
	/* a well-formed signature of another message: ran, invalid, exit status 3 */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "verify", name, "--signature", sig, "--in", other,
			    NULL),
			==, 3);

	/* base64 both ways, message from stdin */
	{
		g_autoptr(GBytes) message = read_file(msg);
		g_autoptr(GBytes) b64 = NULL;

		g_assert_cmpint(ctl(message, &b64, NULL, "sign", name, "--base64", NULL), ==, 0);
		g_assert_true(g_file_set_contents(sig64, g_bytes_get_data(b64, NULL),
						  (gssize)g_bytes_get_size(b64), NULL));
		g_assert_cmpint(ctl(message, NULL, NULL, "verify", name, "--signature", sig64,
				    "--base64", NULL),
				==, 0);
	}
	{
		g_autoptr(GBytes) json = NULL;
		g_autoptr(JsonNode) root = NULL;

		g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "verify", name, "--signature", sig,
				    "--in", other, NULL),
				==, 3);
		root = parse_json(json);
		g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
		g_assert_false(json_object_get_boolean_member(json_node_get_object(root), "valid"));
	}
}

static void
test_hmac_derive(void)
{
	g_autofree gchar *name = create_key("ctl-hmac", "hmac-sha256");
	g_autofree gchar *mac = path_in_workdir("data.mac");
	g_autoptr(GBytes) data = tkms_test_bytes_str("authenticate me");
	g_autoptr(GBytes) other = tkms_test_bytes_str("authenticate you");
	g_autoptr(GBytes) mac_bytes = NULL;
	g_autoptr(GBytes) d1 = NULL;
	g_autoptr(GBytes) d2 = NULL;
	g_autoptr(GBytes) d3 = NULL;

	g_assert_cmpint(ctl(data, NULL, NULL, "hmac", name, "--out", mac, NULL), ==, 0);
	mac_bytes = read_file(mac);
	g_assert_cmpuint(g_bytes_get_size(mac_bytes), ==, 32);
	g_assert_cmpint(ctl(data, NULL, NULL, "verify-hmac", name, "--mac", mac, NULL), ==, 0);
	g_assert_cmpint(ctl(other, NULL, NULL, "verify-hmac", name, "--mac", mac, NULL), ==, 3);

	g_assert_cmpint(ctl(NULL, &d1, NULL, "derive", name, "--context", "disk", "--length", "48",
			    NULL),
			==, 0);
	g_assert_cmpint(ctl(NULL, &d2, NULL, "derive", name, "--context", "disk", "--length", "48",
			    NULL),
			==, 0);
	g_assert_cmpint(ctl(NULL, &d3, NULL, "derive", name, "--context", "net", "--length", "48",
			    NULL),
			==, 0);
	g_assert_cmpuint(g_bytes_get_size(d1), ==, 48);
	tkms_assert_bytes_equal(d1, d2);
	g_assert_false(g_bytes_equal(d1, d3));
	/* derive reads no data: standard input is free for the context */
	{
		g_autoptr(GBytes) ctx = tkms_test_bytes_str("disk");
		g_autoptr(GBytes) d4 = NULL;

		g_assert_cmpint(ctl(ctx, &d4, NULL, "derive", name, "--context-file", "-",
				    "--length", "48", NULL),
				==, 0);
		tkms_assert_bytes_equal(d4, d1);
	}
}

static void
test_seal_random(void)
{
	g_autoptr(GBytes) secret = tkms_test_bytes_pattern(300, 11);
	g_autoptr(GBytes) blob64 = NULL;
	g_autoptr(GBytes) back = NULL;
	g_autoptr(GBytes) rnd = NULL;

	g_assert_cmpint(ctl(secret, &blob64, NULL, "seal", "--base64", NULL), ==, 0);
	g_assert_cmpint(ctl(blob64, &back, NULL, "unseal", "--base64", NULL), ==, 0);
	tkms_assert_bytes_equal(back, secret);

	g_assert_cmpint(ctl(NULL, &rnd, NULL, "random", "16", NULL), ==, 0);
	g_assert_cmpuint(g_bytes_get_size(rnd), ==, 16);
	{
		g_autoptr(GBytes) json = NULL;
		g_autoptr(GBytes) decoded = NULL;

		g_assert_cmpint(ctl(NULL, &json, NULL, "random", "24", "--json", NULL), ==, 0);
		decoded = json_base64_member(json);
		g_assert_cmpuint(g_bytes_get_size(decoded), ==, 24);
	}
}

static void
test_status(void)
{
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autofree gchar *text = NULL;

	g_assert_cmpint(ctl(NULL, &out, NULL, "status", NULL), ==, 0);
	text = bytes_to_str(out);
	g_assert_nonnull(strstr(text, "Version:"));
	g_assert_nonnull(strstr(text, "TpmAvailable:       yes"));
	g_assert_cmpint(ctl(NULL, &json, NULL, "status", "--json", NULL), ==, 0);
	{
		g_autoptr(JsonNode) root = parse_json(json);
		JsonObject *obj = json_node_get_object(root);

		g_assert_true(json_object_get_boolean_member(obj, "TpmAvailable"));
		g_assert_false(json_object_get_boolean_member(obj, "TpmLockedOut"));
		g_assert_nonnull(json_object_get_string_member(obj, "TpmManufacturer"));
#ifdef TKMS_TEST_PROJECT_VERSION
		g_assert_cmpstr(json_object_get_string_member(obj, "Version"), ==,
				TKMS_TEST_PROJECT_VERSION);
#endif
	}
}

static void
test_destroy(void)
{
	g_autofree gchar *name = create_key("ctl-destroy", "aes-256-gcm");
	g_autofree gchar *missing = tkms_test_key_name("ctl-never");
	g_autoptr(GBytes) data = tkms_test_bytes_str("x");

	g_assert_cmpint(ctl(data, NULL, NULL, "encrypt", name, NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "destroy", name, NULL), ==, 0);
	/* gone for use; whether it is NotFound or KeyState is the daemon's call */
	g_assert_cmpint(ctl(data, NULL, NULL, "encrypt", name, NULL), !=, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "destroy", missing, NULL), ==, 6);
}

static void
test_permission_denied(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *err = NULL;

	g_assert_true(tkms_test_env_polkit_set_allowed(env, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpint(ctl(NULL, NULL, &err, "list", NULL), ==, 5);
	g_assert_true(tkms_test_env_polkit_allow_all(env, &error));
	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(err, "tkmsctl: "));
}

/* Rewrites one character inside the first record's "method" value. */
static gchar *
edit_first_record(const gchar *log)
{
	g_autofree gchar *contents = NULL;
	g_autofree gchar *copy = path_in_workdir("audit-edited.log");
	gchar *p;

	g_assert_true(g_file_get_contents(log, &contents, NULL, NULL));
	p = strstr(contents, "\"method\":\"");
	g_assert_nonnull(p);
	p += strlen("\"method\":\"");
	*p = *p == 'X' ? 'Y' : 'X';
	g_assert_true(g_file_set_contents(copy, contents, -1, NULL));
	return g_steal_pointer(&copy);
}

static void
test_audit_verify(void)
{
	const gchar *state = tkms_test_env_get_state_dir(env);
	g_autofree gchar *log = g_build_filename(state, "audit.log", NULL);
	g_autofree gchar *edited = NULL;
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autofree gchar *text = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *expected = NULL;
	g_autoptr(GError) error = NULL;
	guint n_lines;

	/* a quiet log: the daemon commits everything when it stops */
	g_assert_true(tkms_test_env_stop_daemon(env, &error));
	g_assert_no_error(error);
	n_lines = tkms_test_count_lines(log);
	g_assert_cmpuint(n_lines, >, 0);

	g_assert_cmpint(ctl(NULL, &out, NULL, "audit", "verify", "--state-dir", state, NULL), ==,
			0);
	text = bytes_to_str(out);
	expected = g_strdup_printf("audit log OK: %u records\n", n_lines);
	g_assert_cmpstr(text, ==, expected);
	g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "audit", "verify", "--log", log, NULL), ==,
			0);
	{
		g_autoptr(JsonNode) root = parse_json(json);
		JsonObject *obj = json_node_get_object(root);

		g_assert_true(json_object_get_boolean_member(obj, "valid"));
		g_assert_cmpint(json_object_get_int_member(obj, "records"), ==, n_lines);
	}

	edited = edit_first_record(log);
	g_assert_cmpint(ctl(NULL, NULL, &err, "audit", "verify", "--log", edited, NULL), ==, 3);
	g_assert_nonnull(strstr(err, "record 0"));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "audit", "verify", "--log", "/nonexistent/audit.log",
			    NULL),
			==, 6);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "audit", "check", NULL), ==, 2);

	g_assert_true(tkms_test_env_start_daemon(env, &error));
	g_assert_no_error(error);
}

/* ---- interactive authorization, list --all, OWNER:NAME ---- */

#define POLKIT_MOCK_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_MOCK_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_MOCK_IFACE "org.freedesktop.DBus.Mock"

static GVariant *
polkit_mock_call(const gchar *method, GVariant *params)
{
	g_autoptr(GError) error = NULL;
	GVariant *reply = g_dbus_connection_call_sync(
		tkms_test_env_get_connection(env), POLKIT_MOCK_NAME, POLKIT_MOCK_PATH,
		POLKIT_MOCK_IFACE, method, params, NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL,
		&error);

	g_assert_no_error(error);
	return reply;
}

static void
polkit_mock_clear_calls(void)
{
	g_autoptr(GVariant) reply = polkit_mock_call("ClearCalls", NULL);
}

/* The flags argument of every CheckAuthorization for @action that the mock saw since the
 * last polkit_mock_clear_calls(), comma-separated ("" for none). Bit 0 is
 * AllowUserInteraction, which tkmsd sets only for a call with
 * ALLOW_INTERACTIVE_AUTHORIZATION. */
static gchar *
polkit_check_flags(const gchar *action)
{
	g_autoptr(GVariant) reply =
		polkit_mock_call("GetMethodCalls", g_variant_new("(s)", "CheckAuthorization"));
	g_autoptr(GVariantIter) iter = NULL;
	GString *flags = g_string_new(NULL);
	GVariant *args;
	guint64 when;

	g_variant_get(reply, "(a(tav))", &iter);
	while (g_variant_iter_next(iter, "(t@av)", &when, &args)) {
		g_autoptr(GVariant) owned = args;
		g_autoptr(GVariant) action_id = NULL;
		g_autoptr(GVariant) value = NULL;

		/* (subject, action_id, details, flags, cancellation_id) */
		g_assert_cmpuint(g_variant_n_children(args), ==, 5);
		g_variant_get_child(args, 1, "v", &action_id);
		g_variant_get_child(args, 3, "v", &value);
		if (!g_str_equal(g_variant_get_string(action_id, NULL), action))
			continue;
		g_assert_true(g_variant_is_of_type(value, G_VARIANT_TYPE_UINT32));
		g_string_append_printf(flags, "%s%u", flags->len > 0 ? "," : "",
				       g_variant_get_uint32(value));
	}
	return g_string_free(flags, FALSE);
}

/* tkmsctl --address BUS list with a pseudo-terminal as standard input; FALSE if this system
 * cannot give one. */
static gboolean
run_list_on_tty(gint *exit_status)
{
	g_autoptr(GSubprocessLauncher) launcher =
		g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *argv[] = {g_getenv("TKMSCTL"), "--address",
			       tkms_test_env_get_bus_address(env), "list", NULL};
	int master, slave;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
		if (master >= 0)
			close(master);
		return FALSE;
	}
	slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0 || !isatty(slave)) {
		if (slave >= 0)
			close(slave);
		close(master);
		return FALSE;
	}
	g_subprocess_launcher_take_stdin_fd(launcher, slave);
	proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
	g_assert_no_error(error);
	g_subprocess_wait(proc, NULL, &error);
	g_assert_no_error(error);
	close(master);
	g_assert_true(g_subprocess_get_if_exited(proc));
	*exit_status = g_subprocess_get_exit_status(proc);
	return TRUE;
}

static void
test_interactive_options(void)
{
	g_autofree gchar *flags = NULL;
	gint status = -1;

	/* before or after the command; -i only before it (after it, -i is --in) */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "-i", "list", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "--interactive", "list", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "list", "--interactive", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "--no-ask-password", "list", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "list", "--no-ask-password", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "list", "-i", NULL), ==, 2);

	/* tkmsd passes the message flag on to polkit: each run is a new bus name, so nothing
	 * is cached and each makes one read-key check */
	polkit_mock_clear_calls();
	g_assert_cmpint(ctl(NULL, NULL, NULL, "--interactive", "list", NULL), ==, 0);
	flags = polkit_check_flags(TKMS_ACTION_READ_KEY);
	g_assert_cmpstr(flags, ==, "1");
	g_clear_pointer(&flags, g_free);

	polkit_mock_clear_calls();
	g_assert_cmpint(ctl(NULL, NULL, NULL, "list", "--no-ask-password", NULL), ==, 0);
	flags = polkit_check_flags(TKMS_ACTION_READ_KEY);
	g_assert_cmpstr(flags, ==, "0");
	g_clear_pointer(&flags, g_free);

	/* the last of the two wins */
	polkit_mock_clear_calls();
	g_assert_cmpint(ctl(NULL, NULL, NULL, "-i", "list", "--no-ask-password", NULL), ==, 0);
	flags = polkit_check_flags(TKMS_ACTION_READ_KEY);
	g_assert_cmpstr(flags, ==, "0");
	g_clear_pointer(&flags, g_free);

	/* default: off when standard input is not a terminal (a pipe here)... */
	polkit_mock_clear_calls();
	g_assert_cmpint(ctl(NULL, NULL, NULL, "list", NULL), ==, 0);
	flags = polkit_check_flags(TKMS_ACTION_READ_KEY);
	g_assert_cmpstr(flags, ==, "0");
	g_clear_pointer(&flags, g_free);

	/* ...and on when it is one */
	polkit_mock_clear_calls();
	if (!run_list_on_tty(&status)) {
		g_test_message("no pseudo-terminal: the terminal default is not checked");
		return;
	}
	g_assert_cmpint(status, ==, 0);
	flags = polkit_check_flags(TKMS_ACTION_READ_KEY);
	g_assert_cmpstr(flags, ==, "1");
}

static void
on_async_result(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GAsyncResult **out = user_data;

	*out = g_object_ref(res);
}

static GAsyncResult *
wait_for_result(GAsyncResult **res)
{
	while (*res == NULL)
		g_main_context_iteration(NULL, TRUE);
	return *res;
}

static void
on_notify(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	(*(guint *)user_data)++;
}

/* libtkms: the property, and every reply shape through the one call path with it set. */
static void
test_client_interactive(void)
{
	g_autoptr(TkmsClient) client = tkms_test_new_client(env);
	g_autoptr(TkmsClient) plain = tkms_test_new_client(env);
	g_autofree gchar *name = tkms_test_key_name("lib-interactive");
	g_autofree gchar *mac_name = tkms_test_key_name("lib-interactive-mac");
	g_autofree gchar *missing = tkms_test_key_name("lib-never");
	g_autoptr(GBytes) data = tkms_test_bytes_str("asked nicely");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) pt = NULL;
	g_autoptr(GBytes) mac = NULL;
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GVariant) keys = NULL;
	g_autoptr(GAsyncResult) res1 = NULL;
	g_autoptr(GAsyncResult) res2 = NULL;
	g_autoptr(GAsyncResult) res3 = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *flags = NULL;
	gboolean value = TRUE, valid = FALSE;
	guint notified = 0;

	g_assert_false(tkms_client_get_allow_interactive_authorization(client));
	g_object_get(client, "allow-interactive-authorization", &value, NULL);
	g_assert_false(value);
	g_signal_connect(client, "notify::allow-interactive-authorization", G_CALLBACK(on_notify),
			 &notified);
	tkms_client_set_allow_interactive_authorization(client, TRUE);
	g_assert_true(tkms_client_get_allow_interactive_authorization(client));
	g_assert_cmpuint(notified, ==, 1);
	/* no change, no notification */
	tkms_client_set_allow_interactive_authorization(client, TRUE);
	g_assert_cmpuint(notified, ==, 1);
	g_object_set(client, "allow-interactive-authorization", FALSE, NULL);
	g_assert_false(tkms_client_get_allow_interactive_authorization(client));
	g_assert_cmpuint(notified, ==, 2);
	g_object_set(client, "allow-interactive-authorization", TRUE, NULL);
	g_object_get(client, "allow-interactive-authorization", &value, NULL);
	g_assert_true(value);
	g_assert_cmpuint(notified, ==, 3);

	/* sync: a{sv}, aa{sv} and ay replies; the flag reaches polkit through tkmsd */
	polkit_mock_clear_calls();
	info = tkms_client_create_key_sync(client, name, "aes-256-gcm", NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(info);
	flags = polkit_check_flags(TKMS_ACTION_CREATE_KEY);
	g_assert_cmpstr(flags, ==, "1");
	g_clear_pointer(&flags, g_free);
	keys = tkms_client_list_keys_sync(client, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_variant_n_children(keys), >=, 1);
	ct = tkms_client_encrypt_sync(client, name, data, NULL, NULL, &error);
	g_assert_no_error(error);
	flags = polkit_check_flags(TKMS_ACTION_USE_KEY);
	g_assert_cmpstr(flags, ==, "1");
	g_clear_pointer(&flags, g_free);

	/* async: ay, b and () replies */
	tkms_client_decrypt(client, name, ct, NULL, NULL, on_async_result, &res1);
	pt = tkms_client_decrypt_finish(client, wait_for_result(&res1), &error);
	g_assert_no_error(error);
	tkms_assert_bytes_equal(pt, data);

	g_clear_pointer(&info, g_variant_unref);
	info = tkms_client_create_key_sync(client, mac_name, "hmac-sha256", NULL, NULL, &error);
	g_assert_no_error(error);
	mac = tkms_client_hmac_sync(client, mac_name, data, NULL, &error);
	g_assert_no_error(error);
	tkms_client_verify_hmac(client, mac_name, data, mac, NULL, on_async_result, &res2);
	g_assert_true(
		tkms_client_verify_hmac_finish(client, wait_for_result(&res2), &valid, &error));
	g_assert_no_error(error);
	g_assert_true(valid);

	tkms_client_destroy_key(client, mac_name, NULL, on_async_result, &res3);
	g_assert_true(tkms_client_destroy_key_finish(client, wait_for_result(&res3), &error));
	g_assert_no_error(error);
	flags = polkit_check_flags(TKMS_ACTION_DESTROY_KEY);
	g_assert_cmpstr(flags, ==, "1");
	g_clear_pointer(&flags, g_free);

	/* errors keep their TKMS_ERROR code and lose the remote name prefix */
	g_clear_pointer(&info, g_variant_unref);
	info = tkms_client_get_key_info_sync(client, missing, NULL, &error);
	g_assert_null(info);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND);
	g_assert_false(g_str_has_prefix(error->message, "GDBus.Error:"));
	g_clear_error(&error);

	/* a client left at the default sends no flag */
	polkit_mock_clear_calls();
	g_clear_pointer(&keys, g_variant_unref);
	keys = tkms_client_list_keys_sync(plain, NULL, &error);
	g_assert_no_error(error);
	flags = polkit_check_flags(TKMS_ACTION_READ_KEY);
	g_assert_cmpstr(flags, ==, "0");
}

/* The member of the JSON array @list whose "name" is @name (asserts there is exactly one). */
static JsonObject *
find_key_object(JsonNode *list, const gchar *name)
{
	JsonArray *arr;
	JsonObject *found = NULL;

	g_assert_true(JSON_NODE_HOLDS_ARRAY(list));
	arr = json_node_get_array(list);
	for (guint i = 0; i < json_array_get_length(arr); i++) {
		JsonObject *key = json_array_get_object_element(arr, i);

		g_assert_true(json_object_has_member(key, "owner"));
		if (g_strcmp0(json_object_get_string_member(key, "name"), name) == 0) {
			g_assert_null(found);
			found = key;
		}
	}
	g_assert_nonnull(found);
	return found;
}

/* The polkit mock allowing every action but admin. */
static void
deny_admin(void)
{
	g_autoptr(GPtrArray) actions = g_ptr_array_new();
	g_autoptr(GError) error = NULL;

	for (const gchar *const *a = tkms_test_all_actions(); *a != NULL; a++) {
		if (!g_str_equal(*a, TKMS_ACTION_ADMIN))
			g_ptr_array_add(actions, (gpointer)*a);
	}
	g_ptr_array_add(actions, NULL);
	g_assert_true(tkms_test_env_polkit_set_allowed(
		env, (const gchar *const *)actions->pdata, &error));
	g_assert_no_error(error);
}

static void
allow_all(void)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(tkms_test_env_polkit_allow_all(env, &error));
	g_assert_no_error(error);
}

/* As root (the test runs as root): root's keys are the system keys, owner 0. */
static void
test_list_all(void)
{
	g_autofree gchar *name = create_key("ctl-all", "hmac-sha256");
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autoptr(GBytes) own = NULL;
	g_autofree gchar *text = NULL;
	g_autofree gchar *err = NULL;
	g_auto(GStrv) lines = NULL;
	gboolean found = FALSE;

	if (getuid() != 0) {
		g_test_fail_printf("needs to run as root (owner 0)");
		return;
	}
	g_assert_cmpint(ctl(NULL, &out, NULL, "list", "--all", NULL), ==, 0);
	text = bytes_to_str(out);
	lines = g_strsplit(text, "\n", -1);
	g_assert_true(g_str_has_prefix(lines[0], "OWNER "));
	g_assert_nonnull(strstr(lines[0], " NAME "));
	for (guint i = 1; lines[i] != NULL; i++) {
		g_auto(GStrv) cols = g_strsplit_set(lines[i], " ", -1);
		g_autoptr(GPtrArray) words = g_ptr_array_new();

		for (guint j = 0; cols[j] != NULL; j++) {
			if (*cols[j] != '\0')
				g_ptr_array_add(words, cols[j]);
		}
		if (words->len >= 3 && g_str_equal(g_ptr_array_index(words, 1), name)) {
			g_assert_cmpstr(g_ptr_array_index(words, 0), ==, "system");
			g_assert_cmpstr(g_ptr_array_index(words, 2), ==, "hmac-sha256");
			found = TRUE;
		}
	}
	g_assert_true(found);

	g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "list", "--all", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, &own, NULL, "list", "--json", NULL), ==, 0);
	{
		g_autoptr(JsonNode) all = parse_json(json);
		g_autoptr(JsonNode) mine = parse_json(own);
		JsonObject *key = find_key_object(all, name);

		g_assert_cmpint(json_object_get_int_member(key, "owner"), ==, 0);
		g_assert_cmpstr(json_object_get_string_member(key, "type"), ==, "hmac-sha256");
		key = find_key_object(mine, name);
		g_assert_cmpint(json_object_get_int_member(key, "owner"), ==, 0);
		/* every owner's keys include the caller's own */
		g_assert_cmpuint(json_array_get_length(json_node_get_array(all)), >=,
				 json_array_get_length(json_node_get_array(mine)));
	}

	/* without the admin action: refused (5); the caller's own list still works */
	deny_admin();
	g_assert_cmpint(ctl(NULL, NULL, &err, "list", "--all", NULL), ==, 5);
	g_assert_true(g_str_has_prefix(err, "tkmsctl: "));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "list", NULL), ==, 0);
	allow_all();
}

static void
test_owner_name(void)
{
	g_autofree gchar *name = create_key("ctl-owner", "aes-256-gcm");
	g_autofree gchar *system_name = g_strconcat("system:", name, NULL);
	g_autofree gchar *uid0_name = g_strconcat("0:", name, NULL);
	g_autofree gchar *bad_name = g_strconcat("x:", name, NULL);
	g_autofree gchar *empty_owner = g_strconcat(":", name, NULL);
	g_autofree gchar *no_user = g_strconcat("4000000000:", name, NULL);
	g_autofree gchar *nobody = g_strdup_printf("%u:%s", TKMS_TEST_OTHER_UID, name);
	g_autofree gchar *created = NULL;
	g_autoptr(GBytes) data = tkms_test_bytes_str("addressed by owner");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) back = NULL;
	g_autoptr(GBytes) back2 = NULL;
	g_autoptr(GBytes) info_json = NULL;
	g_autofree gchar *err = NULL;

	if (getuid() != 0) {
		g_test_fail_printf("needs to run as root (owner 0)");
		return;
	}
	/* root's own key, by every spelling */
	g_assert_cmpint(ctl(NULL, &info_json, NULL, "info", system_name, "--json", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "info", uid0_name, NULL), ==, 0);
	{
		g_autoptr(JsonNode) root = parse_json(info_json);
		JsonObject *obj = json_node_get_object(root);

		g_assert_cmpstr(json_object_get_string_member(obj, "name"), ==, name);
		g_assert_cmpint(json_object_get_int_member(obj, "owner"), ==, 0);
	}
	/* the ciphertext binds owner 0 and NAME, however they were written */
	g_assert_cmpint(ctl(data, &ct, NULL, "encrypt", uid0_name, "--context", "o", NULL), ==, 0);
	g_assert_cmpint(ctl(ct, &back, NULL, "decrypt", system_name, "--context", "o", NULL), ==,
			0);
	tkms_assert_bytes_equal(back, data);
	g_assert_cmpint(ctl(ct, &back2, NULL, "decrypt", name, "--context", "o", NULL), ==, 0);
	tkms_assert_bytes_equal(back2, data);

	/* a new system key through OWNER:NAME */
	created = tkms_test_key_name("ctl-owner-new");
	{
		g_autofree gchar *arg = g_strconcat("system:", created, NULL);
		g_assert_cmpint(ctl(NULL, NULL, NULL, "create", arg, "ecdsa-p256", NULL), ==, 0);
		g_assert_cmpint(ctl(NULL, NULL, NULL, "pubkey", created, NULL), ==, 0);
	}

	/* a malformed OWNER: tkmsd's InvalidArgument, "operation failed" (1) */
	g_assert_cmpint(ctl(NULL, NULL, &err, "info", bad_name, NULL), ==, 1);
	g_assert_true(g_str_has_prefix(err, "tkmsctl: "));
	g_assert_null(strstr(err, "GDBus.Error"));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "info", empty_owner, NULL), ==, 1);
	g_assert_cmpint(ctl(data, NULL, NULL, "encrypt", bad_name, NULL), ==, 1);
	/* a uid that is nobody's: not found (6) */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "info", no_user, NULL), ==, 6);
	/* another owner's key: admin (the mock allows it) says there is no such key (6)... */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "info", nobody, NULL), ==, 6);
	/* ...and without admin, the request is refused (5) */
	deny_admin();
	g_assert_cmpint(ctl(NULL, NULL, NULL, "info", nobody, NULL), ==, 5);
	/* root addressing its own keys needs no admin */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "info", system_name, NULL), ==, 0);
	allow_all();
}

/* ---- the CLI's language ---- */

static gboolean
is_iso8601_utc(const gchar *s)
{
	return s != NULL && g_regex_match_simple("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$", s, 0, 0);
}

/* The store is still empty: the first tests of the binary run before any key exists. */
static void
test_list_empty(void)
{
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autofree gchar *text = NULL;
	g_autofree gchar *json_text = NULL;

	g_assert_cmpint(ctl(NULL, &out, NULL, "list", NULL), ==, 0);
	text = bytes_to_str(out);
	g_assert_nonnull(strstr(text, "tkmsctl create NAME TYPE"));
	g_assert_nonnull(strstr(text, "aes-256-gcm"));
	/* scripts get an empty array, no prose */
	g_assert_cmpint(ctl(NULL, &json, NULL, "list", "--json", NULL), ==, 0);
	json_text = bytes_to_str(json);
	g_assert_cmpstr(json_text, ==, "[]\n");
}

static void
test_nearest_command(void)
{
	g_autofree gchar *err = NULL;
	g_autofree gchar *err2 = NULL;
	g_autofree gchar *err3 = NULL;

	g_assert_cmpint(ctl(NULL, NULL, &err, "lsit", NULL), ==, 2);
	g_assert_true(g_str_has_prefix(err, "tkmsctl: unknown command 'lsit'"));
	g_assert_nonnull(strstr(err, "Did you mean 'tkmsctl list'?"));
	g_assert_cmpint(ctl(NULL, NULL, &err2, "verify-mac", NULL), ==, 2);
	g_assert_nonnull(strstr(err2, "'tkmsctl verify-hmac'"));
	/* nothing near: no guess */
	g_assert_cmpint(ctl(NULL, NULL, &err3, "xyzzyplugh", NULL), ==, 2);
	g_assert_null(strstr(err3, "Did you mean"));
}

static void
test_bad_type(void)
{
	g_autofree gchar *name = tkms_test_key_name("ctl-badtype");
	g_autofree gchar *err = NULL;

	g_assert_cmpint(ctl(NULL, NULL, &err, "create", name, "aes-128-cbc", NULL), ==, 2);
	g_assert_nonnull(strstr(err, "unknown key type 'aes-128-cbc'"));
	for (const gchar *const *t = (const gchar *const[]){"aes-256-gcm", "hmac-sha256",
							     "ecdsa-p256", "rsa-2048", NULL};
	     *t != NULL; t++)
		g_assert_nonnull(strstr(err, *t));
	/* nothing was created */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "info", name, NULL), ==, 6);
}

/* {"error": {"message", "kind", "exit-status", ...}} on stderr, nothing on stdout */
static JsonObject *
json_error(const gchar *err, JsonNode **out_root)
{
	g_autoptr(GBytes) b = g_bytes_new(err, strlen(err));
	JsonNode *root = parse_json(b);
	JsonObject *obj;

	g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
	obj = json_object_get_object_member(json_node_get_object(root), "error");
	g_assert_nonnull(obj);
	*out_root = root;
	return obj;
}

static void
test_json_errors(void)
{
	g_autofree gchar *missing = tkms_test_key_name("ctl-json-missing");
	g_autoptr(GBytes) out = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *usage_err = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(JsonNode) usage_root = NULL;
	JsonObject *e;

	g_assert_cmpint(ctl(NULL, &out, &err, "--json", "info", missing, NULL), ==, 6);
	g_assert_cmpuint(g_bytes_get_size(out), ==, 0);
	e = json_error(err, &root);
	g_assert_cmpstr(json_object_get_string_member(e, "kind"), ==, "not-found");
	g_assert_cmpint(json_object_get_int_member(e, "exit-status"), ==, 6);
	g_assert_cmpstr(json_object_get_string_member(e, "name"), ==,
			"org.tkms.KeyManager.Error.NotFound");
	g_assert_nonnull(strstr(json_object_get_string_member(e, "message"), missing));

	g_assert_cmpint(ctl(NULL, NULL, &usage_err, "lsit", "--json", NULL), ==, 2);
	/* "--json" after an unknown command is not parsed: the error is text */
	g_assert_true(g_str_has_prefix(usage_err, "tkmsctl: "));
	g_clear_pointer(&usage_err, g_free);
	g_assert_cmpint(ctl(NULL, NULL, &usage_err, "--json", "lsit", NULL), ==, 2);
	e = json_error(usage_err, &usage_root);
	g_assert_cmpstr(json_object_get_string_member(e, "kind"), ==, "usage");
	g_assert_nonnull(strstr(json_object_get_string_member(e, "hint"), "tkmsctl list"));
}

/* The daemon's advice names D-Bus methods; tkmsctl says it in commands. */
static void
test_cli_words(void)
{
	g_autofree gchar *missing = tkms_test_key_name("ctl-words");
	g_autofree gchar *err = NULL;

	g_assert_cmpint(ctl(NULL, NULL, &err, "info", missing, NULL), ==, 6);
	g_assert_nonnull(strstr(err, "'tkmsctl list'"));
	g_assert_null(strstr(err, "ListKeys"));
}

static void
test_iso_times(void)
{
	g_autofree gchar *name = create_key("ctl-time", "hmac-sha256");
	g_autoptr(GBytes) json = NULL;
	g_autoptr(GBytes) list = NULL;
	g_autoptr(GBytes) text = NULL;
	g_autofree gchar *info_text = NULL;

	g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "info", name, NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, &list, NULL, "--json", "list", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, &text, NULL, "info", name, NULL), ==, 0);
	{
		g_autoptr(JsonNode) root = parse_json(json);
		g_autoptr(JsonNode) keys = parse_json(list);
		JsonObject *obj = json_node_get_object(root);
		JsonArray *versions = json_object_get_array_member(obj, "versions");

		g_assert_true(is_iso8601_utc(json_object_get_string_member(obj, "created")));
		g_assert_true(is_iso8601_utc(json_object_get_string_member(
			json_array_get_object_element(versions, 0), "created")));
		g_assert_true(is_iso8601_utc(json_object_get_string_member(
			find_key_object(keys, name), "created")));
	}
	info_text = bytes_to_str(text);
	{
		g_auto(GStrv) lines = g_strsplit(info_text, "\n", -1);
		gboolean found = FALSE;

		for (guint i = 0; lines[i] != NULL; i++) {
			if (g_str_has_prefix(lines[i], "created:")) {
				g_assert_true(is_iso8601_utc(g_strstrip(lines[i] + 8)));
				found = TRUE;
			}
		}
		g_assert_true(found);
	}
}

/* More keys than one page (a page of 3 through the hidden --page-size): all listed, once. */
static void
test_list_pages(void)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GBytes) json = NULL;
	g_autoptr(GBytes) text = NULL;
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *table = NULL;
	g_auto(GStrv) lines = NULL;

	for (guint i = 0; i < 8; i++)
		g_ptr_array_add(names, create_key("ctl-page", "hmac-sha256"));
	all = tkms_client_collect_keys_sync(tkms_test_env_get_client(env), FALSE, 0, NULL,
					    &error);
	g_assert_no_error(error);
	g_assert_cmpuint(all->len, >, 3);

	g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "list", "--page-size", "3", NULL), ==,
			0);
	g_assert_cmpint(ctl(NULL, &text, NULL, "list", "--page-size", "3", NULL), ==, 0);
	{
		g_autoptr(JsonNode) root = parse_json(json);

		g_assert_cmpuint(json_array_get_length(json_node_get_array(root)), ==, all->len);
		for (guint i = 0; i < names->len; i++)
			(void)find_key_object(root, g_ptr_array_index(names, i));
	}
	table = bytes_to_str(text);
	lines = g_strsplit(table, "\n", -1);
	/* a title line, one line per key, and the empty string after the last newline */
	g_assert_cmpuint(g_strv_length(lines), ==, all->len + 2);
	for (guint i = 0; i < names->len; i++)
		g_assert_nonnull(strstr(table, g_ptr_array_index(names, i)));
}

static void
test_base64_hint(void)
{
	g_autofree gchar *name = create_key("ctl-b64hint", "aes-256-gcm");
	g_autoptr(GBytes) data = tkms_test_bytes_str("the hint test");
	g_autoptr(GBytes) b64 = NULL;
	g_autoptr(GBytes) blob64 = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *err2 = NULL;

	g_assert_cmpint(ctl(data, &b64, NULL, "encrypt", name, "--base64", NULL), ==, 0);
	g_assert_cmpint(ctl(b64, NULL, &err, "decrypt", name, NULL), ==, 1);
	g_assert_nonnull(strstr(err, "'tkmsctl decrypt --base64'"));
	/* and the daemon's own advice in tkmsctl's words */
	g_assert_null(strstr(err, "output of Encrypt"));

	g_assert_cmpint(ctl(data, &blob64, NULL, "seal", "--base64", NULL), ==, 0);
	g_assert_cmpint(ctl(blob64, NULL, &err2, "unseal", NULL), ==, 1);
	g_assert_nonnull(strstr(err2, "'tkmsctl unseal --base64'"));
}

static void
test_tkms_address(void)
{
	const gchar *argv[] = {g_getenv("TKMSCTL"), "list", NULL};
	const gchar *bogus_argv[] = {g_getenv("TKMSCTL"), "--address",
				     "unix:path=/nonexistent/tkms-option", "list", NULL};
	const gchar *good_env[] = {"TKMS_ADDRESS", tkms_test_env_get_bus_address(env), NULL};
	const gchar *bad_env[] = {"TKMS_ADDRESS", "unix:path=/nonexistent/tkms-env", NULL};
	const gchar *no_env[] = {"TKMS_ADDRESS", "", "DBUS_SYSTEM_BUS_ADDRESS",
				 "unix:path=/nonexistent/tkms-system", NULL};
	g_autofree gchar *err = NULL;
	g_autofree gchar *err2 = NULL;
	g_autofree gchar *err3 = NULL;

	/* TKMS_ADDRESS alone reaches the daemon */
	g_assert_cmpint(run_argv_env(argv, good_env, NULL, NULL, NULL), ==, 0);
	/* --address wins over TKMS_ADDRESS, and the message says which bus and why */
	g_assert_cmpint(run_argv_env(bogus_argv, good_env, NULL, NULL, &err), ==, 4);
	g_assert_nonnull(strstr(err, "unix:path=/nonexistent/tkms-option (from --address)"));
	g_assert_nonnull(strstr(err, "TKMS_ADDRESS"));
	g_assert_cmpint(run_argv_env(argv, bad_env, NULL, NULL, &err2), ==, 4);
	g_assert_nonnull(strstr(err2, "unix:path=/nonexistent/tkms-env (from TKMS_ADDRESS)"));
	/* neither: the system bus, named, with the ways to choose another */
	g_assert_cmpint(run_argv_env(argv, no_env, NULL, NULL, &err3), ==, 4);
	g_assert_nonnull(
		strstr(err3, "unix:path=/nonexistent/tkms-system (from DBUS_SYSTEM_BUS_ADDRESS)"));
	g_assert_nonnull(strstr(err3, "--address"));
}

static void
test_german(void)
{
	const gchar *localedir = g_getenv("TKMS_TEST_LOCALEDIR");
	const gchar *argv[] = {g_getenv("TKMSCTL"), "lsit", NULL};
	g_autofree gchar *mo = NULL;
	g_autofree gchar *err = NULL;

	if (localedir == NULL) {
		g_test_skip("TKMS_TEST_LOCALEDIR is not set");
		return;
	}
	mo = g_build_filename(localedir, "de", "LC_MESSAGES", "tkms.mo", NULL);
	g_assert_true(g_file_test(mo, G_FILE_TEST_EXISTS));
	{
		const gchar *de_env[] = {"LANGUAGE", "de", "LANG", "C.UTF-8", "LC_ALL", "C.UTF-8",
					 "TKMS_LOCALEDIR", localedir, NULL};

		g_assert_cmpint(run_argv_env(argv, de_env, NULL, NULL, &err), ==, 2);
	}
	g_assert_true(g_str_has_prefix(err, "tkmsctl: unbekannter Befehl »lsit«"));
	g_assert_nonnull(strstr(err, "Meinten Sie »tkmsctl list«?"));
	{
		/* the life cycle's messages too: a malformed duration */
		const gchar *de_env[] = {"LANGUAGE", "de", "LANG", "C.UTF-8", "LC_ALL", "C.UTF-8",
					 "TKMS_LOCALEDIR", localedir, NULL};
		const gchar *policy_argv[] = {g_getenv("TKMSCTL"), "--address",
					      tkms_test_env_get_bus_address(env), "policy", "set", "k", "--period", "5x", NULL};
		g_autofree gchar *policy_err = NULL;

		g_assert_cmpint(run_argv_env(policy_argv, de_env, NULL, NULL, &policy_err), ==, 2);
		g_assert_nonnull(strstr(policy_err, "ungültige Zeitspanne »5x« für --period"));
		g_assert_nonnull(strstr(policy_err, "Zeitspannen: 90d, 12h, 30m, 45s"));
	}
	{
		/* and the password keys': an unknown character set */
		const gchar *de_env[] = {"LANGUAGE", "de", "LANG", "C.UTF-8", "LC_ALL", "C.UTF-8",
					 "TKMS_LOCALEDIR", localedir, NULL};
		const gchar *create_argv[] = {g_getenv("TKMSCTL"), "--address",
					      tkms_test_env_get_bus_address(env), "create", "k",
					      "password", "--charset", "base32", NULL};
		g_autofree gchar *create_err = NULL;

		g_assert_cmpint(run_argv_env(create_argv, de_env, NULL, NULL, &create_err), ==, 2);
		g_assert_nonnull(strstr(create_err, "unbekannter Zeichensatz »base32«"));
		g_assert_nonnull(strstr(create_err, "Zeichensätze: alnum, alnum-symbols, hex"));
	}
	{
		/* and --batch's: a line that is not base64 */
		const gchar *de_env[] = {"LANGUAGE", "de", "LANG", "C.UTF-8", "LC_ALL", "C.UTF-8",
					 "TKMS_LOCALEDIR", localedir, NULL};
		const gchar *batch_argv[] = {g_getenv("TKMSCTL"), "--address",
					     tkms_test_env_get_bus_address(env), "hmac", "k",
					     "--batch", NULL};
		g_autoptr(GBytes) input = tkms_test_bytes_str("aGk=\n*\n");
		g_autofree gchar *batch_err = NULL;

		g_assert_cmpint(run_argv_env(batch_argv, de_env, input, NULL, &batch_err), ==, 1);
		g_assert_nonnull(strstr(batch_err, "Zeile 2 von Standardeingabe ist kein Base64"));
	}
}

/* ---- a terminal: raw bytes and the authentication agent ---- */

/* Runs tkmsctl --address BUS ARGS... on a pseudo-terminal (script(1), which makes it the
 * controlling terminal); returns tkmsctl's exit status, or -1 without script. */
static gint
ctl_on_tty_input(gchar **out_text, GBytes *input, const gchar *const *args)
{
	g_autoptr(GString) cmd = g_string_new(NULL);
	g_autofree gchar *script = g_find_program_in_path("script");
	g_autofree gchar *quoted = g_shell_quote(g_getenv("TKMSCTL"));
	g_autofree gchar *bus = g_shell_quote(tkms_test_env_get_bus_address(env));
	g_autoptr(GBytes) out = NULL;
	gint status;

	if (script == NULL)
		return -1;
	g_string_append_printf(cmd, "%s --address %s", quoted, bus);
	for (guint i = 0; args[i] != NULL; i++) {
		g_autofree gchar *q = g_shell_quote(args[i]);
		g_string_append_printf(cmd, " %s", q);
	}
	{
		const gchar *argv[] = {script, "-qec", cmd->str, "/dev/null", NULL};

		/* script(1) passes its stdin on to the terminal: what a person types */
		status = run_argv(argv, input, &out, NULL);
	}
	if (out_text != NULL)
		*out_text = bytes_to_str(out);
	return status;
}

static gint
ctl_on_tty(gchar **out_text, const gchar *const *args)
{
	return ctl_on_tty_input(out_text, NULL, args);
}

static void
test_raw_to_tty(void)
{
	g_autofree gchar *refused = NULL;
	g_autofree gchar *b64 = NULL;
	gint status;

	status = ctl_on_tty(&refused, (const gchar *const[]){"random", "16", NULL});
	if (status < 0) {
		g_test_skip("no script(1) (util-linux): no terminal to test with");
		return;
	}
	g_assert_cmpint(status, ==, 2);
	g_assert_nonnull(strstr(refused, "refusing to write binary data to a terminal"));
	g_assert_nonnull(strstr(refused, "--out -"));
	/* asked for explicitly, or as text: written */
	g_assert_cmpint(ctl_on_tty(NULL, (const gchar *const[]){"random", "16", "--out", "-", NULL}),
			==, 0);
	g_assert_cmpint(ctl_on_tty(&b64, (const gchar *const[]){"random", "16", "--base64", NULL}),
			==, 0);
	g_assert_null(strstr(b64, "refusing"));
}

#define POLKIT_AUTHORITY_IFACE "org.freedesktop.PolicyKit1.Authority"

/* How many times an agent registered with the polkit mock since the last clear. */
static guint
agent_registrations(void)
{
	g_autoptr(GVariant) reply = polkit_mock_call(
		"GetMethodCalls", g_variant_new("(s)", "RegisterAuthenticationAgentWithOptions"));
	g_autoptr(GVariant) calls = g_variant_get_child_value(reply, 0);

	return (guint)g_variant_n_children(calls);
}

static void
test_agent(void)
{
	g_autoptr(GVariant) added = NULL;
	g_autofree gchar *pkttyagent = g_find_program_in_path("pkttyagent");
	gint status;

	if (pkttyagent == NULL) {
		g_test_skip("no pkttyagent (Debian package polkitd)");
		return;
	}
	/* the mock template lacks the method pkttyagent --fallback registers with */
	added = polkit_mock_call("AddMethod",
				 g_variant_new("(sssss)", POLKIT_AUTHORITY_IFACE,
					       "RegisterAuthenticationAgentWithOptions",
					       "(sa{sv})ssa{sv}", "", ""));
	polkit_mock_clear_calls();
	status = ctl_on_tty(NULL, (const gchar *const[]){"list", NULL});
	if (status < 0) {
		g_test_skip("no script(1) (util-linux): no terminal to test with");
		return;
	}
	g_assert_cmpint(status, ==, 0);
	/* on a terminal: one agent, for this tkmsctl, on tkmsd's bus */
	g_assert_cmpuint(agent_registrations(), ==, 1);

	polkit_mock_clear_calls();
	g_assert_cmpint(ctl_on_tty(NULL, (const gchar *const[]){"list", "--no-ask-password", NULL}),
			==, 0);
	g_assert_cmpuint(agent_registrations(), ==, 0);
	/* not on a terminal: none either */
	polkit_mock_clear_calls();
	g_assert_cmpint(ctl(NULL, NULL, NULL, "list", NULL), ==, 0);
	g_assert_cmpuint(agent_registrations(), ==, 0);
}

/* The pid written to @path by the test's scripts, once it is there (0 after 10 s). */
static gint
wait_for_pid_file(const gchar *path)
{
	for (guint i = 0; i < 1000; i++) {
		g_autofree gchar *text = NULL;

		if (g_file_get_contents(path, &text, NULL, NULL) && strchr(text, '\n') != NULL)
			return atoi(text);
		g_usleep(10 * 1000);
	}
	return 0;
}

/* Whether @pid still runs (a zombie, waiting to be reaped, does not). */
static gboolean
process_runs(gint pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/stat", pid);
	g_autofree gchar *stat = NULL;
	const gchar *end;

	if (!g_file_get_contents(path, &stat, NULL, NULL) || (end = strrchr(stat, ')')) == NULL)
		return FALSE;
	return end[1] == ' ' && end[2] != 'Z' && end[2] != 'X';
}

/* tkmsctl killed while its agent runs (kill -9, a terminal closed): the agent goes too. */
static void
test_agent_killed(void)
{
	g_autofree gchar *script = g_find_program_in_path("script");
	g_autofree gchar *agent = path_in_workdir("fake-pkttyagent");
	g_autofree gchar *agent_pid_file = path_in_workdir("agent.pid");
	g_autofree gchar *ctl_pid_file = path_in_workdir("tkmsctl.pid");
	g_autofree gchar *agent_text = NULL;
	g_autofree gchar *cmd = NULL;
	g_autofree gchar *q_ctl = g_shell_quote(g_getenv("TKMSCTL"));
	g_autofree gchar *q_bus = g_shell_quote(tkms_test_env_get_bus_address(env));
	g_autofree gchar *q_pid = g_shell_quote(ctl_pid_file);
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	gint agent_pid, ctl_pid;
	gboolean gone = FALSE;

	if (script == NULL) {
		g_test_skip("no script(1) (util-linux): no terminal to test with");
		return;
	}
	/* an agent that says it is ready and waits, as pkttyagent does */
	agent_text = g_strdup_printf("#!/bin/sh\necho $$ > '%s'\nexec 3>&-\nexec sleep 60\n",
				     agent_pid_file);
	g_assert_true(g_file_set_contents(agent, agent_text, -1, NULL));
	g_assert_cmpint(g_chmod(agent, 0755), ==, 0);
	g_unlink(agent_pid_file);
	g_unlink(ctl_pid_file);
	/* encrypt waits for its input from the terminal: the agent is up by then. The shell
	 * around it stays, as a person's would: the terminal's session does not end, so the
	 * kernel's hangup does not stop the agent for us. */
	cmd = g_strdup_printf("sh -c \"echo \\$\\$ > %s; exec %s --address %s encrypt "
			      "no-such-key --out -\"; sleep 10",
			      q_pid, q_ctl, q_bus);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
					     G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_subprocess_launcher_set_cwd(launcher, workdir);
	g_subprocess_launcher_setenv(launcher, "TKMS_PKTTYAGENT", agent, TRUE);
	proc = g_subprocess_launcher_spawn(launcher, &error, script, "-qec", cmd, "/dev/null",
					   NULL);
	g_assert_no_error(error);
	ctl_pid = wait_for_pid_file(ctl_pid_file);
	agent_pid = wait_for_pid_file(agent_pid_file);
	g_assert_cmpint(ctl_pid, >, 0);
	g_assert_cmpint(agent_pid, >, 0);
	g_assert_true(process_runs(agent_pid));

	g_assert_cmpint(kill(ctl_pid, SIGKILL), ==, 0);
	for (guint i = 0; i < 500 && !gone; i++) {
		gone = !process_runs(agent_pid);
		if (!gone)
			g_usleep(10 * 1000);
	}
	if (!gone)
		kill(agent_pid, SIGKILL);
	g_assert_true(gone);
	g_subprocess_force_exit(proc);
	g_subprocess_wait(proc, NULL, NULL);
}

#define MIB (1024 * 1024)

/* Above the daemon's MaxPayload (1 MiB in the fixture), which one Sign or Encrypt call takes */
#define LARGE_SIZE (5 * MIB + 12345)

static gchar *
write_large_file(const gchar *file_name, gsize size, guint32 seed)
{
	gchar *path = path_in_workdir(file_name);
	g_autoptr(GBytes) block = tkms_test_bytes_pattern(MIB, seed);
	FILE *f = fopen(path, "wb");

	g_assert_nonnull(f);
	/* a different first byte per MiB: no two blocks alike, so swapped chunks differ */
	for (gsize done = 0; done < size;) {
		gsize n = MIN(size - done, (gsize)MIB);
		guint8 first = (guint8)(done / MIB);

		g_assert_cmpuint(fwrite(&first, 1, 1, f), ==, 1);
		g_assert_cmpuint(fwrite(g_bytes_get_data(block, NULL), 1, n - 1, f), ==, n - 1);
		done += n;
	}
	g_assert_cmpint(fclose(f), ==, 0);
	return path;
}

static gchar *
file_sha256(const gchar *path)
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree guint8 *buf = g_malloc(MIB);
	FILE *f = fopen(path, "rb");
	gsize n;

	g_assert_nonnull(f);
	while ((n = fread(buf, 1, MIB, f)) > 0)
		g_checksum_update(sum, buf, (gssize)n);
	fclose(f);
	return g_strdup(g_checksum_get_string(sum));
}

static void
test_sign_large(void)
{
	const gchar *types[] = {"ecdsa-p256", "rsa-2048"};

	for (guint t = 0; t < G_N_ELEMENTS(types); t++) {
		g_autofree gchar *name = create_key("ctl-sign-large", types[t]);
		g_autofree gchar *msg = write_large_file("large-message.bin", LARGE_SIZE, t);
		g_autofree gchar *sig = path_in_workdir("large-message.sig");
		g_autofree gchar *pem = path_in_workdir("large-pub.pem");
		g_autofree gchar *other = path_in_workdir("large-other.bin");
		const gchar *openssl[] = {"openssl", "dgst", "-sha256", "-verify", pem,
					  "-signature", sig, msg, NULL};
		g_autoptr(GBytes) out = NULL;
		g_autoptr(GBytes) data = NULL;
		g_autoptr(GBytes) changed = NULL;
		g_autofree gchar *text = NULL;

		g_assert_cmpint(ctl(NULL, NULL, NULL, "pubkey", name, "--out", pem, NULL), ==, 0);
		g_assert_cmpint(ctl(NULL, NULL, NULL, "sign", name, "--in", msg, "--out", sig, NULL),
				==, 0);
		/* a standard signature of the whole file */
		g_assert_cmpint(run_argv(openssl, NULL, NULL, NULL), ==, 0);
		g_assert_cmpint(ctl(NULL, &out, NULL, "verify", name, "--signature", sig, "--in",
				    msg, NULL),
				==, 0);
		text = bytes_to_str(out);
		g_assert_cmpstr(text, ==, "valid\n");
		/* and from a pipe */
		data = read_file(msg);
		g_assert_cmpint(ctl(data, NULL, NULL, "verify", name, "--signature", sig, NULL), ==,
				0);
		/* one bit changed near the end: invalid */
		changed = tkms_test_bytes_flip_bit(data, 8 * (LARGE_SIZE - 3));
		g_assert_true(g_file_set_contents(other, g_bytes_get_data(changed, NULL),
						  (gssize)g_bytes_get_size(changed), NULL));
		g_assert_cmpint(ctl(NULL, NULL, NULL, "verify", name, "--signature", sig, "--in",
				    other, NULL),
				==, 3);
	}
}

static gboolean
starts_with(GBytes *b, const gchar *magic)
{
	return g_bytes_get_size(b) >= strlen(magic) &&
	       memcmp(g_bytes_get_data(b, NULL), magic, strlen(magic)) == 0;
}

static void
test_encrypt_stream(void)
{
	g_autofree gchar *name = create_key("ctl-stream", "aes-256-gcm");
	g_autofree gchar *pt = write_large_file("large-plain.bin", LARGE_SIZE, 3);
	g_autofree gchar *ct = path_in_workdir("large-cipher.bin");
	g_autofree gchar *back = path_in_workdir("large-back.bin");
	g_autofree gchar *want = file_sha256(pt);
	g_autofree gchar *got = NULL;
	g_autoptr(GBytes) ciphertext = NULL;
	g_autoptr(GBytes) plain = NULL;
	g_autoptr(GBytes) b64 = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autoptr(GBytes) out = NULL;
	GStatBuf st;

	g_assert_cmpint(ctl(NULL, NULL, NULL, "encrypt", name, "--context", "big", "--in", pt,
			    "--out", ct, NULL),
			==, 0);
	g_assert_cmpint(g_stat(ct, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	ciphertext = read_file(ct);
	g_assert_true(starts_with(ciphertext, "TKST"));
	/* header + 81 chunks of 64 KiB with a tag each */
	g_assert_cmpuint(g_bytes_get_size(ciphertext), <, LARGE_SIZE + 200 + 81 * 16);
	plain = read_file(pt);
	g_assert_false(tkms_test_bytes_contain(ciphertext, (const guint8 *)g_bytes_get_data(
								   plain, NULL) + MIB,
					       64));

	g_assert_cmpint(ctl(NULL, NULL, NULL, "decrypt", name, "--context", "big", "--in", ct,
			    "--out", back, NULL),
			==, 0);
	got = file_sha256(back);
	g_assert_cmpstr(got, ==, want);
	g_assert_cmpint(g_stat(back, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);

	/* another context: the wrapped key does not open, nothing is written */
	g_assert_cmpint(g_unlink(back), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "decrypt", name, "--context", "other", "--in", ct,
			    "--out", back, NULL),
			==, 1);
	g_assert_false(g_file_test(back, G_FILE_TEST_EXISTS));

	/* through pipes, as base64 and as JSON */
	g_assert_cmpint(ctl(plain, &b64, NULL, "encrypt", name, "--base64", NULL), ==, 0);
	g_assert_cmpint(ctl(b64, &out, NULL, "decrypt", name, "--base64", NULL), ==, 0);
	tkms_assert_bytes_equal(out, plain);
	g_clear_pointer(&out, g_bytes_unref);
	g_assert_cmpint(ctl(plain, &json, NULL, "--json", "encrypt", name, NULL), ==, 0);
	{
		g_autoptr(GBytes) raw = json_base64_member(json);
		g_autoptr(GBytes) json_plain = NULL;
		g_autoptr(GBytes) decoded = NULL;

		g_assert_true(starts_with(raw, "TKST"));
		g_assert_cmpint(ctl(raw, &json_plain, NULL, "decrypt", name, "--json", NULL), ==, 0);
		decoded = json_base64_member(json_plain);
		tkms_assert_bytes_equal(decoded, plain);
	}
}

static void
test_encrypt_small_format(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *name = create_key("ctl-small", "aes-256-gcm");
	g_autoptr(GBytes) data = tkms_test_bytes_pattern(5000, 9);
	g_autoptr(GBytes) context = tkms_test_bytes_str("c");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) stream = NULL;
	g_autoptr(GBytes) back = NULL;
	g_autoptr(GBytes) edge = tkms_test_bytes_pattern(MIB, 10);
	g_autoptr(GBytes) edge_ct = NULL;
	g_autoptr(GError) error = NULL;

	/* up to 1 MiB: one Encrypt, the format tkmsd's Decrypt reads */
	g_assert_cmpint(ctl(data, &ct, NULL, "encrypt", name, "--context", "c", NULL), ==, 0);
	g_assert_true(starts_with(ct, "TKMS"));
	back = tkms_client_decrypt_sync(client, name, ct, context, NULL, &error);
	g_assert_no_error(error);
	tkms_assert_bytes_equal(back, data);
	g_assert_cmpint(ctl(edge, &edge_ct, NULL, "encrypt", name, NULL), ==, 0);
	g_assert_true(starts_with(edge_ct, "TKMS"));
	g_assert_cmpuint(g_bytes_get_size(edge_ct), ==, MIB + 40);

	/* --stream asks for the stream format at any size, even none */
	g_clear_pointer(&back, g_bytes_unref);
	g_assert_cmpint(ctl(data, &stream, NULL, "encrypt", name, "--stream", "--context", "c",
			    NULL),
			==, 0);
	g_assert_true(starts_with(stream, "TKST"));
	g_assert_cmpint(ctl(stream, &back, NULL, "decrypt", name, "--context", "c", NULL), ==, 0);
	tkms_assert_bytes_equal(back, data);
	{
		g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
		g_autoptr(GBytes) empty_ct = NULL;
		g_autoptr(GBytes) empty_back = NULL;

		g_assert_cmpint(ctl(empty, &empty_ct, NULL, "encrypt", name, "--stream", NULL), ==,
				0);
		g_assert_cmpint(ctl(empty_ct, &empty_back, NULL, "decrypt", name, NULL), ==, 0);
		g_assert_cmpuint(g_bytes_get_size(empty_back), ==, 0);
	}
}

static GBytes *
concat(GBytes *a, gsize a_off, gsize a_len, GBytes *b, gsize b_off, gsize b_len)
{
	GByteArray *arr = g_byte_array_new();

	g_byte_array_append(arr, (const guint8 *)g_bytes_get_data(a, NULL) + a_off, (guint)a_len);
	if (b != NULL)
		g_byte_array_append(arr, (const guint8 *)g_bytes_get_data(b, NULL) + b_off,
				    (guint)b_len);
	return g_byte_array_free_to_bytes(arr);
}

static gboolean
workdir_has_temp_files(void)
{
	g_autoptr(GDir) dir = g_dir_open(workdir, 0, NULL);
	const gchar *entry;

	while ((entry = g_dir_read_name(dir)) != NULL) {
		if (strstr(entry, ".tkms-") != NULL)
			return TRUE;
	}
	return FALSE;
}

/* docs/stream-format.md: an ordinary Encrypt ciphertext whose 32-byte plaintext is known, put
 * in a stream header as the wrapped key, must not let its holder write a stream that decrypts:
 * the stream's data key is wrapped under its own context. */
static void
test_encrypt_stream_forged_key(void)
{
	g_autofree gchar *name = create_key("ctl-forge", "aes-256-gcm");
	g_autoptr(GBytes) known = tkms_test_bytes_pattern(32, 21);
	g_autoptr(GBytes) wrapped = NULL;
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GByteArray) stream = g_byte_array_new();
	g_autoptr(GByteArray) aad = g_byte_array_new();
	static const guint8 fixed[] = {'T', 'K', 'S', 'T', 1, 1, 0, 0, 0, 1, 0, 0,
				       1, 2, 3, 4, 5, 6, 7, 8};
	static const guint8 forged[] = "forged content";
	guint8 nonce[12] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0};
	guint8 digest[32], index_final[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1}, tag[16];
	guint8 body[sizeof(forged)];
	guint8 wl[2];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	unsigned int dlen = 0;
	int n = 0;

	/* anyone may hold a ciphertext whose plaintext they know */
	g_assert_cmpint(ctl(known, &wrapped, NULL, "encrypt", name, "--context", "f", NULL), ==,
			0);
	g_byte_array_append(stream, fixed, sizeof(fixed));
	wl[0] = g_bytes_get_size(wrapped) >> 8;
	wl[1] = g_bytes_get_size(wrapped) & 0xff;
	g_byte_array_append(stream, wl, 2);
	g_byte_array_append(stream, g_bytes_get_data(wrapped, NULL), g_bytes_get_size(wrapped));
	g_assert_cmpint(EVP_Digest(stream->data, stream->len, digest, &dlen, EVP_sha256(), NULL),
			==, 1);
	g_byte_array_append(aad, (const guint8 *)"tkms-stream-v1", 15);
	g_byte_array_append(aad, digest, sizeof(digest));
	g_byte_array_append(aad, index_final, sizeof(index_final));
	g_assert_cmpint(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL,
					   g_bytes_get_data(known, NULL), nonce),
			==, 1);
	g_assert_cmpint(EVP_EncryptUpdate(c, NULL, &n, aad->data, aad->len), ==, 1);
	g_assert_cmpint(EVP_EncryptUpdate(c, body, &n, forged, sizeof(forged)), ==, 1);
	g_assert_cmpint(EVP_EncryptFinal_ex(c, body + n, &n), ==, 1);
	g_assert_cmpint(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag), ==, 1);
	EVP_CIPHER_CTX_free(c);
	g_byte_array_append(stream, body, sizeof(body));
	g_byte_array_append(stream, tag, sizeof(tag));
	{
		g_autoptr(GBytes) in = g_bytes_new(stream->data, stream->len);
		g_assert_cmpint(ctl(in, &out, NULL, "decrypt", name, "--context", "f", NULL), !=,
				0);
	}
	g_assert_true(out == NULL || g_bytes_get_size(out) == 0 ||
		      g_strstr_len(g_bytes_get_data(out, NULL), g_bytes_get_size(out),
				   (const gchar *)forged) == NULL);
}

static void
test_encrypt_stream_tamper(void)
{
	g_autofree gchar *name = create_key("ctl-tamper", "aes-256-gcm");
	/* three full chunks of 64 KiB and a short last one */
	const gsize chunk = 65536 + 16, size = 3 * 65536 + 1000;
	g_autoptr(GBytes) data = tkms_test_bytes_pattern(size, 11);
	g_autofree gchar *out_path = path_in_workdir("tampered-plain.bin");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) ok_back = NULL;
	const guint8 *p;
	gsize len, header_len;

	g_assert_cmpint(ctl(data, &ct, NULL, "encrypt", name, "--stream", "--context", "t", NULL),
			==, 0);
	p = g_bytes_get_data(ct, &len);
	header_len = 22 + ((gsize)p[20] << 8 | p[21]);
	g_assert_cmpuint(len, ==, header_len + 3 * chunk + 1000 + 16);
	g_assert_cmpint(ctl(ct, &ok_back, NULL, "decrypt", name, "--context", "t", NULL), ==, 0);
	tkms_assert_bytes_equal(ok_back, data);

	{
		gsize c0 = header_len, c1 = header_len + chunk, c2 = header_len + 2 * chunk;
		gsize c3 = header_len + 3 * chunk;
		g_autoptr(GBytes) garbage = tkms_test_bytes_pattern(40, 12);
		struct {
			const gchar *what;
			GBytes *bytes;
		} cases[] = {
			{"header: version", tkms_test_bytes_xor_byte(ct, 4, 0x01)},
			{"header: chunk size", tkms_test_bytes_xor_byte(ct, 10, 0x01)},
			{"header: nonce prefix", tkms_test_bytes_xor_byte(ct, 13, 0x01)},
			{"header: wrapped key length", tkms_test_bytes_xor_byte(ct, 21, 0x01)},
			{"wrapped key", tkms_test_bytes_xor_byte(ct, 22 + 30, 0x01)},
			{"chunk 1 ciphertext", tkms_test_bytes_xor_byte(ct, c1 + 100, 0x80)},
			{"chunk 0 tag", tkms_test_bytes_xor_byte(ct, c1 - 1, 0x01)},
			{"last chunk ciphertext", tkms_test_bytes_xor_byte(ct, c3 + 5, 0x01)},
			{"last chunk tag", tkms_test_bytes_xor_byte(ct, len - 1, 0x01)},
			{"cut at a chunk boundary", tkms_test_bytes_truncate(ct, c3)},
			{"cut after the header", tkms_test_bytes_truncate(ct, c0)},
			{"cut inside the header", tkms_test_bytes_truncate(ct, 30)},
			{"cut inside the last chunk", tkms_test_bytes_truncate(ct, len - 20)},
			{"chunk 1 dropped", concat(ct, 0, c1, ct, c2, len - c2)},
			{"chunks 1 and 2 swapped",
			 ({
				 GByteArray *a = g_byte_array_new();
				 g_byte_array_append(a, p, (guint)c1);
				 g_byte_array_append(a, p + c2, (guint)chunk);
				 g_byte_array_append(a, p + c1, (guint)chunk);
				 g_byte_array_append(a, p + c3, (guint)(len - c3));
				 g_byte_array_free_to_bytes(a);
			 })},
			{"chunk 1 twice", concat(ct, 0, c2, ct, c1, len - c1)},
			{"garbage appended", concat(ct, 0, len, garbage, 0, 40)},
			{"a whole chunk appended", concat(ct, 0, len, ct, c1, chunk)},
		};

		for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
			g_autoptr(GBytes) out = NULL;
			g_autofree gchar *err = NULL;
			g_autofree gchar *in_path = path_in_workdir("tampered.bin");
			gint status;

			g_test_message("tamper: %s", cases[i].what);
			g_assert_cmpuint(g_bytes_get_size(cases[i].bytes), !=, 0);
			/* a file: tkmsctl stops reading at the first bad chunk */
			g_assert_true(g_file_set_contents(in_path,
							  g_bytes_get_data(cases[i].bytes, NULL),
							  (gssize)g_bytes_get_size(cases[i].bytes),
							  NULL));
			/* to a file: a failure leaves no file and no temporary one */
			status = ctl(NULL, NULL, &err, "decrypt", name, "--context", "t", "--in",
				     in_path, "--out", out_path, NULL);
			g_assert_cmpint(status, !=, 0);
			g_assert_cmpint(status, !=, 2);
			g_assert_true(g_str_has_prefix(err, "tkmsctl: "));
			g_assert_false(g_file_test(out_path, G_FILE_TEST_EXISTS));
			g_assert_false(workdir_has_temp_files());
			/* to a pipe: never all of the plaintext, and a failure status */
			g_assert_cmpint(ctl(NULL, &out, NULL, "decrypt", name, "--context", "t",
					    "--in", in_path, NULL),
					!=, 0);
			g_assert_cmpuint(g_bytes_get_size(out), <, size);
			g_bytes_unref(cases[i].bytes);
		}
	}
}

/* Max RSS of a tkmsctl run in KiB, as GNU time measures it: time's own child starts from
 * time's small address space, whereas a child of this test process would inherit the
 * test's high-water mark through fork (Linux keeps the maximum across exec). */
static glong
ctl_max_rss_kib(const gchar *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree gchar *report = path_in_workdir("time.out");
	g_autofree gchar *text = NULL;

	g_ptr_array_add(argv, (gpointer) "/usr/bin/time");
	g_ptr_array_add(argv, (gpointer) "-f");
	g_ptr_array_add(argv, (gpointer) "%M");
	g_ptr_array_add(argv, (gpointer) "-o");
	g_ptr_array_add(argv, report);
	g_ptr_array_add(argv, (gpointer)g_getenv("TKMSCTL"));
	g_ptr_array_add(argv, (gpointer) "--address");
	g_ptr_array_add(argv, (gpointer)tkms_test_env_get_bus_address(env));
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	g_assert_cmpint(run_argv((const gchar *const *)argv->pdata, NULL, NULL, NULL), ==, 0);
	g_assert_true(g_file_get_contents(report, &text, NULL, NULL));
	return strtol(text, NULL, 10);
}

static void
test_encrypt_stream_memory(void)
{
	g_autofree gchar *name = create_key("ctl-mem", "aes-256-gcm");
	g_autofree gchar *pt = write_large_file("huge-plain.bin", 50 * MIB, 21);
	g_autofree gchar *ct = path_in_workdir("huge-cipher.bin");
	g_autofree gchar *back = path_in_workdir("huge-back.bin");
	g_autofree gchar *small = path_in_workdir("small-plain.bin");
	g_autofree gchar *small_ct = path_in_workdir("small-cipher.bin");
	g_autofree gchar *want = file_sha256(pt);
	g_autofree gchar *got = NULL;
	glong enc_kib, dec_kib, small_kib;
	gint64 t0, t_stream, t_single;

	if (!g_file_test("/usr/bin/time", G_FILE_TEST_IS_EXECUTABLE)) {
		g_test_skip("no /usr/bin/time (Debian package time)");
		return;
	}
	{
		g_autoptr(GBytes) one = tkms_test_bytes_pattern(MIB, 22);
		g_assert_true(g_file_set_contents(small, g_bytes_get_data(one, NULL), MIB, NULL));
	}
	t0 = g_get_monotonic_time();
	small_kib = ctl_max_rss_kib((const gchar *const[]){"encrypt", name, "--in", small, "--out",
							  small_ct, NULL});
	t_single = g_get_monotonic_time() - t0;
	t0 = g_get_monotonic_time();
	enc_kib = ctl_max_rss_kib(
		(const gchar *const[]){"encrypt", name, "--in", pt, "--out", ct, NULL});
	t_stream = g_get_monotonic_time() - t0;
	dec_kib = ctl_max_rss_kib(
		(const gchar *const[]){"decrypt", name, "--in", ct, "--out", back, NULL});
	got = file_sha256(back);
	g_assert_cmpstr(got, ==, want);
	g_test_message("max RSS: encrypt 1 MiB (one Encrypt) %ld KiB, stream encrypt 50 MiB %ld "
		       "KiB, stream decrypt 50 MiB %ld KiB; 1 MiB in %.1f ms (%.1f MB/s), 50 MiB "
		       "in %.1f ms (%.1f MB/s)",
		       small_kib, enc_kib, dec_kib, t_single / 1000.0,
		       (double)MIB / (double)t_single, t_stream / 1000.0,
		       50.0 * MIB / (double)t_stream);
	/* constant memory: far below the input's 50 MiB */
	g_assert_cmpint(enc_kib, <, 30 * 1024);
	g_assert_cmpint(dec_kib, <, 30 * 1024);
	g_unlink(pt);
	g_unlink(ct);
	g_unlink(back);
}

static GBytes *
line_value(const gchar *text, const gchar *label)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	gsize len = 0;

	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix(lines[i], label)) {
			guchar *data = g_base64_decode(lines[i] + strlen(label), &len);
			return g_bytes_new_take(data, len);
		}
	}
	g_assert_not_reached();
}

static void
test_datakey(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *name = create_key("ctl-datakey", "aes-256-gcm");
	g_autofree gchar *key_file = path_in_workdir("data.key");
	g_autofree gchar *wrapped_file = path_in_workdir("data.key.wrapped");
	g_autoptr(GBytes) context = tkms_test_bytes_str("backup-7");
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autoptr(GBytes) key = NULL;
	g_autoptr(GBytes) wrapped = NULL;
	g_autoptr(GBytes) unwrapped = NULL;
	g_autoptr(GBytes) via_ctl = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *text = NULL;
	gint status;
	GStatBuf st;

	/* printed as base64 lines; the wrapped key opens with the same context */
	g_assert_cmpint(ctl(NULL, &out, NULL, "datakey", name, "--context", "backup-7", NULL), ==,
			0);
	text = bytes_to_str(out);
	key = line_value(text, "plaintext: ");
	wrapped = line_value(text, "wrapped: ");
	g_assert_cmpuint(g_bytes_get_size(key), ==, 32);
	unwrapped = tkms_client_decrypt_sync(client, name, wrapped, context, NULL, &error);
	g_assert_no_error(error);
	tkms_assert_bytes_equal(unwrapped, key);
	/* decrypt gives it back too */
	g_assert_cmpint(ctl(wrapped, &via_ctl, NULL, "decrypt", name, "--context", "backup-7", NULL),
			==, 0);
	tkms_assert_bytes_equal(via_ctl, key);

	/* to files: the key raw and private, the wrapped key beside it */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "datakey", name, "--length", "16", "--out-plaintext",
			    key_file, "--out-wrapped", wrapped_file, NULL),
			==, 0);
	g_assert_cmpint(g_stat(key_file, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_cmpint(st.st_size, ==, 16);
	{
		g_autoptr(GBytes) k = read_file(key_file);
		g_autoptr(GBytes) w = read_file(wrapped_file);
		g_autoptr(GBytes) u = tkms_client_decrypt_sync(client, name, w, NULL, NULL, &error);

		g_assert_no_error(error);
		tkms_assert_bytes_equal(u, k);
	}

	/* --json: both as base64 members */
	g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "datakey", name, "--length", "64", NULL),
			==, 0);
	{
		g_autoptr(JsonNode) root = parse_json(json);
		JsonObject *obj = json_node_get_object(root);
		gsize len = 0;
		g_autofree guchar *k = g_base64_decode(
			json_object_get_string_member(obj, "plaintext"), &len);

		g_assert_cmpuint(len, ==, 64);
		g_assert_cmpint(json_object_get_int_member(obj, "length"), ==, 64);
		g_assert_true(json_object_has_member(obj, "wrapped"));
	}

	/* the daemon's bounds, and usage errors */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "datakey", name, "--length", "65", NULL), ==, 1);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "datakey", name, "--length", "0", NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "datakey", name, "--context", "a", "--context-file",
			    key_file, NULL),
			==, 2);

	/* never printed on a terminal unless asked for */
	{
		g_autofree gchar *tty_out = NULL;

		status = ctl_on_tty(&tty_out, (const gchar *const[]){"datakey", name, NULL});
		if (status >= 0) {
			g_assert_cmpint(status, ==, 2);
			g_assert_nonnull(strstr(tty_out, "refusing"));
			g_clear_pointer(&tty_out, g_free);
			g_assert_cmpint(ctl_on_tty(&tty_out,
						   (const gchar *const[]){"datakey", name,
									  "--out-plaintext", "-",
									  NULL}),
					==, 0);
			g_assert_nonnull(strstr(tty_out, "plaintext: "));
		}
	}
}

/* A secret written over an existing file: it does not keep the file's old mode (0644 here,
 * readable by everyone), as the man page's "created with mode 0600" promises. */
static void
test_out_existing_file(void)
{
	g_autofree gchar *name = create_key("ctl-out-mode", "aes-256-gcm");
	g_autoptr(GBytes) data = tkms_test_bytes_str("the plaintext of an existing file");
	g_autoptr(GBytes) ct = NULL;
	g_autofree gchar *plain_file = path_in_workdir("existing-plain.txt");
	g_autofree gchar *key_file = path_in_workdir("existing-key.bin");
	GStatBuf st;

	g_assert_cmpint(ctl(data, &ct, NULL, "encrypt", name, NULL), ==, 0);
	g_assert_true(g_file_set_contents(plain_file, "old and longer than the new plaintext\n",
					  -1, NULL));
	g_assert_cmpint(g_chmod(plain_file, 0644), ==, 0);
	g_assert_cmpint(ctl(ct, NULL, NULL, "decrypt", name, "--out", plain_file, NULL), ==, 0);
	g_assert_cmpint(g_stat(plain_file, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	{
		g_autoptr(GBytes) back = read_file(plain_file);
		tkms_assert_bytes_equal(back, data);
	}

	g_assert_true(g_file_set_contents(key_file, "", 0, NULL));
	g_assert_cmpint(g_chmod(key_file, 0644), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "datakey", name, "--out-plaintext", key_file,
			    "--out-wrapped", "/dev/null", NULL),
			==, 0);
	g_assert_cmpint(g_stat(key_file, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_cmpint(st.st_size, ==, 32);
	g_assert_false(workdir_has_temp_files());
}

/* A description is another user's text when an admin reads it (OWNER:NAME): its control
 * characters must not reach the terminal as such, where ESC sequences retitle it, clear it or
 * make it answer back as if typed. JSON escapes them anyway. */
static void
test_info_control_chars(void)
{
	g_autofree gchar *name = tkms_test_key_name("ctl-escape");
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autofree gchar *text = NULL;

	g_assert_cmpint(ctl(NULL, NULL, NULL, "create", name, "hmac-sha256", "--description",
			    "ok\x1b]2;owned\x07\x1b[2Jgone\xc2\x9b", NULL),
			==, 0);
	g_assert_cmpint(ctl(NULL, &out, NULL, "info", name, NULL), ==, 0);
	text = bytes_to_str(out);
	g_assert_null(strchr(text, '\x1b'));
	g_assert_null(strchr(text, '\x07'));
	g_assert_null(strstr(text, "\xc2\x9b"));
	g_assert_nonnull(strstr(text, "ok\\x1b]2;owned\\x07\\x1b[2Jgone\\x9b"));
	/* JSON keeps the text as it is, escaped by JSON itself */
	g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "info", name, NULL), ==, 0);
	{
		g_autoptr(JsonNode) root = parse_json(json);
		JsonObject *obj = json_node_get_object(root);

		g_assert_null(memchr(g_bytes_get_data(json, NULL), 0x1b, g_bytes_get_size(json)));
		g_assert_cmpstr(json_object_get_string_member(obj, "description"), ==,
				"ok\x1b]2;owned\x07\x1b[2Jgone\xc2\x9b");
	}
}

static void
test_reencrypt(void)
{
	g_autofree gchar *name = create_key("ctl-reencrypt", "aes-256-gcm");
	g_autoptr(GBytes) data = tkms_test_bytes_str("rewrap me");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) ct2 = NULL;
	g_autoptr(GBytes) back = NULL;
	g_autoptr(GBytes) b64 = NULL;
	g_autoptr(GBytes) b64_2 = NULL;
	g_autoptr(GBytes) back2 = NULL;
	g_autoptr(GBytes) stream = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *ct_file = path_in_workdir("rewrap.ct");
	g_autofree gchar *ct2_file = path_in_workdir("rewrap2.ct");

	g_assert_cmpint(ctl(data, &ct, NULL, "encrypt", name, "--context", "r", NULL), ==, 0);
	g_assert_true(g_file_set_contents(ct_file, g_bytes_get_data(ct, NULL),
					  (gssize)g_bytes_get_size(ct), NULL));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "reencrypt", name, "--context", "r", "--in", ct_file,
			    "--out", ct2_file, NULL),
			==, 0);
	ct2 = read_file(ct2_file);
	g_assert_false(g_bytes_equal(ct, ct2));
	g_assert_cmpint(ctl(ct2, &back, NULL, "decrypt", name, "--context", "r", NULL), ==, 0);
	tkms_assert_bytes_equal(back, data);

	/* base64 in and out, through pipes */
	g_assert_cmpint(ctl(data, &b64, NULL, "encrypt", name, "--base64", NULL), ==, 0);
	g_assert_cmpint(ctl(b64, &b64_2, NULL, "reencrypt", name, "--base64", NULL), ==, 0);
	g_assert_cmpint(ctl(b64_2, &back2, NULL, "decrypt", name, "--base64", NULL), ==, 0);
	tkms_assert_bytes_equal(back2, data);

	/* the wrong context: the daemon refuses, exit status 1 */
	g_assert_cmpint(ctl(ct, NULL, NULL, "reencrypt", name, "--context", "other", NULL), ==, 1);
	/* a stream cannot be rewrapped: said so */
	g_assert_cmpint(ctl(data, &stream, NULL, "encrypt", name, "--stream", NULL), ==, 0);
	g_assert_cmpint(ctl(stream, NULL, &err, "reencrypt", name, NULL), ==, 2);
	g_assert_nonnull(strstr(err, "stream"));
	/* standard input cannot be both the context and the ciphertext (without --in, the
	 * ciphertext is read from it), as for encrypt and decrypt */
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(ctl(ct, NULL, &err, "reencrypt", name, "--context-file", "-", NULL), ==,
			2);
	g_assert_nonnull(strstr(err, "--context-file - needs the data from --in FILE"));
}

/* ---- the life cycle: rotate, policy, state, primary, destroy ---- */

static JsonObject *
json_object_of(GBytes *text, JsonNode **out_root)
{
	JsonNode *root = parse_json(text);

	g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
	*out_root = root;
	return json_node_get_object(root);
}

/* `tkmsctl --json info NAME`; the caller frees *out_root */
static JsonObject *
info_json(const gchar *name, JsonNode **out_root)
{
	g_autoptr(GBytes) out = NULL;

	g_assert_cmpint(ctl(NULL, &out, NULL, "--json", "info", name, NULL), ==, 0);
	return json_object_of(out, out_root);
}

static JsonObject *
json_version(JsonObject *info, guint version)
{
	JsonArray *versions = json_object_get_array_member(info, "versions");

	for (guint i = 0; i < json_array_get_length(versions); i++) {
		JsonObject *v = json_array_get_object_element(versions, i);

		if (json_object_get_int_member(v, "version") == version)
			return v;
	}
	g_assert_not_reached();
}

static gchar *
version_state(const gchar *name, guint version)
{
	g_autoptr(JsonNode) root = NULL;
	JsonObject *info = info_json(name, &root);

	return g_strdup(json_object_get_string_member(json_version(info, version), "state"));
}

/* The line of `tkmsctl list` for @name. */
static gchar *
list_line(const gchar *name)
{
	g_autoptr(GBytes) out = NULL;
	g_autofree gchar *text = NULL;
	g_auto(GStrv) lines = NULL;

	g_assert_cmpint(ctl(NULL, &out, NULL, "list", NULL), ==, 0);
	text = bytes_to_str(out);
	lines = g_strsplit(text, "\n", -1);
	g_assert_true(g_str_has_prefix(lines[0], "NAME"));
	g_assert_nonnull(strstr(lines[0], " STATE "));
	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix(lines[i], name) && lines[i][strlen(name)] == ' ')
			return g_strdup(lines[i]);
	}
	g_assert_not_reached();
}

static void
test_rotate(void)
{
	g_autofree gchar *name = create_key("ctl-rotate", "aes-256-gcm");
	g_autoptr(GBytes) plain = tkms_test_bytes_str("written under version 1");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autoptr(GBytes) back = NULL;
	g_autoptr(GBytes) text = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(JsonNode) info_root = NULL;
	g_autofree gchar *printed = NULL;
	g_autofree gchar *info_text = NULL;
	JsonObject *obj, *info;

	g_assert_cmpint(ctl(plain, &ct, NULL, "encrypt", name, "--base64", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, &out, NULL, "rotate", name, NULL), ==, 0);
	printed = bytes_to_str(out);
	g_assert_cmpstr(printed, ==, "2\n");
	g_assert_cmpint(ctl(NULL, &json, NULL, "rotate", name, "--json", NULL), ==, 0);
	obj = json_object_of(json, &root);
	g_assert_cmpint(json_object_get_int_member(obj, "version"), ==, 3);
	g_assert_cmpstr(json_object_get_string_member(obj, "name"), ==, name);

	/* the ciphertext of version 1 still decrypts, through tkmsctl */
	g_assert_cmpint(ctl(ct, &back, NULL, "decrypt", name, "--base64", "--out", "-", NULL), ==,
			0);
	g_assert_true(g_bytes_equal(back, plain));

	info = info_json(name, &info_root);
	g_assert_cmpint(json_object_get_int_member(info, "primary-version"), ==, 3);
	g_assert_cmpuint(json_array_get_length(json_object_get_array_member(info, "versions")),
			 ==, 3);
	g_assert_true(is_iso8601_utc(
		json_object_get_string_member(json_version(info, 1), "superseded")));
	g_assert_true(is_iso8601_utc(
		json_object_get_string_member(json_version(info, 3), "activated")));
	g_assert_false(json_object_has_member(json_version(info, 3), "superseded"));
	g_assert_cmpint(json_object_get_int_member(json_version(info, 1), "uses"), >=, 0);

	/* for people: every version with its state and dates, the primary marked */
	g_assert_cmpint(ctl(NULL, &text, NULL, "info", name, NULL), ==, 0);
	info_text = bytes_to_str(text);
	g_assert_nonnull(strstr(info_text, "versions:"));
	g_assert_true(g_regex_match_simple("^  1 +active +created \\S+Z  uses \\d+$", info_text,
					   G_REGEX_MULTILINE, 0));
	g_assert_true(g_regex_match_simple("^  3\\* +active ", info_text, G_REGEX_MULTILINE, 0));
	g_assert_true(g_regex_match_simple("^ +activated \\S+Z, superseded \\S+Z$", info_text,
					   G_REGEX_MULTILINE, 0));
	g_assert_nonnull(strstr(info_text, "rotation policy:"));

	g_assert_cmpint(ctl(NULL, NULL, NULL, "rotate", NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "rotate", "ctl-rotate-missing", NULL), ==, 6);
}

static void
test_policy(void)
{
	g_autofree gchar *name = create_key("ctl-policy", "hmac-sha256");
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) shown = NULL;
	g_autoptr(GBytes) cleared = NULL;
	g_autoptr(GBytes) text = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(JsonNode) root2 = NULL;
	g_autoptr(JsonNode) root3 = NULL;
	g_autofree gchar *show_text = NULL;
	g_autofree gchar *err = NULL;
	JsonObject *obj, *policy;
	const gchar *bad[] = {"5x", "-1", "", "1.5h", "h", "99999999999999999999", "7 d"};

	g_assert_cmpint(ctl(NULL, &out, NULL, "--json", "policy", "set", name, "--period", "90d",
			    "--deactivate-after", "12h", NULL),
			==, 0);
	obj = json_object_of(out, &root);
	policy = json_object_get_object_member(obj, "policy");
	g_assert_cmpint(json_object_get_int_member(policy, "period"), ==, 90 * 86400);
	g_assert_cmpint(json_object_get_int_member(policy, "deactivate-after"), ==, 12 * 3600);
	g_assert_false(json_object_has_member(policy, "max-uses"));
	g_assert_true(is_iso8601_utc(json_object_get_string_member(obj, "next-rotation")));

	/* set changes only what it is given; 0 removes a member */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "policy", "set", name, "--max-uses", "1000",
			    "--destroy-after", "30m", "--deactivate-after", "0", NULL),
			==, 0);
	g_assert_cmpint(ctl(NULL, &shown, NULL, "policy", "show", name, "--json", NULL), ==, 0);
	policy = json_object_get_object_member(json_object_of(shown, &root2), "policy");
	g_assert_cmpint(json_object_get_int_member(policy, "period"), ==, 90 * 86400);
	g_assert_cmpint(json_object_get_int_member(policy, "max-uses"), ==, 1000);
	g_assert_cmpint(json_object_get_int_member(policy, "destroy-after"), ==, 1800);
	g_assert_false(json_object_has_member(policy, "deactivate-after"));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "policy", "set", name, "--period", "45s", NULL), ==,
			0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "policy", "set", name, "--period", "3600", NULL), ==,
			0);

	g_assert_cmpint(ctl(NULL, &text, NULL, "policy", "show", name, NULL), ==, 0);
	show_text = bytes_to_str(text);
	g_assert_nonnull(strstr(show_text, "period:            1h (3600 s)"));
	g_assert_nonnull(strstr(show_text, "max-uses:          1000"));
	g_assert_nonnull(strstr(show_text, "deactivate-after:  none"));
	g_assert_nonnull(strstr(show_text, "destroy-after:     30m (1800 s)"));
	g_assert_nonnull(strstr(show_text, "next rotation:"));

	/* malformed durations and misuse are usage errors, and change nothing */
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_clear_pointer(&err, g_free);
		g_assert_cmpint(ctl(NULL, NULL, &err, "policy", "set", name, "--period", bad[i],
				    NULL),
				==, 2);
		g_assert_nonnull(strstr(err, "invalid duration"));
		g_assert_nonnull(strstr(err, "90d, 12h, 30m, 45s"));
	}
	g_assert_cmpint(ctl(NULL, NULL, NULL, "policy", "set", name, "--destroy-after", "2w",
			    NULL),
			==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "policy", "set", name, "--max-uses", "many", NULL),
			==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "policy", "set", name, NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "policy", "show", name, "--period", "1d", NULL), ==,
			2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "policy", "frob", name, NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "policy", "show", NULL), ==, 2);

	g_assert_cmpint(ctl(NULL, &cleared, NULL, "--json", "policy", "clear", name, NULL), ==, 0);
	obj = json_object_of(cleared, &root3);
	g_assert_cmpuint(json_object_get_size(json_object_get_object_member(obj, "policy")), ==, 0);
	g_assert_true(json_object_get_null_member(obj, "next-rotation"));
}

static void
test_state(void)
{
	g_autofree gchar *name = create_key("ctl-state", "aes-256-gcm");
	g_autoptr(GBytes) plain = tkms_test_bytes_str("old data");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(JsonNode) err_root = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *json_err = NULL;
	g_autofree gchar *state = NULL;
	g_autofree gchar *primary_hint = g_strdup_printf("'tkmsctl primary %s N'", name);
	g_autofree gchar *rotate_hint = g_strdup_printf("'tkmsctl rotate %s'", name);
	JsonObject *e;

	g_assert_cmpint(ctl(plain, &ct, NULL, "encrypt", name, "--base64", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "rotate", name, NULL), ==, 0);

	/* deactivated: still decrypts */
	g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "state", name, "1", "deactivated", NULL),
			==, 0);
	g_assert_cmpstr(json_object_get_string_member(json_object_of(json, &root), "state"), ==,
			"deactivated");
	state = version_state(name, 1);
	g_assert_cmpstr(state, ==, "deactivated");
	g_assert_cmpint(ctl(ct, NULL, NULL, "decrypt", name, "--base64", "--out", "-", NULL), ==,
			0);
	/* suspended: nothing, until resumed */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "state", name, "1", "suspended", NULL), ==, 0);
	g_assert_cmpint(ctl(ct, NULL, NULL, "decrypt", name, "--base64", "--out", "-", NULL), ==,
			1);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "state", name, "1", "active", NULL), ==, 0);
	g_assert_cmpint(ctl(ct, NULL, NULL, "decrypt", name, "--base64", "--out", "-", NULL), ==,
			0);

	/* refused: the primary cannot leave active; the error says what to run instead */
	g_assert_cmpint(ctl(NULL, NULL, &err, "state", name, "2", "suspended", NULL), ==, 1);
	g_assert_true(g_str_has_prefix(err, "tkmsctl: Version 2 of key"));
	g_assert_nonnull(strstr(err, "is active"));
	g_assert_nonnull(strstr(err, primary_hint));
	g_assert_nonnull(strstr(err, rotate_hint));
	g_assert_null(strstr(err, "SetPrimaryVersion"));
	g_assert_cmpint(ctl(NULL, NULL, &json_err, "--json", "state", name, "2", "compromised",
			    NULL),
			==, 1);
	e = json_error(json_err, &err_root);
	g_assert_cmpstr(json_object_get_string_member(e, "name"), ==,
			"org.tkms.KeyManager.Error.KeyState");
	g_assert_cmpint(json_object_get_int_member(e, "exit-status"), ==, 1);

	/* usage errors: an unknown state, a version that is no number */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "state", name, "1", "destroyed", NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "state", name, "one", "active", NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "state", name, "0", "active", NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "state", name, "1", NULL), ==, 2);
}

static void
test_primary(void)
{
	g_autofree gchar *name = create_key("ctl-primary", "ecdsa-p256");
	g_autoptr(GBytes) out = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *text = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *resume_hint = g_strdup_printf("'tkmsctl state %s 2 active'", name);

	g_assert_cmpint(ctl(NULL, NULL, NULL, "rotate", name, NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, &out, NULL, "primary", name, "1", NULL), ==, 0);
	text = bytes_to_str(out);
	g_assert_nonnull(strstr(text, "Version 1 of key"));
	g_assert_cmpint(json_object_get_int_member(info_json(name, &root), "primary-version"), ==,
			1);
	/* a deactivated version cannot become the primary: resume it first */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "state", name, "2", "deactivated", NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, &err, "primary", name, "2", NULL), ==, 1);
	g_assert_nonnull(strstr(err, "deactivated"));
	g_assert_nonnull(strstr(err, resume_hint));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "primary", name, "x", NULL), ==, 2);
}

/* destroy schedules: the date printed is the one tkmsd keeps, with the way back */
static void
test_destroy_schedule(void)
{
	g_autofree gchar *name = create_key("ctl-schedule", "aes-256-gcm");
	g_autoptr(GBytes) data = tkms_test_bytes_str("x");
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autoptr(GBytes) cancel_json = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(JsonNode) root2 = NULL;
	g_autoptr(JsonNode) root3 = NULL;
	g_autoptr(JsonNode) root4 = NULL;
	g_autofree gchar *text = NULL;
	g_autofree gchar *line = NULL;
	g_autofree gchar *expected = NULL;
	g_autofree gchar *cancel_hint = g_strdup_printf("tkmsctl destroy %s --cancel", name);
	g_autofree gchar *state = NULL;
	g_autofree gchar *err = NULL;
	JsonObject *info, *obj;
	const gchar *destroy_at;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	/* not on a terminal: no question, as scripts expect */
	g_assert_cmpint(ctl(NULL, &out, NULL, "destroy", name, NULL), ==, 0);
	text = bytes_to_str(out);
	info = info_json(name, &root);
	destroy_at = json_object_get_string_member(json_version(info, 1), "destroy-at");
	g_assert_true(is_iso8601_utc(destroy_at));
	/* the default waiting period, 7 days */
	expected = g_strdup_printf("will be destroyed at %s (in 7d).", destroy_at);
	g_assert_nonnull(strstr(text, expected));
	g_assert_nonnull(strstr(text, cancel_hint));
	g_assert_cmpstr(json_object_get_string_member(json_version(info, 1), "state"), ==,
			"destroy-scheduled");
	/* list does not show it as live */
	line = list_line(name);
	g_assert_nonnull(strstr(line, " destroy-scheduled ("));
	g_assert_nonnull(strstr(line, destroy_at));
	g_assert_cmpint(ctl(data, NULL, NULL, "encrypt", name, NULL), ==, 1);
	/* again: nothing left to schedule */
	g_assert_cmpint(ctl(NULL, NULL, &err, "destroy", name, NULL), ==, 1);
	g_clear_pointer(&err, g_free);

	/* --cancel restores it */
	g_assert_cmpint(ctl(NULL, &cancel_json, NULL, "--json", "destroy", name, "--cancel", NULL),
			==, 0);
	obj = json_object_of(cancel_json, &root2);
	g_assert_cmpstr(json_object_get_string_member(obj, "state"), ==, "active");
	g_assert_true(json_object_get_null_member(obj, "version"));
	g_clear_pointer(&line, g_free);
	line = list_line(name);
	g_assert_nonnull(strstr(line, " active "));
	g_assert_cmpint(ctl(data, NULL, NULL, "encrypt", name, NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "destroy", name, "--cancel", NULL), ==, 1);

	/* --json: the date, the waiting period in seconds, the command to undo it */
	g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "destroy", name, NULL), ==, 0);
	obj = json_object_of(json, &root3);
	g_assert_cmpstr(json_object_get_string_member(obj, "state"), ==, "destroy-scheduled");
	g_assert_true(is_iso8601_utc(json_object_get_string_member(obj, "destroy-at")));
	g_assert_cmpint(json_object_get_int_member(obj, "waiting-period"), ==, 604800);
	g_assert_cmpstr(json_object_get_string_member(obj, "cancel"), ==, cancel_hint);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "destroy", name, "--cancel", NULL), ==, 0);

	/* --version N: one version, never the primary */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "rotate", name, NULL), ==, 0);
	g_assert_cmpint(ctl(NULL, NULL, &err, "destroy", name, "--version", "2", NULL), ==, 1);
	g_assert_nonnull(strstr(err, "primary"));
	g_assert_nonnull(strstr(err, "tkmsctl rotate"));
	g_clear_pointer(&out, g_bytes_unref);
	g_clear_pointer(&text, g_free);
	g_assert_cmpint(ctl(NULL, &out, NULL, "destroy", name, "--version", "1", NULL), ==, 0);
	text = bytes_to_str(out);
	g_assert_nonnull(strstr(text, "Version 1 of key"));
	g_assert_nonnull(strstr(text, "--version 1 --cancel"));
	state = version_state(name, 1);
	g_assert_cmpstr(state, ==, "destroy-scheduled");
	g_clear_pointer(&line, g_free);
	line = list_line(name);
	g_assert_nonnull(strstr(line, " active "));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "destroy", name, "--version", "1", "--cancel", NULL),
			==, 0);
	g_clear_pointer(&state, g_free);
	state = version_state(name, 1);
	g_assert_cmpstr(state, ==, "active");
	g_assert_cmpint(ctl(NULL, NULL, NULL, "destroy", name, "--version", "0", NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "destroy", name, "--version", "9", NULL), !=, 0);
	(void)root4;
	(void)now;
}

/* On a terminal destroy asks; no keeps the key, yes and --yes schedule. */
static void
test_destroy_confirm(void)
{
	g_autofree gchar *name = create_key("ctl-confirm", "hmac-sha256");
	g_autofree gchar *other = create_key("ctl-confirm-yes", "hmac-sha256");
	g_autoptr(GBytes) no = tkms_test_bytes_str("n\n");
	g_autoptr(GBytes) yes = tkms_test_bytes_str("y\n");
	g_autofree gchar *said_no = NULL;
	g_autofree gchar *said_yes = NULL;
	g_autofree gchar *forced = NULL;
	g_autofree gchar *state = NULL;
	gint status;

	status = ctl_on_tty_input(&said_no, no, (const gchar *const[]){"destroy", name, NULL});
	if (status < 0) {
		g_test_skip("no script(1) (util-linux): no terminal to test with");
		return;
	}
	g_test_message("answered no: %s", said_no);
	g_assert_cmpint(status, ==, 1);
	g_assert_nonnull(strstr(said_no, "[y/N]"));
	g_assert_nonnull(strstr(said_no, "nothing was destroyed"));
	state = version_state(name, 1);
	g_assert_cmpstr(state, ==, "active");

	g_assert_cmpint(ctl_on_tty_input(&said_yes, yes,
					 (const gchar *const[]){"destroy", name, NULL}),
			==, 0);
	g_assert_nonnull(strstr(said_yes, "[y/N]"));
	g_assert_nonnull(strstr(said_yes, "will be destroyed at"));
	g_clear_pointer(&state, g_free);
	state = version_state(name, 1);
	g_assert_cmpstr(state, ==, "destroy-scheduled");

	/* --yes: no question at all */
	g_assert_cmpint(ctl_on_tty(&forced, (const gchar *const[]){"destroy", other, "--yes", NULL}),
			==, 0);
	g_assert_null(strstr(forced, "[y/N]"));
	g_assert_nonnull(strstr(forced, "will be destroyed at"));
	g_clear_pointer(&state, g_free);
	state = version_state(other, 1);
	g_assert_cmpstr(state, ==, "destroy-scheduled");
}

/* ---- password keys: create, secret get|import, rotate ---- */

static gboolean
bytes_equal_str(GBytes *b, const gchar *s)
{
	gsize len = 0;
	const gchar *data = g_bytes_get_data(b, &len);

	return len == strlen(s) && memcmp(data, s, len) == 0;
}

/* `tkmsctl secret get NAME [--stage STAGE]` into a pipe, which must succeed */
static GBytes *
secret_get(const gchar *name, const gchar *stage)
{
	GBytes *out = NULL;

	if (stage != NULL)
		g_assert_cmpint(ctl(NULL, &out, NULL, "secret", "get", name, "--stage", stage, NULL),
				==, 0);
	else
		g_assert_cmpint(ctl(NULL, &out, NULL, "secret", "get", name, NULL), ==, 0);
	return out;
}

static void
test_password_create(void)
{
	g_autofree gchar *name = tkms_test_key_name("ctl-pw");
	g_autofree gchar *aes = tkms_test_key_name("ctl-pw-aes");
	g_autofree gchar *err = NULL;
	g_autofree gchar *info_text = NULL;
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) secret = NULL;
	g_autoptr(GBytes) text = NULL;
	g_autoptr(JsonNode) root = NULL;
	JsonObject *obj, *spec;
	const gchar *p;
	gsize len = 0;

	g_assert_cmpint(ctl(NULL, &out, NULL, "--json", "create", name, "password", "--length",
			    "40", "--charset", "alnum", "--exclude", "0O1lI", NULL),
			==, 0);
	obj = json_object_of(out, &root);
	g_assert_cmpstr(json_object_get_string_member(obj, "type"), ==, "password");
	g_assert_cmpstr(json_object_get_string_member(obj, "protection"), ==, "sealed");
	spec = json_object_get_object_member(obj, "password");
	g_assert_cmpint(json_object_get_int_member(spec, "length"), ==, 40);
	g_assert_cmpstr(json_object_get_string_member(spec, "charset"), ==, "alnum");
	g_assert_cmpstr(json_object_get_string_member(spec, "exclude"), ==, "0O1lI");
	g_assert_cmpstr(json_object_get_string_member(json_version(obj, 1), "stage"), ==,
			"current");

	/* exactly the password into a pipe: 40 characters of the set, no newline */
	secret = secret_get(name, NULL);
	p = g_bytes_get_data(secret, &len);
	g_assert_cmpuint(len, ==, 40);
	for (gsize i = 0; i < len; i++) {
		g_assert_true(g_ascii_isalnum(p[i]));
		g_assert_null(strchr("0O1lI", p[i]));
	}

	g_assert_cmpint(ctl(NULL, &text, NULL, "info", name, NULL), ==, 0);
	info_text = bytes_to_str(text);
	g_assert_nonnull(strstr(info_text, "password:        40 characters, alnum, without 0O1lI"));
	g_assert_nonnull(strstr(info_text, "hook:              none"));
	g_assert_true(g_regex_match_simple("^  1\\* +active +current +created ", info_text,
					   G_REGEX_MULTILINE, 0));

	/* the options are checked before anything is made */
	g_assert_cmpint(ctl(NULL, NULL, &err, "create", aes, "password", "--charset", "base32",
			    NULL),
			==, 2);
	g_assert_nonnull(strstr(err, "unknown character set 'base32'"));
	g_assert_nonnull(strstr(err, "alnum, alnum-symbols, hex, base64url"));
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(ctl(NULL, NULL, &err, "create", aes, "aes-256-gcm", "--length", "12",
			    NULL),
			==, 2);
	g_assert_nonnull(strstr(err, "for password keys"));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "create", aes, "password", "--length", "many", NULL),
			==, 2);
	/* the range is tkmsd's to judge */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "create", aes, "password", "--length", "7", NULL), ==,
			1);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "info", aes, NULL), ==, 6);
}

static void
test_password_import_get(void)
{
	g_autofree gchar *name = create_key("ctl-pw-import", "password");
	g_autoptr(GBytes) generated = secret_get(name, NULL);
	g_autoptr(GBytes) input = tkms_test_bytes_str("correct horse battery\n");
	g_autoptr(GBytes) bare = tkms_test_bytes_str("no newline at the end");
	g_autoptr(GBytes) two = tkms_test_bytes_str("two newlines\n\n");
	g_autoptr(GBytes) odd = tkms_test_bytes_str("q\"uo\\te\ttab");
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) current = NULL;
	g_autoptr(GBytes) previous = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autoptr(GBytes) text = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(JsonNode) info_root = NULL;
	g_autofree gchar *printed = NULL;
	g_autofree gchar *info_text = NULL;
	g_autofree gchar *err = NULL;
	JsonObject *obj, *info;

	g_assert_cmpuint(g_bytes_get_size(generated), ==, 32);
	g_assert_cmpint(ctl(input, &out, NULL, "secret", "import", name, NULL), ==, 0);
	printed = bytes_to_str(out);
	g_assert_cmpstr(printed, ==, "2\n");
	/* what came in, less the newline echo added; nothing added going out */
	current = secret_get(name, NULL);
	g_assert_true(bytes_equal_str(current, "correct horse battery"));
	previous = secret_get(name, "previous");
	g_assert_true(g_bytes_equal(previous, generated));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "secret", "get", name, "--stage", "pending", NULL),
			==, 6);
	g_assert_cmpint(ctl(NULL, NULL, &err, "secret", "get", name, "--stage", "latest", NULL),
			==, 2);
	g_assert_nonnull(strstr(err, "current, pending, previous"));

	info = info_json(name, &info_root);
	g_assert_cmpint(json_object_get_int_member(info, "primary-version"), ==, 2);
	g_assert_cmpstr(json_object_get_string_member(json_version(info, 1), "stage"), ==,
			"previous");
	g_assert_cmpstr(json_object_get_string_member(json_version(info, 2), "stage"), ==,
			"current");
	g_assert_cmpint(ctl(NULL, &text, NULL, "info", name, NULL), ==, 0);
	info_text = bytes_to_str(text);
	g_assert_true(g_regex_match_simple("^  1 +active +previous +created ", info_text,
					   G_REGEX_MULTILINE, 0));
	g_assert_true(g_regex_match_simple("^  2\\* +active +current +created ", info_text,
					   G_REGEX_MULTILINE, 0));

	/* only one trailing newline goes, and only one that is there */
	g_assert_cmpint(ctl(bare, NULL, NULL, "secret", "import", name, NULL), ==, 0);
	g_clear_pointer(&current, g_bytes_unref);
	current = secret_get(name, NULL);
	g_assert_true(g_bytes_equal(current, bare));
	g_assert_cmpint(ctl(two, NULL, NULL, "secret", "import", name, NULL), ==, 0);
	g_clear_pointer(&current, g_bytes_unref);
	current = secret_get(name, NULL);
	g_assert_true(bytes_equal_str(current, "two newlines\n"));

	/* JSON carries any text exactly */
	g_assert_cmpint(ctl(odd, &json, NULL, "--json", "secret", "import", name, NULL), ==, 0);
	obj = json_object_of(json, &root);
	g_assert_cmpstr(json_object_get_string_member(obj, "name"), ==, name);
	g_assert_cmpint(json_object_get_int_member(obj, "version"), ==, 5);
	g_clear_pointer(&json, g_bytes_unref);
	g_clear_pointer(&root, json_node_unref);
	g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "secret", "get", name, NULL), ==, 0);
	obj = json_object_of(json, &root);
	g_assert_cmpstr(json_object_get_string_member(obj, "secret"), ==, "q\"uo\\te\ttab");
	g_assert_cmpstr(json_object_get_string_member(obj, "stage"), ==, "current");
	g_assert_cmpstr(json_object_get_string_member(obj, "name"), ==, name);

	/* nothing on stdin imports nothing */
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(ctl(NULL, NULL, &err, "secret", "import", name, NULL), ==, 1);
	g_assert_nonnull(strstr(err, "empty"));
	g_clear_pointer(&info_root, json_node_unref);
	info = info_json(name, &info_root);
	g_assert_cmpint(json_object_get_int_member(info, "primary-version"), ==, 5);
}

static void
test_password_wrong_type(void)
{
	g_autofree gchar *aes = create_key("ctl-pw-not", "aes-256-gcm");
	g_autofree gchar *missing = tkms_test_key_name("ctl-pw-missing");
	g_autoptr(GBytes) input = tkms_test_bytes_str("a password");
	g_autoptr(GBytes) out = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *err = NULL;
	JsonObject *e;

	g_assert_cmpint(ctl(NULL, &out, &err, "--json", "secret", "get", aes, NULL), ==, 1);
	g_assert_cmpuint(g_bytes_get_size(out), ==, 0);
	e = json_error(err, &root);
	g_assert_cmpstr(json_object_get_string_member(e, "name"), ==,
			"org.tkms.KeyManager.Error.InvalidArgument");
	/* in tkmsctl's words */
	g_assert_nonnull(
		strstr(json_object_get_string_member(e, "message"), "'tkmsctl secret get'"));
	g_assert_null(strstr(json_object_get_string_member(e, "message"), "GetSecret"));
	g_assert_cmpint(ctl(input, NULL, NULL, "secret", "import", aes, NULL), ==, 1);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "secret", "get", missing, NULL), ==, 6);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "secret", "show", aes, NULL), ==, 2);
	g_assert_cmpint(ctl(NULL, NULL, NULL, "secret", "get", NULL), ==, 2);
	g_assert_cmpint(ctl(input, NULL, NULL, "secret", "import", aes, "--stage", "current", NULL),
			==, 2);
}

/* Without a hook a rotation switches at once: rotate says so in one line. */
static void
test_password_rotate(void)
{
	g_autofree gchar *name = create_key("ctl-pw-rotate", "password");
	g_autoptr(GBytes) before = secret_get(name, NULL);
	g_autoptr(GBytes) after = NULL;
	g_autoptr(GBytes) previous = NULL;
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) no_wait = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *printed = NULL;
	g_autofree gchar *number = NULL;
	JsonObject *obj;

	g_assert_cmpint(ctl(NULL, &out, NULL, "rotate", name, NULL), ==, 0);
	printed = bytes_to_str(out);
	g_assert_cmpstr(printed, ==, "rotated to version 2\n");
	after = secret_get(name, NULL);
	g_assert_cmpuint(g_bytes_get_size(after), ==, 32);
	g_assert_false(g_bytes_equal(after, before));
	previous = secret_get(name, "previous");
	g_assert_true(g_bytes_equal(previous, before));

	/* --no-wait: the pending version's number alone */
	g_assert_cmpint(ctl(NULL, &no_wait, NULL, "rotate", name, "--no-wait", NULL), ==, 0);
	number = bytes_to_str(no_wait);
	g_assert_cmpstr(number, ==, "3\n");
	g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "rotate", name, NULL), ==, 0);
	obj = json_object_of(json, &root);
	g_assert_cmpint(json_object_get_int_member(obj, "version"), ==, 4);
	g_assert_cmpstr(json_object_get_string_member(obj, "result"), ==, "ok");
}

/* With the policy's hook, rotate shows each step, and a failed one with the hook's reason. */
static void
test_password_hooks(void)
{
	g_autofree gchar *name = NULL;
	g_autoptr(GBytes) before = NULL;
	g_autoptr(GBytes) after = NULL;
	g_autoptr(GBytes) previous = NULL;
	g_autoptr(GBytes) still = NULL;
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) failed_out = NULL;
	g_autoptr(GBytes) json = NULL;
	g_autoptr(GBytes) text = NULL;
	g_autoptr(GBytes) shown = NULL;
	g_autoptr(GBytes) cleared = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autoptr(JsonNode) info_root = NULL;
	g_autofree gchar *err = NULL;
	g_autofree gchar *failed_err = NULL;
	g_autofree gchar *printed = NULL;
	g_autofree gchar *info_text = NULL;
	g_autofree gchar *show_text = NULL;
	g_autofree gchar *cleared_text = NULL;
	JsonObject *obj, *last;

	if (hooks_dir == NULL) {
		g_test_skip("hooks run as " HOOK_USER ": this needs root and that user");
		return;
	}
	name = create_key("ctl-pw-hook", "password");
	before = secret_get(name, NULL);

	/* tkmsd looks for the hook when it is set, and says what is wrong */
	g_assert_cmpint(ctl(NULL, NULL, &err, "policy", "set", name, "--hook", "ctl-no-such-hook",
			    NULL),
			==, 1);
	g_assert_nonnull(strstr(err, "\"ctl-no-such-hook\""));
	g_assert_cmpint(ctl(NULL, &json, NULL, "--json", "policy", "set", name, "--hook", "ctl-ok",
			    NULL),
			==, 0);
	obj = json_object_of(json, &root);
	g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(obj, "policy"),
						      "hook"),
			==, "ctl-ok");
	/* another member set keeps the hook */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "policy", "set", name, "--period", "30d", NULL), ==,
			0);
	g_assert_cmpint(ctl(NULL, &shown, NULL, "policy", "show", name, NULL), ==, 0);
	show_text = bytes_to_str(shown);
	g_assert_nonnull(strstr(show_text, "period:            30d (2592000 s)"));
	g_assert_nonnull(strstr(show_text, "hook:              ctl-ok"));

	/* each step on a line of its own, in order, then the outcome */
	g_assert_cmpint(ctl(NULL, &out, NULL, "rotate", name, NULL), ==, 0);
	printed = bytes_to_str(out);
	g_assert_cmpstr(printed, ==, "set…\ntest…\nfinish…\nrotated to version 2\n");
	after = secret_get(name, NULL);
	g_assert_false(g_bytes_equal(after, before));
	previous = secret_get(name, "previous");
	g_assert_true(g_bytes_equal(previous, before));

	/* a test that fails: rolled back, the current password kept, the reason shown */
	g_assert_cmpint(ctl(NULL, NULL, NULL, "policy", "set", name, "--hook", "ctl-fail-test",
			    NULL),
			==, 0);
	g_assert_cmpint(ctl(NULL, &failed_out, &failed_err, "rotate", name, NULL), ==, 1);
	g_clear_pointer(&printed, g_free);
	printed = bytes_to_str(failed_out);
	g_assert_cmpstr(printed, ==, "set…\ntest…\nrollback…\n");
	g_assert_nonnull(strstr(failed_err, "the rotation of key '"));
	g_assert_nonnull(strstr(failed_err, "to version 3 failed at step test: "));
	g_assert_nonnull(strstr(failed_err, "cannot log in as app"));
	g_assert_nonnull(strstr(failed_err, "The current password stays in use; tkmsd tries again at "));
	still = secret_get(name, NULL);
	g_assert_true(g_bytes_equal(still, after));
	g_assert_cmpint(ctl(NULL, NULL, NULL, "secret", "get", name, "--stage", "pending", NULL),
			==, 6);

	g_assert_cmpint(ctl(NULL, &text, NULL, "info", name, NULL), ==, 0);
	info_text = bytes_to_str(text);
	g_assert_nonnull(strstr(info_text, "last rotation:   failed at step test, version 3, "));
	g_assert_true(g_regex_match_simple("^  reason: +\\S.*cannot log in as app$", info_text,
					   G_REGEX_MULTILINE, 0));
	g_assert_nonnull(strstr(info_text, "  next retry:    "));
	g_assert_null(strstr(info_text, "rotation:        at step"));
	obj = info_json(name, &info_root);
	last = json_object_get_object_member(obj, "last-rotation");
	g_assert_cmpstr(json_object_get_string_member(last, "result"), ==, "failed");
	g_assert_cmpstr(json_object_get_string_member(last, "step"), ==, "test");
	g_assert_cmpint(json_object_get_int_member(last, "version"), ==, 3);
	g_assert_true(is_iso8601_utc(json_object_get_string_member(last, "time")));
	g_assert_true(is_iso8601_utc(json_object_get_string_member(last, "next-retry")));

	/* '' removes the hook, and only the hook */
	g_assert_cmpint(ctl(NULL, &cleared, NULL, "policy", "set", name, "--hook", "", NULL), ==, 0);
	cleared_text = bytes_to_str(cleared);
	g_assert_nonnull(strstr(cleared_text, "hook:              none"));
	g_assert_nonnull(strstr(cleared_text, "period:            30d (2592000 s)"));
}

/* Runs tkmsctl --address BUS --no-ask-password ARGS... on a pseudo-terminal of its own (its
 * controlling terminal, standard input, output and error) and holds a dialog with it: each
 * time the next prompt of @dialog (prompt, answer, ... NULL) has shown, types its answer and
 * Enter. Returns the exit status; *out_text: all the terminal showed. */
static gint
ctl_pty_dialog(gchar **out_text, const gchar *const *dialog, const gchar *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GString) seen = g_string_new(NULL);
	gsize answered_to = 0;
	guint next = 0;
	int master = -1, status = 0;
	pid_t pid;

	g_ptr_array_add(argv, (gpointer)g_getenv("TKMSCTL"));
	g_ptr_array_add(argv, (gpointer) "--address");
	g_ptr_array_add(argv, (gpointer)tkms_test_env_get_bus_address(env));
	g_ptr_array_add(argv, (gpointer) "--no-ask-password");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);

	pid = forkpty(&master, NULL, NULL, NULL);
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0) {
		execv(g_ptr_array_index(argv, 0), (char **)argv->pdata);
		_exit(127);
	}
	for (;;) {
		struct pollfd pfd = {.fd = master, .events = POLLIN};
		gchar buf[4096];
		ssize_t n;
		int ready = poll(&pfd, 1, 30000);

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready == 0)
			kill(pid, SIGKILL);
		g_assert_cmpint(ready, >, 0);
		n = read(master, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		/* EIO once the last process of the terminal closed it */
		if (n <= 0)
			break;
		g_string_append_len(seen, buf, n);
		while (dialog[next] != NULL) {
			const gchar *at = strstr(seen->str + answered_to, dialog[next]);
			g_autofree gchar *line = NULL;

			if (at == NULL)
				break;
			answered_to = (gsize)(at - seen->str) + strlen(dialog[next]);
			line = g_strconcat(dialog[next + 1], "\n", NULL);
			g_assert_cmpint(write(master, line, strlen(line)), ==, (gssize)strlen(line));
			next += 2;
		}
	}
	g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
	close(master);
	if (out_text != NULL)
		*out_text = g_strdup(seen->str);
	g_assert_cmpuint(next, ==, g_strv_length((gchar **)dialog));
	g_assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* On a terminal the secret is asked for twice and never shown; the two must match. */
static void
test_tty_secret_import(void)
{
	g_autofree gchar *name = create_key("ctl-pw-tty", "password");
	g_autofree gchar *shown = NULL;
	g_autofree gchar *refused = NULL;
	g_autofree gchar *on_tty = NULL;
	g_autoptr(GBytes) current = NULL;
	g_autoptr(GBytes) after = NULL;
	gint status;

	g_assert_cmpint(ctl_pty_dialog(&shown,
				       (const gchar *const[]){"Secret for key", "typed on a tty",
							      "The same again: ", "typed on a tty",
							      NULL},
				       (const gchar *const[]){"secret", "import", name, NULL}),
			==, 0);
	g_assert_null(strstr(shown, "typed on a tty"));
	g_assert_true(g_regex_match_simple("^2\\r$", shown, G_REGEX_MULTILINE, 0));
	current = secret_get(name, NULL);
	g_assert_true(bytes_equal_str(current, "typed on a tty"));

	g_assert_cmpint(ctl_pty_dialog(&refused,
				       (const gchar *const[]){"Secret for key", "one thing",
							      "The same again: ", "another", NULL},
				       (const gchar *const[]){"secret", "import", name, NULL}),
			==, 1);
	g_assert_nonnull(strstr(refused, "the two entries differ: nothing was imported"));
	after = secret_get(name, NULL);
	g_assert_true(g_bytes_equal(after, current));

	/* a person's terminal gets the password on a line of its own */
	status = ctl_on_tty(&on_tty, (const gchar *const[]){"--no-ask-password", "secret", "get",
							     name, NULL});
	if (status < 0) {
		g_test_skip("no script(1) (util-linux): no terminal to test with");
		return;
	}
	g_assert_cmpint(status, ==, 0);
	g_assert_cmpstr(on_tty, ==, "typed on a tty\r\n");
}

static void
write_hook(const gchar *name, const gchar *text)
{
	g_autofree gchar *path = g_build_filename(hooks_dir, name, NULL);

	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	g_assert_cmpint(g_chmod(path, 0755), ==, 0);
}

/* tkmsd runs hooks only from a directory root owns and nobody else may write, as nobody */
static void
set_up_hooks(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *base = NULL;

	if (geteuid() != 0 || getpwnam(HOOK_USER) == NULL)
		return;
	base = g_dir_make_tmp("tkmsctl-hooks-XXXXXX", &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(base, 0755), ==, 0);
	hooks_dir = g_build_filename(base, "hooks.d", NULL);
	g_assert_cmpint(g_mkdir(hooks_dir, 0755), ==, 0);
	write_hook("ctl-ok", hook_ok);
	write_hook("ctl-fail-test", hook_fail_test);
}

static void
test_no_tkmsctl(void)
{
	g_test_fail_printf("TKMSCTL is not set: tkmsctl was not built");
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	if (g_getenv("TKMSCTL") == NULL) {
		g_test_add_func("/tkmsctl/no-tkmsctl", test_no_tkmsctl);
		return g_test_run();
	}
	set_up_hooks();
	if (hooks_dir != NULL) {
		g_autofree gchar *config = g_strdup_printf("[passwords]\n"
							   "HookDirectory=%s\n"
							   "HookUser=" HOOK_USER "\n"
							   "HookTimeout=30\n",
							   hooks_dir);

		env = tkms_test_env_new_or_abort(config);
	} else {
		env = tkms_test_env_new_or_abort(NULL);
	}
	workdir = g_build_filename(tkms_test_env_get_tmp_dir(env), "tkmsctl", NULL);
	g_assert_cmpint(g_mkdir_with_parents(workdir, 0700), ==, 0);

	g_test_add_func("/tkmsctl/usage", test_usage);
	/* before any key exists */
	g_test_add_func("/tkmsctl/empty-list", test_list_empty);
	g_test_add_func("/tkmsctl/no-bus", test_no_bus);
	g_test_add_func("/tkmsctl/usage/nearest-command", test_nearest_command);
	g_test_add_func("/tkmsctl/usage/bad-type", test_bad_type);
	g_test_add_func("/tkmsctl/json-errors", test_json_errors);
	g_test_add_func("/tkmsctl/cli-words", test_cli_words);
	g_test_add_func("/tkmsctl/tkms-address", test_tkms_address);
	g_test_add_func("/tkmsctl/i18n/german", test_german);
	g_test_add_func("/tkmsctl/create-list-info", test_create_list_info);
	g_test_add_func("/tkmsctl/encrypt/files", test_encrypt_files);
	g_test_add_func("/tkmsctl/encrypt/stdin", test_encrypt_stdin);
	g_test_add_func("/tkmsctl/batch/encrypt", test_batch_encrypt);
	g_test_add_func("/tkmsctl/batch/sign-hmac", test_batch_sign_hmac);
	g_test_add_func("/tkmsctl/sign/openssl", test_sign_openssl);
	g_test_add_func("/tkmsctl/sign/large", test_sign_large);
	g_test_add_func("/tkmsctl/encrypt/small-format", test_encrypt_small_format);
	g_test_add_func("/tkmsctl/encrypt/stream", test_encrypt_stream);
	g_test_add_func("/tkmsctl/encrypt/stream-tamper", test_encrypt_stream_tamper);
	g_test_add_func("/tkmsctl/encrypt/stream-forged-key", test_encrypt_stream_forged_key);
	g_test_add_func("/tkmsctl/encrypt/stream-memory", test_encrypt_stream_memory);
	g_test_add_func("/tkmsctl/datakey", test_datakey);
	g_test_add_func("/tkmsctl/reencrypt", test_reencrypt);
	g_test_add_func("/tkmsctl/out/existing-file", test_out_existing_file);
	g_test_add_func("/tkmsctl/hmac-derive", test_hmac_derive);
	g_test_add_func("/tkmsctl/seal-random", test_seal_random);
	g_test_add_func("/tkmsctl/status", test_status);
	g_test_add_func("/tkmsctl/destroy", test_destroy);
	g_test_add_func("/tkmsctl/lifecycle/rotate", test_rotate);
	g_test_add_func("/tkmsctl/lifecycle/policy", test_policy);
	g_test_add_func("/tkmsctl/lifecycle/state", test_state);
	g_test_add_func("/tkmsctl/lifecycle/primary", test_primary);
	g_test_add_func("/tkmsctl/lifecycle/destroy-schedule", test_destroy_schedule);
	g_test_add_func("/tkmsctl/tty/destroy-confirm", test_destroy_confirm);
	g_test_add_func("/tkmsctl/permission-denied", test_permission_denied);
	g_test_add_func("/tkmsctl/interactive/options", test_interactive_options);
	g_test_add_func("/tkmsctl/interactive/libtkms", test_client_interactive);
	g_test_add_func("/tkmsctl/list-all", test_list_all);
	g_test_add_func("/tkmsctl/owner-name", test_owner_name);
	g_test_add_func("/tkmsctl/iso-times", test_iso_times);
	g_test_add_func("/tkmsctl/list/pages", test_list_pages);
	g_test_add_func("/tkmsctl/decrypt/base64-hint", test_base64_hint);
	g_test_add_func("/tkmsctl/tty/raw-bytes", test_raw_to_tty);
	g_test_add_func("/tkmsctl/tty/agent", test_agent);
	g_test_add_func("/tkmsctl/tty/agent-killed", test_agent_killed);
	g_test_add_func("/tkmsctl/info/control-chars", test_info_control_chars);
	g_test_add_func("/tkmsctl/password/create", test_password_create);
	g_test_add_func("/tkmsctl/password/import-get", test_password_import_get);
	g_test_add_func("/tkmsctl/password/wrong-type", test_password_wrong_type);
	g_test_add_func("/tkmsctl/password/rotate", test_password_rotate);
	g_test_add_func("/tkmsctl/password/hooks", test_password_hooks);
	g_test_add_func("/tkmsctl/tty/secret-import", test_tty_secret_import);
	/* stops the daemon for a quiet log, then starts it again */
	g_test_add_func("/tkmsctl/audit-verify", test_audit_verify);

	ret = g_test_run();
	g_free(workdir);
	tkms_test_env_free(env);
	if (hooks_dir != NULL) {
		g_autofree gchar *base = g_path_get_dirname(hooks_dir);

		tkms_test_rm_rf(base);
	}
	g_free(hooks_dir);
	return ret;
}
