/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include <string.h>

#include "tkmsctl.h"

/* Data commands: bytes in, bytes (or a verdict) out. encrypt, decrypt, sign, verify, hmac,
 * verify-hmac, derive, seal, unseal, random. */

static gchar *opt_in;
static gchar *opt_out;
static gboolean opt_base64;
static gchar *opt_context;
static gchar *opt_context_file;
static gchar *opt_signature;
static gchar *opt_mac;
static gchar *opt_length;
static gchar *opt_pcrs;
static gboolean opt_stream;
static gboolean opt_batch;

static int
read_context(const gchar *command, gboolean required, gboolean reads_input,
	     GBytes **out_context)
{
	return tkmsctl_read_context(command, opt_context, opt_context_file, required, reads_input,
				    opt_in, out_context);
}

static int
finish_stream(TkmsctlOutput *out, gboolean ok, GError *error)
{
	g_autoptr(GError) local = NULL;

	if (ok && !tkmsctl_output_commit(out, &local))
		return tkmsctl_fail(local);
	if (!ok)
		return tkmsctl_fail(error);
	return TKMSCTL_EXIT_OK;
}

/* --batch: base64 lines in, base64 lines out (tkmsctl-batch.c). */
static int
run_batch(Tkmsctl *ctl, const gchar *command, TkmsctlBatchOp op, const gchar *name)
{
	gboolean has_context = op == TKMSCTL_BATCH_ENCRYPT || op == TKMSCTL_BATCH_DECRYPT;
	g_autoptr(GBytes) context = NULL;
	g_autoptr(TkmsctlInput) in = NULL;
	g_autoptr(TkmsctlOutput) out = NULL;
	g_autoptr(GError) error = NULL;
	gboolean ok;
	int code;

	if (opt_stream)
		return tkmsctl_usage(command, _("--batch and --stream cannot be combined"));
	if (has_context &&
	    (code = read_context(command, FALSE, TRUE, &context)) != TKMSCTL_EXIT_OK)
		return code;
	in = tkmsctl_input_open(opt_in, FALSE, &error);
	if (in == NULL)
		return tkmsctl_fail(error);
	out = tkmsctl_output_open_raw(opt_out, &error);
	if (out == NULL)
		return tkmsctl_fail(error);
	ok = tkmsctl_batch_run(ctl, op, name, context, in, out, &error);
	return finish_stream(out, ok, error);
}

/* One Encrypt call up to TKMSCTL_SINGLE_MAX bytes (the format every tkms release reads);
 * above it, or with --stream, or when tkmsd's MaxPayload is lower, the stream format. */
static int
run_encrypt(Tkmsctl *ctl, gchar **args)
{
	const gchar *name = args[0];
	g_autoptr(GBytes) context = NULL;
	g_autoptr(TkmsctlInput) in = NULL;
	g_autoptr(TkmsctlOutput) out = NULL;
	g_autoptr(GBytes) head = NULL;
	g_autoptr(GBytes) output = NULL;
	g_autoptr(GError) error = NULL;
	gboolean ok;
	int code;

	if (opt_batch)
		return run_batch(ctl, "encrypt", TKMSCTL_BATCH_ENCRYPT, name);
	if ((code = read_context("encrypt", FALSE, TRUE, &context)) != TKMSCTL_EXIT_OK)
		return code;
	if (!tkmsctl_check_raw_output(ctl, opt_out, opt_base64))
		return TKMSCTL_EXIT_USAGE;
	in = tkmsctl_input_open(opt_in, FALSE, &error);
	if (in == NULL)
		return tkmsctl_fail(error);
	if (!opt_stream) {
		head = tkmsctl_input_read_head(in, TKMSCTL_SINGLE_MAX + 1, &error);
		if (head == NULL)
			return tkmsctl_fail(error);
	}
	if (head != NULL && g_bytes_get_size(head) <= TKMSCTL_SINGLE_MAX) {
		output = tkms_client_encrypt_sync(ctl->client, name, head, context, NULL, &error);
		if (output != NULL) {
			if (!tkmsctl_write_data(ctl, opt_out, output, opt_base64, &error))
				return tkmsctl_fail(error);
			return TKMSCTL_EXIT_OK;
		}
		if (!g_error_matches(error, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED))
			return tkmsctl_fail(error);
		g_clear_error(&error);
	}
	if (head != NULL)
		tkmsctl_input_unread(in, g_bytes_get_data(head, NULL), g_bytes_get_size(head));
	g_clear_pointer(&head, g_bytes_unref);
	out = tkmsctl_output_open(ctl, opt_out, opt_base64, &error);
	if (out == NULL)
		return tkmsctl_fail(error);
	ok = tkmsctl_stream_encrypt(ctl, name, context, in, out, &error);
	return finish_stream(out, ok, error);
}

