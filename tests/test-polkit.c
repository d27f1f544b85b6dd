/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-polkit"

/* Authorization through the polkit mock: every method maps to its DESIGN action, a refusal
 * is PermissionDenied and changes nothing, and a polkit Changed signal drops cached answers.
 * A slow polkit makes callers wait, never refuses them; a check that fails is not a "no" (nor
 * a "yes"). */

#include <string.h>

#include "tkms-test-store.h"
#include "tkms-test-util.h"

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))

static const gchar *aes = "pk-aes";
static const gchar *hmac = "pk-hmac";
static const gchar *ec = "pk-ec";
static const gchar *rot = "pk-rot"; /* the key the life-cycle methods change */
static const gchar *pw = "pk-pw";   /* a password key: ImportSecret adds versions */
static GBytes *data, *ct, *sig, *mac, *blob, *ctx;
static GBytes *digest; /* SHA-256 of data */
static gchar *victim; /* the key DestroyKey targets next */

typedef GError *(*CallFunc)(TkmsClient *client);

#define DEFINE_CALL(fname, expr)                                                                \
	static GError *fname(TkmsClient *client)                                                \
	{                                                                                       \
		GError *error = NULL;                                                           \
		expr;                                                                           \
		return error;                                                                   \
	}

static GError *
call_create(TkmsClient *client)
{
	GError *error = NULL;
	g_autofree gchar *name = tkms_test_key_name("pk-new");
	g_autoptr(GVariant) info =
		tkms_client_create_key_sync(client, name, "hmac-sha256", NULL, NULL, &error);
	return error;
}

DEFINE_CALL(call_list, g_autoptr(GVariant) v = tkms_client_list_keys_sync(client, NULL, &error))
DEFINE_CALL(call_list_all,
	    g_autoptr(GVariant) v = tkms_client_list_all_keys_sync(client, NULL, &error))
/* Raw calls for the methods libtkms has no call for (their signatures are the contract), and
 * for the paged methods whatever libtkms offers for them. */
