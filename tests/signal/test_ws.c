/* SPDX-License-Identifier: MIT */
/*
 * The WebSocket transport of wice signal and the ws:/wss: backends, in one process over
 * loopback: a real router and auth server, backends with real keys exchanging sealed
 * envelopes, and hand-written WebSocket clients (raw sockets) for what a well-behaved client
 * never does: bad proofs, forged senders, garbage, stalls, oversized frames.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>
#include "server/server.h"
#include "signal/auth.h"
#include "signal/backend.h"
#include "signal/envelope.h"
#include "util/key.h"
#include "util/log.h"

#define WAIT_MS	   10000 /* for anything that should happen: a failsafe, not a sleep */
#define QUIET_MS   300	 /* to conclude that something did not happen */
#define INBOX_MAX  64
#define IDLE_CONNS 1000

/* ---- clock and waiting ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What one backend saw: envelopes and state changes, under a lock, with a condition. */
struct inbox {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint8_t *env[INBOX_MAX];
	size_t len[INBOX_MAX];
	unsigned int n, ups, downs;
	bool up;
};

static void inbox_init(struct inbox *ib)
{
	memset(ib, 0, sizeof(*ib));
	pthread_mutex_init(&ib->lock, NULL);
	pthread_cond_init(&ib->cond, NULL);
}

static void inbox_clear(struct inbox *ib)
{
	pthread_mutex_lock(&ib->lock);
	for (unsigned int i = 0; i < ib->n && i < INBOX_MAX; i++)
		free(ib->env[i]);
	ib->n = 0;
	pthread_mutex_unlock(&ib->lock);
}

static void on_receive(void *ctx, const uint8_t *env, size_t len)
{
	struct inbox *ib = ctx;

	pthread_mutex_lock(&ib->lock);
	if (ib->n < INBOX_MAX) {
		ib->env[ib->n] = malloc(len);
		memcpy(ib->env[ib->n], env, len);
		ib->len[ib->n] = len;
	}
	ib->n++;
	pthread_cond_broadcast(&ib->cond);
	pthread_mutex_unlock(&ib->lock);
}

static void on_state(void *ctx, struct signal_backend *b, bool connected)
{
	struct inbox *ib = ctx;

	pthread_mutex_lock(&ib->lock);
	ib->up = connected;
	if (connected)
		ib->ups++;
	else
		ib->downs++;
	pthread_cond_broadcast(&ib->cond);
	pthread_mutex_unlock(&ib->lock);
}

/* Waits until *field (read under the lock) reaches want; false on timeout. */
static bool inbox_wait(struct inbox *ib, const unsigned int *field, unsigned int want,
		       unsigned int timeout_ms)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&ib->lock);
	while (*field < want)
		if (pthread_cond_timedwait(&ib->cond, &ib->lock, &ts) == ETIMEDOUT)
			break;
	ok = *field >= want;
	pthread_mutex_unlock(&ib->lock);
	return ok;
}

static bool inbox_wait_up(struct inbox *ib, bool up, unsigned int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	bool ok;

	for (;;) {
		pthread_mutex_lock(&ib->lock);
		ok = ib->up == up;
		pthread_mutex_unlock(&ib->lock);
		if (ok || now_ms() >= end)
			return ok;
		inbox_wait(ib, up ? &ib->ups : &ib->downs, (up ? ib->ups : ib->downs) + 1, 50);
	}
}

/* Polls a server counter until it reaches want. */
static bool stat_wait(_Atomic uint64_t *counter, uint64_t want, unsigned int timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	while (atomic_load(counter) < want) {
		if (now_ms() >= end)
			return false;
		usleep(2000);
	}
	return true;
}

/* ---- server and peers ---- */

struct peer {
	struct envelope_key key;
	struct inbox inbox;
	struct signal_backend *b;
};

static struct signal_server srv;
static int port;
static char url[64];
static char tmpdir[64];

static int free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void server_start(const char *cert, const char *key)
{
	char addr[32];

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_int_equal(server_ws_start(&srv, addr, cert, key), 0);
}

