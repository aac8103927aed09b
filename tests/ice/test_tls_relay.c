/* SPDX-License-Identifier: MIT */
/*
 * The turns: wrapper (src/ice/tls_relay.c) on a GMainContext driven by the test itself:
 *  - through real coturn over TLS: a STUN Binding, and a TURN Allocate with the long-term
 *    credential (RFC 8489 §9.2), written byte by byte here as libnice would send them;
 *  - against a TLS server in a thread that records every raw byte from its socket before
 *    decrypting: nothing readable (no STUN magic cookie, no username) crosses the TLS port,
 *    and the decrypted stream is exactly what was sent;
 *  - a wrong CA or a wrong name: the local connection closes, no plaintext leaves;
 *  - a stalled server and a slow local reader: the relay holds at most its buffer;
 *  - the connection limit, and tls_relay_free() closing every connection.
 * Certificates are made with the openssl command into a temporary directory.
 *
 * WICE_TEST_TURNS_PORT=N makes coturn's TLS port N (tests/e2e/test_turns_capture.sh captures
 * it); WICE_TEST_ONLY=name runs one case.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <glib-unix.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include "ice/tls_relay.h"

#define WAIT_MS	 10000 /* for anything that should happen: a failsafe, not a sleep */
#define QUIET_MS 300   /* to conclude that something did not happen */

#define TURN_USER  "wice-secret-user"
#define TURN_PASS  "wice-secret-pass"
#define TURN_REALM "wice.test"

/* RFC 8489 §5-§14: the parts of STUN and TURN (RFC 8656) the test speaks. */
#define STUN_HDR_LEN		   20
#define STUN_COOKIE		   0x2112A442u
#define STUN_BINDING_REQUEST	   0x0001
#define STUN_BINDING_SUCCESS	   0x0101
#define TURN_ALLOCATE_REQUEST	   0x0003
#define TURN_ALLOCATE_SUCCESS	   0x0103
#define TURN_ALLOCATE_ERROR	   0x0113
#define STUN_ATTR_USERNAME	   0x0006
#define STUN_ATTR_MESSAGE_INTEG	   0x0008
#define STUN_ATTR_ERROR_CODE	   0x0009
#define STUN_ATTR_REALM		   0x0014
#define STUN_ATTR_NONCE		   0x0015
#define TURN_ATTR_XOR_RELAYED	   0x0016
#define TURN_ATTR_REQUESTED_TRANSP 0x0019
#define STUN_ATTR_XOR_MAPPED	   0x0020
#define STUN_MSG_MAX		   1024

static const uint8_t cookie_bytes[4] = {0x21, 0x12, 0xa4, 0x42};

static char tmpdir[64];
static char ca_pem[128], other_ca_pem[128], srv_pem[128], srv_key[128];

/* ---- waiting on the test's own main context ---- */

struct waiter {
	bool fired;
};

static gboolean waiter_fire(gpointer data)
{
	((struct waiter *)data)->fired = true;
	return G_SOURCE_REMOVE;
}

static gboolean waiter_fd_fire(gint fd, GIOCondition cond, gpointer data)
{
	return waiter_fire(data);
}

/* Runs ctx until fd is ready for cond or ms pass. Returns whether fd became ready. */
static bool wait_fd(GMainContext *ctx, int fd, GIOCondition cond, unsigned int ms)
{
	struct waiter ready = {0}, timeout = {0};
	GSource *fs = g_unix_fd_source_new(fd, cond);
	GSource *ts = g_timeout_source_new(ms);

	g_source_set_callback(fs, G_SOURCE_FUNC(waiter_fd_fire), &ready, NULL);
	g_source_set_callback(ts, waiter_fire, &timeout, NULL);
	g_source_attach(fs, ctx);
	g_source_attach(ts, ctx);
	while (!ready.fired && !timeout.fired)
		g_main_context_iteration(ctx, TRUE);
	g_source_destroy(fs);
	g_source_destroy(ts);
	g_source_unref(fs);
	g_source_unref(ts);
	return ready.fired;
}

