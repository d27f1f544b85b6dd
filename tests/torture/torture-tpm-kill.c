/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "torture-tpm-kill"

/*
 * The TPM killed in the middle of operations (issue 9): worker threads call tkmsd without
 * pause (Hmac, Sign, Decrypt, Unseal, GetRandom, GetSecret, DeriveKey, CreateKey; [cache]
 * KeyTtl=0 so that every use of a sealed key goes to the TPM) while the test kills swtpm with
 * SIGKILL, leaves it dead for a moment, and starts it again on the same port and state. Each
 * cycle must show:
 *   - every call answered after the kill that failed, failed with TpmUnavailable, within 5 s
 *     of the kill or of its sending, whichever is later;
 *   - no call sent while the TPM is dead succeeds (it could not have);
 *   - within 2 s of the TPM's return a call succeeds, and every call sent from then on does;
 *   - tkmsd is the same process throughout.
 * At the end every key made before or during the cycles (every type) still works and gives
 * its reference results.
 *
 * Short form: 5 cycles; long form (TKMS_TORTURE=long): 100. TKMS_TORTURE_CYCLES overrides.
 */

#include <signal.h>
#include <string.h>

#include "tkms-torture.h"

#define N_WORKERS	4
#define CALL_TIMEOUT_MS 30000
#define FAIL_WITHIN_US	(5 * G_USEC_PER_SEC)
#define BACK_WITHIN_US	(2 * G_USEC_PER_SEC)

static TkmsTestEnv *env;

static const gchar ref_data[] = "kill reference";
static GBytes *ref_mac;
static GBytes *ref_derived;
static GBytes *ref_password;
static GBytes *ref_plaintext;
static GBytes *ref_ciphertext;
static GBytes *ref_blob;

typedef struct {
	const gchar *method;
	gchar *key; /* a key this call made (CreateKey), or NULL */
	gint64 sent;
	gint64 done;
	gchar *outcome;
	gchar *detail; /* what was wrong with a success's result, or the error message */
} CallRecord;

static void
call_record_free(CallRecord *r)
{
	g_free(r->key);
	g_free(r->outcome);
	g_free(r->detail);
	g_free(r);
}

typedef struct {
	gint64 kill;  /* SIGKILL sent */
	gint64 start; /* swtpm being started again */
	gint64 back;  /* swtpm accepts connections again */
} Cycle;

static GMutex records_lock;
static GPtrArray *records; /* CallRecord */
static gint stop_workers;
static gint key_counter;

static GBytes *
first_bytes(GVariant *reply)
{
	g_autoptr(GVariant) v = g_variant_get_child_value(reply, 0);
	return tkms_torture_bytes(v);
}

static GBytes *
call_bytes_sync(GDBusConnection *c, const gchar *method, GVariant *args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = tkms_torture_call_sync(c, method, args, "(ay)", 60000, &error);

	g_assert_no_error(error);
	return first_bytes(r);
}

