/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

#include "tkms-key-version-info.h"

/**
 * TkmsKeyVersionInfo:
 *
 * One version of a key, as #TkmsKeyInfo:versions lists them: its number, its state
 * (`pre-active`, `active`, `deactivated`, `suspended`, `compromised`, `destroy-scheduled`,
 * `destroyed`), the dates of its life cycle, how many messages it protected and, for a
 * signing key, its public key. A date that has not happened is 0.
 *
 * Since: 0.2
 */

struct _TkmsKeyVersionInfo {
	GObject parent_instance;

	guint version;
	gchar *state;
	guint64 created;
	guint64 activated;
	guint64 superseded;
	guint64 deactivated;
	guint64 destroy_at;
	guint64 destroyed;
	guint64 uses;
	gchar *public_key;
	gchar *stage;
};

G_DEFINE_FINAL_TYPE(TkmsKeyVersionInfo, tkms_key_version_info, G_TYPE_OBJECT)

enum {
	PROP_0,
	PROP_VERSION,
	PROP_STATE,
	PROP_CREATED,
	PROP_ACTIVATED,
	PROP_SUPERSEDED,
	PROP_DEACTIVATED,
	PROP_DESTROY_AT,
	PROP_DESTROYED,
	PROP_USES,
	PROP_PUBLIC_KEY,
	PROP_STAGE,
	N_PROPS
};

static GParamSpec *props[N_PROPS];

