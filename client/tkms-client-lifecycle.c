/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

/* The life cycle of key versions: RotateKey, SetPrimaryVersion, SetKeyVersionState,
 * SetRotationPolicy, DestroyKeyVersion, CancelKeyDestruction.
 * Each method has the same three forms; see tkms-client-call.c for the shared parts. */

#include "tkms-client-private.h"

/* The generated finish of a method without out-arguments. */
typedef gboolean (*TkmsVoidFinish)(TkmsDbusKeyManager *proxy, GAsyncResult *res,
				   GError **error);

/* Task data: a TkmsVoidFinish; the task's result is TRUE. */
static void
on_void_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	TkmsVoidFinish finish = (TkmsVoidFinish)g_task_get_task_data(task);
	GError *error = NULL;

	if (!finish(TKMS_DBUS_KEY_MANAGER(source), res, &error)) {
		_tkms_error_strip(&error);
		g_task_return_error(task, error);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static gboolean
void_finish(TkmsClient *self, GAsyncResult *result, gpointer source_tag, GError **error)
{
	if (!_tkms_task_check(self, result, source_tag))
		return FALSE;
	return g_task_propagate_boolean(G_TASK(result), error);
}

static void
on_rotate_key_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	GError *error = NULL;
	guint version = 0;

	if (!tkms_dbus_key_manager_call_rotate_key_finish(TKMS_DBUS_KEY_MANAGER(source), &version,
							  res, &error)) {
		_tkms_error_strip(&error);
		g_task_return_error(task, error);
		return;
	}
	/* a version is never 0, so 0 can carry "failed" through the task */
	g_task_return_int(task, version);
}

/**
 * tkms_client_rotate_key:
 * @self: a #TkmsClient
 * @name: the key's name
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Makes a new version of the key in the TPM and makes it the primary (D-Bus `RotateKey`).
 * The previous primary stays `active` (it still decrypts and verifies) until deactivated.
 * Finish with tkms_client_rotate_key_finish().
 *
 * For a `password` key this starts a rotation and the version is the pending one: tkmsd
 * runs the policy's hook and switches the current password by itself; follow the rotation
 * with tkms_key_info_get_rotation_step() and tkms_key_info_get_last_rotation_result().
 *
 * Since: 0.2
 */
void
tkms_client_rotate_key(TkmsClient *self, const gchar *name, GCancellable *cancellable,
		       GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	task = _tkms_task_new(self, tkms_client_rotate_key, "RotateKey", NULL, cancellable,
			      callback, user_data);
	tkms_dbus_key_manager_call_rotate_key(self->proxy, name, _tkms_call_flags(self),
					      TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
					      on_rotate_key_reply, task);
}

/**
 * tkms_client_rotate_key_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: the new version (now the primary; of a `password` key, the pending version), or 0
 *   with @error set
 *
 * Since: 0.2
 */
guint
tkms_client_rotate_key_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	gssize version;

	if (!_tkms_task_check(self, result, tkms_client_rotate_key))
		return 0;
	version = g_task_propagate_int(G_TASK(result), error);
	return version > 0 ? (guint)version : 0;
}

/**
 * tkms_client_rotate_key_sync:
 * @self: a #TkmsClient
 * @name: the key's name
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_rotate_key().
 *
 * Returns: the new version (now the primary; of a `password` key, the pending version), or 0
 *   with @error set
 *
 * Since: 0.2
 */
guint
tkms_client_rotate_key_sync(TkmsClient *self, const gchar *name, GCancellable *cancellable,
			    GError **error)
{
	guint version = 0;

	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, 0);
	g_return_val_if_fail(name != NULL, 0);

	if (!_tkms_sync_done(tkms_dbus_key_manager_call_rotate_key_sync(
				     self->proxy, name, _tkms_call_flags(self),
				     TKMS_CALL_TIMEOUT_DEFAULT, &version, cancellable, error),
			     error))
		return 0;
	return version;
}

/**
 * tkms_client_set_primary_version:
 * @self: a #TkmsClient
 * @name: the key's name
 * @version: an `active` version of the key
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Makes @version the one that protects new data, e.g. to roll back a rotation (D-Bus
 * `SetPrimaryVersion`); %TKMS_ERROR_KEY_STATE if it is not `active`. Finish with
 * tkms_client_set_primary_version_finish().
 *
 * Since: 0.2
 */
