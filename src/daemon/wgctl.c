/* SPDX-License-Identifier: MIT */
/* wgctl dispatch: choosing a backend, merged listings, and the device's memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "daemon/wgctl.h"
#include "daemon/wgctl_internal.h"

void wgctl_wipe(void *p, size_t n)
{
	if (p && n)
		sodium_memzero(p, n);
}

const char *wgctl_uapi_dir(void)
{
	const char *dir = getenv(WGCTL_UAPI_DIR_ENV);

	return dir && *dir ? dir : WGCTL_UAPI_DIR_DEFAULT;
}

/* The kernel's dev_valid_name(): it also keeps "NAME.sock" from leaving the directory. */
bool wgctl_ifname_valid(const char *ifname)
{
	size_t len;

	if (!ifname)
		return false;
	len = strnlen(ifname, IFNAMSIZ);
	if (len == 0 || len >= IFNAMSIZ || !strcmp(ifname, ".") || !strcmp(ifname, ".."))
		return false;
	for (const char *c = ifname; *c; c++) {
		if (*c == '/' || *c == ':' || *c == ' ' || (*c >= '\t' && *c <= '\r'))
			return false;
	}
	return true;
}

const struct wgctl_ops *wgctl_for(const char *ifname)
{
	return wgctl_uapi_present(ifname) ? &wgctl_uapi : &wgctl_kernel;
}

/* ---- name lists ---- */

int wgctl_names_add(struct wgctl_names *names, const char *name)
{
	char *dup;

	if (names->n >= WGCTL_MAX_INTERFACES)
		return -E2BIG;
	if (names->n == names->cap) {
		size_t cap = names->cap ? 2 * names->cap : 8;
		char **v = reallocarray(names->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		names->v = v;
		names->cap = cap;
	}
	dup = strdup(name);
	if (!dup)
		return -ENOMEM;
	names->v[names->n++] = dup;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void wgctl_names_finish(struct wgctl_names *names, char ***ret_names, size_t *ret_n)
{
	size_t out = 0;

	if (names->n)
		qsort(names->v, names->n, sizeof(*names->v), cmp_names);
	for (size_t i = 0; i < names->n; i++) {
		if (out && !strcmp(names->v[out - 1], names->v[i]))
			free(names->v[i]);
		else
			names->v[out++] = names->v[i];
	}
	*ret_names = names->v;
	*ret_n = out;
	*names = (struct wgctl_names){0};
}

void wgctl_names_clear(struct wgctl_names *names)
{
	wgctl_names_free(names->v, names->n);
	*names = (struct wgctl_names){0};
}

char **wgctl_names_free(char **names, size_t n)
{
	if (!names)
		return NULL;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return NULL;
}

static int list_into(const struct wgctl_ops *ops, struct wgctl_names *all)
{
	char **names;
	size_t n;
	int r;

	r = ops->list(&names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++)
		r = wgctl_names_add(all, names[i]);
	wgctl_names_free(names, n);
	return r;
}

int wgctl_list_all(char ***ret_names, size_t *ret_n)
{
	struct wgctl_names all = {0};
	int r;

	r = list_into(&wgctl_kernel, &all);
	if (r == 0)
		r = list_into(&wgctl_uapi, &all);
	if (r < 0) {
		wgctl_names_clear(&all);
		return r;
	}
	wgctl_names_finish(&all, ret_names, ret_n);
	return 0;
}

/* ---- devices ---- */

struct wgctl_device *wgctl_device_new(void)
{
	return calloc(1, sizeof(struct wgctl_device));
}

/*
 * Grows an array that may hold key material: the old block is wiped before it is freed, which
 * realloc() would not do.
 */
static int grow_wiped(void **arr, size_t n, size_t *cap, size_t elem)
{
	size_t new_cap = *cap ? 2 * *cap : 4;
	void *p;

	if (n < *cap)
		return 0;
	p = calloc(new_cap, elem);
	if (!p)
		return -ENOMEM;
	if (*arr) {
		memcpy(p, *arr, n * elem);
		wgctl_wipe(*arr, n * elem);
		free(*arr);
	}
	*arr = p;
	*cap = new_cap;
	return 0;
}

/* Capacities are not stored: arrays grow at powers of two, so the capacity follows from n. */
static size_t cap_of(size_t n)
{
	size_t cap = 4;

	if (n == 0)
		return 0;
	while (cap < n)
		cap *= 2;
	return cap;
}

int wgctl_device_add_peer(struct wgctl_device *dev, const uint8_t pub[static WGCTL_KEY_LEN],
			  struct wgctl_peer **ret)
{
	size_t cap = cap_of(dev->n_peers);
	struct wgctl_peer *peer;
	int r;

	if (dev->n_peers >= WGCTL_MAX_PEERS)
		return -E2BIG;
	r = grow_wiped((void **)&dev->peers, dev->n_peers, &cap, sizeof(*dev->peers));
	if (r < 0)
		return r;
	peer = &dev->peers[dev->n_peers++];
	memset(peer, 0, sizeof(*peer));
	memcpy(peer->public_key, pub, WGCTL_KEY_LEN);
	peer->endpoint.ss_family = AF_UNSPEC;
	*ret = peer;
	return 0;
}

int wgctl_peer_add_allowedip(struct wgctl_peer *peer, const struct wgctl_allowedip *aip)
{
	size_t cap = cap_of(peer->n_allowed_ips);
	int r;

	if ((aip->family == AF_INET && aip->cidr > 32) ||
	    (aip->family == AF_INET6 && aip->cidr > 128) ||
	    (aip->family != AF_INET && aip->family != AF_INET6))
		return -EBADMSG;
	if (peer->n_allowed_ips >= WGCTL_MAX_ALLOWED_IPS)
		return -E2BIG;
	r = grow_wiped((void **)&peer->allowed_ips, peer->n_allowed_ips, &cap,
		       sizeof(*peer->allowed_ips));
	if (r < 0)
		return r;
	peer->allowed_ips[peer->n_allowed_ips++] = *aip;
	return 0;
}

struct wgctl_device *wgctl_device_free(struct wgctl_device *dev)
{
	if (!dev)
		return NULL;
	for (size_t i = 0; i < dev->n_peers; i++)
		free(dev->peers[i].allowed_ips);
	wgctl_wipe(dev->peers, dev->n_peers * sizeof(*dev->peers));
	free(dev->peers);
	wgctl_wipe(dev, sizeof(*dev));
	free(dev);
	return NULL;
}

struct wgctl_peer *wgctl_device_find_peer(struct wgctl_device *dev,
					  const uint8_t pub[static WGCTL_KEY_LEN])
{
	for (size_t i = 0; i < dev->n_peers; i++) {
		if (!memcmp(dev->peers[i].public_key, pub, WGCTL_KEY_LEN))
			return &dev->peers[i];
	}
	return NULL;
}

int wgctl_endpoint_check(const struct sockaddr *ep, socklen_t len)
{
	if (!ep || len < sizeof(struct sockaddr_in))
		return -EINVAL;
	if (ep->sa_family == AF_INET)
		return len == sizeof(struct sockaddr_in) ? 0 : -EINVAL;
	if (ep->sa_family == AF_INET6)
		return len == sizeof(struct sockaddr_in6) ? 0 : -EINVAL;
	return -EAFNOSUPPORT;
}
