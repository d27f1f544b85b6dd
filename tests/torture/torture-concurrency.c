/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "torture-concurrency"

/*
 * Concurrency torture (issue 9): N clients, each on its own bus connection, make M calls
 * each, all at once, mixing every method of org.tkms.KeyManager on keys of every type
 * (aes-256-gcm, hmac-sha256, ecdsa-p256, rsa-2048, password). Every call's outcome is known
 * in advance: each client works on the shared keys (read-only uses whose results are fixed
 * or checkable: a Decrypt of its own Encrypt, a Verify of its own Sign, the reference HMAC,
 * derived key and password) and on keys of its own (a password key it imports into, and a
 * scratch key it walks through the whole life cycle). Some calls are wrong on purpose, and
 * must fail with the error their input deserves (NotFound, AlreadyExists, InvalidArgument,
 * IntegrityFailure, KeyState). Any other outcome fails the test, except a declared Busy
 * (retried). Afterwards tkmsd is the same process, it stops cleanly, and the TPM holds no
 * transient object and no session of it (asked with tpm2_getcap through swtpm); started
 * again, every shared key still gives its reference results.
 *
 * Short form: 8 clients x 100 calls. Long form (TKMS_TORTURE=long): 64 x 1,000.
 * TKMS_TORTURE_CLIENTS / TKMS_TORTURE_CALLS override the figures.
 */

#include <string.h>

#include "tkms-torture.h"

#define CALL_TIMEOUT_MS	   (120 * 1000)
#define MAX_FAILURES_SHOWN 40
#define CT_HEADER_LEN	   12 /* daemon/ciphertext.h: magic, format, version */

static TkmsTestEnv *env;

/* The shared keys and their reference results (made before the clients start). */
#define SH_AES	"sh-aes"
#define SH_HMAC "sh-hmac"
#define SH_EC	"sh-ec"
#define SH_RSA	"sh-rsa"
#define SH_PW	"sh-pw"
static const gchar ref_data[] = "torture reference message";
static const gchar ref_context[] = "torture reference context";
static GBytes *ref_mac;
static GBytes *ref_derived;
static GBytes *ref_password;
static GBytes *ref_plaintext;
static GBytes *ref_ciphertext;

typedef enum {
	OP_ENCRYPT,
	OP_REENCRYPT,
	OP_TAMPERED,
	OP_DATAKEY,
	OP_SIGN,
	OP_SIGN_DIGEST,
	OP_VERIFY_BAD,
	OP_PUBLIC_KEY,
	OP_HMAC,
	OP_DERIVE,
	OP_SEAL,
	OP_UNSEAL_BAD,
	OP_RANDOM,
	OP_INFO,
	OP_LIST,
	OP_SECRET_SHARED,
	OP_SECRET_OWN,
	OP_LIFECYCLE,
	OP_BAD_INPUT,
	N_OPS
} OpKind;

/* How often each operation is chosen (after every client has done each once). */
static const guint op_weight[N_OPS] = {
	[OP_ENCRYPT] = 10,   [OP_REENCRYPT] = 3,   [OP_TAMPERED] = 3,	[OP_DATAKEY] = 3,
	[OP_SIGN] = 5,	     [OP_SIGN_DIGEST] = 3, [OP_VERIFY_BAD] = 3, [OP_PUBLIC_KEY] = 2,
	[OP_HMAC] = 4,	     [OP_DERIVE] = 3,	   [OP_SEAL] = 3,	[OP_UNSEAL_BAD] = 2,
	[OP_RANDOM] = 3,     [OP_INFO] = 3,	   [OP_LIST] = 2,	[OP_SECRET_SHARED] = 3,
	[OP_SECRET_OWN] = 3, [OP_LIFECYCLE] = 2,   [OP_BAD_INPUT] = 3,
};

/* Every method of the interface: each must have been called by the end. */
static const gchar *const all_methods[] = {
	"CreateKey",
	"ListKeys",
	"ListAllKeys",
	"ListKeysPage",
	"ListAllKeysPage",
	"GetKeyInfo",
	"DestroyKey",
	"RotateKey",
	"SetPrimaryVersion",
	"SetKeyVersionState",
	"SetRotationPolicy",
	"DestroyKeyVersion",
	"CancelKeyDestruction",
	"Encrypt",
	"Decrypt",
	"Sign",
	"Verify",
	"GetPublicKey",
	"Hmac",
	"VerifyHmac",
	"DeriveKey",
	"Seal",
	"Unseal",
	"GetRandom",
	"GenerateDataKey",
	"ReEncrypt",
	"SignDigest",
	"VerifyDigest",
	"ImportSecret",
	"GetSecret",
};

typedef struct {
	guint index;
	GDBusConnection *connection;
	GRand *rand;
	guint calls_done;
	guint calls_max;
	guint ops_started;
	guint busy;
	gboolean finished;

	/* the operation under way */
	OpKind op;
	guint stage;
	guint variant;
	gchar *key;
	GBytes *a;
	GBytes *b;
	GBytes *c;

	/* the call in flight */
	const gchar *method;
	GVariant *args;
	const gchar *reply_type;
	gint64 sent;

	/* the client's own keys */
	gchar *pw_name;
	GBytes *pw_current;
	GBytes *pw_previous;
	guint scratch_n;
} Client;

static TkmsTortureStats *stats;
static GPtrArray *failures;
static guint n_failures;
static guint clients_running;
static GMainLoop *loop;

static void client_send(Client *c);
static void client_next(Client *c, GVariant *reply, const GError *error);

