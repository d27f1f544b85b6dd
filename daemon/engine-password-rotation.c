/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-engine"

/* The rotation of a password key (issue 8, DESIGN.md "Keys"): create -> set -> test ->
 * finish, or rollback after a failed set or test. RotateKey and the scheduler's ROTATE event
 * start it the same way. Every step ends with one life-cycle change of the key (a fresh copy,
 * one transaction, one durable audit record "RotateKey" with "step=... result=..."), made in
 * the key's queue of changes like any other (engine-lifecycle.c), so that a caller's change
 * between two steps is never lost. The stored rotation.step is the step that runs next: a
 * tkmsd that was stopped or killed resumes there at its next start, so hooks must be
 * idempotent (docs/passwords.md).
 *
 *   create    the pending version (pre-active, no activation date), step set; RotateKey
 *             answers with its number once this is on disk
 *   set       HOOK set; ok: step test; failed: step rollback
 *   test      HOOK test; ok: the switch (pending -> current, current -> previous, the old
 *             previous deactivated) and step finish; failed: step rollback
 *   finish    HOOK finish (a failure is recorded, the switch stays); step none, result ok
 *   rollback  HOOK rollback (a failure is recorded); the pending version is destroyed; step
 *             none, result failed, the retry falls due after a backoff
 *
 * Without a hook, set and test are skipped and RotateKey answers once the switch is made.
 * The passwords the hook gets are read like GetSecret's (actor tkmsd, audited) and live
 * in bytes that are wiped when freed. */

#include <string.h>

#include "engine-private.h"
#include "hook.h"

/* the first retry after a failed rotation; it doubles with each failure, up to the policy's
 * period (or a day without one) */
#define BACKOFF_FIRST 60
#define BACKOFF_MAX (24 * 3600)
/* a step that could not be saved (the store or the audit log failed) is tried again */
#define STEP_RETRY_SECONDS 10
/* last_rotation.reason, at most */
#define REASON_MAX 4096

/* One rotation that this tkmsd drives: from its create (or its resumption at start) to its
 * end. In engine->rotations ("owner/name") while it runs. */
typedef struct {
	gint refcount;
	TkmsEngine *engine; /* strong */
	gchar *id;
	TkmsKeyRef ref;
	guint32 pending; /* the pending version */
	/* the hook's last run */
	TkmsRotationStep running;
	gchar *hook;
	GBytes *current;
	GBytes *pending_pw;
	GBytes *previous;
	guint32 current_version;
	guint32 previous_version;
	guint reads; /* GetSecret reads under way */
	GError *read_error;
	/* RotateKey without a hook is answered at the end */
	GTask *reply;
	guint retry_source;
} Rotation;

static Rotation *
rotation_ref(Rotation *r)
{
	g_atomic_int_inc(&r->refcount);
	return r;
}

static void
clear_passwords(Rotation *r)
{
	/* the bytes wipe themselves when their last reference goes (GetSecret's) */
	g_clear_pointer(&r->current, g_bytes_unref);
	g_clear_pointer(&r->pending_pw, g_bytes_unref);
	g_clear_pointer(&r->previous, g_bytes_unref);
	g_clear_error(&r->read_error);
	r->current_version = r->previous_version = 0;
}

