/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the torture tests (tests/torture/, issue 9) share: their two forms, raw D-Bus calls to
 * tkmsd with their outcome named, call statistics, and questions asked of the TPM itself
 * with tpm2-tools.
 *
 * Each torture program runs in two forms, registered twice in tests/torture/meson.build:
 * the short form (suite `torture`, run by ./run_tests.sh, seconds) and, with TKMS_TORTURE=long
 * in its environment (suite `torture-long`, ./run_tests.sh --suite torture-long), the figures
 * of the issue. TKMS_TORTURE_SEED=N replays a run's random choices (each run prints its seed).
 */

#include <gio/gio.h>

#include "tkms-test-env.h"
#include "tkms-test-util.h"

G_BEGIN_DECLS

#define TKMS_TORTURE_ERROR_PREFIX "org.tkms.KeyManager.Error."

/* TRUE in the long form (TKMS_TORTURE=long). */
gboolean tkms_torture_is_long(void);
/* short_value or long_value, by form; the environment variable env_name (if set, a number)
 * overrides both, for a quick experiment. */
guint tkms_torture_figure(const gchar *env_name, guint short_value, guint long_value);
/* The run's random seed: $TKMS_TORTURE_SEED or a fresh one, printed once. */
guint32 tkms_torture_seed(void);

/* A new connection to the env's bus (a fresh unique name). */
GDBusConnection *tkms_torture_connect(TkmsTestEnv *env);

/* The outcome of a call as a short word: "OK", the short name of a tkms error ("Busy"), the
 * full D-Bus name of any other remote error, or "local:<domain>:<code>" for errors that did
 * not come from the bus (a timeout is "local:g-io-error-quark:24"). */
gchar *tkms_torture_outcome(const GError *error);
/* Whether error is org.tkms.KeyManager.Error.<short_name>. */
gboolean tkms_torture_error_is(const GError *error, const gchar *short_name);

/* A synchronous call of org.tkms.KeyManager.method (args: a tuple, floating refs sunk). */
GVariant *tkms_torture_call_sync(GDBusConnection *connection, const gchar *method, GVariant *args,
				 const gchar *reply_type, gint timeout_ms, GError **error);

/* GVariant "ay" of bytes. */
GVariant *tkms_torture_ay(const void *data, gsize len);
GVariant *tkms_torture_ay_bytes(GBytes *b);
GVariant *tkms_torture_ay_str(const gchar *s);
/* The bytes of an "ay" value. */
GBytes *tkms_torture_bytes(GVariant *ay);

/*
 * Call statistics: per outcome counts and latencies (microseconds), for the report of a run.
 */
typedef struct _TkmsTortureStats TkmsTortureStats;
TkmsTortureStats *tkms_torture_stats_new(void);
void tkms_torture_stats_free(TkmsTortureStats *stats);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsTortureStats, tkms_torture_stats_free)
void tkms_torture_stats_add(TkmsTortureStats *stats, const gchar *method, const gchar *outcome,
			    gint64 latency_us);
guint64 tkms_torture_stats_count(TkmsTortureStats *stats, const gchar *method,
				 const gchar *outcome);
guint64 tkms_torture_stats_total(TkmsTortureStats *stats);
/* The methods seen, sorted. */
GPtrArray *tkms_torture_stats_methods(TkmsTortureStats *stats);
/* Latency quantile (0..1) over all calls, microseconds. */
gint64 tkms_torture_stats_latency(TkmsTortureStats *stats, gdouble quantile);
/* Prints one line per method with its outcomes, and the latency figures (g_test_message). */
void tkms_torture_stats_print(TkmsTortureStats *stats, const gchar *title);

/*
 * The TPM, asked directly with tpm2-tools (tpm2_getcap) through the swtpm's TCTI. swtpm
 * serves one connection at a time and tkmsd keeps its own open, so these stop tkmsd cleanly
 * first (a clean stop is what they measure) and start it again if it was running.
 */
/* The handles of a tpm2_getcap capability ("handles-transient", "handles-loaded-session",
 * "handles-saved-session"), e.g. "0x80000000". */
GPtrArray *tkms_torture_tpm_handles(TkmsTestEnv *env, const gchar *capability);
/* A property of tpm2_getcap properties-variable, e.g. "TPM2_PT_LOCKOUT_COUNTER". */
guint32 tkms_torture_tpm_property(TkmsTestEnv *env, const gchar *property);
/* Asserts that the TPM holds no transient object and no session (loaded or saved). */
void tkms_torture_assert_tpm_empty(TkmsTestEnv *env);

/* VmRSS of a process in KiB, 0 if gone. */
guint64 tkms_torture_rss_kib(gint pid);

G_END_DECLS
