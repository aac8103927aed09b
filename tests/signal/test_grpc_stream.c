/* SPDX-License-Identifier: MIT */
/*
 * PublishStream, the gRPC transport's client-streaming publish, end to end over loopback with
 * a real server in this process: backends publish on it when the server announces it (and
 * with unary Publish when it does not), every limit of unary Publish applies to each message
 * on it and ends the stream with Publish's status, a stream that falls silent is cancelled,
 * and a method the server does not serve is answered UNIMPLEMENTED, not held.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <sodium.h>
#include "grpc_fixture.h"
#include "server/server.h"
#include "signal/auth.h"
#include "util/key.h"
#include "util/log.h"

#define N_EACH	     40
#define STREAM_IDLE  5000  /* the client's GCLI_STREAM_IDLE_MS */
#define STALL_MARGIN 15000 /* SERVER_STALL_TIMEOUT_MS and then some */

/* ---- a raw PublishStream and a live raw subscription ---- */

struct raw_stream {
	grpc_call *call;
	grpc_metadata_array md_i, md_t;
	grpc_byte_buffer *recv;
	grpc_status_code status;
	grpc_slice details;
	int tag_send, tag_status;
};

static void stream_open(struct raw *r, struct raw_stream *s)
{
	grpc_slice m = grpc_slice_from_static_string(M_STREAM);
	grpc_op ops[3];

	memset(s, 0, sizeof(*s));
	grpc_metadata_array_init(&s->md_i);
	grpc_metadata_array_init(&s->md_t);
	s->details = grpc_empty_slice();
	s->call = grpc_channel_create_call(r->ch, NULL, GRPC_PROPAGATE_DEFAULTS, r->cq, m, NULL,
					   gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[0].data.recv_initial_metadata.recv_initial_metadata = &s->md_i;
	ops[1].op = GRPC_OP_RECV_MESSAGE;
	ops[1].data.recv_message.recv_message = &s->recv;
	ops[2].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[2].data.recv_status_on_client.trailing_metadata = &s->md_t;
	ops[2].data.recv_status_on_client.status = &s->status;
	ops[2].data.recv_status_on_client.status_details = &s->details;
	assert_int_equal(grpc_call_start_batch(s->call, ops, 3, &s->tag_status, NULL),
			 GRPC_CALL_OK);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	assert_int_equal(grpc_call_start_batch(s->call, ops, 1, &s->tag_send, NULL), GRPC_CALL_OK);
	raw_wait(r, &s->tag_send);
}

/* Sends one message (taking bb over); the send may fail once the server has ended it. */
static void stream_send(struct raw *r, struct raw_stream *s, grpc_byte_buffer *bb)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = bb;
	assert_int_equal(grpc_call_start_batch(s->call, &op, 1, &s->tag_send, NULL), GRPC_CALL_OK);
	raw_wait(r, &s->tag_send);
	grpc_byte_buffer_destroy(bb);
}

static void stream_half_close(struct raw *r, struct raw_stream *s)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	assert_int_equal(grpc_call_start_batch(s->call, &op, 1, &s->tag_send, NULL), GRPC_CALL_OK);
	raw_wait(r, &s->tag_send);
}

/* Waits for the stream's end: its status, and in *delivered (may be NULL) the response's
 * count (-1 without a response). */
static grpc_status_code stream_end(struct raw *r, struct raw_stream *s, int64_t *delivered)
{
	grpc_status_code status;

	raw_wait(r, &s->tag_status);
	status = s->status;
	if (delivered)
		*delivered = -1;
	if (s->recv) {
		Wice__Signaling__PublishResponse *resp;
		size_t len;
		uint8_t *bytes = bb_bytes(s->recv, &len);

		resp = wice__signaling__publish_response__unpack(NULL, len, bytes);
		free(bytes);
		assert_non_null(resp);
		if (delivered)
			*delivered = resp->delivered;
		wice__signaling__publish_response__free_unpacked(resp, NULL);
		grpc_byte_buffer_destroy(s->recv);
	}
	grpc_metadata_array_destroy(&s->md_i);
	grpc_metadata_array_destroy(&s->md_t);
	grpc_slice_unref(s->details);
	grpc_call_unref(s->call);
	return status;
}

