/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-keys-many"

/* A key store too big for one reply. ListKeys and ListAllKeys answer LimitExceeded, naming
 * the paged method, once their reply would pass 16 MiB (before paging, 100,000 keys ended in
 * NoReply: a reply the bus could not deliver), and stay usable below that; ListKeysPage,
 * libtkms's collect and `tkmsctl list` hand out every key of such a store. The keys are
 * copies of one real key written straight into keys.db (tkms_test_store_clone_key()), which
 * takes a fraction of a second where CreateKey would take minutes. */

#include <string.h>
#include <unistd.h>

#include "tkms-test-store.h"
#include "tkms-test-util.h"

#define ORIGINAL "many-key"
#define DESCRIPTION_SIZE 256 /* the most CreateKey takes: fewer keys reach the limit */
#define LIST_LIMIT (16 * 1024 * 1024)
/* well under libtkms's 120 s (long enough for TPM key generation) and the test's timeout: a
 * daemon that does not answer fails here, with TimedOut */
#define LIST_TIMEOUT_MS 60000
#define PAGE_SIZE 1000
/* the bound on tkmsd's RSS with 100,000 keys */
#define RSS_MAX_KIB (100 * 1024)

/*
 * Measured with this test (it prints the figures): one key with a 256-byte description takes
 * 600 bytes of a ListKeys reply on the wire, and tkmsd's running estimate (each key's
 * serialized a{sv} + 8, daemon/engine-keys.c) counts 559 of them. The first batch makes an
 * 11.4 MiB reply, which must still be delivered; with the second the store holds 40,001 keys,
 * a 22.9 MiB reply on the wire, 21.3 MiB by tkmsd's estimate: past the limit by a third either
 * way (about 28,000 keys reach 16 MiB on the wire, 30,000 by the estimate).
 */
static const struct {
	const gchar *prefix;
	guint count;
} batches[] = {
	{"many-a-", 20000},
	{"many-b-", 20000},
};

static TkmsTestEnv *env;
static gchar *description;
static gboolean have_original;
static guint n_batches; /* batches in the store */

#define CLIENT (tkms_test_env_get_client(env))

/* Every key the store holds, in the order the lists must give them (byte order). */
static GPtrArray *
expected_names(void)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);

	for (guint b = 0; b < n_batches; b++)
		for (guint i = 1; i <= batches[b].count; i++)
			g_ptr_array_add(names, g_strdup_printf("%s%06u", batches[b].prefix, i));
	g_ptr_array_add(names, g_strdup(ORIGINAL));
	return names;
}

/* Makes the store hold ORIGINAL (created through tkmsd) and the copies of the first wanted
 * batches; tkmsd is restarted if copies are added. */
static void
store_batches(guint wanted)
{
	const gchar *state_dir = tkms_test_env_get_state_dir(env);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) names = NULL;
	gint64 t0;

	if (!have_original) {
		g_autoptr(GVariantDict) opts = g_variant_dict_new(NULL);
		g_autoptr(GVariant) info = NULL;

		g_variant_dict_insert(opts, "description", "s", description);
		info = tkms_test_create_key(CLIENT, ORIGINAL, "aes-256-gcm",
					    g_variant_dict_end(opts));
		have_original = TRUE;
	}
	if (n_batches >= wanted)
		return;
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	for (; n_batches < wanted; n_batches++) {
		t0 = g_get_monotonic_time();
		tkms_test_store_clone_key(state_dir, getuid(), ORIGINAL, batches[n_batches].prefix,
					  batches[n_batches].count, description, &error);
		g_assert_no_error(error);
		g_test_message("%u copies written in %.2f s", batches[n_batches].count,
			       (g_get_monotonic_time() - t0) / 1e6);
	}
	names = expected_names();
	g_assert_cmpuint(tkms_test_store_count_keys(state_dir), ==, names->len);
	t0 = g_get_monotonic_time();
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	g_test_message("tkmsd owned its name %.2f s after its start with %u keys",
		       (g_get_monotonic_time() - t0) / 1e6, names->len);
}