static int
run_decrypt(Tkmsctl *ctl, gchar **args)
{
	const gchar *name = args[0];
	g_autoptr(GBytes) context = NULL;
	g_autoptr(TkmsctlInput) in = NULL;
	g_autoptr(TkmsctlOutput) out = NULL;
	g_autoptr(GBytes) input = NULL;
	g_autoptr(GBytes) output = NULL;
	g_autoptr(GError) error = NULL;
	guint8 magic[4];
	gssize n;
	gboolean ok;
	int code;

	if (opt_batch)
		return run_batch(ctl, "decrypt", TKMSCTL_BATCH_DECRYPT, name);
	if ((code = read_context("decrypt", FALSE, TRUE, &context)) != TKMSCTL_EXIT_OK)
		return code;
	if (!tkmsctl_check_raw_output(ctl, opt_out, FALSE))
		return TKMSCTL_EXIT_USAGE;
	in = tkmsctl_input_open(opt_in, opt_base64, &error);
	if (in == NULL)
		return tkmsctl_fail(error);
	/* the two formats differ in their first four bytes */
	n = tkmsctl_input_read(in, magic, sizeof(magic), &error);
	if (n < 0)
		return tkmsctl_fail(error);
	tkmsctl_input_unread(in, magic, (gsize)n);
	if (tkmsctl_stream_has_magic(magic, (gsize)n)) {
		out = tkmsctl_output_open(ctl, opt_out, FALSE, &error);
		if (out == NULL)
			return tkmsctl_fail(error);
		ok = tkmsctl_stream_decrypt(ctl, name, context, in, out, &error);
		return finish_stream(out, ok, error);
	}

	input = tkmsctl_input_read_all(in, TKMSCTL_MAX_INPUT, &error);
	if (input == NULL)
		return tkmsctl_fail(error);
	output = tkms_client_decrypt_sync(ctl->client, name, input, context, NULL, &error);
	/* what encrypt --base64 wrote, given back without --base64 */
	if (output == NULL && !opt_base64 &&
	    g_error_matches(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT) &&
	    tkmsctl_looks_like_base64(input)) {
		g_autofree gchar *hint = g_strdup_printf(
			_("The input looks like base64: try 'tkmsctl %s --base64'."), "decrypt");
		return tkmsctl_fail_with_hint(error, hint);
	}
	if (output == NULL)
		return tkmsctl_fail(error);
	if (!tkmsctl_write_data(ctl, opt_out, output, FALSE, &error))
		return tkmsctl_fail(error);
	return TKMSCTL_EXIT_OK;
}

