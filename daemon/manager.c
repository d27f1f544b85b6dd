/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-manager"

/* org.tkms.KeyManager: every call goes through one path: limits, authorization (polkit, via
 * one table of method -> action), the method, an audit record, the reply. */

#include "manager-private.h"

#include <pwd.h>
#include <string.h>

#include "config.h"
#include "tkms-config.h"
#include "tkms-error.h"

#define STATUS_REFRESH_SECONDS 30

static void tkms_manager_iface_init(TkmsDbusKeyManagerIface *iface);

G_DEFINE_TYPE_WITH_CODE(TkmsManager, tkms_manager, TKMS_DBUS_TYPE_KEY_MANAGER_SKELETON,
			G_IMPLEMENT_INTERFACE(TKMS_DBUS_TYPE_KEY_MANAGER,
					      tkms_manager_iface_init))

#define ACTION(x) "org.tkms.KeyManager." x

/* The one authorization table. A method that is not here is denied. */
#define ADMIN_ACTION ACTION("admin")

/* The one authorization table. A method that is not here is denied. */
static const TkmsMethod methods[] = {
	/* name, action, lifecycle, key_arg, admin, run */
	{"CreateKey", ACTION("create-key"), TRUE, TRUE, FALSE, tkms_method_create_key},
	{"ListKeys", ACTION("read-key"), FALSE, FALSE, FALSE, tkms_method_list_keys},
	{"ListAllKeys", ACTION("read-key"), FALSE, FALSE, TRUE, tkms_method_list_all_keys},
	{"ListKeysPage", ACTION("read-key"), FALSE, FALSE, FALSE, tkms_method_list_keys_page},
	{"ListAllKeysPage", ACTION("read-key"), FALSE, FALSE, TRUE,
	 tkms_method_list_all_keys_page},
	{"GetKeyInfo", ACTION("read-key"), FALSE, TRUE, FALSE, tkms_method_get_key_info},
	{"DestroyKey", ACTION("destroy-key"), TRUE, TRUE, FALSE, tkms_method_destroy_key},
	{"Encrypt", ACTION("use-key"), FALSE, TRUE, FALSE, tkms_method_encrypt},
	{"Decrypt", ACTION("use-key"), FALSE, TRUE, FALSE, tkms_method_decrypt},
	{"Sign", ACTION("use-key"), FALSE, TRUE, FALSE, tkms_method_sign},
	{"Verify", ACTION("use-key"), FALSE, TRUE, FALSE, tkms_method_verify},
	{"GetPublicKey", ACTION("read-key"), FALSE, TRUE, FALSE, tkms_method_get_public_key},
	{"Hmac", ACTION("use-key"), FALSE, TRUE, FALSE, tkms_method_hmac},
	{"VerifyHmac", ACTION("use-key"), FALSE, TRUE, FALSE, tkms_method_verify_hmac},
	{"DeriveKey", ACTION("use-key"), FALSE, TRUE, FALSE, tkms_method_derive_key},
	{"Seal", ACTION("seal"), FALSE, FALSE, FALSE, tkms_method_seal},
	{"Unseal", ACTION("seal"), FALSE, FALSE, FALSE, tkms_method_unseal},
	{"GetRandom", ACTION("seal"), FALSE, FALSE, FALSE, tkms_method_get_random},
};

