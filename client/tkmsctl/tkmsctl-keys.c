/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include <string.h>

#include "tkmsctl.h"

/* Key management commands: create, list, info, pubkey (destroy is with the life cycle in
 * tkmsctl-lifecycle.c). */

static gchar *opt_protection;
static gchar *opt_pcrs;
static gchar *opt_description;
static gchar *opt_out;
static gboolean opt_all;
static gchar *opt_length;
static gchar *opt_charset;
static gchar *opt_exclude;

static gchar *
format_pcrs(GVariant *pcrs)
{
	GString *s = g_string_new(NULL);
	gsize n = 0;
	const guint32 *v = g_variant_get_fixed_array(pcrs, &n, sizeof(guint32));

	for (gsize i = 0; i < n; i++)
		g_string_append_printf(s, "%s%u", i > 0 ? "," : "", v[i]);
	if (n == 0)
		g_string_append(s, "none");
	return g_string_free(s, FALSE);
}

/* The dates after "created" that a version has, in the order they happen. */
static void
print_version_events(GVariant *version)
{
	static const gchar *const events[] = {
		"activate-at", "activated", "superseded", "deactivated", "destroy-at", "destroyed",
	};
	g_autoptr(GString) line = g_string_new(NULL);

	for (guint i = 0; i < G_N_ELEMENTS(events); i++) {
		guint64 t = 0;

		if (g_variant_lookup(version, events[i], "t", &t) && t != 0) {
			g_autofree gchar *when = tkmsctl_format_time(t);

			g_string_append_printf(line, "%s%s %s", line->len > 0 ? ", " : "",
					       events[i], when);
		}
	}
	if (line->len > 0)
		g_print("         %s\n", line->str);
}

/* Whether a version has a stage (`current`, `pending`, `previous`): a password key's. */
static gboolean
any_stage(GVariant *versions)
{
	GVariantIter iter;
	GVariant *version;
	gboolean found = FALSE;

	g_variant_iter_init(&iter, versions);
	while (!found && (version = g_variant_iter_next_value(&iter)) != NULL) {
		found = g_variant_lookup(version, "stage", "&s", NULL);
		g_variant_unref(version);
	}
	return found;
}

static void
print_versions(GVariant *versions, guint32 primary)
{
	GVariantIter iter;
	GVariant *version;
	gboolean stages = any_stage(versions);

	g_print("versions:\n");
	g_variant_iter_init(&iter, versions);
	while ((version = g_variant_iter_next_value(&iter)) != NULL) {
		guint32 number = 0;
		guint64 created = 0, uses = 0;
		const gchar *state = "?";
		const gchar *stage = "";
		g_autofree gchar *when = NULL;
		g_autofree gchar *label = NULL;

		g_variant_lookup(version, "version", "u", &number);
		g_variant_lookup(version, "state", "&s", &state);
		g_variant_lookup(version, "created", "t", &created);
		g_variant_lookup(version, "uses", "t", &uses);
		g_variant_lookup(version, "stage", "&s", &stage);
		when = tkmsctl_format_time(created);
		/* the primary is marked: it is the one that protects new data */
		label = g_strdup_printf("%u%s", number, number == primary ? "*" : "");
		/* a password key's versions also have their stage, or "-" when they have none */
		if (stages)
			g_print("  %-6s %-18s %-9s created %s  uses %" G_GUINT64_FORMAT "\n", label,
				state, *stage != '\0' ? stage : "-", when, uses);
		else
			g_print("  %-6s %-18s created %s  uses %" G_GUINT64_FORMAT "\n", label,
				state, when, uses);
		print_version_events(version);
		g_variant_unref(version);
	}
	g_print("  (* primary)\n");
}

