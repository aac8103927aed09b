/* SPDX-License-Identifier: MIT */
/*
 * proxy: the userspace path between WireGuard and one peer's ICE session.
 *
 * One UDP socket bound to 127.0.0.1:0, the "proxy endpoint": the daemon sets the WireGuard
 * peer's endpoint to it, so WireGuard's packets for that peer arrive here and go out through
 * ICE, and what ICE receives is sent to WireGuard's listen port from this same socket. WireGuard
 * thus sees the peer at the proxy endpoint and roams nowhere else; when ICE selects another
 * pair only the ICE side changes, and no new handshake is needed.
 *
 * Datagrams from any other source than WireGuard's port on 127.0.0.1 are dropped, so another
 * local process cannot inject into the peer's path. Lives on a GMainContext; one datagram per
 * syscall (v0: no batching).
 */
#ifndef WICE_DAEMON_PROXY_H
#define WICE_DAEMON_PROXY_H

#include <glib.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_MAX_DATAGRAM 65535
#define PROXY_BURST	   64 /* datagrams read per wakeup before yielding to the loop */

struct proxy;

/* Called for each datagram WireGuard sent to the proxy endpoint; buf valid during the call. */
typedef void (*proxy_send_fn)(void *data, const uint8_t *buf, size_t len);

int proxy_new(GMainContext *ctx, proxy_send_fn on_wg_datagram, void *data, struct proxy **ret);
/* Accepts NULL, returns NULL. */
struct proxy *proxy_free(struct proxy *p);

/* The proxy endpoint: 127.0.0.1 and the port the kernel gave. */
const struct sockaddr_in *proxy_endpoint(const struct proxy *p);

/* Where WireGuard listens (127.0.0.1:port); 0 until set. */
void proxy_set_wg_port(struct proxy *p, uint16_t port);

/* Sends one datagram to WireGuard. Returns 0, -ENOTCONN (no port yet) or -errno. */
int proxy_to_wg(struct proxy *p, const uint8_t *buf, size_t len);

/* Counters, for status. */
void proxy_counters(const struct proxy *p, uint64_t *ret_to_peer, uint64_t *ret_from_peer);

#endif
