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

#define TO_TPM	 '>'
#define FROM_TPM '<'

#define HEADER_LEN	   10
#define TPM_ST_NO_SESSIONS 0x8001
#define TPM_ST_SESSIONS	   0x8002
/* larger than any TPM command or answer: past it the stream is not TPM framing */
#define MAX_MESSAGE (1024 * 1024)

/* One forwarded connection: the client's socket and ours to swtpm. */
typedef struct {
	int client;
	int server;
	gboolean recorded; /* the command channel */
	/* the command being read: its header so far, then the bytes of it still to come */
	guint8 cmd_header[HEADER_LEN];
	guint cmd_header_len;
	guint32 cmd_left;
	GQueue codes;	   /* the codes of the commands not answered yet (GUINT_TO_POINTER) */
	GByteArray *rsp;   /* an answer not yet whole */
	gboolean unframed; /* the stream is not TPM commands: passed on as it comes */
} Pair;

typedef struct {
	gboolean armed;
	guint32 code;
	TkmsTestTpmTamperPart part;
	gsize offset;
	guint8 mask;
} Rule;

#define MAX_FORGED 4

typedef struct {
	guint32 code;
	guint32 rcs[MAX_FORGED];
	guint left; /* the answers still to forge: rcs[n - left] next */
	guint n;
} Forge;

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
	GMutex lock; /* rule, forge */
	Rule rule;
	Forge forge;
	gint tampered;
	gint misses;
	gint forged;
};

