/* SPDX-License-Identifier: MIT */
/*
 * Sending: the tx thread (TUN -> UDP) and the control thread's handshake and keepalive sends.
 *
 * The tx thread reads one packet (often a 64 KiB TSO superpacket) from TUN, routes it once,
 * cuts it into MTU-sized segments straight into the send buffer at the slot each datagram
 * will occupy, encrypts every slot in place, and hands runs of equal-sized datagrams to the
 * kernel as one UDP GSO message; sendmmsg flushes many messages per system call.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util/log.h"
#include "wg/crypto.h"
#include "wg/device.h"
#include "wg/icmp.h"
#include "wg/offload.h"
#include "wg/timers.h"
#include "wg/udp.h"

#define TX_READ_BUF	  (OFFLOAD_VNET_HDR_LEN + WG_MAX_PACKET)
#define TX_SEND_BUF	  (512 * 1024)
#define TX_MAX_MSGS	  64
#define TX_MAX_SEGS	  512
#define UDP_GSO_MAX_SEGS  64	/* the kernel's UDP_MAX_SEGMENTS on older kernels */
#define UDP_GSO_MAX_BYTES 65000 /* below the largest UDP payload over IPv4 */

struct tx_state {
	struct wg_device *dev;
	uint8_t *rbuf;
	uint8_t *sbuf;
	size_t sused;
	unsigned int n;
	int family; /* of the messages in the batch */
	struct mmsghdr msgs[TX_MAX_MSGS];
	struct iovec iov[TX_MAX_MSGS];
	struct wg_endpoint eps[TX_MAX_MSGS];
	uint16_t segs[TX_MAX_MSGS]; /* UDP GSO segment size, 0: one datagram */
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t)) + UDP_PKTINFO_SPACE];
		struct cmsghdr align;
	} cmsg[TX_MAX_MSGS];
	/*
	 * A peer's endpoint whose local address the kernel refused while the same datagram went
	 * out without it (the address is gone): tx_packet forgets it for the peer. stripped: the
	 * message (index + 1) being retried without its source, 0: none.
	 */
	struct wg_endpoint stale_src, stripped_ep;
	unsigned int stripped;
	bool has_stale_src;
	size_t seg_lens[TX_MAX_SEGS];
	struct wgcrypto_data_ctx cipher;
	struct icmp_ratelimit icmp_rl;
	uint8_t icmp[OFFLOAD_VNET_HDR_LEN + ICMP_ERR_MAX_LEN]; /* vnet header, then the error */
};

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static bool keypair_usable(const struct noise_keypair *kp, uint64_t now)
{
	return kp && now - kp->birthdate_ns < WG_REJECT_AFTER_TIME * NSEC_PER_SEC &&
	       atomic_load_explicit(&kp->send_counter, memory_order_relaxed) <
		       WG_REJECT_AFTER_MESSAGES;
}

/* The session to send with: current, unless the peer already confirmed "next" (see
 * noise_keypair.confirmed) and the control thread has not rotated it in yet. */
static struct noise_keypair *send_keypair(const struct wg_peer *peer)
{
	struct noise_keypair *next = peer->keypairs.next;

	if (next && atomic_load_explicit(&next->confirmed, memory_order_acquire))
		return next;
	return peer->keypairs.current;
}

/* Paper 6.2: the initiator of the current session renews it before it gets old. */
static void keep_key_fresh(struct wg_peer *peer, const struct noise_keypair *kp, uint64_t now)
{
	if (kp->i_am_initiator && (atomic_load_explicit(&kp->send_counter, memory_order_relaxed) >
					   WG_REKEY_AFTER_MESSAGES ||
				   now - kp->birthdate_ns > WG_REKEY_AFTER_TIME * NSEC_PER_SEC))
		peer_request(peer, PEER_REQ_HANDSHAKE);
}

