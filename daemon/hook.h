/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Rotation hooks of password keys: executables an administrator puts in [passwords]
 * HookDirectory, which apply a pending password to the system that uses it (docs/passwords.md
 * has the protocol). tkmsd's hook launcher runs a hook as [passwords] HookUser, with a clean
 * environment, no controlling terminal, in its own session (killed as a group at the
 * timeout), and gives it the passwords on its standard input only: never in argv, the
 * environment or a log. */

#include <gio/gio.h>

#include "hook-check.h"

G_BEGIN_DECLS


/* What a hook is told on its standard input: one JSON object
 *   {"step": "set", "owner": 1000, "key": "db-app", "current-version": 3,
 *    "pending-version": 4, "current": "...", "pending": "..."}
 * "current" and "current-version" are absent when the key has no current version; "pending"
 * and "pending-version" are absent at "finish" (the switch is made: "current" is then the new
 * password and "previous" the old one, with "previous-version"). */
typedef struct {
	const gchar *step; /* "set", "test", "finish", "rollback" */
	guint32 owner;
	const gchar *key;
	guint32 current_version;  /* 0 = none */
	GBytes *current;	  /* NULL = none */
	guint32 pending_version;  /* 0 = none */
	GBytes *pending;	  /* NULL = none */
	guint32 previous_version; /* 0 = none */
	GBytes *previous;	  /* NULL = none */
} TkmsHookInput;


/* Runs `HOOK STEP` with @input as JSON on its standard input (checked with tkms_hook_check
 * first). The JSON is built in memory that is wiped when freed, and the passwords are masked
 * ("********") in the reason, also as the JSON spells them and when cut off at its end. The
 * hook is started by the hook launcher (hook-launcher.h, tkms_hook_launcher_set_default),
 * which checks it again and runs it as the user with its groups and no capability, in /,
 * with umask 077, no core dumps, SIGKILL when the launcher dies, standard output to /dev/null
 * and no other descriptor of tkmsd's. Whatever it leaves running in its process group when
 * it exits is killed. @config's directory and user must be the launcher's (it was started
 * with them); the timeout is @config's. Passwords that are not UTF-8 cannot be given to a
 * hook (Failed). */
void tkms_hook_run_async(const TkmsHookConfig *config, const gchar *name,
			 const TkmsHookInput *input, GCancellable *cancellable,
			 GAsyncReadyCallback callback, gpointer user_data);
/* TRUE if the hook exited 0. Otherwise FALSE with a TKMS_ERROR_FAILED error whose message says
 * what happened ("exited with status 3", "killed by signal 9", "timed out after 60 s",
 * "could not be started: ...", "could not be run: The hook launcher (pid N) was killed by
 * signal 9: ...") followed by the first 4 KiB of its standard error, passwords
 * masked. @reason (optional) gets that standard error alone (also on success), masked. */
gboolean tkms_hook_run_finish(GAsyncResult *result, gchar **reason, GError **error);

G_END_DECLS
