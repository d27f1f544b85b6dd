/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-postgres"

#include "tkms-test-postgres.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "tkms-test-process.h"
#include "tkms-test-util.h"
#include "tkms-test-swtpm.h"

#define PG_LIB_DIR "/usr/lib/postgresql"
#define PG_USER "postgres"
#define PG_HOST "127.0.0.1"
#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 10000
#define PORT_ATTEMPTS 10

struct _TkmsTestPostgres {
	TkmsTestProc proc;
	gchar *dir;
	gchar *cluster_dir; /* postgres's, 0700: the data directory and the socket */
	gchar *data_dir;
	gchar *client_dir; /* root's, 0700: password files for psql */
	gchar *bin_dir;
	gchar *psql;
	gchar *password;
	guint16 port;
	uid_t uid;
	gid_t gid;
	guint serial; /* names of password files */
	gboolean keep;
};

/* ---------------------------------------------------------------------------------------- */
/* Finding the server                                                                        */

/* The bin directory of the newest PostgreSQL under /usr/lib/postgresql that has initdb,
 * postgres, pg_ctl and psql. */
static gchar *find_bin_dir(GError **error)
{
	g_autoptr(GDir) dir = g_dir_open(PG_LIB_DIR, 0, NULL);
	const gchar *entry;
	gchar *best = NULL;
	guint64 best_version = 0;

	while (dir != NULL && (entry = g_dir_read_name(dir)) != NULL) {
		static const gchar *const programs[] = {"initdb", "postgres", "pg_ctl", "psql"};
		g_autofree gchar *bin = g_build_filename(PG_LIB_DIR, entry, "bin", NULL);
		gchar *end = NULL;
		guint64 version = g_ascii_strtoull(entry, &end, 10);
		gboolean complete = TRUE;

		if (end == entry || version <= best_version)
			continue;
		for (guint i = 0; i < G_N_ELEMENTS(programs); i++) {
			g_autofree gchar *path = g_build_filename(bin, programs[i], NULL);
			complete &= g_file_test(path, G_FILE_TEST_IS_EXECUTABLE);
		}
		if (!complete)
			continue;
		g_free(best);
		best = g_steal_pointer(&bin);
		best_version = version;
	}
	if (best == NULL)
		g_set_error(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY,
		            "no PostgreSQL server in %s/VERSION/bin (install the Debian packages "
		            "postgresql and postgresql-client)",
		            PG_LIB_DIR);
	return best;
}

static gboolean require_dependencies(TkmsTestPostgres *pg, GError **error)
{
	struct passwd *pw;

	if (geteuid() != 0) {
		g_set_error(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY,
		            "a private PostgreSQL cluster runs as the user %s: only root can "
		            "start it",
		            PG_USER);
		return FALSE;
	}
	if (!tkms_test_require_program("setpriv", "util-linux", error))
		return FALSE;
	pg->bin_dir = find_bin_dir(error);
	if (pg->bin_dir == NULL)
		return FALSE;
	pg->psql = g_build_filename(pg->bin_dir, "psql", NULL);
	pw = getpwnam(PG_USER);
	if (pw == NULL) {
		g_set_error(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY,
		            "there is no user %s (the Debian package postgresql-common makes it)",
		            PG_USER);
		return FALSE;
	}
	pg->uid = pw->pw_uid;
	pg->gid = pw->pw_gid;
	return TRUE;
}

