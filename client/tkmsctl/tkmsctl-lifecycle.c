/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tkmsctl.h"

/* The life cycle of keys and their versions: rotate, policy, state, primary, destroy. */

static gchar *opt_period;
static gchar *opt_max_uses;
static gchar *opt_deactivate_after;
static gchar *opt_destroy_after;
static gchar *opt_version;
static gboolean opt_cancel;
static gboolean opt_yes;
static gchar *opt_hook;
static gboolean opt_no_wait;

static const gchar duration_help[] = N_("Durations: 90d, 12h, 30m, 45s, or seconds.");

gboolean
tkmsctl_parse_duration(const gchar *command, const gchar *option, const gchar *text,
		       guint64 *out_seconds)
{
	static const struct {
		gchar unit;
		guint64 seconds;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	g_autofree gchar *number = NULL;
	guint64 scale = 1, value = 0;
	gsize len = text != NULL ? strlen(text) : 0;

	if (len > 1 && !g_ascii_isdigit(text[len - 1])) {
		for (guint i = 0; i < G_N_ELEMENTS(units); i++) {
			if (text[len - 1] == units[i].unit)
				scale = units[i].seconds;
		}
		if (scale == 1 && text[len - 1] != 's')
			goto bad;
		len--;
	}
	number = g_strndup(text != NULL ? text : "", len);
	if (!g_ascii_string_to_unsigned(number, 10, 0, G_MAXUINT64 / scale, &value, NULL))
		goto bad;
	*out_seconds = value * scale;
	return TRUE;
bad:
	tkmsctl_usage_with_hint(_(duration_help), _("invalid duration '%s' for %s"),
				text != NULL ? text : "", option);
	return FALSE;
}

/* A version number as the argument VERSION or --version N: 1 or more. */
static gboolean
parse_version(const gchar *command, const gchar *text, guint *out_version)
{
	guint64 value;

	if (text == NULL || !g_ascii_string_to_unsigned(text, 10, 1, G_MAXUINT32, &value, NULL)) {
		tkmsctl_usage(command, _("invalid version '%s': give a version number (1, 2, …)"),
			      text != NULL ? text : "");
		return FALSE;
	}
	*out_version = (guint)value;
	return TRUE;
}

static TkmsKeyInfo *
lookup(Tkmsctl *ctl, const gchar *name, GError **error)
{
	return tkms_client_lookup_key_sync(ctl->client, name, NULL, error);
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

static void
json_set_time(JsonBuilder *b, const gchar *member, guint64 t)
{
	json_builder_set_member_name(b, member);
	if (t == 0) {
		json_builder_add_null_value(b);
	} else {
		g_autofree gchar *when = tkmsctl_format_time(t);
		json_builder_add_string_value(b, when);
	}
}

/* ---- rotate, primary, state ---- */

/* What rotate, primary and state print with --json: {"name", MEMBER: VERSION[, "state"]}. */
static void
print_version_json(const gchar *name, const gchar *member, guint version, const gchar *state)
{
	g_autoptr(JsonBuilder) b = json_builder_new();

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "name");
	json_builder_add_string_value(b, name);
	json_builder_set_member_name(b, member);
	json_builder_add_int_value(b, version);
	if (state != NULL) {
		json_builder_set_member_name(b, "state");
		json_builder_add_string_value(b, state);
	}
	json_builder_end_object(b);
	tkmsctl_print_json(json_builder_get_root(b));
}

static int
run_rotate(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKeyInfo) info = NULL;
	guint version;

	version = tkms_client_rotate_key_sync(ctl->client, args[0], NULL, &error);
	if (version == 0)
		return tkmsctl_fail(error);
	/* a password key's rotation goes on in tkmsd: wait for it unless told not to */
	if (!opt_no_wait) {
		if ((info = lookup(ctl, args[0], &error)) == NULL) {
			g_autofree gchar *hint = g_strdup_printf(
				_("Version %u was made; see 'tkmsctl info %s'."), version, args[0]);

			return tkmsctl_fail_with_hint(error, hint);
		}
		if (g_strcmp0(tkms_key_info_get_key_type(info), "password") == 0)
			return tkmsctl_follow_rotation(ctl, args[0], version);
	}
	if (ctl->json) {
		print_version_json(args[0], "version", version, NULL);
	} else {
		/* the number alone, so that v=$(tkmsctl rotate NAME) works */
		g_print("%u\n", version);
	}
	return TKMSCTL_EXIT_OK;
}

