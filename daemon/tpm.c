/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-tpm"

#include "tpm-private.h"

#include <openssl/crypto.h>
#include <string.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tcti.h>
#include <tss2/tss2_tctildr.h>

#include "tkms-error.h"
#include "tpm-drbg.h"
#include "tpm-object-cache.h"
#include "tpm-seal-auth.h"
#include "tpm-srk.h"
#include "tpm-watchdog.h"

struct _TkmsTpm {
	GObject parent_instance;
	gchar *tcti_conf;
	gchar *srk_name_path;
	gboolean may_create_pin; /* absent in a new state directory */
	TkmsTpmWatchdog *watchdog;
	/* exactly one worker thread: ESYS is not thread-safe */
	GThread *thread;
	GMutex queue_lock;
	GCond queue_cond;
	GHashTable *queues; /* uid -> GQueue of GTask */
	GQueue turns;	    /* uids with work, in serving order */
	gboolean stopping;
	guint64 last_seq;   /* the number of the last request made (Job.seq) */
	GArray *forget;	    /* TkmsTpmChangedKey: keys changed since the worker last looked */
	TkmsTpmContext ctx;
	GMutex status_lock;
	TkmsTpmStatus status;
	gboolean status_changed; /* worker thread only */
	guint transient_avail;	 /* TPM_PT_HR_TRANSIENT_AVAIL at the last read_status */
};

enum { SIGNAL_STATUS_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_TYPE(TkmsTpm, tkms_tpm, G_TYPE_OBJECT)

typedef struct {
	TkmsTpmFunc func; /* or, for a request in pieces: */
	TkmsTpmPieceFunc piece;
	gpointer state;
	GDestroyNotify state_free;
	guint pieces_done;
	gpointer req;
	guint64 seq; /* requests are numbered in the order they are made */
} Job;

static void
job_free(gpointer data)
{
	Job *job = data;

	if (job->state != NULL && job->state_free != NULL)
		job->state_free(job->state);
	g_free(job);
}

static void
context_teardown(TkmsTpm *self)
{
	TkmsTpmContext *ctx = &self->ctx;

	if (ctx->esys != NULL) {
		/* the connection may be dead: do not flush, just drop our side (the next connection
		 * flushes what is left) */
		Esys_Finalize(&ctx->esys);
	}
	if (ctx->tcti != NULL)
		Tss2_TctiLdr_Finalize(&ctx->tcti);
	ctx->srk = ESYS_TR_NONE;
	ctx->session = ESYS_TR_NONE;
	ctx->sys_session = 0;
	OPENSSL_cleanse(ctx->sys_session_key, sizeof(ctx->sys_session_key));
	/* whatever was loaded died with the connection, or the next one flushes it */
	tkms_tpm_object_cache_forget_all(ctx->objects);
}

/* The pinned SRK name: hex digits on one line; anything else names the file and the reason. */
static gboolean
read_pin(const gchar *path, gchar **out, GError **error)
{
	g_autoptr(GError) local = NULL;
	g_autofree gchar *pin = NULL;

	if (!g_file_get_contents(path, &pin, NULL, &local)) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "Cannot read the storage root key pin %s (%s); it is never recreated: "
			    "restore it from a backup",
			    path, local->message);
		return FALSE;
	}
	g_strstrip(pin);
	if (*pin == '\0' || strlen(pin) % 2 != 0 || strspn(pin, "0123456789abcdef") != strlen(pin)) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The storage root key pin %s is damaged (not a key name in hex); "
			    "restore it from a backup",
			    path);
		return FALSE;
	}
	*out = g_steal_pointer(&pin);
	return TRUE;
}

