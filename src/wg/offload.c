// SPDX-License-Identifier: MIT
/*
 * TSO/USO segmentation and TCP receive coalescing around the TUN virtio_net_hdr (offload.h).
 *
 * Facts taken from Linux: include/linux/virtio_net.h (what the kernel accepts in a vnet header),
 * net/ipv4/tcp_offload.c and udp_offload.c (which header fields change per segment, what ends a
 * GRO flow) and tcp_v4_send_check (a CHECKSUM_PARTIAL TCP checksum field holds the folded,
 * uncomplemented pseudo-header sum).
 *
 * The vnet header of a legacy (non-virtio-1.0) TUN is in host byte order unless TUNSETVNETBE/LE
 * say otherwise; wice never sets those, so its fields are used as plain host integers.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <netinet/in.h>

#include "wg/offload.h"

#define IPV4_HDR_MIN 20
#define IPV6_HDR_LEN 40
#define TCP_HDR_MIN  20
#define UDP_HDR_LEN  8
#define IP_MAX_LEN   65535 /* IPv4 total length field; also our cap for IPv6 */

#define IPV4_DF	     0x4000
#define IPV4_MF	     0x2000
#define IPV4_OFFMASK 0x1fff

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6

static inline uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return be16toh(v);
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static inline void put16(uint8_t *p, uint16_t v)
{
	v = htobe16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof(v));
}

/*
 * One's complement sum in host word order (RFC 1071 section 2 (B), (C)): wide loads into a
 * wider accumulator, so carries pile up in the high half and are folded once at the end.
 * Returns a 64-bit value congruent to the sum modulo 2^16 - 1 (2^32 and 2^64 are both 1).
 */
#ifdef __SIZEOF_INT128__
static uint64_t csum_bulk(const uint8_t **pp, size_t *plen)
{
	unsigned __int128 acc = 0;
	uint64_t w[4], lo, hi;

	for (; *plen >= sizeof(w); *pp += sizeof(w), *plen -= sizeof(w)) {
		memcpy(w, *pp, sizeof(w));
		acc += w[0];
		acc += w[1];
		acc += w[2];
		acc += w[3];
	}
	lo = (uint64_t)acc;
	hi = (uint64_t)(acc >> 64);
	lo += hi;
	return lo + (lo < hi);
}
#else
static uint64_t csum_bulk(const uint8_t **pp, size_t *plen)
{
	uint64_t a = 0, b = 0;
	uint32_t w[8];

	/* each accumulator stays below 2^32 * (len / 8): no overflow for any packet */
	for (; *plen >= sizeof(w); *pp += sizeof(w), *plen -= sizeof(w)) {
		memcpy(w, *pp, sizeof(w));
		a += (uint64_t)w[0] + w[1] + w[2] + w[3];
		b += (uint64_t)w[4] + w[5] + w[6] + w[7];
	}
	return (a & 0xffffffff) + (a >> 32) + (b & 0xffffffff) + (b >> 32);
}
#endif

static uint64_t csum_native(const uint8_t *p, size_t len)
{
	uint64_t sum = csum_bulk(&p, &len), t = 0;
	uint32_t w;

	for (; len >= 4; p += 4, len -= 4) {
		memcpy(&w, p, 4);
		t += w;
	}
	if (len >= 2) {
		uint16_t h;

		memcpy(&h, p, 2);
		t += h;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* the missing byte is zero (RFC 1071 section 4.1: the odd byte is padded) */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		t += p[0];
#else
		t += (uint32_t)p[0] << 8;
#endif
	}
	sum += t;
	return sum + (sum < t);
}

static inline uint32_t csum_add32(uint32_t sum, uint32_t v)
{
	uint64_t t = (uint64_t)sum + v;

	return (uint32_t)t + (uint32_t)(t >> 32);
}

