// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "wg/allowedips.h"

/* Distinct addresses standing in for peers. */
static char peers[8];
#define A (&peers[0])
#define B (&peers[1])
#define C (&peers[2])
#define D (&peers[3])
#define E (&peers[4])

static int family_of(const char *ip)
{
	return strchr(ip, ':') ? AF_INET6 : AF_INET;
}

static void parse(const char *ip, int *family, uint8_t addr[16])
{
	*family = family_of(ip);
	memset(addr, 0, 16);
	assert_int_equal(inet_pton(*family, ip, addr), 1);
}

static int insert(struct allowedips *t, const char *ip, uint8_t cidr, void *value)
{
	uint8_t addr[16];
	int family;

	parse(ip, &family, addr);
	return allowedips_insert(t, family, addr, cidr, value);
}

static int remove_prefix(struct allowedips *t, const char *ip, uint8_t cidr, void *value)
{
	uint8_t addr[16];
	int family;

	parse(ip, &family, addr);
	return allowedips_remove(t, family, addr, cidr, value);
}

static void *lookup(const struct allowedips *t, const char *ip)
{
	uint8_t addr[16];
	int family;

	parse(ip, &family, addr);
	return allowedips_lookup(t, family, addr);
}

struct route {
	const char *ip;
	uint8_t cidr;
	void *value;
};

struct probe {
	const char *ip;
	void *expect;
};

static void insert_all(struct allowedips *t, const struct route *routes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(insert(t, routes[i].ip, routes[i].cidr, routes[i].value), 0);
}

static void check_probes(const struct allowedips *t, const struct probe *probes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (lookup(t, probes[i].ip) != probes[i].expect)
			fail_msg("lookup %s: got peer %td, want %td", probes[i].ip,
				 lookup(t, probes[i].ip) ? (char *)lookup(t, probes[i].ip) - peers
							 : -1,
				 probes[i].expect ? (char *)probes[i].expect - peers : -1);
	}
}

#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

/* Walk output collected as "addr/cidr" strings, in walk order. */
struct walk_out {
	char items[64][INET6_ADDRSTRLEN + 5];
	size_t n;
	size_t stop_after; /* 0: never stop */
};

