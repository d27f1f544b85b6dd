/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-audit"

#include "audit-chain.h"

#include <json-glib/json-glib.h>
#include <openssl/evp.h>
#include <string.h>

#define HASH_MEMBER ",\"hash\":\""

gchar *
tkms_audit_chain_hash(const gchar *body, gsize body_len)
{
	guint8 md[32];
	unsigned int md_len = sizeof(md);
	gchar *hex = g_malloc(TKMS_AUDIT_HASH_HEX_LEN + 1);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, body, body_len);
	EVP_DigestUpdate(ctx, "}", 1);
	EVP_DigestFinal_ex(ctx, md, &md_len);
	EVP_MD_CTX_free(ctx);
	for (guint i = 0; i < sizeof(md); i++)
		g_snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return hex;
}

static gboolean
verify_record(const gchar *line, guint64 expect_seq, const gchar *prev_hash, gchar **out_hash,
	      GError **error)
{
	gsize len = strlen(line);
	gsize suffix = strlen(HASH_MEMBER) + TKMS_AUDIT_HASH_HEX_LEN + 2;
	g_autofree gchar *computed = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *obj;
	const gchar *prev;

	if (len < suffix || strncmp(line + len - suffix, HASH_MEMBER, strlen(HASH_MEMBER)) != 0 ||
	    strcmp(line + len - 2, "\"}") != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "record %" G_GUINT64_FORMAT " has no hash", expect_seq);
		return FALSE;
	}
	computed = tkms_audit_chain_hash(line, len - suffix);
	if (strncmp(computed, line + len - suffix + strlen(HASH_MEMBER), TKMS_AUDIT_HASH_HEX_LEN)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "record %" G_GUINT64_FORMAT " was modified (hash mismatch)", expect_seq);
		return FALSE;
	}
	if (!json_parser_load_from_data(parser, line, len, NULL) ||
	    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "record %" G_GUINT64_FORMAT " is not a JSON object", expect_seq);
		return FALSE;
	}
	obj = json_node_get_object(json_parser_get_root(parser));
	if (!json_object_has_member(obj, "seq") ||
	    (guint64)json_object_get_int_member(obj, "seq") != expect_seq) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "record %" G_GUINT64_FORMAT " is out of sequence (records removed or "
			    "inserted)",
			    expect_seq);
		return FALSE;
	}
	prev = json_object_has_member(obj, "prev") ? json_object_get_string_member(obj, "prev")
						    : NULL;
	if (g_strcmp0(prev, prev_hash) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "record %" G_GUINT64_FORMAT " does not chain to the previous record",
			    expect_seq);
		return FALSE;
	}
	*out_hash = g_steal_pointer(&computed);
	return TRUE;
}

gboolean
tkms_audit_chain_verify_file(const gchar *log_path, const gchar *head_path, guint64 *n_records,
			     GError **error)
{
	g_autofree gchar *contents = NULL;
	g_autofree gchar *head = NULL;
	g_autofree gchar *prev = g_strdup(TKMS_AUDIT_ZERO_HASH);
	g_auto(GStrv) lines = NULL;
	guint64 seq = 0, head_seq = 0;
	const gchar *head_hash = NULL;

	/* the head before the log: tkmsd may append and commit while we read, which can only
	 * make the log longer than the head we hold, never shorter */
	if (head_path != NULL && g_file_get_contents(head_path, &head, NULL, NULL)) {
		const gchar *sp = strchr(head, ' ');
		head_seq = g_ascii_strtoull(head, NULL, 10);
		head_hash = sp != NULL ? sp + 1 : "";
	}
	if (!g_file_get_contents(log_path, &contents, NULL, error))
		return FALSE;
	lines = g_strsplit(contents, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		gchar *hash = NULL;
		if (lines[i][0] == '\0') {
			if (lines[i + 1] == NULL)
				break;
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "empty line after record %" G_GUINT64_FORMAT, seq);
			return FALSE;
		}
		if (!verify_record(lines[i], seq, prev, &hash, error))
			return FALSE;
		if (head_hash != NULL && seq == head_seq &&
		    strncmp(head_hash, hash, TKMS_AUDIT_HASH_HEX_LEN) != 0) {
			g_free(hash);
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    "record %" G_GUINT64_FORMAT " does not match the committed head",
				    seq);
			return FALSE;
		}
		g_free(prev);
		prev = hash;
		seq++;
	}
	if (head_hash != NULL && (seq == 0 || head_seq > seq - 1)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			    "log ends before committed record %" G_GUINT64_FORMAT
			    " (records cut from the end)",
			    head_seq);
		return FALSE;
	}
	if (n_records != NULL)
		*n_records = seq;
	return TRUE;
}
