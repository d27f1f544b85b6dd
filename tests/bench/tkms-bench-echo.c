/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-bench-echo"

/*
 * tkms-bench-echo BUS_ADDRESS: the baseline of tkms-bench's echo rows. A minimal GDBus service
 * in a process of its own on the bench's private bus: it owns org.tkms.BenchEcho and serves
 * one method, org.tkms.BenchEcho.Echo(ay) -> ay, which returns its argument, from its main
 * loop as tkmsd serves its methods. It is what a D-Bus method of another process costs at
 * the least; tkmsd's Encrypt does the same round trip plus its own work. Runs until SIGTERM
 * or SIGINT, or until the bus goes away.
 */

#include <gio/gio.h>
#include <glib-unix.h>

#define ECHO_NAME "org.tkms.BenchEcho"
#define ECHO_PATH "/org/tkms/BenchEcho"

static const gchar introspection_xml[] = "<node>"
					 "  <interface name='org.tkms.BenchEcho'>"
					 "    <method name='Echo'>"
					 "      <arg name='data' direction='in' type='ay'/>"
					 "      <arg name='data' direction='out' type='ay'/>"
					 "    </method>"
					 "  </interface>"
					 "</node>";

static void
method_call(GDBusConnection *connection, const gchar *sender, const gchar *path,
	    const gchar *interface, const gchar *method, GVariant *parameters,
	    GDBusMethodInvocation *invocation, gpointer user_data)
{
	/* the argument as it came, shared, not copied: tkmsd does no less with its input */
	g_dbus_method_invocation_return_value(invocation, g_variant_ref(parameters));
}

static const GDBusInterfaceVTable vtable = {method_call, NULL, NULL, {0}};

static gboolean
quit_cb(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

static void
name_lost_cb(GDBusConnection *connection, const gchar *name, gpointer data)
{
	g_printerr("tkms-bench-echo: lost or could not own %s\n", name);
	g_main_loop_quit(data);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GDBusConnection) connection = NULL;
	g_autoptr(GDBusNodeInfo) info = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	guint owner_id;

	if (argc != 2) {
		g_printerr("usage: tkms-bench-echo BUS_ADDRESS\n");
		return 2;
	}
	connection = g_dbus_connection_new_for_address_sync(
		argv[1],
		G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		NULL, NULL, &error);
	if (connection == NULL) {
		g_printerr("tkms-bench-echo: %s\n", error->message);
		return 1;
	}
	g_dbus_connection_set_exit_on_close(connection, TRUE);
	info = g_dbus_node_info_new_for_xml(introspection_xml, &error);
	g_assert_no_error(error);
	if (g_dbus_connection_register_object(connection, ECHO_PATH, info->interfaces[0], &vtable,
					      NULL, NULL, &error) == 0) {
		g_printerr("tkms-bench-echo: %s\n", error->message);
		return 1;
	}
	owner_id = g_bus_own_name_on_connection(connection, ECHO_NAME, G_BUS_NAME_OWNER_FLAGS_NONE,
						NULL, name_lost_cb, loop, NULL);
	g_unix_signal_add(SIGTERM, quit_cb, loop);
	g_unix_signal_add(SIGINT, quit_cb, loop);
	g_main_loop_run(loop);
	g_bus_unown_name(owner_id);
	return 0;
}