static GError *
call_raw(TkmsClient *client, const gchar *method, GVariant *args, const gchar *reply_type)
{
	GError *error = NULL;
	g_autoptr(GVariant) v = g_dbus_connection_call_sync(
		tkms_client_get_connection(client), "org.tkms.KeyManager", "/org/tkms/KeyManager",
		"org.tkms.KeyManager", method, args, G_VARIANT_TYPE(reply_type),
		G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
	return error;
}

static GError *
call_page(TkmsClient *client, const gchar *method)
{
	return call_raw(client, method, g_variant_new("(su)", "", 0u), "(aa{sv}s)");
}
DEFINE_CALL(call_list_page, error = call_page(client, "ListKeysPage"))
DEFINE_CALL(call_list_all_page, error = call_page(client, "ListAllKeysPage"))
DEFINE_CALL(call_info,
	    g_autoptr(GVariant) v = tkms_client_get_key_info_sync(client, aes, NULL, &error))
DEFINE_CALL(call_destroy, tkms_client_destroy_key_sync(client, victim, NULL, &error))
DEFINE_CALL(call_encrypt,
	    g_autoptr(GBytes) b = tkms_client_encrypt_sync(client, aes, data, ctx, NULL, &error))
DEFINE_CALL(call_decrypt,
	    g_autoptr(GBytes) b = tkms_client_decrypt_sync(client, aes, ct, ctx, NULL, &error))
DEFINE_CALL(call_sign, g_autoptr(GBytes) b = tkms_client_sign_sync(client, ec, data, NULL, &error))
DEFINE_CALL(call_verify, gboolean v = FALSE;
	    tkms_client_verify_sync(client, ec, data, sig, &v, NULL, &error))
DEFINE_CALL(call_public_key,
	    g_autofree gchar *pem = tkms_client_get_public_key_sync(client, ec, NULL, &error))
DEFINE_CALL(call_hmac,
	    g_autoptr(GBytes) b = tkms_client_hmac_sync(client, hmac, data, NULL, &error))
DEFINE_CALL(call_verify_hmac, gboolean v = FALSE;
	    tkms_client_verify_hmac_sync(client, hmac, data, mac, &v, NULL, &error))
DEFINE_CALL(call_derive, g_autoptr(GBytes) b =
				 tkms_client_derive_key_sync(client, hmac, ctx, 32, NULL, &error))
DEFINE_CALL(call_seal, g_autoptr(GBytes) b = tkms_client_seal_sync(client, data, NULL, NULL,
								   &error))
DEFINE_CALL(call_unseal, g_autoptr(GBytes) b = tkms_client_unseal_sync(client, blob, NULL, &error))
DEFINE_CALL(call_random, g_autoptr(GBytes) b = tkms_client_get_random_sync(client, 8, NULL, &error))

/* data keys, rewrapping, digests (raw) */
#define BYTES_V(b) g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, (b), TRUE)
DEFINE_CALL(call_generate_data_key,
	    error = call_raw(client, "GenerateDataKey",
			     g_variant_new("(su@ay)", aes, 32u, BYTES_V(ctx)), "(ayay)"))
DEFINE_CALL(call_re_encrypt,
	    error = call_raw(client, "ReEncrypt",
			     g_variant_new("(s@ay@ay)", aes, BYTES_V(ct), BYTES_V(ctx)), "(ay)"))
DEFINE_CALL(call_sign_digest, error = call_raw(client, "SignDigest",
					       g_variant_new("(s@ay)", ec, BYTES_V(digest)),
					       "(ay)"))
DEFINE_CALL(call_verify_digest,
	    error = call_raw(client, "VerifyDigest",
			     g_variant_new("(s@ay@ay)", ec, BYTES_V(digest), BYTES_V(sig)), "(b)"))

/* the life-cycle methods (raw, like the data-key calls) */
DEFINE_CALL(call_rotate, error = call_raw(client, "RotateKey", g_variant_new("(s)", rot), "(u)"))
/* version 1 stays active and may always be primary; setting it active again is a no-op */
DEFINE_CALL(call_set_primary, error = call_raw(client, "SetPrimaryVersion",
					       g_variant_new("(su)", rot, 1), "()"))
DEFINE_CALL(call_set_state, error = call_raw(client, "SetKeyVersionState",
					     g_variant_new("(sus)", rot, 1, "active"), "()"))
DEFINE_CALL(call_set_policy, error = call_raw(client, "SetRotationPolicy",
					      g_variant_new("(s@a{sv})", rot,
							    g_variant_new_array(G_VARIANT_TYPE("{sv}"),
										NULL, 0)),
					      "()"))
/* service passwords (raw) */
DEFINE_CALL(call_import_secret, error = call_raw(client, "ImportSecret",
						 g_variant_new("(s@ay)", pw, BYTES_V(data)), "(u)"))
DEFINE_CALL(call_get_secret,
	    error = call_raw(client, "GetSecret", g_variant_new("(ss)", pw, "current"), "(ay)"))
/* on the victim, which has a version 2: destroy version 1, cancel, then destroy the key */
DEFINE_CALL(call_destroy_version, error = call_raw(client, "DestroyKeyVersion",
						   g_variant_new("(su)", victim, 1), "()"))
DEFINE_CALL(call_cancel_destruction, error = call_raw(client, "CancelKeyDestruction",
						      g_variant_new("(su)", victim, 0), "()"))

/* batches, of one item each */
static GPtrArray *
one(GBytes *b)
{
	GPtrArray *items = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_ptr_array_add(items, g_bytes_ref(b));
	return items;
}
DEFINE_CALL(call_encrypt_batch, g_autoptr(GPtrArray) items = one(data);
	    g_autoptr(GPtrArray) out =
		    tkms_client_encrypt_batch_sync(client, aes, items, ctx, NULL, &error))
DEFINE_CALL(call_decrypt_batch, g_autoptr(GPtrArray) items = one(ct);
	    g_autoptr(GPtrArray) out =
		    tkms_client_decrypt_batch_sync(client, aes, items, ctx, NULL, &error))
DEFINE_CALL(call_sign_batch, g_autoptr(GPtrArray) items = one(data);
	    g_autoptr(GPtrArray) out =
		    tkms_client_sign_batch_sync(client, ec, items, NULL, &error))
DEFINE_CALL(call_hmac_batch, g_autoptr(GPtrArray) items = one(data);
	    g_autoptr(GPtrArray) out =
		    tkms_client_hmac_batch_sync(client, hmac, items, NULL, &error))

/* DESIGN.md "Authorization": the method -> action table (a contract). */
static const struct {
	const gchar *method;
	const gchar *action;
	CallFunc call;
	gboolean admin; /* needs org.tkms.KeyManager.admin too */
} table[] = {
	{"CreateKey", TKMS_ACTION_CREATE_KEY, call_create},
	{"ListKeys", TKMS_ACTION_READ_KEY, call_list},
	{"ListAllKeys", TKMS_ACTION_READ_KEY, call_list_all, TRUE},
	{"ListKeysPage", TKMS_ACTION_READ_KEY, call_list_page},
	{"ListAllKeysPage", TKMS_ACTION_READ_KEY, call_list_all_page, TRUE},
	{"GetKeyInfo", TKMS_ACTION_READ_KEY, call_info},
	{"DestroyKeyVersion", TKMS_ACTION_DESTROY_KEY, call_destroy_version},
	{"CancelKeyDestruction", TKMS_ACTION_DESTROY_KEY, call_cancel_destruction},
	{"DestroyKey", TKMS_ACTION_DESTROY_KEY, call_destroy},
	{"Encrypt", TKMS_ACTION_USE_KEY, call_encrypt},
	{"Decrypt", TKMS_ACTION_USE_KEY, call_decrypt},
	{"Sign", TKMS_ACTION_USE_KEY, call_sign},
	{"Verify", TKMS_ACTION_USE_KEY, call_verify},
	{"GetPublicKey", TKMS_ACTION_READ_KEY, call_public_key},
	{"Hmac", TKMS_ACTION_USE_KEY, call_hmac},
	{"VerifyHmac", TKMS_ACTION_USE_KEY, call_verify_hmac},
	{"DeriveKey", TKMS_ACTION_USE_KEY, call_derive},
	{"Seal", TKMS_ACTION_SEAL, call_seal},
	{"Unseal", TKMS_ACTION_SEAL, call_unseal},
	{"GetRandom", TKMS_ACTION_SEAL, call_random},
	/* data keys, rewrapping, digests */
	{"GenerateDataKey", TKMS_ACTION_USE_KEY, call_generate_data_key},
	{"ReEncrypt", TKMS_ACTION_USE_KEY, call_re_encrypt},
	{"SignDigest", TKMS_ACTION_USE_KEY, call_sign_digest},
	{"VerifyDigest", TKMS_ACTION_USE_KEY, call_verify_digest},
	{"RotateKey", TKMS_ACTION_MANAGE_KEY, call_rotate},
	{"SetPrimaryVersion", TKMS_ACTION_MANAGE_KEY, call_set_primary},
	{"SetKeyVersionState", TKMS_ACTION_MANAGE_KEY, call_set_state},
	{"SetRotationPolicy", TKMS_ACTION_MANAGE_KEY, call_set_policy},
	{"ImportSecret", TKMS_ACTION_MANAGE_KEY, call_import_secret},
	{"GetSecret", TKMS_ACTION_READ_SECRET, call_get_secret},
	{"EncryptBatch", TKMS_ACTION_USE_KEY, call_encrypt_batch},
	{"DecryptBatch", TKMS_ACTION_USE_KEY, call_decrypt_batch},
	{"SignBatch", TKMS_ACTION_USE_KEY, call_sign_batch},
	{"HmacBatch", TKMS_ACTION_USE_KEY, call_hmac_batch},
};

/* the methods that use up the victim: run in table order, on a fresh victim */
static gboolean
uses_victim(guint i)
{
	return g_str_equal(table[i].action, TKMS_ACTION_DESTROY_KEY);
}

static void
new_victim(void)
{
	g_autoptr(GVariant) info = NULL;

	g_free(victim);
	victim = tkms_test_key_name("pk-victim");
	info = tkms_test_create_key(CLIENT, victim, "hmac-sha256", NULL);
	{
		g_autoptr(GError) e = call_raw(CLIENT, "RotateKey", g_variant_new("(s)", victim),
					       "(u)");
		g_assert_no_error(e);
	}
}

/* Every file of the state directory except the audit log, which refusals do append to, and
 * the key store's content. */
static GHashTable *
snapshot_state(void)
{
	GHashTable *snap = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);

	g_ptr_array_add(dirs, g_strdup(tkms_test_env_get_state_dir(env)));
	while (dirs->len > 0) {
		g_autofree gchar *dir = g_ptr_array_steal_index(dirs, dirs->len - 1);
		g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
		const gchar *name;

		g_assert_nonnull(d);
		while ((name = g_dir_read_name(d)) != NULL) {
			gchar *path = g_build_filename(dir, name, NULL);
			gchar *contents = NULL;

			if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
				g_ptr_array_add(dirs, path);
				continue;
			}
			/* the key store is compared by its content (below): a read may touch
			 * keys.db-shm, a checkpoint moves pages from keys.db-wal to keys.db */
			if (g_str_has_prefix(name, "audit.") ||
			    (g_str_equal(dir, tkms_test_env_get_state_dir(env)) &&
			     tkms_test_store_is_store_file(name))) {
				g_free(path);
				continue;
			}
			g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
			g_hash_table_insert(snap, path, contents);
		}
	}
	g_hash_table_insert(snap, g_strdup("keys.db (content)"),
			    tkms_test_store_dump(tkms_test_env_get_state_dir(env)));
	return snap;
}

