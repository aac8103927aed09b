/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <net/if.h>
#include <unistd.h>
#include "util/key.h"
#include "util/log.h"
#include "wg/crypto.h"
#include "wg/device.h"
#include "wg/timers.h"
#include "wg/tun.h"
#include "wg/uapi.h"

/* ---- get ---- */

static void print_endpoint(FILE *out, const struct wg_endpoint *ep)
{
	char a[INET6_ADDRSTRLEN];

	if (ep->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &ep->in4.sin_addr, a, sizeof(a));
		fprintf(out, "endpoint=%s:%u\n", a, ntohs(ep->in4.sin_port));
	} else if (ep->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &ep->in6.sin6_addr, a, sizeof(a));
		if (ep->in6.sin6_scope_id)
			fprintf(out, "endpoint=[%s%%%u]:%u\n", a, ep->in6.sin6_scope_id,
				ntohs(ep->in6.sin6_port));
		else
			fprintf(out, "endpoint=[%s]:%u\n", a, ntohs(ep->in6.sin6_port));
	}
}

static int print_allowed_ip(void *ctx, int family, const uint8_t *addr, uint8_t cidr, void *value)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(family, addr, a, sizeof(a));
	fprintf(ctx, "allowed_ip=%s/%u\n", a, cidr);
	return 0;
}

static void uapi_get(struct wg_device *dev, FILE *out)
{
	char hex[2 * WG_KEY_LEN + 1];

	if (dev->identity.has_identity) {
		key_to_hex(hex, dev->identity.static_private);
		fprintf(out, "private_key=%s\n", hex);
	}
	if (dev->listen_port)
		fprintf(out, "listen_port=%u\n", dev->listen_port);
	if (dev->fwmark)
		fprintf(out, "fwmark=%" PRIu32 "\n", dev->fwmark);
	for (struct wg_peer *p = dev->peers_head; p; p = p->next) {
		uint64_t hs = atomic_load(&p->last_handshake_ns);
		struct wg_endpoint ep;

		key_to_hex(hex, p->public_key);
		fprintf(out, "public_key=%s\n", hex);
		if (!key_is_zero(p->handshake.preshared_key)) {
			key_to_hex(hex, p->handshake.preshared_key);
			fprintf(out, "preshared_key=%s\n", hex);
		}
		fprintf(out, "protocol_version=1\n");
		if (peer_get_endpoint(p, &ep))
			print_endpoint(out, &ep);
		fprintf(out, "last_handshake_time_sec=%" PRIu64 "\n",
			(uint64_t)(hs / NSEC_PER_SEC));
		fprintf(out, "last_handshake_time_nsec=%" PRIu64 "\n",
			(uint64_t)(hs % NSEC_PER_SEC));
		fprintf(out, "tx_bytes=%" PRIu64 "\n", (uint64_t)atomic_load(&p->tx_bytes));
		fprintf(out, "rx_bytes=%" PRIu64 "\n", (uint64_t)atomic_load(&p->rx_bytes));
		fprintf(out, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
		allowedips_walk(&dev->allowedips, p, print_allowed_ip, out);
	}
	wgcrypto_wipe(hex, sizeof(hex));
}

/* ---- set ---- */

struct set_state {
	struct wg_device *dev;
	struct wg_peer *peer; /* the peer lines apply to; NULL: device lines, or skipping */
	bool skipping;	      /* update_only for a peer that does not exist */
	bool created;
};

static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (*v < '0' || *v > '9') /* strtoull would take signs and white space */
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_bool_true(const char *v)
{
	return strcmp(v, "true") ? -EINVAL : 0;
}

int uapi_parse_endpoint(const char *v, struct wg_endpoint *ep);
int uapi_parse_endpoint(const char *v, struct wg_endpoint *ep)
{
	char host[INET6_ADDRSTRLEN + 16];
	const char *colon, *port_s;
	uint64_t port;
	size_t hl;

	memset(ep, 0, sizeof(*ep));
	if (*v == '[') {
		const char *close = strchr(v, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hl = (size_t)(close - v - 1);
		port_s = close + 2;
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, v + 1, hl);
		host[hl] = '\0';
		char *pct = strchr(host, '%');

		if (pct) {
			uint64_t scope;

			/* wg(8) writes the scope as an interface name; numbers work too. */
			*pct = '\0';
			if (parse_u64(pct + 1, UINT32_MAX, &scope) &&
			    !(scope = if_nametoindex(pct + 1)))
				return -EINVAL;
			ep->in6.sin6_scope_id = (uint32_t)scope;
		}
		if (parse_u64(port_s, 65535, &port) ||
		    inet_pton(AF_INET6, host, &ep->in6.sin6_addr) != 1)
			return -EINVAL;
		ep->in6.sin6_family = AF_INET6;
		ep->in6.sin6_port = htons((uint16_t)port);
		return 0;
	}
	colon = strrchr(v, ':');
	if (!colon)
		return -EINVAL;
	hl = (size_t)(colon - v);
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, v, hl);
	host[hl] = '\0';
	if (parse_u64(colon + 1, 65535, &port) || inet_pton(AF_INET, host, &ep->in4.sin_addr) != 1)
		return -EINVAL;
	ep->in4.sin_family = AF_INET;
	ep->in4.sin_port = htons((uint16_t)port);
	return 0;
}

