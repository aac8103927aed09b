/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <agent.h>
#include <interfaces.h>
#include "ice/session.h"
#include "util/log.h"

struct close_token {
	struct ice_session *s; /* NULL once the session is freed */
};

struct ice_session {
	GMainContext *ctx;
	NiceAgent *agent;
	guint stream;
	struct ice_session_callbacks cb;
	void *data;

	struct ice_server servers[ICE_SERVERS_MAX];
	size_t n_servers;
	unsigned int families; /* ICE_FAMILY_* of the host candidates: which server addresses */
	GSource *renew;

	enum ice_state state;
	bool tcp_gathered; /* the agent has TCP candidates */
	bool tcp_on;	   /* and they count (ice_session_use_tcp) */
	bool started;
	bool local_done;
	bool closing;
	struct close_token *close;

	/*
	 * Remote side of the current generation. Candidates wait in held until the session is
	 * started and the remote credentials are known: checks sent with the wrong (or no)
	 * credentials would fail with 401 and mark their pairs failed.
	 */
	bool remote_creds;
	char remote_ufrag[ICE_UFRAG_MAX];
	char remote_pwd[ICE_PWD_MAX];
	bool restarted; /* a local restart waits for the new remote credentials */
	GSList *held;	/* NiceCandidate *, newest first */
	size_t n_remote;
	bool remote_done;
};

static const char *const state_names[] = {
	[ICE_STATE_NEW] = "new",
	[ICE_STATE_CHECKING] = "checking",
	[ICE_STATE_CONNECTED] = "connected",
	[ICE_STATE_FAILED] = "failed",
	[ICE_STATE_CLOSED] = "closed",
};

const char *ice_state_name(enum ice_state st)
{
	return (unsigned)st < G_N_ELEMENTS(state_names) ? state_names[st] : "?";
}

const char *ice_candidate_type_name(enum ice_candidate_type t)
{
	switch (t) {
	case ICE_CANDIDATE_HOST:
		return "host";
	case ICE_CANDIDATE_SRFLX:
		return "srflx";
	case ICE_CANDIDATE_PRFLX:
		return "prflx";
	case ICE_CANDIDATE_RELAY:
		return "relay";
	}
	return "?";
}

/* ---- candidates ---- */

static void address_to(char out[static ICE_ADDRESS_MAX], uint32_t *port, const NiceAddress *a)
{
	nice_address_to_string(a, out);
	*port = nice_address_get_port(a);
}

int ice_candidate_from_nice(const NiceCandidate *nc, struct ice_candidate *ret_c)
{
	struct ice_candidate c = {.component = nc->component_id, .priority = nc->priority};

	switch (nc->type) {
	case NICE_CANDIDATE_TYPE_HOST:
		c.type = ICE_CANDIDATE_HOST;
		break;
	case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE:
		c.type = ICE_CANDIDATE_SRFLX;
		break;
	case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE:
		c.type = ICE_CANDIDATE_PRFLX;
		break;
	case NICE_CANDIDATE_TYPE_RELAYED:
		c.type = ICE_CANDIDATE_RELAY;
		break;
	default:
		return -EINVAL;
	}
	c.transport = nc->transport == NICE_CANDIDATE_TRANSPORT_UDP ? ICE_TRANSPORT_UDP
								    : ICE_TRANSPORT_TCP;
	switch (nc->transport) {
	case NICE_CANDIDATE_TRANSPORT_UDP:
		c.tcptype = ICE_TCPTYPE_NONE;
		break;
	case NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE:
		c.tcptype = ICE_TCPTYPE_ACTIVE;
		break;
	case NICE_CANDIDATE_TRANSPORT_TCP_PASSIVE:
		c.tcptype = ICE_TCPTYPE_PASSIVE;
		break;
	case NICE_CANDIDATE_TRANSPORT_TCP_SO:
		c.tcptype = ICE_TCPTYPE_SO;
		break;
	default:
		return -EINVAL;
	}
	g_strlcpy(c.foundation, nc->foundation, sizeof(c.foundation));
	address_to(c.address, &c.port, &nc->addr);
	/* RFC 8839 section 5.1: rel-addr for every type but host. */
	if (c.type != ICE_CANDIDATE_HOST && nice_address_is_valid(&nc->base_addr))
		address_to(c.related_address, &c.related_port, &nc->base_addr);
	*ret_c = c;
	return 0;
}