G_GNUC_PRINTF(2, 3)
static void
failf(Client *c, const gchar *fmt, ...)
{
	va_list ap;
	g_autofree gchar *msg = NULL;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	n_failures++;
	if (failures->len < MAX_FAILURES_SHOWN)
		g_ptr_array_add(failures, g_strdup_printf("client %u, op %u stage %u: %s", c->index,
							  c->op, c->stage, msg));
}

static GBytes *
random_bytes(Client *c, gsize len)
{
	guint8 *buf = g_malloc(len);

	for (gsize i = 0; i < len; i++)
		buf[i] = (guint8)g_rand_int(c->rand);
	return g_bytes_new_take(buf, len);
}

/* A printable password of 8..64 characters. */
static GBytes *
random_password(Client *c)
{
	gsize len = (gsize)g_rand_int_range(c->rand, 8, 65);
	gchar *buf = g_malloc(len);

	for (gsize i = 0; i < len; i++)
		buf[i] = (gchar)g_rand_int_range(c->rand, 0x21, 0x7f);
	return g_bytes_new_take(buf, len);
}

static void
set_call(Client *c, const gchar *method, GVariant *args, const gchar *reply_type)
{
	g_clear_pointer(&c->args, g_variant_unref);
	c->method = method;
	c->args = g_variant_ref_sink(args);
	c->reply_type = reply_type;
}

/* The reply must be a success; records a failure and ends the operation otherwise. */
static gboolean
expect_ok(Client *c, const GError *error)
{
	g_autofree gchar *outcome = NULL;

	if (error == NULL)
		return TRUE;
	outcome = tkms_torture_outcome(error);
	failf(c, "%s(%s) failed: %s: %s", c->method, c->key ? c->key : "", outcome, error->message);
	return FALSE;
}

/* The reply must be one of the errors named (short names, NULL-terminated). */
static void
expect_error(Client *c, const GError *error, ...)
{
	g_autofree gchar *outcome = tkms_torture_outcome(error);
	g_autoptr(GString) want = g_string_new(NULL);
	const gchar *name;
	va_list ap;

	va_start(ap, error);
	while ((name = va_arg(ap, const gchar *)) != NULL) {
		if (error != NULL && g_str_equal(outcome, name)) {
			va_end(ap);
			return;
		}
		g_string_append_printf(want, "%s%s", want->len ? " or " : "", name);
	}
	va_end(ap);
	failf(c, "%s(%s): expected %s, got %s%s%s", c->method, c->key ? c->key : "", want->str,
	      outcome, error ? ": " : "", error ? error->message : "");
}

static GBytes *
reply_bytes(GVariant *reply, guint index)
{
	g_autoptr(GVariant) v = g_variant_get_child_value(reply, index);
	return tkms_torture_bytes(v);
}

static gboolean
reply_bool(GVariant *reply)
{
	gboolean b = FALSE;
	g_variant_get(reply, "(b)", &b);
	return b;
}

static void
check_bytes(Client *c, const gchar *what, GBytes *got, GBytes *want)
{
	if (!g_bytes_equal(got, want))
		failf(c, "%s: wrong bytes (%zu bytes, expected %zu)", what, g_bytes_get_size(got),
		      g_bytes_get_size(want));
}

/* ---------------------------------------------------------------------------------------- */
/* The operations: each stage checks the previous reply and sets the next call; FALSE ends. */

/* Where the method itself is a variant, the variants take turns rather than being drawn: a
 * short run must call every method (asserted at the end), and a draw could leave one out. */
static gint list_turn, verify_turn, bad_input_turn;

static gint
take_turn(gint *turn, gint n)
{
	return g_atomic_int_add(turn, 1) % n;
}

static gboolean
op_encrypt(Client *c, GVariant *reply, const GError *error)
{
	g_autofree gchar *ctx = g_strdup_printf("ctx-%u", c->index);

	switch (c->stage) {
	case 0: {
		/* mostly small; now and then past 64 KiB, which tkmsd does in a thread */
		gsize len = g_rand_int_range(c->rand, 0, 20) == 0
				    ? (gsize)g_rand_int_range(c->rand, 65537, 131072)
				    : (gsize)g_rand_int_range(c->rand, 1, 2049);
		c->a = random_bytes(c, len);
		set_call(c, "Encrypt",
			 g_variant_new("(s@ay@ay)", SH_AES, tkms_torture_ay_bytes(c->a),
				       tkms_torture_ay_str(ctx)),
			 "(ay)");
		return TRUE;
	}
	case 1:
		if (!expect_ok(c, error))
			return FALSE;
		c->b = reply_bytes(reply, 0);
		set_call(c, "Decrypt",
			 g_variant_new("(s@ay@ay)", SH_AES, tkms_torture_ay_bytes(c->b),
				       tkms_torture_ay_str(ctx)),
			 "(ay)");
		return TRUE;
	case 2:
		if (expect_ok(c, error)) {
			g_autoptr(GBytes) pt = reply_bytes(reply, 0);
			check_bytes(c, "Decrypt of Encrypt", pt, c->a);
		}
		return FALSE;
	}
	g_assert_not_reached();
}

