/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-engine"

/* The engine's life, and what every operation shares: its audit record, its end, the checks
 * of its key and payload. The operations are in engine-keys.c, engine-crypto.c and
 * engine-seal.c. */

#include "engine-private.h"

#include <pwd.h>

G_DEFINE_TYPE(TkmsEngine, tkms_engine, G_TYPE_OBJECT)

enum { SIGNAL_TPM_STATUS_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

gboolean
tkms_pcr_mask_from_indices(const guint32 *indices, gsize n, TkmsPcrMask *mask, GError **error)
{
	*mask = 0;
	for (gsize i = 0; i < n; i++) {
		if (indices[i] >= TKMS_PCR_MAX) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "PCR %u does not exist; PCR indices are 0 to %d", indices[i],
				    TKMS_PCR_MAX - 1);
			return FALSE;
		}
		*mask |= 1u << indices[i];
	}
	return TRUE;
}

/* ---- audit ---- */

/* Failures the TPM or the data decided are worth a line in the log; a caller's mistakes and
 * refusals are in the audit log already. */
static void
log_failure(const TkmsActor *actor, const gchar *operation, const TkmsKeyRef *key,
	    const GError *error)
{
	const gchar *k = key != NULL ? tkms_key_ref_audit_text(key) : "-";

	switch (error->code) {
	case TKMS_ERROR_POLICY_MISMATCH:
	case TKMS_ERROR_INTEGRITY_FAILURE:
	case TKMS_ERROR_TPM_UNAVAILABLE:
	case TKMS_ERROR_TPM_LOCKOUT:
	case TKMS_ERROR_FAILED:
		g_message("%s for uid %u, key %s: %s (%s)", operation, actor->uid, k,
			  tkms_error_to_short_name(error->code), error->message);
		break;
	default:
		g_debug("%s for uid %u, key %s: %s (%s)", operation, actor->uid, k,
			tkms_error_to_short_name(error->code), error->message);
	}
}

gboolean
tkms_engine_audit(TkmsEngine *self, const TkmsActor *actor, const gchar *operation,
		  const TkmsKeyRef *key, guint32 version, const GError *error, gboolean durable,
		  GError **audit_error)
{
	return tkms_engine_audit_full(self, actor, operation, key, version, NULL, NULL, error,
				      durable, audit_error);
}

/* The audit record of an operation; error NULL: a success. */
static TkmsAuditRecord
audit_record(const TkmsActor *actor, const gchar *operation, const TkmsKeyRef *key,
	     guint32 version, const gchar *detail, const gchar *warning, const GError *error)
{
	gboolean denied = g_error_matches(error, TKMS_ERROR, TKMS_ERROR_PERMISSION_DENIED);
	TkmsAuditRecord rec = {
		.uid = actor->uid == TKMS_ACTOR_UID_UNKNOWN ? -1 : (gint64)actor->uid,
		.pid = actor->pid,
		.sender = actor->bus_name,
		.actor = actor->daemon ? "tkmsd" : NULL,
		.method = operation,
		.owner_key = key != NULL ? tkms_key_ref_audit_text(key) : NULL,
		.owner = key != NULL && key->name != NULL ? (gint64)key->owner : -1,
		.version = version,
		.result = error == NULL ? "ok" : denied ? "denied" : "error",
		.error = error != NULL ? tkms_error_to_short_name(error->code) : NULL,
		.detail = detail,
		.warning = warning,
	};
	return rec;
}

gboolean
tkms_engine_audit_full(TkmsEngine *self, const TkmsActor *actor, const gchar *operation,
		       const TkmsKeyRef *key, guint32 version, const gchar *detail,
		       const gchar *warning, const GError *error, gboolean durable,
		       GError **audit_error)
{
	TkmsAuditRecord rec =
		audit_record(actor, operation, key, version, detail, warning, error);

	if (error != NULL)
		log_failure(actor, operation, key, error);
	if (tkms_audit_append(self->audit, &rec, durable && error == NULL, audit_error))
		return TRUE;
	g_warning("%s", (*audit_error)->message);
	return FALSE;
}

