/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "torture-secrets"

/*
 * No secret in any log, audit record, state file or error message, and tkmsd is not dumpable
 * (issue 9).
 *
 * The test has tkmsd (run with --verbose, the most it logs) handle secrets of every kind:
 * generated and imported passwords, plaintexts going into Encrypt and coming out of Decrypt,
 * data keys from GenerateDataKey, data going into Seal and coming out of Unseal, derived keys,
 * random bytes; through successful calls and through calls that fail with those secrets among
 * their arguments (a wrong key type, a wrong context, a bad password, another user's blob,
 * payloads over the limits). Then, with tkmsd stopped (its last words written), every secret
 * is searched for, raw and as lower- and upper-case hex and base64, in tkmsd's log, the audit
 * log, every file of the state directory, the other logs of the test stack, and the message
 * of every error the calls returned. The TPM's own state (swtpm's files) is not tkmsd's and
 * is not searched.
 *
 * Dumpability is a property the kernel keeps for itself, so the test proves it by its effect:
 * tkmsd runs as root without CAP_SYS_PTRACE (setpriv --bounding-set -sys_ptrace), and a probe
 * with exactly the same credentials opens /proc/PID/mem: the kernel allows that for a dumpable
 * process of the same uid whose capabilities the probe has, and refuses it for a non-dumpable
 * one. The control is a dumpable process started the same way, whose memory the probe does
 * open. tkmsd's core file size limit is 0 too.
 */

#include <stdlib.h>
#include <string.h>

#include "tkms-torture.h"

static TkmsTestEnv *env;
#define CONN (tkms_test_env_get_connection(env))

/* a key name, which the audit log does record */
#define CANARY "canary-name-0123456789"

#define NO_PTRACE "setpriv", "--bounding-set", "-sys_ptrace", "--"

/* Every secret the calls handled, and every error message they got. */
static GPtrArray *secrets;
static GPtrArray *messages;

static void
remember(GBytes *secret)
{
	g_assert_cmpuint(g_bytes_get_size(secret), >=, 12);
	g_ptr_array_add(secrets, g_bytes_ref(secret));
}

static GVariant *
call(const gchar *method, GVariant *args, const gchar *reply_type, GError **error)
{
	GVariant *r = tkms_torture_call_sync(CONN, method, args, reply_type, 60000, error);

	if (error != NULL && *error != NULL)
		g_ptr_array_add(messages, g_strdup((*error)->message));
	return r;
}

static GBytes *
call_bytes(const gchar *method, GVariant *args, guint index)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call(method, args, NULL, &error);
	g_autoptr(GVariant) v = NULL;

	g_assert_no_error(error);
	v = g_variant_get_child_value(r, index);
	return tkms_torture_bytes(v);
}

/* A call that must fail with the error named (short name). */
static void
call_fails(const gchar *method, GVariant *args, const gchar *expected)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call(method, args, NULL, &error);
	g_autofree gchar *outcome = tkms_torture_outcome(error);

	g_test_message("%s -> %s: %s", method, outcome, error ? error->message : "");
	g_assert_cmpstr(outcome, ==, expected);
}

static GBytes *
random_secret(GRand *rand, gsize len)
{
	/* printable, so that it is also a valid password */
	gchar *buf = g_malloc(len);

	for (gsize i = 0; i < len; i++)
		buf[i] = (gchar)g_rand_int_range(rand, 0x21, 0x7f);
	return g_bytes_new_take(buf, len);
}

static void
create(const gchar *name, const gchar *type)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call(
		"CreateKey", g_variant_new("(ss@a{sv})", name, type, g_variant_new("a{sv}", NULL)),
		"(a{sv})", &error);
	g_assert_no_error(error);
}

