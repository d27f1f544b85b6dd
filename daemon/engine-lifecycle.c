/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-engine"

/* The life of a key's versions (NIST SP 800-57 Part 1 §5.3): RotateKey, SetPrimaryVersion,
 * SetKeyVersionState, DestroyKey, DestroyKeyVersion, CancelKeyDestruction,
 * SetRotationPolicy, and the scheduler's events. Every change is made on a copy of the key,
 * written in one transaction, and audited durably (with the transition) before it is
 * answered; lookups see the stored key until then. One change per key at a time: the others
 * wait in the key's queue. */

#include <string.h>

#include "ciphertext.h"
#include "crypto.h"
#include "engine-private.h"
#include "hook.h"


/* changes to one key waiting behind the one being made, at most */
#define MAX_QUEUED 64

/* A change: checks and edits the copy (FALSE with error: refused, nothing written). */
typedef TkmsEngineChangeFunc ChangeFunc;

typedef struct {
	gchar *lock; /* "owner/name" (engine->changing) while this change is the key's current */
	TkmsKey *copy;
	ChangeFunc change;
	guint32 version;
	gchar *state;
	GVariant *policy;
	TkmsTpmCreate req;
	TkmsKeyEvent event;
	void (*start)(TkmsEngineOp *op); /* its turn: apply, or the rotation's TPM work first */
	gpointer extra;                  /* a change made in another file: its own data */
	GDestroyNotify extra_free;
} ChangeData;

static void
change_data_free(gpointer data)
{
	ChangeData *d = data;
	g_clear_pointer(&d->copy, tkms_key_unref);
	g_free(d->state);
	g_clear_pointer(&d->policy, g_variant_unref);
	tkms_tpm_blob_clear(&d->req.out);
	g_clear_pointer(&d->req.material, tkms_secret_unref);
	g_free(d->lock);
	if (d->extra_free != NULL)
		d->extra_free(d->extra);
	g_free(d);
}

static gint64
now_s(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

static void run(TkmsEngineOp *op);

/* Lets the next change queued on the key run (or frees the key's queue). */
static void
unlock(TkmsEngineOp *op)
{
	ChangeData *d = op->data;
	g_autofree gchar *lock = g_steal_pointer(&d->lock);
	GQueue *queue;
	TkmsEngineOp *next;

	if (lock == NULL)
		return;
	queue = g_hash_table_lookup(op->engine->changing, lock);
	next = queue != NULL ? g_queue_pop_head(queue) : NULL;
	if (next == NULL) {
		g_hash_table_remove(op->engine->changing, lock);
		return;
	}
	((ChangeData *)next->data)->lock = g_steal_pointer(&lock);
	run(next);
}

static void
change_fail(TkmsEngineOp *op, GError *error)
{
	unlock(op);
	tkms_engine_op_fail(op, error);
}

static void
saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	ChangeData *d = op->data;
	GError *error = NULL;

	if (!tkms_keystore_save_finish(TKMS_KEYSTORE(source), res, &error)) {
		change_fail(op, error);
		return;
	}
	unlock(op);
	tkms_engine_key_changed(op->engine);
	tkms_engine_op_return_key(op, d->copy);
}

/* Applies the change to the copy and writes it. */
static void
apply(TkmsEngineOp *op)
{
	ChangeData *d = op->data;
	GError *error = NULL;

	if (!d->change(op, d->copy, now_s(), &error)) {
		change_fail(op, error);
		return;
	}
	/* material of a version that changed state leaves memory, and its objects the TPM; the
	 * next use unseals or loads again after the state check */
	tkms_key_cache_remove_key(op->engine->keycache, d->copy->owner, d->copy->name);
	tkms_tpm_forget_key(op->engine->tpm, d->copy->owner, d->copy->name);
	tkms_engine_op_save(op, d->copy, saved_cb);
}