static gboolean
create_srk(TkmsTpm *self, GError **error)
{
	TkmsTpmContext *ctx = &self->ctx;
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl;
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION creation_pcr = {0};
	g_autofree TPM2B_NAME *name = NULL;
	g_autofree gchar *hex = NULL;
	g_autofree gchar *pinned = NULL;
	TSS2_RC rc;

	tkms_tpm_srk_template(&tmpl);
	rc = Esys_CreatePrimary(ctx->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
				ESYS_TR_NONE, &sens, &tmpl, &outside, &creation_pcr, &ctx->srk, NULL,
				NULL, NULL, NULL);
	if (!tkms_tpm_check(rc, "creating the storage root key", error))
		return FALSE;
	rc = Esys_TR_GetName(ctx->esys, ctx->srk, &name);
	if (!tkms_tpm_check(rc, "reading the storage root key name", error))
		return FALSE;
	hex = g_malloc0(name->size * 2 + 2);
	for (guint i = 0; i < name->size; i++)
		g_snprintf(hex + 2 * i, 3, "%02x", name->name[i]);
	if (!self->may_create_pin || g_file_test(self->srk_name_path, G_FILE_TEST_EXISTS)) {
		if (!read_pin(self->srk_name_path, &pinned, error))
			return FALSE;
		if (g_strcmp0(pinned, hex) != 0) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_TPM_UNAVAILABLE,
				    "This TPM's storage root key differs from the one pinned in %s "
				    "(the TPM was cleared or replaced); keys cannot be used with it. "
				    "Restore the original TPM or move the state directory aside",
				    self->srk_name_path);
			return FALSE;
		}
		return TRUE;
	}
	g_autofree gchar *line = g_strconcat(hex, "\n", NULL);
	if (!g_file_set_contents_full(self->srk_name_path, line, -1,
				      G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
				      0600, error))
		return FALSE;
	self->may_create_pin = FALSE;
	return TRUE;
}

static guint32
cap_property(TPMS_CAPABILITY_DATA *cap, TPM2_PT prop)
{
	TPML_TAGGED_TPM_PROPERTY *props = &cap->data.tpmProperties;
	for (guint i = 0; i < props->count; i++)
		if (props->tpmProperty[i].property == prop)
			return props->tpmProperty[i].value;
	return 0;
}

static gboolean
read_status(TkmsTpm *self, GError **error)
{
	g_autofree TPMS_CAPABILITY_DATA *fixed = NULL;
	g_autofree TPMS_CAPABILITY_DATA *var = NULL;
	TPMI_YES_NO more;
	TkmsTpmStatus st = {.available = TRUE};
	guint32 v, fw1, fw2;
	TSS2_RC rc;

	rc = Esys_GetCapability(self->ctx.esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				TPM2_CAP_TPM_PROPERTIES, TPM2_PT_FIXED, TPM2_MAX_TPM_PROPERTIES,
				&more, &fixed);
	if (!tkms_tpm_check(rc, "reading TPM properties", error))
		return FALSE;
	rc = Esys_GetCapability(self->ctx.esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				TPM2_CAP_TPM_PROPERTIES, TPM2_PT_VAR, TPM2_MAX_TPM_PROPERTIES,
				&more, &var);
	if (!tkms_tpm_check(rc, "reading TPM state", error))
		return FALSE;
	v = cap_property(fixed, TPM2_PT_MANUFACTURER);
	for (guint i = 0; i < 4; i++) {
		gchar c = (v >> (24 - 8 * i)) & 0xff;
		st.manufacturer[i] = g_ascii_isprint(c) ? c : '\0';
	}
	g_strchomp(st.manufacturer);
	fw1 = cap_property(fixed, TPM2_PT_FIRMWARE_VERSION_1);
	fw2 = cap_property(fixed, TPM2_PT_FIRMWARE_VERSION_2);
	g_snprintf(st.firmware, sizeof(st.firmware), "%u.%u.%u.%u", fw1 >> 16, fw1 & 0xffff,
		   fw2 >> 16, fw2 & 0xffff);
	st.locked_out = (cap_property(var, TPM2_PT_PERMANENT) & TPMA_PERMANENT_INLOCKOUT) != 0;
	st.lockout_counter = cap_property(var, TPM2_PT_LOCKOUT_COUNTER);
	self->transient_avail = cap_property(var, TPM2_PT_HR_TRANSIENT_AVAIL);

	g_mutex_lock(&self->status_lock);
	if (memcmp(&self->status, &st, sizeof(st)) != 0)
		self->status_changed = TRUE;
	self->status = st;
	g_mutex_unlock(&self->status_lock);
	return TRUE;
}

