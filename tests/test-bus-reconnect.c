/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-bus-reconnect"

/* tkmsd stays in service when GDBus closes its bus connection: it connects again, owns its
 * name again, keeps its keys, and asks polkit on the new connection.
 *
 * GDBus closes a connection on any message it cannot decode. GLib 2.74 misreads one that
 * dbus-daemon checks and forwards (an array of structs holding signatures, followed by
 * arrays): tests/torture's D-Bus fuzzer found it. Any local user may send it, as a method call
 * to org.tkms.KeyManager or as a signal to any of tkmsd's unique names. */

#include "tkms-test-util.h"

#define BUS_NAME    "org.tkms.KeyManager"
#define OBJECT_PATH "/org/tkms/KeyManager"
#define RECONNECTED "connected to the bus again"

static const gchar poison_body[] =
	"((uint16 1, ([(signature '',), (signature 'a{sv}',), (signature '',)],), "
	"[int64 3771485674]), [byte 0, 0, 0, 0, 0, 0, 0, 0], "
	"([byte 0, 0, 0, 0, 0, 0, 0, 0], [byte 0, 0, 0, 0]))";

static TkmsTestEnv *env;

static GDBusMessage *
poison_message(GDBusMessageType type, const gchar *destination)
{
	g_autoptr(GError) error = NULL;
	GVariant *body = g_variant_parse(NULL, poison_body, NULL, NULL, &error);
	GDBusMessage *m;

	g_assert_no_error(error);
	if (type == G_DBUS_MESSAGE_TYPE_METHOD_CALL)
		m = g_dbus_message_new_method_call(destination, OBJECT_PATH, BUS_NAME,
						   "ListAllKeys");
	else
		m = g_dbus_message_new_signal(OBJECT_PATH, BUS_NAME, "Poison");
	g_dbus_message_set_destination(m, destination);
	g_dbus_message_set_body(m, body);
	return m;
}

/* Whether this GLib still cannot decode what it encodes: then the message closes tkmsd's
 * connection, and the tests see tkmsd connect again; else they see it simply go on. */
