/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-dbus-fuzzer"

/*
 * A D-Bus fuzzer for tkmsd (torture-dbus-fuzz, issue 9), run as root or as another user.
 *
 *   tkms-dbus-fuzzer [--extremes|--all-extremes] [--max-size BYTES]
 *                    CALLS SEED [NAME...]
 *
 * Talks to the bus in $TKMS_TEST_BUS_ADDRESS with GDBus's low-level API (GDBusMessage, one call
 * in flight, so that each reply's time is the daemon's answer to that call alone) and, for
 * what GDBus cannot send, over a raw socket of its own. First it makes keys of its own with
 * valid calls (their ciphertexts, blobs, signatures and MACs are the seeds it mutates), then
 * (--extremes) sends a fixed set of extreme messages (a body over the bus's 32 MiB message
 * limit, one just under it, 300,000 options, 100,000 byte arrays, deep nesting; with
 * --all-extremes also 32 MiB Seal and Unseal, a 16 MiB string, 4 million PCRs, a million
 * strings), then CALLS random
 * calls: a method of org.tkms.KeyManager (or another member, interface or path now and then),
 * with arguments of the right types (60%: names aimed at the NAMEs given, at OWNER:NAME forms,
 * at its own keys or invalid; lengths and versions at their limits; options of the right and
 * wrong types) or of wrong ones, with payloads from empty to 33 MiB (--max-size); and one call in
 * 50 sent raw and malformed (bad UTF-8 in a string, a NUL in a string, a wrong body length, a wrong
 * signature, an array length past the body, random bytes flipped, a truncated message).
 *
 * Output, one line each:
 *   SLOW <ms> <method> <signature> <body bytes> <outcome> <heavy|light>
 *       a reply later than 1 s; heavy: the body is over 2 MiB or holds over 10,000 values
 *   BUSTIME <what> <body bytes> <ms>    what the bus alone takes to receive the body of an
 *       extreme message and refuse it (GetNameOwner of the bus itself with that body)
 *   NOREPLY <method> <signature> <body bytes> <why> <flags>  no reply (why: timeout or
 *       closed, the bus dropped the connection; flags: over-limit when the message exceeds
 *       the bus's 32 MiB limit, deep when its nesting exceeds D-Bus's 32 levels, - else)
 *   RAW <corruption> <result> <count>
 *       what came within 1 s: disconnected (the bus dropped the sender), error (an error
 *       reply, from the bus or tkmsd), reply (a method return), timeout (nothing),
 *       waiting (nothing, where the bus still waits for the rest of a message), or
 *       unanswerable (nothing, for flips that left a message owing no answer: not one
 *       whole message, not a method call, no reply expected, or another serial)
 *   RAWDETAIL <corruption> ...   what a raw message that got no answer looked like
 *   OUTCOME <method> <outcome> <count> <max ms>
 *       outcome: OK, the short name of a tkms error, or another D-Bus error name
 *   TOTAL calls=<n> raw=<n> replies=<n> noreply=<n> reconnects=<n> p50_ms=<n> p99_ms=<n>
 *         max_ms=<n> mib=<n>     (p50, p99 and max over every reply)
 * Exit status 0 once it ran; 1 for a usage error or a bus it cannot reach.
 * TKMS_FUZZER_TRACE=PID prints every call, its time and tkmsd's VmRSS (PID) on stderr.
 */

#include <errno.h>
#include <gio/gio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEST		"org.tkms.KeyManager"
#define PATH		"/org/tkms/KeyManager"
#define IFACE		"org.tkms.KeyManager"
#define ERROR_PREFIX	"org.tkms.KeyManager.Error."
#define CALL_TIMEOUT_MS 30000
#define SLOW_MS		1000
/* A message is heavy when its body is over 2 MiB or holds over 10,000 values: more than any
 * legitimate call carries (MaxPayload is 1 MiB), and more than the bus itself forwards within
 * a second on a loaded machine. */
#define HEAVY_BYTES	  (2 * 1024 * 1024)
#define HEAVY_VALUES	  10000
#define BUS_MESSAGE_LIMIT (32 * 1024 * 1024)
#define MAX_PAYLOAD	  (1024 * 1024)

static GRand *rnd;
static const gchar *bus_address;
static GDBusConnection *conn;
static gchar **targets; /* NAMEs given */
static guint64 n_calls, n_raw, n_replies, n_noreply, n_reconnects, max_ms, bytes_sent;
static GArray *latencies;		  /* guint32 ms of every reply */
static gsize max_size = 33 * MAX_PAYLOAD; /* --max-size: random payloads at most this long */
static GHashTable *outcomes;		  /* "method outcome" -> Outcome */
static GHashTable *raw_results;		  /* "kind result" -> count */

/* Material of the fuzzer's own keys, to mutate. */
static GPtrArray *seeds_ct, *seeds_blob, *seeds_sig, *seeds_mac;

typedef struct {
	guint64 count;
	guint64 max_ms;
} Outcome;

/* ---------------------------------------------------------------------------------------- */
/* Random helpers                                                                            */

static guint32
rint_range(guint32 lo, guint32 hi) /* [lo, hi) */
{
	if (hi <= lo)
		return lo;
	return lo + g_rand_int_range(rnd, 0, (gint32)MIN(hi - lo, (guint32)G_MAXINT32));
}

static gboolean
chance(guint per_thousand)
{
	return rint_range(0, 1000) < per_thousand;
}

static gpointer
pick_ptr(GPtrArray *a)
{
	return a->len > 0 ? g_ptr_array_index(a, rint_range(0, a->len)) : NULL;
}

/* A length: mostly small, often at a limit, sometimes huge. */
static gsize
gen_len(void)
{
	static const gsize edges[] = {0,
				      1,
				      12,
				      31,
				      32,
				      33,
				      64,
				      65,
				      1023,
				      1024,
				      1025,
				      4096,
				      8160,
				      8161,
				      65535,
				      65536,
				      65537,
				      MAX_PAYLOAD - 1,
				      MAX_PAYLOAD,
				      MAX_PAYLOAD + 1,
				      MAX_PAYLOAD + 44,
				      MAX_PAYLOAD + 45};
	guint r = rint_range(0, 1000);

	if (r >= 990 && max_size <= 2 * MAX_PAYLOAD)
		r = rint_range(0, 990);
	if (r < 450)
		return rint_range(0, 65);
	if (r < 700)
		return rint_range(65, 4097);
	if (r < 900)
		return edges[rint_range(0, G_N_ELEMENTS(edges))];
	if (r < 990)
		return rint_range(4097, 2 * MAX_PAYLOAD);
	if (r < 997)
		return MIN(max_size, rint_range(2 * MAX_PAYLOAD, 16 * MAX_PAYLOAD));
	return MIN(max_size, rint_range(16 * MAX_PAYLOAD, 33 * MAX_PAYLOAD));
}

static GBytes *
gen_random_bytes(gsize len)
{
	guint8 *buf = g_malloc(len);
	gsize i = 0;

	for (; i + 4 <= len; i += 4) {
		guint32 x = g_rand_int(rnd);
		memcpy(buf + i, &x, 4);
	}
	for (; i < len; i++)
		buf[i] = (guint8)g_rand_int(rnd);
	return g_bytes_new_take(buf, len);
}

/* A seed, mutated: bits flipped, truncated, extended, or spliced. */
static GBytes *
mutate(GBytes *seed)
{
	gsize len = g_bytes_get_size(seed);
	GByteArray *a = g_byte_array_sized_new(len + 16);
	guint n;

	g_byte_array_append(a, g_bytes_get_data(seed, NULL), len);
	switch (rint_range(0, 6)) {
	case 0: /* unchanged: a valid input now and then */
		break;
	case 1:
		n = rint_range(1, 9);
		for (guint i = 0; i < n && a->len > 0; i++)
			a->data[rint_range(0, a->len)] ^= (guint8)(1u << rint_range(0, 8));
		break;
	case 2:
		g_byte_array_set_size(a, rint_range(0, a->len + 1));
		break;
	case 3: {
		g_autoptr(GBytes) extra = gen_random_bytes(rint_range(1, 64));
		g_byte_array_append(a, g_bytes_get_data(extra, NULL), g_bytes_get_size(extra));
		break;
	}
	case 4:
		if (a->len > 0)
			a->data[rint_range(0, a->len)] = (guint8)g_rand_int(rnd);
		break;
	default:
		/* a length field or count made huge */
		if (a->len >= 8) {
			guint off = rint_range(0, a->len - 4);
			memset(a->data + off, 0xff, 4);
		}
		break;
	}
	return g_byte_array_free_to_bytes(a);
}