gboolean
tkms_engine_audit_items(TkmsEngine *self, const TkmsActor *actor, const gchar *operation,
			const TkmsKeyRef *key, guint n, const guint32 *versions,
			const gchar *const *warnings, GError **audit_error)
{
	/* "item 1023 of 1024" */
	enum { DETAIL_MAX = 32 };
	g_autofree TkmsAuditRecord *recs = g_new(TkmsAuditRecord, n);
	g_autofree gchar *details = g_malloc((gsize)n * DETAIL_MAX);

	for (guint i = 0; i < n; i++) {
		gchar *detail = details + (gsize)i * DETAIL_MAX;

		g_snprintf(detail, DETAIL_MAX, "item %u of %u", i, n);
		recs[i] = audit_record(actor, operation, key, versions[i], detail,
				       warnings != NULL ? warnings[i] : NULL, NULL);
	}
	if (tkms_audit_append_many(self->audit, recs, n, audit_error))
		return TRUE;
	g_warning("%s", (*audit_error)->message);
	return FALSE;
}

void
tkms_engine_audit_refusal(TkmsEngine *self, const TkmsActor *actor, const gchar *operation,
			  const TkmsKeyRef *key, const GError *error)
{
	g_autoptr(GError) audit_error = NULL;
	tkms_engine_audit(self, actor, operation, key, 0, error, FALSE, &audit_error);
}

/* Only TKMS_ERROR leaves the engine: anything else is logged and becomes Failed. */
static GError *
sanitize(GError *error)
{
	if (error->domain == TKMS_ERROR)
		return error;
	g_message("internal error: %s", error->message);
	g_error_free(error);
	return g_error_new_literal(TKMS_ERROR, TKMS_ERROR_FAILED,
				   "The operation failed; see the daemon log");
}

gboolean
tkms_engine_finish_sync(TkmsEngine *self, const TkmsActor *actor, const gchar *operation,
			const TkmsKeyRef *key, guint32 version, GError *op_error, GError **error)
{
	GError *audit_error = NULL;

	if (op_error != NULL)
		op_error = sanitize(op_error);
	if (!tkms_engine_audit(self, actor, operation, key, version, op_error, FALSE,
			       &audit_error)) {
		if (op_error == NULL) {
			/* no unaudited success */
			g_propagate_error(error, audit_error);
			return FALSE;
		}
		g_error_free(audit_error);
	}
	if (op_error != NULL) {
		g_propagate_error(error, op_error);
		return FALSE;
	}
	return TRUE;
}

/* ---- asynchronous operations ---- */

static void
op_free(gpointer data)
{
	TkmsEngineOp *op = data;
	if (op->data_free != NULL)
		op->data_free(op->data);
	g_clear_pointer(&op->k, tkms_key_unref);
	g_clear_pointer(&op->compromised, g_array_unref);
	g_free(op->detail);
	tkms_key_ref_clear(&op->key);
	g_free((gchar *)op->actor.bus_name);
	g_free(op);
}

TkmsEngineOp *
tkms_engine_op_new(TkmsEngine *self, const gchar *name, const TkmsActor *actor,
		   const TkmsKeyRef *key, GCancellable *cancellable, GAsyncReadyCallback callback,
		   gpointer user_data)
{
	TkmsEngineOp *op = g_new0(TkmsEngineOp, 1);

	op->engine = self;
	op->name = name;
	op->actor = *actor;
	op->actor.bus_name = g_strdup(actor->bus_name);
	if (key != NULL) {
		op->has_key = TRUE;
		tkms_key_ref_copy(&op->key, key);
	}
	op->task = g_task_new(self, cancellable, callback, user_data);
	/* the result is what happened (and was audited), cancelled or not */
	g_task_set_check_cancellable(op->task, FALSE);
	g_task_set_source_tag(op->task, tkms_engine_op_new);
	g_task_set_task_data(op->task, op, op_free);
	return op;
}

