/* SPDX-License-Identifier: MIT */
/*
 * wice signal over WebSocket (libwebsockets): one context with one vhost, served by its own
 * thread. Every WebSocket message is one binary frame carrying one protobuf message: the
 * client sends ClientFrame, the server sends ServerFrame (proto/signaling.proto).
 *
 * Subscribing (the challenge is bound to the key, so the client names it first):
 *
 *   client                                            server
 *   ClientFrame{subscribe{public_key}}          ->                  (nonce and proof empty)
 *                                               <-    ServerFrame{challenge{server_key, nonce}}
 *   ClientFrame{subscribe{public_key, nonce,
 *               proof = auth_prove(...)}}       ->    auth_verify()
 *                                               <-    ServerFrame{session_token}
 *                                                     router_subscribe(public_key)
 *   ClientFrame{envelope}                       ->    envelope.sender must be public_key
 *                                               <-    ServerFrame{envelope} (deliveries)
 *                                               <-    ServerFrame{error{errno, text}}
 *
 * The session token is the first frame written after a good proof; deliveries follow it. One
 * key per connection; a second subscribe is refused with EALREADY. A failed proof (EACCES),
 * a forged sender (EPERM), a publish before subscribing (EACCES), a malformed frame (EBADMSG)
 * and a rate-limited publish (EAGAIN, at most one such error a second) are answered with an
 * error frame and dropped; WS_MAX_STRIKES of the first four close the connection.
 *
 * Closed at once, with a WebSocket close status: a message over SERVER_MAX_FRAME, counting
 * every fragment (1009 "message too large"); WS_MAX_STRIKES bad frames (1008). Anything that
 * is no WebSocket upgrade (random bytes, plain HTTP) is closed by lws or by our HTTP callback,
 * and the upgrade itself must be done within SERVER_AUTH_TIMEOUT_MS. Closed by the sweep (every
 * WS_SWEEP_MS): no good proof within SERVER_AUTH_TIMEOUT_MS of connecting; a message started but
 * not finished within SERVER_STALL_TIMEOUT_MS; and, since a client that stops inside a frame header
 * shows us nothing, a connection idle for WS_PING_IDLE_MS is pinged and closed if the pong does not
 * come within WS_PONG_TIMEOUT_MS (a peer stuck mid-frame cannot answer).
 *
 * Threads: deliveries arrive from the router on any thread, with the router lock held. They
 * are copied into the connection's queue (its own lock) and the connection is put on the
 * server's pending list; the service thread is woken with lws_cancel_service() only when the
 * list goes from empty to non-empty, and asks for a writable callback for each connection on
 * it. Nothing scans all connections per event; the sweep's scan is once a WS_SWEEP_MS.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <ev.h>
#include <libwebsockets.h>
#include <sodium.h>
#include "server/server.h"
#include "signal/frame.h"
#include "signal/envelope.h"
#include "util/key.h"
#include "util/log.h"

#define WS_PROTOCOL	    "wice-signal"
#define WS_RX_CHUNK	    4096 /* lws' receive buffer per connection; longer messages are joined */
#define WS_MAX_STRIKES	    16	 /* malformed frames, bad proofs, forged senders before closing */
#define WS_SWEEP_MS	    1000
#define WS_PING_IDLE_MS	    (SERVER_STALL_TIMEOUT_MS / 2)
#define WS_PONG_TIMEOUT_MS  (SERVER_STALL_TIMEOUT_MS / 2)
#define WS_PEER_LEN	    56 /* "[" INET6_ADDRSTRLEN "]:65535" */
#define WS_FRAMES_PER_WRITE 32 /* frames written per writable callback, at most */

struct ws_frame {
	struct ws_frame *next;
	size_t len;
	uint8_t data[]; /* LWS_PRE headroom, then len bytes */
};

/* lws' per-session data: zeroed by lws, so every field starts false/NULL. */
struct ws_conn {
	struct router_sub sub;
	struct ws_server *srv;
	struct lws *wsi;	      /* NULL until established */
	struct ws_conn *prev, *next;  /* all connections (service thread) */
	struct ws_conn *pending_next; /* under srv->plock */
	bool on_pending;	      /* under srv->plock */

