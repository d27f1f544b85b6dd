/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "torture-lockout"

/*
 * Bad input never costs the TPM's dictionary-attack counter (issue 9). A TPM in lockout
 * refuses every DA-protected object of every user of the machine, so nothing a caller can
 * send tkmsd may count as an authorization failure. After PCR 9 has been extended past the
 * values keys and blobs were bound to, the test makes many calls with
 *   - garbage and bit-flipped Seal blobs, truncated blobs, blobs bound to the old PCR value,
 *   - uses of keys bound to the old PCR value (aes, hmac, ecdsa, password),
 *   - bit-flipped ciphertexts and ciphertexts under the wrong context (Decrypt, ReEncrypt),
 *   - copies of bound keys under another name, written straight into the store, whose TPM
 *     auth value therefore does not match (the store's rows alone must not be usable),
 *   - wrong MACs and signatures,
 * each of which must fail with its error (or verify as false). Meanwhile and at the end,
 * TPM_PT_LOCKOUT_COUNTER (tpm2_getcap properties-variable, through swtpm) is 0 and the
 * TpmLockoutCounter property agrees; the unbound keys still work.
 *
 * Short form: 500 calls; long form (TKMS_TORTURE=long): 10,000. TKMS_TORTURE_CALLS
 * overrides.
 */

#include <string.h>

#include "tkms-test-store.h"
#include "tkms-torture.h"

#define PCR	      9
#define CT_HEADER_LEN 12 /* daemon/ciphertext.h */

static TkmsTestEnv *env;
#define CONN (tkms_test_env_get_connection(env))

static GBytes *ref_data;
static GBytes *blob;	       /* Seal, unbound */
static GBytes *blob_pcr;       /* Seal, bound to PCR 9's old value */
static GBytes *ciphertext;     /* Encrypt with k-aes, context "lockout" */
static GBytes *ciphertext_pcr; /* Encrypt with pcr-aes (before the extend) */
static GBytes *mac;	       /* Hmac of ref_data with k-hmac */
static GBytes *sig;	       /* Sign of ref_data with k-ec */

static GVariant *
no_options(void)
{
	return g_variant_new("a{sv}", NULL);
}

static GVariant *
pcr_options(void)
{
	guint32 pcr = PCR;
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);

	g_variant_dict_insert_value(d, "pcrs",
				    g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, &pcr, 1, 4));
	return g_variant_dict_end(d);
}

static GBytes *
call_bytes(const gchar *method, GVariant *args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = tkms_torture_call_sync(CONN, method, args, "(ay)", 60000, &error);
	g_autoptr(GVariant) v = NULL;

	g_assert_no_error(error);
	v = g_variant_get_child_value(r, 0);
	return tkms_torture_bytes(v);
}

static void
create(const gchar *name, const gchar *type, GVariant *options)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = tkms_torture_call_sync(
		CONN, "CreateKey", g_variant_new("(ss@a{sv})", name, type, options), "(a{sv})",
		60000, &error);
	g_assert_no_error(error);
}

static guint32
lockout_property(void)
{
	g_autoptr(GVariant) v = tkms_test_get_property(env, "TpmLockoutCounter");
	return g_variant_get_uint32(v);
}

static void
setup_keys(void)
{
	g_autoptr(GError) error = NULL;
	const gchar *state = tkms_test_env_get_state_dir(env);

	ref_data = tkms_test_bytes_str("lockout reference");
	create("k-aes", "aes-256-gcm", no_options());
	create("k-hmac", "hmac-sha256", no_options());
	create("k-ec", "ecdsa-p256", no_options());
	create("k-pw", "password", no_options());
	create("pcr-aes", "aes-256-gcm", pcr_options());
	create("pcr-hmac", "hmac-sha256", pcr_options());
	create("pcr-ec", "ecdsa-p256", pcr_options());
	create("pcr-pw", "password", pcr_options());
	blob = call_bytes("Seal", g_variant_new("(@ay@a{sv})", tkms_torture_ay_bytes(ref_data),
						no_options()));
	blob_pcr = call_bytes("Seal", g_variant_new("(@ay@a{sv})", tkms_torture_ay_bytes(ref_data),
						    pcr_options()));
	ciphertext = call_bytes("Encrypt",
				g_variant_new("(s@ay@ay)", "k-aes", tkms_torture_ay_bytes(ref_data),
					      tkms_torture_ay_str("lockout")));
	ciphertext_pcr = call_bytes("Encrypt", g_variant_new("(s@ay@ay)", "pcr-aes",
							     tkms_torture_ay_bytes(ref_data),
							     tkms_torture_ay_str("lockout")));
	mac = call_bytes("Hmac",
			 g_variant_new("(s@ay)", "k-hmac", tkms_torture_ay_bytes(ref_data)));
	sig = call_bytes("Sign", g_variant_new("(s@ay)", "k-ec", tkms_torture_ay_bytes(ref_data)));

	/* Copies of bound keys under other names, straight into the store: the TPM objects
	 * are intact but their auth value is derived from the original name. */
	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	g_assert_true(tkms_test_store_clone_key(state, 0, "k-ec", "copy-ec", 1, NULL, &error));
	g_assert_true(tkms_test_store_clone_key(state, 0, "k-hmac", "copy-hmac", 1, NULL, &error));
	g_assert_true(tkms_test_store_clone_key(state, 0, "k-pw", "copy-pw", 1, NULL, &error));
	g_assert_no_error(error);
	/* and the PCR moves on (tkmsd is started again by this) */
	g_assert_true(tkms_test_swtpm_extend_pcr(tkms_test_env_get_swtpm(env), PCR, &error));
	g_assert_no_error(error);
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
}