/* One call of a worker: a TPM operation whose result is checked. */
static CallRecord *
worker_call(GDBusConnection *c, GRand *rand)
{
	CallRecord *r = g_new0(CallRecord, 1);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GBytes) want = NULL;
	GVariant *args;
	const gchar *type = "(ay)";

	/* one call in 15 makes a key; the others use the reference keys */
	gint pick = g_rand_int_range(rand, 0, 15);

	switch (pick == 14 ? 7 : pick % 7) {
	case 0:
		r->method = "Hmac";
		args = g_variant_new("(s@ay)", "k-hmac", tkms_torture_ay_str(ref_data));
		want = g_bytes_ref(ref_mac);
		break;
	case 1:
		r->method = "Sign";
		args = g_variant_new("(s@ay)", g_rand_int_range(rand, 0, 4) ? "k-ec" : "k-rsa",
				     tkms_torture_ay_str(ref_data));
		break;
	case 2:
		r->method = "Decrypt";
		args = g_variant_new("(s@ay@ay)", "k-aes", tkms_torture_ay_bytes(ref_ciphertext),
				     tkms_torture_ay_str("kill"));
		want = g_bytes_ref(ref_plaintext);
		break;
	case 3:
		r->method = "Unseal";
		args = g_variant_new("(@ay)", tkms_torture_ay_bytes(ref_blob));
		want = g_bytes_new_static(ref_data, strlen(ref_data));
		break;
	case 4:
		r->method = "GetRandom";
		args = g_variant_new("(u)", 64);
		break;
	case 5:
		r->method = "GetSecret";
		args = g_variant_new("(ss)", "k-pw", "current");
		want = g_bytes_ref(ref_password);
		break;
	case 6:
		r->method = "DeriveKey";
		args = g_variant_new("(s@ayu)", "k-hmac", tkms_torture_ay_str(ref_data), 32);
		want = g_bytes_ref(ref_derived);
		break;
	default: {
		static const gchar *const types[] = {"hmac-sha256", "aes-256-gcm", "ecdsa-p256",
						     "password"};
		r->method = "CreateKey";
		r->key = g_strdup_printf("made-%d", g_atomic_int_add(&key_counter, 1));
		args = g_variant_new("(ss@a{sv})", r->key, types[g_rand_int_range(rand, 0, 4)],
				     g_variant_new("a{sv}", NULL));
		type = "(a{sv})";
		break;
	}
	}
	r->sent = g_get_monotonic_time();
	reply = tkms_torture_call_sync(c, r->method, args, type, CALL_TIMEOUT_MS, &error);
	r->done = g_get_monotonic_time();
	r->outcome = tkms_torture_outcome(error);
	if (error != NULL) {
		r->detail = g_strdup(error->message);
	} else if (want != NULL) {
		g_autoptr(GBytes) got = first_bytes(reply);
		if (!g_bytes_equal(got, want))
			r->detail = g_strdup("wrong result");
	}
	return r;
}

static gpointer
worker_thread(gpointer data)
{
	guint index = GPOINTER_TO_UINT(data);
	g_autoptr(GMainContext) ctx = g_main_context_new();
	g_autoptr(GDBusConnection) c = NULL;
	g_autoptr(GRand) rand = g_rand_new_with_seed(tkms_torture_seed() + index);

	/* the connection's signals and replies stay on this thread */
	g_main_context_push_thread_default(ctx);
	c = tkms_torture_connect(env);
	while (!g_atomic_int_get(&stop_workers)) {
		CallRecord *r = worker_call(c, rand);
		gboolean ok = g_str_equal(r->outcome, "OK");

		g_mutex_lock(&records_lock);
		g_ptr_array_add(records, r);
		g_mutex_unlock(&records_lock);
		/* failing calls return at once: do not flood the audit log meanwhile */
		if (!ok)
			g_usleep(20000);
	}
	g_dbus_connection_close_sync(c, NULL, NULL);
	g_main_context_pop_thread_default(ctx);
	return NULL;
}

static void
make_keys(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	GDBusConnection *c = tkms_test_env_get_connection(env);
	static const gchar *const names[] = {"k-aes", "k-hmac", "k-ec", "k-rsa", "k-pw"};
	static const gchar *const types[] = {"aes-256-gcm", "hmac-sha256", "ecdsa-p256", "rsa-2048",
					     "password"};

	for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autoptr(GVariant) info = tkms_test_create_key(client, names[i], types[i], NULL);
	}
	ref_mac = call_bytes_sync(c, "Hmac",
				  g_variant_new("(s@ay)", "k-hmac", tkms_torture_ay_str(ref_data)));
	ref_derived = call_bytes_sync(
		c, "DeriveKey",
		g_variant_new("(s@ayu)", "k-hmac", tkms_torture_ay_str(ref_data), 32));
	ref_password = call_bytes_sync(c, "GetSecret", g_variant_new("(ss)", "k-pw", "current"));
	ref_plaintext = tkms_test_bytes_pattern(777, 3);
	ref_ciphertext = call_bytes_sync(c, "Encrypt",
					 g_variant_new("(s@ay@ay)", "k-aes",
						       tkms_torture_ay_bytes(ref_plaintext),
						       tkms_torture_ay_str("kill")));
	ref_blob = call_bytes_sync(c, "Seal",
				   g_variant_new("(@ay@a{sv})", tkms_torture_ay_str(ref_data),
						 g_variant_new("a{sv}", NULL)));
}

