/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-env"

#include "tkms-test-env.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/file.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAME_TIMEOUT_MS 20000
#define TPM_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000
#define RUN_TIMEOUT_MS 30000
#define LOG_TAIL_BYTES 16384
#define MAX_ENVS 16

#define POLKIT_BUS_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_IFACE "org.freedesktop.PolicyKit1.Authority"
#define DBUSMOCK_IFACE "org.freedesktop.DBus.Mock"

typedef struct {
	const gchar *name;
	gchar *log_path;
	GSubprocess *proc;
	volatile pid_t pid; /* read by the crash handler; 0 when not running */
} TestProc;

struct _TkmsTestEnv {
	gchar *tmp_dir;
	gchar *bus_dir;
	gchar *policy_dir;
	gchar *tpm_dir;
	gchar *state_dir;
	gchar *config_path;
	gchar *dbus_conf_path;
	gchar *bus_address;
	gchar *tcti;
	guint16 tpm_port;
	gboolean keep;

	/* copies of what runs as another user (section "Staging" below) */
	gchar *stage_dir;
	gchar *stage_lib_dir;
	GHashTable *staged; /* source path -> staged path */

	GDBusConnection *connection;
	TkmsClient *client;

	TestProc swtpm;
	TestProc dbus;
	TestProc polkit;
	TestProc daemon;

	/* the real polkitd instead of the mock (section "The real polkitd" below) */
	gboolean real_polkit;
	gchar *polkit_rules;
	guint rules_generation;
};

static const gchar *const all_actions[] = {
	TKMS_ACTION_READ_KEY, TKMS_ACTION_CREATE_KEY, TKMS_ACTION_USE_KEY,
	TKMS_ACTION_SEAL, TKMS_ACTION_DESTROY_KEY, TKMS_ACTION_MANAGE_KEY,
	TKMS_ACTION_READ_SECRET, TKMS_ACTION_ADMIN, NULL,
};

const gchar *const *
tkms_test_all_actions(void)
{
	return all_actions;
}

/* ---------------------------------------------------------------------------------------- */
/* Crash cleanup: async-signal-safe only (no malloc, no stdio, no GLib).                     */

static TkmsTestEnv *volatile registered_envs[MAX_ENVS];
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

static void polkit_files_remove_signal_safe(void);

static void
crash_handler(int sig)
{
	if (getpid() != test_process_pid) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	for (guint i = 0; i < MAX_ENVS; i++) {
		TkmsTestEnv *env = registered_envs[i];
		TestProc *procs[4];
		if (env == NULL)
			continue;
		procs[0] = &env->daemon;
		procs[1] = &env->polkit;
		procs[2] = &env->dbus;
		procs[3] = &env->swtpm;
		for (guint p = 0; p < G_N_ELEMENTS(procs); p++)
			if (procs[p]->pid > 0)
				kill(procs[p]->pid, SIGKILL);
		for (guint p = 0; p < G_N_ELEMENTS(procs); p++)
			dump_log_tail(procs[p]->name, procs[p]->log_path);
		if (env->keep) {
			safe_write("tkms-test-env: kept ");
			safe_write(env->tmp_dir);
			safe_write("\n");
		} else if (env->tmp_dir != NULL) {
			pid_t pid = fork();
			if (pid == 0) {
				execl("/bin/rm", "rm", "-rf", "--", env->tmp_dir, (char *)NULL);
				_exit(127);
			}
			if (pid > 0)
				waitpid(pid, NULL, 0);
		}
		registered_envs[i] = NULL;
	}
	polkit_files_remove_signal_safe();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
install_crash_handler(void)
{
	static gsize once = 0;
	if (g_once_init_enter(&once)) {
		static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE,
					   SIGILL,  SIGTERM, SIGINT};
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = crash_handler;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESETHAND;
		test_process_pid = getpid();
		for (guint i = 0; i < G_N_ELEMENTS(sigs); i++)
			sigaction(sigs[i], &sa, NULL);
		g_once_init_leave(&once, 1);
	}
}