static int setup(void **state)
{
	memset(&srv, 0, sizeof(srv));
	srv.router = router_new();
	srv.auth = auth_server_new();
	assert_non_null(srv.router);
	assert_non_null(srv.auth);
	port = free_port();
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d/signal", port);
	server_start(NULL, NULL);
	return 0;
}

static int teardown(void **state)
{
	server_ws_stop(&srv);
	assert_int_equal(router_topics(srv.router), 0);
	router_free(srv.router);
	auth_server_free(srv.auth);
	return 0;
}

static void peer_key(struct peer *p)
{
	assert_int_equal(key_generate_private(p->key.private_key), 0);
	assert_int_equal(key_public_from_private(p->key.public_key, p->key.private_key), 0);
}

static void peer_open_url(struct peer *p, const char *u, const char *ca)
{
	struct signal_backend_config cfg = {
		.key = &p->key,
		.on_receive = on_receive,
		.on_state = on_state,
		.ctx = &p->inbox,
		.tls_ca_file = ca,
		.backoff_min_ms = 20,
		.backoff_max_ms = 200,
	};

	inbox_init(&p->inbox);
	assert_int_equal(signal_backend_open(u, &cfg, &p->b), 0);
}

static void peer_open(struct peer *p)
{
	peer_key(p);
	peer_open_url(p, url, NULL);
	assert_true(inbox_wait_up(&p->inbox, true, WAIT_MS));
}

static void peer_close(struct peer *p)
{
	signal_backend_close(p->b);
	inbox_clear(&p->inbox);
}

static void seal(const struct peer *from, const struct peer *to, uint64_t session, uint8_t **buf,
		 size_t *len)
{
	Wice__Signaling__Message msg = WICE__SIGNALING__MESSAGE__INIT;

	msg.session_id = session;
	msg.end_of_candidates = true;
	assert_int_equal(envelope_seal(&from->key, to->key.public_key, &msg, buf, len), 0);
}

/* Publishes until accepted: right after a (re)subscription the queue may still refuse. */
static void publish(struct peer *p, const uint8_t *buf, size_t len)
{
	uint64_t end = now_ms() + WAIT_MS;
	int r;

	while ((r = signal_backend_publish(p->b, buf, len)) == -EAGAIN && now_ms() < end)
		usleep(1000);
	assert_int_equal(r, 0);
}

/* Sends session from one peer to another and checks that exactly it arrives, opened. */
static void exchange(struct peer *from, struct peer *to, uint64_t session)
{
	Wice__Signaling__Message *msg;
	uint8_t sender[WG_KEY_LEN], *buf;
	unsigned int before;
	size_t len;

	pthread_mutex_lock(&to->inbox.lock);
	before = to->inbox.n;
	pthread_mutex_unlock(&to->inbox.lock);
	seal(from, to, session, &buf, &len);
	publish(from, buf, len);
	free(buf);
	assert_true(inbox_wait(&to->inbox, &to->inbox.n, before + 1, WAIT_MS));
	pthread_mutex_lock(&to->inbox.lock);
	assert_int_equal(envelope_open(&to->key, NULL, envelope_now_ms(), to->inbox.env[before],
				       to->inbox.len[before], sender, &msg),
			 0);
	pthread_mutex_unlock(&to->inbox.lock);
	assert_memory_equal(sender, from->key.public_key, WG_KEY_LEN);
	assert_int_equal(msg->session_id, session);
	wice__signaling__message__free_unpacked(msg, NULL);
}

/* ---- a WebSocket client by hand (RFC 6455) ---- */

static int raw_connect(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static bool raw_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, timeout_ms) == 1;
}

/* Reads exactly len bytes; false on EOF, error or timeout. */
static bool raw_read(int fd, void *buf, size_t len, int timeout_ms)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n;

		if (!raw_readable(fd, timeout_ms))
			return false;
		n = recv(fd, p, len, 0);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* True when the server closed the TCP connection (EOF or reset) within timeout_ms. */
static bool raw_eof(int fd, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	uint8_t buf[4096];

	while (now_ms() < end) {
		ssize_t n;

		if (!raw_readable(fd, (int)(end - now_ms())))
			return false;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return true;
	}
	return false;
}

