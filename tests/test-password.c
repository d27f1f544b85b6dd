/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-password"

/* Password keys (issue 8) against tkmsd on swtpm: CreateKey's password options and what it
 * generates (length, character set, exclusions, an even distribution), ImportSecret and the
 * stages GetSecret reveals, the errors of wrong types and states, persistence across a
 * restart, and that no password ever reaches the audit log, tkmsd's log or a file of its
 * state directory. The waiting period before destruction is 2 s here. */

#include <math.h>
#include <string.h>

#include "tkms-test-env.h"
#include "tkms-test-util.h"

#define WAIT 2 /* [lifecycle] DestroyWaitingPeriod of this env */

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))

#define E_INVALID "org.tkms.KeyManager.Error.InvalidArgument"
#define E_NOT_FOUND "org.tkms.KeyManager.Error.NotFound"
#define E_KEY_STATE "org.tkms.KeyManager.Error.KeyState"

static const gchar letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static const gchar digits[] = "0123456789";
static const gchar punctuation[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/* Every password a test saw (generated or imported): none may leak (the last test). */
static GPtrArray *seen;

static GVariant *
call(const gchar *method, GVariant *params, const gchar *reply, GError **error)
{
	return g_dbus_connection_call_sync(tkms_test_env_get_connection(env), "org.tkms.KeyManager",
					   "/org/tkms/KeyManager", "org.tkms.KeyManager", method,
					   params, reply ? G_VARIANT_TYPE(reply) : NULL,
					   G_DBUS_CALL_FLAGS_NONE, 60000, NULL, error);
}

/* Asserts a TKMS error (by D-Bus name) and that the message says what it should. */
static void
call_fails(const gchar *method, GVariant *params, const gchar *error_name, const gchar *says)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call(method, params, NULL, &error);
	g_autofree gchar *remote = NULL;

	g_assert_null(r);
	g_assert_nonnull(error);
	remote = g_dbus_error_get_remote_error(error);
	g_test_message("%s -> %s: %s", method, remote, error->message);
	g_assert_cmpstr(remote, ==, error_name);
	if (says != NULL)
		g_assert_nonnull(strstr(error->message, says));
}

static GVariant *
ay(const void *data, gsize len)
{
	return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, len, 1);
}

static GVariant *
ay_str(const gchar *s)
{
	return ay(s, strlen(s));
}

static void
remember(GBytes *secret)
{
	for (guint i = 0; i < seen->len; i++)
		if (g_bytes_equal(g_ptr_array_index(seen, i), secret))
			return;
	g_ptr_array_add(seen, g_bytes_ref(secret));
}

/* GetSecret that must succeed. */
static GBytes *
get_secret(const gchar *name, const gchar *stage)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r =
		call("GetSecret", g_variant_new("(ss)", name, stage), "(ay)", &error);
	g_autoptr(GVariant) child = NULL;
	GBytes *secret;

	g_assert_no_error(error);
	child = g_variant_get_child_value(r, 0);
	secret = g_variant_get_data_as_bytes(child);
	remember(secret);
	return secret;
}

static guint32
import_secret(const gchar *name, GBytes *secret)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = NULL;
	gsize len = 0;
	const void *data = g_bytes_get_data(secret, &len);
	guint32 v = 0;

	remember(secret);
	r = call("ImportSecret", g_variant_new("(s@ay)", name, ay(data, len)), "(u)", &error);
	g_assert_no_error(error);
	g_variant_get(r, "(u)", &v);
	return v;
}

static guint32
rotate(const gchar *name)
{
	g_autoptr(GError) error = NULL;
	guint v = tkms_client_rotate_key_sync(CLIENT, name, NULL, &error);
	g_assert_no_error(error);
	return v;
}

static GVariant *
create_password(const gchar *name, GVariant *options)
{
	return tkms_test_create_key(CLIENT, name, "password",
				    options ? options : g_variant_new("a{sv}", NULL));
}

static GVariant *
key_info(const gchar *name)
{
	g_autoptr(GError) error = NULL;
	GVariant *info = tkms_client_get_key_info_sync(CLIENT, name, NULL, &error);
	g_assert_no_error(error);
	return info;
}

/* The stage GetKeyInfo shows for a version, or NULL. */
static gchar *
stage_of(GVariant *info, guint32 version)
{
	g_autoptr(GVariant) versions = g_variant_lookup_value(info, "versions", NULL);

	for (gsize i = 0; i < g_variant_n_children(versions); i++) {
		g_autoptr(GVariant) v = g_variant_get_child_value(versions, i);
		const gchar *stage = NULL;
		guint32 n = 0;
		g_variant_lookup(v, "version", "u", &n);
		if (n == version)
			return g_variant_lookup(v, "stage", "&s", &stage) ? g_strdup(stage) : NULL;
	}
	g_assert_not_reached();
}

