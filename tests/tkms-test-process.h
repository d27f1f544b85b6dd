/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Processes of the test fixture: starting servers with a log, stopping them, running commands
 * with a timeout, running them as another user (setpriv) from a staged copy, temporary
 * directories, and the cleanup done when a test aborts.
 *
 * Every child dies with the test process (PR_SET_PDEATHSIG). If the test aborts (failed
 * assertion, crash, meson's timeout), a signal handler kills every registered process, prints
 * the tail of its log, removes the registered directories and runs the registered hooks;
 * directories left by killed runs are swept at the next start.
 */

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* A missing program or package: tkms_test_env_new_or_abort() and friends then skip the test
 * (tkms_test_skip_missing()). */
#define TKMS_TEST_ERROR (tkms_test_error_quark())
GQuark tkms_test_error_quark(void);
typedef enum {
	TKMS_TEST_ERROR_MISSING_DEPENDENCY,
} TkmsTestError;

/* Ends a test that cannot run, saying what is missing: with --tap in its arguments (meson's
 * TAP protocol) a TAP plan "1..0 # SKIP what" and status 0, which meson reports as SKIP;
 * otherwise status 77, meson's skip for the exitcode protocol. */
G_NORETURN void tkms_test_skip_missing(const gchar *what);
/* Skips the test if error is TKMS_TEST_ERROR_MISSING_DEPENDENCY, else prints it and exits 1. */
G_NORETURN void tkms_test_exit_on_error(const gchar *context, const GError *error);
/* How much longer than usual the fixture waits for its servers: $TKMS_TEST_TIMEOUT_FACTOR
 * (default 1), set by ./run_tests.sh --sanitize and --valgrind, whose tkmsd is slower. */
guint tkms_test_timeout_factor(void);
/* How much more memory than usual tkmsd may use: $TKMS_TEST_RSS_FACTOR (default 1), set by
 * ./run_tests.sh --sanitize (AddressSanitizer's shadow memory, redzones and quarantine); the
 * memory bounds of the tests are for tkmsd's own allocator. */
guint tkms_test_rss_factor(void);
/* TRUE when tkmsd runs under valgrind memcheck ($TKMS_TEST_VALGRIND=1, ./run_tests.sh
 * --valgrind). */
gboolean tkms_test_under_valgrind(void);
/* For a test's main(): under valgrind, skips the whole test with the reason why it cannot run
 * there (it measures tkmsd's speed, say); ./run_tests.sh --valgrind leaves these tests out of
 * its default run. Does nothing otherwise. */
void tkms_test_skip_under_valgrind(const gchar *why);

/* Sets TKMS_TEST_ERROR_MISSING_DEPENDENCY unless program is found (absolute, or on PATH). */
gboolean tkms_test_require_program(const gchar *program, const gchar *package,
				   GError **error);
/* For a test's main(): skips the test unless program is found. */
void tkms_test_require_program_or_skip(const gchar *program, const gchar *package);

typedef struct {
	const gchar *name;
	gchar *log_path;
	GSubprocess *proc;
	volatile pid_t pid; /* read by the abort handler; 0 when not running */
} TkmsTestProc;

/* Names the process and takes log_path; registers it with the abort handler. */
void tkms_test_proc_init(TkmsTestProc *tp, const gchar *name, gchar *log_path);
/* Stops it (SIGTERM, then SIGKILL after 10 s) and unregisters it. */
void tkms_test_proc_clear(TkmsTestProc *tp);
/* Starts argv with stdin /dev/null, stdout and stderr appended to the log, in cwd, with
 * DBUS_SYSTEM_BUS_ADDRESS and TKMS_TEST_BUS_ADDRESS set to bus_address (may be NULL). */
gboolean tkms_test_proc_start(TkmsTestProc *tp, const gchar *const *argv, const gchar *cwd,
			      const gchar *bus_address, GError **error);
gboolean tkms_test_proc_is_running(TkmsTestProc *tp);
/* sig, then SIGKILL after timeout_ms. TRUE if it exited by itself within the timeout; *status
 * is the exit status or -signal. */
gboolean tkms_test_proc_stop(TkmsTestProc *tp, gint sig, guint timeout_ms, gint *status);
gboolean tkms_test_proc_signal(TkmsTestProc *tp, gint sig);
/* An error naming the process, what happened, how it ended and the tail of its log. */
void tkms_test_proc_set_error(TkmsTestProc *tp, const gchar *what, GError **error);
/* The tail of a log, or "(no log)". */
gchar *tkms_test_read_log_tail(const gchar *path);
/* Prints the tail of its log to stderr (async-signal-safe). */
void tkms_test_proc_dump_log(TkmsTestProc *tp);

/* A fresh directory tkms-test-XXXXXX (mode 0755: other users reach the bus socket and test
 * files) under $TMPDIR, or /tmp if other users could not reach $TMPDIR, with owner.pid;
 * registered with the abort handler (kept there if keep). Sweeps stale ones first. */
gchar *tkms_test_make_tmp_dir(gboolean keep, GError **error);
/* Unregisters dir and removes it (or says it is kept). */
void tkms_test_remove_tmp_dir(const gchar *dir, gboolean keep);
void tkms_test_rm_rf(const gchar *dir);
/* An async-signal-safe function the abort handler runs last. */
void tkms_test_add_abort_hook(void (*hook)(void));

/* TRUE if users other than the owner reach path: every directory on the way is searchable by
 * others and path has all of mode_bits for others. */
gboolean tkms_test_reachable_by_others(const gchar *path, mode_t mode_bits);

/* Where a command runs: its cwd, the private bus (may be NULL), and the staged libraries for
 * a run as another user (may be NULL). */
typedef struct {
	const gchar *cwd;
	const gchar *bus_address;
	const gchar *lib_dir;
} TkmsTestRunSpec;

/* Runs argv to completion (at most 30 s). FALSE only if it could not run or timed out;
 * *exit_status is the exit code or 128 + signal. */
gboolean tkms_test_run_command(const TkmsTestRunSpec *spec, const gchar *const *argv,
			       gchar **out_stdout, gchar **out_stderr, gint *exit_status,
			       GError **error);
/* Starts argv with stdin and stdout pipes (stderr inherited); not waited for. */
GSubprocess *tkms_test_spawn_piped(const TkmsTestRunSpec *spec, const gchar *const *argv,
				   GError **error);

/*
 * Staging. A checkout may sit where other users cannot reach it (a clone in /root is mode
 * 0700): a program of the build run there as nobody or as a test user fails with status 127.
 * A TkmsTestStage copies programs into DIR/bin and the build's shared libraries
 * ($TKMS_TEST_LIB_DIR: libtkms) into DIR/lib (all mode 0755); runs as another user get
 * LD_LIBRARY_PATH=DIR/lib, which comes before the binaries' build-tree RUNPATH.
 */
typedef struct _TkmsTestStage TkmsTestStage;
TkmsTestStage *tkms_test_stage_new(const gchar *dir);
void tkms_test_stage_free(TkmsTestStage *stage);
/* The staged copy of path (copied once). */
const gchar *tkms_test_stage_program(TkmsTestStage *stage, const gchar *path, GError **error);
/* What to run as another user in place of argv0: a staged copy for the build's programs
 * ($TKMS_TEST_HELPER, $TKMSCTL, $TKMS_TEST_DIRECT_UNSEAL, $TKMSD; staged wherever the checkout
 * is, so that every run takes the same path) and for any path others cannot reach, else
 * argv0 itself. */
gchar *tkms_test_stage_argv0(TkmsTestStage *stage, const gchar *argv0, GError **error);
/* DIR/lib once a program was staged with libraries, else NULL. */
const gchar *tkms_test_stage_get_lib_dir(TkmsTestStage *stage);

/* setpriv --reuid --regid --init-groups -- program args... for user (its own groups), or
 * --clear-groups for a bare uid (user NULL). NULL-terminated, owns its strings. */
GPtrArray *tkms_test_setpriv_argv(const gchar *user, guint32 uid, const gchar *program,
				  const gchar *const *args, GError **error);

G_END_DECLS
