/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

/* encrypt, decrypt, sign and hmac with --batch: one base64 item per input line, one base64
 * result per output line, in order. The lines go to tkmsd in batches (EncryptBatch and so on)
 * of at most TKMS_BATCH_ITEMS items and TKMSCTL_SINGLE_MAX bytes, the daemon's default
 * MaxPayload; a batch that a lower MaxPayload (or a key's max-uses) refuses is sent again in
 * halves. Input is read and output written batch by batch, so any number of lines takes
 * constant memory. */

#include <stdio.h>
#include <string.h>

#include "tkmsctl.h"

/* the daemon's limit of items per batch (D-Bus API) */
#define TKMS_BATCH_ITEMS 1024
/* a ciphertext's framing, which the daemon does not count against MaxPayload */
#define CT_OVERHEAD 40

typedef struct {
	guint8 *data;
	gsize len;
	gsize cap;
} Line;

typedef struct {
	Tkmsctl *ctl;
	TkmsctlBatchOp op;
	const gchar *name;
	GBytes *context;
	TkmsctlInput *in;
	TkmsctlOutput *out;
	Line line; /* the line being read */
	guint lineno;
	gboolean eof;
	GPtrArray *items; /* GBytes, wiped when freed */
	GArray *linenos;  /* guint: the input line of each item */
	gsize bytes;	  /* what the items count against MaxPayload */
} TkmsctlBatch;

static void
line_clear(Line *line)
{
	if (line->data != NULL)
		explicit_bzero(line->data, line->cap);
	g_clear_pointer(&line->data, g_free);
	line->len = line->cap = 0;
}

static void
line_append(Line *line, const guint8 *p, gsize n)
{
	if (line->len + n > line->cap) {
		gsize len = line->len;
		gsize cap = MAX(line->cap * 2, len + n);
		guint8 *data = g_malloc(cap);

		/* copy and wipe: no realloc leaving a copy of plaintext on the heap */
		if (len > 0)
			memcpy(data, line->data, len);
		line_clear(line);
		line->data = data;
		line->cap = cap;
		line->len = len;
	}
	memcpy(line->data + line->len, p, n);
	line->len += n;
}

typedef struct {
	gsize len;
	guint8 data[];
} WipedBuffer;

static void
wiped_buffer_free(gpointer user_data)
{
	WipedBuffer *buf = user_data;

	explicit_bzero(buf->data, buf->len);
	g_free(buf);
}

/* A line of strict base64 (nothing but the alphabet, '=' only at its end, a multiple of four
 * characters; a trailing carriage return is allowed) as bytes wiped when freed; NULL if it is
 * not base64. */
static GBytes *
decode_line(const gchar *text, gsize len)
{
	WipedBuffer *buf;
	gsize pad = 0, out_len;
	gint state = 0;
	guint save = 0;

	if (len > 0 && text[len - 1] == '\r')
		len--;
	if (len % 4 != 0)
		return NULL;
	for (gsize i = 0; i < len; i++) {
		gchar c = text[i];

		if (c == '=' && i + 2 >= len)
			pad++;
		else if (pad > 0 || !(g_ascii_isalnum(c) || c == '+' || c == '/'))
			return NULL;
	}
	buf = g_malloc(sizeof(WipedBuffer) + len / 4 * 3 + 3);
	out_len = g_base64_decode_step(text, len, buf->data, &state, &save);
	buf->len = out_len;
	return g_bytes_new_with_free_func(buf->data, out_len, wiped_buffer_free, buf);
}

/* The next line of the input into batch->line; FALSE at the end (or with error set). */
static gboolean
read_line(TkmsctlBatch *batch, GError **error)
{
	guint8 block[4096];

	batch->line.len = 0;
	while (!batch->eof) {
		gssize n = tkmsctl_input_read(batch->in, block, sizeof(block), error);
		const guint8 *nl;

		if (n < 0)
			return FALSE;
		if (n == 0) {
			batch->eof = TRUE;
			break;
		}
		nl = memchr(block, '\n', (gsize)n);
		if (nl != NULL) {
			gsize head = (gsize)(nl - block);

			line_append(&batch->line, block, head);
			tkmsctl_input_unread(batch->in, nl + 1, (gsize)n - head - 1);
			explicit_bzero(block, sizeof(block));
			batch->lineno++;
			return TRUE;
		}
		line_append(&batch->line, block, (gsize)n);
		explicit_bzero(block, sizeof(block));
		if (batch->line.len > TKMSCTL_MAX_INPUT) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    _("line %u of %s is longer than %d bytes"), batch->lineno + 1,
				    tkmsctl_input_get_name(batch->in), TKMSCTL_MAX_INPUT);
			return FALSE;
		}
	}
	/* the last line may lack its newline; an empty rest is no line */
	if (batch->line.len == 0)
		return FALSE;
	batch->lineno++;
	return TRUE;
}

static gsize
payload_of(TkmsctlBatch *batch, GBytes *item)
{
	gsize len = g_bytes_get_size(item);

	return batch->op == TKMSCTL_BATCH_DECRYPT ? len - MIN(len, CT_OVERHEAD) : len;
}

