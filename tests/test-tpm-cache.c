/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-tpm-cache"

/*
 * The loaded-object cache (issue 10): key versions' objects stay loaded in the TPM between
 * calls, bounded by the TPM's free transient slots, and go with a TPM reset or loss, a key's
 * rotation or destruction, and a clean stop.
 *
 * A recording proxy (tests/tkms-test-tpm-proxy.h) sees the TPM commands: between tkmsd and
 * the swtpm, or with TKMS_TEST_TPM_VIA=abrmd (suite abrmd) between tpm2-abrmd and the swtpm.
 * A TPM2_Load there is a load tkmsd asked for either way (the resource manager brings back
 * what it swapped out with TPM2_ContextLoad), so "a hot key costs no TPM2_Load" and "with more
 * hot keys than the cache holds, every call loads" are checked in both set-ups. The bound is
 * the one tkmsd logs at connection ("object cache: keeps at most N"). Without the resource
 * manager the recording also tells which transient objects the TPM holds after every command
 * (loads, flushes, sequences): never more than the SRK and the bound between calls, and none
 * after a clean stop, which tpm2_getcap confirms.
 */

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "tkms-test-tpm-proxy.h"
#include "tkms-test-util.h"

static TkmsTestEnv *env;
static TkmsTestTpmProxy *proxy;
static gchar *record_path;
static gboolean via_abrmd;
#define CLIENT (tkms_test_env_get_client(env))

#define TPM_CC_CREATE_PRIMARY	 0x131
#define TPM_CC_CREATE		 0x153
#define TPM_CC_LOAD		 0x157
#define TPM_CC_HMAC_START	 0x15b
#define TPM_CC_SEQUENCE_COMPLETE 0x13e
#define TPM_CC_CONTEXT_LOAD	 0x161
#define TPM_CC_FLUSH_CONTEXT	 0x165
#define TPM_HT_TRANSIENT	 0x80
/* swtpm's transient object slots */
#define SWTPM_OBJECTS 3

/* ---- the recording: commands and their answers ---- */

static guint
count_since(const TkmsTestTpmMark *mark, guint32 code)
{
	return tkms_test_tpm_proxy_count_since(record_path, mark, code);
}

static gboolean
is_transient(guint32 h)
{
	return h >> 24 == TPM_HT_TRANSIENT;
}

/*
 * The transient objects the TPM holds, followed command by command from the start of the
 * recording (every earlier run's objects were flushed by the run that made them or by the
 * next one's start, which flush_leftovers does: its FlushContexts are recorded too). Without a
 * resource manager only, and only while every command got its answer (no TPM restart yet).
 * *most: the most it held at once, counting TPM2_Create's scratch object.
 */
static GHashTable *
loaded_objects(guint *most)
{
	static const TkmsTestTpmMark start = {{0, 0}};
	g_autoptr(GArray) cmds = tkms_test_tpm_proxy_commands_since(record_path, &start);
	GHashTable *set = g_hash_table_new(NULL, NULL);

	*most = 0;
	for (guint i = 0; i < cmds->len; i++) {
		TkmsTestTpmCommand *c = &g_array_index(cmds, TkmsTestTpmCommand, i);

		g_assert_cmpuint(c->rc, !=, G_MAXUINT32);
		if (c->code == TPM_CC_CREATE)
			*most = MAX(*most, g_hash_table_size(set) + 1);
		if (c->rc != 0)
			continue;
		switch (c->code) {
		case TPM_CC_CREATE_PRIMARY:
		case TPM_CC_LOAD:
		case TPM_CC_HMAC_START:
		case TPM_CC_CONTEXT_LOAD:
			if (is_transient(c->out))
				g_hash_table_add(set, GUINT_TO_POINTER(c->out));
			break;
		case TPM_CC_FLUSH_CONTEXT:
		case TPM_CC_SEQUENCE_COMPLETE:
			g_hash_table_remove(set, GUINT_TO_POINTER(c->handle));
			break;
		default:
			break;
		}
		*most = MAX(*most, g_hash_table_size(set));
	}
	return set;
}