/* Subscribes key on r and keeps the subscription (its token valid) until live_end. */
static void live_sub(struct raw *r, const struct envelope_key *key, struct raw_sub *s,
		     uint8_t token[32])
{
	Wice__Signaling__SubscribeRequest sr = WICE__SIGNALING__SUBSCRIBE_REQUEST__INIT;
	Wice__Signaling__ServerFrame *fr;
	uint8_t nonce[AUTH_NONCE_LEN], proof[AUTH_PROOF_LEN], *bytes;
	grpc_byte_buffer *req;
	size_t len;

	raw_prove(r, key->public_key, key, &sr, nonce, proof);
	req = bb_pack(&sr.base);
	raw_sub_start(r, s, req);
	raw_wait(r, &s->tag_start);
	grpc_byte_buffer_destroy(req);
	assert_non_null(s->recv);
	bytes = bb_bytes(s->recv, &len);
	fr = wice__signaling__server_frame__unpack(NULL, len, bytes);
	free(bytes);
	assert_non_null(fr);
	assert_int_equal(fr->kind_case, WICE__SIGNALING__SERVER_FRAME__KIND_SESSION_TOKEN);
	memcpy(token, fr->session_token.data, 32);
	wice__signaling__server_frame__free_unpacked(fr, NULL);
}

static void live_end(struct raw *r, struct raw_sub *s)
{
	grpc_call_cancel(s->call, NULL);
	raw_wait(r, &s->tag_status);
	raw_sub_free(s);
}

/* An unsealed but well-formed envelope from -> to (the server reads only the keys). */
struct env_buf {
	Wice__Signaling__Envelope env;
	uint8_t eph[32], nonce[ENVELOPE_NONCE_LEN], ct[64];
};

static void env_make(struct env_buf *e, const uint8_t from[static 32], const uint8_t to[static 32])
{
	wice__signaling__envelope__init(&e->env);
	randombytes_buf(e->eph, sizeof(e->eph));
	randombytes_buf(e->nonce, sizeof(e->nonce));
	randombytes_buf(e->ct, sizeof(e->ct));
	e->env.sender.data = (uint8_t *)from;
	e->env.sender.len = 32;
	e->env.recipient.data = (uint8_t *)to;
	e->env.recipient.len = 32;
	e->env.ephemeral.data = e->eph;
	e->env.ephemeral.len = sizeof(e->eph);
	e->env.nonce.data = e->nonce;
	e->env.nonce.len = sizeof(e->nonce);
	e->env.ciphertext.data = e->ct;
	e->env.ciphertext.len = sizeof(e->ct);
}

/* PublishRequest{token, envelopes: n copies of e}. */
static grpc_byte_buffer *request_of(const uint8_t token[32], struct env_buf *e, size_t n)
{
	Wice__Signaling__PublishRequest pr = WICE__SIGNALING__PUBLISH_REQUEST__INIT;
	Wice__Signaling__Envelope **envs = calloc(n, sizeof(*envs));
	grpc_byte_buffer *bb;

	for (size_t i = 0; i < n; i++)
		envs[i] = &e->env;
	pr.session_token.data = (uint8_t *)token;
	pr.session_token.len = 32;
	pr.n_envelopes = n;
	pr.envelopes = envs;
	bb = bb_pack(&pr.base);
	free(envs);
	return bb;
}

static void key_make(struct envelope_key *k)
{
	assert_int_equal(key_generate_private(k->private_key), 0);
	assert_int_equal(key_public_from_private(k->public_key, k->private_key), 0);
}

/* ---- tests ---- */

/* Two backends trade envelopes both ways on their streams (one each, not a call per
 * publish); a stream left idle is closed by its client before the server would cancel it,
 * and the next publish opens another. */
static void test_stream_exchange(void **state)
{
	struct fixture *f = *state;
	struct peer a, b;

	server_up(f, NULL, NULL);
	peers_up(&a, &b, f->port);
	for (uint64_t i = 0; i < N_EACH; i++) {
		send_sealed(&a, &b, 1000 + i);
		send_sealed(&b, &a, 2000 + i);
	}
	assert_true(wait_recv(&b, N_EACH, WAIT_MS));
	assert_true(wait_recv(&a, N_EACH, WAIT_MS));
	/* One stream per client keeps its order. */
	for (size_t i = 0; i < N_EACH; i++)
		check_received(&b, i, &a, 1000 + i);
	assert_int_equal(stat_of(&f->srv.stats.publish_streams), 2);
	assert_int_equal(stat_of(&f->srv.stats.published), 2 * N_EACH);

	/* Idle past the client's close, short of the server's stall timeout: closed cleanly. */
	usleep((STREAM_IDLE + 2000) * 1000);
	send_sealed(&a, &b, 3000);
	assert_true(wait_recv(&b, N_EACH + 1, WAIT_MS));
	check_received(&b, N_EACH, &a, 3000);
	assert_int_equal(stat_of(&f->srv.stats.publish_streams), 3);
	assert_int_equal(stat_of(&f->srv.stats.stalled), 0);
	assert_int_equal(stat_of(&f->srv.stats.oversized) + stat_of(&f->srv.stats.malformed), 0);
	assert_int_equal(a.downs + b.downs, 0);
	peer_close(&a);
	peer_close(&b);
	/* Clients leaving end their streams between messages: nothing to count. */
	usleep(300000);
	assert_int_equal(stat_of(&f->srv.stats.oversized) + stat_of(&f->srv.stats.malformed), 0);
}

