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
 * local process cannot inject into the peer's path. Lives on a GMainContext.
 *
 * Batched both ways, as WireGuard sends in bursts (a TCP window's worth of segments at a time):
 * WireGuard's datagrams are read with recvmmsg(), up to PROXY_BURST per call, and handed to the
 * callback in one array (one call into libnice for all of them). Datagrams for WireGuard are
 * queued by proxy_to_wg() and written with sendmmsg() once per main-loop iteration (libnice
 * delivers what it read in one dispatch one callback at a time), or at once when the queue
 * holds PROXY_QUEUE_MAX datagrams or PROXY_QUEUE_BYTES.
 */
#ifndef WICE_DAEMON_PROXY_H
#define WICE_DAEMON_PROXY_H

#include <glib.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PROXY_MAX_DATAGRAM 65535
#define PROXY_BURST	   64 /* datagrams read per recvmmsg(), and per wakeup */
/* Queued for WireGuard before a flush; the bytes hold any datagram, so one always fits. */
#define PROXY_QUEUE_MAX	  64
#define PROXY_QUEUE_BYTES (4 * PROXY_MAX_DATAGRAM)
/*
 * Socket buffers of the proxy socket: a burst of either side must not overflow them (the
 * default, net.core.rmem_default, 208 KiB on Debian, is less than PROXY_QUEUE_BYTES). Set
 * with SO_*BUFFORCE (the daemon runs with CAP_NET_ADMIN), else capped at net.core.*mem_max.
 */
#define PROXY_SOCKBUF (4 << 20)

struct proxy;

/*
 * Called with the datagrams (1 to PROXY_BURST, oldest first) WireGuard sent to the proxy
 * endpoint; valid during the call only.
 */
typedef void (*proxy_send_fn)(void *data, const struct iovec *dgrams, size_t n);

int proxy_new(GMainContext *ctx, proxy_send_fn on_wg_datagram, void *data, struct proxy **ret);
/* Accepts NULL, returns NULL. */
struct proxy *proxy_free(struct proxy *p);

/* The proxy endpoint: 127.0.0.1 and the port the kernel gave. */
const struct sockaddr_in *proxy_endpoint(const struct proxy *p);

/* Where WireGuard listens (127.0.0.1:port); 0 until set. */
void proxy_set_wg_port(struct proxy *p, uint16_t port);

/*
 * Queues one datagram for WireGuard (copied; sent by the next flush). Returns 0, -ENOTCONN (no
 * port yet), -EMSGSIZE. A datagram the flush cannot send (WireGuard's socket buffer full) is
 * dropped, as on any UDP path.
 */
int proxy_to_wg(struct proxy *p, const uint8_t *buf, size_t len);
/* Sends what is queued now; also done by the main loop. */
void proxy_flush(struct proxy *p);

/* Counters, for status. */
void proxy_counters(const struct proxy *p, uint64_t *ret_to_peer, uint64_t *ret_from_peer);

#endif
