/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-helper"

/*
 * A tiny libtkms caller for tests that need another uid (run through setpriv by
 * tkms_test_env_run_as_user()). It talks to the bus in $TKMS_TEST_BUS_ADDRESS.
 *
 *   tkms-test-helper unseal FILE          prints the data in hex
 *   tkms-test-helper decrypt NAME FILE    (empty context) prints the plaintext in hex
 *   tkms-test-helper list                 prints the caller's key names, one a line
 *   tkms-test-helper info NAME            prints the owner uid
 *   tkms-test-helper create NAME TYPE
 *   tkms-test-helper own NAME             tries to own a bus name
 *
 * Success: exit 0. A D-Bus/libtkms error: "ERROR <ShortName>: <message>" on stdout, exit 2.
 * Usage or local errors: exit 1.
 *
 * Raw D-Bus calls to org.tkms.KeyManager at /org/tkms/KeyManager, any method by name, the
 * arguments as one GVariant text tuple (g_variant_parse(), e.g. "('k', b'data', b'')"):
 *
 *   tkms-test-helper call [-i] METHOD ARGS
 *   tkms-test-helper serve                one call per stdin line "METHOD FLAGS ARGS"
 *
 * METHOD may be INTERFACE.MEMBER for another interface of the object; -i / FLAGS "i" sets
 * ALLOW_INTERACTIVE_AUTHORIZATION (FLAGS "-": none). Each call uses a new connection, so the
 * daemon knows nothing about the caller, unless FLAGS has "k": then serve's one kept
 * connection (opened at its first use). One line of output per call:
 *   OK <reply as GVariant text>
 *   ERR <D-Bus error name> <message on one line>
 * (local failures: ERR local.<domain>.<code> <message>). call exits 0 either way; serve ends
 * at EOF or "quit".
 *
 *   tkms-test-helper stress N SEED CONCURRENCY MAX_DELAY_MS SPEC...
 *
 * N callers, CONCURRENCY at a time, each on its own connection, each doing SPEC number
 * (i % number of SPECs), SPEC = "METHOD ARGS" (every "%u" in ARGS becomes the caller's index),
 * and leaving at a random moment (SEED): before sending, right after sending, 0..MAX_DELAY_MS
 * after sending, or after the reply. Prints per SPEC:
 *   SPEC <n> <METHOD> sent=<n> ok=<n> closed=<n> [<D-Bus error name>=<n> ...]
 * and "TOTAL callers=<n> before=<n> after-send=<n> mid-flight=<n> after-reply=<n>
 * connect-failed=<n>" (closed: no reply because the caller had left).
 *
 *   tkms-test-helper bench OP KEY CONNECTIONS IN_FLIGHT WARMUP COUNT MAX_SECONDS
 *
 * For tkms-bench: OP (encrypt: 32 B, context "tkms-bench"; sign: 32 B) with the caller's key
 * KEY through libtkms, IN_FLIGHT calls outstanding on each of CONNECTIONS connections. COUNT
 * > 0: a measured run, synchronous (tkms_client_*_sync; 1 connection, 1 in flight): WARMUP
 * calls, then COUNT measured calls, or fewer if MAX_SECONDS (> 0) run out; it stops at its
 * first error. COUNT 0: a flood, which prints "READY" once WARMUP calls have completed, is
 * measured from then until a line or EOF arrives on stdin (every call answered in that
 * window, whenever it was sent), counts errors and goes on. Prints one line of JSON:
 * {"calls", "seconds", "failed", "error" (the first, or null), "errors" (error name ->
 * count), "lat_ns" (each measured call's latency)}. Exit 0 unless the arguments are wrong.
 */

#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tkms-client.h"

static gchar *
hex(GBytes *b)
{
	gsize len;
	const guint8 *data = g_bytes_get_data(b, &len);
	GString *s = g_string_new(NULL);

	for (gsize i = 0; i < len; i++)
		g_string_append_printf(s, "%02x", data[i]);
	return g_string_free(s, FALSE);
}

