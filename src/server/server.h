/* SPDX-License-Identifier: MIT */
/*
 * wice signal: a stateless router of sealed envelopes, keyed by recipient public key, with a
 * gRPC and a WebSocket transport. It can read nothing it routes.
 *
 * Threads: each transport runs its own event loop thread. The router is shared under one
 * mutex. Lock order: router lock, then a subscriber's queue lock; a transport never takes the
 * router lock while it holds a queue lock.
 */
#ifndef WICE_SERVER_H
#define WICE_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "signal/auth.h"
#include "wg/messages.h"

/* Limits per connection; every one is something a client could otherwise exhaust. */
#define SERVER_MAX_FRAME	(ENVELOPE_MAX_SIZE + 1024) /* bytes in one message/frame */
#define SERVER_RATE_PER_SEC	10000 /* publishes per connection per second, sustained */
#define SERVER_RATE_BURST	20000
#define SERVER_SUB_QUEUE_MAX	1024	   /* frames waiting for one slow subscriber */
#define SERVER_SUB_QUEUE_BYTES	(4u << 20) /* and their bytes */
#define SERVER_MAX_SUBS_PER_KEY 8	   /* concurrent subscriptions of one key */
#define SERVER_AUTH_TIMEOUT_MS	10000	   /* to prove a key after connecting (WebSocket) */
#define SERVER_STALL_TIMEOUT_MS 10000	   /* a frame started must finish within this */
#define SERVER_MAX_CONNECTIONS	65536

struct router_sub;

/* What a transport implements for one subscriber. */
struct router_sub_ops {
	/* Queue a copy of an encoded ServerFrame for this subscriber and wake its transport.
	 * Must not block. -ENOBUFS when its queue is full (the frame is dropped and counted). */
	int (*deliver)(struct router_sub *s, const uint8_t *frame, size_t len);
};

struct router_sub {
	const struct router_sub_ops *ops;
	uint8_t key[WG_KEY_LEN];
	uint8_t session_token[32]; /* authorises publishing as key */
	struct router_sub *next;   /* router's chain for this key */
	bool subscribed;
};

struct server_stats {
	_Atomic uint64_t connects, disconnects, published, delivered, no_recipient, queue_full,
		malformed, oversized, forged_sender, bad_proof, rate_limited, stalled,
		publish_streams;
};

struct router;
struct router *router_new(void);
struct router *router_free(struct router *r);
/* Adds s (its key and a fresh session token set by the caller) under its key. -ENOSPC when
 * the key has SERVER_MAX_SUBS_PER_KEY subscriptions already. */
int router_subscribe(struct router *r, struct router_sub *s);
/* Removes s; the key's topic is freed with its last subscriber. Safe if not subscribed. */
void router_unsubscribe(struct router *r, struct router_sub *s);
/* Finds the key a session token was issued to. 0 or -EACCES. Constant time in the token. */
int router_token_key(struct router *r, const uint8_t token[static 32],
		     uint8_t ret_key[static WG_KEY_LEN]);
/* Wraps envelope (encoded Envelope) in a ServerFrame and delivers it to every subscriber of
 * recipient. Returns how many it reached. */
int router_publish(struct router *r, const uint8_t recipient[static WG_KEY_LEN],
		   const uint8_t *envelope, size_t len, struct server_stats *stats);
size_t router_topics(struct router *r);

struct signal_server {
	struct router *router;
	struct auth_server *auth;
	struct server_stats stats;
	unsigned int rate_per_sec, rate_burst; /* SERVER_RATE_* unless set */
	_Atomic bool stopping;
	/* Tests: serve gRPC as a server before PublishStream did (neither the method nor its
	 * announcement); with grpc_announce_anyway, announce it all the same (a server that
	 * answers UNIMPLEMENTED). Never set by wice signal. */
	bool grpc_no_stream, grpc_announce_anyway;
	void *grpc; /* transport state */
	void *ws;
};

/* Token bucket for per-connection rate limits. */
struct rate_limit {
	double tokens;
	uint64_t last_ms;
};
bool rate_limit_take(struct rate_limit *rl, const struct signal_server *s, uint64_t now_ms);

/* Transports. addr is "HOST:PORT" (IPv6 as [ADDR]:PORT). TLS when cert and key are given. */
int server_grpc_start(struct signal_server *s, const char *addr, const char *tls_cert,
		      const char *tls_key);
void server_grpc_stop(struct signal_server *s);
int server_ws_start(struct signal_server *s, const char *addr, const char *tls_cert,
		    const char *tls_key);
void server_ws_stop(struct signal_server *s);

/* Turns off abseil's mutex deadlock detection (absl_tune.cc). */
void absl_tune_for_server(void);

#endif
