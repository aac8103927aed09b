/* SPDX-License-Identifier: MIT */
/*
 * Sliding anti-replay window over the data message counter (RFC 6479's bitmap scheme, as the
 * paper's section 5.4.6 asks). One window per receiving keypair; single writer.
 */
#ifndef WICE_WG_REPLAY_H
#define WICE_WG_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include "wg/messages.h"

struct replay_window {
	uint64_t greatest; /* highest counter accepted + 1; 0 before the first */
	uint64_t bits[WG_COUNTER_BITS_TOTAL / 64];
};

void replay_init(struct replay_window *w);
/*
 * Accepts counter (marking it seen) unless it was seen, fell behind the window, or is at or
 * beyond WG_REJECT_AFTER_MESSAGES. Call only after the packet authenticated.
 */
bool replay_check_and_update(struct replay_window *w, uint64_t counter);

#endif