static void run_ms(GMainContext *ctx, unsigned int ms)
{
	struct waiter timeout = {0};
	GSource *ts = g_timeout_source_new(ms);

	g_source_set_callback(ts, waiter_fire, &timeout, NULL);
	g_source_attach(ts, ctx);
	while (!timeout.fired)
		g_main_context_iteration(ctx, TRUE);
	g_source_destroy(ts);
	g_source_unref(ts);
}

static int client_connect(uint16_t port, const struct in_addr *source)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (source) {
		struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr = *source};

		assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
	}
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

static void client_send(GMainContext *ctx, int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			assert_true(wait_fd(ctx, fd, G_IO_OUT, WAIT_MS));
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Reads exactly len bytes. Returns len, or what arrived before EOF, a reset or WAIT_MS. */
static size_t client_recv(GMainContext *ctx, int fd, uint8_t *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, p + got, len - got, 0);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0 || errno != EAGAIN || !wait_fd(ctx, fd, G_IO_IN, WAIT_MS))
			break;
	}
	return got;
}

/* Waits for the relay to close fd: EOF or reset, and no byte before it. */
static void assert_closed_by_relay(GMainContext *ctx, int fd)
{
	uint8_t b;
	ssize_t n;

	assert_true(wait_fd(ctx, fd, G_IO_IN, WAIT_MS));
	n = recv(fd, &b, 1, 0);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

static uint16_t free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static bool contains(const uint8_t *hay, size_t len, const void *needle, size_t nlen)
{
	return nlen <= len && memmem(hay, len, needle, nlen) != NULL;
}

/* ---- STUN messages, by hand ---- */

struct stun {
	uint8_t b[STUN_MSG_MAX];
	size_t len;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void stun_init(struct stun *m, uint16_t type)
{
	memset(m, 0, sizeof(*m));
	put16(m->b, type);
	memcpy(m->b + 4, cookie_bytes, 4);
	assert_int_equal(RAND_bytes(m->b + 8, 12), 1); /* transaction id */
	m->len = STUN_HDR_LEN;
}

/* Appends an attribute padded to 4 bytes and keeps the header's length field right. */
static void stun_add(struct stun *m, uint16_t type, const void *val, size_t len)
{
	size_t padded = (len + 3) & ~(size_t)3;

	assert_true(m->len + 4 + padded <= sizeof(m->b));
	put16(m->b + m->len, type);
	put16(m->b + m->len + 2, (uint16_t)len);
	memcpy(m->b + m->len + 4, val, len);
	m->len += 4 + padded;
	put16(m->b + 2, (uint16_t)(m->len - STUN_HDR_LEN));
}

/* RFC 8489 §14.5: HMAC-SHA1 over the message up to the attribute, with the length field
 * already counting it; long-term key = MD5(username ":" realm ":" password), §9.2.2. */
static void stun_add_integrity(struct stun *m, const char *realm)
{
	uint8_t key[16], mac[20];
	unsigned int mac_len = sizeof(mac);
	char *creds = g_strdup_printf("%s:%s:%s", TURN_USER, realm, TURN_PASS);

	assert_int_equal(EVP_Digest(creds, strlen(creds), key, NULL, EVP_md5(), NULL), 1);
	g_free(creds);
	put16(m->b + 2, (uint16_t)(m->len + 4 + sizeof(mac) - STUN_HDR_LEN));
	assert_non_null(HMAC(EVP_sha1(), key, sizeof(key), m->b, m->len, mac, &mac_len));
	stun_add(m, STUN_ATTR_MESSAGE_INTEG, mac, sizeof(mac));
}

/* Reads one STUN message from the stream (STUN over TCP: messages back to back, §6.2.2). */
static void stun_recv(GMainContext *ctx, int fd, struct stun *m)
{
	size_t body;

	assert_int_equal(client_recv(ctx, fd, m->b, STUN_HDR_LEN), STUN_HDR_LEN);
	assert_memory_equal(m->b + 4, cookie_bytes, 4);
	body = get16(m->b + 2);
	assert_true(body % 4 == 0 && STUN_HDR_LEN + body <= sizeof(m->b));
	assert_int_equal(client_recv(ctx, fd, m->b + STUN_HDR_LEN, body), body);
	m->len = STUN_HDR_LEN + body;
}

/* Finds an attribute; lengths checked before anything is read. */
static const uint8_t *stun_find(const struct stun *m, uint16_t type, size_t *ret_len)
{
	size_t off = STUN_HDR_LEN;

	while (off + 4 <= m->len) {
		size_t len = get16(m->b + off + 2);

		if (off + 4 + len > m->len)
			return NULL;
		if (get16(m->b + off) == type) {
			*ret_len = len;
			return m->b + off + 4;
		}
		off += 4 + ((len + 3) & ~(size_t)3);
	}
	return NULL;
}

/* XOR-MAPPED-ADDRESS and XOR-RELAYED-ADDRESS (§14.2), IPv4 only: returns the address. */
static struct in_addr stun_xor_addr(const struct stun *m, uint16_t type)
{
	struct in_addr a = {0};
	const uint8_t *v;
	size_t len = 0;
	uint32_t x;

	v = stun_find(m, type, &len);
	assert_non_null(v);
	assert_int_equal(len, 8);
	assert_int_equal(v[1], 0x01); /* family IPv4 */
	memcpy(&x, v + 4, 4);
	a.s_addr = x ^ htonl(STUN_COOKIE);
	return a;
}

/* ---- coturn ---- */

struct coturn {
	pid_t pid;
	uint16_t tls_port;
	char conf[128];
};

static void coturn_start(struct coturn *t)
{
	const char *env = getenv("WICE_TEST_TURNS_PORT");
	uint16_t plain_port = free_port();
	gint64 deadline;
	FILE *f;

	t->tls_port = env ? (uint16_t)atoi(env) : free_port();
	snprintf(t->conf, sizeof(t->conf), "%s/turnserver.conf", tmpdir);
	f = fopen(t->conf, "w");
	assert_non_null(f);
	fprintf(f,
		"listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port=%u\n"
		"tls-listening-port=%u\ncert=%s\npkey=%s\nlt-cred-mech\nuser=%s:%s\nrealm=%s\n"
		"no-udp\nno-dtls\nno-tcp\nno-cli\nno-multicast-peers\nno-rfc5780\n"
		"userdb=%s/turndb\npidfile=%s/turnserver.pid\nlog-file=%s/turnserver.log\n"
		"simple-log\nno-stdout-log\n",
		plain_port, t->tls_port, srv_pem, srv_key, TURN_USER, TURN_PASS, TURN_REALM, tmpdir,
		tmpdir, tmpdir);
	fclose(f);
	t->pid = fork();
	assert_true(t->pid >= 0);
	if (t->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execlp("turnserver", "turnserver", "-c", t->conf, (char *)NULL);
		_exit(127);
	}
	/* coturn says nothing when it is ready: its TLS port accepting a connection is the event.
	 */
	deadline = g_get_monotonic_time() + WAIT_MS * 1000;
	for (;;) {
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(t->tls_port)};
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok;

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(fd);
		if (ok)
			break;
		assert_true(g_get_monotonic_time() < deadline);
		assert_int_equal(waitpid(t->pid, NULL, WNOHANG), 0);
		g_usleep(20000);
	}
}

static void coturn_stop(struct coturn *t)
{
	kill(t->pid, SIGTERM);
	waitpid(t->pid, NULL, 0);
}

/* ---- a TLS server that records its raw input ---- */

enum srv_mode {
	SRV_RECORD, /* read until EOF, keep raw and decrypted bytes */
	SRV_STALL,  /* handshake, then read nothing until stopped */
	SRV_FLOOD,  /* handshake, then send flood_len bytes of a pattern and close */
};

struct fake_srv {
	enum srv_mode mode;
	int listen_fd, done[2], stop[2];
	uint16_t port;
	size_t flood_len;
	uint64_t sent; /* atomic: FLOOD bytes handed to the socket */
	pthread_t thread;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	GByteArray *raw, *plain;
	bool handshake_ok;
};

static uint8_t flood_byte(size_t i)
{
	return (uint8_t)(i * 31 + i / 4093);
}

static bool srv_flush(struct fake_srv *s)
{
	uint8_t b[4096];
	int n;

	while ((n = BIO_read(SSL_get_wbio(s->ssl), b, sizeof(b))) > 0) {
		for (int off = 0; off < n;) {
			ssize_t w = send(s->fd, b + off, (size_t)(n - off), MSG_NOSIGNAL);

			if (w <= 0)
				return false;
			off += (int)w;
		}
	}
	return true;
}

/* Feeds raw socket bytes to the TLS engine, recording them. False at EOF or error. */
static bool srv_fill(struct fake_srv *s)
{
	uint8_t b[4096];
	ssize_t n = recv(s->fd, b, sizeof(b), 0);

	if (n <= 0)
		return false;
	g_byte_array_append(s->raw, b, (guint)n);
	BIO_write(SSL_get_rbio(s->ssl), b, (int)n);
	return true;
}

static void srv_record_rest(struct fake_srv *s)
{
	uint8_t b[4096];
	int n;

	for (;;) {
		n = SSL_read(s->ssl, b, sizeof(b));
		if (n > 0) {
			g_byte_array_append(s->plain, b, (guint)n);
			continue;
		}
		srv_flush(s);
		if (SSL_get_error(s->ssl, n) != SSL_ERROR_WANT_READ || !srv_fill(s))
			break;
	}
}

static void srv_flood(struct fake_srv *s)
{
	uint8_t b[4096];

	for (size_t off = 0; off < s->flood_len;) {
		size_t n = MIN(sizeof(b), s->flood_len - off);

		for (size_t i = 0; i < n; i++)
			b[i] = flood_byte(off + i);
		if (SSL_write(s->ssl, b, (int)n) != (int)n || !srv_flush(s))
			return;
		off += n;
		__atomic_store_n(&s->sent, off, __ATOMIC_RELEASE);
	}
	SSL_shutdown(s->ssl);
	srv_flush(s);
}

static void *srv_main(void *arg)
{
	struct fake_srv *s = arg;
	struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
	uint8_t b[4096];
	char one = 1;
	int ret;

	if (poll(&p, 1, WAIT_MS) != 1)
		goto out;
	s->fd = accept(s->listen_fd, NULL, NULL);
	if (s->fd < 0)
		goto out;
	if (s->mode == SRV_FLOOD) {
		int small = 65536; /* so the relay, not the kernel, is what fills up */

		setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	}
	s->ssl = SSL_new(s->ctx);
	SSL_set_bio(s->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	SSL_set_accept_state(s->ssl);
	while ((ret = SSL_do_handshake(s->ssl)) != 1) {
		srv_flush(s); /* a ServerHello, or an alert */
		if (SSL_get_error(s->ssl, ret) != SSL_ERROR_WANT_READ || !srv_fill(s))
			break;
	}
	s->handshake_ok = ret == 1;
	srv_flush(s);
	if (s->handshake_ok && s->mode == SRV_STALL)
		while (read(s->stop[0], b, 1) < 0 && errno == EINTR)
			;
	else if (s->handshake_ok && s->mode == SRV_FLOOD)
		srv_flood(s);
	else if (s->handshake_ok)
		srv_record_rest(s);
	/* Whatever happened, everything the socket still brings is recorded. */
	while (srv_fill(s))
		;
	SSL_free(s->ssl);
	close(s->fd);
out:
	if (write(s->done[1], &one, 1) != 1)
		abort();
	return NULL;
}

static void srv_start(struct fake_srv *s, enum srv_mode mode)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->raw = g_byte_array_new();
	s->plain = g_byte_array_new();
	s->ctx = SSL_CTX_new(TLS_server_method());
	assert_int_equal(SSL_CTX_use_certificate_chain_file(s->ctx, srv_pem), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(s->ctx, srv_key, SSL_FILETYPE_PEM), 1);
	assert_int_equal(pipe2(s->done, O_CLOEXEC), 0);
	assert_int_equal(pipe2(s->stop, O_CLOEXEC), 0);
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->listen_fd, 4), 0);
	assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&sin, &len), 0);
	s->port = ntohs(sin.sin_port);
}

