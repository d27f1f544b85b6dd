/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-bench"

/*
 * tkms-bench: calls/s and latency of tkmsd, next to the baselines that bound them.
 *
 * It starts the integration-test stack (tests/tkms-test-env.h: swtpm, a private system-like
 * dbus-daemon, the polkit mock and tkmsd) and measures, on one bus connection:
 *   - org.freedesktop.DBus.GetId on the bus daemon (raw D-Bus round trip),
 *   - org.freedesktop.DBus.Peer.Ping on tkmsd (a round trip to tkmsd that does no work: the
 *     baseline of the "Encrypt at >= 80% of a raw round trip" goal; GDBus answers it in its
 *     worker thread),
 *   - org.freedesktop.DBus.Properties.Get on tkmsd (no work either, but answered from tkmsd's
 *     main loop like every method of ours),
 *   - Encrypt(32 B) + Decrypt pairs through libtkms,
 * each synchronously and with a fixed number of calls in flight (async, refilled as replies
 * arrive), then Sign (ecdsa-p256) and Hmac (hmac-sha256), which are TPM commands, and finally
 * the same ECDSA signature straight through ESYS on a second swtpm of its own (tkmsd holds the
 * first one's only connection). Latencies are per D-Bus call (per operation for raw TPM rows).
 * Every phase is split into rounds, interleaved with the other phases of its group, so that a
 * noisy stretch of a shared machine does not land on one phase only.
 *
 * Not a test: tests/bench/meson.build builds it with the tests, nothing runs it.
 */

#include "tkms-bench-config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <json-glib/json-glib.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "tkms-test-env.h"

#define DEFAULT_ITERATIONS 20000
#define DEFAULT_IN_FLIGHT 64
#define DEFAULT_ROUNDS 5
#define TPM_DIVISOR 100 /* TPM phases run iterations / TPM_DIVISOR operations */
#define TPM_MIN_ITERATIONS 10
#define WARMUP_CALLS 200
#define WARMUP_TPM 3
#define PAYLOAD_SIZE 32
#define SWTPM_TIMEOUT_MS 10000

#define KEY_AES "bench-aes"
#define KEY_EC "bench-ecdsa"
#define KEY_HMAC "bench-hmac"

#define BUS_NAME "org.freedesktop.DBus"
#define BUS_PATH "/org/freedesktop/DBus"
#define PEER_IFACE "org.freedesktop.DBus.Peer"
#define PROPS_IFACE "org.freedesktop.DBus.Properties"

static volatile sig_atomic_t interrupted;

static guint64
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (guint64)ts.tv_sec * G_GUINT64_CONSTANT(1000000000) + (guint64)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------------------- */
/* Results                                                                                   */

typedef struct {
	const gchar *id;
	const gchar *label;
	guint in_flight;    /* 1: synchronous */
	guint calls_per_op; /* 2 for Encrypt+Decrypt pairs */
	gboolean tpm;	    /* sized by --tpm-iterations */

	gboolean ran;
	guint64 ops;
	guint64 calls;
	gdouble seconds;
	GArray *lat;	      /* guint64 ns, one per call */
	GArray *round_rates; /* gdouble calls/s of each round */
	gchar *error;
	gdouble mean_us, p50_us, p99_us;
	gdouble spread_pct; /* (max - min) / mean of the round rates */
} Result;

enum {
	R_GETID_SYNC,
	R_GETID_ASYNC,
	R_PING_SYNC,
	R_PING_ASYNC,
	R_PROP_SYNC,
	R_PROP_ASYNC,
	R_ENC_SYNC,
	R_ENC_ASYNC,
	R_SIGN_SYNC,
	R_HMAC_SYNC,
	R_RAW_SIGN,
	R_RAW_LOAD_SIGN,
	R_RAW_TKMSD_SEQ,
	R_RAW_ONE_SESSION,
	N_RESULTS
};

typedef struct {
	GSubprocess *proc;
	gchar *dir;
	gchar *log_path;
	guint16 port;
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR primary; /* unrestricted ECC P-256 signing primary */
	ESYS_TR srk;	 /* ECC P-256 storage primary (TCG SRK template) */
	TPM2B_PUBLIC *child_pub;
	TPM2B_PRIVATE *child_priv;
	TPM2B_DIGEST digest;
} RawTpm;

typedef struct {
	TkmsTestEnv *env;
	GDBusConnection *conn;
	TkmsClient *client;
	gchar *daemon_unique_name;

	guint iterations;
	guint tpm_iterations;
	gdouble duration;
	guint in_flight;

	GBytes *plaintext;
	GBytes *context;
	GBytes *sign_data;

	gchar **only; /* id prefixes of the phases to run; NULL: all */

	RawTpm raw;
	Result results[N_RESULTS];
	guint rounds;
	guint round;
} Bench;

static void
result_init(Result *r, const gchar *id, const gchar *label, guint in_flight, guint calls_per_op,
	    gboolean tpm)
{
	r->id = id;
	r->label = label;
	r->in_flight = in_flight;
	r->calls_per_op = calls_per_op;
	r->tpm = tpm;
	r->lat = g_array_new(FALSE, FALSE, sizeof(guint64));
	r->round_rates = g_array_new(FALSE, FALSE, sizeof(gdouble));
}

static void
result_clear(Result *r)
{
	g_clear_pointer(&r->lat, g_array_unref);
	g_clear_pointer(&r->round_rates, g_array_unref);
	g_clear_pointer(&r->error, g_free);
}

static void
record(Result *r, guint64 t0)
{
	guint64 dt;

	if (r == NULL)
		return; /* warming up */
	dt = now_ns() - t0;
	g_array_append_val(r->lat, dt);
	r->calls++;
}

static gint
cmp_u64(gconstpointer a, gconstpointer b)
{
	guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;

	return x < y ? -1 : x > y;
}

static void
result_finish(Result *r)
{
	guint n = r->lat->len;
	gdouble sum = 0;
	guint64 *v;

	if (r->round_rates->len > 1) {
		gdouble lo = G_MAXDOUBLE, hi = 0, total = 0;
		for (guint i = 0; i < r->round_rates->len; i++) {
			gdouble x = g_array_index(r->round_rates, gdouble, i);
			lo = MIN(lo, x);
			hi = MAX(hi, x);
			total += x;
		}
		r->spread_pct = total > 0 ? 100 * (hi - lo) / (total / r->round_rates->len) : 0;
	}
	if (n == 0)
		return;
	g_array_sort(r->lat, cmp_u64);
	v = (guint64 *)(gpointer)r->lat->data;
	for (guint i = 0; i < n; i++)
		sum += (gdouble)v[i];
	r->mean_us = sum / n / 1000.0;
	r->p50_us = (gdouble)v[(n - 1) / 2] / 1000.0;
	r->p99_us = (gdouble)v[(99 * (guint64)n + 99) / 100 - 1] / 1000.0; /* ceil(0.99 n) */
}

static gboolean
result_ok(const Result *r)
{
	return r->ran && r->error == NULL && r->calls > 0 && r->seconds > 0;
}

static gdouble
calls_per_s(const Result *r)
{
	return result_ok(r) ? (gdouble)r->calls / r->seconds : 0;
}