static int raw_ws_connect(void)
{
	static const char req[] = "GET /signal HTTP/1.1\r\n"
				  "Host: 127.0.0.1\r\n"
				  "Upgrade: websocket\r\n"
				  "Connection: Upgrade\r\n"
				  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				  "Sec-WebSocket-Version: 13\r\n"
				  "Sec-WebSocket-Protocol: wice-signal\r\n\r\n";
	char resp[1024];
	size_t n = 0;
	int fd = raw_connect();

	assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
	/* Byte by byte up to the blank line, so no frame is read with the headers. */
	while (n < sizeof(resp) - 1 && (n < 4 || memcmp(resp + n - 4, "\r\n\r\n", 4)))
		assert_true(raw_read(fd, resp + n++, 1, WAIT_MS));
	resp[n] = '\0';
	assert_non_null(strstr(resp, " 101 "));
	return fd;
}

/* A masked client frame; payload_len may claim more than is sent (sent bytes: send_len). */
static void raw_frame(int fd, uint8_t opcode, bool fin, const uint8_t *payload, uint64_t claim,
		      size_t send_len)
{
	uint8_t *f = malloc(14 + send_len), mask[4];
	size_t h = 0;

	randombytes_buf(mask, sizeof(mask));
	f[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	if (claim < 126) {
		f[h++] = (uint8_t)(0x80 | claim);
	} else if (claim < 65536) {
		f[h++] = 0x80 | 126;
		f[h++] = (uint8_t)(claim >> 8);
		f[h++] = (uint8_t)claim;
	} else {
		f[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			f[h++] = (uint8_t)(claim >> (8 * i));
	}
	memcpy(f + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < send_len; i++)
		f[h + i] = payload[i] ^ mask[i & 3];
	assert_int_equal(send(fd, f, h + send_len, MSG_NOSIGNAL), (ssize_t)(h + send_len));
	free(f);
}

static void raw_send(int fd, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len);

	protobuf_c_message_pack(msg, buf);
	raw_frame(fd, 0x2, true, buf, len, len);
	free(buf);
}

/* Next data frame from the server as a ServerFrame (pings are answered), NULL on timeout. */
static Wice__Signaling__ServerFrame *raw_recv(int fd, int timeout_ms)
{
	Wice__Signaling__ServerFrame *sf;
	uint8_t h[2], ext[8], *payload;
	uint64_t len;

	for (;;) {
		if (!raw_read(fd, h, 2, timeout_ms))
			return NULL;
		len = h[1] & 0x7f;
		if (len >= 126) {
			size_t el = len == 126 ? 2 : 8;

			assert_true(raw_read(fd, ext, el, WAIT_MS));
			len = 0;
			for (size_t i = 0; i < el; i++)
				len = len << 8 | ext[i];
		}
		payload = malloc(len + 1);
		assert_true(raw_read(fd, payload, len, WAIT_MS));
		if ((h[0] & 0x0f) == 0x9) { /* ping: pong with its payload */
			raw_frame(fd, 0xa, true, payload, len, len);
			free(payload);
			continue;
		}
		if ((h[0] & 0x0f) == 0x8) { /* close */
			free(payload);
			return NULL;
		}
		assert_int_equal(h[0] & 0x0f, 0x2);
		sf = wice__signaling__server_frame__unpack(NULL, len, payload);
		free(payload);
		assert_non_null(sf);
		return sf;
	}
}

/*
 * True when the server closed the WebSocket within timeout_ms: its close frame (answered, as
 * RFC 6455 section 5.5.1 asks, so that it need not wait for us) and then EOF. Data frames
 * before it are skipped. want_status, when non-zero, is the status the close must carry.
 */
static bool raw_closed(int fd, int timeout_ms, unsigned int want_status)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	uint8_t h[2], ext[8], *payload;
	uint64_t len;

	while (now_ms() < end) {
		if (!raw_readable(fd, (int)(end - now_ms())))
			return false;
		if (!raw_read(fd, h, 2, WAIT_MS))
			return true; /* EOF without a close frame: closed all the same */
		len = h[1] & 0x7f;
		if (len >= 126) {
			size_t el = len == 126 ? 2 : 8;

			if (!raw_read(fd, ext, el, WAIT_MS))
				return false;
			len = 0;
			for (size_t i = 0; i < el; i++)
				len = len << 8 | ext[i];
		}
		payload = malloc(len + 1);
		if (!raw_read(fd, payload, len, WAIT_MS)) {
			free(payload);
			return false;
		}
		if ((h[0] & 0x0f) == 0x8) {
			unsigned int status =
				len >= 2 ? (unsigned int)(payload[0] << 8 | payload[1]) : 0;

			raw_frame(fd, 0x8, true, payload, len < 2 ? len : 2, len < 2 ? len : 2);
			free(payload);
			if (want_status && status != want_status)
				return false;
			return raw_eof(fd, WAIT_MS);
		}
		free(payload);
	}
	return false;
}

