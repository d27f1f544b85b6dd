/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-manager"

/* The methods of org.tkms.KeyManager: the one method -> action table, the generated typed
 * handlers (they keep their arguments in the call and dispatch it), and what each method
 * does in its turn: call the engine, then reply with the generated complete function. */

#include "manager-private.h"

#include <string.h>

#include "ciphertext.h"

#define ACTION(x) "org.tkms.KeyManager." x

static void run_create_key(TkmsCall *call);
static void run_list_keys(TkmsCall *call);
static void run_list_keys_page(TkmsCall *call);
static void run_get_key_info(TkmsCall *call);
static void run_destroy_key(TkmsCall *call);
static void run_get_public_key(TkmsCall *call);
static void run_encrypt(TkmsCall *call);
static void run_decrypt(TkmsCall *call);
static void run_sign(TkmsCall *call);
static void run_verify(TkmsCall *call);
static void run_hmac(TkmsCall *call);
static void run_verify_hmac(TkmsCall *call);
static void run_derive_key(TkmsCall *call);
static void run_seal(TkmsCall *call);
static void run_unseal(TkmsCall *call);
static void run_get_random(TkmsCall *call);
/* data keys, rewrapping, digests */
static void run_generate_data_key(TkmsCall *call);
static void run_re_encrypt(TkmsCall *call);
static void run_sign_digest(TkmsCall *call);
static void run_verify_digest(TkmsCall *call);
static void run_rotate_key(TkmsCall *call);
static void run_set_primary_version(TkmsCall *call);
static void run_set_key_version_state(TkmsCall *call);
static void run_set_rotation_policy(TkmsCall *call);
static void run_destroy_key_version(TkmsCall *call);
static void run_cancel_key_destruction(TkmsCall *call);
static void run_import_secret(TkmsCall *call);
static void run_get_secret(TkmsCall *call);
static void run_encrypt_batch(TkmsCall *call);
static void run_decrypt_batch(TkmsCall *call);
static void run_sign_batch(TkmsCall *call);
static void run_hmac_batch(TkmsCall *call);

/* The one authorization table. A method that is not here is denied. */
static const TkmsMethod methods[] = {
	/* name, action, key_arg, admin, run */
	{"CreateKey", ACTION("create-key"), TRUE, FALSE, run_create_key},
	{"ListKeys", ACTION("read-key"), FALSE, FALSE, run_list_keys},
	{"ListAllKeys", ACTION("read-key"), FALSE, TRUE, run_list_keys},
	{"ListKeysPage", ACTION("read-key"), FALSE, FALSE, run_list_keys_page},
	{"ListAllKeysPage", ACTION("read-key"), FALSE, TRUE, run_list_keys_page},
	{"GetKeyInfo", ACTION("read-key"), TRUE, FALSE, run_get_key_info},
	{"DestroyKey", ACTION("destroy-key"), TRUE, FALSE, run_destroy_key},
	{"Encrypt", ACTION("use-key"), TRUE, FALSE, run_encrypt},
	{"Decrypt", ACTION("use-key"), TRUE, FALSE, run_decrypt},
	{"Sign", ACTION("use-key"), TRUE, FALSE, run_sign},
	{"Verify", ACTION("use-key"), TRUE, FALSE, run_verify},
	{"GetPublicKey", ACTION("read-key"), TRUE, FALSE, run_get_public_key},
	/* data keys, rewrapping, digests */
	{"GenerateDataKey", ACTION("use-key"), TRUE, FALSE, run_generate_data_key},
	{"ReEncrypt", ACTION("use-key"), TRUE, FALSE, run_re_encrypt},
	{"SignDigest", ACTION("use-key"), TRUE, FALSE, run_sign_digest},
	{"VerifyDigest", ACTION("use-key"), TRUE, FALSE, run_verify_digest},
	{"Hmac", ACTION("use-key"), TRUE, FALSE, run_hmac},
	{"VerifyHmac", ACTION("use-key"), TRUE, FALSE, run_verify_hmac},
	{"DeriveKey", ACTION("use-key"), TRUE, FALSE, run_derive_key},
	{"Seal", ACTION("seal"), FALSE, FALSE, run_seal},
	{"Unseal", ACTION("seal"), FALSE, FALSE, run_unseal},
	{"GetRandom", ACTION("seal"), FALSE, FALSE, run_get_random},
	/* the life cycle of versions */
	{"RotateKey", ACTION("manage-key"), TRUE, FALSE, run_rotate_key},
	{"SetPrimaryVersion", ACTION("manage-key"), TRUE, FALSE, run_set_primary_version},
	{"SetKeyVersionState", ACTION("manage-key"), TRUE, FALSE, run_set_key_version_state},
	{"SetRotationPolicy", ACTION("manage-key"), TRUE, FALSE, run_set_rotation_policy},
	{"DestroyKeyVersion", ACTION("destroy-key"), TRUE, FALSE, run_destroy_key_version},
	{"CancelKeyDestruction", ACTION("destroy-key"), TRUE, FALSE, run_cancel_key_destruction},
	/* service passwords */
	{"ImportSecret", ACTION("manage-key"), TRUE, FALSE, run_import_secret},
	{"GetSecret", ACTION("read-secret"), TRUE, FALSE, run_get_secret},
	/* batches */
	{"EncryptBatch", ACTION("use-key"), TRUE, FALSE, run_encrypt_batch},
	{"DecryptBatch", ACTION("use-key"), TRUE, FALSE, run_decrypt_batch},
	{"SignBatch", ACTION("use-key"), TRUE, FALSE, run_sign_batch},
	{"HmacBatch", ACTION("use-key"), TRUE, FALSE, run_hmac_batch},
};

