/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-torture"

#include "tkms-torture.h"

#include <stdlib.h>
#include <string.h>

gboolean
tkms_torture_is_long(void)
{
	return g_strcmp0(g_getenv("TKMS_TORTURE"), "long") == 0;
}

guint
tkms_torture_figure(const gchar *env_name, guint short_value, guint long_value)
{
	const gchar *v = env_name != NULL ? g_getenv(env_name) : NULL;
	guint64 n = 0;

	if (v != NULL && g_ascii_string_to_unsigned(v, 10, 0, G_MAXUINT, &n, NULL))
		return (guint)n;
	return tkms_torture_is_long() ? long_value : short_value;
}

guint32
tkms_torture_seed(void)
{
	static gsize once;
	static guint32 seed;

	if (g_once_init_enter(&once)) {
		const gchar *v = g_getenv("TKMS_TORTURE_SEED");
		guint64 n = 0;

		if (v != NULL && g_ascii_string_to_unsigned(v, 10, 0, G_MAXUINT32, &n, NULL))
			seed = (guint32)n;
		else
			seed = g_random_int();
		g_test_message("random seed %u (TKMS_TORTURE_SEED=%u replays it), %s form", seed,
			       seed, tkms_torture_is_long() ? "long" : "short");
		g_once_init_leave(&once, 1);
	}
	return seed;
}

GDBusConnection *
tkms_torture_connect(TkmsTestEnv *env)
{
	g_autoptr(GError) error = NULL;
	GDBusConnection *c = g_dbus_connection_new_for_address_sync(
		tkms_test_env_get_bus_address(env),
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);

	g_assert_no_error(error);
	g_dbus_connection_set_exit_on_close(c, FALSE);
	return c;
}

gchar *
tkms_torture_outcome(const GError *error)
{
	g_autofree gchar *remote = NULL;

	if (error == NULL)
		return g_strdup("OK");
	remote = g_dbus_error_get_remote_error(error);
	if (remote == NULL)
		return g_strdup_printf("local:%s:%d", g_quark_to_string(error->domain),
				       error->code);
	if (g_str_has_prefix(remote, TKMS_TORTURE_ERROR_PREFIX))
		return g_strdup(remote + strlen(TKMS_TORTURE_ERROR_PREFIX));
	return g_steal_pointer(&remote);
}

gboolean
tkms_torture_error_is(const GError *error, const gchar *short_name)
{
	g_autofree gchar *outcome = tkms_torture_outcome(error);

	return error != NULL && g_str_equal(outcome, short_name);
}

GVariant *
tkms_torture_call_sync(GDBusConnection *connection, const gchar *method, GVariant *args,
		       const gchar *reply_type, gint timeout_ms, GError **error)
{
	return g_dbus_connection_call_sync(connection, TKMS_BUS_NAME, TKMS_OBJECT_PATH,
					   "org.tkms.KeyManager", method, args,
					   reply_type != NULL ? G_VARIANT_TYPE(reply_type) : NULL,
					   G_DBUS_CALL_FLAGS_NONE, timeout_ms, NULL, error);
}

GVariant *
tkms_torture_ay(const void *data, gsize len)
{
	return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, len, 1);
}

GVariant *
tkms_torture_ay_bytes(GBytes *b)
{
	gsize len = 0;
	const void *data = b != NULL ? g_bytes_get_data(b, &len) : NULL;

	return tkms_torture_ay(data, len);
}

GVariant *
tkms_torture_ay_str(const gchar *s)
{
	return tkms_torture_ay(s, strlen(s));
}

GBytes *
tkms_torture_bytes(GVariant *ay)
{
	gsize len = 0;
	const void *data = g_variant_get_fixed_array(ay, &len, 1);

	return g_bytes_new(data, len);
}

/* ---------------------------------------------------------------------------------------- */
/* Statistics                                                                                */

struct _TkmsTortureStats {
	GHashTable *counts; /* "method\noutcome" -> guint64 in a pointer-sized box */
	GArray *latencies;  /* gint64 us */
};

