/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-authz-tenancy"

/*
 * Per-user namespaces and the admin scope against the real polkitd, with real users
 * (tkms-test-a, tkms-test-b, tkms-test-admin), and bad input: malformed OWNER:NAME, unknown
 * uids, hostile names, wrong argument types sent raw (tkms-test-helper, busctl, gdbus). After
 * every bad input the same daemon process still answers.
 *
 * Rules: a, b and admin may do everything on their own keys; org.tkms.KeyManager.admin is
 * YES for tkms-test-admin, NO for tkms-test-b and the policy default (auth_admin_keep, i.e. a
 * challenge nobody can answer) for tkms-test-a. Root is always authorized by polkitd.
 */

#include <pwd.h>
#include <string.h>

#include "tkms-test-authz.h"

static TkmsTestEnv *env;
static AuthzCaller *root, *ca, *cb, *cadmin;
static gint daemon_pid;
static GPtrArray *signals_seen; /* printed signals of the daemon */

static const gchar rules[] =
	"polkit.addRule(function(action, subject) {\n"
	"    if (action.id.indexOf(\"org.tkms.KeyManager.\") != 0)\n"
	"        return polkit.Result.NOT_HANDLED;\n"
	"    var u = subject.user;\n"
	"    if (action.id == \"org.tkms.KeyManager.admin\") {\n"
	"        if (u == \"" AUTHZ_USER_ADMIN "\") return polkit.Result.YES;\n"
	"        if (u == \"" AUTHZ_USER_B "\") return polkit.Result.NO;\n"
	"        return polkit.Result.NOT_HANDLED;\n"
	"    }\n"
	"    if (u == \"" AUTHZ_USER_A "\" || u == \"" AUTHZ_USER_B "\" ||\n"
	"        u == \"" AUTHZ_USER_ADMIN "\")\n"
	"        return polkit.Result.YES;\n"
	"    return polkit.Result.NOT_HANDLED;\n"
	"});\n";

static GVariant *
no_options(void)
{
	return g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
}

static GVariant *
bytes_v(const gchar *s)
{
	return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, s, strlen(s), 1);
}

static gchar *
owned(guint32 uid, const gchar *name)
{
	return g_strdup_printf("%u:%s", uid, name);
}

/* Asserts the outcome ("OK" or an error short name / full D-Bus name) of a call. */
#define assert_outcome(r, want)                                                                    \
	G_STMT_START                                                                               \
	{                                                                                          \
		const gchar *got_ = authz_reply_outcome(r);                                        \
		if (!g_str_equal(got_, (want)))                                                    \
			g_error("%s:%d: expected %s, got %s: %s", __FILE__, __LINE__, (want),      \
				got_, (r)->message ? (r)->message : "");                           \
	}                                                                                          \
	G_STMT_END

static AuthzReply *
call(AuthzCaller *c, const gchar *method, GVariant *args)
{
	return authz_call(c, method, FALSE, args);
}

static void
expect(AuthzCaller *c, const gchar *method, GVariant *args, const gchar *want)
{
	g_autoptr(AuthzReply) r = call(c, method, args);
	g_test_message("%s as %s -> %s", method, c->user, authz_reply_outcome(r));
	assert_outcome(r, want);
}

static void
create(AuthzCaller *c, const gchar *name, const gchar *type)
{
	expect(c, "CreateKey", g_variant_new("(ss@a{sv})", name, type, no_options()), "OK");
}

static guint32
info_owner(AuthzCaller *c, const gchar *name)
{
	g_autoptr(AuthzReply) r = call(c, "GetKeyInfo", g_variant_new("(s)", name));
	g_autoptr(GVariant) info = NULL;
	guint32 owner = G_MAXUINT32;

	info = g_variant_get_child_value(authz_assert_ok(r, name), 0);
	g_assert_true(g_variant_lookup(info, "owner", "u", &owner));
	return owner;
}

static gchar *
list(AuthzCaller *c, const gchar *method)
{
	g_autoptr(AuthzReply) r = call(c, method, g_variant_new("()"));
	g_autoptr(GVariant) keys = g_variant_get_child_value(authz_assert_ok(r, method), 0);
	return authz_key_list_names(keys, TRUE);
}

static GBytes *
encrypt(AuthzCaller *c, const gchar *name, const gchar *text)
{
	g_autoptr(AuthzReply) r =
		call(c, "Encrypt", g_variant_new("(s@ay@ay)", name, bytes_v(text), bytes_v("")));
	g_autoptr(GVariant) ct = g_variant_get_child_value(authz_assert_ok(r, "Encrypt"), 0);
	return g_variant_get_data_as_bytes(ct);
}

static AuthzReply *
decrypt(AuthzCaller *c, const gchar *name, GBytes *ct)
{
	return call(c, "Decrypt",
		    g_variant_new("(s@ay@ay)", name,
				  g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, ct, TRUE),
				  bytes_v("")));
}

