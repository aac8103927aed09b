/* SPDX-License-Identifier: MIT */
/*
 * "Destination unreachable" errors for packets the interface cannot send: no peer's allowed
 * IPs hold the destination, or that peer has no endpoint. The Linux driver answers both with
 * icmp_ndo_send / icmpv6_ndo_send, so ping reports "Destination Host Unreachable" and a TCP
 * connect fails with EHOSTUNREACH at once instead of timing out; we write the same error back
 * into TUN.
 *
 * icmp_build_unreachable is pure (no state, no system calls) so it can be tested and fuzzed;
 * icmp_ratelimit_allow is the token bucket in front of it.
 */
#ifndef WICE_WG_ICMP_H
#define WICE_WG_ICMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 1812 4.3.2.3: an ICMPv4 error quotes as much as fits in 576 bytes in all. */
#define ICMP_ERR_MAX_LEN_V4 576
/* RFC 4443 2.4 (c): an ICMPv6 error quotes as much as fits in the IPv6 minimum MTU. */
#define ICMP_ERR_MAX_LEN_V6 1280
#define ICMP_ERR_MAX_LEN    ICMP_ERR_MAX_LEN_V6

/*
 * At most this many errors a second per interface, with bursts of up to ICMP_ERR_BURST: the
 * packets come from the host itself, but a local flood to an unrouted address must not turn
 * into as many TUN writes. (Linux limits ICMP errors globally to 1000/s with bursts of 50.)
 */
#define ICMP_ERR_PER_SECOND 10
#define ICMP_ERR_BURST	    20

/*
 * Builds the IPv4 "host unreachable" (type 3 code 1, RFC 792) or IPv6 "address unreachable"
 * (type 1 code 3, RFC 4443 3.1) error answering the IP packet pkt/len, as read from TUN
 * (without the vnet header), into out (cap bytes; ICMP_ERR_MAX_LEN always suffice). The error
 * goes from the packet's destination to its source: it is written into TUN, so it arrives
 * from outside the host, and the host only accepts a source that is not its own and routes
 * back out of the interface.
 *
 * Returns the error's length, or
 *   -EBADMSG  pkt is not a whole IPv4/IPv6 packet (header fields disagree with len)
 *   -EPERM    pkt must not be answered (RFC 1122 3.2.2, RFC 4443 2.4 (e)): it is an ICMP
 *             error itself, or its source or destination is not a unicast address, or it is
 *             a fragment other than the first
 *   -ENOBUFS  cap is too small
 */
int icmp_build_unreachable(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap);

/* A token bucket (ICMP_ERR_PER_SECOND, ICMP_ERR_BURST); zero-initialised it starts full. */
struct icmp_ratelimit {
	uint64_t credit_ns; /* time-credit saved up, at most ICMP_ERR_BURST intervals */
	uint64_t last_ns;   /* when credit_ns was last brought up to date */
};

/* Takes one token at monotonic time now_ns (non-decreasing, non-zero) if there is one. */
bool icmp_ratelimit_allow(struct icmp_ratelimit *rl, uint64_t now_ns);

#endif