static void
pair_close(gpointer data)
{
	Pair *p = data;

	close(p->client);
	close(p->server);
	g_queue_clear(&p->codes);
	if (p->rsp != NULL)
		g_byte_array_unref(p->rsp);
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

/* Follows the commands in what the client sent: the code of each, in order. */
static void
follow_commands(Pair *p, const guint8 *buf, gsize n)
{
	while (n > 0 && !p->unframed) {
		if (p->cmd_left > 0) {
			gsize take = MIN(n, p->cmd_left);
			p->cmd_left -= take;
			buf += take;
			n -= take;
			continue;
		}
		p->cmd_header[p->cmd_header_len++] = *buf++;
		n--;
		if (p->cmd_header_len == HEADER_LEN) {
			guint32 size = tkms_test_be32(p->cmd_header + 2);
			if (size < HEADER_LEN || size > MAX_MESSAGE) {
				p->unframed = TRUE;
				break;
			}
			g_queue_push_tail(&p->codes,
					  GUINT_TO_POINTER(tkms_test_be32(p->cmd_header + 6)));
			p->cmd_left = size - HEADER_LEN;
			p->cmd_header_len = 0;
		}
	}
}

static void
put_be32(guint8 *p, guint32 v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* Whether the answer to code carries one handle before its parameters. */
static guint
response_handles(guint32 code)
{
	switch (code) {
	case 0x131: /* CreatePrimary */
	case 0x157: /* Load */
	case 0x15b: /* HMAC_Start */
	case 0x161: /* ContextLoad */
	case 0x167: /* LoadExternal */
	case 0x176: /* StartAuthSession */
	case 0x186: /* HashSequenceStart */
	case 0x191: /* CreateLoaded */
		return 1;
	default:
		return 0;
	}
}

/* Applies rule to r, one whole successful answer to code; FALSE if it has no such part. */
static gboolean
tamper(GByteArray *r, guint32 code, const Rule *rule)
{
	gsize params = HEADER_LEN + 4 * response_handles(code), params_len, auth, len = r->len;
	gsize nonce, nonce_len, attrs, hmac, hmac_len;
	guint8 *d = r->data;

	if (len < params)
		return FALSE;
	if (((d[0] << 8) | d[1]) != TPM_ST_SESSIONS) {
		/* no sessions: only the parameters */
		if (rule->part != TKMS_TEST_TPM_TAMPER_PARAMETERS || rule->offset >= len - params)
			return FALSE;
		d[params + rule->offset] ^= rule->mask;
		return TRUE;
	}
	if (len < params + 4)
		return FALSE;
	params_len = tkms_test_be32(d + params);
	if (params_len > len - params - 4)
		return FALSE;
	auth = params + 4 + params_len;
	/* the first session: nonce, attributes, HMAC */
	if (len < auth + 2)
		return FALSE;
	nonce = auth + 2;
	nonce_len = (d[auth] << 8) | d[auth + 1];
	attrs = nonce + nonce_len;
	if (len < attrs + 3)
		return FALSE;
	hmac = attrs + 3;
	hmac_len = (d[attrs + 1] << 8) | d[attrs + 2];
	if (len < hmac + hmac_len)
		return FALSE;
	switch (rule->part) {
	case TKMS_TEST_TPM_TAMPER_PARAMETERS:
		if (rule->offset >= params_len)
			return FALSE;
		d[params + 4 + rule->offset] ^= rule->mask;
		return TRUE;
	case TKMS_TEST_TPM_TAMPER_NONCE:
		if (rule->offset >= nonce_len)
			return FALSE;
		d[nonce + rule->offset] ^= rule->mask;
		return TRUE;
	case TKMS_TEST_TPM_TAMPER_ATTRIBUTES:
		if (rule->offset != 0)
			return FALSE;
		d[attrs] ^= rule->mask;
		return TRUE;
	case TKMS_TEST_TPM_TAMPER_HMAC:
		if (rule->offset >= hmac_len)
			return FALSE;
		d[hmac + rule->offset] ^= rule->mask;
		return TRUE;
	case TKMS_TEST_TPM_TAMPER_STRIP_SESSIONS:
		g_byte_array_set_size(r, auth);
		/* parameterSize goes too: an answer without sessions has none */
		g_byte_array_remove_range(r, params, 4);
		d = r->data;
		d[0] = TPM_ST_NO_SESSIONS >> 8;
		d[1] = TPM_ST_NO_SESSIONS & 0xff;
		put_be32(d + 2, r->len);
		return TRUE;
	}
	return FALSE;
}

/* One whole answer to the oldest command not answered: altered if a rule asks for it. */
static void
answer(TkmsTestTpmProxy *proxy, Pair *p, GByteArray *r)
{
	guint32 code = GPOINTER_TO_UINT(g_queue_pop_head(&p->codes));

	g_mutex_lock(&proxy->lock);
	if (proxy->forge.left > 0 && proxy->forge.code == code && code != 0) {
		guint32 rc = proxy->forge.rcs[proxy->forge.n - proxy->forge.left--];
		/* what a TPM answers to a command it refuses: the header alone */
		g_byte_array_set_size(r, HEADER_LEN);
		r->data[0] = TPM_ST_NO_SESSIONS >> 8;
		r->data[1] = TPM_ST_NO_SESSIONS & 0xff;
		put_be32(r->data + 2, HEADER_LEN);
		put_be32(r->data + 6, rc);
		g_atomic_int_inc(&proxy->forged);
	}
	if (proxy->rule.armed && proxy->rule.code == code && code != 0 &&
	    tkms_test_be32(r->data + 6) == 0) {
		proxy->rule.armed = FALSE;
		if (tamper(r, code, &proxy->rule))
			g_atomic_int_inc(&proxy->tampered);
		else
			g_atomic_int_inc(&proxy->misses);
	}
	g_mutex_unlock(&proxy->lock);
}

static gboolean
pass_on(TkmsTestTpmProxy *proxy, Pair *p, guint8 direction, int to, const guint8 *buf, gsize n)
{
	if (p->recorded)
		record(proxy, direction, buf, n);
	return write_all(to, buf, n);
}

/* Moves what is readable on from to the other side; FALSE when the connection is over. An
 * answer on the command channel is passed on when it is whole (and altered if asked for). */
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
	if (n <= 0) {
		/* an answer cut short reaches the client as it is, as without a proxy */
		if (!from_client && p->rsp != NULL && p->rsp->len > 0)
			pass_on(proxy, p, FROM_TPM, to, p->rsp->data, p->rsp->len);
		return FALSE;
	}
	if (!p->recorded)
		return write_all(to, buf, (gsize)n);
	if (from_client) {
		follow_commands(p, buf, (gsize)n);
		return pass_on(proxy, p, TO_TPM, to, buf, (gsize)n);
	}
	if (p->unframed)
		return pass_on(proxy, p, FROM_TPM, to, buf, (gsize)n);
	g_byte_array_append(p->rsp, buf, (guint)n);
	while (p->rsp->len >= HEADER_LEN) {
		guint32 size = tkms_test_be32(p->rsp->data + 2);
		g_autoptr(GByteArray) r = NULL;

		if (size < HEADER_LEN || size > MAX_MESSAGE) {
			/* not TPM framing: from here on, as it comes */
			p->unframed = TRUE;
			break;
		}
		if (p->rsp->len < size)
			return TRUE;
		r = g_byte_array_sized_new(size);
		g_byte_array_append(r, p->rsp->data, size);
		g_byte_array_remove_range(p->rsp, 0, size);
		answer(proxy, p, r);
		if (!pass_on(proxy, p, FROM_TPM, to, r->data, r->len))
			return FALSE;
	}
	if (p->unframed && p->rsp->len > 0) {
		gboolean ok = pass_on(proxy, p, FROM_TPM, to, p->rsp->data, p->rsp->len);
		g_byte_array_set_size(p->rsp, 0);
		return ok;
	}
	return TRUE;
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
	p->rsp = g_byte_array_new();
	g_queue_init(&p->codes);
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
	g_mutex_init(&proxy->lock);
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
	g_mutex_clear(&proxy->lock);
	g_free(proxy);
}

void
tkms_test_tpm_proxy_tamper_next(TkmsTestTpmProxy *proxy, guint32 command_code,
				TkmsTestTpmTamperPart part, gsize offset, guint8 xor_mask)
{
	g_return_if_fail(xor_mask != 0 || part == TKMS_TEST_TPM_TAMPER_STRIP_SESSIONS);
	g_mutex_lock(&proxy->lock);
	proxy->rule = (Rule){TRUE, command_code, part, offset, xor_mask};
	g_mutex_unlock(&proxy->lock);
}

void
tkms_test_tpm_proxy_forge_errors(TkmsTestTpmProxy *proxy, guint32 command_code,
				 const guint32 *response_codes, guint n)
{
	Forge forge = {.code = command_code, .left = n, .n = n};

	g_return_if_fail(n <= MAX_FORGED);
	for (guint i = 0; i < n; i++) {
		/* an error: a forged success would be tamper_next's business */
		g_return_if_fail(response_codes[i] != 0);
		forge.rcs[i] = response_codes[i];
	}
	g_mutex_lock(&proxy->lock);
	proxy->forge = forge;
	g_mutex_unlock(&proxy->lock);
}

guint
tkms_test_tpm_proxy_get_forged(TkmsTestTpmProxy *proxy)
{
	return (guint)g_atomic_int_get(&proxy->forged);
}

guint
tkms_test_tpm_proxy_get_tampered(TkmsTestTpmProxy *proxy)
{
	return (guint)g_atomic_int_get(&proxy->tampered);
}

guint
tkms_test_tpm_proxy_get_tamper_misses(TkmsTestTpmProxy *proxy)
{
	return (guint)g_atomic_int_get(&proxy->misses);
}

gboolean
tkms_test_tpm_proxy_tamper_pending(TkmsTestTpmProxy *proxy)
{
	gboolean armed;

	g_mutex_lock(&proxy->lock);
	armed = proxy->rule.armed;
	g_mutex_unlock(&proxy->lock);
	return armed;
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

static void
read_or_assert(const gchar *path, GBytes **to_tpm, GBytes **from_tpm)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(tkms_test_tpm_proxy_read(path, to_tpm, from_tpm, &error));
	g_assert_no_error(error);
}

TkmsTestTpmMark
tkms_test_tpm_proxy_mark(const gchar *path)
{
	g_autoptr(GBytes) to = NULL;
	g_autoptr(GBytes) from = NULL;
	TkmsTestTpmMark m;

	read_or_assert(path, &to, &from);
	m.len[0] = g_bytes_get_size(to);
	m.len[1] = g_bytes_get_size(from);
	return m;
}

/* The first session's handle and attributes of the command at p: tag, size, code, one handle,
 * the authorization area's size, the session's handle, its nonce (TPM2B), its attributes. */
static void
read_session(TkmsTestTpmCommand *c, const guint8 *p, guint32 size)
{
	guint nonce;

	if (tkms_test_be32(p) >> 16 != TPM_ST_SESSIONS || size < 22)
		return;
	c->session = tkms_test_be32(p + 18);
	if (size < 25)
		return;
	nonce = (guint)p[22] << 8 | p[23];
	if (24 + nonce < size)
		c->attributes = p[24 + nonce];
}

GArray *
tkms_test_tpm_proxy_commands_since(const gchar *path, const TkmsTestTpmMark *mark)
{
	g_autoptr(GBytes) to = NULL;
	g_autoptr(GBytes) from = NULL;
	GArray *out = g_array_new(FALSE, TRUE, sizeof(TkmsTestTpmCommand));
	gsize tlen, flen, t = 0, f = mark->len[1];
	const guint8 *tp, *fp;

	read_or_assert(path, &to, &from);
	tp = g_bytes_get_data(to, &tlen);
	fp = g_bytes_get_data(from, &flen);
	/* both channels carry whole commands and answers back to back, one answer per command */
	while (t + HEADER_LEN <= tlen) {
		guint32 size = tkms_test_be32(tp + t + 2);
		TkmsTestTpmCommand c = {.code = tkms_test_be32(tp + t + 6), .rc = G_MAXUINT32};

		g_assert_cmpuint(size, >=, HEADER_LEN);
		g_assert_cmpuint(t + size, <=, tlen);
		if (t >= mark->len[0]) {
			if (size >= 14)
				c.handle = tkms_test_be32(tp + t + 10);
			read_session(&c, tp + t, size);
			if (f + HEADER_LEN <= flen) {
				guint32 rsize = tkms_test_be32(fp + f + 2);
				g_assert_cmpuint(f + rsize, <=, flen);
				c.rc = tkms_test_be32(fp + f + 6);
				if (c.rc == 0 && rsize >= 14)
					c.out = tkms_test_be32(fp + f + 10);
				f += rsize;
			}
			g_array_append_val(out, c);
		}
		t += size;
	}
	g_assert_cmpuint(t, ==, tlen);
	return out;
}

guint
tkms_test_tpm_proxy_count_since(const gchar *path, const TkmsTestTpmMark *mark, guint32 code)
{
	g_autoptr(GArray) commands = tkms_test_tpm_proxy_commands_since(path, mark);
	guint n = 0;

	for (guint i = 0; i < commands->len; i++)
		if (g_array_index(commands, TkmsTestTpmCommand, i).code == code)
			n++;
	return n;
}
