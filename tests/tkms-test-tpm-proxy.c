/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define G_LOG_DOMAIN "tkms-test-tpm-proxy"

#include "tkms-test-tpm-proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tkms-test-swtpm.h"
#include "tkms-test-util.h"

#define TO_TPM '>'
#define FROM_TPM '<'

/* One forwarded connection: the client's socket and ours to swtpm. */
typedef struct {
	int client;
	int server;
	gboolean recorded; /* the command channel */
} Pair;

struct _TkmsTestTpmProxy {
	guint16 port;	  /* ours: P and P + 1 */
	guint16 tpm_port; /* swtpm's */
	gchar *tcti;
	int listen_fd[2]; /* command, control */
	int wake[2];	  /* a byte here ends the thread */
	int record_fd;
	GPtrArray *pairs; /* Pair*, thread only */
	GThread *thread;
	gint connections;
};

static void
pair_close(gpointer data)
{
	Pair *p = data;

	close(p->client);
	close(p->server);
	g_free(p);
}

static int
listen_on(guint16 port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 8) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
connect_to(guint16 port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static gboolean
write_all(int fd, const guint8 *p, gsize len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return FALSE;
		p += n;
		len -= (gsize)n;
	}
	return TRUE;
}

static void
record(TkmsTestTpmProxy *proxy, guint8 direction, const guint8 *p, gsize len)
{
	guint8 head[5] = {direction, len >> 24, len >> 16, len >> 8, len};

	/* one write per record: the file is only appended to by this thread */
	g_autofree guint8 *buf = g_malloc(sizeof(head) + len);
	memcpy(buf, head, sizeof(head));
	memcpy(buf + sizeof(head), p, len);
	if (!write_all(proxy->record_fd, buf, sizeof(head) + len))
		g_warning("cannot write the TPM bus recording: %s", g_strerror(errno));
}