static void
register_env(TkmsTestEnv *env, gboolean add)
{
	for (guint i = 0; i < MAX_ENVS; i++) {
		if (add && registered_envs[i] == NULL) {
			registered_envs[i] = env;
			return;
		}
		if (!add && registered_envs[i] == env) {
			registered_envs[i] = NULL;
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

static void
rm_rf(const gchar *dir)
{
	if (dir != NULL && g_file_test(dir, G_FILE_TEST_IS_DIR))
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* TRUE if a user other than the owner (and outside its group) can reach path: every
 * directory on the way is searchable by others, and path itself has all of mode_bits for
 * others (S_IXOTH for a directory or program, S_IROTH | S_IXOTH for a script). */
static gboolean
reachable_by_others(const gchar *path, mode_t mode_bits)
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

	return reachable_by_others(base, S_IXOTH) ? base : "/tmp";
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
		rm_rf(path);
	}
	g_once_init_leave(&once, 1);
}

/* ---------------------------------------------------------------------------------------- */
/* Processes                                                                                 */

static void
child_setup(gpointer user_data)
{
	/* Die with the test process even if it is killed with SIGKILL. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != test_process_pid)
		_exit(127);
}

static gboolean
proc_is_running(TestProc *tp)
{
	return tp->proc != NULL && g_subprocess_get_identifier(tp->proc) != NULL;
}

static gchar *
read_log_tail(const gchar *path)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;

	if (path == NULL || !g_file_get_contents(path, &contents, &len, NULL))
		return g_strdup("(no log)");
	if (len > LOG_TAIL_BYTES)
		return g_strdup_printf("...%s", contents + len - LOG_TAIL_BYTES);
	return g_steal_pointer(&contents);
}

static gchar *
describe_exit(TestProc *tp)
{
	if (proc_is_running(tp))
		return g_strdup("still running");
	if (g_subprocess_get_if_exited(tp->proc))
		return g_strdup_printf("exited with status %d",
				       g_subprocess_get_exit_status(tp->proc));
	if (g_subprocess_get_if_signaled(tp->proc))
		return g_strdup_printf("killed by signal %d", g_subprocess_get_term_sig(tp->proc));
	return g_strdup("gone");
}

static void
set_proc_error(GError **error, TestProc *tp, const gchar *what)
{
	g_autofree gchar *how = tp->proc != NULL ? describe_exit(tp) : g_strdup("not started");
	g_autofree gchar *log = read_log_tail(tp->log_path);
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s (%s); its output:\n%s", tp->name,
		    what, how, log);
}

static void
launcher_setenv(TkmsTestEnv *env, GSubprocessLauncher *launcher)
{
	if (env->bus_address != NULL) {
		g_subprocess_launcher_setenv(launcher, "DBUS_SYSTEM_BUS_ADDRESS", env->bus_address,
					     TRUE);
		g_subprocess_launcher_setenv(launcher, "TKMS_TEST_BUS_ADDRESS", env->bus_address,
					     TRUE);
	}
	g_subprocess_launcher_unsetenv(launcher, "DBUS_SESSION_BUS_ADDRESS");
	g_subprocess_launcher_unsetenv(launcher, "DBUS_STARTER_ADDRESS");
	g_subprocess_launcher_unsetenv(launcher, "TKMS_TCTI");
	g_subprocess_launcher_unsetenv(launcher, "TPM2TOOLS_TCTI");
	g_subprocess_launcher_unsetenv(launcher, "STATE_DIRECTORY");
	g_subprocess_launcher_setenv(launcher, "PYTHONDONTWRITEBYTECODE", "1", TRUE);
}

static gboolean
proc_start(TkmsTestEnv *env, TestProc *tp, const gchar *const *argv, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	int fd;

	g_return_val_if_fail(!proc_is_running(tp), FALSE);
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
	g_subprocess_launcher_set_cwd(launcher, env->tmp_dir);
	launcher_setenv(env, launcher);

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
proc_wait_exit(TestProc *tp, guint timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (proc_is_running(tp)) {
		if (g_get_monotonic_time() > deadline)
			return FALSE;
		g_usleep(5000);
	}
	return TRUE;
}

/* Stops a process: sig, then SIGKILL after timeout_ms. Returns TRUE if it exited by itself
 * (after sig) within the timeout; *status is the exit status or -signal. */
static gboolean
proc_stop(TestProc *tp, gint sig, guint timeout_ms, gint *status)
{
	gboolean in_time = TRUE;

	if (tp->proc == NULL)
		return TRUE;
	if (proc_is_running(tp)) {
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

/* Runs argv to completion, with a timeout; used for tpm2-tools and run_as_user. */
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

static void launcher_set_staged_libs(TkmsTestEnv *env, GSubprocessLauncher *launcher);

static gboolean
run_command(TkmsTestEnv *env, const gchar *const *argv, const gchar *cwd, gboolean as_other,
	    gchar **out_stdout, gchar **out_stderr, gint *exit_status, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GMainContext) ctx = g_main_context_new();
	CommunicateData data = {0};
	gint64 deadline = g_get_monotonic_time() + (gint64)RUN_TIMEOUT_MS * 1000;
	gboolean timed_out = FALSE;

	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
					     G_SUBPROCESS_FLAGS_STDOUT_PIPE |
					     G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_subprocess_launcher_set_child_setup(launcher, child_setup, NULL, NULL);
	g_subprocess_launcher_set_cwd(launcher, cwd);
	launcher_setenv(env, launcher);
	if (as_other)
		launcher_set_staged_libs(env, launcher);
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
			    "'%s' did not finish in %d s; stderr: %s", cmd, RUN_TIMEOUT_MS / 1000,
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

/* ---------------------------------------------------------------------------------------- */
/* Staging: what runs as another user                                                        */
/*
 * A checkout may sit where other users cannot reach it (a clone in /root, mode 0700): a test
 * program run there as nobody or as a test user fails with "Permission denied" (status 127).
 * So the build's programs (and any other program those users could not reach) are copied into
 * ENV/stage/bin, and the build's shared libraries ($TKMS_TEST_LIB_DIR: libtkms) into
 * ENV/stage/lib, which LD_LIBRARY_PATH names for those runs (it comes before the binaries'
 * build-tree RUNPATH). The build's programs are staged wherever the checkout is, so that every
 * run exercises the same path.
 */

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

/* Copies every lib*.so* of $TKMS_TEST_LIB_DIR (symlinks as symlinks) once per env. */
static gboolean
stage_libraries(TkmsTestEnv *env, GError **error)
{
	const gchar *src_dir = g_getenv("TKMS_TEST_LIB_DIR");
	g_autofree gchar *lib_dir = g_build_filename(env->stage_dir, "lib", NULL);
	g_autoptr(GDir) dir = NULL;
	const gchar *entry;

	if (env->stage_lib_dir != NULL || src_dir == NULL || *src_dir == '\0')
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

		if (!g_str_has_prefix(entry, "lib") || strstr(entry, ".so") == NULL)
			continue;
		if (!g_file_test(src, G_FILE_TEST_IS_REGULAR))
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
	env->stage_lib_dir = g_steal_pointer(&lib_dir);
	return TRUE;
}

/* TRUE for the programs this build made ($TKMS_TEST_HELPER, $TKMSCTL, ...). */
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

const gchar *
tkms_test_env_stage_program(TkmsTestEnv *env, const gchar *path, GError **error)
{
	g_autofree gchar *bin_dir = NULL;
	g_autofree gchar *base = NULL;
	g_autofree gchar *dest = NULL;
	const gchar *staged;

	if (env->staged == NULL)
		env->staged = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	staged = g_hash_table_lookup(env->staged, path);
	if (staged != NULL)
		return staged;
	if (!g_file_test(path, G_FILE_TEST_IS_EXECUTABLE)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no program %s to stage",
			    path);
		return NULL;
	}
	env->stage_dir = env->stage_dir ? env->stage_dir
					: g_build_filename(env->tmp_dir, "stage", NULL);
	bin_dir = g_build_filename(env->stage_dir, "bin", NULL);
	if (!mkdir_reachable(env->stage_dir, error) || !mkdir_reachable(bin_dir, error) ||
	    !stage_libraries(env, error))
		return NULL;
	/* one subdirectory per program: two programs may share a basename */
	base = g_path_get_basename(path);
	{
		g_autofree gchar *sub = g_strdup_printf("%u", g_hash_table_size(env->staged));
		g_autofree gchar *sub_dir = g_build_filename(bin_dir, sub, NULL);
		if (!mkdir_reachable(sub_dir, error))
			return NULL;
		dest = g_build_filename(sub_dir, base, NULL);
	}
	if (!copy_reachable(path, dest, error)) {
		g_prefix_error(error, "staging %s: ", path);
		return NULL;
	}
	staged = dest;
	g_hash_table_insert(env->staged, g_strdup(path), g_steal_pointer(&dest));
	return staged;
}

/* *program: what to run as another user in place of argv0 (a staged copy if needed). */
static gboolean
stage_argv0(TkmsTestEnv *env, const gchar *argv0, gchar **program, GError **error)
{
	const gchar *staged;

	if (strchr(argv0, '/') == NULL ||
	    (!is_build_program(argv0) && reachable_by_others(argv0, S_IXOTH))) {
		*program = g_strdup(argv0);
		return TRUE;
	}
	staged = tkms_test_env_stage_program(env, argv0, error);
	if (staged == NULL)
		return FALSE;
	*program = g_strdup(staged);
	return TRUE;
}

static void
launcher_set_staged_libs(TkmsTestEnv *env, GSubprocessLauncher *launcher)
{
	if (env->stage_lib_dir != NULL)
		g_subprocess_launcher_setenv(launcher, "LD_LIBRARY_PATH", env->stage_lib_dir,
					     TRUE);
}

/* ---------------------------------------------------------------------------------------- */
/* swtpm                                                                                     */

gboolean
tkms_test_port_is_free(guint16 port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	gboolean ok;

	if (fd < 0)
		return FALSE;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

gboolean
tkms_test_port_accepts(guint16 port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	gboolean ok;

	if (fd < 0)
		return FALSE;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Starts swtpm on env->tpm_port and waits until its control port accepts connections. */
static gboolean
swtpm_start_on_port(TkmsTestEnv *env, GError **error)
{
	g_autofree gchar *server = g_strdup_printf("type=tcp,port=%u,bindaddr=127.0.0.1",
						   env->tpm_port);
	g_autofree gchar *ctrl = g_strdup_printf("type=tcp,port=%u,bindaddr=127.0.0.1",
						 env->tpm_port + 1);
	g_autofree gchar *state = g_strdup_printf("dir=%s", env->tpm_dir);
	const gchar *argv[] = {"swtpm",	  "socket", "--tpm2", "--flags",
			       "not-need-init,startup-clear", "--server", server,
			       "--ctrl",  ctrl,	    "--tpmstate", state,
			       NULL};
	gint64 deadline = g_get_monotonic_time() + (gint64)TPM_TIMEOUT_MS * 1000;

	if (!proc_start(env, &env->swtpm, argv, error))
		return FALSE;
	for (;;) {
		if (!proc_is_running(&env->swtpm)) {
			set_proc_error(error, &env->swtpm, "exited during start-up");
			return FALSE;
		}
		if (tkms_test_port_accepts(env->tpm_port + 1)) {
			/* Make sure it is our swtpm that answered, not one of a parallel test. */
			g_usleep(50000);
			if (proc_is_running(&env->swtpm))
				return TRUE;
			continue;
		}
		if (g_get_monotonic_time() > deadline) {
			set_proc_error(error, &env->swtpm, "control port never accepted");
			proc_stop(&env->swtpm, SIGKILL, 1000, NULL);
			return FALSE;
		}
		g_usleep(10000);
	}
}

static gboolean
swtpm_start_new(TkmsTestEnv *env, GError **error)
{
	g_autoptr(GError) last = NULL;

	for (guint attempt = 0; attempt < 20; attempt++) {
		guint16 port = (guint16)(g_random_int_range(20000, 60000) & ~1);
		if (!tkms_test_port_is_free(port) || !tkms_test_port_is_free(port + 1))
			continue;
		env->tpm_port = port;
		g_clear_error(&last);
		if (swtpm_start_on_port(env, &last))
			break;
	}
	if (last != NULL || env->tpm_port == 0) {
		if (last != NULL)
			g_propagate_error(error, g_steal_pointer(&last));
		else
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "no free pair of TCP ports found for swtpm");
		return FALSE;
	}
	g_free(env->tcti);
	env->tcti = g_strdup_printf("swtpm:host=127.0.0.1,port=%u", env->tpm_port);
	return TRUE;
}

gboolean
tkms_test_env_start_tpm(TkmsTestEnv *env, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)TPM_TIMEOUT_MS * 1000;

	g_return_val_if_fail(!proc_is_running(&env->swtpm), FALSE);
	/* Same port as before: the daemon was started with that TCTI. Retry while the old
	 * socket lingers. */
	for (;;) {
		g_autoptr(GError) local = NULL;
		if (swtpm_start_on_port(env, &local))
			return TRUE;
		if (g_get_monotonic_time() > deadline) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		g_usleep(200000);
	}
}

gboolean
tkms_test_env_stop_tpm(TkmsTestEnv *env, GError **error)
{
	gint status = 0;

	if (!proc_stop(&env->swtpm, SIGTERM, STOP_TIMEOUT_MS, &status)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "swtpm did not exit on SIGTERM within %d s", STOP_TIMEOUT_MS / 1000);
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_env_signal_tpm(TkmsTestEnv *env, gint sig)
{
	if (!proc_is_running(&env->swtpm))
		return FALSE;
	g_subprocess_send_signal(env->swtpm.proc, sig);
	return TRUE;
}

/* ---------------------------------------------------------------------------------------- */
/* dbus-daemon and polkit mock                                                               */

static const gchar bus_config_template[] =
	"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	"<!-- Generated by tkms-test-env: a private bus configured like the system bus. -->\n"
	"<busconfig>\n"
	"  <type>system</type>\n"
	"  <listen>unix:path=%s</listen>\n"
	"  <auth>EXTERNAL</auth>\n"
	"  <policy context=\"default\">\n"
	"    <allow user=\"*\"/>\n"
	"    <deny own=\"*\"/>\n"
	"    <deny send_type=\"method_call\"/>\n"
	"    <allow send_type=\"signal\"/>\n"
	"    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
	"    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
	"    <allow receive_type=\"method_call\"/>\n"
	"    <allow receive_type=\"method_return\"/>\n"
	"    <allow receive_type=\"error\"/>\n"
	"    <allow receive_type=\"signal\"/>\n"
	"    <allow send_destination=\"org.freedesktop.DBus\"\n"
	"           send_interface=\"org.freedesktop.DBus\"/>\n"
	"    <allow send_destination=\"org.freedesktop.DBus\"\n"
	"           send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
	"    <allow send_destination=\"org.freedesktop.DBus\"\n"
	"           send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
	"    <deny send_destination=\"org.freedesktop.DBus\"\n"
	"          send_interface=\"org.freedesktop.DBus\"\n"
	"          send_member=\"UpdateActivationEnvironment\"/>\n"
	"    <deny send_destination=\"org.freedesktop.DBus\"\n"
	"          send_interface=\"org.freedesktop.DBus.Debug.Stats\"/>\n"
	"  </policy>\n"
	"  <policy user=\"root\">\n"
	"    <allow send_destination=\"org.freedesktop.DBus\"\n"
	"           send_interface=\"org.freedesktop.DBus.Monitoring\"/>\n"
	"  </policy>\n"
	"  <includedir>%s</includedir>\n"
	"</busconfig>\n";

/* Test-only: the polkit mock runs as root and everybody may call it, as on a real system. */
static const gchar polkit_mock_policy[] =
	"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	"<busconfig>\n"
	"  <policy user=\"root\">\n"
	"    <allow own=\"org.freedesktop.PolicyKit1\"/>\n"
	"  </policy>\n"
	"  <policy context=\"default\">\n"
	"    <allow send_destination=\"org.freedesktop.PolicyKit1\"/>\n"
	"  </policy>\n"
	"</busconfig>\n";

static gboolean write_polkitd_bus_policy(TkmsTestEnv *env, GError **error);

static gboolean
write_bus_config(TkmsTestEnv *env, GError **error)
{
	const gchar *data_dir = g_getenv("TKMS_DATA_DIR");
	g_autofree gchar *socket_path = g_build_filename(env->bus_dir, "socket", NULL);
	g_autofree gchar *esc_socket = g_markup_escape_text(socket_path, -1);
	g_autofree gchar *esc_policy = g_markup_escape_text(env->policy_dir, -1);
	g_autofree gchar *config = NULL;
	g_autofree gchar *shipped = NULL;
	g_autofree gchar *shipped_contents = NULL;
	g_autofree gchar *copy = NULL;
	g_autofree gchar *mock = g_build_filename(env->policy_dir, "tkms-test-polkit-mock.conf",
						  NULL);

	if (data_dir == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
			    "TKMS_DATA_DIR is not set (run the tests with meson test)");
		return FALSE;
	}
	shipped = g_build_filename(data_dir, "org.tkms.KeyManager.conf", NULL);
	if (!g_file_get_contents(shipped, &shipped_contents, NULL, error)) {
		g_prefix_error(error, "the shipped D-Bus policy is required: ");
		return FALSE;
	}
	copy = g_build_filename(env->policy_dir, "org.tkms.KeyManager.conf", NULL);
	config = g_strdup_printf(bus_config_template, esc_socket, esc_policy);
	env->bus_address = g_strdup_printf("unix:path=%s", socket_path);
	return g_file_set_contents(copy, shipped_contents, -1, error) &&
	       g_file_set_contents(mock, polkit_mock_policy, -1, error) &&
	       (!env->real_polkit || write_polkitd_bus_policy(env, error)) &&
	       g_file_set_contents(env->dbus_conf_path, config, -1, error);
}

static gboolean
start_bus(TkmsTestEnv *env, GError **error)
{
	g_autofree gchar *config_arg = g_strdup_printf("--config-file=%s", env->dbus_conf_path);
	const gchar *argv[] = {"dbus-daemon", config_arg, "--nofork", "--nopidfile", NULL};
	gint64 deadline = g_get_monotonic_time() + (gint64)NAME_TIMEOUT_MS * 1000;

	if (!write_bus_config(env, error) || !proc_start(env, &env->dbus, argv, error))
		return FALSE;
	for (;;) {
		g_autoptr(GError) local = NULL;
		if (!proc_is_running(&env->dbus)) {
			set_proc_error(error, &env->dbus, "exited during start-up");
			return FALSE;
		}
		env->connection = g_dbus_connection_new_for_address_sync(
			env->bus_address,
			G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
				G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
			NULL, NULL, &local);
		if (env->connection != NULL)
			break;
		if (g_get_monotonic_time() > deadline) {
			set_proc_error(error, &env->dbus, local->message);
			return FALSE;
		}
		g_usleep(10000);
	}
	g_dbus_connection_set_exit_on_close(env->connection, FALSE);
	return TRUE;
}

static gint64
name_owner_pid(TkmsTestEnv *env, const gchar *name)
{
	g_autoptr(GVariant) owner = NULL;
	g_autoptr(GVariant) pid = NULL;
	const gchar *unique;
	guint32 p;

	owner = g_dbus_connection_call_sync(env->connection, "org.freedesktop.DBus",
					    "/org/freedesktop/DBus", "org.freedesktop.DBus",
					    "GetNameOwner", g_variant_new("(s)", name),
					    G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, 5000,
					    NULL, NULL);
	if (owner == NULL)
		return -1;
	g_variant_get(owner, "(&s)", &unique);
	pid = g_dbus_connection_call_sync(env->connection, "org.freedesktop.DBus",
					  "/org/freedesktop/DBus", "org.freedesktop.DBus",
					  "GetConnectionUnixProcessID",
					  g_variant_new("(s)", unique), G_VARIANT_TYPE("(u)"),
					  G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
	if (pid == NULL)
		return -1;
	g_variant_get(pid, "(u)", &p);
	return p;
}

/* Waits until the process of tp owns name on the bus. */
static gboolean
wait_for_name(TkmsTestEnv *env, TestProc *tp, const gchar *name, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)NAME_TIMEOUT_MS * 1000;

	for (;;) {
		if (!proc_is_running(tp)) {
			g_autofree gchar *what = g_strdup_printf("exited before owning %s", name);
			set_proc_error(error, tp, what);
			return FALSE;
		}
		if (name_owner_pid(env, name) == tp->pid)
			return TRUE;
		if (g_get_monotonic_time() > deadline) {
			g_autofree gchar *what = g_strdup_printf(
				"did not own %s on the bus within %d s", name,
				NAME_TIMEOUT_MS / 1000);
			set_proc_error(error, tp, what);
			return FALSE;
		}
		g_usleep(20000);
	}
}

static gboolean
start_polkit_mock(TkmsTestEnv *env, GError **error)
{
	const gchar *argv[] = {"/usr/bin/python3", "-m",      "dbusmock", "--system",
			       "--template",	   "polkitd", NULL};

	return proc_start(env, &env->polkit, argv, error) &&
	       wait_for_name(env, &env->polkit, POLKIT_BUS_NAME, error) &&
	       tkms_test_env_polkit_allow_all(env, error);
}

gboolean
tkms_test_env_polkit_set_allowed(TkmsTestEnv *env, const gchar *const *actions, GError **error)
{
	g_autoptr(GVariant) r1 = NULL;
	g_autoptr(GVariant) r2 = NULL;
	static const gchar *const none[] = {NULL};

	if (env->real_polkit) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
			    "SetAllowed is for the polkit mock; with the real polkitd use "
			    "tkms_test_env_polkit_set_rules()");
		return FALSE;
	}
	r1 = g_dbus_connection_call_sync(
		env->connection, POLKIT_BUS_NAME, POLKIT_PATH, DBUSMOCK_IFACE, "SetAllowed",
		g_variant_new("(@as)", g_variant_new_strv(actions ? actions : none, -1)), NULL,
		G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
	if (r1 == NULL) {
		g_prefix_error(error, "polkit mock SetAllowed: ");
		return FALSE;
	}
	/* Like polkitd when its rules change: authorities drop cached answers on Changed. The
	 * signal is sent before the reply, so it reaches tkmsd before any later call of ours. */
	r2 = g_dbus_connection_call_sync(
		env->connection, POLKIT_BUS_NAME, POLKIT_PATH, DBUSMOCK_IFACE, "EmitSignal",
		g_variant_new("(sss@av)", POLKIT_IFACE, "Changed", "",
			      g_variant_new_array(G_VARIANT_TYPE_VARIANT, NULL, 0)),
		NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
	if (r2 == NULL) {
		g_prefix_error(error, "polkit mock EmitSignal(Changed): ");
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_env_polkit_allow_all(TkmsTestEnv *env, GError **error)
{
	return tkms_test_env_polkit_set_allowed(env, all_actions, error);
}

/* ---------------------------------------------------------------------------------------- */
/* tkmsd                                                                                     */

gboolean
tkms_test_env_start_daemon(TkmsTestEnv *env, GError **error)
{
	const gchar *tkmsd = g_getenv("TKMSD");
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	g_return_val_if_fail(!proc_is_running(&env->daemon), FALSE);
	if (tkmsd == NULL || !g_file_test(tkmsd, G_FILE_TEST_IS_EXECUTABLE)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
			    "tkmsd not found: TKMSD=%s (is daemon/ built?)",
			    tkmsd ? tkmsd : "(unset)");
		return FALSE;
	}
	g_ptr_array_add(argv, (gpointer)tkmsd);
	g_ptr_array_add(argv, (gpointer) "--bus-address");
	g_ptr_array_add(argv, env->bus_address);
	g_ptr_array_add(argv, (gpointer) "--tcti");
	g_ptr_array_add(argv, env->tcti);
	g_ptr_array_add(argv, (gpointer) "--state-dir");
	g_ptr_array_add(argv, env->state_dir);
	if (env->config_path != NULL) {
		g_ptr_array_add(argv, (gpointer) "--config");
		g_ptr_array_add(argv, env->config_path);
	}
	g_ptr_array_add(argv, (gpointer) "--verbose");
	g_ptr_array_add(argv, NULL);

	if (!proc_start(env, &env->daemon, (const gchar *const *)argv->pdata, error) ||
	    !wait_for_name(env, &env->daemon, TKMS_BUS_NAME, error)) {
		proc_stop(&env->daemon, SIGKILL, 1000, NULL);
		return FALSE;
	}
	if (env->client == NULL) {
		env->client = tkms_client_new_sync(env->connection, NULL, error);
		if (env->client == NULL) {
			g_prefix_error(error, "tkms_client_new_sync: ");
			return FALSE;
		}
	}
	return tkms_test_env_sync_client(env, env->client, error);
}

static gchar *
name_owner(TkmsTestEnv *env, const gchar *name)
{
	g_autoptr(GVariant) owner = NULL;
	gchar *unique = NULL;

	owner = g_dbus_connection_call_sync(env->connection, "org.freedesktop.DBus",
					    "/org/freedesktop/DBus", "org.freedesktop.DBus",
					    "GetNameOwner", g_variant_new("(s)", name),
					    G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, 5000,
					    NULL, NULL);
	if (owner != NULL)
		g_variant_get(owner, "(s)", &unique);
	return unique;
}

gboolean
tkms_test_env_sync_client(TkmsTestEnv *env, TkmsClient *client, GError **error)
{
	g_autofree gchar *want = name_owner(env, TKMS_BUS_NAME);
	gint64 deadline = g_get_monotonic_time() + (gint64)NAME_TIMEOUT_MS * 1000;

	for (;;) {
		g_autofree gchar *have = tkms_client_dup_name_owner(client);
		if (g_strcmp0(have, want) == 0)
			return TRUE;
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				    "the client still sees %s as the owner of %s, not %s",
				    have ? have : "nobody", TKMS_BUS_NAME, want ? want : "nobody");
			return FALSE;
		}
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(1000);
	}
}

gboolean
tkms_test_env_stop_daemon(TkmsTestEnv *env, GError **error)
{
	gint status = 0;
	gint64 deadline;

	if (!proc_is_running(&env->daemon)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "tkmsd is not running");
		return FALSE;
	}
	if (!proc_stop(&env->daemon, SIGTERM, STOP_TIMEOUT_MS, &status)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "tkmsd did not exit within %d s of SIGTERM (killed)",
			    STOP_TIMEOUT_MS / 1000);
		return FALSE;
	}
	/* Wait until the bus has dropped the name, so that a restart is observable. */
	deadline = g_get_monotonic_time() + (gint64)NAME_TIMEOUT_MS * 1000;
	while (name_owner_pid(env, TKMS_BUS_NAME) > 0 && g_get_monotonic_time() < deadline)
		g_usleep(10000);
	if (env->client != NULL && !tkms_test_env_sync_client(env, env->client, error))
		return FALSE;
	if (status != 0) {
		g_autofree gchar *log = read_log_tail(env->daemon.log_path);
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "tkmsd exited with %s %d on SIGTERM; its output:\n%s",
			    status < 0 ? "signal" : "status", ABS(status), log);
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_env_daemon_is_running(TkmsTestEnv *env)
{
	return proc_is_running(&env->daemon);
}

gboolean
tkms_test_env_extend_pcr(TkmsTestEnv *env, guint pcr, GError **error)
{
	g_autofree gchar *tcti = g_strdup_printf("swtpm:host=127.0.0.1,port=%u", env->tpm_port);
	g_autofree gchar *spec = g_strdup_printf(
		"%u:sha256=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		pcr);
	const gchar *argv[] = {"tpm2_pcrextend", "-T", tcti, spec, NULL};
	gboolean restart = proc_is_running(&env->daemon);
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	if (restart && !tkms_test_env_stop_daemon(env, error))
		return FALSE;
	if (!run_command(env, argv, env->tmp_dir, FALSE, &out, &err, &status, error))
		return FALSE;
	if (status != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "tpm2_pcrextend %s failed (%d): %s", spec, status, err);
		return FALSE;
	}
	return !restart || tkms_test_env_start_daemon(env, error);
}

/* ---------------------------------------------------------------------------------------- */
/* Life cycle                                                                                */

static gboolean real_polkit_setup(TkmsTestEnv *env, const gchar *rules, GError **error);
static void real_polkit_teardown(TkmsTestEnv *env);

static TkmsTestEnv *
env_new(const gchar *config, gboolean with_daemon, gboolean real_polkit, const gchar *rules,
	GError **error)
{
	g_autoptr(TkmsTestEnv) env = g_new0(TkmsTestEnv, 1);
	g_autofree gchar *pid_file = NULL;
	g_autofree gchar *pid_str = NULL;

	install_crash_handler();
	sweep_stale_dirs();

	env->swtpm.name = "swtpm";
	env->dbus.name = "dbus-daemon";
	env->polkit.name = real_polkit ? "polkitd" : "polkit-mock";
	env->real_polkit = real_polkit;
	env->daemon.name = "tkmsd";
	env->keep = g_strcmp0(g_getenv("TKMS_TEST_KEEP"), "1") == 0;

	env->tmp_dir = g_build_filename(tmp_base(), "tkms-test-XXXXXX", NULL);
	if (g_mkdtemp_full(env->tmp_dir, 0700) == NULL) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "mkdtemp %s: %s",
			    env->tmp_dir, g_strerror(errno));
		g_clear_pointer(&env->tmp_dir, g_free);
		return NULL;
	}
	/* World-readable: other uids connect to the bus socket and read test files. */
	g_chmod(env->tmp_dir, 0755);
	pid_file = g_build_filename(env->tmp_dir, "owner.pid", NULL);
	pid_str = g_strdup_printf("%d\n", (int)getpid());
	if (!g_file_set_contents(pid_file, pid_str, -1, error))
		return NULL;
	register_env(env, TRUE);

	env->bus_dir = g_build_filename(env->tmp_dir, "bus", NULL);
	env->policy_dir = g_build_filename(env->tmp_dir, "dbus-policy", NULL);
	env->tpm_dir = g_build_filename(env->tmp_dir, "tpm", NULL);
	env->state_dir = g_build_filename(env->tmp_dir, "state", NULL);
	env->dbus_conf_path = g_build_filename(env->tmp_dir, "bus.conf", NULL);
	env->swtpm.log_path = g_build_filename(env->tmp_dir, "swtpm.log", NULL);
	env->dbus.log_path = g_build_filename(env->tmp_dir, "dbus-daemon.log", NULL);
	env->polkit.log_path = g_build_filename(
		env->tmp_dir, real_polkit ? "polkitd.log" : "polkit-mock.log", NULL);
	env->daemon.log_path = g_build_filename(env->tmp_dir, "tkmsd.log", NULL);
	if (g_mkdir(env->bus_dir, 0755) != 0 || g_mkdir(env->policy_dir, 0755) != 0 ||
	    g_mkdir(env->tpm_dir, 0700) != 0 || g_mkdir(env->state_dir, 0700) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "mkdir: %s",
			    g_strerror(errno));
		return NULL;
	}
	if (config != NULL) {
		env->config_path = g_build_filename(env->tmp_dir, "tkmsd.conf", NULL);
		if (!g_file_set_contents(env->config_path, config, -1, error))
			return NULL;
	}

	if (!swtpm_start_new(env, error) || !start_bus(env, error))
		return NULL;
	if (real_polkit ? !real_polkit_setup(env, rules, error) : !start_polkit_mock(env, error))
		return NULL;
	if (with_daemon && !tkms_test_env_start_daemon(env, error))
		return NULL;
	return g_steal_pointer(&env);
}