/* RFC 8445 section 5.1.1.3: foundation = 1*32 ice-char (ALPHA / DIGIT / "+" / "/"). */
static bool foundation_ok(const char *f)
{
	size_t n = strnlen(f, ICE_FOUNDATION_MAX);

	if (n == 0 || n == ICE_FOUNDATION_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!g_ascii_isalnum(f[i]) && f[i] != '+' && f[i] != '/')
			return false;
	return true;
}

static bool address_from(NiceAddress *a, const char *s, uint32_t port)
{
	if (strnlen(s, ICE_ADDRESS_MAX) == ICE_ADDRESS_MAX || port > 65535)
		return false;
	nice_address_init(a);
	if (!nice_address_set_from_string(a, s))
		return false;
	nice_address_set_port(a, port);
	return true;
}

int ice_candidate_to_nice(const struct ice_candidate *c, unsigned int stream_id,
			  NiceCandidate **ret_nc)
{
	static const NiceCandidateType types[] = {
		[ICE_CANDIDATE_HOST] = NICE_CANDIDATE_TYPE_HOST,
		[ICE_CANDIDATE_SRFLX] = NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE,
		[ICE_CANDIDATE_PRFLX] = NICE_CANDIDATE_TYPE_PEER_REFLEXIVE,
		[ICE_CANDIDATE_RELAY] = NICE_CANDIDATE_TYPE_RELAYED,
	};
	static const NiceCandidateTransport tcptypes[] = {
		[ICE_TCPTYPE_ACTIVE] = NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE,
		[ICE_TCPTYPE_PASSIVE] = NICE_CANDIDATE_TRANSPORT_TCP_PASSIVE,
		[ICE_TCPTYPE_SO] = NICE_CANDIDATE_TRANSPORT_TCP_SO,
	};
	NiceAddress addr, base;
	NiceCandidate *nc;

	if (c->type < ICE_CANDIDATE_HOST || c->type > ICE_CANDIDATE_RELAY)
		return -EBADMSG;
	if (c->component != ICE_COMPONENT || !foundation_ok(c->foundation))
		return -EBADMSG;
	if (c->transport == ICE_TRANSPORT_UDP
		    ? c->tcptype != ICE_TCPTYPE_NONE
		    : c->transport != ICE_TRANSPORT_TCP || c->tcptype < ICE_TCPTYPE_ACTIVE ||
			      c->tcptype > ICE_TCPTYPE_SO)
		return -EBADMSG;
	if (!address_from(&addr, c->address, c->port))
		return -EBADMSG;
	/* The related address is informational (RFC 8445 section 5.1.3); keep it if sane. */
	if (c->related_address[0] && !address_from(&base, c->related_address, c->related_port))
		return -EBADMSG;
	if (!c->related_address[0])
		base = addr;

	nc = nice_candidate_new(types[c->type]);
	nc->transport = c->transport == ICE_TRANSPORT_UDP ? NICE_CANDIDATE_TRANSPORT_UDP
							  : tcptypes[c->tcptype];
	nc->addr = addr;
	nc->base_addr = base;
	nc->priority = c->priority;
	nc->stream_id = stream_id;
	nc->component_id = c->component;
	g_strlcpy(nc->foundation, c->foundation, sizeof(nc->foundation));
	*ret_nc = nc;
	return 0;
}

/* ---- state and callbacks ---- */

static void set_state(struct ice_session *s, enum ice_state st)
{
	if (s->state == st || s->state == ICE_STATE_CLOSED)
		return;
	log_debug("ice %p: %s -> %s", (void *)s, ice_state_name(s->state), ice_state_name(st));
	s->state = st;
	if (s->cb.on_state)
		s->cb.on_state(s->data, st);
}

