/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The hook launcher's own side (hook-launcher.h has tkmsd's): the process forked by
 * tkms_hook_launcher_start(). */

#include "hook-check.h"

G_BEGIN_DECLS

/* Serves the RUN and CANCEL messages that arrive on @fd with the hooks of @config (its
 * directory and user; the timeout comes with each request), until tkmsd closes its end; then
 * kills what still runs and exits. Never returns. */
G_NORETURN void tkms_hook_launcher_serve(gint fd, const TkmsHookConfig *config);

G_END_DECLS
