/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * TkmsTestBus: a private dbus-daemon configured like the system bus.
 *
 * `<type>system</type>`, deny by default, and an `<includedir>` holding a copy of the shipped
 * data/org.tkms.KeyManager.conf ($TKMS_DATA_DIR) plus any policy a test component adds (the
 * polkit authority's). GTestDBus gives a policy-free session bus only, so it cannot test the
 * shipped policy. Its socket is in a directory every user reaches.
 */

#include <gio/gio.h>

#include "tkms-test-process.h"

G_BEGIN_DECLS

typedef struct _TkmsTestBus TkmsTestBus;

/* Prepares DIR/bus (the socket), DIR/dbus-policy and DIR/bus.conf; does not start it. Fails
 * with TKMS_TEST_ERROR_MISSING_DEPENDENCY if dbus-daemon is not installed. */
TkmsTestBus *tkms_test_bus_new(const gchar *dir, GError **error);
/* Closes the connection and stops dbus-daemon. */
void tkms_test_bus_free(TkmsTestBus *bus);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsTestBus, tkms_test_bus_free)

/* Adds a policy file to the included directory (before tkms_test_bus_start()). */
gboolean tkms_test_bus_add_policy(TkmsTestBus *bus, const gchar *file_name,
				  const gchar *contents, GError **error);
/* Makes the running dbus-daemon read its configuration again (policies added since). */
gboolean tkms_test_bus_reload(TkmsTestBus *bus, GError **error);
/* Starts dbus-daemon and connects to it. */
gboolean tkms_test_bus_start(TkmsTestBus *bus, GError **error);

const gchar *tkms_test_bus_get_address(TkmsTestBus *bus);
GDBusConnection *tkms_test_bus_get_connection(TkmsTestBus *bus);
void tkms_test_bus_dump_log(TkmsTestBus *bus);

/* The unique name owning name, or NULL. */
gchar *tkms_test_bus_name_owner(TkmsTestBus *bus, const gchar *name);
/* The pid of name's owner, or -1. */
gint64 tkms_test_bus_name_owner_pid(TkmsTestBus *bus, const gchar *name);
/* Waits (20 s) until the process tp owns name. */
gboolean tkms_test_bus_wait_for_name(TkmsTestBus *bus, TkmsTestProc *tp, const gchar *name,
				     GError **error);
/* Waits (20 s) until name has no owner. */
gboolean tkms_test_bus_wait_name_gone(TkmsTestBus *bus, const gchar *name, GError **error);

G_END_DECLS