static void raw_subscribe_req(int fd, const uint8_t pub[WG_KEY_LEN], const uint8_t *nonce,
			      const uint8_t *proof)
{
	Wice__Signaling__ClientFrame cf = WICE__SIGNALING__CLIENT_FRAME__INIT;
	Wice__Signaling__SubscribeRequest req = WICE__SIGNALING__SUBSCRIBE_REQUEST__INIT;

	req.public_key = (ProtobufCBinaryData){WG_KEY_LEN, (uint8_t *)pub};
	if (nonce) {
		req.nonce = (ProtobufCBinaryData){AUTH_NONCE_LEN, (uint8_t *)nonce};
		req.proof = (ProtobufCBinaryData){AUTH_PROOF_LEN, (uint8_t *)proof};
	}
	cf.kind_case = WICE__SIGNALING__CLIENT_FRAME__KIND_SUBSCRIBE;
	cf.subscribe = &req;
	raw_send(fd, &cf.base);
}

static void raw_challenge(int fd, const uint8_t pub[WG_KEY_LEN], uint8_t server_key[WG_KEY_LEN],
			  uint8_t nonce[AUTH_NONCE_LEN])
{
	Wice__Signaling__ServerFrame *sf;

	raw_subscribe_req(fd, pub, NULL, NULL);
	sf = raw_recv(fd, WAIT_MS);
	assert_non_null(sf);
	assert_int_equal(sf->kind_case, WICE__SIGNALING__SERVER_FRAME__KIND_CHALLENGE);
	assert_int_equal(sf->challenge->server_key.len, WG_KEY_LEN);
	assert_int_equal(sf->challenge->nonce.len, AUTH_NONCE_LEN);
	memcpy(server_key, sf->challenge->server_key.data, WG_KEY_LEN);
	memcpy(nonce, sf->challenge->nonce.data, AUTH_NONCE_LEN);
	wice__signaling__server_frame__free_unpacked(sf, NULL);
}

/* A raw connection subscribed to key's public key, the session token received. */
static int raw_subscribed(const struct envelope_key *key)
{
	uint8_t server_key[WG_KEY_LEN], nonce[AUTH_NONCE_LEN], proof[AUTH_PROOF_LEN];
	Wice__Signaling__ServerFrame *sf;
	int fd = raw_ws_connect();

	raw_challenge(fd, key->public_key, server_key, nonce);
	assert_int_equal(auth_prove(key, server_key, nonce, proof), 0);
	raw_subscribe_req(fd, key->public_key, nonce, proof);
	sf = raw_recv(fd, WAIT_MS);
	assert_non_null(sf);
	assert_int_equal(sf->kind_case, WICE__SIGNALING__SERVER_FRAME__KIND_SESSION_TOKEN);
	assert_int_equal(sf->session_token.len, 32);
	wice__signaling__server_frame__free_unpacked(sf, NULL);
	return fd;
}

static void expect_error(int fd, uint32_t code)
{
	Wice__Signaling__ServerFrame *sf = raw_recv(fd, WAIT_MS);

	assert_non_null(sf);
	assert_int_equal(sf->kind_case, WICE__SIGNALING__SERVER_FRAME__KIND_ERROR);
	assert_int_equal(sf->error->code, code);
	wice__signaling__server_frame__free_unpacked(sf, NULL);
}

