// SPDX-License-Identifier: MIT
/*
 * ICMP and ICMPv6 "unreachable" errors for packets the interface cannot send (icmp.h).
 *
 * Facts from RFC 792 (the ICMPv4 message), RFC 1122 3.2.2 (what must never be answered),
 * RFC 1812 4.3.2.3 (how much to quote), RFC 4443 2.2, 2.4 and 3.1 (the ICMPv6 message, what
 * must never be answered, how much to quote, the checksum over a pseudo-header) and RFC 8200
 * 4 (the extension headers to walk to find out whether a packet is an ICMPv6 error).
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <netinet/in.h>

#include "wg/icmp.h"
#include "wg/offload.h"

#define IPV4_HDR_MIN 20
#define IPV6_HDR_LEN 40
#define ICMP_HDR_LEN 8 /* type, code, checksum, 4 bytes unused (zero) */

#define IPV4_DF	      0x4000
#define IPV4_OFFMASK  0x1fff
#define IPV6_OFFMASK  0xfff8 /* fragment header: offset in 8-byte units, above 3 flag bits */
#define IPTOS_INETCTL 0xc0   /* precedence "internetwork control", as Linux sends errors */
#define ICMP_ERR_TTL  64

#define ICMP_DEST_UNREACH   3
#define ICMP_HOST_UNREACH   1
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_ADDR_UNREACH 3
#define ICMPV6_INFO_MIN	    128 /* RFC 4443 2.1: types below are errors */

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/*
 * RFC 1122 3.2.2: never answer a source that does not name a single host (0/8, loopback,
 * multicast, class E including the limited broadcast); the destination becomes our source, so
 * it must pass the same test, which also leaves out datagrams sent to multicast or broadcast.
 * A subnet's directed broadcast cannot be told from here: we know no prefixes.
 */
static bool v4_unicast(const uint8_t *a)
{
	return a[0] != 0 && a[0] != 127 && a[0] < 224;
}

/* RFC 4443 2.4 (e): not the unspecified address, not multicast; nor loopback. */
static bool v6_unicast(const uint8_t *a)
{
	static const uint8_t zero[15];

	if (a[0] == 0xff)
		return false;
	return memcmp(a, zero, sizeof(zero)) || a[15] > 1;
}

/* ICMPv4 types that are queries or replies (RFC 792, RFC 950); all others count as errors,
 * unknown ones too, as Linux counts them. */
static bool icmp4_informational(uint8_t type)
{
	switch (type) {
	case 0:	 /* echo reply */
	case 8:	 /* echo request */
	case 9:	 /* router advertisement */
	case 10: /* router solicitation */
	case 13: /* timestamp */
	case 14: /* timestamp reply */
	case 15: /* information request */
	case 16: /* information reply */
	case 17: /* address mask request */
	case 18: /* address mask reply */
		return true;
	default:
		return false;
	}
}

/* The IPv4 packet's length per its header, if it may be answered. */
static int v4_check(const uint8_t *pkt, size_t len, size_t *ret_len)
{
	size_t hl = (size_t)(pkt[0] & 0x0f) * 4, tot;

	if (len < IPV4_HDR_MIN || hl < IPV4_HDR_MIN)
		return -EBADMSG;
	tot = get16(pkt + 2);
	if (tot < hl || tot > len)
		return -EBADMSG;
	if (!v4_unicast(pkt + 12) || !v4_unicast(pkt + 16))
		return -EPERM;
	if (get16(pkt + 6) & IPV4_OFFMASK)
		return -EPERM; /* only the first fragment is answered */
	if (pkt[9] == IPPROTO_ICMP) {
		if (tot == hl)
			return -EBADMSG;
		if (!icmp4_informational(pkt[hl]))
			return -EPERM;
	}
	*ret_len = tot;
	return 0;
}

/* Walks the extension headers of an IPv6 packet (plen bytes in all) to its upper layer:
 * -EPERM if that is an ICMPv6 error or the packet is a later fragment, else 0. */
static int v6_check_upper(const uint8_t *pkt, size_t plen)
{
	uint8_t nh = pkt[6];
	size_t off = IPV6_HDR_LEN, l;

	for (;;) {
		switch (nh) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (plen - off < 8)
				return -EBADMSG;
			l = ((size_t)pkt[off + 1] + 1) * 8;
			break;
		case IPPROTO_AH: /* RFC 4302 2.2: length in 4-byte units, minus 2 */
			if (plen - off < 8)
				return -EBADMSG;
			l = ((size_t)pkt[off + 1] + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			if (plen - off < 8)
				return -EBADMSG;
			if (get16(pkt + off + 2) & IPV6_OFFMASK)
				return -EPERM;
			l = 8;
			break;
		case IPPROTO_ICMPV6:
			if (plen == off)
				return -EBADMSG;
			return pkt[off] < ICMPV6_INFO_MIN ? -EPERM : 0;
		default:
			return 0; /* an upper layer (or ESP, or no next header) */
		}
		if (l > plen - off)
			return -EBADMSG;
		nh = pkt[off];
		off += l;
	}
}