void
tkms_engine_op_set_data(TkmsEngineOp *op, gpointer data, GDestroyNotify data_free)
{
	op->data = data;
	op->data_free = data_free;
}

GCancellable *
tkms_engine_op_get_cancellable(TkmsEngineOp *op)
{
	return g_task_get_cancellable(op->task);
}

typedef struct {
	TkmsEngineOp *op;
	TkmsKey *key;
	GAsyncReadyCallback callback;
} SaveStep;

static void
save_step_free(SaveStep *step)
{
	tkms_key_unref(step->key);
	g_free(step);
}

static void
save_audited_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	SaveStep *step = user_data;
	TkmsEngineOp *op = step->op;
	TkmsEngine *self = op->engine;
	GError *error = NULL;

	if (!tkms_audit_append_durable_finish(TKMS_AUDIT(source), res, &error)) {
		/* nothing was changed: the caller's callback sees the store refuse */
		GTask *task = g_task_new(self->keystore, NULL, step->callback, op);
		g_task_set_source_tag(task, tkms_keystore_save);
		g_task_return_error(task, error);
		g_object_unref(task);
		save_step_free(step);
		return;
	}
	op->audited = TRUE;
	/* the counts as they are now, not as when the change was made: a save never lowers a
	 * reservation that was written while the record went to disk (engine-usage.c) */
	tkms_engine_usage_patch(self, step->key);
	tkms_keystore_save(self->keystore, step->key, NULL, step->callback, op);
	save_step_free(step);
}

void
tkms_engine_op_save(TkmsEngineOp *op, TkmsKey *key, GAsyncReadyCallback callback)
{
	TkmsEngine *self = op->engine;
	SaveStep *step = g_new0(SaveStep, 1);
	TkmsAuditRecord rec = audit_record(&op->actor, op->name, op->has_key ? &op->key : NULL,
					   op->version, op->detail, op->warning, NULL);

	step->op = op;
	step->key = tkms_key_ref(key);
	step->callback = callback;
	tkms_audit_append_durable(self->audit, &rec, save_audited_cb, step);
}

/* Audits a success; FALSE (and the op failed with the audit's error) if that failed. */
static gboolean
op_audit_ok(TkmsEngineOp *op)
{
	GError *error = NULL;
	GTask *task;

	if (op->audited)
		return TRUE;

	if (tkms_engine_audit_full(op->engine, &op->actor, op->name,
				   op->has_key ? &op->key : NULL, op->version, op->detail,
				   op->warning, NULL, op->lifecycle, &error))
		return TRUE;
	task = op->task;
	g_task_return_error(task, error);
	g_object_unref(task);
	return FALSE;
}

void
tkms_engine_op_return_bytes(TkmsEngineOp *op, GBytes *bytes)
{
	GTask *task = op->task;
	if (!op_audit_ok(op))
		return;
	g_task_return_pointer(task, g_bytes_ref(bytes), (GDestroyNotify)g_bytes_unref);
	g_object_unref(task);
}

void
tkms_engine_op_return_boolean(TkmsEngineOp *op, gboolean value)
{
	GTask *task = op->task;
	if (!op_audit_ok(op))
		return;
	g_task_return_boolean(task, value);
	g_object_unref(task);
}

void
tkms_engine_op_return_key(TkmsEngineOp *op, TkmsKey *key)
{
	GTask *task = op->task;
	if (!op_audit_ok(op))
		return;
	g_task_return_pointer(task, tkms_key_ref(key), (GDestroyNotify)tkms_key_unref);
	g_object_unref(task);
}

void
tkms_engine_op_return_pointer(TkmsEngineOp *op, gpointer result, GDestroyNotify result_free)
{
	GTask *task = op->task;
	if (!op_audit_ok(op)) {
		result_free(result);
		return;
	}
	g_task_return_pointer(task, result, result_free);
	g_object_unref(task);
}

