// SPDX-License-Identifier: MIT
/*
 * icmp.c: the "unreachable" errors written back into TUN, and their rate limit. One table of
 * input packets, each with the answer expected; every error built is taken apart field by
 * field, and its checksums are verified with a byte-at-a-time reference written here, never
 * with the offload_csum_* helpers icmp.c uses.
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

#include "wg/icmp.h"
#include "ref_bytes.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"

#define NSEC 1000000000ULL

static const uint8_t host4[4] = {10, 98, 0, 1}, gone4[4] = {10, 98, 0, 3};
static const uint8_t mcast4[4] = {224, 0, 0, 251}, bcast4[4] = {255, 255, 255, 255};
static const uint8_t zero4[4], loop4[4] = {127, 0, 0, 1};
static const uint8_t host6[16] = {0xfd, 0x98, [15] = 1}, gone6[16] = {0xfd, 0x98, [15] = 3};
static const uint8_t mcast6[16] = {0xff, 0x02, [15] = 1}, zero6[16], loop6[16] = {[15] = 1};

/* ---- reference helpers (deliberately naive) ---- */

/* ---- input packets ---- */

enum { EXT_NONE, EXT_HBH_DST, EXT_FRAG_FIRST, EXT_FRAG_LATER, EXT_TRUNC };

struct spec {
	bool v6;
	uint8_t proto;	    /* 1/58: ICMP with icmp_type; 6: TCP; 17: UDP */
	uint8_t icmp_type;  /* for ICMP */
	size_t payload;	    /* bytes after the IP header (and extension headers) */
	const uint8_t *src; /* default host */
	const uint8_t *dst; /* default gone */
	uint8_t ihl;	    /* IPv4: header length in words, default 5 */
	uint16_t frag;	    /* IPv4: flags and offset field, default DF */
	int ext;	    /* IPv6: extension headers before the upper layer */
	long len_delta;	    /* the length handed over differs from the packet's */
	long hdr_len_delta; /* the length field differs from the packet's */
	uint8_t version;    /* default 4 or 6 */
};

/* Builds the packet into b; returns the length to hand icmp_build_unreachable. */
static size_t build(uint8_t *b, const struct spec *s)
{
	size_t hl = s->v6 ? 40 : (size_t)(s->ihl ? s->ihl : 5) * 4, ext = 0, len, off;
	uint8_t upper = s->proto;

	if (s->v6 && s->ext == EXT_HBH_DST)
		ext = 16;
	else if (s->v6 && (s->ext == EXT_FRAG_FIRST || s->ext == EXT_FRAG_LATER))
		ext = 8;
	len = hl + ext + s->payload;
	memset(b, 0, len);
	for (size_t i = hl + ext; i < len; i++)
		b[i] = (uint8_t)(i * 7 + 1);
	if (s->v6) {
		b[0] = (uint8_t)((s->version ? s->version : 6) << 4);
		wr16(b + 4, (uint16_t)((long)(len - 40) + s->hdr_len_delta));
		b[7] = 64;
		memcpy(b + 8, s->src ? s->src : host6, 16);
		memcpy(b + 24, s->dst ? s->dst : gone6, 16);
		off = 40;
		switch (s->ext) {
		case EXT_HBH_DST: /* hop-by-hop, then destination options, 8 bytes each */
			b[6] = 0;
			b[off] = 60;
			b[off + 8] = upper;
			break;
		case EXT_FRAG_FIRST:
		case EXT_FRAG_LATER:
			b[6] = 44;
			b[off] = upper;
			wr16(b + off + 2, s->ext == EXT_FRAG_LATER ? (185 << 3) : 1 /* M */);
			break;
		case EXT_TRUNC: /* says hop-by-hop, but the packet ends after the fixed header */
			b[6] = 0;
			break;
		default:
			b[6] = upper;
		}
	} else {
		b[0] = (uint8_t)((s->version ? s->version : 4) << 4 | (hl / 4));
		wr16(b + 2, (uint16_t)((long)len + s->hdr_len_delta));
		wr16(b + 6, s->frag ? s->frag : 0x4000);
		b[8] = 64;
		b[9] = upper;
		memcpy(b + 12, s->src ? s->src : host4, 4);
		memcpy(b + 16, s->dst ? s->dst : gone4, 4);
		wr16(b + 10, (uint16_t)~ref_sum(b, hl, 0));
	}
	if ((upper == 1 || upper == 58) && s->payload) {
		b[hl + ext] = s->icmp_type;
		b[hl + ext + 1] = 0;
	}
	return (size_t)((long)len + s->len_delta);
}

