/* SPDX-License-Identifier: MIT */
/*
 * control: the daemon's control socket, and what `wice status` asks it.
 *
 * A unix stream socket (default CONTROL_SOCKET_DEFAULT; its directory created 0700, the socket
 * 0600: status names peers and addresses). Protocol: the client sends one line, "status\n";
 * the server answers one JSON document and closes. Anything else is answered with
 * {"error": "..."} and closed. Schema of a status:
 *
 *   {"interfaces": [{"name", "kind", "public_key", "listen_port", "signaling_backends",
 *     "signaling_connected", "signaling_disconnects",
 *     "peers": [{"public_key", "state", "selected_pair": {"local": CAND, "remote": CAND} | null,
 *                "relayed", "relay_reason", "last_handshake", "rx_bytes", "tx_bytes",
 *                "endpoint", "ice_restarts", "last_restart", "last_restart_reason",
 *                "pair_changes", "pair_selected", "connected_since", "recoveries",
 *                "last_recovery", "last_outage_ms"}]}]}
 *   CAND = {"type", "address", "port", "transport"}
 *
 * Keys are base64 as wg(8) prints them, last_handshake and the other times unix seconds (0:
 * never), endpoint "ADDR:PORT" / "[ADDR]:PORT" or null. The signaling_* members, and the
 * peers' from ice_restarts on, came after the first version: a reader takes a missing one for 0 /
 * null, so a newer `wice status` still reads an older daemon.
 *
 * The server lives on a GMainContext and never blocks it: clients are non-blocking, answers
 * are buffered and written as the socket accepts them, and every client has a deadline, so a
 * client that stalls costs a slot, never the loop. The daemon fills a struct control_status
 * through a callback when asked; this module knows nothing else about it.
 */
#ifndef WICE_DAEMON_CONTROL_H
#define WICE_DAEMON_CONTROL_H

#include <glib.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define CONTROL_SOCKET_DEFAULT "/run/wice/wice.sock"

#define CONTROL_MAX_CLIENTS	  16	     /* connections served at once; more are refused */
#define CONTROL_MAX_REQUEST	  64	     /* bytes of the request line, newline included */
#define CONTROL_MAX_RESPONSE	  (16 << 20) /* a bigger status is answered with an error */
#define CONTROL_CLIENT_TIMEOUT_MS 5000	     /* a whole exchange, accept to last byte */
#define CONTROL_MAX_INTERFACES	  4096
#define CONTROL_MAX_PEERS	  (1U << 16) /* per interface */

#define CONTROL_KEY_LEN	      32
#define CONTROL_TYPE_LEN      8	 /* "host", "srflx", "prflx", "relay" */
#define CONTROL_ADDR_LEN      64 /* an IPv6 address with a scope */
#define CONTROL_TRANSPORT_LEN 8	 /* "udp", "tcp" */
#define CONTROL_STATE_LEN     24
#define CONTROL_KIND_LEN      8 /* "kernel", "uapi" */
#define CONTROL_REASON_LEN    128
#define CONTROL_ENDPOINT_LEN  (INET6_ADDRSTRLEN + 16) /* "[ADDR%SCOPE]:PORT" */

struct control_candidate {
	char type[CONTROL_TYPE_LEN];
	char address[CONTROL_ADDR_LEN];
	uint16_t port;
	char transport[CONTROL_TRANSPORT_LEN];
};

struct control_peer {
	uint8_t public_key[CONTROL_KEY_LEN];
	char state[CONTROL_STATE_LEN]; /* the ICE session's state, e.g. "connected" */
	bool has_selected_pair;
	struct control_candidate local, remote;
	bool relayed;
	char relay_reason[CONTROL_REASON_LEN]; /* why relayed; "" when not */
	int64_t last_handshake;		       /* unix seconds; 0: never */
	uint64_t rx_bytes, tx_bytes;
	struct sockaddr_storage endpoint; /* AF_UNSPEC: none */

	/* Recovery: what ICE and the path went through (times unix seconds, 0: never). */
	uint32_t ice_restarts; /* ours, the peer's, and new sessions */
	int64_t last_restart;
	char last_restart_reason[CONTROL_REASON_LEN]; /* e.g. "local address change" */
	uint32_t pair_changes;			      /* selected pairs after the first */
	int64_t pair_selected;			      /* when the current pair was selected */
	int64_t connected_since;		      /* 0: not connected now */
	uint32_t recoveries; /* back to connected after a failure, or traffic after an outage */
	int64_t last_recovery;
	int64_t last_outage_ms; /* how long the last recovered outage lasted */
};

struct control_interface {
	char name[IFNAMSIZ];
	char kind[CONTROL_KIND_LEN];
	bool has_public_key;
	uint8_t public_key[CONTROL_KEY_LEN];
	uint16_t listen_port;
	/* Signaling backends: how many, connected now, connections lost since the start. */
	uint32_t signaling_backends, signaling_connected, signaling_disconnects;
	struct control_peer *peers;
	size_t n_peers, cap_peers;
};

struct control_status {
	struct control_interface *interfaces;
	size_t n_interfaces, cap_interfaces;
};

/* Appends a zeroed entry; -E2BIG past the limits above. *ret is valid until the next add. */
int control_status_add_interface(struct control_status *st, struct control_interface **ret);
int control_interface_add_peer(struct control_interface *iface, struct control_peer **ret);
/* Frees what st holds and zeroes it. */
void control_status_clear(struct control_status *st);

/* "A.B.C.D:PORT" or "[V6%SCOPE]:PORT" as wg(8) prints it; "" and 0 for AF_UNSPEC. */
int control_endpoint_format(char buf[static CONTROL_ENDPOINT_LEN],
			    const struct sockaddr_storage *ss);

/* The JSON document of st; *ret_json NUL-terminated, g_free() it. */
int control_status_to_json(const struct control_status *st, char **ret_json, size_t *ret_len);
/*
 * Reads a status document back (what `wice status` prints as a table). -EBADMSG for anything
 * that does not follow the schema, -EREMOTEIO for an {"error"} answer, whose text goes to
 * ret_error when it is not NULL (g_free() it).
 */
int control_status_from_json(const char *json, size_t len, struct control_status *ret,
			     char **ret_error);

/* ---- the server ---- */

struct control_server;

struct control_server_config {
	const char *path; /* NULL: CONTROL_SOCKET_DEFAULT */
	/* Fills st (zeroed on entry); a negative errno is answered as an error. */
	int (*get_status)(struct control_status *st, void *userdata);
	void *userdata;
	/* 0: the CONTROL_* defaults; tests shorten them. */
	unsigned int max_clients, timeout_ms;
	size_t max_response;
};

/*
 * Binds and listens on ctx (NULL: the default context). A stale socket at the path (nobody
 * accepting) is replaced; -EADDRINUSE when a live server holds it, -EEXIST when the path is
 * not a socket.
 */
int control_server_new(GMainContext *ctx, const struct control_server_config *cfg,
		       struct control_server **ret);
/* Accepts NULL, returns NULL. Closes every client and removes the socket it made. */
struct control_server *control_server_free(struct control_server *srv);
size_t control_server_n_clients(const struct control_server *srv);

/* ---- the client (blocking: it is for the CLI) ---- */

/* Sends "status\n" to path and returns the whole answer, NUL-terminated; g_free() it. */
int control_client_status(const char *path, unsigned int timeout_ms, char **ret_json,
			  size_t *ret_len);

#endif