/* "90d (7776000 s)", or "none" for 0 */
static void
print_policy_line(const gchar *label, GVariant *policy, const gchar *member, gboolean duration)
{
	guint64 v = 0;

	g_variant_lookup(policy, member, "t", &v);
	if (v == 0) {
		g_print("  %-18s %s\n", label, _("none"));
	} else if (duration) {
		g_autofree gchar *text = tkmsctl_format_duration(v);
		g_print("  %-18s %s (%" G_GUINT64_FORMAT " s)\n", label, text, v);
	} else {
		g_print("  %-18s %" G_GUINT64_FORMAT "\n", label, v);
	}
}

void
tkmsctl_print_policy(GVariant *info)
{
	g_autoptr(GVariant) policy = g_variant_lookup_value(info, "policy", G_VARIANT_TYPE_VARDICT);
	guint64 next = 0;

	if (policy == NULL)
		policy = g_variant_ref_sink(g_variant_new("a{sv}", NULL));
	/* the labels are the options of 'tkmsctl policy set' */
	g_print("rotation policy:\n");
	print_policy_line("period:", policy, "period", TRUE);
	print_policy_line("max-uses:", policy, "max-uses", FALSE);
	print_policy_line("deactivate-after:", policy, "deactivate-after", TRUE);
	print_policy_line("destroy-after:", policy, "destroy-after", TRUE);
	/* only password keys take a hook */
	if (g_variant_lookup(info, "password", "@a{sv}", NULL)) {
		const gchar *hook = "";
		g_autofree gchar *text = NULL;

		g_variant_lookup(policy, "hook", "&s", &hook);
		text = tkmsctl_for_terminal(hook);
		g_print("  %-18s %s\n", "hook:", *hook != '\0' ? text : _("none"));
	}
	g_variant_lookup(info, "next-rotation", "t", &next);
	if (next != 0) {
		g_autofree gchar *when = tkmsctl_format_time(next);
		g_print("  %-18s %s\n", "next rotation:", when);
	}
}

/* The primary's state, or "destroy-scheduled (DATE)" with the earliest destruction. */
gchar *
tkmsctl_key_state(GVariant *info)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKeyInfo) key = tkms_key_info_new_from_variant(g_variant_ref(info), &error);
	const gchar *state;
	guint64 at;

	if (key == NULL)
		return g_strdup("?");
	state = tkms_key_info_get_state(key);
	at = tkms_key_info_get_destroy_at(key);
	if (g_strcmp0(state, "destroy-scheduled") == 0 && at != 0) {
		g_autofree gchar *when = tkmsctl_format_time(at);
		return g_strdup_printf("%s (%s)", state, when);
	}
	return g_strdup(state != NULL ? state : "?");
}

/* How the versions are generated: "32 characters, alnum-symbols, without \"'" */
static void
print_password_spec(GVariant *spec)
{
	g_autoptr(GString) line = g_string_new(NULL);
	const gchar *charset = NULL, *exclude = NULL;
	guint32 length = 0;

	if (g_variant_lookup(spec, "length", "u", &length))
		g_string_append_printf(line, _("%u characters"), length);
	if (g_variant_lookup(spec, "charset", "&s", &charset))
		g_string_append_printf(line, "%s%s", line->len > 0 ? ", " : "", charset);
	if (g_variant_lookup(spec, "exclude", "&s", &exclude) && *exclude != '\0') {
		g_autofree gchar *text = tkmsctl_for_terminal(exclude);

		g_string_append_printf(line, "%s", line->len > 0 ? ", " : "");
		g_string_append_printf(line, _("without %s"), text);
	}
	g_print("%-16s %s\n", "password:", line->str);
}

/* The rotation that runs: its step, its pending version and when it started. */
static void
print_rotation(GVariant *rotation)
{
	const gchar *step = "?";
	guint32 version = 0;
	guint64 started = 0;
	g_autofree gchar *when = NULL;

	g_variant_lookup(rotation, "step", "&s", &step);
	g_variant_lookup(rotation, "version", "u", &version);
	g_variant_lookup(rotation, "started", "t", &started);
	when = tkmsctl_format_time(started);
	g_print("%-16s ", "rotation:");
	g_print(_("at step %s, pending version %u, started %s"), step, version, when);
	g_print("\n");
}

