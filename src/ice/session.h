/* SPDX-License-Identifier: MIT */
/*
 * One ICE session per WireGuard peer: one libnice agent, one stream, one component, on the
 * caller's GMainContext. Full ICE (RFC 8445) with Trickle ICE (RFC 8838), ICE-TCP (RFC 6544),
 * STUN/TURN servers, and consent freshness (RFC 7675) with keepalives.
 *
 * Everything runs on the context given to ice_session_new(): functions must be called from the
 * thread that iterates it, and every callback is invoked from it, with no lock of ours held.
 * Callbacks may call any ice_session_* function of their session except ice_session_free().
 *
 * Signaling order does not matter within a generation: remote candidates and remote
 * end-of-candidates that arrive before ice_session_start() or before the remote credentials are
 * held (up to ICE_REMOTE_CANDIDATES_MAX) and handed to libnice once both are there. Across a
 * remote restart it does: a candidate carries no ufrag, so the peer's new credentials must be
 * given before its new candidates (the daemon holds candidates of a Message.session_id whose
 * credentials it has not seen yet).
 *
 * Restart (RFC 8445 section 9): ice_session_restart() gives new local credentials and signals the
 * local candidates again; the remote peer, seeing a new ufrag, restarts too (this session does
 * so by itself in ice_session_set_remote_credentials()). libnice keeps the selected pair (and
 * its TURN allocation) across the restart and keeps sending on it until a pair checked with the
 * new credentials is selected: make-before-break. It does not gather again: a restart finds no
 * new local addresses or server-reflexive mappings and keeps the old TURN credentials. For
 * those, make a new session.
 */
#ifndef WICE_ICE_SESSION_H
#define WICE_ICE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <glib.h>
#include "ice/servers.h"

typedef struct _NiceCandidate NiceCandidate;

#define ICE_FOUNDATION_MAX	  33  /* RFC 8445 section 5.1.1.3: 1 to 32 ice-chars, with NUL */
#define ICE_ADDRESS_MAX		  46  /* INET6_ADDRSTRLEN */
#define ICE_UFRAG_MAX		  257 /* RFC 8839 section 5.4: up to 256 characters, with NUL */
#define ICE_PWD_MAX		  257
#define ICE_REMOTE_CANDIDATES_MAX 64 /* held before credentials, and per generation */
#define ICE_SERVERS_MAX		  8  /* NICE_CANDIDATE_MAX_TURN_SERVERS */
#define ICE_COMPONENT		  1  /* WireGuard needs one */
#define ICE_SEND_MAX		  65535
#define ICE_SEND_BATCH_MAX	  64 /* datagrams per call into libnice */

/* The numbers are those of proto/signaling.proto's Candidate, 0 meaning unspecified. */
enum ice_candidate_type {
	ICE_CANDIDATE_HOST = 1,
	ICE_CANDIDATE_SRFLX = 2,
	ICE_CANDIDATE_PRFLX = 3,
	ICE_CANDIDATE_RELAY = 4,
};
enum ice_transport { ICE_TRANSPORT_UDP = 1, ICE_TRANSPORT_TCP = 2 };
enum ice_tcptype {
	ICE_TCPTYPE_NONE = 0, /* UDP */
	ICE_TCPTYPE_ACTIVE = 1,
	ICE_TCPTYPE_PASSIVE = 2,
	ICE_TCPTYPE_SO = 3,
};

/* Field for field proto/signaling.proto's Candidate. */
struct ice_candidate {
	char foundation[ICE_FOUNDATION_MAX];
	uint32_t component;
	enum ice_transport transport;
	enum ice_tcptype tcptype;
	uint32_t priority;
	char address[ICE_ADDRESS_MAX]; /* numeric, no brackets */
	uint32_t port;		       /* 0..65535; an active TCP candidate may say 0 or 9 */
	enum ice_candidate_type type;
	char related_address[ICE_ADDRESS_MAX]; /* "" for host candidates */
	uint32_t related_port;
};

struct ice_pair {
	struct ice_candidate local;
	struct ice_candidate remote;
	/*
	 * The socket of a UDP pair whose local candidate is not relayed (from
	 * nice_agent_get_selected_socket()), else -1. libnice owns it: it stays open while this
	 * pair is selected and the session lives. Send on it only: libnice reads it (consent
	 * checks and WireGuard packets alike arrive through on_receive).
	 */
	int fd;
};

enum ice_state {
	ICE_STATE_NEW,	     /* created, gathering */
	ICE_STATE_CHECKING,  /* connectivity checks, no pair works yet */
	ICE_STATE_CONNECTED, /* a pair works: data flows (also during a restart) */
	ICE_STATE_FAILED,    /* no pair works, or consent was lost; ice_session_restart() */
	ICE_STATE_CLOSED,    /* after ice_session_close(): relays released, nothing more */
};

enum {
	ICE_FAMILY_IPV4 = 1 << 0,
	ICE_FAMILY_IPV6 = 1 << 1,
};

struct ice_session_callbacks {
	void (*on_local_credentials)(void *data, const char *ufrag, const char *pwd);
	/* Trickle: each local candidate as it is found; the same ones again after a restart. */
	void (*on_local_candidate)(void *data, const struct ice_candidate *c);
	void (*on_gathering_done)(void *data);
	void (*on_state)(void *data, enum ice_state state);
	void (*on_selected_pair)(void *data, const struct ice_pair *pair);
	/* Data from the peer on the selected pair; the buffer is valid during the call only. */
	void (*on_receive)(void *data, const uint8_t *buf, size_t len);
	/*
	 * TURN REST credentials reach 3/4 of their lifetime. libnice cannot change the
	 * credentials of a live allocation nor gather again: make a new session (may be NULL).
	 */
	void (*on_renew)(void *data);
};

