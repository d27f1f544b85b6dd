/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "engine.h"
#include "tkms-dbus-generated.h"

G_BEGIN_DECLS

#define TKMS_TYPE_MANAGER (tkms_manager_get_type())
G_DECLARE_FINAL_TYPE(TkmsManager, tkms_manager, TKMS, MANAGER, TkmsDbusKeyManagerSkeleton)

/* org.tkms.KeyManager over engine, authorized by polkit on connection's bus. */
TkmsManager *tkms_manager_new(GDBusConnection *connection, TkmsEngine *engine);
/* Serves on connection from now on; see tkms_authority_set_connection(). */
void tkms_manager_set_connection(TkmsManager *self, GDBusConnection *connection);
void tkms_manager_shutdown(TkmsManager *self);

G_END_DECLS
