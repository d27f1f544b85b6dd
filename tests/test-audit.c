/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-audit"

/* The audit log: one record per call (refusals and errors included), no secrets, and a hash
 * chain that detects an edited byte, a removed or reordered record and a cut at the end; and
 * while the log cannot be written (a full disk) no call succeeds. The log is kept in segments
 * of [audit] SegmentSize, the oldest deleted past [audit] KeepSegments, with the chain running
 * on across them; tkmsd reads only the tail at start, and `tkmsctl audit verify` streams. */

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "audit-chain.h"
#include "tkms-test-util.h"

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))

#define SECRET_PT "audit-plaintext-SECRET-77e1"
#define SECRET_CTX "audit-context-SECRET-0b9c"
#define SECRET_SEAL "audit-sealed-SECRET-5a5a"
#define SECRET_DATA "audit-signed-data-SECRET-c3c3"

static gchar *
log_path(void)
{
	return g_build_filename(tkms_test_env_get_state_dir(env), "audit.log", NULL);
}

static gchar *
head_path(void)
{
	return g_build_filename(tkms_test_env_get_state_dir(env), "audit.head", NULL);
}

static guint
n_records(void)
{
	g_autofree gchar *path = log_path();
	return tkms_test_count_lines(path);
}

static JsonObject *
last_record_of(const gchar *path)
{
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	guint n;

	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	lines = g_strsplit(contents, "\n", -1);
	n = g_strv_length(lines);
	g_assert_cmpuint(n, >=, 2);
	g_assert_cmpstr(lines[n - 1], ==, ""); /* ends with a newline */
	json_parser_load_from_data(parser, lines[n - 2], -1, &error);
	g_assert_no_error(error);
	g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
	return json_object_ref(json_node_get_object(json_parser_get_root(parser)));
}

static JsonObject *
last_record(void)
{
	g_autofree gchar *path = log_path();
	return last_record_of(path);
}

/* Checks that exactly one record was added since `before`, describing this call. */
static void
check_one_record(guint before, const gchar *method, const gchar *key, const gchar *result,
		 const gchar *error_name)
{
	guint after = n_records();
	g_autoptr(JsonObject) rec = NULL;

	g_test_message("%s: %u -> %u records", method, before, after);
	g_assert_cmpuint(after, ==, before + 1);
	rec = last_record();
	g_assert_cmpstr(json_object_get_string_member(rec, "method"), ==, method);
	g_assert_cmpstr(json_object_get_string_member(rec, "result"), ==, result);
	g_assert_cmpint(json_object_get_int_member(rec, "uid"), ==, getuid());
	g_assert_cmpint(json_object_get_int_member(rec, "pid"), ==, getpid());
	g_assert_cmpstr(json_object_get_string_member(rec, "sender"), ==,
			g_dbus_connection_get_unique_name(tkms_test_env_get_connection(env)));
	g_assert_cmpint(json_object_get_int_member(rec, "seq"), ==, after - 1);
	g_assert_true(json_object_has_member(rec, "time"));
	g_assert_true(json_object_has_member(rec, "prev"));
	g_assert_true(json_object_has_member(rec, "hash"));
	if (key != NULL)
		g_assert_cmpstr(json_object_get_string_member(rec, "key"), ==, key);
	if (error_name != NULL)
		g_assert_cmpstr(json_object_get_string_member(rec, "error"), ==, error_name);
	else
		g_assert_cmpstr(json_object_get_string_member_with_default(rec, "error", ""), ==,
				"");
}

