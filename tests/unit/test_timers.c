/* SPDX-License-Identifier: MIT */
/*
 * The timers of the WireGuard paper, section 6, with the clock advanced by hand: timers_run
 * takes "now" as an argument, so each test moves time to a deadline and checks what goes out
 * on the wire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "harness.h"
#include "wg/timers.h"

#define SEC NSEC_PER_SEC

/* Runs a's timers for peer b at `at` (with the initiation rate limit lifted, since that one
 * reads the real clock) and returns how many datagrams of `type` b's socket then holds. */
static unsigned int fire(struct hdev *a, struct hdev *b, uint64_t at, uint32_t type)
{
	struct wg_peer *p = h_peer(a, b);
	uint8_t buf[H_MAX_DATAGRAM];
	struct wg_endpoint src;
	unsigned int n = 0;
	ssize_t len;

	pthread_rwlock_wrlock(&a->dev->lock);
	atomic_store(&p->last_sent_handshake, 0);
	timers_run(p, at);
	pthread_rwlock_unlock(&a->dev->lock);
	while ((len = h_recv(b, buf, sizeof(buf), &src, 20)) >= 0)
		if (h_type(buf, (size_t)len) == type)
			n++;
	return n;
}

static void test_retransmit_then_give_up(void **state)
{
	struct hdev a, b;
	uint8_t pkt[64];
	struct wg_peer *p;
	uint64_t t0 = now_ns();
	unsigned int sent = 0;

	assert_int_equal(h_pair_new(&a, &b, "", ""), 0);
	p = h_peer(&a, &b);
	/* Data with no session: staged, and an initiation goes out. b never answers. */
	h_send_packet(&a, &b, pkt, h_ipv4_packet(pkt, "10.0.0.1", "10.0.0.2"));
	sent = h_drain(&b);
	assert_int_equal(sent, 1);
	assert_int_equal(p->n_staged, 1);
	/* Retry after REKEY_TIMEOUT plus up to 333 ms of jitter. */
	assert_true(p->t_retransmit_handshake >= t0 + 5 * SEC);
	assert_true(p->t_retransmit_handshake <= now_ns() + 5 * SEC + 334000000ULL);

	/* Every retry re-arms; after MAX_TIMER_HANDSHAKES + 1 retries (~95 s) it gives up. */
	for (int i = 0; i < 40 && p->t_retransmit_handshake; i++) {
		unsigned int n =
			fire(&a, &b, p->t_retransmit_handshake, WG_MSG_HANDSHAKE_INITIATION);

		sent += n;
	}
	assert_int_equal(sent, 1 + WG_MAX_TIMER_HANDSHAKES + 1);
	assert_int_equal(p->t_retransmit_handshake, 0);
	/* What waited is dropped, and the keys will be zeroed. */
	assert_int_equal(p->n_staged, 0);
	assert_true(p->t_zero_key_material > 0);
	h_dev_free(&a);
	h_dev_free(&b);
}

static void test_passive_keepalive(void **state)
{
	struct hdev a, b;
	uint8_t pkt[64], buf[H_MAX_DATAGRAM];
	struct wg_endpoint src;
	struct wg_peer *p;
	uint64_t t;
	ssize_t len;

	assert_int_equal(h_pair_new(&a, &b, "", ""), 0);
	h_handshake(&a, &b);
	p = h_peer(&a, &b);
	atomic_store(&p->t_send_keepalive, 0);
	/* b sends a data packet; a has nothing to say back. */
	h_send_packet(&b, &a, pkt, h_ipv4_packet(pkt, "10.0.0.2", "10.0.0.1"));
	h_pump(&a, &b);
	t = atomic_load(&p->t_send_keepalive);
	assert_true(t > now_ns() + 9 * SEC && t <= now_ns() + 10 * SEC);
	/* Nothing before the deadline... */
	assert_int_equal(fire(&a, &b, t - 1, WG_MSG_DATA), 0);
	/* ...and an empty data message (a keepalive) at it. */
	pthread_rwlock_wrlock(&a.dev->lock);
	timers_run(p, t);
	pthread_rwlock_unlock(&a.dev->lock);
	len = h_recv(&b, buf, sizeof(buf), &src, 200);
	assert_int_equal(len, WG_DATA_OVERHEAD);
	assert_int_equal(h_type(buf, (size_t)len), WG_MSG_DATA);
	assert_int_equal(atomic_load(&p->t_send_keepalive), 0);

	/* Sending anything cancels a pending keepalive. */
	h_send_packet(&b, &a, pkt, h_ipv4_packet(pkt, "10.0.0.2", "10.0.0.1"));
	h_pump(&a, &b);
	assert_true(atomic_load(&p->t_send_keepalive) > 0);
	h_send_packet(&a, &b, pkt, h_ipv4_packet(pkt, "10.0.0.1", "10.0.0.2"));
	assert_int_equal(atomic_load(&p->t_send_keepalive), 0);
	h_dev_free(&a);
	h_dev_free(&b);
}

static void test_new_handshake_when_unanswered(void **state)
{
	struct hdev a, b;
	uint8_t pkt[64];
	struct wg_peer *p;
	uint64_t t;

	assert_int_equal(h_pair_new(&a, &b, "", ""), 0);
	h_handshake(&a, &b);
	p = h_peer(&a, &b);
	atomic_store(&p->t_new_handshake, 0);
	h_send_packet(&a, &b, pkt, h_ipv4_packet(pkt, "10.0.0.1", "10.0.0.2"));
	h_drain(&b); /* b hears nothing: the session may be dead */
	t = atomic_load(&p->t_new_handshake);
	assert_true(t >= now_ns() + 14 * SEC && t <= now_ns() + 15 * SEC + 334000000ULL);
	assert_int_equal(fire(&a, &b, t, WG_MSG_HANDSHAKE_INITIATION), 1);

	/* Anything authenticated from b cancels it. */
	h_send_packet(&a, &b, pkt, h_ipv4_packet(pkt, "10.0.0.1", "10.0.0.2"));
	assert_true(atomic_load(&p->t_new_handshake) > 0);
	h_drain(&b);
	h_send_keepalive(&b, &a);
	h_pump(&a, &b);
	assert_int_equal(atomic_load(&p->t_new_handshake), 0);
	h_dev_free(&a);
	h_dev_free(&b);
}