static int
run_primary(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(GError) error = NULL;
	guint version;

	if (!parse_version("primary", args[1], &version))
		return TKMSCTL_EXIT_USAGE;
	if (!tkms_client_set_primary_version_sync(ctl->client, args[0], version, NULL, &error))
		return tkmsctl_fail(error);
	if (ctl->json) {
		print_version_json(args[0], "primary-version", version, NULL);
	} else {
		g_print(_("Version %u of key '%s' is now the primary.\n"), version, args[0]);
	}
	return TKMSCTL_EXIT_OK;
}

static const gchar *const settable_states[] = {
	"active",
	"deactivated",
	"suspended",
	"compromised",
	NULL,
};

static int
run_state(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(GError) error = NULL;
	guint version;

	if (!parse_version("state", args[1], &version))
		return TKMSCTL_EXIT_USAGE;
	if (!g_strv_contains(settable_states, args[2])) {
		g_autofree gchar *states = g_strjoinv(", ", (gchar **)settable_states);
		g_autofree gchar *hint = g_strdup_printf(_("STATE is one of %s."), states);

		return tkmsctl_usage_with_hint(hint, _("unknown state '%s'"), args[2]);
	}
	if (!tkms_client_set_key_version_state_sync(ctl->client, args[0], version, args[2], NULL,
						    &error))
		return tkmsctl_fail(error);
	if (ctl->json) {
		print_version_json(args[0], "version", version, args[2]);
	} else {
		g_print(_("Version %u of key '%s' is now %s.\n"), version, args[0], args[2]);
	}
	return TKMSCTL_EXIT_OK;
}

/* ---- policy set|show|clear ---- */

static int
output_policy(Tkmsctl *ctl, TkmsKeyInfo *info)
{
	if (ctl->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();
		const struct {
			const gchar *member;
			guint64 value;
		} members[] = {
			{"period", tkms_key_info_get_rotation_period(info)},
			{"max-uses", tkms_key_info_get_max_uses(info)},
			{"deactivate-after", tkms_key_info_get_deactivate_after(info)},
			{"destroy-after", tkms_key_info_get_destroy_after(info)},
		};

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "name");
		json_builder_add_string_value(b, tkms_key_info_get_name(info));
		/* durations in seconds, as the D-Bus API has them; absent is none */
		json_builder_set_member_name(b, "policy");
		json_builder_begin_object(b);
		for (guint i = 0; i < G_N_ELEMENTS(members); i++) {
			if (members[i].value == 0)
				continue;
			json_builder_set_member_name(b, members[i].member);
			json_builder_add_int_value(b, (gint64)members[i].value);
		}
		if (tkms_key_info_get_rotation_hook(info) != NULL) {
			json_builder_set_member_name(b, "hook");
			json_builder_add_string_value(b, tkms_key_info_get_rotation_hook(info));
		}
		json_builder_end_object(b);
		json_set_time(b, "next-rotation", tkms_key_info_get_next_rotation(info));
		json_builder_end_object(b);
		tkmsctl_print_json(json_builder_get_root(b));
	} else {
		g_print("%-16s %s\n", "name:", tkms_key_info_get_name(info));
		tkmsctl_print_policy(tkms_key_info_get_variant(info));
	}
	return TKMSCTL_EXIT_OK;
}

/* @policy (consumed; NULL: none) with @member replaced by @value (floating), or removed for
 * NULL; members this tkmsctl does not know (of a newer daemon) are kept. */
static GVariant *
policy_with(GVariant *policy, const gchar *member, GVariant *value)
{
	g_autoptr(GVariant) old = policy;
	g_autoptr(GVariant) owned = value != NULL ? g_variant_ref_sink(value) : NULL;
	GVariantBuilder b;
	GVariantIter iter;
	const gchar *key;
	GVariant *v;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	if (policy != NULL) {
		g_variant_iter_init(&iter, policy);
		while (g_variant_iter_next(&iter, "{&sv}", &key, &v)) {
			if (!g_str_equal(key, member))
				g_variant_builder_add(&b, "{sv}", key, v);
			g_variant_unref(v);
		}
	}
	if (owned != NULL)
		g_variant_builder_add(&b, "{sv}", member, owned);
	return g_variant_ref_sink(g_variant_builder_end(&b));
}

