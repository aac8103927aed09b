/* SPDX-License-Identifier: MIT */
/*
 * Signaling backend "grpc://HOST:PORT" and "grpcs://HOST:PORT": wice signal's gRPC service
 * (proto/signaling.proto) through the gRPC C core, messages encoded by protobuf-c.
 *
 * A backend owns one channel (its own connection: a local subchannel pool), one completion
 * queue and one thread. The thread runs the session: GetChallenge, prove the key, Subscribe
 * (a server stream whose first item is the session token, then envelopes), and on any
 * failure waits a jittered exponential backoff and starts again. Publishing needs the token.
 * publish() queues the envelope and sends what the queue holds as one PublishRequest (at most
 * GCLI_PUBLISH_BATCH envelopes):
 *   - on a PublishStream, when the server announced it in Subscribe's initial metadata: one
 *     stream per session, opened on the first publish, with one message in flight (gRPC allows
 *     one SEND_MESSAGE at a time); each completion sends what queued up meanwhile. A stream
 *     idle for GCLI_STREAM_IDLE_MS is closed by us, before the server would cancel it; one
 *     that ends (a refusal, or UNIMPLEMENTED, after which the session falls back to unary) is
 *     replaced on the next publish;
 *   - else with unary Publish calls, at most GCLI_PUBLISH_INFLIGHT in flight; the thread
 *     starts the next as each completes.
 * Either way a refusal is logged, and the queue is dropped when the session ends (stateless).
 *
 * b->lock guards what publish() and close() share with the thread: the token, the queue and
 * the calls they may cancel. No callback runs with it held.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <sodium.h>
#include "signal/auth.h"
#include "signal/backend.h"
#include "signal/grpc_buf.h"
#include "util/file.h"
#include "util/log.h"

#include "signal/grpc_internal.h"

static gpr_timespec after_ms(uint64_t ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_millis((int64_t)ms, GPR_TIMESPAN));
}

/* ---- unary calls ---- */

struct unary *gcli_unary_new(struct gcli *b, enum gtag_kind kind, grpc_byte_buffer *send)
{
	struct unary *u = calloc(1, sizeof(*u));

	if (!u) {
		grpc_byte_buffer_destroy(send);
		return NULL;
	}
	u->tag.kind = kind;
	u->b = b;
	u->send = send;
	u->details = grpc_empty_slice();
	grpc_metadata_array_init(&u->md_initial);
	grpc_metadata_array_init(&u->md_trailing);
	return u;
}

void gcli_unary_free(struct unary *u)
{
	if (u->call)
		grpc_call_unref(u->call);
	if (u->send)
		grpc_byte_buffer_destroy(u->send);
	if (u->recv)
		grpc_byte_buffer_destroy(u->recv);
	grpc_metadata_array_destroy(&u->md_initial);
	grpc_metadata_array_destroy(&u->md_trailing);
	grpc_slice_unref(u->details);
	free(u);
}

/* Creates u's call and starts its one batch. Called with b->lock held (or before the
 * thread runs), never after closing was set: the queue must not get new work then. */
int gcli_unary_start(struct gcli *b, struct unary *u, void *method)
{
	grpc_op ops[6];

	u->call = grpc_channel_create_registered_call(b->ch, NULL, GRPC_PROPAGATE_DEFAULTS, b->cq,
						      method, after_ms(GCLI_CALL_TIMEOUT_MS), NULL);
	if (!u->call)
		return -ENOMEM;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = u->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->md_initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &u->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &u->md_trailing;
	ops[5].data.recv_status_on_client.status = &u->status;
	ops[5].data.recv_status_on_client.status_details = &u->details;
	if (grpc_call_start_batch(u->call, ops, 6, &u->tag, NULL) != GRPC_CALL_OK) {
		grpc_call_unref(u->call);
		u->call = NULL;
		return -EIO;
	}
	return 0;
}

/* ---- session: backoff ---- */

