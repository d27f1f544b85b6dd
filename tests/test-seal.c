/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-seal"

/* Seal / Unseal (sizes, PCR binding, tampering, another uid) and GetRandom. */

#include <string.h>
#include <unistd.h>

#include "tkms-test-util.h"

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))
#define MIB (1024 * 1024)

/* Blob format 1 (interfaces XML, daemon/sealblob.h): "TKSB" | format u8 | reserved (3) |
 * owner uid u32 BE | PCR mask u32 BE | public | private | IV (12) | data length u32 |
 * AES-256-GCM ciphertext | tag (16). */
#define TAG_LEN 16

static GVariant *
pcr_options(const guint32 *pcrs, gsize n)
{
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);

	g_variant_dict_insert_value(d, "pcrs",
				    g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, pcrs, n, 4));
	return g_variant_dict_end(d);
}

static GBytes *
seal_ok(GBytes *data, GVariant *options)
{
	g_autoptr(GError) error = NULL;
	GBytes *blob = tkms_client_seal_sync(CLIENT, data, options, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(blob);
	return blob;
}

static GBytes *
unseal_ok(GBytes *blob)
{
	g_autoptr(GError) error = NULL;
	GBytes *data = tkms_client_unseal_sync(CLIENT, blob, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(data);
	return data;
}

static void
check_header(GBytes *blob, guint32 pcr_mask)
{
	gsize len;
	const guint8 *b = g_bytes_get_data(blob, &len);

	g_assert_cmpuint(len, >, 16);
	g_assert_cmpmem(b, 4, "TKSB", 4);
	g_assert_cmpuint(b[4], ==, 2);
	g_assert_cmpuint(GUINT32_FROM_BE(*(const guint32 *)(b + 8)), ==, getuid());
	g_assert_cmpuint(GUINT32_FROM_BE(*(const guint32 *)(b + 12)), ==, pcr_mask);
}

static void
test_roundtrip(gconstpointer user_data)
{
	gsize size = GPOINTER_TO_SIZE(user_data);
	g_autoptr(GBytes) data = tkms_test_bytes_pattern(size, (guint32)size + 1000);
	g_autoptr(GBytes) blob = seal_ok(data, NULL);
	g_autoptr(GBytes) blob2 = seal_ok(data, NULL);
	g_autoptr(GBytes) back = unseal_ok(blob);
	g_autoptr(GBytes) back2 = unseal_ok(blob2);
	g_autoptr(GBytes) back_again = unseal_ok(blob);

	check_header(blob, 0);
	tkms_assert_bytes_equal(back, data);
	tkms_assert_bytes_equal(back2, data);
	tkms_assert_bytes_equal(back_again, data);
	/* A fresh data key and IV each time. */
	g_assert_false(g_bytes_equal(blob, blob2));
	g_assert_cmpuint(g_bytes_get_size(blob), >=, size + TAG_LEN + 12);
	if (size >= 8)
		g_assert_false(tkms_test_bytes_contain(blob, g_bytes_get_data(data, NULL), 8));
}

static void
test_bad_input(void)
{
	g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
	g_autoptr(GBytes) big = tkms_test_bytes_pattern(MIB + 1, 1);
	g_autoptr(GBytes) data = tkms_test_bytes_str("x");
	guint32 pcr24[] = {24};
	guint32 pcr_many[] = {0, 7, 16, 255};

	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) blob = tkms_client_seal_sync(CLIENT, empty, NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(blob);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) blob = tkms_client_seal_sync(CLIENT, big, NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
		g_assert_null(blob);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) blob =
			tkms_client_seal_sync(CLIENT, data, pcr_options(pcr24, 1), NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(blob);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) blob = tkms_client_seal_sync(
			CLIENT, data, pcr_options(pcr_many, G_N_ELEMENTS(pcr_many)), NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(blob);
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		const gchar *strv[] = {"16", NULL};
		g_autoptr(GBytes) blob = NULL;
		g_variant_dict_insert(d, "pcrs", "^as", strv);
		blob = tkms_client_seal_sync(CLIENT, data, g_variant_dict_end(d), NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(blob);
	}
}

static void
test_garbage(void)
{
	g_autoptr(GBytes) data = tkms_test_bytes_str("garbage test data");
	g_autoptr(GBytes) blob = seal_ok(data, NULL);
	g_autoptr(GBytes) random = tkms_test_bytes_pattern(300, 2);
	g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
	g_autoptr(GBytes) magic_only = tkms_test_bytes_str("TKSB");
	g_autoptr(GBytes) header_only = tkms_test_bytes_truncate(blob, 16);
	g_autoptr(GBytes) half = tkms_test_bytes_truncate(blob, g_bytes_get_size(blob) / 2);
	g_autoptr(GBytes) bad_magic = tkms_test_bytes_xor_byte(blob, 0, 0x01);
	g_autoptr(GBytes) bad_format = tkms_test_bytes_xor_byte(blob, 4, 0x02);
	g_autoptr(GBytes) ciphertext = NULL;
	GBytes *cases[] = {random, empty, magic_only, header_only, half, bad_magic, bad_format,
			   NULL};

	/* An Encrypt ciphertext is not a blob either. */
	{
		g_autofree gchar *key = tkms_test_key_name("seal-aes");
		g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, key, "aes-256-gcm", NULL);
		g_autoptr(GError) error = NULL;
		ciphertext = tkms_client_encrypt_sync(CLIENT, key, data, NULL, NULL, &error);
		g_assert_no_error(error);
		cases[G_N_ELEMENTS(cases) - 1] = ciphertext;
	}
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = tkms_client_unseal_sync(CLIENT, cases[i], NULL, &error);
		g_test_message("garbage case %u (%zu bytes)", i, g_bytes_get_size(cases[i]));
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(out);
	}
	/* One byte short: truncated (malformed) or the tag does not match. */
	{
		g_autoptr(GBytes) cut = tkms_test_bytes_truncate(blob, g_bytes_get_size(blob) - 1);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = tkms_client_unseal_sync(CLIENT, cut, NULL, &error);
		tkms_assert_error_one_of(error, TKMS_ERROR_INVALID_ARGUMENT,
					 TKMS_ERROR_INTEGRITY_FAILURE);
		g_assert_null(out);
	}
}

