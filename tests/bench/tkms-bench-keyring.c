/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-bench"

/* GNOME Keyring on a private session bus, read through libsecret: the baseline of the
 * GetSecret row (tkms-bench-keyring.h). */

#include "tkms-bench-config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "tkms-bench-keyring.h"
#include "tkms-test-process.h"

#ifdef TKMS_BENCH_HAVE_LIBSECRET
#include <libsecret/secret.h>
#endif

#define SECRETS_NAME "org.freedesktop.secrets"
#define SECRETS_PATH "/org/freedesktop/secrets"
#define SERVICE_IFACE "org.freedesktop.Secret.Service"
#define COLLECTION_IFACE "org.freedesktop.Secret.Collection"
#define START_TIMEOUT_US (20 * G_USEC_PER_SEC)
/* the login keyring's password: it is created with it, and unlocked */
#define KEYRING_PASSWORD "tkms-bench-login"
#define ATTRIBUTE "tkms-bench-key"
#define ATTRIBUTE_VALUE "bench-password"

struct _TkmsBenchKeyring {
	gchar *dir;
	TkmsTestProc bus;
	TkmsTestProc daemon;
	gchar *address;
	gchar *old_session_address; /* NULL: was unset */
	gchar *description;
	gchar *stored;
	GDBusConnection *connection;
	/* GIO's session bus singleton, which libsecret uses */
	GDBusConnection *session;
};

gboolean
tkms_bench_keyring_available(void)
{
#ifdef TKMS_BENCH_HAVE_LIBSECRET
	return TRUE;
#else
	return FALSE;
#endif
}

#ifdef TKMS_BENCH_HAVE_LIBSECRET
static const SecretSchema bench_schema = {
	"org.tkms.Bench.Password",
	SECRET_SCHEMA_NONE,
	{
		{ATTRIBUTE, SECRET_SCHEMA_ATTRIBUTE_STRING},
		{NULL, 0},
	},
};
#endif

/* A session bus of our own: no <servicedir>, so that nothing is activated behind our back
 * (Debian's org.freedesktop.secrets.service would start a second, locked keyring). */
static gboolean
write_bus_config(const gchar *path, const gchar *socket, GError **error)
{
	g_autofree gchar *config = g_strdup_printf(
		"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
		" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		"<busconfig>\n"
		"  <type>session</type>\n"
		"  <listen>unix:path=%s</listen>\n"
		"  <auth>EXTERNAL</auth>\n"
		"  <policy context=\"default\">\n"
		"    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
		"    <allow eavesdrop=\"true\"/>\n"
		"    <allow own=\"*\"/>\n"
		"  </policy>\n"
		"</busconfig>\n",
		socket);

	return g_file_set_contents(path, config, -1, error);
}

static GDBusConnection *
connect_bus(TkmsBenchKeyring *k, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + START_TIMEOUT_US;

	for (;;) {
		g_autoptr(GError) local = NULL;
		GDBusConnection *c = g_dbus_connection_new_for_address_sync(
			k->address,
			G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
				G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
			NULL, NULL, &local);

		if (c != NULL)
			return c;
		if (!tkms_test_proc_is_running(&k->bus)) {
			tkms_test_proc_set_error(&k->bus, "exited at start", error);
			return NULL;
		}
		if (g_get_monotonic_time() > deadline) {
			g_propagate_prefixed_error(error, g_steal_pointer(&local),
						   "the session bus did not come up: ");
			return NULL;
		}
		g_usleep(20000);
	}
}

static gboolean
name_has_owner(GDBusConnection *c, const gchar *name)
{
	g_autoptr(GVariant) r = g_dbus_connection_call_sync(
		c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"NameHasOwner", g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"),
		G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
	gboolean owned = FALSE;

	if (r != NULL)
		g_variant_get(r, "(b)", &owned);
	return owned;
}

/* The default collection must exist and be unlocked, or every lookup would prompt. */
static gboolean
check_default_collection(TkmsBenchKeyring *k, GError **error)
{
	g_autoptr(GVariant) alias = NULL;
	g_autoptr(GVariant) locked = NULL;
	g_autoptr(GVariant) value = NULL;
	const gchar *path = NULL;

	alias = g_dbus_connection_call_sync(k->connection, SECRETS_NAME, SECRETS_PATH,
					    SERVICE_IFACE, "ReadAlias", g_variant_new("(s)", "default"),
					    G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL,
					    error);
	if (alias == NULL)
		return FALSE;
	g_variant_get(alias, "(&o)", &path);
	if (g_str_equal(path, "/")) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "gnome-keyring-daemon has no default collection after --unlock");
		return FALSE;
	}
	locked = g_dbus_connection_call_sync(k->connection, SECRETS_NAME, path,
					     "org.freedesktop.DBus.Properties", "Get",
					     g_variant_new("(ss)", COLLECTION_IFACE, "Locked"),
					     G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL,
					     error);
	if (locked == NULL)
		return FALSE;
	g_variant_get(locked, "(v)", &value);
	if (g_variant_get_boolean(value)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "gnome-keyring-daemon's default collection %s is locked after --unlock",
			    path);
		return FALSE;
	}
	return TRUE;
}

