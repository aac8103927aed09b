// SPDX-License-Identifier: MIT
/*
 * The handshake and the data path between two in-process devices (see harness.h): sessions
 * form and confirm, and every kind of bad or replayed message is dropped, counted, and leaves
 * the sessions as they were.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>
#include "harness.h"

/* Hook: drop datagrams of one type (ctx points at it), deliver the rest. */
static bool drop_type(struct h_datagram *d, void *ctx)
{
	return h_type(d->msg, d->len) != *(uint32_t *)ctx;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void assert_sessions_match(struct hdev *a, struct hdev *b)
{
	struct noise_keypair *ka = h_peer(a, b)->keypairs.current;
	struct noise_keypair *kb = h_peer(b, a)->keypairs.current;

	assert_non_null(ka);
	assert_non_null(kb);
	assert_true(ka->i_am_initiator != kb->i_am_initiator);
	assert_memory_equal(ka->send_key, kb->recv_key, WG_KEY_LEN);
	assert_memory_equal(ka->recv_key, kb->send_key, WG_KEY_LEN);
	assert_int_equal(ka->remote_index, kb->entry.index);
	assert_int_equal(kb->remote_index, ka->entry.index);
}

static void test_handshake_completes(void **state)
{
	struct h_pair *p = *state;
	struct wg_peer *pa = h_peer(&p->a, &p->b), *pb = h_peer(&p->b, &p->a);

	assert_null(pa->keypairs.current);
	assert_int_equal(atomic_load(&pa->last_handshake_ns), 0);
	/* As the data path asks for one when a packet finds no session. */
	h_request_handshake(&p->a, &p->b);
	h_pump(&p->a, &p->b);

	/* Initiation, response, and the initiator's keepalive that confirms the session. */
	assert_int_equal(h_log_count(&p->b, WG_MSG_HANDSHAKE_INITIATION), 1);
	assert_int_equal(h_log_count(&p->a, WG_MSG_HANDSHAKE_RESPONSE), 1);
	assert_int_equal(h_log_count(&p->b, WG_MSG_DATA), 1);
	assert_int_equal(h_log_find(&p->b, WG_MSG_DATA, 0)->len, WG_DATA_MIN_LEN);
	assert_int_equal(h_log_count(&p->a, WG_MSG_DATA), 0);

	assert_sessions_match(&p->a, &p->b);
	assert_true(pa->keypairs.current->i_am_initiator);
	assert_null(pa->keypairs.next);
	assert_null(pb->keypairs.next);
	assert_null(pa->keypairs.previous);
	assert_null(pb->keypairs.previous);
	assert_int_equal(pa->handshake.state, HANDSHAKE_ZEROED);
	assert_int_equal(pb->handshake.state, HANDSHAKE_ZEROED);
	assert_int_not_equal(atomic_load(&pa->last_handshake_ns), 0);
	assert_int_not_equal(atomic_load(&pb->last_handshake_ns), 0);

	assert_int_equal(atomic_load(&pa->tx_bytes),
			 sizeof(struct wg_message_handshake_initiation) + WG_DATA_MIN_LEN);
	assert_int_equal(atomic_load(&pb->tx_bytes), sizeof(struct wg_message_handshake_response));
	for (int i = 0; i < 2; i++) {
		struct wg_device *d = i ? p->b.dev : p->a.dev;

		assert_int_equal(h_counter(&d->dropped_invalid), 0);
		assert_int_equal(h_counter(&d->dropped_replay), 0);
		assert_int_equal(h_counter(&d->dropped_handshake_queue), 0);
	}
	/* The endpoints are where the datagrams really came from. */
	assert_true(endpoint_equal(&pb->endpoint, &p->a.addr));
	assert_true(endpoint_equal(&pa->endpoint, &p->b.addr));
}

/* Until the initiator's first data message arrives, the responder's keypair waits as "next". */
static void test_responder_waits_for_confirmation(void **state)
{
	struct h_pair *p = *state;
	struct wg_peer *pb = h_peer(&p->b, &p->a);
	uint32_t data = WG_MSG_DATA;
	struct h_datagram *ka;
	struct noise_keypair *next;
	uint64_t rx;

	h_hook = drop_type;
	h_hook_ctx = &data;
	h_handshake(&p->a, &p->b);
	h_hook = NULL;

	assert_non_null(h_peer(&p->a, &p->b)->keypairs.current);
	next = pb->keypairs.next;
	assert_non_null(next);
	assert_null(pb->keypairs.current);
	assert_int_equal(atomic_load(&pb->last_handshake_ns), 0);

	ka = h_log_find(&p->b, WG_MSG_DATA, 0);
	assert_non_null(ka);
	rx = atomic_load(&pb->rx_bytes);
	h_deliver(&p->b, ka->msg, ka->len, &ka->src);
	assert_int_equal(atomic_load(&pb->rx_bytes), rx + WG_DATA_MIN_LEN);
	h_pump(&p->a, &p->b);
	assert_ptr_equal(pb->keypairs.current, next);
	assert_null(pb->keypairs.next);
	assert_int_not_equal(atomic_load(&pb->last_handshake_ns), 0);
	assert_sessions_match(&p->a, &p->b);
}

/*
 * wg(8) shows handshake messages in the transfer counters: the kernel and wireguard-go count
 * every authenticated datagram received, so an initiator shows "92 B received, 180 B sent"
 * after a handshake with no traffic. Here the receive side counts data messages only.
 */
static void test_handshake_bytes_counted_both_ways(void **state)
{
	struct h_pair *p = *state;

	h_handshake(&p->a, &p->b);
	assert_int_equal(atomic_load(&h_peer(&p->a, &p->b)->tx_bytes), 148 + 32);
	assert_int_equal(atomic_load(&h_peer(&p->b, &p->a)->rx_bytes), 148 + 32);
	assert_int_equal(atomic_load(&h_peer(&p->b, &p->a)->tx_bytes), 92);
	assert_int_equal(atomic_load(&h_peer(&p->a, &p->b)->rx_bytes), 92);
}

static void test_data_both_ways(void **state)
{
	struct h_pair *p = *state;
	struct wg_peer *pa = h_peer(&p->a, &p->b), *pb = h_peer(&p->b, &p->a);
	uint8_t pkt[64];
	uint64_t rx_a, rx_b, inv_b;
	size_t len;

	h_handshake(&p->a, &p->b);
	rx_a = atomic_load(&pa->rx_bytes);
	rx_b = atomic_load(&pb->rx_bytes);
	inv_b = h_counter(&p->b.dev->dropped_invalid);

	len = h_ipv4_packet(pkt, "10.0.0.1", "10.0.0.2");
	h_send_packet(&p->a, &p->b, pkt, len);
	h_pump(&p->a, &p->b);
	/* 36 bytes pad to 48, plus header and tag. */
	assert_int_equal(atomic_load(&pb->rx_bytes), rx_b + 48 + WG_DATA_OVERHEAD);

	len = h_ipv4_packet(pkt, "10.0.0.2", "10.0.0.1");
	h_send_packet(&p->b, &p->a, pkt, len);
	h_pump(&p->a, &p->b);
	assert_int_equal(atomic_load(&pa->rx_bytes), rx_a + 48 + WG_DATA_OVERHEAD);
	assert_int_equal(h_counter(&p->b.dev->dropped_invalid), inv_b);

	/* Cryptokey routing: an authentic packet whose inner source is not the peer's. */
	len = h_ipv4_packet(pkt, "10.0.0.99", "10.0.0.2");
	h_send_packet(&p->a, &p->b, pkt, len);
	h_pump(&p->a, &p->b);
	assert_int_equal(h_counter(&p->b.dev->dropped_invalid), inv_b + 1);
	assert_int_equal(h_counter(&p->a.dev->dropped_invalid), 0);
}

static void test_replayed_initiation_rejected(void **state)
{
	struct h_pair *p = *state;
	struct wg_peer *pb = h_peer(&p->b, &p->a);
	struct noise_keypair *cur;
	struct h_datagram init;
	uint64_t id, inv, last;
	uint32_t index;

	h_handshake(&p->a, &p->b);
	init = *h_log_find(&p->b, WG_MSG_HANDSHAKE_INITIATION, 0);
	cur = pb->keypairs.current;
	id = cur->id;
	index = cur->entry.index;
	inv = h_counter(&p->b.dev->dropped_invalid);
	last = atomic_load(&pb->last_handshake_ns);

	/* Later than the flood guard's 20 ms: only the timestamp can reject it. */
	sleep_ms(30);
	h_deliver(&p->b, init.msg, init.len, &init.src);
	h_pump(&p->a, &p->b);

	assert_int_equal(h_counter(&p->b.dev->dropped_invalid), inv + 1);
	assert_int_equal(h_log_count(&p->a, WG_MSG_HANDSHAKE_RESPONSE), 1);
	assert_ptr_equal(pb->keypairs.current, cur);
	assert_int_equal(pb->keypairs.current->id, id);
	assert_int_equal(pb->keypairs.current->entry.index, index);
	assert_null(pb->keypairs.next);
	assert_null(pb->keypairs.previous);
	assert_int_equal(pb->handshake.state, HANDSHAKE_ZEROED);
	assert_int_equal(atomic_load(&pb->last_handshake_ns), last);

	/* A fresh initiation still works and rotates the sessions. */
	h_handshake(&p->a, &p->b);
	assert_ptr_equal(pb->keypairs.previous, cur);
	assert_int_not_equal(pb->keypairs.current->id, id);
	assert_sessions_match(&p->a, &p->b);
}

static void hex_of(char *out, uint8_t byte)
{
	uint8_t k[WG_KEY_LEN];
	char hex[2 * WG_KEY_LEN + 1];

	memset(k, byte, sizeof(k));
	key_to_hex(hex, k);
	sprintf(out, "preshared_key=%s\n", hex);
}

static void test_preshared_keys(void **state)
{
	static const struct {
		uint8_t psk_a, psk_b; /* 0: none set */
		bool session;
	} cases[] = {
		{0, 0, true},	  {0x11, 0x11, true}, {0x11, 0x22, false},
		{0x11, 0, false}, {0, 0x22, false},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char xa[128] = "", xb[128] = "";
		struct hdev a, b;
		struct wg_peer *pa, *pb;

		if (cases[i].psk_a)
			hex_of(xa, cases[i].psk_a);
		if (cases[i].psk_b)
			hex_of(xb, cases[i].psk_b);
		assert_int_equal(h_pair_new(&a, &b, xa, xb), 0);
		h_handshake(&a, &b);
		pa = h_peer(&a, &b);
		pb = h_peer(&b, &a);
		if (cases[i].session) {
			assert_sessions_match(&a, &b);
			assert_int_equal(h_counter(&a.dev->dropped_invalid), 0);
		} else {
			/* The responder cannot tell: it answers, but the response fails at the
			 * initiator and nothing ever confirms the responder's keypair. */
			assert_null(pa->keypairs.current);
			assert_null(pb->keypairs.current);
			assert_int_equal(h_counter(&a.dev->dropped_invalid), 1);
			assert_int_equal(atomic_load(&pa->last_handshake_ns), 0);
			assert_int_equal(atomic_load(&pb->last_handshake_ns), 0);
			assert_int_equal(pa->handshake.state, HANDSHAKE_CREATED_INITIATION);
		}
		h_dev_free(&a);
		h_dev_free(&b);
	}
}

static void test_unknown_initiator(void **state)
{
	struct hdev a, b, c;

	/* b knows c, not a. */
	assert_int_equal(h_dev_new(&a, "wgtest-a"), 0);
	assert_int_equal(h_dev_new(&b, "wgtest-b"), 0);
	assert_int_equal(h_dev_new(&c, "wgtest-c"), 0);
	assert_int_equal(h_add_peer(&a, &b, "10.0.0.2/32", ""), 0);
	assert_int_equal(h_add_peer(&b, &c, "10.0.0.3/32", ""), 0);
	h_log_reset();
	h_handshake(&a, &b);
	assert_int_equal(h_log_count(&b, WG_MSG_HANDSHAKE_INITIATION), 1);
	assert_int_equal(h_log_count(&a, WG_MSG_HANDSHAKE_RESPONSE), 0);
	assert_int_equal(h_counter(&b.dev->dropped_invalid), 1);
	assert_null(h_peer(&a, &b)->keypairs.current);
	assert_null(h_peer(&b, &c)->keypairs.next);
	assert_int_equal(h_peer(&b, &c)->handshake.state, HANDSHAKE_ZEROED);
	h_dev_free(&a);
	h_dev_free(&b);
	h_dev_free(&c);
}

/*
 * Keypair ids key the data-path cipher caches (wgcrypto_data_ctx re-keys only when the id
 * changes), so they must be unique across every device sharing a cache. receive_one keeps one
 * receive state per thread for all devices, while each device numbers its keypairs from 1:
 * a hub with two peers, all three in one process with ids as device_new leaves them, and data
 * both ways on both sessions.
 */
static void test_keypair_ids_across_devices(void **state)
{
	struct hdev a, b, c;
	struct hdev *hub_peers[] = {&a, &c};
	uint8_t pkt[64];

	assert_int_equal(h_dev_new(&a, "wgtest-a"), 0);
	assert_int_equal(h_dev_new(&b, "wgtest-b"), 0);
	assert_int_equal(h_dev_new(&c, "wgtest-c"), 0);
	assert_int_equal(h_add_peer(&a, &b, "10.0.0.2/32", ""), 0);
	assert_int_equal(h_add_peer(&c, &b, "10.0.0.2/32", ""), 0);
	assert_int_equal(h_add_peer(&b, &a, "10.0.0.1/32", ""), 0);
	assert_int_equal(h_add_peer(&b, &c, "10.0.0.3/32", ""), 0);

	h_handshake(&a, &b);
	h_handshake(&c, &b);
	assert_sessions_match(&a, &b);
	assert_sessions_match(&c, &b);
	for (size_t i = 0; i < ARRAY_SIZE(hub_peers); i++) {
		struct hdev *x = hub_peers[i];
		const char *ip = x == &a ? "10.0.0.1" : "10.0.0.3";
		uint64_t rx_x = atomic_load(&h_peer(x, &b)->rx_bytes);
		uint64_t rx_b = atomic_load(&h_peer(&b, x)->rx_bytes);

		h_send_packet(&b, x, pkt, h_ipv4_packet(pkt, "10.0.0.2", ip));
		h_pump(x, &b);
		h_send_packet(x, &b, pkt, h_ipv4_packet(pkt, ip, "10.0.0.2"));
		h_pump(x, &b);
		assert_int_equal(atomic_load(&h_peer(x, &b)->rx_bytes),
				 rx_x + 48 + WG_DATA_OVERHEAD);
		assert_int_equal(atomic_load(&h_peer(&b, x)->rx_bytes),
				 rx_b + 48 + WG_DATA_OVERHEAD);
	}
	assert_int_equal(h_counter(&a.dev->dropped_invalid), 0);
	assert_int_equal(h_counter(&b.dev->dropped_invalid), 0);
	assert_int_equal(h_counter(&c.dev->dropped_invalid), 0);
	h_dev_free(&a);
	h_dev_free(&b);
	h_dev_free(&c);
}

/* Recompute mac1 for the receiver so a mutation reaches the Noise layer. */
static void remac(uint8_t *msg, size_t len, const struct hdev *receiver)
{
	struct cookie_maker m;

	cookie_maker_init(&m, receiver->pub);
	cookie_add_macs(&m, msg, len);
}

/*
 * Flipping any bit before mac2 fails mac1. With mac1 recomputed, the Noise layer must reject
 * the message itself, except for the sender index, which Noise does not cover (by design:
 * only mac1 protects it). mac2 is checked only under load (test_cookie.c).
 */
static bool noise_covers(size_t byte, size_t len)
{
	return !(byte >= 4 && byte < 8) && byte < len - sizeof(struct wg_message_macs);
}

static void test_initiation_bitflips(void **state)
{
	struct h_pair *p = *state;
	struct wg_peer *pb = h_peer(&p->b, &p->a);
	uint32_t init_type = WG_MSG_HANDSHAKE_INITIATION;
	struct h_datagram orig;
	size_t macs_end = sizeof(struct wg_message_handshake_initiation) - WG_COOKIE_LEN;
	uint64_t inv = 0;

	h_hook = drop_type;
	h_hook_ctx = &init_type;
	h_initiate(&p->a, &p->b);
	h_pump(&p->a, &p->b);
	h_hook = NULL;
	orig = *h_log_find(&p->b, WG_MSG_HANDSHAKE_INITIATION, 0);
	assert_int_equal(orig.len, sizeof(struct wg_message_handshake_initiation));

	for (int remacced = 0; remacced < 2; remacced++) {
		for (size_t i = 0; i < macs_end; i++) {
			if (remacced && !noise_covers(i, orig.len))
				continue;
			for (int bit = 0; bit < 8; bit++) {
				uint8_t m[sizeof(orig.msg)];

				memcpy(m, orig.msg, orig.len);
				m[i] ^= (uint8_t)(1u << bit);
				if (remacced)
					remac(m, orig.len, &p->b);
				h_deliver(&p->b, m, orig.len, &orig.src);
				ctrl_run_once(p->b.dev);
				inv++;
				if (h_counter(&p->b.dev->dropped_invalid) != inv)
					fail_msg("byte %zu bit %d (remac %d) not dropped", i, bit,
						 remacced);
				assert_int_equal(h_queued_handshakes(&p->b), 0);
				assert_int_equal(pb->handshake.state, HANDSHAKE_ZEROED);
				assert_null(pb->keypairs.next);
			}
		}
	}
	assert_int_equal(h_drain(&p->a), 0); /* nothing was answered */

	/* The original still works: nothing above touched the responder's state. */
	h_deliver(&p->b, orig.msg, orig.len, &orig.src);
	h_pump(&p->a, &p->b);
	assert_int_equal(h_counter(&p->b.dev->dropped_invalid), inv);
	assert_sessions_match(&p->a, &p->b);
}

static void test_response_bitflips(void **state)
{
	struct h_pair *p = *state;
	struct wg_peer *pa = h_peer(&p->a, &p->b);
	uint32_t resp_type = WG_MSG_HANDSHAKE_RESPONSE;
	struct h_datagram orig;
	size_t macs_end = sizeof(struct wg_message_handshake_response) - WG_COOKIE_LEN;
	uint64_t inv = 0;

	h_hook = drop_type;
	h_hook_ctx = &resp_type;
	h_handshake(&p->a, &p->b);
	h_hook = NULL;
	orig = *h_log_find(&p->a, WG_MSG_HANDSHAKE_RESPONSE, 0);
	assert_int_equal(pa->handshake.state, HANDSHAKE_CREATED_INITIATION);

	for (int remacced = 0; remacced < 2; remacced++) {
		for (size_t i = 0; i < macs_end; i++) {
			if (remacced && !noise_covers(i, orig.len))
				continue;
			for (int bit = 0; bit < 8; bit++) {
				uint8_t m[sizeof(orig.msg)];

				memcpy(m, orig.msg, orig.len);
				m[i] ^= (uint8_t)(1u << bit);
				if (remacced)
					remac(m, orig.len, &p->a);
				h_deliver(&p->a, m, orig.len, &orig.src);
				ctrl_run_once(p->a.dev);
				inv++;
				if (h_counter(&p->a.dev->dropped_invalid) != inv)
					fail_msg("byte %zu bit %d (remac %d) not dropped", i, bit,
						 remacced);
				assert_int_equal(pa->handshake.state, HANDSHAKE_CREATED_INITIATION);
				assert_null(pa->keypairs.current);
			}
		}
	}
	assert_int_equal(h_drain(&p->b), 0);

	h_deliver(&p->a, orig.msg, orig.len, &orig.src);
	h_pump(&p->a, &p->b);
	assert_int_equal(h_counter(&p->a.dev->dropped_invalid), inv);
	assert_sessions_match(&p->a, &p->b);
}

static void test_data_replay(void **state)
{
	struct h_pair *p = *state;
	struct wg_peer *pb = h_peer(&p->b, &p->a);
	struct h_datagram ka, data;
	uint8_t pkt[64];
	uint64_t rx;

	h_handshake(&p->a, &p->b);
	ka = *h_log_find(&p->b, WG_MSG_DATA, 0);
	h_send_packet(&p->a, &p->b, pkt, h_ipv4_packet(pkt, "10.0.0.1", "10.0.0.2"));
	h_pump(&p->a, &p->b);
	data = *h_log_find(&p->b, WG_MSG_DATA, 1);
	rx = atomic_load(&pb->rx_bytes);

	for (int i = 1; i <= 3; i++) {
		h_deliver(&p->b, ka.msg, ka.len, &ka.src);
		h_deliver(&p->b, data.msg, data.len, &data.src);
		assert_int_equal(h_counter(&p->b.dev->dropped_replay), 2 * i);
	}
	assert_int_equal(atomic_load(&pb->rx_bytes), rx);
	assert_int_equal(h_counter(&p->b.dev->dropped_invalid), 0);
}

static void test_data_invalid(void **state)
{
	struct h_pair *p = *state;
	struct wg_peer *pb = h_peer(&p->b, &p->a);
	uint32_t data_type = WG_MSG_DATA;
	struct h_datagram d;
	uint8_t pkt[64], m[H_MAX_DATAGRAM];
	uint64_t inv = 0, rx;

	h_handshake(&p->a, &p->b);
	rx = atomic_load(&pb->rx_bytes);
	h_hook = drop_type;
	h_hook_ctx = &data_type;
	h_send_packet(&p->a, &p->b, pkt, h_ipv4_packet(pkt, "10.0.0.1", "10.0.0.2"));
	h_pump(&p->a, &p->b);
	h_hook = NULL;
	d = *h_log_find(&p->b, WG_MSG_DATA, 1);

	/* Unknown receiver index. */
	memcpy(m, d.msg, d.len);
	m[4] ^= 1;
	h_deliver(&p->b, m, d.len, &d.src);
	assert_int_equal(h_counter(&p->b.dev->dropped_invalid), ++inv);

	/* Every truncation. */
	for (size_t len = 0; len < d.len; len++) {
		h_deliver(&p->b, d.msg, len, &d.src);
		assert_int_equal(h_counter(&p->b.dev->dropped_invalid), ++inv);
	}
	/* Every bit of the counter and the ciphertext. */
	for (size_t i = 8; i < d.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(m, d.msg, d.len);
			m[i] ^= (uint8_t)(1u << bit);
			h_deliver(&p->b, m, d.len, &d.src);
			if (h_counter(&p->b.dev->dropped_invalid) != ++inv)
				fail_msg("byte %zu bit %d accepted", i, bit);
		}
	}
	/* Counters at and beyond the limit never authenticate nor reach the window. */
	static const uint64_t counters[] = {
		WG_REJECT_AFTER_MESSAGES - 1,
		WG_REJECT_AFTER_MESSAGES,
		WG_REJECT_AFTER_MESSAGES + 1,
		UINT64_MAX,
	};
	for (size_t i = 0; i < ARRAY_SIZE(counters); i++) {
		uint64_t le = htole64(counters[i]);

		memcpy(m, d.msg, d.len);
		memcpy(m + 8, &le, sizeof(le));
		h_deliver(&p->b, m, d.len, &d.src);
		assert_int_equal(h_counter(&p->b.dev->dropped_invalid), ++inv);
	}
	assert_int_equal(h_counter(&p->b.dev->dropped_replay), 0);
	assert_int_equal(atomic_load(&pb->rx_bytes), rx);

	/* None of it touched the replay window: the real one is still fresh. */
	h_deliver(&p->b, d.msg, d.len, &d.src);
	assert_int_equal(atomic_load(&pb->rx_bytes), rx + d.len);
	assert_int_equal(h_counter(&p->b.dev->dropped_invalid), inv);
}

