/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib-unix.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "daemon/proxy.h"

/* Datagrams for WireGuard, packed in bytes[] in arrival order. */
struct proxy_queue {
	struct mmsghdr msgs[PROXY_QUEUE_MAX];
	struct iovec iov[PROXY_QUEUE_MAX];
	unsigned int n;
	size_t used;
	uint8_t bytes[PROXY_QUEUE_BYTES];
};

/* One recvmmsg() worth of WireGuard's datagrams. */
struct proxy_rx {
	struct mmsghdr msgs[PROXY_BURST];
	struct iovec iov[PROXY_BURST];
	struct sockaddr_in src[PROXY_BURST];
	struct iovec out[PROXY_BURST];
	uint8_t buf[PROXY_BURST][PROXY_MAX_DATAGRAM];
};

struct proxy {
	int fd;
	GSource *src;
	GSource *flush;	       /* ready while the queue holds something */
	struct sockaddr_in ep; /* ours */
	struct sockaddr_in wg; /* WireGuard's; port 0 until known */
	proxy_send_fn on_wg_datagram;
	void *data;
	uint64_t to_peer, from_peer;
	/*
	 * Both allocated apart, with calloc(): ~4 MiB of address space for rx, of which only
	 * the pages datagrams touch become resident.
	 */
	struct proxy_rx *rx;
	struct proxy_queue *q;
};

struct flush_source {
	GSource base;
	struct proxy *p;
};