/* The daemon's "item N: " becomes the input line: "line L: ". */
static GError *
error_at_line(TkmsctlBatch *batch, guint first, GError *error)
{
	guint item;
	gint end = 0;
	GError *out;

	if (error->domain != TKMS_ERROR ||
	    sscanf(error->message, "item %u: %n", &item, &end) != 1 || end == 0 ||
	    first + item >= batch->linenos->len)
		return error;
	out = g_error_new(error->domain, error->code, _("line %u: %s"),
			  g_array_index(batch->linenos, guint, first + item), error->message + end);
	g_error_free(error);
	return out;
}

static GPtrArray *
call_batch(TkmsctlBatch *batch, GPtrArray *items, GError **error)
{
	TkmsClient *client = batch->ctl->client;

	switch (batch->op) {
	case TKMSCTL_BATCH_ENCRYPT:
		return tkms_client_encrypt_batch_sync(client, batch->name, items, batch->context,
						      NULL, error);
	case TKMSCTL_BATCH_DECRYPT:
		return tkms_client_decrypt_batch_sync(client, batch->name, items, batch->context,
						      NULL, error);
	case TKMSCTL_BATCH_SIGN:
		return tkms_client_sign_batch_sync(client, batch->name, items, NULL, error);
	case TKMSCTL_BATCH_HMAC:
		return tkms_client_hmac_batch_sync(client, batch->name, items, NULL, error);
	}
	g_assert_not_reached();
}

static gboolean
write_results(TkmsctlBatch *batch, GPtrArray *results, GError **error)
{
	for (guint i = 0; i < results->len; i++) {
		gsize len;
		const guint8 *p = g_bytes_get_data(g_ptr_array_index(results, i), &len);
		g_autofree gchar *encoded = g_base64_encode(p, len);
		g_autofree gchar *text = NULL;
		gboolean ok;

		text = batch->ctl->json ? g_strdup_printf("{\"base64\":\"%s\"}\n", encoded)
					: g_strconcat(encoded, "\n", NULL);
		ok = tkmsctl_output_write(batch->out, text, strlen(text), error);
		/* a result may be plaintext or a MAC */
		explicit_bzero(encoded, strlen(encoded));
		explicit_bzero(text, strlen(text));
		if (!ok)
			return FALSE;
	}
	return TRUE;
}

/* Items [first, first + n) of the items read: one call, or, refused as too large, two
 * halves. */
static gboolean
send_items(TkmsctlBatch *batch, guint first, guint n, GError **error)
{
	g_autoptr(GPtrArray) items = g_ptr_array_new_full(n, (GDestroyNotify)g_bytes_unref);
	g_autoptr(GPtrArray) results = NULL;
	GError *local = NULL;

	for (guint i = 0; i < n; i++)
		g_ptr_array_add(items, g_bytes_ref(g_ptr_array_index(batch->items, first + i)));
	results = call_batch(batch, items, &local);
	if (results == NULL && n > 1 &&
	    g_error_matches(local, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED)) {
		g_clear_error(&local);
		return send_items(batch, first, n / 2, error) &&
		       send_items(batch, first + n / 2, n - n / 2, error);
	}
	if (results == NULL) {
		g_propagate_error(error, error_at_line(batch, first, local));
		return FALSE;
	}
	return write_results(batch, results, error);
}

static gboolean
flush_items(TkmsctlBatch *batch, GError **error)
{
	gboolean ok = batch->items->len == 0 || send_items(batch, 0, batch->items->len, error);

	g_ptr_array_set_size(batch->items, 0);
	g_array_set_size(batch->linenos, 0);
	batch->bytes = 0;
	return ok;
}

static void
batch_clear(TkmsctlBatch *batch)
{
	line_clear(&batch->line);
	g_clear_pointer(&batch->items, g_ptr_array_unref);
	g_clear_pointer(&batch->linenos, g_array_unref);
}

gboolean
tkmsctl_batch_run(Tkmsctl *ctl, TkmsctlBatchOp op, const gchar *name, GBytes *context,
		  TkmsctlInput *in, TkmsctlOutput *out, GError **error)
{
	TkmsctlBatch batch = {
		.ctl = ctl,
		.op = op,
		.name = name,
		.context = context,
		.in = in,
		.out = out,
		.items = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref),
		.linenos = g_array_new(FALSE, FALSE, sizeof(guint)),
	};
	GError *local = NULL;
	gboolean ok = TRUE;

	while (ok && read_line(&batch, &local)) {
		g_autoptr(GBytes) item =
			decode_line((const gchar *)batch.line.data, batch.line.len);
		gsize size;

		if (item == NULL) {
			g_set_error(&local, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    _("line %u of %s is not base64"), batch.lineno,
				    tkmsctl_input_get_name(in));
			ok = FALSE;
			break;
		}
		size = payload_of(&batch, item);
		/* the next item would not fit: send what is gathered first */
		if (batch.items->len == TKMS_BATCH_ITEMS ||
		    (batch.items->len > 0 && batch.bytes + size > TKMSCTL_SINGLE_MAX))
			ok = flush_items(&batch, &local);
		g_ptr_array_add(batch.items, g_steal_pointer(&item));
		g_array_append_val(batch.linenos, batch.lineno);
		batch.bytes += size;
	}
	if (ok && local == NULL)
		ok = flush_items(&batch, &local);
	batch_clear(&batch);
	if (local != NULL) {
		g_propagate_error(error, local);
		return FALSE;
	}
	return ok;
}