/* Moves what is readable on from to the other side; FALSE when the connection is over. */
static gboolean
forward(TkmsTestTpmProxy *proxy, Pair *p, gboolean from_client)
{
	guint8 buf[64 * 1024];
	int from = from_client ? p->client : p->server;
	int to = from_client ? p->server : p->client;
	ssize_t n;

	do
		n = read(from, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return FALSE;
	if (p->recorded)
		record(proxy, from_client ? TO_TPM : FROM_TPM, buf, (gsize)n);
	return write_all(to, buf, (gsize)n);
}

static void
accept_one(TkmsTestTpmProxy *proxy, guint which)
{
	int client = accept4(proxy->listen_fd[which], NULL, NULL, SOCK_CLOEXEC);
	int server;
	Pair *p;

	if (client < 0)
		return;
	server = connect_to(proxy->tpm_port + which);
	if (server < 0) {
		/* no TPM behind us: the client sees a closed connection, as without a proxy */
		close(client);
		return;
	}
	p = g_new0(Pair, 1);
	p->client = client;
	p->server = server;
	p->recorded = which == 0;
	g_ptr_array_add(proxy->pairs, p);
	g_atomic_int_inc(&proxy->connections);
}

static gpointer
proxy_thread(gpointer data)
{
	TkmsTestTpmProxy *proxy = data;

	for (;;) {
		guint n = 3 + 2 * proxy->pairs->len;
		g_autofree struct pollfd *fds = g_new0(struct pollfd, n);

		fds[0] = (struct pollfd){.fd = proxy->wake[0], .events = POLLIN};
		fds[1] = (struct pollfd){.fd = proxy->listen_fd[0], .events = POLLIN};
		fds[2] = (struct pollfd){.fd = proxy->listen_fd[1], .events = POLLIN};
		for (guint i = 0; i < proxy->pairs->len; i++) {
			Pair *p = g_ptr_array_index(proxy->pairs, i);
			fds[3 + 2 * i] = (struct pollfd){.fd = p->client, .events = POLLIN};
			fds[4 + 2 * i] = (struct pollfd){.fd = p->server, .events = POLLIN};
		}
		if (poll(fds, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			g_warning("TPM proxy: poll: %s", g_strerror(errno));
			return NULL;
		}
		if (fds[0].revents != 0)
			return NULL;
		/* from the last pair down, so that removing one leaves the indices of the
		 * others as they were */
		for (guint i = proxy->pairs->len; i-- > 0;) {
			Pair *p = g_ptr_array_index(proxy->pairs, i);
			gboolean alive = TRUE;
			if (fds[3 + 2 * i].revents != 0)
				alive = forward(proxy, p, TRUE);
			if (alive && fds[4 + 2 * i].revents != 0)
				alive = forward(proxy, p, FALSE);
			if (!alive)
				g_ptr_array_remove_index(proxy->pairs, i);
		}
		for (guint which = 0; which < 2; which++)
			if (fds[1 + which].revents & POLLIN)
				accept_one(proxy, which);
	}
}

TkmsTestTpmProxy *
tkms_test_tpm_proxy_new(guint16 tpm_port, const gchar *record_path, GError **error)
{
	g_autoptr(TkmsTestTpmProxy) proxy = g_new0(TkmsTestTpmProxy, 1);

	proxy->listen_fd[0] = proxy->listen_fd[1] = -1;
	proxy->wake[0] = proxy->wake[1] = -1;
	proxy->tpm_port = tpm_port;
	proxy->pairs = g_ptr_array_new_with_free_func(pair_close);
	proxy->record_fd =
	    open(record_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (proxy->record_fd < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "open %s: %s",
			    record_path, g_strerror(errno));
		return NULL;
	}
	if (!g_unix_open_pipe(proxy->wake, FD_CLOEXEC, error))
		return NULL;
	for (guint attempt = 0; attempt < 50 && proxy->port == 0; attempt++) {
		guint16 port = tkms_test_random_server_port();
		if (!tkms_test_port_is_free(port) || !tkms_test_port_is_free(port + 1))
			continue;
		proxy->listen_fd[0] = listen_on(port);
		proxy->listen_fd[1] = proxy->listen_fd[0] >= 0 ? listen_on(port + 1) : -1;
		if (proxy->listen_fd[1] >= 0) {
			proxy->port = port;
			break;
		}
		if (proxy->listen_fd[0] >= 0)
			close(proxy->listen_fd[0]);
		proxy->listen_fd[0] = -1;
	}
	if (proxy->port == 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
			    "no free pair of TCP ports found for the TPM proxy");
		return NULL;
	}
	proxy->tcti = g_strdup_printf("swtpm:host=127.0.0.1,port=%u", proxy->port);
	proxy->thread = g_thread_new("tkms-test-tpm-proxy", proxy_thread, proxy);
	return g_steal_pointer(&proxy);
}

void
tkms_test_tpm_proxy_free(TkmsTestTpmProxy *proxy)
{
	if (proxy == NULL)
		return;
	if (proxy->thread != NULL) {
		guint8 b = 0;
		if (write(proxy->wake[1], &b, 1) != 1)
			g_warning("cannot stop the TPM proxy: %s", g_strerror(errno));
		g_thread_join(proxy->thread);
	}
	g_ptr_array_unref(proxy->pairs);
	for (guint i = 0; i < 2; i++) {
		if (proxy->listen_fd[i] >= 0)
			close(proxy->listen_fd[i]);
		if (proxy->wake[i] >= 0)
			close(proxy->wake[i]);
	}
	if (proxy->record_fd >= 0)
		close(proxy->record_fd);
	g_free(proxy->tcti);
	g_free(proxy);
}

const gchar *
tkms_test_tpm_proxy_get_tcti(TkmsTestTpmProxy *proxy)
{
	return proxy->tcti;
}

guint
tkms_test_tpm_proxy_get_connections(TkmsTestTpmProxy *proxy)
{
	return (guint)g_atomic_int_get(&proxy->connections);
}

gboolean
tkms_test_tpm_proxy_read(const gchar *path, GBytes **to_tpm, GBytes **from_tpm, GError **error)
{
	g_autofree gchar *contents = NULL;
	g_autoptr(GByteArray) out = g_byte_array_new();
	g_autoptr(GByteArray) in = g_byte_array_new();
	gsize len = 0, off = 0;

	if (!g_file_get_contents(path, &contents, &len, error))
		return FALSE;
	while (off < len) {
		const guint8 *p = (const guint8 *)contents + off;
		guint32 n;

		if (len - off < 5 || (p[0] != TO_TPM && p[0] != FROM_TPM))
			goto bad;
		n = (guint32)p[1] << 24 | (guint32)p[2] << 16 | (guint32)p[3] << 8 | p[4];
		if (len - off - 5 < n)
			goto bad;
		g_byte_array_append(p[0] == TO_TPM ? out : in, p + 5, n);
		off += 5 + n;
	}
	*to_tpm = g_byte_array_free_to_bytes(g_steal_pointer(&out));
	*from_tpm = g_byte_array_free_to_bytes(g_steal_pointer(&in));
	return TRUE;
bad:
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		    "%s: record at byte %" G_GSIZE_FORMAT " is damaged or cut short", path, off);
	return FALSE;
}