static void report_local_candidate(struct ice_session *s, const NiceCandidate *nc)
{
	struct ice_candidate c;

	/* Our peer-reflexive candidates are learnt by the peer on its own (RFC 8445 7.2.5.3.1). */
	if (nc->type == NICE_CANDIDATE_TYPE_PEER_REFLEXIVE || nc->component_id != ICE_COMPONENT)
		return;
	if (ice_candidate_from_nice(nc, &c) < 0)
		return;
	if (c.transport == ICE_TRANSPORT_TCP && !s->tcp_on)
		return;
	if (s->cb.on_local_candidate)
		s->cb.on_local_candidate(s->data, &c);
}

static void report_local_credentials(struct ice_session *s)
{
	gchar *ufrag = NULL, *pwd = NULL;

	if (!nice_agent_get_local_credentials(s->agent, s->stream, &ufrag, &pwd))
		return;
	if (s->cb.on_local_credentials)
		s->cb.on_local_credentials(s->data, ufrag, pwd);
	g_free(ufrag);
	g_free(pwd);
}

static void on_new_candidate(NiceAgent *agent, NiceCandidate *nc, gpointer data)
{
	struct ice_session *s = data;

	if (nc->stream_id == s->stream)
		report_local_candidate(s, nc);
}

static void on_gathering_done(NiceAgent *agent, guint stream_id, gpointer data)
{
	struct ice_session *s = data;

	if (stream_id != s->stream || s->local_done)
		return;
	s->local_done = true;
	if (s->cb.on_gathering_done)
		s->cb.on_gathering_done(s->data);
}

static void on_component_state(NiceAgent *agent, guint stream_id, guint component_id, guint nstate,
			       gpointer data)
{
	struct ice_session *s = data;

	if (stream_id != s->stream || component_id != ICE_COMPONENT)
		return;
	log_debug("ice %p: libnice %s", (void *)s, nice_component_state_to_string(nstate));
	switch (nstate) {
	case NICE_COMPONENT_STATE_CONNECTING:
		/* During a restart the old pair still carries data: stay connected. */
		if (s->state != ICE_STATE_CONNECTED)
			set_state(s, ICE_STATE_CHECKING);
		break;
	case NICE_COMPONENT_STATE_CONNECTED:
	case NICE_COMPONENT_STATE_READY:
		set_state(s, ICE_STATE_CONNECTED);
		break;
	case NICE_COMPONENT_STATE_FAILED:
		set_state(s, ICE_STATE_FAILED);
		break;
	default: /* disconnected, gathering: nothing the caller acts on */
		break;
	}
}

static int selected_fd(struct ice_session *s, const NiceCandidate *local)
{
	GSocket *gs;
	int fd;

	if (local->transport != NICE_CANDIDATE_TRANSPORT_UDP ||
	    local->type == NICE_CANDIDATE_TYPE_RELAYED)
		return -1;
	gs = nice_agent_get_selected_socket(s->agent, s->stream, ICE_COMPONENT);
	if (!gs)
		return -1;
	/* libnice keeps its own reference and closes the socket itself. */
	fd = g_socket_get_fd(gs);
	g_object_unref(gs);
	return fd;
}

static void on_selected_pair(NiceAgent *agent, guint stream_id, guint component_id,
			     NiceCandidate *lcand, NiceCandidate *rcand, gpointer data)
{
	struct ice_session *s = data;
	struct ice_pair pair;

	if (stream_id != s->stream || component_id != ICE_COMPONENT)
		return;
	if (ice_candidate_from_nice(lcand, &pair.local) < 0 ||
	    ice_candidate_from_nice(rcand, &pair.remote) < 0)
		return;
	pair.fd = selected_fd(s, lcand);
	log_debug("ice %p: selected %s %s:%u -> %s %s:%u", (void *)s,
		  ice_candidate_type_name(pair.local.type), pair.local.address, pair.local.port,
		  ice_candidate_type_name(pair.remote.type), pair.remote.address, pair.remote.port);
	if (s->cb.on_selected_pair)
		s->cb.on_selected_pair(s->data, &pair);
}

