/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib-unix.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "daemon/proxy.h"

struct proxy {
	int fd;
	GSource *src;
	struct sockaddr_in ep; /* ours */
	struct sockaddr_in wg; /* WireGuard's; port 0 until known */
	proxy_send_fn on_wg_datagram;
	void *data;
	uint64_t to_peer, from_peer;
	uint8_t buf[PROXY_MAX_DATAGRAM];
};

static bool from_wg(const struct proxy *p, const struct sockaddr_in *src, socklen_t len)
{
	return len == sizeof(*src) && src->sin_family == AF_INET && p->wg.sin_port &&
	       src->sin_port == p->wg.sin_port && src->sin_addr.s_addr == p->wg.sin_addr.s_addr;
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer data)
{
	struct proxy *p = data;

	for (int i = 0; i < PROXY_BURST; i++) {
		struct sockaddr_in src;
		socklen_t sl = sizeof(src);
		ssize_t n = recvfrom(fd, p->buf, sizeof(p->buf), MSG_DONTWAIT, (struct sockaddr *)&src,
				     &sl);

		if (n < 0)
			break; /* EAGAIN, or an ICMP error from WireGuard's port: nothing to do */
		if (!from_wg(p, &src, sl))
			continue;
		p->to_peer += (uint64_t)n;
		p->on_wg_datagram(p->data, p->buf, (size_t)n);
	}
	return G_SOURCE_CONTINUE;
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
	p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		goto fail_errno;
	p->ep.sin_family = AF_INET;
	p->ep.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(p->fd, (struct sockaddr *)&p->ep, sizeof(p->ep)) < 0 ||
	    getsockname(p->fd, (struct sockaddr *)&p->ep, &sl) < 0)
		goto fail_errno;
	p->wg.sin_family = AF_INET;
	p->wg.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
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
	if (p->fd >= 0)
		close(p->fd);
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

int proxy_to_wg(struct proxy *p, const uint8_t *buf, size_t len)
{
	if (!p->wg.sin_port)
		return -ENOTCONN;
	if (sendto(p->fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&p->wg, sizeof(p->wg)) < 0)
		return -errno;
	p->from_peer += len;
	return 0;
}

void proxy_counters(const struct proxy *p, uint64_t *ret_to_peer, uint64_t *ret_from_peer)
{
	*ret_to_peer = p->to_peer;
	*ret_from_peer = p->from_peer;
}