/* A change runs on the key as stored when its turn comes: a fresh copy, with the live counts. */
static void
run(TkmsEngineOp *op)
{
	ChangeData *d = op->data;
	GError *error = NULL;
	TkmsKey *key;

	g_clear_pointer(&op->k, tkms_key_unref);
	op->k = key = tkms_engine_lookup_key(op->engine, &op->actor, &op->key, &error);
	if (key == NULL) {
		change_fail(op, error);
		return;
	}
	g_clear_pointer(&d->copy, tkms_key_unref);
	d->copy = tkms_key_copy(key);
	tkms_engine_usage_patch(op->engine, d->copy);
	d->start(op);
}

/* Looks the key up (NotFound at once), then runs the change, or queues it behind the changes
 * to the same key that came first: they run one at a time, in order, each on the key the
 * previous one saved. Past MAX_QUEUED waiting changes, Busy. */
static void
begin(TkmsEngineOp *op, ChangeFunc change, void (*start)(TkmsEngineOp *op))
{
	ChangeData *d = op->data;
	TkmsKey *key;
	g_autofree gchar *lock = NULL;
	GQueue *queue;

	op->lifecycle = TRUE;
	d->change = change;
	d->start = start;
	if ((key = tkms_engine_op_lookup_key(op)) == NULL)
		return;
	lock = g_strdup_printf("%u/%s", key->owner, key->name);
	queue = g_hash_table_lookup(op->engine->changing, lock);
	if (queue == NULL) {
		g_hash_table_insert(op->engine->changing, g_strdup(lock), g_queue_new());
		d->lock = g_steal_pointer(&lock);
		run(op);
		return;
	}
	if (queue->length >= MAX_QUEUED) {
		tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_BUSY,
						    "%u changes to key \"%s\" are waiting already; "
						    "retry when they are done",
						    queue->length, key->name));
		return;
	}
	g_queue_push_tail(queue, op);
}

static ChangeData *
op_data(TkmsEngineOp *op)
{
	ChangeData *d = g_new0(ChangeData, 1);
	tkms_engine_op_set_data(op, d, change_data_free);
	return d;
}

TkmsKey *
tkms_engine_key_change_finish(TkmsEngine *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), NULL);
	return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- checks shared by the changes ---- */

static TkmsKeyVersion *
get_version(TkmsKey *key, guint32 version, GError **error)
{
	TkmsKeyVersion *v = tkms_key_get_version(key, version);
	if (v == NULL)
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "Key \"%s\" has no version %u; its versions are 1 to %u", key->name,
			    version, key->versions->len);
	return v;
}

static gboolean
refuse_state(TkmsKey *key, TkmsKeyVersion *v, const gchar *why, GError **error)
{
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_KEY_STATE, "Version %u of key \"%s\" is %s: %s",
		    v->version, key->name, v->state, why);
	return FALSE;
}

static gboolean
is(TkmsKeyVersion *v, const gchar *state)
{
	return g_str_equal(v->state, state);
}

static void
set_state(TkmsEngineOp *op, TkmsKeyVersion *v, const gchar *state, gint64 now)
{
	g_autofree gchar *detail =
		g_strdup_printf("%s%s%s -> %s", op->detail ? op->detail : "",
				op->detail ? ", " : "", v->state, state);
	g_free(op->detail);
	op->detail = g_strdup_printf("%s", detail);
	if (op->version == 0)
		op->version = v->version;
	tkms_key_version_set_state(v, state, now);
}

static gboolean run_due(TkmsEngineOp *op, TkmsKey *key, gint64 now, GError **error);

/* ---- RotateKey ---- */