typedef struct {
	const gchar *what;
	const gchar *method;
	GVariant *args;
	const gchar *reply_type;
	/* the accepted outcomes, or "false" for a verification that must say no */
	const gchar *expect[4];
} BadCall;

static void
bad_call_clear(BadCall *b)
{
	g_clear_pointer(&b->args, g_variant_unref);
}

static GBytes *
random_bytes(GRand *rand, gsize len)
{
	guint8 *buf = g_malloc(len);

	for (gsize i = 0; i < len; i++)
		buf[i] = (guint8)g_rand_int(rand);
	return g_bytes_new_take(buf, len);
}

static void
pick(GRand *rand, BadCall *b)
{
	/* what a tampered blob may be called: its owner, PCR list or TPM parts changed */
	static const gchar *const tampered[] = {"IntegrityFailure", "InvalidArgument",
						"PermissionDenied", "PolicyMismatch"};
	gsize len;

	memset(b, 0, sizeof(*b));
	b->reply_type = "(ay)";
	switch (g_rand_int_range(rand, 0, 16)) {
	case 0: {
		g_autoptr(GBytes) junk = random_bytes(rand, g_rand_int_range(rand, 0, 2048));
		b->what = "Unseal of garbage";
		b->method = "Unseal";
		b->args = g_variant_new("(@ay)", tkms_torture_ay_bytes(junk));
		b->expect[0] = "InvalidArgument";
		b->expect[1] = "IntegrityFailure";
		break;
	}
	case 1:
	case 2: {
		g_autoptr(GBytes) bad = NULL;
		len = g_bytes_get_size(blob);
		bad = tkms_test_bytes_flip_bit(blob, g_rand_int_range(rand, 0, (gint32)(len * 8)));
		b->what = "Unseal of a bit-flipped blob";
		b->method = "Unseal";
		b->args = g_variant_new("(@ay)", tkms_torture_ay_bytes(bad));
		memcpy(b->expect, tampered, sizeof(tampered));
		break;
	}
	case 3: {
		g_autoptr(GBytes) bad = NULL;
		len = g_bytes_get_size(blob);
		bad = tkms_test_bytes_truncate(blob, g_rand_int_range(rand, 0, (gint32)len));
		b->what = "Unseal of a truncated blob";
		b->method = "Unseal";
		b->args = g_variant_new("(@ay)", tkms_torture_ay_bytes(bad));
		b->expect[0] = "InvalidArgument";
		b->expect[1] = "IntegrityFailure";
		break;
	}
	case 4:
		b->what = "Unseal of a blob bound to the old PCR value";
		b->method = "Unseal";
		b->args = g_variant_new("(@ay)", tkms_torture_ay_bytes(blob_pcr));
		b->expect[0] = "PolicyMismatch";
		break;
	case 5:
		b->what = "Decrypt with a key bound to the old PCR value";
		b->method = "Decrypt";
		b->args =
			g_variant_new("(s@ay@ay)", "pcr-aes", tkms_torture_ay_bytes(ciphertext_pcr),
				      tkms_torture_ay_str("lockout"));
		b->expect[0] = "PolicyMismatch";
		break;
	case 6:
		b->what = "Hmac with a key bound to the old PCR value";
		b->method = "Hmac";
		b->args = g_variant_new("(s@ay)", "pcr-hmac", tkms_torture_ay_bytes(ref_data));
		b->expect[0] = "PolicyMismatch";
		break;
	case 7:
		b->what = "Sign with a key bound to the old PCR value";
		b->method = "Sign";
		b->args = g_variant_new("(s@ay)", "pcr-ec", tkms_torture_ay_bytes(ref_data));
		b->expect[0] = "PolicyMismatch";
		break;
	case 8:
		b->what = "GetSecret of a password bound to the old PCR value";
		b->method = "GetSecret";
		b->args = g_variant_new("(ss)", "pcr-pw", "current");
		b->expect[0] = "PolicyMismatch";
		break;
	case 9:
	case 10: {
		g_autoptr(GBytes) bad = NULL;
		len = g_bytes_get_size(ciphertext);
		bad = tkms_test_bytes_flip_bit(
			ciphertext, g_rand_int_range(rand, CT_HEADER_LEN * 8, (gint32)(len * 8)));
		b->what = "Decrypt or ReEncrypt of a bit-flipped ciphertext";
		b->method = g_rand_boolean(rand) ? "Decrypt" : "ReEncrypt";
		b->args = g_variant_new("(s@ay@ay)", "k-aes", tkms_torture_ay_bytes(bad),
					tkms_torture_ay_str("lockout"));
		b->expect[0] = "IntegrityFailure";
		break;
	}
	case 11:
		b->what = "Decrypt under the wrong context";
		b->method = "Decrypt";
		b->args = g_variant_new("(s@ay@ay)", "k-aes", tkms_torture_ay_bytes(ciphertext),
					tkms_torture_ay_str("lockouT"));
		b->expect[0] = "IntegrityFailure";
		break;
	case 12: {
		static const gchar *const copies[] = {"copy-ec000001", "copy-hmac000001",
						      "copy-pw000001"};
		guint which = g_rand_int_range(rand, 0, 3);
		b->what = "use of a bound key's copy under another name";
		b->method = which == 0 ? "Sign" : which == 1 ? "Hmac" : "GetSecret";
		b->args = which == 2 ? g_variant_new("(ss)", copies[which], "current")
				     : g_variant_new("(s@ay)", copies[which],
						     tkms_torture_ay_bytes(ref_data));
		b->expect[0] = "IntegrityFailure";
		b->expect[1] = "PermissionDenied";
		break;
	}
	case 13: {
		g_autoptr(GBytes) bad =
			tkms_test_bytes_flip_bit(mac, g_rand_int_range(rand, 0, 256));
		b->what = "VerifyHmac of a wrong MAC";
		b->method = "VerifyHmac";
		b->args = g_variant_new("(s@ay@ay)", "k-hmac", tkms_torture_ay_bytes(ref_data),
					tkms_torture_ay_bytes(bad));
		b->reply_type = "(b)";
		b->expect[0] = "false";
		break;
	}
	case 14: {
		g_autoptr(GBytes) bad = NULL;
		len = g_bytes_get_size(sig);
		bad = tkms_test_bytes_flip_bit(sig, g_rand_int_range(rand, 0, (gint32)(len * 8)));
		b->what = "Verify of a wrong signature";
		b->method = "Verify";
		b->args = g_variant_new("(s@ay@ay)", "k-ec", tkms_torture_ay_bytes(ref_data),
					tkms_torture_ay_bytes(bad));
		b->reply_type = "(b)";
		b->expect[0] = "false";
		break;
	}
	default: {
		/* a blob of the right shape whose sealed TPM object is another blob's */
		g_autoptr(GBytes) other = call_bytes(
			"Seal",
			g_variant_new("(@ay@a{sv})", tkms_torture_ay_str("other"), no_options()));
		gsize n = MIN(g_bytes_get_size(other), g_bytes_get_size(blob));
		g_autofree guint8 *mix =
			g_memdup2(g_bytes_get_data(blob, NULL), g_bytes_get_size(blob));
		g_autoptr(GBytes) bad = NULL;
		/* the first half of the other blob (its head: owner, PCRs, TPM object) */
		memcpy(mix, g_bytes_get_data(other, NULL), n / 2);
		bad = g_bytes_new(mix, g_bytes_get_size(blob));
		b->what = "Unseal of a blob spliced from two";
		b->method = "Unseal";
		b->args = g_variant_new("(@ay)", tkms_torture_ay_bytes(bad));
		memcpy(b->expect, tampered, sizeof(tampered));
		break;
	}
	}
	g_variant_ref_sink(b->args);
}

