/* SPDX-License-Identifier: MIT */
/*
 * A userspace WireGuard interface: a TUN device, UDP sockets, peers, and four threads.
 *
 *   tx:   TUN -> segment (TSO/USO) -> route -> encrypt -> UDP (GSO, sendmmsg)
 *   rx:   UDP (GRO, recvmmsg) -> decrypt -> cryptokey check -> coalesce -> TUN
 *         handshake messages are mac-checked here and queued for the control thread
 *   ctrl: handshakes, cookies, timers; sleeps on an eventfd and a timerfd
 *   uapi: the cross-platform configuration protocol on /var/run/wireguard/NAME.sock
 *
 * The device lock is a writer-preferring rwlock: the data-path threads take the read side for
 * one batch at a time, the control and UAPI threads the write side for any change.
 */
#ifndef WICE_WG_DEVICE_H
#define WICE_WG_DEVICE_H

#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "wg/allowedips.h"
#include "wg/cookie.h"
#include "wg/crypto.h"
#include "wg/index.h"
#include "wg/noise.h"
#include "wg/peer.h"
#include "wg/ratelimit.h"

#define WG_PEER_HASH_BUCKETS 4096

struct wg_queued_handshake {
	uint16_t len;
	struct wg_endpoint src;
	uint8_t msg[sizeof(struct wg_message_handshake_initiation)];
};

struct wg_device {
	char name[IFNAMSIZ];
	pthread_rwlock_t lock;

	struct noise_static_identity identity;
	struct cookie_checker cookie_checker;
	struct allowedips allowedips;
	struct wg_index_table index;
	struct wg_peer *peers_head, *peers_tail;
	struct wg_peer *peer_hash[WG_PEER_HASH_BUCKETS];
	uint64_t peer_hash_seed;
	unsigned int n_peers;

	uint16_t listen_port; /* 0 until bound */
	uint32_t fwmark;
	_Atomic int mtu;

	int tun_fd; /* -1: none (tests and fuzzing) */
	int udp4, udp6;
	bool udp_gso, udp_gro;

	/* Incoming handshake messages for the control thread: a bounded ring. */
	pthread_mutex_t hs_lock;
	unsigned int hs_head, hs_count;
	struct wg_queued_handshake *hs_queue; /* WG_MAX_QUEUED_HANDSHAKES entries */
	_Atomic uint64_t under_load_until;
	/* Per-source handshake buckets under load: the rx thread's alone, so no lock. */
	struct ratelimit handshake_limit;

	int ctrl_kick; /* eventfd: wake the control thread */
	int rx_kick;   /* eventfd: sockets changed, rx thread re-reads them */
	int stop_fd;   /* eventfd: every thread stops */
	_Atomic bool ctrl_kicked;
	_Atomic bool stopping;

	char uapi_path[108];
	int uapi_fd;

	struct wgcrypto_data_ctx ctrl_cipher; /* the control thread's, for keepalives and staged */
	pthread_t tx_thread, rx_thread, ctrl_thread, uapi_thread;
	bool threads_started;

	/* Counters a remote party can drive, for the log and tests. */
	_Atomic uint64_t dropped_invalid, dropped_replay, dropped_handshake_queue, dropped_no_peer,
		dropped_no_endpoint;
	_Atomic uint64_t dropped_handshake_ratelimit; /* under load, its source's bucket empty */
};

/* Creates the device state; tun_fd may be -1 (no interface: tests, fuzzing). */
int device_new(const char *name, int tun_fd, struct wg_device **ret);
void device_free(struct wg_device *dev);
/* Opens the UAPI socket and starts the threads. */
int device_start(struct wg_device *dev);
/* Asks every thread to stop and joins them. */
void device_stop(struct wg_device *dev);
/* Blocks until stop_fd fires or the TUN device goes away. */
void device_wait(struct wg_device *dev);

int device_set_private_key(struct wg_device *dev, const uint8_t key[static WG_KEY_LEN]);
/* (Re)binds the UDP sockets to port (0: any) with the current fwmark. Write lock held. */
int device_bind(struct wg_device *dev, uint16_t port);
int device_set_fwmark(struct wg_device *dev, uint32_t mark);

void device_kick_ctrl(struct wg_device *dev);
uint64_t now_ns(void);

/* Data path entry points (send.c, receive.c) */
void *send_thread(void *arg);
void *receive_thread(void *arg);
void *ctrl_thread(void *arg);

/* Process one datagram as the receive thread would (fuzzing and tests). */
void receive_one(struct wg_device *dev, uint8_t *buf, size_t len, const struct wg_endpoint *src);
/* Run the control thread's queued work once (fuzzing and tests). */
void ctrl_run_once(struct wg_device *dev);

/* Control-thread sends (send.c). Write lock held. */
void send_handshake_initiation(struct wg_peer *peer, bool is_retry);
void send_handshake_response(struct wg_peer *peer);
void send_keepalive(struct wg_peer *peer);
void send_staged(struct wg_peer *peer);
/* From ep's source address; one that is gone (*ret_src_gone, may be NULL): routing's. */
int send_datagram(struct wg_device *dev, const struct wg_endpoint *ep, const void *buf, size_t len,
		  bool *ret_src_gone);
void send_cookie_reply(struct wg_device *dev, const uint8_t *msg, size_t len, uint32_t index,
		       const struct wg_endpoint *src);

#endif