/* A duration or count: 0 is none, so the member goes. */
static GVariant *
policy_with_u64(GVariant *policy, const gchar *member, guint64 value)
{
	return policy_with(policy, member, value != 0 ? g_variant_new_uint64(value) : NULL);
}

/* Each option given replaces that member of the current policy; 0 (or an empty --hook)
 * removes it. The others, a hook among them, stay as they are. */
static int
policy_set(Tkmsctl *ctl, const gchar *name)
{
	g_autoptr(TkmsKeyInfo) before = NULL;
	g_autoptr(TkmsKeyInfo) after = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) policy = NULL;
	guint64 period = 0, max_uses = 0, deactivate_after = 0, destroy_after = 0;

	if (opt_period == NULL && opt_max_uses == NULL && opt_deactivate_after == NULL &&
	    opt_destroy_after == NULL && opt_hook == NULL)
		return tkmsctl_usage("policy", _("policy set needs at least one of --period, "
						 "--max-uses, --deactivate-after, --destroy-after, "
						 "--hook"));
	if ((opt_period != NULL &&
	     !tkmsctl_parse_duration("policy", "--period", opt_period, &period)) ||
	    (opt_deactivate_after != NULL &&
	     !tkmsctl_parse_duration("policy", "--deactivate-after", opt_deactivate_after,
				     &deactivate_after)) ||
	    (opt_destroy_after != NULL &&
	     !tkmsctl_parse_duration("policy", "--destroy-after", opt_destroy_after,
				     &destroy_after)))
		return TKMSCTL_EXIT_USAGE;
	if (opt_max_uses != NULL &&
	    !g_ascii_string_to_unsigned(opt_max_uses, 10, 0, G_MAXUINT64, &max_uses, NULL))
		return tkmsctl_usage("policy", _("invalid --max-uses '%s': give a number of "
						 "messages (0: none)"),
				     opt_max_uses);

	if ((before = lookup(ctl, name, &error)) == NULL)
		return tkmsctl_fail(error);
	policy = g_variant_lookup_value(tkms_key_info_get_variant(before), "policy",
					G_VARIANT_TYPE_VARDICT);
	if (opt_period != NULL)
		policy = policy_with_u64(g_steal_pointer(&policy), "period", period);
	if (opt_max_uses != NULL)
		policy = policy_with_u64(g_steal_pointer(&policy), "max-uses", max_uses);
	if (opt_deactivate_after != NULL)
		policy = policy_with_u64(g_steal_pointer(&policy), "deactivate-after",
					 deactivate_after);
	if (opt_destroy_after != NULL)
		policy = policy_with_u64(g_steal_pointer(&policy), "destroy-after", destroy_after);
	/* tkmsd judges the hook (its name, that it exists, the admin action it needs) */
	if (opt_hook != NULL)
		policy = policy_with(g_steal_pointer(&policy), "hook",
				     *opt_hook != '\0' ? g_variant_new_string(opt_hook) : NULL);
	if (policy == NULL)
		policy = g_variant_ref_sink(g_variant_new("a{sv}", NULL));
	if (!tkms_client_set_rotation_policy_full_sync(ctl->client, name, policy, NULL, &error))
		return tkmsctl_fail(error);
	if ((after = lookup(ctl, name, &error)) == NULL)
		return tkmsctl_fail(error);
	return output_policy(ctl, after);
}

static int
run_policy(Tkmsctl *ctl, gchar **args)
{
	static const gchar *const actions[] = {"set", "show", "clear", NULL};
	const gchar *action = args[0], *name = args[1];
	g_autoptr(TkmsKeyInfo) info = NULL;
	g_autoptr(GError) error = NULL;

	if (!g_strv_contains(actions, action))
		return tkmsctl_usage("policy", _("unknown policy action '%s': set, show or clear"),
				     action);
	if (!g_str_equal(action, "set") &&
	    (opt_period != NULL || opt_max_uses != NULL || opt_deactivate_after != NULL ||
	     opt_destroy_after != NULL || opt_hook != NULL))
		return tkmsctl_usage("policy", _("the policy options are for 'policy set'"));
	ctl->key_name = name;
	if (g_str_equal(action, "set"))
		return policy_set(ctl, name);
	if (g_str_equal(action, "clear") &&
	    !tkms_client_set_rotation_policy_sync(ctl->client, name, 0, 0, 0, 0, NULL, &error))
		return tkmsctl_fail(error);
	if ((info = lookup(ctl, name, &error)) == NULL)
		return tkmsctl_fail(error);
	return output_policy(ctl, info);
}

