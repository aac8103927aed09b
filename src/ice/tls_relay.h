/* SPDX-License-Identifier: MIT */
/*
 * TURN over TLS (`turns:`, RFC 8656 §3.1 / RFC 7065) done by us, because libnice 0.1.21's own
 * TURN-TLS mode sends plaintext STUN over TCP.
 *
 * A relay listens on 127.0.0.1 on an ephemeral port. libnice is given that port as a plain
 * `turn:127.0.0.1:PORT?transport=tcp` server; every TCP connection it opens there is bridged to
 * a fresh TLS connection (TLS >= 1.2, certificate chain and name verified) to the real TURN
 * server. STUN over TCP is a byte stream (RFC 8489 §6.2.2), so the relay copies bytes and never
 * parses them. One relay per `turns:` URL serves every ICE session of the daemon.
 *
 * Everything runs on the given GMainContext and never blocks: the server name is resolved with
 * GResolver, connect, handshake and I/O are non-blocking. Each direction of each connection has
 * a fixed buffer of TLS_RELAY_BUF_MAX bytes; when it is full the relay stops reading from the
 * sending side, so TCP flow control pushes back on it. A failed certificate verification closes
 * the local connection (libnice then sees the TURN server as unreachable) with one log line.
 *
 * The listening socket is reachable by any local process; through it that process gets only
 * a TLS pipe to the TURN server it could open itself. Credentials stay in libnice's stream.
 */
#ifndef WICE_ICE_TLS_RELAY_H
#define WICE_ICE_TLS_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#define TLS_RELAY_BUF_MAX	       16384 /* bytes per direction per connection */
#define TLS_RELAY_CONN_MAX	       256   /* concurrent connections per relay */
#define TLS_RELAY_HANDSHAKE_TIMEOUT_MS 10000 /* resolve + connect + TLS handshake */
#define TLS_RELAY_BACKLOG	       32

struct tls_relay;

struct tls_relay_stats {
	unsigned int connections;      /* open now */
	size_t buffered;	       /* bytes held in all connection buffers now */
	uint64_t accepted;	       /* local connections taken */
	uint64_t refused;	       /* closed at once: over TLS_RELAY_CONN_MAX */
	uint64_t verify_failures;      /* server certificate or name rejected */
	uint64_t failures;	       /* resolve, connect, handshake or I/O errors, timeouts */
	uint64_t bytes_up, bytes_down; /* plaintext carried to / from the server */
};

/* Creates a relay to server_host:server_port and attaches it to ctx (NULL: the global default
 * context). server_host is a DNS name or an IP literal. ca_file is a PEM bundle of trusted CAs,
 * NULL for the system store. The certificate is checked against sni, or server_host when sni is
 * NULL: as an IP address when that is an IP literal (then no SNI is sent, RFC 6066 §3), as a
 * DNS name otherwise. Returns 0 and *ret, -EINVAL, -ENOENT/-EIO for an unusable ca_file,
 * -errno from the listening socket, -ENOMEM. */
int tls_relay_new(GMainContext *ctx, const char *server_host, uint16_t server_port,
		  const char *ca_file, const char *sni, struct tls_relay **ret);

/* The local port (host order) to give libnice as `turn:127.0.0.1:PORT?transport=tcp`. */
uint16_t tls_relay_port(const struct tls_relay *relay);

/* Counters and current usage, for `wice status` and tests. Call on the relay's context. */
void tls_relay_get_stats(const struct tls_relay *relay, struct tls_relay_stats *ret);

/* Closes the listening socket and every connection. Accepts NULL; returns NULL. Call from the
 * thread that runs the relay's context. */
struct tls_relay *tls_relay_free(struct tls_relay *relay);

#endif