static void on_recv(NiceAgent *agent, guint stream_id, guint component_id, guint len, gchar *buf,
		    gpointer data)
{
	struct ice_session *s = data;

	if (s->cb.on_receive)
		s->cb.on_receive(s->data, (const uint8_t *)buf, len);
}

static gboolean on_renew_due(gpointer data)
{
	struct ice_session *s = data;

	g_source_unref(s->renew);
	s->renew = NULL;
	if (s->cb.on_renew)
		s->cb.on_renew(s->data);
	return G_SOURCE_REMOVE;
}

/* ---- remote side ---- */

static void held_clear(struct ice_session *s)
{
	g_slist_free_full(s->held, (GDestroyNotify)nice_candidate_free);
	s->held = NULL;
}

static bool remote_ready(const struct ice_session *s)
{
	return s->started && s->remote_creds && !s->closing;
}

/* Hands what waited to libnice once the session can use it. */
static void remote_flush(struct ice_session *s)
{
	if (!remote_ready(s))
		return;
	if (s->held) {
		s->held = g_slist_reverse(s->held);
		if (nice_agent_set_remote_candidates(s->agent, s->stream, ICE_COMPONENT, s->held) <
		    0)
			log_warn("ice %p: libnice refused remote candidates, ignoring", (void *)s);
		held_clear(s);
	}
	if (s->remote_done)
		nice_agent_peer_candidate_gathering_done(s->agent, s->stream);
}

/* Everything of the local side but the gathering, told again with the new credentials. */
static void restart_local(struct ice_session *s)
{
	GSList *cands;

	/*
	 * libnice (stream restart): new ufrag/pwd, conncheck list pruned, remote candidates
	 * dropped except the selected pair's (kept as the component's restart candidate), so
	 * nice_agent_send() keeps using that pair and its TURN allocation keeps being refreshed
	 * until a new pair is selected. No new gathering.
	 */
	nice_agent_restart_stream(s->agent, s->stream);
	s->remote_creds = false;
	s->restarted = true;
	s->remote_done = false;
	s->n_remote = 0;
	held_clear(s);

	report_local_credentials(s);
	cands = nice_agent_get_local_candidates(s->agent, s->stream, ICE_COMPONENT);
	for (GSList *i = cands; i; i = i->next)
		report_local_candidate(s, i->data);
	g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
	if (s->local_done && s->cb.on_gathering_done)
		s->cb.on_gathering_done(s->data);
}

int ice_session_set_remote_credentials(struct ice_session *s, const char *ufrag, const char *pwd)
{
	bool same;

	if (!ufrag || !pwd || !ufrag[0] || !pwd[0] ||
	    strnlen(ufrag, ICE_UFRAG_MAX) == ICE_UFRAG_MAX ||
	    strnlen(pwd, ICE_PWD_MAX) == ICE_PWD_MAX)
		return -EINVAL;
	if (s->closing)
		return -ESHUTDOWN;

	same = strcmp(ufrag, s->remote_ufrag) == 0 && strcmp(pwd, s->remote_pwd) == 0;
	if (same && (s->remote_creds || s->restarted))
		return 0; /* a repeat, or the old generation's after our restart */
	if (s->remote_creds && !s->started) {
		/* Nothing checked yet: the held candidates were the old generation's. */
		held_clear(s);
		s->n_remote = 0;
		s->remote_done = false;
	} else if (s->remote_creds) {
		/* RFC 8445 section 9: a new ufrag or pwd from the peer is an ICE restart. */
		log_info("ice %p: remote restart", (void *)s);
		restart_local(s);
	}
	g_strlcpy(s->remote_ufrag, ufrag, sizeof(s->remote_ufrag));
	g_strlcpy(s->remote_pwd, pwd, sizeof(s->remote_pwd));
	if (!nice_agent_set_remote_credentials(s->agent, s->stream, ufrag, pwd))
		return -EINVAL;
	s->remote_creds = true;
	s->restarted = false;
	remote_flush(s);
	return 0;
}