/* A changed byte in the encrypted part (ciphertext, tag, IV) is an IntegrityFailure. */
static void
test_tamper_ciphertext(void)
{
	g_autoptr(GBytes) data = tkms_test_bytes_pattern(100, 3);
	g_autoptr(GBytes) blob = seal_ok(data, NULL);
	gsize len = g_bytes_get_size(blob);
	gsize body = len - TAG_LEN - 100;
	gsize offsets[] = {body, body + 50, body + 99, len - TAG_LEN, len - 1,
			   body - 4 - 1 /* last IV byte */, body - 4 - 12 /* first IV byte */};

	for (guint i = 0; i < G_N_ELEMENTS(offsets); i++) {
		g_autoptr(GBytes) bad = tkms_test_bytes_xor_byte(blob, offsets[i], 0x40);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = tkms_client_unseal_sync(CLIENT, bad, NULL, &error);
		g_test_message("changed byte %zu of %zu", offsets[i], len);
		tkms_assert_error(error, TKMS_ERROR_INTEGRITY_FAILURE);
		g_assert_null(out);
	}
}

/* Expected TPM refusals are tkmsd's to report: tpm2-tss's own ERROR lines stay out of its log. */
static void
assert_no_tss_errors(void)
{
	g_autofree gchar *log = tkms_test_env_get_daemon_log(env);
	g_assert_nonnull(log);
	g_assert_null(strstr(log, "ERROR:esys"));
}

