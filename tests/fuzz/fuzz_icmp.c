// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for icmp.c. Input: one byte choosing the output buffer's size (odd: the
 * full ICMP_ERR_MAX_LEN; even: byte * 6, so buffers that are too small get tried), then an IP
 * packet as read from TUN (without the vnet header). The packet and the output buffer are
 * heap copies of their exact sizes, so a read or write past either trips ASan.
 *
 * An error built must: fit the buffer and the RFC size limit, swap the packet's addresses,
 * quote a prefix of the packet, carry checksums that verify (checked here byte by byte), and
 * never be answered itself.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_icmp.c \
 *	src/wg/icmp.c src/wg/offload.c -o fuzz_icmp && ./fuzz_icmp tests/fuzz/corpus/icmp
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wg/icmp.h"
#include "tests/unit/ref_bytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(const uint8_t *pkt, size_t len, const uint8_t *out, size_t n)
{
	size_t hl = out[0] >> 4 == 6 ? 40 : 20;
	uint64_t pseudo = 0;

	if (n < hl + 8 || n - hl - 8 > len || memcmp(out + hl + 8, pkt, n - hl - 8))
		abort(); /* the quote is a prefix of the packet */
	if (hl == 20) {
		if (pkt[0] >> 4 != 4 || n > ICMP_ERR_MAX_LEN_V4 || rd16(out + 2) != n ||
		    ref_sum(out, 20, 0) != 0xffff || ref_sum(out + 20, n - 20, 0) != 0xffff ||
		    memcmp(out + 12, pkt + 16, 4) || memcmp(out + 16, pkt + 12, 4))
			abort();
		return;
	}
	for (size_t i = 8; i < 40; i += 2)
		pseudo += rd16(out + i);
	pseudo += n - 40 + 58;
	if (pkt[0] >> 4 != 6 || n > ICMP_ERR_MAX_LEN_V6 || rd16(out + 4) != n - 40 ||
	    ref_sum(out + 40, n - 40, pseudo) != 0xffff || memcmp(out + 8, pkt + 24, 16) ||
	    memcmp(out + 24, pkt + 8, 16))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *pkt, *out, *again;
	size_t cap, len;
	int r;

	if (size < 1)
		return 0;
	cap = data[0] & 1 ? ICMP_ERR_MAX_LEN : (size_t)data[0] * 6;
	len = size - 1;
	pkt = malloc(len ? len : 1);
	out = malloc(cap ? cap : 1);
	again = malloc(ICMP_ERR_MAX_LEN);
	if (!pkt || !out || !again)
		abort();
	memcpy(pkt, data + 1, len);

	r = icmp_build_unreachable(pkt, len, out, cap);
	if (r > 0) {
		if ((size_t)r > cap)
			abort();
		check_error(pkt, len, out, (size_t)r);
		/* RFC 1122 3.2.2, RFC 4443 2.4 (e): an error is never answered. */
		if (icmp_build_unreachable(out, (size_t)r, again, ICMP_ERR_MAX_LEN) != -EPERM)
			abort();
	} else if (r != -EBADMSG && r != -EPERM && r != -ENOBUFS) {
		abort();
	}
	free(pkt);
	free(out);
	free(again);
	return 0;
}
