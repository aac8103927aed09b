/* SPDX-License-Identifier: MIT */
/*
 * Cryptokey routing table: longest-prefix match from an IPv4 or IPv6 address to a peer.
 * One table per device holds both families. Values are opaque pointers (the device stores
 * struct wg_peer *). Not thread-safe: the device serialises writers and excludes readers.
 */
#ifndef WICE_WG_ALLOWEDIPS_H
#define WICE_WG_ALLOWEDIPS_H

#include <stdint.h>
#include <stddef.h>

struct allowedips_node;

struct allowedips {
	struct allowedips_node *root4;
	struct allowedips_node *root6;
	size_t count; /* prefixes stored, both families */
};

void allowedips_init(struct allowedips *t);
/* Frees every node; values are not touched. */
void allowedips_free(struct allowedips *t);

/*
 * Insert addr/cidr (family AF_INET: 4 bytes, AF_INET6: 16 bytes) mapping to value. Host bits
 * beyond cidr are ignored (masked off). An existing identical prefix is re-pointed to value.
 * Returns 0, -EINVAL for a bad family or cidr (> 32 / > 128), -ENOMEM.
 */
int allowedips_insert(struct allowedips *t, int family, const uint8_t *addr, uint8_t cidr,
		      void *value);
/* Remove exactly addr/cidr if it maps to value. Returns 0 or -ENOENT. */
int allowedips_remove(struct allowedips *t, int family, const uint8_t *addr, uint8_t cidr,
		      void *value);
/* Remove every prefix that maps to value. */
void allowedips_remove_by_value(struct allowedips *t, void *value);
/* Longest-prefix match; NULL when nothing matches. */
void *allowedips_lookup(const struct allowedips *t, int family, const uint8_t *addr);

/*
 * Call fn for every prefix mapping to value (value NULL: every prefix), addresses masked to
 * cidr. Stops and returns fn's value when fn returns non-zero; else 0.
 */
typedef int (*allowedips_walk_fn)(void *ctx, int family, const uint8_t *addr, uint8_t cidr,
				  void *value);
int allowedips_walk(const struct allowedips *t, void *value, allowedips_walk_fn fn, void *ctx);

#endif
