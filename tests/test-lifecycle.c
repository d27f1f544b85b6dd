/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-lifecycle"

/* The life cycle of key versions (issue 7) against tkmsd on swtpm: rotation of every key
 * type, the NIST SP 800-57 states and what each allows, scheduled destruction and its
 * cancellation, rotation policies run by tkmsd itself, retirement end to end, and events
 * that fall due while tkmsd is stopped. The waiting period before destruction is 3 s here. */

#include <string.h>

#include "tkms-test-env.h"
#include "tkms-test-util.h"

#define WAIT 3 /* [lifecycle] DestroyWaitingPeriod of this env */

static TkmsTestEnv *env;
#define CLIENT (tkms_test_env_get_client(env))

static const gchar *const types[] = {"aes-256-gcm", "hmac-sha256", "ecdsa-p256", "rsa-2048"};

static GVariant *
call(const gchar *method, GVariant *params, const gchar *reply, GError **error)
{
	return g_dbus_connection_call_sync(tkms_test_env_get_connection(env), "org.tkms.KeyManager",
					   "/org/tkms/KeyManager", "org.tkms.KeyManager", method,
					   params, reply ? G_VARIANT_TYPE(reply) : NULL,
					   G_DBUS_CALL_FLAGS_NONE,
					   60000, NULL, error);
}

/* Asserts success; the reply is dropped. */
static void
call_ok(const gchar *method, GVariant *params)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call(method, params, "()", &error);
	g_assert_no_error(error);
}

/* Asserts a TKMS error (by D-Bus name) and that the message names what it should. */
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

#define E_KEY_STATE "org.tkms.KeyManager.Error.KeyState"
#define E_INVALID "org.tkms.KeyManager.Error.InvalidArgument"

static guint32
rotate(const gchar *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) r = call("RotateKey", g_variant_new("(s)", name), "(u)", &error);
	guint32 v = 0;

	g_assert_no_error(error);
	g_variant_get(r, "(u)", &v);
	return v;
}

static void
set_state(const gchar *name, guint32 version, const gchar *state)
{
	call_ok("SetKeyVersionState", g_variant_new("(sus)", name, version, state));
}

static GVariant *
info(const gchar *name)
{
	g_autoptr(GError) error = NULL;
	GVariant *i = tkms_client_get_key_info_sync(CLIENT, name, NULL, &error);
	g_assert_no_error(error);
	return i;
}

/* The version's dictionary in the key info. */
static GVariant *
version_info(const gchar *name, guint32 version)
{
	g_autoptr(GVariant) i = info(name);
	g_autoptr(GVariant) versions = g_variant_lookup_value(i, "versions", G_VARIANT_TYPE("aa{sv}"));
	for (gsize k = 0; k < g_variant_n_children(versions); k++) {
		GVariant *v = g_variant_get_child_value(versions, k);
		guint32 n = 0;
		g_variant_lookup(v, "version", "u", &n);
		if (n == version)
			return v;
		g_variant_unref(v);
	}
	g_assert_not_reached();
}

static gchar *
state_of(const gchar *name, guint32 version)
{
	g_autoptr(GVariant) v = version_info(name, version);
	gchar *state = NULL;
	g_assert_true(g_variant_lookup(v, "state", "s", &state));
	return state;
}

static guint64
date_of(const gchar *name, guint32 version, const gchar *field)
{
	g_autoptr(GVariant) v = version_info(name, version);
	guint64 t = 0;
	g_variant_lookup(v, field, "t", &t);
	return t;
}

static guint32
primary_of(const gchar *name)
{
	g_autoptr(GVariant) i = info(name);
	guint32 p = 0;
	g_assert_true(g_variant_lookup(i, "primary-version", "u", &p));
	return p;
}

static void
assert_state(const gchar *name, guint32 version, const gchar *want)
{
	g_autofree gchar *state = state_of(name, version);
	g_assert_cmpstr(state, ==, want);
}

/* Waits (main loop running) until the version has the state, at most timeout_s. */
static void
wait_state(const gchar *name, guint32 version, const gchar *want, guint timeout_s)
{
	gint64 end = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;
	for (;;) {
		g_autofree gchar *state = state_of(name, version);
		if (g_str_equal(state, want))
			return;
		if (g_get_monotonic_time() > end)
			g_error("version %u of %s is %s after %u s, not %s", version, name, state,
				timeout_s, want);
		tkms_test_spin(100);
	}
}