/* The bound tkmsd's last connection logged. */
static guint
cache_limit(void)
{
	g_autofree gchar *log = tkms_test_env_get_daemon_log(env);
	const gchar *p = log, *last = NULL;
	static const gchar needle[] = "object cache: keeps at most ";

	while ((p = strstr(p, needle)) != NULL) {
		last = p + strlen(needle);
		p = last;
	}
	g_assert_nonnull(last);
	return (guint)g_ascii_strtoull(last, NULL, 10);
}

/* ---- calls ---- */

static GBytes *
sign_ok(const gchar *name, GBytes *data)
{
	g_autoptr(GError) error = NULL;
	GBytes *sig = tkms_client_sign_sync(CLIENT, name, data, NULL, &error);

	g_assert_no_error(error);
	return sig;
}

static GBytes *
decrypt_ok(const gchar *name, GBytes *ct)
{
	g_autoptr(GError) error = NULL;
	GBytes *pt = tkms_client_decrypt_sync(CLIENT, name, ct, NULL, NULL, &error);

	g_assert_no_error(error);
	return pt;
}

/* Verifies sig over data with the key's current public key, in OpenSSL: it proves which
 * version signed (tkmsd's Verify would try them all). */
static gboolean
signed_by_primary(const gchar *name, GBytes *data, GBytes *sig)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *pem = tkms_client_get_public_key_sync(CLIENT, name, NULL, &error);
	BIO *bio;
	EVP_PKEY *pkey;
	EVP_MD_CTX *md;
	gboolean ok;

	g_assert_no_error(error);
	bio = BIO_new_mem_buf(pem, -1);
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	g_assert_nonnull(pkey);
	md = EVP_MD_CTX_new();
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	     EVP_DigestVerify(md, g_bytes_get_data(sig, NULL), g_bytes_get_size(sig),
			      g_bytes_get_data(data, NULL), g_bytes_get_size(data)) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	return ok;
}

static GPtrArray *
items(guint n)
{
	GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);

	for (guint i = 0; i < n; i++)
		g_ptr_array_add(a, tkms_test_bytes_pattern(40, i));
	return a;
}

/* Without a resource manager: between calls the TPM holds the SRK and at most the bound, and
 * never more than its slots at once. */
static void
assert_within_bound(void)
{
	guint most = 0;
	g_autoptr(GHashTable) set = NULL;

	if (via_abrmd)
		return;
	set = loaded_objects(&most);
	g_assert_cmpuint(g_hash_table_size(set), <=, 1 + cache_limit());
	g_assert_cmpuint(most, <=, SWTPM_OBJECTS);
}

/* ---- tests ---- */

/* The bound follows the TPM: swtpm has 3 slots, the SRK takes one and one is kept for a load
 * in flight; through tpm2-abrmd the TPM reports all of its slots free. */
static void
test_bound(void)
{
	g_autofree gchar *name = tkms_test_key_name("cache-bound");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "ecdsa-p256", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("bound");
	g_autoptr(GBytes) sig = sign_ok(name, data);

	g_test_message("object cache bound: %u", cache_limit());
	g_assert_cmpuint(cache_limit(), ==, via_abrmd ? SWTPM_OBJECTS - 1 : SWTPM_OBJECTS - 2);
	assert_within_bound();
}

/* A hot key's second use, and every one after, sends no TPM2_Load: Sign (ECDSA and RSA),
 * Hmac (one command and a sequence), Decrypt (KeyTtl=0: every Decrypt unseals), a PCR-bound
 * key, SignBatch and HmacBatch. The results stay right. */