static void
rotation_unref(Rotation *r)
{
	if (r == NULL || !g_atomic_int_dec_and_test(&r->refcount))
		return;
	clear_passwords(r);
	g_clear_handle_id(&r->retry_source, g_source_remove);
	g_clear_object(&r->reply);
	g_free(r->hook);
	tkms_key_ref_clear(&r->ref);
	g_free(r->id);
	g_object_unref(r->engine);
	g_free(r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Rotation, rotation_unref)

static gint64
now_s(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

static gchar *
key_id(guint32 owner, const gchar *name)
{
	return g_strdup_printf("%u/%s", owner, name);
}

static const TkmsActor daemon_actor = TKMS_ACTOR_INIT_DAEMON;

static void advance(Rotation *r);

/* ---- the end of a rotation this tkmsd drove ---- */

static void
reply(Rotation *r, TkmsKey *key, GError *error)
{
	g_autoptr(GTask) task = g_steal_pointer(&r->reply);

	if (task == NULL) {
		if (error != NULL)
			g_error_free(error);
		return;
	}
	if (error != NULL)
		g_task_return_error(task, error);
	else
		g_task_return_pointer(task, tkms_key_ref(key), (GDestroyNotify)tkms_key_unref);
}

/* The driver lets go of the rotation (it ended, or another driver or a caller's change took
 * it over); the stored state stays what it is. */
static void
release(Rotation *r, TkmsKey *key, GError *error)
{
	const TkmsKeyRotation *rot = key != NULL ? &key->rotation : NULL;

	/* a RotateKey without a hook that could not make the switch */
	if (error == NULL && rot != NULL && rot->step == TKMS_ROTATION_STEP_NONE &&
	    rot->last_version == r->pending && !rot->last_ok)
		error = g_error_new(TKMS_ERROR, TKMS_ERROR_FAILED,
				    "The rotation of key \"%s\" failed: %s", key->name,
				    rot->last_reason ? rot->last_reason : "");
	reply(r, key, error);
	clear_passwords(r);
	if (r->engine->rotations != NULL && g_hash_table_lookup(r->engine->rotations, r->id) == r)
		g_hash_table_remove(r->engine->rotations, r->id);
}

/* ---- the changes that end each step ---- */

typedef enum {
	CHANGE_SET_DONE,    /* set succeeded: step test */
	CHANGE_SWITCH,      /* test succeeded (or no hook): the switch, step finish */
	CHANGE_FAILED,      /* set or test failed: step rollback */
	CHANGE_FINISHED,    /* finish ran: step none, result ok */
	CHANGE_ROLLED_BACK, /* rollback ran: the pending version goes, step none, failed */
} ChangeKind;

typedef struct {
	Rotation *r;
	ChangeKind kind;
	TkmsRotationStep from; /* the step the change ends */
	gboolean hook_ok;
	gchar *reason; /* masked */
} StepChange;

static void
step_change_free(gpointer data)
{
	StepChange *c = data;
	rotation_unref(c->r);
	g_free(c->reason);
	g_free(c);
}

/* At most REASON_MAX bytes, cut at a character. */
static gchar *
clip_reason(const gchar *reason)
{
	const gchar *end;

	if (reason == NULL)
		return g_strdup("");
	if (strlen(reason) <= REASON_MAX)
		return g_strdup(reason);
	end = g_utf8_find_prev_char(reason, reason + REASON_MAX + 1);
	return g_strndup(reason, end - reason);
}

static guint64
backoff(TkmsKey *key, guint32 attempts)
{
	guint64 cap = key->policy.period > 0 ? key->policy.period : BACKOFF_MAX;
	guint64 wait = BACKOFF_FIRST;

	for (guint32 i = 1; i < attempts && wait < cap; i++)
		wait *= 2;
	return MAX(MIN(wait, cap), 1);
}

static void
set_detail(TkmsEngineOp *op, const gchar *step, gboolean ok, const gchar *reason, const gchar *more)
{
	g_free(op->detail);
	op->detail = g_strdup_printf("step=%s result=%s%s%s%s%s", step, ok ? "ok" : "failed",
				     reason && *reason ? " reason=" : "", reason ? reason : "",
				     more ? " " : "", more ? more : "");
}

/* The set or test failed, or the rotation cannot go on: step rollback, and last-rotation
 * already says so (durably, for a rollback resumed after a restart). */
static void
to_rollback(TkmsEngineOp *op, TkmsKey *key, TkmsRotationStep failed, const gchar *reason,
	    gint64 now)
{
	TkmsKeyRotation *rot = &key->rotation;
	g_autofree gchar *clipped = clip_reason(reason);

	rot->step = TKMS_ROTATION_STEP_ROLLBACK;
	rot->last_step = failed;
	rot->last_time = now;
	rot->last_version = rot->pending_version;
	rot->last_ok = FALSE;
	g_free(rot->last_reason);
	rot->last_reason = g_steal_pointer(&clipped);
	set_detail(op, tkms_rotation_step_to_string(failed), FALSE, rot->last_reason, NULL);
}

/* Why the pending version cannot become current, or NULL. */
static gchar *
cannot_switch(TkmsKey *key)
{
	TkmsKeyVersion *v = tkms_key_get_version(key, key->rotation.pending_version);
	TkmsKeyVersion *p = tkms_key_get_version(key, key->primary_version);

	if (v == NULL || !g_str_equal(v->state, TKMS_STATE_PRE_ACTIVE))
		return g_strdup_printf("the pending version %u is %s",
				       key->rotation.pending_version, v ? v->state : "gone");
	if (p != NULL && (g_str_equal(p->state, TKMS_STATE_DESTROY_SCHEDULED) ||
			  g_str_equal(p->state, TKMS_STATE_DESTROYED)))
		return g_strdup_printf("the key is being destroyed (version %u is %s)", p->version,
				       p->state);
	return NULL;
}

static gboolean
step_change(TkmsEngineOp *op, TkmsKey *key, gint64 now, GError **error)
{
	StepChange *c = tkms_engine_op_change_data(op);
	TkmsKeyRotation *rot = &key->rotation;
	g_autofree gchar *why = NULL;
	TkmsKeyVersion *v;

	op->version = c->r->pending;
	/* another driver, or a restart, moved on: nothing to do here */
	if (rot->step != c->from || rot->pending_version != c->r->pending) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_BUSY,
			    "The rotation of key \"%s\" to version %u is no longer at its %s step",
			    key->name, c->r->pending, tkms_rotation_step_to_string(c->from));
		return FALSE;
	}
	switch (c->kind) {
	case CHANGE_SET_DONE:
		if ((why = cannot_switch(key)) != NULL) {
			to_rollback(op, key, TKMS_ROTATION_STEP_SET, why, now);
			break;
		}
		rot->step = TKMS_ROTATION_STEP_TEST;
		set_detail(op, "set", TRUE, NULL, NULL);
		break;
	case CHANGE_SWITCH: {
		guint32 old = key->primary_version;
		guint32 deactivated;
		g_autofree gchar *more = NULL;

		if ((why = cannot_switch(key)) != NULL) {
			to_rollback(op, key, c->from, why, now);
			break;
		}
		deactivated = tkms_key_password_promote(key, rot->pending_version, now);
		rot->step = TKMS_ROTATION_STEP_FINISH;
		if (deactivated != 0)
			more = g_strdup_printf("%scurrent %u -> %u, previous %u, version %u "
					       "deactivated",
					       c->hook_ok ? "" : "(no hook: set and test skipped) ",
					       old, key->primary_version, old, deactivated);
		else
			more = g_strdup_printf("%scurrent %u -> %u, previous %u",
					       c->hook_ok ? "" : "(no hook: set and test skipped) ",
					       old, key->primary_version, old);
		set_detail(op, "test", TRUE, NULL, more);
		break;
	}
	case CHANGE_FAILED:
		to_rollback(op, key, c->from, c->reason, now);
		break;
	case CHANGE_FINISHED: {
		g_autofree gchar *clipped = clip_reason(c->reason);
		rot->step = TKMS_ROTATION_STEP_NONE;
		rot->last_step = TKMS_ROTATION_STEP_FINISH;
		rot->last_time = now;
		rot->last_version = rot->pending_version;
		rot->last_ok = TRUE;
		g_free(rot->last_reason);
		rot->last_reason = g_steal_pointer(&clipped);
		rot->pending_version = 0;
		rot->started = 0;
		rot->attempts = 0;
		rot->retry_at = 0;
		set_detail(op, "finish", c->hook_ok, rot->last_reason, NULL);
		break;
	}
	case CHANGE_ROLLED_BACK: {
		guint64 wait;
		v = tkms_key_get_version(key, rot->pending_version);
		/* discarded: its number is never used again; a version DestroyKey scheduled
		 * keeps its waiting period */
		if (v != NULL && g_str_equal(v->state, TKMS_STATE_PRE_ACTIVE)) {
			tkms_key_version_set_state(v, TKMS_STATE_DESTROYED, now);
			tkms_tpm_blob_clear(&v->blob);
		}
		if (!c->hook_ok) {
			g_autofree gchar *both = g_strdup_printf(
				"%s; rollback: %s", rot->last_reason ? rot->last_reason : "",
				c->reason ? c->reason : "failed");
			g_free(rot->last_reason);
			rot->last_reason = clip_reason(both);
		}
		rot->step = TKMS_ROTATION_STEP_NONE;
		rot->pending_version = 0;
		rot->started = 0;
		rot->attempts++;
		wait = backoff(key, rot->attempts);
		rot->retry_at = now + (gint64)wait;
		{
			g_autofree gchar *more =
				g_strdup_printf("version %u destroyed, attempt %u failed, retry in "
						"%" G_GUINT64_FORMAT " s",
						c->r->pending, rot->attempts, wait);
			set_detail(op, "rollback", c->hook_ok, c->hook_ok ? NULL : c->reason, more);
		}
		break;
	}
	}
	return TRUE;
}

