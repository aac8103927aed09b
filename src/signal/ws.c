/* SPDX-License-Identifier: MIT */
/*
 * WebSocket signaling backend (ws://HOST:PORT/PATH, wss://): a libwebsockets client on its own
 * thread, speaking the wice signal server's WebSocket protocol (src/server/ws.c has the
 * sequence): ask for a challenge for our key, prove it (auth_prove), wait for the session
 * token, then publish ClientFrame{envelope} and receive ServerFrame{envelope}.
 *
 * The connection is "up" from the session token until it closes; publish() refuses with
 * -EAGAIN otherwise, and what is queued when it closes is dropped (the backends are
 * stateless). It reconnects by itself after a jittered exponential backoff and subscribes
 * again.
 *
 * Threads: publish() may run on any thread; it appends to the send queue and wakes the service
 * thread (lws_cancel_service) when the queue was idle. Everything else runs on the service
 * thread, which is also where on_receive and on_state are called, with no lock held.
 */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libwebsockets.h>
#include <sodium.h>
#include "signal/auth.h"
#include "signal/backend.h"
#include "signal/frame.h"
#include "util/log.h"

#define WSB_PROTOCOL	"wice-signal"
#define WSB_RX_CHUNK	4096
#define WSB_MAX_FRAME	(ENVELOPE_MAX_SIZE + 1024) /* a ServerFrame we accept */
#define WSB_BACKOFF_MIN 250
#define WSB_BACKOFF_MAX 30000
#define WSB_PING_SECS	20 /* idle before we ping the server */
#define WSB_HANGUP_SECS 40 /* idle (no pong either) before we give up on it */

enum wsb_state { WSB_DOWN, WSB_CONNECTING, WSB_CHALLENGE, WSB_PROVING, WSB_UP };

struct wsb_frame {
	struct wsb_frame *next;
	size_t len;
	uint8_t data[]; /* LWS_PRE headroom, then len bytes */
};

struct ws_backend {
	struct signal_backend base;
	struct signal_backend_config cfg;
	struct envelope_key key;
	char *url, *host, *path; /* url: our copy for logs (base.url is signal_backend_open's) */
	int port;
	bool tls;

	struct lws_context *ctx;
	struct lws *wsi;
	pthread_t thread;
	_Atomic bool stop;
	_Atomic int state;
	bool reported_up;
	lws_sorted_usec_list_t retry;
	unsigned int attempt;
	struct wsb_frame *ctl; /* the subscribe request to write next */
	uint8_t *rx;	       /* a message longer than one lws chunk, being joined */
	size_t rx_len;

	pthread_mutex_t qlock;
	struct wsb_frame *qhead, *qtail;
	unsigned int qcount;
	bool woken; /* the service thread knows the queue is not empty */

	struct lws_protocols protocols[2];
};

static const lws_retry_bo_t wsb_idle_policy = {
	.secs_since_valid_ping = WSB_PING_SECS,
	.secs_since_valid_hangup = WSB_HANGUP_SECS,
};

static void wsb_lws_log(int level, const char *line)
{
	log_debug("ws: lws: %.*s", (int)strcspn(line, "\n"), line);
}

static struct wsb_frame *wsb_frame_pack(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	struct wsb_frame *f = malloc(sizeof(*f) + LWS_PRE + len);

	if (!f)
		return NULL;
	f->next = NULL;
	f->len = len;
	protobuf_c_message_pack(msg, f->data + LWS_PRE);
	return f;
}

static void wsb_drop_queue(struct ws_backend *b)
{
	struct wsb_frame *f, *next;

	pthread_mutex_lock(&b->qlock);
	f = b->qhead;
	b->qhead = b->qtail = NULL;
	b->qcount = 0;
	b->woken = false;
	pthread_mutex_unlock(&b->qlock);
	for (; f; f = next) {
		next = f->next;
		free(f);
	}
}