static void srv_run(struct fake_srv *s)
{
	assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

/* Waits for the server thread to end while the relay keeps running, then joins it. */
static void srv_join(GMainContext *ctx, struct fake_srv *s)
{
	char one = 1;

	assert_int_equal(write(s->stop[1], &one, 1), 1);
	assert_true(wait_fd(ctx, s->done[0], G_IO_IN, WAIT_MS));
	pthread_join(s->thread, NULL);
}

static void srv_free(struct fake_srv *s)
{
	close(s->listen_fd);
	close(s->done[0]);
	close(s->done[1]);
	close(s->stop[0]);
	close(s->stop[1]);
	SSL_CTX_free(s->ctx);
	g_byte_array_free(s->raw, TRUE);
	g_byte_array_free(s->plain, TRUE);
}

/* ---- cases ---- */

struct env {
	GMainContext *ctx;
	struct tls_relay *relay;
};

static int env_setup(void **state)
{
	struct env *e = g_new0(struct env, 1);

	e->ctx = g_main_context_new();
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;

	tls_relay_free(e->relay);
	/* Cancelled lookups and closed sources finish on the context. */
	while (g_main_context_iteration(e->ctx, FALSE))
		;
	g_main_context_unref(e->ctx);
	g_free(e);
	return 0;
}

static struct tls_relay_stats stats(struct env *e)
{
	struct tls_relay_stats st;

	tls_relay_get_stats(e->relay, &st);
	return st;
}

/* A local IPv4 address that is not loopback, as libnice binds its TURN socket to one. */
static bool non_loopback_addr(struct in_addr *ret)
{
	struct ifaddrs *ifs, *i;
	bool found = false;

	if (getifaddrs(&ifs) < 0)
		return false;
	for (i = ifs; i && !found; i = i->ifa_next) {
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) &&
		    !(i->ifa_flags & IFF_LOOPBACK)) {
			*ret = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
			found = true;
		}
	}
	freeifaddrs(ifs);
	return found;
}

