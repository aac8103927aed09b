/* SPDX-License-Identifier: MIT */
/*
 * wgctl over the cross-platform userspace API (https://www.wireguard.com/xplatform/): a
 * request of key=value lines ended by a blank line on DIR/NAME.sock, answered by key=value
 * lines, "errno=N" and a blank line. Every userspace implementation speaks it: wice
 * wg-userspace, wireguard-go, boringtun.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "daemon/wgctl_internal.h"
#include "util/key.h"

#define UAPI_SOCK_SUFFIX     ".sock"
#define UAPI_MAX_ERRNO	     4095
#define UAPI_PROTOCOL_VER    1
#define UAPI_READ_CHUNK	     4096
#define UAPI_SET_REQUEST_MAX 256

/* ---- the response parser ---- */

struct uapi_parser {
	struct wgctl_device *dev;
	char line[WGCTL_UAPI_MAX_LINE + 1];
	size_t line_len;
	size_t lines;
	bool has_errno;
	int err; /* the errno line's value, negated */
};

/* Decimal digits only: no sign, no spaces, no base prefixes, nothing above max. */
static int parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return -EBADMSG;
	for (; *s; s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (*s < '0' || *s > '9' || d > max || v > (max - d) / 10)
			return -EBADMSG;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

static int parse_scope(const char *s, uint32_t *ret)
{
	uint64_t v;
	unsigned int idx;

	if (parse_uint(s, UINT32_MAX, &v) == 0) {
		*ret = (uint32_t)v;
		return 0;
	}
	/* wireguard-go prints the zone as an interface name. */
	idx = *s ? if_nametoindex(s) : 0;
	if (!idx)
		return -EBADMSG;
	*ret = idx;
	return 0;
}

int wgctl_uapi_parse_endpoint(const char *s, struct sockaddr_storage *ret)
{
	char host[INET6_ADDRSTRLEN + IFNAMSIZ + 1];
	struct sockaddr_storage ss = {0};
	const char *port_s;
	uint32_t scope = 0;
	uint64_t port;
	size_t hl;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		char *pct;

		if (!close || close[1] != ':')
			return -EBADMSG;
		hl = (size_t)(close - s - 1);
		port_s = close + 2;
		if (hl >= sizeof(host))
			return -EBADMSG;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		pct = strchr(host, '%');
		if (pct) {
			*pct = '\0';
			if (parse_scope(pct + 1, &scope) < 0)
				return -EBADMSG;
		}
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon)
			return -EBADMSG;
		hl = (size_t)(colon - s);
		port_s = colon + 1;
		if (hl >= sizeof(host))
			return -EBADMSG;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (parse_uint(port_s, UINT16_MAX, &port) < 0)
		return -EBADMSG;

	if (*s == '[') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EBADMSG;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		in6->sin6_scope_id = scope;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -EBADMSG;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
	}
	*ret = ss;
	return 0;
}

static int parse_allowedip(const char *s, struct wgctl_allowedip *ret)
{
	char addr[INET6_ADDRSTRLEN];
	struct wgctl_allowedip aip = {0};
	const char *slash = strchr(s, '/');
	uint64_t cidr;
	size_t al;

	if (!slash)
		return -EBADMSG;
	al = (size_t)(slash - s);
	if (al >= sizeof(addr))
		return -EBADMSG;
	memcpy(addr, s, al);
	addr[al] = '\0';
	if (inet_pton(AF_INET, addr, &aip.ip4) == 1)
		aip.family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &aip.ip6) == 1)
		aip.family = AF_INET6;
	else
		return -EBADMSG;
	if (parse_uint(slash + 1, aip.family == AF_INET ? 32 : 128, &cidr) < 0)
		return -EBADMSG;
	aip.cidr = (uint8_t)cidr;
	*ret = aip;
	return 0;
}

static int parse_key(uint8_t key[static WGCTL_KEY_LEN], const char *v)
{
	return key_from_hex(key, v) < 0 ? -EBADMSG : 0;
}

enum uapi_scope { SCOPE_DEVICE, SCOPE_PEER, SCOPE_ANY };

struct uapi_key {
	const char *key;
	enum uapi_scope scope;
	/* peer is the latest peer for SCOPE_PEER, NULL otherwise. */
	int (*parse)(struct uapi_parser *p, struct wgctl_peer *peer, const char *v);
};

static int h_private_key(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	int r = parse_key(p->dev->private_key, v);

	if (r == 0)
		p->dev->has_private_key = !key_is_zero(p->dev->private_key);
	return r;
}