static void set_connected(struct gcli *b, bool connected)
{
	if (b->connected == connected || atomic_load(&b->closing))
		return;
	b->connected = connected;
	if (b->cfg.on_state)
		b->cfg.on_state(b->cfg.ctx, &b->base, connected);
}

/* Waits between half and all of the current backoff, then doubles it (up to the maximum),
 * so that clients cut off together do not come back together. */
static void retry_later(struct gcli *b)
{
	unsigned int d = b->backoff_ms;

	b->retry_at_ms = gcli_mono_ms() + d / 2 + randombytes_uniform(d / 2 + 1);
	b->backoff_ms = d >= b->cfg.backoff_max_ms / 2 ? b->cfg.backoff_max_ms : d * 2;
	b->phase = P_WAIT;
}

static void start_challenge(struct gcli *b)
{
	Wice__Signaling__ChallengeRequest cr = WICE__SIGNALING__CHALLENGE_REQUEST__INIT;
	struct unary *u;
	int err = -ECANCELED;

	cr.public_key.data = (uint8_t *)b->cfg.key->public_key;
	cr.public_key.len = WG_KEY_LEN;
	u = gcli_unary_new(b, T_CHALLENGE, grpcbuf_pack(&cr.base));
	if (!u) {
		retry_later(b);
		return;
	}
	/* Our backoff decides when to try: do not let the channel's own one hold us back. */
	grpc_channel_reset_connect_backoff(b->ch);
	pthread_mutex_lock(&b->lock);
	if (!b->closing) {
		err = gcli_unary_start(b, u, b->m_challenge);
		if (!err)
			b->chal_call = u->call;
	}
	pthread_mutex_unlock(&b->lock);
	if (err == -ECANCELED) {
		gcli_unary_free(u);
		b->phase = P_CLOSED;
	} else if (err < 0) {
		gcli_unary_free(u);
		retry_later(b);
	} else {
		b->phase = P_CHALLENGE;
	}
}

/* ---- session: Subscribe ---- */

