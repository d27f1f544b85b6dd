/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-authority"

#include "authority.h"

#include "tkms-error.h"

/* polkitd is asked over tkmsd's own bus connection rather than through libpolkit-gobject's
 * PolkitAuthority, a process-wide object on GLib's shared system-bus connection: when GDBus
 * closes a connection (it can, on a message dbus-daemon forwarded but GDBus cannot decode),
 * tkmsd connects again and hands the new connection here, and every question about callers
 * then travels on the connection their calls arrived on. */
#define POLKIT_NAME			 "org.freedesktop.PolicyKit1"
#define POLKIT_PATH			 "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_IFACE			 "org.freedesktop.PolicyKit1.Authority"
#define POLKIT_ERROR_NOT_AUTHORIZED_NAME "org.freedesktop.PolicyKit1.Error.NotAuthorized"
/* CheckAuthorization's flags: AllowUserInteraction */
#define POLKIT_CHECK_ALLOW_INTERACTION 1u

/* CheckAuthorization calls in flight to polkitd at once; the rest wait here. dbus-daemon lets
 * one connection have 128 calls awaiting replies (max_replies_per_connection) and answers the
 * next with LimitsExceeded: when polkitd fell behind (CPUs busy, callers leaving mid-check),
 * tkmsd's checks hit that limit and authorized callers were refused. */
#define MAX_CHECKS_IN_FLIGHT 32
/* A check that failed (not a polkit answer) is asked once more before the call fails. */
#define MAX_CHECK_ATTEMPTS 2

struct _TkmsAuthority {
	GObject parent_instance;
	GDBusConnection *connection;
	/* checks waiting for one of the MAX_CHECKS_IN_FLIGHT, one queue per uid taking turns:
	 * a user with many connections cannot hold back everybody else's checks */
	GHashTable *throttled; /* uid -> GQueue of GTask */
	GQueue turns;	       /* uids with waiting checks, next first */
	guint checks_in_flight;
	GHashTable *callers;	   /* sender -> TkmsCaller */
	GHashTable *uid_in_flight; /* uid -> guint* */
	gint64 ttl_us;
	guint64 generation; /* bumped on polkit's Changed: answers asked before it are stale */
	guint name_owner_sub;
	guint polkit_changed_sub;
	guint64 cancellation_ids; /* names the interactive checks for CancelCheckAuthorization */
};

G_DEFINE_TYPE(TkmsAuthority, tkms_authority, G_TYPE_OBJECT)

TkmsCaller *
tkms_caller_ref(TkmsCaller *caller)
{
	caller->refcount++;
	return caller;
}

void
tkms_caller_unref(TkmsCaller *caller)
{
	if (caller == NULL || --caller->refcount > 0)
		return;
	g_free(caller->sender);
	g_hash_table_unref(caller->allowed);
	g_object_unref(caller->cancellable);
	g_free(caller);
}

