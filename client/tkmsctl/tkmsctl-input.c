/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tkmsctl.h"

/* TkmsctlInput: data read a block at a time, for inputs of any size in constant memory
 * (sign, verify, the stream format), optionally base64 decoded as strictly as
 * tkmsctl_read_input() does, with bytes that can be pushed back after a look ahead. */

#define TEXT_BLOCK 4096

struct _TkmsctlInput {
	int fd;
	gboolean close_fd;
	gchar *name;
	goffset size;
	gboolean eof;
	/* bytes read ahead or decoded, handed out before more is read; wiped when dropped,
	 * as they may be plaintext */
	guint8 *pending;
	gsize pending_cap;
	gsize pending_len;
	gsize pending_pos;
	gboolean base64;
	gint b64_state;
	guint b64_save;
	guint64 b64_chars;
	guint b64_pad;
};

static void
pending_drop(TkmsctlInput *in)
{
	if (in->pending != NULL)
		explicit_bzero(in->pending, in->pending_cap);
	g_clear_pointer(&in->pending, g_free);
	in->pending_cap = in->pending_len = in->pending_pos = 0;
}

static void
pending_reserve(TkmsctlInput *in, gsize len)
{
	if (in->pending_cap < len) {
		pending_drop(in);
		in->pending = g_malloc(len);
		in->pending_cap = len;
	}
	in->pending_len = in->pending_pos = 0;
}

TkmsctlInput *
tkmsctl_input_open(const gchar *path, gboolean base64, GError **error)
{
	g_autoptr(TkmsctlInput) in = g_new0(TkmsctlInput, 1);
	struct stat st;

	in->base64 = base64;
	in->size = -1;
	if (path == NULL || g_str_equal(path, "-")) {
		in->fd = STDIN_FILENO;
		in->name = g_strdup(_("standard input"));
	} else {
		in->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (in->fd < 0) {
			int saved = errno;
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
				    _("cannot open %s: %s"), path, g_strerror(saved));
			return NULL;
		}
		in->close_fd = TRUE;
		in->name = g_strdup(path);
	}
	if (!base64 && fstat(in->fd, &st) == 0 && S_ISREG(st.st_mode))
		in->size = st.st_size;
	return g_steal_pointer(&in);
}

void
tkmsctl_input_free(TkmsctlInput *in)
{
	if (in == NULL)
		return;
	if (in->close_fd)
		close(in->fd);
	pending_drop(in);
	g_free(in->name);
	g_free(in);
}

const gchar *
tkmsctl_input_get_name(TkmsctlInput *in)
{
	return in->name;
}

goffset
tkmsctl_input_get_size(TkmsctlInput *in)
{
	return in->size;
}

static gssize
read_fd(TkmsctlInput *in, void *buf, gsize len, GError **error)
{
	for (;;) {
		gssize n = read(in->fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
				    _("cannot read %s: %s"), in->name, g_strerror(saved));
		}
		return n;
	}
}

/* The next block of base64 text, checked and decoded into the pending buffer. */
static gboolean
refill_base64(TkmsctlInput *in, GError **error)
{
	gchar text[TEXT_BLOCK];
	gchar clean[TEXT_BLOCK];
	gsize n = 0;
	gssize got = read_fd(in, text, sizeof(text), error);

	if (got < 0)
		return FALSE;
	if (got == 0) {
		in->eof = TRUE;
		if (in->b64_chars % 4 != 0 || in->b64_pad > 2) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    _("%s is not valid base64 (truncated)"), in->name);
			return FALSE;
		}
		return TRUE;
	}
	/* g_base64_decode_step() skips garbage silently; a typo must not decode to other
	 * bytes */
	for (gssize i = 0; i < got; i++) {
		gchar c = text[i];

		if (g_ascii_isspace(c))
			continue;
		if (c == '=') {
			in->b64_pad++;
		} else if (in->b64_pad > 0 || !(g_ascii_isalnum(c) || c == '+' || c == '/')) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
				    _("%s is not valid base64"), in->name);
			return FALSE;
		}
		clean[n++] = c;
	}
	in->b64_chars += n;
	pending_reserve(in, TEXT_BLOCK / 4 * 3 + 3);
	in->pending_len = g_base64_decode_step(clean, n, in->pending, &in->b64_state,
					       &in->b64_save);
	return TRUE;
}

