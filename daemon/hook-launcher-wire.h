/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The messages between tkmsd and its hook launcher (hook-launcher.h), one per datagram of an
 * AF_UNIX SOCK_SEQPACKET socket pair: a fixed header, then (RUN) the hook's name and its JSON
 * input, or (DONE) the first bytes of its standard error or why it did not run. Both ends are
 * the same binary, so the header is in the machine's byte order. The launcher trusts nothing
 * it is sent: tkms_hook_wire_parse() checks every field and length. */

#include <glib.h>

G_BEGIN_DECLS

/* a hook's JSON input, at most: three passwords of TKMS_SECRET_MAX bytes each escaped as
 * \u00XX (6 bytes a byte), with room for the rest */
#define TKMS_HOOK_WIRE_INPUT_MAX (3 * 6 * 4096 + 4096)
/* what is kept of a hook's standard error */
#define TKMS_HOOK_WIRE_STDERR_MAX 4096
/* why a hook did not run */
#define TKMS_HOOK_WIRE_TEXT_MAX 2048
/* the longest message either way, and the socket buffers that hold one */
#define TKMS_HOOK_WIRE_MESSAGE_MAX (sizeof(TkmsHookWireHeader) + 64 + TKMS_HOOK_WIRE_INPUT_MAX)
#define TKMS_HOOK_WIRE_TIMEOUT_MAX 3600

typedef enum {
	TKMS_HOOK_WIRE_RUN = 1, /* tkmsd -> launcher: run a hook */
	TKMS_HOOK_WIRE_CANCEL,	/* tkmsd -> launcher: kill run `id` */
	TKMS_HOOK_WIRE_DONE,	/* launcher -> tkmsd: run `id` is over */
} TkmsHookWireType;

typedef enum {
	TKMS_HOOK_WIRE_ENDED = 1, /* it exited or was killed: `status` is its wait status */
	TKMS_HOOK_WIRE_TIMED_OUT, /* killed at the timeout */
	TKMS_HOOK_WIRE_CANCELLED, /* killed on a CANCEL */
	TKMS_HOOK_WIRE_NOT_RUN,	  /* refused or not started: the data says why */
} TkmsHookWireOutcome;

typedef struct {
	guint32 type;
	guint32 id;	  /* chosen by tkmsd, echoed in DONE */
	guint32 step;	  /* RUN: index into the steps ("set", "test", "finish", "rollback") */
	guint32 timeout;  /* RUN: seconds, 1 to TKMS_HOOK_WIRE_TIMEOUT_MAX */
	guint32 outcome;  /* DONE: TkmsHookWireOutcome */
	gint32 status;	  /* DONE, ENDED: the wait status */
	guint32 cut;	  /* DONE: the hook wrote more to standard error than is kept */
	guint32 name_len; /* RUN: 1 to 64 */
	guint32 data_len; /* RUN: the JSON input; DONE: standard error or why it did not run */
} TkmsHookWireHeader;

/* The step's index, or -1 if @step is none of them. */
gint tkms_hook_wire_step_from_name(const gchar *step);
/* The step's name, or NULL for an index out of range. */
const gchar *tkms_hook_wire_step_name(guint32 step);

/* Checks a received message of @len bytes: a known type whose fields and lengths are in range
 * and add up to @len. On success @header is filled and @name/@data point into @message (the
 * name is not NUL-terminated). */
gboolean tkms_hook_wire_parse(const guint8 *message, gsize len, TkmsHookWireHeader *header,
			      const guint8 **name, const guint8 **data, GError **error);

G_END_DECLS
