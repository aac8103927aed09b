/* SPDX-License-Identifier: MIT */
/*
 * Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, as the WireGuard paper (section 5.4) specifies it:
 * handshake state per peer, keypairs per session, and the message constructions.
 */
#ifndef WICE_WG_NOISE_H
#define WICE_WG_NOISE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "wg/messages.h"
#include "wg/replay.h"
#include "wg/index.h"

struct wg_device;
struct wg_peer;

enum noise_handshake_state {
	HANDSHAKE_ZEROED,
	HANDSHAKE_CREATED_INITIATION,
	HANDSHAKE_CONSUMED_INITIATION,
	HANDSHAKE_CREATED_RESPONSE,
	HANDSHAKE_CONSUMED_RESPONSE,
};

struct noise_static_identity {
	uint8_t static_private[WG_KEY_LEN];
	uint8_t static_public[WG_KEY_LEN];
	bool has_identity;
};

struct noise_handshake {
	enum noise_handshake_state state;
	struct wg_index_entry entry; /* our index, registered while a handshake is pending */
	uint32_t remote_index;
	uint8_t ephemeral_private[WG_KEY_LEN];
	uint8_t remote_static[WG_KEY_LEN];
	uint8_t remote_ephemeral[WG_KEY_LEN];
	uint8_t precomputed_static_static[WG_KEY_LEN]; /* DH(S_priv, S_pub_remote) */
	uint8_t preshared_key[WG_KEY_LEN];
	uint8_t hash[WG_HASH_LEN];
	uint8_t chaining_key[WG_HASH_LEN];
	uint8_t latest_timestamp[WG_TIMESTAMP_LEN];
	uint64_t last_initiation_consumption_ns; /* flood guard, paper 5.1 */
};

struct noise_keypair {
	uint8_t send_key[WG_KEY_LEN];
	uint8_t recv_key[WG_KEY_LEN];
	_Atomic uint64_t send_counter;
	struct replay_window recv_window; /* the receive thread's only */
	uint64_t id;			  /* unique per keypair ever made, for cipher caching */
	uint64_t birthdate_ns;		  /* monotonic */
	struct wg_index_entry entry;	  /* our index: incoming data names it */
	uint32_t remote_index;
	bool i_am_initiator;
	/* Responder's "next" that data arrived on: usable for sending at once, before the
	 * control thread rotates it into "current", so a reply never goes out on the old
	 * session. */
	_Atomic bool confirmed;
	struct wg_peer *peer;
};

/* current/previous/next as in the paper's key rotation; changed only under the device lock. */
struct noise_keypairs {
	struct noise_keypair *current;
	struct noise_keypair *previous;
	struct noise_keypair *next;
};

void noise_identity_set(struct noise_static_identity *id, const uint8_t priv[static WG_KEY_LEN]);
/* (Re)compute the static-static DH of a handshake after either static key changed. */
void noise_handshake_precompute(struct noise_handshake *hs, const struct noise_static_identity *id);
void noise_handshake_clear(struct wg_device *dev, struct noise_handshake *hs);

int noise_create_initiation(struct wg_device *dev, struct wg_peer *peer,
			    struct wg_message_handshake_initiation *msg);
/* Returns the authenticated peer or NULL (bad message, unknown key, replayed, flood). */
struct wg_peer *noise_consume_initiation(struct wg_device *dev,
					 const struct wg_message_handshake_initiation *msg);
int noise_create_response(struct wg_device *dev, struct wg_peer *peer,
			  struct wg_message_handshake_response *msg);
struct wg_peer *noise_consume_response(struct wg_device *dev,
				       const struct wg_message_handshake_response *msg);
/* Derive the transport keys from a finished handshake and install them as "next" (responder)
 * or "current" (initiator). */
int noise_begin_session(struct wg_device *dev, struct wg_peer *peer);
/* Responder: first data on "next" confirms it; rotate next -> current. */
void noise_keypairs_confirm(struct wg_device *dev, struct wg_peer *peer, struct noise_keypair *kp);
void noise_keypairs_clear(struct wg_device *dev, struct noise_keypairs *kps);
void noise_keypair_free(struct wg_device *dev, struct noise_keypair *kp);
/* A keypair id never used before in this process. */
uint64_t noise_keypair_next_id(void);

void tai64n_now(uint8_t out[static WG_TIMESTAMP_LEN]);

#endif