static void
test_lockout(void)
{
	guint n_calls = tkms_torture_figure("TKMS_TORTURE_CALLS", 500, 10000);
	g_autoptr(GRand) rand = g_rand_new_with_seed(tkms_torture_seed());
	g_autoptr(TkmsTortureStats) stats = tkms_torture_stats_new();
	g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
	gint64 start;

	setup_keys();
	g_assert_cmpuint(tkms_torture_tpm_property(env, "TPM2_PT_LOCKOUT_COUNTER"), ==, 0);

	start = g_get_monotonic_time();
	for (guint i = 0; i < n_calls; i++) {
		BadCall b;
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) r = NULL;
		g_autofree gchar *outcome = NULL;
		gboolean accepted = FALSE;
		gint64 t0;

		pick(rand, &b);
		t0 = g_get_monotonic_time();
		r = tkms_torture_call_sync(CONN, b.method, b.args, b.reply_type, 60000, &error);
		outcome = tkms_torture_outcome(error);
		if (r != NULL && g_str_equal(b.reply_type, "(b)")) {
			gboolean valid = TRUE;
			g_variant_get(r, "(b)", &valid);
			g_free(outcome);
			outcome = g_strdup(valid ? "true" : "false");
		}
		tkms_torture_stats_add(stats, b.what, outcome, g_get_monotonic_time() - t0);
		for (guint j = 0; j < G_N_ELEMENTS(b.expect) && b.expect[j] != NULL; j++)
			accepted |= g_str_equal(outcome, b.expect[j]);
		if (!accepted && problems->len < 30)
			g_ptr_array_add(problems,
					g_strdup_printf("%s (%s): %s%s%s", b.what, b.method,
							outcome, error ? ": " : "",
							error ? error->message : ""));
		bad_call_clear(&b);
		/* the daemon's view of the counter, cheaply, along the way */
		if (i % 100 == 99 && lockout_property() != 0)
			g_error("TpmLockoutCounter is %u after %u calls", lockout_property(),
				i + 1);
	}
	tkms_torture_stats_print(stats, "lockout");
	{
		gdouble seconds = (g_get_monotonic_time() - start) / 1e6;
		g_test_message("%u calls in %.1f s, %.0f calls/s", n_calls, seconds,
			       n_calls / seconds);
	}
	for (guint i = 0; i < problems->len; i++)
		g_test_message("PROBLEM %s", (const gchar *)g_ptr_array_index(problems, i));
	g_assert_cmpuint(problems->len, ==, 0);

	/* the TPM's own counter, asked directly */
	g_assert_cmpuint(lockout_property(), ==, 0);
	{
		guint32 counter = tkms_torture_tpm_property(env, "TPM2_PT_LOCKOUT_COUNTER");
		g_test_message("TPM2_PT_LOCKOUT_COUNTER after %u bad calls: %u", n_calls, counter);
		g_assert_cmpuint(counter, ==, 0);
	}
	/* and the unbound keys still work */
	{
		g_autoptr(GBytes) pt =
			call_bytes("Decrypt", g_variant_new("(s@ay@ay)", "k-aes",
							    tkms_torture_ay_bytes(ciphertext),
							    tkms_torture_ay_str("lockout")));
		g_autoptr(GBytes) m = call_bytes(
			"Hmac", g_variant_new("(s@ay)", "k-hmac", tkms_torture_ay_bytes(ref_data)));
		g_autoptr(GBytes) d =
			call_bytes("Unseal", g_variant_new("(@ay)", tkms_torture_ay_bytes(blob)));
		g_autoptr(GBytes) pw = call_bytes("GetSecret", g_variant_new("(ss)", "k-pw", ""));
		tkms_assert_bytes_equal(pt, ref_data);
		tkms_assert_bytes_equal(m, mac);
		tkms_assert_bytes_equal(d, ref_data);
		g_assert_cmpuint(g_bytes_get_size(pw), ==, 32);
	}
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	tkms_test_require_program_or_skip("tpm2_getcap", "tpm2-tools");
	(void)tkms_error_quark();
	env = tkms_test_env_new_or_abort(NULL);
	g_test_add_func("/torture/lockout", test_lockout);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	g_clear_pointer(&ref_data, g_bytes_unref);
	g_clear_pointer(&blob, g_bytes_unref);
	g_clear_pointer(&blob_pcr, g_bytes_unref);
	g_clear_pointer(&ciphertext, g_bytes_unref);
	g_clear_pointer(&ciphertext_pcr, g_bytes_unref);
	g_clear_pointer(&mac, g_bytes_unref);
	g_clear_pointer(&sig, g_bytes_unref);
	return ret;
}