static int h_listen_port(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	uint64_t n;
	int r = parse_uint(v, UINT16_MAX, &n);

	if (r == 0)
		p->dev->listen_port = (uint16_t)n;
	return r;
}

static int h_fwmark(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	uint64_t n;
	int r = parse_uint(v, UINT32_MAX, &n);

	if (r == 0)
		p->dev->fwmark = (uint32_t)n;
	return r;
}

static int h_public_key(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	uint8_t pub[WGCTL_KEY_LEN];
	struct wgctl_peer *added;
	int r = parse_key(pub, v);

	return r < 0 ? r : wgctl_device_add_peer(p->dev, pub, &added);
}

static int h_preshared_key(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	int r = parse_key(peer->preshared_key, v);

	if (r == 0)
		peer->has_preshared_key = !key_is_zero(peer->preshared_key);
	return r;
}

static int h_endpoint(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	return wgctl_uapi_parse_endpoint(v, &peer->endpoint);
}

static int h_handshake_sec(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	uint64_t n;
	int r = parse_uint(v, INT64_MAX, &n);

	if (r == 0)
		peer->last_handshake.tv_sec = (time_t)n;
	return r;
}

static int h_handshake_nsec(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	uint64_t n;
	int r = parse_uint(v, 999999999, &n);

	if (r == 0)
		peer->last_handshake.tv_nsec = (long)n;
	return r;
}

static int h_rx_bytes(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	return parse_uint(v, UINT64_MAX, &peer->rx_bytes);
}

static int h_tx_bytes(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	return parse_uint(v, UINT64_MAX, &peer->tx_bytes);
}

static int h_keepalive(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	uint64_t n;
	int r = parse_uint(v, UINT16_MAX, &n);

	if (r == 0)
		peer->persistent_keepalive = (uint16_t)n;
	return r;
}

static int h_allowed_ip(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	struct wgctl_allowedip aip;
	int r = parse_allowedip(v, &aip);

	return r < 0 ? r : wgctl_peer_add_allowedip(peer, &aip);
}

/* A version we do not know may mean fields we would misread. */
static int h_protocol_version(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	uint64_t n;
	int r = parse_uint(v, UINT32_MAX, &n);

	if (r < 0)
		return r;
	return n == UAPI_PROTOCOL_VER ? 0 : -EPROTO;
}

/* wice and wireguard-tools write errno=22; wireguard-go writes errno=-22. */
static int h_errno(struct uapi_parser *p, struct wgctl_peer *peer, const char *v)
{
	uint64_t n;
	int r = parse_uint(v + (*v == '-'), UAPI_MAX_ERRNO, &n);

	if (r == 0) {
		p->has_errno = true;
		p->err = -(int)n;
	}
	return r;
}

static const struct uapi_key uapi_keys[] = {
	{"private_key", SCOPE_DEVICE, h_private_key},
	{"listen_port", SCOPE_DEVICE, h_listen_port},
	{"fwmark", SCOPE_DEVICE, h_fwmark},
	{"public_key", SCOPE_ANY, h_public_key},
	{"preshared_key", SCOPE_PEER, h_preshared_key},
	{"endpoint", SCOPE_PEER, h_endpoint},
	{"last_handshake_time_sec", SCOPE_PEER, h_handshake_sec},
	{"last_handshake_time_nsec", SCOPE_PEER, h_handshake_nsec},
	{"rx_bytes", SCOPE_PEER, h_rx_bytes},
	{"tx_bytes", SCOPE_PEER, h_tx_bytes},
	{"persistent_keepalive_interval", SCOPE_PEER, h_keepalive},
	{"allowed_ip", SCOPE_PEER, h_allowed_ip},
	{"protocol_version", SCOPE_PEER, h_protocol_version},
	{"errno", SCOPE_ANY, h_errno},
};

/* Returns 1 at the blank line that ends the response, 0 for any other good line. */
static int parser_line(struct uapi_parser *p, char *line)
{
	struct wgctl_peer *peer = p->dev->n_peers ? &p->dev->peers[p->dev->n_peers - 1] : NULL;
	char *v;

	if (++p->lines > WGCTL_UAPI_MAX_LINES)
		return -E2BIG;
	if (!*line)
		return p->has_errno ? 1 : -EBADMSG;
	if (p->has_errno) /* errno= is the last line */
		return -EBADMSG;
	v = strchr(line, '=');
	if (!v || v == line)
		return -EBADMSG;
	*v++ = '\0';
	for (size_t i = 0; i < sizeof(uapi_keys) / sizeof(uapi_keys[0]); i++) {
		const struct uapi_key *k = &uapi_keys[i];

		if (strcmp(k->key, line))
			continue;
		/* Device lines come before the first public_key; peer lines after it. */
		if ((k->scope == SCOPE_DEVICE && peer) || (k->scope == SCOPE_PEER && !peer))
			return -EBADMSG;
		return k->parse(p, k->scope == SCOPE_PEER ? peer : NULL, v);
	}
	return 0; /* a key from a newer implementation: nothing we rely on */
}

