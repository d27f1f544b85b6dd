/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-keys"

/* Key life cycle through libtkms: CreateKey, ListKeys, GetKeyInfo, DestroyKey, name and
 * option validation, and per-user key namespaces. */

#include <string.h>
#include <unistd.h>

#include "tkms-test-util.h"

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))

static const gchar *const key_types[] = {"aes-256-gcm", "hmac-sha256", "ecdsa-p256", "rsa-2048"};

static const gchar *
protection_of(const gchar *type)
{
	return g_str_equal(type, "aes-256-gcm") ? "sealed" : "tpm";
}

/* Checks every documented member of the info dictionary of a freshly created key. */
static void
check_info(GVariant *info, const gchar *name, const gchar *type, const gchar *description,
	   gint64 t_before, gint64 t_after)
{
	const gchar *s = NULL;
	guint32 owner = G_MAXUINT32, primary = 0, version = 0;
	guint64 created = 0, vcreated = 0;
	g_autoptr(GVariant) versions = NULL;
	g_autoptr(GVariant) v0 = NULL;
	g_autoptr(GVariant) pcrs = NULL;

	g_assert_true(g_variant_is_of_type(info, G_VARIANT_TYPE_VARDICT));
	g_assert_true(g_variant_lookup(info, "name", "&s", &s));
	g_assert_cmpstr(s, ==, name);
	g_assert_true(g_variant_lookup(info, "type", "&s", &s));
	g_assert_cmpstr(s, ==, type);
	g_assert_true(g_variant_lookup(info, "protection", "&s", &s));
	g_assert_cmpstr(s, ==, protection_of(type));
	g_assert_true(g_variant_lookup(info, "owner", "u", &owner));
	g_assert_cmpuint(owner, ==, getuid());
	g_assert_true(g_variant_lookup(info, "created", "t", &created));
	g_assert_cmpuint(created, >=, (guint64)t_before);
	g_assert_cmpuint(created, <=, (guint64)t_after);
	g_assert_true(g_variant_lookup(info, "primary-version", "u", &primary));
	g_assert_cmpuint(primary, >=, 1);

	versions = g_variant_lookup_value(info, "versions", G_VARIANT_TYPE("aa{sv}"));
	g_assert_nonnull(versions);
	g_assert_cmpuint(g_variant_n_children(versions), ==, 1);
	v0 = g_variant_get_child_value(versions, 0);
	g_assert_true(g_variant_lookup(v0, "version", "u", &version));
	g_assert_cmpuint(version, ==, primary);
	g_assert_true(g_variant_lookup(v0, "state", "&s", &s));
	g_assert_cmpstr(s, ==, "active");
	g_assert_true(g_variant_lookup(v0, "created", "t", &vcreated));
	g_assert_cmpuint(vcreated, >=, (guint64)t_before);
	g_assert_cmpuint(vcreated, <=, (guint64)t_after);

	pcrs = g_variant_lookup_value(info, "pcrs", G_VARIANT_TYPE("au"));
	g_assert_nonnull(pcrs);
	g_assert_cmpuint(g_variant_n_children(pcrs), ==, 0);
	g_assert_true(g_variant_lookup(info, "description", "&s", &s));
	g_assert_cmpstr(s, ==, description);
}

static void
test_create_type(gconstpointer data)
{
	const gchar *type = data;
	g_autofree gchar *name = tkms_test_key_name(type);
	g_autofree gchar *description = g_strdup_printf("test key of type %s", type);
	g_autoptr(GVariantDict) opts = g_variant_dict_new(NULL);
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GVariant) info2 = NULL;
	g_autoptr(GError) error = NULL;
	gint64 t0 = g_get_real_time() / G_USEC_PER_SEC;
	gint64 t1;

	g_variant_dict_insert(opts, "description", "s", description);
	info = tkms_test_create_key(CLIENT, name, type, g_variant_dict_end(opts));
	t1 = g_get_real_time() / G_USEC_PER_SEC + 1;
	check_info(info, name, type, description, t0, t1);

	info2 = tkms_client_get_key_info_sync(CLIENT, name, NULL, &error);
	g_assert_no_error(error);
	check_info(info2, name, type, description, t0, t1);
	g_assert_true(g_variant_equal(info, info2));
}

