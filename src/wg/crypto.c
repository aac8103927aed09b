/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>
#include "wg/crypto.h"

static EVP_MD *blake2s;
static EVP_MAC *blake2s_mac;
static EVP_CIPHER *chacha_poly;

int wgcrypto_init(void)
{
	if (chacha_poly)
		return 0;
	if (sodium_init() < 0)
		return -EIO;
	/* Fetch once: implicit fetches on every call cost more than the work itself. */
	blake2s = EVP_MD_fetch(NULL, "BLAKE2S-256", NULL);
	blake2s_mac = EVP_MAC_fetch(NULL, "BLAKE2SMAC", NULL);
	chacha_poly = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	if (!blake2s || !blake2s_mac || !chacha_poly)
		return -ENOTSUP;
	return 0;
}

static void must(int ok)
{
	/* These calls fail only on allocation failure or a broken OpenSSL: nothing to recover. */
	if (!ok)
		abort();
}

void wgcrypto_hash(uint8_t out[static WG_HASH_LEN], const uint8_t *a, size_t alen, const uint8_t *b,
		   size_t blen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = WG_HASH_LEN;

	must(ctx && EVP_DigestInit_ex2(ctx, blake2s, NULL));
	must(EVP_DigestUpdate(ctx, a, alen));
	if (blen)
		must(EVP_DigestUpdate(ctx, b, blen));
	must(EVP_DigestFinal_ex(ctx, out, &n));
	EVP_MD_CTX_free(ctx);
}

void wgcrypto_mac(uint8_t out[static WG_COOKIE_LEN], const uint8_t *key, size_t keylen,
		  const uint8_t *in, size_t len)
{
	size_t outlen = WG_COOKIE_LEN;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &outlen),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(blake2s_mac);

	must(ctx && EVP_MAC_init(ctx, key, keylen, params));
	must(EVP_MAC_update(ctx, in, len));
	must(EVP_MAC_final(ctx, out, &outlen, WG_COOKIE_LEN));
	EVP_MAC_CTX_free(ctx);
}

/* HMAC-BLAKE2s by its definition (RFC 2104) over BLAKE2s' 64-byte block. */
static void hmac(uint8_t out[static WG_HASH_LEN], const uint8_t key[static WG_HASH_LEN],
		 const uint8_t *in, size_t len)
{
	uint8_t pad[64], inner[WG_HASH_LEN];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = WG_HASH_LEN;

	must(ctx != NULL);
	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < WG_HASH_LEN; i++)
		pad[i] ^= key[i];
	must(EVP_DigestInit_ex2(ctx, blake2s, NULL) && EVP_DigestUpdate(ctx, pad, sizeof(pad)) &&
	     EVP_DigestUpdate(ctx, in, len) && EVP_DigestFinal_ex(ctx, inner, &n));
	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < WG_HASH_LEN; i++)
		pad[i] ^= key[i];
	must(EVP_DigestInit_ex2(ctx, blake2s, NULL) && EVP_DigestUpdate(ctx, pad, sizeof(pad)) &&
	     EVP_DigestUpdate(ctx, inner, sizeof(inner)) && EVP_DigestFinal_ex(ctx, out, &n));
	EVP_MD_CTX_free(ctx);
	wgcrypto_wipe(pad, sizeof(pad));
	wgcrypto_wipe(inner, sizeof(inner));
}

void wgcrypto_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t ck[static WG_HASH_LEN],
		  const uint8_t *in, size_t len)
{
	uint8_t prk[WG_HASH_LEN], t[WG_HASH_LEN + 1];

	/* Paper 5.4: T0 = HMAC(ck, in); Ti = HMAC(T0, T(i-1) || i). */
	hmac(prk, ck, in, len);
	t[0] = 1;
	hmac(t, prk, t, 1);
	if (t1)
		memcpy(t1, t, WG_HASH_LEN);
	if (t2 || t3) {
		t[WG_HASH_LEN] = 2;
		hmac(t, prk, t, WG_HASH_LEN + 1);
		if (t2)
			memcpy(t2, t, WG_HASH_LEN);
	}
	if (t3) {
		t[WG_HASH_LEN] = 3;
		hmac(t, prk, t, WG_HASH_LEN + 1);
		memcpy(t3, t, WG_HASH_LEN);
	}
	wgcrypto_wipe(prk, sizeof(prk));
	wgcrypto_wipe(t, sizeof(t));
}