static int v6_check(const uint8_t *pkt, size_t len, size_t *ret_len)
{
	size_t plen;
	int r;

	if (len < IPV6_HDR_LEN)
		return -EBADMSG;
	plen = IPV6_HDR_LEN + get16(pkt + 4);
	if (plen > len)
		return -EBADMSG;
	if (!v6_unicast(pkt + 8) || !v6_unicast(pkt + 24))
		return -EPERM;
	if ((r = v6_check_upper(pkt, plen)))
		return r;
	*ret_len = plen;
	return 0;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static size_t build_v4(const uint8_t *pkt, size_t quote, uint8_t *out)
{
	size_t total = IPV4_HDR_MIN + ICMP_HDR_LEN + quote;
	uint8_t *icmp = out + IPV4_HDR_MIN;

	memset(out, 0, IPV4_HDR_MIN + ICMP_HDR_LEN);
	out[0] = 0x45;
	out[1] = IPTOS_INETCTL;
	put16(out + 2, (uint16_t)total);
	put16(out + 6, IPV4_DF); /* id 0: an atomic datagram (RFC 6864) */
	out[8] = ICMP_ERR_TTL;
	out[9] = IPPROTO_ICMP;
	memcpy(out + 12, pkt + 16, 4);
	memcpy(out + 16, pkt + 12, 4);
	put16(out + 10, offload_csum_fold(offload_csum_add(0, out, IPV4_HDR_MIN)));

	icmp[0] = ICMP_DEST_UNREACH;
	icmp[1] = ICMP_HOST_UNREACH;
	memcpy(icmp + ICMP_HDR_LEN, pkt, quote);
	put16(icmp + 2, offload_csum_fold(offload_csum_add(0, icmp, ICMP_HDR_LEN + quote)));
	return total;
}

static size_t build_v6(const uint8_t *pkt, size_t quote, uint8_t *out)
{
	size_t ulen = ICMP_HDR_LEN + quote;
	uint8_t *icmp = out + IPV6_HDR_LEN;
	uint32_t sum;

	memset(out, 0, IPV6_HDR_LEN + ICMP_HDR_LEN);
	out[0] = 0x60;
	put16(out + 4, (uint16_t)ulen);
	out[6] = IPPROTO_ICMPV6;
	out[7] = ICMP_ERR_TTL;
	memcpy(out + 8, pkt + 24, 16);
	memcpy(out + 24, pkt + 8, 16);

	icmp[0] = ICMPV6_DEST_UNREACH;
	icmp[1] = ICMPV6_ADDR_UNREACH;
	memcpy(icmp + ICMP_HDR_LEN, pkt, quote);
	/* RFC 4443 2.3 and RFC 8200 8.1: the pseudo-header is both addresses, the upper-layer
	 * length and the next header value; both fit the running sum as host numbers. */
	sum = offload_csum_add(0, out + 8, 32);
	sum = offload_csum_add(sum, icmp, ulen);
	sum += (uint32_t)ulen + IPPROTO_ICMPV6;
	put16(icmp + 2, offload_csum_fold(sum));
	return IPV6_HDR_LEN + ulen;
}

int icmp_build_unreachable(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap)
{
	size_t plen, quote;
	int r;

	if (!len)
		return -EBADMSG;
	switch (pkt[0] >> 4) {
	case 4:
		if ((r = v4_check(pkt, len, &plen)))
			return r;
		quote = min_size(plen, ICMP_ERR_MAX_LEN_V4 - IPV4_HDR_MIN - ICMP_HDR_LEN);
		if (cap < IPV4_HDR_MIN + ICMP_HDR_LEN + quote)
			return -ENOBUFS;
		return (int)build_v4(pkt, quote, out);
	case 6:
		if ((r = v6_check(pkt, len, &plen)))
			return r;
		quote = min_size(plen, ICMP_ERR_MAX_LEN_V6 - IPV6_HDR_LEN - ICMP_HDR_LEN);
		if (cap < IPV6_HDR_LEN + ICMP_HDR_LEN + quote)
			return -ENOBUFS;
		return (int)build_v6(pkt, quote, out);
	default:
		return -EBADMSG;
	}
}

bool icmp_ratelimit_allow(struct icmp_ratelimit *rl, uint64_t now_ns)
{
	const uint64_t interval = 1000000000ULL / ICMP_ERR_PER_SECOND;
	const uint64_t max_credit = interval * ICMP_ERR_BURST;
	uint64_t elapsed = now_ns > rl->last_ns ? now_ns - rl->last_ns : 0;

	/* Saturating; the first call (last_ns still 0) finds the bucket full. */
	if (!rl->last_ns || elapsed >= max_credit - rl->credit_ns)
		rl->credit_ns = max_credit;
	else
		rl->credit_ns += elapsed;
	if (now_ns > rl->last_ns)
		rl->last_ns = now_ns; /* never backwards: that would count the same time twice */
	if (rl->credit_ns < interval)
		return false;
	rl->credit_ns -= interval;
	return true;
}
