/* SPDX-License-Identifier: MIT */
/*
 * Where WireGuard sends a peer's packets: the daemon's proxy on 127.0.0.1 (relayed and TCP
 * pairs, and before any pair), or the peer itself with nftables rewriting ports between
 * WireGuard's socket and the ICE socket (a direct UDP pair: no copy).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include "daemon/peer_link_internal.h"
#include "daemon/wgctl.h"
#include "util/log.h"

int peer_path_proxy(struct peer_link *l)
{
	const struct sockaddr_in *ep = proxy_endpoint(l->proxy);
	int r;

	r = wgctl_for(l->ifname)->set_endpoint(l->ifname, l->peer_key, (const struct sockaddr *)ep,
					       sizeof(*ep));
	if (r < 0) {
		log_warn("%s: peer %s: setting the endpoint to the proxy failed: %s", l->ifname,
			 l->name, strerror(-r));
		return r;
	}
	l->endpoint_set = true;
	log_info("%s: peer %s: endpoint 127.0.0.1:%u (proxy)", l->ifname, l->name,
		 ntohs(ep->sin_port));
	return 0;
}

bool peer_path_direct_pair(const struct ice_pair *p)
{
	return p->fd >= 0 && p->local.transport == ICE_TRANSPORT_UDP &&
	       p->local.type != ICE_CANDIDATE_RELAY;
}

static bool parse_addr(const char *a, unsigned int port, struct sockaddr_storage *ret)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ret;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ret;

	memset(ret, 0, sizeof(*ret));
	if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return true;
	}
	if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return true;
	}
	return false;
}

static socklen_t ss_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static bool ss_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
	return false;
}

void peer_path_rules_clear(struct peer_link *l)
{
	int r;

	if (!l->rules)
		return;
	r = nft_direct_clear(l->nft_id);
	if (r < 0)
		log_warn("%s: peer %s: removing the direct path's nftables rules failed: %s",
			 l->ifname, l->name, strerror(-r));
	l->rules = false;
}

void peer_path_off(struct peer_link *l)
{
	if (l->direct) {
		l->direct = false;
		peer_path_proxy(l);
	}
	peer_path_rules_clear(l);
}

void peer_path_update(struct peer_link *l)
{
	struct sockaddr_storage local, remote;
	socklen_t len = sizeof(local);
	char a[INET6_ADDRSTRLEN] = "";
	int r;

	if (!l->has_pair || !peer_path_direct_pair(&l->pair) || !l->wg_port ||
	    getsockname(l->pair.fd, (struct sockaddr *)&local, &len) < 0 ||
	    !parse_addr(l->pair.remote.address, l->pair.remote.port, &remote) ||
	    local.ss_family != remote.ss_family) {
		peer_path_off(l);
		return;
	}
	r = nft_direct_set(l->nft_id, &local, &remote, l->wg_port);
	if (r < 0) {
		log_warn("%s: peer %s: direct path's nftables rules failed (%s): using the proxy",
			 l->ifname, l->name, strerror(-r));
		peer_path_off(l);
		return;
	}
	l->rules = true;
	if (l->direct && ss_equal(&l->direct_ep, &remote))
		return;
	r = wgctl_for(l->ifname)->set_endpoint(l->ifname, l->peer_key,
					       (const struct sockaddr *)&remote, ss_len(&remote));
	if (r < 0) {
		log_warn("%s: peer %s: setting the endpoint to the peer failed: %s: proxy",
			 l->ifname, l->name, strerror(-r));
		peer_path_off(l);
		return;
	}
	l->direct = true;
	l->direct_ep = remote;
	if (remote.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&remote)->sin6_addr, a, sizeof(a));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&remote)->sin_addr, a, sizeof(a));
	log_info("%s: peer %s: endpoint %s%s%s:%u (direct, nftables: ICE port %u <-> WireGuard "
		 "port %u)",
		 l->ifname, l->name, remote.ss_family == AF_INET6 ? "[" : "", a,
		 remote.ss_family == AF_INET6 ? "]" : "", l->pair.remote.port,
		 ntohs(local.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&local)->sin6_port
						   : ((struct sockaddr_in *)&local)->sin_port),
		 l->wg_port);
}

bool peer_link_owns_endpoint(const struct peer_link *l, const struct sockaddr_storage *ep)
{
	const struct sockaddr_in *mine = proxy_endpoint(l->proxy);
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ep;

	if (l->direct && ss_equal(ep, &l->direct_ep))
		return true;
	return ep->ss_family == AF_INET && sin->sin_port == mine->sin_port &&
	       sin->sin_addr.s_addr == mine->sin_addr.s_addr;
}
