/* SPDX-License-Identifier: MIT */
#include <time.h>
#include "wg/crypto.h"
#include "wg/device.h"
#include "wg/timers.h"

static uint64_t jitter(void)
{
	return (uint64_t)(wgcrypto_random_u32() % WG_REKEY_TIMEOUT_JITTER_MS) * 1000000ULL;
}

/* Arms a deadline only if none is set; wakes the control thread when it did. */
static void arm_if_idle(struct wg_peer *peer, _Atomic uint64_t *t, uint64_t deadline)
{
	uint64_t zero = 0;

	if (atomic_load_explicit(t, memory_order_relaxed))
		return;
	if (atomic_compare_exchange_strong(t, &zero, deadline))
		peer_request(peer, PEER_REQ_TIMERS);
}

static void cancel(_Atomic uint64_t *t)
{
	if (atomic_load_explicit(t, memory_order_relaxed))
		atomic_store_explicit(t, 0, memory_order_relaxed);
}

void timers_data_sent(struct wg_peer *peer, uint64_t now)
{
	/* No reply within KEEPALIVE + REKEY_TIMEOUT: the session may be dead, handshake anew. */
	arm_if_idle(peer, &peer->t_new_handshake,
		    now + (WG_KEEPALIVE_TIMEOUT + WG_REKEY_TIMEOUT) * NSEC_PER_SEC + jitter());
}

void timers_data_received(struct wg_peer *peer, uint64_t now)
{
	/* Passive keepalive: if we send nothing back within KEEPALIVE_TIMEOUT, send an empty
	 * packet so the other side's new-handshake timer does not fire. */
	if (atomic_load_explicit(&peer->t_send_keepalive, memory_order_relaxed))
		atomic_store_explicit(&peer->t_need_another_keepalive, true, memory_order_relaxed);
	else
		arm_if_idle(peer, &peer->t_send_keepalive,
			    now + WG_KEEPALIVE_TIMEOUT * NSEC_PER_SEC);
}

void timers_any_authenticated_packet_sent(struct wg_peer *peer)
{
	cancel(&peer->t_send_keepalive);
}

void timers_any_authenticated_packet_received(struct wg_peer *peer)
{
	cancel(&peer->t_new_handshake);
}

void timers_any_authenticated_packet_traversal(struct wg_peer *peer, uint64_t now)
{
	uint16_t interval = peer->persistent_keepalive;
	uint64_t old;

	if (!interval)
		return;
	old = atomic_exchange_explicit(&peer->t_persistent_keepalive, now + interval * NSEC_PER_SEC,
				       memory_order_relaxed);
	if (!old)
		peer_request(peer, PEER_REQ_TIMERS);
}

void timers_handshake_initiated(struct wg_peer *peer, uint64_t now)
{
	peer->t_retransmit_handshake = now + WG_REKEY_TIMEOUT * NSEC_PER_SEC + jitter();
}

void timers_handshake_complete(struct wg_peer *peer)
{
	struct timespec ts;

	peer->t_retransmit_handshake = 0;
	peer->handshake_attempts = 0;
	atomic_store(&peer->sent_lastminute_handshake, false);
	clock_gettime(CLOCK_REALTIME, &ts);
	atomic_store(&peer->last_handshake_ns,
		     (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec);
}

void timers_session_derived(struct wg_peer *peer, uint64_t now)
{
	/* Nothing may outlive three REJECT_AFTER_TIMEs without a new handshake. */
	peer->t_zero_key_material = now + 3ULL * WG_REJECT_AFTER_TIME * NSEC_PER_SEC;
}

static void retransmit_handshake_expired(struct wg_peer *peer, uint64_t now)
{
	if (peer->handshake_attempts > WG_MAX_TIMER_HANDSHAKES) {
		/* Give up after 90 s: drop what waited and let the keys age out. */
		atomic_store(&peer->t_send_keepalive, 0);
		peer_purge_staged(peer);
		if (!peer->t_zero_key_material)
			timers_session_derived(peer, now);
		return;
	}
	peer->handshake_attempts++;
	send_handshake_initiation(peer, true);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return a < b ? a : b;
}

uint64_t timers_run(struct wg_peer *peer, uint64_t now)
{
	struct wg_device *dev = peer->dev;
	uint64_t t, next;

	if (peer->t_retransmit_handshake && now >= peer->t_retransmit_handshake) {
		peer->t_retransmit_handshake = 0;
		retransmit_handshake_expired(peer, now);
	}
	t = atomic_load(&peer->t_send_keepalive);
	if (t && now >= t) {
		atomic_store(&peer->t_send_keepalive, 0);
		send_keepalive(peer);
		if (atomic_exchange(&peer->t_need_another_keepalive, false))
			atomic_store(&peer->t_send_keepalive,
				     now + WG_KEEPALIVE_TIMEOUT * NSEC_PER_SEC);
	}
	t = atomic_load(&peer->t_new_handshake);
	if (t && now >= t) {
		atomic_store(&peer->t_new_handshake, 0);
		send_handshake_initiation(peer, false);
	}
	if (peer->t_zero_key_material && now >= peer->t_zero_key_material) {
		peer->t_zero_key_material = 0;
		noise_keypairs_clear(dev, &peer->keypairs);
		noise_handshake_clear(dev, &peer->handshake);
	}
	t = atomic_load(&peer->t_persistent_keepalive);
	if (t && now >= t) {
		atomic_store(&peer->t_persistent_keepalive, 0);
		send_keepalive(peer);
	}

	next = earliest(peer->t_retransmit_handshake, atomic_load(&peer->t_send_keepalive));
	next = earliest(next, atomic_load(&peer->t_new_handshake));
	next = earliest(next, peer->t_zero_key_material);
	return earliest(next, atomic_load(&peer->t_persistent_keepalive));
}
