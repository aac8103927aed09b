/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib-unix.h>
#include <ifaddrs.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "daemon/own_iface.h"
#include "daemon/nft.h"
#include "daemon/peer_link.h"
#include "daemon/watcher.h"
#include "daemon/wgctl.h"
#include "ice/resolver.h"
#include "ice/servers.h"
#include "ice/session.h"
#include "ice/tls_relay.h"
#include "signal/backend.h"
#include "signal/envelope.h"
#include "util/key.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/sandbox.h"

struct daemon {
	GMainContext *ctx;
	GMainLoop *loop;
	const struct config *cfg;
	struct ice_server servers[ICE_SERVERS_MAX]; /* turns: ones rewritten to their relay */
	struct tls_relay *relays[ICE_SERVERS_MAX];  /* one per turns: server, else NULL */
	size_t n_servers;
	struct ice_resolver *resolver; /* names in servers: their addrs */
	struct watcher *watcher;
	struct control_server *control;
	GHashTable *ifaces;	  /* name -> struct iface */
	char **addrs;		  /* the local addresses the links were last given */
	struct own_iface **owned; /* the named interfaces this daemon created, cfg->names.n */
	bool stopping;
};

struct iface {
	struct daemon *d;
	char name[IFNAMSIZ];
	enum watcher_kind kind;
	bool has_key;
	struct envelope_key key;
	uint16_t port;
	struct signal_mux *mux;
	unsigned int sig_backends;	     /* opened in mux */
	gint sig_connected, sig_disconnects; /* atomic: backend threads change them */
	struct envelope_replay *replay;
	GHashTable *links; /* base64 public key -> struct peer_link */
	/* What an earlier daemon's chains named (nft_sweep), until the first look at the peers. */
	struct nft_stale *stale;
	size_t n_stale;
};

/* An envelope on its way from a backend thread to the loop. */
struct inbound {
	struct daemon *d;
	char ifname[IFNAMSIZ];
	size_t len;
	uint8_t buf[];
};

/* ---- signaling ---- */

static int iface_send(void *data, const uint8_t peer[static WG_KEY_LEN],
		      Wice__Signaling__Message *msg)
{
	struct iface *it = data;
	uint8_t *buf;
	size_t len;
	int r;

	if (!it->mux)
		return -ENOTCONN;
	msg->timestamp_ms = 0; /* sealing stamps it now */
	r = envelope_seal(&it->key, peer, msg, &buf, &len);
	if (r < 0)
		return r;
	r = signal_mux_publish(it->mux, buf, len);
	free(buf);
	return r;
}

static void iface_deliver(struct iface *it, const uint8_t *buf, size_t len)
{
	uint8_t sender[WG_KEY_LEN], recipient[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN + 1];
	Wice__Signaling__Message *msg;
	struct peer_link *l;
	int r;

	if (envelope_peek(buf, len, sender, recipient) < 0 || !it->has_key ||
	    !key_equal(recipient, it->key.public_key))
		return;
	key_to_base64(b64, sender);
	l = g_hash_table_lookup(it->links, b64);
	if (!l) {
		log_debug("%s: envelope from %s, not a managed peer: dropped", it->name, b64);
		return;
	}
	r = envelope_open(&it->key, it->replay, envelope_now_ms(), buf, len, sender, &msg);
	if (r < 0) {
		log_debug("%s: envelope from %s refused: %s", it->name, b64, strerror(-r));
		return;
	}
	peer_link_receive(l, msg);
	wice__signaling__message__free_unpacked(msg, NULL);
}

static gboolean inbound_run(gpointer data)
{
	struct inbound *in = data;
	struct iface *it = g_hash_table_lookup(in->d->ifaces, in->ifname);

	if (it && !in->d->stopping)
		iface_deliver(it, in->buf, in->len);
	return G_SOURCE_REMOVE;
}