/* One protect call with the primary (Encrypt, Hmac, Sign); NULL and error on failure. */
static GBytes *
protect(const gchar *type, const gchar *name, GBytes *data, GError **error)
{
	if (g_str_equal(type, "aes-256-gcm"))
		return tkms_client_encrypt_sync(CLIENT, name, data, data, NULL, error);
	if (g_str_equal(type, "hmac-sha256"))
		return tkms_client_hmac_sync(CLIENT, name, data, NULL, error);
	return tkms_client_sign_sync(CLIENT, name, data, NULL, error);
}

/* The matching process call (Decrypt, VerifyHmac, Verify): TRUE if it gave back data / valid. */
static gboolean
process(const gchar *type, const gchar *name, GBytes *data, GBytes *out, GError **error)
{
	gboolean valid = FALSE;

	if (g_str_equal(type, "aes-256-gcm")) {
		g_autoptr(GBytes) pt = tkms_client_decrypt_sync(CLIENT, name, out, data, NULL, error);
		return pt != NULL && g_bytes_equal(pt, data);
	}
	if (g_str_equal(type, "hmac-sha256"))
		tkms_client_verify_hmac_sync(CLIENT, name, data, out, &valid, NULL, error);
	else
		tkms_client_verify_sync(CLIENT, name, data, out, &valid, NULL, error);
	return valid;
}

/* ---- tests ---- */

/* GetKeyInfo of a new key and after a rotation, every type; the old version still
 * processes what it protected, the new one protects. */
