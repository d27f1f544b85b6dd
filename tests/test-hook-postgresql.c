/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-hook-postgresql"

/* The PostgreSQL rotation hook (data/hooks/postgresql) against a private PostgreSQL cluster
 * (tests/tkms-test-postgres.h), run as tkmsd runs it: from a root-owned hook directory, as
 * nobody without groups, with an empty environment, the step as its only argument and the
 * JSON object on its standard input. What it changes is checked by logging in as the role
 * with libpq; every password it was given is checked to appear neither in its standard error
 * nor anywhere in the cluster's files or the server's log (which logs every statement). */

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tkms-test-postgres.h"
#include "tkms-test-process.h"

#define NOBODY 65534
#define ROLE "app"
#define KEY "app-db"
#define SECTION "[system:" KEY "]\nrole = " ROLE "\n"

static TkmsTestPostgres *pg;
static gchar *hook_dir;
static gchar *hook;
/* the password the role has now */
static gchar *role_password;
/* every password the hook was given */
static GPtrArray *passwords;

/* ---------------------------------------------------------------------------------------- */

static gchar *new_password(void)
{
	static const gchar chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                             "0123456789!#%&()*+,-./;<=>?@[]^_{|}~";
	gchar *s = g_malloc(33);

	for (guint i = 0; i < 32; i++)
		s[i] = chars[g_random_int_range(0, (gint32)sizeof(chars) - 1)];
	s[32] = '\0';
	return s;
}

typedef struct {
	const gchar *step;
	guint32 owner;
	const gchar *key;
	const gchar *current;
	const gchar *pending;
	const gchar *previous;
} HookInput;

static gchar *input_json(const HookInput *in)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonGenerator) gen = json_generator_new();
	g_autoptr(JsonNode) root = NULL;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "step");
	json_builder_add_string_value(b, in->step);
	json_builder_set_member_name(b, "owner");
	json_builder_add_int_value(b, in->owner);
	json_builder_set_member_name(b, "key");
	json_builder_add_string_value(b, in->key ? in->key : KEY);
	if (in->current != NULL) {
		json_builder_set_member_name(b, "current-version");
		json_builder_add_int_value(b, 3);
		json_builder_set_member_name(b, "current");
		json_builder_add_string_value(b, in->current);
	}
	if (in->pending != NULL) {
		json_builder_set_member_name(b, "pending-version");
		json_builder_add_int_value(b, 4);
		json_builder_set_member_name(b, "pending");
		json_builder_add_string_value(b, in->pending);
	}
	if (in->previous != NULL) {
		json_builder_set_member_name(b, "previous-version");
		json_builder_add_int_value(b, 2);
		json_builder_set_member_name(b, "previous");
		json_builder_add_string_value(b, in->previous);
	}
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	return json_generator_to_data(gen, NULL);
}

static void remember(const gchar *password)
{
	if (password != NULL && strlen(password) >= 8)
		g_ptr_array_add(passwords, g_strdup(password));
}