static const TkmsMethod *
find_method(const gchar *name)
{
	for (guint i = 0; i < G_N_ELEMENTS(methods); i++)
		if (g_strcmp0(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

/* ---- call lifecycle ---- */

static void
call_free(TkmsCall *call)
{
	TkmsManager *self = call->manager;
	if (call->caller != NULL) {
		call->caller->in_flight--;
		if (call->uid_counted)
			(*tkms_authority_uid_in_flight(self->authority, call->caller->uid))--;
		tkms_caller_unref(call->caller);
	}
	if (call->data_free != NULL)
		call->data_free(call->data);
	g_clear_pointer(&call->key, tkms_key_unref);
	g_clear_pointer(&call->params, g_variant_unref);
	g_clear_object(&call->invocation);
	g_free(call->key_name);
	g_object_unref(self);
	g_free(call);
}

GCancellable *
tkms_call_get_cancellable(TkmsCall *call)
{
	return call->caller->cancellable;
}

void
tkms_call_set_data(TkmsCall *call, gpointer data, GDestroyNotify data_free)
{
	call->data = data;
	call->data_free = data_free;
}

static gboolean
audit(TkmsCall *call, const gchar *result, const GError *error, GError **audit_error)
{
	TkmsAuditRecord rec = {
		.uid = call->caller->have_creds ? (gint64)call->caller->uid : -1,
		.pid = call->caller->pid,
		.sender = call->caller->sender,
		.method = call->method ? call->method->name
				       : g_dbus_method_invocation_get_method_name(call->invocation),
		.owner_key = call->key_name,
		.owner = call->method && call->method->key_arg && call->target_name
				 ? (gint64)call->target_owner
				 : -1,
		.version = call->key_version,
		.result = result,
		.error = error ? tkms_error_to_short_name(error->code) : NULL,
	};
	gboolean durable = call->method != NULL && call->method->lifecycle &&
			   g_strcmp0(result, "ok") == 0;
	return tkms_audit_append(call->manager->audit, &rec, durable, audit_error);
}

void
tkms_call_return(TkmsCall *call, GVariant *value)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) owned = value ? g_variant_ref_sink(value) : NULL;

	if (!audit(call, "ok", NULL, &error)) {
		/* no unaudited success */
		g_warning("%s", error->message);
		g_dbus_method_invocation_return_gerror(call->invocation, error);
	} else {
		g_dbus_method_invocation_return_value(call->invocation, owned);
	}
	call_free(call);
}

void
tkms_call_return_bytes(TkmsCall *call, GBytes *bytes)
{
	tkms_call_return(call, g_variant_new("(@ay)", g_variant_new_from_bytes(
							      G_VARIANT_TYPE_BYTESTRING, bytes,
							      TRUE)));
}

gboolean
tkms_call_tpm_finish(TkmsCall *call, GAsyncResult *result)
{
	GError *error = NULL;
	if (tkms_tpm_finish(call->manager->tpm, result, &error))
		return TRUE;
	tkms_call_fail(call, error);
	return FALSE;
}

GBytes *
tkms_call_param_bytes(TkmsCall *call, guint index)
{
	g_autoptr(GVariant) v = g_variant_get_child_value(call->params, index);
	return g_variant_get_data_as_bytes(v);
}

void
tkms_call_fail(TkmsCall *call, GError *error)
{
	g_autoptr(GError) audit_error = NULL;
	gboolean denied = g_error_matches(error, TKMS_ERROR, TKMS_ERROR_PERMISSION_DENIED);

	if (error->domain != TKMS_ERROR) {
		/* never leak foreign error domains (or their details) over the bus */
		g_autofree gchar *msg = g_strdup(error->message);
		g_debug("internal error: %s", msg);
		g_clear_error(&error);
		error = g_error_new(TKMS_ERROR, TKMS_ERROR_FAILED,
				    "The operation failed; see the daemon log");
	}
	if (!audit(call, denied ? "denied" : "error", error, &audit_error))
		g_warning("%s", audit_error->message);
	g_dbus_method_invocation_return_gerror(call->invocation, error);
	g_error_free(error);
	call_free(call);
}

void
tkms_call_fail_literal(TkmsCall *call, TkmsError code, const gchar *message)
{
	tkms_call_fail(call, g_error_new_literal(TKMS_ERROR, code, message));
}

void
tkms_call_set_key_name(TkmsCall *call, const gchar *name)
{
	/* the audit record shows what was asked for, bounded, and always valid UTF-8 */
	g_autofree gchar *cut = g_strndup(name, TKMS_KEY_NAME_MAX + 1);
	g_free(call->key_name);
	call->key_name = g_utf8_make_valid(cut, -1);
}

gboolean
tkms_call_check_new_name(TkmsCall *call)
{
	if (!tkms_key_name_is_valid(call->target_name)) {
		tkms_call_fail_literal(call, TKMS_ERROR_INVALID_ARGUMENT,
				       "Invalid key name; use 1-64 characters from A-Z a-z 0-9 . _ - "
				       "not starting with a dot (or OWNER:NAME)");
		return FALSE;
	}
	return TRUE;
}

TkmsKey *
tkms_call_lookup_key(TkmsCall *call)
{
	g_autoptr(GError) error = NULL;
	TkmsKey *key;

	if (!tkms_call_check_new_name(call))
		return NULL;
	key = tkms_keystore_lookup(call->manager->keystore, call->target_owner,
				   call->target_name, &error);
	if (key == NULL && !g_error_matches(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND)) {
		tkms_call_fail(call, g_steal_pointer(&error));
		return NULL;
	}
	if (key == NULL) {
		tkms_call_fail(call, g_error_new(TKMS_ERROR, TKMS_ERROR_NOT_FOUND,
						 "There is no key named \"%s\" of %s; list keys "
						 "with ListKeys",
						 call->target_name,
						 call->target_owner == call->caller->uid
							 ? "yours"
							 : "that owner"));
		return NULL;
	}
	call->key = key;
	return key;
}

TkmsKeyVersion *
tkms_call_primary_version(TkmsCall *call, TkmsKey *key)
{
	TkmsKeyVersion *v = tkms_key_get_version(key, key->primary_version);
	if (v == NULL || g_strcmp0(v->state, "active") != 0) {
		tkms_call_fail(call, g_error_new(TKMS_ERROR, TKMS_ERROR_KEY_STATE,
						 "Key \"%s\" has no active version (it is %s); "
						 "create a new key",
						 key->name, v ? v->state : "empty"));
		return NULL;
	}
	call->key_version = v->version;
	return v;
}

gboolean
tkms_call_check_payload(TkmsCall *call, const gchar *what, gsize len, gboolean allow_empty)
{
	if (len == 0 && !allow_empty) {
		tkms_call_fail(call, g_error_new(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
						 "The %s is empty; pass at least one byte", what));
		return FALSE;
	}
	if (len > call->manager->config.max_payload) {
		tkms_call_fail(call,
			       g_error_new(TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED,
					   "The %s is %" G_GSIZE_FORMAT " bytes, over the limit of "
					   "%" G_GSIZE_FORMAT "; split it or raise MaxPayload",
					   what, len, call->manager->config.max_payload));
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_call_parse_pcrs(TkmsCall *call, GVariant *options, TkmsPcrMask *pcrs)
{
	g_autoptr(GVariant) list = NULL;
	const guint32 *idx;
	gsize n = 0;

	*pcrs = 0;
	if (options == NULL)
		return TRUE;
	list = g_variant_lookup_value(options, "pcrs", NULL);
	if (list == NULL)
		return TRUE;
	if (!g_variant_is_of_type(list, G_VARIANT_TYPE("au"))) {
		tkms_call_fail_literal(call, TKMS_ERROR_INVALID_ARGUMENT,
				       "The \"pcrs\" option must be an array of uint32 (au)");
		return FALSE;
	}
	idx = g_variant_get_fixed_array(list, &n, sizeof(guint32));
	for (gsize i = 0; i < n; i++) {
		if (idx[i] >= TKMS_PCR_MAX) {
			tkms_call_fail(call, g_error_new(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
							 "PCR %u does not exist; PCR indices "
							 "are 0 to %d",
							 idx[i], TKMS_PCR_MAX - 1));
			return FALSE;
		}
		*pcrs |= 1u << idx[i];
	}
	return TRUE;
}

/* ---- dispatch ---- */

/* OWNER:NAME, OWNER a uid number or "system". Fails the call on a malformed owner. */
static gboolean
resolve_target(TkmsCall *call)
{
	const gchar *arg, *colon;
	guint64 uid;
	g_autofree gchar *owner = NULL;

	g_variant_get_child(call->params, 0, "&s", &arg);
	call->target_owner = call->caller->uid;
	call->target_name = arg;
	colon = strchr(arg, ':');
	if (colon == NULL)
		return TRUE;
	owner = g_strndup(arg, colon - arg);
	call->target_name = colon + 1;
	if (g_str_equal(owner, "system")) {
		uid = 0;
	} else if (!g_ascii_string_to_unsigned(owner, 10, 0, G_MAXUINT32 - 1, &uid, NULL)) {
		tkms_call_fail_literal(call, TKMS_ERROR_INVALID_ARGUMENT,
				       "Malformed key owner; write OWNER:NAME with OWNER a uid "
				       "number or \"system\"");
		return FALSE;
	}
	call->target_owner = uid;
	return TRUE;
}

/* Only after the admin check: whether an owner exists is for administrators to learn. */
static gboolean
check_target_exists(TkmsCall *call)
{
	guint32 uid = call->target_owner;
	if (uid == call->caller->uid || uid == 0 || getpwuid(uid) != NULL ||
	    tkms_keystore_has_owner(call->manager->keystore, uid))
		return TRUE;
	tkms_call_fail(call, g_error_new(TKMS_ERROR, TKMS_ERROR_NOT_FOUND,
					 "There is no user with uid %u; check the OWNER part", uid));
	return FALSE;
}

static void
run(TkmsCall *call)
{
	if (check_target_exists(call))
		call->method->run(call);
}

/* Authorized calls wait in one queue per uid and run round robin, at idle priority so that
 * every call that has arrived is queued first: a user with a hundred calls in flight gets a
 * turn like a user with one, instead of first come, first served. */
#define RUN_BATCH 64

static gboolean
run_queued_cb(gpointer data)
{
	TkmsManager *self = data;

	for (guint n = 0; n < RUN_BATCH && !g_queue_is_empty(&self->turns); n++) {
		gpointer uid = g_queue_pop_head(&self->turns);
		GQueue *q = g_hash_table_lookup(self->ready, uid);
		TkmsCall *call = g_queue_pop_head(q);

		if (g_queue_is_empty(q))
			g_hash_table_remove(self->ready, uid);
		else
			g_queue_push_tail(&self->turns, uid);
		run(call);
	}
	if (!g_queue_is_empty(&self->turns))
		return G_SOURCE_CONTINUE;
	self->run_source = 0;
	return G_SOURCE_REMOVE;
}

static void
enqueue(TkmsCall *call)
{
	TkmsManager *self = call->manager;
	gpointer uid = GUINT_TO_POINTER(call->caller->uid);
	GQueue *q = g_hash_table_lookup(self->ready, uid);

	if (q == NULL) {
		q = g_queue_new();
		g_hash_table_insert(self->ready, uid, q);
		g_queue_push_tail(&self->turns, uid);
	}
	g_queue_push_tail(q, call);
	if (self->run_source == 0)
		self->run_source = g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, run_queued_cb, self,
						   NULL);
}

static void
required_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsCall *call = user_data;
	GError *error = NULL;

	if (!tkms_authority_check_finish(TKMS_AUTHORITY(source), res, &error)) {
		tkms_call_fail(call, error);
		return;
	}
	call->next(call);
}

/* Goes on with next once polkit says the caller holds action: at once when its "yes" is
 * cached, else when polkit answers (a refusal fails the call). */
static void
require(TkmsCall *call, const gchar *action, void (*next)(TkmsCall *call))
{
	if (tkms_authority_is_cached(call->manager->authority, call->caller, action)) {
		next(call);
		return;
	}
	call->next = next;
	tkms_authority_check(call->manager->authority, call->caller, action, call->interactive,
			     required_cb, call);
}

static void
authorized(TkmsCall *call)
{
	guint *uid_count;
	gboolean need_admin;

	/* the per-uid cap is known only now that the uid is */
	uid_count = tkms_authority_uid_in_flight(call->manager->authority, call->caller->uid);
	(*uid_count)++;
	call->uid_counted = TRUE;
	if (*uid_count > call->manager->config.max_in_flight_per_user) {
		tkms_call_fail_literal(call, TKMS_ERROR_BUSY,
				       "Too many calls in flight for your user; wait for some to "
				       "finish and retry");
		return;
	}
	call->target_owner = call->caller->uid;
	if (call->method->key_arg && !resolve_target(call))
		return;
	/* another owner's keys, or everybody's, take the admin action as well */
	need_admin = call->method->admin || call->target_owner != call->caller->uid;
	if (need_admin)
		require(call, ADMIN_ACTION, enqueue);
	else
		enqueue(call);
}

static gboolean
dispatch(TkmsManager *self, GDBusMethodInvocation *invocation)
{
	TkmsCall *call = g_new0(TkmsCall, 1);
	GDBusMessage *msg = g_dbus_method_invocation_get_message(invocation);
	gboolean interactive =
		(g_dbus_message_get_flags(msg) &
		 G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;

	call->manager = g_object_ref(self);
	call->invocation = g_object_ref(invocation);
	call->params = g_variant_ref(g_dbus_method_invocation_get_parameters(invocation));
	call->method = find_method(g_dbus_method_invocation_get_method_name(invocation));
	call->caller = tkms_caller_ref(tkms_authority_get_caller(
		self->authority, g_dbus_method_invocation_get_sender(invocation)));
	call->interactive = interactive;
	call->caller->in_flight++;

	if (call->method == NULL) {
		tkms_call_fail_literal(call, TKMS_ERROR_PERMISSION_DENIED,
				       "This method has no authorization rule and is denied");
		return TRUE;
	}
	if (call->method->key_arg) {
		/* a refusal's audit record still says which key was asked for */
		const gchar *arg;
		g_variant_get_child(call->params, 0, "&s", &arg);
		tkms_call_set_key_name(call, arg);
	}
	if (call->caller->in_flight > self->config.max_in_flight_per_caller) {
		tkms_call_fail_literal(call, TKMS_ERROR_BUSY,
				       "Too many calls in flight from this connection; wait for "
				       "replies before sending more");
		return TRUE;
	}
	require(call, call->method->action, authorized);
	return TRUE;
}

#define HANDLER(fn, ...)                                                                           \
	static gboolean fn(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,        \
			   __VA_ARGS__)                                                              \
	{                                                                                          \
		return dispatch(TKMS_MANAGER(object), invocation);                                 \
	}

HANDLER(handle_create_key, const gchar *a, const gchar *b, GVariant *c)
HANDLER(handle_get_key_info, const gchar *a)
HANDLER(handle_destroy_key, const gchar *a)
HANDLER(handle_encrypt, const gchar *a, GVariant *b, GVariant *c)
HANDLER(handle_decrypt, const gchar *a, GVariant *b, GVariant *c)
HANDLER(handle_sign, const gchar *a, GVariant *b)
HANDLER(handle_verify, const gchar *a, GVariant *b, GVariant *c)
HANDLER(handle_get_public_key, const gchar *a)
HANDLER(handle_hmac, const gchar *a, GVariant *b)
HANDLER(handle_verify_hmac, const gchar *a, GVariant *b, GVariant *c)
HANDLER(handle_derive_key, const gchar *a, GVariant *b, guint c)
HANDLER(handle_seal, GVariant *a, GVariant *b)
HANDLER(handle_unseal, GVariant *a)
HANDLER(handle_get_random, guint a)
HANDLER(handle_list_keys_page, const gchar *a, guint b)
HANDLER(handle_list_all_keys_page, const gchar *a, guint b)

static gboolean
handle_list_keys(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation)
{
	return dispatch(TKMS_MANAGER(object), invocation);
}

static gboolean
handle_list_all_keys(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation)
{
	return dispatch(TKMS_MANAGER(object), invocation);
}

static void
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
}

/* ---- properties ---- */

static void
update_properties(TkmsManager *self)
{
	TkmsDbusKeyManager *iface = TKMS_DBUS_KEY_MANAGER(self);
	TkmsTpmStatus st;

	tkms_tpm_get_status(self->tpm, &st);
	/* setters only notify (and emit PropertiesChanged) on a real change */
	if (tkms_dbus_key_manager_get_tpm_available(iface) != st.available)
		tkms_dbus_key_manager_set_tpm_available(iface, st.available);
	if (st.manufacturer[0] != '\0' &&
	    g_strcmp0(tkms_dbus_key_manager_get_tpm_manufacturer(iface), st.manufacturer) != 0)
		tkms_dbus_key_manager_set_tpm_manufacturer(iface, st.manufacturer);
	if (st.firmware[0] != '\0' &&
	    g_strcmp0(tkms_dbus_key_manager_get_tpm_firmware_version(iface), st.firmware) != 0)
		tkms_dbus_key_manager_set_tpm_firmware_version(iface, st.firmware);
	if (tkms_dbus_key_manager_get_tpm_locked_out(iface) != st.locked_out)
		tkms_dbus_key_manager_set_tpm_locked_out(iface, st.locked_out);
	if (tkms_dbus_key_manager_get_tpm_lockout_counter(iface) != st.lockout_counter)
		tkms_dbus_key_manager_set_tpm_lockout_counter(iface, st.lockout_counter);
}

static void
refresh_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(TkmsManager) self = user_data;
	g_autoptr(GError) error = NULL;
	if (!tkms_tpm_finish(TKMS_TPM(source), res, &error))
		g_debug("TPM: %s", error->message);
}

