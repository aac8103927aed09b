/* SPDX-License-Identifier: MIT */
/*
 * resolver: the addresses of ICE servers given by name (stun:NAME, turn:…@NAME), looked up off
 * the main loop. getaddrinfo blocks (a DNS server that does not answer holds it for seconds),
 * so every lookup runs in GResolver's thread pool and only its result comes back to the loop,
 * where it is written into the servers' addrs (ice_server_set_addrs: one IPv4 and one IPv6
 * address, from A and AAAA records alike). Servers given as address literals are left alone.
 *
 * A lookup that fails leaves the server's previous addresses as they were (logged, with the
 * resolver's message): a name that resolved once keeps working through a DNS outage.
 */
#ifndef WICE_ICE_RESOLVER_H
#define WICE_ICE_RESOLVER_H

#include <stddef.h>
#include <glib.h>
#include "ice/servers.h"

/* r: 0 when every name resolved, else the first failure (-EADDRNOTAVAIL, -EAGAIN, ...). */
typedef void (*ice_resolver_done_fn)(void *data, int r);

struct ice_resolver;

/* servers is kept, not copied: the results are written into it, on ctx. 0 or -ENOMEM. */
int ice_resolver_new(GMainContext *ctx, struct ice_server *servers, size_t n_servers,
		     struct ice_resolver **ret);
/*
 * Looks up every name again; done (may be NULL) is called on ctx once all lookups are back,
 * never from within this call. Returns the number of lookups started (0: no names, done is not
 * called), -EALREADY while a round is under way.
 */
int ice_resolver_run(struct ice_resolver *r, ice_resolver_done_fn done, void *data);
/*
 * One round, waited for by iterating ctx: for start-up, before the loop runs (the lookups
 * still run off this thread; sources attached to ctx are dispatched meanwhile). Returns what
 * done would get, or -EALREADY.
 */
int ice_resolver_wait(struct ice_resolver *r);
/*
 * From now on, a new round every interval_s seconds (0: none; none either without names),
 * skipped while one is under way.
 */
void ice_resolver_refresh_every(struct ice_resolver *r, unsigned int interval_s);
/* Cancels lookups under way (done is not called). Accepts NULL, returns NULL. */
struct ice_resolver *ice_resolver_free(struct ice_resolver *r);

#endif
