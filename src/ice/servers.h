/* SPDX-License-Identifier: MIT */
/*
 * ICE servers from URLs (RFC 7064 stun:, RFC 7065 turn:/turns:), with coturn's TURN REST
 * credentials (use-auth-secret; draft-uberti-behave-turn-rest-00):
 *
 *   stun:HOST[:PORT]
 *   turn:USER:PASS@HOST[:PORT][?transport=udp|tcp]
 *   turn:HOST[:PORT]?secret=S[&lifetime=SECONDS][&transport=udp|tcp]
 *   turns:USER:PASS@HOST[:PORT][?transport=tcp]          (also with secret=)
 *
 * HOST is a name, an IPv4 literal or a bracketed IPv6 literal. Default ports: 3478, turns: 5349.
 * A name is resolved later, off the main loop (ice/resolver.h): the ICE session uses addrs.
 * USER and PASS may carry %XX escapes (for ':' '@' '?' '&'). turns: is parsed and kept, marked
 * tls; the ICE session rejects it until wice has its own TLS wrapper (libnice's TURN-TLS mode
 * sends plaintext).
 */
#ifndef WICE_ICE_SERVERS_H
#define WICE_ICE_SERVERS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define ICE_SERVER_URL_MAX	    1024
#define ICE_SERVER_HOST_MAX	    256 /* a DNS name (253) or an address literal, with NUL */
#define ICE_SERVER_ADDR_MAX	    46	/* INET6_ADDRSTRLEN: a numeric address, with NUL */
#define ICE_SERVER_ADDRS_MAX	    2	/* one IPv4 and one IPv6 address per server */
#define ICE_SERVER_CRED_MAX	    256 /* user, password or REST secret, with NUL */
#define ICE_SERVER_PORT_DEFAULT	    3478
#define ICE_SERVER_PORT_TLS_DEFAULT 5349
/* TURN REST: credentials live this long unless the URL says lifetime=; renew at 3/4 of it. */
#define ICE_SERVER_REST_LIFETIME_DEFAULT (24 * 3600)
#define ICE_SERVER_REST_LIFETIME_MIN	 60

enum ice_server_kind { ICE_SERVER_STUN, ICE_SERVER_TURN };
enum ice_server_transport { ICE_SERVER_UDP, ICE_SERVER_TCP };

struct ice_server {
	enum ice_server_kind kind;
	enum ice_server_transport transport; /* STUN: always UDP; turns: always TCP */
	bool tls;			     /* turns: */
	char host[ICE_SERVER_HOST_MAX];	     /* without brackets */
	uint16_t port;
	char user[ICE_SERVER_CRED_MAX]; /* long-term credentials; "" with a secret */
	char pass[ICE_SERVER_CRED_MAX];
	char secret[ICE_SERVER_CRED_MAX]; /* TURN REST shared secret; "" without */
	uint32_t lifetime;		  /* TURN REST credential lifetime in seconds */
	/*
	 * What the ICE session talks to: the literal itself, or what the name resolved to (the
	 * first IPv4 and the first IPv6 address, IPv4 first). n_addrs is 0 until resolved.
	 */
	char addrs[ICE_SERVER_ADDRS_MAX][ICE_SERVER_ADDR_MAX];
	size_t n_addrs;
};

/*
 * Parses one URL. Returns 0, -EINVAL for anything malformed (unknown scheme, bad port, missing
 * credentials on turn:, credentials on stun:, unknown or repeated query keys, turns: over UDP),
 * or -ENAMETOOLONG. ret_srv is written only on success.
 */
int ice_server_parse(const char *url, struct ice_server *ret_srv);

/*
 * Replaces srv's addresses with the first IPv4 and the first IPv6 of addrs (numeric strings,
 * in the resolver's order; anything else is skipped). Returns 0, or -EADDRNOTAVAIL when there
 * is neither (srv unchanged).
 */
int ice_server_set_addrs(struct ice_server *srv, const char *const *addrs, size_t n);

/* Whether srv's host is a name (to resolve) rather than an address literal. */
bool ice_server_is_name(const struct ice_server *srv);

/*
 * The credentials to use at time now: the URL's own, or for a REST server
 * user = "<now + lifetime>:wice", pass = base64(HMAC-SHA1(secret, user)).
 * ret_renew gets when to ask again (now + 3/4 of the lifetime; 0 when they never expire).
 * Returns 0, -EINVAL (a STUN server) or -EIO (HMAC failed). Outputs written only on success.
 */
int ice_server_credentials(const struct ice_server *srv, time_t now,
			   char ret_user[static ICE_SERVER_CRED_MAX],
			   char ret_pass[static ICE_SERVER_CRED_MAX], time_t *ret_renew);

#endif