/* ---------------------------------------------------------------------------------------- */
/* Values                                                                                    */

typedef enum {
	ROLE_ANY,
	ROLE_NAME,
	ROLE_TYPE,
	ROLE_STATE,
	ROLE_STAGE,
	ROLE_TOKEN,
	ROLE_PAYLOAD,
	ROLE_CIPHERTEXT,
	ROLE_BLOB,
	ROLE_SIGNATURE,
	ROLE_MAC,
	ROLE_DIGEST,
	ROLE_SECRET,
	ROLE_CONTEXT,
	ROLE_VERSION,
	ROLE_LENGTH,
	ROLE_RANDOM_LENGTH,
	ROLE_MAC_DATA,
	ROLE_PAGE_SIZE,
	ROLE_CREATE_OPTIONS,
	ROLE_SEAL_OPTIONS,
	ROLE_POLICY,
} Role;

static const gchar *const own_keys[] = {"fz-aes", "fz-hmac", "fz-ec", "fz-pw"};

static gchar *
gen_name(void)
{
	static const gchar *const odd[] = {"",
					   ".",
					   "..",
					   ".hidden",
					   "a/b",
					   "../../etc/passwd",
					   "name with space",
					   "x\ty",
					   "\xc3\xa9t\xc3\xa9",
					   "0:",
					   ":",
					   ":x",
					   "system:",
					   "-1:x",
					   "4294967295:x",
					   "4294967296:x",
					   "00:x",
					   "0x0:x",
					   "root:x",
					   "%s%n",
					   "'; DROP TABLE keys; --",
					   "NUL",
					   "fz-aes\n"};
	guint r = rint_range(0, 100);

	if (r < 25)
		return g_strdup(own_keys[rint_range(0, G_N_ELEMENTS(own_keys))]);
	if (r < 50 && targets != NULL && targets[0] != NULL)
		return g_strdup(targets[rint_range(0, g_strv_length(targets))]);
	if (r < 60) {
		/* another owner's key of the same name */
		static const gchar *const owners[] = {"0", "system", "65534", "4242", "1"};
		const gchar *name = targets != NULL && targets[0] != NULL && rint_range(0, 2)
					    ? targets[rint_range(0, g_strv_length(targets))]
					    : own_keys[rint_range(0, G_N_ELEMENTS(own_keys))];
		const gchar *colon = strchr(name, ':');
		return g_strdup_printf("%s:%s", owners[rint_range(0, G_N_ELEMENTS(owners))],
				       colon ? colon + 1 : name);
	}
	if (r < 75)
		return g_strdup(odd[rint_range(0, G_N_ELEMENTS(odd))]);
	if (r < 85) {
		/* a valid name of 1..70 characters (64 is the limit) */
		static const gchar alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789._-";
		gsize len = rint_range(1, 71);
		gchar *s = g_malloc(len + 1);
		for (gsize i = 0; i < len; i++)
			s[i] = alphabet[rint_range(0, sizeof(alphabet) - 1)];
		s[len] = '\0';
		return s;
	}
	if (r < 98) {
		/* random valid UTF-8 */
		GString *s = g_string_new(NULL);
		gsize len = rint_range(0, 100);
		for (gsize i = 0; i < len; i++) {
			gunichar c = rint_range(1, 0x2fff);
			if (g_unichar_validate(c))
				g_string_append_unichar(s, c);
		}
		return g_string_free(s, FALSE);
	}
	/* long: 1 KiB to 1 MiB */
	{
		gsize len = rint_range(1024, 1024 * 1024);
		gchar *s = g_malloc(len + 1);
		memset(s, 'a', len);
		s[len] = '\0';
		return s;
	}
}

static gchar *
gen_string(Role role)
{
	static const gchar *const types[] = {"aes-256-gcm", "hmac-sha256", "ecdsa-p256", "rsa-2048",
					     "password",    "AES-256-GCM", "des",	 "",
					     "aes-256-gcm "};
	static const gchar *const states[] = {
		"active",     "deactivated",	   "suspended", "compromised", "destroyed",
		"pre-active", "destroy-scheduled", "",		"ACTIVE"};
	static const gchar *const stages[] = {"",	  "current", "pending",
					      "previous", "next",    "Current"};

	if (chance(150))
		return gen_name();
	switch (role) {
	case ROLE_NAME:
		return gen_name();
	case ROLE_TYPE:
		/* RSA keys take the TPM a second to make: seldom */
		if (chance(980)) {
			const gchar *t = types[rint_range(0, G_N_ELEMENTS(types))];
			return g_strdup(g_str_equal(t, "rsa-2048") ? "ecdsa-p256" : t);
		}
		return g_strdup("rsa-2048");
	case ROLE_STATE:
		return g_strdup(states[rint_range(0, G_N_ELEMENTS(states))]);
	case ROLE_STAGE:
		return g_strdup(stages[rint_range(0, G_N_ELEMENTS(stages))]);
	case ROLE_TOKEN:
		if (chance(300))
			return g_strdup("");
		{
			g_autoptr(GBytes) b = gen_random_bytes(rint_range(0, 64));
			return g_base64_encode(g_bytes_get_data(b, NULL), g_bytes_get_size(b));
		}
	default:
		return gen_name();
	}
}

static GVariant *
ay(GBytes *b)
{
	return g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, b, TRUE);
}

static GBytes *
gen_bytes(Role role)
{
	GPtrArray *seeds = NULL;

	switch (role) {
	case ROLE_CIPHERTEXT:
		seeds = seeds_ct;
		break;
	case ROLE_BLOB:
		seeds = seeds_blob;
		break;
	case ROLE_SIGNATURE:
		seeds = seeds_sig;
		break;
	case ROLE_MAC:
		seeds = seeds_mac;
		break;
	case ROLE_DIGEST:
		if (chance(700))
			return gen_random_bytes(chance(900) ? 32 : rint_range(0, 100));
		break;
	case ROLE_SECRET:
		if (chance(500)) {
			/* printable, maybe with a NUL or bad UTF-8 */
			gsize len = chance(950) ? rint_range(0, 300) : rint_range(4000, 5000);
			guint8 *s = g_malloc(len);
			for (gsize i = 0; i < len; i++)
				s[i] = (guint8)rint_range(0x20, 0x7f);
			if (len > 0 && chance(200))
				s[rint_range(0, len)] = chance(500) ? 0 : 0xff;
			return g_bytes_new_take(s, len);
		}
		break;
	default:
		break;
	}
	if (seeds != NULL && seeds->len > 0 && chance(700))
		return mutate(pick_ptr(seeds));
	return gen_random_bytes(gen_len());
}

static guint32
gen_u32(Role role)
{
	static const guint32 edges[] = {
		0,	    1,		2,	    3,	       7,     8,	   16,
		32,	    64,		65,	    100,       256,   257,	   1000,
		1001,	    1024,	8160,	    8161,      65536, MAX_PAYLOAD, MAX_PAYLOAD + 1,
		0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff};

	switch (role) {
	case ROLE_VERSION:
		if (chance(700))
			return rint_range(0, 5);
		break;
	case ROLE_LENGTH:
		if (chance(500))
			return rint_range(0, 129);
		break;
	case ROLE_PAGE_SIZE:
		if (chance(500))
			return rint_range(0, 20);
		break;
	default:
		break;
	}
	if (chance(600))
		return edges[rint_range(0, G_N_ELEMENTS(edges))];
	return g_rand_int(rnd);
}

