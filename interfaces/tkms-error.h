/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define TKMS_ERROR (tkms_error_quark())

/**
 * TkmsError:
 * @TKMS_ERROR_NOT_FOUND: no such key, key version or blob owner
 * @TKMS_ERROR_ALREADY_EXISTS: a key of that name exists (or existed)
 * @TKMS_ERROR_INVALID_ARGUMENT: bad name, type, option or malformed input
 * @TKMS_ERROR_PERMISSION_DENIED: polkit refused, or the object is not the caller's
 * @TKMS_ERROR_KEY_STATE: the key version's state does not allow this use
 * @TKMS_ERROR_POLICY_MISMATCH: a PCR the object is bound to has changed
 * @TKMS_ERROR_INTEGRITY_FAILURE: ciphertext or blob was changed or belongs elsewhere, or a TPM
 *   answer failed its integrity check
 * @TKMS_ERROR_TPM_UNAVAILABLE: the TPM cannot be reached right now
 * @TKMS_ERROR_TPM_LOCKOUT: the TPM is in dictionary-attack lockout
 * @TKMS_ERROR_LIMIT_EXCEEDED: a payload or length is over the configured limit
 * @TKMS_ERROR_BUSY: too many calls in flight for this caller or user, the authorization check
 *   could not be completed, or the daemon's locked memory for key material is full; retry
 *   later
 * @TKMS_ERROR_FAILED: anything else
 *
 * Error codes of the %TKMS_ERROR domain; over D-Bus they are
 * `org.tkms.KeyManager.Error.NotFound` and so on.
 */
typedef enum {
	TKMS_ERROR_NOT_FOUND,
	TKMS_ERROR_ALREADY_EXISTS,
	TKMS_ERROR_INVALID_ARGUMENT,
	TKMS_ERROR_PERMISSION_DENIED,
	TKMS_ERROR_KEY_STATE,
	TKMS_ERROR_POLICY_MISMATCH,
	TKMS_ERROR_INTEGRITY_FAILURE,
	TKMS_ERROR_TPM_UNAVAILABLE,
	TKMS_ERROR_TPM_LOCKOUT,
	TKMS_ERROR_LIMIT_EXCEEDED,
	TKMS_ERROR_BUSY,
	TKMS_ERROR_FAILED,
} TkmsError;

#define TKMS_ERROR_N_ERRORS (TKMS_ERROR_FAILED + 1)

GQuark tkms_error_quark(void);
const gchar *tkms_error_to_short_name(TkmsError code);

G_END_DECLS
