/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

/* Service passwords: 'secret get' writes a password key's secret, 'secret import' reads an
 * existing one in. A secret is held only in buffers that are wiped when freed, and written
 * with write(2), so that no stdio buffer keeps a copy of it. */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "tkmsctl.h"

/* Far more than any password (tkmsd takes 4096 bytes at most, and says so), little enough
 * that a file given by mistake is refused before it is sent. */
#define SECRET_INPUT_MAX (64 * 1024)

static gchar *opt_stage;

static const gchar *const stages[] = {"current", "pending", "previous", NULL};

typedef struct {
	gsize cap;
	gsize len;
	guint8 data[];
} SecretBuffer;

static SecretBuffer *
secret_buffer_new(gsize cap)
{
	SecretBuffer *buf = g_malloc(sizeof(SecretBuffer) + cap);

	buf->cap = cap;
	buf->len = 0;
	return buf;
}

static void
secret_buffer_free(SecretBuffer *buf)
{
	explicit_bzero(buf->data, buf->cap);
	g_free(buf);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(SecretBuffer, secret_buffer_free)

/* Takes @buf: the bytes are wiped with it when the last reference goes. */
static GBytes *
secret_buffer_to_bytes(SecretBuffer *buf)
{
	return g_bytes_new_with_free_func(buf->data, buf->len,
					  (GDestroyNotify)secret_buffer_free, buf);
}

static gboolean
write_all(const void *data, gsize len, GError **error)
{
	const guint8 *p = data;

	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;

			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
				    _("cannot write to standard output: %s"), g_strerror(saved));
			return FALSE;
		}
		p += n;
		len -= (gsize)n;
	}
	return TRUE;
}

/* ---- secret get ---- */

/* A JSON string of @len bytes of UTF-8 appended to @buf, which has room for 6 bytes per
 * input byte and the quotes. */
static void
append_json_string(SecretBuffer *buf, const guint8 *s, gsize len)
{
	static const gchar hex[] = "0123456789abcdef";

	buf->data[buf->len++] = '"';
	for (gsize i = 0; i < len; i++) {
		guint8 c = s[i];

		if (c == '"' || c == '\\') {
			buf->data[buf->len++] = '\\';
			buf->data[buf->len++] = c;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(buf->data + buf->len, "\\u00", 4);
			buf->data[buf->len + 4] = hex[c >> 4];
			buf->data[buf->len + 5] = hex[c & 0xf];
			buf->len += 6;
		} else {
			buf->data[buf->len++] = c;
		}
	}
	buf->data[buf->len++] = '"';
}

static void
append_literal(SecretBuffer *buf, const gchar *text)
{
	gsize n = strlen(text);

	memcpy(buf->data + buf->len, text, n);
	buf->len += n;
}

/* {"name": NAME, "stage": STAGE, "secret": SECRET} and a newline, built by hand in a buffer
 * of our own: a JSON library's copies of the secret would not be wiped. */
static SecretBuffer *
secret_json(const gchar *name, const gchar *stage, GBytes *secret, GError **error)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(secret, &len);
	SecretBuffer *buf;

	/* tkmsd's secrets are UTF-8 (ImportSecret refuses others; generated ones are ASCII) */
	if (!g_utf8_validate_len((const gchar *)data, len, NULL)) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    _("the secret is not UTF-8 text, which JSON cannot hold: "
				      "read it without --json"));
		return NULL;
	}
	buf = secret_buffer_new(6 * (len + strlen(name) + strlen(stage)) + 64);
	append_literal(buf, "{\"name\":");
	append_json_string(buf, (const guint8 *)name, strlen(name));
	append_literal(buf, ",\"stage\":");
	append_json_string(buf, (const guint8 *)stage, strlen(stage));
	append_literal(buf, ",\"secret\":");
	append_json_string(buf, data, len);
	append_literal(buf, "}\n");
	return buf;
}

