/* SPDX-License-Identifier: MIT */
/*
 * peer_link: one WireGuard peer connected through ICE. It owns the peer's ICE session, the
 * signaling state of both sides, and the proxy (proxy.h) that carries WireGuard's packets over
 * the selected pair.
 *
 * Signaling: the local side is kept as a snapshot (session id, credentials, every candidate
 * found so far, end-of-candidates), and every Message sent is the whole snapshot. Backends are
 * stateless and may lose what was published before the peer subscribed, so the snapshot is
 * sent again when it changes, when the remote starts a new session, after a failed publish
 * (PEER_LINK_RETRY_MS apart, bounded) and every PEER_LINK_ANNOUNCE_MS while the session is not
 * connected (at most PEER_LINK_ANNOUNCE_MAX times per remote session). The remote side's
 * candidates are handed to ICE once per credentials generation (repeats are dropped), and a
 * Message older than the newest seen from the peer is ignored, so a reordered snapshot cannot
 * bring back old credentials (which ICE would take for a restart).
 *
 * WireGuard's endpoint for the peer is set to the proxy at once, so that the handshake
 * message WireGuard sends before ICE has a pair (initiation, or the response to the peer's
 * initiation when the peer's pair was selected first) is kept, the newest one, and delivered
 * when a pair is selected, instead of waiting for WireGuard's 5 s retry.
 *
 * When ICE selects a UDP pair whose local candidate is not relayed, nftables rules (nft.h) let
 * WireGuard's packets use the ICE socket's port without a userspace copy, and WireGuard's
 * endpoint becomes the peer's address itself (PEER_LINK_DIRECT_MS after the selection, so the
 * first handshake goes through the proxy); a relayed pair, or the daemon stopping, points it
 * back at the proxy, and the rules go.
 *
 * Recovery. A failed session restarts after PEER_LINK_RESTART_MS: an ICE restart, or a new
 * session when our end of the pair was relayed (a restart keeps the TURN allocation, which a
 * NAT that changed the client's port has lost) or on a second failure before connecting again.
 * A new session (new gathering: new local
 * addresses, server-reflexive mappings and TURN allocations) replaces the current one when the
 * local addresses change, when TURN REST credentials near expiry, and when WireGuard's
 * counters show it sending with nothing received for PEER_LINK_SILENCE_MS. Make before break:
 * the session whose pair carries the traffic keeps carrying it until the new one selects a
 * pair. Everything is counted for status: restarts and why, pair changes, and recoveries (an
 * outage, i.e. ICE failed or WireGuard sent unanswered for PEER_LINK_OUTAGE_MS, that ended).
 *
 * Everything runs on the daemon's GMainContext.
 */
#ifndef WICE_DAEMON_PEER_LINK_H
#define WICE_DAEMON_PEER_LINK_H

#include <glib.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "daemon/control.h"
#include "ice/servers.h"
#include "signaling.pb-c.h"
#include "wg/messages.h"

#define PEER_LINK_FLUSH_MS	   10	/* trickled candidates sent together within this */
#define PEER_LINK_RETRY_MS	   250	/* after a publish the backends refused */
#define PEER_LINK_RETRY_MAX	   40	/* then wait for the next announce */
#define PEER_LINK_ANNOUNCE_MS	   1000 /* snapshot again while not connected */
#define PEER_LINK_ANNOUNCE_MAX	   120
#define PEER_LINK_RESTART_MS	   1000 /* ICE restart this long after a failure */
#define PEER_LINK_DIRECT_MS	   1000 /* a direct pair: WireGuard leaves the proxy this late */
#define PEER_LINK_TCP_AFTER_MS	   2000 /* no direct UDP pair this long after checks began: ICE-TCP */
#define PEER_LINK_LOCAL_CANDIDATES 64	/* ENVELOPE_MAX_CANDIDATES */
/*
 * WireGuard answers any data within WG_KEEPALIVE_TIMEOUT (10 s: a keepalive when it has nothing
 * to send). Sending data unanswered for longer, with counters read once a second
 * (WATCHER_REREAD_MS) and a second of slack for the round trip, means the path is gone even
 * though ICE still calls it connected (consent is checked with STUN, which may pass where data
 * does not, and RFC 7675 lets it take 30 s to fail): a new session. A keepalive is never
 * answered: a second in which only one went out (WG_DATA_OVERHEAD bytes) is not sending.
 */
#define PEER_LINK_SILENCE_MS ((WG_KEEPALIVE_TIMEOUT + 2) * 1000)
/*
 * Sending unanswered this long counts as an outage for status (a recovery when traffic comes
 * back). A one-way flow, answered only by the peer's keepalive within WG_KEEPALIVE_TIMEOUT,
 * looks the same until that keepalive: then the outage is withdrawn, not counted.
 */
#define PEER_LINK_OUTAGE_MS 2000

struct peer_link;

/* Seals msg to peer and publishes it. 0, -EAGAIN / -ENOTCONN (retry later), other errors. */
typedef int (*peer_link_send_fn)(void *data, const uint8_t peer[static WG_KEY_LEN],
				 Wice__Signaling__Message *msg);

struct peer_link_config {
	GMainContext *ctx;
	const char *ifname;
	uint8_t local_key[WG_KEY_LEN]; /* public */
	uint8_t peer_key[WG_KEY_LEN];
	uint16_t wg_port;		  /* WireGuard's listen port */
	const struct ice_server *servers; /* kept, not copied: must outlive the link */
	size_t n_servers;
	const char *const *local_addresses; /* copied; NULL: libnice's choice */
	size_t n_local_addresses;
	peer_link_send_fn send;
	void *data;
};

int peer_link_new(const struct peer_link_config *cfg, struct peer_link **ret);
/* Accepts NULL, returns NULL. */
struct peer_link *peer_link_free(struct peer_link *l);

/* A Message the peer sent us (already opened and authenticated). */
void peer_link_receive(struct peer_link *l, const Wice__Signaling__Message *msg);
void peer_link_set_wg_port(struct peer_link *l, uint16_t port);
/* Whether ep is this link's proxy endpoint (an endpoint we set, not a hand-set one). */
bool peer_link_owns_endpoint(const struct peer_link *l, const struct sockaddr_storage *ep);
/* Fills state, selected pair, relayed and reason; the rest is the caller's. */
void peer_link_status(const struct peer_link *l, struct control_peer *ret);
/* ICE restart now (new credentials, signaled; the selected pair stays until a new one). */
void peer_link_restart(struct peer_link *l, const char *why);
/*
 * The addresses host candidates are gathered on (NULL-terminated; NULL or empty: libnice's
 * choice). A different set gets a new session, make before break; the same set does nothing.
 */
void peer_link_set_local_addresses(struct peer_link *l, const char *const *addrs);
/* WireGuard's byte counters for the peer, read about once a second: outages and silence. */
void peer_link_traffic(struct peer_link *l, uint64_t rx_bytes, uint64_t tx_bytes);
/* Releases TURN allocations (the context must keep running a little for that). */
void peer_link_close(struct peer_link *l);

#endif