void
tkms_engine_op_fail(TkmsEngineOp *op, GError *error)
{
	g_autoptr(GError) audit_error = NULL;
	GTask *task = op->task;

	error = sanitize(error);
	tkms_engine_audit(op->engine, &op->actor, op->name, op->has_key ? &op->key : NULL,
			  op->version, error, FALSE, &audit_error);
	g_task_return_error(task, error);
	g_object_unref(task);
}

void
tkms_engine_op_fail_literal(TkmsEngineOp *op, TkmsError code, const gchar *message)
{
	tkms_engine_op_fail(op, g_error_new_literal(TKMS_ERROR, code, message));
}

gboolean
tkms_engine_op_tpm_finish(TkmsEngineOp *op, GAsyncResult *result)
{
	GError *error = NULL;
	if (tkms_tpm_finish(op->engine->tpm, result, &error))
		return TRUE;
	tkms_engine_op_fail(op, error);
	return FALSE;
}

/* The finish functions: every operation's GTask carries its result. */

GBytes *
tkms_engine_bytes_finish(TkmsEngine *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

gboolean
tkms_engine_verify_finish(TkmsEngine *self, GAsyncResult *result, gboolean *valid,
			  GError **error)
{
	GError *local = NULL;

	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	*valid = g_task_propagate_boolean(G_TASK(result), &local);
	if (local == NULL)
		return TRUE;
	g_propagate_error(error, local);
	return FALSE;
}

/* ---- checks ---- */

TkmsKey *
tkms_engine_lookup_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *ref,
		       GError **error)
{
	GError *local = NULL;
	TkmsKey *key;

	if (!tkms_key_name_is_valid(ref->name)) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "Invalid key name; use 1-64 characters from A-Z a-z 0-9 . _ - "
				    "not starting with a dot (or OWNER:NAME)");
		return NULL;
	}
	key = tkms_keystore_lookup(self->keystore, ref->owner, ref->name, &local);
	if (key != NULL)
		return key;
	if (!g_error_matches(local, TKMS_ERROR, TKMS_ERROR_NOT_FOUND)) {
		g_propagate_error(error, local);
		return NULL;
	}
	g_error_free(local);
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND,
		    "There is no key named \"%s\" of %s; list keys with ListKeys", ref->name,
		    ref->owner == actor->uid ? "yours" : "that owner");
	return NULL;
}

TkmsKey *
tkms_engine_op_lookup_key(TkmsEngineOp *op)
{
	GError *error = NULL;

	op->k = tkms_engine_lookup_key(op->engine, &op->actor, &op->key, &error);
	if (op->k == NULL)
		tkms_engine_op_fail(op, error);
	return op->k;
}

TkmsKeyVersion *
tkms_engine_op_primary_version(TkmsEngineOp *op, TkmsKey *key)
{
	TkmsKeyVersion *v = tkms_key_get_version(key, key->primary_version);
	if (v == NULL || g_strcmp0(v->state, TKMS_STATE_ACTIVE) != 0) {
		tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_KEY_STATE,
						    "Version %u of key \"%s\", its primary, is %s "
						    "and cannot protect new data; %s",
						    key->primary_version, key->name,
						    v ? v->state : "missing",
						    v != NULL && g_str_equal(v->state,
									     TKMS_STATE_PRE_ACTIVE)
							    ? "wait until its activation time"
							    : "rotate the key or cancel its "
							      "destruction"));
		return NULL;
	}
	op->version = v->version;
	return v;
}

static gboolean
may_process(TkmsEngineOp *op, TkmsKeyVersion *v)
{
	if (g_str_equal(v->state, TKMS_STATE_ACTIVE) ||
	    g_str_equal(v->state, TKMS_STATE_DEACTIVATED))
		return TRUE;
	return g_str_equal(v->state, TKMS_STATE_COMPROMISED) && op->actor.admin;
}

