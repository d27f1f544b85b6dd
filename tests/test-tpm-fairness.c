/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-tpm-fairness"

/*
 * One caller cannot stall the TPM for everyone (issue 9, item 2). User A (root, this process)
 * runs the largest GetRandom and the largest Hmac that [limits] MaxPayload allows (1 MiB), each
 * in a loop of its own; meanwhile user B (tkms-test-b, a "tkms-test-helper bench"
 * process) makes SAMPLES synchronous Sign calls. B's p99 stays under P99_BOUND_MS: tkmsd takes
 * the TPM in turns per uid, and long work is split into pieces (or, for GetRandom, served by a
 * DRBG seeded from the TPM), so B waits for a piece, not for a whole 1 MiB request. The bound
 * is generous on purpose: this asserts fairness, it is not a benchmark figure. A's MACs, made
 * in pieces while B waits, equal the one made alone before the flood.
 */

#include <json-glib/json-glib.h>
#include <string.h>

#include "tkms-test-util.h"

#define USER_B "tkms-test-b"
#define SAMPLES 200
#define WARMUP 5
#define MAX_SECONDS 120
#define P99_BOUND_MS 250
#define FLOOD_SIZE (1024 * 1024) /* TKMS_DEFAULT_MAX_PAYLOAD */
#define FLOOD_IN_FLIGHT 1	 /* of each kind */
#define FLOOD_LEAD_MS 1000	 /* A floods alone this long before B starts */
#define FLOOD_DRAIN_S 60	 /* then A's calls in flight may finish this long */

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))

typedef struct {
	GCancellable *cancel;
	gchar *hmac_key;
	GBytes *message;
	GBytes *mac; /* of message, computed alone: served in pieces, it must come out the same */
	gboolean stopping;
	guint active;
	guint64 randoms, hmacs, failed;
	gchar *first_error;
	gint64 t_start;
} Flood;

typedef struct {
	Flood *flood;
	gboolean hmac;
} FloodSlot;

static void flood_next(FloodSlot *slot);

static void
flood_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	FloodSlot *slot = user_data;
	Flood *f = slot->flood;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) out = NULL;

	if (slot->hmac)
		out = tkms_client_hmac_finish(TKMS_CLIENT(source), res, &error);
	else
		out = tkms_client_get_random_finish(TKMS_CLIENT(source), res, &error);
	if (out != NULL) {
		if (slot->hmac)
			f->hmacs++;
		else
			f->randoms++;
		g_assert_cmpuint(g_bytes_get_size(out), ==, slot->hmac ? 32 : FLOOD_SIZE);
		if (slot->hmac)
			tkms_assert_bytes_equal(out, f->mac);
	} else if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		f->failed++;
		if (f->first_error == NULL)
			f->first_error = g_strdup(error->message);
	}
	flood_next(slot);
}

static void
flood_next(FloodSlot *slot)
{
	Flood *f = slot->flood;

	if (f->stopping) {
		f->active--;
		g_free(slot);
		return;
	}
	if (slot->hmac)
		tkms_client_hmac(CLIENT, f->hmac_key, f->message, f->cancel, flood_cb, slot);
	else
		tkms_client_get_random(CLIENT, FLOOD_SIZE, f->cancel, flood_cb, slot);
}

static void
flood_start(Flood *f)
{
	f->t_start = g_get_monotonic_time();
	for (guint i = 0; i < 2 * FLOOD_IN_FLIGHT; i++) {
		FloodSlot *slot = g_new0(FloodSlot, 1);
		slot->flood = f;
		slot->hmac = i % 2 == 1;
		f->active++;
		flood_next(slot);
	}
}

/* No new calls; those in flight may finish (they count) for a while, then are cancelled. */
static void
flood_stop(Flood *f)
{
	gint64 deadline = g_get_monotonic_time() + FLOOD_DRAIN_S * G_USEC_PER_SEC;

	f->stopping = TRUE;
	while (f->active > 0 && g_get_monotonic_time() < deadline)
		tkms_test_spin(100);
	g_cancellable_cancel(f->cancel);
	while (f->active > 0)
		g_main_context_iteration(NULL, TRUE);
}

static gint
cmp_u64(gconstpointer a, gconstpointer b)
{
	guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;
	return x < y ? -1 : x > y;
}

static void
communicate_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	gchar **out = user_data;
	g_autoptr(GError) error = NULL;

	if (!g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), res, out, NULL, &error))
		*out = g_strdup_printf("(communicate failed: %s)", error->message);
}

/* Runs B's synchronous Sign calls as USER_B while this process's main context serves A's
 * flood; returns the helper's JSON line. */
