/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsd"

#include <glib-unix.h>
#include <locale.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "config.h"
#include "tkms-config.h"
#include "engine.h"
#include "hook-launcher.h"
#include "manager.h"
#include "privileges.h"
#include "secret.h"

#define BUS_NAME    "org.tkms.KeyManager"
#define OBJECT_PATH "/org/tkms/KeyManager"
/* After the bus connection closes, tkmsd tries this often, RECONNECT_INTERVAL_MS apart, to
 * connect again; a bus that stays away longer is gone (stopped or restarted, taking every
 * peer with it), and tkmsd exits as it always has then. */
#define RECONNECT_ATTEMPTS    10
#define RECONNECT_INTERVAL_MS 200
/* The bus may still hold the name for the closed connection when the new one asks for it: the
 * new one then waits in the name's queue, this long at most. */
#define REOWN_TIMEOUT_S 10

typedef struct {
	GMainLoop *loop;
	TkmsEngine *engine;
	TkmsManager *manager;
	const gchar *address;
	GBusNameOwnerFlags flags;
	GDBusConnection *connection; /* NULL while tkmsd connects again */
	guint owner_id;
	gulong closed_handler;
	guint reconnect_source;
	guint reconnect_attempts;
	gboolean reconnecting; /* from a close until the name is ours again */
	guint reown_timeout;
	int exit_code;
} Daemon;

static gboolean
quit_cb(gpointer data)
{
	Daemon *d = data;
	g_message("shutting down");
	g_main_loop_quit(d->loop);
	return G_SOURCE_CONTINUE;
}

static gboolean
reown_timeout_cb(gpointer data)
{
	Daemon *d = data;

	d->reown_timeout = 0;
	g_warning("the bus did not give %s back after a reconnection (another tkmsd owns it?); "
		  "exiting",
		  BUS_NAME);
	d->exit_code = EXIT_FAILURE;
	g_main_loop_quit(d->loop);
	return G_SOURCE_REMOVE;
}

static void
name_lost_cb(GDBusConnection *connection, const gchar *name, gpointer data)
{
	Daemon *d = data;

	/* the connection closed: closed_cb connects again */
	if (connection == NULL || g_dbus_connection_is_closed(connection))
		return;
	if (d->reconnecting) {
		g_debug("waiting in the queue of %s until the bus drops the closed connection",
			name);
		if (d->reown_timeout == 0)
			d->reown_timeout =
				g_timeout_add_seconds(REOWN_TIMEOUT_S, reown_timeout_cb, d);
		return;
	}
	g_warning("cannot own %s on the bus (another tkmsd, or the bus policy forbids it)", name);
	d->exit_code = EXIT_FAILURE;
	g_main_loop_quit(d->loop);
}

static void
name_acquired_cb(GDBusConnection *connection, const gchar *name, gpointer data)
{
	Daemon *d = data;

	if (d->reconnecting)
		g_message("connected to the bus again, serving %s", name);
	else
		g_debug("owning %s", name);
	d->reconnecting = FALSE;
	g_clear_handle_id(&d->reown_timeout, g_source_remove);
}

static gboolean serve(Daemon *d, GError **error);

static void
stop_serving(Daemon *d)
{
	if (d->connection == NULL)
		return;
	g_clear_handle_id(&d->owner_id, g_bus_unown_name);
	g_clear_signal_handler(&d->closed_handler, d->connection);
	g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(d->manager));
	g_clear_object(&d->connection);
}

static gboolean
reconnect_cb(gpointer data)
{
	Daemon *d = data;
	g_autoptr(GError) error = NULL;

	d->reconnect_source = 0;
	if (serve(d, &error))
		return G_SOURCE_REMOVE;
	stop_serving(d);
	if (++d->reconnect_attempts < RECONNECT_ATTEMPTS) {
		g_debug("cannot connect to the bus again yet (%s)", error->message);
		d->reconnect_source = g_timeout_add(RECONNECT_INTERVAL_MS, reconnect_cb, d);
		return G_SOURCE_REMOVE;
	}
	g_warning("cannot connect to the bus again (%s); exiting", error->message);
	d->exit_code = EXIT_FAILURE;
	g_main_loop_quit(d->loop);
	return G_SOURCE_REMOVE;
}

/* GDBus closes a connection on a message it cannot decode, even one dbus-daemon accepted and
 * forwarded (GLib 2.74 misreads some arrays of structs holding signatures): any local user
 * could then take tkmsd off the bus. The calls in flight are lost with the connection (their
 * callers get NoReply from the bus); tkmsd itself, its TPM state and its keys carry on. */