TkmsTestEnv *
tkms_test_env_new(const gchar *config, GError **error)
{
	return env_new(config, TRUE, FALSE, NULL, error);
}

TkmsTestEnv *
tkms_test_env_new_without_daemon(const gchar *config, GError **error)
{
	return env_new(config, FALSE, FALSE, NULL, error);
}

TkmsTestEnv *
tkms_test_env_new_or_abort(const gchar *config)
{
	g_autoptr(GError) error = NULL;
	TkmsTestEnv *env = tkms_test_env_new(config, &error);

	if (env == NULL) {
		g_printerr("tkms-test-env: cannot set up the test environment: %s\n",
			   error->message);
		exit(1);
	}
	return env;
}

void
tkms_test_env_free(TkmsTestEnv *env)
{
	if (env == NULL)
		return;
	g_clear_object(&env->client);
	proc_stop(&env->daemon, SIGTERM, STOP_TIMEOUT_MS, NULL);
	if (env->connection != NULL)
		g_dbus_connection_close_sync(env->connection, NULL, NULL);
	g_clear_object(&env->connection);
	proc_stop(&env->polkit, SIGTERM, STOP_TIMEOUT_MS, NULL);
	if (env->real_polkit)
		real_polkit_teardown(env);
	proc_stop(&env->dbus, SIGTERM, STOP_TIMEOUT_MS, NULL);
	proc_stop(&env->swtpm, SIGTERM, STOP_TIMEOUT_MS, NULL);
	register_env(env, FALSE);
	if (env->tmp_dir != NULL) {
		if (env->keep)
			g_printerr("tkms-test-env: kept %s\n", env->tmp_dir);
		else
			rm_rf(env->tmp_dir);
	}
	g_free(env->tmp_dir);
	g_free(env->bus_dir);
	g_free(env->policy_dir);
	g_free(env->tpm_dir);
	g_free(env->state_dir);
	g_free(env->config_path);
	g_free(env->dbus_conf_path);
	g_free(env->bus_address);
	g_free(env->tcti);
	g_free(env->swtpm.log_path);
	g_free(env->dbus.log_path);
	g_free(env->polkit.log_path);
	g_free(env->daemon.log_path);
	g_free(env->polkit_rules);
	g_free(env->stage_dir);
	g_free(env->stage_lib_dir);
	g_clear_pointer(&env->staged, g_hash_table_unref);
	g_free(env);
}

