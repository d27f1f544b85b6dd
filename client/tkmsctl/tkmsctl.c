/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <unistd.h>

#include "tkmsctl.h"

/* main: global options, the command table, connecting, and the error -> exit code map. */

static const TkmsctlCommand *const command_tables[] = {
	tkmsctl_key_commands,
	tkmsctl_data_commands,
	tkmsctl_status_commands,
};

static const gchar exit_codes_help[] =
	"Exit status:\n"
	"  0  success (verify: the signature or MAC is valid)\n"
	"  1  the operation failed (an error from tkmsd or the TPM, an I/O error)\n"
	"  2  usage error: unknown command or option, wrong arguments\n"
	"  3  verification ran and failed: verify/verify-hmac found the signature or MAC\n"
	"     invalid, audit verify found the log edited or cut\n"
	"  4  cannot reach tkmsd: no bus, bus address unusable, daemon not running\n"
	"  5  permission denied (polkit, bus policy, or file permissions)\n"
	"  6  not found: no such key, or no such input file\n";

static const gchar owner_name_help[] =
	"A NAME may be OWNER:NAME, OWNER a uid or 'system' (uid 0), to use another owner's\n"
	"key; that needs the polkit action org.tkms.KeyManager.admin. A malformed OWNER fails\n"
	"with exit status 1, an unknown uid with 6, a refusal with 5.";

static gboolean opt_version;

/* Given before or after the command; the same variables either way. */
static Tkmsctl ctl = {.interactive = -1};

/* The last of --interactive and --no-ask-password wins. */
static gboolean
set_interactive(const gchar *option_name, const gchar *value, gpointer data, GError **error)
{
	ctl.interactive = 1;
	return TRUE;
}

static gboolean
set_no_ask_password(const gchar *option_name, const gchar *value, gpointer data,
		    GError **error)
{
	ctl.interactive = 0;
	return TRUE;
}

static const GOptionEntry common_entries[] = {
	{"address", 'a', 0, G_OPTION_ARG_STRING, &ctl.address,
	 "Use the D-Bus bus at ADDR instead of the system bus", "ADDR"},
	{"json", 'j', 0, G_OPTION_ARG_NONE, &ctl.json, "Print machine-readable JSON", NULL},
	{NULL},
};

#define INTERACTIVE_HELP "Let polkit ask for a password (default on a terminal)"
#define NO_ASK_PASSWORD_ENTRY                                                                   \
	{"no-ask-password", 0, G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, set_no_ask_password, \
	 "Fail rather than let polkit ask for a password", NULL}

/* -i only before the command: after it, -i is the data commands' --in. */
static const GOptionEntry global_entries[] = {
	{"interactive", 'i', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, set_interactive,
	 INTERACTIVE_HELP, NULL},
	NO_ASK_PASSWORD_ENTRY,
	{"version", 0, 0, G_OPTION_ARG_NONE, &opt_version, "Print the version of tkmsctl", NULL},
	{NULL},
};

static const GOptionEntry command_entries[] = {
	{"interactive", 0, G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, set_interactive,
	 INTERACTIVE_HELP, NULL},
	NO_ASK_PASSWORD_ENTRY,
	{NULL},
};

static const TkmsctlCommand *
find_command(const gchar *name)
{
	for (guint t = 0; t < G_N_ELEMENTS(command_tables); t++) {
		for (const TkmsctlCommand *c = command_tables[t]; c->name != NULL; c++) {
			if (g_str_equal(c->name, name))
				return c;
		}
	}
	return NULL;
}

static gchar *
commands_help(void)
{
	GString *s = g_string_new("Commands:\n");

	for (guint t = 0; t < G_N_ELEMENTS(command_tables); t++) {
		for (const TkmsctlCommand *c = command_tables[t]; c->name != NULL; c++) {
			g_autofree gchar *usage = g_strdup_printf("%s %s", c->name, c->params);
			g_string_append_printf(s, "  %-34s %s\n", usage, c->summary);
		}
	}
	g_string_append(s, "\nRun 'tkmsctl COMMAND --help' for the options of a command.");
	return g_string_free(s, FALSE);
}