/* Runs `HOOK argv1` as nobody with stdin; returns its exit status, *err its stderr. */
static gint run_hook_raw(const gchar *argv1, const gchar *stdin_text, gchar **err)
{
	const gchar *args[] = {argv1, NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) argv =
	    tkms_test_setpriv_argv(NULL, NOBODY, hook, argv1 ? args : args + 1, &error);
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autofree gchar *out = NULL;
	g_autofree gchar *in_path = NULL;
	gsize in_len = stdin_text != NULL ? strlen(stdin_text) : 0;
	gint in_fd;
	gint status;

	g_assert_no_error(error);
	/* stdin from a file (mode 0600, removed below), not a pipe: a hook that refuses its
	 * configuration exits before it reads, and writing into its closed pipe killed the test
	 * with SIGPIPE */
	in_fd = g_file_open_tmp("tkms-hook-input-XXXXXX", &in_path, &error);
	g_assert_no_error(error);
	g_assert_cmpint(write(in_fd, stdin_text != NULL ? stdin_text : "", in_len), ==, (gssize)in_len);
	g_assert_cmpint(close(in_fd), ==, 0);
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
	                                     G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_subprocess_launcher_set_stdin_file_path(launcher, in_path);
	/* tkmsd's hooks start with a clean environment: here an empty one */
	g_subprocess_launcher_set_environ(launcher, (gchar *[]){NULL});
	g_subprocess_launcher_set_cwd(launcher, "/");
	proc = g_subprocess_launcher_spawnv(launcher, (const gchar *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_unlink(in_path), ==, 0);
	g_subprocess_communicate_utf8(proc, NULL, NULL, &out, err, &error);
	g_assert_no_error(error);
	status = g_subprocess_get_if_exited(proc) ? g_subprocess_get_exit_status(proc)
	                                          : 128 + g_subprocess_get_term_sig(proc);
	g_test_message("hook %s: status %d, stderr: %s", argv1 ? argv1 : "(no step)", status, *err);
	for (guint i = 0; i < passwords->len; i++)
		g_assert_null(strstr(*err, g_ptr_array_index(passwords, i)));
	return status;
}

static gint run_hook(const HookInput *in, gchar **err)
{
	g_autofree gchar *json = input_json(in);

	remember(in->current);
	remember(in->pending);
	remember(in->previous);
	return run_hook_raw(in->step, json, err);
}

/* The hook succeeds at a step, silently. */
static void hook_ok(const HookInput *in)
{
	g_autofree gchar *err = NULL;

	g_assert_cmpint(run_hook(in, &err), ==, 0);
	g_assert_cmpstr(err, ==, "");
}

/* The hook fails at a step (status 1), saying what. */
static void hook_fails(const HookInput *in, const gchar *says)
{
	g_autofree gchar *err = NULL;

	g_assert_cmpint(run_hook(in, &err), ==, 1);
	if (strstr(err, says) == NULL)
		g_error("the hook's stderr does not say \"%s\": %s", says, err);
	/* one line that names the step */
	g_assert_true(g_str_has_prefix(err, in->step));
	g_assert_cmpint(strchr(err, '\n') - err, ==, (gint)strlen(err) - 1);
}

static gboolean can_login(const gchar *role, const gchar *password)
{
	g_autoptr(GError) error = NULL;
	gboolean ok = tkms_test_postgres_can_login(pg, role, password, &error);

	g_assert_no_error(error);
	return ok;
}

static void assert_role_password(const gchar *role, const gchar *password,
                                 const gchar *not_password)
{
	g_assert_true(can_login(role, password));
	if (not_password != NULL)
		g_assert_false(can_login(role, not_password));
}

static void write_config(const gchar *sections)
{
	g_autoptr(GError) error = NULL;

	tkms_test_postgres_write_hook_config(pg, hook_dir, sections, &error);
	g_assert_no_error(error);
}

static gchar *hook_file(const gchar *name)
{
	return g_build_filename(hook_dir, name, NULL);
}

/* ---------------------------------------------------------------------------------------- */

/* set, then test, then finish: the role logs in with the new password and not the old. */
static void test_set_test_finish(void)
{
	g_autofree gchar *pending = new_password();
	HookInput set = {"set", 0, NULL, role_password, pending, NULL};
	HookInput test = {"test", 0, NULL, role_password, pending, NULL};
	HookInput finish = {"finish", 0, NULL, pending, NULL, role_password};

	hook_ok(&set);
	assert_role_password(ROLE, pending, role_password);
	/* a step runs again after a crash: set is idempotent */
	hook_ok(&set);
	assert_role_password(ROLE, pending, role_password);
	hook_ok(&test);
	hook_ok(&test);
	hook_ok(&finish);
	assert_role_password(ROLE, pending, role_password);
	g_free(role_password);
	role_password = g_steal_pointer(&pending);
}

/* test with a password the role does not have fails, saying why; nothing changes. */
static void test_wrong_password(void)
{
	g_autofree gchar *wrong = new_password();
	HookInput test = {"test", 0, NULL, role_password, wrong, NULL};

	hook_fails(&test, "role 'app' cannot log in with the pending password: ");
	{
		g_autofree gchar *err = NULL;
		run_hook(&test, &err);
		g_assert_nonnull(strstr(err, "password authentication failed"));
	}
	assert_role_password(ROLE, role_password, wrong);
}

/* A set that succeeded, then rollback: the role has the current password again. */
static void test_rollback(void)
{
	g_autofree gchar *pending = new_password();
	HookInput set = {"set", 0, NULL, role_password, pending, NULL};
	HookInput rollback = {"rollback", 0, NULL, role_password, pending, NULL};
	HookInput no_current = {"rollback", 0, NULL, NULL, pending, NULL};
	g_autofree gchar *err = NULL;

	hook_ok(&set);
	assert_role_password(ROLE, pending, role_password);
	hook_ok(&rollback);
	assert_role_password(ROLE, role_password, pending);
	hook_ok(&rollback);
	assert_role_password(ROLE, role_password, pending);

	/* a key without a current version: nothing to restore, said on stderr */
	g_assert_cmpint(run_hook(&no_current, &err), ==, 0);
	g_assert_nonnull(strstr(err, "no current password to restore"));
	assert_role_password(ROLE, role_password, pending);
}

/* Passwords that need quoting in a password file and in SQL, and non-ASCII ones, which
 * PostgreSQL's SCRAM prepares with SASLprep before hashing: the hook's verifier must match
 * what libpq sends. */
static void test_special_characters(void)
{
	static const gchar *const specials[] = {
	    "colon:back\\slash'quote\"dollar$$ space #end",
	    /* no-break space (mapped to space), soft hyphen (mapped to nothing), the fi
	     * ligature (NFKC: "fi"), and letters with diacritics */
	    "P\xc3\xa4ss\xc2\xa0w\xc3\xb6r\xc2\xad"
	    "d-\xef\xac\x81nal-\xc3\x9f-long-enough",
	    /* an ASCII control character with non-ASCII: SASLprep prohibits it, and both
	     * sides then hash the password as it is */
	    "bell\x07-and-\xc3\xa9-unprepared",
	};

	for (guint i = 0; i < G_N_ELEMENTS(specials); i++) {
		HookInput set = {"set", 0, NULL, role_password, specials[i], NULL};
		HookInput test = {"test", 0, NULL, role_password, specials[i], NULL};
		HookInput back = {"set", 0, NULL, specials[i], role_password, NULL};

		hook_ok(&set);
		assert_role_password(ROLE, specials[i], role_password);
		hook_ok(&test);
		hook_ok(&back);
		assert_role_password(ROLE, role_password, specials[i]);
	}
}

/* Passwords the hook cannot hand on: refused with the reason, nothing changed. */
static void test_unusable_passwords(void)
{
	g_autofree gchar *long_password = g_strnfill(1025, 'x');
	HookInput too_long = {"set", 0, NULL, role_password, long_password, NULL};
	HookInput line_break = {"test", 0, NULL, role_password, "two\nlines-password", NULL};

	hook_fails(&too_long, "longer than 1024 bytes");
	hook_fails(&line_break, "line break");
	assert_role_password(ROLE, role_password, NULL);
}

/* Sections are per key and owner: [UID:KEY], and [system:KEY] or [0:KEY] for root's. */
static void test_owner_sections(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *first = new_password();
	g_autofree gchar *second = new_password();
	HookInput set = {"set", 1000, NULL, first, second, NULL};
	HookInput test = {"test", 1000, NULL, first, second, NULL};
	HookInput root = {"set", 0, "numeric", role_password, second, NULL};

	tkms_test_postgres_create_role(pg, "other", first, NULL, &error);
	g_assert_no_error(error);
	write_config(SECTION "[1000:" KEY "]\nrole = other\n[0:numeric]\nrole = other\n");
	hook_ok(&set);
	hook_ok(&test);
	assert_role_password("other", second, first);
	/* root's key app-db is another section: its role did not change */
	assert_role_password(ROLE, role_password, NULL);

	hook_ok(&root);
	write_config(SECTION "[0:" KEY "]\nrole = other\n");
	{
		HookInput both = {"set", 0, NULL, role_password, first, NULL};
		hook_fails(&both, "has both [0:app-db] and [system:app-db]: keep one");
	}
	write_config(SECTION);
	assert_role_password(ROLE, role_password, NULL);
}

typedef struct {
	const gchar *what;
	const gchar *sections; /* after the defaults */
	guint mode;            /* of postgresql.conf, 0: 0644 */
	guint32 uid;           /* of postgresql.conf */
	const gchar *says;
} BadConfig;

/* Every configuration mistake fails set, test and rollback cleanly, naming it; the role keeps
 * its password. */
static void test_bad_config(void)
{
	g_autofree gchar *conf = hook_file("postgresql.conf");
	g_autofree gchar *readable = hook_file("readable.pgpass");
	g_autofree gchar *wrong = hook_file("wrong.pgpass");
	g_autofree gchar *good = hook_file("postgresql.pgpass");
	g_autofree gchar *wrong_line = tkms_test_postgres_passfile_line(
	    pg, TKMS_TEST_POSTGRES_ADMIN, "not-the-admin-password");
	g_autofree gchar *good_line = NULL;
	g_autoptr(GError) error = NULL;
	const BadConfig cases[] = {
	    {"no section", "[system:another]\nrole = app\n", 0, 0,
	     "has no section [system:app-db] for this key"},
	    {"group-writable", SECTION, 0664, 0,
	     "is writable by group or others (mode 0664): refused"},
	    {"world-writable", SECTION, 0646, 0,
	     "is writable by group or others (mode 0646): refused"},
	    {"owned by another user", SECTION, 0644, 1, "belongs to uid 1"},
	    {"unknown setting", SECTION "passwrd = x\n", 0, 0, "unknown setting 'passwrd'"},
	    {"no role", "[system:app-db]\nport = 5432\n", 0, 0, "role is missing"},
	    {"bad port", SECTION "port = 99999\n", 0, 0, "port is not a number"},
	    {"bad sslmode", SECTION "sslmode = sometimes\n", 0, 0, "sslmode is not one of"},
	    {"no psql", SECTION "psql = /nonexistent/psql\n", 0, 0, "is not an executable"},
	    {"role too long",
	     "[system:app-db]\nrole = " /* 64 bytes */
	     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	     0, 0, "role is longer than 63 bytes"},
	    {"not INI", "this is not\n", 0, 0, "cannot be read"},
	    {"readable passfile", SECTION "admin-passfile = %R\n", 0, 0,
	     "is readable by everyone (mode 0644): refused"},
	    {"missing passfile", SECTION "admin-passfile = %M\n", 0, 0,
	     "cannot open the admin password file"},
	    {"wrong admin password", SECTION "admin-passfile = %W\n", 0, 0,
	     "as 'tkms_admin' on 127.0.0.1:"},
	    {"unknown role", "[system:app-db]\nrole = no_such_role\n", 0, 0,
	     "role \"no_such_role\" does not exist"},
	};

	good_line = tkms_test_postgres_passfile_line(pg, TKMS_TEST_POSTGRES_ADMIN, "unused");
	g_file_set_contents_full(readable, good_line, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644,
	                         &error);
	g_assert_no_error(error);
	g_assert_cmpint(chmod(readable, 0644), ==, 0);
	g_file_set_contents_full(wrong, wrong_line, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0640,
	                         &error);
	g_assert_no_error(error);
	g_assert_cmpint(chown(wrong, 0, NOBODY), ==, 0);

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		const BadConfig *c = &cases[i];
		g_autofree gchar *pending = new_password();
		g_autoptr(GString) sections = g_string_new(c->sections);
		HookInput steps[] = {
		    {"set", 0, NULL, role_password, pending, NULL},
		    {"rollback", 0, NULL, role_password, pending, NULL},
		};

		g_test_message("bad configuration: %s", c->what);
		g_string_replace(sections, "%R", readable, 0);
		g_string_replace(sections, "%M", "/nonexistent/admin.pgpass", 0);
		g_string_replace(sections, "%W", wrong, 0);
		write_config(sections->str);
		if (c->mode != 0)
			g_assert_cmpint(chmod(conf, c->mode), ==, 0);
		g_assert_cmpint(chown(conf, c->uid, 0), ==, 0);
		for (guint s = 0; s < G_N_ELEMENTS(steps); s++)
			hook_fails(&steps[s], c->says);
		assert_role_password(ROLE, role_password, pending);
	}
	/* the wrong admin password fails the login, as the server said */
	{
		g_autofree gchar *pending = new_password();
		g_autofree gchar *err = NULL;
		g_autofree gchar *sections =
		    g_strdup_printf(SECTION "admin-passfile = %s\n", wrong);
		HookInput set = {"set", 0, NULL, role_password, pending, NULL};

		write_config(sections);
		g_assert_cmpint(run_hook(&set, &err), ==, 1);
		g_assert_nonnull(strstr(err, "password authentication failed"));
	}

	/* no configuration at all */
	g_assert_cmpint(g_unlink(conf), ==, 0);
	{
		HookInput set = {"set", 0, NULL, role_password, role_password, NULL};
		hook_fails(&set, "cannot open the configuration");
	}
	write_config(SECTION);
	assert_role_password(ROLE, role_password, NULL);
	g_assert_true(g_file_test(good, G_FILE_TEST_EXISTS));
}