static gboolean
rotate(TkmsEngineOp *op, TkmsKey *key, gint64 now, GError **error)
{
	ChangeData *d = op->data;
	gboolean used_up = tkms_key_primary_used_up(key);
	guint32 old = key->primary_version;
	TkmsKeyVersion *v;

	if (key->type == TKMS_KEY_TYPE_PASSWORD) {
		/* the new password is current at once, the old one previous */
		v = tkms_key_add_pending_version(key, &d->req.out, now);
		tkms_key_password_promote(key, v->version, now);
	} else {
		v = tkms_key_add_version(key, &d->req.out, now, 0);
	}

	op->version = v->version;
	if (used_up)
		op->detail = g_strdup_printf("primary %u -> %u, max-uses %" G_GUINT64_FORMAT
					     " reached",
					     old, v->version, key->policy.max_uses
								 ? key->policy.max_uses
								 : tkms_key_max_uses(key));
	else
		op->detail = g_strdup_printf("primary %u -> %u", old, v->version);
	return TRUE;
}

static gboolean
check_rotate(TkmsKey *key, GError **error)
{
	TkmsKeyVersion *p = tkms_key_get_version(key, key->primary_version);
	if (p != NULL && (is(p, TKMS_STATE_DESTROY_SCHEDULED) || is(p, TKMS_STATE_DESTROYED)))
		return refuse_state(key, p,
				    "the key is being destroyed; cancel its destruction first",
				    error);
	return TRUE;
}

static void
rotate_password_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	ChangeData *d = op->data;
	GError *error = NULL;

	if (!tkms_engine_password_seal_finish(TKMS_ENGINE(source), res, &d->req.out, &error)) {
		change_fail(op, error);
		return;
	}
	apply(op);
}

static void
rotate_tpm_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	GError *error = NULL;

	if (!tkms_tpm_finish(TKMS_TPM(source), res, &error)) {
		change_fail(op, error);
		return;
	}
	apply(op);
}

/* The rotation's TPM work, then apply (the lock is held across it). */
static void
rotate_start(TkmsEngineOp *op)
{
	ChangeData *d = op->data;
	GError *error = NULL;

	if (!check_rotate(d->copy, &error)) {
		change_fail(op, error);
		return;
	}
	if (d->event == TKMS_KEY_EVENT_ROTATE) {
		TkmsKeyEvent event;
		guint32 version;
		gint64 due = tkms_key_next_event(d->copy, &event, &version);
		/* a caller changed the policy or rotated since the event was read */
		if (due == 0 || due > now_s() || event != TKMS_KEY_EVENT_ROTATE) {
			d->change = run_due;
			apply(op);
			return;
		}
	}
	if (d->copy->type == TKMS_KEY_TYPE_PASSWORD) {
		tkms_engine_password_generate(op->engine, op->actor.uid, d->copy,
					      d->copy->versions->len + 1, NULL, rotate_password_cb,
					      op);
		return;
	}
	d->req.kind = tkms_key_type_object_kind(d->copy->type);
	d->req.pcrs = d->copy->pcrs;
	d->req.seal_size = TKMS_AES_KEY_LEN;
	/* the new version is bound to its owner, name and number: keys made before binding
	 * move to the bound form here (tkms_key_add_version numbers it so) */
	d->req.bind = TRUE;
	tkms_tpm_key_id_set(&d->req.key_id, d->copy->owner, d->copy->name,
			    d->copy->versions->len + 1);
	/* not cancellable: a version the TPM made is saved even if its caller has gone */
	tkms_tpm_create(op->engine->tpm, op->actor.uid, &d->req, NULL, rotate_tpm_cb, op);
}

void
tkms_engine_rotate_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
		       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op;

	/* create, set, test, finish (engine-password-rotation.c) */
	if (tkms_engine_is_password_key(self, key)) {
		tkms_engine_rotate_password(self, actor, key, FALSE, cancellable, callback,
					    user_data);
		return;
	}
	op = tkms_engine_op_new(self, "RotateKey", actor, key, cancellable, callback, user_data);
	op_data(op);
	begin(op, rotate, rotate_start);
}

/* ---- changes made in other files (engine-password.c) ---- */

void
tkms_engine_op_begin_change(TkmsEngineOp *op, TkmsEngineChangeFunc change,
			    void (*start)(TkmsEngineOp *op), gpointer data,
			    GDestroyNotify data_free)
{
	ChangeData *d = op_data(op);

	d->extra = data;
	d->extra_free = data_free;
	begin(op, change, start != NULL ? start : apply);
}

