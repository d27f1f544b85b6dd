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
 * arrive); then the echo rows: Echo(ay 32 B) of a minimal GDBus service in another process on
 * the same bus (tkms-bench-echo.c), single Encrypt(32 B) calls made the same way (the "at
 * least 80% of an echo" goal), and EncryptBatch of 64 x 32 B through libtkms (items/s against
 * single Encrypt calls/s); then Sign (ecdsa-p256) and Hmac (hmac-sha256), which are TPM commands,
 * SignBatch and HmacBatch of 64 x 32 B, and beside them straight through ESYS on a second swtpm
 * of its own (tkmsd holds the first one's only connection) the command on a loaded key (what
 * tkmsd's object cache leaves of a hot key's call) and the Load+command+Flush sequences of a
 * cold key; a cold sealed key's first use (Decrypt, KeyTtl=0, more keys in turn than the object
 * cache holds) against raw Load+Unseal+Flush; and the peer rows: the echo service on a third
 * swtpm signing with Esys_Sign in its handler, or in a thread of its own, the least a Sign
 * through D-Bus costs on this machine. Latencies are per D-Bus call (per
 * operation for raw TPM rows). Every phase is split into rounds, interleaved with the other
 * phases of its group, so that a noisy stretch of a shared machine does not land on one phase
 * only.
 *
 * Then the authorization phases, whose callers are real unprivileged users (the authz suite's
 * tkms-test-a and tkms-test-b, created if absent), each a "tkms-test-helper bench" process
 * started as that user, which makes the calls and prints its figures as JSON:
 *   - flood: user B's synchronous Sign (then Encrypt) latency alone, and while user A floods
 *     the same method on 2 connections x 60 calls in flight (tkmsd serves the TPM worker's
 *     queue round robin per uid), with A's throughput over B's run; polkit mock;
 *   - polkit: user A's synchronous Encrypt against the real polkitd (a second stack, with the
 *     built policy and a rules file granting A the tkms actions installed for the run), tkmsd
 *     configured with [cache] AuthorizationTtl=60, then 0 (restarted in between).
 *
 * And the password row: GetSecret of a 32-character password key through libtkms beside
 * secret_password_lookup_sync() of the same password in GNOME Keyring, which the bench starts
 * on a private session bus of its own (tkms-bench-keyring.h), both synchronous, in
 * interleaved rounds.
 *
 * Not a test: tests/bench/meson.build builds it with the tests, nothing runs it.
 */

#include "tkms-bench-config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <json-glib/json-glib.h>
#include <openssl/crypto.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "tkms-test-env.h"
#include "tkms-bench-keyring.h"
#include "tkms-bench-template.h"
#include "tkms-test-store.h"
#include "tpm-srk.h"

#define DEFAULT_ITERATIONS 20000
#define DEFAULT_IN_FLIGHT 64
#define DEFAULT_ROUNDS 5
#define TPM_DIVISOR 100 /* TPM phases run iterations / TPM_DIVISOR operations */
#define TPM_MIN_ITERATIONS 10
#define WARMUP_CALLS 200
#define WARMUP_TPM 3
#define PAYLOAD_SIZE 32

#define KEY_AES "bench-aes"
#define KEY_EC "bench-ecdsa"
#define KEY_HMAC "bench-hmac"
#define KEY_PASSWORD "bench-password"
#define PASSWORD_LENGTH 32
/* issue 8: GetSecret at least 3x the rate of a libsecret lookup of the same password */
#define PASSWORD_GOAL 3.0

/* Authorization phases. The users are the authz suite's (tests/tkms-test-authz.h). */
#define USER_A "tkms-test-a"
#define USER_B "tkms-test-b"
#define AUTHZ_MAX_SECONDS 6.0	/* cap of a row's measured runs (all rounds) without --duration */
#define POLKIT_ON_DIVISOR 4	/* cache on: iterations / 4 calls */
#define POLKIT_OFF_DIVISOR 20	/* cache off: iterations / 20 calls (a few ms each) */
#define POLKIT_WARMUP_ON 200
#define POLKIT_WARMUP_OFF 5
#define FLOOD_CONNECTIONS 2
#define FLOOD_IN_FLIGHT 60	/* per connection; tkmsd allows 64 per caller, 256 per uid */
#define FLOOD_WARMUP (FLOOD_CONNECTIONS * FLOOD_IN_FLIGHT) /* every slot refilled once */
#define FLOOD_ENC_DIVISOR 10	/* B's Encrypt: iterations / 10 calls */
#define FLOOD_SIGN_FACTOR 2	/* B's Sign: 2 x tpm_iterations calls */
#define FLOOD_WARMUP_B_ENC 100
#define FLOOD_WARMUP_B_SIGN 5

/* the echo rows: the service's name (tkms-bench-echo.c) and the batch's size */
#define ECHO_NAME "org.tkms.BenchEcho"
#define ECHO_PATH "/org/tkms/BenchEcho"
#define ECHO_START_SECONDS 10
#define BATCH_ITEMS 64
/* issue 10: EncryptBatch items/s at least 10x single Encrypt calls/s; Encrypt at least 80% of
 * an echo's calls/s */
#define BATCH_GOAL 10.0
#define ECHO_GOAL 0.8
/* issue 10: Sign and Hmac through tkmsd at least 50% of the raw command on a loaded key (in a
 * kept session for Hmac); a cold sealed key's first use at most 1 ms over raw
 * Load+Unseal+Flush */
#define SIGN_GOAL    0.5
#define HMAC_GOAL    0.5
#define COLD_GOAL_MS 1.0

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
	guint items_per_op; /* batches: the items of one call; else 1 */
	guint ops_divisor;  /* runs iterations / calls_per_op / ops_divisor ops; else 1 */
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
	guint64 failed;	    /* calls answered with an error (flood rows go on after errors) */
	GHashTable *errors; /* error name -> count (guint) */
	guint64 fixed_ops;  /* > 0: this many ops over all rounds, after one warm-up op */
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
	R_ECHO_SYNC,
	R_ECHO_ASYNC,
	R_ENCRYPT_SYNC,
	R_ENCRYPT_ASYNC,
	R_ENC_BATCH_SYNC,
	R_SIGN_SYNC,
	R_SIGN_ASYNC,
	R_HMAC_SYNC,
	R_SIGN_BATCH_SYNC,
	R_HMAC_BATCH_SYNC,
	R_RAW_SIGN,
	R_RAW_SIGN_SEQ,
	R_RAW_HMAC,
	R_RAW_HMAC_SEQ,
	R_RAW_UNSEAL_SEQ,
	R_PEER_SIGN,
	R_PEER_SIGN_THREAD,
	R_FLOOD_SIGN_ALONE,
	R_FLOOD_SIGN_B,
	R_FLOOD_SIGN_A,
	R_FLOOD_ENC_ALONE,
	R_FLOOD_ENC_B,
	R_FLOOD_ENC_A,
	R_POLKIT_ON,
	R_POLKIT_OFF,
	R_STORE_CREATE_EMPTY,
	R_STORE_CREATE_BULK,
	R_STORE_ENC_EMPTY,
	R_STORE_ENC_BULK,
	R_ROTATE_AES,
	R_ROTATE_HMAC,
	R_ROTATE_EC,
	R_ROTATE_RSA,
	R_ENC_ALONE,
	R_ENC_ROTATING,
	R_USAGE_ON,
	R_USAGE_OFF,
	R_SECRET_TKMS,
	R_SECRET_KEYRING,
	R_COLD_DECRYPT,
	R_COLD_FIRST,
	R_HMAC_64K,
	R_RANDOM_64K,
	N_RESULTS
};

/* The rotation rows: RotateKey latency per key type, ROTATE_CALLS rotations each (split over
 * the rounds), and synchronous Encrypt alone against Encrypt while another client (its own
 * connection, in a thread) rotates a different key in a loop. */
#define ROTATE_CALLS 20
#define KEY_ROTATING "bench-rotating"
#define KEY_ROT_PREFIX "bench-rot-"
static const gchar *const rotate_types[] = {"aes-256-gcm", "hmac-sha256", "ecdsa-p256", "rsa-2048"};

/* The key store rows: one stack, its store empty, then holding STORE_BULK_KEYS keys. */
#define STORE_BULK_KEYS 100000
#define STORE_STARTS 3		 /* starts timed per store; the median is shown */
#define STORE_START_GOAL_MS 2000 /* DESIGN.md: 100,000 keys do not slow start past 2 s */
#define STORE_RSS_GOAL_MIB 100
#define STORE_KEY_AES "store-aes"

typedef struct {
	gboolean ran;
	guint64 keys;		/* rows of keys.db when measured */
	gdouble start_ms;	/* start until tkmsd owns its bus name, median of STORE_STARTS */
	gdouble start_ms_max;
	gdouble rss_start_mib;	/* VmRSS right after the start */
	gdouble rss_after_mib;	/* VmRSS after the CreateKey and Encrypt rows */
} StoreFigures;

typedef struct {
	TkmsTestSwtpm *swtpm; /* the fixture's, in the env's directory */
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR primary; /* unrestricted ECC P-256 signing primary */
	ESYS_TR srk;	 /* ECC P-256 storage primary (TCG SRK template) */
	ESYS_TR session; /* salted on the SRK, kept open as tkmsd keeps its shared session */
	TPM2B_PUBLIC *child_pub; /* ECC P-256 signing key under the SRK */
	TPM2B_PRIVATE *child_priv;
	TPM2B_PUBLIC *hmac_pub; /* HMAC-SHA256 key under the SRK */
	TPM2B_PRIVATE *hmac_priv;
	ESYS_TR hmac_obj;	  /* it, loaded for the whole run */
	TPM2B_PUBLIC *sealed_pub; /* 32 bytes sealed under the SRK, with a 32-byte auth value */
	TPM2B_PRIVATE *sealed_priv;
	TPM2B_AUTH sealed_auth;
	TPM2B_DIGEST digest;
	TPM2B_MAX_BUFFER message;
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
	GPtrArray *batch; /* BATCH_ITEMS x plaintext */
	GSubprocess *echo;
	gchar *echo_owner;	   /* the echo service's unique name */
	TkmsTestSwtpm *peer_swtpm; /* a third swtpm: the echo service's, for the peer rows */
	GBytes *sign_digest;	   /* SHA-256 of sign_data, as tkmsd computes it: what the raw and
				      peer rows sign */

	gchar **only; /* id prefixes of the phases to run; NULL: all */

	RawTpm raw;
	Result results[N_RESULTS];
	guint rounds;
	guint round;

	/* authorization phases */
	guint32 uid_a, uid_b;
	gboolean have_users;
	gchar *polkit_note; /* what the polkit rows ran against */
	/* password rows: the password (wiped at the end) and what the baseline ran on */
	gchar *password;
	TkmsBenchKeyring *keyring;
	gchar *password_note;

	/* key store phases: two stacks of their own (empty store, bulk store), measured in
	 * interleaved rounds */
	TkmsTestEnv *store_env;	 /* the one being measured */
	TkmsTestEnv *store_envs[2];
	TkmsClient *store_client;
	guint store_created;
	StoreFigures store[2]; /* empty, bulk */
	TkmsTestEnv *usage_envs[2]; /* usage rows: [lifecycle] CountUses=true, false */
	TkmsClient *usage_client;
	TkmsTestEnv *cold_env;	/* TPM cost rows: [cache] KeyTtl=0 */
	GBytes *cold_ciphertext;
	GPtrArray *cold_ciphertexts; /* one per COLD_KEYS key, used in turn */
	guint cold_next;
	GBytes *payload_64k;
	gchar *store_error;

	/* rotation rows: the rotating client's work during the Encrypt-while-rotating rounds */
	guint64 rotator_calls;
	gdouble rotator_seconds;
	guint64 rotator_failed;
} Bench;

static void
result_init(Result *r, const gchar *id, const gchar *label, guint in_flight, guint calls_per_op,
	    gboolean tpm)
{
	r->id = id;
	r->label = label;
	r->in_flight = in_flight;
	r->calls_per_op = calls_per_op;
	r->items_per_op = 1;
	r->ops_divisor = 1;
	r->tpm = tpm;
	r->lat = g_array_new(FALSE, FALSE, sizeof(guint64));
	r->round_rates = g_array_new(FALSE, FALSE, sizeof(gdouble));
	r->errors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static void
result_clear(Result *r)
{
	g_clear_pointer(&r->lat, g_array_unref);
	g_clear_pointer(&r->round_rates, g_array_unref);
	g_clear_pointer(&r->error, g_free);
	g_clear_pointer(&r->errors, g_hash_table_unref);
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
	guint64 total = r->fixed_ops > 0 ? r->fixed_ops
					 : MAX(calls / r->calls_per_op / r->ops_divisor, 1);

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
	if (r->fixed_ops > 0)
		return b->round == 0 ? 1 : 0;
	if (r->tpm)
		return b->round == 0 ? WARMUP_TPM : 1;
	return MAX(WARMUP_CALLS / r->calls_per_op / r->ops_divisor, 1);
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

static void
sign_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Slot *slot = user_data;
	GError *error = NULL;
	g_autoptr(GBytes) sig = tkms_client_sign_finish(TKMS_CLIENT(source), res, &error);

	slot_call_done(slot, error);
	slot_op_done(slot, sig != NULL);
}

/* The TPM signs one digest at a time; with calls in flight tkmsd does their bus and
 * authorization work while it signs. */
static void
sign_start(Bench *b, Slot *slot)
{
	tkms_client_sign(b->client, KEY_EC, b->sign_data, NULL, sign_cb, slot);
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
/* The echo rows: another process's minimal method beside tkmsd's Encrypt and EncryptBatch    */

/* Root owns the echo service's name; everybody may call it, as tkmsd's policy lets everybody
 * call tkmsd. */
static const gchar echo_policy[] =
	"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	"<busconfig>\n"
	"  <policy user=\"root\"><allow own=\"" ECHO_NAME "\"/></policy>\n"
	"  <policy context=\"default\">\n"
	"    <allow send_destination=\"" ECHO_NAME "\" send_interface=\"" ECHO_NAME "\"/>\n"
	"  </policy>\n"
	"</busconfig>\n";

/* Starts tkms-bench-echo on the bench's bus and waits until it owns its name. */
static gboolean
echo_service_start(Bench *b, const gchar *tcti, GError **error)
{
	const gchar *path = g_getenv("TKMS_BENCH_ECHO");
	gint64 end = g_get_monotonic_time() + ECHO_START_SECONDS * G_USEC_PER_SEC;

	if (!tkms_test_env_add_bus_policy(b->env, "tkms-bench-echo.conf", echo_policy, error))
		return FALSE;
	b->echo = g_subprocess_new(G_SUBPROCESS_FLAGS_NONE, error, path,
				   tkms_test_env_get_bus_address(b->env), tcti, NULL);
	if (b->echo == NULL)
		return FALSE;
	while (b->echo_owner == NULL) {
		g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
			b->conn, BUS_NAME, BUS_PATH, BUS_NAME, "GetNameOwner",
			g_variant_new("(s)", ECHO_NAME), G_VARIANT_TYPE("(s)"),
			G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);

		if (reply != NULL) {
			g_variant_get(reply, "(s)", &b->echo_owner);
			break;
		}
		if (g_get_monotonic_time() > end || g_subprocess_get_identifier(b->echo) == NULL) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				    "%s did not own %s within %d s", path, ECHO_NAME,
				    ECHO_START_SECONDS);
			return FALSE;
		}
		g_usleep(20000);
	}
	return TRUE;
}