/* A server that lets the role in without a password (trust) cannot test a password: test
 * says so instead of passing. */
static void test_trust_refused(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *first = new_password();
	g_autofree gchar *pending = new_password();
	HookInput set = {"set", 0, "trusting-key", first, pending, NULL};
	HookInput test = {"test", 0, "trusting-key", first, pending, NULL};

	tkms_test_postgres_create_role(pg, "trusting", first, NULL, &error);
	g_assert_no_error(error);
	tkms_test_postgres_prepend_hba(pg, "host all trusting 127.0.0.1/32 trust", &error);
	g_assert_no_error(error);
	/* the reload is asynchronous */
	for (guint i = 0; i < 500 && !can_login("trusting", "any password"); i++)
		g_usleep(10000);
	g_assert_true(can_login("trusting", "any password"));

	write_config(SECTION "[system:trusting-key]\nrole = trusting\n");
	hook_ok(&set);
	hook_fails(&test, "role 'trusting' logs in to 127.0.0.1:");
	{
		g_autofree gchar *err = NULL;
		run_hook(&test, &err);
		g_assert_nonnull(strstr(err, "without a password, so a login proves nothing"));
	}
	write_config(SECTION);
}

/* The example configuration shipped beside the hook is one it accepts. */
static void test_example_config(void)
{
	g_autofree gchar *source =
	    g_build_filename(g_getenv("TKMS_DATA_DIR"), "hooks", "postgresql.conf", NULL);
	g_autofree gchar *conf = hook_file("postgresql.conf");
	g_autofree gchar *contents = NULL;
	g_autoptr(GError) error = NULL;
	/* rollback without a current password reads the section, and stops before connecting */
	HookInput system_key = {"rollback", 0, "db-app", NULL, role_password, NULL};
	HookInput user_key = {"rollback", 1000, "reports", NULL, role_password, NULL};
	HookInput no_key = {"rollback", 1000, "db-app", NULL, role_password, NULL};
	g_autofree gchar *err = NULL;

	g_file_get_contents(source, &contents, NULL, &error);
	g_assert_no_error(error);
	g_file_set_contents_full(conf, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &error);
	g_assert_no_error(error);
	g_assert_cmpint(run_hook(&system_key, &err), ==, 0);
	g_assert_nonnull(strstr(err, "role 'app' keeps the one it has"));
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(run_hook(&user_key, &err), ==, 0);
	g_assert_nonnull(strstr(err, "role 'reporting' keeps the one it has"));
	hook_fails(&no_key, "has no section [1000:db-app] for this key");
	write_config(SECTION);
}