static int socket_for(const struct wg_device *dev, int family)
{
	return family == AF_INET6 ? dev->udp6 : dev->udp4;
}

/*
 * The control messages of a datagram to ep: its source address (udp_pktinfo_put) unless
 * no_src, and the GSO segment size unless 0. Sets h's msg_control.
 */
static void put_control(struct msghdr *h, void *buf, const struct wg_endpoint *ep, bool no_src,
			uint16_t seg)
{
	struct cmsghdr *cm;
	size_t used = 0;

	h->msg_control = buf;
	h->msg_controllen = CMSG_SPACE(sizeof(uint16_t)) + UDP_PKTINFO_SPACE;
	cm = CMSG_FIRSTHDR(h);
	if (!no_src && (used = udp_pktinfo_put(cm, ep)))
		cm = (struct cmsghdr *)((char *)cm + used);
	if (seg) {
		cm->cmsg_level = SOL_UDP;
		cm->cmsg_type = UDP_SEGMENT;
		cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
		memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
		used += CMSG_SPACE(sizeof(uint16_t));
	}
	h->msg_controllen = used;
	if (!used)
		h->msg_control = NULL;
}

/*
 * What the kernel says to a source address that is no longer ours: EINVAL (IPv6),
 * ENETUNREACH (IPv4: no route from a non-local source). Either can mean something else, so
 * the datagram is retried without the source, and the source is forgotten only if that works.
 */
static bool src_refused(int err, const struct wg_endpoint *ep)
{
	return (err == EINVAL || err == EADDRNOTAVAIL || err == ENETUNREACH) &&
	       endpoint_has_src(ep);
}

/* One datagram from ep's source address (or routing's, if that is gone: *ret_src_gone). */
static int send_one(int fd, const struct wg_endpoint *ep, const void *buf, size_t len,
		    bool *ret_src_gone)
{
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t)) + UDP_PKTINFO_SPACE];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr h = {
		.msg_name = (void *)&ep->sa,
		.msg_namelen = endpoint_len(ep),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};

	put_control(&h, control.buf, ep, false, 0);
	if (sendmsg(fd, &h, 0) >= 0)
		return 0;
	if (!src_refused(errno, ep))
		return -errno;
	put_control(&h, control.buf, ep, true, 0);
	if (sendmsg(fd, &h, 0) < 0)
		return -errno;
	if (ret_src_gone)
		*ret_src_gone = true;
	return 0;
}

int send_datagram(struct wg_device *dev, const struct wg_endpoint *ep, const void *buf, size_t len,
		  bool *ret_src_gone)
{
	int fd = socket_for(dev, ep->sa.sa_family);

	if (fd < 0)
		return -ENETUNREACH;
	return send_one(fd, ep, buf, len, ret_src_gone);
}

/* Encrypts one plaintext packet at p + 16 (room for padding and tag after it) into a data
 * message in place; returns the datagram length. */
static size_t seal_one(struct wgcrypto_data_ctx *c, const struct noise_keypair *kp,
		       uint64_t counter, uint8_t *p, size_t len, size_t mtu)
{
	struct wg_message_data *m = (struct wg_message_data *)p;
	size_t padded = wg_padded_len(len, mtu);

	memset(m->encrypted_data + len, 0, padded - len);
	m->header.type = htole32(WG_MSG_DATA);
	m->key_idx = htole32(kp->remote_index);
	m->counter = htole64(counter);
	wgcrypto_data_seal(c, kp->id, kp->send_key, counter, m->encrypted_data, padded);
	return WG_DATA_OVERHEAD + padded;
}

