/* SPDX-License-Identifier: MIT */
/*
 * WireGuard wire formats and protocol limits, in one place. Values are the ones the WireGuard
 * paper (section 6) and the Linux driver use; every other file takes them from here.
 */
#ifndef WICE_WG_MESSAGES_H
#define WICE_WG_MESSAGES_H

#include <stdint.h>
#include <stddef.h>
#include <endian.h>

#define WG_KEY_LEN	    32
#define WG_HASH_LEN	    32
#define WG_COOKIE_LEN	    16
#define WG_COOKIE_NONCE_LEN 24
#define WG_TIMESTAMP_LEN    12
#define WG_AUTHTAG_LEN	    16
#define WG_KEY_B64_LEN	    44 /* base64 of 32 bytes, with one '=' of padding */

/* Paper, section 6.4 and the timers of section 6.5. Times in seconds. */
#define WG_REKEY_AFTER_MESSAGES	   (1ULL << 60)
#define WG_REJECT_AFTER_MESSAGES   (UINT64_MAX - (1ULL << 13) - 1)
#define WG_REKEY_TIMEOUT	   5
#define WG_REKEY_TIMEOUT_JITTER_MS 334
#define WG_KEEPALIVE_TIMEOUT	   10
#define WG_REKEY_AFTER_TIME	   120
#define WG_REJECT_AFTER_TIME	   180
#define WG_INITIATIONS_PER_SECOND  50
#define WG_MAX_PEERS_PER_DEVICE	   (1U << 20)
#define WG_MAX_TIMER_HANDSHAKES	   (90 / WG_REKEY_TIMEOUT)
#define WG_COOKIE_SECRET_MAX_AGE   120

/*
 * Limits a remote party could try to exhaust. Incoming handshakes queue for the control
 * thread; once the queue is an eighth full we are "under load" and demand a cookie (mac2).
 * Packets for a peer with no session wait in a bounded staging queue.
 */
#define WG_MAX_QUEUED_HANDSHAKES 4096
#define WG_UNDER_LOAD_THRESHOLD	 (WG_MAX_QUEUED_HANDSHAKES / 8)
#define WG_UNDER_LOAD_AFTER_TIME 1 /* seconds we stay "under load" once the queue drains */
#define WG_MAX_STAGED_PACKETS	 128

/*
 * Under load a valid cookie proves only that a source can receive at its address, not that it
 * is polite: one host echoing cookies could still keep the control thread busy with Diffie-
 * Hellman for everyone. So, as the Linux driver does (ratelimiter.c), each source also needs a
 * token from its own bucket: 20 handshake messages a second, bursts of 5. A source is an IPv4
 * address or an IPv6 /64 (one host's usual allocation, so a host cannot step through its own
 * prefix). The table of sources is bounded; when full, new sources are refused (known ones are
 * still served) until one has been idle for a second and expires.
 */
#define WG_RATELIMIT_PACKETS_PER_SECOND 20
#define WG_RATELIMIT_BURST		5
#define WG_RATELIMIT_MAX_SOURCES	8192
#define WG_RATELIMIT_IDLE_EXPIRY	1 /* seconds without a packet before a source is forgotten */
#define WG_RATELIMIT_IPV6_PREFIX_LEN	64

/* Anti-replay window (RFC 6479 style bitmap), the size the Linux driver uses. */
#define WG_COUNTER_BITS_TOTAL  8192
#define WG_COUNTER_WINDOW_SIZE (WG_COUNTER_BITS_TOTAL - 64)

#define WG_DEFAULT_MTU	   1420
#define WG_MESSAGE_PADDING 16
#define WG_MAX_PACKET	   65535

enum wg_message_type {
	WG_MSG_INVALID = 0,
	WG_MSG_HANDSHAKE_INITIATION = 1,
	WG_MSG_HANDSHAKE_RESPONSE = 2,
	WG_MSG_HANDSHAKE_COOKIE = 3,
	WG_MSG_DATA = 4,
};

/* The first four bytes: a type and three reserved zero bytes, little-endian as one u32. */
struct wg_message_header {
	uint32_t type;
} __attribute__((packed));

struct wg_message_macs {
	uint8_t mac1[WG_COOKIE_LEN];
	uint8_t mac2[WG_COOKIE_LEN];
} __attribute__((packed));

struct wg_message_handshake_initiation {
	struct wg_message_header header;
	uint32_t sender_index;
	uint8_t unencrypted_ephemeral[WG_KEY_LEN];
	uint8_t encrypted_static[WG_KEY_LEN + WG_AUTHTAG_LEN];
	uint8_t encrypted_timestamp[WG_TIMESTAMP_LEN + WG_AUTHTAG_LEN];
	struct wg_message_macs macs;
} __attribute__((packed));

struct wg_message_handshake_response {
	struct wg_message_header header;
	uint32_t sender_index;
	uint32_t receiver_index;
	uint8_t unencrypted_ephemeral[WG_KEY_LEN];
	uint8_t encrypted_nothing[WG_AUTHTAG_LEN];
	struct wg_message_macs macs;
} __attribute__((packed));

struct wg_message_handshake_cookie {
	struct wg_message_header header;
	uint32_t receiver_index;
	uint8_t nonce[WG_COOKIE_NONCE_LEN];
	uint8_t encrypted_cookie[WG_COOKIE_LEN + WG_AUTHTAG_LEN];
} __attribute__((packed));

struct wg_message_data {
	struct wg_message_header header;
	uint32_t key_idx;
	uint64_t counter;
	uint8_t encrypted_data[];
} __attribute__((packed));

#define WG_DATA_HEADER_LEN sizeof(struct wg_message_data)
#define WG_DATA_OVERHEAD   (WG_DATA_HEADER_LEN + WG_AUTHTAG_LEN)
#define WG_DATA_MIN_LEN	   WG_DATA_OVERHEAD /* a keepalive: empty payload */

static inline size_t wg_padded_len(size_t len, size_t mtu)
{
	size_t padded = (len + WG_MESSAGE_PADDING - 1) & ~(size_t)(WG_MESSAGE_PADDING - 1);

	/* Pad to a multiple of 16, but never beyond the MTU (paper, section 5.4.6). */
	if (padded > mtu && len <= mtu)
		padded = mtu;
	return padded;
}

_Static_assert(sizeof(struct wg_message_handshake_initiation) == 148, "initiation size");
_Static_assert(sizeof(struct wg_message_handshake_response) == 92, "response size");
_Static_assert(sizeof(struct wg_message_handshake_cookie) == 64, "cookie size");
_Static_assert(sizeof(struct wg_message_data) == 16, "data header size");

#endif