static void
test_one_record_per_call(void)
{
	g_autofree gchar *aes = tkms_test_key_name("audit-aes");
	g_autofree gchar *hmac = tkms_test_key_name("audit-hmac");
	g_autofree gchar *ec = tkms_test_key_name("audit-ec");
	g_autoptr(GBytes) pt = tkms_test_bytes_str("audit me");
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("ctx");
	g_autoptr(GBytes) wrong_ctx = tkms_test_bytes_str("wrong");
	g_autoptr(GBytes) ct = NULL, mac = NULL, sig = NULL, blob = NULL, out = NULL;
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GError) error = NULL;
	gboolean valid = FALSE;
	guint n;

	/* Each record is on disk by the time the reply arrives. */
	n = n_records();
	info = tkms_client_create_key_sync(CLIENT, aes, "aes-256-gcm", NULL, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "CreateKey", aes, "ok", NULL);
	g_clear_pointer(&info, g_variant_unref);

	n = n_records();
	info = tkms_client_get_key_info_sync(CLIENT, aes, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "GetKeyInfo", aes, "ok", NULL);
	g_clear_pointer(&info, g_variant_unref);

	n = n_records();
	info = tkms_client_list_keys_sync(CLIENT, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "ListKeys", NULL, "ok", NULL);
	g_clear_pointer(&info, g_variant_unref);

	n = n_records();
	ct = tkms_client_encrypt_sync(CLIENT, aes, pt, ctx, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "Encrypt", aes, "ok", NULL);
	{
		g_autoptr(JsonObject) rec = last_record();
		g_assert_cmpint(json_object_get_int_member(rec, "version"), >=, 1);
	}

	n = n_records();
	out = tkms_client_decrypt_sync(CLIENT, aes, ct, ctx, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "Decrypt", aes, "ok", NULL);
	g_clear_pointer(&out, g_bytes_unref);

	n = n_records();
	out = tkms_client_decrypt_sync(CLIENT, aes, ct, wrong_ctx, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INTEGRITY_FAILURE);
	g_clear_error(&error);
	check_one_record(n, "Decrypt", aes, "error", "IntegrityFailure");

	n = n_records();
	info = tkms_client_create_key_sync(CLIENT, hmac, "hmac-sha256", NULL, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "CreateKey", hmac, "ok", NULL);
	g_clear_pointer(&info, g_variant_unref);

	n = n_records();
	mac = tkms_client_hmac_sync(CLIENT, hmac, pt, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "Hmac", hmac, "ok", NULL);

	n = n_records();
	tkms_client_verify_hmac_sync(CLIENT, hmac, pt, mac, &valid, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "VerifyHmac", hmac, "ok", NULL);

	n = n_records();
	out = tkms_client_derive_key_sync(CLIENT, hmac, ctx, 32, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "DeriveKey", hmac, "ok", NULL);
	g_clear_pointer(&out, g_bytes_unref);

	n = n_records();
	info = tkms_client_create_key_sync(CLIENT, ec, "ecdsa-p256", NULL, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "CreateKey", ec, "ok", NULL);
	g_clear_pointer(&info, g_variant_unref);

	n = n_records();
	sig = tkms_client_sign_sync(CLIENT, ec, pt, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "Sign", ec, "ok", NULL);

	n = n_records();
	tkms_client_verify_sync(CLIENT, ec, pt, sig, &valid, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "Verify", ec, "ok", NULL);

	n = n_records();
	{
		g_autofree gchar *pem = tkms_client_get_public_key_sync(CLIENT, ec, NULL, &error);
		g_assert_no_error(error);
	}
	check_one_record(n, "GetPublicKey", ec, "ok", NULL);

	n = n_records();
	blob = tkms_client_seal_sync(CLIENT, pt, NULL, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "Seal", NULL, "ok", NULL);

	n = n_records();
	out = tkms_client_unseal_sync(CLIENT, blob, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "Unseal", NULL, "ok", NULL);
	g_clear_pointer(&out, g_bytes_unref);

	n = n_records();
	out = tkms_client_get_random_sync(CLIENT, 16, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "GetRandom", NULL, "ok", NULL);
	g_clear_pointer(&out, g_bytes_unref);

	/* Errors are audited. */
	n = n_records();
	info = tkms_client_get_key_info_sync(CLIENT, "audit-missing", NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	check_one_record(n, "GetKeyInfo", "audit-missing", "error", "NotFound");

	n = n_records();
	info = tkms_client_create_key_sync(CLIENT, "../evil", "aes-256-gcm", NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	check_one_record(n, "CreateKey", NULL, "error", "InvalidArgument");

	n = n_records();
	out = tkms_client_get_random_sync(CLIENT, 0, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	check_one_record(n, "GetRandom", NULL, "error", "InvalidArgument");

	/* Refusals are audited. */
	tkms_test_env_polkit_set_allowed(env, NULL, &error);
	g_assert_no_error(error);
	n = n_records();
	out = tkms_client_encrypt_sync(CLIENT, aes, pt, ctx, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_PERMISSION_DENIED);
	g_clear_error(&error);
	check_one_record(n, "Encrypt", NULL, "denied", "PermissionDenied");
	n = n_records();
	info = tkms_client_list_keys_sync(CLIENT, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_PERMISSION_DENIED);
	g_clear_error(&error);
	check_one_record(n, "ListKeys", NULL, "denied", "PermissionDenied");
	tkms_test_env_polkit_allow_all(env, &error);
	g_assert_no_error(error);

	/* Destruction too. */
	n = n_records();
	tkms_client_destroy_key_sync(CLIENT, aes, NULL, &error);
	g_assert_no_error(error);
	check_one_record(n, "DestroyKey", aes, "ok", NULL);
}

static void
assert_log_lacks(const gchar *secret)
{
	g_autofree gchar *path = log_path();
	g_autofree gchar *contents = NULL;
	g_autoptr(GBytes) s = tkms_test_bytes_str(secret);
	g_autofree gchar *hex = tkms_test_bytes_to_hex(s);
	g_autofree gchar *b64 = g_base64_encode((const guchar *)secret, strlen(secret));

	g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
	g_assert_null(strstr(contents, secret));
	g_assert_null(strstr(contents, hex));
	b64[strlen(b64) - 4] = '\0';
	g_assert_null(strstr(contents, b64));
}

static void
test_no_secrets(void)
{
	g_autofree gchar *aes = tkms_test_key_name("audit-secret-aes");
	g_autofree gchar *ec = tkms_test_key_name("audit-secret-ec");
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GBytes) pt = tkms_test_bytes_str(SECRET_PT);
	g_autoptr(GBytes) ctx = tkms_test_bytes_str(SECRET_CTX);
	g_autoptr(GBytes) sealed = tkms_test_bytes_str(SECRET_SEAL);
	g_autoptr(GBytes) data = tkms_test_bytes_str(SECRET_DATA);
	g_autoptr(GBytes) ct = NULL, back = NULL, blob = NULL, sig = NULL, out = NULL;
	g_autoptr(GError) error = NULL;

	ct = tkms_client_encrypt_sync(CLIENT, aes, pt, ctx, NULL, &error);
	g_assert_no_error(error);
	back = tkms_client_decrypt_sync(CLIENT, aes, ct, ctx, NULL, &error);
	g_assert_no_error(error);
	blob = tkms_client_seal_sync(CLIENT, sealed, NULL, NULL, &error);
	g_assert_no_error(error);
	out = tkms_client_unseal_sync(CLIENT, blob, NULL, &error);
	g_assert_no_error(error);
	sig = tkms_client_sign_sync(CLIENT, ec, data, NULL, &error);
	g_assert_no_error(error);
	/* A failing call with secret input. */
	g_clear_pointer(&out, g_bytes_unref);
	out = tkms_client_decrypt_sync(CLIENT, aes, pt, ctx, NULL, &error);
	g_assert_nonnull(error);
	g_clear_error(&error);

	assert_log_lacks(SECRET_PT);
	assert_log_lacks(SECRET_CTX);
	assert_log_lacks(SECRET_SEAL);
	assert_log_lacks(SECRET_DATA);
	{
		g_autofree gchar *ct_hex = tkms_test_bytes_to_hex(ct);
		assert_log_lacks(ct_hex + 24); /* nor the ciphertext body */
	}
}

/* ---- hash chain ---------------------------------------------------------------------- */

static gboolean
verify_copy(const gchar *contents, gsize len, const gchar *head, GError **error)
{
	const gchar *dir = tkms_test_env_get_tmp_dir(env);
	g_autofree gchar *lp = g_build_filename(dir, "audit-copy.log", NULL);
	g_autofree gchar *hp = g_build_filename(dir, "audit-copy.head", NULL);

	g_assert_true(g_file_set_contents(lp, contents, (gssize)len, NULL));
	if (head != NULL)
		g_assert_true(g_file_set_contents(hp, head, -1, NULL));
	else
		g_unlink(hp);
	return tkms_audit_chain_verify_file(lp, head ? hp : NULL, NULL, error);
}

static void
test_chain(void)
{
	g_autofree gchar *lp = log_path();
	g_autofree gchar *hp = head_path();
	g_autofree gchar *contents = NULL;
	g_autofree gchar *head = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) lines = NULL;
	guint64 n = 0;
	guint n_lines;
	gsize len;

	/* While running (the head may lag behind the newest records, never ahead). */
	g_assert_true(tkms_audit_chain_verify_file(lp, hp, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, n_records());
	g_assert_cmpuint(n, >, 20);

	/* Stopped: everything flushed, the head names the last record. */
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	g_assert_true(tkms_audit_chain_verify_file(lp, hp, &n, &error));
	g_assert_no_error(error);
	g_assert_true(g_file_get_contents(lp, &contents, &len, NULL));
	g_assert_true(g_file_get_contents(hp, &head, NULL, NULL));
	g_assert_cmpuint(g_ascii_strtoull(head, NULL, 10), ==, n - 1);
	g_assert_true(verify_copy(contents, len, head, &error));
	g_assert_no_error(error);

	lines = g_strsplit(contents, "\n", -1);
	n_lines = g_strv_length(lines) - 1; /* the last element is "" after the final \n */
	g_assert_cmpuint(n_lines, ==, n);

	/* Any changed byte of a record, anywhere in it. */
	{
		guint rec = n_lines / 2;
		gsize offset = 0, rec_len = strlen(lines[rec]);
		for (guint i = 0; i < rec; i++)
			offset += strlen(lines[i]) + 1;
		for (gsize j = 0; j < rec_len; j += 3) {
			g_autofree gchar *copy = g_memdup2(contents, len);
			gchar c = copy[offset + j];
			copy[offset + j] = g_ascii_isdigit(c) ? (c == '9' ? '0' : c + 1)
							      : (c == 'a' ? 'b' : 'a');
			if (copy[offset + j] == c)
				continue;
			g_assert_false(verify_copy(copy, len, head, &error));
			g_assert_nonnull(error);
			g_clear_error(&error);
		}
	}
	/* A record removed in the middle, or two swapped. */
	{
		g_autoptr(GString) s = g_string_new(NULL);
		for (guint i = 0; i < n_lines; i++)
			if (i != 3)
				g_string_append_printf(s, "%s\n", lines[i]);
		g_assert_false(verify_copy(s->str, s->len, head, &error));
		g_clear_error(&error);
		g_assert_false(verify_copy(s->str, s->len, NULL, &error));
		g_clear_error(&error);
	}
	{
		g_autoptr(GString) s = g_string_new(NULL);
		for (guint i = 0; i < n_lines; i++)
			g_string_append_printf(s, "%s\n",
					       lines[i == 4 ? 5 : i == 5 ? 4 : i]);
		g_assert_false(verify_copy(s->str, s->len, NULL, &error));
		g_clear_error(&error);
	}
	/* The last line cut: only the head catches it. */
	{
		gsize cut = len - strlen(lines[n_lines - 1]) - 1;
		g_assert_false(verify_copy(contents, cut, head, &error));
		g_assert_nonnull(error);
		g_test_message("cut: %s", error->message);
		g_clear_error(&error);
		/* half a line cut */
		g_assert_false(verify_copy(contents, len - 10, head, &error));
		g_clear_error(&error);
		g_assert_false(verify_copy(contents, len - 10, NULL, &error));
		g_clear_error(&error);
	}
	/* An edited last record with a recomputed hash is still caught by the head. */
	{
		g_autoptr(GString) s = g_string_new(NULL);
		const gchar *last = lines[n_lines - 1];
		const gchar *hash_member = strstr(last, ",\"hash\":\"");
		g_autofree gchar *body = NULL;
		g_autofree gchar *forged_body = NULL;
		g_autofree gchar *hash = NULL;
		gchar *p;

		g_assert_nonnull(hash_member);
		body = g_strndup(last, hash_member - last);
		/* change the result of the last call */
		p = strstr(body, "\"result\":\"");
		g_assert_nonnull(p);
		forged_body = g_strdup(body);
		forged_body[p - body + 10] = forged_body[p - body + 10] == 'o' ? 'x' : 'o';
		hash = tkms_audit_chain_hash(forged_body, strlen(forged_body));
		for (guint i = 0; i + 1 < n_lines; i++)
			g_string_append_printf(s, "%s\n", lines[i]);
		g_string_append_printf(s, "%s,\"hash\":\"%s\"}\n", forged_body, hash);
		/* self-consistent without the head... */
		g_assert_true(verify_copy(s->str, s->len, NULL, &error));
		g_assert_no_error(error);
		/* ...but not with it */
		g_assert_false(verify_copy(s->str, s->len, head, &error));
		g_clear_error(&error);
	}

	/* The chain continues across a restart. */
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GBytes) r = tkms_client_get_random_sync(CLIENT, 8, NULL, &error);
		g_autoptr(JsonObject) rec = NULL;
		guint64 n2 = 0;
		g_assert_no_error(error);
		g_assert_true(tkms_audit_chain_verify_file(lp, hp, &n2, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(n2, >, n);
		rec = last_record();
		g_assert_cmpstr(json_object_get_string_member(rec, "method"), ==, "GetRandom");
	}
}

/* ---- segments ---------------------------------------------------------------------- */

/* Runs tkmsctl [--json] audit verify with args; returns its exit status, stdout and stderr. */
static gint
audit_verify_full(TkmsTestEnv *e, gboolean json, const gchar *const *args, gchar **out,
		  gchar **err)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	gint status = -1;
	gboolean ok;

	g_ptr_array_add(argv, (gpointer)g_getenv("TKMSCTL"));
	if (json)
		g_ptr_array_add(argv, (gpointer) "--json");
	g_ptr_array_add(argv, (gpointer) "audit");
	g_ptr_array_add(argv, (gpointer) "verify");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	/* the error first: it says why (a timeout, say) */
	ok = tkms_test_env_run(e, (const gchar *const *)argv->pdata, out, err, &status, &error);
	g_assert_no_error(error);
	g_assert_true(ok);
	g_test_message("tkmsctl audit verify %s: status %d\n%s%s", args[0], status,
		       out && *out ? *out : "", err && *err ? *err : "");
	return status;
}

