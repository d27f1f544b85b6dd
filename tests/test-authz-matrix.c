/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-authz-matrix"

/*
 * The authorization matrix against the real polkitd (DESIGN.md § Authorization):
 *
 *   every D-Bus method of org.tkms.KeyManager
 *   × caller: root on system keys, root on the owner's keys as "UID:NAME", the owner
 *     (tkms-test-a) by plain name and as "UID:NAME", another user (tkms-test-b) on the owner's
 *     key names by plain name (its own namespace) and as "UID:NAME", and the admin-granted
 *     user (tkms-test-admin) as "UID:NAME"
 *   × polkit's answer for the method's action: yes, no, auth_admin (a challenge; there is no
 *     agent), polkitd stopped
 *   (+ with ALLOW_INTERACTIVE_AUTHORIZATION for the owner under auth_admin)
 *
 * Each case is one call on a fresh connection by a process of that user, with the daemon's
 * authorization cache off (AuthorizationTtl=0), and asserts the exact outcome, exactly one
 * new audit record (its result, uid, method, key and owner) and the exact change of the key
 * store: none unless the call succeeded and creates a key or changes one (DestroyKey,
 * DestroyKeyVersion, CancelKeyDestruction on the case's own victim, RotateKey on m-rot,
 * ImportSecret on the password key m-pw-imp; the other life-cycle calls are made as no-ops:
 * set what is already set). Root is always
 * authorized by polkitd, whatever the rules say (checked with pkcheck too). The rules give
 * tkms-test-admin org.tkms.KeyManager.admin in every phase; the others get the policy's
 * default for it (auth_admin_keep: a challenge, so no).
 */

#include <string.h>

#include "audit-chain.h"
#include "tkms-test-authz.h"

static TkmsTestEnv *env;

typedef enum { WHO_ROOT, WHO_A, WHO_B, WHO_ADMIN, N_WHO } Who;
static AuthzCaller *callers[N_WHO];

static guint32
who_uid(Who w)
{
	switch (w) {
	case WHO_ROOT:
		return 0;
	case WHO_A:
		return authz_uid_a;
	case WHO_B:
		return authz_uid_b;
	default:
		return authz_uid_admin;
	}
}

typedef enum { PHASE_YES, PHASE_NO, PHASE_AUTH_ADMIN, PHASE_STOPPED, N_PHASES } Phase;
static const gchar *const phase_names[] = {"yes", "no", "auth_admin", "polkitd-stopped"};
/* the polkit.Result for the method actions; "polkitd stopped" keeps the rules of "yes" */
static const gchar *const phase_results[] = {"YES", "NO", "AUTH_ADMIN", "YES"};

typedef struct {
	const gchar *id;
	Who who;
	gboolean system_target;  /* root's own keys, by plain name */
	gboolean explicit_owner; /* "UID_A:NAME" */
} Variant;

static const Variant variants[] = {
	{"root", WHO_ROOT, TRUE, FALSE},     /* root on system keys */
	{"root-uid", WHO_ROOT, FALSE, TRUE}, /* root on a's keys, "UID:NAME" */
	{"owner", WHO_A, FALSE, FALSE},      /* a on its keys */
	{"owner-uid", WHO_A, FALSE, TRUE},   /* a on its keys, "UID:NAME" */
	{"other", WHO_B, FALSE, FALSE},      /* b, a's key names: b's namespace */
	{"other-uid", WHO_B, FALSE, TRUE},   /* b on a's keys, "UID:NAME" */
	{"admin", WHO_ADMIN, FALSE, TRUE},   /* the admin on a's keys, "UID:NAME" */
};

typedef struct {
	const gchar *name;
	const gchar *action;
	gboolean key_arg;
	gboolean admin;
} Method;