static void
echo_service_stop(Bench *b)
{
	if (b->echo == NULL)
		return;
	g_subprocess_send_signal(b->echo, SIGTERM);
	g_subprocess_wait(b->echo, NULL, NULL);
	g_clear_object(&b->echo);
	g_clear_pointer(&b->echo_owner, g_free);
	g_clear_pointer(&b->peer_swtpm, tkms_test_swtpm_free);
}

/* The argument of Echo and of Encrypt's plaintext: the 32 bytes, shared. */
static GVariant *
payload_v(Bench *b)
{
	return g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, b->plaintext, TRUE);
}

static GVariant *
encrypt_args(Bench *b)
{
	return g_variant_new("(s@ay@ay)", KEY_AES, payload_v(b),
			     g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, b->context, TRUE));
}

static gboolean
echo_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GVariant) v = g_dbus_connection_call_sync(
		b->conn, b->echo_owner, ECHO_PATH, ECHO_NAME, "Echo",
		g_variant_new("(@ay)", payload_v(b)), G_VARIANT_TYPE("(ay)"),
		G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);

	if (v == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

static void
echo_call_start(Bench *b, Slot *slot)
{
	g_dbus_connection_call(b->conn, b->echo_owner, ECHO_PATH, ECHO_NAME, "Echo",
			       g_variant_new("(@ay)", payload_v(b)), G_VARIANT_TYPE("(ay)"),
			       G_DBUS_CALL_FLAGS_NONE, -1, NULL, raw_call_cb, slot);
}

/* Encrypt made as the echo calls are (the same GDBus call, no libtkms in between). */
static gboolean
encrypt_raw_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GVariant) v = g_dbus_connection_call_sync(
		b->conn, b->daemon_unique_name, TKMS_OBJECT_PATH, TKMS_BUS_NAME, "Encrypt",
		encrypt_args(b), G_VARIANT_TYPE("(ay)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);

	if (v == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

static void
encrypt_raw_start(Bench *b, Slot *slot)
{
	g_dbus_connection_call(b->conn, b->daemon_unique_name, TKMS_OBJECT_PATH, TKMS_BUS_NAME,
			       "Encrypt", encrypt_args(b), G_VARIANT_TYPE("(ay)"),
			       G_DBUS_CALL_FLAGS_NONE, -1, NULL, raw_call_cb, slot);
}

/* A batch call's answer (out, NULL on failure) checked and its time recorded. */
static gboolean
record_batch(Bench *b, Result *r, guint64 t0, GPtrArray *out, const gchar *method,
	     GError **error)
{
	if (out == NULL)
		return FALSE;
	if (out->len != b->batch->len) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s returned %u items for %u",
			    method, out->len, b->batch->len);
		return FALSE;
	}
	record(r, t0);
	return TRUE;
}

/* EncryptBatch of BATCH_ITEMS x 32 B through libtkms: one op, one call, BATCH_ITEMS items. */
static gboolean
encrypt_batch_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GPtrArray) cts = tkms_client_encrypt_batch_sync(b->client, KEY_AES, b->batch,
								  b->context, NULL, error);

	return record_batch(b, r, t0, cts, "EncryptBatch", error);
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

/* Another swtpm of the fixture's kind (tkmsd holds the first one's only connection), its state
 * in PREFIX-tpm and its log in PREFIX-swtpm.log inside the env's directory, which is removed
 * with it (also after a crash). */
static TkmsTestSwtpm *
bench_swtpm_new(Bench *b, const gchar *prefix, GError **error)
{
	const gchar *dir = tkms_test_env_get_tmp_dir(b->env);
	g_autofree gchar *state = g_strdup_printf("%s-tpm", prefix);
	g_autofree gchar *log = g_strdup_printf("%s-swtpm.log", prefix);
	g_autofree gchar *state_dir = g_build_filename(dir, state, NULL);
	g_autofree gchar *log_path = g_build_filename(dir, log, NULL);

	return tkms_test_swtpm_new(state_dir, log_path, error);
}

/* tkmsd's HMAC key (daemon/tpm-ops.c fill_template): keyed hash, HMAC-SHA256, TPM-made. */
static void
fill_hmac_template(TPM2B_PUBLIC *tmpl)
{
	TPMT_PUBLIC *p = &tmpl->publicArea;

	memset(tmpl, 0, sizeof(*tmpl));
	p->type = TPM2_ALG_KEYEDHASH;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA |
			      TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT |
			      TPMA_OBJECT_SENSITIVEDATAORIGIN;
	p->parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_HMAC;
	p->parameters.keyedHashDetail.scheme.details.hmac.hashAlg = TPM2_ALG_SHA256;
}

/* tkmsd's sealed key versions (daemon/tpm-object.c): a keyed hash without scheme. */
static void
fill_sealed_template(TPM2B_PUBLIC *tmpl)
{
	TPMT_PUBLIC *p = &tmpl->publicArea;

	memset(tmpl, 0, sizeof(*tmpl));
	p->type = TPM2_ALG_KEYEDHASH;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA |
			      TPMA_OBJECT_USERWITHAUTH;
	p->parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
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
	t->primary = ESYS_TR_NONE;
	t->srk = ESYS_TR_NONE;
	t->session = ESYS_TR_NONE;
	t->hmac_obj = ESYS_TR_NONE;
	t->swtpm = bench_swtpm_new(b, "bench", error);
	if (t->swtpm == NULL)
		return FALSE;
	conf = g_strdup(tkms_test_swtpm_get_tcti(t->swtpm));
	if (!tss_check(Tss2_TctiLdr_Initialize(conf, &t->tcti), "Tss2_TctiLdr_Initialize", error) ||
	    !tss_check(Esys_Initialize(&t->esys, t->tcti, NULL), "Esys_Initialize", error))
		return FALSE;

	tkms_bench_ecc_sign_template(&tmpl);
	if (!create_primary(t, &tmpl, &t->primary, error))
		return FALSE;
	tkms_tpm_srk_template(&tmpl); /* exactly tkmsd's SRK */
	if (!create_primary(t, &tmpl, &t->srk, error))
		return FALSE;
	/* The same kinds of object tkmsd signs and MACs with: keys under the SRK, loaded per use. */
	tkms_bench_ecc_sign_template(&tmpl);
	if (!tss_check(Esys_Create(t->esys, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
				   &sensitive, &tmpl, &outside, &pcrs, &t->child_priv,
				   &t->child_pub, NULL, NULL, NULL),
		       "Esys_Create (ECC)", error))
		return FALSE;
	fill_hmac_template(&tmpl);
	if (!tss_check(Esys_Create(t->esys, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
				   &sensitive, &tmpl, &outside, &pcrs, &t->hmac_priv,
				   &t->hmac_pub, NULL, NULL, NULL),
		       "Esys_Create (HMAC)", error))
		return FALSE;
	/* as tkmsd's sealed key versions: 32 bytes of key material, a 32-byte auth value */
	{
		TPM2B_SENSITIVE_CREATE sealed = {0};

		fill_sealed_template(&tmpl);
		sealed.sensitive.data.size = 32;
		memset(sealed.sensitive.data.buffer, 0x5a, 32);
		t->sealed_auth.size = 32;
		memset(t->sealed_auth.buffer, 0xa5, 32);
		sealed.sensitive.userAuth = t->sealed_auth;
		if (!tss_check(Esys_Create(t->esys, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE,
					   ESYS_TR_NONE, &sealed, &tmpl, &outside, &pcrs,
					   &t->sealed_priv, &t->sealed_pub, NULL, NULL, NULL),
			       "Esys_Create (sealed)", error))
			return FALSE;
	}

	t->message.size = (UINT16)g_bytes_get_size(b->sign_data);
	memcpy(t->message.buffer, g_bytes_get_data(b->sign_data, NULL), t->message.size);
	t->digest.size = (UINT16)g_bytes_get_size(b->sign_digest);
	memcpy(t->digest.buffer, g_bytes_get_data(b->sign_digest, NULL), t->digest.size);
	return TRUE;
}

static void
raw_tpm_teardown(RawTpm *t)
{
	if (t->esys != NULL) {
		if (t->session != ESYS_TR_NONE)
			Esys_FlushContext(t->esys, t->session);
		if (t->hmac_obj != ESYS_TR_NONE)
			Esys_FlushContext(t->esys, t->hmac_obj);
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
	Esys_Free(t->hmac_pub);
	Esys_Free(t->hmac_priv);
	Esys_Free(t->sealed_pub);
	Esys_Free(t->sealed_priv);
	t->sealed_pub = NULL;
	t->sealed_priv = NULL;
	t->hmac_obj = ESYS_TR_NONE;
	t->child_pub = NULL;
	t->child_priv = NULL;
	t->hmac_pub = NULL;
	t->hmac_priv = NULL;
	g_clear_pointer(&t->swtpm, tkms_test_swtpm_free);
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

/* The peer rows: the echo service signs on a swtpm of its own, in its handler or its thread. */
static gboolean
peer_start(Bench *b, GError **error)
{
	b->peer_swtpm = bench_swtpm_new(b, "peer", error);
	return b->peer_swtpm != NULL &&
	       echo_service_start(b, tkms_test_swtpm_get_tcti(b->peer_swtpm), error);
}

static gboolean
peer_sign_call(Bench *b, Result *r, const gchar *method, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GVariant) v = g_dbus_connection_call_sync(
		b->conn, b->echo_owner, ECHO_PATH, ECHO_NAME, method,
		g_variant_new("(@ay)", g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING,
								b->sign_digest, TRUE)),
		G_VARIANT_TYPE("(ay)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);

	if (v == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

static gboolean
peer_sign(Bench *b, Result *r, GError **error)
{
	return peer_sign_call(b, r, "Sign", error);
}

static gboolean
peer_sign_thread(Bench *b, Result *r, GError **error)
{
	return peer_sign_call(b, r, "SignInThread", error);
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

/* Load with the empty password, as tkmsd does (daemon/tpm-ops.c load_object). swtpm has 3
 * object slots: the signing primary and the SRK hold two, so the HMAC key that raw_hmac keeps
 * loaded goes first (raw_hmac loads it again in its round's warm-up). */
static gboolean
raw_load(RawTpm *t, TPM2B_PRIVATE *priv, TPM2B_PUBLIC *pub, ESYS_TR *obj, GError **error)
{
	if (t->hmac_obj != ESYS_TR_NONE) {
		Esys_FlushContext(t->esys, t->hmac_obj);
		t->hmac_obj = ESYS_TR_NONE;
	}
	return tss_check(Esys_Load(t->esys, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
				   priv, pub, obj),
			 "Esys_Load", error);
}

/* What tkmsd's Sign sends (daemon/tpm-ops.c sign_func, key not bound to PCRs): Load and Sign
 * with password auth (nothing secret crosses the bus), then FlushContext. */
static gboolean
raw_tkmsd_sign(Bench *b, Result *r, GError **error)
{
	RawTpm *t = &b->raw;
	guint64 t0 = now_ns();
	ESYS_TR obj = ESYS_TR_NONE;
	gboolean ok;

	if (!raw_load(t, t->child_priv, t->child_pub, &obj, error))
		return FALSE;
	ok = raw_sign_with(t, obj, ESYS_TR_PASSWORD, error);
	Esys_FlushContext(t->esys, obj);
	if (ok)
		record(r, t0);
	return ok;
}

/* A salted HMAC session on the SRK, as tkmsd's tkms_tpm_start_hmac_session(). */
static gboolean
raw_salted_session(RawTpm *t, ESYS_TR *session, GError **error)
{
	static const TPMT_SYM_DEF sym = {
		.algorithm = TPM2_ALG_AES,
		.keyBits = {.aes = 128},
		.mode = {.aes = TPM2_ALG_CFB},
	};

	return tss_check(Esys_StartAuthSession(t->esys, t->srk, ESYS_TR_NONE, ESYS_TR_NONE,
					       ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_HMAC, &sym,
					       TPM2_ALG_SHA256, session),
			 "Esys_StartAuthSession", error);
}

/* What tkmsd's Hmac sends (daemon/tpm-ops.c hmac_once, message <= 1 KiB, key not bound to
 * PCRs, its auth value known): Load with password auth, HMAC in the salted session kept open
 * across calls (it encrypts the message and the MAC), then FlushContext of the key. The first
 * call starts the session, as tkmsd's first does. */
static gboolean
raw_tkmsd_hmac(Bench *b, Result *r, GError **error)
{
	RawTpm *t = &b->raw;
	guint64 t0 = now_ns();
	ESYS_TR obj = ESYS_TR_NONE;
	TPM2B_DIGEST *mac = NULL;
	gboolean ok;

	if (!raw_load(t, t->hmac_priv, t->hmac_pub, &obj, error))
		return FALSE;
	ok = t->session != ESYS_TR_NONE || raw_salted_session(t, &t->session, error);
	if (ok) {
		Esys_TRSess_SetAttributes(t->esys, t->session,
					  TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_DECRYPT |
					      TPMA_SESSION_ENCRYPT,
					  0xff);
		ok = tss_check(Esys_HMAC(t->esys, obj, t->session, ESYS_TR_NONE, ESYS_TR_NONE,
					 &t->message, TPM2_ALG_SHA256, &mac),
			       "Esys_HMAC", error);
	}
	Esys_FlushContext(t->esys, obj);
	if (ok && mac->size != 32) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "Esys_HMAC gave %u bytes",
			    mac->size);
		ok = FALSE;
	}
	Esys_Free(mac);
	if (ok)
		record(r, t0);
	return ok;
}

/* The salted session kept open, as tkmsd keeps its shared one, set to encrypt both ways. */
static gboolean
raw_kept_session(RawTpm *t, GError **error)
{
	if (t->session == ESYS_TR_NONE && !raw_salted_session(t, &t->session, error))
		return FALSE;
	Esys_TRSess_SetAttributes(
		t->esys, t->session,
		TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT, 0xff);
	return TRUE;
}

/* Esys_HMAC on a loaded key in the kept salted session (message and MAC encrypted): the floor
 * of tkmsd's Hmac on a key its object cache holds. */
static gboolean
raw_hmac(Bench *b, Result *r, GError **error)
{
	RawTpm *t = &b->raw;
	guint64 t0 = now_ns();
	TPM2B_DIGEST *mac = NULL;
	gboolean ok;

	/* loaded once per round (the Load+... rows flush it), in the round's warm-up */
	if (t->hmac_obj == ESYS_TR_NONE &&
	    !tss_check(Esys_Load(t->esys, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
				 t->hmac_priv, t->hmac_pub, &t->hmac_obj),
		       "Esys_Load (HMAC)", error))
		return FALSE;
	ok = raw_kept_session(t, error) &&
	     tss_check(Esys_HMAC(t->esys, t->hmac_obj, t->session, ESYS_TR_NONE, ESYS_TR_NONE,
				 &t->message, TPM2_ALG_SHA256, &mac),
		       "Esys_HMAC", error);

	Esys_Free(mac);
	if (ok)
		record(r, t0);
	return ok;
}

/* A cold sealed key's first use, as ESYS alone does it: Load (password), Unseal in the kept
 * salted session proving the object's auth value and encrypting the answer, FlushContext. */
static gboolean
raw_unseal_seq(Bench *b, Result *r, GError **error)
{
	RawTpm *t = &b->raw;
	guint64 t0 = now_ns();
	ESYS_TR obj = ESYS_TR_NONE;
	TPM2B_SENSITIVE_DATA *out = NULL;
	gboolean ok;

	if (!raw_load(t, t->sealed_priv, t->sealed_pub, &obj, error))
		return FALSE;
	Esys_TR_SetAuth(t->esys, obj, &t->sealed_auth);
	ok = raw_kept_session(t, error);
	if (ok) {
		Esys_TRSess_SetAttributes(t->esys, t->session,
					  TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_ENCRYPT,
					  0xff);
		ok = tss_check(
			Esys_Unseal(t->esys, obj, t->session, ESYS_TR_NONE, ESYS_TR_NONE, &out),
			"Esys_Unseal", error);
	}
	Esys_FlushContext(t->esys, obj);
	if (ok && out->size != 32) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "Esys_Unseal gave %u bytes",
			    out->size);
		ok = FALSE;
	}
	Esys_Free(out);
	if (ok)
		record(r, t0);
	return ok;
}

static gboolean
sign_batch_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GPtrArray) sigs =
		tkms_client_sign_batch_sync(b->client, KEY_EC, b->batch, NULL, error);

	return record_batch(b, r, t0, sigs, "SignBatch", error);
}

