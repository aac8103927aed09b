/* SPDX-License-Identifier: MIT */
/*
 * ICE sessions: two libnice sessions in one process on one GMainContext, signaling by direct
 * function calls through a queue per direction that the test pumps (so the order of
 * credentials and candidates is the test's to choose). Server URL parsing and TURN REST
 * credentials; a real coturn when turnserver is installed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <agent.h>
#include "ice/servers.h"
#include "ice/session.h"
#include "util/log.h"

#define WAIT_MS 10000

/* ---- a peer and its signaling ---- */

enum msg_kind { MSG_CREDS, MSG_CAND, MSG_DONE };

struct msg {
	enum msg_kind kind;
	char ufrag[ICE_UFRAG_MAX];
	char pwd[ICE_PWD_MAX];
	struct ice_candidate c;
};

struct peer {
	const char *name;
	struct ice_session *s;
	struct peer *other;
	GQueue out;	   /* struct msg *, to the other peer */
	bool creds_last;   /* credentials go out after our end-of-candidates */
	struct msg *creds; /* held while creds_last */
	bool relay_only;   /* only our relay candidates reach the other peer */
	bool hold;	   /* nothing goes out while set */
	int n_creds, n_done, n_cands;
	enum ice_state state;
	int n_failed, n_closed;
	int n_selected;
	struct ice_pair pair;
	unsigned int rx; /* datagrams received with the right content */
	unsigned int rx_bad;
};

static GMainContext *ctx;

static void queue_msg(struct peer *p, struct msg *m)
{
	g_queue_push_tail(&p->out, m);
}

static void cb_credentials(void *data, const char *ufrag, const char *pwd)
{
	struct peer *p = data;
	struct msg *m = g_new0(struct msg, 1);

	m->kind = MSG_CREDS;
	g_strlcpy(m->ufrag, ufrag, sizeof(m->ufrag));
	g_strlcpy(m->pwd, pwd, sizeof(m->pwd));
	p->n_creds++;
	if (p->creds_last) {
		g_free(p->creds);
		p->creds = m;
	} else {
		queue_msg(p, m);
	}
}

static void cb_candidate(void *data, const struct ice_candidate *c)
{
	struct peer *p = data;
	struct msg *m;

	p->n_cands++;
	if (p->relay_only && c->type != ICE_CANDIDATE_RELAY)
		return;
	m = g_new0(struct msg, 1);
	m->kind = MSG_CAND;
	m->c = *c;
	queue_msg(p, m);
}

static void cb_done(void *data)
{
	struct peer *p = data;
	struct msg *m = g_new0(struct msg, 1);

	p->n_done++;
	m->kind = MSG_DONE;
	queue_msg(p, m);
	if (p->creds) {
		queue_msg(p, p->creds);
		p->creds = NULL;
	}
}

static void cb_state(void *data, enum ice_state st)
{
	struct peer *p = data;

	p->state = st;
	p->n_failed += st == ICE_STATE_FAILED;
	p->n_closed += st == ICE_STATE_CLOSED;
}

static void cb_selected(void *data, const struct ice_pair *pair)
{
	struct peer *p = data;

	p->pair = *pair;
	p->n_selected++;
}

static void cb_receive(void *data, const uint8_t *buf, size_t len)
{
	struct peer *p = data;
	char want[64];

	snprintf(want, sizeof(want), "wg-packet from %s", p->other->name);
	if (len == strlen(want) && memcmp(buf, want, len) == 0)
		p->rx++;
	else
		p->rx_bad++;
}

static const struct ice_session_callbacks callbacks = {
	.on_local_credentials = cb_credentials,
	.on_local_candidate = cb_candidate,
	.on_gathering_done = cb_done,
	.on_state = cb_state,
	.on_selected_pair = cb_selected,
	.on_receive = cb_receive,
};

static void deliver(struct peer *from)
{
	struct msg *m;

	if (from->hold)
		return;
	while ((m = g_queue_pop_head(&from->out))) {
		struct ice_session *to = from->other->s;

		if (!to) { /* a peer that never answers */
			g_free(m);
			continue;
		}

		switch (m->kind) {
		case MSG_CREDS:
			assert_int_equal(ice_session_set_remote_credentials(to, m->ufrag, m->pwd),
					 0);
			break;
		case MSG_CAND:
			assert_int_equal(ice_session_add_remote_candidate(to, &m->c), 0);
			break;
		case MSG_DONE:
			assert_int_equal(ice_session_remote_gathering_done(to), 0);
			break;
		}
		g_free(m);
	}
}

static gboolean tick(gpointer data)
{
	return G_SOURCE_CONTINUE;
}

