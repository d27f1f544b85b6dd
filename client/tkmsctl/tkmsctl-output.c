/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkmsctl"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tkmsctl.h"

/* TkmsctlOutput: data written a block at a time, raw, as one base64 line or as
 * {"base64": "..."} (the forms tkmsctl_write_data() writes whole). A regular --out file is
 * written under a temporary name beside it and renamed into place by commit: a failure, or
 * a stream that does not authenticate, leaves no partial output behind. */

typedef enum {
	FORM_RAW,
	FORM_BASE64,
	FORM_JSON,
} Form;

struct _TkmsctlOutput {
	int fd;
	gchar *name;
	/* the --out file and the temporary name it is written under, or NULL */
	gchar *path;
	gchar *tmp_path;
	Form form;
	gint b64_state;
	gint b64_save;
	gboolean started;
};

static gboolean
write_all(TkmsctlOutput *out, const void *data, gsize len, GError **error)
{
	const guint8 *p = data;

	while (len > 0) {
		gssize n = write(out->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
				    _("cannot write %s: %s"), out->name, g_strerror(saved));
			return FALSE;
		}
		p += n;
		len -= (gsize)n;
	}
	return TRUE;
}

static TkmsctlOutput *
output_open(const gchar *path, Form form, GError **error)
{
	g_autoptr(TkmsctlOutput) out = g_new0(TkmsctlOutput, 1);
	struct stat st;

	out->form = form;
	out->fd = -1;
	if (path == NULL || g_str_equal(path, "-")) {
		out->fd = STDOUT_FILENO;
		out->name = g_strdup(_("standard output"));
		return g_steal_pointer(&out);
	}
	out->name = g_strdup(path);
	/* a device or a FIFO is written in place: it cannot be renamed onto */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		out->fd = open(path, O_WRONLY | O_CLOEXEC);
	} else {
		g_autofree gchar *dir = g_path_get_dirname(path);
		g_autofree gchar *base = g_path_get_basename(path);
		g_autofree gchar *tmpl = g_strdup_printf(".%s.tkms-XXXXXX", base);

		/* 0600: the output may be plaintext */
		out->tmp_path = g_build_filename(dir, tmpl, NULL);
		out->fd = g_mkstemp_full(out->tmp_path, O_WRONLY | O_CLOEXEC, 0600);
		out->path = g_strdup(path);
	}
	if (out->fd < 0) {
		int saved = errno;
		g_clear_pointer(&out->tmp_path, g_free);
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
			    _("cannot create %s: %s"), path, g_strerror(saved));
		return NULL;
	}
	return g_steal_pointer(&out);
}

gboolean
tkmsctl_output_write(TkmsctlOutput *out, const void *data, gsize len, GError **error)
{
	/* base64 of one block at a time: 4 characters per 3 bytes, and the carry */
	const gsize step = 3 * 16 * 1024;
	g_autofree gchar *text = NULL;
	const guint8 *p = data;
	gboolean ok = TRUE;

	if (out->form == FORM_RAW)
		return write_all(out, data, len, error);
	if (!out->started && out->form == FORM_JSON && !write_all(out, "{\"base64\":\"", 11, error))
		return FALSE;
	out->started = TRUE;
	text = g_malloc(step / 3 * 4 + 8);
	while (ok && len > 0) {
		gsize n = MIN(len, step);
		gsize t = g_base64_encode_step(p, n, FALSE, text, &out->b64_state,
					       &out->b64_save);

		ok = write_all(out, text, t, error);
		p += n;
		len -= n;
	}
	/* the text may be plaintext */
	explicit_bzero(text, step / 3 * 4 + 8);
	return ok;
}

static void
discard(TkmsctlOutput *out)
{
	if (out->tmp_path != NULL) {
		unlink(out->tmp_path);
		g_clear_pointer(&out->tmp_path, g_free);
	}
}

gboolean
tkmsctl_output_commit(TkmsctlOutput *out, GError **error)
{
	gchar tail[8];
	gsize t = 0;
	int fd;

	if (out->form != FORM_RAW) {
		if (!out->started && out->form == FORM_JSON &&
		    !write_all(out, "{\"base64\":\"", 11, error))
			return FALSE;
		out->started = TRUE;
		t = g_base64_encode_close(FALSE, tail, &out->b64_state, &out->b64_save);
		if (out->form == FORM_JSON)
			tail[t++] = '"', tail[t++] = '}';
		tail[t++] = '\n';
		if (!write_all(out, tail, t, error))
			return FALSE;
	}
	if (out->fd == STDOUT_FILENO)
		return TRUE;
	fd = out->fd;
	out->fd = -1;
	/* on disk before it takes the name, so a crash leaves the old file or the new one */
	if ((out->tmp_path != NULL && fsync(fd) < 0) || close(fd) < 0 ||
	    (out->tmp_path != NULL && rename(out->tmp_path, out->path) < 0)) {
		int saved = errno;
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(saved),
			    _("cannot write %s: %s"), out->name, g_strerror(saved));
		return FALSE;
	}
	g_clear_pointer(&out->tmp_path, g_free);
	return TRUE;
}

TkmsctlOutput *
tkmsctl_output_open(Tkmsctl *ctl, const gchar *path, gboolean base64, GError **error)
{
	return output_open(path, ctl->json ? FORM_JSON : base64 ? FORM_BASE64 : FORM_RAW, error);
}

TkmsctlOutput *
tkmsctl_output_open_raw(const gchar *path, GError **error)
{
	return output_open(path, FORM_RAW, error);
}

void
tkmsctl_output_free(TkmsctlOutput *out)
{
	if (out == NULL)
		return;
	if (out->fd >= 0 && out->fd != STDOUT_FILENO)
		close(out->fd);
	/* not committed: nothing of it stays */
	discard(out);
	g_free(out->name);
	g_free(out->path);
	g_free(out);
}
