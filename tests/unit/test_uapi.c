// SPDX-License-Identifier: MIT
/*
 * The cross-platform configuration protocol (wireguard.com/xplatform) through uapi_request on
 * devices without TUN: exact response format, get/set round trips, the peer operations, and a
 * table of malformed requests that must each fail with a non-zero errno and change nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "harness.h"

static struct wg_device *bare_device(void)
{
	struct wg_device *dev;

	assert_int_equal(device_new("wgtest-u", -1, &dev), 0);
	return h_track(dev);
}

/* Runs req (len bytes) and returns the whole response; checks the errno line ends it. */
static char *request_len(struct wg_device *dev, const char *req, size_t len, int expect_errno)
{
	char *buf = NULL, tail[32];
	size_t blen = 0, tl;
	FILE *out = open_memstream(&buf, &blen);
	int r;

	assert_non_null(out);
	r = uapi_request(dev, req, len, out);
	fclose(out);
	snprintf(tail, sizeof(tail), "errno=%d\n\n", expect_errno);
	tl = strlen(tail);
	if (r != -expect_errno || blen < tl || strcmp(buf + blen - tl, tail)) {
		char got[256];

		snprintf(got, sizeof(got), "%s", buf);
		free(buf); /* fail_msg does not return */
		fail_msg("request \"%.*s\": returned %d, answered \"%s\", expected %s", (int)len,
			 req, r, got, tail);
	}
	return buf;
}

static char *request(struct wg_device *dev, const char *req, int expect_errno)
{
	return request_len(dev, req, strlen(req), expect_errno);
}

static void set_ok(struct wg_device *dev, const char *req)
{
	char *resp = request(dev, req, 0);

	/* A set answers with the errno line and nothing else. */
	assert_string_equal(resp, "errno=0\n\n");
	free(resp);
}

static char *get(struct wg_device *dev)
{
	return request(dev, "get=1\n\n", 0);
}

static void hex_key(char out[static 65], uint8_t fill)
{
	uint8_t k[WG_KEY_LEN];

	memset(k, fill, sizeof(k));
	k[0] = fill & 0xf8; /* clamped, so a private key reads back the same */
	k[31] = (uint8_t)((fill & 0x7f) | 0x40);
	key_to_hex(out, k);
}

/* A UDP port nothing uses right now (on both families). */
static uint16_t free_port(void)
{
	struct wg_device *dev = bare_device();
	uint16_t port;

	assert_int_equal(device_bind(dev, 0), 0);
	port = dev->listen_port;
	h_device_free(dev);
	return port;
}

static void test_response_format(void **state)
{
	struct wg_device *dev = bare_device();
	char *r;

	set_ok(dev, "set=1\n\n");
	r = get(dev);
	assert_string_equal(r, "errno=0\n\n"); /* nothing configured: nothing to say */
	free(r);
	r = request(dev, "bogus\n\n", EINVAL);
	assert_string_equal(r, "errno=22\n\n");
	free(r);
	h_device_free(dev);
}