static void
assert_same_state(GHashTable *a, GHashTable *b)
{
	GHashTableIter iter;
	gpointer k, v;

	g_assert_cmpuint(g_hash_table_size(a), ==, g_hash_table_size(b));
	g_hash_table_iter_init(&iter, a);
	while (g_hash_table_iter_next(&iter, &k, &v)) {
		const gchar *other = g_hash_table_lookup(b, k);
		g_assert_nonnull(other);
		if (g_strcmp0(v, other) != 0)
			g_error("%s changed while every action was denied", (const gchar *)k);
	}
}

static void
assert_all_denied(TkmsClient *client)
{
	for (guint i = 0; i < G_N_ELEMENTS(table); i++) {
		g_autoptr(GError) error = table[i].call(client);
		g_test_message("%s while denied: %s", table[i].method,
			       error ? error->message : "success");
		tkms_assert_error(error, TKMS_ERROR_PERMISSION_DENIED);
	}
}

static void
test_deny_all(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) before = NULL;
	g_autoptr(GHashTable) after = NULL;
	g_autoptr(GVariant) list_before = NULL;
	g_autoptr(GVariant) list_after = NULL;

	new_victim();
	/* The main client has used every method: the daemon may have cached "yes" for it. */
	for (guint i = 0; i < G_N_ELEMENTS(table); i++) {
		g_autoptr(GError) e = NULL;
		if (uses_victim(i))
			continue;
		e = table[i].call(CLIENT);
		g_assert_no_error(e);
	}
	list_before = tkms_client_list_keys_sync(CLIENT, NULL, &error);
	g_assert_no_error(error);
	before = snapshot_state();

	tkms_test_env_polkit_set_allowed(env, NULL, &error);
	g_assert_no_error(error);

	/* A fresh caller, with nothing cached. */
	{
		g_autoptr(TkmsClient) fresh = tkms_test_new_client(env);
		assert_all_denied(fresh);
	}
	/* The known caller: polkit's Changed signal dropped its cached answers. */
	assert_all_denied(CLIENT);

	after = snapshot_state();
	assert_same_state(before, after);

	tkms_test_env_polkit_allow_all(env, &error);
	g_assert_no_error(error);
	list_after = tkms_client_list_keys_sync(CLIENT, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_variant_equal(list_before, list_after));
	/* Allowed again: everything works on both kinds of caller. */
	{
		g_autoptr(TkmsClient) fresh = tkms_test_new_client(env);
		for (guint i = 0; i < G_N_ELEMENTS(table); i++) {
			g_autoptr(GError) e1 = NULL;
			g_autoptr(GError) e2 = NULL;
			if (uses_victim(i))
				continue;
			e1 = table[i].call(CLIENT);
			g_assert_no_error(e1);
			e2 = table[i].call(fresh);
			g_assert_no_error(e2);
		}
	}
	new_victim();
	for (guint i = 0; i < G_N_ELEMENTS(table); i++) {
		g_autoptr(GError) e = NULL;
		if (!uses_victim(i))
			continue;
		e = table[i].call(CLIENT);
		g_assert_no_error(e);
	}
}

