/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-hook"

/* The hook runner (hook.h): the checks, the JSON input (in a buffer that is wiped when freed)
 * and the masking of passwords in what a hook wrote to its standard error. The hook itself is
 * started by the hook launcher (hook-launcher.h), the process that keeps the privileges to
 * switch users; tkmsd's main process has none. Everything runs on the caller's main context:
 * no thread. */

#include "hook.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/crypto.h>

#include "hook-launcher.h"
#include "key.h"
#include "tkms-error.h"

#define MASK "********"

/* ---- buffers that hold passwords ---- */

typedef struct {
	gchar *data;
	gsize len;
	gsize cap;
} WipedBuf;

static void
wiped_buf_init(WipedBuf *b, gsize cap)
{
	b->data = g_malloc(cap);
	b->len = 0;
	b->cap = cap;
}

/* Grows by moving to a new block: the old one is wiped first, so no copy of what it held is
 * left behind (g_realloc could leave one). */
static void
wiped_buf_reserve(WipedBuf *b, gsize more)
{
	gchar *bigger;
	gsize cap;

	if (b->len + more <= b->cap)
		return;
	cap = MAX(b->cap * 2, b->len + more);
	bigger = g_malloc(cap);
	memcpy(bigger, b->data, b->len);
	OPENSSL_cleanse(b->data, b->cap);
	g_free(b->data);
	b->data = bigger;
	b->cap = cap;
}

static void
wiped_buf_append(WipedBuf *b, const gchar *data, gsize len)
{
	wiped_buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static void
wiped_buf_clear(WipedBuf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	g_clear_pointer(&b->data, g_free);
	b->len = b->cap = 0;
}

/* A JSON string: ", \ and control characters escaped (\u00XX), the rest as it is (UTF-8, which
 * the caller checked). */
static void
json_string(WipedBuf *b, const gchar *s, gsize len)
{
	static const gchar hex[] = "0123456789abcdef";

	wiped_buf_append(b, "\"", 1);
	for (gsize i = 0; i < len; i++) {
		guchar c = s[i];
		if (c == '"' || c == '\\') {
			gchar e[2] = {'\\', c};
			wiped_buf_append(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			gchar e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
			wiped_buf_append(b, e, 6);
		} else {
			wiped_buf_append(b, (const gchar *)&c, 1);
		}
	}
	wiped_buf_append(b, "\"", 1);
}

static void
json_member(WipedBuf *b, const gchar *name)
{
	if (b->len > 1)
		wiped_buf_append(b, ", ", 2);
	json_string(b, name, strlen(name));
	wiped_buf_append(b, ": ", 2);
}

static void
json_uint(WipedBuf *b, const gchar *name, guint32 value)
{
	gchar num[16];
	gint n = g_snprintf(num, sizeof(num), "%u", value);

	json_member(b, name);
	wiped_buf_append(b, num, n);
}

static gboolean
json_bytes(WipedBuf *b, const gchar *name, GBytes *value, GError **error)
{
	gsize len;
	const gchar *data = g_bytes_get_data(value, &len);

	if (!g_utf8_validate(data, len, NULL)) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The %s password is not UTF-8 text, which a hook's JSON input cannot "
			    "carry; import a text password",
			    name);
		return FALSE;
	}
	json_member(b, name);
	json_string(b, data, len);
	return TRUE;
}

static gboolean
build_input(WipedBuf *b, const TkmsHookInput *in, GError **error)
{
	wiped_buf_init(b, 512);
	wiped_buf_append(b, "{", 1);
	json_member(b, "step");
	json_string(b, in->step, strlen(in->step));
	json_uint(b, "owner", in->owner);
	json_member(b, "key");
	json_string(b, in->key, strlen(in->key));
	if (in->current_version != 0)
		json_uint(b, "current-version", in->current_version);
	if (in->pending_version != 0)
		json_uint(b, "pending-version", in->pending_version);
	if (in->previous_version != 0)
		json_uint(b, "previous-version", in->previous_version);
	if ((in->current != NULL && !json_bytes(b, "current", in->current, error)) ||
	    (in->pending != NULL && !json_bytes(b, "pending", in->pending, error)) ||
	    (in->previous != NULL && !json_bytes(b, "previous", in->previous, error)))
		return FALSE;
	wiped_buf_append(b, "}\n", 2);
	return TRUE;
}

/* ---- masking ---- */

static void
wiped_buf_free(WipedBuf *b)
{
	wiped_buf_clear(b);
	g_free(b);
}