static void
set_unavailable(TkmsTpm *self)
{
	g_mutex_lock(&self->status_lock);
	if (self->status.available)
		self->status_changed = TRUE;
	self->status.available = FALSE;
	g_mutex_unlock(&self->status_lock);
}

/* Sends TPM2_FlushContext for a raw TPM handle, bypassing ESYS (which has no ESYS_TR for
 * handles it did not create, such as sessions). */
static void
flush_raw(TSS2_TCTI_CONTEXT *tcti, TPM2_HANDLE h)
{
	guint8 cmd[14] = {0x80, 0x01, 0, 0, 0, 14, 0x00, 0x00, 0x01, 0x65, h >> 24, h >> 16,
			  h >> 8, h};
	guint8 resp[64];
	size_t len = sizeof(resp);

	if (Tss2_Tcti_Transmit(tcti, sizeof(cmd), cmd) == TSS2_RC_SUCCESS)
		Tss2_Tcti_Receive(tcti, &len, resp, TSS2_TCTI_TIMEOUT_BLOCK);
}

/* Without a resource manager (swtpm, /dev/tpm0) tkmsd is the TPM's one user: objects and
 * sessions left by an earlier run that ended uncleanly would fill its few slots. Never behind
 * one (behind_resource_manager): it flushes what a closed connection left, and the TPM lists
 * every program's sessions to every connection (the kernel's maps transient handles only), so
 * this would end other programs' sessions. */
static void
flush_leftovers(TkmsTpmContext *ctx)
{
	static const TPM2_HANDLE ranges[] = {TPM2_TRANSIENT_FIRST, TPM2_LOADED_SESSION_FIRST,
					      TPM2_POLICY_SESSION_FIRST};

	for (guint r = 0; r < G_N_ELEMENTS(ranges); r++) {
		g_autofree TPMS_CAPABILITY_DATA *cap = NULL;
		TPMI_YES_NO more;
		if (Esys_GetCapability(ctx->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				       TPM2_CAP_HANDLES, ranges[r], TPM2_MAX_CAP_HANDLES, &more,
				       &cap) != TSS2_RC_SUCCESS)
			continue;
		for (guint i = 0; i < cap->data.handles.count; i++) {
			TPM2_HANDLE h = cap->data.handles.handle[i];
			if ((h & TPM2_HR_RANGE_MASK) != (ranges[r] & TPM2_HR_RANGE_MASK))
				continue;
			g_debug("flushing leftover TPM handle 0x%08x", h);
			flush_raw(ctx->tcti, h);
		}
	}
}

/* The kernel's /dev/tpmrm*, tpm2-abrmd, or no TCTI named (the loader tries tpm2-abrmd and
 * /dev/tpmrm0 first): the TPM is shared. */
static gboolean
behind_resource_manager(const gchar *tcti)
{
	return tcti == NULL || strstr(tcti, "tpmrm") != NULL || strstr(tcti, "tabrmd") != NULL;
}