int wgcrypto_dh(uint8_t out[static WG_KEY_LEN], const uint8_t priv[static WG_KEY_LEN],
		const uint8_t pub[static WG_KEY_LEN])
{
	/* libsodium rejects an all-zero result (low-order public key) with -1. */
	if (crypto_scalarmult_curve25519(out, priv, pub) != 0) {
		wgcrypto_wipe(out, WG_KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

static void nonce96(uint8_t n[static 12], uint64_t counter)
{
	memset(n, 0, 4);
	for (int i = 0; i < 8; i++)
		n[4 + i] = (uint8_t)(counter >> (8 * i));
}

void wgcrypto_aead_seal(uint8_t *out, const uint8_t *in, size_t len, const uint8_t *ad,
			size_t adlen, uint64_t nonce, const uint8_t key[static WG_KEY_LEN])
{
	uint8_t n[12];

	nonce96(n, nonce);
	crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, len, ad, adlen, NULL, n, key);
}

int wgcrypto_aead_open(uint8_t *out, const uint8_t *in, size_t len, const uint8_t *ad, size_t adlen,
		       uint64_t nonce, const uint8_t key[static WG_KEY_LEN])
{
	uint8_t n[12];

	if (len < WG_AUTHTAG_LEN)
		return -EBADMSG;
	nonce96(n, nonce);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, len, ad, adlen, n, key))
		return -EBADMSG;
	return 0;
}

void wgcrypto_xaead_seal(uint8_t *out, const uint8_t *in, size_t len, const uint8_t *ad,
			 size_t adlen, const uint8_t nonce[static WG_COOKIE_NONCE_LEN],
			 const uint8_t key[static 32])
{
	crypto_aead_xchacha20poly1305_ietf_encrypt(out, NULL, in, len, ad, adlen, NULL, nonce, key);
}

int wgcrypto_xaead_open(uint8_t *out, const uint8_t *in, size_t len, const uint8_t *ad,
			size_t adlen, const uint8_t nonce[static WG_COOKIE_NONCE_LEN],
			const uint8_t key[static 32])
{
	if (len < WG_AUTHTAG_LEN)
		return -EBADMSG;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, in, len, ad, adlen, nonce,
						       key))
		return -EBADMSG;
	return 0;
}

void wgcrypto_random(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

uint32_t wgcrypto_random_u32(void)
{
	return randombytes_random();
}

void wgcrypto_wipe(void *buf, size_t len)
{
	sodium_memzero(buf, len);
}

bool wgcrypto_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

int wgcrypto_data_ctx_init(struct wgcrypto_data_ctx *c, bool encrypt)
{
	c->evp = EVP_CIPHER_CTX_new();
	c->key_id = 0;
	c->encrypt = encrypt;
	if (!c->evp)
		return -ENOMEM;
	if (!EVP_CipherInit_ex2(c->evp, chacha_poly, NULL, NULL, encrypt, NULL)) {
		EVP_CIPHER_CTX_free(c->evp);
		c->evp = NULL;
		return -EIO;
	}
	return 0;
}

void wgcrypto_data_ctx_free(struct wgcrypto_data_ctx *c)
{
	/* EVP_CIPHER_CTX_free cleanses the key schedule. */
	EVP_CIPHER_CTX_free(c->evp);
	c->evp = NULL;
	c->key_id = 0;
}

static int data_rekey(struct wgcrypto_data_ctx *c, uint64_t key_id, const uint8_t key[static 32],
		      const uint8_t n[static 12])
{
	if (c->key_id != key_id) {
		if (!EVP_CipherInit_ex2(c->evp, NULL, key, n, c->encrypt, NULL))
			return -EIO;
		c->key_id = key_id;
		return 0;
	}
	return EVP_CipherInit_ex2(c->evp, NULL, NULL, n, c->encrypt, NULL) ? 0 : -EIO;
}

int wgcrypto_data_seal(struct wgcrypto_data_ctx *c, uint64_t key_id, const uint8_t key[static 32],
		       uint64_t nonce, uint8_t *buf, size_t len)
{
	uint8_t n[12];
	int outl = 0, fin = 0;

	nonce96(n, nonce);
	if (data_rekey(c, key_id, key, n) ||
	    (len && !EVP_CipherUpdate(c->evp, buf, &outl, buf, (int)len)) ||
	    !EVP_CipherFinal_ex(c->evp, buf + outl, &fin) ||
	    !EVP_CIPHER_CTX_ctrl(c->evp, EVP_CTRL_AEAD_GET_TAG, WG_AUTHTAG_LEN, buf + len))
		return -EIO;
	return 0;
}

int wgcrypto_data_open(struct wgcrypto_data_ctx *c, uint64_t key_id, const uint8_t key[static 32],
		       uint64_t nonce, uint8_t *buf, size_t len)
{
	uint8_t n[12];
	int outl = 0, fin = 0;
	size_t plen;

	if (len < WG_AUTHTAG_LEN)
		return -EBADMSG;
	plen = len - WG_AUTHTAG_LEN;
	nonce96(n, nonce);
	if (data_rekey(c, key_id, key, n))
		return -EIO;
	if (!EVP_CIPHER_CTX_ctrl(c->evp, EVP_CTRL_AEAD_SET_TAG, WG_AUTHTAG_LEN, buf + plen))
		return -EIO;
	if (plen && !EVP_CipherUpdate(c->evp, buf, &outl, buf, (int)plen))
		return -EIO;
	if (!EVP_CipherFinal_ex(c->evp, buf + outl, &fin))
		return -EBADMSG;
	return 0;
}
