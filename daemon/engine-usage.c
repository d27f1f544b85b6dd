/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-engine"

/* Usage counting (DESIGN.md "Keys"): every protect operation under a primary version counts
 * one use (Encrypt, GenerateDataKey, ReEncrypt, Sign, SignDigest, Hmac, DeriveKey), and a
 * version never protects more than its key's max-uses (2^32 for aes-256-gcm by default).
 *
 * Counts are served from memory out of blocks reserved durably beforehand: one transaction
 * of the key store's writer thread raises the version's uses_reserved by a block, and the
 * next block is reserved when half of the current one is left, so calls rarely wait for a
 * commit. The block starts at BLOCK_MIN and doubles (up to BLOCK_MAX) while blocks last less
 * than a second, so a hot key commits about once a second. A crash loses at most the unused
 * part of a block: after a crash, a version's count resumes from its reserved high-water mark,
 * which is then what GetKeyInfo shows as uses. A clean stop writes the exact counts (the
 * unused reservations return), so uses is exact across it.
 *
 * When the primary reaches its cap, that is recorded durably (its uses = cap, and the key's
 * rotation falls due, so the scheduler retries it), and the key is rotated at once by the
 * scheduler's own path (actor tkmsd, audit method RotateKey); calls waiting for a use go on
 * with the new primary, or fail with LimitExceeded if the rotation fails (the TPM is gone).
 * Processing (Decrypt, Verify) never counts.
 *
 * A batch (engine-batch.c) takes its items' uses at once, all of one version: when the
 * primary has fewer uses left than the batch needs, it counts as used up (the uses it had
 * left are given up) and the batch waits for the rotation like a call at the cap. */

#include "engine-private.h"

#define BLOCK_MIN G_GUINT64_CONSTANT(1024)
#define BLOCK_MAX G_GUINT64_CONSTANT(65536)
/* a call goes through at most this many rotations before it gives up */
#define MAX_ROTATIONS 2

typedef struct {
	TkmsEngineOp *op;
	TkmsEngineUseFunc then;
	guint64 n; /* uses it needs */
	guint rotations;
} UseWaiter;

struct _TkmsUseCounter {
	guint32 owner;
	gchar *name;
	guint32 version;
	guint64 used;
	guint64 reserved;  /* durably reserved */
	guint64 reserving; /* the target of the reservation being written, 0: none */
	guint64 block;
	gint64 block_start; /* monotonic time of the last reservation */
	gboolean marked;    /* used == cap is written (or being written) */
	GQueue waiters;     /* UseWaiter: calls waiting for the reservation */
};

/* A rotation the counting started: the calls that wait for it. */
typedef struct {
	GQueue waiters;
	guint32 version; /* the version that reached its cap */
	guint64 cap;
} UseRotation;

static void take_use(TkmsEngineOp *op, TkmsKey *key, guint64 n, TkmsEngineUseFunc then,
		     guint rotations);

static void
counter_free(gpointer data)
{
	TkmsUseCounter *c = data;
	/* only at finalize: nothing waits then (every waiter holds a reference to the engine) */
	g_queue_clear(&c->waiters);
	g_free(c->name);
	g_free(c);
}

static void
rotation_free(gpointer data)
{
	UseRotation *r = data;
	g_queue_clear(&r->waiters);
	g_free(r);
}

void
tkms_engine_usage_init(TkmsEngine *self)
{
	self->counters = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, counter_free);
	self->usage_rotations =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, rotation_free);
}

void
tkms_engine_usage_release(TkmsEngine *self)
{
	GHashTableIter iter;
	TkmsUseCounter *c;

	if (self->counters == NULL || self->counting_stopped)
		return;
	/* from now on every protect call waits, and none is served again */
	self->counting_stopped = TRUE;
	g_hash_table_iter_init(&iter, self->counters);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&c)) {
		g_autoptr(GError) error = NULL;
		if (c->reserved == c->used && c->reserving == 0)
			continue;
		if (!tkms_keystore_release_uses_sync(self->keystore, c->owner, c->name, c->version,
		                                     c->used, &error))
			g_warning("%s", error->message);
		c->reserved = c->used;
	}
}