static gint
audit_verify(TkmsTestEnv *e, const gchar *const *args, gchar **out, gchar **err)
{
	return audit_verify_full(e, FALSE, args, out, err);
}

/* tkmsctl audit verify --state-dir state, under GNU time: *max_rss_kib is tkmsctl's own peak
 * RSS. (getrusage(RUSAGE_CHILDREN) gives the largest child waited for so far, tkmsd among
 * them: under valgrind, hundreds of MiB.) */
static gint
audit_verify_max_rss(TkmsTestEnv *e, const gchar *state, gchar **out, glong *max_rss_kib)
{
	g_autofree gchar *report = g_build_filename(tkms_test_env_get_tmp_dir(e), "time.out", NULL);
	/* A sanitizer build's tkmsctl: AddressSanitizer's quarantine (256 MiB by default) keeps
	 * every freed block from reuse for a while, so each line buffer the streaming verify ever
	 * freed would count in its peak RSS (measured: 496 MiB, 20 MiB with 1 MiB of quarantine).
	 * A small one still catches a use after free of the last ones. Other builds ignore it. */
	const gchar *asan_options = g_getenv("ASAN_OPTIONS");
	g_autofree gchar *asan = g_strdup_printf("ASAN_OPTIONS=%s%squarantine_size_mb=1",
						 asan_options != NULL ? asan_options : "",
						 asan_options != NULL ? ":" : "");
	const gchar *argv[] = {
		"/usr/bin/time",     "-f",    "%M",	"-o",	       report, "env", asan,
		g_getenv("TKMSCTL"), "audit", "verify", "--state-dir", state,  NULL};
	g_autofree gchar *err = NULL, *text = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *last;
	gint status = -1;
	gboolean ok;

	/* the error first: it says why (a timeout, say) */
	ok = tkms_test_env_run(e, argv, out, &err, &status, &error);
	g_assert_no_error(error);
	g_assert_true(ok);
	g_test_message("tkmsctl audit verify %s: status %d\n%s%s", state, status, *out, err);
	g_assert_true(g_file_get_contents(report, &text, NULL, &error));
	g_assert_no_error(error);
	/* the last line; GNU time puts "Command exited with non-zero status N" before it */
	last = strrchr(g_strchomp(text), '\n');
	*max_rss_kib = strtol(last != NULL ? last + 1 : text, NULL, 10);
	return status;
}