static void wsb_set_state(struct ws_backend *b, enum wsb_state st)
{
	bool up = st == WSB_UP;

	atomic_store(&b->state, st);
	if (up == b->reported_up || atomic_load(&b->stop))
		return;
	b->reported_up = up;
	log_info("ws: %s %s", b->url, up ? "subscribed" : "disconnected");
	if (b->cfg.on_state)
		b->cfg.on_state(b->cfg.ctx, &b->base, up);
}

/* ---- connecting, and again after a backoff ---- */

static void wsb_connect(lws_sorted_usec_list_t *sul);
static void wsb_wake(struct ws_backend *b);

static void wsb_schedule_retry(struct ws_backend *b)
{
	unsigned int min = b->cfg.backoff_min_ms ? b->cfg.backoff_min_ms : WSB_BACKOFF_MIN;
	unsigned int max = b->cfg.backoff_max_ms ? b->cfg.backoff_max_ms : WSB_BACKOFF_MAX;
	uint64_t delay = min;

	if (atomic_load(&b->stop))
		return;
	if (max < min)
		max = min;
	for (unsigned int i = 0; i < b->attempt && delay < max; i++)
		delay *= 2;
	if (delay > max)
		delay = max;
	/* Jitter over the upper half, so that clients cut off together do not return together. */
	delay = delay / 2 + randombytes_uniform((uint32_t)(delay / 2 + 1));
	if (b->attempt < 32)
		b->attempt++;
	log_debug("ws: %s: reconnecting in %llu ms", b->url, (unsigned long long)delay);
	lws_sul_schedule(b->ctx, 0, &b->retry, wsb_connect, (lws_usec_t)delay * LWS_US_PER_MS);
}

static void wsb_connect(lws_sorted_usec_list_t *sul)
{
	struct ws_backend *b =
		(struct ws_backend *)((char *)sul - offsetof(struct ws_backend, retry));
	struct lws_client_connect_info ci = {0};

	if (atomic_load(&b->stop) || b->wsi)
		return;
	ci.context = b->ctx;
	ci.address = b->host;
	ci.port = b->port;
	ci.path = b->path;
	ci.host = b->host;
	ci.origin = b->host;
	ci.protocol = WSB_PROTOCOL;
	ci.ssl_connection = b->tls ? LCCSCF_USE_SSL : 0;
	ci.retry_and_idle_policy = &wsb_idle_policy;
	ci.pwsi = &b->wsi;
	atomic_store(&b->state, WSB_CONNECTING);
	if (!lws_client_connect_via_info(&ci)) {
		b->wsi = NULL;
		atomic_store(&b->state, WSB_DOWN);
		/* Unless its connection-error callback has already done it. */
		if (!b->retry.list.owner)
			wsb_schedule_retry(b);
	}
}

static void wsb_down(struct ws_backend *b, const char *why)
{
	b->wsi = NULL;
	free(b->ctl);
	b->ctl = NULL;
	free(b->rx);
	b->rx = NULL;
	b->rx_len = 0;
	wsb_drop_queue(b);
	log_debug("ws: %s: %s", b->url, why);
	wsb_set_state(b, WSB_DOWN);
	wsb_schedule_retry(b);
}

/* ---- the subscription handshake ---- */

static int wsb_send_subscribe(struct ws_backend *b, const uint8_t *nonce, const uint8_t *proof)
{
	Wice__Signaling__ClientFrame cf = WICE__SIGNALING__CLIENT_FRAME__INIT;
	Wice__Signaling__SubscribeRequest req = WICE__SIGNALING__SUBSCRIBE_REQUEST__INIT;

	req.public_key = (ProtobufCBinaryData){WG_KEY_LEN, b->key.public_key};
	if (nonce) {
		req.nonce = (ProtobufCBinaryData){AUTH_NONCE_LEN, (uint8_t *)nonce};
		req.proof = (ProtobufCBinaryData){AUTH_PROOF_LEN, (uint8_t *)proof};
	}
	cf.kind_case = WICE__SIGNALING__CLIENT_FRAME__KIND_SUBSCRIBE;
	cf.subscribe = &req;
	free(b->ctl);
	b->ctl = wsb_frame_pack(&cf.base);
	if (!b->ctl)
		return -1;
	lws_callback_on_writable(b->wsi);
	return 0;
}