static void
test_rotate(void)
{
	for (guint t = 0; t < G_N_ELEMENTS(types); t++) {
		g_autofree gchar *name = tkms_test_key_name("rot");
		g_autoptr(GVariant) created = tkms_test_create_key(CLIENT, name, types[t], NULL);
		g_autoptr(GBytes) data = tkms_test_bytes_str("rotate me");
		g_autoptr(GBytes) old = NULL, fresh = NULL;
		g_autoptr(GVariant) i = info(name);
		g_autoptr(GVariant) policy = g_variant_lookup_value(i, "policy", G_VARIANT_TYPE_VARDICT);
		g_autoptr(GVariant) v1 = version_info(name, 1);
		g_autoptr(GVariant) v2 = NULL;
		g_autoptr(GError) error = NULL;
		gboolean signing = g_str_has_prefix(types[t], "ecdsa") || g_str_has_prefix(types[t], "rsa");
		guint64 next = 1, uses = 1;
		const gchar *pem1 = NULL, *pem2 = NULL;

		g_assert_cmpuint(primary_of(name), ==, 1);
		g_assert_nonnull(policy);
		g_assert_cmpuint(g_variant_n_children(policy), ==, 0);
		g_assert_true(g_variant_lookup(i, "next-rotation", "t", &next));
		g_assert_cmpuint(next, ==, 0);
		assert_state(name, 1, "active");
		g_assert_cmpuint(date_of(name, 1, "activated"), >, 0);
		g_assert_true(g_variant_lookup(v1, "uses", "t", &uses));
		g_assert_cmpuint(uses, ==, 0);
		g_assert_cmpint(g_variant_lookup(v1, "public-key", "&s", &pem1), ==, signing);

		old = protect(types[t], name, data, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(rotate(name), ==, 2);
		g_assert_cmpuint(primary_of(name), ==, 2);
		assert_state(name, 1, "active");
		assert_state(name, 2, "active");
		g_assert_cmpuint(date_of(name, 1, "superseded"), >, 0);
		g_assert_cmpuint(date_of(name, 2, "superseded"), ==, 0);
		v2 = version_info(name, 2);
		if (signing) {
			g_assert_true(g_variant_lookup(v2, "public-key", "&s", &pem2));
			g_assert_true(g_str_has_prefix(pem2, "-----BEGIN PUBLIC KEY-----"));
			g_assert_cmpstr(pem1, !=, pem2); /* a new key pair, not a copy */
		}
		/* what version 1 protected still processes; new data is protected by 2 */
		g_assert_true(process(types[t], name, data, old, &error));
		g_assert_no_error(error);
		fresh = protect(types[t], name, data, &error);
		g_assert_no_error(error);
		g_assert_true(process(types[t], name, data, fresh, &error));
		g_assert_no_error(error);
		if (g_str_equal(types[t], "aes-256-gcm")) {
			/* the ciphertext names its version: the header's last 4 bytes */
			const guint8 *o = g_bytes_get_data(old, NULL), *f = g_bytes_get_data(fresh, NULL);
			g_assert_cmpmem(o, 8, f, 8);
			g_assert_true(memcmp(o + 8, f + 8, 4) != 0);
		}
		/* roll back: version 1 protects again */
		call_ok("SetPrimaryVersion", g_variant_new("(su)", name, 1));
		g_assert_cmpuint(primary_of(name), ==, 1);
		g_assert_cmpuint(date_of(name, 2, "superseded"), >, 0);
		if (g_str_equal(types[t], "hmac-sha256")) {
			g_autoptr(GBytes) again = protect(types[t], name, data, &error);
			g_assert_no_error(error);
			tkms_assert_bytes_equal(again, old); /* HMAC is deterministic: version 1's */
		}
	}
}

/* Every transition of SetKeyVersionState, allowed and refused, for every type, and what each
 * state allows. */
static void
test_states(void)
{
	for (guint t = 0; t < G_N_ELEMENTS(types); t++) {
		g_autofree gchar *name = tkms_test_key_name("st");
		g_autoptr(GVariant) created = tkms_test_create_key(CLIENT, name, types[t], NULL);
		g_autoptr(GBytes) data = tkms_test_bytes_str("state data");
		g_autoptr(GBytes) old = NULL;
		g_autoptr(GError) error = NULL;

		old = protect(types[t], name, data, &error);
		g_assert_no_error(error);
		/* the primary cannot leave active */
		call_fails("SetKeyVersionState", g_variant_new("(sus)", name, 1, "deactivated"),
			   E_KEY_STATE, "Version 1");
		call_fails("SetKeyVersionState", g_variant_new("(sus)", name, 1, "suspended"),
			   E_KEY_STATE, "primary");
		call_fails("SetKeyVersionState", g_variant_new("(sus)", name, 1, "compromised"),
			   E_KEY_STATE, "primary");
		/* states that are not set by hand, and versions that do not exist */
		call_fails("SetKeyVersionState", g_variant_new("(sus)", name, 1, "destroyed"),
			   E_INVALID, NULL);
		call_fails("SetKeyVersionState", g_variant_new("(sus)", name, 1, "pre-active"),
			   E_INVALID, NULL);
		call_fails("SetKeyVersionState", g_variant_new("(sus)", name, 1, "bogus"), E_INVALID,
			   NULL);
		call_fails("SetKeyVersionState", g_variant_new("(sus)", name, 9, "active"), E_INVALID,
			   "no version 9");
		call_fails("SetPrimaryVersion", g_variant_new("(su)", name, 9), E_INVALID, NULL);

		g_assert_cmpuint(rotate(name), ==, 2);
		/* active -> deactivated: processes, cannot be primary */
		set_state(name, 1, "deactivated");
		assert_state(name, 1, "deactivated");
		g_assert_cmpuint(date_of(name, 1, "deactivated"), >, 0);
		g_assert_true(process(types[t], name, data, old, &error));
		g_assert_no_error(error);
		call_fails("SetPrimaryVersion", g_variant_new("(su)", name, 1), E_KEY_STATE,
			   "deactivated");
		/* deactivated -> suspended: nothing */
		set_state(name, 1, "suspended");
		assert_state(name, 1, "suspended");
		if (g_str_equal(types[t], "aes-256-gcm")) {
			g_assert_false(process(types[t], name, data, old, &error));
			tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
			g_assert_nonnull(strstr(error->message, "Version 1"));
			g_assert_nonnull(strstr(error->message, "suspended"));
			g_clear_error(&error);
		} else {
			/* verification does not consider it: the old signature is not valid */
			g_assert_false(process(types[t], name, data, old, &error));
			g_assert_no_error(error);
		}
		call_fails("SetPrimaryVersion", g_variant_new("(su)", name, 1), E_KEY_STATE,
			   "suspended");
		/* suspended -> active (resume) -> primary again */
		set_state(name, 1, "active");
		g_assert_true(process(types[t], name, data, old, &error));
		g_assert_no_error(error);
		call_ok("SetPrimaryVersion", g_variant_new("(su)", name, 1));
		call_ok("SetPrimaryVersion", g_variant_new("(su)", name, 2));
		/* active -> compromised: final */
		set_state(name, 1, "compromised");
		assert_state(name, 1, "compromised");
		call_fails("SetKeyVersionState", g_variant_new("(sus)", name, 1, "active"),
			   E_KEY_STATE, "compromised");
		call_fails("SetKeyVersionState", g_variant_new("(sus)", name, 1, "deactivated"),
			   E_KEY_STATE, "compromised");
		call_fails("SetPrimaryVersion", g_variant_new("(su)", name, 1), E_KEY_STATE,
			   "compromised");
		/* Decrypt asks polkit for admin when the version is compromised, Verify and
		 * VerifyHmac when no usable version matched and a compromised one is left; the
		 * caller of this env holds it (the mock allows every action): audited with a
		 * warning (without admin: tests/test-usage.c /usage/verify-compromised) */
		g_assert_true(process(types[t], name, data, old, &error));
		g_assert_no_error(error);
	}
	/* without admin, a compromised version does not decrypt */
	{
		g_autofree gchar *name = tkms_test_key_name("st-adm");
		g_autoptr(GVariant) created = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
		g_autoptr(GBytes) data = tkms_test_bytes_str("admin only");
		g_autoptr(GBytes) ct = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(TkmsClient) fresh = NULL;
		const gchar *no_admin[] = {TKMS_ACTION_USE_KEY, TKMS_ACTION_READ_KEY,
					   TKMS_ACTION_MANAGE_KEY, NULL};
		g_autofree gchar *audit = NULL;
		g_autofree gchar *audit_path =
			g_build_filename(tkms_test_env_get_state_dir(env), "audit.log", NULL);
		g_autoptr(GBytes) pt = NULL;

		ct = protect("aes-256-gcm", name, data, &error);
		g_assert_no_error(error);
		rotate(name);
		set_state(name, 1, "compromised");
		tkms_test_env_polkit_set_allowed(env, no_admin, &error);
		g_assert_no_error(error);
		fresh = tkms_test_new_client(env);
		pt = tkms_client_decrypt_sync(fresh, name, ct, data, NULL, &error);
		g_assert_null(pt);
		tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
		g_assert_nonnull(strstr(error->message, "compromised"));
		g_clear_error(&error);
		tkms_test_env_polkit_allow_all(env, &error);
		g_assert_no_error(error);
		g_clear_object(&fresh);
		fresh = tkms_test_new_client(env);
		pt = tkms_client_decrypt_sync(fresh, name, ct, data, NULL, &error);
		g_assert_no_error(error);
		tkms_assert_bytes_equal(pt, data);
		tkms_test_spin(300); /* the audit log's group commit */
		g_assert_true(g_file_get_contents(audit_path, &audit, NULL, NULL));
		g_assert_nonnull(strstr(audit, "\"warning\":\"compromised key version used\""));
		g_assert_nonnull(strstr(audit, "\"detail\":\"active -> compromised\""));
	}
}

/* DestroyKey schedules, CancelKeyDestruction restores, the scheduler destroys at destroy-at;
 * DestroyKeyVersion for one version, never the primary. */
static void
test_destroy(void)
{
	g_autofree gchar *name = tkms_test_key_name("des");
	g_autoptr(GVariant) created = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("keep me");
	g_autoptr(GBytes) ct = NULL, again = NULL;
	g_autoptr(GError) error = NULL;
	guint64 at;

	ct = protect("aes-256-gcm", name, data, &error);
	g_assert_no_error(error);
	rotate(name);
	set_state(name, 1, "deactivated");
	call_fails("DestroyKeyVersion", g_variant_new("(su)", name, 2), E_KEY_STATE, "primary");
	call_fails("DestroyKeyVersion", g_variant_new("(su)", name, 0), E_INVALID, NULL);
	call_fails("CancelKeyDestruction", g_variant_new("(su)", name, 0), E_KEY_STATE, NULL);
	call_fails("CancelKeyDestruction", g_variant_new("(su)", name, 1), E_KEY_STATE,
		   "deactivated");

	tkms_client_destroy_key_sync(CLIENT, name, NULL, &error);
	g_assert_no_error(error);
	assert_state(name, 1, "destroy-scheduled");
	assert_state(name, 2, "destroy-scheduled");
	at = date_of(name, 2, "destroy-at");
	g_assert_cmpuint(at, >=, (guint64)(g_get_real_time() / G_USEC_PER_SEC) + WAIT - 1);
	/* nothing works while scheduled */
	g_assert_false(process("aes-256-gcm", name, data, ct, &error));
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);
	again = protect("aes-256-gcm", name, data, &error);
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);
	call_fails("RotateKey", g_variant_new("(s)", name), E_KEY_STATE, NULL);
	call_fails("DestroyKey", g_variant_new("(s)", name), E_KEY_STATE, NULL);
	/* cancelled: the states from before come back, and the data with them */
	call_ok("CancelKeyDestruction", g_variant_new("(su)", name, 0));
	assert_state(name, 1, "deactivated");
	assert_state(name, 2, "active");
	g_assert_cmpuint(date_of(name, 2, "destroy-at"), ==, 0);
	g_assert_true(process("aes-256-gcm", name, data, ct, &error));
	g_assert_no_error(error);

	/* one version, then it is destroyed at its time, by tkmsd */
	call_ok("DestroyKeyVersion", g_variant_new("(su)", name, 1));
	assert_state(name, 1, "destroy-scheduled");
	assert_state(name, 2, "active");
	wait_state(name, 1, "destroyed", WAIT + 3);
	g_assert_cmpuint(date_of(name, 1, "destroyed"), >=, date_of(name, 1, "destroy-at"));
	call_fails("CancelKeyDestruction", g_variant_new("(su)", name, 1), E_KEY_STATE,
		   "destroyed");
	g_assert_false(process("aes-256-gcm", name, data, ct, &error));
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);
	{
		g_autofree gchar *audit = NULL;
		g_autofree gchar *path =
			g_build_filename(tkms_test_env_get_state_dir(env), "audit.log", NULL);
		g_assert_true(g_file_get_contents(path, &audit, NULL, NULL));
		g_assert_nonnull(strstr(audit, "\"actor\":\"tkmsd\",\"method\":"
					       "\"CompleteKeyVersionDestruction\""));
	}
	/* the name stays taken */
	{
		g_autoptr(GVariant) i = tkms_client_create_key_sync(CLIENT, name, "aes-256-gcm",
								     NULL, NULL, &error);
		g_assert_null(i);
		tkms_assert_error(error, TKMS_ERROR_ALREADY_EXISTS);
	}
}