static int
report(GError *error)
{
	if (error->domain == TKMS_ERROR)
		g_print("ERROR %s: %s\n", tkms_error_to_short_name((TkmsError)error->code),
			error->message);
	else
		g_print("ERROR %s:%d: %s\n", g_quark_to_string(error->domain), error->code,
			error->message);
	return 2;
}

static GBytes *
read_file(const gchar *path)
{
	g_autoptr(GError) error = NULL;
	gchar *contents = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &contents, &len, &error)) {
		g_printerr("%s\n", error->message);
		exit(1);
	}
	return g_bytes_new_take(contents, len);
}

/* ---- raw calls ---- */

#define RAW_DEST "org.tkms.KeyManager"
#define RAW_PATH "/org/tkms/KeyManager"
#define RAW_IFACE "org.tkms.KeyManager"
#define RAW_TIMEOUT_MS 25000
#define CONNECT_FLAGS                                                                           \
	(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |                                        \
	 G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION)

static gchar *
one_line(const gchar *s)
{
	gchar *copy = g_strdup(s);
	for (gchar *p = copy; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return copy;
}

static void
print_error(const GError *error)
{
	g_autofree gchar *name = g_dbus_error_get_remote_error(error);
	g_autofree gchar *msg = NULL;
	GError *copy = g_error_copy(error);

	g_dbus_error_strip_remote_error(copy);
	msg = one_line(copy->message);
	g_error_free(copy);
	if (name != NULL)
		g_print("ERR %s %s\n", name, msg);
	else
		g_print("ERR local.%s.%d %s\n", g_quark_to_string(error->domain), error->code, msg);
}

/* METHOD or INTERFACE.MEMBER */
static void
split_method(const gchar *method, gchar **iface, gchar **member)
{
	const gchar *dot = strrchr(method, '.');
	if (dot == NULL) {
		*iface = g_strdup(RAW_IFACE);
		*member = g_strdup(method);
	} else {
		*iface = g_strndup(method, dot - method);
		*member = g_strdup(dot + 1);
	}
}

static GDBusConnection *kept_connection;

static void
raw_call(const gchar *address, const gchar *method, gboolean interactive, gboolean keep,
	 const gchar *args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) params = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GDBusConnection) connection = NULL;
	g_autofree gchar *iface = NULL;
	g_autofree gchar *member = NULL;
	g_autofree gchar *text = NULL;

	params = g_variant_parse(NULL, args, NULL, NULL, &error);
	if (params == NULL) {
		print_error(error);
		return;
	}
	if (!g_variant_is_of_type(params, G_VARIANT_TYPE_TUPLE)) {
		g_print("ERR local.args-not-a-tuple %s\n", args);
		return;
	}
	if (keep && kept_connection != NULL && g_dbus_connection_is_closed(kept_connection))
		g_clear_object(&kept_connection);
	if (keep && kept_connection != NULL) {
		connection = g_object_ref(kept_connection);
	} else {
		connection = g_dbus_connection_new_for_address_sync(address, CONNECT_FLAGS, NULL,
								    NULL, &error);
		if (connection == NULL) {
			print_error(error);
			return;
		}
		if (keep)
			kept_connection = g_object_ref(connection);
	}
	split_method(method, &iface, &member);
	reply = g_dbus_connection_call_sync(
		connection, RAW_DEST, RAW_PATH, iface, member, g_steal_pointer(&params), NULL,
		interactive ? G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION
			    : G_DBUS_CALL_FLAGS_NONE,
		RAW_TIMEOUT_MS, NULL, &error);
	if (reply == NULL)
		print_error(error);
	else {
		text = g_variant_print(reply, TRUE);
		g_print("OK %s\n", text);
	}
	if (!keep)
		g_dbus_connection_close_sync(connection, NULL, NULL);
}

static int
serve(const gchar *address)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, stdin)) > 0) {
		gchar **parts;

		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (g_str_equal(line, "quit"))
			break;
		parts = g_strsplit(line, " ", 3);
		if (g_strv_length(parts) != 3)
			g_print("ERR local.usage expected \"METHOD FLAGS ARGS\"\n");
		else
			raw_call(address, parts[0], strchr(parts[1], 'i') != NULL,
				 strchr(parts[1], 'k') != NULL, parts[2]);
		fflush(stdout);
		g_strfreev(parts);
	}
	free(line);
	return 0;
}