static int wsb_on_challenge(struct ws_backend *b, const uint8_t *buf, size_t len)
{
	Wice__Signaling__Challenge *ch = wice__signaling__challenge__unpack(NULL, len, buf);
	uint8_t proof[AUTH_PROOF_LEN];
	int r = -1;

	if (!ch)
		return -1;
	if (atomic_load(&b->state) == WSB_CHALLENGE && ch->server_key.len == WG_KEY_LEN &&
	    ch->nonce.len == AUTH_NONCE_LEN &&
	    auth_prove(&b->key, ch->server_key.data, ch->nonce.data, proof) == 0) {
		atomic_store(&b->state, WSB_PROVING);
		r = wsb_send_subscribe(b, ch->nonce.data, proof);
	}
	sodium_memzero(proof, sizeof(proof));
	wice__signaling__challenge__free_unpacked(ch, NULL);
	return r;
}

static int wsb_on_error(struct ws_backend *b, const uint8_t *buf, size_t len)
{
	Wice__Signaling__Error *e = wice__signaling__error__unpack(NULL, len, buf);
	bool up = atomic_load(&b->state) == WSB_UP;

	log_printf(up ? LOG_LVL_DEBUG : LOG_LVL_WARN, "ws: %s: server says: %s (%s)", b->url,
		   e && e->message ? e->message : "?", e ? strerror((int)e->code) : "malformed");
	if (e)
		wice__signaling__error__free_unpacked(e, NULL);
	/* Before the token, an error means the subscription failed: start over later. */
	return up ? 0 : -1;
}

static int wsb_message(struct ws_backend *b, const uint8_t *buf, size_t len)
{
	const uint8_t *m = NULL;
	size_t ml = 0;

	switch (frame_oneof(buf, len, 4, &m, &ml)) {
	case WICE__SIGNALING__SERVER_FRAME__KIND_CHALLENGE:
		return wsb_on_challenge(b, m, ml);
	case WICE__SIGNALING__SERVER_FRAME__KIND_ENVELOPE:
		if (atomic_load(&b->state) == WSB_UP && !atomic_load(&b->stop))
			b->cfg.on_receive(b->cfg.ctx, m, ml);
		return 0;
	case WICE__SIGNALING__SERVER_FRAME__KIND_SESSION_TOKEN:
		if (atomic_load(&b->state) != WSB_PROVING)
			return -1;
		b->attempt = 0;
		wsb_set_state(b, WSB_UP);
		wsb_wake(b); /* publish may have been quicker than on_state */
		return 0;
	case WICE__SIGNALING__SERVER_FRAME__KIND_ERROR:
		return wsb_on_error(b, m, ml);
	default:
		log_debug("ws: %s: malformed server frame, ignoring", b->url);
		return 0;
	}
}

static int wsb_receive(struct ws_backend *b, struct lws *wsi, const uint8_t *in, size_t len)
{
	size_t remaining = lws_remaining_packet_payload(wsi);
	bool done = lws_is_final_fragment(wsi) && !remaining;
	uint8_t *rx;
	int r;

	if (b->rx_len + len + remaining > WSB_MAX_FRAME)
		return -1;
	if (done && !b->rx_len)
		return wsb_message(b, in, len);
	if (!b->rx && !(b->rx = malloc(WSB_MAX_FRAME)))
		return -1;
	memcpy(b->rx + b->rx_len, in, len);
	b->rx_len += len;
	if (!done)
		return 0;
	rx = b->rx;
	b->rx = NULL;
	r = wsb_message(b, rx, b->rx_len);
	b->rx_len = 0;
	free(rx);
	return r;
}

