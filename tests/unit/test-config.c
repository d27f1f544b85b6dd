/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-config"

/* tkmsd.conf: defaults, every key, bad values refused with an error that names the key, and a
 * missing file. */

#include <glib/gstdio.h>
#include <string.h>

#include "tkms-config.h"
#include "tkms-error.h"

typedef struct {
	gchar *dir;
	gchar *path;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	f->dir = g_dir_make_tmp("tkms-config-XXXXXX", &error);
	g_assert_no_error(error);
	f->path = g_build_filename(f->dir, "tkmsd.conf", NULL);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	g_unlink(f->path);
	g_rmdir(f->dir);
	g_free(f->path);
	g_free(f->dir);
}

static TkmsConfig *
load_text(Fixture *f, const gchar *text, GError **error)
{
	g_assert_true(g_file_set_contents(f->path, text, -1, NULL));
	return tkms_config_load(f->path, TRUE, error);
}

static void
assert_defaults(const TkmsConfig *c)
{
	g_assert_null(c->tcti); /* main.c then applies --tcti, $TKMS_TCTI, the device */
	g_assert_cmpuint(c->tpm_timeout, ==, 90);
	g_assert_cmpuint(c->max_loaded_objects, ==, 64);
	g_assert_cmpuint(c->max_payload, ==, TKMS_DEFAULT_MAX_PAYLOAD);
	g_assert_cmpuint(c->max_in_flight_per_caller, ==, 64);
	g_assert_cmpuint(c->max_in_flight_per_user, ==, 256);
	g_assert_cmpuint(c->max_keys_per_user, ==, 10000);
	g_assert_cmpuint(c->key_ttl, ==, 30);
	g_assert_cmpuint(c->auth_ttl, ==, 60);
	g_assert_cmpuint(c->destroy_wait, ==, 604800);
	g_assert_true(c->count_uses);
	g_assert_false(c->allow_resettable_pcrs);
	g_assert_cmpstr(c->hook_directory, ==, "/etc/tkms/hooks.d");
	g_assert_cmpstr(c->hook_user, ==, "nobody");
	g_assert_cmpuint(c->hook_timeout, ==, 60);
	g_assert_cmpuint(c->audit_segment_size, ==, 16 * 1024 * 1024);
	g_assert_cmpuint(c->audit_keep_segments, ==, 8);
	g_assert_false(c->require_locked_memory);
}

static void
test_missing(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsConfig) optional = tkms_config_load(f->path, FALSE, &error);
	g_autoptr(TkmsConfig) required = NULL;

	/* the default path may be absent: defaults */
	g_assert_no_error(error);
	g_assert_nonnull(optional);
	assert_defaults(optional);
	/* --config FILE must exist */
	required = tkms_config_load(f->path, TRUE, &error);
	g_assert_null(required);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, f->path));
}

static void
test_empty(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsConfig) c = load_text(f, "# nothing set\n[tpm]\n[limits]\n", &error);

	g_assert_no_error(error);
	assert_defaults(c);
}

/* The shipped data/tkmsd.conf has every key commented out: it means the defaults. */
static void
test_shipped(Fixture *f, gconstpointer data)
{
	g_autofree gchar *shipped = g_test_build_filename(G_TEST_DIST, "..", "..", "data",
							   "tkmsd.conf", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsConfig) c = tkms_config_load(shipped, TRUE, &error);

	g_assert_no_error(error);
	assert_defaults(c);
}

static void
test_every_key(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsConfig) c = load_text(f,
					    "[tpm]\n"
					    "Tcti= swtpm:host=127.0.0.1,port=2321 \n"
					    "CommandTimeout=5\n"
					    "MaxLoadedObjects=0\n"
					    "[limits]\n"
					    "MaxPayload=65536\n"
					    "MaxInFlightPerCaller=2\n"
					    "MaxInFlightPerUser=3\n"
					    "MaxKeysPerUser=0\n"
					    "[cache]\n"
					    "KeyTtl=0\n"
					    "AuthorizationTtl=7\n"
					    "[audit]\n"
					    "SegmentSize=1048576\n"
					    "KeepSegments=30\n",
					    &error);

	g_assert_no_error(error);
	g_assert_cmpstr(c->tcti, ==, "swtpm:host=127.0.0.1,port=2321");
	g_assert_cmpuint(c->tpm_timeout, ==, 5);
	g_assert_cmpuint(c->max_loaded_objects, ==, 0);
	g_assert_cmpuint(c->max_payload, ==, 65536);
	g_assert_cmpuint(c->max_in_flight_per_caller, ==, 2);
	g_assert_cmpuint(c->max_in_flight_per_user, ==, 3);
	g_assert_cmpuint(c->max_keys_per_user, ==, 0);
	g_assert_cmpuint(c->key_ttl, ==, 0);
	g_assert_cmpuint(c->auth_ttl, ==, 7);
	g_assert_cmpuint(c->audit_segment_size, ==, 1048576);
	g_assert_cmpuint(c->audit_keep_segments, ==, 30);
}

