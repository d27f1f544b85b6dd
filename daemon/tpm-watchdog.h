/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * ESYS's synchronous calls block until the TPM answers, and the socket TCTIs (swtpm, mssim)
 * ignore ESYS's timeout. A TPM that hangs (a stopped swtpm, a wedged remote) would block the
 * TPM worker forever. When a request runs past its deadline, the watchdog shuts down this
 * process's sockets to the TPM's host and port, so the blocked read fails and the request ends
 * in TpmUnavailable. Device TCTIs are left to the kernel driver's own timeouts.
 */
typedef struct _TkmsTpmWatchdog TkmsTpmWatchdog;

TkmsTpmWatchdog *tkms_tpm_watchdog_new(guint timeout_ms, const gchar *tcti_conf);
void tkms_tpm_watchdog_free(TkmsTpmWatchdog *wd);
void tkms_tpm_watchdog_arm(TkmsTpmWatchdog *wd);
/* Returns TRUE if the deadline passed (and the sockets were shut down) since arm. */
gboolean tkms_tpm_watchdog_disarm(TkmsTpmWatchdog *wd);
guint tkms_tpm_watchdog_get_timeout_ms(TkmsTpmWatchdog *wd);

G_END_DECLS