static void tx_flush(struct tx_state *tx)
{
	struct wg_device *dev = tx->dev;
	int fd = socket_for(dev, tx->family);
	unsigned int done = 0;

	while (done < tx->n && fd >= 0) {
		int r = sendmmsg(fd, tx->msgs + done, tx->n - done, 0);

		if (r > 0) {
			done += (unsigned int)r;
			if (tx->stripped && tx->stripped <= done) {
				/* Sent without its source: that address is gone. */
				tx->stale_src = tx->stripped_ep;
				tx->has_stale_src = true;
				tx->stripped = 0;
			}
			continue;
		}
		if (errno == EINTR)
			continue;
		tx->stripped = 0;
		if (src_refused(errno, &tx->eps[done])) {
			tx->stripped_ep = tx->eps[done];
			tx->stripped = done + 1;
			memset(&tx->eps[done].src6, 0, sizeof(tx->eps[done].src6));
			put_control(&tx->msgs[done].msg_hdr, tx->cmsg[done].buf, &tx->eps[done],
				    true, tx->segs[done]);
			continue;
		}
		if ((errno == EIO || errno == EINVAL) && dev->udp_gso) {
			/* The route's device cannot segment: fall back to one datagram a call for
			 * good and resend what is left that way. */
			log_warn("%s: UDP GSO refused (%s), sending without it", dev->name,
				 strerror(errno));
			dev->udp_gso = false;
		}
		/* Drop the message the kernel refused (unreachable, buffer full) and go on. */
		if (tx->segs[done]) {
			size_t seg = tx->segs[done], left = tx->iov[done].iov_len;

			for (uint8_t *q = tx->iov[done].iov_base; left && !dev->udp_gso;) {
				size_t l = left < seg ? left : seg;

				send_one(fd, &tx->eps[done], q, l, NULL);
				q += l;
				left -= l;
			}
		}
		done++;
	}
	tx->n = 0;
	tx->sused = 0;
	tx->stripped = 0;
}

static void tx_queue(struct tx_state *tx, const struct wg_endpoint *ep, uint8_t *p, size_t len,
		     size_t seg)
{
	struct msghdr *h;

	if (tx->n && (tx->n == TX_MAX_MSGS || tx->family != ep->sa.sa_family))
		tx_flush(tx);
	tx->family = ep->sa.sa_family;
	tx->eps[tx->n] = *ep;
	tx->iov[tx->n] = (struct iovec){.iov_base = p, .iov_len = len};
	h = &tx->msgs[tx->n].msg_hdr;
	memset(h, 0, sizeof(*h));
	h->msg_name = &tx->eps[tx->n].sa;
	h->msg_namelen = endpoint_len(ep);
	h->msg_iov = &tx->iov[tx->n];
	h->msg_iovlen = 1;
	tx->segs[tx->n] = seg && seg < len ? (uint16_t)seg : 0;
	put_control(h, tx->cmsg[tx->n].buf, ep, false, tx->segs[tx->n]);
	tx->n++;
}

/* Queues n datagrams laid out at base with the given stride (the last may be shorter):
 * runs of full-stride datagrams go out as single GSO messages. */
static void tx_queue_run(struct tx_state *tx, const struct wg_endpoint *ep, uint8_t *base,
			 const size_t *dlen, size_t n, size_t stride)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i, bytes = 0;

		if (tx->dev->udp_gso) {
			/* A GSO message: full-size datagrams, then optionally one shorter. */
			while (j < n && j - i < UDP_GSO_MAX_SEGS &&
			       bytes + dlen[j] <= UDP_GSO_MAX_BYTES) {
				bytes += dlen[j];
				j++;
				if (dlen[j - 1] != stride)
					break;
			}
		} else {
			bytes = dlen[j++];
		}
		tx_queue(tx, ep, base + i * stride, bytes, j - i > 1 ? stride : 0);
		i = j;
	}
}

static const uint8_t *ip_dst(const uint8_t *pkt, size_t len, int *family)
{
	if (len >= 20 && pkt[0] >> 4 == 4) {
		*family = AF_INET;
		return pkt + 16;
	}
	if (len >= 40 && pkt[0] >> 4 == 6) {
		*family = AF_INET6;
		return pkt + 24;
	}
	return NULL;
}