uint32_t offload_csum_add(uint32_t sum, const void *data, size_t len)
{
	uint64_t acc = csum_native(data, len);
	uint32_t s;
	uint16_t v;

	acc = (acc & 0xffffffff) + (acc >> 32);
	acc = (acc & 0xffffffff) + (acc >> 32);
	s = (uint32_t)acc;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	/* a byte-swapped one's complement sum is the sum of the byte-swapped words (RFC 1071 (B))
	 */
	v = be16toh((uint16_t)s);
	return csum_add32(sum, v);
}

uint16_t offload_csum_fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Addresses and protocol of the TCP/UDP pseudo-header (RFC 793 3.1, RFC 8200 8.1). */
static uint32_t pseudo_sum(const uint8_t *ip, bool v6, uint8_t proto)
{
	uint32_t sum = v6 ? offload_csum_add(0, ip + 8, 32) : offload_csum_add(0, ip + 12, 8);

	return csum_add32(sum, proto);
}

/* What offload_segment learned from a GSO packet's headers. */
struct seg_info {
	size_t l4_off;	 /* IP header length */
	size_t hdr_len;	 /* IP + TCP/UDP header length */
	size_t gso_size; /* L4 payload bytes per segment */
	bool v6;
	bool tcp;
};

static int seg_parse_ip(const uint8_t *pkt, size_t len, struct seg_info *si, uint8_t *proto)
{
	if (len < 1)
		return -EINVAL;
	switch (pkt[0] >> 4) {
	case 4:
		if (len < IPV4_HDR_MIN)
			return -EINVAL;
		si->l4_off = (size_t)(pkt[0] & 0x0f) * 4;
		if (si->l4_off < IPV4_HDR_MIN || si->l4_off > len)
			return -EINVAL;
		/* a fragment cannot be a superpacket */
		if (get16(pkt + 6) & (IPV4_MF | IPV4_OFFMASK))
			return -EINVAL;
		*proto = pkt[9];
		si->v6 = false;
		return 0;
	case 6:
		if (len < IPV6_HDR_LEN)
			return -EINVAL;
		/* TCP/UDP must follow directly: no extension headers */
		si->l4_off = IPV6_HDR_LEN;
		*proto = pkt[6];
		si->v6 = true;
		return 0;
	default:
		return -EINVAL;
	}
}

static int seg_parse(const struct virtio_net_hdr *hdr, const uint8_t *pkt, size_t len,
		     struct seg_info *si)
{
	unsigned int type = hdr->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	uint8_t proto;
	int r;

	r = seg_parse_ip(pkt, len, si, &proto);
	if (r < 0)
		return r;
	switch (type) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (si->v6 != (type == VIRTIO_NET_HDR_GSO_TCPV6) || proto != IPPROTO_TCP)
			return -EINVAL;
		si->tcp = true;
		break;
	case VIRTIO_NET_HDR_GSO_UDP_L4:
		if (proto != IPPROTO_UDP)
			return -EINVAL;
		si->tcp = false;
		break;
	default:
		return -EINVAL;
	}
	/* the kernel always sets NEEDS_CSUM with GSO; csum_start must then be the L4 header */
	if ((hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && hdr->csum_start != si->l4_off)
		return -EINVAL;
	if (si->tcp) {
		size_t thl;

		if (len - si->l4_off < TCP_HDR_MIN)
			return -EINVAL;
		thl = (size_t)(pkt[si->l4_off + 12] >> 4) * 4;
		if (thl < TCP_HDR_MIN || thl > len - si->l4_off)
			return -EINVAL;
		si->hdr_len = si->l4_off + thl;
	} else {
		if (len - si->l4_off < UDP_HDR_LEN)
			return -EINVAL;
		si->hdr_len = si->l4_off + UDP_HDR_LEN;
	}
	si->gso_size = hdr->gso_size;
	if (!si->gso_size)
		return -EINVAL;
	return 0;
}

