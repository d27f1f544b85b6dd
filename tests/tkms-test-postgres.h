/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * TkmsTestPostgres: a private PostgreSQL cluster, the target of the password hooks' tests.
 *
 * Debian's postgresql package (the newest /usr/lib/postgresql/VERSION/bin found). initdb
 * refuses to run as root, so the cluster runs as the user postgres, in DIR/cluster (owned by
 * postgres, mode 0700; the Unix socket is there too, unused). The server is started directly
 * (not through pg_ctl) as a child of the test, listening on a free port of 127.0.0.1 only,
 * with password_encryption = scram-sha-256, every statement logged (log_statement = all) to
 * DIR/postgres.log, and a pg_hba.conf of one line:
 *   host all all 127.0.0.1/32 scram-sha-256
 * so that every login, the superuser's too, needs a password. The superuser `postgres` gets a
 * random password at initdb (--pwfile). What the harness runs as root (psql) finds its
 * password files in DIR/client (root, 0700).
 *
 * DIR must not exist and should lie inside a directory registered with the abort handler
 * (tkms_test_make_tmp_dir(), an env's tmp dir): if the test aborts, the server is killed (it
 * is registered like every fixture process, and dies with the test: setpriv --pdeathsig) and
 * the directory goes with its parent. tkms_test_postgres_free() stops the server
 * (pg_ctl stop -m immediate) and removes DIR (kept with TKMS_TEST_KEEP=1).
 *
 * Missing postgresql, postgresql-client or the user postgres, or not running as root: a
 * TKMS_TEST_ERROR_MISSING_DEPENDENCY error (the test is skipped).
 */

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _TkmsTestPostgres TkmsTestPostgres;

TkmsTestPostgres *tkms_test_postgres_new(const gchar *dir, GError **error);
/* Stops the server if it runs, removes DIR. */
void tkms_test_postgres_free(TkmsTestPostgres *pg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsTestPostgres, tkms_test_postgres_free)

/* Creates the cluster or ends the test (skipped if a dependency is missing). */
TkmsTestPostgres *tkms_test_postgres_new_or_abort(const gchar *dir);

/* "127.0.0.1" */
const gchar *tkms_test_postgres_get_host(TkmsTestPostgres *pg);
guint16 tkms_test_postgres_get_port(TkmsTestPostgres *pg);
/* "postgres", and its password */
const gchar *tkms_test_postgres_get_superuser(TkmsTestPostgres *pg);
const gchar *tkms_test_postgres_get_superuser_password(TkmsTestPostgres *pg);
/* The server's log: everything it wrote, every statement included. */
const gchar *tkms_test_postgres_get_log_path(TkmsTestPostgres *pg);
const gchar *tkms_test_postgres_get_data_dir(TkmsTestPostgres *pg);
/* The psql of the server's version. */
const gchar *tkms_test_postgres_get_psql(TkmsTestPostgres *pg);

/* Runs sql (on psql's standard input, ON_ERROR_STOP) as the superuser; returns its output
 * (unaligned, tuples only), or NULL with the error psql gave. */
gchar *tkms_test_postgres_sql(TkmsTestPostgres *pg, const gchar *sql, GError **error);

/* CREATE ROLE role LOGIN PASSWORD password attributes (e.g. "CREATEROLE", or NULL), or ALTER
 * ROLE role PASSWORD password: in a session that does not log its statements, so that these
 * test passwords are not in the log either. */
gboolean tkms_test_postgres_create_role(TkmsTestPostgres *pg, const gchar *role,
                                        const gchar *password, const gchar *attributes,
                                        GError **error);
gboolean tkms_test_postgres_set_password(TkmsTestPostgres *pg, const gchar *role,
                                         const gchar *password, GError **error);

/* Tries to log in as role with password over TCP (scram-sha-256) and run a query. TRUE if it
 * worked; FALSE without an error if the server refused the password; FALSE with an error for
 * anything else (the server down, an unknown role...). */
gboolean tkms_test_postgres_can_login(TkmsTestPostgres *pg, const gchar *role,
                                      const gchar *password, GError **error);

/* A libpq password file line (host:port:*:user:password, escaped) for this server. */
gchar *tkms_test_postgres_passfile_line(TkmsTestPostgres *pg, const gchar *user,
                                        const gchar *password);

/* Whether any file of the cluster (its data directory: heap, WAL, everything, after a
 * CHECKPOINT) or the server's log holds one of needles (NULL-terminated, none empty); *where
 * (may be NULL) then names the file and the needle's index. */
gboolean tkms_test_postgres_files_contain(TkmsTestPostgres *pg, const gchar *const *needles,
                                          gchar **where);

/* Puts line first in pg_hba.conf and has the server read it again. */
gboolean tkms_test_postgres_prepend_hba(TkmsTestPostgres *pg, const gchar *line, GError **error);

/*
 * The PostgreSQL hook (data/hooks/postgresql) against this server.
 *
 * setup_hook_dir: dir (made if missing; root, 0755) gets a copy of the shipped hook
 * ($TKMS_DATA_DIR/hooks/postgresql as dir/postgresql; root, 0755), and the admin role
 * TKMS_TEST_POSTGRES_ADMIN (CREATEROLE) is made with a random password, which goes to the
 * libpq password file dir/postgresql.pgpass (root, group hook_gid, 0640: the hook's user
 * reads it, no one else writes it). Returns the hook's path.
 *
 * write_hook_config: writes dir/postgresql.conf (root, 0644): a [DEFAULT] section naming
 * this server, the admin role and its password file, then sections (INI text or NULL).
 */
#define TKMS_TEST_POSTGRES_ADMIN "tkms_admin"
gchar *tkms_test_postgres_setup_hook_dir(TkmsTestPostgres *pg, const gchar *dir, guint32 hook_gid,
                                         GError **error);
gboolean tkms_test_postgres_write_hook_config(TkmsTestPostgres *pg, const gchar *dir,
                                              const gchar *sections, GError **error);
/* The text of that [DEFAULT] section. */
gchar *tkms_test_postgres_hook_defaults(TkmsTestPostgres *pg, const gchar *dir);

/* SQL quoting: 'literal' and "identifier". */
gchar *tkms_test_postgres_quote_literal(const gchar *s);
gchar *tkms_test_postgres_quote_ident(const gchar *s);

G_END_DECLS
