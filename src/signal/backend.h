/* SPDX-License-Identifier: MIT */
/*
 * Signaling backends: publish an envelope to a public key, receive the envelopes sent to
 * ours. Semantics (docs/signaling.md): reliable while both ends are connected, may reorder,
 * stateless (nothing is kept for a recipient that is not connected). Several backends can
 * run at once (struct signal_mux): publish goes to all, duplicates are dropped on receive.
 *
 * Each backend is a table of operations chosen by URL scheme:
 *   inprocess:NAME          tests: every backend with the same NAME in one process
 *   grpc://HOST:PORT        wice signal over gRPC; grpcs:// with TLS
 *   ws://HOST:PORT/PATH     wice signal over WebSocket; wss:// with TLS
 */
#ifndef WICE_SIGNAL_BACKEND_H
#define WICE_SIGNAL_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "signal/envelope.h"

struct signal_backend;

/*
 * Called with every encoded Envelope received for our key, on the backend's own thread
 * (never with a backend lock held). The buffer is valid only during the call.
 */
typedef void (*signal_receive_fn)(void *ctx, const uint8_t *envelope, size_t len);
/* Called when a backend's connection state changes (connected true/false), same thread. */
typedef void (*signal_state_fn)(void *ctx, struct signal_backend *b, bool connected);

struct signal_backend_config {
	const struct envelope_key *key; /* to prove we hold it when subscribing */
	signal_receive_fn on_receive;
	signal_state_fn on_state; /* may be NULL */
	void *ctx;
	const char *tls_ca_file; /* grpcs:/wss: trust anchors; NULL: system default */
	unsigned int backoff_min_ms; /* reconnect backoff, jittered exponential; 0: 250 */
	unsigned int backoff_max_ms; /* 0: 30000 */
};

struct signal_backend_ops {
	const char *scheme; /* "inprocess", "grpc", "grpcs", "ws", "wss" */
	/* Start connecting (non-blocking); the backend reconnects and resubscribes by itself. */
	int (*open)(const char *url, const struct signal_backend_config *cfg,
		    struct signal_backend **ret);
	/* Queue an encoded Envelope for sending; never blocks. -EAGAIN when the queue is full
	 * or not connected (stateless: nothing is kept for later). */
	int (*publish)(struct signal_backend *b, const uint8_t *envelope, size_t len);
	/* Stop and free; no callback runs after it returns. */
	void (*close)(struct signal_backend *b);
};

/* Every backend carries its ops first, so the core can dispatch without knowing the type. */
struct signal_backend {
	const struct signal_backend_ops *ops;
	char *url;
};

extern const struct signal_backend_ops signal_backend_inprocess;
extern const struct signal_backend_ops signal_backend_grpc;
extern const struct signal_backend_ops signal_backend_grpcs;
extern const struct signal_backend_ops signal_backend_ws;
extern const struct signal_backend_ops signal_backend_wss;

/* Opens a backend for url by its scheme. -EPROTONOSUPPORT for an unknown scheme. */
int signal_backend_open(const char *url, const struct signal_backend_config *cfg,
			struct signal_backend **ret);
void signal_backend_close(struct signal_backend *b);

#define SIGNAL_SEND_QUEUE_MAX 1024 /* envelopes queued per backend before -EAGAIN */

#endif
