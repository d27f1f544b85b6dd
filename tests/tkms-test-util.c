/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-util"

#include "tkms-test-util.h"

#include <stdarg.h>
#include <string.h>

GBytes *
tkms_test_bytes_pattern(gsize len, guint32 seed)
{
	guint8 *buf = g_malloc(len);
	guint32 x = seed * 2654435761u + 0x9e3779b9u;

	if (x == 0)
		x = 1;
	for (gsize i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (guint8)(x >> 11);
	}
	return g_bytes_new_take(buf, len);
}

GBytes *
tkms_test_bytes_str(const gchar *s)
{
	return g_bytes_new(s, strlen(s));
}

GBytes *
tkms_test_bytes_xor_byte(GBytes *b, gsize offset, guint8 mask)
{
	gsize len;
	const guint8 *data = g_bytes_get_data(b, &len);
	guint8 *copy;

	g_assert_cmpuint(offset, <, len);
	copy = g_memdup2(data, len);
	copy[offset] ^= mask;
	return g_bytes_new_take(copy, len);
}

GBytes *
tkms_test_bytes_flip_bit(GBytes *b, gsize bit)
{
	return tkms_test_bytes_xor_byte(b, bit / 8, (guint8)(1u << (bit % 8)));
}

GBytes *
tkms_test_bytes_truncate(GBytes *b, gsize len)
{
	g_assert_cmpuint(len, <=, g_bytes_get_size(b));
	return g_bytes_new_from_bytes(b, 0, len);
}

gboolean
tkms_test_bytes_contain(GBytes *haystack, const void *needle, gsize needle_len)
{
	gsize len;
	const guint8 *data = g_bytes_get_data(haystack, &len);

	return needle_len > 0 && memmem(data, len, needle, needle_len) != NULL;
}

gchar *
tkms_test_bytes_to_hex(GBytes *b)
{
	gsize len;
	const guint8 *data = g_bytes_get_data(b, &len);
	GString *s = g_string_sized_new(len * 2 + 1);

	for (gsize i = 0; i < len; i++)
		g_string_append_printf(s, "%02x", data[i]);
	return g_string_free(s, FALSE);
}

gchar *
tkms_test_key_name(const gchar *prefix)
{
	static gint counter;
	return g_strdup_printf("%s-%d", prefix, g_atomic_int_add(&counter, 1));
}