/* DESIGN.md: the method -> action table, plus ListAllKeys (read-key and admin). */
static const Method methods[] = {
	{"CreateKey", TKMS_ACTION_CREATE_KEY, TRUE, FALSE},
	{"ListKeys", TKMS_ACTION_READ_KEY, FALSE, FALSE},
	{"ListAllKeys", TKMS_ACTION_READ_KEY, FALSE, TRUE},
	{"ListKeysPage", TKMS_ACTION_READ_KEY, FALSE, FALSE},
	{"ListAllKeysPage", TKMS_ACTION_READ_KEY, FALSE, TRUE},
	{"GetKeyInfo", TKMS_ACTION_READ_KEY, TRUE, FALSE},
	{"DestroyKey", TKMS_ACTION_DESTROY_KEY, TRUE, FALSE},
	{"Encrypt", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"Decrypt", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"Sign", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"Verify", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"GetPublicKey", TKMS_ACTION_READ_KEY, TRUE, FALSE},
	{"Hmac", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"VerifyHmac", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"DeriveKey", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"Seal", TKMS_ACTION_SEAL, FALSE, FALSE},
	{"Unseal", TKMS_ACTION_SEAL, FALSE, FALSE},
	{"GetRandom", TKMS_ACTION_SEAL, FALSE, FALSE},
	/* data keys, rewrapping, digests */
	{"GenerateDataKey", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"ReEncrypt", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"SignDigest", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"VerifyDigest", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	/* the life cycle of versions; each case's victim (versions 1 and 2, 2 primary) is
	 * scheduled for destruction by DestroyKey above, restored, then its version 1 scheduled */
	{"CancelKeyDestruction", TKMS_ACTION_DESTROY_KEY, TRUE, FALSE},
	{"DestroyKeyVersion", TKMS_ACTION_DESTROY_KEY, TRUE, FALSE},
	{"RotateKey", TKMS_ACTION_MANAGE_KEY, TRUE, FALSE},
	{"SetPrimaryVersion", TKMS_ACTION_MANAGE_KEY, TRUE, FALSE},
	{"SetKeyVersionState", TKMS_ACTION_MANAGE_KEY, TRUE, FALSE},
	{"SetRotationPolicy", TKMS_ACTION_MANAGE_KEY, TRUE, FALSE},
	/* service passwords: ImportSecret adds a version to m-pw-imp, GetSecret reads m-pw */
	{"ImportSecret", TKMS_ACTION_MANAGE_KEY, TRUE, FALSE},
	{"GetSecret", TKMS_ACTION_READ_SECRET, TRUE, FALSE},
	/* batches, of one item each (one audit record) */
	{"EncryptBatch", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"DecryptBatch", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"SignBatch", TKMS_ACTION_USE_KEY, TRUE, FALSE},
	{"HmacBatch", TKMS_ACTION_USE_KEY, TRUE, FALSE},
};

static gboolean
changes_victim(const gchar *n)
{
	return g_str_equal(n, "DestroyKey") || g_str_equal(n, "DestroyKeyVersion") ||
	       g_str_equal(n, "CancelKeyDestruction");
}

/* Material of the owner (tkms-test-a) and of root (system keys), same key names. */
typedef struct {
	GBytes *ct, *sig, *mac, *blob;
	GBytes *password; /* m-pw's current one */
} Material;
static Material mat_a, mat_root;
static GBytes *data, *ctx;
static GBytes *digest; /* SHA-256 of data */

static guint n_cases, n_failures;
static GString *failures;

/* ---------------------------------------------------------------------------------------- */

static gchar *
rules_for(const gchar *result)
{
	return g_strdup_printf(
		"polkit.addRule(function(action, subject) {\n"
		"    if (action.id.indexOf(\"org.tkms.KeyManager.\") != 0)\n"
		"        return polkit.Result.NOT_HANDLED;\n"
		"    var u = subject.user;\n"
		"    if (action.id == \"org.tkms.KeyManager.admin\") {\n"
		"        if (u == \"" AUTHZ_USER_ADMIN "\")\n"
		"            return polkit.Result.YES;\n"
		"        if (u == \"root\")\n"
		"            return polkit.Result.%s; // never applied: uid 0 is always "
		"authorized\n"
		"        return polkit.Result.NOT_HANDLED; // the default: auth_admin_keep\n"
		"    }\n"
		"    if (u == \"" AUTHZ_USER_A "\" || u == \"" AUTHZ_USER_B "\" ||\n"
		"        u == \"" AUTHZ_USER_ADMIN "\" || u == \"root\")\n"
		"        return polkit.Result.%s;\n"
		"    return polkit.Result.NOT_HANDLED;\n"
		"});\n",
		result, result);
}

static void
set_phase_rules(const gchar *result)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *rules = rules_for(result);

	tkms_test_env_polkit_set_rules(env, rules, &error);
	g_assert_no_error(error);
}

static void
assert_pkcheck(const gchar *user, const gchar *action, TkmsTestPolkitAnswer want)
{
	g_autoptr(GError) error = NULL;
	TkmsTestPolkitAnswer got = TKMS_TEST_POLKIT_NO;

	tkms_test_env_polkit_check_as(env, user, action, &got, &error);
	g_assert_no_error(error);
	if (got != want)
		g_error("pkcheck %s as %s: answer %d, expected %d", action, user, got, want);
}

static GBytes *
reply_bytes(AuthzReply *r, const gchar *what)
{
	g_autoptr(GVariant) child = g_variant_get_child_value(authz_assert_ok(r, what), 0);
	return g_variant_get_data_as_bytes(child);
}

static GBytes *
reply_bytes_of(GVariant *reply, gsize i)
{
	g_autoptr(GVariant) child = g_variant_get_child_value(reply, i);
	return g_variant_get_data_as_bytes(child);
}

static GVariant *
bytes_v(GBytes *b)
{
	return g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, b, TRUE);
}

/* an `aay` of one item */
static GVariant *
batch_v(GBytes *b)
{
	GVariant *item = bytes_v(b);
	return g_variant_new_array(G_VARIANT_TYPE_BYTESTRING, &item, 1);
}

static void
create_key(Who who, const gchar *name, const gchar *type)
{
	g_autoptr(AuthzReply) r =
		authz_call(callers[who], "CreateKey", FALSE,
			   g_variant_new("(ss@a{sv})", name, type,
					 g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)));
	g_autofree gchar *what = g_strdup_printf("CreateKey %s as %s", name, callers[who]->user);
	authz_assert_ok(r, what);
}

