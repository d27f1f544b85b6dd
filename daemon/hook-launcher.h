/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Privilege separation for password rotation hooks. Hooks run as [passwords] HookUser, which
 * takes CAP_SETUID and CAP_SETGID (or root); tkmsd's main process must not keep those. So at
 * start, before any thread exists, tkmsd forks a small hook launcher connected by a socket
 * pair (hook-launcher-process.c): it keeps the privileges, runs hooks from the directory and
 * as the user it was started with, and does nothing else; then the main process drops every
 * capability (privileges.h). A compromised main process can only ask the launcher to run
 * one of the administrator's hooks, as the hook user.
 *
 * TkmsHookLauncher is the main process's end: it sends RUN and CANCEL messages
 * (hook-launcher-wire.h) and hands each DONE to the run that waits for it. If the launcher
 * dies, every run fails with a clear error (and tkmsd says so once); tkmsd goes on. */

#include <gio/gio.h>

#include "hook-launcher-wire.h"
#include "hook-check.h"

G_BEGIN_DECLS

#define TKMS_TYPE_HOOK_LAUNCHER (tkms_hook_launcher_get_type())
G_DECLARE_FINAL_TYPE(TkmsHookLauncher, tkms_hook_launcher, TKMS, HOOK_LAUNCHER, GObject)

/* Forks the launcher for @config's directory and user. Call it while the process has one
 * thread: the child keeps running GLib, which is only safe after a fork of a process without
 * other threads. Attaches nothing to a main context (see set_default). */
TkmsHookLauncher *tkms_hook_launcher_start(const TkmsHookConfig *config, GError **error);

/* The launcher hook.c runs hooks through (a reference is kept; NULL drops it). Its watches
 * (of the socket and of the process) are attached to the thread-default main context here:
 * the process watch starts GLib's worker thread, so tkmsd drops its capabilities first
 * (they belong to each thread). */
void tkms_hook_launcher_set_default(TkmsHookLauncher *launcher);
/* The launcher set above, or NULL (no reference is added). */
TkmsHookLauncher *tkms_hook_launcher_get_default(void);

GPid tkms_hook_launcher_get_pid(TkmsHookLauncher *self);
const gchar *tkms_hook_launcher_get_directory(TkmsHookLauncher *self);
const gchar *tkms_hook_launcher_get_user(TkmsHookLauncher *self);
/* FALSE once the launcher is gone or stopped. */
gboolean tkms_hook_launcher_is_running(TkmsHookLauncher *self);

typedef struct {
	TkmsHookWireOutcome outcome;
	gint status;	/* the wait status, for TKMS_HOOK_WIRE_ENDED */
	gboolean cut;	/* the hook wrote more to its standard error than is kept */
	GBytes *output; /* its standard error (up to 4 KiB), or why it did not run; wiped */
} TkmsHookLauncherResult;

void tkms_hook_launcher_result_free(TkmsHookLauncherResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsHookLauncherResult, tkms_hook_launcher_result_free)

/* Asks the launcher to run hook @name for @step with @input (the JSON, copied into a buffer
 * that is wiped once sent) and @timeout seconds; cancelling @cancellable kills the hook. */
void tkms_hook_launcher_run_async(TkmsHookLauncher *self, const gchar *name, const gchar *step,
				  guint timeout, const guint8 *input, gsize input_len,
				  GCancellable *cancellable, GAsyncReadyCallback callback,
				  gpointer user_data);
/* How the run ended, or NULL with a TKMS_ERROR_FAILED error if the launcher could not be
 * asked or ended before it answered. */
TkmsHookLauncherResult *tkms_hook_launcher_run_finish(TkmsHookLauncher *self, GAsyncResult *result,
						      GError **error);

/* Closes tkmsd's end: the launcher kills the hooks that still run and exits. Waits for it
 * (2 s at most, then it is killed). Pending runs fail. Also done when the last reference goes. */
void tkms_hook_launcher_stop(TkmsHookLauncher *self);

G_END_DECLS
