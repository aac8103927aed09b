// SPDX-License-Identifier: MIT
/*
 * proxy: the daemon's userspace path between WireGuard and ICE, on real loopback sockets. A UDP
 * socket plays WireGuard; the test iterates the GMainContext by hand, so it sees exactly what
 * leaves the proxy before and after a main-loop pass: WireGuard's bursts reach the callback in
 * batches (and a stranger's datagrams not at all); datagrams for WireGuard wait for the loop,
 * or go at once when the queue is full by count or by bytes; nothing is reordered or altered.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include "daemon/proxy.h"

#define WAIT_ITERATIONS 1000 /* main-loop passes before giving up on a datagram */

struct got {
	size_t n;	/* datagrams */
	size_t batches; /* callback calls */
	size_t max_batch;
	uint8_t last[256]; /* first bytes of each datagram, in order */
	size_t lens[256];
};

struct fixture {
	GMainContext *ctx;
	struct proxy *p;
	int wg;	      /* plays WireGuard */
	int stranger; /* another local process */
	struct got got;
};

static void on_batch(void *data, const struct iovec *d, size_t n)
{
	struct got *g = data;

	assert_true(n >= 1 && n <= PROXY_BURST);
	g->batches++;
	if (n > g->max_batch)
		g->max_batch = n;
	for (size_t i = 0; i < n; i++) {
		assert_true(g->n < sizeof(g->last));
		g->last[g->n] = ((const uint8_t *)d[i].iov_base)[0];
		g->lens[g->n] = d[i].iov_len;
		g->n++;
	}
}

static int udp_bound(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int big = 8 << 20;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	/* Room for every datagram a test sends before it reads (root lifts rmem_max). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	return fd;
}

static uint16_t port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	return ntohs(a.sin_port);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ctx = g_main_context_new();
	assert_int_equal(proxy_new(f->ctx, on_batch, &f->got, &f->p), 0);
	f->wg = udp_bound();
	f->stranger = udp_bound();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	proxy_free(f->p);
	close(f->wg);
	close(f->stranger);
	g_main_context_unref(f->ctx);
	free(f);
	return 0;
}

static void send_from(int fd, const struct proxy *p, uint8_t tag, size_t len)
{
	uint8_t buf[2048];

	memset(buf, tag, len);
	assert_int_equal(sendto(fd, buf, len, 0, (const struct sockaddr *)proxy_endpoint(p),
				sizeof(struct sockaddr_in)),
			 (ssize_t)len);
}

/* How many datagrams the WireGuard socket holds now; checks each is tag i, length len(i). */
static size_t drain_wg(int fd, size_t first, size_t (*len_of)(size_t))
{
	static uint8_t buf[PROXY_MAX_DATAGRAM];
	size_t n = 0;
	ssize_t r;

	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
		assert_int_equal((size_t)r, len_of(first + n));
		assert_int_equal(buf[0], (uint8_t)(first + n));
		assert_int_equal(buf[r - 1], (uint8_t)(first + n));
		n++;
	}
	assert_int_equal(errno, EAGAIN);
	return n;
}

static size_t len_small(size_t i)
{
	return 100 + i % 1300;
}

static void queue_small(struct proxy *p, size_t first, size_t n)
{
	uint8_t buf[1500];

	for (size_t i = first; i < first + n; i++) {
		memset(buf, (uint8_t)i, len_small(i));
		assert_int_equal(proxy_to_wg(p, buf, len_small(i)), 0);
	}
}