static void
test_hot_keys(void)
{
	g_autofree gchar *ec = tkms_test_key_name("cache-ec");
	g_autofree gchar *rsa = tkms_test_key_name("cache-rsa");
	g_autofree gchar *hm = tkms_test_key_name("cache-hmac");
	g_autofree gchar *aes = tkms_test_key_name("cache-aes");
	g_autofree gchar *pcr = tkms_test_key_name("cache-pcr");
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, rsa, "rsa-2048", NULL);
	g_autoptr(GVariant) i3 = tkms_test_create_key(CLIENT, hm, "hmac-sha256", NULL);
	g_autoptr(GVariant) i4 = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
	g_autoptr(GVariant) i5 = NULL;
	g_autoptr(GBytes) data = tkms_test_bytes_str("hot key");
	g_autoptr(GBytes) long_msg = tkms_test_bytes_pattern(5000, 7);
	g_autoptr(GBytes) mac = tkms_test_hmac(CLIENT, hm, data);
	g_autoptr(GBytes) long_mac = tkms_test_hmac(CLIENT, hm, long_msg);
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GError) error = NULL;

	{
		guint32 pcrs[] = {7};
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_variant_dict_insert_value(
			d, "pcrs", g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, pcrs, 1, 4));
		i5 = tkms_test_create_key(CLIENT, pcr, "ecdsa-p256", g_variant_dict_end(d));
	}
	ct = tkms_client_encrypt_sync(CLIENT, aes, data, NULL, NULL, &error);
	g_assert_no_error(error);

	/* one key at a time: the cache holds at least one */
	{
		const gchar *signers[] = {ec, rsa, pcr};
		for (guint k = 0; k < G_N_ELEMENTS(signers); k++) {
			g_autoptr(GBytes) first = sign_ok(signers[k], data);
			TkmsTestTpmMark m = tkms_test_tpm_proxy_mark(record_path);
			for (guint i = 0; i < 5; i++) {
				g_autoptr(GBytes) sig = sign_ok(signers[k], data);
				g_assert_true(signed_by_primary(signers[k], data, sig));
			}
			g_assert_cmpuint(count_since(&m, TPM_CC_LOAD), ==, 0);
			assert_within_bound();
		}
	}
	{
		g_autoptr(GBytes) first = tkms_test_hmac(CLIENT, hm, data);
		TkmsTestTpmMark m = tkms_test_tpm_proxy_mark(record_path);
		for (guint i = 0; i < 5; i++) {
			g_autoptr(GBytes) a = tkms_test_hmac(CLIENT, hm, data);
			g_autoptr(GBytes) b = tkms_test_hmac(CLIENT, hm, long_msg);
			tkms_assert_bytes_equal(a, mac);
			tkms_assert_bytes_equal(b, long_mac);
		}
		g_assert_cmpuint(count_since(&m, TPM_CC_LOAD), ==, 0);
		assert_within_bound();
	}
	{
		g_autoptr(GBytes) first = decrypt_ok(aes, ct);
		TkmsTestTpmMark m = tkms_test_tpm_proxy_mark(record_path);
		for (guint i = 0; i < 5; i++) {
			g_autoptr(GBytes) pt = decrypt_ok(aes, ct);
			tkms_assert_bytes_equal(pt, data);
		}
		/* KeyTtl=0: each Decrypt unsealed (TPM2_Unseal, 0x15e) on the loaded object */
		g_assert_cmpuint(count_since(&m, 0x15e), >=, 5);
		g_assert_cmpuint(count_since(&m, TPM_CC_LOAD), ==, 0);
		assert_within_bound();
	}
	{
		g_autoptr(GPtrArray) msgs = items(8);
		g_autoptr(GPtrArray) first =
			tkms_client_sign_batch_sync(CLIENT, ec, msgs, NULL, &error);
		g_autoptr(GPtrArray) first_macs = NULL;
		TkmsTestTpmMark m;

		g_assert_no_error(error);
		first_macs = tkms_client_hmac_batch_sync(CLIENT, hm, msgs, NULL, &error);
		g_assert_no_error(error);
		m = tkms_test_tpm_proxy_mark(record_path);
		for (guint i = 0; i < 3; i++) {
			g_autoptr(GPtrArray) sigs =
				tkms_client_sign_batch_sync(CLIENT, ec, msgs, NULL, &error);
			g_autoptr(GPtrArray) macs =
				tkms_client_hmac_batch_sync(CLIENT, hm, msgs, NULL, &error);
			g_assert_no_error(error);
			g_assert_cmpuint(sigs->len, ==, msgs->len);
			g_assert_cmpuint(macs->len, ==, msgs->len);
			tkms_assert_bytes_equal(g_ptr_array_index(macs, 3),
						g_ptr_array_index(first_macs, 3));
			g_assert_true(signed_by_primary(ec, g_ptr_array_index(msgs, 5),
							g_ptr_array_index(sigs, 5)));
		}
		/* two keys in turn: both stay loaded where the cache holds two, else each batch
		 * loads its key once */
		g_assert_cmpuint(count_since(&m, TPM_CC_LOAD), ==, cache_limit() >= 2 ? 0 : 6);
		assert_within_bound();
	}
}

