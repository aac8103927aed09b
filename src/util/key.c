// SPDX-License-Identifier: MIT
/*
 * Key encodings and generation. Encoders and decoders classify characters with arithmetic
 * masks instead of branches or table lookups, so the time they take does not depend on the
 * key's bytes; only the validity of the whole input decides a branch, at the very end.
 */
#include <errno.h>
#include <string.h>
#include <sodium.h>
#include "util/key.h"

/*
 * All ones when lo <= c <= hi, else zero. c, lo and hi lie in [0, 255] so both differences
 * fit an int; their sign bits say "c >= lo" and "c <= hi".
 */
static inline int ct_in_range(int c, int lo, int hi)
{
	unsigned int both = (unsigned int)(lo - 1 - c) & (unsigned int)(c - hi - 1);

	return -(int)(both >> 31);
}

/* RFC 4648, section 4: the 6-bit value of a base64 character, or -1. */
static inline int b64_decode_char(int c)
{
	int v = -1;

	v += ct_in_range(c, 'A', 'Z') & (c - 'A' + 1);
	v += ct_in_range(c, 'a', 'z') & (c - 'a' + 26 + 1);
	v += ct_in_range(c, '0', '9') & (c - '0' + 52 + 1);
	v += ct_in_range(c, '+', '+') & (62 + 1);
	v += ct_in_range(c, '/', '/') & (63 + 1);
	return v;
}

static inline char b64_encode_char(int v)
{
	int c = 0;

	c |= ct_in_range(v, 0, 25) & (v + 'A');
	c |= ct_in_range(v, 26, 51) & (v - 26 + 'a');
	c |= ct_in_range(v, 52, 61) & (v - 52 + '0');
	c |= ct_in_range(v, 62, 62) & '+';
	c |= ct_in_range(v, 63, 63) & '/';
	return (char)c;
}

static inline int hex_decode_char(int c)
{
	int v = -1;

	v += ct_in_range(c, '0', '9') & (c - '0' + 1);
	v += ct_in_range(c, 'a', 'f') & (c - 'a' + 10 + 1);
	v += ct_in_range(c, 'A', 'F') & (c - 'A' + 10 + 1);
	return v;
}

static inline char hex_encode_char(int v)
{
	return (char)('0' + v + (ct_in_range(v, 10, 15) & ('a' - '0' - 10)));
}

void key_to_base64(char out[static WG_KEY_B64_LEN + 1], const uint8_t key[static WG_KEY_LEN])
{
	unsigned int i, word;

	/* Ten full groups: 3 bytes -> 4 characters. */
	for (i = 0; i < WG_KEY_LEN / 3; i++) {
		word = (unsigned int)key[i * 3] << 16 | (unsigned int)key[i * 3 + 1] << 8 |
		       key[i * 3 + 2];
		out[i * 4 + 0] = b64_encode_char((int)(word >> 18) & 63);
		out[i * 4 + 1] = b64_encode_char((int)(word >> 12) & 63);
		out[i * 4 + 2] = b64_encode_char((int)(word >> 6) & 63);
		out[i * 4 + 3] = b64_encode_char((int)word & 63);
	}
	/* The last 2 bytes make 16 bits: three characters, the third carrying 2 zero bits. */
	word = (unsigned int)key[30] << 16 | (unsigned int)key[31] << 8;
	out[40] = b64_encode_char((int)(word >> 18) & 63);
	out[41] = b64_encode_char((int)(word >> 12) & 63);
	out[42] = b64_encode_char((int)(word >> 6) & 63);
	out[43] = '=';
	out[44] = '\0';
	sodium_memzero(&word, sizeof(word));
}

