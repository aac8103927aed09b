/* SPDX-License-Identifier: MIT */
/* bench/signal_load: what the core (signal_load.c) and its two transports share. */
#ifndef WICE_BENCH_SIGNAL_LOAD_H
#define WICE_BENCH_SIGNAL_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <grpc/grpc.h>
#include <libwebsockets.h>
#include "signal/auth.h"
#include "signal/backend.h"

#define BENCH_MAGIC	   0x57424c44u /* "WBLD" */
#define CONNECT_INFLIGHT   256	       /* clients connecting at once */
#define CONNECT_TIMEOUT_MS 180000
#define SLOT_LOST_MS	   2000
#define DRAIN_MS	   2000
#define TICK_US		   1000
#define PACE_TICK_US	   200
#define MAX_CLIENTS	   60000
#define ENV_MAX		   (4 * 32 + 24 + 16 + 4096)
/* gRPC publishing as src/signal/grpc.c does it (its GCLI_PUBLISH_*): calls in flight per
 * client, envelopes and bytes per PublishRequest; and its queue limit per client. */
#define PUB_INFLIGHT	4
#define PUB_BATCH	64
#define PUB_BATCH_BYTES (60u << 10)
#define PUB_QUEUE_MAX	SIGNAL_SEND_QUEUE_MAX

/* What the "ciphertext" of every benchmark envelope starts with. */
struct payload {
	uint32_t magic, slot, gen, target;
	uint64_t ts_ns;
};

enum phase { P_CONNECT, P_SETTLE, P_SAT_WARM, P_SAT, P_SAT_DRAIN, P_LAT_WARM, P_LAT, P_LAT_DRAIN };

struct gtag {
	enum { G_CHAL, G_SUB_START, G_SUB_RECV, G_SUB_STATUS, G_PUB, G_PS_SEND, G_PS_STATUS } kind;
	struct client *c;
};

struct wframe {
	struct wframe *next;
	size_t len;
	uint8_t data[]; /* LWS_PRE, then len bytes */
};

struct client {
	uint32_t idx;
	bool up, gone;
	struct envelope_key key;
	uint8_t token[32];
	/* gRPC */
	struct gconn *gc;
	grpc_call *sub;
	struct gtag t_start, t_recv, t_status;
	grpc_metadata_array md0, md1;
	grpc_byte_buffer *sub_send, *recv;
	grpc_status_code status;
	grpc_slice details;
	struct pubq *pq_head, *pq_tail; /* envelopes waiting for a free Publish call */
	uint32_t pq_len, pub_inflight;
	bool stream;	    /* the server announced PublishStream: publish on one */
	struct gstream *ps; /* open PublishStream */
	/* WebSocket */
	struct lws *wsi;
	struct wframe *qhead, *qtail;
	uint8_t *rx;
	size_t rx_len;
};

struct window_snap {
	uint64_t t_ns, srv_ticks, own_us, count;
};

struct load {
	bool ws;
	const char *host;
	int port;
	uint32_t n, per_conn, window, payload;
	double warmup_s, duration_s, settle_s, lat_rate;
	bool sat, lat;
	bool unary; /* gRPC: unary Publish even where the server takes PublishStream */
	int server_pid;

	struct client *c;
	uint32_t next_connect, connecting, n_up, n_down;
	enum phase phase;
	uint64_t phase_ns, connect_ns, last_scan_ns, rss0;
	bool done;
	uint64_t rng;

	/* counters */
	uint64_t delivered, pub_fail, misrouted, lost;
	uint64_t pub_calls, pub_envs; /* gRPC Publish calls started, envelopes they carried */
	/* sat: the circulating messages */
	uint64_t *slot_ns;
	uint32_t *slot_gen;
	bool *slot_busy;
	uint32_t in_flight;
	bool injecting;
	struct window_snap sat0;
	double sat_rate;
	/* lat */
	double rate;
	uint64_t pace_ns, pace_sent, m_start, m_end, m_sent, m_recv;
	uint32_t *lat_us;
	size_t n_lat, cap_lat;
	struct window_snap lat0, lat1;
};

extern struct load L;

/* The core, for the transports. */
uint64_t now_ns(void);
void tick(void);
uint64_t tick_us(void);
void on_up(struct client *c);
void on_down(struct client *c);
void on_envelope(struct client *c, const uint8_t *env, size_t len);
void slot_failed(uint32_t slot, uint32_t gen);
size_t put_bytes(uint8_t *p, unsigned int field, const void *data, size_t len);
int pb_field(const uint8_t *buf, size_t len, unsigned int max, unsigned int want,
	     const uint8_t **ret, size_t *ret_len);

/* The transports: run drives every connection until L.done. */
int grpc_run(void);
void grpc_connect(struct client *c);
int grpc_publish(struct client *from, const uint8_t *env, size_t len, uint32_t slot, uint32_t gen);
int ws_run(void);
void ws_connect(struct client *c);
int ws_publish(struct client *from, const uint8_t *env, size_t len, uint32_t slot, uint32_t gen);

#endif