/* The last rotation that ended, and after a failure, why and when tkmsd tries again. */
static void
print_last_rotation(GVariant *last)
{
	const gchar *result = "?", *step = "?", *reason = "";
	guint32 version = 0;
	guint64 time = 0, retry = 0;
	g_autofree gchar *when = NULL;

	g_variant_lookup(last, "result", "&s", &result);
	g_variant_lookup(last, "step", "&s", &step);
	g_variant_lookup(last, "version", "u", &version);
	g_variant_lookup(last, "time", "t", &time);
	g_variant_lookup(last, "reason", "&s", &reason);
	g_variant_lookup(last, "next-retry", "t", &retry);
	when = tkmsctl_format_time(time);
	g_print("%-16s ", "last rotation:");
	/* TRANSLATORS: RESULT (ok or failed) at step STEP, version N, TIME */
	g_print(_("%s at step %s, version %u, %s"), result, step, version, when);
	g_print("\n");
	if (*reason != '\0') {
		g_autofree gchar *text = tkmsctl_for_terminal_lines(reason, "                 ");
		g_print("%-16s %s\n", "  reason:", text);
	}
	if (retry != 0) {
		g_autofree gchar *again = tkmsctl_format_time(retry);
		g_print("%-16s %s\n", "  next retry:", again);
	}
}

/* Known members in a fixed order for people; anything newer printed as it comes. */
static void
print_key_info(GVariant *info)
{
	static const gchar *const known[] = {
		"name", "type", "protection", "owner", "created", "primary-version", "pcrs",
		"description", "versions", "policy", "next-rotation", "password", "rotation",
		"last-rotation", NULL,
	};
	GVariantIter iter;
	const gchar *key;
	GVariant *value;
	const gchar *s;
	guint32 u;
	guint64 t;

	if (g_variant_lookup(info, "name", "&s", &s))
		g_print("%-16s %s\n", "name:", s);
	if (g_variant_lookup(info, "type", "&s", &s))
		g_print("%-16s %s\n", "type:", s);
	if (g_variant_lookup(info, "protection", "&s", &s))
		g_print("%-16s %s\n", "protection:", s);
	if (g_variant_lookup(info, "owner", "u", &u))
		g_print("%-16s %u\n", "owner:", u);
	if (g_variant_lookup(info, "created", "t", &t)) {
		g_autofree gchar *when = tkmsctl_format_time(t);
		g_print("%-16s %s\n", "created:", when);
	}
	if (g_variant_lookup(info, "primary-version", "u", &u))
		g_print("%-16s %u\n", "primary version:", u);
	{
		g_autofree gchar *state = tkmsctl_key_state(info);
		g_print("%-16s %s\n", "state:", state);
	}
	if ((value = g_variant_lookup_value(info, "pcrs", G_VARIANT_TYPE("au"))) != NULL) {
		g_autofree gchar *pcrs = format_pcrs(value);
		g_print("%-16s %s\n", "pcrs:", pcrs);
		g_variant_unref(value);
	}
	if (g_variant_lookup(info, "description", "&s", &s) && *s != '\0') {
		g_autofree gchar *text = tkmsctl_for_terminal(s);
		g_print("%-16s %s\n", "description:", text);
	}
	if ((value = g_variant_lookup_value(info, "password", G_VARIANT_TYPE_VARDICT)) != NULL) {
		print_password_spec(value);
		g_variant_unref(value);
	}
	if ((value = g_variant_lookup_value(info, "rotation", G_VARIANT_TYPE_VARDICT)) != NULL) {
		print_rotation(value);
		g_variant_unref(value);
	}
	if ((value = g_variant_lookup_value(info, "last-rotation", G_VARIANT_TYPE_VARDICT)) !=
	    NULL) {
		print_last_rotation(value);
		g_variant_unref(value);
	}

	g_variant_iter_init(&iter, info);
	while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
		if (!g_strv_contains(known, key)) {
			g_autofree gchar *text = g_variant_print(value, FALSE);
			g_autofree gchar *label = g_strconcat(key, ":", NULL);
			g_print("%-16s %s\n", label, text);
		}
		g_variant_unref(value);
	}

	if (g_variant_lookup(info, "policy", "@a{sv}", NULL))
		tkmsctl_print_policy(info);
	if ((value = g_variant_lookup_value(info, "versions", G_VARIANT_TYPE("aa{sv}"))) != NULL) {
		if (!g_variant_lookup(info, "primary-version", "u", &u))
			u = 0;
		print_versions(value, u);
		g_variant_unref(value);
	}
}

