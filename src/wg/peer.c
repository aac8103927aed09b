/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "wg/crypto.h"
#include "wg/device.h"
#include "wg/peer.h"

bool endpoint_equal(const struct wg_endpoint *a, const struct wg_endpoint *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_port == b->in4.sin_port &&
		       a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr &&
		       a->src4.s_addr == b->src4.s_addr;
	if (a->sa.sa_family == AF_INET6)
		return a->in6.sin6_port == b->in6.sin6_port &&
		       !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) &&
		       a->in6.sin6_scope_id == b->in6.sin6_scope_id &&
		       !memcmp(&a->src6, &b->src6, 16) && a->src_ifindex == b->src_ifindex;
	return true;
}

bool endpoint_has_src(const struct wg_endpoint *e)
{
	if (e->sa.sa_family == AF_INET)
		return e->src4.s_addr != 0;
	return e->sa.sa_family == AF_INET6 && !IN6_IS_ADDR_UNSPECIFIED(&e->src6);
}

static unsigned int peer_bucket(const struct wg_device *dev, const uint8_t key[static WG_KEY_LEN])
{
	uint64_t h;

	/* Public keys are uniformly random, but an initiator chooses which one it claims, so
	 * mix in a per-device secret seed before picking the bucket. */
	memcpy(&h, key, sizeof(h));
	h ^= dev->peer_hash_seed;
	h *= 0x9e3779b97f4a7c15ULL;
	return (unsigned int)(h >> 52) % WG_PEER_HASH_BUCKETS;
}

struct wg_peer *peer_lookup(struct wg_device *dev, const uint8_t public_key[static WG_KEY_LEN])
{
	for (struct wg_peer *p = dev->peer_hash[peer_bucket(dev, public_key)]; p; p = p->hash_next)
		if (wgcrypto_equal(p->public_key, public_key, WG_KEY_LEN))
			return p;
	return NULL;
}

int peer_create(struct wg_device *dev, const uint8_t public_key[static WG_KEY_LEN],
		struct wg_peer **ret_peer)
{
	struct wg_peer *peer;
	unsigned int b;

	if (dev->n_peers >= WG_MAX_PEERS_PER_DEVICE)
		return -ENOSPC;
	peer = calloc(1, sizeof(*peer));
	if (!peer)
		return -ENOMEM;
	peer->dev = dev;
	memcpy(peer->public_key, public_key, WG_KEY_LEN);
	memcpy(peer->handshake.remote_static, public_key, WG_KEY_LEN);
	noise_handshake_precompute(&peer->handshake, &dev->identity);
	cookie_maker_init(&peer->cookie, public_key);
	pthread_mutex_init(&peer->endpoint_lock, NULL);
	pthread_mutex_init(&peer->staged_lock, NULL);
	peer->endpoint.sa.sa_family = AF_UNSPEC;

	b = peer_bucket(dev, public_key);
	peer->hash_next = dev->peer_hash[b];
	dev->peer_hash[b] = peer;
	peer->prev = dev->peers_tail;
	if (dev->peers_tail)
		dev->peers_tail->next = peer;
	else
		dev->peers_head = peer;
	dev->peers_tail = peer;
	dev->n_peers++;
	*ret_peer = peer;
	return 0;
}

void peer_remove(struct wg_peer *peer)
{
	struct wg_device *dev = peer->dev;
	struct wg_peer **pp;

	for (pp = &dev->peer_hash[peer_bucket(dev, peer->public_key)]; *pp; pp = &(*pp)->hash_next)
		if (*pp == peer) {
			*pp = peer->hash_next;
			break;
		}
	if (peer->prev)
		peer->prev->next = peer->next;
	else
		dev->peers_head = peer->next;
	if (peer->next)
		peer->next->prev = peer->prev;
	else
		dev->peers_tail = peer->prev;
	dev->n_peers--;

	allowedips_remove_by_value(&dev->allowedips, peer);
	noise_keypairs_clear(dev, &peer->keypairs);
	noise_handshake_clear(dev, &peer->handshake);
	peer_purge_staged(peer);
	pthread_mutex_destroy(&peer->endpoint_lock);
	pthread_mutex_destroy(&peer->staged_lock);
	wgcrypto_wipe(peer, sizeof(*peer));
	free(peer);
}

void peer_set_endpoint(struct wg_peer *peer, const struct wg_endpoint *ep)
{
	pthread_mutex_lock(&peer->endpoint_lock);
	peer->endpoint = *ep;
	pthread_mutex_unlock(&peer->endpoint_lock);
}

void peer_clear_src(struct wg_peer *peer, const struct wg_endpoint *stale)
{
	pthread_mutex_lock(&peer->endpoint_lock);
	if (endpoint_equal(&peer->endpoint, stale)) {
		memset(&peer->endpoint.src6, 0, sizeof(peer->endpoint.src6));
		peer->endpoint.src_ifindex = 0;
	}
	pthread_mutex_unlock(&peer->endpoint_lock);
}

bool peer_get_endpoint(struct wg_peer *peer, struct wg_endpoint *ep)
{
	pthread_mutex_lock(&peer->endpoint_lock);
	*ep = peer->endpoint;
	pthread_mutex_unlock(&peer->endpoint_lock);
	return ep->sa.sa_family != AF_UNSPEC;
}

void peer_stage_packet(struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return;
	if (len)
		memcpy(copy, pkt, len);
	pthread_mutex_lock(&peer->staged_lock);
	if (peer->n_staged == WG_MAX_STAGED_PACKETS) {
		/* Oldest out, as the kernel driver does. */
		free(peer->staged[0]);
		memmove(peer->staged, peer->staged + 1,
			(WG_MAX_STAGED_PACKETS - 1) * sizeof(peer->staged[0]));
		memmove(peer->staged_len, peer->staged_len + 1,
			(WG_MAX_STAGED_PACKETS - 1) * sizeof(peer->staged_len[0]));
		peer->n_staged--;
	}
	peer->staged[peer->n_staged] = copy;
	peer->staged_len[peer->n_staged] = (uint16_t)len;
	peer->n_staged++;
	pthread_mutex_unlock(&peer->staged_lock);
}

void peer_purge_staged(struct wg_peer *peer)
{
	pthread_mutex_lock(&peer->staged_lock);
	for (unsigned int i = 0; i < peer->n_staged; i++) {
		wgcrypto_wipe(peer->staged[i], peer->staged_len[i]);
		free(peer->staged[i]);
	}
	peer->n_staged = 0;
	pthread_mutex_unlock(&peer->staged_lock);
}

void peer_request(struct wg_peer *peer, unsigned int req)
{
	unsigned int old = atomic_fetch_or(&peer->requests, req);

	if ((old & req) != req)
		device_kick_ctrl(peer->dev);
}
