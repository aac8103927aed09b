/* SPDX-License-Identifier: MIT */
#include <stddef.h>
#include "wg/crypto.h"
#include "wg/index.h"

static struct wg_index_entry **bucket(const struct wg_index_table *t, uint32_t index)
{
	return (struct wg_index_entry **)&t->buckets[index % WG_INDEX_BUCKETS];
}

static struct wg_index_entry *find(const struct wg_index_table *t, uint32_t index)
{
	for (struct wg_index_entry *e = *bucket(t, index); e; e = e->next)
		if (e->index == index)
			return e;
	return NULL;
}

uint32_t index_insert(struct wg_index_table *t, struct wg_index_entry *e, enum wg_index_type type,
		      struct wg_peer *peer)
{
	uint32_t index;

	do
		index = wgcrypto_random_u32();
	while (index == 0 || find(t, index));
	e->index = index;
	e->type = (uint8_t)type;
	e->peer = peer;
	e->next = *bucket(t, index);
	*bucket(t, index) = e;
	return index;
}

void index_remove(struct wg_index_table *t, struct wg_index_entry *e)
{
	struct wg_index_entry **p;

	if (!e->index)
		return;
	for (p = bucket(t, e->index); *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	e->index = 0;
	e->next = NULL;
}

void index_replace(struct wg_index_table *t, struct wg_index_entry *old, struct wg_index_entry *e,
		   enum wg_index_type type)
{
	uint32_t index = old->index;
	struct wg_peer *peer = old->peer;

	index_remove(t, old);
	e->index = index;
	e->type = (uint8_t)type;
	e->peer = peer;
	e->next = *bucket(t, index);
	*bucket(t, index) = e;
}

struct wg_index_entry *index_lookup(const struct wg_index_table *t, uint32_t index,
				    unsigned int types)
{
	struct wg_index_entry *e = find(t, index);

	return e && (e->type & types) ? e : NULL;
}