/* The same daemon process is alive and answers. */
static void
assert_daemon_answers(void)
{
	g_autoptr(AuthzReply) r = call(root, "GetRandom", g_variant_new("(u)", 8u));
	authz_assert_ok(r, "GetRandom (is the daemon alive?)");
	g_assert_cmpint(tkms_test_env_get_daemon_pid(env), ==, daemon_pid);
	g_assert_true(tkms_test_env_daemon_is_running(env));
}

/* ---------------------------------------------------------------------------------------- */

static void
test_same_name(void)
{
	g_autofree gchar *a_db = owned(authz_uid_a, "db");
	g_autofree gchar *b_db = owned(authz_uid_b, "db");
	g_autofree gchar *la = NULL;
	g_autofree gchar *lb = NULL;
	g_autoptr(GBytes) ct_a = NULL;
	g_autoptr(AuthzReply) r1 = NULL;
	g_autoptr(AuthzReply) r2 = NULL;
	g_autoptr(GHashTable) before = NULL;
	g_autoptr(GHashTable) after = NULL;
	g_autofree gchar *diff = NULL;

	create(ca, "db", "aes-256-gcm");
	create(cb, "db", "aes-256-gcm");
	create(ca, "only-a", "hmac-sha256");
	g_assert_cmpuint(info_owner(ca, "db"), ==, authz_uid_a);
	g_assert_cmpuint(info_owner(cb, "db"), ==, authz_uid_b);

	/* ListKeys: each only their own */
	la = list(ca, "ListKeys");
	lb = list(cb, "ListKeys");
	{
		g_autofree gchar *want_a = g_strdup_printf("%s,%u:only-a", a_db, authz_uid_a);
		g_assert_cmpstr(la, ==, want_a);
		g_assert_cmpstr(lb, ==, b_db);
	}

	/* the two keys are different keys: b's "db" does not open a's ciphertext */
	ct_a = encrypt(ca, "db", "a's secret");
	r1 = decrypt(cb, "db", ct_a);
	g_test_message("b decrypting a's ciphertext with its own db: %s", authz_reply_outcome(r1));
	g_assert_false(r1->ok);
	g_assert_cmpstr(authz_reply_outcome(r1), !=, "PermissionDenied");
	r2 = decrypt(ca, "db", ct_a);
	authz_assert_ok(r2, "a decrypting its own");

	before = authz_snapshot(tkms_test_env_get_state_dir(env));
	/* by plain name b only ever reaches its own namespace */
	expect(cb, "GetKeyInfo", g_variant_new("(s)", "only-a"), "NotFound");
	expect(cb, "DestroyKey", g_variant_new("(s)", "only-a"), "NotFound");
	expect(cb, "Hmac", g_variant_new("(s@ay)", "only-a", bytes_v("x")), "NotFound");
	expect(cb, "HmacBatch", g_variant_new_parsed("(%s, [b'x'])", "only-a"), "NotFound");
	expect(cb, "GetPublicKey", g_variant_new("(s)", "only-a"), "NotFound");
	/* by UID:NAME b needs admin, which polkit refuses: also for keys that do not exist */
	expect(cb, "GetKeyInfo", g_variant_new("(s)", a_db), "PermissionDenied");
	expect(cb, "DestroyKey", g_variant_new("(s)", a_db), "PermissionDenied");
	expect(cb, "Encrypt", g_variant_new("(s@ay@ay)", a_db, bytes_v("x"), bytes_v("")),
	       "PermissionDenied");
	expect(cb, "EncryptBatch", g_variant_new_parsed("(%s, [b'x'], b'')", a_db),
	       "PermissionDenied");
	expect(cb, "DecryptBatch", g_variant_new_parsed("(%s, [b'x'], b'')", a_db),
	       "PermissionDenied");
	{
		g_autoptr(AuthzReply) r = decrypt(cb, a_db, ct_a);
		assert_outcome(r, "PermissionDenied");
	}
	{
		g_autofree gchar *a_none = owned(authz_uid_a, "no-such-key");
		expect(cb, "GetKeyInfo", g_variant_new("(s)", a_none), "PermissionDenied");
	}
	expect(cb, "CreateKey", g_variant_new("(ss@a{sv})", a_db, "aes-256-gcm", no_options()),
	       "PermissionDenied");
	/* a: the same for b's key (a's admin answer is a challenge) */
	expect(ca, "GetKeyInfo", g_variant_new("(s)", b_db), "PermissionDenied");
	expect(ca, "DestroyKey", g_variant_new("(s)", b_db), "PermissionDenied");
	{
		g_autoptr(AuthzReply) r =
			authz_call(ca, "DestroyKey", TRUE, g_variant_new("(s)", b_db));
		assert_outcome(r, "PermissionDenied"); /* interactive, but no agent */
	}
	after = authz_snapshot(tkms_test_env_get_state_dir(env));
	diff = authz_snapshot_diff(before, after);
	g_assert_cmpstr(diff, ==, NULL);

	/* a's own uid written out needs no admin */
	g_assert_cmpuint(info_owner(ca, a_db), ==, authz_uid_a);
}