/* Returns 1 once the blank line has been seen, 0 when more bytes are needed. */
static int parser_feed(struct uapi_parser *p, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		int r;

		if (buf[i] == '\n') {
			p->line[p->line_len] = '\0';
			p->line_len = 0;
			r = parser_line(p, p->line);
			if (r != 0)
				return r;
		} else if (buf[i] == '\0' || p->line_len == WGCTL_UAPI_MAX_LINE) {
			return -EBADMSG;
		} else {
			p->line[p->line_len++] = buf[i];
		}
	}
	return 0;
}

static int parser_init(struct uapi_parser *p)
{
	memset(p, 0, sizeof(*p));
	p->dev = wgctl_device_new();
	return p->dev ? 0 : -ENOMEM;
}

static void parser_release(struct uapi_parser *p)
{
	p->dev = wgctl_device_free(p->dev);
	wgctl_wipe(p->line, sizeof(p->line));
}

/* After the blank line: the response's errno, or the device handed over (ret may be NULL). */
static int parser_finish(struct uapi_parser *p, const char *ifname, struct wgctl_device **ret)
{
	struct wgctl_device *dev = p->dev;

	if (p->err)
		return p->err;
	if (!ret)
		return 0;
	/* The UAPI does not print the public key: derive it, as wg(8) does. */
	if (dev->has_private_key && key_public_from_private(dev->public_key, dev->private_key) < 0)
		return -EBADMSG;
	snprintf(dev->name, sizeof(dev->name), "%s", ifname);
	*ret = dev;
	p->dev = NULL;
	return 0;
}

int wgctl_uapi_parse(const char *buf, size_t len, const char *ifname, struct wgctl_device **ret)
{
	struct uapi_parser p;
	int r;

	r = parser_init(&p);
	if (r < 0)
		return r;
	r = parser_feed(&p, buf, len);
	if (r == 0) /* no blank line: truncated */
		r = -EBADMSG;
	if (r > 0)
		r = parser_finish(&p, ifname, ret);
	parser_release(&p);
	return r;
}

/* ---- requests ---- */

int wgctl_uapi_format_endpoint(char *buf, size_t size, const struct sockaddr *ep, socklen_t len)
{
	char a[INET6_ADDRSTRLEN];
	int r, n;

	r = wgctl_endpoint_check(ep, len);
	if (r < 0)
		return r;
	if (ep->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ep;

		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		n = snprintf(buf, size, "%s:%u", a, ntohs(in->sin_port));
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ep;

		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		if (in6->sin6_scope_id)
			n = snprintf(buf, size, "[%s%%%u]:%u", a, in6->sin6_scope_id,
				     ntohs(in6->sin6_port));
		else
			n = snprintf(buf, size, "[%s]:%u", a, ntohs(in6->sin6_port));
	}
	if (n < 0 || (size_t)n >= size)
		return -ENOBUFS;
	return n;
}

int wgctl_uapi_format_set_endpoint(char *buf, size_t size, const uint8_t pub[static WGCTL_KEY_LEN],
				   const struct sockaddr *ep, socklen_t len)
{
	char hex[2 * WGCTL_KEY_LEN + 1], addr[INET6_ADDRSTRLEN + 32];
	int r, n;

	r = wgctl_uapi_format_endpoint(addr, sizeof(addr), ep, len);
	if (r < 0)
		return r;
	key_to_hex(hex, pub);
	/* update_only: if the peer went away meanwhile, do not bring it back. */
	n = snprintf(buf, size, "set=1\npublic_key=%s\nupdate_only=true\nendpoint=%s\n\n", hex,
		     addr);
	if (n < 0 || (size_t)n >= size)
		return -ENOBUFS;
	return n;
}

/* ---- the socket ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A zero timeval would mean "block forever", so an expired deadline is an error here. */
static int set_timeout(int fd, int opt, int64_t deadline)
{
	int64_t ms = deadline - now_ms();
	struct timeval tv;

	if (ms <= 0)
		return -ETIMEDOUT;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) < 0 ? -errno : 0;
}