static int collect(void *ctx, int family, const uint8_t *addr, uint8_t cidr, void *value)
{
	struct walk_out *out = ctx;
	char ip[INET6_ADDRSTRLEN];

	assert_non_null(value);
	assert_true(out->n < ARRAY_SIZE(out->items));
	assert_non_null(inet_ntop(family, addr, ip, sizeof(ip)));
	snprintf(out->items[out->n++], sizeof(out->items[0]), "%s/%u", ip, cidr);
	if (out->stop_after && out->n == out->stop_after)
		return 42;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Asserts the walk for value yields exactly the given prefixes, in any order. */
static void check_walk(const struct allowedips *t, void *value, const char *const *want, size_t n)
{
	struct walk_out out = {.n = 0};
	char sorted_want[64][INET6_ADDRSTRLEN + 5];

	assert_int_equal(allowedips_walk(t, value, collect, &out), 0);
	assert_int_equal(out.n, n);
	for (size_t i = 0; i < n; i++)
		snprintf(sorted_want[i], sizeof(sorted_want[i]), "%s", want[i]);
	qsort(out.items, n, sizeof(out.items[0]), cmp_str);
	qsort(sorted_want, n, sizeof(sorted_want[0]), cmp_str);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(out.items[i], sorted_want[i]);
}

static void test_longest_prefix_v4(void **state)
{
	static const struct route routes[] = {
		{"10.0.0.0", 8, A},    {"10.1.0.0", 16, B},    {"10.1.2.0", 24, C},
		{"10.1.2.128", 25, D}, {"192.168.0.0", 16, A}, {"192.168.77.0", 24, E},
		{"172.16.0.0", 12, B},
	};
	static const struct probe probes[] = {
		{"10.9.9.9", A},	   {"10.1.9.9", B},	     {"10.1.2.3", C},
		{"10.1.2.127", C},	   {"10.1.2.128", D},	     {"10.1.2.255", D},
		{"10.1.3.0", B},	   {"11.0.0.0", NULL},	     {"9.255.255.255", NULL},
		{"192.168.77.1", E},	   {"192.168.78.1", A},	     {"172.31.255.255", B},
		{"172.32.0.0", NULL},	   {"172.15.255.255", NULL}, {"0.0.0.0", NULL},
		{"255.255.255.255", NULL},
	};
	struct allowedips t;

	allowedips_init(&t);
	insert_all(&t, routes, ARRAY_SIZE(routes));
	assert_int_equal(t.count, ARRAY_SIZE(routes));
	check_probes(&t, probes, ARRAY_SIZE(probes));
	allowedips_free(&t);
	assert_null(t.root4);
	assert_int_equal(t.count, 0);
}

static void test_longest_prefix_v6(void **state)
{
	static const struct route routes[] = {
		{"2001:db8::", 32, A},	   {"2001:db8:1::", 48, B},
		{"2001:db8:1:2::", 64, C}, {"2001:db8:1:2:8000::", 65, D},
		{"fd00::", 8, E},	   {"2001:db8:1:2:3:4:5:0", 127, A},
	};
	static const struct probe probes[] = {
		{"2001:db8:ffff::1", A},
		{"2001:db8:1:ffff::1", B},
		{"2001:db8:1:2::1", C},
		{"2001:db8:1:2:7fff:ffff:ffff:ffff", C},
		{"2001:db8:1:2:8000::", D},
		{"2001:db8:1:2:3:4:5:0", A},
		{"2001:db8:1:2:3:4:5:1", A},
		{"2001:db8:1:2:3:4:5:2", C},
		{"2001:db9::", NULL},
		{"fdff:ffff::1", E},
		{"fe00::", NULL},
		{"::", NULL},
	};
	struct allowedips t;

	allowedips_init(&t);
	insert_all(&t, routes, ARRAY_SIZE(routes));
	check_probes(&t, probes, ARRAY_SIZE(probes));
	allowedips_free(&t);
}

static void test_default_and_host_routes(void **state)
{
	static const struct route routes[] = {
		{"0.0.0.0", 0, A},
		{"::", 0, B},
		{"192.0.2.1", 32, C},
		{"2001:db8::1", 128, D},
		{"0.0.0.0", 32, E},
		{"255.255.255.255", 32, E},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128, E},
	};
	static const struct probe probes[] = {
		{"192.0.2.1", C},
		{"192.0.2.0", A},
		{"192.0.2.2", A},
		{"0.0.0.0", E},
		{"0.0.0.1", A},
		{"255.255.255.255", E},
		{"255.255.255.254", A},
		{"2001:db8::1", D},
		{"2001:db8::", B},
		{"2001:db8::3", B},
		{"::", B},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", E},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", B},
	};
	struct allowedips t;

	allowedips_init(&t);
	insert_all(&t, routes, ARRAY_SIZE(routes));
	check_probes(&t, probes, ARRAY_SIZE(probes));
	allowedips_free(&t);
}

static void test_host_bits_masked(void **state)
{
	static const char *const want_a[] = {"10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0"};
	static const char *const want_b[] = {"192.168.1.0/24"};
	struct allowedips t;

	allowedips_init(&t);
	assert_int_equal(insert(&t, "10.1.2.3", 8, A), 0);
	assert_int_equal(insert(&t, "2001:db8:dead:beef::1", 32, A), 0);
	assert_int_equal(insert(&t, "1.2.3.4", 0, A), 0);
	assert_int_equal(insert(&t, "192.168.1.255", 24, B), 0);
	check_walk(&t, A, want_a, ARRAY_SIZE(want_a));
	check_walk(&t, B, want_b, ARRAY_SIZE(want_b));
	assert_ptr_equal(lookup(&t, "10.200.0.1"), A);
	assert_ptr_equal(lookup(&t, "2001:db8::"), A);
	assert_ptr_equal(lookup(&t, "192.168.1.0"), B);
	/* The same prefix spelled with other host bits is the same entry. */
	assert_int_equal(insert(&t, "10.255.255.255", 8, C), 0);
	assert_int_equal(t.count, 4);
	assert_ptr_equal(lookup(&t, "10.0.0.0"), C);
	allowedips_free(&t);
}