static gdouble
ops_per_s(const Result *r)
{
	return result_ok(r) ? (gdouble)r->ops / r->seconds : 0;
}

static void
progress_start(Bench *b, Result *r)
{
	g_printerr("tkms-bench: round %u/%u: %s (%u in flight) ... ", b->round + 1, b->rounds,
		   r->label, r->in_flight);
}

static void
progress_end(Result *r, guint64 calls, gdouble seconds)
{
	if (r->error != NULL)
		g_printerr("FAILED: %s\n", r->error);
	else
		g_printerr("%.0f calls/s\n", seconds > 0 ? (gdouble)calls / seconds : 0);
}

static void
result_fail(Result *r, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

static void
result_fail(Result *r, const gchar *format, ...)
{
	va_list ap;

	if (r->error != NULL)
		return;
	va_start(ap, format);
	r->error = g_strdup_vprintf(format, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------------------------------- */
/* Runners: every phase runs in each of b->rounds rounds, the phases of a group interleaved,   */
/* so that a slow stretch of a shared machine hits all of them rather than one.             */

static gboolean
selected(Bench *b, Result *r)
{
	if (b->only == NULL)
		return TRUE;
	for (guint i = 0; b->only[i] != NULL; i++)
		if (g_str_has_prefix(r->id, b->only[i]))
			return TRUE;
	return FALSE;
}

/* Operations of this round: the phase's total (calls / calls_per_op) spread over the rounds. */
static guint64
round_ops(Bench *b, Result *r)
{
	guint64 calls = r->tpm ? b->tpm_iterations : b->iterations;
	guint64 total = MAX(calls / r->calls_per_op, 1);

	return MAX(total / b->rounds + (b->round < total % b->rounds ? 1 : 0), 1);
}

static gdouble
round_duration(Bench *b)
{
	return b->duration / b->rounds;
}

static guint
warmup_ops(Bench *b, Result *r)
{
	if (r->tpm)
		return b->round == 0 ? WARMUP_TPM : 1;
	return WARMUP_CALLS / r->calls_per_op;
}

static gboolean
round_begin(Bench *b, Result *r)
{
	if (interrupted || !selected(b, r) || r->error != NULL)
		return FALSE;
	progress_start(b, r);
	return TRUE;
}

static void
round_end(Result *r, guint64 calls_before, guint64 t0)
{
	gdouble seconds = (gdouble)(now_ns() - t0) / 1e9;
	guint64 calls = r->calls - calls_before;

	r->ran = TRUE;
	r->seconds += seconds;
	if (interrupted)
		result_fail(r, "interrupted");
	if (r->error == NULL && seconds > 0) {
		gdouble rate = (gdouble)calls / seconds;
		g_array_append_val(r->round_rates, rate);
	}
	progress_end(r, calls, seconds);
}

/* One operation: records the latency of each of its calls into r (NULL: warm-up). */
typedef gboolean (*SyncOp)(Bench *b, Result *r, GError **error);

static void
run_sync(Bench *b, Result *r, SyncOp op)
{
	g_autoptr(GError) error = NULL;
	guint warmup = warmup_ops(b, r);
	guint64 target = round_ops(b, r);
	guint64 calls_before = r->calls, done = 0;
	guint64 start, deadline;

	if (!round_begin(b, r))
		return;
	for (guint i = 0; i < warmup && !interrupted; i++) {
		if (!op(b, NULL, &error)) {
			result_fail(r, "%s", error->message);
			progress_end(r, 0, 0);
			return;
		}
	}
	start = now_ns();
	deadline = start + (guint64)(round_duration(b) * 1e9);
	while (!interrupted) {
		if (b->duration > 0 ? now_ns() >= deadline : done >= target)
			break;
		if (!op(b, r, &error)) {
			result_fail(r, "%s", error->message);
			break;
		}
		r->ops++;
		done++;
	}
	round_end(r, calls_before, start);
}

typedef struct _AsyncRun AsyncRun;

typedef struct {
	AsyncRun *run;
	guint64 t0;
} Slot;

typedef void (*AsyncStart)(Bench *b, Slot *slot);

struct _AsyncRun {
	Bench *b;
	Result *r; /* NULL while warming up */
	AsyncStart start;
	guint64 target;
	guint64 deadline; /* 0: run target operations */
	guint64 started;
	guint active;
	GError *error;
	GMainLoop *loop;
	Slot *slots;
};

/* A call of the slot's operation completed (error is taken). */
static void
slot_call_done(Slot *slot, GError *error)
{
	AsyncRun *run = slot->run;

	if (error != NULL) {
		if (run->error == NULL)
			run->error = error;
		else
			g_error_free(error);
		return;
	}
	record(run->r, slot->t0);
	slot->t0 = now_ns();
}

/* Starts the slot's next operation, or retires the slot. */
static void
slot_next(Slot *slot)
{
	AsyncRun *run = slot->run;
	gboolean more;

	if (run->error != NULL || interrupted)
		more = FALSE;
	else if (run->deadline != 0)
		more = now_ns() < run->deadline;
	else
		more = run->started < run->target;
	if (!more) {
		if (--run->active == 0)
			g_main_loop_quit(run->loop);
		return;
	}
	run->started++;
	slot->t0 = now_ns();
	run->start(run->b, slot);
}

static void
slot_op_done(Slot *slot, gboolean ok)
{
	if (ok && slot->run->r != NULL)
		slot->run->r->ops++;
	slot_next(slot);
}

/* Keeps b->in_flight operations outstanding until target were started or the duration is
 * over, then waits for the last replies. */
static gboolean
async_pass(Bench *b, Result *r, AsyncStart start, guint64 target, gdouble duration,
	   GError **error)
{
	AsyncRun run = {
		.b = b,
		.r = r,
		.start = start,
		.target = target,
		.deadline = duration > 0 ? now_ns() + (guint64)(duration * 1e9) : 0,
		.loop = g_main_loop_new(NULL, FALSE),
		.slots = g_new0(Slot, b->in_flight),
	};

	run.active = b->in_flight;
	for (guint i = 0; i < b->in_flight; i++) {
		run.slots[i].run = &run;
		slot_next(&run.slots[i]);
	}
	if (run.active > 0)
		g_main_loop_run(run.loop);
	g_main_loop_unref(run.loop);
	g_free(run.slots);
	if (run.error != NULL) {
		g_propagate_error(error, run.error);
		return FALSE;
	}
	return TRUE;
}

static void
run_async(Bench *b, Result *r, AsyncStart start)
{
	g_autoptr(GError) error = NULL;
	guint64 calls_before = r->calls;
	guint64 t0;

	if (!round_begin(b, r))
		return;
	if (!async_pass(b, NULL, start, MAX(warmup_ops(b, r), b->in_flight), 0, &error)) {
		result_fail(r, "%s", error->message);
		progress_end(r, 0, 0);
		return;
	}
	t0 = now_ns();
	if (!async_pass(b, r, start, round_ops(b, r), round_duration(b), &error))
		result_fail(r, "%s", error->message);
	round_end(r, calls_before, t0);
}

/* ---------------------------------------------------------------------------------------- */
/* D-Bus baselines                                                                           */

static gboolean
getid_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GVariant) v =
		g_dbus_connection_call_sync(b->conn, BUS_NAME, BUS_PATH, BUS_NAME, "GetId", NULL,
					    G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
					    error);
	if (v == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

static gboolean
ping_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GVariant) v = g_dbus_connection_call_sync(
		b->conn, b->daemon_unique_name, TKMS_OBJECT_PATH, PEER_IFACE, "Ping", NULL,
		G_VARIANT_TYPE_UNIT, G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
	if (v == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

/* Properties.Get(Version): GDBus answers it from tkmsd's main loop (Peer.Ping never leaves
 * GDBus's worker thread), without authorization or audit. */
static gboolean
prop_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GVariant) v = g_dbus_connection_call_sync(
		b->conn, b->daemon_unique_name, TKMS_OBJECT_PATH, PROPS_IFACE, "Get",
		g_variant_new("(ss)", TKMS_BUS_NAME, "Version"), G_VARIANT_TYPE("(v)"),
		G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
	if (v == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

static void
raw_call_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Slot *slot = user_data;
	GError *error = NULL;
	GVariant *v = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

	slot_call_done(slot, error);
	if (v != NULL)
		g_variant_unref(v);
	slot_op_done(slot, v != NULL);
}

static void
getid_start(Bench *b, Slot *slot)
{
	g_dbus_connection_call(b->conn, BUS_NAME, BUS_PATH, BUS_NAME, "GetId", NULL,
			       G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, raw_call_cb,
			       slot);
}

static void
ping_start(Bench *b, Slot *slot)
{
	g_dbus_connection_call(b->conn, b->daemon_unique_name, TKMS_OBJECT_PATH, PEER_IFACE,
			       "Ping", NULL, G_VARIANT_TYPE_UNIT, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
			       raw_call_cb, slot);
}

static void
prop_start(Bench *b, Slot *slot)
{
	g_dbus_connection_call(b->conn, b->daemon_unique_name, TKMS_OBJECT_PATH, PROPS_IFACE, "Get",
			       g_variant_new("(ss)", TKMS_BUS_NAME, "Version"),
			       G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, raw_call_cb,
			       slot);
}

/* ---------------------------------------------------------------------------------------- */
/* tkmsd through libtkms                                                                     */

static gboolean
check_plaintext(Bench *b, GBytes *pt, GError **error)
{
	if (g_bytes_equal(pt, b->plaintext))
		return TRUE;
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "Decrypt returned other bytes than were encrypted");
	return FALSE;
}

static gboolean
encdec_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) pt = NULL;

	ct = tkms_client_encrypt_sync(b->client, KEY_AES, b->plaintext, b->context, NULL, error);
	if (ct == NULL)
		return FALSE;
	record(r, t0);
	t0 = now_ns();
	pt = tkms_client_decrypt_sync(b->client, KEY_AES, ct, b->context, NULL, error);
	if (pt == NULL)
		return FALSE;
	record(r, t0);
	return check_plaintext(b, pt, error);
}

static void
decrypt_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Slot *slot = user_data;
	GError *error = NULL;
	g_autoptr(GBytes) pt = tkms_client_decrypt_finish(TKMS_CLIENT(source), res, &error);
	gboolean ok = pt != NULL && check_plaintext(slot->run->b, pt, &error);

	slot_call_done(slot, error);
	slot_op_done(slot, ok);
}

