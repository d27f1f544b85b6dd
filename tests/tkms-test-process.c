/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-process"

#include "tkms-test-process.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib/gstdio.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUN_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 10000
#define LOG_TAIL_BYTES 16384
#define MAX_PROCS 64
#define MAX_DIRS 16
#define MAX_HOOKS 4

G_DEFINE_QUARK(tkms-test-error-quark, tkms_test_error)

/* ---------------------------------------------------------------------------------------- */
/* Missing dependencies                                                                      */

static gboolean tap_output;

G_NORETURN void
tkms_test_skip_missing(const gchar *what)
{
	g_printerr("SKIP: %s\n", what);
	/* meson runs our TAP tests with --tap (g_test_init has consumed it by now) and, for the
	 * TAP protocol, takes a non-zero status for an error (77 included, meson 1.0): there
	 * the skip is said in TAP, a plan of 0 tests with a SKIP directive, and the status is 0.
	 * Everywhere else the status is 77. */
	if (tap_output) {
		g_print("1..0 # SKIP %s\n", what);
		exit(0);
	}
	exit(77);
}

G_NORETURN void
tkms_test_exit_on_error(const gchar *context, const GError *error)
{
	if (g_error_matches(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY))
		tkms_test_skip_missing(error->message);
	g_printerr("tkms-test-env: %s: %s\n", context, error->message);
	exit(1);
}

guint
tkms_test_timeout_factor(void)
{
	const gchar *v = g_getenv("TKMS_TEST_TIMEOUT_FACTOR");
	guint64 n = 1;

	if (v == NULL || !g_ascii_string_to_unsigned(v, 10, 1, 100, &n, NULL))
		return 1;
	return (guint)n;
}

guint
tkms_test_rss_factor(void)
{
	const gchar *v = g_getenv("TKMS_TEST_RSS_FACTOR");
	guint64 n = 1;

	if (v == NULL || !g_ascii_string_to_unsigned(v, 10, 1, 100, &n, NULL))
		return 1;
	return (guint)n;
}

gboolean
tkms_test_under_valgrind(void)
{
	return g_strcmp0(g_getenv("TKMS_TEST_VALGRIND"), "1") == 0;
}

void
tkms_test_skip_under_valgrind(const gchar *why)
{
	g_autofree gchar *what = NULL;

	if (!tkms_test_under_valgrind())
		return;
	what = g_strdup_printf("not under valgrind (TKMS_TEST_VALGRIND=1): %s", why);
	tkms_test_skip_missing(what);
}

gboolean
tkms_test_require_program(const gchar *program, const gchar *package, GError **error)
{
	g_autofree gchar *found = NULL;

	if (g_path_is_absolute(program))
		found = g_file_test(program, G_FILE_TEST_IS_EXECUTABLE) ? g_strdup(program) : NULL;
	else
		found = g_find_program_in_path(program);
	if (found != NULL)
		return TRUE;
	g_set_error(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY,
		    "%s is missing (install the Debian package %s)", program, package);
	return FALSE;
}

void
tkms_test_require_program_or_skip(const gchar *program, const gchar *package)
{
	g_autoptr(GError) error = NULL;

	if (!tkms_test_require_program(program, package, &error))
		tkms_test_skip_missing(error->message);
}

/* ---------------------------------------------------------------------------------------- */
/* Abort cleanup: async-signal-safe only (no malloc, no stdio, no GLib).                     */

static TkmsTestProc *volatile registered_procs[MAX_PROCS];
static struct {
	const char *volatile path;
	volatile gboolean keep;
} registered_dirs[MAX_DIRS];
static void (*volatile abort_hooks[MAX_HOOKS])(void);
static pid_t test_process_pid;

static void
safe_write(const char *s)
{
	size_t len = strlen(s);
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, s, len);
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

static void
dump_log_tail(const char *name, const char *path)
{
	char buf[4096];
	int fd;
	off_t size;

	if (path == NULL)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	safe_write("\n===== tkms-test-env: tail of ");
	safe_write(name);
	safe_write(" log (");
	safe_write(path);
	safe_write(") =====\n");
	size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > LOG_TAIL_BYTES ? size - LOG_TAIL_BYTES : 0, SEEK_SET);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (write(STDERR_FILENO, buf, (size_t)n) < 0)
			break;
	}
	close(fd);
	safe_write("===== end of log =====\n");
}