static int start_subscribe(struct gcli *b, const uint8_t server_key[static WG_KEY_LEN],
			   const uint8_t nonce[static AUTH_NONCE_LEN])
{
	Wice__Signaling__SubscribeRequest sr = WICE__SIGNALING__SUBSCRIBE_REQUEST__INIT;
	uint8_t proof[AUTH_PROOF_LEN];
	grpc_call *call;
	grpc_op ops[4];
	int err;

	err = auth_prove(b->cfg.key, server_key, nonce, proof);
	if (err < 0)
		return err;
	sr.public_key.data = (uint8_t *)b->cfg.key->public_key;
	sr.public_key.len = WG_KEY_LEN;
	sr.nonce.data = (uint8_t *)nonce;
	sr.nonce.len = AUTH_NONCE_LEN;
	sr.proof.data = proof;
	sr.proof.len = sizeof(proof);

	memset(&b->sub, 0, offsetof(typeof(b->sub), md_initial));
	b->sub.start_tag.kind = T_SUB_START;
	b->sub.recv_tag.kind = T_SUB_RECV;
	b->sub.status_tag.kind = T_SUB_STATUS;
	b->sub.send = grpcbuf_pack(&sr.base);
	b->sub.recv = NULL;
	b->sub.details = grpc_empty_slice();
	grpc_metadata_array_init(&b->sub.md_initial);
	grpc_metadata_array_init(&b->sub.md_trailing);

	pthread_mutex_lock(&b->lock);
	if (b->closing) {
		err = -ECANCELED;
		goto unlock;
	}
	call = grpc_channel_create_registered_call(b->ch, NULL, GRPC_PROPAGATE_DEFAULTS, b->cq,
						   b->m_subscribe,
						   gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	if (!call) {
		err = -ENOMEM;
		goto unlock;
	}
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &b->sub.md_trailing;
	ops[0].data.recv_status_on_client.status = &b->sub.status;
	ops[0].data.recv_status_on_client.status_details = &b->sub.details;
	if (grpc_call_start_batch(call, ops, 1, &b->sub.status_tag, NULL) != GRPC_CALL_OK) {
		grpc_call_unref(call);
		err = -EIO;
		goto unlock;
	}
	b->sub.pending = 1;
	b->sub_call = call;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = b->sub.send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	if (grpc_call_start_batch(call, ops, 3, &b->sub.start_tag, NULL) == GRPC_CALL_OK)
		b->sub.pending++;
	else
		grpc_call_cancel(call, NULL);
	/* The initial metadata with the first message: the token's arrival then finds the
	 * server's features already read. */
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[0].data.recv_initial_metadata.recv_initial_metadata = &b->sub.md_initial;
	ops[1].op = GRPC_OP_RECV_MESSAGE;
	ops[1].data.recv_message.recv_message = &b->sub.recv;
	if (grpc_call_start_batch(call, ops, 2, &b->sub.recv_tag, NULL) == GRPC_CALL_OK)
		b->sub.pending++;
	else
		grpc_call_cancel(call, NULL);
	b->phase = P_SUBSCRIBE;
	err = 0;
unlock:
	pthread_mutex_unlock(&b->lock);
	sodium_memzero(proof, sizeof(proof));
	if (err < 0) {
		grpc_byte_buffer_destroy(b->sub.send);
		b->sub.send = NULL;
		grpc_metadata_array_destroy(&b->sub.md_initial);
		grpc_metadata_array_destroy(&b->sub.md_trailing);
	}
	return err;
}

static void on_challenge(struct gcli *b, struct unary *u)
{
	Wice__Signaling__Challenge *c = NULL;
	grpc_slice msg;
	int err = -EPROTO;

	pthread_mutex_lock(&b->lock);
	b->chal_call = NULL;
	pthread_mutex_unlock(&b->lock);
	if (u->status == GRPC_STATUS_OK && u->recv) {
		msg = grpcbuf_slice(u->recv);
		c = wice__signaling__challenge__unpack(NULL, GRPC_SLICE_LENGTH(msg),
						       GRPC_SLICE_START_PTR(msg));
		grpc_slice_unref(msg);
	}
	if (c && c->server_key.len == WG_KEY_LEN && c->nonce.len == AUTH_NONCE_LEN)
		err = start_subscribe(b, c->server_key.data, c->nonce.data);
	else
		log_debug("signal: %s: GetChallenge failed (status %d)", b->target, u->status);
	if (c)
		wice__signaling__challenge__free_unpacked(c, NULL);
	gcli_unary_free(u);
	if (err == -ECANCELED)
		b->phase = P_CLOSED;
	else if (err < 0)
		retry_later(b);
}

/* The stream is over and every batch on it completed: release it and try again later. */
static void sub_finish(struct gcli *b)
{
	grpc_call *call;

	pthread_mutex_lock(&b->lock);
	call = b->sub_call;
	b->sub_call = NULL;
	b->subscribed = false;
	sodium_memzero(b->token, sizeof(b->token));
	gpub_drop(b);
	pthread_mutex_unlock(&b->lock);
	log_debug("signal: %s: stream ended (status %d)", b->target, b->sub.status);
	grpc_call_unref(call);
	grpc_byte_buffer_destroy(b->sub.send);
	b->sub.send = NULL;
	grpc_metadata_array_destroy(&b->sub.md_initial);
	grpc_metadata_array_destroy(&b->sub.md_trailing);
	grpc_slice_unref(b->sub.details);
	if (b->phase == P_CLOSED || atomic_load(&b->closing)) {
		b->phase = P_CLOSED;
		return;
	}
	set_connected(b, false);
	retry_later(b);
}

static void sub_recv_next(struct gcli *b)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &b->sub.recv;
	pthread_mutex_lock(&b->lock);
	if (!b->closing &&
	    grpc_call_start_batch(b->sub_call, &op, 1, &b->sub.recv_tag, NULL) == GRPC_CALL_OK)
		b->sub.pending++;
	else
		b->sub.ended = true;
	pthread_mutex_unlock(&b->lock);
}

