/* SPDX-License-Identifier: MIT */
#include <string.h>
#include "wg/replay.h"

#define WORDS (WG_COUNTER_BITS_TOTAL / 64)

void replay_init(struct replay_window *w)
{
	memset(w, 0, sizeof(*w));
}

bool replay_check_and_update(struct replay_window *w, uint64_t counter)
{
	uint64_t index, top, bit;

	if (counter >= WG_REJECT_AFTER_MESSAGES)
		return false;
	counter++; /* greatest == 0 means "nothing yet", so shift by one */
	index = counter / 64;
	if (counter > w->greatest) {
		top = w->greatest / 64;
		/* Clear the words we move past: at most the whole ring. */
		uint64_t steps = index - top;

		if (steps > WORDS)
			steps = WORDS;
		for (uint64_t i = 1; i <= steps; i++)
			w->bits[(top + i) % WORDS] = 0;
		w->greatest = counter;
	} else if (w->greatest - counter > WG_COUNTER_WINDOW_SIZE) {
		return false;
	}
	bit = 1ULL << (counter % 64);
	if (w->bits[index % WORDS] & bit)
		return false;
	w->bits[index % WORDS] |= bit;
	return true;
}