static GArray *
list_segments(const gchar *dir)
{
	g_autoptr(GError) error = NULL;
	GArray *list = tkms_audit_segments_list(dir, &error);

	g_assert_no_error(error);
	return list;
}

static void
copy_file(const gchar *from, const gchar *to)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;

	g_assert_true(g_file_get_contents(from, &contents, &len, NULL));
	g_assert_true(g_file_set_contents(to, contents, (gssize)len, NULL));
}

#define SMALL_SEGMENT 65536
#define KEEP_SEGMENTS 3

/* Many calls with a small SegmentSize: several segments, the oldest deleted past
 * KeepSegments; tkmsctl audit verify passes (and says where the chain starts), finds a record
 * edited in a middle segment, and a restart continues the chain. */
static void
test_segments(void)
{
	g_autoptr(TkmsTestEnv) e = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) list = NULL;
	g_autofree gchar *out = NULL, *err = NULL, *config = NULL;
	g_autofree gchar *tampered = NULL, *where = NULL;
	const gchar *state;
	TkmsClient *client;
	TkmsAuditChainReport before = {0}, after = {0};

	config = g_strdup_printf("[audit]\nSegmentSize=%d\nKeepSegments=%d\n", SMALL_SEGMENT,
				 KEEP_SEGMENTS);
	e = tkms_test_env_new(config, &error);
	if (g_error_matches(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY)) {
		g_test_skip(error->message);
		return;
	}
	g_assert_no_error(error);
	state = tkms_test_env_get_state_dir(e);
	client = tkms_test_env_get_client(e);
	/* about 250 bytes each: some seven segments' worth */
	for (guint i = 0; i < 1800; i++) {
		g_autoptr(GBytes) r = tkms_client_get_random_sync(client, 8, NULL, &error);
		g_assert_no_error(error);
	}

	/* while tkmsd runs */
	g_assert_cmpint(audit_verify(e, (const gchar *[]){"--state-dir", state, NULL}, &out, &err),
			==, 0);
	g_assert_true(g_str_has_prefix(out, "audit log OK: "));
	g_assert_nonnull(strstr(out, " records in 4 segments\n"));
	g_assert_nonnull(strstr(out, "The chain starts at record "));
	g_assert_true(tkms_test_env_stop_daemon(e, &error));
	g_assert_no_error(error);

	list = list_segments(state);
	g_assert_cmpuint(list->len, ==, KEEP_SEGMENTS);
	g_assert_cmpuint(g_array_index(list, guint64, 0), >, 1);
	for (guint i = 0; i < list->len; i++) {
		g_autofree gchar *name = tkms_audit_segment_name(g_array_index(list, guint64, i));
		g_autofree gchar *path = g_build_filename(state, name, NULL);
		GStatBuf st;

		g_assert_cmpint(g_stat(path, &st), ==, 0);
		g_assert_cmpint(st.st_size, <=, SMALL_SEGMENT);
		if (i > 0)
			g_assert_cmpuint(g_array_index(list, guint64, i), ==,
					 g_array_index(list, guint64, i - 1) + 1);
	}
	g_assert_true(tkms_audit_chain_verify_dir(state, &before, &error));
	g_assert_no_error(error);
	g_assert_true(before.anchored);
	g_assert_true(before.head_checked);
	g_assert_cmpuint(before.n_segments, ==, KEEP_SEGMENTS + 1);

	/* an edited record in the middle segment, in a copy of the log */
	tampered = g_build_filename(tkms_test_env_get_tmp_dir(e), "tampered", NULL);
	g_assert_cmpint(g_mkdir(tampered, 0700), ==, 0);
	{
		g_autoptr(GDir) d = g_dir_open(state, 0, NULL);
		const gchar *name;
		while ((name = g_dir_read_name(d)) != NULL) {
			g_autofree gchar *from = g_build_filename(state, name, NULL);
			g_autofree gchar *to = g_build_filename(tampered, name, NULL);
			if (g_str_has_prefix(name, "audit."))
				copy_file(from, to);
		}
	}
	{
		g_autofree gchar *name = tkms_audit_segment_name(g_array_index(list, guint64, 1));
		g_autofree gchar *path = g_build_filename(tampered, name, NULL);
		g_autofree gchar *contents = NULL;
		gchar *line = NULL, *p;

		g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
		/* the 41st record */
		line = contents;
		for (guint i = 0; i < 40; i++)
			line = strchr(line, '\n') + 1;
		p = strstr(line, "\"method\":\"GetRandom\"");
		g_assert_nonnull(p);
		memcpy(p + strlen("\"method\":\""), "SetRandom", strlen("SetRandom"));
		g_assert_true(g_file_set_contents(path, contents, -1, NULL));
		where = g_strdup_printf("%s line 41: record ", name);
	}
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(audit_verify(e, (const gchar *[]){"--state-dir", tampered, NULL}, &out,
				     &err),
			==, 3);
	g_assert_nonnull(strstr(err, where));
	g_assert_nonnull(strstr(err, "was modified"));

	/* a restart continues the chain, in the same segments */
	g_assert_true(tkms_test_env_start_daemon(e, &error));
	g_assert_no_error(error);
	client = tkms_test_env_get_client(e);
	for (guint i = 0; i < 10; i++) {
		g_autoptr(GBytes) r = tkms_client_get_random_sync(client, 8, NULL, &error);
		g_assert_no_error(error);
	}
	g_assert_true(tkms_test_env_stop_daemon(e, &error));
	g_assert_no_error(error);
	g_assert_true(tkms_audit_chain_verify_dir(state, &after, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(after.first_seq + after.n_records, ==,
			 before.first_seq + before.n_records + 10);
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(audit_verify_full(e, TRUE, (const gchar *[]){"--state-dir", state, NULL},
					  &out, &err),
			==, 0);
	{
		g_autoptr(JsonParser) parser = json_parser_new();
		JsonObject *obj;

		g_assert_true(json_parser_load_from_data(parser, out, -1, NULL));
		obj = json_node_get_object(json_parser_get_root(parser));
		g_assert_true(json_object_get_boolean_member(obj, "valid"));
		g_assert_true(json_object_get_boolean_member(obj, "anchored"));
		g_assert_cmpint(json_object_get_int_member(obj, "records"), ==,
				(gint64)after.n_records);
		g_assert_cmpint(json_object_get_int_member(obj, "first-record"), ==,
				(gint64)after.first_seq);
		g_assert_cmpint(json_object_get_int_member(obj, "segments"), ==,
				after.n_segments);
	}
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);
	tkms_audit_chain_report_clear(&before);
	tkms_audit_chain_report_clear(&after);
}