/* SetRotationPolicy: checked strictly; a period rotates by itself, for every type. */
static void
test_policy_period(void)
{
	gchar *names[G_N_ELEMENTS(types)];

	for (guint t = 0; t < G_N_ELEMENTS(types); t++) {
		g_autoptr(GVariant) created = NULL;
		names[t] = tkms_test_key_name("per");
		created = tkms_test_create_key(CLIENT, names[t], types[t], NULL);
	}
	/* refused: unknown keys, wrong types, more than 2^32 uses for GCM */
	call_fails("SetRotationPolicy", g_variant_new_parsed("(%s, {'perod': <@t 5>})", names[0]),
		   E_INVALID, "perod");
	call_fails("SetRotationPolicy", g_variant_new_parsed("(%s, {'period': <5>})", names[0]),
		   E_INVALID, "period");
	call_fails("SetRotationPolicy",
		   g_variant_new_parsed("(%s, {'max-uses': <@t 4294967297>})", names[0]), E_INVALID,
		   "2^32");
	call_ok("SetRotationPolicy",
		g_variant_new_parsed("(%s, {'max-uses': <@t 4294967296>})", names[0]));
	call_ok("SetRotationPolicy",
		g_variant_new_parsed("(%s, {'max-uses': <@t 4294967297>})", names[1]));
	call_ok("SetRotationPolicy", g_variant_new_parsed("(%s, @a{sv} {})", names[1]));
	{
		g_autoptr(GVariant) i = info(names[1]);
		g_autoptr(GVariant) p = g_variant_lookup_value(i, "policy", G_VARIANT_TYPE_VARDICT);
		g_assert_cmpuint(g_variant_n_children(p), ==, 0);
	}
	for (guint t = 0; t < G_N_ELEMENTS(types); t++) {
		g_autoptr(GVariant) i = NULL;
		guint64 next = 0, period = 0;
		call_ok("SetRotationPolicy",
			g_variant_new_parsed("(%s, {'period': <@t 2>})", names[t]));
		i = info(names[t]);
		g_assert_true(g_variant_lookup(i, "next-rotation", "t", &next));
		g_assert_cmpuint(next, >, 0);
		g_assert_cmpuint(next, <=, (guint64)(g_get_real_time() / G_USEC_PER_SEC) + 2);
		{
			g_autoptr(GVariant) p = g_variant_lookup_value(i, "policy",
									G_VARIANT_TYPE_VARDICT);
			g_assert_true(g_variant_lookup(p, "period", "t", &period));
			g_assert_cmpuint(period, ==, 2);
		}
	}
	/* each key rotates by itself within its period (plus the TPM's time) */
	for (guint t = 0; t < G_N_ELEMENTS(types); t++) {
		gint64 end = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
		while (primary_of(names[t]) < 2) {
			g_assert_cmpint(g_get_monotonic_time(), <, end);
			tkms_test_spin(100);
		}
		g_test_message("%s rotated by its period", types[t]);
	}
	/* removed: no more rotations */
	for (guint t = 0; t < G_N_ELEMENTS(types); t++)
		call_ok("SetRotationPolicy", g_variant_new_parsed("(%s, @a{sv} {})", names[t]));
	{
		guint32 p[G_N_ELEMENTS(types)];
		for (guint t = 0; t < G_N_ELEMENTS(types); t++)
			p[t] = primary_of(names[t]);
		tkms_test_spin(3000);
		for (guint t = 0; t < G_N_ELEMENTS(types); t++)
			g_assert_cmpuint(primary_of(names[t]), ==, p[t]);
	}
	for (guint t = 0; t < G_N_ELEMENTS(types); t++)
		g_free(names[t]);
}

