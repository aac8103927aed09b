/* SPDX-License-Identifier: MIT */
/*
 * nft: the zero-copy direct path (docs/daemon.md). For a UDP pair whose local candidate is not
 * relayed, nftables rules in the table `inet wice` of the daemon's network namespace make the
 * ICE socket's port carry WireGuard's packets without a userspace copy:
 *
 *   prerouting, priority raw: from R:rp to L: notrack; and if the UDP payload has no STUN
 *                             magic cookie at offset 4 (bit 96 of the transport header), the
 *                             destination port becomes W (WireGuard's). STUN keeps reaching
 *                             libnice (consent freshness).
 *   output, priority raw:     to R:rp from L (the ICE socket's own packets): notrack; from W:
 *                             notrack, the source port becomes L and the source address L's
 *                             (WireGuard's socket is unbound: routing picks its source, which
 *                             on a host with several addresses need not be the candidate's,
 *                             and the peer's rules match only that one). A route chain, so a
 *                             changed source is routed again (policy routing by source).
 *
 * Stateless (notrack) on purpose: a conntrack NAT to the ICE port collides with the ICE
 * socket's own flow to the same peer. L is the socket's local (base) port, also for
 * server-reflexive candidates. nft's payload statements fix the UDP checksum (for the
 * address, through the pseudo-header).
 *
 * Each peer has its own two base chains (pre_ID, out_ID), replaced or deleted as a whole, each
 * change one nftables transaction through libnftables, in process (one context, made on first
 * use, on the loop's thread only).
 */
#ifndef WICE_DAEMON_NFT_H
#define WICE_DAEMON_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NFT_ID_MAX 48

/* A chain-name-safe id for a peer of an interface: IFNAME_HEX8 (of the peer's key). */
void nft_peer_id(char ret[static NFT_ID_MAX], const char *ifname, const uint8_t *peer_key);

/*
 * Installs (or replaces) the peer's rules: local is the ICE socket's address (getsockname),
 * remote the peer's, both of one family. 0 or -errno (nftables refusing them: -EIO, logged
 * with nft's error text).
 */
int nft_direct_set(const char *id, const struct sockaddr_storage *local,
		   const struct sockaddr_storage *remote, uint16_t wg_port);

/* Deletes the peer's chains, if any. 0 or -errno. */
int nft_direct_clear(const char *id);

/* A peer's chains left by an earlier daemon: its id, and the peer's address in its rules. */
struct nft_stale {
	char id[NFT_ID_MAX];
	struct sockaddr_storage remote; /* AF_UNSPEC: the rules named none */
};

/*
 * Deletes the chains of ifname's peers from `inet wice` (this namespace's), which only a
 * daemon that did not stop cleanly (SIGKILL) leaves behind: a running daemon owns the chains
 * of the interfaces it manages. ret (g_free) lists their peers, for nft_stale_find. Chains of
 * other interfaces (another daemon's) are untouched. 0 or -errno (logged).
 */
int nft_sweep(const char *ifname, struct nft_stale **ret, size_t *ret_n);

/* Whether an earlier daemon's chains for peer id pointed at ep (WireGuard's endpoint). */
bool nft_stale_find(const struct nft_stale *stale, size_t n, const char *id,
		    const struct sockaddr_storage *ep);

/* Frees the libnftables context (the daemon stopping). */
void nft_close(void);

#endif
