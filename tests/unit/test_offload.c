// SPDX-License-Identifier: MIT
/*
 * offload.c: TSO/USO segmentation and TCP GRO. Every packet is checked with a byte-at-a-time
 * reference checksum written here, never with offload_csum_add itself.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wg/offload.h"
#include "ref_bytes.h"

/* cmocka test and table callbacks ignore some of their parameters */
#pragma GCC diagnostic ignored "-Wunused-parameter"

#define SUPER_PAYLOAD 64000
#define GSO_SIZE      1368
#define MTU	      1440 /* 40 + 32 + 1368 */
#define STRIDE	      1500
#define MAX_SEGS      64
#define TS_OPT_LEN    12

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10
#define F_URG 0x20
#define F_ECE 0x40
#define F_CWR 0x80

static const uint8_t src4[4] = {192, 0, 2, 1}, dst4[4] = {198, 51, 100, 7};
static const uint8_t src6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
static const uint8_t dst6[16] = {0x20, 0x01, 0x0d, 0xb8, 0xff, [15] = 2};

/* ---- reference helpers (deliberately naive) ---- */

static uint64_t ref_pseudo(const uint8_t *ip, bool v6, uint8_t proto, size_t l4len)
{
	uint64_t s = proto + l4len;
	size_t i;

	if (v6) {
		for (i = 8; i < 40; i += 2)
			s += rd16(ip + i);
	} else {
		for (i = 12; i < 20; i += 2)
			s += rd16(ip + i);
	}
	return s;
}

static bool ip_is_v6(const uint8_t *ip)
{
	return ip[0] >> 4 == 6;
}

static size_t ip_hl(const uint8_t *ip)
{
	return ip_is_v6(ip) ? 40 : (size_t)(ip[0] & 15) * 4;
}

/* full TCP/UDP checksum of a complete packet verifies */
static void assert_l4_csum_ok(const uint8_t *ip, size_t len)
{
	bool v6 = ip_is_v6(ip);
	size_t hl = ip_hl(ip);
	uint8_t proto = v6 ? ip[6] : ip[9];

	assert_int_equal(ref_sum(ip + hl, len - hl, ref_pseudo(ip, v6, proto, len - hl)), 0xffff);
	if (!v6)
		assert_int_equal(ref_sum(ip, hl, 0), 0xffff);
}

/* ---- packet builders ---- */

#define PAY_BYTE(pos) ((uint8_t)((pos)*131u + ((pos) >> 9) * 7u + 3u))

struct tcp_spec {
	bool v6;
	size_t payload;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t sport, dport, window, id;
	bool ts;
	uint32_t tsval;
	uint8_t ttl, tos;
	bool no_df;
	bool partial; /* checksum field holds the pseudo-header sum (as TUN gives it) */
};

static struct tcp_spec spec_default(bool v6, size_t payload)
{
	return (struct tcp_spec){.v6 = v6,
				 .payload = payload,
				 .seq = 0xfffff000u, /* wraps inside a superpacket */
				 .ack = 0x11223344,
				 .flags = F_ACK,
				 .sport = 40000,
				 .dport = 5201,
				 .window = 512,
				 .id = 0xfff0, /* wraps too */
				 .ts = true,
				 .tsval = 0xa1b2c3d4,
				 .ttl = 64};
}

static size_t spec_hdr_len(const struct tcp_spec *s)
{
	return (s->v6 ? 40 : 20) + 20 + (s->ts ? TS_OPT_LEN : 0);
}

static void fill_ip(uint8_t *b, bool v6, uint8_t proto, size_t len, uint8_t tos, uint8_t ttl,
		    uint16_t id, bool df)
{
	if (v6) {
		memset(b, 0, 40);
		b[0] = (uint8_t)(0x60 | tos >> 4);
		b[1] = (uint8_t)(tos << 4 | 0x1);
		b[2] = 0x23;
		b[3] = 0x45;
		wr16(b + 4, (uint16_t)(len - 40));
		b[6] = proto;
		b[7] = ttl;
		memcpy(b + 8, src6, 16);
		memcpy(b + 24, dst6, 16);
	} else {
		memset(b, 0, 20);
		b[0] = 0x45;
		b[1] = tos;
		wr16(b + 2, (uint16_t)len);
		wr16(b + 4, id);
		wr16(b + 6, df ? 0x4000 : 0);
		b[8] = ttl;
		b[9] = proto;
		memcpy(b + 12, src4, 4);
		memcpy(b + 16, dst4, 4);
		wr16(b + 10, (uint16_t)~ref_sum(b, 20, 0));
	}
}

static size_t build_tcp(uint8_t *b, const struct tcp_spec *s)
{
	size_t iphl = s->v6 ? 40 : 20, thl = 20 + (s->ts ? TS_OPT_LEN : 0);
	size_t len = iphl + thl + s->payload, k;
	uint8_t *th = b + iphl;
	uint64_t ps;

	fill_ip(b, s->v6, 6, len, s->tos, s->ttl, s->id, !s->no_df);
	memset(th, 0, thl);
	wr16(th, s->sport);
	wr16(th + 2, s->dport);
	wr32(th + 4, s->seq);
	wr32(th + 8, s->ack);
	th[12] = (uint8_t)(thl / 4 << 4);
	th[13] = s->flags;
	wr16(th + 14, s->window);
	if (s->ts) {
		th[20] = 1;
		th[21] = 1;
		th[22] = 8;
		th[23] = 10;
		wr32(th + 24, s->tsval);
		wr32(th + 28, 0x01020304);
	}
	for (k = 0; k < s->payload; k++)
		th[thl + k] = PAY_BYTE(s->seq + k);
	ps = ref_pseudo(b, s->v6, 6, thl + s->payload);
	if (s->partial)
		wr16(th + 16, ref_sum(NULL, 0, ps));
	else
		wr16(th + 16, (uint16_t)~ref_sum(th, thl + s->payload, ps));
	return len;
}

