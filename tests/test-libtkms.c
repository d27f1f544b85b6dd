/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "test-libtkms"

/* libtkms's 0.2 API against the daemon: key info as TkmsKeyInfo (generate_key, lookup_key),
 * paged listing (list_keys_page, collect_keys) in both forms, data keys, rewrapping and
 * digest signatures, the life cycle of versions (rotation, states, policy, scheduled
 * destruction), password keys (get_secret, import_secret, their stages and rotation), and
 * the same from Python through the GIR (test-libtkms.py). */

#include <string.h>
#include <unistd.h>

#include "tkms-test-util.h"

static TkmsTestEnv *env;

static void
on_result(GObject *source, GAsyncResult *res, gpointer user_data)
{
	*(GAsyncResult **)user_data = g_object_ref(res);
}

static GAsyncResult *
wait_for(GAsyncResult **res)
{
	while (*res == NULL)
		g_main_context_iteration(NULL, TRUE);
	return *res;
}

static gboolean
names_contain(GPtrArray *keys, const gchar *name)
{
	for (guint i = 0; i < keys->len; i++) {
		if (g_str_equal(tkms_key_info_get_name(g_ptr_array_index(keys, i)), name))
			return TRUE;
	}
	return FALSE;
}

static void
test_key_info_from_variant(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKeyInfo) info = NULL;
	g_autoptr(TkmsKeyInfo) bad = NULL;
	const guint32 *pcrs;
	guint n_pcrs = 0;
	GPtrArray *versions;
	g_autofree gchar *type = NULL;
	guint64 created = 0;

	info = tkms_key_info_new_from_variant(
		g_variant_new_parsed("{'name': <'k'>, 'owner': <uint32 1000>, "
				     "'type': <'ecdsa-p256'>, 'protection': <'tpm'>, "
				     "'created': <uint64 1790781120>, "
				     "'primary-version': <uint32 1>, 'pcrs': <[uint32 7]>, "
				     "'description': <''>, 'versions': <[{'version': <uint32 1>, "
				     "'state': <'active'>, 'created': <uint64 1790781120>}]>}"),
		&error);
	g_assert_no_error(error);
	g_assert_cmpstr(tkms_key_info_get_name(info), ==, "k");
	g_assert_cmpuint(tkms_key_info_get_owner(info), ==, 1000);
	g_assert_cmpstr(tkms_key_info_get_key_type(info), ==, "ecdsa-p256");
	g_assert_cmpstr(tkms_key_info_get_state(info), ==, "active");
	pcrs = tkms_key_info_get_pcrs(info, &n_pcrs);
	g_assert_cmpuint(n_pcrs, ==, 1);
	g_assert_cmpuint(pcrs[0], ==, 7);
	versions = tkms_key_info_get_versions(info);
	g_assert_cmpuint(versions->len, ==, 1);
	g_assert_cmpuint(tkms_key_version_info_get_created(g_ptr_array_index(versions, 0)), ==,
			 1790781120);
	g_object_get(info, "type", &type, "created", &created, NULL);
	g_assert_cmpstr(type, ==, "ecdsa-p256");
	g_assert_cmpuint(created, ==, 1790781120);

	/* a version without a state is not a key info */
	bad = tkms_key_info_new_from_variant(
		g_variant_new_parsed("{'name': <'k'>, 'versions': <[{'version': <uint32 1>}]>}"),
		&error);
	g_assert_null(bad);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

