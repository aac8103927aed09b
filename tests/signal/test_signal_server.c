/* SPDX-License-Identifier: MIT */
/*
 * The real `wice signal` process over loopback, through each backend (gRPC, WebSocket, and
 * both at once through a mux): two peers exchange sealed messages both ways and out of order;
 * a third can neither read them, forge a sender, replay, nor subscribe to a key it does not
 * hold; garbage and stalled connections on both ports leave the others' deliveries alone.
 * The gRPC backend publishes on PublishStream there (the server's counters say so).
 *
 * Usage: test_signal_server [PATH_TO_WICE]   (default: $WICE, else the build tree's wice)
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>
#include "signal/backend.h"
#include "signal/envelope.h"

#define WAIT_MS	   5000
#define QUIET_MS   400
#define MAX_QUEUED 256

static const char *wice_path;
static pid_t server_pid;
static char server_log[] = "/tmp/wice-test-signal-XXXXXX"; /* its stderr */
static uint16_t grpc_port, ws_port;

/* ---- a peer: a key, a mux of backends, and a queue of what it received ---- */

struct peer {
	struct envelope_key key;
	struct envelope_replay *replay;
	struct signal_mux *mux;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int n;
	uint8_t *env[MAX_QUEUED];
	size_t len[MAX_QUEUED];
	unsigned int connected;
};