/* Fix up the headers of one segment already copied to o (seg_len bytes, payload at hdr_len). */
static void seg_finish(const struct seg_info *si, uint8_t *o, size_t seg_len, uint32_t psum)
{
	uint8_t *l4 = o + si->l4_off;
	size_t l4_len = seg_len - si->l4_off;
	uint32_t sum;
	uint16_t c;

	if (si->v6) {
		put16(o + 4, (uint16_t)(seg_len - IPV6_HDR_LEN));
	} else {
		put16(o + 2, (uint16_t)seg_len);
		put16(o + 10, 0);
		put16(o + 10, offload_csum_fold(offload_csum_add(0, o, si->l4_off)));
	}
	if (si->tcp) {
		put16(l4 + TCP_CSUM_OFF, 0);
	} else {
		put16(l4 + 4, (uint16_t)l4_len);
		put16(l4 + UDP_CSUM_OFF, 0);
	}
	/* header lengths are even, so only the payload chunk can be odd */
	sum = csum_add32(psum, (uint32_t)l4_len);
	sum = offload_csum_add(sum, l4, si->hdr_len - si->l4_off);
	sum = offload_csum_add(sum, o + si->hdr_len, seg_len - si->hdr_len);
	c = offload_csum_fold(sum);
	if (si->tcp) {
		put16(l4 + TCP_CSUM_OFF, c);
	} else {
		/* RFC 768: a computed zero is sent as all ones; zero means "no checksum" */
		put16(l4 + UDP_CSUM_OFF, c ? c : 0xffff);
	}
}

static int seg_gso(const struct seg_info *si, const uint8_t *pkt, size_t len, size_t mtu,
		   uint8_t *out, size_t stride, size_t max_segs, size_t *lens)
{
	size_t payload = len - si->hdr_len, first, n, off, i;
	uint32_t psum, seq = 0;
	uint16_t id = 0;
	uint8_t flags = 0;

	first = payload < si->gso_size ? payload : si->gso_size;
	n = payload ? (payload + si->gso_size - 1) / si->gso_size : 1;
	if (si->hdr_len + first > mtu || si->hdr_len + first > stride || n > max_segs ||
	    n > INT_MAX)
		return -EMSGSIZE;

	psum = pseudo_sum(pkt, si->v6, si->tcp ? IPPROTO_TCP : IPPROTO_UDP);
	if (!si->v6)
		id = get16(pkt + 4);
	if (si->tcp) {
		seq = get32(pkt + si->l4_off + 4);
		flags = pkt[si->l4_off + 13];
	}
	for (i = 0, off = 0; i < n; i++, off += si->gso_size) {
		uint8_t *o = out + i * stride;
		size_t plen = payload - off < si->gso_size ? payload - off : si->gso_size;

		memcpy(o, pkt, si->hdr_len);
		memcpy(o + si->hdr_len, pkt + si->hdr_len + off, plen);
		if (!si->v6)
			put16(o + 4, (uint16_t)(id + i));
		if (si->tcp) {
			uint8_t f = flags;

			if (i != n - 1)
				f &= (uint8_t) ~(TCP_FIN | TCP_PSH);
			if (i)
				f &= (uint8_t)~TCP_CWR;
			put32(o + si->l4_off + 4, seq + (uint32_t)off);
			o[si->l4_off + 13] = f;
		}
		seg_finish(si, o, si->hdr_len + plen, psum);
		lens[i] = si->hdr_len + plen;
	}
	return (int)n;
}