/* ---- the table ---- */

struct tcase {
	const char *name;
	struct spec in;
	int want;	   /* negative errno, or 0: an error is built */
	size_t want_quote; /* bytes of the original quoted */
	size_t cap;	   /* out buffer size, default ICMP_ERR_MAX_LEN */
};

/* An error quoting q bytes of the packet; a packet refused with negative errno e. */
#define OK(n, q, ...)                                                                              \
	{                                                                                          \
		.name = n, .in = {__VA_ARGS__}, .want_quote = q                                    \
	}
#define NO(n, e, ...)                                                                              \
	{                                                                                          \
		.name = n, .in = {__VA_ARGS__}, .want = e                                          \
	}

static const struct tcase cases[] = {
	/* IPv4: RFC 792 quotes header + 8 bytes at least; RFC 1812 up to 576 bytes in all. */
	OK("v4 echo request", 84, .proto = 1, .icmp_type = 8, .payload = 64),
	OK("v4 tcp syn", 60, .proto = 6, .payload = 40),
	OK("v4 udp, 1400 bytes: quote capped at 576 total", 548, .proto = 17, .payload = 1380),
	OK("v4 just header + 8", 28, .proto = 17, .payload = 8),
	OK("v4 shorter than header + 8", 23, .proto = 17, .payload = 3),
	OK("v4 with options", 48, .proto = 6, .payload = 20, .ihl = 7),
	OK("v4 trailing bytes after tot_len", 36, .proto = 6, .payload = 20, .hdr_len_delta = -4),
	OK("v4 first fragment", 120, .proto = 17, .payload = 100, .frag = 0x2000),
	OK("v4 timestamp request", 40, .proto = 1, .icmp_type = 13, .payload = 20),
	NO("v4 icmp dest unreach", -EPERM, .proto = 1, .icmp_type = 3, .payload = 36),
	NO("v4 icmp time exceeded", -EPERM, .proto = 1, .icmp_type = 11, .payload = 36),
	NO("v4 icmp redirect", -EPERM, .proto = 1, .icmp_type = 5, .payload = 36),
	NO("v4 icmp unknown type", -EPERM, .proto = 1, .icmp_type = 42, .payload = 8),
	NO("v4 later fragment", -EPERM, .proto = 17, .payload = 100, .frag = 185),
	NO("v4 later fragment of icmp", -EPERM, .proto = 1, .icmp_type = 8, .payload = 64,
	   .frag = 1),
	NO("v4 multicast source", -EPERM, .proto = 17, .payload = 20, .src = mcast4),
	NO("v4 broadcast source", -EPERM, .proto = 17, .payload = 20, .src = bcast4),
	NO("v4 zero source", -EPERM, .proto = 17, .payload = 20, .src = zero4),
	NO("v4 loopback source", -EPERM, .proto = 17, .payload = 20, .src = loop4),
	NO("v4 multicast destination", -EPERM, .proto = 17, .payload = 20, .dst = mcast4),
	NO("v4 broadcast destination", -EPERM, .proto = 17, .payload = 20, .dst = bcast4),
	NO("v4 truncated header", -EBADMSG, .proto = 17, .payload = 0, .len_delta = -1),
	NO("v4 tot_len beyond data", -EBADMSG, .proto = 17, .payload = 20, .len_delta = -1),
	NO("v4 tot_len below header", -EBADMSG, .proto = 17, .payload = 20, .hdr_len_delta = -21),
	NO("v4 ihl 4", -EBADMSG, .proto = 17, .payload = 20, .ihl = 4),
	NO("v4 options beyond data", -EBADMSG, .proto = 6, .payload = 0, .ihl = 15,
	   .len_delta = -20),
	NO("v4 icmp without its type byte", -EBADMSG, .proto = 1, .payload = 0),
	NO("version 5", -EBADMSG, .proto = 17, .payload = 20, .version = 5),
	{.name = "v4 buffer too small",
	 .in = {.proto = 6, .payload = 40},
	 .want = -ENOBUFS,
	 .cap = 87},
	{.name = "v4 buffer just big enough",
	 .in = {.proto = 6, .payload = 40},
	 .want_quote = 60,
	 .cap = 88},

	/* IPv6: RFC 4443 2.4 (c) quotes as much as fits in 1280 bytes. */
	OK("v6 echo request", 104, .v6 = true, .proto = 58, .icmp_type = 128, .payload = 64),
	OK("v6 tcp syn", 80, .v6 = true, .proto = 6, .payload = 40),
	OK("v6 udp, 1400 bytes: quote capped at 1280 total", 1232, .v6 = true, .proto = 17,
	   .payload = 1400),
	OK("v6 odd length", 53, .v6 = true, .proto = 17, .payload = 13),
	OK("v6 udp behind hop-by-hop and dest options", 86, .v6 = true, .proto = 17, .payload = 30,
	   .ext = EXT_HBH_DST),
	OK("v6 first fragment of an echo", 112, .v6 = true, .proto = 58, .icmp_type = 128,
	   .payload = 64, .ext = EXT_FRAG_FIRST),
	OK("v6 trailing bytes", 56, .v6 = true, .proto = 6, .payload = 20, .hdr_len_delta = -4),
	OK("v6 header only", 40, .v6 = true, .proto = 59, .payload = 0),
	NO("v6 icmp dest unreach", -EPERM, .v6 = true, .proto = 58, .icmp_type = 1, .payload = 48),
	NO("v6 icmp packet too big", -EPERM, .v6 = true, .proto = 58, .icmp_type = 2,
	   .payload = 48),
	NO("v6 icmp time exceeded", -EPERM, .v6 = true, .proto = 58, .icmp_type = 3, .payload = 48),
	NO("v6 icmp error behind extension headers", -EPERM, .v6 = true, .proto = 58,
	   .icmp_type = 1, .payload = 48, .ext = EXT_HBH_DST),
	NO("v6 later fragment", -EPERM, .v6 = true, .proto = 17, .payload = 64,
	   .ext = EXT_FRAG_LATER),
	NO("v6 multicast source", -EPERM, .v6 = true, .proto = 17, .payload = 20, .src = mcast6),
	NO("v6 unspecified source", -EPERM, .v6 = true, .proto = 17, .payload = 20, .src = zero6),
	NO("v6 loopback source", -EPERM, .v6 = true, .proto = 17, .payload = 20, .src = loop6),
	NO("v6 multicast destination", -EPERM, .v6 = true, .proto = 17, .payload = 20,
	   .dst = mcast6),
	NO("v6 truncated header", -EBADMSG, .v6 = true, .proto = 17, .payload = 0, .len_delta = -1),
	NO("v6 payload length beyond data", -EBADMSG, .v6 = true, .proto = 17, .payload = 20,
	   .len_delta = -1),
	NO("v6 extension header beyond data", -EBADMSG, .v6 = true, .proto = 17, .payload = 0,
	   .ext = EXT_TRUNC),
	NO("v6 icmp without its type byte", -EBADMSG, .v6 = true, .proto = 58, .payload = 0),
	{.name = "v6 buffer too small",
	 .in = {.v6 = true, .proto = 6, .payload = 40},
	 .want = -ENOBUFS,
	 .cap = 127},
};

