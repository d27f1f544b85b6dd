/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-manager"

/* org.tkms.KeyManager, the D-Bus layer over the engine: every call goes through one path:
 * payload sizes, per-caller and per-uid limits, authorization (polkit, via the one method -> action table in
 * manager-methods.c), the OWNER part of its key, a fair turn among uids, then the engine,
 * which does the work and writes the audit record, and the reply. Refusals on this path are
 * audited here, once each. */

#include "manager-private.h"

#include "config.h"

#define STATUS_REFRESH_SECONDS 30
#define ADMIN_ACTION "org.tkms.KeyManager.admin"

G_DEFINE_TYPE_WITH_CODE(TkmsManager, tkms_manager, TKMS_DBUS_TYPE_KEY_MANAGER_SKELETON,
			G_IMPLEMENT_INTERFACE(TKMS_DBUS_TYPE_KEY_MANAGER,
					      tkms_manager_iface_init))

/* ---- call lifecycle ---- */

TkmsCall *
tkms_call_new(TkmsDbusKeyManager *object, GDBusMethodInvocation *invocation,
	      const gchar *method, const gchar *key)
{
	TkmsManager *self = TKMS_MANAGER(object);
	TkmsCall *call = g_new0(TkmsCall, 1);
	GDBusMessage *msg = g_dbus_method_invocation_get_message(invocation);

	call->manager = g_object_ref(self);
	call->object = object;
	call->invocation = g_object_ref(invocation);
	call->method = tkms_method_find(method);
	call->caller = tkms_caller_ref(tkms_authority_get_caller(
		self->authority, g_dbus_method_invocation_get_sender(invocation)));
	call->interactive = (g_dbus_message_get_flags(msg) &
			     G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;
	call->caller->in_flight++;
	call->actor.uid = TKMS_ACTOR_UID_UNKNOWN;
	call->actor.bus_name = call->caller->sender;
	if (key != NULL) {
		/* a refusal's audit record still says which key was asked for (text only: owner
		 * and name count once parsed, after authorization) */
		g_autoptr(GError) ignored = NULL;
		call->key_arg = g_strdup(key);
		tkms_key_ref_parse(&call->key, key, 0, &ignored);
		g_clear_pointer(&call->key.name, g_free);
	}
	return call;
}

void
tkms_call_free(TkmsCall *call)
{
	TkmsManager *self = call->manager;

	call->caller->in_flight--;
	if (call->uid_counted)
		(*tkms_authority_uid_in_flight(self->authority, call->caller->uid))--;
	tkms_caller_unref(call->caller);
	tkms_key_ref_clear(&call->key);
	g_free(call->key_arg);
	g_free(call->str);
	g_clear_pointer(&call->options, g_variant_unref);
	g_clear_pointer(&call->bytes[0], g_bytes_unref);
	g_clear_pointer(&call->bytes[1], g_bytes_unref);
	g_clear_pointer(&call->items, g_ptr_array_unref);
	g_clear_object(&call->invocation);
	g_object_unref(self);
	g_free(call);
}

GCancellable *
tkms_call_get_cancellable(TkmsCall *call)
{
	return call->caller->cancellable;
}

GBytes *
tkms_call_variant_to_bytes(GVariant *ay)
{
	return g_variant_get_data_as_bytes(ay);
}

GVariant *
tkms_call_bytes_to_variant(GBytes *bytes)
{
	return g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, bytes, TRUE);
}

void
tkms_call_fail(TkmsCall *call, GError *error)
{
	g_dbus_method_invocation_return_gerror(call->invocation, error);
	g_error_free(error);
	tkms_call_free(call);
}

void
tkms_call_refuse(TkmsCall *call, GError *error)
{
	const gchar *name = call->method != NULL
				    ? call->method->name
				    : g_dbus_method_invocation_get_method_name(call->invocation);
	gboolean has_key = call->key.text != NULL;

	call->actor.uid = call->caller->have_creds ? call->caller->uid : TKMS_ACTOR_UID_UNKNOWN;
	call->actor.pid = call->caller->pid;
	tkms_engine_audit_refusal(call->manager->engine, &call->actor, name,
				  has_key ? &call->key : NULL, error);
	tkms_call_fail(call, error);
}

static void
refuse_literal(TkmsCall *call, TkmsError code, const gchar *message)
{
	tkms_call_refuse(call, g_error_new_literal(TKMS_ERROR, code, message));
}

/* ---- dispatch ---- */