static gchar *
state_of(GVariant *info, guint32 version)
{
	g_autoptr(GVariant) versions = g_variant_lookup_value(info, "versions", NULL);

	for (gsize i = 0; i < g_variant_n_children(versions); i++) {
		g_autoptr(GVariant) v = g_variant_get_child_value(versions, i);
		const gchar *state = NULL;
		guint32 n = 0;
		g_variant_lookup(v, "version", "u", &n);
		if (n == version) {
			g_assert_true(g_variant_lookup(v, "state", "&s", &state));
			return g_strdup(state);
		}
	}
	g_assert_not_reached();
}

static void
assert_spec(GVariant *info, guint32 length, const gchar *charset, const gchar *exclude)
{
	g_autoptr(GVariant) pw = g_variant_lookup_value(info, "password", G_VARIANT_TYPE_VARDICT);
	const gchar *s = NULL;
	guint32 n = 0;

	g_assert_nonnull(pw);
	g_assert_true(g_variant_lookup(pw, "length", "u", &n));
	g_assert_cmpuint(n, ==, length);
	g_assert_true(g_variant_lookup(pw, "charset", "&s", &s));
	g_assert_cmpstr(s, ==, charset);
	g_assert_true(g_variant_lookup(pw, "exclude", "&s", &s));
	g_assert_cmpstr(s, ==, exclude);
}

static gchar *
charset_chars(const gchar *charset)
{
	if (g_str_equal(charset, "alnum"))
		return g_strconcat(letters, digits, NULL);
	if (g_str_equal(charset, "alnum-symbols"))
		return g_strconcat(letters, digits, punctuation, NULL);
	if (g_str_equal(charset, "hex"))
		return g_strdup("0123456789abcdef");
	g_assert_cmpstr(charset, ==, "base64url");
	return g_strconcat(letters, digits, "-_", NULL);
}

/* Asserts that secret has length characters, all from allowed. */
static void
assert_password(GBytes *secret, guint32 length, const gchar *allowed)
{
	gsize len = 0;
	const gchar *p = g_bytes_get_data(secret, &len);

	g_assert_cmpuint(len, ==, length);
	for (gsize i = 0; i < len; i++) {
		if (p[i] == '\0' || strchr(allowed, p[i]) == NULL)
			g_error("character 0x%02x at %zu is not in the set \"%s\"", (guchar)p[i], i,
				allowed);
	}
}

/* ---- CreateKey ---- */

static void
test_create_defaults(void)
{
	g_autofree gchar *name = tkms_test_key_name("pw-default");
	g_autoptr(GVariant) info = create_password(name, NULL);
	g_autofree gchar *all = charset_chars("alnum-symbols");
	g_autoptr(GBytes) current = NULL;
	g_autoptr(GBytes) empty_stage = NULL;
	g_autofree gchar *stage = NULL;
	const gchar *s = NULL;

	g_assert_true(g_variant_lookup(info, "type", "&s", &s));
	g_assert_cmpstr(s, ==, "password");
	g_assert_true(g_variant_lookup(info, "protection", "&s", &s));
	g_assert_cmpstr(s, ==, "sealed");
	assert_spec(info, 32, "alnum-symbols", "");
	stage = stage_of(info, 1);
	g_assert_cmpstr(stage, ==, "current");
	g_assert_false(g_variant_lookup(info, "rotation", "@a{sv}", NULL));
	g_assert_false(g_variant_lookup(info, "last-rotation", "@a{sv}", NULL));

	current = get_secret(name, "current");
	assert_password(current, 32, all);
	/* the empty stage is the current one */
	empty_stage = get_secret(name, "");
	tkms_assert_bytes_equal(current, empty_stage);
	/* GetKeyInfo shows the same as CreateKey returned */
	{
		g_autoptr(GVariant) again = key_info(name);
		g_assert_true(g_variant_equal(info, again));
	}
}