/* Backend thread: copy and hand to the loop, nothing else. */
static void on_envelope(void *ctx, const uint8_t *envelope, size_t len)
{
	struct iface *it = ctx;
	struct inbound *in;

	if (len > ENVELOPE_MAX_SIZE)
		return;
	in = malloc(sizeof(*in) + len);
	if (!in)
		return;
	in->d = it->d;
	memcpy(in->ifname, it->name, sizeof(in->ifname));
	in->len = len;
	memcpy(in->buf, envelope, len);
	g_main_context_invoke_full(it->d->ctx, G_PRIORITY_DEFAULT, inbound_run, in, free);
}

static void on_backend_state(void *ctx, struct signal_backend *b, bool connected)
{
	struct iface *it = ctx;

	/* Backend thread: the name and URL are immutable while the mux lives. */
	log_info("%s: signaling %s %s", it->name, b->url, connected ? "connected" : "disconnected");
	/* Backends report changes only: connected counts up and down in pairs. */
	if (connected) {
		g_atomic_int_inc(&it->sig_connected);
	} else {
		g_atomic_int_add(&it->sig_connected, -1);
		g_atomic_int_inc(&it->sig_disconnects);
	}
}

static int iface_mux_start(struct iface *it)
{
	const struct config *cfg = it->d->cfg;
	struct signal_backend_config bc = {
		.key = &it->key,
		.on_receive = on_envelope,
		.on_state = on_backend_state,
		.ctx = it,
	};

	it->mux = signal_mux_new(&bc);
	if (!it->mux)
		return -ENOMEM;
	it->sig_backends = 0;
	for (size_t i = 0; i < cfg->backends.n; i++) {
		int r = signal_mux_add(it->mux, cfg->backends.v[i]);

		if (r < 0)
			log_warn("%s: backend %s: %s, ignoring", it->name, cfg->backends.v[i],
				 strerror(-r));
		else
			it->sig_backends++;
	}
	return 0;
}

static int iface_open_mux(struct iface *it, const uint8_t priv[static WG_KEY_LEN],
			  const uint8_t pub[static WG_KEY_LEN])
{
	memcpy(it->key.private_key, priv, WG_KEY_LEN);
	memcpy(it->key.public_key, pub, WG_KEY_LEN);
	it->has_key = true;
	return iface_mux_start(it);
}

static void iface_close_mux(struct iface *it)
{
	g_hash_table_remove_all(it->links);
	it->mux = signal_mux_free(it->mux);
	g_atomic_int_set(&it->sig_connected, 0);
	it->sig_backends = 0;
	sodium_memzero(&it->key, sizeof(it->key));
	it->has_key = false;
}

/* ---- interfaces and peers ---- */

static bool name_in(char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/*
 * Host candidates only on real links: never loopback, link-local, or a WireGuard interface,
 * ours or not (the kernel's and every UAPI socket's, whatever the filter): a pair through
 * another tunnel would carry WireGuard inside WireGuard.
 */
static char **local_addresses(struct daemon *d)
{
	GPtrArray *a = g_ptr_array_new();
	struct ifaddrs *ifa, *i;
	char **wg = NULL;
	size_t n_wg = 0;

	if (wgctl_list_all(&wg, &n_wg) < 0)
		log_debug("listing WireGuard interfaces failed: only managed ones are left out");
	if (getifaddrs(&ifa) == 0) {
		for (i = ifa; i; i = i->ifa_next) {
			char host[NI_MAXHOST];
			int fam = i->ifa_addr ? i->ifa_addr->sa_family : AF_UNSPEC;

			if ((fam != AF_INET && fam != AF_INET6) || (i->ifa_flags & IFF_LOOPBACK) ||
			    !(i->ifa_flags & IFF_UP) ||
			    g_hash_table_contains(d->ifaces, i->ifa_name) ||
			    watcher_has(d->watcher, i->ifa_name, NULL) ||
			    name_in(wg, n_wg, i->ifa_name))
				continue;
			if (fam == AF_INET6 &&
			    IN6_IS_ADDR_LINKLOCAL(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr))
				continue;
			if (getnameinfo(i->ifa_addr,
					fam == AF_INET ? sizeof(struct sockaddr_in)
						       : sizeof(struct sockaddr_in6),
					host, sizeof(host), NULL, 0, NI_NUMERICHOST) == 0)
				g_ptr_array_add(a, g_strdup(host));
		}
		freeifaddrs(ifa);
	}
	wgctl_names_free(wg, n_wg);
	g_ptr_array_add(a, NULL);
	return (char **)g_ptr_array_free(a, FALSE);
}

/* Whether some socket is bound to the loopback UDP address sin: we try to bind it. */
static bool loopback_in_use(const struct sockaddr_in *sin)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool used;

	if (fd < 0)
		return true; /* cannot tell: someone's */
	used = bind(fd, (const struct sockaddr *)sin, sizeof(*sin)) < 0;
	close(fd);
	return used;
}