/* Rotate -> deactivate -> destroy-scheduled -> destroyed by the policy, with the old
 * ciphertext decrypting until its version stops processing. */
static void
test_retirement(void)
{
	g_autofree gchar *name = tkms_test_key_name("ret");
	g_autoptr(GVariant) created = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
	g_autoptr(GBytes) data = tkms_test_bytes_str("retire me");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GError) error = NULL;

	ct = protect("aes-256-gcm", name, data, &error);
	g_assert_no_error(error);
	call_ok("SetRotationPolicy", g_variant_new_parsed("(%s, {'deactivate-after': <@t 2>, "
							  "'destroy-after': <@t 2>})",
							  name));
	rotate(name);
	assert_state(name, 1, "active");
	g_assert_true(process("aes-256-gcm", name, data, ct, &error));
	g_assert_no_error(error);
	wait_state(name, 1, "deactivated", 5);
	g_assert_true(process("aes-256-gcm", name, data, ct, &error));
	g_assert_no_error(error);
	wait_state(name, 1, "destroy-scheduled", 5);
	g_assert_false(process("aes-256-gcm", name, data, ct, &error));
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);
	wait_state(name, 1, "destroyed", WAIT + 3);
	assert_state(name, 2, "active");
	g_assert_false(process("aes-256-gcm", name, data, ct, &error));
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
}