/* Runs the context, pumping signaling, until pred holds or ms pass. */
static bool run_until(struct peer *a, struct peer *b, bool (*pred)(struct peer *, struct peer *),
		      int ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;

	while (g_get_monotonic_time() < deadline) {
		if (a)
			deliver(a);
		if (b)
			deliver(b);
		if (pred(a, b))
			return true;
		g_main_context_iteration(ctx, TRUE);
	}
	return pred(a, b);
}

static bool both_connected(struct peer *a, struct peer *b)
{
	return a->state == ICE_STATE_CONNECTED && b->state == ICE_STATE_CONNECTED &&
	       a->n_selected > 0 && b->n_selected > 0;
}

static bool never(struct peer *a, struct peer *b)
{
	return false;
}

static const char *const loopback[] = {"127.0.0.1"};
static bool init_tcp_later; /* peer_init: ICE-TCP candidates only after ice_session_use_tcp() */

static void peer_init(struct peer *p, struct peer *other, const char *name, bool controlling,
		      bool udp, bool tcp, const struct ice_server *servers, size_t n_servers)
{
	struct ice_session_config cfg = {
		.controlling = controlling,
		.servers = servers,
		.n_servers = n_servers,
		.udp = udp,
		.tcp = tcp,
		.tcp_later = init_tcp_later,
		.local_addresses = loopback,
		.n_local_addresses = 1,
		.cb = &callbacks,
		.data = p,
	};

	memset(p, 0, sizeof(*p));
	p->name = name;
	p->other = other;
	g_queue_init(&p->out);
	assert_int_equal(ice_session_new(ctx, &cfg, &p->s), 0);
	assert_int_equal(ice_session_state(p->s), ICE_STATE_NEW);
}

static void peer_fini(struct peer *p)
{
	p->s = ice_session_free(p->s);
	g_queue_clear_full(&p->out, g_free);
	g_free(p->creds);
	p->creds = NULL;
}

/* Lets libnice finish what freeing started (TURN deallocation, socket closes). */
static void drain(int ms)
{
	run_until(NULL, NULL, never, ms);
}

static void send_packet(struct peer *p)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "wg-packet from %s", p->name);
	assert_int_equal(ice_session_send(p->s, msg, strlen(msg)), 0);
}

static bool both_received(struct peer *a, struct peer *b)
{
	return a->rx > 0 && b->rx > 0;
}

/* Data both ways over the selected pair. */
static void exchange_data(struct peer *a, struct peer *b)
{
	unsigned int ra = a->rx, rb = b->rx;

	for (int i = 0; i < 5; i++) {
		send_packet(a);
		send_packet(b);
	}
	a->rx = b->rx = 0;
	assert_true(run_until(a, b, both_received, WAIT_MS));
	run_until(a, b, never, 50);
	assert_true(a->rx >= 4 && b->rx >= 4); /* loopback UDP: a loss would be odd */
	assert_int_equal(a->rx_bad + b->rx_bad, 0);
	a->rx += ra;
	b->rx += rb;
}

static void assert_fd_matches(const struct ice_pair *pair)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int type = 0;
	socklen_t tl = sizeof(type);

	assert_true(pair->fd >= 0);
	assert_int_equal(getsockname(pair->fd, (struct sockaddr *)&ss, &sl), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), pair->local.port);
	assert_int_equal(getsockopt(pair->fd, SOL_SOCKET, SO_TYPE, &type, &tl), 0);
	assert_int_equal(type, SOCK_DGRAM);
}

/* ---- connecting ---- */

static void connect_udp(bool creds_last)
{
	struct peer a, b;

	peer_init(&a, &b, "a", true, true, false, NULL, 0);
	peer_init(&b, &a, "b", false, true, false, NULL, 0);
	a.creds_last = b.creds_last = creds_last;
	assert_int_equal(ice_session_send(a.s, "x", 1), -ENOTCONN);
	assert_int_equal(ice_session_start(a.s), 0);
	assert_int_equal(ice_session_start(a.s), -EALREADY);
	assert_int_equal(ice_session_start(b.s), 0);
	assert_int_equal(a.n_creds, 1);

	assert_true(run_until(&a, &b, both_connected, WAIT_MS));
	assert_int_equal(a.n_done, 1);
	assert_true(a.n_cands >= 1);
	for (struct peer *p = &a; p; p = p == &a ? &b : NULL) {
		assert_int_equal(p->pair.local.type, ICE_CANDIDATE_HOST);
		/* Checks can outrun trickled candidates: then the remote is peer-reflexive. */
		assert_true(p->pair.remote.type == ICE_CANDIDATE_HOST ||
			    p->pair.remote.type == ICE_CANDIDATE_PRFLX);
		assert_int_equal(p->pair.local.transport, ICE_TRANSPORT_UDP);
		assert_string_equal(p->pair.local.address, "127.0.0.1");
		assert_string_equal(p->pair.remote.address, "127.0.0.1");
		assert_int_equal(p->pair.remote.port, p->other->pair.local.port);
		assert_fd_matches(&p->pair);
	}
	exchange_data(&a, &b);
	assert_int_equal(a.n_failed + b.n_failed, 0);
	peer_fini(&a);
	peer_fini(&b);
	drain(50);
}

