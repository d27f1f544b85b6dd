/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tkmsctl.h"

/* The stream format (docs/stream-format.md): envelope encryption for inputs larger than one
 * Encrypt call may take. One GenerateDataKey, then AES-256-GCM here, chunk by chunk, each
 * chunk bound to the header, its index and whether it is the last, so that a changed header,
 * chunks dropped, swapped, repeated or cut off, and bytes appended all fail to authenticate.
 * Memory use is one chunk whatever the input's size. */

#define FORMAT_VERSION 1
#define ALGORITHM_AES_256_GCM 1
#define FIXED_HEADER_LEN 22
#define PREFIX_LEN 8
#define TAG_LEN 16
#define KEY_LEN 32
#define MIN_CHUNK (1u << 10)
#define MAX_CHUNK (16u << 20)
/* Encrypt's format 1 of a 32-byte key is 72 bytes; room for a later format, no more */
#define MAX_WRAPPED 1024
#define AAD_LABEL "tkms-stream-v1"

gboolean
tkmsctl_stream_has_magic(const void *data, gsize len)
{
	return len >= 4 && memcmp(data, TKMSCTL_STREAM_MAGIC, 4) == 0;
}

/* A line on stderr while a long stream runs, only for a person at a terminal. */
typedef struct {
	gboolean enabled;
	const gchar *verb;
	goffset total;
	gint64 start;
	gint64 last;
	gboolean shown;
} Progress;

static void
progress_init(Progress *p, Tkmsctl *ctl, const gchar *verb, goffset total)
{
	p->enabled = !ctl->json && isatty(STDERR_FILENO);
	p->verb = verb;
	p->total = total;
	p->start = p->last = g_get_monotonic_time();
	p->shown = FALSE;
}

static void
progress_update(Progress *p, guint64 done)
{
	gint64 now;

	if (!p->enabled)
		return;
	now = g_get_monotonic_time();
	/* long inputs only, and a few updates a second at most */
	if (now - p->start < G_USEC_PER_SEC || now - p->last < G_USEC_PER_SEC / 5)
		return;
	p->last = now;
	p->shown = TRUE;
	if (p->total > 0)
		g_printerr("\r%s: %" G_GUINT64_FORMAT " MiB of %" G_GUINT64_FORMAT " MiB (%d%%)",
			   p->verb, done >> 20, (guint64)p->total >> 20,
			   (int)(done * 100 / (guint64)p->total));
	else
		g_printerr("\r%s: %" G_GUINT64_FORMAT " MiB", p->verb, done >> 20);
}

static void
progress_end(Progress *p)
{
	if (p->shown)
		g_printerr("\r\033[K");
}

static void
store_be32(guint8 *p, guint32 v)
{
	p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

static guint32
load_be32(const guint8 *p)
{
	return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

/* What every chunk shares: the key, the nonce prefix and the header's digest. */
typedef struct {
	EVP_CIPHER_CTX *ctx;
	guint8 prefix[PREFIX_LEN];
	guint8 header_digest[32];
	guint32 chunk_size;
} Chunker;

static void
chunker_clear(Chunker *c)
{
	/* frees the key schedule wiped */
	g_clear_pointer(&c->ctx, EVP_CIPHER_CTX_free);
}

static gboolean
chunker_init(Chunker *c, gboolean encrypt, guint8 key[KEY_LEN], const guint8 *header,
	     gsize header_len, GError **error)
{
	unsigned int n = 0;
	gboolean ok;

	c->ctx = EVP_CIPHER_CTX_new();
	ok = c->ctx != NULL &&
	     EVP_Digest(header, header_len, c->header_digest, &n, EVP_sha256(), NULL) == 1 &&
	     EVP_CipherInit_ex(c->ctx, EVP_aes_256_gcm(), NULL, key, NULL, encrypt) == 1;
	OPENSSL_cleanse(key, KEY_LEN);
	if (!ok) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    _("cannot set up AES-256-GCM (OpenSSL)"));
		return FALSE;
	}
	return TRUE;
}

