/* SPDX-License-Identifier: MIT */
/*
 * A token bucket per source address for handshake messages under load (the limits and why:
 * messages.h, WG_RATELIMIT_*). Credit is kept in nanoseconds of elapsed time: a packet costs
 * 1/WG_RATELIMIT_PACKETS_PER_SECOND s and a bucket holds at most WG_RATELIMIT_BURST packets'
 * worth, so refill needs no timer, only the time of the last packet.
 *
 * Sources are found by a keyed hash (SipHash-2-4, libsodium's crypto_shorthash, random key per
 * table) so a remote party cannot aim its addresses at one chain. Besides the hash chains the
 * entries sit on a list ordered by last use; every packet moves its source to the new end, so
 * the expired ones are always at the old end and each call frees them in O(1) amortized (each
 * entry is freed once after being made once): no sweep timer, no walk over the table.
 *
 * Time is passed in (monotonic ns), so tests move the clock by hand. There is no lock: the
 * device's one receive thread is the only caller (receive_one in tests and fuzzing stands in
 * for it, never beside it).
 */
#ifndef WICE_WG_RATELIMIT_H
#define WICE_WG_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sodium.h>
#include "wg/messages.h"

struct ratelimit_entry;

struct ratelimit {
	struct ratelimit_entry **buckets; /* RATELIMIT_BUCKETS chains */
	struct ratelimit_entry *oldest, *newest;
	unsigned int count; /* at most WG_RATELIMIT_MAX_SOURCES */
	uint8_t key[crypto_shorthash_KEYBYTES];
};

int ratelimit_init(struct ratelimit *rl);
/* Frees every entry; accepts a table that was never initialised (zeroed). */
void ratelimit_free(struct ratelimit *rl);

/*
 * Takes a token from src's bucket at time now: true if there was one. A new source starts
 * with a full bucket; a new source when the table is full, an address family other than
 * IPv4 or IPv6, or an allocation failure is refused (false).
 */
bool ratelimit_allow(struct ratelimit *rl, const struct sockaddr *src, uint64_t now);
/* Forgets the sources idle for more than WG_RATELIMIT_IDLE_EXPIRY at now. */
void ratelimit_expire(struct ratelimit *rl, uint64_t now);

static inline unsigned int ratelimit_count(const struct ratelimit *rl)
{
	return rl->count;
}

#endif