	pthread_mutex_t qlock; /* the queue: deliveries come from any thread */
	struct ws_frame *qhead, *qtail;
	unsigned int qcount;
	size_t qbytes;

	uint8_t *rx; /* a message that came in pieces, being joined */
	size_t rx_len, rx_cap;
	struct rate_limit rl;
	uint64_t connected_ms, last_rx_ms, rx_start_ms, ping_sent_ms, rl_err_ms;
	const char *why; /* closing reason for the log */
	uint8_t strikes;
	bool authed, ping_due, killed;
	char peer[WS_PEER_LEN];
};

/*
 * lws waits with poll(2) unless it runs on an event library, and poll costs O(connections) on
 * every wake-up: with 1,000 subscribers that was most of the relay's CPU. Its libev plugin
 * comes with libwebsockets-dev and brings libev.so.4, so we give lws a libev loop (epoll) of
 * our own as a "foreign" loop and run it on the service thread. libev is found with dlopen,
 * needing nothing at link time; without it lws polls, slower but the same.
 */
struct ws_ev {
	void *dl;
	struct ev_loop *(*loop_new)(unsigned int flags);
	void (*loop_destroy)(struct ev_loop *loop);
	int (*run)(struct ev_loop *loop, int flags);
	void (*brk)(struct ev_loop *loop, int how);
	struct ev_loop *loop;
};

struct ws_server {
	struct signal_server *s;
	struct lws_context *ctx;
	struct ws_ev ev;
	pthread_t thread;
	_Atomic bool stop;
	lws_sorted_usec_list_t sweep;
	struct ws_conn *conns;
	size_t n_conns;

	pthread_mutex_t plock;
	struct ws_conn *pending;
	bool woken; /* a lws_cancel_service() is outstanding */

	struct lws_protocols protocols[2];
};

static _Thread_local bool on_service_thread;

/* lws' own keepalive would put a timer per connection in a sorted list on every frame: the
 * sweep does that job (ws_sweep), so it is off. */
static const lws_retry_bo_t ws_no_idle_policy;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void lws_log(int level, const char *line)
{
	int n = (int)strcspn(line, "\n");

	if (level & LLL_ERR)
		log_warn("ws: lws: %.*s", n, line);
	else
		log_debug("ws: lws: %.*s", n, line);
}

/* ---- the queue of one connection ---- */

static struct ws_frame *frame_new(size_t len)
{
	struct ws_frame *f = malloc(sizeof(*f) + LWS_PRE + len);

	if (f) {
		f->next = NULL;
		f->len = len;
	}
	return f;
}

static int conn_enqueue(struct ws_conn *c, struct ws_frame *f)
{
	int ret = 0;

	pthread_mutex_lock(&c->qlock);
	if (c->qcount >= SERVER_SUB_QUEUE_MAX || c->qbytes + f->len > SERVER_SUB_QUEUE_BYTES) {
		ret = -ENOBUFS;
	} else {
		if (c->qtail)
			c->qtail->next = f;
		else
			c->qhead = f;
		c->qtail = f;
		c->qcount++;
		c->qbytes += f->len;
	}
	pthread_mutex_unlock(&c->qlock);
	return ret;
}

/* Service thread only: takes back a frame it queued itself (nothing else can be behind it). */
static void conn_unqueue(struct ws_conn *c, struct ws_frame *f)
{
	pthread_mutex_lock(&c->qlock);
	for (struct ws_frame **p = &c->qhead; *p; p = &(*p)->next) {
		if (*p != f)
			continue;
		*p = f->next;
		if (c->qtail == f)
			c->qtail = NULL;
		for (struct ws_frame *t = c->qhead; t; t = t->next)
			c->qtail = t;
		c->qcount--;
		c->qbytes -= f->len;
		break;
	}
	pthread_mutex_unlock(&c->qlock);
	free(f);
}