static gboolean
hmac_batch_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GPtrArray) macs =
		tkms_client_hmac_batch_sync(b->client, KEY_HMAC, b->batch, NULL, error);

	return record_batch(b, r, t0, macs, "HmacBatch", error);
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

/* The echo service's method beside tkmsd's Encrypt made the same way, and EncryptBatch. */
static const Phase echo_phases[] = {
	{R_ECHO_SYNC, echo_sync, NULL},	      {R_ECHO_ASYNC, NULL, echo_call_start},
	{R_ENCRYPT_SYNC, encrypt_raw_sync, NULL}, {R_ENCRYPT_ASYNC, NULL, encrypt_raw_start},
	{R_ENC_BATCH_SYNC, encrypt_batch_sync, NULL},
};

/* TPM commands: through tkmsd, then straight through ESYS on the second swtpm. */
static const Phase tpm_phases[] = {
	{R_SIGN_SYNC, sign_sync, NULL},
	{R_SIGN_ASYNC, NULL, sign_start},
	{R_HMAC_SYNC, hmac_sync, NULL},
	{R_SIGN_BATCH_SYNC, sign_batch_sync, NULL},
	{R_HMAC_BATCH_SYNC, hmac_batch_sync, NULL},
	{R_RAW_SIGN, raw_sign, NULL},
	{R_RAW_SIGN_SEQ, raw_tkmsd_sign, NULL},
	{R_RAW_HMAC, raw_hmac, NULL},
	{R_RAW_HMAC_SEQ, raw_tkmsd_hmac, NULL},
	{R_PEER_SIGN, peer_sign, NULL},
	{R_PEER_SIGN_THREAD, peer_sign_thread, NULL},
};

static gboolean
any_selected(Bench *b, const Phase *phases, guint n, gboolean raw_only)
{
	for (guint i = 0; i < n; i++) {
		guint id = phases[i].result;
		if ((!raw_only || (id >= R_RAW_SIGN && id <= R_RAW_UNSEAL_SEQ)) &&
		    selected(b, &b->results[id]))
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
run_echo_phases(Bench *b)
{
	g_autoptr(GError) error = NULL;

	if (interrupted || !any_selected(b, echo_phases, G_N_ELEMENTS(echo_phases), FALSE))
		return;
	if ((selected(b, &b->results[R_ECHO_SYNC]) || selected(b, &b->results[R_ECHO_ASYNC])) &&
	    !echo_service_start(b, NULL, &error)) {
		g_printerr("tkms-bench: echo service unavailable, skipped: %s\n", error->message);
		result_fail(&b->results[R_ECHO_SYNC], "no echo service: %s", error->message);
		result_fail(&b->results[R_ECHO_ASYNC], "no echo service: %s", error->message);
	}
	run_phases(b, echo_phases, G_N_ELEMENTS(echo_phases));
	echo_service_stop(b);
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
			for (guint i = R_RAW_SIGN; i <= R_RAW_UNSEAL_SEQ; i++)
				result_fail(&b->results[i], "setup failed: %s", error->message);
		}
	}
	if (selected(b, &b->results[R_PEER_SIGN]) || selected(b, &b->results[R_PEER_SIGN_THREAD])) {
		g_autoptr(GError) error = NULL;

		g_printerr("tkms-bench: starting a third swtpm and the echo service for the peer "
			   "rows\n");
		if (!peer_start(b, &error)) {
			g_printerr("tkms-bench: peer rows unavailable, skipped: %s\n",
				   error->message);
			result_fail(&b->results[R_PEER_SIGN], "setup failed: %s", error->message);
			result_fail(&b->results[R_PEER_SIGN_THREAD], "setup failed: %s",
				    error->message);
		}
	}
	run_phases(b, tpm_phases, G_N_ELEMENTS(tpm_phases));
	raw_tpm_teardown(&b->raw);
	echo_service_stop(b);
}

/* ---------------------------------------------------------------------------------------- */
/* Authorization phases: callers that are other users, as tkms-test-helper bench processes   */

typedef struct {
	guint64 calls;
	gdouble seconds;
	guint64 failed;
	gchar *error; /* the first error, or NULL */
	GHashTable *errors;
	GArray *lat;
} HelperFigures;

static void
helper_figures_free(HelperFigures *h)
{
	if (h == NULL)
		return;
	g_free(h->error);
	g_clear_pointer(&h->errors, g_hash_table_unref);
	g_clear_pointer(&h->lat, g_array_unref);
	g_free(h);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperFigures, helper_figures_free)

/* The last line of out that starts with '{': the helper's figures. */
static HelperFigures *
helper_parse(const gchar *out, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(HelperFigures) h = g_new0(HelperFigures, 1);
	const gchar *line = NULL;
	JsonObject *o, *errs;
	JsonArray *lat;
	JsonNode *e;

	for (const gchar *p = out; p != NULL && *p != '\0';) {
		const gchar *nl = strchr(p, '\n');
		if (*p == '{')
			line = p;
		p = nl ? nl + 1 : NULL;
	}
	if (line == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "tkms-test-helper bench printed no figures (output: %.200s)",
			    out ? out : "");
		return NULL;
	}
	if (!json_parser_load_from_data(parser, line, strcspn(line, "\n"), error)) {
		g_prefix_error(error, "tkms-test-helper bench output: ");
		return NULL;
	}
	o = JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))
		    ? json_node_get_object(json_parser_get_root(parser))
		    : NULL;
	if (o == NULL || !json_object_has_member(o, "lat_ns")) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "tkms-test-helper bench output lacks lat_ns");
		return NULL;
	}
	h->calls = (guint64)json_object_get_int_member(o, "calls");
	h->seconds = json_object_get_double_member(o, "seconds");
	h->failed = (guint64)json_object_get_int_member(o, "failed");
	e = json_object_get_member(o, "error");
	if (e != NULL && !JSON_NODE_HOLDS_NULL(e))
		h->error = g_strdup(json_node_get_string(e));
	h->errors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	errs = json_object_get_object_member(o, "errors");
	if (errs != NULL) {
		g_autoptr(GList) names = json_object_get_members(errs);
		for (GList *l = names; l != NULL; l = l->next)
			g_hash_table_insert(
				h->errors, g_strdup(l->data),
				GUINT_TO_POINTER((guint)json_object_get_int_member(errs, l->data)));
	}
	lat = json_object_get_array_member(o, "lat_ns");
	h->lat = g_array_sized_new(FALSE, FALSE, sizeof(guint64), json_array_get_length(lat));
	for (guint i = 0; i < json_array_get_length(lat); i++) {
		guint64 v = (guint64)json_array_get_int_element(lat, i);
		g_array_append_val(h->lat, v);
	}
	return g_steal_pointer(&h);
}

/* Adds one helper run to r as one round. A measured run's error fails r; a flood's errors
 * are counted (errors_fail FALSE). */
static void
result_add_figures(Result *r, HelperFigures *h, gboolean errors_fail)
{
	GHashTableIter iter;
	gpointer k, v;

	r->ran = TRUE;
	g_array_append_vals(r->lat, h->lat->data, h->lat->len);
	r->calls += h->calls;
	r->ops += h->calls;
	r->seconds += h->seconds;
	if (h->calls > 0 && h->seconds > 0) {
		gdouble rate = (gdouble)h->calls / h->seconds;
		g_array_append_val(r->round_rates, rate);
	}
	r->failed += h->failed;
	g_hash_table_iter_init(&iter, h->errors);
	while (g_hash_table_iter_next(&iter, &k, &v)) {
		guint n = GPOINTER_TO_UINT(g_hash_table_lookup(r->errors, k));
		g_hash_table_replace(r->errors, g_strdup(k),
				     GUINT_TO_POINTER(n + GPOINTER_TO_UINT(v)));
	}
	if (h->error != NULL && errors_fail)
		result_fail(r, "%s", h->error);
	else if (h->calls == 0 && h->error != NULL)
		result_fail(r, "no call succeeded: %s", h->error);
}

/* The argv of "tkms-test-helper bench"; count 0: a flood. */
static GStrv
helper_bench_argv(const gchar *op, const gchar *key, guint connections, guint in_flight,
		  guint warmup, guint64 count, gdouble max_seconds)
{
	GPtrArray *a = g_ptr_array_new();
	gchar secs[G_ASCII_DTOSTR_BUF_SIZE];

	g_ptr_array_add(a, g_strdup(tkms_test_helper_path()));
	g_ptr_array_add(a, g_strdup("bench"));
	g_ptr_array_add(a, g_strdup(op));
	g_ptr_array_add(a, g_strdup(key));
	g_ptr_array_add(a, g_strdup_printf("%u", connections));
	g_ptr_array_add(a, g_strdup_printf("%u", in_flight));
	g_ptr_array_add(a, g_strdup_printf("%u", warmup));
	g_ptr_array_add(a, g_strdup_printf("%" G_GUINT64_FORMAT, count));
	g_ptr_array_add(a, g_strdup(g_ascii_dtostr(secs, sizeof(secs), max_seconds)));
	g_ptr_array_add(a, NULL);
	return (GStrv)g_ptr_array_free(a, FALSE);
}

/* A measured run: user's synchronous calls, COUNT of them or fewer in max_seconds. */
static HelperFigures *
helper_measure(TkmsTestEnv *env, const gchar *user, const gchar *op, const gchar *key,
	       guint warmup, guint64 count, gdouble max_seconds, GError **error)
{
	g_auto(GStrv) argv = helper_bench_argv(op, key, 1, 1, warmup, count, max_seconds);
	g_autoptr(GSubprocess) proc = tkms_test_env_spawn_as(env, user, (const gchar *const *)argv,
							     error);
	g_autofree gchar *out = NULL;

	if (proc == NULL)
		return NULL;
	if (!g_subprocess_communicate_utf8(proc, NULL, NULL, &out, NULL, error))
		return NULL;
	if (!g_subprocess_get_successful(proc)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "tkms-test-helper bench as %s failed (status %d): %.200s", user,
			    g_subprocess_get_status(proc), out ? out : "");
		return NULL;
	}
	return helper_parse(out, error);
}

/* A flood running as another user: started, and READY (warmed up). */
typedef struct {
	GSubprocess *proc;
	GDataInputStream *out;
} Flood;

static void
flood_free(Flood *f)
{
	if (f == NULL)
		return;
	if (f->proc != NULL && g_subprocess_get_identifier(f->proc) != NULL) {
		g_subprocess_force_exit(f->proc);
		g_subprocess_wait(f->proc, NULL, NULL);
	}
	g_clear_object(&f->out);
	g_clear_object(&f->proc);
	g_free(f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Flood, flood_free)

static Flood *
flood_start(TkmsTestEnv *env, const gchar *user, const gchar *op, const gchar *key,
	    GError **error)
{
	g_auto(GStrv) argv =
		helper_bench_argv(op, key, FLOOD_CONNECTIONS, FLOOD_IN_FLIGHT, FLOOD_WARMUP, 0, 0);
	g_autoptr(Flood) f = g_new0(Flood, 1);

	f->proc = tkms_test_env_spawn_as(env, user, (const gchar *const *)argv, error);
	if (f->proc == NULL)
		return NULL;
	f->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(f->proc));
	for (;;) {
		g_autofree gchar *line = g_data_input_stream_read_line_utf8(f->out, NULL, NULL,
									    error);
		if (line == NULL) {
			if (error != NULL && *error == NULL)
				g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
					    "the flood (as %s) ended before it was ready", user);
			return NULL;
		}
		if (g_str_equal(line, "READY"))
			return g_steal_pointer(&f);
	}
}

/* Ends the flood's measured window and reads its figures. */
static HelperFigures *
flood_stop(Flood *f, GError **error)
{
	GOutputStream *in = g_subprocess_get_stdin_pipe(f->proc);
	g_autoptr(GString) rest = g_string_new(NULL);
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;

	/* the flood may have ended already: EPIPE then, not SIGPIPE */
	sigaction(SIGPIPE, &ign, &old);
	g_output_stream_write_all(in, "stop\n", 5, NULL, NULL, NULL);
	g_output_stream_close(in, NULL, NULL);
	sigaction(SIGPIPE, &old, NULL);
	for (;;) {
		g_autoptr(GError) local = NULL;
		g_autofree gchar *line = g_data_input_stream_read_line_utf8(f->out, NULL, NULL,
									    &local);
		if (line == NULL)
			break;
		g_string_append(rest, line);
		g_string_append_c(rest, '\n');
	}
	g_subprocess_wait(f->proc, NULL, NULL);
	return helper_parse(rest->str, error);
}

static gboolean
create_key_as(TkmsTestEnv *env, const gchar *user, const gchar *name, const gchar *type,
	      GError **error)
{
	const gchar *argv[] = {tkms_test_helper_path(), "create", name, type, NULL};
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	if (!tkms_test_env_run_as(env, user, argv, &out, &err, &status, error))
		return FALSE;
	if (status != 0) {
		g_strstrip(out);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "CreateKey(%s, %s) as %s: status %d: %s%s", name, type, user, status,
			    out, err);
		return FALSE;
	}
	return TRUE;
}