static void
handle_secrets(void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(tkms_torture_seed());

	create("s-aes", "aes-256-gcm");
	create("s-hmac", "hmac-sha256");
	create("s-pw", "password");
	create("s-pw-hex", "password");
	/* not a secret: the search must find its name in the audit log (the search works) */
	create(CANARY, "hmac-sha256");

	/* generated and imported passwords, every stage */
	for (guint i = 0; i < 3; i++) {
		g_autoptr(GBytes) generated =
			call_bytes("GetSecret", g_variant_new("(ss)", "s-pw", "current"), 0);
		g_autoptr(GBytes) imported = random_secret(rand, 24 + i);
		g_autoptr(GVariant) r = NULL;
		g_autoptr(GError) error = NULL;
		remember(generated);
		remember(imported);
		r = call("ImportSecret",
			 g_variant_new("(s@ay)", "s-pw", tkms_torture_ay_bytes(imported)), "(u)",
			 &error);
		g_assert_no_error(error);
		{
			g_autoptr(GBytes) cur =
				call_bytes("GetSecret", g_variant_new("(ss)", "s-pw", ""), 0);
			g_autoptr(GBytes) prev = call_bytes(
				"GetSecret", g_variant_new("(ss)", "s-pw", "previous"), 0);
			tkms_assert_bytes_equal(cur, imported);
		}
	}
	{
		g_autoptr(GBytes) generated =
			call_bytes("GetSecret", g_variant_new("(ss)", "s-pw-hex", "current"), 0);
		remember(generated);
	}
	/* passwords in failing calls: another key type, a NUL, invalid UTF-8, too long */
	{
		g_autoptr(GBytes) s1 = random_secret(rand, 20);
		g_autoptr(GBytes) s2 = random_secret(rand, 20);
		g_autoptr(GBytes) s3 = random_secret(rand, 20);
		g_autoptr(GBytes) s4 = random_secret(rand, 5000);
		g_autofree guint8 *nul = g_memdup2(g_bytes_get_data(s2, NULL), 20);
		g_autofree guint8 *utf = g_memdup2(g_bytes_get_data(s3, NULL), 20);
		g_autoptr(GBytes) with_nul = NULL;
		g_autoptr(GBytes) bad_utf8 = NULL;
		nul[10] = 0;
		utf[10] = 0xff;
		with_nul = g_bytes_new(nul, 20);
		bad_utf8 = g_bytes_new(utf, 20);
		remember(s1);
		remember(with_nul);
		remember(bad_utf8);
		remember(s4);
		call_fails("ImportSecret",
			   g_variant_new("(s@ay)", "s-aes", tkms_torture_ay_bytes(s1)),
			   "InvalidArgument");
		call_fails("ImportSecret",
			   g_variant_new("(s@ay)", "s-pw", tkms_torture_ay_bytes(with_nul)),
			   "InvalidArgument");
		call_fails("ImportSecret",
			   g_variant_new("(s@ay)", "s-pw", tkms_torture_ay_bytes(bad_utf8)),
			   "InvalidArgument");
		{
			g_autoptr(GError) error = NULL;
			g_autoptr(GVariant) r =
				call("ImportSecret",
				     g_variant_new("(s@ay)", "s-pw", tkms_torture_ay_bytes(s4)),
				     NULL, &error);
			g_autofree gchar *outcome = tkms_torture_outcome(error);
			g_assert_nonnull(error);
			g_test_message("ImportSecret of 5000 bytes -> %s", outcome);
		}
		call_fails("ImportSecret",
			   g_variant_new("(s@ay)", "no-such-key", tkms_torture_ay_bytes(s1)),
			   "NotFound");
	}

	/* plaintexts in and out, data keys, wrong contexts and keys */
	for (guint i = 0; i < 3; i++) {
		g_autoptr(GBytes) pt = random_secret(rand, 40 + i * 1000);
		g_autoptr(GBytes) ct =
			call_bytes("Encrypt",
				   g_variant_new("(s@ay@ay)", "s-aes", tkms_torture_ay_bytes(pt),
						 tkms_torture_ay_str("c")),
				   0);
		g_autoptr(GBytes) back =
			call_bytes("Decrypt",
				   g_variant_new("(s@ay@ay)", "s-aes", tkms_torture_ay_bytes(ct),
						 tkms_torture_ay_str("c")),
				   0);
		g_autoptr(GBytes) dk = call_bytes(
			"GenerateDataKey",
			g_variant_new("(su@ay)", "s-aes", 32, tkms_torture_ay_str("c")), 0);
		remember(pt);
		remember(dk);
		tkms_assert_bytes_equal(back, pt);
		call_fails("Decrypt",
			   g_variant_new("(s@ay@ay)", "s-aes", tkms_torture_ay_bytes(ct),
					 tkms_torture_ay_str("C")),
			   "IntegrityFailure");
		call_fails("Encrypt",
			   g_variant_new("(s@ay@ay)", "s-hmac", tkms_torture_ay_bytes(pt),
					 tkms_torture_ay_str("c")),
			   "InvalidArgument");
		call_fails("Encrypt",
			   g_variant_new("(s@ay@ay)", "no-such-key", tkms_torture_ay_bytes(pt),
					 tkms_torture_ay_str("c")),
			   "NotFound");
	}
	{
		/* a plaintext over MaxPayload */
		g_autoptr(GBytes) big = random_secret(rand, 1024 * 1024 + 1);
		remember(big);
		call_fails("Encrypt",
			   g_variant_new("(s@ay@ay)", "s-aes", tkms_torture_ay_bytes(big),
					 tkms_torture_ay_str("c")),
			   "LimitExceeded");
		call_fails("Seal",
			   g_variant_new("(@ay@a{sv})", tkms_torture_ay_bytes(big),
					 g_variant_new("a{sv}", NULL)),
			   "LimitExceeded");
	}

	/* sealed and unsealed data, also refused to another user */
	for (guint i = 0; i < 3; i++) {
		g_autoptr(GBytes) data = random_secret(rand, 33 + i);
		g_autoptr(GBytes) blob =
			call_bytes("Seal",
				   g_variant_new("(@ay@a{sv})", tkms_torture_ay_bytes(data),
						 g_variant_new("a{sv}", NULL)),
				   0);
		g_autoptr(GBytes) back = call_bytes(
			"Unseal", g_variant_new("(@ay)", tkms_torture_ay_bytes(blob)), 0);
		remember(data);
		tkms_assert_bytes_equal(back, data);
		if (i == 0) {
			g_autofree gchar *path =
				tkms_test_write_file(tkms_test_env_get_tmp_dir(env), "blob", blob);
			const gchar *argv[] = {tkms_test_helper_path(), "unseal", path, NULL};
			g_autofree gchar *out = NULL;
			g_autoptr(GError) error = NULL;
			gint status = -1;
			g_assert_true(
				tkms_test_env_run_as_user(env, argv, &out, NULL, &status, &error));
			g_assert_no_error(error);
			g_test_message("Unseal as another user: %s", out);
			g_assert_true(g_str_has_prefix(out, "ERROR PermissionDenied"));
			g_ptr_array_add(messages, g_steal_pointer(&out));
		}
		{
			g_autoptr(GBytes) bad =
				tkms_test_bytes_flip_bit(blob, (g_bytes_get_size(blob) - 20) * 8);
			g_autoptr(GError) error = NULL;
			g_autoptr(GVariant) r =
				call("Unseal", g_variant_new("(@ay)", tkms_torture_ay_bytes(bad)),
				     NULL, &error);
			g_assert_nonnull(error);
		}
	}

	/* derived keys and random bytes */
	for (guint i = 0; i < 3; i++) {
		g_autoptr(GBytes) derived = call_bytes(
			"DeriveKey",
			g_variant_new("(s@ayu)", "s-hmac", tkms_torture_ay_str("purpose"), 32 + i),
			0);
		g_autoptr(GBytes) random =
			call_bytes("GetRandom", g_variant_new("(u)", 16 + i * 100), 0);
		remember(derived);
		remember(random);
	}
	g_test_message("%u secrets handled, %u error messages", secrets->len, messages->len);
}