/* Every changed byte anywhere in a blob is refused, never unsealed. */
static void
test_tamper_everywhere(void)
{
	g_autoptr(GBytes) data = tkms_test_bytes_str("z");
	g_autoptr(GBytes) blob = seal_ok(data, NULL);
	gsize len = g_bytes_get_size(blob);

	for (gsize i = 0; i < len; i++) {
		g_autoptr(GBytes) bad = tkms_test_bytes_xor_byte(blob, i, 0x01);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = tkms_client_unseal_sync(CLIENT, bad, NULL, &error);
		if (out != NULL || error == NULL || error->domain != TKMS_ERROR ||
		    error->code == TKMS_ERROR_FAILED)
			g_test_message("byte %zu of %zu was not refused properly", i, len);
		g_assert_null(out);
		tkms_assert_error_one_of(error, TKMS_ERROR_INVALID_ARGUMENT,
					 TKMS_ERROR_INTEGRITY_FAILURE,
					 TKMS_ERROR_PERMISSION_DENIED, TKMS_ERROR_POLICY_MISMATCH);
	}
	{
		g_autoptr(GBytes) back = unseal_ok(blob);
		tkms_assert_bytes_equal(back, data);
	}
	assert_no_tss_errors();
}

/* A blob sealed by root cannot be unsealed by another uid, even holding the bytes. */
static void
test_other_user(void)
{
	const gchar *helper = tkms_test_helper_path();
	g_autoptr(GBytes) data = tkms_test_bytes_str("root's secret");
	g_autoptr(GBytes) blob = seal_ok(data, NULL);
	g_autofree gchar *path = tkms_test_write_file(tkms_test_env_get_tmp_dir(env), "root.blob",
						      blob);
	const gchar *argv[] = {helper, "unseal", path, NULL};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	g_assert_nonnull(helper);
	tkms_test_env_run_as_user(env, argv, &out, &err, &status, &error);
	g_assert_no_error(error);
	g_test_message("nobody's unseal: %s%s", out, err);
	g_assert_cmpint(status, ==, 2);
	g_assert_true(g_str_has_prefix(out, "ERROR PermissionDenied"));
	/* Changing the owner field to nobody's uid does not help either. */
	{
		g_autoptr(GByteArray) copy = g_byte_array_new();
		g_autoptr(GBytes) forged = NULL;
		g_autofree gchar *forged_path = NULL;
		g_autofree gchar *out2 = NULL;
		const gchar *argv2[] = {helper, "unseal", NULL, NULL};
		guint32 uid_be = GUINT32_TO_BE(TKMS_TEST_OTHER_UID);

		g_byte_array_append(copy, g_bytes_get_data(blob, NULL),
				    (guint)g_bytes_get_size(blob));
		memcpy(copy->data + 8, &uid_be, 4);
		forged = g_byte_array_free_to_bytes(g_steal_pointer(&copy));
		forged_path = tkms_test_write_file(tkms_test_env_get_tmp_dir(env), "forged.blob",
						   forged);
		argv2[2] = forged_path;
		tkms_test_env_run_as_user(env, argv2, &out2, NULL, &status, &error);
		g_assert_no_error(error);
		g_test_message("nobody's unseal of the forged blob: %s", out2);
		g_assert_cmpint(status, ==, 2);
		g_assert_true(g_str_has_prefix(out2, "ERROR IntegrityFailure"));
	}
	/* Root still can. */
	{
		g_autoptr(GBytes) back = unseal_ok(blob);
		tkms_assert_bytes_equal(back, data);
	}
}

/* PCR binding: blobs and keys bound to PCR 16 stop working when it is extended, and work
 * again when the TPM restarts (PCR 16 back to its reset value). */
