/* SPDX-License-Identifier: MIT */
/*
 * In-process harness for the WireGuard core: devices without TUN and without threads, bound to
 * real UDP sockets on the loopback. The test plays the threads: h_pump() runs each device's
 * control work (ctrl_run_once), reads what the devices sent from their sockets and hands each
 * datagram to the receiving device (receive_one), until nothing moves.
 *
 * Every datagram delivered is logged (h_log) so tests can capture and replay real messages;
 * h_hook may inspect or drop each datagram before delivery.
 */
#ifndef WICE_TESTS_HARNESS_H
#define WICE_TESTS_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "util/key.h"
#include "wg/crypto.h"
#include "wg/device.h"
#include "wg/uapi.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))
#endif

#define H_MAX_DATAGRAM 2048
#define H_LOG_SIZE     256
#define H_IDLE_WAIT_MS 20

struct hdev {
	struct wg_device *dev;
	uint8_t priv[WG_KEY_LEN];
	uint8_t pub[WG_KEY_LEN];
	struct wg_endpoint addr; /* 127.0.0.1 and the bound port: where peers reach it */
};

struct h_datagram {
	struct hdev *to;
	struct wg_endpoint src;
	size_t len;
	uint8_t msg[H_MAX_DATAGRAM];
};

/* Everything h_pump delivered (or dropped by the hook), oldest first; wraps at H_LOG_SIZE. */
static struct h_datagram h_log[H_LOG_SIZE];
static unsigned int h_log_n;

/* Called for each datagram before delivery; false drops it. NULL delivers everything. */
static bool (*h_hook)(struct h_datagram *d, void *ctx);
static void *h_hook_ctx;

static inline uint32_t h_type(const uint8_t *msg, size_t len)
{
	uint32_t t = 0;

	if (len >= sizeof(t))
		memcpy(&t, msg, sizeof(t));
	return le32toh(t);
}

static inline void h_log_reset(void)
{
	h_log_n = 0;
}

/* The n-th (0: first) logged datagram of the given type sent to `to` (NULL: to anyone). */
static inline struct h_datagram *h_log_find(struct hdev *to, uint32_t type, unsigned int n)
{
	unsigned int first = h_log_n > H_LOG_SIZE ? h_log_n - H_LOG_SIZE : 0;

	for (unsigned int i = first; i < h_log_n; i++) {
		struct h_datagram *d = &h_log[i % H_LOG_SIZE];

		if ((!to || d->to == to) && h_type(d->msg, d->len) == type && !n--)
			return d;
	}
	return NULL;
}

static inline unsigned int h_log_count(struct hdev *to, uint32_t type)
{
	unsigned int n = 0;

	while (h_log_find(to, type, n))
		n++;
	return n;
}

static inline void h_endpoint4(struct wg_endpoint *ep, const char *ip, uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	ep->in4.sin_family = AF_INET;
	ep->in4.sin_port = htons(port);
	inet_pton(AF_INET, ip, &ep->in4.sin_addr);
}

/*
 * Devices still alive, so a failed assertion (which longjmps out of the test) does not leak
 * them: use h_teardown as every test's teardown.
 */
static struct wg_device *h_devs[16];

static inline struct wg_device *h_track(struct wg_device *dev)
{
	for (size_t i = 0; i < ARRAY_SIZE(h_devs); i++)
		if (!h_devs[i]) {
			h_devs[i] = dev;
			return dev;
		}
	abort();
}

static inline void h_device_free(struct wg_device *dev)
{
	for (size_t i = 0; i < ARRAY_SIZE(h_devs); i++)
		if (h_devs[i] == dev)
			h_devs[i] = NULL;
	device_free(dev);
}

static inline int h_teardown(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(h_devs); i++)
		if (h_devs[i]) {
			device_free(h_devs[i]);
			h_devs[i] = NULL;
		}
	h_hook = NULL;
	free(*state);
	*state = NULL;
	return 0;
}

