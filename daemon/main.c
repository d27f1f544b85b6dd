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

#define BUS_NAME "org.tkms.KeyManager"
#define OBJECT_PATH "/org/tkms/KeyManager"

typedef struct {
	GMainLoop *loop;
	TkmsEngine *engine;
	TkmsManager *manager;
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

static void
name_lost_cb(GDBusConnection *connection, const gchar *name, gpointer data)
{
	Daemon *d = data;
	g_warning("cannot own %s on the bus (another tkmsd, or the bus policy forbids it)",
		  name);
	d->exit_code = EXIT_FAILURE;
	g_main_loop_quit(d->loop);
}

static void
name_acquired_cb(GDBusConnection *connection, const gchar *name, gpointer data)
{
	g_debug("owning %s", name);
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
	gboolean replace = FALSE, verbose = FALSE, version = FALSE;
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
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	g_autoptr(TkmsHookLauncher) launcher = NULL;
	Daemon d = {0};
	guint owner_id;
	GBusNameOwnerFlags flags = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT;

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

	if (bus_address != NULL) {
		connection = g_dbus_connection_new_for_address_sync(
			bus_address,
			G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
				G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
			NULL, NULL, &error);
	} else {
		connection = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
	}
	if (connection == NULL) {
		g_printerr("tkmsd: cannot connect to the bus: %s\n", error->message);
		return 1;
	}
	g_dbus_connection_set_exit_on_close(connection, FALSE);

	d.engine = tkms_engine_new(config, &error);
	if (d.engine == NULL) {
		g_printerr("tkmsd: %s\n", error->message);
		return 1;
	}
	d.manager = tkms_manager_new(connection, d.engine);
	if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(d.manager), connection,
					      OBJECT_PATH, &error)) {
		g_printerr("tkmsd: cannot export %s: %s\n", OBJECT_PATH, error->message);
		return 1;
	}
	loop = g_main_loop_new(NULL, FALSE);
	d.loop = loop;
	g_unix_signal_add(SIGTERM, quit_cb, &d);
	g_unix_signal_add(SIGINT, quit_cb, &d);
	if (replace)
		flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;
	owner_id = g_bus_own_name_on_connection(connection, BUS_NAME, flags, name_acquired_cb,
						name_lost_cb, &d, NULL);
	g_info("tkmsd %s on %s, TPM %s, state %s, hook launcher pid %d", PACKAGE_VERSION,
	       bus_address ? bus_address : "the system bus", config->tcti, state_dir,
	       (gint)tkms_hook_launcher_get_pid(launcher));
	g_main_loop_run(loop);

	g_bus_unown_name(owner_id);
	g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(d.manager));
	tkms_manager_shutdown(d.manager);
	tkms_engine_shutdown(d.engine);
	/* the launcher kills the hooks that still run (the engine cancelled them) and exits */
	tkms_hook_launcher_stop(launcher);
	tkms_hook_launcher_set_default(NULL);
	g_dbus_connection_flush_sync(connection, NULL, NULL);
	g_object_unref(d.manager);
	g_object_unref(d.engine);
	return d.exit_code;
}