/* ---- the tests ---- */

/* Two peers exchange sealed messages both ways, many of them, through the server. */
static void test_exchange(void **state)
{
	struct peer a, b;

	peer_open(&a);
	peer_open(&b);
	for (uint64_t i = 1; i <= 20; i++) {
		exchange(&a, &b, i);
		exchange(&b, &a, 100 + i);
	}
	assert_int_equal(router_topics(srv.router), 2);
	assert_true(atomic_load(&srv.stats.delivered) >= 40);
	peer_close(&a);
	peer_close(&b);
}

/* Without the private key there is no subscription, with the backend or by hand. */
static void test_cannot_subscribe_foreign_key(void **state)
{
	uint8_t server_key[WG_KEY_LEN], nonce[AUTH_NONCE_LEN], proof[AUTH_PROOF_LEN];
	struct peer a, b, thief;
	uint64_t bad = atomic_load(&srv.stats.bad_proof);
	int fd;

	peer_open(&a);
	peer_open(&b);

	/* The backend with b's public key and another private key: refused, retrying. */
	peer_key(&thief);
	memcpy(thief.key.public_key, b.key.public_key, WG_KEY_LEN);
	peer_open_url(&thief, url, NULL);
	assert_true(stat_wait(&srv.stats.bad_proof, bad + 2, WAIT_MS));

	/* By hand: a challenge for b's key, a made-up proof. */
	fd = raw_ws_connect();
	raw_challenge(fd, b.key.public_key, server_key, nonce);
	randombytes_buf(proof, sizeof(proof));
	raw_subscribe_req(fd, b.key.public_key, nonce, proof);
	expect_error(fd, EACCES);
	/* A proof replayed from another session does not do either. */
	raw_subscribe_req(fd, b.key.public_key, nonce, proof);
	expect_error(fd, EACCES);

	exchange(&a, &b, 7);
	assert_null(raw_recv(fd, QUIET_MS));
	pthread_mutex_lock(&thief.inbox.lock);
	assert_int_equal(thief.inbox.n, 0);
	assert_int_equal(thief.inbox.ups, 0);
	pthread_mutex_unlock(&thief.inbox.lock);
	close(fd);
	peer_close(&thief);
	peer_close(&a);
	peer_close(&b);
}

/* A subscribed client cannot publish as somebody else; the envelope is dropped and counted. */
static void test_forged_sender(void **state)
{
	Wice__Signaling__ClientFrame cf = WICE__SIGNALING__CLIENT_FRAME__INIT;
	Wice__Signaling__Envelope *env;
	struct peer a, b, c;
	uint64_t forged = atomic_load(&srv.stats.forged_sender);
	uint8_t *buf, *forged_buf;
	size_t len, flen;
	int fd;

	peer_open(&a);
	peer_open(&b);
	peer_key(&c);

	/* c seals to b honestly, then claims a as the sender. */
	seal(&c, &b, 1, &buf, &len);
	env = wice__signaling__envelope__unpack(NULL, len, buf);
	assert_non_null(env);
	memcpy(env->sender.data, a.key.public_key, WG_KEY_LEN);
	flen = wice__signaling__envelope__get_packed_size(env);
	forged_buf = malloc(flen);
	wice__signaling__envelope__pack(env, forged_buf);

	fd = raw_subscribed(&c.key);
	cf.kind_case = WICE__SIGNALING__CLIENT_FRAME__KIND_ENVELOPE;
	cf.envelope = env;
	raw_send(fd, &cf.base);
	expect_error(fd, EPERM);
	assert_true(stat_wait(&srv.stats.forged_sender, forged + 1, WAIT_MS));

	/* Publishing before subscribing is refused too. */
	{
		int fd2 = raw_ws_connect();

		raw_send(fd2, &cf.base);
		expect_error(fd2, EACCES);
		close(fd2);
	}

	/* Through a backend (c's own): dropped as well. */
	peer_open_url(&c, url, NULL);
	assert_true(inbox_wait_up(&c.inbox, true, WAIT_MS));
	publish(&c, forged_buf, flen);
	assert_true(stat_wait(&srv.stats.forged_sender, forged + 3, WAIT_MS));

	exchange(&a, &b, 9); /* b got the honest one only */
	pthread_mutex_lock(&b.inbox.lock);
	assert_int_equal(b.inbox.n, 1);
	pthread_mutex_unlock(&b.inbox.lock);

	wice__signaling__envelope__free_unpacked(env, NULL);
	free(buf);
	free(forged_buf);
	close(fd);
	peer_close(&c);
	peer_close(&a);
	peer_close(&b);
}