/* ---- destroy ---- */

/* On a terminal, unless --yes: y or yes (or the translation) goes on, anything else not. */
static gboolean
confirm(const gchar *question)
{
	gchar line[64];

	/* TRANSLATORS: the answers confirm() accepts are "y" and "yes" and their translations */
	g_printerr("%s %s ", question, _("[y/N]"));
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL) {
		g_printerr("\n");
		return FALSE;
	}
	g_strstrip(line);
	return g_ascii_strcasecmp(line, "y") == 0 || g_ascii_strcasecmp(line, "yes") == 0 ||
	       g_strcmp0(line, _("y")) == 0 || g_strcmp0(line, _("yes")) == 0;
}

/* What destroy did: the date and the waiting period, and how to undo it. */
static int
report_destroy(Tkmsctl *ctl, const gchar *name, guint version)
{
	g_autoptr(TkmsKeyInfo) info = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *cancel = NULL;
	const gchar *state;
	guint64 at;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	guint64 wait;

	if ((info = lookup(ctl, name, &error)) == NULL)
		return tkmsctl_fail(error);
	if (version != 0) {
		TkmsKeyVersionInfo *v = find_version(info, version);

		state = v != NULL ? tkms_key_version_info_get_state(v) : "?";
		at = v != NULL ? tkms_key_version_info_get_destroy_at(v) : 0;
		cancel = g_strdup_printf("tkmsctl destroy %s --version %u --cancel", name,
					 version);
	} else {
		state = tkms_key_info_get_state(info);
		at = tkms_key_info_get_destroy_at(info);
		cancel = g_strdup_printf("tkmsctl destroy %s --cancel", name);
	}
	/* shown to the minute: the call took a moment of the period already */
	wait = at > (guint64)now ? at - (guint64)now : 0;
	if (wait >= 3600)
		wait = (wait + 30) / 60 * 60;

	if (ctl->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "name");
		json_builder_add_string_value(b, name);
		json_builder_set_member_name(b, "version");
		if (version != 0)
			json_builder_add_int_value(b, version);
		else
			json_builder_add_null_value(b);
		json_builder_set_member_name(b, "state");
		json_builder_add_string_value(b, state != NULL ? state : "?");
		json_set_time(b, "destroy-at", at);
		if (at != 0) {
			json_builder_set_member_name(b, "waiting-period");
			json_builder_add_int_value(b, (gint64)wait);
			json_builder_set_member_name(b, "cancel");
			json_builder_add_string_value(b, cancel);
		}
		json_builder_end_object(b);
		tkmsctl_print_json(json_builder_get_root(b));
	} else if (at != 0) {
		g_autofree gchar *when = tkmsctl_format_time(at);
		g_autofree gchar *in = tkmsctl_format_duration(wait);

		if (version != 0)
			g_print(_("Version %u of key '%s' will be destroyed at %s (in %s).\n"),
				version, name, when, in);
		else
			g_print(_("Key '%s' will be destroyed at %s (in %s).\n"), name, when, in);
		g_print(_("Until then, cancel with: %s\n"), cancel);
	} else if (version != 0) {
		g_print(_("Version %u of key '%s' is destroyed.\n"), version, name);
	} else {
		g_print(_("Key '%s' is destroyed.\n"), name);
	}
	return TKMSCTL_EXIT_OK;
}