void
tkms_client_set_primary_version(TkmsClient *self, const gchar *name, guint version,
				GCancellable *cancellable, GAsyncReadyCallback callback,
				gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	task = _tkms_task_new(self, tkms_client_set_primary_version, "SetPrimaryVersion",
			      G_CALLBACK(tkms_dbus_key_manager_call_set_primary_version_finish),
			      cancellable, callback, user_data);
	tkms_dbus_key_manager_call_set_primary_version(self->proxy, name, version,
						       _tkms_call_flags(self),
						       TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
						       on_void_reply, task);
}

/**
 * tkms_client_set_primary_version_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_set_primary_version_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return void_finish(self, result, tkms_client_set_primary_version, error);
}

/**
 * tkms_client_set_primary_version_sync:
 * @self: a #TkmsClient
 * @name: the key's name
 * @version: an `active` version of the key
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_set_primary_version().
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_set_primary_version_sync(TkmsClient *self, const gchar *name, guint version,
				     GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);

	return _tkms_sync_done(tkms_dbus_key_manager_call_set_primary_version_sync(
				       self->proxy, name, version, _tkms_call_flags(self),
				       TKMS_CALL_TIMEOUT_DEFAULT, cancellable, error),
			       error);
}

/**
 * tkms_client_set_key_version_state:
 * @self: a #TkmsClient
 * @name: the key's name
 * @version: the version to change
 * @state: `active` (resume), `deactivated` (process only), `suspended` (nothing until
 *   resumed) or `compromised` (never protects again; final)
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Changes the state of one version (D-Bus `SetKeyVersionState`). The primary version
 * cannot leave `active`: make another version primary or rotate first; a refused change is
 * %TKMS_ERROR_KEY_STATE. Finish with tkms_client_set_key_version_state_finish().
 *
 * Since: 0.2
 */
void
tkms_client_set_key_version_state(TkmsClient *self, const gchar *name, guint version,
				  const gchar *state, GCancellable *cancellable,
				  GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(state != NULL);

	task = _tkms_task_new(self, tkms_client_set_key_version_state, "SetKeyVersionState",
			      G_CALLBACK(tkms_dbus_key_manager_call_set_key_version_state_finish),
			      cancellable, callback, user_data);
	tkms_dbus_key_manager_call_set_key_version_state(self->proxy, name, version, state,
							 _tkms_call_flags(self),
							 TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
							 on_void_reply, task);
}

/**
 * tkms_client_set_key_version_state_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_set_key_version_state_finish(TkmsClient *self, GAsyncResult *result,
					 GError **error)
{
	return void_finish(self, result, tkms_client_set_key_version_state, error);
}

/**
 * tkms_client_set_key_version_state_sync:
 * @self: a #TkmsClient
 * @name: the key's name
 * @version: the version to change
 * @state: `active`, `deactivated`, `suspended` or `compromised`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_set_key_version_state().
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_set_key_version_state_sync(TkmsClient *self, const gchar *name, guint version,
				       const gchar *state, GCancellable *cancellable,
				       GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);
	g_return_val_if_fail(state != NULL, FALSE);

	return _tkms_sync_done(tkms_dbus_key_manager_call_set_key_version_state_sync(
				       self->proxy, name, version, state, _tkms_call_flags(self),
				       TKMS_CALL_TIMEOUT_DEFAULT, cancellable, error),
			       error);
}

/* The policy dictionary: only what is set, so that all zeros is the empty dictionary that
 * removes the policy. */
static GVariant *
policy_new(guint64 period, guint64 max_uses, guint64 deactivate_after, guint64 destroy_after)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	if (period != 0)
		g_variant_builder_add(&b, "{sv}", "period", g_variant_new_uint64(period));
	if (max_uses != 0)
		g_variant_builder_add(&b, "{sv}", "max-uses", g_variant_new_uint64(max_uses));
	if (deactivate_after != 0)
		g_variant_builder_add(&b, "{sv}", "deactivate-after",
				      g_variant_new_uint64(deactivate_after));
	if (destroy_after != 0)
		g_variant_builder_add(&b, "{sv}", "destroy-after",
				      g_variant_new_uint64(destroy_after));
	return g_variant_builder_end(&b);
}

/**
 * tkms_client_set_rotation_policy:
 * @self: a #TkmsClient
 * @name: the key's name
 * @period: seconds between automatic rotations; 0 for none
 * @max_uses: rotate when the primary has protected this many messages (at most 2^32 for
 *   `aes-256-gcm`); 0 for none
 * @deactivate_after: deactivate a version this many seconds after it stops being the
 *   primary; 0 for never
 * @destroy_after: schedule the destruction of a version this many seconds after it is
 *   deactivated (with the daemon's waiting period); 0 for never
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Replaces the key's rotation policy (D-Bus `SetRotationPolicy`), which tkmsd then runs by
 * itself. All four 0 remove the policy. Finish with
 * tkms_client_set_rotation_policy_finish().
 *
 * Since: 0.2
 */