static gchar *
keyring_version(const gchar *program)
{
	const gchar *argv[] = {program, "--version", NULL};
	g_autofree gchar *out = NULL;
	const gchar *version;
	gint status = 0;

	/* "gnome-keyring-daemon: 42.1" and more lines */
	if (!g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
			  NULL, &status, NULL) ||
	    out == NULL || (version = strstr(out, ": ")) == NULL)
		return g_strdup("gnome-keyring-daemon (version unknown)");
	return g_strdup_printf("gnome-keyring-daemon %.*s", (int)strcspn(version + 2, "\n"),
			       version + 2);
}

TkmsBenchKeyring *
tkms_bench_keyring_start(const gchar *dir, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autofree gchar *dbus_daemon = NULL;
	g_autofree gchar *gkd = NULL;
	g_autofree gchar *config = NULL;
	g_autofree gchar *socket = NULL;
	g_autofree gchar *home = NULL;
	g_autofree gchar *runtime = NULL;
	g_autofree gchar *password_file = NULL;
	g_autofree gchar *version = NULL;
	TkmsBenchKeyring *k;
	gint64 deadline;

	if (!tkms_bench_keyring_available()) {
		g_set_error_literal(error, TKMS_TEST_ERROR, TKMS_TEST_ERROR_MISSING_DEPENDENCY,
				    "tkms-bench was built without libsecret (libsecret-1-dev)");
		return NULL;
	}
	if (!tkms_test_require_program("dbus-daemon", "dbus-daemon", error) ||
	    !tkms_test_require_program("gnome-keyring-daemon", "gnome-keyring", error))
		return NULL;
	dbus_daemon = g_find_program_in_path("dbus-daemon");
	gkd = g_find_program_in_path("gnome-keyring-daemon");

	k = g_new0(TkmsBenchKeyring, 1);
	k->dir = g_strdup(dir);
	k->old_session_address = g_strdup(g_getenv("DBUS_SESSION_BUS_ADDRESS"));
	tkms_test_proc_init(&k->bus, "keyring dbus-daemon",
			    g_build_filename(dir, "keyring-bus.log", NULL));
	tkms_test_proc_init(&k->daemon, "gnome-keyring-daemon",
			    g_build_filename(dir, "gnome-keyring-daemon.log", NULL));

	config = g_build_filename(dir, "keyring-bus.conf", NULL);
	socket = g_build_filename(dir, "keyring-bus", NULL);
	home = g_build_filename(dir, "home", NULL);
	runtime = g_build_filename(dir, "run", NULL);
	password_file = g_build_filename(dir, "login-password", NULL);
	k->address = g_strdup_printf("unix:path=%s", socket);
	if (g_mkdir_with_parents(home, 0700) != 0 || g_mkdir_with_parents(runtime, 0700) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot make %s/{home,run}",
			    dir);
		goto fail;
	}
	if (!write_bus_config(config, socket, error) ||
	    !g_file_set_contents_full(password_file, KEYRING_PASSWORD, -1,
				      G_FILE_SET_CONTENTS_CONSISTENT, 0600, error))
		goto fail;

	{
		g_autofree gchar *config_arg = g_strconcat("--config-file=", config, NULL);
		const gchar *argv[] = {dbus_daemon, config_arg, "--nofork", "--nopidfile", NULL};

		if (!tkms_test_proc_start(&k->bus, argv, dir, NULL, error))
			goto fail;
	}
	if ((k->connection = connect_bus(k, error)) == NULL)
		goto fail;

	{
		/* its own HOME and XDG directories: the login keyring is made there; the password
		 * on stdin (--unlock) creates and unlocks it. env(1) and sh exec, so that the pid
		 * stopped at the end is the daemon's. */
		g_autofree gchar *e_bus = g_strconcat("DBUS_SESSION_BUS_ADDRESS=", k->address, NULL);
		g_autofree gchar *e_home = g_strconcat("HOME=", home, NULL);
		g_autofree gchar *e_run = g_strconcat("XDG_RUNTIME_DIR=", runtime, NULL);
		g_autofree gchar *e_data = g_strconcat("XDG_DATA_HOME=", home, "/data", NULL);
		g_autofree gchar *e_config = g_strconcat("XDG_CONFIG_HOME=", home, "/config", NULL);
		g_autofree gchar *e_cache = g_strconcat("XDG_CACHE_HOME=", home, "/cache", NULL);
		const gchar *argv[] = {
			"env",	e_bus,
			e_home, e_run,
			e_data, e_config,
			e_cache, "/bin/sh",
			"-c",	"exec \"$0\" --foreground --unlock --components=secrets < \"$1\"",
			gkd,	password_file,
			NULL,
		};

		if (!tkms_test_proc_start(&k->daemon, argv, dir, NULL, error))
			goto fail;
	}
	deadline = g_get_monotonic_time() + START_TIMEOUT_US;
	while (!name_has_owner(k->connection, SECRETS_NAME)) {
		if (!tkms_test_proc_is_running(&k->daemon)) {
			tkms_test_proc_set_error(&k->daemon, "exited at start", error);
			goto fail;
		}
		if (g_get_monotonic_time() > deadline) {
			tkms_test_proc_set_error(&k->daemon, "did not own " SECRETS_NAME, error);
			goto fail;
		}
		g_usleep(20000);
	}
	if (!check_default_collection(k, error))
		goto fail;

	/* libsecret takes the session bus from the environment when it first connects. That
	 * singleton would raise SIGTERM in this process when the bus stops at the end: not
	 * this one. */
	g_setenv("DBUS_SESSION_BUS_ADDRESS", k->address, TRUE);
	if ((k->session = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, error)) == NULL)
		goto fail;
	g_dbus_connection_set_exit_on_close(k->session, FALSE);
	version = keyring_version(gkd);