static void test_repoint(void **state)
{
	static const char *const want_b[] = {"10.0.0.0/8", "10.1.0.0/16"};
	static const char *const want_a[] = {"10.1.2.0/24"};
	struct allowedips t;

	allowedips_init(&t);
	assert_int_equal(insert(&t, "10.0.0.0", 8, A), 0);
	assert_int_equal(insert(&t, "10.1.0.0", 16, A), 0);
	assert_int_equal(insert(&t, "10.1.2.0", 24, A), 0);
	assert_int_equal(insert(&t, "10.0.0.0", 8, B), 0);
	assert_int_equal(insert(&t, "10.1.0.0", 16, B), 0);
	assert_int_equal(t.count, 3);
	assert_ptr_equal(lookup(&t, "10.2.0.0"), B);
	assert_ptr_equal(lookup(&t, "10.1.3.0"), B);
	assert_ptr_equal(lookup(&t, "10.1.2.0"), A);
	check_walk(&t, A, want_a, ARRAY_SIZE(want_a));
	check_walk(&t, B, want_b, ARRAY_SIZE(want_b));
	/* The old owner no longer owns it. */
	assert_int_equal(remove_prefix(&t, "10.0.0.0", 8, A), -ENOENT);
	assert_int_equal(remove_prefix(&t, "10.0.0.0", 8, B), 0);
	allowedips_free(&t);
}

static void test_invalid_arguments(void **state)
{
	uint8_t addr[16] = {10};
	struct allowedips t;

	allowedips_init(&t);
	assert_int_equal(allowedips_insert(&t, AF_INET, addr, 33, A), -EINVAL);
	assert_int_equal(allowedips_insert(&t, AF_INET6, addr, 129, A), -EINVAL);
	assert_int_equal(allowedips_insert(&t, AF_UNIX, addr, 8, A), -EINVAL);
	/* NULL is lookup's "no match"; storing it would be meaningless. */
	assert_int_equal(allowedips_insert(&t, AF_INET, addr, 8, NULL), -EINVAL);
	assert_int_equal(t.count, 0);
	assert_null(t.root4);
	assert_null(t.root6);
	assert_null(allowedips_lookup(&t, AF_UNIX, addr));
	assert_int_equal(allowedips_remove(&t, AF_INET, addr, 33, A), -ENOENT);
	assert_int_equal(allowedips_remove(&t, AF_UNIX, addr, 8, A), -ENOENT);
	allowedips_free(&t);
}

static void test_remove_exact(void **state)
{
	static const struct route routes[] = {
		{"10.0.0.0", 8, A},  {"10.1.0.0", 16, B},   {"10.1.2.0", 24, C},
		{"10.1.3.0", 24, D}, {"2001:db8::", 32, A}, {"2001:db8:1::", 48, B},
	};
	static const struct probe after[] = {
		{"10.1.2.1", A}, {"10.1.3.1", D},      {"10.1.4.1", A},
		{"10.2.0.0", A}, {"2001:db8:1::1", A}, {"2001:db8:2::1", A},
	};
	struct allowedips t;

	allowedips_init(&t);
	insert_all(&t, routes, ARRAY_SIZE(routes));
	/* Wrong value, wrong length, absent prefix, wrong family: nothing happens. */
	assert_int_equal(remove_prefix(&t, "10.1.0.0", 16, A), -ENOENT);
	assert_int_equal(remove_prefix(&t, "10.1.0.0", 17, B), -ENOENT);
	assert_int_equal(remove_prefix(&t, "10.1.0.0", 15, B), -ENOENT);
	assert_int_equal(remove_prefix(&t, "10.2.0.0", 16, B), -ENOENT);
	assert_int_equal(remove_prefix(&t, "::ffff:10.1.0.0", 16, B), -ENOENT);
	assert_int_equal(t.count, ARRAY_SIZE(routes));

	assert_int_equal(remove_prefix(&t, "10.1.0.0", 16, B), 0);
	assert_int_equal(remove_prefix(&t, "10.1.2.0", 24, C), 0);
	assert_int_equal(remove_prefix(&t, "2001:db8:1::", 48, B), 0);
	assert_int_equal(remove_prefix(&t, "10.1.2.0", 24, C), -ENOENT);
	assert_int_equal(t.count, 3);
	check_probes(&t, after, ARRAY_SIZE(after));

	/* Emptying the table leaves no nodes behind. */
	assert_int_equal(remove_prefix(&t, "10.0.0.0", 8, A), 0);
	assert_int_equal(remove_prefix(&t, "10.1.3.0", 24, D), 0);
	assert_int_equal(remove_prefix(&t, "2001:db8::", 32, A), 0);
	assert_int_equal(t.count, 0);
	assert_null(t.root4);
	assert_null(t.root6);
	assert_null(lookup(&t, "10.1.3.1"));
	allowedips_free(&t);
}