gboolean
tkms_engine_check_processing(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v, GError **error)
{
	if (may_process(op, v))
		return TRUE;
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_KEY_STATE,
		    "Version %u of key \"%s\" is %s and cannot %s%s", v->version, key->name,
		    v->state, g_str_has_prefix(op->name, "Decrypt") ? "decrypt" : "process data",
		    g_str_equal(v->state, TKMS_STATE_COMPROMISED)
			    ? " except for an administrator (org.tkms.KeyManager.admin)"
		    : g_str_equal(v->state, TKMS_STATE_DESTROY_SCHEDULED)
			    ? " until its destruction is cancelled"
		    : g_str_equal(v->state, TKMS_STATE_SUSPENDED) ? " until it is resumed"
								  : "");
	return FALSE;
}

gboolean
tkms_engine_op_check_processing(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v)
{
	GError *error = NULL;

	if (!tkms_engine_check_processing(op, key, v, &error)) {
		tkms_engine_op_fail(op, error);
		return FALSE;
	}
	if (g_str_equal(v->state, TKMS_STATE_COMPROMISED)) {
		op->warning = "compromised key version used";
		g_warning("%s of key %s version %u, which is compromised, by uid %u "
			  "(admin)",
			  op->name, tkms_key_ref_audit_text(&op->key), v->version,
			  op->actor.uid);
	}
	return TRUE;
}

static void
append_version(GArray **array, guint32 version)
{
	if (*array == NULL)
		*array = g_array_new(FALSE, FALSE, sizeof(guint32));
	g_array_append_val(*array, version);
}

TkmsKeyVersion *
tkms_engine_op_verify_versions(TkmsEngineOp *op, TkmsKey *key, GArray **rest)
{
	TkmsKeyVersion *first = NULL;
	GArray *compromised = NULL;

	*rest = NULL;
	for (guint i = key->versions->len; i-- > 0;) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		if (g_str_equal(v->state, TKMS_STATE_COMPROMISED)) {
			append_version(&compromised, v->version);
			continue;
		}
		if (!may_process(op, v))
			continue;
		if (first == NULL)
			first = v;
		else
			append_version(rest, v->version);
	}
	/* compromised versions only when nothing else matched, and only for an admin */
	if (compromised != NULL && op->actor.admin) {
		for (guint i = 0; i < compromised->len; i++) {
			guint32 n = g_array_index(compromised, guint32, i);
			if (first == NULL)
				first = tkms_key_get_version(key, n);
			else
				append_version(rest, n);
		}
		g_array_unref(compromised);
	} else if (compromised != NULL) {
		op->compromised = compromised;
	}
	if (first == NULL) {
		TkmsKeyVersion *p = tkms_key_get_version(key, key->primary_version);
		tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_KEY_STATE,
						    "No version of key \"%s\" may verify (version %u, "
						    "its primary, is %s)",
						    key->name, key->primary_version,
						    p ? p->state : "missing"));
		return NULL;
	}
	if (g_str_equal(first->state, TKMS_STATE_COMPROMISED))
		tkms_engine_op_note_compromised(op, first->version);
	op->version = first->version;
	return first;
}

void
tkms_engine_op_note_compromised(TkmsEngineOp *op, guint32 version)
{
	op->warning = "compromised key version considered";
	g_warning("%s of key %s tries version %u, which is compromised, for uid %u (admin)",
		  op->name, tkms_key_ref_audit_text(&op->key), version, op->actor.uid);
}

typedef struct {
	TkmsEngineOp *op;
	void (*then)(TkmsEngineOp *op, GArray *versions);
} AskData;

static void
admin_answer(gboolean held, gpointer data)
{
	AskData *ask = data;
	TkmsEngineOp *op = ask->op;
	GArray *versions = g_steal_pointer(&op->compromised);

	op->actor.admin = held;
	if (!held)
		g_clear_pointer(&versions, g_array_unref);
	ask->then(op, versions);
	g_free(ask);
}