static void
encrypt_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Slot *slot = user_data;
	Bench *b = slot->run->b;
	GError *error = NULL;
	g_autoptr(GBytes) ct = tkms_client_encrypt_finish(TKMS_CLIENT(source), res, &error);

	slot_call_done(slot, error);
	if (ct == NULL) {
		slot_op_done(slot, FALSE);
		return;
	}
	tkms_client_decrypt(b->client, KEY_AES, ct, b->context, NULL, decrypt_cb, slot);
}

static void
encdec_start(Bench *b, Slot *slot)
{
	tkms_client_encrypt(b->client, KEY_AES, b->plaintext, b->context, NULL, encrypt_cb, slot);
}

static gboolean
sign_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GBytes) sig = tkms_client_sign_sync(b->client, KEY_EC, b->sign_data, NULL, error);

	if (sig == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

static gboolean
hmac_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GBytes) mac = tkms_client_hmac_sync(b->client, KEY_HMAC, b->sign_data, NULL, error);

	if (mac == NULL)
		return FALSE;
	if (g_bytes_get_size(mac) != 32) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "Hmac returned %" G_GSIZE_FORMAT
			    " bytes instead of 32", g_bytes_get_size(mac));
		return FALSE;
	}
	record(r, t0);
	return TRUE;
}

static gboolean
create_keys(Bench *b, GError **error)
{
	static const gchar *const keys[][2] = {
		{KEY_AES, "aes-256-gcm"},
		{KEY_EC, "ecdsa-p256"},
		{KEY_HMAC, "hmac-sha256"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
		g_autoptr(GVariant) info = tkms_client_create_key_sync(b->client, keys[i][0],
								       keys[i][1], NULL, NULL, error);
		if (info == NULL) {
			g_prefix_error(error, "CreateKey(%s, %s): ", keys[i][0], keys[i][1]);
			return FALSE;
		}
	}
	return TRUE;
}

/* ---------------------------------------------------------------------------------------- */
/* Raw TPM baseline: ESYS on a second swtpm                                                  */

static gboolean
tss_check(TSS2_RC rc, const gchar *what, GError **error)
{
	if (rc == TSS2_RC_SUCCESS)
		return TRUE;
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: 0x%x (%s)", what, rc,
		    Tss2_RC_Decode(rc));
	return FALSE;
}

