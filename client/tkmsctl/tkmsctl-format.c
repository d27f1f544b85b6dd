/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

/* How tkmsctl writes times (ISO 8601, UTC) and durations (90d 12h) in its text output. */

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