/*
 * Whether a peer the daemon does not manage yet is its to manage (docs/daemon.md, "Which
 * peers"): no endpoint; or an endpoint an earlier daemon set, which it left behind when
 * killed: a loopback one nothing listens on (its proxy, gone with it), or the peer's address
 * its leftover nftables chains for this peer name (its direct path). Any other endpoint was
 * set by hand.
 */
static bool peer_unclaimed(const struct iface *it, const struct wgctl_peer *p, const char *b64)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&p->endpoint;
	char id[NFT_ID_MAX];

	if (p->endpoint.ss_family == AF_UNSPEC)
		return true;
	if (p->endpoint.ss_family == AF_INET && ntohl(sin->sin_addr.s_addr) >> 24 == 127) {
		if (loopback_in_use(sin))
			return false;
		log_info("%s: peer %s: nothing listens on its endpoint 127.0.0.1:%u (an earlier "
			 "daemon's proxy): managing it",
			 it->name, b64, ntohs(sin->sin_port));
		return true;
	}
	nft_peer_id(id, it->name, p->public_key);
	if (!nft_stale_find(it->stale, it->n_stale, id, &p->endpoint))
		return false;
	log_info("%s: peer %s: its endpoint is an earlier daemon's direct path (its chains were "
		 "left): managing it",
		 it->name, b64);
	return true;
}

static void iface_add_link(struct iface *it, const struct wgctl_peer *p, const char *b64)
{
	struct daemon *d = it->d;
	char **addrs = local_addresses(d);
	struct peer_link_config pc = {
		.ctx = d->ctx,
		.ifname = it->name,
		.wg_port = it->port,
		.servers = d->servers,
		.n_servers = d->n_servers,
		.local_addresses = (const char *const *)addrs,
		.n_local_addresses = g_strv_length(addrs),
		.send = iface_send,
		.data = it,
	};
	struct peer_link *l;
	int r;

	g_strfreev(d->addrs);
	d->addrs = g_strdupv(addrs);
	memcpy(pc.local_key, it->key.public_key, WG_KEY_LEN);
	memcpy(pc.peer_key, p->public_key, WG_KEY_LEN);
	if (!pc.n_local_addresses)
		pc.local_addresses = NULL;
	r = peer_link_new(&pc, &l);
	g_strfreev(addrs);
	if (r < 0) {
		log_warn("%s: peer %s: no ICE session: %s", it->name, b64, strerror(-r));
		return;
	}
	g_hash_table_insert(it->links, g_strdup(b64), l);
}

static void iface_sync(struct iface *it, const struct wgctl_device *dev)
{
	GHashTableIter iter;
	gpointer k, v;

	if (!dev->has_private_key) {
		if (it->has_key)
			log_info("%s: private key removed: peers released", it->name);
		iface_close_mux(it);
		return;
	}
	if (it->has_key && !key_equal(it->key.public_key, dev->public_key)) {
		log_info("%s: private key changed: starting over", it->name);
		iface_close_mux(it);
	}
	if (!it->has_key && iface_open_mux(it, dev->private_key, dev->public_key) < 0)
		return;
	if (it->port != dev->listen_port) {
		it->port = dev->listen_port;
		g_hash_table_iter_init(&iter, it->links);
		while (g_hash_table_iter_next(&iter, NULL, &v))
			peer_link_set_wg_port(v, it->port);
	}

	/* Peers gone, or whose endpoint someone set by hand since. */
	g_hash_table_iter_init(&iter, it->links);
	while (g_hash_table_iter_next(&iter, &k, &v)) {
		uint8_t pub[WG_KEY_LEN];
		struct wgctl_peer *p;

		key_from_base64(pub, k);
		p = wgctl_device_find_peer((struct wgctl_device *)dev, pub);
		if (!p) {
			log_info("%s: peer %s: removed", it->name, (char *)k);
			g_hash_table_iter_remove(&iter);
		} else if (p->endpoint.ss_family != AF_UNSPEC &&
			   !peer_link_owns_endpoint(v, &p->endpoint)) {
			log_info("%s: peer %s: endpoint set by hand, leaving it alone", it->name,
				 (char *)k);
			g_hash_table_iter_remove(&iter);
		}
	}
	/* New peers without a hand-set endpoint. */
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgctl_peer *p = &dev->peers[i];
		char b64[WG_KEY_B64_LEN + 1];

		key_to_base64(b64, p->public_key);
		if (g_hash_table_contains(it->links, b64))
			continue;
		if (!peer_unclaimed(it, p, b64))
			continue;
		iface_add_link(it, p, b64);
	}
	/* Only the first look at the peers takes an earlier daemon's direct endpoints over. */
	g_clear_pointer(&it->stale, g_free);
	it->n_stale = 0;
}