static int parse_allowed_ip(const char *v, int *family, uint8_t addr[16], uint8_t *cidr)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(v, '/');
	size_t hl = slash ? (size_t)(slash - v) : strlen(v);
	uint64_t c;

	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, v, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, addr) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, host, addr) == 1)
		*family = AF_INET6;
	else
		return -EINVAL;
	if (!slash)
		c = *family == AF_INET ? 32 : 128;
	else if (parse_u64(slash + 1, *family == AF_INET ? 32 : 128, &c))
		return -EINVAL;
	*cidr = (uint8_t)c;
	return 0;
}

static int set_device_key(struct set_state *s, const char *k, const char *v)
{
	struct wg_device *dev = s->dev;
	uint8_t key[WG_KEY_LEN];
	uint64_t n;
	int r;

	if (!strcmp(k, "private_key")) {
		if (key_from_hex(key, v))
			return -EINVAL;
		r = device_set_private_key(dev, key);
		wgcrypto_wipe(key, sizeof(key));
		return r;
	}
	if (!strcmp(k, "listen_port")) {
		if (parse_u64(v, 65535, &n))
			return -EINVAL;
		return device_bind(dev, (uint16_t)n);
	}
	if (!strcmp(k, "fwmark")) {
		if (parse_u64(v, UINT32_MAX, &n))
			return -EINVAL;
		return device_set_fwmark(dev, (uint32_t)n);
	}
	if (!strcmp(k, "replace_peers")) {
		if (parse_bool_true(v))
			return -EINVAL;
		while (dev->peers_head)
			peer_remove(dev->peers_head);
		return 0;
	}
	return -EINVAL;
}

static int set_public_key(struct set_state *s, const char *v)
{
	uint8_t key[WG_KEY_LEN];
	int r;

	if (key_from_hex(key, v))
		return -EINVAL;
	s->skipping = false;
	s->created = false;
	s->peer = peer_lookup(s->dev, key);
	/* Our own public key as a peer is ignored, as the kernel does. */
	if (s->dev->identity.has_identity && key_equal(key, s->dev->identity.static_public)) {
		s->peer = NULL;
		s->skipping = true;
		return 0;
	}
	if (!s->peer) {
		r = peer_create(s->dev, key, &s->peer);
		if (r)
			return r;
		s->created = true;
	}
	return 0;
}

static int set_peer_key(struct set_state *s, const char *k, const char *v)
{
	struct wg_peer *peer = s->peer;
	struct wg_endpoint ep;
	uint8_t addr[16], cidr, key[WG_KEY_LEN];
	uint64_t n;
	int family;

	if (!strcmp(k, "update_only")) {
		if (parse_bool_true(v))
			return -EINVAL;
		if (s->created && peer) {
			/* It did not exist: undo the creation and ignore its lines. */
			peer_remove(peer);
			s->peer = NULL;
			s->skipping = true;
		}
		return 0;
	}
	if (s->skipping)
		return 0;
	if (!strcmp(k, "remove")) {
		if (parse_bool_true(v))
			return -EINVAL;
		peer_remove(peer);
		s->peer = NULL;
		s->skipping = true;
		return 0;
	}
	if (!strcmp(k, "preshared_key")) {
		if (key_from_hex(key, v))
			return -EINVAL;
		memcpy(peer->handshake.preshared_key, key, WG_KEY_LEN);
		wgcrypto_wipe(key, sizeof(key));
		return 0;
	}
	if (!strcmp(k, "endpoint")) {
		if (uapi_parse_endpoint(v, &ep))
			return -EINVAL;
		peer_set_endpoint(peer, &ep);
		return 0;
	}
	if (!strcmp(k, "persistent_keepalive_interval")) {
		if (parse_u64(v, 65535, &n))
			return -EINVAL;
		bool was_off = !peer->persistent_keepalive;

		peer->persistent_keepalive = (uint16_t)n;
		/* Turning it on starts it now, as the kernel does for an up interface. */
		if (n && was_off)
			atomic_fetch_or(&peer->requests, PEER_REQ_KEEPALIVE);
		return 0;
	}
	if (!strcmp(k, "replace_allowed_ips")) {
		if (parse_bool_true(v))
			return -EINVAL;
		allowedips_remove_by_value(&s->dev->allowedips, peer);
		return 0;
	}
	if (!strcmp(k, "allowed_ip")) {
		if (parse_allowed_ip(v, &family, addr, &cidr))
			return -EINVAL;
		return allowedips_insert(&s->dev->allowedips, family, addr, cidr, peer);
	}
	if (!strcmp(k, "protocol_version"))
		return strcmp(v, "1") ? -EPROTONOSUPPORT : 0;
	return -EINVAL;
}