int
tkmsctl_exit_code_for_error(const GError *error)
{
	if (error->domain == TKMS_ERROR) {
		switch (error->code) {
		case TKMS_ERROR_NOT_FOUND:
			return TKMSCTL_EXIT_NOT_FOUND;
		case TKMS_ERROR_PERMISSION_DENIED:
			return TKMSCTL_EXIT_DENIED;
		default:
			return TKMSCTL_EXIT_FAILED;
		}
	}
	if (error->domain == G_DBUS_ERROR) {
		switch (error->code) {
		case G_DBUS_ERROR_ACCESS_DENIED:
		case G_DBUS_ERROR_AUTH_FAILED:
			return TKMSCTL_EXIT_DENIED;
		case G_DBUS_ERROR_SERVICE_UNKNOWN:
		case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
		case G_DBUS_ERROR_NO_SERVER:
		case G_DBUS_ERROR_DISCONNECTED:
		case G_DBUS_ERROR_NO_REPLY:
		case G_DBUS_ERROR_SPAWN_EXEC_FAILED:
		case G_DBUS_ERROR_SPAWN_FAILED:
		case G_DBUS_ERROR_SPAWN_CHILD_EXITED:
		case G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND:
		case G_DBUS_ERROR_SPAWN_SERVICE_INVALID:
			return TKMSCTL_EXIT_NO_DAEMON;
		default:
			return TKMSCTL_EXIT_FAILED;
		}
	}
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED) ||
	    g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_ACCES) ||
	    g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_PERM))
		return TKMSCTL_EXIT_DENIED;
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
	    g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
		return TKMSCTL_EXIT_NOT_FOUND;
	/* the bus connection went away under us */
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
		return TKMSCTL_EXIT_NO_DAEMON;
	return TKMSCTL_EXIT_FAILED;
}

int
tkmsctl_fail(const GError *error)
{
	g_autoptr(GError) copy = g_error_copy(error);
	int code = tkmsctl_exit_code_for_error(error);

	/* the remote error name is noise for a person; the exit code carries the class */
	g_dbus_error_strip_remote_error(copy);
	if (code == TKMSCTL_EXIT_NO_DAEMON)
		g_printerr("tkmsctl: cannot reach tkmsd: %s\n", copy->message);
	else
		g_printerr("tkmsctl: %s\n", copy->message);
	return code;
}

int
tkmsctl_usage(const gchar *command, const gchar *format, ...)
{
	g_autofree gchar *message = NULL;
	va_list args;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_printerr("tkmsctl: %s\n", message);
	if (command != NULL)
		g_printerr("Try 'tkmsctl %s --help'.\n", command);
	else
		g_printerr("Try 'tkmsctl --help'.\n");
	return TKMSCTL_EXIT_USAGE;
}

static int
connect_daemon(void)
{
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(GError) error = NULL;

	if (ctl.address != NULL) {
		connection = g_dbus_connection_new_for_address_sync(
			ctl.address,
			G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
				G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
			NULL, NULL, &error);
	} else {
		connection = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
	}
	if (connection == NULL) {
		g_dbus_error_strip_remote_error(error);
		g_printerr("tkmsctl: cannot connect to %s: %s\n",
			   ctl.address != NULL ? ctl.address : "the system bus", error->message);
		return TKMSCTL_EXIT_NO_DAEMON;
	}
	ctl.client = tkms_client_new_sync(connection, NULL, &error);
	if (ctl.client == NULL) {
		int code = tkmsctl_fail(error);
		return code == TKMSCTL_EXIT_FAILED ? TKMSCTL_EXIT_NO_DAEMON : code;
	}
	/* like systemctl: a person at a terminal can answer a polkit agent's prompt */
	tkms_client_set_allow_interactive_authorization(
		ctl.client, ctl.interactive >= 0 ? ctl.interactive : isatty(STDIN_FILENO));
	return TKMSCTL_EXIT_OK;
}

