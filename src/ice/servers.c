/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "ice/servers.h"

#define REST_LIFETIME_MAX (30 * 24 * 3600)
#define REST_USER_SUFFIX  ":wice"

/* Copies [s, s + len) into out[out_size] undoing %XX escapes (RFC 3986 section 2.1). */
static int unescape(char *out, size_t out_size, const char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			char hex[3];

			if (i + 2 >= len)
				return -EINVAL;
			if (!isxdigit((unsigned char)s[i + 1]) ||
			    !isxdigit((unsigned char)s[i + 2]))
				return -EINVAL;
			hex[0] = s[i + 1];
			hex[1] = s[i + 2];
			hex[2] = '\0';
			c = (char)strtoul(hex, NULL, 16);
			if (c == '\0')
				return -EINVAL;
			i += 2;
		}
		if (o + 1 >= out_size)
			return -ENAMETOOLONG;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

static int parse_port(const char *s, size_t len, uint16_t *ret_port)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*ret_port = (uint16_t)v;
	return 0;
}

static bool host_char_ok(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

/* HOST[:PORT] or [V6][:PORT]; the port stays as given when absent. */
static int parse_hostport(struct ice_server *srv, const char *s, size_t len)
{
	const char *host = s, *port = NULL;
	size_t host_len, port_len = 0;

	if (len > 0 && s[0] == '[') {
		const char *end = memchr(s, ']', len);
		struct in6_addr a6;
		char tmp[ICE_SERVER_HOST_MAX];

		if (!end)
			return -EINVAL;
		host = s + 1;
		host_len = (size_t)(end - host);
		if (host_len == 0 || host_len >= sizeof(tmp))
			return -EINVAL;
		memcpy(tmp, host, host_len);
		tmp[host_len] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return -EINVAL;
		if (end + 1 < s + len) {
			if (end[1] != ':')
				return -EINVAL;
			port = end + 2;
			port_len = (size_t)(s + len - port);
		}
	} else {
		const char *colon = memchr(s, ':', len);

		host_len = colon ? (size_t)(colon - s) : len;
		if (colon) {
			port = colon + 1;
			port_len = (size_t)(s + len - port);
		}
		if (host_len == 0)
			return -EINVAL;
		for (size_t i = 0; i < host_len; i++)
			if (!host_char_ok(host[i]))
				return -EINVAL;
	}
	if (host_len >= sizeof(srv->host))
		return -ENAMETOOLONG;
	memcpy(srv->host, host, host_len);
	srv->host[host_len] = '\0';
	return port ? parse_port(port, port_len, &srv->port) : 0;
}

/* USER:PASS, both non-empty. */
static int parse_userinfo(struct ice_server *srv, const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len);
	int r;

	if (!colon || colon == s || colon == s + len - 1)
		return -EINVAL;
	r = unescape(srv->user, sizeof(srv->user), s, (size_t)(colon - s));
	if (r < 0)
		return r;
	return unescape(srv->pass, sizeof(srv->pass), colon + 1, (size_t)(s + len - colon - 1));
}

static int parse_query_item(struct ice_server *srv, const char *item, size_t len, unsigned *seen)
{
	const char *eq = memchr(item, '=', len);
	const char *val;
	size_t key_len, val_len;

	if (!eq)
		return -EINVAL;
	key_len = (size_t)(eq - item);
	val = eq + 1;
	val_len = (size_t)(item + len - val);
	if (val_len == 0)
		return -EINVAL;

#define KEY_IS(k) (key_len == strlen(k) && memcmp(item, k, key_len) == 0)
	if (KEY_IS("transport")) {
		if (*seen & 1)
			return -EINVAL;
		*seen |= 1;
		if (val_len == 3 && memcmp(val, "udp", 3) == 0)
			srv->transport = ICE_SERVER_UDP;
		else if (val_len == 3 && memcmp(val, "tcp", 3) == 0)
			srv->transport = ICE_SERVER_TCP;
		else
			return -EINVAL;
		return 0;
	}
	if (KEY_IS("secret")) {
		if (*seen & 2)
			return -EINVAL;
		*seen |= 2;
		return unescape(srv->secret, sizeof(srv->secret), val, val_len);
	}
	if (KEY_IS("lifetime")) {
		unsigned long v = 0;

		if ((*seen & 4) || val_len > 9)
			return -EINVAL;
		*seen |= 4;
		for (size_t i = 0; i < val_len; i++) {
			if (!isdigit((unsigned char)val[i]))
				return -EINVAL;
			v = v * 10 + (unsigned long)(val[i] - '0');
		}
		if (v < ICE_SERVER_REST_LIFETIME_MIN || v > REST_LIFETIME_MAX)
			return -EINVAL;
		srv->lifetime = (uint32_t)v;
		return 0;
	}
#undef KEY_IS
	return -EINVAL;
}

static int parse_query(struct ice_server *srv, const char *q, unsigned *seen)
{
	while (*q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		int r = parse_query_item(srv, q, len, seen);

		if (r < 0)
			return r;
		q += len;
		if (amp)
			q++;
	}
	return 0;
}

