/* SPDX-License-Identifier: MIT */
/*
 * What peer_link.c (ICE and signaling), peer_path.c (where WireGuard sends: the proxy or the
 * direct path) and peer_link_status.c share: the link itself.
 */
#ifndef WICE_DAEMON_PEER_LINK_INTERNAL_H
#define WICE_DAEMON_PEER_LINK_INTERNAL_H

#include <sys/socket.h>
#include "daemon/nft.h"
#include "daemon/peer_link.h"
#include "daemon/proxy.h"
#include "ice/session.h"
#include "util/key.h"

/*
 * WireGuard's handshake messages (messages.h): initiation (type 1, 148 bytes), response (2, 92),
 * cookie reply (3, 64). The newest one sent before a pair exists is held, not lost: the peer
 * answers an initiation at once, but its own pair may be selected a moment after ours.
 */
#define WG_HANDSHAKE_MAX 148

struct peer_link {
	GMainContext *ctx;
	char ifname[IFNAMSIZ];
	char name[WG_KEY_B64_LEN + 1]; /* the peer's public key, for logs */
	uint8_t peer_key[WG_KEY_LEN];
	peer_link_send_fn send;
	void *data;

	struct ice_session *ice;
	struct ice_session *old_ice; /* the last working one, until ice selects a pair */
	/* What a new session (TURN REST renewal, addresses, silence) is made from. */
	bool controlling;
	const struct ice_server *servers;
	size_t n_servers;
	char **local_addresses; /* NULL: libnice's choice */
	GSource *renew_timer, *tcp_timer;
	unsigned int renewals;
	enum ice_state state;
	bool has_pair;
	struct ice_pair pair;
	struct proxy *proxy;
	bool endpoint_set;
	uint16_t wg_port;
	/* The direct path (nft.h): rules installed, WireGuard's endpoint the peer's address. */
	char nft_id[NFT_ID_MAX];
	bool rules, direct;
	struct sockaddr_storage direct_ep;
	uint8_t held[WG_HANDSHAKE_MAX]; /* newest handshake message sent before a pair existed */
	size_t held_len;

	/* Local snapshot. */
	uint64_t session_id;
	char ufrag[ICE_UFRAG_MAX], pwd[ICE_PWD_MAX];
	struct ice_candidate cands[PEER_LINK_LOCAL_CANDIDATES];
	size_t n_cands;
	bool gathering_done;
	GSource *flush_timer, *retry_timer, *announce_timer, *restart_timer, *direct_timer;
	unsigned int retries, announces;
	unsigned int restarts;	  /* ICE restarts, either side's, and new sessions */
	unsigned int failures;	  /* since the last connected state */
	bool restart_pending;	  /* ours: the peer's next credentials answer it */
	unsigned int local_types; /* 1 << enum ice_candidate_type, gathered this generation */

	/* For status: wall clock, unix seconds; 0 never. */
	char restart_reason[CONTROL_REASON_LEN];
	int64_t restart_at, pair_at, connected_at, recovery_at, outage_ms;
	unsigned int pair_changes, recoveries;
	/* Outages (monotonic µs, 0: none now): since when, and WireGuard's counters. */
	int64_t down_since, silent_since, silence_acted;
	bool has_counters;
	uint64_t rx_bytes, tx_bytes;

	/* Remote side. */
	uint64_t remote_session_id;
	bool has_remote_session;
	uint64_t remote_ts;
	char remote_ufrag[ICE_UFRAG_MAX], remote_pwd[ICE_PWD_MAX];
	GHashTable *remote_seen;   /* candidate keys handed to ICE this generation */
	unsigned int remote_types; /* 1 << enum ice_candidate_type, this generation */
	bool remote_done;
};

/* WireGuard's endpoint at the proxy (logged on failure). */
int peer_path_proxy(struct peer_link *l);
/* A UDP pair whose local candidate is not relayed: nftables can carry it. */
bool peer_path_direct_pair(const struct ice_pair *p);
void peer_path_rules_clear(struct peer_link *l);
/* Back to the proxy: WireGuard's endpoint first, then the rules. */
void peer_path_off(struct peer_link *l);
/* The direct path for a direct pair (rules, then WireGuard's endpoint), else the proxy. */
void peer_path_update(struct peer_link *l);

#endif