static gboolean
op_reencrypt(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->a = random_bytes(c, g_rand_int_range(c->rand, 1, 512));
		set_call(c, "Encrypt",
			 g_variant_new("(s@ay@ay)", SH_AES, tkms_torture_ay_bytes(c->a),
				       tkms_torture_ay_str("re")),
			 "(ay)");
		return TRUE;
	case 1:
		if (!expect_ok(c, error))
			return FALSE;
		c->b = reply_bytes(reply, 0);
		set_call(c, "ReEncrypt",
			 g_variant_new("(s@ay@ay)", SH_AES, tkms_torture_ay_bytes(c->b),
				       tkms_torture_ay_str("re")),
			 "(ay)");
		return TRUE;
	case 2:
		if (!expect_ok(c, error))
			return FALSE;
		c->c = reply_bytes(reply, 0);
		if (g_bytes_equal(c->b, c->c))
			failf(c, "ReEncrypt returned the same ciphertext (no fresh IV)");
		set_call(c, "Decrypt",
			 g_variant_new("(s@ay@ay)", SH_AES, tkms_torture_ay_bytes(c->c),
				       tkms_torture_ay_str("re")),
			 "(ay)");
		return TRUE;
	case 3:
		if (expect_ok(c, error)) {
			g_autoptr(GBytes) pt = reply_bytes(reply, 0);
			check_bytes(c, "Decrypt of ReEncrypt", pt, c->a);
		}
		return FALSE;
	}
	g_assert_not_reached();
}

/* A ciphertext changed after its header, or given the wrong context: IntegrityFailure. */
static gboolean
op_tampered(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->a = random_bytes(c, g_rand_int_range(c->rand, 1, 256));
		set_call(c, "Encrypt",
			 g_variant_new("(s@ay@ay)", SH_AES, tkms_torture_ay_bytes(c->a),
				       tkms_torture_ay_str("t")),
			 "(ay)");
		return TRUE;
	case 1: {
		gsize len;
		if (!expect_ok(c, error))
			return FALSE;
		c->b = reply_bytes(reply, 0);
		len = g_bytes_get_size(c->b);
		c->variant = g_rand_int_range(c->rand, 0, 2);
		if (c->variant == 0) {
			gsize bit = (gsize)g_rand_int_range(c->rand, CT_HEADER_LEN * 8,
							    (gint32)(len * 8));
			g_autoptr(GBytes) bad = tkms_test_bytes_flip_bit(c->b, bit);
			set_call(c, "Decrypt",
				 g_variant_new("(s@ay@ay)", SH_AES, tkms_torture_ay_bytes(bad),
					       tkms_torture_ay_str("t")),
				 "(ay)");
		} else {
			set_call(c, "Decrypt",
				 g_variant_new("(s@ay@ay)", SH_AES, tkms_torture_ay_bytes(c->b),
					       tkms_torture_ay_str("T")),
				 "(ay)");
		}
		return TRUE;
	}
	case 2:
		expect_error(c, error, "IntegrityFailure", NULL);
		return FALSE;
	}
	g_assert_not_reached();
}

static gboolean
op_datakey(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->variant = g_rand_int_range(c->rand, 1, 65);
		set_call(c, "GenerateDataKey",
			 g_variant_new("(su@ay)", SH_AES, c->variant, tkms_torture_ay_str("dk")),
			 "(ayay)");
		return TRUE;
	case 1:
		if (!expect_ok(c, error))
			return FALSE;
		c->a = reply_bytes(reply, 0);
		c->b = reply_bytes(reply, 1);
		if (g_bytes_get_size(c->a) != c->variant)
			failf(c, "GenerateDataKey: %zu bytes, asked %u", g_bytes_get_size(c->a),
			      c->variant);
		set_call(c, "Decrypt",
			 g_variant_new("(s@ay@ay)", SH_AES, tkms_torture_ay_bytes(c->b),
				       tkms_torture_ay_str("dk")),
			 "(ay)");
		return TRUE;
	case 2:
		if (expect_ok(c, error)) {
			g_autoptr(GBytes) pt = reply_bytes(reply, 0);
			check_bytes(c, "Decrypt of a wrapped data key", pt, c->a);
		}
		return FALSE;
	}
	g_assert_not_reached();
}

static const gchar *
signing_key(Client *c)
{
	/* RSA signing costs swtpm more; one in four */
	return g_rand_int_range(c->rand, 0, 4) == 0 ? SH_RSA : SH_EC;
}

static gboolean
op_sign(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->key = g_strdup(signing_key(c));
		c->a = random_bytes(c, g_rand_int_range(c->rand, 0, 4096));
		set_call(c, "Sign", g_variant_new("(s@ay)", c->key, tkms_torture_ay_bytes(c->a)),
			 "(ay)");
		return TRUE;
	case 1:
		if (!expect_ok(c, error))
			return FALSE;
		c->b = reply_bytes(reply, 0);
		set_call(c, "Verify",
			 g_variant_new("(s@ay@ay)", c->key, tkms_torture_ay_bytes(c->a),
				       tkms_torture_ay_bytes(c->b)),
			 "(b)");
		return TRUE;
	case 2:
		if (expect_ok(c, error) && !reply_bool(reply))
			failf(c, "Verify(%s) of its own Sign is false", c->key);
		return FALSE;
	}
	g_assert_not_reached();
}

static GBytes *
sha256(GBytes *data)
{
	g_autoptr(GChecksum) ck = g_checksum_new(G_CHECKSUM_SHA256);
	guint8 digest[32];
	gsize len = sizeof(digest);

	g_checksum_update(ck, g_bytes_get_data(data, NULL), g_bytes_get_size(data));
	g_checksum_get_digest(ck, digest, &len);
	return g_bytes_new(digest, len);
}