static gboolean
ensure_connected(TkmsTpm *self, GError **error)
{
	TkmsTpmContext *ctx = &self->ctx;
	TSS2_RC rc;

	if (ctx->esys != NULL)
		return TRUE;
	rc = Tss2_TctiLdr_Initialize(self->tcti_conf, &ctx->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_TPM_UNAVAILABLE,
			    "Cannot connect to the TPM at \"%s\" (%s); check the device or swtpm "
			    "and the Tcti= setting",
			    self->tcti_conf, Tss2_RC_Decode(rc));
		return FALSE;
	}
	rc = Esys_Initialize(&ctx->esys, ctx->tcti, NULL);
	if (!tkms_tpm_check(rc, "initializing the TPM connection", error))
		goto fail;
	if (!behind_resource_manager(self->tcti_conf))
		flush_leftovers(ctx);
	if (!create_srk(self, error) || !read_status(self, error))
		goto fail;
	{
		/* read with the SRK loaded; the kernel's resource manager holds at most 3 objects
		 * per connection whatever the TPM has free, the SRK one of them */
		guint free_slots = self->transient_avail;
		if (self->tcti_conf != NULL && strstr(self->tcti_conf, "tpmrm") != NULL)
			free_slots = MIN(free_slots, TKMS_TPM_KERNEL_RM_OBJECTS - 1);
		tkms_tpm_object_cache_connected(ctx->objects, free_slots);
	}
	{
		/* made at the first connection rather than the first Seal, so that state changes
		 * come from lifecycle calls; a failure here is retried at the first Seal */
		g_autoptr(GError) local = NULL;
		if (!tkms_tpm_ensure_seal_auth_key(ctx, &local))
			g_warning("%s", local->message);
	}
	g_debug("connected to TPM %s", self->tcti_conf);
	return TRUE;
fail:
	context_teardown(self);
	return FALSE;
}

static gboolean
is_connection_error(GError *error)
{
	return g_error_matches(error, TKMS_ERROR, TKMS_ERROR_TPM_UNAVAILABLE);
}

static gboolean
emit_status_changed(gpointer data)
{
	g_signal_emit(data, signals[SIGNAL_STATUS_CHANGED], 0);
	return G_SOURCE_REMOVE;
}

/* Tells the main thread when availability, lockout or identity of the TPM changed. */
static void
publish_status(TkmsTpm *self)
{
	if (!self->status_changed)
		return;
	self->status_changed = FALSE;
	g_idle_add_full(G_PRIORITY_DEFAULT, emit_status_changed, g_object_ref(self),
			g_object_unref);
}

static gboolean worker_run(GTask *task, TkmsTpm *self);

/* With the queue locked, before job runs: keys changed meanwhile leave the object cache, and
 * what the cache remembers of changed keys for requests made before goes once none is left. */
static void
note_requests(TkmsTpm *self, Job *job)
{
	GHashTableIter iter;
	gpointer queue;
	guint64 oldest = job->seq;

	for (guint i = 0; i < self->forget->len; i++)
		tkms_tpm_object_cache_forget_key(
			self->ctx.objects, &g_array_index(self->forget, TkmsTpmChangedKey, i));
	g_array_set_size(self->forget, 0);
	/* each uid's queue is in the order its requests were made (a request in pieces goes
	 * back to its head) */
	g_hash_table_iter_init(&iter, self->queues);
	while (g_hash_table_iter_next(&iter, NULL, &queue)) {
		GTask *head = g_queue_peek_head(queue);
		if (head != NULL)
			oldest = MIN(oldest, ((Job *)g_task_get_task_data(head))->seq);
	}
	tkms_tpm_object_cache_prune(self->ctx.objects, oldest);
	self->ctx.job_seq = job->seq;
}

/* Takes the next request: the first of the uid whose turn it is. The uid rejoins the line only
 * when that request (or piece of it) is done (serve_done), so a uid that arrives meanwhile goes
 * first. */
static GTask *
next_task(TkmsTpm *self, gpointer *uid)
{
	GTask *task = NULL;

	g_mutex_lock(&self->queue_lock);
	while (!self->stopping && g_queue_is_empty(&self->turns))
		g_cond_wait(&self->queue_cond, &self->queue_lock);
	if (!self->stopping) {
		*uid = g_queue_pop_head(&self->turns);
		task = g_queue_pop_head(g_hash_table_lookup(self->queues, *uid));
		note_requests(self, g_task_get_task_data(task));
	}
	g_atomic_int_set(&self->ctx.waiting, (gint)g_queue_get_length(&self->turns));
	g_mutex_unlock(&self->queue_lock);
	return task;
}