static struct ws_frame *conn_dequeue(struct ws_conn *c, bool *more)
{
	struct ws_frame *f;

	pthread_mutex_lock(&c->qlock);
	f = c->qhead;
	if (f) {
		c->qhead = f->next;
		if (!c->qhead)
			c->qtail = NULL;
		c->qcount--;
		c->qbytes -= f->len;
	}
	*more = c->qhead != NULL;
	pthread_mutex_unlock(&c->qlock);
	return f;
}

/* Puts c on the pending list; wakes the service thread if it may be asleep. */
static void conn_mark_pending(struct ws_conn *c)
{
	struct ws_server *ws = c->srv;
	bool wake = false;

	pthread_mutex_lock(&ws->plock);
	if (!c->on_pending) {
		c->on_pending = true;
		c->pending_next = ws->pending;
		ws->pending = c;
	}
	if (!on_service_thread && !ws->woken)
		wake = ws->woken = true;
	pthread_mutex_unlock(&ws->plock);
	if (wake)
		lws_cancel_service(ws->ctx);
}

/* Service thread: ask for a writable callback for every pending connection. */
static void ws_flush_pending(struct ws_server *ws, bool cancelled)
{
	pthread_mutex_lock(&ws->plock);
	for (struct ws_conn *c = ws->pending; c; c = c->pending_next) {
		c->on_pending = false;
		lws_callback_on_writable(c->wsi);
	}
	ws->pending = NULL;
	if (cancelled)
		ws->woken = false;
	pthread_mutex_unlock(&ws->plock);
}

/* router_sub_ops.deliver: any thread, router lock held. */
static int conn_deliver(struct router_sub *sub, const uint8_t *frame, size_t len)
{
	struct ws_conn *c = (struct ws_conn *)((char *)sub - offsetof(struct ws_conn, sub));
	struct ws_frame *f = frame_new(len);
	int r;

	if (!f)
		return -ENOBUFS;
	memcpy(f->data + LWS_PRE, frame, len);
	r = conn_enqueue(c, f);
	if (r < 0) {
		free(f);
		return r;
	}
	conn_mark_pending(c);
	return 0;
}

static const struct router_sub_ops ws_sub_ops = {
	.deliver = conn_deliver,
};

/* ---- frames the server writes itself (service thread) ---- */

static struct ws_frame *conn_send_msg(struct ws_conn *c, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	struct ws_frame *f = frame_new(len);

	if (!f)
		return NULL;
	protobuf_c_message_pack(msg, f->data + LWS_PRE);
	if (conn_enqueue(c, f) < 0) {
		free(f);
		return NULL;
	}
	lws_callback_on_writable(c->wsi);
	return f;
}

static void conn_send_error(struct ws_conn *c, int err, const char *text)
{
	Wice__Signaling__ServerFrame sf = WICE__SIGNALING__SERVER_FRAME__INIT;
	Wice__Signaling__Error e = WICE__SIGNALING__ERROR__INIT;

	e.code = (uint32_t)err;
	e.message = (char *)text;
	sf.kind_case = WICE__SIGNALING__SERVER_FRAME__KIND_ERROR;
	sf.error = &e;
	conn_send_msg(c, &sf.base);
}

/* Answers a bad frame; returns -1 (close) once the client has had WS_MAX_STRIKES. */
static int conn_strike(struct ws_conn *c, _Atomic uint64_t *counter, int err, const char *text)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	conn_send_error(c, err, text);
	if (++c->strikes < WS_MAX_STRIKES)
		return 0;
	c->why = "too many bad frames";
	lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			 (unsigned char *)"too many bad frames", 19);
	return -1;
}

/* ---- what a client says ---- */