/* Sorts the lines of each section (device, then one per peer) to compare as sets. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *normalise(const char *text)
{
	char *copy = strdup(text), *lines[256], *out, *save = NULL;
	size_t n = 0, start = 0, cap = strlen(text) + 2, used = 0;

	assert_non_null(copy);
	out = calloc(1, cap);
	assert_non_null(out);
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "public_key=", 11) && n > start) {
			qsort(lines + start, n - start, sizeof(*lines), cmp_str);
			start = n;
		}
		assert_true(n < ARRAY_SIZE(lines));
		lines[n++] = l;
	}
	qsort(lines + start, n - start, sizeof(*lines), cmp_str);
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, cap - used, "%s\n", lines[i]);
	free(copy);
	return out;
}

static void assert_config(const char *got, const char *want)
{
	char *g = normalise(got), *w = normalise(want);

	if (strcmp(g, w))
		fail_msg("get answered\n%s\nexpected\n%s", got, want);
	free(g);
	free(w);
}

static void test_round_trip(void **state)
{
	struct wg_device *dev = bare_device();
	char priv[65], pub1[65], pub2[65], psk[65], req[2048], want[2048], *r;
	uint16_t port = free_port();
	/* SO_MARK needs CAP_NET_ADMIN. */
	const char *fwmark = geteuid() == 0 ? "fwmark=1234\n" : "";

	hex_key(priv, 0x11);
	hex_key(pub1, 0x22);
	hex_key(pub2, 0x33);
	hex_key(psk, 0x44);
	snprintf(req, sizeof(req),
		 "set=1\nprivate_key=%s\n%slisten_port=%u\n"
		 "public_key=%s\npreshared_key=%s\nendpoint=192.0.2.1:51820\n"
		 "persistent_keepalive_interval=25\n"
		 "allowed_ip=10.1.0.0/16\nallowed_ip=10.2.3.4/32\nallowed_ip=fd00::/64\n"
		 "public_key=%s\nendpoint=[2001:db8::1]:12345\n"
		 "allowed_ip=::/0\nallowed_ip=0.0.0.0/0\nallowed_ip=fd00:1::7/128\n\n",
		 priv, fwmark, port, pub1, psk, pub2);
	set_ok(dev, req);
	snprintf(want, sizeof(want),
		 "private_key=%s\nlisten_port=%u\n%s"
		 "public_key=%s\npreshared_key=%s\nprotocol_version=1\n"
		 "endpoint=192.0.2.1:51820\nlast_handshake_time_sec=0\n"
		 "last_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n"
		 "persistent_keepalive_interval=25\n"
		 "allowed_ip=10.1.0.0/16\nallowed_ip=10.2.3.4/32\nallowed_ip=fd00::/64\n"
		 "public_key=%s\nprotocol_version=1\nendpoint=[2001:db8::1]:12345\n"
		 "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\n"
		 "rx_bytes=0\npersistent_keepalive_interval=0\n"
		 "allowed_ip=::/0\nallowed_ip=0.0.0.0/0\nallowed_ip=fd00:1::7/128\n"
		 "errno=0\n",
		 priv, port, fwmark, pub1, psk, pub2);
	r = get(dev);
	assert_config(r, want);
	/* Peers come back in the order they were added. */
	assert_true(strstr(r, pub1) < strstr(r, pub2));
	free(r);

	/* Setting the same again changes nothing. */
	set_ok(dev, req);
	r = get(dev);
	assert_config(r, want);
	free(r);
	h_device_free(dev);
}

/* Each case: a set request applied to a device with peers A (10.0.0.1/32) and B, then the
 * lines get must show for A and for B (NULL: the peer must be gone). */
struct peer_case {
	const char *name;
	const char *set;
	const char *want_a, *want_b;
	bool c_exists;
};

#define KA "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"
#define KB "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
#define KC "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"

static const struct peer_case peer_cases[] = {
	{"nothing", "", "allowed_ip=10.0.0.1/32", "allowed_ip=10.0.0.2/32", false},
	{"remove", "public_key=" KA "\nremove=true\n", NULL, "allowed_ip=10.0.0.2/32", false},
	{"remove ignores the peer's later lines",
	 "public_key=" KA "\nremove=true\nallowed_ip=10.9.0.0/16\n", NULL, "allowed_ip=10.0.0.2/32",
	 false},
	/* A peer named again after replace_peers starts afresh, without its allowed IPs. */
	{"replace_peers", "replace_peers=true\npublic_key=" KB "\n", NULL, "", false},
	{"replace_peers then a new one", "replace_peers=true\npublic_key=" KC "\n", NULL, NULL,
	 true},
	{"update_only for a missing peer",
	 "public_key=" KC "\nupdate_only=true\nallowed_ip=10.3.0.0/16\nendpoint=1.2.3.4:5\n",
	 "allowed_ip=10.0.0.1/32", "allowed_ip=10.0.0.2/32", false},
	/* Both crashed (peer_remove(NULL)): found by fuzz_uapi. */
	{"update_only twice for a missing peer",
	 "public_key=" KC "\nupdate_only=true\nupdate_only=true\nallowed_ip=10.3.0.0/16\n",
	 "allowed_ip=10.0.0.1/32", "allowed_ip=10.0.0.2/32", false},
	{"remove, then update_only, for a missing peer",
	 "public_key=" KC "\nremove=true\nupdate_only=true\n", "allowed_ip=10.0.0.1/32",
	 "allowed_ip=10.0.0.2/32", false},
	{"update_only for an existing peer",
	 "public_key=" KA "\nupdate_only=true\nallowed_ip=10.3.0.0/16\n",
	 "allowed_ip=10.0.0.1/32\nallowed_ip=10.3.0.0/16", "allowed_ip=10.0.0.2/32", false},
	{"replace_allowed_ips",
	 "public_key=" KA "\nreplace_allowed_ips=true\nallowed_ip=10.4.0.0/16\n",
	 "allowed_ip=10.4.0.0/16", "allowed_ip=10.0.0.2/32", false},
	{"replace_allowed_ips with none", "public_key=" KA "\nreplace_allowed_ips=true\n", "",
	 "allowed_ip=10.0.0.2/32", false},
	{"an allowed IP moves to its new peer", "public_key=" KB "\nallowed_ip=10.0.0.1/32\n", "",
	 "allowed_ip=10.0.0.1/32\nallowed_ip=10.0.0.2/32", false},
	{"host bits are masked",
	 "public_key=" KA "\nallowed_ip=10.5.6.7/16\nallowed_ip=fd00::1:2/100\n",
	 "allowed_ip=10.0.0.1/32\nallowed_ip=10.5.0.0/16\nallowed_ip=fd00::/100",
	 "allowed_ip=10.0.0.2/32", false},
	{"multiple peers in one request",
	 "public_key=" KA "\nallowed_ip=10.6.0.0/16\npublic_key=" KB "\nallowed_ip=::1/128\n",
	 "allowed_ip=10.0.0.1/32\nallowed_ip=10.6.0.0/16",
	 "allowed_ip=10.0.0.2/32\nallowed_ip=::1/128", false},
};

