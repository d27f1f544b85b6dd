/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

#include "tkms-client-private.h"

/**
 * TkmsClient:
 *
 * A connection to tkmsd, the TPM-backed key manager (`org.tkms.KeyManager`).
 *
 * Each method of the D-Bus API has an asynchronous form (with a `_finish`) and a blocking
 * `_sync` form. Errors sent by the daemon arrive in the %TKMS_ERROR domain. A client is
 * cheap; it holds a proxy whose properties (TPM state, daemon version) follow the daemon.
 *
 * If tkmsd is not running, the bus is asked to start it (D-Bus activation).
 *
 * polkit authorizes every call. By default a call that polkit would only allow after asking
 * the user (for a password, through an authentication agent) fails with
 * %TKMS_ERROR_PERMISSION_DENIED; set #TkmsClient:allow-interactive-authorization in
 * programs that can wait for such a prompt.
 *
 * Wherever a method takes a key name, an administrator may write `OWNER:NAME` (OWNER a uid
 * or `system`) to use another owner's key, and tkms_client_list_all_keys() lists every
 * owner's keys; both need the polkit action `org.tkms.KeyManager.admin`.
 *
 * Since: 0.1
 */

/* TPM key generation (RSA above all) can take far longer than D-Bus's 25 s default. */
#define TKMS_CLIENT_CALL_TIMEOUT_MSEC (120 * 1000)

static void tkms_client_initable_iface_init(GInitableIface *iface);
static void tkms_client_async_initable_iface_init(GAsyncInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE(TkmsClient, tkms_client, G_TYPE_OBJECT,
			      G_IMPLEMENT_INTERFACE(G_TYPE_INITABLE,
						    tkms_client_initable_iface_init)
				      G_IMPLEMENT_INTERFACE(G_TYPE_ASYNC_INITABLE,
							    tkms_client_async_initable_iface_init))

enum {
	PROP_0,
	PROP_CONNECTION,
	PROP_NAME_OWNER,
	PROP_DAEMON_VERSION,
	PROP_TPM_AVAILABLE,
	PROP_TPM_MANUFACTURER,
	PROP_TPM_FIRMWARE_VERSION,
	PROP_TPM_LOCKED_OUT,
	PROP_TPM_LOCKOUT_COUNTER,
	PROP_ALLOW_INTERACTIVE_AUTHORIZATION,
	N_PROPS
};

static GParamSpec *props[N_PROPS];

/* The generated proxy notifies under the D-Bus property's hyphenated name. */
static const struct {
	const gchar *proxy_name;
	guint prop;
} proxy_props[] = {
	{"g-name-owner", PROP_NAME_OWNER},
	{"version", PROP_DAEMON_VERSION},
	{"tpm-available", PROP_TPM_AVAILABLE},
	{"tpm-manufacturer", PROP_TPM_MANUFACTURER},
	{"tpm-firmware-version", PROP_TPM_FIRMWARE_VERSION},
	{"tpm-locked-out", PROP_TPM_LOCKED_OUT},
	{"tpm-lockout-counter", PROP_TPM_LOCKOUT_COUNTER},
};

static void
on_proxy_notify(GObject *proxy, GParamSpec *pspec, gpointer user_data)
{
	TkmsClient *self = TKMS_CLIENT(user_data);

	for (guint i = 0; i < G_N_ELEMENTS(proxy_props); i++) {
		if (g_str_equal(pspec->name, proxy_props[i].proxy_name)) {
			g_object_notify_by_pspec(G_OBJECT(self), props[proxy_props[i].prop]);
			return;
		}
	}
}

static void
adopt_proxy(TkmsClient *self, TkmsDbusKeyManager *proxy)
{
	self->proxy = proxy;
	g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(proxy), TKMS_CLIENT_CALL_TIMEOUT_MSEC);
	g_signal_connect_object(proxy, "notify", G_CALLBACK(on_proxy_notify), self, 0);
}