/* The members that are times (Unix seconds on the bus); 0 is "never" (null). */
static const gchar *const time_members[] = {
	"created",    "activated", "activate-at", "superseded",    "deactivated",
	"destroy-at", "destroyed", "next-rotation",
};

/* ... and in a password key's `rotation` and `last-rotation` */
static const gchar *const rotation_time_members[] = {"started", "time", "next-retry"};

static void
json_members_to_iso(JsonObject *obj, const gchar *const *members, guint n_members)
{
	for (guint i = 0; i < n_members; i++) {
		JsonNode *t = json_object_get_member(obj, members[i]);
		g_autofree gchar *when = NULL;

		if (t == NULL || json_node_get_value_type(t) != G_TYPE_INT64)
			continue;
		if (json_node_get_int(t) == 0) {
			json_object_set_null_member(obj, members[i]);
			continue;
		}
		when = tkmsctl_format_time((guint64)json_node_get_int(t));
		json_object_set_string_member(obj, members[i], when);
	}
}

/* Times as ISO 8601 in JSON too, in keys, their versions and their rotations. */
static void
json_times_to_iso(JsonNode *node)
{
	if (JSON_NODE_HOLDS_ARRAY(node)) {
		JsonArray *arr = json_node_get_array(node);

		for (guint i = 0; i < json_array_get_length(arr); i++)
			json_times_to_iso(json_array_get_element(arr, i));
	} else if (JSON_NODE_HOLDS_OBJECT(node)) {
		JsonObject *obj = json_node_get_object(node);
		static const gchar *const rotations[] = {"rotation", "last-rotation"};

		json_members_to_iso(obj, time_members, G_N_ELEMENTS(time_members));
		for (guint i = 0; i < G_N_ELEMENTS(rotations); i++) {
			JsonNode *r = json_object_get_member(obj, rotations[i]);

			if (r != NULL && JSON_NODE_HOLDS_OBJECT(r))
				json_members_to_iso(json_node_get_object(r), rotation_time_members,
						    G_N_ELEMENTS(rotation_time_members));
		}
		if (json_object_has_member(obj, "versions"))
			json_times_to_iso(json_object_get_member(obj, "versions"));
	}
}

JsonNode *
tkmsctl_key_info_to_json(GVariant *info)
{
	JsonNode *node = json_gvariant_serialize(info);

	json_times_to_iso(node);
	return node;
}

static int
output_info(Tkmsctl *ctl, GVariant *info)
{
	if (ctl->json)
		tkmsctl_print_json(tkmsctl_key_info_to_json(info));
	else
		print_key_info(info);
	return TKMSCTL_EXIT_OK;
}

static const gchar *const key_types[] = {
	"aes-256-gcm",
	"hmac-sha256",
	"ecdsa-p256",
	"rsa-2048",
	"password",
	NULL,
};

static const gchar *const charsets[] = {
	"alnum",
	"alnum-symbols",
	"hex",
	"base64url",
	NULL,
};