static size_t build_udp(uint8_t *b, bool v6, size_t payload, bool partial)
{
	size_t iphl = v6 ? 40 : 20, len = iphl + 8 + payload, k;
	uint8_t *uh = b + iphl;
	uint64_t ps;

	fill_ip(b, v6, 17, len, 0, 64, 0x4242, true);
	wr16(uh, 51820);
	wr16(uh + 2, 4500);
	wr16(uh + 4, (uint16_t)(8 + payload));
	wr16(uh + 6, 0);
	for (k = 0; k < payload; k++)
		uh[8 + k] = PAY_BYTE(k + 99);
	ps = ref_pseudo(b, v6, 17, 8 + payload);
	wr16(uh + 6, partial ? ref_sum(NULL, 0, ps) : (uint16_t)~ref_sum(uh, 8 + payload, ps));
	return len;
}

static struct virtio_net_hdr vh_tso(const struct tcp_spec *s, uint16_t gso_size)
{
	return (struct virtio_net_hdr){
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = s->v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4,
		.hdr_len = (uint16_t)spec_hdr_len(s),
		.gso_size = gso_size,
		.csum_start = s->v6 ? 40 : 20,
		.csum_offset = 16,
	};
}

static struct virtio_net_hdr vh_uso(bool v6, uint16_t gso_size)
{
	return (struct virtio_net_hdr){
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4,
		.hdr_len = (uint16_t)((v6 ? 40 : 20) + 8),
		.gso_size = gso_size,
		.csum_start = v6 ? 40 : 20,
		.csum_offset = 6,
	};
}

/* ---- output collector for GRO ---- */

#define REC_MAX 256

struct rec {
	struct virtio_net_hdr vh;
	uint8_t pkt[70000];
	size_t len; /* IP packet bytes after the vnet header */
	int iovcnt;
	const void *base[OFFLOAD_GRO_MAX_PKTS + 2];
	size_t iov_len[OFFLOAD_GRO_MAX_PKTS + 2];
};

struct collector {
	struct rec *r;
	int n;
	int fail_calls; /* return -EIO for this many calls first */
	int calls;
};