static int set_line(struct set_state *s, char *line)
{
	char *eq = strchr(line, '=');

	if (!eq)
		return -EINVAL;
	*eq = '\0';
	if (!strcmp(line, "public_key"))
		return set_public_key(s, eq + 1);
	if (s->peer || s->skipping)
		return set_peer_key(s, line, eq + 1);
	return set_device_key(s, line, eq + 1);
}

static int uapi_set(struct wg_device *dev, const char *req, size_t len)
{
	struct set_state s = {.dev = dev};
	char line[UAPI_MAX_LINE];
	size_t pos = 0;
	int r = 0;

	while (pos < len) {
		const char *nl = memchr(req + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (req + pos)) : len - pos;

		if (ll == 0)
			break; /* the blank line that ends the request */
		if (ll >= sizeof(line) || memchr(req + pos, '\0', ll)) {
			r = -EINVAL;
			break;
		}
		memcpy(line, req + pos, ll);
		line[ll] = '\0';
		pos += ll + 1;
		r = set_line(&s, line);
		if (r)
			break;
	}
	wgcrypto_wipe(line, sizeof(line));
	if (r)
		log_warn("%s: configuration rejected: %s", dev->name, strerror(-r));
	return r;
}

int uapi_request(struct wg_device *dev, const char *req, size_t len, FILE *out)
{
	int r = 0, mtu;

	if (len >= 6 && !memcmp(req, "get=1\n", 6)) {
		/* Build the answer under the lock, write it after: a slow reader must not
		 * hold up the data path. Only the blank line may follow. */
		if (len != 7 || req[6] != '\n') {
			r = -EINVAL;
		} else {
			pthread_rwlock_rdlock(&dev->lock);
			uapi_get(dev, out);
			pthread_rwlock_unlock(&dev->lock);
		}
	} else if (len >= 6 && !memcmp(req, "set=1\n", 6)) {
		pthread_rwlock_wrlock(&dev->lock);
		r = uapi_set(dev, req + 6, len - 6);
		pthread_rwlock_unlock(&dev->lock);
		device_kick_ctrl(dev);
	} else {
		r = -EINVAL;
	}
	/* wg-quick sets the MTU with ip(8) before it configures us: learn it here. */
	if (dev->tun_fd >= 0 && (mtu = tun_get_mtu(dev->name)) > 0)
		atomic_store(&dev->mtu, mtu);
	fprintf(out, "errno=%d\n\n", -r);
	return r;
}

/* ---- the socket ---- */

int uapi_listen(struct wg_device *dev)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	mode_t old;
	int fd, r;

	if (snprintf(dev->uapi_path, sizeof(dev->uapi_path), UAPI_DIR "/%s.sock", dev->name) >=
	    (int)sizeof(dev->uapi_path))
		return -ENAMETOOLONG;
	if (mkdir(UAPI_DIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	memcpy(sun.sun_path, dev->uapi_path, strlen(dev->uapi_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket file nobody answers on is stale: replace it. One that answers is a live
	 * interface of the same name. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	unlink(dev->uapi_path);
	old = umask(0077); /* the socket hands out private keys: owner only */
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || listen(fd, 16) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	dev->uapi_fd = fd;
	return 0;
}

void uapi_close(struct wg_device *dev)
{
	if (dev->uapi_fd < 0)
		return;
	close(dev->uapi_fd);
	dev->uapi_fd = -1;
	unlink(dev->uapi_path);
}

static void serve_connection(struct wg_device *dev, int fd)
{
	struct timeval tv = {.tv_sec = UAPI_READ_TIMEOUT_SECS};
	size_t cap = 4096, used = 0;
	char *buf = malloc(cap);

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (buf) {
		char *end = used >= 2 ? memmem(buf, used, "\n\n", 2) : NULL;

		if (end) {
			size_t rlen = (size_t)(end - buf) + 2;
			char *resp = NULL;
			size_t resp_len = 0;
			FILE *out = open_memstream(&resp, &resp_len);

			if (!out)
				break;
			uapi_request(dev, buf, rlen, out);
			fclose(out);
			bool ok = write(fd, resp, resp_len) == (ssize_t)resp_len;

			wgcrypto_wipe(resp, resp_len);
			free(resp);
			wgcrypto_wipe(buf, rlen);
			memmove(buf, buf + rlen, used - rlen);
			used -= rlen;
			if (!ok)
				break;
			continue;
		}
		if (used == cap) {
			char *nb;

			if (cap >= UAPI_MAX_REQUEST)
				break; /* too large: drop the connection */
			nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + used, cap - used);

		if (n <= 0)
			break;
		used += (size_t)n;
	}
	if (buf) {
		wgcrypto_wipe(buf, cap);
		free(buf);
	}
	close(fd);
}

void *uapi_thread(void *arg)
{
	struct wg_device *dev = arg;
	struct pollfd pfd[2] = {
		{.fd = dev->uapi_fd, .events = POLLIN},
		{.fd = dev->stop_fd, .events = POLLIN},
	};

	while (!atomic_load(&dev->stopping)) {
		int fd;

		if (poll(pfd, 2, -1) < 0 || (pfd[1].revents & POLLIN))
			continue;
		fd = accept4(dev->uapi_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			serve_connection(dev, fd);
	}
	return NULL;
}
