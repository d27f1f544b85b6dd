/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

typedef struct {
	gchar *tcti;
	guint tpm_timeout; /* seconds a TPM command may take before the TPM counts as hung */
	/* key objects kept loaded in the TPM between calls, at most (the TPM's free transient
	 * slots bound it too); 0: loaded and flushed for every call */
	guint max_loaded_objects;
	gchar *state_dir;
	gsize max_payload;
	guint max_in_flight_per_caller;
	guint max_in_flight_per_user;
	guint key_ttl;  /* seconds unsealed key material stays cached; 0: not cached */
	guint auth_ttl; /* seconds a polkit "yes" is cached; 0: not cached */
	guint max_keys_per_user; /* keys one uid may have that are not destroyed; 0: no limit */
	guint64 destroy_wait;	 /* seconds a version stays destroy-scheduled; 0: destroyed at once */
	gboolean count_uses;	 /* FALSE only for benchmarks: max-uses is then not enforced */
	/* PCRs 16 and 23 can be reset by anyone with TPM access: a binding to them protects
	 * nothing unless the administrator says the machine is meant for it (tests, swtpm) */
	gboolean allow_resettable_pcrs;
	/* [passwords]: where rotation hooks are, whom they run as, how long they may take */
	gchar *hook_directory;
	gchar *hook_user;
	guint hook_timeout; /* seconds */
	guint64 audit_segment_size; /* bytes of the audit log's current segment before a new one */
	guint audit_keep_segments;  /* closed audit log segments kept */
	/* refuse to start when key material cannot be kept in locked memory */
	gboolean require_locked_memory;
} TkmsConfig;

#define TKMS_DEFAULT_TCTI "device:/dev/tpmrm0"
#define TKMS_DEFAULT_MAX_PAYLOAD (1024 * 1024)
#define TKMS_DEFAULT_MAX_LOADED_OBJECTS 64
#define TKMS_MAX_LOADED_OBJECTS 64
#define TKMS_DEFAULT_MAX_KEYS_PER_USER 10000
#define TKMS_DEFAULT_DESTROY_WAIT (7 * 24 * 3600)
#define TKMS_MAX_DESTROY_WAIT (366 * 24 * 3600)
#define TKMS_DEFAULT_HOOK_DIRECTORY TKMS_SYSCONFDIR "/tkms/hooks.d"
#define TKMS_DEFAULT_HOOK_USER "nobody"
#define TKMS_DEFAULT_HOOK_TIMEOUT 60
#define TKMS_DEFAULT_AUDIT_SEGMENT_SIZE (16 * 1024 * 1024)
#define TKMS_MIN_AUDIT_SEGMENT_SIZE (64 * 1024)
#define TKMS_MAX_AUDIT_SEGMENT_SIZE (G_GUINT64_CONSTANT(1) << 32)
#define TKMS_DEFAULT_AUDIT_KEEP_SEGMENTS 8
#define TKMS_MAX_AUDIT_KEEP_SEGMENTS 10000

/* Loads path (missing file = defaults, unless required). Command-line values override. A bad
 * value is TKMS_ERROR_INVALID_ARGUMENT naming the group, the key and the allowed range. */
TkmsConfig *tkms_config_load(const gchar *path, gboolean required, GError **error);
void tkms_config_free(TkmsConfig *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TkmsConfig, tkms_config_free)

G_END_DECLS