/* The message is hashed here as it is read, and tkmsd signs the digest: any size. */
static int
run_sign(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(TkmsctlInput) in = NULL;
	g_autoptr(GBytes) digest = NULL;
	g_autoptr(GBytes) sig = NULL;
	g_autoptr(GError) error = NULL;

	if (opt_batch)
		return run_batch(ctl, "sign", TKMSCTL_BATCH_SIGN, args[0]);
	if (!tkmsctl_check_raw_output(ctl, opt_out, opt_base64))
		return TKMSCTL_EXIT_USAGE;
	in = tkmsctl_input_open(opt_in, FALSE, &error);
	if (in == NULL)
		return tkmsctl_fail(error);
	digest = tkmsctl_input_sha256(in, &error);
	if (digest == NULL)
		return tkmsctl_fail(error);
	sig = tkms_client_sign_digest_sync(ctl->client, args[0], digest, NULL, &error);
	if (sig == NULL)
		return tkmsctl_fail(error);
	if (!tkmsctl_write_data(ctl, opt_out, sig, opt_base64, &error))
		return tkmsctl_fail(error);
	return TKMSCTL_EXIT_OK;
}

typedef enum {
	OP_HMAC,
	OP_SEAL,
	OP_UNSEAL,
} Operation;

static GBytes *
call_operation(Tkmsctl *ctl, Operation op, const gchar *name, GBytes *input, GVariant *options,
	       GError **error)
{
	switch (op) {
	case OP_HMAC:
		return tkms_client_hmac_sync(ctl->client, name, input, NULL, error);
	case OP_SEAL:
		return tkms_client_seal_sync(ctl->client, input, options, NULL, error);
	case OP_UNSEAL:
		return tkms_client_unseal_sync(ctl->client, input, NULL, error);
	}
	g_assert_not_reached();
}

/* hmac, seal and unseal. unseal takes what seal wrote, so --base64 applies to its input;
 * the others write base64. */
static int
transform(Tkmsctl *ctl, const gchar *command, Operation op, const gchar *name)
{
	gboolean decodes = op == OP_UNSEAL;
	g_autoptr(GBytes) input = NULL;
	g_autoptr(GBytes) output = NULL;
	g_autoptr(GVariant) options = NULL;
	g_autoptr(GError) error = NULL;

	if (op == OP_SEAL && opt_pcrs != NULL) {
		GVariantBuilder builder;
		g_autoptr(GVariant) pcrs = NULL;

		if (!tkmsctl_parse_pcrs(command, opt_pcrs, &pcrs))
			return TKMSCTL_EXIT_USAGE;
		g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&builder, "{sv}", "pcrs", pcrs);
		options = g_variant_ref_sink(g_variant_builder_end(&builder));
	}

	if (!tkmsctl_check_raw_output(ctl, opt_out, opt_base64 && !decodes))
		return TKMSCTL_EXIT_USAGE;
	input = tkmsctl_read_input(opt_in, opt_base64 && decodes, &error);
	if (input == NULL)
		return tkmsctl_fail(error);
	output = call_operation(ctl, op, name, input, options, &error);
	/* what seal --base64 wrote, given back without --base64 */
	if (output == NULL && decodes && !opt_base64 &&
	    g_error_matches(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT) &&
	    tkmsctl_looks_like_base64(input)) {
		g_autofree gchar *hint = g_strdup_printf(
			_("The input looks like base64: try 'tkmsctl %s --base64'."), command);
		return tkmsctl_fail_with_hint(error, hint);
	}
	if (output == NULL)
		return tkmsctl_fail(error);
	if (!tkmsctl_write_data(ctl, opt_out, output, opt_base64 && !decodes, &error))
		return tkmsctl_fail(error);
	return TKMSCTL_EXIT_OK;
}

static int
run_hmac(Tkmsctl *ctl, gchar **args)
{
	if (opt_batch)
		return run_batch(ctl, "hmac", TKMSCTL_BATCH_HMAC, args[0]);
	return transform(ctl, "hmac", OP_HMAC, args[0]);
}

static int
run_seal(Tkmsctl *ctl, gchar **args)
{
	return transform(ctl, "seal", OP_SEAL, NULL);
}

static int
run_unseal(Tkmsctl *ctl, gchar **args)
{
	return transform(ctl, "unseal", OP_UNSEAL, NULL);
}