/* Granting one action at a time allows exactly the methods of that action. */
static void
test_per_action(void)
{
	for (const gchar *const *a = tkms_test_all_actions(); *a != NULL; a++) {
		const gchar *only[] = {*a, NULL};
		g_autoptr(GError) error = NULL;
		g_autoptr(TkmsClient) fresh = NULL;

		new_victim();
		tkms_test_env_polkit_set_allowed(env, only, &error);
		g_assert_no_error(error);
		fresh = tkms_test_new_client(env);
		for (guint i = 0; i < G_N_ELEMENTS(table); i++) {
			g_autoptr(GError) e = table[i].call(fresh);
			g_test_message("only %s: %s -> %s", *a, table[i].method,
				       e ? e->message : "ok");
			if (g_str_equal(table[i].action, *a) && !table[i].admin)
				g_assert_no_error(e);
			else
				tkms_assert_error(e, TKMS_ERROR_PERMISSION_DENIED);
		}
		tkms_test_env_polkit_allow_all(env, &error);
		g_assert_no_error(error);
	}
}

/* The introspected methods equal the authorization table (DESIGN: a method without an
 * entry is denied; this catches a new method added without deciding its action). */
static void
test_introspection(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GDBusNodeInfo) node = NULL;
	GDBusInterfaceInfo *iface;
	const gchar *xml;
	guint n = 0;

	reply = g_dbus_connection_call_sync(tkms_test_env_get_connection(env), TKMS_BUS_NAME,
					    TKMS_OBJECT_PATH, "org.freedesktop.DBus.Introspectable",
					    "Introspect", NULL, G_VARIANT_TYPE("(s)"),
					    G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
	g_assert_no_error(error);
	g_variant_get(reply, "(&s)", &xml);
	node = g_dbus_node_info_new_for_xml(xml, &error);
	g_assert_no_error(error);
	iface = g_dbus_node_info_lookup_interface(node, "org.tkms.KeyManager");
	g_assert_nonnull(iface);
	for (GDBusMethodInfo **m = iface->methods; m != NULL && *m != NULL; m++) {
		gboolean found = FALSE;
		for (guint i = 0; i < G_N_ELEMENTS(table); i++)
			if (g_str_equal(table[i].method, (*m)->name))
				found = TRUE;
		if (!found)
			g_error("method %s has no entry in the authorization table", (*m)->name);
		n++;
	}
	g_assert_cmpuint(n, ==, G_N_ELEMENTS(table));
}