static gboolean
status_timer_cb(gpointer data)
{
	TkmsManager *self = data;
	tkms_tpm_refresh(self->tpm, NULL, refresh_cb, g_object_ref(self));
	return G_SOURCE_CONTINUE;
}

/* ---- life ---- */

TkmsManager *
tkms_manager_new(GDBusConnection *connection, const TkmsConfig *config, GError **error)
{
	g_autoptr(TkmsManager) self = g_object_new(TKMS_TYPE_MANAGER, NULL);

	self->config = *config;
	self->config.tcti = g_strdup(config->tcti);
	self->config.state_dir = g_strdup(config->state_dir);
	self->keystore = tkms_keystore_new(config->state_dir, error);
	if (self->keystore == NULL)
		return NULL;
	self->audit = tkms_audit_new(config->state_dir, error);
	if (self->audit == NULL)
		return NULL;
	self->tpm = tkms_tpm_new(config->tcti, config->state_dir, config->tpm_timeout);
	g_signal_connect_object(self->tpm, "status-changed", G_CALLBACK(update_properties), self,
				G_CONNECT_SWAPPED);
	self->authority = tkms_authority_new(connection, config->auth_ttl);
	self->keycache = tkms_key_cache_new(config->key_ttl);
	tkms_dbus_key_manager_set_version(TKMS_DBUS_KEY_MANAGER(self), PACKAGE_VERSION);
	tkms_dbus_key_manager_set_tpm_manufacturer(TKMS_DBUS_KEY_MANAGER(self), "");
	tkms_dbus_key_manager_set_tpm_firmware_version(TKMS_DBUS_KEY_MANAGER(self), "");
	/* connect now so that the properties are real from the start; the periodic refresh
	 * keeps the lockout state current when nobody calls */
	tkms_tpm_refresh(self->tpm, NULL, refresh_cb, g_object_ref(self));
	self->status_timer = g_timeout_add_seconds(STATUS_REFRESH_SECONDS, status_timer_cb, self);
	return g_steal_pointer(&self);
}