const TkmsMethod *
tkms_method_find(const gchar *name)
{
	for (guint i = 0; i < G_N_ELEMENTS(methods); i++)
		if (g_strcmp0(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

/* ---- payload sizes on arrival ---- */

/* The ay arguments the engine holds to [limits] MaxPayload, by the names its errors use; a
 * ciphertext may be longer by its format's overhead. */
static const struct {
	const gchar *method;
	const gchar *what[2];
} payloads[] = {
	{"Encrypt", {"plaintext", "context"}},	   {"Decrypt", {"ciphertext", "context"}},
	{"ReEncrypt", {"ciphertext", "context"}},  {"Sign", {"data", NULL}},
	{"SignDigest", {"data", NULL}},		   {"Verify", {"data", "signature"}},
	{"VerifyDigest", {"data", "signature"}},   {"Hmac", {"data", NULL}},
	{"VerifyHmac", {"data", NULL}},		   {"Seal", {"data", NULL}},
	{"GenerateDataKey", {"context", NULL}},	   {"EncryptBatch", {"context", NULL}},
	{"DecryptBatch", {"context", NULL}},
};

/* Oversized payloads are refused before polkit is asked or the call is queued: a caller
 * cannot make tkmsd hold megabytes through a slow authorization or a long queue. The error
 * is the engine's, for the same case. */
gboolean
tkms_call_check_payloads(TkmsCall *call, GError **error)
{
	TkmsEngine *engine = call->manager->engine;

	if (g_str_equal(call->method->name, "GetRandom"))
		return tkms_engine_check_payload(engine, "requested length", call->number, TRUE,
						 error);
	/* a password has its own cap, far below MaxPayload (the engine checks the rest) */
	if (g_str_equal(call->method->name, "ImportSecret") &&
	    g_bytes_get_size(call->bytes[0]) > TKMS_SECRET_MAX) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "A password has 1 to %d bytes; pass one of that size", TKMS_SECRET_MAX);
		return FALSE;
	}
	/* a batch: its count, then its bytes (a ciphertext's framing does not count) */
	if (call->items != NULL &&
	    (!tkms_engine_check_batch_count(engine, call->number, error) ||
	     !tkms_engine_check_batch(engine, call->items,
				      g_str_equal(call->method->name, "DecryptBatch")
					      ? TKMS_CT_OVERHEAD
					      : 0,
				      error)))
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(payloads); i++) {
		if (!g_str_equal(payloads[i].method, call->method->name))
			continue;
		for (guint j = 0; j < 2 && payloads[i].what[j] != NULL; j++) {
			const gchar *what = payloads[i].what[j];
			gsize len = call->bytes[j] != NULL ? g_bytes_get_size(call->bytes[j]) : 0;

			if (g_str_equal(what, "ciphertext"))
				len -= MIN(len, TKMS_CT_OVERHEAD);
			if (!tkms_engine_check_payload(engine, what, len, TRUE, error))
				return FALSE;
		}
		break;
	}
	return TRUE;
}

/* ---- options dictionaries ---- */

static gboolean
parse_pcrs(GVariant *value, TkmsPcrMask *pcrs, GError **error)
{
	const guint32 *idx;
	gsize n = 0;

	if (!g_variant_is_of_type(value, G_VARIANT_TYPE("au"))) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "The \"pcrs\" option must be an array of uint32 (au)");
		return FALSE;
	}
	idx = g_variant_get_fixed_array(value, &n, sizeof(guint32));
	return tkms_pcr_mask_from_indices(idx, n, pcrs, error);
}

/* CreateKey's options; the strings point into options. */
static gboolean
parse_key_options(GVariant *options, TkmsKeyOptions *out, GError **error)
{
	GVariantIter iter;
	const gchar *opt;
	GVariant *value;

	memset(out, 0, sizeof(*out));
	g_variant_iter_init(&iter, options);
	while (g_variant_iter_loop(&iter, "{&sv}", &opt, &value)) {
		const gchar **str = g_str_equal(opt, "protection")    ? &out->protection
				    : g_str_equal(opt, "description") ? &out->description
				    : g_str_equal(opt, "charset")     ? &out->charset
				    : g_str_equal(opt, "exclude")     ? &out->exclude
								      : NULL;
		if (str != NULL && g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
			*str = g_variant_get_string(value, NULL);
			continue;
		}
		if (g_str_equal(opt, "activate-at") &&
		    g_variant_is_of_type(value, G_VARIANT_TYPE_UINT64) &&
		    g_variant_get_uint64(value) <= G_MAXINT64) {
			out->activate_at = g_variant_get_uint64(value);
			continue;
		}
		if (g_str_equal(opt, "length") &&
		    g_variant_is_of_type(value, G_VARIANT_TYPE_UINT32)) {
			out->has_length = TRUE;
			out->length = g_variant_get_uint32(value);
			continue;
		}
		if (str != NULL)
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "The \"%s\" option must be a string", opt);
		else if (g_str_equal(opt, "activate-at"))
			g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
					    "The \"activate-at\" option must be a Unix time (t)");
		else if (g_str_equal(opt, "length"))
			g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
					    "The \"length\" option must be a uint32 (u)");
		else if (!g_str_equal(opt, "pcrs"))
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "Unknown option \"%s\"; known options are protection, pcrs, "
				    "description, activate-at, and for password keys length, "
				    "charset and exclude",
				    opt);
		else if (parse_pcrs(value, &out->pcrs, error))
			continue;
		g_variant_unref(value);
		return FALSE;
	}
	return TRUE;
}