/* A device with a fresh identity (or priv, when given), bound to an ephemeral UDP port. */
static inline int h_dev_new_with_key(struct hdev *h, const char *name, const uint8_t *priv)
{
	int r, off = 0;

	memset(h, 0, sizeof(*h));
	if (priv)
		memcpy(h->priv, priv, WG_KEY_LEN);
	else if ((r = key_generate_private(h->priv)))
		return r;
	key_clamp(h->priv);
	if ((r = key_public_from_private(h->pub, h->priv)))
		return r;
	if ((r = device_new(name, -1, &h->dev)))
		return r;
	h_track(h->dev);
	pthread_rwlock_wrlock(&h->dev->lock);
	r = device_set_private_key(h->dev, h->priv);
	if (!r)
		r = device_bind(h->dev, 0);
	pthread_rwlock_unlock(&h->dev->lock);
	if (r) {
		h_device_free(h->dev);
		h->dev = NULL;
		return r;
	}
	/* One datagram per read: the control thread never sends GSO batches anyway. */
	setsockopt(h->dev->udp4, SOL_UDP, UDP_GRO, &off, sizeof(off));
	h_endpoint4(&h->addr, "127.0.0.1", h->dev->listen_port);
	return 0;
}

static inline int h_dev_new(struct hdev *h, const char *name)
{
	return h_dev_new_with_key(h, name, NULL);
}

static inline void h_dev_free(struct hdev *h)
{
	h_device_free(h->dev);
	h->dev = NULL;
}

/* Runs a UAPI request; returns its result and, when resp is given, the response text. */
static inline int h_uapi(struct hdev *h, const char *req, char **resp)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	int r;

	if (!out)
		return -ENOMEM;
	r = uapi_request(h->dev, req, strlen(req), out);
	fclose(out);
	if (resp)
		*resp = buf;
	else
		free(buf);
	return r;
}

/* Makes `b` a peer of `a` at b's loopback address; extra is more peer lines ("" for none). */
static inline int h_add_peer(struct hdev *a, const struct hdev *b, const char *allowed_ip,
			     const char *extra)
{
	char hex[2 * WG_KEY_LEN + 1], req[1024];

	key_to_hex(hex, b->pub);
	snprintf(req, sizeof(req),
		 "set=1\npublic_key=%s\nendpoint=127.0.0.1:%u\nallowed_ip=%s\n%s\n", hex,
		 (unsigned int)b->dev->listen_port, allowed_ip, extra);
	return h_uapi(a, req, NULL);
}

static inline struct wg_peer *h_peer(struct hdev *a, const struct hdev *b)
{
	struct wg_peer *p;

	pthread_rwlock_rdlock(&a->dev->lock);
	p = peer_lookup(a->dev, b->pub);
	pthread_rwlock_unlock(&a->dev->lock);
	return p;
}

/*
 * Has a send b an initiation now, as the control thread does when a handshake is due (a
 * PEER_REQ_HANDSHAKE only initiates when there is no usable session), skipping the
 * REKEY_TIMEOUT rate limit.
 */
static inline void h_initiate(struct hdev *a, const struct hdev *b)
{
	struct wg_peer *p = h_peer(a, b);

	pthread_rwlock_wrlock(&a->dev->lock);
	atomic_store(&p->last_sent_handshake, 0);
	send_handshake_initiation(p, false);
	pthread_rwlock_unlock(&a->dev->lock);
}

/* Asks a's control thread for a handshake, as the data path does with no session. */
static inline void h_request_handshake(struct hdev *a, const struct hdev *b)
{
	struct wg_peer *p = h_peer(a, b);

	pthread_rwlock_wrlock(&a->dev->lock);
	atomic_store(&p->last_sent_handshake, 0);
	peer_request(p, PEER_REQ_HANDSHAKE);
	pthread_rwlock_unlock(&a->dev->lock);
}

/* One datagram waiting on fd (IPv4), within timeout_ms; its length or -1. */
static inline ssize_t h_recv_fd(int fd, uint8_t *buf, size_t cap, struct wg_endpoint *src,
				int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	socklen_t sl = sizeof(*src);

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -1;
	memset(src, 0, sizeof(*src));
	return recvfrom(fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC, &src->sa, &sl);
}

static inline ssize_t h_recv(struct hdev *h, uint8_t *buf, size_t cap, struct wg_endpoint *src,
			     int timeout_ms)
{
	return h_recv_fd(h->dev->udp4, buf, cap, src, timeout_ms);
}

/* Throws away whatever waits on h's socket. */
static inline unsigned int h_drain(struct hdev *h)
{
	uint8_t buf[H_MAX_DATAGRAM];
	struct wg_endpoint src;
	unsigned int n = 0;

	while (h_recv(h, buf, sizeof(buf), &src, 0) >= 0)
		n++;
	return n;
}

/* Delivers a copy of msg to h as if it came from src (receive_one decrypts in place). */
static inline void h_deliver(struct hdev *h, const void *msg, size_t len,
			     const struct wg_endpoint *src)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		abort();
	memcpy(copy, msg, len);
	receive_one(h->dev, copy, len, src);
	free(copy);
}