void
tkms_manager_shutdown(TkmsManager *self)
{
	g_clear_handle_id(&self->status_timer, g_source_remove);
	g_clear_handle_id(&self->run_source, g_source_remove);
	if (self->tpm != NULL)
		tkms_tpm_stop(self->tpm);
	if (self->audit != NULL)
		tkms_audit_sync(self->audit);
	g_clear_pointer(&self->keycache, tkms_key_cache_free);
}

static void
tkms_manager_finalize(GObject *object)
{
	TkmsManager *self = TKMS_MANAGER(object);
	tkms_manager_shutdown(self);
	g_clear_object(&self->authority);
	g_clear_object(&self->tpm);
	g_clear_object(&self->audit);
	g_clear_object(&self->keystore);
	g_free(self->config.tcti);
	g_free(self->config.state_dir);
	g_hash_table_unref(self->ready);
	g_queue_clear(&self->turns);
	G_OBJECT_CLASS(tkms_manager_parent_class)->finalize(object);
}

static void
tkms_manager_class_init(TkmsManagerClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = tkms_manager_finalize;
}

static void
tkms_manager_init(TkmsManager *self)
{
	self->ready = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)g_queue_free);
	/* replies leave from the thread that handles calls: our main loop */
	g_dbus_interface_skeleton_set_flags(G_DBUS_INTERFACE_SKELETON(self),
					    G_DBUS_INTERFACE_SKELETON_FLAGS_NONE);
}