static void
closed_cb(GDBusConnection *connection, gboolean remote_peer_vanished, GError *error, gpointer data)
{
	Daemon *d = data;

	g_warning("the bus connection was closed (%s); connecting again",
		  error != NULL ? error->message : "no reason given");
	stop_serving(d);
	d->reconnecting = TRUE;
	d->reconnect_attempts = 0;
	d->reconnect_source = g_idle_add(reconnect_cb, d);
}

/* Connects to the bus, serves the manager there and asks for the name. */
static gboolean
serve(Daemon *d, GError **error)
{
	d->connection = g_dbus_connection_new_for_address_sync(
		d->address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, error);
	if (d->connection == NULL) {
		g_prefix_error(error, "cannot connect to the bus: ");
		return FALSE;
	}
	g_dbus_connection_set_exit_on_close(d->connection, FALSE);
	if (d->manager == NULL)
		d->manager = tkms_manager_new(d->connection, d->engine);
	else
		tkms_manager_set_connection(d->manager, d->connection);
	if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(d->manager), d->connection,
					      OBJECT_PATH, error)) {
		g_prefix_error(error, "cannot export %s: ", OBJECT_PATH);
		return FALSE;
	}
	d->closed_handler = g_signal_connect(d->connection, "closed", G_CALLBACK(closed_cb), d);
	d->owner_id = g_bus_own_name_on_connection(d->connection, BUS_NAME, d->flags,
						   name_acquired_cb, name_lost_cb, d, NULL);
	return TRUE;
}

/* Privilege separation: the hook launcher, the only process that may switch users (to run
 * rotation hooks as [passwords] HookUser), is forked while tkmsd has one thread (GLib runs on
 * in it, which is only safe after such a fork); then this process drops every capability for
 * good, before it makes a thread (capabilities belong to each thread). Under the shipped unit
 * tkmsd starts as its own user with CAP_SETUID, CAP_SETGID and CAP_KILL, which only the
 * launcher keeps; run as root, the launcher stays root and this process keeps uid 0 without a
 * capability. */
static TkmsHookLauncher *
separate_privileges(const TkmsConfig *config, GError **error)
{
	TkmsHookConfig hooks = {.directory = config->hook_directory,
				.user = config->hook_user,
				.timeout = config->hook_timeout};
	g_autoptr(TkmsHookLauncher) launcher = NULL;
	gint threads = tkms_privileges_thread_count();

	if (threads > 1) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "%d threads run before the hook launcher is started; it must be forked "
			    "from one",
			    threads);
		return NULL;
	}
	launcher = tkms_hook_launcher_start(&hooks, error);
	if (launcher == NULL || !tkms_privileges_drop_all(error))
		return NULL;
	/* its watches start GLib's worker thread: only now */
	tkms_hook_launcher_set_default(launcher);
	return g_steal_pointer(&launcher);
}

/* Key material must never end up in a core dump or be readable through ptrace. */
static void
harden_process(void)
{
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0);
	umask(0077);
}

