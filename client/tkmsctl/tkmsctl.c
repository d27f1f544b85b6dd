/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tkmsctl.h"

/* main: global options, the command table, connecting, and the error -> exit code map. */

static const TkmsctlCommand *const command_tables[] = {
	tkmsctl_key_commands,
	tkmsctl_lifecycle_commands,
	tkmsctl_secret_commands,
	tkmsctl_data_commands,
	tkmsctl_envelope_commands,
	tkmsctl_status_commands,
};

static const gchar exit_codes_help[] =
	N_("Exit status:\n"
	"  0  success (verify: the signature or MAC is valid)\n"
	"  1  the operation failed (an error from tkmsd or the TPM, an I/O error)\n"
	"  2  usage error: unknown command or option, wrong arguments\n"
	"  3  verification ran and failed: verify/verify-hmac found the signature or MAC\n"
	"     invalid, audit verify found the log edited or cut\n"
	"  4  cannot reach tkmsd: no bus, bus address unusable, daemon not running\n"
	"  5  permission denied (polkit, bus policy, or file permissions)\n"
	"  6  not found: no such key, or no such input file\n");

static const gchar owner_name_help[] =
	N_("A NAME may be OWNER:NAME, OWNER a uid or 'system' (uid 0), to use another owner's\n"
	"key; that needs the polkit action org.tkms.KeyManager.admin. A malformed OWNER fails\n"
	"with exit status 1, an unknown uid with 6, a refusal with 5.");

static gboolean opt_version;

/* The bus tkmsctl talks to and where that choice came from, for messages. */
typedef enum {
	BUS_SYSTEM,
	BUS_SYSTEM_FROM_ENV,
	BUS_FROM_OPTION,
	BUS_FROM_TKMS_ADDRESS,
} BusOrigin;

static gchar *bus_address;
static BusOrigin bus_origin;

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
	 N_("Use the D-Bus bus at ADDR (default: $TKMS_ADDRESS, else the system bus)"),
	 N_("ADDR")},
	{"json", 'j', 0, G_OPTION_ARG_NONE, &ctl.json,
	 N_("Print machine-readable JSON (errors too, on standard error)"), NULL},
	/* keys per ListKeysPage call of list; for tests of the paging */
	{"page-size", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &ctl.page_size, NULL, NULL},
	{NULL},
};

#define INTERACTIVE_HELP N_("Let polkit ask for a password (default on a terminal)")
#define NO_ASK_PASSWORD_ENTRY                                                                   \
	{"no-ask-password", 0, G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, set_no_ask_password, \
	 N_("Fail rather than let polkit ask for a password"), NULL}