static GVariant *gen_value(const GVariantType *type, guint depth);

/* A value of a random type for an a{sv} entry (mostly the expected one). */
static GVariant *
gen_option_value(const gchar *expected, guint depth)
{
	static const gchar *const any[] = {"s", "u", "t",  "b",	    "au", "ay",	 "i",
					   "x", "d", "as", "a{sv}", "v",  "(su)"};
	const gchar *t = chance(700) ? expected : any[rint_range(0, G_N_ELEMENTS(any))];

	if (g_str_equal(t, "au") && chance(700)) {
		/* PCR lists: valid, out of range, duplicates, huge */
		gsize n = depth > 0 || chance(950) ? rint_range(0, 6) : rint_range(1000, 2000000);
		guint32 *v = g_new(guint32, MAX(n, 1));
		for (gsize i = 0; i < n; i++)
			v[i] = chance(800) ? rint_range(0, 25) : g_rand_int(rnd);
		GVariant *r = g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, v, n, 4);
		g_free(v);
		return r;
	}
	if (g_str_equal(t, "t") && chance(500)) {
		static const guint64 times[] = {
			0, 1, 59, 60, 3600, 86400, 4294967296ull, G_MAXINT64, G_MAXUINT64};
		return g_variant_new_uint64(chance(500)
						    ? times[rint_range(0, G_N_ELEMENTS(times))]
						    : (guint64)g_get_real_time() / G_USEC_PER_SEC +
							      rint_range(0, 100000));
	}
	return gen_value(G_VARIANT_TYPE(t), depth + 1);
}

typedef struct {
	const gchar *key;
	const gchar *type;
} OptionSpec;

/* Options for role; depth: how deep inside other values (huge dictionaries only at the top). */
static GVariant *
gen_options(Role role, guint depth)
{
	static const OptionSpec create[] = {
		{"protection", "s"}, {"pcrs", "au"},   {"description", "s"}, {"activate-at", "t"},
		{"length", "u"},     {"charset", "s"}, {"exclude", "s"}};
	static const OptionSpec policy[] = {{"period", "t"},
					    {"max-uses", "t"},
					    {"deactivate-after", "t"},
					    {"destroy-after", "t"},
					    {"hook", "s"}};
	static const OptionSpec seal[] = {{"pcrs", "au"}};
	GVariantBuilder b;
	const OptionSpec *table;
	guint n_table, n;

	switch (role) {
	case ROLE_CREATE_OPTIONS:
		table = create;
		n_table = G_N_ELEMENTS(create);
		break;
	case ROLE_POLICY:
		table = policy;
		n_table = G_N_ELEMENTS(policy);
		break;
	default:
		table = seal;
		n_table = G_N_ELEMENTS(seal);
		break;
	}
	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	/* huge dictionaries now and then */
	n = depth > 0 || chance(995) ? rint_range(0, 5) : rint_range(10000, 100000);
	for (guint i = 0; i < n; i++) {
		if (i < 8 && chance(800)) {
			const OptionSpec *e = table + rint_range(0, n_table);
			g_variant_builder_add(&b, "{sv}", e->key, gen_option_value(e->type, depth));
		} else {
			/* a huge dictionary's many entries are small: at the top, thousands of
			 * them could each be a payload or a PCR list of megabytes, and make a
			 * message of gigabytes that only the fuzzer pays for (minutes to build,
			 * as much memory; the bus refuses anything over 32 MiB) */
			g_autofree gchar *key =
				i < 8 ? gen_string(ROLE_ANY) : g_strdup_printf("k%u", i);
			g_variant_builder_add(&b, "{sv}", key,
					      gen_option_value("s", i < 8 ? depth : depth + 1));
		}
	}
	return g_variant_builder_end(&b);
}

static const gchar *const basic_types[] = {"y", "b", "n", "q", "i", "u", "x",
					   "t", "d", "s", "o", "g", "v"};

static GVariant *
gen_basic(const GVariantType *type, guint depth)
{
	const gchar *t = g_variant_type_peek_string(type);

	switch (t[0]) {
	case 'y':
		return g_variant_new_byte((guint8)g_rand_int(rnd));
	case 'b':
		return g_variant_new_boolean(g_rand_boolean(rnd));
	case 'n':
		return g_variant_new_int16((gint16)g_rand_int(rnd));
	case 'q':
		return g_variant_new_uint16((guint16)g_rand_int(rnd));
	case 'i':
		return g_variant_new_int32((gint32)gen_u32(ROLE_ANY));
	case 'u':
		return g_variant_new_uint32(gen_u32(ROLE_ANY));
	case 'x':
		return g_variant_new_int64(
			(gint64)(((guint64)g_rand_int(rnd) << 32) | g_rand_int(rnd)));
	case 't':
		return g_variant_new_uint64(((guint64)g_rand_int(rnd) << 32) | g_rand_int(rnd));
	case 'd':
		return g_variant_new_double(g_rand_double_range(rnd, -1e300, 1e300));
	case 's': {
		g_autofree gchar *s = gen_string(ROLE_ANY);
		return g_variant_new_string(s);
	}
	case 'o':
		return g_variant_new_object_path(chance(500) ? PATH : "/x/y");
	case 'g':
		return g_variant_new_signature(chance(500) ? "a{sv}" : "");
	case 'v': {
		/* nesting, sometimes deep */
		const gchar *inner =
			depth > 70 || chance(800)
				? basic_types[rint_range(0, G_N_ELEMENTS(basic_types) - 1)]
				: "v";
		return g_variant_new_variant(gen_value(G_VARIANT_TYPE(inner), depth + 1));
	}
	}
	g_assert_not_reached();
}

static GVariant *
gen_value(const GVariantType *type, guint depth)
{
	if (g_variant_type_equal(type, G_VARIANT_TYPE_BYTESTRING)) {
		g_autoptr(GBytes) b = gen_random_bytes(depth > 1 ? rint_range(0, 64) : gen_len());
		return ay(b);
	}
	if (g_variant_type_equal(type, G_VARIANT_TYPE_VARDICT))
		return depth > 3 ? g_variant_new("a{sv}", NULL) : gen_options(ROLE_ANY, depth + 1);
	if (g_variant_type_is_basic(type) || g_variant_type_is_variant(type))
		return gen_basic(type, depth);
	if (g_variant_type_is_array(type)) {
		const GVariantType *elem = g_variant_type_element(type);
		GVariantBuilder b;
		guint n = depth > 2 ? rint_range(0, 3) : rint_range(0, 8);
		g_variant_builder_init(&b, type);
		for (guint i = 0; i < n; i++)
			g_variant_builder_add_value(&b, gen_value(elem, depth + 1));
		return g_variant_builder_end(&b);
	}
	if (g_variant_type_is_dict_entry(type)) {
		const GVariantType *k = g_variant_type_key(type);
		const GVariantType *v = g_variant_type_value(type);
		return g_variant_new_dict_entry(gen_value(k, depth + 1), gen_value(v, depth + 1));
	}
	if (g_variant_type_is_tuple(type)) {
		GVariantBuilder b;
		g_variant_builder_init(&b, G_VARIANT_TYPE_TUPLE);
		for (const GVariantType *t = g_variant_type_first(type); t != NULL;
		     t = g_variant_type_next(t))
			g_variant_builder_add_value(&b, gen_value(t, depth + 1));
		return g_variant_builder_end(&b);
	}
	g_assert_not_reached();
}

/* ---------------------------------------------------------------------------------------- */
/* The methods                                                                               */

typedef struct {
	const gchar *name;
	const gchar *signature;
	Role roles[4];
} Method;