/* The allowed_ip lines of the peer with public key hex in a get response, sorted; NULL when
 * the peer is absent. */
static char *peer_ips(const char *resp, const char *hex)
{
	char key[80], *lines[64], *copy, *out, *save = NULL;
	const char *p;
	size_t n = 0, used = 0;

	snprintf(key, sizeof(key), "public_key=%s\n", hex);
	p = strstr(resp, key);
	if (!p)
		return NULL;
	copy = strdup(p + strlen(key));
	out = calloc(1, strlen(resp) + 1);
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "public_key=", 11) || !strncmp(l, "errno=", 6))
			break;
		if (!strncmp(l, "allowed_ip=", 11))
			lines[n++] = l;
	}
	qsort(lines, n, sizeof(*lines), cmp_str);
	for (size_t i = 0; i < n; i++)
		used += (size_t)sprintf(out + used, "%s%s", i ? "\n" : "", lines[i]);
	free(copy);
	return out;
}

static void test_peer_operations(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(peer_cases); i++) {
		const struct peer_case *c = &peer_cases[i];
		struct wg_device *dev = bare_device();
		char req[1024], *r, *a, *b;

		set_ok(dev, "set=1\npublic_key=" KA "\nallowed_ip=10.0.0.1/32\n"
			    "public_key=" KB "\nallowed_ip=10.0.0.2/32\n\n");
		snprintf(req, sizeof(req), "set=1\n%s\n", c->set);
		set_ok(dev, req);
		r = get(dev);
		a = peer_ips(r, KA);
		b = peer_ips(r, KB);
		if ((a == NULL) != (c->want_a == NULL) || (a && strcmp(a, c->want_a)) ||
		    (b == NULL) != (c->want_b == NULL) || (b && strcmp(b, c->want_b)) ||
		    (strstr(r, KC) != NULL) != c->c_exists)
			fail_msg("%s: got\n%s", c->name, r);
		assert_int_equal(dev->n_peers,
				 (c->want_a != NULL) + (c->want_b != NULL) + c->c_exists);
		free(a);
		free(b);
		free(r);
		h_device_free(dev);
	}
}