static gboolean
ensure_users(Bench *b, GError **error)
{
	if (b->have_users)
		return TRUE;
	if (tkms_test_helper_path() == NULL ||
	    !g_file_test(tkms_test_helper_path(), G_FILE_TEST_IS_EXECUTABLE)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
			    "tkms-test-helper not found (TKMS_TEST_HELPER=%s)",
			    tkms_test_helper_path() ? tkms_test_helper_path() : "(unset)");
		return FALSE;
	}
	if (geteuid() != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
			    "running callers as other users needs root");
		return FALSE;
	}
	if (!tkms_test_ensure_user(USER_A, &b->uid_a, NULL, error) ||
	    !tkms_test_ensure_user(USER_B, &b->uid_b, NULL, error))
		return FALSE;
	b->have_users = TRUE;
	return TRUE;
}

static gboolean
any_in(Bench *b, guint first, guint last)
{
	for (guint i = first; i <= last; i++)
		if (selected(b, &b->results[i]))
			return TRUE;
	return FALSE;
}

static void
fail_range(Bench *b, guint first, guint last, const GError *error)
{
	g_printerr("tkms-bench: %s\n", error->message);
	for (guint i = first; i <= last; i++)
		if (selected(b, &b->results[i]))
			result_fail(&b->results[i], "%s", error->message);
}

/* The time cap of one measured round (the helper stops there, whatever its count). */
static gdouble
authz_max_seconds(Bench *b)
{
	return (b->duration > 0 ? b->duration : AUTHZ_MAX_SECONDS) / b->rounds;
}

/* Calls of one measured round: a row's total spread over the rounds; unlimited with
 * --duration. */
static guint64
authz_round_calls(Bench *b, guint64 total, guint round)
{
	if (b->duration > 0)
		return G_MAXINT32;
	return MAX(total / b->rounds + (round < total % b->rounds ? 1 : 0), 1);
}

static void
authz_progress_start(Bench *b, const gchar *what, guint round)
{
	g_printerr("tkms-bench: round %u/%u: %s ... ", round + 1, b->rounds, what);
}

static void
authz_progress_end(HelperFigures *h, const GError *error)
{
	if (h == NULL)
		g_printerr("FAILED: %s\n", error->message);
	else if (h->calls == 0 || h->seconds <= 0)
		g_printerr("no calls: %s\n", h->error ? h->error : "(no error given)");
	else if (h->failed > 0)
		g_printerr("%.0f calls/s, %" G_GUINT64_FORMAT " errors (first: %s)\n",
			   (gdouble)h->calls / h->seconds, h->failed, h->error);
	else
		g_printerr("%.0f calls/s\n", (gdouble)h->calls / h->seconds);
}

/* B measures alone, then while A floods the same method; A's figures cover B's run. */
typedef struct {
	const gchar *op;
	const gchar *key;
	guint alone, flooded, flood; /* results */
	guint warmup_b;
	guint64 total_b;
} FloodSpec;

static void
flood_round(Bench *b, const FloodSpec *s, guint round)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HelperFigures) h = NULL;
	g_autoptr(HelperFigures) fh = NULL;
	g_autoptr(Flood) f = NULL;
	guint64 calls = authz_round_calls(b, s->total_b, round);
	gdouble secs = authz_max_seconds(b);

	authz_progress_start(b, b->results[s->alone].label, round);
	h = helper_measure(b->env, USER_B, s->op, s->key, s->warmup_b, calls, secs, &error);
	authz_progress_end(h, error);
	if (h != NULL)
		result_add_figures(&b->results[s->alone], h, TRUE);
	else
		result_fail(&b->results[s->alone], "%s", error->message);
	g_clear_error(&error);
	g_clear_pointer(&h, helper_figures_free);
	if (interrupted)
		return;

	authz_progress_start(b, b->results[s->flooded].label, round);
	f = flood_start(b->env, USER_A, s->op, s->key, &error);
	if (f == NULL) {
		authz_progress_end(NULL, error);
		result_fail(&b->results[s->flooded], "the flood did not start: %s", error->message);
		result_fail(&b->results[s->flood], "%s", error->message);
		return;
	}
	h = helper_measure(b->env, USER_B, s->op, s->key, s->warmup_b, calls, secs, &error);
	authz_progress_end(h, error);
	if (h != NULL)
		result_add_figures(&b->results[s->flooded], h, TRUE);
	else
		result_fail(&b->results[s->flooded], "%s", error->message);
	g_clear_error(&error);
	fh = flood_stop(f, &error);
	g_printerr("tkms-bench:            %s: ", b->results[s->flood].label);
	authz_progress_end(fh, error);
	if (fh != NULL)
		result_add_figures(&b->results[s->flood], fh, FALSE);
	else
		result_fail(&b->results[s->flood], "%s", error->message);
}

static void
run_flood_phases(Bench *b)
{
	const FloodSpec specs[] = {
		{"sign", KEY_EC, R_FLOOD_SIGN_ALONE, R_FLOOD_SIGN_B, R_FLOOD_SIGN_A,
		 FLOOD_WARMUP_B_SIGN, (guint64)b->tpm_iterations * FLOOD_SIGN_FACTOR},
		{"encrypt", KEY_AES, R_FLOOD_ENC_ALONE, R_FLOOD_ENC_B, R_FLOOD_ENC_A,
		 FLOOD_WARMUP_B_ENC, b->iterations / FLOOD_ENC_DIVISOR},
	};
	static const gchar *const users[] = {USER_A, USER_B};
	g_autoptr(GError) error = NULL;

	if (interrupted || !any_in(b, R_FLOOD_SIGN_ALONE, R_FLOOD_ENC_A))
		return;
	if (!ensure_users(b, &error)) {
		fail_range(b, R_FLOOD_SIGN_ALONE, R_FLOOD_ENC_A, error);
		return;
	}
	g_printerr("tkms-bench: flood: B = %s (uid %u), A = %s (uid %u); creating their keys\n",
		   USER_B, b->uid_b, USER_A, b->uid_a);
	for (guint u = 0; u < G_N_ELEMENTS(users); u++) {
		if (!create_key_as(b->env, users[u], KEY_EC, "ecdsa-p256", &error) ||
		    !create_key_as(b->env, users[u], KEY_AES, "aes-256-gcm", &error)) {
			fail_range(b, R_FLOOD_SIGN_ALONE, R_FLOOD_ENC_A, error);
			return;
		}
	}
	for (guint i = 0; i < G_N_ELEMENTS(specs); i++) {
		if (!any_in(b, specs[i].alone, specs[i].flood))
			continue;
		for (guint round = 0; round < b->rounds && !interrupted; round++)
			flood_round(b, &specs[i], round);
	}
	if (interrupted)
		for (guint i = R_FLOOD_SIGN_ALONE; i <= R_FLOOD_ENC_A; i++)
			if (b->results[i].ran)
				result_fail(&b->results[i], "interrupted");
}

/* The rules file for the polkit rows: user A may create, read and use its keys. */
static const gchar polkit_rules[] =
	"// tkms-bench: " USER_A " may create, read and use its keys.\n"
	"polkit.addRule(function(action, subject) {\n"
	"    if (subject.user == \"" USER_A "\" &&\n"
	"        (action.id == \"" TKMS_ACTION_USE_KEY "\" ||\n"
	"         action.id == \"" TKMS_ACTION_CREATE_KEY "\" ||\n"
	"         action.id == \"" TKMS_ACTION_READ_KEY "\"))\n"
	"        return polkit.Result.YES;\n"
	"    return polkit.Result.NOT_HANDLED;\n"
	"});\n";

static gchar *
polkit_config(guint ttl)
{
	return g_strdup_printf("[cache]\nAuthorizationTtl=%u\n", ttl);
}

/* tkmsd with another AuthorizationTtl. swtpm is restarted too (same state, so the same SRK
 * and keys): tkmsd does not flush its transient SRK when it exits, and swtpm has no resource
 * manager and 3 object slots, so after the second restart of tkmsd alone every key load
 * fails with TPM_RC_OBJECT_MEMORY. */
static gboolean
restart_with_ttl(TkmsTestEnv *env, guint ttl, GError **error)
{
	g_autofree gchar *conf = polkit_config(ttl);
	guint64 t0 = now_ns();

	if (!g_file_set_contents(tkms_test_env_get_config_path(env), conf, -1, error) ||
	    !tkms_test_env_stop_daemon(env, error) || !tkms_test_env_stop_tpm(env, error) ||
	    !tkms_test_env_start_tpm(env, error) || !tkms_test_env_start_daemon(env, error)) {
		g_prefix_error(error, "restarting tkmsd with AuthorizationTtl=%u: ", ttl);
		return FALSE;
	}
	g_printerr("tkms-bench: swtpm and tkmsd restarted, [cache] AuthorizationTtl=%u (%.2f s)\n",
		   ttl,
		   (gdouble)(now_ns() - t0) / 1e9);
	return TRUE;
}

static void
run_polkit_phases(Bench *b)
{
	const struct {
		guint result;
		guint ttl;
		guint warmup;
		guint64 total;
	} modes[] = {
		{R_POLKIT_ON, 60, POLKIT_WARMUP_ON, MAX(b->iterations / POLKIT_ON_DIVISOR, 10)},
		{R_POLKIT_OFF, 0, POLKIT_WARMUP_OFF, MAX(b->iterations / POLKIT_OFF_DIVISOR, 10)},
	};
	g_autoptr(GError) error = NULL;
	g_autofree gchar *conf = polkit_config(modes[0].ttl);
	TkmsTestEnv *env = NULL;
	guint loaded = 0; /* the mode whose TTL tkmsd runs with */

	if (interrupted || !any_in(b, R_POLKIT_ON, R_POLKIT_OFF))
		return;
	if (!ensure_users(b, &error)) {
		fail_range(b, R_POLKIT_ON, R_POLKIT_OFF, error);
		return;
	}
	g_printerr("tkms-bench: starting a second stack with the real polkitd (caller %s, uid "
		   "%u)\n",
		   USER_A, b->uid_a);
	env = tkms_test_env_new_real_polkit(conf, polkit_rules, &error);
	if (env == NULL) {
		g_prefix_error(&error, "the real polkitd stack did not start: ");
		fail_range(b, R_POLKIT_ON, R_POLKIT_OFF, error);
		return;
	}
	if (!create_key_as(env, USER_A, KEY_AES, "aes-256-gcm", &error)) {
		fail_range(b, R_POLKIT_ON, R_POLKIT_OFF, error);
		goto out;
	}
	/* on off, off on, on off...: one restart per round, each mode early and late */
	for (guint round = 0; round < b->rounds && !interrupted; round++) {
		for (guint k = 0; k < G_N_ELEMENTS(modes) && !interrupted; k++) {
			guint m = round % 2 == 0 ? k : G_N_ELEMENTS(modes) - 1 - k;
			Result *r = &b->results[modes[m].result];
			g_autoptr(HelperFigures) h = NULL;

			if (!selected(b, r))
				continue;
			if (m != loaded) {
				if (!restart_with_ttl(env, modes[m].ttl, &error)) {
					fail_range(b, R_POLKIT_ON, R_POLKIT_OFF, error);
					goto out;
				}
				loaded = m;
			}
			authz_progress_start(b, r->label, round);
			h = helper_measure(env, USER_A, "encrypt", KEY_AES, modes[m].warmup,
					   authz_round_calls(b, modes[m].total, round),
					   authz_max_seconds(b), &error);
			authz_progress_end(h, error);
			if (h != NULL)
				result_add_figures(r, h, TRUE);
			else
				result_fail(r, "%s", error->message);
			g_clear_error(&error);
		}
	}
	if (interrupted)
		for (guint i = R_POLKIT_ON; i <= R_POLKIT_OFF; i++)
			if (b->results[i].ran)
				result_fail(&b->results[i], "interrupted");
	b->polkit_note = g_strdup_printf(
		"polkit rows: real polkitd (%s), caller %s (uid %u, non-root) on one connection, "
		"rules granting it use/create/read-key; swtpm and tkmsd restarted to switch "
		"AuthorizationTtl",
		"/usr/lib/polkit-1/polkitd", USER_A, b->uid_a);
out:
	g_printerr("tkms-bench: stopping the real polkitd stack\n");
	tkms_test_env_free(env);
}

/* ---------------------------------------------------------------------------------------- */
/* Output                                                                                    */

typedef enum {
	BY_CALLS,      /* calls/s, num / den */
	BY_OPS,	       /* ops/s, num / den */
	BY_P50,	       /* p50 latency, num / den */
	BY_P99,	       /* p99 latency, num / den */
	BY_ITEMS,      /* items/s (ops x items per op), num / den */
	BY_P50_EXCESS, /* p50 latency, num - den, in ms; the goal is at most */
} RatioKind;

typedef struct {
	const gchar *id;
	const gchar *label;
	guint num, den;
	RatioKind kind;
	gboolean factor; /* shown as "N.NNx" rather than a percentage */
	gdouble goal;	 /* 0: none */
} Ratio;

/* Encrypt rows count calls (an Encrypt or a Decrypt); tkmsd Sign/Hmac vs the raw rows per
 * operation; latencies as flooded / alone. */