static void
abort_handler(int sig)
{
	if (getpid() != test_process_pid) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	for (guint i = 0; i < MAX_PROCS; i++)
		if (registered_procs[i] != NULL && registered_procs[i]->pid > 0)
			kill(registered_procs[i]->pid, SIGKILL);
	for (guint i = 0; i < MAX_PROCS; i++)
		if (registered_procs[i] != NULL)
			dump_log_tail(registered_procs[i]->name, registered_procs[i]->log_path);
	for (guint i = 0; i < MAX_DIRS; i++) {
		const char *dir = registered_dirs[i].path;
		if (dir == NULL)
			continue;
		if (registered_dirs[i].keep) {
			safe_write("tkms-test-env: kept ");
			safe_write(dir);
			safe_write("\n");
		} else {
			pid_t pid = fork();
			if (pid == 0) {
				execl("/bin/rm", "rm", "-rf", "--", dir, (char *)NULL);
				_exit(127);
			}
			if (pid > 0)
				waitpid(pid, NULL, 0);
		}
		registered_dirs[i].path = NULL;
	}
	for (guint i = 0; i < MAX_HOOKS; i++)
		if (abort_hooks[i] != NULL)
			abort_hooks[i]();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
install_abort_handler(void)
{
	static gsize once = 0;
	if (g_once_init_enter(&once)) {
		static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE,
					   SIGILL,  SIGTERM, SIGINT};
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = abort_handler;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESETHAND;
		test_process_pid = getpid();
		for (guint i = 0; i < G_N_ELEMENTS(sigs); i++)
			sigaction(sigs[i], &sa, NULL);
		/* g_test_init() removes --tap from argv; the kernel's copy still has it */
		{
			g_autofree gchar *cmdline = NULL;
			gsize len = 0;
			if (g_file_get_contents("/proc/self/cmdline", &cmdline, &len, NULL))
				for (gsize off = 0; off < len; off += strlen(cmdline + off) + 1)
					if (g_str_equal(cmdline + off, "--tap"))
						tap_output = TRUE;
		}
		g_once_init_leave(&once, 1);
	}
}

void
tkms_test_add_abort_hook(void (*hook)(void))
{
	install_abort_handler();
	for (guint i = 0; i < MAX_HOOKS; i++) {
		if (abort_hooks[i] == hook)
			return;
		if (abort_hooks[i] == NULL) {
			abort_hooks[i] = hook;
			return;
		}
	}
	g_warning("too many abort hooks");
}

static void
register_proc(TkmsTestProc *tp, gboolean add)
{
	for (guint i = 0; i < MAX_PROCS; i++) {
		if (add && registered_procs[i] == NULL) {
			registered_procs[i] = tp;
			return;
		}
		if (!add && registered_procs[i] == tp) {
			registered_procs[i] = NULL;
			return;
		}
	}
	if (add)
		g_warning("too many test processes: %s is not cleaned up on abort", tp->name);
}

static void
register_dir(const gchar *dir, gboolean keep, gboolean add)
{
	for (guint i = 0; i < MAX_DIRS; i++) {
		if (add && registered_dirs[i].path == NULL) {
			registered_dirs[i].keep = keep;
			registered_dirs[i].path = dir;
			return;
		}
		if (!add && registered_dirs[i].path == dir) {
			registered_dirs[i].path = NULL;
			return;
		}
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Temporary directories                                                                     */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(path) != 0 && errno != ENOENT)
		g_printerr("tkms-test-env: cannot remove %s: %s\n", path, g_strerror(errno));
	return 0;
}