static gboolean
tkms_client_initable_init(GInitable *initable, GCancellable *cancellable, GError **error)
{
	TkmsClient *self = TKMS_CLIENT(initable);
	TkmsDbusKeyManager *proxy;

	if (self->proxy != NULL)
		return TRUE;
	if (self->connection == NULL) {
		self->connection = g_bus_get_sync(G_BUS_TYPE_SYSTEM, cancellable, error);
		if (self->connection == NULL)
			return FALSE;
	}
	/* no DO_NOT_AUTO_START: a client is what makes the bus activate tkmsd */
	proxy = tkms_dbus_key_manager_proxy_new_sync(self->connection, G_DBUS_PROXY_FLAGS_NONE,
						     TKMS_BUS_NAME, TKMS_OBJECT_PATH, cancellable,
						     error);
	if (proxy == NULL)
		return FALSE;
	adopt_proxy(self, proxy);
	return TRUE;
}

static void
on_proxy_ready(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	TkmsClient *self = g_task_get_source_object(task);
	TkmsDbusKeyManager *proxy;
	GError *error = NULL;

	proxy = tkms_dbus_key_manager_proxy_new_finish(res, &error);
	if (proxy == NULL) {
		g_task_return_error(task, error);
		return;
	}
	adopt_proxy(self, proxy);
	g_task_return_boolean(task, TRUE);
}

static void
start_proxy(GTask *task)
{
	TkmsClient *self = g_task_get_source_object(task);

	tkms_dbus_key_manager_proxy_new(self->connection, G_DBUS_PROXY_FLAGS_NONE, TKMS_BUS_NAME,
					TKMS_OBJECT_PATH, g_task_get_cancellable(task),
					on_proxy_ready, task);
}

static void
on_bus_ready(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *task = user_data;
	TkmsClient *self = g_task_get_source_object(task);
	GError *error = NULL;

	self->connection = g_bus_get_finish(res, &error);
	if (self->connection == NULL) {
		g_task_return_error(task, error);
		g_object_unref(task);
		return;
	}
	start_proxy(task);
}

static void
tkms_client_init_async(GAsyncInitable *initable, int io_priority, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsClient *self = TKMS_CLIENT(initable);
	GTask *task = g_task_new(self, cancellable, callback, user_data);

	g_task_set_source_tag(task, tkms_client_init_async);
	g_task_set_priority(task, io_priority);
	if (self->proxy != NULL) {
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
	} else if (self->connection == NULL) {
		g_bus_get(G_BUS_TYPE_SYSTEM, cancellable, on_bus_ready, task);
	} else {
		start_proxy(task);
	}
}

static gboolean
tkms_client_init_finish(GAsyncInitable *initable, GAsyncResult *res, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(res, initable), FALSE);
	return g_task_propagate_boolean(G_TASK(res), error);
}

static void
tkms_client_initable_iface_init(GInitableIface *iface)
{
	iface->init = tkms_client_initable_init;
}

static void
tkms_client_async_initable_iface_init(GAsyncInitableIface *iface)
{
	iface->init_async = tkms_client_init_async;
	iface->init_finish = tkms_client_init_finish;
}