/* A pre-built log of 200 MB (the size of an unsegmented log after months): tkmsd starts
 * reading only its tail (its peak RSS does not grow with the log), continues the chain in a
 * new segment, and tkmsctl audit verify streams through it in bounded memory. */
#define BIG_LOG_BYTES (200 * 1024 * 1024)

static guint64
proc_status_kib(gint pid, const gchar *field)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/status", pid);
	g_autofree gchar *status = NULL;
	g_autofree gchar *key = g_strdup_printf("\n%s:", field);
	const gchar *line;

	g_assert_true(g_file_get_contents(path, &status, NULL, NULL));
	line = strstr(status, key);
	g_assert_nonnull(line);
	return g_ascii_strtoull(line + strlen(key), NULL, 10);
}

/* Writes a valid chain of about bytes bytes as path (and its head); returns the records. */
static guint64
write_big_log(const gchar *path, const gchar *head_path, gsize bytes)
{
	g_autofree gchar *prev = g_strdup(TKMS_AUDIT_ZERO_HASH);
	g_autoptr(GString) buf = g_string_sized_new(1 << 20);
	FILE *fp = fopen(path, "w");
	guint64 seq = 0;
	gsize written = 0;

	g_assert_nonnull(fp);
	while (written < bytes) {
		g_autofree gchar *hash = NULL;
		gsize start = buf->len;

		g_string_append_printf(buf,
				       "{\"seq\":%" G_GUINT64_FORMAT
				       ",\"time\":\"2026-01-01T00:00:00.000000Z\",\"uid\":1000,"
				       "\"pid\":4242,\"sender\":\":1.%" G_GUINT64_FORMAT
				       "\",\"method\":\"Encrypt\",\"key\":\"big-log-key\","
				       "\"owner\":1000,\"version\":1,\"result\":\"ok\","
				       "\"error\":\"\",\"prev\":\"%s\"",
				       seq, seq, prev);
		hash = tkms_audit_chain_hash(buf->str + start, buf->len - start);
		g_string_append_printf(buf, ",\"hash\":\"%s\"}\n", hash);
		g_free(prev);
		prev = g_steal_pointer(&hash);
		seq++;
		if (buf->len > (1 << 20) - 1024) {
			g_assert_cmpuint(fwrite(buf->str, 1, buf->len, fp), ==, buf->len);
			written += buf->len;
			g_string_truncate(buf, 0);
		}
	}
	g_assert_cmpuint(fwrite(buf->str, 1, buf->len, fp), ==, buf->len);
	g_assert_cmpint(fclose(fp), ==, 0);
	{
		g_autofree gchar *head =
			g_strdup_printf("%" G_GUINT64_FORMAT " %s\n", seq - 1, prev);
		g_assert_true(g_file_set_contents(head_path, head, -1, NULL));
	}
	return seq;
}

