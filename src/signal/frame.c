/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include "signal/frame.h"

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -EBADMSG;
}

int frame_oneof(const uint8_t *buf, size_t len, unsigned int max_field, const uint8_t **ret,
		size_t *ret_len)
{
	const uint8_t *p = buf, *end = buf + len;
	uint64_t key, n;
	int field = 0;

	while (p < end) {
		if (varint(&p, end, &key) || key >> 3 == 0 || key >> 3 > UINT32_MAX)
			return -EBADMSG;
		switch (key & 7) {
		case 0: /* varint */
			if (varint(&p, end, &n))
				return -EBADMSG;
			break;
		case 1: /* 64-bit */
		case 5: /* 32-bit */
			n = (key & 7) == 1 ? 8 : 4;
			if ((size_t)(end - p) < n)
				return -EBADMSG;
			p += n;
			break;
		case 2: /* length-delimited */
			if (varint(&p, end, &n) || n > (uint64_t)(end - p))
				return -EBADMSG;
			if (key >> 3 <= max_field) {
				field = (int)(key >> 3);
				*ret = p;
				*ret_len = (size_t)n;
			}
			p += n;
			continue;
		default: /* groups (3, 4) and reserved wire types */
			return -EBADMSG;
		}
		if (key >> 3 <= max_field)
			return -EBADMSG; /* a known field with the wrong wire type */
	}
	return field;
}