static void link_free(gpointer data)
{
	peer_link_free(data);
}

static void iface_free(gpointer data)
{
	struct iface *it = data;

	iface_close_mux(it);
	g_hash_table_destroy(it->links);
	if (it->replay)
		envelope_replay_free(it->replay);
	g_free(it->stale);
	free(it);
}

static void on_interface_added(struct watcher *w, const char *name, enum watcher_kind kind,
			       void *userdata)
{
	struct daemon *d = userdata;
	struct iface *it = calloc(1, sizeof(*it));

	if (!it)
		return;
	it->d = d;
	g_strlcpy(it->name, name, sizeof(it->name));
	it->kind = kind;
	it->replay = envelope_replay_new();
	it->links = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, link_free);
	g_hash_table_replace(d->ifaces, it->name, it);
	/* What later address events are compared with, before any link is made. */
	if (!d->addrs)
		d->addrs = local_addresses(d);
	log_info("%s: managed (%s)", name, kind == WATCHER_KIND_KERNEL ? "kernel" : "uapi");
	/* A daemon killed before (SIGKILL) left its chains: ours now (logged if it fails). */
	if (nft_sweep(name, &it->stale, &it->n_stale) < 0)
		it->n_stale = 0;
}

static void on_interface_removed(struct watcher *w, const char *name, void *userdata)
{
	struct daemon *d = userdata;

	if (g_hash_table_remove(d->ifaces, name))
		log_info("%s: gone", name);
}

static void on_interface_changed(struct watcher *w, const char *name, enum watcher_kind kind,
				 const struct wgctl_device *dev, void *userdata)
{
	struct daemon *d = userdata;
	struct iface *it = g_hash_table_lookup(d->ifaces, name);

	if (it && !d->stopping)
		iface_sync(it, dev);
}

/* WireGuard's counters, for each link's outage and silence detection. */
static void on_interface_read(struct watcher *w, const char *name, const struct wgctl_device *dev,
			      void *userdata)
{
	struct daemon *d = userdata;
	struct iface *it = g_hash_table_lookup(d->ifaces, name);
	char b64[WG_KEY_B64_LEN + 1];

	if (!it || d->stopping)
		return;
	for (size_t i = 0; i < dev->n_peers; i++) {
		struct peer_link *l;

		key_to_base64(b64, dev->peers[i].public_key);
		l = g_hash_table_lookup(it->links, b64);
		if (l)
			peer_link_traffic(l, dev->peers[i].rx_bytes, dev->peers[i].tx_bytes);
	}
}

static bool addrs_same(char **a, char **b)
{
	if (!a || !b || g_strv_length(a) != g_strv_length(b))
		return false;
	for (; *a; a++)
		if (!g_strv_contains((const char *const *)b, *a))
			return false;
	return true;
}

/*
 * The set of usable addresses changed (a WireGuard interface's own address, or link-local
 * noise, leaves it as it was): every link gets a new session on the new set, and every
 * signaling connection is made again, since its TCP connection may be bound to an address
 * that is gone (it would take the backend's ping timeout to notice).
 */