/* One chunk in place: nonce = prefix | index u32; AAD = label 0x00 | SHA-256(header) |
 * index u64 | final u8. Decrypting, FALSE means it does not authenticate. */
static gboolean
chunker_run(Chunker *c, gboolean encrypt, guint32 index, gboolean final, guint8 *data,
	    gsize len, guint8 tag[TAG_LEN])
{
	guint8 nonce[PREFIX_LEN + 4];
	guint8 aad[sizeof(AAD_LABEL) + 32 + 8 + 1];
	guint8 *a = aad;
	int n = 0;

	memcpy(nonce, c->prefix, PREFIX_LEN);
	store_be32(nonce + PREFIX_LEN, index);
	memcpy(a, AAD_LABEL, sizeof(AAD_LABEL)); /* with its NUL */
	a += sizeof(AAD_LABEL);
	memcpy(a, c->header_digest, 32);
	a += 32;
	store_be32(a, 0);
	store_be32(a + 4, index);
	a[8] = final ? 1 : 0;

	if (EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, nonce, encrypt) != 1 ||
	    EVP_CipherUpdate(c->ctx, NULL, &n, aad, sizeof(aad)) != 1 ||
	    (len > 0 && EVP_CipherUpdate(c->ctx, data, &n, data, (int)len) != 1))
		return FALSE;
	if (encrypt)
		return EVP_CipherFinal_ex(c->ctx, data + len, &n) == 1 &&
		       EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
	return EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1 &&
	       EVP_CipherFinal_ex(c->ctx, data + len, &n) == 1;
}

/* The data key from the reply into @key; the reply's copy is wiped (it is ours alone). */
static gboolean
take_key(GBytes *bytes, guint8 key[KEY_LEN], GError **error)
{
	gsize len = 0;
	const guint8 *p = g_bytes_get_data(bytes, &len);

	if (len != KEY_LEN) {
		if (p != NULL)
			OPENSSL_cleanse((gpointer)p, len);
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE,
			    _("the data key in the stream header is not an AES-256 key"));
		return FALSE;
	}
	memcpy(key, p, KEY_LEN);
	OPENSSL_cleanse((gpointer)p, len);
	return TRUE;
}

/* The context the stream's data key is wrapped under: "tkms-stream-v1" 0 | the caller's
 * context. Without this prefix an ordinary Encrypt ciphertext of 32 known bytes, made with the
 * same key and context, would pass as a stream's wrapped key, and whoever knew those bytes
 * could write a stream that decrypts cleanly to anything. */
static GBytes *
stream_key_context(GBytes *context)
{
	static const gchar label[] = "tkms-stream-v1";
	GByteArray *ctx = g_byte_array_new();
	gsize len = 0;
	const guint8 *p = context != NULL ? g_bytes_get_data(context, &len) : NULL;

	g_byte_array_append(ctx, (const guint8 *)label, sizeof(label));
	if (len > 0)
		g_byte_array_append(ctx, p, len);
	return g_byte_array_free_to_bytes(ctx);
}