gpointer
tkms_engine_op_change_data(TkmsEngineOp *op)
{
	return ((ChangeData *)op->data)->extra;
}

TkmsKey *
tkms_engine_op_change_copy(TkmsEngineOp *op)
{
	return ((ChangeData *)op->data)->copy;
}

void
tkms_engine_op_change_apply(TkmsEngineOp *op)
{
	apply(op);
}

void
tkms_engine_op_change_fail(TkmsEngineOp *op, GError *error)
{
	change_fail(op, error);
}

/* ---- SetPrimaryVersion ---- */

static gboolean
set_primary(TkmsEngineOp *op, TkmsKey *key, gint64 now, GError **error)
{
	ChangeData *d = op->data;
	TkmsKeyVersion *v = get_version(key, d->version, error);
	TkmsKeyVersion *old;

	if (v == NULL)
		return FALSE;
	op->version = v->version;
	if (!is(v, TKMS_STATE_ACTIVE))
		return refuse_state(key, v,
				    "only an active version can be primary; resume it first",
				    error);
	old = tkms_key_get_version(key, key->primary_version);
	op->detail = g_strdup_printf("primary %u -> %u", key->primary_version, v->version);
	if (old != NULL && old != v)
		old->superseded = now;
	v->superseded = 0;
	key->primary_version = v->version;
	return TRUE;
}

void
tkms_engine_set_primary_version(TkmsEngine *self, const TkmsActor *actor,
				const TkmsKeyRef *key, guint32 version, GCancellable *cancellable,
				GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op = tkms_engine_op_new(self, "SetPrimaryVersion", actor, key, cancellable,
					      callback, user_data);
	op_data(op)->version = version;
	begin(op, set_primary, apply);
}

/* ---- SetKeyVersionState ---- */

static gboolean
set_version_state(TkmsEngineOp *op, TkmsKey *key, gint64 now, GError **error)
{
	ChangeData *d = op->data;
	const gchar *to = d->state;
	TkmsKeyVersion *v;

	if (!g_str_equal(to, TKMS_STATE_ACTIVE) && !g_str_equal(to, TKMS_STATE_DEACTIVATED) &&
	    !g_str_equal(to, TKMS_STATE_SUSPENDED) && !g_str_equal(to, TKMS_STATE_COMPROMISED)) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "The state must be active, deactivated, suspended or "
				    "compromised; destruction has its own methods");
		return FALSE;
	}
	if ((v = get_version(key, d->version, error)) == NULL)
		return FALSE;
	op->version = v->version;
	if (is(v, TKMS_STATE_DESTROYED))
		return refuse_state(key, v, "its material is gone for good", error);
	if (is(v, TKMS_STATE_DESTROY_SCHEDULED))
		return refuse_state(key, v, "cancel its destruction first (CancelKeyDestruction)",
				    error);
	if (is(v, TKMS_STATE_PRE_ACTIVE))
		return refuse_state(key, v, "it becomes active at its activation time", error);
	if (is(v, TKMS_STATE_COMPROMISED) && !g_str_equal(to, TKMS_STATE_COMPROMISED))
		return refuse_state(key, v,
				    "a compromised version never returns to use; rotate, and "
				    "destroy it once its data is re-encrypted",
				    error);
	if (v->version == key->primary_version && !g_str_equal(to, TKMS_STATE_ACTIVE))
		return refuse_state(key, v,
				    "the primary version cannot leave active; make another "
				    "version primary (SetPrimaryVersion) or rotate first",
				    error);
	if (g_str_equal(v->state, to)) {
		op->detail = g_strdup_printf("%s (unchanged)", to);
		return TRUE;
	}
	set_state(op, v, to, now);
	return TRUE;
}

