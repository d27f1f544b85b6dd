/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-hook-launcher"

#include "hook-launcher-wire.h"

#include <string.h>

#include "key.h"
#include "tkms-error.h"

static const gchar *const steps[] = {"set", "test", "finish", "rollback"};

G_STATIC_ASSERT(TKMS_HOOK_NAME_MAX == 64);

gint
tkms_hook_wire_step_from_name(const gchar *step)
{
	for (guint i = 0; i < G_N_ELEMENTS(steps); i++)
		if (g_strcmp0(step, steps[i]) == 0)
			return i;
	return -1;
}

const gchar *
tkms_hook_wire_step_name(guint32 step)
{
	return step < G_N_ELEMENTS(steps) ? steps[step] : NULL;
}

static gboolean
bad(GError **error, const gchar *what)
{
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, "A malformed hook launcher message: %s",
		    what);
	return FALSE;
}

gboolean
tkms_hook_wire_parse(const guint8 *message, gsize len, TkmsHookWireHeader *header,
		     const guint8 **name, const guint8 **data, GError **error)
{
	TkmsHookWireHeader h;

	if (len < sizeof(h))
		return bad(error, "shorter than its header");
	memcpy(&h, message, sizeof(h));
	switch (h.type) {
	case TKMS_HOOK_WIRE_RUN:
		if (tkms_hook_wire_step_name(h.step) == NULL)
			return bad(error, "an unknown step");
		if (h.timeout == 0 || h.timeout > TKMS_HOOK_WIRE_TIMEOUT_MAX)
			return bad(error, "a timeout out of range");
		if (h.name_len == 0 || h.name_len > TKMS_HOOK_NAME_MAX)
			return bad(error, "a name length out of range");
		if (h.data_len > TKMS_HOOK_WIRE_INPUT_MAX)
			return bad(error, "an input longer than a hook's input can be");
		break;
	case TKMS_HOOK_WIRE_CANCEL:
		if (h.name_len != 0 || h.data_len != 0)
			return bad(error, "a cancel with data");
		break;
	case TKMS_HOOK_WIRE_DONE:
		if (h.outcome < TKMS_HOOK_WIRE_ENDED || h.outcome > TKMS_HOOK_WIRE_NOT_RUN)
			return bad(error, "an unknown outcome");
		if (h.name_len != 0)
			return bad(error, "a name in an answer");
		if (h.data_len > (h.outcome == TKMS_HOOK_WIRE_NOT_RUN ? TKMS_HOOK_WIRE_TEXT_MAX
								      : TKMS_HOOK_WIRE_STDERR_MAX))
			return bad(error, "an answer longer than it can be");
		break;
	default:
		return bad(error, "an unknown type");
	}
	/* both lengths are bounded above, so the sum cannot overflow */
	if (len != sizeof(h) + (gsize)h.name_len + h.data_len)
		return bad(error, "its length is not that of its parts");
	*header = h;
	*name = message + sizeof(h);
	*data = message + sizeof(h) + h.name_len;
	return TRUE;
}
