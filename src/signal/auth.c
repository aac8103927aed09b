/* SPDX-License-Identifier: MIT */
/*
 * Proof of key possession for the signal server (auth.h, docs/signaling.md "Subscribing").
 *
 * A nonce is timestamp(8, big-endian ms) || random(16) || MAC(16), where MAC is the first 16
 * bytes of BLAKE2b-256 keyed with a server secret over client_pub || timestamp || random. The
 * server keeps nothing per challenge; only nonces that were used are remembered, so that a
 * proof cannot be replayed while its nonce is still fresh.
 *
 * Used nonces live in two hash sets by epoch (timestamp / AUTH_NONCE_LIFETIME_MS): a fresh
 * nonce is at most one lifetime old, so it belongs to the current epoch or the previous one,
 * and a whole set is dropped when its epoch can hold no fresh nonce. An entry is thus kept for
 * one to two lifetimes, and AUTH_MAX_USED_NONCES counts both sets.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "signal/auth.h"

#define AUTH_DOMAIN    "wice-signal-subscribe-v1"
#define NONCE_TS_LEN   8
#define NONCE_RAND_LEN 16
#define NONCE_MAC_LEN  16
#define USED_MIN_SLOTS 64

/* Open addressing over the random part of the nonce, which the server chose (a client cannot
 * aim at a slot: the MAC binds it). An all-zero slot is empty; such a nonce is refused. */
struct used_set {
	uint8_t (*slots)[NONCE_RAND_LEN];
	size_t cap, count;
	uint64_t epoch;
};

struct auth_server {
	uint8_t private_key[WG_KEY_LEN];
	uint8_t public_key[WG_KEY_LEN];
	uint8_t secret[crypto_generichash_KEYBYTES];
	pthread_mutex_t lock;
	struct used_set cur, prev; /* epochs cur.epoch and cur.epoch - 1 */
};

struct auth_server *auth_server_new(void)
{
	struct auth_server *a;

	if (sodium_init() < 0)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	randombytes_buf(a->private_key, sizeof(a->private_key));
	crypto_scalarmult_base(a->public_key, a->private_key);
	randombytes_buf(a->secret, sizeof(a->secret));
	pthread_mutex_init(&a->lock, NULL);
	return a;
}

struct auth_server *auth_server_free(struct auth_server *a)
{
	if (!a)
		return NULL;
	free(a->cur.slots);
	free(a->prev.slots);
	pthread_mutex_destroy(&a->lock);
	sodium_memzero(a, sizeof(*a));
	free(a);
	return NULL;
}

void auth_server_public_key(const struct auth_server *a, uint8_t out[static WG_KEY_LEN])
{
	memcpy(out, a->public_key, WG_KEY_LEN);
}

static void nonce_mac(const struct auth_server *a, const uint8_t client_pub[static WG_KEY_LEN],
		      const uint8_t *ts_and_rand, uint8_t mac[static NONCE_MAC_LEN])
{
	crypto_generichash_state st;
	uint8_t full[crypto_generichash_BYTES];

	crypto_generichash_init(&st, a->secret, sizeof(a->secret), sizeof(full));
	crypto_generichash_update(&st, client_pub, WG_KEY_LEN);
	crypto_generichash_update(&st, ts_and_rand, NONCE_TS_LEN + NONCE_RAND_LEN);
	crypto_generichash_final(&st, full, sizeof(full));
	memcpy(mac, full, NONCE_MAC_LEN);
}

void auth_challenge(struct auth_server *a, const uint8_t client_pub[static WG_KEY_LEN],
		    uint64_t now_ms, uint8_t nonce[static AUTH_NONCE_LEN])
{
	for (int i = 0; i < NONCE_TS_LEN; i++)
		nonce[i] = (uint8_t)(now_ms >> (56 - 8 * i));
	randombytes_buf(nonce + NONCE_TS_LEN, NONCE_RAND_LEN);
	nonce_mac(a, client_pub, nonce, nonce + NONCE_TS_LEN + NONCE_RAND_LEN);
}

/* The proof both sides compute from their half of the Diffie-Hellman. */
static int proof_compute(const uint8_t shared_priv[static WG_KEY_LEN],
			 const uint8_t peer_pub[static WG_KEY_LEN],
			 const uint8_t client_pub[static WG_KEY_LEN],
			 const uint8_t server_pub[static WG_KEY_LEN],
			 const uint8_t nonce[static AUTH_NONCE_LEN],
			 uint8_t proof[static AUTH_PROOF_LEN])
{
	crypto_generichash_state st;
	uint8_t dh[WG_KEY_LEN];

	if (crypto_scalarmult(dh, shared_priv, peer_pub) || sodium_is_zero(dh, sizeof(dh))) {
		sodium_memzero(dh, sizeof(dh));
		return -EINVAL;
	}
	crypto_generichash_init(&st, dh, sizeof(dh), AUTH_PROOF_LEN);
	crypto_generichash_update(&st, (const uint8_t *)AUTH_DOMAIN, sizeof(AUTH_DOMAIN) - 1);
	crypto_generichash_update(&st, client_pub, WG_KEY_LEN);
	crypto_generichash_update(&st, server_pub, WG_KEY_LEN);
	crypto_generichash_update(&st, nonce, AUTH_NONCE_LEN);
	crypto_generichash_final(&st, proof, AUTH_PROOF_LEN);
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(dh, sizeof(dh));
	return 0;
}