static void test_connect_udp_credentials_first(void **state)
{
	connect_udp(false);
}

static void test_connect_udp_candidates_first(void **state)
{
	connect_udp(true);
}

static void test_connect_tcp_only(void **state)
{
	struct peer a, b;

	peer_init(&a, &b, "a", false, false, true, NULL, 0);
	peer_init(&b, &a, "b", true, false, true, NULL, 0);
	a.creds_last = true;
	assert_int_equal(ice_session_start(b.s), 0);
	assert_int_equal(ice_session_start(a.s), 0);
	assert_true(run_until(&a, &b, both_connected, WAIT_MS));
	for (struct peer *p = &a; p; p = p == &a ? &b : NULL) {
		assert_int_equal(p->pair.local.transport, ICE_TRANSPORT_TCP);
		assert_int_equal(p->pair.remote.transport, ICE_TRANSPORT_TCP);
		assert_true(p->pair.local.tcptype == ICE_TCPTYPE_ACTIVE ||
			    p->pair.local.tcptype == ICE_TCPTYPE_PASSIVE ||
			    p->pair.local.tcptype == ICE_TCPTYPE_SO);
		assert_int_equal(p->pair.fd, -1);
	}
	/* Active on one side, passive on the other (RFC 6544 section 6.2). */
	assert_int_not_equal(a.pair.local.tcptype, b.pair.local.tcptype);
	exchange_data(&a, &b);
	peer_fini(&a);
	peer_fini(&b);
	drain(50);
}

/*
 * ICE-TCP second: TCP candidates gathered but neither told nor accepted until
 * ice_session_use_tcp(); then a restart by one side, and the other's answer, bring TCP pairs.
 * UDP is off here so that only TCP can connect.
 */
static void test_tcp_later(void **state)
{
	struct peer a, b;
	struct ice_candidate tcp = {
		.foundation = "1",
		.component = ICE_COMPONENT,
		.transport = ICE_TRANSPORT_TCP,
		.tcptype = ICE_TCPTYPE_PASSIVE,
		.priority = 1,
		.address = "127.0.0.1",
		.port = 9,
		.type = ICE_CANDIDATE_HOST,
	};

	init_tcp_later = true;
	peer_init(&a, &b, "a", false, false, true, NULL, 0);
	peer_init(&b, &a, "b", true, false, true, NULL, 0);
	init_tcp_later = false;
	assert_false(ice_session_uses_tcp(a.s));
	assert_int_equal(ice_session_start(b.s), 0);
	assert_int_equal(ice_session_start(a.s), 0);
	assert_false(run_until(&a, &b, both_connected, 500));
	assert_int_equal(a.n_cands + b.n_cands, 0);
	assert_int_equal(ice_session_add_remote_candidate(a.s, &tcp), -EPROTONOSUPPORT);

	/* a learns that b uses TCP (Message.ice_tcp) before b's new credentials arrive. */
	assert_int_equal(ice_session_use_tcp(a.s), 0);
	assert_int_equal(ice_session_use_tcp(b.s), 0);
	assert_int_equal(ice_session_use_tcp(b.s), -EALREADY);
	assert_true(ice_session_uses_tcp(b.s));
	assert_int_equal(ice_session_restart(b.s), 0);
	assert_true(run_until(&a, &b, both_connected, WAIT_MS));
	assert_true(a.n_cands > 0 && b.n_cands > 0);
	assert_int_equal(a.pair.local.transport, ICE_TRANSPORT_TCP);
	assert_int_equal(b.pair.remote.transport, ICE_TRANSPORT_TCP);
	exchange_data(&a, &b);
	peer_fini(&a);
	peer_fini(&b);

	/* A session that gathers no TCP candidates cannot start using them. */
	peer_init(&a, &b, "a", false, true, false, NULL, 0);
	assert_int_equal(ice_session_use_tcp(a.s), -EOPNOTSUPP);
	peer_fini(&a);
	drain(50);
}

/* ---- restart: make-before-break ---- */

static bool both_reselected(struct peer *a, struct peer *b)
{
	return a->n_selected >= 2 && b->n_selected >= 2 && both_connected(a, b);
}

