/* SPDX-License-Identifier: MIT */
/*
 * Key encodings: base64 (what wg(8) prints and reads) and lowercase hex (what the UAPI
 * speaks). Decoding runs in constant time over the input so that parsing a secret key leaks
 * nothing through timing, as wireguard-tools does.
 */
#ifndef WICE_UTIL_KEY_H
#define WICE_UTIL_KEY_H

#include <stdbool.h>
#include <stdint.h>
#include "wg/messages.h"

/* out gets WG_KEY_B64_LEN characters and a NUL. */
void key_to_base64(char out[static WG_KEY_B64_LEN + 1], const uint8_t key[static WG_KEY_LEN]);
/* Exactly 44 characters ending in '=', canonical. Returns 0 or -EINVAL; key untouched on error. */
int key_from_base64(uint8_t key[static WG_KEY_LEN], const char *b64);
/* out gets 64 lowercase hex characters and a NUL. */
void key_to_hex(char out[static 2 * WG_KEY_LEN + 1], const uint8_t key[static WG_KEY_LEN]);
/* Exactly 64 hex characters (either case). Returns 0 or -EINVAL; key untouched on error. */
int key_from_hex(uint8_t key[static WG_KEY_LEN], const char *hex);
/* Constant-time: true when every byte is zero. */
bool key_is_zero(const uint8_t key[static WG_KEY_LEN]);
/* Constant-time equality. */
bool key_equal(const uint8_t a[static WG_KEY_LEN], const uint8_t b[static WG_KEY_LEN]);

/* Fresh random private key, clamped as Curve25519 requires (RFC 7748, section 5). */
int key_generate_private(uint8_t key[static WG_KEY_LEN]);
/* Fresh random pre-shared key (not clamped). */
int key_generate_preshared(uint8_t key[static WG_KEY_LEN]);
/* X25519 public key of a private key. Returns 0 or -EINVAL. */
int key_public_from_private(uint8_t pub[static WG_KEY_LEN], const uint8_t priv[static WG_KEY_LEN]);
void key_clamp(uint8_t key[static WG_KEY_LEN]);

#endif
