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

static void
print_verdict_json(gboolean valid, const gchar *error, const TkmsAuditChainReport *report)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "valid");
	json_builder_add_boolean_value(b, valid);
	if (error != NULL) {
		json_builder_set_member_name(b, "error");
		json_builder_add_string_value(b, error);
	}
	if (report != NULL) {
		json_builder_set_member_name(b, "records");
		json_builder_add_int_value(b, (gint64)report->n_records);
		json_builder_set_member_name(b, "segments");
		json_builder_add_int_value(b, report->n_segments);
		json_builder_set_member_name(b, "first-record");
		json_builder_add_int_value(b, (gint64)report->first_seq);
		json_builder_set_member_name(b, "anchored");
		json_builder_add_boolean_value(b, report->anchored);
	}
	json_builder_end_object(b);
	tkmsctl_print_json(json_builder_get_root(b));
}

static int
run_audit(Tkmsctl *ctl, gchar **args)
{
	g_autofree gchar *what = NULL;
	g_autoptr(GError) error = NULL;
	TkmsAuditChainReport report = {0};
	gboolean ok;

	if (!g_str_equal(args[0], "verify"))
		return tkmsctl_usage("audit", _("unknown audit command '%s'"), args[0]);
	if (opt_state_dir != NULL && opt_log != NULL)
		return tkmsctl_usage("audit", _("give --state-dir or --log, not both"));
	if (opt_head != NULL && opt_log == NULL)
		return tkmsctl_usage("audit", _("--head goes with --log"));

	if (opt_log != NULL) {
		what = g_strdup(opt_log);
		ok = tkms_audit_chain_verify_log(opt_log, opt_head, &report, &error);
	} else {
		const gchar *dir = opt_state_dir != NULL ? opt_state_dir : TKMS_STATEDIR;

		what = g_build_filename(dir, TKMS_AUDIT_LOG_NAME, NULL);
		/* every kept segment in order, streamed: any size, little memory */
		ok = tkms_audit_chain_verify_dir(dir, &report, &error);
	}
	if (!ok) {
		/* a broken chain is a verdict, not a failure to check */
		gboolean tampered = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
		int code = tampered ? TKMSCTL_EXIT_INVALID : tkmsctl_exit_code_for_error(error);

		if (ctl->json && tampered)
			print_verdict_json(FALSE, error->message, NULL);
		g_printerr(_("tkmsctl: audit log %s: %s\n"), what, error->message);
		return code;
	}
	if (ctl->json) {
		print_verdict_json(TRUE, NULL, &report);
	} else {
		g_autofree gchar *n = g_strdup_printf("%" G_GUINT64_FORMAT, report.n_records);
		g_autofree gchar *first = g_strdup_printf("%" G_GUINT64_FORMAT, report.first_seq);

		if (report.n_segments <= 1)
			g_print(_("audit log OK: %s records\n"), n);
		else
			g_print(_("audit log OK: %s records in %u segments\n"), n,
				report.n_segments);
		if (report.anchored)
			g_print(_("The chain starts at record %s (%s): the records before it were "
				  "in segments deleted past [audit] KeepSegments.\n"),
				first, report.first_file);
	}
	tkms_audit_chain_report_clear(&report);
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
	 N_("Reads DIR/audit.log, its kept segments DIR/audit.log.NNNNNNNN and DIR/audit.head\n"
	    "directly, streaming; tkmsd need not run. Prints \"audit log OK: N records\" (with\n"
	    "--json: {\"valid\": true, \"records\": N, \"segments\": M, ...}), and says when the\n"
	    "chain starts at a deleted segment. Exit status 3 if the log was edited, reordered or\n"
	    "cut; the message names the file and line of the first bad record."),
	 audit_entries, 1, 1, FALSE, run_audit},
	{NULL},
};