/* Each charset at both ends of the length range. */
static void
test_create_charsets(void)
{
	static const gchar *const charsets[] = {"alnum", "alnum-symbols", "hex", "base64url"};
	static const guint32 lengths[] = {8, 256};

	for (guint i = 0; i < G_N_ELEMENTS(charsets); i++) {
		g_autofree gchar *allowed = charset_chars(charsets[i]);
		for (guint j = 0; j < G_N_ELEMENTS(lengths); j++) {
			g_autofree gchar *name = tkms_test_key_name("pw-charset");
			g_autoptr(GVariantDict) opts = g_variant_dict_new(NULL);
			g_autoptr(GVariant) info = NULL;
			g_autoptr(GBytes) secret = NULL;

			g_variant_dict_insert(opts, "charset", "s", charsets[i]);
			g_variant_dict_insert(opts, "length", "u", lengths[j]);
			info = create_password(name, g_variant_dict_end(opts));
			assert_spec(info, lengths[j], charsets[i], "");
			secret = get_secret(name, "current");
			assert_password(secret, lengths[j], allowed);
		}
	}
}

static void
test_create_exclude(void)
{
	g_autofree gchar *name = tkms_test_key_name("pw-exclude");
	g_autofree gchar *name2 = tkms_test_key_name("pw-exclude");
	g_autoptr(GVariantDict) opts = g_variant_dict_new(NULL);
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GVariant) info2 = NULL;
	g_autofree gchar *all = charset_chars("alnum-symbols");
	GString *allowed = g_string_new(NULL);
	const gchar *exclude = "0O1lI'\"\\` ";
	g_autofree gchar *allowed_s = NULL;

	for (const gchar *c = all; *c != '\0'; c++)
		if (strchr(exclude, *c) == NULL)
			g_string_append_c(allowed, *c);
	allowed_s = g_string_free(allowed, FALSE);
	g_variant_dict_insert(opts, "exclude", "s", exclude);
	g_variant_dict_insert(opts, "length", "u", 256);
	info = create_password(name, g_variant_dict_end(opts));
	assert_spec(info, 256, "alnum-symbols", exclude);
	/* 256 characters from 85: an excluded one would show */
	for (guint i = 0; i < 4; i++) {
		g_autoptr(GBytes) secret = get_secret(name, "current");
		assert_password(secret, 256, allowed_s);
		rotate(name);
	}
	/* 2 characters left is enough */
	opts = g_variant_dict_new(NULL);
	g_variant_dict_insert(opts, "charset", "s", "hex");
	g_variant_dict_insert(opts, "exclude", "s", "0123456789abcd");
	g_variant_dict_insert(opts, "length", "u", 64);
	info2 = create_password(name2, g_variant_dict_end(opts));
	{
		g_autoptr(GBytes) secret = get_secret(name2, "current");
		gsize len = 0;
		const gchar *p = g_bytes_get_data(secret, &len);
		gboolean e = FALSE, f = FALSE;
		assert_password(secret, 64, "ef");
		for (gsize i = 0; i < len; i++) {
			e |= p[i] == 'e';
			f |= p[i] == 'f';
		}
		/* each is missing from 64 fair draws with probability 2^-64 */
		g_assert_true(e && f);
	}
}

