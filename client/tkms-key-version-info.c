/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

#include "tkms-key-version-info.h"

/**
 * TkmsKeyVersionInfo:
 *
 * One version of a key, as #TkmsKeyInfo:versions lists them: its number, its state
 * (`pre-active`, `active`, `deactivated`, `suspended`, `compromised`, `destroyed`...) and
 * when it was created.
 *
 * Since: 0.2
 */

struct _TkmsKeyVersionInfo {
	GObject parent_instance;

	guint version;
	gchar *state;
	guint64 created;
};

G_DEFINE_FINAL_TYPE(TkmsKeyVersionInfo, tkms_key_version_info, G_TYPE_OBJECT)

enum { PROP_0, PROP_VERSION, PROP_STATE, PROP_CREATED, N_PROPS };

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
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
tkms_key_version_info_finalize(GObject *object)
{
	TkmsKeyVersionInfo *self = TKMS_KEY_VERSION_INFO(object);

	g_free(self->state);
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
	g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
tkms_key_version_info_init(TkmsKeyVersionInfo *self)
{
}

/**
 * tkms_key_version_info_new_from_variant:
 * @version: an a{sv} with `version` (u), `state` (s) and `created` (t), as in the
 *   `versions` member of a key info dictionary
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