/* resume: a request with pieces left, served again at uid's next turn before its others */
static void
serve_done(TkmsTpm *self, gpointer uid, GTask *resume)
{
	GQueue *q;

	g_mutex_lock(&self->queue_lock);
	q = g_hash_table_lookup(self->queues, uid);
	if (resume != NULL)
		g_queue_push_head(q, resume);
	if (g_queue_is_empty(q))
		g_hash_table_remove(self->queues, uid);
	else
		g_queue_push_tail(&self->turns, uid);
	g_atomic_int_set(&self->ctx.waiting, (gint)g_queue_get_length(&self->turns));
	g_mutex_unlock(&self->queue_lock);
}

static gpointer
worker(gpointer data)
{
	TkmsTpm *self = data;
	gpointer uid = NULL;
	GTask *task;

	while ((task = next_task(self, &uid)) != NULL) {
		gboolean more = worker_run(task, self);
		serve_done(self, uid, more ? task : NULL);
		if (!more)
			g_object_unref(task);
		publish_status(self);
	}
	return NULL;
}

static gboolean
run_job(TkmsTpm *self, Job *job, gboolean *more, GError **error)
{
	*more = FALSE;
	if (job->piece == NULL)
		return job->func(&self->ctx, job->req, error);
	if (!job->piece(&self->ctx, job->req, &job->state, more, error))
		return FALSE;
	job->pieces_done++;
	return TRUE;
}

/* One attempt (of a request, or of a piece of one) under the watchdog; a TPM that did not
 * answer in time ends in *hung. */
static gboolean
attempt(TkmsTpm *self, Job *job, gboolean *more, gboolean *hung, GError **error)
{
	gboolean ok;

	tkms_tpm_watchdog_arm(self->watchdog);
	self->ctx.session_used = FALSE;
	ok = ensure_connected(self, error);
	if (ok) {
		/* objects of keys changed meanwhile go before anything else is loaded */
		tkms_tpm_object_cache_flush_doomed(&self->ctx);
		ok = run_job(self, job, more, error);
	}
	*hung = tkms_tpm_watchdog_disarm(self->watchdog) && !ok;
	if (*hung) {
		g_clear_error(error);
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_TPM_UNAVAILABLE,
			    "The TPM did not answer within %u s; check the TPM or swtpm, then retry",
			    tkms_tpm_watchdog_get_timeout_ms(self->watchdog) / 1000);
	}
	if (!ok && is_connection_error(*error))
		context_teardown(self);
	else if (!ok && self->ctx.session_used)
		/* a failed command may have left the shared session out of step (nonces, or the
		 * TPM dropped it): the next use starts a new one */
		tkms_tpm_session_drop(&self->ctx);
	return ok;
}

/* Runs the task's request, or its next piece; TRUE if pieces are left (the task is not done
 * and must be served again). */
static gboolean
worker_run(GTask *task, TkmsTpm *self)
{
	Job *job = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	gboolean was_connected = self->ctx.esys != NULL;
	gboolean ok, hung, more = FALSE;

	if (g_task_return_error_if_cancelled(task))
		return FALSE;
	ok = attempt(self, job, &more, &hung, &error);
	/* A TPM restarted while we were idle shows up as a dead socket on the first command:
	 * reconnect once before telling the caller (not after a timeout: it would only wait
	 * again; nor in the middle of a request in pieces: what it had in the TPM is gone). */
	if (!ok && !hung && was_connected && is_connection_error(error) && job->pieces_done == 0) {
		g_clear_error(&error);
		ok = attempt(self, job, &more, &hung, &error);
	}
	if (ok && more)
		return TRUE;
	if (!ok && is_connection_error(error))
		set_unavailable(self);
	if (!ok && self->ctx.esys != NULL) {
		/* the lockout counter and state may have moved */
		read_status(self, NULL);
	}
	if (!ok)
		g_task_return_error(task, g_steal_pointer(&error));
	else
		g_task_return_boolean(task, TRUE);
	return FALSE;
}

