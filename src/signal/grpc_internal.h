/* SPDX-License-Identifier: MIT */
/*
 * The grpc/grpcs signaling backend, shared by its two files: grpc.c (the session: channel,
 * thread, GetChallenge, Subscribe; open and close) and grpc_pub.c (publishing: the queue,
 * PublishStream and unary Publish). grpc.c's opening comment describes the design.
 */
#ifndef WICE_SIGNAL_GRPC_INTERNAL_H
#define WICE_SIGNAL_GRPC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <grpc/grpc.h>
#include "signal/backend.h"

#define METHOD_CHALLENGE      "/wice.signaling.Signaling/GetChallenge"
#define METHOD_SUBSCRIBE      "/wice.signaling.Signaling/Subscribe"
#define METHOD_PUBLISH	      "/wice.signaling.Signaling/Publish"
#define METHOD_PUBLISH_STREAM "/wice.signaling.Signaling/PublishStream"
/* Subscribe's initial metadata: what the server takes (src/server/grpc_internal.h). */
#define FEATURES_KEY   "wice-features"
#define FEATURE_STREAM "publish-stream"

#define GCLI_PUBLISH_INFLIGHT	 4
#define GCLI_PUBLISH_BATCH	 64	     /* envelopes per Publish call, as the server allows */
#define GCLI_PUBLISH_BATCH_BYTES (60u << 10) /* under the server's message limit */
#define GCLI_CALL_TIMEOUT_MS	 10000	     /* GetChallenge and Publish */
/* Half the server's SERVER_STALL_TIMEOUT_MS, after which it cancels a stream with no message:
 * we close ours first, so that nothing we send races its cancellation. */
#define GCLI_STREAM_IDLE_MS  5000
#define GCLI_KEEPALIVE_MS    20000 /* notice a dead server on an idle stream */
#define GCLI_PING_TIMEOUT_MS 10000
#define GCLI_MAX_FRAME	     (ENVELOPE_MAX_SIZE + 1024)
#define GCLI_BACKOFF_MIN_MS  250
#define GCLI_BACKOFF_MAX_MS  30000
#define GCLI_TOKEN_LEN	     32

enum gtag_kind {
	T_CHALLENGE,
	T_PUBLISH,
	T_SUB_START,
	T_SUB_RECV,
	T_SUB_STATUS,
	T_STREAM_SEND,
	T_STREAM_STATUS
};

struct gtag {
	enum gtag_kind kind;
};

/* An envelope waiting to be published. */
struct qenv {
	struct qenv *next;
	size_t len;
	uint8_t data[];
};

/* A PublishStream: freed once both its batches, send and status, have completed. */
struct pstream {
	struct gtag send_tag, status_tag;
	grpc_call *call;
	unsigned int pending; /* batches not yet completed */
	bool sending;	      /* a SEND_MESSAGE, or the half-close, in flight */
	bool ended;	      /* a send failed or the status came: nothing more goes on it */
	bool half_closed;
	uint64_t idle_since_ms;
	grpc_byte_buffer *out, *recv;
	grpc_metadata_array md_initial, md_trailing;
	grpc_status_code status;
	grpc_slice details;
};

/* A unary call: GetChallenge or Publish, all its operations in one batch. */
struct unary {
	struct gtag tag;
	struct gcli *b;
	grpc_call *call;
	grpc_metadata_array md_initial, md_trailing;
	grpc_byte_buffer *send, *recv;
	grpc_status_code status;
	grpc_slice details;
};

enum phase { P_WAIT, P_CHALLENGE, P_SUBSCRIBE, P_CLOSED };

struct gcli {
	struct signal_backend base;
	struct signal_backend_config cfg;
	struct envelope_key key; /* cfg.key points here */
	char *target;		 /* HOST:PORT, also for log lines */
	grpc_channel *ch;
	grpc_completion_queue *cq;
	void *m_challenge, *m_subscribe, *m_publish, *m_stream;
	pthread_t thread;

	/* The thread's own. */
	enum phase phase;
	uint64_t retry_at_ms;
	unsigned int backoff_ms;
	bool connected;
	struct {
		struct gtag start_tag, recv_tag, status_tag;
		unsigned int pending; /* batches not yet completed */
		bool ended;	      /* a receive failed or the stream ended */
		grpc_metadata_array md_initial, md_trailing;
		grpc_byte_buffer *send, *recv;
		grpc_status_code status;
		grpc_slice details;
	} sub;

	pthread_mutex_t lock; /* protects what follows */
	_Atomic bool closing; /* no call starts and no callback runs once set */
	bool subscribed;
	uint8_t token[GCLI_TOKEN_LEN];
	grpc_call *chal_call, *sub_call;
	struct unary *inflight[GCLI_PUBLISH_INFLIGHT];
	unsigned int n_inflight;
	bool stream_ok;	    /* this session publishes on a PublishStream */
	struct pstream *ps; /* the session's, while open */
	struct qenv *q_head, *q_tail;
	unsigned int q_len;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline uint64_t gcli_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* grpc.c: unary calls (GetChallenge, Publish), all their operations in one batch. unary_new
 * takes send over (and destroys it on failure); unary_start is called with b->lock held and
 * closing not set. */
struct unary *gcli_unary_new(struct gcli *b, enum gtag_kind kind, grpc_byte_buffer *send);
void gcli_unary_free(struct unary *u);
int gcli_unary_start(struct gcli *b, struct unary *u, void *method);

/* grpc_pub.c. gpub_publish is the backend's publish(). With b->lock held: gpub_drop ends the
 * session's publishing (the queue dropped, the stream cancelled), gpub_cancel cancels every
 * publishing call (for close). On the thread: the completions of T_PUBLISH, T_STREAM_SEND and
 * T_STREAM_STATUS, and gpub_idle, which closes an idle stream and returns when to call it
 * again (0: no need). */
int gpub_publish(struct signal_backend *base, const uint8_t *envelope, size_t len);
void gpub_drop(struct gcli *b);
void gpub_cancel(struct gcli *b);
void gpub_on_unary(struct gcli *b, struct unary *u);
void gpub_on_stream_send(struct gcli *b, struct gtag *send_tag, bool ok);
void gpub_on_stream_status(struct gcli *b, struct gtag *status_tag);
uint64_t gpub_idle(struct gcli *b, uint64_t now);

#endif