/* An explicit protection that matches the type is accepted. */
static void
test_create_matching_protection(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(key_types); i++) {
		g_autofree gchar *name = tkms_test_key_name("prot-ok");
		g_autoptr(GVariantDict) opts = g_variant_dict_new(NULL);
		g_autoptr(GVariant) info = NULL;
		const gchar *p = NULL;

		g_variant_dict_insert(opts, "protection", "s", protection_of(key_types[i]));
		info = tkms_test_create_key(CLIENT, name, key_types[i], g_variant_dict_end(opts));
		g_assert_true(g_variant_lookup(info, "protection", "&s", &p));
		g_assert_cmpstr(p, ==, protection_of(key_types[i]));
	}
}

static void
test_create_wrong_protection(void)
{
	static const struct {
		const gchar *type;
		const gchar *protection;
	} cases[] = {
		{"aes-256-gcm", "tpm"},	  {"hmac-sha256", "sealed"}, {"ecdsa-p256", "sealed"},
		{"rsa-2048", "sealed"},	  {"aes-256-gcm", "software"}, {"ecdsa-p256", ""},
		{"hmac-sha256", "TPM"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *name = tkms_test_key_name("prot-bad");
		g_autoptr(GVariantDict) opts = g_variant_dict_new(NULL);
		g_autoptr(GVariant) info = NULL;
		g_autoptr(GError) error = NULL;

		g_test_message("type %s protection '%s'", cases[i].type, cases[i].protection);
		g_variant_dict_insert(opts, "protection", "s", cases[i].protection);
		info = tkms_client_create_key_sync(CLIENT, name, cases[i].type,
						   g_variant_dict_end(opts), NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(info);
		/* Nothing was created under that name. */
		g_clear_error(&error);
		g_assert_null(tkms_client_get_key_info_sync(CLIENT, name, NULL, &error));
		tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
	}
}

static void
test_create_bad_options(void)
{
	GVariant *cases[6];
	g_autofree gchar *long_desc = g_strnfill(257, 'd');
	g_autofree gchar *max_desc = g_strnfill(256, 'd');
	guint32 pcr24[] = {24};
	guint32 pcr_huge[] = {G_MAXUINT32};

	{
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_variant_dict_insert(d, "protection", "u", 1u);
		cases[0] = g_variant_ref_sink(g_variant_dict_end(d));
	}
	{
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_variant_dict_insert(d, "description", "s", long_desc);
		cases[1] = g_variant_ref_sink(g_variant_dict_end(d));
	}
	{
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_variant_dict_insert_value(
			d, "pcrs", g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, pcr24, 1, 4));
		cases[2] = g_variant_ref_sink(g_variant_dict_end(d));
	}
	{
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_variant_dict_insert_value(
			d, "pcrs",
			g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, pcr_huge, 1, 4));
		cases[3] = g_variant_ref_sink(g_variant_dict_end(d));
	}
	{
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		const gchar *strv[] = {"16", NULL};
		g_variant_dict_insert(d, "pcrs", "^as", strv);
		cases[4] = g_variant_ref_sink(g_variant_dict_end(d));
	}
	{
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_variant_dict_insert(d, "description", "i", 5);
		cases[5] = g_variant_ref_sink(g_variant_dict_end(d));
	}

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *name = tkms_test_key_name("opt-bad");
		g_autofree gchar *printed = g_variant_print(cases[i], TRUE);
		g_autoptr(GVariant) info = NULL;
		g_autoptr(GError) error = NULL;

		g_test_message("options %s", i == 1 ? "{'description': <257 bytes>}" : printed);
		info = tkms_client_create_key_sync(CLIENT, name, "hmac-sha256", cases[i], NULL,
						   &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(info);
		g_variant_unref(cases[i]);
	}

	/* 256 bytes of description are fine. */
	{
		g_autofree gchar *name = tkms_test_key_name("opt-maxdesc");
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_autoptr(GVariant) info = NULL;
		const gchar *desc = NULL;

		g_variant_dict_insert(d, "description", "s", max_desc);
		info = tkms_test_create_key(CLIENT, name, "hmac-sha256", g_variant_dict_end(d));
		g_assert_true(g_variant_lookup(info, "description", "&s", &desc));
		g_assert_cmpstr(desc, ==, max_desc);
	}
}