static gchar *random_password(void)
{
	static const gchar chars[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	gchar *s = g_malloc(33);

	for (guint i = 0; i < 32; i++)
		s[i] = chars[g_random_int_range(0, (gint32)sizeof(chars) - 1)];
	s[32] = '\0';
	return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Files                                                                                     */

static gboolean make_dir(const gchar *path, mode_t mode, uid_t uid, gid_t gid, GError **error)
{
	if (g_mkdir(path, mode) != 0 || chmod(path, mode) != 0 || chown(path, uid, gid) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "mkdir %s: %s", path,
		            g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/* Writes a file that only uid may read. */
static gboolean write_private(const gchar *path, const gchar *contents, uid_t uid, gid_t gid,
                              GError **error)
{
	if (!g_file_set_contents_full(path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
	                              error))
		return FALSE;
	if (chown(path, uid, gid) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "chown %s: %s", path,
		            g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

gchar *tkms_test_postgres_passfile_line(TkmsTestPostgres *pg, const gchar *user,
                                        const gchar *password)
{
	GString *line = g_string_new(NULL);
	const gchar *fields[] = {user, password};

	g_string_append_printf(line, "%s:%u:*", PG_HOST, pg->port);
	for (guint i = 0; i < G_N_ELEMENTS(fields); i++) {
		g_string_append_c(line, ':');
		for (const gchar *p = fields[i]; *p != '\0'; p++) {
			if (*p == ':' || *p == '\\')
				g_string_append_c(line, '\\');
			g_string_append_c(line, *p);
		}
	}
	g_string_append_c(line, '\n');
	return g_string_free(line, FALSE);
}

/* ---------------------------------------------------------------------------------------- */
/* Commands                                                                                  */

/* Runs a program of the server as the user postgres. */
static gboolean run_as_postgres(TkmsTestPostgres *pg, const gchar *program,
                                const gchar *const *args, gchar **out_stderr, GError **error)
{
	g_autofree gchar *path = g_build_filename(pg->bin_dir, program, NULL);
	g_autoptr(GPtrArray) argv = tkms_test_setpriv_argv(PG_USER, 0, path, args, error);
	TkmsTestRunSpec spec = {.cwd = pg->cluster_dir};
	g_autofree gchar *out = NULL;
	g_autofree gchar *err = NULL;
	gint status = -1;

	if (argv == NULL || !tkms_test_run_command(&spec, (const gchar *const *)argv->pdata, &out,
	                                           &err, &status, error))
		return FALSE;
	if (status != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s failed (status %d): %s%s",
		            program, status, out, err);
		return FALSE;
	}
	if (out_stderr != NULL)
		*out_stderr = g_steal_pointer(&err);
	return TRUE;
}

typedef struct {
	gboolean ok;
	gchar *out;
	gchar *err;
} PsqlResult;

static void psql_result_clear(PsqlResult *r)
{
	g_free(r->out);
	g_free(r->err);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PsqlResult, psql_result_clear)

/* A value of a libpq connection string: 'value', with ' and \ escaped. */
static gchar *conninfo_quote(const gchar *value)
{
	GString *s = g_string_new("'");

	for (const gchar *p = value; *p != '\0'; p++) {
		if (*p == '\'' || *p == '\\')
			g_string_append_c(s, '\\');
		g_string_append_c(s, *p);
	}
	g_string_append_c(s, '\'');
	return g_string_free(s, FALSE);
}

/* Runs sql through psql as user with password (a password file of its own, removed after);
 * FALSE only if psql could not run. */
static gboolean run_psql(TkmsTestPostgres *pg, const gchar *user, const gchar *password,
                         const gchar *sql, PsqlResult *result, GError **error)
{
	g_autofree gchar *name = g_strdup_printf("pgpass-%u", ++pg->serial);
	g_autofree gchar *passfile = g_build_filename(pg->client_dir, name, NULL);
	g_autofree gchar *sql_name = g_strdup_printf("sql-%u", pg->serial);
	g_autofree gchar *sql_file = g_build_filename(pg->client_dir, sql_name, NULL);
	g_autofree gchar *file_arg = g_strconcat("--file=", sql_file, NULL);
	g_autofree gchar *line = tkms_test_postgres_passfile_line(pg, user, password);
	g_autofree gchar *quoted_user = conninfo_quote(user);
	g_autofree gchar *quoted_passfile = conninfo_quote(passfile);
	g_autofree gchar *conninfo = NULL;
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	gboolean ran;

	/* the SQL from a file, not a pipe: psql refused a login before it read its input, and
	 * writing into the pipe then failed with EPIPE (a wrong password, which tests try) */
	if (!write_private(passfile, line, 0, 0, error) ||
	    !write_private(sql_file, sql, 0, 0, error)) {
		g_unlink(passfile);
		return FALSE;
	}
	conninfo = g_strdup_printf("host=%s port=%u dbname=postgres user=%s passfile=%s "
	                           "connect_timeout=10",
	                           PG_HOST, pg->port, quoted_user, quoted_passfile);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDERR_PIPE);
	/* only what psql needs: no PGPASSWORD, PGHOST... of the caller */
	g_subprocess_launcher_set_environ(launcher,
	                                  (gchar *[]){"PATH=/usr/bin:/bin", "LC_ALL=C", NULL});
	g_subprocess_launcher_set_cwd(launcher, pg->client_dir);
	proc = g_subprocess_launcher_spawn(
	    launcher, error, pg->psql, "--no-psqlrc", "--no-password", "--quiet", "--no-align",
	    "--tuples-only", "--set=ON_ERROR_STOP=1", file_arg, "--dbname", conninfo, NULL);
	ran = proc != NULL &&
	      g_subprocess_communicate_utf8(proc, NULL, NULL, &result->out, &result->err, error);
	g_unlink(passfile);
	g_unlink(sql_file);
	if (!ran)
		return FALSE;
	result->ok = g_subprocess_get_if_exited(proc) && g_subprocess_get_exit_status(proc) == 0;
	return TRUE;
}

gchar *tkms_test_postgres_sql(TkmsTestPostgres *pg, const gchar *sql, GError **error)
{
	g_auto(PsqlResult) r = {0};

	if (!run_psql(pg, PG_USER, pg->password, sql, &r, error))
		return NULL;
	if (!r.ok) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "psql as %s: %s", PG_USER,
		            g_strstrip(r.err));
		return NULL;
	}
	return g_steal_pointer(&r.out);
}

gchar *tkms_test_postgres_quote_literal(const gchar *s)
{
	g_autofree gchar *doubled = NULL;
	g_auto(GStrv) parts = g_strsplit(s, "'", -1);

	doubled = g_strjoinv("''", parts);
	return g_strdup_printf("'%s'", doubled);
}

gchar *tkms_test_postgres_quote_ident(const gchar *s)
{
	g_autofree gchar *doubled = NULL;
	g_auto(GStrv) parts = g_strsplit(s, "\"", -1);

	doubled = g_strjoinv("\"\"", parts);
	return g_strdup_printf("\"%s\"", doubled);
}

static gboolean role_password(TkmsTestPostgres *pg, const gchar *verb, const gchar *role,
                              const gchar *password, const gchar *attributes, GError **error)
{
	g_autofree gchar *ident = tkms_test_postgres_quote_ident(role);
	g_autofree gchar *literal = tkms_test_postgres_quote_literal(password);
	/* The server hashes the password before it stores it; not logging the statement keeps
	 * the log free of it too. */
	g_autofree gchar *sql = g_strdup_printf("SET log_statement = 'none';\n"
	                                        "%s ROLE %s %s PASSWORD %s;\n",
	                                        verb, ident, attributes ? attributes : "", literal);
	g_autofree gchar *out = tkms_test_postgres_sql(pg, sql, error);

	return out != NULL;
}

gboolean tkms_test_postgres_create_role(TkmsTestPostgres *pg, const gchar *role,
                                        const gchar *password, const gchar *attributes,
                                        GError **error)
{
	g_autofree gchar *with = g_strdup_printf("LOGIN %s", attributes ? attributes : "");

	return role_password(pg, "CREATE", role, password, with, error);
}

gboolean tkms_test_postgres_set_password(TkmsTestPostgres *pg, const gchar *role,
                                         const gchar *password, GError **error)
{
	return role_password(pg, "ALTER", role, password, NULL, error);
}

gboolean tkms_test_postgres_can_login(TkmsTestPostgres *pg, const gchar *role,
                                      const gchar *password, GError **error)
{
	g_auto(PsqlResult) r = {0};

	if (!run_psql(pg, role, password, "SELECT current_user;\n", &r, error))
		return FALSE;
	if (r.ok) {
		if (g_strcmp0(g_strstrip(r.out), role) != 0) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			            "logged in as %s, but current_user is %s", role, r.out);
			return FALSE;
		}
		return TRUE;
	}
	if (strstr(r.err, "password authentication failed") != NULL)
		return FALSE;
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "psql as %s: %s", role,
	            g_strstrip(r.err));
	return FALSE;
}