static void
swtpm_child_setup(gpointer user_data)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static gboolean
tcp_port_is_free(guint16 port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	gboolean ok;

	if (fd < 0)
		return FALSE;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static gboolean
tcp_port_accepts(guint16 port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	gboolean ok;

	if (fd < 0)
		return FALSE;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static gboolean
swtpm_is_running(RawTpm *t)
{
	return t->proc != NULL && g_subprocess_get_identifier(t->proc) != NULL;
}

static void
swtpm_stop(RawTpm *t)
{
	gint64 deadline = g_get_monotonic_time() + SWTPM_TIMEOUT_MS * 1000;

	if (t->proc == NULL)
		return;
	if (swtpm_is_running(t))
		g_subprocess_send_signal(t->proc, SIGTERM);
	while (swtpm_is_running(t) && g_get_monotonic_time() < deadline)
		g_usleep(5000);
	if (swtpm_is_running(t)) {
		g_subprocess_force_exit(t->proc);
		g_subprocess_wait(t->proc, NULL, NULL);
	}
	g_clear_object(&t->proc);
}

static gchar *
swtpm_log(RawTpm *t)
{
	gchar *contents = NULL;

	if (t->log_path == NULL || !g_file_get_contents(t->log_path, &contents, NULL, NULL))
		return g_strdup("(no log)");
	return contents;
}

static gboolean
swtpm_start_on(RawTpm *t, guint16 port, GError **error)
{
	g_autofree gchar *server = g_strdup_printf("type=tcp,port=%u,bindaddr=127.0.0.1", port);
	g_autofree gchar *ctrl = g_strdup_printf("type=tcp,port=%u,bindaddr=127.0.0.1", port + 1);
	g_autofree gchar *state = g_strdup_printf("dir=%s", t->dir);
	const gchar *argv[] = {"swtpm",	   "socket", "--tpm2", "--flags", "not-need-init,startup-clear",
			       "--server", server,   "--ctrl", ctrl,	  "--tpmstate",
			       state,	   NULL};
	g_autoptr(GSubprocessLauncher) launcher =
		g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
	gint64 deadline = g_get_monotonic_time() + SWTPM_TIMEOUT_MS * 1000;
	int fd = g_open(t->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "open %s: %s",
			    t->log_path, g_strerror(errno));
		return FALSE;
	}
	g_subprocess_launcher_take_stdout_fd(launcher, fd);
	g_subprocess_launcher_set_child_setup(launcher, swtpm_child_setup, NULL, NULL);
	t->proc = g_subprocess_launcher_spawnv(launcher, argv, error);
	if (t->proc == NULL) {
		g_prefix_error(error, "swtpm: ");
		return FALSE;
	}
	t->port = port;
	for (;;) {
		if (!swtpm_is_running(t)) {
			g_autofree gchar *log = swtpm_log(t);
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "swtpm exited during start-up; its output:\n%s", log);
			g_clear_object(&t->proc);
			return FALSE;
		}
		if (tcp_port_accepts(port + 1) && tcp_port_accepts(port)) {
			/* and it is ours that answered, not somebody else's */
			g_usleep(50000);
			if (swtpm_is_running(t))
				return TRUE;
			continue;
		}
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				    "swtpm did not accept connections within %d s",
				    SWTPM_TIMEOUT_MS / 1000);
			swtpm_stop(t);
			return FALSE;
		}
		g_usleep(10000);
	}
}

static gboolean
swtpm_start(Bench *b, RawTpm *t, GError **error)
{
	g_autoptr(GError) last = NULL;

	/* Inside the fixture's directory, which is removed with it (also after a crash). */
	t->dir = g_build_filename(tkms_test_env_get_tmp_dir(b->env), "bench-tpm", NULL);
	t->log_path = g_build_filename(tkms_test_env_get_tmp_dir(b->env), "bench-swtpm.log", NULL);
	if (g_mkdir_with_parents(t->dir, 0700) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "mkdir %s: %s", t->dir,
			    g_strerror(errno));
		return FALSE;
	}
	for (guint attempt = 0; attempt < 20; attempt++) {
		guint16 port = (guint16)(g_random_int_range(20000, 60000) & ~1);

		if (!tcp_port_is_free(port) || !tcp_port_is_free(port + 1))
			continue;
		g_clear_error(&last);
		if (swtpm_start_on(t, port, &last))
			return TRUE;
	}
	if (last != NULL)
		g_propagate_error(error, g_steal_pointer(&last));
	else
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "no free TCP port pair found");
	return FALSE;
}

static void
fill_ecc_sign_template(TPM2B_PUBLIC *tmpl)
{
	TPMT_PUBLIC *p = &tmpl->publicArea;

	memset(tmpl, 0, sizeof(*tmpl));
	p->type = TPM2_ALG_ECC;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
			      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
			      TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_NODA;
	p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

/* The TCG storage root key template (ECC P-256, AES-128-CFB), with noDA like tkmsd's. */
static void
fill_srk_template(TPM2B_PUBLIC *tmpl)
{
	TPMT_PUBLIC *p = &tmpl->publicArea;

	memset(tmpl, 0, sizeof(*tmpl));
	p->type = TPM2_ALG_ECC;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
			      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
			      TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_NODA;
	p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	p->parameters.eccDetail.symmetric.keyBits.aes = 128;
	p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	p->unique.ecc.x.size = 32;
	p->unique.ecc.y.size = 32;
}

static gboolean
create_primary(RawTpm *t, TPM2B_PUBLIC *tmpl, ESYS_TR *handle, GError **error)
{
	TPM2B_SENSITIVE_CREATE sensitive = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION pcrs = {0};

	return tss_check(Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
					    ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, tmpl, &outside,
					    &pcrs, handle, NULL, NULL, NULL, NULL),
			 "Esys_CreatePrimary", error);
}

static gboolean
raw_tpm_setup(Bench *b, RawTpm *t, GError **error)
{
	g_autofree gchar *conf = NULL;
	TPM2B_PUBLIC tmpl;
	TPM2B_SENSITIVE_CREATE sensitive = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION pcrs = {0};
	const guint8 *d;
	gsize len;

	t->primary = ESYS_TR_NONE;
	t->srk = ESYS_TR_NONE;
	if (!swtpm_start(b, t, error))
		return FALSE;
	conf = g_strdup_printf("swtpm:host=127.0.0.1,port=%u", t->port);
	if (!tss_check(Tss2_TctiLdr_Initialize(conf, &t->tcti), "Tss2_TctiLdr_Initialize", error) ||
	    !tss_check(Esys_Initialize(&t->esys, t->tcti, NULL), "Esys_Initialize", error))
		return FALSE;

	fill_ecc_sign_template(&tmpl);
	if (!create_primary(t, &tmpl, &t->primary, error))
		return FALSE;
	fill_srk_template(&tmpl);
	if (!create_primary(t, &tmpl, &t->srk, error))
		return FALSE;
	/* The same kind of object tkmsd signs with: an ECC key under the SRK, loaded per use. */
	fill_ecc_sign_template(&tmpl);
	if (!tss_check(Esys_Create(t->esys, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
				   &sensitive, &tmpl, &outside, &pcrs, &t->child_priv,
				   &t->child_pub, NULL, NULL, NULL),
		       "Esys_Create", error))
		return FALSE;

	/* SHA-256 of the 32-byte message, as tkmsd computes before TPM2_Sign */
	d = g_bytes_get_data(b->sign_data, NULL);
	len = sizeof(t->digest.buffer);
	{
		g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
		g_checksum_update(sum, d, (gssize)g_bytes_get_size(b->sign_data));
		g_checksum_get_digest(sum, t->digest.buffer, &len);
		t->digest.size = (UINT16)len;
	}
	return TRUE;
}

static void
raw_tpm_teardown(RawTpm *t)
{
	if (t->esys != NULL) {
		if (t->primary != ESYS_TR_NONE)
			Esys_FlushContext(t->esys, t->primary);
		if (t->srk != ESYS_TR_NONE)
			Esys_FlushContext(t->esys, t->srk);
		Esys_Finalize(&t->esys);
	}
	if (t->tcti != NULL)
		Tss2_TctiLdr_Finalize(&t->tcti);
	Esys_Free(t->child_pub);
	Esys_Free(t->child_priv);
	t->child_pub = NULL;
	t->child_priv = NULL;
	swtpm_stop(t);
	g_clear_pointer(&t->dir, g_free);
	g_clear_pointer(&t->log_path, g_free);
}

