/* SPDX-License-Identifier: MIT */
/*
 * Reference helpers for tests and fuzz targets that check packets: big-endian reads and
 * writes, and the Internet checksum (RFC 1071) written the naive way, so that what it checks
 * (offload.c, icmp.c) is never checked with itself.
 */
#ifndef WICE_TESTS_REF_BYTES_H
#define WICE_TESTS_REF_BYTES_H

#include <stddef.h>
#include <stdint.h>

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)(v >> 16));
	wr16(p + 2, (uint16_t)v);
}

/* Folded, uncomplemented one's complement sum of big-endian words, starting from init. */
static inline uint16_t ref_sum(const uint8_t *p, size_t len, uint64_t init)
{
	uint64_t s = init;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += rd16(p + i);
	if (len & 1)
		s += (uint64_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

#endif
