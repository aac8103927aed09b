/* SPDX-License-Identifier: MIT */
/*
 * wice signal over gRPC, with the gRPC C core and no generated code: the four methods of
 * service wice.signaling.Signaling (proto/signaling.proto) are registered by name and their
 * messages are protobuf-c encodings carried in grpc_byte_buffers. Any other method is
 * answered UNIMPLEMENTED (the C core would otherwise hold such a call until the server ends).
 *
 * One thread drives one completion queue. Every tag is a struct gtag inside the object that
 * owns the operation, so a completion finds its object without a lookup. Objects:
 *   struct rpc   a call slot: waits for a new call of one method, answers it (unary, or a
 *                refused Subscribe) and is freed when that answer's batch completes. A
 *                PublishStream keeps its slot for the stream's life: each message is
 *                checked and routed as a unary Publish's request is, and the stream ends
 *                with the status that Publish would have answered;
 *   struct gsub  an accepted Subscribe stream (grpc_sub.c): a router_sub, a bounded queue of
 *                frames and at most one SEND_MESSAGE in flight (gRPC allows only one per call).
 *                It is freed once RECV_CLOSE_ON_SERVER has completed (the client left or the
 *                call was cancelled) and no send is in flight.
 * Deliveries come from any thread (router_publish of either transport) under the router lock;
 * they take only the subscription's lock, as server.h's lock order requires.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <sodium.h>
#include "server/grpc_internal.h"
#include "server/server.h"
#include "signal/envelope.h"
#include "signal/grpc_buf.h"
#include "util/file.h"
#include "util/key.h"
#include "util/log.h"

#define METHOD_CHALLENGE      "/wice.signaling.Signaling/GetChallenge"
#define METHOD_SUBSCRIBE      "/wice.signaling.Signaling/Subscribe"
#define METHOD_PUBLISH	      "/wice.signaling.Signaling/Publish"
#define METHOD_PUBLISH_STREAM "/wice.signaling.Signaling/PublishStream"

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- per-peer rate limits ---- */

static struct peer_rl **peer_find(struct gsrv *g, const char *addr)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;
	struct peer_rl **p;

	crypto_shorthash(h, (const uint8_t *)addr, strlen(addr), g->peer_seed);
	memcpy(&v, h, sizeof(v));
	for (p = &g->peers[v % GSRV_PEER_BUCKETS]; *p; p = &(*p)->next)
		if (!strcmp((*p)->addr, addr))
			break;
	return p;
}

/* An entry whose bucket has refilled to the burst says nothing a fresh one would not: drop
 * those, every GSRV_PEER_GC_MS, so the table only holds recently active peers. */
static void peer_gc(struct gsrv *g, uint64_t now)
{
	double rate = g->s->rate_per_sec ? g->s->rate_per_sec : SERVER_RATE_PER_SEC;
	double burst = g->s->rate_burst ? g->s->rate_burst : SERVER_RATE_BURST;

	g->peer_gc_ms = now;
	for (size_t i = 0; i < GSRV_PEER_BUCKETS; i++) {
		struct peer_rl **p = &g->peers[i];

		while (*p) {
			struct peer_rl *e = *p;

			if (e->rl.tokens + (double)(now - e->rl.last_ms) * rate / 1000.0 >= burst) {
				*p = e->next;
				free(e);
				g->n_peers--;
			} else {
				p = &e->next;
			}
		}
	}
}

static void peer_free_all(struct gsrv *g)
{
	for (size_t i = 0; i < GSRV_PEER_BUCKETS; i++)
		while (g->peers[i]) {
			struct peer_rl *e = g->peers[i];

			g->peers[i] = e->next;
			free(e);
		}
	g->n_peers = 0;
}

/* Takes n publishes (the envelopes of one request) from the rate limit of the connection
 * whose peer address is addr (grpc_call_get_peer); false when over it. */
static bool peer_take(struct gsrv *g, const char *addr, size_t n)
{
	uint64_t now = mono_ms();
	struct peer_rl **p, *e;
	bool ok = false;

	if (!addr)
		return false;
	if (now - g->peer_gc_ms >= GSRV_PEER_GC_MS || g->n_peers >= SERVER_MAX_CONNECTIONS)
		peer_gc(g, now);
	p = peer_find(g, addr);
	e = *p;
	if (!e && g->n_peers < SERVER_MAX_CONNECTIONS) {
		size_t len = strlen(addr) + 1;

		e = calloc(1, sizeof(*e) + len);
		if (e) {
			memcpy(e->addr, addr, len);
			*p = e;
			g->n_peers++;
		}
	}
	if (e) {
		ok = true;
		for (size_t i = 0; i < n && ok; i++)
			ok = rate_limit_take(&e->rl, g->s, now);
	}
	return ok;
}