static void
name_owner_changed_cb(GDBusConnection *connection, const gchar *sender_name,
		      const gchar *object_path, const gchar *interface_name,
		      const gchar *signal_name, GVariant *parameters, gpointer user_data)
{
	TkmsAuthority *self = user_data;
	const gchar *name, *old_owner, *new_owner;
	TkmsCaller *caller;

	g_variant_get(parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
	if (name[0] != ':' || new_owner[0] != '\0')
		return;
	caller = g_hash_table_lookup(self->callers, name);
	if (caller == NULL)
		return;
	/* pending work for a vanished peer is cancelled; its cache goes with it */
	g_cancellable_cancel(caller->cancellable);
	g_hash_table_remove(self->callers, name);
}

static void
forget_cached_answers(TkmsAuthority *self)
{
	GHashTableIter iter;
	gpointer value;

	self->generation++;
	g_hash_table_iter_init(&iter, self->callers);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_hash_table_remove_all(((TkmsCaller *)value)->allowed);
}

static void
polkit_changed_cb(GDBusConnection *connection, const gchar *sender_name, const gchar *object_path,
		  const gchar *interface_name, const gchar *signal_name, GVariant *parameters,
		  gpointer user_data)
{
	g_debug("polkit configuration changed; dropping cached authorizations");
	forget_cached_answers(user_data);
}

static void
unsubscribe(TkmsAuthority *self)
{
	if (self->name_owner_sub != 0)
		g_dbus_connection_signal_unsubscribe(self->connection, self->name_owner_sub);
	if (self->polkit_changed_sub != 0)
		g_dbus_connection_signal_unsubscribe(self->connection, self->polkit_changed_sub);
	self->name_owner_sub = 0;
	self->polkit_changed_sub = 0;
}

void
tkms_authority_set_connection(TkmsAuthority *self, GDBusConnection *connection)
{
	GHashTableIter iter;
	gpointer value;

	unsubscribe(self);
	/* Calls that came on the old connection can no longer be answered: their work stops as if
	 * their callers had left. What was learnt about callers is learnt again, on the new
	 * connection: a peer that left in between was never seen leaving. */
	g_hash_table_iter_init(&iter, self->callers);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_cancellable_cancel(((TkmsCaller *)value)->cancellable);
	g_hash_table_remove_all(self->callers);
	forget_cached_answers(self);

	g_set_object(&self->connection, connection);
	self->name_owner_sub = g_dbus_connection_signal_subscribe(
		connection, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
		"/org/freedesktop/DBus", NULL, G_DBUS_SIGNAL_FLAGS_NONE, name_owner_changed_cb,
		self, NULL);
	self->polkit_changed_sub = g_dbus_connection_signal_subscribe(
		connection, POLKIT_NAME, POLKIT_IFACE, "Changed", POLKIT_PATH, NULL,
		G_DBUS_SIGNAL_FLAGS_NONE, polkit_changed_cb, self, NULL);
}

TkmsAuthority *
tkms_authority_new(GDBusConnection *connection, guint cache_ttl_seconds)
{
	TkmsAuthority *self = g_object_new(TKMS_TYPE_AUTHORITY, NULL);
	self->ttl_us = (gint64)cache_ttl_seconds * G_USEC_PER_SEC;
	tkms_authority_set_connection(self, connection);
	return self;
}

TkmsCaller *
tkms_authority_get_caller(TkmsAuthority *self, const gchar *sender)
{
	TkmsCaller *caller = g_hash_table_lookup(self->callers, sender);
	if (caller == NULL) {
		caller = g_new0(TkmsCaller, 1);
		caller->refcount = 1;
		caller->sender = g_strdup(sender);
		caller->allowed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
		caller->cancellable = g_cancellable_new();
		g_hash_table_insert(self->callers, caller->sender, caller);
	}
	return caller;
}

guint *
tkms_authority_uid_in_flight(TkmsAuthority *self, guint32 uid)
{
	guint *count = g_hash_table_lookup(self->uid_in_flight, GUINT_TO_POINTER(uid));
	if (count == NULL) {
		count = g_new0(guint, 1);
		g_hash_table_insert(self->uid_in_flight, GUINT_TO_POINTER(uid), count);
	}
	return count;
}

typedef struct {
	TkmsCaller *caller;
	gchar *action;
	gboolean allow_interaction;
	guint64 generation; /* the authority's generation when polkit was asked */
	guint attempts;
	/* an interactive check: its id, and the handler that withdraws it when its caller leaves */
	gchar *cancellation_id;
	gulong cancel_handler;
} CheckData;

static void
check_data_free(CheckData *d)
{
	g_free(d->cancellation_id);
	tkms_caller_unref(d->caller);
	g_free(d->action);
	g_free(d);
}

static void
deny(GTask *task, const gchar *why)
{
	CheckData *d = g_task_get_task_data(task);
	g_debug("denied %s to %s: %s", d->action, d->caller->sender, why);
	g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_PERMISSION_DENIED,
				"Not authorized to %s; ask an administrator to grant the polkit "
				"action %s",
				why, d->action);
}

static void ask_polkit(GTask *task);

static void
throttle(TkmsAuthority *self, GTask *task)
{
	CheckData *d = g_task_get_task_data(task);
	gpointer uid = GUINT_TO_POINTER(d->caller->uid);
	GQueue *q = g_hash_table_lookup(self->throttled, uid);

	if (q == NULL) {
		q = g_queue_new();
		g_hash_table_insert(self->throttled, uid, q);
		g_queue_push_tail(&self->turns, uid);
	}
	g_queue_push_tail(q, task);
}

/* Starts the checks that waited for a free slot, a uid at a time (ask_polkit owns each). */
static void
start_throttled(TkmsAuthority *self)
{
	while (self->checks_in_flight < MAX_CHECKS_IN_FLIGHT && !g_queue_is_empty(&self->turns)) {
		gpointer uid = g_queue_pop_head(&self->turns);
		GQueue *q = g_hash_table_lookup(self->throttled, uid);
		GTask *task = g_queue_pop_head(q);

		if (g_queue_is_empty(q))
			g_hash_table_remove(self->throttled, uid);
		else
			g_queue_push_tail(&self->turns, uid);
		ask_polkit(task);
	}
}