static gint
longest_first(gconstpointer a, gconstpointer b)
{
	gsize la = (*(WipedBuf *const *)a)->len;
	gsize lb = (*(WipedBuf *const *)b)->len;
	return la < lb ? 1 : la > lb ? -1 : 0;
}

/* The forms in which a password may show up in a hook's standard error: as it is, and as its
 * JSON input spells it (a hook that echoes its input). Longest first, so that the longer of
 * two overlapping forms is masked whole. */
static GPtrArray *
mask_forms(const TkmsHookInput *in)
{
	GBytes *passwords[] = {in->current, in->pending, in->previous};
	GPtrArray *forms = g_ptr_array_new_with_free_func((GDestroyNotify)wiped_buf_free);

	for (guint i = 0; i < G_N_ELEMENTS(passwords); i++) {
		WipedBuf *plain, *esc;
		gsize len;
		const gchar *data;

		if (passwords[i] == NULL || g_bytes_get_size(passwords[i]) == 0)
			continue;
		data = g_bytes_get_data(passwords[i], &len);
		plain = g_new0(WipedBuf, 1);
		wiped_buf_init(plain, len);
		wiped_buf_append(plain, data, len);
		g_ptr_array_add(forms, plain);
		esc = g_new0(WipedBuf, 1);
		wiped_buf_init(esc, len + 16);
		json_string(esc, data, len);
		/* without the quotes */
		esc->len -= 2;
		memmove(esc->data, esc->data + 1, esc->len);
		if (esc->len != len)
			g_ptr_array_add(forms, esc);
		else
			wiped_buf_free(esc);
	}
	g_ptr_array_sort(forms, longest_first);
	return forms;
}

/* text with every form of a password replaced by "********", and a tail that begins one
 * (cut: by the 4 KiB limit or a kill; otherwise only if at least 4 bytes long, which is no
 * accident) as well; then made valid UTF-8. */
static gchar *
mask(const guint8 *text, gsize len, GPtrArray *forms, gboolean cut)
{
	g_autoptr(GString) out = g_string_sized_new(len + 16);
	gsize i = 0;

	while (i < len) {
		gboolean masked = FALSE;
		for (guint f = 0; f < forms->len && !masked; f++) {
			const WipedBuf *form = g_ptr_array_index(forms, f);
			gsize plen = form->len;
			const guint8 *p = (const guint8 *)form->data;
			gsize rest = len - i;
			if (rest >= plen && memcmp(text + i, p, plen) == 0) {
				g_string_append(out, MASK);
				i += plen;
				masked = TRUE;
			} else if (rest < plen && (cut || rest >= 4) &&
				   memcmp(text + i, p, rest) == 0) {
				g_string_append(out, MASK);
				i = len;
				masked = TRUE;
			}
		}
		if (!masked)
			g_string_append_c(out, text[i++]);
	}
	return g_utf8_make_valid(out->str, out->len);
}


/* ---- running a hook, through the launcher ---- */

typedef struct {
	gchar *name;
	gchar *step;
	guint timeout;
	WipedBuf input;	  /* the JSON, wiped once sent */
	GPtrArray *forms; /* the passwords, to mask */
	gchar *reason;
} HookRun;

static void
hook_run_free(gpointer data)
{
	HookRun *run = data;

	wiped_buf_clear(&run->input);
	g_clear_pointer(&run->forms, g_ptr_array_unref);
	g_free(run->reason);
	g_free(run->name);
	g_free(run->step);
	g_free(run);
}