/* ---------------------------------------------------------------------------------------- */
/* Searching the cluster's files                                                             */

/* Where the first of needles that is in the file at path is (its index), or -1. */
static gint file_contains(const gchar *path, const gchar *const *needles)
{
	g_autoptr(GMappedFile) map = g_mapped_file_new(path, FALSE, NULL);
	const gchar *data;
	gsize len;

	if (map == NULL)
		return -1;
	data = g_mapped_file_get_contents(map);
	len = g_mapped_file_get_length(map);
	for (guint i = 0; needles[i] != NULL; i++)
		if (len > 0 && memmem(data, len, needles[i], strlen(needles[i])) != NULL)
			return (gint)i;
	return -1;
}

static gboolean tree_contains(const gchar *path, const gchar *const *needles, gchar **where)
{
	g_autoptr(GDir) dir = NULL;
	const gchar *entry;

	if (!g_file_test(path, G_FILE_TEST_IS_DIR) || g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
		gint found;

		if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
			return FALSE;
		found = file_contains(path, needles);
		if (found >= 0 && where != NULL)
			*where = g_strdup_printf("%s (string %d)", path, found);
		return found >= 0;
	}
	dir = g_dir_open(path, 0, NULL);
	while (dir != NULL && (entry = g_dir_read_name(dir)) != NULL) {
		g_autofree gchar *child = g_build_filename(path, entry, NULL);
		if (tree_contains(child, needles, where))
			return TRUE;
	}
	return FALSE;
}

