/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-persistence"

/* Keys and blobs survive a restart of tkmsd and of the TPM; the state directory never holds
 * a plaintext, sealed data or a private key in the clear. */

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tkms-test-store.h"
#include "tkms-test-util.h"

#define PLAINTEXT "persistence-plaintext-SECRET-8f3a1c"
#define SEALED "persistence-sealed-SECRET-41d2e7"
#define CONTEXT "persistence-context"

static const gchar *const store_files[] = {"keys.db", "keys.db-wal", "keys.db-shm"};
static const gchar *const types[] = {"aes-256-gcm", "hmac-sha256", "ecdsa-p256", "rsa-2048"};

static void
collect_files(const gchar *dir, GPtrArray *out)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *name;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL) {
		gchar *path = g_build_filename(dir, name, NULL);
		if (g_file_test(path, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
			collect_files(path, out);
			g_free(path);
		} else {
			g_ptr_array_add(out, path);
		}
	}
}

static void
assert_not_in_files(GPtrArray *files, const void *needle, gsize len, const gchar *what)
{
	for (guint i = 0; i < files->len; i++) {
		g_autofree gchar *contents = NULL;
		gsize clen = 0;
		g_autoptr(GBytes) b = NULL;

		g_autoptr(GError) error = NULL;

		/* a running tkmsd replaces audit.head through a temporary file: one listed a
		 * moment ago may be gone (renamed into audit.head, which is read too) */
		if (!g_file_get_contents(files->pdata[i], &contents, &clen, &error) &&
		    g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			continue;
		g_assert_no_error(error);
		b = g_bytes_new_static(contents, clen);
		if (tkms_test_bytes_contain(b, needle, len))
			g_error("%s found in %s", what, (const gchar *)files->pdata[i]);
	}
}

static void
assert_secret_not_in_files(GPtrArray *files, GBytes *secret, const gchar *what)
{
	g_autofree gchar *hex = tkms_test_bytes_to_hex(secret);
	g_autofree gchar *b64 = g_base64_encode(g_bytes_get_data(secret, NULL),
						g_bytes_get_size(secret));
	gsize b64_len = strlen(b64);

	assert_not_in_files(files, g_bytes_get_data(secret, NULL), g_bytes_get_size(secret),
			    what);
	assert_not_in_files(files, hex, strlen(hex), what);
	/* the aligned base64 body (without the padding) */
	while (b64_len > 0 && b64[b64_len - 1] == '=')
		b64_len--;
	if (b64_len > 8)
		assert_not_in_files(files, b64, b64_len - 4, what);
}

static void
test_restart(void)
{
	/* a blob bound to PCR 16 is among what must survive */
	g_autoptr(TkmsTestEnv) env =
		tkms_test_env_new_or_abort("[tpm]\nAllowResettablePcrs=true\n");
	TkmsClient *client = tkms_test_env_get_client(env);
	const gchar *state = tkms_test_env_get_state_dir(env);
	g_autoptr(GBytes) plaintext = tkms_test_bytes_str(PLAINTEXT);
	g_autoptr(GBytes) sealed_data = tkms_test_bytes_str(SEALED);
	g_autoptr(GBytes) context = tkms_test_bytes_str(CONTEXT);
	g_autoptr(GBytes) derive_ctx = tkms_test_bytes_str("derive-ctx");
	g_autoptr(GBytes) ct = NULL, blob = NULL, blob_pcr = NULL, mac = NULL, derived = NULL;
	g_autoptr(GBytes) sig_ec = NULL, sig_rsa = NULL;
	g_autofree gchar *pem_ec = NULL, *pem_rsa = NULL;
	g_autoptr(GVariant) list_before = NULL;
	g_autoptr(GVariant) list_after = NULL;
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *srk_name = NULL;
	g_autofree gchar *srk_path = g_build_filename(state, "srk.name", NULL);
	guint32 pcr16[] = {16};

	for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
		g_autoptr(GVariant) info = tkms_test_create_key(client, types[i], types[i], NULL);
	}
	{
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_variant_dict_insert_value(
			d, "pcrs", g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, pcr16, 1, 4));
		blob_pcr = tkms_client_seal_sync(client, sealed_data, g_variant_dict_end(d), NULL,
						 &error);
		g_assert_no_error(error);
	}
	ct = tkms_client_encrypt_sync(client, "aes-256-gcm", plaintext, context, NULL, &error);
	g_assert_no_error(error);
	blob = tkms_client_seal_sync(client, sealed_data, NULL, NULL, &error);
	g_assert_no_error(error);
	mac = tkms_client_hmac_sync(client, "hmac-sha256", plaintext, NULL, &error);
	g_assert_no_error(error);
	derived = tkms_client_derive_key_sync(client, "hmac-sha256", derive_ctx, 64, NULL, &error);
	g_assert_no_error(error);
	sig_ec = tkms_client_sign_sync(client, "ecdsa-p256", plaintext, NULL, &error);
	g_assert_no_error(error);
	sig_rsa = tkms_client_sign_sync(client, "rsa-2048", plaintext, NULL, &error);
	g_assert_no_error(error);
	pem_ec = tkms_client_get_public_key_sync(client, "ecdsa-p256", NULL, &error);
	g_assert_no_error(error);
	pem_rsa = tkms_client_get_public_key_sync(client, "rsa-2048", NULL, &error);
	g_assert_no_error(error);
	list_before = tkms_client_list_keys_sync(client, NULL, &error);
	g_assert_no_error(error);

	/* Stop both, start both on the same state. */
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	tkms_test_env_stop_tpm(env, &error);
	g_assert_no_error(error);

	/* The state directory, with nothing running. */
	g_assert_true(g_file_get_contents(srk_path, &srk_name, NULL, NULL));
	g_assert_cmpuint(strlen(g_strstrip(srk_name)), >, 0);
	/* the key store and whatever SQLite keeps beside it are private */
	for (guint i = 0; i < G_N_ELEMENTS(store_files); i++) {
		g_autofree gchar *path = g_build_filename(state, store_files[i], NULL);
		GStatBuf st;
		if (i > 0 && !g_file_test(path, G_FILE_TEST_EXISTS))
			continue;
		g_assert_cmpint(g_stat(path, &st), ==, 0);
		g_assert_cmpint(st.st_mode & 077, ==, 0);
	}
	for (guint i = 0; i < G_N_ELEMENTS(types); i++)
		g_assert_true(tkms_test_store_has_key(state, getuid(), types[i]));
	{
		GStatBuf st;
		g_assert_cmpint(g_stat(state, &st), ==, 0);
		g_assert_cmpint(st.st_mode & 077, ==, 0);
	}
	collect_files(state, files);
	g_assert_cmpuint(files->len, >=, G_N_ELEMENTS(types) + 1);
	assert_secret_not_in_files(files, plaintext, "the plaintext");
	assert_secret_not_in_files(files, sealed_data, "the sealed data");
	assert_secret_not_in_files(files, derived, "the derived key");
	assert_not_in_files(files, "PRIVATE KEY", 11, "a PEM private key");
	assert_not_in_files(files, "PRIVATE", 7, "the word PRIVATE");

	tkms_test_env_start_tpm(env, &error);
	g_assert_no_error(error);
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);

	/* Everything still works, with the same results. */
	list_after = tkms_client_list_keys_sync(client, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_variant_equal(list_before, list_after));
	{
		g_autoptr(GBytes) pt =
			tkms_client_decrypt_sync(client, "aes-256-gcm", ct, context, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(pt, plaintext);
	}
	{
		g_autoptr(GBytes) data = tkms_client_unseal_sync(client, blob, NULL, &error);
		g_autoptr(GBytes) data_pcr = NULL;
		g_assert_no_error(error);
		tkms_assert_bytes_equal(data, sealed_data);
		data_pcr = tkms_client_unseal_sync(client, blob_pcr, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(data_pcr, sealed_data);
	}
	{
		g_autoptr(GBytes) mac2 =
			tkms_client_hmac_sync(client, "hmac-sha256", plaintext, NULL, &error);
		gboolean valid = FALSE;
		g_assert_no_error(error);
		tkms_assert_bytes_equal(mac2, mac);
		tkms_client_verify_hmac_sync(client, "hmac-sha256", plaintext, mac, &valid, NULL,
					     &error);
		g_assert_no_error(error);
		g_assert_true(valid);
	}
	{
		g_autoptr(GBytes) d2 = tkms_client_derive_key_sync(client, "hmac-sha256",
								   derive_ctx, 64, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(d2, derived);
	}
	{
		gboolean valid = FALSE;
		g_autofree gchar *pem = NULL;
		tkms_client_verify_sync(client, "ecdsa-p256", plaintext, sig_ec, &valid, NULL,
					&error);
		g_assert_no_error(error);
		g_assert_true(valid);
		valid = FALSE;
		tkms_client_verify_sync(client, "rsa-2048", plaintext, sig_rsa, &valid, NULL,
					&error);
		g_assert_no_error(error);
		g_assert_true(valid);
		pem = tkms_client_get_public_key_sync(client, "ecdsa-p256", NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(pem, ==, pem_ec);
		g_clear_pointer(&pem, g_free);
		pem = tkms_client_get_public_key_sync(client, "rsa-2048", NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(pem, ==, pem_rsa);
	}
	/* New work after the restart works too. */
	{
		g_autoptr(GBytes) ct2 = tkms_client_encrypt_sync(client, "aes-256-gcm", plaintext,
								 NULL, NULL, &error);
		g_autoptr(GBytes) sig2 = NULL;
		g_assert_no_error(error);
		sig2 = tkms_client_sign_sync(client, "ecdsa-p256", plaintext, NULL, &error);
		g_assert_no_error(error);
	}
	/* The keys were not re-created: the names are still taken. */
	{
		g_autoptr(GVariant) again =
			tkms_client_create_key_sync(client, "rsa-2048", "rsa-2048", NULL, NULL,
						    &error);
		tkms_assert_error(error, TKMS_ERROR_ALREADY_EXISTS);
	}
	/* Same check of the state directory after more activity. */
	g_ptr_array_set_size(files, 0);
	collect_files(state, files);
	assert_secret_not_in_files(files, plaintext, "the plaintext");
	assert_secret_not_in_files(files, sealed_data, "the sealed data");
	assert_not_in_files(files, "PRIVATE", 7, "the word PRIVATE");
}

/* ---- the JSON key store of tkms before SQLite, made from a running daemon's keys ---- */

static gchar *
column_b64(sqlite3_stmt *stmt, gint col)
{
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return g_strdup("");
	return g_base64_encode(sqlite3_column_blob(stmt, col), sqlite3_column_bytes(stmt, col));
}

/* Writes STATE/keys/<uid>/<name>.json for every key of keys.db, as the JSON store wrote them
 * (format 1), then removes keys.db: the state of a tkms that never had SQLite. */
static guint
convert_to_json_store(const gchar *state)
{
	g_autofree gchar *db_path = g_build_filename(state, "keys.db", NULL);
	g_autofree gchar *keys_dir = g_build_filename(state, "keys", NULL);
	sqlite3 *db = NULL;
	sqlite3_stmt *keys = NULL, *versions = NULL;
	guint n = 0;

	g_assert_cmpint(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_prepare_v2(db,
					   "SELECT id, owner, name, type, description, created, "
					   "pcrs, primary_version FROM keys ORDER BY id",
					   -1, &keys, NULL),
			==, SQLITE_OK);
	g_assert_cmpint(sqlite3_prepare_v2(db,
					   "SELECT version, state, created, tpm_public, "
					   "tpm_private FROM key_versions WHERE key_id = ?1 "
					   "ORDER BY version",
					   -1, &versions, NULL),
			==, SQLITE_OK);
	while (sqlite3_step(keys) == SQLITE_ROW) {
		g_autofree gchar *uid = g_strdup_printf("%lld", (long long)sqlite3_column_int64(keys, 1));
		g_autofree gchar *dir = g_build_filename(keys_dir, uid, NULL);
		g_autofree gchar *file =
			g_strconcat((const gchar *)sqlite3_column_text(keys, 2), ".json", NULL);
		g_autofree gchar *path = g_build_filename(dir, file, NULL);
		g_autoptr(GString) doc = g_string_new(NULL);

		g_string_append_printf(
			doc,
			"{\n  \"format\" : 1,\n  \"name\" : \"%s\",\n  \"owner\" : %s,\n  \"type\" : "
			"\"%s\",\n  \"created\" : %lld,\n  \"description\" : \"%s\",\n  \"pcrs\" : "
			"%lld,\n  \"primary-version\" : %lld,\n  \"versions\" : [",
			sqlite3_column_text(keys, 2), uid, sqlite3_column_text(keys, 3),
			(long long)sqlite3_column_int64(keys, 5), sqlite3_column_text(keys, 4),
			(long long)sqlite3_column_int64(keys, 6),
			(long long)sqlite3_column_int64(keys, 7));
		sqlite3_bind_int64(versions, 1, sqlite3_column_int64(keys, 0));
		for (guint i = 0; sqlite3_step(versions) == SQLITE_ROW; i++) {
			g_autofree gchar *pub = column_b64(versions, 3);
			g_autofree gchar *priv = column_b64(versions, 4);
			g_string_append_printf(
				doc,
				"%s\n    {\n      \"version\" : %lld,\n      \"state\" : \"%s\",\n"
				"      \"created\" : %lld,\n      \"tpm-public\" : \"%s\",\n"
				"      \"tpm-private\" : \"%s\"\n    }",
				i ? "," : "", (long long)sqlite3_column_int64(versions, 0),
				sqlite3_column_text(versions, 1),
				(long long)sqlite3_column_int64(versions, 2), pub, priv);
		}
		sqlite3_reset(versions);
		g_string_append(doc, "\n  ]\n}");
		g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
		g_assert_true(g_file_set_contents_full(path, doc->str, doc->len,
						       G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL));
		n++;
	}
	sqlite3_finalize(keys);
	sqlite3_finalize(versions);
	g_assert_cmpint(sqlite3_close(db), ==, SQLITE_OK);
	for (guint i = 0; i < G_N_ELEMENTS(store_files); i++) {
		g_autofree gchar *path = g_build_filename(state, store_files[i], NULL);
		g_unlink(path);
	}
	return n;
}

static gint
cmp_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const gchar *const *)a, *(const gchar *const *)b);
}

static void
tree_dump(GString *out, const gchar *root, const gchar *rel)
{
	g_autofree gchar *path = rel ? g_build_filename(root, rel, NULL) : g_strdup(root);
	g_autoptr(GDir) d = NULL;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const gchar *name;

	if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
		g_autofree gchar *contents = NULL;
		gsize len = 0;
		g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
		g_string_append_printf(out, "%s %" G_GSIZE_FORMAT "\n", rel, len);
		g_string_append_len(out, contents, len);
		return;
	}
	d = g_dir_open(path, 0, NULL);
	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, cmp_names);
	g_string_append_printf(out, "%s/\n", rel ? rel : ".");
	for (guint i = 0; i < names->len; i++) {
		g_autofree gchar *sub = rel ? g_build_filename(rel, names->pdata[i], NULL)
					    : g_strdup(names->pdata[i]);
		tree_dump(out, root, sub);
	}
}