static void
test_admin(void)
{
	g_autofree gchar *a_db = owned(authz_uid_a, "db");
	g_autofree gchar *b_db = owned(authz_uid_b, "db");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(AuthzReply) r = NULL;
	g_autoptr(AuthzReply) info = NULL;
	g_autoptr(GVariant) v = NULL;
	g_autoptr(GVariant) versions = NULL;
	g_autoptr(GVariant) first = NULL;
	const gchar *state = NULL;

	/* admin reaches a's key as UID:NAME; plain names stay in admin's own namespace */
	g_assert_cmpuint(info_owner(cadmin, a_db), ==, authz_uid_a);
	expect(cadmin, "GetKeyInfo", g_variant_new("(s)", "db"), "NotFound");
	/* what admin encrypts with a's key, a decrypts: same key, same owner in the AAD */
	ct = encrypt(cadmin, a_db, "from the admin");
	r = decrypt(ca, "db", ct);
	{
		g_autoptr(GVariant) pt =
			g_variant_get_child_value(authz_assert_ok(r, "Decrypt"), 0);
		gsize n = 0;
		const gchar *p = g_variant_get_fixed_array(pt, &n, 1);
		g_assert_cmpmem(p, n, "from the admin", strlen("from the admin"));
	}

	/* admin destroys b's db; a's db is untouched; b's name stays taken */
	expect(cadmin, "DestroyKey", g_variant_new("(s)", b_db), "OK");
	info = call(cb, "GetKeyInfo", g_variant_new("(s)", "db"));
	v = g_variant_get_child_value(authz_assert_ok(info, "GetKeyInfo"), 0);
	versions = g_variant_lookup_value(v, "versions", G_VARIANT_TYPE("aa{sv}"));
	g_assert_nonnull(versions);
	first = g_variant_get_child_value(versions, 0);
	g_assert_true(g_variant_lookup(first, "state", "&s", &state));
	g_assert_cmpstr(state, ==, "destroyed");
	expect(cb, "Encrypt", g_variant_new("(s@ay@ay)", "db", bytes_v("x"), bytes_v("")),
	       "KeyState");
	expect(cb, "CreateKey", g_variant_new("(ss@a{sv})", "db", "aes-256-gcm", no_options()),
	       "AlreadyExists");
	{
		g_autoptr(GBytes) again = encrypt(ca, "db", "still mine");
		g_assert_nonnull(again);
	}

	/* admin creates a key for a: it is a's */
	{
		g_autofree gchar *a_new = owned(authz_uid_a, "made-by-admin");
		expect(cadmin, "CreateKey",
		       g_variant_new("(ss@a{sv})", a_new, "hmac-sha256", no_options()), "OK");
		g_assert_cmpuint(info_owner(ca, "made-by-admin"), ==, authz_uid_a);
	}
}

static void
test_system_keys(void)
{
	g_autofree gchar *zero = owned(0, "sys1");

	create(root, "sys1", "ecdsa-p256");
	g_assert_cmpuint(info_owner(root, "sys1"), ==, 0);
	g_assert_cmpuint(info_owner(cadmin, "system:sys1"), ==, 0);
	g_assert_cmpuint(info_owner(cadmin, zero), ==, 0);
	expect(cadmin, "GetPublicKey", g_variant_new("(s)", "system:sys1"), "OK");
	expect(cadmin, "GetKeyInfo", g_variant_new("(s)", "sys1"), "NotFound");
	expect(ca, "GetKeyInfo", g_variant_new("(s)", "system:sys1"), "PermissionDenied");
	expect(cb, "Sign", g_variant_new("(s@ay)", "system:sys1", bytes_v("x")),
	       "PermissionDenied");
	expect(ca, "GetKeyInfo", g_variant_new("(s)", "sys1"), "NotFound");
	/* root addresses a's keys as an admin would (polkitd authorizes uid 0) */
	{
		g_autofree gchar *a_db = owned(authz_uid_a, "db");
		g_assert_cmpuint(info_owner(root, a_db), ==, authz_uid_a);
	}
}