/* Rules that need the whole URL: what each scheme must and must not have. */
static int check_server(const struct ice_server *srv, unsigned seen, bool has_userinfo)
{
	if (srv->kind == ICE_SERVER_STUN)
		return has_userinfo || seen ? -EINVAL : 0;
	if (srv->tls && srv->transport != ICE_SERVER_TCP)
		return -EINVAL;
	if (has_userinfo == !!(seen & 2)) /* exactly one of USER:PASS@ and secret= */
		return -EINVAL;
	if ((seen & 4) && !(seen & 2))
		return -EINVAL;
	return 0;
}

int ice_server_parse(const char *url, struct ice_server *ret_srv)
{
	struct ice_server srv = {.lifetime = ICE_SERVER_REST_LIFETIME_DEFAULT};
	const char *rest, *query, *at, *end;
	unsigned seen = 0;
	int r;

	if (!url)
		return -EINVAL;
	if (strnlen(url, ICE_SERVER_URL_MAX) >= ICE_SERVER_URL_MAX)
		return -ENAMETOOLONG;

	if (strncmp(url, "stun:", 5) == 0) {
		srv.kind = ICE_SERVER_STUN;
		rest = url + 5;
	} else if (strncmp(url, "turn:", 5) == 0) {
		srv.kind = ICE_SERVER_TURN;
		rest = url + 5;
	} else if (strncmp(url, "turns:", 6) == 0) {
		srv.kind = ICE_SERVER_TURN;
		srv.tls = true;
		srv.transport = ICE_SERVER_TCP;
		rest = url + 6;
	} else {
		return -EINVAL;
	}
	srv.port = srv.tls ? ICE_SERVER_PORT_TLS_DEFAULT : ICE_SERVER_PORT_DEFAULT;
	if (strncmp(rest, "//", 2) == 0) /* RFC 7064/7065 URIs have no authority slashes */
		return -EINVAL;

	query = strchr(rest, '?');
	end = query ? query : rest + strlen(rest);
	at = memrchr(rest, '@', (size_t)(end - rest));
	if (at) {
		r = parse_userinfo(&srv, rest, (size_t)(at - rest));
		if (r < 0)
			return r;
		rest = at + 1;
	}
	r = parse_hostport(&srv, rest, (size_t)(end - rest));
	if (r < 0)
		return r;
	if (query) {
		if (query[1] == '\0')
			return -EINVAL;
		r = parse_query(&srv, query + 1, &seen);
		if (r < 0)
			return r;
	}
	r = check_server(&srv, seen, at != NULL);
	if (r < 0)
		return r;
	if (!ice_server_is_name(&srv))
		ice_server_set_addrs(&srv, (const char *const[]){srv.host}, 1);
	*ret_srv = srv;
	return 0;
}

static int addr_family(const char *a)
{
	struct in6_addr buf;

	if (inet_pton(AF_INET, a, &buf) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, a, &buf) == 1)
		return AF_INET6;
	return AF_UNSPEC;
}

int ice_server_set_addrs(struct ice_server *srv, const char *const *addrs, size_t n)
{
	const char *v4 = NULL, *v6 = NULL;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		int fam = addrs[i] && strlen(addrs[i]) < ICE_SERVER_ADDR_MAX ? addr_family(addrs[i])
									     : AF_UNSPEC;

		if (fam == AF_INET && !v4)
			v4 = addrs[i];
		else if (fam == AF_INET6 && !v6)
			v6 = addrs[i];
	}
	if (!v4 && !v6)
		return -EADDRNOTAVAIL;
	if (v4)
		strcpy(srv->addrs[k++], v4);
	if (v6)
		strcpy(srv->addrs[k++], v6);
	srv->n_addrs = k;
	return 0;
}

bool ice_server_is_name(const struct ice_server *srv)
{
	return addr_family(srv->host) == AF_UNSPEC;
}

int ice_server_credentials(const struct ice_server *srv, time_t now,
			   char ret_user[static ICE_SERVER_CRED_MAX],
			   char ret_pass[static ICE_SERVER_CRED_MAX], time_t *ret_renew)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char user[ICE_SERVER_CRED_MAX];
	int n;

	if (srv->kind != ICE_SERVER_TURN)
		return -EINVAL;
	if (!srv->secret[0]) {
		memcpy(ret_user, srv->user, sizeof(srv->user));
		memcpy(ret_pass, srv->pass, sizeof(srv->pass));
		if (ret_renew)
			*ret_renew = 0;
		return 0;
	}

	/* coturn use-auth-secret: the username's timestamp is when the credentials expire. */
	n = snprintf(user, sizeof(user), "%lld" REST_USER_SUFFIX,
		     (long long)now + (long long)srv->lifetime);
	if (n < 0 || (size_t)n >= sizeof(user))
		return -EINVAL;
	if (!HMAC(EVP_sha1(), srv->secret, (int)strlen(srv->secret), (const unsigned char *)user,
		  (size_t)n, mac, &mac_len))
		return -EIO;
	/* 20 bytes encode to 28 characters: far below ICE_SERVER_CRED_MAX. */
	EVP_EncodeBlock((unsigned char *)ret_pass, mac, (int)mac_len);
	memcpy(ret_user, user, (size_t)n + 1);
	if (ret_renew)
		*ret_renew = now + (time_t)srv->lifetime * 3 / 4;
	return 0;
}