/* true when Subscribe's initial metadata lists feature in FEATURES_KEY ("a, b, ..."). */
static bool server_has(const grpc_metadata_array *md, const char *feature)
{
	size_t fl = strlen(feature);

	for (size_t i = 0; i < md->count; i++) {
		const grpc_metadata *m = &md->metadata[i];
		const char *v = (const char *)GRPC_SLICE_START_PTR(m->value);
		size_t vl = GRPC_SLICE_LENGTH(m->value), at = 0;

		if (grpc_slice_str_cmp(m->key, FEATURES_KEY))
			continue;
		while (at < vl) {
			size_t n = 0;

			while (at < vl && (v[at] == ',' || v[at] == ' '))
				at++;
			while (at + n < vl && v[at + n] != ',' && v[at + n] != ' ')
				n++;
			if (n == fl && !memcmp(v + at, feature, fl))
				return true;
			at += n;
		}
	}
	return false;
}

static void on_token(struct gcli *b, const ProtobufCBinaryData *token)
{
	bool stream = server_has(&b->sub.md_initial, FEATURE_STREAM);

	if (token->len != GCLI_TOKEN_LEN) {
		b->sub.ended = true;
		return;
	}
	pthread_mutex_lock(&b->lock);
	memcpy(b->token, token->data, GCLI_TOKEN_LEN);
	b->subscribed = true;
	b->stream_ok = stream;
	pthread_mutex_unlock(&b->lock);
	b->backoff_ms = b->cfg.backoff_min_ms;
	log_debug("signal: %s: subscribed (publishing %s)", b->target,
		  stream ? "on a stream" : "unary");
	set_connected(b, true);
}

static void on_envelope(struct gcli *b, const Wice__Signaling__Envelope *env)
{
	uint8_t stackbuf[2048], *buf = stackbuf;
	size_t len = wice__signaling__envelope__get_packed_size(env);

	if (len > sizeof(stackbuf) && !(buf = malloc(len)))
		return;
	wice__signaling__envelope__pack(env, buf);
	b->cfg.on_receive(b->cfg.ctx, buf, len);
	if (buf != stackbuf)
		free(buf);
}

static void on_sub_recv(struct gcli *b, bool ok)
{
	Wice__Signaling__ServerFrame *f = NULL;
	grpc_slice msg;

	b->sub.pending--;
	if (!ok || !b->sub.recv) {
		b->sub.ended = true;
		return;
	}
	msg = grpcbuf_slice(b->sub.recv);
	grpc_byte_buffer_destroy(b->sub.recv);
	b->sub.recv = NULL;
	f = wice__signaling__server_frame__unpack(NULL, GRPC_SLICE_LENGTH(msg),
						  GRPC_SLICE_START_PTR(msg));
	grpc_slice_unref(msg);
	if (!f) {
		log_debug("signal: %s: malformed ServerFrame, ignoring", b->target);
	} else if (f->kind_case == WICE__SIGNALING__SERVER_FRAME__KIND_SESSION_TOKEN) {
		if (!b->connected)
			on_token(b, &f->session_token);
	} else if (f->kind_case == WICE__SIGNALING__SERVER_FRAME__KIND_ENVELOPE) {
		if (b->connected && !atomic_load(&b->closing))
			on_envelope(b, f->envelope);
	} else if (f->kind_case == WICE__SIGNALING__SERVER_FRAME__KIND_ERROR && f->error) {
		log_debug("signal: %s: server error %u, ignoring", b->target, f->error->code);
	}
	if (f)
		wice__signaling__server_frame__free_unpacked(f, NULL);
	if (!b->sub.ended)
		sub_recv_next(b);
	else
		grpc_call_cancel(b->sub_call, NULL);
}

/* ---- the thread ---- */

