/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * TkmsTestSwtpm: a software TPM for tests and the benchmark.
 *
 * `swtpm socket --tpm2 --flags not-need-init,startup-clear` on 127.0.0.1, server on a free
 * even port and control on the next one, with its state in a directory of its own (an empty
 * one works: no swtpm_setup). swtpm serves one connection at a time.
 */

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _TkmsTestSwtpm TkmsTestSwtpm;

/* Starts swtpm on free ports; state_dir is created (0700) if missing; its output goes to
 * log_path. Fails with TKMS_TEST_ERROR_MISSING_DEPENDENCY if swtpm is not installed. */
TkmsTestSwtpm *tkms_test_swtpm_new(const gchar *state_dir, const gchar *log_path, GError **error);
/* Stops it (SIGTERM; the state directory is kept). */
void tkms_test_swtpm_free(TkmsTestSwtpm *tpm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsTestSwtpm, tkms_test_swtpm_free)

/* Stops it (SIGTERM; fails if it does not exit within 10 s). */
gboolean tkms_test_swtpm_stop(TkmsTestSwtpm *tpm, GError **error);
/* Starts it again on the same ports with the same state (retries while the old socket
 * lingers). */
gboolean tkms_test_swtpm_start(TkmsTestSwtpm *tpm, GError **error);
gboolean tkms_test_swtpm_is_running(TkmsTestSwtpm *tpm);
/* Sends sig (e.g. SIGSTOP/SIGCONT to make the TPM hang and come back). */
gboolean tkms_test_swtpm_signal(TkmsTestSwtpm *tpm, gint sig);
guint16 tkms_test_swtpm_get_port(TkmsTestSwtpm *tpm);
/* "swtpm:host=127.0.0.1,port=N" */
const gchar *tkms_test_swtpm_get_tcti(TkmsTestSwtpm *tpm);
/* Prints the tail of its log to stderr. */
void tkms_test_swtpm_dump_log(TkmsTestSwtpm *tpm);
/* Extends SHA-256 PCR pcr with a fixed digest (tpm2_pcrextend); nobody else may hold the
 * TPM's connection meanwhile. */
gboolean tkms_test_swtpm_extend_pcr(TkmsTestSwtpm *tpm, guint pcr, GError **error);

/* A platform reset as firmware does it, with every client's connection untouched: swtpm's
 * CMD_INIT on its control channel, then TPM2_Startup(SU_CLEAR). Every handle is gone. */
gboolean tkms_test_swtpm_reset(TkmsTestSwtpm *tpm, GError **error);

/* Loopback TCP port helpers for starting servers on free ports. */
gboolean tkms_test_port_is_free(guint16 port);
gboolean tkms_test_port_accepts(guint16 port);

G_END_DECLS