/*
 * A packet we cannot send (no peer for its destination, or the peer has no endpoint) is
 * answered as the Linux driver's wg_xmit answers it: an ICMP "unreachable" back to the sender,
 * so ping says so and a connect fails at once instead of timing out.
 */
static void tx_unreachable(struct tx_state *tx, const uint8_t *pkt, size_t len, uint64_t now)
{
	int n = icmp_build_unreachable(pkt, len, tx->icmp + OFFLOAD_VNET_HDR_LEN, ICMP_ERR_MAX_LEN);

	if (n < 0 || !icmp_ratelimit_allow(&tx->icmp_rl, now))
		return;
	/* A plain packet: no offloads, and the kernel verifies our checksums itself. */
	memset(tx->icmp, 0, OFFLOAD_VNET_HDR_LEN);
	if (write(tx->dev->tun_fd, tx->icmp, OFFLOAD_VNET_HDR_LEN + (size_t)n) < 0)
		atomic_fetch_add_explicit(&tx->dev->dropped_invalid, 1, memory_order_relaxed);
}

static void tx_packet(struct tx_state *tx, const uint8_t *frame, size_t flen, uint64_t now)
{
	struct wg_device *dev = tx->dev;
	const struct virtio_net_hdr *vh = (const struct virtio_net_hdr *)frame;
	const uint8_t *pkt = frame + OFFLOAD_VNET_HDR_LEN, *dst;
	size_t len = flen - OFFLOAD_VNET_HDR_LEN, mtu = (size_t)atomic_load(&dev->mtu);
	size_t stride, room, total = 0;
	struct noise_keypair *kp;
	struct wg_endpoint ep;
	struct wg_peer *peer;
	uint64_t counter;
	int family, n, seglen;

	dst = ip_dst(pkt, len, &family);
	if (!dst)
		return;
	peer = allowedips_lookup(&dev->allowedips, family, dst);
	if (!peer) {
		atomic_fetch_add_explicit(&dev->dropped_no_peer, 1, memory_order_relaxed);
		tx_unreachable(tx, pkt, len, now);
		return;
	}
	/* As the Linux driver: with no endpoint at all, nothing to stage for; only a missing
	 * session is waited for. */
	if (!peer_get_endpoint(peer, &ep)) {
		atomic_fetch_add_explicit(&dev->dropped_no_endpoint, 1, memory_order_relaxed);
		tx_unreachable(tx, pkt, len, now);
		return;
	}
	seglen = offload_segment_len(vh, pkt, len);
	if (seglen <= 0)
		return;
	stride = WG_DATA_OVERHEAD +
		 wg_padded_len((size_t)seglen, mtu > (size_t)seglen ? mtu : (size_t)seglen);
	for (;;) {
		room = (TX_SEND_BUF - tx->sused) / stride;
		if (room > TX_MAX_SEGS)
			room = TX_MAX_SEGS;
		n = offload_segment(vh, pkt, len, (size_t)seglen,
				    tx->sbuf + tx->sused + WG_DATA_HEADER_LEN, stride, room,
				    tx->seg_lens);
		if (n != -EMSGSIZE || !tx->n)
			break;
		tx_flush(tx); /* not enough room left in the batch: send it and retry */
	}
	if (n <= 0)
		return;

	kp = send_keypair(peer);
	if (!keypair_usable(kp, now)) {
		for (int i = 0; i < n; i++)
			peer_stage_packet(peer,
					  tx->sbuf + tx->sused + WG_DATA_HEADER_LEN + i * stride,
					  tx->seg_lens[i]);
		peer_request(peer, PEER_REQ_HANDSHAKE);
		return;
	}
	if (tx->has_stale_src && endpoint_equal(&ep, &tx->stale_src)) {
		peer_clear_src(peer, &ep);
		memset(&ep.src6, 0, sizeof(ep.src6));
		tx->has_stale_src = false;
	}
	counter = atomic_fetch_add_explicit(&kp->send_counter, (uint64_t)n, memory_order_relaxed);
	if (counter + (uint64_t)n >= WG_REJECT_AFTER_MESSAGES) {
		peer_request(peer, PEER_REQ_HANDSHAKE);
		return;
	}
	for (int i = 0; i < n; i++) {
		uint8_t *p = tx->sbuf + tx->sused + (size_t)i * stride;

		/* Reuse seg_lens for the datagram lengths. */
		tx->seg_lens[i] =
			seal_one(&tx->cipher, kp, counter + (uint64_t)i, p, tx->seg_lens[i], mtu);
		total += tx->seg_lens[i];
	}
	tx_queue_run(tx, &ep, tx->sbuf + tx->sused, tx->seg_lens, (size_t)n, stride);
	tx->sused += (size_t)n * stride;

	atomic_fetch_add_explicit(&peer->tx_bytes, total, memory_order_relaxed);
	timers_any_authenticated_packet_traversal(peer, now);
	timers_any_authenticated_packet_sent(peer);
	timers_data_sent(peer, now);
	keep_key_fresh(peer, kp, now);
}