static const Ratio ratios[] = {
	{"encrypt-vs-ping-sync", "Encrypt/Decrypt calls/s vs Peer.Ping, sync", R_ENC_SYNC,
	 R_PING_SYNC, BY_CALLS, FALSE, 0.8},
	{"encrypt-vs-ping-in-flight", "Encrypt/Decrypt calls/s vs Peer.Ping, in flight",
	 R_ENC_ASYNC, R_PING_ASYNC, BY_CALLS, FALSE, 0.8},
	{"encrypt-vs-properties-get-sync", "Encrypt/Decrypt calls/s vs Properties.Get, sync",
	 R_ENC_SYNC, R_PROP_SYNC, BY_CALLS, FALSE, 0},
	{"encrypt-vs-properties-get-in-flight",
	 "Encrypt/Decrypt calls/s vs Properties.Get, in flight", R_ENC_ASYNC, R_PROP_ASYNC,
	 BY_CALLS, FALSE, 0},
	{"ping-vs-getid-sync", "Peer.Ping (tkmsd) vs GetId (bus daemon), sync", R_PING_SYNC,
	 R_GETID_SYNC, BY_CALLS, FALSE, 0},
	{"encrypt-vs-echo-sync", "Encrypt 32 B calls/s vs Echo (other process), sync",
	 R_ENCRYPT_SYNC, R_ECHO_SYNC, BY_CALLS, FALSE, ECHO_GOAL},
	{"encrypt-vs-echo-in-flight", "Encrypt 32 B calls/s vs Echo, in flight", R_ENCRYPT_ASYNC,
	 R_ECHO_ASYNC, BY_CALLS, FALSE, ECHO_GOAL},
	{"encrypt-batch-vs-encrypt-sync", "EncryptBatch 64 x 32 B items/s vs Encrypt calls/s",
	 R_ENC_BATCH_SYNC, R_ENCRYPT_SYNC, BY_ITEMS, TRUE, BATCH_GOAL},
	{"sign-vs-raw-sign", "Sign via tkmsd vs raw Esys_Sign on a loaded key", R_SIGN_SYNC,
	 R_RAW_SIGN, BY_OPS, FALSE, SIGN_GOAL},
	{"peer-sign-in-handler-vs-raw-sign",
	 "minimal D-Bus service, Esys_Sign in its handler, vs raw Esys_Sign", R_PEER_SIGN,
	 R_RAW_SIGN, BY_OPS, FALSE, 0},
	{"peer-sign-in-thread-vs-raw-sign",
	 "minimal D-Bus service, Esys_Sign in a TPM thread, vs raw Esys_Sign", R_PEER_SIGN_THREAD,
	 R_RAW_SIGN, BY_OPS, FALSE, 0},
	{"sign-vs-peer-sign-in-thread", "Sign via tkmsd vs the minimal service's TPM thread",
	 R_SIGN_SYNC, R_PEER_SIGN_THREAD, BY_OPS, FALSE, 0},
	{"sign-in-flight-vs-raw-sign",
	 "Sign via tkmsd, in flight, vs raw Esys_Sign on a loaded key (sync: one TPM)",
	 R_SIGN_ASYNC, R_RAW_SIGN, BY_OPS, FALSE, 0},
	{"sign-vs-raw-tkmsd-sequence", "Sign via tkmsd vs raw Load+Sign+Flush", R_SIGN_SYNC,
	 R_RAW_SIGN_SEQ, BY_OPS, FALSE, 0},
	{"hmac-vs-raw-hmac", "Hmac via tkmsd vs raw Esys_HMAC, loaded, kept session", R_HMAC_SYNC,
	 R_RAW_HMAC, BY_OPS, FALSE, HMAC_GOAL},
	{"hmac-vs-raw-tkmsd-sequence", "Hmac via tkmsd vs raw Load+HMAC+Flush", R_HMAC_SYNC,
	 R_RAW_HMAC_SEQ, BY_OPS, FALSE, 0},
	{"sign-batch-vs-sign", "SignBatch 64 x 32 B items/s vs Sign calls/s", R_SIGN_BATCH_SYNC,
	 R_SIGN_SYNC, BY_ITEMS, TRUE, 0},
	{"sign-batch-vs-raw-sign", "SignBatch items/s vs raw Esys_Sign on a loaded key",
	 R_SIGN_BATCH_SYNC, R_RAW_SIGN, BY_ITEMS, FALSE, 0},
	{"hmac-batch-vs-hmac", "HmacBatch 64 x 32 B items/s vs Hmac calls/s", R_HMAC_BATCH_SYNC,
	 R_HMAC_SYNC, BY_ITEMS, TRUE, 0},
	{"hmac-batch-vs-raw-hmac", "HmacBatch items/s vs raw Esys_HMAC, loaded, kept session",
	 R_HMAC_BATCH_SYNC, R_RAW_HMAC, BY_ITEMS, FALSE, 0},
	{"cold-first-use-vs-raw-load-unseal-flush",
	 "cold sealed key's first use (Decrypt) - raw Load+Unseal+Flush, p50", R_COLD_FIRST,
	 R_RAW_UNSEAL_SEQ, BY_P50_EXCESS, FALSE, COLD_GOAL_MS},
	{"flood-sign-b-p50-flooded-vs-alone", "B's Sign p50 latency, A flooding / alone",
	 R_FLOOD_SIGN_B, R_FLOOD_SIGN_ALONE, BY_P50, TRUE, 0},
	{"flood-sign-b-p99-flooded-vs-alone", "B's Sign p99 latency, A flooding / alone",
	 R_FLOOD_SIGN_B, R_FLOOD_SIGN_ALONE, BY_P99, TRUE, 0},
	{"flood-sign-a-vs-b-calls", "Sign calls/s during the flood, A / B", R_FLOOD_SIGN_A,
	 R_FLOOD_SIGN_B, BY_CALLS, TRUE, 0},
	{"flood-encrypt-b-p50-flooded-vs-alone", "B's Encrypt p50 latency, A flooding / alone",
	 R_FLOOD_ENC_B, R_FLOOD_ENC_ALONE, BY_P50, TRUE, 0},
	{"flood-encrypt-b-p99-flooded-vs-alone", "B's Encrypt p99 latency, A flooding / alone",
	 R_FLOOD_ENC_B, R_FLOOD_ENC_ALONE, BY_P99, TRUE, 0},
	{"flood-encrypt-a-vs-b-calls", "Encrypt calls/s during the flood, A / B", R_FLOOD_ENC_A,
	 R_FLOOD_ENC_B, BY_CALLS, TRUE, 0},
	{"polkit-cache-on-vs-off", "Encrypt calls/s, polkit cache on / off (real polkitd)",
	 R_POLKIT_ON, R_POLKIT_OFF, BY_CALLS, TRUE, 0},
	{"store-createkey-100k-vs-empty", "CreateKey calls/s, 100,000 keys / empty store",
	 R_STORE_CREATE_BULK, R_STORE_CREATE_EMPTY, BY_CALLS, FALSE, 0.9},
	{"store-encrypt-100k-vs-empty", "Encrypt/Decrypt calls/s, 100,000 keys / empty store",
	 R_STORE_ENC_BULK, R_STORE_ENC_EMPTY, BY_CALLS, FALSE, 0.9},
	{"encrypt-rotating-vs-alone", "Encrypt calls/s, another client rotating / alone",
	 R_ENC_ROTATING, R_ENC_ALONE, BY_CALLS, FALSE, 0.8},
	{"encrypt-usage-counting-on-vs-off", "Encrypt calls/s, usage counting on / off", R_USAGE_ON,
	 R_USAGE_OFF, BY_CALLS, FALSE, 0.95},
	{"password-getsecret-vs-libsecret", "GetSecret calls/s / libsecret lookups/s (Keyring)",
	 R_SECRET_TKMS, R_SECRET_KEYRING, BY_CALLS, TRUE, PASSWORD_GOAL},
};

static const gchar *const ratio_kinds[] = {"calls_per_s", "ops_per_s",	 "p50",
					   "p99",	  "items_per_s", "p50_excess_ms"};

static gboolean
ratio_value(Bench *b, const Ratio *q, gdouble *value)
{
	const Result *n = &b->results[q->num], *d = &b->results[q->den];

	if (!result_ok(n) || !result_ok(d))
		return FALSE;
	switch (q->kind) {
	case BY_CALLS:
		*value = calls_per_s(n) / calls_per_s(d);
		return TRUE;
	case BY_OPS:
		*value = ops_per_s(n) / ops_per_s(d);
		return TRUE;
	case BY_ITEMS:
		*value = ops_per_s(n) * n->items_per_op / (ops_per_s(d) * d->items_per_op);
		return TRUE;
	case BY_P50:
		if (n->lat->len == 0 || d->lat->len == 0 || d->p50_us <= 0)
			return FALSE;
		*value = n->p50_us / d->p50_us;
		return TRUE;
	case BY_P99:
		if (n->lat->len == 0 || d->lat->len == 0 || d->p99_us <= 0)
			return FALSE;
		*value = n->p99_us / d->p99_us;
		return TRUE;
	case BY_P50_EXCESS:
		if (n->lat->len == 0 || d->lat->len == 0)
			return FALSE;
		*value = (n->p50_us - d->p50_us) / 1000;
		return TRUE;
	}
	return FALSE;
}