static const Method methods[] = {
	{"CreateKey", "(ssa{sv})", {ROLE_NAME, ROLE_TYPE, ROLE_CREATE_OPTIONS}},
	{"ListKeys", "()", {0}},
	{"ListAllKeys", "()", {0}},
	{"ListKeysPage", "(su)", {ROLE_TOKEN, ROLE_PAGE_SIZE}},
	{"ListAllKeysPage", "(su)", {ROLE_TOKEN, ROLE_PAGE_SIZE}},
	{"GetKeyInfo", "(s)", {ROLE_NAME}},
	{"DestroyKey", "(s)", {ROLE_NAME}},
	{"RotateKey", "(s)", {ROLE_NAME}},
	{"SetPrimaryVersion", "(su)", {ROLE_NAME, ROLE_VERSION}},
	{"SetKeyVersionState", "(sus)", {ROLE_NAME, ROLE_VERSION, ROLE_STATE}},
	{"SetRotationPolicy", "(sa{sv})", {ROLE_NAME, ROLE_POLICY}},
	{"DestroyKeyVersion", "(su)", {ROLE_NAME, ROLE_VERSION}},
	{"CancelKeyDestruction", "(su)", {ROLE_NAME, ROLE_VERSION}},
	{"Encrypt", "(sayay)", {ROLE_NAME, ROLE_PAYLOAD, ROLE_CONTEXT}},
	{"Decrypt", "(sayay)", {ROLE_NAME, ROLE_CIPHERTEXT, ROLE_CONTEXT}},
	{"Sign", "(say)", {ROLE_NAME, ROLE_PAYLOAD}},
	{"Verify", "(sayay)", {ROLE_NAME, ROLE_PAYLOAD, ROLE_SIGNATURE}},
	{"GetPublicKey", "(s)", {ROLE_NAME}},
	{"Hmac", "(say)", {ROLE_NAME, ROLE_MAC_DATA}},
	{"VerifyHmac", "(sayay)", {ROLE_NAME, ROLE_MAC_DATA, ROLE_MAC}},
	{"DeriveKey", "(sayu)", {ROLE_NAME, ROLE_CONTEXT, ROLE_LENGTH}},
	{"Seal", "(aya{sv})", {ROLE_PAYLOAD, ROLE_SEAL_OPTIONS}},
	{"Unseal", "(ay)", {ROLE_BLOB}},
	{"GetRandom", "(u)", {ROLE_RANDOM_LENGTH}},
	{"GenerateDataKey", "(suay)", {ROLE_NAME, ROLE_LENGTH, ROLE_CONTEXT}},
	{"ReEncrypt", "(sayay)", {ROLE_NAME, ROLE_CIPHERTEXT, ROLE_CONTEXT}},
	{"SignDigest", "(say)", {ROLE_NAME, ROLE_DIGEST}},
	{"VerifyDigest", "(sayay)", {ROLE_NAME, ROLE_DIGEST, ROLE_SIGNATURE}},
	{"ImportSecret", "(say)", {ROLE_NAME, ROLE_SECRET}},
	{"GetSecret", "(ss)", {ROLE_NAME, ROLE_STAGE}},
};

/* An argument of the right type for its role. */
static GVariant *
gen_arg(const GVariantType *type, Role role)
{
	if (g_variant_type_equal(type, G_VARIANT_TYPE_STRING)) {
		g_autofree gchar *s = gen_string(role);
		return g_variant_new_string(s);
	}
	if (g_variant_type_equal(type, G_VARIANT_TYPE_BYTESTRING)) {
		g_autoptr(GBytes) b = gen_bytes(role);
		return ay(b);
	}
	if (g_variant_type_equal(type, G_VARIANT_TYPE_UINT32))
		return g_variant_new_uint32(gen_u32(role));
	if (g_variant_type_equal(type, G_VARIANT_TYPE_VARDICT))
		return gen_options(role, 0);
	return gen_value(type, 1);
}

static GVariant *
gen_right_args(const Method *m)
{
	GVariantBuilder b;
	guint i = 0;

	g_variant_builder_init(&b, G_VARIANT_TYPE_TUPLE);
	for (const GVariantType *t = g_variant_type_first(G_VARIANT_TYPE(m->signature)); t != NULL;
	     t = g_variant_type_next(t), i++)
		g_variant_builder_add_value(&b, gen_arg(t, m->roles[i]));
	return g_variant_builder_end(&b);
}

/* A random type string: basic, ay, arrays, dictionaries, tuples. */
static gchar *
gen_type_string(guint depth)
{
	static const gchar *const composite[] = {"ay",	"as",	  "au",	  "a{sv}",  "a{ss}",
						 "aay", "aa{sv}", "(su)", "(ayay)", "a(sv)"};
	guint r = rint_range(0, 100);

	if (r < 55 || depth > 3)
		return g_strdup(basic_types[rint_range(0, G_N_ELEMENTS(basic_types))]);
	if (r < 85)
		return g_strdup(composite[rint_range(0, G_N_ELEMENTS(composite))]);
	if (r < 93) {
		g_autofree gchar *inner = gen_type_string(depth + 1);
		return g_strdup_printf("a%s", inner);
	}
	{
		GString *s = g_string_new("(");
		guint n = rint_range(1, 4);
		for (guint i = 0; i < n; i++) {
			g_autofree gchar *inner = gen_type_string(depth + 1);
			g_string_append(s, inner);
		}
		g_string_append_c(s, ')');
		return g_string_free(s, FALSE);
	}
}

/* Arguments of wrong types: one changed, one missing, one extra, or all random. */
static GVariant *
gen_wrong_args(const Method *m)
{
	GVariantBuilder b;
	guint n_args = 0, i = 0, changed, r = rint_range(0, 4);
	const GVariantType *sig = G_VARIANT_TYPE(m->signature);

	for (const GVariantType *t = g_variant_type_first(sig); t != NULL;
	     t = g_variant_type_next(t))
		n_args++;
	g_variant_builder_init(&b, G_VARIANT_TYPE_TUPLE);
	if (r == 3 || n_args == 0) {
		guint n = rint_range(0, 6);
		for (guint j = 0; j < n; j++) {
			g_autofree gchar *ts = gen_type_string(0);
			g_variant_builder_add_value(&b, gen_value(G_VARIANT_TYPE(ts), 1));
		}
		return g_variant_builder_end(&b);
	}
	changed = rint_range(0, n_args);
	for (const GVariantType *t = g_variant_type_first(sig); t != NULL;
	     t = g_variant_type_next(t), i++) {
		if (i == changed && r == 0) {
			g_autofree gchar *ts = gen_type_string(0);
			g_variant_builder_add_value(&b, gen_value(G_VARIANT_TYPE(ts), 1));
		} else if (i == changed && r == 1) {
			continue; /* missing */
		} else {
			g_variant_builder_add_value(&b, gen_arg(t, m->roles[i]));
		}
	}
	if (r == 2) {
		g_autofree gchar *ts = gen_type_string(0);
		g_variant_builder_add_value(&b, gen_value(G_VARIANT_TYPE(ts), 1));
	}
	return g_variant_builder_end(&b);
}

/* The nesting depth of a type string (arrays, tuples, dict entries; variants inside values are
 * not seen here). */
static guint
type_depth(const gchar *t)
{
	guint depth = 0, max = 0;

	for (; *t; t++) {
		if (*t == '(' || *t == '{')
			max = MAX(max, ++depth);
		else if (*t == ')' || *t == '}')
			depth--;
		else if (*t == 'a')
			max = MAX(max, depth + 1);
	}
	return max;
}

/* The deepest variant nesting of a value. */
static guint
variant_depth(GVariant *v)
{
	guint max = 0;

	if (g_variant_is_of_type(v, G_VARIANT_TYPE_VARIANT)) {
		g_autoptr(GVariant) inner = g_variant_get_variant(v);
		return 1 + variant_depth(inner);
	}
	if (!g_variant_is_container(v) || g_variant_is_of_type(v, G_VARIANT_TYPE_BYTESTRING))
		return 0;
	/* big arrays of basic values hold no variant */
	if (g_variant_type_is_array(g_variant_get_type(v)) &&
	    g_variant_type_is_basic(g_variant_type_element(g_variant_get_type(v))))
		return 0;
	for (gsize i = 0, n = g_variant_n_children(v); i < n; i++) {
		g_autoptr(GVariant) c = g_variant_get_child_value(v, i);
		max = MAX(max, variant_depth(c));
	}
	return max;
}