/* ---------------------------------------------------------------------------------------- */
/* Accessors and helpers                                                                     */

const gchar *
tkms_test_env_get_bus_address(TkmsTestEnv *env)
{
	return env->bus_address;
}

GDBusConnection *
tkms_test_env_get_connection(TkmsTestEnv *env)
{
	return env->connection;
}

TkmsClient *
tkms_test_env_get_client(TkmsTestEnv *env)
{
	return env->client;
}

const gchar *
tkms_test_env_get_state_dir(TkmsTestEnv *env)
{
	return env->state_dir;
}

const gchar *
tkms_test_env_get_tmp_dir(TkmsTestEnv *env)
{
	return env->tmp_dir;
}

const gchar *
tkms_test_env_get_config_path(TkmsTestEnv *env)
{
	return env->config_path;
}

guint16
tkms_test_env_get_tpm_port(TkmsTestEnv *env)
{
	return env->tpm_port;
}

const gchar *
tkms_test_env_get_tcti(TkmsTestEnv *env)
{
	return env->tcti;
}

void
tkms_test_env_dump_logs(TkmsTestEnv *env)
{
	TestProc *procs[] = {&env->daemon, &env->polkit, &env->dbus, &env->swtpm};

	for (guint p = 0; p < G_N_ELEMENTS(procs); p++)
		dump_log_tail(procs[p]->name, procs[p]->log_path);
}

