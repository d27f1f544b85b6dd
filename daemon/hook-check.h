/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which hooks may run: the configuration that places them and the checks of a hook's name and
 * file. Both tkmsd and its hook launcher check (the launcher again, against the configuration
 * it was started with), so this sits below both. */

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
	const gchar *directory; /* [passwords] HookDirectory */
	const gchar *user;	/* [passwords] HookUser */
	guint timeout;		/* [passwords] HookTimeout, seconds */
} TkmsHookConfig;

/* Whether @name is a hook's name: [A-Za-z0-9._-]{1,64}, not starting with a dot (so never a
 * path, "." or ".."). */
gboolean tkms_hook_name_is_valid(const gchar *name);

/* Whether @name is a hook that may run: a file name ([A-Za-z0-9._-]{1,64}, no leading dot) of
 * a regular, executable file in @config->directory (not a symbolic link), owned by root and
 * writable by no one else, in a directory owned by root and writable by no one else, below
 * directories that only root can change (sticky ones such as /tmp included). InvalidArgument
 * (TKMS_ERROR) with the reason otherwise. */
gboolean tkms_hook_check(const TkmsHookConfig *config, const gchar *name, GError **error);

G_END_DECLS
