/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

/* How tkmsctl writes times (ISO 8601, UTC), durations (90d 12h) and text from others in its
 * text output. */

#include <string.h>

#include "tkmsctl.h"

gchar *
tkmsctl_format_time(guint64 unix_time)
{
	g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc((gint64)unix_time);

	return dt != NULL ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ")
			  : g_strdup_printf("%" G_GUINT64_FORMAT, unix_time);
}

gchar *
tkmsctl_format_duration(guint64 seconds)
{
	static const struct {
		const gchar *unit;
		guint64 seconds;
	} units[] = {{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}};
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < G_N_ELEMENTS(units); i++) {
		guint64 n = seconds / units[i].seconds;

		if (n == 0)
			continue;
		g_string_append_printf(s, "%s%" G_GUINT64_FORMAT "%s", s->len > 0 ? " " : "", n,
				       units[i].unit);
		seconds %= units[i].seconds;
	}
	if (s->len == 0)
		g_string_append(s, "0s");
	return g_string_free(s, FALSE);
}

/* Text another user or program chose (a key's description, which an admin reads with
 * OWNER:NAME; a hook's standard error) made safe for a terminal: a control character such as
 * ESC would start a sequence that retitles the terminal, rewrites what is shown or answers
 * back as typed input, so each is shown as \xHH instead. */
gchar *
tkmsctl_for_terminal(const gchar *text)
{
	GString *s = g_string_sized_new(strlen(text));

	/* strings from the bus are valid UTF-8 */
	for (const gchar *p = text; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (g_unichar_iscntrl(c))
			g_string_append_printf(s, "\\x%02x", (guint)c);
		else
			g_string_append_unichar(s, c);
	}
	return g_string_free(s, FALSE);
}

/* The same for text of several lines (a hook's standard error): the newlines are kept, each
 * line after the first starts with @indent, and trailing white space is dropped. */
gchar *
tkmsctl_for_terminal_lines(const gchar *text, const gchar *indent)
{
	g_autofree gchar *copy = g_strchomp(g_strdup(text));
	g_auto(GStrv) lines = g_strsplit(copy, "\n", -1);
	GString *s = g_string_new(NULL);

	for (guint i = 0; lines[i] != NULL; i++) {
		g_autofree gchar *line = tkmsctl_for_terminal(g_strchomp(lines[i]));

		if (i > 0)
			g_string_append_printf(s, "\n%s", indent);
		g_string_append(s, line);
	}
	return g_string_free(s, FALSE);
}