static void on_addresses_changed(struct watcher *w, void *userdata)
{
	struct daemon *d = userdata;
	char **addrs = local_addresses(d);
	GHashTableIter ii, pi;
	gpointer v, l;

	if (d->stopping || addrs_same(addrs, d->addrs)) {
		g_strfreev(addrs);
		return;
	}
	log_info("local addresses changed: new ICE sessions, signaling connections again");
	g_strfreev(d->addrs);
	d->addrs = addrs;
	g_hash_table_iter_init(&ii, d->ifaces);
	while (g_hash_table_iter_next(&ii, NULL, &v)) {
		struct iface *it = v;

		if (it->mux) {
			it->mux = signal_mux_free(it->mux);
			/* Its connections are dropped on purpose: counted as lost. */
			g_atomic_int_add(&it->sig_disconnects,
					 g_atomic_int_get(&it->sig_connected));
			g_atomic_int_set(&it->sig_connected, 0);
			if (iface_mux_start(it) < 0)
				log_warn("%s: signaling: out of memory", it->name);
		}
		g_hash_table_iter_init(&pi, it->links);
		while (g_hash_table_iter_next(&pi, NULL, &l))
			peer_link_set_local_addresses(l, (const char *const *)addrs);
	}
}

/* ---- status ---- */

static void status_peer(struct iface *it, const struct wgctl_peer *p, struct control_peer *cp)
{
	char b64[WG_KEY_B64_LEN + 1];
	struct peer_link *l;

	memcpy(cp->public_key, p->public_key, WG_KEY_LEN);
	key_to_base64(b64, p->public_key);
	l = g_hash_table_lookup(it->links, b64);
	if (l)
		peer_link_status(l, cp);
	else
		g_strlcpy(cp->state, "unmanaged", sizeof(cp->state));
	cp->last_handshake = p->last_handshake.tv_sec;
	cp->rx_bytes = p->rx_bytes;
	cp->tx_bytes = p->tx_bytes;
	cp->endpoint = p->endpoint;
}

static int status_iface(struct iface *it, struct control_status *st)
{
	struct wgctl_device *dev = NULL;
	struct control_interface *ci;
	int r;

	r = control_status_add_interface(st, &ci);
	if (r < 0)
		return r;
	g_strlcpy(ci->name, it->name, sizeof(ci->name));
	g_strlcpy(ci->kind, it->kind == WATCHER_KIND_KERNEL ? "kernel" : "uapi", sizeof(ci->kind));
	ci->has_public_key = it->has_key;
	if (it->has_key)
		memcpy(ci->public_key, it->key.public_key, WG_KEY_LEN);
	ci->listen_port = it->port;
	ci->signaling_backends = it->sig_backends;
	ci->signaling_connected = (uint32_t)MAX(g_atomic_int_get(&it->sig_connected), 0);
	ci->signaling_disconnects = (uint32_t)g_atomic_int_get(&it->sig_disconnects);
	/* Bounded by WGCTL_UAPI_TIMEOUT_MS; counters and handshakes are not in the watcher's read.
	 */
	if (wgctl_for(it->name)->get(it->name, &dev) < 0)
		return 0;
	for (size_t i = 0; i < dev->n_peers && r >= 0; i++) {
		struct control_peer *cp;

		r = control_interface_add_peer(ci, &cp);
		if (r >= 0)
			status_peer(it, &dev->peers[i], cp);
	}
	wgctl_device_free(dev);
	return r < 0 ? r : 0;
}

static int get_status(struct control_status *st, void *userdata)
{
	struct daemon *d = userdata;
	GList *names = g_list_sort(g_hash_table_get_keys(d->ifaces), (GCompareFunc)strcmp);
	int r = 0;

	for (GList *n = names; n && r >= 0; n = n->next)
		r = status_iface(g_hash_table_lookup(d->ifaces, n->data), st);
	g_list_free(names);
	return r;
}

/* ---- run ---- */

static gboolean on_stopped(gpointer data)
{
	g_main_loop_quit(((struct daemon *)data)->loop);
	return G_SOURCE_REMOVE;
}

