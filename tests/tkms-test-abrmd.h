/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * TkmsTestAbrmd: tpm2-abrmd, the TPM access broker and resource manager, between tkmsd and the
 * swtpm, the way hardware TPMs are shared. With TKMS_TEST_TPM_VIA=abrmd in the environment
 * (meson suite 'abrmd'), every TkmsTestEnv starts one on its private bus, in front of its
 * swtpm, and everything that talks to the TPM (tkmsd, tpm2-tools, the tests' direct TPM users)
 * goes through it: tkms_test_env_get_tcti() is then "tabrmd:bus_type=system", which reaches it
 * through DBUS_SYSTEM_BUS_ADDRESS (set for tkmsd and for every command a test runs).
 *
 * `tpm2-abrmd --tcti=swtpm:host=127.0.0.1,port=N --allow-root --flush-all --logger=stdout`,
 * as root, owning com.intel.tss2.Tabrmd on the private bus; the bus gets the policy that
 * Debian's /etc/dbus-1/system.d/tpm2-abrmd.conf gives the system bus (root may own the name
 * and talk to it). The TCTI library is the package libtss2-tcti-tabrmd0, which tpm2-abrmd does
 * not pull in. A TPM that goes away (tkms_test_env_stop_tpm) takes tpm2-abrmd with it, and
 * comes back with a new one.
 */

#include <gio/gio.h>

#include "tkms-test-bus.h"

G_BEGIN_DECLS

#define TKMS_TEST_ABRMD_NAME "com.intel.tss2.Tabrmd"
#define TKMS_TEST_ABRMD_TCTI "tabrmd:bus_type=system"

typedef struct _TkmsTestAbrmd TkmsTestAbrmd;

/* Whether the environment asks for it (TKMS_TEST_TPM_VIA=abrmd). */
gboolean tkms_test_abrmd_wanted(void);

/* Checks that tpm2-abrmd and the tabrmd TCTI are installed (TKMS_TEST_ERROR_MISSING_DEPENDENCY
 * otherwise) and adds its policy to bus (before the bus starts). Does not start it. */
TkmsTestAbrmd *tkms_test_abrmd_new(TkmsTestBus *bus, const gchar *log_path, GError **error);
void tkms_test_abrmd_free(TkmsTestAbrmd *abrmd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsTestAbrmd, tkms_test_abrmd_free)

/* Starts it in front of the TPM at swtpm_tcti and waits (20 s) until it owns its name. */
gboolean tkms_test_abrmd_start(TkmsTestAbrmd *abrmd, const gchar *swtpm_tcti, GError **error);
/* Stops it (SIGTERM) and waits until its name has left the bus. */
gboolean tkms_test_abrmd_stop(TkmsTestAbrmd *abrmd, GError **error);
gboolean tkms_test_abrmd_is_running(TkmsTestAbrmd *abrmd);
void tkms_test_abrmd_dump_log(TkmsTestAbrmd *abrmd);

G_END_DECLS