static gchar *
tree_snapshot(const gchar *dir)
{
	GString *out = g_string_new(NULL);
	tree_dump(out, dir, NULL);
	return g_string_free(out, FALSE);
}

static gchar *
find_imported(const gchar *state)
{
	g_autoptr(GDir) d = g_dir_open(state, 0, NULL);
	const gchar *name;
	gchar *found = NULL;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL) {
		if (g_str_has_prefix(name, "keys.imported-")) {
			g_assert_null(found);
			found = g_build_filename(state, name, NULL);
		}
	}
	return found;
}

/* A store of tkms before SQLite, made by this tkmsd's keys on this TPM, is imported at the
 * first start: every key works as before, names stay taken, keys/ is kept aside. */
/* The key list without the versions' "destroyed" dates and "uses", which the JSON store of
 * issue 6 did not have (what it had must come through unchanged). */
static GVariant *
without_destroyed_dates(GVariant *list)
{
	GVariantBuilder b;
	GVariantIter keys;
	GVariant *key;

	g_variant_builder_init(&b, G_VARIANT_TYPE("aa{sv}"));
	g_variant_iter_init(&keys, list);
	while ((key = g_variant_iter_next_value(&keys)) != NULL) {
		GVariantDict d;
		g_autoptr(GVariant) versions = NULL;
		GVariantBuilder vb;
		GVariantIter vi;
		GVariant *v;

		g_variant_dict_init(&d, key);
		versions = g_variant_dict_lookup_value(&d, "versions", G_VARIANT_TYPE("aa{sv}"));
		g_variant_builder_init(&vb, G_VARIANT_TYPE("aa{sv}"));
		g_variant_iter_init(&vi, versions);
		while ((v = g_variant_iter_next_value(&vi)) != NULL) {
			GVariantDict vd;
			g_variant_dict_init(&vd, v);
			g_variant_dict_remove(&vd, "destroyed");
			/* issue 6's JSON store did not count uses: imported keys start at 0 */
			g_variant_dict_remove(&vd, "uses");
			g_variant_builder_add_value(&vb, g_variant_dict_end(&vd));
			g_variant_unref(v);
		}
		g_variant_dict_insert_value(&d, "versions", g_variant_builder_end(&vb));
		g_variant_builder_add_value(&b, g_variant_dict_end(&d));
		g_variant_unref(key);
	}
	return g_variant_ref_sink(g_variant_builder_end(&b));
}