static void test_keys(void **state)
{
	struct wg_device *dev = bare_device();
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	char hpriv[65], hpub[65], req[512], *r;

	/* An unclamped private key reads back clamped, as the kernel's does. */
	memset(priv, 0xff, sizeof(priv));
	key_to_hex(hpriv, priv);
	snprintf(req, sizeof(req), "set=1\nprivate_key=%s\n\n", hpriv);
	set_ok(dev, req);
	key_clamp(priv);
	key_to_hex(hpriv, priv);
	r = get(dev);
	assert_non_null(strstr(r, hpriv));
	free(r);

	/* Our own public key as a peer is ignored, with its lines. */
	assert_int_equal(key_public_from_private(pub, priv), 0);
	key_to_hex(hpub, pub);
	snprintf(req, sizeof(req), "set=1\npublic_key=%s\nallowed_ip=10.0.0.0/8\n\n", hpub);
	set_ok(dev, req);
	assert_int_equal(dev->n_peers, 0);

	/* A zero preshared key means none. */
	set_ok(dev, "set=1\npublic_key=" KA "\npreshared_key=" KB "\n\n");
	r = get(dev);
	assert_non_null(strstr(r, "preshared_key=" KB "\n"));
	free(r);
	set_ok(dev, "set=1\npublic_key=" KA "\npreshared_key="
		    "0000000000000000000000000000000000000000000000000000000000000000\n\n");
	r = get(dev);
	assert_null(strstr(r, "preshared_key="));
	free(r);

	/* Taking a peer's key as our own drops that peer. */
	set_ok(dev, "set=1\npublic_key=" KA "\n\n");
	snprintf(req, sizeof(req), "set=1\npublic_key=%s\n\n", hpub);
	set_ok(dev, "set=1\nprivate_key="
		    "0000000000000000000000000000000000000000000000000000000000000000\n\n");
	set_ok(dev, req);
	assert_int_equal(dev->n_peers, 2);
	snprintf(req, sizeof(req), "set=1\nprivate_key=%s\n\n", hpriv);
	set_ok(dev, req);
	assert_int_equal(dev->n_peers, 1);

	/* A zero private key removes the identity. */
	set_ok(dev, "set=1\nprivate_key="
		    "0000000000000000000000000000000000000000000000000000000000000000\n\n");
	r = get(dev);
	assert_null(strstr(r, "private_key="));
	free(r);
	h_device_free(dev);
}

static void test_endpoints(void **state)
{
	static const struct {
		const char *set, *get;
	} cases[] = {
		{"1.2.3.4:1", "1.2.3.4:1"},
		{"255.255.255.255:65535", "255.255.255.255:65535"},
		{"0.0.0.0:0", "0.0.0.0:0"},
		{"[::1]:51820", "[::1]:51820"},
		{"[2001:DB8::A]:7", "[2001:db8::a]:7"},
		{"[::ffff:1.2.3.4]:9", "[::ffff:1.2.3.4]:9"},
		{"[fe80::1%2]:51820", "[fe80::1%2]:51820"},
	};
	struct wg_device *dev = bare_device();

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char req[256], want[128], *r;

		snprintf(req, sizeof(req), "set=1\npublic_key=" KA "\nendpoint=%s\n\n",
			 cases[i].set);
		set_ok(dev, req);
		snprintf(want, sizeof(want), "\nendpoint=%s\n", cases[i].get);
		r = get(dev);
		if (!strstr(r, want))
			fail_msg("endpoint=%s read back as\n%s", cases[i].set, r);
		free(r);
	}
	h_device_free(dev);
}

/*
 * wg(8) formats endpoints with getnameinfo(NI_NUMERICHOST), which names the scope of a
 * link-local address by interface ("fe80::1%eth0"), and wireguard-go accepts that. Only a
 * numeric scope is accepted here, so `wg set wg0 peer ... endpoint [fe80::1%eth0]:51820`
 * fails against wice.
 */
static void test_endpoint_scope_by_name(void **state)
{
	struct wg_device *dev = bare_device();
	char want[64], *r;

	snprintf(want, sizeof(want), "endpoint=[fe80::1%%%u]:51820\n", if_nametoindex("lo"));
	free(request(dev, "set=1\npublic_key=" KA "\nendpoint=[fe80::1%lo]:51820\n\n", 0));
	r = get(dev);
	assert_non_null(strstr(r, want));
	free(r);
	h_device_free(dev);
}

static void test_listen_port(void **state)
{
	struct wg_device *dev = bare_device();
	uint16_t p1 = free_port(), p2;
	char req[64], want[64], *r;
	int fd;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);

	snprintf(req, sizeof(req), "set=1\nlisten_port=%u\n\n", p1);
	set_ok(dev, req);
	assert_int_equal(dev->listen_port, p1);

	/* A port someone else holds: refused, the old one stays. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	p2 = ntohs(sin.sin_port);
	snprintf(req, sizeof(req), "set=1\nlisten_port=%u\n\n", p2);
	free(request(dev, req, EADDRINUSE));
	close(fd);
	snprintf(want, sizeof(want), "listen_port=%u\n", p1);
	r = get(dev);
	assert_non_null(strstr(r, want));
	free(r);
	assert_true(dev->udp4 >= 0);
	h_device_free(dev);
}

/* A line of UAPI_MAX_LINE characters (plus the newline): one too long. */
static char *long_line_request(void)
{
	static const char prefix[] = "set=1\nallowed_ip=";
	size_t n = sizeof(prefix) - 1 + UAPI_MAX_LINE + 3;
	char *req = malloc(n);

	assert_non_null(req);
	memcpy(req, prefix, sizeof(prefix) - 1);
	memset(req + sizeof(prefix) - 1, '1', n - (sizeof(prefix) - 1));
	/* The line from "allowed_ip=" is UAPI_MAX_LINE characters long. */
	req[6 + UAPI_MAX_LINE] = '\n';
	req[6 + UAPI_MAX_LINE + 1] = '\n';
	req[6 + UAPI_MAX_LINE + 2] = '\0';
	return req;
}

