/* SPDX-License-Identifier: MIT */
/*
 * wice signal's gRPC transport, shared by its two files: grpc.c (call slots, GetChallenge,
 * Publish, the completion queue thread, start and stop) and grpc_sub.c (Subscribe streams).
 * grpc.c's opening comment describes the design. Everything here runs on the completion
 * queue thread, but gsub deliveries (router_sub_ops), which come from any thread.
 */
#ifndef WICE_SERVER_GRPC_INTERNAL_H
#define WICE_SERVER_GRPC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <grpc/grpc.h>
#include <sodium.h>
#include "server/server.h"

/* Calls of one method the server is ready to accept at once; more wait inside gRPC. */
#define GSRV_SLOTS_PUBLISH 64
#define GSRV_SLOTS_OTHER   16
/* HTTP/2 streams per connection: a client needs a Subscribe, a challenge and a few
 * publishes; each open stream may hold up to SERVER_MAX_FRAME of an unfinished message. */
#define GSRV_MAX_STREAMS   16
#define GSRV_KEEPALIVE_MS  30000 /* ping idle connections, drop those that do not answer */
#define GSRV_PING_TIMEOUT  10000
#define GSRV_MIN_PING_MS   5000	  /* clients may ping this often (ours: every 20 s) */
#define GSRV_IDLE_MS	   120000 /* a connection without calls is closed after this */
#define GSRV_PEER_BUCKETS  4096
#define GSRV_PEER_GC_MS	   10000
#define GSRV_PUBLISH_BATCH 64 /* envelopes in one PublishRequest */
/* What Subscribe's initial metadata announces: the server takes PublishStream. A client asks
 * for nothing it was not told of, as a server without the method would hold the call. */
#define GSRV_FEATURES_KEY "wice-features"
#define GSRV_FEATURES	  "publish-stream"

enum gtag_kind {
	T_NEW_CALL,  /* struct rpc: a call arrived (or the server shut down) */
	T_REQUEST,   /* struct rpc: its request message arrived (or did not) */
	T_FINISH,    /* struct rpc: the answer was sent */
	T_SUB_SEND,  /* struct gsub: a SEND_MESSAGE completed */
	T_SUB_CLOSE, /* struct gsub: the call is over */
	T_SHUTDOWN,  /* struct gsrv: the server has shut down */
};

struct gtag {
	enum gtag_kind kind;
};

enum method { M_CHALLENGE, M_SUBSCRIBE, M_PUBLISH, M_PUBLISH_STREAM, M_COUNT, M_UNKNOWN = M_COUNT };

/* Rate limit state of one peer address (one connection: "ipv4:ADDR:PORT"). */
struct peer_rl {
	struct peer_rl *next;
	struct rate_limit rl;
	char addr[];
};

struct gsrv {
	struct signal_server *s;
	grpc_server *server;
	grpc_completion_queue *cq;
	void *methods[M_COUNT];
	pthread_t thread;
	struct gtag shutdown_tag;
	_Atomic bool stopping;
	/* Peer table: only the completion queue thread touches it. */
	uint8_t peer_seed[crypto_shorthash_KEYBYTES];
	struct peer_rl *peers[GSRV_PEER_BUCKETS];
	size_t n_peers;
	uint64_t peer_gc_ms;
	/* Calls whose request (for a PublishStream: next message) is still arriving, oldest
	 * first (all wait the same time). */
	struct rpc *reading_head, *reading_tail;
};

struct rpc {
	struct gtag tag;
	enum method method;
	bool stalled;		   /* cancelled for not finishing its request in time */
	bool no_request;	   /* the request never came: counted once we know why */
	uint32_t delivered;	   /* PublishStream: subscribers reached so far */
	char *peer;		   /* PublishStream: its peer address, for the rate limit */
	grpc_call_details details; /* M_UNKNOWN */
	struct gsrv *g;
	struct rpc *prev, *next; /* reading list, oldest first */
	uint64_t start_ms;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_byte_buffer *reply;
	int cancelled;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* grpc.c: answers the call with a status and, when r->reply is set, one message; frees r once
 * sent. rpc_fail counts the failure in counter (may be NULL) first. rpc_free: at once. */
void rpc_finish(struct rpc *r, grpc_status_code code, const char *why);
void rpc_fail(struct rpc *r, grpc_status_code code, const char *why, _Atomic uint64_t *counter);
void rpc_free(struct rpc *r);

/* grpc_sub.c: a Subscribe call whose request (len bytes at req) has arrived; takes r. */
void gsub_handle(struct gsrv *g, struct rpc *r, const uint8_t *req, size_t len);
/* The completions of a stream's T_SUB_SEND and T_SUB_CLOSE tags. */
void gsub_on_send(struct gtag *send_tag, bool ok);
void gsub_on_close(struct gtag *close_tag);

#endif