static void conn_challenge(struct ws_conn *c, const uint8_t pub[static WG_KEY_LEN])
{
	Wice__Signaling__ServerFrame sf = WICE__SIGNALING__SERVER_FRAME__INIT;
	Wice__Signaling__Challenge ch = WICE__SIGNALING__CHALLENGE__INIT;
	uint8_t server_key[WG_KEY_LEN], nonce[AUTH_NONCE_LEN];

	auth_server_public_key(c->srv->s->auth, server_key);
	auth_challenge(c->srv->s->auth, pub, envelope_now_ms(), nonce);
	ch.server_key = (ProtobufCBinaryData){sizeof(server_key), server_key};
	ch.nonce = (ProtobufCBinaryData){sizeof(nonce), nonce};
	sf.kind_case = WICE__SIGNALING__SERVER_FRAME__KIND_CHALLENGE;
	sf.challenge = &ch;
	conn_send_msg(c, &sf.base);
}

static int conn_prove(struct ws_conn *c, const Wice__Signaling__SubscribeRequest *req)
{
	struct signal_server *s = c->srv->s;
	Wice__Signaling__ServerFrame sf = WICE__SIGNALING__SERVER_FRAME__INIT;
	char b64[WG_KEY_B64_LEN + 1];
	struct ws_frame *token;
	int r;

	r = auth_verify(s->auth, req->public_key.data, envelope_now_ms(), req->nonce.data,
			req->nonce.len, req->proof.data, req->proof.len);
	if (r == -EBUSY) {
		conn_send_error(c, EBUSY, "too many subscriptions in progress, try again");
		return 0;
	}
	if (r < 0)
		return conn_strike(c, &s->stats.bad_proof, EACCES, "bad proof");

	memcpy(c->sub.key, req->public_key.data, WG_KEY_LEN);
	randombytes_buf(c->sub.session_token, sizeof(c->sub.session_token));
	sf.kind_case = WICE__SIGNALING__SERVER_FRAME__KIND_SESSION_TOKEN;
	sf.session_token =
		(ProtobufCBinaryData){sizeof(c->sub.session_token), c->sub.session_token};
	/* Queued before subscribing, so that it precedes every delivery. */
	token = conn_send_msg(c, &sf.base);
	if (!token) {
		conn_send_error(c, ENOMEM, "out of memory");
		return 0;
	}
	r = router_subscribe(s->router, &c->sub);
	if (r < 0) {
		conn_unqueue(c, token);
		sodium_memzero(c->sub.session_token, sizeof(c->sub.session_token));
		conn_send_error(c, -r,
				r == -ENOSPC ? "too many subscriptions of this key"
					     : "cannot subscribe");
		return 0;
	}
	c->authed = true;
	key_to_base64(b64, c->sub.key);
	log_debug("ws: %s subscribed %s", c->peer, b64);
	return 0;
}

static int conn_subscribe(struct ws_conn *c, const uint8_t *buf, size_t len)
{
	struct server_stats *st = &c->srv->s->stats;
	Wice__Signaling__SubscribeRequest *req;
	int ret = 0;

	req = wice__signaling__subscribe_request__unpack(NULL, len, buf);
	if (!req)
		return conn_strike(c, &st->malformed, EBADMSG, "malformed subscribe request");
	if (req->public_key.len != WG_KEY_LEN)
		ret = conn_strike(c, &st->malformed, EBADMSG, "public key must be 32 bytes");
	else if (c->authed)
		conn_send_error(c, EALREADY, "already subscribed");
	else if (!req->nonce.len && !req->proof.len)
		conn_challenge(c, req->public_key.data);
	else
		ret = conn_prove(c, req);
	wice__signaling__subscribe_request__free_unpacked(req, NULL);
	return ret;
}

static int conn_publish(struct ws_conn *c, const uint8_t *env, size_t len)
{
	struct signal_server *s = c->srv->s;
	uint8_t sender[WG_KEY_LEN], recipient[WG_KEY_LEN];

	if (!c->authed)
		return conn_strike(c, &s->stats.forged_sender, EACCES,
				   "subscribe before publishing");
	if (envelope_peek(env, len, sender, recipient) < 0)
		return conn_strike(c, &s->stats.malformed, EBADMSG, "malformed envelope");
	if (!key_equal(sender, c->sub.key))
		return conn_strike(c, &s->stats.forged_sender, EPERM,
				   "sender is not the subscribed key");
	router_publish(s->router, recipient, env, len, &s->stats);
	/* Deliveries made on this thread wait on the pending list without a wake-up. */
	ws_flush_pending(c->srv, false);
	return 0;
}

