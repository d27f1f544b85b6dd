/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include "config.h"

#include "audit-chain.h"
#include "tkmsctl.h"

/* Service state: status (the daemon's properties) and audit verify (offline, no daemon). */

static gchar *opt_state_dir;
static gchar *opt_log;
static gchar *opt_head;

static const gchar *
yes_no(gboolean value)
{
	return value ? "yes" : "no";
}

static int
run_status(Tkmsctl *ctl, gchar **args)
{
	g_autofree gchar *owner = tkms_client_dup_name_owner(ctl->client);
	TkmsClient *client = ctl->client;
	const gchar *version = tkms_client_get_daemon_version(client);
	const gchar *manufacturer = tkms_client_get_tpm_manufacturer(client);
	const gchar *firmware = tkms_client_get_tpm_firmware_version(client);

	/* properties come with the proxy; without an owner they are simply absent */
	if (owner == NULL) {
		g_autoptr(GError) error =
			g_error_new(G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER,
				    _("%s has no owner on the bus (is tkmsd running?)"),
				    TKMS_BUS_NAME);
		return tkmsctl_fail(error);
	}
	if (ctl->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "Version");
		json_builder_add_string_value(b, version);
		json_builder_set_member_name(b, "TpmAvailable");
		json_builder_add_boolean_value(b, tkms_client_get_tpm_available(client));
		json_builder_set_member_name(b, "TpmManufacturer");
		json_builder_add_string_value(b, manufacturer);
		json_builder_set_member_name(b, "TpmFirmwareVersion");
		json_builder_add_string_value(b, firmware);
		json_builder_set_member_name(b, "TpmLockedOut");
		json_builder_add_boolean_value(b, tkms_client_get_tpm_locked_out(client));
		json_builder_set_member_name(b, "TpmLockoutCounter");
		json_builder_add_int_value(b, tkms_client_get_tpm_lockout_counter(client));
		json_builder_end_object(b);
		tkmsctl_print_json(json_builder_get_root(b));
		return TKMSCTL_EXIT_OK;
	}
	g_print("%-19s %s\n", "Version:", version != NULL ? version : "");
	g_print("%-19s %s\n", "TpmAvailable:", yes_no(tkms_client_get_tpm_available(client)));
	g_print("%-19s %s\n", "TpmManufacturer:", manufacturer != NULL ? manufacturer : "");
	g_print("%-19s %s\n", "TpmFirmwareVersion:", firmware != NULL ? firmware : "");
	g_print("%-19s %s\n", "TpmLockedOut:", yes_no(tkms_client_get_tpm_locked_out(client)));
	g_print("%-19s %u\n", "TpmLockoutCounter:", tkms_client_get_tpm_lockout_counter(client));
	return TKMSCTL_EXIT_OK;
}

static int
run_audit(Tkmsctl *ctl, gchar **args)
{
	g_autofree gchar *log = NULL;
	g_autofree gchar *head = NULL;
	g_autoptr(GError) error = NULL;
	guint64 n_records = 0;

	if (!g_str_equal(args[0], "verify"))
		return tkmsctl_usage("audit", _("unknown audit command '%s'"), args[0]);
	if (opt_state_dir != NULL && opt_log != NULL)
		return tkmsctl_usage("audit", _("give --state-dir or --log, not both"));
	if (opt_head != NULL && opt_log == NULL)
		return tkmsctl_usage("audit", _("--head goes with --log"));

	if (opt_log != NULL) {
		log = g_strdup(opt_log);
		head = g_strdup(opt_head);
	} else {
		const gchar *dir = opt_state_dir != NULL ? opt_state_dir : TKMS_STATEDIR;
		log = g_build_filename(dir, "audit.log", NULL);
		head = g_build_filename(dir, "audit.head", NULL);
	}

	if (!tkms_audit_chain_verify_file(log, head, &n_records, &error)) {
		/* a broken chain is a verdict, not a failure to check */
		gboolean tampered = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
		int code = tampered ? TKMSCTL_EXIT_INVALID : tkmsctl_exit_code_for_error(error);

		if (ctl->json && tampered) {
			g_autoptr(JsonBuilder) b = json_builder_new();

			json_builder_begin_object(b);
			json_builder_set_member_name(b, "valid");
			json_builder_add_boolean_value(b, FALSE);
			json_builder_set_member_name(b, "error");
			json_builder_add_string_value(b, error->message);
			json_builder_end_object(b);
			tkmsctl_print_json(json_builder_get_root(b));
		}
		g_printerr(_("tkmsctl: audit log %s: %s\n"), log, error->message);
		return code;
	}
	if (ctl->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "valid");
		json_builder_add_boolean_value(b, TRUE);
		json_builder_set_member_name(b, "records");
		json_builder_add_int_value(b, (gint64)n_records);
		json_builder_end_object(b);
		tkmsctl_print_json(json_builder_get_root(b));
	} else {
		g_autofree gchar *n = g_strdup_printf("%" G_GUINT64_FORMAT, n_records);

		g_print(_("audit log OK: %s records\n"), n);
	}
	return TKMSCTL_EXIT_OK;
}

static const GOptionEntry audit_entries[] = {
	{"state-dir", 's', 0, G_OPTION_ARG_FILENAME, &opt_state_dir,
	 /* not translated: the default path is compiled in */
	 "tkmsd's state directory (default " TKMS_STATEDIR ")", "DIR"},
	{"log", 'l', 0, G_OPTION_ARG_FILENAME, &opt_log, N_("Check this log file instead"), "FILE"},
	{"head", 0, 0, G_OPTION_ARG_FILENAME, &opt_head,
	 N_("With --log: the head file that catches records cut from the end"), "FILE"},
	{NULL},
};

const TkmsctlCommand tkmsctl_status_commands[] = {
	{"status", "", N_("Show the daemon's version and the TPM's state"),
	 N_("With --json: an object with the D-Bus property names as keys."), NULL, 0, 0, TRUE,
	 run_status},
	{"audit", "verify", N_("Check the audit log's hash chain (offline, usually as root)"),
	 N_("Reads DIR/audit.log and DIR/audit.head directly; tkmsd need not run.\n"
	    "Prints \"audit log OK: N records\" (with --json: {\"valid\": true, \"records\": N}).\n"
	    "Exit status 3 if the log was edited, reordered or cut."),
	 audit_entries, 1, 1, FALSE, run_audit},
	{NULL},
};