void
tkms_test_rm_rf(const gchar *dir)
{
	if (dir != NULL && g_file_test(dir, G_FILE_TEST_IS_DIR))
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

gboolean
tkms_test_reachable_by_others(const gchar *path, mode_t mode_bits)
{
	g_autofree gchar *dir = NULL;
	struct stat st;

	if (!g_path_is_absolute(path) || stat(path, &st) != 0 ||
	    (st.st_mode & mode_bits) != mode_bits)
		return FALSE;
	dir = g_path_get_dirname(path);
	for (;;) {
		g_autofree gchar *parent = NULL;

		if (stat(dir, &st) != 0 || !(st.st_mode & S_IXOTH))
			return FALSE;
		parent = g_path_get_dirname(dir);
		if (g_str_equal(parent, dir))
			return TRUE;
		g_free(dir);
		dir = g_steal_pointer(&parent);
	}
}

/* Other users connect to the bus socket and read files in the env's directory: it must not
 * lie under a private $TMPDIR. */
static const gchar *
tmp_base(void)
{
	const gchar *base = g_get_tmp_dir();

	return tkms_test_reachable_by_others(base, S_IXOTH) ? base : "/tmp";
}

/* Removes directories of earlier runs whose test process is gone (killed with SIGKILL). */
static void
sweep_stale_dirs(void)
{
	static gsize once = 0;
	g_autoptr(GDir) dir = NULL;
	const gchar *entry;

	if (!g_once_init_enter(&once))
		return;
	dir = g_dir_open(tmp_base(), 0, NULL);
	while (dir != NULL && (entry = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *path = NULL;
		g_autofree gchar *owner_file = NULL;
		g_autofree gchar *contents = NULL;
		gint64 pid;

		if (!g_str_has_prefix(entry, "tkms-test-"))
			continue;
		path = g_build_filename(tmp_base(), entry, NULL);
		owner_file = g_build_filename(path, "owner.pid", NULL);
		if (!g_file_get_contents(owner_file, &contents, NULL, NULL))
			continue;
		pid = g_ascii_strtoll(contents, NULL, 10);
		if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		tkms_test_rm_rf(path);
	}
	g_once_init_leave(&once, 1);
}

gchar *
tkms_test_make_tmp_dir(gboolean keep, GError **error)
{
	g_autofree gchar *dir = g_build_filename(tmp_base(), "tkms-test-XXXXXX", NULL);
	g_autofree gchar *pid_file = NULL;
	g_autofree gchar *pid_str = NULL;

	install_abort_handler();
	sweep_stale_dirs();
	if (g_mkdtemp_full(dir, 0755) == NULL) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "mkdtemp %s: %s", dir,
			    g_strerror(errno));
		return NULL;
	}
	/* World-readable whatever the umask: other uids connect to the bus socket and read
	 * test files. */
	g_chmod(dir, 0755);
	pid_file = g_build_filename(dir, "owner.pid", NULL);
	pid_str = g_strdup_printf("%d\n", (int)getpid());
	if (!g_file_set_contents(pid_file, pid_str, -1, error)) {
		tkms_test_rm_rf(dir);
		return NULL;
	}
	register_dir(dir, keep, TRUE);
	return g_steal_pointer(&dir);
}

void
tkms_test_remove_tmp_dir(const gchar *dir, gboolean keep)
{
	if (dir == NULL)
		return;
	register_dir(dir, keep, FALSE);
	if (keep)
		g_printerr("tkms-test-env: kept %s\n", dir);
	else
		tkms_test_rm_rf(dir);
}

/* ---------------------------------------------------------------------------------------- */
/* Servers                                                                                   */