/* One whole message from the client. Returns -1 to close the connection. */
static int conn_message(struct ws_conn *c, const uint8_t *buf, size_t len, uint64_t now)
{
	struct signal_server *s = c->srv->s;
	const uint8_t *member = NULL;
	size_t member_len = 0;
	int field;

	c->last_rx_ms = now;
	if (!rate_limit_take(&c->rl, s, now)) {
		atomic_fetch_add_explicit(&s->stats.rate_limited, 1, memory_order_relaxed);
		if (now - c->rl_err_ms >= 1000) {
			c->rl_err_ms = now;
			conn_send_error(c, EAGAIN, "rate limited");
		}
		return 0;
	}
	if (!lws_frame_is_binary(c->wsi))
		return conn_strike(c, &s->stats.malformed, EBADMSG, "binary frames only");
	field = frame_oneof(buf, len, 2, &member, &member_len);
	if (field == WICE__SIGNALING__CLIENT_FRAME__KIND_SUBSCRIBE)
		return conn_subscribe(c, member, member_len);
	if (field == WICE__SIGNALING__CLIENT_FRAME__KIND_ENVELOPE)
		return conn_publish(c, member, member_len);
	return conn_strike(c, &s->stats.malformed, EBADMSG, "malformed client frame");
}

static int conn_receive(struct ws_conn *c, const uint8_t *in, size_t len)
{
	size_t remaining = lws_remaining_packet_payload(c->wsi);
	bool done = lws_is_final_fragment(c->wsi) && !remaining;
	uint64_t now = mono_ms();
	uint8_t *rx;
	int r;

	if (c->rx_len + len + remaining > SERVER_MAX_FRAME) {
		atomic_fetch_add_explicit(&c->srv->s->stats.oversized, 1, memory_order_relaxed);
		c->why = "message too large";
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)"message too large", 17);
		return -1;
	}
	if (done && !c->rx_len)
		return conn_message(c, in, len, now);

	/* Joined in a buffer that lives only while a long message is arriving. */
	if (c->rx_len + len + remaining > c->rx_cap) {
		size_t cap = c->rx_len + len + remaining;

		if (cap < 2 * c->rx_cap)
			cap = 2 * c->rx_cap < SERVER_MAX_FRAME ? 2 * c->rx_cap : SERVER_MAX_FRAME;
		rx = realloc(c->rx, cap);
		if (!rx) {
			c->why = "out of memory";
			return -1;
		}
		c->rx = rx;
		c->rx_cap = cap;
	}
	if (!c->rx_len)
		c->rx_start_ms = now;
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!done)
		return 0;
	rx = c->rx;
	c->rx = NULL;
	r = conn_message(c, rx, c->rx_len, now);
	c->rx_len = c->rx_cap = 0;
	c->rx_start_ms = 0;
	free(rx);
	return r;
}

static int conn_writeable(struct ws_conn *c)
{
	uint8_t ping[LWS_PRE + 4] = {[LWS_PRE] = 'w', 'i', 'c', 'e'};
	struct ws_frame *f;
	bool more;
	size_t len;
	int n;

	if (c->ping_due) {
		c->ping_due = false;
		c->ping_sent_ms = mono_ms();
		/* With a payload: lws 4.1 does not pass an empty pong to the callback. */
		if (lws_write(c->wsi, ping + LWS_PRE, 4, LWS_WRITE_PING) < 4) {
			c->why = "write failed";
			return -1;
		}
		lws_callback_on_writable(c->wsi);
		return 0;
	}
	/* Several frames per wake-up while the socket takes them: one poll round trip per frame
	 * was most of the server's cost under load. A bound keeps one busy subscriber from
	 * starving the others. */
	for (int i = 0; i < WS_FRAMES_PER_WRITE; i++) {
		f = conn_dequeue(c, &more);
		if (!f)
			return 0;
		len = f->len;
		n = lws_write(c->wsi, f->data + LWS_PRE, len, LWS_WRITE_BINARY);
		free(f);
		if (n < (int)len) {
			c->why = "write failed";
			return -1;
		}
		if (!more)
			return 0;
		if (lws_send_pipe_choked(c->wsi))
			break;
	}
	lws_callback_on_writable(c->wsi);
	return 0;
}