static void
test_create_pcr_bound(void)
{
	g_autofree gchar *name = tkms_test_key_name("pcr-key");
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
	guint32 pcrs[] = {16};
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GVariant) got = NULL;

	g_variant_dict_insert_value(d, "pcrs",
				    g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, pcrs, 1, 4));
	info = tkms_test_create_key(CLIENT, name, "hmac-sha256", g_variant_dict_end(d));
	got = g_variant_lookup_value(info, "pcrs", G_VARIANT_TYPE("au"));
	g_assert_nonnull(got);
	g_assert_cmpuint(g_variant_n_children(got), ==, 1);
	{
		guint32 v;
		g_variant_get_child(got, 0, "u", &v);
		g_assert_cmpuint(v, ==, 16);
	}
}

static void
test_unknown_type(void)
{
	const gchar *types[] = {"aes-128-gcm", "", "AES-256-GCM", "rsa-1024", "ecdsa-p384",
				"hmac-sha1", "aes-256-gcm ", "des"};

	for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
		g_autofree gchar *name = tkms_test_key_name("type-bad");
		g_autoptr(GVariant) info = NULL;
		g_autoptr(GError) error = NULL;

		g_test_message("type '%s'", types[i]);
		info = tkms_client_create_key_sync(CLIENT, name, types[i], NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(info);
	}
}

static void
test_bad_names(void)
{
	g_autofree gchar *n65 = g_strnfill(65, 'a');
	g_autofree gchar *n200 = g_strnfill(200, 'b');
	const gchar *names[] = {"../x", "", n65, n200, "\xc3\xa9t\xc3\xa9", "caf\xc3\xa9",
				".hidden", ".", "..", "a/b", "/etc/passwd", "a b", "a\nb",
				"a\\b", "a:b", "a*", "~root"};

	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(GVariant) info = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) pt = tkms_test_bytes_str("x");
		g_autoptr(GBytes) ct = NULL;

		g_test_message("name '%s' (%zu bytes)", names[i], strlen(names[i]));
		info = tkms_client_create_key_sync(CLIENT, names[i], "aes-256-gcm", NULL, NULL,
						   &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_assert_null(info);
		g_clear_error(&error);

		/* Other methods reject it the same way, before any lookup. */
		info = tkms_client_get_key_info_sync(CLIENT, names[i], NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
		ct = tkms_client_encrypt_sync(CLIENT, names[i], pt, NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
		tkms_client_destroy_key_sync(CLIENT, names[i], NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_INVALID_ARGUMENT);
	}

	/* The extremes of the valid set. */
	{
		g_autofree gchar *n64 = g_strnfill(64, 'z');
		const gchar *good[] = {n64, "A", "a.b_c-D9", "x.", "-dash", "_u", "0"};
		for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
			g_autoptr(GVariant) info =
				tkms_test_create_key(CLIENT, good[i], "hmac-sha256", NULL);
			const gchar *n = NULL;
			g_assert_true(g_variant_lookup(info, "name", "&s", &n));
			g_assert_cmpstr(n, ==, good[i]);
		}
	}
	/* Nothing of the above left a file outside the key directory. */
	{
		g_autofree gchar *x = g_build_filename(tkms_test_env_get_state_dir(env), "keys",
						       "x.json", NULL);
		g_autofree gchar *x2 = g_build_filename(tkms_test_env_get_state_dir(env), "x.json",
							NULL);
		g_assert_false(g_file_test(x, G_FILE_TEST_EXISTS));
		g_assert_false(g_file_test(x2, G_FILE_TEST_EXISTS));
	}
}

static void
test_duplicate(void)
{
	g_autofree gchar *name = tkms_test_key_name("dup");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	g_autoptr(GVariant) again = NULL;
	g_autoptr(GVariant) after = NULL;
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(key_types); i++) {
		again = tkms_client_create_key_sync(CLIENT, name, key_types[i], NULL, NULL, &error);
		tkms_assert_error(error, TKMS_ERROR_ALREADY_EXISTS);
		g_assert_null(again);
		g_clear_error(&error);
	}
	/* The original is untouched. */
	after = tkms_client_get_key_info_sync(CLIENT, name, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_variant_equal(info, after));
}