static void
child_setup(gpointer user_data)
{
	/* Die with the test process even if it is killed with SIGKILL. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != test_process_pid)
		_exit(127);
}

static void
launcher_setenv(GSubprocessLauncher *launcher, const gchar *bus_address, const gchar *lib_dir)
{
	if (bus_address != NULL) {
		g_subprocess_launcher_setenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS", bus_address, TRUE);
		g_subprocess_launcher_setenv(launcher, "TKMS_TEST_BUS_ADDRESS", bus_address, TRUE);
	}
	if (lib_dir != NULL)
		g_subprocess_launcher_setenv(launcher, "LD_LIBRARY_PATH", lib_dir, TRUE);
	g_subprocess_launcher_unsetenv(launcher, "DBUS_SESSION_BUS_ADDRESS");
	g_subprocess_launcher_unsetenv(launcher, "DBUS_STARTER_ADDRESS");
	g_subprocess_launcher_unsetenv(launcher, "TKMS_TCTI");
	g_subprocess_launcher_unsetenv(launcher, "TPM2TOOLS_TCTI");
	g_subprocess_launcher_unsetenv(launcher, "STATE_DIRECTORY");
	g_subprocess_launcher_setenv(launcher, "PYTHONDONTWRITEBYTECODE", "1", TRUE);
}

void
tkms_test_proc_init(TkmsTestProc *tp, const gchar *name, gchar *log_path)
{
	install_abort_handler();
	tp->name = name;
	tp->log_path = log_path;
	tp->proc = NULL;
	tp->pid = 0;
	register_proc(tp, TRUE);
}

void
tkms_test_proc_clear(TkmsTestProc *tp)
{
	tkms_test_proc_stop(tp, SIGTERM, STOP_TIMEOUT_MS, NULL);
	register_proc(tp, FALSE);
	g_clear_pointer(&tp->log_path, g_free);
}

gboolean
tkms_test_proc_is_running(TkmsTestProc *tp)
{
	return tp->proc != NULL && g_subprocess_get_identifier(tp->proc) != NULL;
}

gchar *
tkms_test_read_log_tail(const gchar *path)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;

	if (path == NULL || !g_file_get_contents(path, &contents, &len, NULL))
		return g_strdup("(no log)");
	if (len > LOG_TAIL_BYTES)
		return g_strdup_printf("...%s", contents + len - LOG_TAIL_BYTES);
	return g_steal_pointer(&contents);
}

void
tkms_test_proc_dump_log(TkmsTestProc *tp)
{
	dump_log_tail(tp->name, tp->log_path);
}

static gchar *
describe_exit(TkmsTestProc *tp)
{
	if (tkms_test_proc_is_running(tp))
		return g_strdup("still running");
	if (g_subprocess_get_if_exited(tp->proc))
		return g_strdup_printf("exited with status %d",
				       g_subprocess_get_exit_status(tp->proc));
	if (g_subprocess_get_if_signaled(tp->proc))
		return g_strdup_printf("killed by signal %d", g_subprocess_get_term_sig(tp->proc));
	return g_strdup("gone");
}

void
tkms_test_proc_set_error(TkmsTestProc *tp, const gchar *what, GError **error)
{
	g_autofree gchar *how = tp->proc != NULL ? describe_exit(tp) : g_strdup("not started");
	g_autofree gchar *log = tkms_test_read_log_tail(tp->log_path);
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s (%s); its output:\n%s", tp->name,
		    what, how, log);
}

gboolean
tkms_test_proc_start(TkmsTestProc *tp, const gchar *const *argv, const gchar *cwd,
		     const gchar *bus_address, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	int fd;

	g_return_val_if_fail(!tkms_test_proc_is_running(tp), FALSE);
	g_clear_object(&tp->proc);
	tp->pid = 0;

	fd = g_open(tp->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "open %s: %s",
			    tp->log_path, g_strerror(errno));
		return FALSE;
	}
	/* stdin is /dev/null; stdout and stderr go to the log. */
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_subprocess_launcher_take_stdout_fd(launcher, fd);
	g_subprocess_launcher_set_child_setup(launcher, child_setup, NULL, NULL);
	g_subprocess_launcher_set_cwd(launcher, cwd);
	launcher_setenv(launcher, bus_address, NULL);

	{
		g_autofree gchar *cmd = g_strjoinv(" ", (gchar **)argv);
		g_autofree gchar *line = g_strdup_printf("+ %s\n", cmd);
		FILE *f = fopen(tp->log_path, "a");
		if (f != NULL) {
			fputs(line, f);
			fclose(f);
		}
	}
	tp->proc = g_subprocess_launcher_spawnv(launcher, argv, error);
	if (tp->proc == NULL) {
		g_prefix_error(error, "%s: ", tp->name);
		return FALSE;
	}
	tp->pid = (pid_t)g_ascii_strtoll(g_subprocess_get_identifier(tp->proc), NULL, 10);
	return TRUE;
}

static gboolean
proc_wait_exit(TkmsTestProc *tp, guint timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (tkms_test_proc_is_running(tp)) {
		if (g_get_monotonic_time() > deadline)
			return FALSE;
		g_usleep(5000);
	}
	return TRUE;
}