static void test_remove_by_value(void **state)
{
	static const struct route routes[] = {
		{"10.0.0.0", 8, A},	 {"10.1.0.0", 16, B}, {"10.1.2.0", 24, A},
		{"10.1.2.0", 25, C},	 {"0.0.0.0", 0, B},   {"2001:db8::", 32, B},
		{"2001:db8:1::", 48, A}, {"fd00::1", 128, A},
	};
	static const struct probe after_b[] = {
		{"10.1.9.9", A},       {"10.1.2.1", C},	     {"10.1.2.200", A}, {"11.0.0.0", NULL},
		{"2001:db8::1", NULL}, {"2001:db8:1::1", A}, {"fd00::1", A},
	};
	static const char *const want_a[] = {"10.0.0.0/8", "10.1.2.0/24", "2001:db8:1::/48",
					     "fd00::1/128"};
	static const char *const want_c[] = {"10.1.2.0/25"};
	struct allowedips t;

	allowedips_init(&t);
	insert_all(&t, routes, ARRAY_SIZE(routes));
	allowedips_remove_by_value(&t, B);
	assert_int_equal(t.count, 5);
	check_probes(&t, after_b, ARRAY_SIZE(after_b));
	check_walk(&t, B, NULL, 0);
	check_walk(&t, A, want_a, ARRAY_SIZE(want_a));
	check_walk(&t, C, want_c, ARRAY_SIZE(want_c));

	allowedips_remove_by_value(&t, D); /* owns nothing */
	allowedips_remove_by_value(&t, NULL);
	assert_int_equal(t.count, 5);
	allowedips_remove_by_value(&t, A);
	allowedips_remove_by_value(&t, C);
	assert_int_equal(t.count, 0);
	assert_null(t.root4);
	assert_null(t.root6);
	allowedips_free(&t);
}

static void test_walk(void **state)
{
	static const struct route routes[] = {
		{"10.0.0.0", 8, A}, {"10.1.0.0", 16, B}, {"192.168.0.0", 16, A},
		{"::", 0, C},	    {"fd00::", 8, A},	 {"fd00:1::", 32, B},
	};
	static const char *const want_all[] = {"10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/16",
					       "::/0",	     "fd00::/8",    "fd00:1::/32"};
	static const char *const want_a[] = {"10.0.0.0/8", "192.168.0.0/16", "fd00::/8"};
	static const char *const want_b[] = {"10.1.0.0/16", "fd00:1::/32"};
	static const char *const want_c[] = {"::/0"};
	struct walk_out out = {.n = 0, .stop_after = 2};
	struct allowedips t;

	allowedips_init(&t);
	check_walk(&t, NULL, NULL, 0);
	insert_all(&t, routes, ARRAY_SIZE(routes));
	check_walk(&t, NULL, want_all, ARRAY_SIZE(want_all));
	check_walk(&t, A, want_a, ARRAY_SIZE(want_a));
	check_walk(&t, B, want_b, ARRAY_SIZE(want_b));
	check_walk(&t, C, want_c, ARRAY_SIZE(want_c));
	check_walk(&t, D, NULL, 0);
	/* A non-zero return stops the walk and is passed back. */
	assert_int_equal(allowedips_walk(&t, NULL, collect, &out), 42);
	assert_int_equal(out.n, 2);
	allowedips_free(&t);
}