int key_from_base64(uint8_t key[static WG_KEY_LEN], const char *b64)
{
	uint8_t tmp[WG_KEY_LEN];
	unsigned int i, j, word, bad = 0;
	int d[4];

	if (strnlen(b64, WG_KEY_B64_LEN + 1) != WG_KEY_B64_LEN || b64[WG_KEY_B64_LEN - 1] != '=')
		return -EINVAL;

	for (i = 0; i < WG_KEY_LEN / 3; i++) {
		for (j = 0; j < 4; j++) {
			d[j] = b64_decode_char((unsigned char)b64[i * 4 + j]);
			bad |= (unsigned int)d[j] >> 31;
		}
		word = (unsigned int)d[0] << 18 | (unsigned int)d[1] << 12 |
		       (unsigned int)d[2] << 6 | (unsigned int)d[3];
		tmp[i * 3 + 0] = (uint8_t)(word >> 16);
		tmp[i * 3 + 1] = (uint8_t)(word >> 8);
		tmp[i * 3 + 2] = (uint8_t)word;
	}
	for (j = 0; j < 3; j++) {
		d[j] = b64_decode_char((unsigned char)b64[40 + j]);
		bad |= (unsigned int)d[j] >> 31;
	}
	/*
	 * RFC 4648, section 3.5: the pad bits of the last character must be zero, or several
	 * strings would decode to one key.
	 */
	bad |= (unsigned int)d[2] & 3;
	word = (unsigned int)d[0] << 18 | (unsigned int)d[1] << 12 | (unsigned int)d[2] << 6;
	tmp[30] = (uint8_t)(word >> 16);
	tmp[31] = (uint8_t)(word >> 8);

	if (!bad)
		memcpy(key, tmp, WG_KEY_LEN);
	sodium_memzero(tmp, sizeof(tmp));
	sodium_memzero(d, sizeof(d));
	sodium_memzero(&word, sizeof(word));
	return bad ? -EINVAL : 0;
}

void key_to_hex(char out[static 2 * WG_KEY_LEN + 1], const uint8_t key[static WG_KEY_LEN])
{
	unsigned int i;

	for (i = 0; i < WG_KEY_LEN; i++) {
		out[i * 2] = hex_encode_char(key[i] >> 4);
		out[i * 2 + 1] = hex_encode_char(key[i] & 0xf);
	}
	out[2 * WG_KEY_LEN] = '\0';
}

int key_from_hex(uint8_t key[static WG_KEY_LEN], const char *hex)
{
	uint8_t tmp[WG_KEY_LEN];
	unsigned int i, bad = 0;
	int hi, lo;

	if (strnlen(hex, 2 * WG_KEY_LEN + 1) != 2 * WG_KEY_LEN)
		return -EINVAL;

	for (i = 0; i < WG_KEY_LEN; i++) {
		hi = hex_decode_char((unsigned char)hex[i * 2]);
		lo = hex_decode_char((unsigned char)hex[i * 2 + 1]);
		bad |= ((unsigned int)hi | (unsigned int)lo) >> 31;
		tmp[i] = (uint8_t)((unsigned int)hi << 4 | (unsigned int)lo);
	}

	if (!bad)
		memcpy(key, tmp, WG_KEY_LEN);
	sodium_memzero(tmp, sizeof(tmp));
	sodium_memzero(&hi, sizeof(hi));
	sodium_memzero(&lo, sizeof(lo));
	return bad ? -EINVAL : 0;
}

bool key_is_zero(const uint8_t key[static WG_KEY_LEN])
{
	return sodium_is_zero(key, WG_KEY_LEN) == 1;
}

bool key_equal(const uint8_t a[static WG_KEY_LEN], const uint8_t b[static WG_KEY_LEN])
{
	return sodium_memcmp(a, b, WG_KEY_LEN) == 0;
}

/* sodium_init() is idempotent and thread-safe; it returns 1 once already initialised. */
static int sodium_ready(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

void key_clamp(uint8_t key[static WG_KEY_LEN])
{
	/* RFC 7748, section 5, decodeScalar25519. */
	key[0] &= 248;
	key[31] &= 127;
	key[31] |= 64;
}

int key_generate_preshared(uint8_t key[static WG_KEY_LEN])
{
	int r = sodium_ready();

	if (r < 0)
		return r;
	randombytes_buf(key, WG_KEY_LEN);
	return 0;
}

int key_generate_private(uint8_t key[static WG_KEY_LEN])
{
	int r = key_generate_preshared(key);

	if (r < 0)
		return r;
	key_clamp(key);
	return 0;
}

int key_public_from_private(uint8_t pub[static WG_KEY_LEN], const uint8_t priv[static WG_KEY_LEN])
{
	uint8_t tmp[WG_KEY_LEN];

	if (sodium_ready() < 0)
		return -EINVAL;
	/* libsodium clamps the scalar itself, so an unclamped private key gives the same result. */
	if (crypto_scalarmult_curve25519_base(tmp, priv) != 0) {
		sodium_memzero(tmp, sizeof(tmp));
		return -EINVAL;
	}
	memcpy(pub, tmp, WG_KEY_LEN);
	sodium_memzero(tmp, sizeof(tmp));
	return 0;
}