gboolean
tkms_engine_op_ask_compromised(TkmsEngineOp *op, void (*then)(TkmsEngineOp *op, GArray *versions))
{
	AskData *ask;

	if (op->compromised == NULL || op->actor.admin || op->actor.ask_admin == NULL)
		return FALSE;
	ask = g_new0(AskData, 1);
	ask->op = op;
	ask->then = then;
	op->actor.ask_admin(op->actor.ask_admin_data, admin_answer, ask);
	return TRUE;
}

gboolean
tkms_engine_check_pcrs(TkmsEngine *self, TkmsPcrMask pcrs, GError **error)
{
	static const guint resettable[] = {16, 23};

	if (self->config.allow_resettable_pcrs)
		return TRUE;
	for (guint i = 0; i < G_N_ELEMENTS(resettable); i++) {
		if ((pcrs & (1u << resettable[i])) == 0)
			continue;
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "PCR %u can be reset by any TPM user, so a binding to it protects "
			    "nothing; bind to other PCRs, or set [tpm] AllowResettablePcrs=true",
			    resettable[i]);
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_engine_check_payload(TkmsEngine *self, const gchar *what, gsize len, gboolean allow_empty,
			  GError **error)
{
	if (len == 0 && !allow_empty) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "The %s is empty; pass at least one byte", what);
		return FALSE;
	}
	if (len > self->config.max_payload) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED,
			    "The %s is %" G_GSIZE_FORMAT " bytes, over the limit of "
			    "%" G_GSIZE_FORMAT "; split it or raise MaxPayload",
			    what, len, self->config.max_payload);
		return FALSE;
	}
	return TRUE;
}

gboolean
tkms_engine_op_check_payload(TkmsEngineOp *op, const gchar *what, gsize len,
			     gboolean allow_empty)
{
	GError *error = NULL;
	if (tkms_engine_check_payload(op->engine, what, len, allow_empty, &error))
		return TRUE;
	tkms_engine_op_fail(op, error);
	return FALSE;
}

gboolean
tkms_engine_op_require_type(TkmsEngineOp *op, TkmsKey *key, TkmsKeyType a, TkmsKeyType b,
			    const gchar *need)
{
	if (key->type == a || key->type == b)
		return TRUE;
	if (key->type == TKMS_KEY_TYPE_PASSWORD) {
		tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
						    "Key \"%s\" is a password key, which %s "
						    "cannot use; use GetSecret to read it",
						    key->name, op->name));
		return FALSE;
	}
	tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
					    "Key \"%s\" is a %s key; this operation needs %s key",
					    key->name, tkms_key_type_to_string(key->type), need));
	return FALSE;
}

gboolean
tkms_engine_owner_exists(TkmsEngine *self, guint32 uid)
{
	return uid == 0 || getpwuid(uid) != NULL || tkms_keystore_has_owner(self->keystore, uid);
}

/* ---- life ---- */

const TkmsConfig *
tkms_engine_get_config(TkmsEngine *self)
{
	return &self->config;
}

void
tkms_engine_get_tpm_status(TkmsEngine *self, TkmsTpmStatus *status)
{
	tkms_tpm_get_status(self->tpm, status);
}

static void
refresh_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(TkmsEngine) self = user_data;
	g_autoptr(GError) error = NULL;
	if (!tkms_tpm_finish(TKMS_TPM(source), res, &error))
		g_debug("TPM: %s", error->message);
}

void
tkms_engine_refresh_tpm(TkmsEngine *self)
{
	tkms_tpm_refresh(self->tpm, NULL, refresh_cb, g_object_ref(self));
}

static void
tpm_status_changed_cb(TkmsEngine *self)
{
	g_signal_emit(self, signals[SIGNAL_TPM_STATUS_CHANGED], 0);
}

static gboolean
state_file_exists(const TkmsConfig *config, const gchar *name)
{
	g_autofree gchar *path = g_build_filename(config->state_dir, name, NULL);
	return g_file_test(path, G_FILE_TEST_EXISTS);
}