static int
run_command(const TkmsctlCommand *cmd, int argc, char **argv)
{
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *prgname = g_strdup_printf("tkmsctl %s", cmd->name);
	g_autofree gchar *description = NULL;
	guint n_args;
	int code;

	/* --help of a command reads "Usage: tkmsctl create [OPTION…] NAME TYPE" */
	g_set_prgname(prgname);
	context = g_option_context_new(cmd->params);
	g_option_context_set_summary(context, cmd->summary);
	/* every key NAME argument may be OWNER:NAME */
	if (g_str_has_prefix(cmd->params, "NAME"))
		description = cmd->description != NULL
				      ? g_strconcat(cmd->description, "\n\n", owner_name_help, NULL)
				      : g_strdup(owner_name_help);
	else
		description = g_strdup(cmd->description);
	if (description != NULL)
		g_option_context_set_description(context, description);
	if (cmd->entries != NULL)
		g_option_context_add_main_entries(context, cmd->entries, NULL);
	g_option_context_add_main_entries(context, common_entries, NULL);
	g_option_context_add_main_entries(context, command_entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error))
		return tkmsctl_usage(cmd->name, "%s", error->message);
	g_set_prgname("tkmsctl");

	/* argv[0] is the command; "--" ends options and is passed through by GOption */
	argv++;
	argc--;
	if (argc > 0 && g_str_equal(argv[0], "--")) {
		argv++;
		argc--;
	}
	n_args = (guint)argc;
	if (n_args < cmd->min_args)
		return tkmsctl_usage(cmd->name, "missing argument: %s", cmd->params);
	if (n_args > cmd->max_args)
		return tkmsctl_usage(cmd->name, "unexpected argument '%s'", argv[cmd->max_args]);

	if (cmd->needs_daemon && (code = connect_daemon()) != TKMSCTL_EXIT_OK)
		return code;
	return cmd->run(&ctl, argv);
}

int
main(int argc, char **argv)
{
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *commands = commands_help();
	g_autofree gchar *description =
		g_strconcat(commands, "\n\n", owner_name_help, "\n\n", exit_codes_help, NULL);
	const TkmsctlCommand *cmd;
	int code;

	setlocale(LC_ALL, "");
	g_set_prgname("tkmsctl");

	context = g_option_context_new("COMMAND [ARGUMENT…]");
	g_option_context_set_summary(context, "Use keys held by tkmsd, the TPM 2.0 key manager.\n\n"
					      "Data is read from --in FILE or standard input and "
					      "written to --out FILE or standard output.");
	g_option_context_set_description(context, description);
	g_option_context_add_main_entries(context, common_entries, NULL);
	g_option_context_add_main_entries(context, global_entries, NULL);
	/* stop at the command: what follows belongs to it */
	g_option_context_set_strict_posix(context, TRUE);
	if (!g_option_context_parse(context, &argc, &argv, &error))
		return tkmsctl_usage(NULL, "%s", error->message);
	if (opt_version) {
		g_print("tkmsctl %s\n", PACKAGE_VERSION);
		return TKMSCTL_EXIT_OK;
	}
	if (argc < 2)
		return tkmsctl_usage(NULL, "no command given");
	if (g_str_equal(argv[1], "help")) {
		if (argc < 3) {
			g_autofree gchar *help = g_option_context_get_help(context, TRUE, NULL);
			g_print("%s", help);
			return TKMSCTL_EXIT_OK;
		}
		if ((cmd = find_command(argv[2])) == NULL)
			return tkmsctl_usage(NULL, "unknown command '%s'", argv[2]);
		char *help_argv[] = {argv[2], (char *)"--help", NULL};
		return run_command(cmd, 2, help_argv);
	}
	if ((cmd = find_command(argv[1])) == NULL)
		return tkmsctl_usage(NULL, "unknown command '%s'", argv[1]);

	code = run_command(cmd, argc - 1, argv + 1);
	g_clear_object(&ctl.client);
	g_free(ctl.address);
	return code;
}