static int
cancel_destroy(Tkmsctl *ctl, const gchar *name, guint version)
{
	g_autoptr(TkmsKeyInfo) info = NULL;
	g_autoptr(GError) error = NULL;
	const gchar *state;

	if (!tkms_client_cancel_key_destruction_sync(ctl->client, name, version, NULL, &error))
		return tkmsctl_fail(error);
	if ((info = lookup(ctl, name, &error)) == NULL)
		return tkmsctl_fail(error);
	if (version != 0) {
		TkmsKeyVersionInfo *v = find_version(info, version);
		state = v != NULL ? tkms_key_version_info_get_state(v) : "?";
	} else {
		state = tkms_key_info_get_state(info);
	}
	if (state == NULL)
		state = "?";
	if (ctl->json) {
		g_autoptr(JsonBuilder) b = json_builder_new();

		json_builder_begin_object(b);
		json_builder_set_member_name(b, "name");
		json_builder_add_string_value(b, name);
		json_builder_set_member_name(b, "version");
		if (version != 0)
			json_builder_add_int_value(b, version);
		else
			json_builder_add_null_value(b);
		json_builder_set_member_name(b, "state");
		json_builder_add_string_value(b, state);
		json_builder_end_object(b);
		tkmsctl_print_json(json_builder_get_root(b));
	} else if (version != 0) {
		g_print(_("Destruction of version %u of key '%s' cancelled; it is %s again.\n"),
			version, name, state);
	} else {
		g_print(_("Destruction of key '%s' cancelled; its primary is %s again.\n"), name,
			state);
	}
	return TKMSCTL_EXIT_OK;
}

static int
run_destroy(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(GError) error = NULL;
	const gchar *name = args[0];
	guint version = 0;
	gboolean ok;

	if (opt_version != NULL && !parse_version("destroy", opt_version, &version))
		return TKMSCTL_EXIT_USAGE;
	ctl->key_name = name;
	if (opt_cancel)
		return cancel_destroy(ctl, name, version);

	/* a person is asked; a script (no terminal on stdin) is not, as before */
	if (!opt_yes && isatty(STDIN_FILENO)) {
		g_autofree gchar *question =
			version != 0
				? g_strdup_printf(_("Destroy version %u of key '%s'? Data it "
						    "protects can no longer be decrypted once "
						    "it is destroyed."),
						  version, name)
				: g_strdup_printf(_("Destroy key '%s', every version of it? Data "
						    "it protects can no longer be decrypted once "
						    "it is destroyed."),
						  name);

		if (!confirm(question)) {
			g_autoptr(GError) no = g_error_new_literal(
				G_IO_ERROR, G_IO_ERROR_CANCELLED,
				_("not confirmed: nothing was destroyed"));

			return tkmsctl_fail_with_hint(no,
						      _("Answer 'y', or pass --yes to skip the "
							"question."));
		}
	}
	if (version != 0)
		ok = tkms_client_destroy_key_version_sync(ctl->client, name, version, NULL, &error);
	else
		ok = tkms_client_destroy_key_sync(ctl->client, name, NULL, &error);
	if (!ok)
		return tkmsctl_fail(error);
	return report_destroy(ctl, name, version);
}

/* ---- the tables ---- */

static const GOptionEntry policy_entries[] = {
	{"period", 0, 0, G_OPTION_ARG_STRING, &opt_period,
	 N_("Rotate this often (0: never)"), N_("DURATION")},
	{"max-uses", 0, 0, G_OPTION_ARG_STRING, &opt_max_uses,
	 N_("Rotate when the primary has protected N messages (0: no limit)"), "N"},
	{"deactivate-after", 0, 0, G_OPTION_ARG_STRING, &opt_deactivate_after,
	 N_("Deactivate a version this long after it stops being the primary (0: never)"),
	 N_("DURATION")},
	{"destroy-after", 0, 0, G_OPTION_ARG_STRING, &opt_destroy_after,
	 N_("Schedule the destruction of a version this long after its deactivation (0: "
	    "never)"),
	 N_("DURATION")},
	{"hook", 0, 0, G_OPTION_ARG_STRING, &opt_hook,
	 N_("password keys: apply and test new passwords with HOOK from tkmsd's hook directory "
	    "('': none)"),
	 N_("HOOK")},
	{NULL},
};

static const GOptionEntry rotate_entries[] = {
	{"no-wait", 0, 0, G_OPTION_ARG_NONE, &opt_no_wait,
	 N_("password keys: return once the pending version is made; do not wait for the "
	    "steps"),
	 NULL},
	{NULL},
};