static void
make_material(Who who, Material *m)
{
	g_autoptr(AuthzReply) r1 = NULL;
	g_autoptr(AuthzReply) r2 = NULL;
	g_autoptr(AuthzReply) r3 = NULL;
	g_autoptr(AuthzReply) r4 = NULL;
	g_autoptr(AuthzReply) r5 = NULL;
	AuthzCaller *c = callers[who];

	create_key(who, "m-aes", "aes-256-gcm");
	create_key(who, "m-hmac", "hmac-sha256");
	create_key(who, "m-ec", "ecdsa-p256");
	create_key(who, "m-rot", "hmac-sha256");
	create_key(who, "m-pw", "password");
	create_key(who, "m-pw-imp", "password");
	r1 = authz_call(c, "Encrypt", FALSE,
			g_variant_new("(s@ay@ay)", "m-aes", bytes_v(data), bytes_v(ctx)));
	m->ct = reply_bytes(r1, "Encrypt");
	r2 = authz_call(c, "Sign", FALSE, g_variant_new("(s@ay)", "m-ec", bytes_v(data)));
	m->sig = reply_bytes(r2, "Sign");
	r3 = authz_call(c, "Hmac", FALSE, g_variant_new("(s@ay)", "m-hmac", bytes_v(data)));
	m->mac = reply_bytes(r3, "Hmac");
	r4 = authz_call(c, "Seal", FALSE,
			g_variant_new("(@ay@a{sv})", bytes_v(data),
				      g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)));
	m->blob = reply_bytes(r4, "Seal");
	r5 = authz_call(c, "GetSecret", FALSE, g_variant_new("(ss)", "m-pw", "current"));
	m->password = reply_bytes(r5, "GetSecret");
}

static gboolean
variant_applies(const Method *m, const Variant *v)
{
	if (m->key_arg)
		return TRUE;
	/* no key argument: the caller is what varies; Unseal also with a blob of another uid */
	if (g_str_equal(v->id, "root-uid"))
		return g_str_equal(m->name, "Unseal");
	return g_str_equal(v->id, "root") || g_str_equal(v->id, "owner") ||
	       g_str_equal(v->id, "other") || g_str_equal(v->id, "admin");
}

/* Whose key (or blob) the case addresses. */
static guint32
target_owner(const Method *m, const Variant *v)
{
	if (v->system_target)
		return 0;
	if (v->explicit_owner || !m->key_arg)
		return authz_uid_a; /* for methods without a key: whose blob Unseal gets */
	return who_uid(v->who);     /* a plain name is in the caller's own namespace */
}

static gchar *
victim_name(Phase p, const Variant *v)
{
	return g_strdup_printf("victim-%s-%s", phase_names[p], v->id);
}

typedef enum { EXPECT_OK, EXPECT_DENIED, EXPECT_NOT_FOUND } Expect;
static const gchar *const expect_names[] = {"OK", "PermissionDenied", "NotFound"};

static Expect
expected(const Method *m, const Variant *v, Phase p, gboolean interactive)
{
	guint32 caller = who_uid(v->who);
	gboolean is_root = v->who == WHO_ROOT;
	gboolean has_admin = is_root || v->who == WHO_ADMIN;
	gboolean needs_admin;

	if (p == PHASE_STOPPED)
		return EXPECT_DENIED; /* fail closed: also root */
	if (!is_root && p != PHASE_YES)
		return EXPECT_DENIED; /* no, or a challenge nobody can answer */
	needs_admin = m->admin || (m->key_arg && target_owner(m, v) != caller);
	if (needs_admin && !has_admin)
		return EXPECT_DENIED;
	if (g_str_equal(m->name, "Unseal") && target_owner(m, v) != caller)
		return EXPECT_DENIED; /* a blob only its uid can unseal */
	if (m->key_arg && !g_str_equal(m->name, "CreateKey") && v->who == WHO_B &&
	    !v->explicit_owner)
		return EXPECT_NOT_FOUND; /* b has no key of that name */
	return EXPECT_OK;
}