void
tkms_engine_usage_clear(TkmsEngine *self)
{
	g_clear_pointer(&self->counters, g_hash_table_unref);
	g_clear_pointer(&self->usage_rotations, g_hash_table_unref);
}

#define ID_MAX (TKMS_KEY_NAME_MAX + 32)

static void
counter_id(gchar *buf, guint32 owner, const gchar *name, guint32 version)
{
	g_snprintf(buf, ID_MAX, "%u/%s/%u", owner, name, version);
}

static TkmsUseCounter *
counter_lookup(TkmsEngine *self, guint32 owner, const gchar *name,
                                      guint32 version)
{
	gchar id[ID_MAX];
	counter_id(id, owner, name, version);
	return g_hash_table_lookup(self->counters, id);
}

static TkmsUseCounter *
counter_get(TkmsEngine *self, TkmsKey *key, TkmsKeyVersion *v)
{
	gchar id[ID_MAX];
	TkmsUseCounter *c;

	counter_id(id, key->owner, key->name, v->version);
	c = g_hash_table_lookup(self->counters, id);
	if (c != NULL)
		return c;
	c = g_new0(TkmsUseCounter, 1);
	c->owner = key->owner;
	c->name = g_strdup(key->name);
	c->version = v->version;
	/* what was reserved before this start may have been used: count it all */
	c->used = c->reserved = MAX(v->uses, v->uses_reserved);
	c->block = BLOCK_MIN;
	g_queue_init(&c->waiters);
	g_hash_table_insert(self->counters, g_strdup(id), c);
	return c;
}

void
tkms_engine_usage_patch(TkmsEngine *self, TkmsKey *key)
{
	for (guint i = 0; i < key->versions->len; i++) {
		TkmsKeyVersion *v = g_ptr_array_index(key->versions, i);
		TkmsUseCounter *c = counter_lookup(self, key->owner, key->name, v->version);

		if (c == NULL) {
			v->uses = MAX(v->uses, v->uses_reserved);
			continue;
		}
		v->uses = c->used;
		v->uses_reserved = MAX(MAX(v->uses_reserved, c->reserved), c->reserving);
	}
}

/* ---- waiting ---- */

static UseWaiter *
waiter_new(TkmsEngineOp *op, guint64 n, TkmsEngineUseFunc then, guint rotations)
{
	UseWaiter *w = g_new0(UseWaiter, 1);
	w->op = op;
	w->then = then;
	w->n = n;
	w->rotations = rotations;
	return w;
}

/* A waiter's turn: from the key as it is now (a rotation may have made a new primary). */
static void
waiter_retry(UseWaiter *w)
{
	TkmsEngineOp *op = w->op;
	TkmsKey *key;

	g_clear_pointer(&op->k, tkms_key_unref);
	if ((key = tkms_engine_op_lookup_key(op)) != NULL)
		take_use(op, key, w->n, w->then, w->rotations);
	g_free(w);
}

/* ---- reservations ---- */

typedef struct {
	TkmsEngine *engine;
	TkmsUseCounter *counter; /* counters live as long as the engine */
	guint64 target;
} ReserveData;

static void
reserved_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	ReserveData *d = user_data;
	TkmsUseCounter *c = d->counter;
	g_autoptr(GError) error = NULL;
	GQueue waiting = G_QUEUE_INIT;
	UseWaiter *w;
	gboolean ok = tkms_keystore_save_finish(TKMS_KEYSTORE(source), res, &error);

	c->reserving = 0;
	if (ok)
		c->reserved = MAX(c->reserved, d->target);
	else
		g_warning("Cannot reserve key uses: %s", error->message);
	/* the waiters' retries may queue again: take them out first */
	waiting = c->waiters;
	g_queue_init(&c->waiters);
	while ((w = g_queue_pop_head(&waiting)) != NULL) {
		if (ok) {
			waiter_retry(w);
			continue;
		}
		tkms_engine_op_fail_literal(w->op, TKMS_ERROR_FAILED,
		                            "The key's use could not be recorded; see the daemon "
		                            "log");
		g_free(w);
	}
	g_object_unref(d->engine);
	g_free(d);
}