/* Adds the forms a piece of a secret could be written in: its raw bytes (16) and its hex,
 * upper-case hex and base64 forms (of 12 bytes: base64 of 12 bytes does not depend on what
 * follows), so that a partial copy is found too. */
static void
add_encodings(GPtrArray *needles, const guint8 *data, gsize len)
{
	g_autoptr(GBytes) piece = g_bytes_new(data, MIN(len, 16));
	g_autofree gchar *hex = tkms_test_bytes_to_hex(piece);
	g_autofree gchar *upper = g_ascii_strup(hex, -1);
	g_autofree gchar *b64 = g_base64_encode(data, MIN(len, 12));
	g_autofree gchar *b64url = g_strdup(b64);

	for (gchar *p = b64url; *p != '\0'; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	g_ptr_array_add(needles, g_bytes_ref(piece));
	g_ptr_array_add(needles, g_bytes_new(hex, strlen(hex)));
	g_ptr_array_add(needles, g_bytes_new(upper, strlen(upper)));
	g_ptr_array_add(needles, g_bytes_new(b64, strlen(b64)));
	g_ptr_array_add(needles, g_bytes_new(b64url, strlen(b64url)));
}

/* What to search for: the encodings of each secret's head, middle and tail. */
static GPtrArray *
make_needles(void)
{
	GPtrArray *needles = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);

	for (guint i = 0; i < secrets->len; i++) {
		gsize len;
		const guint8 *data = g_bytes_get_data(g_ptr_array_index(secrets, i), &len);
		add_encodings(needles, data, len);
		if (len >= 32) {
			add_encodings(needles, data + len / 2 - 8, 16);
			add_encodings(needles, data + len - 16, 16);
		}
	}
	return needles;
}

