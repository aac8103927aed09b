/* SPDX-License-Identifier: MIT */
/*
 * bench/signal_load over gRPC: channels of --per-conn subscribers each (one connection per
 * channel), every call on one completion queue driven by the one thread, which also ticks the
 * core. The protocol is src/signal/grpc.c's: GetChallenge, Subscribe (a server stream whose
 * first item is the session token), then publishing with the token as that client does:
 *   - where Subscribe's initial metadata announces PublishStream (and not --unary): one
 *     stream per client with one message in flight; an envelope published meanwhile waits in
 *     the client's queue, and each completion sends what queued up in one PublishRequest
 *     (field 3, at most PUB_BATCH envelopes and PUB_BATCH_BYTES). A stream has no per-message
 *     answer: what a failed stream carried is found lost by the core's slot_scan. (The
 *     client's idle close is left out: no stream here idles for long.)
 *   - else unary Publish calls, at most PUB_INFLIGHT in flight per client, batching likewise.
 *     Each call remembers the slot and generation of every envelope it carries, so a failed
 *     call fails each of its slots.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include "signal/grpc_buf.h"
#include "signal_load.h"

#define METHOD_CHALLENGE "/wice.signaling.Signaling/GetChallenge"
#define METHOD_SUBSCRIBE "/wice.signaling.Signaling/Subscribe"
#define METHOD_PUBLISH	 "/wice.signaling.Signaling/Publish"
#define METHOD_STREAM	 "/wice.signaling.Signaling/PublishStream"

struct gconn {
	grpc_channel *ch;
	void *m_chal, *m_sub, *m_pub, *m_ps;
};

/* A PublishStream, freed once its send and status batches have both completed. */
struct gstream {
	struct gtag t_send, t_status;
	grpc_call *call;
	unsigned int pending;
	bool sending, ended;
	grpc_byte_buffer *out, *recv;
	grpc_metadata_array md0, md1;
	grpc_status_code status;
	grpc_slice details;
};

/* An envelope waiting for one of its client's Publish calls. */
struct pubq {
	struct pubq *next;
	uint32_t slot, gen;
	size_t len;
	uint8_t data[];
};