/* ---- connection life ---- */

static void peer_name(struct lws *wsi, char out[static WS_PEER_LEN])
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;

	if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
			port = ntohs(sin->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

			if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
				inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], a, sizeof(a));
			else
				inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
			port = ntohs(sin6->sin6_port);
		}
	}
	snprintf(out, WS_PEER_LEN, strchr(a, ':') ? "[%s]:%u" : "%s:%u", a, port);
}

static int conn_established(struct ws_server *ws, struct ws_conn *c, struct lws *wsi)
{
	if (ws->n_conns >= SERVER_MAX_CONNECTIONS)
		return -1;
	c->srv = ws;
	c->wsi = wsi;
	c->sub.ops = &ws_sub_ops;
	pthread_mutex_init(&c->qlock, NULL);
	c->connected_ms = c->last_rx_ms = mono_ms();
	c->next = ws->conns;
	if (ws->conns)
		ws->conns->prev = c;
	ws->conns = c;
	ws->n_conns++;
	peer_name(wsi, c->peer);
	atomic_fetch_add_explicit(&ws->s->stats.connects, 1, memory_order_relaxed);
	log_info("ws: %s connected", c->peer);
	return 0;
}

static void conn_closed(struct ws_server *ws, struct ws_conn *c)
{
	char b64[WG_KEY_B64_LEN + 1] = "-";
	struct ws_frame *f;
	bool more;

	if (!c->wsi)
		return;
	/* After this no deliver() runs on c: it is called under the router lock. */
	router_unsubscribe(ws->s->router, &c->sub);
	pthread_mutex_lock(&ws->plock);
	if (c->on_pending)
		for (struct ws_conn **p = &ws->pending; *p; p = &(*p)->pending_next)
			if (*p == c) {
				*p = c->pending_next;
				break;
			}
	pthread_mutex_unlock(&ws->plock);
	while ((f = conn_dequeue(c, &more)))
		free(f);
	pthread_mutex_destroy(&c->qlock);
	free(c->rx);
	if (c->prev)
		c->prev->next = c->next;
	else
		ws->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ws->n_conns--;
	if (c->authed)
		key_to_base64(b64, c->sub.key);
	sodium_memzero(c->sub.session_token, sizeof(c->sub.session_token));
	atomic_fetch_add_explicit(&ws->s->stats.disconnects, 1, memory_order_relaxed);
	log_info("ws: %s key %s disconnected (%s)", c->peer, b64, c->why ? c->why : "closed");
	c->wsi = NULL;
}