gchar *
tkms_test_env_get_daemon_log(TkmsTestEnv *env)
{
	gchar *contents = NULL;

	if (!g_file_get_contents(env->daemon.log_path, &contents, NULL, NULL))
		return g_strdup("");
	return contents;
}

gboolean
tkms_test_env_run(TkmsTestEnv *env, const gchar *const *argv, gchar **out_stdout,
		  gchar **out_stderr, gint *exit_status, GError **error)
{
	return run_command(env, argv, env->tmp_dir, FALSE, out_stdout, out_stderr, exit_status,
			   error);
}

gboolean
tkms_test_env_run_as_user(TkmsTestEnv *env, const gchar *const *argv, gchar **out_stdout,
			  gchar **out_stderr, gint *exit_status, GError **error)
{
	g_autoptr(GPtrArray) full = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *program = NULL;

	if (!stage_argv0(env, argv[0], &program, error))
		return FALSE;
	g_ptr_array_add(full, g_strdup("setpriv"));
	g_ptr_array_add(full, g_strdup_printf("--reuid=%d", TKMS_TEST_OTHER_UID));
	g_ptr_array_add(full, g_strdup_printf("--regid=%d", TKMS_TEST_OTHER_UID));
	g_ptr_array_add(full, g_strdup("--clear-groups"));
	g_ptr_array_add(full, g_strdup("--"));
	g_ptr_array_add(full, g_steal_pointer(&program));
	for (guint i = 1; argv[i] != NULL; i++)
		g_ptr_array_add(full, g_strdup(argv[i]));
	g_ptr_array_add(full, NULL);
	return run_command(env, (const gchar *const *)full->pdata, "/", TRUE, out_stdout,
			   out_stderr, exit_status, error);
}

