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

#define ENVELOPE_NONCE_LEN	   24
#define ENVELOPE_MAX_SIZE	   (64u << 10) /* an encoded Envelope; larger ones are refused */
#define ENVELOPE_MAX_MESSAGE	   (60u << 10) /* an encoded Message before sealing */
#define ENVELOPE_MAX_CANDIDATES	   64
#define ENVELOPE_REPLAY_WINDOW_MS  120000 /* older (or further in the future) is stale */
#define ENVELOPE_REPLAY_PER_SENDER 4096	  /* nonces remembered per sender */
#define ENVELOPE_REPLAY_SENDERS	   1024	  /* senders remembered; least recently seen goes */

/* Sanity limits on what a Message may carry; a sealed or opened Message beyond them is
 * refused (-EINVAL when sealing, -EBADMSG when opening). */
#define ENVELOPE_MAX_STRING	    256 /* ufrag, pwd, foundation, (related) address, peer name */
#define ENVELOPE_MAX_PEER_ADDRESSES 64
#define ENVELOPE_DOMAIN		    "wice-signaling-v1 envelope" /* key derivation label */

struct envelope_key {
	uint8_t private_key[WG_KEY_LEN];
	uint8_t public_key[WG_KEY_LEN];
};

/*
 * Seal msg from self to recipient. On success *ret_buf is a malloc'd encoded Envelope of
 * *ret_len bytes. msg->timestamp_ms is set to now when zero. Returns 0, -EINVAL (message too
 * large or over the limits below, carrying unknown fields, or a recipient key of small
 * order), -ENOMEM.
 */
int envelope_seal(const struct envelope_key *self, const uint8_t recipient[static WG_KEY_LEN],
		  Wice__Signaling__Message *msg, uint8_t **ret_buf, size_t *ret_len);

/*
 * Replay protection state of one recipient; see envelope_open. Thread-safe (one mutex).
 *
 * Per sender it remembers the nonces of authenticated envelopes for ENVELOPE_REPLAY_WINDOW_MS
 * (a keyed 64-bit digest of each; a collision can only refuse a fresh envelope, never accept a
 * replay), at most ENVELOPE_REPLAY_PER_SENDER of them. When a sender's set is full, entries
 * older than the window go first; if it is still full, the entry with the oldest timestamp is
 * evicted and from then on every envelope of that sender whose timestamp is not newer than the
 * evicted one is refused with -ESTALE, because we could no longer tell whether it is a replay.
 * At most ENVELOPE_REPLAY_SENDERS senders are remembered; the least recently seen one is
 * dropped, and then, for the same reason, an envelope from a sender we hold no state for is
 * refused (-ESTALE) unless it is newer than everything we dropped. Memory is therefore bounded
 * by about 16 bytes x ENVELOPE_REPLAY_PER_SENDER x ENVELOPE_REPLAY_SENDERS (64 MiB) and grows
 * only with authenticated traffic inside the window; a daemon should open envelopes only from
 * senders it knows (envelope_peek first), which keeps it far smaller.
 */
struct envelope_replay;
struct envelope_replay *envelope_replay_new(void);
struct envelope_replay *envelope_replay_free(struct envelope_replay *r);
/* Nonces currently remembered, over all senders (for tests and statistics). */
size_t envelope_replay_count(struct envelope_replay *r);

/*
 * Decode and open an encoded Envelope addressed to self. On success *ret_msg is the decoded
 * Message (free with wice__signaling__message__free_unpacked(msg, NULL)) and ret_sender the
 * authenticated sender's public key. With replay non-NULL, an envelope whose nonce was seen
 * before or whose timestamp is outside ENVELOPE_REPLAY_WINDOW_MS of now_ms is refused.
 * Returns 0, -EBADMSG (malformed, or not authentic), -ENOENT (not addressed to self),
 * -EALREADY (replayed), -ESTALE (too old or too far in the future). Nothing is recorded for a
 * refused envelope.
 */
int envelope_open(const struct envelope_key *self, struct envelope_replay *replay, uint64_t now_ms,
		  const uint8_t *buf, size_t len, uint8_t ret_sender[static WG_KEY_LEN],
		  Wice__Signaling__Message **ret_msg);

/* Decode only the routing fields of an encoded Envelope (what a server sees). Returns 0 or
 * -EBADMSG (malformed, oversized, or a key that is not exactly WG_KEY_LEN bytes). */
int envelope_peek(const uint8_t *buf, size_t len, uint8_t ret_sender[static WG_KEY_LEN],
		  uint8_t ret_recipient[static WG_KEY_LEN]);

/* Wall clock in ms (CLOCK_REALTIME): timestamps are compared across hosts. */
uint64_t envelope_now_ms(void);

#endif