gboolean
tkms_test_proc_stop(TkmsTestProc *tp, gint sig, guint timeout_ms, gint *status)
{
	gboolean in_time = TRUE;

	if (tp->proc == NULL)
		return TRUE;
	if (tkms_test_proc_is_running(tp)) {
		g_subprocess_send_signal(tp->proc, sig);
		in_time = proc_wait_exit(tp, timeout_ms);
		if (!in_time) {
			g_subprocess_force_exit(tp->proc);
			proc_wait_exit(tp, G_MAXUINT);
		}
	}
	if (status != NULL) {
		if (g_subprocess_get_if_exited(tp->proc))
			*status = g_subprocess_get_exit_status(tp->proc);
		else if (g_subprocess_get_if_signaled(tp->proc))
			*status = -g_subprocess_get_term_sig(tp->proc);
		else
			*status = -1;
	}
	tp->pid = 0;
	g_clear_object(&tp->proc);
	return in_time;
}

gboolean
tkms_test_proc_signal(TkmsTestProc *tp, gint sig)
{
	if (!tkms_test_proc_is_running(tp))
		return FALSE;
	/* kill() now: g_subprocess_send_signal() only queues it for GLib's worker thread, and a
	 * test that stops swtpm must have it stopped before its next call reaches it */
	return kill(tp->pid, sig) == 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Commands                                                                                  */

typedef struct {
	gboolean done;
	gchar *out;
	gchar *err;
	GError *error;
} CommunicateData;

static void
communicate_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	CommunicateData *data = user_data;
	g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), res, &data->out, &data->err,
					     &data->error);
	data->done = TRUE;
}

static GSubprocessLauncher *
command_launcher(const TkmsTestRunSpec *spec, GSubprocessFlags flags)
{
	GSubprocessLauncher *launcher = g_subprocess_launcher_new(flags);

	install_abort_handler();
	g_subprocess_launcher_set_child_setup(launcher, child_setup, NULL, NULL);
	g_subprocess_launcher_set_cwd(launcher, spec->cwd);
	launcher_setenv(launcher, spec->bus_address, spec->lib_dir);
	return launcher;
}

gboolean
tkms_test_run_command(const TkmsTestRunSpec *spec, const gchar *const *argv, gchar **out_stdout,
		      gchar **out_stderr, gint *exit_status, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GMainContext) ctx = g_main_context_new();
	CommunicateData data = {0};
	/* a sanitizer build's tkmsctl verifying a big audit log takes longer than 30 s */
	guint timeout_ms = RUN_TIMEOUT_MS * tkms_test_timeout_factor();
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	gboolean timed_out = FALSE;

	launcher = command_launcher(spec, G_SUBPROCESS_FLAGS_STDIN_PIPE |
						  G_SUBPROCESS_FLAGS_STDOUT_PIPE |
						  G_SUBPROCESS_FLAGS_STDERR_PIPE);
	proc = g_subprocess_launcher_spawnv(launcher, argv, error);
	if (proc == NULL)
		return FALSE;

	g_main_context_push_thread_default(ctx);
	g_subprocess_communicate_utf8_async(proc, NULL, NULL, communicate_done, &data);
	while (!data.done) {
		if (!timed_out && g_get_monotonic_time() > deadline) {
			timed_out = TRUE;
			g_subprocess_force_exit(proc);
		}
		if (!g_main_context_iteration(ctx, FALSE))
			g_usleep(2000);
	}
	g_subprocess_wait(proc, NULL, NULL);
	g_main_context_pop_thread_default(ctx);

	if (data.error != NULL) {
		g_propagate_error(error, data.error);
		g_free(data.out);
		g_free(data.err);
		return FALSE;
	}
	if (timed_out) {
		g_autofree gchar *cmd = g_strjoinv(" ", (gchar **)argv);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "'%s' did not finish in %u s; stderr: %s", cmd, timeout_ms / 1000,
			    data.err);
		g_free(data.out);
		g_free(data.err);
		return FALSE;
	}
	if (exit_status != NULL) {
		if (g_subprocess_get_if_exited(proc))
			*exit_status = g_subprocess_get_exit_status(proc);
		else
			*exit_status = 128 + g_subprocess_get_term_sig(proc);
	}
	if (out_stdout != NULL)
		*out_stdout = g_steal_pointer(&data.out);
	if (out_stderr != NULL)
		*out_stderr = g_steal_pointer(&data.err);
	g_free(data.out);
	g_free(data.err);
	return TRUE;
}

GSubprocess *
tkms_test_spawn_piped(const TkmsTestRunSpec *spec, const gchar *const *argv, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = command_launcher(
		spec, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);

	return g_subprocess_launcher_spawnv(launcher, argv, error);
}