/* -i only before the command: after it, -i is the data commands' --in. */
static const GOptionEntry global_entries[] = {
	{"interactive", 'i', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, set_interactive,
	 INTERACTIVE_HELP, NULL},
	NO_ASK_PASSWORD_ENTRY,
	{"version", 0, 0, G_OPTION_ARG_NONE, &opt_version, N_("Print the version of tkmsctl"),
	 NULL},
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

/* Levenshtein distance, for "did you mean". */
static guint
edit_distance(const gchar *a, const gchar *b)
{
	gsize la = strlen(a), lb = strlen(b);
	g_autofree guint *row = g_new(guint, lb + 1);

	for (gsize j = 0; j <= lb; j++)
		row[j] = (guint)j;
	for (gsize i = 1; i <= la; i++) {
		guint diag = row[0];

		row[0] = (guint)i;
		for (gsize j = 1; j <= lb; j++) {
			guint up = row[j];
			guint cost = a[i - 1] == b[j - 1] ? 0 : 1;

			row[j] = MIN(MIN(row[j] + 1, row[j - 1] + 1), diag + cost);
			diag = up;
		}
	}
	return row[lb];
}

/* The command closest to @name, if close enough to be a typo (or @name is its prefix). */
static const gchar *
nearest_command(const gchar *name)
{
	const gchar *best = NULL;
	guint best_distance = G_MAXUINT;

	for (guint t = 0; t < G_N_ELEMENTS(command_tables); t++) {
		for (const TkmsctlCommand *c = command_tables[t]; c->name != NULL; c++) {
			guint d = g_str_has_prefix(c->name, name) && *name != '\0'
					  ? 1
					  : edit_distance(name, c->name);

			if (d < best_distance) {
				best_distance = d;
				best = c->name;
			}
		}
	}
	return best_distance <= MAX(2, strlen(name) / 3) ? best : NULL;
}

static int
unknown_command(const gchar *name)
{
	const gchar *nearest = nearest_command(name);
	g_autofree gchar *hint = NULL;

	if (nearest == NULL)
		return tkmsctl_usage(NULL, _("unknown command '%s'"), name);
	hint = g_strdup_printf(_("Did you mean 'tkmsctl %s'? See 'tkmsctl --help' for all "
				 "commands."),
			       nearest);
	return tkmsctl_usage_with_hint(hint, _("unknown command '%s'"), name);
}

static gchar *
commands_help(void)
{
	GString *s = g_string_new(_("Commands:\n"));

	for (guint t = 0; t < G_N_ELEMENTS(command_tables); t++) {
		for (const TkmsctlCommand *c = command_tables[t]; c->name != NULL; c++) {
			g_autofree gchar *usage = g_strdup_printf("%s %s", c->name, c->params);
			g_string_append_printf(s, "  %-34s %s\n", usage, _(c->summary));
		}
	}
	g_string_append(s, _("\nRun 'tkmsctl COMMAND --help' for the options of a command."));
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

/* The daemon's advice names D-Bus methods; a tkmsctl user needs tkmsctl's words. Matched
 * on the daemon's (English, stable) phrases; its D-Bus messages stay as they are. */
static const struct {
	const gchar *daemon;
	const gchar *cli;
} cli_words[] = {
	{"list keys with ListKeys", N_("list keys with 'tkmsctl list'")},
	{"use ListAllKeysPage to read it a page at a time", N_("use 'tkmsctl list --all'")},
	{"use ListKeysPage to read it a page at a time", N_("use 'tkmsctl list'")},
	{"pass the exact output of Encrypt", N_("pass the exact output of 'tkmsctl encrypt'")},
	{"pass the exact output of Seal", N_("pass the exact output of 'tkmsctl seal'")},
	/* the life cycle: NAME and VERSION become the key and version of the message */
	{"make another version primary (SetPrimaryVersion) or rotate first",
	 N_("make another version primary ('tkmsctl primary NAME N') or rotate first "
	    "('tkmsctl rotate NAME')")},
	{"make another version primary or rotate first, or destroy the whole key (DestroyKey)",
	 N_("make another version primary ('tkmsctl primary NAME N') or rotate first "
	    "('tkmsctl rotate NAME'), or destroy the whole key ('tkmsctl destroy NAME')")},
	{"cancel its destruction first (CancelKeyDestruction)",
	 N_("cancel its destruction first ('tkmsctl destroy NAME --version VERSION --cancel')")},
	{"the key is being destroyed; cancel its destruction first",
	 N_("the key is being destroyed; cancel its destruction first ('tkmsctl destroy NAME "
	    "--cancel')")},
	{"only an active version can be primary; resume it first",
	 N_("only an active version can be primary; resume it first ('tkmsctl state NAME "
	    "VERSION active')")},
	{"rotate the key or cancel its destruction",
	 N_("rotate the key ('tkmsctl rotate NAME') or cancel its destruction ('tkmsctl destroy "
	    "NAME --cancel')")},
	/* password keys */
	{"GetSecret reads password keys only", N_("'tkmsctl secret get' reads password keys only")},
	{"use GetSecret to read it", N_("read it with 'tkmsctl secret get NAME'")},
	{"see GetKeyInfo's rotation", N_("see 'tkmsctl info NAME'")},
};

static gchar *
in_cli_words(const gchar *message)
{
	g_autoptr(GString) s = g_string_new(message);
	g_autofree gchar *version = NULL;
	guint v;

	/* a KeyState message starts with the version it is about */
	if (sscanf(message, "Version %u of key", &v) == 1)
		version = g_strdup_printf("%u", v);
	for (guint i = 0; i < G_N_ELEMENTS(cli_words); i++) {
		g_autoptr(GString) cli = NULL;

		if (strstr(s->str, cli_words[i].daemon) == NULL)
			continue;
		cli = g_string_new(_(cli_words[i].cli));
		if (ctl.key_name != NULL)
			g_string_replace(cli, "NAME", ctl.key_name, 0);
		if (version != NULL)
			g_string_replace(cli, "VERSION", version, 0);
		g_string_replace(s, cli_words[i].daemon, cli->str, 0);
	}
	return g_string_free(g_steal_pointer(&s), FALSE);
}

static const gchar *const exit_kinds[] = {
	[TKMSCTL_EXIT_OK] = "ok",
	[TKMSCTL_EXIT_FAILED] = "failed",
	[TKMSCTL_EXIT_USAGE] = "usage",
	[TKMSCTL_EXIT_INVALID] = "invalid",
	[TKMSCTL_EXIT_NO_DAEMON] = "no-daemon",
	[TKMSCTL_EXIT_DENIED] = "denied",
	[TKMSCTL_EXIT_NOT_FOUND] = "not-found",
};

/* With --json, one line on stderr: {"error": {"message", "kind", "exit-status"[, "name"]
 * [, "hint"]}}; "name" is the D-Bus error name when there is one. Else the text. */
static void
print_error(int code, const gchar *message, const gchar *dbus_name, const gchar *hint)
{
	g_autoptr(JsonBuilder) b = NULL;
	g_autoptr(JsonGenerator) generator = NULL;
	g_autoptr(JsonNode) root = NULL;
	g_autofree gchar *line = NULL;

	if (!ctl.json) {
		g_printerr("tkmsctl: %s\n", message);
		if (hint != NULL)
			g_printerr("%s\n", hint);
		return;
	}
	b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "error");
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "message");
	json_builder_add_string_value(b, message);
	json_builder_set_member_name(b, "kind");
	json_builder_add_string_value(b, exit_kinds[code]);
	json_builder_set_member_name(b, "exit-status");
	json_builder_add_int_value(b, code);
	if (dbus_name != NULL) {
		json_builder_set_member_name(b, "name");
		json_builder_add_string_value(b, dbus_name);
	}
	if (hint != NULL) {
		json_builder_set_member_name(b, "hint");
		json_builder_add_string_value(b, hint);
	}
	json_builder_end_object(b);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	generator = json_generator_new();
	json_generator_set_root(generator, root);
	line = json_generator_to_data(generator, NULL);
	g_printerr("%s\n", line);
}

