/* SPDX-License-Identifier: MIT */
/*
 * Receiving: the rx thread (UDP -> TUN). recvmmsg with UDP GRO brings many datagrams per
 * system call; data messages are decrypted in place, checked against the replay window and
 * cryptokey routing, and coalesced back into TCP superpackets for TUN. Handshake messages
 * are checked for mac1 (and, under load, mac2 and their source's rate limit) here and queued
 * for the control thread.
 *
 * Every check comes before any state changes: a datagram that fails one is dropped and
 * counted, and nothing else is touched (but its source's rate-limit entry: a refused handshake
 * still keeps its source known, or a flood would be forgotten and get a fresh burst).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util/log.h"
#include "wg/crypto.h"
#include "wg/device.h"
#include "wg/offload.h"
#include "wg/timers.h"
#include "wg/udp.h"

#define RX_BATCH    16
#define RX_BUF_SIZE 65536

struct rx_state {
	struct wg_device *dev;
	uint64_t now;
	struct wgcrypto_data_ctx cipher;
	struct offload_gro gro;
	struct mmsghdr msgs[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct wg_endpoint src[RX_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(int)) + UDP_PKTINFO_SPACE];
		struct cmsghdr align;
	} cmsg[RX_BATCH];
	uint8_t *bufs[RX_BATCH];
	/* Roaming: the last endpoint confirmed per batch, to skip the lock in the steady state. */
	struct wg_peer *last_peer;
	struct wg_endpoint last_src;
};

static int tun_write(void *ctx, const struct iovec *iov, int iovcnt)
{
	struct wg_device *dev = ctx;

	if (dev->tun_fd < 0)
		return 0;
	if (writev(dev->tun_fd, iov, iovcnt) < 0) {
		/* The kernel refused one packet (or its queue is full): drop it, go on. */
		atomic_fetch_add_explicit(&dev->dropped_invalid, 1, memory_order_relaxed);
	}
	return 0;
}

static bool under_load(struct wg_device *dev, uint64_t now)
{
	unsigned int queued;

	pthread_mutex_lock(&dev->hs_lock);
	queued = dev->hs_count;
	pthread_mutex_unlock(&dev->hs_lock);
	if (queued >= WG_UNDER_LOAD_THRESHOLD) {
		atomic_store(&dev->under_load_until, now + WG_UNDER_LOAD_AFTER_TIME * NSEC_PER_SEC);
		return true;
	}
	return now < atomic_load(&dev->under_load_until);
}

static void queue_handshake(struct wg_device *dev, const uint8_t *msg, size_t len,
			    const struct wg_endpoint *src)
{
	struct wg_queued_handshake *q;

	pthread_mutex_lock(&dev->hs_lock);
	if (dev->hs_count == WG_MAX_QUEUED_HANDSHAKES) {
		pthread_mutex_unlock(&dev->hs_lock);
		atomic_fetch_add_explicit(&dev->dropped_handshake_queue, 1, memory_order_relaxed);
		return;
	}
	q = &dev->hs_queue[(dev->hs_head + dev->hs_count) % WG_MAX_QUEUED_HANDSHAKES];
	memcpy(q->msg, msg, len);
	q->len = (uint16_t)len;
	q->src = *src;
	dev->hs_count++;
	pthread_mutex_unlock(&dev->hs_lock);
	device_kick_ctrl(dev);
}

static void receive_handshake(struct rx_state *rx, const uint8_t *msg, size_t len, uint32_t type,
			      const struct wg_endpoint *src)
{
	struct wg_device *dev = rx->dev;
	enum cookie_mac_state st;
	bool load;
	uint32_t sender;

	if (type == WG_MSG_HANDSHAKE_COOKIE) {
		queue_handshake(dev, msg, len, src);
		return;
	}
	load = under_load(dev, rx->now);
	st = cookie_validate(&dev->cookie_checker, msg, len, &src->sa, load);
	if (st == COOKIE_INVALID_MAC) {
		atomic_fetch_add_explicit(&dev->dropped_invalid, 1, memory_order_relaxed);
		return;
	}
	if (load && st != COOKIE_VALID_MAC_WITH_COOKIE) {
		/* Both message kinds carry the sender index at offset 4. */
		memcpy(&sender, msg + 4, sizeof(sender));
		send_cookie_reply(dev, msg, len, le32toh(sender), src);
		return;
	}
	/*
	 * A cookie proves the address, not good manners: under load each source also needs a
	 * token (WG_RATELIMIT_*), so one host echoing cookies cannot starve the others. Not
	 * under load nothing is limited, as in the kernel; idle sources are still forgotten.
	 */
	if (!load) {
		ratelimit_expire(&dev->handshake_limit, rx->now);
	} else if (!ratelimit_allow(&dev->handshake_limit, &src->sa, rx->now)) {
		atomic_fetch_add_explicit(&dev->dropped_handshake_ratelimit, 1,
					  memory_order_relaxed);
		return;
	}
	queue_handshake(dev, msg, len, src);
}