/* Whether a failed check says that polkit cannot answer at all (no polkitd on the bus, or it
 * refuses to answer tkmsd): that is a refusal, as DESIGN.md's "fail closed" says. Any other
 * failure (a bus limit, a timeout, polkitd's own error) says nothing about the caller. */
static gboolean
polkit_cannot_answer(const GError *error)
{
	g_autofree gchar *remote = g_dbus_error_get_remote_error(error);

	return g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
	       g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER) ||
	       g_strcmp0(remote, POLKIT_ERROR_NOT_AUTHORIZED_NAME) == 0;
}

typedef struct {
	GDBusConnection *connection;
	gchar *cancellation_id;
} Withdrawal;

static void
withdrawal_free(gpointer data)
{
	Withdrawal *w = data;
	g_object_unref(w->connection);
	g_free(w->cancellation_id);
	g_free(w);
}

/* Takes down the dialog of a caller that left: polkitd keeps a check open while it waits for
 * the user, until it is told otherwise. */
static void
withdraw_check(GCancellable *cancellable, gpointer data)
{
	Withdrawal *w = data;
	g_dbus_connection_call(w->connection, POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE,
			       "CancelCheckAuthorization", g_variant_new("(s)", w->cancellation_id),
			       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL, NULL);
}

static void
check_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	TkmsAuthority *self = g_task_get_source_object(task);
	CheckData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) result =
		g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
	gboolean authorized = FALSE, challenge = FALSE;

	if (d->cancel_handler != 0) {
		g_cancellable_disconnect(d->caller->cancellable, d->cancel_handler);
		d->cancel_handler = 0;
	}
	self->checks_in_flight--;
	start_throttled(self);
	if (g_cancellable_is_cancelled(d->caller->cancellable)) {
		deny(task, "perform this operation (the caller left the bus)");
		return;
	}
	if (result == NULL && polkit_cannot_answer(error)) {
		g_warning("polkit cannot answer for %s (%s): refused", d->caller->sender,
			  error->message);
		deny(task, "perform this operation (polkit is not available)");
		return;
	}
	if (result == NULL && d->attempts < MAX_CHECK_ATTEMPTS) {
		/* not an answer: ask again, never take it for a yes or a no */
		g_message("polkit check of %s for %s failed (%s); asking again", d->action,
			  d->caller->sender, error->message);
		ask_polkit(g_steal_pointer(&task));
		return;
	}
	if (result == NULL) {
		g_warning("polkit check of %s for %s failed again (%s); the call fails with Busy",
			  d->action, d->caller->sender, error->message);
		g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_BUSY,
					"The authorization check could not be completed (polkit: "
					"%s); retry later",
					error->message);
		return;
	}
	g_variant_get(result, "((bb@a{ss}))", &authorized, &challenge, NULL);
	if (!authorized) {
		deny(task, challenge ? "perform this operation without authentication"
				     : "perform this operation");
		return;
	}
	/* a yes given under rules that have changed since (an auth_admin_keep dialog answered
	 * while an administrator tightened them) answers this call only, and is not kept */
	if (self->ttl_us > 0 && d->generation == self->generation &&
	    !g_cancellable_is_cancelled(d->caller->cancellable)) {
		gint64 *expiry = g_new(gint64, 1);
		*expiry = g_get_monotonic_time() + self->ttl_us;
		g_hash_table_replace(d->caller->allowed, g_strdup(d->action), expiry);
	}
	g_task_return_boolean(task, TRUE);
}