static gboolean
parse_seal_options(GVariant *options, TkmsPcrMask *pcrs, GError **error)
{
	GVariantIter iter;
	const gchar *opt;
	GVariant *value;

	*pcrs = 0;
	g_variant_iter_init(&iter, options);
	while (g_variant_iter_loop(&iter, "{&sv}", &opt, &value)) {
		if (!g_str_equal(opt, "pcrs"))
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "Unknown option \"%s\"; Seal knows only \"pcrs\"", opt);
		else if (parse_pcrs(value, pcrs, error))
			continue;
		g_variant_unref(value);
		return FALSE;
	}
	return TRUE;
}

/* ---- replies ---- */

#define ENGINE(call) ((call)->manager->engine)

static void
key_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	GError *error = NULL;
	g_autoptr(TkmsKey) key = tkms_engine_create_key_finish(TKMS_ENGINE(source), res, &error);

	if (key == NULL) {
		tkms_call_fail(call, error);
		return;
	}
	tkms_dbus_key_manager_complete_create_key(call->object, call->invocation,
						  tkms_key_to_variant(key));
	tkms_call_free(call);
}

static void
destroyed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	GError *error = NULL;

	if (!tkms_engine_destroy_key_finish(TKMS_ENGINE(source), res, &error)) {
		tkms_call_fail(call, error);
		return;
	}
	tkms_dbus_key_manager_complete_destroy_key(call->object, call->invocation);
	tkms_call_free(call);
}

static void
bytes_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	GError *error = NULL;
	g_autoptr(GBytes) out = tkms_engine_bytes_finish(TKMS_ENGINE(source), res, &error);

	if (out == NULL) {
		tkms_call_fail(call, error);
		return;
	}
	call->complete_bytes(call->object, call->invocation, tkms_call_bytes_to_variant(out));
	tkms_call_free(call);
}

static void
verified_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	GError *error = NULL;
	gboolean valid = FALSE;

	if (!tkms_engine_verify_finish(TKMS_ENGINE(source), res, &valid, &error)) {
		tkms_call_fail(call, error);
		return;
	}
	call->complete_bool(call->object, call->invocation, valid);
	tkms_call_free(call);
}

/* ---- keys ---- */

static void
run_create_key(TkmsCall *call)
{
	TkmsKeyOptions options;
	GError *error = NULL;

	if (!parse_key_options(call->options, &options, &error)) {
		tkms_call_refuse(call, error);
		return;
	}
	tkms_engine_create_key(ENGINE(call), &call->actor, &call->key, call->str, &options,
			       tkms_call_get_cancellable(call), key_done_cb, call);
}

static void
run_list_keys(TkmsCall *call)
{
	gboolean all = call->method->admin;
	GError *error = NULL;
	g_autoptr(GVariant) keys = tkms_engine_list_keys(
		ENGINE(call), &call->actor, all ? TKMS_ENGINE_ALL_OWNERS : call->actor.uid,
		&error);

	if (keys == NULL) {
		tkms_call_fail(call, error);
		return;
	}
	if (all)
		tkms_dbus_key_manager_complete_list_all_keys(call->object, call->invocation, keys);
	else
		tkms_dbus_key_manager_complete_list_keys(call->object, call->invocation, keys);
	tkms_call_free(call);
}

static void
run_list_keys_page(TkmsCall *call)
{
	gboolean all = call->method->admin;
	GError *error = NULL;
	g_autofree gchar *next = NULL;
	g_autoptr(GVariant) keys = tkms_engine_list_keys_page(
		ENGINE(call), &call->actor, all ? TKMS_ENGINE_ALL_OWNERS : call->actor.uid,
		call->str, call->number, &next, &error);

	if (keys == NULL) {
		tkms_call_fail(call, error);
		return;
	}
	if (all)
		tkms_dbus_key_manager_complete_list_all_keys_page(call->object, call->invocation,
								  keys, next);
	else
		tkms_dbus_key_manager_complete_list_keys_page(call->object, call->invocation,
							      keys, next);
	tkms_call_free(call);
}

static void
run_get_key_info(TkmsCall *call)
{
	GError *error = NULL;
	g_autoptr(TkmsKey) key =
		tkms_engine_get_key_info(ENGINE(call), &call->actor, &call->key, &error);

	if (key == NULL) {
		tkms_call_fail(call, error);
		return;
	}
	tkms_dbus_key_manager_complete_get_key_info(call->object, call->invocation,
						    tkms_key_to_variant(key));
	tkms_call_free(call);
}

static void
run_destroy_key(TkmsCall *call)
{
	tkms_engine_destroy_key(ENGINE(call), &call->actor, &call->key,
				tkms_call_get_cancellable(call), destroyed_cb, call);
}