static void check_v4_error(const uint8_t *in, const uint8_t *out, size_t n, size_t quote)
{
	assert_int_equal(n, 28 + quote);
	assert_int_equal(out[0], 0x45);
	assert_int_equal(rd16(out + 2), n);
	assert_true(out[8] > 0);			  /* TTL */
	assert_int_equal(out[9], 1);			  /* ICMP */
	assert_int_equal(rd16(out + 6) & 0x7fff, 0x4000); /* DF, not a fragment */
	assert_int_equal(ref_sum(out, 20, 0), 0xffff);	  /* header checksum */
	assert_memory_equal(out + 12, in + 16, 4);	  /* from the unreachable address */
	assert_memory_equal(out + 16, in + 12, 4);	  /* to the sender */
	assert_int_equal(out[20], 3);			  /* destination unreachable */
	assert_int_equal(out[21], 1);			  /* host unreachable */
	assert_int_equal(ref_sum(out + 20, n - 20, 0), 0xffff);
	assert_memory_equal(out + 24, zero4, 4); /* unused */
	assert_memory_equal(out + 28, in, quote);
}

static void check_v6_error(const uint8_t *in, const uint8_t *out, size_t n, size_t quote)
{
	uint64_t pseudo = 0;

	assert_int_equal(n, 48 + quote);
	assert_int_equal(out[0] >> 4, 6);
	assert_int_equal(rd16(out + 4), n - 40);
	assert_int_equal(out[6], 58);
	assert_true(out[7] > 0); /* hop limit */
	assert_memory_equal(out + 8, in + 24, 16);
	assert_memory_equal(out + 24, in + 8, 16);
	assert_int_equal(out[40], 1); /* destination unreachable */
	assert_int_equal(out[41], 3); /* address unreachable */
	/* RFC 8200 8.1 pseudo-header: source, destination, 32-bit length, zeros, next header */
	for (size_t i = 8; i < 40; i += 2)
		pseudo += rd16(out + i);
	pseudo += (n - 40) >> 16;
	pseudo += (n - 40) & 0xffff;
	pseudo += 58;
	assert_int_equal(ref_sum(out + 40, n - 40, pseudo), 0xffff);
	assert_memory_equal(out + 44, zero4, 4);
	assert_memory_equal(out + 48, in, quote);
}

