/* SPDX-License-Identifier: MIT */
/*
 * A WireGuard peer: its keys, handshake, sessions, endpoint, counters and timer inputs.
 *
 * Concurrency: the device lock (read side: data-path threads per batch; write side: control
 * and UAPI) guards the peer's existence, handshake and keypairs. The endpoint has its own
 * lock because the receive path roams it under the read side. Timer inputs are atomics the
 * data path writes and the control thread reads (see timers.h).
 */
#ifndef WICE_WG_PEER_H
#define WICE_WG_PEER_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "wg/cookie.h"
#include "wg/noise.h"

struct wg_device;

struct wg_endpoint {
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	};
	/*
	 * The local address the peer's last packet came to (IP_PKTINFO / IPV6_PKTINFO), and its
	 * interface: what goes to the peer leaves from it, as with the kernel's WireGuard. On a
	 * host with several addresses, routing would pick the source otherwise, and a NAT or
	 * firewall in front of the peer drops replies from an address it did not send to. All
	 * zero: routing picks (an endpoint set through the UAPI, until the peer's first packet).
	 */
	union {
		struct in_addr src4;
		struct in6_addr src6;
	};
	int src_ifindex;
};

static inline socklen_t endpoint_len(const struct wg_endpoint *e)
{
	return e->sa.sa_family == AF_INET6 ? sizeof(e->in6) : sizeof(e->in4);
}
/* Same remote address and port, and the same local address (src). */
bool endpoint_equal(const struct wg_endpoint *a, const struct wg_endpoint *b);
bool endpoint_has_src(const struct wg_endpoint *e);

/* Requests from the data path to the control thread (bits of wg_peer.requests). */
enum {
	PEER_REQ_HANDSHAKE = 1u << 0, /* no usable session, or it is getting old */
	PEER_REQ_CONFIRM = 1u << 1,   /* data arrived on the "next" keypair */
	PEER_REQ_TIMERS = 1u << 2,    /* a timer deadline appeared */
	PEER_REQ_KEEPALIVE = 1u << 3, /* send a keepalive (persistent keepalive was set) */
};

struct wg_peer {
	struct wg_device *dev;
	struct wg_peer *next, *prev; /* device's list, in creation order */
	struct wg_peer *hash_next;   /* device's public-key table */
	uint8_t public_key[WG_KEY_LEN];
	struct noise_handshake handshake;
	struct cookie_maker cookie;
	struct noise_keypairs keypairs;

	pthread_mutex_t endpoint_lock;
	struct wg_endpoint endpoint; /* sa_family AF_UNSPEC: none known */

	uint16_t persistent_keepalive; /* seconds; 0 is off */
	_Atomic uint64_t rx_bytes, tx_bytes;
	_Atomic uint64_t last_handshake_ns; /* CLOCK_REALTIME, 0 never */
	_Atomic unsigned int requests;
	_Atomic uint64_t confirm_keypair_id; /* with PEER_REQ_CONFIRM: which "next" saw data */

	/* Timer deadlines (CLOCK_MONOTONIC ns, 0: not armed); see timers.c. */
	_Atomic uint64_t t_send_keepalive;
	_Atomic bool t_need_another_keepalive;
	_Atomic uint64_t t_new_handshake;
	_Atomic uint64_t t_persistent_keepalive;
	_Atomic bool sent_lastminute_handshake;
	/* Control thread only. */
	uint64_t t_retransmit_handshake;
	uint64_t t_zero_key_material;
	unsigned int handshake_attempts;
	_Atomic uint64_t last_sent_handshake;

	/* Packets waiting for a session; bounded, oldest dropped first. */
	pthread_mutex_t staged_lock;
	unsigned int n_staged;
	uint8_t *staged[WG_MAX_STAGED_PACKETS];
	uint16_t staged_len[WG_MAX_STAGED_PACKETS];
};

int peer_create(struct wg_device *dev, const uint8_t public_key[static WG_KEY_LEN],
		struct wg_peer **ret_peer);
/* Unlinks and frees the peer, its sessions, allowed IPs and staged packets. Write lock held. */
void peer_remove(struct wg_peer *peer);
struct wg_peer *peer_lookup(struct wg_device *dev, const uint8_t public_key[static WG_KEY_LEN]);

void peer_set_endpoint(struct wg_peer *peer, const struct wg_endpoint *ep);
/* Copies the endpoint; false when none is known. */
bool peer_get_endpoint(struct wg_peer *peer, struct wg_endpoint *ep);
/* Sending from stale's local address failed (it is gone): routing picks until the peer's next
 * packet, unless the endpoint changed meanwhile. */
void peer_clear_src(struct wg_peer *peer, const struct wg_endpoint *stale);

/* Staging: copy a plaintext packet to send once a session exists. */
void peer_stage_packet(struct wg_peer *peer, const uint8_t *pkt, size_t len);
void peer_purge_staged(struct wg_peer *peer);

/* Ask the control thread for something; wakes it only when the bit was not already set. */
void peer_request(struct wg_peer *peer, unsigned int req);

#endif