/* A burst from WireGuard reaches the callback in PROXY_BURST-sized batches, in order. */
static void test_wg_burst_batched(void **state)
{
	struct fixture *f = *state;
	const size_t n = 2 * PROXY_BURST + 5;

	proxy_set_wg_port(f->p, port_of(f->wg));
	for (size_t i = 0; i < n; i++) {
		send_from(f->wg, f->p, (uint8_t)i, len_small(i));
		/* Past the first two bursts, so that those are full. */
		if (i >= 2 * PROXY_BURST)
			send_from(f->stranger, f->p, 0xee, 64);
	}
	for (int i = 0; i < WAIT_ITERATIONS && f->got.n < n; i++)
		g_main_context_iteration(f->ctx, FALSE);
	assert_int_equal(f->got.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(f->got.last[i], (uint8_t)i);
		assert_int_equal(f->got.lens[i], len_small(i));
	}
	/* Everything was queued in the socket before the first read: full bursts. */
	assert_int_equal(f->got.max_batch, PROXY_BURST);
	assert_true(f->got.batches <= 4);
}

/* Before WireGuard's port is known, nothing is accepted, from anyone. */
static void test_wg_port_unknown(void **state)
{
	struct fixture *f = *state;
	uint8_t b = 1;

	send_from(f->wg, f->p, 1, 10);
	for (int i = 0; i < 10; i++)
		g_main_context_iteration(f->ctx, FALSE);
	assert_int_equal(f->got.n, 0);
	assert_int_equal(proxy_to_wg(f->p, &b, 1), -ENOTCONN);
}

/* Datagrams for WireGuard wait for the main loop, then leave in one pass, in order. */
static void test_to_wg_flushed_by_loop(void **state)
{
	struct fixture *f = *state;
	uint64_t to_peer, from_peer, want = 0;

	proxy_set_wg_port(f->p, port_of(f->wg));
	queue_small(f->p, 0, 10);
	assert_int_equal(drain_wg(f->wg, 0, len_small), 0);
	g_main_context_iteration(f->ctx, FALSE);
	assert_int_equal(drain_wg(f->wg, 0, len_small), 10);
	for (size_t i = 0; i < 10; i++)
		want += len_small(i);
	proxy_counters(f->p, &to_peer, &from_peer);
	assert_int_equal(from_peer, want);
	assert_int_equal(to_peer, 0);
	/* Nothing queued: the flush source is not ready, the loop does not spin on it. */
	assert_false(g_main_context_iteration(f->ctx, FALSE));
}

/* A full queue (by count) is sent at once, without waiting for the loop. */
static void test_to_wg_full_by_count(void **state)
{
	struct fixture *f = *state;

	proxy_set_wg_port(f->p, port_of(f->wg));
	queue_small(f->p, 0, PROXY_QUEUE_MAX + 3);
	assert_int_equal(drain_wg(f->wg, 0, len_small), PROXY_QUEUE_MAX);
	g_main_context_iteration(f->ctx, FALSE);
	assert_int_equal(drain_wg(f->wg, PROXY_QUEUE_MAX, len_small), 3);
}

static size_t len_big(size_t i)
{
	return 60000;
}

/* Big datagrams fill the queue's bytes before its count: the ones that fit go first. */
static void test_to_wg_full_by_bytes(void **state)
{
	struct fixture *f = *state;
	const size_t fit = PROXY_QUEUE_BYTES / 60000;
	static uint8_t buf[60000];
	uint64_t to_peer, from_peer;

	proxy_set_wg_port(f->p, port_of(f->wg));
	for (size_t i = 0; i <= fit; i++) {
		memset(buf, (uint8_t)i, sizeof(buf));
		assert_int_equal(proxy_to_wg(f->p, buf, sizeof(buf)), 0);
	}
	proxy_counters(f->p, &to_peer, &from_peer);
	assert_int_equal(from_peer, fit * 60000);
	assert_int_equal(drain_wg(f->wg, 0, len_big), fit);
	g_main_context_iteration(f->ctx, FALSE);
	assert_int_equal(drain_wg(f->wg, fit, len_big), 1);
}

static void test_to_wg_too_big(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[PROXY_MAX_DATAGRAM + 1];

	proxy_set_wg_port(f->p, port_of(f->wg));
	assert_int_equal(proxy_to_wg(f->p, buf, sizeof(buf)), -EMSGSIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_wg_burst_batched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wg_port_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_to_wg_flushed_by_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_to_wg_full_by_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_to_wg_full_by_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_to_wg_too_big, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
