/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include <string.h>
#include <unistd.h>

#include "tkmsctl.h"

/* Envelope commands: datakey (GenerateDataKey) and reencrypt (ReEncrypt). */

static gchar *opt_in;
static gchar *opt_out;
static gboolean opt_base64;
static gchar *opt_context;
static gchar *opt_context_file;
static gchar *opt_length;
static gchar *opt_out_plaintext;
static gchar *opt_out_wrapped;

static int
read_context(const gchar *command, gboolean reads_input, GBytes **out_context)
{
	return tkmsctl_read_context(command, opt_context, opt_context_file, FALSE, reads_input,
				    opt_in, out_context);
}

/* Each part goes to its file (raw, or base64 with --base64); what has no file is printed
 * on standard output as base64: "plaintext: ..." and "wrapped: ..." lines, or one JSON
 * object. The plaintext key goes to a terminal only when asked for with --out-plaintext -. */
static int
run_datakey(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(GBytes) context = NULL;
	g_autoptr(GBytes) plaintext = NULL;
	g_autoptr(GBytes) wrapped = NULL;
	g_autoptr(GError) error = NULL;
	gboolean print_plaintext = tkmsctl_is_stdio(opt_out_plaintext);
	gboolean print_wrapped = tkmsctl_is_stdio(opt_out_wrapped);
	guint length = 32;
	int code;

	if (opt_length != NULL && !tkmsctl_parse_length("datakey", opt_length, &length))
		return TKMSCTL_EXIT_USAGE;
	if ((code = read_context("datakey", FALSE, &context)) != TKMSCTL_EXIT_OK)
		return code;
	if (opt_out_plaintext == NULL && isatty(STDOUT_FILENO))
		return tkmsctl_usage_with_hint(
			_("Use --out-plaintext FILE (created mode 0600), or --out-plaintext - to "
			  "print it anyway."),
			_("refusing to print a plaintext data key on a terminal"));
	if (!tkms_client_generate_data_key_sync(ctl->client, args[0], length, context, &plaintext,
						&wrapped, NULL, &error))
		return tkmsctl_fail(error);
	if (!print_plaintext && !tkmsctl_write_data(ctl, opt_out_plaintext, plaintext, opt_base64,
						    &error))
		return tkmsctl_fail(error);
	if (!print_wrapped && !tkmsctl_write_data(ctl, opt_out_wrapped, wrapped, opt_base64, &error))
		return tkmsctl_fail(error);

	if (ctl->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();

		json_builder_begin_object(b);
		if (print_plaintext) {
			g_autofree gchar *text = g_base64_encode(g_bytes_get_data(plaintext, NULL),
							       g_bytes_get_size(plaintext));
			json_builder_set_member_name(b, "plaintext");
			json_builder_add_string_value(b, text);
			explicit_bzero(text, strlen(text));
		}
		if (print_wrapped) {
			g_autofree gchar *text = g_base64_encode(g_bytes_get_data(wrapped, NULL),
							       g_bytes_get_size(wrapped));
			json_builder_set_member_name(b, "wrapped");
			json_builder_add_string_value(b, text);
		}
		json_builder_set_member_name(b, "length");
		json_builder_add_int_value(b, length);
		json_builder_end_object(b);
		tkmsctl_print_json(json_builder_get_root(b));
		return TKMSCTL_EXIT_OK;
	}
	/* labels not translated: scripts read them */
	if (print_plaintext) {
		g_autofree gchar *text = g_base64_encode(g_bytes_get_data(plaintext, NULL),
						       g_bytes_get_size(plaintext));
		g_print("plaintext: %s\n", text);
		explicit_bzero(text, strlen(text));
	}
	if (print_wrapped) {
		g_autofree gchar *text = g_base64_encode(g_bytes_get_data(wrapped, NULL),
						       g_bytes_get_size(wrapped));
		g_print("wrapped: %s\n", text);
	}
	return TKMSCTL_EXIT_OK;
}

