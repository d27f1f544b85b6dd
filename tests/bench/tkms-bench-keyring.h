/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * The baseline of the password row of tkms-bench: GNOME Keyring read through libsecret, as a
 * desktop program reads a stored password. tkms_bench_keyring_start() starts a private
 * session bus (dbus-daemon with a config of its own: no service activation) and
 * gnome-keyring-daemon on it with only its secrets component, whose login keyring it creates
 * and unlocks with a password on its standard input; that keyring is the default
 * collection. This process's DBUS_SESSION_BUS_ADDRESS then names that bus, for libsecret,
 * until tkms_bench_keyring_free() puts the old value back and stops both.
 */
typedef struct _TkmsBenchKeyring TkmsBenchKeyring;

/* Whether tkms-bench was built with libsecret; without it start fails and says so. */
gboolean tkms_bench_keyring_available(void);

/* @dir: an empty directory for the bus socket and the keyring's HOME (removed by the
 * caller). */
TkmsBenchKeyring *tkms_bench_keyring_start(const gchar *dir, GError **error);
/* What ran, for the bench's notes: "gnome-keyring-daemon 42.1, libsecret 0.20.5" */
const gchar *tkms_bench_keyring_describe(TkmsBenchKeyring *keyring);
/* secret_password_store_sync() of @secret into the default collection. */
gboolean tkms_bench_keyring_store(TkmsBenchKeyring *keyring, const gchar *secret,
				  GError **error);
/* One secret_password_lookup_sync() of that secret; FALSE with @error unless it returned
 * exactly the secret stored. */
gboolean tkms_bench_keyring_lookup(TkmsBenchKeyring *keyring, GError **error);
void tkms_bench_keyring_free(TkmsBenchKeyring *keyring);

G_END_DECLS