/* verify and verify-hmac: the signature or MAC from a file, the message from --in. */
static int
check(Tkmsctl *ctl, const gchar *command, const gchar *option, const gchar *tag_path,
      const gchar *name)
{
	g_autoptr(GBytes) tag = NULL;
	g_autoptr(GBytes) data = NULL;
	g_autoptr(GError) error = NULL;
	gboolean valid = FALSE;
	gboolean ok;

	if (tag_path == NULL)
		return tkmsctl_usage(command, _("%s FILE is required"), option);
	if (tkmsctl_is_stdio(tag_path) && tkmsctl_is_stdio(opt_in))
		return tkmsctl_usage(command, _("%s - needs the data from --in FILE"), option);

	tag = tkmsctl_read_input(tag_path, opt_base64, &error);
	if (tag == NULL)
		return tkmsctl_fail(error);
	if (g_str_equal(command, "verify")) {
		/* hashed as it is read, as sign does: messages of any size */
		g_autoptr(TkmsctlInput) in = tkmsctl_input_open(opt_in, FALSE, &error);

		if (in == NULL || (data = tkmsctl_input_sha256(in, &error)) == NULL)
			return tkmsctl_fail(error);
		ok = tkms_client_verify_digest_sync(ctl->client, name, data, tag, &valid, NULL,
						    &error);
	} else {
		data = tkmsctl_read_input(opt_in, FALSE, &error);
		if (data == NULL)
			return tkmsctl_fail(error);
		ok = tkms_client_verify_hmac_sync(ctl->client, name, data, tag, &valid, NULL,
						  &error);
	}
	if (!ok)
		return tkmsctl_fail(error);

	if (ctl->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();

		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "valid");
		json_builder_add_boolean_value(builder, valid);
		json_builder_end_object(builder);
		tkmsctl_print_json(json_builder_get_root(builder));
	} else {
		/* not translated: scripts compare it */
		g_print("%s\n", valid ? "valid" : "invalid");
	}
	return valid ? TKMSCTL_EXIT_OK : TKMSCTL_EXIT_INVALID;
}

static int
run_verify(Tkmsctl *ctl, gchar **args)
{
	return check(ctl, "verify", "--signature", opt_signature, args[0]);
}

static int
run_verify_hmac(Tkmsctl *ctl, gchar **args)
{
	return check(ctl, "verify-hmac", "--mac", opt_mac, args[0]);
}

static int
run_derive(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(GBytes) context = NULL;
	g_autoptr(GBytes) derived = NULL;
	g_autoptr(GError) error = NULL;
	guint length;
	int code;

	if (opt_length == NULL)
		return tkmsctl_usage("derive", _("--length N is required"));
	if (!tkmsctl_parse_length("derive", opt_length, &length))
		return TKMSCTL_EXIT_USAGE;
	if ((code = read_context("derive", TRUE, FALSE, &context)) != TKMSCTL_EXIT_OK)
		return code;
	if (!tkmsctl_check_raw_output(ctl, opt_out, opt_base64))
		return TKMSCTL_EXIT_USAGE;
	derived = tkms_client_derive_key_sync(ctl->client, args[0], context, length, NULL, &error);
	if (derived == NULL)
		return tkmsctl_fail(error);
	if (!tkmsctl_write_data(ctl, opt_out, derived, opt_base64, &error))
		return tkmsctl_fail(error);
	return TKMSCTL_EXIT_OK;
}

static int
run_random(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error = NULL;
	guint length;

	if (!tkmsctl_parse_length("random", args[0], &length))
		return TKMSCTL_EXIT_USAGE;
	if (!tkmsctl_check_raw_output(ctl, opt_out, opt_base64))
		return TKMSCTL_EXIT_USAGE;
	bytes = tkms_client_get_random_sync(ctl->client, length, NULL, &error);
	if (bytes == NULL)
		return tkmsctl_fail(error);
	if (!tkmsctl_write_data(ctl, opt_out, bytes, opt_base64, &error))
		return tkmsctl_fail(error);
	return TKMSCTL_EXIT_OK;
}

#define ENTRY_IN                                                                              \
	{"in", 'i', 0, G_OPTION_ARG_FILENAME, &opt_in,                                        \
	 N_("Read the data from FILE ('-' or none: standard input)"), "FILE"}