/* Wrong calls: usage (status 2), or input that does not fit (status 1). */
static void test_bad_input(void)
{
	g_autofree gchar *json = NULL;
	HookInput set = {"set", 0, NULL, role_password, NULL, NULL};
	HookInput bad_key = {"set", 0, ".hidden", role_password, role_password, NULL};
	static const struct {
		const gchar *argv1;
		const gchar *input;
		gint status;
		const gchar *says;
	} cases[] = {
	    {NULL, "{}", 2, "usage: postgresql {set|test|finish|rollback} < JSON"},
	    {"destroy", "{}", 2, "usage:"},
	    {"set", "not json", 1, "set: the input is not a JSON object in UTF-8"},
	    {"set", "[1, 2]", 1, "set: the input is not a JSON object"},
	    {"set", "{\"step\": \"test\", \"owner\": 0, \"key\": \"app-db\"}", 1,
	     "set: the input is for step 'test', the command line says 'set'"},
	    {"set", "{\"step\": \"set\", \"owner\": -1, \"key\": \"app-db\"}", 1,
	     "set: the input has no valid owner"},
	    {"set", "{\"step\": \"set\", \"owner\": 0, \"key\": \"app-db\", \"pending\": 5}", 1,
	     "set: the input's \"pending\" password is not a string without NUL"},
	    {"test",
	     "{\"step\": \"test\", \"owner\": 0, \"key\": \"app-db\", "
	     "\"pending\": \"\\ud800 lone surrogate\"}",
	     1, "test: the input's \"pending\" password is not valid UTF-8"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *err = NULL;

		g_assert_cmpint(run_hook_raw(cases[i].argv1, cases[i].input, &err), ==,
		                cases[i].status);
		if (strstr(err, cases[i].says) == NULL)
			g_error("the hook's stderr does not say \"%s\": %s", cases[i].says, err);
	}
	hook_fails(&set, "set: the input has no pending password");
	hook_fails(&bad_key, "set: the input has no valid key name");
	/* finish has nothing to do, even without a configuration section */
	{
		HookInput finish = {"finish", 0, "no-section", role_password, NULL, NULL};
		hook_ok(&finish);
	}
	assert_role_password(ROLE, role_password, NULL);
}

/* No password the hook handled is anywhere in the server's files or log, although the log
 * has every statement: the server saw only SCRAM verifiers. */
static void test_plaintext_nowhere(void)
{
	g_autofree gchar *log = NULL;
	g_autofree gchar *where = NULL;
	g_autofree gchar *verifier = NULL;
	const gchar *present[] = {NULL, NULL};
	g_autoptr(GError) error = NULL;
	gboolean found;

	g_file_get_contents(tkms_test_postgres_get_log_path(pg), &log, NULL, &error);
	g_assert_no_error(error);
	/* the check means something: statements are logged, the hook's among them */
	g_assert_nonnull(strstr(log, "LOG:  statement: ALTER ROLE \"app\" PASSWORD "
	                             "'SCRAM-SHA-256$4096:"));
	/* and the search finds what is there: the role's verifier, in the heap and the WAL */
	verifier = tkms_test_postgres_sql(
	    pg, "SELECT rolpassword FROM pg_authid WHERE rolname = 'app';\n", &error);
	g_assert_no_error(error);
	g_strstrip(verifier);
	g_assert_true(g_str_has_prefix(verifier, "SCRAM-SHA-256$4096:"));
	present[0] = verifier;
	g_assert_true(tkms_test_postgres_files_contain(pg, present, NULL));

	g_assert_cmpuint(passwords->len, >=, 20);
	g_ptr_array_add(passwords, NULL);
	found =
	    tkms_test_postgres_files_contain(pg, (const gchar *const *)passwords->pdata, &where);
	g_ptr_array_remove_index(passwords, passwords->len - 1);
	if (found)
		g_error("a password of the test is in %s", where);
}

int main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *tmp_dir = NULL;
	g_autofree gchar *pg_dir = NULL;
	gboolean keep = g_strcmp0(g_getenv("TKMS_TEST_KEEP"), "1") == 0;
	int ret;

	g_test_init(&argc, &argv, NULL);
	tmp_dir = tkms_test_make_tmp_dir(keep, &error);
	if (tmp_dir == NULL)
		tkms_test_exit_on_error("cannot make a temporary directory", error);
	pg_dir = g_build_filename(tmp_dir, "pg", NULL);
	pg = tkms_test_postgres_new_or_abort(pg_dir);
	hook_dir = g_build_filename(tmp_dir, "hooks", NULL);
	hook = tkms_test_postgres_setup_hook_dir(pg, hook_dir, NOBODY, &error);
	if (hook == NULL)
		tkms_test_exit_on_error("cannot set up the hook directory", error);
	passwords = g_ptr_array_new_with_free_func(g_free);
	role_password = new_password();
	remember(role_password);
	if (!tkms_test_postgres_create_role(pg, ROLE, role_password, NULL, &error))
		tkms_test_exit_on_error("cannot create the role", error);
	write_config(SECTION);

	g_test_add_func("/hook-postgresql/set-test-finish", test_set_test_finish);
	g_test_add_func("/hook-postgresql/wrong-password", test_wrong_password);
	g_test_add_func("/hook-postgresql/rollback", test_rollback);
	g_test_add_func("/hook-postgresql/special-characters", test_special_characters);
	g_test_add_func("/hook-postgresql/unusable-passwords", test_unusable_passwords);
	g_test_add_func("/hook-postgresql/owner-sections", test_owner_sections);
	g_test_add_func("/hook-postgresql/bad-config", test_bad_config);
	g_test_add_func("/hook-postgresql/trust-refused", test_trust_refused);
	g_test_add_func("/hook-postgresql/example-config", test_example_config);
	g_test_add_func("/hook-postgresql/bad-input", test_bad_input);
	g_test_add_func("/hook-postgresql/plaintext-nowhere", test_plaintext_nowhere);
	ret = g_test_run();

	tkms_test_postgres_free(pg);
	tkms_test_remove_tmp_dir(tmp_dir, keep);
	g_ptr_array_unref(passwords);
	g_free(role_password);
	g_free(hook_dir);
	g_free(hook);
	return ret;
}