/* --length, --charset and --exclude into @options; an exit code, TKMSCTL_EXIT_OK if fine. */
static int
add_password_options(const gchar *type, GVariantBuilder *options)
{
	guint64 length;

	if (!g_str_equal(type, "password")) {
		if (opt_length == NULL && opt_charset == NULL && opt_exclude == NULL)
			return TKMSCTL_EXIT_OK;
		return tkmsctl_usage("create",
				     _("--length, --charset and --exclude are for password keys, "
				       "not %s"),
				     type);
	}
	if (opt_length != NULL) {
		/* the range (8-256) is tkmsd's to check and to explain */
		if (!g_ascii_string_to_unsigned(opt_length, 10, 1, G_MAXUINT32, &length, NULL))
			return tkmsctl_usage("create",
					     _("invalid --length '%s': give a number of characters"),
					     opt_length);
		g_variant_builder_add(options, "{sv}", "length",
				      g_variant_new_uint32((guint32)length));
	}
	if (opt_charset != NULL) {
		if (!g_strv_contains(charsets, opt_charset)) {
			g_autofree gchar *all = g_strjoinv(", ", (gchar **)charsets);
			g_autofree gchar *hint = g_strdup_printf(_("Character sets: %s."), all);

			return tkmsctl_usage_with_hint(hint, _("unknown character set '%s'"),
						       opt_charset);
		}
		g_variant_builder_add(options, "{sv}", "charset",
				      g_variant_new_string(opt_charset));
	}
	if (opt_exclude != NULL)
		g_variant_builder_add(options, "{sv}", "exclude",
				      g_variant_new_string(opt_exclude));
	return TKMSCTL_EXIT_OK;
}

static int
run_create(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GError) error = NULL;
	GVariantBuilder options;
	int code;

	if (!g_strv_contains(key_types, args[1])) {
		g_autofree gchar *types = g_strjoinv(", ", (gchar **)key_types);
		g_autofree gchar *hint = g_strdup_printf(_("Key types: %s."), types);

		return tkmsctl_usage_with_hint(hint, _("unknown key type '%s'"), args[1]);
	}
	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	if ((code = add_password_options(args[1], &options)) != TKMSCTL_EXIT_OK) {
		g_variant_builder_clear(&options);
		return code;
	}
	if (opt_protection != NULL)
		g_variant_builder_add(&options, "{sv}", "protection",
				      g_variant_new_string(opt_protection));
	if (opt_pcrs != NULL) {
		g_autoptr(GVariant) pcrs = NULL;
		if (!tkmsctl_parse_pcrs("create", opt_pcrs, &pcrs)) {
			g_variant_builder_clear(&options);
			return TKMSCTL_EXIT_USAGE;
		}
		g_variant_builder_add(&options, "{sv}", "pcrs", pcrs);
	}
	if (opt_description != NULL)
		g_variant_builder_add(&options, "{sv}", "description",
				      g_variant_new_string(opt_description));

	info = tkms_client_create_key_sync(ctl->client, args[0], args[1],
					   g_variant_builder_end(&options), NULL, &error);
	if (info == NULL)
		return tkmsctl_fail(error);
	return output_info(ctl, info);
}

/* As OWNER:NAME takes it: "system" for uid 0, else the uid. */
static gchar *
format_owner(GVariant *key)
{
	guint32 owner;

	if (!g_variant_lookup(key, "owner", "u", &owner))
		return g_strdup("?");
	return owner == 0 ? g_strdup("system") : g_strdup_printf("%u", owner);
}