static void test_restart_keeps_old_pair(void **state)
{
	struct peer a, b;
	char old_ufrag[ICE_UFRAG_MAX];
	struct msg *m;

	peer_init(&a, &b, "a", true, true, false, NULL, 0);
	peer_init(&b, &a, "b", false, true, false, NULL, 0);
	assert_int_equal(ice_session_start(a.s), 0);
	assert_int_equal(ice_session_start(b.s), 0);
	assert_true(run_until(&a, &b, both_connected, WAIT_MS));
	exchange_data(&a, &b);
	a.n_selected = b.n_selected = 1;

	/* a restarts; its new credentials stay unsent for a while. */
	a.hold = true;
	assert_int_equal(ice_session_restart(a.s), 0);
	assert_int_equal(a.n_creds, 2);
	assert_int_equal(a.n_done, 2); /* candidates signaled again, then end-of-candidates */
	m = g_queue_peek_head(&a.out);
	assert_non_null(m);
	assert_int_equal(m->kind, MSG_CREDS);
	g_strlcpy(old_ufrag, m->ufrag, sizeof(old_ufrag));

	/* Meanwhile both keep sending on the old pair, and it carries the data. */
	for (int round = 0; round < 5; round++) {
		run_until(&a, &b, never, 100);
		exchange_data(&a, &b);
	}
	assert_int_equal(a.state, ICE_STATE_CONNECTED);
	assert_int_equal(b.state, ICE_STATE_CONNECTED);

	/* The signaling catches up: b sees a new ufrag, restarts too, both select again. */
	a.hold = false;
	assert_true(run_until(&a, &b, both_reselected, WAIT_MS));
	assert_int_equal(b.n_creds, 2);
	exchange_data(&a, &b);
	assert_int_equal(a.n_failed + b.n_failed, 0);
	peer_fini(&a);
	peer_fini(&b);
	drain(50);
}

/* ---- failure ---- */

static bool failed(struct peer *a, struct peer *b)
{
	return a->state == ICE_STATE_FAILED;
}