int auth_prove(const struct envelope_key *key, const uint8_t server_pub[static WG_KEY_LEN],
	       const uint8_t nonce[static AUTH_NONCE_LEN], uint8_t proof[static AUTH_PROOF_LEN])
{
	if (sodium_init() < 0)
		return -EINVAL;
	return proof_compute(key->private_key, server_pub, key->public_key, server_pub, nonce,
			     proof);
}

static size_t slot_of(const struct used_set *u, const uint8_t rnd[static NONCE_RAND_LEN])
{
	uint64_t h;

	memcpy(&h, rnd, sizeof(h));
	return (size_t)(h & (u->cap - 1));
}

static bool used_contains(const struct used_set *u, const uint8_t rnd[static NONCE_RAND_LEN])
{
	if (!u->cap)
		return false;
	for (size_t i = slot_of(u, rnd);; i = (i + 1) & (u->cap - 1)) {
		if (sodium_is_zero(u->slots[i], NONCE_RAND_LEN))
			return false;
		if (!memcmp(u->slots[i], rnd, NONCE_RAND_LEN))
			return true;
	}
}

static void used_put(struct used_set *u, const uint8_t rnd[static NONCE_RAND_LEN])
{
	size_t i = slot_of(u, rnd);

	while (!sodium_is_zero(u->slots[i], NONCE_RAND_LEN))
		i = (i + 1) & (u->cap - 1);
	memcpy(u->slots[i], rnd, NONCE_RAND_LEN);
	u->count++;
}

/* Keeps the load at most one half, so probing always ends on an empty slot. */
static int used_insert(struct used_set *u, const uint8_t rnd[static NONCE_RAND_LEN])
{
	if ((u->count + 1) * 2 > u->cap) {
		struct used_set n = {.cap = u->cap ? u->cap * 2 : USED_MIN_SLOTS,
				     .epoch = u->epoch};

		n.slots = calloc(n.cap, sizeof(*n.slots));
		if (!n.slots)
			return -ENOMEM;
		for (size_t i = 0; i < u->cap; i++)
			if (!sodium_is_zero(u->slots[i], NONCE_RAND_LEN))
				used_put(&n, u->slots[i]);
		free(u->slots);
		*u = n;
	}
	used_put(u, rnd);
	return 0;
}

/* Moves the sets forward to now's epoch; now_ms never moves them back. */
static void used_advance(struct auth_server *a, uint64_t now_ms)
{
	uint64_t epoch = now_ms / AUTH_NONCE_LIFETIME_MS;

	if (epoch <= a->cur.epoch)
		return;
	free(a->prev.slots);
	if (epoch == a->cur.epoch + 1) {
		a->prev = a->cur;
	} else {
		free(a->cur.slots);
		a->prev = (struct used_set){.epoch = epoch - 1};
	}
	a->cur = (struct used_set){.epoch = epoch};
}

static int nonce_use(struct auth_server *a, uint64_t ts, const uint8_t rnd[NONCE_RAND_LEN],
		     uint64_t now_ms)
{
	struct used_set *u;
	int r = -EACCES;

	pthread_mutex_lock(&a->lock);
	used_advance(a, now_ms);
	u = ts / AUTH_NONCE_LIFETIME_MS == a->cur.epoch ? &a->cur : &a->prev;
	if (ts / AUTH_NONCE_LIFETIME_MS != u->epoch || used_contains(u, rnd))
		goto out;
	r = -EBUSY;
	if (a->cur.count + a->prev.count >= AUTH_MAX_USED_NONCES)
		goto out;
	r = used_insert(u, rnd) ? -EBUSY : 0;
out:
	pthread_mutex_unlock(&a->lock);
	return r;
}

int auth_verify(struct auth_server *a, const uint8_t client_pub[static WG_KEY_LEN], uint64_t now_ms,
		const uint8_t *nonce, size_t nonce_len, const uint8_t *proof, size_t proof_len)
{
	uint8_t mac[NONCE_MAC_LEN], want[AUTH_PROOF_LEN];
	const uint8_t *rnd;
	uint64_t ts = 0;
	int r = -EACCES;

	if (!nonce || !proof || nonce_len != AUTH_NONCE_LEN || proof_len != AUTH_PROOF_LEN)
		return -EACCES;
	rnd = nonce + NONCE_TS_LEN;
	nonce_mac(a, client_pub, nonce, mac);
	if (sodium_memcmp(mac, nonce + NONCE_TS_LEN + NONCE_RAND_LEN, NONCE_MAC_LEN))
		return -EACCES;
	for (int i = 0; i < NONCE_TS_LEN; i++)
		ts = ts << 8 | nonce[i];
	/* Issued by us at ts: refuse it once a lifetime has passed, or if our clock went back. */
	if (ts > now_ms || now_ms - ts > AUTH_NONCE_LIFETIME_MS ||
	    sodium_is_zero(rnd, NONCE_RAND_LEN))
		return -EACCES;
	if (proof_compute(a->private_key, client_pub, client_pub, a->public_key, nonce, want))
		goto out;
	if (sodium_memcmp(want, proof, AUTH_PROOF_LEN))
		goto out;
	r = nonce_use(a, ts, rnd, now_ms);
out:
	sodium_memzero(want, sizeof(want));
	return r;
}