gboolean tkms_test_postgres_files_contain(TkmsTestPostgres *pg, const gchar *const *needles,
                                          gchar **where)
{
	for (guint i = 0; needles[i] != NULL; i++)
		g_return_val_if_fail(needles[i][0] != '\0', FALSE);
	/* what the server holds in memory goes to the files first */
	if (tkms_test_proc_is_running(&pg->proc)) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *out = tkms_test_postgres_sql(pg, "CHECKPOINT;\n", &error);
		if (out == NULL)
			g_printerr("tkms-test-postgres: CHECKPOINT: %s\n", error->message);
	}
	return tree_contains(pg->proc.log_path, needles, where) ||
	       tree_contains(pg->data_dir, needles, where);
}

gboolean tkms_test_postgres_prepend_hba(TkmsTestPostgres *pg, const gchar *line, GError **error)
{
	g_autofree gchar *hba = g_build_filename(pg->data_dir, "pg_hba.conf", NULL);
	g_autofree gchar *old = NULL;
	g_autofree gchar *contents = NULL;
	g_autofree gchar *out = NULL;

	if (!g_file_get_contents(hba, &old, NULL, error))
		return FALSE;
	contents = g_strdup_printf("%s\n%s", line, old);
	if (!write_private(hba, contents, pg->uid, pg->gid, error))
		return FALSE;
	out = tkms_test_postgres_sql(pg, "SELECT pg_reload_conf();\n", error);
	return out != NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* The hook                                                                                  */

gchar *tkms_test_postgres_hook_defaults(TkmsTestPostgres *pg, const gchar *dir)
{
	g_autofree gchar *passfile = g_build_filename(dir, "postgresql.pgpass", NULL);

	return g_strdup_printf("[DEFAULT]\n"
	                       "host = %s\n"
	                       "port = %u\n"
	                       "dbname = postgres\n"
	                       "admin-user = %s\n"
	                       "admin-passfile = %s\n",
	                       PG_HOST, pg->port, TKMS_TEST_POSTGRES_ADMIN, passfile);
}

gchar *tkms_test_postgres_setup_hook_dir(TkmsTestPostgres *pg, const gchar *dir, guint32 hook_gid,
                                         GError **error)
{
	const gchar *data_dir = g_getenv("TKMS_DATA_DIR");
	g_autofree gchar *source = NULL;
	g_autofree gchar *hook = g_build_filename(dir, "postgresql", NULL);
	g_autofree gchar *passfile = g_build_filename(dir, "postgresql.pgpass", NULL);
	g_autofree gchar *password = random_password();
	g_autofree gchar *line = NULL;
	g_autofree gchar *contents = NULL;
	gsize len = 0;

	if (data_dir == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
		            "TKMS_DATA_DIR is not set (tests/meson.build sets it)");
		return NULL;
	}
	source = g_build_filename(data_dir, "hooks", "postgresql", NULL);
	if ((!g_file_test(dir, G_FILE_TEST_IS_DIR) && !make_dir(dir, 0755, 0, 0, error)) ||
	    !g_file_get_contents(source, &contents, &len, error) ||
	    !g_file_set_contents_full(hook, contents, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT,
	                              0755, error))
		return NULL;
	if (chmod(hook, 0755) != 0 || chown(hook, 0, 0) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "chmod %s: %s", hook,
		            g_strerror(errno));
		return NULL;
	}
	if (!tkms_test_postgres_create_role(pg, TKMS_TEST_POSTGRES_ADMIN, password, "CREATEROLE",
	                                    error))
		return NULL;
	line = tkms_test_postgres_passfile_line(pg, TKMS_TEST_POSTGRES_ADMIN, password);
	if (!write_private(passfile, line, 0, hook_gid, error))
		return NULL;
	if (chmod(passfile, 0640) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "chmod %s: %s",
		            passfile, g_strerror(errno));
		return NULL;
	}
	memset(password, 0, strlen(password));
	return g_steal_pointer(&hook);
}