static void
test_list_all(void)
{
	g_autofree gchar *all_admin = NULL;
	g_autofree gchar *all_root = NULL;
	g_autofree gchar *want = NULL;
	guint32 lo = MIN(authz_uid_a, authz_uid_b), hi = MAX(authz_uid_a, authz_uid_b);
	g_autoptr(AuthzReply) r = NULL;

	expect(ca, "ListAllKeys", g_variant_new("()"), "PermissionDenied");
	expect(cb, "ListAllKeys", g_variant_new("()"), "PermissionDenied");
	r = authz_call(cb, "ListAllKeys", TRUE, g_variant_new("()"));
	assert_outcome(r, "PermissionDenied");

	all_admin = list(cadmin, "ListAllKeys");
	all_root = list(root, "ListAllKeys");
	g_test_message("ListAllKeys: %s", all_admin);
	g_assert_cmpstr(all_admin, ==, all_root);
	/* sorted by owner, then name */
	if (lo == authz_uid_a)
		want = g_strdup_printf("0:sys1,%u:db,%u:made-by-admin,%u:only-a,%u:db", lo, lo, lo,
				       hi);
	else
		want = g_strdup_printf("0:sys1,%u:db,%u:db,%u:made-by-admin,%u:only-a", lo, hi, hi,
				       hi);
	g_assert_cmpstr(all_admin, ==, want);
	/* ListKeys stays the caller's own, for admins too */
	{
		g_autofree gchar *own = list(cadmin, "ListKeys");
		g_assert_cmpstr(own, ==, "");
	}
}