static void test_families_separate(void **state)
{
	uint8_t addr[16] = {10, 0, 0, 1};
	struct allowedips t;

	allowedips_init(&t);
	assert_int_equal(insert(&t, "0.0.0.0", 0, A), 0);
	assert_int_equal(insert(&t, "10.0.0.0", 8, B), 0);
	/* The same leading bytes as a v6 address match nothing. */
	assert_null(allowedips_lookup(&t, AF_INET6, addr));
	assert_null(lookup(&t, "::ffff:10.0.0.1"));
	assert_ptr_equal(allowedips_lookup(&t, AF_INET, addr), B);

	assert_int_equal(insert(&t, "a00::", 8, C), 0);
	assert_ptr_equal(allowedips_lookup(&t, AF_INET6, addr), C);
	assert_ptr_equal(allowedips_lookup(&t, AF_INET, addr), B);
	assert_int_equal(allowedips_remove(&t, AF_INET6, addr, 8, B), -ENOENT);
	assert_int_equal(allowedips_remove(&t, AF_INET, addr, 8, B), 0);
	assert_ptr_equal(allowedips_lookup(&t, AF_INET, addr), A);
	assert_ptr_equal(allowedips_lookup(&t, AF_INET6, addr), C);
	allowedips_free(&t);
}

/* Randomized comparison against a linear scan. xorshift64 so the sequence is libc-independent. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

struct ref_entry {
	int family;
	uint8_t addr[16];
	uint8_t cidr;
	void *value;
	int live;
};

#define N_REF	 3000
#define N_LOOKUP 4000

static struct ref_entry ref[N_REF];
static size_t n_ref;

static unsigned int fam_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

static int prefix_contains(const struct ref_entry *e, int family, const uint8_t *addr)
{
	if (e->family != family)
		return 0;
	for (unsigned int i = 0; i < e->cidr; i++) {
		unsigned int shift = 7 - (i & 7);

		if (((addr[i / 8] >> shift) & 1) != ((e->addr[i / 8] >> shift) & 1))
			return 0;
	}
	return 1;
}

static void mask(uint8_t *addr, unsigned int bits, unsigned int cidr)
{
	for (unsigned int i = cidr; i < bits; i++)
		addr[i / 8] &= (uint8_t) ~(0x80 >> (i & 7));
}

static void *ref_lookup(int family, const uint8_t *addr)
{
	const struct ref_entry *best = NULL;

	for (size_t i = 0; i < n_ref; i++) {
		if (ref[i].live && prefix_contains(&ref[i], family, addr) &&
		    (!best || ref[i].cidr > best->cidr))
			best = &ref[i];
	}
	return best ? best->value : NULL;
}

static struct ref_entry *ref_find(int family, const uint8_t *addr, uint8_t cidr)
{
	for (size_t i = 0; i < n_ref; i++) {
		if (ref[i].live && ref[i].family == family && ref[i].cidr == cidr &&
		    !memcmp(ref[i].addr, addr, fam_bits(family) / 8))
			return &ref[i];
	}
	return NULL;
}

static size_t ref_live(void)
{
	size_t n = 0;

	for (size_t i = 0; i < n_ref; i++)
		n += ref[i].live != 0;
	return n;
}

/*
 * Random addresses drawn near a few bases so prefixes nest and share long common parts, which
 * is where branching and splicing happen.
 */
static void random_addr(int family, uint8_t *addr)
{
	static const uint8_t bases[4][16] = {
		{10, 0, 0, 0},
		{192, 168, 0, 0},
		{0x20, 0x01, 0x0d, 0xb8},
		{0xfd, 0x00, 0x12, 0x34, 0x56, 0x78},
	};
	unsigned int bits = fam_bits(family), keep = (unsigned int)(rng() % (bits + 1));

	for (unsigned int i = 0; i < bits / 8; i++)
		addr[i] = (uint8_t)rng();
	if (rng() % 4) {
		const uint8_t *base = bases[rng() % 4];

		/* The first `keep` bits come from the base. */
		for (unsigned int i = 0; i < keep; i++) {
			uint8_t bit = (uint8_t)(0x80 >> (i & 7));

			addr[i / 8] = (uint8_t)((addr[i / 8] & ~bit) | (base[i / 8] & bit));
		}
	}
}