static gboolean
op_sign_digest(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->key = g_strdup(signing_key(c));
		c->a = random_bytes(c, g_rand_int_range(c->rand, 1, 100000));
		c->c = sha256(c->a);
		set_call(c, "SignDigest",
			 g_variant_new("(s@ay)", c->key, tkms_torture_ay_bytes(c->c)), "(ay)");
		return TRUE;
	case 1:
		if (!expect_ok(c, error))
			return FALSE;
		c->b = reply_bytes(reply, 0);
		set_call(c, "VerifyDigest",
			 g_variant_new("(s@ay@ay)", c->key, tkms_torture_ay_bytes(c->c),
				       tkms_torture_ay_bytes(c->b)),
			 "(b)");
		return TRUE;
	case 2:
		if (!expect_ok(c, error))
			return FALSE;
		if (!reply_bool(reply))
			failf(c, "VerifyDigest(%s) of its own SignDigest is false", c->key);
		/* the message's Verify agrees */
		set_call(c, "Verify",
			 g_variant_new("(s@ay@ay)", c->key, tkms_torture_ay_bytes(c->a),
				       tkms_torture_ay_bytes(c->b)),
			 "(b)");
		return TRUE;
	case 3:
		if (expect_ok(c, error) && !reply_bool(reply))
			failf(c, "Verify(%s) of a SignDigest signature is false", c->key);
		return FALSE;
	}
	g_assert_not_reached();
}

/* Signatures and MACs that are not: FALSE, not an error. */
static gboolean
op_verify_bad(Client *c, GVariant *reply, const GError *error)
{
	g_autoptr(GBytes) junk = NULL;

	switch (c->stage) {
	case 0:
		c->variant = take_turn(&verify_turn, 3);
		junk = random_bytes(c, c->variant == 2 ? 32 : g_rand_int_range(c->rand, 0, 600));
		if (c->variant == 2) {
			c->key = g_strdup(SH_HMAC);
			set_call(c, "VerifyHmac",
				 g_variant_new("(s@ay@ay)", c->key, tkms_torture_ay_str(ref_data),
					       tkms_torture_ay_bytes(junk)),
				 "(b)");
		} else {
			c->key = g_strdup(c->variant == 0 ? SH_EC : SH_RSA);
			set_call(c, "Verify",
				 g_variant_new("(s@ay@ay)", c->key, tkms_torture_ay_str(ref_data),
					       tkms_torture_ay_bytes(junk)),
				 "(b)");
		}
		return TRUE;
	case 1:
		if (expect_ok(c, error) && reply_bool(reply))
			failf(c, "%s(%s) of random bytes is true", c->method, c->key);
		return FALSE;
	}
	g_assert_not_reached();
}

static gboolean
op_public_key(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->key = g_strdup(signing_key(c));
		set_call(c, "GetPublicKey", g_variant_new("(s)", c->key), "(s)");
		return TRUE;
	case 1:
		if (expect_ok(c, error)) {
			const gchar *pem = NULL;
			g_variant_get(reply, "(&s)", &pem);
			if (!g_str_has_prefix(pem, "-----BEGIN PUBLIC KEY-----"))
				failf(c, "GetPublicKey(%s) is not a PEM public key", c->key);
		}
		return FALSE;
	}
	g_assert_not_reached();
}

static gboolean
op_hmac(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		/* the reference MAC, or a MAC of a message large enough for the HMAC sequence */
		c->variant = g_rand_int_range(c->rand, 0, 8) == 0;
		c->a = c->variant ? random_bytes(c, g_rand_int_range(c->rand, 1025, 65537))
				  : g_bytes_new_static(ref_data, strlen(ref_data));
		set_call(c, "Hmac", g_variant_new("(s@ay)", SH_HMAC, tkms_torture_ay_bytes(c->a)),
			 "(ay)");
		return TRUE;
	case 1:
		if (!expect_ok(c, error))
			return FALSE;
		c->b = reply_bytes(reply, 0);
		if (!c->variant)
			check_bytes(c, "Hmac of the reference message", c->b, ref_mac);
		set_call(c, "VerifyHmac",
			 g_variant_new("(s@ay@ay)", SH_HMAC, tkms_torture_ay_bytes(c->a),
				       tkms_torture_ay_bytes(c->b)),
			 "(b)");
		return TRUE;
	case 2:
		if (expect_ok(c, error) && !reply_bool(reply))
			failf(c, "VerifyHmac of its own Hmac is false");
		return FALSE;
	}
	g_assert_not_reached();
}

static gboolean
op_derive(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		set_call(c, "DeriveKey",
			 g_variant_new("(s@ayu)", SH_HMAC, tkms_torture_ay_str(ref_context),
				       (guint32)g_bytes_get_size(ref_derived)),
			 "(ay)");
		return TRUE;
	case 1:
		if (expect_ok(c, error)) {
			g_autoptr(GBytes) d = reply_bytes(reply, 0);
			check_bytes(c, "DeriveKey of the reference context", d, ref_derived);
		}
		return FALSE;
	}
	g_assert_not_reached();
}

static gboolean
op_seal(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->a = random_bytes(c, g_rand_int_range(c->rand, 1, 4096));
		set_call(c, "Seal",
			 g_variant_new("(@ay@a{sv})", tkms_torture_ay_bytes(c->a),
				       g_variant_new("a{sv}", NULL)),
			 "(ay)");
		return TRUE;
	case 1:
		if (!expect_ok(c, error))
			return FALSE;
		c->b = reply_bytes(reply, 0);
		set_call(c, "Unseal", g_variant_new("(@ay)", tkms_torture_ay_bytes(c->b)), "(ay)");
		return TRUE;
	case 2:
		if (expect_ok(c, error)) {
			g_autoptr(GBytes) d = reply_bytes(reply, 0);
			check_bytes(c, "Unseal of Seal", d, c->a);
		}
		return FALSE;
	}
	g_assert_not_reached();
}

static gboolean
op_unseal_bad(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->a = random_bytes(c, g_rand_int_range(c->rand, 0, 1024));
		set_call(c, "Unseal", g_variant_new("(@ay)", tkms_torture_ay_bytes(c->a)), "(ay)");
		return TRUE;
	case 1:
		/* not a blob at all, or one whose parts do not authenticate */
		expect_error(c, error, "InvalidArgument", "IntegrityFailure", NULL);
		return FALSE;
	}
	g_assert_not_reached();
}