static void dispatch(struct gcli *b, struct gtag *t, bool ok)
{
	switch (t->kind) {
	case T_CHALLENGE:
		on_challenge(b, container_of(t, struct unary, tag));
		return;
	case T_PUBLISH:
		gpub_on_unary(b, container_of(t, struct unary, tag));
		return;
	case T_STREAM_SEND:
		gpub_on_stream_send(b, t, ok);
		return;
	case T_STREAM_STATUS:
		gpub_on_stream_status(b, t);
		return;
	case T_SUB_START:
		b->sub.pending--;
		if (!ok)
			b->sub.ended = true;
		break;
	case T_SUB_RECV:
		on_sub_recv(b, ok);
		break;
	case T_SUB_STATUS:
		b->sub.pending--;
		b->sub.ended = true;
		break;
	}
	if (b->sub.ended && !b->sub.pending)
		sub_finish(b);
}

static void *gcli_thread(void *arg)
{
	struct gcli *b = arg;

	for (;;) {
		gpr_timespec deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
		uint64_t now = gcli_mono_ms(), idle;
		grpc_event ev;

		if (b->phase == P_WAIT) {
			if (now >= b->retry_at_ms) {
				start_challenge(b);
				continue;
			}
			deadline = after_ms(b->retry_at_ms - now);
		} else if ((idle = gpub_idle(b, now))) {
			deadline = after_ms(idle > now ? idle - now : 0);
		}
		ev = grpc_completion_queue_next(b->cq, deadline, NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE)
			dispatch(b, ev.tag, ev.success);
	}
	return NULL;
}

/* ---- open and close ---- */

static int channel_create(struct gcli *b, const char *target, bool tls)
{
	grpc_arg args[] = {
		/* One connection per backend, as separate daemons have, not one shared. */
		grpcbuf_int_arg(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1),
		grpcbuf_int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, GCLI_MAX_FRAME),
		grpcbuf_int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, GCLI_KEEPALIVE_MS),
		grpcbuf_int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, GCLI_PING_TIMEOUT_MS),
		grpcbuf_int_arg(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0),
		grpcbuf_int_arg(GRPC_ARG_ENABLE_RETRIES, 0),
		grpcbuf_int_arg(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, (int)b->cfg.backoff_min_ms),
		grpcbuf_int_arg(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, (int)b->cfg.backoff_min_ms),
		grpcbuf_int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, (int)b->cfg.backoff_max_ms),
		grpcbuf_int_arg(GRPC_ARG_ENABLE_CHANNELZ, 0),
	};
	grpc_channel_args ca = {.num_args = sizeof(args) / sizeof(args[0]), .args = args};
	grpc_channel_credentials *creds;
	char *roots = NULL;
	int err;

	if (tls) {
		if (b->cfg.tls_ca_file &&
		    (err = file_read_all(b->cfg.tls_ca_file, 4 << 20, &roots, NULL)) < 0)
			return err;
		creds = grpc_ssl_credentials_create(roots, NULL, NULL, NULL);
		free(roots);
	} else {
		creds = grpc_insecure_credentials_create();
	}
	if (!creds)
		return -ENOMEM;
	b->ch = grpc_channel_create(target, creds, &ca);
	grpc_channel_credentials_release(creds);
	if (!b->ch)
		return -ENOMEM;
	b->m_challenge = grpc_channel_register_call(b->ch, METHOD_CHALLENGE, NULL, NULL);
	b->m_subscribe = grpc_channel_register_call(b->ch, METHOD_SUBSCRIBE, NULL, NULL);
	b->m_publish = grpc_channel_register_call(b->ch, METHOD_PUBLISH, NULL, NULL);
	b->m_stream = grpc_channel_register_call(b->ch, METHOD_PUBLISH_STREAM, NULL, NULL);
	return 0;
}

/* "grpc://HOST:PORT" (IPv6 as [ADDR]:PORT, an optional trailing '/') -> "HOST:PORT". */
static int parse_url(const char *url, const char *scheme, char **ret)
{
	size_t sl = strlen(scheme), n;
	const char *hp;
	char *t;

	if (strncmp(url, scheme, sl) || strncmp(url + sl, "://", 3))
		return -EPROTONOSUPPORT;
	hp = url + sl + 3;
	n = strcspn(hp, "/");
	if (!n || n > 255 || (hp[n] && strcmp(hp + n, "/")) || !memchr(hp, ':', n))
		return -EINVAL;
	t = strndup(hp, n);
	if (!t)
		return -ENOMEM;
	*ret = t;
	return 0;
}

