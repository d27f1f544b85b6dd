/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include <string.h>
#include <unistd.h>

#include "tkmsctl.h"

/* Reading input and writing output for the data commands, and argument parsing helpers. */

gboolean
tkmsctl_is_stdio(const gchar *path)
{
	return path == NULL || g_str_equal(path, "-");
}

static GBytes *
decode_base64(GBytes *text, const gchar *name, GError **error)
{
	gsize len, n = 0, pad = 0, out_len = 0;
	const gchar *in = g_bytes_get_data(text, &len);
	g_autofree gchar *clean = g_malloc(len + 1);
	guchar *out;

	/* g_base64_decode() skips garbage silently; a typo must not decode to other bytes */
	for (gsize i = 0; i < len; i++) {
		gchar c = in[i];

		if (g_ascii_isspace(c))
			continue;
		if (c == '=') {
			pad++;
		} else if (pad > 0 || !(g_ascii_isalnum(c) || c == '+' || c == '/')) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    _("%s is not valid base64"), name);
			return NULL;
		}
		clean[n++] = c;
	}
	clean[n] = '\0';
	if (n % 4 != 0 || pad > 2) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    _("%s is not valid base64 (truncated)"), name);
		return NULL;
	}
	out = g_base64_decode(clean, &out_len);
	return g_bytes_new_take(out, out_len);
}

GBytes *
tkmsctl_read_input(const gchar *path, gboolean base64, GError **error)
{
	g_autoptr(TkmsctlInput) in = tkmsctl_input_open(path, FALSE, error);
	g_autoptr(GBytes) raw = NULL;

	if (in == NULL)
		return NULL;
	raw = tkmsctl_input_read_all(in, TKMSCTL_MAX_INPUT, error);
	if (raw == NULL)
		return NULL;
	return base64 ? decode_base64(raw, tkmsctl_input_get_name(in), error)
		      : g_steal_pointer(&raw);
}

int
tkmsctl_read_context(const gchar *command, const gchar *context, const gchar *context_file,
		     gboolean required, gboolean reads_input, const gchar *in_path,
		     GBytes **out_context)
{
	g_autoptr(GError) error = NULL;

	*out_context = NULL;
	if (context != NULL && context_file != NULL)
		return tkmsctl_usage(command, _("give --context or --context-file, not both"));
	if (context_file != NULL && tkmsctl_is_stdio(context_file) && reads_input &&
	    tkmsctl_is_stdio(in_path))
		return tkmsctl_usage(command, _("--context-file - needs the data from --in FILE"));
	if (context != NULL) {
		*out_context = g_bytes_new(context, strlen(context));
	} else if (context_file != NULL) {
		*out_context = tkmsctl_read_input(context_file, FALSE, &error);
		if (*out_context == NULL)
			return tkmsctl_fail(error);
	} else if (required) {
		return tkmsctl_usage(command, _("--context or --context-file is required"));
	}
	return TKMSCTL_EXIT_OK;
}

gboolean
tkmsctl_check_raw_output(Tkmsctl *ctl, const gchar *path, gboolean base64)
{
	/* "--out -" is the explicit request; no --out on a terminal is not */
	if (ctl->json || base64 || path != NULL || !isatty(STDOUT_FILENO))
		return TRUE;
	tkmsctl_usage_with_hint(_("Use --base64 for text, --out FILE for a file, or --out - to "
				  "write the bytes to the terminal anyway."),
				_("refusing to write binary data to a terminal"));
	return FALSE;
}

gboolean
tkmsctl_looks_like_base64(GBytes *data)
{
	gsize len, n = 0;
	const gchar *p = g_bytes_get_data(data, &len);

	for (gsize i = 0; i < len; i++) {
		if (g_ascii_isspace(p[i]))
			continue;
		if (!(g_ascii_isalnum(p[i]) || p[i] == '+' || p[i] == '/' || p[i] == '='))
			return FALSE;
		n++;
	}
	/* a tkms ciphertext or blob is binary; a few letters are not worth a hint */
	return n >= 16 && n % 4 == 0;
}

