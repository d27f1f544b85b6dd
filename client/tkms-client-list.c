/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-client"

/* Paged listing: ListKeysPage, ListAllKeysPage, and tkms_client_collect_keys() which pages
 * through all of them. Key info comes as TkmsKeyInfo objects. */

#include "tkms-client-private.h"

typedef struct {
	GPtrArray *keys;
	gchar *next_page_token;
} Page;

static void
page_free(Page *page)
{
	g_clear_pointer(&page->keys, g_ptr_array_unref);
	g_free(page->next_page_token);
	g_free(page);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Page, page_free)

typedef gboolean (*PageFinish)(TkmsDbusKeyManager *proxy, GVariant **out_keys,
			       gchar **out_next_page_token, GAsyncResult *res, GError **error);

static void
on_page_reply(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	PageFinish finish = (PageFinish)g_task_get_task_data(task);
	g_autoptr(Page) page = g_new0(Page, 1);
	GVariant *keys = NULL;
	GError *error = NULL;

	if (!finish(TKMS_DBUS_KEY_MANAGER(source), &keys, &page->next_page_token, res,
		    &error)) {
		_tkms_error_strip(&error);
		g_task_return_error(task, error);
		return;
	}
	page->keys = _tkms_key_infos_from_variant(keys, &error);
	if (page->keys == NULL) {
		g_task_return_error(task, error);
		return;
	}
	g_task_return_pointer(task, g_steal_pointer(&page), (GDestroyNotify)page_free);
}

static GPtrArray *
page_finish(TkmsClient *self, GAsyncResult *result, gpointer source_tag,
	    gchar **out_next_page_token, GError **error)
{
	g_autoptr(Page) page = NULL;

	if (!_tkms_task_check(self, result, source_tag))
		return NULL;
	page = g_task_propagate_pointer(G_TASK(result), error);
	if (page == NULL)
		return NULL;
	if (out_next_page_token != NULL)
		*out_next_page_token = g_steal_pointer(&page->next_page_token);
	return g_steal_pointer(&page->keys);
}

static GPtrArray *
page_sync(gboolean ok, GVariant *keys, gchar *next_page_token, gchar **out_next_page_token,
	  GError **error)
{
	g_autofree gchar *token = next_page_token;
	GPtrArray *infos;

	if (!_tkms_sync_done(ok, error))
		return NULL;
	infos = _tkms_key_infos_from_variant(keys, error);
	if (infos != NULL && out_next_page_token != NULL)
		*out_next_page_token = g_steal_pointer(&token);
	return infos;
}

/**
 * tkms_client_list_keys_page:
 * @self: a #TkmsClient
 * @page_token: (nullable): %NULL or empty for the first page, else the @next_page_token of
 *   the page before
 * @page_size: how many keys at most; 0 for the daemon's default (100), at most 1000
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Lists a page of the caller's keys, sorted by name (D-Bus `ListKeysPage`); finish with
 * tkms_client_list_keys_page_finish(). Unlike tkms_client_list_keys() it works for any
 * number of keys.
 *
 * Since: 0.2
 */
void
tkms_client_list_keys_page(TkmsClient *self, const gchar *page_token, guint page_size,
			   GCancellable *cancellable, GAsyncReadyCallback callback,
			   gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);

	task = _tkms_task_new(self, tkms_client_list_keys_page, "ListKeysPage",
			      G_CALLBACK(tkms_dbus_key_manager_call_list_keys_page_finish),
			      cancellable, callback, user_data);
	tkms_dbus_key_manager_call_list_keys_page(
		self->proxy, page_token != NULL ? page_token : "", page_size,
		_tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, cancellable, on_page_reply,
		task);
}