/* A key works: a use that needs the TPM (or the sealed key) gives the expected result. */
static void
assert_key_works(const gchar *name)
{
	GDBusConnection *c = tkms_test_env_get_connection(env);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) info = tkms_torture_call_sync(
		c, "GetKeyInfo", g_variant_new("(s)", name), "(a{sv})", 60000, &error);
	g_autoptr(GVariant) dict = NULL;
	const gchar *type = NULL;
	g_autoptr(GBytes) data = tkms_test_bytes_str(name);

	g_assert_no_error(error);
	dict = g_variant_get_child_value(info, 0);
	g_assert_true(g_variant_lookup(dict, "type", "&s", &type));
	if (g_str_equal(type, "aes-256-gcm")) {
		g_autoptr(GBytes) ct = call_bytes_sync(c, "Encrypt",
						       g_variant_new("(s@ay@ay)", name,
								     tkms_torture_ay_bytes(data),
								     tkms_torture_ay_str("")));
		g_autoptr(GBytes) pt =
			call_bytes_sync(c, "Decrypt",
					g_variant_new("(s@ay@ay)", name, tkms_torture_ay_bytes(ct),
						      tkms_torture_ay_str("")));
		tkms_assert_bytes_equal(pt, data);
	} else if (g_str_equal(type, "hmac-sha256")) {
		g_autoptr(GBytes) mac = call_bytes_sync(
			c, "Hmac", g_variant_new("(s@ay)", name, tkms_torture_ay_bytes(data)));
		g_autoptr(GVariant) r = tkms_torture_call_sync(
			c, "VerifyHmac",
			g_variant_new("(s@ay@ay)", name, tkms_torture_ay_bytes(data),
				      tkms_torture_ay_bytes(mac)),
			"(b)", 60000, &error);
		gboolean valid = FALSE;
		g_assert_no_error(error);
		g_variant_get(r, "(b)", &valid);
		g_assert_true(valid);
	} else if (g_str_equal(type, "password")) {
		g_autoptr(GBytes) s =
			call_bytes_sync(c, "GetSecret", g_variant_new("(ss)", name, "current"));
		g_assert_cmpuint(g_bytes_get_size(s), ==, 32);
	} else {
		g_autoptr(GBytes) sig = call_bytes_sync(
			c, "Sign", g_variant_new("(s@ay)", name, tkms_torture_ay_bytes(data)));
		g_autoptr(GVariant) r = tkms_torture_call_sync(
			c, "Verify",
			g_variant_new("(s@ay@ay)", name, tkms_torture_ay_bytes(data),
				      tkms_torture_ay_bytes(sig)),
			"(b)", 60000, &error);
		gboolean valid = FALSE;
		g_assert_no_error(error);
		g_variant_get(r, "(b)", &valid);
		g_assert_true(valid);
	}
}

static gint
compare_i64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;

	return x < y ? -1 : x > y;
}

/* Waits until a worker call sent after t has succeeded (at most max_us), returns its reply
 * time or 0. */
static gint64
first_success_after(gint64 t, gint64 max_us)
{
	gint64 deadline = g_get_monotonic_time() + max_us;

	for (;;) {
		gint64 found = 0;
		g_mutex_lock(&records_lock);
		for (guint i = records->len; i > 0 && found == 0; i--) {
			CallRecord *r = g_ptr_array_index(records, i - 1);
			if (r->sent < t)
				break;
			if (g_str_equal(r->outcome, "OK"))
				found = r->done;
		}
		g_mutex_unlock(&records_lock);
		if (found != 0)
			return found;
		if (g_get_monotonic_time() > deadline)
			return 0;
		g_usleep(5000);
	}
}