/* Reserves the next block, and at least up to need. */
static void
reserve(TkmsEngine *self, TkmsKey *key, TkmsKeyVersion *v, TkmsUseCounter *c, guint64 cap,
	guint64 need)
{
	gint64 now = g_get_monotonic_time();
	ReserveData *d;

	if (c->reserving != 0 || c->reserved >= cap)
		return;
	if (c->block_start != 0 && now - c->block_start < G_USEC_PER_SEC)
		c->block = MIN(c->block * 2, BLOCK_MAX);
	else if (c->block_start != 0 && now - c->block_start > 10 * G_USEC_PER_SEC)
		c->block = BLOCK_MIN;
	c->block_start = now;
	d = g_new0(ReserveData, 1);
	d->engine = g_object_ref(self);
	d->counter = c;
	d->target = cap - c->reserved > c->block ? c->reserved + c->block : cap;
	d->target = MIN(MAX(d->target, need), cap);
	c->reserving = d->target;
	tkms_keystore_save_uses(self->keystore, key->owner, key->name, v->version, c->used,
	                        d->target, 0, reserved_cb, d);
}

/* ---- the cap ---- */

static void
marked_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(TkmsEngine) self = user_data;
	g_autoptr(GError) error = NULL;

	if (!tkms_keystore_save_finish(TKMS_KEYSTORE(source), res, &error))
		g_warning("Cannot record that a key version reached its max-uses: %s",
		          error->message);
	/* the scheduler retries the rotation if the one started now fails */
	tkms_engine_key_changed(self);
}

/* The primary v reached its cap: record it durably, with the rotation due at once. */
static void
mark_used_up(TkmsEngine *self, TkmsKey *key, TkmsKeyVersion *v, TkmsUseCounter *c)
{
	if (c->marked)
		return;
	c->marked = TRUE;
	tkms_keystore_save_uses(self->keystore, key->owner, key->name, v->version, c->used,
	                        MAX(c->reserved, c->used), MAX(MAX(v->activated, v->created), 1),
	                        marked_cb, g_object_ref(self));
}

typedef struct {
	TkmsEngine *engine;
	gchar *id;
} RotateData;

static void
rotated_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	RotateData *d = user_data;
	TkmsEngine *self = d->engine;
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKey) key = tkms_engine_key_change_finish(self, res, &error);
	UseRotation *r = NULL;
	gpointer stolen_id = NULL;
	UseWaiter *w;

	if (key == NULL)
		g_message("Rotating key %s at its max-uses failed: %s; tkmsd retries it", d->id,
		          error->message);
	if (self->usage_rotations != NULL &&
	    g_hash_table_steal_extended(self->usage_rotations, d->id, &stolen_id, (gpointer *)&r)) {
		while ((w = g_queue_pop_head(&r->waiters)) != NULL) {
			if (key != NULL) {
				waiter_retry(w);
				continue;
			}
			tkms_engine_op_fail(
			    w->op,
			    g_error_new(TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED,
			                "Version %u of key \"%s\" has protected its limit of "
			                "%" G_GUINT64_FORMAT " messages (max-uses) and its "
			                "automatic rotation failed (%s); Decrypt and Verify go "
			                "on; retry once the TPM is back (tkmsd retries the "
			                "rotation), or rotate the key (RotateKey)",
			                r->version, w->op->key.name, r->cap, error->message));
			g_free(w);
		}
		rotation_free(r);
		g_free(stolen_id);
	}
	g_free(d->id);
	g_object_unref(d->engine);
	g_free(d);
}