static void
setup_material(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) i1 = tkms_test_create_key(CLIENT, aes, "aes-256-gcm", NULL);
	g_autoptr(GVariant) i2 = tkms_test_create_key(CLIENT, hmac, "hmac-sha256", NULL);
	g_autoptr(GVariant) i3 = tkms_test_create_key(CLIENT, ec, "ecdsa-p256", NULL);
	g_autoptr(GVariant) i4 = tkms_test_create_key(CLIENT, rot, "hmac-sha256", NULL);
	g_autoptr(GVariant) i5 = tkms_test_create_key(CLIENT, pw, "password", NULL);

	data = tkms_test_bytes_str("polkit test data");
	ctx = tkms_test_bytes_str("polkit ctx");
	{
		guint8 md[32];
		gsize md_len = sizeof(md);
		g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
		g_checksum_update(sum, g_bytes_get_data(data, NULL), g_bytes_get_size(data));
		g_checksum_get_digest(sum, md, &md_len);
		digest = g_bytes_new(md, md_len);
	}
	ct = tkms_client_encrypt_sync(CLIENT, aes, data, ctx, NULL, &error);
	g_assert_no_error(error);
	sig = tkms_client_sign_sync(CLIENT, ec, data, NULL, &error);
	g_assert_no_error(error);
	mac = tkms_client_hmac_sync(CLIENT, hmac, data, NULL, &error);
	g_assert_no_error(error);
	blob = tkms_client_seal_sync(CLIENT, data, NULL, NULL, &error);
	g_assert_no_error(error);
}

static GVariant *
mock_call(const gchar *method, GVariant *args)
{
	g_autoptr(GError) error = NULL;
	GVariant *r = g_dbus_connection_call_sync(
		tkms_test_env_get_connection(env), "org.freedesktop.PolicyKit1",
		"/org/freedesktop/PolicyKit1/Authority", "org.freedesktop.DBus.Mock", method, args,
		NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
	g_assert_no_error(error);
	return r;
}

static void
got_random_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GBytes **out = user_data;
	g_autoptr(GError) error = NULL;
	*out = tkms_client_get_random_finish(TKMS_CLIENT(source), res, &error);
	g_assert_no_error(error);
}

/* A "yes" that arrives after polkit's Changed signal (a dialog answered while an administrator
 * tightened the rules) answers its own call but is not cached: the next call asks again. */
static void
test_stale_yes(void)
{
	static const gchar *const no_seal[] = {TKMS_ACTION_READ_KEY, TKMS_ACTION_USE_KEY, NULL};
	g_autoptr(TkmsClient) fresh = tkms_test_new_client(env);
	g_autoptr(GBytes) first = NULL, second = NULL;
	g_autoptr(GError) error = NULL;
	gboolean hanging = FALSE;

	tkms_test_env_polkit_allow_all(env, &error);
	g_assert_no_error(error);
	g_variant_unref(mock_call("SimulateHang", g_variant_new("(b)", TRUE)));
	tkms_client_get_random(fresh, 8, NULL, got_random_cb, &first);
	for (guint i = 0; i < 500 && !hanging; i++) {
		g_autoptr(GVariant) r = NULL;
		g_main_context_iteration(NULL, FALSE);
		r = mock_call("HaveHangingCalls", NULL);
		g_variant_get(r, "(b)", &hanging);
		if (!hanging)
			g_usleep(10000);
	}
	g_assert_true(hanging);

	/* the rules change (Changed is emitted) while the check is in flight */
	tkms_test_env_polkit_set_allowed(env, no_seal, &error);
	g_assert_no_error(error);
	g_variant_unref(mock_call("SimulateHang", g_variant_new("(b)", FALSE)));
	g_variant_unref(mock_call("ReleaseHangingCalls", NULL));
	while (first == NULL)
		g_main_context_iteration(NULL, TRUE);
	g_assert_cmpuint(g_bytes_get_size(first), ==, 8);

	second = tkms_client_get_random_sync(fresh, 8, NULL, &error);
	g_assert_null(second);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_PERMISSION_DENIED);
	g_clear_error(&error);

	tkms_test_env_polkit_allow_all(env, &error);
	g_assert_no_error(error);
}