/* The number of values in v, counting an array of fixed-size values as one, stopping past
 * limit. */
static gsize
count_values(GVariant *v, gsize limit)
{
	const GVariantType *type = g_variant_get_type(v);
	gsize n = 1;

	if (!g_variant_is_container(v))
		return 1;
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_VARIANT)) {
		g_autoptr(GVariant) inner = g_variant_get_variant(v);
		return 1 + count_values(inner, limit);
	}
	if (g_variant_type_is_array(type) &&
	    g_variant_type_is_basic(g_variant_type_element(type)) &&
	    !g_variant_type_equal(g_variant_type_element(type), G_VARIANT_TYPE_STRING))
		return 1;
	for (gsize i = 0, c = g_variant_n_children(v); i < c && n <= limit; i++) {
		g_autoptr(GVariant) child = g_variant_get_child_value(v, i);
		n += count_values(child, limit);
	}
	return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Calls                                                                                     */

static gboolean
connect_bus(void)
{
	g_autoptr(GError) error = NULL;

	if (conn != NULL) {
		g_dbus_connection_close_sync(conn, NULL, NULL);
		g_clear_object(&conn);
		n_reconnects++;
	}
	conn = g_dbus_connection_new_for_address_sync(
		bus_address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	if (conn == NULL) {
		g_printerr("tkms-dbus-fuzzer: cannot connect to %s: %s\n", bus_address,
			   error->message);
		return FALSE;
	}
	g_dbus_connection_set_exit_on_close(conn, FALSE);
	return TRUE;
}

static gchar *
short_outcome(GDBusMessage *reply)
{
	const gchar *name;

	if (g_dbus_message_get_message_type(reply) != G_DBUS_MESSAGE_TYPE_ERROR)
		return g_strdup("OK");
	name = g_dbus_message_get_error_name(reply);
	if (name == NULL)
		return g_strdup("(no error name)");
	if (g_str_has_prefix(name, ERROR_PREFIX))
		return g_strdup(name + strlen(ERROR_PREFIX));
	return g_strdup(name);
}

static void
count_outcome(const gchar *method, const gchar *outcome, guint64 ms)
{
	g_autofree gchar *key = g_strdup_printf("%s %s", method, outcome);
	Outcome *o = g_hash_table_lookup(outcomes, key);

	if (o == NULL) {
		o = g_new0(Outcome, 1);
		g_hash_table_insert(outcomes, g_steal_pointer(&key), o);
	}
	o->count++;
	o->max_ms = MAX(o->max_ms, ms);
}

/* Sends one call and waits for its reply; returns the reply (NULL if none). */
static GDBusMessage *
call(const gchar *path, const gchar *iface, const gchar *method, GVariant *args)
{
	g_autoptr(GDBusMessage) msg = g_dbus_message_new_method_call(DEST, path, iface, method);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) body = args != NULL ? g_variant_ref_sink(args) : NULL;
	GDBusMessage *reply;
	const gchar *sig = body != NULL ? g_variant_get_type_string(body) : "()";
	gsize size = body != NULL ? g_variant_get_size(body) : 0;
	gint64 t0;
	guint64 ms;

	if (conn == NULL && !connect_bus())
		exit(1);
	if (body != NULL && g_variant_n_children(body) > 0)
		g_dbus_message_set_body(msg, body);
	n_calls++;
	bytes_sent += size;
	t0 = g_get_monotonic_time();
	reply = g_dbus_connection_send_message_with_reply_sync(
		conn, msg, G_DBUS_SEND_MESSAGE_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, NULL, &error);
	ms = (guint64)(g_get_monotonic_time() - t0) / 1000;
	if (g_getenv("TKMS_FUZZER_TRACE") != NULL) {
		/* TKMS_FUZZER_TRACE=PID: each call, and tkmsd's VmRSS after it, on stderr */
		g_autofree gchar *path =
			g_strdup_printf("/proc/%s/status", g_getenv("TKMS_FUZZER_TRACE"));
		g_autofree gchar *status = NULL;
		const gchar *rss = NULL;
		if (g_file_get_contents(path, &status, NULL, NULL))
			rss = strstr(status, "VmRSS:");
		g_printerr("trace: %" G_GINT64_FORMAT " %s %.40s %zu %" G_GUINT64_FORMAT
			   " ms, %.30s\n",
			   g_get_monotonic_time() / 1000, method, sig, size, ms, rss ? rss : "");
	}
	if (reply == NULL) {
		gboolean closed = g_dbus_connection_is_closed(conn) ||
				  g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED);
		gboolean timeout = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
		guint depth = body != NULL ? MAX(type_depth(sig), variant_depth(body)) : 0;
		const gchar *flags = size + 1024 > BUS_MESSAGE_LIMIT ? "over-limit"
				     : depth > 32		     ? "deep"
								     : "-";
		n_noreply++;
		g_print("NOREPLY %s %.60s %zu %s %s %s\n", method, sig, size,
			timeout	 ? "timeout"
			: closed ? "closed"
				 : "error",
			flags, error ? error->message : "");
		count_outcome(method, timeout ? "(timeout)" : "(no reply)", ms);
		/* the bus drops a connection that sent what it refuses: start a new one */
		if (closed || !timeout)
			connect_bus();
		return NULL;
	}
	n_replies++;
	max_ms = MAX(max_ms, ms);
	{
		guint32 ms32 = (guint32)MIN(ms, G_MAXUINT32);
		g_array_append_val(latencies, ms32);
	}
	{
		g_autofree gchar *outcome = short_outcome(reply);
		count_outcome(method, outcome, ms);
		if (ms > SLOW_MS) {
			gboolean heavy =
				size > HEAVY_BYTES ||
				(body != NULL && count_values(body, HEAVY_VALUES) > HEAVY_VALUES);
			g_print("SLOW %" G_GUINT64_FORMAT " %s %.60s %zu %s %s\n", ms, method, sig,
				size, outcome, heavy ? "heavy" : "light");
		}
	}
	return reply;
}

static void
call_drop(const gchar *method, GVariant *args)
{
	g_autoptr(GDBusMessage) reply = call(PATH, IFACE, method, args);
}

static GVariant *
ay_static(const gchar *data, gsize len)
{
	return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, len, 1);
}

/* A valid call whose byte reply is kept as a seed. */
static void
seed_call(const gchar *method, GVariant *args, GPtrArray *seeds)
{
	g_autoptr(GDBusMessage) reply = call(PATH, IFACE, method, args);
	GVariant *body;

	if (reply == NULL || g_dbus_message_get_message_type(reply) == G_DBUS_MESSAGE_TYPE_ERROR)
		return;
	body = g_dbus_message_get_body(reply);
	if (body != NULL && g_variant_n_children(body) > 0) {
		g_autoptr(GVariant) v = g_variant_get_child_value(body, 0);
		if (g_variant_is_of_type(v, G_VARIANT_TYPE_BYTESTRING))
			g_ptr_array_add(seeds, g_variant_get_data_as_bytes(v));
	}
}

static void
make_seeds(void)
{
	static const gchar *const types[] = {"aes-256-gcm", "hmac-sha256", "ecdsa-p256",
					     "password"};
	g_autoptr(GBytes) data = g_bytes_new_static("fuzz seed", 9);

	for (guint i = 0; i < G_N_ELEMENTS(own_keys); i++) {
		g_autoptr(GDBusMessage) r = call(PATH, IFACE, "CreateKey",
						 g_variant_new("(ss@a{sv})", own_keys[i], types[i],
							       g_variant_new("a{sv}", NULL)));
	}
	for (guint i = 0; i < 4; i++) {
		seed_call("Encrypt", g_variant_new("(s@ay@ay)", "fz-aes", ay(data), ay(data)),
			  seeds_ct);
		seed_call("GenerateDataKey", g_variant_new("(su@ay)", "fz-aes", 32, ay(data)),
			  seeds_ct);
		seed_call("Seal",
			  g_variant_new("(@ay@a{sv})", ay(data), g_variant_new("a{sv}", NULL)),
			  seeds_blob);
		seed_call("Sign", g_variant_new("(s@ay)", "fz-ec", ay(data)), seeds_sig);
		seed_call("SignDigest",
			  g_variant_new("(s@ay)", "fz-ec",
					ay_static("0123456789abcdef0123456789abcdef", 32)),
			  seeds_sig);
		seed_call("Hmac", g_variant_new("(s@ay)", "fz-hmac", ay(data)), seeds_mac);
	}
}

