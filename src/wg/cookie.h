/* SPDX-License-Identifier: MIT */
/*
 * mac1/mac2 and cookie replies (paper, section 5.4.7), the DoS mitigation for handshakes.
 * The checker (ours) validates incoming macs and makes cookies; the per-peer maker remembers
 * the last mac1 we sent and the cookie the peer gave us.
 */
#ifndef WICE_WG_COOKIE_H
#define WICE_WG_COOKIE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "wg/messages.h"

struct cookie_checker {
	uint8_t secret[WG_HASH_LEN];
	uint64_t secret_birthdate_ns;
	uint8_t message_mac1_key[WG_KEY_LEN];
	uint8_t cookie_encryption_key[WG_KEY_LEN];
};

struct cookie_maker {
	uint8_t cookie[WG_COOKIE_LEN];
	uint64_t cookie_birthdate_ns; /* 0: no valid cookie */
	bool have_sent_mac1;
	uint8_t last_mac1_sent[WG_COOKIE_LEN];
	uint8_t message_mac1_key[WG_KEY_LEN];
	uint8_t cookie_decryption_key[WG_KEY_LEN];
};

enum cookie_mac_state {
	COOKIE_INVALID_MAC,
	COOKIE_VALID_MAC_BUT_NO_COOKIE,
	COOKIE_VALID_MAC_WITH_COOKIE,
};

/* Both keys derive from the static public key the macs are computed against. */
void cookie_checker_init(struct cookie_checker *c, const uint8_t local_public[static WG_KEY_LEN]);
void cookie_maker_init(struct cookie_maker *m, const uint8_t remote_public[static WG_KEY_LEN]);

/* msg/len is a whole handshake message whose last 32 bytes are mac1 || mac2. */
enum cookie_mac_state cookie_validate(struct cookie_checker *c, const uint8_t *msg, size_t len,
				      const struct sockaddr *src, bool check_cookie);
void cookie_add_macs(struct cookie_maker *m, uint8_t *msg, size_t len);
void cookie_make_reply(struct cookie_checker *c, struct wg_message_handshake_cookie *reply,
		       const uint8_t *msg, size_t len, uint32_t receiver_index,
		       const struct sockaddr *src);
/* Store the cookie a peer sent us. -EBADMSG if it does not decrypt against our last mac1. */
int cookie_consume_reply(struct cookie_maker *m, const struct wg_message_handshake_cookie *reply);

#endif