/* ---- stress ---- */

enum { LEAVE_BEFORE_SEND, LEAVE_AFTER_SEND, LEAVE_MID_FLIGHT, LEAVE_AFTER_REPLY, N_LEAVE };

typedef struct {
	gchar *iface;
	gchar *member;
	gchar *args;
	guint sent, ok, closed;
	GHashTable *errors; /* D-Bus error name -> count */
} StressSpec;

typedef struct {
	const gchar *address;
	StressSpec *specs;
	guint n_specs;
	guint total, started, finished, active, concurrency, max_delay_ms;
	guint leave_count[N_LEAVE];
	guint connect_failed;
	GRand *rand;
	GMainLoop *loop;
} StressRun;

typedef struct {
	StressRun *run;
	guint index;
	guint leave;
	guint delay_ms;
	StressSpec *spec;
	GDBusConnection *conn;
	guint pending;
} StressCaller;

static void stress_start_more(StressRun *run);

static void
stress_maybe_finish(StressCaller *c)
{
	StressRun *run = c->run;

	if (c->pending > 0)
		return;
	g_clear_object(&c->conn);
	g_free(c);
	run->finished++;
	run->active--;
	if (run->finished == run->total)
		g_main_loop_quit(run->loop);
	else
		stress_start_more(run);
}

static void
stress_closed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	StressCaller *c = user_data;
	g_dbus_connection_close_finish(G_DBUS_CONNECTION(source), res, NULL);
	c->pending--;
	stress_maybe_finish(c);
}

static void
stress_close(StressCaller *c)
{
	c->pending++;
	g_dbus_connection_close(c->conn, NULL, stress_closed_cb, c);
}

static void
stress_reply_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	StressCaller *c = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res,
								  &error);

	if (reply != NULL) {
		c->spec->ok++;
	} else {
		g_autofree gchar *name = g_dbus_error_get_remote_error(error);
		if (name == NULL) {
			c->spec->closed++;
		} else {
			guint n = GPOINTER_TO_UINT(g_hash_table_lookup(c->spec->errors, name));
			g_hash_table_replace(c->spec->errors, g_steal_pointer(&name),
					     GUINT_TO_POINTER(n + 1));
		}
	}
	c->pending--;
	if (c->leave == LEAVE_AFTER_REPLY)
		stress_close(c);
	stress_maybe_finish(c);
}

static gboolean
stress_timer_cb(gpointer user_data)
{
	StressCaller *c = user_data;
	c->pending--;
	stress_close(c);
	stress_maybe_finish(c);
	return G_SOURCE_REMOVE;
}

static void
stress_connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	StressCaller *c = user_data;
	g_autoptr(GError) error = NULL;

	c->pending--;
	c->conn = g_dbus_connection_new_for_address_finish(res, &error);
	if (c->conn == NULL) {
		c->run->connect_failed++;
		stress_maybe_finish(c);
		return;
	}
	c->run->leave_count[c->leave]++;
	if (c->leave != LEAVE_BEFORE_SEND) {
		g_autoptr(GString) args = g_string_new(c->spec->args);
		g_autofree gchar *idx = g_strdup_printf("%u", c->index);
		GVariant *params;

		g_string_replace(args, "%u", idx, 0);
		params = g_variant_parse(NULL, args->str, NULL, NULL, &error);
		g_assert_no_error(error);
		c->spec->sent++;
		c->pending++;
		g_dbus_connection_call(c->conn, RAW_DEST, RAW_PATH, c->spec->iface,
				       c->spec->member, params, NULL, G_DBUS_CALL_FLAGS_NONE,
				       RAW_TIMEOUT_MS, NULL, stress_reply_cb, c);
	}
	switch (c->leave) {
	case LEAVE_BEFORE_SEND:
	case LEAVE_AFTER_SEND:
		stress_close(c);
		break;
	case LEAVE_MID_FLIGHT:
		c->pending++;
		g_timeout_add(c->delay_ms, stress_timer_cb, c);
		break;
	default:
		break;
	}
	stress_maybe_finish(c);
}