/* method() on tkmsd straight on the bus, with LIST_TIMEOUT_MS; *ms is how long it took. */
static GVariant *
call_list(const gchar *method, GVariant *params, const GVariantType *reply_type, gdouble *ms,
	  GError **error)
{
	gint64 t0 = g_get_monotonic_time();
	GVariant *r = g_dbus_connection_call_sync(
		tkms_test_env_get_connection(env), "org.tkms.KeyManager", "/org/tkms/KeyManager",
		"org.tkms.KeyManager", method, params, reply_type, G_DBUS_CALL_FLAGS_NONE,
		LIST_TIMEOUT_MS * tkms_test_timeout_factor(), NULL, error);

	*ms = (g_get_monotonic_time() - t0) / 1e3;
	return r;
}

/* The size of a reply whose body is (aa{sv}) keys, as the bus carries it. */
static gsize
reply_size(GVariant *keys)
{
	g_autoptr(GDBusMessage) call = g_dbus_message_new_method_call(
		":1.1", "/org/tkms/KeyManager", "org.tkms.KeyManager", "ListKeys");
	g_autoptr(GDBusMessage) reply = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree guchar *blob = NULL;
	gsize size = 0;

	g_dbus_message_set_serial(call, 1);
	reply = g_dbus_message_new_method_reply(call);
	g_dbus_message_set_serial(reply, 2);
	g_dbus_message_set_body(reply, g_variant_new("(@aa{sv})", keys));
	blob = g_dbus_message_to_blob(reply, &size, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
	g_assert_no_error(error);
	return size;
}

/* tkmsd's running estimate of the same (daemon/engine-keys.c). */
static gsize
estimate_size(GVariant *keys)
{
	gsize size = 0;

	for (gsize i = 0; i < g_variant_n_children(keys); i++) {
		g_autoptr(GVariant) key = g_variant_get_child_value(keys, i);
		size += g_variant_get_size(key) + 8;
	}
	return size;
}

static void
assert_names(GVariant *keys, GPtrArray *names)
{
	g_assert_cmpuint(g_variant_n_children(keys), ==, names->len);
	for (gsize i = 0; i < names->len; i++) {
		g_autoptr(GVariant) key = g_variant_get_child_value(keys, i);
		const gchar *name = NULL;

		g_assert_true(g_variant_lookup(key, "name", "&s", &name));
		g_assert_cmpstr(name, ==, names->pdata[i]);
	}
}

static void
assert_limit_exceeded(const GError *error, const gchar *paged_method)
{
	g_autofree gchar *remote = NULL;

	tkms_assert_error(error, TKMS_ERROR_LIMIT_EXCEEDED);
	remote = g_dbus_error_get_remote_error(error);
	g_assert_cmpstr(remote, ==, "org.tkms.KeyManager.Error.LimitExceeded");
	if (strstr(error->message, paged_method) == NULL)
		g_error("the error does not name %s: %s", paged_method, error->message);
}

/* Below the limit a big store still lists in one reply, for every owner too. */
static void
test_under_limit(void)
{
	g_autoptr(GPtrArray) names = NULL;
	static const gchar *const methods[] = {"ListKeys", "ListAllKeys"};

	store_batches(1);
	names = expected_names();
	for (guint m = 0; m < G_N_ELEMENTS(methods); m++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) r = NULL;
		g_autoptr(GVariant) keys = NULL;
		gsize size, estimate;
		gdouble ms;

		r = call_list(methods[m], NULL, G_VARIANT_TYPE("(aa{sv})"), &ms, &error);
		g_assert_no_error(error);
		g_variant_get(r, "(@aa{sv})", &keys);
		assert_names(keys, names);
		size = reply_size(keys);
		estimate = estimate_size(keys);
		g_test_message("%s: %u keys in %.0f ms, %.1f MiB on the wire (%.0f B a key), "
			       "%.1f MiB by tkmsd's estimate (%.0f B a key)",
			       methods[m], names->len, ms, size / 1048576.0,
			       (gdouble)size / names->len, estimate / 1048576.0,
			       (gdouble)estimate / names->len);
		g_assert_cmpuint(size, <, LIST_LIMIT);
	}
}