static gboolean
retry_cb(gpointer data)
{
	advance(data);
	return G_SOURCE_REMOVE;
}

static void
step_saved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(Rotation) r = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKey) key = tkms_engine_key_change_finish(TKMS_ENGINE(source), res, &error);

	if (r->engine->rotations_stopped)
		return;
	if (key == NULL) {
		/* the store or the audit log failed (audited, if it could be): the step is
		 * tried again from what is stored */
		g_warning("The rotation of key %s could not save its step: %s; trying again in "
			  "%d s",
			  r->id, error->message, STEP_RETRY_SECONDS);
		clear_passwords(r);
		r->retry_source =
			g_timeout_add_seconds_full(G_PRIORITY_DEFAULT, STEP_RETRY_SECONDS, retry_cb,
						   rotation_ref(r), (GDestroyNotify)rotation_unref);
		return;
	}
	if (key->rotation.step == TKMS_ROTATION_STEP_NONE ||
	    key->rotation.pending_version != r->pending) {
		release(r, key, NULL);
		return;
	}
	advance(r);
}

static void
end_step(Rotation *r, ChangeKind kind, TkmsRotationStep from, gboolean hook_ok, const gchar *reason)
{
	TkmsEngineOp *op = tkms_engine_op_new(r->engine, "RotateKey", &daemon_actor, &r->ref, NULL,
					      step_saved_cb, rotation_ref(r));
	StepChange *c = g_new0(StepChange, 1);

	clear_passwords(r);
	c->r = rotation_ref(r);
	c->kind = kind;
	c->from = from;
	c->hook_ok = hook_ok;
	c->reason = g_strdup(reason);
	tkms_engine_op_begin_change(op, step_change, NULL, c, step_change_free);
}