static void
print_key_table(GPtrArray *keys, gboolean show_owner)
{
	gint w_owner = 5, w_name = 4, w_type = 4, w_prot = 10, w_state = 5;

	for (guint i = 0; i < keys->len; i++) {
		GVariant *key = tkms_key_info_get_variant(g_ptr_array_index(keys, i));
		g_autofree gchar *owner = format_owner(key);
		g_autofree gchar *state = tkmsctl_key_state(key);
		const gchar *s;

		w_owner = MAX(w_owner, (gint)strlen(owner));
		w_state = MAX(w_state, (gint)strlen(state));
		if (g_variant_lookup(key, "name", "&s", &s))
			w_name = MAX(w_name, (gint)strlen(s));
		if (g_variant_lookup(key, "type", "&s", &s))
			w_type = MAX(w_type, (gint)strlen(s));
		if (g_variant_lookup(key, "protection", "&s", &s))
			w_prot = MAX(w_prot, (gint)strlen(s));
	}
	if (keys->len == 0)
		return;
	/* column titles stay English: scripts and the docs read them */
	if (show_owner)
		g_print("%-*s  ", w_owner, "OWNER");
	g_print("%-*s  %-*s  %-*s  %-7s  %-*s  %s\n", w_name, "NAME", w_type, "TYPE", w_prot,
		"PROTECTION", "VERSION", w_state, "STATE", "CREATED");
	for (guint i = 0; i < keys->len; i++) {
		GVariant *key = tkms_key_info_get_variant(g_ptr_array_index(keys, i));
		g_autofree gchar *owner = format_owner(key);
		g_autofree gchar *state = tkmsctl_key_state(key);
		const gchar *name = "", *type = "", *prot = "";
		guint32 version = 0;
		guint64 created = 0;
		g_autofree gchar *when = NULL;

		g_variant_lookup(key, "name", "&s", &name);
		g_variant_lookup(key, "type", "&s", &type);
		g_variant_lookup(key, "protection", "&s", &prot);
		g_variant_lookup(key, "primary-version", "u", &version);
		g_variant_lookup(key, "created", "t", &created);
		when = tkmsctl_format_time(created);
		if (show_owner)
			g_print("%-*s  ", w_owner, owner);
		g_print("%-*s  %-*s  %-*s  %-7u  %-*s  %s\n", w_name, name, w_type, type, w_prot,
			prot, version, w_state, state, when);
	}
}

/* Pages through ListKeysPage (ListAllKeysPage with --all): no reply is too big for the bus
 * however many keys there are. */
static int
run_list(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(GPtrArray) keys = NULL;
	g_autoptr(GError) error = NULL;

	keys = tkms_client_collect_keys_sync(ctl->client, opt_all, ctl->page_size, NULL, &error);
	if (keys == NULL)
		return tkmsctl_fail(error);
	if (ctl->json) {
		JsonArray *arr = json_array_sized_new(keys->len);
		JsonNode *root = json_node_new(JSON_NODE_ARRAY);

		for (guint i = 0; i < keys->len; i++)
			json_array_add_element(arr, tkmsctl_key_info_to_json(tkms_key_info_get_variant(
							    g_ptr_array_index(keys, i))));
		json_node_take_array(root, arr);
		tkmsctl_print_json(root);
	} else if (keys->len == 0) {
		g_print("%s\n", opt_all ? _("No keys, of any owner.") : _("You have no keys."));
		g_print(_("Create one with: tkmsctl create NAME TYPE (TYPE one of %s)\n"),
			"aes-256-gcm, hmac-sha256, ecdsa-p256, rsa-2048, password");
	} else {
		print_key_table(keys, opt_all);
	}
	return TKMSCTL_EXIT_OK;
}

static int
run_info(Tkmsctl *ctl, gchar **args)
{
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GError) error = NULL;

	info = tkms_client_get_key_info_sync(ctl->client, args[0], NULL, &error);
	if (info == NULL)
		return tkmsctl_fail(error);
	return output_info(ctl, info);
}

static int
run_pubkey(Tkmsctl *ctl, gchar **args)
{
	g_autofree gchar *pem = NULL;
	g_autoptr(GError) error = NULL;

	pem = tkms_client_get_public_key_sync(ctl->client, args[0], NULL, &error);
	if (pem == NULL)
		return tkmsctl_fail(error);
	if (ctl->json) {
		g_autoptr(JsonBuilder) builder = json_builder_new();

		json_builder_begin_object(builder);
		json_builder_set_member_name(builder, "pem");
		json_builder_add_string_value(builder, pem);
		json_builder_end_object(builder);
		if (!tkmsctl_write_json(opt_out, json_builder_get_root(builder), &error))
			return tkmsctl_fail(error);
	} else if (!tkmsctl_write_file(opt_out, pem, strlen(pem), &error)) {
		return tkmsctl_fail(error);
	}
	return TKMSCTL_EXIT_OK;
}

