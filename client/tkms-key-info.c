/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

#include "tkms-key-info.h"

/**
 * TkmsKeyInfo:
 *
 * What tkmsd tells about a key: the key info dictionary of the D-Bus API (`a{sv}`) as an
 * object with typed properties, so that bindings need not unpack a #GVariant. Members that
 * a newer daemon adds stay readable through tkms_key_info_get_variant().
 *
 * tkms_client_lookup_key(), tkms_client_generate_key(), tkms_client_list_keys_page(),
 * tkms_client_list_all_keys_page() and tkms_client_collect_keys() return them.
 *
 * Since: 0.2
 */

struct _TkmsKeyInfo {
	GObject parent_instance;

	GVariant *dict;
	/* the strings point into @dict */
	const gchar *name;
	const gchar *type;
	const gchar *protection;
	const gchar *description;
	guint owner;
	guint primary_version;
	guint64 created;
	/* the rotation policy; 0 is none */
	guint64 period;
	guint64 max_uses;
	guint64 deactivate_after;
	guint64 destroy_after;
	guint64 next_rotation;
	GArray *pcrs;
	GPtrArray *versions;
	/* password keys; the strings point into @dict, NULL when absent */
	const gchar *hook;
	guint password_length;
	const gchar *password_charset;
	const gchar *password_exclude;
	const gchar *rotation_step;
	guint rotation_version;
	guint64 rotation_started;
	const gchar *last_result;
	const gchar *last_step;
	guint64 last_time;
	guint last_version;
	const gchar *last_reason;
	guint64 last_next_retry;
};

G_DEFINE_FINAL_TYPE(TkmsKeyInfo, tkms_key_info, G_TYPE_OBJECT)

enum {
	PROP_0,
	PROP_NAME,
	PROP_OWNER,
	PROP_TYPE,
	PROP_PROTECTION,
	PROP_CREATED,
	PROP_PRIMARY_VERSION,
	PROP_STATE,
	PROP_DESCRIPTION,
	PROP_PCRS,
	PROP_VERSIONS,
	PROP_ROTATION_PERIOD,
	PROP_MAX_USES,
	PROP_DEACTIVATE_AFTER,
	PROP_DESTROY_AFTER,
	PROP_NEXT_ROTATION,
	PROP_DESTROY_AT,
	PROP_ROTATION_HOOK,
	PROP_PASSWORD_LENGTH,
	PROP_PASSWORD_CHARSET,
	PROP_PASSWORD_EXCLUDE,
	PROP_ROTATION_STEP,
	PROP_ROTATION_VERSION,
	PROP_ROTATION_STARTED,
	PROP_LAST_ROTATION_RESULT,
	PROP_LAST_ROTATION_STEP,
	PROP_LAST_ROTATION_TIME,
	PROP_LAST_ROTATION_VERSION,
	PROP_LAST_ROTATION_REASON,
	PROP_LAST_ROTATION_NEXT_RETRY,
	N_PROPS
};

static GParamSpec *props[N_PROPS];