static void
tkms_client_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	TkmsClient *self = TKMS_CLIENT(object);

	switch (prop_id) {
	case PROP_CONNECTION:
		g_value_set_object(value, self->connection);
		break;
	case PROP_NAME_OWNER:
		g_value_take_string(value, tkms_client_dup_name_owner(self));
		break;
	case PROP_DAEMON_VERSION:
		g_value_set_string(value, tkms_client_get_daemon_version(self));
		break;
	case PROP_TPM_AVAILABLE:
		g_value_set_boolean(value, tkms_client_get_tpm_available(self));
		break;
	case PROP_TPM_MANUFACTURER:
		g_value_set_string(value, tkms_client_get_tpm_manufacturer(self));
		break;
	case PROP_TPM_FIRMWARE_VERSION:
		g_value_set_string(value, tkms_client_get_tpm_firmware_version(self));
		break;
	case PROP_TPM_LOCKED_OUT:
		g_value_set_boolean(value, tkms_client_get_tpm_locked_out(self));
		break;
	case PROP_TPM_LOCKOUT_COUNTER:
		g_value_set_uint(value, tkms_client_get_tpm_lockout_counter(self));
		break;
	case PROP_ALLOW_INTERACTIVE_AUTHORIZATION:
		g_value_set_boolean(value, self->allow_interactive_authorization);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
tkms_client_set_property(GObject *object, guint prop_id, const GValue *value,
			 GParamSpec *pspec)
{
	TkmsClient *self = TKMS_CLIENT(object);

	switch (prop_id) {
	case PROP_CONNECTION:
		self->connection = g_value_dup_object(value);
		break;
	case PROP_ALLOW_INTERACTIVE_AUTHORIZATION:
		tkms_client_set_allow_interactive_authorization(self, g_value_get_boolean(value));
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
tkms_client_dispose(GObject *object)
{
	TkmsClient *self = TKMS_CLIENT(object);

	g_clear_object(&self->proxy);
	g_clear_object(&self->connection);
	G_OBJECT_CLASS(tkms_client_parent_class)->dispose(object);
}

static void
tkms_client_class_init(TkmsClientClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

	object_class->get_property = tkms_client_get_property;
	object_class->set_property = tkms_client_set_property;
	object_class->dispose = tkms_client_dispose;

	/**
	 * TkmsClient:connection:
	 *
	 * The bus tkmsd is reached on; %NULL at construction means the system bus.
	 *
	 * Since: 0.1
	 */
	props[PROP_CONNECTION] = g_param_spec_object(
		"connection", NULL, NULL, G_TYPE_DBUS_CONNECTION,
		G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
	/**
	 * TkmsClient:name-owner:
	 *
	 * The daemon's unique bus name; %NULL while tkmsd is not running.
	 *
	 * Since: 0.1
	 */
	props[PROP_NAME_OWNER] = g_param_spec_string("name-owner", NULL, NULL, NULL, ro);
	/**
	 * TkmsClient:daemon-version:
	 *
	 * The daemon's `Version` property.
	 *
	 * Since: 0.1
	 */
	props[PROP_DAEMON_VERSION] = g_param_spec_string("daemon-version", NULL, NULL, NULL, ro);
	/**
	 * TkmsClient:tpm-available:
	 *
	 * Whether the daemon can reach the TPM right now (`TpmAvailable`).
	 *
	 * Since: 0.1
	 */
	props[PROP_TPM_AVAILABLE] = g_param_spec_boolean("tpm-available", NULL, NULL, FALSE, ro);
	/**
	 * TkmsClient:tpm-manufacturer:
	 *
	 * The TPM vendor id (`TpmManufacturer`).
	 *
	 * Since: 0.1
	 */
	props[PROP_TPM_MANUFACTURER] =
		g_param_spec_string("tpm-manufacturer", NULL, NULL, NULL, ro);
	/**
	 * TkmsClient:tpm-firmware-version:
	 *
	 * The TPM firmware version (`TpmFirmwareVersion`).
	 *
	 * Since: 0.1
	 */
	props[PROP_TPM_FIRMWARE_VERSION] =
		g_param_spec_string("tpm-firmware-version", NULL, NULL, NULL, ro);
	/**
	 * TkmsClient:tpm-locked-out:
	 *
	 * Whether the TPM is in dictionary-attack lockout (`TpmLockedOut`).
	 *
	 * Since: 0.1
	 */
	props[PROP_TPM_LOCKED_OUT] =
		g_param_spec_boolean("tpm-locked-out", NULL, NULL, FALSE, ro);
	/**
	 * TkmsClient:tpm-lockout-counter:
	 *
	 * The TPM's dictionary-attack failure counter (`TpmLockoutCounter`).
	 *
	 * Since: 0.1
	 */
	props[PROP_TPM_LOCKOUT_COUNTER] =
		g_param_spec_uint("tpm-lockout-counter", NULL, NULL, 0, G_MAXUINT, 0, ro);
	/**
	 * TkmsClient:allow-interactive-authorization:
	 *
	 * Whether polkit may ask the user to authenticate (through an authentication agent)
	 * before it answers for a call of this client. Every call started while it is %TRUE
	 * carries %G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, and tkmsd passes the
	 * permission on to polkit; the call then may take as long as the user needs.
	 *
	 * %FALSE (the default) suits services and scripts: an answer that needs a prompt is
	 * %TKMS_ERROR_PERMISSION_DENIED at once. Set it in programs that talk to a person, for
	 * example a command line tool run on a terminal. It is the caller's permission, not a
	 * request: without an agent for the caller's session polkit still refuses.
	 *
	 * Since: 0.1
	 */
	props[PROP_ALLOW_INTERACTIVE_AUTHORIZATION] = g_param_spec_boolean(
		"allow-interactive-authorization", NULL, NULL, FALSE,
		G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, N_PROPS, props);

	/* Remote org.tkms.KeyManager.Error.* only become TKMS_ERROR codes once the domain is
	 * registered, which must happen before the first reply arrives. */
	(void)tkms_error_quark();
}

static void
tkms_client_init(TkmsClient *self)
{
}

/**
 * tkms_client_new:
 * @connection: (nullable): the bus tkmsd is on, or %NULL for the system bus
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the client is ready
 * @user_data: (closure): data for @callback
 *
 * Creates a client asynchronously; finish with tkms_client_new_finish().
*
 * Since: 0.1
 */
void
tkms_client_new(GDBusConnection *connection, GCancellable *cancellable,
		GAsyncReadyCallback callback, gpointer user_data)
{
	g_return_if_fail(connection == NULL || G_IS_DBUS_CONNECTION(connection));
	g_async_initable_new_async(TKMS_TYPE_CLIENT, G_PRIORITY_DEFAULT, cancellable, callback,
				   user_data, "connection", connection, NULL);
}

/**
 * tkms_client_new_finish:
 * @result: the #GAsyncResult given to the callback of tkms_client_new()
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a new #TkmsClient, or %NULL with @error set
*
 * Since: 0.1
 */
TkmsClient *
tkms_client_new_finish(GAsyncResult *result, GError **error)
{
	g_autoptr(GObject) source = g_async_result_get_source_object(result);
	GObject *object;

	g_return_val_if_fail(G_IS_ASYNC_INITABLE(source), NULL);
	object = g_async_initable_new_finish(G_ASYNC_INITABLE(source), result, error);
	return object != NULL ? TKMS_CLIENT(object) : NULL;
}

/**
 * tkms_client_new_sync:
 * @connection: (nullable): the bus tkmsd is on, or %NULL for the system bus
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Creates a client, blocking until the daemon's properties are loaded. A daemon that is
 * not running is not an error here; calls then fail with %G_DBUS_ERROR_SERVICE_UNKNOWN.
 *
 * Returns: (transfer full): a new #TkmsClient, or %NULL with @error set
*
 * Since: 0.1
 */
TkmsClient *
tkms_client_new_sync(GDBusConnection *connection, GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(connection == NULL || G_IS_DBUS_CONNECTION(connection), NULL);
	return g_initable_new(TKMS_TYPE_CLIENT, cancellable, error, "connection", connection,
			      NULL);
}

/**
 * tkms_client_new_for_system_bus_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Like tkms_client_new_sync() on the system bus, where tkmsd normally runs.
 *
 * Returns: (transfer full): a new #TkmsClient, or %NULL with @error set
*
 * Since: 0.1
 */
TkmsClient *
tkms_client_new_for_system_bus_sync(GCancellable *cancellable, GError **error)
{
	return tkms_client_new_sync(NULL, cancellable, error);
}

/**
 * tkms_client_get_connection:
 * @self: a #TkmsClient
 *
 * Returns: (transfer none): the bus connection the client uses
*
 * Since: 0.1
 */
GDBusConnection *
tkms_client_get_connection(TkmsClient *self)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self), NULL);
	return self->connection;
}

/**
 * tkms_client_dup_name_owner:
 * @self: a #TkmsClient
 *
 * Returns: (transfer full) (nullable): the daemon's unique bus name, or %NULL when tkmsd
 *   is not running
*
 * Since: 0.1
 */
gchar *
tkms_client_dup_name_owner(TkmsClient *self)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self), NULL);
	if (self->proxy == NULL)
		return NULL;
	return g_dbus_proxy_get_name_owner(G_DBUS_PROXY(self->proxy));
}