static void test_persistent_keepalive(void **state)
{
	struct hdev a, b;
	struct wg_peer *p;
	uint64_t t;

	assert_int_equal(h_pair_new(&a, &b, "persistent_keepalive_interval=25", ""), 0);
	h_handshake(&a, &b);
	p = h_peer(&a, &b);
	t = atomic_load(&p->t_persistent_keepalive);
	assert_true(t > now_ns() + 24 * SEC && t <= now_ns() + 25 * SEC);
	h_drain(&b);
	assert_int_equal(fire(&a, &b, t, WG_MSG_DATA), 1);
	/* The keepalive itself re-arms it. */
	assert_true(atomic_load(&p->t_persistent_keepalive) > t - 1 * SEC);
	h_dev_free(&a);
	h_dev_free(&b);
}

static void test_rekey_after_time(void **state)
{
	struct hdev a, b;
	uint8_t pkt[64];
	struct wg_peer *p;
	uint64_t id;

	assert_int_equal(h_pair_new(&a, &b, "", ""), 0);
	h_handshake(&a, &b);
	p = h_peer(&a, &b);
	id = p->keypairs.current->id;
	/* The initiator's session is older than REKEY_AFTER_TIME: sending renews it. */
	p->keypairs.current->birthdate_ns -= (WG_REKEY_AFTER_TIME + 1) * SEC;
	atomic_store(&p->last_sent_handshake, 0);
	h_send_packet(&a, &b, pkt, h_ipv4_packet(pkt, "10.0.0.1", "10.0.0.2"));
	h_pump(&a, &b);
	assert_int_not_equal(p->keypairs.current->id, id);
	/* The responder's side never renews by age alone (paper 6.2: only the initiator). */
	h_dev_free(&a);
	h_dev_free(&b);
}

static void test_reject_after_time(void **state)
{
	struct hdev a, b;
	uint8_t pkt[64];
	struct wg_peer *pa, *pb;
	uint64_t rx;

	assert_int_equal(h_pair_new(&a, &b, "", ""), 0);
	h_handshake(&a, &b);
	pa = h_peer(&a, &b);
	pb = h_peer(&b, &a);
	/* b's session is past REJECT_AFTER_TIME: b must not send on it... */
	pb->keypairs.current->birthdate_ns -= (WG_REJECT_AFTER_TIME + 1) * SEC;
	h_send_packet(&b, &a, pkt, h_ipv4_packet(pkt, "10.0.0.2", "10.0.0.1"));
	assert_int_equal(pb->n_staged, 1); /* staged, waiting for a new handshake */
	/* ...nor accept data on it. */
	rx = atomic_load(&pb->rx_bytes);
	pthread_rwlock_wrlock(&a.dev->lock);
	peer_stage_packet(pa, pkt, h_ipv4_packet(pkt, "10.0.0.1", "10.0.0.2"));
	send_staged(pa);
	pthread_rwlock_unlock(&a.dev->lock);
	{
		uint8_t buf[H_MAX_DATAGRAM];
		struct wg_endpoint src;
		ssize_t len;

		while ((len = h_recv(&b, buf, sizeof(buf), &src, 50)) >= 0)
			if (h_type(buf, (size_t)len) == WG_MSG_DATA)
				h_deliver(&b, buf, (size_t)len, &src);
	}
	assert_int_equal(atomic_load(&pb->rx_bytes), rx);
	/* The handshake b asked for completes (lifting the one-initiation-per-REKEY_TIMEOUT
	 * limit, which b's own recent response would hold), and the staged packet goes out. */
	atomic_store(&pb->last_sent_handshake, 0);
	peer_request(pb, PEER_REQ_HANDSHAKE);
	h_pump(&a, &b);
	assert_int_equal(pb->n_staged, 0);
	assert_true(atomic_load(&pa->rx_bytes) > 0);
	h_dev_free(&a);
	h_dev_free(&b);
}

static void test_zero_key_material(void **state)
{
	struct hdev a, b;
	struct wg_peer *p;

	assert_int_equal(h_pair_new(&a, &b, "", ""), 0);
	h_handshake(&a, &b);
	p = h_peer(&a, &b);
	assert_non_null(p->keypairs.current);
	assert_true(p->t_zero_key_material >= now_ns() + (3 * WG_REJECT_AFTER_TIME - 1) * SEC);
	fire(&a, &b, p->t_zero_key_material, WG_MSG_DATA);
	assert_null(p->keypairs.current);
	assert_null(p->keypairs.previous);
	assert_null(p->keypairs.next);
	h_dev_free(&a);
	h_dev_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_retransmit_then_give_up, h_teardown),
		cmocka_unit_test_teardown(test_passive_keepalive, h_teardown),
		cmocka_unit_test_teardown(test_new_handshake_when_unanswered, h_teardown),
		cmocka_unit_test_teardown(test_persistent_keepalive, h_teardown),
		cmocka_unit_test_teardown(test_rekey_after_time, h_teardown),
		cmocka_unit_test_teardown(test_reject_after_time, h_teardown),
		cmocka_unit_test_teardown(test_zero_key_material, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
