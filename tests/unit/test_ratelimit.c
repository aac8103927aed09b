// SPDX-License-Identifier: MIT
/*
 * The per-source handshake rate limit (ratelimit.h): the table alone with the clock moved by
 * hand (burst, refill rate, what counts as one source, the bound, expiry), then two devices
 * (harness.h) where one source floods initiations with valid cookies under load.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>
#include <cmocka.h>
#include "harness.h"
#include "wg/ratelimit.h"
#include "wg/timers.h"

#define MS	 1000000ULL
#define SEC	 NSEC_PER_SEC
#define T0	 (1000 * SEC) /* any start: nothing may assume the clock starts at 0 */
#define RATE	 WG_RATELIMIT_PACKETS_PER_SECOND
#define BURST	 WG_RATELIMIT_BURST
#define COST	 (SEC / RATE)
#define IDLE	 ((uint64_t)WG_RATELIMIT_IDLE_EXPIRY * SEC)
#define MAX_SRCS WG_RATELIMIT_MAX_SOURCES

/* An address with any port ("192.0.2.1", "2001:db8::1"). */
static struct wg_endpoint ep(const char *ip, uint16_t port)
{
	struct wg_endpoint e;

	memset(&e, 0, sizeof(e));
	if (strchr(ip, ':')) {
		e.in6.sin6_family = AF_INET6;
		e.in6.sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, ip, &e.in6.sin6_addr), 1);
	} else {
		e.in4.sin_family = AF_INET;
		e.in4.sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, ip, &e.in4.sin_addr), 1);
	}
	return e;
}

/* How many of n packets from e at time now get a token. */
static unsigned int offer(struct ratelimit *rl, const struct wg_endpoint *e, uint64_t now,
			  unsigned int n)
{
	unsigned int ok = 0;

	while (n--)
		ok += ratelimit_allow(rl, &e->sa, now);
	return ok;
}

static int rl_setup(void **state)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	assert_non_null(rl);
	assert_int_equal(ratelimit_init(rl), 0);
	*state = rl;
	return 0;
}

static int rl_teardown(void **state)
{
	ratelimit_free(*state);
	free(*state);
	return 0;
}

/* A new source may send BURST at once, not one more, whatever its family. */
static void test_burst_then_refused(void **state)
{
	struct ratelimit *rl = *state;
	const char *ips[] = {"192.0.2.1", "2001:db8::1", "::ffff:198.51.100.7", "10.255.255.255"};

	for (size_t i = 0; i < ARRAY_SIZE(ips); i++) {
		struct wg_endpoint e = ep(ips[i], 51820);

		for (unsigned int k = 0; k < BURST; k++)
			if (!ratelimit_allow(rl, &e.sa, T0))
				fail_msg("%s: packet %u of the burst refused", ips[i], k);
		assert_int_equal(offer(rl, &e, T0, 100), 0);
		/* Just short of one packet's time: still nothing. */
		assert_int_equal(offer(rl, &e, T0 + COST - 1, 10), 0);
		assert_int_equal(ratelimit_count(rl), i + 1);
	}
}

/* After the burst, one token per 1/RATE s, never more than BURST saved up. */
static void test_refill(void **state)
{
	struct ratelimit *rl = *state;
	struct wg_endpoint e = ep("192.0.2.1", 1);
	static const struct {
		uint64_t after;	 /* since the previous step */
		unsigned int ok; /* of 100 offered at once */
	} steps[] = {
		{0, BURST},
		{COST / 2, 0},
		{COST / 2, 1}, /* a whole COST since the burst */
		{COST - 1, 0},
		{1, 1},
		{3 * COST, 3},
		{BURST * COST / 2, BURST / 2},
		{IDLE * 4 / 5, BURST}, /* idle 0.8 s: a full bucket, not 16 tokens */
		{IDLE + 1, BURST},     /* forgotten meanwhile: a new, full bucket */
	};
	uint64_t now = T0;

	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		now += steps[i].after;
		if (offer(rl, &e, now, 100) != steps[i].ok)
			fail_msg("step %zu: expected %u tokens", i, steps[i].ok);
	}
}