static gboolean
raw_sign_with(RawTpm *t, ESYS_TR key, ESYS_TR session, GError **error)
{
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
	TPMT_TK_HASHCHECK check = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
	TPMT_SIGNATURE *sig = NULL;
	TSS2_RC rc = Esys_Sign(t->esys, key, session, ESYS_TR_NONE, ESYS_TR_NONE, &t->digest,
			       &scheme, &check, &sig);

	Esys_Free(sig);
	return tss_check(rc, "Esys_Sign", error);
}

/* TPM2_Sign with a loaded primary and a password session: the TPM's floor. */
static gboolean
raw_sign(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();

	if (!raw_sign_with(&b->raw, b->raw.primary, ESYS_TR_PASSWORD, error))
		return FALSE;
	record(r, t0);
	return TRUE;
}

static gboolean
raw_load(RawTpm *t, ESYS_TR session, ESYS_TR *obj, GError **error)
{
	return tss_check(Esys_Load(t->esys, t->srk, session, ESYS_TR_NONE, ESYS_TR_NONE,
				   t->child_priv, t->child_pub, obj),
			 "Esys_Load", error);
}

/* Load + Sign + FlushContext with password sessions: the object handling tkmsd needs. */
static gboolean
raw_load_sign(Bench *b, Result *r, GError **error)
{
	RawTpm *t = &b->raw;
	guint64 t0 = now_ns();
	ESYS_TR obj = ESYS_TR_NONE;
	gboolean ok;

	if (!raw_load(t, ESYS_TR_PASSWORD, &obj, error))
		return FALSE;
	ok = raw_sign_with(t, obj, ESYS_TR_PASSWORD, error);
	Esys_FlushContext(t->esys, obj);
	if (ok)
		record(r, t0);
	return ok;
}

static gboolean
raw_salted_session(RawTpm *t, ESYS_TR *session, GError **error)
{
	static const TPMT_SYM_DEF sym = {
		.algorithm = TPM2_ALG_AES,
		.keyBits = {.aes = 128},
		.mode = {.aes = TPM2_ALG_CFB},
	};

	if (!tss_check(Esys_StartAuthSession(t->esys, t->srk, ESYS_TR_NONE, ESYS_TR_NONE,
					     ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_HMAC, &sym,
					     TPM2_ALG_SHA256, session),
		       "Esys_StartAuthSession", error))
		return FALSE;
	Esys_TRSess_SetAttributes(t->esys, *session, TPMA_SESSION_CONTINUESESSION, 0xff);
	return TRUE;
}

/* What tkmsd's Sign sends (daemon/tpm-ops.c sign_func, unbound key): a salted HMAC session
 * for Load, another for Sign, and three FlushContext. */
static gboolean
raw_tkmsd_sequence(Bench *b, Result *r, GError **error)
{
	RawTpm *t = &b->raw;
	guint64 t0 = now_ns();
	ESYS_TR obj = ESYS_TR_NONE, session = ESYS_TR_NONE;
	gboolean ok;

	if (!raw_salted_session(t, &session, error))
		return FALSE;
	ok = raw_load(t, session, &obj, error);
	Esys_FlushContext(t->esys, session);
	if (!ok)
		return FALSE;
	ok = raw_salted_session(t, &session, error);
	if (ok) {
		ok = raw_sign_with(t, obj, session, error);
		Esys_FlushContext(t->esys, session);
	}
	Esys_FlushContext(t->esys, obj);
	if (ok)
		record(r, t0);
	return ok;
}

/* For comparison: one salted session authorizes both the Load and the Sign. */
static gboolean
raw_one_session(Bench *b, Result *r, GError **error)
{
	RawTpm *t = &b->raw;
	guint64 t0 = now_ns();
	ESYS_TR obj = ESYS_TR_NONE, session = ESYS_TR_NONE;
	gboolean ok;

	if (!raw_salted_session(t, &session, error))
		return FALSE;
	ok = raw_load(t, session, &obj, error) && raw_sign_with(t, obj, session, error);
	Esys_FlushContext(t->esys, session);
	if (obj != ESYS_TR_NONE)
		Esys_FlushContext(t->esys, obj);
	if (ok)
		record(r, t0);
	return ok;
}

/* ---------------------------------------------------------------------------------------- */
/* Phases                                                                                    */

typedef struct {
	guint result;
	SyncOp sync_op;
	AsyncStart async_start;
} Phase;

/* D-Bus round trips and the fast path, interleaved with each other. */
static const Phase ipc_phases[] = {
	{R_GETID_SYNC, getid_sync, NULL}, {R_GETID_ASYNC, NULL, getid_start},
	{R_PING_SYNC, ping_sync, NULL},	  {R_PING_ASYNC, NULL, ping_start},
	{R_PROP_SYNC, prop_sync, NULL},	  {R_PROP_ASYNC, NULL, prop_start},
	{R_ENC_SYNC, encdec_sync, NULL},  {R_ENC_ASYNC, NULL, encdec_start},
};

/* TPM commands: through tkmsd, then straight through ESYS on the second swtpm. */
static const Phase tpm_phases[] = {
	{R_SIGN_SYNC, sign_sync, NULL},
	{R_HMAC_SYNC, hmac_sync, NULL},
	{R_RAW_SIGN, raw_sign, NULL},
	{R_RAW_LOAD_SIGN, raw_load_sign, NULL},
	{R_RAW_TKMSD_SEQ, raw_tkmsd_sequence, NULL},
	{R_RAW_ONE_SESSION, raw_one_session, NULL},
};

static gboolean
any_selected(Bench *b, const Phase *phases, guint n, gboolean raw_only)
{
	for (guint i = 0; i < n; i++) {
		guint id = phases[i].result;
		if ((!raw_only || id >= R_RAW_SIGN) && selected(b, &b->results[id]))
			return TRUE;
	}
	return FALSE;
}

static void
run_phases(Bench *b, const Phase *phases, guint n)
{
	for (b->round = 0; b->round < b->rounds && !interrupted; b->round++) {
		for (guint i = 0; i < n; i++) {
			Result *r = &b->results[phases[i].result];

			if (phases[i].sync_op != NULL)
				run_sync(b, r, phases[i].sync_op);
			else
				run_async(b, r, phases[i].async_start);
		}
	}
}

static void
run_tpm_phases(Bench *b)
{
	if (interrupted || !any_selected(b, tpm_phases, G_N_ELEMENTS(tpm_phases), FALSE))
		return;
	if (any_selected(b, tpm_phases, G_N_ELEMENTS(tpm_phases), TRUE)) {
		g_autoptr(GError) error = NULL;

		g_printerr("tkms-bench: starting a second swtpm for the raw ESYS baseline\n");
		if (!raw_tpm_setup(b, &b->raw, &error)) {
			g_printerr("tkms-bench: raw TPM baseline unavailable, skipped: %s\n",
				   error->message);
			for (guint i = R_RAW_SIGN; i <= R_RAW_ONE_SESSION; i++)
				result_fail(&b->results[i], "setup failed: %s", error->message);
		}
	}
	run_phases(b, tpm_phases, G_N_ELEMENTS(tpm_phases));
	raw_tpm_teardown(&b->raw);
}

/* ---------------------------------------------------------------------------------------- */
/* Output                                                                                    */

typedef struct {
	const gchar *id;
	const gchar *label;
	guint num, den;
	gboolean per_op;
	gdouble goal; /* 0: none */
} Ratio;