/* The getters below return the proxy's cached values: valid until the next
 * PropertiesChanged, and only on the thread (main context) that created the client. */

/**
 * tkms_client_get_daemon_version:
 * @self: a #TkmsClient
 *
 * Returns: (nullable): the daemon's version, or %NULL if it is not running
*
 * Since: 0.1
 */
const gchar *
tkms_client_get_daemon_version(TkmsClient *self)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self), NULL);
	return self->proxy != NULL ? tkms_dbus_key_manager_get_version(self->proxy) : NULL;
}

/**
 * tkms_client_get_tpm_available:
 * @self: a #TkmsClient
 *
 * Returns: whether the daemon can reach the TPM right now
*
 * Since: 0.1
 */
gboolean
tkms_client_get_tpm_available(TkmsClient *self)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self), FALSE);
	return self->proxy != NULL && tkms_dbus_key_manager_get_tpm_available(self->proxy);
}

/**
 * tkms_client_get_tpm_manufacturer:
 * @self: a #TkmsClient
 *
 * Returns: (nullable): the TPM vendor id, e.g. "IBM"
*
 * Since: 0.1
 */
const gchar *
tkms_client_get_tpm_manufacturer(TkmsClient *self)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self), NULL);
	return self->proxy != NULL ? tkms_dbus_key_manager_get_tpm_manufacturer(self->proxy)
				   : NULL;
}