int
main(int argc, char **argv)
{
	g_autofree gchar *bus_address = NULL;
	g_autofree gchar *tcti = NULL;
	g_autofree gchar *state_dir = NULL;
	g_autofree gchar *config_path = NULL;
	gboolean replace = FALSE, verbose = FALSE, version = FALSE, system_bus = FALSE;
	GOptionEntry entries[] = {
		{"bus-address", 0, 0, G_OPTION_ARG_STRING, &bus_address,
		 "Serve on this bus instead of the system bus", "ADDRESS"},
		{"tcti", 0, 0, G_OPTION_ARG_STRING, &tcti,
		 "TPM connection (default: config Tcti=, $TKMS_TCTI, device:/dev/tpmrm0)", "TCTI"},
		{"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
		 "State directory (default: $STATE_DIRECTORY or " TKMS_STATEDIR ")", "DIR"},
		{"config", 0, 0, G_OPTION_ARG_FILENAME, &config_path,
		 "Configuration file (default: " TKMS_SYSCONFDIR "/tkms/tkmsd.conf)", "FILE"},
		{"replace", 0, 0, G_OPTION_ARG_NONE, &replace, "Replace a running tkmsd", NULL},
		{"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL},
		{"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
		{NULL}};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- TPM 2.0 key manager daemon");
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsConfig) config = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	g_autoptr(TkmsHookLauncher) launcher = NULL;
	Daemon d = {.flags = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT};

	tkms_tpm_global_init();
	setlocale(LC_ALL, "");
	harden_process();
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_summary(ctx, "Serves org.tkms.KeyManager: TPM-bound keys, "
					  "encryption, signing and sealing, authorized by polkit.");
	if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
		g_printerr("tkmsd: %s (see --help)\n", error->message);
		return 2;
	}
	if (version) {
		g_print("tkmsd %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (verbose)
		g_setenv("G_MESSAGES_DEBUG", "all", TRUE);
	/* tpm2-tss prints ERROR:esys lines for answers we expect and handle (a changed PCR, a
	 * tampered blob, a signature that does not verify); tkmsd logs each failure itself, once.
	 * TSS2_LOG in tkmsd's environment (e.g. all+error) brings tpm2-tss's own logging back.
	 * Set before the TPM thread exists: tpm2-tss reads it at its first log call. */
	g_setenv("TSS2_LOG", "all+NONE", FALSE);
	/* polkit and everything else that asks for "the system bus" must use ours; set while
	 * tkmsd has one thread (GLib starts its worker with the first GIO call; the hook launcher
	 * gives hooks a clean environment) */
	if (bus_address != NULL)
		g_setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address, TRUE);

	if (config_path == NULL)
		config = tkms_config_load(TKMS_SYSCONFDIR "/tkms/tkmsd.conf", FALSE, &error);
	else
		config = tkms_config_load(config_path, TRUE, &error);
	if (config == NULL) {
		g_printerr("tkmsd: %s\n", error->message);
		return 1;
	}
	/* precedence: --tcti, then the config file, then $TKMS_TCTI, then the default */
	if (tcti != NULL) {
		g_free(config->tcti);
		config->tcti = g_strdup(tcti);
	} else if (config->tcti == NULL) {
		const gchar *env = g_getenv("TKMS_TCTI");
		config->tcti = g_strdup(env && *env ? env : TKMS_DEFAULT_TCTI);
	}
	if (state_dir == NULL) {
		const gchar *env = g_getenv("STATE_DIRECTORY");
		state_dir = g_strdup(env && *env ? env : TKMS_STATEDIR);
	}
	config->state_dir = g_strdup(state_dir);
	if (g_mkdir_with_parents(state_dir, 0700) != 0 || chmod(state_dir, 0700) != 0) {
		g_printerr("tkmsd: cannot create state directory %s: %s\n", state_dir,
			   g_strerror(errno));
		return 1;
	}
	launcher = separate_privileges(config, &error);
	if (launcher == NULL) {
		g_printerr("tkmsd: %s\n", error->message);
		return 1;
	}
	/* after the drop: the secure heap is locked within RLIMIT_MEMLOCK, without a
	 * capability, as under the unit */
	if (!tkms_secret_init_heap(config->require_locked_memory, &error)) {
		g_printerr("tkmsd: %s\n", error->message);
		return 1;
	}

	/* a connection of its own, never GLib's shared one, so that tkmsd can connect again */
	if (bus_address == NULL) {
		bus_address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
		if (bus_address == NULL) {
			g_printerr("tkmsd: cannot find the system bus: %s\n", error->message);
			return 1;
		}
		system_bus = TRUE;
	}
	d.address = bus_address;
	d.engine = tkms_engine_new(config, &error);
	if (d.engine == NULL) {
		g_printerr("tkmsd: %s\n", error->message);
		return 1;
	}
	if (replace)
		d.flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;
	if (!serve(&d, &error)) {
		g_printerr("tkmsd: %s\n", error->message);
		return 1;
	}
	loop = g_main_loop_new(NULL, FALSE);
	d.loop = loop;
	g_unix_signal_add(SIGTERM, quit_cb, &d);
	g_unix_signal_add(SIGINT, quit_cb, &d);
	g_info("tkmsd %s on %s, TPM %s, state %s, hook launcher pid %d", PACKAGE_VERSION,
	       system_bus ? "the system bus" : bus_address, config->tcti, state_dir,
	       (gint)tkms_hook_launcher_get_pid(launcher));
	g_main_loop_run(loop);

	g_clear_handle_id(&d.reconnect_source, g_source_remove);
	g_clear_handle_id(&d.reown_timeout, g_source_remove);
	if (d.connection != NULL) {
		g_clear_handle_id(&d.owner_id, g_bus_unown_name);
		g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(d.manager));
	}
	tkms_manager_shutdown(d.manager);
	tkms_engine_shutdown(d.engine);
	/* the launcher kills the hooks that still run (the engine cancelled them) and exits */
	tkms_hook_launcher_stop(launcher);
	tkms_hook_launcher_set_default(NULL);
	if (d.connection != NULL) {
		g_dbus_connection_flush_sync(d.connection, NULL, NULL);
		g_clear_signal_handler(&d.closed_handler, d.connection);
		g_clear_object(&d.connection);
	}
	g_object_unref(d.manager);
	g_object_unref(d.engine);
	return d.exit_code;
}