/* Past 16 MiB: LimitExceeded naming the paged method, not a timeout; ListKeysPage gives every
 * key exactly once, in order, in full pages. */
static void
test_over_limit(void)
{
	g_autoptr(GPtrArray) names = NULL;
	g_autoptr(GVariant) all = NULL;
	g_autofree gchar *token = g_strdup("");
	GVariantBuilder paged;
	guint pages = 0;
	gdouble ms, page_ms = 0;
	gsize size, estimate;
	guint64 rss;

	store_batches(G_N_ELEMENTS(batches));
	names = expected_names();
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) r =
			call_list("ListKeys", NULL, G_VARIANT_TYPE("(aa{sv})"), &ms, &error);

		g_test_message("ListKeys of %u keys: error in %.0f ms: %s", names->len, ms,
			       error ? error->message : "none");
		g_assert_null(r);
		assert_limit_exceeded(error, "ListKeysPage");
	}
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) r =
			call_list("ListAllKeys", NULL, G_VARIANT_TYPE("(aa{sv})"), &ms, &error);

		g_test_message("ListAllKeys: error in %.0f ms: %s", ms,
			       error ? error->message : "none");
		g_assert_null(r);
		assert_limit_exceeded(error, "ListAllKeysPage");
	}
	/* a refusal reads about the limit's worth of keys, not the whole store */
	rss = tkms_test_env_get_daemon_rss_kib(env);
	g_test_message("tkmsd's RSS after both: %.1f MiB", rss / 1024.0);
	g_assert_cmpuint(rss, <, RSS_MAX_KIB * tkms_test_rss_factor());

	g_variant_builder_init(&paged, G_VARIANT_TYPE("aa{sv}"));
	do {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) keys = NULL;
		g_autoptr(GVariant) r = call_list("ListKeysPage", g_variant_new("(su)", token,
										 PAGE_SIZE),
						  G_VARIANT_TYPE("(aa{sv}s)"), &ms, &error);

		g_assert_no_error(error);
		page_ms += ms;
		g_free(token);
		g_variant_get(r, "(@aa{sv}s)", &keys, &token);
		if (token[0] != '\0')
			g_assert_cmpuint(g_variant_n_children(keys), ==, PAGE_SIZE);
		else
			g_assert_cmpuint(g_variant_n_children(keys), <=, PAGE_SIZE);
		for (gsize i = 0; i < g_variant_n_children(keys); i++) {
			GVariant *key = g_variant_get_child_value(keys, i);
			const gchar *description_got = NULL;
			guint32 owner = G_MAXUINT32;

			g_assert_true(g_variant_lookup(key, "owner", "u", &owner));
			g_assert_cmpuint(owner, ==, getuid());
			g_assert_true(g_variant_lookup(key, "description", "&s", &description_got));
			g_assert_cmpstr(description_got, ==, description);
			g_variant_builder_add_value(&paged, key);
			g_variant_unref(key);
		}
		g_assert_cmpuint(++pages, <=, names->len / PAGE_SIZE + 1);
	} while (token[0] != '\0');
	all = g_variant_ref_sink(g_variant_builder_end(&paged));
	assert_names(all, names);
	for (guint i = 1; i < names->len; i++)
		g_assert_cmpint(strcmp(names->pdata[i - 1], names->pdata[i]), <, 0);

	/* the store is past the limit by the reply's real size, not only by tkmsd's count */
	size = reply_size(all);
	estimate = estimate_size(all);
	g_test_message("ListKeysPage: %u keys in %u pages of %d, %.0f ms; as one reply: %.1f MiB "
		       "on the wire (%.0f B a key), %.1f MiB by tkmsd's estimate (%.0f B a key)",
		       names->len, pages, PAGE_SIZE, page_ms, size / 1048576.0,
		       (gdouble)size / names->len, estimate / 1048576.0,
		       (gdouble)estimate / names->len);
	g_assert_cmpuint(size, >, LIST_LIMIT + LIST_LIMIT / 8);
	g_assert_cmpuint(estimate, >, LIST_LIMIT + LIST_LIMIT / 8);
}