/* One frame per writable callback: the subscribe request first, then the queue. */
static int wsb_writeable(struct ws_backend *b, struct lws *wsi)
{
	struct wsb_frame *f = b->ctl;
	bool more = false;
	size_t len;
	int n;

	if (f) {
		b->ctl = NULL;
	} else {
		if (atomic_load(&b->state) != WSB_UP)
			return 0;
		pthread_mutex_lock(&b->qlock);
		f = b->qhead;
		if (f) {
			b->qhead = f->next;
			if (!b->qhead)
				b->qtail = NULL;
			b->qcount--;
		}
		more = b->qhead != NULL;
		if (!more)
			b->woken = false;
		pthread_mutex_unlock(&b->qlock);
		if (!f)
			return 0;
	}
	len = f->len;
	n = lws_write(wsi, f->data + LWS_PRE, len, LWS_WRITE_BINARY);
	free(f);
	if (n < (int)len)
		return -1;
	if (more)
		lws_callback_on_writable(wsi);
	return 0;
}

/* Service thread: start writing the queue, or drop what a publish racing with a disconnect
 * left in it (nothing is kept for a later connection). */
static void wsb_wake(struct ws_backend *b)
{
	bool pending;

	if (!b->wsi || atomic_load(&b->state) != WSB_UP) {
		wsb_drop_queue(b);
		return;
	}
	pthread_mutex_lock(&b->qlock);
	pending = b->qhead != NULL;
	if (!pending)
		b->woken = false;
	pthread_mutex_unlock(&b->qlock);
	if (pending)
		lws_callback_on_writable(b->wsi);
}

static int wsb_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct ws_backend *b = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		wsb_down(b, in ? (const char *)in : "connection failed");
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		atomic_store(&b->state, WSB_CHALLENGE);
		return wsb_send_subscribe(b, NULL, NULL);
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return wsb_receive(b, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return wsb_writeable(b, wsi);
	case LWS_CALLBACK_CLIENT_CLOSED:
		wsb_down(b, "closed");
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		wsb_wake(b);
		return 0;
	default:
		return 0;
	}
}

static void *wsb_thread(void *arg)
{
	struct ws_backend *b = arg;

	while (!atomic_load(&b->stop))
		if (lws_service(b->ctx, 0) < 0)
			break;
	return NULL;
}

/* ---- the ops ---- */

/* scheme://HOST[:PORT][/PATH], HOST possibly [V6]. */
static int wsb_parse_url(struct ws_backend *b, const char *url, const char *scheme)
{
	size_t sl = strlen(scheme), hl;
	const char *h, *end, *slash, *colon;
	unsigned long port;
	char *e;

	if (strncmp(url, scheme, sl) || strncmp(url + sl, "://", 3))
		return -EINVAL;
	h = url + sl + 3;
	slash = strchr(h, '/');
	end = slash ? slash : h + strlen(h);
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));

		if (!rb)
			return -EINVAL;
		colon = rb[1] == ':' ? rb + 1 : NULL;
		if (!colon && rb + 1 != end)
			return -EINVAL;
		h++;
		hl = (size_t)(rb - h);
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		hl = (size_t)((colon ? colon : end) - h);
	}
	if (!hl)
		return -EINVAL;
	port = b->tls ? 443 : 80;
	if (colon) {
		errno = 0;
		port = strtoul(colon + 1, &e, 10);
		if (errno || e != end || colon + 1 == end || !port || port > 65535)
			return -EINVAL;
	}
	b->host = strndup(h, hl);
	b->path = strdup(slash ? slash : "/");
	b->port = (int)port;
	return b->host && b->path ? 0 : -ENOMEM;
}

static void wsb_free(struct ws_backend *b)
{
	free(b->host);
	free(b->path);
	free(b->url);
	pthread_mutex_destroy(&b->qlock);
	sodium_memzero(&b->key, sizeof(b->key));
	free(b);
}

