/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "config.h"

#include <glib/gi18n.h>
#include <json-glib/json-glib.h>

#include "tkms.h"

G_BEGIN_DECLS

/* Exit codes are a contract with scripts; --help lists them. */
typedef enum {
	TKMSCTL_EXIT_OK = 0,
	TKMSCTL_EXIT_FAILED = 1,
	TKMSCTL_EXIT_USAGE = 2,
	TKMSCTL_EXIT_INVALID = 3,
	TKMSCTL_EXIT_NO_DAEMON = 4,
	TKMSCTL_EXIT_DENIED = 5,
	TKMSCTL_EXIT_NOT_FOUND = 6,
} TkmsctlExit;

typedef struct {
	gchar *address;
	gboolean json;
	/* --interactive 1, --no-ask-password 0, neither -1 (on if stdin is a terminal) */
	gint interactive;
	/* hidden --page-size for list: keys per ListKeysPage call, 0 the daemon's default */
	guint page_size;
	/* set by main before a command that needs the daemon runs */
	TkmsClient *client;
} Tkmsctl;

typedef struct {
	const gchar *name;
	const gchar *params;
	const gchar *summary;
	/* extra --help text, or NULL */
	const gchar *description;
	const GOptionEntry *entries;
	guint min_args;
	guint max_args;
	gboolean needs_daemon;
	/* args are the positional arguments after the command name */
	int (*run)(Tkmsctl *ctl, gchar **args);
} TkmsctlCommand;

/* NULL-name-terminated tables, one per area */
extern const TkmsctlCommand tkmsctl_key_commands[];
extern const TkmsctlCommand tkmsctl_data_commands[];
extern const TkmsctlCommand tkmsctl_status_commands[];

/* Prints "tkmsctl: <message>" (with --json: {"error": ...} on stderr) and returns the exit
 * code for @error. The daemon's hints in D-Bus terms are said in tkmsctl's. */
int tkmsctl_fail(const GError *error);
/* The same with a line of advice after the message (NULL: none). */
int tkmsctl_fail_with_hint(const GError *error, const gchar *hint);
int tkmsctl_exit_code_for_error(const GError *error);
/* Prints "tkmsctl: <message>" and a hint to --help; returns TKMSCTL_EXIT_USAGE. */
int tkmsctl_usage(const gchar *command, const gchar *format, ...) G_GNUC_PRINTF(2, 3);
/* A usage error with its own advice instead of the hint to --help. */
int tkmsctl_usage_with_hint(const gchar *hint, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

/* Input: NULL or "-" is stdin. The buffer is wiped when freed, as it may be plaintext. */
GBytes *tkmsctl_read_input(const gchar *path, gboolean base64, GError **error);
/* Raw bytes are not written to a terminal unless asked for with --out -: TRUE if @path
 * (the --out value, NULL if none) is fine, else prints a usage error. */
gboolean tkmsctl_check_raw_output(Tkmsctl *ctl, const gchar *path, gboolean base64);
/* Whether @data is plausibly base64 text (a ciphertext given without --base64). */
gboolean tkmsctl_looks_like_base64(GBytes *data);
/* Output: NULL or "-" is stdout; a file is created 0600. With ctl->json the data is written
 * as {"base64": ...}, with @base64 as one base64 line, else raw. */
gboolean tkmsctl_write_data(Tkmsctl *ctl, const gchar *path, GBytes *data, gboolean base64,
			    GError **error);
gboolean tkmsctl_write_file(const gchar *path, const void *data, gsize len, GError **error);
/* Writes @node as one line of JSON to stdout, or to @path; both take ownership of @node. */
void tkmsctl_print_json(JsonNode *node);
gboolean tkmsctl_write_json(const gchar *path, JsonNode *node, GError **error);

/* "0,7" -> au; FALSE with a usage message printed on a malformed list. */
gboolean tkmsctl_parse_pcrs(const gchar *command, const gchar *list, GVariant **out_pcrs);
/* A positive decimal that fits in guint32. */
gboolean tkmsctl_parse_length(const gchar *command, const gchar *text, guint *out_length);

/* polkit's text authentication agent for this process (pkttyagent --process PID
 * --fallback, as systemctl runs it), so that an auth_admin action asks for the password on
 * the terminal. @bus_address: the bus whose polkit authority tkmsd asks, or NULL for the
 * system bus. Returns once the agent is registered or has given up; failing to start one
 * is not an error (polkit then refuses instead of asking). */
void tkmsctl_agent_start(const gchar *bus_address);
/* Stops the agent, if one runs; safe to call more than once. */
void tkmsctl_agent_stop(void);

G_END_DECLS