static int
secret_get(Tkmsctl *ctl, const gchar *name)
{
	const gchar *stage = opt_stage != NULL ? opt_stage : "current";
	g_autoptr(GBytes) secret = NULL;
	g_autoptr(GError) error = NULL;

	if (!g_strv_contains(stages, stage)) {
		g_autofree gchar *all = g_strjoinv(", ", (gchar **)stages);
		g_autofree gchar *hint = g_strdup_printf(_("STAGE is one of %s."), all);

		return tkmsctl_usage_with_hint(hint, _("unknown stage '%s'"), stage);
	}
	secret = tkms_client_get_secret_sync(ctl->client, name, stage, NULL, &error);
	if (secret == NULL)
		return tkmsctl_fail(error);
	fflush(stdout);
	if (ctl->json) {
		g_autoptr(SecretBuffer) json = secret_json(name, stage, secret, &error);

		if (json == NULL || !write_all(json->data, json->len, &error))
			return tkmsctl_fail(error);
		return TKMSCTL_EXIT_OK;
	}
	/* exactly the secret into a pipe or file; a person's terminal gets a line of it */
	if (!write_all(g_bytes_get_data(secret, NULL), g_bytes_get_size(secret), &error) ||
	    (isatty(STDOUT_FILENO) && !write_all("\n", 1, &error)))
		return tkmsctl_fail(error);
	return TKMSCTL_EXIT_OK;
}

/* ---- secret import ---- */

/* The terminal's settings while echo is off, to put back even when a signal ends tkmsctl. */
static struct termios saved_termios;
static volatile sig_atomic_t echo_is_off;

static void
restore_echo_and_reraise(int sig)
{
	if (echo_is_off)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
	signal(sig, SIG_DFL);
	raise(sig);
}

static const int terminating_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

/* One line typed on the terminal of standard input with echo off, its newline dropped. */
static SecretBuffer *
read_line_without_echo(const gchar *prompt, GError **error)
{
	g_autoptr(SecretBuffer) buf = secret_buffer_new(SECRET_INPUT_MAX);
	struct sigaction sa, old[G_N_ELEMENTS(terminating_signals)];
	struct termios quiet;
	gboolean too_long = FALSE, got_newline = FALSE;
	int saved_errno = 0;
	guint8 c = 0;

	if (tcgetattr(STDIN_FILENO, &saved_termios) != 0) {
		int saved = errno;

		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
			    _("cannot read the terminal's settings: %s"), g_strerror(saved));
		return NULL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = restore_echo_and_reraise;
	sigemptyset(&sa.sa_mask);
	for (guint i = 0; i < G_N_ELEMENTS(terminating_signals); i++)
		sigaction(terminating_signals[i], &sa, &old[i]);
	quiet = saved_termios;
	/* the Enter key still moves to the next line */
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	/* echo goes off before the prompt shows: nothing typed after it is ever echoed.
	 * TCSANOW, not TCSAFLUSH: what was typed ahead is the answer, not noise. */
	echo_is_off = tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
	if (!echo_is_off) {
		/* a secret is never typed where it shows */
		saved_errno = errno;
		for (guint i = 0; i < G_N_ELEMENTS(terminating_signals); i++)
			sigaction(terminating_signals[i], &old[i], NULL);
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved_errno),
			    _("cannot turn off the terminal's echo: %s"), g_strerror(saved_errno));
		return NULL;
	}
	g_printerr("%s", prompt);

	for (;;) {
		ssize_t n = read(STDIN_FILENO, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			saved_errno = errno;
		if (n <= 0)
			break;
		if (c == '\n') {
			got_newline = TRUE;
			break;
		}
		if (buf->len < buf->cap)
			buf->data[buf->len++] = c;
		else
			too_long = TRUE;
	}

	explicit_bzero(&c, sizeof(c));
	tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
	echo_is_off = FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(terminating_signals); i++)
		sigaction(terminating_signals[i], &old[i], NULL);
	if (!got_newline)
		g_printerr("\n");

	if (saved_errno != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved_errno),
			    _("cannot read the terminal: %s"), g_strerror(saved_errno));
		return NULL;
	}
	if (!got_newline && buf->len == 0) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
				    _("no secret entered: nothing was imported"));
		return NULL;
	}
	if (too_long) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
			    _("the secret is longer than %d KiB: that is no password"),
			    SECRET_INPUT_MAX / 1024);
		return NULL;
	}
	return g_steal_pointer(&buf);
}

/* A person types the secret twice, unseen; both must match. */
static GBytes *
read_from_terminal(const gchar *name, GError **error)
{
	g_autofree gchar *prompt = g_strdup_printf(_("Secret for key '%s': "), name);
	g_autoptr(SecretBuffer) first = NULL;
	g_autoptr(SecretBuffer) again = NULL;

	if ((first = read_line_without_echo(prompt, error)) == NULL ||
	    (again = read_line_without_echo(_("The same again: "), error)) == NULL)
		return NULL;
	if (first->len != again->len || memcmp(first->data, again->data, first->len) != 0) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    _("the two entries differ: nothing was imported"));
		return NULL;
	}
	return secret_buffer_to_bytes(g_steal_pointer(&first));
}