static int uapi_path(const char *ifname, struct sockaddr_un *sun)
{
	int n;

	if (!wgctl_ifname_valid(ifname))
		return -EINVAL;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s" UAPI_SOCK_SUFFIX,
		     wgctl_uapi_dir(), ifname);
	if (n < 0 || (size_t)n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

static int uapi_connect(const char *ifname, int64_t deadline, int *ret_fd)
{
	struct sockaddr_un sun;
	int fd, r;

	r = uapi_path(ifname, &sun);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A unix connect() waits for a full backlog for up to SO_SNDTIMEO. */
	r = set_timeout(fd, SO_SNDTIMEO, deadline);
	if (r == 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		r = errno == EAGAIN ? -ETIMEDOUT : -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len) {
		ssize_t n;
		int r = set_timeout(fd, SO_SNDTIMEO, deadline);

		if (r < 0)
			return r;
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_response(int fd, struct uapi_parser *p, int64_t deadline)
{
	char buf[UAPI_READ_CHUNK];
	int r = 0;

	while (r == 0) {
		ssize_t n;

		r = set_timeout(fd, SO_RCVTIMEO, deadline);
		if (r < 0)
			break;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = errno == EAGAIN ? -ETIMEDOUT : -errno;
		else if (n == 0) /* closed before the blank line */
			r = -EBADMSG;
		else
			r = parser_feed(p, buf, (size_t)n);
	}
	wgctl_wipe(buf, sizeof(buf)); /* it held the private key */
	return r;
}

/* One request, one response; ret NULL when only the errno matters. */
static int uapi_exchange(const char *ifname, const char *req, size_t req_len,
			 struct wgctl_device **ret)
{
	int64_t deadline = now_ms() + WGCTL_UAPI_TIMEOUT_MS;
	struct uapi_parser p;
	int fd, r;

	r = uapi_connect(ifname, deadline, &fd);
	if (r < 0)
		return r;
	r = parser_init(&p);
	if (r == 0)
		r = send_all(fd, req, req_len, deadline);
	if (r == 0)
		r = recv_response(fd, &p, deadline);
	close(fd);
	if (r > 0)
		r = parser_finish(&p, ifname, ret);
	parser_release(&p);
	return r;
}

bool wgctl_uapi_present(const char *ifname)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	if (uapi_path(ifname, &sun) < 0 || stat(sun.sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	/* A socket file nobody listens on is left over from a crash. */
	if (uapi_connect(ifname, now_ms() + WGCTL_UAPI_TIMEOUT_MS, &fd) < 0)
		return false;
	close(fd);
	return true;
}

static int uapi_list(char ***ret_names, size_t *ret_n)
{
	const size_t suffix_len = sizeof(UAPI_SOCK_SUFFIX) - 1;
	struct wgctl_names names = {0};
	struct dirent *de;
	DIR *d;
	int r = 0;

	d = opendir(wgctl_uapi_dir());
	if (!d && errno != ENOENT)
		return -errno;
	while (d && r == 0 && (de = readdir(d))) {
		char name[IFNAMSIZ];
		size_t len = strlen(de->d_name);

		if (len <= suffix_len || len - suffix_len >= sizeof(name) ||
		    strcmp(de->d_name + len - suffix_len, UAPI_SOCK_SUFFIX))
			continue;
		memcpy(name, de->d_name, len - suffix_len);
		name[len - suffix_len] = '\0';
		if (wgctl_ifname_valid(name) && wgctl_uapi_present(name))
			r = wgctl_names_add(&names, name);
	}
	if (d)
		closedir(d);
	if (r < 0) {
		wgctl_names_clear(&names);
		return r;
	}
	wgctl_names_finish(&names, ret_names, ret_n);
	return 0;
}

static int uapi_get(const char *ifname, struct wgctl_device **ret)
{
	static const char req[] = "get=1\n\n";

	return uapi_exchange(ifname, req, sizeof(req) - 1, ret);
}

static int uapi_set_endpoint(const char *ifname, const uint8_t pub[static WGCTL_KEY_LEN],
			     const struct sockaddr *ep, socklen_t len)
{
	char req[UAPI_SET_REQUEST_MAX];
	int n;

	n = wgctl_uapi_format_set_endpoint(req, sizeof(req), pub, ep, len);
	if (n < 0)
		return n;
	return uapi_exchange(ifname, req, (size_t)n, NULL);
}

const struct wgctl_ops wgctl_uapi = {
	.name = "uapi",
	.list = uapi_list,
	.get = uapi_get,
	.set_endpoint = uapi_set_endpoint,
};