TkmsEngine *
tkms_engine_new(const TkmsConfig *config, GError **error)
{
	g_autoptr(TkmsEngine) self = g_object_new(TKMS_TYPE_ENGINE, NULL);

	self->config = *config;
	self->config.tcti = g_strdup(config->tcti);
	self->config.state_dir = g_strdup(config->state_dir);
	self->config.hook_directory = g_strdup(config->hook_directory);
	self->config.hook_user = g_strdup(config->hook_user);
	g_autofree gchar *db_path = g_build_filename(config->state_dir, "keys.db", NULL);
	gboolean db_existed = g_file_test(db_path, G_FILE_TEST_EXISTS);
	gboolean state_is_new;

	self->keystore = tkms_keystore_new(config->state_dir, error);
	if (self->keystore == NULL)
		return NULL;
	/* new: keys.db was just made, or no key and neither TPM file exists (DESIGN.md "TPM
	 * usage") */
	state_is_new = !db_existed;
	if (!state_is_new && !state_file_exists(config, "srk.name") &&
	    !state_file_exists(config, "seal-auth.key")) {
		g_autoptr(GPtrArray) any = tkms_keystore_list(
			self->keystore, TKMS_KEYSTORE_ALL_OWNERS, 0, NULL, 1, error);
		if (any == NULL)
			return NULL;
		state_is_new = any->len == 0;
	}
	self->audit = tkms_audit_new(config->state_dir, config->audit_segment_size,
				     config->audit_keep_segments, error);
	if (self->audit == NULL)
		return NULL;
	self->tpm = tkms_tpm_new(config->tcti, config->state_dir, config->tpm_timeout,
				 config->max_loaded_objects, state_is_new, error);
	if (self->tpm == NULL)
		return NULL;
	g_signal_connect_object(self->tpm, "status-changed", G_CALLBACK(tpm_status_changed_cb),
				self, G_CONNECT_SWAPPED);
	self->keycache = tkms_key_cache_new(config->key_ttl);
	self->changing =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_queue_free);
	tkms_engine_usage_init(self);
	if (!config->count_uses)
		g_warning("[lifecycle] CountUses=false: key uses are not counted and max-uses is "
			  "not enforced; this is for benchmarks only");
	self->scheduler = tkms_scheduler_new(self);
	/* events that fell due while tkmsd was down run as soon as the main loop does */
	tkms_scheduler_start(self->scheduler);
	tkms_engine_password_rotation_init(self);
	return g_steal_pointer(&self);
}

void
tkms_engine_shutdown(TkmsEngine *self)
{
	if (self->scheduler != NULL)
		tkms_scheduler_stop(self->scheduler);
	g_clear_object(&self->scheduler);
	tkms_engine_password_rotation_stop(self);
	if (self->keystore != NULL)
		tkms_engine_usage_release(self);
	if (self->tpm != NULL)
		tkms_tpm_stop(self->tpm);
	if (self->audit != NULL)
		tkms_audit_sync(self->audit);
	g_clear_pointer(&self->keycache, tkms_key_cache_free);
}

static void
tkms_engine_finalize(GObject *object)
{
	TkmsEngine *self = TKMS_ENGINE(object);

	tkms_engine_shutdown(self);
	g_clear_object(&self->tpm);
	g_clear_object(&self->audit);
	g_clear_object(&self->keystore);
	g_clear_pointer(&self->changing, g_hash_table_unref);
	tkms_engine_usage_clear(self);
	tkms_engine_password_rotation_clear(self);
	g_free(self->config.tcti);
	g_free(self->config.state_dir);
	g_free(self->config.hook_directory);
	g_free(self->config.hook_user);
	G_OBJECT_CLASS(tkms_engine_parent_class)->finalize(object);
}

static void
tkms_engine_class_init(TkmsEngineClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = tkms_engine_finalize;
	signals[SIGNAL_TPM_STATUS_CHANGED] =
		g_signal_new("tpm-status-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
			     NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
tkms_engine_init(TkmsEngine *self)
{
}