static void
run_get_public_key(TkmsCall *call)
{
	GError *error = NULL;
	g_autofree gchar *pem =
		tkms_engine_get_public_key(ENGINE(call), &call->actor, &call->key, &error);

	if (pem == NULL) {
		tkms_call_fail(call, error);
		return;
	}
	tkms_dbus_key_manager_complete_get_public_key(call->object, call->invocation, pem);
	tkms_call_free(call);
}

/* ---- crypto ---- */

static void
run_encrypt(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_encrypt;
	tkms_engine_encrypt(ENGINE(call), &call->actor, &call->key, call->bytes[0],
			    call->bytes[1], tkms_call_get_cancellable(call), bytes_done_cb, call);
}

static void
decrypt_now(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_decrypt;
	tkms_engine_decrypt(ENGINE(call), &call->actor, &call->key, call->bytes[0],
			    call->bytes[1], tkms_call_get_cancellable(call), bytes_done_cb, call);
}

static void
decrypt_admin_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	g_autoptr(GError) error = NULL;

	/* no: the engine refuses the compromised version itself (KeyState) */
	call->actor.admin = tkms_authority_check_finish(TKMS_AUTHORITY(source), res, &error);
	decrypt_now(call);
}

/* A compromised version decrypts only for an admin: polkit is asked only then. */
static void
run_decrypt(TkmsCall *call)
{
	if (!call->actor.admin &&
	    tkms_engine_decrypt_needs_admin(ENGINE(call), &call->key, call->bytes[0])) {
		tkms_authority_check(call->manager->authority, call->caller,
				     "org.tkms.KeyManager.admin", call->interactive,
				     decrypt_admin_cb, call);
		return;
	}
	decrypt_now(call);
}

static void
run_sign(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_sign;
	tkms_engine_sign(ENGINE(call), &call->actor, &call->key, call->bytes[0],
			 tkms_call_get_cancellable(call), bytes_done_cb, call);
}

/* ---- the engine's question for admin (Verify of a compromised version) ---- */

typedef struct {
	void (*answer)(gboolean held, gpointer op);
	gpointer op;
} AdminQuestion;

static void
admin_answer_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	AdminQuestion *q = user_data;
	g_autoptr(GError) error = NULL;
	/* no, or an error: fail closed (the signature does not verify) */
	gboolean held = tkms_authority_check_finish(TKMS_AUTHORITY(source), res, &error);

	q->answer(held, q->op);
	g_free(q);
}

static void
ask_admin(gpointer data, void (*answer)(gboolean held, gpointer op), gpointer op)
{
	TkmsCall *call = data;
	AdminQuestion *q = g_new0(AdminQuestion, 1);

	q->answer = answer;
	q->op = op;
	/* interactive only if the caller's message allows it */
	tkms_authority_check(call->manager->authority, call->caller, "org.tkms.KeyManager.admin",
			     call->interactive, admin_answer_cb, q);
}

/* A signature or MAC that matches no usable version may match a compromised one: the engine
 * asks (ask_admin) only then, and tries those versions only for an admin. */
static void
allow_admin_question(TkmsCall *call)
{
	call->actor.ask_admin = ask_admin;
	call->actor.ask_admin_data = call;
}

static void
run_verify(TkmsCall *call)
{
	allow_admin_question(call);
	call->complete_bool = tkms_dbus_key_manager_complete_verify;
	tkms_engine_verify(ENGINE(call), &call->actor, &call->key, call->bytes[0],
			   call->bytes[1], tkms_call_get_cancellable(call), verified_cb, call);
}

static void
run_hmac(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_hmac;
	tkms_engine_hmac(ENGINE(call), &call->actor, &call->key, call->bytes[0],
			 tkms_call_get_cancellable(call), bytes_done_cb, call);
}

static void
run_verify_hmac(TkmsCall *call)
{
	allow_admin_question(call);
	call->complete_bool = tkms_dbus_key_manager_complete_verify_hmac;
	tkms_engine_verify_hmac(ENGINE(call), &call->actor, &call->key, call->bytes[0],
				call->bytes[1], tkms_call_get_cancellable(call), verified_cb,
				call);
}

static void
run_derive_key(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_derive_key;
	tkms_engine_derive_key(ENGINE(call), &call->actor, &call->key, call->bytes[0],
			       call->number, tkms_call_get_cancellable(call), bytes_done_cb,
			       call);
}

/* ---- sealing ---- */

static void
run_seal(TkmsCall *call)
{
	TkmsPcrMask pcrs;
	GError *error = NULL;

	if (!parse_seal_options(call->options, &pcrs, &error)) {
		tkms_call_refuse(call, error);
		return;
	}
	call->complete_bytes = tkms_dbus_key_manager_complete_seal;
	tkms_engine_seal(ENGINE(call), &call->actor, call->bytes[0], pcrs,
			 tkms_call_get_cancellable(call), bytes_done_cb, call);
}

static void
run_unseal(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_unseal;
	tkms_engine_unseal(ENGINE(call), &call->actor, call->bytes[0],
			   tkms_call_get_cancellable(call), bytes_done_cb, call);
}

static void
run_get_random(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_get_random;
	tkms_engine_get_random(ENGINE(call), &call->actor, call->number,
			       tkms_call_get_cancellable(call), bytes_done_cb, call);
}