static void
test_create_bad_options(void)
{
	static const struct {
		const gchar *type;
		const gchar *options; /* GVariant text */
		const gchar *says;
	} cases[] = {
		{"password", "{'length': <uint32 7>}", "8 to 256"},
		{"password", "{'length': <uint32 257>}", "8 to 256"},
		{"password", "{'length': <uint32 0>}", "8 to 256"},
		{"password", "{'length': <'32'>}", "uint32"},
		{"password", "{'length': <uint64 32>}", "uint32"},
		{"password", "{'charset': <'bogus'>}", "alnum, alnum-symbols, hex or base64url"},
		{"password", "{'charset': <'ALNUM'>}", "alnum, alnum-symbols, hex or base64url"},
		{"password", "{'charset': <uint32 1>}", "string"},
		{"password", "{'exclude': <uint32 1>}", "string"},
		{"password", "{'charset': <'hex'>, 'exclude': <'0123456789abcde'>}", "at least 2"},
		{"password", "{'charset': <'hex'>, 'exclude': <'0123456789abcdef'>}", "at least 2"},
		{"password", "{'exclude': <'\u00e9'>}", "printable ASCII"},
		{"password", "{'exclude': <'a\tb'>}", "printable ASCII"},
		{"password", "{'protection': <'tpm'>}", "sealed"},
		{"password", "{'activate-at': <uint64 4000000000>}", "activate-at"},
		{"password", "{'hook': <'postgresql'>}", "Unknown option"},
		{"aes-256-gcm", "{'length': <uint32 32>}", "password keys"},
		{"hmac-sha256", "{'charset': <'hex'>}", "password keys"},
		{"ecdsa-p256", "{'exclude': <'a'>}", "password keys"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *name = tkms_test_key_name("pw-bad");
		g_autoptr(GError) error = NULL;
		GVariant *options = g_variant_parse(G_VARIANT_TYPE_VARDICT, cases[i].options, NULL,
						    NULL, &error);

		g_assert_no_error(error);
		g_test_message("%s %s", cases[i].type, cases[i].options);
		call_fails("CreateKey", g_variant_new("(ss@a{sv})", name, cases[i].type, options),
			   E_INVALID, cases[i].says);
		/* nothing was made */
		call_fails("GetKeyInfo", g_variant_new("(s)", name), E_NOT_FOUND, NULL);
	}
	/* an exclude of 128 characters or more */
	{
		g_autofree gchar *name = tkms_test_key_name("pw-bad");
		g_autofree gchar *longer = g_strnfill(128, 'a');
		call_fails(
			"CreateKey",
			g_variant_new_parsed("(%s, 'password', {'exclude': <%s>})", name, longer),
			E_INVALID, "at most 127");
	}
}

/* ---- the distribution ---- */

/* Pearson's chi-square of counts against a uniform distribution over n symbols. */
static gdouble
chi_square(const guint *counts, guint n, guint total)
{
	gdouble expected = (gdouble)total / n, x = 0;

	for (guint i = 0; i < n; i++)
		x += (counts[i] - expected) * (counts[i] - expected) / expected;
	return x;
}

/* Counts the characters of rounds passwords of key name (rotated between them). */
static guint
count_chars(const gchar *name, guint rounds, const gchar *alphabet, guint *counts)
{
	guint total = 0;

	for (guint r = 0; r < rounds; r++) {
		g_autoptr(GBytes) secret = get_secret(name, "current");
		gsize len = 0;
		const gchar *p = g_bytes_get_data(secret, &len);

		for (gsize i = 0; i < len; i++) {
			const gchar *at = strchr(alphabet, p[i]);
			g_assert_nonnull(at);
			counts[at - alphabet]++;
			total++;
		}
		if (r + 1 < rounds)
			rotate(name);
	}
	return total;
}

/*
 * Passwords are drawn without modulo bias. With a byte mod 62 (alnum), the first 256 % 62 = 8
 * characters would come 5 times in 256 instead of 4: over 200 passwords of 256 characters
 * (51,200) that is a chi-square near 300 for 61 degrees of freedom, whose mean is 61 and
 * standard deviation 11. A fair generator passes 130 (6 standard deviations) all but about
 * once in a million runs.
 */
static void
test_distribution(void)
{
	g_autofree gchar *alnum = charset_chars("alnum");
	g_autofree gchar *name = tkms_test_key_name("pw-dist");
	g_autofree gchar *hex_name = tkms_test_key_name("pw-dist-hex");
	g_autofree gchar *sym_name = tkms_test_key_name("pw-dist-sym");
	g_autofree gchar *symbols = charset_chars("alnum-symbols");
	guint counts[94] = {0};
	guint total;
	gdouble x;

	create_password(name, g_variant_new_parsed("{'charset': <'alnum'>, "
						   "'length': <uint32 256>}"));
	total = count_chars(name, 200, alnum, counts);
	x = chi_square(counts, 62, total);
	g_test_message("alnum: %u characters, chi-square %.1f (61 degrees of freedom)", total, x);
	g_assert_cmpfloat(x, <, 130);
	for (guint i = 0; i < 62; i++)
		g_assert_cmpuint(counts[i], >, 0);

	/* every hex digit, evenly (15 degrees of freedom: mean 15, sd 5.5) */
	memset(counts, 0, sizeof(counts));
	create_password(hex_name, g_variant_new_parsed("{'charset': <'hex'>, "
						       "'length': <uint32 64>}"));
	total = count_chars(hex_name, 50, "0123456789abcdef", counts);
	x = chi_square(counts, 16, total);
	g_test_message("hex: %u characters, chi-square %.1f (15 degrees of freedom)", total, x);
	g_assert_cmpfloat(x, <, 60);
	for (guint i = 0; i < 16; i++)
		g_assert_cmpuint(counts[i], >, 0);

	/* alnum-symbols: 256 % 94 = 68 characters would be half again as likely as the rest;
	 * 93 degrees of freedom: mean 93, sd 13.6 */
	memset(counts, 0, sizeof(counts));
	create_password(sym_name, g_variant_new_parsed("{'length': <uint32 256>}"));
	total = count_chars(sym_name, 50, symbols, counts);
	x = chi_square(counts, 94, total);
	g_test_message("alnum-symbols: %u characters, chi-square %.1f (93 degrees of freedom)",
		       total, x);
	g_assert_cmpfloat(x, <, 180);
	for (guint i = 0; i < 94; i++)
		g_assert_cmpuint(counts[i], >, 0);
}

/* ---- ImportSecret and the stages ---- */

static void
test_import(void)
{
	g_autofree gchar *name = tkms_test_key_name("pw-import");
	g_autoptr(GVariant) created = create_password(name, NULL);
	g_autoptr(GBytes) first = get_secret(name, "current");
	g_autoptr(GBytes) imported = tkms_test_bytes_str("s3rvice-Pässwörd: ünïcode ✓ 8f2a1c");
	g_autoptr(GBytes) imported2 = tkms_test_bytes_str("second-imported-secret-7d1e0b9c44");
	g_autoptr(GVariant) info = NULL;
	g_autofree gchar *s1 = NULL;
	g_autofree gchar *s2 = NULL;
	g_autofree gchar *s3 = NULL;
	g_autofree gchar *st1 = NULL;

	/* nothing pending or previous yet */
	call_fails("GetSecret", g_variant_new("(ss)", name, "pending"), E_NOT_FOUND, "pending");
	call_fails("GetSecret", g_variant_new("(ss)", name, "previous"), E_NOT_FOUND, "previous");

	g_assert_cmpuint(import_secret(name, imported), ==, 2);
	{
		g_autoptr(GBytes) current = get_secret(name, "current");
		g_autoptr(GBytes) previous = get_secret(name, "previous");
		tkms_assert_bytes_equal(current, imported);
		tkms_assert_bytes_equal(previous, first);
	}
	call_fails("GetSecret", g_variant_new("(ss)", name, "pending"), E_NOT_FOUND, "rotation");
	info = key_info(name);
	s1 = stage_of(info, 1);
	s2 = stage_of(info, 2);
	g_assert_cmpstr(s1, ==, "previous");
	g_assert_cmpstr(s2, ==, "current");
	g_clear_pointer(&info, g_variant_unref);
	g_clear_pointer(&s1, g_free);
	g_clear_pointer(&s2, g_free);

	/* again: the old previous is deactivated and has no stage */
	g_assert_cmpuint(import_secret(name, imported2), ==, 3);
	{
		g_autoptr(GBytes) current = get_secret(name, "current");
		g_autoptr(GBytes) previous = get_secret(name, "previous");
		tkms_assert_bytes_equal(current, imported2);
		tkms_assert_bytes_equal(previous, imported);
	}
	info = key_info(name);
	s1 = stage_of(info, 1);
	s2 = stage_of(info, 2);
	s3 = stage_of(info, 3);
	st1 = state_of(info, 1);
	g_assert_null(s1);
	g_assert_cmpstr(st1, ==, "deactivated");
	g_assert_cmpstr(s2, ==, "previous");
	g_assert_cmpstr(s3, ==, "current");
	{
		g_autofree gchar *st2 = state_of(info, 2);
		g_assert_cmpstr(st2, ==, "active");
	}

	/* RotateKey generates a new current one the same way */
	g_assert_cmpuint(rotate(name), ==, 4);
	{
		g_autoptr(GBytes) current = get_secret(name, "current");
		g_autoptr(GBytes) previous = get_secret(name, "previous");
		g_autofree gchar *all = charset_chars("alnum-symbols");
		assert_password(current, 32, all);
		tkms_assert_bytes_equal(previous, imported2);
	}
}

static void
test_import_sizes(void)
{
	g_autofree gchar *name = tkms_test_key_name("pw-import-size");
	g_autoptr(GVariant) created = create_password(name, NULL);
	g_autoptr(GBytes) one = tkms_test_bytes_str("x");
	gchar *big = g_malloc(4096);
	g_autoptr(GBytes) largest = NULL;

	for (guint i = 0; i < 4096; i++)
		big[i] = 'A' + (i * 7 + i / 26) % 26;
	largest = g_bytes_new_take(big, 4096);
	g_assert_cmpuint(import_secret(name, largest), ==, 2);
	{
		g_autoptr(GBytes) got = get_secret(name, "current");
		tkms_assert_bytes_equal(got, largest);
	}
	g_assert_cmpuint(import_secret(name, one), ==, 3);
	{
		g_autoptr(GBytes) got = get_secret(name, "current");
		g_autoptr(GBytes) prev = get_secret(name, "previous");
		tkms_assert_bytes_equal(got, one);
		tkms_assert_bytes_equal(prev, largest);
	}
}

static void
test_import_bad(void)
{
	g_autofree gchar *name = tkms_test_key_name("pw-import-bad");
	g_autofree gchar *aes = tkms_test_key_name("aes-import");
	g_autoptr(GVariant) created = create_password(name, NULL);
	g_autoptr(GVariant) aes_info = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
	g_autofree gchar *too_big = g_strnfill(4097, 'a');
	static const guint8 with_nul[] = {'a', 'b', 0, 'c'};
	static const guint8 not_utf8[] = {'a', 0xc3, 0x28, 'b'};
	static const guint8 overlong[] = {0xc0, 0xaf};

	call_fails("ImportSecret", g_variant_new("(s@ay)", name, ay("", 0)), E_INVALID,
		   "1 to 4096");
	call_fails("ImportSecret", g_variant_new("(s@ay)", name, ay_str(too_big)), E_INVALID,
		   "1 to 4096");
	call_fails("ImportSecret", g_variant_new("(s@ay)", name, ay(with_nul, sizeof(with_nul))),
		   E_INVALID, "UTF-8");
	call_fails("ImportSecret", g_variant_new("(s@ay)", name, ay(not_utf8, sizeof(not_utf8))),
		   E_INVALID, "UTF-8");
	call_fails("ImportSecret", g_variant_new("(s@ay)", name, ay(overlong, sizeof(overlong))),
		   E_INVALID, "UTF-8");
	call_fails("ImportSecret", g_variant_new("(s@ay)", aes, ay_str("secret-for-aes")),
		   E_INVALID, "aes-256-gcm");
	call_fails("ImportSecret", g_variant_new("(s@ay)", "no-such-key", ay_str("whatever-1")),
		   E_NOT_FOUND, NULL);
	/* nothing changed */
	{
		g_autoptr(GVariant) info = key_info(name);
		g_autoptr(GVariant) versions = g_variant_lookup_value(info, "versions", NULL);
		g_assert_cmpuint(g_variant_n_children(versions), ==, 1);
	}
}

static void
test_stages(void)
{
	g_autofree gchar *name = tkms_test_key_name("pw-stage");
	g_autoptr(GVariant) created = create_password(name, NULL);

	call_fails("GetSecret", g_variant_new("(ss)", name, "bogus"), E_INVALID,
		   "current (or empty), pending or previous");
	call_fails("GetSecret", g_variant_new("(ss)", name, "Current"), E_INVALID, NULL);
	call_fails("GetSecret", g_variant_new("(ss)", name, "pending"), E_NOT_FOUND, NULL);
	call_fails("GetSecret", g_variant_new("(ss)", "no-such-key", "current"), E_NOT_FOUND, NULL);
}

/* A password key does nothing but hold a password; other keys hold none. */
static void
test_wrong_types(void)
{
	g_autofree gchar *name = tkms_test_key_name("pw-type");
	g_autofree gchar *aes = tkms_test_key_name("aes-type");
	g_autoptr(GVariant) created = create_password(name, NULL);
	g_autoptr(GVariant) aes_info = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
	static const guint8 digest[32] = {1};

	call_fails("Encrypt", g_variant_new("(s@ay@ay)", name, ay_str("data"), ay("", 0)),
		   E_INVALID, "GetSecret");
	call_fails("Decrypt",
		   g_variant_new("(s@ay@ay)", name,
				 ay_str("data-data-data-data-data-"
					"data-data-data"),
				 ay("", 0)),
		   E_INVALID, "GetSecret");
	call_fails("Sign", g_variant_new("(s@ay)", name, ay_str("data")), E_INVALID, "GetSecret");
	call_fails("SignDigest", g_variant_new("(s@ay)", name, ay(digest, 32)), E_INVALID,
		   "GetSecret");
	call_fails("Hmac", g_variant_new("(s@ay)", name, ay_str("data")), E_INVALID, "GetSecret");
	call_fails("DeriveKey", g_variant_new("(s@ayu)", name, ay_str("ctx"), 32), E_INVALID,
		   "GetSecret");
	call_fails("GenerateDataKey", g_variant_new("(su@ay)", name, 32, ay("", 0)), E_INVALID,
		   "GetSecret");
	call_fails("GetPublicKey", g_variant_new("(s)", name), E_INVALID, "GetSecret");
	call_fails("GetSecret", g_variant_new("(ss)", aes, "current"), E_INVALID, "aes-256-gcm");
}

/* Versions reveal what their state allows. */
static void
test_states(void)
{
	g_autofree gchar *name = tkms_test_key_name("pw-state");
	g_autoptr(GVariant) created = create_password(name, NULL);
	g_autoptr(GBytes) first = get_secret(name, "current");
	g_autoptr(GError) error = NULL;

	g_assert_cmpuint(rotate(name), ==, 2);
	/* a suspended password is not revealed until resumed */
	g_assert_true(
		tkms_client_set_key_version_state_sync(CLIENT, name, 1, "suspended", NULL, &error));
	g_assert_no_error(error);
	call_fails("GetSecret", g_variant_new("(ss)", name, "previous"), E_KEY_STATE, "resumed");
	g_bytes_unref(get_secret(name, "current"));
	g_assert_true(
		tkms_client_set_key_version_state_sync(CLIENT, name, 1, "active", NULL, &error));
	g_assert_no_error(error);
	{
		g_autoptr(GBytes) previous = get_secret(name, "previous");
		tkms_assert_bytes_equal(previous, first);
	}
	/* a deactivated previous one still is */
	g_assert_true(tkms_client_set_key_version_state_sync(CLIENT, name, 1, "deactivated", NULL,
							     &error));
	g_assert_no_error(error);
	{
		g_autoptr(GBytes) previous = get_secret(name, "previous");
		tkms_assert_bytes_equal(previous, first);
	}
	/* compromised: only for an administrator */
	g_assert_true(tkms_client_set_key_version_state_sync(CLIENT, name, 1, "compromised", NULL,
							     &error));
	g_assert_no_error(error);
	{
		const gchar *no_admin[] = {TKMS_ACTION_READ_SECRET, TKMS_ACTION_READ_KEY,
					   TKMS_ACTION_MANAGE_KEY, TKMS_ACTION_DESTROY_KEY, NULL};
		g_autoptr(TkmsClient) fresh = NULL;
		g_assert_true(tkms_test_env_polkit_set_allowed(env, no_admin, &error));
		g_assert_no_error(error);
		/* a new bus name: nothing cached for it */
		fresh = tkms_test_new_client(env);
		{
			g_autoptr(GVariant) r = g_dbus_connection_call_sync(
				tkms_client_get_connection(fresh), "org.tkms.KeyManager",
				"/org/tkms/KeyManager", "org.tkms.KeyManager", "GetSecret",
				g_variant_new("(ss)", name, "previous"), NULL,
				G_DBUS_CALL_FLAGS_NONE, 60000, NULL, &error);
			g_autofree gchar *remote = NULL;
			g_assert_null(r);
			remote = g_dbus_error_get_remote_error(error);
			g_assert_cmpstr(remote, ==, E_KEY_STATE);
			g_assert_nonnull(strstr(error->message, "administrator"));
			g_clear_error(&error);
		}
		g_assert_true(tkms_test_env_polkit_allow_all(env, &error));
		g_assert_no_error(error);
	}
	{
		g_autoptr(TkmsClient) fresh = tkms_test_new_client(env);
		g_autoptr(GVariant) r = g_dbus_connection_call_sync(
			tkms_client_get_connection(fresh), "org.tkms.KeyManager",
			"/org/tkms/KeyManager", "org.tkms.KeyManager", "GetSecret",
			g_variant_new("(ss)", name, "previous"), G_VARIANT_TYPE("(ay)"),
			G_DBUS_CALL_FLAGS_NONE, 60000, NULL, &error);
		g_autoptr(GVariant) child = NULL;
		g_autoptr(GBytes) got = NULL;
		g_assert_no_error(error);
		child = g_variant_get_child_value(r, 0);
		got = g_variant_get_data_as_bytes(child);
		tkms_assert_bytes_equal(got, first);
	}
	/* destroy-scheduled: not revealed; destroyed: gone */
	g_assert_true(tkms_client_destroy_key_version_sync(CLIENT, name, 1, NULL, &error));
	g_assert_no_error(error);
	call_fails("GetSecret", g_variant_new("(ss)", name, "previous"), E_KEY_STATE,
		   "destruction is cancelled");
	for (guint i = 0; i < (WAIT + 5) * 10; i++) {
		g_autoptr(GVariant) info = key_info(name);
		g_autofree gchar *st = state_of(info, 1);
		if (g_str_equal(st, "destroyed"))
			break;
		tkms_test_spin(100);
	}
	call_fails("GetSecret", g_variant_new("(ss)", name, "previous"), E_NOT_FOUND, NULL);
	g_bytes_unref(get_secret(name, "current"));
}

/* ---- persistence and leaks ---- */

static void
test_restart(void)
{
	g_autofree gchar *name = tkms_test_key_name("pw-restart");
	g_autoptr(GVariant) info = create_password(
		name, g_variant_new_parsed("{'length': <uint32 40>, 'charset': <'base64url'>, "
					   "'exclude': <'-_'>}"));
	g_autoptr(GBytes) generated = get_secret(name, "current");
	g_autoptr(GBytes) imported = tkms_test_bytes_str("restart-imported-5b0f3e9a12c4");
	g_autoptr(GError) error = NULL;

	g_assert_cmpuint(import_secret(name, imported), ==, 2);
	g_assert_true(tkms_test_env_stop_daemon(env, &error));
	g_assert_no_error(error);
	g_assert_true(tkms_test_env_start_daemon(env, &error));
	g_assert_no_error(error);
	{
		g_autoptr(GVariant) after = key_info(name);
		g_autoptr(GBytes) current = get_secret(name, "current");
		g_autoptr(GBytes) previous = get_secret(name, "previous");
		g_autofree gchar *s1 = stage_of(after, 1);
		assert_spec(after, 40, "base64url", "-_");
		g_assert_cmpstr(s1, ==, "previous");
		tkms_assert_bytes_equal(current, imported);
		tkms_assert_bytes_equal(previous, generated);
	}
	/* a rotation after the restart still follows the stored spec */
	rotate(name);
	{
		g_autoptr(GBytes) current = get_secret(name, "current");
		g_autofree gchar *all = charset_chars("alnum");
		assert_password(current, 40, all);
	}
}

static void
grep_tree(const gchar *dir, GBytes *secret)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *entry;

	g_assert_nonnull(d);
	while ((entry = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *path = g_build_filename(dir, entry, NULL);
		g_autofree gchar *contents = NULL;
		gsize len = 0;

		if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
			grep_tree(path, secret);
			continue;
		}
		if (!g_file_get_contents(path, &contents, &len, NULL))
			continue; /* gone between listing and reading (a temporary) */
		if (memmem(contents, len, g_bytes_get_data(secret, NULL),
			   g_bytes_get_size(secret)) != NULL)
			g_error("a password is in %s", path);
	}
}