static gboolean
op_random(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->variant = g_rand_int_range(c->rand, 1, 4097);
		set_call(c, "GetRandom", g_variant_new("(u)", c->variant), "(ay)");
		return TRUE;
	case 1:
		if (expect_ok(c, error)) {
			g_autoptr(GBytes) r = reply_bytes(reply, 0);
			if (g_bytes_get_size(r) != c->variant)
				failf(c, "GetRandom(%u) gave %zu bytes", c->variant,
				      g_bytes_get_size(r));
		}
		return FALSE;
	}
	g_assert_not_reached();
}

static const gchar *const shared_keys[] = {SH_AES, SH_HMAC, SH_EC, SH_RSA, SH_PW};
static const gchar *const shared_types[] = {"aes-256-gcm", "hmac-sha256", "ecdsa-p256", "rsa-2048",
					    "password"};

static gboolean
op_info(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->variant = g_rand_int_range(c->rand, 0, G_N_ELEMENTS(shared_keys));
		c->key = g_strdup(shared_keys[c->variant]);
		set_call(c, "GetKeyInfo", g_variant_new("(s)", c->key), "(a{sv})");
		return TRUE;
	case 1:
		if (expect_ok(c, error)) {
			g_autoptr(GVariant) info = g_variant_get_child_value(reply, 0);
			const gchar *name = NULL, *type = NULL;
			g_variant_lookup(info, "name", "&s", &name);
			g_variant_lookup(info, "type", "&s", &type);
			if (g_strcmp0(name, c->key) != 0 ||
			    g_strcmp0(type, shared_types[c->variant]) != 0)
				failf(c, "GetKeyInfo(%s): name %s, type %s", c->key, name, type);
		}
		return FALSE;
	}
	g_assert_not_reached();
}

static gboolean
list_has(GVariant *keys, const gchar *name)
{
	GVariantIter it;
	GVariant *info;

	g_variant_iter_init(&it, keys);
	while ((info = g_variant_iter_next_value(&it)) != NULL) {
		const gchar *n = NULL;
		gboolean match = g_variant_lookup(info, "name", "&s", &n) && g_str_equal(n, name);
		g_variant_unref(info);
		if (match)
			return TRUE;
	}
	return FALSE;
}

static gboolean
op_list(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->variant = take_turn(&list_turn, 4);
		switch (c->variant) {
		case 0:
			set_call(c, "ListKeys", g_variant_new("()"), "(aa{sv})");
			break;
		case 1:
			set_call(c, "ListAllKeys", g_variant_new("()"), "(aa{sv})");
			break;
		case 2:
			set_call(c, "ListKeysPage", g_variant_new("(su)", "", 7), "(aa{sv}s)");
			break;
		default:
			set_call(c, "ListAllKeysPage", g_variant_new("(su)", "", 7), "(aa{sv}s)");
			break;
		}
		return TRUE;
	case 1: {
		g_autoptr(GVariant) keys = NULL;
		const gchar *token = NULL;
		if (!expect_ok(c, error))
			return FALSE;
		keys = g_variant_get_child_value(reply, 0);
		if (c->variant < 2) {
			if (!list_has(keys, SH_AES))
				failf(c, "%s does not list %s", c->method, SH_AES);
			return FALSE;
		}
		/* a page holds at most page_size keys; the token leads to the next */
		if (g_variant_n_children(keys) > 7)
			failf(c, "%s(7) gave %zu keys", c->method, g_variant_n_children(keys));
		g_variant_get_child(reply, 1, "&s", &token);
		if (*token == '\0')
			return FALSE;
		set_call(c, c->method, g_variant_new("(su)", token, 7), "(aa{sv}s)");
		return TRUE;
	}
	case 2:
		expect_ok(c, error);
		return FALSE;
	}
	g_assert_not_reached();
}

static gboolean
op_secret_shared(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		set_call(c, "GetSecret",
			 g_variant_new("(ss)", SH_PW, g_rand_boolean(c->rand) ? "" : "current"),
			 "(ay)");
		return TRUE;
	case 1:
		if (expect_ok(c, error)) {
			g_autoptr(GBytes) s = reply_bytes(reply, 0);
			check_bytes(c, "GetSecret of the shared password", s, ref_password);
		}
		return FALSE;
	}
	g_assert_not_reached();
}

/* ImportSecret into the client's own password key, then both stages read back. */
static gboolean
op_secret_own(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->key = g_strdup(c->pw_name);
		c->a = random_password(c);
		set_call(c, "ImportSecret",
			 g_variant_new("(s@ay)", c->key, tkms_torture_ay_bytes(c->a)), "(u)");
		return TRUE;
	case 1:
		if (!expect_ok(c, error))
			return FALSE;
		g_clear_pointer(&c->pw_previous, g_bytes_unref);
		c->pw_previous = g_steal_pointer(&c->pw_current);
		c->pw_current = g_bytes_ref(c->a);
		set_call(c, "GetSecret", g_variant_new("(ss)", c->key, "current"), "(ay)");
		return TRUE;
	case 2:
		if (!expect_ok(c, error))
			return FALSE;
		{
			g_autoptr(GBytes) s = reply_bytes(reply, 0);
			check_bytes(c, "GetSecret(current) after ImportSecret", s, c->pw_current);
		}
		set_call(c, "GetSecret", g_variant_new("(ss)", c->key, "previous"), "(ay)");
		return TRUE;
	case 3:
		if (expect_ok(c, error)) {
			g_autoptr(GBytes) s = reply_bytes(reply, 0);
			check_bytes(c, "GetSecret(previous) after ImportSecret", s, c->pw_previous);
		}
		return FALSE;
	}
	g_assert_not_reached();
}

