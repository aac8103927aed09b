/* SPDX-License-Identifier: MIT */
/*
 * The device's table of our 32-bit session indices (sender/receiver index fields), which
 * map incoming responses, cookie replies and data to a handshake or keypair. Indices are
 * random (paper 5.4.2), so they hash as they are. Changed only under the device write lock.
 */
#ifndef WICE_WG_INDEX_H
#define WICE_WG_INDEX_H

#include <stdint.h>

struct wg_peer;

enum wg_index_type { INDEX_HANDSHAKE = 1, INDEX_KEYPAIR = 2 };

struct wg_index_entry {
	struct wg_index_entry *next;
	struct wg_peer *peer;
	uint32_t index;
	uint8_t type;
};

#define WG_INDEX_BUCKETS 8192

struct wg_index_table {
	struct wg_index_entry *buckets[WG_INDEX_BUCKETS];
};

/* Picks a fresh random index not in use, stores it in e->index and links e. */
uint32_t index_insert(struct wg_index_table *t, struct wg_index_entry *e, enum wg_index_type type,
		      struct wg_peer *peer);
/* Moves old's index to e (keeps the number, as the responder's keypair inherits the
 * handshake's index). */
void index_replace(struct wg_index_table *t, struct wg_index_entry *old, struct wg_index_entry *e,
		   enum wg_index_type type);
void index_remove(struct wg_index_table *t, struct wg_index_entry *e);
/* types: a mask of enum wg_index_type values. */
struct wg_index_entry *index_lookup(const struct wg_index_table *t, uint32_t index,
				    unsigned int types);

#endif