gssize
tkmsctl_input_read(TkmsctlInput *in, void *buf, gsize len, GError **error)
{
	guint8 *out = buf;
	gsize got = 0;

	while (got < len) {
		if (in->pending_pos < in->pending_len) {
			gsize n = MIN(len - got, in->pending_len - in->pending_pos);

			memcpy(out + got, in->pending + in->pending_pos, n);
			in->pending_pos += n;
			got += n;
			continue;
		}
		if (in->eof)
			break;
		if (in->base64) {
			if (!refill_base64(in, error))
				return -1;
		} else {
			gssize n = read_fd(in, out + got, len - got, error);

			if (n < 0)
				return -1;
			if (n == 0)
				in->eof = TRUE;
			got += (gsize)n;
		}
	}
	return (gssize)got;
}

void
tkmsctl_input_unread(TkmsctlInput *in, const void *data, gsize len)
{
	g_autofree guint8 *rest = NULL;
	gsize rest_len = in->pending_len - in->pending_pos;

	/* nothing to push back (a line that ended a read): what is pending stays as it is, and
	 * the buffer may not exist yet (memcpy from or to NULL, even of 0 bytes, is undefined) */
	if (len == 0)
		return;
	/* keep what was decoded but not handed out yet behind the pushed-back bytes */
	if (rest_len > 0)
		rest = g_memdup2(in->pending + in->pending_pos, rest_len);
	pending_reserve(in, len + rest_len);
	memcpy(in->pending, data, len);
	if (rest_len > 0) {
		memcpy(in->pending + len, rest, rest_len);
		explicit_bzero(rest, rest_len);
	}
	in->pending_len = len + rest_len;
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

GBytes *
tkmsctl_input_read_head(TkmsctlInput *in, gsize max, GError **error)
{
	WipedBuffer *buf = g_malloc(sizeof(WipedBuffer) + max);
	gssize n;

	buf->len = max;
	n = tkmsctl_input_read(in, buf->data, max, error);
	if (n < 0) {
		wiped_buffer_free(buf);
		return NULL;
	}
	return g_bytes_new_with_free_func(buf->data, (gsize)n, wiped_buffer_free, buf);
}

GBytes *
tkmsctl_input_read_all(TkmsctlInput *in, gsize max, GError **error)
{
	gsize cap = 4096, len = 0;
	WipedBuffer *buf = g_malloc(sizeof(WipedBuffer) + cap);

	buf->len = cap;
	for (;;) {
		gssize n;

		if (len == cap) {
			WipedBuffer *bigger;

			if (cap >= max) {
				wiped_buffer_free(buf);
				g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
					    _("%s is larger than %d MiB"), in->name,
					    (int)(max >> 20));
				return NULL;
			}
			/* copy and wipe: no realloc leaving stale plaintext on the heap */
			bigger = g_malloc(sizeof(WipedBuffer) + cap * 2);
			bigger->len = cap * 2;
			memcpy(bigger->data, buf->data, len);
			wiped_buffer_free(buf);
			buf = bigger;
			cap *= 2;
		}
		n = tkmsctl_input_read(in, buf->data + len, cap - len, error);
		if (n < 0) {
			wiped_buffer_free(buf);
			return NULL;
		}
		len += (gsize)n;
		if (len < cap)
			break;
	}
	return g_bytes_new_with_free_func(buf->data, len, wiped_buffer_free, buf);
}

GBytes *
tkmsctl_input_sha256(TkmsctlInput *in, GError **error)
{
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_autofree guint8 *block = g_malloc(TKMSCTL_BLOCK_SIZE);
	guint8 digest[32];
	gsize digest_len = sizeof(digest);
	gssize n;

	/* constant memory: the message is never held whole */
	do {
		n = tkmsctl_input_read(in, block, TKMSCTL_BLOCK_SIZE, error);
		if (n < 0)
			return NULL;
		g_checksum_update(sum, block, n);
	} while (n == TKMSCTL_BLOCK_SIZE);
	g_checksum_get_digest(sum, digest, &digest_len);
	return g_bytes_new(digest, digest_len);
}