static int wsb_open(const struct signal_backend_ops *ops, const char *url,
		    const struct signal_backend_config *cfg, struct signal_backend **ret)
{
	struct lws_context_creation_info info = {0};
	struct ws_backend *b;
	int r;

	if (!cfg || !cfg->key || !cfg->on_receive)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	pthread_mutex_init(&b->qlock, NULL);
	b->cfg = *cfg;
	b->key = *cfg->key;
	b->cfg.key = &b->key;
	b->tls = ops == &signal_backend_wss;
	b->url = strdup(url);
	r = b->url ? wsb_parse_url(b, url, ops->scheme) : -ENOMEM;
	if (r < 0)
		goto err_free;

	b->protocols[0] = (struct lws_protocols){
		.name = WSB_PROTOCOL,
		.callback = wsb_callback,
		.rx_buffer_size = WSB_RX_CHUNK,
	};
	lws_set_log_level(LLL_ERR | LLL_WARN, wsb_lws_log);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = b->protocols;
	info.user = b;
	info.fd_limit_per_thread = 8; /* one connection, lws' wake pipe, DNS */
	if (b->tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.client_ssl_ca_filepath = cfg->tls_ca_file;
	}
	b->ctx = lws_create_context(&info);
	if (!b->ctx) {
		r = -EIO;
		goto err_free;
	}
	lws_sul_schedule(b->ctx, 0, &b->retry, wsb_connect, 1);
	r = -pthread_create(&b->thread, NULL, wsb_thread, b);
	if (r < 0) {
		lws_context_destroy(b->ctx);
		goto err_free;
	}
	*ret = &b->base;
	return 0;

err_free:
	wsb_free(b);
	return r;
}

static int wsb_open_ws(const char *url, const struct signal_backend_config *cfg,
		       struct signal_backend **ret)
{
	return wsb_open(&signal_backend_ws, url, cfg, ret);
}

static int wsb_open_wss(const char *url, const struct signal_backend_config *cfg,
			struct signal_backend **ret)
{
	return wsb_open(&signal_backend_wss, url, cfg, ret);
}

static int wsb_publish(struct signal_backend *base, const uint8_t *envelope, size_t len)
{
	struct ws_backend *b = (struct ws_backend *)base;
	struct wsb_frame *f;
	uint8_t hdr[16];
	size_t hl = 0, n = len;
	bool wake;

	if (!len || len > ENVELOPE_MAX_SIZE)
		return -EINVAL;
	if (atomic_load(&b->state) != WSB_UP)
		return -EAGAIN;
	/* ClientFrame{envelope = 2}: tag, length, then the encoded Envelope unchanged. */
	hdr[hl++] = (2 << 3) | 2;
	do {
		hdr[hl] = (uint8_t)(n & 0x7f);
		n >>= 7;
		if (n)
			hdr[hl] |= 0x80;
		hl++;
	} while (n);
	f = malloc(sizeof(*f) + LWS_PRE + hl + len);
	if (!f)
		return -ENOMEM;
	f->next = NULL;
	f->len = hl + len;
	memcpy(f->data + LWS_PRE, hdr, hl);
	memcpy(f->data + LWS_PRE + hl, envelope, len);

	pthread_mutex_lock(&b->qlock);
	if (b->qcount >= SIGNAL_SEND_QUEUE_MAX) {
		pthread_mutex_unlock(&b->qlock);
		free(f);
		return -EAGAIN;
	}
	if (b->qtail)
		b->qtail->next = f;
	else
		b->qhead = f;
	b->qtail = f;
	b->qcount++;
	wake = !b->woken;
	b->woken = true;
	pthread_mutex_unlock(&b->qlock);
	if (wake)
		lws_cancel_service(b->ctx);
	return 0;
}

static void wsb_close(struct signal_backend *base)
{
	struct ws_backend *b = (struct ws_backend *)base;

	if (!b)
		return;
	atomic_store(&b->stop, true);
	lws_cancel_service(b->ctx);
	pthread_join(b->thread, NULL);
	lws_context_destroy(b->ctx); /* its close callbacks see stop and call nobody */
	free(b->ctl);
	free(b->rx);
	wsb_drop_queue(b);
	wsb_free(b);
}

const struct signal_backend_ops signal_backend_ws = {
	.scheme = "ws",
	.open = wsb_open_ws,
	.publish = wsb_publish,
	.close = wsb_close,
};

const struct signal_backend_ops signal_backend_wss = {
	.scheme = "wss",
	.open = wsb_open_wss,
	.publish = wsb_publish,
	.close = wsb_close,
};
