/* SPDX-License-Identifier: MIT */
/*
 * What the gRPC transport's tests share (test_grpc.c, test_grpc_stream.c): peers with a real
 * backend, an in-process server fixture, and raw gRPC calls for what a backend never sends.
 */
#ifndef WICE_TEST_GRPC_FIXTURE_H
#define WICE_TEST_GRPC_FIXTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <grpc/grpc.h>
#include "server/server.h"
#include "signal/backend.h"
#include "signal/envelope.h"
#include "signaling.pb-c.h"

#define WAIT_MS	    10000
#define MAX_RECV    64
#define M_CHALLENGE "/wice.signaling.Signaling/GetChallenge"
#define M_SUBSCRIBE "/wice.signaling.Signaling/Subscribe"
#define M_PUBLISH   "/wice.signaling.Signaling/Publish"
#define M_STREAM    "/wice.signaling.Signaling/PublishStream"

struct peer {
	struct envelope_key key;
	struct signal_backend *b;
	const struct signal_backend_ops *ops;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool connected;
	unsigned int ups, downs;
	size_t n_recv;
	uint8_t *recv[MAX_RECV];
	size_t recv_len[MAX_RECV];
};

struct fixture {
	struct signal_server srv;
	int port;
	char addr[32];
};

struct raw {
	grpc_channel *ch;
	grpc_completion_queue *cq;
};

struct raw_sub {
	grpc_call *call;
	grpc_metadata_array md_i, md_t;
	grpc_byte_buffer *recv;
	grpc_status_code status;
	grpc_slice details;
	int tag_start, tag_status;
};

void peer_init(struct peer *p);
void peer_open(struct peer *p, const char *scheme, int port, const char *ca);
void peer_close(struct peer *p);
bool wait_state(struct peer *p, bool want, unsigned int min_ups);
/* a and b: opened on grpc://127.0.0.1:port, both subscribed (asserted). */
void peers_up(struct peer *a, struct peer *b, int port);
bool wait_recv(struct peer *p, size_t n, unsigned int ms);
size_t n_received(struct peer *p);
void send_sealed(struct peer *from, const struct peer *to, uint64_t session_id);
void check_received(struct peer *p, size_t i, const struct peer *from, uint64_t session_id);
int free_port(void);
void server_up(struct fixture *f, const char *cert, const char *key);
int setup(void **state);
int teardown(void **state);
uint64_t stat_of(_Atomic uint64_t *counter);
void raw_open(struct raw *r, int port);
void raw_close(struct raw *r);
void raw_wait(struct raw *r, void *tag);
grpc_byte_buffer *bb_of(const void *data, size_t len);
grpc_byte_buffer *bb_pack(const ProtobufCMessage *m);
uint8_t *bb_bytes(grpc_byte_buffer *bb, size_t *len);
grpc_status_code raw_unary(struct raw *r, const char *method, grpc_byte_buffer *req,
			   grpc_byte_buffer **resp);
void raw_prove(struct raw *r, const uint8_t pub[static WG_KEY_LEN],
	       const struct envelope_key *prover, Wice__Signaling__SubscribeRequest *sr,
	       uint8_t nonce[static AUTH_NONCE_LEN], uint8_t proof[static AUTH_PROOF_LEN]);
void raw_sub_start(struct raw *r, struct raw_sub *s, grpc_byte_buffer *req);
void raw_sub_free(struct raw_sub *s);
grpc_status_code raw_subscribe(struct raw *r, const uint8_t pub[static WG_KEY_LEN],
			       const struct envelope_key *prover, uint8_t token[32]);

#endif