/* Only after the admin check: whether an owner exists is for administrators to learn. */
static void
run(TkmsCall *call)
{
	guint32 uid = call->key.owner;

	if (call->method->key_arg && uid != call->caller->uid &&
	    !tkms_engine_owner_exists(call->manager->engine, uid)) {
		tkms_call_refuse(call, g_error_new(TKMS_ERROR, TKMS_ERROR_NOT_FOUND,
						   "There is no user with uid %u; check the OWNER "
						   "part",
						   uid));
		return;
	}
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
	GQueue *q;

	/* A uid with this one call in flight, while nobody waits for a turn, goes first at once:
	 * it takes no turn from anybody, and a synchronous caller is spared a main-loop
	 * iteration per call. A uid with more calls in flight takes turns as above. */
	if (g_queue_is_empty(&self->turns) &&
	    *tkms_authority_uid_in_flight(self->authority, call->caller->uid) == 1) {
		run(call);
		return;
	}
	q = g_hash_table_lookup(self->ready, uid);
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
		tkms_call_refuse(call, error);
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

/* the engine learns it: a compromised version processes only for admins */
static void
admin_granted(TkmsCall *call)
{
	call->actor.admin = TRUE;
	enqueue(call);
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
	/* the caller's credentials are known once polkit has been asked */
	call->actor.uid = call->caller->uid;
	call->actor.pid = call->caller->pid;
	if (*uid_count > call->manager->config->max_in_flight_per_user) {
		refuse_literal(call, TKMS_ERROR_BUSY,
			       "Too many calls in flight for your user; wait for some to finish "
			       "and retry");
		return;
	}
	if (call->method->key_arg) {
		GError *error = NULL;

		tkms_key_ref_clear(&call->key);
		if (!tkms_key_ref_parse(&call->key, call->key_arg, call->caller->uid, &error)) {
			tkms_call_refuse(call, error);
			return;
		}
	}
	/* another owner's keys, or everybody's, take the admin action as well */
	need_admin = call->method->admin ||
		     (call->method->key_arg && call->key.owner != call->caller->uid);
	if (need_admin)
		require(call, ADMIN_ACTION, admin_granted);
	else
		enqueue(call);
}

gboolean
tkms_call_dispatch(TkmsCall *call)
{
	GError *error = NULL;

	if (call->method == NULL) {
		refuse_literal(call, TKMS_ERROR_PERMISSION_DENIED,
			       "This method has no authorization rule and is denied");
		return TRUE;
	}
	if (!tkms_call_check_payloads(call, &error)) {
		tkms_call_refuse(call, error);
		return TRUE;
	}
	if (call->caller->in_flight > call->manager->config->max_in_flight_per_caller) {
		refuse_literal(call, TKMS_ERROR_BUSY,
			       "Too many calls in flight from this connection; wait for replies "
			       "before sending more");
		return TRUE;
	}
	require(call, call->method->action, authorized);
	return TRUE;
}

/* ---- properties ---- */

static void
update_properties(TkmsManager *self)
{
	TkmsDbusKeyManager *iface = TKMS_DBUS_KEY_MANAGER(self);
	TkmsTpmStatus st;

	tkms_engine_get_tpm_status(self->engine, &st);
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

static gboolean
status_timer_cb(gpointer data)
{
	TkmsManager *self = data;
	tkms_engine_refresh_tpm(self->engine);
	return G_SOURCE_CONTINUE;
}

/* ---- life ---- */

TkmsManager *
tkms_manager_new(GDBusConnection *connection, TkmsEngine *engine)
{
	TkmsManager *self = g_object_new(TKMS_TYPE_MANAGER, NULL);

	self->engine = g_object_ref(engine);
	self->config = tkms_engine_get_config(engine);
	g_signal_connect_object(engine, "tpm-status-changed", G_CALLBACK(update_properties),
				self, G_CONNECT_SWAPPED);
	self->authority = tkms_authority_new(connection, self->config->auth_ttl);
	tkms_dbus_key_manager_set_version(TKMS_DBUS_KEY_MANAGER(self), PACKAGE_VERSION);
	tkms_dbus_key_manager_set_tpm_manufacturer(TKMS_DBUS_KEY_MANAGER(self), "");
	tkms_dbus_key_manager_set_tpm_firmware_version(TKMS_DBUS_KEY_MANAGER(self), "");
	/* connect now so that the properties are real from the start; the periodic refresh
	 * keeps the lockout state current when nobody calls */
	tkms_engine_refresh_tpm(engine);
	self->status_timer = g_timeout_add_seconds(STATUS_REFRESH_SECONDS, status_timer_cb, self);
	return self;
}

void
tkms_manager_set_connection(TkmsManager *self, GDBusConnection *connection)
{
	tkms_authority_set_connection(self->authority, connection);
}

void
tkms_manager_shutdown(TkmsManager *self)
{
	g_clear_handle_id(&self->status_timer, g_source_remove);
	g_clear_handle_id(&self->run_source, g_source_remove);
}

static void
tkms_manager_finalize(GObject *object)
{
	TkmsManager *self = TKMS_MANAGER(object);
	tkms_manager_shutdown(self);
	g_clear_object(&self->authority);
	g_clear_object(&self->engine);
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
