/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-scheduler"

/* The timer of the keys' life cycle. Every key stores the time of its next event (key.c
 * computes it, the key store indexes it), so the next wake-up is one indexed query, and a
 * key's events follow from its own state: nothing is lost when tkmsd stops. */

#include "scheduler.h"

#include "engine-private.h"

/* events run per wake-up before the timer is set again, so that one busy key set cannot
 * hold the main loop */
#define BATCH 32
/* a key busy with a caller's change, or a failure (no TPM): try again after this */
#define RETRY_SECONDS 5

struct _TkmsScheduler {
	GObject parent_instance;
	TkmsEngine *engine;
	guint timer;
	gboolean started;
	gboolean running; /* a batch is in progress: it sets the timer when done */
	GPtrArray *batch;
	guint next;
	gchar *current; /* "owner/name" of the key whose event runs */
	/* "owner/name" of a key whose event failed -> when to try it again (gint64 *): until
	 * then it is left out of the batches, and after that it comes after the keys that never
	 * failed, so that failing events (no TPM) cannot fill every batch and hold back the
	 * others (a destruction, which needs no TPM) */
	GHashTable *held;
};

G_DEFINE_TYPE(TkmsScheduler, tkms_scheduler, G_TYPE_OBJECT)

static void run_next(TkmsScheduler *self);
static void arm(TkmsScheduler *self);

static gint64
now_s(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

static gchar *
key_id(TkmsKey *key)
{
	return g_strdup_printf("%u/%s", key->owner, key->name);
}

static void
event_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(TkmsScheduler) self = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKey) key = tkms_engine_key_change_finish(TKMS_ENGINE(source), res, &error);
	g_autofree gchar *id = g_steal_pointer(&self->current);

	if (key == NULL) {
		/* audited by the engine; the event stays due and is tried again */
		gint64 *retry = g_new(gint64, 1);
		*retry = now_s() + RETRY_SECONDS;
		g_message("A scheduled event failed: %s; retrying in %d s", error->message,
			  RETRY_SECONDS);
		if (id != NULL)
			g_hash_table_replace(self->held, g_steal_pointer(&id), retry);
		else
			g_free(retry);
	} else if (id != NULL) {
		g_hash_table_remove(self->held, id);
	}
	if (self->batch == NULL)
		return; /* stopped */
	run_next(self);
}

static void
batch_end(TkmsScheduler *self)
{
	g_clear_pointer(&self->batch, g_ptr_array_unref);
	self->running = FALSE;
	/* a full batch: more may be due at once */
	arm(self);
}

static void
run_next(TkmsScheduler *self)
{
	TkmsKey *key;

	if (self->next >= self->batch->len) {
		batch_end(self);
		return;
	}
	key = g_ptr_array_index(self->batch, self->next++);
	g_free(self->current);
	self->current = key_id(key);
	tkms_engine_run_event(self->engine, key, event_done_cb, g_object_ref(self));
}

/* The keys whose event is due, those that never failed first, then those whose retry time has
 * come; at most BATCH. A held key that is no longer among the due ones is forgotten. */
static GPtrArray *
pick_batch(TkmsScheduler *self, GPtrArray *due, gint64 now)
{
	GPtrArray *batch = g_ptr_array_new_with_free_func((GDestroyNotify)tkms_key_unref);
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTableIter iter;
	gpointer id, retry;

	for (guint pass = 0; pass < 2; pass++) {
		for (guint i = 0; i < due->len && batch->len < BATCH; i++) {
			TkmsKey *key = g_ptr_array_index(due, i);
			g_autofree gchar *k = key_id(key);
			gint64 *at = g_hash_table_lookup(self->held, k);
			if (pass == 0)
				g_hash_table_add(seen, g_strdup(k));
			if (pass == 0 ? at != NULL : at == NULL || *at > now)
				continue;
			g_ptr_array_add(batch, tkms_key_ref(key));
		}
	}
	g_hash_table_iter_init(&iter, self->held);
	while (g_hash_table_iter_next(&iter, &id, &retry))
		if (*(gint64 *)retry <= now && !g_hash_table_contains(seen, id))
			g_hash_table_iter_remove(&iter);
	return batch;
}