static void binding_through(struct env *e, const struct in_addr *source)
{
	struct stun req, resp;
	struct in_addr mapped;
	int fd = client_connect(tls_relay_port(e->relay), source);

	stun_init(&req, STUN_BINDING_REQUEST);
	client_send(e->ctx, fd, req.b, req.len);
	stun_recv(e->ctx, fd, &resp);
	assert_int_equal(get16(resp.b), STUN_BINDING_SUCCESS);
	assert_memory_equal(resp.b + 8, req.b + 8, 12);
	mapped = stun_xor_addr(&resp, STUN_ATTR_XOR_MAPPED);
	/* coturn saw the relay's TLS connection, not the client's. */
	assert_int_equal(ntohl(mapped.s_addr), INADDR_LOOPBACK);
	close(fd);
}

static void allocate_through(struct env *e)
{
	static const uint8_t udp[4] = {17, 0, 0, 0};
	const uint8_t *realm, *nonce, *code;
	size_t realm_len = 0, nonce_len = 0, code_len = 0;
	struct stun req, resp;
	char realm_str[128];
	struct in_addr relayed;
	int fd = client_connect(tls_relay_port(e->relay), NULL);

	/* RFC 8656 §7.2: the first Allocate is unauthenticated and draws a 401 with a nonce. */
	stun_init(&req, TURN_ALLOCATE_REQUEST);
	stun_add(&req, TURN_ATTR_REQUESTED_TRANSP, udp, sizeof(udp));
	client_send(e->ctx, fd, req.b, req.len);
	stun_recv(e->ctx, fd, &resp);
	assert_int_equal(get16(resp.b), TURN_ALLOCATE_ERROR);
	code = stun_find(&resp, STUN_ATTR_ERROR_CODE, &code_len);
	assert_non_null(code);
	assert_true(code_len >= 4);
	assert_int_equal(code[2] * 100 + code[3], 401);
	realm = stun_find(&resp, STUN_ATTR_REALM, &realm_len);
	nonce = stun_find(&resp, STUN_ATTR_NONCE, &nonce_len);
	assert_non_null(realm);
	assert_non_null(nonce);
	assert_true(realm_len < sizeof(realm_str));
	memcpy(realm_str, realm, realm_len);
	realm_str[realm_len] = '\0';
	assert_string_equal(realm_str, TURN_REALM);

	stun_init(&req, TURN_ALLOCATE_REQUEST);
	stun_add(&req, TURN_ATTR_REQUESTED_TRANSP, udp, sizeof(udp));
	stun_add(&req, STUN_ATTR_USERNAME, TURN_USER, strlen(TURN_USER));
	stun_add(&req, STUN_ATTR_REALM, realm, realm_len);
	stun_add(&req, STUN_ATTR_NONCE, nonce, nonce_len);
	stun_add_integrity(&req, realm_str);
	client_send(e->ctx, fd, req.b, req.len);
	stun_recv(e->ctx, fd, &resp);
	assert_int_equal(get16(resp.b), TURN_ALLOCATE_SUCCESS);
	assert_memory_equal(resp.b + 8, req.b + 8, 12);
	relayed = stun_xor_addr(&resp, TURN_ATTR_XOR_RELAYED);
	assert_int_equal(ntohl(relayed.s_addr), INADDR_LOOPBACK);
	close(fd);
}