static int
run_reencrypt(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(GBytes) context = NULL;
	g_autoptr(GBytes) input = NULL;
	g_autoptr(GBytes) output = NULL;
	g_autoptr(GError) error = NULL;
	int code;

	if ((code = read_context("reencrypt", TRUE, &context)) != TKMSCTL_EXIT_OK)
		return code;
	if (!tkmsctl_check_raw_output(ctl, opt_out, opt_base64))
		return TKMSCTL_EXIT_USAGE;
	input = tkmsctl_read_input(opt_in, opt_base64, &error);
	if (input == NULL)
		return tkmsctl_fail(error);
	/* its header digest is in every chunk: a new wrapped key would break them all */
	if (tkmsctl_stream_has_magic(g_bytes_get_data(input, NULL), g_bytes_get_size(input)))
		return tkmsctl_usage_with_hint(
			_("Decrypt it and encrypt it again: 'tkmsctl decrypt NAME --in F | "
			  "tkmsctl encrypt NAME --out F2'."),
			_("the input is in the stream format, which cannot be rewrapped"));
	output = tkms_client_re_encrypt_sync(ctl->client, args[0], input, context, NULL, &error);
	if (output == NULL && !opt_base64 &&
	    g_error_matches(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT) &&
	    tkmsctl_looks_like_base64(input)) {
		g_autofree gchar *hint = g_strdup_printf(
			_("The input looks like base64: try 'tkmsctl %s --base64'."), "reencrypt");
		return tkmsctl_fail_with_hint(error, hint);
	}
	if (output == NULL)
		return tkmsctl_fail(error);
	if (!tkmsctl_write_data(ctl, opt_out, output, opt_base64, &error))
		return tkmsctl_fail(error);
	return TKMSCTL_EXIT_OK;
}

#define ENTRY_CONTEXT                                                                         \
	{"context", 'c', 0, G_OPTION_ARG_STRING, &opt_context,                                \
	 N_("Associated data (the same for encrypt and decrypt)"), "STR"},                    \
		{"context-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_context_file,              \
		 N_("Read the context from F"), "F"}

static const GOptionEntry datakey_entries[] = {
	{"length", 'l', 0, G_OPTION_ARG_STRING, &opt_length,
	 N_("Length of the data key in bytes, 1 to 64 (default 32)"), "N"},
	ENTRY_CONTEXT,
	{"out-plaintext", 0, 0, G_OPTION_ARG_FILENAME, &opt_out_plaintext,
	 N_("Write the data key to FILE, created mode 0600 ('-': print it, even on a terminal)"),
	 "FILE"},
	{"out-wrapped", 0, 0, G_OPTION_ARG_FILENAME, &opt_out_wrapped,
	 N_("Write the wrapped data key to FILE"), "FILE"},
	{"base64", 'b', 0, G_OPTION_ARG_NONE, &opt_base64,
	 N_("Write the files as base64 instead of raw bytes"), NULL},
	{NULL},
};

static const GOptionEntry reencrypt_entries[] = {
	ENTRY_CONTEXT,
	{"in", 'i', 0, G_OPTION_ARG_FILENAME, &opt_in,
	 N_("Read the data from FILE ('-' or none: standard input)"), "FILE"},
	{"out", 'o', 0, G_OPTION_ARG_FILENAME, &opt_out,
	 N_("Write the result to FILE, created mode 0600 ('-': standard output, even a "
	    "terminal; default: standard output, but not raw bytes to a terminal)"),
	 "FILE"},
	{"base64", 'b', 0, G_OPTION_ARG_NONE, &opt_base64,
	 N_("Read and write the ciphertexts as base64"), NULL},
	{NULL},
};

const TkmsctlCommand tkmsctl_envelope_commands[] = {
	{"datakey", "NAME", N_("Make a data key for envelope encryption"),
	 N_("Prints the data key and the same key wrapped by NAME, both base64 (with --json:\n"
	    "{\"plaintext\": ..., \"wrapped\": ..., \"length\": N}), or writes them to the files\n"
	    "given. 'tkmsctl decrypt NAME' of the wrapped key, with the same context, gives the\n"
	    "data key back. The data key is not printed on a terminal unless asked for with\n"
	    "--out-plaintext -."),
	 datakey_entries, 1, 1, TRUE, run_datakey},
	{"reencrypt", "NAME", N_("Rewrap a ciphertext under the key's primary version"),
	 N_("The plaintext stays inside tkmsd. Takes what encrypt (one call, up to 1 MiB) or\n"
	    "datakey (the wrapped key) wrote, with the same context.\n"
	    "With --json the result is written as {\"base64\": \"...\"}."),
	 reencrypt_entries, 1, 1, TRUE, run_reencrypt},
	{NULL},
};