/* Malformed frames get an error each and cost the connection after WS_MAX_STRIKES (16). */
static void test_malformed(void **state)
{
	static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
	uint64_t malformed = atomic_load(&srv.stats.malformed);
	int fd = raw_ws_connect();

	raw_frame(fd, 0x2, true, junk, sizeof(junk), sizeof(junk));
	expect_error(fd, EBADMSG);
	raw_frame(fd, 0x1, true, (const uint8_t *)"hello", 5, 5); /* text */
	expect_error(fd, EBADMSG);
	for (int i = 2; i < 16; i++)
		raw_frame(fd, 0x2, true, junk, sizeof(junk), sizeof(junk));
	assert_true(raw_closed(fd, WAIT_MS, 1008));
	assert_true(atomic_load(&srv.stats.malformed) >= malformed + 16);
	close(fd);
}

/* Garbage, stalls and oversized frames cost only their own connection. */
static void test_garbage_and_stalls(void **state)
{
	uint8_t junk[512], hdr[4];
	struct peer a, b, s;
	uint64_t oversized = atomic_load(&srv.stats.oversized);
	uint64_t stalled = atomic_load(&srv.stats.stalled);
	uint64_t start;
	int fd_junk, fd_http, fd_half_hdr, fd_half_payload, fd_big;

	peer_open(&a);
	peer_open(&b);

	/* Random bytes and an HTTP request that is no WebSocket upgrade. */
	fd_junk = raw_connect();
	randombytes_buf(junk, sizeof(junk));
	junk[0] = 0x16; /* not even "G" */
	assert_int_equal(send(fd_junk, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	fd_http = raw_connect();
	assert_true(send(fd_http, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, 0) == 27);

	/* Subscribed clients that stop halfway: inside a frame header, inside a payload. */
	peer_key(&s);
	fd_half_hdr = raw_subscribed(&s.key);
	hdr[0] = 0x82;
	assert_int_equal(send(fd_half_hdr, hdr, 1, 0), 1);
	fd_half_payload = raw_subscribed(&s.key);
	raw_frame(fd_half_payload, 0x2, true, junk, 300, 100);

	/* A frame announcing more than SERVER_MAX_FRAME: closed with 1009 at once. */
	fd_big = raw_subscribed(&s.key);
	raw_frame(fd_big, 0x2, true, junk, SERVER_MAX_FRAME + 1, sizeof(junk));
	assert_true(raw_closed(fd_big, WAIT_MS, 1009));
	assert_true(stat_wait(&srv.stats.oversized, oversized + 1, WAIT_MS));
	assert_true(raw_eof(fd_junk, WAIT_MS));
	assert_true(raw_eof(fd_http, WAIT_MS));

	/* Everyone else goes on while the stallers wait for their timeout. */
	start = now_ms();
	for (uint64_t i = 0; atomic_load(&srv.stats.stalled) < stalled + 2; i++) {
		exchange(&a, &b, i);
		exchange(&b, &a, i);
		assert_true(now_ms() - start < 3 * SERVER_STALL_TIMEOUT_MS);
		usleep(100000);
	}
	assert_true(raw_eof(fd_half_payload, WAIT_MS));
	assert_true(raw_eof(fd_half_hdr, WAIT_MS));
	print_message("stalled connections closed after %llu ms\n",
		      (unsigned long long)(now_ms() - start));
	exchange(&a, &b, 1000);
	/* Idle for a while and pinged, the well-behaved never lost their subscription. */
	assert_int_equal(a.inbox.downs, 0);
	assert_int_equal(b.inbox.downs, 0);

	close(fd_junk);
	close(fd_http);
	close(fd_half_hdr);
	close(fd_half_payload);
	close(fd_big);
	peer_close(&a);
	peer_close(&b);
}

/* A message split over fragments and over TCP writes is joined; its limit counts them all. */
static void test_fragments(void **state)
{
	Wice__Signaling__ClientFrame cf = WICE__SIGNALING__CLIENT_FRAME__INIT;
	Wice__Signaling__Envelope *env;
	uint8_t *buf, *frame, big[8192];
	struct peer a, b;
	size_t len, flen;
	int fd;

	peer_key(&a);
	peer_open(&b);
	seal(&a, &b, 42, &buf, &len);
	env = wice__signaling__envelope__unpack(NULL, len, buf);
	cf.kind_case = WICE__SIGNALING__CLIENT_FRAME__KIND_ENVELOPE;
	cf.envelope = env;
	flen = wice__signaling__client_frame__get_packed_size(&cf);
	frame = malloc(flen);
	wice__signaling__client_frame__pack(&cf, frame);

	fd = raw_subscribed(&a.key);
	raw_frame(fd, 0x2, false, frame, 10, 10);
	raw_frame(fd, 0x0, false, frame + 10, 5, 5);
	raw_frame(fd, 0x0, true, frame + 15, flen - 15, flen - 15);
	assert_true(inbox_wait(&b.inbox, &b.inbox.n, 1, WAIT_MS));
	pthread_mutex_lock(&b.inbox.lock);
	assert_int_equal(b.inbox.len[0], len);
	assert_memory_equal(b.inbox.env[0], buf, len);
	pthread_mutex_unlock(&b.inbox.lock);

	/* Fragments each small, together over SERVER_MAX_FRAME. */
	memset(big, 0, sizeof(big));
	raw_frame(fd, 0x2, false, big, sizeof(big), sizeof(big));
	for (size_t sent = sizeof(big); sent <= SERVER_MAX_FRAME; sent += sizeof(big))
		raw_frame(fd, 0x0, false, big, sizeof(big), sizeof(big));
	assert_true(raw_closed(fd, WAIT_MS, 1009));

	wice__signaling__envelope__free_unpacked(env, NULL);
	free(buf);
	free(frame);
	close(fd);
	peer_close(&b);
}

/* The server goes away and comes back: the backends resubscribe and traffic resumes. */
static void test_server_restart(void **state)
{
	struct peer a, b;

	peer_open(&a);
	peer_open(&b);
	exchange(&a, &b, 1);

	server_ws_stop(&srv);
	assert_int_equal(router_topics(srv.router), 0);
	assert_true(inbox_wait_up(&a.inbox, false, WAIT_MS));
	assert_true(inbox_wait_up(&b.inbox, false, WAIT_MS));
	{
		uint8_t *buf;
		size_t len;

		seal(&a, &b, 2, &buf, &len);
		assert_int_equal(signal_backend_publish(a.b, buf, len), -EAGAIN);
		free(buf);
	}
	usleep(300000); /* a few failed reconnects */
	server_start(NULL, NULL);
	assert_true(inbox_wait_up(&a.inbox, true, WAIT_MS));
	assert_true(inbox_wait_up(&b.inbox, true, WAIT_MS));
	assert_int_equal(a.inbox.ups, 2);
	exchange(&a, &b, 3);
	exchange(&b, &a, 4);
	peer_close(&a);
	peer_close(&b);
}

/* wss: with a self-signed certificate as the trust anchor; a client without it is refused. */
static void test_wss(void **state)
{
	char cmd[512], cert[96], key[96], wss[96];
	struct peer a, b, untrusting, plain;

	snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
		 "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
		 "-keyout %s -out %s 2>/dev/null",
		 key, cert);
	assert_int_equal(system(cmd), 0);
	server_ws_stop(&srv);
	server_start(cert, key);
	snprintf(wss, sizeof(wss), "wss://localhost:%d/signal", port);

	peer_key(&a);
	peer_open_url(&a, wss, cert);
	peer_key(&b);
	peer_open_url(&b, wss, cert);
	assert_true(inbox_wait_up(&a.inbox, true, WAIT_MS));
	assert_true(inbox_wait_up(&b.inbox, true, WAIT_MS));
	exchange(&a, &b, 1);
	exchange(&b, &a, 2);

	/* Plain ws:// to a wss server, and wss:// without our CA: no subscription. */
	peer_key(&untrusting);
	peer_open_url(&untrusting, wss, NULL);
	peer_key(&plain);
	peer_open_url(&plain, url, NULL);
	usleep(500000);
	assert_int_equal(untrusting.inbox.ups, 0);
	assert_int_equal(plain.inbox.ups, 0);
	exchange(&a, &b, 3);
	peer_close(&untrusting);
	peer_close(&plain);

	peer_close(&a);
	peer_close(&b);
}

static size_t rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &pages, &rss), 2);
	fclose(f);
	return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