/* libtkms pages through the same store with the default page size. */
static void
test_collect(void)
{
	g_autoptr(GPtrArray) names = NULL;
	g_autoptr(GPtrArray) keys = NULL;
	g_autoptr(GError) error = NULL;
	gint64 t0;

	store_batches(G_N_ELEMENTS(batches));
	names = expected_names();
	t0 = g_get_monotonic_time();
	keys = tkms_client_collect_keys_sync(CLIENT, FALSE, 0, NULL, &error);
	g_assert_no_error(error);
	g_test_message("tkms_client_collect_keys: %u keys in %.2f s", keys->len,
		       (g_get_monotonic_time() - t0) / 1e6);
	g_assert_cmpuint(keys->len, ==, names->len);
	for (guint i = 0; i < keys->len; i++)
		g_assert_cmpstr(tkms_key_info_get_name(keys->pdata[i]), ==, names->pdata[i]);
}

/* `tkmsctl list` prints a line for each key, after its header. */
static void
test_tkmsctl_list(void)
{
	const gchar *tkmsctl = g_getenv("TKMSCTL");
	g_autoptr(GPtrArray) names = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	g_auto(GStrv) lines = NULL;
	gint status = -1;
	gint64 t0;

	if (tkmsctl == NULL) {
		g_test_skip("TKMSCTL is not set (tkmsctl not built)");
		return;
	}
	store_batches(G_N_ELEMENTS(batches));
	names = expected_names();
	{
		const gchar *argv[] = {tkmsctl, "--address", tkms_test_env_get_bus_address(env),
				       "list", NULL};

		t0 = g_get_monotonic_time();
		tkms_test_env_run(env, argv, &out, &err, &status, &error);
	}
	g_assert_no_error(error);
	g_test_message("tkmsctl list: exit %d in %.2f s; stderr: %s", status,
		       (g_get_monotonic_time() - t0) / 1e6, err);
	g_assert_cmpint(status, ==, 0);
	g_assert_true(g_str_has_suffix(out, "\n"));
	lines = g_strsplit(out, "\n", -1);
	/* the header, a line a key, and "" after the last newline */
	g_assert_cmpuint(g_strv_length(lines), ==, names->len + 2);
	g_assert_true(g_str_has_prefix(lines[0], "NAME "));
	for (guint i = 0; i < names->len; i++) {
		const gchar *line = lines[i + 1];
		gsize len = strlen(names->pdata[i]);

		if (strncmp(line, names->pdata[i], len) != 0 || line[len] != ' ')
			g_error("line %u of tkmsctl list is not key %s: %s", i + 2,
				(const gchar *)names->pdata[i], line);
	}
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	description = g_malloc(DESCRIPTION_SIZE + 1);
	for (guint i = 0; i < DESCRIPTION_SIZE; i++)
		description[i] = "abcdefghijklmnopqrstuvwxyz0123456789 "[i % 37];
	description[DESCRIPTION_SIZE] = '\0';
	/* one user holds all the keys: no per-user quota */
	env = tkms_test_env_new_or_abort("[limits]\nMaxKeysPerUser=0\n");

	g_test_add_func("/keys-many/under-limit", test_under_limit);
	g_test_add_func("/keys-many/over-limit", test_over_limit);
	g_test_add_func("/keys-many/collect", test_collect);
	g_test_add_func("/keys-many/tkmsctl-list", test_tkmsctl_list);

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	g_free(description);
	return ret;
}