gboolean
tkmsctl_write_file(const gchar *path, const void *data, gsize len, GError **error)
{
	/* O_TRUNC on an existing file would keep its mode (0644: plaintext for everyone) and
	 * leave it cut short when a write fails */
	g_autoptr(TkmsctlOutput) out = tkmsctl_output_open_raw(path, error);

	return out != NULL && tkmsctl_output_write(out, data, len, error) &&
	       tkmsctl_output_commit(out, error);
}

static gchar *
json_to_line(JsonNode *node)
{
	g_autoptr(JsonGenerator) generator = json_generator_new();

	json_generator_set_root(generator, node);
	return g_strconcat(json_generator_to_data(generator, NULL), "\n", NULL);
}

void
tkmsctl_print_json(JsonNode *node)
{
	g_autoptr(JsonNode) owned = node;
	g_autofree gchar *line = json_to_line(owned);

	g_print("%s", line);
}

gboolean
tkmsctl_write_json(const gchar *path, JsonNode *node, GError **error)
{
	g_autoptr(JsonNode) owned = node;
	g_autofree gchar *line = json_to_line(owned);

	return tkmsctl_write_file(path, line, strlen(line), error);
}

gboolean
tkmsctl_write_data(Tkmsctl *ctl, const gchar *path, GBytes *data, gboolean base64,
		   GError **error)
{
	gsize len;
	const guint8 *p = g_bytes_get_data(data, &len);
	g_autofree gchar *text = NULL;
	gboolean ok;

	if (!ctl->json && !base64)
		return tkmsctl_write_file(path, p, len, error);
	if (ctl->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();
		g_autoptr(JsonNode) root = NULL;
		g_autofree gchar *encoded = g_base64_encode(p, len);

		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "base64");
		json_builder_add_string_value(builder, encoded);
		json_builder_end_object(builder);
		root = json_builder_get_root(builder);
		text = json_to_line(root);
		explicit_bzero(encoded, strlen(encoded));
	} else {
		g_autofree gchar *encoded = g_base64_encode(p, len);
		text = g_strconcat(encoded, "\n", NULL);
		explicit_bzero(encoded, strlen(encoded));
	}
	ok = tkmsctl_write_file(path, text, strlen(text), error);
	explicit_bzero(text, strlen(text));
	return ok;
}

gboolean
tkmsctl_parse_pcrs(const gchar *command, const gchar *list, GVariant **out_pcrs)
{
	g_auto(GStrv) parts = g_strsplit(list, ",", -1);
	GVariantBuilder builder;

	if (parts[0] == NULL) {
		tkmsctl_usage(command,
			      _("empty PCR list: give PCR numbers 0 to 23, separated by commas"));
		return FALSE;
	}
	g_variant_builder_init(&builder, G_VARIANT_TYPE("au"));
	for (guint i = 0; parts[i] != NULL; i++) {
		guint64 pcr;

		if (!g_ascii_string_to_unsigned(g_strstrip(parts[i]), 10, 0, 23, &pcr, NULL)) {
			g_variant_builder_clear(&builder);
			tkmsctl_usage(command,
				      _("invalid PCR list '%s': give PCR numbers 0 to 23, "
					"separated by commas"),
				      list);
			return FALSE;
		}
		g_variant_builder_add(&builder, "u", (guint32)pcr);
	}
	*out_pcrs = g_variant_ref_sink(g_variant_builder_end(&builder));
	return TRUE;
}

gboolean
tkmsctl_parse_length(const gchar *command, const gchar *text, guint *out_length)
{
	guint64 value;

	if (text == NULL ||
	    !g_ascii_string_to_unsigned(text, 10, 1, G_MAXUINT32, &value, NULL)) {
		tkmsctl_usage(command, _("invalid length '%s': give a positive number of bytes"),
			      text != NULL ? text : "");
		return FALSE;
	}
	*out_length = (guint)value;
	return TRUE;
}