TkmsTortureStats *
tkms_torture_stats_new(void)
{
	TkmsTortureStats *s = g_new0(TkmsTortureStats, 1);

	s->counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	s->latencies = g_array_new(FALSE, FALSE, sizeof(gint64));
	return s;
}

void
tkms_torture_stats_free(TkmsTortureStats *stats)
{
	if (stats == NULL)
		return;
	g_hash_table_unref(stats->counts);
	g_array_unref(stats->latencies);
	g_free(stats);
}

void
tkms_torture_stats_add(TkmsTortureStats *stats, const gchar *method, const gchar *outcome,
		       gint64 latency_us)
{
	gchar *key = g_strdup_printf("%s\n%s", method, outcome);
	guint64 *n = g_hash_table_lookup(stats->counts, key);

	if (n == NULL) {
		n = g_new0(guint64, 1);
		g_hash_table_insert(stats->counts, key, n);
	} else {
		g_free(key);
	}
	(*n)++;
	g_array_append_val(stats->latencies, latency_us);
}

guint64
tkms_torture_stats_count(TkmsTortureStats *stats, const gchar *method, const gchar *outcome)
{
	GHashTableIter it;
	gpointer key, value;
	guint64 total = 0;

	g_hash_table_iter_init(&it, stats->counts);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		g_auto(GStrv) parts = g_strsplit(key, "\n", 2);
		if ((method == NULL || g_str_equal(parts[0], method)) &&
		    (outcome == NULL || g_str_equal(parts[1], outcome)))
			total += *(guint64 *)value;
	}
	return total;
}

guint64
tkms_torture_stats_total(TkmsTortureStats *stats)
{
	return stats->latencies->len;
}

static gint
cmp_str_ptr(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const gchar *const *)a, *(const gchar *const *)b);
}

GPtrArray *
tkms_torture_stats_methods(TkmsTortureStats *stats)
{
	GPtrArray *methods = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer key;

	g_hash_table_iter_init(&it, stats->counts);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		g_autofree gchar *method = g_strndup(key, strcspn(key, "\n"));
		gboolean seen = FALSE;
		for (guint i = 0; i < methods->len && !seen; i++)
			seen = g_str_equal(g_ptr_array_index(methods, i), method);
		if (!seen)
			g_ptr_array_add(methods, g_steal_pointer(&method));
	}
	g_ptr_array_sort(methods, cmp_str_ptr);
	return methods;
}

static gint
cmp_i64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
	return x < y ? -1 : x > y;
}

gint64
tkms_torture_stats_latency(TkmsTortureStats *stats, gdouble quantile)
{
	guint n = stats->latencies->len;
	guint i;

	if (n == 0)
		return 0;
	g_array_sort(stats->latencies, cmp_i64);
	i = (guint)(quantile * (n - 1) + 0.5);
	return g_array_index(stats->latencies, gint64, MIN(i, n - 1));
}

void
tkms_torture_stats_print(TkmsTortureStats *stats, const gchar *title)
{
	g_autoptr(GPtrArray) methods = tkms_torture_stats_methods(stats);

	g_test_message("%s: %" G_GUINT64_FORMAT " calls; latency p50 %.1f ms, p99 %.1f ms, "
		       "max %.1f ms",
		       title, tkms_torture_stats_total(stats),
		       tkms_torture_stats_latency(stats, 0.5) / 1e3,
		       tkms_torture_stats_latency(stats, 0.99) / 1e3,
		       tkms_torture_stats_latency(stats, 1.0) / 1e3);
	for (guint i = 0; i < methods->len; i++) {
		const gchar *method = g_ptr_array_index(methods, i);
		g_autoptr(GString) line = g_string_new(NULL);
		GHashTableIter it;
		gpointer key, value;

		g_string_append_printf(line, "  %-22s", method);
		g_hash_table_iter_init(&it, stats->counts);
		while (g_hash_table_iter_next(&it, &key, &value)) {
			g_auto(GStrv) parts = g_strsplit(key, "\n", 2);
			if (g_str_equal(parts[0], method))
				g_string_append_printf(line, " %s=%" G_GUINT64_FORMAT, parts[1],
						       *(guint64 *)value);
		}
		g_test_message("%s", line->str);
	}
}