static const GOptionEntry create_entries[] = {
	{"protection", 'p', 0, G_OPTION_ARG_STRING, &opt_protection,
	 N_("Protection level: 'sealed' (aes-256-gcm) or 'tpm' (the others); the default fits "
	    "TYPE"),
	 "P"},
	{"pcrs", 0, 0, G_OPTION_ARG_STRING, &opt_pcrs,
	 N_("Bind every use of the key to the current values of these SHA-256 PCRs"), "0,7"},
	{"description", 'd', 0, G_OPTION_ARG_STRING, &opt_description,
	 N_("A note for people (at most 256 bytes)"), "D"},
	{"length", 'l', 0, G_OPTION_ARG_STRING, &opt_length,
	 N_("password: characters per generated password, 8 to 256 (default 32)"), "N"},
	{"charset", 0, 0, G_OPTION_ARG_STRING, &opt_charset,
	 N_("password: alnum, alnum-symbols (default), hex or base64url"), N_("SET")},
	{"exclude", 0, 0, G_OPTION_ARG_STRING, &opt_exclude,
	 N_("password: characters never to use, e.g. quotes a target rejects"), N_("CHARS")},
	{NULL},
};

static const GOptionEntry list_entries[] = {
	{"all", 0, 0, G_OPTION_ARG_NONE, &opt_all,
	 N_("List every owner's keys, with an OWNER column (needs the admin action)"), NULL},
	{NULL},
};

static const GOptionEntry pubkey_entries[] = {
	{"out", 'o', 0, G_OPTION_ARG_FILENAME, &opt_out,
	 N_("Write the PEM to FILE instead of standard output"), "FILE"},
	{NULL},
};

const TkmsctlCommand tkmsctl_key_commands[] = {
	{"create", "NAME TYPE", N_("Create a key in the TPM"),
	 N_("TYPE is one of aes-256-gcm, hmac-sha256, ecdsa-p256, rsa-2048, password.\n"
	    "A password key holds a service's password, generated from the TPM's random number\n"
	    "generator (--length, --charset, --exclude) and sealed; read it with 'tkmsctl\n"
	    "secret get', bring an existing one with 'tkmsctl secret import'.\n"
	    "Prints the new key's info (JSON with --json)."),
	 create_entries, 2, 2, TRUE, run_create},
	{"list", "", N_("List your keys (--all: every owner's)"),
	 N_("STATE is the state of the key's primary version, or 'destroy-scheduled (DATE)'\n"
	    "when its destruction is scheduled.\n"
	    "With --all, the keys of every owner, sorted by owner, then name; OWNER is 'system'\n"
	    "for uid 0, else the uid, as OWNER:NAME takes it. This needs the polkit action\n"
	    "org.tkms.KeyManager.admin. Keys are read a page at a time, however many there are.\n"
	    "With --json: an array of key info objects (each has \"owner\", a uid)."),
	 list_entries, 0, 0, TRUE, run_list},
	{"info", "NAME", N_("Show a key's info: versions, states, dates, policy"),
	 N_("Lists every version with its state, its dates (created, activated, superseded,\n"
	    "deactivated, destroy-at, destroyed) and how many messages it protected; '*' marks\n"
	    "the primary. Shows the rotation policy and the next rotation. For a password key\n"
	    "also how its passwords are generated, the rotation that runs (its step), the last\n"
	    "one that ended (with the hook's reason and the next retry after a failure) and\n"
	    "each version's stage: current, pending or previous. With --json: the key info\n"
	    "object, times in ISO 8601 (null: never)."),
	 NULL, 1, 1, TRUE, run_info},
	{"pubkey", "NAME", N_("Print the public key of a signing key (PEM)"),
	 N_("Verify signatures with: openssl dgst -sha256 -verify PUBKEY.pem -signature SIG FILE"),
	 pubkey_entries, 1, 1, TRUE, run_pubkey},
	{NULL},
};