void
tkms_engine_set_key_version_state(TkmsEngine *self, const TkmsActor *actor,
				  const TkmsKeyRef *key, guint32 version, const gchar *state,
				  GCancellable *cancellable, GAsyncReadyCallback callback,
				  gpointer user_data)
{
	TkmsEngineOp *op = tkms_engine_op_new(self, "SetKeyVersionState", actor, key,
					      cancellable, callback, user_data);
	ChangeData *d = op_data(op);
	d->version = version;
	d->state = g_strdup(state);
	begin(op, set_version_state, apply);
}

/* ---- destruction ---- */

static void
destroy_now(TkmsEngineOp *op, TkmsKeyVersion *v, gint64 now)
{
	set_state(op, v, TKMS_STATE_DESTROYED, now);
	/* the blobs go; the metadata stays so that the name is never reused */
	tkms_tpm_blob_clear(&v->blob);
}

static void
schedule_destroy(TkmsEngineOp *op, TkmsKeyVersion *v, gint64 now)
{
	guint64 wait = op->engine->config.destroy_wait;
	g_autofree gchar *prior = g_strdup(v->state);

	if (wait == 0) {
		destroy_now(op, v, now);
		return;
	}
	set_state(op, v, TKMS_STATE_DESTROY_SCHEDULED, now);
	v->prior_state = g_steal_pointer(&prior);
	v->destroy_at = now + (gint64)wait;
}

static gboolean
destroy_versions(TkmsEngineOp *op, TkmsKey *key, gint64 now, GError **error)
{
	ChangeData *d = op->data;
	TkmsKeyVersion *v;
	guint n = 0;

	if (d->version == 0) {
		for (guint i = 0; i < key->versions->len; i++) {
			v = g_ptr_array_index(key->versions, i);
			if (is(v, TKMS_STATE_DESTROYED) || is(v, TKMS_STATE_DESTROY_SCHEDULED))
				continue;
			schedule_destroy(op, v, now);
			n++;
		}
		op->version = 0;
		if (n == 0) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_KEY_STATE,
				    "Every version of key \"%s\" is destroyed or scheduled for "
				    "destruction already",
				    key->name);
			return FALSE;
		}
		return TRUE;
	}
	if ((v = get_version(key, d->version, error)) == NULL)
		return FALSE;
	op->version = v->version;
	if (is(v, TKMS_STATE_DESTROYED) || is(v, TKMS_STATE_DESTROY_SCHEDULED))
		return refuse_state(key, v, "its destruction is done or under way", error);
	if (v->version == key->primary_version)
		return refuse_state(key, v,
				    "it is the primary version; make another version primary or "
				    "rotate first, or destroy the whole key (DestroyKey)",
				    error);
	schedule_destroy(op, v, now);
	return TRUE;
}

void
tkms_engine_destroy_key_version(TkmsEngine *self, const TkmsActor *actor,
				const TkmsKeyRef *key, guint32 version, GCancellable *cancellable,
				GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op =
		tkms_engine_op_new(self, version ? "DestroyKeyVersion" : "DestroyKey", actor, key,
				   cancellable, callback, user_data);
	op_data(op)->version = version;
	begin(op, destroy_versions, apply);
}

void
tkms_engine_destroy_key(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	tkms_engine_destroy_key_version(self, actor, key, 0, cancellable, callback, user_data);
}

gboolean
tkms_engine_destroy_key_finish(TkmsEngine *self, GAsyncResult *result, GError **error)
{
	g_autoptr(TkmsKey) key = tkms_engine_key_change_finish(self, result, error);
	return key != NULL;
}