void
tkms_client_set_rotation_policy(TkmsClient *self, const gchar *name, guint64 period,
				guint64 max_uses, guint64 deactivate_after, guint64 destroy_after,
				GCancellable *cancellable, GAsyncReadyCallback callback,
				gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	task = _tkms_task_new(self, tkms_client_set_rotation_policy, "SetRotationPolicy",
			      G_CALLBACK(tkms_dbus_key_manager_call_set_rotation_policy_finish),
			      cancellable, callback, user_data);
	tkms_dbus_key_manager_call_set_rotation_policy(
		self->proxy, name, policy_new(period, max_uses, deactivate_after, destroy_after),
		_tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, cancellable, on_void_reply,
		task);
}

/**
 * tkms_client_set_rotation_policy_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_set_rotation_policy_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return void_finish(self, result, tkms_client_set_rotation_policy, error);
}

/**
 * tkms_client_set_rotation_policy_sync:
 * @self: a #TkmsClient
 * @name: the key's name
 * @period: seconds between automatic rotations; 0 for none
 * @max_uses: rotate when the primary has protected this many messages; 0 for none
 * @deactivate_after: seconds after a version stops being the primary; 0 for never
 * @destroy_after: seconds after a version is deactivated; 0 for never
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_set_rotation_policy(); all four 0 remove the policy.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_set_rotation_policy_sync(TkmsClient *self, const gchar *name, guint64 period,
				     guint64 max_uses, guint64 deactivate_after,
				     guint64 destroy_after, GCancellable *cancellable,
				     GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);

	return _tkms_sync_done(tkms_dbus_key_manager_call_set_rotation_policy_sync(
				       self->proxy, name,
				       policy_new(period, max_uses, deactivate_after,
						  destroy_after),
				       _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
				       cancellable, error),
			       error);
}

/**
 * tkms_client_set_rotation_policy_full:
 * @self: a #TkmsClient
 * @name: the key's name
 * @policy: (nullable): the policy, an `a{sv}` as SetRotationPolicy takes it: `period`,
 *   `max-uses`, `deactivate-after`, `destroy-after` (t each, 0 or absent for none) and, for
 *   a `password` key, `hook` (s, a file name in tkmsd's hook directory, empty for none;
 *   setting or changing it needs org.tkms.KeyManager.admin). %NULL or an empty dictionary
 *   removes the policy. A floating reference is consumed
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Replaces the key's rotation policy with @policy (D-Bus `SetRotationPolicy`), which tkmsd
 * then runs by itself. Unlike tkms_client_set_rotation_policy() this passes every member,
 * including those it has no argument for: start from the `policy` member of
 * tkms_key_info_get_variant() to change one member and keep the others. Finish with
 * tkms_client_set_rotation_policy_full_finish().
 *
 * Since: 0.2
 */
void
tkms_client_set_rotation_policy_full(TkmsClient *self, const gchar *name, GVariant *policy,
				     GCancellable *cancellable, GAsyncReadyCallback callback,
				     gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);
	g_return_if_fail(policy == NULL || g_variant_is_of_type(policy, G_VARIANT_TYPE_VARDICT));

	task = _tkms_task_new(self, tkms_client_set_rotation_policy_full, "SetRotationPolicy",
			      G_CALLBACK(tkms_dbus_key_manager_call_set_rotation_policy_finish),
			      cancellable, callback, user_data);
	tkms_dbus_key_manager_call_set_rotation_policy(
		self->proxy, name, _tkms_options_or_empty(policy), _tkms_call_flags(self),
		TKMS_CALL_TIMEOUT_DEFAULT, cancellable, on_void_reply, task);
}