/* (1) Real coturn over TLS: Binding and an authenticated Allocate, by IP (certificate IP
 * SAN checked) and by name through the resolver, from a non-loopback source like libnice. */
static void test_coturn(void **state)
{
	struct env *e = *state;
	struct in_addr source;
	struct coturn t;

	coturn_start(&t);
	assert_int_equal(tls_relay_new(e->ctx, "127.0.0.1", t.tls_port, ca_pem, NULL, &e->relay),
			 0);
	assert_int_not_equal(tls_relay_port(e->relay), 0);
	binding_through(e, NULL);
	allocate_through(e);
	assert_int_equal(stats(e).verify_failures, 0);
	e->relay = tls_relay_free(e->relay);

	assert_int_equal(tls_relay_new(e->ctx, "localhost", t.tls_port, ca_pem, NULL, &e->relay),
			 0);
	binding_through(e, non_loopback_addr(&source) ? &source : NULL);
	assert_int_equal(stats(e).verify_failures, 0);
	coturn_stop(&t);
}

/* (2) Every raw byte the server's socket received is ciphertext: no magic cookie, no
 * username; and what came out of TLS is exactly the STUN message sent. */
static void test_nothing_readable(void **state)
{
	struct env *e = *state;
	struct fake_srv s;
	struct stun req;
	int fd;

	srv_start(&s, SRV_RECORD);
	srv_run(&s);
	assert_int_equal(tls_relay_new(e->ctx, "127.0.0.1", s.port, ca_pem, NULL, &e->relay), 0);
	stun_init(&req, STUN_BINDING_REQUEST);
	stun_add(&req, STUN_ATTR_USERNAME, TURN_USER, strlen(TURN_USER));
	fd = client_connect(tls_relay_port(e->relay), NULL);
	client_send(e->ctx, fd, req.b, req.len);
	close(fd); /* the relay delivers what it read, then closes with close_notify */
	srv_join(e->ctx, &s);

	assert_true(s.handshake_ok);
	assert_int_equal(s.plain->len, req.len);
	assert_memory_equal(s.plain->data, req.b, req.len);
	assert_true(s.raw->len > req.len);
	assert_false(contains(s.raw->data, s.raw->len, cookie_bytes, sizeof(cookie_bytes)));
	assert_false(contains(s.raw->data, s.raw->len, TURN_USER, strlen(TURN_USER)));
	assert_false(contains(s.raw->data, s.raw->len, req.b + 8, 12)); /* transaction id */
	assert_int_equal(stats(e).bytes_up, req.len);
	srv_free(&s);
}