/* The inner packet's real length (without padding) and source address, or 0. */
static size_t inner_packet(const uint8_t *p, size_t len, int *family, const uint8_t **saddr)
{
	size_t l;

	if (len >= 20 && p[0] >> 4 == 4) {
		l = (size_t)p[2] << 8 | p[3];
		*family = AF_INET;
		*saddr = p + 12;
		return l >= 20 && l <= len ? l : 0;
	}
	if (len >= 40 && p[0] >> 4 == 6) {
		l = 40 + ((size_t)p[4] << 8 | p[5]);
		*family = AF_INET6;
		*saddr = p + 8;
		return l <= len ? l : 0;
	}
	return 0;
}

static void roam(struct rx_state *rx, struct wg_peer *peer, const struct wg_endpoint *src)
{
	if (rx->last_peer == peer && endpoint_equal(&rx->last_src, src))
		return;
	pthread_mutex_lock(&peer->endpoint_lock);
	if (!endpoint_equal(&peer->endpoint, src))
		peer->endpoint = *src; /* paper 2.1: the endpoint follows authenticated packets */
	pthread_mutex_unlock(&peer->endpoint_lock);
	rx->last_peer = peer;
	rx->last_src = *src;
}

static void receive_data(struct rx_state *rx, uint8_t *buf, size_t len,
			 const struct wg_endpoint *src)
{
	struct wg_device *dev = rx->dev;
	const struct wg_message_data *m = (const struct wg_message_data *)buf;
	struct wg_index_entry *e;
	struct noise_keypair *kp;
	struct wg_peer *peer;
	const uint8_t *saddr;
	uint64_t counter;
	size_t plen;
	int family;

	e = index_lookup(&dev->index, le32toh(m->key_idx), INDEX_KEYPAIR);
	if (!e)
		goto invalid;
	kp = (struct noise_keypair *)((uint8_t *)e - offsetof(struct noise_keypair, entry));
	counter = le64toh(m->counter);
	if (rx->now - kp->birthdate_ns >= WG_REJECT_AFTER_TIME * NSEC_PER_SEC ||
	    counter >= WG_REJECT_AFTER_MESSAGES)
		goto invalid;
	if (wgcrypto_data_open(&rx->cipher, kp->id, kp->recv_key, counter, buf + WG_DATA_HEADER_LEN,
			       len - WG_DATA_HEADER_LEN))
		goto invalid;
	if (!replay_check_and_update(&kp->recv_window, counter)) {
		atomic_fetch_add_explicit(&dev->dropped_replay, 1, memory_order_relaxed);
		return;
	}

	peer = kp->peer;
	if (kp == peer->keypairs.next) {
		atomic_store(&kp->confirmed, true);
		atomic_store(&peer->confirm_keypair_id, kp->id);
		peer_request(peer, PEER_REQ_CONFIRM);
	}
	roam(rx, peer, src);
	atomic_fetch_add_explicit(&peer->rx_bytes, len, memory_order_relaxed);
	timers_any_authenticated_packet_received(peer);
	timers_any_authenticated_packet_traversal(peer, rx->now);
	/* Paper 6.2: the initiator renews a session nearing REJECT_AFTER_TIME on receive too. */
	if (kp == peer->keypairs.current && kp->i_am_initiator &&
	    rx->now - kp->birthdate_ns >
		    (WG_REJECT_AFTER_TIME - WG_KEEPALIVE_TIMEOUT - WG_REKEY_TIMEOUT) *
			    NSEC_PER_SEC &&
	    !atomic_exchange(&peer->sent_lastminute_handshake, true))
		peer_request(peer, PEER_REQ_HANDSHAKE);

	plen = len - WG_DATA_OVERHEAD;
	if (!plen)
		return; /* keepalive */
	timers_data_received(peer, rx->now);
	buf += WG_DATA_HEADER_LEN;
	plen = inner_packet(buf, plen, &family, &saddr);
	/* Cryptokey routing: the inner source must be one of this peer's allowed IPs. */
	if (!plen || allowedips_lookup(&dev->allowedips, family, saddr) != peer)
		goto invalid;
	offload_gro_add(&rx->gro, buf, plen, tun_write, dev);
	return;
invalid:
	atomic_fetch_add_explicit(&dev->dropped_invalid, 1, memory_order_relaxed);
}