static gboolean
list_has(GVariant *keys, const gchar *name)
{
	for (gsize i = 0; i < g_variant_n_children(keys); i++) {
		g_autoptr(GVariant) info = g_variant_get_child_value(keys, i);
		const gchar *n = NULL;
		if (g_variant_lookup(info, "name", "&s", &n) && g_strcmp0(n, name) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
test_list(void)
{
	g_autofree gchar *suffix = tkms_test_key_name("");
	g_autofree gchar *a = g_strconcat("list-a", suffix, NULL);
	g_autofree gchar *b = g_strconcat("list-b", suffix, NULL);
	g_autoptr(GVariant) ka = NULL;
	g_autoptr(GVariant) kb = NULL;
	g_autoptr(GVariant) keys = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *prev = NULL;

	/* Created out of order, listed sorted by name. */
	kb = tkms_test_create_key(CLIENT, b, "ecdsa-p256", NULL);
	ka = tkms_test_create_key(CLIENT, a, "aes-256-gcm", NULL);
	keys = tkms_client_list_keys_sync(CLIENT, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_variant_is_of_type(keys, G_VARIANT_TYPE("aa{sv}")));
	g_assert_true(list_has(keys, a));
	g_assert_true(list_has(keys, b));
	for (gsize i = 0; i < g_variant_n_children(keys); i++) {
		g_autoptr(GVariant) info = g_variant_get_child_value(keys, i);
		const gchar *n = NULL, *t = NULL;
		guint32 owner = G_MAXUINT32;

		g_assert_true(g_variant_lookup(info, "name", "&s", &n));
		g_assert_true(g_variant_lookup(info, "type", "&s", &t));
		g_assert_true(g_variant_lookup(info, "owner", "u", &owner));
		g_assert_cmpuint(owner, ==, getuid());
		if (prev != NULL)
			g_assert_cmpint(strcmp(prev, n), <, 0);
		prev = n;
		if (g_str_equal(n, a)) {
			g_autoptr(GVariant) info_a =
				tkms_client_get_key_info_sync(CLIENT, a, NULL, &error);
			g_assert_no_error(error);
			g_assert_true(g_variant_equal(info, info_a));
		}
	}
}

static GVariant *
list_page(const gchar *token, guint size, GError **error)
{
	return g_dbus_connection_call_sync(tkms_client_get_connection(CLIENT), "org.tkms.KeyManager",
					   "/org/tkms/KeyManager", "org.tkms.KeyManager",
					   "ListKeysPage", g_variant_new("(su)", token, size),
					   G_VARIANT_TYPE("(aa{sv}s)"), G_DBUS_CALL_FLAGS_NONE, -1,
					   NULL, error);
}

/* ListKeysPage hands out every key exactly once, in ListKeys' order, in pages of at most
 * page_size; bad sizes and tokens are InvalidArgument. */
static void
test_list_page(void)
{
	g_autofree gchar *suffix = tkms_test_key_name("");
	g_autoptr(GVariant) all = NULL;
	g_autoptr(GString) listed = g_string_new("");
	g_autoptr(GString) paged = g_string_new("");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *token = g_strdup("");
	g_autoptr(GVariant) r = NULL;
	guint pages = 0;

	for (guint i = 0; i < 7; i++) {
		g_autofree gchar *n = g_strdup_printf("page-%u%s", i, suffix);
		g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, n, "hmac-sha256", NULL);
	}
	all = tkms_client_list_keys_sync(CLIENT, NULL, &error);
	g_assert_no_error(error);
	for (gsize i = 0; i < g_variant_n_children(all); i++) {
		const gchar *n = NULL;
		g_autoptr(GVariant) info = g_variant_get_child_value(all, i);
		g_variant_lookup(info, "name", "&s", &n);
		g_string_append_printf(listed, "%s,", n);
	}
	g_assert_cmpuint(g_variant_n_children(all), >=, 7);
	do {
		g_autoptr(GVariant) keys = NULL;
		g_autoptr(GVariant) reply = list_page(token, 3, &error);
		g_assert_no_error(error);
		g_free(token);
		g_variant_get(reply, "(@aa{sv}s)", &keys, &token);
		g_assert_cmpuint(g_variant_n_children(keys), <=, 3);
		if (token[0] != '\0')
			g_assert_cmpuint(g_variant_n_children(keys), ==, 3);
		for (gsize i = 0; i < g_variant_n_children(keys); i++) {
			const gchar *n = NULL;
			g_autoptr(GVariant) info = g_variant_get_child_value(keys, i);
			g_variant_lookup(info, "name", "&s", &n);
			g_string_append_printf(paged, "%s,", n);
		}
		g_assert_cmpuint(++pages, <, 1000);
	} while (token[0] != '\0');
	g_assert_cmpstr(paged->str, ==, listed->str);

	/* 0 is the default size; over 1000 and forged tokens are refused */
	r = list_page("", 0, &error);
	g_assert_no_error(error);
	g_clear_pointer(&r, g_variant_unref);
	r = list_page("", 1001, &error);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	for (guint i = 0; i < 4; i++) {
		const gchar *bad[] = {"not a token", "Zm9v", "LTEvYQ==", "MC8uaGlkZGVu"};
		r = list_page(bad[i], 10, &error);
		g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
	}
}

/* Keys are per uid: another user sees none of ours and gets NotFound for our names. */
static void
test_other_user(void)
{
	const gchar *helper = tkms_test_helper_path();
	g_autofree gchar *name = tkms_test_key_name("mine");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "hmac-sha256", NULL);
	g_autoptr(GError) error = NULL;

	{
		const gchar *argv[] = {helper, "list", NULL};
		g_autofree gchar *out = NULL;
		g_autofree gchar *err = NULL;
		gint status = -1;

		tkms_test_env_run_as_user(env, argv, &out, &err, &status, &error);
		g_assert_no_error(error);
		g_test_message("nobody's list: %s%s", out, err);
		g_assert_cmpint(status, ==, 0);
		g_assert_null(strstr(out, name));
	}
	{
		const gchar *argv[] = {helper, "info", name, NULL};
		g_autofree gchar *out = NULL;
		gint status = -1;

		tkms_test_env_run_as_user(env, argv, &out, NULL, &status, &error);
		g_assert_no_error(error);
		g_assert_cmpint(status, ==, 2);
		g_assert_true(g_str_has_prefix(out, "ERROR NotFound"));
	}
	/* The same name is free in nobody's namespace, and owned by nobody there. */
	{
		const gchar *create[] = {helper, "create", name, "hmac-sha256", NULL};
		const gchar *info_argv[] = {helper, "info", name, NULL};
		g_autofree gchar *out = NULL;
		g_autofree gchar *out2 = NULL;
		gint status = -1;

		tkms_test_env_run_as_user(env, create, &out, NULL, &status, &error);
		g_assert_no_error(error);
		g_test_message("nobody's create: %s", out);
		g_assert_cmpint(status, ==, 0);
		tkms_test_env_run_as_user(env, info_argv, &out2, NULL, &status, &error);
		g_assert_no_error(error);
		g_assert_cmpint(status, ==, 0);
		g_assert_cmpstr(out2, ==, "65534\n");
	}
	/* ... and ours is unchanged. */
	{
		g_autoptr(GVariant) again =
			tkms_client_get_key_info_sync(CLIENT, name, NULL, &error);
		g_assert_no_error(error);
		g_assert_true(g_variant_equal(info, again));
	}
}

static void
test_not_found(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) data = tkms_test_bytes_str("data");
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GBytes) out = NULL;
	g_autofree gchar *pem = NULL;
	gboolean valid = TRUE;

	info = tkms_client_get_key_info_sync(CLIENT, "no-such-key", NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	tkms_client_destroy_key_sync(CLIENT, "no-such-key", NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	out = tkms_client_encrypt_sync(CLIENT, "no-such-key", data, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	out = tkms_client_sign_sync(CLIENT, "no-such-key", data, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	tkms_client_verify_sync(CLIENT, "no-such-key", data, data, &valid, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	out = tkms_client_hmac_sync(CLIENT, "no-such-key", data, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	pem = tkms_client_get_public_key_sync(CLIENT, "no-such-key", NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);
	out = tkms_client_derive_key_sync(CLIENT, "no-such-key", data, 32, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_NOT_FOUND);
}

static void
check_destroyed_info(const gchar *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) info = tkms_client_get_key_info_sync(CLIENT, name, NULL, &error);
	g_autoptr(GVariant) versions = NULL;

	/* The metadata is kept, every version is destroyed. */
	g_assert_no_error(error);
	versions = g_variant_lookup_value(info, "versions", G_VARIANT_TYPE("aa{sv}"));
	g_assert_nonnull(versions);
	g_assert_cmpuint(g_variant_n_children(versions), >=, 1);
	for (gsize i = 0; i < g_variant_n_children(versions); i++) {
		g_autoptr(GVariant) v = g_variant_get_child_value(versions, i);
		const gchar *state = NULL;
		g_assert_true(g_variant_lookup(v, "state", "&s", &state));
		g_assert_cmpstr(state, ==, "destroyed");
	}
}

static void
test_destroy(void)
{
	g_autofree gchar *aes = tkms_test_key_name("destroy-aes");
	g_autofree gchar *ec = tkms_test_key_name("destroy-ec");
	g_autofree gchar *hm = tkms_test_key_name("destroy-hmac");
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GVariant) i3 = tkms_test_create_key(CLIENT, hm, "hmac-sha256", NULL);
	g_autoptr(GBytes) pt = tkms_test_bytes_str("destroy me");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) sig = NULL;
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) again = NULL;
	gboolean valid = TRUE;

	ct = tkms_client_encrypt_sync(CLIENT, aes, pt, NULL, NULL, &error);
	g_assert_no_error(error);
	sig = tkms_client_sign_sync(CLIENT, ec, pt, NULL, &error);
	g_assert_no_error(error);

	tkms_client_destroy_key_sync(CLIENT, aes, NULL, &error);
	g_assert_no_error(error);
	tkms_client_destroy_key_sync(CLIENT, ec, NULL, &error);
	g_assert_no_error(error);
	tkms_client_destroy_key_sync(CLIENT, hm, NULL, &error);
	g_assert_no_error(error);

	check_destroyed_info(aes);
	check_destroyed_info(ec);
	check_destroyed_info(hm);

	/* No use of a destroyed key: KeyState (the key exists, its state forbids it). */
	out = tkms_client_encrypt_sync(CLIENT, aes, pt, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);
	out = tkms_client_decrypt_sync(CLIENT, aes, ct, NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
	g_assert_null(out);
	g_clear_error(&error);
	out = tkms_client_sign_sync(CLIENT, ec, pt, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);
	tkms_client_verify_sync(CLIENT, ec, pt, sig, &valid, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);
	out = tkms_client_hmac_sync(CLIENT, hm, pt, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);
	out = tkms_client_derive_key_sync(CLIENT, hm, pt, 16, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);

	/* The name is never reused. */
	again = tkms_client_create_key_sync(CLIENT, aes, "aes-256-gcm", NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_ALREADY_EXISTS);
	g_assert_null(again);
	g_clear_error(&error);
	again = tkms_client_create_key_sync(CLIENT, ec, "hmac-sha256", NULL, NULL, &error);
	tkms_assert_error(error, TKMS_ERROR_ALREADY_EXISTS);
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	/* DestroyKey destroys at once here: these tests assert what a destroyed key is (the
	 * waiting period is tests/test-lifecycle.c's) */
	/* /keys/create/pcr-bound binds to PCR 16 */
	env = tkms_test_env_new_or_abort(
		"[lifecycle]\nDestroyWaitingPeriod=0\n[tpm]\nAllowResettablePcrs=true\n");

	for (guint i = 0; i < G_N_ELEMENTS(key_types); i++) {
		g_autofree gchar *path = g_strdup_printf("/keys/create/%s", key_types[i]);
		g_test_add_data_func(path, key_types[i], test_create_type);
	}
	g_test_add_func("/keys/create/matching-protection", test_create_matching_protection);
	g_test_add_func("/keys/create/wrong-protection", test_create_wrong_protection);
	g_test_add_func("/keys/create/bad-options", test_create_bad_options);
	g_test_add_func("/keys/create/pcr-bound", test_create_pcr_bound);
	g_test_add_func("/keys/create/unknown-type", test_unknown_type);
	g_test_add_func("/keys/create/duplicate", test_duplicate);
	g_test_add_func("/keys/bad-names", test_bad_names);
	g_test_add_func("/keys/list", test_list);
	g_test_add_func("/keys/list-page", test_list_page);
	g_test_add_func("/keys/other-user", test_other_user);
	g_test_add_func("/keys/not-found", test_not_found);
	g_test_add_func("/keys/destroy", test_destroy);

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	return ret;
}
