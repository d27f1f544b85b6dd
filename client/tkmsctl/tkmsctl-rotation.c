/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

/* Following a password key's rotation after RotateKey: tkmsd runs the hook's steps on its
 * own, so tkmsctl watches GetKeyInfo until the rotation it started has ended. */

#include "tkmsctl.h"

/* How often GetKeyInfo is asked: a person sees each step at once, tkmsd hardly notices. */
#define POLL_INTERVAL_US (200 * 1000)

/* The steps of a successful rotation, in order; `rollback` follows a failed set or test. */
static const gchar *const steps[] = {"set", "test", "finish"};

typedef struct {
	gboolean print;
	/* the steps shown so far: steps[0 .. shown - 1] */
	guint shown;
	gboolean rollback_shown;
} Progress;

/* One line per step, each once and in order: a step implies the ones before it, even if it
 * ran too fast to be seen between two looks. */
static void
reach(Progress *p, const gchar *step)
{
	if (g_strcmp0(step, "rollback") == 0) {
		/* a rollback follows a set that failed, at least */
		reach(p, "set");
		if (!p->rollback_shown && p->print)
			g_print("rollback…\n");
		p->rollback_shown = TRUE;
		return;
	}
	for (guint i = 0; i < G_N_ELEMENTS(steps); i++) {
		if (g_strcmp0(step, steps[i]) != 0)
			continue;
		for (; p->shown <= i; p->shown++) {
			if (p->print)
				g_print("%s…\n", steps[p->shown]);
		}
		return;
	}
}

static TkmsKeyVersionInfo *
find_version(TkmsKeyInfo *info, guint version)
{
	GPtrArray *versions = tkms_key_info_get_versions(info);

	for (guint i = 0; i < versions->len; i++) {
		if (tkms_key_version_info_get_version(g_ptr_array_index(versions, i)) == version)
			return g_ptr_array_index(versions, i);
	}
	return NULL;
}

static int
succeeded(Tkmsctl *ctl, const gchar *name, guint version)
{
	if (ctl->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "name");
		json_builder_add_string_value(b, name);
		json_builder_set_member_name(b, "version");
		json_builder_add_int_value(b, version);
		json_builder_set_member_name(b, "result");
		json_builder_add_string_value(b, "ok");
		json_builder_end_object(b);
		tkmsctl_print_json(json_builder_get_root(b));
	} else {
		g_print(_("rotated to version %u\n"), version);
	}
	return TKMSCTL_EXIT_OK;
}

/* The failure as an error of tkmsctl's: the step, the reason (the hook's standard error,
 * passwords masked by tkmsd) and when tkmsd tries again. */
static int
failed(const gchar *name, guint version, TkmsKeyInfo *info)
{
	const gchar *step = tkms_key_info_get_last_rotation_step(info);
	const gchar *reason = tkms_key_info_get_last_rotation_reason(info);
	guint64 retry = tkms_key_info_get_last_rotation_next_retry(info);
	g_autofree gchar *text = reason != NULL ? tkmsctl_for_terminal_lines(reason, "  ") : NULL;
	g_autofree gchar *hint = NULL;
	g_autoptr(GError) error = NULL;

	if (text != NULL)
		error = g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED,
				    _("the rotation of key '%s' to version %u failed at step %s: %s"),
				    name, version, step != NULL ? step : "?", text);
	else
		error = g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED,
				    _("the rotation of key '%s' to version %u failed at step %s"),
				    name, version, step != NULL ? step : "?");
	if (retry != 0) {
		g_autofree gchar *when = tkmsctl_format_time(retry);

		hint = g_strdup_printf(_("The current password stays in use; tkmsd tries again at "
					 "%s."),
				       when);
	} else {
		hint = g_strdup(_("The current password stays in use."));
	}
	return tkmsctl_fail_with_hint(error, hint);
}

int
tkmsctl_follow_rotation(Tkmsctl *ctl, const gchar *name, guint version)
{
	Progress progress = {.print = !ctl->json};
	gboolean hook = FALSE, first = TRUE;

	for (;;) {
		g_autoptr(TkmsKeyInfo) info = NULL;
		g_autoptr(GError) error = NULL;
		TkmsKeyVersionInfo *v;
		const gchar *stage;

		info = tkms_client_lookup_key_sync(ctl->client, name, NULL, &error);
		if (info == NULL) {
			g_autofree gchar *hint = g_strdup_printf(
				_("The rotation to version %u goes on in tkmsd: see 'tkmsctl info "
				  "%s'."),
				version, name);

			return tkmsctl_fail_with_hint(error, hint);
		}
		/* the hook as the rotation started with it: without one there are no steps */
		if (first)
			hook = tkms_key_info_get_rotation_hook(info) != NULL;
		first = FALSE;
		if (tkms_key_info_get_rotation_version(info) == version) {
			const gchar *step = tkms_key_info_get_rotation_step(info);

			/* while it rolls back, the last rotation already names the step that
			 * failed: shown before the rollback */
			if (hook && g_strcmp0(step, "rollback") == 0 &&
			    tkms_key_info_get_last_rotation_version(info) == version)
				reach(&progress, tkms_key_info_get_last_rotation_step(info));
			if (hook)
				reach(&progress, step);
			g_usleep(POLL_INTERVAL_US);
			continue;
		}
		if (tkms_key_info_get_last_rotation_version(info) == version) {
			if (g_strcmp0(tkms_key_info_get_last_rotation_result(info), "ok") == 0) {
				const gchar *note = tkms_key_info_get_last_rotation_reason(info);

				if (hook)
					reach(&progress, "finish");
				/* the switch is made; what the hook's finish said is worth a look */
				if (note != NULL) {
					g_autofree gchar *text = tkmsctl_for_terminal_lines(note, "  ");

					g_printerr(_("tkmsctl: the hook said: %s\n"), text);
				}
				return succeeded(ctl, name, version);
			}
			if (hook) {
				reach(&progress, tkms_key_info_get_last_rotation_step(info));
				reach(&progress, "rollback");
			}
			return failed(name, version, info);
		}
		/* Another rotation ended since (the record of ours is gone): the version's stage
		 * still tells whether the switch to it was made. */
		v = find_version(info, version);
		stage = v != NULL ? tkms_key_version_info_get_stage(v) : NULL;
		if (g_strcmp0(stage, "current") == 0 || g_strcmp0(stage, "previous") == 0)
			return succeeded(ctl, name, version);
		if (g_strcmp0(stage, "pending") == 0) {
			g_usleep(POLL_INTERVAL_US);
			continue;
		}
		{
			g_autoptr(GError) unknown = g_error_new(
				G_IO_ERROR, G_IO_ERROR_FAILED,
				_("the rotation of key '%s' to version %u ended without making it "
				  "current"),
				name, version);
			g_autofree gchar *hint =
				g_strdup_printf(_("See 'tkmsctl info %s' for the last rotation."), name);

			return tkmsctl_fail_with_hint(unknown, hint);
		}
	}
}