static void
stress_start_more(StressRun *run)
{
	while (run->active < run->concurrency && run->started < run->total) {
		StressCaller *c = g_new0(StressCaller, 1);

		c->run = run;
		c->index = run->started++;
		c->spec = &run->specs[c->index % run->n_specs];
		c->leave = g_rand_int_range(run->rand, 0, N_LEAVE);
		c->delay_ms = g_rand_int_range(run->rand, 0, (gint32)run->max_delay_ms + 1);
		c->pending = 1;
		run->active++;
		g_dbus_connection_new_for_address(run->address, CONNECT_FLAGS, NULL, NULL,
						  stress_connected_cb, c);
	}
}

static int
stress(const gchar *address, int argc, char **argv)
{
	StressRun run = {0};

	run.address = address;
	run.total = (guint)g_ascii_strtoull(argv[0], NULL, 10);
	run.rand = g_rand_new_with_seed((guint32)g_ascii_strtoull(argv[1], NULL, 10));
	run.concurrency = MAX(1, (guint)g_ascii_strtoull(argv[2], NULL, 10));
	run.max_delay_ms = (guint)g_ascii_strtoull(argv[3], NULL, 10);
	run.n_specs = argc - 4;
	run.specs = g_new0(StressSpec, run.n_specs);
	for (guint i = 0; i < run.n_specs; i++) {
		const gchar *spec = argv[4 + i];
		const gchar *space = strchr(spec, ' ');
		g_autofree gchar *method = NULL;
		if (space == NULL) {
			g_printerr("bad SPEC (want \"METHOD ARGS\"): %s\n", spec);
			return 1;
		}
		method = g_strndup(spec, space - spec);
		split_method(method, &run.specs[i].iface, &run.specs[i].member);
		run.specs[i].args = g_strdup(space + 1);
		run.specs[i].errors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	}
	run.loop = g_main_loop_new(NULL, FALSE);
	if (run.total > 0) {
		stress_start_more(&run);
		g_main_loop_run(run.loop);
	}
	for (guint i = 0; i < run.n_specs; i++) {
		StressSpec *sp = &run.specs[i];
		GHashTableIter iter;
		gpointer k, v;

		g_print("SPEC %u %s sent=%u ok=%u closed=%u", i, sp->member, sp->sent, sp->ok,
			sp->closed);
		g_hash_table_iter_init(&iter, sp->errors);
		while (g_hash_table_iter_next(&iter, &k, &v))
			g_print(" %s=%u", (const gchar *)k, GPOINTER_TO_UINT(v));
		g_print("\n");
	}
	g_print("TOTAL callers=%u before=%u after-send=%u mid-flight=%u after-reply=%u "
		"connect-failed=%u\n",
		run.finished, run.leave_count[LEAVE_BEFORE_SEND], run.leave_count[LEAVE_AFTER_SEND],
		run.leave_count[LEAVE_MID_FLIGHT], run.leave_count[LEAVE_AFTER_REPLY],
		run.connect_failed);
	return 0;
}

/* ---- bench ---- */

typedef struct {
	gboolean sign;
	const gchar *key;
	GBytes *data;
	GBytes *context;
	TkmsClient **clients;
	guint64 warmup, count;
	gdouble max_seconds;
	guint64 finished;
	guint active;
	gboolean measuring, stopping;
	guint64 t_start, t_stop;
	GArray *lat; /* guint64 ns */
	guint64 failed;
	gchar *first_error;
	GHashTable *errors; /* name -> count */
	GMainLoop *loop;
} BenchRun;

typedef struct {
	BenchRun *run;
	TkmsClient *client;
	guint64 t0;
} BenchSlot;

static guint64
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (guint64)ts.tv_sec * 1000000000u + (guint64)ts.tv_nsec;
}