/* More hot keys than the cache holds: every call works, the least recently used goes first
 * (with one key more than the bound in turn, every call loads; with the bound's number, none
 * does), and without a resource manager the TPM never holds more than the SRK and the bound
 * between calls. */
static void
test_eviction(void)
{
	guint limit = cache_limit();
	guint n = limit + 2;
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) infos =
		g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
	g_autoptr(GBytes) data = tkms_test_bytes_str("pressure");

	for (guint i = 0; i < n; i++) {
		gchar *name = tkms_test_key_name("cache-evict");
		g_ptr_array_add(names, name);
		g_ptr_array_add(infos,
				tkms_test_create_key(CLIENT, name,
						     i % 2 ? "ecdsa-p256" : "hmac-sha256", NULL));
	}
	/* limit + 1 keys in turn: the one needed next is always the one flushed last */
	for (guint round = 0; round < 3; round++) {
		TkmsTestTpmMark m = tkms_test_tpm_proxy_mark(record_path);
		for (guint i = 0; i < limit + 1; i++) {
			const gchar *name = g_ptr_array_index(names, i);
			g_autoptr(GBytes) out =
				i % 2 ? sign_ok(name, data) : tkms_test_hmac(CLIENT, name, data);
			if (i % 2)
				g_assert_true(signed_by_primary(name, data, out));
			assert_within_bound();
		}
		if (round > 0)
			g_assert_cmpuint(count_since(&m, TPM_CC_LOAD), ==, limit + 1);
	}
	/* the bound's number of keys in turn: after the first round, no load */
	for (guint round = 0; round < 3; round++) {
		TkmsTestTpmMark m = tkms_test_tpm_proxy_mark(record_path);
		for (guint i = 0; i < limit; i++) {
			const gchar *name = g_ptr_array_index(names, n - 1 - i);
			g_autoptr(GBytes) out = (n - 1 - i) % 2
							? sign_ok(name, data)
							: tkms_test_hmac(CLIENT, name, data);
			assert_within_bound();
		}
		if (round > 0)
			g_assert_cmpuint(count_since(&m, TPM_CC_LOAD), ==, 0);
	}
}

/* A loaded key rotated: the old version's object is flushed, the next Sign loads the new
 * version and signs with it. Destroyed: its object is flushed and it signs no more (KeyState:
 * a destroyed key keeps its metadata, tests/test-keys.c). */
static void
test_rotate_destroy(void)
{
	g_autofree gchar *name = tkms_test_key_name("cache-rot");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, name, "ecdsa-p256", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("rotate");
	g_autoptr(GError) error = NULL;
	guint32 h1 = 0, h2 = 0;
	TkmsTestTpmMark m = tkms_test_tpm_proxy_mark(record_path);

	{
		g_autoptr(GBytes) s1 = sign_ok(name, data);
		g_autoptr(GBytes) s2 = sign_ok(name, data);
		g_autoptr(GArray) cmds = tkms_test_tpm_proxy_commands_since(record_path, &m);
		for (guint i = 0; i < cmds->len; i++)
			if (g_array_index(cmds, TkmsTestTpmCommand, i).code == TPM_CC_LOAD)
				h1 = g_array_index(cmds, TkmsTestTpmCommand, i).out;
		g_assert_cmpuint(count_since(&m, TPM_CC_LOAD), ==, 1);
	}
	m = tkms_test_tpm_proxy_mark(record_path);
	g_assert_cmpuint(tkms_client_rotate_key_sync(CLIENT, name, NULL, &error), ==, 2);
	g_assert_no_error(error);
	{
		/* RotateKey derived the new version's auth value (with the daemon key's load) */
		TkmsTestTpmMark rotated = tkms_test_tpm_proxy_mark(record_path);
		g_autoptr(GBytes) sig = sign_ok(name, data);
		g_autoptr(GBytes) again = sign_ok(name, data);
		g_autoptr(GArray) cmds = tkms_test_tpm_proxy_commands_since(record_path, &m);
		gboolean flushed = FALSE;

		g_assert_true(signed_by_primary(name, data, sig));
		g_assert_true(signed_by_primary(name, data, again));
		/* the new version was loaded once; without a resource manager the handles show
		 * that the old one was flushed */
		g_assert_cmpuint(count_since(&rotated, TPM_CC_LOAD), ==, 1);
		for (guint i = 0; i < cmds->len; i++) {
			TkmsTestTpmCommand *c = &g_array_index(cmds, TkmsTestTpmCommand, i);
			if (c->code == TPM_CC_FLUSH_CONTEXT && c->handle == h1 && c->rc == 0)
				flushed = TRUE;
			if (c->code == TPM_CC_LOAD)
				h2 = c->out;
		}
		if (!via_abrmd)
			g_assert_true(flushed);
		assert_within_bound();
	}
	m = tkms_test_tpm_proxy_mark(record_path);
	tkms_client_destroy_key_sync(CLIENT, name, NULL, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GBytes) sig = tkms_client_sign_sync(CLIENT, name, data, NULL, &error);
		g_autoptr(GBytes) r = NULL;
		gint64 deadline =
			g_get_monotonic_time() + 5 * G_USEC_PER_SEC * tkms_test_timeout_factor();
		gboolean flushed = via_abrmd;

		tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
		g_assert_null(sig);
		g_clear_error(&error);
		/* the flush is the TPM worker's next request; GetRandom queues behind it */
		r = tkms_client_get_random_sync(CLIENT, 8, NULL, &error);
		g_assert_no_error(error);
		while (!flushed && g_get_monotonic_time() < deadline) {
			g_autoptr(GArray) cmds =
				tkms_test_tpm_proxy_commands_since(record_path, &m);
			for (guint i = 0; i < cmds->len; i++) {
				TkmsTestTpmCommand *c = &g_array_index(cmds, TkmsTestTpmCommand, i);
				if (c->code == TPM_CC_FLUSH_CONTEXT && c->handle == h2 &&
				    c->rc == 0)
					flushed = TRUE;
			}
			if (!flushed)
				tkms_test_spin(20);
		}
		g_assert_true(flushed);
		g_assert_cmpuint(count_since(&m, TPM_CC_LOAD), ==, 0);
		assert_within_bound();
	}
}