static void on_receive(void *ctx, const uint8_t *env, size_t len)
{
	struct peer *p = ctx;

	pthread_mutex_lock(&p->lock);
	if (p->n < MAX_QUEUED) {
		p->env[p->n] = malloc(len);
		memcpy(p->env[p->n], env, len);
		p->len[p->n++] = len;
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void on_state(void *ctx, struct signal_backend *b, bool connected)
{
	struct peer *p = ctx;

	pthread_mutex_lock(&p->lock);
	if (connected)
		p->connected++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Waits until p has received at least n envelopes; false on timeout. */
static bool wait_received(struct peer *p, unsigned int n, int ms)
{
	struct timespec ts;
	bool ok;

	deadline_in(&ts, ms);
	pthread_mutex_lock(&p->lock);
	while (p->n < n && pthread_cond_timedwait(&p->cond, &p->lock, &ts) == 0)
		;
	ok = p->n >= n;
	pthread_mutex_unlock(&p->lock);
	return ok;
}

static void peer_clear(struct peer *p)
{
	pthread_mutex_lock(&p->lock);
	for (unsigned int i = 0; i < p->n; i++)
		free(p->env[i]);
	p->n = 0;
	pthread_mutex_unlock(&p->lock);
}

static void peer_keys(struct peer *p)
{
	randombytes_buf(p->key.private_key, WG_KEY_LEN);
	crypto_scalarmult_curve25519_base(p->key.public_key, p->key.private_key);
}

/* Opens the peer's backends; urls is a NULL-terminated list. Waits until every one is up. */
static void peer_open(struct peer *p, const char *const *urls, bool must_connect)
{
	struct signal_backend_config cfg = {
		.key = &p->key,
		.on_receive = on_receive,
		.on_state = on_state,
		.ctx = p,
		.backoff_min_ms = 50,
		.backoff_max_ms = 500,
	};
	unsigned int want = 0;
	struct timespec ts;

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->replay = envelope_replay_new();
	p->mux = signal_mux_new(&cfg);
	assert_non_null(p->mux);
	for (; urls[want]; want++)
		assert_int_equal(signal_mux_add(p->mux, urls[want]), 0);
	if (!must_connect)
		return;
	deadline_in(&ts, WAIT_MS);
	pthread_mutex_lock(&p->lock);
	while (p->connected < want && pthread_cond_timedwait(&p->cond, &p->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&p->lock);
	assert_true(p->connected >= want);
}

static void peer_close(struct peer *p)
{
	signal_mux_free(p->mux);
	peer_clear(p);
	envelope_replay_free(p->replay);
	sodium_memzero(&p->key, sizeof(p->key));
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	memset(p, 0, sizeof(*p));
}

/* Seal a message with a session id and one candidate carrying tag. */
static void seal(struct peer *from, struct peer *to, uint64_t session, uint8_t **buf, size_t *len)
{
	Wice__Signaling__Message msg = WICE__SIGNALING__MESSAGE__INIT;
	Wice__Signaling__Credentials cred = WICE__SIGNALING__CREDENTIALS__INIT;

	cred.ufrag = "ufrag";
	cred.pwd = "a-password-of-22chars!";
	msg.session_id = session;
	msg.credentials = &cred;
	assert_int_equal(envelope_seal(&from->key, to->key.public_key, &msg, buf, len), 0);
}

/* Publish, retrying while the backends are still subscribing. */
static void publish(struct peer *p, const uint8_t *buf, size_t len)
{
	int r;

	for (int i = 0; i < 100; i++) {
		r = signal_mux_publish(p->mux, buf, len);
		if (r != -EAGAIN && r != -ENOTCONN)
			break;
		usleep(20000);
	}
	assert_int_equal(r, 0);
}

/* Opens envelope i of p's queue; returns envelope_open's result and the session id. */
static int open_nth(struct peer *p, unsigned int i, uint64_t *session, uint8_t sender[32])
{
	Wice__Signaling__Message *msg = NULL;
	int r;

	pthread_mutex_lock(&p->lock);
	assert_true(i < p->n);
	r = envelope_open(&p->key, p->replay, envelope_now_ms(), p->env[i], p->len[i], sender,
			  &msg);
	pthread_mutex_unlock(&p->lock);
	if (!r) {
		*session = msg->session_id;
		wice__signaling__message__free_unpacked(msg, NULL);
	}
	return r;
}

/* ---- the server process ---- */

static uint16_t free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

static void server_start(void)
{
	char g[32], w[32];

	grpc_port = free_port();
	ws_port = free_port();
	snprintf(g, sizeof(g), "127.0.0.1:%u", grpc_port);
	snprintf(w, sizeof(w), "127.0.0.1:%u", ws_port);
	server_pid = fork();
	assert_true(server_pid >= 0);
	if (!server_pid) {
		int fd = open(server_log, O_WRONLY | O_APPEND);

		if (fd >= 0)
			dup2(fd, 2);
		execl(wice_path, wice_path, "signal", "--grpc", g, "--ws", w, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		int a = tcp_connect(grpc_port), b = tcp_connect(ws_port);

		if (a >= 0)
			close(a);
		if (b >= 0)
			close(b);
		if (a >= 0 && b >= 0)
			return;
		usleep(25000);
	}
	fail_msg("wice signal did not start listening");
}

static void server_stop(void)
{
	int status;

	if (server_pid <= 0)
		return;
	kill(server_pid, SIGTERM);
	assert_int_equal(waitpid(server_pid, &status, 0), server_pid);
	server_pid = 0;
	/* A clean shutdown on SIGTERM is part of the contract. */
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- the cases, run for each set of backends ---- */

struct setup {
	const char *name;
	const char *urls[3];
	char buf[2][64];
};

static int setup_grpc(void **state)
{
	static struct setup s = {.name = "grpc"};

	snprintf(s.buf[0], sizeof(s.buf[0]), "grpc://127.0.0.1:%u", grpc_port);
	s.urls[0] = s.buf[0];
	*state = &s;
	return 0;
}

static int setup_ws(void **state)
{
	static struct setup s = {.name = "ws"};

	snprintf(s.buf[0], sizeof(s.buf[0]), "ws://127.0.0.1:%u/", ws_port);
	s.urls[0] = s.buf[0];
	*state = &s;
	return 0;
}

static int setup_both(void **state)
{
	static struct setup s = {.name = "grpc+ws"};

	snprintf(s.buf[0], sizeof(s.buf[0]), "grpc://127.0.0.1:%u", grpc_port);
	snprintf(s.buf[1], sizeof(s.buf[1]), "ws://127.0.0.1:%u/", ws_port);
	s.urls[0] = s.buf[0];
	s.urls[1] = s.buf[1];
	*state = &s;
	return 0;
}

static void test_exchange_both_ways(void **state)
{
	struct setup *s = *state;
	struct peer a = {0}, b = {0};
	uint8_t *buf, sender[32];
	uint64_t session;
	size_t len;

	peer_keys(&a);
	peer_keys(&b);
	peer_open(&a, s->urls, true);
	peer_open(&b, s->urls, true);

	seal(&a, &b, 1, &buf, &len);
	publish(&a, buf, len);
	free(buf);
	assert_true(wait_received(&b, 1, WAIT_MS));
	assert_int_equal(open_nth(&b, 0, &session, sender), 0);
	assert_int_equal(session, 1);
	assert_memory_equal(sender, a.key.public_key, 32);

	seal(&b, &a, 2, &buf, &len);
	publish(&b, buf, len);
	free(buf);
	assert_true(wait_received(&a, 1, WAIT_MS));
	assert_int_equal(open_nth(&a, 0, &session, sender), 0);
	assert_int_equal(session, 2);
	assert_memory_equal(sender, b.key.public_key, 32);
	/* Through a mux of two backends the envelope arrives twice and is delivered once. */
	usleep(QUIET_MS * 1000);
	assert_int_equal(a.n, 1);
	peer_close(&a);
	peer_close(&b);
}

/* The server's counter `name` from the stats line SIGUSR1 makes it log (-1: none came). */
static long long server_stat(const char *name)
{
	char line[1024], key[64];
	long long v = -1;
	FILE *fp;

	snprintf(key, sizeof(key), " %s=", name);
	assert_int_equal(kill(server_pid, SIGUSR1), 0);
	for (int i = 0; i < 100 && v < 0; i++) {
		usleep(20000);
		fp = fopen(server_log, "r");
		assert_non_null(fp);
		while (fgets(line, sizeof(line), fp)) { /* the last stats line counts */
			char *at = strstr(line, "stats:") ? strstr(line, key) : NULL;

			if (at)
				v = strtoll(at + strlen(key), NULL, 10);
		}
		fclose(fp);
	}
	return v;
}

/* After the gRPC cases: the client backend published on PublishStream, not a unary call per
 * publish, and what it sent was counted as published. */
static void test_grpc_publish_stream(void **state)
{
	(void)state;
	assert_true(server_stat("publish_streams") > 0);
	assert_true(server_stat("published") > 0);
	assert_int_equal(server_stat("stalled"), 0);
}

static void test_out_of_order(void **state)
{
	struct setup *s = *state;
	struct peer a = {0}, b = {0};
	enum { N = 40 };
	uint8_t *bufs[N], sender[32];
	size_t lens[N];
	bool seen[N] = {0};
	uint64_t session;

	peer_keys(&a);
	peer_keys(&b);
	peer_open(&a, s->urls, true);
	peer_open(&b, s->urls, true);
	for (int i = 0; i < N; i++)
		seal(&a, &b, (uint64_t)i, &bufs[i], &lens[i]);
	/* Newest first, then the rest interleaved: every one must open exactly once. */
	for (int i = N - 1; i >= 0; i -= 2)
		publish(&a, bufs[i], lens[i]);
	for (int i = N - 2; i >= 0; i -= 2)
		publish(&a, bufs[i], lens[i]);
	assert_true(wait_received(&b, N, WAIT_MS));
	for (unsigned int i = 0; i < N; i++) {
		assert_int_equal(open_nth(&b, i, &session, sender), 0);
		assert_true(session < N);
		assert_false(seen[session]);
		seen[session] = true;
	}
	for (int i = 0; i < N; i++)
		free(bufs[i]);
	peer_close(&a);
	peer_close(&b);
}

static void test_third_party(void **state)
{
	struct setup *s = *state;
	struct peer a = {0}, b = {0}, c = {0};
	Wice__Signaling__Envelope *env;
	uint8_t *buf, *forged, sender[32];
	size_t len, flen;
	uint64_t session;

	peer_keys(&a);
	peer_keys(&b);
	peer_keys(&c);
	peer_open(&a, s->urls, true);
	peer_open(&b, s->urls, true);
	peer_open(&c, s->urls, true);

	/* C is subscribed, but sees nothing of what A sends B, and cannot open it. */
	seal(&a, &b, 7, &buf, &len);
	publish(&a, buf, len);
	assert_true(wait_received(&b, 1, WAIT_MS));
	usleep(QUIET_MS * 1000);
	assert_int_equal(c.n, 0);
	{
		Wice__Signaling__Message *msg = NULL;

		assert_int_equal(
			envelope_open(&c.key, NULL, envelope_now_ms(), buf, len, sender, &msg),
			-ENOENT);
	}

	/* A replay of A's envelope (the network or the server could repeat it): the mux drops
	 * the repeated bytes, and were they delivered, they would not open twice. */
	assert_int_equal(open_nth(&b, 0, &session, sender), 0);
	publish(&a, buf, len);
	usleep(QUIET_MS * 1000);
	assert_int_equal(b.n, 1);
	{
		Wice__Signaling__Message *msg = NULL;

		assert_int_equal(
			envelope_open(&b.key, b.replay, envelope_now_ms(), buf, len, sender, &msg),
			-EALREADY);
	}
	free(buf);

	/* C seals its own envelope to B and relabels it as A's: the server drops it (C has not
	 * proven A's key), and B would not accept it anyway. */
	seal(&c, &b, 9, &buf, &len);
	env = wice__signaling__envelope__unpack(NULL, len, buf);
	assert_non_null(env);
	memcpy(env->sender.data, a.key.public_key, 32);
	flen = wice__signaling__envelope__get_packed_size(env);
	forged = malloc(flen);
	wice__signaling__envelope__pack(env, forged);
	wice__signaling__envelope__free_unpacked(env, NULL);
	signal_mux_publish(c.mux, forged, flen); /* refused or dropped: either is right */
	usleep(QUIET_MS * 1000);
	assert_int_equal(b.n, 1);
	{
		Wice__Signaling__Message *msg = NULL;

		assert_int_equal(
			envelope_open(&b.key, NULL, envelope_now_ms(), forged, flen, sender, &msg),
			-EBADMSG);
	}
	free(forged);
	free(buf);
	peer_close(&a);
	peer_close(&b);
	peer_close(&c);
}

static void test_subscribe_without_key(void **state)
{
	struct setup *s = *state;
	struct peer a = {0}, b = {0}, imposter = {0};
	uint8_t *buf;
	size_t len;

	peer_keys(&a);
	peer_keys(&b);
	/* The imposter claims B's public key but holds another private key. */
	peer_keys(&imposter);
	memcpy(imposter.key.public_key, b.key.public_key, 32);
	peer_open(&a, s->urls, true);
	peer_open(&b, s->urls, true);
	peer_open(&imposter, s->urls, false);
	usleep(QUIET_MS * 1000);

	seal(&a, &b, 3, &buf, &len);
	publish(&a, buf, len);
	free(buf);
	assert_true(wait_received(&b, 1, WAIT_MS));
	usleep(QUIET_MS * 1000);
	assert_int_equal(imposter.n, 0);
	assert_int_equal(imposter.connected, 0);
	peer_close(&a);
	peer_close(&b);
	peer_close(&imposter);
}

static void test_garbage_on_both_ports(void **state)
{
	struct setup *s = *state;
	struct peer a = {0}, b = {0};
	uint8_t junk[4096], *buf, sender[32];
	uint16_t ports[2] = {grpc_port, ws_port};
	int stalled[2];
	uint64_t session;
	size_t len;

	for (int i = 0; i < 2; i++) {
		/* Random bytes, then close. */
		int fd = tcp_connect(ports[i]);

		assert_true(fd >= 0);
		randombytes_buf(junk, sizeof(junk));
		(void)!write(fd, junk, sizeof(junk));
		close(fd);
		/* A request cut off half way, left open: it must stall only itself. */
		stalled[i] = tcp_connect(ports[i]);
		assert_true(stalled[i] >= 0);
		if (ports[i] == ws_port) {
			static const char half[] =
				"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n";

			(void)!write(stalled[i], half, sizeof(half) - 1);
		} else {
			static const char half[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00";

			(void)!write(stalled[i], half, sizeof(half) - 1);
		}
	}
	peer_keys(&a);
	peer_keys(&b);
	peer_open(&a, s->urls, true);
	peer_open(&b, s->urls, true);
	seal(&a, &b, 11, &buf, &len);
	publish(&a, buf, len);
	free(buf);
	assert_true(wait_received(&b, 1, WAIT_MS));
	assert_int_equal(open_nth(&b, 0, &session, sender), 0);
	assert_int_equal(session, 11);
	assert_int_equal(kill(server_pid, 0), 0);
	close(stalled[0]);
	close(stalled[1]);
	peer_close(&a);
	peer_close(&b);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
#define CASE(tag, fn, setup) {tag "_" #fn, fn, setup, NULL, NULL}
#define CASES(tag, setup)                                                                          \
	CASE(tag, test_exchange_both_ways, setup), CASE(tag, test_out_of_order, setup),            \
		CASE(tag, test_third_party, setup), CASE(tag, test_subscribe_without_key, setup),  \
		CASE(tag, test_garbage_on_both_ports, setup)
		CASES("grpc", setup_grpc),
		CASE("grpc", test_grpc_publish_stream, setup_grpc),
		CASES("ws", setup_ws),
		CASES("grpc_ws", setup_both),
	};
	int r;

	static char self[4096];
	ssize_t n;

	/* The binary under test: argv[1], $WICE, or the build tree's (this is tests/signal/). */
	wice_path = argc > 1 ? argv[1] : getenv("WICE");
	if (!wice_path && (n = readlink("/proc/self/exe", self, sizeof(self) - 16)) > 0) {
		self[n] = '\0';
		strcpy(strrchr(self, '/'), "/../../wice");
		wice_path = self;
	}
	if (!wice_path || access(wice_path, X_OK)) {
		fprintf(stderr, "usage: %s PATH_TO_WICE\n", argv[0]);
		return 2;
	}
	if (sodium_init() < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	{
		int fd = mkstemp(server_log);

		if (fd < 0)
			return 2;
		close(fd);
	}
	server_start();
	r = cmocka_run_group_tests_name("wice signal over loopback", tests, NULL, NULL);
	server_stop();
	{ /* the server's log, for whoever reads this test's */
		char buf[4096];
		size_t got;
		FILE *fp = fopen(server_log, "r");

		while (fp && (got = fread(buf, 1, sizeof(buf), fp)) > 0)
			fwrite(buf, 1, got, stderr);
		if (fp)
			fclose(fp);
		unlink(server_log);
	}
	return r;
}