#define ENTRY_OUT                                                                             \
	{"out", 'o', 0, G_OPTION_ARG_FILENAME, &opt_out,                                      \
	 N_("Write the result to FILE, created mode 0600 ('-': standard output, even a "       \
	    "terminal; default: standard output, but not raw bytes to a terminal)"),          \
	 "FILE"}
#define ENTRY_BASE64_OUT                                                                      \
	{"base64", 'b', 0, G_OPTION_ARG_NONE, &opt_base64, N_("Write the result as base64"), NULL}
#define ENTRY_BASE64_IN                                                                       \
	{"base64", 'b', 0, G_OPTION_ARG_NONE, &opt_base64, N_("The input is base64"), NULL}
#define ENTRY_BATCH                                                                           \
	{"batch", 0, 0, G_OPTION_ARG_NONE, &opt_batch,                                        \
	 N_("Read one base64 item per line, write one base64 result per line"), NULL}
#define ENTRY_CONTEXT                                                                         \
	{"context", 'c', 0, G_OPTION_ARG_STRING, &opt_context,                                \
	 N_("Associated data (the same for encrypt and decrypt)"), "STR"},                    \
		{"context-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_context_file,              \
		 N_("Read the context from F"), "F"}

static const GOptionEntry encrypt_entries[] = {
	ENTRY_CONTEXT,
	ENTRY_IN,
	ENTRY_OUT,
	ENTRY_BASE64_OUT,
	{"stream", 0, 0, G_OPTION_ARG_NONE, &opt_stream,
	 N_("Use the stream format whatever the size of the input"), NULL},
	ENTRY_BATCH,
	{NULL},
};

static const GOptionEntry decrypt_entries[] = {
	ENTRY_CONTEXT, ENTRY_IN, ENTRY_OUT, ENTRY_BASE64_IN, ENTRY_BATCH, {NULL},
};

static const GOptionEntry sign_entries[] = {
	ENTRY_IN, ENTRY_OUT, ENTRY_BASE64_OUT, ENTRY_BATCH, {NULL},
};

static const GOptionEntry verify_entries[] = {
	{"signature", 's', 0, G_OPTION_ARG_FILENAME, &opt_signature,
	 N_("The signature to check (required)"), "FILE"},
	ENTRY_IN,
	{"base64", 'b', 0, G_OPTION_ARG_NONE, &opt_base64, N_("The signature file is base64"), NULL},
	{NULL},
};

static const GOptionEntry verify_hmac_entries[] = {
	{"mac", 'm', 0, G_OPTION_ARG_FILENAME, &opt_mac, N_("The MAC to check (required)"), "FILE"},
	ENTRY_IN,
	{"base64", 'b', 0, G_OPTION_ARG_NONE, &opt_base64, N_("The MAC file is base64"), NULL},
	{NULL},
};

static const GOptionEntry derive_entries[] = {
	{"context", 'c', 0, G_OPTION_ARG_STRING, &opt_context,
	 N_("What the derived key is for (required, or --context-file)"), "STR"},
	{"context-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_context_file,
	 N_("Read the context from F"), "F"},
	{"length", 'l', 0, G_OPTION_ARG_STRING, &opt_length,
	 N_("Number of bytes to derive, 1 to 8160 (required)"), "N"},
	ENTRY_OUT,
	ENTRY_BASE64_OUT,
	{NULL},
};

static const GOptionEntry seal_entries[] = {
	{"pcrs", 0, 0, G_OPTION_ARG_STRING, &opt_pcrs,
	 N_("Bind unsealing to the current values of these SHA-256 PCRs"), "LIST"},
	ENTRY_IN,
	ENTRY_OUT,
	ENTRY_BASE64_OUT,
	{NULL},
};

static const GOptionEntry unseal_entries[] = {
	ENTRY_IN, ENTRY_OUT, ENTRY_BASE64_IN, {NULL},
};

static const GOptionEntry random_entries[] = {
	ENTRY_OUT, ENTRY_BASE64_OUT, {NULL},
};

const TkmsctlCommand tkmsctl_data_commands[] = {
	{"encrypt", "NAME", N_("Encrypt data with an aes-256-gcm key"),
	 N_("The ciphertext is bound to the context: decrypt needs the same one.\n"
	    "With --json the result is written as {\"base64\": \"...\"}.\n"
	    "With --batch each input line is one plaintext in base64, and each output line\n"
	    "its ciphertext in base64, in order (sent to tkmsd up to 1024 lines at a time)."),
	 encrypt_entries, 1, 1, TRUE, run_encrypt},
	{"decrypt", "NAME", N_("Decrypt data encrypted with the key"),
	 N_("With --base64 the ciphertext is read as base64 (as encrypt --base64 wrote it).\n"
	    "Fails (exit status 1) if the ciphertext was changed or the context differs.\n"
	    "With --json the plaintext is written as {\"base64\": \"...\"}.\n"
	    "With --batch each input line is one ciphertext in base64, and each output line\n"
	    "its plaintext in base64, in order; an error names the input line."),
	 decrypt_entries, 1, 1, TRUE, run_decrypt},
	{"sign", "NAME", N_("Sign data (SHA-256) with an ecdsa-p256 or rsa-2048 key"),
	 N_("ECDSA signatures are DER; RSA ones RSASSA-PKCS1-v1_5. Both verify with\n"
	    "openssl dgst -sha256 -verify PUBKEY.pem (see pubkey).\n"
	    "With --json the result is written as {\"base64\": \"...\"}.\n"
	    "With --batch each input line is one message in base64, and each output line its\n"
	    "signature in base64, in order."),
	 sign_entries, 1, 1, TRUE, run_sign},
	{"verify", "NAME", N_("Check a signature made by sign"),
	 N_("Prints \"valid\" or \"invalid\" (with --json: {\"valid\": true|false}).\n"
	    "Exit status 0 if valid, 3 if invalid, another code if the check could not run."),
	 verify_entries, 1, 1, TRUE, run_verify},
	{"hmac", "NAME", N_("Compute HMAC-SHA256 with an hmac-sha256 key"),
	 N_("With --json the result is written as {\"base64\": \"...\"}.\n"
	    "With --batch each input line is one message in base64, and each output line its\n"
	    "MAC in base64, in order."),
	 sign_entries, 1, 1, TRUE, run_hmac},
	{"verify-hmac", "NAME", N_("Check a MAC made by hmac"),
	 N_("Prints \"valid\" or \"invalid\" (with --json: {\"valid\": true|false}).\n"
	    "Exit status 0 if valid, 3 if invalid, another code if the check could not run."),
	 verify_hmac_entries, 1, 1, TRUE, run_verify_hmac},
	{"derive", "NAME", N_("Derive key material from an hmac-sha256 key"),
	 N_("The result depends only on the key, the context and the length.\n"
	    "With --json the result is written as {\"base64\": \"...\"}."),
	 derive_entries, 1, 1, TRUE, run_derive},
	{"seal", "", N_("Seal data to this TPM and your user"),
	 N_("Only this TPM, for your uid, can unseal the blob; with --pcrs only while those PCRs\n"
	    "keep their current values.\n"
	    "With --json the result is written as {\"base64\": \"...\"}."),
	 seal_entries, 0, 0, TRUE, run_seal},
	{"unseal", "", N_("Unseal a blob made by seal"),
	 N_("With --base64 the blob is read as base64 (as seal --base64 wrote it).\n"
	    "With --json the data is written as {\"base64\": \"...\"}."),
	 unseal_entries, 0, 0, TRUE, run_unseal},
	{"random", "N", N_("Get N random bytes from the TPM"),
	 N_("With --json the result is written as {\"base64\": \"...\"}."), random_entries, 1, 1,
	 TRUE, run_random},
	{NULL},
};