static inline unsigned int h_queued_handshakes(struct hdev *h)
{
	unsigned int n;

	pthread_mutex_lock(&h->dev->hs_lock);
	n = h->dev->hs_count;
	pthread_mutex_unlock(&h->dev->hs_lock);
	return n;
}

/* Moves datagrams between the devices until none are in flight; returns how many moved. */
static inline unsigned int h_pump_n(struct hdev **devs, size_t n)
{
	unsigned int moved = 0;

	for (int round = 0; round < 1000; round++) {
		bool any = false;

		for (size_t i = 0; i < n; i++)
			ctrl_run_once(devs[i]->dev);
		for (int wait = 0; wait < 2 && !any; wait++) {
			for (size_t i = 0; i < n; i++) {
				struct h_datagram *d = &h_log[h_log_n % H_LOG_SIZE];
				ssize_t len;

				len = h_recv(devs[i], d->msg, sizeof(d->msg), &d->src,
					     wait ? H_IDLE_WAIT_MS : 0);
				if (len < 0)
					continue;
				if ((size_t)len > sizeof(d->msg))
					abort(); /* the harness buffer is too small */
				d->to = devs[i];
				d->len = (size_t)len;
				h_log_n++;
				any = true;
				moved++;
				if (!h_hook || h_hook(d, h_hook_ctx))
					h_deliver(devs[i], d->msg, d->len, &d->src);
			}
		}
		for (size_t i = 0; i < n; i++)
			if (h_queued_handshakes(devs[i]))
				any = true;
		if (!any)
			return moved;
	}
	abort(); /* the devices never went quiet */
}

static inline unsigned int h_pump(struct hdev *a, struct hdev *b)
{
	struct hdev *devs[] = {a, b};

	return h_pump_n(devs, ARRAY_SIZE(devs));
}

/* A pair of devices that know each other: a is 10.0.0.1, b is 10.0.0.2. */
static inline int h_pair_new(struct hdev *a, struct hdev *b, const char *a_extra,
			     const char *b_extra)
{
	int r;

	if ((r = h_dev_new(a, "wgtest-a")) || (r = h_dev_new(b, "wgtest-b")))
		return r;
	if ((r = h_add_peer(a, b, "10.0.0.2/32", a_extra)) ||
	    (r = h_add_peer(b, a, "10.0.0.1/32", b_extra)))
		return r;
	return 0;
}

/* cmocka setup: a fresh h_pair_new pair as *state, the log empty, no hook (h_teardown frees). */
struct h_pair {
	struct hdev a, b;
};

static inline int h_pair_setup(void **state)
{
	struct h_pair *p = calloc(1, sizeof(*p));

	*state = p;
	if (!p || h_pair_new(&p->a, &p->b, "", ""))
		return -1; /* cmocka fails the test */
	h_log_reset();
	h_hook = NULL;
	return 0;
}

/* A full handshake initiated by a; both sides end with a confirmed current keypair. */
static inline void h_handshake(struct hdev *a, struct hdev *b)
{
	h_initiate(a, b);
	h_pump(a, b);
}

/* A minimal IPv4 packet from src to dst (UDP, 8 bytes of payload, no checksum). */
static inline size_t h_ipv4_packet(uint8_t *p, const char *src, const char *dst)
{
	memset(p, 0, 36);
	p[0] = 0x45;
	p[3] = 36;
	p[8] = 64;
	p[9] = IPPROTO_UDP;
	inet_pton(AF_INET, src, p + 12);
	inet_pton(AF_INET, dst, p + 16);
	p[21] = 9;
	p[23] = 9;
	p[25] = 16;
	memset(p + 28, 0xab, 8);
	return 36;
}

/* Sends one plaintext packet from a to b over the current session, as the tx path would. */
static inline void h_send_packet(struct hdev *a, const struct hdev *b, const uint8_t *pkt,
				 size_t len)
{
	struct wg_peer *p = h_peer(a, b);

	pthread_rwlock_wrlock(&a->dev->lock);
	peer_stage_packet(p, pkt, len);
	send_staged(p);
	pthread_rwlock_unlock(&a->dev->lock);
}

static inline void h_send_keepalive(struct hdev *a, const struct hdev *b)
{
	struct wg_peer *p = h_peer(a, b);

	pthread_rwlock_wrlock(&a->dev->lock);
	send_keepalive(p);
	pthread_rwlock_unlock(&a->dev->lock);
}

static inline uint64_t h_counter(_Atomic uint64_t *c)
{
	return atomic_load(c);
}

#endif