/* ---- call slots and answers ---- */

void rpc_free(struct rpc *r)
{
	if (r->reply)
		grpc_byte_buffer_destroy(r->reply);
	if (r->payload)
		grpc_byte_buffer_destroy(r->payload);
	grpc_metadata_array_destroy(&r->md);
	if (r->method == M_UNKNOWN)
		grpc_call_details_destroy(&r->details);
	gpr_free(r->peer);
	if (r->call)
		grpc_call_unref(r->call);
	free(r);
}

/* Offers one more slot for method; on failure the server just has one slot fewer. */
static void rpc_request(struct gsrv *g, enum method m)
{
	struct rpc *r = calloc(1, sizeof(*r));
	grpc_call_error e;

	if (!r)
		return;
	r->tag.kind = T_NEW_CALL;
	r->method = m;
	r->g = g;
	grpc_metadata_array_init(&r->md);
	if (m == M_UNKNOWN) {
		grpc_call_details_init(&r->details);
		e = grpc_server_request_call(g->server, &r->call, &r->details, &r->md, g->cq, g->cq,
					     &r->tag);
	} else {
		e = grpc_server_request_registered_call(g->server, g->methods[m], &r->call,
							&r->deadline, &r->md, NULL, g->cq, g->cq,
							&r->tag);
	}
	if (e != GRPC_CALL_OK) {
		log_warn("signal: gRPC: cannot accept calls: %s", grpc_call_error_to_string(e));
		rpc_free(r);
	}
}

/* Answers the call with a status and, when reply is set, one message; frees r once sent. */
void rpc_finish(struct rpc *r, grpc_status_code code, const char *why)
{
	grpc_slice details = grpc_slice_from_static_string(why ? why : "");
	grpc_op ops[4];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (r->reply) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = r->reply;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n++].data.send_status_from_server.status_details = why ? &details : NULL;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &r->cancelled;
	r->tag.kind = T_FINISH;
	if (grpc_call_start_batch(r->call, ops, n, &r->tag, NULL) != GRPC_CALL_OK)
		rpc_free(r);
}

void rpc_fail(struct rpc *r, grpc_status_code code, const char *why, _Atomic uint64_t *counter)
{
	if (counter)
		atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	rpc_finish(r, code, why);
}

/* ---- GetChallenge ---- */

static void handle_challenge(struct gsrv *g, struct rpc *r, const uint8_t *req, size_t len)
{
	Wice__Signaling__ChallengeRequest *cr;
	Wice__Signaling__Challenge ch = WICE__SIGNALING__CHALLENGE__INIT;
	uint8_t server_key[WG_KEY_LEN], nonce[AUTH_NONCE_LEN];

	cr = wice__signaling__challenge_request__unpack(NULL, len, req);
	if (!cr || cr->public_key.len != WG_KEY_LEN) {
		if (cr)
			wice__signaling__challenge_request__free_unpacked(cr, NULL);
		rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "bad ChallengeRequest",
			 &g->s->stats.malformed);
		return;
	}
	auth_server_public_key(g->s->auth, server_key);
	auth_challenge(g->s->auth, cr->public_key.data, envelope_now_ms(), nonce);
	wice__signaling__challenge_request__free_unpacked(cr, NULL);
	ch.server_key.data = server_key;
	ch.server_key.len = sizeof(server_key);
	ch.nonce.data = nonce;
	ch.nonce.len = sizeof(nonce);
	r->reply = grpcbuf_pack(&ch.base);
	rpc_finish(r, GRPC_STATUS_OK, NULL);
}

/* ---- Publish ---- */

/* Checks one envelope of a PublishRequest against the session's key and routes it; returns
 * the gRPC status. */