/* All of standard input, one trailing newline dropped (echo and here-strings add one). */
static GBytes *
read_from_pipe(GError **error)
{
	g_autoptr(TkmsctlInput) in = tkmsctl_input_open(NULL, FALSE, error);
	g_autoptr(GBytes) raw = NULL;
	const guint8 *data;
	gsize len = 0;

	if (in == NULL)
		return NULL;
	raw = tkmsctl_input_read_head(in, SECRET_INPUT_MAX + 1, error);
	if (raw == NULL)
		return NULL;
	data = g_bytes_get_data(raw, &len);
	if (len > SECRET_INPUT_MAX) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
			    _("standard input holds more than %d KiB: that is no password"),
			    SECRET_INPUT_MAX / 1024);
		return NULL;
	}
	if (len > 0 && data[len - 1] == '\n')
		len--;
	if (len == 0) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    _("no secret on standard input: it is empty"));
		return NULL;
	}
	/* a slice of the wiped buffer, which it keeps alive */
	return g_bytes_new_from_bytes(raw, 0, len);
}

static int
secret_import(Tkmsctl *ctl, const gchar *name)
{
	g_autoptr(GBytes) secret = NULL;
	g_autoptr(GError) error = NULL;
	guint version;

	secret = isatty(STDIN_FILENO) ? read_from_terminal(name, &error) : read_from_pipe(&error);
	if (secret == NULL)
		return tkmsctl_fail(error);
	version = tkms_client_import_secret_sync(ctl->client, name, secret, NULL, &error);
	if (version == 0)
		return tkmsctl_fail(error);
	if (ctl->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "name");
		json_builder_add_string_value(b, name);
		json_builder_set_member_name(b, "version");
		json_builder_add_int_value(b, version);
		json_builder_end_object(b);
		tkmsctl_print_json(json_builder_get_root(b));
	} else {
		/* the number alone, so that v=$(tkmsctl secret import NAME <file) works */
		g_print("%u\n", version);
	}
	return TKMSCTL_EXIT_OK;
}

static int
run_secret(Tkmsctl *ctl, gchar **args)
{
	const gchar *action = args[0], *name = args[1];

	ctl->key_name = name;
	if (g_str_equal(action, "get"))
		return secret_get(ctl, name);
	if (!g_str_equal(action, "import"))
		return tkmsctl_usage("secret", _("unknown secret action '%s': get or import"),
				     action);
	if (opt_stage != NULL)
		return tkmsctl_usage("secret", _("--stage is for 'secret get'"));
	return secret_import(ctl, name);
}

static const GOptionEntry secret_entries[] = {
	{"stage", 0, 0, G_OPTION_ARG_STRING, &opt_stage,
	 N_("get: current (default), pending (while a rotation runs) or previous"),
	 N_("STAGE")},
	{NULL},
};

const TkmsctlCommand tkmsctl_secret_commands[] = {
	{"secret", "get|import NAME", N_("Read or import the password of a password key"),
	 N_("'secret get' writes the password to standard output: exactly its bytes into a\n"
	    "pipe or file, with a newline only on a terminal. --stage pending gives the one a\n"
	    "running rotation is applying, --stage previous the one before the current.\n"
	    "With --json: {\"name\", \"stage\", \"secret\"} (the password as a JSON string).\n"
	    "This needs the polkit action org.tkms.KeyManager.read-secret.\n\n"
	    "'secret import' brings a password a service already uses: it becomes the key's\n"
	    "current version (the old current one becomes previous). It is read from standard\n"
	    "input: all of it, one trailing newline dropped; on a terminal it is asked for\n"
	    "twice, unseen. Prints the new version (with --json: {\"name\", \"version\"}).\n\n"
	    "tkmsctl keeps the password only in memory it wipes. Mind where else it goes: a\n"
	    "shell's history, a file's copies.\n\n"
	    "NAME may be OWNER:NAME (needs the polkit action org.tkms.KeyManager.admin)."),
	 secret_entries, 2, 2, TRUE, run_secret},
	{NULL},
};