/* ---- the life cycle of versions ---- */

static void
changed_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	GError *error = NULL;
	g_autoptr(TkmsKey) key =
		tkms_engine_key_change_finish(TKMS_ENGINE(source), res, &error);
	const gchar *name = call->method->name;
	TkmsDbusKeyManager *o = call->object;
	GDBusMethodInvocation *inv = call->invocation;

	if (key == NULL) {
		tkms_call_fail(call, error);
		return;
	}
	/* a password key's rotation with a hook answers once its pending version exists */
	if (g_str_equal(name, "RotateKey"))
		tkms_dbus_key_manager_complete_rotate_key(
			o, inv,
			key->type == TKMS_KEY_TYPE_PASSWORD &&
					key->rotation.step != TKMS_ROTATION_STEP_NONE
				? key->rotation.pending_version
				: key->primary_version);
	else if (g_str_equal(name, "ImportSecret"))
		tkms_dbus_key_manager_complete_import_secret(o, inv, key->primary_version);
	else if (g_str_equal(name, "SetPrimaryVersion"))
		tkms_dbus_key_manager_complete_set_primary_version(o, inv);
	else if (g_str_equal(name, "SetKeyVersionState"))
		tkms_dbus_key_manager_complete_set_key_version_state(o, inv);
	else if (g_str_equal(name, "SetRotationPolicy"))
		tkms_dbus_key_manager_complete_set_rotation_policy(o, inv);
	else if (g_str_equal(name, "DestroyKeyVersion"))
		tkms_dbus_key_manager_complete_destroy_key_version(o, inv);
	else
		tkms_dbus_key_manager_complete_cancel_key_destruction(o, inv);
	tkms_call_free(call);
}

static void
run_rotate_key(TkmsCall *call)
{
	tkms_engine_rotate_key(ENGINE(call), &call->actor, &call->key,
			       tkms_call_get_cancellable(call), changed_cb, call);
}

static void
run_set_primary_version(TkmsCall *call)
{
	tkms_engine_set_primary_version(ENGINE(call), &call->actor, &call->key, call->number,
					tkms_call_get_cancellable(call), changed_cb, call);
}

static void
run_set_key_version_state(TkmsCall *call)
{
	tkms_engine_set_key_version_state(ENGINE(call), &call->actor, &call->key, call->number,
					  call->str, tkms_call_get_cancellable(call), changed_cb,
					  call);
}

/* Setting, changing or removing a password key's hook also needs admin: the engine asks
 * (ask_admin) only when the hook changes. */
static void
run_set_rotation_policy(TkmsCall *call)
{
	allow_admin_question(call);
	tkms_engine_set_rotation_policy(ENGINE(call), &call->actor, &call->key, call->options,
					tkms_call_get_cancellable(call), changed_cb, call);
}

static void
run_destroy_key_version(TkmsCall *call)
{
	if (call->number == 0) {
		tkms_call_refuse(call, g_error_new_literal(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
							   "Versions are numbered from 1; use "
							   "DestroyKey for the whole key"));
		return;
	}
	tkms_engine_destroy_key_version(ENGINE(call), &call->actor, &call->key, call->number,
					tkms_call_get_cancellable(call), changed_cb, call);
}

static void
run_cancel_key_destruction(TkmsCall *call)
{
	tkms_engine_cancel_key_destruction(ENGINE(call), &call->actor, &call->key, call->number,
					   tkms_call_get_cancellable(call), changed_cb, call);
}

/* ---- data keys, rewrapping, digests ---- */

static void
data_key_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	GError *error = NULL;
	g_autoptr(GBytes) plaintext = NULL;
	g_autoptr(GBytes) wrapped = NULL;

	if (!tkms_engine_generate_data_key_finish(TKMS_ENGINE(source), res, &plaintext, &wrapped,
						  &error)) {
		tkms_call_fail(call, error);
		return;
	}
	/* The variant shares the secure-heap bytes, which are wiped when the last reference
	 * goes; GDBus's serialized copy of the reply is beyond our reach (see dbus-api.md). */
	tkms_dbus_key_manager_complete_generate_data_key(call->object, call->invocation,
							 tkms_call_bytes_to_variant(plaintext),
							 tkms_call_bytes_to_variant(wrapped));
	tkms_call_free(call);
}

static void
run_generate_data_key(TkmsCall *call)
{
	tkms_engine_generate_data_key(ENGINE(call), &call->actor, &call->key, call->number,
				      call->bytes[0], tkms_call_get_cancellable(call),
				      data_key_done_cb, call);
}

static void
run_re_encrypt(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_re_encrypt;
	tkms_engine_re_encrypt(ENGINE(call), &call->actor, &call->key, call->bytes[0],
			       call->bytes[1], tkms_call_get_cancellable(call), bytes_done_cb,
			       call);
}

static void
run_sign_digest(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_sign_digest;
	tkms_engine_sign_digest(ENGINE(call), &call->actor, &call->key, call->bytes[0],
				tkms_call_get_cancellable(call), bytes_done_cb, call);
}

static void
run_verify_digest(TkmsCall *call)
{
	allow_admin_question(call);
	call->complete_bool = tkms_dbus_key_manager_complete_verify_digest;
	tkms_engine_verify_digest(ENGINE(call), &call->actor, &call->key, call->bytes[0],
				  call->bytes[1], tkms_call_get_cancellable(call), verified_cb,
				  call);
}

