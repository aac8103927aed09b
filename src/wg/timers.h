/* SPDX-License-Identifier: MIT */
/*
 * The timers of the WireGuard paper, section 6, as deadlines rather than timer objects. The
 * data path records events (cheap atomic stores, once per batch); the control thread fires
 * what is due and sleeps on one timerfd until the earliest deadline. A deadline that appears
 * from nothing wakes the control thread, so an idle interface sleeps without ticking.
 */
#ifndef WICE_WG_TIMERS_H
#define WICE_WG_TIMERS_H

#include <stdint.h>

struct wg_peer;

/* Data path (any thread). */
void timers_data_sent(struct wg_peer *peer, uint64_t now);
void timers_data_received(struct wg_peer *peer, uint64_t now);
void timers_any_authenticated_packet_sent(struct wg_peer *peer);
void timers_any_authenticated_packet_received(struct wg_peer *peer);
void timers_any_authenticated_packet_traversal(struct wg_peer *peer, uint64_t now);

/* Control thread, device write lock held. */
void timers_handshake_initiated(struct wg_peer *peer, uint64_t now);
void timers_handshake_complete(struct wg_peer *peer);
void timers_session_derived(struct wg_peer *peer, uint64_t now);
/* Fire what is due at now; returns the peer's next deadline, 0 when none. */
uint64_t timers_run(struct wg_peer *peer, uint64_t now);

#define NSEC_PER_SEC 1000000000ULL

#endif
