// SPDX-License-Identifier: MIT
/*
 * Cookies under load (paper, section 5.4.7), between two in-process devices (harness.h): a
 * responder whose handshake queue is filling answers with cookie replies instead of queuing;
 * the initiator's next initiation carries mac2 made with that cookie and gets through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "harness.h"

static const uint8_t zero_mac[WG_COOKIE_LEN];

/* Has a initiate and returns the initiation it sent, without delivering it. */
static size_t take_initiation(struct h_pair *p, uint8_t *msg, struct wg_endpoint *src)
{
	ssize_t len;

	h_initiate(&p->a, &p->b);
	len = h_recv(&p->b, msg, H_MAX_DATAGRAM, src, 1000);
	assert_int_equal(len, sizeof(struct wg_message_handshake_initiation));
	assert_int_equal(h_type(msg, (size_t)len), WG_MSG_HANDSHAKE_INITIATION);
	return (size_t)len;
}

/* The next datagram waiting for h, which must be a cookie reply. */
static void take_cookie(struct hdev *h, struct wg_message_handshake_cookie *c,
			struct wg_endpoint *src)
{
	uint8_t buf[H_MAX_DATAGRAM];
	ssize_t len = h_recv(h, buf, sizeof(buf), src, 1000);

	assert_int_equal(len, sizeof(*c));
	assert_int_equal(h_type(buf, (size_t)len), WG_MSG_HANDSHAKE_COOKIE);
	memcpy(c, buf, sizeof(*c));
}

/* Fakes a busy responder: n handshakes waiting (zeroed slots the control thread skips). */
static void set_queued(struct hdev *h, unsigned int n)
{
	pthread_mutex_lock(&h->dev->hs_lock);
	h->dev->hs_head = 0;
	h->dev->hs_count = n;
	pthread_mutex_unlock(&h->dev->hs_lock);
}

static uint32_t sender_index(const uint8_t *msg)
{
	uint32_t i;

	memcpy(&i, msg + 4, sizeof(i));
	return le32toh(i);
}

/* A flood of (replayed) initiations: the first THRESHOLD queue, then cookies come back. */
static void test_flood_triggers_cookies(void **state)
{
	struct h_pair *p = *state;
	struct wg_message_handshake_cookie c;
	uint8_t init[H_MAX_DATAGRAM];
	struct wg_endpoint src, from;
	size_t len = take_initiation(p, init, &src);

	for (unsigned int i = 0; i < WG_UNDER_LOAD_THRESHOLD; i++)
		h_deliver(&p->b, init, len, &src);
	assert_int_equal(h_queued_handshakes(&p->b), WG_UNDER_LOAD_THRESHOLD);
	assert_int_equal(h_drain(&p->a), 0);

	for (int i = 0; i < 3; i++) {
		h_deliver(&p->b, init, len, &src);
		assert_int_equal(h_queued_handshakes(&p->b), WG_UNDER_LOAD_THRESHOLD);
		take_cookie(&p->a, &c, &from);
		assert_true(endpoint_equal(&from, &p->b.addr));
		assert_int_equal(le32toh(c.receiver_index), sender_index(init));
	}
	assert_int_equal(h_counter(&p->b.dev->dropped_invalid), 0);
	assert_int_equal(h_counter(&p->b.dev->dropped_handshake_queue), 0);

	/* The initiator takes the cookie for its next initiation. */
	assert_int_equal(h_peer(&p->a, &p->b)->cookie.cookie_birthdate_ns, 0);
	h_deliver(&p->a, &c, sizeof(c), &from);
	ctrl_run_once(p->a.dev);
	assert_int_not_equal(h_peer(&p->a, &p->b)->cookie.cookie_birthdate_ns, 0);
	assert_int_equal(h_counter(&p->a.dev->dropped_invalid), 0);
}