static void
tkms_key_info_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	TkmsKeyInfo *self = TKMS_KEY_INFO(object);

	switch (prop_id) {
	case PROP_NAME:
		g_value_set_string(value, self->name);
		break;
	case PROP_OWNER:
		g_value_set_uint(value, self->owner);
		break;
	case PROP_TYPE:
		g_value_set_string(value, self->type);
		break;
	case PROP_PROTECTION:
		g_value_set_string(value, self->protection);
		break;
	case PROP_CREATED:
		g_value_set_uint64(value, self->created);
		break;
	case PROP_PRIMARY_VERSION:
		g_value_set_uint(value, self->primary_version);
		break;
	case PROP_STATE:
		g_value_set_string(value, tkms_key_info_get_state(self));
		break;
	case PROP_DESCRIPTION:
		g_value_set_string(value, self->description);
		break;
	case PROP_PCRS:
		g_value_take_variant(value, g_variant_new_fixed_array(
						    G_VARIANT_TYPE_UINT32, self->pcrs->data,
						    self->pcrs->len, sizeof(guint32)));
		break;
	case PROP_VERSIONS:
		g_value_set_boxed(value, self->versions);
		break;
	case PROP_ROTATION_PERIOD:
		g_value_set_uint64(value, self->period);
		break;
	case PROP_MAX_USES:
		g_value_set_uint64(value, self->max_uses);
		break;
	case PROP_DEACTIVATE_AFTER:
		g_value_set_uint64(value, self->deactivate_after);
		break;
	case PROP_DESTROY_AFTER:
		g_value_set_uint64(value, self->destroy_after);
		break;
	case PROP_NEXT_ROTATION:
		g_value_set_uint64(value, self->next_rotation);
		break;
	case PROP_DESTROY_AT:
		g_value_set_uint64(value, tkms_key_info_get_destroy_at(self));
		break;
	case PROP_ROTATION_HOOK:
		g_value_set_string(value, self->hook);
		break;
	case PROP_PASSWORD_LENGTH:
		g_value_set_uint(value, self->password_length);
		break;
	case PROP_PASSWORD_CHARSET:
		g_value_set_string(value, self->password_charset);
		break;
	case PROP_PASSWORD_EXCLUDE:
		g_value_set_string(value, self->password_exclude);
		break;
	case PROP_ROTATION_STEP:
		g_value_set_string(value, self->rotation_step);
		break;
	case PROP_ROTATION_VERSION:
		g_value_set_uint(value, self->rotation_version);
		break;
	case PROP_ROTATION_STARTED:
		g_value_set_uint64(value, self->rotation_started);
		break;
	case PROP_LAST_ROTATION_RESULT:
		g_value_set_string(value, self->last_result);
		break;
	case PROP_LAST_ROTATION_STEP:
		g_value_set_string(value, self->last_step);
		break;
	case PROP_LAST_ROTATION_TIME:
		g_value_set_uint64(value, self->last_time);
		break;
	case PROP_LAST_ROTATION_VERSION:
		g_value_set_uint(value, self->last_version);
		break;
	case PROP_LAST_ROTATION_REASON:
		g_value_set_string(value, self->last_reason);
		break;
	case PROP_LAST_ROTATION_NEXT_RETRY:
		g_value_set_uint64(value, self->last_next_retry);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
tkms_key_info_finalize(GObject *object)
{
	TkmsKeyInfo *self = TKMS_KEY_INFO(object);

	g_clear_pointer(&self->dict, g_variant_unref);
	g_clear_pointer(&self->pcrs, g_array_unref);
	g_clear_pointer(&self->versions, g_ptr_array_unref);
	G_OBJECT_CLASS(tkms_key_info_parent_class)->finalize(object);
}

static void
tkms_key_info_class_init(TkmsKeyInfoClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

	object_class->get_property = tkms_key_info_get_property;
	object_class->finalize = tkms_key_info_finalize;

	/**
	 * TkmsKeyInfo:name:
	 *
	 * The key's name, unique among its owner's keys.
	 *
	 * Since: 0.2
	 */
	props[PROP_NAME] = g_param_spec_string("name", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:owner:
	 *
	 * The owner's uid; 0 for system keys.
	 *
	 * Since: 0.2
	 */
	props[PROP_OWNER] = g_param_spec_uint("owner", NULL, NULL, 0, G_MAXUINT32, 0, ro);
	/**
	 * TkmsKeyInfo:type:
	 *
	 * The key type: `aes-256-gcm`, `hmac-sha256`, `ecdsa-p256`, `rsa-2048` or `password`.
	 *
	 * Since: 0.2
	 */
	props[PROP_TYPE] = g_param_spec_string("type", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:protection:
	 *
	 * `sealed` (the key is unsealed by the TPM for each use) or `tpm` (the key never
	 * leaves the TPM).
	 *
	 * Since: 0.2
	 */
	props[PROP_PROTECTION] = g_param_spec_string("protection", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:created:
	 *
	 * When the key was created, in seconds since 1970-01-01 UTC.
	 *
	 * Since: 0.2
	 */
	props[PROP_CREATED] = g_param_spec_uint64("created", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyInfo:primary-version:
	 *
	 * The version that protects new data.
	 *
	 * Since: 0.2
	 */
	props[PROP_PRIMARY_VERSION] =
		g_param_spec_uint("primary-version", NULL, NULL, 0, G_MAXUINT32, 0, ro);
	/**
	 * TkmsKeyInfo:state:
	 *
	 * The state of the primary version, e.g. `active`; %NULL if the daemon did not list
	 * it.
	 *
	 * Since: 0.2
	 */
	props[PROP_STATE] = g_param_spec_string("state", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:description:
	 *
	 * The note given at creation; empty if none.
	 *
	 * Since: 0.2
	 */
	props[PROP_DESCRIPTION] = g_param_spec_string("description", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:pcrs:
	 *
	 * The SHA-256 PCRs every use of the key is bound to, as an `au` #GVariant; see
	 * tkms_key_info_get_pcrs() for a plain array.
	 *
	 * Since: 0.2
	 */
	props[PROP_PCRS] =
		g_param_spec_variant("pcrs", NULL, NULL, G_VARIANT_TYPE("au"), NULL, ro);
	/**
	 * TkmsKeyInfo:versions: (type GPtrArray(TkmsKeyVersionInfo))
	 *
	 * The key's versions, oldest first; see tkms_key_info_get_versions().
	 *
	 * Since: 0.2
	 */
	props[PROP_VERSIONS] = g_param_spec_boxed("versions", NULL, NULL, G_TYPE_PTR_ARRAY, ro);
	/**
	 * TkmsKeyInfo:rotation-period:
	 *
	 * The policy's `period`: seconds between automatic rotations; 0 for none.
	 *
	 * Since: 0.2
	 */
	props[PROP_ROTATION_PERIOD] =
		g_param_spec_uint64("rotation-period", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyInfo:max-uses:
	 *
	 * The policy's `max-uses`: the key rotates when its primary has protected this many
	 * messages; 0 for none.
	 *
	 * Since: 0.2
	 */
	props[PROP_MAX_USES] = g_param_spec_uint64("max-uses", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyInfo:deactivate-after:
	 *
	 * The policy's `deactivate-after`: seconds after a version stops being the primary
	 * until it is deactivated; 0 for never.
	 *
	 * Since: 0.2
	 */
	props[PROP_DEACTIVATE_AFTER] =
		g_param_spec_uint64("deactivate-after", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyInfo:destroy-after:
	 *
	 * The policy's `destroy-after`: seconds after a version is deactivated until its
	 * destruction is scheduled; 0 for never.
	 *
	 * Since: 0.2
	 */
	props[PROP_DESTROY_AFTER] =
		g_param_spec_uint64("destroy-after", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyInfo:next-rotation:
	 *
	 * When the policy rotates the key next, in seconds since 1970-01-01 UTC; 0 for
	 * never.
	 *
	 * Since: 0.2
	 */
	props[PROP_NEXT_ROTATION] =
		g_param_spec_uint64("next-rotation", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyInfo:destroy-at:
	 *
	 * The earliest destruction scheduled for a version of the key; 0 if none is.
	 *
	 * Since: 0.2
	 */
	props[PROP_DESTROY_AT] =
		g_param_spec_uint64("destroy-at", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyInfo:rotation-hook:
	 *
	 * The policy's `hook` of a `password` key: the file name of the executable in tkmsd's
	 * hook directory that applies and tests a new password; %NULL for none.
	 *
	 * Since: 0.2
	 */
	props[PROP_ROTATION_HOOK] = g_param_spec_string("rotation-hook", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:password-length:
	 *
	 * How many characters the generated passwords of a `password` key have; 0 for the
	 * other types.
	 *
	 * Since: 0.2
	 */
	props[PROP_PASSWORD_LENGTH] =
		g_param_spec_uint("password-length", NULL, NULL, 0, G_MAXUINT32, 0, ro);
	/**
	 * TkmsKeyInfo:password-charset:
	 *
	 * The characters generated passwords are made of: `alnum`, `alnum-symbols`, `hex` or
	 * `base64url`; %NULL for the other types.
	 *
	 * Since: 0.2
	 */
	props[PROP_PASSWORD_CHARSET] =
		g_param_spec_string("password-charset", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:password-exclude:
	 *
	 * The characters left out of generated passwords (empty for none); %NULL for the
	 * other types.
	 *
	 * Since: 0.2
	 */
	props[PROP_PASSWORD_EXCLUDE] =
		g_param_spec_string("password-exclude", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:rotation-step:
	 *
	 * While a rotation of a `password` key runs, the step it runs or waits on: `set`,
	 * `test`, `finish` or `rollback`; %NULL when none runs.
	 *
	 * Since: 0.2
	 */
	props[PROP_ROTATION_STEP] = g_param_spec_string("rotation-step", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:rotation-version:
	 *
	 * The pending version of the rotation that runs; 0 when none runs.
	 *
	 * Since: 0.2
	 */
	props[PROP_ROTATION_VERSION] =
		g_param_spec_uint("rotation-version", NULL, NULL, 0, G_MAXUINT32, 0, ro);
	/**
	 * TkmsKeyInfo:rotation-started:
	 *
	 * When the rotation that runs started, in seconds since 1970-01-01 UTC; 0 when none
	 * runs.
	 *
	 * Since: 0.2
	 */
	props[PROP_ROTATION_STARTED] =
		g_param_spec_uint64("rotation-started", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyInfo:last-rotation-result:
	 *
	 * How the last rotation of a `password` key ended: `ok` or `failed`; %NULL if none
	 * ended yet.
	 *
	 * Since: 0.2
	 */
	props[PROP_LAST_ROTATION_RESULT] =
		g_param_spec_string("last-rotation-result", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:last-rotation-step:
	 *
	 * The step the last rotation ended at (for a failure, the step that failed); %NULL if
	 * none ended yet.
	 *
	 * Since: 0.2
	 */
	props[PROP_LAST_ROTATION_STEP] =
		g_param_spec_string("last-rotation-step", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:last-rotation-time:
	 *
	 * When the last rotation ended, in seconds since 1970-01-01 UTC; 0 if none did.
	 *
	 * Since: 0.2
	 */
	props[PROP_LAST_ROTATION_TIME] =
		g_param_spec_uint64("last-rotation-time", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyInfo:last-rotation-version:
	 *
	 * The version the last rotation made (or, when it failed, discarded); 0 if none
	 * ended.
	 *
	 * Since: 0.2
	 */
	props[PROP_LAST_ROTATION_VERSION] =
		g_param_spec_uint("last-rotation-version", NULL, NULL, 0, G_MAXUINT32, 0, ro);
	/**
	 * TkmsKeyInfo:last-rotation-reason:
	 *
	 * Why the last rotation ended as it did: the hook's standard error or tkmsd's reason,
	 * passwords masked; %NULL if there is none.
	 *
	 * Since: 0.2
	 */
	props[PROP_LAST_ROTATION_REASON] =
		g_param_spec_string("last-rotation-reason", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyInfo:last-rotation-next-retry:
	 *
	 * After a failed rotation, when tkmsd tries again, in seconds since 1970-01-01 UTC; 0
	 * otherwise.
	 *
	 * Since: 0.2
	 */
	props[PROP_LAST_ROTATION_NEXT_RETRY] = g_param_spec_uint64(
		"last-rotation-next-retry", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
tkms_key_info_init(TkmsKeyInfo *self)
{
	self->pcrs = g_array_new(FALSE, FALSE, sizeof(guint32));
	self->versions = g_ptr_array_new_with_free_func(g_object_unref);
	self->name = self->type = self->protection = self->description = "";
}

static gboolean
invalid(GError **error, const gchar *member, const gchar *type)
{
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		    "Not a key info dictionary: \"%s\" is missing or not of type %s", member,
		    type);
	return FALSE;
}

/* Optional members may be absent (an older daemon); present, they must have their type. */
static gboolean
lookup_optional(GVariant *dict, const gchar *member, const gchar *type, gpointer out,
		GError **error)
{
	g_autoptr(GVariant) value = g_variant_lookup_value(dict, member, NULL);

	if (value == NULL)
		return TRUE;
	if (!g_variant_is_of_type(value, G_VARIANT_TYPE(type)))
		return invalid(error, member, type);
	g_variant_get(value, type[0] == 's' ? "&s" : type, out);
	return TRUE;
}

/* The daemon says "none" with an empty string where the API says %NULL. Always TRUE. */
static gboolean
empty_is_none(const gchar **s)
{
	if (*s != NULL && **s == '\0')
		*s = NULL;
	return TRUE;
}

static gboolean
parse_versions(TkmsKeyInfo *self, GError **error)
{
	g_autoptr(GVariant) versions = g_variant_lookup_value(self->dict, "versions", NULL);
	GVariantIter iter;
	GVariant *child;

	if (versions == NULL)
		return TRUE;
	if (!g_variant_is_of_type(versions, G_VARIANT_TYPE("aa{sv}")))
		return invalid(error, "versions", "aa{sv}");
	g_variant_iter_init(&iter, versions);
	while ((child = g_variant_iter_next_value(&iter)) != NULL) {
		TkmsKeyVersionInfo *v = tkms_key_version_info_new_from_variant(child, error);

		g_variant_unref(child);
		if (v == NULL)
			return FALSE;
		g_ptr_array_add(self->versions, v);
	}
	return TRUE;
}

static gboolean
parse_policy(TkmsKeyInfo *self, GError **error)
{
	g_autoptr(GVariant) policy = g_variant_lookup_value(self->dict, "policy", NULL);

	if (policy == NULL)
		return TRUE;
	if (!g_variant_is_of_type(policy, G_VARIANT_TYPE_VARDICT))
		return invalid(error, "policy", "a{sv}");
	return lookup_optional(policy, "period", "t", &self->period, error) &&
	       lookup_optional(policy, "max-uses", "t", &self->max_uses, error) &&
	       lookup_optional(policy, "deactivate-after", "t", &self->deactivate_after,
			       error) &&
	       lookup_optional(policy, "destroy-after", "t", &self->destroy_after, error) &&
	       lookup_optional(policy, "hook", "s", &self->hook, error) &&
	       empty_is_none(&self->hook);
}

/* A member that is a dictionary of its own (`password`, `rotation`, `last-rotation`):
 * absent is fine; present, it must be an a{sv}, and *out is then a reference to it. */
static gboolean
lookup_dict(GVariant *dict, const gchar *member, GVariant **out, GError **error)
{
	g_autoptr(GVariant) value = g_variant_lookup_value(dict, member, NULL);

	*out = NULL;
	if (value == NULL)
		return TRUE;
	if (!g_variant_is_of_type(value, G_VARIANT_TYPE_VARDICT))
		return invalid(error, member, "a{sv}");
	*out = g_steal_pointer(&value);
	return TRUE;
}

/* The strings point into the child dictionaries, which @self->dict keeps alive. */
static gboolean
parse_password(TkmsKeyInfo *self, GError **error)
{
	g_autoptr(GVariant) spec = NULL;
	g_autoptr(GVariant) rotation = NULL;
	g_autoptr(GVariant) last = NULL;

	if (!lookup_dict(self->dict, "password", &spec, error) ||
	    !lookup_dict(self->dict, "rotation", &rotation, error) ||
	    !lookup_dict(self->dict, "last-rotation", &last, error))
		return FALSE;
	if (spec != NULL &&
	    (!lookup_optional(spec, "length", "u", &self->password_length, error) ||
	     !lookup_optional(spec, "charset", "s", &self->password_charset, error) ||
	     !lookup_optional(spec, "exclude", "s", &self->password_exclude, error)))
		return FALSE;
	/* a password key has a spec even when nothing is excluded: "" then, not NULL */
	if (spec != NULL && self->password_exclude == NULL)
		self->password_exclude = "";
	if (rotation != NULL &&
	    (!lookup_optional(rotation, "step", "s", &self->rotation_step, error) ||
	     !lookup_optional(rotation, "version", "u", &self->rotation_version, error) ||
	     !lookup_optional(rotation, "started", "t", &self->rotation_started, error)))
		return FALSE;
	if (last != NULL &&
	    (!lookup_optional(last, "result", "s", &self->last_result, error) ||
	     !lookup_optional(last, "step", "s", &self->last_step, error) ||
	     !lookup_optional(last, "time", "t", &self->last_time, error) ||
	     !lookup_optional(last, "version", "u", &self->last_version, error) ||
	     !lookup_optional(last, "reason", "s", &self->last_reason, error) ||
	     !lookup_optional(last, "next-retry", "t", &self->last_next_retry, error)))
		return FALSE;
	return empty_is_none(&self->rotation_step) && empty_is_none(&self->last_result) &&
	       empty_is_none(&self->last_step) && empty_is_none(&self->last_reason);
}

static gboolean
parse_pcrs(TkmsKeyInfo *self, GError **error)
{
	g_autoptr(GVariant) pcrs = g_variant_lookup_value(self->dict, "pcrs", NULL);
	const guint32 *v;
	gsize n = 0;

	if (pcrs == NULL)
		return TRUE;
	if (!g_variant_is_of_type(pcrs, G_VARIANT_TYPE("au")))
		return invalid(error, "pcrs", "au");
	v = g_variant_get_fixed_array(pcrs, &n, sizeof(guint32));
	g_array_append_vals(self->pcrs, v, n);
	return TRUE;
}

/**
 * tkms_key_info_new_from_variant:
 * @info: a key info dictionary (`a{sv}`) as the D-Bus API returns it; a floating reference
 *   is consumed
 * @error: return location for a #GError
 *
 * Wraps a key info dictionary, for example one returned by tkms_client_get_key_info().
 * `name` (s) is required; `owner` (u), `type` (s), `protection` (s), `created` (t),
 * `primary-version` (u), `description` (s), `pcrs` (au), `versions` (aa{sv}), `policy`
 * (a{sv}: t each, `hook` s), `next-rotation` (t), `password` (a{sv}: `length` u,
 * `charset` s, `exclude` s), `rotation` (a{sv}: `step` s, `version` u, `started` t) and
 * `last-rotation` (a{sv}: `result` s, `step` s, `time` t, `version` u, `reason` s,
 * `next-retry` t) may be absent, but when present must have these types.
 *
 * Returns: (transfer full): a new #TkmsKeyInfo, or %NULL with @error set
 *   (%G_IO_ERROR_INVALID_DATA)
 *
 * Since: 0.2
 */
TkmsKeyInfo *
tkms_key_info_new_from_variant(GVariant *info, GError **error)
{
	g_autoptr(TkmsKeyInfo) self = NULL;

	g_return_val_if_fail(info != NULL, NULL);

	self = g_object_new(TKMS_TYPE_KEY_INFO, NULL);
	self->dict = g_variant_ref_sink(info);
	if (!g_variant_is_of_type(info, G_VARIANT_TYPE_VARDICT)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "Not a key info dictionary: type %s, not a{sv}",
			    g_variant_get_type_string(info));
		return NULL;
	}
	if (!g_variant_lookup(info, "name", "&s", &self->name)) {
		invalid(error, "name", "s");
		return NULL;
	}
	if (!lookup_optional(info, "owner", "u", &self->owner, error) ||
	    !lookup_optional(info, "type", "s", &self->type, error) ||
	    !lookup_optional(info, "protection", "s", &self->protection, error) ||
	    !lookup_optional(info, "created", "t", &self->created, error) ||
	    !lookup_optional(info, "primary-version", "u", &self->primary_version, error) ||
	    !lookup_optional(info, "description", "s", &self->description, error) ||
	    !lookup_optional(info, "next-rotation", "t", &self->next_rotation, error) ||
	    !parse_policy(self, error) || !parse_pcrs(self, error) ||
	    !parse_versions(self, error) || !parse_password(self, error))
		return NULL;
	return g_steal_pointer(&self);
}

/**
 * tkms_key_info_get_name:
 * @self: a #TkmsKeyInfo
 *
 * Returns: the key's name (#TkmsKeyInfo:name)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_name(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->name;
}

/**
 * tkms_key_info_get_owner:
 * @self: a #TkmsKeyInfo
 *
 * Returns: the owner's uid, 0 for system keys (#TkmsKeyInfo:owner)
 *
 * Since: 0.2
 */
guint
tkms_key_info_get_owner(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->owner;
}

/**
 * tkms_key_info_get_key_type:
 * @self: a #TkmsKeyInfo
 *
 * Returns: the key type, e.g. `aes-256-gcm` (#TkmsKeyInfo:type)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_key_type(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->type;
}

/**
 * tkms_key_info_get_protection:
 * @self: a #TkmsKeyInfo
 *
 * Returns: `sealed` or `tpm` (#TkmsKeyInfo:protection)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_protection(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->protection;
}

/**
 * tkms_key_info_get_created:
 * @self: a #TkmsKeyInfo
 *
 * Returns: when the key was created, in seconds since 1970-01-01 UTC
 *
 * Since: 0.2
 */
guint64
tkms_key_info_get_created(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->created;
}

/**
 * tkms_key_info_get_primary_version:
 * @self: a #TkmsKeyInfo
 *
 * Returns: the version that protects new data (#TkmsKeyInfo:primary-version)
 *
 * Since: 0.2
 */
guint
tkms_key_info_get_primary_version(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->primary_version;
}

/**
 * tkms_key_info_get_state:
 * @self: a #TkmsKeyInfo
 *
 * Returns: (nullable): the state of the primary version, e.g. `active`
 *   (#TkmsKeyInfo:state)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_state(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	for (guint i = 0; i < self->versions->len; i++) {
		TkmsKeyVersionInfo *v = g_ptr_array_index(self->versions, i);

		if (tkms_key_version_info_get_version(v) == self->primary_version)
			return tkms_key_version_info_get_state(v);
	}
	return NULL;
}

/**
 * tkms_key_info_get_description:
 * @self: a #TkmsKeyInfo
 *
 * Returns: the note given at creation, or an empty string
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_description(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->description;
}

/**
 * tkms_key_info_get_pcrs:
 * @self: a #TkmsKeyInfo
 * @n_pcrs: (out): set to the number of PCRs
 *
 * Returns: (array length=n_pcrs) (transfer none): the SHA-256 PCRs every use of the key is
 *   bound to, ascending; none for an unbound key
 *
 * Since: 0.2
 */
const guint32 *
tkms_key_info_get_pcrs(TkmsKeyInfo *self, guint *n_pcrs)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	g_return_val_if_fail(n_pcrs != NULL, NULL);
	*n_pcrs = self->pcrs->len;
	return (const guint32 *)(gconstpointer)self->pcrs->data;
}

/**
 * tkms_key_info_get_versions:
 * @self: a #TkmsKeyInfo
 *
 * Returns: (transfer none) (element-type TkmsKeyVersionInfo): the key's versions, oldest
 *   first
 *
 * Since: 0.2
 */
GPtrArray *
tkms_key_info_get_versions(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->versions;
}

/**
 * tkms_key_info_get_variant:
 * @self: a #TkmsKeyInfo
 *
 * Returns: (transfer none): the key info dictionary (`a{sv}`) as the daemon sent it,
 *   including members this version of libtkms does not know
 *
 * Since: 0.2
 */
GVariant *
tkms_key_info_get_variant(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->dict;
}

/**
 * tkms_key_info_get_rotation_period:
 * @self: a #TkmsKeyInfo
 *
 * Returns: seconds between automatic rotations, 0 for none (#TkmsKeyInfo:rotation-period)
 *
 * Since: 0.2
 */
guint64
tkms_key_info_get_rotation_period(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->period;
}

/**
 * tkms_key_info_get_max_uses:
 * @self: a #TkmsKeyInfo
 *
 * Returns: the number of messages after which the primary rotates, 0 for none (#TkmsKeyInfo:max-uses)
 *
 * Since: 0.2
 */
guint64
tkms_key_info_get_max_uses(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->max_uses;
}

/**
 * tkms_key_info_get_deactivate_after:
 * @self: a #TkmsKeyInfo
 *
 * Returns: seconds from a version's end as primary to its deactivation, 0 for never (#TkmsKeyInfo:deactivate-after)
 *
 * Since: 0.2
 */
guint64
tkms_key_info_get_deactivate_after(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->deactivate_after;
}

/**
 * tkms_key_info_get_destroy_after:
 * @self: a #TkmsKeyInfo
 *
 * Returns: seconds from a version's deactivation to its scheduled destruction, 0 for never (#TkmsKeyInfo:destroy-after)
 *
 * Since: 0.2
 */
guint64
tkms_key_info_get_destroy_after(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->destroy_after;
}

/**
 * tkms_key_info_get_next_rotation:
 * @self: a #TkmsKeyInfo
 *
 * Returns: when the policy rotates the key next (Unix time), 0 for never (#TkmsKeyInfo:next-rotation)
 *
 * Since: 0.2
 */
guint64
tkms_key_info_get_next_rotation(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->next_rotation;
}

/**
 * tkms_key_info_get_destroy_at:
 * @self: a #TkmsKeyInfo
 *
 * Returns: the earliest `destroy-at` of the key's `destroy-scheduled` versions (Unix
 *   time), 0 if no destruction is scheduled (#TkmsKeyInfo:destroy-at)
 *
 * Since: 0.2
 */
guint64
tkms_key_info_get_destroy_at(TkmsKeyInfo *self)
{
	guint64 earliest = 0;

	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	for (guint i = 0; i < self->versions->len; i++) {
		TkmsKeyVersionInfo *v = g_ptr_array_index(self->versions, i);
		guint64 at = tkms_key_version_info_get_destroy_at(v);

		if (g_strcmp0(tkms_key_version_info_get_state(v), "destroy-scheduled") == 0 &&
		    at != 0 && (earliest == 0 || at < earliest))
			earliest = at;
	}
	return earliest;
}

/**
 * tkms_key_info_get_rotation_hook:
 * @self: a #TkmsKeyInfo
 *
 * Returns: (nullable): the file name of the policy's hook, for a `password` key; %NULL
 *   for none (#TkmsKeyInfo:rotation-hook)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_rotation_hook(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->hook;
}

/**
 * tkms_key_info_get_password_length:
 * @self: a #TkmsKeyInfo
 *
 * Returns: the length of generated passwords, 0 if the key is no `password` key
 *   (#TkmsKeyInfo:password-length)
 *
 * Since: 0.2
 */
guint
tkms_key_info_get_password_length(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->password_length;
}

/**
 * tkms_key_info_get_password_charset:
 * @self: a #TkmsKeyInfo
 *
 * Returns: (nullable): `alnum`, `alnum-symbols`, `hex` or `base64url`; %NULL if the key is
 *   no `password` key (#TkmsKeyInfo:password-charset)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_password_charset(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->password_charset;
}

/**
 * tkms_key_info_get_password_exclude:
 * @self: a #TkmsKeyInfo
 *
 * Returns: (nullable): the characters left out of generated passwords (empty for none);
 *   %NULL if the key is no `password` key (#TkmsKeyInfo:password-exclude)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_password_exclude(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->password_exclude;
}

/**
 * tkms_key_info_get_rotation_step:
 * @self: a #TkmsKeyInfo
 *
 * Returns: (nullable): the step a running rotation runs or waits on (`set`, `test`,
 *   `finish`, `rollback`); %NULL when none runs (#TkmsKeyInfo:rotation-step)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_rotation_step(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->rotation_step;
}

/**
 * tkms_key_info_get_rotation_version:
 * @self: a #TkmsKeyInfo
 *
 * Returns: the pending version of the running rotation, 0 when none runs
 *   (#TkmsKeyInfo:rotation-version)
 *
 * Since: 0.2
 */
guint
tkms_key_info_get_rotation_version(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->rotation_version;
}

/**
 * tkms_key_info_get_rotation_started:
 * @self: a #TkmsKeyInfo
 *
 * Returns: when the running rotation started (Unix time), 0 when none runs
 *   (#TkmsKeyInfo:rotation-started)
 *
 * Since: 0.2
 */
guint64
tkms_key_info_get_rotation_started(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->rotation_started;
}

/**
 * tkms_key_info_get_last_rotation_result:
 * @self: a #TkmsKeyInfo
 *
 * Returns: (nullable): `ok` or `failed` for the last rotation that ended; %NULL if none
 *   did (#TkmsKeyInfo:last-rotation-result)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_last_rotation_result(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->last_result;
}

/**
 * tkms_key_info_get_last_rotation_step:
 * @self: a #TkmsKeyInfo
 *
 * Returns: (nullable): the step the last rotation ended at; %NULL if none ended
 *   (#TkmsKeyInfo:last-rotation-step)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_last_rotation_step(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->last_step;
}

/**
 * tkms_key_info_get_last_rotation_time:
 * @self: a #TkmsKeyInfo
 *
 * Returns: when the last rotation ended (Unix time), 0 if none did
 *   (#TkmsKeyInfo:last-rotation-time)
 *
 * Since: 0.2
 */
guint64
tkms_key_info_get_last_rotation_time(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->last_time;
}

/**
 * tkms_key_info_get_last_rotation_version:
 * @self: a #TkmsKeyInfo
 *
 * Returns: the version the last rotation made or discarded, 0 if none ended
 *   (#TkmsKeyInfo:last-rotation-version)
 *
 * Since: 0.2
 */
guint
tkms_key_info_get_last_rotation_version(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->last_version;
}

/**
 * tkms_key_info_get_last_rotation_reason:
 * @self: a #TkmsKeyInfo
 *
 * Returns: (nullable): why the last rotation ended as it did (the hook's standard error or
 *   tkmsd's reason, passwords masked); %NULL if there is none
 *   (#TkmsKeyInfo:last-rotation-reason)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_info_get_last_rotation_reason(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), NULL);
	return self->last_reason;
}

/**
 * tkms_key_info_get_last_rotation_next_retry:
 * @self: a #TkmsKeyInfo
 *
 * Returns: after a failed rotation, when tkmsd tries again (Unix time); 0 otherwise
 *   (#TkmsKeyInfo:last-rotation-next-retry)
 *
 * Since: 0.2
 */
guint64
tkms_key_info_get_last_rotation_next_retry(TkmsKeyInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_INFO(self), 0);
	return self->last_next_retry;
}
