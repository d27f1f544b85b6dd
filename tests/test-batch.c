/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-batch"

/* EncryptBatch, DecryptBatch, SignBatch and HmacBatch against tkmsd on swtpm, through
 * libtkms: each gives what the single calls give (round trips, signatures that Verify
 * accepts, MACs equal to Hmac's), the limits (1,024 items, MaxPayload in all, checked before
 * polkit), one bad item fails the batch naming its index, an empty batch and password keys are
 * refused, every item has its audit record, and max-uses is crossed as by single calls. */

#include <string.h>

#include "tkms-test-polkit.h"
#include "tkms-test-util.h"

static TkmsTestEnv *env;
#define CLIENT	 (tkms_test_env_get_client(env))
#define MIB	 (1024 * 1024)
#define OVERHEAD 40 /* a ciphertext's header, IV and tag */

static gchar *aes_key;
static gchar *ec_key;
static gchar *rsa_key;
static gchar *hmac_key;

/* n items of size bytes each (size G_MAXSIZE: sizes 1, 2, 3, ...), distinct contents */
static GPtrArray *
items_new(guint n, gsize size)
{
	GPtrArray *items = g_ptr_array_new_full(n, (GDestroyNotify)g_bytes_unref);

	for (guint i = 0; i < n; i++)
		g_ptr_array_add(items,
				tkms_test_bytes_pattern(size == G_MAXSIZE ? i + 1 : size, i + 1));
	return items;
}

/* Puts item (taken) at index, in place of what was there. */
static void
replace_item(GPtrArray *items, guint index, GBytes *item)
{
	g_bytes_unref(g_ptr_array_index(items, index));
	g_ptr_array_index(items, index) = item;
}

static void
assert_items_equal(GPtrArray *a, GPtrArray *b)
{
	g_assert_nonnull(a);
	g_assert_nonnull(b);
	g_assert_cmpuint(a->len, ==, b->len);
	for (guint i = 0; i < a->len; i++)
		tkms_assert_bytes_equal(g_ptr_array_index(a, i), g_ptr_array_index(b, i));
}