#define H63 "000000000000000000000000000000000000000000000000000000000000001"
#define H64 H63 "1"
#define H65 H64 "1"

static const struct {
	const char *req; /* peer lines are for the existing peer: "P" stands for its line */
	int err;
} malformed[] = {
	{"", EINVAL},
	{"\n", EINVAL},
	{"set=1", EINVAL},
	{"get=1\n", EINVAL},
	{"get=1\nlisten_port=1\n\n", EINVAL},
	{"get=2\n\n", EINVAL},
	{"set=2\n\n", EINVAL},
	{"GET=1\n\n", EINVAL},
	{"set=1\nlisten_port\n\n", EINVAL},
	{"set=1\n=\n\n", EINVAL},
	{"set=1\nbogus=1\n\n", EINVAL},
	{"set=1\nListen_port=1\n\n", EINVAL},
	{"set=1\nprivate_key=" H63 "\n\n", EINVAL},
	{"set=1\nprivate_key=" H65 "\n\n", EINVAL},
	{"set=1\nprivate_key=" H63 "g\n\n", EINVAL},
	{"set=1\nprivate_key=\n\n", EINVAL},
	{"set=1\nlisten_port=65536\n\n", EINVAL},
	{"set=1\nlisten_port=-1\n\n", EINVAL},
	{"set=1\nlisten_port=+1\n\n", EINVAL},
	{"set=1\nlisten_port=\n\n", EINVAL},
	{"set=1\nlisten_port= 1\n\n", EINVAL},
	{"set=1\nlisten_port=1x\n\n", EINVAL},
	{"set=1\nlisten_port=0x10\n\n", EINVAL},
	{"set=1\nlisten_port=99999999999999999999999\n\n", EINVAL},
	{"set=1\nfwmark=4294967296\n\n", EINVAL},
	{"set=1\nfwmark=-1\n\n", EINVAL},
	{"set=1\nreplace_peers=false\n\n", EINVAL},
	{"set=1\npublic_key=\n\n", EINVAL},
	{"set=1\npublic_key=" H63 "\n\n", EINVAL},
	{"set=1\npublic_key=" H65 "\n\n", EINVAL},
	{"P\nendpoint=127.0.0.1\n\n", EINVAL},
	{"P\nendpoint=127.0.0.1:\n\n", EINVAL},
	{"P\nendpoint=127.0.0.1:65536\n\n", EINVAL},
	{"P\nendpoint=127.0.0.1:-1\n\n", EINVAL},
	{"P\nendpoint=[::1]\n\n", EINVAL},
	{"P\nendpoint=[::1]:\n\n", EINVAL},
	{"P\nendpoint=[::1:51820\n\n", EINVAL},
	{"P\nendpoint=::1:51820\n\n", EINVAL},
	{"P\nendpoint=[127.0.0.1]:1\n\n", EINVAL},
	{"P\nendpoint=example.com:1\n\n", EINVAL},
	{"P\nendpoint=1.2.3:4\n\n", EINVAL},
	{"P\nendpoint=\n\n", EINVAL},
	{"P\nendpoint=[fe80::1%]:1\n\n", EINVAL},
	{"P\nallowed_ip=10.0.0.0/33\n\n", EINVAL},
	{"P\nallowed_ip=fd00::/129\n\n", EINVAL},
	{"P\nallowed_ip=10.0.0.0/-1\n\n", EINVAL},
	{"P\nallowed_ip=10.0.0.0/\n\n", EINVAL},
	{"P\nallowed_ip=10.0.0.0/8/8\n\n", EINVAL},
	{"P\nallowed_ip=/8\n\n", EINVAL},
	{"P\nallowed_ip=\n\n", EINVAL},
	{"P\nallowed_ip=10.0.0.256/32\n\n", EINVAL},
	{"P\nallowed_ip=[::1]/128\n\n", EINVAL},
	{"P\npersistent_keepalive_interval=65536\n\n", EINVAL},
	{"P\npersistent_keepalive_interval=-1\n\n", EINVAL},
	{"P\npersistent_keepalive_interval=\n\n", EINVAL},
	{"P\npreshared_key=" H63 "\n\n", EINVAL},
	{"P\npreshared_key=" H65 "\n\n", EINVAL},
	{"P\npreshared_key=\n\n", EINVAL},
	{"P\nprotocol_version=2\n\n", EPROTONOSUPPORT},
	{"P\nprotocol_version=\n\n", EPROTONOSUPPORT},
	{"P\nremove=false\n\n", EINVAL},
	{"P\nupdate_only=1\n\n", EINVAL},
	{"P\nreplace_allowed_ips=yes\n\n", EINVAL},
	{"P\nbogus=1\n\n", EINVAL},
	{"P\nlisten_port=1\n\n", EINVAL},
	{"P\nprivate_key=" H64 "\n\n", EINVAL},
};