/* "Busy=3, PermissionDenied=1" */
static gchar *
errors_text(const Result *r)
{
	g_autoptr(GString) out = g_string_new(NULL);
	g_autoptr(GList) names = g_list_sort(g_hash_table_get_keys(r->errors),
					     (GCompareFunc)g_strcmp0);

	for (GList *l = names; l != NULL; l = l->next)
		g_string_append_printf(out, "%s%s=%u", out->len ? ", " : "", (const gchar *)l->data,
				       GPOINTER_TO_UINT(g_hash_table_lookup(r->errors, l->data)));
	return g_string_free(g_steal_pointer(&out), FALSE);
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

/* Rows of a group are printed together, groups apart. */
/* ---------------------------------------------------------------------------------------- */
/* Key store: an empty store against 100,000 keys of one user                               */

static gboolean
store_create_sync(Bench *b, Result *r, GError **error)
{
	g_autofree gchar *name = g_strdup_printf("store-new-%06u", b->store_created++);
	guint64 t0 = now_ns();
	g_autoptr(GVariant) info =
		tkms_client_create_key_sync(b->store_client, name, "aes-256-gcm", NULL, NULL, error);

	if (info == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

static gboolean
store_encdec_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) pt = NULL;

	ct = tkms_client_encrypt_sync(b->store_client, STORE_KEY_AES, b->plaintext, b->context,
				      NULL, error);
	if (ct == NULL)
		return FALSE;
	record(r, t0);
	t0 = now_ns();
	pt = tkms_client_decrypt_sync(b->store_client, STORE_KEY_AES, ct, b->context, NULL, error);
	if (pt == NULL)
		return FALSE;
	record(r, t0);
	return check_plaintext(b, pt, error);
}

/* VmRSS of tkmsd, in MiB; 0 if unknown. */
static gdouble
store_daemon_rss(Bench *b)
{
	g_autofree gchar *path =
		g_strdup_printf("/proc/%d/status", tkms_test_env_get_daemon_pid(b->store_env));
	g_autofree gchar *status = NULL;
	const gchar *line;

	if (!g_file_get_contents(path, &status, NULL, NULL) ||
	    (line = strstr(status, "\nVmRSS:")) == NULL)
		return 0;
	return g_ascii_strtod(line + strlen("\nVmRSS:"), NULL) / 1024.0;
}

static gint
cmp_double(gconstpointer a, gconstpointer b)
{
	gdouble x = *(const gdouble *)a, y = *(const gdouble *)b;

	return x < y ? -1 : x > y;
}

/* Restarts tkmsd STORE_STARTS times: the time from the start of its process until it owns
 * its bus name, as the fixture sees it (it polls the bus every 20 ms). */
static gboolean
store_time_starts(Bench *b, StoreFigures *f, GError **error)
{
	gdouble ms[STORE_STARTS];

	for (guint i = 0; i < STORE_STARTS; i++) {
		guint64 t0;

		if (tkms_test_env_daemon_is_running(b->store_env) &&
		    !tkms_test_env_stop_daemon(b->store_env, error))
			return FALSE;
		t0 = now_ns();
		if (!tkms_test_env_start_daemon(b->store_env, error))
			return FALSE;
		ms[i] = (gdouble)(now_ns() - t0) / 1e6;
		g_printerr("tkms-bench: store with %" G_GUINT64_FORMAT " keys: tkmsd owned its "
			   "name %.0f ms after its start\n",
			   f->keys, ms[i]);
	}
	qsort(ms, STORE_STARTS, sizeof(ms[0]), cmp_double);
	f->start_ms = ms[STORE_STARTS / 2];
	f->start_ms_max = ms[STORE_STARTS - 1];
	f->rss_start_mib = store_daemon_rss(b);
	b->store_client = tkms_test_env_get_client(b->store_env);
	return TRUE;
}

/* With tkmsd stopped: STORE_BULK_KEYS copies of the real key STORE_KEY_AES under other names
 * (bulk-000001...), written straight into keys.db in one transaction. */
static gboolean
store_synthesize(Bench *b, GError **error)
{
	const gchar *state_dir = tkms_test_env_get_state_dir(b->store_env);
	guint64 t0 = now_ns();
	gboolean ok = tkms_test_store_clone_key(state_dir, (guint32)getuid(), STORE_KEY_AES,
						"bulk-", STORE_BULK_KEYS, NULL, error);

	g_printerr("tkms-bench: wrote %d keys into %s/keys.db in %.1f s\n", STORE_BULK_KEYS,
		   state_dir, (gdouble)(now_ns() - t0) / 1e9);
	return ok;
}

static void
store_use(Bench *b, guint which)
{
	b->store_env = b->store_envs[which];
	b->store_client = tkms_test_env_get_client(b->store_env);
}

/* A stack whose store holds STORE_KEY_AES, and STORE_BULK_KEYS copies of it if bulk. */
static gboolean
store_stack(Bench *b, guint which, GError **error)
{
	g_autoptr(GVariant) info = NULL;

	/* no per-user quota: the bulk store's one user holds 100,000 keys and still creates */
	b->store_envs[which] = tkms_test_env_new("[limits]\nMaxKeysPerUser=0\n", error);
	if (b->store_envs[which] == NULL)
		return FALSE;
	store_use(b, which);
	info = tkms_client_create_key_sync(b->store_client, STORE_KEY_AES, "aes-256-gcm", NULL,
					   NULL, error);
	if (info == NULL)
		return FALSE;
	if (which == 1 && (!tkms_test_env_stop_daemon(b->store_env, error) ||
			   !store_synthesize(b, error)))
		return FALSE;
	b->store[which].keys =
		tkms_test_store_count_keys(tkms_test_env_get_state_dir(b->store_env));
	return store_time_starts(b, &b->store[which], error);
}

static void
run_store_phases(Bench *b)
{
	static const guint create[] = {R_STORE_CREATE_EMPTY, R_STORE_CREATE_BULK};
	static const guint enc[] = {R_STORE_ENC_EMPTY, R_STORE_ENC_BULK};
	g_autoptr(GError) error = NULL;

	if (interrupted || !any_in(b, R_STORE_CREATE_EMPTY, R_STORE_ENC_BULK))
		return;
	g_printerr("tkms-bench: key store rows: two stacks of their own (swtpm, bus, polkit mock, "
		   "tkmsd), an empty store and one with %d keys\n",
		   STORE_BULK_KEYS);
	if (!store_stack(b, 0, &error) || !store_stack(b, 1, &error))
		goto out;
	/* the two stores in turns, so that a noisy stretch of the machine hits both */
	for (b->round = 0; b->round < b->rounds && !interrupted; b->round++) {
		for (guint which = 0; which < 2; which++) {
			store_use(b, which);
			run_sync(b, &b->results[create[which]], store_create_sync);
		}
		for (guint which = 0; which < 2; which++) {
			store_use(b, which);
			run_sync(b, &b->results[enc[which]], store_encdec_sync);
		}
	}
	for (guint which = 0; which < 2; which++) {
		store_use(b, which);
		b->store[which].rss_after_mib = store_daemon_rss(b);
		b->store[which].ran = TRUE;
	}
out:
	if (error != NULL) {
		b->store_error = g_strdup(error->message);
		fail_range(b, R_STORE_CREATE_EMPTY, R_STORE_ENC_BULK, error);
	}
	b->store_env = NULL;
	b->store_client = NULL;
	for (guint which = 0; which < 2; which++)
		g_clear_pointer(&b->store_envs[which], tkms_test_env_free);
}

/* ---- usage counting: Encrypt with counting against the same Encrypt without ----
 * Two stacks of their own, identical but for [lifecycle] CountUses (false: a switch only
 * benchmarks use), each with a fresh aes-256-gcm key without a policy (cap 2^32), measured in
 * turns. The baseline is the very same Encrypt call, so the ratio is what counting costs:
 * a hash lookup and a counter per call, and one durable reservation per block of uses. */

#define USAGE_KEY "bench-usage"

static gboolean
usage_encrypt_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GBytes) ct = tkms_client_encrypt_sync(b->usage_client, USAGE_KEY, b->plaintext,
							b->context, NULL, error);
	if (ct == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

static void
run_usage_phases(Bench *b)
{
	static const gchar *const conf[] = {"[lifecycle]\nCountUses=true\n",
					    "[lifecycle]\nCountUses=false\n"};
	static const guint rows[] = {R_USAGE_ON, R_USAGE_OFF};
	g_autoptr(GError) error = NULL;

	if (interrupted || !any_in(b, R_USAGE_ON, R_USAGE_OFF))
		return;
	g_printerr("tkms-bench: usage rows: two stacks of their own, uses counted and not "
		   "([lifecycle] CountUses)\n");
	for (guint which = 0; which < 2; which++) {
		g_autoptr(GVariant) info = NULL;
		b->usage_envs[which] = tkms_test_env_new(conf[which], &error);
		if (b->usage_envs[which] == NULL)
			goto out;
		info = tkms_client_create_key_sync(tkms_test_env_get_client(b->usage_envs[which]),
						   USAGE_KEY, "aes-256-gcm", NULL, NULL, &error);
		if (info == NULL)
			goto out;
	}
	for (b->round = 0; b->round < b->rounds && !interrupted; b->round++) {
		for (guint which = 0; which < 2; which++) {
			b->usage_client = tkms_test_env_get_client(b->usage_envs[which]);
			run_sync(b, &b->results[rows[which]], usage_encrypt_sync);
		}
	}
out:
	if (error != NULL)
		fail_range(b, R_USAGE_ON, R_USAGE_OFF, error);
	b->usage_client = NULL;
	for (guint which = 0; which < 2; which++)
		g_clear_pointer(&b->usage_envs[which], tkms_test_env_free);
}

static void
print_usage_note(Bench *b, GString *out)
{
	if (!any_in(b, R_USAGE_ON, R_USAGE_OFF))
		return;
	g_string_append(out, "usage rows: two stacks of their own, identical but for [lifecycle] "
			     "CountUses, measured in turns; the baseline is the same Encrypt with "
			     "counting off, so their ratio is the cost of counting (a counter per "
			     "call, one durable reservation per block of 1024 to 65536 uses).\n");
}

/* ---- what one TPM-heavy call costs ----
 * A stack of its own with [cache] KeyTtl=0, so that every Decrypt unseals its key in the TPM
 * (the first use of a cold key: Load, Unseal, FlushContext), and on it the sizes that used to
 * hold the TPM longest: Hmac of 64 KiB (an HMAC sequence) and GetRandom of 64 KiB. */

#define COLD_KEY_AES "bench-cold-aes"
#define COLD_KEY_HMAC "bench-cold-hmac"
/* keys used in turn for a cold sealed key's first use: more than the object cache holds on any
 * TPM the bench runs against (swtpm: 1, through tpm2-abrmd: 2) */
#define COLD_KEYS	 8
#define HMAC_64K_CALLS 20
#define RANDOM_64K_CALLS 5
#define SIZE_64K (64 * 1024)

static gboolean
cold_decrypt_sync(Bench *b, Result *r, GError **error)
{
	TkmsClient *client = tkms_test_env_get_client(b->cold_env);
	guint64 t0 = now_ns();
	g_autoptr(GBytes) pt = tkms_client_decrypt_sync(client, COLD_KEY_AES, b->cold_ciphertext,
							b->context, NULL, error);

	if (pt == NULL)
		return FALSE;
	record(r, t0);
	return check_plaintext(b, pt, error);
}

static gchar *
cold_key_name(guint i)
{
	return g_strdup_printf("bench-cold-aes-%u", i);
}

/* The next of COLD_KEYS keys: its object was flushed by the others' (least recently used),
 * and KeyTtl=0 keeps no material: Load and Unseal, as a sealed key's first use. */
static gboolean
cold_first_sync(Bench *b, Result *r, GError **error)
{
	TkmsClient *client = tkms_test_env_get_client(b->cold_env);
	guint i = b->cold_next++ % COLD_KEYS;
	g_autofree gchar *name = cold_key_name(i);
	guint64 t0 = now_ns();
	g_autoptr(GBytes) pt = tkms_client_decrypt_sync(
		client, name, g_ptr_array_index(b->cold_ciphertexts, i), b->context, NULL, error);

	if (pt == NULL)
		return FALSE;
	record(r, t0);
	return check_plaintext(b, pt, error);
}

static gboolean
hmac_64k_sync(Bench *b, Result *r, GError **error)
{
	TkmsClient *client = tkms_test_env_get_client(b->cold_env);
	guint64 t0 = now_ns();
	g_autoptr(GBytes) mac =
		tkms_client_hmac_sync(client, COLD_KEY_HMAC, b->payload_64k, NULL, error);

	if (mac == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

static gboolean
random_64k_sync(Bench *b, Result *r, GError **error)
{
	TkmsClient *client = tkms_test_env_get_client(b->cold_env);
	guint64 t0 = now_ns();
	g_autoptr(GBytes) out = tkms_client_get_random_sync(client, SIZE_64K, NULL, error);

	if (out == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

static void
run_tpm_cost_phases(Bench *b)
{
	/* the raw Load+Unseal+Flush row takes turns with the cold rows it is compared with */
	static const Phase phases[] = {
		{R_COLD_DECRYPT, cold_decrypt_sync, NULL}, {R_COLD_FIRST, cold_first_sync, NULL},
		{R_RAW_UNSEAL_SEQ, raw_unseal_seq, NULL},  {R_HMAC_64K, hmac_64k_sync, NULL},
		{R_RANDOM_64K, random_64k_sync, NULL},
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) i1 = NULL;
	g_autoptr(GVariant) i2 = NULL;
	TkmsClient *client;

	if (interrupted || (!any_in(b, R_COLD_DECRYPT, R_RANDOM_64K) &&
			    !selected(b, &b->results[R_RAW_UNSEAL_SEQ])))
		return;
	if (selected(b, &b->results[R_RAW_UNSEAL_SEQ])) {
		g_printerr(
			"tkms-bench: starting a second swtpm for the raw Load+Unseal+Flush row\n");
		if (!raw_tpm_setup(b, &b->raw, &error)) {
			result_fail(&b->results[R_RAW_UNSEAL_SEQ], "setup failed: %s",
				    error->message);
			g_clear_error(&error);
		}
	}
	g_printerr("tkms-bench: TPM cost rows: a stack of its own with [cache] KeyTtl=0\n");
	b->cold_env = tkms_test_env_new("[cache]\nKeyTtl=0\n", &error);
	if (b->cold_env == NULL)
		goto out;
	client = tkms_test_env_get_client(b->cold_env);
	i1 = tkms_client_create_key_sync(client, COLD_KEY_AES, "aes-256-gcm", NULL, NULL, &error);
	if (i1 == NULL)
		goto out;
	i2 = tkms_client_create_key_sync(client, COLD_KEY_HMAC, "hmac-sha256", NULL, NULL,
					 &error);
	if (i2 == NULL)
		goto out;
	b->cold_ciphertext = tkms_client_encrypt_sync(client, COLD_KEY_AES, b->plaintext,
						      b->context, NULL, &error);
	if (b->cold_ciphertext == NULL)
		goto out;
	b->cold_ciphertexts = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	for (guint i = 0; i < COLD_KEYS; i++) {
		g_autofree gchar *name = cold_key_name(i);
		g_autoptr(GVariant) info = tkms_client_create_key_sync(client, name, "aes-256-gcm",
								       NULL, NULL, &error);
		GBytes *ct = info == NULL ? NULL
					  : tkms_client_encrypt_sync(client, name, b->plaintext,
								     b->context, NULL, &error);
		if (ct == NULL)
			goto out;
		g_ptr_array_add(b->cold_ciphertexts, ct);
	}
	{
		guint8 *p = g_malloc(SIZE_64K);
		for (guint i = 0; i < SIZE_64K; i++)
			p[i] = (guint8)(i * 13 + 5);
		b->payload_64k = g_bytes_new_take(p, SIZE_64K);
	}
	run_phases(b, phases, G_N_ELEMENTS(phases));
out:
	if (error != NULL)
		fail_range(b, R_COLD_DECRYPT, R_RANDOM_64K, error);
	g_clear_pointer(&b->cold_ciphertext, g_bytes_unref);
	g_clear_pointer(&b->cold_ciphertexts, g_ptr_array_unref);
	g_clear_pointer(&b->payload_64k, g_bytes_unref);
	raw_tpm_teardown(&b->raw);
	g_clear_pointer(&b->cold_env, tkms_test_env_free);
}

static void
print_store_figures(Bench *b, GString *out)
{
	const StoreFigures *e = &b->store[0], *k = &b->store[1];

	if (!any_in(b, R_STORE_CREATE_EMPTY, R_STORE_ENC_BULK))
		return;
	g_string_append(out, "store rows: two stacks of their own, measured in turns; each store "
			     "holds the keys counted below (one user's), the bulk ones copies of "
			     "one real aes-256-gcm key written straight into keys.db.\n");
	if (b->store_error != NULL)
		g_string_append_printf(out, "key store figures: FAILED: %s\n", b->store_error);
	if (!e->ran && !k->ran)
		return;
	g_string_append_printf(out, "\nkey store%37s %14s %14s  %s\n", "", "empty", "100,000 keys",
			       "goal (100,000 keys)");
	g_string_append_printf(out, "  %-42s %14" G_GUINT64_FORMAT " %14" G_GUINT64_FORMAT "\n",
			       "keys in keys.db", e->keys, k->keys);
	g_string_append_printf(out, "  %-42s %11.0f ms %11.0f ms  <= %d ms: %s\n",
			       "start -> owns bus name (median of 3)", e->start_ms, k->start_ms,
			       STORE_START_GOAL_MS,
			       k->ran && k->start_ms <= STORE_START_GOAL_MS ? "met" : "NOT MET");
	g_string_append_printf(out, "  %-42s %11.0f ms %11.0f ms\n", "start, slowest of 3",
			       e->start_ms_max, k->start_ms_max);
	g_string_append_printf(out, "  %-42s %10.1f MiB %10.1f MiB  <= %d MiB: %s\n",
			       "tkmsd VmRSS after start", e->rss_start_mib, k->rss_start_mib,
			       STORE_RSS_GOAL_MIB,
			       k->ran && k->rss_start_mib > 0 &&
					       k->rss_start_mib <= STORE_RSS_GOAL_MIB
				       ? "met"
				       : "NOT MET");
	g_string_append_printf(out, "  %-42s %10.1f MiB %10.1f MiB\n",
			       "tkmsd VmRSS after the store rows", e->rss_after_mib,
			       k->rss_after_mib);
	g_string_append_printf(out, "  %-42s %14.1f %14.1f  (ratio below)\n", "CreateKey calls/s",
			       calls_per_s(&b->results[R_STORE_CREATE_EMPTY]),
			       calls_per_s(&b->results[R_STORE_CREATE_BULK]));
	g_string_append_printf(out, "  %-42s %14.1f %14.1f  (ratio below)\n",
			       "Encrypt+Decrypt calls/s",
			       calls_per_s(&b->results[R_STORE_ENC_EMPTY]),
			       calls_per_s(&b->results[R_STORE_ENC_BULK]));
}

static void
store_figures_json(Bench *b, JsonBuilder *jb)
{
	static const gchar *const names[] = {"empty", "bulk"};

	json_builder_set_member_name(jb, "store");
	json_builder_begin_object(jb);
	json_builder_set_member_name(jb, "error");
	if (b->store_error != NULL)
		json_builder_add_string_value(jb, b->store_error);
	else
		json_builder_add_null_value(jb);
	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		const StoreFigures *f = &b->store[i];

		json_builder_set_member_name(jb, names[i]);
		if (!f->ran) {
			json_builder_add_null_value(jb);
			continue;
		}
		json_builder_begin_object(jb);
		json_builder_set_member_name(jb, "keys");
		json_builder_add_int_value(jb, (gint64)f->keys);
		json_builder_set_member_name(jb, "start_to_bus_name_ms");
		json_builder_add_double_value(jb, f->start_ms);
		json_builder_set_member_name(jb, "start_to_bus_name_ms_max");
		json_builder_add_double_value(jb, f->start_ms_max);
		json_builder_set_member_name(jb, "rss_after_start_mib");
		json_builder_add_double_value(jb, f->rss_start_mib);
		json_builder_set_member_name(jb, "rss_after_rows_mib");
		json_builder_add_double_value(jb, f->rss_after_mib);
		json_builder_end_object(jb);
	}
	json_builder_end_object(jb);
}

/* ---------------------------------------------------------------------------------------- */
/* Rotation: RotateKey latency per key type; Encrypt while another client rotates             */

static gboolean
create_key_if_needed(Bench *b, const gchar *name, const gchar *type, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autoptr(GVariant) info =
		tkms_client_create_key_sync(b->client, name, type, NULL, NULL, &local);

	if (info != NULL || g_error_matches(local, TKMS_ERROR, TKMS_ERROR_ALREADY_EXISTS))
		return TRUE;
	g_propagate_prefixed_error(error, g_steal_pointer(&local), "CreateKey(%s, %s): ", name,
				   type);
	return FALSE;
}

static gboolean
rotate_once(GDBusConnection *conn, const gchar *name, GError **error)
{
	g_autoptr(GVariant) r = g_dbus_connection_call_sync(
		conn, TKMS_BUS_NAME, TKMS_OBJECT_PATH, TKMS_BUS_NAME, "RotateKey",
		g_variant_new("(s)", name), G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, 120000,
		NULL, error);

	if (r == NULL)
		g_prefix_error(error, "RotateKey(%s): ", name);
	return r != NULL;
}

/* Every round: ROTATE_CALLS / rounds rotations of each type, after one warm-up rotation in the
 * first round. Sized by ROTATE_CALLS, not --tpm-iterations: an rsa-2048 rotation generates an
 * RSA key in the TPM (seconds on swtpm). */
static void
run_rotate_phases(Bench *b)
{
	g_autoptr(GError) error = NULL;

	if (interrupted || !any_in(b, R_ROTATE_AES, R_ROTATE_RSA))
		return;
	for (guint t = 0; t < G_N_ELEMENTS(rotate_types); t++) {
		g_autofree gchar *name = g_strconcat(KEY_ROT_PREFIX, rotate_types[t], NULL);
		if (selected(b, &b->results[R_ROTATE_AES + t]) &&
		    !create_key_if_needed(b, name, rotate_types[t], &error)) {
			fail_range(b, R_ROTATE_AES + t, R_ROTATE_AES + t, error);
			g_clear_error(&error);
		}
	}
	for (b->round = 0; b->round < b->rounds && !interrupted; b->round++) {
		for (guint t = 0; t < G_N_ELEMENTS(rotate_types); t++) {
			Result *r = &b->results[R_ROTATE_AES + t];
			g_autofree gchar *name = g_strconcat(KEY_ROT_PREFIX, rotate_types[t], NULL);
			guint n = ROTATE_CALLS / b->rounds +
				  (b->round < ROTATE_CALLS % b->rounds ? 1 : 0);
			guint64 calls_before = r->calls, t0;

			if (n == 0 || !round_begin(b, r))
				continue;
			if (b->round == 0 && !rotate_once(b->conn, name, &error)) {
				result_fail(r, "%s", error->message);
				g_clear_error(&error);
				progress_end(r, 0, 0);
				continue;
			}
			t0 = now_ns();
			for (guint i = 0; i < n && !interrupted; i++) {
				guint64 c0 = now_ns();
				if (!rotate_once(b->conn, name, &error)) {
					result_fail(r, "%s", error->message);
					g_clear_error(&error);
					break;
				}
				record(r, c0);
				r->ops++;
			}
			round_end(r, calls_before, t0);
		}
	}
}

static gboolean
encrypt_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GBytes) ct =
		tkms_client_encrypt_sync(b->client, KEY_AES, b->plaintext, b->context, NULL, error);

	if (ct == NULL)
		return FALSE;
	record(r, t0);
	return TRUE;
}

/* The other client: RotateKey on KEY_ROTATING back to back until told to stop. */
typedef struct {
	GDBusConnection *conn;
	gint stop;
	guint64 calls, failed;
	gchar *error; /* the first failure */
} Rotator;

static gpointer
rotator_thread(gpointer data)
{
	Rotator *rot = data;

	while (!g_atomic_int_get(&rot->stop)) {
		g_autoptr(GError) error = NULL;
		if (rotate_once(rot->conn, KEY_ROTATING, &error)) {
			rot->calls++;
			continue;
		}
		rot->failed++;
		if (rot->error == NULL)
			rot->error = g_strdup(error->message);
		g_usleep(10000);
	}
	return NULL;
}

/* Alone and rotating interleaved round by round (same key, same client, same calls). */
static void
run_rotating_encrypt_phases(Bench *b)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) conn = NULL;

	if (interrupted || !any_in(b, R_ENC_ALONE, R_ENC_ROTATING))
		return;
	if (!create_key_if_needed(b, KEY_ROTATING, "aes-256-gcm", &error)) {
		fail_range(b, R_ENC_ALONE, R_ENC_ROTATING, error);
		return;
	}
	conn = g_dbus_connection_new_for_address_sync(
		tkms_test_env_get_bus_address(b->env),
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	if (conn == NULL) {
		fail_range(b, R_ENC_ALONE, R_ENC_ROTATING, error);
		return;
	}
	for (b->round = 0; b->round < b->rounds && !interrupted; b->round++) {
		Rotator rot = {.conn = conn};
		GThread *thread;
		guint64 t0;

		run_sync(b, &b->results[R_ENC_ALONE], encrypt_sync);
		if (!selected(b, &b->results[R_ENC_ROTATING]))
			continue;
		/* the rotator runs before, during and until the end of the measured round */
		thread = g_thread_new("tkms-bench-rotator", rotator_thread, &rot);
		t0 = now_ns();
		run_sync(b, &b->results[R_ENC_ROTATING], encrypt_sync);
		g_atomic_int_set(&rot.stop, 1);
		g_thread_join(thread);
		b->rotator_seconds += (gdouble)(now_ns() - t0) / 1e9;
		b->rotator_calls += rot.calls;
		b->rotator_failed += rot.failed;
		if (rot.error != NULL) {
			g_printerr("tkms-bench: the rotating client failed %" G_GUINT64_FORMAT
				   " times: %s\n",
				   rot.failed, rot.error);
			if (rot.calls == 0)
				result_fail(&b->results[R_ENC_ROTATING],
					    "the other client could not rotate: %s", rot.error);
			g_free(rot.error);
		}
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Passwords: GetSecret through libtkms against a libsecret lookup in GNOME Keyring           */

static gboolean
getsecret_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();
	g_autoptr(GBytes) secret =
		tkms_client_get_secret_sync(b->client, KEY_PASSWORD, "current", NULL, error);
	gsize len = 0;
	const gchar *data;

	if (secret == NULL)
		return FALSE;
	record(r, t0);
	/* what a caller does with it: the check is outside the timed call */
	data = g_bytes_get_data(secret, &len);
	if (len != strlen(b->password) || memcmp(data, b->password, len) != 0) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "GetSecret returned another password");
		return FALSE;
	}
	return TRUE;
}