static gboolean
cancel_destruction(TkmsEngineOp *op, TkmsKey *key, gint64 now, GError **error)
{
	ChangeData *d = op->data;
	TkmsKeyVersion *v;
	guint n = 0;

	for (guint i = 0; i < key->versions->len; i++) {
		g_autofree gchar *prior = NULL;
		v = g_ptr_array_index(key->versions, i);
		if (d->version != 0 && v->version != d->version)
			continue;
		if (!is(v, TKMS_STATE_DESTROY_SCHEDULED))
			continue;
		prior = g_strdup(v->prior_state ? v->prior_state : TKMS_STATE_DEACTIVATED);
		set_state(op, v, prior, now);
		n++;
	}
	op->version = d->version;
	if (n > 0)
		return TRUE;
	if (d->version == 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_KEY_STATE,
			    "No version of key \"%s\" is scheduled for destruction", key->name);
		return FALSE;
	}
	if ((v = get_version(key, d->version, error)) == NULL)
		return FALSE;
	return refuse_state(key, v, "only a destroy-scheduled version can be restored", error);
}

void
tkms_engine_cancel_key_destruction(TkmsEngine *self, const TkmsActor *actor,
				   const TkmsKeyRef *key, guint32 version,
				   GCancellable *cancellable, GAsyncReadyCallback callback,
				   gpointer user_data)
{
	TkmsEngineOp *op = tkms_engine_op_new(self, "CancelKeyDestruction", actor, key,
					      cancellable, callback, user_data);
	op_data(op)->version = version;
	begin(op, cancel_destruction, apply);
}

/* ---- SetRotationPolicy ---- */

static gboolean
parse_policy(GVariant *dict, TkmsKeyType type, TkmsKeyPolicy *p, GError **error)
{
	GVariantIter iter;
	const gchar *name;
	GVariant *value;

	memset(p, 0, sizeof(*p));
	g_variant_iter_init(&iter, dict);
	while (g_variant_iter_loop(&iter, "{&sv}", &name, &value)) {
		guint64 *field;

		if (g_str_equal(name, "hook")) {
			const gchar *hook = g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)
						    ? g_variant_get_string(value, NULL)
						    : NULL;
			if (hook == NULL) {
				g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
						    "The policy key \"hook\" must be a string (s)");
				g_variant_unref(value);
				return FALSE;
			}
			if (*hook != '\0' && !tkms_hook_name_is_valid(hook)) {
				g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
					    "The hook must be the file name of an executable in "
					    "[passwords] HookDirectory ([A-Za-z0-9._-], 1 to %u "
					    "characters, not starting with a dot), or empty for none",
					    TKMS_HOOK_NAME_MAX);
				g_variant_unref(value);
				return FALSE;
			}
			if (*hook != '\0' && type != TKMS_KEY_TYPE_PASSWORD) {
				g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
					    "A rotation hook is for password keys only; this key is "
					    "%s",
					    tkms_key_type_to_string(type));
				g_variant_unref(value);
				return FALSE;
			}
			g_strlcpy(p->hook, hook, sizeof(p->hook));
			continue;
		}
		field = g_str_equal(name, "period")		 ? &p->period
				 : g_str_equal(name, "max-uses")	 ? &p->max_uses
				 : g_str_equal(name, "deactivate-after") ? &p->deactivate_after
				 : g_str_equal(name, "destroy-after")	 ? &p->destroy_after
									 : NULL;
		if (field == NULL) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "Unknown policy key \"%s\"; known keys are period, max-uses, "
				    "deactivate-after, destroy-after and (password keys) hook",
				    name);
			g_variant_unref(value);
			return FALSE;
		}
		/* times are added to Unix times: keep them far from overflow */
		if (!g_variant_is_of_type(value, G_VARIANT_TYPE_UINT64) ||
		    (field != &p->max_uses && g_variant_get_uint64(value) > G_MAXINT32 * 100ULL)) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
				    "The policy key \"%s\" must be a uint64 (t)%s", name,
				    field != &p->max_uses ? " of at most 214748364700 seconds" : "");
			g_variant_unref(value);
			return FALSE;
		}
		*field = g_variant_get_uint64(value);
	}
	if (type == TKMS_KEY_TYPE_AES_256_GCM && p->max_uses > TKMS_GCM_MAX_USES) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    "max-uses is at most 2^32 (%" G_GUINT64_FORMAT ") for aes-256-gcm keys: "
			    "GCM with random IVs must not encrypt more under one key (NIST SP "
			    "800-38D)",
			    TKMS_GCM_MAX_USES);
		return FALSE;
	}
	return TRUE;
}