/* ---- running the hook ---- */

static void
hook_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(Rotation) r = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reason = NULL;
	gboolean ok = tkms_hook_run_finish(res, &reason, &error);
	TkmsRotationStep step = r->running;

	if (r->engine->rotations_stopped)
		return;
	if (!ok)
		g_message("The rotation of key %s: %s", r->id, error->message);
	switch (step) {
	case TKMS_ROTATION_STEP_SET:
		if (ok)
			end_step(r, CHANGE_SET_DONE, step, TRUE, NULL);
		else
			end_step(r, CHANGE_FAILED, step, FALSE, error->message);
		break;
	case TKMS_ROTATION_STEP_TEST:
		if (ok)
			end_step(r, CHANGE_SWITCH, step, TRUE, NULL);
		else
			end_step(r, CHANGE_FAILED, step, FALSE, error->message);
		break;
	case TKMS_ROTATION_STEP_FINISH:
		end_step(r, CHANGE_FINISHED, step, ok, ok ? NULL : error->message);
		break;
	case TKMS_ROTATION_STEP_ROLLBACK:
		end_step(r, CHANGE_ROLLED_BACK, step, ok, ok ? NULL : error->message);
		break;
	case TKMS_ROTATION_STEP_NONE:
		break;
	}
}

static void
run_hook(Rotation *r, TkmsKey *key)
{
	const TkmsConfig *config = &r->engine->config;
	TkmsHookConfig hc = {.directory = config->hook_directory,
			     .user = config->hook_user,
			     .timeout = config->hook_timeout};
	TkmsHookInput in = {.step = tkms_rotation_step_to_string(r->running),
			    .owner = key->owner,
			    .key = key->name,
			    .current_version = r->current ? r->current_version : 0,
			    .current = r->current};

	if (r->running == TKMS_ROTATION_STEP_FINISH) {
		in.previous_version = r->previous ? r->previous_version : 0;
		in.previous = r->previous;
	} else {
		in.pending_version = r->pending;
		in.pending = r->pending_pw;
	}
	tkms_hook_run_async(&hc, r->hook, &in, r->engine->rotation_cancellable, hook_done_cb,
			    rotation_ref(r));
	/* the runner holds its own copy of the JSON, wiped when it is written */
	clear_passwords(r);
}

typedef struct {
	Rotation *r;
	TkmsKey *key;
	GBytes **into;
} Read;