static gboolean
fire_cb(gpointer data)
{
	TkmsScheduler *self = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) due = NULL;
	gint64 now = now_s();

	self->timer = 0;
	/* the held keys may be the longest due: read past them */
	due = tkms_keystore_list_due(self->engine->keystore, now,
				     BATCH + g_hash_table_size(self->held), &error);
	if (due == NULL) {
		g_warning("Cannot read the due events: %s; retrying in %d s", error->message,
			  RETRY_SECONDS);
		self->timer = g_timeout_add_seconds(RETRY_SECONDS, fire_cb, self);
		return G_SOURCE_REMOVE;
	}
	self->batch = pick_batch(self, due, now);
	self->running = TRUE;
	self->next = 0;
	run_next(self);
	return G_SOURCE_REMOVE;
}

/* When the first held key may be tried again; 0 if none is held. */
static gint64
first_retry(TkmsScheduler *self)
{
	GHashTableIter iter;
	gpointer value;
	gint64 first = 0;

	g_hash_table_iter_init(&iter, self->held);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		if (first == 0 || *(gint64 *)value < first)
			first = *(gint64 *)value;
	return first;
}

/* Sets the one timer to the nearest due time; while events that failed wait for their retry
 * (they may be the earliest due), not before the first retry. */
static void
arm(TkmsScheduler *self)
{
	g_autoptr(GError) error = NULL;
	gint64 due = 0, now, due_retry = first_retry(self);

	if (!self->started || self->running)
		return;
	g_clear_handle_id(&self->timer, g_source_remove);
	if (!tkms_keystore_next_due(self->engine->keystore, &due, &error)) {
		g_warning("Cannot read the due events: %s; retrying in %d s", error->message,
			  RETRY_SECONDS);
		due = now_s() + RETRY_SECONDS;
	}
	/* after a failure the failed event may still be the earliest: wait before retrying it */
	if (due_retry > 0 && due > 0 && due < due_retry)
		due = due_retry;
	if (due == 0)
		return;
	now = now_s();
	if (due <= now)
		self->timer = g_idle_add(fire_cb, self);
	else
		/* to the millisecond: due is a whole second, the event runs once it has begun */
		self->timer = g_timeout_add(
			MIN((due * G_USEC_PER_SEC - g_get_real_time()) / 1000 + 1,
			    (gint64)G_MAXINT32),
			fire_cb, self);
	g_debug("next event at %" G_GINT64_FORMAT " (in %" G_GINT64_FORMAT " s)", due,
		due - now);
}

TkmsScheduler *
tkms_scheduler_new(TkmsEngine *engine)
{
	TkmsScheduler *self = g_object_new(TKMS_TYPE_SCHEDULER, NULL);
	self->engine = engine;
	return self;
}

void
tkms_scheduler_start(TkmsScheduler *self)
{
	self->started = TRUE;
	arm(self);
}

void
tkms_scheduler_reschedule(TkmsScheduler *self)
{
	arm(self);
}

void
tkms_scheduler_stop(TkmsScheduler *self)
{
	self->started = FALSE;
	g_clear_handle_id(&self->timer, g_source_remove);
	g_clear_pointer(&self->batch, g_ptr_array_unref);
}

static void
tkms_scheduler_finalize(GObject *object)
{
	TkmsScheduler *self = TKMS_SCHEDULER(object);
	g_clear_handle_id(&self->timer, g_source_remove);
	g_clear_pointer(&self->batch, g_ptr_array_unref);
	g_clear_pointer(&self->held, g_hash_table_unref);
	g_free(self->current);
	G_OBJECT_CLASS(tkms_scheduler_parent_class)->finalize(object);
}

static void
tkms_scheduler_class_init(TkmsSchedulerClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = tkms_scheduler_finalize;
}

static void
tkms_scheduler_init(TkmsScheduler *self)
{
	self->held = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}
