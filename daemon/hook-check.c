/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-hook"

#include "hook-check.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "key.h"
#include "tkms-error.h"

gboolean
tkms_hook_name_is_valid(const gchar *name)
{
	gsize len = strlen(name);

	if (len == 0 || len > TKMS_HOOK_NAME_MAX || name[0] == '.')
		return FALSE;
	for (gsize i = 0; i < len; i++)
		if (!g_ascii_isalnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
			return FALSE;
	return TRUE;
}

static gboolean refuse(GError **error, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

static gboolean
refuse(GError **error, const gchar *format, ...)
{
	va_list ap;
	g_autofree gchar *msg = NULL;

	va_start(ap, format);
	msg = g_strdup_vprintf(format, ap);
	va_end(ap);
	g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT, msg);
	return FALSE;
}

/* Only root may change what a directory holds: owned by root and writable by no one else (a
 * sticky directory such as /tmp is fine: others cannot rename or remove root's entries). */
static gboolean
check_directory(const gchar *path, gboolean above, GError **error)
{
	const gchar *what = above ? "A directory above the hook directory" : "The hook directory";
	struct stat st;

	if (stat(path, &st) != 0)
		return refuse(error, "%s %s cannot be read: %s", what, path, g_strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return refuse(error, "%s %s is not a directory", what, path);
	if (st.st_uid != 0)
		return refuse(error,
			      "%s %s is owned by uid %u, not root; hooks must be "
			      "in a directory only root can change",
			      what, path, (guint)st.st_uid);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !(above && (st.st_mode & S_ISVTX)))
		return refuse(error,
			      "%s %s is writable by group or others (mode %04o); "
			      "make it writable by root alone (chmod go-w)",
			      what, path, (guint)(st.st_mode & 07777));
	return TRUE;
}

gboolean
tkms_hook_check(const TkmsHookConfig *config, const gchar *name, GError **error)
{
	g_autofree gchar *real_dir = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *path = NULL;
	struct stat st;

	if (!tkms_hook_name_is_valid(name))
		return refuse(error,
			      "\"%s\" is not a hook name: a file name in the hook directory "
			      "([A-Za-z0-9._-], 1 to %u characters, not starting with a dot)",
			      name, TKMS_HOOK_NAME_MAX);
	if (config->directory == NULL || !g_path_is_absolute(config->directory))
		return refuse(error, "[passwords] HookDirectory must be an absolute path");
	if (!check_directory(config->directory, FALSE, error))
		return FALSE;
	/* and every directory above it (where the directory itself could be swapped) */
	real_dir = realpath(config->directory, NULL);
	if (real_dir == NULL)
		return refuse(error, "The hook directory %s cannot be resolved: %s",
			      config->directory, g_strerror(errno));
	dir = g_strdup(real_dir);
	while (!g_str_equal(dir, "/")) {
		gchar *up = g_path_get_dirname(dir);
		g_free(dir);
		dir = up;
		if (!check_directory(dir, TRUE, error))
			return FALSE;
	}
	path = g_build_filename(config->directory, name, NULL);
	if (lstat(path, &st) != 0)
		return refuse(error, "There is no hook \"%s\" in %s: %s", name, config->directory,
			      g_strerror(errno));
	if (S_ISLNK(st.st_mode))
		return refuse(error,
			      "The hook %s is a symbolic link; put the executable itself in the "
			      "hook directory",
			      path);
	if (!S_ISREG(st.st_mode))
		return refuse(error, "The hook %s is not a regular file", path);
	if (st.st_uid != 0)
		return refuse(error, "The hook %s is owned by uid %u, not root; chown root it",
			      path, (guint)st.st_uid);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return refuse(error,
			      "The hook %s is writable by group or others (mode %04o); chmod go-w "
			      "it",
			      path, (guint)(st.st_mode & 07777));
	if ((st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0)
		return refuse(error, "The hook %s is not executable; chmod +x it", path);
	return TRUE;
}