static void
read_done(Rotation *r, TkmsKey *key)
{
	g_autoptr(GError) error = g_steal_pointer(&r->read_error);

	if (r->engine->rotations_stopped)
		return;
	/* set and test need both passwords; finish and rollback run with what there is */
	if (error != NULL &&
	    (r->running == TKMS_ROTATION_STEP_SET || r->running == TKMS_ROTATION_STEP_TEST)) {
		g_autofree gchar *reason = g_strdup_printf(
			"The hook \"%s\" %s could not be given the passwords: %s", r->hook,
			tkms_rotation_step_to_string(r->running), error->message);
		clear_passwords(r);
		end_step(r, CHANGE_FAILED, r->running, FALSE, reason);
		return;
	}
	run_hook(r, key);
}

static void
secret_read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	Read *rd = user_data;
	g_autoptr(Rotation) r = rd->r;
	g_autoptr(TkmsKey) key = rd->key;
	g_autoptr(GError) error = NULL;
	GBytes *bytes = tkms_engine_bytes_finish(TKMS_ENGINE(source), res, &error);

	if (bytes != NULL)
		*rd->into = bytes;
	else if (r->read_error == NULL)
		r->read_error = g_steal_pointer(&error);
	g_free(rd);
	if (--r->reads == 0)
		read_done(r, key);
}

static void
read_secret(Rotation *r, TkmsKey *key, const gchar *stage, GBytes **into)
{
	TkmsActor actor = daemon_actor;
	Read *rd = g_new0(Read, 1);

	/* a compromised current password must be rotated away: tkmsd reads it for the hook
	 * as an administrator would (audited with a warning) */
	actor.admin = TRUE;
	rd->r = rotation_ref(r);
	rd->key = tkms_key_ref(key);
	rd->into = into;
	r->reads++;
	tkms_engine_get_secret(r->engine, &actor, &r->ref, stage, NULL, secret_read_cb, rd);
}

/* Reads the passwords the step's hook is given, then runs it. */
static void
start_hook(Rotation *r, TkmsKey *key, TkmsRotationStep step)
{
	TkmsKeyVersion *p = tkms_key_get_version(key, key->primary_version);

	clear_passwords(r);
	r->running = step;
	r->reads = 1; /* until every read has started */
	if (p != NULL) {
		r->current_version = p->version;
		read_secret(r, key, "current", &r->current);
	}
	if (step == TKMS_ROTATION_STEP_FINISH) {
		r->previous_version = key->rotation.previous_version;
		if (r->previous_version != 0 && r->previous_version != key->primary_version)
			read_secret(r, key, "previous", &r->previous);
	} else {
		read_secret(r, key, "pending", &r->pending_pw);
	}
	if (--r->reads == 0)
		read_done(r, key);
}

/* ---- the driver ---- */

/* Runs the step the stored key is at. */
static void
advance(Rotation *r)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKey) key = NULL;
	TkmsRotationStep step;
	g_autoptr(GError) refused = NULL;

	r->retry_source = 0;
	if (r->engine->rotations_stopped)
		return;
	key = tkms_engine_lookup_key(r->engine, &daemon_actor, &r->ref, &error);
	if (key == NULL) {
		g_warning("The rotation of key %s stops: %s", r->id, error->message);
		release(r, NULL, g_steal_pointer(&error));
		return;
	}
	step = key->rotation.step;
	if (step == TKMS_ROTATION_STEP_NONE || key->rotation.pending_version != r->pending) {
		release(r, key, NULL);
		return;
	}
	g_clear_pointer(&r->hook, g_free);
	if (key->policy.hook[0] != '\0')
		r->hook = g_strdup(key->policy.hook);
	if (r->hook == NULL) {
		/* nothing to apply the password to: the program that reads it is the target */
		switch (step) {
		case TKMS_ROTATION_STEP_SET:
		case TKMS_ROTATION_STEP_TEST:
			end_step(r, CHANGE_SWITCH, step, FALSE, NULL);
			return;
		case TKMS_ROTATION_STEP_FINISH:
			end_step(r, CHANGE_FINISHED, step, TRUE, NULL);
			return;
		case TKMS_ROTATION_STEP_ROLLBACK:
			end_step(r, CHANGE_ROLLED_BACK, step, TRUE, NULL);
			return;
		case TKMS_ROTATION_STEP_NONE:
			return;
		}
	}
	/* RotateKey with a hook is answered once the pending version exists */
	reply(r, key, NULL);
	start_hook(r, key, step);
}

