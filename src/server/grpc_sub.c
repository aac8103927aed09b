/* SPDX-License-Identifier: MIT */
/*
 * wice signal over gRPC: Subscribe streams. A struct gsub is an accepted Subscribe call: a
 * router_sub, a bounded queue of frames and at most one SEND_MESSAGE in flight (gRPC allows
 * only one per call), freed once RECV_CLOSE_ON_SERVER has completed and no send is in flight.
 * Deliveries come from any thread (router_publish of either transport) under the router lock;
 * they take only the subscription's lock, as server.h's lock order requires.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <sodium.h>
#include "server/grpc_internal.h"
#include "server/server.h"
#include "signal/envelope.h"
#include "signal/grpc_buf.h"
#include "util/key.h"
#include "util/log.h"

struct qframe {
	struct qframe *next;
	uint32_t len;
	uint8_t data[];
};

struct gsub {
	struct router_sub rs;
	struct gsrv *g;
	grpc_call *call;
	struct gtag send_tag, close_tag;
	pthread_mutex_t lock; /* protects what follows */
	struct qframe *head, *tail;
	uint32_t qlen, qbytes;
	bool sending; /* one SEND_MESSAGE in flight */
	bool closed;  /* RECV_CLOSE_ON_SERVER completed */
	bool dead;    /* a send failed: the stream is broken, drop what comes */
	grpc_byte_buffer *out;
	int cancelled;
};

/* ---- Subscribe ---- */

static void log_sub(const struct gsub *sub, const char *what)
{
	char b64[WG_KEY_B64_LEN + 1];
	char *peer = grpc_call_get_peer(sub->call);

	key_to_base64(b64, sub->rs.key);
	log_info("signal: gRPC %s %s from %s", what, b64, peer ? peer : "?");
	gpr_free(peer);
}

static void sub_drop_queue(struct gsub *sub)
{
	while (sub->head) {
		struct qframe *f = sub->head;

		sub->head = f->next;
		free(f);
	}
	sub->tail = NULL;
	sub->qlen = sub->qbytes = 0;
}

static void sub_free(struct gsub *sub)
{
	sub_drop_queue(sub);
	grpc_call_unref(sub->call);
	pthread_mutex_destroy(&sub->lock);
	sodium_memzero(sub->rs.session_token, sizeof(sub->rs.session_token));
	free(sub);
}

static void qframe_release(void *p)
{
	free(p);
}

/* Sends the queue's first frame (after the initial metadata, for the first). Called with
 * sub->lock held and nothing in flight; the frame's memory goes to gRPC, which frees it. */