GVariant *
tkms_test_create_key(TkmsClient *client, const gchar *name, const gchar *type, GVariant *options)
{
	g_autoptr(GError) error = NULL;
	GVariant *info = tkms_client_create_key_sync(client, name, type, options, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(info);
	return info;
}

GBytes *
tkms_test_hmac(TkmsClient *client, const gchar *name, GBytes *data)
{
	g_autoptr(GError) error = NULL;
	GBytes *mac = tkms_client_hmac_sync(client, name, data, NULL, &error);

	g_assert_no_error(error);
	g_assert_nonnull(mac);
	return mac;
}

GBytes *
tkms_test_sign_verified(TkmsClient *client, const gchar *name, GBytes *data)
{
	g_autoptr(GError) error = NULL;
	GBytes *sig = tkms_client_sign_sync(client, name, data, NULL, &error);
	gboolean valid = FALSE;

	g_assert_no_error(error);
	g_assert_nonnull(sig);
	/* in a test whose assertions are not fatal, it goes on to report what else it finds */
	if (sig == NULL)
		return NULL;
	g_assert_true(tkms_client_verify_sync(client, name, data, sig, &valid, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(valid);
	return sig;
}

gchar *
tkms_test_write_file(const gchar *dir, const gchar *file_name, GBytes *b)
{
	g_autoptr(GError) error = NULL;
	gchar *path = g_build_filename(dir, file_name, NULL);
	gsize len;
	const gchar *data = g_bytes_get_data(b, &len);

	g_file_set_contents_full(path, data, (gssize)len, G_FILE_SET_CONTENTS_NONE, 0644, &error);
	g_assert_no_error(error);
	return path;
}

guint
tkms_test_count_lines(const gchar *path)
{
	g_autofree gchar *contents = NULL;
	gsize len = 0;
	guint n = 0;

	if (!g_file_get_contents(path, &contents, &len, NULL))
		return 0;
	for (gsize i = 0; i < len; i++)
		if (contents[i] == '\n')
			n++;
	return n;
}

gchar *
tkms_test_error_name(const GError *error)
{
	if (error == NULL)
		return g_strdup("no error");
	if (error->domain == TKMS_ERROR)
		return g_strdup(tkms_error_to_short_name((TkmsError)error->code));
	return g_strdup_printf("%s:%d", g_quark_to_string(error->domain), error->code);
}

gchar *
tkms_test_error_one_of_message(const GError *error, ...)
{
	g_autoptr(GString) expected = g_string_new(NULL);
	g_autofree gchar *got = NULL;
	va_list ap;
	gint code;
	gboolean match = FALSE;

	va_start(ap, error);
	while ((code = va_arg(ap, gint)) >= 0) {
		if (error != NULL && error->domain == TKMS_ERROR && error->code == code)
			match = TRUE;
		if (expected->len > 0)
			g_string_append(expected, " or ");
		g_string_append(expected, tkms_error_to_short_name((TkmsError)code));
	}
	va_end(ap);
	if (match)
		return NULL;
	got = tkms_test_error_name(error);
	return g_strdup_printf("expected error %s, got %s%s%s", expected->str, got,
			       error != NULL ? ": " : " (the call succeeded)",
			       error != NULL ? error->message : "");
}

TkmsClient *
tkms_test_new_client(TkmsTestEnv *env)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) connection = NULL;
	TkmsClient *client;

	connection = g_dbus_connection_new_for_address_sync(
		tkms_test_env_get_bus_address(env),
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	g_assert_no_error(error);
	g_dbus_connection_set_exit_on_close(connection, FALSE);
	client = tkms_client_new_sync(connection, NULL, &error);
	g_assert_no_error(error);
	return client;
}

GVariant *
tkms_test_get_property(TkmsTestEnv *env, const gchar *property)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	GVariant *value = NULL;

	reply = g_dbus_connection_call_sync(
		tkms_test_env_get_connection(env), TKMS_BUS_NAME, TKMS_OBJECT_PATH,
		"org.freedesktop.DBus.Properties", "Get",
		g_variant_new("(ss)", "org.tkms.KeyManager", property), G_VARIANT_TYPE("(v)"),
		G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
	g_assert_no_error(error);
	g_variant_get(reply, "(v)", &value);
	return value;
}

void
tkms_test_spin(guint ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;

	while (g_get_monotonic_time() < deadline) {
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(2000);
	}
}

guint16
tkms_test_random_server_port(void)
{
	return (guint16)(g_random_int_range(10000, 32000) & ~1);
}

guint32
tkms_test_be32(const guint8 *p)
{
	return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

TkmsTestEnv *
tkms_test_env_new_behind_tpm_proxy(const gchar *config, TkmsTestTpmProxy **proxy,
				   gchar **record_path)
{
	g_autoptr(GError) error = NULL;
	TkmsTestEnv *env = tkms_test_env_new_without_daemon(config, &error);
	const gchar *tcti;

	if (env == NULL)
		tkms_test_exit_on_error("cannot set up the test environment", error);
	*record_path = g_build_filename(tkms_test_env_get_tmp_dir(env), "tpm.rec", NULL);
	*proxy = tkms_test_tpm_proxy_new(tkms_test_env_get_tpm_port(env), *record_path, &error);
	if (*proxy == NULL)
		tkms_test_exit_on_error("cannot start the TPM proxy", error);
	tcti = tkms_test_tpm_proxy_get_tcti(*proxy);
	if (tkms_test_env_tpm_via_abrmd(env)) {
		/* the resource manager reaches the swtpm through the proxy from now on */
		tkms_test_env_set_abrmd_tpm_tcti(env, tcti);
		if (!tkms_test_env_stop_tpm(env, &error) || !tkms_test_env_start_tpm(env, &error))
			tkms_test_exit_on_error("cannot restart tpm2-abrmd", error);
	} else {
		tkms_test_env_set_tcti(env, tcti);
	}
	if (!tkms_test_env_start_daemon(env, &error))
		tkms_test_exit_on_error("cannot start tkmsd", error);
	return env;
}

GBytes *
tkms_test_bytes_random(gsize len)
{
	guint8 *p = g_malloc(len);

	for (gsize i = 0; i < len; i++)
		p[i] = (guint8)g_random_int();
	return g_bytes_new_take(p, len);
}