static gboolean
set_policy(TkmsEngineOp *op, TkmsKey *key, gint64 now, GError **error)
{
	ChangeData *d = op->data;
	TkmsKeyPolicy p;

	if (!parse_policy(d->policy, key->type, &p, error))
		return FALSE;
	key->policy = p;
	op->detail = g_strdup_printf("period=%" G_GUINT64_FORMAT " max-uses=%" G_GUINT64_FORMAT
				     " deactivate-after=%" G_GUINT64_FORMAT
				     " destroy-after=%" G_GUINT64_FORMAT,
				     p.period, p.max_uses, p.deactivate_after, p.destroy_after);
	if (p.hook[0] != '\0') {
		gchar *with_hook = g_strdup_printf("%s hook=%s", op->detail, p.hook);
		g_free(op->detail);
		op->detail = with_hook;
	}
	return TRUE;
}

/* The hook may be run: it passes tkms_hook_check now (and again before each run). */
static void
set_policy_checked(TkmsEngineOp *op)
{
	ChangeData *d = op->data;
	const TkmsConfig *config = &op->engine->config;
	TkmsHookConfig hc = {.directory = config->hook_directory,
			     .user = config->hook_user,
			     .timeout = config->hook_timeout};
	GError *error = NULL;
	TkmsKeyPolicy p;

	if (!parse_policy(d->policy, d->copy->type, &p, &error) ||
	    (p.hook[0] != '\0' && g_strcmp0(p.hook, d->copy->policy.hook) != 0 &&
	     !tkms_hook_check(&hc, p.hook, &error))) {
		change_fail(op, error);
		return;
	}
	apply(op);
}

static void
hook_admin_answer(gboolean held, gpointer data)
{
	TkmsEngineOp *op = data;

	op->actor.admin = held;
	if (!held) {
		change_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_PERMISSION_DENIED,
					    "Setting, changing or removing the rotation hook of key "
					    "\"%s\" needs org.tkms.KeyManager.admin: a hook runs "
					    "programs; ask an administrator",
					    op->key.name));
		return;
	}
	set_policy_checked(op);
}

/* Syntax first, then admin if the hook changes (a hook names a program tkmsd runs), then
 * whether the hook may run: so that only administrators learn what the hook directory
 * holds. */
static void
set_policy_start(TkmsEngineOp *op)
{
	ChangeData *d = op->data;
	GError *error = NULL;
	TkmsKeyPolicy p;

	if (!parse_policy(d->policy, d->copy->type, &p, &error)) {
		change_fail(op, error);
		return;
	}
	if (g_strcmp0(p.hook, d->copy->policy.hook) == 0 || op->actor.admin) {
		set_policy_checked(op);
		return;
	}
	if (op->actor.ask_admin == NULL) {
		hook_admin_answer(FALSE, op);
		return;
	}
	op->actor.ask_admin(op->actor.ask_admin_data, hook_admin_answer, op);
}

void
tkms_engine_set_rotation_policy(TkmsEngine *self, const TkmsActor *actor,
				const TkmsKeyRef *key, GVariant *policy, GCancellable *cancellable,
				GAsyncReadyCallback callback, gpointer user_data)
{
	TkmsEngineOp *op = tkms_engine_op_new(self, "SetRotationPolicy", actor, key, cancellable,
					      callback, user_data);
	op_data(op)->policy = g_variant_ref(policy);
	begin(op, set_policy, set_policy_start);
}

/* ---- the scheduler's events (actor tkmsd) ---- */

/* Runs the key's earliest due event; the copy's state decides which, so an event that a
 * caller's change made moot (a version resumed, a destruction cancelled) is not run. */