static void
test_pcr(void)
{
	guint32 pcr16[] = {16};
	guint32 pcr_multi[] = {0, 16, 23};
	g_autoptr(GBytes) data = tkms_test_bytes_str("bound to PCR 16");
	g_autoptr(GBytes) blob = seal_ok(data, pcr_options(pcr16, 1));
	g_autoptr(GBytes) blob_multi = seal_ok(data, pcr_options(pcr_multi, 3));
	g_autoptr(GBytes) blob_free = seal_ok(data, NULL);
	g_autofree gchar *aes = tkms_test_key_name("pcr-aes");
	g_autofree gchar *hmac = tkms_test_key_name("pcr-hmac");
	g_autofree gchar *ec = tkms_test_key_name("pcr-ec");
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, aes, "aes-256-gcm",
						      pcr_options(pcr16, 1));
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, hmac, "hmac-sha256",
						      pcr_options(pcr16, 1));
	g_autoptr(GVariant) i3 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256",
						      pcr_options(pcr16, 1));
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) mac = NULL;
	g_autoptr(GBytes) sig = NULL;
	g_autoptr(GError) error = NULL;

	check_header(blob, 1u << 16);
	check_header(blob_multi, (1u << 0) | (1u << 16) | (1u << 23));
	{
		g_autoptr(GBytes) back = unseal_ok(blob);
		g_autoptr(GBytes) back_multi = unseal_ok(blob_multi);
		tkms_assert_bytes_equal(back, data);
		tkms_assert_bytes_equal(back_multi, data);
	}
	ct = tkms_client_encrypt_sync(CLIENT, aes, data, NULL, NULL, &error);
	g_assert_no_error(error);
	mac = tkms_client_hmac_sync(CLIENT, hmac, data, NULL, &error);
	g_assert_no_error(error);
	sig = tkms_client_sign_sync(CLIENT, ec, data, NULL, &error);
	g_assert_no_error(error);

	/* Extend PCR 16 (tkmsd is restarted around tpm2_pcrextend). */
	tkms_test_env_extend_pcr(env, 16, &error);
	g_assert_no_error(error);

	{
		g_autoptr(GBytes) out = tkms_client_unseal_sync(CLIENT, blob, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_POLICY_MISMATCH);
		g_assert_null(out);
		g_clear_error(&error);
		out = tkms_client_unseal_sync(CLIENT, blob_multi, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_POLICY_MISMATCH);
		g_clear_error(&error);
	}
	{
		g_autoptr(GBytes) out = tkms_client_encrypt_sync(CLIENT, aes, data, NULL, NULL,
								 &error);
		tkms_assert_error(error, TKMS_ERROR_POLICY_MISMATCH);
		g_assert_null(out);
		g_clear_error(&error);
		out = tkms_client_decrypt_sync(CLIENT, aes, ct, NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_POLICY_MISMATCH);
		g_clear_error(&error);
		out = tkms_client_hmac_sync(CLIENT, hmac, data, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_POLICY_MISMATCH);
		g_clear_error(&error);
		out = tkms_client_sign_sync(CLIENT, ec, data, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_POLICY_MISMATCH);
		g_clear_error(&error);
	}
	assert_no_tss_errors();
	{
		/* ... but tkmsd says what happened */
		g_autofree gchar *log = tkms_test_env_get_daemon_log(env);
		g_assert_nonnull(strstr(log, "PolicyMismatch"));
	}
	/* Unbound blobs are unaffected; new bindings use the new value. */
	{
		g_autoptr(GBytes) back = unseal_ok(blob_free);
		g_autoptr(GBytes) blob_new = seal_ok(data, pcr_options(pcr16, 1));
		g_autoptr(GBytes) back_new = unseal_ok(blob_new);
		tkms_assert_bytes_equal(back, data);
		tkms_assert_bytes_equal(back_new, data);
	}

	/* A TPM restart resets PCR 16: the original bindings hold again. */
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	tkms_test_env_stop_tpm(env, &error);
	g_assert_no_error(error);
	tkms_test_env_start_tpm(env, &error);
	g_assert_no_error(error);
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GBytes) back = unseal_ok(blob);
		g_autoptr(GBytes) pt = NULL;
		g_autoptr(GBytes) mac2 = NULL;
		gboolean valid = FALSE;

		tkms_assert_bytes_equal(back, data);
		pt = tkms_client_decrypt_sync(CLIENT, aes, ct, NULL, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(pt, data);
		mac2 = tkms_client_hmac_sync(CLIENT, hmac, data, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(mac2, mac);
		tkms_client_verify_sync(CLIENT, ec, data, sig, &valid, NULL, &error);
		g_assert_no_error(error);
		g_assert_true(valid);
	}
}