static grpc_status_code publish_one(struct gsrv *g, const uint8_t owner[static WG_KEY_LEN],
				    const Wice__Signaling__Envelope *env, int *ret_delivered,
				    const char **why)
{
	struct server_stats *st = &g->s->stats;
	uint8_t stackbuf[2048], *buf = stackbuf;
	uint8_t sender[WG_KEY_LEN], recipient[WG_KEY_LEN];
	grpc_status_code code = GRPC_STATUS_OK;
	size_t len;
	int n;

	len = wice__signaling__envelope__get_packed_size(env);
	if (len > ENVELOPE_MAX_SIZE) {
		atomic_fetch_add_explicit(&st->oversized, 1, memory_order_relaxed);
		*why = "envelope too large";
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	if (len > sizeof(stackbuf) && !(buf = malloc(len))) {
		*why = "out of memory";
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	wice__signaling__envelope__pack(env, buf);
	if (envelope_peek(buf, len, sender, recipient) < 0) {
		atomic_fetch_add_explicit(&st->malformed, 1, memory_order_relaxed);
		*why = "bad Envelope";
		code = GRPC_STATUS_INVALID_ARGUMENT;
	} else if (!key_equal(owner, sender)) {
		/* The token binds the sender: nobody publishes as a key they did not prove. */
		atomic_fetch_add_explicit(&st->forged_sender, 1, memory_order_relaxed);
		*why = "sender is not the session's key";
		code = GRPC_STATUS_PERMISSION_DENIED;
	} else {
		n = router_publish(g->s->router, recipient, buf, len, st);
		if (n < 0) {
			*why = "out of memory";
			code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		}
		*ret_delivered += n < 0 ? 0 : n;
	}
	if (buf != stackbuf)
		free(buf);
	return code;
}

/* Checks a decoded PublishRequest (one envelope, or a batch) and routes its envelopes; returns
 * the gRPC status of the first that failed (the rest of the batch is not routed). */
static grpc_status_code publish(struct gsrv *g, const Wice__Signaling__PublishRequest *pr,
				int *ret_delivered, const char **why)
{
	struct server_stats *st = &g->s->stats;
	size_t count = (pr->envelope ? 1 : 0) + pr->n_envelopes;
	uint8_t owner[WG_KEY_LEN];
	grpc_status_code code;

	if (!count || count > GSRV_PUBLISH_BATCH || pr->session_token.len != 32) {
		atomic_fetch_add_explicit(&st->malformed, 1, memory_order_relaxed);
		*why = "bad PublishRequest";
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	/* A token we did not issue, or whose subscription has ended. */
	if (router_token_key(g->s->router, pr->session_token.data, owner) < 0) {
		atomic_fetch_add_explicit(&st->forged_sender, 1, memory_order_relaxed);
		*why = "unknown session";
		return GRPC_STATUS_PERMISSION_DENIED;
	}
	if (pr->envelope && (code = publish_one(g, owner, pr->envelope, ret_delivered, why)))
		return code;
	for (size_t i = 0; i < pr->n_envelopes; i++)
		if ((code = publish_one(g, owner, pr->envelopes[i], ret_delivered, why)))
			return code;
	return GRPC_STATUS_OK;
}

/*
 * Decodes a PublishRequest, takes its envelopes from the connection's rate limit and routes
 * them: every check a request gets, whether it came as a unary Publish or on a PublishStream.
 * Returns the gRPC status; *why is set for a refusal, which is counted here.
 */
static grpc_status_code publish_request(struct gsrv *g, const char *peer, const uint8_t *req,
					size_t len, int *ret_delivered, const char **why)
{
	Wice__Signaling__PublishRequest *pr;
	grpc_status_code code;

	pr = wice__signaling__publish_request__unpack(NULL, len, req);
	if (!pr) {
		atomic_fetch_add_explicit(&g->s->stats.malformed, 1, memory_order_relaxed);
		*why = "bad PublishRequest";
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	if (!peer_take(g, peer, (pr->envelope ? 1 : 0) + pr->n_envelopes)) {
		wice__signaling__publish_request__free_unpacked(pr, NULL);
		atomic_fetch_add_explicit(&g->s->stats.rate_limited, 1, memory_order_relaxed);
		*why = "rate limited";
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	}
	code = publish(g, pr, ret_delivered, why);
	wice__signaling__publish_request__free_unpacked(pr, NULL);
	return code;
}

static void handle_publish(struct gsrv *g, struct rpc *r, const uint8_t *req, size_t len)
{
	Wice__Signaling__PublishResponse resp = WICE__SIGNALING__PUBLISH_RESPONSE__INIT;
	char *peer = grpc_call_get_peer(r->call);
	grpc_status_code code;
	const char *why = NULL;
	int delivered = 0;

	code = publish_request(g, peer, req, len, &delivered, &why);
	gpr_free(peer);
	if (code == GRPC_STATUS_OK) {
		resp.delivered = (uint32_t)delivered;
		r->reply = grpcbuf_pack(&resp.base);
	}
	rpc_finish(r, code, why);
}

/* ---- PublishStream ---- */

static void reading_wait(struct gsrv *g, struct rpc *r);

/* One message of a PublishStream: checked and routed as a unary Publish's request. A refusal
 * ends the stream with the status Publish would have answered; else the next is awaited. */
static void stream_message(struct gsrv *g, struct rpc *r, const uint8_t *req, size_t len)
{
	grpc_status_code code;
	const char *why = NULL;
	int delivered = 0;

	if (!r->peer)
		r->peer = grpc_call_get_peer(r->call);
	code = publish_request(g, r->peer, req, len, &delivered, &why);
	if (code != GRPC_STATUS_OK) {
		rpc_finish(r, code, why);
		return;
	}
	r->delivered = (uint32_t)delivered > UINT32_MAX - r->delivered
			       ? UINT32_MAX
			       : r->delivered + (uint32_t)delivered;
	grpc_byte_buffer_destroy(r->payload);
	r->payload = NULL;
	reading_wait(g, r);
}

/* The client closed its side of the stream (or the call ended): the total goes back. */
static void stream_end(struct rpc *r)
{
	Wice__Signaling__PublishResponse resp = WICE__SIGNALING__PUBLISH_RESPONSE__INIT;

	resp.delivered = r->delivered;
	r->reply = grpcbuf_pack(&resp.base);
	rpc_finish(r, GRPC_STATUS_OK, NULL);
}

/* ---- the completion queue thread ---- */

static void reading_remove(struct gsrv *g, struct rpc *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		g->reading_head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		g->reading_tail = r->prev;
	r->prev = r->next = NULL;
}

/* A request that has not arrived within SERVER_STALL_TIMEOUT_MS is cancelled: a client
 * that stalls mid-message holds a stream and its buffer, not the server. */
static uint64_t reading_expire(struct gsrv *g, uint64_t now)
{
	while (g->reading_head && now - g->reading_head->start_ms >= SERVER_STALL_TIMEOUT_MS) {
		struct rpc *r = g->reading_head;

		reading_remove(g, r);
		r->stalled = true;
		atomic_fetch_add_explicit(&g->s->stats.stalled, 1, memory_order_relaxed);
		grpc_call_cancel_with_status(r->call, GRPC_STATUS_DEADLINE_EXCEEDED,
					     "request not received in time", NULL);
	}
	return g->reading_head ? g->reading_head->start_ms + SERVER_STALL_TIMEOUT_MS : 0;
}

/* Waits for the call's next request message, which must arrive within
 * SERVER_STALL_TIMEOUT_MS: the reading list is in arrival order, as all wait the same time. */
static void reading_wait(struct gsrv *g, struct rpc *r)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &r->payload;
	r->tag.kind = T_REQUEST;
	if (grpc_call_start_batch(r->call, &op, 1, &r->tag, NULL) != GRPC_CALL_OK) {
		rpc_finish(r, GRPC_STATUS_INTERNAL, NULL);
		return;
	}
	r->start_ms = mono_ms();
	r->prev = g->reading_tail;
	if (g->reading_tail)
		g->reading_tail->next = r;
	else
		g->reading_head = r;
	g->reading_tail = r;
}

/* Methods are registered without payload handling, so that a request gRPC refuses (too
 * large) still reaches us to be counted, and one that stalls can be timed out. */
static void on_new_call(struct gsrv *g, struct rpc *r, bool ok)
{
	if (!ok) { /* shutting down: the slot is returned unused */
		rpc_free(r);
		return;
	}
	if (!atomic_load_explicit(&g->stopping, memory_order_relaxed))
		rpc_request(g, r->method);
	if (r->method == M_UNKNOWN) {
		rpc_finish(r, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
		return;
	}
	if (r->method == M_PUBLISH_STREAM)
		atomic_fetch_add_explicit(&g->s->stats.publish_streams, 1, memory_order_relaxed);
	reading_wait(g, r);
}

static void on_request(struct gsrv *g, struct rpc *r, bool ok)
{
	grpc_slice req;

	if (!r->stalled)
		reading_remove(g, r);
	if (!r->payload && r->method == M_PUBLISH_STREAM && !r->stalled) {
		/* Between messages the client closed its side of the stream, or left. A receive
		 * that failed was a message gRPC refused as too large (or a reset inside one),
		 * counted as unary Publish counts it. */
		if (!ok)
			atomic_fetch_add_explicit(&g->s->stats.oversized, 1, memory_order_relaxed);
		stream_end(r);
		return;
	}
	if (!r->payload) {
		/* The client half-closed without a request, or the call was cancelled: by us
		 * (stalled) or by gRPC, which fails a message larger than
		 * max_receive_message_length with RESOURCE_EXHAUSTED itself. Which of these
		 * shows in RECV_CLOSE_ON_SERVER's cancelled flag: see on_finish. */
		r->no_request = true;
		rpc_finish(r, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
		return;
	}
	if (grpc_byte_buffer_length(r->payload) > SERVER_MAX_FRAME) {
		rpc_fail(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "message too large",
			 &g->s->stats.oversized);
		return;
	}
	req = grpcbuf_slice(r->payload);
	switch (r->method) {
	case M_CHALLENGE:
		handle_challenge(g, r, GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req));
		break;
	case M_SUBSCRIBE:
		gsub_handle(g, r, GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req));
		break;
	case M_PUBLISH_STREAM:
		stream_message(g, r, GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req));
		break;
	case M_PUBLISH:
	default:
		handle_publish(g, r, GRPC_SLICE_START_PTR(req), GRPC_SLICE_LENGTH(req));
		break;
	}
	grpc_slice_unref(req);
}

static void on_finish(struct gsrv *g, struct rpc *r)
{
	struct server_stats *st = &g->s->stats;

	/* A call cancelled before its request arrived, not by us: gRPC refused the message as
	 * too large (or the client reset the stream mid-message; counted alike). */
	if (r->no_request && !r->stalled)
		atomic_fetch_add_explicit(r->cancelled ? &st->oversized : &st->malformed, 1,
					  memory_order_relaxed);
	rpc_free(r);
}

static void *gsrv_thread(void *arg)
{
	struct gsrv *g = arg;
	uint64_t next_ms = 0, now;

	for (;;) {
		gpr_timespec deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
		grpc_event ev;
		struct gtag *t;

		if (next_ms) {
			now = mono_ms();
			deadline = gpr_time_add(
				gpr_now(GPR_CLOCK_MONOTONIC),
				gpr_time_from_millis(next_ms > now ? (int64_t)(next_ms - now) : 0,
						     GPR_TIMESPAN));
		}
		ev = grpc_completion_queue_next(g->cq, deadline, NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		next_ms = reading_expire(g, mono_ms());
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		t = ev.tag;
		switch (t->kind) {
		case T_NEW_CALL:
			on_new_call(g, container_of(t, struct rpc, tag), ev.success);
			next_ms = reading_expire(g, mono_ms());
			break;
		case T_REQUEST:
			on_request(g, container_of(t, struct rpc, tag), ev.success);
			break;
		case T_FINISH:
			on_finish(g, container_of(t, struct rpc, tag));
			break;
		case T_SUB_SEND:
			gsub_on_send(t, ev.success);
			break;
		case T_SUB_CLOSE:
			gsub_on_close(t);
			break;
		case T_SHUTDOWN:
			/* Every call is over and every slot returned: nothing more can come. */
			grpc_completion_queue_shutdown(g->cq);
			break;
		}
	}
	return NULL;
}

/* ---- start and stop ---- */

static int server_credentials(const char *cert, const char *key, grpc_server_credentials **ret)
{
	grpc_ssl_pem_key_cert_pair pair;
	char *cert_pem = NULL, *key_pem = NULL;
	int err;

	if (!cert || !key) {
		*ret = grpc_insecure_server_credentials_create();
		return *ret ? 0 : -ENOMEM;
	}
	err = file_read_all(cert, 1 << 20, &cert_pem, NULL);
	if (err < 0)
		return err;
	err = file_read_all(key, 1 << 20, &key_pem, NULL);
	if (err < 0) {
		free(cert_pem);
		return err;
	}
	pair.cert_chain = cert_pem;
	pair.private_key = key_pem;
	*ret = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
	sodium_memzero(key_pem, strlen(key_pem));
	free(key_pem);
	free(cert_pem);
	return *ret ? 0 : -EINVAL;
}

static grpc_server *server_create(void)
{
	grpc_arg args[] = {
		grpcbuf_int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, SERVER_MAX_FRAME),
		grpcbuf_int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, SERVER_MAX_FRAME),
		grpcbuf_int_arg(GRPC_ARG_MAX_CONCURRENT_STREAMS, GSRV_MAX_STREAMS),
		/* Raw garbage, a stalled TLS handshake or an HTTP/2 preface without SETTINGS. */
		grpcbuf_int_arg(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, SERVER_STALL_TIMEOUT_MS),
		grpcbuf_int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, GSRV_KEEPALIVE_MS),
		grpcbuf_int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, GSRV_PING_TIMEOUT),
		grpcbuf_int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1),
		grpcbuf_int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
				GSRV_MIN_PING_MS),
		grpcbuf_int_arg(GRPC_ARG_MAX_CONNECTION_IDLE_MS, GSRV_IDLE_MS),
		grpcbuf_int_arg(GRPC_ARG_ENABLE_CHANNELZ, 0),
	};
	grpc_channel_args ca = {.num_args = sizeof(args) / sizeof(args[0]), .args = args};

	return grpc_server_create(&ca, NULL);
}

