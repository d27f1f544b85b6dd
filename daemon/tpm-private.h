/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "tpm-context.h"

G_BEGIN_DECLS

/* One request's work, run on the TPM worker thread (tpm.c) by tkms_tpm_submit. */
typedef gboolean (*TkmsTpmFunc)(TkmsTpmContext *ctx, gpointer req, GError **error);

/* Queues func(req) for uid's next turn on the worker. */
void tkms_tpm_submit(TkmsTpm *self, guint32 uid, TkmsTpmFunc func, gpointer req,
		     GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);

G_END_DECLS