/* ---------------------------------------------------------------------------------------- */
/* The TPM, asked directly                                                                   */

/* Stops tkmsd if it runs; returns whether it did. */
static gboolean
pause_daemon(TkmsTestEnv *env)
{
	g_autoptr(GError) error = NULL;

	if (!tkms_test_env_daemon_is_running(env))
		return FALSE;
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	return TRUE;
}

static void
resume_daemon(TkmsTestEnv *env, gboolean was_running)
{
	g_autoptr(GError) error = NULL;

	if (!was_running)
		return;
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
}

/* tpm2_getcap with tkmsd stopped. */
static gchar *
getcap(TkmsTestEnv *env, const gchar *capability)
{
	g_autoptr(GError) error = NULL;
	const gchar *argv[] = {"tpm2_getcap", "-T", tkms_test_env_get_tcti(env), capability, NULL};
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	g_assert_false(tkms_test_env_daemon_is_running(env));
	g_assert_true(tkms_test_env_run(env, argv, &out, &err, &status, &error));
	g_assert_no_error(error);
	if (status != 0)
		g_test_message("tpm2_getcap %s: status %d: %s", capability, status, err);
	g_assert_cmpint(status, ==, 0);
	return g_steal_pointer(&out);
}

static GPtrArray *
handles_of(TkmsTestEnv *env, const gchar *capability)
{
	g_autofree gchar *out = getcap(env, capability);
	g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
	GPtrArray *handles = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; lines[i] != NULL; i++) {
		const gchar *h = strstr(lines[i], "0x");
		if (h != NULL)
			g_ptr_array_add(handles, g_strstrip(g_strdup(h)));
	}
	return handles;
}

GPtrArray *
tkms_torture_tpm_handles(TkmsTestEnv *env, const gchar *capability)
{
	gboolean was_running = pause_daemon(env);
	GPtrArray *handles = handles_of(env, capability);

	resume_daemon(env, was_running);
	return handles;
}

guint32
tkms_torture_tpm_property(TkmsTestEnv *env, const gchar *property)
{
	gboolean was_running = pause_daemon(env);
	g_autofree gchar *out = getcap(env, "properties-variable");
	g_autofree gchar *label = g_strdup_printf("%s:", property);
	const gchar *at = strstr(out, label);
	guint64 v;

	if (at == NULL)
		g_error("tpm2_getcap properties-variable has no %s:\n%s", property, out);
	v = g_ascii_strtoull(at + strlen(label), NULL, 0);
	resume_daemon(env, was_running);
	return (guint32)v;
}

void
tkms_torture_assert_tpm_empty(TkmsTestEnv *env)
{
	static const gchar *const kinds[] = {"handles-transient", "handles-loaded-session",
					     "handles-saved-session"};

	gboolean was_running = pause_daemon(env);

	for (guint i = 0; i < G_N_ELEMENTS(kinds); i++) {
		g_autoptr(GPtrArray) handles = handles_of(env, kinds[i]);
		g_autofree gchar *list = NULL;

		g_ptr_array_add(handles, NULL);
		list = g_strjoinv(" ", (gchar **)handles->pdata);
		g_test_message("TPM %s: [%s]", kinds[i], list);
		if (handles->len > 1)
			g_error("the TPM still holds %s after tkmsd's clean stop: %s", kinds[i],
				list);
	}
	resume_daemon(env, was_running);
}

guint64
tkms_torture_rss_kib(gint pid)
{
	g_autofree gchar *path = g_strdup_printf("/proc/%d/status", pid);
	g_autofree gchar *status = NULL;
	const gchar *line;

	if (pid <= 0 || !g_file_get_contents(path, &status, NULL, NULL))
		return 0;
	line = strstr(status, "\nVmRSS:");
	return line != NULL ? g_ascii_strtoull(line + strlen("\nVmRSS:"), NULL, 10) : 0;
}