static void
test_import_json(void)
{
	/* "gone" is destroyed at once, as keys were in issue 6's JSON store */
	g_autoptr(TkmsTestEnv) env =
		tkms_test_env_new_or_abort("[lifecycle]\nDestroyWaitingPeriod=0\n");
	TkmsClient *client = tkms_test_env_get_client(env);
	const gchar *state = tkms_test_env_get_state_dir(env);
	g_autofree gchar *keys_dir = g_build_filename(state, "keys", NULL);
	g_autoptr(GBytes) plaintext = tkms_test_bytes_str(PLAINTEXT);
	g_autoptr(GBytes) context = tkms_test_bytes_str(CONTEXT);
	g_autoptr(GBytes) ct = NULL, mac = NULL, sig = NULL;
	g_autoptr(GVariant) list_before = NULL, list_after = NULL;
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *pem = NULL, *json_before = NULL, *aside = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
		g_autoptr(GVariant) info = tkms_test_create_key(client, types[i], types[i], NULL);
	}
	{
		g_autoptr(GVariant) info = tkms_test_create_key(client, "gone", "hmac-sha256", NULL);
		tkms_client_destroy_key_sync(client, "gone", NULL, &error);
		g_assert_no_error(error);
	}
	ct = tkms_client_encrypt_sync(client, "aes-256-gcm", plaintext, context, NULL, &error);
	g_assert_no_error(error);
	mac = tkms_client_hmac_sync(client, "hmac-sha256", plaintext, NULL, &error);
	g_assert_no_error(error);
	sig = tkms_client_sign_sync(client, "ecdsa-p256", plaintext, NULL, &error);
	g_assert_no_error(error);
	pem = tkms_client_get_public_key_sync(client, "rsa-2048", NULL, &error);
	g_assert_no_error(error);
	list_before = tkms_client_list_keys_sync(client, NULL, &error);
	g_assert_no_error(error);

	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(convert_to_json_store(state), ==, G_N_ELEMENTS(types) + 1);
	json_before = tree_snapshot(keys_dir);

	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);

	/* imported, and moved aside intact */
	g_assert_false(g_file_test(keys_dir, G_FILE_TEST_EXISTS));
	aside = find_imported(state);
	g_assert_nonnull(aside);
	{
		g_autofree gchar *json_after = tree_snapshot(aside);
		g_assert_cmpstr(json_before, ==, json_after);
	}
	{
		g_autofree gchar *log = tkms_test_env_get_daemon_log(env);
		g_assert_nonnull(strstr(log, "Imported 5 keys"));
	}
	/* every key as it was */
	list_after = tkms_client_list_keys_sync(client, NULL, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GVariant) before = without_destroyed_dates(list_before);
		g_autoptr(GVariant) after = without_destroyed_dates(list_after);
		g_assert_true(g_variant_equal(before, after));
	}
	{
		g_autoptr(GBytes) pt =
			tkms_client_decrypt_sync(client, "aes-256-gcm", ct, context, NULL, &error);
		g_autoptr(GBytes) mac2 = NULL;
		g_autofree gchar *pem2 = NULL;
		gboolean valid = FALSE;
		g_assert_no_error(error);
		tkms_assert_bytes_equal(pt, plaintext);
		mac2 = tkms_client_hmac_sync(client, "hmac-sha256", plaintext, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(mac2, mac);
		tkms_client_verify_sync(client, "ecdsa-p256", plaintext, sig, &valid, NULL, &error);
		g_assert_no_error(error);
		g_assert_true(valid);
		pem2 = tkms_client_get_public_key_sync(client, "rsa-2048", NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(pem2, ==, pem);
	}
	/* names stay taken, the destroyed one too; new keys work */
	{
		g_autoptr(GVariant) again = tkms_client_create_key_sync(client, "gone", "hmac-sha256",
									NULL, NULL, &error);
		g_autoptr(GVariant) fresh = NULL;
		tkms_assert_error(error, TKMS_ERROR_ALREADY_EXISTS);
		g_clear_error(&error);
		fresh = tkms_test_create_key(client, "after-import", "aes-256-gcm", NULL);
	}
	/* a restart opens keys.db; the JSON store aside is not read again */
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	g_clear_pointer(&list_after, g_variant_unref);
	list_after = tkms_client_list_keys_sync(client, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_variant_n_children(list_after), ==, G_N_ELEMENTS(types) + 2);

	/* no secret in keys.db or beside it */
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	collect_files(state, files);
	assert_secret_not_in_files(files, plaintext, "the plaintext");
	assert_not_in_files(files, "PRIVATE", 7, "the word PRIVATE");
}

/* One document that is not valid: tkmsd refuses to start and says which; the JSON store is
 * left exactly as it was, and no keys.db is left behind. */
static void
test_import_corrupt(void)
{
	g_autoptr(TkmsTestEnv) env = tkms_test_env_new_or_abort(NULL);
	TkmsClient *client = tkms_test_env_get_client(env);
	const gchar *state = tkms_test_env_get_state_dir(env);
	g_autofree gchar *keys_dir = g_build_filename(state, "keys", NULL);
	g_autofree gchar *uid = g_strdup_printf("%u", getuid());
	g_autofree gchar *bad = g_build_filename(keys_dir, uid, "k2.json", NULL);
	g_autofree gchar *db_path = g_build_filename(state, "keys.db", NULL);
	g_autofree gchar *json_before = NULL, *json_after = NULL;
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < 3; i++) {
		g_autofree gchar *name = g_strdup_printf("k%u", i);
		g_autoptr(GVariant) info = tkms_test_create_key(client, name, "hmac-sha256", NULL);
	}
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(convert_to_json_store(state), ==, 3);
	/* cut in the middle, as a disk error would */
	{
		g_autofree gchar *doc = NULL;
		gsize len = 0;
		g_assert_true(g_file_get_contents(bad, &doc, &len, NULL));
		g_assert_true(g_file_set_contents(bad, doc, len / 2, NULL));
	}
	json_before = tree_snapshot(keys_dir);

	g_assert_false(tkms_test_env_start_daemon(env, &error));
	g_assert_nonnull(error);
	g_test_message("%s", error->message);
	g_assert_nonnull(strstr(error->message, "exited with status"));
	g_assert_null(strstr(error->message, "exited with status 0"));
	g_clear_error(&error);
	g_assert_false(tkms_test_env_daemon_is_running(env));
	{
		g_autofree gchar *log = tkms_test_env_get_daemon_log(env);
		g_assert_nonnull(strstr(log, bad));
	}
	json_after = tree_snapshot(keys_dir);
	g_assert_cmpstr(json_before, ==, json_after);
	g_assert_false(g_file_test(db_path, G_FILE_TEST_EXISTS));
	{
		g_autofree gchar *tmp = g_strconcat(db_path, ".new", NULL);
		g_autofree gchar *aside = find_imported(state);
		g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
		g_assert_null(aside);
	}

	/* the file repaired (here: taken away), the import goes through */
	g_assert_cmpint(g_unlink(bad), ==, 0);
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GVariant) list = tkms_client_list_keys_sync(client, NULL, &error);
		g_autoptr(GBytes) mac = NULL;
		g_autoptr(GBytes) data = tkms_test_bytes_str("data");
		g_assert_no_error(error);
		g_assert_cmpuint(g_variant_n_children(list), ==, 2);
		mac = tkms_client_hmac_sync(client, "k1", data, NULL, &error);
		g_assert_no_error(error);
	}
}