int ice_session_add_remote_candidate(struct ice_session *s, const struct ice_candidate *c)
{
	NiceCandidate *nc;
	GSList one = {0};
	int r;

	if (s->closing)
		return -ESHUTDOWN;
	if (s->n_remote >= ICE_REMOTE_CANDIDATES_MAX)
		return -ENOBUFS;
	if (c->transport == ICE_TRANSPORT_TCP && !s->tcp_on)
		return -EPROTONOSUPPORT;
	r = ice_candidate_to_nice(c, s->stream, &nc);
	if (r < 0)
		return r;
	s->n_remote++;
	if (!remote_ready(s)) {
		s->held = g_slist_prepend(s->held, nc);
		return 0;
	}
	one.data = nc;
	r = nice_agent_set_remote_candidates(s->agent, s->stream, ICE_COMPONENT, &one);
	nice_candidate_free(nc);
	return r < 0 ? -EBADMSG : 0;
}

int ice_session_remote_gathering_done(struct ice_session *s)
{
	if (s->closing)
		return -ESHUTDOWN;
	s->remote_done = true;
	remote_flush(s);
	return 0;
}

/* ---- lifetime ---- */

static int check_config(const struct ice_session_config *cfg)
{
	if (!cfg->cb || (!cfg->udp && !cfg->tcp) || cfg->n_servers > ICE_SERVERS_MAX ||
	    (cfg->n_servers && !cfg->servers) || (cfg->n_local_addresses && !cfg->local_addresses))
		return -EINVAL;
	for (size_t i = 0; i < cfg->n_servers; i++) {
		const struct ice_server *srv = &cfg->servers[i];
		NiceAddress a;

		if (srv->tls)
			return -EPROTONOSUPPORT;
		if (!srv->n_addrs || srv->n_addrs > ICE_SERVER_ADDRS_MAX) /* a name not resolved */
			return -EINVAL;
		for (size_t k = 0; k < srv->n_addrs; k++)
			if (!nice_address_set_from_string(&a, srv->addrs[k]))
				return -EINVAL;
	}
	return 0;
}

static unsigned int addr_family(const char *str)
{
	NiceAddress a;

	nice_address_init(&a);
	if (!nice_address_set_from_string(&a, str))
		return 0;
	return nice_address_ip_version(&a) == 4 ? ICE_FAMILY_IPV4 : ICE_FAMILY_IPV6;
}

/*
 * The families host candidates are gathered in: a server address of another family is of no
 * use (a socket of one family cannot reach the other), and a name that resolves to both must
 * not cost two TURN allocations where only one can be used.
 */
static unsigned int local_families(const struct ice_session_config *cfg)
{
	unsigned int want = cfg->families ? cfg->families : ICE_FAMILY_IPV4 | ICE_FAMILY_IPV6;
	unsigned int have = 0;

	if (!cfg->local_addresses)
		return want;
	for (size_t i = 0; i < cfg->n_local_addresses; i++)
		have |= addr_family(cfg->local_addresses[i]);
	return want & have;
}

static bool family_wanted(unsigned int families, const NiceAddress *a)
{
	if (!families)
		return true;
	return nice_address_ip_version(a) == 4 ? families & ICE_FAMILY_IPV4
					       : families & ICE_FAMILY_IPV6;
}

static int add_local_address(struct ice_session *s, unsigned int families, const char *str)
{
	NiceAddress a;

	nice_address_init(&a);
	if (!nice_address_set_from_string(&a, str))
		return -EINVAL;
	if (!family_wanted(families, &a))
		return 0;
	return nice_agent_add_local_address(s->agent, &a) ? 1 : -ENOMEM;
}