/* Every check of unary Publish applies to each message of a stream, with the same status,
 * and ends the stream: a forged sender, an unknown token, a malformed request, too many
 * envelopes, a message over the size limit, and the rate limit. Good messages before a
 * refusal were routed, and a stream the client closes answers their count. */
static void test_stream_limits(void **state)
{
	struct fixture *f = *state;
	struct envelope_key ka, kb, kc;
	struct raw_sub sa, sb;
	struct raw_stream s;
	struct env_buf good, forged;
	uint8_t ta[32], tb[32], bogus[32];
	size_t big = SERVER_MAX_FRAME + 4096;
	uint8_t *junk = calloc(1, big);
	struct raw r, r2;
	int64_t delivered;

	f->srv.rate_per_sec = 1;
	f->srv.rate_burst = 200;
	server_up(f, NULL, NULL);
	key_make(&ka);
	key_make(&kb);
	key_make(&kc);
	raw_open(&r, f->port);
	live_sub(&r, &ka, &sa, ta);
	live_sub(&r, &kb, &sb, tb);
	env_make(&good, ka.public_key, kb.public_key);
	env_make(&forged, kc.public_key, kb.public_key);

	/* Good messages, then the client closes: OK with the count. */
	stream_open(&r, &s);
	stream_send(&r, &s, request_of(ta, &good, 3));
	stream_send(&r, &s, request_of(ta, &good, 2));
	stream_half_close(&r, &s);
	assert_int_equal(stream_end(&r, &s, &delivered), GRPC_STATUS_OK);
	assert_int_equal(delivered, 5);
	assert_int_equal(stat_of(&f->srv.stats.published), 5);

	/* A sender that is not the token's key: refused as unary is. */
	stream_open(&r, &s);
	stream_send(&r, &s, request_of(ta, &good, 1));
	stream_send(&r, &s, request_of(ta, &forged, 1));
	assert_int_equal(stream_end(&r, &s, NULL), GRPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(stat_of(&f->srv.stats.forged_sender), 1);
	assert_int_equal(raw_unary(&r, M_PUBLISH, request_of(ta, &forged, 1), NULL),
			 GRPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(stat_of(&f->srv.stats.forged_sender), 2);

	/* A token nobody was given. */
	randombytes_buf(bogus, sizeof(bogus));
	stream_open(&r, &s);
	stream_send(&r, &s, request_of(bogus, &good, 1));
	assert_int_equal(stream_end(&r, &s, NULL), GRPC_STATUS_PERMISSION_DENIED);
	assert_int_equal(stat_of(&f->srv.stats.forged_sender), 3);

	/* Undecodable, and a batch over GSRV_PUBLISH_BATCH (64). */
	stream_open(&r, &s);
	stream_send(&r, &s, bb_of("\x0a\x05", 2));
	assert_int_equal(stream_end(&r, &s, NULL), GRPC_STATUS_INVALID_ARGUMENT);
	stream_open(&r, &s);
	stream_send(&r, &s, request_of(ta, &good, 65));
	assert_int_equal(stream_end(&r, &s, NULL), GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(stat_of(&f->srv.stats.malformed), 2);
	assert_int_equal(raw_unary(&r, M_PUBLISH, request_of(ta, &good, 65), NULL),
			 GRPC_STATUS_INVALID_ARGUMENT);

	/* Over the size limit: gRPC itself refuses it, as for unary. */
	junk[0] = 0x0a;
	stream_open(&r, &s);
	stream_send(&r, &s, bb_of(junk, big));
	assert_int_equal(stream_end(&r, &s, NULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(raw_unary(&r, M_PUBLISH, bb_of(junk, big), NULL),
			 GRPC_STATUS_RESOURCE_EXHAUSTED);
	free(junk);
	/* Unary's is counted when the server's answer completes, just after the client's. */
	for (int i = 0; i < 200 && stat_of(&f->srv.stats.oversized) < 2; i++)
		usleep(10000);
	assert_int_equal(stat_of(&f->srv.stats.oversized), 2);

	/* The rate limit is the connection's, across its streams and calls: 200 at once, then
	 * 1/s. On a fresh connection, 194 pass on a stream and the next 64 are refused, and so
	 * are as many on a unary call of the same connection. */
	raw_open(&r2, f->port);
	stream_open(&r2, &s);
	for (int i = 0; i < 3; i++)
		stream_send(&r2, &s, request_of(ta, &good, 64));
	stream_send(&r2, &s, request_of(ta, &good, 2));
	stream_send(&r2, &s, request_of(ta, &good, 64));
	assert_int_equal(stream_end(&r2, &s, NULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(stat_of(&f->srv.stats.rate_limited), 1);
	assert_int_equal(raw_unary(&r2, M_PUBLISH, request_of(ta, &good, 64), NULL),
			 GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_int_equal(stat_of(&f->srv.stats.rate_limited), 2);
	assert_int_equal(stat_of(&f->srv.stats.published), 6 + 194);
	raw_close(&r2);

	live_end(&r, &sa);
	live_end(&r, &sb);
	raw_close(&r);
}

/* A stream that sends nothing (or stalls inside a message) is cancelled after the server's
 * stall timeout, as a unary request would be. */
static void test_stream_stall(void **state)
{
	struct fixture *f = *state;
	struct raw_stream s;
	struct raw r;
	struct timespec t0, t1;
	long ms;

	server_up(f, NULL, NULL);
	raw_open(&r, f->port);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	stream_open(&r, &s);
	/* raw_wait gives up after 10 s: wait in slices until the status comes. */
	{
		grpc_event ev;

		do
			ev = grpc_completion_queue_next(
				r.cq,
				gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					     gpr_time_from_millis(STALL_MARGIN, GPR_TIMESPAN)),
				NULL);
		while (ev.type == GRPC_OP_COMPLETE && ev.tag != &s.tag_status);
		assert_int_equal(ev.type, GRPC_OP_COMPLETE);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_int_equal(s.status, GRPC_STATUS_DEADLINE_EXCEEDED);
	assert_true(ms >= SERVER_STALL_TIMEOUT_MS - 500 && ms < STALL_MARGIN);
	assert_int_equal(stat_of(&f->srv.stats.stalled), 1);
	grpc_metadata_array_destroy(&s.md_i);
	grpc_metadata_array_destroy(&s.md_t);
	grpc_slice_unref(s.details);
	grpc_call_unref(s.call);
	raw_close(&r);
}

/* A server without PublishStream (as before it existed) neither announces nor takes it:
 * backends publish with unary calls and everything arrives. Any method the server does not
 * serve is answered UNIMPLEMENTED at once. */
static void test_stream_fallback(void **state)
{
	struct fixture *f = *state;
	struct raw_stream s;
	struct peer a, b;
	struct raw r;

	f->srv.grpc_no_stream = true;
	server_up(f, NULL, NULL);
	peers_up(&a, &b, f->port);
	for (uint64_t i = 0; i < N_EACH; i++)
		send_sealed(&a, &b, 10 + i);
	send_sealed(&b, &a, 5);
	assert_true(wait_recv(&b, N_EACH, WAIT_MS));
	assert_true(wait_recv(&a, 1, WAIT_MS));
	check_received(&a, 0, &b, 5);
	assert_int_equal(stat_of(&f->srv.stats.publish_streams), 0);

	raw_open(&r, f->port);
	stream_open(&r, &s);
	assert_int_equal(stream_end(&r, &s, NULL), GRPC_STATUS_UNIMPLEMENTED);
	assert_int_equal(
		raw_unary(&r, "/wice.signaling.Signaling/NoSuchMethod", bb_of("", 0), NULL),
		GRPC_STATUS_UNIMPLEMENTED);
	raw_close(&r);
	peer_close(&a);
	peer_close(&b);
}

/* A server that announces PublishStream but answers UNIMPLEMENTED: the backend's first stream
 * fails (what it carried is lost, as for any failed call), then it publishes with unary calls
 * for the rest of the session. */
static void test_stream_unimplemented(void **state)
{
	struct fixture *f = *state;
	struct peer a, b;
	size_t tries = 0, n0;

	f->srv.grpc_no_stream = true;
	f->srv.grpc_announce_anyway = true;
	server_up(f, NULL, NULL);
	peers_up(&a, &b, f->port);
	while (!n_received(&b) && tries++ < 50) {
		send_sealed(&a, &b, 1);
		wait_recv(&b, 1, 100);
	}
	assert_true(wait_recv(&b, 1, WAIT_MS));
	assert_true(tries >= 1 && tries < 50);
	n0 = n_received(&b);
	for (uint64_t i = 0; i < N_EACH; i++)
		send_sealed(&a, &b, 100 + i);
	assert_true(wait_recv(&b, n0 + N_EACH, WAIT_MS));
	assert_int_equal(stat_of(&f->srv.stats.publish_streams), 0);
	assert_int_equal(a.downs + b.downs, 0);
	peer_close(&a);
	peer_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stream_exchange, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_stall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_unimplemented, setup, teardown),
	};
	int ret;

	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 1;
	if (getenv("WICE_TEST_DEBUG"))
		log_max_level = LOG_LVL_DEBUG;
	grpc_init();
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	grpc_shutdown_blocking();
	return ret;
}
