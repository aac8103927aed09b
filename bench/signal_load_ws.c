/* SPDX-License-Identifier: MIT */
/*
 * bench/signal_load over WebSocket: every connection in one libwebsockets client context on a
 * libev loop (epoll) run by the one thread; the core ticks on an lws timer. The protocol is
 * src/server/ws.c's: ClientFrame{subscribe} for a challenge, again with the proof, the session
 * token, then ClientFrame{envelope} out and ServerFrame{envelope} in.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <ev.h>
#include <libwebsockets.h>
#include "signal_load.h"

#define WS_PROTOCOL "wice-signal"

static struct lws_context *ctx;
static struct ev_loop *loop;
static lws_sorted_usec_list_t tick_sul;

static int ws_queue(struct client *c, const uint8_t *data, size_t len)
{
	struct wframe *f = malloc(sizeof(*f) + LWS_PRE + len);

	if (!f)
		return -ENOMEM;
	f->next = NULL;
	f->len = len;
	memcpy(f->data + LWS_PRE, data, len);
	if (c->qtail) {
		c->qtail->next = f;
	} else {
		c->qhead = f;
		lws_callback_on_writable(c->wsi);
	}
	c->qtail = f;
	return 0;
}

int ws_publish(struct client *from, const uint8_t *env, size_t len, uint32_t slot, uint32_t gen)
{
	uint8_t frame[1 + 5 + ENV_MAX];

	if (!from->wsi)
		return -ENOTCONN;
	return ws_queue(from, frame, put_bytes(frame, 2, env, len));
}

static int ws_subscribe(struct client *c, const uint8_t *nonce, const uint8_t *proof)
{
	uint8_t req[3 * 2 + 32 + AUTH_NONCE_LEN + AUTH_PROOF_LEN], frame[2 + sizeof(req)];
	size_t n = put_bytes(req, 1, c->key.public_key, 32);

	if (nonce) {
		n += put_bytes(req + n, 2, nonce, AUTH_NONCE_LEN);
		n += put_bytes(req + n, 3, proof, AUTH_PROOF_LEN);
	}
	return ws_queue(c, frame, put_bytes(frame, 1, req, n));
}

static int ws_message(struct client *c, const uint8_t *buf, size_t len)
{
	const uint8_t *m, *key, *nonce;
	size_t ml, kl, nl;
	uint8_t proof[AUTH_PROOF_LEN];

	switch (pb_field(buf, len, 4, 0, &m, &ml)) {
	case 1: /* challenge */
		if (pb_field(m, ml, 2, 1, &key, &kl) != 1 || kl != 32 ||
		    pb_field(m, ml, 2, 2, &nonce, &nl) != 2 || nl != AUTH_NONCE_LEN ||
		    auth_prove(&c->key, key, nonce, proof) < 0)
			return -1;
		return ws_subscribe(c, nonce, proof);
	case 2:
		if (c->up)
			on_envelope(c, m, ml);
		return 0;
	case 3:
		if (!c->up && ml == 32) {
			memcpy(c->token, m, 32);
			on_up(c);
		}
		return 0;
	case 4: /* error: rate limited, or a refused subscription */
		if (!c->up)
			return -1;
		L.pub_fail++;
		return 0;
	default:
		return -1;
	}
}

static int ws_receive(struct client *c, struct lws *wsi, const uint8_t *in, size_t len)
{
	size_t remaining = lws_remaining_packet_payload(wsi);
	bool done = lws_is_final_fragment(wsi) && !remaining;
	uint8_t *rx;
	int r;

	if (done && !c->rx_len)
		return ws_message(c, in, len);
	if (c->rx_len + len > ENV_MAX + 64)
		return -1;
	if (!c->rx && !(c->rx = malloc(ENV_MAX + 64)))
		return -1;
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!done)
		return 0;
	rx = c->rx;
	c->rx = NULL;
	r = ws_message(c, rx, c->rx_len);
	c->rx_len = 0;
	free(rx);
	return r;
}

static int ws_writeable(struct client *c, struct lws *wsi)
{
	struct wframe *f = c->qhead;
	int n;

	if (!f)
		return 0;
	c->qhead = f->next;
	if (!c->qhead)
		c->qtail = NULL;
	n = lws_write(wsi, f->data + LWS_PRE, f->len, LWS_WRITE_BINARY);
	if (n < (int)f->len) {
		free(f);
		return -1;
	}
	free(f);
	if (c->qhead)
		lws_callback_on_writable(wsi);
	return 0;
}

static void ws_gone(struct client *c)
{
	c->wsi = NULL;
	while (c->qhead) {
		struct wframe *f = c->qhead;

		c->qhead = f->next;
		free(f);
	}
	c->qtail = NULL;
	on_down(c);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	struct client *c = lws_get_opaque_user_data(wsi);

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c)
			ws_gone(c);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		return ws_subscribe(c, NULL, NULL);
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return ws_receive(c, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return ws_writeable(c, wsi);
	default:
		return 0;
	}
}

/* lws' validity pings keep a timer per connection in a sorted list, rescheduled on every
 * frame: O(N) work per message at N = 10,000. The server pings us; we only answer. */
static const lws_retry_bo_t ws_no_idle_policy;

void ws_connect(struct client *c)
{
	struct lws_client_connect_info ci = {0};

	ci.context = ctx;
	ci.address = L.host;
	ci.port = L.port;
	ci.path = "/";
	ci.host = L.host;
	ci.origin = L.host;
	ci.protocol = WS_PROTOCOL;
	ci.opaque_user_data = c;
	ci.pwsi = &c->wsi;
	ci.retry_and_idle_policy = &ws_no_idle_policy;
	if (!lws_client_connect_via_info(&ci) && !c->gone)
		ws_gone(c);
}

static void ws_tick(lws_sorted_usec_list_t *sul)
{
	tick();
	if (L.done) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	lws_sul_schedule(ctx, 0, &tick_sul, ws_tick, (lws_usec_t)tick_us());
}

int ws_run(void)
{
	static struct lws_protocols protocols[2] = {
		{.name = WS_PROTOCOL, .callback = ws_callback, .rx_buffer_size = 4096},
	};
	struct lws_context_creation_info info = {0};
	void *foreign[1];

	loop = ev_loop_new(EVBACKEND_EPOLL);
	if (!loop)
		return -ENOMEM;
	foreign[0] = loop;
	lws_set_log_level(LLL_ERR, NULL);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	/* Not info.fd_limit_per_thread: with it set, lws 4.1 finds the connection of an fd by a
	 * linear search of its table (wsi_from_fd), 60% of our CPU at N = 10,000. Without it the
	 * table is indexed by fd and sized by RLIMIT_NOFILE (raise_nofile). */
	info.options = LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = foreign;
	info.retry_and_idle_policy = &ws_no_idle_policy;
	ctx = lws_create_context(&info);
	if (!ctx)
		return -EIO;
	lws_sul_schedule(ctx, 0, &tick_sul, ws_tick, 1);
	ev_run(loop, 0);
	return 0;
}