static guint
search(GPtrArray *needles, GBytes *haystack, const gchar *where)
{
	guint found = 0;

	for (guint i = 0; i < needles->len; i++) {
		GBytes *needle = g_ptr_array_index(needles, i);
		if (tkms_test_bytes_contain(haystack, g_bytes_get_data(needle, NULL),
					    g_bytes_get_size(needle))) {
			g_autofree gchar *hex = tkms_test_bytes_to_hex(needle);
			g_test_message("%s found in %s", hex, where);
			found++;
		}
	}
	return found;
}

/* Files to search: everything under dir except the TPM's own state (tpm/) and the staged
 * programs. */
static void
collect_files(const gchar *dir, GPtrArray *files)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *name;

	if (d == NULL)
		return;
	while ((name = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *path = g_build_filename(dir, name, NULL);
		if (g_str_equal(name, "tpm") || g_str_equal(name, "stage"))
			continue;
		if (g_file_test(path, G_FILE_TEST_IS_SYMLINK))
			continue;
		if (g_file_test(path, G_FILE_TEST_IS_DIR))
			collect_files(path, files);
		else if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
			g_ptr_array_add(files, g_steal_pointer(&path));
	}
}

static void
test_no_secret_anywhere(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) needles = NULL;
	guint found = 0;
	gsize searched = 0;

	handle_secrets();
	/* its last words written: the audit log closed, the log complete */
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);

	collect_files(tkms_test_env_get_tmp_dir(env), files);
	/* the audit log and tkmsd's log must be among them */
	{
		gboolean audit = FALSE, log = FALSE;
		for (guint i = 0; i < files->len; i++) {
			const gchar *f = g_ptr_array_index(files, i);
			audit |= strstr(f, "/state/audit") != NULL;
			log |= g_str_has_suffix(f, "/tkmsd.log");
		}
		g_assert_true(audit);
		g_assert_true(log);
	}
	needles = make_needles();
	for (guint i = 0; i < files->len; i++) {
		const gchar *path = g_ptr_array_index(files, i);
		g_autofree gchar *contents = NULL;
		gsize len = 0;
		g_autoptr(GBytes) haystack = NULL;

		if (!g_file_get_contents(path, &contents, &len, NULL))
			continue;
		haystack = g_bytes_new_take(g_steal_pointer(&contents), len);
		searched += len;
		found += search(needles, haystack, path);
	}
	for (guint m = 0; m < messages->len; m++) {
		const gchar *msg = g_ptr_array_index(messages, m);
		g_autoptr(GBytes) haystack = g_bytes_new_static(msg, strlen(msg));
		g_autofree gchar *where = g_strdup_printf("the error message \"%s\"", msg);
		found += search(needles, haystack, where);
	}
	/* the same search finds what is there */
	{
		g_autoptr(GPtrArray) canary =
			g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
		guint hits = 0;
		add_encodings(canary, (const guint8 *)CANARY, strlen(CANARY));
		for (guint i = 0; i < files->len; i++) {
			const gchar *path = g_ptr_array_index(files, i);
			g_autofree gchar *contents = NULL;
			gsize len = 0;
			if (strstr(path, "/state/audit") != NULL &&
			    g_file_get_contents(path, &contents, &len, NULL)) {
				g_autoptr(GBytes) haystack =
					g_bytes_new_take(g_steal_pointer(&contents), len);
				hits += search(canary, haystack, path);
			}
		}
		g_assert_cmpuint(hits, >, 0);
	}
	g_test_message("%u secrets (%u forms) searched for in %u files (%zu bytes) and %u error "
		       "messages",
		       secrets->len, needles->len, files->len, searched, messages->len);
	g_assert_cmpuint(found, ==, 0);

	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
}

