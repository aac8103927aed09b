/* SPDX-License-Identifier: MIT */
/* The device's UDP sockets: IPv4 and IPv6 on one port, with GSO/GRO where the kernel has it. */
#ifndef WICE_WG_UDP_H
#define WICE_WG_UDP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "wg/peer.h"

/* Control space a message needs for udp_pktinfo_put. */
#define UDP_PKTINFO_SPACE CMSG_SPACE(sizeof(struct in6_pktinfo))

/* Opens both sockets on port (0: pick one free for both). ret_port gets the port. Either fd
 * may come back -1 when its family is unavailable, not both. */
int udp_open(uint16_t port, uint32_t fwmark, int *ret_fd4, int *ret_fd6, uint16_t *ret_port,
	     bool *ret_gro);
int udp_set_fwmark(int fd, uint32_t fwmark);

/*
 * Writes ep's local address (src) as an IP_PKTINFO / IPV6_PKTINFO message at cm, the next
 * control message of a msghdr being built. Returns the space used: 0 when ep has no src.
 */
size_t udp_pktinfo_put(struct cmsghdr *cm, const struct wg_endpoint *ep);
/*
 * Reads the local address a datagram came to from its control messages into ep's src (zero
 * without one, or for a multicast destination, never a reply's source).
 */
void udp_pktinfo_get(const struct msghdr *h, struct wg_endpoint *ep);

#endif