/* libnice gathers on every address when none is added: add ours only when choosing. */
static int setup_local_addresses(struct ice_session *s, const struct ice_session_config *cfg)
{
	GList *ips = NULL;
	int r, n = 0;

	if (!cfg->local_addresses && !cfg->families)
		return 0;
	if (cfg->local_addresses) {
		for (size_t i = 0; i < cfg->n_local_addresses; i++) {
			r = add_local_address(s, cfg->families, cfg->local_addresses[i]);
			if (r < 0)
				return r;
			n += r;
		}
	} else {
		ips = nice_interfaces_get_local_ips(FALSE);
		for (GList *i = ips; i; i = i->next) {
			r = add_local_address(s, cfg->families, i->data);
			n += r > 0 ? r : 0;
		}
		g_list_free_full(ips, g_free);
	}
	return n > 0 ? 0 : -EADDRNOTAVAIL;
}

static void setup_agent(struct ice_session *s, const struct ice_session_config *cfg)
{
	const char *stun = NULL;
	guint stun_port = 0;

	/* libnice takes one STUN server: the first address of a family we gather in. */
	for (size_t i = 0; i < cfg->n_servers && !stun; i++) {
		if (cfg->servers[i].kind != ICE_SERVER_STUN)
			continue;
		for (size_t k = 0; k < cfg->servers[i].n_addrs && !stun; k++) {
			if (addr_family(cfg->servers[i].addrs[k]) & s->families) {
				stun = cfg->servers[i].addrs[k];
				stun_port = cfg->servers[i].port;
			}
		}
	}
	/* upnp off: it delays gathering by 200 ms and port mapping is ours to do. */
	g_object_set(s->agent, "upnp", FALSE, "controlling-mode", (gboolean)cfg->controlling,
		     "ice-udp", (gboolean)cfg->udp, "ice-tcp", (gboolean)cfg->tcp,
		     "keepalive-conncheck", TRUE, NULL);
	if (stun)
		g_object_set(s->agent, "stun-server", stun, "stun-server-port", stun_port, NULL);
	g_signal_connect(s->agent, "new-candidate-full", G_CALLBACK(on_new_candidate), s);
	g_signal_connect(s->agent, "candidate-gathering-done", G_CALLBACK(on_gathering_done), s);
	g_signal_connect(s->agent, "component-state-changed", G_CALLBACK(on_component_state), s);
	g_signal_connect(s->agent, "new-selected-pair-full", G_CALLBACK(on_selected_pair), s);
}

int ice_session_new(GMainContext *ctx, const struct ice_session_config *cfg,
		    struct ice_session **ret_session)
{
	struct ice_session *s;
	int r;

	r = check_config(cfg);
	if (r < 0)
		return r;
	s = g_new0(struct ice_session, 1);
	s->ctx = ctx;
	s->cb = *cfg->cb;
	s->data = cfg->data;
	for (size_t i = 0; i < cfg->n_servers; i++)
		s->servers[i] = cfg->servers[i];
	s->n_servers = cfg->n_servers;
	s->families = local_families(cfg);
	s->state = ICE_STATE_NEW;
	s->tcp_gathered = cfg->tcp;
	s->tcp_on = cfg->tcp && !cfg->tcp_later;

	/* RFC 7675 consent freshness; libnice then sends keepalives as binding requests. */
	s->agent = nice_agent_new_full(ctx, NICE_COMPATIBILITY_RFC5245,
				       NICE_AGENT_OPTION_ICE_TRICKLE |
					       NICE_AGENT_OPTION_CONSENT_FRESHNESS);
	if (!s->agent) {
		g_free(s);
		return -ENOMEM;
	}
	r = setup_local_addresses(s, cfg);
	if (r < 0)
		goto err_agent;
	setup_agent(s, cfg);
	s->stream = nice_agent_add_stream(s->agent, 1);
	if (!s->stream) {
		r = -ENOMEM;
		goto err_agent;
	}
	/* libnice handles incoming STUN only while someone receives: always attach. */
	nice_agent_attach_recv(s->agent, s->stream, ICE_COMPONENT, ctx, on_recv, s);
	*ret_session = s;
	return 0;

err_agent:
	g_signal_handlers_disconnect_by_data(s->agent, s);
	g_object_unref(s->agent);
	g_free(s);
	return r;
}