static void gsrv_destroy(struct gsrv *g)
{
	if (g->server)
		grpc_server_destroy(g->server);
	if (g->cq)
		grpc_completion_queue_destroy(g->cq);
	peer_free_all(g);
	free(g);
	grpc_shutdown();
}

int server_grpc_start(struct signal_server *s, const char *addr, const char *tls_cert,
		      const char *tls_key)
{
	static const char *const names[M_COUNT] = {METHOD_CHALLENGE, METHOD_SUBSCRIBE,
						   METHOD_PUBLISH, METHOD_PUBLISH_STREAM};
	grpc_server_credentials *creds;
	struct gsrv *g;
	int err, port;

	if (s->grpc)
		return -EALREADY;
	if (!s->router || !s->auth || !addr || !tls_cert != !tls_key)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	absl_tune_for_server();
	grpc_init();
	g->s = s;
	g->shutdown_tag.kind = T_SHUTDOWN;
	randombytes_buf(g->peer_seed, sizeof(g->peer_seed));
	g->cq = grpc_completion_queue_create_for_next(NULL);
	g->server = server_create();
	if (!g->cq || !g->server) {
		gsrv_destroy(g);
		return -ENOMEM;
	}
	grpc_server_register_completion_queue(g->server, g->cq, NULL);
	for (int m = 0; m < M_COUNT; m++) {
		if (m == M_PUBLISH_STREAM && s->grpc_no_stream)
			continue;
		g->methods[m] = grpc_server_register_method(g->server, names[m], NULL,
							    GRPC_SRM_PAYLOAD_NONE, 0);
		if (!g->methods[m]) {
			gsrv_destroy(g);
			return -EINVAL;
		}
	}
	err = server_credentials(tls_cert, tls_key, &creds);
	if (err < 0) {
		gsrv_destroy(g);
		return err;
	}
	port = grpc_server_add_http2_port(g->server, addr, creds);
	grpc_server_credentials_release(creds);
	if (!port) {
		gsrv_destroy(g);
		return -EADDRNOTAVAIL;
	}
	grpc_server_start(g->server);
	for (int m = 0; m <= M_UNKNOWN; m++)
		for (int i = 0; i < (m == M_PUBLISH ? GSRV_SLOTS_PUBLISH : GSRV_SLOTS_OTHER); i++)
			if (m == M_UNKNOWN || g->methods[m])
				rpc_request(g, (enum method)m);
	err = -pthread_create(&g->thread, NULL, gsrv_thread, g);
	if (err < 0) {
		/* Nothing drives the queue: shut down and drain it here. */
		grpc_server_shutdown_and_notify(g->server, g->cq, &g->shutdown_tag);
		grpc_server_cancel_all_calls(g->server);
		gsrv_thread(g);
		gsrv_destroy(g);
		return err;
	}
	s->grpc = g;
	log_debug("signal: gRPC listening on %s (port %d)%s", addr, port,
		  tls_cert ? " with TLS" : "");
	return 0;
}

void server_grpc_stop(struct signal_server *s)
{
	struct gsrv *g = s->grpc;

	if (!g)
		return;
	atomic_store(&g->stopping, true);
	grpc_server_shutdown_and_notify(g->server, g->cq, &g->shutdown_tag);
	grpc_server_cancel_all_calls(g->server);
	pthread_join(g->thread, NULL);
	s->grpc = NULL;
	gsrv_destroy(g);
}