static void
test_big_log(void)
{
	g_autoptr(TkmsTestEnv) e = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *lp = NULL, *hp = NULL, *out = NULL, *expected = NULL;
	const gchar *state;
	guint64 small_hwm, big_hwm, records;
	gint64 t0, small_start_us, big_start_us, verify_us;
	glong verify_kib = 0;
	TkmsClient *client;

	e = tkms_test_env_new_without_daemon(NULL, &error);
	if (g_error_matches(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY)) {
		g_test_skip(error->message);
		return;
	}
	g_assert_no_error(error);
	state = tkms_test_env_get_state_dir(e);
	lp = g_build_filename(state, "audit.log", NULL);
	hp = g_build_filename(state, "audit.head", NULL);

	/* the baseline: a start with a small log */
	t0 = g_get_monotonic_time();
	g_assert_true(tkms_test_env_start_daemon(e, &error));
	g_assert_no_error(error);
	small_start_us = g_get_monotonic_time() - t0;
	client = tkms_test_env_get_client(e);
	{
		g_autoptr(GBytes) r = tkms_client_get_random_sync(client, 8, NULL, &error);
		g_assert_no_error(error);
	}
	small_hwm = proc_status_kib(tkms_test_env_get_daemon_pid(e), "VmHWM");
	g_assert_true(tkms_test_env_stop_daemon(e, &error));
	g_assert_no_error(error);

	records = write_big_log(lp, hp, BIG_LOG_BYTES);
	t0 = g_get_monotonic_time();
	g_assert_true(tkms_test_env_start_daemon(e, &error));
	g_assert_no_error(error);
	big_start_us = g_get_monotonic_time() - t0;
	client = tkms_test_env_get_client(e);
	{
		g_autoptr(GBytes) r = tkms_client_get_random_sync(client, 8, NULL, &error);
		g_assert_no_error(error);
	}
	big_hwm = proc_status_kib(tkms_test_env_get_daemon_pid(e), "VmHWM");
	g_test_message("tkmsd: start %.2f s and peak RSS %" G_GUINT64_FORMAT
		       " KiB with a small log; %.2f s and %" G_GUINT64_FORMAT
		       " KiB with %" G_GUINT64_FORMAT " records (%d MiB)",
		       small_start_us / 1e6, small_hwm, big_start_us / 1e6, big_hwm, records,
		       BIG_LOG_BYTES >> 20);
	/* reading the log whole would add 200 MB */
	g_assert_cmpuint(big_hwm, <, small_hwm + 16 * 1024);
	g_assert_true(tkms_test_env_stop_daemon(e, &error));
	g_assert_no_error(error);

	/* the big log became segment 1 (past the default 16 MiB), the chain goes on in audit.log */
	{
		g_autoptr(GArray) list = list_segments(state);
		g_autoptr(JsonObject) rec = NULL;
		g_assert_cmpuint(list->len, ==, 1);
		g_assert_cmpuint(g_array_index(list, guint64, 0), ==, 1);
		rec = last_record_of(lp);
		g_assert_cmpint(json_object_get_int_member(rec, "seq"), ==, (gint64)records);
		g_assert_cmpint(json_object_get_int_member(rec, "segment"), ==, 2);
	}
	if (!g_file_test("/usr/bin/time", G_FILE_TEST_IS_EXECUTABLE)) {
		g_test_skip("no /usr/bin/time (Debian package time)");
		return;
	}
	t0 = g_get_monotonic_time();
	g_assert_cmpint(audit_verify_max_rss(e, state, &out, &verify_kib), ==, 0);
	verify_us = g_get_monotonic_time() - t0;
	expected = g_strdup_printf("audit log OK: %" G_GUINT64_FORMAT " records in 2 segments\n",
				   records + 1);
	g_assert_cmpstr(out, ==, expected);
	g_test_message("tkmsctl audit verify: %.2f s; its peak RSS %ld KiB", verify_us / 1e6,
		       verify_kib);
	g_assert_cmpint(verify_kib, >, 0);
	g_assert_cmpint(verify_kib, <, 64 * 1024);
}

