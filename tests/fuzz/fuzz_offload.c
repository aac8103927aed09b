// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for offload.c. Input: a struct virtio_net_hdr (10 bytes) then an IP packet,
 * as read from TUN. The packet is segmented; every GSO segment must carry valid checksums; the
 * raw packet and every segment then go through GRO, whose outputs must point only at memory we
 * gave it, and whose merged outputs must segment again.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_offload.c \
 *	src/wg/offload.c -o fuzz_offload && ./fuzz_offload tests/fuzz/corpus/offload
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wg/offload.h"

#define FUZZ_MTU      1500
#define FUZZ_STRIDE   2048
#define FUZZ_MAX_SEGS 48
#define FUZZ_RESEGS   (FUZZ_MAX_SEGS + 2)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t segs[FUZZ_STRIDE * FUZZ_MAX_SEGS];
static uint8_t resegs[FUZZ_STRIDE * FUZZ_RESEGS];
static uint8_t flat[OFFLOAD_VNET_HDR_LEN + 65535 + 40];
static struct offload_gro gro;

struct bounds {
	const uint8_t *raw;
	size_t raw_len;
};

static int inside(const void *p, size_t len, const void *base, size_t base_len)
{
	const uint8_t *b = base, *q = p;

	return q >= b && len <= base_len && (size_t)(q - b) <= base_len - len;
}

/* IPv4 header checksum and full TCP/UDP checksum of a finished segment */
static void check_segment(const uint8_t *ip, size_t len)
{
	size_t hl = ip[0] >> 4 == 6 ? 40 : (size_t)(ip[0] & 15) * 4;
	uint8_t proto = ip[0] >> 4 == 6 ? ip[6] : ip[9];
	uint32_t sum;

	if (ip[0] >> 4 == 4 && offload_csum_fold(offload_csum_add(0, ip, hl)))
		abort();
	sum = ip[0] >> 4 == 6 ? offload_csum_add(0, ip + 8, 32) : offload_csum_add(0, ip + 12, 8);
	sum = offload_csum_add(sum, ip + hl, len - hl);
	sum += proto + (uint32_t)(len - hl); /* both < 2^17: no wrap of the 32-bit sum */
	if (offload_csum_fold(sum))
		abort();
}

static int write_cb(void *ctx, const struct iovec *iov, int iovcnt)
{
	const struct bounds *b = ctx;
	struct virtio_net_hdr vh;
	size_t total = 0, lens[FUZZ_RESEGS];
	int i, n;

	if (iovcnt < 2 || iovcnt > OFFLOAD_GRO_MAX_PKTS + 1)
		abort();
	for (i = 0; i < iovcnt; i++) {
		const void *p = iov[i].iov_base;
		size_t l = iov[i].iov_len;

		if (!inside(p, l, &gro, sizeof(gro)) && !inside(p, l, b->raw, b->raw_len) &&
		    !inside(p, l, segs, sizeof(segs)))
			abort();
		if (total + l > sizeof(flat))
			abort();
		memcpy(flat + total, p, l); /* reads every byte: the sanitizer checks them */
		total += l;
	}
	/* the vnet header (and any rewritten IP/TCP header) is a copy inside struct offload_gro */
	if (iov[0].iov_len < OFFLOAD_VNET_HDR_LEN ||
	    !inside(iov[0].iov_base, iov[0].iov_len, &gro, sizeof(gro)))
		abort();
	memcpy(&vh, flat, sizeof(vh));
	if (vh.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		/* a merged packet: what the kernel would accept must segment back */
		n = offload_segment(&vh, flat + OFFLOAD_VNET_HDR_LEN, total - OFFLOAD_VNET_HDR_LEN,
				    FUZZ_STRIDE, resegs, FUZZ_STRIDE, FUZZ_RESEGS, lens);
		if (n < 2)
			abort();
		for (i = 0; i < n; i++)
			check_segment(resegs + i * FUZZ_STRIDE, lens[i]);
	} else if (vh.flags != VIRTIO_NET_HDR_F_DATA_VALID || iovcnt != 2) {
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_net_hdr vh;
	struct bounds b;
	size_t lens[FUZZ_MAX_SEGS], len;
	int n, i;

	if (size < OFFLOAD_VNET_HDR_LEN)
		return 0;
	memcpy(&vh, data, sizeof(vh));
	b.raw = data + OFFLOAD_VNET_HDR_LEN;
	b.raw_len = len = size - OFFLOAD_VNET_HDR_LEN;

	n = offload_segment(&vh, b.raw, len, FUZZ_MTU, segs, FUZZ_STRIDE, FUZZ_MAX_SEGS, lens);
	if (n == 0 || n > FUZZ_MAX_SEGS)
		abort();
	if (n > 0 && offload_segment_len(&vh, b.raw, len) < 0)
		abort();
	for (i = 0; i < n; i++) {
		if (lens[i] > FUZZ_MTU || !lens[i])
			abort();
		if (vh.gso_type != VIRTIO_NET_HDR_GSO_NONE)
			check_segment(segs + i * FUZZ_STRIDE, lens[i]);
	}

	offload_gro_init(&gro);
	offload_gro_add(&gro, b.raw, len, write_cb, &b);
	for (i = 0; i < n; i++)
		offload_gro_add(&gro, segs + i * FUZZ_STRIDE, lens[i], write_cb, &b);
	offload_gro_flush(&gro, write_cb, &b);
	return 0;
}