static gboolean on_signal(gpointer data)
{
	struct daemon *d = data;
	GHashTableIter ii, pi;
	gpointer it, l;

	if (d->stopping)
		return G_SOURCE_CONTINUE;
	log_info("stopping");
	d->stopping = true;
	g_hash_table_iter_init(&ii, d->ifaces);
	while (g_hash_table_iter_next(&ii, NULL, &it)) {
		g_hash_table_iter_init(&pi, ((struct iface *)it)->links);
		while (g_hash_table_iter_next(&pi, NULL, &l))
			peer_link_close(l);
	}
	g_timeout_add(DAEMON_SHUTDOWN_MS, on_stopped, d);
	return G_SOURCE_CONTINUE;
}

/* SIGUSR1: restart every peer's ICE session (new credentials, signaled to the peer). */
static gboolean on_usr1(gpointer data)
{
	struct daemon *d = data;
	GHashTableIter ii, pi;
	gpointer it, l;

	if (d->stopping)
		return G_SOURCE_CONTINUE;
	g_hash_table_iter_init(&ii, d->ifaces);
	while (g_hash_table_iter_next(&ii, NULL, &it)) {
		g_hash_table_iter_init(&pi, ((struct iface *)it)->links);
		while (g_hash_table_iter_next(&pi, NULL, &l))
			peer_link_restart(l, "manual (SIGUSR1)");
	}
	return G_SOURCE_CONTINUE;
}