/* Offered at various rates for 10 s: what gets through is min(offered, BURST + RATE * t). */
static void test_rate_over_time(void **state)
{
	struct ratelimit *rl = *state;
	static const struct {
		uint64_t interval; /* between packets */
		unsigned int expect;
	} rates[] = {
		{SEC / 10, 101},		/* 10/s: every one (t = 0 .. 10 s inclusive) */
		{SEC / RATE, 201},		/* exactly the rate: every one */
		{SEC / 100, BURST + 10 * RATE}, /* 100/s */
		{MS, BURST + 10 * RATE},	/* 1000/s */
		{MS / 10, BURST + 10 * RATE},	/* 10000/s */
	};
	char ip[32];

	for (size_t i = 0; i < ARRAY_SIZE(rates); i++) {
		struct wg_endpoint e;
		unsigned int ok = 0;

		snprintf(ip, sizeof(ip), "198.51.100.%zu", i + 1);
		e = ep(ip, 1);
		/* Each rate after the one before: the clock only moves forward. */
		for (uint64_t t = 0; t <= 10 * SEC; t += rates[i].interval)
			ok += ratelimit_allow(rl, &e.sa, T0 + i * 20 * SEC + t);
		if (ok != rates[i].expect)
			fail_msg("one per %llu ns: %u through, expected %u",
				 (unsigned long long)rates[i].interval, ok, rates[i].expect);
	}
}

/* What one bucket covers: an IPv4 address, an IPv6 /64; the port never matters. */
static void test_what_is_one_source(void **state)
{
	struct ratelimit *rl = *state;
	static const struct {
		const char *a, *b;
		bool shared;
	} pairs[] = {
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"192.0.2.1", "192.0.3.1", false},
		{"2001:db8:1:2::1", "2001:db8:1:2::2", true},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"2001:db8:1:2::1", "2001:db9:1:2::1", false},
		{"192.0.2.1", "::ffff:192.0.2.1", true},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.2", false},
		/* The same first bytes in another family are another source. */
		{"1.2.3.4", "102:304::", false},
		{"0.0.0.0", "::", false},
	};

	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		struct wg_endpoint a = ep(pairs[i].a, 1000), b = ep(pairs[i].b, 2000);
		uint64_t now = T0 + i * 10 * SEC; /* each pair with every earlier bucket full */

		ratelimit_expire(rl, now);
		assert_int_equal(ratelimit_count(rl), 0);
		assert_int_equal(offer(rl, &a, now, BURST), BURST);
		if (offer(rl, &b, now, BURST) != (pairs[i].shared ? 0 : BURST))
			fail_msg("%s and %s should %sshare a bucket", pairs[i].a, pairs[i].b,
				 pairs[i].shared ? "" : "not ");
		assert_int_equal(ratelimit_count(rl), pairs[i].shared ? 1 : 2);
	}
}

/* The i-th of many sources: IPv4 10.x.y.z, or IPv6 2001:db8:x:y::1 (one per /64). */
static struct wg_endpoint nth_source(int family, unsigned int i)
{
	char ip[64];

	if (family == AF_INET)
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16 & 255, i >> 8 & 255, i & 255);
	else
		snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 16, i & 0xffff);
	return ep(ip, 51820);
}

/* A party with many addresses fills the table; then new ones are refused, known ones served. */
static void test_table_full(void **state)
{
	struct ratelimit *rl = *state;
	const int families[] = {AF_INET, AF_INET6};

	for (size_t f = 0; f < ARRAY_SIZE(families); f++) {
		uint64_t t = T0 + f * 10 * SEC;
		struct wg_endpoint first = nth_source(families[f], 0);
		struct wg_endpoint extra = nth_source(families[f], MAX_SRCS);

		ratelimit_expire(rl, t);
		assert_int_equal(ratelimit_count(rl), 0);
		for (unsigned int i = 0; i < MAX_SRCS; i++) {
			struct wg_endpoint e = nth_source(families[f], i);

			if (!ratelimit_allow(rl, &e.sa, t))
				fail_msg("source %u refused before the table is full", i);
		}
		assert_int_equal(ratelimit_count(rl), MAX_SRCS);
		assert_int_equal(offer(rl, &extra, t, 3), 0);
		/* Known sources keep their buckets (a new one would allow BURST). */
		assert_int_equal(offer(rl, &first, t + COST / 2, 100), BURST - 1);
		assert_int_equal(offer(rl, &extra, t + IDLE, 3), 0); /* nobody idle long enough */
		assert_int_equal(ratelimit_count(rl), MAX_SRCS);
		/* Once the others have been idle past the expiry, a new source gets in. */
		assert_int_equal(offer(rl, &extra, t + IDLE + 1, 1), 1);
		assert_int_equal(ratelimit_count(rl), 2); /* first (touched later) and extra */
	}
}