/* A scratch key of the client's walked through its whole life cycle, every step valid. */
static gboolean
op_lifecycle(Client *c, GVariant *reply, const GError *error)
{
	static const gchar *const types[] = {"aes-256-gcm", "hmac-sha256", "ecdsa-p256"};

	if (c->stage > 0 && !expect_ok(c, error))
		return FALSE;
	switch (c->stage) {
	case 0: {
		/* RSA key generation is slow in swtpm: one scratch key in 16 */
		const gchar *type = g_rand_int_range(c->rand, 0, 16) == 0
					    ? "rsa-2048"
					    : types[g_rand_int_range(c->rand, 0, 3)];
		c->key = g_strdup_printf("c%u-s%u", c->index, c->scratch_n++);
		set_call(c, "CreateKey",
			 g_variant_new("(ss@a{sv})", c->key, type, g_variant_new("a{sv}", NULL)),
			 "(a{sv})");
		return TRUE;
	}
	case 1:
		set_call(c, "RotateKey", g_variant_new("(s)", c->key), "(u)");
		return TRUE;
	case 2: {
		guint32 v = 0;
		g_variant_get(reply, "(u)", &v);
		if (v != 2)
			failf(c, "RotateKey(%s) made version %u, not 2", c->key, v);
		set_call(c, "SetPrimaryVersion", g_variant_new("(su)", c->key, 1), "()");
		return TRUE;
	}
	case 3:
		set_call(c, "SetKeyVersionState", g_variant_new("(sus)", c->key, 2, "deactivated"),
			 "()");
		return TRUE;
	case 4:
		set_call(c, "SetKeyVersionState", g_variant_new("(sus)", c->key, 2, "active"),
			 "()");
		return TRUE;
	case 5:
		set_call(c, "SetPrimaryVersion", g_variant_new("(su)", c->key, 2), "()");
		return TRUE;
	case 6:
		set_call(c, "DestroyKeyVersion", g_variant_new("(su)", c->key, 1), "()");
		return TRUE;
	case 7:
		set_call(c, "CancelKeyDestruction", g_variant_new("(su)", c->key, 1), "()");
		return TRUE;
	case 8: {
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_variant_dict_insert(d, "period", "t", (guint64)86400);
		g_variant_dict_insert(d, "deactivate-after", "t", (guint64)3600);
		set_call(c, "SetRotationPolicy",
			 g_variant_new("(s@a{sv})", c->key, g_variant_dict_end(d)), "()");
		return TRUE;
	}
	case 9:
		set_call(c, "GetKeyInfo", g_variant_new("(s)", c->key), "(a{sv})");
		return TRUE;
	case 10: {
		g_autoptr(GVariant) info = g_variant_get_child_value(reply, 0);
		guint32 primary = 0;
		g_autoptr(GVariant) policy = NULL;
		g_variant_lookup(info, "primary-version", "u", &primary);
		policy = g_variant_lookup_value(info, "policy", G_VARIANT_TYPE_VARDICT);
		if (primary != 2 || policy == NULL || g_variant_n_children(policy) == 0)
			failf(c, "GetKeyInfo(%s): primary %u, policy %s", c->key, primary,
			      policy ? "set" : "missing");
		set_call(c, "DestroyKey", g_variant_new("(s)", c->key), "()");
		return TRUE;
	}
	case 11:
		set_call(c, "CancelKeyDestruction", g_variant_new("(su)", c->key, 0), "()");
		return TRUE;
	case 12:
		set_call(c, "DestroyKey", g_variant_new("(s)", c->key), "()");
		return TRUE;
	case 13:
		return FALSE;
	}
	g_assert_not_reached();
}

/* Calls that are wrong, and the error each deserves. */
static gboolean
op_bad_input(Client *c, GVariant *reply, const GError *error)
{
	switch (c->stage) {
	case 0:
		c->variant = take_turn(&bad_input_turn, 8);
		switch (c->variant) {
		case 0:
			set_call(c, "GetKeyInfo", g_variant_new("(s)", "no-such-key"), "(a{sv})");
			break;
		case 1:
			set_call(c, "CreateKey",
				 g_variant_new("(ss@a{sv})", SH_AES, "aes-256-gcm",
					       g_variant_new("a{sv}", NULL)),
				 "(a{sv})");
			break;
		case 2:
			set_call(c, "CreateKey",
				 g_variant_new("(ss@a{sv})", "bad-type", "des",
					       g_variant_new("a{sv}", NULL)),
				 "(a{sv})");
			break;
		case 3:
			set_call(c, "Encrypt",
				 g_variant_new("(s@ay@ay)", "bad/name", tkms_torture_ay_str("x"),
					       tkms_torture_ay_str("")),
				 "(ay)");
			break;
		case 4:
			set_call(c, "SetKeyVersionState",
				 g_variant_new("(sus)", SH_AES, 1, "deactivated"), "()");
			break;
		case 5:
			set_call(c, "GetSecret", g_variant_new("(ss)", SH_AES, ""), "(ay)");
			break;
		case 6:
			set_call(c, "GetRandom", g_variant_new("(u)", 0), "(ay)");
			break;
		default:
			set_call(c, "Hmac",
				 g_variant_new("(s@ay)", SH_EC, tkms_torture_ay_str("x")), "(ay)");
			break;
		}
		return TRUE;
	case 1: {
		static const gchar *const expected[] = {
			"NotFound", "AlreadyExists",   "InvalidArgument", "InvalidArgument",
			"KeyState", "InvalidArgument", "InvalidArgument", "InvalidArgument",
		};
		expect_error(c, error, expected[c->variant], NULL);
		return FALSE;
	}
	}
	g_assert_not_reached();
}