const gchar *
tkms_test_helper_path(void)
{
	return g_getenv("TKMS_TEST_HELPER");
}

gint
tkms_test_env_get_daemon_pid(TkmsTestEnv *env)
{
	return proc_is_running(&env->daemon) ? env->daemon.pid : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Test users                                                                                */

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

static gboolean
is_other_user(const gchar *user)
{
	return user != NULL && !g_str_equal(user, "root");
}

/* argv prefixed with setpriv to run as user with its groups, its program staged; user NULL
 * or "root": as is. */
static GPtrArray *
as_user_argv(TkmsTestEnv *env, const gchar *user, const gchar *const *argv, GError **error)
{
	g_autoptr(GPtrArray) full = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *program = NULL;

	if (is_other_user(user)) {
		struct passwd *pw = getpwnam(user);
		if (pw == NULL) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no user %s", user);
			return NULL;
		}
		if (!stage_argv0(env, argv[0], &program, error))
			return NULL;
		g_ptr_array_add(full, g_strdup("setpriv"));
		g_ptr_array_add(full, g_strdup_printf("--reuid=%u", (guint)pw->pw_uid));
		g_ptr_array_add(full, g_strdup_printf("--regid=%u", (guint)pw->pw_gid));
		g_ptr_array_add(full, g_strdup("--init-groups"));
		g_ptr_array_add(full, g_strdup("--"));
	}
	g_ptr_array_add(full, program != NULL ? g_steal_pointer(&program) : g_strdup(argv[0]));
	for (guint i = 1; argv[i] != NULL; i++)
		g_ptr_array_add(full, g_strdup(argv[i]));
	g_ptr_array_add(full, NULL);
	return g_steal_pointer(&full);
}

gboolean
tkms_test_env_run_as(TkmsTestEnv *env, const gchar *user, const gchar *const *argv,
		     gchar **out_stdout, gchar **out_stderr, gint *exit_status, GError **error)
{
	g_autoptr(GPtrArray) full = as_user_argv(env, user, argv, error);

	if (full == NULL)
		return FALSE;
	return run_command(env, (const gchar *const *)full->pdata, "/", is_other_user(user),
			   out_stdout, out_stderr, exit_status, error);
}

GSubprocess *
tkms_test_env_spawn_as(TkmsTestEnv *env, const gchar *user, const gchar *const *argv,
		       GError **error)
{
	g_autoptr(GPtrArray) full = as_user_argv(env, user, argv, error);
	g_autoptr(GSubprocessLauncher) launcher = NULL;

	if (full == NULL)
		return NULL;
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE |
					     G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	g_subprocess_launcher_set_child_setup(launcher, child_setup, NULL, NULL);
	g_subprocess_launcher_set_cwd(launcher, "/");
	launcher_setenv(env, launcher);
	if (is_other_user(user))
		launcher_set_staged_libs(env, launcher);
	return g_subprocess_launcher_spawnv(launcher, (const gchar *const *)full->pdata, error);
}

