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
	/* the key the command is about, for advice in error messages; NULL if none */
	const gchar *key_name;
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
extern const TkmsctlCommand tkmsctl_envelope_commands[];
extern const TkmsctlCommand tkmsctl_status_commands[];
extern const TkmsctlCommand tkmsctl_lifecycle_commands[];
extern const TkmsctlCommand tkmsctl_secret_commands[];

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

/* What a command reads whole: far above the daemon's default payload limit (1 MiB), low
 * enough to fail before OOM. */
#define TKMSCTL_MAX_INPUT (64 * 1024 * 1024)

/* NULL or "-": standard input or output. */
gboolean tkmsctl_is_stdio(const gchar *path);
/* Input: NULL or "-" is stdin. The buffer is wiped when freed, as it may be plaintext. */
GBytes *tkmsctl_read_input(const gchar *path, gboolean base64, GError **error);
/* --context STR (@context) or --context-file F (@context_file) into *@out_context; neither is
 * NULL, the empty context, or a usage error if @required. @reads_input: the command reads
 * its data from --in (@in_path), standard input without it, so F cannot be standard input
 * too. Returns an exit code, TKMSCTL_EXIT_OK or the one of the message printed. */
int tkmsctl_read_context(const gchar *command, const gchar *context, const gchar *context_file,
			 gboolean required, gboolean reads_input, const gchar *in_path,
			 GBytes **out_context);
/* Raw bytes are not written to a terminal unless asked for with --out -: TRUE if @path
 * (the --out value, NULL if none) is fine, else prints a usage error. */
gboolean tkmsctl_check_raw_output(Tkmsctl *ctl, const gchar *path, gboolean base64);
/* Whether @data is plausibly base64 text (a ciphertext given without --base64). */
gboolean tkmsctl_looks_like_base64(GBytes *data);
/* Output: NULL or "-" is stdout; a regular file is written as tkmsctl_output_open() writes
 * it: under a temporary name (mode 0600), renamed into place once complete, so that an
 * existing file never holds a secret with its old mode, nor half of one. With ctl->json the
 * data is written as {"base64": ...}, with @base64 as one base64 line, else raw. */
gboolean tkmsctl_write_data(Tkmsctl *ctl, const gchar *path, GBytes *data, gboolean base64,
			    GError **error);
gboolean tkmsctl_write_file(const gchar *path, const void *data, gsize len, GError **error);
/* Writes @node as one line of JSON to stdout, or to @path; both take ownership of @node. */
void tkmsctl_print_json(JsonNode *node);
gboolean tkmsctl_write_json(const gchar *path, JsonNode *node, GError **error);

/* Key info for people and scripts (tkmsctl-keys.c). Times are ISO 8601 UTC. */
gchar *tkmsctl_format_time(guint64 unix_time);
/* The key info as JSON, with every time in ISO 8601 (null for 0). */
JsonNode *tkmsctl_key_info_to_json(GVariant *info);
/* The state of the key's primary, or "destroy-scheduled (TIME)". */
gchar *tkmsctl_key_state(GVariant *info);
/* Text from others (a description, a hook's message) with control characters as \xHH. */
gchar *tkmsctl_for_terminal(const gchar *text);
/* ... keeping the newlines, each line after the first indented by @indent. */
gchar *tkmsctl_for_terminal_lines(const gchar *text, const gchar *indent);
/* "rotation policy:" and its lines, as info and policy show print them. */
void tkmsctl_print_policy(GVariant *info);

/* Follows the rotation of password key @name to @version that RotateKey started, printing
 * each step, until it ended (tkmsctl-rotation.c); returns the exit code. */
int tkmsctl_follow_rotation(Tkmsctl *ctl, const gchar *name, guint version);

/* Durations (tkmsctl-lifecycle.c): "90d", "12h", "30m", "45s" or plain seconds, and back
 * ("7d", "1d 12h"); FALSE with a usage message printed on a malformed one. */
gboolean tkmsctl_parse_duration(const gchar *command, const gchar *option, const gchar *text,
				guint64 *out_seconds);
gchar *tkmsctl_format_duration(guint64 seconds);

/* "0,7" -> au; FALSE with a usage message printed on a malformed list. */
gboolean tkmsctl_parse_pcrs(const gchar *command, const gchar *list, GVariant **out_pcrs);
/* A positive decimal that fits in guint32. */
gboolean tkmsctl_parse_length(const gchar *command, const gchar *text, guint *out_length);

/* Inputs and outputs of any size, a block at a time (tkmsctl-input.c, tkmsctl-output.c). */
#define TKMSCTL_BLOCK_SIZE (64 * 1024)
typedef struct _TkmsctlInput TkmsctlInput;
typedef struct _TkmsctlOutput TkmsctlOutput;