typedef gboolean (*OpFunc)(Client *c, GVariant *reply, const GError *error);
static const OpFunc op_funcs[N_OPS] = {
	[OP_ENCRYPT] = op_encrypt,
	[OP_REENCRYPT] = op_reencrypt,
	[OP_TAMPERED] = op_tampered,
	[OP_DATAKEY] = op_datakey,
	[OP_SIGN] = op_sign,
	[OP_SIGN_DIGEST] = op_sign_digest,
	[OP_VERIFY_BAD] = op_verify_bad,
	[OP_PUBLIC_KEY] = op_public_key,
	[OP_HMAC] = op_hmac,
	[OP_DERIVE] = op_derive,
	[OP_SEAL] = op_seal,
	[OP_UNSEAL_BAD] = op_unseal_bad,
	[OP_RANDOM] = op_random,
	[OP_INFO] = op_info,
	[OP_LIST] = op_list,
	[OP_SECRET_SHARED] = op_secret_shared,
	[OP_SECRET_OWN] = op_secret_own,
	[OP_LIFECYCLE] = op_lifecycle,
	[OP_BAD_INPUT] = op_bad_input,
};

/* ---------------------------------------------------------------------------------------- */
/* Clients                                                                                   */

static OpKind
pick_op(Client *c)
{
	guint total = 0, r;

	/* every client does each operation once first, each starting elsewhere */
	if (c->ops_started < N_OPS)
		return (OpKind)((c->ops_started + c->index) % N_OPS);
	for (guint i = 0; i < N_OPS; i++)
		total += op_weight[i];
	r = (guint)g_rand_int_range(c->rand, 0, (gint32)total);
	for (guint i = 0; i < N_OPS; i++) {
		if (r < op_weight[i])
			return (OpKind)i;
		r -= op_weight[i];
	}
	g_assert_not_reached();
}

static void
clear_op(Client *c)
{
	g_clear_pointer(&c->key, g_free);
	g_clear_pointer(&c->a, g_bytes_unref);
	g_clear_pointer(&c->b, g_bytes_unref);
	g_clear_pointer(&c->c, g_bytes_unref);
	c->stage = 0;
	c->variant = 0;
}

static void
client_finish(Client *c)
{
	c->finished = TRUE;
	clear_op(c);
	g_clear_pointer(&c->args, g_variant_unref);
	if (--clients_running == 0)
		g_main_loop_quit(loop);
}

static void
on_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Client *c = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
		g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
	g_autofree gchar *outcome = tkms_torture_outcome(error);

	tkms_torture_stats_add(stats, c->method, outcome, g_get_monotonic_time() - c->sent);
	if (g_str_equal(outcome, "Busy")) {
		/* declared back-pressure: the call was not done; send it again */
		c->busy++;
		client_send(c);
		return;
	}
	c->calls_done++;
	client_next(c, reply, error);
}

static void
client_send(Client *c)
{
	c->sent = g_get_monotonic_time();
	g_dbus_connection_call(c->connection, TKMS_BUS_NAME, TKMS_OBJECT_PATH,
			       "org.tkms.KeyManager", c->method, c->args,
			       G_VARIANT_TYPE(c->reply_type), G_DBUS_CALL_FLAGS_NONE,
			       CALL_TIMEOUT_MS, NULL, on_reply, c);
}

static void
client_next(Client *c, GVariant *reply, const GError *error)
{
	gboolean more;

	if (c->method != NULL) {
		c->stage++;
		more = op_funcs[c->op](c, reply, error);
	} else {
		more = FALSE;
	}
	if (c->calls_done >= c->calls_max) {
		client_finish(c);
		return;
	}
	if (!more) {
		clear_op(c);
		c->op = pick_op(c);
		c->ops_started++;
		more = op_funcs[c->op](c, NULL, NULL);
		g_assert_true(more);
	}
	client_send(c);
}

/* ---------------------------------------------------------------------------------------- */
/* The test                                                                                  */

static GBytes *
call_bytes(const gchar *method, GVariant *args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = tkms_torture_call_sync(tkms_test_env_get_connection(env), method,
						       args, "(ay)", 60000, &error);
	g_assert_no_error(error);
	return reply_bytes(r, 0);
}

static void
make_shared_keys(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);

	for (guint i = 0; i < G_N_ELEMENTS(shared_keys); i++) {
		g_autoptr(GVariant) info =
			tkms_test_create_key(client, shared_keys[i], shared_types[i], NULL);
	}
	ref_mac =
		call_bytes("Hmac", g_variant_new("(s@ay)", SH_HMAC, tkms_torture_ay_str(ref_data)));
	ref_derived = call_bytes("DeriveKey", g_variant_new("(s@ayu)", SH_HMAC,
							    tkms_torture_ay_str(ref_context), 48));
	ref_password = call_bytes("GetSecret", g_variant_new("(ss)", SH_PW, "current"));
	ref_plaintext = tkms_test_bytes_pattern(3000, 9);
	ref_ciphertext = call_bytes("Encrypt", g_variant_new("(s@ay@ay)", SH_AES,
							     tkms_torture_ay_bytes(ref_plaintext),
							     tkms_torture_ay_str("ref")));
}

