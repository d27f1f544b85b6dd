/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Shared by the 'authz' suite (test-authz-*.c), which runs against the real polkitd
 * (tkms_test_env_new_real_polkit()) with callers that are real unprivileged users:
 *   - the three test users (created if absent),
 *   - AuthzCaller: a "tkms-test-helper serve" process running as one user, which makes each
 *     call on a new bus connection and answers with the reply or the D-Bus error name,
 *   - snapshots of the key store and reading the audit log.
 */

#include <json-glib/json-glib.h>

#include "tkms-test-util.h"

G_BEGIN_DECLS

#define AUTHZ_USER_A "tkms-test-a"         /* owner */
#define AUTHZ_USER_B "tkms-test-b"         /* another user */
#define AUTHZ_USER_ADMIN "tkms-test-admin" /* granted org.tkms.KeyManager.admin by the rules */

#define AUTHZ_ERROR_PREFIX "org.tkms.KeyManager.Error."

extern guint32 authz_uid_a, authz_uid_b, authz_uid_admin;

/* Creates the test users if needed and fills authz_uid_*; aborts the test on failure. */
void authz_setup_users(void);

typedef struct {
	gchar *user;
	guint32 uid;
	GSubprocess *proc;
	GDataInputStream *out;
	GOutputStream *in;
} AuthzCaller;

/* user NULL or "root": the test's own uid (0). */
AuthzCaller *authz_caller_new(TkmsTestEnv *env, const gchar *user);
void authz_caller_free(AuthzCaller *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AuthzCaller, authz_caller_free)

typedef struct {
	gboolean ok;
	GVariant *value; /* the reply tuple, when ok */
	gchar *error;    /* D-Bus error name, when not ok */
	gchar *message;
} AuthzReply;

void authz_reply_free(AuthzReply *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AuthzReply, authz_reply_free)

/* Calls method (of org.tkms.KeyManager, or INTERFACE.MEMBER) with args (a tuple; floating
 * references are sunk) as the caller, on a new connection. */
AuthzReply *authz_call(AuthzCaller *c, const gchar *method, gboolean interactive, GVariant *args);
/* Same on the caller's one kept connection (the daemon may have cached answers for it). */
AuthzReply *authz_call_kept(AuthzCaller *c, const gchar *method, GVariant *args);
/* Same with the arguments as GVariant text, sent as they are; flags as
 * tkms-test-helper serve takes them ("-", "i", "k", "ik"). */
AuthzReply *authz_call_text(AuthzCaller *c, const gchar *method, const gchar *flags,
			    const gchar *args);
/* "OK", the short name of a tkms error ("PermissionDenied") or the full D-Bus error name. */
const gchar *authz_reply_outcome(const AuthzReply *r);
/* Asserts success and returns the reply (owned by r). */
GVariant *authz_assert_ok(AuthzReply *r, const gchar *what);

/* Every file under the state directory except the audit log and its head (audit.*) and the
 * key store's files: path relative to the state directory -> contents; and the key store's
 * content: "keys.db/OWNER/NAME" per key, "keys.db" for the rest (tests/tkms-test-store.h). */
GHashTable *authz_snapshot(const gchar *state_dir);
/* NULL if equal, else a description of the first differences. */
gchar *authz_snapshot_diff(GHashTable *before, GHashTable *after);

/* Paths (relative) added, removed and changed between two snapshots (free with
 * g_ptr_array_unref). */
void authz_snapshot_compare(GHashTable *before, GHashTable *after, GPtrArray **added,
			    GPtrArray **removed, GPtrArray **changed);

/* The audit log's lines. */
GPtrArray *authz_audit_lines(const gchar *state_dir);
/* The lines appended since *offset (a byte offset; 0 at first), which is moved to the end. */
GPtrArray *authz_audit_lines_since(const gchar *state_dir, goffset *offset);
/* A record as a JSON object (unref with json_object_unref), or NULL if unparsable. */
JsonObject *authz_audit_parse(const gchar *line);

/* Key names ("name" entries) of an aa{sv} list, with the owner when with_owner ("UID:NAME"),
 * sorted as given, joined with ",". */
gchar *authz_key_list_names(GVariant *list, gboolean with_owner);

G_END_DECLS