/* A packet without GSO: the checksum field, if one is to be completed, lies inside it. */
static int single_check(const struct virtio_net_hdr *hdr, size_t len)
{
	size_t start = hdr->csum_start, off = hdr->csum_offset;

	if (!len)
		return -EINVAL;
	if ((hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    (start > len || off > len - start || len - start - off < 2))
		return -EINVAL;
	if (len > (size_t)IP_MAX_LEN + IPV6_HDR_LEN)
		return -EMSGSIZE;
	return 0;
}

/* A packet without GSO: copy it, completing a partial checksum if asked to. */
static int seg_single(const struct virtio_net_hdr *hdr, const uint8_t *pkt, size_t len, size_t mtu,
		      uint8_t *out, size_t stride, size_t max_segs, size_t *lens)
{
	size_t start = hdr->csum_start, off = hdr->csum_offset;
	int r = single_check(hdr, len);

	if (r < 0)
		return r;
	if (len > mtu || len > stride || max_segs < 1)
		return -EMSGSIZE;
	memcpy(out, pkt, len);
	if (hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		/* the field holds the pseudo-header sum; summing over it completes the checksum */
		uint16_t c = offload_csum_fold(offload_csum_add(0, out + start, len - start));

		/* like skb_checksum_help: zero becomes all ones, equivalent for TCP, required by
		 * UDP */
		put16(out + start + off, c ? c : 0xffff);
	}
	lens[0] = len;
	return 1;
}

int offload_segment(const struct virtio_net_hdr *hdr, const uint8_t *pkt, size_t len, size_t mtu,
		    uint8_t *out, size_t stride, size_t max_segs, size_t *lens)
{
	struct seg_info si;
	int r;

	if (hdr->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return seg_single(hdr, pkt, len, mtu, out, stride, max_segs, lens);
	r = seg_parse(hdr, pkt, len, &si);
	if (r < 0)
		return r;
	return seg_gso(&si, pkt, len, mtu, out, stride, max_segs, lens);
}

int offload_segment_len(const struct virtio_net_hdr *hdr, const uint8_t *pkt, size_t len)
{
	struct seg_info si;
	int r;

	if (hdr->gso_type == VIRTIO_NET_HDR_GSO_NONE) {
		r = single_check(hdr, len);
		return r < 0 ? r : (int)len;
	}
	r = seg_parse(hdr, pkt, len, &si);
	if (r < 0)
		return r;
	return (int)(si.hdr_len + si.gso_size);
}

/* ---- receive-side coalescing ---- */

/* What offload_gro_add learned about one packet. */
struct gro_pkt {
	size_t l4_off;
	size_t hdr_len; /* IP + TCP header */
	size_t plen;	/* TCP payload */
	uint32_t seq;
	uint8_t flags;
	uint8_t family; /* 4 or 6: a TCP segment whose flow is known; 0 otherwise */
	bool mergeable; /* may start or join a merged output */
	bool opaque;	/* might belong to a TCP flow we cannot see: ends every open flow */
};

static void gro_parse_tcp(const uint8_t *pkt, size_t len, struct gro_pkt *p, bool ip_ok)
{
	const uint8_t *th = pkt + p->l4_off;
	size_t thl;

	if (len - p->l4_off < TCP_HDR_MIN) {
		p->opaque = true;
		return;
	}
	thl = (size_t)(th[12] >> 4) * 4;
	if (thl < TCP_HDR_MIN || thl > len - p->l4_off) {
		p->opaque = true;
		return;
	}
	p->hdr_len = p->l4_off + thl;
	p->plen = len - p->hdr_len;
	p->seq = get32(th + 4);
	p->flags = th[13];
	p->mergeable = ip_ok && p->plen && (p->flags & ~TCP_PSH) == TCP_ACK;
}

static void gro_parse(const uint8_t *pkt, size_t len, struct gro_pkt *p)
{
	bool ip_ok;

	memset(p, 0, sizeof(*p));
	if (len < 1) {
		p->opaque = true;
		return;
	}
	switch (pkt[0] >> 4) {
	case 4:
		if (len < IPV4_HDR_MIN)
			break;
		p->l4_off = (size_t)(pkt[0] & 0x0f) * 4;
		if (p->l4_off < IPV4_HDR_MIN || p->l4_off > len || get16(pkt + 2) != len)
			break;
		if (pkt[9] != IPPROTO_TCP)
			return;
		if (get16(pkt + 6) & (IPV4_MF | IPV4_OFFMASK))
			break;
		/* Merged segments get new IDs; DF makes them irrelevant. A bad header checksum
		 * must not be hidden by the one we recompute. */
		ip_ok = p->l4_off == IPV4_HDR_MIN && (get16(pkt + 6) & IPV4_DF) &&
			offload_csum_fold(offload_csum_add(0, pkt, IPV4_HDR_MIN)) == 0;
		p->family = 4;
		gro_parse_tcp(pkt, len, p, ip_ok);
		if (p->opaque)
			p->family = 0;
		return;
	case 6:
		if (len < IPV6_HDR_LEN || (size_t)get16(pkt + 4) + IPV6_HDR_LEN != len)
			break;
		if (pkt[6] == IPPROTO_UDP || pkt[6] == IPPROTO_ICMPV6)
			return;
		if (pkt[6] != IPPROTO_TCP)
			break; /* extension headers may hide TCP */
		p->l4_off = IPV6_HDR_LEN;
		p->family = 6;
		gro_parse_tcp(pkt, len, p, true);
		if (p->opaque)
			p->family = 0;
		return;
	}
	p->opaque = true;
}

static bool gro_same_flow(const struct offload_gro_out *o, const uint8_t *pkt,
			  const struct gro_pkt *p)
{
	const uint8_t *h = o->pkt;

	if (o->family != p->family)
		return false;
	if (p->family == 4 ? memcmp(h + 12, pkt + 12, 8) : memcmp(h + 8, pkt + 8, 32))
		return false;
	return !memcmp(h + o->l4_off, pkt + p->l4_off, 4); /* ports */
}

/* Does p continue o exactly (offload.h lists the rules; tcp_gro_receive has the same)? */
static bool gro_can_merge(const struct offload_gro_out *o, const uint8_t *pkt,
			  const struct gro_pkt *p)
{
	const uint8_t *h = o->pkt, *hth = h + o->l4_off, *th = pkt + p->l4_off;

	if (!o->open || !p->mergeable || p->hdr_len != o->hdr_len || p->seq != o->next_seq ||
	    p->plen > o->gso_size || o->ip_len + p->plen > IP_MAX_LEN)
		return false;
	if (p->family == 4) {
		if (h[1] != pkt[1] || h[8] != pkt[8]) /* TOS, TTL */
			return false;
	} else {
		if (memcmp(h, pkt, 4) || h[7] != pkt[7]) /* class, flow label, hop limit */
			return false;
	}
	/* ack, window, and every option byte (timestamps included) */
	return !memcmp(hth + 8, th + 8, 4) && !memcmp(hth + 14, th + 14, 2) &&
	       !memcmp(hth + TCP_HDR_MIN, th + TCP_HDR_MIN, o->hdr_len - o->l4_off - TCP_HDR_MIN);
}

static void gro_merge(struct offload_gro *g, struct offload_gro_out *o, const uint8_t *pkt,
		      const struct gro_pkt *p)
{
	int16_t i = (int16_t)g->n_seg++;
	struct offload_gro_seg *s = &g->seg[i];

	s->data = pkt + p->hdr_len;
	s->len = (uint16_t)p->plen;
	s->next = -1;
	if (o->seg_tail >= 0)
		g->seg[o->seg_tail].next = i;
	else
		o->seg_head = i;
	o->seg_tail = i;
	o->ip_len = (uint16_t)(o->ip_len + p->plen);
	o->next_seq += (uint32_t)p->plen;
	if (p->flags & TCP_PSH) {
		o->psh = 1;
		o->open = 0;
	}
	if (p->plen < o->gso_size)
		o->open = 0;
	g->n_pkts++;
}

static void gro_start(struct offload_gro *g, const uint8_t *pkt, size_t len,
		      const struct gro_pkt *p)
{
	struct offload_gro_out *o = &g->out[g->n_out++];

	o->pkt = pkt;
	o->len = len;
	o->family = p->family;
	o->l4_off = (uint8_t)p->l4_off;
	o->hdr_len = (uint16_t)p->hdr_len;
	o->gso_size = (uint16_t)p->plen;
	o->next_seq = p->seq + (uint32_t)p->plen;
	o->seg_head = o->seg_tail = -1;
	o->psh = 0;
	/* a PSH segment ends its flow, so it can only be the last of a merge, never the first */
	o->open = p->mergeable && p->flags == TCP_ACK && len < IP_MAX_LEN;
	o->ip_len = o->open ? (uint16_t)len : 0;
	g->n_pkts++;
}

void offload_gro_init(struct offload_gro *g)
{
	g->n_out = 0;
	g->n_pkts = 0;
	g->n_seg = 0;
}

int offload_gro_add(struct offload_gro *g, const uint8_t *pkt, size_t len, offload_write_fn write,
		    void *ctx)
{
	struct gro_pkt p;
	unsigned int i;
	int ret = 0, r;

	if (g->n_pkts >= OFFLOAD_GRO_MAX_PKTS)
		ret = offload_gro_flush(g, write, ctx);
	gro_parse(pkt, len, &p);
	if (p.opaque) {
		for (i = 0; i < g->n_out; i++)
			g->out[i].open = 0;
	}
	if (p.family) {
		/* only the newest output of a flow may grow: that keeps the flow in order */
		for (i = g->n_out; i-- > 0;) {
			struct offload_gro_out *o = &g->out[i];

			if (!gro_same_flow(o, pkt, &p))
				continue;
			if (gro_can_merge(o, pkt, &p)) {
				gro_merge(g, o, pkt, &p);
				return ret;
			}
			break;
		}
	}
	if (g->n_out >= OFFLOAD_GRO_MAX_FLOWS) {
		r = offload_gro_flush(g, write, ctx);
		if (!ret)
			ret = r;
	}
	gro_start(g, pkt, len, &p);
	return ret;
}

/* Fill g->iov for one output; returns the iovec count. */
static int gro_build(struct offload_gro *g, struct offload_gro_out *o)
{
	struct virtio_net_hdr vh = {0};
	uint8_t *ip = o->hdr + OFFLOAD_VNET_HDR_LEN, *th = ip + o->l4_off;
	bool v6 = o->family == 6;
	uint32_t sum;
	int n = 2;
	int16_t i;

	if (o->seg_head < 0) {
		/* alone and untouched; the tunnel already authenticated every byte */
		vh.flags = VIRTIO_NET_HDR_F_DATA_VALID;
		vh.gso_type = VIRTIO_NET_HDR_GSO_NONE;
		memcpy(o->hdr, &vh, OFFLOAD_VNET_HDR_LEN);
		g->iov[0] = (struct iovec){o->hdr, OFFLOAD_VNET_HDR_LEN};
		g->iov[1] = (struct iovec){(void *)o->pkt, o->len};
		return 2;
	}

	memcpy(ip, o->pkt, o->hdr_len);
	if (v6) {
		put16(ip + 4, (uint16_t)(o->ip_len - IPV6_HDR_LEN));
	} else {
		put16(ip + 2, o->ip_len);
		put16(ip + 10, 0);
		put16(ip + 10, offload_csum_fold(offload_csum_add(0, ip, o->l4_off)));
	}
	if (o->psh)
		th[13] |= TCP_PSH;
	/* CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not complemented */
	sum = csum_add32(pseudo_sum(ip, v6, IPPROTO_TCP), (uint32_t)(o->ip_len - o->l4_off));
	put16(th + TCP_CSUM_OFF, (uint16_t)~offload_csum_fold(sum));

	vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh.gso_type = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
	vh.hdr_len = o->hdr_len;
	vh.gso_size = o->gso_size;
	vh.csum_start = o->l4_off;
	vh.csum_offset = TCP_CSUM_OFF;
	memcpy(o->hdr, &vh, OFFLOAD_VNET_HDR_LEN);

	g->iov[0] = (struct iovec){o->hdr, OFFLOAD_VNET_HDR_LEN + (size_t)o->hdr_len};
	g->iov[1] = (struct iovec){(void *)(o->pkt + o->hdr_len), o->len - o->hdr_len};
	for (i = o->seg_head; i >= 0; i = g->seg[i].next)
		g->iov[n++] = (struct iovec){(void *)g->seg[i].data, g->seg[i].len};
	return n;
}

int offload_gro_flush(struct offload_gro *g, offload_write_fn write, void *ctx)
{
	unsigned int i;
	int ret = 0, r;

	for (i = 0; i < g->n_out; i++) {
		r = write(ctx, g->iov, gro_build(g, &g->out[i]));
		if (r < 0 && !ret)
			ret = r;
	}
	offload_gro_init(g);
	return ret;
}