/* seal-auth.key and the SRK pin are made only in a new state directory: damaged or unreadable,
 * tkmsd refuses to start naming the file, leaves it as it was, and starts once it is back. */
static void
assert_start_refused(TkmsTestEnv *env, const gchar *path)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *log = NULL;

	g_assert_false(tkms_test_env_start_daemon(env, &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "exited with status"));
	g_assert_null(strstr(error->message, "exited with status 0"));
	g_assert_false(tkms_test_env_daemon_is_running(env));
	log = tkms_test_env_get_daemon_log(env);
	g_assert_nonnull(strstr(log, path));
}

static void
assert_key_works(TkmsTestEnv *env)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) data = tkms_test_bytes_str("data");
	g_autoptr(GBytes) mac = NULL;

	g_assert_true(tkms_test_env_start_daemon(env, &error));
	g_assert_no_error(error);
	mac = tkms_client_hmac_sync(tkms_test_env_get_client(env), "k", data, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(mac);
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
}

static void
test_state_files_damaged(void)
{
	g_autoptr(TkmsTestEnv) env = tkms_test_env_new_or_abort(NULL);
	const gchar *state = tkms_test_env_get_state_dir(env);
	g_autofree gchar *seal_auth = g_build_filename(state, "seal-auth.key", NULL);
	g_autofree gchar *pin = g_build_filename(state, "srk.name", NULL);
	g_autofree gchar *seal_orig = NULL, *pin_orig = NULL, *after = NULL;
	gsize seal_len = 0, after_len = 0;
	g_autoptr(GError) error = NULL;

	{
		g_autoptr(GVariant) info =
			tkms_test_create_key(tkms_test_env_get_client(env), "k", "hmac-sha256", NULL);
	}
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	g_assert_true(g_file_get_contents(seal_auth, &seal_orig, &seal_len, NULL));
	g_assert_true(g_file_get_contents(pin, &pin_orig, NULL, NULL));

	/* truncated seal-auth.key */
	g_assert_true(g_file_set_contents(seal_auth, seal_orig, seal_len / 2, NULL));
	assert_start_refused(env, seal_auth);
	g_assert_true(g_file_get_contents(seal_auth, &after, &after_len, NULL));
	g_assert_cmpuint(after_len, ==, seal_len / 2);
	g_assert_cmpint(memcmp(after, seal_orig, after_len), ==, 0);
	g_assert_true(g_file_set_contents(seal_auth, seal_orig, seal_len, NULL));
	assert_key_works(env);

	/* an unreadable SRK pin (a directory in its place: tests run as root) */
	g_assert_cmpint(g_unlink(pin), ==, 0);
	g_assert_cmpint(g_mkdir(pin, 0700), ==, 0);
	assert_start_refused(env, pin);
	g_assert_true(g_file_test(pin, G_FILE_TEST_IS_DIR));
	g_assert_cmpint(g_rmdir(pin), ==, 0);
	/* garbage content */
	g_assert_true(g_file_set_contents(pin, "not a name\n", -1, NULL));
	assert_start_refused(env, pin);
	g_clear_pointer(&after, g_free);
	g_assert_true(g_file_get_contents(pin, &after, NULL, NULL));
	g_assert_cmpstr(after, ==, "not a name\n");
	/* missing, in a state directory that has keys: not recreated */
	g_assert_cmpint(g_unlink(pin), ==, 0);
	assert_start_refused(env, pin);
	g_assert_false(g_file_test(pin, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_set_contents(pin, pin_orig, -1, NULL));
	assert_key_works(env);
}

/* A different TPM (fresh swtpm state, so another SRK) is refused, not silently trusted. */
static void
test_other_tpm(void)
{
	g_autoptr(TkmsTestEnv) env = tkms_test_env_new_or_abort(NULL);
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autoptr(GVariant) info = tkms_test_create_key(client, "k", "hmac-sha256", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("data");
	g_autoptr(GBytes) blob = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *tpm_dir = g_build_filename(tkms_test_env_get_tmp_dir(env), "tpm", NULL);
	g_autoptr(GDir) dir = NULL;
	const gchar *name;

	blob = tkms_client_seal_sync(client, data, NULL, NULL, &error);
	g_assert_no_error(error);
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	tkms_test_env_stop_tpm(env, &error);
	g_assert_no_error(error);
	/* Wipe the TPM's state: new seeds, new SRK. */
	dir = g_dir_open(tpm_dir, 0, NULL);
	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = g_build_filename(tpm_dir, name, NULL);
		g_assert_cmpint(g_unlink(path), ==, 0);
	}
	tkms_test_env_start_tpm(env, &error);
	g_assert_no_error(error);

	/* tkmsd either refuses to start, or starts and refuses every key use; never a
	 * successful use of the old blobs. */
	if (!tkms_test_env_start_daemon(env, &error)) {
		g_test_message("tkmsd refused the other TPM at start: %s", error->message);
		return;
	}
	{
		g_autoptr(GBytes) mac = tkms_client_hmac_sync(client, "k", data, NULL, &error);
		g_assert_null(mac);
		g_assert_nonnull(error);
		g_assert_true(error->domain == TKMS_ERROR);
		g_test_message("Hmac on another TPM: %s", error->message);
		g_clear_error(&error);
	}
	{
		g_autoptr(GBytes) out = tkms_client_unseal_sync(client, blob, NULL, &error);
		g_assert_null(out);
		g_assert_nonnull(error);
		g_assert_true(error->domain == TKMS_ERROR);
		g_test_message("Unseal on another TPM: %s", error->message);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/persistence/restart", test_restart);
	g_test_add_func("/persistence/other-tpm", test_other_tpm);
	g_test_add_func("/persistence/import-json", test_import_json);
	g_test_add_func("/persistence/import-corrupt", test_import_corrupt);
	g_test_add_func("/persistence/state-files-damaged", test_state_files_damaged);
	return g_test_run();
}