static bool from_wg(const struct proxy *p, const struct sockaddr_in *src, socklen_t len)
{
	return len == sizeof(*src) && src->sin_family == AF_INET && p->wg.sin_port &&
	       src->sin_port == p->wg.sin_port && src->sin_addr.s_addr == p->wg.sin_addr.s_addr;
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer data)
{
	struct proxy *p = data;
	struct proxy_rx *rx = p->rx;
	size_t n_out = 0;
	int n;

	for (int i = 0; i < PROXY_BURST; i++) {
		rx->iov[i] = (struct iovec){.iov_base = rx->buf[i], .iov_len = PROXY_MAX_DATAGRAM};
		rx->msgs[i].msg_hdr = (struct msghdr){
			.msg_name = &rx->src[i],
			.msg_namelen = sizeof(rx->src[i]),
			.msg_iov = &rx->iov[i],
			.msg_iovlen = 1,
		};
	}
	n = recvmmsg(fd, rx->msgs, PROXY_BURST, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return G_SOURCE_CONTINUE; /* EAGAIN */
	for (int i = 0; i < n; i++) {
		if (!from_wg(p, &rx->src[i], rx->msgs[i].msg_hdr.msg_namelen) ||
		    rx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
			continue;
		rx->out[n_out++] =
			(struct iovec){.iov_base = rx->buf[i], .iov_len = rx->msgs[i].msg_len};
		p->to_peer += rx->msgs[i].msg_len;
	}
	if (n_out)
		p->on_wg_datagram(p->data, rx->out, n_out);
	return G_SOURCE_CONTINUE;
}

static gboolean flush_prepare(GSource *src, gint *timeout)
{
	*timeout = -1;
	return ((struct flush_source *)src)->p->q->n > 0;
}

static gboolean flush_check(GSource *src)
{
	return ((struct flush_source *)src)->p->q->n > 0;
}

static gboolean flush_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
	proxy_flush(((struct flush_source *)src)->p);
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs flush_funcs = {
	.prepare = flush_prepare,
	.check = flush_check,
	.dispatch = flush_dispatch,
};

static void set_buffers(int fd)
{
	int v = PROXY_SOCKBUF;

	/* Best effort: without CAP_NET_ADMIN the kernel caps the plain option at *mem_max. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

int proxy_new(GMainContext *ctx, proxy_send_fn on_wg_datagram, void *data, struct proxy **ret)
{
	struct proxy *p;
	socklen_t sl = sizeof(p->ep);
	int r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->on_wg_datagram = on_wg_datagram;
	p->data = data;
	p->rx = calloc(1, sizeof(*p->rx));
	p->q = calloc(1, sizeof(*p->q));
	p->fd = -1;
	if (!p->rx || !p->q) {
		proxy_free(p);
		return -ENOMEM;
	}
	p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		goto fail_errno;
	p->ep.sin_family = AF_INET;
	p->ep.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(p->fd, (struct sockaddr *)&p->ep, sizeof(p->ep)) < 0 ||
	    getsockname(p->fd, (struct sockaddr *)&p->ep, &sl) < 0)
		goto fail_errno;
	set_buffers(p->fd);
	p->wg.sin_family = AF_INET;
	p->wg.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->flush = g_source_new(&flush_funcs, sizeof(struct flush_source));
	((struct flush_source *)p->flush)->p = p;
	g_source_attach(p->flush, ctx);
	p->src = g_unix_fd_source_new(p->fd, G_IO_IN);
	g_source_set_callback(p->src, (GSourceFunc)(void (*)(void))on_readable, p, NULL);
	g_source_attach(p->src, ctx);
	*ret = p;
	return 0;
fail_errno:
	r = -errno;
	proxy_free(p);
	return r;
}

struct proxy *proxy_free(struct proxy *p)
{
	if (!p)
		return NULL;
	if (p->src) {
		g_source_destroy(p->src);
		g_source_unref(p->src);
	}
	if (p->flush) {
		g_source_destroy(p->flush);
		g_source_unref(p->flush);
	}
	if (p->fd >= 0)
		close(p->fd);
	free(p->rx);
	free(p->q);
	free(p);
	return NULL;
}

const struct sockaddr_in *proxy_endpoint(const struct proxy *p)
{
	return &p->ep;
}

void proxy_set_wg_port(struct proxy *p, uint16_t port)
{
	p->wg.sin_port = htons(port);
}

/*
 * sendmmsg() what is queued. EAGAIN/ENOBUFS (WireGuard is not reading fast enough) drops the
 * rest, as a full socket buffer would on any UDP path; another error (a firewall's EPERM)
 * drops the datagram it is about. The socket is unconnected and without IP_RECVERR, so an
 * ICMP error from WireGuard's port is never reported here.
 */
void proxy_flush(struct proxy *p)
{
	struct proxy_queue *q = p->q;
	unsigned int done = 0;

	for (unsigned int i = 0; i < q->n; i++)
		q->msgs[i].msg_hdr = (struct msghdr){
			.msg_name = &p->wg,
			.msg_namelen = sizeof(p->wg),
			.msg_iov = &q->iov[i],
			.msg_iovlen = 1,
		};
	while (done < q->n) {
		int r = sendmmsg(p->fd, q->msgs + done, q->n - done, MSG_DONTWAIT);

		if (r < 0 && (errno == EAGAIN || errno == ENOBUFS))
			break;
		if (r < 0) {
			done++;
			continue;
		}
		for (int i = 0; i < r; i++)
			p->from_peer += q->iov[done + i].iov_len;
		done += (unsigned int)r;
	}
	q->n = 0;
	q->used = 0;
}

int proxy_to_wg(struct proxy *p, const uint8_t *buf, size_t len)
{
	struct proxy_queue *q = p->q;

	if (!p->wg.sin_port)
		return -ENOTCONN;
	if (len > PROXY_MAX_DATAGRAM)
		return -EMSGSIZE;
	if (q->used + len > sizeof(q->bytes))
		proxy_flush(p);
	memcpy(q->bytes + q->used, buf, len);
	q->iov[q->n] = (struct iovec){.iov_base = q->bytes + q->used, .iov_len = len};
	q->used += len;
	q->n++;
	/* Full: send now rather than hold the burst until the loop comes round. */
	if (q->n == PROXY_QUEUE_MAX)
		proxy_flush(p);
	return 0;
}

void proxy_counters(const struct proxy *p, uint64_t *ret_to_peer, uint64_t *ret_from_peer)
{
	*ret_to_peer = p->to_peer;
	*ret_from_peer = p->from_peer;
}