static void
bench_error(BenchRun *run, const GError *error)
{
	g_autofree gchar *name = g_dbus_error_get_remote_error(error);
	guint n;

	if (name == NULL)
		name = error->domain == TKMS_ERROR
			       ? g_strdup(tkms_error_to_short_name((TkmsError)error->code))
			       : g_strdup_printf("local.%s.%d", g_quark_to_string(error->domain),
						 error->code);
	run->failed++;
	if (run->first_error == NULL)
		run->first_error = g_strdup_printf("%s: %s", name, error->message);
	n = GPOINTER_TO_UINT(g_hash_table_lookup(run->errors, name));
	g_hash_table_replace(run->errors, g_steal_pointer(&name), GUINT_TO_POINTER(n + 1));
}

static gboolean
bench_sync_call(BenchRun *run, GError **error)
{
	g_autoptr(GBytes) out = NULL;

	if (run->sign)
		out = tkms_client_sign_sync(run->clients[0], run->key, run->data, NULL, error);
	else
		out = tkms_client_encrypt_sync(run->clients[0], run->key, run->data, run->context,
					       NULL, error);
	return out != NULL;
}

static void
bench_start_window(BenchRun *run)
{
	run->measuring = TRUE;
	run->t_start = bench_now_ns();
	g_print("READY\n");
	fflush(stdout);
}

static void bench_slot_next(BenchSlot *slot);

static void
bench_call_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	BenchSlot *slot = user_data;
	BenchRun *run = slot->run;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) out = NULL;

	if (run->sign)
		out = tkms_client_sign_finish(TKMS_CLIENT(source), res, &error);
	else
		out = tkms_client_encrypt_finish(TKMS_CLIENT(source), res, &error);
	run->finished++;
	if (run->measuring && !run->stopping) {
		if (out == NULL) {
			bench_error(run, error);
		} else {
			/* every call answered in the window, also those sent before it: with
			 * many in flight a call may take longer than the whole window */
			guint64 dt = bench_now_ns() - slot->t0;
			g_array_append_val(run->lat, dt);
		}
	}
	if (!run->measuring && run->finished >= run->warmup)
		bench_start_window(run);
	bench_slot_next(slot);
}

static void
bench_slot_next(BenchSlot *slot)
{
	BenchRun *run = slot->run;

	if (run->stopping) {
		if (--run->active == 0)
			g_main_loop_quit(run->loop);
		return;
	}
	slot->t0 = bench_now_ns();
	if (run->sign)
		tkms_client_sign(slot->client, run->key, run->data, NULL, bench_call_cb, slot);
	else
		tkms_client_encrypt(slot->client, run->key, run->data, run->context, NULL,
				    bench_call_cb, slot);
}

/* A line or EOF on stdin ends the flood's measured window. */
static gboolean
bench_stdin_cb(gint fd, GIOCondition condition, gpointer user_data)
{
	BenchRun *run = user_data;

	run->stopping = TRUE;
	run->t_stop = bench_now_ns();
	if (!run->measuring)
		run->t_start = run->t_stop; /* stopped before it was ready: nothing measured */
	return G_SOURCE_REMOVE;
}

static void
bench_print(BenchRun *run, guint64 calls, gdouble seconds)
{
	GString *out = g_string_new(NULL);
	GHashTableIter iter;
	gpointer k, v;
	gboolean first = TRUE;

	g_string_append_printf(out,
			       "{\"calls\": %" G_GUINT64_FORMAT ", \"seconds\": %.6f, "
			       "\"failed\": %" G_GUINT64_FORMAT ", \"error\": ",
			       calls, seconds, run->failed);
	if (run->first_error == NULL) {
		g_string_append(out, "null");
	} else {
		g_string_append_c(out, '"');
		for (const gchar *p = run->first_error; *p != '\0'; p++)
			g_string_append_c(out, *p == '"' || *p == '\\' || (guchar)*p < 0x20 ||
						       (guchar)*p >= 0x7f
					       ? ' '
					       : *p);
		g_string_append_c(out, '"');
	}
	g_string_append(out, ", \"errors\": {");
	g_hash_table_iter_init(&iter, run->errors);
	while (g_hash_table_iter_next(&iter, &k, &v)) {
		g_string_append_printf(out, "%s\"%s\": %u", first ? "" : ", ", (const gchar *)k,
				       GPOINTER_TO_UINT(v));
		first = FALSE;
	}
	g_string_append(out, "}, \"lat_ns\": [");
	for (guint i = 0; i < run->lat->len; i++)
		g_string_append_printf(out, "%s%" G_GUINT64_FORMAT, i ? "," : "",
				       g_array_index(run->lat, guint64, i));
	g_string_append(out, "]}\n");
	fputs(out->str, stdout);
	fflush(stdout);
	g_string_free(out, TRUE);
}