static void sub_send_next(struct gsub *sub, bool initial)
{
	struct qframe *f = sub->head;
	grpc_metadata features = {
		.key = grpc_slice_from_static_string(GSRV_FEATURES_KEY),
		.value = grpc_slice_from_static_string(GSRV_FEATURES),
	};
	grpc_op ops[2];
	size_t n = 0;

	if (!f || sub->dead || atomic_load_explicit(&sub->g->stopping, memory_order_relaxed))
		return;
	sub->head = f->next;
	if (!sub->head)
		sub->tail = NULL;
	sub->qlen--;
	sub->qbytes -= f->len;
	sub->out = grpcbuf_from_slice(
		grpc_slice_new_with_user_data(f->data, f->len, qframe_release, f));
	memset(ops, 0, sizeof(ops));
	if (initial) {
		/* Announces PublishStream before the token, so the client knows how to publish
		 * before it can. */
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		if (!sub->g->s->grpc_no_stream || sub->g->s->grpc_announce_anyway) {
			ops[n].data.send_initial_metadata.count = 1;
			ops[n].data.send_initial_metadata.metadata = &features;
		}
		n++;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = sub->out;
	sub->sending = true;
	if (grpc_call_start_batch(sub->call, ops, n, &sub->send_tag, NULL) != GRPC_CALL_OK) {
		grpc_byte_buffer_destroy(sub->out);
		sub->out = NULL;
		sub->sending = false;
		sub->dead = true;
		sub_drop_queue(sub);
		grpc_call_cancel(sub->call, NULL);
	}
}

static int sub_deliver(struct router_sub *rs, const uint8_t *frame, size_t len)
{
	struct gsub *sub = container_of(rs, struct gsub, rs);
	struct qframe *f;
	int ret = 0;

	if (len > SERVER_MAX_FRAME)
		return -EMSGSIZE;
	f = malloc(sizeof(*f) + len);
	if (!f)
		return -ENOMEM;
	f->next = NULL;
	f->len = (uint32_t)len;
	memcpy(f->data, frame, len);

	pthread_mutex_lock(&sub->lock);
	if (sub->dead || sub->closed) {
		ret = -EPIPE;
	} else if (sub->qlen >= SERVER_SUB_QUEUE_MAX ||
		   sub->qbytes + len > SERVER_SUB_QUEUE_BYTES) {
		ret = -ENOBUFS;
	} else {
		if (sub->tail)
			sub->tail->next = f;
		else
			sub->head = f;
		sub->tail = f;
		sub->qlen++;
		sub->qbytes += (uint32_t)len;
		f = NULL;
		if (!sub->sending)
			sub_send_next(sub, false);
	}
	pthread_mutex_unlock(&sub->lock);
	free(f);
	return ret;
}

static const struct router_sub_ops gsub_ops = {
	.deliver = sub_deliver,
};

static void sub_on_send(struct gsub *sub, bool ok)
{
	bool release;

	pthread_mutex_lock(&sub->lock);
	grpc_byte_buffer_destroy(sub->out);
	sub->out = NULL;
	sub->sending = false;
	if (!ok && !sub->dead) {
		sub->dead = true;
		sub_drop_queue(sub);
	}
	if (!sub->closed)
		sub_send_next(sub, false);
	release = sub->closed && !sub->sending;
	pthread_mutex_unlock(&sub->lock);
	if (release)
		sub_free(sub);
}

static void sub_on_close(struct gsub *sub)
{
	struct signal_server *s = sub->g->s;
	bool release;

	/* After this no delivery can start: they all run under the router lock. */
	router_unsubscribe(s->router, &sub->rs);
	atomic_fetch_add_explicit(&s->stats.disconnects, 1, memory_order_relaxed);
	log_sub(sub, "unsubscribe");
	pthread_mutex_lock(&sub->lock);
	sub->closed = true;
	sub_drop_queue(sub);
	release = !sub->sending;
	pthread_mutex_unlock(&sub->lock);
	if (release)
		sub_free(sub);
}

static int sub_token_frame(struct gsub *sub)
{
	Wice__Signaling__ServerFrame sf = WICE__SIGNALING__SERVER_FRAME__INIT;
	size_t len;
	struct qframe *f;

	sf.kind_case = WICE__SIGNALING__SERVER_FRAME__KIND_SESSION_TOKEN;
	sf.session_token.data = sub->rs.session_token;
	sf.session_token.len = sizeof(sub->rs.session_token);
	len = wice__signaling__server_frame__get_packed_size(&sf);
	f = malloc(sizeof(*f) + len);
	if (!f)
		return -ENOMEM;
	f->next = NULL;
	f->len = (uint32_t)wice__signaling__server_frame__pack(&sf, f->data);
	sub->head = sub->tail = f;
	sub->qlen = 1;
	sub->qbytes = f->len;
	return 0;
}

/*
 * A good proof: the call becomes a subscription. Its token goes first on the stream, so the
 * subscription is in the router (and its token valid) before the client can know the token.
 */
static void sub_start(struct gsrv *g, struct rpc *r, const uint8_t key[static WG_KEY_LEN])
{
	struct gsub *sub = calloc(1, sizeof(*sub));
	grpc_op op;
	int err;

	if (!sub) {
		rpc_finish(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	randombytes_buf(sub->rs.session_token, sizeof(sub->rs.session_token));
	if (sub_token_frame(sub) < 0) {
		free(sub);
		rpc_finish(r, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	sub->rs.ops = &gsub_ops;
	memcpy(sub->rs.key, key, WG_KEY_LEN);
	sub->g = g;
	sub->send_tag.kind = T_SUB_SEND;
	sub->close_tag.kind = T_SUB_CLOSE;
	pthread_mutex_init(&sub->lock, NULL);
	sub->sending = true; /* the initial metadata and token frame go first */

	err = router_subscribe(g->s->router, &sub->rs);
	if (err < 0) {
		sub_drop_queue(sub);
		pthread_mutex_destroy(&sub->lock);
		free(sub);
		rpc_finish(r, GRPC_STATUS_RESOURCE_EXHAUSTED,
			   err == -ENOSPC ? "too many subscriptions of this key" : "out of memory");
		return;
	}
	sub->call = r->call;
	r->call = NULL;
	rpc_free(r);
	atomic_fetch_add_explicit(&g->s->stats.connects, 1, memory_order_relaxed);
	log_sub(sub, "subscribe");

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &sub->cancelled;
	if (grpc_call_start_batch(sub->call, &op, 1, &sub->close_tag, NULL) != GRPC_CALL_OK) {
		/* Cannot happen on a fresh call; without a close event it could never be freed. */
		router_unsubscribe(g->s->router, &sub->rs);
		grpc_call_cancel(sub->call, NULL);
		sub_free(sub);
		return;
	}

	/* Deliveries may have queued behind the token frame meanwhile. */
	pthread_mutex_lock(&sub->lock);
	sub->sending = false;
	sub_send_next(sub, true);
	pthread_mutex_unlock(&sub->lock);
}

void gsub_handle(struct gsrv *g, struct rpc *r, const uint8_t *req, size_t len)
{
	Wice__Signaling__SubscribeRequest *sr;
	uint8_t key[WG_KEY_LEN];
	int err;

	sr = wice__signaling__subscribe_request__unpack(NULL, len, req);
	if (!sr || sr->public_key.len != WG_KEY_LEN || sr->nonce.len != AUTH_NONCE_LEN ||
	    sr->proof.len != AUTH_PROOF_LEN) {
		if (sr)
			wice__signaling__subscribe_request__free_unpacked(sr, NULL);
		rpc_fail(r, GRPC_STATUS_INVALID_ARGUMENT, "bad SubscribeRequest",
			 &g->s->stats.malformed);
		return;
	}
	err = auth_verify(g->s->auth, sr->public_key.data, envelope_now_ms(), sr->nonce.data,
			  sr->nonce.len, sr->proof.data, sr->proof.len);
	memcpy(key, sr->public_key.data, WG_KEY_LEN);
	wice__signaling__subscribe_request__free_unpacked(sr, NULL);
	if (err == -EBUSY) {
		rpc_finish(r, GRPC_STATUS_UNAVAILABLE, "too many pending proofs, retry later");
		return;
	}
	if (err < 0) {
		rpc_fail(r, GRPC_STATUS_UNAUTHENTICATED, "bad proof", &g->s->stats.bad_proof);
		return;
	}
	sub_start(g, r, key);
}

void gsub_on_send(struct gtag *send_tag, bool ok)
{
	sub_on_send(container_of(send_tag, struct gsub, send_tag), ok);
}

void gsub_on_close(struct gtag *close_tag)
{
	sub_on_close(container_of(close_tag, struct gsub, close_tag));
}