static void conn_kill(struct ws_conn *c, const char *why, _Atomic uint64_t *counter)
{
	if (counter)
		atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	c->why = why;
	c->killed = true;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void conn_check(struct ws_conn *c, uint64_t now)
{
	struct server_stats *st = &c->srv->s->stats;

	if (c->killed)
		return;
	if (!c->authed && now - c->connected_ms >= SERVER_AUTH_TIMEOUT_MS) {
		conn_kill(c, "no proof in time", NULL);
	} else if (c->rx_start_ms && now - c->rx_start_ms >= SERVER_STALL_TIMEOUT_MS) {
		conn_kill(c, "stalled mid-message", &st->stalled);
	} else if (c->ping_sent_ms && now - c->ping_sent_ms >= WS_PONG_TIMEOUT_MS) {
		conn_kill(c, "no pong: stalled or gone", &st->stalled);
	} else if (c->authed && !c->ping_sent_ms && !c->ping_due &&
		   now - c->last_rx_ms >= WS_PING_IDLE_MS) {
		c->ping_due = true;
		lws_callback_on_writable(c->wsi);
	}
}

static void ws_sweep(lws_sorted_usec_list_t *sul)
{
	struct ws_server *ws =
		(struct ws_server *)((char *)sul - offsetof(struct ws_server, sweep));
	uint64_t now = mono_ms();

	for (struct ws_conn *c = ws->conns; c; c = c->next)
		conn_check(c, now);
	lws_sul_schedule(ws->ctx, 0, &ws->sweep, ws_sweep, WS_SWEEP_MS * LWS_US_PER_MS);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	struct ws_server *ws = lws_context_user(lws_get_context(wsi));
	struct ws_conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		return conn_established(ws, c, wsi);
	case LWS_CALLBACK_CLOSED:
		conn_closed(ws, c);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return c->wsi ? conn_receive(c, in, len) : -1;
	case LWS_CALLBACK_RECEIVE_PONG:
		c->ping_sent_ms = 0;
		c->last_rx_ms = mono_ms();
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return c->wsi ? conn_writeable(c) : 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (atomic_load(&ws->stop) && ws->ev.loop)
			ws->ev.brk(ws->ev.loop, EVBREAK_ALL);
		ws_flush_pending(ws, true);
		return 0;
	case LWS_CALLBACK_HTTP:
		return -1; /* WebSocket only: plain HTTP requests are closed */
	default:
		return 0;
	}
}

static void *ws_thread(void *arg)
{
	struct ws_server *ws = arg;

	on_service_thread = true;
	if (ws->ev.loop) {
		ws->ev.run(ws->ev.loop, 0); /* until server_ws_stop breaks it */
		return NULL;
	}
	while (!atomic_load(&ws->stop))
		if (lws_service(ws->ctx, 0) < 0)
			break;
	return NULL;
}

static void ws_ev_close(struct ws_ev *ev)
{
	if (ev->loop)
		ev->loop_destroy(ev->loop);
	if (ev->dl)
		dlclose(ev->dl);
	memset(ev, 0, sizeof(*ev));
}

