/* SPDX-License-Identifier: MIT */
/* The gRPC transport's test fixture: see grpc_fixture.h. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <sodium.h>
#include "grpc_fixture.h"
#include "signal/auth.h"
#include "util/key.h"

/* ---- a peer: a key, a backend and what it saw ---- */

static void on_receive(void *ctx, const uint8_t *env, size_t len)
{
	struct peer *p = ctx;

	pthread_mutex_lock(&p->lock);
	if (p->n_recv < MAX_RECV) {
		p->recv[p->n_recv] = malloc(len);
		memcpy(p->recv[p->n_recv], env, len);
		p->recv_len[p->n_recv++] = len;
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void on_state(void *ctx, struct signal_backend *b, bool connected)
{
	struct peer *p = ctx;

	pthread_mutex_lock(&p->lock);
	p->connected = connected;
	if (connected)
		p->ups++;
	else
		p->downs++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void peer_init(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(key_generate_private(p->key.private_key), 0);
	assert_int_equal(key_public_from_private(p->key.public_key, p->key.private_key), 0);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
}

void peer_open(struct peer *p, const char *scheme, int port, const char *ca)
{
	struct signal_backend_config cfg = {
		.key = &p->key,
		.on_receive = on_receive,
		.on_state = on_state,
		.ctx = p,
		.tls_ca_file = ca,
		.backoff_min_ms = 50,
		.backoff_max_ms = 400,
	};
	char url[64];

	p->ops = strcmp(scheme, "grpcs") ? &signal_backend_grpc : &signal_backend_grpcs;
	snprintf(url, sizeof(url), "%s://127.0.0.1:%d", scheme, port);
	assert_int_equal(p->ops->open(url, &cfg, &p->b), 0);
}

void peer_close(struct peer *p)
{
	if (p->b)
		p->ops->close(p->b);
	p->b = NULL;
	for (size_t i = 0; i < p->n_recv; i++)
		free(p->recv[i]);
	p->n_recv = 0;
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

static struct timespec deadline_in(unsigned int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* Waits until p's connected state is want (and, when connecting, its ups reached min_ups). */
bool wait_state(struct peer *p, bool want, unsigned int min_ups)
{
	struct timespec dl = deadline_in(WAIT_MS);
	bool ok;

	pthread_mutex_lock(&p->lock);
	while (!(p->connected == want && p->ups >= min_ups))
		if (pthread_cond_timedwait(&p->cond, &p->lock, &dl) == ETIMEDOUT)
			break;
	ok = p->connected == want && p->ups >= min_ups;
	pthread_mutex_unlock(&p->lock);
	return ok;
}

bool wait_recv(struct peer *p, size_t n, unsigned int ms)
{
	struct timespec dl = deadline_in(ms);
	bool ok;

	pthread_mutex_lock(&p->lock);
	while (p->n_recv < n)
		if (pthread_cond_timedwait(&p->cond, &p->lock, &dl) == ETIMEDOUT)
			break;
	ok = p->n_recv >= n;
	pthread_mutex_unlock(&p->lock);
	return ok;
}

size_t n_received(struct peer *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->n_recv;
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* Seals a Message with session_id from->to and publishes it through from's backend. */
void send_sealed(struct peer *from, const struct peer *to, uint64_t session_id)
{
	Wice__Signaling__Message msg = WICE__SIGNALING__MESSAGE__INIT;
	Wice__Signaling__Credentials cred = WICE__SIGNALING__CREDENTIALS__INIT;
	uint8_t *buf;
	size_t len;

	cred.ufrag = "ufrag";
	cred.pwd = "a-password-of-ice";
	msg.session_id = session_id;
	msg.credentials = &cred;
	assert_int_equal(envelope_seal(&from->key, to->key.public_key, &msg, &buf, &len), 0);
	assert_int_equal(from->ops->publish(from->b, buf, len), 0);
	free(buf);
}

/* Opens p's i-th received envelope: it must come from `from` and carry session_id. */
void check_received(struct peer *p, size_t i, const struct peer *from, uint64_t session_id)
{
	Wice__Signaling__Message *msg;
	uint8_t sender[WG_KEY_LEN];

	pthread_mutex_lock(&p->lock);
	assert_true(i < p->n_recv);
	assert_int_equal(envelope_open(&p->key, NULL, envelope_now_ms(), p->recv[i], p->recv_len[i],
				       sender, &msg),
			 0);
	pthread_mutex_unlock(&p->lock);
	assert_memory_equal(sender, from->key.public_key, WG_KEY_LEN);
	assert_int_equal(msg->session_id, session_id);
	assert_non_null(msg->credentials);
	assert_string_equal(msg->credentials->ufrag, "ufrag");
	wice__signaling__message__free_unpacked(msg, NULL);
}

/* ---- the server under test ---- */

int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

void server_up(struct fixture *f, const char *cert, const char *key)
{
	assert_int_equal(server_grpc_start(&f->srv, f->addr, cert, key), 0);
}

int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->srv.router = router_new();
	f->srv.auth = auth_server_new();
	assert_non_null(f->srv.router);
	assert_non_null(f->srv.auth);
	f->port = free_port();
	snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%d", f->port);
	*state = f;
	return 0;
}

int teardown(void **state)
{
	struct fixture *f = *state;

	server_grpc_stop(&f->srv);
	assert_int_equal(router_topics(f->srv.router), 0);
	router_free(f->srv.router);
	auth_server_free(f->srv.auth);
	free(f);
	return 0;
}

uint64_t stat_of(_Atomic uint64_t *counter)
{
	return atomic_load(counter);
}

/* ---- raw gRPC calls: what a backend never sends ---- */

void raw_open(struct raw *r, int port)
{
	grpc_arg arg = {.type = GRPC_ARG_INTEGER,
			.key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
			.value.integer = 1};
	grpc_channel_args args = {.num_args = 1, .args = &arg};
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	char target[32];

	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	r->ch = grpc_channel_create(target, creds, &args);
	grpc_channel_credentials_release(creds);
	r->cq = grpc_completion_queue_create_for_next(NULL);
}

void raw_close(struct raw *r)
{
	grpc_completion_queue_shutdown(r->cq);
	while (grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(r->cq);
	grpc_channel_destroy(r->ch);
}

/* Waits for tag's completion; completions of other tags seen meanwhile are remembered, as
 * a call's batches may complete in any order. */
void raw_wait(struct raw *r, void *tag)
{
	static void *seen[8];
	static size_t n_seen;
	grpc_event ev;

	for (size_t i = 0; i < n_seen; i++)
		if (seen[i] == tag) {
			seen[i] = seen[--n_seen];
			return;
		}
	for (;;) {
		ev = grpc_completion_queue_next(
			r->cq,
			gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				     gpr_time_from_seconds(10, GPR_TIMESPAN)),
			NULL);
		assert_int_equal(ev.type, GRPC_OP_COMPLETE);
		if (ev.tag == tag)
			return;
		assert_true(n_seen < 8);
		seen[n_seen++] = ev.tag;
	}
}

grpc_byte_buffer *bb_of(const void *data, size_t len)
{
	grpc_slice s = grpc_slice_from_copied_buffer(data, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);

	grpc_slice_unref(s);
	return bb;
}

grpc_byte_buffer *bb_pack(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len);
	grpc_byte_buffer *bb;

	protobuf_c_message_pack(m, buf);
	bb = bb_of(buf, len);
	free(buf);
	return bb;
}

/* The message as one malloc'd buffer; *len gets its length. */
uint8_t *bb_bytes(grpc_byte_buffer *bb, size_t *len)
{
	grpc_byte_buffer_reader rd;
	grpc_slice s;
	uint8_t *out;

	assert_true(grpc_byte_buffer_reader_init(&rd, bb));
	s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	*len = GRPC_SLICE_LENGTH(s);
	out = malloc(*len + 1);
	memcpy(out, GRPC_SLICE_START_PTR(s), *len);
	grpc_slice_unref(s);
	return out;
}

/* A unary call; returns its status, *resp (may be NULL) the reply. */
grpc_status_code raw_unary(struct raw *r, const char *method, grpc_byte_buffer *req,
			   grpc_byte_buffer **resp)
{
	grpc_metadata_array md_i, md_t;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details, m = grpc_slice_from_static_string(method);
	grpc_byte_buffer *recv = NULL;
	grpc_call *call;
	grpc_op ops[6];

	grpc_metadata_array_init(&md_i);
	grpc_metadata_array_init(&md_t);
	call = grpc_channel_create_call(
		r->ch, NULL, GRPC_PROPAGATE_DEFAULTS, r->cq, m, NULL,
		gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(5, GPR_TIMESPAN)),
		NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = req;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_i;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &md_t;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	assert_int_equal(grpc_call_start_batch(call, ops, 6, call, NULL), GRPC_CALL_OK);
	raw_wait(r, call);
	grpc_call_unref(call);
	grpc_byte_buffer_destroy(req);
	grpc_metadata_array_destroy(&md_i);
	grpc_metadata_array_destroy(&md_t);
	grpc_slice_unref(details);
	if (resp)
		*resp = recv;
	else if (recv)
		grpc_byte_buffer_destroy(recv);
	return status;
}

/* GetChallenge for pub, then a proof with prover's private key over pub. */
void raw_prove(struct raw *r, const uint8_t pub[static WG_KEY_LEN],
	       const struct envelope_key *prover, Wice__Signaling__SubscribeRequest *sr,
	       uint8_t nonce[static AUTH_NONCE_LEN], uint8_t proof[static AUTH_PROOF_LEN])
{
	Wice__Signaling__ChallengeRequest cr = WICE__SIGNALING__CHALLENGE_REQUEST__INIT;
	Wice__Signaling__Challenge *ch;
	struct envelope_key k = *prover;
	grpc_byte_buffer *resp;
	uint8_t *bytes;
	size_t len;

	cr.public_key.data = (uint8_t *)pub;
	cr.public_key.len = WG_KEY_LEN;
	assert_int_equal(raw_unary(r, M_CHALLENGE, bb_pack(&cr.base), &resp), GRPC_STATUS_OK);
	bytes = bb_bytes(resp, &len);
	grpc_byte_buffer_destroy(resp);
	ch = wice__signaling__challenge__unpack(NULL, len, bytes);
	free(bytes);
	assert_non_null(ch);
	assert_int_equal(ch->nonce.len, AUTH_NONCE_LEN);
	assert_int_equal(ch->server_key.len, WG_KEY_LEN);
	memcpy(k.public_key, pub, WG_KEY_LEN); /* claims pub, knows prover's private key */
	assert_int_equal(auth_prove(&k, ch->server_key.data, ch->nonce.data, proof), 0);
	memcpy(nonce, ch->nonce.data, AUTH_NONCE_LEN);
	wice__signaling__challenge__free_unpacked(ch, NULL);
	sr->public_key.data = (uint8_t *)pub;
	sr->public_key.len = WG_KEY_LEN;
	sr->nonce.data = nonce;
	sr->nonce.len = AUTH_NONCE_LEN;
	sr->proof.data = proof;
	sr->proof.len = AUTH_PROOF_LEN;
}

/* A Subscribe stream. */

void raw_sub_start(struct raw *r, struct raw_sub *s, grpc_byte_buffer *req)
{
	grpc_slice m = grpc_slice_from_static_string(M_SUBSCRIBE);
	grpc_op ops[5];

	memset(s, 0, sizeof(*s));
	grpc_metadata_array_init(&s->md_i);
	grpc_metadata_array_init(&s->md_t);
	s->call = grpc_channel_create_call(r->ch, NULL, GRPC_PROPAGATE_DEFAULTS, r->cq, m, NULL,
					   gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &s->md_t;
	ops[0].data.recv_status_on_client.status = &s->status;
	ops[0].data.recv_status_on_client.status_details = &s->details;
	assert_int_equal(grpc_call_start_batch(s->call, ops, 1, &s->tag_status, NULL),
			 GRPC_CALL_OK);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = req;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_i;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &s->recv;
	assert_int_equal(grpc_call_start_batch(s->call, ops, 5, &s->tag_start, NULL), GRPC_CALL_OK);
}

void raw_sub_free(struct raw_sub *s)
{
	if (s->recv)
		grpc_byte_buffer_destroy(s->recv);
	grpc_metadata_array_destroy(&s->md_i);
	grpc_metadata_array_destroy(&s->md_t);
	grpc_slice_unref(s->details);
	grpc_call_unref(s->call);
}

/* Subscribes as pub proving with prover's key. Returns the stream's status if it ended at
 * once, else GRPC_STATUS_OK with the session token (the stream is then cancelled). */
grpc_status_code raw_subscribe(struct raw *r, const uint8_t pub[static WG_KEY_LEN],
			       const struct envelope_key *prover, uint8_t token[32])
{
	Wice__Signaling__SubscribeRequest sr = WICE__SIGNALING__SUBSCRIBE_REQUEST__INIT;
	Wice__Signaling__ServerFrame *f;
	uint8_t nonce[AUTH_NONCE_LEN], proof[AUTH_PROOF_LEN], *bytes;
	grpc_byte_buffer *req;
	struct raw_sub s;
	grpc_status_code status;
	size_t len;

	raw_prove(r, pub, prover, &sr, nonce, proof);
	req = bb_pack(&sr.base);
	raw_sub_start(r, &s, req);
	raw_wait(r, &s.tag_start);
	grpc_byte_buffer_destroy(req);
	if (!s.recv) {
		raw_wait(r, &s.tag_status);
		status = s.status;
		raw_sub_free(&s);
		return status;
	}
	bytes = bb_bytes(s.recv, &len);
	f = wice__signaling__server_frame__unpack(NULL, len, bytes);
	free(bytes);
	assert_non_null(f);
	assert_int_equal(f->kind_case, WICE__SIGNALING__SERVER_FRAME__KIND_SESSION_TOKEN);
	assert_int_equal(f->session_token.len, 32);
	memcpy(token, f->session_token.data, 32);
	wice__signaling__server_frame__free_unpacked(f, NULL);
	grpc_call_cancel(s.call, NULL);
	raw_wait(r, &s.tag_status);
	raw_sub_free(&s);
	return GRPC_STATUS_OK;
}

void peers_up(struct peer *a, struct peer *b, int port)
{
	peer_init(a);
	peer_init(b);
	peer_open(a, "grpc", port, NULL);
	peer_open(b, "grpc", port, NULL);
	assert_true(wait_state(a, true, 1));
	assert_true(wait_state(b, true, 1));
}