static void
ask_polkit(GTask *task)
{
	TkmsAuthority *self = g_task_get_source_object(task);
	CheckData *d = g_task_get_task_data(task);
	GVariantBuilder subject_details;
	GCancellable *cancellable = NULL;

	/* a caller that left while its check waited is not asked about */
	if (g_cancellable_is_cancelled(d->caller->cancellable)) {
		deny(task, "perform this operation (the caller left the bus)");
		g_object_unref(task);
		return;
	}
	if (self->checks_in_flight >= MAX_CHECKS_IN_FLIGHT) {
		throttle(self, task);
		return;
	}
	/* the bus name, never a PID: PIDs can be recycled (CVE-2013-4288) */
	g_variant_builder_init(&subject_details, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&subject_details, "{sv}", "name",
			      g_variant_new_string(d->caller->sender));
	d->generation = self->generation;
	d->attempts++;
	self->checks_in_flight++;
	/* Only a check that may show a dialog is withdrawn when its caller leaves (polkitd then
	 * takes the dialog down). Cancelling the others saves polkitd nothing, and a cancelled
	 * call would still hold one of tkmsd's pending replies at the bus, plus one for the
	 * CancelCheckAuthorization, until polkitd answers, uncounted by checks_in_flight. */
	g_clear_pointer(&d->cancellation_id, g_free);
	if (d->allow_interaction) {
		Withdrawal *w = g_new0(Withdrawal, 1);

		d->cancellation_id =
			g_strdup_printf("tkms-%" G_GUINT64_FORMAT, ++self->cancellation_ids);
		w->connection = g_object_ref(self->connection);
		w->cancellation_id = g_strdup(d->cancellation_id);
		cancellable = d->caller->cancellable;
		d->cancel_handler = g_cancellable_connect(cancellable, G_CALLBACK(withdraw_check),
							  w, withdrawal_free);
	}
	/* an interactive check waits for a person: no timeout, as polkit's own client does */
	g_dbus_connection_call(
		self->connection, POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE, "CheckAuthorization",
		g_variant_new("((s@a{sv})sa{ss}us)", "system-bus-name",
			      g_variant_builder_end(&subject_details), d->action, NULL,
			      d->allow_interaction ? POLKIT_CHECK_ALLOW_INTERACTION : 0u,
			      d->cancellation_id ? d->cancellation_id : ""),
		G_VARIANT_TYPE("((bba{ss}))"), G_DBUS_CALL_FLAGS_NONE,
		d->allow_interaction ? G_MAXINT : -1, cancellable, check_cb, task);
}

static void
creds_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	CheckData *d = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) dict = NULL;
	guint32 uid, pid = 0;

	reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
	if (reply == NULL) {
		deny(task, "perform this operation (the caller's identity is unknown)");
		g_object_unref(task);
		return;
	}
	dict = g_variant_get_child_value(reply, 0);
	if (!g_variant_lookup(dict, "UnixUserID", "u", &uid)) {
		deny(task, "perform this operation (the caller has no Unix user)");
		g_object_unref(task);
		return;
	}
	g_variant_lookup(dict, "ProcessID", "u", &pid);
	d->caller->uid = uid;
	d->caller->pid = pid;
	d->caller->have_creds = TRUE;
	ask_polkit(task);
}

gboolean
tkms_authority_is_cached(TkmsAuthority *self, TkmsCaller *caller, const gchar *action)
{
	gint64 *expiry;
	if (!caller->have_creds)
		return FALSE;
	expiry = g_hash_table_lookup(caller->allowed, action);
	return expiry != NULL && *expiry > g_get_monotonic_time();
}

void
tkms_authority_check(TkmsAuthority *self, TkmsCaller *caller, const gchar *action,
		     gboolean allow_interaction, GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(self, NULL, callback, user_data);
	CheckData *d = g_new0(CheckData, 1);

	d->caller = tkms_caller_ref(caller);
	d->action = g_strdup(action);
	d->allow_interaction = allow_interaction;
	g_task_set_task_data(task, d, (GDestroyNotify)check_data_free);

	if (!caller->have_creds) {
		g_dbus_connection_call(
			self->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			"org.freedesktop.DBus", "GetConnectionCredentials",
			g_variant_new("(s)", caller->sender), G_VARIANT_TYPE("(a{sv})"),
			G_DBUS_CALL_FLAGS_NONE, -1, caller->cancellable, creds_cb, task);
		return;
	}
	if (tkms_authority_is_cached(self, caller, action)) {
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	ask_polkit(task);
}

gboolean
tkms_authority_check_finish(TkmsAuthority *self, GAsyncResult *result, GError **error)
{
	return g_task_propagate_boolean(G_TASK(result), error);
}

static void
tkms_authority_dispose(GObject *object)
{
	TkmsAuthority *self = TKMS_AUTHORITY(object);
	unsubscribe(self);
	g_clear_object(&self->connection);
	G_OBJECT_CLASS(tkms_authority_parent_class)->dispose(object);
}

static void
tkms_authority_finalize(GObject *object)
{
	TkmsAuthority *self = TKMS_AUTHORITY(object);
	g_hash_table_unref(self->callers);
	g_hash_table_unref(self->uid_in_flight);
	g_hash_table_unref(self->throttled);
	g_queue_clear(&self->turns);
	G_OBJECT_CLASS(tkms_authority_parent_class)->finalize(object);
}

static void
tkms_authority_class_init(TkmsAuthorityClass *klass)
{
	G_OBJECT_CLASS(klass)->dispose = tkms_authority_dispose;
	G_OBJECT_CLASS(klass)->finalize = tkms_authority_finalize;
}

static void
tkms_authority_init(TkmsAuthority *self)
{
	self->callers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					      (GDestroyNotify)tkms_caller_unref);
	self->uid_in_flight = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	self->throttled = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)g_queue_free);
}