/* Nothing the daemon broadcast during these tests names anybody's key. */
static void
test_signals(void)
{
	static const gchar *const names[] = {"db", "only-a", "sys1", "made-by-admin", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) props = NULL;
	g_autofree gchar *props_text = NULL;

	tkms_test_spin(200);
	for (guint i = 0; i < signals_seen->len; i++) {
		const gchar *s = g_ptr_array_index(signals_seen, i);
		g_test_message("signal: %s", s);
		for (guint j = 0; names[j] != NULL; j++) {
			g_autofree gchar *quoted = g_strdup_printf("'%s'", names[j]);
			g_assert_null(strstr(s, quoted));
		}
	}
	props = g_dbus_connection_call_sync(tkms_test_env_get_connection(env), TKMS_BUS_NAME,
					    TKMS_OBJECT_PATH, "org.freedesktop.DBus.Properties",
					    "GetAll", g_variant_new("(s)", "org.tkms.KeyManager"),
					    NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
	g_assert_no_error(error);
	props_text = g_variant_print(props, FALSE);
	for (guint j = 0; names[j] != NULL; j++) {
		g_autofree gchar *quoted = g_strdup_printf("'%s'", names[j]);
		g_assert_null(strstr(props_text, quoted));
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Bad input                                                                                 */

static guint32
unused_uid(void)
{
	for (guint32 u = 61000; u < 65000; u++)
		if (getpwuid(u) == NULL)
			return u;
	g_assert_not_reached();
}

static void
test_bad_owner(void)
{
	g_autofree gchar *ghost = g_strdup_printf("%u:x", unused_uid());
	g_autofree gchar *a_empty = owned(authz_uid_a, "");
	g_autofree gchar *a_colon = owned(authz_uid_a, "2:3");
	const gchar *inval = "InvalidArgument", *denied = "PermissionDenied";
	/* A malformed OWNER is InvalidArgument for everybody; a well-formed other OWNER is
	 * PermissionDenied for a non-admin, whatever follows (whether an owner or a key exists
	 * is for admins to learn), and the admin gets the bad NAME or the unknown uid. */
	struct {
		const gchar *arg;
		const gchar *admin; /* outcome for the admin */
		const gchar *other; /* outcome for tkms-test-b (admin refused) */
	} cases[] = {
		{":x", inval, inval},
		{"a:b", inval, inval},
		{"1:", getpwuid(1) ? inval : "NotFound", denied},
		{"1:2:3", getpwuid(1) ? inval : "NotFound", denied},
		{a_empty, inval, denied},
		{a_colon, inval, denied},
		{"-1:x", inval, inval},
		{"+1:x", inval, inval},
		{" 1:x", inval, inval},
		{"0x1:x", inval, inval},
		{"99999999999:x", inval, inval},
		{"4294967296:x", inval, inval},
		{"4294967295:x", inval, inval}, /* (uid_t)-1 is nobody's */
		{"System:x", inval, inval},
		{"system:", inval, denied},
		{"system:../x", inval, denied},
		{"::", inval, inval},
		{":", inval, inval},
		{ghost, "NotFound", denied}, /* a uid without a passwd entry */
	};
	const gchar *const methods[] = {"GetKeyInfo", "DestroyKey", "CreateKey", "Hmac"};
	const gchar *state = tkms_test_env_get_state_dir(env);
	g_autoptr(GHashTable) before = authz_snapshot(state);
	g_autoptr(GHashTable) after = NULL;
	g_autofree gchar *diff = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		for (guint m = 0; m < G_N_ELEMENTS(methods); m++) {
			GVariant *args;
			g_autoptr(AuthzReply) ra = NULL;
			g_autoptr(AuthzReply) rb = NULL;

			if (g_str_equal(methods[m], "CreateKey"))
				args = g_variant_new("(ss@a{sv})", cases[i].arg, "hmac-sha256",
						     no_options());
			else if (g_str_equal(methods[m], "Hmac"))
				args = g_variant_new("(s@ay)", cases[i].arg, bytes_v("x"));
			else
				args = g_variant_new("(s)", cases[i].arg);
			g_variant_ref_sink(args);
			ra = call(cadmin, methods[m], g_variant_ref(args));
			rb = call(cb, methods[m], args);
			g_test_message("%s(\"%s\"): admin %s, b %s", methods[m], cases[i].arg,
				       authz_reply_outcome(ra), authz_reply_outcome(rb));
			assert_outcome(ra, cases[i].admin);
			assert_outcome(rb, cases[i].other);
		}
	}
	after = authz_snapshot(state);
	diff = authz_snapshot_diff(before, after);
	g_assert_cmpstr(diff, ==, NULL);
	assert_daemon_answers();
}

static void
test_bad_names(void)
{
	g_autofree gchar *long_name = g_strnfill(4096, 'A');
	g_autofree gchar *name65 = g_strnfill(65, 'n');
	g_autofree gchar *name64 = g_strnfill(64, 'n');
	g_autofree gchar *a_dotdot = owned(authz_uid_a, "../x");
	g_autofree gchar *a_long = owned(authz_uid_a, long_name);
	const gchar *bad[] = {"a/b",
			      "/etc/passwd",
			      "..",
			      ".",
			      "../x",
			      "x/..",
			      "x/../../../etc/shadow",
			      ".hidden",
			      "",
			      " ",
			      "a b",
			      "ключ",
			      "a\\b",
			      "a\tb",
			      "a\nb",
			      name65,
			      long_name,
			      "*",
			      "db;rm",
			      "db%00",
			      a_dotdot,
			      a_long};
	const gchar *state = tkms_test_env_get_state_dir(env);
	g_autoptr(GHashTable) before = authz_snapshot(state);
	g_autoptr(GHashTable) after = NULL;
	g_autofree gchar *diff = NULL;
	goffset offset = 0;
	g_autoptr(GPtrArray) skip = authz_audit_lines_since(state, &offset);
	g_autoptr(GPtrArray) lines = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		AuthzCaller *who =
			g_str_has_prefix(bad[i], "9") || strchr(bad[i], ':') ? cadmin : ca;
		g_test_message("name \"%.40s\"%s (%zu bytes)", bad[i],
			       strlen(bad[i]) > 40 ? "..." : "", strlen(bad[i]));
		expect(who, "CreateKey",
		       g_variant_new("(ss@a{sv})", bad[i], "aes-256-gcm", no_options()),
		       "InvalidArgument");
		expect(who, "GetKeyInfo", g_variant_new("(s)", bad[i]), "InvalidArgument");
		expect(who, "DestroyKey", g_variant_new("(s)", bad[i]), "InvalidArgument");
		expect(who, "Encrypt",
		       g_variant_new("(s@ay@ay)", bad[i], bytes_v("x"), bytes_v("")),
		       "InvalidArgument");
	}
	after = authz_snapshot(state);
	diff = authz_snapshot_diff(before, after);
	g_assert_cmpstr(diff, ==, NULL);
	/* what the audit log keeps of a hostile name is bounded */
	lines = authz_audit_lines_since(state, &offset);
	g_assert_cmpuint(lines->len, ==, 4 * G_N_ELEMENTS(bad));
	for (guint i = 0; i < lines->len; i++)
		g_assert_cmpuint(strlen(g_ptr_array_index(lines, i)), <, 1024);
	/* the longest valid name is fine */
	create(ca, name64, "hmac-sha256");
	assert_daemon_answers();
}

/* Well-formed D-Bus but wrong types, counts or values, sent as they are. */
static void
test_wrong_types(void)
{
	static const struct {
		const gchar *method;
		const gchar *args;
		const gchar *want;
	} cases[] = {
		/* the bus-level signature check */
		{"CreateKey", "(5,)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"CreateKey", "('k', 'aes-256-gcm')", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"CreateKey", "('k', 'aes-256-gcm', @a{sv} {}, 'extra')",
		 "org.freedesktop.DBus.Error.InvalidArgs"},
		{"CreateKey", "(b'k', 'aes-256-gcm', @a{sv} {})",
		 "org.freedesktop.DBus.Error.InvalidArgs"},
		{"CreateKey", "('k', 'aes-256-gcm', @a{ss} {'protection': 'sealed'})",
		 "org.freedesktop.DBus.Error.InvalidArgs"},
		{"GetKeyInfo", "()", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"GetKeyInfo", "(int32 5,)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"GetKeyInfo", "('db', 'db')", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"GetKeyInfo", "(<'db'>,)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"DestroyKey", "(@as ['db'],)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"Encrypt", "('db', 'plaintext', b'')", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"Encrypt", "('db', [1, 2, 3], b'')", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"Encrypt", "('db', b'x')", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"Decrypt", "('db', @aay [b'x'], b'')", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"Sign", "('db', int64 5)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"Verify", "('db', b'x', 'sig')", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"DeriveKey", "('db', b'x', int32 -1)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"DeriveKey", "('db', b'x', uint64 32)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"Seal", "(b'x',)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"Unseal", "('blob',)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"GetRandom", "('5',)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"GetRandom", "(int32 5,)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"ListKeys", "(1,)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"GetSecret", "('db',)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"GetSecret", "('db', b'current')", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"ImportSecret", "('db', 'secret')", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"ListAllKeys", "('x',)", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"EncryptBatch", "('db', b'x', b'')", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"DecryptBatch", "('db', [b'x'])", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"SignBatch", "('db', [b'x'], b'')", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"HmacBatch", "('db', ['x'])", "org.freedesktop.DBus.Error.InvalidArgs"},
		{"Frobnicate", "()", "org.freedesktop.DBus.Error.UnknownMethod"},
		{"org.tkms.KeyManager.Nope.GetKeyInfo", "('db',)",
		 "org.freedesktop.DBus.Error.UnknownMethod|org.freedesktop.DBus.Error."
		 "UnknownInterface|org.freedesktop.DBus.Error.AccessDenied"},
		{"org.freedesktop.DBus.Properties.Set", "('org.tkms.KeyManager', 'Version', <'x'>)",
		 "org.freedesktop.DBus.Error.InvalidArgs|org.freedesktop.DBus.Error."
		 "PropertyReadOnly|org.freedesktop.DBus.Error.AccessDenied"},
		{"org.freedesktop.DBus.Properties.Get", "('org.tkms.KeyManager', 'Nope')",
		 "org.freedesktop.DBus.Error.InvalidArgs"},
		/* right types, wrong values: the daemon's own errors */
		{"CreateKey", "('k1', 'des', @a{sv} {})", "InvalidArgument"},
		{"CreateKey", "('k1', 'aes-256-gcm', {'protection': <5>})", "InvalidArgument"},
		{"CreateKey", "('k1', 'aes-256-gcm', {'protection': <'tpm'>})", "InvalidArgument"},
		{"CreateKey", "('k1', 'aes-256-gcm', {'pcrs': <'x'>})", "InvalidArgument"},
		{"CreateKey", "('k1', 'aes-256-gcm', {'pcrs': <[uint32 99]>})", "InvalidArgument"},
		{"CreateKey", "('k1', 'aes-256-gcm', {'pcrs': <[int32 -1]>})", "InvalidArgument"},
		{"CreateKey", "('k1', 'aes-256-gcm', {'bogus': <1>})", "InvalidArgument"},
		{"CreateKey", "('k1', 'aes-256-gcm', {'description': <@ay b'x'>})",
		 "InvalidArgument"},
		{"GetRandom", "(uint32 0,)", "InvalidArgument"},
		{"GetRandom", "(uint32 4294967295,)", "LimitExceeded|InvalidArgument"},
		{"DeriveKey", "('only-a', b'ctx', uint32 0)", "InvalidArgument"},
		{"DeriveKey", "('only-a', b'ctx', uint32 8161)", "InvalidArgument"},
		{"DeriveKey", "('only-a', @ay [], uint32 32)", "InvalidArgument"},
		{"Encrypt", "('db', @ay [], b'')", "InvalidArgument"},
		{"Encrypt", "('only-a', b'x', b'')", "InvalidArgument"}, /* an hmac key */
		{"Decrypt", "('db', b'not a ciphertext', b'')", "InvalidArgument|IntegrityFailure"},
		{"Unseal", "(b'not a blob',)", "InvalidArgument|IntegrityFailure"},
		{"Unseal", "(@ay [],)", "InvalidArgument"},
		{"GetSecret", "('db', 'bogus')", "InvalidArgument"},
		{"GetSecret", "('db', 'current')", "InvalidArgument"}, /* not a password key */
		{"ImportSecret", "('db', @ay [])", "InvalidArgument"},
		{"ImportSecret", "('db', b'a secret')", "InvalidArgument"},
		{"EncryptBatch", "('db', @aay [], b'')", "InvalidArgument"},
		{"EncryptBatch", "('db', [b'x', @ay []], b'')", "InvalidArgument"},
		{"EncryptBatch", "('only-a', [b'x'], b'')", "InvalidArgument"}, /* an hmac key */
		{"DecryptBatch", "('db', [b'not a ciphertext'], b'')", "InvalidArgument"},
		{"SignBatch", "('db', [b'x'])", "InvalidArgument"},
		{"HmacBatch", "('only-a', @aay [])", "InvalidArgument"},
	};
	const gchar *state = tkms_test_env_get_state_dir(env);
	g_autoptr(GHashTable) before = authz_snapshot(state);
	g_autoptr(GHashTable) after = NULL;
	g_autofree gchar *diff = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		/* signature errors for root too; value errors need a's keys */
		gboolean bus_level = g_str_has_prefix(cases[i].want, "org.freedesktop.DBus.");
		AuthzCaller *who[] = {ca, root};
		for (guint w = 0; w < (bus_level ? G_N_ELEMENTS(who) : 1); w++) {
			g_autoptr(AuthzReply) r =
				authz_call_text(who[w], cases[i].method, "-", cases[i].args);
			const gchar *got = authz_reply_outcome(r);
			g_auto(GStrv) allowed = g_strsplit(cases[i].want, "|", -1);
			g_test_message("%s%s as %s -> %s: %s", cases[i].method, cases[i].args,
				       who[w]->user, got, r->message ? r->message : "");
			if (!g_strv_contains((const gchar *const *)allowed, got))
				g_error("%s%s as %s: expected %s, got %s (%s)", cases[i].method,
					cases[i].args, who[w]->user, cases[i].want, got,
					r->message ? r->message : "");
		}
		assert_daemon_answers();
	}
	after = authz_snapshot(state);
	diff = authz_snapshot_diff(before, after);
	g_assert_cmpstr(diff, ==, NULL);
}