int
tkmsctl_fail_with_hint(const GError *error, const gchar *hint)
{
	g_autoptr(GError) copy = g_error_copy(error);
	g_autofree gchar *dbus_name = NULL;
	g_autofree gchar *message = NULL;
	g_autofree gchar *words = NULL;
	int code = tkmsctl_exit_code_for_error(error);

	/* the name of a remote error stays only in the prefix when GLib does not know it */
	if (error->domain == TKMS_ERROR || error->domain == G_DBUS_ERROR)
		dbus_name = g_dbus_error_encode_gerror(error);
	else
		dbus_name = g_dbus_error_get_remote_error(error);
	/* the remote error name is noise for a person; the exit code carries the class */
	g_dbus_error_strip_remote_error(copy);
	words = in_cli_words(copy->message);
	if (code == TKMSCTL_EXIT_NO_DAEMON)
		message = g_strdup_printf(_("cannot reach tkmsd on %s: %s"),
					  bus_address != NULL ? bus_address : _("the system bus"),
					  words);
	else
		message = g_steal_pointer(&words);
	print_error(code, message, dbus_name, hint);
	return code;
}

int
tkmsctl_fail(const GError *error)
{
	return tkmsctl_fail_with_hint(error, NULL);
}

static int
usage_va(const gchar *hint, const gchar *format, va_list args) G_GNUC_PRINTF(2, 0);