static void test_unanswered_fails(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	struct ice_candidate dead = {
		.foundation = "1",
		.component = 1,
		.transport = ICE_TRANSPORT_UDP,
		.priority = 2130706431,
		.address = "127.0.0.1",
		.type = ICE_CANDIDATE_HOST,
	};
	struct peer a, nobody;
	gint64 t0;
	int sink;

	/* A bound socket nobody reads: checks vanish without an ICMP error. */
	sink = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(sink >= 0);
	assert_int_equal(bind(sink, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(sink, (struct sockaddr *)&sin, &sl), 0);
	dead.port = ntohs(sin.sin_port);

	memset(&nobody, 0, sizeof(nobody));
	nobody.name = "nobody";
	peer_init(&a, &nobody, "a", true, true, false, NULL, 0);
	t0 = g_get_monotonic_time();
	assert_int_equal(ice_session_start(a.s), 0);
	assert_int_equal(ice_session_add_remote_candidate(a.s, &dead), 0);
	assert_int_equal(
		ice_session_set_remote_credentials(a.s, "deadufrag", "deadpassworddeadpassword"),
		0);
	assert_int_equal(ice_session_remote_gathering_done(a.s), 0);
	assert_true(run_until(&a, NULL, failed, 15000));
	printf("# unanswered: failed after %lld ms\n",
	       (long long)(g_get_monotonic_time() - t0) / 1000);
	assert_int_equal(ice_session_send(a.s, "x", 1), -ENOTCONN);
	close(sink);
	peer_fini(&a);
	drain(50);
}

/* ---- configuration, conversions ---- */

static void test_config_errors(void **state)
{
	struct ice_server srv;
	struct ice_session_config cfg = {.udp = true, .cb = &callbacks};
	struct ice_session *s = NULL;

	assert_int_equal(ice_server_parse("turns:u:p@127.0.0.1:5349", &srv), 0);
	cfg.servers = &srv;
	cfg.n_servers = 1;
	assert_int_equal(ice_session_new(ctx, &cfg, &s), -EPROTONOSUPPORT);
	assert_int_equal(ice_server_parse("turn:u:p@turn.example.org", &srv), 0);
	assert_int_equal(ice_session_new(ctx, &cfg, &s), -EINVAL); /* names: not resolved yet */
	cfg.n_servers = 0;
	cfg.udp = false;
	assert_int_equal(ice_session_new(ctx, &cfg, &s), -EINVAL);
	cfg.udp = true;
	cfg.families = ICE_FAMILY_IPV6;
	cfg.local_addresses = loopback;
	cfg.n_local_addresses = 1;
	assert_int_equal(ice_session_new(ctx, &cfg, &s), -EADDRNOTAVAIL);
	assert_null(s);
	assert_null(ice_session_free(NULL));
}

static void test_candidate_conversion(void **state)
{
	static const struct ice_candidate good[] = {
		{"1", 1, ICE_TRANSPORT_UDP, ICE_TCPTYPE_NONE, 2130706431, "192.0.2.1", 4000,
		 ICE_CANDIDATE_HOST, "", 0},
		{"2", 1, ICE_TRANSPORT_UDP, ICE_TCPTYPE_NONE, 1694498815, "203.0.113.7", 61000,
		 ICE_CANDIDATE_SRFLX, "192.0.2.1", 4000},
		{"a+/Z", 1, ICE_TRANSPORT_TCP, ICE_TCPTYPE_PASSIVE, 1015022079, "2001:db8::1", 9000,
		 ICE_CANDIDATE_HOST, "", 0},
		{"4", 1, ICE_TRANSPORT_TCP, ICE_TCPTYPE_ACTIVE, 1015022079, "2001:db8::1", 9,
		 ICE_CANDIDATE_HOST, "", 0},
		{"5", 1, ICE_TRANSPORT_UDP, ICE_TCPTYPE_NONE, 16777215, "198.51.100.9", 50000,
		 ICE_CANDIDATE_RELAY, "203.0.113.7", 61000},
		{"6", 1, ICE_TRANSPORT_TCP, ICE_TCPTYPE_SO, 1, "192.0.2.1", 1, ICE_CANDIDATE_PRFLX,
		 "192.0.2.2", 2},
	};
	static const struct ice_candidate bad[] = {
		{"", 1, ICE_TRANSPORT_UDP, 0, 1, "192.0.2.1", 1, ICE_CANDIDATE_HOST, "", 0},
		{"a b", 1, ICE_TRANSPORT_UDP, 0, 1, "192.0.2.1", 1, ICE_CANDIDATE_HOST, "", 0},
		{"1", 2, ICE_TRANSPORT_UDP, 0, 1, "192.0.2.1", 1, ICE_CANDIDATE_HOST, "", 0},
		{"1", 1, 0, 0, 1, "192.0.2.1", 1, ICE_CANDIDATE_HOST, "", 0},
		{"1", 1, ICE_TRANSPORT_UDP, ICE_TCPTYPE_ACTIVE, 1, "192.0.2.1", 1,
		 ICE_CANDIDATE_HOST, "", 0},
		{"1", 1, ICE_TRANSPORT_TCP, ICE_TCPTYPE_NONE, 1, "192.0.2.1", 1, ICE_CANDIDATE_HOST,
		 "", 0},
		{"1", 1, ICE_TRANSPORT_UDP, 0, 1, "192.0.2.1", 65536, ICE_CANDIDATE_HOST, "", 0},
		{"1", 1, ICE_TRANSPORT_UDP, 0, 1, "host.example", 1, ICE_CANDIDATE_HOST, "", 0},
		{"1", 1, ICE_TRANSPORT_UDP, 0, 1, "192.0.2.1", 1, 0, "", 0},
		{"1", 1, ICE_TRANSPORT_UDP, 0, 1, "192.0.2.1", 1, 5, "", 0},
		{"1", 1, ICE_TRANSPORT_UDP, 0, 1, "192.0.2.1", 1, ICE_CANDIDATE_SRFLX, "nope", 1},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		NiceCandidate *nc = NULL;
		struct ice_candidate back;

		assert_int_equal(ice_candidate_to_nice(&good[i], 7, &nc), 0);
		assert_int_equal(nc->stream_id, 7);
		assert_int_equal(ice_candidate_from_nice(nc, &back), 0);
		assert_memory_equal(&back, &good[i], sizeof(back));
		nice_candidate_free(nc);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		NiceCandidate *nc = NULL;

		assert_int_equal(ice_candidate_to_nice(&bad[i], 1, &nc), -EBADMSG);
		assert_null(nc);
	}
}

/* ---- servers ---- */

struct url_case {
	const char *url;
	int ret;
	enum ice_server_kind kind;
	enum ice_server_transport transport;
	bool tls;
	const char *host;
	uint16_t port;
	const char *user, *pass, *secret;
	uint32_t lifetime;
};

#define DAY ICE_SERVER_REST_LIFETIME_DEFAULT

static const struct url_case url_cases[] = {
	{"stun:192.0.2.1:3478", 0, ICE_SERVER_STUN, ICE_SERVER_UDP, false, "192.0.2.1", 3478, "",
	 "", "", DAY},
	{"stun:stun.example.org", 0, ICE_SERVER_STUN, ICE_SERVER_UDP, false, "stun.example.org",
	 3478, "", "", "", DAY},
	{"stun:[2001:db8::1]:19302", 0, ICE_SERVER_STUN, ICE_SERVER_UDP, false, "2001:db8::1",
	 19302, "", "", "", DAY},
	{"turn:alice:s3cret@192.0.2.1:3478?transport=udp", 0, ICE_SERVER_TURN, ICE_SERVER_UDP,
	 false, "192.0.2.1", 3478, "alice", "s3cret", "", DAY},
	{"turn:alice:s3cret@192.0.2.1:443?transport=tcp", 0, ICE_SERVER_TURN, ICE_SERVER_TCP, false,
	 "192.0.2.1", 443, "alice", "s3cret", "", DAY},
	{"turn:al%40ice:p%3Aw%26d@turn.example.org", 0, ICE_SERVER_TURN, ICE_SERVER_UDP, false,
	 "turn.example.org", 3478, "al@ice", "p:w&d", "", DAY},
	{"turns:alice:pw@turn.example.org:5349?transport=tcp", 0, ICE_SERVER_TURN, ICE_SERVER_TCP,
	 true, "turn.example.org", 5349, "alice", "pw", "", DAY},
	{"turns:alice:pw@[2001:db8::2]", 0, ICE_SERVER_TURN, ICE_SERVER_TCP, true, "2001:db8::2",
	 5349, "alice", "pw", "", DAY},
	{"turn:192.0.2.1:3478?secret=north", 0, ICE_SERVER_TURN, ICE_SERVER_UDP, false, "192.0.2.1",
	 3478, "", "", "north", DAY},
	{"turn:192.0.2.1?secret=n%26s&lifetime=600&transport=tcp", 0, ICE_SERVER_TURN,
	 ICE_SERVER_TCP, false, "192.0.2.1", 3478, "", "", "n&s", 600},
	/* bad */
	{.url = "stun:", .ret = -EINVAL},
	{.url = "stuns:192.0.2.1", .ret = -EINVAL},
	{.url = "http://192.0.2.1", .ret = -EINVAL},
	{.url = "stun://192.0.2.1:3478", .ret = -EINVAL},
	{.url = "stun:192.0.2.1:0", .ret = -EINVAL},
	{.url = "stun:192.0.2.1:65536", .ret = -EINVAL},
	{.url = "stun:192.0.2.1:34a", .ret = -EINVAL},
	{.url = "stun:192.0.2.1:", .ret = -EINVAL},
	{.url = "stun:u:p@192.0.2.1", .ret = -EINVAL},
	{.url = "stun:192.0.2.1?transport=udp", .ret = -EINVAL},
	{.url = "stun:[2001:db8::1", .ret = -EINVAL},
	{.url = "stun:[not:v6]:3478", .ret = -EINVAL},
	{.url = "stun:2001:db8::1", .ret = -EINVAL},
	{.url = "stun:bad host", .ret = -EINVAL},
	{.url = "turn:192.0.2.1", .ret = -EINVAL},		/* no credentials */
	{.url = "turn:alice@192.0.2.1", .ret = -EINVAL},	/* no password */
	{.url = "turn::pw@192.0.2.1", .ret = -EINVAL},		/* empty user */
	{.url = "turn:alice:@192.0.2.1", .ret = -EINVAL},	/* empty password */
	{.url = "turn:a:b@192.0.2.1?secret=s", .ret = -EINVAL}, /* both kinds of credentials */
	{.url = "turn:a:b@192.0.2.1?transport=sctp", .ret = -EINVAL},
	{.url = "turn:a:b@192.0.2.1?transport=udp&transport=tcp", .ret = -EINVAL},
	{.url = "turn:a:b@192.0.2.1?foo=bar", .ret = -EINVAL},
	{.url = "turn:a:b@192.0.2.1?", .ret = -EINVAL},
	{.url = "turn:a:b@192.0.2.1?transport=", .ret = -EINVAL},
	{.url = "turn:a:b@192.0.2.1?lifetime=600", .ret = -EINVAL}, /* lifetime without secret */
	{.url = "turn:192.0.2.1?secret=s&lifetime=10", .ret = -EINVAL},
	{.url = "turn:192.0.2.1?secret=s&lifetime=x", .ret = -EINVAL},
	{.url = "turn:a%4:b@192.0.2.1", .ret = -EINVAL},
	{.url = "turn:a%00:b@192.0.2.1", .ret = -EINVAL},
	{.url = "turns:a:b@192.0.2.1?transport=udp", .ret = -EINVAL},
};

static void test_server_parse(void **state)
{
	char longurl[ICE_SERVER_URL_MAX + 16];
	struct ice_server srv;

	for (size_t i = 0; i < G_N_ELEMENTS(url_cases); i++) {
		const struct url_case *t = &url_cases[i];
		int r;

		memset(&srv, 0xa5, sizeof(srv));
		r = ice_server_parse(t->url, &srv);
		if (r != t->ret)
			fail_msg("%s: %d, want %d", t->url, r, t->ret);
		if (r < 0) {
			assert_int_equal(srv.port, 0xa5a5); /* untouched */
			continue;
		}
		assert_int_equal(srv.kind, t->kind);
		assert_int_equal(srv.transport, t->transport);
		assert_int_equal(srv.tls, t->tls);
		assert_string_equal(srv.host, t->host);
		assert_int_equal(srv.port, t->port);
		assert_string_equal(srv.user, t->user);
		assert_string_equal(srv.pass, t->pass);
		assert_string_equal(srv.secret, t->secret);
		assert_int_equal(srv.lifetime, t->lifetime);
	}
	memset(longurl, 'a', sizeof(longurl) - 1);
	memcpy(longurl, "stun:", 5);
	longurl[sizeof(longurl) - 1] = '\0';
	assert_int_equal(ice_server_parse(longurl, &srv), -ENAMETOOLONG);
	assert_int_equal(ice_server_parse(NULL, &srv), -EINVAL);
}

/*
 * Vectors computed by hand:
 *   printf '%s' '1700086400:wice' | openssl dgst -sha1 -hmac 'wice-secret' -binary | base64
 *   printf '%s' '1700000600:wice' | openssl dgst -sha1 -hmac 'north' -binary | base64
 */
static void test_rest_credentials(void **state)
{
	char user[ICE_SERVER_CRED_MAX], pass[ICE_SERVER_CRED_MAX];
	struct ice_server srv;
	time_t renew = -1;

	assert_int_equal(ice_server_parse("turn:192.0.2.1?secret=wice-secret", &srv), 0);
	assert_int_equal(ice_server_credentials(&srv, 1700000000, user, pass, &renew), 0);
	assert_string_equal(user, "1700086400:wice");
	assert_string_equal(pass, "ZzWTYt7OO8MfdThVRZoS3tHfm/0=");
	assert_int_equal(renew, 1700000000 + 86400 * 3 / 4);

	assert_int_equal(ice_server_parse("turn:192.0.2.1?secret=north&lifetime=600", &srv), 0);
	assert_int_equal(ice_server_credentials(&srv, 1700000000, user, pass, &renew), 0);
	assert_string_equal(user, "1700000600:wice");
	assert_string_equal(pass, "13RlfUdjCSsJsl7UMxaYyJZzxtg=");
	assert_int_equal(renew, 1700000450);

	assert_int_equal(ice_server_parse("turn:bob:pw@192.0.2.1", &srv), 0);
	assert_int_equal(ice_server_credentials(&srv, 1700000000, user, pass, &renew), 0);
	assert_string_equal(user, "bob");
	assert_string_equal(pass, "pw");
	assert_int_equal(renew, 0);

	assert_int_equal(ice_server_parse("stun:192.0.2.1", &srv), 0);
	assert_int_equal(ice_server_credentials(&srv, 1700000000, user, pass, &renew), -EINVAL);
}

/* ---- real coturn ---- */

static pid_t turn_pid;
static char turn_dir[64];
static uint16_t turn_port;

static uint16_t free_port(int type)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, type, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static bool turn_listening(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(turn_port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;

	close(fd);
	return ok;
}

static int start_coturn(void)
{
	char conf[128], log[128];
	FILE *f;

	if (access("/usr/bin/turnserver", X_OK) != 0)
		return -ENOENT;
	g_strlcpy(turn_dir, "/tmp/wice-ice-turn-XXXXXX", sizeof(turn_dir));
	assert_non_null(mkdtemp(turn_dir));
	snprintf(conf, sizeof(conf), "%s/turnserver.conf", turn_dir);
	snprintf(log, sizeof(log), "%s/turn.log", turn_dir);
	turn_port = free_port(SOCK_STREAM);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
		"listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port=%u\n"
		"min-port=49152\nmax-port=65535\nlt-cred-mech\nuser=wice:wicepass\nrealm=wice."
		"test\n"
		"allow-loopback-peers\nno-tls\nno-dtls\nno-cli\nno-multicast-peers\n"
		"log-file=%s\nsimple-log\nverbose\npidfile=%s/turn.pid\n",
		turn_port, log, turn_dir);
	fclose(f);

	turn_pid = fork();
	assert_true(turn_pid >= 0);
	if (turn_pid == 0) {
		int null = open("/dev/null", O_RDWR);

		/* Dies with the test, even when the test is killed. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execl("/usr/bin/turnserver", "turnserver", "-c", conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !turn_listening(); i++)
		usleep(10000);
	return turn_listening() ? 0 : -EIO;
}

static void stop_coturn(void)
{
	char cmd[128];

	if (turn_pid > 0) {
		kill(turn_pid, SIGTERM);
		waitpid(turn_pid, NULL, 0);
		turn_pid = 0;
	}
	if (turn_dir[0] && getenv("WICE_TEST_KEEP_TURN_LOG")) {
		printf("# coturn log kept in %s\n", turn_dir);
		turn_dir[0] = '\0';
	}
	if (turn_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", turn_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", turn_dir);
		turn_dir[0] = '\0';
	}
}

/* coturn's log lines for a Refresh with lifetime 0: a released allocation. */
static int coturn_releases(void)
{
	char path[128], line[512];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/turn.log", turn_dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "refreshed") && strstr(line, "lifetime=0");
	fclose(f);
	return n;
}

static bool both_closed(struct peer *a, struct peer *b)
{
	return a->n_closed && b->n_closed;
}

static void relay_only(const char *transport)
{
	struct ice_server srv;
	char url[128];
	struct peer a, b;
	gint64 t0;

	if (start_coturn() < 0) {
		stop_coturn();
		skip();
	}
	snprintf(url, sizeof(url), "turn:wice:wicepass@127.0.0.1:%u?transport=%s", turn_port,
		 transport);
	assert_int_equal(ice_server_parse(url, &srv), 0);
	peer_init(&a, &b, "a", true, true, false, &srv, 1);
	peer_init(&b, &a, "b", false, true, false, &srv, 1);
	a.relay_only = b.relay_only = true;
	assert_int_equal(ice_session_start(a.s), 0);
	assert_int_equal(ice_session_start(b.s), 0);
	assert_true(run_until(&a, &b, both_connected, WAIT_MS));
	for (struct peer *p = &a; p; p = p == &a ? &b : NULL) {
		printf("# %s over TURN/%s: %s %s:%u -> %s %s:%u\n", p->name, transport,
		       ice_candidate_type_name(p->pair.local.type), p->pair.local.address,
		       p->pair.local.port, ice_candidate_type_name(p->pair.remote.type),
		       p->pair.remote.address, p->pair.remote.port);
		/* Only relay candidates were signaled: every path goes through coturn. */
		assert_true(p->pair.local.type == ICE_CANDIDATE_RELAY ||
			    p->pair.remote.type == ICE_CANDIDATE_RELAY ||
			    p->pair.remote.type == ICE_CANDIDATE_PRFLX);
		if (p->pair.local.type == ICE_CANDIDATE_RELAY)
			assert_int_equal(p->pair.fd, -1);
	}
	assert_true(a.pair.local.type == ICE_CANDIDATE_RELAY ||
		    b.pair.local.type == ICE_CANDIDATE_RELAY);
	exchange_data(&a, &b);
	/* Deallocation: both report closed once coturn answered the zero-lifetime refresh. */
	assert_int_equal(ice_session_close(a.s), 0);
	assert_int_equal(ice_session_close(b.s), 0);
	assert_int_equal(ice_session_send(a.s, "x", 1), -ESHUTDOWN);
	t0 = g_get_monotonic_time();
	assert_true(run_until(&a, &b, both_closed, WAIT_MS));
	printf("# closed (allocations released) in %lld ms\n",
	       (long long)(g_get_monotonic_time() - t0) / 1000);
	assert_true(coturn_releases() >= 2);
	peer_fini(&a);
	peer_fini(&b);
	drain(50);
	stop_coturn();
}

static void test_coturn_relay_udp(void **state)
{
	relay_only("udp");
}

static void test_coturn_relay_tcp(void **state)
{
	relay_only("tcp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_parse),
		cmocka_unit_test(test_rest_credentials),
		cmocka_unit_test(test_candidate_conversion),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_connect_udp_credentials_first),
		cmocka_unit_test(test_connect_udp_candidates_first),
		cmocka_unit_test(test_connect_tcp_only),
		cmocka_unit_test(test_tcp_later),
		cmocka_unit_test(test_restart_keeps_old_pair),
		cmocka_unit_test(test_unanswered_fails),
		cmocka_unit_test(test_coturn_relay_udp),
		cmocka_unit_test(test_coturn_relay_tcp),
	};
	GSource *t;
	int r;

	signal(SIGPIPE, SIG_IGN);
	if (getenv("WICE_TEST_DEBUG"))
		log_max_level = LOG_LVL_DEBUG;
	ctx = g_main_context_new();
	/* Wakes the blocking iterations of run_until() so deadlines are checked. */
	t = g_timeout_source_new(5);
	g_source_set_callback(t, tick, NULL, NULL);
	g_source_attach(t, ctx);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	g_source_destroy(t);
	g_source_unref(t);
	stop_coturn();
	g_main_context_unref(ctx);
	return r;
}