/* No password seen by the tests above is in the audit log, tkmsd's log or any file of its
 * state directory (the key store included), as raw bytes. */
static void
test_no_leak(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *log = NULL;
	g_autofree gchar *audit_path =
		g_build_filename(tkms_test_env_get_state_dir(env), "audit.log", NULL);
	g_autofree gchar *audit = NULL;
	guint checked = 0;

	g_assert_cmpuint(seen->len, >, 200);
	/* every file as tkmsd leaves it, its WAL folded in or not */
	g_assert_true(tkms_test_env_stop_daemon(env, &error));
	g_assert_no_error(error);
	log = tkms_test_env_get_daemon_log(env);
	g_assert_true(g_file_get_contents(audit_path, &audit, NULL, &error));
	g_assert_no_error(error);
	/* GetSecret and ImportSecret were audited, with the stage */
	g_assert_nonnull(strstr(audit, "\"GetSecret\""));
	g_assert_nonnull(strstr(audit, "\"ImportSecret\""));
	g_assert_nonnull(strstr(audit, "stage previous"));
	for (guint i = 0; i < seen->len; i++) {
		GBytes *secret = g_ptr_array_index(seen, i);
		gsize len = 0;
		const gchar *p = g_bytes_get_data(secret, &len);

		/* short ones could occur by chance */
		if (len < 8)
			continue;
		g_assert_null(memmem(log, strlen(log), p, len));
		grep_tree(tkms_test_env_get_state_dir(env), secret);
		checked++;
	}
	g_test_message("%u passwords checked", checked);
	g_assert_true(tkms_test_env_start_daemon(env, &error));
	g_assert_no_error(error);
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_or_abort("[lifecycle]\nDestroyWaitingPeriod=2\n");
	seen = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);

	g_test_add_func("/password/create/defaults", test_create_defaults);
	g_test_add_func("/password/create/charsets", test_create_charsets);
	g_test_add_func("/password/create/exclude", test_create_exclude);
	g_test_add_func("/password/create/bad-options", test_create_bad_options);
	g_test_add_func("/password/create/distribution", test_distribution);
	g_test_add_func("/password/secret/import", test_import);
	g_test_add_func("/password/secret/import-sizes", test_import_sizes);
	g_test_add_func("/password/secret/import-bad", test_import_bad);
	g_test_add_func("/password/secret/stages", test_stages);
	g_test_add_func("/password/secret/wrong-types", test_wrong_types);
	g_test_add_func("/password/secret/states", test_states);
	g_test_add_func("/password/secret/restart", test_restart);
	/* last (suites run in the order they were added, each before its subsuites): it
	 * checks what every test before left */
	g_test_add_func("/password/leak/none", test_no_leak);

	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	g_ptr_array_unref(seen);
	tkms_test_env_free(env);
	return ret;
}