/* ---- service passwords ---- */

static void
run_import_secret(TkmsCall *call)
{
	tkms_engine_import_secret(ENGINE(call), &call->actor, &call->key, call->bytes[0],
				  tkms_call_get_cancellable(call), changed_cb, call);
}

/* The reply shares the engine's bytes, which are wiped when the reply is freed; GDBus's
 * serialized copy of the message is beyond our reach (docs/dbus-api.md). */
static void
run_get_secret(TkmsCall *call)
{
	allow_admin_question(call);
	call->complete_bytes = tkms_dbus_key_manager_complete_get_secret;
	tkms_engine_get_secret(ENGINE(call), &call->actor, &call->key, call->str,
			       tkms_call_get_cancellable(call), bytes_done_cb, call);
}

/* ---- batches ---- */

/* The aay of a batch's outputs. For DecryptBatch and HmacBatch it is serialized here, into
 * memory wiped when the reply is done (the items are wiped bytes already); GDBus's
 * serialized copy of the message is beyond our reach (docs/dbus-api.md). */
static GVariant *
batch_to_variant(GPtrArray *out, gboolean secret)
{
	g_autofree GVariant **children = g_new(GVariant *, MAX(out->len, 1));
	g_autoptr(GVariant) array = NULL;
	g_autoptr(GBytes) wiped = NULL;
	guint8 *data;

	for (guint i = 0; i < out->len; i++)
		children[i] = tkms_call_bytes_to_variant(g_ptr_array_index(out, i));
	/* floating, as the reply takes it: a sunk one would keep a reference nobody drops */
	if (!secret)
		return g_variant_new_array(G_VARIANT_TYPE_BYTESTRING, children, out->len);
	array = g_variant_ref_sink(
		g_variant_new_array(G_VARIANT_TYPE_BYTESTRING, children, out->len));
	wiped = tkms_secret_bytes_new(g_variant_get_size(array), &data);
	g_variant_store(array, data);
	return g_variant_new_from_bytes(G_VARIANT_TYPE("aay"), wiped, TRUE);
}

static void
batch_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	GError *error = NULL;
	g_autoptr(GPtrArray) out = tkms_engine_batch_finish(TKMS_ENGINE(source), res, &error);
	const gchar *name = call->method->name;

	if (out == NULL) {
		tkms_call_fail(call, error);
		return;
	}
	call->complete_bytes(call->object, call->invocation,
			     batch_to_variant(out, g_str_equal(name, "DecryptBatch") ||
							   g_str_equal(name, "HmacBatch")));
	tkms_call_free(call);
}

static void
run_encrypt_batch(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_encrypt_batch;
	tkms_engine_encrypt_batch(ENGINE(call), &call->actor, &call->key, call->items,
				  call->bytes[0], tkms_call_get_cancellable(call), batch_done_cb,
				  call);
}

static void
decrypt_batch_now(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_decrypt_batch;
	tkms_engine_decrypt_batch(ENGINE(call), &call->actor, &call->key, call->items,
				  call->bytes[0], tkms_call_get_cancellable(call), batch_done_cb,
				  call);
}

static void
decrypt_batch_admin_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	g_autoptr(GError) error = NULL;

	/* no: the engine refuses the compromised version itself (KeyState) */
	call->actor.admin = tkms_authority_check_finish(TKMS_AUTHORITY(source), res, &error);
	decrypt_batch_now(call);
}

/* As Decrypt: polkit is asked for admin only if an item names a compromised version. */
static void
run_decrypt_batch(TkmsCall *call)
{
	if (!call->actor.admin &&
	    tkms_engine_decrypt_batch_needs_admin(ENGINE(call), &call->key, call->items)) {
		tkms_authority_check(call->manager->authority, call->caller,
				     "org.tkms.KeyManager.admin", call->interactive,
				     decrypt_batch_admin_cb, call);
		return;
	}
	decrypt_batch_now(call);
}

static void
run_sign_batch(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_sign_batch;
	tkms_engine_sign_batch(ENGINE(call), &call->actor, &call->key, call->items,
			       tkms_call_get_cancellable(call), batch_done_cb, call);
}

static void
run_hmac_batch(TkmsCall *call)
{
	call->complete_bytes = tkms_dbus_key_manager_complete_hmac_batch;
	tkms_engine_hmac_batch(ENGINE(call), &call->actor, &call->key, call->items,
			       tkms_call_get_cancellable(call), batch_done_cb, call);
}

/* ---- the generated handlers: typed arguments into the call ---- */

static TkmsCall *
call_with_bytes(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		const gchar *method, const gchar *key, GVariant *b0, GVariant *b1)
{
	TkmsCall *call = tkms_call_new(object, invocation, method, key);
	if (b0 != NULL)
		call->bytes[0] = tkms_call_variant_to_bytes(b0);
	if (b1 != NULL)
		call->bytes[1] = tkms_call_variant_to_bytes(b1);
	return call;
}

/* A batch's call: its items as GBytes sharing the message's buffer (only as many as it takes
 * to refuse a batch that is too long), their count in number. */