static gboolean
run_due(TkmsEngineOp *op, TkmsKey *key, gint64 now, GError **error)
{
	ChangeData *d = op->data;
	TkmsKeyEvent event;
	guint32 version;
	gint64 due = tkms_key_next_event(key, &event, &version);
	TkmsKeyVersion *v = version ? tkms_key_get_version(key, version) : NULL;

	if (due == 0 || due > now || event != d->event) {
		op->detail = g_strdup("nothing due");
		return TRUE;
	}
	switch (event) {
	case TKMS_KEY_EVENT_ACTIVATE:
		set_state(op, v, TKMS_STATE_ACTIVE, now);
		break;
	case TKMS_KEY_EVENT_DEACTIVATE:
		set_state(op, v, TKMS_STATE_DEACTIVATED, now);
		break;
	case TKMS_KEY_EVENT_SCHEDULE_DESTROY:
		schedule_destroy(op, v, now);
		break;
	case TKMS_KEY_EVENT_DESTROY:
		destroy_now(op, v, now);
		break;
	case TKMS_KEY_EVENT_ROTATE: /* in rotate_due */
	case TKMS_KEY_EVENT_NONE:
		break;
	}
	return TRUE;
}

static const gchar *
event_name(TkmsKeyEvent event)
{
	switch (event) {
	case TKMS_KEY_EVENT_ACTIVATE:
		return "ActivateKeyVersion";
	case TKMS_KEY_EVENT_ROTATE:
		return "RotateKey";
	case TKMS_KEY_EVENT_DEACTIVATE:
		return "DeactivateKeyVersion";
	case TKMS_KEY_EVENT_SCHEDULE_DESTROY:
		return "ScheduleKeyVersionDestruction";
	case TKMS_KEY_EVENT_DESTROY:
		return "CompleteKeyVersionDestruction";
	default:
		return "KeyEvent";
	}
}

void
tkms_engine_run_event(TkmsEngine *self, TkmsKey *key, GAsyncReadyCallback callback,
		      gpointer user_data)
{
	TkmsActor daemon = TKMS_ACTOR_INIT_DAEMON;
	g_auto(TkmsKeyRef) ref = {0};
	TkmsKeyEvent event;
	guint32 version;
	TkmsEngineOp *op;
	ChangeData *d;

	tkms_key_next_event(key, &event, &version);
	tkms_key_ref_init(&ref, key->owner, key->name);
	if (event == TKMS_KEY_EVENT_ROTATE && key->type == TKMS_KEY_TYPE_PASSWORD) {
		tkms_engine_rotate_password(self, &daemon, &ref, TRUE, NULL, callback, user_data);
		return;
	}
	op = tkms_engine_op_new(self, event_name(event), &daemon, &ref, NULL, callback,
				user_data);
	d = op_data(op);
	d->event = event;
	op->version = version;
	if (event == TKMS_KEY_EVENT_ROTATE)
		begin(op, rotate, rotate_start);
	else
		begin(op, run_due, apply);
}

void
tkms_engine_key_changed(TkmsEngine *self)
{
	if (self->scheduler != NULL)
		tkms_scheduler_reschedule(self->scheduler);
}

/* ---- Decrypt's question to the front-end ---- */

gboolean
tkms_engine_decrypt_needs_admin(TkmsEngine *self, const TkmsKeyRef *ref, GBytes *ciphertext)
{
	g_autoptr(TkmsKey) key = NULL;
	TkmsCiphertext ct;
	TkmsKeyVersion *v;

	if (!tkms_key_name_is_valid(ref->name))
		return FALSE;
	key = tkms_keystore_lookup(self->keystore, ref->owner, ref->name, NULL);
	if (key == NULL || !tkms_ciphertext_parse(g_bytes_get_data(ciphertext, NULL),
						   g_bytes_get_size(ciphertext), &ct))
		return FALSE;
	v = tkms_key_get_version(key, ct.version);
	return v != NULL && is(v, TKMS_STATE_COMPROMISED);
}
