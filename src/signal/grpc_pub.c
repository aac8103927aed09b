/* SPDX-License-Identifier: MIT */
/*
 * The grpc/grpcs signaling backend: publishing (grpc.c's opening comment has the design).
 * publish() runs on the caller's thread, completions on the backend's; both under b->lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include "signal/grpc_buf.h"
#include "signal/grpc_internal.h"
#include "util/log.h"

static void queue_drop(struct gcli *b)
{
	while (b->q_head) {
		struct qenv *e = b->q_head;

		b->q_head = e->next;
		free(e);
	}
	b->q_tail = NULL;
	b->q_len = 0;
}

/* ---- Publish ---- */

static size_t put_len(uint8_t *p, size_t v)
{
	size_t n = 0;

	do {
		p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

/*
 * PublishRequest{session_token = 1, envelopes = 3 ...} with as many queued envelopes as fit
 * GCLI_PUBLISH_BATCH and GCLI_PUBLISH_BATCH_BYTES, taken off the queue. Encoded here: each
 * envelope is already an encoded Envelope, and an embedded message is its length-delimited
 * bytes. Called with b->lock held and the queue not empty.
 */
static grpc_byte_buffer *publish_request(struct gcli *b)
{
	size_t total = 2 + GCLI_TOKEN_LEN, n = 0;
	struct qenv *e = b->q_head;
	unsigned int count = 0;
	uint8_t *p;

	for (; e && count < GCLI_PUBLISH_BATCH; e = e->next, count++) {
		size_t add = 1 + 5 + e->len;

		if (count && total + add > GCLI_PUBLISH_BATCH_BYTES)
			break;
		total += add;
	}
	p = malloc(total);
	if (!p)
		return NULL;
	p[n++] = (1 << 3) | 2;
	p[n++] = GCLI_TOKEN_LEN;
	memcpy(p + n, b->token, GCLI_TOKEN_LEN);
	n += GCLI_TOKEN_LEN;
	while (count--) {
		e = b->q_head;
		p[n++] = (3 << 3) | 2;
		n += put_len(p + n, e->len);
		memcpy(p + n, e->data, e->len);
		n += e->len;
		b->q_head = e->next;
		b->q_len--;
		free(e);
	}
	if (!b->q_head)
		b->q_tail = NULL;
	/* The slice takes the buffer over (n ≤ total: the varints took at most their room). */
	return grpcbuf_from_slice(grpc_slice_new(p, n, free));
}

static void stream_free(struct pstream *ps)
{
	if (ps->call)
		grpc_call_unref(ps->call);
	if (ps->out)
		grpc_byte_buffer_destroy(ps->out);
	if (ps->recv)
		grpc_byte_buffer_destroy(ps->recv);
	grpc_metadata_array_destroy(&ps->md_initial);
	grpc_metadata_array_destroy(&ps->md_trailing);
	grpc_slice_unref(ps->details);
	free(ps);
}

/* A new PublishStream, waiting for its status (the server sends its initial metadata and the
 * response only then). Called with b->lock held. */
static struct pstream *stream_open(struct gcli *b)
{
	struct pstream *ps = calloc(1, sizeof(*ps));
	grpc_op ops[3];

	if (!ps)
		return NULL;
	ps->send_tag.kind = T_STREAM_SEND;
	ps->status_tag.kind = T_STREAM_STATUS;
	ps->details = grpc_empty_slice();
	grpc_metadata_array_init(&ps->md_initial);
	grpc_metadata_array_init(&ps->md_trailing);
	ps->call = grpc_channel_create_registered_call(b->ch, NULL, GRPC_PROPAGATE_DEFAULTS, b->cq,
						       b->m_stream,
						       gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	if (!ps->call) {
		stream_free(ps);
		return NULL;
	}
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[0].data.recv_initial_metadata.recv_initial_metadata = &ps->md_initial;
	ops[1].op = GRPC_OP_RECV_MESSAGE;
	ops[1].data.recv_message.recv_message = &ps->recv;
	ops[2].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[2].data.recv_status_on_client.trailing_metadata = &ps->md_trailing;
	ops[2].data.recv_status_on_client.status = &ps->status;
	ops[2].data.recv_status_on_client.status_details = &ps->details;
	if (grpc_call_start_batch(ps->call, ops, 3, &ps->status_tag, NULL) != GRPC_CALL_OK) {
		stream_free(ps);
		return NULL;
	}
	ps->pending = 1;
	return ps;
}

/* Sends what the queue holds (one PublishRequest) on the session's stream, opening it first
 * if needed, unless a message is in flight: its completion comes back here. Called with
 * b->lock held. */
static void stream_pump(struct gcli *b)
{
	struct pstream *ps = b->ps;
	bool first = false;
	grpc_op ops[2];
	size_t n = 0;

	if (!b->q_head || b->closing)
		return;
	if (!ps) {
		ps = b->ps = stream_open(b);
		if (!ps)
			return; /* out of memory: try again on the next publish */
		first = true;
	}
	if (ps->sending || ps->ended || ps->half_closed)
		return;
	ps->out = publish_request(b);
	if (!ps->out)
		return;
	memset(ops, 0, sizeof(ops));
	if (first)
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = ps->out;
	if (grpc_call_start_batch(ps->call, ops, n, &ps->send_tag, NULL) != GRPC_CALL_OK) {
		/* Its status still comes, and the next stream takes over. */
		grpc_byte_buffer_destroy(ps->out);
		ps->out = NULL;
		ps->ended = true;
		grpc_call_cancel(ps->call, NULL);
		return;
	}
	ps->pending++;
	ps->sending = true;
}

/* Closes the session's stream once it has been idle GCLI_STREAM_IDLE_MS; returns when to look
 * again (0: nothing to wait for). */
uint64_t gpub_idle(struct gcli *b, uint64_t now)
{
	struct pstream *ps;
	uint64_t next = 0;
	grpc_op op;

	pthread_mutex_lock(&b->lock);
	ps = b->ps;
	if (ps && !ps->sending && !ps->ended && !ps->half_closed && !b->q_head) {
		if (now - ps->idle_since_ms < GCLI_STREAM_IDLE_MS) {
			next = ps->idle_since_ms + GCLI_STREAM_IDLE_MS;
		} else {
			memset(&op, 0, sizeof(op));
			op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
			ps->half_closed = true;
			if (grpc_call_start_batch(ps->call, &op, 1, &ps->send_tag, NULL) ==
			    GRPC_CALL_OK) {
				ps->pending++;
				ps->sending = true;
			} else {
				grpc_call_cancel(ps->call, NULL);
			}
		}
	}
	pthread_mutex_unlock(&b->lock);
	return next;
}

/* Starts queued publishes while there is room: whatever queued up while calls were in flight
 * goes out together. Called with b->lock held. */
static void publish_pump(struct gcli *b)
{
	if (b->stream_ok) {
		stream_pump(b);
		return;
	}
	while (b->q_head && b->n_inflight < GCLI_PUBLISH_INFLIGHT && !b->closing) {
		grpc_byte_buffer *req = publish_request(b);
		struct unary *u = req ? gcli_unary_new(b, T_PUBLISH, req) : NULL;

		if (!u)
			break; /* out of memory: try again on the next publish or completion */
		if (gcli_unary_start(b, u, b->m_publish) < 0) {
			gcli_unary_free(u);
			continue;
		}
		b->inflight[b->n_inflight++] = u;
	}
}

void gpub_on_unary(struct gcli *b, struct unary *u)
{
	if (u->status != GRPC_STATUS_OK)
		log_debug("signal: %s: Publish failed (status %d)", b->target, u->status);
	pthread_mutex_lock(&b->lock);
	for (unsigned int i = 0; i < b->n_inflight; i++)
		if (b->inflight[i] == u) {
			b->inflight[i] = b->inflight[--b->n_inflight];
			break;
		}
	if (b->subscribed)
		publish_pump(b);
	pthread_mutex_unlock(&b->lock);
	gcli_unary_free(u);
}

void gpub_on_stream_send(struct gcli *b, struct gtag *send_tag, bool ok)
{
	struct pstream *ps = container_of(send_tag, struct pstream, send_tag);
	bool release;

	pthread_mutex_lock(&b->lock);
	ps->pending--;
	ps->sending = false;
	if (ps->out)
		grpc_byte_buffer_destroy(ps->out);
	ps->out = NULL;
	ps->idle_since_ms = gcli_mono_ms();
	if (!ok)
		ps->ended = true; /* the stream broke: its status follows */
	else if (ps == b->ps && b->subscribed)
		stream_pump(b);
	release = !ps->pending;
	pthread_mutex_unlock(&b->lock);
	if (release)
		stream_free(ps);
}

/* The stream is over: what it carried was published unless the status says otherwise (the
 * server refuses as for unary Publish, ending the stream). A server without the method falls
 * back to unary calls for the session. */
void gpub_on_stream_status(struct gcli *b, struct gtag *status_tag)
{
	struct pstream *ps = container_of(status_tag, struct pstream, status_tag);
	bool release;

	if (ps->status != GRPC_STATUS_OK && !atomic_load(&b->closing))
		log_debug("signal: %s: Publish failed (status %d, on a stream)", b->target,
			  ps->status);
	pthread_mutex_lock(&b->lock);
	ps->pending--;
	ps->ended = true;
	if (ps == b->ps) {
		b->ps = NULL;
		if (ps->status == GRPC_STATUS_UNIMPLEMENTED)
			b->stream_ok = false;
		if (b->subscribed)
			publish_pump(b);
	}
	release = !ps->pending;
	pthread_mutex_unlock(&b->lock);
	if (release)
		stream_free(ps);
}

int gpub_publish(struct signal_backend *base, const uint8_t *envelope, size_t len)
{
	struct gcli *b = container_of(base, struct gcli, base);
	struct qenv *e;
	int err = 0;

	if (!len || len > ENVELOPE_MAX_SIZE)
		return -EMSGSIZE;
	pthread_mutex_lock(&b->lock);
	if (b->closing || !b->subscribed || b->q_len >= SIGNAL_SEND_QUEUE_MAX) {
		err = -EAGAIN;
		goto out;
	}
	e = malloc(sizeof(*e) + len);
	if (!e) {
		err = -ENOMEM;
		goto out;
	}
	e->next = NULL;
	e->len = len;
	memcpy(e->data, envelope, len);
	if (b->q_tail)
		b->q_tail->next = e;
	else
		b->q_head = e;
	b->q_tail = e;
	b->q_len++;
	publish_pump(b);
out:
	pthread_mutex_unlock(&b->lock);
	return err;
}

void gpub_drop(struct gcli *b)
{
	queue_drop(b);
	/* The stream's token is gone with the session; its completions free it. */
	if (b->ps) {
		grpc_call_cancel(b->ps->call, NULL);
		b->ps = NULL;
	}
	b->stream_ok = false;
}

void gpub_cancel(struct gcli *b)
{
	for (unsigned int i = 0; i < b->n_inflight; i++)
		grpc_call_cancel(b->inflight[i]->call, NULL);
	if (b->ps)
		grpc_call_cancel(b->ps->call, NULL);
	queue_drop(b);
}