/* A platform reset with tkmsd's connection untouched, as firmware does it. Through
 * tpm2-abrmd, which holds the swtpm's one connection, the swtpm and the resource manager are
 * restarted instead. */
static void
reset_tpm(void)
{
	g_autoptr(GError) error = NULL;

	if (via_abrmd) {
		tkms_test_env_stop_tpm(env, &error);
		g_assert_no_error(error);
		tkms_test_env_start_tpm(env, &error);
	} else {
		tkms_test_swtpm_reset(tkms_test_env_get_swtpm(env), &error);
	}
	g_assert_no_error(error);
}

/* The TPM reset with objects and the shared session loaded: each key works again (at most
 * one TpmUnavailable first), with the same results, and is cached again: no load on its
 * second use after the reset. */
static void
test_tpm_reset(void)
{
	g_autofree gchar *ec = tkms_test_key_name("cache-reset-ec");
	g_autofree gchar *hm = tkms_test_key_name("cache-reset-hmac");
	g_autofree gchar *aes = tkms_test_key_name("cache-reset-aes");
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, hm, "hmac-sha256", NULL);
	g_autoptr(GVariant) i3 = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("reset");
	g_autoptr(GBytes) mac = tkms_test_hmac(CLIENT, hm, data);
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GError) error = NULL;
	gint pid = tkms_test_env_get_daemon_pid(env);

	ct = tkms_client_encrypt_sync(CLIENT, aes, data, NULL, NULL, &error);
	g_assert_no_error(error);
	for (guint round = 0; round < 2; round++) {
		/* Hmac ran in the shared session; the signing key is the most recently used */
		g_autoptr(GBytes) pt = decrypt_ok(aes, ct);
		g_autoptr(GBytes) m1 = tkms_test_hmac(CLIENT, hm, data);
		g_autoptr(GBytes) s1 = sign_ok(ec, data);

		reset_tpm();
		{
			g_autoptr(GBytes) s2 =
				tkms_client_sign_sync(CLIENT, ec, data, NULL, &error);
			if (s2 == NULL) {
				g_test_message("first Sign after the reset: %s", error->message);
				tkms_assert_error(error, TKMS_ERROR_TPM_UNAVAILABLE);
				g_clear_error(&error);
				s2 = sign_ok(ec, data);
			}
			g_assert_true(signed_by_primary(ec, data, s2));
		}
		{
			g_autoptr(GBytes) m2 = tkms_test_hmac(CLIENT, hm, data);
			g_autoptr(GBytes) p2 = decrypt_ok(aes, ct);
			tkms_assert_bytes_equal(m2, mac);
			tkms_assert_bytes_equal(p2, data);
		}
		{
			g_autoptr(GBytes) s3 = sign_ok(ec, data);
			TkmsTestTpmMark m = tkms_test_tpm_proxy_mark(record_path);
			g_autoptr(GBytes) s4 = sign_ok(ec, data);

			/* the last used is cached again */
			g_assert_true(signed_by_primary(ec, data, s4));
			g_assert_cmpuint(count_since(&m, TPM_CC_LOAD), ==, 0);
		}
	}
	g_assert_cmpint(tkms_test_env_get_daemon_pid(env), ==, pid);
}