static gchar *
run_b(const gchar *key)
{
	g_autofree gchar *count = g_strdup_printf("%u", SAMPLES);
	g_autofree gchar *warmup = g_strdup_printf("%u", WARMUP);
	g_autofree gchar *secs = g_strdup_printf("%u", MAX_SECONDS);
	const gchar *argv[] = {
	    tkms_test_helper_path(), "bench", "sign", key, "1", "1", warmup, count, secs, NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) proc = tkms_test_env_spawn_as(env, USER_B, argv, &error);
	gchar *out = NULL;

	g_assert_no_error(error);
	/* no input: its stdin is closed at once (the helper reads it only in flood mode) */
	g_subprocess_communicate_utf8_async(proc, NULL, NULL, communicate_cb, &out);
	while (out == NULL)
		g_main_context_iteration(NULL, TRUE);
	g_subprocess_wait(proc, NULL, NULL);
	return out;
}

static void
test_sign_under_flood(void)
{
	g_autofree gchar *b_key = tkms_test_key_name("fair-b-ec");
	g_autofree gchar *out = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) lat = g_array_new(FALSE, FALSE, sizeof(guint64));
	g_autoptr(GVariant) info = NULL;
	Flood f = {0};
	const gchar *line;
	JsonObject *o;
	JsonArray *a;
	gdouble flood_s, p50, p99, max;
	gint status = -1;

	{
		const gchar *argv[] = {tkms_test_helper_path(), "create", b_key, "ecdsa-p256",
				       NULL};
		g_autofree gchar *o_out = NULL;
		g_autofree gchar *o_err = NULL;
		tkms_test_env_run_as(env, USER_B, argv, &o_out, &o_err, &status, &error);
		g_assert_no_error(error);
		g_assert_cmpint(status, ==, 0);
	}
	f.cancel = g_cancellable_new();
	f.hmac_key = tkms_test_key_name("fair-a-hmac");
	f.message = tkms_test_bytes_pattern(FLOOD_SIZE, 9);
	info = tkms_test_create_key(CLIENT, f.hmac_key, "hmac-sha256", NULL);
	f.mac = tkms_client_hmac_sync(CLIENT, f.hmac_key, f.message, NULL, &error);
	g_assert_no_error(error);

	flood_start(&f);
	tkms_test_spin(FLOOD_LEAD_MS);
	out = run_b(b_key);
	flood_s = (g_get_monotonic_time() - f.t_start) / 1e6;
	g_test_message("A (uid 0) during B's run (%.1f s): %" G_GUINT64_FORMAT
		       " GetRandom(1 MiB), %" G_GUINT64_FORMAT " Hmac(1 MiB)",
		       flood_s, f.randoms, f.hmacs);
	flood_stop(&f);
	g_test_message("A in all: %" G_GUINT64_FORMAT " GetRandom(1 MiB), %" G_GUINT64_FORMAT
		       " Hmac(1 MiB), %" G_GUINT64_FORMAT " failed%s%s",
		       f.randoms, f.hmacs, f.failed, f.first_error ? ": " : "",
		       f.first_error ? f.first_error : "");

	line = strrchr(g_strchomp(out), '\n');
	line = line != NULL ? line + 1 : out;
	g_test_message("B (%s): %s", USER_B, g_utf8_substring(line, 0, 200));
	json_parser_load_from_data(parser, line, -1, &error);
	g_assert_no_error(error);
	o = json_node_get_object(json_parser_get_root(parser));
	g_assert_true(json_object_get_null_member(o, "error"));
	a = json_object_get_array_member(o, "lat_ns");
	for (guint i = 0; i < json_array_get_length(a); i++) {
		guint64 v = (guint64)json_array_get_int_element(a, i);
		g_array_append_val(lat, v);
	}
	g_assert_cmpuint(lat->len, ==, SAMPLES);
	g_array_sort(lat, cmp_u64);
	p50 = g_array_index(lat, guint64, (SAMPLES - 1) / 2) / 1e6;
	p99 = g_array_index(lat, guint64, (99 * SAMPLES + 99) / 100 - 1) / 1e6;
	max = g_array_index(lat, guint64, SAMPLES - 1) / 1e6;
	g_test_message("B's Sign under A's flood: p50 %.1f ms, p99 %.1f ms, max %.1f ms", p50, p99,
		       max);
	/* A did its work too: the flood was real, not starved */
	g_assert_cmpuint(f.failed, ==, 0);
	g_assert_cmpuint(f.randoms, >, 0);
	g_assert_cmpuint(f.hmacs, >, 0);
	g_assert_cmpfloat(p99, <, P99_BOUND_MS);

	g_object_unref(f.cancel);
	g_free(f.hmac_key);
	g_bytes_unref(f.message);
	g_bytes_unref(f.mac);
	g_free(f.first_error);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int ret;

	g_test_init(&argc, &argv, NULL);
	/* memcheck makes tkmsd's every step 20 to 50 times slower, the TPM's not: B's latency
	 * would measure valgrind, and no factor keeps a 250 ms bound meaningful */
	tkms_test_skip_under_valgrind("it bounds another user's Sign latency at 250 ms");
	if (!tkms_test_ensure_user(USER_B, NULL, NULL, &error))
		tkms_test_exit_on_error("cannot set up user " USER_B, error);
	env = tkms_test_env_new_or_abort(NULL);
	g_test_add_func("/tpm-fairness/sign-under-flood", test_sign_under_flood);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	return ret;
}