/**
 * tkms_client_list_keys_page_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @out_next_page_token: (out) (optional) (transfer full): the token of the next page, empty
 *   after the last page
 * @error: return location for a #GError
 *
 * Returns: (transfer container) (element-type TkmsKeyInfo): the keys on this page, or %NULL
 *   with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_list_keys_page_finish(TkmsClient *self, GAsyncResult *result,
				  gchar **out_next_page_token, GError **error)
{
	return page_finish(self, result, tkms_client_list_keys_page, out_next_page_token,
			   error);
}

/**
 * tkms_client_list_keys_page_sync:
 * @self: a #TkmsClient
 * @page_token: (nullable): %NULL or empty for the first page, else the @next_page_token of
 *   the page before
 * @page_size: how many keys at most; 0 for the daemon's default (100), at most 1000
 * @out_next_page_token: (out) (optional) (transfer full): the token of the next page, empty
 *   after the last page
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_list_keys_page().
 *
 * Returns: (transfer container) (element-type TkmsKeyInfo): the keys on this page, or %NULL
 *   with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_list_keys_page_sync(TkmsClient *self, const gchar *page_token, guint page_size,
				gchar **out_next_page_token, GCancellable *cancellable,
				GError **error)
{
	GVariant *keys = NULL;
	gchar *token = NULL;
	gboolean ok;

	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);

	ok = tkms_dbus_key_manager_call_list_keys_page_sync(
		self->proxy, page_token != NULL ? page_token : "", page_size,
		_tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, &keys, &token, cancellable,
		error);
	return page_sync(ok, keys, token, out_next_page_token, error);
}

/**
 * tkms_client_list_all_keys_page:
 * @self: a #TkmsClient
 * @page_token: (nullable): %NULL or empty for the first page, else the @next_page_token of
 *   the page before
 * @page_size: how many keys at most; 0 for the daemon's default (100), at most 1000
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply arrives
 * @user_data: (closure): data for @callback
 *
 * Lists a page of every owner's keys, sorted by owner, then name (D-Bus `ListAllKeysPage`,
 * needs the polkit action org.tkms.KeyManager.admin); finish with
 * tkms_client_list_all_keys_page_finish().
 *
 * Since: 0.2
 */
void
tkms_client_list_all_keys_page(TkmsClient *self, const gchar *page_token, guint page_size,
			       GCancellable *cancellable, GAsyncReadyCallback callback,
			       gpointer user_data)
{
	GTask *task;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);

	task = _tkms_task_new(self, tkms_client_list_all_keys_page, "ListAllKeysPage",
			      G_CALLBACK(tkms_dbus_key_manager_call_list_all_keys_page_finish),
			      cancellable, callback, user_data);
	tkms_dbus_key_manager_call_list_all_keys_page(
		self->proxy, page_token != NULL ? page_token : "", page_size,
		_tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, cancellable, on_page_reply,
		task);
}

/**
 * tkms_client_list_all_keys_page_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @out_next_page_token: (out) (optional) (transfer full): the token of the next page, empty
 *   after the last page
 * @error: return location for a #GError
 *
 * Returns: (transfer container) (element-type TkmsKeyInfo): the keys on this page, or %NULL
 *   with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_list_all_keys_page_finish(TkmsClient *self, GAsyncResult *result,
				      gchar **out_next_page_token, GError **error)
{
	return page_finish(self, result, tkms_client_list_all_keys_page, out_next_page_token,
			   error);
}

/**
 * tkms_client_list_all_keys_page_sync:
 * @self: a #TkmsClient
 * @page_token: (nullable): %NULL or empty for the first page, else the @next_page_token of
 *   the page before
 * @page_size: how many keys at most; 0 for the daemon's default (100), at most 1000
 * @out_next_page_token: (out) (optional) (transfer full): the token of the next page, empty
 *   after the last page
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_list_all_keys_page().
 *
 * Returns: (transfer container) (element-type TkmsKeyInfo): the keys on this page, or %NULL
 *   with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_list_all_keys_page_sync(TkmsClient *self, const gchar *page_token, guint page_size,
				    gchar **out_next_page_token, GCancellable *cancellable,
				    GError **error)
{
	GVariant *keys = NULL;
	gchar *token = NULL;
	gboolean ok;

	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);

	ok = tkms_dbus_key_manager_call_list_all_keys_page_sync(
		self->proxy, page_token != NULL ? page_token : "", page_size,
		_tkms_call_flags(self), TKMS_CALL_TIMEOUT_DEFAULT, &keys, &token, cancellable,
		error);
	return page_sync(ok, keys, token, out_next_page_token, error);
}

/* ---- collect: every page ---- */

typedef struct {
	gboolean all_owners;
	guint page_size;
	GPtrArray *keys;
	gchar *token;
} Collect;

static void
collect_free(Collect *c)
{
	g_clear_pointer(&c->keys, g_ptr_array_unref);
	g_free(c->token);
	g_free(c);
}

/* A daemon that hands back the token it was given would keep us paging forever. */
static gboolean
check_progress(const gchar *token, const gchar *next, GError **error)
{
	if (next[0] != '\0' && g_strcmp0(token, next) == 0) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "The daemon returned the same page token twice");
		return FALSE;
	}
	return TRUE;
}

static void collect_next(GTask *task);