/* (3) A certificate that does not verify: the local connection is closed, the server gets
 * a ClientHello and an alert and nothing of the STUN message. */
static void test_verify_failure(void **state)
{
	static const struct {
		const char *what, *host, *sni;
		bool other_ca;
	} cases[] = {
		{"CA not trusted", "127.0.0.1", NULL, true},
		{"name not in the certificate", "127.0.0.1", "turn.wrong.example", false},
		{"IP not in the certificate", "127.0.0.1", "127.0.0.2", false},
	};
	struct env *e = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *ca = cases[i].other_ca ? other_ca_pem : ca_pem;
		struct tls_relay_stats st;
		struct fake_srv s;
		struct stun req;
		int fd;

		print_message("case: %s\n", cases[i].what);
		srv_start(&s, SRV_RECORD);
		srv_run(&s);
		assert_int_equal(
			tls_relay_new(e->ctx, cases[i].host, s.port, ca, cases[i].sni, &e->relay),
			0);
		stun_init(&req, STUN_BINDING_REQUEST);
		stun_add(&req, STUN_ATTR_USERNAME, TURN_USER, strlen(TURN_USER));
		fd = client_connect(tls_relay_port(e->relay), NULL);
		client_send(e->ctx, fd, req.b, req.len);
		assert_closed_by_relay(e->ctx, fd);
		close(fd);
		srv_join(e->ctx, &s);

		assert_false(s.handshake_ok);
		assert_int_equal(s.plain->len, 0);
		assert_true(s.raw->len > 0); /* the ClientHello came */
		assert_false(contains(s.raw->data, s.raw->len, cookie_bytes, 4));
		assert_false(contains(s.raw->data, s.raw->len, TURN_USER, strlen(TURN_USER)));
		st = stats(e);
		assert_int_equal(st.verify_failures, 1);
		assert_int_equal(st.connections, 0);
		assert_int_equal(st.bytes_up, 0);
		e->relay = tls_relay_free(e->relay);
		srv_free(&s);
	}
}