void *send_thread(void *arg)
{
	struct wg_device *dev = arg;
	struct tx_state *tx = calloc(1, sizeof(*tx));
	struct pollfd pfd[2];

	if (!tx || wgcrypto_data_ctx_init(&tx->cipher, true))
		goto out;
	tx->dev = dev;
	tx->rbuf = malloc(TX_READ_BUF);
	tx->sbuf = malloc(TX_SEND_BUF);
	if (!tx->rbuf || !tx->sbuf)
		goto out;
	pfd[0] = (struct pollfd){.fd = dev->tun_fd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = dev->stop_fd, .events = POLLIN};

	while (!atomic_load(&dev->stopping)) {
		ssize_t r = read(dev->tun_fd, tx->rbuf, TX_READ_BUF);

		if (r < 0) {
			if (errno == EAGAIN) {
				if (tx->n) {
					pthread_rwlock_rdlock(&dev->lock);
					tx_flush(tx);
					pthread_rwlock_unlock(&dev->lock);
				}
				poll(pfd, 2, -1);
				continue;
			}
			if (errno == EINTR)
				continue;
			log_error("%s: reading the TUN device failed: %s", dev->name,
				  strerror(errno));
			break;
		}
		if ((size_t)r <= OFFLOAD_VNET_HDR_LEN)
			continue;
		pthread_rwlock_rdlock(&dev->lock);
		tx_packet(tx, tx->rbuf, (size_t)r, now_ns());
		pthread_rwlock_unlock(&dev->lock);
	}
out:
	if (tx) {
		wgcrypto_data_ctx_free(&tx->cipher);
		free(tx->rbuf);
		free(tx->sbuf);
		free(tx);
	}
	/* Losing the TUN device ends the interface. */
	if (!atomic_exchange(&dev->stopping, true)) {
		uint64_t one = 1;

		if (write(dev->stop_fd, &one, sizeof(one)) < 0)
			log_error("%s: cannot signal stop: %s", dev->name, strerror(errno));
	}
	return NULL;
}

/* ---- Control thread sends; device write lock held. ---- */

static void send_buffer_to_peer(struct wg_peer *peer, const void *buf, size_t len)
{
	struct wg_endpoint ep;
	bool src_gone = false;

	if (!peer_get_endpoint(peer, &ep))
		return;
	if (send_datagram(peer->dev, &ep, buf, len, &src_gone) == 0)
		atomic_fetch_add_explicit(&peer->tx_bytes, len, memory_order_relaxed);
	if (src_gone)
		peer_clear_src(peer, &ep);
}