/* The arguments of the case; *key gets the key argument as written (or NULL). */
static GVariant *
case_args(const Method *m, const Variant *v, Phase p, gboolean interactive, gchar **key)
{
	const Material *mat = target_owner(m, v) == 0 ? &mat_root : &mat_a;
	g_autofree gchar *base = NULL;
	const gchar *n = m->name;

	*key = NULL;
	if (m->key_arg) {
		if (g_str_equal(n, "CreateKey"))
			base = g_strdup_printf("new-%s-%s%s", phase_names[p], v->id,
					       interactive ? "-i" : "");
		else if (changes_victim(n))
			base = victim_name(p, v);
		else if (g_str_equal(n, "RotateKey"))
			base = g_strdup("m-rot");
		else if (g_str_equal(n, "ImportSecret"))
			base = g_strdup("m-pw-imp");
		else if (g_str_equal(n, "GetSecret"))
			base = g_strdup("m-pw");
		else if (g_str_has_prefix(n, "Encrypt") || g_str_has_prefix(n, "Decrypt") ||
			 g_str_equal(n, "GenerateDataKey") || g_str_equal(n, "ReEncrypt"))
			base = g_strdup("m-aes");
		else if (g_str_has_suffix(n, "Hmac") || g_str_equal(n, "HmacBatch") ||
			 g_str_equal(n, "DeriveKey"))
			base = g_strdup("m-hmac");
		else
			base = g_strdup("m-ec");
		*key = v->explicit_owner ? g_strdup_printf("%u:%s", authz_uid_a, base)
					 : g_strdup(base);
	}
	if (g_str_equal(n, "CreateKey"))
		return g_variant_new("(ss@a{sv})", *key, "hmac-sha256",
				     g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
	if (g_str_equal(n, "ListKeys") || g_str_equal(n, "ListAllKeys"))
		return g_variant_new("()");
	if (g_str_equal(n, "ListKeysPage") || g_str_equal(n, "ListAllKeysPage"))
		return g_variant_new("(su)", "", 1000u);
	if (g_str_equal(n, "GetKeyInfo") || g_str_equal(n, "DestroyKey") ||
	    g_str_equal(n, "GetPublicKey"))
		return g_variant_new("(s)", *key);
	if (g_str_equal(n, "Encrypt"))
		return g_variant_new("(s@ay@ay)", *key, bytes_v(data), bytes_v(ctx));
	if (g_str_equal(n, "Decrypt"))
		return g_variant_new("(s@ay@ay)", *key, bytes_v(mat->ct), bytes_v(ctx));
	if (g_str_equal(n, "Sign") || g_str_equal(n, "Hmac"))
		return g_variant_new("(s@ay)", *key, bytes_v(data));
	if (g_str_equal(n, "Verify"))
		return g_variant_new("(s@ay@ay)", *key, bytes_v(data), bytes_v(mat->sig));
	if (g_str_equal(n, "VerifyHmac"))
		return g_variant_new("(s@ay@ay)", *key, bytes_v(data), bytes_v(mat->mac));
	if (g_str_equal(n, "DeriveKey"))
		return g_variant_new("(s@ayu)", *key, bytes_v(ctx), 32u);
	if (g_str_equal(n, "Seal"))
		return g_variant_new("(@ay@a{sv})", bytes_v(data),
				     g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
	if (g_str_equal(n, "Unseal"))
		return g_variant_new("(@ay)", bytes_v(mat->blob));
	if (g_str_equal(n, "GetRandom"))
		return g_variant_new("(u)", 16u);
	if (g_str_equal(n, "RotateKey"))
		return g_variant_new("(s)", *key);
	/* the victim's version 1, not its primary */
	if (g_str_equal(n, "DestroyKeyVersion"))
		return g_variant_new("(su)", *key, 1u);
	if (g_str_equal(n, "CancelKeyDestruction"))
		return g_variant_new("(su)", *key, 0u);
	if (g_str_equal(n, "SetPrimaryVersion"))
		return g_variant_new("(su)", *key, 1u);
	if (g_str_equal(n, "SetKeyVersionState"))
		return g_variant_new("(sus)", *key, 1u, "active");
	if (g_str_equal(n, "SetRotationPolicy"))
		return g_variant_new("(s@a{sv})", *key,
				     g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
	/* data keys, rewrapping, digests */
	if (g_str_equal(n, "GenerateDataKey"))
		return g_variant_new("(su@ay)", *key, 32u, bytes_v(ctx));
	if (g_str_equal(n, "ReEncrypt"))
		return g_variant_new("(s@ay@ay)", *key, bytes_v(mat->ct), bytes_v(ctx));
	if (g_str_equal(n, "SignDigest"))
		return g_variant_new("(s@ay)", *key, bytes_v(digest));
	if (g_str_equal(n, "ImportSecret"))
		return g_variant_new("(s@ay)", *key, bytes_v(data));
	if (g_str_equal(n, "GetSecret"))
		return g_variant_new("(ss)", *key, "current");
	if (g_str_equal(n, "VerifyDigest"))
		return g_variant_new("(s@ay@ay)", *key, bytes_v(digest), bytes_v(mat->sig));
	if (g_str_equal(n, "EncryptBatch"))
		return g_variant_new("(s@aay@ay)", *key, batch_v(data), bytes_v(ctx));
	if (g_str_equal(n, "DecryptBatch"))
		return g_variant_new("(s@aay@ay)", *key, batch_v(mat->ct), bytes_v(ctx));
	if (g_str_equal(n, "SignBatch") || g_str_equal(n, "HmacBatch"))
		return g_variant_new("(s@aay)", *key, batch_v(data));
	g_error("no arguments for %s", n);
}

/* The one item of a batch's reply. */
static GBytes *
batch_item(GVariant *reply)
{
	g_autoptr(GVariant) items = g_variant_get_child_value(reply, 0);
	g_autoptr(GVariant) item = NULL;

	g_assert_cmpuint(g_variant_n_children(items), ==, 1);
	item = g_variant_get_child_value(items, 0);
	return g_variant_get_data_as_bytes(item);
}

/* GenerateDataKey, ReEncrypt, SignDigest, EncryptBatch, SignBatch: the output belongs to the target's key, whoever
 * called: Decrypt or VerifyDigest of the target's key opens or checks it (as root, whom
 * polkitd authorizes in every phase, addressing the key as UID:NAME). NULL if fine. */
static gchar *
check_made_for_target(const Method *m, const Variant *v, GVariant *reply)
{
	AuthzCaller *owner = callers[WHO_ROOT];
	g_autofree gchar *aes = g_strdup_printf("%u:m-aes", target_owner(m, v));
	g_autofree gchar *ec = g_strdup_printf("%u:m-ec", target_owner(m, v));
	g_autoptr(GBytes) out = NULL;
	g_autoptr(GBytes) want = NULL;
	g_autoptr(AuthzReply) r = NULL;

	if (g_str_equal(m->name, "SignDigest") || g_str_equal(m->name, "SignBatch")) {
		gboolean valid = FALSE;
		gboolean batch = g_str_equal(m->name, "SignBatch");
		out = batch ? batch_item(reply) : reply_bytes_of(reply, 0);
		r = authz_call(owner, batch ? "Verify" : "VerifyDigest", FALSE,
			       g_variant_new("(s@ay@ay)", ec, bytes_v(batch ? data : digest),
					     bytes_v(out)));
		if (!r->ok)
			return g_strdup_printf("VerifyDigest by the owner: %s", r->error);
		g_variant_get(r->value, "(b)", &valid);
		return valid ? NULL : g_strdup("the owner's VerifyDigest says not valid");
	}
	if (g_str_equal(m->name, "GenerateDataKey")) {
		want = reply_bytes_of(reply, 0);
		out = reply_bytes_of(reply, 1);
		if (g_bytes_get_size(want) != 32)
			return g_strdup("the data key is not 32 bytes");
	} else if (g_str_equal(m->name, "EncryptBatch")) {
		want = g_bytes_ref(data);
		out = batch_item(reply);
	} else {
		want = g_bytes_ref(data);
		out = reply_bytes_of(reply, 0);
	}
	r = authz_call(owner, "Decrypt", FALSE,
		       g_variant_new("(s@ay@ay)", aes, bytes_v(out), bytes_v(ctx)));
	if (!r->ok)
		return g_strdup_printf("Decrypt by the owner: %s", r->error);
	{
		g_autoptr(GBytes) back = reply_bytes_of(r->value, 0);
		if (!g_bytes_equal(back, want))
			return g_strdup("the owner's Decrypt gives other bytes");
	}
	return NULL;
}

/* What a successful reply must say. NULL if fine. */
static gchar *
check_reply(const Method *m, const Variant *v, GVariant *reply)
{
	const gchar *n = m->name;
	guint32 owner = G_MAXUINT32;

	if (g_str_equal(n, "CreateKey") || g_str_equal(n, "GetKeyInfo")) {
		g_autoptr(GVariant) info = g_variant_get_child_value(reply, 0);
		g_variant_lookup(info, "owner", "u", &owner);
		if (owner != target_owner(m, v))
			return g_strdup_printf("the key info says owner %u, not %u", owner,
					       target_owner(m, v));
	} else if (g_str_equal(n, "GetSecret")) {
		const Material *mat = target_owner(m, v) == 0 ? &mat_root : &mat_a;
		g_autoptr(GVariant) child = g_variant_get_child_value(reply, 0);
		g_autoptr(GBytes) b = g_variant_get_data_as_bytes(child);
		if (!g_bytes_equal(b, mat->password))
			return g_strdup("the password is not the target's current one");
	} else if (g_str_equal(n, "ImportSecret")) {
		guint32 version = 0;
		g_variant_get(reply, "(u)", &version);
		if (version < 2)
			return g_strdup_printf("ImportSecret made version %u", version);
	} else if (g_str_equal(n, "Decrypt") || g_str_equal(n, "Unseal")) {
		g_autoptr(GVariant) child = g_variant_get_child_value(reply, 0);
		g_autoptr(GBytes) b = g_variant_get_data_as_bytes(child);
		if (!g_bytes_equal(b, data))
			return g_strdup("the plaintext differs");
	} else if (g_str_equal(n, "DecryptBatch") || g_str_equal(n, "HmacBatch")) {
		const Material *mat = target_owner(m, v) == 0 ? &mat_root : &mat_a;
		g_autoptr(GBytes) b = batch_item(reply);
		if (!g_bytes_equal(b, g_str_equal(n, "HmacBatch") ? mat->mac : data))
			return g_strdup_printf("%s gives other bytes than the target's key", n);
	} else if (g_str_equal(n, "GenerateDataKey") || g_str_equal(n, "ReEncrypt") ||
		   g_str_equal(n, "SignDigest") || g_str_equal(n, "EncryptBatch") ||
		   g_str_equal(n, "SignBatch")) {
		return check_made_for_target(m, v, reply);
	} else if (g_str_equal(n, "Verify") || g_str_equal(n, "VerifyHmac") ||
		   g_str_equal(n, "VerifyDigest")) {
		gboolean valid = FALSE;
		g_variant_get(reply, "(b)", &valid);
		if (!valid)
			return g_strdup("valid is false");
	} else if (g_str_equal(n, "ListKeys") || g_str_equal(n, "ListKeysPage")) {
		g_autoptr(GVariant) list = g_variant_get_child_value(reply, 0);
		g_autofree gchar *names = authz_key_list_names(list, TRUE);
		g_autofree gchar *prefix = g_strdup_printf("%u:", who_uid(v->who));
		g_auto(GStrv) each = g_strsplit(names, ",", -1);
		for (guint i = 0; each[i] != NULL && each[i][0] != '\0'; i++)
			if (!g_str_has_prefix(each[i], prefix))
				return g_strdup_printf("ListKeys shows another owner's key: %s",
						       names);
	} else if (g_str_equal(n, "ListAllKeys") || g_str_equal(n, "ListAllKeysPage")) {
		g_autoptr(GVariant) list = g_variant_get_child_value(reply, 0);
		g_autofree gchar *names = authz_key_list_names(list, TRUE);
		g_autofree gchar *a_key = g_strdup_printf(",%u:m-aes,", authz_uid_a);
		g_autofree gchar *padded = g_strdup_printf(",%s,", names);
		if (strstr(padded, ",0:m-aes,") == NULL || strstr(padded, a_key) == NULL)
			return g_strdup_printf("ListAllKeys lacks root's or a's keys: %s", names);
	}
	return NULL;
}

/* The expected change of the store. NULL if as expected. */
static gchar *
check_store(const Method *m, const Variant *v, Expect e, const gchar *key, GHashTable *before,
	    GHashTable *after)
{
	g_autoptr(GPtrArray) added = NULL;
	g_autoptr(GPtrArray) removed = NULL;
	g_autoptr(GPtrArray) changed = NULL;
	guint want_added = 0, want_changed = 0;
	const gchar *base = key ? (strchr(key, ':') ? strchr(key, ':') + 1 : key) : NULL;
	g_autofree gchar *diff = authz_snapshot_diff(before, after);

	authz_snapshot_compare(before, after, &added, &removed, &changed);
	if (e == EXPECT_OK && g_str_equal(m->name, "CreateKey"))
		want_added = 1;
	if (e == EXPECT_OK && (changes_victim(m->name) || g_str_equal(m->name, "RotateKey") ||
			       g_str_equal(m->name, "ImportSecret")))
		want_changed = 1;
	if (added->len != want_added || removed->len != 0 || changed->len != want_changed)
		return g_strdup_printf("the store changed unexpectedly:%s", diff ? diff : "");
	if (want_added) {
		const gchar *path = g_ptr_array_index(added, 0);
		g_autofree gchar *want = g_strdup_printf("keys.db/%u/%s", target_owner(m, v), base);
		if (!g_str_equal(path, want))
			return g_strdup_printf("the new key is %s (owner %u, name %s)", path,
					       target_owner(m, v), base);
	}
	if (want_changed) {
		const gchar *path = g_ptr_array_index(changed, 0);
		g_autofree gchar *want = g_strdup_printf("keys.db/%u/%s", target_owner(m, v), base);
		if (!g_str_equal(path, want))
			return g_strdup_printf("%s changed %s, not %s", m->name, path, want);
	}
	return NULL;
}

/* Exactly one new audit record, describing this call. NULL if as expected. */
static gchar *
check_audit(const Method *m, const Variant *v, Expect e, const gchar *key, GPtrArray *lines)
{
	g_autoptr(JsonObject) rec = NULL;
	const gchar *result, *want_result, *error, *method;
	JsonNode *knode, *onode;
	gint64 uid;

	if (lines->len != 1)
		return g_strdup_printf("%u new audit records instead of 1", lines->len);
	rec = authz_audit_parse(g_ptr_array_index(lines, 0));
	if (rec == NULL)
		return g_strdup_printf("unparsable audit record: %s",
				       (const gchar *)g_ptr_array_index(lines, 0));
	result = json_object_get_string_member_with_default(rec, "result", "");
	error = json_object_get_string_member_with_default(rec, "error", "");
	method = json_object_get_string_member_with_default(rec, "method", "");
	uid = json_object_get_int_member_with_default(rec, "uid", -1);
	want_result = e == EXPECT_OK ? "ok" : e == EXPECT_DENIED ? "denied" : "error";
	if (!g_str_equal(result, want_result))
		return g_strdup_printf("audit result \"%s\", expected \"%s\"", result, want_result);
	if (e == EXPECT_NOT_FOUND && !g_str_equal(error, "NotFound"))
		return g_strdup_printf("audit error \"%s\", expected NotFound", error);
	if (e == EXPECT_DENIED && !g_str_equal(error, "PermissionDenied"))
		return g_strdup_printf("audit error \"%s\", expected PermissionDenied", error);
	if (!g_str_equal(method, m->name))
		return g_strdup_printf("audit method \"%s\"", method);
	if (uid != who_uid(v->who))
		return g_strdup_printf("audit uid %" G_GINT64_FORMAT ", expected %u", uid,
				       who_uid(v->who));
	/* key and owner: what was asked for, once the daemon has parsed it (a refusal by polkit
	 * comes before that and may leave them null) */
	knode = json_object_get_member(rec, "key");
	onode = json_object_get_member(rec, "owner");
	if (onode == NULL)
		return g_strdup("the audit record has no \"owner\" member");
	if (m->key_arg && e != EXPECT_DENIED) {
		if (knode == NULL || JSON_NODE_HOLDS_NULL(knode) || JSON_NODE_HOLDS_NULL(onode))
			return g_strdup("audit key or owner is null");
	}
	if (knode != NULL && !JSON_NODE_HOLDS_NULL(knode) && m->key_arg &&
	    g_strcmp0(json_node_get_string(knode), key) != 0)
		return g_strdup_printf("audit key \"%s\", expected \"%s\"",
				       json_node_get_string(knode), key);
	if (!JSON_NODE_HOLDS_NULL(onode) && m->key_arg &&
	    json_node_get_int(onode) != (gint64)target_owner(m, v))
		return g_strdup_printf("audit owner %" G_GINT64_FORMAT ", expected %u",
				       json_node_get_int(onode), target_owner(m, v));
	return NULL;
}

static goffset audit_offset;

static void
run_case(const Method *m, const Variant *v, Phase p, gboolean interactive)
{
	const gchar *state = tkms_test_env_get_state_dir(env);
	g_autofree gchar *key = NULL;
	GVariant *args = case_args(m, v, p, interactive, &key);
	Expect e = expected(m, v, p, interactive);
	g_autoptr(GHashTable) before = authz_snapshot(state);
	g_autoptr(GHashTable) after = NULL;
	g_autoptr(GPtrArray) lines = NULL;
	g_autoptr(AuthzReply) r = NULL;
	g_autofree gchar *problem = NULL;
	g_autofree gchar *label = NULL;
	const gchar *got;

	lines = authz_audit_lines_since(state, &audit_offset); /* skip anything earlier */
	g_clear_pointer(&lines, g_ptr_array_unref);

	r = authz_call(callers[v->who], m->name, interactive, args);
	after = authz_snapshot(state);
	lines = authz_audit_lines_since(state, &audit_offset);
	n_cases++;

	got = authz_reply_outcome(r);
	label = g_strdup_printf("[%s] %s as %s (%s%s%s)", phase_names[p], m->name,
				callers[v->who]->user, v->id, key ? ", " : "", key ? key : "");
	if (!g_str_equal(got, expect_names[e]))
		problem = g_strdup_printf("expected %s, got %s: %s", expect_names[e], got,
					  r->ok ? "" : r->message);
	if (problem == NULL && r->ok)
		problem = check_reply(m, v, r->value);
	if (problem == NULL)
		problem = check_store(m, v, e, key, before, after);
	if (problem == NULL)
		problem = check_audit(m, v, e, key, lines);
	g_test_message("%s%s -> %s%s%s", label, interactive ? " interactive" : "", got,
		       problem ? " FAIL: " : "", problem ? problem : "");
	if (problem != NULL)
		n_failures++;
	if (problem != NULL)
		g_string_append_printf(failures, "%s%s: %s\n", label,
				       interactive ? " interactive" : "", problem);
}

static void
run_phase(Phase p)
{
	guint start = n_cases;

	for (guint i = 0; i < G_N_ELEMENTS(methods); i++)
		for (guint j = 0; j < G_N_ELEMENTS(variants); j++)
			if (variant_applies(&methods[i], &variants[j]))
				run_case(&methods[i], &variants[j], p, FALSE);
	/* ALLOW_INTERACTIVE_AUTHORIZATION: without an agent the challenge still fails */
	if (p == PHASE_AUTH_ADMIN)
		for (guint i = 0; i < G_N_ELEMENTS(methods); i++)
			run_case(&methods[i], &variants[2] /* owner */, p, TRUE);
	g_test_message("phase %s: %u cases", phase_names[p], n_cases - start);
}

/* ---------------------------------------------------------------------------------------- */

/* The introspected methods are exactly the table's (a new method needs a row here). */
static void
test_introspection(void)
{
	g_autoptr(AuthzReply) r = authz_call(callers[WHO_A],
					     "org.freedesktop.DBus.Introspectable."
					     "Introspect",
					     FALSE, g_variant_new("()"));
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusNodeInfo) node = NULL;
	GDBusInterfaceInfo *iface;
	const gchar *xml;
	guint n = 0;

	g_variant_get(authz_assert_ok(r, "Introspect"), "(&s)", &xml);
	node = g_dbus_node_info_new_for_xml(xml, &error);
	g_assert_no_error(error);
	iface = g_dbus_node_info_lookup_interface(node, "org.tkms.KeyManager");
	g_assert_nonnull(iface);
	for (GDBusMethodInfo **mi = iface->methods; mi != NULL && *mi != NULL; mi++) {
		gboolean found = FALSE;
		for (guint i = 0; i < G_N_ELEMENTS(methods); i++)
			found |= g_str_equal(methods[i].name, (*mi)->name);
		if (!found)
			g_error("method %s is not in the authorization matrix", (*mi)->name);
		n++;
	}
	g_assert_cmpuint(n, ==, G_N_ELEMENTS(methods));
}

static void
test_matrix(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(AuthzReply) r1 = NULL;
	g_autoptr(AuthzReply) r2 = NULL;
	const gchar *state = tkms_test_env_get_state_dir(env);
	g_autofree gchar *log = g_build_filename(state, "audit.log", NULL);
	g_autofree gchar *head = g_build_filename(state, "audit.head", NULL);
	gint64 t0 = g_get_monotonic_time();

	failures = g_string_new(NULL);

	set_phase_rules(phase_results[PHASE_YES]);
	assert_pkcheck(AUTHZ_USER_A, TKMS_ACTION_READ_KEY, TKMS_TEST_POLKIT_YES);
	assert_pkcheck(AUTHZ_USER_B, TKMS_ACTION_ADMIN, TKMS_TEST_POLKIT_CHALLENGE);
	assert_pkcheck(AUTHZ_USER_ADMIN, TKMS_ACTION_ADMIN, TKMS_TEST_POLKIT_YES);
	run_phase(PHASE_YES);

	set_phase_rules(phase_results[PHASE_NO]);
	assert_pkcheck(AUTHZ_USER_A, TKMS_ACTION_READ_KEY, TKMS_TEST_POLKIT_NO);
	assert_pkcheck(AUTHZ_USER_ADMIN, TKMS_ACTION_ADMIN, TKMS_TEST_POLKIT_YES);
	/* the rules say NO for root too: polkitd does not ask them about uid 0 */
	assert_pkcheck("root", TKMS_ACTION_READ_KEY, TKMS_TEST_POLKIT_YES);
	assert_pkcheck("root", TKMS_ACTION_ADMIN, TKMS_TEST_POLKIT_YES);
	run_phase(PHASE_NO);

	set_phase_rules(phase_results[PHASE_AUTH_ADMIN]);
	assert_pkcheck(AUTHZ_USER_A, TKMS_ACTION_READ_KEY, TKMS_TEST_POLKIT_CHALLENGE);
	assert_pkcheck("root", TKMS_ACTION_DESTROY_KEY, TKMS_TEST_POLKIT_YES);
	run_phase(PHASE_AUTH_ADMIN);

	set_phase_rules(phase_results[PHASE_STOPPED]);
	tkms_test_env_stop_polkit(env, &error);
	g_assert_no_error(error);
	run_phase(PHASE_STOPPED);
	tkms_test_env_start_polkit(env, &error);
	g_assert_no_error(error);

	/* polkitd is back: the daemon follows it (no restart of tkmsd) */
	r1 = authz_call(callers[WHO_A], "GetRandom", FALSE, g_variant_new("(u)", 4u));
	authz_assert_ok(r1, "GetRandom as the owner after polkitd's restart");
	r2 = authz_call(callers[WHO_ROOT], "GetRandom", FALSE, g_variant_new("(u)", 4u));
	authz_assert_ok(r2, "GetRandom as root after polkitd's restart");

	/* the refusals are part of an intact chain */
	g_assert_true(tkms_audit_chain_verify_file(log, NULL, NULL, &error));
	g_assert_no_error(error);

	g_test_message("authorization matrix: %u cases (%u methods x callers {root, owner, other "
		       "user, admin-granted} with their addressings x polkit {yes, no, auth_admin, "
		       "polkitd stopped}), %.1f s",
		       n_cases, (guint)G_N_ELEMENTS(methods), (g_get_monotonic_time() - t0) / 1e6);
	if (n_failures > 0) {
		g_auto(GStrv) each = g_strsplit(failures->str, "\n", -1);
		for (guint i = 0; each[i] != NULL && each[i][0] != '\0'; i++)
			g_test_message("FAILED %s", each[i]);
		g_test_fail_printf("%u of the %u cases of the authorization matrix failed (FAILED "
				   "lines above)",
				   n_failures, n_cases);
	}
	g_string_free(failures, TRUE);
}

int
main(int argc, char **argv)
{
	g_autofree gchar *rules = NULL;
	int ret;

	g_test_init(&argc, &argv, NULL);
	authz_setup_users();
	rules = rules_for("YES");
	/* every call asks polkitd: a cached "yes" would hide the next phase's answer */
	env = tkms_test_env_new_real_polkit_or_abort("[cache]\nAuthorizationTtl=0\n", rules);
	callers[WHO_ROOT] = authz_caller_new(env, "root");
	callers[WHO_A] = authz_caller_new(env, AUTHZ_USER_A);
	callers[WHO_B] = authz_caller_new(env, AUTHZ_USER_B);
	callers[WHO_ADMIN] = authz_caller_new(env, AUTHZ_USER_ADMIN);

	data = tkms_test_bytes_str("authorization matrix data");
	ctx = tkms_test_bytes_str("matrix context");
	{
		guint8 md[32];
		gsize md_len = sizeof(md);
		g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
		g_checksum_update(sum, g_bytes_get_data(data, NULL), g_bytes_get_size(data));
		g_checksum_get_digest(sum, md, &md_len);
		digest = g_bytes_new(md, md_len);
	}
	make_material(WHO_ROOT, &mat_root);
	make_material(WHO_A, &mat_a);
	for (Phase p = 0; p < N_PHASES; p++)
		for (guint j = 0; j < G_N_ELEMENTS(variants); j++) {
			g_autofree gchar *victim = victim_name(p, &variants[j]);
			Who who = variants[j].system_target ? WHO_ROOT : WHO_A;
			g_autoptr(AuthzReply) r = NULL;
			create_key(who, victim, "hmac-sha256");
			r = authz_call(callers[who], "RotateKey", FALSE,
				       g_variant_new("(s)", victim));
			authz_assert_ok(r, "RotateKey of a victim");
		}

	g_test_add_func("/authz/introspection", test_introspection);
	g_test_add_func("/authz/matrix", test_matrix);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	for (guint i = 0; i < N_WHO; i++)
		authz_caller_free(callers[i]);
	tkms_test_env_free(env);
	return ret;
}