/* The same through the command-line tools people use: busctl (raw types) and gdbus. */
static void
test_cli_tools(void)
{
	const gchar *addr = tkms_test_env_get_bus_address(env);
	g_autofree gchar *addr_opt = g_strdup_printf("--address=%s", addr);
	static const gchar *const busctl_cases[][4] = {
		{"CreateKey", "i", "5", NULL},
		{"GetRandom", "s", "lots", NULL},
		{"GetKeyInfo", "u", "7", NULL},
		{"Seal", "ay", "0", NULL}, /* the options are missing */
	};

	g_autofree gchar *busctl = g_find_program_in_path("busctl");

	/* busctl comes with systemd, which a container may lack: then gdbus only (the raw types
	 * are covered by /authz/bad-input/wrong-types through tkms-test-helper) */
	if (busctl == NULL)
		g_test_message("busctl is not installed: only gdbus here");
	for (guint i = 0; busctl != NULL && i < G_N_ELEMENTS(busctl_cases); i++) {
		const gchar *argv[] = {"busctl",
				       addr_opt,
				       "call",
				       TKMS_BUS_NAME,
				       TKMS_OBJECT_PATH,
				       "org.tkms.KeyManager",
				       busctl_cases[i][0],
				       busctl_cases[i][1],
				       busctl_cases[i][2],
				       NULL};
		g_autoptr(GError) error = NULL;
		g_autofree gchar *out = NULL;
		g_autofree gchar *err = NULL;
		gint status = -1;

		tkms_test_env_run_as(env, AUTHZ_USER_A, argv, &out, &err, &status, &error);
		g_assert_no_error(error);
		g_test_message("busctl call %s %s %s: status %d: %s", busctl_cases[i][0],
			       busctl_cases[i][1], busctl_cases[i][2], status, err);
		g_assert_cmpint(status, !=, 0);
		g_assert_cmpint(status, <, 128);
		g_assert_true(strlen(err) > 0);
		assert_daemon_answers();
	}
	if (busctl != NULL) {
		const gchar *argv[] = {"busctl",
				       addr_opt,
				       "call",
				       TKMS_BUS_NAME,
				       TKMS_OBJECT_PATH,
				       "org.tkms.KeyManager",
				       "GetRandom",
				       "u",
				       "4",
				       NULL};
		g_autoptr(GError) error = NULL;
		g_autofree gchar *out = NULL;
		gint status = -1;

		tkms_test_env_run_as(env, AUTHZ_USER_A, argv, &out, NULL, &status, &error);
		g_assert_no_error(error);
		g_assert_cmpint(status, ==, 0);
		g_assert_true(g_str_has_prefix(out, "ay 4"));
	}
	{
		static const gchar *const names[] = {"'../../etc/passwd'", "'1:2:3'", "'a:b'"};
		for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
			const gchar *argv[] = {"gdbus",         "call",
					       "--address",     addr,
					       "--dest",        TKMS_BUS_NAME,
					       "--object-path", TKMS_OBJECT_PATH,
					       "--method",      "org.tkms.KeyManager.GetKeyInfo",
					       names[i],        NULL};
			g_autoptr(GError) error = NULL;
			g_autofree gchar *err = NULL;
			gint status = -1;

			tkms_test_env_run_as(env, AUTHZ_USER_A, argv, NULL, &err, &status, &error);
			g_assert_no_error(error);
			g_test_message("gdbus call GetKeyInfo %s: status %d: %s", names[i], status,
				       err);
			g_assert_cmpint(status, !=, 0);
			/* a non-admin: the malformed owner, or the refusal of another's key */
			g_assert_true(strstr(err, "org.tkms.KeyManager.Error.InvalidArgument") ||
				      strstr(err, "org.tkms.KeyManager.Error.PermissionDenied"));
			assert_daemon_answers();
		}
	}
}