static gboolean
keyring_lookup_sync(Bench *b, Result *r, GError **error)
{
	guint64 t0 = now_ns();

	/* the lookup compares what it found with what was stored; that is timed here, a few
	 * nanoseconds against a lookup's milliseconds */
	if (!tkms_bench_keyring_lookup(b->keyring, error))
		return FALSE;
	record(r, t0);
	return TRUE;
}

/* The password key (made with the default length, 32) and its current password. */
static gboolean
password_key_setup(Bench *b, GError **error)
{
	GVariantBuilder options;
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GBytes) secret = NULL;
	gsize len = 0;
	const gchar *data;

	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&options, "{sv}", "length", g_variant_new_uint32(PASSWORD_LENGTH));
	info = tkms_client_create_key_sync(b->client, KEY_PASSWORD, "password",
					   g_variant_builder_end(&options), NULL, error);
	if (info == NULL) {
		g_prefix_error(error, "CreateKey(%s, password): ", KEY_PASSWORD);
		return FALSE;
	}
	secret = tkms_client_get_secret_sync(b->client, KEY_PASSWORD, "current", NULL, error);
	if (secret == NULL) {
		g_prefix_error(error, "GetSecret(%s): ", KEY_PASSWORD);
		return FALSE;
	}
	data = g_bytes_get_data(secret, &len);
	if (len != PASSWORD_LENGTH || memchr(data, '\0', len) != NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "GetSecret gave %zu bytes, not a %d-character password", len,
			    PASSWORD_LENGTH);
		return FALSE;
	}
	b->password = g_strndup(data, len);
	return TRUE;
}