static void
submit_job(TkmsTpm *self, guint32 uid, Job *job, GCancellable *cancellable,
	   GAsyncReadyCallback callback, gpointer user_data)
{
	GTask *task = g_task_new(self, cancellable, callback, user_data);
	GQueue *q;

	g_task_set_task_data(task, job, job_free);
	g_mutex_lock(&self->queue_lock);
	job->seq = ++self->last_seq;
	q = g_hash_table_lookup(self->queues, GUINT_TO_POINTER(uid));
	if (q == NULL) {
		q = g_queue_new();
		g_hash_table_insert(self->queues, GUINT_TO_POINTER(uid), q);
		g_queue_push_tail(&self->turns, GUINT_TO_POINTER(uid));
		g_atomic_int_set(&self->ctx.waiting, (gint)g_queue_get_length(&self->turns));
	}
	g_queue_push_tail(q, task);
	g_mutex_unlock(&self->queue_lock);
	/* after unlocking: the worker, woken, would otherwise wait for the lock we hold */
	g_cond_signal(&self->queue_cond);
}

void
tkms_tpm_submit(TkmsTpm *self, guint32 uid, TkmsTpmFunc func, gpointer req,
		GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	Job *job = g_new0(Job, 1);

	job->func = func;
	job->req = req;
	submit_job(self, uid, job, cancellable, callback, user_data);
}

void
tkms_tpm_submit_pieces(TkmsTpm *self, guint32 uid, TkmsTpmPieceFunc func, GDestroyNotify state_free,
		       gpointer req, GCancellable *cancellable, GAsyncReadyCallback callback,
		       gpointer user_data)
{
	Job *job = g_new0(Job, 1);

	job->piece = func;
	job->state_free = state_free;
	job->req = req;
	submit_job(self, uid, job, cancellable, callback, user_data);
}