static void
on_collect_page(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	Collect *c = g_task_get_task_data(task);
	TkmsClient *self = TKMS_CLIENT(source);
	g_autoptr(GPtrArray) page = NULL;
	g_autofree gchar *next = NULL;
	GError *error = NULL;

	page = c->all_owners ? tkms_client_list_all_keys_page_finish(self, res, &next, &error)
			     : tkms_client_list_keys_page_finish(self, res, &next, &error);
	if (page == NULL || !check_progress(c->token, next, &error)) {
		g_task_return_error(task, error);
		return;
	}
	g_ptr_array_extend_and_steal(c->keys, g_steal_pointer(&page));
	if (next[0] == '\0') {
		g_task_return_pointer(task, g_steal_pointer(&c->keys),
				      (GDestroyNotify)g_ptr_array_unref);
		return;
	}
	g_free(c->token);
	c->token = g_steal_pointer(&next);
	collect_next(g_steal_pointer(&task));
}

static void
collect_next(GTask *task)
{
	Collect *c = g_task_get_task_data(task);
	TkmsClient *self = g_task_get_source_object(task);

	if (c->all_owners)
		tkms_client_list_all_keys_page(self, c->token, c->page_size,
					       g_task_get_cancellable(task), on_collect_page,
					       task);
	else
		tkms_client_list_keys_page(self, c->token, c->page_size,
					   g_task_get_cancellable(task), on_collect_page, task);
}

/**
 * tkms_client_collect_keys:
 * @self: a #TkmsClient
 * @all_owners: %FALSE for the caller's keys (`ListKeysPage`), %TRUE for every owner's
 *   (`ListAllKeysPage`, needs the polkit action org.tkms.KeyManager.admin)
 * @page_size: keys per call; 0 for the daemon's default (100), at most 1000
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the last page has arrived
 * @user_data: (closure): data for @callback
 *
 * Lists all keys, page after page, however many there are; finish with
 * tkms_client_collect_keys_finish(). Keys created or destroyed while it pages may or may
 * not be listed, but no key is listed twice.
 *
 * Since: 0.2
 */
void
tkms_client_collect_keys(TkmsClient *self, gboolean all_owners, guint page_size,
			 GCancellable *cancellable, GAsyncReadyCallback callback,
			 gpointer user_data)
{
	GTask *task;
	Collect *c;

	g_return_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL);

	task = g_task_new(self, cancellable, callback, user_data);
	g_task_set_source_tag(task, tkms_client_collect_keys);
	c = g_new0(Collect, 1);
	c->all_owners = all_owners;
	c->page_size = page_size;
	c->keys = g_ptr_array_new_with_free_func(g_object_unref);
	c->token = g_strdup("");
	g_task_set_task_data(task, c, (GDestroyNotify)collect_free);
	collect_next(task);
}

/**
 * tkms_client_collect_keys_finish:
 * @self: a #TkmsClient
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer container) (element-type TkmsKeyInfo): every key, in the order of the
 *   pages, or %NULL with @error set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_collect_keys_finish(TkmsClient *self, GAsyncResult *result, GError **error)
{
	if (!_tkms_task_check(self, result, tkms_client_collect_keys))
		return NULL;
	return g_task_propagate_pointer(G_TASK(result), error);
}

/**
 * tkms_client_collect_keys_sync:
 * @self: a #TkmsClient
 * @all_owners: %FALSE for the caller's keys, %TRUE for every owner's (needs the polkit
 *   action org.tkms.KeyManager.admin)
 * @page_size: keys per call; 0 for the daemon's default (100), at most 1000
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of tkms_client_collect_keys().
 *
 * Returns: (transfer container) (element-type TkmsKeyInfo): every key, or %NULL with @error
 *   set
 *
 * Since: 0.2
 */
GPtrArray *
tkms_client_collect_keys_sync(TkmsClient *self, gboolean all_owners, guint page_size,
			      GCancellable *cancellable, GError **error)
{
	g_autoptr(GPtrArray) keys = NULL;
	g_autofree gchar *token = g_strdup("");

	g_return_val_if_fail(TKMS_IS_CLIENT(self) && self->proxy != NULL, NULL);

	keys = g_ptr_array_new_with_free_func(g_object_unref);
	for (;;) {
		g_autoptr(GPtrArray) page = NULL;
		g_autofree gchar *next = NULL;

		page = all_owners ? tkms_client_list_all_keys_page_sync(
					    self, token, page_size, &next, cancellable, error)
				  : tkms_client_list_keys_page_sync(self, token, page_size,
								    &next, cancellable, error);
		if (page == NULL || !check_progress(token, next, error))
			return NULL;
		g_ptr_array_extend_and_steal(keys, g_steal_pointer(&page));
		if (next[0] == '\0')
			return g_steal_pointer(&keys);
		g_free(token);
		token = g_steal_pointer(&next);
	}
}