/* Encrypt rows count calls (an Encrypt or a Decrypt); tkmsd Sign vs the raw rows per sign. */
static const Ratio ratios[] = {
	{"encrypt-vs-ping-sync", "Encrypt/Decrypt calls/s vs Peer.Ping, sync", R_ENC_SYNC,
	 R_PING_SYNC, FALSE, 0.8},
	{"encrypt-vs-ping-in-flight", "Encrypt/Decrypt calls/s vs Peer.Ping, in flight",
	 R_ENC_ASYNC, R_PING_ASYNC, FALSE, 0.8},
	{"encrypt-vs-properties-get-sync", "Encrypt/Decrypt calls/s vs Properties.Get, sync",
	 R_ENC_SYNC, R_PROP_SYNC, FALSE, 0},
	{"encrypt-vs-properties-get-in-flight",
	 "Encrypt/Decrypt calls/s vs Properties.Get, in flight", R_ENC_ASYNC, R_PROP_ASYNC, FALSE,
	 0},
	{"ping-vs-getid-sync", "Peer.Ping (tkmsd) vs GetId (bus daemon), sync", R_PING_SYNC,
	 R_GETID_SYNC, FALSE, 0},
	{"sign-vs-raw-sign", "Sign via tkmsd vs raw Esys_Sign", R_SIGN_SYNC, R_RAW_SIGN, TRUE, 0},
	{"sign-vs-raw-load-sign", "Sign via tkmsd vs raw Load+Sign+Flush", R_SIGN_SYNC,
	 R_RAW_LOAD_SIGN, TRUE, 0},
	{"sign-vs-raw-tkmsd-sequence", "Sign via tkmsd vs raw tkmsd command sequence",
	 R_SIGN_SYNC, R_RAW_TKMSD_SEQ, TRUE, 0},
};

static gboolean
ratio_value(Bench *b, const Ratio *q, gdouble *value)
{
	const Result *n = &b->results[q->num], *d = &b->results[q->den];

	if (!result_ok(n) || !result_ok(d))
		return FALSE;
	*value = q->per_op ? ops_per_s(n) / ops_per_s(d) : calls_per_s(n) / calls_per_s(d);
	return TRUE;
}

static const gchar *
or_unknown(const gchar *s)
{
	return s != NULL && *s != '\0' ? s : "unknown";
}

static void
print_header_info(Bench *b, GString *out)
{
	struct utsname u;

	uname(&u);
	g_string_append_printf(out, "tkms-bench %s: tkmsd %s, TPM %s %s (swtpm), %u CPUs, %s %s\n",
			       TKMS_BENCH_VERSION, or_unknown(tkms_client_get_daemon_version(b->client)),
			       or_unknown(tkms_client_get_tpm_manufacturer(b->client)),
			       or_unknown(tkms_client_get_tpm_firmware_version(b->client)),
			       g_get_num_processors(), u.sysname, u.release);
	if (b->duration > 0)
		g_string_append_printf(out, "%.1f s per phase", b->duration);
	else
		g_string_append_printf(out, "%u calls per D-Bus phase, %u per TPM phase",
				       b->iterations, b->tpm_iterations);
	g_string_append_printf(out, " in %u interleaved rounds; async: %u in flight; payload %d B\n"
				    "latency (mean/p50/p99) per call in us; spread: (max - min) / "
				    "mean of the rounds' calls/s\n\n",
			       b->rounds, b->in_flight, PAYLOAD_SIZE);
}

static void
print_table(Bench *b)
{
	g_autoptr(GString) out = g_string_new(NULL);

	print_header_info(b, out);
	g_string_append_printf(out, "%-46s %6s %7s %6s %9s %9s %8s %8s %8s %7s\n", "benchmark",
			       "flight", "calls", "secs", "calls/s", "ops/s", "mean", "p50", "p99",
			       "spread");
	for (guint i = 0; i < N_RESULTS; i++) {
		Result *r = &b->results[i];

		if (!selected(b, r))
			continue;
		if (i == R_PING_SYNC || i == R_PROP_SYNC || i == R_ENC_SYNC || i == R_SIGN_SYNC ||
		    i == R_RAW_SIGN)
			g_string_append_c(out, '\n');
		g_string_append_printf(out, "%-46s %6u ", r->label, r->in_flight);
		if (!r->ran && r->error == NULL) {
			g_string_append(out, "(not run)\n");
			continue;
		}
		if (r->calls == 0) {
			g_string_append_printf(out, "FAILED: %s\n", r->error ? r->error : "no calls");
			continue;
		}
		g_string_append_printf(out,
				       "%7" G_GUINT64_FORMAT " %6.2f %9.1f %9.1f %8.1f %8.1f %8.1f",
				       r->calls, r->seconds, (gdouble)r->calls / r->seconds,
				       (gdouble)r->ops / r->seconds, r->mean_us, r->p50_us,
				       r->p99_us);
		if (r->round_rates->len > 1)
			g_string_append_printf(out, " %6.1f%%", r->spread_pct);
		else
			g_string_append_printf(out, " %7s", "-");
		if (r->error != NULL)
			g_string_append_printf(out, "  (partial: %s)", r->error);
		g_string_append_c(out, '\n');
	}
	g_string_append(out, "\nops/s: an op is one call, one Encrypt+Decrypt pair, or one raw "
			     "TPM sign sequence.\n\nratios\n");
	for (guint i = 0; i < G_N_ELEMENTS(ratios); i++) {
		gdouble v;

		g_string_append_printf(out, "  %-56s ", ratios[i].label);
		if (!ratio_value(b, &ratios[i], &v)) {
			g_string_append(out, "n/a\n");
			continue;
		}
		g_string_append_printf(out, "%6.1f%%", 100 * v);
		if (ratios[i].goal > 0)
			g_string_append_printf(out, "  (goal >= %.0f%%: %s)", 100 * ratios[i].goal,
					       v >= ratios[i].goal ? "met" : "NOT MET");
		g_string_append_c(out, '\n');
	}
	fputs(out->str, stdout);
	fflush(stdout);
}

