/* SPDX-License-Identifier: MIT */
/*
 * The hand-read part of the signal server's frames: frame_oneof over client and server
 * frames, then protobuf-c on the member it returns, as both WebSocket ends do.
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -Ibuild tests/fuzz/fuzz_frame.c \
 *	src/signal/frame.c build/signaling.pb-c.c -lprotobuf-c -o fuzz_frame
 */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "signal/frame.h"
#include "signaling.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *m = NULL;
	size_t ml = 0;
	int f;

	for (unsigned int max = 2; max <= 4; max += 2) {
		m = NULL;
		ml = 0;
		f = frame_oneof(data, size, max, &m, &ml);
		if (f < 0)
			continue;
		if (f == 0)
			continue;
		/* The member must lie inside the input. */
		if (m < data || m + ml > data + size)
			__builtin_trap();
		if (f == 2) {
			Wice__Signaling__Envelope *e =
				wice__signaling__envelope__unpack(NULL, ml, m);

			if (e)
				wice__signaling__envelope__free_unpacked(e, NULL);
		} else if (f == 1) {
			Wice__Signaling__SubscribeRequest *s =
				wice__signaling__subscribe_request__unpack(NULL, ml, m);

			if (s)
				wice__signaling__subscribe_request__free_unpacked(s, NULL);
		}
	}
	return 0;
}