static void
test_generate_lookup(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *name = tkms_test_key_name("lib-info");
	g_autoptr(TkmsKeyInfo) made = NULL;
	g_autoptr(TkmsKeyInfo) found = NULL;
	g_autoptr(TkmsKeyInfo) async_found = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	TkmsKeyVersionInfo *v;

	made = tkms_client_generate_key_sync(
		client, name, "aes-256-gcm",
		g_variant_new_parsed("{'description': <'typed'>}"), NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(tkms_key_info_get_name(made), ==, name);
	g_assert_cmpstr(tkms_key_info_get_protection(made), ==, "sealed");
	g_assert_cmpstr(tkms_key_info_get_description(made), ==, "typed");
	g_assert_cmpuint(tkms_key_info_get_owner(made), ==, getuid());
	g_assert_cmpuint(tkms_key_info_get_primary_version(made), ==, 1);
	g_assert_cmpuint(tkms_key_info_get_created(made), >, 1700000000);

	found = tkms_client_lookup_key_sync(client, name, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(tkms_key_info_get_versions(found)->len, ==, 1);
	v = g_ptr_array_index(tkms_key_info_get_versions(found), 0);
	g_assert_cmpuint(tkms_key_version_info_get_version(v), ==, 1);
	g_assert_cmpstr(tkms_key_version_info_get_state(v), ==, "active");

	tkms_client_lookup_key(client, name, NULL, on_result, &res);
	async_found = tkms_client_lookup_key_finish(client, wait_for(&res), &error);
	g_assert_no_error(error);
	g_assert_cmpuint(tkms_key_info_get_created(async_found), ==,
			 tkms_key_info_get_created(made));

	g_clear_object(&found);
	found = tkms_client_lookup_key_sync(client, "lib-no-such-key", NULL, &error);
	g_assert_null(found);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND);
}

static void
test_pages(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_object_unref);
	g_autoptr(GPtrArray) all = NULL;
	g_autoptr(GPtrArray) async_all = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *token = g_strdup("");
	guint pages = 0;

	for (guint i = 0; i < 7; i++) {
		gchar *name = tkms_test_key_name("lib-page");
		g_autoptr(TkmsKeyInfo) info =
			tkms_client_generate_key_sync(client, name, "hmac-sha256", NULL, NULL, &error);

		g_assert_no_error(error);
		g_ptr_array_add(names, name);
	}
	/* pages of 3 until the empty token; none bigger, no key twice */
	do {
		g_autoptr(GPtrArray) page = NULL;
		g_autofree gchar *next = NULL;

		page = tkms_client_list_keys_page_sync(client, token, 3, &next, NULL, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(page->len, <=, 3);
		for (guint i = 0; i < page->len; i++) {
			TkmsKeyInfo *k = g_ptr_array_index(page, i);

			g_assert_false(names_contain(seen, tkms_key_info_get_name(k)));
			g_ptr_array_add(seen, g_object_ref(k));
		}
		g_free(token);
		token = g_steal_pointer(&next);
		pages++;
	} while (token[0] != '\0');
	g_assert_cmpuint(pages, >=, 3);
	for (guint i = 0; i < names->len; i++)
		g_assert_true(names_contain(seen, g_ptr_array_index(names, i)));

	all = tkms_client_collect_keys_sync(client, FALSE, 3, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(all->len, ==, seen->len);

	/* every owner's, asynchronously, in the daemon's default page size */
	tkms_client_collect_keys(client, TRUE, 0, NULL, on_result, &res);
	async_all = tkms_client_collect_keys_finish(client, wait_for(&res), &error);
	g_assert_no_error(error);
	g_assert_cmpuint(async_all->len, >=, all->len);
	for (guint i = 0; i < names->len; i++)
		g_assert_true(names_contain(async_all, g_ptr_array_index(names, i)));

	/* a token the daemon did not hand out: its InvalidArgument, as a TKMS_ERROR */
	g_clear_pointer(&all, g_ptr_array_unref);
	all = tkms_client_list_keys_page_sync(client, "not-a-token", 3, NULL, NULL, &error);
	g_assert_null(all);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
}

static void
test_data_key(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *name = tkms_test_key_name("lib-dk");
	g_autoptr(TkmsKeyInfo) made = NULL;
	g_autoptr(GBytes) context = tkms_test_bytes_str("backup-7");
	g_autoptr(GBytes) other = tkms_test_bytes_str("backup-8");
	g_autoptr(GBytes) key = NULL;
	g_autoptr(GBytes) wrapped = NULL;
	g_autoptr(GBytes) key2 = NULL;
	g_autoptr(GBytes) wrapped2 = NULL;
	g_autoptr(GBytes) unwrapped = NULL;
	g_autoptr(GBytes) refused = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	made = tkms_client_generate_key_sync(client, name, "aes-256-gcm", NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(tkms_client_generate_data_key_sync(client, name, 32, context, &key,
							 &wrapped, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(key), ==, 32);
	g_assert_false(tkms_test_bytes_contain(wrapped, g_bytes_get_data(key, NULL), 32));
	/* the wrapped key is an Encrypt ciphertext under the same context */
	unwrapped = tkms_client_decrypt_sync(client, name, wrapped, context, NULL, &error);
	g_assert_no_error(error);
	tkms_assert_bytes_equal(unwrapped, key);
	refused = tkms_client_decrypt_sync(client, name, wrapped, other, NULL, &error);
	g_assert_null(refused);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE);
	g_clear_error(&error);

	/* asynchronously, another length; a fresh key each time */
	tkms_client_generate_data_key(client, name, 64, NULL, NULL, on_result, &res);
	g_assert_true(tkms_client_generate_data_key_finish(client, wait_for(&res), &key2,
							   &wrapped2, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(key2), ==, 64);
	g_assert_false(tkms_test_bytes_contain(key2, g_bytes_get_data(key, NULL), 32));

	/* the daemon's limits come back as its errors */
	g_assert_false(tkms_client_generate_data_key_sync(client, name, 65, NULL, NULL, NULL,
							  NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
}

static void
test_re_encrypt(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *name = tkms_test_key_name("lib-reenc");
	g_autoptr(TkmsKeyInfo) made = NULL;
	g_autoptr(GBytes) context = tkms_test_bytes_str("db");
	g_autoptr(GBytes) data = tkms_test_bytes_str("attack at dawn");
	g_autoptr(GBytes) ct = NULL;
	g_autoptr(GBytes) ct2 = NULL;
	g_autoptr(GBytes) ct3 = NULL;
	g_autoptr(GBytes) back = NULL;
	g_autoptr(GBytes) tampered = NULL;
	g_autoptr(GBytes) refused = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;

	made = tkms_client_generate_key_sync(client, name, "aes-256-gcm", NULL, NULL, &error);
	g_assert_no_error(error);
	ct = tkms_client_encrypt_sync(client, name, data, context, NULL, &error);
	g_assert_no_error(error);
	ct2 = tkms_client_re_encrypt_sync(client, name, ct, context, NULL, &error);
	g_assert_no_error(error);
	/* a fresh IV: other bytes, the same plaintext */
	g_assert_false(g_bytes_equal(ct, ct2));
	back = tkms_client_decrypt_sync(client, name, ct2, context, NULL, &error);
	g_assert_no_error(error);
	tkms_assert_bytes_equal(back, data);

	tkms_client_re_encrypt(client, name, ct2, context, NULL, on_result, &res);
	ct3 = tkms_client_re_encrypt_finish(client, wait_for(&res), &error);
	g_assert_no_error(error);
	g_clear_pointer(&back, g_bytes_unref);
	back = tkms_client_decrypt_sync(client, name, ct3, context, NULL, &error);
	g_assert_no_error(error);
	tkms_assert_bytes_equal(back, data);

	/* a changed ciphertext is not rewrapped */
	tampered = tkms_test_bytes_flip_bit(ct, 8 * (g_bytes_get_size(ct) - 1));
	refused = tkms_client_re_encrypt_sync(client, name, tampered, context, NULL, &error);
	g_assert_null(refused);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE);
}

static GBytes *
sha256(GBytes *data)
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	guint8 md[32];
	gsize len = sizeof(md);

	g_checksum_update(sum, g_bytes_get_data(data, NULL), (gssize)g_bytes_get_size(data));
	g_checksum_get_digest(sum, md, &len);
	return g_bytes_new(md, len);
}

static void
test_sign_digest(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	const gchar *types[] = {"ecdsa-p256", "rsa-2048"};

	for (guint t = 0; t < G_N_ELEMENTS(types); t++) {
		g_autofree gchar *name = tkms_test_key_name("lib-digest");
		g_autoptr(TkmsKeyInfo) made = NULL;
		g_autoptr(GBytes) message = tkms_test_bytes_str("firmware 2.1");
		g_autoptr(GBytes) other = tkms_test_bytes_str("firmware 2.2");
		g_autoptr(GBytes) digest = sha256(message);
		g_autoptr(GBytes) other_digest = sha256(other);
		g_autoptr(GBytes) sig = NULL;
		g_autoptr(GBytes) async_sig = NULL;
		g_autoptr(GBytes) short_digest = tkms_test_bytes_truncate(digest, 31);
		g_autoptr(GBytes) refused = NULL;
		g_autoptr(GAsyncResult) res = NULL;
		g_autoptr(GAsyncResult) res2 = NULL;
		g_autoptr(GError) error = NULL;
		gboolean valid = FALSE;

		made = tkms_client_generate_key_sync(client, name, types[t], NULL, NULL, &error);
		g_assert_no_error(error);
		sig = tkms_client_sign_digest_sync(client, name, digest, NULL, &error);
		g_assert_no_error(error);
		/* the signature of the message: Verify over the message accepts it */
		g_assert_true(tkms_client_verify_sync(client, name, message, sig, &valid, NULL,
						      &error));
		g_assert_true(valid);
		g_assert_true(tkms_client_verify_digest_sync(client, name, digest, sig, &valid, NULL,
							     &error));
		g_assert_true(valid);
		g_assert_true(tkms_client_verify_digest_sync(client, name, other_digest, sig, &valid,
							     NULL, &error));
		g_assert_false(valid);

		tkms_client_sign_digest(client, name, digest, NULL, on_result, &res);
		async_sig = tkms_client_sign_digest_finish(client, wait_for(&res), &error);
		g_assert_no_error(error);
		tkms_client_verify_digest(client, name, digest, async_sig, NULL, on_result, &res2);
		valid = FALSE;
		g_assert_true(
			tkms_client_verify_digest_finish(client, wait_for(&res2), &valid, &error));
		g_assert_no_error(error);
		g_assert_true(valid);

		refused = tkms_client_sign_digest_sync(client, name, short_digest, NULL, &error);
		g_assert_null(refused);
		g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
	}
}

static TkmsKeyVersionInfo *
version_of(TkmsKeyInfo *info, guint version)
{
	GPtrArray *versions = tkms_key_info_get_versions(info);

	for (guint i = 0; i < versions->len; i++) {
		if (tkms_key_version_info_get_version(g_ptr_array_index(versions, i)) == version)
			return g_ptr_array_index(versions, i);
	}
	g_assert_not_reached();
}

static TkmsKeyInfo *
lookup(TkmsClient *client, const gchar *name)
{
	g_autoptr(GError) error = NULL;
	TkmsKeyInfo *info = tkms_client_lookup_key_sync(client, name, NULL, &error);

	g_assert_no_error(error);
	return info;
}

/* The new members of the key info, parsed from a dictionary as tkmsd sends it. */
static void
test_version_info_members(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKeyInfo) info = NULL;
	g_autoptr(TkmsKeyInfo) bad = NULL;
	TkmsKeyVersionInfo *v1, *v2;
	guint64 uses = 0, destroy_at = 0;

	info = tkms_key_info_new_from_variant(
		g_variant_new_parsed(
			"{'name': <'k'>, 'primary-version': <uint32 2>, "
			"'policy': <{'period': <uint64 86400>, 'max-uses': <uint64 1000>, "
			"'deactivate-after': <uint64 600>, 'destroy-after': <uint64 60>}>, "
			"'next-rotation': <uint64 1790867520>, "
			"'versions': <[{'version': <uint32 1>, 'state': <'destroy-scheduled'>, "
			"'created': <uint64 1790781120>, 'activated': <uint64 1790781121>, "
			"'superseded': <uint64 1790781200>, 'deactivated': <uint64 1790781300>, "
			"'destroy-at': <uint64 1791386100>, 'uses': <uint64 17>}, "
			"{'version': <uint32 2>, 'state': <'active'>, 'created': <uint64 1790781200>, "
			"'public-key': <'-----BEGIN PUBLIC KEY-----'>}]>}"),
		&error);
	g_assert_no_error(error);
	g_assert_cmpuint(tkms_key_info_get_rotation_period(info), ==, 86400);
	g_assert_cmpuint(tkms_key_info_get_max_uses(info), ==, 1000);
	g_assert_cmpuint(tkms_key_info_get_deactivate_after(info), ==, 600);
	g_assert_cmpuint(tkms_key_info_get_destroy_after(info), ==, 60);
	g_assert_cmpuint(tkms_key_info_get_next_rotation(info), ==, 1790867520);
	g_assert_cmpuint(tkms_key_info_get_destroy_at(info), ==, 1791386100);
	g_assert_cmpstr(tkms_key_info_get_state(info), ==, "active");
	v1 = version_of(info, 1);
	g_assert_cmpuint(tkms_key_version_info_get_activated(v1), ==, 1790781121);
	g_assert_cmpuint(tkms_key_version_info_get_superseded(v1), ==, 1790781200);
	g_assert_cmpuint(tkms_key_version_info_get_deactivated(v1), ==, 1790781300);
	g_assert_cmpuint(tkms_key_version_info_get_destroy_at(v1), ==, 1791386100);
	g_assert_cmpuint(tkms_key_version_info_get_destroyed(v1), ==, 0);
	g_assert_null(tkms_key_version_info_get_public_key(v1));
	g_object_get(v1, "uses", &uses, "destroy-at", &destroy_at, NULL);
	g_assert_cmpuint(uses, ==, 17);
	g_assert_cmpuint(destroy_at, ==, 1791386100);
	v2 = version_of(info, 2);
	g_assert_cmpstr(tkms_key_version_info_get_public_key(v2), ==,
			"-----BEGIN PUBLIC KEY-----");
	g_assert_cmpuint(tkms_key_version_info_get_activated(v2), ==, 0);

	/* a member of the wrong type is refused, not read as 0 */
	bad = tkms_key_info_new_from_variant(
		g_variant_new_parsed("{'name': <'k'>, 'versions': <[{'version': <uint32 1>, "
				     "'state': <'active'>, 'created': <uint64 1>, "
				     "'uses': <'many'>}]>}"),
		&error);
	g_assert_null(bad);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
	g_clear_error(&error);
	bad = tkms_key_info_new_from_variant(
		g_variant_new_parsed("{'name': <'k'>, 'policy': <{'period': <uint32 5>}>}"),
		&error);
	g_assert_null(bad);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

/* A password key's members, parsed from a dictionary as tkmsd sends it: "" is none (NULL). */
static void
test_password_info_members(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(TkmsKeyInfo) info = NULL;
	g_autoptr(TkmsKeyInfo) idle = NULL;
	g_autoptr(TkmsKeyInfo) aes = NULL;
	g_autoptr(TkmsKeyInfo) bad = NULL;
	g_autofree gchar *step = NULL;
	g_autofree gchar *hook = NULL;
	g_autofree gchar *stage = NULL;
	guint64 retry = 0;
	guint length = 0;

	info = tkms_key_info_new_from_variant(
		g_variant_new_parsed(
			"{'name': <'db'>, 'type': <'password'>, 'primary-version': <uint32 2>, "
			"'policy': <{'period': <uint64 2592000>, 'hook': <'postgresql'>}>, "
			"'password': <{'length': <uint32 40>, 'charset': <'alnum'>, "
			"'exclude': <'0O'>}>, "
			"'rotation': <{'step': <'test'>, 'version': <uint32 3>, "
			"'started': <uint64 1790781300>}>, "
			"'last-rotation': <{'result': <'failed'>, 'step': <'set'>, "
			"'time': <uint64 1790781200>, 'version': <uint32 2>, "
			"'reason': <'role \"app\" does not exist'>, "
			"'next-retry': <uint64 1790781500>}>, "
			"'versions': <[{'version': <uint32 1>, 'state': <'active'>, "
			"'created': <uint64 1790781100>, 'stage': <'previous'>}, "
			"{'version': <uint32 2>, 'state': <'active'>, 'created': <uint64 1790781150>, "
			"'stage': <'current'>}, "
			"{'version': <uint32 3>, 'state': <'pre-active'>, "
			"'created': <uint64 1790781300>, 'stage': <'pending'>}]>}"),
		&error);
	g_assert_no_error(error);
	g_assert_cmpstr(tkms_key_info_get_rotation_hook(info), ==, "postgresql");
	g_assert_cmpuint(tkms_key_info_get_rotation_period(info), ==, 2592000);
	g_assert_cmpuint(tkms_key_info_get_password_length(info), ==, 40);
	g_assert_cmpstr(tkms_key_info_get_password_charset(info), ==, "alnum");
	g_assert_cmpstr(tkms_key_info_get_password_exclude(info), ==, "0O");
	g_assert_cmpstr(tkms_key_info_get_rotation_step(info), ==, "test");
	g_assert_cmpuint(tkms_key_info_get_rotation_version(info), ==, 3);
	g_assert_cmpuint(tkms_key_info_get_rotation_started(info), ==, 1790781300);
	g_assert_cmpstr(tkms_key_info_get_last_rotation_result(info), ==, "failed");
	g_assert_cmpstr(tkms_key_info_get_last_rotation_step(info), ==, "set");
	g_assert_cmpuint(tkms_key_info_get_last_rotation_time(info), ==, 1790781200);
	g_assert_cmpuint(tkms_key_info_get_last_rotation_version(info), ==, 2);
	g_assert_cmpstr(tkms_key_info_get_last_rotation_reason(info), ==,
			"role \"app\" does not exist");
	g_assert_cmpuint(tkms_key_info_get_last_rotation_next_retry(info), ==, 1790781500);
	g_assert_cmpstr(tkms_key_version_info_get_stage(version_of(info, 1)), ==, "previous");
	g_assert_cmpstr(tkms_key_version_info_get_stage(version_of(info, 2)), ==, "current");
	g_assert_cmpstr(tkms_key_version_info_get_stage(version_of(info, 3)), ==, "pending");
	/* the same as properties, for bindings */
	g_object_get(info, "rotation-step", &step, "rotation-hook", &hook, "password-length",
		     &length, "last-rotation-next-retry", &retry, NULL);
	g_assert_cmpstr(step, ==, "test");
	g_assert_cmpstr(hook, ==, "postgresql");
	g_assert_cmpuint(length, ==, 40);
	g_assert_cmpuint(retry, ==, 1790781500);
	g_object_get(version_of(info, 3), "stage", &stage, NULL);
	g_assert_cmpstr(stage, ==, "pending");

	/* no rotation running, none ended, no hook, nothing excluded */
	idle = tkms_key_info_new_from_variant(
		g_variant_new_parsed("{'name': <'db2'>, 'type': <'password'>, "
				     "'policy': <{'hook': <''>}>, "
				     "'password': <{'length': <uint32 32>, "
				     "'charset': <'alnum-symbols'>, 'exclude': <''>}>}"),
		&error);
	g_assert_no_error(error);
	g_assert_null(tkms_key_info_get_rotation_hook(idle));
	g_assert_cmpstr(tkms_key_info_get_password_exclude(idle), ==, "");
	g_assert_null(tkms_key_info_get_rotation_step(idle));
	g_assert_cmpuint(tkms_key_info_get_rotation_version(idle), ==, 0);
	g_assert_null(tkms_key_info_get_last_rotation_result(idle));
	g_assert_cmpuint(tkms_key_info_get_last_rotation_time(idle), ==, 0);

	/* another type has none of it */
	aes = tkms_key_info_new_from_variant(
		g_variant_new_parsed("{'name': <'k'>, 'type': <'aes-256-gcm'>, 'versions': "
				     "<[{'version': <uint32 1>, 'state': <'active'>, "
				     "'created': <uint64 1>}]>}"),
		&error);
	g_assert_no_error(error);
	g_assert_cmpuint(tkms_key_info_get_password_length(aes), ==, 0);
	g_assert_null(tkms_key_info_get_password_charset(aes));
	g_assert_null(tkms_key_info_get_password_exclude(aes));
	g_assert_null(tkms_key_version_info_get_stage(version_of(aes, 1)));

	/* members of the wrong type are refused, not read as none */
	bad = tkms_key_info_new_from_variant(
		g_variant_new_parsed("{'name': <'k'>, 'rotation': <'set'>}"), &error);
	g_assert_null(bad);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
	g_clear_error(&error);
	bad = tkms_key_info_new_from_variant(
		g_variant_new_parsed("{'name': <'k'>, 'password': <{'length': <uint64 32>}>}"),
		&error);
	g_assert_null(bad);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
	g_clear_error(&error);
	bad = tkms_key_info_new_from_variant(
		g_variant_new_parsed("{'name': <'k'>, 'versions': <[{'version': <uint32 1>, "
				     "'state': <'active'>, 'created': <uint64 1>, "
				     "'stage': <uint32 1>}]>}"),
		&error);
	g_assert_null(bad);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

/* Rotation, roll-back, states, and a ciphertext of the old version still decrypting. */
static void
test_rotate(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *name = tkms_test_key_name("lib-rotate");
	g_autoptr(TkmsKeyInfo) made = NULL;
	g_autoptr(TkmsKeyInfo) info = NULL;
	g_autoptr(GBytes) plain = tkms_test_bytes_str("before the rotation");
	g_autoptr(GBytes) old_ct = NULL;
	g_autoptr(GBytes) back = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GAsyncResult) res2 = NULL;
	g_autoptr(GAsyncResult) res3 = NULL;
	g_autoptr(GError) error = NULL;
	guint version;

	made = tkms_client_generate_key_sync(client, name, "aes-256-gcm", NULL, NULL, &error);
	g_assert_no_error(error);
	old_ct = tkms_client_encrypt_sync(client, name, plain, NULL, NULL, &error);
	g_assert_no_error(error);

	version = tkms_client_rotate_key_sync(client, name, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(version, ==, 2);
	tkms_client_rotate_key(client, name, NULL, on_result, &res);
	version = tkms_client_rotate_key_finish(client, wait_for(&res), &error);
	g_assert_no_error(error);
	g_assert_cmpuint(version, ==, 3);

	info = lookup(client, name);
	g_assert_cmpuint(tkms_key_info_get_primary_version(info), ==, 3);
	g_assert_cmpuint(tkms_key_info_get_versions(info)->len, ==, 3);
	g_assert_cmpuint(tkms_key_version_info_get_superseded(version_of(info, 1)), >, 0);
	g_assert_cmpuint(tkms_key_version_info_get_superseded(version_of(info, 3)), ==, 0);
	g_assert_cmpuint(tkms_key_version_info_get_activated(version_of(info, 3)), >, 0);
	back = tkms_client_decrypt_sync(client, name, old_ct, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(back, plain));

	/* roll back to 2, then deactivate 3: 1's data still decrypts */
	g_assert_true(tkms_client_set_primary_version_sync(client, name, 2, NULL, &error));
	g_assert_no_error(error);
	tkms_client_set_key_version_state(client, name, 3, "deactivated", NULL, on_result, &res2);
	g_assert_true(tkms_client_set_key_version_state_finish(client, wait_for(&res2), &error));
	g_assert_no_error(error);
	g_clear_object(&info);
	info = lookup(client, name);
	g_assert_cmpuint(tkms_key_info_get_primary_version(info), ==, 2);
	g_assert_cmpstr(tkms_key_version_info_get_state(version_of(info, 3)), ==, "deactivated");
	g_assert_cmpuint(tkms_key_version_info_get_deactivated(version_of(info, 3)), >, 0);

	/* the primary cannot leave active; a deactivated version cannot be primary */
	g_assert_false(
		tkms_client_set_key_version_state_sync(client, name, 2, "suspended", NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);
	tkms_client_set_primary_version(client, name, 3, NULL, on_result, &res3);
	g_assert_false(tkms_client_set_primary_version_finish(client, wait_for(&res3), &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);
	g_assert_cmpuint(tkms_client_rotate_key_sync(client, "lib-no-such-key", NULL, &error), ==,
			 0);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND);
}

static void
test_rotation_policy(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *name = tkms_test_key_name("lib-policy");
	g_autoptr(TkmsKeyInfo) made = NULL;
	g_autoptr(TkmsKeyInfo) info = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	guint64 before = (guint64)(g_get_real_time() / G_USEC_PER_SEC);

	made = tkms_client_generate_key_sync(client, name, "hmac-sha256", NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(tkms_key_info_get_next_rotation(made), ==, 0);

	g_assert_true(tkms_client_set_rotation_policy_sync(client, name, 90 * 86400, 0, 3600,
							   86400, NULL, &error));
	g_assert_no_error(error);
	info = lookup(client, name);
	g_assert_cmpuint(tkms_key_info_get_rotation_period(info), ==, 90 * 86400);
	g_assert_cmpuint(tkms_key_info_get_max_uses(info), ==, 0);
	g_assert_cmpuint(tkms_key_info_get_deactivate_after(info), ==, 3600);
	g_assert_cmpuint(tkms_key_info_get_destroy_after(info), ==, 86400);
	g_assert_cmpuint(tkms_key_info_get_next_rotation(info), >=, before + 90 * 86400);
	g_assert_cmpuint(tkms_key_info_get_next_rotation(info), <=, before + 90 * 86400 + 60);

	/* all zero removes the policy */
	tkms_client_set_rotation_policy(client, name, 0, 0, 0, 0, NULL, on_result, &res);
	g_assert_true(tkms_client_set_rotation_policy_finish(client, wait_for(&res), &error));
	g_assert_no_error(error);
	g_clear_object(&info);
	info = lookup(client, name);
	g_assert_cmpuint(tkms_key_info_get_rotation_period(info), ==, 0);
	g_assert_cmpuint(tkms_key_info_get_destroy_after(info), ==, 0);
	g_assert_cmpuint(tkms_key_info_get_next_rotation(info), ==, 0);
}

/* DestroyKeyVersion and DestroyKey schedule; CancelKeyDestruction restores. */
static void
test_scheduled_destruction(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *name = tkms_test_key_name("lib-destroy");
	g_autoptr(TkmsKeyInfo) made = NULL;
	g_autoptr(TkmsKeyInfo) info = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GAsyncResult) res2 = NULL;
	g_autoptr(GError) error = NULL;
	guint64 now = (guint64)(g_get_real_time() / G_USEC_PER_SEC);
	TkmsKeyVersionInfo *v1;

	made = tkms_client_generate_key_sync(client, name, "ecdsa-p256", NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(tkms_client_rotate_key_sync(client, name, NULL, &error), ==, 2);
	g_assert_no_error(error);

	/* not the primary */
	g_assert_false(tkms_client_destroy_key_version_sync(client, name, 2, NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_KEY_STATE);
	g_clear_error(&error);
	tkms_client_destroy_key_version(client, name, 1, NULL, on_result, &res);
	g_assert_true(tkms_client_destroy_key_version_finish(client, wait_for(&res), &error));
	g_assert_no_error(error);
	info = lookup(client, name);
	v1 = version_of(info, 1);
	g_assert_cmpstr(tkms_key_version_info_get_state(v1), ==, "destroy-scheduled");
	/* the test daemon's waiting period is the default, 7 days */
	g_assert_cmpuint(tkms_key_version_info_get_destroy_at(v1), >=, now + 604800);
	g_assert_cmpuint(tkms_key_info_get_destroy_at(info), ==,
			 tkms_key_version_info_get_destroy_at(v1));
	g_assert_nonnull(tkms_key_version_info_get_public_key(version_of(info, 2)));

	tkms_client_cancel_key_destruction(client, name, 1, NULL, on_result, &res2);
	g_assert_true(tkms_client_cancel_key_destruction_finish(client, wait_for(&res2), &error));
	g_assert_no_error(error);
	g_clear_object(&info);
	info = lookup(client, name);
	g_assert_cmpstr(tkms_key_version_info_get_state(version_of(info, 1)), ==, "active");
	g_assert_cmpuint(tkms_key_info_get_destroy_at(info), ==, 0);

	/* the whole key, then all of it back with version 0 */
	g_assert_true(tkms_client_destroy_key_sync(client, name, NULL, &error));
	g_clear_object(&info);
	info = lookup(client, name);
	g_assert_cmpstr(tkms_key_info_get_state(info), ==, "destroy-scheduled");
	g_assert_cmpuint(tkms_key_info_get_destroy_at(info), >=, now + 604800);
	g_assert_true(tkms_client_cancel_key_destruction_sync(client, name, 0, NULL, &error));
	g_assert_no_error(error);
	g_clear_object(&info);
	info = lookup(client, name);
	g_assert_cmpstr(tkms_key_info_get_state(info), ==, "active");
	g_assert_cmpstr(tkms_key_version_info_get_state(version_of(info, 1)), ==, "active");
	g_assert_false(tkms_client_cancel_key_destruction_sync(client, name, 0, NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_KEY_STATE);
}

static gboolean
bytes_equal_str(GBytes *b, const gchar *s)
{
	gsize len = 0;
	const gchar *data = g_bytes_get_data(b, &len);

	return len == strlen(s) && memcmp(data, s, len) == 0;
}

/* A password key's secrets: generated as asked, imported, read at each stage, in both forms. */
static void
test_password_secrets(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *name = tkms_test_key_name("lib-password");
	g_autofree gchar *aes = tkms_test_key_name("lib-password-aes");
	g_autoptr(TkmsKeyInfo) made = NULL;
	g_autoptr(TkmsKeyInfo) made_aes = NULL;
	g_autoptr(TkmsKeyInfo) info = NULL;
	g_autoptr(GBytes) first = NULL;
	g_autoptr(GBytes) again = NULL;
	g_autoptr(GBytes) current = NULL;
	g_autoptr(GBytes) previous = NULL;
	g_autoptr(GBytes) none = NULL;
	g_autoptr(GBytes) imported = tkms_test_bytes_str("an existing password, with spaces");
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GAsyncResult) res2 = NULL;
	g_autoptr(GError) error = NULL;
	GVariantBuilder options;
	const gchar *p;
	gsize len = 0;

	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&options, "{sv}", "length", g_variant_new_uint32(24));
	g_variant_builder_add(&options, "{sv}", "charset", g_variant_new_string("hex"));
	g_variant_builder_add(&options, "{sv}", "exclude", g_variant_new_string("f"));
	made = tkms_client_generate_key_sync(client, name, "password",
					     g_variant_builder_end(&options), NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(tkms_key_info_get_key_type(made), ==, "password");
	g_assert_cmpstr(tkms_key_info_get_protection(made), ==, "sealed");
	g_assert_cmpuint(tkms_key_info_get_password_length(made), ==, 24);
	g_assert_cmpstr(tkms_key_info_get_password_charset(made), ==, "hex");
	g_assert_cmpstr(tkms_key_info_get_password_exclude(made), ==, "f");
	g_assert_cmpstr(tkms_key_version_info_get_stage(version_of(made, 1)), ==, "current");

	/* NULL is the current version; 24 hex digits without f */
	first = tkms_client_get_secret_sync(client, name, NULL, NULL, &error);
	g_assert_no_error(error);
	p = g_bytes_get_data(first, &len);
	g_assert_cmpuint(len, ==, 24);
	for (gsize i = 0; i < len; i++)
		g_assert_true(g_ascii_isxdigit(p[i]) && !g_ascii_isupper(p[i]) && p[i] != 'f');
	tkms_client_get_secret(client, name, "current", NULL, on_result, &res);
	again = tkms_client_get_secret_finish(client, wait_for(&res), &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(again, first));

	/* imported: the new current, the generated one is the previous */
	tkms_client_import_secret(client, name, imported, NULL, on_result, &res2);
	g_assert_cmpuint(tkms_client_import_secret_finish(client, wait_for(&res2), &error), ==, 2);
	g_assert_no_error(error);
	current = tkms_client_get_secret_sync(client, name, "", NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(current, imported));
	previous = tkms_client_get_secret_sync(client, name, "previous", NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(previous, first));
	info = lookup(client, name);
	g_assert_cmpuint(tkms_key_info_get_primary_version(info), ==, 2);
	g_assert_cmpstr(tkms_key_version_info_get_stage(version_of(info, 1)), ==, "previous");
	g_assert_cmpstr(tkms_key_version_info_get_stage(version_of(info, 2)), ==, "current");
	g_assert_true(bytes_equal_str(imported, "an existing password, with spaces"));

	/* no rotation runs: no pending version */
	none = tkms_client_get_secret_sync(client, name, "pending", NULL, &error);
	g_assert_null(none);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* other key types have no secret to give or take */
	made_aes = tkms_client_generate_key_sync(client, aes, "aes-256-gcm", NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_null(tkms_client_get_secret_sync(client, aes, NULL, NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_cmpuint(tkms_client_import_secret_sync(client, aes, imported, NULL, &error), ==, 0);
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_null(tkms_client_get_secret_sync(client, "lib-no-such-key", NULL, NULL, &error));
	g_assert_error(error, TKMS_ERROR, TKMS_ERROR_NOT_FOUND);
}

/* A rotation without a hook switches at once: the pending version becomes current, the
 * current previous; the hook of the policy goes through set_rotation_policy_full. */
static void
test_password_rotation(void)
{
	TkmsClient *client = tkms_test_env_get_client(env);
	g_autofree gchar *name = tkms_test_key_name("lib-password-rotate");
	g_autoptr(TkmsKeyInfo) made = NULL;
	g_autoptr(TkmsKeyInfo) info = NULL;
	g_autoptr(GBytes) before = NULL;
	g_autoptr(GBytes) after = NULL;
	g_autoptr(GBytes) previous = NULL;
	g_autoptr(GAsyncResult) res = NULL;
	g_autoptr(GError) error = NULL;
	guint version;

	made = tkms_client_generate_key_sync(client, name, "password", NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(tkms_key_info_get_password_length(made), ==, 32);
	g_assert_cmpstr(tkms_key_info_get_password_charset(made), ==, "alnum-symbols");
	g_assert_null(tkms_key_info_get_last_rotation_result(made));
	before = tkms_client_get_secret_sync(client, name, NULL, NULL, &error);
	g_assert_no_error(error);

	version = tkms_client_rotate_key_sync(client, name, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(version, ==, 2);
	/* without a hook, done by the time it is looked at */
	info = lookup(client, name);
	g_assert_null(tkms_key_info_get_rotation_step(info));
	g_assert_cmpstr(tkms_key_info_get_last_rotation_result(info), ==, "ok");
	g_assert_cmpuint(tkms_key_info_get_last_rotation_version(info), ==, 2);
	g_assert_cmpuint(tkms_key_info_get_last_rotation_time(info), >, 0);
	g_assert_cmpstr(tkms_key_version_info_get_stage(version_of(info, 2)), ==, "current");
	g_assert_cmpstr(tkms_key_version_info_get_stage(version_of(info, 1)), ==, "previous");
	after = tkms_client_get_secret_sync(client, name, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(after), ==, 32);
	g_assert_false(g_bytes_equal(after, before));
	previous = tkms_client_get_secret_sync(client, name, "previous", NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(previous, before));

	/* a hook tkmsd does not have is refused, and the policy stays as it was */
	g_assert_false(tkms_client_set_rotation_policy_full_sync(
		client, name, g_variant_new_parsed("{'hook': <'lib-no-such-hook'>}"), NULL,
		&error));
	g_assert_nonnull(error);
	g_assert_true(error->domain == TKMS_ERROR);
	g_clear_error(&error);
	tkms_client_set_rotation_policy_full(
		client, name, g_variant_new_parsed("{'period': <uint64 86400>, 'hook': <''>}"),
		NULL, on_result, &res);
	g_assert_true(tkms_client_set_rotation_policy_full_finish(client, wait_for(&res), &error));
	g_assert_no_error(error);
	g_clear_object(&info);
	info = lookup(client, name);
	g_assert_cmpuint(tkms_key_info_get_rotation_period(info), ==, 86400);
	g_assert_null(tkms_key_info_get_rotation_hook(info));
	g_assert_true(tkms_client_set_rotation_policy_full_sync(client, name, NULL, NULL, &error));
	g_assert_no_error(error);
	g_clear_object(&info);
	info = lookup(client, name);
	g_assert_cmpuint(tkms_key_info_get_rotation_period(info), ==, 0);
}

static void
test_python(void)
{
	const gchar *script = g_getenv("TKMS_TEST_LIBTKMS_PY");
	const gchar *argv[] = {"/usr/bin/python3", script, NULL};
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *out = NULL;

	if (script == NULL || !g_file_test(argv[0], G_FILE_TEST_IS_EXECUTABLE) ||
	    g_getenv("GI_TYPELIB_PATH") == NULL) {
		g_test_skip("no python3, script or typelib (introspection disabled?)");
		return;
	}
	launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
					     G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_subprocess_launcher_setenv(launcher, "TKMS_TEST_BUS_ADDRESS",
				     tkms_test_env_get_bus_address(env), TRUE);
	proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(proc, NULL, NULL, &out, NULL, &error);
	g_assert_no_error(error);
	g_test_message("python: %s", out);
	if (g_subprocess_get_exit_status(proc) == 77) {
		g_test_skip(out);
		return;
	}
	g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, 0);
	g_assert_true(g_str_has_suffix(out, "ok\n"));
}

int
main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	env = tkms_test_env_new_or_abort(NULL);

	g_test_add_func("/libtkms/key-info/from-variant", test_key_info_from_variant);
	g_test_add_func("/libtkms/key-info/generate-lookup", test_generate_lookup);
	g_test_add_func("/libtkms/pages", test_pages);
	g_test_add_func("/libtkms/data-key", test_data_key);
	g_test_add_func("/libtkms/re-encrypt", test_re_encrypt);
	g_test_add_func("/libtkms/sign-digest", test_sign_digest);
	g_test_add_func("/libtkms/key-info/versions", test_version_info_members);
	g_test_add_func("/libtkms/key-info/password", test_password_info_members);
	g_test_add_func("/libtkms/lifecycle/rotate", test_rotate);
	g_test_add_func("/libtkms/lifecycle/policy", test_rotation_policy);
	g_test_add_func("/libtkms/lifecycle/destroy", test_scheduled_destruction);
	g_test_add_func("/libtkms/password/secrets", test_password_secrets);
	g_test_add_func("/libtkms/password/rotation", test_password_rotation);
	g_test_add_func("/libtkms/python", test_python);

	ret = g_test_run();
	tkms_test_env_free(env);
	return ret;
}