/* (4a) A server that stops reading: the client is pushed back, the relay holds at most one
 * buffer, and freeing the relay closes the client's connection. */
static void test_stalled_server(void **state)
{
	struct env *e = *state;
	static uint8_t chunk[65536];
	struct tls_relay_stats st;
	struct fake_srv s;
	size_t total = 0;
	int fd;

	srv_start(&s, SRV_STALL);
	srv_run(&s);
	assert_int_equal(tls_relay_new(e->ctx, "127.0.0.1", s.port, ca_pem, NULL, &e->relay), 0);
	fd = client_connect(tls_relay_port(e->relay), NULL);
	memset(chunk, 0xa5, sizeof(chunk));
	for (;;) {
		ssize_t n = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);

		if (n > 0) {
			total += (size_t)n;
			assert_true(total < (256u << 20)); /* it must stop somewhere */
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		if (!wait_fd(e->ctx, fd, G_IO_OUT, QUIET_MS))
			break;
	}
	st = stats(e);
	print_message("client pushed back after %zu bytes; relay holds %zu\n", total, st.buffered);
	assert_int_equal(st.connections, 1);
	assert_true(st.buffered <= TLS_RELAY_BUF_MAX);
	assert_true(st.buffered > 0);
	assert_true(st.bytes_up < total);

	e->relay = tls_relay_free(e->relay);
	assert_closed_by_relay(e->ctx, fd);
	close(fd);
	srv_join(e->ctx, &s);
	srv_free(&s);
}

/* (4b) A local reader that does not read: the relay stops reading TLS once its buffer is
 * full, the server is pushed back, and later every byte arrives in order. */
static void test_slow_reader(void **state)
{
	struct env *e = *state;
	const size_t flood = 16u << 20;
	uint64_t before, now;
	unsigned int rounds = 0;
	struct fake_srv s;
	uint8_t *got;
	int fd, small = 65536;

	srv_start(&s, SRV_FLOOD);
	s.flood_len = flood;
	srv_run(&s);
	assert_int_equal(tls_relay_new(e->ctx, "127.0.0.1", s.port, ca_pem, NULL, &e->relay), 0);
	fd = client_connect(tls_relay_port(e->relay), NULL);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	now = 0;
	do {
		before = now;
		run_ms(e->ctx, QUIET_MS);
		now = __atomic_load_n(&s.sent, __ATOMIC_ACQUIRE);
		assert_true(++rounds < WAIT_MS / QUIET_MS);
	} while (now != before || now == 0);
	print_message("server pushed back after %llu bytes; relay holds %zu\n",
		      (unsigned long long)now, stats(e).buffered);
	assert_true(now < flood);
	assert_true(stats(e).buffered <= TLS_RELAY_BUF_MAX);

	got = g_malloc(flood + 1);
	assert_int_equal(client_recv(e->ctx, fd, got, flood + 1), flood);
	for (size_t i = 0; i < flood; i++)
		if (got[i] != flood_byte(i))
			fail_msg("byte %zu differs", i);
	g_free(got);
	assert_int_equal(stats(e).connections, 0); /* server closed, relay followed */
	close(fd);
	srv_join(e->ctx, &s);
	srv_free(&s);
}