/* TURN servers with credentials valid now; arms the renewal reminder for REST ones. */
static int setup_relays(struct ice_session *s)
{
	time_t now = time(NULL), renew_at = 0;
	size_t n_relays = 0;

	for (size_t i = 0; i < s->n_servers; i++) {
		const struct ice_server *srv = &s->servers[i];
		char user[ICE_SERVER_CRED_MAX], pass[ICE_SERVER_CRED_MAX];
		time_t renew;
		int r;

		if (srv->kind != ICE_SERVER_TURN)
			continue;
		r = ice_server_credentials(srv, now, user, pass, &renew);
		if (r < 0)
			return r;
		if (renew && (!renew_at || renew < renew_at))
			renew_at = renew;
		for (size_t k = 0; k < srv->n_addrs; k++) {
			if (!(addr_family(srv->addrs[k]) & s->families))
				continue;
			/* NICE_CANDIDATE_MAX_TURN_SERVERS: relay priorities are unique up to it */
			if (n_relays == ICE_SERVERS_MAX) {
				log_info("ice: more than %d TURN addresses, ignoring %s",
					 ICE_SERVERS_MAX, srv->addrs[k]);
				continue;
			}
			n_relays++;
			if (!nice_agent_set_relay_info(s->agent, s->stream, ICE_COMPONENT,
						       srv->addrs[k], srv->port, user, pass,
						       srv->transport == ICE_SERVER_TCP
							       ? NICE_RELAY_TYPE_TURN_TCP
							       : NICE_RELAY_TYPE_TURN_UDP))
				return -EINVAL;
		}
	}
	if (renew_at) {
		s->renew = g_timeout_source_new_seconds((guint)(renew_at - now));
		g_source_set_callback(s->renew, on_renew_due, s, NULL);
		g_source_attach(s->renew, s->ctx);
	}
	return 0;
}

int ice_session_start(struct ice_session *s)
{
	int r;

	if (s->closing)
		return -ESHUTDOWN;
	if (s->started)
		return -EALREADY;
	r = setup_relays(s);
	if (r < 0)
		return r;
	s->started = true;
	report_local_credentials(s);
	if (!nice_agent_gather_candidates(s->agent, s->stream))
		return -EADDRNOTAVAIL;
	remote_flush(s);
	return 0;
}

int ice_session_restart(struct ice_session *s)
{
	if (s->closing)
		return -ESHUTDOWN;
	if (!s->started)
		return -EINVAL;
	restart_local(s);
	return 0;
}

int ice_session_use_tcp(struct ice_session *s)
{
	GSList *cands;

	if (s->closing)
		return -ESHUTDOWN;
	if (!s->tcp_gathered)
		return -EOPNOTSUPP;
	if (s->tcp_on)
		return -EALREADY;
	s->tcp_on = true;
	if (!s->started)
		return 0;
	/* Trickle the TCP candidates gathered so far; the later ones follow as found. */
	cands = nice_agent_get_local_candidates(s->agent, s->stream, ICE_COMPONENT);
	for (GSList *i = cands; i; i = i->next) {
		const NiceCandidate *nc = i->data;

		if (nc->transport != NICE_CANDIDATE_TRANSPORT_UDP)
			report_local_candidate(s, nc);
	}
	g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
	return 0;
}

bool ice_session_uses_tcp(const struct ice_session *s)
{
	return s->tcp_on;
}

int ice_session_send(struct ice_session *s, const void *buf, size_t len)
{
	gint n;

	if (s->closing)
		return -ESHUTDOWN;
	if (len == 0 || len > ICE_SEND_MAX)
		return -EMSGSIZE;
	n = nice_agent_send(s->agent, s->stream, ICE_COMPONENT, (guint)len, buf);
	if (n < 0)
		return s->state == ICE_STATE_CONNECTED ? -EAGAIN : -ENOTCONN;
	return 0;
}