/* Sources are forgotten after IDLE without a packet (refused ones count as packets). */
static void test_expiry(void **state)
{
	struct ratelimit *rl = *state;
	struct wg_endpoint flood = ep("203.0.113.9", 1);
	char ip[32];

	for (unsigned int i = 0; i < 100; i++) {
		struct wg_endpoint e;

		snprintf(ip, sizeof(ip), "192.0.2.%u", i);
		e = ep(ip, 1);
		assert_true(ratelimit_allow(rl, &e.sa, T0 + (i < 50 ? 0 : IDLE / 2)));
	}
	/* One source keeps sending, refused most of the time, for 3 s. */
	for (uint64_t t = 0; t <= 3 * SEC; t += MS)
		ratelimit_allow(rl, &flood.sa, T0 + t);
	assert_int_equal(ratelimit_count(rl), 1); /* the other 100 went on the way */

	for (unsigned int i = 0; i < 50; i++) {
		struct wg_endpoint e;

		snprintf(ip, sizeof(ip), "192.0.2.%u", i);
		e = ep(ip, 1);
		assert_true(ratelimit_allow(rl, &e.sa, T0 + 3 * SEC));
	}
	ratelimit_expire(rl, T0 + 3 * SEC + IDLE);
	assert_int_equal(ratelimit_count(rl), 51); /* idle exactly IDLE: kept */
	ratelimit_expire(rl, T0 + 3 * SEC + IDLE + 1);
	assert_int_equal(ratelimit_count(rl), 0);
	/* Back after expiry: a new, full bucket, as it would have refilled anyway. */
	assert_int_equal(offer(rl, &flood, T0 + 5 * SEC, 100), BURST);
	ratelimit_expire(rl, T0 + 7 * SEC);
	assert_int_equal(ratelimit_count(rl), 0);
}

/* Anything but IPv4 or IPv6 is refused, and a table that failed to initialise refuses all. */
static void test_refused_outright(void **state)
{
	struct ratelimit *rl = *state, zero;
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct wg_endpoint e = ep("192.0.2.1", 1);

	assert_false(ratelimit_allow(rl, (struct sockaddr *)&un, T0));
	assert_int_equal(ratelimit_count(rl), 0);
	memset(&zero, 0, sizeof(zero));
	assert_false(ratelimit_allow(&zero, &e.sa, T0));
	ratelimit_free(&zero);
}

/* ---- In the receive path (harness.h) ---- */

static void set_queued(struct hdev *h, unsigned int n)
{
	pthread_mutex_lock(&h->dev->hs_lock);
	h->dev->hs_head = 0;
	h->dev->hs_count = n;
	pthread_mutex_unlock(&h->dev->hs_lock);
}

/* Has a initiate to b and returns the initiation, not delivered. */
static size_t take_initiation(struct h_pair *p, uint8_t *msg)
{
	struct wg_endpoint src;
	ssize_t len;

	h_initiate(&p->a, &p->b);
	len = h_recv(&p->b, msg, H_MAX_DATAGRAM, &src, 1000);
	assert_int_equal(len, sizeof(struct wg_message_handshake_initiation));
	return (size_t)len;
}

/*
 * An initiation from a whose mac2 is valid when it comes from `from`: b, under load, answers
 * one from there with a cookie (sent to `from`; any 127/8 address reaches a's socket), which a
 * takes for its next initiation.
 */
static size_t initiation_with_cookie(struct h_pair *p, const struct wg_endpoint *from, uint8_t *msg)
{
	struct wg_message_handshake_cookie c;
	struct wg_endpoint cfrom;
	uint8_t buf[H_MAX_DATAGRAM];
	size_t len = take_initiation(p, msg);
	ssize_t n;

	h_deliver(&p->b, msg, len, from);
	n = h_recv(&p->a, buf, sizeof(buf), &cfrom, 1000);
	assert_int_equal(n, sizeof(c));
	assert_int_equal(h_type(buf, (size_t)n), WG_MSG_HANDSHAKE_COOKIE);
	memcpy(&c, buf, sizeof(c));
	h_deliver(&p->a, &c, sizeof(c), &cfrom);
	ctrl_run_once(p->a.dev);
	assert_int_equal(h_counter(&p->a.dev->dropped_invalid), 0);
	return take_initiation(p, msg);
}

