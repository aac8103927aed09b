/* SPDX-License-Identifier: MIT */
/* Per-source token buckets for handshakes under load (ratelimit.h says how, messages.h why). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "wg/crypto.h"
#include "wg/ratelimit.h"
#include "wg/timers.h"

#define PACKET_COST (NSEC_PER_SEC / WG_RATELIMIT_PACKETS_PER_SECOND)
#define TOKEN_MAX   (PACKET_COST * WG_RATELIMIT_BURST)
#define IDLE_EXPIRY ((uint64_t)WG_RATELIMIT_IDLE_EXPIRY * NSEC_PER_SEC)
/* Four sources per chain on average when the table is full. */
#define RATELIMIT_BUCKETS (WG_RATELIMIT_MAX_SOURCES / 4)

_Static_assert((RATELIMIT_BUCKETS & (RATELIMIT_BUCKETS - 1)) == 0, "buckets: a power of two");
_Static_assert(WG_RATELIMIT_IPV6_PREFIX_LEN % 8 == 0 && WG_RATELIMIT_IPV6_PREFIX_LEN <= 64,
	       "the IPv6 prefix is whole bytes that fit the key");
_Static_assert(IDLE_EXPIRY >= TOKEN_MAX, "a forgotten source would have refilled anyway");

/* A source: IPv4 address or IPv6 prefix, zero-padded, and the family. Hashed as bytes. */
struct rl_source {
	uint8_t addr[8];
	uint8_t family;
};

struct ratelimit_entry {
	struct ratelimit_entry *chain_next, **chain_pprev;
	struct ratelimit_entry *older, *newer;
	uint64_t tokens; /* ns of credit, at most TOKEN_MAX */
	uint64_t last_ns;
	struct rl_source src;
};

int ratelimit_init(struct ratelimit *rl)
{
	memset(rl, 0, sizeof(*rl));
	rl->buckets = calloc(RATELIMIT_BUCKETS, sizeof(*rl->buckets));
	if (!rl->buckets)
		return -ENOMEM;
	wgcrypto_random(rl->key, sizeof(rl->key));
	return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
	struct ratelimit_entry *e, *next;

	for (e = rl->oldest; e; e = next) {
		next = e->newer;
		free(e);
	}
	free(rl->buckets);
	wgcrypto_wipe(rl->key, sizeof(rl->key));
	memset(rl, 0, sizeof(*rl));
}

/*
 * An IPv4-mapped IPv6 address counts as the IPv4 address: the IPv6 socket is meant to be
 * V6ONLY, but if it were not, every IPv4 source would otherwise share ::ffff:0:0/64's bucket.
 */
static bool source_of(const struct sockaddr *sa, struct rl_source *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;

		memcpy(ret->addr, &in4->sin_addr, sizeof(in4->sin_addr));
		ret->family = AF_INET;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(ret->addr, in6->sin6_addr.s6_addr + 12, 4);
			ret->family = AF_INET;
		} else {
			memcpy(ret->addr, in6->sin6_addr.s6_addr, WG_RATELIMIT_IPV6_PREFIX_LEN / 8);
			ret->family = AF_INET6;
		}
		return true;
	}
	return false;
}

static struct ratelimit_entry **chain_of(struct ratelimit *rl, const struct rl_source *src)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, (const uint8_t *)src, sizeof(*src), rl->key);
	memcpy(&v, h, sizeof(v));
	return &rl->buckets[v & (RATELIMIT_BUCKETS - 1)];
}

static void age_unlink(struct ratelimit *rl, struct ratelimit_entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		rl->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		rl->newest = e->older;
}

static void age_append(struct ratelimit *rl, struct ratelimit_entry *e)
{
	e->older = rl->newest;
	e->newer = NULL;
	if (rl->newest)
		rl->newest->newer = e;
	else
		rl->oldest = e;
	rl->newest = e;
}

static void entry_remove(struct ratelimit *rl, struct ratelimit_entry *e)
{
	*e->chain_pprev = e->chain_next;
	if (e->chain_next)
		e->chain_next->chain_pprev = e->chain_pprev;
	age_unlink(rl, e);
	rl->count--;
	free(e);
}

void ratelimit_expire(struct ratelimit *rl, uint64_t now)
{
	/* Oldest first: the first one still fresh means every newer one is too. */
	while (rl->oldest && now > rl->oldest->last_ns && now - rl->oldest->last_ns > IDLE_EXPIRY)
		entry_remove(rl, rl->oldest);
}

static bool entry_take(struct ratelimit *rl, struct ratelimit_entry *e, uint64_t now)
{
	/* Time never runs back for the one caller; if it did, no credit and no reordering. */
	if (now > e->last_ns) {
		uint64_t elapsed = now - e->last_ns;

		e->tokens = elapsed >= TOKEN_MAX - e->tokens ? TOKEN_MAX : e->tokens + elapsed;
		e->last_ns = now;
		age_unlink(rl, e);
		age_append(rl, e);
	}
	if (e->tokens < PACKET_COST)
		return false;
	e->tokens -= PACKET_COST;
	return true;
}

bool ratelimit_allow(struct ratelimit *rl, const struct sockaddr *src, uint64_t now)
{
	struct ratelimit_entry **chain, *e;
	struct rl_source s;

	if (!rl->buckets || !source_of(src, &s))
		return false;
	ratelimit_expire(rl, now);
	chain = chain_of(rl, &s);
	for (e = *chain; e; e = e->chain_next)
		if (!memcmp(&e->src, &s, sizeof(s)))
			return entry_take(rl, e, now);

	/* A new source: refused when full (as the kernel does), so memory stays bounded. */
	if (rl->count >= WG_RATELIMIT_MAX_SOURCES)
		return false;
	e = malloc(sizeof(*e));
	if (!e)
		return false;
	e->src = s;
	e->last_ns = now;
	e->tokens = TOKEN_MAX - PACKET_COST; /* this packet is the first of its burst */
	e->chain_next = *chain;
	e->chain_pprev = chain;
	if (*chain)
		(*chain)->chain_pprev = &e->chain_next;
	*chain = e;
	age_append(rl, e);
	rl->count++;
	return true;
}