/* Whether a probe with the credentials of tkmsd's run (root without CAP_SYS_PTRACE) can open
 * /proc/PID/mem. */
static gboolean
probe_can_open_mem(gint pid)
{
	g_autofree gchar *script = g_strdup_printf("exec 3</proc/%d/mem", pid);
	const gchar *argv[] = {NO_PTRACE, "/bin/sh", "-c", script, NULL};
	g_autofree gchar *err = NULL;
	g_autoptr(GError) error = NULL;
	gint status = -1;

	g_assert_true(tkms_test_env_run(env, argv, NULL, &err, &status, &error));
	g_assert_no_error(error);
	g_test_message("probe of /proc/%d/mem: status %d %s", pid, status, err);
	return status == 0;
}

static void
test_not_dumpable(void)
{
	const gchar *control_argv[] = {NO_PTRACE, "sleep", "60", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) control = NULL;
	gint pid = tkms_test_env_get_daemon_pid(env);
	g_autofree gchar *limits_path = g_strdup_printf("/proc/%d/limits", pid);
	g_autofree gchar *limits = NULL;
	g_autofree gchar *status_path = g_strdup_printf("/proc/%d/status", pid);
	g_autofree gchar *status = NULL;

	g_assert_cmpint(pid, >, 0);
	/* tkmsd runs without CAP_SYS_PTRACE (19) in its permitted set, as the probe */
	g_assert_true(g_file_get_contents(status_path, &status, NULL, NULL));
	{
		const gchar *prm = strstr(status, "CapPrm:");
		g_assert_nonnull(prm);
		g_assert_cmpuint(g_ascii_strtoull(prm + strlen("CapPrm:"), NULL, 16) & (1u << 19),
				 ==, 0);
	}

	control = g_subprocess_newv(control_argv, G_SUBPROCESS_FLAGS_NONE, &error);
	g_assert_no_error(error);
	g_usleep(200000);
	/* the probe works: a dumpable process with the same credentials is open to it */
	g_assert_true(probe_can_open_mem(atoi(g_subprocess_get_identifier(control))));
	/* and tkmsd is not */
	g_assert_false(probe_can_open_mem(pid));
	g_subprocess_force_exit(control);

	/* no core file either */
	g_assert_true(g_file_get_contents(limits_path, &limits, NULL, NULL));
	{
		const gchar *line = strstr(limits, "Max core file size");
		g_autofree gchar *one = NULL;
		g_assert_nonnull(line);
		one = g_strndup(line, strcspn(line, "\n"));
		g_test_message("%s", one);
		g_assert_true(g_regex_match_simple("^Max core file size +0 +0 ", one, 0, 0));
	}
}

int
main(int argc, char **argv)
{
	const gchar *no_ptrace[] = {NO_PTRACE, NULL};
	int ret;

	g_test_init(&argc, &argv, NULL);
	tkms_test_require_program_or_skip("setpriv", "util-linux");
	(void)tkms_error_quark();
	secrets = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	messages = g_ptr_array_new_with_free_func(g_free);
	{
		g_autoptr(GError) error = NULL;
		env = tkms_test_env_new_without_daemon(NULL, &error);
		if (env == NULL)
			tkms_test_exit_on_error("cannot set up the test environment", error);
		tkms_test_env_set_daemon_wrapper(env, no_ptrace);
		if (!tkms_test_env_start_daemon(env, &error))
			tkms_test_exit_on_error("cannot start tkmsd", error);
	}
	g_test_add_func("/torture/secrets/nowhere", test_no_secret_anywhere);
	g_test_add_func("/torture/secrets/not-dumpable", test_not_dumpable);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	g_ptr_array_unref(secrets);
	g_ptr_array_unref(messages);
	return ret;
}