static void
run_password_phases(Bench *b)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *dir = NULL;

	if (interrupted || !any_in(b, R_SECRET_TKMS, R_SECRET_KEYRING))
		return;
	if (!password_key_setup(b, &error)) {
		/* the baseline is still worth its figure: with a password of the same length */
		fail_range(b, R_SECRET_TKMS, R_SECRET_TKMS, error);
		g_clear_error(&error);
		b->password = g_malloc(PASSWORD_LENGTH + 1);
		for (guint i = 0; i < PASSWORD_LENGTH; i++)
			b->password[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[g_random_int_range(0, 36)];
		b->password[PASSWORD_LENGTH] = '\0';
	}
	if (selected(b, &b->results[R_SECRET_KEYRING])) {
		g_printerr("tkms-bench: password rows: starting a private session bus and "
			   "gnome-keyring-daemon\n");
		dir = g_build_filename(tkms_test_env_get_tmp_dir(b->env), "keyring", NULL);
		if (g_mkdir_with_parents(dir, 0700) != 0) {
			g_set_error(&error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot make %s", dir);
		} else if ((b->keyring = tkms_bench_keyring_start(dir, &error)) != NULL &&
			   !tkms_bench_keyring_store(b->keyring, b->password, &error)) {
			g_clear_pointer(&b->keyring, tkms_bench_keyring_free);
		}
		if (b->keyring == NULL) {
			fail_range(b, R_SECRET_KEYRING, R_SECRET_KEYRING, error);
			g_clear_error(&error);
		}
	}
	b->password_note = g_strdup_printf(
		"password rows: GetSecret(\"current\") of a %d-character password key through "
		"libtkms (polkit mock), and secret_password_lookup_sync() of the same password "
		"stored with secret_password_store_sync() in the default collection of %s on a "
		"private session bus (login keyring made and unlocked by --unlock; a lookup is "
		"SearchItems and GetSecrets over an encrypted session); both on one connection, "
		"one call at a time, interleaved by round.",
		PASSWORD_LENGTH,
		b->keyring != NULL ? tkms_bench_keyring_describe(b->keyring)
				   : "GNOME Keyring (not run)");
	for (b->round = 0; b->round < b->rounds && !interrupted; b->round++) {
		if (b->results[R_SECRET_TKMS].error == NULL)
			run_sync(b, &b->results[R_SECRET_TKMS], getsecret_sync);
		if (b->keyring != NULL)
			run_sync(b, &b->results[R_SECRET_KEYRING], keyring_lookup_sync);
	}
	g_clear_pointer(&b->keyring, tkms_bench_keyring_free);
}

static gint
table_group(guint i)
{
	static const guint firsts[] = {R_PING_SYNC,	   R_PROP_SYNC,	      R_ENC_SYNC,
				       R_ECHO_SYNC,	   R_SIGN_SYNC,	   R_RAW_SIGN,	      R_FLOOD_SIGN_ALONE,
				       R_FLOOD_ENC_ALONE, R_POLKIT_ON,	      R_STORE_CREATE_EMPTY,
				       R_ROTATE_AES,	   R_ENC_ALONE,	      R_SECRET_TKMS,
				       R_COLD_DECRYPT};
	gint group = 0;

	for (guint k = 0; k < G_N_ELEMENTS(firsts); k++)
		if (i >= firsts[k])
			group = k + 1;
	return group;
}

static void
print_table(Bench *b)
{
	g_autoptr(GString) out = g_string_new(NULL);
	gint last_group = -1;

	print_header_info(b, out);
	g_string_append_printf(out, "%-46s %6s %7s %6s %9s %9s %8s %8s %8s %7s\n", "benchmark",
			       "flight", "calls", "secs", "calls/s", "ops/s", "mean", "p50", "p99",
			       "spread");
	for (guint i = 0; i < N_RESULTS; i++) {
		Result *r = &b->results[i];

		if (!selected(b, r))
			continue;
		if (last_group >= 0 && table_group(i) != last_group)
			g_string_append_c(out, '\n');
		last_group = table_group(i);
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
		if (r->failed > 0) {
			g_autofree gchar *errs = errors_text(r);
			g_string_append_printf(out, "  (%" G_GUINT64_FORMAT " errors: %s)",
					       r->failed, errs);
		}
		if (r->error != NULL)
			g_string_append_printf(out, "  (partial: %s)", r->error);
		g_string_append_c(out, '\n');
	}
	g_string_append(out, "\nops/s: an op is one call, one Encrypt+Decrypt pair, one "
			     "EncryptBatch of 64 items, or one raw TPM command sequence.\n");
	if (any_in(b, R_ECHO_SYNC, R_ENC_BATCH_SYNC))
		g_string_append(out, "echo rows: Echo(ay) -> ay of tkms-bench-echo, a minimal "
				     "GDBus service (main-loop handler) in another process on the "
				     "same bus; the Encrypt rows beside it are made the same way "
				     "(g_dbus_connection_call, not libtkms).\n");
	if (any_in(b, R_PEER_SIGN, R_PEER_SIGN_THREAD))
		g_string_append(out,
				"peer rows: tkms-bench-echo on a third swtpm signs a SHA-256 "
				"digest with Esys_Sign (password, ECC P-256 primary loaded "
				"once), in its method handler on the main loop, or in a thread "
				"of its own that also sends the answer (as a service must that "
				"keeps serving while the TPM works); no authorization, audit or "
				"key store: the least a Sign through D-Bus costs.\n");
	if (any_in(b, R_RAW_SIGN, R_RAW_UNSEAL_SEQ))
		g_string_append(out,
				"raw rows: ESYS on a second swtpm. tkmsd keeps hot keys loaded "
				"(its object cache), so its Sign and Hmac of a hot key compare "
				"with the command on a loaded key: Esys_Sign (password) and "
				"Esys_HMAC in a session salted on the SRK that encrypts both ways "
				"(started once, kept open); \"Load+...+Flush\": a cold key's "
				"sequence, as tkmsd sent it for every call before the cache. "
				"Load+Unseal+Flush: a sealed key's object loaded, unsealed in the "
				"kept session (its 32-byte auth value proven, the answer "
				"encrypted) and flushed, against tkmsd's Decrypt of a cold sealed "
				"key (cold-first row).\n");
	if (any_in(b, R_FLOOD_SIGN_ALONE, R_FLOOD_ENC_A))
		g_string_append_printf(
			out,
			"flood rows: polkit mock; B = %s (uid %u), A = %s (uid %u), both non-root, "
			"each a tkms-test-helper process with its own keys; B: synchronous calls on "
			"one connection; A: %u connections x %u calls in flight, its calls/s and "
			"latency counted over B's run.\n",
			USER_B, b->uid_b, USER_A, b->uid_a, FLOOD_CONNECTIONS, FLOOD_IN_FLIGHT);
	if (any_in(b, R_POLKIT_ON, R_POLKIT_OFF))
		g_string_append_printf(out, "%s.\n",
				       b->polkit_note ? b->polkit_note
						      : "polkit rows: real polkitd (not run)");
	print_store_figures(b, out);
	if (any_in(b, R_ROTATE_AES, R_ROTATE_RSA))
		g_string_append_printf(out,
				       "rotate rows: RotateKey of one key per type, %u "
				       "rotations each (a TPM key generation, one SQLite "
				       "transaction, a durable audit record).\n",
				       (guint)ROTATE_CALLS);
	if (any_in(b, R_ENC_ALONE, R_ENC_ROTATING))
		g_string_append_printf(
			out,
			"rotating rows: during the \"rotating\" rounds another client "
			"(own connection, own thread) called RotateKey on %s "
			"(aes-256-gcm) back to back: %" G_GUINT64_FORMAT
			" rotations in %.2f s (%.1f/s, %" G_GUINT64_FORMAT " failed).\n",
			KEY_ROTATING, b->rotator_calls, b->rotator_seconds,
			b->rotator_seconds > 0 ? b->rotator_calls / b->rotator_seconds : 0.0,
			b->rotator_failed);
	print_usage_note(b, out);
	if (any_in(b, R_SECRET_TKMS, R_SECRET_KEYRING) && b->password_note != NULL)
		g_string_append_printf(out, "%s\n", b->password_note);
	if (any_in(b, R_COLD_DECRYPT, R_RANDOM_64K))
		g_string_append_printf(
			out,
			"TPM cost rows: a stack of its own with [cache] KeyTtl=0, so every "
			"Decrypt unseals its key: one key (its object stays loaded: Unseal "
			"alone), and %u keys in turn, more than the object cache holds, so "
			"that each call is a cold sealed key's first use (the least recently "
			"used object flushed, Load, Unseal); Hmac and GetRandom of 64 KiB on "
			"it.\n",
			COLD_KEYS);
	g_string_append(out, "\nratios\n");
	for (guint i = 0; i < G_N_ELEMENTS(ratios); i++) {
		gdouble v;

		g_string_append_printf(out, "  %-56s ", ratios[i].label);
		if (!ratio_value(b, &ratios[i], &v)) {
			g_string_append(out, "n/a\n");
			continue;
		}
		if (ratios[i].kind == BY_P50_EXCESS) {
			g_string_append_printf(out, "%+6.2f ms  (goal <= %.2f ms: %s)\n", v,
					       ratios[i].goal,
					       v <= ratios[i].goal ? "met" : "NOT MET");
			continue;
		}
		if (ratios[i].factor)
			g_string_append_printf(out, "%6.2fx", v);
		else
			g_string_append_printf(out, "%6.1f%%", 100 * v);
		if (ratios[i].goal > 0 && ratios[i].factor)
			g_string_append_printf(out, "  (goal >= %.2fx: %s)", ratios[i].goal,
					       v >= ratios[i].goal ? "met" : "NOT MET");
		else if (ratios[i].goal > 0)
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
	json_builder_set_member_name(jb, "authz");
	json_builder_begin_object(jb);
	json_builder_set_member_name(jb, "user_a");
	json_builder_add_string_value(jb, USER_A);
	json_builder_set_member_name(jb, "uid_a");
	if (b->have_users)
		json_builder_add_int_value(jb, b->uid_a);
	else
		json_builder_add_null_value(jb);
	json_builder_set_member_name(jb, "user_b");
	json_builder_add_string_value(jb, USER_B);
	json_builder_set_member_name(jb, "uid_b");
	if (b->have_users)
		json_builder_add_int_value(jb, b->uid_b);
	else
		json_builder_add_null_value(jb);
	json_builder_set_member_name(jb, "flood_connections");
	json_builder_add_int_value(jb, FLOOD_CONNECTIONS);
	json_builder_set_member_name(jb, "flood_in_flight_per_connection");
	json_builder_add_int_value(jb, FLOOD_IN_FLIGHT);
	json_builder_set_member_name(jb, "max_seconds_per_row");
	json_builder_add_double_value(jb, b->duration > 0 ? b->duration : AUTHZ_MAX_SECONDS);
	json_builder_set_member_name(jb, "polkit_note");
	if (b->polkit_note != NULL)
		json_builder_add_string_value(jb, b->polkit_note);
	else
		json_builder_add_null_value(jb);
	json_builder_set_member_name(jb, "password_note");
	if (b->password_note != NULL)
		json_builder_add_string_value(jb, b->password_note);
	else
		json_builder_add_null_value(jb);
	json_builder_end_object(jb);

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
		json_builder_set_member_name(jb, "failed_calls");
		json_builder_add_int_value(jb, (gint64)r->failed);
		json_builder_set_member_name(jb, "errors");
		json_builder_begin_object(jb);
		{
			GHashTableIter iter;
			gpointer k, v;

			g_hash_table_iter_init(&iter, r->errors);
			while (g_hash_table_iter_next(&iter, &k, &v)) {
				json_builder_set_member_name(jb, k);
				json_builder_add_int_value(jb, GPOINTER_TO_UINT(v));
			}
		}
		json_builder_end_object(jb);
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
		json_builder_set_member_name(jb, "kind");
		json_builder_add_string_value(jb, ratio_kinds[ratios[i].kind]);
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
	store_figures_json(b, jb);
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
	result_init(&r[R_ECHO_SYNC], "echo-sync", "Echo(ay 32 B), other process, sync", 1, 1,
		    FALSE);
	result_init(&r[R_ECHO_ASYNC], "echo-in-flight", "Echo(ay 32 B), other process, async",
		    b->in_flight, 1, FALSE);
	result_init(&r[R_ENCRYPT_SYNC], "encrypt-single-sync", "Encrypt 32 B (as Echo), sync", 1,
		    1, FALSE);
	result_init(&r[R_ENCRYPT_ASYNC], "encrypt-single-in-flight",
		    "Encrypt 32 B (as Echo), async", b->in_flight, 1, FALSE);
	result_init(&r[R_ENC_BATCH_SYNC], "encrypt-batch-sync",
		    "EncryptBatch 64 x 32 B (op = 64 items), sync", 1, 1, FALSE);
	r[R_ENC_BATCH_SYNC].items_per_op = BATCH_ITEMS;
	/* a batch costs a few single calls: N / 8 batches take about as long as N single calls */
	r[R_ENC_BATCH_SYNC].ops_divisor = 8;
	result_init(&r[R_SIGN_SYNC], "sign-ecdsa-p256-sync", "Sign ecdsa-p256, sync", 1, 1, TRUE);
	result_init(&r[R_SIGN_ASYNC], "sign-ecdsa-p256-in-flight", "Sign ecdsa-p256, async",
		    b->in_flight, 1, TRUE);
	result_init(&r[R_HMAC_SYNC], "hmac-sha256-sync", "Hmac hmac-sha256 (TPM), sync", 1, 1,
		    TRUE);
	result_init(&r[R_SIGN_BATCH_SYNC], "sign-batch-ecdsa-p256-sync",
		    "SignBatch 64 x 32 B ecdsa-p256 (op = 64), sync", 1, 1, TRUE);
	r[R_SIGN_BATCH_SYNC].items_per_op = BATCH_ITEMS;
	/* a batch holds the TPM for 64 commands: a few per round */
	r[R_SIGN_BATCH_SYNC].ops_divisor = 16;
	result_init(&r[R_HMAC_BATCH_SYNC], "hmac-batch-sha256-sync",
		    "HmacBatch 64 x 32 B (op = 64), sync", 1, 1, TRUE);
	r[R_HMAC_BATCH_SYNC].items_per_op = BATCH_ITEMS;
	r[R_HMAC_BATCH_SYNC].ops_divisor = 16;
	result_init(&r[R_RAW_SIGN], "raw-esys-sign", "raw ESYS Sign, loaded key (password)", 1, 1,
		    TRUE);
	result_init(&r[R_RAW_SIGN_SEQ], "raw-esys-tkmsd-sign-sequence",
		    "raw ESYS Load+Sign+Flush (pw)", 1, 1, TRUE);
	result_init(&r[R_RAW_HMAC], "raw-esys-hmac", "raw ESYS HMAC, loaded key, kept session", 1,
		    1, TRUE);
	result_init(&r[R_RAW_HMAC_SEQ], "raw-esys-tkmsd-hmac-sequence",
		    "raw ESYS Load(pw)+HMAC(kept session)+Flush", 1, 1, TRUE);
	result_init(&r[R_RAW_UNSEAL_SEQ], "raw-esys-load-unseal-flush",
		    "raw ESYS Load+Unseal(kept session)+Flush", 1, 1, TRUE);
	result_init(&r[R_PEER_SIGN], "peer-sign-in-handler",
		    "minimal service: Esys_Sign in its handler", 1, 1, TRUE);
	result_init(&r[R_PEER_SIGN_THREAD], "peer-sign-in-thread",
		    "minimal service: Esys_Sign in a TPM thread", 1, 1, TRUE);
	result_init(&r[R_FLOOD_SIGN_ALONE], "flood-sign-b-alone", "B Sign ecdsa-p256, sync, alone", 1,
		    1, TRUE);
	result_init(&r[R_FLOOD_SIGN_B], "flood-sign-b-flooded", "B Sign ecdsa-p256, sync, A flooding",
		    1, 1, TRUE);
	result_init(&r[R_FLOOD_SIGN_A], "flood-sign-a", "A Sign flood (during B's run)",
		    FLOOD_CONNECTIONS * FLOOD_IN_FLIGHT, 1, TRUE);
	result_init(&r[R_FLOOD_ENC_ALONE], "flood-encrypt-b-alone", "B Encrypt 32 B, sync, alone", 1,
		    1, FALSE);
	result_init(&r[R_FLOOD_ENC_B], "flood-encrypt-b-flooded", "B Encrypt 32 B, sync, A flooding",
		    1, 1, FALSE);
	result_init(&r[R_FLOOD_ENC_A], "flood-encrypt-a", "A Encrypt flood (during B's run)",
		    FLOOD_CONNECTIONS * FLOOD_IN_FLIGHT, 1, FALSE);
	result_init(&r[R_POLKIT_ON], "polkit-cache-on-encrypt-sync",
		    "real polkitd, cache on (TTL 60): Encrypt, sync", 1, 1, FALSE);
	result_init(&r[R_POLKIT_OFF], "polkit-cache-off-encrypt-sync",
		    "real polkitd, cache off (TTL 0): Encrypt, sync", 1, 1, FALSE);
	result_init(&r[R_STORE_CREATE_EMPTY], "store-empty-createkey-sync",
		    "CreateKey aes-256-gcm, sync, empty store", 1, 1, TRUE);
	result_init(&r[R_STORE_CREATE_BULK], "store-100k-createkey-sync",
		    "CreateKey aes-256-gcm, sync, 100,000 keys", 1, 1, TRUE);
	result_init(&r[R_STORE_ENC_EMPTY], "store-empty-encrypt-decrypt-sync",
		    "Encrypt+Decrypt 32 B (pairs), sync, empty store", 1, 2, FALSE);
	result_init(&r[R_STORE_ENC_BULK], "store-100k-encrypt-decrypt-sync",
		    "Encrypt+Decrypt 32 B (pairs), sync, 100,000 keys", 1, 2, FALSE);
	result_init(&r[R_ROTATE_AES], "rotate-aes-256-gcm-sync", "RotateKey aes-256-gcm, sync", 1,
		    1, TRUE);
	result_init(&r[R_ROTATE_HMAC], "rotate-hmac-sha256-sync", "RotateKey hmac-sha256, sync", 1,
		    1, TRUE);
	result_init(&r[R_ROTATE_EC], "rotate-ecdsa-p256-sync", "RotateKey ecdsa-p256, sync", 1, 1,
		    TRUE);
	result_init(&r[R_ROTATE_RSA], "rotate-rsa-2048-sync", "RotateKey rsa-2048, sync", 1, 1,
		    TRUE);
	result_init(&r[R_ENC_ALONE], "rotating-encrypt-alone-sync", "Encrypt 32 B, sync, alone", 1,
		    1, FALSE);
	result_init(&r[R_ENC_ROTATING], "rotating-encrypt-rotated-sync",
		    "Encrypt 32 B, sync, another key rotating", 1, 1, FALSE);
	result_init(&r[R_USAGE_ON], "usage-count-on-encrypt-sync",
		    "Encrypt 32 B, sync, uses counted (default)", 1, 1, FALSE);
	result_init(&r[R_SECRET_TKMS], "password-getsecret-sync",
		    "GetSecret password (32 chars), sync", 1, 1, FALSE);
	result_init(&r[R_SECRET_KEYRING], "password-libsecret-lookup-sync",
		    "libsecret lookup, GNOME Keyring, sync", 1, 1, FALSE);
	result_init(&r[R_USAGE_OFF], "usage-count-off-encrypt-sync",
		    "Encrypt 32 B, sync, CountUses=false", 1, 1, FALSE);
	result_init(&r[R_COLD_DECRYPT], "tpm-cost-decrypt-cold-sync",
		    "Decrypt 32 B, sync, KeyTtl=0, object loaded", 1, 1, TRUE);
	result_init(&r[R_COLD_FIRST], "tpm-cost-decrypt-cold-first-use-sync",
		    "Decrypt 32 B, sync, cold sealed key's first use", 1, 1, TRUE);
	result_init(&r[R_HMAC_64K], "tpm-cost-hmac-64k-sync", "Hmac 64 KiB, sync", 1, 1, TRUE);
	r[R_HMAC_64K].fixed_ops = HMAC_64K_CALLS;
	result_init(&r[R_RANDOM_64K], "tpm-cost-getrandom-64k-sync", "GetRandom 64 KiB, sync", 1, 1,
		    TRUE);
	r[R_RANDOM_64K].fixed_ops = RANDOM_64K_CALLS;
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
		 "in --json, e.g. encrypt,raw-esys,flood,polkit)",
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

	/* the raw ESYS rows run with OpenSSL set up as tkmsd sets it up (tkms_tpm_global_init):
	 * without its legacy name tables, which tpm2-tss would copy for every hash and HMAC */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
			    NULL);
	g_option_context_set_summary(
		octx,
		"Starts swtpm, a private bus, the polkit mock and tkmsd (as the integration "
		"tests do),\nthen measures raw D-Bus round trips, Encrypt/Decrypt, Sign and "
		"Hmac through libtkms,\ntkmsd's TPM command sequences through ESYS on a "
		"second swtpm, a minimal D-Bus\nservice's Sign on a third (peer-*), one user's "
		"latency while another floods\ntkmsd (flood-*), a non-root caller's Encrypt "
		"rate against the real polkitd with\ntkmsd's authorization cache on and off "
		"(polkit-*), and GetSecret of a password\nbeside a libsecret lookup of it in "
		"GNOME Keyring on a private session bus\n(password-*). Run as root.");
	g_option_context_set_description(
		octx, "Environment: TKMSD, TKMS_DATA_DIR, TKMS_TEST_HELPER and TKMS_POLKIT_POLICY "
		      "default to the\nbuild tree; TKMS_TEST_KEEP=1 keeps the temporary directory "
		      "(logs).\nThe flood-* and polkit-* phases run callers as the test users "
		      "tkms-test-a and\ntkms-test-b (created if absent, as the authz suite does); "
		      "polkit-* installs the\nbuilt .policy and a rules file for its duration "
		      "(tests/tkms-test-env.h).\nProgress goes to stderr; results to stdout.\n");
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
	g_setenv("TKMS_TEST_LIB_DIR", TKMS_BENCH_LIB_DIR, FALSE);
	g_setenv("TKMS_BENCH_ECHO", TKMS_BENCH_ECHO, FALSE);
#ifdef TKMS_BENCH_POLKIT_POLICY
	g_setenv("TKMS_POLKIT_POLICY", TKMS_BENCH_POLKIT_POLICY, FALSE);
#endif
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
	{
		g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
		guint8 digest[32];
		gsize len = sizeof(digest);

		g_checksum_update(sum, (const guchar *)payload, PAYLOAD_SIZE);
		g_checksum_get_digest(sum, digest, &len);
		b.sign_digest = g_bytes_new(digest, len);
	}
	b.context = g_bytes_new_static("tkms-bench", 10);
	b.batch = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	for (guint i = 0; i < BATCH_ITEMS; i++)
		g_ptr_array_add(b.batch, g_bytes_ref(b.plaintext));

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
	run_echo_phases(&b);
	run_tpm_phases(&b);
	run_flood_phases(&b);
	run_polkit_phases(&b);
	run_store_phases(&b);
	run_rotate_phases(&b);
	run_rotating_encrypt_phases(&b);
	run_usage_phases(&b);
	run_password_phases(&b);
	run_tpm_cost_phases(&b);
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
	echo_service_stop(&b);
	g_clear_pointer(&b.env, tkms_test_env_free);
	g_clear_pointer(&b.batch, g_ptr_array_unref);
	g_clear_pointer(&b.plaintext, g_bytes_unref);
	g_clear_pointer(&b.sign_data, g_bytes_unref);
	g_clear_pointer(&b.sign_digest, g_bytes_unref);
	g_clear_pointer(&b.context, g_bytes_unref);
	g_free(b.daemon_unique_name);
	g_free(b.polkit_note);
	g_free(b.password_note);
	if (b.password != NULL)
		explicit_bzero(b.password, strlen(b.password));
	g_free(b.password);
	g_free(b.store_error);
	g_strfreev(b.only);
	for (guint i = 0; i < N_RESULTS; i++)
		result_clear(&b.results[i]);
	return status;
}