/* ---------------------------------------------------------------------------------------- */
/* The real polkitd                                                                          */

#define POLKITD_PATH "/usr/lib/polkit-1/polkitd"
#define POLKITD_USER "polkitd"
#define POLKIT_POLICY_DEST "/usr/share/polkit-1/actions/org.tkms.KeyManager.policy"
#define POLKIT_POLICY_SAVED POLKIT_POLICY_DEST ".tkms-test-saved"
#define POLKIT_RULES_DIR "/etc/polkit-1/rules.d"
#define POLKIT_RULES_DEST POLKIT_RULES_DIR "/00-tkms-test.rules"
#define POLKIT_RULES_TMP POLKIT_RULES_DIR "/.00-tkms-test.rules.tmp"
#define POLKIT_LOCK_NAME "tkms-test-polkit.lock"
#define POLKIT_LOCK_TIMEOUT_S 900
#define POLKIT_RULES_TIMEOUT_MS 20000
#define POLKIT_MARKER "tkms-test-env: installed for a test run"
/* The probe: an answer that only the test fixture asks about, flipped by every rules file. */
#define POLKIT_PROBE_ACTION TKMS_ACTION_READ_SECRET

/* What this process installed; read by the abort handler. */
static volatile sig_atomic_t polkit_installed_policy;
static volatile sig_atomic_t polkit_saved_policy;
static volatile sig_atomic_t polkit_installed_rules;
static TkmsTestEnv *real_polkit_env;
static int polkit_lock_fd = -1;

/* Async-signal-safe: unlink() and rename() only. */
static void
polkit_files_remove_signal_safe(void)
{
	if (polkit_installed_rules) {
		unlink(POLKIT_RULES_TMP);
		unlink(POLKIT_RULES_DEST);
		polkit_installed_rules = 0;
	}
	if (polkit_installed_policy) {
		unlink(POLKIT_POLICY_DEST);
		polkit_installed_policy = 0;
	}
	if (polkit_saved_policy) {
		rename(POLKIT_POLICY_SAVED, POLKIT_POLICY_DEST);
		polkit_saved_policy = 0;
	}
}

/* polkitd drops privileges to POLKITD_USER: let that user own the name, as the system bus's
 * own org.freedesktop.PolicyKit1.conf does. */
static gboolean
write_polkitd_bus_policy(TkmsTestEnv *env, GError **error)
{
	g_autofree gchar *path = g_build_filename(env->policy_dir, "tkms-test-polkitd.conf", NULL);
	static const gchar conf[] =
		"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration "
		"1.0//EN\"\n"
		" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		"<busconfig>\n"
		"  <policy user=\"" POLKITD_USER "\">\n"
		"    <allow own=\"org.freedesktop.PolicyKit1\"/>\n"
		"    <allow send_interface=\"org.freedesktop.PolicyKit1.AuthenticationAgent\"/>\n"
		"  </policy>\n"
		"</busconfig>\n";

	if (getpwnam(POLKITD_USER) == NULL)
		return TRUE; /* an older polkitd that stays root: the mock policy lets root own */
	return g_file_set_contents(path, conf, -1, error);
}

static gboolean
polkit_lock(GError **error)
{
	const gchar *dir = g_file_test("/run/lock", G_FILE_TEST_IS_DIR) ? "/run/lock"
									 : g_get_tmp_dir();
	g_autofree gchar *path = g_build_filename(dir, POLKIT_LOCK_NAME, NULL);
	g_autofree gchar *pid = g_strdup_printf("%d\n", (int)getpid());
	gint64 deadline = g_get_monotonic_time() + (gint64)POLKIT_LOCK_TIMEOUT_S * G_USEC_PER_SEC;
	gboolean told = FALSE;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "open %s: %s", path,
			    g_strerror(errno));
		return FALSE;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "flock %s: %s",
				    path, g_strerror(errno));
			close(fd);
			return FALSE;
		}
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				    "another test has used the real polkitd for %d s (lock %s)",
				    POLKIT_LOCK_TIMEOUT_S, path);
			close(fd);
			return FALSE;
		}
		if (!told) {
			g_printerr("tkms-test-env: waiting for another test's real polkitd (%s)\n",
				   path);
			told = TRUE;
		}
		g_usleep(100000);
	}
	if (ftruncate(fd, 0) == 0 && write(fd, pid, strlen(pid)) < 0)
		g_debug("cannot write %s", path);
	polkit_lock_fd = fd;
	return TRUE;
}

/* Holding the lock: whatever a killed run left goes; a policy installed for real is set aside
 * (and put back by polkit_files_remove_signal_safe()). Then ours goes in. */
static gboolean
polkit_install_policy(GError **error)
{
	const gchar *src = g_getenv("TKMS_POLKIT_POLICY");
	g_autofree gchar *contents = NULL;
	g_autofree gchar *existing = NULL;
	g_autofree gchar *ours = NULL;

	if (src == NULL || !g_file_get_contents(src, &contents, NULL, NULL)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
			    "the built polkit policy is required: TKMS_POLKIT_POLICY=%s "
			    "(is polkit/ built?)",
			    src ? src : "(unset)");
		return FALSE;
	}
	if (!g_file_test(POLKIT_RULES_DIR, G_FILE_TEST_IS_DIR)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s does not exist",
			    POLKIT_RULES_DIR);
		return FALSE;
	}
	unlink(POLKIT_RULES_TMP);
	unlink(POLKIT_RULES_DEST);
	if (g_file_get_contents(POLKIT_POLICY_DEST, &existing, NULL, NULL) &&
	    strstr(existing, POLKIT_MARKER) != NULL) {
		g_printerr("tkms-test-env: removing %s left by a killed test\n",
			   POLKIT_POLICY_DEST);
		unlink(POLKIT_POLICY_DEST);
	}
	if (g_file_test(POLKIT_POLICY_SAVED, G_FILE_TEST_EXISTS)) {
		if (g_file_test(POLKIT_POLICY_DEST, G_FILE_TEST_EXISTS))
			unlink(POLKIT_POLICY_SAVED); /* reinstalled since: the saved one is old */
		else if (rename(POLKIT_POLICY_SAVED, POLKIT_POLICY_DEST) != 0)
			g_printerr("tkms-test-env: cannot restore %s\n", POLKIT_POLICY_DEST);
	}
	if (g_file_test(POLKIT_POLICY_DEST, G_FILE_TEST_EXISTS)) {
		if (rename(POLKIT_POLICY_DEST, POLKIT_POLICY_SAVED) != 0) {
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
				    "cannot set %s aside: %s", POLKIT_POLICY_DEST,
				    g_strerror(errno));
			return FALSE;
		}
		polkit_saved_policy = 1;
	}
	/* A comment after the root element marks our copy (still well-formed XML). */
	ours = g_strdup_printf("%s\n<!-- %s (pid %d); removed afterwards -->\n", contents,
			       POLKIT_MARKER, (int)getpid());
	polkit_installed_policy = 1;
	return g_file_set_contents_full(POLKIT_POLICY_DEST, ours, -1,
					G_FILE_SET_CONTENTS_CONSISTENT, 0644, error);
}