void send_handshake_initiation(struct wg_peer *peer, bool is_retry)
{
	struct wg_message_handshake_initiation msg;
	uint64_t now = now_ns();

	if (!is_retry)
		peer->handshake_attempts = 0;
	/* At most one initiation per REKEY_TIMEOUT (paper 6.4). */
	if (atomic_load(&peer->last_sent_handshake) &&
	    now - atomic_load(&peer->last_sent_handshake) < WG_REKEY_TIMEOUT * NSEC_PER_SEC)
		return;
	atomic_store(&peer->last_sent_handshake, now);
	if (noise_create_initiation(peer->dev, peer, &msg))
		return;
	cookie_add_macs(&peer->cookie, (uint8_t *)&msg, sizeof(msg));
	timers_any_authenticated_packet_traversal(peer, now);
	timers_any_authenticated_packet_sent(peer);
	send_buffer_to_peer(peer, &msg, sizeof(msg));
	timers_handshake_initiated(peer, now);
}

void send_handshake_response(struct wg_peer *peer)
{
	struct wg_message_handshake_response msg;
	uint64_t now = now_ns();

	atomic_store(&peer->last_sent_handshake, now);
	if (noise_create_response(peer->dev, peer, &msg))
		return;
	cookie_add_macs(&peer->cookie, (uint8_t *)&msg, sizeof(msg));
	if (noise_begin_session(peer->dev, peer))
		return;
	timers_session_derived(peer, now);
	timers_any_authenticated_packet_traversal(peer, now);
	timers_any_authenticated_packet_sent(peer);
	send_buffer_to_peer(peer, &msg, sizeof(msg));
}

void send_cookie_reply(struct wg_device *dev, const uint8_t *msg, size_t len, uint32_t index,
		       const struct wg_endpoint *src)
{
	struct wg_message_handshake_cookie reply;

	cookie_make_reply(&dev->cookie_checker, &reply, msg, len, index, &src->sa);
	send_datagram(dev, src, &reply, sizeof(reply), NULL);
}

void send_staged(struct wg_peer *peer)
{
	struct wg_device *dev = peer->dev;
	struct noise_keypair *kp = send_keypair(peer);
	size_t mtu = (size_t)atomic_load(&dev->mtu);
	uint64_t now = now_ns();
	bool data = false;
	uint8_t *buf;

	if (!dev->ctrl_cipher.evp && wgcrypto_data_ctx_init(&dev->ctrl_cipher, true))
		return;
	if (!keypair_usable(kp, now)) {
		send_handshake_initiation(peer, false);
		return;
	}
	buf = malloc(WG_DATA_OVERHEAD + WG_MAX_PACKET + WG_MESSAGE_PADDING);
	if (!buf)
		return;
	pthread_mutex_lock(&peer->staged_lock);
	for (unsigned int i = 0; i < peer->n_staged; i++) {
		uint64_t counter = atomic_fetch_add(&kp->send_counter, 1);
		size_t len = peer->staged_len[i];

		memcpy(buf + WG_DATA_HEADER_LEN, peer->staged[i], len);
		len = seal_one(&dev->ctrl_cipher, kp, counter, buf, len, mtu > len ? mtu : len);
		send_buffer_to_peer(peer, buf, len);
		data |= peer->staged_len[i] != 0;
		free(peer->staged[i]);
	}
	peer->n_staged = 0;
	pthread_mutex_unlock(&peer->staged_lock);
	free(buf);
	timers_any_authenticated_packet_traversal(peer, now);
	timers_any_authenticated_packet_sent(peer);
	if (data)
		timers_data_sent(peer, now);
	keep_key_fresh(peer, kp, now);
}

void send_keepalive(struct wg_peer *peer)
{
	pthread_mutex_lock(&peer->staged_lock);
	bool empty = peer->n_staged == 0;
	pthread_mutex_unlock(&peer->staged_lock);

	/* A keepalive is an empty data packet; with packets waiting they serve instead. */
	if (empty)
		peer_stage_packet(peer, NULL, 0);
	send_staged(peer);
}