/* ---------------------------------------------------------------------------------------- */
/* Other users                                                                               */

GPtrArray *
tkms_test_setpriv_argv(const gchar *user, guint32 uid, const gchar *program,
		       const gchar *const *args, GError **error)
{
	g_autoptr(GPtrArray) full = g_ptr_array_new_with_free_func(g_free);

	if (!tkms_test_require_program("setpriv", "util-linux", error))
		return NULL;
	g_ptr_array_add(full, g_strdup("setpriv"));
	if (user != NULL) {
		struct passwd *pw = getpwnam(user);
		if (pw == NULL) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no user %s", user);
			return NULL;
		}
		g_ptr_array_add(full, g_strdup_printf("--reuid=%u", (guint)pw->pw_uid));
		g_ptr_array_add(full, g_strdup_printf("--regid=%u", (guint)pw->pw_gid));
		g_ptr_array_add(full, g_strdup("--init-groups"));
	} else {
		g_ptr_array_add(full, g_strdup_printf("--reuid=%u", uid));
		g_ptr_array_add(full, g_strdup_printf("--regid=%u", uid));
		g_ptr_array_add(full, g_strdup("--clear-groups"));
	}
	g_ptr_array_add(full, g_strdup("--"));
	g_ptr_array_add(full, g_strdup(program));
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(full, g_strdup(args[i]));
	g_ptr_array_add(full, NULL);
	return g_steal_pointer(&full);
}

gboolean
tkms_test_ensure_user(const gchar *name, guint32 *uid, guint32 *gid, GError **error)
{
	struct passwd *pw = getpwnam(name);

	if (pw == NULL) {
		const gchar *useradd = g_file_test("/usr/sbin/useradd", G_FILE_TEST_IS_EXECUTABLE)
					       ? "/usr/sbin/useradd"
					       : "useradd";
		const gchar *argv[] = {useradd,	  "--system",	     "--no-create-home",
				       "--user-group", "--home-dir",     "/nonexistent",
				       "--shell",      "/usr/sbin/nologin", name,
				       NULL};
		g_autofree gchar *err = NULL;
		gint status = -1;

		GSpawnFlags flags = G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL;

		if (!tkms_test_require_program(useradd, "passwd", error))
			return FALSE;
		if (geteuid() != 0) {
			g_set_error(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY,
				    "the test user %s is missing and only root can create it", name);
			return FALSE;
		}
		if (!g_spawn_sync(NULL, (gchar **)argv, NULL, flags, NULL, NULL, NULL, &err,
				  &status, error))
			return FALSE;
		/* a parallel run may have created it first: look again either way */
		pw = getpwnam(name);
		if (pw == NULL) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "cannot create the test user %s (useradd status %d): %s", name,
				    status, err ? err : "");
			return FALSE;
		}
	}
	if (uid != NULL)
		*uid = pw->pw_uid;
	if (gid != NULL)
		*gid = pw->pw_gid;
	return TRUE;
}

/* ---------------------------------------------------------------------------------------- */
/* Staging                                                                                   */

struct _TkmsTestStage {
	gchar *dir;
	gchar *lib_dir;
	GHashTable *programs; /* source path -> staged path */
};

TkmsTestStage *
tkms_test_stage_new(const gchar *dir)
{
	TkmsTestStage *stage = g_new0(TkmsTestStage, 1);

	stage->dir = g_strdup(dir);
	stage->programs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	return stage;
}

void
tkms_test_stage_free(TkmsTestStage *stage)
{
	if (stage == NULL)
		return;
	g_free(stage->dir);
	g_free(stage->lib_dir);
	g_hash_table_unref(stage->programs);
	g_free(stage);
}

const gchar *
tkms_test_stage_get_lib_dir(TkmsTestStage *stage)
{
	return stage->lib_dir;
}

static gboolean
mkdir_reachable(const gchar *path, GError **error)
{
	if (g_mkdir(path, 0755) != 0 && errno != EEXIST) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "mkdir %s: %s", path,
			    g_strerror(errno));
		return FALSE;
	}
	/* whatever the umask */
	g_chmod(path, 0755);
	return TRUE;
}