/* States survive a restart; events that fell due while tkmsd was down run at its start:
 * activation of a pre-active version, destruction at destroy-at, rotation by period. */
static void
test_restart(void)
{
	g_autofree gchar *pre = tkms_test_key_name("rs-pre");
	g_autofree gchar *des = tkms_test_key_name("rs-des");
	g_autofree gchar *per = tkms_test_key_name("rs-per");
	g_autofree gchar *sus = tkms_test_key_name("rs-sus");
	g_autoptr(GVariant) c1 = NULL, c2 = NULL, c3 = NULL, c4 = NULL;
	g_autoptr(GBytes) data = tkms_test_bytes_str("restart");
	g_autoptr(GBytes) mac = NULL;
	g_autoptr(GError) error = NULL;
	GVariantBuilder opts;
	guint64 at = g_get_real_time() / G_USEC_PER_SEC + 3;

	g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&opts, "{sv}", "activate-at", g_variant_new_uint64(at));
	c1 = tkms_client_create_key_sync(CLIENT, pre, "hmac-sha256", g_variant_builder_end(&opts),
					 NULL, &error);
	g_assert_no_error(error);
	assert_state(pre, 1, "pre-active");
	g_assert_cmpuint(date_of(pre, 1, "activate-at"), ==, at);
	mac = protect("hmac-sha256", pre, data, &error);
	tkms_assert_error(error, TKMS_ERROR_KEY_STATE);
	g_assert_nonnull(strstr(error->message, "pre-active"));
	g_clear_error(&error);

	c2 = tkms_test_create_key(CLIENT, des, "ecdsa-p256", NULL);
	rotate(des);
	call_ok("DestroyKeyVersion", g_variant_new("(su)", des, 1));
	c3 = tkms_test_create_key(CLIENT, per, "rsa-2048", NULL);
	call_ok("SetRotationPolicy", g_variant_new_parsed("(%s, {'period': <@t 4>})", per));
	c4 = tkms_test_create_key(CLIENT, sus, "aes-256-gcm", NULL);
	rotate(sus);
	set_state(sus, 1, "suspended");

	tkms_test_env_stop_daemon(env, &error);
	g_assert_no_error(error);
	g_usleep((WAIT + 2) * G_USEC_PER_SEC); /* every event above falls due while stopped */
	tkms_test_env_start_daemon(env, &error);
	g_assert_no_error(error);

	wait_state(pre, 1, "active", 3);
	wait_state(des, 1, "destroyed", 3);
	{
		gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
		while (primary_of(per) < 2) {
			g_assert_cmpint(g_get_monotonic_time(), <, end);
			tkms_test_spin(100);
		}
	}
	assert_state(sus, 1, "suspended");
	assert_state(sus, 2, "active");
	g_assert_cmpuint(primary_of(sus), ==, 2);
	mac = protect("hmac-sha256", pre, data, &error);
	g_assert_no_error(error);
	call_ok("SetRotationPolicy", g_variant_new_parsed("(%s, @a{sv} {})", per));
}