static TkmsCall *
call_with_items(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		const gchar *method, const gchar *key, GVariant *items, GVariant *context)
{
	TkmsCall *call = call_with_bytes(object, invocation, method, key, context, NULL);
	gsize n = g_variant_n_children(items);

	call->number = MIN(n, G_MAXUINT32);
	call->items = g_ptr_array_new_full(MIN(n, TKMS_BATCH_MAX + 1),
					   (GDestroyNotify)g_bytes_unref);
	for (gsize i = 0; i < n && i <= TKMS_BATCH_MAX; i++) {
		g_autoptr(GVariant) item = g_variant_get_child_value(items, i);
		g_ptr_array_add(call->items, tkms_call_variant_to_bytes(item));
	}
	return call;
}

static gboolean
handle_create_key(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		  const gchar *name, const gchar *type, GVariant *options)
{
	TkmsCall *call = tkms_call_new(object, invocation, "CreateKey", name);
	call->str = g_strdup(type);
	call->options = g_variant_ref(options);
	return tkms_call_dispatch(call);
}

static gboolean
handle_list_keys(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation)
{
	return tkms_call_dispatch(tkms_call_new(object, invocation, "ListKeys", NULL));
}

static gboolean
handle_list_all_keys(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation)
{
	return tkms_call_dispatch(tkms_call_new(object, invocation, "ListAllKeys", NULL));
}

static gboolean
list_page(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation, const gchar *method,
	  const gchar *token, guint size)
{
	TkmsCall *call = tkms_call_new(object, invocation, method, NULL);
	call->str = g_strdup(token);
	call->number = size;
	return tkms_call_dispatch(call);
}

static gboolean
handle_list_keys_page(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		      const gchar *token, guint size)
{
	return list_page(object, invocation, "ListKeysPage", token, size);
}

static gboolean
handle_list_all_keys_page(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
			  const gchar *token, guint size)
{
	return list_page(object, invocation, "ListAllKeysPage", token, size);
}

static gboolean
handle_get_key_info(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		    const gchar *name)
{
	return tkms_call_dispatch(tkms_call_new(object, invocation, "GetKeyInfo", name));
}

static gboolean
handle_destroy_key(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		   const gchar *name)
{
	return tkms_call_dispatch(tkms_call_new(object, invocation, "DestroyKey", name));
}

static gboolean
handle_get_public_key(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		      const gchar *name)
{
	return tkms_call_dispatch(tkms_call_new(object, invocation, "GetPublicKey", name));
}

static gboolean
handle_encrypt(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
	       const gchar *name, GVariant *plaintext, GVariant *context)
{
	return tkms_call_dispatch(
		call_with_bytes(object, invocation, "Encrypt", name, plaintext, context));
}

static gboolean
handle_decrypt(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
	       const gchar *name, GVariant *ciphertext, GVariant *context)
{
	return tkms_call_dispatch(
		call_with_bytes(object, invocation, "Decrypt", name, ciphertext, context));
}

static gboolean
handle_sign(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation, const gchar *name,
	    GVariant *data)
{
	return tkms_call_dispatch(call_with_bytes(object, invocation, "Sign", name, data, NULL));
}

static gboolean
handle_verify(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation, const gchar *name,
	      GVariant *data, GVariant *signature)
{
	return tkms_call_dispatch(
		call_with_bytes(object, invocation, "Verify", name, data, signature));
}

static gboolean
handle_hmac(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation, const gchar *name,
	    GVariant *data)
{
	return tkms_call_dispatch(call_with_bytes(object, invocation, "Hmac", name, data, NULL));
}

static gboolean
handle_verify_hmac(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		   const gchar *name, GVariant *data, GVariant *mac)
{
	return tkms_call_dispatch(
		call_with_bytes(object, invocation, "VerifyHmac", name, data, mac));
}

static gboolean
handle_derive_key(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		  const gchar *name, GVariant *context, guint length)
{
	TkmsCall *call = call_with_bytes(object, invocation, "DeriveKey", name, context, NULL);
	call->number = length;
	return tkms_call_dispatch(call);
}

static gboolean
handle_seal(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation, GVariant *data,
	    GVariant *options)
{
	TkmsCall *call = call_with_bytes(object, invocation, "Seal", NULL, data, NULL);
	call->options = g_variant_ref(options);
	return tkms_call_dispatch(call);
}

static gboolean
handle_unseal(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation, GVariant *blob)
{
	return tkms_call_dispatch(call_with_bytes(object, invocation, "Unseal", NULL, blob, NULL));
}

static gboolean
handle_get_random(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		  guint length)
{
	TkmsCall *call = tkms_call_new(object, invocation, "GetRandom", NULL);
	call->number = length;
	return tkms_call_dispatch(call);
}

static gboolean
handle_rotate_key(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		  const gchar *name)
{
	return tkms_call_dispatch(tkms_call_new(object, invocation, "RotateKey", name));
}

static gboolean
key_version_call(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		 const gchar *method, const gchar *name, guint version)
{
	TkmsCall *call = tkms_call_new(object, invocation, method, name);
	call->number = version;
	return tkms_call_dispatch(call);
}

static gboolean
handle_set_primary_version(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
			   const gchar *name, guint version)
{
	return key_version_call(object, invocation, "SetPrimaryVersion", name, version);
}

static gboolean
handle_set_key_version_state(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
			     const gchar *name, guint version, const gchar *state)
{
	TkmsCall *call = tkms_call_new(object, invocation, "SetKeyVersionState", name);
	call->number = version;
	call->str = g_strdup(state);
	return tkms_call_dispatch(call);
}