/* A unary call: GetChallenge, or Publish carrying n_env envelopes. */
struct gcall {
	struct gtag tag;
	grpc_call *call;
	grpc_metadata_array md0, md1;
	grpc_byte_buffer *send, *recv;
	grpc_status_code status;
	grpc_slice details;
	uint32_t n_env;
	struct {
		uint32_t slot, gen;
	} env[];
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static grpc_completion_queue *cq;
static struct gconn *gconns;

static grpc_byte_buffer *bb_new(const uint8_t *data, size_t len)
{
	return grpcbuf_from_slice(grpc_slice_from_copied_buffer((const char *)data, len));
}

/* Takes p (malloc'd) over. */
static grpc_byte_buffer *bb_take(uint8_t *p, size_t len)
{
	return grpcbuf_from_slice(grpc_slice_new(p, len, free));
}

static struct gcall *gcall_start(struct client *c, int kind, void *method, grpc_byte_buffer *send,
				 uint32_t n_env)
{
	struct gcall *u = calloc(1, sizeof(*u) + n_env * sizeof(u->env[0]));
	grpc_op ops[6];

	if (!u || !send) {
		if (send)
			grpc_byte_buffer_destroy(send);
		free(u);
		return NULL;
	}
	u->n_env = n_env;
	u->tag.kind = kind;
	u->tag.c = c;
	u->send = send;
	u->details = grpc_empty_slice();
	grpc_metadata_array_init(&u->md0);
	grpc_metadata_array_init(&u->md1);
	u->call = grpc_channel_create_registered_call(c->gc->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
						      method, gpr_inf_future(GPR_CLOCK_MONOTONIC),
						      NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = u->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->md0;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &u->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &u->md1;
	ops[5].data.recv_status_on_client.status = &u->status;
	ops[5].data.recv_status_on_client.status_details = &u->details;
	if (!u->call || grpc_call_start_batch(u->call, ops, 6, &u->tag, NULL) != GRPC_CALL_OK) {
		if (u->call)
			grpc_call_unref(u->call);
		grpc_byte_buffer_destroy(u->send);
		free(u);
		return NULL;
	}
	return u;
}

static void gcall_free(struct gcall *u)
{
	grpc_call_unref(u->call);
	grpc_byte_buffer_destroy(u->send);
	if (u->recv)
		grpc_byte_buffer_destroy(u->recv);
	grpc_metadata_array_destroy(&u->md0);
	grpc_metadata_array_destroy(&u->md1);
	grpc_slice_unref(u->details);
	free(u);
}

static struct gconn *gconn_get(uint32_t idx)
{
	struct gconn *g = &gconns[idx / L.per_conn];
	grpc_arg args[2];
	grpc_channel_args ca = {.num_args = 2, .args = args};
	grpc_channel_credentials *creds;
	char target[300];

	if (g->ch)
		return g;
	memset(args, 0, sizeof(args));
	/* Its own connection per channel, as separate daemons have. */
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
	args[0].value.integer = 1;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = (char *)GRPC_ARG_ENABLE_RETRIES;
	args[1].value.integer = 0;
	snprintf(target, sizeof(target), "ipv4:%s:%d", L.host, L.port);
	creds = grpc_insecure_credentials_create();
	g->ch = grpc_channel_create(target, creds, &ca);
	grpc_channel_credentials_release(creds);
	g->m_chal = grpc_channel_register_call(g->ch, METHOD_CHALLENGE, NULL, NULL);
	g->m_sub = grpc_channel_register_call(g->ch, METHOD_SUBSCRIBE, NULL, NULL);
	g->m_pub = grpc_channel_register_call(g->ch, METHOD_PUBLISH, NULL, NULL);
	g->m_ps = grpc_channel_register_call(g->ch, METHOD_STREAM, NULL, NULL);
	return g;
}

void grpc_connect(struct client *c)
{
	uint8_t req[2 + 32];

	c->gc = gconn_get(c->idx);
	put_bytes(req, 1, c->key.public_key, 32);
	if (!gcall_start(c, G_CHAL, c->gc->m_chal, bb_new(req, sizeof(req)), 0))
		on_down(c);
}

/* The next Subscribe item; the first with the initial metadata, where the server's
 * features are. */
static void grpc_recv_next(struct client *c, bool first)
{
	grpc_op ops[2];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	if (first) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->md0;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &c->recv;
	if (grpc_call_start_batch(c->sub, ops, n, &c->t_recv, NULL) != GRPC_CALL_OK)
		on_down(c);
}

static void grpc_subscribe(struct client *c, const uint8_t *server_key, const uint8_t *nonce)
{
	uint8_t proof[AUTH_PROOF_LEN], req[3 * 2 + 32 + AUTH_NONCE_LEN + AUTH_PROOF_LEN];
	size_t n = 0;
	grpc_op ops[5];

	if (auth_prove(&c->key, server_key, nonce, proof) < 0) {
		on_down(c);
		return;
	}
	n += put_bytes(req + n, 1, c->key.public_key, 32);
	n += put_bytes(req + n, 2, nonce, AUTH_NONCE_LEN);
	n += put_bytes(req + n, 3, proof, AUTH_PROOF_LEN);
	c->sub_send = bb_new(req, n);
	c->details = grpc_empty_slice();
	grpc_metadata_array_init(&c->md0);
	grpc_metadata_array_init(&c->md1);
	c->t_start = (struct gtag){G_SUB_START, c};
	c->t_recv = (struct gtag){G_SUB_RECV, c};
	c->t_status = (struct gtag){G_SUB_STATUS, c};
	c->sub = grpc_channel_create_registered_call(c->gc->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
						     c->gc->m_sub,
						     gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &c->md1;
	ops[0].data.recv_status_on_client.status = &c->status;
	ops[0].data.recv_status_on_client.status_details = &c->details;
	if (!c->sub || grpc_call_start_batch(c->sub, ops, 1, &c->t_status, NULL) != GRPC_CALL_OK) {
		on_down(c);
		return;
	}
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = c->sub_send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	if (grpc_call_start_batch(c->sub, ops, 3, &c->t_start, NULL) != GRPC_CALL_OK)
		grpc_call_cancel(c->sub, NULL);
	grpc_recv_next(c, true);
}

static void grpc_on_challenge(struct gcall *u)
{
	struct client *c = u->tag.c;
	const uint8_t *ch = NULL, *key = NULL, *nonce = NULL;
	size_t chl = 0, kl = 0, nl = 0;
	grpc_slice s = u->recv ? grpcbuf_slice(u->recv) : grpc_empty_slice();

	ch = GRPC_SLICE_START_PTR(s);
	chl = GRPC_SLICE_LENGTH(s);
	if (u->status == GRPC_STATUS_OK && pb_field(ch, chl, 2, 1, &key, &kl) == 1 && kl == 32 &&
	    pb_field(ch, chl, 2, 2, &nonce, &nl) == 2 && nl == AUTH_NONCE_LEN)
		grpc_subscribe(c, key, nonce);
	else
		on_down(c);
	grpc_slice_unref(s);
	gcall_free(u);
}

/* "wice-features: publish-stream" in Subscribe's initial metadata (the server's only one). */
static bool announces_stream(const grpc_metadata_array *md)
{
	for (size_t i = 0; i < md->count; i++)
		if (!grpc_slice_str_cmp(md->metadata[i].key, "wice-features") &&
		    !grpc_slice_str_cmp(md->metadata[i].value, "publish-stream"))
			return true;
	return false;
}

static void grpc_on_recv(struct client *c, bool ok)
{
	const uint8_t *m;
	size_t ml;
	grpc_slice s;
	int f;

	if (!ok || !c->recv) {
		on_down(c);
		return;
	}
	s = grpcbuf_slice(c->recv);
	grpc_byte_buffer_destroy(c->recv);
	c->recv = NULL;
	f = pb_field(GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), 4, 0, &m, &ml);
	if (f == 3 && ml == 32 && !c->up) {
		memcpy(c->token, m, 32);
		c->stream = !L.unary && announces_stream(&c->md0);
		on_up(c);
	} else if (f == 2 && c->up) {
		on_envelope(c, m, ml);
	}
	grpc_slice_unref(s);
	grpc_recv_next(c, false);
}

static size_t varint_len(size_t v)
{
	size_t n = 1;

	while (v >>= 7)
		n++;
	return n;
}

/* PublishRequest{session_token = 1, envelopes = 3 ...} from the head of c's queue: as many as
 * fit PUB_BATCH and PUB_BATCH_BYTES (the first always). The call takes the envelopes' slots;
 * if it cannot start, they count as failed publishes and slot_scan replaces them. */
static grpc_byte_buffer *batch_encode(struct client *c, uint32_t *ret_count)
{
	size_t total = 2 + 32, n = 0;
	uint32_t count = 0;
	struct pubq *e;
	uint8_t *p;

	for (e = c->pq_head; e && count < PUB_BATCH; e = e->next, count++) {
		size_t add = 1 + varint_len(e->len) + e->len;

		if (count && total + add > PUB_BATCH_BYTES)
			break;
		total += add;
	}
	*ret_count = count;
	p = malloc(total);
	if (!p)
		return NULL;
	n = put_bytes(p, 1, c->token, 32);
	e = c->pq_head;
	for (uint32_t i = 0; i < count; i++, e = e->next)
		n += put_bytes(p + n, 3, e->data, e->len);
	return bb_take(p, n);
}

static void publish_batch(struct client *c)
{
	uint32_t count;
	grpc_byte_buffer *bb = batch_encode(c, &count);
	struct pubq *e;
	struct gcall *u;

	u = gcall_start(c, G_PUB, c->gc->m_pub, bb, count);
	for (uint32_t i = 0; i < count; i++) {
		e = c->pq_head;
		c->pq_head = e->next;
		c->pq_len--;
		if (u) {
			u->env[i].slot = e->slot;
			u->env[i].gen = e->gen;
		} else {
			L.pub_fail++;
		}
		free(e);
	}
	if (!c->pq_head)
		c->pq_tail = NULL;
	if (u) {
		c->pub_inflight++;
		L.pub_calls++;
		L.pub_envs += count;
	}
}

static void stream_free(struct gstream *ps)
{
	grpc_call_unref(ps->call);
	if (ps->out)
		grpc_byte_buffer_destroy(ps->out);
	if (ps->recv)
		grpc_byte_buffer_destroy(ps->recv);
	grpc_metadata_array_destroy(&ps->md0);
	grpc_metadata_array_destroy(&ps->md1);
	grpc_slice_unref(ps->details);
	free(ps);
}

static struct gstream *stream_open(struct client *c)
{
	struct gstream *ps = calloc(1, sizeof(*ps));
	grpc_op ops[3];

	if (!ps)
		return NULL;
	ps->t_send = (struct gtag){G_PS_SEND, c};
	ps->t_status = (struct gtag){G_PS_STATUS, c};
	ps->details = grpc_empty_slice();
	grpc_metadata_array_init(&ps->md0);
	grpc_metadata_array_init(&ps->md1);
	ps->call = grpc_channel_create_registered_call(c->gc->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
						       c->gc->m_ps,
						       gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[0].data.recv_initial_metadata.recv_initial_metadata = &ps->md0;
	ops[1].op = GRPC_OP_RECV_MESSAGE;
	ops[1].data.recv_message.recv_message = &ps->recv;
	ops[2].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[2].data.recv_status_on_client.trailing_metadata = &ps->md1;
	ops[2].data.recv_status_on_client.status = &ps->status;
	ops[2].data.recv_status_on_client.status_details = &ps->details;
	if (!ps->call ||
	    grpc_call_start_batch(ps->call, ops, 3, &ps->t_status, NULL) != GRPC_CALL_OK) {
		if (ps->call)
			grpc_call_unref(ps->call);
		grpc_metadata_array_destroy(&ps->md0);
		grpc_metadata_array_destroy(&ps->md1);
		free(ps);
		return NULL;
	}
	ps->pending = 1;
	return ps;
}

/* Sends the head of c's queue as one message on c's stream (opened first if need be) unless
 * one is in flight. What it carries is the server's now: losses show in slot_scan. */
static void stream_pump(struct client *c)
{
	struct gstream *ps = c->ps;
	bool first = false;
	uint32_t count;
	grpc_op ops[2];
	size_t n = 0;

	if (!c->pq_head)
		return;
	if (!ps) {
		ps = c->ps = stream_open(c);
		if (!ps)
			return;
		first = true;
	}
	if (ps->sending || ps->ended)
		return;
	ps->out = batch_encode(c, &count);
	for (uint32_t i = 0; i < count; i++) {
		struct pubq *e = c->pq_head;

		c->pq_head = e->next;
		c->pq_len--;
		free(e);
	}
	if (!c->pq_head)
		c->pq_tail = NULL;
	if (!ps->out) {
		L.pub_fail += count;
		return;
	}
	memset(ops, 0, sizeof(ops));
	if (first)
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = ps->out;
	if (grpc_call_start_batch(ps->call, ops, n, &ps->t_send, NULL) != GRPC_CALL_OK) {
		grpc_byte_buffer_destroy(ps->out);
		ps->out = NULL;
		ps->ended = true;
		grpc_call_cancel(ps->call, NULL);
		L.pub_fail += count;
		return;
	}
	ps->pending++;
	ps->sending = true;
	L.pub_calls++;
	L.pub_envs += count;
}

/* Starts Publish calls (or stream messages) while c has queued envelopes and room. */
static void publish_pump(struct client *c)
{
	if (c->stream) {
		stream_pump(c);
		return;
	}
	while (c->pq_head && c->pub_inflight < PUB_INFLIGHT)
		publish_batch(c);
}

/* A client that is gone publishes nothing more: what it queued is lost (slot_scan). */
static void publish_drop(struct client *c)
{
	while (c->pq_head) {
		struct pubq *e = c->pq_head;

		c->pq_head = e->next;
		free(e);
		L.pub_fail++;
	}
	c->pq_tail = NULL;
	c->pq_len = 0;
}

/* PublishResponse{delivered = 1}, the subscribers reached summed over the envelopes; proto3
 * leaves out a zero, so empty means nobody. -1 when it is not that. */
static int64_t publish_delivered(grpc_byte_buffer *bb)
{
	grpc_slice s = grpcbuf_slice(bb);
	const uint8_t *m = GRPC_SLICE_START_PTR(s);
	size_t ml = GRPC_SLICE_LENGTH(s), i = 1;
	int64_t v = 0;

	if (ml && m[0] == 0x08) {
		for (unsigned int sh = 0; i < ml && sh < 35; sh += 7) {
			v |= (int64_t)(m[i] & 0x7f) << sh;
			if (!(m[i++] & 0x80))
				break;
		}
		if (i != ml || m[ml - 1] & 0x80)
			v = -1;
	} else if (ml) {
		v = -1;
	}
	grpc_slice_unref(s);
	return v;
}

static void grpc_on_publish(struct gcall *u)
{
	struct client *c = u->tag.c;
	int64_t delivered =
		u->status == GRPC_STATUS_OK && u->recv ? publish_delivered(u->recv) : -1;

	c->pub_inflight--;
	if (delivered <= 0) {
		/* The call failed or reached nobody: each of its envelopes did. */
		for (uint32_t i = 0; i < u->n_env; i++)
			slot_failed(u->env[i].slot, u->env[i].gen);
	} else if ((uint64_t)delivered < u->n_env) {
		/* Some did not arrive, and which is not said: slot_scan finds them. */
		L.pub_fail += u->n_env - (uint64_t)delivered;
	}
	if (c->up)
		publish_pump(c);
	else
		publish_drop(c);
	gcall_free(u);
}

int grpc_publish(struct client *from, const uint8_t *env, size_t len, uint32_t slot, uint32_t gen)
{
	struct pubq *e;

	if (from->pq_len >= PUB_QUEUE_MAX)
		return -EAGAIN;
	e = malloc(sizeof(*e) + len);
	if (!e)
		return -ENOMEM;
	e->next = NULL;
	e->slot = slot;
	e->gen = gen;
	e->len = len;
	memcpy(e->data, env, len);
	if (from->pq_tail)
		from->pq_tail->next = e;
	else
		from->pq_head = e;
	from->pq_tail = e;
	from->pq_len++;
	publish_pump(from);
	return 0;
}

static void grpc_on_stream(struct gstream *ps, struct client *c, bool send_done, bool ok)
{
	ps->pending--;
	if (send_done) {
		ps->sending = false;
		grpc_byte_buffer_destroy(ps->out);
		ps->out = NULL;
		if (!ok)
			ps->ended = true;
	} else {
		ps->ended = true;
		if (ps->status != GRPC_STATUS_OK)
			L.pub_fail++; /* what it carried is found by slot_scan */
		if (c->ps == ps)
			c->ps = NULL;
	}
	if (!ps->pending)
		stream_free(ps);
	else if (c->ps == ps && c->up && send_done)
		stream_pump(c);
	if (!c->up)
		publish_drop(c);
	else if (!send_done)
		publish_pump(c);
}

static void grpc_dispatch(struct gtag *t, bool ok)
{
	struct client *c = t->c;

	switch (t->kind) {
	case G_CHAL:
		grpc_on_challenge((struct gcall *)t);
		break;
	case G_PUB:
		grpc_on_publish((struct gcall *)t);
		break;
	case G_PS_SEND:
		grpc_on_stream(container_of(t, struct gstream, t_send), c, true, ok);
		break;
	case G_PS_STATUS:
		grpc_on_stream(container_of(t, struct gstream, t_status), c, false, ok);
		break;
	case G_SUB_START:
		if (!ok)
			on_down(c);
		break;
	case G_SUB_RECV:
		grpc_on_recv(c, ok);
		break;
	case G_SUB_STATUS:
		on_down(c);
		break;
	}
}

int grpc_run(void)
{
	uint64_t next = now_ns();

	grpc_init();
	cq = grpc_completion_queue_create_for_next(NULL);
	gconns = calloc((L.n + L.per_conn - 1) / L.per_conn, sizeof(*gconns));
	if (!cq || !gconns)
		return -ENOMEM;
	while (!L.done) {
		uint64_t t = now_ns();
		grpc_event ev;

		if (t >= next) {
			tick();
			next = t + tick_us() * 1000;
			continue;
		}
		ev = grpc_completion_queue_next(
			cq,
			gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				     gpr_time_from_nanos((int64_t)(next - t), GPR_TIMESPAN)),
			NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			grpc_dispatch(ev.tag, ev.success);
	}
	/* The process ends here: the kernel closes every connection, as when N daemons go. */
	return 0;
}
