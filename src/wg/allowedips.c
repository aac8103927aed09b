// SPDX-License-Identifier: MIT
/*
 * Cryptokey routing table as a path-compressed binary trie, one per address family.
 *
 * Invariants:
 *  - every node stores its key already masked to its cidr;
 *  - a child's cidr is strictly greater than its parent's, the child's key agrees with the
 *    parent's on the parent's first cidr bits, and the child hangs off bit[b] where b is the
 *    child's key bit at index parent->cidr;
 *  - a node with value NULL carries no prefix and exists only to branch: it always has two
 *    children (removal prunes it otherwise), so the trie never holds more than 2n - 1 nodes
 *    for n prefixes whatever the history of inserts and removals.
 *
 * Since cidr grows strictly along a path, no path is longer than 129 nodes (IPv6: /0../128),
 * which bounds the walk stack and the recursion of pruning.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "wg/allowedips.h"

#define ALLOWEDIPS_MAX_BITS  128
#define ALLOWEDIPS_MAX_DEPTH (ALLOWEDIPS_MAX_BITS + 1)

struct allowedips_node {
	struct allowedips_node *bit[2];
	void *value; /* NULL: branching node, no prefix of its own */
	uint8_t cidr;
	uint8_t key[]; /* 4 or 16 bytes, masked to cidr */
};

static unsigned int family_bits(int family)
{
	switch (family) {
	case AF_INET:
		return 32;
	case AF_INET6:
		return 128;
	default:
		return 0;
	}
}

static struct allowedips_node **family_root(struct allowedips *t, int family)
{
	return family == AF_INET ? &t->root4 : &t->root6;
}

/* Bit i of addr, most significant bit of byte 0 first (network order). */
static inline unsigned int bit_at(const uint8_t *addr, unsigned int i)
{
	return (addr[i >> 3] >> (7 - (i & 7))) & 1;
}

static void mask_key(uint8_t *key, unsigned int len, unsigned int cidr)
{
	unsigned int full = cidr / 8;

	if (full < len) {
		key[full] &= (uint8_t)(0xff00 >> (cidr & 7));
		memset(key + full + 1, 0, len - full - 1);
	}
}

/*
 * Whether addr lies inside the node's prefix, given that the first `from` bits already matched
 * an ancestor. Only the bytes holding bits [from, cidr) are looked at.
 */
static inline bool prefix_matches(const struct allowedips_node *node, const uint8_t *addr,
				  unsigned int from)
{
	unsigned int i, full = node->cidr / 8, rem = node->cidr & 7;

	for (i = from / 8; i < full; i++) {
		if (addr[i] != node->key[i])
			return false;
	}
	return !rem || !((addr[full] ^ node->key[full]) & (0xff00 >> rem));
}

/* Length of the common prefix of a and b, at most limit bits. */
static unsigned int common_bits(const uint8_t *a, const uint8_t *b, unsigned int limit)
{
	unsigned int i, n;

	for (i = 0; i * 8 < limit; i++) {
		uint8_t x = a[i] ^ b[i];

		if (x) {
			n = i * 8 + (unsigned int)__builtin_clz(x) - 24;
			return n < limit ? n : limit;
		}
	}
	return limit;
}

static struct allowedips_node *node_new(const uint8_t *key, unsigned int len, unsigned int cidr,
					void *value)
{
	struct allowedips_node *node = calloc(1, sizeof(*node) + len);

	if (!node)
		return NULL;
	memcpy(node->key, key, len);
	mask_key(node->key, len, cidr);
	node->cidr = (uint8_t)cidr;
	node->value = value;
	return node;
}

void allowedips_init(struct allowedips *t)
{
	memset(t, 0, sizeof(*t));
}

static void free_trie(struct allowedips_node *root)
{
	struct allowedips_node *stack[ALLOWEDIPS_MAX_DEPTH + 1], *node;
	size_t len = 0;

	if (root)
		stack[len++] = root;
	/* Each pop pushes at most two, one of which is popped next: depth + 1 entries suffice. */
	while (len) {
		node = stack[--len];
		if (node->bit[1])
			stack[len++] = node->bit[1];
		if (node->bit[0])
			stack[len++] = node->bit[0];
		free(node);
	}
}

void allowedips_free(struct allowedips *t)
{
	free_trie(t->root4);
	free_trie(t->root6);
	allowedips_init(t);
}

