/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm-context.h"

G_BEGIN_DECLS

/* One request's work, run on the TPM worker thread (tpm.c) by tkms_tpm_submit. */
typedef gboolean (*TkmsTpmFunc)(TkmsTpmContext *ctx, gpointer req, GError **error);

/* Queues func(req) for uid's next turn on the worker. */
void tkms_tpm_submit(TkmsTpm *self, guint32 uid, TkmsTpmFunc func, gpointer req,
		     GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);

/*
 * A long request's work, one piece per call, so that one caller's big request does not hold
 * the TPM while other users wait. *state is NULL at the first call. A piece that leaves work
 * keeps what it needs in *state, sets *more and returns TRUE; the worker then serves the
 * other uids' next requests (the uid rejoins the line) before calling it again. Between pieces
 * nothing of the request may stay loaded in the TPM (slots are scarce: save it with
 * ContextSave). A piece that fails leaves *state NULL. state_free frees a state left when the
 * request ends otherwise (cancelled, or the worker stops).
 */
typedef gboolean (*TkmsTpmPieceFunc)(TkmsTpmContext *ctx, gpointer req, gpointer *state,
				     gboolean *more, GError **error);

void tkms_tpm_submit_pieces(TkmsTpm *self, guint32 uid, TkmsTpmPieceFunc func,
			    GDestroyNotify state_free, gpointer req, GCancellable *cancellable,
			    GAsyncReadyCallback callback, gpointer user_data);

G_END_DECLS