struct ice_session_config {
	bool controlling; /* the peer with the smaller public key controls: the caller decides */
	/*
	 * Copied; at most one STUN server is used. Each server's addrs are used for host
	 * candidates of their family (a name resolving to IPv4 and IPv6 serves both).
	 */
	const struct ice_server *servers;
	size_t n_servers;
	bool udp; /* UDP candidates */
	bool tcp; /* ICE-TCP candidates (RFC 6544) */
	/*
	 * With tcp: gather TCP candidates, but neither report local nor accept remote ones until
	 * ice_session_use_tcp(). RFC 6544 section 8 makes a controlling agent with any TCP
	 * candidate nominate regularly, waiting for every better pair to fail (about 2 s behind
	 * NATs); UDP alone keeps aggressive nomination and its first pair within one round trip.
	 */
	bool tcp_later;
	unsigned int families; /* ICE_FAMILY_*; 0: both */
	/*
	 * Numeric addresses to gather host candidates on; NULL: every address of every interface
	 * up, loopback excepted (libnice's choice).
	 */
	const char *const *local_addresses;
	size_t n_local_addresses;
	const struct ice_session_callbacks *cb;
	void *data;
};

struct ice_session;

/*
 * Returns 0, -EINVAL (bad config: no transport, more than ICE_SERVERS_MAX servers, a server
 * whose name is not resolved yet: no addrs, see ice/resolver.h), -EPROTONOSUPPORT (a turns:
 * server: no TLS wrapper yet), -ENOMEM. Nothing is called back before ice_session_start().
 */
int ice_session_new(GMainContext *ctx, const struct ice_session_config *cfg,
		    struct ice_session **ret_session);
/* Reports the local credentials, then gathers (trickled). -EALREADY on a second call. */
int ice_session_start(struct ice_session *s);
/*
 * A ufrag or pwd different from the previous ones is a remote restart: this session restarts
 * too (new local credentials and candidates are reported). The same ones again are ignored.
 * Returns 0, -EINVAL (empty or too long).
 */
int ice_session_set_remote_credentials(struct ice_session *s, const char *ufrag, const char *pwd);
/* Returns 0, -EBADMSG (not a valid candidate), -ENOBUFS (more than the limit held). */
int ice_session_add_remote_candidate(struct ice_session *s, const struct ice_candidate *c);
/* The peer has signaled all its candidates: lets checks fail instead of waiting for more. */
int ice_session_remote_gathering_done(struct ice_session *s);
/* New local credentials, same candidates, the selected pair kept until a new one is selected. */
int ice_session_restart(struct ice_session *s);
/*
 * From now on, TCP candidates count (a session made with tcp and tcp_later): local ones are
 * reported, remote ones accepted. Follow it with ice_session_restart(), or let the peer's new
 * credentials restart the session, so that both sides' first checks of the new generation
 * see every TCP candidate (a controlling agent ignores TCP candidates that arrive once its
 * checks have started).
 */
int ice_session_use_tcp(struct ice_session *s);
bool ice_session_uses_tcp(const struct ice_session *s);
/*
 * Sends one datagram on the selected pair (framed per RFC 4571 on TCP). Returns 0, -ENOTCONN
 * (no pair selected), -EMSGSIZE, -EAGAIN (a TCP pair's buffer is full).
 */
int ice_session_send(struct ice_session *s, const void *buf, size_t len);
/*
 * Replaces the callbacks and their data (copied; members may be NULL): a session being
 * replaced keeps carrying data with fewer callbacks while its successor checks.
 */
void ice_session_set_callbacks(struct ice_session *s, const struct ice_session_callbacks *cb,
			       void *data);
/*
 * Sends n datagrams on the selected pair, in calls of up to ICE_SEND_BATCH_MAX into libnice.
 * Empty or too long ones are skipped. Returns how many were sent (the rest are dropped: the
 * socket was full), or, when none was, -ENOTCONN, -EAGAIN or -ESHUTDOWN as ice_session_send().
 */
int ice_session_send_batch(struct ice_session *s, const struct iovec *dgrams, size_t n);
/* Releases TURN allocations, then reports ICE_STATE_CLOSED; ice_session_free() after that. */
int ice_session_close(struct ice_session *s);
enum ice_state ice_session_state(const struct ice_session *s);
/*
 * Stops every callback at once. Relay allocations not released by ice_session_close() are
 * released in the background while the context runs (libnice holds the agent until done).
 * Accepts NULL; returns NULL.
 */
struct ice_session *ice_session_free(struct ice_session *s);

/* Conversions; ret_ written only on success. */
int ice_candidate_from_nice(const NiceCandidate *nc, struct ice_candidate *ret_c);
/* Returns 0 or -EBADMSG. *ret_nc is a new candidate for stream_id, nice_candidate_free() it. */
int ice_candidate_to_nice(const struct ice_candidate *c, unsigned int stream_id,
			  NiceCandidate **ret_nc);
const char *ice_candidate_type_name(enum ice_candidate_type t);
const char *ice_state_name(enum ice_state st);

#endif