static void
launcher_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	HookRun *run = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsHookLauncherResult) r =
		tkms_hook_launcher_run_finish(TKMS_HOOK_LAUNCHER(source), res, &error);
	g_autofree gchar *what = NULL;
	g_autofree gchar *reason = NULL;
	const guint8 *err;
	gsize err_len;
	gboolean ok;

	if (r == NULL) {
		run->reason = g_strdup("");
		g_prefix_error(&error, "The hook \"%s\" %s could not be run: ", run->name,
			       run->step);
		g_task_return_error(task, g_steal_pointer(&error));
		return;
	}
	err = g_bytes_get_data(r->output, &err_len);
	if (r->outcome == TKMS_HOOK_WIRE_NOT_RUN) {
		/* the launcher's own check, or the start, failed: its words, no hook output */
		g_autofree gchar *why = g_utf8_make_valid((const gchar *)err, err_len);
		run->reason = g_strdup("");
		if (g_str_has_prefix(why, "The hook \""))
			g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED, "%s", why);
		else
			g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED,
						"The hook \"%s\" %s could not be run: %s",
						run->name, run->step, why);
		return;
	}
	ok = r->outcome == TKMS_HOOK_WIRE_ENDED && WIFEXITED(r->status) &&
	     WEXITSTATUS(r->status) == 0;
	/* a hook that was cut off may have been in the middle of a password */
	reason = mask(err, err_len, run->forms, r->cut || !ok);
	g_strchomp(reason);
	run->reason = g_strdup(reason);
	if (r->outcome == TKMS_HOOK_WIRE_CANCELLED)
		what = g_strdup("was cancelled");
	else if (r->outcome == TKMS_HOOK_WIRE_TIMED_OUT)
		what = g_strdup_printf("timed out after %u s", run->timeout);
	else if (ok) {
		g_task_return_boolean(task, TRUE);
		return;
	} else if (WIFEXITED(r->status))
		what = g_strdup_printf("exited with status %d", WEXITSTATUS(r->status));
	else if (WIFSIGNALED(r->status))
		what = g_strdup_printf("killed by signal %d", WTERMSIG(r->status));
	else
		what = g_strdup_printf("ended with wait status %d", r->status);
	g_task_return_new_error(task, TKMS_ERROR, TKMS_ERROR_FAILED, "The hook \"%s\" %s %s%s%s",
				run->name, run->step, what, *reason ? ": " : "", reason);
}

/* The launcher runs hooks from the directory and as the user it was started with: a run for
 * another configuration cannot be made. */
static TkmsHookLauncher *
launcher_for(const TkmsHookConfig *config, GError **error)
{
	TkmsHookLauncher *launcher = tkms_hook_launcher_get_default();

	if (launcher == NULL) {
		g_set_error_literal(error, TKMS_ERROR, TKMS_ERROR_FAILED,
				    "No hook launcher was started");
		return NULL;
	}
	if (g_strcmp0(tkms_hook_launcher_get_directory(launcher), config->directory) != 0 ||
	    g_strcmp0(tkms_hook_launcher_get_user(launcher), config->user) != 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    "The hook launcher runs hooks of %s as %s, not of %s as %s; restart "
			    "tkmsd for a new [passwords] configuration",
			    tkms_hook_launcher_get_directory(launcher),
			    tkms_hook_launcher_get_user(launcher), config->directory, config->user);
		return NULL;
	}
	return launcher;
}

void
tkms_hook_run_async(const TkmsHookConfig *config, const gchar *name, const TkmsHookInput *input,
		    GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
	HookRun *run = g_new0(HookRun, 1);
	TkmsHookLauncher *launcher = NULL;
	GError *error = NULL;

	g_task_set_source_tag(task, tkms_hook_run_async);
	run->name = g_strdup(name);
	run->step = g_strdup(input->step);
	run->timeout = CLAMP(config->timeout, 1, TKMS_HOOK_WIRE_TIMEOUT_MAX);
	run->forms = mask_forms(input);
	g_task_set_task_data(task, run, hook_run_free);

	/* checked here for a clear answer at once, and again by the launcher, which does not
	 * take tkmsd's word for it */
	if (!tkms_hook_check(config, name, &error) ||
	    (launcher = launcher_for(config, &error)) == NULL ||
	    !build_input(&run->input, input, &error)) {
		if (error->code == TKMS_ERROR_INVALID_ARGUMENT)
			error->code = TKMS_ERROR_FAILED;
		if (!g_str_has_prefix(error->message, "The hook \""))
			g_prefix_error(&error, "The hook \"%s\" %s could not be run: ", name,
				       input->step);
		run->reason = g_strdup("");
		g_task_return_error(task, error);
		return;
	}
	tkms_hook_launcher_run_async(launcher, name, input->step, run->timeout,
				     (const guint8 *)run->input.data, run->input.len, cancellable,
				     launcher_done_cb, g_object_ref(task));
	/* sent (or refused) at once: the launcher holds the only copy now */
	wiped_buf_clear(&run->input);
}

gboolean
tkms_hook_run_finish(GAsyncResult *result, gchar **reason, GError **error)
{
	HookRun *run;

	g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
	g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == tkms_hook_run_async, FALSE);
	run = g_task_get_task_data(G_TASK(result));
	if (reason != NULL)
		*reason = g_strdup(run->reason ? run->reason : "");
	return g_task_propagate_boolean(G_TASK(result), error);
}