static void compare_lookups(const struct allowedips *t)
{
	uint8_t addr[16];

	for (int i = 0; i < N_LOOKUP; i++) {
		int family = rng() % 2 ? AF_INET : AF_INET6;

		memset(addr, 0, sizeof(addr));
		if (n_ref && rng() % 2) {
			/* Somewhere inside (or at the edge of) a stored prefix. */
			const struct ref_entry *e = &ref[rng() % n_ref];
			unsigned int bits = fam_bits(e->family);

			family = e->family;
			random_addr(family, addr);
			for (unsigned int b = 0; b < e->cidr; b++) {
				uint8_t bit = (uint8_t)(0x80 >> (b & 7));

				addr[b / 8] =
					(uint8_t)((addr[b / 8] & ~bit) | (e->addr[b / 8] & bit));
			}
			if (rng() % 8 == 0)
				mask(addr, bits, e->cidr);
		} else {
			random_addr(family, addr);
		}
		assert_ptr_equal(allowedips_lookup(t, family, addr), ref_lookup(family, addr));
	}
}

static int walk_against_ref(void *ctx, int family, const uint8_t *addr, uint8_t cidr, void *value)
{
	size_t *seen = ctx;
	struct ref_entry *e = ref_find(family, addr, cidr);

	assert_non_null(e);
	assert_ptr_equal(e->value, value);
	(*seen)++;
	return 0;
}

static void test_random_against_linear_scan(void **state)
{
	struct allowedips t;
	uint8_t addr[16];
	size_t seen;

	rng_state = 0x9e3779b97f4a7c15ULL;
	n_ref = 0;
	allowedips_init(&t);

	for (int round = 0; round < 2; round++) {
		/* Insert; duplicates (after masking) re-point the existing entry. */
		while (n_ref < (size_t)N_REF * (size_t)(round + 1) / 2) {
			int family = rng() % 2 ? AF_INET : AF_INET6;
			unsigned int bits = fam_bits(family);
			uint8_t cidr = (uint8_t)(rng() % (bits + 1));
			void *value = &peers[rng() % ARRAY_SIZE(peers)];
			struct ref_entry *e;

			memset(addr, 0, sizeof(addr));
			random_addr(family, addr);
			assert_int_equal(allowedips_insert(&t, family, addr, cidr, value), 0);
			mask(addr, bits, cidr);
			e = ref_find(family, addr, cidr);
			if (!e) {
				e = &ref[n_ref++];
				e->family = family;
				memcpy(e->addr, addr, sizeof(addr));
				e->cidr = cidr;
				e->live = 1;
			}
			e->value = value;
		}
		assert_int_equal(t.count, ref_live());
		compare_lookups(&t);

		/* Remove about a third exactly, trying a wrong owner first. */
		for (size_t i = 0; i < n_ref; i++) {
			struct ref_entry *e = &ref[i];
			void *other = e->value == A ? B : A;

			if (!e->live || rng() % 3)
				continue;
			assert_int_equal(allowedips_remove(&t, e->family, e->addr, e->cidr, other),
					 -ENOENT);
			assert_int_equal(
				allowedips_remove(&t, e->family, e->addr, e->cidr, e->value), 0);
			e->live = 0;
		}
		assert_int_equal(t.count, ref_live());
		compare_lookups(&t);

		/* And everything one peer owned. */
		allowedips_remove_by_value(&t, &peers[round]);
		for (size_t i = 0; i < n_ref; i++) {
			if (ref[i].value == &peers[round])
				ref[i].live = 0;
		}
		assert_int_equal(t.count, ref_live());
		compare_lookups(&t);

		seen = 0;
		assert_int_equal(allowedips_walk(&t, NULL, walk_against_ref, &seen), 0);
		assert_int_equal(seen, ref_live());
	}

	/* Churn down to nothing: every node must be gone, not just every value. */
	for (size_t i = 0; i < n_ref; i++) {
		if (ref[i].live) {
			assert_int_equal(allowedips_remove(&t, ref[i].family, ref[i].addr,
							   ref[i].cidr, ref[i].value),
					 0);
			ref[i].live = 0;
		}
	}
	assert_int_equal(t.count, 0);
	assert_null(t.root4);
	assert_null(t.root6);
	allowedips_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_longest_prefix_v4),
		cmocka_unit_test(test_longest_prefix_v6),
		cmocka_unit_test(test_default_and_host_routes),
		cmocka_unit_test(test_host_bits_masked),
		cmocka_unit_test(test_repoint),
		cmocka_unit_test(test_invalid_arguments),
		cmocka_unit_test(test_remove_exact),
		cmocka_unit_test(test_remove_by_value),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_families_separate),
		cmocka_unit_test(test_random_against_linear_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
