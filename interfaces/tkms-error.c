/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tkms-error.h"

static const GDBusErrorEntry tkms_error_entries[] = {
	{TKMS_ERROR_NOT_FOUND, "org.tkms.KeyManager.Error.NotFound"},
	{TKMS_ERROR_ALREADY_EXISTS, "org.tkms.KeyManager.Error.AlreadyExists"},
	{TKMS_ERROR_INVALID_ARGUMENT, "org.tkms.KeyManager.Error.InvalidArgument"},
	{TKMS_ERROR_PERMISSION_DENIED, "org.tkms.KeyManager.Error.PermissionDenied"},
	{TKMS_ERROR_KEY_STATE, "org.tkms.KeyManager.Error.KeyState"},
	{TKMS_ERROR_POLICY_MISMATCH, "org.tkms.KeyManager.Error.PolicyMismatch"},
	{TKMS_ERROR_INTEGRITY_FAILURE, "org.tkms.KeyManager.Error.IntegrityFailure"},
	{TKMS_ERROR_TPM_UNAVAILABLE, "org.tkms.KeyManager.Error.TpmUnavailable"},
	{TKMS_ERROR_TPM_LOCKOUT, "org.tkms.KeyManager.Error.TpmLockout"},
	{TKMS_ERROR_LIMIT_EXCEEDED, "org.tkms.KeyManager.Error.LimitExceeded"},
	{TKMS_ERROR_BUSY, "org.tkms.KeyManager.Error.Busy"},
	{TKMS_ERROR_FAILED, "org.tkms.KeyManager.Error.Failed"},
};

G_STATIC_ASSERT(G_N_ELEMENTS(tkms_error_entries) == TKMS_ERROR_N_ERRORS);

/* Registering the domain is what turns a remote org.tkms.KeyManager.Error.* back into a
 * TKMS_ERROR code in the client, and a TKMS_ERROR into the right name in the daemon. */
GQuark
tkms_error_quark(void)
{
	static gsize quark = 0;
	g_dbus_error_register_error_domain("tkms-error-quark", &quark, tkms_error_entries,
					   G_N_ELEMENTS(tkms_error_entries));
	return (GQuark)quark;
}

const gchar *
tkms_error_to_short_name(TkmsError code)
{
	if ((guint)code >= TKMS_ERROR_N_ERRORS)
		return "Failed";
	/* the part after the last dot of the D-Bus name */
	return strrchr(tkms_error_entries[code].dbus_error_name, '.') + 1;
}