/* ---- a slow or failing polkit ---- */

#define N_SLOW_CALLERS 160 /* more than dbus-daemon's 128 pending replies per connection */
#define N_SLOW_LEAVERS 40  /* of which leave before polkit answers */

typedef struct {
	guint ok, denied, closed, other;
} Tally;

static void
slow_reply_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Tally *t = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r =
		g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
	g_autofree gchar *name = error != NULL ? g_dbus_error_get_remote_error(error) : NULL;

	if (r != NULL) {
		t->ok++;
	} else if (name == NULL) {
		t->closed++; /* our own connection, closed before the reply */
	} else if (g_str_equal(name, "org.tkms.KeyManager.Error.PermissionDenied")) {
		g_test_message("refused: %s", error->message);
		t->denied++;
	} else {
		g_test_message("failed: %s: %s", name, error->message);
		t->other++;
	}
}

static void
spin_for(guint ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

	while (g_get_monotonic_time() < end)
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(1000);
}

/* polkit answers slowly (CPUs busy) while many callers wait, some of whom leave: each waits its
 * turn and is authorized once polkit answers. tkmsd once sent every check at once, and past
 * dbus-daemon's 128 pending replies per connection the bus answered LimitsExceeded, which was
 * taken for a refusal: authorized callers got PermissionDenied (32 of these 160). */
static void
test_slow_polkit(void)
{
	g_autoptr(GPtrArray) conns = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(GError) error = NULL;
	Tally t = {0};
	gboolean hanging = FALSE;
	gint64 deadline;

	tkms_test_env_polkit_allow_all(env, &error);
	g_assert_no_error(error);
	g_variant_unref(mock_call("SimulateHang", g_variant_new("(b)", TRUE)));
	for (guint i = 0; i < N_SLOW_CALLERS; i++) {
		GDBusConnection *c = g_dbus_connection_new_for_address_sync(
			tkms_test_env_get_bus_address(env),
			G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
				G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
			NULL, NULL, &error);
		g_assert_no_error(error);
		g_dbus_connection_call(c, TKMS_BUS_NAME, TKMS_OBJECT_PATH, "org.tkms.KeyManager",
				       "GetRandom", g_variant_new("(u)", 8u),
				       G_VARIANT_TYPE("(ay)"), G_DBUS_CALL_FLAGS_NONE,
				       60000 * tkms_test_timeout_factor(), NULL, slow_reply_cb, &t);
		g_ptr_array_add(conns, c);
	}
	for (guint i = 0; i < 500 && !hanging; i++) {
		g_autoptr(GVariant) r = mock_call("HaveHangingCalls", NULL);
		g_variant_get(r, "(b)", &hanging);
		if (!hanging)
			spin_for(10);
	}
	g_assert_true(hanging);
	/* every call has reached tkmsd and its check polkit, or tkmsd's queue */
	spin_for(1500);
	g_assert_cmpuint(t.denied, ==, 0);
	g_assert_cmpuint(t.other, ==, 0);
	for (guint i = 0; i < N_SLOW_LEAVERS; i++)
		g_dbus_connection_close_sync(g_ptr_array_index(conns, i), NULL, NULL);
	spin_for(200);

	g_variant_unref(mock_call("SimulateHang", g_variant_new("(b)", FALSE)));
	g_variant_unref(mock_call("ReleaseHangingCalls", NULL));
	/* 120 checks and GetRandoms in turn: longer with tkmsd under valgrind */
	deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC * tkms_test_timeout_factor();
	while (t.ok + t.denied + t.closed + t.other < N_SLOW_CALLERS &&
	       g_get_monotonic_time() < deadline)
		spin_for(10);
	g_test_message("%u callers: %u ok, %u refused, %u left, %u other errors", N_SLOW_CALLERS,
		       t.ok, t.denied, t.closed, t.other);
	g_assert_cmpuint(t.denied, ==, 0);
	g_assert_cmpuint(t.other, ==, 0);
	g_assert_cmpuint(t.closed, <=, N_SLOW_LEAVERS);
	g_assert_cmpuint(t.ok + t.closed, ==, N_SLOW_CALLERS);
	g_assert_cmpuint(t.ok, >=, N_SLOW_CALLERS - N_SLOW_LEAVERS);
}

typedef struct {
	Tally *t;
	guint root_asked;  /* root's replies before this one was asked for */
	guint root_before; /* root's replies before this one */
	gboolean done, ok;
} OtherCall;