static int parse_servers(struct daemon *d)
{
	const struct config_list *l = &d->cfg->ice_servers;

	if (l->n > ICE_SERVERS_MAX) {
		log_error("at most %d ICE servers", ICE_SERVERS_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < l->n; i++) {
		int r = ice_server_parse(l->v[i], &d->servers[i]);

		if (r < 0) {
			log_error("--ice-server %s: %s", l->v[i], strerror(-r));
			return r;
		}
	}
	d->n_servers = l->n;
	return 0;
}

/*
 * Every turns: server gets one TLS relay on the daemon's context, shared by all peers, and
 * the ICE sessions see it as turn:...@127.0.0.1:<relay port>?transport=tcp with the same
 * credentials (or REST secret). Trusted CAs: the PEM file in $WICE_TURNS_CA_FILE, else the
 * system store.
 */
static int start_relays(struct daemon *d)
{
	const char *ca = getenv("WICE_TURNS_CA_FILE");

	if (ca && !*ca)
		ca = NULL;
	for (size_t i = 0; i < d->n_servers; i++) {
		struct ice_server *s = &d->servers[i];
		int r;

		if (!s->tls)
			continue;
		r = tls_relay_new(d->ctx, s->host, s->port, ca, NULL, &d->relays[i]);
		if (r < 0) {
			log_error("turns: server %s:%u: TLS relay: %s", s->host, s->port,
				  strerror(-r));
			return r;
		}
		log_info("turns: server %s:%u through local relay 127.0.0.1:%u (CA: %s)", s->host,
			 s->port, tls_relay_port(d->relays[i]), ca ? ca : "system store");
		g_strlcpy(s->host, "127.0.0.1", sizeof(s->host));
		ice_server_set_addrs(s, (const char *const[]){s->host}, 1);
		s->port = tls_relay_port(d->relays[i]);
		s->transport = ICE_SERVER_TCP;
		s->tls = false;
	}
	return 0;
}

/* Interfaces named on the command line are created when missing, and removed at the end. */
static int create_missing(struct daemon *d)
{
	const struct config_list *names = &d->cfg->names;

	d->owned = calloc(names->n ? names->n : 1, sizeof(*d->owned));
	if (!d->owned)
		return -ENOMEM;
	for (size_t i = 0; i < names->n; i++) {
		int r = own_iface_new(d->ctx, names->v[i], &d->owned[i]);

		if (r == -EEXIST)
			continue;
		if (r < 0) {
			log_error("%s: does not exist and cannot be created: %s", names->v[i],
				  strerror(-r));
			return r;
		}
		log_info("%s: created (%s WireGuard): configure it with wg(8)", names->v[i],
			 own_iface_kind(d->owned[i]));
	}
	return 0;
}

static void remove_owned(struct daemon *d)
{
	if (!d->owned)
		return;
	for (size_t i = 0; i < d->cfg->names.n; i++)
		d->owned[i] = own_iface_free(d->owned[i]);
	free(d->owned);
	d->owned = NULL;
}

/*
 * Names in ICE server URLs are looked up (off the loop) before any session starts: one that
 * does not resolve is a configuration error. Then again every DAEMON_RESOLVE_REFRESH_S in the
 * background, so that a new session (a TURN REST renewal) gets current addresses; sessions
 * copy the servers when made, so a live one keeps its own.
 */
static int resolve_servers(struct daemon *d)
{
	int r = ice_resolver_new(d->ctx, d->servers, d->n_servers, &d->resolver);

	if (r < 0)
		return r;
	r = ice_resolver_wait(d->resolver);
	if (r < 0) {
		log_error("--ice-server: a server's name did not resolve (see above): exiting");
		return r;
	}
	ice_resolver_refresh_every(d->resolver, DAEMON_RESOLVE_REFRESH_S);
	return 0;
}

int daemon_run(const struct config *cfg)
{
	struct daemon d = {.cfg = cfg};
	struct watcher_config wc = {
		.names = (const char *const *)cfg->names.v,
		.n_names = cfg->names.n,
		.globs = (const char *const *)cfg->interfaces.v,
		.n_globs = cfg->interfaces.n,
		.uapi_needs_link = true,
		.on_interface_added = on_interface_added,
		.on_interface_removed = on_interface_removed,
		.on_interface_changed = on_interface_changed,
		.on_interface_read = on_interface_read,
		.on_addresses_changed = on_addresses_changed,
		.userdata = &d,
	};
	struct control_server_config cc = {
		.path = cfg->socket,
		.get_status = get_status,
		.userdata = &d,
	};
	int r;

	if (!cfg->backends.n) {
		log_error("no signaling backend: give --backend URL");
		return -EINVAL;
	}
	r = parse_servers(&d);
	if (r < 0)
		return r;
	d.ctx = g_main_context_default();
	d.loop = g_main_loop_new(d.ctx, FALSE);
	d.ifaces = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, iface_free);
	/*
	 * Before anything starts a thread (name lookups, a created interface's WireGuard, the
	 * watcher's reads): capabilities are per thread, and those started earlier would keep
	 * what they had. Nothing below needs more than CAP_NET_ADMIN (privs.c).
	 */
	r = privs_drop((const unsigned int[]){CAP_NET_ADMIN}, 1);
	if (r < 0)
		goto out;
	r = sandbox_apply();
	if (r < 0)
		goto out;
	r = start_relays(&d);
	if (r < 0)
		goto out;
	r = resolve_servers(&d);
	if (r < 0)
		goto out;
	r = create_missing(&d);
	if (r < 0)
		goto out;
	r = control_server_new(d.ctx, &cc, &d.control);
	if (r < 0) {
		log_error("control socket %s: %s",
			  cfg->socket ? cfg->socket : CONTROL_SOCKET_DEFAULT, strerror(-r));
		goto out;
	}
	r = watcher_new(d.ctx, &wc, &d.watcher);
	if (r < 0) {
		log_error("watcher: %s", strerror(-r));
		goto out;
	}
	g_unix_signal_add(SIGTERM, on_signal, &d);
	g_unix_signal_add(SIGINT, on_signal, &d);
	g_unix_signal_add(SIGUSR1, on_usr1, &d);
	signal(SIGPIPE, SIG_IGN);
	log_info("running: %zu backend(s), %zu ICE server(s)", cfg->backends.n, d.n_servers);
	g_main_loop_run(d.loop);
	r = 0;
out:
	d.watcher = watcher_free(d.watcher);
	g_hash_table_destroy(d.ifaces);
	g_strfreev(d.addrs);
	remove_owned(&d);
	d.control = control_server_free(d.control);
	d.resolver = ice_resolver_free(d.resolver);
	for (size_t i = 0; i < d.n_servers; i++)
		d.relays[i] = tls_relay_free(d.relays[i]);
	g_main_loop_unref(d.loop);
	nft_close();
	return r;
}