static void receive_datagram(struct rx_state *rx, uint8_t *buf, size_t len,
			     const struct wg_endpoint *src)
{
	uint32_t type;

	if (len < sizeof(type))
		goto invalid;
	memcpy(&type, buf, sizeof(type));
	type = le32toh(type); /* the three reserved bytes must be zero: part of the type */
	switch (type) {
	case WG_MSG_DATA:
		if (len < WG_DATA_MIN_LEN)
			goto invalid;
		receive_data(rx, buf, len, src);
		return;
	case WG_MSG_HANDSHAKE_INITIATION:
		if (len != sizeof(struct wg_message_handshake_initiation))
			goto invalid;
		break;
	case WG_MSG_HANDSHAKE_RESPONSE:
		if (len != sizeof(struct wg_message_handshake_response))
			goto invalid;
		break;
	case WG_MSG_HANDSHAKE_COOKIE:
		if (len != sizeof(struct wg_message_handshake_cookie))
			goto invalid;
		break;
	default:
		goto invalid;
	}
	receive_handshake(rx, buf, len, type, src);
	return;
invalid:
	atomic_fetch_add_explicit(&rx->dev->dropped_invalid, 1, memory_order_relaxed);
}

static int rx_state_init(struct rx_state *rx, struct wg_device *dev)
{
	rx->dev = dev;
	offload_gro_init(&rx->gro);
	return wgcrypto_data_ctx_init(&rx->cipher, false);
}

void receive_one(struct wg_device *dev, uint8_t *buf, size_t len, const struct wg_endpoint *src)
{
	static __thread struct rx_state *rx;

	if (!rx) {
		rx = calloc(1, sizeof(*rx));
		if (!rx || rx_state_init(rx, dev)) {
			free(rx);
			rx = NULL;
			return;
		}
	}
	rx->dev = dev;
	rx->now = now_ns();
	rx->last_peer = NULL;
	pthread_rwlock_rdlock(&dev->lock);
	receive_datagram(rx, buf, len, src);
	offload_gro_flush(&rx->gro, tun_write, dev);
	pthread_rwlock_unlock(&dev->lock);
}

static int gro_size(const struct msghdr *h, size_t len)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR((struct msghdr *)h, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
			int v;

			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			if (v > 0)
				return v;
		}
	}
	return (int)len;
}

static void rx_prepare(struct rx_state *rx)
{
	for (int i = 0; i < RX_BATCH; i++) {
		struct msghdr *h = &rx->msgs[i].msg_hdr;

		rx->iov[i] = (struct iovec){.iov_base = rx->bufs[i], .iov_len = RX_BUF_SIZE};
		*h = (struct msghdr){
			.msg_name = &rx->src[i].sa,
			.msg_namelen = sizeof(rx->src[i].in6),
			.msg_iov = &rx->iov[i],
			.msg_iovlen = 1,
			.msg_control = rx->cmsg[i].buf,
			.msg_controllen = sizeof(rx->cmsg[i].buf),
		};
	}
}

/* One recvmmsg on fd; returns datagrams processed, 0 when none are waiting, -1 on error. */
static int rx_batch(struct rx_state *rx, int fd)
{
	struct wg_device *dev = rx->dev;
	int n;

	rx_prepare(rx);
	n = recvmmsg(fd, rx->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	rx->now = now_ns();
	rx->last_peer = NULL;
	pthread_rwlock_rdlock(&dev->lock);
	for (int i = 0; i < n; i++) {
		struct msghdr *h = &rx->msgs[i].msg_hdr;
		size_t len = rx->msgs[i].msg_len;
		size_t seg = (size_t)gro_size(h, len);

		if (h->msg_flags & MSG_TRUNC)
			continue;
		udp_pktinfo_get(h, &rx->src[i]);
		for (size_t off = 0; off < len; off += seg)
			receive_datagram(rx, rx->bufs[i] + off, len - off < seg ? len - off : seg,
					 &rx->src[i]);
	}
	offload_gro_flush(&rx->gro, tun_write, dev);
	pthread_rwlock_unlock(&dev->lock);
	return n;
}

void *receive_thread(void *arg)
{
	struct wg_device *dev = arg;
	struct rx_state *rx = calloc(1, sizeof(*rx));

	if (!rx || rx_state_init(rx, dev))
		goto out;
	for (int i = 0; i < RX_BATCH; i++)
		if (!(rx->bufs[i] = malloc(RX_BUF_SIZE)))
			goto out;

	while (!atomic_load(&dev->stopping)) {
		struct pollfd pfd[4];
		int fds[2], got = 0;

		pthread_rwlock_rdlock(&dev->lock);
		fds[0] = dev->udp4;
		fds[1] = dev->udp6;
		pthread_rwlock_unlock(&dev->lock);
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0 && rx_batch(rx, fds[i]) > 0)
				got = 1;
		if (got)
			continue;
		pfd[0] = (struct pollfd){.fd = fds[0], .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = fds[1], .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = dev->rx_kick, .events = POLLIN};
		pfd[3] = (struct pollfd){.fd = dev->stop_fd, .events = POLLIN};
		if (poll(pfd, 4, -1) > 0 && (pfd[2].revents & POLLIN)) {
			uint64_t v;

			if (read(dev->rx_kick, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
		}
	}
out:
	if (rx) {
		for (int i = 0; i < RX_BATCH; i++)
			free(rx->bufs[i]);
		wgcrypto_data_ctx_free(&rx->cipher);
		free(rx);
	}
	return NULL;
}