/* Fills the filesystem that holds `dir` until a write fails with ENOSPC. */
static void
fill_up(const gchar *path)
{
	static gchar block[65536];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	gsize chunk = sizeof(block);

	g_assert_cmpint(fd, >=, 0);
	while (chunk > 0) {
		gssize n = write(fd, block, chunk);
		if (n < 0) {
			g_assert_cmpint(errno, ==, ENOSPC);
			chunk /= 2;
		}
	}
	close(fd);
}

static void
assert_audit_failure(const GError *error, const gchar *what)
{
	g_test_message("%s while the disk is full: %s", what, error ? error->message : "success");
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "audit log cannot be written"));
	g_assert_nonnull(strstr(error->message, "refuses work"));
}

/* While the log cannot be written every call fails the same way, lifecycle changes included,
 * three rounds over. */
static void
assert_all_refused(TkmsClient *client, const gchar *kept, const gchar *refused, GBytes *ct,
		   GBytes *ctx)
{
	for (guint round = 0; round < 3; round++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) r = tkms_client_get_random_sync(client, 8, NULL, &error);
		g_autoptr(GVariant) info = NULL;
		g_autoptr(GBytes) out = NULL;

		g_assert_null(r);
		assert_audit_failure(error, "GetRandom");
		g_clear_error(&error);
		info = tkms_client_get_key_info_sync(client, kept, NULL, &error);
		g_assert_null(info);
		assert_audit_failure(error, "GetKeyInfo");
		g_clear_error(&error);
		info = tkms_client_list_keys_sync(client, NULL, &error);
		g_assert_null(info);
		assert_audit_failure(error, "ListKeys");
		g_clear_error(&error);
		out = tkms_client_decrypt_sync(client, kept, ct, ctx, NULL, &error);
		g_assert_null(out);
		assert_audit_failure(error, "Decrypt");
		g_clear_error(&error);
		info = tkms_client_create_key_sync(client, refused, "aes-256-gcm", NULL, NULL,
						   &error);
		g_assert_null(info);
		assert_audit_failure(error, "CreateKey");
		g_clear_error(&error);
		g_assert_false(tkms_client_destroy_key_sync(client, kept, NULL, &error));
		assert_audit_failure(error, "DestroyKey");
	}
}

/* The state directory on a small tmpfs that fills up: every call fails cleanly with Failed
 * naming the audit log, nothing changes without its record, and once space returns tkmsd works
 * again with no key lost. */
static void
test_disk_full(void)
{
	g_autoptr(TkmsTestEnv) e = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *state = NULL, *filler = NULL, *lp = NULL, *hp = NULL;
	g_autofree gchar *kept = tkms_test_key_name("full-kept");
	g_autofree gchar *refused = tkms_test_key_name("full-refused");
	g_autoptr(GBytes) pt = tkms_test_bytes_str("written before the disk filled");
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("ctx");
	g_autoptr(GBytes) ct = NULL, out = NULL;
	g_autoptr(GVariant) info = NULL;
	TkmsClient *client;
	gboolean mounted = FALSE, failed = FALSE;
	guint64 n = 0;
	gint status = 0;

	if (getuid() != 0) {
		g_test_skip("mounting a small tmpfs for the state directory needs root");
		return;
	}
	e = tkms_test_env_new_without_daemon(NULL, &error);
	if (g_error_matches(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY)) {
		g_test_skip(error->message);
		return;
	}
	g_assert_no_error(error);
	state = g_strdup(tkms_test_env_get_state_dir(e));
	{
		const gchar *argv[] = {"mount", "-t", "tmpfs", "-o", "size=4m,mode=0700",
				       "tkms-test-full", state, NULL};
		g_autofree gchar *err_out = NULL;
		if (!g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
				  NULL, &err_out, &status, NULL) ||
		    !g_spawn_check_wait_status(status, NULL)) {
			g_autofree gchar *msg = g_strdup_printf(
				"cannot mount a tmpfs on the state directory: %s", err_out);
			g_test_skip(msg);
			return;
		}
		mounted = TRUE;
	}
	filler = g_build_filename(state, "filler", NULL);
	lp = g_build_filename(state, "audit.log", NULL);
	hp = g_build_filename(state, "audit.head", NULL);

	g_assert_true(tkms_test_env_start_daemon(e, &error));
	g_assert_no_error(error);
	client = tkms_test_env_get_client(e);
	info = tkms_client_create_key_sync(client, kept, "aes-256-gcm", NULL, NULL, &error);
	g_assert_no_error(error);
	g_clear_pointer(&info, g_variant_unref);
	ct = tkms_client_encrypt_sync(client, kept, pt, ctx, NULL, &error);
	g_assert_no_error(error);

	fill_up(filler);
	/* the log's last page may still hold a few records: the first refused call is near */
	for (guint i = 0; i < 64 && !failed; i++) {
		g_autoptr(GBytes) r = tkms_client_get_random_sync(client, 8, NULL, &error);
		failed = r == NULL;
		if (!failed)
			g_assert_no_error(error);
	}
	g_assert_true(failed);
	assert_audit_failure(error, "GetRandom");
	g_clear_error(&error);

	/* from now on every call fails the same way, lifecycle changes included */
	assert_all_refused(client, kept, refused, ct, ctx);

	/* space returns: the next call works, nothing was changed by the refused ones */
	g_assert_cmpint(g_unlink(filler), ==, 0);
	info = tkms_client_get_key_info_sync(client, refused, NULL, &error);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	out = tkms_client_decrypt_sync(client, kept, ct, ctx, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(out, pt));
	g_clear_pointer(&out, g_bytes_unref);
	info = tkms_client_create_key_sync(client, refused, "aes-256-gcm", NULL, NULL, &error);
	g_assert_no_error(error);
	g_clear_pointer(&info, g_variant_unref);

	/* and on disk: after a restart both keys are there and the chain is whole */
	g_assert_true(tkms_test_env_stop_daemon(e, &error));
	g_assert_no_error(error);
	g_assert_true(tkms_audit_chain_verify_file(lp, hp, &n, &error));
	g_assert_no_error(error);
	g_assert_true(tkms_test_env_start_daemon(e, &error));
	g_assert_no_error(error);
	client = tkms_test_env_get_client(e);
	out = tkms_client_decrypt_sync(client, kept, ct, ctx, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(out, pt));
	info = tkms_client_get_key_info_sync(client, refused, NULL, &error);
	g_assert_no_error(error);

	g_assert_true(tkms_test_env_stop_daemon(e, &error));
	g_assert_no_error(error);
	if (mounted) {
		const gchar *argv[] = {"umount", "-l", state, NULL};
		g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
					   NULL, NULL, NULL, &status, NULL));
		g_assert_true(g_spawn_check_wait_status(status, NULL));
	}
}