static const gchar *
probe_user(void)
{
	struct passwd *pw = getpwuid(TKMS_TEST_OTHER_UID);
	return pw != NULL ? pw->pw_name : "nobody";
}

static gboolean
polkit_write_rules(TkmsTestEnv *env, GError **error)
{
	g_autofree gchar *text = NULL;

	env->rules_generation++;
	text = g_strdup_printf(
		"// %s (pid %d); removed afterwards.\n"
		"// Version %u. The probe: tkms-test-env polls this answer (it flips with every "
		"version)\n"
		"// to know that polkitd has read this file.\n"
		"polkit.addRule(function(action, subject) {\n"
		"    if (action.id == \"%s\" && subject.user == \"%s\")\n"
		"        return polkit.Result.%s;\n"
		"    return polkit.Result.NOT_HANDLED;\n"
		"});\n\n"
		"%s\n",
		POLKIT_MARKER, (int)getpid(), env->rules_generation, POLKIT_PROBE_ACTION,
		probe_user(), env->rules_generation % 2 ? "YES" : "NO",
		env->polkit_rules ? env->polkit_rules : "");
	polkit_installed_rules = 1;
	/* write beside, then rename: polkitd (inotify) never reads a half-written file */
	if (!g_file_set_contents_full(POLKIT_RULES_TMP, text, -1, G_FILE_SET_CONTENTS_NONE, 0644,
				      error))
		return FALSE;
	if (rename(POLKIT_RULES_TMP, POLKIT_RULES_DEST) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "rename to %s: %s",
			    POLKIT_RULES_DEST, g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_env_polkit_check_as(TkmsTestEnv *env, const gchar *user, const gchar *action,
			      TkmsTestPolkitAnswer *answer, GError **error)
{
	/* the subject is pkcheck's own process: sh execs it keeping its pid */
	const gchar *argv[] = {"sh", "-c", "exec pkcheck --action-id \"$0\" --process $$", action,
			       NULL};
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	if (!tkms_test_env_run_as(env, user, argv, &out, &err, &status, error))
		return FALSE;
	switch (status) {
	case 0:
		*answer = TKMS_TEST_POLKIT_YES;
		return TRUE;
	case 1:
		*answer = TKMS_TEST_POLKIT_NO;
		return TRUE;
	case 2:
		*answer = TKMS_TEST_POLKIT_CHALLENGE;
		return TRUE;
	default:
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "pkcheck %s as %s: exit status %d: %s", action, user ? user : "root",
			    status, err);
		return FALSE;
	}
}

/* Polls the probe until polkitd answers by the current rules file. */
static gboolean
polkit_wait_rules(TkmsTestEnv *env, GError **error)
{
	TkmsTestPolkitAnswer want =
		env->rules_generation % 2 ? TKMS_TEST_POLKIT_YES : TKMS_TEST_POLKIT_NO;
	gint64 deadline = g_get_monotonic_time() + (gint64)POLKIT_RULES_TIMEOUT_MS * 1000;

	for (;;) {
		g_autoptr(GError) local = NULL;
		TkmsTestPolkitAnswer got;

		if (tkms_test_env_polkit_check_as(env, probe_user(), POLKIT_PROBE_ACTION, &got,
						  &local) &&
		    got == want)
			return TRUE;
		if (g_get_monotonic_time() > deadline) {
			set_proc_error(error, &env->polkit,
				       local ? local->message
					     : "did not load the new rules file in time");
			return FALSE;
		}
		g_usleep(10000);
	}
}

gboolean
tkms_test_env_has_real_polkit(TkmsTestEnv *env)
{
	return env->real_polkit;
}

gboolean
tkms_test_env_polkit_is_running(TkmsTestEnv *env)
{
	return proc_is_running(&env->polkit);
}

gboolean
tkms_test_env_polkit_set_rules(TkmsTestEnv *env, const gchar *rules, GError **error)
{
	g_return_val_if_fail(env->real_polkit, FALSE);
	g_free(env->polkit_rules);
	env->polkit_rules = g_strdup(rules);
	if (!polkit_write_rules(env, error))
		return FALSE;
	return !proc_is_running(&env->polkit) || polkit_wait_rules(env, error);
}

gboolean
tkms_test_env_start_polkit(TkmsTestEnv *env, GError **error)
{
	const gchar *argv[] = {POLKITD_PATH, "--no-debug", NULL};

	g_return_val_if_fail(env->real_polkit, FALSE);
	if (!proc_start(env, &env->polkit, argv, error) ||
	    !wait_for_name(env, &env->polkit, POLKIT_BUS_NAME, error) ||
	    !polkit_wait_rules(env, error)) {
		proc_stop(&env->polkit, SIGKILL, 1000, NULL);
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_test_env_stop_polkit(TkmsTestEnv *env, GError **error)
{
	gint64 deadline;

	g_return_val_if_fail(env->real_polkit, FALSE);
	if (!proc_stop(&env->polkit, SIGTERM, STOP_TIMEOUT_MS, NULL)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
			    "polkitd did not exit within %d s of SIGTERM (killed)",
			    STOP_TIMEOUT_MS / 1000);
		return FALSE;
	}
	deadline = g_get_monotonic_time() + (gint64)NAME_TIMEOUT_MS * 1000;
	while (name_owner_pid(env, POLKIT_BUS_NAME) > 0) {
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				    "%s still has an owner after polkitd exited", POLKIT_BUS_NAME);
			return FALSE;
		}
		g_usleep(10000);
	}
	return TRUE;
}

static gboolean
real_polkit_setup(TkmsTestEnv *env, const gchar *rules, GError **error)
{
	if (real_polkit_env != NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
			    "only one real-polkitd env per process (polkit's files are global)");
		return FALSE;
	}
	if (geteuid() != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
			    "the real polkitd needs root (it is started as root, and its policy "
			    "and rules are installed for the test)");
		return FALSE;
	}
	if (!g_file_test(POLKITD_PATH, G_FILE_TEST_IS_EXECUTABLE)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
			    "%s not found (install polkitd)", POLKITD_PATH);
		return FALSE;
	}
	if (!polkit_lock(error))
		return FALSE;
	real_polkit_env = env;
	env->polkit_rules = g_strdup(rules);
	return polkit_install_policy(error) && polkit_write_rules(env, error) &&
	       tkms_test_env_start_polkit(env, error);
}

static void
real_polkit_teardown(TkmsTestEnv *env)
{
	if (real_polkit_env != env)
		return;
	polkit_files_remove_signal_safe();
	if (polkit_lock_fd >= 0) {
		close(polkit_lock_fd);
		polkit_lock_fd = -1;
	}
	real_polkit_env = NULL;
}

TkmsTestEnv *
tkms_test_env_new_real_polkit(const gchar *config, const gchar *rules, GError **error)
{
	return env_new(config, TRUE, TRUE, rules, error);
}

TkmsTestEnv *
tkms_test_env_new_real_polkit_or_abort(const gchar *config, const gchar *rules)
{
	g_autoptr(GError) error = NULL;
	TkmsTestEnv *env = tkms_test_env_new_real_polkit(config, rules, &error);

	if (env == NULL) {
		g_printerr("tkms-test-env: cannot set up the test environment with the real "
			   "polkitd: %s\n",
			   error->message);
		exit(1);
	}
	return env;
}