static gboolean
poison_closes_connections(void)
{
	g_autoptr(GDBusMessage) m = poison_message(G_DBUS_MESSAGE_TYPE_SIGNAL, ":1.1");
	g_autoptr(GDBusMessage) back = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree guchar *blob = NULL;
	gsize len;

	g_dbus_message_set_serial(m, 1);
	blob = g_dbus_message_to_blob(m, &len, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
	g_assert_no_error(error);
	back = g_dbus_message_new_from_blob(blob, len, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
	return back == NULL;
}

static void
send_poison(GDBusMessageType type, const gchar *destination)
{
	g_autoptr(GDBusMessage) m = poison_message(type, destination);
	g_autoptr(GError) error = NULL;

	if (type == G_DBUS_MESSAGE_TYPE_METHOD_CALL)
		g_dbus_message_set_flags(m, G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED);
	g_dbus_connection_send_message(tkms_test_env_get_connection(env), m,
				       G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL, &error);
	g_assert_no_error(error);
}

static guint
count_in_log(const gchar *needle)
{
	g_autofree gchar *log = tkms_test_env_get_daemon_log(env);
	guint n = 0;

	for (const gchar *p = strstr(log, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Waits (10 s at most) until tkmsd has connected again `expected` times in all. */
static void
wait_reconnected(guint expected)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (count_in_log(RECONNECTED) < expected && g_get_monotonic_time() < deadline)
		tkms_test_spin(20);
	g_assert_cmpuint(count_in_log(RECONNECTED), ==, expected);
	g_test_message("tkmsd connected again (%u times in all)", expected);
}

static gchar *
name_owner(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
		tkms_test_env_get_connection(env), "org.freedesktop.DBus", "/org/freedesktop/DBus",
		"org.freedesktop.DBus", "GetNameOwner", g_variant_new("(s)", BUS_NAME),
		G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
	gchar *owner = NULL;

	g_assert_no_error(error);
	g_variant_get(reply, "(s)", &owner);
	return owner;
}

/* How many connections the process pid has on the bus. */
static guint
connections_of(gint pid)
{
	GDBusConnection *c = tkms_test_env_get_connection(env);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) names = g_dbus_connection_call_sync(
		c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
		"ListNames", NULL, G_VARIANT_TYPE("(as)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL,
		&error);
	g_autoptr(GVariantIter) iter = NULL;
	const gchar *name;
	guint n = 0;

	g_assert_no_error(error);
	g_variant_get(names, "(as)", &iter);
	while (g_variant_iter_next(iter, "&s", &name)) {
		g_autoptr(GVariant) reply = NULL;
		guint32 owner_pid = 0;

		if (name[0] != ':')
			continue;
		reply = g_dbus_connection_call_sync(
			c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
			"GetConnectionUnixProcessID", g_variant_new("(s)", name),
			G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
		if (reply == NULL)
			continue; /* it left meanwhile */
		g_variant_get(reply, "(u)", &owner_pid);
		if ((gint)owner_pid == pid)
			n++;
	}
	return n;
}

/* The service as a user relies on it: the same tkmsd, on the bus once, its keys there and
 * usable, through the client the test had before. */
static void
assert_serves(const gchar *key, gint pid)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) message = tkms_test_bytes_str("still here");
	g_autoptr(GBytes) signature = NULL;
	g_autoptr(GVariant) keys = NULL;
	g_autofree gchar *listed = NULL;

	tkms_test_env_sync_client(env, client, &error);
	g_assert_no_error(error);
	g_assert_cmpint(tkms_test_env_get_daemon_pid(env), ==, pid);
	g_assert_cmpuint(connections_of(pid), ==, 1);
	keys = tkms_client_list_keys_sync(client, NULL, &error);
	g_assert_no_error(error);
	listed = g_variant_print(keys, FALSE);
	g_assert_nonnull(strstr(listed, key));
	signature = tkms_client_sign_sync(client, key, message, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(signature), >, 0);
}

/* What a test starts from: a key of its own, tkmsd's pid, and how often it reconnected. */
typedef struct {
	gchar *key;
	gint pid;
	guint reconnects;
	gboolean poison;
} Start;

static void
start(Start *s, const gchar *prefix)
{
	g_autoptr(GVariant) info = NULL;

	s->key = tkms_test_key_name(prefix);
	info = tkms_test_create_key(tkms_test_env_get_client(env), s->key, "ecdsa-p256", NULL);
	s->pid = tkms_test_env_get_daemon_pid(env);
	s->reconnects = count_in_log(RECONNECTED);
	s->poison = poison_closes_connections();
	if (!s->poison)
		g_test_message("this GLib decodes the message: tkmsd keeps its connection");
}

static void
test_poisoned_call(void)
{
	Start s;

	start(&s, "call");
	send_poison(G_DBUS_MESSAGE_TYPE_METHOD_CALL, BUS_NAME);
	if (s.poison)
		wait_reconnected(s.reconnects + 1);
	assert_serves(s.key, s.pid);
	g_free(s.key);
}

/* A signal needs no permission to send: aimed at tkmsd's unique name, again and again. */
static void
test_poisoned_signals(void)
{
	Start s;

	start(&s, "signal");
	for (guint i = 0; i < 10; i++) {
		g_autofree gchar *owner = name_owner();

		send_poison(G_DBUS_MESSAGE_TYPE_SIGNAL, owner);
		if (s.poison)
			wait_reconnected(s.reconnects + i + 1);
	}
	assert_serves(s.key, s.pid);
	g_free(s.key);
}

/* Authorization on the new connection still fails closed: polkit's "no" is a no. */
static void
test_polkit_after_reconnect(void)
{
	Start s;
	g_autoptr(TkmsClient) client = NULL;
	g_autoptr(GBytes) message = tkms_test_bytes_str("m");
	g_autoptr(GBytes) signature = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *unexpected = NULL;
	const gchar *read_only[] = {TKMS_ACTION_READ_KEY, NULL};

	start(&s, "polkit");
	send_poison(G_DBUS_MESSAGE_TYPE_METHOD_CALL, BUS_NAME);
	if (s.poison)
		wait_reconnected(s.reconnects + 1);
	tkms_test_env_polkit_set_allowed(env, read_only, &error);
	g_assert_no_error(error);
	/* a new caller: nothing cached for it */
	client = tkms_test_new_client(env);
	signature = tkms_client_sign_sync(client, s.key, message, NULL, &error);
	unexpected = tkms_test_error_one_of_message(error, TKMS_ERROR_PERMISSION_DENIED, -1);
	g_assert_null(unexpected);
	g_clear_error(&error);
	tkms_test_env_polkit_allow_all(env, &error);
	g_assert_no_error(error);
	signature = tkms_client_sign_sync(client, s.key, message, NULL, &error);
	g_assert_no_error(error);
	g_free(s.key);
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_or_abort(NULL);
	g_test_add_func("/bus-reconnect/poisoned-call", test_poisoned_call);
	g_test_add_func("/bus-reconnect/poisoned-signals", test_poisoned_signals);
	g_test_add_func("/bus-reconnect/polkit-after-reconnect", test_polkit_after_reconnect);
	ret = g_test_run();
	tkms_test_env_free(env);
	return ret;
}