static void
other_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	OtherCall *o = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = g_data_input_stream_read_line_finish_utf8(
		G_DATA_INPUT_STREAM(source), res, NULL, &error);

	o->root_before = o->t->ok + o->t->denied + o->t->other;
	g_assert_no_error(error);
	g_test_message(
		"the other user's GetRandom, asked after %u of root's, answered after %u: %s",
		o->root_asked, o->root_before, out);
	o->ok = out != NULL && g_str_has_prefix(out, "OK ");
	o->done = TRUE;
}

/* One GetRandom on a new connection of the other user's serving helper. */
static void
other_ask(GSubprocess *other)
{
	static const gchar line[] = "GetRandom - (uint32 8,)\n";
	g_autoptr(GError) error = NULL;

	g_output_stream_write_all(g_subprocess_get_stdin_pipe(other), line, strlen(line), NULL,
				  NULL, &error);
	g_assert_no_error(error);
	g_output_stream_flush(g_subprocess_get_stdin_pipe(other), NULL, &error);
	g_assert_no_error(error);
}

/* While one user's many checks wait for a slow polkit, another user's check takes its turn
 * (the waiting checks are served a uid at a time), instead of waiting behind all of them.
 * The other user's helper runs before root's checks start, so that what is measured is
 * tkmsd's order, not how long a process takes to start (seconds in a sanitizer build on busy
 * CPUs, while polkit answered 20 of root's checks a second). */
static void
test_slow_polkit_fair(void)
{
	const gchar *helper_argv[] = {tkms_test_helper_path(), "serve", NULL};
	g_autoptr(GPtrArray) conns = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(GSubprocess) other = NULL;
	g_autoptr(GDataInputStream) other_out = NULL;
	g_autoptr(GError) error = NULL;
	Tally t = {0};
	OtherCall o = {.t = &t};
	gint64 deadline;

	if (helper_argv[0] == NULL) {
		g_test_skip("TKMS_TEST_HELPER is not set");
		return;
	}
	tkms_test_env_polkit_allow_all(env, &error);
	g_assert_no_error(error);
	other = tkms_test_env_spawn_as(env, "nobody", helper_argv, &error);
	g_assert_no_error(error);
	other_out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(other));
	/* once first: the helper is up and has called tkmsd */
	other_ask(other);
	{
		g_autofree gchar *out =
			g_data_input_stream_read_line_utf8(other_out, NULL, NULL, &error);
		g_assert_no_error(error);
		g_assert_true(out != NULL && g_str_has_prefix(out, "OK "));
	}
	/* the mock answers one check every 50 ms */
	g_variant_unref(mock_call("SetDelay", g_variant_new("(d)", 0.05)));
	for (guint i = 0; i < N_SLOW_CALLERS + 40; i++) {
		GDBusConnection *c = g_dbus_connection_new_for_address_sync(
			tkms_test_env_get_bus_address(env),
			G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
				G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
			NULL, NULL, &error);
		g_assert_no_error(error);
		g_dbus_connection_call(c, TKMS_BUS_NAME, TKMS_OBJECT_PATH, "org.tkms.KeyManager",
				       "GetRandom", g_variant_new("(u)", 8u), G_VARIANT_TYPE("(ay)"),
				       G_DBUS_CALL_FLAGS_NONE, 60000, NULL, slow_reply_cb, &t);
		g_ptr_array_add(conns, c);
	}
	spin_for(300);
	o.root_asked = t.ok + t.denied + t.other;
	other_ask(other);
	g_data_input_stream_read_line_async(other_out, G_PRIORITY_DEFAULT, NULL, other_done_cb, &o);
	deadline = g_get_monotonic_time() + 90 * G_USEC_PER_SEC;
	while ((!o.done || t.ok + t.denied + t.other < conns->len) &&
	       g_get_monotonic_time() < deadline)
		spin_for(10);
	g_variant_unref(mock_call("SetDelay", g_variant_new("(d)", 0.0)));
	g_test_message("%u callers of root: %u ok, %u refused, %u other errors", conns->len, t.ok,
		       t.denied, t.other);
	g_assert_true(o.done);
	g_assert_true(o.ok);
	g_assert_cmpuint(t.ok, ==, conns->len);
	/* in turn: behind the checks in flight and a few more, not behind all of root's */
	g_assert_cmpuint(o.root_before, <, conns->len / 2);
	g_output_stream_close(g_subprocess_get_stdin_pipe(other), NULL, NULL);
	g_assert_true(g_subprocess_wait_check(other, NULL, &error));
	g_assert_no_error(error);
}

/* Replaces the mock's CheckAuthorization by Python code (args: subject, action, details,
 * flags, cancellation id; `ret` is the answer). */
