/* SPDX-License-Identifier: MIT */
/*
 * Sealed signaling envelopes. A Message (proto/signaling.proto) is sealed from the sender's
 * WireGuard static key to the recipient's: only the recipient can open it, and opening proves
 * the sender holds its private key. docs/signaling.md gives the construction and reasons.
 */
#ifndef WICE_SIGNAL_ENVELOPE_H
#define WICE_SIGNAL_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "signaling.pb-c.h"
#include "wg/messages.h"

#define ENVELOPE_NONCE_LEN	  24
#define ENVELOPE_MAX_SIZE	  (64u << 10) /* an encoded Envelope; larger ones are refused */
#define ENVELOPE_MAX_MESSAGE	  (60u << 10) /* an encoded Message before sealing */
#define ENVELOPE_MAX_CANDIDATES	  64
#define ENVELOPE_REPLAY_WINDOW_MS 120000 /* older (or further in the future) is stale */
#define ENVELOPE_REPLAY_PER_SENDER 4096	 /* nonces remembered per sender */
#define ENVELOPE_REPLAY_SENDERS	  1024	 /* senders remembered; least recently seen goes */

struct envelope_key {
	uint8_t private_key[WG_KEY_LEN];
	uint8_t public_key[WG_KEY_LEN];
};

/*
 * Seal msg from self to recipient. On success *ret_buf is a malloc'd encoded Envelope of
 * *ret_len bytes. msg->timestamp_ms is set to now when zero. Returns 0, -EINVAL (message too
 * large, bad key), -ENOMEM.
 */
int envelope_seal(const struct envelope_key *self, const uint8_t recipient[static WG_KEY_LEN],
		  Wice__Signaling__Message *msg, uint8_t **ret_buf, size_t *ret_len);

/* Replay protection state of one recipient; see envelope_open. */
struct envelope_replay;
struct envelope_replay *envelope_replay_new(void);
struct envelope_replay *envelope_replay_free(struct envelope_replay *r);

/*
 * Decode and open an encoded Envelope addressed to self. On success *ret_msg is the decoded
 * Message (free with wice__signaling__message__free_unpacked(msg, NULL)) and ret_sender the
 * authenticated sender's public key. With replay non-NULL, an envelope whose nonce was seen
 * before or whose timestamp is outside ENVELOPE_REPLAY_WINDOW_MS of now_ms is refused.
 * Returns 0, -EBADMSG (malformed, or not authentic), -ENOENT (not addressed to self),
 * -EALREADY (replayed), -ESTALE (too old or too far in the future). Nothing is recorded for a
 * refused envelope.
 */
int envelope_open(const struct envelope_key *self, struct envelope_replay *replay,
		  uint64_t now_ms, const uint8_t *buf, size_t len,
		  uint8_t ret_sender[static WG_KEY_LEN], Wice__Signaling__Message **ret_msg);

/* Decode only the routing fields of an encoded Envelope (what a server sees). */
int envelope_peek(const uint8_t *buf, size_t len, uint8_t ret_sender[static WG_KEY_LEN],
		  uint8_t ret_recipient[static WG_KEY_LEN]);

uint64_t envelope_now_ms(void);

#endif