static int
usage_va(const gchar *hint, const gchar *format, va_list args)
{
	g_autofree gchar *message = g_strdup_vprintf(format, args);

	print_error(TKMSCTL_EXIT_USAGE, message, NULL, hint);
	return TKMSCTL_EXIT_USAGE;
}

int
tkmsctl_usage(const gchar *command, const gchar *format, ...)
{
	g_autofree gchar *hint = command != NULL
					 ? g_strdup_printf(_("Try 'tkmsctl %s --help'."), command)
					 : g_strdup(_("Try 'tkmsctl --help'."));
	va_list args;
	int code;

	va_start(args, format);
	code = usage_va(hint, format, args);
	va_end(args);
	return code;
}

int
tkmsctl_usage_with_hint(const gchar *hint, const gchar *format, ...)
{
	va_list args;
	int code;

	va_start(args, format);
	code = usage_va(hint, format, args);
	va_end(args);
	return code;
}

/* --address, else $TKMS_ADDRESS (the demo's env file sets it), else the system bus (which
 * $DBUS_SYSTEM_BUS_ADDRESS may move). */
static void
choose_bus(void)
{
	const gchar *env = g_getenv("TKMS_ADDRESS");

	if (ctl.address != NULL) {
		bus_address = g_strdup(ctl.address);
		bus_origin = BUS_FROM_OPTION;
	} else if (env != NULL && *env != '\0') {
		bus_address = g_strdup(env);
		bus_origin = BUS_FROM_TKMS_ADDRESS;
	} else {
		bus_address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, NULL);
		bus_origin = g_getenv("DBUS_SYSTEM_BUS_ADDRESS") != NULL ? BUS_SYSTEM_FROM_ENV
									 : BUS_SYSTEM;
	}
}

static int
connect_daemon(void)
{
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(GError) error = NULL;
	gboolean ask;

	choose_bus();
	if (bus_origin == BUS_SYSTEM || bus_origin == BUS_SYSTEM_FROM_ENV) {
		connection = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
	} else {
		connection = g_dbus_connection_new_for_address_sync(
			bus_address,
			G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
				G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
			NULL, NULL, &error);
	}
	if (connection == NULL) {
		g_autofree gchar *message = NULL;
		g_autofree gchar *origin = NULL;

		g_dbus_error_strip_remote_error(error);
		static const gchar *const origins[] = {
			[BUS_SYSTEM_FROM_ENV] = "DBUS_SYSTEM_BUS_ADDRESS",
			[BUS_FROM_OPTION] = "--address",
			[BUS_FROM_TKMS_ADDRESS] = "TKMS_ADDRESS",
		};

		origin = bus_origin != BUS_SYSTEM
				 ? g_strdup_printf(_(" (from %s)"), origins[bus_origin])
				 : g_strdup(_(" (the system bus)"));
		message = g_strdup_printf(_("cannot connect to the bus at %s%s: %s"),
					  bus_address != NULL ? bus_address : "?", origin,
					  error->message);
		print_error(TKMSCTL_EXIT_NO_DAEMON, message, NULL,
			    _("Choose the bus tkmsd is on with --address ADDR or TKMS_ADDRESS=ADDR "
			      "(or DBUS_SYSTEM_BUS_ADDRESS for the system bus); is tkmsd's bus "
			      "running?"));
		return TKMSCTL_EXIT_NO_DAEMON;
	}
	ctl.client = tkms_client_new_sync(connection, NULL, &error);
	if (ctl.client == NULL) {
		int code = tkmsctl_fail(error);
		return code == TKMSCTL_EXIT_FAILED ? TKMSCTL_EXIT_NO_DAEMON : code;
	}
	/* like systemctl: a person at a terminal can answer a polkit agent's prompt, and gets
	 * a text agent of its own for it */
	ask = ctl.interactive >= 0 ? ctl.interactive : isatty(STDIN_FILENO);
	tkms_client_set_allow_interactive_authorization(ctl.client, ask);
	if (ask && isatty(STDIN_FILENO))
		tkmsctl_agent_start(bus_origin >= BUS_FROM_OPTION ? bus_address : NULL);
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
	g_option_context_set_translation_domain(context, GETTEXT_PACKAGE);
	g_option_context_set_summary(context, _(cmd->summary));
	/* every key NAME argument may be OWNER:NAME */
	if (g_str_has_prefix(cmd->params, "NAME"))
		description = cmd->description != NULL
				      ? g_strconcat(_(cmd->description), "\n\n", _(owner_name_help),
						    NULL)
				      : g_strdup(_(owner_name_help));
	else
		description = cmd->description != NULL ? g_strdup(_(cmd->description)) : NULL;
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
		return tkmsctl_usage(cmd->name, _("missing argument: %s"), cmd->params);
	if (n_args > cmd->max_args)
		return tkmsctl_usage(cmd->name, _("unexpected argument '%s'"),
				     argv[cmd->max_args]);

	if (g_str_has_prefix(cmd->params, "NAME"))
		ctl.key_name = argv[0];
	if (cmd->needs_daemon && (code = connect_daemon()) != TKMSCTL_EXIT_OK)
		return code;
	return cmd->run(&ctl, argv);
}