/* ---- swtpm restarted under load ---- */

typedef struct {
	gchar *keys[3]; /* ecdsa, hmac, aes */
	GBytes *data;
	GBytes *mac;
	GBytes *ct;
	gint stop;
	gint ok;
	gint unavailable;
	gint other;
	GMutex lock;
	gchar *other_message;
} Load;

static gpointer
load_worker(gpointer user_data)
{
	Load *l = user_data;

	for (guint i = 0; !g_atomic_int_get(&l->stop); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = NULL;
		gboolean right = FALSE;

		switch (i % 3) {
		case 0:
			out = tkms_client_sign_sync(CLIENT, l->keys[0], l->data, NULL, &error);
			right = out != NULL && g_bytes_get_size(out) > 0;
			break;
		case 1:
			out = tkms_client_hmac_sync(CLIENT, l->keys[1], l->data, NULL, &error);
			right = out != NULL && g_bytes_equal(out, l->mac);
			break;
		default:
			out = tkms_client_decrypt_sync(CLIENT, l->keys[2], l->ct, NULL, NULL,
						       &error);
			right = out != NULL && g_bytes_equal(out, l->data);
			break;
		}
		if (right)
			g_atomic_int_inc(&l->ok);
		else if (g_error_matches(error, TKMS_ERROR, TKMS_ERROR_TPM_UNAVAILABLE))
			g_atomic_int_inc(&l->unavailable);
		else {
			g_atomic_int_inc(&l->other);
			g_mutex_lock(&l->lock);
			if (l->other_message == NULL)
				l->other_message =
					g_strdup(error != NULL ? error->message : "a wrong result");
			g_mutex_unlock(&l->lock);
		}
	}
	return NULL;
}

/* swtpm stopped and started again while two threads call without pause: failures are
 * TpmUnavailable only, results are never wrong, and once the TPM is back every key works and
 * is cached again. */