/* The queue is bounded: beyond WG_MAX_QUEUED_HANDSHAKES, even good messages are dropped. */
static void test_queue_full(void **state)
{
	struct h_pair *p = *state;
	struct wg_message_handshake_cookie c;
	uint8_t init[H_MAX_DATAGRAM];
	struct wg_endpoint src;
	size_t len = take_initiation(p, init, &src);

	/* Cookie replies bypass the load check; they are what fills the queue here. */
	memset(&c, 0, sizeof(c));
	c.header.type = htole32(WG_MSG_HANDSHAKE_COOKIE);
	set_queued(&p->b, WG_MAX_QUEUED_HANDSHAKES - 1);
	h_deliver(&p->b, &c, sizeof(c), &src);
	assert_int_equal(h_queued_handshakes(&p->b), WG_MAX_QUEUED_HANDSHAKES);
	h_deliver(&p->b, &c, sizeof(c), &src);
	assert_int_equal(h_counter(&p->b.dev->dropped_handshake_queue), 1);
	/* An initiation with a valid mac1 but no cookie gets a cookie, not a queue slot. */
	h_deliver(&p->b, init, len, &src);
	take_cookie(&p->a, &c, &src);
	assert_int_equal(h_queued_handshakes(&p->b), WG_MAX_QUEUED_HANDSHAKES);
}

static void test_cookie_round_trip_under_load(void **state)
{
	struct h_pair *p = *state;
	const struct wg_message_handshake_initiation *msg;
	struct wg_message_handshake_cookie c;
	uint8_t init[H_MAX_DATAGRAM], m[H_MAX_DATAGRAM];
	struct wg_endpoint src, from;
	size_t len;

	set_queued(&p->b, WG_UNDER_LOAD_THRESHOLD);
	len = take_initiation(p, init, &src);
	msg = (const void *)init;
	assert_memory_equal(msg->macs.mac2, zero_mac, WG_COOKIE_LEN);
	h_deliver(&p->b, init, len, &src);
	assert_int_equal(h_queued_handshakes(&p->b), WG_UNDER_LOAD_THRESHOLD);
	take_cookie(&p->a, &c, &from);
	h_deliver(&p->a, &c, sizeof(c), &from);
	ctrl_run_once(p->a.dev);
	assert_int_equal(h_counter(&p->a.dev->dropped_invalid), 0);

	/* The next initiation carries mac2. */
	len = take_initiation(p, init, &src);
	assert_memory_not_equal(msg->macs.mac2, zero_mac, WG_COOKIE_LEN);

	/* Any bit of mac2 wrong: another cookie, no queue slot. */
	for (size_t i = 0; i < WG_COOKIE_LEN * 8; i++) {
		memcpy(m, init, len);
		m[len - WG_COOKIE_LEN + i / 8] ^= (uint8_t)(1u << (i % 8));
		h_deliver(&p->b, m, len, &src);
		assert_int_equal(h_queued_handshakes(&p->b), WG_UNDER_LOAD_THRESHOLD);
		take_cookie(&p->a, &c, &from);
	}

	/* The real one is accepted while still under load... */
	h_deliver(&p->b, init, len, &src);
	assert_int_equal(h_queued_handshakes(&p->b), WG_UNDER_LOAD_THRESHOLD + 1);
	assert_int_equal(h_drain(&p->a), 0);

	/* ...and the handshake completes once the control thread gets to it. */
	h_pump(&p->a, &p->b);
	assert_non_null(h_peer(&p->a, &p->b)->keypairs.current);
	assert_non_null(h_peer(&p->b, &p->a)->keypairs.current);
	assert_int_equal(h_counter(&p->b.dev->dropped_invalid), 0);
	assert_int_equal(h_counter(&p->a.dev->dropped_invalid), 0);
}

/* A cookie proves the address: from anywhere else the same mac2 earns only a new cookie. */
static void test_cookie_bound_to_source(void **state)
{
	struct h_pair *p = *state;
	struct wg_message_handshake_cookie c;
	uint8_t init[H_MAX_DATAGRAM];
	struct wg_endpoint src, from, other;
	struct hdev spy;
	size_t len;

	assert_int_equal(h_dev_new(&spy, "wgtest-spy"), 0);
	set_queued(&p->b, WG_UNDER_LOAD_THRESHOLD);
	len = take_initiation(p, init, &src);
	h_deliver(&p->b, init, len, &src);
	take_cookie(&p->a, &c, &from);
	h_deliver(&p->a, &c, sizeof(c), &from);
	ctrl_run_once(p->a.dev);
	len = take_initiation(p, init, &src);

	other = spy.addr; /* same host, another port */
	h_deliver(&p->b, init, len, &other);
	assert_int_equal(h_queued_handshakes(&p->b), WG_UNDER_LOAD_THRESHOLD);
	take_cookie(&spy, &c, &from);
	assert_int_equal(h_drain(&p->a), 0);

	h_deliver(&p->b, init, len, &src);
	assert_int_equal(h_queued_handshakes(&p->b), WG_UNDER_LOAD_THRESHOLD + 1);
	h_dev_free(&spy);
}