static void
tkms_key_version_info_get_property(GObject *object, guint prop_id, GValue *value,
				   GParamSpec *pspec)
{
	TkmsKeyVersionInfo *self = TKMS_KEY_VERSION_INFO(object);

	switch (prop_id) {
	case PROP_VERSION:
		g_value_set_uint(value, self->version);
		break;
	case PROP_STATE:
		g_value_set_string(value, self->state);
		break;
	case PROP_CREATED:
		g_value_set_uint64(value, self->created);
		break;
	case PROP_ACTIVATED:
		g_value_set_uint64(value, self->activated);
		break;
	case PROP_SUPERSEDED:
		g_value_set_uint64(value, self->superseded);
		break;
	case PROP_DEACTIVATED:
		g_value_set_uint64(value, self->deactivated);
		break;
	case PROP_DESTROY_AT:
		g_value_set_uint64(value, self->destroy_at);
		break;
	case PROP_DESTROYED:
		g_value_set_uint64(value, self->destroyed);
		break;
	case PROP_USES:
		g_value_set_uint64(value, self->uses);
		break;
	case PROP_PUBLIC_KEY:
		g_value_set_string(value, self->public_key);
		break;
	case PROP_STAGE:
		g_value_set_string(value, self->stage);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
tkms_key_version_info_finalize(GObject *object)
{
	TkmsKeyVersionInfo *self = TKMS_KEY_VERSION_INFO(object);

	g_free(self->state);
	g_free(self->public_key);
	g_free(self->stage);
	G_OBJECT_CLASS(tkms_key_version_info_parent_class)->finalize(object);
}

static void
tkms_key_version_info_class_init(TkmsKeyVersionInfoClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

	object_class->get_property = tkms_key_version_info_get_property;
	object_class->finalize = tkms_key_version_info_finalize;

	/**
	 * TkmsKeyVersionInfo:version:
	 *
	 * The version number, from 1.
	 *
	 * Since: 0.2
	 */
	props[PROP_VERSION] = g_param_spec_uint("version", NULL, NULL, 0, G_MAXUINT32, 0, ro);
	/**
	 * TkmsKeyVersionInfo:state:
	 *
	 * The version's state (NIST SP 800-57), e.g. `active` or `destroyed`.
	 *
	 * Since: 0.2
	 */
	props[PROP_STATE] = g_param_spec_string("state", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyVersionInfo:created:
	 *
	 * When the version was created, in seconds since 1970-01-01 UTC.
	 *
	 * Since: 0.2
	 */
	props[PROP_CREATED] = g_param_spec_uint64("created", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyVersionInfo:activated:
	 *
	 * When the version became active, or for a `pre-active` version when it will; 0 if
	 * not known.
	 *
	 * Since: 0.2
	 */
	props[PROP_ACTIVATED] =
		g_param_spec_uint64("activated", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyVersionInfo:superseded:
	 *
	 * When the version stopped being the primary; 0 while it is (or never was).
	 *
	 * Since: 0.2
	 */
	props[PROP_SUPERSEDED] =
		g_param_spec_uint64("superseded", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyVersionInfo:deactivated:
	 *
	 * When the version was deactivated; 0 if it was not.
	 *
	 * Since: 0.2
	 */
	props[PROP_DEACTIVATED] =
		g_param_spec_uint64("deactivated", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyVersionInfo:destroy-at:
	 *
	 * When a `destroy-scheduled` version will be destroyed; 0 if none is scheduled.
	 *
	 * Since: 0.2
	 */
	props[PROP_DESTROY_AT] =
		g_param_spec_uint64("destroy-at", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyVersionInfo:destroyed:
	 *
	 * When the version's material was destroyed; 0 if it was not.
	 *
	 * Since: 0.2
	 */
	props[PROP_DESTROYED] =
		g_param_spec_uint64("destroyed", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyVersionInfo:uses:
	 *
	 * How many messages the version protected (Encrypt, Sign, Hmac, DeriveKey,
	 * GenerateDataKey).
	 *
	 * Since: 0.2
	 */
	props[PROP_USES] = g_param_spec_uint64("uses", NULL, NULL, 0, G_MAXUINT64, 0, ro);
	/**
	 * TkmsKeyVersionInfo:public-key:
	 *
	 * The version's public key (PEM SubjectPublicKeyInfo) for a signing key; %NULL for
	 * the other types.
	 *
	 * Since: 0.2
	 */
	props[PROP_PUBLIC_KEY] = g_param_spec_string("public-key", NULL, NULL, NULL, ro);
	/**
	 * TkmsKeyVersionInfo:stage:
	 *
	 * For a version of a `password` key, its stage: `current`, `pending` (made by the
	 * rotation that runs) or `previous` (the current one before the last switch); %NULL
	 * for the other versions and types.
	 *
	 * Since: 0.2
	 */
	props[PROP_STAGE] = g_param_spec_string("stage", NULL, NULL, NULL, ro);
	g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
tkms_key_version_info_init(TkmsKeyVersionInfo *self)
{
}

/* Members of a newer daemon may be absent; present, they must be of type s. */
static gboolean
optional_string(GVariant *dict, const gchar *member, gchar **out, GError **error)
{
	g_autoptr(GVariant) value = g_variant_lookup_value(dict, member, NULL);

	if (value == NULL)
		return TRUE;
	if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "A key version's %s must be of type s", member);
		return FALSE;
	}
	*out = g_variant_dup_string(value, NULL);
	return TRUE;
}

/* Members of a newer daemon may be absent; present, they must be of type t. */
static gboolean
optional_time(GVariant *dict, const gchar *member, guint64 *out, GError **error)
{
	g_autoptr(GVariant) value = g_variant_lookup_value(dict, member, NULL);

	if (value == NULL)
		return TRUE;
	if (!g_variant_is_of_type(value, G_VARIANT_TYPE_UINT64)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "A key version's %s must be of type t", member);
		return FALSE;
	}
	*out = g_variant_get_uint64(value);
	return TRUE;
}

/**
 * tkms_key_version_info_new_from_variant:
 * @version: an a{sv} with `version` (u), `state` (s) and `created` (t), as in the
 *   `versions` member of a key info dictionary; `activated` or `activate-at`,
 *   `superseded`, `deactivated`, `destroy-at`, `destroyed`, `uses` (t each) and
 *   `public-key` and `stage` (s each) may be absent but when present must have these types. A floating
 *   reference is consumed
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a new #TkmsKeyVersionInfo, or %NULL with @error set
 *   (%G_IO_ERROR_INVALID_DATA) if @version lacks a member or has one of another type
 *
 * Since: 0.2
 */
TkmsKeyVersionInfo *
tkms_key_version_info_new_from_variant(GVariant *version, GError **error)
{
	g_autoptr(GVariant) owned = g_variant_ref_sink(version);
	g_autoptr(TkmsKeyVersionInfo) self = NULL;
	const gchar *state = NULL;
	guint32 number = 0;
	guint64 created = 0;

	if (!g_variant_is_of_type(version, G_VARIANT_TYPE_VARDICT) ||
	    !g_variant_lookup(version, "version", "u", &number) ||
	    !g_variant_lookup(version, "state", "&s", &state) ||
	    !g_variant_lookup(version, "created", "t", &created)) {
		g_set_error_literal(
			error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			"A key version needs version (u), state (s) and created (t)");
		return NULL;
	}
	self = g_object_new(TKMS_TYPE_KEY_VERSION_INFO, NULL);
	self->version = number;
	self->state = g_strdup(state);
	self->created = created;
	/* a pre-active version has its activation ahead of it, under its own name */
	if (!optional_time(version, "activated", &self->activated, error) ||
	    !optional_time(version, "activate-at", &self->activated, error) ||
	    !optional_time(version, "superseded", &self->superseded, error) ||
	    !optional_time(version, "deactivated", &self->deactivated, error) ||
	    !optional_time(version, "destroy-at", &self->destroy_at, error) ||
	    !optional_time(version, "destroyed", &self->destroyed, error) ||
	    !optional_time(version, "uses", &self->uses, error))
		return NULL;
	if (!optional_string(version, "public-key", &self->public_key, error) ||
	    !optional_string(version, "stage", &self->stage, error))
		return NULL;
	/* "" is no stage, as absent */
	if (self->stage != NULL && *self->stage == '\0')
		g_clear_pointer(&self->stage, g_free);
	return g_steal_pointer(&self);
}

/**
 * tkms_key_version_info_get_version:
 * @self: a #TkmsKeyVersionInfo
 *
 * Returns: the version number
 *
 * Since: 0.2
 */
guint
tkms_key_version_info_get_version(TkmsKeyVersionInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_VERSION_INFO(self), 0);
	return self->version;
}

/**
 * tkms_key_version_info_get_state:
 * @self: a #TkmsKeyVersionInfo
 *
 * Returns: the version's state, e.g. `active`
 *
 * Since: 0.2
 */
const gchar *
tkms_key_version_info_get_state(TkmsKeyVersionInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_VERSION_INFO(self), NULL);
	return self->state;
}

/**
 * tkms_key_version_info_get_created:
 * @self: a #TkmsKeyVersionInfo
 *
 * Returns: when the version was created, in seconds since 1970-01-01 UTC
 *
 * Since: 0.2
 */
guint64
tkms_key_version_info_get_created(TkmsKeyVersionInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_VERSION_INFO(self), 0);
	return self->created;
}

/**
 * tkms_key_version_info_get_activated:
 * @self: a #TkmsKeyVersionInfo
 *
 * Returns: when the version became active (or, while `pre-active`, will), in seconds since 1970-01-01 UTC; 0 if not
 *
 * Since: 0.2
 */
guint64
tkms_key_version_info_get_activated(TkmsKeyVersionInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_VERSION_INFO(self), 0);
	return self->activated;
}

/**
 * tkms_key_version_info_get_superseded:
 * @self: a #TkmsKeyVersionInfo
 *
 * Returns: when the version stopped being the primary, in seconds since 1970-01-01 UTC; 0 if not
 *
 * Since: 0.2
 */
guint64
tkms_key_version_info_get_superseded(TkmsKeyVersionInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_VERSION_INFO(self), 0);
	return self->superseded;
}

/**
 * tkms_key_version_info_get_deactivated:
 * @self: a #TkmsKeyVersionInfo
 *
 * Returns: when the version was deactivated, in seconds since 1970-01-01 UTC; 0 if not
 *
 * Since: 0.2
 */
guint64
tkms_key_version_info_get_deactivated(TkmsKeyVersionInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_VERSION_INFO(self), 0);
	return self->deactivated;
}

/**
 * tkms_key_version_info_get_destroy_at:
 * @self: a #TkmsKeyVersionInfo
 *
 * Returns: when a `destroy-scheduled` version will be destroyed, in seconds since 1970-01-01 UTC; 0 if not
 *
 * Since: 0.2
 */
guint64
tkms_key_version_info_get_destroy_at(TkmsKeyVersionInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_VERSION_INFO(self), 0);
	return self->destroy_at;
}