static void test_table(void **state)
{
	static uint8_t in[2048], out[ICMP_ERR_MAX_LEN + 64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		size_t len = build(in, &c->in), cap = c->cap ? c->cap : ICMP_ERR_MAX_LEN;
		int r;

		print_message("%s\n", c->name);
		memset(out, 0xa5, sizeof(out));
		r = icmp_build_unreachable(in, len, out, cap);
		if (c->want) {
			assert_int_equal(r, c->want);
			continue;
		}
		assert_true(r > 0);
		assert_true((size_t)r <= cap);
		assert_int_equal(out[r], 0xa5); /* nothing written past the error */
		if (c->in.v6) {
			assert_true((size_t)r <= ICMP_ERR_MAX_LEN_V6);
			check_v6_error(in, out, (size_t)r, c->want_quote);
		} else {
			assert_true((size_t)r <= ICMP_ERR_MAX_LEN_V4);
			check_v4_error(in, out, (size_t)r, c->want_quote);
		}
	}
}

/* Every prefix of a valid packet: a whole error or -EBADMSG, never a read past len (ASan). */
static void test_truncations(void **state)
{
	static const struct spec specs[] = {
		{.proto = 1, .icmp_type = 8, .payload = 64},
		{.v6 = true, .proto = 17, .payload = 30, .ext = EXT_HBH_DST},
	};
	uint8_t out[ICMP_ERR_MAX_LEN];

	for (size_t s = 0; s < 2; s++) {
		uint8_t in[256];
		size_t len = build(in, &specs[s]);

		for (size_t l = 0; l < len; l++) {
			uint8_t *copy = malloc(l ? l : 1);

			memcpy(copy, in, l);
			assert_int_equal(icmp_build_unreachable(copy, l, out, sizeof(out)),
					 -EBADMSG);
			free(copy);
		}
		assert_true(icmp_build_unreachable(in, len, out, sizeof(out)) > 0);
	}
}

static void test_ratelimit(void **state)
{
	struct icmp_ratelimit rl = {0};
	uint64_t t = 5 * NSEC;
	int n = 0;

	/* A fresh bucket holds a full burst, then nothing until time passes. */
	while (icmp_ratelimit_allow(&rl, t))
		n++;
	assert_int_equal(n, ICMP_ERR_BURST);
	assert_false(icmp_ratelimit_allow(&rl, t + NSEC / ICMP_ERR_PER_SECOND - 1));
	assert_true(icmp_ratelimit_allow(&rl, t + NSEC / ICMP_ERR_PER_SECOND));
	assert_false(icmp_ratelimit_allow(&rl, t + NSEC / ICMP_ERR_PER_SECOND));

	/* A steady flood (one packet a millisecond for 10 s) gets ICMP_ERR_PER_SECOND a second. */
	n = 0;
	t += NSEC / ICMP_ERR_PER_SECOND;
	for (int ms = 1; ms <= 10000; ms++)
		n += icmp_ratelimit_allow(&rl, t + (uint64_t)ms * 1000000);
	assert_in_range(n, 10 * ICMP_ERR_PER_SECOND - 1, 10 * ICMP_ERR_PER_SECOND + 1);
	t += 10 * NSEC;

	/* A long quiet spell refills to the burst and no further. */
	t += 3600 * NSEC;
	n = 0;
	while (icmp_ratelimit_allow(&rl, t))
		n++;
	assert_int_equal(n, ICMP_ERR_BURST);

	/* Time going backwards mints nothing. */
	assert_false(icmp_ratelimit_allow(&rl, t - 10 * NSEC));
	assert_false(icmp_ratelimit_allow(&rl, t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_ratelimit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