static const GOptionEntry destroy_entries[] = {
	{"version", 0, 0, G_OPTION_ARG_STRING, &opt_version,
	 N_("Destroy (or with --cancel restore) this version only, not the primary"), "N"},
	{"cancel", 0, 0, G_OPTION_ARG_NONE, &opt_cancel,
	 N_("Cancel a scheduled destruction: restore the states from before"), NULL},
	{"yes", 'y', 0, G_OPTION_ARG_NONE, &opt_yes,
	 N_("Do not ask for confirmation on a terminal"), NULL},
	{NULL},
};

const TkmsctlCommand tkmsctl_lifecycle_commands[] = {
	{"rotate", "NAME", N_("Make a new version of a key, the new primary; prints its number"),
	 N_("The previous primary stays active: it still decrypts and verifies what it\n"
	    "protected, until it is deactivated ('tkmsctl state') or by the key's policy.\n"
	    "With --json: {\"name\", \"version\"}.\n\n"
	    "For a password key tkmsd makes a pending version, has the policy's hook apply it\n"
	    "(set) and log in with it (test), makes it current (the old one becomes previous)\n"
	    "and runs the hook's finish; without a hook the switch is made at once. rotate\n"
	    "waits: it prints each step as tkmsd reaches it, then 'rotated to version N', or\n"
	    "the step that failed with the hook's reason and the next retry, and exits with\n"
	    "status 1 (the current password then stays in use). Interrupting rotate does not\n"
	    "stop the rotation. With --no-wait it prints the pending version and returns.\n"
	    "With --json: {\"name\", \"version\", \"result\": \"ok\"} once it succeeded."),
	 rotate_entries, 1, 1, TRUE, run_rotate},
	{"policy", "set|show|clear NAME", N_("Set, show or remove a key's rotation policy"),
	 N_("tkmsd runs the policy by itself: it rotates the key every --period or after\n"
	    "--max-uses messages, deactivates a version --deactivate-after it stops being the\n"
	    "primary, and schedules its destruction --destroy-after its deactivation (with the\n"
	    "waiting period of tkmsd.conf(5)). 'policy set' changes only the options given;\n"
	    "0 removes one. Durations: 90d, 12h, 30m, 45s, or seconds.\n"
	    "A password key's --hook names an executable in tkmsd's [passwords] HookDirectory\n"
	    "that applies (set) and tests each new password; --hook '' removes it. Setting or\n"
	    "changing a hook needs the polkit action org.tkms.KeyManager.admin.\n"
	    "With --json: {\"name\", \"policy\": {member: seconds or count, \"hook\"},\n"
	    "\"next-rotation\"}.\n\n"
	    "NAME may be OWNER:NAME (needs the polkit action org.tkms.KeyManager.admin)."),
	 policy_entries, 2, 2, TRUE, run_policy},
	{"state", "NAME VERSION STATE", N_("Set the state of a key version"),
	 N_("STATE is one of:\n"
	    "  active       resume a deactivated or suspended version\n"
	    "  deactivated  decrypt and verify only\n"
	    "  suspended    nothing until resumed\n"
	    "  compromised  never protects again; decrypts only for an administrator (final)\n"
	    "The primary must stay active: make another version primary ('tkmsctl primary')\n"
	    "or rotate ('tkmsctl rotate') first."),
	 NULL, 3, 3, TRUE, run_state},
	{"primary", "NAME VERSION", N_("Make an active version the primary (roll back)"), NULL,
	 NULL, 2, 2, TRUE, run_primary},
	{"destroy", "NAME", N_("Schedule the destruction of a key, or of one version"),
	 N_("Destruction happens after tkmsd's waiting period ([lifecycle] DestroyWaitingPeriod,\n"
	    "7 days by default); until then 'tkmsctl destroy NAME --cancel' restores the key.\n"
	    "On a terminal destroy asks first (--yes skips the question); without a terminal\n"
	    "it does not ask. Prints when the destruction happens and how to cancel it.\n"
	    "A destroyed key's name is never reused.\n"
	    "With --json: {\"name\", \"version\", \"state\", \"destroy-at\", \"waiting-period\",\n"
	    "\"cancel\"}."),
	 destroy_entries, 1, 1, TRUE, run_destroy},
	{NULL},
};