static void test_garbage(void **state)
{
	struct h_pair *p = *state;
	struct wg_peer *pb = h_peer(&p->b, &p->a);
	struct noise_keypair *cur;
	uint64_t inv, n = 0, rx;
	uint8_t buf[256], pkt[64];

	h_handshake(&p->a, &p->b);
	cur = pb->keypairs.current;
	inv = h_counter(&p->b.dev->dropped_invalid);
	rx = atomic_load(&pb->rx_bytes);
	srand(1);
	for (uint32_t type = 0; type <= 5; type++) {
		for (size_t len = 0; len <= 200; len++) {
			for (size_t i = 0; i < sizeof(buf); i++)
				buf[i] = (uint8_t)rand();
			if (type) {
				uint32_t le = htole32(type);

				memcpy(buf, &le, len < 4 ? len : 4);
			}
			receive_one(p->b.dev, buf, len, &p->a.addr);
			ctrl_run_once(p->b.dev);
			n++;
			if (h_counter(&p->b.dev->dropped_invalid) != inv + n)
				fail_msg("type %u len %zu not counted", type, len);
		}
	}
	assert_int_equal(h_queued_handshakes(&p->b), 0);
	assert_int_equal(h_drain(&p->a), 0);
	assert_ptr_equal(pb->keypairs.current, cur);
	assert_null(pb->keypairs.next);
	assert_int_equal(atomic_load(&pb->rx_bytes), rx);

	/* And the session still carries data. */
	h_send_packet(&p->a, &p->b, pkt, h_ipv4_packet(pkt, "10.0.0.1", "10.0.0.2"));
	h_pump(&p->a, &p->b);
	assert_int_equal(atomic_load(&pb->rx_bytes), rx + 48 + WG_DATA_OVERHEAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handshake_completes, h_pair_setup, h_teardown),
		cmocka_unit_test_setup_teardown(test_responder_waits_for_confirmation, h_pair_setup,
						h_teardown),
		cmocka_unit_test_setup_teardown(test_handshake_bytes_counted_both_ways,
						h_pair_setup, h_teardown),
		cmocka_unit_test_setup_teardown(test_data_both_ways, h_pair_setup, h_teardown),
		cmocka_unit_test_setup_teardown(test_replayed_initiation_rejected, h_pair_setup,
						h_teardown),
		cmocka_unit_test_teardown(test_preshared_keys, h_teardown),
		cmocka_unit_test_teardown(test_unknown_initiator, h_teardown),
		cmocka_unit_test_teardown(test_keypair_ids_across_devices, h_teardown),
		cmocka_unit_test_setup_teardown(test_initiation_bitflips, h_pair_setup, h_teardown),
		cmocka_unit_test_setup_teardown(test_response_bitflips, h_pair_setup, h_teardown),
		cmocka_unit_test_setup_teardown(test_data_replay, h_pair_setup, h_teardown),
		cmocka_unit_test_setup_teardown(test_data_invalid, h_pair_setup, h_teardown),
		cmocka_unit_test_setup_teardown(test_garbage, h_pair_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