/* The device keeps its configuration through every bad request and still shakes hands. */
static void test_malformed(void **state)
{
	struct hdev a, b;
	char pline[128], hex[65], *base, *r, *req;
	static const char nul_req[] = "set=1\nlisten_port=1\0 2\n\n";

	assert_int_equal(h_pair_new(&a, &b, "persistent_keepalive_interval=0\n", ""), 0);
	key_to_hex(hex, b.pub);
	snprintf(pline, sizeof(pline), "set=1\npublic_key=%s", hex);
	base = get(a.dev);

	for (size_t i = 0; i < ARRAY_SIZE(malformed); i++) {
		const char *m = malformed[i].req;
		char tail[32];

		if (m[0] == 'P') {
			req = malloc(strlen(pline) + strlen(m));
			assert_non_null(req);
			sprintf(req, "%s%s", pline, m + 1);
		} else {
			req = strdup(m);
		}
		r = request(a.dev, req, malformed[i].err);
		snprintf(tail, sizeof(tail), "errno=%d\n\n", malformed[i].err);
		if (strcmp(r, tail))
			fail_msg("\"%s\" answered \"%s\"", req, r);
		free(r);
		free(req);
		r = get(a.dev);
		if (strcmp(r, base))
			fail_msg("after \"%s\":\n%s\nexpected\n%s", malformed[i].req, r, base);
		free(r);
	}

	req = long_line_request();
	free(request(a.dev, req, EINVAL));
	free(req);
	free(request_len(a.dev, nul_req, sizeof(nul_req) - 1, EINVAL));
	r = get(a.dev);
	assert_string_equal(r, base);
	free(r);
	free(base);

	h_handshake(&a, &b);
	assert_non_null(h_peer(&a, &b)->keypairs.current);
	assert_non_null(h_peer(&b, &a)->keypairs.current);
	h_dev_free(&a);
	h_dev_free(&b);
}

/* get shows what handshakes and traffic did. */
static void test_get_after_handshake(void **state)
{
	struct hdev a, b;
	char want[64], *r;

	assert_int_equal(h_pair_new(&a, &b, "", ""), 0);
	h_handshake(&a, &b);
	r = get(a.dev);
	assert_null(strstr(r, "last_handshake_time_sec=0\n"));
	snprintf(want, sizeof(want), "tx_bytes=%u\n", 148 + 32);
	assert_non_null(strstr(r, want));
	snprintf(want, sizeof(want), "endpoint=127.0.0.1:%u\n", b.dev->listen_port);
	assert_non_null(strstr(r, want));
	free(r);
	h_dev_free(&a);
	h_dev_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_response_format, h_teardown),
		cmocka_unit_test_teardown(test_round_trip, h_teardown),
		cmocka_unit_test_teardown(test_peer_operations, h_teardown),
		cmocka_unit_test_teardown(test_keys, h_teardown),
		cmocka_unit_test_teardown(test_endpoints, h_teardown),
		cmocka_unit_test_teardown(test_endpoint_scope_by_name, h_teardown),
		cmocka_unit_test_teardown(test_listen_port, h_teardown),
		cmocka_unit_test_teardown(test_malformed, h_teardown),
		cmocka_unit_test_teardown(test_get_after_handshake, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