/* The bus's own time for a body: GetNameOwner of org.freedesktop.DBus with it as
 * arguments, which the bus receives, validates and refuses (InvalidArgs). */
static void
bus_time(const gchar *what, GVariant *args)
{
	g_autoptr(GVariant) body = g_variant_ref_sink(args);
	g_autoptr(GDBusMessage) msg =
		g_dbus_message_new_method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
					       "org.freedesktop.DBus", "GetNameOwner");
	g_autoptr(GDBusMessage) reply = NULL;
	g_autoptr(GError) error = NULL;
	gint64 t0;

	g_dbus_message_set_body(msg, body);
	t0 = g_get_monotonic_time();
	reply = g_dbus_connection_send_message_with_reply_sync(
		conn, msg, G_DBUS_SEND_MESSAGE_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, NULL, &error);
	g_print("BUSTIME %s %zu %" G_GINT64_FORMAT "\n", what, g_variant_get_size(body),
		(g_get_monotonic_time() - t0) / 1000);
	if (reply == NULL)
		connect_bus();
}

/* The fixed extreme messages; all: the long form's full set. */
static void
extremes(gboolean all)
{
	g_autoptr(GBytes) over =
		g_bytes_new_take(g_malloc0(BUS_MESSAGE_LIMIT + 1), BUS_MESSAGE_LIMIT + 1);
	g_autoptr(GBytes) under =
		g_bytes_new_take(g_malloc0(BUS_MESSAGE_LIMIT - 4096), BUS_MESSAGE_LIMIT - 4096);
	g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
	g_autoptr(GVariant) many = NULL;
	GVariantBuilder b;

	/* over the bus's limit: the bus drops us; just under it: tkmsd refuses it */
	call_drop("Encrypt", g_variant_new("(s@ay@ay)", "fz-aes", ay(over), ay(empty)));
	bus_time("32MiB-bytes", g_variant_new("(s@ay@ay)", "fz-aes", ay(under), ay(empty)));
	call_drop("Encrypt", g_variant_new("(s@ay@ay)", "fz-aes", ay(under), ay(empty)));
	/* 300,000 options: 10 MiB of small values */
	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	for (guint i = 0; i < 300000; i++) {
		g_autofree gchar *k = g_strdup_printf("option-%u", i);
		g_variant_builder_add(&b, "{sv}", k, g_variant_new_uint64(i));
	}
	many = g_variant_ref_sink(g_variant_builder_end(&b));
	bus_time("300000-options", g_variant_new("(ss@a{sv})", "fz-many", "aes-256-gcm", many));
	call_drop("CreateKey", g_variant_new("(ss@a{sv})", "fz-many", "aes-256-gcm", many));
	/* variants nested 30 and 70 deep (D-Bus allows 32 levels of containers) */
	for (guint depth = 30; depth <= 70; depth += 40) {
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		GVariant *deep = g_variant_new_uint32(1);
		for (guint i = 0; i < depth; i++)
			deep = g_variant_new_variant(deep);
		g_variant_dict_insert_value(d, "description", deep);
		call_drop("CreateKey", g_variant_new("(ss@a{sv})", "fz-deep", "aes-256-gcm",
						     g_variant_dict_end(d)));
	}
	/* 100,000 ciphertexts in one array where one is expected */
	{
		g_autoptr(GBytes) one = g_bytes_new_static("TKMS", 4);
		g_variant_builder_init(&b, G_VARIANT_TYPE("aay"));
		for (guint i = 0; i < 100000; i++)
			g_variant_builder_add_value(&b, ay(one));
		call_drop("Decrypt", g_variant_new("(s@aay@ay)", "fz-aes",
						   g_variant_builder_end(&b), ay(empty)));
	}
	if (!all)
		return;
	call_drop("Seal", g_variant_new("(@ay@a{sv})", ay(under), g_variant_new("a{sv}", NULL)));
	call_drop("Unseal", g_variant_new("(@ay)", ay(under)));
	/* a 16 MiB name */
	{
		gsize n = 16 * 1024 * 1024;
		g_autofree gchar *long_name = g_malloc(n + 1);
		memset(long_name, 'k', n);
		long_name[n] = '\0';
		call_drop("GetKeyInfo", g_variant_new("(s)", long_name));
	}
	/* 4 million PCRs */
	{
		gsize n = 4 * 1024 * 1024;
		g_autofree guint32 *pcrs = g_new0(guint32, n);
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_variant_dict_insert_value(
			d, "pcrs", g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, pcrs, n, 4));
		call_drop("Seal", g_variant_new("(@ay@a{sv})", ay(empty), g_variant_dict_end(d)));
	}
	/* a million strings */
	{
		g_variant_builder_init(&b, G_VARIANT_TYPE("as"));
		for (guint i = 0; i < 1000000; i++)
			g_variant_builder_add(&b, "s", "fz-aes");
		call_drop("GetKeyInfo", g_variant_new("(@as)", g_variant_builder_end(&b)));
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Raw malformed messages                                                                    */

typedef enum {
	RAW_BAD_UTF8,
	RAW_NUL_IN_STRING,
	RAW_BODY_LENGTH,
	RAW_SIGNATURE,
	RAW_ARRAY_LENGTH,
	RAW_FLIPS,
	RAW_TRUNCATED,
	N_RAW
} RawKind;

static const gchar *const raw_names[N_RAW] = {"bad-utf8",  "nul-in-string", "body-length",
					      "signature", "array-length",  "flips",
					      "truncated"};

static void
count_raw(RawKind kind, const gchar *result)
{
	g_autofree gchar *key = g_strdup_printf("%s %s", raw_names[kind], result);
	guint64 *n = g_hash_table_lookup(raw_results, key);

	if (n == NULL) {
		n = g_new0(guint64, 1);
		g_hash_table_insert(raw_results, g_steal_pointer(&key), n);
	}
	(*n)++;
}

static gboolean
write_all(int fd, const void *data, gsize len)
{
	const guint8 *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return FALSE;
		p += n;
		len -= n;
	}
	return TRUE;
}

/* Reads exactly len bytes, waiting at most timeout_ms in all: 1 done, 0 closed, -1 timeout. */
static gint
read_all(int fd, guint8 *buf, gsize len, gint64 deadline)
{
	gsize got = 0;

	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		gint64 left = (deadline - g_get_monotonic_time()) / 1000;
		ssize_t n;
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		n = recv(fd, buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		got += n;
	}
	return 1;
}

/* Reads one message: its blob, or NULL with *closed set if the bus hung up. */
static GDBusMessage *
raw_read_message(int fd, gint64 deadline, gboolean *closed)
{
	guint8 head[16];
	gssize needed;
	g_autofree guint8 *buf = NULL;
	gint r;

	*closed = FALSE;
	r = read_all(fd, head, sizeof(head), deadline);
	if (r <= 0) {
		*closed = r == 0;
		return NULL;
	}
	needed = g_dbus_message_bytes_needed(head, sizeof(head), NULL);
	if (needed < 16 || needed > 256 * 1024 * 1024)
		return NULL;
	buf = g_malloc(needed);
	memcpy(buf, head, 16);
	r = read_all(fd, buf + 16, needed - 16, deadline);
	if (r <= 0) {
		*closed = r == 0;
		return NULL;
	}
	return g_dbus_message_new_from_blob(buf, needed, G_DBUS_CAPABILITY_FLAGS_NONE, NULL);
}