/* What an idle subscriber costs the server: RSS growth over IDLE_CONNS subscribed sockets. */
/*
 * libwebsockets 4.1 does not free the OpenSSL objects of a wss context's vhost (its SSL_CTX
 * certificate store and friends) when the context is destroyed: LeakSanitizer reports them as
 * indirect leaks inside libcrypto/libssl, one set per wss context (test_wss makes three). They
 * are not ours and do not grow with connections; this binary alone suppresses them.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcrypto.so\nleak:libssl.so\n";
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static void test_idle_memory(void **state)
{
#ifdef UNDER_ASAN
	/* AddressSanitizer's shadow memory and quarantine make RSS mean nothing here. */
	skip();
#endif
	static int fds[IDLE_CONNS];
	struct envelope_key key;
	struct rlimit rl;
	size_t before, after;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2 * IDLE_CONNS + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < 2 * IDLE_CONNS + 64)
		skip();
	/* Warm up allocator arenas and lws' tables with one connection. */
	assert_int_equal(key_generate_private(key.private_key), 0);
	key_public_from_private(key.public_key, key.private_key);
	close(raw_subscribed(&key));
	before = rss_bytes();
	for (int i = 0; i < IDLE_CONNS; i++) {
		assert_int_equal(key_generate_private(key.private_key), 0);
		key_public_from_private(key.public_key, key.private_key);
		fds[i] = raw_subscribed(&key);
	}
	after = rss_bytes();
	assert_int_equal(router_topics(srv.router), IDLE_CONNS);
	print_message("RSS per idle subscriber: %zu bytes (%zu KiB over %d)\n",
		      (after - before) / IDLE_CONNS, (after - before) >> 10, IDLE_CONNS);
	assert_true((after - before) / IDLE_CONNS <= 20 * 1024);
	for (int i = 0; i < IDLE_CONNS; i++)
		close(fds[i]);
	assert_true(stat_wait(&srv.stats.disconnects, atomic_load(&srv.stats.connects), WAIT_MS));
}

/* Bad addresses and a busy port are refused with an errno. */
static void test_start_errors(void **state)
{
	struct signal_server other = {.router = srv.router, .auth = srv.auth};
	char addr[32];

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_int_equal(server_ws_start(&other, addr, NULL, NULL), -EADDRINUSE);
	assert_int_equal(server_ws_start(&other, "127.0.0.1", NULL, NULL), -EINVAL);
	assert_int_equal(server_ws_start(&other, "127.0.0.1:99999", NULL, NULL), -EINVAL);
	assert_int_equal(server_ws_start(&other, "127.0.0.1:1", "/nonexistent", "/nonexistent"),
			 -ENOENT);
	assert_null(other.ws);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exchange, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cannot_subscribe_foreign_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_sender, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fragments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_and_stalls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
	};
	int r;

	if (!getenv("WICE_TEST_VERBOSE"))
		log_max_level = LOG_LVL_WARN;
	else if (!strcmp(getenv("WICE_TEST_VERBOSE"), "debug"))
		log_max_level = LOG_LVL_DEBUG;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/wice-test-ws-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	r = cmocka_run_group_tests(tests, NULL, NULL);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd))
			r = r ? r : 1;
	}
	return r;
}