#define FLOOD_NS (400 * MS)

/*
 * Under load, one source replays an initiation with a valid cookie as fast as it can: at most
 * BURST + RATE * t of them reach the handshake queue, the rest are counted; a second source
 * meanwhile gets every one of its (few) initiations through.
 */
static void test_flood_from_one_source(void **state)
{
	struct h_pair *p = *state;
	struct wg_device *b = p->b.dev;
	uint8_t init_x[H_MAX_DATAGRAM], init_y[H_MAX_DATAGRAM];
	struct wg_endpoint x = p->a.addr, y = p->a.addr;
	uint64_t start, elapsed, sent = 0, bound;
	unsigned int through, y_sent = 0;
	size_t len_x, len_y;

	inet_pton(AF_INET, "127.0.0.2", &y.in4.sin_addr);
	set_queued(&p->b, WG_UNDER_LOAD_THRESHOLD);
	len_x = initiation_with_cookie(p, &x, init_x);
	len_y = initiation_with_cookie(p, &y, init_y);
	assert_int_equal(h_queued_handshakes(&p->b), WG_UNDER_LOAD_THRESHOLD);

	start = now_ns();
	do {
		h_deliver(&p->b, init_x, len_x, &x);
		sent++;
		/* y: one initiation every ~100 ms, within its own burst. */
		if (y_sent < 4 && now_ns() - start >= y_sent * 100 * MS) {
			unsigned int before = h_queued_handshakes(&p->b);

			h_deliver(&p->b, init_y, len_y, &y);
			assert_int_equal(h_queued_handshakes(&p->b), before + 1);
			y_sent++;
		}
		elapsed = now_ns() - start;
	} while (elapsed < FLOOD_NS || y_sent < 4);

	through = h_queued_handshakes(&p->b) - WG_UNDER_LOAD_THRESHOLD - y_sent;
	bound = BURST + elapsed / COST;
	print_message("flood: %llu sent in %llu ms, %u through (bound %llu)\n",
		      (unsigned long long)sent, (unsigned long long)(elapsed / MS), through,
		      (unsigned long long)bound);
	assert_true(through >= BURST);
	assert_true(through <= bound);
	assert_true(sent > 10 * bound); /* it was a flood: the limit did the dropping */
	assert_int_equal(h_counter(&b->dropped_handshake_ratelimit), sent - through);
	assert_int_equal(h_counter(&b->dropped_invalid), 0);
	assert_int_equal(h_counter(&b->dropped_handshake_queue), 0);
	assert_int_equal(ratelimit_count(&b->handshake_limit), 2);
	assert_int_equal(h_drain(&p->a), 0); /* valid cookies: no cookie replies */
	set_queued(&p->b, 0);
}

/* Not under load nothing is limited (as in the kernel), and no source is even tracked. */
static void test_no_limit_without_load(void **state)
{
	struct h_pair *p = *state;
	struct wg_device *b = p->b.dev;
	uint8_t init[H_MAX_DATAGRAM];
	size_t len = take_initiation(p, init);
	const unsigned int n = WG_UNDER_LOAD_THRESHOLD / 4;

	for (unsigned int i = 0; i < n; i++)
		h_deliver(&p->b, init, len, &p->a.addr);
	assert_int_equal(h_queued_handshakes(&p->b), n);
	assert_int_equal(h_counter(&b->dropped_handshake_ratelimit), 0);
	assert_int_equal(ratelimit_count(&b->handshake_limit), 0);
	set_queued(&p->b, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_burst_then_refused, rl_setup, rl_teardown),
		cmocka_unit_test_setup_teardown(test_refill, rl_setup, rl_teardown),
		cmocka_unit_test_setup_teardown(test_rate_over_time, rl_setup, rl_teardown),
		cmocka_unit_test_setup_teardown(test_what_is_one_source, rl_setup, rl_teardown),
		cmocka_unit_test_setup_teardown(test_table_full, rl_setup, rl_teardown),
		cmocka_unit_test_setup_teardown(test_expiry, rl_setup, rl_teardown),
		cmocka_unit_test_setup_teardown(test_refused_outright, rl_setup, rl_teardown),
		cmocka_unit_test_setup_teardown(test_flood_from_one_source, h_pair_setup,
						h_teardown),
		cmocka_unit_test_setup_teardown(test_no_limit_without_load, h_pair_setup,
						h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