static void
test_limits_of_ranges(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsConfig) c = load_text(f,
					    "[tpm]\nCommandTimeout=3600\nMaxLoadedObjects=64\n"
					    "[limits]\nMaxPayload=67108864\n"
					    "MaxKeysPerUser=4294967295\n"
					    "[cache]\nKeyTtl=86400\n"
					    "[audit]\nSegmentSize=4294967296\nKeepSegments=10000\n",
					    &error);
	g_autoptr(TkmsConfig) low = NULL;

	g_assert_no_error(error);
	g_assert_cmpuint(c->tpm_timeout, ==, 3600);
	g_assert_cmpuint(c->max_loaded_objects, ==, 64);
	g_assert_cmpuint(c->max_payload, ==, 64 * 1024 * 1024);
	g_assert_cmpuint(c->max_keys_per_user, ==, G_MAXUINT32);
	g_assert_cmpuint(c->key_ttl, ==, 86400);
	g_assert_cmpuint(c->audit_segment_size, ==, G_GUINT64_CONSTANT(4294967296));
	g_assert_cmpuint(c->audit_keep_segments, ==, 10000);
	low = load_text(f, "[audit]\nSegmentSize=65536\nKeepSegments=1\n", &error);
	g_assert_no_error(error);
	g_assert_cmpuint(low->audit_segment_size, ==, 65536);
	g_assert_cmpuint(low->audit_keep_segments, ==, 1);
}

static void
test_bad_values(Fixture *f, gconstpointer data)
{
	const struct {
		const gchar *text;
		const gchar *key; /* the error names it */
	} cases[] = {
		{"[tpm]\nCommandTimeout=0\n", "CommandTimeout"},
		{"[tpm]\nCommandTimeout=3601\n", "CommandTimeout"},
		{"[tpm]\nCommandTimeout=ninety\n", "CommandTimeout"},
		{"[tpm]\nMaxLoadedObjects=65\n", "MaxLoadedObjects"},
		{"[tpm]\nMaxLoadedObjects=-1\n", "MaxLoadedObjects"},
		{"[limits]\nMaxPayload=0\n", "MaxPayload"},
		{"[limits]\nMaxPayload=67108865\n", "MaxPayload"},
		{"[limits]\nMaxPayload=-1\n", "MaxPayload"},
		{"[limits]\nMaxPayload=1M\n", "MaxPayload"},
		{"[limits]\nMaxInFlightPerCaller=0\n", "MaxInFlightPerCaller"},
		{"[limits]\nMaxInFlightPerUser=1000001\n", "MaxInFlightPerUser"},
		{"[limits]\nMaxKeysPerUser=4294967296\n", "MaxKeysPerUser"},
		{"[limits]\nMaxKeysPerUser=\n", "MaxKeysPerUser"},
		{"[limits]\nMaxKeysPerUser=1.5\n", "MaxKeysPerUser"},
		{"[limits]\nMaxKeysPerUser=0x10\n", "MaxKeysPerUser"},
		{"[cache]\nKeyTtl=86401\n", "KeyTtl"},
		{"[lifecycle]\nDestroyWaitingPeriod=31622401\n", "DestroyWaitingPeriod"},
		{"[lifecycle]\nDestroyWaitingPeriod=-1\n", "DestroyWaitingPeriod"},
		{"[lifecycle]\nDestroyWaitingPeriod=7d\n", "DestroyWaitingPeriod"},
		{"[lifecycle]\nCountUses=maybe\n", "CountUses"},
		{"[cache]\nAuthorizationTtl=99999999999999999999999\n", "AuthorizationTtl"},
		{"[passwords]\nHookTimeout=0\n", "HookTimeout"},
		{"[passwords]\nHookTimeout=3601\n", "HookTimeout"},
		{"[passwords]\nHookTimeout=1m\n", "HookTimeout"},
		{"[passwords]\nHookDirectory=hooks.d\n", "HookDirectory"},
		{"[passwords]\nHookDirectory=\n", "HookDirectory"},
		{"[passwords]\nHookUser=  \n", "HookUser"},
		{"[audit]\nSegmentSize=65535\n", "SegmentSize"},
		{"[audit]\nSegmentSize=4294967297\n", "SegmentSize"},
		{"[audit]\nSegmentSize=16M\n", "SegmentSize"},
		{"[audit]\nKeepSegments=0\n", "KeepSegments"},
		{"[audit]\nKeepSegments=10001\n", "KeepSegments"},
		{"[audit]\nKeepSegments=-1\n", "KeepSegments"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(TkmsConfig) c = load_text(f, cases[i].text, &error);

		g_test_message("%s", cases[i].text);
		g_assert_null(c);
		g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
		g_test_message("-> %s", error->message);
		g_assert_nonnull(strstr(error->message, cases[i].key));
	}
}

static void
test_not_a_key_file(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsConfig) c = load_text(f, "MaxPayload=5\n", &error);

	g_assert_null(c);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, f->path));
}

