/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _TkmsEngine TkmsEngine;

/* TkmsScheduler: runs the keys' due events (activation, rotation by period, deactivation,
 * destroy-scheduling, destruction) from one main-loop timer set to the nearest due time, as
 * the key store records it; no polling. Events that fell due while tkmsd was down run at
 * start. Events run one at a time, each durable (store and audit record) before the next. */
#define TKMS_TYPE_SCHEDULER (tkms_scheduler_get_type())
G_DECLARE_FINAL_TYPE(TkmsScheduler, tkms_scheduler, TKMS, SCHEDULER, GObject)

/* engine is not referenced: it owns the scheduler. Nothing runs before _start. */
TkmsScheduler *tkms_scheduler_new(TkmsEngine *engine);
void tkms_scheduler_start(TkmsScheduler *self);
/* A key's next event may have changed: the timer is set again. */
void tkms_scheduler_reschedule(TkmsScheduler *self);
/* Stops the timer (at exit); an event being written still completes. */
void tkms_scheduler_stop(TkmsScheduler *self);

G_END_DECLS