gboolean
tkmsctl_stream_encrypt(Tkmsctl *ctl, const gchar *name, GBytes *context, TkmsctlInput *in,
		       TkmsctlOutput *out, GError **error)
{
	g_autoptr(GBytes) plain_key = NULL;
	g_autoptr(GBytes) wrapped = NULL;
	g_autofree guint8 *header = NULL;
	g_autofree guint8 *buf = NULL;
	const guint32 chunk = TKMSCTL_STREAM_CHUNK;
	Chunker c = {0};
	Progress progress = {0};
	guint8 key[KEY_LEN];
	gsize header_len, wrapped_len, have = 0, buf_len = chunk + TAG_LEN + 1;
	guint64 done = 0;
	guint32 index = 0;
	gboolean ok = FALSE;

	g_autoptr(GBytes) key_context = stream_key_context(context);

	if (!tkms_client_generate_data_key_sync(ctl->client, name, KEY_LEN, key_context,
						&plain_key, &wrapped, NULL, error))
		return FALSE;
	if (!take_key(plain_key, key, error))
		return FALSE;
	wrapped_len = g_bytes_get_size(wrapped);
	if (wrapped_len > MAX_WRAPPED) {
		OPENSSL_cleanse(key, KEY_LEN);
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    _("tkmsd returned a wrapped key of %zu bytes"), wrapped_len);
		return FALSE;
	}

	header_len = FIXED_HEADER_LEN + wrapped_len;
	header = g_malloc0(header_len);
	memcpy(header, TKMSCTL_STREAM_MAGIC, 4);
	header[4] = FORMAT_VERSION;
	header[5] = ALGORITHM_AES_256_GCM;
	store_be32(header + 8, chunk);
	if (RAND_bytes(c.prefix, PREFIX_LEN) != 1) {
		OPENSSL_cleanse(key, KEY_LEN);
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED,
			    _("no random bytes from OpenSSL"));
		return FALSE;
	}
	memcpy(header + 12, c.prefix, PREFIX_LEN);
	header[20] = wrapped_len >> 8;
	header[21] = wrapped_len & 0xff;
	memcpy(header + FIXED_HEADER_LEN, g_bytes_get_data(wrapped, NULL), wrapped_len);
	c.chunk_size = chunk;
	if (!chunker_init(&c, TRUE, key, header, header_len, error))
		goto out;
	if (!tkmsctl_output_write(out, header, header_len, error))
		goto out;

	/* a chunk and one byte more: the byte says whether this chunk is the last */
	buf = g_malloc(buf_len);
	progress_init(&progress, ctl, _("encrypting"), tkmsctl_input_get_size(in));
	for (;;) {
		gssize n = tkmsctl_input_read(in, buf + have, chunk + 1 - have, error);
		gboolean final;
		gsize len;

		if (n < 0)
			goto out;
		have += (gsize)n;
		final = have <= chunk;
		len = final ? have : chunk;
		if (index == G_MAXUINT32 && !final) {
			g_set_error(error, TKMS_ERROR, TKMS_ERROR_LIMIT_EXCEEDED,
				    _("%s is too large for the stream format"),
				    tkmsctl_input_get_name(in));
			goto out;
		}
		if (final) {
			if (!chunker_run(&c, TRUE, index, TRUE, buf, len, buf + len))
				goto crypto_failed;
			ok = tkmsctl_output_write(out, buf, len + TAG_LEN, error);
			break;
		}
		{
			guint8 next = buf[chunk];

			if (!chunker_run(&c, TRUE, index, FALSE, buf, len, buf + len))
				goto crypto_failed;
			if (!tkmsctl_output_write(out, buf, len + TAG_LEN, error))
				goto out;
			buf[0] = next;
			have = 1;
		}
		index++;
		done += chunk;
		progress_update(&progress, done);
	}
	goto out;

crypto_failed:
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_FAILED, _("AES-256-GCM failed (OpenSSL)"));
out:
	progress_end(&progress);
	if (buf != NULL)
		OPENSSL_cleanse(buf, buf_len);
	OPENSSL_cleanse(key, KEY_LEN);
	chunker_clear(&c);
	return ok;
}

static gboolean
corrupt(GError **error, const gchar *what)
{
	g_set_error(error, TKMS_ERROR, TKMS_ERROR_INTEGRITY_FAILURE,
		    _("the encrypted stream was changed, cut short or reordered (%s)"), what);
	return FALSE;
}

static gboolean
read_exactly(TkmsctlInput *in, guint8 *buf, gsize len, GError **error)
{
	gssize n = tkmsctl_input_read(in, buf, len, error);

	if (n < 0)
		return FALSE;
	if ((gsize)n < len)
		return corrupt(error, _("the header is cut short"));
	return TRUE;
}