/* NULL or "-" is stdin; with @base64 the text is decoded (strictly) as it is read. */
TkmsctlInput *tkmsctl_input_open(const gchar *path, gboolean base64, GError **error);
void tkmsctl_input_free(TkmsctlInput *in);
const gchar *tkmsctl_input_get_name(TkmsctlInput *in);
/* The size of a regular file read raw, else -1. */
goffset tkmsctl_input_get_size(TkmsctlInput *in);
/* Up to @len bytes, fewer only at the end of the input; -1 with @error set. */
gssize tkmsctl_input_read(TkmsctlInput *in, void *buf, gsize len, GError **error);
/* Hands @data out again before anything not read yet. */
void tkmsctl_input_unread(TkmsctlInput *in, const void *data, gsize len);
/* Up to @max bytes of the input (fewer only at its end), in a buffer wiped when freed. */
GBytes *tkmsctl_input_read_head(TkmsctlInput *in, gsize max, GError **error);
/* The rest of the input, at most @max bytes, in a buffer wiped when freed. */
GBytes *tkmsctl_input_read_all(TkmsctlInput *in, gsize max, GError **error);
/* SHA-256 of the rest of the input, read a block at a time. */
GBytes *tkmsctl_input_sha256(TkmsctlInput *in, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsctlInput, tkmsctl_input_free)

/* NULL or "-" is stdout; a regular file is written under a temporary name (mode 0600) and
 * takes its name at commit; freeing an output not committed removes what it wrote. With
 * ctl->json the data becomes {"base64": ...}, with @base64 one base64 line. */
TkmsctlOutput *tkmsctl_output_open(Tkmsctl *ctl, const gchar *path, gboolean base64,
				   GError **error);
/* The same for bytes written as they are, whatever the options. */
TkmsctlOutput *tkmsctl_output_open_raw(const gchar *path, GError **error);
gboolean tkmsctl_output_write(TkmsctlOutput *out, const void *data, gsize len, GError **error);
gboolean tkmsctl_output_commit(TkmsctlOutput *out, GError **error);
void tkmsctl_output_free(TkmsctlOutput *out);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsctlOutput, tkmsctl_output_free)

/* The stream format (docs/stream-format.md, tkmsctl-stream.c). */
#define TKMSCTL_STREAM_MAGIC "TKST"
/* plaintext bytes per chunk that encrypt writes */
#define TKMSCTL_STREAM_CHUNK (64 * 1024)
/* encrypt uses one Encrypt call up to this many bytes (the daemon's default MaxPayload),
 * the stream format above it */
#define TKMSCTL_SINGLE_MAX (1024 * 1024)
gboolean tkmsctl_stream_has_magic(const void *data, gsize len);
/* One GenerateDataKey with @context, then the whole of @in to @out. */
gboolean tkmsctl_stream_encrypt(Tkmsctl *ctl, const gchar *name, GBytes *context,
				TkmsctlInput *in, TkmsctlOutput *out, GError **error);
/* One Decrypt of the header's wrapped key, then chunk by chunk, each written to @out only
 * once it authenticates; FALSE (TKMS_ERROR_INTEGRITY_FAILURE) at the first that does not. */
gboolean tkmsctl_stream_decrypt(Tkmsctl *ctl, const gchar *name, GBytes *context,
				TkmsctlInput *in, TkmsctlOutput *out, GError **error);

/* --batch of encrypt, decrypt, sign and hmac (tkmsctl-batch.c): one base64 item per line of
 * @in, one base64 result per line to @out (with ctl->json {"base64": ...} lines), sent to
 * tkmsd in batches. An item's error names its input line. */
typedef enum {
	TKMSCTL_BATCH_ENCRYPT,
	TKMSCTL_BATCH_DECRYPT,
	TKMSCTL_BATCH_SIGN,
	TKMSCTL_BATCH_HMAC,
} TkmsctlBatchOp;

gboolean tkmsctl_batch_run(Tkmsctl *ctl, TkmsctlBatchOp op, const gchar *name, GBytes *context,
			   TkmsctlInput *in, TkmsctlOutput *out, GError **error);

/* polkit's text authentication agent for this process (pkttyagent --process PID
 * --fallback, as systemctl runs it), so that an auth_admin action asks for the password on
 * the terminal. @bus_address: the bus whose polkit authority tkmsd asks, or NULL for the
 * system bus. Returns once the agent is registered or has given up; failing to start one
 * is not an error (polkit then refuses instead of asking). */
void tkmsctl_agent_start(const gchar *bus_address);
/* Stops the agent, if one runs; safe to call more than once. */
void tkmsctl_agent_stop(void);

G_END_DECLS