/* Takes a rotation over (a new one, or one found at start); FALSE if this tkmsd drives it
 * already. */
static Rotation *
drive(TkmsEngine *self, guint32 owner, const gchar *name, guint32 pending)
{
	Rotation *r;
	g_autofree gchar *id = key_id(owner, name);

	if (g_hash_table_contains(self->rotations, id))
		return NULL;
	r = g_new0(Rotation, 1);
	r->refcount = 1;
	r->engine = g_object_ref(self);
	r->id = g_steal_pointer(&id);
	tkms_key_ref_init(&r->ref, owner, name);
	r->pending = pending;
	g_hash_table_insert(self->rotations, g_strdup(r->id), r);
	return r;
}

/* ---- create ---- */

typedef struct {
	gboolean scheduled; /* the scheduler's ROTATE event, not a caller's RotateKey */
	gboolean not_due;
	TkmsTpmBlob blob;
	GTask *reply;
} CreateData;

static void
create_data_free(gpointer data)
{
	CreateData *d = data;
	tkms_tpm_blob_clear(&d->blob);
	g_clear_object(&d->reply);
	g_free(d);
}

static gboolean
create_change(TkmsEngineOp *op, TkmsKey *key, gint64 now, GError **error)
{
	CreateData *d = tkms_engine_op_change_data(op);
	TkmsKeyVersion *v;

	if (d->not_due) {
		op->detail = g_strdup("nothing due");
		return TRUE;
	}
	v = tkms_key_add_pending_version(key, &d->blob, now);
	key->rotation.step = TKMS_ROTATION_STEP_SET;
	key->rotation.pending_version = v->version;
	key->rotation.started = now;
	op->version = v->version;
	op->detail =
		g_strdup_printf("step=create result=ok pending %u%s%s", v->version,
				key->policy.hook[0] ? " hook=" : " (no hook)", key->policy.hook);
	return TRUE;
}

static void
generated_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	TkmsEngineOp *op = user_data;
	CreateData *d = tkms_engine_op_change_data(op);
	GError *error = NULL;

	if (!tkms_engine_password_seal_finish(TKMS_ENGINE(source), res, &d->blob, &error)) {
		tkms_engine_op_change_fail(op, error);
		return;
	}
	tkms_engine_op_change_apply(op);
}

static void
create_start(TkmsEngineOp *op)
{
	CreateData *d = tkms_engine_op_change_data(op);
	TkmsKey *key = tkms_engine_op_change_copy(op);
	TkmsKeyVersion *p = tkms_key_get_version(key, key->primary_version);

	if (key->type != TKMS_KEY_TYPE_PASSWORD) {
		tkms_engine_op_change_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_FAILED,
							   "Key \"%s\" is no longer a password key",
							   key->name));
		return;
	}
	if (d->scheduled) {
		TkmsKeyEvent event;
		guint32 version;
		gint64 due = tkms_key_next_event(key, &event, &version);
		/* a caller rotated or changed the policy since the event was read */
		if (due == 0 || due > now_s() || event != TKMS_KEY_EVENT_ROTATE) {
			d->not_due = TRUE;
			tkms_engine_op_change_apply(op);
			return;
		}
	}
	if (key->rotation.step != TKMS_ROTATION_STEP_NONE) {
		tkms_engine_op_change_fail(
			op,
			g_error_new(TKMS_ERROR, TKMS_ERROR_BUSY,
				    "A rotation of key \"%s\" is under way, waiting on its %s "
				    "step; retry when it has ended (see GetKeyInfo's rotation)",
				    key->name, tkms_rotation_step_to_string(key->rotation.step)));
		return;
	}
	if (p != NULL && (g_str_equal(p->state, TKMS_STATE_DESTROY_SCHEDULED) ||
			  g_str_equal(p->state, TKMS_STATE_DESTROYED))) {
		tkms_engine_op_change_fail(
			op, g_error_new(TKMS_ERROR, TKMS_ERROR_KEY_STATE,
					"Version %u of key \"%s\" is %s: the key is being "
					"destroyed; cancel its destruction first",
					p->version, key->name, p->state));
		return;
	}
	/* not cancellable: a version the TPM made is saved even if its caller has gone */
	tkms_engine_password_generate(op->engine, op->actor.uid, key, key->versions->len + 1, NULL,
				      generated_cb, op);
}