static bool ws_ev_open(struct ws_ev *ev)
{
	ev->dl = dlopen("libev.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!ev->dl)
		return false;
	*(void **)&ev->loop_new = dlsym(ev->dl, "ev_loop_new");
	*(void **)&ev->loop_destroy = dlsym(ev->dl, "ev_loop_destroy");
	*(void **)&ev->run = dlsym(ev->dl, "ev_run");
	*(void **)&ev->brk = dlsym(ev->dl, "ev_break");
	if (ev->loop_new && ev->loop_destroy && ev->run && ev->brk)
		ev->loop = ev->loop_new(EVBACKEND_EPOLL);
	if (!ev->loop)
		ws_ev_close(ev);
	return ev->loop != NULL;
}

/* "HOST:PORT" or "[V6]:PORT" to a numeric address and a port. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sl, int *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
			*res;
	char host[256], *end;
	const char *colon;
	unsigned long p;
	size_t hl;

	if (addr[0] == '[') {
		colon = strstr(addr, "]:");
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - addr - 1);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr + 1, hl);
		colon++;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof(host))
			return -EINVAL;
		hl = (size_t)(colon - addr);
		memcpy(host, addr, hl);
	}
	host[hl] = '\0';
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || !colon[1] || p > 65535)
		return -EINVAL;
	if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res))
		return -EADDRNOTAVAIL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	freeaddrinfo(res);
	*port = (int)p;
	return 0;
}

/* lws cannot say why a bind failed: try it first, so that the caller hears -EADDRINUSE. */
static int probe_bind(const struct sockaddr_storage *ss, socklen_t sl)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, ret = 0;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){0}, sizeof(int));
	if (bind(fd, (const struct sockaddr *)ss, sl) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static bool addr_is_any(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

int server_ws_start(struct signal_server *s, const char *addr, const char *tls_cert,
		    const char *tls_key)
{
	struct lws_context_creation_info info = {0};
	struct sockaddr_storage ss;
	char iface[INET6_ADDRSTRLEN];
	struct ws_server *ws;
	socklen_t sl;
	int port, r;

	if (!s->router || !s->auth || s->ws || !tls_cert != !tls_key)
		return -EINVAL;
	r = parse_addr(addr, &ss, &sl, &port);
	if (r < 0)
		return r;
	if (tls_cert && (access(tls_cert, R_OK) || access(tls_key, R_OK)))
		return -errno;
	if (port && (r = probe_bind(&ss, sl)) < 0)
		return r;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, iface, sizeof(iface));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, iface, sizeof(iface));

	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	ws->s = s;
	pthread_mutex_init(&ws->plock, NULL);
	ws->protocols[0] = (struct lws_protocols){
		.name = WS_PROTOCOL,
		.callback = ws_callback,
		.per_session_data_size = sizeof(struct ws_conn),
		.rx_buffer_size = WS_RX_CHUNK,
	};

	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
	if (ss.ss_family == AF_INET)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.iface = addr_is_any(&ss) ? NULL : iface;
	info.port = port;
	info.protocols = ws->protocols;
	info.user = ws;
	info.vhost_name = "wice-signal";
	info.server_string = "wice";
	info.timeout_secs = SERVER_AUTH_TIMEOUT_MS / 1000; /* to finish the HTTP upgrade */
	/* No fd_limit_per_thread: with it, lws 4.1 finds a connection by a linear search over
	 * its fds. It sizes its tables from RLIMIT_NOFILE, which wice signal raises at start;
	 * SERVER_MAX_CONNECTIONS is enforced on accept. */
	info.max_http_header_pool = 256;
	info.max_http_header_data = 2048;
	if (tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = tls_cert;
		info.ssl_private_key_filepath = tls_key;
		info.alpn = "http/1.1";
	}
	info.retry_and_idle_policy = &ws_no_idle_policy;
	if (ws_ev_open(&ws->ev)) {
		void *foreign[1] = {ws->ev.loop};

		info.options |= LWS_SERVER_OPTION_LIBEV;
		info.foreign_loops = foreign;
		ws->ctx = lws_create_context(&info);
		if (!ws->ctx) {
			log_debug("ws: lws on libev failed, polling instead");
			ws_ev_close(&ws->ev);
			info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
			info.foreign_loops = NULL;
		}
	}
	if (!ws->ctx)
		ws->ctx = lws_create_context(&info);
	if (!ws->ctx) {
		r = -EIO;
		goto err_free;
	}
	lws_sul_schedule(ws->ctx, 0, &ws->sweep, ws_sweep, WS_SWEEP_MS * LWS_US_PER_MS);
	r = -pthread_create(&ws->thread, NULL, ws_thread, ws);
	if (r < 0)
		goto err_ctx;
	s->ws = ws;
	log_debug("ws: listening on %s (%s)", addr, ws->ev.loop ? "libev" : "poll");
	return 0;

err_ctx:
	lws_context_destroy(ws->ctx);
err_free:
	ws_ev_close(&ws->ev);
	pthread_mutex_destroy(&ws->plock);
	free(ws);
	return r;
}

void server_ws_stop(struct signal_server *s)
{
	struct ws_server *ws = s->ws;

	if (!ws)
		return;
	atomic_store(&ws->stop, true);
	lws_cancel_service(ws->ctx);
	pthread_join(ws->thread, NULL);
	/* Other transports may still publish: no deliver() may reach a connection being freed. */
	for (struct ws_conn *c = ws->conns; c; c = c->next)
		router_unsubscribe(s->router, &c->sub);
	lws_context_destroy(ws->ctx); /* closes (and frees) every connection */
	ws_ev_close(&ws->ev);
	pthread_mutex_destroy(&ws->plock);
	free(ws);
	s->ws = NULL;
}