/**
 * tkms_key_version_info_get_destroyed:
 * @self: a #TkmsKeyVersionInfo
 *
 * Returns: when the version was destroyed, in seconds since 1970-01-01 UTC; 0 if not
 *
 * Since: 0.2
 */
guint64
tkms_key_version_info_get_destroyed(TkmsKeyVersionInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_VERSION_INFO(self), 0);
	return self->destroyed;
}

/**
 * tkms_key_version_info_get_uses:
 * @self: a #TkmsKeyVersionInfo
 *
 * Returns: how many messages the version protected (#TkmsKeyVersionInfo:uses)
 *
 * Since: 0.2
 */
guint64
tkms_key_version_info_get_uses(TkmsKeyVersionInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_VERSION_INFO(self), 0);
	return self->uses;
}

/**
 * tkms_key_version_info_get_public_key:
 * @self: a #TkmsKeyVersionInfo
 *
 * Returns: (nullable): the version's public key (PEM) for a signing key, else %NULL
 *
 * Since: 0.2
 */
const gchar *
tkms_key_version_info_get_public_key(TkmsKeyVersionInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_VERSION_INFO(self), NULL);
	return self->public_key;
}

/**
 * tkms_key_version_info_get_stage:
 * @self: a #TkmsKeyVersionInfo
 *
 * Returns: (nullable): `current`, `pending` or `previous` for a version of a `password`
 *   key that has a stage, else %NULL (#TkmsKeyVersionInfo:stage)
 *
 * Since: 0.2
 */
const gchar *
tkms_key_version_info_get_stage(TkmsKeyVersionInfo *self)
{
	g_return_val_if_fail(TKMS_IS_KEY_VERSION_INFO(self), NULL);
	return self->stage;
}