int allowedips_insert(struct allowedips *t, int family, const uint8_t *addr, uint8_t cidr,
		      void *value)
{
	unsigned int bits = family_bits(family), len = bits / 8, common;
	struct allowedips_node **link, *node, *fresh, *branch;
	uint8_t key[ALLOWEDIPS_MAX_BITS / 8];

	/* A NULL value would be indistinguishable from "no match" in lookup. */
	if (!bits || cidr > bits || !value)
		return -EINVAL;
	memcpy(key, addr, len);
	mask_key(key, len, cidr);

	link = family_root(t, family);
	while ((node = *link)) {
		common = common_bits(node->key, key, node->cidr < cidr ? node->cidr : cidr);
		if (common == node->cidr) {
			if (node->cidr == cidr) {
				/* Same prefix: re-point, or give a branching node a value. */
				if (!node->value)
					t->count++;
				node->value = value;
				return 0;
			}
			link = &node->bit[bit_at(key, node->cidr)];
			continue;
		}
		/*
		 * node's prefix does not contain the new one: either the new one contains node's,
		 * or the two part at bit `common` and need a branching node above both.
		 */
		fresh = node_new(key, len, cidr, value);
		if (!fresh)
			return -ENOMEM;
		if (common == cidr) {
			/* New prefix contains node's. */
			fresh->bit[bit_at(node->key, cidr)] = node;
			*link = fresh;
		} else {
			branch = node_new(key, len, common, NULL);
			if (!branch) {
				free(fresh);
				return -ENOMEM;
			}
			branch->bit[bit_at(node->key, common)] = node;
			branch->bit[bit_at(key, common)] = fresh;
			*link = branch;
		}
		t->count++;
		return 0;
	}
	fresh = node_new(key, len, cidr, value);
	if (!fresh)
		return -ENOMEM;
	*link = fresh;
	t->count++;
	return 0;
}

/*
 * A node without value and with fewer than two children is useless: replace it in its parent's
 * slot by its only child, or by nothing.
 */
static void prune_node(struct allowedips_node **link)
{
	struct allowedips_node *node = *link;

	if (node->value || (node->bit[0] && node->bit[1]))
		return;
	*link = node->bit[0] ? node->bit[0] : node->bit[1];
	free(node);
}

int allowedips_remove(struct allowedips *t, int family, const uint8_t *addr, uint8_t cidr,
		      void *value)
{
	unsigned int bits = family_bits(family), len = bits / 8;
	struct allowedips_node **link, **parent_link = NULL, *node;
	uint8_t key[ALLOWEDIPS_MAX_BITS / 8];

	if (!bits || cidr > bits || !value)
		return -ENOENT;
	memcpy(key, addr, len);
	mask_key(key, len, cidr);

	link = family_root(t, family);
	while ((node = *link) && node->cidr <= cidr) {
		if (!prefix_matches(node, key, 0))
			break;
		if (node->cidr == cidr) {
			if (node->value != value)
				break;
			node->value = NULL;
			t->count--;
			prune_node(link);
			/*
			 * Dropping a leaf can leave a valueless parent with one child. When the
			 * node had a child it was spliced, and the parent still has two.
			 */
			if (parent_link)
				prune_node(parent_link);
			return 0;
		}
		parent_link = link;
		link = &node->bit[bit_at(key, node->cidr)];
	}
	return -ENOENT;
}

/* Recursion depth is bounded by ALLOWEDIPS_MAX_DEPTH (see the top of the file). */
static size_t remove_value(struct allowedips_node **link, void *value)
{
	struct allowedips_node *node = *link;
	size_t removed = 0;

	if (!node)
		return 0;
	removed += remove_value(&node->bit[0], value);
	removed += remove_value(&node->bit[1], value);
	if (node->value == value) {
		node->value = NULL;
		removed++;
	}
	prune_node(link);
	return removed;
}

void allowedips_remove_by_value(struct allowedips *t, void *value)
{
	if (!value)
		return;
	t->count -= remove_value(&t->root4, value);
	t->count -= remove_value(&t->root6, value);
}

void *allowedips_lookup(const struct allowedips *t, int family, const uint8_t *addr)
{
	const struct allowedips_node *node;
	unsigned int bits, matched = 0;
	void *best = NULL;

	if (family == AF_INET) {
		node = t->root4;
		bits = 32;
	} else if (family == AF_INET6) {
		node = t->root6;
		bits = 128;
	} else {
		return NULL;
	}
	while (node && prefix_matches(node, addr, matched)) {
		if (node->value)
			best = node->value;
		if (node->cidr == bits)
			break;
		matched = node->cidr;
		node = node->bit[bit_at(addr, node->cidr)];
	}
	return best;
}

static int walk_trie(const struct allowedips_node *root, int family, void *value,
		     allowedips_walk_fn fn, void *ctx)
{
	const struct allowedips_node *stack[ALLOWEDIPS_MAX_DEPTH + 1], *node;
	size_t len = 0;
	int r;

	if (root)
		stack[len++] = root;
	/* Pre-order, bit 0 first: prefixes come out in address order, shorter ones first. */
	while (len) {
		node = stack[--len];
		if (node->value && (!value || node->value == value)) {
			r = fn(ctx, family, node->key, node->cidr, node->value);
			if (r)
				return r;
		}
		if (node->bit[1])
			stack[len++] = node->bit[1];
		if (node->bit[0])
			stack[len++] = node->bit[0];
	}
	return 0;
}

int allowedips_walk(const struct allowedips *t, void *value, allowedips_walk_fn fn, void *ctx)
{
	int r;

	r = walk_trie(t->root4, AF_INET, value, fn, ctx);
	if (r)
		return r;
	return walk_trie(t->root6, AF_INET6, value, fn, ctx);
}