static void
created_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	GTask *outer = user_data;
	TkmsEngine *self = TKMS_ENGINE(source);
	GError *error = NULL;
	g_autoptr(TkmsKey) key = tkms_engine_key_change_finish(self, res, &error);
	Rotation *r;

	if (key == NULL) {
		g_task_return_error(outer, error);
		g_object_unref(outer);
		return;
	}
	if (key->rotation.step != TKMS_ROTATION_STEP_SET || self->rotations_stopped ||
	    (r = drive(self, key->owner, key->name, key->rotation.pending_version)) == NULL) {
		/* nothing was due, or tkmsd stops (the rotation resumes at its next start) */
		g_task_return_pointer(outer, g_steal_pointer(&key), (GDestroyNotify)tkms_key_unref);
		g_object_unref(outer);
		return;
	}
	r->reply = outer;
	advance(r);
}

void
tkms_engine_rotate_password(TkmsEngine *self, const TkmsActor *actor, const TkmsKeyRef *key,
			    gboolean scheduled, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *outer = g_task_new(self, cancellable, callback, user_data);
	TkmsEngineOp *op =
		tkms_engine_op_new(self, "RotateKey", actor, key, cancellable, created_cb, outer);
	CreateData *d = g_new0(CreateData, 1);

	/* what happened is the answer, cancelled or not (as for every change) */
	g_task_set_check_cancellable(outer, FALSE);
	d->scheduled = scheduled;
	tkms_engine_op_begin_change(op, create_change, create_start, d, create_data_free);
}

gboolean
tkms_engine_is_password_key(TkmsEngine *self, const TkmsKeyRef *ref)
{
	g_autoptr(TkmsKey) key = NULL;

	if (!tkms_key_name_is_valid(ref->name))
		return FALSE;
	key = tkms_keystore_lookup(self->keystore, ref->owner, ref->name, NULL);
	return key != NULL && key->type == TKMS_KEY_TYPE_PASSWORD;
}

/* ---- start and stop ---- */

static gboolean
resume_idle(gpointer data)
{
	TkmsEngine *self = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) keys = NULL;

	self->resume_source = 0;
	if (self->rotations_stopped)
		return G_SOURCE_REMOVE;
	keys = tkms_keystore_list_rotating(self->keystore, &error);
	if (keys == NULL) {
		g_warning("Cannot read the rotations under way: %s; trying again in %d s",
			  error->message, STEP_RETRY_SECONDS);
		self->resume_source = g_timeout_add_seconds(STEP_RETRY_SECONDS, resume_idle, self);
		return G_SOURCE_REMOVE;
	}
	for (guint i = 0; i < keys->len; i++) {
		TkmsKey *key = g_ptr_array_index(keys, i);
		Rotation *r = drive(self, key->owner, key->name, key->rotation.pending_version);
		if (r == NULL)
			continue;
		g_message("Resuming the rotation of key %s at its %s step (version %u)", r->id,
			  tkms_rotation_step_to_string(key->rotation.step),
			  key->rotation.pending_version);
		advance(r);
	}
	return G_SOURCE_REMOVE;
}

void
tkms_engine_password_rotation_init(TkmsEngine *self)
{
	self->rotations = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
						(GDestroyNotify)rotation_unref);
	self->rotation_cancellable = g_cancellable_new();
	/* once the main loop runs, as the scheduler's events that fell due while tkmsd was
	 * down */
	self->resume_source = g_idle_add(resume_idle, self);
}

void
tkms_engine_password_rotation_stop(TkmsEngine *self)
{
	/* the rotations stay where they are on disk and resume at the next start; their hooks
	 * are killed now */
	self->rotations_stopped = TRUE;
	g_clear_handle_id(&self->resume_source, g_source_remove);
	if (self->rotation_cancellable != NULL)
		g_cancellable_cancel(self->rotation_cancellable);
	if (self->rotations != NULL) {
		GHashTableIter iter;
		gpointer value;
		g_hash_table_iter_init(&iter, self->rotations);
		while (g_hash_table_iter_next(&iter, NULL, &value)) {
			Rotation *r = value;
			g_clear_handle_id(&r->retry_source, g_source_remove);
		}
		/* each holds the engine: what is still in flight lets go when it ends */
		g_hash_table_remove_all(self->rotations);
	}
}

void
tkms_engine_password_rotation_clear(TkmsEngine *self)
{
	g_clear_pointer(&self->rotations, g_hash_table_unref);
	g_clear_object(&self->rotation_cancellable);
}