static void
mock_check_authorization(const gchar *code)
{
	g_variant_unref(mock_call("AddMethod",
				  g_variant_new("(sssss)", "org.freedesktop.PolicyKit1.Authority",
						"CheckAuthorization", "(sa{sv})sa{ss}us",
						"(bba{ss})", code)));
}

static GError *
fresh_get_random(void)
{
	g_autoptr(TkmsClient) fresh = tkms_test_new_client(env);
	GError *error = NULL;
	g_autoptr(GBytes) b = tkms_client_get_random_sync(fresh, 8, NULL, &error);

	if (b != NULL)
		g_assert_cmpuint(g_bytes_get_size(b), ==, 8);
	return error;
}

/* A check that fails (an error instead of polkit's answer) is neither a yes nor a no: it is
 * asked once more, and if it fails again the call fails with Busy, never succeeds. polkit's
 * own refusal to answer tkmsd stays a refusal (fail closed). */
static void
test_check_failed(void)
{
	g_autoptr(GError) error = NULL;

	/* fails every time */
	mock_check_authorization("raise dbus.exceptions.DBusException('simulated failure', "
				 "name='org.freedesktop.DBus.Error.NoReply')");
	error = fresh_get_random();
	g_test_message("always failing: %s", error ? error->message : "success");
	tkms_assert_error(error, TKMS_ERROR_BUSY);
	g_assert_nonnull(strstr(error->message, "authorization check could not be completed"));
	g_clear_error(&error);

	/* fails once, then answers yes: the second asking gets it */
	mock_check_authorization("self.tkms_asked = getattr(self, 'tkms_asked', 0) + 1\n"
				 "if self.tkms_asked % 2 == 1:\n"
				 "    raise dbus.exceptions.DBusException('simulated failure', "
				 "name='org.freedesktop.PolicyKit1.Error.Failed')\n"
				 "ret = (True, False, {})\n");
	error = fresh_get_random();
	g_assert_no_error(error);

	/* fails once, then answers no: still no */
	mock_check_authorization("self.tkms_asked = getattr(self, 'tkms_asked', 0) + 1\n"
				 "if self.tkms_asked % 2 == 1:\n"
				 "    raise dbus.exceptions.DBusException('simulated failure', "
				 "name='org.freedesktop.DBus.Error.LimitsExceeded')\n"
				 "ret = (False, False, {})\n");
	error = fresh_get_random();
	tkms_assert_error(error, TKMS_ERROR_PERMISSION_DENIED);
	g_clear_error(&error);

	/* polkitd will not answer tkmsd at all: refused */
	mock_check_authorization("raise dbus.exceptions.DBusException('not allowed to ask', "
				 "name='org.freedesktop.PolicyKit1.Error.NotAuthorized')");
	error = fresh_get_random();
	tkms_assert_error(error, TKMS_ERROR_PERMISSION_DENIED);
	g_clear_error(&error);

	/* The template's CheckAuthorization back: AddTemplate registers the template's methods
	 * again, then fails in its load() on the properties that exist (which we keep, as the
	 * rest of the mock's state). */
	{
		g_autoptr(GVariant) r = g_dbus_connection_call_sync(
			tkms_test_env_get_connection(env), "org.freedesktop.PolicyKit1",
			"/org/freedesktop/PolicyKit1/Authority", "org.freedesktop.DBus.Mock",
			"AddTemplate",
			g_variant_new("(s@a{sv})", "polkitd",
				      g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)),
			NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
		g_autofree gchar *name = error ? g_dbus_error_get_remote_error(error) : NULL;

		g_assert_cmpstr(name, ==, "org.freedesktop.PolicyKit1.Authority.PropertyExists");
		g_clear_error(&error);
	}
	tkms_test_env_polkit_allow_all(env, &error);
	g_assert_no_error(error);
	error = fresh_get_random();
	g_assert_no_error(error);
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_or_abort(NULL);
	setup_material();
	g_test_add_func("/polkit/deny-all", test_deny_all);
	g_test_add_func("/polkit/per-action", test_per_action);
	g_test_add_func("/polkit/introspection", test_introspection);
	g_test_add_func("/polkit/stale-yes", test_stale_yes);
	g_test_add_func("/polkit/slow-polkit", test_slow_polkit);
	g_test_add_func("/polkit/slow-polkit-fair", test_slow_polkit_fair);
	g_test_add_func("/polkit/check-failed", test_check_failed);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	g_bytes_unref(data);
	g_bytes_unref(ctx);
	g_bytes_unref(digest);
	g_bytes_unref(ct);
	g_bytes_unref(sig);
	g_bytes_unref(mac);
	g_bytes_unref(blob);
	g_free(victim);
	return ret;
}