static void gcli_free(struct gcli *b)
{
	if (b->ch)
		grpc_channel_destroy(b->ch);
	if (b->cq)
		grpc_completion_queue_destroy(b->cq);
	pthread_mutex_destroy(&b->lock);
	sodium_memzero(&b->key, sizeof(b->key));
	free(b->target);
	free(b);
	grpc_shutdown();
}

static int gcli_open(const struct signal_backend_ops *ops, const char *url,
		     const struct signal_backend_config *cfg, struct signal_backend **ret)
{
	struct gcli *b;
	char *target = NULL;
	int err;

	if (!cfg || !cfg->key || !cfg->on_receive)
		return -EINVAL;
	err = parse_url(url, ops->scheme, &target);
	if (err < 0)
		return err;
	if (sodium_init() < 0) {
		free(target);
		return -EIO;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		free(target);
		return -ENOMEM;
	}
	grpc_init();
	pthread_mutex_init(&b->lock, NULL);
	/* base.ops and base.url are signal_backend_open's to set (backend.h). */
	b->target = target;
	b->cfg = *cfg;
	b->key = *cfg->key;
	b->cfg.key = &b->key;
	if (!b->cfg.backoff_min_ms)
		b->cfg.backoff_min_ms = GCLI_BACKOFF_MIN_MS;
	if (!b->cfg.backoff_max_ms)
		b->cfg.backoff_max_ms = GCLI_BACKOFF_MAX_MS;
	if (b->cfg.backoff_max_ms < b->cfg.backoff_min_ms)
		b->cfg.backoff_max_ms = b->cfg.backoff_min_ms;
	b->backoff_ms = b->cfg.backoff_min_ms;
	b->phase = P_WAIT;
	b->retry_at_ms = 0; /* the first attempt is immediate */
	b->cq = grpc_completion_queue_create_for_next(NULL);
	err = b->cq ? channel_create(b, target, ops == &signal_backend_grpcs) : -ENOMEM;
	if (!err)
		err = -pthread_create(&b->thread, NULL, gcli_thread, b);
	if (err < 0) {
		if (b->cq) {
			grpc_completion_queue_shutdown(b->cq);
			while (grpc_completion_queue_next(b->cq,
							  gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
				       .type != GRPC_QUEUE_SHUTDOWN)
				;
		}
		gcli_free(b);
		return err;
	}
	*ret = &b->base;
	return 0;
}

static void gcli_close(struct signal_backend *base)
{
	struct gcli *b;

	if (!base)
		return;
	b = container_of(base, struct gcli, base);
	/* Once closing is set nothing starts a call, so the queue can be shut down: what is in
	 * flight is cancelled, completes, and then the thread sees the shutdown. */
	pthread_mutex_lock(&b->lock);
	b->closing = true;
	if (b->chal_call)
		grpc_call_cancel(b->chal_call, NULL);
	if (b->sub_call)
		grpc_call_cancel(b->sub_call, NULL);
	gpub_cancel(b);
	pthread_mutex_unlock(&b->lock);
	grpc_completion_queue_shutdown(b->cq);
	pthread_join(b->thread, NULL);
	gcli_free(b);
}

static int gcli_open_grpc(const char *url, const struct signal_backend_config *cfg,
			  struct signal_backend **ret)
{
	return gcli_open(&signal_backend_grpc, url, cfg, ret);
}

static int gcli_open_grpcs(const char *url, const struct signal_backend_config *cfg,
			   struct signal_backend **ret)
{
	return gcli_open(&signal_backend_grpcs, url, cfg, ret);
}

const struct signal_backend_ops signal_backend_grpc = {
	.scheme = "grpc",
	.open = gcli_open_grpc,
	.publish = gpub_publish,
	.close = gcli_close,
};

const struct signal_backend_ops signal_backend_grpcs = {
	.scheme = "grpcs",
	.open = gcli_open_grpcs,
	.publish = gpub_publish,
	.close = gcli_close,
};
