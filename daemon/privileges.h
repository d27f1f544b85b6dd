/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Capabilities of tkmsd's processes (capabilities(7)). Under the shipped unit tkmsd starts as
 * its own user with the ambient capabilities CAP_SETUID, CAP_SETGID and CAP_KILL; only the
 * hook launcher keeps them (hook-launcher.h), the main process drops every capability. */

#include <glib.h>

G_BEGIN_DECLS

/* Whether the process may switch to another user: root, or CAP_SETUID and CAP_SETGID in its
 * effective set. */
gboolean tkms_privileges_can_switch_user(void);

/* Drops every capability for good: the ambient set cleared, the effective, permitted and
 * inheritable sets emptied, PR_SET_KEEPCAPS off and PR_SET_NO_NEW_PRIVS on, then checks that
 * nothing is left. A uid 0 process keeps uid 0 (it owns its files) but no capability. */
gboolean tkms_privileges_drop_all(GError **error);

/* In a forked child before exec, after it switched to a user other than root: empties the
 * ambient, inheritable, permitted and effective sets, so that the program it runs gets no
 * capability (a non-root process keeps its capabilities across setuid, and ambient ones across
 * exec). Async-signal-safe; FALSE if a capability is left. */
gboolean tkms_privileges_clear_in_child(void);

/* How many threads the process has (/proc/self/status), or -1 if that cannot be read. */
gint tkms_privileges_thread_count(void);

G_END_DECLS
