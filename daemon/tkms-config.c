/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-config"

#include "tkms-config.h"

#include "tkms-error.h"

static gboolean
get_uint(GKeyFile *kf, const gchar *group, const gchar *key, guint64 min, guint64 max,
	 guint64 *value, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autofree gchar *str = g_key_file_get_string(kf, group, key, &local);
	guint64 v;

	if (str == NULL)
		return TRUE; /* keep the default */
	g_strstrip(str);
	if (!g_ascii_string_to_unsigned(str, 10, min, max, &v, NULL)) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "[%s] %s=%s is not a number between %" G_GUINT64_FORMAT
			    " and %" G_GUINT64_FORMAT "; fix the configuration file",
			    group, key, str, min, max);
		return FALSE;
	}
	*value = v;
	return TRUE;
}

static gboolean
get_bool(GKeyFile *kf, const gchar *group, const gchar *key, gboolean *value, GError **error)
{
	g_autoptr(GError) bad = NULL;
	gboolean v;

	if (!g_key_file_has_key(kf, group, key, NULL))
		return TRUE; /* keep the default */
	v = g_key_file_get_boolean(kf, group, key, &bad);
	if (bad != NULL) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "[%s] %s must be true or false; fix the configuration file", group,
			    key);
		return FALSE;
	}
	*value = v;
	return TRUE;
}

/* A string that must not be empty; absent keeps the default. */
static gboolean
get_string(GKeyFile *kf, const gchar *group, const gchar *key, gchar **value, GError **error)
{
	g_autofree gchar *str = g_key_file_get_string(kf, group, key, NULL);

	if (str == NULL)
		return TRUE;
	g_strstrip(str);
	if (*str == '\0') {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "[%s] %s is empty; remove it for the default or fix the configuration "
			    "file",
			    group, key);
		return FALSE;
	}
	g_free(*value);
	*value = g_steal_pointer(&str);
	return TRUE;
}

TkmsConfig *
tkms_config_load(const gchar *path, gboolean required, GError **error)
{
	g_autoptr(TkmsConfig) config = g_new0(TkmsConfig, 1);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) local = NULL;
	guint64 payload = TKMS_DEFAULT_MAX_PAYLOAD, per_caller = 64, per_user = 256;
	guint64 key_ttl = 30, auth_ttl = 60, tpm_timeout = 90;
	guint64 max_loaded = TKMS_DEFAULT_MAX_LOADED_OBJECTS;
	guint64 max_keys = TKMS_DEFAULT_MAX_KEYS_PER_USER;
	guint64 destroy_wait = TKMS_DEFAULT_DESTROY_WAIT;
	guint64 hook_timeout = TKMS_DEFAULT_HOOK_TIMEOUT;
	guint64 segment_size = TKMS_DEFAULT_AUDIT_SEGMENT_SIZE;
	guint64 keep_segments = TKMS_DEFAULT_AUDIT_KEEP_SEGMENTS;

	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
		if (required || !g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "Cannot read configuration %s: %s", path, local->message);
			return NULL;
		}
	}
	config->tcti = g_key_file_get_string(kf, "tpm", "Tcti", NULL);
	if (config->tcti != NULL)
		g_strstrip(config->tcti);
	if (!get_uint(kf, "tpm", "CommandTimeout", 1, 3600, &tpm_timeout, error) ||
	    !get_uint(kf, "tpm", "MaxLoadedObjects", 0, TKMS_MAX_LOADED_OBJECTS, &max_loaded,
		      error) ||
	    !get_uint(kf, "limits", "MaxPayload", 1, 64 * 1024 * 1024, &payload, error) ||
	    !get_uint(kf, "limits", "MaxInFlightPerCaller", 1, 100000, &per_caller, error) ||
	    !get_uint(kf, "limits", "MaxInFlightPerUser", 1, 1000000, &per_user, error) ||
	    !get_uint(kf, "limits", "MaxKeysPerUser", 0, G_MAXUINT32, &max_keys, error) ||
	    !get_uint(kf, "cache", "KeyTtl", 0, 86400, &key_ttl, error) ||
	    !get_uint(kf, "cache", "AuthorizationTtl", 0, 86400, &auth_ttl, error) ||
	    !get_uint(kf, "lifecycle", "DestroyWaitingPeriod", 0, TKMS_MAX_DESTROY_WAIT,
		      &destroy_wait, error) ||
	    !get_uint(kf, "passwords", "HookTimeout", 1, 3600, &hook_timeout, error) ||
	    !get_uint(kf, "audit", "SegmentSize", TKMS_MIN_AUDIT_SEGMENT_SIZE,
		      TKMS_MAX_AUDIT_SEGMENT_SIZE, &segment_size, error) ||
	    !get_uint(kf, "audit", "KeepSegments", 1, TKMS_MAX_AUDIT_KEEP_SEGMENTS,
		      &keep_segments, error))
		return NULL;
	config->tpm_timeout = tpm_timeout;
	config->max_loaded_objects = max_loaded;
	config->max_payload = payload;
	config->max_in_flight_per_caller = per_caller;
	config->max_in_flight_per_user = per_user;
	config->key_ttl = key_ttl;
	config->auth_ttl = auth_ttl;
	config->max_keys_per_user = max_keys;
	config->destroy_wait = destroy_wait;
	config->audit_segment_size = segment_size;
	config->audit_keep_segments = keep_segments;
	config->count_uses = TRUE;
	config->allow_resettable_pcrs = FALSE;
	config->require_locked_memory = FALSE;
	if (!get_bool(kf, "lifecycle", "CountUses", &config->count_uses, error) ||
	    !get_bool(kf, "tpm", "AllowResettablePcrs", &config->allow_resettable_pcrs, error) ||
	    !get_bool(kf, "security", "RequireLockedMemory", &config->require_locked_memory,
		      error))
		return NULL;
	config->hook_timeout = hook_timeout;
	config->hook_directory = g_strdup(TKMS_DEFAULT_HOOK_DIRECTORY);
	config->hook_user = g_strdup(TKMS_DEFAULT_HOOK_USER);
	if (!get_string(kf, "passwords", "HookDirectory", &config->hook_directory, error) ||
	    !get_string(kf, "passwords", "HookUser", &config->hook_user, error))
		return NULL;
	if (!g_path_is_absolute(config->hook_directory)) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "[passwords] HookDirectory=%s is not an absolute path; fix the "
			    "configuration file",
			    config->hook_directory);
		return NULL;
	}
	return g_steal_pointer(&config);
}

void
tkms_config_free(TkmsConfig *config)
{
	if (config == NULL)
		return;
	g_free(config->tcti);
	g_free(config->state_dir);
	g_free(config->hook_directory);
	g_free(config->hook_user);
	g_free(config);
}