gboolean
tkmsctl_stream_decrypt(Tkmsctl *ctl, const gchar *name, GBytes *context, TkmsctlInput *in,
		       TkmsctlOutput *out, GError **error)
{
	g_autoptr(GBytes) wrapped = NULL;
	g_autoptr(GBytes) key_context = NULL;
	g_autoptr(GBytes) plain_key = NULL;
	g_autofree guint8 *header = NULL;
	g_autofree guint8 *buf = NULL;
	guint8 fixed[FIXED_HEADER_LEN];
	Chunker c = {0};
	Progress progress = {0};
	guint8 key[KEY_LEN];
	gsize wrapped_len, header_len, have = 0, buf_len = 0, unit;
	guint32 chunk, index = 0;
	guint64 done = 0;
	gboolean ok = FALSE;

	if (!read_exactly(in, fixed, sizeof(fixed), error))
		return FALSE;
	if (!tkmsctl_stream_has_magic(fixed, sizeof(fixed)))
		return corrupt(error, _("no stream header"));
	if (fixed[4] != FORMAT_VERSION || fixed[5] != ALGORITHM_AES_256_GCM || fixed[6] != 0 ||
	    fixed[7] != 0) {
		g_set_error(error, TKMS_ERROR, TKMS_ERROR_INVALID_ARGUMENT,
			    _("stream format %u, algorithm %u: this tkmsctl reads format 1 with "
			      "AES-256-GCM"),
			    fixed[4], fixed[5]);
		return FALSE;
	}
	chunk = load_be32(fixed + 8);
	wrapped_len = (gsize)fixed[20] << 8 | fixed[21];
	if (chunk < MIN_CHUNK || chunk > MAX_CHUNK || wrapped_len == 0 || wrapped_len > MAX_WRAPPED)
		return corrupt(error, _("the header is malformed"));
	header_len = FIXED_HEADER_LEN + wrapped_len;
	header = g_malloc(header_len);
	memcpy(header, fixed, FIXED_HEADER_LEN);
	if (!read_exactly(in, header + FIXED_HEADER_LEN, wrapped_len, error))
		return FALSE;

	/* the one call to tkmsd: the name, owner and context bind the wrapped key */
	wrapped = g_bytes_new(header + FIXED_HEADER_LEN, wrapped_len);
	key_context = stream_key_context(context);
	plain_key = tkms_client_decrypt_sync(ctl->client, name, wrapped, key_context, NULL, error);
	if (plain_key == NULL)
		return FALSE;
	if (!take_key(plain_key, key, error))
		return FALSE;
	memcpy(c.prefix, header + 12, PREFIX_LEN);
	c.chunk_size = chunk;
	if (!chunker_init(&c, FALSE, key, header, header_len, error))
		goto out;

	/* one sealed chunk and a byte more: the byte says whether this chunk is the last */
	unit = (gsize)chunk + TAG_LEN;
	buf_len = unit + 1;
	buf = g_malloc(buf_len);
	progress_init(&progress, ctl, _("decrypting"), tkmsctl_input_get_size(in));
	for (;;) {
		gssize n = tkmsctl_input_read(in, buf + have, unit + 1 - have, error);
		gboolean final;
		gsize len;
		g_autofree gchar *what = NULL;

		if (n < 0)
			goto out;
		have += (gsize)n;
		final = have <= unit;
		if (have < TAG_LEN) {
			corrupt(error, _("the last chunk is cut short"));
			goto out;
		}
		len = (final ? have : unit) - TAG_LEN;
		if (!chunker_run(&c, FALSE, index, final, buf, len, buf + len)) {
			what = g_strdup_printf(_("chunk %u does not authenticate"), index);
			corrupt(error, what);
			goto out;
		}
		/* written only once authenticated */
		if (!tkmsctl_output_write(out, buf, len, error))
			goto out;
		if (final) {
			ok = TRUE;
			break;
		}
		if (index == G_MAXUINT32) {
			corrupt(error, _("too many chunks"));
			goto out;
		}
		buf[0] = buf[unit];
		have = 1;
		index++;
		done += unit;
		progress_update(&progress, done);
	}

out:
	progress_end(&progress);
	if (buf != NULL)
		OPENSSL_cleanse(buf, buf_len);
	OPENSSL_cleanse(key, KEY_LEN);
	chunker_clear(&c);
	return ok;
}
