/* SPDX-License-Identifier: MIT */
/*
 * Proof of key possession for subscribing to a public key at the signal server. WireGuard keys
 * are X25519 keys, which cannot sign; the proof is a MAC under the Diffie-Hellman of the
 * subscriber's key and the server's, over a single-use nonce the server issued:
 *
 *   proof = BLAKE2b-256(key = X25519(client_priv, server_pub),
 *                       "wice-signal-subscribe-v1" || client_pub || server_pub || nonce)
 *
 * The server recomputes it with X25519(server_priv, client_pub). Nonces are stateless to
 * issue (a timestamp, random bytes and a MAC under a server secret) and remembered once used
 * until they expire, so a proof cannot be replayed.
 */
#ifndef WICE_SIGNAL_AUTH_H
#define WICE_SIGNAL_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include "signal/envelope.h"

#define AUTH_NONCE_LEN	       40 /* 8 timestamp + 16 random + 16 MAC */
#define AUTH_PROOF_LEN	       32
#define AUTH_NONCE_LIFETIME_MS 30000
#define AUTH_MAX_USED_NONCES   65536 /* each kept 1-2 lifetimes; beyond, proofs get -EBUSY */

struct auth_server;

struct auth_server *auth_server_new(void);
struct auth_server *auth_server_free(struct auth_server *a);
void auth_server_public_key(const struct auth_server *a, uint8_t out[static WG_KEY_LEN]);
/* A fresh nonce for client_pub. Thread-safe. */
void auth_challenge(struct auth_server *a, const uint8_t client_pub[static WG_KEY_LEN],
		    uint64_t now_ms, uint8_t nonce[static AUTH_NONCE_LEN]);
/* 0 when proof is right for a nonce we issued to client_pub, unexpired and unused (it is
 * then marked used); -EACCES otherwise; -EBUSY when too many nonces are in use. Thread-safe. */
int auth_verify(struct auth_server *a, const uint8_t client_pub[static WG_KEY_LEN], uint64_t now_ms,
		const uint8_t *nonce, size_t nonce_len, const uint8_t *proof, size_t proof_len);

/* Client side. Returns 0 or -EINVAL (bad server key). */
int auth_prove(const struct envelope_key *key, const uint8_t server_pub[static WG_KEY_LEN],
	       const uint8_t nonce[static AUTH_NONCE_LEN], uint8_t proof[static AUTH_PROOF_LEN]);

#endif