/* [lifecycle]: DestroyWaitingPeriod's ends (0 destroys at once, at most 366 days) and the
 * benchmark switch CountUses. */
static void
test_lifecycle(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsConfig) zero = load_text(f, "[lifecycle]\nDestroyWaitingPeriod=0\n", &error);
	g_autoptr(TkmsConfig) most = NULL;
	g_autoptr(TkmsConfig) off = NULL;

	g_assert_no_error(error);
	g_assert_cmpuint(zero->destroy_wait, ==, 0);
	g_assert_true(zero->count_uses);
	most = load_text(f, "[lifecycle]\nDestroyWaitingPeriod=31622400\nCountUses=false\n",
			 &error);
	g_assert_no_error(error);
	g_assert_cmpuint(most->destroy_wait, ==, TKMS_MAX_DESTROY_WAIT);
	g_assert_false(most->count_uses);
	off = load_text(f, "[lifecycle]\nCountUses=true\n", &error);
	g_assert_no_error(error);
	g_assert_true(off->count_uses);
}

/* [security] RequireLockedMemory: off unless set to true; anything but a boolean is refused. */
static void
test_require_locked_memory(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsConfig) on = load_text(f, "[security]\nRequireLockedMemory=true\n", &error);
	g_autoptr(TkmsConfig) off = NULL;
	g_autoptr(TkmsConfig) bad = NULL;

	g_assert_no_error(error);
	g_assert_true(on->require_locked_memory);
	off = load_text(f, "[security]\nRequireLockedMemory=false\n", &error);
	g_assert_no_error(error);
	g_assert_false(off->require_locked_memory);
	bad = load_text(f, "[security]\nRequireLockedMemory=1MiB\n", &error);
	g_assert_null(bad);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "[security] RequireLockedMemory"));
}

/* [tpm] AllowResettablePcrs: off unless set to true; anything but a boolean is refused. */
static void
test_resettable_pcrs(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsConfig) on = load_text(f, "[tpm]\nAllowResettablePcrs=true\n", &error);
	g_autoptr(TkmsConfig) off = NULL;
	g_autoptr(TkmsConfig) bad = NULL;

	g_assert_no_error(error);
	g_assert_true(on->allow_resettable_pcrs);
	off = load_text(f, "[tpm]\nAllowResettablePcrs=false\n", &error);
	g_assert_no_error(error);
	g_assert_false(off->allow_resettable_pcrs);
	bad = load_text(f, "[tpm]\nAllowResettablePcrs=yes please\n", &error);
	g_assert_null(bad);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "[tpm] AllowResettablePcrs"));
}

/* [passwords]: the hook directory, user and timeout, and the ends of the timeout's range. */
static void
test_passwords(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsConfig) c = load_text(f,
					    "[passwords]\n"
					    "HookDirectory= /srv/tkms/hooks \n"
					    "HookUser=tkms-hooks\n"
					    "HookTimeout=1\n",
					    &error);
	g_autoptr(TkmsConfig) most = NULL;

	g_assert_no_error(error);
	g_assert_cmpstr(c->hook_directory, ==, "/srv/tkms/hooks");
	g_assert_cmpstr(c->hook_user, ==, "tkms-hooks");
	g_assert_cmpuint(c->hook_timeout, ==, 1);
	most = load_text(f, "[passwords]\nHookTimeout=3600\n", &error);
	g_assert_no_error(error);
	g_assert_cmpuint(most->hook_timeout, ==, 3600);
	g_assert_cmpstr(most->hook_directory, ==, "/etc/tkms/hooks.d");
	g_assert_cmpstr(most->hook_user, ==, "nobody");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD("/config/missing", test_missing);
	ADD("/config/empty", test_empty);
	ADD("/config/shipped", test_shipped);
	ADD("/config/every-key", test_every_key);
	ADD("/config/ranges", test_limits_of_ranges);
	ADD("/config/bad-values", test_bad_values);
	ADD("/config/not-a-key-file", test_not_a_key_file);
	ADD("/config/lifecycle", test_lifecycle);
	ADD("/config/resettable-pcrs", test_resettable_pcrs);
	ADD("/config/passwords", test_passwords);
	ADD("/config/require-locked-memory", test_require_locked_memory);
	return g_test_run();
}