static int
raw_connect(void)
{
	const gchar *path = strstr(bus_address, "unix:path=");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	g_autofree gchar *auth = NULL;
	g_autofree gchar *uid_hex = NULL;
	g_autofree gchar *uid = g_strdup_printf("%u", (guint)getuid());
	g_autoptr(GDBusMessage) hello = NULL;
	g_autofree guchar *blob = NULL;
	gsize blob_len = 0;
	gchar line[512];
	gsize got = 0;
	gboolean closed;
	int fd;

	if (path == NULL)
		return -1;
	path += strlen("unix:path=");
	g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	if (strchr(sa.sun_path, ',') != NULL)
		*strchr(sa.sun_path, ',') = '\0';
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	uid_hex = g_malloc0(strlen(uid) * 2 + 1);
	for (gsize i = 0; uid[i] != '\0'; i++)
		sprintf(uid_hex + 2 * i, "%02x", (guint)uid[i]);
	auth = g_strdup_printf("AUTH EXTERNAL %s\r\n", uid_hex);
	if (!write_all(fd, "", 1) || !write_all(fd, auth, strlen(auth)))
		goto fail;
	while (got < sizeof(line) - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		if (poll(&p, 1, 5000) <= 0)
			goto fail;
		n = recv(fd, line + got, 1, 0);
		if (n <= 0)
			goto fail;
		got++;
		if (got >= 2 && line[got - 2] == '\r' && line[got - 1] == '\n')
			break;
	}
	line[got] = '\0';
	if (!g_str_has_prefix(line, "OK ") || !write_all(fd, "BEGIN\r\n", 7))
		goto fail;
	hello = g_dbus_message_new_method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
					       "org.freedesktop.DBus", "Hello");
	g_dbus_message_set_serial(hello, 1);
	blob = g_dbus_message_to_blob(hello, &blob_len, G_DBUS_CAPABILITY_FLAGS_NONE, NULL);
	if (blob == NULL || !write_all(fd, blob, blob_len))
		goto fail;
	/* the Hello reply (and a NameAcquired signal we leave unread) */
	{
		gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
		for (;;) {
			g_autoptr(GDBusMessage) m = raw_read_message(fd, deadline, &closed);
			if (m == NULL)
				goto fail;
			if (g_dbus_message_get_reply_serial(m) == 1)
				break;
		}
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* Overwrites the first occurrence of needle in blob (same length). */
static gboolean
replace_in(guint8 *blob, gsize len, const gchar *needle, const guint8 *with)
{
	gsize n = strlen(needle);
	guint8 *at = memmem(blob, len, needle, n);

	if (at == NULL)
		return FALSE;
	memcpy(at, with, n);
	return TRUE;
}

/* Whether a message (a blob, as sent) must be answered: it is one whole message, parses as a
 * method call that expects a reply, and has the serial the caller waits for. */
static gboolean
raw_answer_owed(const guchar *blob, gsize len, guint32 serial)
{
	g_autoptr(GDBusMessage) m = NULL;
	gssize needed;

	if (len < 16)
		return FALSE;
	needed = g_dbus_message_bytes_needed((guchar *)blob, 16, NULL);
	if (needed < 0 || (gsize)needed != len)
		return FALSE;
	m = g_dbus_message_new_from_blob((guchar *)blob, len, G_DBUS_CAPABILITY_FLAGS_NONE, NULL);
	/* a message GDBus cannot parse is one the bus refuses (it drops the sender), or at
	 * least one that cannot reach tkmsd's handlers */
	if (m == NULL)
		return FALSE;
	return g_dbus_message_get_message_type(m) == G_DBUS_MESSAGE_TYPE_METHOD_CALL &&
	       !(g_dbus_message_get_flags(m) & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED) &&
	       g_dbus_message_get_serial(m) == serial;
}

/* A raw message that got no answer, as GDBus reads it (for the report). */
static void
raw_describe(RawKind kind, const guchar *blob, gsize len)
{
	g_autoptr(GDBusMessage) m = g_dbus_message_new_from_blob(
		(guchar *)blob, len, G_DBUS_CAPABILITY_FLAGS_NONE, NULL);
	g_autofree gchar *hex = NULL;
	gsize n = MIN(len, 48);

	hex = g_malloc(n * 2 + 1);
	for (gsize i = 0; i < n; i++)
		g_snprintf(hex + 2 * i, 3, "%02x", blob[i]);
	g_print("RAWDETAIL %s %zu bytes: %s; head %s\n", raw_names[kind], len,
		m == NULL ? "unparsable"
		: g_dbus_message_get_message_type(m) == G_DBUS_MESSAGE_TYPE_METHOD_CALL
			? "a method call"
			: "another type",
		hex);
	if (m != NULL)
		g_print("RAWDETAIL %s dest=%s path=%s iface=%s member=%s sig=%s serial=%u "
			"flags=%u\n",
			raw_names[kind], g_dbus_message_get_destination(m),
			g_dbus_message_get_path(m), g_dbus_message_get_interface(m),
			g_dbus_message_get_member(m), g_dbus_message_get_signature(m),
			g_dbus_message_get_serial(m), (guint)g_dbus_message_get_flags(m));
}

static void
raw_call(RawKind kind)
{
	static guint32 serial = 100;
	static const guint8 bad_utf8[] = {'f', 0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82, 'Z'};
	static const guint8 with_nul[] = {'f', 'z', '-', 0, 'e', 's', 'P', 'Z'};
	g_autoptr(GDBusMessage) msg = g_dbus_message_new_method_call(
		DEST, PATH, IFACE, chance(500) ? "Encrypt" : "Decrypt");
	g_autoptr(GBytes) payload = gen_random_bytes(rint_range(0, 256));
	g_autofree guchar *blob = NULL;
	gsize len = 0;
	int fd = raw_connect();
	const gchar *result;
	gboolean owed = TRUE;

	n_raw++;
	if (fd < 0) {
		count_raw(kind, "connect-failed");
		return;
	}
	g_dbus_message_set_body(
		msg, g_variant_new("(s@ay@ay)", "PLACEHOZ", ay(payload), ay_static("ctx", 3)));
	g_dbus_message_set_serial(msg, ++serial);
	blob = g_dbus_message_to_blob(msg, &len, G_DBUS_CAPABILITY_FLAGS_NONE, NULL);
	g_assert_nonnull(blob);
	switch (kind) {
	case RAW_BAD_UTF8:
		g_assert_true(replace_in(blob, len, "PLACEHOZ", bad_utf8));
		break;
	case RAW_NUL_IN_STRING:
		g_assert_true(replace_in(blob, len, "PLACEHOZ", with_nul));
		break;
	case RAW_BODY_LENGTH: {
		/* the body length field (bytes 4..7, little-endian 'l' messages) */
		guint32 body_len;
		memcpy(&body_len, blob + 4, 4);
		body_len += chance(500) ? 8 : (guint32)-4;
		memcpy(blob + 4, &body_len, 4);
		break;
	}
	case RAW_SIGNATURE:
		/* the header's body signature "sayay" made "uayay" */
		g_assert_true(replace_in(blob, len, "sayay", (const guint8 *)"uayay"));
		break;
	case RAW_ARRAY_LENGTH: {
		/* the first ay's length (after the padded string) made huge */
		guint8 *at = memmem(blob, len, "PLACEHOZ", 8);
		guint32 huge = 0x03ffffff;
		g_assert_nonnull(at);
		at += 8 + 1; /* the string and its NUL */
		while ((at - blob) % 4 != 0)
			at++;
		memcpy(at, &huge, 4);
		break;
	}
	case RAW_FLIPS: {
		guint n = rint_range(1, 6);
		for (guint i = 0; i < n; i++)
			blob[rint_range(0, len)] ^= (guint8)(1u << rint_range(0, 8));
		break;
	}
	case RAW_TRUNCATED:
		len = rint_range(1, len);
		break;
	default:
		g_assert_not_reached();
	}
	/* Random flips may leave a message that owes no answer: one that says it is longer or
	 * shorter than what was sent (the bus waits for the rest), is no longer a method call,
	 * asks for no reply, or carries another serial (its answer, if any, is to that). Only a
	 * flipped message that still parses as a call expecting a reply to this serial must be
	 * answered (by the bus or tkmsd). */
	if (kind == RAW_FLIPS)
		owed = raw_answer_owed(blob, len, serial);
	if (!write_all(fd, blob, len)) {
		result = "disconnected";
	} else {
		gint64 deadline = g_get_monotonic_time() + G_USEC_PER_SEC;
		result = "timeout";
		for (;;) {
			gboolean closed = FALSE;
			g_autoptr(GDBusMessage) m = raw_read_message(fd, deadline, &closed);
			if (m == NULL) {
				result = closed ? "disconnected" : "timeout";
				break;
			}
			if (g_dbus_message_get_reply_serial(m) != serial)
				continue;
			result = g_dbus_message_get_message_type(m) == G_DBUS_MESSAGE_TYPE_ERROR
					 ? "error"
					 : "reply";
			break;
		}
	}
	/* a truncated message, or one that says its body is shorter than what was sent, leaves
	 * the bus waiting for the rest of a message: no answer is the answer */
	if ((kind == RAW_TRUNCATED || kind == RAW_BODY_LENGTH) && g_str_equal(result, "timeout"))
		result = "waiting";
	if (!owed && g_str_equal(result, "timeout"))
		result = "unanswerable";
	if (g_str_equal(result, "timeout") || g_str_equal(result, "unanswerable"))
		raw_describe(kind, blob, len);
	count_raw(kind, result);
	close(fd);
}

/* ---------------------------------------------------------------------------------------- */

static void
one_random_call(void)
{
	guint r = rint_range(0, 1000);
	const Method *m = &methods[rint_range(0, G_N_ELEMENTS(methods))];
	GDBusMessage *reply;

	if (r < 20) {
		raw_call((RawKind)rint_range(0, N_RAW));
		return;
	}
	if (r < 40) {
		/* another member, interface or path */
		static const struct {
			const gchar *path, *iface, *method;
		} others[] = {
			{PATH, IFACE, "NoSuchMethod"},
			{PATH, "org.freedesktop.DBus.Introspectable", "Introspect"},
			{PATH, "org.freedesktop.DBus.Properties", "GetAll"},
			{PATH, "org.freedesktop.DBus.Properties", "Get"},
			{PATH, "org.freedesktop.DBus.Properties", "Set"},
			{PATH, "org.freedesktop.DBus.Peer", "Ping"},
			{PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"},
			{"/", IFACE, "ListKeys"},
			{"/org/tkms/KeyManager/x", IFACE, "ListKeys"},
			{PATH, "org.tkms.KeyManagerX", "ListKeys"},
			{PATH, NULL, "ListKeys"},
			{PATH, NULL, "Encrypt"},
		};
		guint i = rint_range(0, G_N_ELEMENTS(others));
		GVariant *args;
		if (g_str_equal(others[i].method, "Get"))
			args = g_variant_new("(ss)", chance(700) ? IFACE : "x",
					     chance(700) ? "TpmAvailable" : "NoSuch");
		else if (g_str_equal(others[i].method, "Set"))
			args = g_variant_new("(ssv)", IFACE, "TpmLockedOut",
					     gen_value(G_VARIANT_TYPE("v"), 1));
		else if (g_str_equal(others[i].method, "GetAll"))
			args = g_variant_new("(s)", chance(800) ? IFACE : "x");
		else if (g_str_equal(others[i].method, "Encrypt"))
			args = gen_right_args(&methods[13]);
		else
			args = chance(800) ? NULL : gen_wrong_args(m);
		reply = call(others[i].path, others[i].iface, others[i].method, args);
	} else {
		GVariant *args = r < 640 ? gen_right_args(m) : gen_wrong_args(m);
		reply = call(PATH, IFACE, m->name, args);
	}
	g_clear_object(&reply);
}

static gint
compare_u32(gconstpointer a, gconstpointer b)
{
	guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;

	return x < y ? -1 : x > y;
}

/* A quantile (0..1) of the sorted reply times, ms. */
static guint32
latency_quantile(gdouble q)
{
	guint i;

	if (latencies->len == 0)
		return 0;
	i = (guint)(q * (latencies->len - 1) + 0.5);
	return g_array_index(latencies, guint32, MIN(i, latencies->len - 1));
}

static void
print_outcomes(void)
{
	g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(outcomes), (GCompareFunc)strcmp);
	g_autoptr(GList) raw =
		g_list_sort(g_hash_table_get_keys(raw_results), (GCompareFunc)strcmp);

	for (GList *l = keys; l != NULL; l = l->next) {
		Outcome *o = g_hash_table_lookup(outcomes, l->data);
		g_print("OUTCOME %s %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
			(const gchar *)l->data, o->count, o->max_ms);
	}
	for (GList *l = raw; l != NULL; l = l->next)
		g_print("RAW %s %" G_GUINT64_FORMAT "\n", (const gchar *)l->data,
			*(guint64 *)g_hash_table_lookup(raw_results, l->data));
	g_array_sort(latencies, compare_u32);
	g_print("TOTAL calls=%" G_GUINT64_FORMAT " raw=%" G_GUINT64_FORMAT
		" replies=%" G_GUINT64_FORMAT " noreply=%" G_GUINT64_FORMAT
		" reconnects=%" G_GUINT64_FORMAT " p50_ms=%u p99_ms=%u max_ms=%" G_GUINT64_FORMAT
		" mib=%" G_GUINT64_FORMAT "\n",
		n_calls, n_raw, n_replies, n_noreply, n_reconnects, latency_quantile(0.5),
		latency_quantile(0.99), max_ms, bytes_sent >> 20);
}

int
main(int argc, char **argv)
{
	gboolean opt_extremes = FALSE, opt_all_extremes = FALSE;
	gint64 opt_max_size = 0;
	GOptionEntry entries[] = {{"extremes", 0, 0, G_OPTION_ARG_NONE, &opt_extremes,
				   "Send the fixed extreme messages first", NULL},
				  {"all-extremes", 0, 0, G_OPTION_ARG_NONE, &opt_all_extremes,
				   "Send all of them (the long form)", NULL},
				  {"max-size", 0, 0, G_OPTION_ARG_INT64, &opt_max_size,
				   "Random payloads at most this long", "BYTES"},
				  {NULL}};
	g_autoptr(GOptionContext) ctx = g_option_context_new("CALLS SEED [NAME...]");
	g_autoptr(GError) error = NULL;
	guint64 calls = 0, seed = 0;

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc < 3 ||
	    !g_ascii_string_to_unsigned(argv[1], 10, 0, G_MAXUINT64, &calls, NULL) ||
	    !g_ascii_string_to_unsigned(argv[2], 10, 0, G_MAXUINT32, &seed, NULL)) {
		g_printerr("usage: tkms-dbus-fuzzer [--extremes|--all-extremes] [--max-size BYTES] "
			   "CALLS SEED [NAME...]\n");
		return 1;
	}
	if (opt_max_size > 0)
		max_size = (gsize)opt_max_size;
	bus_address = g_getenv("TKMS_TEST_BUS_ADDRESS");
	if (bus_address == NULL) {
		g_printerr("tkms-dbus-fuzzer: TKMS_TEST_BUS_ADDRESS is not set\n");
		return 1;
	}
	targets = argv + 3;
	rnd = g_rand_new_with_seed((guint32)seed);
	outcomes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	latencies = g_array_new(FALSE, FALSE, sizeof(guint32));
	raw_results = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	seeds_ct = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	seeds_blob = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	seeds_sig = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	seeds_mac = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	if (!connect_bus())
		return 1;
	g_print("START uid=%u calls=%" G_GUINT64_FORMAT " seed=%" G_GUINT64_FORMAT "\n",
		(guint)getuid(), calls, seed);

	make_seeds();
	if (opt_extremes || opt_all_extremes)
		extremes(opt_all_extremes);
	for (guint k = 0; k < N_RAW; k++)
		raw_call((RawKind)k);
	while (n_calls < calls)
		one_random_call();
	print_outcomes();
	if (conn != NULL)
		g_dbus_connection_close_sync(conn, NULL, NULL);
	return 0;
}