static void
print_json(Bench *b)
{
	g_autoptr(JsonBuilder) jb = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *text = NULL;
	struct utsname u;

	uname(&u);
	json_builder_begin_object(jb);
	json_builder_set_member_name(jb, "tool");
	json_builder_add_string_value(jb, "tkms-bench");
	json_builder_set_member_name(jb, "version");
	json_builder_add_string_value(jb, TKMS_BENCH_VERSION);
	json_builder_set_member_name(jb, "daemon_version");
	json_builder_add_string_value(jb, or_unknown(tkms_client_get_daemon_version(b->client)));
	json_builder_set_member_name(jb, "tpm_manufacturer");
	json_builder_add_string_value(jb, or_unknown(tkms_client_get_tpm_manufacturer(b->client)));
	json_builder_set_member_name(jb, "cpus");
	json_builder_add_int_value(jb, g_get_num_processors());
	json_builder_set_member_name(jb, "kernel");
	json_builder_add_string_value(jb, u.release);
	json_builder_set_member_name(jb, "iterations");
	json_builder_add_int_value(jb, b->iterations);
	json_builder_set_member_name(jb, "tpm_iterations");
	json_builder_add_int_value(jb, b->tpm_iterations);
	json_builder_set_member_name(jb, "duration");
	if (b->duration > 0)
		json_builder_add_double_value(jb, b->duration);
	else
		json_builder_add_null_value(jb);
	json_builder_set_member_name(jb, "rounds");
	json_builder_add_int_value(jb, b->rounds);
	json_builder_set_member_name(jb, "in_flight");
	json_builder_add_int_value(jb, b->in_flight);
	json_builder_set_member_name(jb, "payload_bytes");
	json_builder_add_int_value(jb, PAYLOAD_SIZE);
	json_builder_set_member_name(jb, "interrupted");
	json_builder_add_boolean_value(jb, interrupted != 0);

	json_builder_set_member_name(jb, "results");
	json_builder_begin_array(jb);
	for (guint i = 0; i < N_RESULTS; i++) {
		Result *r = &b->results[i];

		json_builder_begin_object(jb);
		json_builder_set_member_name(jb, "id");
		json_builder_add_string_value(jb, r->id);
		json_builder_set_member_name(jb, "label");
		json_builder_add_string_value(jb, r->label);
		json_builder_set_member_name(jb, "in_flight");
		json_builder_add_int_value(jb, r->in_flight);
		json_builder_set_member_name(jb, "ran");
		json_builder_add_boolean_value(jb, r->ran);
		json_builder_set_member_name(jb, "calls");
		json_builder_add_int_value(jb, (gint64)r->calls);
		json_builder_set_member_name(jb, "ops");
		json_builder_add_int_value(jb, (gint64)r->ops);
		json_builder_set_member_name(jb, "seconds");
		json_builder_add_double_value(jb, r->seconds);
		json_builder_set_member_name(jb, "calls_per_s");
		json_builder_add_double_value(jb, r->seconds > 0 ? r->calls / r->seconds : 0);
		json_builder_set_member_name(jb, "ops_per_s");
		json_builder_add_double_value(jb, r->seconds > 0 ? r->ops / r->seconds : 0);
		json_builder_set_member_name(jb, "latency_us");
		json_builder_begin_object(jb);
		json_builder_set_member_name(jb, "mean");
		json_builder_add_double_value(jb, r->mean_us);
		json_builder_set_member_name(jb, "p50");
		json_builder_add_double_value(jb, r->p50_us);
		json_builder_set_member_name(jb, "p99");
		json_builder_add_double_value(jb, r->p99_us);
		json_builder_end_object(jb);
		json_builder_set_member_name(jb, "round_calls_per_s");
		json_builder_begin_array(jb);
		for (guint k = 0; k < r->round_rates->len; k++)
			json_builder_add_double_value(jb, g_array_index(r->round_rates, gdouble, k));
		json_builder_end_array(jb);
		json_builder_set_member_name(jb, "spread_pct");
		json_builder_add_double_value(jb, r->spread_pct);
		json_builder_set_member_name(jb, "error");
		if (r->error != NULL)
			json_builder_add_string_value(jb, r->error);
		else
			json_builder_add_null_value(jb);
		json_builder_end_object(jb);
	}
	json_builder_end_array(jb);

	json_builder_set_member_name(jb, "ratios");
	json_builder_begin_array(jb);
	for (guint i = 0; i < G_N_ELEMENTS(ratios); i++) {
		gdouble v;
		gboolean have = ratio_value(b, &ratios[i], &v);

		json_builder_begin_object(jb);
		json_builder_set_member_name(jb, "id");
		json_builder_add_string_value(jb, ratios[i].id);
		json_builder_set_member_name(jb, "label");
		json_builder_add_string_value(jb, ratios[i].label);
		json_builder_set_member_name(jb, "value");
		if (have)
			json_builder_add_double_value(jb, v);
		else
			json_builder_add_null_value(jb);
		json_builder_set_member_name(jb, "goal");
		if (ratios[i].goal > 0)
			json_builder_add_double_value(jb, ratios[i].goal);
		else
			json_builder_add_null_value(jb);
		json_builder_end_object(jb);
	}
	json_builder_end_array(jb);
	json_builder_end_object(jb);

	root = json_builder_get_root(jb);
	json_generator_set_root(gen, root);
	json_generator_set_pretty(gen, TRUE);
	text = json_generator_to_data(gen, NULL);
	puts(text);
	fflush(stdout);
}

/* ---------------------------------------------------------------------------------------- */
/* main                                                                                      */

static struct sigaction fixture_sigint, fixture_sigterm;

/* The first SIGINT/SIGTERM stops the run at the next call and cleans up normally; a second
 * one takes the fixture's emergency path (kill everything, remove the directory). */
static void
on_signal(int sig)
{
	static const char msg[] = "\ntkms-bench: interrupted; cleaning up (again to force)\n";
	ssize_t n;

	interrupted = 1;
	sigaction(SIGINT, &fixture_sigint, NULL);
	sigaction(SIGTERM, &fixture_sigterm, NULL);
	n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)n;
}

static void
install_signal_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &fixture_sigint);
	sigaction(SIGTERM, &sa, &fixture_sigterm);
}

static void
init_results(Bench *b)
{
	Result *r = b->results;

	result_init(&r[R_GETID_SYNC], "dbus-getid-sync", "bus GetId, sync", 1, 1, FALSE);
	result_init(&r[R_GETID_ASYNC], "dbus-getid-in-flight", "bus GetId, async", b->in_flight,
		    1, FALSE);
	result_init(&r[R_PING_SYNC], "tkmsd-ping-sync", "tkmsd Peer.Ping, sync", 1, 1, FALSE);
	result_init(&r[R_PING_ASYNC], "tkmsd-ping-in-flight", "tkmsd Peer.Ping, async",
		    b->in_flight, 1, FALSE);
	result_init(&r[R_PROP_SYNC], "tkmsd-properties-get-sync", "tkmsd Properties.Get, sync", 1,
		    1, FALSE);
	result_init(&r[R_PROP_ASYNC], "tkmsd-properties-get-in-flight",
		    "tkmsd Properties.Get, async", b->in_flight, 1, FALSE);
	result_init(&r[R_ENC_SYNC], "encrypt-decrypt-sync", "Encrypt+Decrypt 32 B (pairs), sync",
		    1, 2, FALSE);
	result_init(&r[R_ENC_ASYNC], "encrypt-decrypt-in-flight",
		    "Encrypt+Decrypt 32 B (pairs), async", b->in_flight, 2, FALSE);
	result_init(&r[R_SIGN_SYNC], "sign-ecdsa-p256-sync", "Sign ecdsa-p256, sync", 1, 1, TRUE);
	result_init(&r[R_HMAC_SYNC], "hmac-sha256-sync", "Hmac hmac-sha256 (TPM), sync", 1, 1,
		    TRUE);
	result_init(&r[R_RAW_SIGN], "raw-esys-sign", "raw ESYS Sign (primary, password)", 1, 1,
		    TRUE);
	result_init(&r[R_RAW_LOAD_SIGN], "raw-esys-load-sign-flush",
		    "raw ESYS Load+Sign+Flush (password)", 1, 1, TRUE);
	result_init(&r[R_RAW_TKMSD_SEQ], "raw-esys-tkmsd-sequence",
		    "raw ESYS as tkmsd: 2 salted sessions+Load+Sign", 1, 1, TRUE);
	result_init(&r[R_RAW_ONE_SESSION], "raw-esys-one-session",
		    "raw ESYS: 1 salted session for Load+Sign", 1, 1, TRUE);
}