gboolean
tkms_tpm_finish(TkmsTpm *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

static gboolean
refresh_func(TkmsTpmContext *ctx, gpointer req, GError **error)
{
	return read_status(req, error);
}

void
tkms_tpm_refresh(TkmsTpm *self, GCancellable *cancellable, GAsyncReadyCallback callback,
		 gpointer user_data)
{
	tkms_tpm_submit(self, G_MAXUINT32, refresh_func, self, cancellable, callback, user_data);
}

static gboolean
flush_forgotten_func(TkmsTpmContext *ctx, gpointer req, GError **error)
{
	/* attempt() flushed them */
	return TRUE;
}

void
tkms_tpm_forget_key(TkmsTpm *self, guint32 owner, const gchar *name)
{
	TkmsTpmChangedKey f = {.owner = owner};

	g_strlcpy(f.name, name, sizeof(f.name));
	g_mutex_lock(&self->queue_lock);
	if (self->stopping || self->thread == NULL) {
		/* tkms_tpm_stop flushes everything */
		g_mutex_unlock(&self->queue_lock);
		return;
	}
	/* requests made until now must not keep its objects */
	f.seq = self->last_seq + 1;
	g_array_append_val(self->forget, f);
	g_mutex_unlock(&self->queue_lock);
	/* a request of its own, so that the objects go now rather than at the next request */
	tkms_tpm_submit(self, G_MAXUINT32, flush_forgotten_func, NULL, NULL, NULL, NULL);
}

void
tkms_tpm_get_status(TkmsTpm *self, TkmsTpmStatus *status)
{
	g_mutex_lock(&self->status_lock);
	*status = self->status;
	g_mutex_unlock(&self->status_lock);
}

void
tkms_tpm_stop(TkmsTpm *self)
{
	if (self->thread == NULL)
		return;
	g_mutex_lock(&self->queue_lock);
	self->stopping = TRUE;
	g_cond_signal(&self->queue_cond);
	g_mutex_unlock(&self->queue_lock);
	g_thread_join(g_steal_pointer(&self->thread));
	/* a clean exit leaves the TPM's slots as it found them */
	tkms_tpm_object_cache_flush_all(&self->ctx);
	tkms_tpm_sys_session_drop(&self->ctx);
	tkms_tpm_session_drop(&self->ctx);
	tkms_tpm_flush(&self->ctx, &self->ctx.srk);
	context_teardown(self);
	tkms_tpm_drbg_free(&self->ctx);
}

static void
tkms_tpm_finalize(GObject *object)
{
	TkmsTpm *self = TKMS_TPM(object);

	tkms_tpm_stop(self);
	context_teardown(self);
	tkms_tpm_drbg_free(&self->ctx);
	tkms_tpm_watchdog_free(self->watchdog);
	g_hash_table_unref(self->queues);
	g_mutex_clear(&self->queue_lock);
	g_cond_clear(&self->queue_cond);
	g_free(self->tcti_conf);
	g_free(self->srk_name_path);
	g_free(self->ctx.seal_auth_path);
	tkms_tpm_blob_clear(&self->ctx.seal_auth_key);
	g_clear_pointer(&self->ctx.key_auth_cache, g_hash_table_unref);
	g_clear_pointer(&self->ctx.objects, tkms_tpm_object_cache_free);
	g_array_unref(self->forget);
	g_mutex_clear(&self->status_lock);
	G_OBJECT_CLASS(tkms_tpm_parent_class)->finalize(object);
}

static void
tkms_tpm_class_init(TkmsTpmClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = tkms_tpm_finalize;
	/* emitted on the main context */
	signals[SIGNAL_STATUS_CHANGED] = g_signal_new("status-changed", G_TYPE_FROM_CLASS(klass),
						      G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
						      G_TYPE_NONE, 0);
}

static void
tkms_tpm_init(TkmsTpm *self)
{
	g_mutex_init(&self->status_lock);
	g_mutex_init(&self->queue_lock);
	g_cond_init(&self->queue_cond);
	self->queues = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)g_queue_free);
	self->forget = g_array_new(FALSE, FALSE, sizeof(TkmsTpmChangedKey));
	self->ctx.srk = ESYS_TR_NONE;
	self->ctx.session = ESYS_TR_NONE;
}

void
tkms_tpm_global_init(void)
{
	OPENSSL_init_crypto(OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
			    NULL);
}

TkmsTpm *
tkms_tpm_new(const gchar *tcti, const gchar *state_dir, guint timeout_seconds,
	     guint max_loaded_objects, gboolean state_is_new, GError **error)
{
	g_autoptr(TkmsTpm) self = g_object_new(TKMS_TYPE_TPM, NULL);
	g_autofree gchar *pin = NULL;

	/* a hung TPM must end in an error, not a worker blocked forever; generous, since key
	 * generation on a slow hardware TPM takes tens of seconds */
	self->watchdog = tkms_tpm_watchdog_new(MIN(timeout_seconds, 3600u) * 1000, tcti);
	self->tcti_conf = g_strdup(tcti);
	self->ctx.objects = tkms_tpm_object_cache_new(max_loaded_objects);
	self->srk_name_path = g_build_filename(state_dir, "srk.name", NULL);
	self->ctx.seal_auth_path = g_build_filename(state_dir, "seal-auth.key", NULL);
	/* both files are checked before anything runs: a damaged or unreadable one stops the
	 * start, naming it; only a new state directory gets new ones */
	self->may_create_pin =
		state_is_new && !g_file_test(self->srk_name_path, G_FILE_TEST_EXISTS);
	self->ctx.may_create_seal_auth =
		state_is_new && !g_file_test(self->ctx.seal_auth_path, G_FILE_TEST_EXISTS);
	if ((!self->may_create_pin && !read_pin(self->srk_name_path, &pin, error)) ||
	    !tkms_tpm_load_seal_auth_key(&self->ctx, error))
		return NULL;
	self->thread = g_thread_new("tkms-tpm", worker, self);
	return g_steal_pointer(&self);
}