static int collect(void *ctx, const struct iovec *iov, int iovcnt)
{
	struct collector *c = ctx;
	struct rec *r;
	size_t off = 0, total = 0;
	uint8_t *flat;
	int i;

	c->calls++;
	assert_true(iovcnt >= 2 && iovcnt <= OFFLOAD_GRO_MAX_PKTS + 1);
	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	assert_true(total >= OFFLOAD_VNET_HDR_LEN && total <= OFFLOAD_VNET_HDR_LEN + 70000);
	assert_true(c->n < REC_MAX);
	r = &c->r[c->n++];
	flat = malloc(total);
	assert_non_null(flat);
	for (i = 0; i < iovcnt; i++) {
		memcpy(flat + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
		r->base[i] = iov[i].iov_base;
		r->iov_len[i] = iov[i].iov_len;
	}
	memcpy(&r->vh, flat, OFFLOAD_VNET_HDR_LEN);
	r->len = total - OFFLOAD_VNET_HDR_LEN;
	memcpy(r->pkt, flat + OFFLOAD_VNET_HDR_LEN, r->len);
	r->iovcnt = iovcnt;
	free(flat);
	if (c->fail_calls > 0) {
		c->fail_calls--;
		return -EIO;
	}
	return 0;
}

static struct collector *collector_new(void)
{
	struct collector *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->r = calloc(REC_MAX, sizeof(*c->r));
	assert_non_null(c->r);
	return c;
}

static void collector_free(struct collector *c)
{
	free(c->r);
	free(c);
}

/* a packet that went through GRO alone: DATA_VALID, the caller's bytes, untouched */
static void assert_alone(const struct rec *r, const uint8_t *pkt, size_t len)
{
	assert_int_equal(r->vh.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	assert_int_equal(r->vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(r->iovcnt, 2);
	assert_int_equal(r->iov_len[0], OFFLOAD_VNET_HDR_LEN);
	assert_ptr_equal(r->base[1], pkt);
	assert_int_equal(r->len, len);
	assert_memory_equal(r->pkt, pkt, len);
}

/* ---- checksum ---- */

static void test_csum_rfc1071(void **state)
{
	/* RFC 1071 section 3 example: the sum of these words is 0xddf2 */
	static const uint8_t v[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};

	assert_int_equal(offload_csum_fold(offload_csum_add(0, v, sizeof(v))), 0x220d);
	assert_int_equal(offload_csum_fold(offload_csum_add(0, v, 0)), 0xffff);
	/* host numbers add directly */
	assert_int_equal(offload_csum_fold(offload_csum_add(0x1234, v, 2)), (uint16_t)~0x1235);
	/* odd tail byte is the high byte of a zero-padded word */
	assert_int_equal(offload_csum_fold(offload_csum_add(0, v + 2, 1)), (uint16_t)~0xf200);
}

static void test_csum_matches_reference(void **state)
{
	static uint8_t buf[2100];
	size_t len, off, i, k;

	srand(1);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	for (len = 0; len < 700; len++) {
		for (off = 0; off < 8; off++) {
			uint16_t want = (uint16_t)~ref_sum(buf + off, len, 0);

			assert_int_equal(offload_csum_fold(offload_csum_add(0, buf + off, len)),
					 want);
			/* split at an even boundary, as the segmenter does */
			k = (len / 3) & ~(size_t)1;
			assert_int_equal(
				offload_csum_fold(offload_csum_add(
					offload_csum_add(0, buf + off, k), buf + off + k, len - k)),
				want);
		}
	}
	/* all ones (carries everywhere) and a large starting sum */
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(offload_csum_fold(offload_csum_add(0xffffffffu, buf, sizeof(buf))),
			 (uint16_t)~ref_sum(buf, sizeof(buf), 0xffffffffu));
	/* 64 KiB, like one superpacket */
	{
		uint8_t *big = malloc(65535);

		assert_non_null(big);
		for (i = 0; i < 65535; i++)
			big[i] = (uint8_t)(i * 7 + (i >> 8));
		assert_int_equal(offload_csum_fold(offload_csum_add(0, big, 65535)),
				 (uint16_t)~ref_sum(big, 65535, 0));
		free(big);
	}
}

/* ---- segmentation ---- */

static void assert_tcp_segment(const uint8_t *seg, size_t len, const struct tcp_spec *s,
			       const uint8_t *super, size_t i, size_t n, uint8_t want_flags)
{
	size_t hl = spec_hdr_len(s), iphl = s->v6 ? 40 : 20, plen = len - hl, k;
	const uint8_t *th = seg + iphl;
	uint32_t seq = s->seq + (uint32_t)(i * GSO_SIZE);

	assert_int_equal(plen, i + 1 < n ? GSO_SIZE : s->payload - (n - 1) * GSO_SIZE);
	assert_true(len <= MTU);
	if (s->v6) {
		assert_int_equal(seg[0] >> 4, 6);
		assert_int_equal(rd16(seg + 4), len - 40);
		assert_memory_equal(seg, super, 4);
		assert_memory_equal(seg + 6, super + 6, 34);
	} else {
		assert_int_equal(seg[0], 0x45);
		assert_int_equal(rd16(seg + 2), len);
		assert_int_equal(rd16(seg + 4), (uint16_t)(s->id + i));
		assert_int_equal(rd16(seg + 6), 0x4000);
		assert_int_equal(seg[8], s->ttl);
		assert_memory_equal(seg + 12, super + 12, 8);
	}
	assert_int_equal(rd32(th + 4), seq);
	assert_int_equal(rd32(th + 8), s->ack);
	assert_int_equal(th[13], want_flags);
	assert_int_equal(rd16(th + 14), s->window);
	/* ports and options unchanged */
	assert_memory_equal(th, super + iphl, 4);
	assert_memory_equal(th + 20, super + iphl + 20, hl - iphl - 20);
	for (k = 0; k < plen; k++) {
		if (th[hl - iphl + k] != PAY_BYTE(seq + k))
			fail_msg("segment %zu payload byte %zu", i, k);
	}
	assert_l4_csum_ok(seg, len);
}

static size_t segment_super(const struct tcp_spec *s, const struct virtio_net_hdr *vh,
			    uint8_t *super, size_t super_len, uint8_t *out, size_t *lens)
{
	int n = offload_segment(vh, super, super_len, MTU, out, STRIDE, MAX_SEGS, lens);

	assert_int_equal(n, (s->payload + GSO_SIZE - 1) / GSO_SIZE);
	return (size_t)n;
}

static void run_tso(bool v6)
{
	struct tcp_spec s = spec_default(v6, SUPER_PAYLOAD);
	uint8_t *super = malloc(70000), *out = malloc(STRIDE * MAX_SEGS);
	struct virtio_net_hdr vh;
	size_t lens[MAX_SEGS], len, n, i;

	assert_non_null(super);
	assert_non_null(out);
	s.partial = true;
	s.flags = F_ACK | F_PSH | F_FIN | F_CWR | F_ECE;
	len = build_tcp(super, &s);
	vh = vh_tso(&s, GSO_SIZE);
	vh.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
	vh.hdr_len = 0; /* only a hint */
	assert_int_equal(offload_segment_len(&vh, super, len), spec_hdr_len(&s) + GSO_SIZE);
	n = segment_super(&s, &vh, super, len, out, lens);
	assert_int_equal(n, 47);
	for (i = 0; i < n; i++) {
		uint8_t want = F_ACK | F_ECE;

		if (i == 0)
			want |= F_CWR;
		if (i == n - 1)
			want |= F_PSH | F_FIN;
		assert_tcp_segment(out + i * STRIDE, lens[i], &s, super, i, n, want);
	}
	free(super);
	free(out);
}

static void test_tso_v4(void **state)
{
	run_tso(false);
}

static void test_tso_v6(void **state)
{
	run_tso(true);
}

/* TSO -> segments -> GRO gives back the superpacket, byte for byte, and segments again the same */
static void run_roundtrip(bool v6)
{
	struct tcp_spec s = spec_default(v6, SUPER_PAYLOAD);
	uint8_t *super = malloc(70000), *out = malloc(STRIDE * MAX_SEGS);
	uint8_t *out2 = malloc(STRIDE * MAX_SEGS), *m;
	struct collector *c = collector_new();
	struct offload_gro *g = malloc(sizeof(*g));
	struct virtio_net_hdr vh;
	size_t lens[MAX_SEGS], lens2[MAX_SEGS], len, n, i, hl = spec_hdr_len(&s);
	uint16_t csum;

	assert_non_null(super);
	assert_non_null(out);
	assert_non_null(out2);
	assert_non_null(g);
	s.partial = true;
	s.flags = F_ACK | F_PSH;
	len = build_tcp(super, &s);
	vh = vh_tso(&s, GSO_SIZE);
	n = segment_super(&s, &vh, super, len, out, lens);

	offload_gro_init(g);
	for (i = 0; i < n; i++)
		assert_int_equal(offload_gro_add(g, out + i * STRIDE, lens[i], collect, c), 0);
	assert_int_equal(c->n, 0);
	assert_int_equal(offload_gro_flush(g, collect, c), 0);
	assert_int_equal(c->n, 1);

	/* zero copy: header copy, then the payload of every segment where it lies */
	assert_int_equal(c->r[0].iovcnt, 1 + n);
	assert_int_equal(c->r[0].iov_len[0], OFFLOAD_VNET_HDR_LEN + hl);
	for (i = 0; i < n; i++) {
		assert_ptr_equal(c->r[0].base[1 + i], out + i * STRIDE + hl);
		assert_int_equal(c->r[0].iov_len[1 + i], lens[i] - hl);
	}

	assert_int_equal(c->r[0].vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_int_equal(c->r[0].vh.gso_type,
			 v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(c->r[0].vh.gso_size, GSO_SIZE);
	assert_int_equal(c->r[0].vh.hdr_len, hl);
	assert_int_equal(c->r[0].vh.csum_start, v6 ? 40 : 20);
	assert_int_equal(c->r[0].vh.csum_offset, 16);
	/* same bytes as the kernel's superpacket: lengths, IP checksum, PSH, partial checksum */
	assert_int_equal(c->r[0].len, len);
	assert_memory_equal(c->r[0].pkt, super, len);

	/* completing the partial checksum gives the full checksum of the merged packet */
	m = c->r[0].pkt;
	csum = (uint16_t)~ref_sum(m + (v6 ? 40 : 20), len - (v6 ? 40 : 20), 0);
	wr16(m + (v6 ? 40 : 20) + 16, csum);
	assert_l4_csum_ok(m, len);

	/* and it segments again into the very same packets */
	assert_int_equal(
		offload_segment(&c->r[0].vh, super, len, MTU, out2, STRIDE, MAX_SEGS, lens2),
		(int)n);
	for (i = 0; i < n; i++) {
		assert_int_equal(lens2[i], lens[i]);
		assert_memory_equal(out2 + i * STRIDE, out + i * STRIDE, lens[i]);
	}
	collector_free(c);
	free(g);
	free(super);
	free(out);
	free(out2);
}

static void test_roundtrip_v4(void **state)
{
	run_roundtrip(false);
}

static void test_roundtrip_v6(void **state)
{
	run_roundtrip(true);
}

static void run_uso(bool v6)
{
	uint8_t super[4000], out[STRIDE * 4];
	size_t lens[4], len = build_udp(super, v6, 3001, true), iphl = v6 ? 40 : 20, i, k;
	struct virtio_net_hdr vh = vh_uso(v6, 1200);

	assert_int_equal(offload_segment_len(&vh, super, len), iphl + 8 + 1200);
	assert_int_equal(offload_segment(&vh, super, len, MTU, out, STRIDE, 4, lens), 3);
	for (i = 0; i < 3; i++) {
		const uint8_t *o = out + i * STRIDE;
		size_t plen = i < 2 ? 1200 : 601;

		assert_int_equal(lens[i], iphl + 8 + plen);
		assert_int_equal(rd16(o + iphl + 4), 8 + plen);
		if (v6)
			assert_int_equal(rd16(o + 4), 8 + plen);
		else
			assert_int_equal(rd16(o + 4), 0x4242 + i);
		assert_memory_equal(o + iphl, super + iphl, 4);
		for (k = 0; k < plen; k++)
			assert_int_equal(o[iphl + 8 + k], PAY_BYTE(i * 1200 + k + 99));
		assert_int_not_equal(rd16(o + iphl + 6), 0);
		assert_l4_csum_ok(o, lens[i]);
	}
	/* more than max_segs, or a segment over the MTU */
	assert_int_equal(offload_segment(&vh, super, len, MTU, out, STRIDE, 2, lens), -EMSGSIZE);
	assert_int_equal(offload_segment(&vh, super, len, 1200, out, STRIDE, 4, lens), -EMSGSIZE);
}

static void test_uso_v4(void **state)
{
	run_uso(false);
}

static void test_uso_v6(void **state)
{
	run_uso(true);
}

/* a computed UDP checksum of zero goes out as 0xffff, with and without GSO */
static void test_udp_zero_csum(void **state)
{
	uint8_t pkt[200], out[STRIDE];
	size_t lens[1], len = build_udp(pkt, false, 100, true), k;
	struct virtio_net_hdr vh = vh_uso(false, 1200);
	uint16_t s, partial = rd16(pkt + 26);

	/* choose the last two payload bytes so the full sum is 0xffff */
	wr16(pkt + 26, 0);
	wr16(pkt + len - 2, 0);
	s = ref_sum(pkt + 20, len - 20, ref_pseudo(pkt, false, 17, len - 20));
	wr16(pkt + len - 2, (uint16_t)(0xffff - s));
	wr16(pkt + 26, partial);
	for (k = 0; k < 2; k++) {
		if (k)
			vh = (struct virtio_net_hdr){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
						     .csum_start = 20,
						     .csum_offset = 6};
		assert_int_equal(offload_segment(&vh, pkt, len, MTU, out, STRIDE, 1, lens), 1);
		assert_int_equal(rd16(out + 26), 0xffff);
		assert_l4_csum_ok(out, lens[0]);
	}
}

static void test_needs_csum_single(void **state)
{
	uint8_t pkt[400], out[STRIDE];
	struct tcp_spec s = spec_default(false, 101); /* odd payload */
	struct virtio_net_hdr vh = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 20, .csum_offset = 16};
	size_t lens[1], len;

	s.partial = true;
	len = build_tcp(pkt, &s);
	assert_int_equal(offload_segment(&vh, pkt, len, MTU, out, STRIDE, 1, lens), 1);
	assert_int_equal(lens[0], len);
	assert_l4_csum_ok(out, len);
	assert_memory_equal(out, pkt, 36);
	assert_memory_equal(out + 38, pkt + 38, len - 38);

	len = build_udp(pkt, true, 77, true);
	vh.csum_start = 40;
	vh.csum_offset = 6;
	assert_int_equal(offload_segment(&vh, pkt, len, MTU, out, STRIDE, 1, lens), 1);
	assert_l4_csum_ok(out, len);
}

static void test_plain_copy(void **state)
{
	uint8_t pkt[300], out[STRIDE];
	struct virtio_net_hdr vh = {0};
	size_t lens[1], i;

	for (i = 0; i < sizeof(pkt); i++)
		pkt[i] = (uint8_t)i;
	pkt[0] = 0x45;
	assert_int_equal(offload_segment_len(&vh, pkt, sizeof(pkt)), sizeof(pkt));
	assert_int_equal(offload_segment(&vh, pkt, sizeof(pkt), MTU, out, STRIDE, 1, lens), 1);
	assert_int_equal(lens[0], sizeof(pkt));
	assert_memory_equal(out, pkt, sizeof(pkt));
	assert_int_equal(offload_segment(&vh, pkt, sizeof(pkt), 200, out, STRIDE, 1, lens),
			 -EMSGSIZE);
	assert_int_equal(offload_segment(&vh, pkt, sizeof(pkt), MTU, out, 200, 1, lens), -EMSGSIZE);
	assert_int_equal(offload_segment(&vh, pkt, 0, MTU, out, STRIDE, 1, lens), -EINVAL);
}

/* Malformed input: table of mutations of a valid small TSO packet. */
enum mut_kind {
	M_TRUNC,     /* len = arg */
	M_VH_FIELD,  /* set a vnet header field */
	M_BYTE,	     /* pkt[arg] = val */
	M_MAX_SEGS,  /* max_segs = arg */
	M_MTU,	     /* mtu = arg */
	M_STRIDE,    /* stride = arg */
	M_GSO_NONE,  /* gso_type NONE, NEEDS_CSUM, csum_start/offset = arg/val */
	M_OTHER_VER, /* TCPV4 header on the v6 packet and vice versa */
};

struct mal_case {
	const char *name;
	bool v6;
	enum mut_kind kind;
	size_t arg;
	unsigned int val;
	int want;
};

static const struct mal_case mal_cases[] = {
	{"empty", false, M_TRUNC, 0, 0, -EINVAL},
	{"one byte", false, M_TRUNC, 1, 0, -EINVAL},
	{"truncated ipv4", false, M_TRUNC, 19, 0, -EINVAL},
	{"no tcp header", false, M_TRUNC, 20, 0, -EINVAL},
	{"truncated tcp", false, M_TRUNC, 39, 0, -EINVAL},
	{"truncated options", false, M_TRUNC, 51, 0, -EINVAL},
	{"truncated ipv6", true, M_TRUNC, 39, 0, -EINVAL},
	{"truncated tcp v6", true, M_TRUNC, 59, 0, -EINVAL},
	{"truncated options v6", true, M_TRUNC, 71, 0, -EINVAL},
	{"ihl 4", false, M_BYTE, 0, 0x44, -EINVAL},
	{"ihl 15, csum_start 20", false, M_BYTE, 0, 0x4f, -EINVAL},
	{"version 5", false, M_BYTE, 0, 0x55, -EINVAL},
	{"version 0", true, M_BYTE, 0, 0x00, -EINVAL},
	{"ipv4 fragment", false, M_BYTE, 6, 0x20, -EINVAL},
	{"ipv4 udp under tcpv4", false, M_BYTE, 9, 17, -EINVAL},
	{"ipv6 hop-by-hop", true, M_BYTE, 6, 0, -EINVAL},
	{"ipv6 fragment hdr", true, M_BYTE, 6, 44, -EINVAL},
	{"tcp doff 4", false, M_BYTE, 32, 0x40, -EINVAL},
	{"tcp doff 15: segment over mtu", false, M_BYTE, 32, 0xf0, -EMSGSIZE},
	{"tcp doff 4 v6", true, M_BYTE, 52, 0x40, -EINVAL},
	{"tcpv4 on ipv6", true, M_OTHER_VER, 0, 0, -EINVAL},
	{"tcpv6 on ipv4", false, M_OTHER_VER, 0, 0, -EINVAL},
	{"gso_size 0", false, M_VH_FIELD, offsetof(struct virtio_net_hdr, gso_size), 0, -EINVAL},
	{"gso ufo", false, M_VH_FIELD, offsetof(struct virtio_net_hdr, gso_type), 3, -EINVAL},
	{"gso type 0x7f", false, M_VH_FIELD, offsetof(struct virtio_net_hdr, gso_type), 0x7f,
	 -EINVAL},
	{"uso on tcp", false, M_VH_FIELD, offsetof(struct virtio_net_hdr, gso_type), 5, -EINVAL},
	{"csum_start past end", false, M_VH_FIELD, offsetof(struct virtio_net_hdr, csum_start),
	 60000, -EINVAL},
	{"csum_start not l4", false, M_VH_FIELD, offsetof(struct virtio_net_hdr, csum_start), 24,
	 -EINVAL},
	{"too many segments", false, M_MAX_SEGS, 2, 0, -EMSGSIZE},
	{"zero max_segs", false, M_MAX_SEGS, 0, 0, -EMSGSIZE},
	{"segment over mtu", false, M_MTU, 1000, 0, -EMSGSIZE},
	{"segment over stride", false, M_STRIDE, 1000, 0, -EMSGSIZE},
	{"none: csum past end", false, M_GSO_NONE, 5000, 16, -EINVAL},
	{"none: offset past end", false, M_GSO_NONE, 20, 5000, -EINVAL},
	{"none: field straddles end", false, M_GSO_NONE, 20, 0, -EINVAL},
};

static void test_malformed(void **state)
{
	size_t c;

	for (c = 0; c < sizeof(mal_cases) / sizeof(mal_cases[0]); c++) {
		const struct mal_case *mc = &mal_cases[c];
		struct tcp_spec s = spec_default(mc->v6, 4000);
		uint8_t full[5000], *pkt, *out = malloc(STRIDE * MAX_SEGS);
		struct virtio_net_hdr vh;
		size_t lens[MAX_SEGS], len, max_segs = MAX_SEGS, mtu = MTU, stride = STRIDE;
		int r;

		assert_non_null(out);
		s.partial = true;
		len = build_tcp(full, &s);
		vh = vh_tso(&s, GSO_SIZE);
		switch (mc->kind) {
		case M_TRUNC:
			len = mc->arg;
			break;
		case M_VH_FIELD:
			if (mc->arg == offsetof(struct virtio_net_hdr, gso_type))
				vh.gso_type = (uint8_t)mc->val;
			else
				memcpy((uint8_t *)&vh + mc->arg, &(uint16_t){(uint16_t)mc->val}, 2);
			break;
		case M_BYTE:
			full[mc->arg] = (uint8_t)mc->val;
			break;
		case M_MAX_SEGS:
			max_segs = mc->arg;
			break;
		case M_MTU:
			mtu = mc->arg;
			break;
		case M_STRIDE:
			stride = mc->arg;
			break;
		case M_GSO_NONE:
			vh = (struct virtio_net_hdr){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
						     .csum_start = (uint16_t)mc->arg,
						     .csum_offset = (uint16_t)mc->val};
			if (mc->val == 0)
				vh.csum_start = (uint16_t)(len - 1);
			break;
		case M_OTHER_VER:
			vh.gso_type = mc->v6 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
			break;
		}
		/* an exact-size heap copy, so the sanitizer sees any read past the end */
		pkt = malloc(len ? len : 1);
		assert_non_null(pkt);
		memcpy(pkt, full, len);
		r = offload_segment(&vh, pkt, len, mtu, out, stride, max_segs, lens);
		if (r != mc->want)
			fail_msg("%s: got %d want %d", mc->name, r, mc->want);
		if (mc->want == -EINVAL && offload_segment_len(&vh, pkt, len) != -EINVAL)
			fail_msg("%s: offload_segment_len accepted it", mc->name);
		free(pkt);
		free(out);
	}
}

/* every prefix of a valid superpacket is either rejected or segments into valid packets */
static void test_truncation_sweep(void **state)
{
	int v;

	for (v = 0; v < 2; v++) {
		struct tcp_spec s = spec_default(v, 3000);
		uint8_t full[4000], *out = malloc(STRIDE * MAX_SEGS), *pkt;
		struct virtio_net_hdr vh;
		size_t lens[MAX_SEGS], len, l, hl = spec_hdr_len(&s);
		int r, i;

		assert_non_null(out);
		s.partial = true;
		len = build_tcp(full, &s);
		vh = vh_tso(&s, GSO_SIZE);
		for (l = 0; l <= len; l++) {
			pkt = malloc(l ? l : 1);
			assert_non_null(pkt);
			memcpy(pkt, full, l);
			r = offload_segment(&vh, pkt, l, MTU, out, STRIDE, MAX_SEGS, lens);
			if (l < hl) {
				assert_int_equal(r, -EINVAL);
			} else {
				assert_int_equal(
					r, l == hl ? 1 : (int)((l - hl + GSO_SIZE - 1) / GSO_SIZE));
				for (i = 0; i < r; i++)
					assert_l4_csum_ok(out + i * STRIDE, lens[i]);
			}
			free(pkt);
		}
		free(out);
	}
}

/* ---- GRO ---- */

struct gro_case {
	const char *name;
	void (*mutate)(struct tcp_spec *first, struct tcp_spec *second);
	bool v4_only;
};

static void mut_seq_gap(struct tcp_spec *a, struct tcp_spec *b)
{
	b->seq += 1;
}

static void mut_seq_back(struct tcp_spec *a, struct tcp_spec *b)
{
	b->seq -= (uint32_t)a->payload;
}

static void mut_sport(struct tcp_spec *a, struct tcp_spec *b)
{
	b->sport++;
}

static void mut_dport(struct tcp_spec *a, struct tcp_spec *b)
{
	b->dport++;
}

static void mut_tsval(struct tcp_spec *a, struct tcp_spec *b)
{
	b->tsval++;
}

static void mut_no_ts(struct tcp_spec *a, struct tcp_spec *b)
{
	b->ts = false;
}

static void mut_first_short(struct tcp_spec *a, struct tcp_spec *b)
{
	a->payload -= 100;
	b->seq -= 100;
}

static void mut_second_longer(struct tcp_spec *a, struct tcp_spec *b)
{
	b->payload += 1;
}

static void mut_fin(struct tcp_spec *a, struct tcp_spec *b)
{
	b->flags |= F_FIN;
}

static void mut_syn(struct tcp_spec *a, struct tcp_spec *b)
{
	b->flags |= F_SYN;
}

static void mut_rst(struct tcp_spec *a, struct tcp_spec *b)
{
	b->flags |= F_RST;
}

static void mut_urg(struct tcp_spec *a, struct tcp_spec *b)
{
	b->flags |= F_URG;
}

static void mut_cwr(struct tcp_spec *a, struct tcp_spec *b)
{
	b->flags |= F_CWR;
}

static void mut_ece(struct tcp_spec *a, struct tcp_spec *b)
{
	b->flags |= F_ECE;
}

static void mut_first_psh(struct tcp_spec *a, struct tcp_spec *b)
{
	a->flags |= F_PSH;
}

static void mut_first_fin(struct tcp_spec *a, struct tcp_spec *b)
{
	a->flags |= F_FIN;
}

static void mut_no_ack(struct tcp_spec *a, struct tcp_spec *b)
{
	a->flags = 0;
	b->flags = 0;
}

static void mut_ack(struct tcp_spec *a, struct tcp_spec *b)
{
	b->ack++;
}

static void mut_window(struct tcp_spec *a, struct tcp_spec *b)
{
	b->window++;
}

static void mut_ttl(struct tcp_spec *a, struct tcp_spec *b)
{
	b->ttl--;
}

static void mut_tos(struct tcp_spec *a, struct tcp_spec *b)
{
	b->tos = 0x10;
}

static void mut_no_df(struct tcp_spec *a, struct tcp_spec *b)
{
	a->no_df = b->no_df = true;
}

static void mut_empty(struct tcp_spec *a, struct tcp_spec *b)
{
	b->payload = 0;
}

static const struct gro_case gro_cases[] = {
	{"seq gap", mut_seq_gap, false},
	{"seq retransmit", mut_seq_back, false},
	{"source port", mut_sport, false},
	{"destination port", mut_dport, false},
	{"timestamp differs", mut_tsval, false},
	{"options differ", mut_no_ts, false},
	{"after a short segment", mut_first_short, false},
	{"longer than first", mut_second_longer, false},
	{"FIN", mut_fin, false},
	{"SYN", mut_syn, false},
	{"RST", mut_rst, false},
	{"URG", mut_urg, false},
	{"CWR", mut_cwr, false},
	{"ECE", mut_ece, false},
	{"after PSH", mut_first_psh, false},
	{"after FIN", mut_first_fin, false},
	{"no ACK", mut_no_ack, false},
	{"ack number", mut_ack, false},
	{"window", mut_window, false},
	{"TTL", mut_ttl, false},
	{"TOS", mut_tos, false},
	{"DF clear", mut_no_df, true},
	{"pure ACK", mut_empty, false},
};

static void test_gro_no_merge(void **state)
{
	struct offload_gro *g = malloc(sizeof(*g));
	struct collector *c = collector_new();
	size_t k;
	int v;

	assert_non_null(g);
	for (v = 0; v < 2; v++) {
		for (k = 0; k < sizeof(gro_cases) / sizeof(gro_cases[0]); k++) {
			struct tcp_spec a = spec_default(v, 1000), b;
			uint8_t pa[1200], pb[1200];
			size_t la, lb;

			if (v && gro_cases[k].v4_only)
				continue;
			b = a;
			b.seq += 1000;
			gro_cases[k].mutate(&a, &b);
			la = build_tcp(pa, &a);
			lb = build_tcp(pb, &b);
			c->n = 0;
			offload_gro_init(g);
			assert_int_equal(offload_gro_add(g, pa, la, collect, c), 0);
			assert_int_equal(offload_gro_add(g, pb, lb, collect, c), 0);
			assert_int_equal(offload_gro_flush(g, collect, c), 0);
			if (c->n != 2)
				fail_msg("v%d %s: %d outputs", v ? 6 : 4, gro_cases[k].name, c->n);
			assert_alone(&c->r[0], pa, la);
			assert_alone(&c->r[1], pb, lb);
		}
	}
	collector_free(c);
	free(g);
}

/* a bulk flow interleaved with pure ACKs of the reverse flow still merges */
static void test_gro_interleaved_acks(void **state)
{
	struct offload_gro *g = malloc(sizeof(*g));
	struct collector *c = collector_new();
	static uint8_t data[10][1500], acks[10][100];
	size_t ld[10], la[10], i;
	int v;

	assert_non_null(g);
	for (v = 0; v < 2; v++) {
		c->n = 0;
		offload_gro_init(g);
		for (i = 0; i < 10; i++) {
			struct tcp_spec d = spec_default(v, GSO_SIZE), a = spec_default(v, 0);

			d.seq += (uint32_t)(i * GSO_SIZE);
			d.flags = i == 9 ? F_ACK | F_PSH : F_ACK;
			a.sport = 5201;
			a.dport = 40000;
			a.ack = 7 + (uint32_t)i;
			ld[i] = build_tcp(data[i], &d);
			la[i] = build_tcp(acks[i], &a);
			assert_int_equal(offload_gro_add(g, data[i], ld[i], collect, c), 0);
			assert_int_equal(offload_gro_add(g, acks[i], la[i], collect, c), 0);
		}
		assert_int_equal(offload_gro_flush(g, collect, c), 0);
		assert_int_equal(c->n, 11);
		assert_int_equal(c->r[0].vh.gso_type,
				 v ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4);
		assert_int_equal(c->r[0].iovcnt, 11);
		assert_int_equal(c->r[0].len, ld[0] + 9 * GSO_SIZE);
		assert_int_equal(c->r[0].pkt[(v ? 40 : 20) + 13], F_ACK | F_PSH);
		for (i = 0; i < 10; i++)
			assert_alone(&c->r[1 + i], acks[i], la[i]);
	}
	collector_free(c);
	free(g);
}

/* PSH or a short segment ends a merge; the next segment starts a new output */
static void test_gro_psh_and_short_end(void **state)
{
	struct offload_gro *g = malloc(sizeof(*g));
	struct collector *c = collector_new();
	uint8_t p[4][1500];
	size_t l[4], i;
	int which;

	assert_non_null(g);
	for (which = 0; which < 2; which++) {
		uint32_t seq = 1000;

		c->n = 0;
		offload_gro_init(g);
		for (i = 0; i < 4; i++) {
			struct tcp_spec s = spec_default(false, GSO_SIZE);

			s.seq = seq;
			if (i == 1 && which == 0)
				s.flags |= F_PSH;
			if (i == 1 && which == 1)
				s.payload = 500;
			l[i] = build_tcp(p[i], &s);
			seq += (uint32_t)s.payload;
			assert_int_equal(offload_gro_add(g, p[i], l[i], collect, c), 0);
		}
		assert_int_equal(offload_gro_flush(g, collect, c), 0);
		assert_int_equal(c->n, 2);
		assert_int_equal(c->r[0].iovcnt, 3);
		assert_int_equal(c->r[0].len, l[0] + l[1] - 52);
		assert_int_equal(c->r[0].pkt[33], which == 0 ? F_ACK | F_PSH : F_ACK);
		assert_int_equal(c->r[1].iovcnt, 3);
		assert_int_equal(rd32(c->r[1].pkt + 24), seq - 2 * GSO_SIZE);
		assert_int_equal(c->r[1].pkt[33], F_ACK);
		assert_int_equal(c->r[0].vh.gso_size, GSO_SIZE);
		assert_int_equal(c->r[1].vh.gso_size, GSO_SIZE);
	}
	collector_free(c);
	free(g);
}

static size_t build_icmp4(uint8_t *b)
{
	fill_ip(b, false, 1, 64, 0, 64, 1, true);
	memset(b + 20, 0xab, 44);
	return 64;
}

static void test_gro_passthrough(void **state)
{
	struct offload_gro *g = malloc(sizeof(*g));
	struct collector *c = collector_new();
	uint8_t udp4[200], udp6[200], icmp4[64], icmp6[100], junk[30] = {0x00}, opts[200];
	uint8_t ext6[200], tcp[1500], tcp2[1500];
	struct tcp_spec s = spec_default(false, 500);
	const uint8_t *pk[12];
	size_t ln[12], n = 0, i;

	assert_non_null(g);
	ln[n] = build_tcp(tcp, &s);
	pk[n++] = tcp;
	pk[n] = udp4, ln[n++] = build_udp(udp4, false, 100, false);
	pk[n] = udp6, ln[n++] = build_udp(udp6, true, 100, false);
	pk[n] = icmp4, ln[n++] = build_icmp4(icmp4);
	ln[n] = build_udp(icmp6, true, 20, false);
	icmp6[6] = 58;
	pk[n++] = icmp6;
	s.seq += 500;
	ln[n] = build_tcp(tcp2, &s);
	pk[n++] = tcp2;
	pk[n] = junk, ln[n++] = sizeof(junk);
	pk[n] = junk, ln[n++] = 0;
	/* IPv4 TCP with options, IPv6 with a hop-by-hop header: never merged */
	ln[n] = build_udp(opts, false, 60, false);
	opts[0] = 0x46;
	opts[9] = 6;
	pk[n++] = opts;
	ln[n] = build_udp(ext6, true, 60, false);
	ext6[6] = 0;
	pk[n++] = ext6;

	/* UDP and ICMP between two segments of a TCP flow do not stop the merge */
	offload_gro_init(g);
	for (i = 0; i < n; i++)
		assert_int_equal(offload_gro_add(g, pk[i], ln[i], collect, c), 0);
	assert_int_equal(offload_gro_flush(g, collect, c), 0);
	assert_int_equal(c->n, n - 1);
	assert_int_equal(c->r[0].iovcnt, 3);
	assert_int_equal(c->r[0].len, ln[0] + 500);
	for (i = 1; i < n - 1; i++)
		assert_alone(&c->r[i], pk[i < 5 ? i : i + 1], ln[i < 5 ? i : i + 1]);

	/* but a packet that may hide TCP (an IPv6 extension header) ends the open flow */
	c->n = 0;
	assert_int_equal(offload_gro_add(g, tcp, ln[0], collect, c), 0);
	assert_int_equal(offload_gro_add(g, ext6, ln[n - 1], collect, c), 0);
	assert_int_equal(offload_gro_add(g, tcp2, ln[5], collect, c), 0);
	assert_int_equal(offload_gro_flush(g, collect, c), 0);
	assert_int_equal(c->n, 3);
	assert_alone(&c->r[2], tcp2, ln[5]);
	collector_free(c);
	free(g);
}

/* the 64 KiB cap, the packet and flow limits, and write errors */
static void test_gro_limits(void **state)
{
	struct offload_gro *g = malloc(sizeof(*g));
	struct collector *c = collector_new();
	static uint8_t p[200][1500];
	size_t l[200], i, total;
	int r;

	assert_non_null(g);
	/* 60 full segments: 47 fit in 64 KiB (52 + 47 * 1368 = 64348) */
	offload_gro_init(g);
	for (i = 0; i < 60; i++) {
		struct tcp_spec s = spec_default(false, GSO_SIZE);

		s.seq += (uint32_t)(i * GSO_SIZE);
		l[i] = build_tcp(p[i], &s);
		assert_int_equal(offload_gro_add(g, p[i], l[i], collect, c), 0);
	}
	assert_int_equal(offload_gro_flush(g, collect, c), 0);
	assert_int_equal(c->n, 2);
	assert_int_equal(c->r[0].iovcnt, 1 + 47);
	assert_true(c->r[0].len <= 65535);
	assert_int_equal(c->r[1].iovcnt, 1 + 13);
	assert_l4_csum_ok(p[0], l[0]);

	/* 200 small segments: a flush is forced at OFFLOAD_GRO_MAX_PKTS */
	c->n = 0;
	for (i = 0; i < 200; i++) {
		struct tcp_spec s = spec_default(true, 100);

		s.seq += (uint32_t)(i * 100);
		l[i] = build_tcp(p[i], &s);
		assert_int_equal(offload_gro_add(g, p[i], l[i], collect, c), 0);
	}
	assert_int_equal(c->n, 1);
	assert_int_equal(c->r[0].iovcnt, 1 + OFFLOAD_GRO_MAX_PKTS);
	assert_int_equal(offload_gro_flush(g, collect, c), 0);
	assert_int_equal(c->n, 2);
	for (i = 0, total = 0; i < 2; i++)
		total += c->r[i].len - 72;
	assert_int_equal(total, 200 * 100);

	/* OFFLOAD_GRO_MAX_FLOWS + 1 flows force a flush; a failed write is reported */
	c->n = 0;
	c->fail_calls = 1;
	for (i = 0; i < OFFLOAD_GRO_MAX_FLOWS + 1; i++) {
		struct tcp_spec s = spec_default(false, 100);

		s.sport = (uint16_t)(1000 + i);
		l[i] = build_tcp(p[i], &s);
		r = offload_gro_add(g, p[i], l[i], collect, c);
		assert_int_equal(r, i == OFFLOAD_GRO_MAX_FLOWS ? -EIO : 0);
	}
	assert_int_equal(c->n, OFFLOAD_GRO_MAX_FLOWS);
	c->fail_calls = 1;
	assert_int_equal(offload_gro_flush(g, collect, c), -EIO);
	assert_int_equal(c->n, OFFLOAD_GRO_MAX_FLOWS + 1);
	assert_alone(&c->r[OFFLOAD_GRO_MAX_FLOWS], p[OFFLOAD_GRO_MAX_FLOWS],
		     l[OFFLOAD_GRO_MAX_FLOWS]);
	/* the batch was emptied */
	assert_int_equal(offload_gro_flush(g, collect, c), 0);
	assert_int_equal(c->n, OFFLOAD_GRO_MAX_FLOWS + 1);
	collector_free(c);
	free(g);
}

/* a segment with a bad IPv4 header checksum is not hidden inside a merge */
static void test_gro_bad_ip_csum(void **state)
{
	struct offload_gro *g = malloc(sizeof(*g));
	struct collector *c = collector_new();
	struct tcp_spec s = spec_default(false, 500);
	uint8_t a[700], b[700];
	size_t la, lb;

	assert_non_null(g);
	la = build_tcp(a, &s);
	s.seq += 500;
	lb = build_tcp(b, &s);
	b[10] ^= 1;
	offload_gro_init(g);
	assert_int_equal(offload_gro_add(g, a, la, collect, c), 0);
	assert_int_equal(offload_gro_add(g, b, lb, collect, c), 0);
	assert_int_equal(offload_gro_flush(g, collect, c), 0);
	assert_int_equal(c->n, 2);
	assert_alone(&c->r[1], b, lb);
	collector_free(c);
	free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csum_rfc1071),
		cmocka_unit_test(test_csum_matches_reference),
		cmocka_unit_test(test_tso_v4),
		cmocka_unit_test(test_tso_v6),
		cmocka_unit_test(test_roundtrip_v4),
		cmocka_unit_test(test_roundtrip_v6),
		cmocka_unit_test(test_uso_v4),
		cmocka_unit_test(test_uso_v6),
		cmocka_unit_test(test_udp_zero_csum),
		cmocka_unit_test(test_needs_csum_single),
		cmocka_unit_test(test_plain_copy),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_truncation_sweep),
		cmocka_unit_test(test_gro_no_merge),
		cmocka_unit_test(test_gro_interleaved_acks),
		cmocka_unit_test(test_gro_psh_and_short_end),
		cmocka_unit_test(test_gro_passthrough),
		cmocka_unit_test(test_gro_limits),
		cmocka_unit_test(test_gro_bad_ip_csum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
