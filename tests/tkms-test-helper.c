/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-helper"

/*
 * A tiny libtkms caller for tests that need another uid (run through setpriv by
 * tkms_test_env_run_as_user()). It talks to the bus in $TKMS_TEST_BUS_ADDRESS.
 *
 *   tkms-test-helper unseal FILE          prints the data in hex
 *   tkms-test-helper decrypt NAME FILE    (empty context) prints the plaintext in hex
 *   tkms-test-helper list                 prints the caller's key names, one a line
 *   tkms-test-helper info NAME            prints the owner uid
 *   tkms-test-helper create NAME TYPE
 *   tkms-test-helper own NAME             tries to own a bus name
 *
 * Success: exit 0. A D-Bus/libtkms error: "ERROR <ShortName>: <message>" on stdout, exit 2.
 * Usage or local errors: exit 1.
 */

#include <stdlib.h>

#include "tkms-client.h"

static gchar *
hex(GBytes *b)
{
	gsize len;
	const guint8 *data = g_bytes_get_data(b, &len);
	GString *s = g_string_new(NULL);

	for (gsize i = 0; i < len; i++)
		g_string_append_printf(s, "%02x", data[i]);
	return g_string_free(s, FALSE);
}

static int
report(GError *error)
{
	if (error->domain == TKMS_ERROR)
		g_print("ERROR %s: %s\n", tkms_error_to_short_name((TkmsError)error->code),
			error->message);
	else
		g_print("ERROR %s:%d: %s\n", g_quark_to_string(error->domain), error->code,
			error->message);
	return 2;
}

static GBytes *
read_file(const gchar *path)
{
	g_autoptr(GError) error = NULL;
	gchar *contents = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &contents, &len, &error)) {
		g_printerr("%s\n", error->message);
		exit(1);
	}
	return g_bytes_new_take(contents, len);
}

int
main(int argc, char **argv)
{
	const gchar *address = g_getenv("TKMS_TEST_BUS_ADDRESS");
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(TkmsClient) client = NULL;
	const gchar *cmd;

	if (argc < 2 || address == NULL) {
		g_printerr("usage: TKMS_TEST_BUS_ADDRESS=... %s COMMAND ARGS\n", argv[0]);
		return 1;
	}
	cmd = argv[1];
	connection = g_dbus_connection_new_for_address_sync(
		address,
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	if (connection == NULL)
		return report(error);

	if (g_str_equal(cmd, "own") && argc == 3) {
		g_autoptr(GVariant) r = g_dbus_connection_call_sync(
			connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			"org.freedesktop.DBus", "RequestName", g_variant_new("(su)", argv[2], 4u),
			G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
		guint32 result;
		if (r == NULL)
			return report(error);
		g_variant_get(r, "(u)", &result);
		g_print("RequestName %u\n", result);
		return 0;
	}

	client = tkms_client_new_sync(connection, NULL, &error);
	if (client == NULL)
		return report(error);

	if (g_str_equal(cmd, "unseal") && argc == 3) {
		g_autoptr(GBytes) blob = read_file(argv[2]);
		g_autoptr(GBytes) data = tkms_client_unseal_sync(client, blob, NULL, &error);
		g_autofree gchar *h = NULL;
		if (data == NULL)
			return report(error);
		h = hex(data);
		g_print("%s\n", h);
		return 0;
	}
	if (g_str_equal(cmd, "decrypt") && argc == 4) {
		g_autoptr(GBytes) ct = read_file(argv[3]);
		g_autoptr(GBytes) context = g_bytes_new(NULL, 0);
		g_autoptr(GBytes) data =
			tkms_client_decrypt_sync(client, argv[2], ct, context, NULL, &error);
		g_autofree gchar *h = NULL;
		if (data == NULL)
			return report(error);
		h = hex(data);
		g_print("%s\n", h);
		return 0;
	}
	if (g_str_equal(cmd, "list") && argc == 2) {
		g_autoptr(GVariant) keys = tkms_client_list_keys_sync(client, NULL, &error);
		GVariantIter iter;
		GVariant *info;
		if (keys == NULL)
			return report(error);
		g_variant_iter_init(&iter, keys);
		while ((info = g_variant_iter_next_value(&iter)) != NULL) {
			const gchar *name = NULL;
			g_variant_lookup(info, "name", "&s", &name);
			g_print("%s\n", name ? name : "(no name)");
			g_variant_unref(info);
		}
		return 0;
	}
	if (g_str_equal(cmd, "info") && argc == 3) {
		g_autoptr(GVariant) info =
			tkms_client_get_key_info_sync(client, argv[2], NULL, &error);
		guint32 owner = G_MAXUINT32;
		if (info == NULL)
			return report(error);
		g_variant_lookup(info, "owner", "u", &owner);
		g_print("%u\n", owner);
		return 0;
	}
	if (g_str_equal(cmd, "create") && argc == 4) {
		g_autoptr(GVariant) info =
			tkms_client_create_key_sync(client, argv[2], argv[3], NULL, NULL, &error);
		if (info == NULL)
			return report(error);
		return 0;
	}
	g_printerr("unknown command or wrong arguments: %s\n", cmd);
	return 1;
}