/* Every shared key still gives its reference results. */
static void
check_shared_keys(void)
{
	g_autoptr(GBytes) mac =
		call_bytes("Hmac", g_variant_new("(s@ay)", SH_HMAC, tkms_torture_ay_str(ref_data)));
	g_autoptr(GBytes) derived =
		call_bytes("DeriveKey",
			   g_variant_new("(s@ayu)", SH_HMAC, tkms_torture_ay_str(ref_context), 48));
	g_autoptr(GBytes) password =
		call_bytes("GetSecret", g_variant_new("(ss)", SH_PW, "current"));
	g_autoptr(GBytes) plaintext = call_bytes(
		"Decrypt", g_variant_new("(s@ay@ay)", SH_AES, tkms_torture_ay_bytes(ref_ciphertext),
					 tkms_torture_ay_str("ref")));
	g_autoptr(GBytes) data = tkms_test_bytes_str("after");

	tkms_assert_bytes_equal(mac, ref_mac);
	tkms_assert_bytes_equal(derived, ref_derived);
	tkms_assert_bytes_equal(password, ref_password);
	tkms_assert_bytes_equal(plaintext, ref_plaintext);
	for (guint i = 0; i < 2; i++) {
		const gchar *key = i == 0 ? SH_EC : SH_RSA;
		g_autoptr(GBytes) sig = call_bytes(
			"Sign", g_variant_new("(s@ay)", key, tkms_torture_ay_bytes(data)));
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) r = tkms_torture_call_sync(
			tkms_test_env_get_connection(env), "Verify",
			g_variant_new("(s@ay@ay)", key, tkms_torture_ay_bytes(data),
				      tkms_torture_ay_bytes(sig)),
			"(b)", 60000, &error);
		g_assert_no_error(error);
		g_assert_true(reply_bool(r));
	}
}

static void
test_concurrency(void)
{
	guint n_clients = tkms_torture_figure("TKMS_TORTURE_CLIENTS", 8, 64);
	guint n_calls = tkms_torture_figure("TKMS_TORTURE_CALLS", 100, 1000);
	guint32 seed = tkms_torture_seed();
	g_autofree Client *clients = g_new0(Client, n_clients);
	gint pid = tkms_test_env_get_daemon_pid(env);
	guint64 rss_before = tkms_torture_rss_kib(pid), rss_after;
	guint busy = 0;
	gint64 start;
	gdouble seconds;

	make_shared_keys();
	stats = tkms_torture_stats_new();
	failures = g_ptr_array_new_with_free_func(g_free);
	loop = g_main_loop_new(NULL, FALSE);

	for (guint i = 0; i < n_clients; i++) {
		Client *c = &clients[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) info = NULL;

		c->index = i;
		c->rand = g_rand_new_with_seed(seed + i);
		c->connection = tkms_torture_connect(env);
		c->calls_max = n_calls;
		c->pw_name = g_strdup_printf("c%u-pw", i);
		info = tkms_test_create_key(tkms_test_env_get_client(env), c->pw_name, "password",
					    NULL);
		c->pw_current =
			call_bytes("GetSecret", g_variant_new("(ss)", c->pw_name, "current"));
	}
	g_test_message("%u clients x %u calls", n_clients, n_calls);
	start = g_get_monotonic_time();
	clients_running = n_clients;
	for (guint i = 0; i < n_clients; i++)
		client_next(&clients[i], NULL, NULL);
	g_main_loop_run(loop);
	seconds = (g_get_monotonic_time() - start) / 1e6;

	rss_after = tkms_torture_rss_kib(pid);
	for (guint i = 0; i < n_clients; i++)
		busy += clients[i].busy;
	tkms_torture_stats_print(stats, "concurrency");
	g_test_message("%.1f s, %.0f calls/s; Busy (retried): %u; tkmsd VmRSS %" G_GUINT64_FORMAT
		       " KiB before, %" G_GUINT64_FORMAT " KiB after",
		       seconds, tkms_torture_stats_total(stats) / seconds, busy, rss_before,
		       rss_after);
	for (guint i = 0; i < failures->len; i++)
		g_test_message("FAILURE %s", (const gchar *)g_ptr_array_index(failures, i));
	g_assert_cmpuint(n_failures, ==, 0);

	/* every method was called, and tkmsd is the same process (no crash, no restart) */
	for (guint i = 0; i < G_N_ELEMENTS(all_methods); i++) {
		if (tkms_torture_stats_count(stats, all_methods[i], NULL) == 0)
			g_error("%s was never called", all_methods[i]);
	}
	g_assert_cmpint(tkms_test_env_get_daemon_pid(env), ==, pid);

	/* A clean stop leaves nothing of tkmsd's in the TPM (tkmsd is started again after). */
	tkms_torture_assert_tpm_empty(env);
	check_shared_keys();

	for (guint i = 0; i < n_clients; i++) {
		Client *c = &clients[i];
		g_dbus_connection_close_sync(c->connection, NULL, NULL);
		g_object_unref(c->connection);
		g_rand_free(c->rand);
		g_free(c->pw_name);
		g_clear_pointer(&c->pw_current, g_bytes_unref);
		g_clear_pointer(&c->pw_previous, g_bytes_unref);
	}
	g_main_loop_unref(loop);
	g_clear_pointer(&stats, tkms_torture_stats_free);
	g_clear_pointer(&failures, g_ptr_array_unref);
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	tkms_test_require_program_or_skip("tpm2_getcap", "tpm2-tools");
	/* every error name maps to TKMS_ERROR (tkms_torture_outcome reads the D-Bus name) */
	(void)tkms_error_quark();
	env = tkms_test_env_new_or_abort(NULL);
	g_test_add_func("/torture/concurrency", test_concurrency);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	g_clear_pointer(&ref_mac, g_bytes_unref);
	g_clear_pointer(&ref_derived, g_bytes_unref);
	g_clear_pointer(&ref_password, g_bytes_unref);
	g_clear_pointer(&ref_plaintext, g_bytes_unref);
	g_clear_pointer(&ref_ciphertext, g_bytes_unref);
	return ret;
}