static void
test_restart_under_load(void)
{
	Load l = {0};
	const gchar *types[] = {"ecdsa-p256", "hmac-sha256", "aes-256-gcm"};
	g_autoptr(GPtrArray) infos =
		g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
	g_autoptr(GError) error = NULL;
	GThread *threads[2];
	gint ok_before;

	g_mutex_init(&l.lock);
	l.data = tkms_test_bytes_str("under load");
	for (guint i = 0; i < 3; i++) {
		l.keys[i] = tkms_test_key_name("cache-load");
		g_ptr_array_add(infos, tkms_test_create_key(CLIENT, l.keys[i], types[i], NULL));
	}
	l.mac = tkms_test_hmac(CLIENT, l.keys[1], l.data);
	l.ct = tkms_client_encrypt_sync(CLIENT, l.keys[2], l.data, NULL, NULL, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
		threads[i] = g_thread_new("load", load_worker, &l);
	tkms_test_spin(500);
	for (guint cycle = 0; cycle < 2; cycle++) {
		tkms_test_env_stop_tpm(env, &error);
		g_assert_no_error(error);
		tkms_test_spin(300);
		tkms_test_env_start_tpm(env, &error);
		g_assert_no_error(error);
		tkms_test_spin(1500);
	}
	ok_before = g_atomic_int_get(&l.ok);
	/* calls succeed again after the TPM's return (a slow tkmsd, under valgrind, takes longer)
	 */
	{
		gint64 deadline =
			g_get_monotonic_time() + 20 * G_USEC_PER_SEC * tkms_test_timeout_factor();
		while (g_atomic_int_get(&l.ok) <= ok_before && g_get_monotonic_time() < deadline)
			tkms_test_spin(50);
	}
	g_assert_cmpint(g_atomic_int_get(&l.ok), >, ok_before);
	g_atomic_int_set(&l.stop, 1);
	for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
		g_thread_join(threads[i]);
	g_test_message("under load: %d ok, %d TpmUnavailable, %d other (%s)", l.ok, l.unavailable,
		       l.other, l.other_message ? l.other_message : "-");
	g_assert_cmpint(l.other, ==, 0);
	g_assert_cmpint(l.ok, >, 0);
	{
		g_autoptr(GBytes) s = sign_ok(l.keys[0], l.data);
		g_autoptr(GBytes) m = tkms_test_hmac(CLIENT, l.keys[1], l.data);
		g_autoptr(GBytes) p = decrypt_ok(l.keys[2], l.ct);
		TkmsTestTpmMark mk = tkms_test_tpm_proxy_mark(record_path);
		g_autoptr(GBytes) p2 = decrypt_ok(l.keys[2], l.ct);

		g_assert_true(signed_by_primary(l.keys[0], l.data, s));
		tkms_assert_bytes_equal(m, l.mac);
		tkms_assert_bytes_equal(p, l.data);
		tkms_assert_bytes_equal(p2, l.data);
		g_assert_cmpuint(count_since(&mk, TPM_CC_LOAD), ==, 0);
	}
	for (guint i = 0; i < 3; i++)
		g_free(l.keys[i]);
	g_bytes_unref(l.data);
	g_bytes_unref(l.mac);
	g_bytes_unref(l.ct);
	g_free(l.other_message);
	g_mutex_clear(&l.lock);
}

/* After SIGTERM no transient object of tkmsd's is left in the TPM: its cached objects, the
 * SRK and the sessions are flushed. */
static void
test_clean_stop(void)
{
	g_autofree gchar *ec = tkms_test_key_name("cache-stop-ec");
	g_autofree gchar *hm = tkms_test_key_name("cache-stop-hmac");
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, hm, "hmac-sha256", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("stop");
	g_autoptr(GBytes) mac = tkms_test_hmac(CLIENT, hm, data);
	g_autoptr(GBytes) sig = sign_ok(ec, data);
	g_autoptr(GError) error = NULL;
	TkmsTestTpmMark m;

	/* loaded for sure: the second use loads nothing */
	m = tkms_test_tpm_proxy_mark(record_path);
	g_clear_pointer(&sig, g_bytes_unref);
	sig = sign_ok(ec, data);
	g_assert_cmpuint(count_since(&m, TPM_CC_LOAD), ==, 0);

	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	if (via_abrmd) {
		/* tpm2-abrmd flushes what a connection leaves anyway; tkmsd's exit status 0 is
		 * what stop_daemon checked */
		g_test_message("through tpm2-abrmd: the TPM's handles are the resource manager's");
	} else {
		/* straight to the swtpm (tkmsd held its one connection until now) */
		g_autofree gchar *script = g_strdup_printf(
			"set -e; export TPM2TOOLS_TCTI='%s'; test -z \"$(tpm2_getcap "
			"handles-transient)\"; test -z \"$(tpm2_getcap handles-loaded-session)\"",
			tkms_test_swtpm_get_tcti(tkms_test_env_get_swtpm(env)));
		const gchar *argv[] = {"/bin/sh", "-c", script, NULL};
		g_autofree gchar *out = NULL;
		guint most = 0;
		g_autoptr(GHashTable) left = loaded_objects(&most);

		/* the recording agrees: every object loaded was flushed */
		g_assert_cmpuint(g_hash_table_size(left), ==, 0);
		g_assert_cmpint(tkms_test_env_run_status(env, argv, &out), ==, 0);
	}
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GBytes) s = sign_ok(ec, data);
		g_autoptr(GBytes) m2 = tkms_test_hmac(CLIENT, hm, data);
		g_assert_true(signed_by_primary(ec, data, s));
		tkms_assert_bytes_equal(m2, mac);
	}
}

/* Through a resource manager, tkmsd is one of the TPM's users: its connecting again (here a
 * restart) leaves another program's session alone. A resource manager flushes what a closed
 * connection left, and the TPM lists every program's sessions to every connection: flushing
 * what it lists would end the others' work. */
