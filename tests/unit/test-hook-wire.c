/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-hook-wire"

/* The messages between tkmsd and its hook launcher (daemon/hook-launcher-wire.c): the launcher
 * keeps the privileges tkmsd drops and trusts nothing tkmsd sends, so every field and length
 * of a message is checked before anything is done with it. */

#include <string.h>

#include "hook-launcher-wire.h"
#include "tkms-error.h"

/* header + name + data in one buffer */
static GByteArray *
message(const TkmsHookWireHeader *h, const gchar *name, gsize data_len)
{
	GByteArray *m = g_byte_array_new();
	guint8 *data = g_malloc0(MAX(data_len, 1));

	g_byte_array_append(m, (const guint8 *)h, sizeof(*h));
	if (name != NULL)
		g_byte_array_append(m, (const guint8 *)name, strlen(name));
	g_byte_array_append(m, data, data_len);
	g_free(data);
	return m;
}

static gboolean
parses(const GByteArray *m, TkmsHookWireHeader *out)
{
	g_autoptr(GError) error = NULL;
	TkmsHookWireHeader h;
	const guint8 *name = NULL, *data = NULL;
	gboolean ok = tkms_hook_wire_parse(m->data, m->len, &h, &name, &data, &error);

	if (!ok) {
		g_assert_error(error, TKMS_ERROR, TKMS_ERROR_FAILED);
		g_test_message("refused: %s", error->message);
		return FALSE;
	}
	g_assert_no_error(error);
	g_assert_true(name == m->data + sizeof(h));
	g_assert_true(data == m->data + sizeof(h) + h.name_len);
	if (out != NULL)
		*out = h;
	return TRUE;
}

static TkmsHookWireHeader
run_header(const gchar *name, gsize data_len)
{
	TkmsHookWireHeader h = {.type = TKMS_HOOK_WIRE_RUN,
				.id = 7,
				.step = 2,
				.timeout = 60,
				.name_len = strlen(name),
				.data_len = data_len};
	return h;
}

static void
assert_refused(const TkmsHookWireHeader *h, const gchar *name, gsize data_len)
{
	g_autoptr(GByteArray) m = message(h, name, data_len);
	g_assert_false(parses(m, NULL));
}

static void
test_run(void)
{
	TkmsHookWireHeader h = run_header("postgresql", 100), got;
	g_autoptr(GByteArray) m = message(&h, "postgresql", 100);
	g_autoptr(GByteArray) biggest = NULL;

	g_assert_true(parses(m, &got));
	g_assert_cmpuint(got.id, ==, 7);
	g_assert_cmpstr(tkms_hook_wire_step_name(got.step), ==, "finish");
	g_assert_cmpuint(got.timeout, ==, 60);

	/* the longest input there is, and one byte more */
	h = run_header("h", TKMS_HOOK_WIRE_INPUT_MAX);
	biggest = message(&h, "h", TKMS_HOOK_WIRE_INPUT_MAX);
	g_assert_true(parses(biggest, NULL));
	g_assert_cmpuint(biggest->len, <=, TKMS_HOOK_WIRE_MESSAGE_MAX);
	h.data_len++;
	assert_refused(&h, "h", TKMS_HOOK_WIRE_INPUT_MAX + 1);

	/* a step, a timeout, a name length out of range */
	h = run_header("h", 10);
	h.step = 4;
	assert_refused(&h, "h", 10);
	h.step = G_MAXUINT32;
	assert_refused(&h, "h", 10);
	h = run_header("h", 10);
	h.timeout = 0;
	assert_refused(&h, "h", 10);
	h.timeout = TKMS_HOOK_WIRE_TIMEOUT_MAX + 1;
	assert_refused(&h, "h", 10);
	h = run_header("", 10);
	assert_refused(&h, "", 10);
	{
		g_autofree gchar *long_name = g_strnfill(65, 'a');
		h = run_header(long_name, 10);
		assert_refused(&h, long_name, 10);
	}
}

/* The lengths must add up to what arrived: no more, no less, no overflow. */
static void
test_lengths(void)
{
	TkmsHookWireHeader h = run_header("hook", 10);
	g_autoptr(GByteArray) m = message(&h, "hook", 10);

	g_assert_true(parses(m, NULL));
	for (guint cut = 0; cut < m->len; cut++) {
		g_autoptr(GByteArray) shorter = g_byte_array_sized_new(cut);
		g_byte_array_append(shorter, m->data, cut);
		g_assert_false(parses(shorter, NULL));
	}
	g_byte_array_append(m, (const guint8 *)"x", 1);
	g_assert_false(parses(m, NULL));

	/* lengths that would wrap a 32-bit sum */
	h.name_len = G_MAXUINT32;
	h.data_len = 2;
	assert_refused(&h, "hook", 10);
}

static void
test_cancel_and_done(void)
{
	TkmsHookWireHeader cancel = {.type = TKMS_HOOK_WIRE_CANCEL, .id = 3};
	TkmsHookWireHeader done = {.type = TKMS_HOOK_WIRE_DONE,
				   .id = 3,
				   .outcome = TKMS_HOOK_WIRE_ENDED,
				   .data_len = TKMS_HOOK_WIRE_STDERR_MAX};
	g_autoptr(GByteArray) m1 = message(&cancel, NULL, 0);
	g_autoptr(GByteArray) m2 = message(&done, NULL, TKMS_HOOK_WIRE_STDERR_MAX);

	g_assert_true(parses(m1, NULL));
	g_assert_true(parses(m2, NULL));

	cancel.data_len = 1;
	assert_refused(&cancel, NULL, 1);
	done.data_len++;
	assert_refused(&done, NULL, TKMS_HOOK_WIRE_STDERR_MAX + 1);
	/* why it did not run: a shorter limit */
	done.outcome = TKMS_HOOK_WIRE_NOT_RUN;
	done.data_len = TKMS_HOOK_WIRE_TEXT_MAX + 1;
	assert_refused(&done, NULL, TKMS_HOOK_WIRE_TEXT_MAX + 1);
	done.outcome = 0;
	done.data_len = 0;
	assert_refused(&done, NULL, 0);
	done.outcome = TKMS_HOOK_WIRE_NOT_RUN + 1;
	assert_refused(&done, NULL, 0);
	done.outcome = TKMS_HOOK_WIRE_ENDED;
	done.name_len = 1;
	assert_refused(&done, "x", 0);

	/* no other type */
	cancel.type = 0;
	cancel.data_len = 0;
	assert_refused(&cancel, NULL, 0);
	cancel.type = TKMS_HOOK_WIRE_DONE + 1;
	assert_refused(&cancel, NULL, 0);
}

static void
test_steps(void)
{
	const gchar *steps[] = {"set", "test", "finish", "rollback"};

	for (guint i = 0; i < G_N_ELEMENTS(steps); i++) {
		g_assert_cmpint(tkms_hook_wire_step_from_name(steps[i]), ==, i);
		g_assert_cmpstr(tkms_hook_wire_step_name(i), ==, steps[i]);
	}
	g_assert_cmpint(tkms_hook_wire_step_from_name("install"), ==, -1);
	g_assert_cmpint(tkms_hook_wire_step_from_name(""), ==, -1);
	g_assert_cmpint(tkms_hook_wire_step_from_name(NULL), ==, -1);
	g_assert_null(tkms_hook_wire_step_name(4));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/hook-wire/run", test_run);
	g_test_add_func("/hook-wire/lengths", test_lengths);
	g_test_add_func("/hook-wire/cancel-and-done", test_cancel_and_done);
	g_test_add_func("/hook-wire/steps", test_steps);
	return g_test_run();
}