static void
test_random(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) a = tkms_client_get_random_sync(CLIENT, 32, NULL, &error);
	g_autoptr(GBytes) b = NULL;
	g_autoptr(GBytes) one = NULL;
	g_autoptr(GBytes) big = NULL;
	g_autoptr(GBytes) zeros = g_bytes_new_take(g_malloc0(32), 32);

	g_assert_no_error(error);
	b = tkms_client_get_random_sync(CLIENT, 32, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(a), ==, 32);
	g_assert_cmpuint(g_bytes_get_size(b), ==, 32);
	g_assert_false(g_bytes_equal(a, b));
	g_assert_false(g_bytes_equal(a, zeros));

	one = tkms_client_get_random_sync(CLIENT, 1, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(one), ==, 1);

	/* More than one TPM2_GetRandom's worth, and not constant. */
	big = tkms_client_get_random_sync(CLIENT, 4096, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(big), ==, 4096);
	{
		gboolean seen[256] = {FALSE};
		guint distinct = 0;
		const guint8 *d = g_bytes_get_data(big, NULL);
		for (guint i = 0; i < 4096; i++)
			if (!seen[d[i]]) {
				seen[d[i]] = TRUE;
				distinct++;
			}
		g_assert_cmpuint(distinct, >, 200);
		g_assert_false(tkms_test_bytes_contain(big, g_bytes_get_data(a, NULL), 32));
	}
}

static void
test_random_bad(void)
{
	guint lengths[] = {0};
	guint over[] = {MIB + 1, G_MAXUINT32};

	for (guint i = 0; i < G_N_ELEMENTS(lengths); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) r = tkms_client_get_random_sync(CLIENT, lengths[i], NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(r);
	}
	for (guint i = 0; i < G_N_ELEMENTS(over); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) r = tkms_client_get_random_sync(CLIENT, over[i], NULL, &error);
		g_test_message("length %u", over[i]);
		tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
		g_assert_null(r);
	}
}

/* DESIGN: only this TPM *and this caller's uid* can unseal. Someone with direct TPM access and
 * a copy of the blob (but not tkmsd's state directory) loads its sealed object under the
 * recreated SRK and is refused: the object's auth value comes from a key only tkmsd holds. */
static void
test_direct_tpm(void)
{
	g_autoptr(GBytes) data = tkms_test_bytes_str("not for direct TPM users");
	g_autoptr(GBytes) blob = seal_ok(data, NULL);
	g_autofree gchar *path = g_build_filename(tkms_test_env_get_tmp_dir(env), "direct.blob",
						  NULL);
	const gchar *prog = g_getenv("TKMS_TEST_DIRECT_UNSEAL");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	gint status = -1;

	g_assert_nonnull(prog);
	g_assert_true(g_file_set_contents(path, g_bytes_get_data(blob, NULL),
					  g_bytes_get_size(blob), NULL));
	/* swtpm serves one connection at a time */
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	{
		const gchar *argv[] = {prog, tkms_test_env_get_tcti(env), path, NULL};
		g_assert_true(tkms_test_env_run(env, argv, &out, NULL, &status, &error));
		g_assert_no_error(error);
	}
	g_test_message("direct unseal: %s", out);
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, 0);
	{
		g_autoptr(GBytes) back = tkms_client_unseal_sync(CLIENT, blob, NULL, &error);
		g_assert_no_error(error);
		g_assert_true(g_bytes_equal(back, data));
	}
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	/* /seal/pcr binds to PCRs 16 and 23: they can be reset, which the test relies on */
	env = tkms_test_env_new_or_abort("[tpm]\nAllowResettablePcrs=true\n");

	g_test_add_data_func("/seal/roundtrip/1", GSIZE_TO_POINTER(1), test_roundtrip);
	g_test_add_data_func("/seal/roundtrip/100", GSIZE_TO_POINTER(100), test_roundtrip);
	g_test_add_data_func("/seal/roundtrip/65536", GSIZE_TO_POINTER(65536), test_roundtrip);
	g_test_add_func("/seal/bad-input", test_bad_input);
	g_test_add_func("/seal/garbage", test_garbage);
	g_test_add_func("/seal/tamper-ciphertext", test_tamper_ciphertext);
	g_test_add_func("/seal/tamper-everywhere", test_tamper_everywhere);
	g_test_add_func("/seal/other-user", test_other_user);
	g_test_add_func("/seal/pcr", test_pcr);
	g_test_add_func("/seal/direct-tpm", test_direct_tpm);
	g_test_add_func("/random/basic", test_random);
	g_test_add_func("/random/bad-length", test_random_bad);

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	return ret;
}
