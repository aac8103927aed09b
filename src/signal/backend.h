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

#include <stdbool.h>
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
	const char *tls_ca_file;     /* grpcs:/wss: trust anchors; NULL: system default */
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

/*
 * Every backend carries this first, so the core can dispatch without knowing the type. A
 * backend's open allocates it zeroed and leaves both fields to signal_backend_open, which sets
 * ops and url (its own copy, freed by signal_backend_close after ops->close).
 */
struct signal_backend {
	const struct signal_backend_ops *ops;
	char *url;
};

extern const struct signal_backend_ops signal_backend_inprocess;
extern const struct signal_backend_ops signal_backend_grpc;
extern const struct signal_backend_ops signal_backend_grpcs;
extern const struct signal_backend_ops signal_backend_ws;
extern const struct signal_backend_ops signal_backend_wss;

/* Opens a backend for url by its scheme ("SCHEME:..."). -EPROTONOSUPPORT for an unknown
 * scheme, -EINVAL for a bad URL or config (cfg->key and cfg->on_receive are required). */
int signal_backend_open(const char *url, const struct signal_backend_config *cfg,
			struct signal_backend **ret);
/* Same as b->ops->publish. */
int signal_backend_publish(struct signal_backend *b, const uint8_t *envelope, size_t len);
/* Accepts NULL. Must not be called from b's own callbacks (it waits for them to finish). */
void signal_backend_close(struct signal_backend *b);

#define SIGNAL_SEND_QUEUE_MAX 1024 /* envelopes queued per backend before -EAGAIN */

/*
 * inprocess:NAME: every backend opened with the same NAME in this process is on one bus.
 * publish hands a copy of the envelope synchronously, on the publisher's thread, to every
 * other backend on the bus whose key is the envelope's recipient (none: still 0, as a server
 * would drop it); like the server, it refuses an envelope envelope_peek refuses (-EBADMSG)
 * and one whose sender is not the publisher's key (-EPERM). on_state(true) is
 * called once from open. close waits for deliveries to it that are in flight.
 */
#define SIGNAL_INPROCESS_NAME_MAX 255

/*
 * Several backends as one: publish goes to every backend, and an envelope received through
 * more than one of them (same bytes) reaches on_receive once. Duplicates are recognised by a
 * BLAKE2b-128 digest of the bytes, remembered for SIGNAL_MUX_DEDUP_MS, at most
 * SIGNAL_MUX_DEDUP_MAX of them (the oldest goes first). This only saves work: the security
 * boundary against replays is envelope_open's replay cache.
 */
#define SIGNAL_MUX_MAX_BACKENDS 16
#define SIGNAL_MUX_DEDUP_MAX	4096
#define SIGNAL_MUX_DEDUP_MS	120000

struct signal_mux;

/* cfg is copied (cfg->key is not: it must outlive the mux); its on_receive gets the
 * de-duplicated envelopes and on_state each backend's changes. NULL on -ENOMEM or -EINVAL. */
struct signal_mux *signal_mux_new(const struct signal_backend_config *cfg);
/* Opens url with the mux's config. 0, -ENOSPC (SIGNAL_MUX_MAX_BACKENDS open), or what
 * signal_backend_open returns. Thread-safe against publish and receive. */
int signal_mux_add(struct signal_mux *mux, const char *url);
/* 0 when at least one backend accepted it; otherwise the first error (-ENOTCONN: none). */
int signal_mux_publish(struct signal_mux *mux, const uint8_t *envelope, size_t len);
/* Closes every backend; no callback runs after it returns. Accepts NULL; returns NULL. */
struct signal_mux *signal_mux_free(struct signal_mux *mux);

#endif