/* Messages in the user's language: TKMS_LOCALEDIR overrides the installed catalogs (to run
 * from a build tree). */
static void
init_i18n(void)
{
	const gchar *localedir = g_getenv("TKMS_LOCALEDIR");

	setlocale(LC_ALL, "");
	bindtextdomain(GETTEXT_PACKAGE,
		       localedir != NULL && *localedir != '\0' ? localedir : TKMS_LOCALEDIR);
	bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
	textdomain(GETTEXT_PACKAGE);
}

static int
run(int argc, char **argv)
{
	g_autoptr(GOptionContext) context = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *commands = commands_help();
	g_autofree gchar *description = g_strconcat(commands, "\n\n", _(owner_name_help), "\n\n",
						    _(exit_codes_help), NULL);
	const TkmsctlCommand *cmd;

	context = g_option_context_new(_("COMMAND [ARGUMENT…]"));
	g_option_context_set_translation_domain(context, GETTEXT_PACKAGE);
	g_option_context_set_summary(context, _("Use keys held by tkmsd, the TPM 2.0 key manager.\n\n"
						"Data is read from --in FILE or standard input and "
						"written to --out FILE or standard output."));
	g_option_context_set_description(context, description);
	g_option_context_add_main_entries(context, common_entries, GETTEXT_PACKAGE);
	g_option_context_add_main_entries(context, global_entries, GETTEXT_PACKAGE);
	/* stop at the command: what follows belongs to it */
	g_option_context_set_strict_posix(context, TRUE);
	if (!g_option_context_parse(context, &argc, &argv, &error))
		return tkmsctl_usage(NULL, "%s", error->message);
	if (opt_version) {
		g_print("tkmsctl %s\n", PACKAGE_VERSION);
		return TKMSCTL_EXIT_OK;
	}
	if (argc < 2)
		return tkmsctl_usage(NULL, _("no command given"));
	if (g_str_equal(argv[1], "help")) {
		if (argc < 3) {
			g_autofree gchar *help = g_option_context_get_help(context, TRUE, NULL);
			g_print("%s", help);
			return TKMSCTL_EXIT_OK;
		}
		if ((cmd = find_command(argv[2])) == NULL)
			return unknown_command(argv[2]);
		char *help_argv[] = {argv[2], (char *)"--help", NULL};
		return run_command(cmd, 2, help_argv);
	}
	if ((cmd = find_command(argv[1])) == NULL)
		return unknown_command(argv[1]);
	return run_command(cmd, argc - 1, argv + 1);
}

int
main(int argc, char **argv)
{
	int code;

	init_i18n();
	g_set_prgname("tkmsctl");

	code = run(argc, argv);
	tkmsctl_agent_stop();
	g_clear_object(&ctl.client);
	g_free(ctl.address);
	g_free(bus_address);
	return code;
}