gboolean tkms_test_postgres_write_hook_config(TkmsTestPostgres *pg, const gchar *dir,
                                              const gchar *sections, GError **error)
{
	g_autofree gchar *path = g_build_filename(dir, "postgresql.conf", NULL);
	g_autofree gchar *defaults = tkms_test_postgres_hook_defaults(pg, dir);
	g_autofree gchar *contents =
	    g_strdup_printf("%s\n%s", defaults, sections != NULL ? sections : "");

	if (!g_file_set_contents_full(path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644,
	                              error))
		return FALSE;
	if (chmod(path, 0644) != 0 || chown(path, 0, 0) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "chmod %s: %s", path,
		            g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/* ---------------------------------------------------------------------------------------- */
/* The server                                                                                */

static gboolean init_cluster(TkmsTestPostgres *pg, GError **error)
{
	g_autofree gchar *pwfile = g_build_filename(pg->cluster_dir, "superuser-password", NULL);
	g_autofree gchar *pwfile_arg = g_strdup_printf("--pwfile=%s", pwfile);
	g_autofree gchar *hba = g_build_filename(pg->data_dir, "pg_hba.conf", NULL);
	g_autofree gchar *password_line = g_strdup_printf("%s\n", pg->password);
	const gchar *args[] = {"--pgdata", pg->data_dir,    "--username", PG_USER, pwfile_arg,
	                       "--auth",   "scram-sha-256", "--encoding", "UTF8",  "--locale",
	                       "C",        "--no-sync",     NULL};
	gboolean ok;

	if (!write_private(pwfile, password_line, pg->uid, pg->gid, error))
		return FALSE;
	ok = run_as_postgres(pg, "initdb", args, NULL, error);
	g_unlink(pwfile);
	if (!ok)
		return FALSE;
	/* every login needs its password, over TCP: no local (socket) line */
	return write_private(hba, "host all all 127.0.0.1/32 scram-sha-256\n", pg->uid, pg->gid,
	                     error);
}

/* The server's status line in postmaster.pid (the 8th) is "ready" once it takes logins. */
static gboolean server_ready(TkmsTestPostgres *pg)
{
	g_autofree gchar *pid_file = g_build_filename(pg->data_dir, "postmaster.pid", NULL);
	g_autofree gchar *contents = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(pid_file, &contents, NULL, NULL))
		return FALSE;
	lines = g_strsplit(contents, "\n", -1);
	return g_strv_length(lines) > 7 && g_str_has_prefix(lines[7], "ready");
}

/* Starts the server on pg->port; *retry says the port was taken meanwhile. */
static gboolean start_on_port(TkmsTestPostgres *pg, gboolean *retry, GError **error)
{
	g_autofree gchar *postgres = g_build_filename(pg->bin_dir, "postgres", NULL);
	g_autofree gchar *reuid = g_strdup_printf("--reuid=%u", (guint)pg->uid);
	g_autofree gchar *regid = g_strdup_printf("--regid=%u", (guint)pg->gid);
	g_autofree gchar *port = g_strdup_printf("port=%u", pg->port);
	g_autofree gchar *sockets = g_strdup_printf("unix_socket_directories=%s", pg->cluster_dir);
	/* setpriv: as postgres, and dying with the test (the kernel clears the parent death
	 * signal that the fixture set when the user changes) */
	const gchar *argv[] = {"setpriv",
	                       reuid,
	                       regid,
	                       "--init-groups",
	                       "--pdeathsig=SIGKILL",
	                       "--",
	                       postgres,
	                       "-D",
	                       pg->data_dir,
	                       "-c",
	                       port,
	                       "-c",
	                       "listen_addresses=127.0.0.1",
	                       "-c",
	                       sockets,
	                       "-c",
	                       "password_encryption=scram-sha-256",
	                       "-c",
	                       "log_statement=all",
	                       "-c",
	                       "log_connections=on",
	                       "-c",
	                       "logging_collector=off",
	                       "-c",
	                       "log_destination=stderr",
	                       "-c",
	                       "log_line_prefix=%m [%p] %q%u@%d ",
	                       "-c",
	                       "max_connections=20",
	                       "-c",
	                       "shared_buffers=16MB",
	                       "-c",
	                       "fsync=off",
	                       "-c",
	                       "synchronous_commit=off",
	                       "-c",
	                       "full_page_writes=off",
	                       NULL};
	gint64 deadline = g_get_monotonic_time() + (gint64)START_TIMEOUT_MS * 1000;

	*retry = FALSE;
	if (!tkms_test_proc_start(&pg->proc, argv, pg->cluster_dir, NULL, error))
		return FALSE;
	for (;;) {
		if (!tkms_test_proc_is_running(&pg->proc)) {
			g_autofree gchar *log = tkms_test_read_log_tail(pg->proc.log_path);
			*retry = strstr(log, "could not bind") != NULL ||
			         strstr(log, "could not create any TCP/IP sockets") != NULL;
			tkms_test_proc_set_error(&pg->proc, "exited during start-up", error);
			return FALSE;
		}
		if (server_ready(pg) && tkms_test_port_accepts(pg->port))
			return TRUE;
		if (g_get_monotonic_time() > deadline) {
			tkms_test_proc_set_error(&pg->proc, "not ready in time", error);
			tkms_test_proc_stop(&pg->proc, SIGKILL, 1000, NULL);
			return FALSE;
		}
		g_usleep(20000);
	}
}

static gboolean start_server(TkmsTestPostgres *pg, GError **error)
{
	g_autoptr(GError) last = NULL;

	for (guint attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
		gboolean retry = FALSE;

		pg->port = tkms_test_random_server_port();
		if (!tkms_test_port_is_free(pg->port))
			continue;
		g_clear_error(&last);
		if (start_on_port(pg, &retry, &last))
			return TRUE;
		if (!retry)
			break;
	}
	if (last == NULL)
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
		            "no free TCP port found for PostgreSQL");
	else
		g_propagate_error(error, g_steal_pointer(&last));
	return FALSE;
}