#ifdef TKMS_BENCH_HAVE_LIBSECRET
	k->description = g_strdup_printf("%s, libsecret %d.%d.%d", version, SECRET_MAJOR_VERSION,
					 SECRET_MINOR_VERSION, SECRET_MICRO_VERSION);
#endif
	return k;

fail:
	tkms_bench_keyring_free(k);
	return NULL;
}

const gchar *
tkms_bench_keyring_describe(TkmsBenchKeyring *k)
{
	return k->description;
}

gboolean
tkms_bench_keyring_store(TkmsBenchKeyring *k, const gchar *secret, GError **error)
{
#ifdef TKMS_BENCH_HAVE_LIBSECRET
	if (!secret_password_store_sync(&bench_schema, SECRET_COLLECTION_DEFAULT,
					"tkms-bench password", secret, NULL, error, ATTRIBUTE,
					ATTRIBUTE_VALUE, NULL)) {
		g_prefix_error(error, "secret_password_store_sync: ");
		return FALSE;
	}
	g_free(k->stored);
	k->stored = g_strdup(secret);
	return TRUE;
#else
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "no libsecret");
	return FALSE;
#endif
}

gboolean
tkms_bench_keyring_lookup(TkmsBenchKeyring *k, GError **error)
{
#ifdef TKMS_BENCH_HAVE_LIBSECRET
	gchar *found = secret_password_lookup_sync(&bench_schema, NULL, error, ATTRIBUTE,
						   ATTRIBUTE_VALUE, NULL);
	gboolean same = found != NULL && g_strcmp0(found, k->stored) == 0;

	if (found == NULL && (error == NULL || *error == NULL))
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
				    "secret_password_lookup_sync found nothing");
	else if (found != NULL && !same)
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "secret_password_lookup_sync returned another secret");
	secret_password_free(found);
	return same;
#else
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "no libsecret");
	return FALSE;
#endif
}

void
tkms_bench_keyring_free(TkmsBenchKeyring *k)
{
	if (k == NULL)
		return;
#ifdef TKMS_BENCH_HAVE_LIBSECRET
	/* drops libsecret's SecretService and its connection to the bus that goes away */
	secret_service_disconnect();
#endif
	if (k->old_session_address != NULL)
		g_setenv("DBUS_SESSION_BUS_ADDRESS", k->old_session_address, TRUE);
	else
		g_unsetenv("DBUS_SESSION_BUS_ADDRESS");
	if (k->session != NULL)
		g_dbus_connection_close_sync(k->session, NULL, NULL);
	g_clear_object(&k->session);
	g_clear_object(&k->connection);
	tkms_test_proc_stop(&k->daemon, SIGTERM, 5000, NULL);
	tkms_test_proc_clear(&k->daemon);
	tkms_test_proc_stop(&k->bus, SIGTERM, 5000, NULL);
	tkms_test_proc_clear(&k->bus);
	if (k->stored != NULL)
		explicit_bzero(k->stored, strlen(k->stored));
	g_free(k->stored);
	g_free(k->address);
	g_free(k->old_session_address);
	g_free(k->description);
	g_free(k->dir);
	g_free(k);
}