/* Rotations that fail (the TPM is gone) stay due, and more of them than the scheduler runs
 * per batch must not hold back the other keys' events: a destruction, which needs no TPM,
 * still happens at its destroy-at. */
#define FAILING 40
static void
test_failing_events(void)
{
	g_autofree gchar *victim = tkms_test_key_name("fe-victim");
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GVariant) c = NULL;
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < FAILING; i++) {
		g_autofree gchar *base = g_strdup_printf("fe-%u", i);
		gchar *name = tkms_test_key_name(base);
		g_autoptr(GVariant) created = tkms_test_create_key(CLIENT, name, "aes-256-gcm", NULL);
		g_ptr_array_add(names, name);
	}
	c = tkms_test_create_key(CLIENT, victim, "aes-256-gcm", NULL);
	rotate(victim);

	tkms_test_env_stop_tpm(env, &error);
	g_assert_no_error(error);
	/* every rotation falls due at once and fails while the TPM is gone */
	for (guint i = 0; i < names->len; i++)
		call_ok("SetRotationPolicy",
			g_variant_new_parsed("(%s, {'period': <@t 1>})",
					     (const gchar *)g_ptr_array_index(names, i)));
	g_usleep(2 * G_USEC_PER_SEC);
	call_ok("DestroyKeyVersion", g_variant_new("(su)", victim, 1));
	assert_state(victim, 1, "destroy-scheduled");
	wait_state(victim, 1, "destroyed", WAIT + 15);
	assert_state(victim, 2, "active");

	tkms_test_env_start_tpm(env, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < names->len; i++)
		call_ok("SetRotationPolicy",
			g_variant_new_parsed("(%s, @a{sv} {})",
					     (const gchar *)g_ptr_array_index(names, i)));
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_or_abort("[lifecycle]\nDestroyWaitingPeriod=" G_STRINGIFY(WAIT) "\n");
	g_test_add_func("/lifecycle/rotate", test_rotate);
	g_test_add_func("/lifecycle/states", test_states);
	g_test_add_func("/lifecycle/destroy", test_destroy);
	g_test_add_func("/lifecycle/policy-period", test_policy_period);
	g_test_add_func("/lifecycle/retirement", test_retirement);
	g_test_add_func("/lifecycle/restart", test_restart);
	g_test_add_func("/lifecycle/failing-events", test_failing_events);
	ret = g_test_run();
	if (ret != 0)
		tkms_test_env_dump_logs(env);
	tkms_test_env_free(env);
	return ret;
}