int
main(int argc, char **argv)
{
	gint iterations = DEFAULT_ITERATIONS;
	gint tpm_iterations = 0;
	gint in_flight = DEFAULT_IN_FLIGHT;
	gdouble duration = 0;
	gboolean json = FALSE;
	g_autofree gchar *only = NULL;
	gint rounds = DEFAULT_ROUNDS;
	guint n_selected = 0;
	const GOptionEntry entries[] = {
		{"iterations", 'n', 0, G_OPTION_ARG_INT, &iterations,
		 "Calls per D-Bus phase (default 20000; an Encrypt+Decrypt pair is 2 calls)",
		 "N"},
		{"tpm-iterations", 0, 0, G_OPTION_ARG_INT, &tpm_iterations,
		 "Operations per TPM phase (default N/100, at least 10)", "M"},
		{"duration", 'd', 0, G_OPTION_ARG_DOUBLE, &duration,
		 "Run each phase for SECONDS instead of a number of calls", "SECONDS"},
		{"rounds", 'r', 0, G_OPTION_ARG_INT, &rounds,
		 "Split every phase into R rounds, interleaved with the other phases (default 5)",
		 "R"},
		{"in-flight", 0, 0, G_OPTION_ARG_INT, &in_flight,
		 "Calls kept outstanding in the async phases (default 64, tkmsd's per-connection "
		 "limit)",
		 "K"},
		{"only", 0, 0, G_OPTION_ARG_STRING, &only,
		 "Run only the phases whose id starts with one of these (comma-separated; ids as "
		 "in --json, e.g. encrypt,raw-esys)",
		 "IDS"},
		{"json", 0, 0, G_OPTION_ARG_NONE, &json, "Write JSON to stdout instead of the table",
		 NULL},
		G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GOptionContext) octx = g_option_context_new("- benchmark tkmsd");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *payload = NULL;
	Bench b = {0};
	int status = 0;

	g_option_context_set_summary(
		octx, "Starts swtpm, a private bus, the polkit mock and tkmsd (as the integration "
		      "tests do),\nthen measures raw D-Bus round trips, Encrypt/Decrypt, Sign and "
		      "Hmac through libtkms,\nand ESYS signing on a second swtpm. Run as root.");
	g_option_context_set_description(
		octx, "Environment: TKMSD, TKMS_DATA_DIR and TKMS_TEST_HELPER default to the build "
		      "tree;\nTKMS_TEST_KEEP=1 keeps the temporary directory (logs).\n"
		      "Progress goes to stderr; results to stdout.\n");
	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &error)) {
		g_printerr("tkms-bench: %s\n", error->message);
		return 2;
	}
	if (argc > 1 || iterations < 1 || tpm_iterations < 0 || duration < 0 || in_flight < 1 ||
	    in_flight > 128 || rounds < 1 || rounds > 1000) {
		g_printerr("tkms-bench: invalid arguments (N >= 1, M >= 0, SECONDS >= 0, "
			   "1 <= R <= 1000, 1 <= K <= 128); see --help\n");
		return 2;
	}
	b.iterations = (guint)iterations;
	b.tpm_iterations = tpm_iterations > 0 ? (guint)tpm_iterations
					      : MAX(b.iterations / TPM_DIVISOR, TPM_MIN_ITERATIONS);
	b.duration = duration;
	b.in_flight = (guint)in_flight;
	b.rounds = (guint)rounds;
	init_results(&b);
	if (only != NULL)
		b.only = g_strsplit(only, ",", -1);
	for (guint i = 0; i < N_RESULTS; i++)
		n_selected += selected(&b, &b.results[i]);
	if (n_selected == 0) {
		g_printerr("tkms-bench: --only %s matches no phase; see the ids in --json\n", only);
		for (guint i = 0; i < N_RESULTS; i++)
			result_clear(&b.results[i]);
		g_strfreev(b.only);
		return 2;
	}

	/* Defaults from the build tree; the fixture reads these. */
	g_setenv("TKMSD", TKMS_BENCH_TKMSD, FALSE);
	g_setenv("TKMS_DATA_DIR", TKMS_BENCH_DATA_DIR, FALSE);
	g_setenv("TKMS_TEST_HELPER", TKMS_BENCH_TEST_HELPER, FALSE);
	if (geteuid() != 0)
		g_printerr("tkms-bench: warning: not root; the bus policy lets only root own "
			   "org.tkms.KeyManager, so tkmsd will likely fail to start\n");

	g_printerr("tkms-bench: starting swtpm, dbus-daemon, polkit mock and tkmsd (%s)\n",
		   g_getenv("TKMSD"));
	b.env = tkms_test_env_new(NULL, &error);
	if (b.env == NULL) {
		g_printerr("tkms-bench: cannot start the environment: %s\n", error->message);
		return 1;
	}
	install_signal_handlers();
	b.conn = tkms_test_env_get_connection(b.env);
	b.client = tkms_test_env_get_client(b.env);
	b.daemon_unique_name = tkms_client_dup_name_owner(b.client);
	payload = g_malloc(PAYLOAD_SIZE);
	for (guint i = 0; i < PAYLOAD_SIZE; i++)
		payload[i] = (gchar)(i * 7 + 1);
	b.plaintext = g_bytes_new(payload, PAYLOAD_SIZE);
	b.sign_data = g_bytes_new(payload, PAYLOAD_SIZE);
	b.context = g_bytes_new_static("tkms-bench", 10);

	if (b.daemon_unique_name == NULL) {
		g_printerr("tkms-bench: tkmsd does not own %s\n", TKMS_BUS_NAME);
		status = 1;
		goto out;
	}
	if (!create_keys(&b, &error)) {
		g_printerr("tkms-bench: %s\n", error->message);
		status = 1;
		goto out;
	}
	/* The client's property cache (TPM status for the header) is updated from this context. */
	while (g_main_context_iteration(NULL, FALSE))
		;

	run_phases(&b, ipc_phases, G_N_ELEMENTS(ipc_phases));
	run_tpm_phases(&b);
	for (guint i = 0; i < N_RESULTS; i++)
		result_finish(&b.results[i]);

	if (json)
		print_json(&b);
	else
		print_table(&b);
	if (interrupted)
		status = 130;

out:
	g_printerr("tkms-bench: stopping the environment\n");
	raw_tpm_teardown(&b.raw);
	g_clear_pointer(&b.env, tkms_test_env_free);
	g_clear_pointer(&b.plaintext, g_bytes_unref);
	g_clear_pointer(&b.sign_data, g_bytes_unref);
	g_clear_pointer(&b.context, g_bytes_unref);
	g_free(b.daemon_unique_name);
	g_strfreev(b.only);
	for (guint i = 0; i < N_RESULTS; i++)
		result_clear(&b.results[i]);
	return status;
}