/* Connection limit: one more than TLS_RELAY_CONN_MAX is closed at once; free closes all. */
static void test_conn_limit(void **state)
{
	struct env *e = *state;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fds[TLS_RELAY_CONN_MAX + 1], silent;

	/* A server that never accepts: every relay connection waits in its handshake. */
	silent = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(silent, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(silent, TLS_RELAY_CONN_MAX * 2), 0);
	assert_int_equal(getsockname(silent, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(
		tls_relay_new(e->ctx, "127.0.0.1", ntohs(sin.sin_port), ca_pem, NULL, &e->relay),
		0);
	/* One at a time, so the listening backlog never overflows. */
	for (unsigned int i = 0; i < TLS_RELAY_CONN_MAX; i++) {
		fds[i] = client_connect(tls_relay_port(e->relay), NULL);
		while (stats(e).accepted < i + 1)
			assert_true(g_main_context_iteration(e->ctx, TRUE));
	}
	fds[TLS_RELAY_CONN_MAX] = client_connect(tls_relay_port(e->relay), NULL);
	assert_closed_by_relay(e->ctx, fds[TLS_RELAY_CONN_MAX]);
	assert_int_equal(stats(e).refused, 1);
	assert_int_equal(stats(e).connections, TLS_RELAY_CONN_MAX);

	e->relay = tls_relay_free(e->relay);
	for (int i = 0; i < TLS_RELAY_CONN_MAX; i++) {
		assert_closed_by_relay(e->ctx, fds[i]);
		close(fds[i]);
	}
	close(fds[TLS_RELAY_CONN_MAX]);
	close(silent);
}

static void test_bad_arguments(void **state)
{
	struct env *e = *state;
	struct tls_relay *r = NULL;
	char missing[160];

	snprintf(missing, sizeof(missing), "%s/missing.pem", tmpdir);
	assert_int_equal(tls_relay_new(e->ctx, NULL, 443, NULL, NULL, &r), -EINVAL);
	assert_int_equal(tls_relay_new(e->ctx, "", 443, NULL, NULL, &r), -EINVAL);
	assert_int_equal(tls_relay_new(e->ctx, "h", 0, NULL, NULL, &r), -EINVAL);
	assert_int_equal(tls_relay_new(e->ctx, "h", 443, missing, NULL, &r), -ENOENT);
	assert_int_equal(tls_relay_new(e->ctx, "h", 443, srv_key, NULL, &r), -EIO);
	assert_null(r);
	assert_null(tls_relay_free(NULL));
}

/* ---- certificates ---- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int ret;

	va_start(ap, fmt);
	cmd = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	ret = system(cmd);
	g_free(cmd);
	return ret;
}

static int make_ca(const char *name)
{
	return sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		  "-keyout %s.key -out %s.pem -days 2 -subj /CN=%s >/dev/null 2>&1",
		  tmpdir, name, name, name);
}

static int group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/wice-tls-relay.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", tmpdir);
	snprintf(other_ca_pem, sizeof(other_ca_pem), "%s/other-ca.pem", tmpdir);
	snprintf(srv_pem, sizeof(srv_pem), "%s/server.pem", tmpdir);
	snprintf(srv_key, sizeof(srv_key), "%s/server.key", tmpdir);
	if (make_ca("ca") || make_ca("other-ca"))
		return -1;
	/* The server certificate names both ways the tests reach it. */
	return sh("cd %s && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' >ext.cnf && "
		  "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		  "-keyout server.key -out server.csr -subj /CN=localhost >/dev/null 2>&1 && "
		  "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		  "-days 2 -extfile ext.cnf -out server.pem >/dev/null 2>&1",
		  tmpdir);
}

static int group_teardown(void **state)
{
	return tmpdir[0] ? sh("rm -rf '%s'", tmpdir) : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_coturn, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_nothing_readable, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_verify_failure, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_stalled_server, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_slow_reader, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_conn_limit, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, env_setup, env_teardown),
	};

	if (getenv("WICE_TEST_ONLY"))
		cmocka_set_test_filter(getenv("WICE_TEST_ONLY"));
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