/* Starts the rotation of key, whose primary reached its cap, unless one runs; returns it. */
static UseRotation *
start_rotation(TkmsEngine *self, TkmsKey *key, TkmsKeyVersion *v)
{
	g_autofree gchar *id = g_strdup_printf("%u/%s", key->owner, key->name);
	UseRotation *r = g_hash_table_lookup(self->usage_rotations, id);
	g_autoptr(TkmsKey) copy = NULL;
	RotateData *d;

	if (r != NULL)
		return r;
	r = g_new0(UseRotation, 1);
	g_queue_init(&r->waiters);
	r->version = v->version;
	r->cap = tkms_key_max_uses(key);
	g_hash_table_insert(self->usage_rotations, g_strdup(id), r);
	d = g_new0(RotateData, 1);
	d->engine = g_object_ref(self);
	d->id = g_steal_pointer(&id);
	/* the scheduler's event, run now: the counted key says its rotation is due */
	copy = tkms_key_copy(key);
	tkms_engine_usage_patch(self, copy);
	tkms_engine_run_event(self, copy, rotated_cb, d);
	return r;
}

/* Waits for the key's rotation (starting it if none runs), then tries again. */
static void
wait_for_rotation(TkmsEngineOp *op, TkmsKey *key, TkmsKeyVersion *v, guint64 n,
		  TkmsEngineUseFunc then, guint rotations)
{
	UseRotation *r;

	if (rotations >= MAX_ROTATIONS) {
		tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED,
		                                    "Version %u of key \"%s\" has protected its "
		                                    "limit of %" G_GUINT64_FORMAT " messages "
		                                    "(max-uses) and was not replaced; rotate the "
		                                    "key (RotateKey) and retry",
		                                    v->version, key->name, tkms_key_max_uses(key)));
		return;
	}
	r = start_rotation(op->engine, key, v);
	g_queue_push_tail(&r->waiters, waiter_new(op, n, then, rotations + 1));
}

/* ---- the calls ---- */

static void
take_use(TkmsEngineOp *op, TkmsKey *key, guint64 n, TkmsEngineUseFunc then, guint rotations)
{
	TkmsEngine *self = op->engine;
	TkmsKeyVersion *v = tkms_engine_op_primary_version(op, key);
	TkmsUseCounter *c;
	guint64 cap;

	if (v == NULL)
		return;
	if (!self->config.count_uses) {
		then(op, key, v);
		return;
	}
	if (self->counting_stopped) {
		tkms_engine_op_fail_literal(op, TKMS_ERROR_BUSY,
		                            "tkmsd is stopping; retry when it is back");
		return;
	}
	c = counter_get(self, key, v);
	cap = tkms_key_max_uses(key);
	if (n > cap) {
		tkms_engine_op_fail(op, g_error_new(TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED,
						    "The batch has %" G_GUINT64_FORMAT " items, more "
						    "than key \"%s\" may protect with one version "
						    "(max-uses %" G_GUINT64_FORMAT "); send batches of "
						    "at most that many items",
						    n, key->name, cap));
		return;
	}
	if (c->used >= cap || cap - c->used < n) {
		/* a batch that does not fit gives up what is left: one version for all items */
		c->used = MAX(c->used, cap);
		mark_used_up(self, key, v, c);
		wait_for_rotation(op, key, v, n, then, rotations);
		return;
	}
	if (c->reserved < c->used + n) {
		g_queue_push_tail(&c->waiters, waiter_new(op, n, then, rotations));
		reserve(self, key, v, c, cap, c->used + n);
		return;
	}
	c->used += n;
	if (c->used >= cap) {
		/* the last use: the rotation starts now, so that the next call rarely waits */
		mark_used_up(self, key, v, c);
		start_rotation(self, key, v);
		then(op, key, v);
		return;
	}
	if (c->reserved - c->used <= c->block / 2)
		reserve(self, key, v, c, cap, 0);
	then(op, key, v);
}

void
tkms_engine_op_use_primary(TkmsEngineOp *op, TkmsKey *key, TkmsEngineUseFunc then)
{
	take_use(op, key, 1, then, 0);
}

void
tkms_engine_op_use_primary_n(TkmsEngineOp *op, TkmsKey *key, guint64 n, TkmsEngineUseFunc then)
{
	take_use(op, key, n, then, 0);
}