TkmsTestPostgres *tkms_test_postgres_new(const gchar *dir, GError **error)
{
	g_autoptr(TkmsTestPostgres) pg = g_new0(TkmsTestPostgres, 1);

	pg->keep = g_strcmp0(g_getenv("TKMS_TEST_KEEP"), "1") == 0;
	tkms_test_proc_init(&pg->proc, "postgres", g_build_filename(dir, "postgres.log", NULL));
	if (!require_dependencies(pg, error))
		return NULL;
	pg->password = random_password();
	/* the directory is removed on free from here on */
	if (!make_dir(dir, 0755, 0, 0, error))
		return NULL;
	pg->dir = g_strdup(dir);
	pg->cluster_dir = g_build_filename(dir, "cluster", NULL);
	pg->data_dir = g_build_filename(pg->cluster_dir, "data", NULL);
	pg->client_dir = g_build_filename(dir, "client", NULL);
	if (!make_dir(pg->cluster_dir, 0700, pg->uid, pg->gid, error) ||
	    !make_dir(pg->client_dir, 0700, 0, 0, error) || !init_cluster(pg, error) ||
	    !start_server(pg, error))
		return NULL;
	return g_steal_pointer(&pg);
}

TkmsTestPostgres *tkms_test_postgres_new_or_abort(const gchar *dir)
{
	g_autoptr(GError) error = NULL;
	TkmsTestPostgres *pg = tkms_test_postgres_new(dir, &error);

	if (pg == NULL)
		tkms_test_exit_on_error("cannot start a private PostgreSQL cluster", error);
	return pg;
}