static gboolean
copy_reachable(const gchar *src, const gchar *dest, GError **error)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;

	if (!g_file_get_contents(src, &contents, &len, error) ||
	    !g_file_set_contents_full(dest, contents, (gssize)len, G_FILE_SET_CONTENTS_NONE, 0755,
				      error))
		return FALSE;
	g_chmod(dest, 0755);
	return TRUE;
}

/* Copies every lib*.so* of $TKMS_TEST_LIB_DIR (symlinks as symlinks), once. */
static gboolean
stage_libraries(TkmsTestStage *stage, GError **error)
{
	const gchar *src_dir = g_getenv("TKMS_TEST_LIB_DIR");
	g_autofree gchar *lib_dir = g_build_filename(stage->dir, "lib", NULL);
	g_autoptr(GDir) dir = NULL;
	const gchar *entry;

	if (stage->lib_dir != NULL || src_dir == NULL || *src_dir == '\0')
		return TRUE;
	if (!mkdir_reachable(lib_dir, error))
		return FALSE;
	dir = g_dir_open(src_dir, 0, error);
	if (dir == NULL) {
		g_prefix_error(error, "TKMS_TEST_LIB_DIR: ");
		return FALSE;
	}
	while ((entry = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *src = g_build_filename(src_dir, entry, NULL);
		g_autofree gchar *dest = g_build_filename(lib_dir, entry, NULL);
		g_autofree gchar *target = NULL;

		if (!g_str_has_prefix(entry, "lib") || strstr(entry, ".so") == NULL ||
		    !g_file_test(src, G_FILE_TEST_IS_REGULAR))
			continue;
		target = g_file_read_link(src, NULL);
		if (target != NULL && strchr(target, '/') == NULL) {
			if (symlink(target, dest) != 0 && errno != EEXIST) {
				g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
					    "symlink %s: %s", dest, g_strerror(errno));
				return FALSE;
			}
		} else if (!copy_reachable(src, dest, error)) {
			return FALSE;
		}
	}
	stage->lib_dir = g_steal_pointer(&lib_dir);
	return TRUE;
}

const gchar *
tkms_test_stage_program(TkmsTestStage *stage, const gchar *path, GError **error)
{
	g_autofree gchar *bin_dir = g_build_filename(stage->dir, "bin", NULL);
	g_autofree gchar *sub = g_strdup_printf("%u", g_hash_table_size(stage->programs));
	g_autofree gchar *sub_dir = g_build_filename(bin_dir, sub, NULL);
	g_autofree gchar *base = NULL;
	g_autofree gchar *dest = NULL;
	const gchar *staged = g_hash_table_lookup(stage->programs, path);

	if (staged != NULL)
		return staged;
	if (!g_file_test(path, G_FILE_TEST_IS_EXECUTABLE)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no program %s to stage",
			    path);
		return NULL;
	}
	/* one subdirectory per program: two programs may share a basename */
	if (!mkdir_reachable(stage->dir, error) || !mkdir_reachable(bin_dir, error) ||
	    !mkdir_reachable(sub_dir, error) || !stage_libraries(stage, error))
		return NULL;
	base = g_path_get_basename(path);
	dest = g_build_filename(sub_dir, base, NULL);
	if (!copy_reachable(path, dest, error)) {
		g_prefix_error(error, "staging %s: ", path);
		return NULL;
	}
	staged = dest;
	g_hash_table_insert(stage->programs, g_strdup(path), g_steal_pointer(&dest));
	return staged;
}

static gboolean
is_build_program(const gchar *path)
{
	static const gchar *const vars[] = {"TKMS_TEST_HELPER", "TKMSCTL",
					    "TKMS_TEST_DIRECT_UNSEAL", "TKMSD"};

	for (guint i = 0; i < G_N_ELEMENTS(vars); i++)
		if (g_strcmp0(g_getenv(vars[i]), path) == 0)
			return TRUE;
	return FALSE;
}

gchar *
tkms_test_stage_argv0(TkmsTestStage *stage, const gchar *argv0, GError **error)
{
	const gchar *staged;

	if (strchr(argv0, '/') == NULL ||
	    (!is_build_program(argv0) && tkms_test_reachable_by_others(argv0, S_IXOTH)))
		return g_strdup(argv0);
	staged = tkms_test_stage_program(stage, argv0, error);
	return staged != NULL ? g_strdup(staged) : NULL;
}