/* A wrong mac1 is dropped and counted, with or without load, and never answered. */
static void test_mac1_wrong_dropped(void **state)
{
	struct h_pair *p = *state;
	uint8_t init[H_MAX_DATAGRAM], m[H_MAX_DATAGRAM];
	struct wg_endpoint src;
	size_t len = take_initiation(p, init, &src);
	size_t mac1 = len - sizeof(struct wg_message_macs);
	struct cookie_maker mk;
	uint64_t inv = 0;

	for (int load = 0; load < 2; load++) {
		set_queued(&p->b, load ? WG_UNDER_LOAD_THRESHOLD : 0);
		for (size_t i = 0; i < WG_COOKIE_LEN * 8; i++) {
			memcpy(m, init, len);
			m[mac1 + i / 8] ^= (uint8_t)(1u << (i % 8));
			h_deliver(&p->b, m, len, &src);
			assert_int_equal(h_counter(&p->b.dev->dropped_invalid), ++inv);
			assert_int_equal(h_queued_handshakes(&p->b),
					 load ? WG_UNDER_LOAD_THRESHOLD : 0);
		}
		/* A mac1 made for someone else's key is just as wrong. */
		memcpy(m, init, len);
		cookie_maker_init(&mk, p->a.pub);
		cookie_add_macs(&mk, m, len);
		h_deliver(&p->b, m, len, &src);
		assert_int_equal(h_counter(&p->b.dev->dropped_invalid), ++inv);
	}
	assert_int_equal(h_drain(&p->a), 0);
	set_queued(&p->b, 0);
}

/* Cookie replies that do not decrypt against our last mac1 change nothing. */
static void test_cookie_reply_tampered(void **state)
{
	struct h_pair *p = *state;
	struct wg_peer *pa = h_peer(&p->a, &p->b);
	struct wg_message_handshake_cookie c, m;
	uint8_t init[H_MAX_DATAGRAM];
	struct wg_endpoint src, from;
	size_t len;
	uint64_t inv = 0;

	set_queued(&p->b, WG_UNDER_LOAD_THRESHOLD);
	len = take_initiation(p, init, &src);
	h_deliver(&p->b, init, len, &src);
	take_cookie(&p->a, &c, &from);

	for (size_t i = 0; i < sizeof(c) * 8; i++) {
		m = c;
		((uint8_t *)&m)[i / 8] ^= (uint8_t)(1u << (i % 8));
		h_deliver(&p->a, &m, sizeof(m), &from);
		ctrl_run_once(p->a.dev);
		/* Dropped on receipt (type), or by the control thread (index, nonce, box). */
		if (h_counter(&p->a.dev->dropped_invalid) != ++inv)
			fail_msg("cookie bit %zu flipped: not dropped", i);
		assert_int_equal(pa->cookie.cookie_birthdate_ns, 0);
	}

	/* The real one works once; a replay of it is refused. */
	h_deliver(&p->a, &c, sizeof(c), &from);
	ctrl_run_once(p->a.dev);
	assert_int_equal(h_counter(&p->a.dev->dropped_invalid), inv);
	assert_int_not_equal(pa->cookie.cookie_birthdate_ns, 0);
	h_deliver(&p->a, &c, sizeof(c), &from);
	ctrl_run_once(p->a.dev);
	assert_int_equal(h_counter(&p->a.dev->dropped_invalid), inv + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flood_triggers_cookies, h_pair_setup,
						h_teardown),
		cmocka_unit_test_setup_teardown(test_queue_full, h_pair_setup, h_teardown),
		cmocka_unit_test_setup_teardown(test_cookie_round_trip_under_load, h_pair_setup,
						h_teardown),
		cmocka_unit_test_setup_teardown(test_cookie_bound_to_source, h_pair_setup,
						h_teardown),
		cmocka_unit_test_setup_teardown(test_mac1_wrong_dropped, h_pair_setup, h_teardown),
		cmocka_unit_test_setup_teardown(test_cookie_reply_tampered, h_pair_setup,
						h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