/* With the cache on (the default TTL), a rules change still applies at once to a caller
 * with cached answers: polkitd emits Changed when it reloads, and the daemon drops them. */
static void
test_cache_changed(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *no_seal = g_strdup_printf(
		"polkit.addRule(function(action, subject) {\n"
		"    if (action.id == \"%s\" && subject.user == \"" AUTHZ_USER_A "\")\n"
		"        return polkit.Result.NO;\n"
		"});\n%s",
		TKMS_ACTION_SEAL, rules);
	g_autoptr(AuthzReply) r1 = NULL;
	g_autoptr(AuthzReply) r2 = NULL;
	g_autoptr(AuthzReply) r3 = NULL;
	g_autoptr(AuthzReply) r4 = NULL;
	g_autoptr(AuthzReply) r5 = NULL;

	r1 = authz_call_kept(ca, "GetRandom", g_variant_new("(u)", 4u));
	assert_outcome(r1, "OK");
	r2 = authz_call_kept(ca, "GetRandom", g_variant_new("(u)", 4u));
	assert_outcome(r2, "OK");

	tkms_test_env_polkit_set_rules(env, no_seal, &error);
	g_assert_no_error(error);
	r3 = authz_call_kept(ca, "GetRandom", g_variant_new("(u)", 4u));
	assert_outcome(r3, "PermissionDenied");
	r4 = call(ca, "GetRandom", g_variant_new("(u)", 4u));
	assert_outcome(r4, "PermissionDenied");

	tkms_test_env_polkit_set_rules(env, rules, &error);
	g_assert_no_error(error);
	r5 = authz_call_kept(ca, "GetRandom", g_variant_new("(u)", 4u));
	assert_outcome(r5, "OK");
}