static int
bench(const gchar *address, char **argv)
{
	static const gchar payload[32] = "tkms-bench: 32 bytes of payload";
	BenchRun run = {0};
	guint n_conn, in_flight;
	g_autofree BenchSlot *slots = NULL;

	n_conn = (guint)g_ascii_strtoull(argv[2], NULL, 10);
	in_flight = (guint)g_ascii_strtoull(argv[3], NULL, 10);
	run.warmup = g_ascii_strtoull(argv[4], NULL, 10);
	run.count = g_ascii_strtoull(argv[5], NULL, 10);
	run.max_seconds = g_ascii_strtod(argv[6], NULL);
	if ((!g_str_equal(argv[0], "sign") && !g_str_equal(argv[0], "encrypt")) || n_conn < 1 ||
	    n_conn > 64 || in_flight < 1 || in_flight > 1000 ||
	    (run.count > 0 && (n_conn != 1 || in_flight != 1))) {
		g_printerr("bench: OP is encrypt or sign; 1 <= CONNECTIONS <= 64, "
			   "1 <= IN_FLIGHT <= 1000; a measured run (COUNT > 0) is 1 x 1\n");
		return 1;
	}
	run.sign = g_str_equal(argv[0], "sign");
	run.key = argv[1];
	run.data = g_bytes_new_static(payload, sizeof(payload));
	run.context = g_bytes_new_static("tkms-bench", 10);
	run.lat = g_array_new(FALSE, FALSE, sizeof(guint64));
	run.errors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	run.clients = g_new0(TkmsClient *, n_conn);
	for (guint i = 0; i < n_conn; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GDBusConnection) c = g_dbus_connection_new_for_address_sync(
			address, CONNECT_FLAGS, NULL, NULL, &error);

		if (c != NULL)
			run.clients[i] = tkms_client_new_sync(c, NULL, &error);
		if (run.clients[i] == NULL) {
			bench_error(&run, error);
			g_print("READY\n");
			bench_print(&run, 0, 0);
			return 0;
		}
	}

	if (run.count > 0) {
		/* measured: synchronous calls, one at a time */
		g_autoptr(GError) error = NULL;
		guint64 deadline;

		for (guint64 i = 0; i < run.warmup && error == NULL; i++)
			bench_sync_call(&run, &error);
		run.t_start = bench_now_ns();
		deadline = run.t_start + (guint64)(run.max_seconds * 1e9);
		while (error == NULL && run.lat->len < run.count &&
		       (run.max_seconds <= 0 || bench_now_ns() < deadline)) {
			guint64 t0 = bench_now_ns();

			if (bench_sync_call(&run, &error)) {
				guint64 dt = bench_now_ns() - t0;
				g_array_append_val(run.lat, dt);
			}
		}
		if (error != NULL)
			bench_error(&run, error);
		bench_print(&run, run.lat->len, (gdouble)(bench_now_ns() - run.t_start) / 1e9);
		return 0;
	}

	/* flood */
	run.loop = g_main_loop_new(NULL, FALSE);
	if (run.warmup == 0)
		bench_start_window(&run);
	g_unix_fd_add(0, G_IO_IN | G_IO_HUP | G_IO_ERR, bench_stdin_cb, &run);
	slots = g_new0(BenchSlot, n_conn * in_flight);
	run.active = n_conn * in_flight;
	for (guint i = 0; i < n_conn * in_flight; i++) {
		slots[i].run = &run;
		slots[i].client = run.clients[i % n_conn];
		bench_slot_next(&slots[i]);
	}
	g_main_loop_run(run.loop);
	bench_print(&run, run.lat->len, (gdouble)(run.t_stop - run.t_start) / 1e9);
	return 0;
}

