// SPDX-License-Identifier: MIT
/*
 * The anti-replay window: scripted sequences with the expected verdict of every step, then
 * long random sequences checked against a reference model that remembers every counter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "wg/replay.h"

#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

#define W   WG_COUNTER_WINDOW_SIZE
#define REJ WG_REJECT_AFTER_MESSAGES

struct step {
	uint64_t counter;
	int verdict; /* 1: accepted, -1: rejected, 0: end of script */
};

/* clang-format off */
#define A(c) {(c), 1}
#define R(c) {(c), -1}
/* clang-format on */

static const struct {
	const char *name;
	struct step steps[12];
} scripts[] = {
	{"in order", {A(0), A(1), A(2), A(3), A(4)}},
	{"first is not zero", {A(5), A(0), A(4), A(6)}},
	{"duplicates", {A(0), R(0), A(1), R(1), R(0), A(2), R(2)}},
	{"out of order within the window", {A(10), A(7), A(9), A(8), R(7), A(11), A(0)}},
	{"oldest acceptable", {A(W), A(0), R(0), A(W + 1), A(1)}},
	{"one too old", {A(W + 1), R(0), A(1)}},
	{"far too old", {A(100000), R(100000 - W - 1), R(5), A(100000 - W)}},
	{"small jump keeps the word", {A(10), A(20), A(40), R(10), R(20), A(30)}},
	/* 100 and 100 + 8192 share a bit of the ring: the jump must clear it. */
	{"jump clears the bits it moves past", {A(100), A(101), A(8293), A(8292), R(8292), R(100)}},
	{"jump past the aliasing counter", {A(100), A(8342), A(8292), R(8292), R(100)}},
	{"jump of exactly the ring", {A(0), A(1), A(8192), A(8192 - W), R(8192 - W - 1), R(1)}},
	{"huge jump", {A(1), A(1ULL << 40), A((1ULL << 40) - 1), R(1), R(1ULL << 40)}},
	{"every word of the ring after a jump",
	 {A(3 * 8192), A(3 * 8192 - 64), A(3 * 8192 - 128), A(3 * 8192 - W), A(3 * 8192 - W + 63),
	  R(3 * 8192 - 64)}},
	{"limit", {A(REJ - 1), R(REJ), R(REJ + 1), R(UINT64_MAX), A(REJ - 2), R(REJ - 1)}},
	{"limit from nothing", {R(REJ), R(UINT64_MAX), A(0)}},
};

static void test_scripts(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(scripts); i++) {
		struct replay_window w;

		replay_init(&w);
		for (size_t j = 0; j < ARRAY_SIZE(scripts[i].steps) && scripts[i].steps[j].verdict;
		     j++) {
			const struct step *s = &scripts[i].steps[j];

			if (replay_check_and_update(&w, s->counter) != (s->verdict > 0))
				fail_msg("%s, step %zu: counter %llu should be %s", scripts[i].name,
					 j, (unsigned long long)s->counter,
					 s->verdict > 0 ? "accepted" : "rejected");
		}
	}
}

/* Every counter in a long in-order run is accepted exactly once, across many ring wraps. */
static void test_in_order_long(void **state)
{
	struct replay_window w;

	replay_init(&w);
	for (uint64_t c = 0; c < 20 * 8192; c++) {
		assert_true(replay_check_and_update(&w, c));
		assert_false(replay_check_and_update(&w, c));
		if (c >= 1)
			assert_false(replay_check_and_update(&w, c - 1));
	}
}

/* The same window reached through different histories agrees on the whole window. */
static void test_window_edges_after_history(void **state)
{
	static const uint64_t tops[] = {W, W + 1, 8192, 8192 + 63, 8192 + 64, 5 * 8192 + 17};

	for (size_t i = 0; i < ARRAY_SIZE(tops); i++) {
		struct replay_window w;
		uint64_t top = tops[i];

		replay_init(&w);
		assert_true(replay_check_and_update(&w, top));
		/* Everything from top - W up to top - 1 is new; below that is too old. */
		for (uint64_t c = top - W; c < top; c++)
			if (!replay_check_and_update(&w, c))
				fail_msg("top %llu: %llu rejected", (unsigned long long)top,
					 (unsigned long long)c);
		for (uint64_t c = top - W; c <= top; c++)
			assert_false(replay_check_and_update(&w, c));
		if (top > W)
			assert_false(replay_check_and_update(&w, top - W - 1));
	}
}

/* Reference model: every counter ever accepted, plus the window rule. */
#define MODEL_RANGE (1u << 22)

struct model {
	uint8_t *seen; /* one bit per counter below MODEL_RANGE */
	uint64_t greatest;
	bool any;
};

static bool model_check(struct model *m, uint64_t c)
{
	bool seen = m->seen[c / 8] & (1u << (c % 8));

	if (seen || (m->any && c + W < m->greatest))
		return false;
	m->seen[c / 8] |= (uint8_t)(1u << (c % 8));
	if (!m->any || c > m->greatest)
		m->greatest = c;
	m->any = true;
	return true;
}

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* splitmix64: reproducible and independent of libc */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void test_random_against_model(void **state)
{
	for (uint64_t seed = 1; seed <= 8; seed++) {
		struct model m = {.seen = calloc(MODEL_RANGE / 8, 1)};
		struct replay_window w;
		uint64_t top = 0;

		assert_non_null(m.seen);
		replay_init(&w);
		rng_state = seed;
		for (int i = 0; i < 200000; i++) {
			uint64_t r = rng(), c;

			/* Mostly near the front (reordering), sometimes around the window's edge
			 * or long ago, sometimes a jump forward. */
			switch (r % 16) {
			case 0:
				c = top + 1 + (r >> 8) % (3 * 8192);
				break;
			case 1:
			case 2:
				c = top + (r >> 8) % 130 - 65 + (r % 2 ? W : 0) - W;
				break;
			case 3:
				c = (r >> 8) % (top + 1);
				break;
			default:
				c = top + (r >> 8) % 64 - 48;
				break;
			}
			if (c >= MODEL_RANGE || (int64_t)c < 0)
				continue;
			if (c > top)
				top = c;
			if (replay_check_and_update(&w, c) != model_check(&m, c))
				fail_msg("seed %llu step %d: counter %llu (greatest %llu)",
					 (unsigned long long)seed, i, (unsigned long long)c,
					 (unsigned long long)m.greatest);
		}
		free(m.seen);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_in_order_long),
		cmocka_unit_test(test_window_edges_after_history),
		cmocka_unit_test(test_random_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