static gboolean
handle_set_rotation_policy(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
			   const gchar *name, GVariant *policy)
{
	TkmsCall *call = tkms_call_new(object, invocation, "SetRotationPolicy", name);
	call->options = g_variant_ref(policy);
	return tkms_call_dispatch(call);
}

static gboolean
handle_destroy_key_version(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
			   const gchar *name, guint version)
{
	return key_version_call(object, invocation, "DestroyKeyVersion", name, version);
}

static gboolean
handle_cancel_key_destruction(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
			      const gchar *name, guint version)
{
	return key_version_call(object, invocation, "CancelKeyDestruction", name, version);
}

/* data keys, rewrapping, digests */

static gboolean
handle_generate_data_key(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
			 const gchar *name, guint length, GVariant *context)
{
	TkmsCall *call =
		call_with_bytes(object, invocation, "GenerateDataKey", name, context, NULL);
	call->number = length;
	return tkms_call_dispatch(call);
}

static gboolean
handle_re_encrypt(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		  const gchar *name, GVariant *ciphertext, GVariant *context)
{
	return tkms_call_dispatch(
		call_with_bytes(object, invocation, "ReEncrypt", name, ciphertext, context));
}

static gboolean
handle_sign_digest(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		   const gchar *name, GVariant *digest)
{
	return tkms_call_dispatch(
		call_with_bytes(object, invocation, "SignDigest", name, digest, NULL));
}

static gboolean
handle_verify_digest(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		     const gchar *name, GVariant *digest, GVariant *signature)
{
	return tkms_call_dispatch(
		call_with_bytes(object, invocation, "VerifyDigest", name, digest, signature));
}


static gboolean
handle_import_secret(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		     const gchar *name, GVariant *secret)
{
	return tkms_call_dispatch(
		call_with_bytes(object, invocation, "ImportSecret", name, secret, NULL));
}

static gboolean
handle_get_secret(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		  const gchar *name, const gchar *stage)
{
	TkmsCall *call = tkms_call_new(object, invocation, "GetSecret", name);
	call->str = g_strdup(stage);
	return tkms_call_dispatch(call);
}

static gboolean
handle_encrypt_batch(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		     const gchar *name, GVariant *plaintexts, GVariant *context)
{
	return tkms_call_dispatch(
		call_with_items(object, invocation, "EncryptBatch", name, plaintexts, context));
}

static gboolean
handle_decrypt_batch(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		     const gchar *name, GVariant *ciphertexts, GVariant *context)
{
	return tkms_call_dispatch(
		call_with_items(object, invocation, "DecryptBatch", name, ciphertexts, context));
}

static gboolean
handle_sign_batch(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		  const gchar *name, GVariant *messages)
{
	return tkms_call_dispatch(
		call_with_items(object, invocation, "SignBatch", name, messages, NULL));
}

static gboolean
handle_hmac_batch(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
		  const gchar *name, GVariant *messages)
{
	return tkms_call_dispatch(
		call_with_items(object, invocation, "HmacBatch", name, messages, NULL));
}

void
tkms_manager_iface_init(TkmsDbusKeyManagerIface *iface)
{
	iface->handle_create_key = handle_create_key;
	iface->handle_list_keys = handle_list_keys;
	iface->handle_list_all_keys = handle_list_all_keys;
	iface->handle_list_keys_page = handle_list_keys_page;
	iface->handle_list_all_keys_page = handle_list_all_keys_page;
	iface->handle_get_key_info = handle_get_key_info;
	iface->handle_destroy_key = handle_destroy_key;
	iface->handle_encrypt = handle_encrypt;
	iface->handle_decrypt = handle_decrypt;
	iface->handle_sign = handle_sign;
	iface->handle_verify = handle_verify;
	iface->handle_get_public_key = handle_get_public_key;
	iface->handle_hmac = handle_hmac;
	iface->handle_verify_hmac = handle_verify_hmac;
	iface->handle_derive_key = handle_derive_key;
	iface->handle_seal = handle_seal;
	iface->handle_unseal = handle_unseal;
	iface->handle_get_random = handle_get_random;
	/* data keys, rewrapping, digests */
	iface->handle_generate_data_key = handle_generate_data_key;
	iface->handle_re_encrypt = handle_re_encrypt;
	iface->handle_sign_digest = handle_sign_digest;
	iface->handle_verify_digest = handle_verify_digest;
	/* the life cycle of versions */
	iface->handle_rotate_key = handle_rotate_key;
	iface->handle_set_primary_version = handle_set_primary_version;
	iface->handle_set_key_version_state = handle_set_key_version_state;
	iface->handle_set_rotation_policy = handle_set_rotation_policy;
	iface->handle_destroy_key_version = handle_destroy_key_version;
	iface->handle_cancel_key_destruction = handle_cancel_key_destruction;
	iface->handle_import_secret = handle_import_secret;
	iface->handle_get_secret = handle_get_secret;
	iface->handle_encrypt_batch = handle_encrypt_batch;
	iface->handle_decrypt_batch = handle_decrypt_batch;
	iface->handle_sign_batch = handle_sign_batch;
	iface->handle_hmac_batch = handle_hmac_batch;
}
