/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-keyname"

/* The key-name rule ([A-Za-z0-9._-]{1,64}, not starting with a dot) and OWNER:NAME parsing
 * (OWNER a uid number or "system"), as every key-name argument of the API is read. */

#include <string.h>

#include "key-ref.h"
#include "key.h"
#include "tkms-error.h"

#define CALLER 1000

static void
test_name_rule(void)
{
	g_autofree gchar *max = g_strnfill(TKMS_KEY_NAME_MAX, 'a');
	g_autofree gchar *over = g_strnfill(TKMS_KEY_NAME_MAX + 1, 'a');
	const gchar *good[] = {"a", "A", "0", "my-key", "my_key", "my.key", "a.", "-x", "_",
			       "Key.2024_01-a", max};
	const gchar *bad[] = {"", ".", ".hidden", "..", "a b", "a/b", "../etc", "a:b", "ä",
			      "k\xc3\xa9", "tab\t", "nl\n", "a\\b", "*", "a$", over};

	for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
		g_autofree gchar *shown = g_strescape(good[i], NULL);
		g_test_message("good: %s", shown);
		g_assert_true(tkms_key_name_is_valid(good[i]));
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree gchar *shown = g_strescape(bad[i], NULL);
		g_test_message("bad: %s", shown);
		g_assert_false(tkms_key_name_is_valid(bad[i]));
	}
}

static void
assert_parses(const gchar *text, guint32 owner, const gchar *name)
{
	g_auto(TkmsKeyRef) ref = {0};
	g_autoptr(GError) error = NULL;

	g_autofree gchar *shown = g_strescape(text, NULL);

	g_test_message("parse: %s", shown);
	g_assert_true(tkms_key_ref_parse(&ref, text, CALLER, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(ref.owner, ==, owner);
	g_assert_cmpstr(ref.name, ==, name);
	g_assert_cmpstr(tkms_key_ref_audit_text(&ref), ==, text);
}

static void
assert_bad_owner(const gchar *text)
{
	g_auto(TkmsKeyRef) ref = {0};
	g_autoptr(GError) error = NULL;

	g_autofree gchar *shown = g_strescape(text, NULL);

	g_test_message("bad owner: %s", shown);
	g_assert_false(tkms_key_ref_parse(&ref, text, CALLER, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
	/* the refusal's audit record still names what was asked for */
	g_assert_nonnull(tkms_key_ref_audit_text(&ref));
	g_assert_true(g_utf8_validate(tkms_key_ref_audit_text(&ref), -1, NULL));
}

static void
test_owner_name(void)
{
	/* no OWNER: the caller's key */
	assert_parses("backup", CALLER, "backup");
	/* uid numbers and "system" (uid 0) */
	assert_parses("0:backup", 0, "backup");
	assert_parses("system:backup", 0, "backup");
	assert_parses("1000:k", 1000, "k");
	assert_parses("65534:k", 65534, "k");
	assert_parses("4294967294:k", G_MAXUINT32 - 1, "k");
	/* leading zeros are still a number */
	assert_parses("0001000:k", 1000, "k");
	/* only the first colon separates: the name is checked later, by the name rule */
	assert_parses("1000:a:b", 1000, "a:b");
	/* an empty NAME is the name rule's to refuse, after authorization */
	assert_parses("1000:", 1000, "");
	g_assert_false(tkms_key_name_is_valid(""));
	assert_parses("", CALLER, "");
}

static void
test_bad_owner(void)
{
	g_autofree gchar *long_owner = g_strnfill(4096, '9');
	g_autofree gchar *long_text = g_strconcat(long_owner, ":k", NULL);

	assert_bad_owner(":k"); /* empty OWNER */
	assert_bad_owner(":");
	assert_bad_owner("root:k"); /* names other than "system" are not owners */
	assert_bad_owner("System:k");
	assert_bad_owner("system :k");
	assert_bad_owner(" 1000:k");
	assert_bad_owner("-1:k");
	assert_bad_owner("+1000:k");
	assert_bad_owner("0x10:k");
	assert_bad_owner("1e3:k");
	assert_bad_owner("1000 :k");
	/* overflow: past uint32, and (uid_t)-1, which is no uid */
	assert_bad_owner("4294967295:k");
	assert_bad_owner("4294967296:k");
	assert_bad_owner("18446744073709551617:k");
	assert_bad_owner(long_text);
	assert_bad_owner("\xff\xfe:k"); /* not UTF-8 */
}

/* Whatever the bytes, the audit text is bounded and valid UTF-8. */
static void
test_audit_text(void)
{
	g_autofree gchar *long_name = g_strnfill(10000, 'x');
	g_auto(TkmsKeyRef) ref = {0};
	g_auto(TkmsKeyRef) bad = {0};
	g_auto(TkmsKeyRef) own = {0};
	g_autoptr(GError) error = NULL;

	g_assert_true(tkms_key_ref_parse(&ref, long_name, CALLER, &error));
	g_assert_cmpuint(strlen(tkms_key_ref_audit_text(&ref)), <=, TKMS_KEY_NAME_MAX + 1);
	g_assert_cmpuint(strlen(ref.name), ==, 10000);
	g_assert_false(tkms_key_name_is_valid(ref.name));

	g_assert_true(tkms_key_ref_parse(&bad, "k\xc3", CALLER, &error));
	g_assert_true(g_utf8_validate(tkms_key_ref_audit_text(&bad), -1, NULL));
	g_assert_false(tkms_key_name_is_valid(bad.name));

	/* a reference made by tkmsd itself is audited by its name */
	tkms_key_ref_init(&own, 0, "rotated");
	g_assert_cmpstr(tkms_key_ref_audit_text(&own), ==, "rotated");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/keyname/rule", test_name_rule);
	g_test_add_func("/keyname/owner-name", test_owner_name);
	g_test_add_func("/keyname/bad-owner", test_bad_owner);
	g_test_add_func("/keyname/audit-text", test_audit_text);
	return g_test_run();
}