/* The audit log's sync fails after writes that worked (an I/O error, injected by a preloaded
 * library): every call after the failure is refused with Failed, lifecycle changes included,
 * nothing changes without its record, and once syncing works again so does tkmsd, with no key
 * lost and a whole chain. */
static void
test_sync_failure(void)
{
	g_autoptr(TkmsTestEnv) e = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *marker = NULL, *lp = NULL, *hp = NULL, *fail = NULL;
	g_autofree gchar *kept = tkms_test_key_name("sync-kept");
	g_autofree gchar *refused = tkms_test_key_name("sync-refused");
	g_autoptr(GBytes) pt = tkms_test_bytes_str("written before the sync failed");
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("ctx");
	g_autoptr(GBytes) ct = NULL, out = NULL;
	g_autoptr(GVariant) info = NULL;
	const gchar *shim = g_getenv("TKMS_TEST_FAILSYNC");
	TkmsClient *client;
	gboolean failed = FALSE;
	guint64 n = 0;

	if (shim == NULL) {
		g_test_skip("TKMS_TEST_FAILSYNC is not set (run through meson test)");
		return;
	}
	e = tkms_test_env_new_without_daemon(NULL, &error);
	if (g_error_matches(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY)) {
		g_test_skip(error->message);
		return;
	}
	g_assert_no_error(error);
	marker = g_build_filename(tkms_test_env_get_tmp_dir(e), "fail-sync", NULL);
	tkms_test_env_set_daemon_preload(e, shim);
	fail = g_strdup_printf("TKMS_TEST_FAIL_SYNC=%s", marker);
	{
		const gchar *wrapper[] = {"env", fail, NULL};
		tkms_test_env_set_daemon_wrapper(e, wrapper);
	}
	lp = g_build_filename(tkms_test_env_get_state_dir(e), "audit.log", NULL);
	hp = g_build_filename(tkms_test_env_get_state_dir(e), "audit.head", NULL);

	g_assert_true(tkms_test_env_start_daemon(e, &error));
	g_assert_no_error(error);
	client = tkms_test_env_get_client(e);
	info = tkms_client_create_key_sync(client, kept, "aes-256-gcm", NULL, NULL, &error);
	g_assert_no_error(error);
	g_clear_pointer(&info, g_variant_unref);
	ct = tkms_client_encrypt_sync(client, kept, pt, ctx, NULL, &error);
	g_assert_no_error(error);

	g_assert_true(g_file_set_contents(marker, "", 0, NULL));
	/* records already written may be answered before their group commit fails: the refusals
	 * start within a few commits */
	for (guint i = 0; i < 100 && !failed; i++) {
		g_autoptr(GBytes) r = tkms_client_get_random_sync(client, 8, NULL, &error);
		failed = r == NULL;
		if (!failed) {
			g_assert_no_error(error);
			g_usleep(20000);
		}
	}
	g_assert_true(failed);
	assert_audit_failure(error, "GetRandom");
	g_clear_error(&error);

	assert_all_refused(client, kept, refused, ct, ctx);

	/* syncing works again: so does tkmsd, and the refused changes were never made */
	g_assert_cmpint(g_unlink(marker), ==, 0);
	info = tkms_client_get_key_info_sync(client, refused, NULL, &error);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	info = tkms_client_get_key_info_sync(client, kept, NULL, &error);
	g_assert_no_error(error);
	{
		g_autofree gchar *text = g_variant_print(info, FALSE);
		g_assert_nonnull(strstr(text, "'active'"));
	}
	g_clear_pointer(&info, g_variant_unref);
	out = tkms_client_decrypt_sync(client, kept, ct, ctx, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(out, pt));
	g_clear_pointer(&out, g_bytes_unref);

	g_assert_true(tkms_test_env_stop_daemon(e, &error));
	g_assert_no_error(error);
	g_assert_true(tkms_audit_chain_verify_file(lp, hp, &n, &error));
	g_assert_no_error(error);
	g_assert_true(tkms_test_env_start_daemon(e, &error));
	g_assert_no_error(error);
	client = tkms_test_env_get_client(e);
	out = tkms_client_decrypt_sync(client, kept, ct, ctx, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(out, pt));
	info = tkms_client_get_key_info_sync(client, refused, NULL, &error);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND);
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_or_abort(NULL);
	g_test_add_func("/audit/one-record-per-call", test_one_record_per_call);
	g_test_add_func("/audit/no-secrets", test_no_secrets);
	g_test_add_func("/audit/chain", test_chain);
	g_test_add_func("/audit/disk-full", test_disk_full);
	g_test_add_func("/audit/sync-failure", test_sync_failure);
	g_test_add_func("/audit/segments", test_segments);
	g_test_add_func("/audit/big-log", test_big_log);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	return ret;
}