void tkms_test_postgres_free(TkmsTestPostgres *pg)
{
	if (pg == NULL)
		return;
	if (tkms_test_proc_is_running(&pg->proc)) {
		const gchar *args[] = {"stop",      "--pgdata", pg->data_dir, "--mode",
		                       "immediate", "--wait",   NULL};
		g_autoptr(GError) error = NULL;

		if (!run_as_postgres(pg, "pg_ctl", args, NULL, &error))
			g_printerr("tkms-test-postgres: %s\n", error->message);
	}
	/* reaps it, or kills it if pg_ctl could not stop it */
	tkms_test_proc_stop(&pg->proc, SIGKILL, STOP_TIMEOUT_MS, NULL);
	tkms_test_proc_clear(&pg->proc);
	if (pg->dir != NULL) {
		if (pg->keep)
			g_printerr("tkms-test-postgres: kept %s\n", pg->dir);
		else
			tkms_test_rm_rf(pg->dir);
	}
	if (pg->password != NULL)
		memset(pg->password, 0, strlen(pg->password));
	g_free(pg->password);
	g_free(pg->dir);
	g_free(pg->cluster_dir);
	g_free(pg->data_dir);
	g_free(pg->client_dir);
	g_free(pg->bin_dir);
	g_free(pg->psql);
	g_free(pg);
}

const gchar *tkms_test_postgres_get_host(TkmsTestPostgres *pg)
{
	return PG_HOST;
}

guint16 tkms_test_postgres_get_port(TkmsTestPostgres *pg)
{
	return pg->port;
}

const gchar *tkms_test_postgres_get_superuser(TkmsTestPostgres *pg)
{
	return PG_USER;
}

const gchar *tkms_test_postgres_get_superuser_password(TkmsTestPostgres *pg)
{
	return pg->password;
}

const gchar *tkms_test_postgres_get_log_path(TkmsTestPostgres *pg)
{
	return pg->proc.log_path;
}

const gchar *tkms_test_postgres_get_data_dir(TkmsTestPostgres *pg)
{
	return pg->data_dir;
}

const gchar *tkms_test_postgres_get_psql(TkmsTestPostgres *pg)
{
	return pg->psql;
}