/**
 * tkms_client_set_rotation_policy_full_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_set_rotation_policy_full_finish(TkmsClient *self, GAsyncResult *result,
					    GError **error)
{
	return void_finish(self, result, tkms_client_set_rotation_policy_full, error);
}

/**
 * tkms_client_set_rotation_policy_full_sync:
 * @self: a #TkmsClient
 * @name: the key's name
 * @policy: (nullable): the policy (`a{sv}`), as for tkms_client_set_rotation_policy_full();
 *   %NULL or empty removes it. A floating reference is consumed
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_set_rotation_policy_full().
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_set_rotation_policy_full_sync(TkmsClient *self, const gchar *name,
					  GVariant *policy, GCancellable *cancellable,
					  GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);
	g_return_val_if_fail(policy == NULL ||
				     g_variant_is_of_type(policy, G_VARIANT_TYPE_VARDICT),
			     FALSE);

	return _tkms_sync_done(tkms_dbus_key_manager_call_set_rotation_policy_sync(
				       self->proxy, name, _tkms_options_or_empty(policy),
				       _tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT,
				       cancellable, error),
			       error);
}

/**
 * tkms_client_destroy_key_version:
 * @self: a #TkmsClient
 * @name: the key's name
 * @version: a version that is not the primary
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Schedules the destruction of one version after the daemon's waiting period (D-Bus
 * `DestroyKeyVersion`); tkms_client_cancel_key_destruction() undoes it until then. The
 * version's `destroy-at` (tkms_key_version_info_get_destroy_at()) says when. Finish with
 * tkms_client_destroy_key_version_finish().
 *
 * Since: 0.2
 */
void
tkms_client_destroy_key_version(TkmsClient *self, const gchar *name, guint version,
				GCancellable *cancellable, GAsyncReadyCallback callback,
				gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	task = _tkms_task_new(self, tkms_client_destroy_key_version, "DestroyKeyVersion",
			      G_CALLBACK(tkms_dbus_key_manager_call_destroy_key_version_finish),
			      cancellable, callback, user_data);
	tkms_dbus_key_manager_call_destroy_key_version(self->proxy, name, version,
						       _tkms_call_flags(self),
						       TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
						       on_void_reply, task);
}

/**
 * tkms_client_destroy_key_version_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_destroy_key_version_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	return void_finish(self, result, tkms_client_destroy_key_version, error);
}

/**
 * tkms_client_destroy_key_version_sync:
 * @self: a #TkmsClient
 * @name: the key's name
 * @version: a version that is not the primary
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_destroy_key_version().
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_destroy_key_version_sync(TkmsClient *self, const gchar *name, guint version,
				     GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);

	return _tkms_sync_done(tkms_dbus_key_manager_call_destroy_key_version_sync(
				       self->proxy, name, version, _tkms_call_flags(self),
				       TKMS_CALL_TIMEOUT_DEFAULT, cancellable, error),
			       error);
}

/**
 * tkms_client_cancel_key_destruction:
 * @self: a #TkmsClient
 * @name: the key's name
 * @version: a `destroy-scheduled` version, or 0 for every such version of the key
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Restores the state each version had before its destruction was scheduled (D-Bus
 * `CancelKeyDestruction`); %TKMS_ERROR_KEY_STATE if nothing is scheduled. Finish with
 * tkms_client_cancel_key_destruction_finish().
 *
 * Since: 0.2
 */
void
tkms_client_cancel_key_destruction(TkmsClient *self, const gchar *name, guint version,
				   GCancellable *cancellable, GAsyncReadyCallback callback,
				   gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);
	g_return_if_fail(name != NULL);

	task = _tkms_task_new(self, tkms_client_cancel_key_destruction, "CancelKeyDestruction",
			      G_CALLBACK(tkms_dbus_key_manager_call_cancel_key_destruction_finish),
			      cancellable, callback, user_data);
	tkms_dbus_key_manager_call_cancel_key_destruction(self->proxy, name, version,
							  _tkms_call_flags(self),
							  TKMS_CALL_TIMEOUT_DEFAULT, cancellable,
							  on_void_reply, task);
}

/**
 * tkms_client_cancel_key_destruction_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_cancel_key_destruction_finish(TkmsClient *self, GAsyncResult *result,
					  GError **error)
{
	return void_finish(self, result, tkms_client_cancel_key_destruction, error);
}

/**
 * tkms_client_cancel_key_destruction_sync:
 * @self: a #TkmsClient
 * @name: the key's name
 * @version: a `destroy-scheduled` version, or 0 for every such version of the key
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_cancel_key_destruction().
 *
 * Returns: %TRUE on success, %FALSE with @error set
 *
 * Since: 0.2
 */
gboolean
tkms_client_cancel_key_destruction_sync(TkmsClient *self, const gchar *name, guint version,
					GCancellable *cancellable, GError **error)
{
	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, FALSE);
	g_return_val_if_fail(name != NULL, FALSE);

	return _tkms_sync_done(tkms_dbus_key_manager_call_cancel_key_destruction_sync(
				       self->proxy, name, version, _tkms_call_flags(self),
				       TKMS_CALL_TIMEOUT_DEFAULT, cancellable, error),
			       error);
}