void ice_session_set_callbacks(struct ice_session *s, const struct ice_session_callbacks *cb,
			       void *data)
{
	s->cb = *cb;
	s->data = data;
}

/* One call into libnice for up to ICE_SEND_BATCH_MAX datagrams: one agent lock, not n. */
static int send_chunk(struct ice_session *s, const struct iovec *dgrams, size_t n, bool *ret_short)
{
	NiceOutputMessage msgs[ICE_SEND_BATCH_MAX];
	GOutputVector vecs[ICE_SEND_BATCH_MAX];
	GError *err = NULL;
	guint m = 0;
	gint sent;

	for (size_t i = 0; i < n; i++) {
		/* Too long or empty: dropped, as ice_session_send() would refuse it. */
		if (dgrams[i].iov_len == 0 || dgrams[i].iov_len > ICE_SEND_MAX)
			continue;
		vecs[m].buffer = dgrams[i].iov_base;
		vecs[m].size = dgrams[i].iov_len;
		msgs[m].buffers = &vecs[m];
		msgs[m].n_buffers = 1;
		m++;
	}
	if (!m) {
		*ret_short = false;
		return 0;
	}
	sent = nice_agent_send_messages_nonblocking(s->agent, s->stream, ICE_COMPONENT, msgs, m,
						    NULL, &err);
	g_clear_error(&err);
	if (sent > 0) {
		*ret_short = (guint)sent < m;
		return sent;
	}
	return s->state == ICE_STATE_CONNECTED ? -EAGAIN : -ENOTCONN;
}

int ice_session_send_batch(struct ice_session *s, const struct iovec *dgrams, size_t n)
{
	size_t done = 0;
	int total = 0, r;
	bool full;

	if (s->closing)
		return -ESHUTDOWN;
	while (done < n) {
		size_t chunk = MIN(n - done, (size_t)ICE_SEND_BATCH_MAX);

		r = send_chunk(s, dgrams + done, chunk, &full);
		if (r < 0)
			return total ? total : r;
		total += r;
		/* A short count: libnice's socket is full; the rest would fail the same way. */
		if (full)
			break;
		done += chunk;
	}
	return total;
}

enum ice_state ice_session_state(const struct ice_session *s)
{
	return s->state;
}

static void on_closed(GObject *src, GAsyncResult *res, gpointer data)
{
	struct close_token *t = data;

	if (t->s) {
		t->s->close = NULL;
		set_state(t->s, ICE_STATE_CLOSED);
	}
	g_free(t);
}

int ice_session_close(struct ice_session *s)
{
	if (s->closing)
		return -EALREADY;
	s->closing = true;
	if (s->renew) {
		g_source_destroy(s->renew);
		g_source_unref(s->renew);
		s->renew = NULL;
	}
	nice_agent_attach_recv(s->agent, s->stream, ICE_COMPONENT, s->ctx, NULL, NULL);
	s->close = g_new0(struct close_token, 1);
	s->close->s = s;
	/*
	 * Sends TURN Refresh with lifetime 0 for every allocation, then calls back in the
	 * thread-default context of the caller: make that ours.
	 */
	g_main_context_push_thread_default(s->ctx);
	nice_agent_close_async(s->agent, on_closed, s->close);
	g_main_context_pop_thread_default(s->ctx);
	return 0;
}

struct ice_session *ice_session_free(struct ice_session *s)
{
	if (!s)
		return NULL;
	if (s->renew) {
		g_source_destroy(s->renew);
		g_source_unref(s->renew);
	}
	g_signal_handlers_disconnect_by_data(s->agent, s);
	if (!s->closing) {
		nice_agent_attach_recv(s->agent, s->stream, ICE_COMPONENT, s->ctx, NULL, NULL);
		g_main_context_push_thread_default(s->ctx);
		nice_agent_close_async(s->agent, NULL, NULL);
		g_main_context_pop_thread_default(s->ctx);
	}
	if (s->close)
		s->close->s = NULL;
	g_object_unref(s->agent);
	held_clear(s);
	g_free(s);
	return NULL;
}