static void
test_others_session(void)
{
	g_autofree gchar *ec = tkms_test_key_name("cache-others-ec");
	g_autoptr(GVariant) info = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("others");
	g_autoptr(GBytes) sig = NULL;
	g_autoptr(GError) error = NULL;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	ESYS_TR session = ESYS_TR_NONE;
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	TPM2B_DIGEST *random = NULL;
	TSS2_RC rc;

	/* the tabrmd TCTI finds tpm2-abrmd on the bus this names */
	g_setenv("DBUS_SYSTEM_BUS_ADDRESS", tkms_test_env_get_bus_address(env), TRUE);
	g_assert_cmphex(Tss2_TctiLdr_Initialize(tkms_test_env_get_tcti(env), &tcti), ==, 0);
	g_assert_cmphex(Esys_Initialize(&esys, tcti, NULL), ==, 0);
	g_assert_cmphex(Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
					      ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_HMAC, &sym,
					      TPM2_ALG_SHA256, &session),
			==, 0);

	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);
	/* tkmsd connected to the TPM again */
	sig = sign_ok(ec, data);
	g_assert_true(signed_by_primary(ec, data, sig));

	/* the other program's session is still there: an audited GetRandom in it */
	g_assert_cmphex(Esys_TRSess_SetAttributes(esys, session,
						  TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_AUDIT,
						  0xff),
			==, 0);
	rc = Esys_GetRandom(esys, session, ESYS_TR_NONE, ESYS_TR_NONE, 8, &random);
	if (rc != TSS2_RC_SUCCESS)
		g_test_fail_printf("another program's session was flushed when tkmsd connected: "
				   "GetRandom in it failed with 0x%x (%s)",
				   rc, Tss2_RC_Decode(rc));
	Esys_Free(random);
	Esys_FlushContext(esys, session);
	Esys_Finalize(&esys);
	Tss2_TctiLdr_Finalize(&tcti);
}

/* [tpm] MaxLoadedObjects=0: nothing is kept, every Sign loads and flushes its key. */
static void
test_cache_off(void)
{
	g_autoptr(TkmsTestEnv) off = tkms_test_env_new_or_abort("[tpm]\nMaxLoadedObjects=0\n");
	TkmsClient *client = tkms_test_env_get_client(off);
	g_autofree gchar *log = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) info = tkms_test_create_key(client, "cache-off", "ecdsa-p256", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("off");

	for (guint i = 0; i < 3; i++) {
		g_autoptr(GBytes) sig =
			tkms_client_sign_sync(client, "cache-off", data, NULL, &error);
		g_assert_no_error(error);
	}
	log = tkms_test_env_get_daemon_log(off);
	g_assert_nonnull(strstr(log, "object cache: keeps at most 0 loaded objects"));
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int ret;

	g_test_init(&argc, &argv, NULL);
	tkms_test_require_program_or_skip("tpm2_getcap", "tpm2-tools");
	/* every Decrypt unseals; a destroyed key is destroyed at once */
	env = tkms_test_env_new_behind_tpm_proxy(
		"[cache]\nKeyTtl=0\n[lifecycle]\nDestroyWaitingPeriod=0\n", &proxy, &record_path);
	via_abrmd = tkms_test_env_tpm_via_abrmd(env);

	/* in this order: the recording's handles are followed until the first reset */
	g_test_add_func("/tpm-cache/bound", test_bound);
	g_test_add_func("/tpm-cache/hot-keys", test_hot_keys);
	g_test_add_func("/tpm-cache/eviction", test_eviction);
	g_test_add_func("/tpm-cache/rotate-destroy", test_rotate_destroy);
	g_test_add_func("/tpm-cache/clean-stop", test_clean_stop);
	g_test_add_func("/tpm-cache/tpm-reset", test_tpm_reset);
	g_test_add_func("/tpm-cache/restart-under-load", test_restart_under_load);
	/* only through a resource manager: a TPM of its own, tkmsd flushes whatever it holds */
	if (via_abrmd)
		g_test_add_func("/tpm-cache/others-session", test_others_session);
	g_test_add_func("/tpm-cache/off", test_cache_off);

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	/* tkmsd first: it holds the proxy's connection */
	tkms_test_env_free(env);
	tkms_test_tpm_proxy_free(proxy);
	g_free(record_path);
	return ret;
}