int
main(int argc, char **argv)
{
	const gchar *address = g_getenv("TKMS_TEST_BUS_ADDRESS");
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(TkmsClient) client = NULL;
	const gchar *cmd;

	if (argc < 2 || address == NULL) {
		g_printerr("usage: TKMS_TEST_BUS_ADDRESS=... %s COMMAND ARGS\n", argv[0]);
		return 1;
	}
	cmd = argv[1];
	if (g_str_equal(cmd, "call") && (argc == 4 || (argc == 5 && g_str_equal(argv[2], "-i")))) {
		raw_call(address, argv[argc - 2], argc == 5, FALSE, argv[argc - 1]);
		return 0;
	}
	if (g_str_equal(cmd, "serve") && argc == 2)
		return serve(address);
	if (g_str_equal(cmd, "stress") && argc >= 7)
		return stress(address, argc - 2, argv + 2);
	if (g_str_equal(cmd, "bench") && argc == 9)
		return bench(address, argv + 2);

	connection = g_dbus_connection_new_for_address_sync(
		address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	if (connection == NULL)
		return report(error);

	if (g_str_equal(cmd, "own") && argc == 3) {
		g_autoptr(GVariant) r = g_dbus_connection_call_sync(
			connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			"org.freedesktop.DBus", "RequestName", g_variant_new("(su)", argv[2], 4u),
			G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
		guint32 result;
		if (r == NULL)
			return report(error);
		g_variant_get(r, "(u)", &result);
		g_print("RequestName %u\n", result);
		return 0;
	}

	client = tkms_client_new_sync(connection, NULL, &error);
	if (client == NULL)
		return report(error);

	if (g_str_equal(cmd, "unseal") && argc == 3) {
		g_autoptr(GBytes) blob = read_file(argv[2]);
		g_autoptr(GBytes) data = tkms_client_unseal_sync(client, blob, NULL, &error);
		g_autofree gchar *h = NULL;
		if (data == NULL)
			return report(error);
		h = hex(data);
		g_print("%s\n", h);
		return 0;
	}
	if (g_str_equal(cmd, "decrypt") && argc == 4) {
		g_autoptr(GBytes) ct = read_file(argv[3]);
		g_autoptr(GBytes) context = g_bytes_new(NULL, 0);
		g_autoptr(GBytes) data =
			tkms_client_decrypt_sync(client, argv[2], ct, context, NULL, &error);
		g_autofree gchar *h = NULL;
		if (data == NULL)
			return report(error);
		h = hex(data);
		g_print("%s\n", h);
		return 0;
	}
	if (g_str_equal(cmd, "list") && argc == 2) {
		g_autoptr(GVariant) keys = tkms_client_list_keys_sync(client, NULL, &error);
		GVariantIter iter;
		GVariant *info;
		if (keys == NULL)
			return report(error);
		g_variant_iter_init(&iter, keys);
		while ((info = g_variant_iter_next_value(&iter)) != NULL) {
			const gchar *name = NULL;
			g_variant_lookup(info, "name", "&s", &name);
			g_print("%s\n", name ? name : "(no name)");
			g_variant_unref(info);
		}
		return 0;
	}
	if (g_str_equal(cmd, "info") && argc == 3) {
		g_autoptr(GVariant) info =
			tkms_client_get_key_info_sync(client, argv[2], NULL, &error);
		guint32 owner = G_MAXUINT32;
		if (info == NULL)
			return report(error);
		g_variant_lookup(info, "owner", "u", &owner);
		g_print("%u\n", owner);
		return 0;
	}
	if (g_str_equal(cmd, "create") && argc == 4) {
		g_autoptr(GVariant) info =
			tkms_client_create_key_sync(client, argv[2], argv[3], NULL, NULL, &error);
		if (info == NULL)
			return report(error);
		return 0;
	}
	g_printerr("unknown command or wrong arguments: %s\n", cmd);
	return 1;
}