static void
signal_cb(GDBusConnection *connection, const gchar *sender, const gchar *path, const gchar *iface,
	  const gchar *name, GVariant *params, gpointer user_data)
{
	g_autofree gchar *p = g_variant_print(params, FALSE);
	g_ptr_array_add(signals_seen, g_strdup_printf("%s.%s %s", iface, name, p));
}

int
main(int argc, char **argv)
{
	guint sub;
	int ret;

	g_test_init(&argc, &argv, NULL);
	authz_setup_users();
	/* an admin's DestroyKey destroys at once here (the waiting period: test-lifecycle) */
	env = tkms_test_env_new_real_polkit_or_abort("[lifecycle]\nDestroyWaitingPeriod=0\n",
						     rules);
	daemon_pid = tkms_test_env_get_daemon_pid(env);
	root = authz_caller_new(env, "root");
	ca = authz_caller_new(env, AUTHZ_USER_A);
	cb = authz_caller_new(env, AUTHZ_USER_B);
	cadmin = authz_caller_new(env, AUTHZ_USER_ADMIN);
	signals_seen = g_ptr_array_new_with_free_func(g_free);
	sub = g_dbus_connection_signal_subscribe(tkms_test_env_get_connection(env), TKMS_BUS_NAME,
						 NULL, NULL, NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
						 signal_cb, NULL, NULL);

	g_test_add_func("/authz/tenancy/same-name", test_same_name);
	g_test_add_func("/authz/tenancy/admin", test_admin);
	g_test_add_func("/authz/tenancy/system-keys", test_system_keys);
	g_test_add_func("/authz/tenancy/list-all", test_list_all);
	g_test_add_func("/authz/tenancy/signals-and-properties", test_signals);
	g_test_add_func("/authz/bad-input/owner", test_bad_owner);
	g_test_add_func("/authz/bad-input/names", test_bad_names);
	g_test_add_func("/authz/bad-input/wrong-types", test_wrong_types);
	g_test_add_func("/authz/bad-input/cli-tools", test_cli_tools);
	g_test_add_func("/authz/cache/polkit-changed", test_cache_changed);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	g_dbus_connection_signal_unsubscribe(tkms_test_env_get_connection(env), sub);
	authz_caller_free(root);
	authz_caller_free(ca);
	authz_caller_free(cb);
	authz_caller_free(cadmin);
	tkms_test_env_free(env);
	g_ptr_array_unref(signals_seen);
	return ret;
}