/**
 * tkms_client_get_tpm_firmware_version:
 * @self: a #TkmsClient
 *
 * Returns: (nullable): the TPM firmware version as "major.minor.x.y"
*
 * Since: 0.1
 */
const gchar *
tkms_client_get_tpm_firmware_version(TkmsClient *self)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self), NULL);
	return self->proxy != NULL ? tkms_dbus_key_manager_get_tpm_firmware_version(self->proxy)
				   : NULL;
}

/**
 * tkms_client_get_tpm_locked_out:
 * @self: a #TkmsClient
 *
 * Returns: whether the TPM is in dictionary-attack lockout
*
 * Since: 0.1
 */
gboolean
tkms_client_get_tpm_locked_out(TkmsClient *self)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self), FALSE);
	return self->proxy != NULL && tkms_dbus_key_manager_get_tpm_locked_out(self->proxy);
}

/**
 * tkms_client_get_tpm_lockout_counter:
 * @self: a #TkmsClient
 *
 * Returns: the TPM's dictionary-attack failure counter
*
 * Since: 0.1
 */
guint
tkms_client_get_tpm_lockout_counter(TkmsClient *self)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self), 0);
	return self->proxy != NULL ? tkms_dbus_key_manager_get_tpm_lockout_counter(self->proxy)
				   : 0;
}

/**
 * tkms_client_set_allow_interactive_authorization:
 * @self: a #TkmsClient
 * @allow: whether polkit may ask the user before it answers
 *
 * Sets #TkmsClient:allow-interactive-authorization. It applies to calls started afterwards.
*
 * Since: 0.1
 */
void
tkms_client_set_allow_interactive_authorization(TkmsClient *self, gboolean allow)
{
	g_return_if_fail(TKMS_IS_CLIENT(self));

	allow = !!allow;
	if (self->allow_interactive_authorization == allow)
		return;
	self->allow_interactive_authorization = allow;
	g_object_notify_by_pspec(G_OBJECT(self), props[PROP_ALLOW_INTERACTIVE_AUTHORIZATION]);
}

/**
 * tkms_client_get_allow_interactive_authorization:
 * @self: a #TkmsClient
 *
 * Returns: whether calls allow polkit to ask the user
 *   (#TkmsClient:allow-interactive-authorization)
*
 * Since: 0.1
 */
gboolean
tkms_client_get_allow_interactive_authorization(TkmsClient *self)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self), FALSE);
	return self->allow_interactive_authorization;
}