static void
test_tpm_kill(void)
{
	guint n_cycles = tkms_torture_figure("TKMS_TORTURE_CYCLES", 5, 100);
	g_autoptr(GRand) rand = g_rand_new_with_seed(tkms_torture_seed());
	g_autofree Cycle *cycles = g_new0(Cycle, n_cycles);
	GThread *workers[N_WORKERS];
	gint pid = tkms_test_env_get_daemon_pid(env);
	g_autoptr(TkmsTortureStats) stats = tkms_torture_stats_new();
	g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
	guint in_flight_at_kill = 0, made = 0;
	gint64 worst_fail = 0, worst_back = 0;
	guint64 rss_before, rss_after;
	gint64 start;
	gdouble seconds;
	g_autoptr(GArray) backs = NULL;

	make_keys();
	rss_before = tkms_torture_rss_kib(pid);
	start = g_get_monotonic_time();
	records = g_ptr_array_new_with_free_func((GDestroyNotify)call_record_free);
	for (guint i = 0; i < N_WORKERS; i++)
		workers[i] = g_thread_new("worker", worker_thread, GUINT_TO_POINTER(i));

	for (guint i = 0; i < n_cycles; i++) {
		Cycle *cy = &cycles[i];
		g_autoptr(GError) error = NULL;

		/* under load for a while, then the TPM dies mid-operation */
		g_usleep(g_rand_int_range(rand, 200, 600) * 1000);
		cy->kill = g_get_monotonic_time();
		g_assert_true(tkms_test_env_signal_tpm(env, SIGKILL));
		tkms_test_env_stop_tpm(env, &error); /* reaps it */
		g_assert_no_error(error);
		g_usleep(g_rand_int_range(rand, 300, 1200) * 1000);
		cy->start = g_get_monotonic_time();
		tkms_test_env_start_tpm(env, &error);
		g_assert_no_error(error);
		cy->back = g_get_monotonic_time();
		/* the service is back once a call sent after the return succeeds; then on to the
		 * next cycle after the 2 s in which a failure is still allowed */
		if (first_success_after(cy->back, 10 * G_USEC_PER_SEC) == 0)
			g_error("cycle %u: no call succeeded within 10 s of the TPM's return", i);
		while (g_get_monotonic_time() < cy->back + BACK_WITHIN_US + 100000)
			g_usleep(20000);
	}
	g_usleep(300000);
	g_atomic_int_set(&stop_workers, 1);
	for (guint i = 0; i < N_WORKERS; i++)
		g_thread_join(workers[i]);
	seconds = (g_get_monotonic_time() - start) / 1e6;
	rss_after = tkms_torture_rss_kib(pid);

	/* The judgement, call by call against the timeline. */
	for (guint i = 0; i < records->len; i++) {
		CallRecord *r = g_ptr_array_index(records, i);
		gboolean ok = g_str_equal(r->outcome, "OK");
		gchar *problem = NULL;
		const Cycle *cy = NULL;

		tkms_torture_stats_add(stats, r->method, r->outcome, r->done - r->sent);
		/* the cycle whose kill came last before this call's reply */
		for (guint j = 0; j < n_cycles; j++)
			if (cycles[j].kill <= r->done)
				cy = &cycles[j];
		if (ok && r->detail != NULL)
			problem = g_strdup_printf("%s succeeded with a %s", r->method, r->detail);
		else if (ok && r->key != NULL)
			made++;
		if (problem == NULL && cy != NULL && r->sent < cy->kill && r->done > cy->kill)
			in_flight_at_kill++;
		if (problem == NULL && cy == NULL && !ok)
			problem = g_strdup_printf("%s failed before any kill: %s: %s", r->method,
						  r->outcome, r->detail);
		if (problem == NULL && cy != NULL && !ok) {
			gint64 from = MAX(r->sent, cy->kill);
			worst_fail = MAX(worst_fail, r->done - from);
			if (!g_str_equal(r->outcome, "TpmUnavailable"))
				problem =
					g_strdup_printf("%s failed with %s, not TpmUnavailable: %s",
							r->method, r->outcome, r->detail);
			else if (r->done - from > FAIL_WITHIN_US)
				problem = g_strdup_printf("%s failed only after %.2f s", r->method,
							  (r->done - from) / 1e6);
			else if (r->sent >= cy->back + BACK_WITHIN_US)
				problem = g_strdup_printf(
					"%s sent %.2f s after the TPM's return failed: %s",
					r->method, (r->sent - cy->back) / 1e6, r->detail);
		}
		if (problem == NULL && cy != NULL && ok && r->sent >= cy->kill &&
		    r->done < cy->start)
			problem = g_strdup_printf("%s succeeded while the TPM was dead", r->method);
		if (problem != NULL) {
			if (problems->len < 30)
				g_ptr_array_add(problems, problem);
			else
				g_free(problem);
		}
	}
	backs = g_array_new(FALSE, FALSE, sizeof(gint64));
	for (guint i = 0; i < n_cycles; i++) {
		gint64 first = 0;
		for (guint j = 0; j < records->len; j++) {
			CallRecord *r = g_ptr_array_index(records, j);
			if (r->sent >= cycles[i].kill && g_str_equal(r->outcome, "OK") &&
			    (first == 0 || r->done < first))
				first = r->done;
		}
		g_assert_cmpint(first, >, 0);
		worst_back = MAX(worst_back, first - cycles[i].back);
		{
			gint64 back = first - cycles[i].back;
			g_array_append_val(backs, back);
		}
		if (first - cycles[i].back > BACK_WITHIN_US)
			g_ptr_array_add(problems,
					g_strdup_printf("cycle %u: first success %.2f s after the "
							"TPM's return",
							i, (first - cycles[i].back) / 1e6));
	}
	tkms_torture_stats_print(stats, "tpm-kill");
	g_test_message("%u cycles; %u calls in flight at a kill; slowest failure %.2f s after "
		       "the kill or its sending; slowest return of service %.2f s after the "
		       "TPM's; %u keys made during the cycles",
		       n_cycles, in_flight_at_kill, worst_fail / 1e6, worst_back / 1e6, made);
	g_test_message("%.1f s, %.0f calls/s (%u workers); tkmsd VmRSS %" G_GUINT64_FORMAT
		       " KiB before, %" G_GUINT64_FORMAT " KiB after",
		       seconds, records->len / seconds, N_WORKERS, rss_before, rss_after);
	g_array_sort(backs, compare_i64);
	g_test_message("return of service after the TPM's: median %.2f s, max %.2f s over %u "
		       "cycles",
		       g_array_index(backs, gint64, backs->len / 2) / 1e6, worst_back / 1e6,
		       backs->len);
	for (guint i = 0; i < problems->len; i++)
		g_test_message("PROBLEM %s", (const gchar *)g_ptr_array_index(problems, i));
	g_assert_cmpuint(problems->len, ==, 0);
	g_assert_cmpint(tkms_test_env_get_daemon_pid(env), ==, pid);
	g_assert_cmpuint(tkms_torture_stats_count(stats, NULL, "TpmUnavailable"), >, 0);

	/* No key lost: the reference results, and every key made before or during the cycles. */
	{
		GDBusConnection *c = tkms_test_env_get_connection(env);
		g_autoptr(GBytes) mac = call_bytes_sync(
			c, "Hmac",
			g_variant_new("(s@ay)", "k-hmac", tkms_torture_ay_str(ref_data)));
		g_autoptr(GBytes) pt = call_bytes_sync(
			c, "Decrypt",
			g_variant_new("(s@ay@ay)", "k-aes", tkms_torture_ay_bytes(ref_ciphertext),
				      tkms_torture_ay_str("kill")));
		g_autoptr(GBytes) pw =
			call_bytes_sync(c, "GetSecret", g_variant_new("(ss)", "k-pw", "current"));
		g_autoptr(GBytes) unsealed = call_bytes_sync(
			c, "Unseal", g_variant_new("(@ay)", tkms_torture_ay_bytes(ref_blob)));
		g_autoptr(GBytes) data = g_bytes_new_static(ref_data, strlen(ref_data));
		tkms_assert_bytes_equal(mac, ref_mac);
		tkms_assert_bytes_equal(pt, ref_plaintext);
		tkms_assert_bytes_equal(pw, ref_password);
		tkms_assert_bytes_equal(unsealed, data);
	}
	assert_key_works("k-aes");
	assert_key_works("k-hmac");
	assert_key_works("k-ec");
	assert_key_works("k-rsa");
	assert_key_works("k-pw");
	for (guint i = 0; i < records->len; i++) {
		CallRecord *r = g_ptr_array_index(records, i);
		if (r->key != NULL && g_str_equal(r->outcome, "OK"))
			assert_key_works(r->key);
	}
	g_clear_pointer(&records, g_ptr_array_unref);
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	(void)tkms_error_quark();
	/* every use of a sealed key unseals it in the TPM */
	env = tkms_test_env_new_or_abort("[cache]\nKeyTtl=0\n");
	g_test_add_func("/torture/tpm-kill", test_tpm_kill);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	g_clear_pointer(&ref_mac, g_bytes_unref);
	g_clear_pointer(&ref_derived, g_bytes_unref);
	g_clear_pointer(&ref_password, g_bytes_unref);
	g_clear_pointer(&ref_plaintext, g_bytes_unref);
	g_clear_pointer(&ref_ciphertext, g_bytes_unref);
	g_clear_pointer(&ref_blob, g_bytes_unref);
	return ret;
}
