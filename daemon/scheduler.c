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
	gboolean again;	  /* a change arrived during the batch */
	GPtrArray *batch;
	guint next;
	gboolean failed; /* an event of this batch failed */
};

G_DEFINE_TYPE(TkmsScheduler, tkms_scheduler, G_TYPE_OBJECT)

static void run_next(TkmsScheduler *self);
static void arm(TkmsScheduler *self, gint64 due_retry);

static gint64
now_s(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

static void
event_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(TkmsScheduler) self = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKey) key = tkms_engine_key_change_finish(TKMS_ENGINE(source), res, &error);

	if (key == NULL) {
		/* audited by the engine; the event stays due and is tried again */
		g_message("A scheduled event failed: %s; retrying in %d s", error->message,
			  RETRY_SECONDS);
		self->failed = TRUE;
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
	arm(self, self->failed ? now_s() + RETRY_SECONDS : 0);
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
	tkms_engine_run_event(self->engine, key, event_done_cb, g_object_ref(self));
}

static gboolean
fire_cb(gpointer data)
{
	TkmsScheduler *self = data;
	g_autoptr(GError) error = NULL;

	self->timer = 0;
	self->batch = tkms_keystore_list_due(self->engine->keystore, now_s(), BATCH, &error);
	if (self->batch == NULL) {
		g_warning("Cannot read the due events: %s; retrying in %d s", error->message,
			  RETRY_SECONDS);
		self->timer = g_timeout_add_seconds(RETRY_SECONDS, fire_cb, self);
		return G_SOURCE_REMOVE;
	}
	self->running = TRUE;
	self->failed = FALSE;
	self->next = 0;
	run_next(self);
	return G_SOURCE_REMOVE;
}

/* Sets the one timer to the nearest due time (or to due_retry if that is sooner, after a
 * failure). */
static void
arm(TkmsScheduler *self, gint64 due_retry)
{
	g_autoptr(GError) error = NULL;
	gint64 due = 0, now;

	if (!self->started || self->running)
		return;
	g_clear_handle_id(&self->timer, g_source_remove);
	if (!tkms_keystore_next_due(self->engine->keystore, &due, &error)) {
		g_warning("Cannot read the due events: %s; retrying in %d s", error->message,
			  RETRY_SECONDS);
		due = now_s() + RETRY_SECONDS;
	}
	/* after a failure the failed event is still the earliest: wait before retrying it */
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
	arm(self, 0);
}

void
tkms_scheduler_reschedule(TkmsScheduler *self)
{
	arm(self, 0);
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
}
