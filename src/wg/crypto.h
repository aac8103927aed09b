/* SPDX-License-Identifier: MIT */
/*
 * The primitives of the WireGuard paper, section 5.4, built from OpenSSL 3 and libsodium:
 * HASH = BLAKE2s-256, MAC = keyed BLAKE2s-128, HMAC = HMAC-BLAKE2s, KDF = HKDF over that HMAC,
 * DH = X25519, AEAD = ChaCha20-Poly1305 (RFC 8439) with a 64-bit little-endian counter nonce,
 * XAEAD = XChaCha20-Poly1305. Nothing here is hand-rolled.
 */
#ifndef WICE_WG_CRYPTO_H
#define WICE_WG_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "wg/messages.h"

int wgcrypto_init(void);

void wgcrypto_hash(uint8_t out[static WG_HASH_LEN], const uint8_t *a, size_t alen, const uint8_t *b,
		   size_t blen);
void wgcrypto_mac(uint8_t out[static WG_COOKIE_LEN], const uint8_t *key, size_t keylen,
		  const uint8_t *in, size_t len);
/* Noise KDF_n (n = 1..3 outputs; NULL outputs are skipped). */
void wgcrypto_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t ck[static WG_HASH_LEN],
		  const uint8_t *in, size_t len);
/* X25519; -EINVAL when the result is all zero (a low-order point). */
int wgcrypto_dh(uint8_t out[static WG_KEY_LEN], const uint8_t priv[static WG_KEY_LEN],
		const uint8_t pub[static WG_KEY_LEN]);

/* out = ciphertext || tag (len + 16 bytes); in and out may be equal. */
void wgcrypto_aead_seal(uint8_t *out, const uint8_t *in, size_t len, const uint8_t *ad,
			size_t adlen, uint64_t nonce, const uint8_t key[static WG_KEY_LEN]);
/* in holds len bytes of ciphertext || tag; out gets len - 16. -EBADMSG when not authentic. */
int wgcrypto_aead_open(uint8_t *out, const uint8_t *in, size_t len, const uint8_t *ad, size_t adlen,
		       uint64_t nonce, const uint8_t key[static WG_KEY_LEN]);
void wgcrypto_xaead_seal(uint8_t *out, const uint8_t *in, size_t len, const uint8_t *ad,
			 size_t adlen, const uint8_t nonce[static WG_COOKIE_NONCE_LEN],
			 const uint8_t key[static 32]);
int wgcrypto_xaead_open(uint8_t *out, const uint8_t *in, size_t len, const uint8_t *ad,
			size_t adlen, const uint8_t nonce[static WG_COOKIE_NONCE_LEN],
			const uint8_t key[static 32]);

void wgcrypto_random(void *buf, size_t len);
uint32_t wgcrypto_random_u32(void);
void wgcrypto_wipe(void *buf, size_t len);
bool wgcrypto_equal(const void *a, const void *b, size_t len); /* constant time */

/*
 * The data plane's AEAD: one OpenSSL cipher context per thread and direction, re-keyed only
 * when the keypair changes (key_id), so a packet costs one nonce set, one pass, one tag.
 */
struct wgcrypto_data_ctx {
	void *evp; /* EVP_CIPHER_CTX */
	uint64_t key_id;
	bool encrypt;
};

int wgcrypto_data_ctx_init(struct wgcrypto_data_ctx *c, bool encrypt);
void wgcrypto_data_ctx_free(struct wgcrypto_data_ctx *c);
/* Encrypt buf[0..len) in place and append the 16-byte tag at buf + len. */
int wgcrypto_data_seal(struct wgcrypto_data_ctx *c, uint64_t key_id, const uint8_t key[static 32],
		       uint64_t nonce, uint8_t *buf, size_t len);
/* Decrypt len bytes of ciphertext || tag in place; -EBADMSG when not authentic. */
int wgcrypto_data_open(struct wgcrypto_data_ctx *c, uint64_t key_id, const uint8_t key[static 32],
		       uint64_t nonce, uint8_t *buf, size_t len);

#endif
