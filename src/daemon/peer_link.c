/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "daemon/nft.h"
#include "daemon/peer_link_internal.h"
#include "daemon/proxy.h"
#include "daemon/wgctl.h"
#include "ice/session.h"
#include "util/key.h"
#include "util/log.h"

static int64_t now_s(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

static void timer_stop(GSource **t)
{
	if (*t) {
		g_source_destroy(*t);
		g_source_unref(*t);
		*t = NULL;
	}
}

static void timer_start(struct peer_link *l, GSource **t, unsigned int ms, GSourceFunc fn)
{
	timer_stop(t);
	*t = g_timeout_source_new(ms);
	g_source_set_callback(*t, fn, l, NULL);
	g_source_attach(*t, l->ctx);
}

/* ---- local snapshot out ---- */

static void cand_to_proto(const struct ice_candidate *c, Wice__Signaling__Candidate *p)
{
	wice__signaling__candidate__init(p);
	p->foundation = (char *)c->foundation;
	p->component = c->component;
	p->transport = (Wice__Signaling__Candidate__Transport)c->transport;
	p->tcp_type = (Wice__Signaling__Candidate__TCPType)c->tcptype;
	p->priority = c->priority;
	p->address = (char *)c->address;
	p->port = c->port;
	p->type = (Wice__Signaling__Candidate__Type)c->type;
	p->related_address = (char *)c->related_address;
	p->related_port = c->related_port;
}

static int announce(struct peer_link *l)
{
	Wice__Signaling__Message msg = WICE__SIGNALING__MESSAGE__INIT;
	Wice__Signaling__Credentials creds = WICE__SIGNALING__CREDENTIALS__INIT;
	Wice__Signaling__Candidate pc[PEER_LINK_LOCAL_CANDIDATES];
	Wice__Signaling__Candidate *pp[PEER_LINK_LOCAL_CANDIDATES];

	if (!l->ufrag[0])
		return 0; /* nothing to say before the credentials */
	msg.session_id = l->session_id;
	creds.ufrag = l->ufrag;
	creds.pwd = l->pwd;
	msg.credentials = &creds;
	for (size_t i = 0; i < l->n_cands; i++) {
		cand_to_proto(&l->cands[i], &pc[i]);
		pp[i] = &pc[i];
	}
	msg.candidates = pp;
	msg.n_candidates = l->n_cands;
	msg.end_of_candidates = l->gathering_done;
	msg.ice_tcp = ice_session_uses_tcp(l->ice);
	return l->send(l->data, l->peer_key, &msg);
}

static gboolean on_retry(gpointer data);

static void flush(struct peer_link *l)
{
	int r = announce(l);

	timer_stop(&l->flush_timer);
	if (r == -EAGAIN || r == -ENOTCONN) {
		if (l->retries++ < PEER_LINK_RETRY_MAX) {
			timer_start(l, &l->retry_timer, PEER_LINK_RETRY_MS, on_retry);
			return;
		}
		log_warn("%s: peer %s: signaling backends refuse to publish, waiting", l->ifname,
			 l->name);
	} else if (r < 0) {
		log_warn("%s: peer %s: publish failed: %s, ignoring", l->ifname, l->name,
			 strerror(-r));
	}
	l->retries = 0;
	timer_stop(&l->retry_timer);
}

static gboolean on_retry(gpointer data)
{
	struct peer_link *l = data;

	g_source_unref(l->retry_timer);
	l->retry_timer = NULL;
	flush(l);
	return G_SOURCE_REMOVE;
}

static gboolean on_flush(gpointer data)
{
	struct peer_link *l = data;

	g_source_unref(l->flush_timer);
	l->flush_timer = NULL;
	flush(l);
	return G_SOURCE_REMOVE;
}

static void changed(struct peer_link *l)
{
	l->retries = 0;
	if (!l->flush_timer)
		timer_start(l, &l->flush_timer, PEER_LINK_FLUSH_MS, on_flush);
}

static gboolean on_announce(gpointer data)
{
	struct peer_link *l = data;

	if (l->state != ICE_STATE_CONNECTED && l->announces < PEER_LINK_ANNOUNCE_MAX) {
		l->announces++;
		if (!l->retry_timer)
			flush(l);
	}
	return G_SOURCE_CONTINUE;
}

/* ---- ICE callbacks ---- */

static void on_local_credentials(void *data, const char *ufrag, const char *pwd)
{
	struct peer_link *l = data;

	g_strlcpy(l->ufrag, ufrag, sizeof(l->ufrag));
	g_strlcpy(l->pwd, pwd, sizeof(l->pwd));
	/* A restart reports every candidate again: start the list over. */
	l->n_cands = 0;
	l->local_types = 0;
	l->gathering_done = false;
	changed(l);
}

static void on_local_candidate(void *data, const struct ice_candidate *c)
{
	struct peer_link *l = data;

	if (l->n_cands == PEER_LINK_LOCAL_CANDIDATES) {
		log_debug("%s: peer %s: more than %d local candidates, ignoring", l->ifname,
			  l->name, PEER_LINK_LOCAL_CANDIDATES);
		return;
	}
	log_debug("%s: peer %s: local candidate %s %s:%u/%s", l->ifname, l->name,
		  ice_candidate_type_name(c->type), c->address, c->port,
		  c->transport == ICE_TRANSPORT_TCP ? "tcp" : "udp");
	l->cands[l->n_cands++] = *c;
	l->local_types |= 1U << c->type;
	changed(l);
}

static void on_gathering_done(void *data)
{
	struct peer_link *l = data;

	l->gathering_done = true;
	changed(l);
}

static void session_replace(struct peer_link *l, const char *why);

static void restart_note(struct peer_link *l, const char *why)
{
	l->restarts++;
	g_strlcpy(l->restart_reason, why, sizeof(l->restart_reason));
	l->restart_at = now_s();
}

/*
 * The first failure since the link was connected gets an ICE restart, unless our end of the
 * pair was relayed: a restart keeps the TURN allocation, and one lost (our NAT gave the TURN
 * client a new port: the server no longer knows it) fails again. One more failure means what
 * the session gathered is stale (addresses, mappings): a new session, make before break.
 */
/*
 * ICE-TCP second: a session starts with UDP candidates only (aggressive nomination, the first
 * pair within a round trip); when UDP gives no direct pair, the session restarts with its TCP
 * candidates too, and the peer answers with its own (Message.ice_tcp). ICE's priorities then
 * prefer a direct TCP pair to a relayed one (libnice halves TCP's type preference: UDP
 * direct > TCP direct > relayed); the last path stays in use during the restart. Returns
 * whether the restart happened.
 */
static bool use_tcp(struct peer_link *l, const char *why)
{
	if (ice_session_use_tcp(l->ice) < 0)
		return false; /* on already, or no TCP candidates */
	peer_link_restart(l, why);
	return true;
}

static gboolean on_tcp_due(gpointer data)
{
	struct peer_link *l = data;
	bool relayed = l->pair.local.type == ICE_CANDIDATE_RELAY ||
		       l->pair.remote.type == ICE_CANDIDATE_RELAY;

	g_source_unref(l->tcp_timer);
	l->tcp_timer = NULL;
	if (!l->has_pair || relayed)
		use_tcp(l, l->has_pair ? "relayed: trying ICE-TCP" : "no pair yet: trying ICE-TCP");
	return G_SOURCE_REMOVE;
}

static gboolean on_restart(gpointer data)
{
	struct peer_link *l = data;

	g_source_unref(l->restart_timer);
	l->restart_timer = NULL;
	/* Even when the peer's restart made this one check again: it kept the allocation. */
	if (l->has_pair && l->pair.local.type == ICE_CANDIDATE_RELAY &&
	    l->state != ICE_STATE_CONNECTED)
		session_replace(l, "failure");
	else if (l->state == ICE_STATE_FAILED && l->failures > 1)
		session_replace(l, "failure");
	else if (l->state == ICE_STATE_FAILED && !use_tcp(l, "failure, with ICE-TCP"))
		peer_link_restart(l, "failure");
	return G_SOURCE_REMOVE;
}

void peer_link_restart(struct peer_link *l, const char *why)
{
	restart_note(l, why);
	log_info("%s: peer %s: ICE restart %u (%s)", l->ifname, l->name, l->restarts, why);
	timer_stop(&l->restart_timer);
	l->announces = 0;
	l->restart_pending = true;
	ice_session_restart(l->ice);
}

/* An outage ended (ICE connected again, or traffic back): counted, with its length. */
static void recovered(struct peer_link *l)
{
	l->outage_ms = (g_get_monotonic_time() - l->down_since) / 1000;
	l->recoveries++;
	l->recovery_at = now_s();
	l->down_since = 0;
	log_info("%s: peer %s: recovered (%u) after %lld ms", l->ifname, l->name, l->recoveries,
		 (long long)l->outage_ms);
}

static void on_state(void *data, enum ice_state st)
{
	struct peer_link *l = data;

	if (st == l->state)
		return;
	/* A new session checks while the last working one still carries the traffic. */
	if (l->old_ice && (st == ICE_STATE_NEW || st == ICE_STATE_CHECKING))
		return;
	log_info("%s: peer %s: %s -> %s", l->ifname, l->name, ice_state_name(l->state),
		 ice_state_name(st));
	l->state = st;
	if (st == ICE_STATE_CONNECTED) {
		l->connected_at = now_s();
		l->failures = 0;
		/* Idle: connected is the end of it; with WireGuard sending, traffic back is. */
		if (l->down_since && !l->silent_since)
			recovered(l);
	} else {
		l->connected_at = 0;
	}
	if (st == ICE_STATE_FAILED) {
		l->failures++;
		if (!l->down_since)
			l->down_since = g_get_monotonic_time();
		timer_start(l, &l->restart_timer, PEER_LINK_RESTART_MS, on_restart);
	}
	/* One side decides, or both would restart at once (harmless, but twice the work). */
	if (st == ICE_STATE_CHECKING && l->controlling && !ice_session_uses_tcp(l->ice) &&
	    !l->tcp_timer)
		timer_start(l, &l->tcp_timer, PEER_LINK_TCP_AFTER_MS, on_tcp_due);
}

static gboolean on_direct(gpointer data)
{
	struct peer_link *l = data;

	g_source_unref(l->direct_timer);
	l->direct_timer = NULL;
	peer_path_update(l);
	return G_SOURCE_REMOVE;
}

static bool cand_same(const struct ice_candidate *a, const struct ice_candidate *b)
{
	return a->type == b->type && a->transport == b->transport && a->port == b->port &&
	       !strcmp(a->address, b->address);
}

static void on_selected_pair(void *data, const struct ice_pair *pair)
{
	struct peer_link *l = data;

	if (!l->has_pair || !cand_same(&l->pair.local, &pair->local) ||
	    !cand_same(&l->pair.remote, &pair->remote)) {
		if (l->has_pair)
			l->pair_changes++;
		l->pair_at = now_s();
	}
	l->pair = *pair;
	l->has_pair = true;
	log_info("%s: peer %s: selected pair %s %s:%u/%s -> %s %s:%u/%s", l->ifname, l->name,
		 ice_candidate_type_name(pair->local.type), pair->local.address, pair->local.port,
		 pair->local.transport == ICE_TRANSPORT_TCP ? "tcp" : "udp",
		 ice_candidate_type_name(pair->remote.type), pair->remote.address,
		 pair->remote.port, pair->remote.transport == ICE_TRANSPORT_TCP ? "tcp" : "udp");
	if (l->held_len) {
		ice_session_send(l->ice, l->held, l->held_len);
		l->held_len = 0;
	}
	/*
	 * Make before break: the first handshake goes through the proxy, which works at once;
	 * WireGuard moves to the direct path PEER_LINK_DIRECT_MS later. Leaving it (a relayed
	 * pair), or moving between two direct pairs, is done at once.
	 */
	if (l->direct || !peer_path_direct_pair(pair)) {
		timer_stop(&l->direct_timer);
		peer_path_update(l);
	} else if (!l->direct_timer) {
		timer_start(l, &l->direct_timer, PEER_LINK_DIRECT_MS, on_direct);
	}
	/* The new session carries the traffic now (the direct path, if any, moved above). */
	if (l->old_ice) {
		ice_session_close(l->old_ice);
		l->old_ice = ice_session_free(l->old_ice);
		log_info("%s: peer %s: previous ICE session released", l->ifname, l->name);
	}
}

static void on_receive(void *data, const uint8_t *buf, size_t len)
{
	struct peer_link *l = data;

	/*
	 * On the direct path the rules hand WireGuard's packets to it; a straggler that still
	 * came through libnice is dropped, or WireGuard would roam back to the proxy.
	 */
	if (!l->direct)
		proxy_to_wg(l->proxy, buf, len);
}

static int session_new(struct peer_link *l, struct ice_session **ret);

/*
 * A new session replaces the current one: new gathering (addresses, mappings, TURN allocations
 * and credentials), a new local session id and ICE credentials, signaled (the peer sees a
 * restart). Make before break: a session whose pair carries the traffic stays, sending and
 * receiving only, until the new one selects a pair (on_selected_pair releases it); one that
 * never selected a pair, or was itself a replacement still checking, goes at once.
 */
static const struct ice_session_callbacks drain_cb = {.on_receive = on_receive};

static void session_replace(struct peer_link *l, const char *why)
{
	struct ice_session *ice, *gone = NULL;
	int r;

	r = session_new(l, &ice);
	if (r < 0) {
		log_warn("%s: peer %s: %s: no new ICE session: %s", l->ifname, l->name, why,
			 strerror(-r));
		return;
	}
	restart_note(l, why);
	log_info("%s: peer %s: ICE restart %u (%s): new ICE session%s", l->ifname, l->name,
		 l->restarts, why,
		 l->has_pair && !l->old_ice ? ", the old one carries traffic" : "");
	timer_stop(&l->restart_timer);
	timer_stop(&l->tcp_timer);
	if (l->has_pair && !l->old_ice) {
		l->old_ice = l->ice;
		ice_session_set_callbacks(l->old_ice, &drain_cb, l);
	} else {
		gone = l->ice;
		if (!l->has_pair)
			l->state = ICE_STATE_NEW;
	}
	l->ice = ice;
	l->ufrag[0] = l->pwd[0] = 0;
	l->n_cands = 0;
	l->local_types = 0;
	l->gathering_done = false;
	l->announces = 0;
	l->restart_pending = false;
	randombytes_buf(&l->session_id, sizeof(l->session_id));
	l->remote_ufrag[0] = l->remote_pwd[0] = 0;
	g_hash_table_remove_all(l->remote_seen);
	l->remote_types = 0;
	l->remote_done = false;
	if (gone) {
		ice_session_close(gone);
		ice_session_free(gone);
	}
	r = ice_session_start(l->ice);
	if (r < 0)
		log_warn("%s: peer %s: new ICE session: %s", l->ifname, l->name, strerror(-r));
}

/* TURN REST credentials near expiry: libnice cannot change a live allocation's credentials. */
static gboolean on_renew_now(gpointer data)
{
	struct peer_link *l = data;

	g_source_unref(l->renew_timer);
	l->renew_timer = NULL;
	l->renewals++;
	log_info("%s: peer %s: TURN credentials near expiry: new ICE session (renewal %u)",
		 l->ifname, l->name, l->renewals);
	session_replace(l, "credential renewal");
	return G_SOURCE_REMOVE;
}

static void on_renew(void *data)
{
	struct peer_link *l = data;

	/* Not from inside the session's own callback: it is freed there. */
	if (!l->renew_timer)
		timer_start(l, &l->renew_timer, 0, on_renew_now);
}

static const struct ice_session_callbacks ice_cb = {
	.on_local_credentials = on_local_credentials,
	.on_local_candidate = on_local_candidate,
	.on_gathering_done = on_gathering_done,
	.on_state = on_state,
	.on_selected_pair = on_selected_pair,
	.on_receive = on_receive,
	.on_renew = on_renew,
};

/* ---- proxy ---- */

static void on_wg_datagram(void *data, const struct iovec *dgrams, size_t n)
{
	struct peer_link *l = data;
	/* -EAGAIN (a TCP pair's buffer is full) drops the datagrams: WireGuard tolerates loss. */
	int r = l->has_pair ? ice_session_send_batch(l->old_ice ? l->old_ice : l->ice, dgrams, n)
			    : -ENOTCONN;

	for (size_t i = 0; r == -ENOTCONN && i < n; i++) {
		const uint8_t *buf = dgrams[i].iov_base;
		size_t len = dgrams[i].iov_len;

		if (len <= WG_HANDSHAKE_MAX && len >= 4 && buf[0] >= 1 && buf[0] <= 3 && !buf[1] &&
		    !buf[2] && !buf[3]) {
			memcpy(l->held, buf, len);
			l->held_len = len;
		}
	}
}

/* ---- remote side in ---- */

static bool cand_from_proto(const Wice__Signaling__Candidate *p, struct ice_candidate *c)
{
	memset(c, 0, sizeof(*c));
	if (!p->foundation || !p->address ||
	    g_strlcpy(c->foundation, p->foundation, sizeof(c->foundation)) >=
		    sizeof(c->foundation) ||
	    g_strlcpy(c->address, p->address, sizeof(c->address)) >= sizeof(c->address) ||
	    (p->related_address &&
	     g_strlcpy(c->related_address, p->related_address, sizeof(c->related_address)) >=
		     sizeof(c->related_address)))
		return false;
	c->component = p->component;
	c->transport = (enum ice_transport)p->transport;
	c->tcptype = (enum ice_tcptype)p->tcp_type;
	c->priority = p->priority;
	c->port = p->port;
	c->type = (enum ice_candidate_type)p->type;
	c->related_port = p->related_port;
	return true;
}

static void remote_credentials(struct peer_link *l, const Wice__Signaling__Credentials *cr)
{
	int r;

	if (!cr->ufrag || !cr->pwd)
		return;
	if (!strcmp(cr->ufrag, l->remote_ufrag) && !strcmp(cr->pwd, l->remote_pwd))
		return;
	r = ice_session_set_remote_credentials(l->ice, cr->ufrag, cr->pwd);
	if (r < 0) {
		log_warn("%s: peer %s: remote credentials refused: %s, ignoring", l->ifname,
			 l->name, strerror(-r));
		return;
	}
	if (l->remote_ufrag[0] && l->restart_pending) {
		log_info("%s: peer %s: new remote credentials, answering our restart", l->ifname,
			 l->name);
	} else if (l->remote_ufrag[0]) {
		restart_note(l, "remote restart");
		log_info("%s: peer %s: new remote credentials: the peer restarted ICE (restart %u)",
			 l->ifname, l->name, l->restarts);
	}
	l->restart_pending = false;
	g_strlcpy(l->remote_ufrag, cr->ufrag, sizeof(l->remote_ufrag));
	g_strlcpy(l->remote_pwd, cr->pwd, sizeof(l->remote_pwd));
	/* A new generation: ICE dropped the old candidates, so every one is new again. */
	g_hash_table_remove_all(l->remote_seen);
	l->remote_types = 0;
	l->remote_done = false;
}

static void remote_candidate(struct peer_link *l, const Wice__Signaling__Candidate *p)
{
	struct ice_candidate c;
	char *k;
	int r;

	if (!cand_from_proto(p, &c))
		return;
	k = g_strdup_printf("%u/%u/%s/%u/%u/%s", c.transport, c.tcptype, c.address, c.port, c.type,
			    c.foundation);
	if (g_hash_table_contains(l->remote_seen, k)) {
		g_free(k);
		return;
	}
	r = ice_session_add_remote_candidate(l->ice, &c);
	if (r < 0) {
		log_debug("%s: peer %s: remote candidate %s refused: %s", l->ifname, l->name, k,
			  strerror(-r));
		g_free(k);
		return;
	}
	g_hash_table_add(l->remote_seen, k);
	l->remote_types |= 1U << c.type;
}

void peer_link_receive(struct peer_link *l, const Wice__Signaling__Message *msg)
{
	if (l->has_remote_session && msg->session_id == l->remote_session_id &&
	    msg->timestamp_ms < l->remote_ts)
		return; /* reordered: older than what we acted on */
	l->remote_ts = msg->timestamp_ms;
	if (!l->has_remote_session || msg->session_id != l->remote_session_id) {
		log_info("%s: peer %s: remote session %016llx", l->ifname, l->name,
			 (unsigned long long)msg->session_id);
		l->has_remote_session = true;
		l->remote_session_id = msg->session_id;
		/* The peer may have missed everything we said before it listened. */
		l->announces = 0;
		changed(l);
	}
	/* Before the credentials: the restart they cause must tell our TCP candidates too. */
	if (msg->ice_tcp && ice_session_use_tcp(l->ice) == 0)
		log_info("%s: peer %s: the peer uses ICE-TCP: so do we", l->ifname, l->name);
	if (msg->credentials)
		remote_credentials(l, msg->credentials);
	if (!l->remote_ufrag[0])
		return; /* a candidate carries no ufrag: useless before the credentials */
	for (size_t i = 0; i < msg->n_candidates; i++)
		remote_candidate(l, msg->candidates[i]);
	if (msg->end_of_candidates && !l->remote_done) {
		l->remote_done = true;
		ice_session_remote_gathering_done(l->ice);
	}
}

/* ---- lifetime and status ---- */

static const struct ice_session_callbacks ice_cb;

static int session_new(struct peer_link *l, struct ice_session **ret)
{
	struct ice_session_config ic = {
		.controlling = l->controlling,
		.servers = l->servers,
		.n_servers = l->n_servers,
		.udp = true,
		/*
		 * ICE-TCP second (use_tcp()): with TCP candidates from the start libnice nominates
		 * regularly and waits for every better pair to fail (measured behind two NATs:
		 * 0.14 s -> 2.2 s to the first ping). TURN over TCP needs no ICE-TCP: its relayed
		 * candidate is a UDP one, the TCP connection is libnice's to the server.
		 */
		.tcp = true,
		.tcp_later = true,
		.families = ICE_FAMILY_IPV4 | ICE_FAMILY_IPV6,
		.local_addresses = (const char *const *)l->local_addresses,
		.n_local_addresses = l->local_addresses ? g_strv_length(l->local_addresses) : 0,
		.cb = &ice_cb,
		.data = l,
	};

	return ice_session_new(l->ctx, &ic, ret);
}

int peer_link_new(const struct peer_link_config *cfg, struct peer_link **ret)
{
	struct peer_link *l;
	int r;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->ctx = cfg->ctx;
	g_strlcpy(l->ifname, cfg->ifname, sizeof(l->ifname));
	memcpy(l->peer_key, cfg->peer_key, WG_KEY_LEN);
	key_to_base64(l->name, l->peer_key);
	l->send = cfg->send;
	l->data = cfg->data;
	l->state = ICE_STATE_NEW;
	l->wg_port = cfg->wg_port;
	l->controlling = memcmp(cfg->local_key, cfg->peer_key, WG_KEY_LEN) < 0;
	l->servers = cfg->servers;
	l->n_servers = cfg->n_servers;
	if (cfg->local_addresses && cfg->n_local_addresses) {
		l->local_addresses = g_new0(char *, cfg->n_local_addresses + 1);
		for (size_t i = 0; i < cfg->n_local_addresses; i++)
			l->local_addresses[i] = g_strdup(cfg->local_addresses[i]);
	}
	nft_peer_id(l->nft_id, l->ifname, l->peer_key);
	randombytes_buf(&l->session_id, sizeof(l->session_id));
	l->remote_seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	r = proxy_new(l->ctx, on_wg_datagram, l, &l->proxy);
	if (r < 0)
		goto fail;
	proxy_set_wg_port(l->proxy, cfg->wg_port);
	r = session_new(l, &l->ice);
	if (r < 0)
		goto fail;
	r = ice_session_start(l->ice);
	if (r < 0)
		goto fail;
	peer_path_proxy(l); /* logged; the next configuration read shows whether it held */
	l->announce_timer = g_timeout_source_new(PEER_LINK_ANNOUNCE_MS);
	g_source_set_callback(l->announce_timer, on_announce, l, NULL);
	g_source_attach(l->announce_timer, l->ctx);
	log_info("%s: peer %s: ICE session %016llx, %s", l->ifname, l->name,
		 (unsigned long long)l->session_id, l->controlling ? "controlling" : "controlled");
	*ret = l;
	return 0;
fail:
	peer_link_free(l);
	return r;
}

struct peer_link *peer_link_free(struct peer_link *l)
{
	if (!l)
		return NULL;
	timer_stop(&l->flush_timer);
	timer_stop(&l->retry_timer);
	timer_stop(&l->announce_timer);
	timer_stop(&l->restart_timer);
	timer_stop(&l->direct_timer);
	timer_stop(&l->renew_timer);
	timer_stop(&l->tcp_timer);
	peer_path_rules_clear(l);
	l->ice = ice_session_free(l->ice);
	l->old_ice = ice_session_free(l->old_ice);
	g_strfreev(l->local_addresses);
	l->proxy = proxy_free(l->proxy);
	if (l->remote_seen)
		g_hash_table_destroy(l->remote_seen);
	free(l);
	return NULL;
}

void peer_link_close(struct peer_link *l)
{
	timer_stop(&l->announce_timer);
	timer_stop(&l->restart_timer);
	timer_stop(&l->direct_timer);
	timer_stop(&l->renew_timer);
	timer_stop(&l->tcp_timer);
	peer_path_off(l); /* the daemon stops: WireGuard back at the proxy, rules gone */
	if (l->ice)
		ice_session_close(l->ice);
	if (l->old_ice)
		ice_session_close(l->old_ice);
}

void peer_link_set_wg_port(struct peer_link *l, uint16_t port)
{
	proxy_set_wg_port(l->proxy, port);
	if (port == l->wg_port)
		return;
	l->wg_port = port;
	if (l->has_pair && !l->direct_timer)
		peer_path_update(l);
}

void peer_link_set_local_addresses(struct peer_link *l, const char *const *addrs)
{
	size_t n = addrs ? g_strv_length((char **)addrs) : 0;
	size_t have = l->local_addresses ? g_strv_length(l->local_addresses) : 0;
	bool same = n == have;

	for (size_t i = 0; same && i < n; i++)
		same = g_strv_contains((const char *const *)l->local_addresses, addrs[i]);
	if (same)
		return;
	g_strfreev(l->local_addresses);
	l->local_addresses = n ? g_strdupv((char **)addrs) : NULL;
	session_replace(l, "local address change");
}

/*
 * Only the peer's keepalive came back after a silence no longer than WireGuard lets a receiver
 * wait before answering (WG_KEEPALIVE_TIMEOUT, with PEER_LINK_SILENCE_MS's slack): the peer
 * got our data all along and had nothing to send. A one-way flow, not an outage.
 */
static bool keepalive_answer(const struct peer_link *l, uint64_t rx_delta, int64_t now)
{
	return rx_delta == WG_DATA_OVERHEAD && l->down_since == l->silent_since &&
	       now - l->silent_since < PEER_LINK_SILENCE_MS * 1000LL;
}

/*
 * WireGuard sending and nothing coming back: an outage for status after PEER_LINK_OUTAGE_MS
 * (withdrawn if only the peer's keepalive answers it in time), a new session after
 * PEER_LINK_SILENCE_MS (and again each PEER_LINK_SILENCE_MS it lasts). Only while ICE says
 * connected: before that, or failed, ICE's own timers act.
 */
void peer_link_traffic(struct peer_link *l, uint64_t rx_bytes, uint64_t tx_bytes)
{
	int64_t now = g_get_monotonic_time();
	bool rx = l->has_counters && rx_bytes != l->rx_bytes;
	bool tx = l->has_counters && tx_bytes != l->tx_bytes &&
		  tx_bytes - l->tx_bytes != WG_DATA_OVERHEAD;
	uint64_t rx_delta = rx_bytes - l->rx_bytes;

	l->has_counters = true;
	l->rx_bytes = rx_bytes;
	l->tx_bytes = tx_bytes;
	if (rx) {
		if (l->down_since && l->silent_since && keepalive_answer(l, rx_delta, now)) {
			log_debug("%s: peer %s: a keepalive answered after %lld ms: a one-way flow",
				  l->ifname, l->name, (long long)(now - l->silent_since) / 1000);
			l->down_since = 0;
		} else if (l->down_since && l->state == ICE_STATE_CONNECTED) {
			recovered(l);
		}
		l->silent_since = l->silence_acted = 0;
		return;
	}
	if (!l->has_pair || l->state != ICE_STATE_CONNECTED) {
		l->silent_since = l->silence_acted = 0;
		return;
	}
	if (tx && !l->silent_since)
		l->silent_since = now;
	if (!l->silent_since)
		return;
	if (!l->down_since && now - l->silent_since >= PEER_LINK_OUTAGE_MS * 1000LL) {
		/* Debug only: a one-way flow looks like this until the peer's keepalive. */
		l->down_since = l->silent_since;
		log_debug("%s: peer %s: WireGuard sends, nothing received for %lld ms", l->ifname,
			  l->name, (long long)(now - l->silent_since) / 1000);
	}
	if (now - MAX(l->silent_since, l->silence_acted) >= PEER_LINK_SILENCE_MS * 1000LL) {
		l->silence_acted = now;
		session_replace(l, "no traffic received");
	}
}