static GPtrArray *
encrypt_batch_ok(const gchar *key, GPtrArray *items, GBytes *context)
{
	g_autoptr(GError) error = NULL;
	GPtrArray *out = tkms_client_encrypt_batch_sync(CLIENT, key, items, context, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(out);
	g_assert_cmpuint(out->len, ==, items->len);
	return out;
}

static GPtrArray *
decrypt_batch_ok(const gchar *key, GPtrArray *items, GBytes *context)
{
	g_autoptr(GError) error = NULL;
	GPtrArray *out = tkms_client_decrypt_batch_sync(CLIENT, key, items, context, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(out);
	return out;
}

/* The key version a ciphertext names (format 1: big-endian at offset 8). */
static guint32
ct_version(GBytes *ct)
{
	const guint8 *p = g_bytes_get_data(ct, NULL);
	g_assert_cmpuint(g_bytes_get_size(ct), >=, OVERHEAD);
	return (guint32)p[8] << 24 | (guint32)p[9] << 16 | (guint32)p[10] << 8 | p[11];
}

static void
assert_error_item(GError *error, TkmsError code, guint index)
{
	g_autofree gchar *prefix = g_strdup_printf("item %u: ", index);

	tkms_assert_error(error, code);
	if (!g_str_has_prefix(error->message, prefix))
		g_error("the message does not start with \"%s\": %s", prefix, error->message);
}

/* ---- round trips ---- */

static void
async_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	*(GAsyncResult **)user_data = g_object_ref(res);
}

/* EncryptBatch then DecryptBatch gives the items back; each ciphertext also decrypts alone
 * (and a single Encrypt's in a batch); every ciphertext has its own IV; the async form gives
 * the same; a batch over 64 KiB in all (AES-GCM in a thread) too. */
static void
test_encrypt_roundtrip(void)
{
	g_autoptr(GPtrArray) items = items_new(64, G_MAXSIZE);
	g_autoptr(GBytes) ctx = tkms_test_bytes_str("batch context");
	g_autoptr(GPtrArray) cts = encrypt_batch_ok(aes_key, items, ctx);
	g_autoptr(GPtrArray) back = decrypt_batch_ok(aes_key, cts, ctx);
	g_autoptr(GHashTable) ivs = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
							  (GDestroyNotify)g_bytes_unref, NULL);
	g_autoptr(GError) error = NULL;

	assert_items_equal(back, items);
	for (guint i = 0; i < cts->len; i++) {
		GBytes *ct = g_ptr_array_index(cts, i);
		g_autoptr(GBytes) iv = g_bytes_new_from_bytes(ct, 12, 12);

		g_assert_cmpuint(g_bytes_get_size(ct), ==, i + 1 + OVERHEAD);
		g_assert_true(g_hash_table_add(ivs, g_steal_pointer(&iv)));
	}
	{
		g_autoptr(GBytes) pt = tkms_client_decrypt_sync(
			CLIENT, aes_key, g_ptr_array_index(cts, 17), ctx, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(pt, g_ptr_array_index(items, 17));
	}
	{
		g_autoptr(GBytes) ct = tkms_client_encrypt_sync(
			CLIENT, aes_key, g_ptr_array_index(items, 3), ctx, NULL, &error);
		g_autoptr(GPtrArray) one = g_ptr_array_new_full(1, (GDestroyNotify)g_bytes_unref);
		g_autoptr(GPtrArray) pts = NULL;
		g_assert_no_error(error);
		g_ptr_array_add(one, g_steal_pointer(&ct));
		pts = decrypt_batch_ok(aes_key, one, ctx);
		g_assert_cmpuint(pts->len, ==, 1);
		tkms_assert_bytes_equal(g_ptr_array_index(pts, 0), g_ptr_array_index(items, 3));
	}
	{
		GAsyncResult *res = NULL;
		g_autoptr(GPtrArray) acts = NULL;
		g_autoptr(GPtrArray) apts = NULL;

		tkms_client_encrypt_batch(CLIENT, aes_key, items, ctx, NULL, async_done, &res);
		while (res == NULL)
			g_main_context_iteration(NULL, TRUE);
		acts = tkms_client_encrypt_batch_finish(CLIENT, res, &error);
		g_clear_object(&res);
		g_assert_no_error(error);
		tkms_client_decrypt_batch(CLIENT, aes_key, acts, ctx, NULL, async_done, &res);
		while (res == NULL)
			g_main_context_iteration(NULL, TRUE);
		apts = tkms_client_decrypt_batch_finish(CLIENT, res, &error);
		g_clear_object(&res);
		g_assert_no_error(error);
		assert_items_equal(apts, items);
	}
	{
		g_autoptr(GPtrArray) big = items_new(5, 100 * 1024);
		g_autoptr(GPtrArray) bcts = encrypt_batch_ok(aes_key, big, NULL);
		g_autoptr(GPtrArray) bpts = decrypt_batch_ok(aes_key, bcts, NULL);
		assert_items_equal(bpts, big);
	}
	/* the context binds every item */
	{
		g_autoptr(GBytes) other = tkms_test_bytes_str("other context");
		g_autoptr(GPtrArray) none =
			tkms_client_decrypt_batch_sync(CLIENT, aes_key, cts, other, NULL, &error);
		assert_error_item(error, TKMS_ERROR_INTEGRITY_FAILURE, 0);
		g_assert_null(none);
	}
}

/* Items under different versions decrypt in one batch (one unseal per version). */
static void
test_decrypt_versions(void)
{
	g_autofree gchar *name = tkms_test_key_name("batch-rot");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	g_autoptr(GPtrArray) items = items_new(6, 20);
	g_autoptr(GPtrArray) cts = g_ptr_array_new_full(6, (GDestroyNotify)g_bytes_unref);
	g_autoptr(GPtrArray) back = NULL;
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < items->len; i++) {
		g_autoptr(GBytes) ct = tkms_client_encrypt_sync(
			CLIENT, name, g_ptr_array_index(items, i), NULL, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(ct_version(ct), ==, i / 2 + 1);
		g_ptr_array_add(cts, g_steal_pointer(&ct));
		if (i % 2 == 1) {
			tkms_client_rotate_key_sync(CLIENT, name, NULL, &error);
			g_assert_no_error(error);
		}
	}
	back = decrypt_batch_ok(name, cts, NULL);
	assert_items_equal(back, items);
}

static gboolean
verify(const gchar *key, GBytes *data, GBytes *sig)
{
	g_autoptr(GError) error = NULL;
	gboolean valid = FALSE;

	g_assert_true(tkms_client_verify_sync(CLIENT, key, data, sig, &valid, NULL, &error));
	g_assert_no_error(error);
	return valid;
}

/* Every signature of SignBatch verifies with Verify, for its own message only (ECDSA and
 * RSA, empty messages included). */
static void
test_sign(gconstpointer data)
{
	const gchar *key = *(const gchar *const *)data;
	g_autoptr(GPtrArray) items = items_new(40, G_MAXSIZE);
	g_autoptr(GPtrArray) sigs = NULL;
	g_autoptr(GError) error = NULL;

	g_ptr_array_add(items, g_bytes_new_static("", 0));
	sigs = tkms_client_sign_batch_sync(CLIENT, key, items, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(sigs->len, ==, items->len);
	for (guint i = 0; i < items->len; i++) {
		g_assert_true(verify(key, g_ptr_array_index(items, i), g_ptr_array_index(sigs, i)));
		g_assert_false(verify(key, g_ptr_array_index(items, (i + 1) % items->len),
				      g_ptr_array_index(sigs, i)));
	}
}

/* HmacBatch equals Hmac item by item, messages longer than one TPM command (1 KiB) and
 * empty ones included. */
static void
test_hmac(void)
{
	g_autoptr(GPtrArray) items = items_new(30, G_MAXSIZE);
	g_autoptr(GPtrArray) macs = NULL;
	g_autoptr(GError) error = NULL;

	g_ptr_array_insert(items, 0, tkms_test_bytes_pattern(5000, 77));
	g_ptr_array_insert(items, 10, tkms_test_bytes_pattern(1025, 78));
	g_ptr_array_insert(items, 11, tkms_test_bytes_pattern(1024, 79));
	g_ptr_array_add(items, g_bytes_new_static("", 0));
	g_ptr_array_add(items, tkms_test_bytes_pattern(3000, 80));
	macs = tkms_client_hmac_batch_sync(CLIENT, hmac_key, items, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(macs->len, ==, items->len);
	for (guint i = 0; i < items->len; i++) {
		g_autoptr(GBytes) mac = tkms_client_hmac_sync(
			CLIENT, hmac_key, g_ptr_array_index(items, i), NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(g_bytes_get_size(mac), ==, 32);
		tkms_assert_bytes_equal(g_ptr_array_index(macs, i), mac);
	}
}

/* A key bound to a PCR: its policy session is asserted again for every item (the TPM resets
 * a policy session after each command it authorizes). */
static void
test_pcr_bound(void)
{
	g_autofree gchar *ec = tkms_test_key_name("batch-pcr-ec");
	g_autofree gchar *hm = tkms_test_key_name("batch-pcr-hm");
	const guint32 pcr[] = {7};
	g_autoptr(GVariant) i1 = tkms_test_create_key(
		CLIENT, ec, "ecdsa-p256",
		g_variant_new_parsed("{'pcrs': <%@au>}",
				     g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, pcr, 1, 4)));
	g_autoptr(GVariant) i2 = tkms_test_create_key(
		CLIENT, hm, "hmac-sha256",
		g_variant_new_parsed("{'pcrs': <%@au>}",
				     g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, pcr, 1, 4)));
	g_autoptr(GPtrArray) items = items_new(5, G_MAXSIZE);
	g_autoptr(GPtrArray) sigs = NULL;
	g_autoptr(GPtrArray) macs = NULL;
	g_autoptr(GError) error = NULL;

	sigs = tkms_client_sign_batch_sync(CLIENT, ec, items, NULL, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < items->len; i++)
		g_assert_true(verify(ec, g_ptr_array_index(items, i), g_ptr_array_index(sigs, i)));
	macs = tkms_client_hmac_batch_sync(CLIENT, hm, items, NULL, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < items->len; i++) {
		g_autoptr(GBytes) mac = tkms_client_hmac_sync(
			CLIENT, hm, g_ptr_array_index(items, i), NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(g_ptr_array_index(macs, i), mac);
	}
}

/* ---- limits ---- */

/* libtkms waits 120 s for a reply. 1,024 TPM commands, each with a session HMAC that ESYS
 * computes in OpenSSL, take longer than that with tkmsd under valgrind (./run_tests.sh
 * --valgrind): the largest SignBatch and HmacBatch go straight on the bus, with that timeout
 * times TKMS_TEST_TIMEOUT_FACTOR. */
#define TPM_BATCH_TIMEOUT_MS (120 * 1000)

static GPtrArray *
tpm_batch_sync(const gchar *method, const gchar *key, GPtrArray *items, GError **error)
{
	GVariantBuilder b;
	g_autoptr(GVariant) r = NULL;
	g_autoptr(GVariant) outs = NULL;
	GPtrArray *out;

	g_variant_builder_init(&b, G_VARIANT_TYPE("aay"));
	for (guint i = 0; i < items->len; i++)
		g_variant_builder_add_value(
			&b, g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING,
						     g_ptr_array_index(items, i), TRUE));
	r = g_dbus_connection_call_sync(
		tkms_test_env_get_connection(env), "org.tkms.KeyManager", "/org/tkms/KeyManager",
		"org.tkms.KeyManager", method, g_variant_new("(saay)", key, &b),
		G_VARIANT_TYPE("(aay)"), G_DBUS_CALL_FLAGS_NONE,
		TPM_BATCH_TIMEOUT_MS * tkms_test_timeout_factor(), NULL, error);
	if (r == NULL)
		return NULL;
	g_variant_get(r, "(@aay)", &outs);
	out = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	for (gsize i = 0; i < g_variant_n_children(outs); i++) {
		g_autoptr(GVariant) item = g_variant_get_child_value(outs, i);
		g_ptr_array_add(out, g_variant_get_data_as_bytes(item));
	}
	return out;
}

/* 1,024 items work for each method, 1,025 are LimitExceeded; so is more than MaxPayload in
 * all, while exactly MaxPayload of plaintext works both ways (the ciphertexts are longer by
 * their framing). */
static void
test_limits(void)
{
	g_autoptr(GPtrArray) items = items_new(1024, 16);
	g_autoptr(GPtrArray) over = items_new(1025, 16);
	g_autoptr(GPtrArray) cts = encrypt_batch_ok(aes_key, items, NULL);
	g_autoptr(GPtrArray) back = decrypt_batch_ok(aes_key, cts, NULL);
	g_autoptr(GPtrArray) out = NULL;
	g_autoptr(GError) error = NULL;

	assert_items_equal(back, items);
	out = tpm_batch_sync("SignBatch", ec_key, items, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(out->len, ==, 1024);
	g_clear_pointer(&out, g_ptr_array_unref);
	out = tpm_batch_sync("HmacBatch", hmac_key, items, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(out->len, ==, 1024);
	g_clear_pointer(&out, g_ptr_array_unref);

	out = tkms_client_encrypt_batch_sync(CLIENT, aes_key, over, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	g_assert_nonnull(strstr(error->message, "1025 items"));
	g_assert_null(out);
	g_clear_error(&error);
	g_ptr_array_add(cts, g_bytes_ref(g_ptr_array_index(cts, 0)));
	out = tkms_client_decrypt_batch_sync(CLIENT, aes_key, cts, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	g_clear_error(&error);
	out = tkms_client_sign_batch_sync(CLIENT, ec_key, over, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	g_clear_error(&error);
	out = tkms_client_hmac_batch_sync(CLIENT, hmac_key, over, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	g_clear_error(&error);

	/* MaxPayload (1 MiB) in all */
	{
		g_autoptr(GPtrArray) half = items_new(2, MIB / 2);
		g_autoptr(GPtrArray) big = items_new(2, MIB / 2);
		g_autoptr(GPtrArray) hcts = encrypt_batch_ok(aes_key, half, NULL);
		g_autoptr(GPtrArray) hpts = decrypt_batch_ok(aes_key, hcts, NULL);

		assert_items_equal(hpts, half);
		g_ptr_array_add(big, tkms_test_bytes_pattern(1, 9));
		out = tkms_client_encrypt_batch_sync(CLIENT, aes_key, big, NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
		g_assert_nonnull(strstr(error->message, "1048577 bytes"));
		g_clear_error(&error);
		out = tkms_client_sign_batch_sync(CLIENT, ec_key, big, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
		g_clear_error(&error);
		out = tkms_client_hmac_batch_sync(CLIENT, hmac_key, big, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
		g_clear_error(&error);
		/* a ciphertext's framing is allowed, not more */
		g_ptr_array_add(hcts, tkms_test_bytes_pattern(OVERHEAD + 1, 10));
		out = tkms_client_decrypt_batch_sync(CLIENT, aes_key, hcts, NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
		g_clear_error(&error);
	}
}

/* The sizes are checked on arrival, before polkit: with every action denied, a batch of
 * 1,025 items or over MaxPayload is still LimitExceeded, a normal one PermissionDenied. */
static void
test_limits_first(void)
{
	g_autoptr(TkmsTestEnv) denied = tkms_test_env_new_or_abort(
		"[limits]\nMaxPayload=4096\n[cache]\nAuthorizationTtl=0\n");
	TkmsClient *client = tkms_test_env_get_client(denied);
	g_autofree gchar *aes = tkms_test_key_name("batch-first");
	g_autoptr(GVariant) info = tkms_test_create_key(client, aes, "aes-256-gcm", NULL);
	g_autoptr(GPtrArray) many = items_new(1025, 1);
	g_autoptr(GPtrArray) big = items_new(5, 1000);
	g_autoptr(GPtrArray) ok = items_new(4, 1000);
	g_autoptr(GPtrArray) out = NULL;
	g_autoptr(GError) error = NULL;

	tkms_test_env_polkit_set_allowed(denied, NULL, &error);
	g_assert_no_error(error);
	out = tkms_client_encrypt_batch_sync(client, aes, many, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	g_clear_error(&error);
	out = tkms_client_hmac_batch_sync(client, aes, big, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	g_assert_nonnull(strstr(error->message, "The batch is 5000 bytes"));
	g_clear_error(&error);
	out = tkms_client_encrypt_batch_sync(client, aes, ok, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_PERMISSION_DENIED);
	g_clear_error(&error);
	out = tkms_client_sign_batch_sync(client, aes, ok, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_PERMISSION_DENIED);
	g_assert_null(out);
}

/* ---- refusals ---- */

/* One bad item fails the whole batch, and the message starts with its index: a tampered
 * ciphertext (IntegrityFailure), one that is not a ciphertext (InvalidArgument), an empty
 * plaintext (InvalidArgument). */
static void
test_bad_item(void)
{
	g_autoptr(GPtrArray) items = items_new(8, 32);
	g_autoptr(GPtrArray) cts = encrypt_batch_ok(aes_key, items, NULL);
	g_autoptr(GPtrArray) out = NULL;
	g_autoptr(GError) error = NULL;

	replace_item(cts, 5, tkms_test_bytes_flip_bit(g_ptr_array_index(cts, 5), 8 * 30));
	out = tkms_client_decrypt_batch_sync(CLIENT, aes_key, cts, NULL, NULL, &error);
	assert_error_item(error, TKMS_ERROR_INTEGRITY_FAILURE, 5);
	g_assert_nonnull(strstr(error->message, "does not authenticate"));
	g_assert_null(out);
	g_clear_error(&error);

	replace_item(cts, 3, tkms_test_bytes_str("not a ciphertext"));
	out = tkms_client_decrypt_batch_sync(CLIENT, aes_key, cts, NULL, NULL, &error);
	assert_error_item(error, TKMS_ERROR_INVALID_ARGUMENT, 3);
	g_clear_error(&error);

	replace_item(items, 2, g_bytes_new_static("", 0));
	out = tkms_client_encrypt_batch_sync(CLIENT, aes_key, items, NULL, NULL, &error);
	assert_error_item(error, TKMS_ERROR_INVALID_ARGUMENT, 2);
	g_assert_null(out);
}

/* An empty batch is InvalidArgument for each method; so are password keys and keys of
 * another type. */
static void
test_refused(void)
{
	g_autoptr(GPtrArray) empty = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_autoptr(GPtrArray) items = items_new(3, 8);
	g_autofree gchar *pw = tkms_test_key_name("batch-pw");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, pw, "password", NULL);
	g_autoptr(GPtrArray) out = NULL;
	g_autoptr(GError) error = NULL;

	out = tkms_client_encrypt_batch_sync(CLIENT, aes_key, empty, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "no plaintexts"));
	g_clear_error(&error);
	out = tkms_client_decrypt_batch_sync(CLIENT, aes_key, empty, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	out = tkms_client_sign_batch_sync(CLIENT, ec_key, empty, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	out = tkms_client_hmac_batch_sync(CLIENT, hmac_key, empty, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	out = tkms_client_encrypt_batch_sync(CLIENT, pw, items, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "password key"));
	g_clear_error(&error);
	out = tkms_client_decrypt_batch_sync(CLIENT, pw, items, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "password key"));
	g_clear_error(&error);
	out = tkms_client_sign_batch_sync(CLIENT, pw, items, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	out = tkms_client_hmac_batch_sync(CLIENT, pw, items, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	out = tkms_client_encrypt_batch_sync(CLIENT, ec_key, items, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	out = tkms_client_sign_batch_sync(CLIENT, hmac_key, items, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	out = tkms_client_hmac_batch_sync(CLIENT, rsa_key, items, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	g_assert_null(out);
}

/* ---- audit ---- */

/* The records of method for key that contain all of the texts. */
static guint
records(const gchar *method, const gchar *key, const gchar *text, const gchar *text2)
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
		if (strstr(lines[i], m) && strstr(lines[i], k) &&
		    (text == NULL || strstr(lines[i], text)) &&
		    (text2 == NULL || strstr(lines[i], text2)))
			n++;
	return n;
}

/* Every item of a batch has its record (with its index and version); a failed batch has
 * one error record naming the item that failed, and no record of success. */
static void
test_audit(void)
{
	g_autofree gchar *name = tkms_test_key_name("batch-audit");
	g_autofree gchar *hm = tkms_test_key_name("batch-audit-hm");
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, hm, "hmac-sha256", NULL);
	g_autoptr(GPtrArray) items = items_new(7, 10);
	g_autoptr(GPtrArray) cts = encrypt_batch_ok(name, items, NULL);
	g_autoptr(GPtrArray) pts = decrypt_batch_ok(name, cts, NULL);
	g_autoptr(GPtrArray) macs = NULL;
	g_autoptr(GError) error = NULL;

	g_assert_cmpuint(records("EncryptBatch", name, "\"result\":\"ok\"", NULL), ==, 7);
	g_assert_cmpuint(records("DecryptBatch", name, "\"result\":\"ok\"", NULL), ==, 7);
	for (guint i = 0; i < 7; i++) {
		g_autofree gchar *detail = g_strdup_printf("\"detail\":\"item %u of 7\"", i);
		g_assert_cmpuint(records("EncryptBatch", name, detail, "\"version\":1,"), ==, 1);
		g_assert_cmpuint(records("DecryptBatch", name, detail, "\"version\":1,"), ==, 1);
	}
	macs = tkms_client_hmac_batch_sync(CLIENT, hm, items, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(records("HmacBatch", hm, "\"result\":\"ok\"", NULL), ==, 7);

	replace_item(cts, 4, tkms_test_bytes_flip_bit(g_ptr_array_index(cts, 4), 8 * 20));
	g_clear_pointer(&pts, g_ptr_array_unref);
	pts = tkms_client_decrypt_batch_sync(CLIENT, name, cts, NULL, NULL, &error);
	assert_error_item(error, TKMS_ERROR_INTEGRITY_FAILURE, 4);
	g_assert_cmpuint(records("DecryptBatch", name, "\"result\":\"ok\"", NULL), ==, 7);
	g_assert_cmpuint(records("DecryptBatch", name, "\"result\":\"error\"",
				 "\"error\":\"IntegrityFailure\",\"detail\":\"item 4 of 7\""),
			 ==, 1);
	/* nothing secret: no item and no output in the log */
	{
		g_autofree gchar *path =
			g_build_filename(tkms_test_env_get_state_dir(env), "audit.log", NULL);
		g_autofree gchar *contents = NULL;
		gsize len = 0;
		g_autoptr(GBytes) log = NULL;

		g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
		log = g_bytes_new_static(contents, len);
		for (guint i = 0; i < items->len; i++) {
			g_assert_false(tkms_test_bytes_contain(
				log, g_bytes_get_data(g_ptr_array_index(items, i), NULL), 10));
			g_assert_false(tkms_test_bytes_contain(
				log, g_bytes_get_data(g_ptr_array_index(macs, i), NULL), 32));
		}
	}
}

/* ---- max-uses ---- */

static GVariant *
key_info(const gchar *name)
{
	g_autoptr(GError) error = NULL;
	GVariant *i = tkms_client_get_key_info_sync(CLIENT, name, NULL, &error);
	g_assert_no_error(error);
	return i;
}

/* uses of a version as GetKeyInfo shows it; G_MAXUINT64 if the version does not exist */
static guint64
uses_of(const gchar *name, guint32 version)
{
	g_autoptr(GVariant) i = key_info(name);
	g_autoptr(GVariant) versions =
		g_variant_lookup_value(i, "versions", G_VARIANT_TYPE("aa{sv}"));

	for (gsize k = 0; k < g_variant_n_children(versions); k++) {
		g_autoptr(GVariant) v = g_variant_get_child_value(versions, k);
		guint32 n = 0;
		guint64 uses = 0;
		g_variant_lookup(v, "version", "u", &n);
		if (n != version)
			continue;
		g_assert_true(g_variant_lookup(v, "uses", "t", &uses));
		return uses;
	}
	return G_MAXUINT64;
}

static void
set_max_uses(const gchar *name, guint64 max)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = g_dbus_connection_call_sync(
		tkms_test_env_get_connection(env), "org.tkms.KeyManager", "/org/tkms/KeyManager",
		"org.tkms.KeyManager", "SetRotationPolicy",
		g_variant_new_parsed("(%s, {'max-uses': <%t>})", name, max), NULL,
		G_DBUS_CALL_FLAGS_NONE, 60000, NULL, &error);
	g_assert_no_error(error);
}

static void
assert_versions(GPtrArray *cts, guint32 version)
{
	for (guint i = 0; i < cts->len; i++)
		g_assert_cmpuint(ct_version(g_ptr_array_index(cts, i)), ==, version);
}

/* A batch counts one use per item, all under one version. With max-uses 10: 4 items then 6
 * use version 1 up (exactly), the next batch is under version 2 (tkmsd rotated, as after a
 * single call at the cap); a batch that does not fit in the uses left (3 left, 5 items) has
 * the key rotated first and goes whole under the new version; more items than max-uses is
 * LimitExceeded. SignBatch counts the same. */
static void
test_max_uses(void)
{
	g_autofree gchar *name = tkms_test_key_name("batch-uses");
	g_autofree gchar *ec = tkms_test_key_name("batch-uses-ec");
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GPtrArray) four = items_new(4, 8);
	g_autoptr(GPtrArray) six = items_new(6, 8);
	g_autoptr(GPtrArray) seven = items_new(7, 8);
	g_autoptr(GPtrArray) five = items_new(5, 8);
	g_autoptr(GPtrArray) eleven = items_new(11, 8);
	g_autoptr(GPtrArray) cts = NULL;
	g_autoptr(GPtrArray) pts = NULL;
	g_autoptr(GPtrArray) sigs = NULL;
	g_autoptr(GError) error = NULL;

	set_max_uses(name, 10);
	cts = encrypt_batch_ok(name, four, NULL);
	assert_versions(cts, 1);
	g_assert_cmpuint(uses_of(name, 1), ==, 4);
	g_clear_pointer(&cts, g_ptr_array_unref);
	cts = encrypt_batch_ok(name, six, NULL);
	assert_versions(cts, 1);
	g_assert_cmpuint(uses_of(name, 1), ==, 10);
	g_clear_pointer(&cts, g_ptr_array_unref);
	cts = encrypt_batch_ok(name, seven, NULL);
	assert_versions(cts, 2);
	g_assert_cmpuint(uses_of(name, 2), ==, 7);
	g_clear_pointer(&cts, g_ptr_array_unref);
	cts = encrypt_batch_ok(name, five, NULL);
	assert_versions(cts, 3);
	/* version 2's three uses left were given up */
	g_assert_cmpuint(uses_of(name, 2), ==, 10);
	g_assert_cmpuint(uses_of(name, 3), ==, 5);
	pts = decrypt_batch_ok(name, cts, NULL);
	assert_items_equal(pts, five);
	g_clear_pointer(&cts, g_ptr_array_unref);
	cts = tkms_client_encrypt_batch_sync(CLIENT, name, eleven, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	g_assert_nonnull(strstr(error->message, "max-uses 10"));
	g_assert_null(cts);
	g_assert_cmpuint(uses_of(name, 3), ==, 5);
	g_clear_error(&error);

	set_max_uses(ec, 5);
	sigs = tkms_client_sign_batch_sync(CLIENT, ec, four, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(uses_of(ec, 1), ==, 4);
	g_clear_pointer(&sigs, g_ptr_array_unref);
	sigs = tkms_client_sign_batch_sync(CLIENT, ec, four, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(uses_of(ec, 1), ==, 5);
	g_assert_cmpuint(uses_of(ec, 2), ==, 4);
	for (guint i = 0; i < four->len; i++)
		g_assert_true(verify(ec, g_ptr_array_index(four, i), g_ptr_array_index(sigs, i)));
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_or_abort(NULL);
	aes_key = tkms_test_key_name("batch-aes");
	ec_key = tkms_test_key_name("batch-ec");
	rsa_key = tkms_test_key_name("batch-rsa");
	hmac_key = tkms_test_key_name("batch-hmac");
	g_variant_unref(tkms_test_create_key(CLIENT, aes_key, "aes-256-gcm", NULL));
	g_variant_unref(tkms_test_create_key(CLIENT, ec_key, "ecdsa-p256", NULL));
	g_variant_unref(tkms_test_create_key(CLIENT, rsa_key, "rsa-2048", NULL));
	g_variant_unref(tkms_test_create_key(CLIENT, hmac_key, "hmac-sha256", NULL));

	g_test_add_func("/batch/encrypt-roundtrip", test_encrypt_roundtrip);
	g_test_add_func("/batch/decrypt-versions", test_decrypt_versions);
	g_test_add_data_func("/batch/sign/ecdsa", &ec_key, test_sign);
	g_test_add_data_func("/batch/sign/rsa", &rsa_key, test_sign);
	g_test_add_func("/batch/hmac", test_hmac);
	g_test_add_func("/batch/pcr-bound", test_pcr_bound);
	g_test_add_func("/batch/limits", test_limits);
	g_test_add_func("/batch/limits-first", test_limits_first);
	g_test_add_func("/batch/bad-item", test_bad_item);
	g_test_add_func("/batch/refused", test_refused);
	g_test_add_func("/batch/audit", test_audit);
	g_test_add_func("/batch/max-uses", test_max_uses);

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	g_free(aes_key);
	g_free(ec_key);
	g_free(rsa_key);
	g_free(hmac_key);
	return ret;
}
