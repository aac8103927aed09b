// SPDX-License-Identifier: MIT
/*
 * wgctl, UAPI: the parser on canned responses and the client against a fake implementation on
 * a unix socket in a temporary directory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/rtnetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include "daemon/wgctl.h"
#include "daemon/wgctl_internal.h"
#include "test_wgctl.h"

/* ---- the UAPI parser on canned responses ---- */

static const char full_response[] =
	"private_key=" PRIV_HEX "\n"
	"listen_port=51820\n"
	"fwmark=4660\n"
	"public_key=" PEER1_HEX "\n"
	"preshared_key=" PSK_HEX "\n"
	"protocol_version=1\n"
	"endpoint=192.0.2.10:51821\n"
	"last_handshake_time_sec=1700000000\n"
	"last_handshake_time_nsec=123456789\n"
	"tx_bytes=1000\n"
	"rx_bytes=18446744073709551615\n"
	"persistent_keepalive_interval=25\n"
	"allowed_ip=10.0.0.2/32\n"
	"allowed_ip=fd00:1::/64\n"
	"public_key=" PEER2_HEX "\n"
	"preshared_key=" /* all zero: none */
	"0000000000000000000000000000000000000000000000000000000000000000\n"
	"protocol_version=1\n"
	"endpoint=[2001:db8::1]:51822\n"
	"last_handshake_time_sec=0\n"
	"last_handshake_time_nsec=0\n"
	"tx_bytes=0\n"
	"rx_bytes=0\n"
	"persistent_keepalive_interval=0\n"
	"errno=0\n"
	"\n";

static void check_full_device(const struct wgctl_device *dev, const char *name)
{
	const struct wgctl_peer *p;

	assert_string_equal(dev->name, name);
	assert_true(dev->has_private_key);
	assert_key(dev->private_key, PRIV_HEX);
	assert_key(dev->public_key, PUB_HEX); /* derived: the UAPI does not print it */
	assert_int_equal(dev->listen_port, 51820);
	assert_int_equal(dev->fwmark, 4660);
	assert_int_equal(dev->n_peers, 2);

	p = &dev->peers[0];
	assert_key(p->public_key, PEER1_HEX);
	assert_true(p->has_preshared_key);
	assert_key(p->preshared_key, PSK_HEX);
	assert_ep4(&p->endpoint, "192.0.2.10", 51821);
	assert_int_equal(p->last_handshake.tv_sec, 1700000000);
	assert_int_equal(p->last_handshake.tv_nsec, 123456789);
	assert_int_equal(p->tx_bytes, 1000);
	assert_true(p->rx_bytes == UINT64_MAX);
	assert_int_equal(p->persistent_keepalive, 25);
	assert_int_equal(p->n_allowed_ips, 2);
	assert_aip(&p->allowed_ips[0], "10.0.0.2", 32);
	assert_aip(&p->allowed_ips[1], "fd00:1::", 64);

	p = &dev->peers[1];
	assert_key(p->public_key, PEER2_HEX);
	assert_false(p->has_preshared_key);
	assert_ep6(&p->endpoint, "2001:db8::1", 51822, 0);
	assert_int_equal(p->n_allowed_ips, 0);
	assert_int_equal(p->persistent_keepalive, 0);
}

void test_uapi_parse_full(void **state)
{
	struct wgctl_device *dev = NULL;

	assert_int_equal(wgctl_uapi_parse(full_response, strlen(full_response), "wg0", &dev), 0);
	check_full_device(dev, "wg0");
	assert_null(wgctl_device_free(dev));
}

void test_uapi_parse_no_key_no_peers(void **state)
{
	static const char resp[] = "listen_port=1\nerrno=0\n\n";
	struct wgctl_device *dev = NULL;

	assert_int_equal(wgctl_uapi_parse(resp, strlen(resp), "wg1", &dev), 0);
	assert_false(dev->has_private_key);
	assert_int_equal(dev->listen_port, 1);
	assert_int_equal(dev->n_peers, 0);
	assert_null(dev->peers);
	assert_null(wgctl_device_free(dev));
	assert_null(wgctl_device_free(NULL));
}

void test_uapi_parse_multiple_peers(void **state)
{
	static const char resp[] = "public_key=" PEER1_HEX "\n"
				   "allowed_ip=10.0.1.0/24\n"
				   "public_key=" PEER2_HEX "\n"
				   "endpoint=[fe80::1%7]:1\n"
				   "allowed_ip=10.0.2.0/24\n"
				   "allowed_ip=::/0\n"
				   "allowed_ip=0.0.0.0/0\n"
				   "public_key=" PEER3_HEX "\n"
				   "future_key=whatever\n" /* from a newer implementation */
				   "errno=0\n\n";
	struct wgctl_device *dev = NULL;

	assert_int_equal(wgctl_uapi_parse(resp, strlen(resp), "wg0", &dev), 0);
	assert_int_equal(dev->n_peers, 3);
	assert_key(dev->peers[0].public_key, PEER1_HEX);
	assert_int_equal(dev->peers[0].n_allowed_ips, 1);
	assert_aip(&dev->peers[0].allowed_ips[0], "10.0.1.0", 24);
	assert_int_equal(dev->peers[0].endpoint.ss_family, AF_UNSPEC);
	assert_key(dev->peers[1].public_key, PEER2_HEX);
	assert_ep6(&dev->peers[1].endpoint, "fe80::1", 1, 7);
	assert_int_equal(dev->peers[1].n_allowed_ips, 3);
	assert_aip(&dev->peers[1].allowed_ips[1], "::", 0);
	assert_aip(&dev->peers[1].allowed_ips[2], "0.0.0.0", 0);
	assert_key(dev->peers[2].public_key, PEER3_HEX);
	assert_int_equal(dev->peers[2].n_allowed_ips, 0);
	assert_ptr_equal(wgctl_device_find_peer(dev, dev->peers[2].public_key), &dev->peers[2]);
	wgctl_device_free(dev);
}

void test_uapi_endpoints(void **state)
{
	static const struct {
		const char *text;
		int family;
		const char *addr;
		uint16_t port;
		uint32_t scope;
	} good[] = {
		{"192.0.2.1:51820", AF_INET, "192.0.2.1", 51820, 0},
		{"0.0.0.0:0", AF_INET, "0.0.0.0", 0, 0},
		{"[::1]:65535", AF_INET6, "::1", 65535, 0},
		{"[2001:db8::1]:1", AF_INET6, "2001:db8::1", 1, 0},
		{"[fe80::1%3]:51820", AF_INET6, "fe80::1", 51820, 3},
		{"[fe80::1%lo]:9", AF_INET6, "fe80::1", 9, 0 /* if_nametoindex("lo") */},
		{"[::ffff:192.0.2.1]:5", AF_INET6, "::ffff:192.0.2.1", 5, 0},
	};
	static const char *const bad[] = {
		"",
		"192.0.2.1",
		"192.0.2.1:",
		"192.0.2.1:65536",
		"192.0.2.1:-1",
		"192.0.2.1:+1",
		"192.0.2.1: 1",
		"192.0.2.256:1",
		"::1:51820",
		"[::1]51820",
		"[::1]:",
		"[::1:1",
		"[1.2.3.4]:1",
		"[fe80::1%]:1",
		"[fe80::1%nosuchif0]:1",
		"host.example:1",
		"[fe80::1%4294967296]:1",
	};
	struct sockaddr_storage ss;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		uint32_t scope = good[i].scope;

		if (strstr(good[i].text, "%lo"))
			scope = if_nametoindex("lo");
		assert_int_equal(wgctl_uapi_parse_endpoint(good[i].text, &ss), 0);
		if (good[i].family == AF_INET)
			assert_ep4(&ss, good[i].addr, good[i].port);
		else
			assert_ep6(&ss, good[i].addr, good[i].port, scope);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ss.ss_family = 0x5a5a;
		if (wgctl_uapi_parse_endpoint(bad[i], &ss) != -EBADMSG)
			fail_msg("endpoint \"%s\" accepted", bad[i]);
		assert_int_equal(ss.ss_family, 0x5a5a); /* untouched on error */
	}
}

void test_uapi_parse_malformed(void **state)
{
	static const struct {
		const char *resp;
		int want;
	} cases[] = {
		{"", -EBADMSG},
		{"\n", -EBADMSG},			/* no errno line */
		{"listen_port=1\nerrno=0\n", -EBADMSG}, /* no blank line: truncated */
		{"junk\nerrno=0\n\n", -EBADMSG},	/* no '=' */
		{"=1\nerrno=0\n\n", -EBADMSG},		/* no key */
		{"listen_port=abc\nerrno=0\n\n", -EBADMSG},
		{"listen_port=65536\nerrno=0\n\n", -EBADMSG},
		{"listen_port= 1\nerrno=0\n\n", -EBADMSG},
		{"listen_port=\nerrno=0\n\n", -EBADMSG},
		{"fwmark=4294967296\nerrno=0\n\n", -EBADMSG},
		{"private_key=zz\nerrno=0\n\n", -EBADMSG},
		{"private_key=" PRIV_HEX "00\nerrno=0\n\n", -EBADMSG},
		{"public_key=" PEER1_HEX "x\nerrno=0\n\n", -EBADMSG},
		{"endpoint=192.0.2.1:1\nerrno=0\n\n", -EBADMSG},  /* peer line before any peer */
		{"allowed_ip=10.0.0.0/8\nerrno=0\n\n", -EBADMSG}, /* same */
		{"public_key=" PEER1_HEX "\nlisten_port=1\nerrno=0\n\n",
		 -EBADMSG}, /* device after */
		{"public_key=" PEER1_HEX "\nallowed_ip=10.0.0.0/33\nerrno=0\n\n", -EBADMSG},
		{"public_key=" PEER1_HEX "\nallowed_ip=::/129\nerrno=0\n\n", -EBADMSG},
		{"public_key=" PEER1_HEX "\nallowed_ip=10.0.0.0\nerrno=0\n\n", -EBADMSG},
		{"public_key=" PEER1_HEX "\nallowed_ip=10.0.0/8\nerrno=0\n\n", -EBADMSG},
		{"public_key=" PEER1_HEX "\nendpoint=nope\nerrno=0\n\n", -EBADMSG},
		{"public_key=" PEER1_HEX "\nlast_handshake_time_nsec=1000000000\nerrno=0\n\n",
		 -EBADMSG},
		{"public_key=" PEER1_HEX "\npersistent_keepalive_interval=65536\nerrno=0\n\n",
		 -EBADMSG},
		{"public_key=" PEER1_HEX "\nrx_bytes=18446744073709551616\nerrno=0\n\n", -EBADMSG},
		{"public_key=" PEER1_HEX "\nprotocol_version=2\nerrno=0\n\n", -EPROTO},
		{"errno=0\nlisten_port=1\n\n", -EBADMSG}, /* errno is the last line */
		{"errno=abc\n\n", -EBADMSG},
		{"errno=99999\n\n", -EBADMSG},
		{"errno=22\n\n", -EINVAL},  /* wice, wireguard-tools */
		{"errno=-22\n\n", -EINVAL}, /* wireguard-go */
		{"listen_port=1\nerrno=0\n\ntrailing", 0},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct wgctl_device *dev = NULL;
		int r = wgctl_uapi_parse(cases[i].resp, strlen(cases[i].resp), "wg0", &dev);

		if (r != cases[i].want)
			fail_msg("case %zu (%s): got %d, want %d", i, cases[i].resp, r,
				 cases[i].want);
		assert_true((r == 0) == (dev != NULL)); /* ret_ written only on success */
		wgctl_device_free(dev);
	}
}

void test_uapi_parse_nul_and_long_lines(void **state)
{
	static const char nul[] = "listen_port=1\0\nerrno=0\n\n";
	char longline[WGCTL_UAPI_MAX_LINE + 64];
	struct wgctl_device *dev = NULL;
	int n;

	assert_int_equal(wgctl_uapi_parse(nul, sizeof(nul) - 1, "wg0", &dev), -EBADMSG);
	/* An unknown key is ignored, but not past the line limit. */
	n = snprintf(longline, sizeof(longline), "x=%0*d\nerrno=0\n\n", WGCTL_UAPI_MAX_LINE - 2, 0);
	assert_int_equal(wgctl_uapi_parse(longline, (size_t)n, "wg0", &dev), 0);
	wgctl_device_free(dev);
	dev = NULL;
	n = snprintf(longline, sizeof(longline), "x=%0*d\nerrno=0\n\n", WGCTL_UAPI_MAX_LINE - 1, 0);
	assert_int_equal(wgctl_uapi_parse(longline, (size_t)n, "wg0", &dev), -EBADMSG);
	assert_null(dev);
}

static char *repeat_lines(const char *head, const char *line, size_t count, size_t *ret_len)
{
	size_t hl = strlen(head), ll = strlen(line), len = hl + ll * count + 10;
	char *buf = malloc(len), *p = buf;

	assert_non_null(buf);
	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < count; i++, p += ll)
		memcpy(p, line, ll);
	memcpy(p, "errno=0\n\n", 9);
	*ret_len = (size_t)(p + 9 - buf);
	return buf;
}

void test_uapi_parse_limits(void **state)
{
	struct wgctl_device *dev = NULL;
	size_t len;
	char *buf;

	/* Allowed IPs of one peer: the limit itself is fine, one more is not. */
	buf = repeat_lines("public_key=" PEER1_HEX "\n", "allowed_ip=10.0.0.0/8\n",
			   WGCTL_MAX_ALLOWED_IPS, &len);
	assert_int_equal(wgctl_uapi_parse(buf, len, "wg0", &dev), 0);
	assert_int_equal(dev->peers[0].n_allowed_ips, WGCTL_MAX_ALLOWED_IPS);
	dev = wgctl_device_free(dev);
	free(buf);
	buf = repeat_lines("public_key=" PEER1_HEX "\n", "allowed_ip=10.0.0.0/8\n",
			   WGCTL_MAX_ALLOWED_IPS + 1, &len);
	assert_int_equal(wgctl_uapi_parse(buf, len, "wg0", &dev), -E2BIG);
	free(buf);

	/* Peers (the same key over and over: the parser does not look for duplicates). */
	buf = repeat_lines("", "public_key=" PEER1_HEX "\n", WGCTL_MAX_PEERS + 1, &len);
	assert_int_equal(wgctl_uapi_parse(buf, len, "wg0", &dev), -E2BIG);
	assert_null(dev);
	free(buf);
}

void test_uapi_format(void **state)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(51820)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(7)};
	uint8_t pub[WGCTL_KEY_LEN];
	char buf[256];
	int n;

	hex_key(pub, PEER1_HEX);
	inet_pton(AF_INET, "198.51.100.4", &in.sin_addr);
	inet_pton(AF_INET6, "fe80::2", &in6.sin6_addr);
	n = wgctl_uapi_format_set_endpoint(buf, sizeof(buf), pub, (struct sockaddr *)&in,
					   sizeof(in));
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf, "set=1\npublic_key=" PEER1_HEX
				 "\nupdate_only=true\nendpoint=198.51.100.4:51820\n\n");
	in6.sin6_scope_id = 4;
	assert_true(wgctl_uapi_format_endpoint(buf, sizeof(buf), (struct sockaddr *)&in6,
					       sizeof(in6)) > 0);
	assert_string_equal(buf, "[fe80::2%4]:7");
	in6.sin6_scope_id = 0;
	assert_true(wgctl_uapi_format_endpoint(buf, sizeof(buf), (struct sockaddr *)&in6,
					       sizeof(in6)) > 0);
	assert_string_equal(buf, "[fe80::2]:7");

	/* Only exact sockaddr_in / sockaddr_in6, and the text must fit. */
	assert_int_equal(
		wgctl_uapi_format_endpoint(buf, sizeof(buf), (struct sockaddr *)&in, sizeof(in6)),
		-EINVAL);
	in.sin_family = AF_UNIX;
	assert_int_equal(
		wgctl_uapi_format_endpoint(buf, sizeof(buf), (struct sockaddr *)&in, sizeof(in)),
		-EAFNOSUPPORT);
	assert_int_equal(wgctl_uapi_format_endpoint(buf, 5, (struct sockaddr *)&in6, sizeof(in6)),
			 -ENOBUFS);
}

void test_ifname_valid(void **state)
{
	static const char *const good[] = {"wg0", "a", "wg-quick_1.2", "123456789012345"};
	static const char *const bad[] = {
		"", ".", "..", "../x", "a/b", "a:b", "a b", "a\tb", "1234567890123456"};

	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_true(wgctl_ifname_valid(good[i]));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_false(wgctl_ifname_valid(bad[i]));
	assert_false(wgctl_ifname_valid(NULL));
}

void test_names_sorted_unique(void **state)
{
	struct wgctl_names names = {0};
	char **v;
	size_t n;

	assert_int_equal(wgctl_names_add(&names, "wg1"), 0);
	assert_int_equal(wgctl_names_add(&names, "wg0"), 0);
	assert_int_equal(wgctl_names_add(&names, "wg1"), 0);
	wgctl_names_finish(&names, &v, &n);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "wg0");
	assert_string_equal(v[1], "wg1");
	assert_null(wgctl_names_free(v, n));
	assert_null(wgctl_names_free(NULL, 0));
}

/* ---- the UAPI client against a fake implementation ---- */

struct exchange {
	const char *response; /* NULL: read the request, then hang until released */
	char request[512];
};

struct fake {
	char dir[64];
	char path[128];
	int listen_fd;
	int release[2]; /* a pipe: a hung exchange ends when it is written to */
	struct exchange *ex;
	size_t n_ex;
	pthread_t thread;
};

static struct fake fake;

static size_t read_request(int fd, char *buf, size_t size)
{
	size_t used = 0;

	while (used + 1 < size) {
		ssize_t n = read(fd, buf + used, size - 1 - used);

		if (n <= 0)
			break;
		used += (size_t)n;
		buf[used] = '\0';
		if (used >= 2 && strstr(buf, "\n\n"))
			break;
	}
	buf[used] = '\0';
	return used;
}

/* Serves the scripted exchanges in order; connections that send nothing are liveness probes. */
static void *fake_main(void *arg)
{
	size_t i = 0;

	while (i < fake.n_ex) {
		int fd = accept(fake.listen_fd, NULL, NULL);
		struct exchange *ex = &fake.ex[i];

		if (fd < 0)
			break;
		if (read_request(fd, ex->request, sizeof(ex->request)) == 0) {
			close(fd);
			continue;
		}
		if (ex->response) {
			ssize_t n = write(fd, ex->response, strlen(ex->response));

			(void)n;
		} else {
			char c;
			ssize_t n = read(fake.release[0], &c, 1);

			(void)n;
		}
		close(fd);
		i++;
	}
	return NULL;
}

int fake_setup(void **state)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	memset(&fake, 0, sizeof(fake));
	snprintf(fake.dir, sizeof(fake.dir), "/tmp/wgctl-test.XXXXXX");
	if (!mkdtemp(fake.dir))
		return -1;
	setenv(WGCTL_UAPI_DIR_ENV, fake.dir, 1);
	snprintf(fake.path, sizeof(fake.path), "%s/wgfake0.sock", fake.dir);
	memcpy(sun.sun_path, fake.path, strlen(fake.path) + 1);
	fake.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fake.listen_fd < 0 || bind(fake.listen_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fake.listen_fd, 8) < 0 || pipe(fake.release) < 0)
		return -1;
	return 0;
}

static void fake_start(struct exchange *ex, size_t n)
{
	fake.ex = ex;
	fake.n_ex = n;
	assert_int_equal(pthread_create(&fake.thread, NULL, fake_main, NULL), 0);
}

int fake_teardown(void **state)
{
	static const char *const extra[] = {"stale0.sock", "file0.sock"};
	char path[192];

	close(fake.listen_fd);
	close(fake.release[0]);
	close(fake.release[1]);
	unlink(fake.path);
	/* Other files a test made in the directory. */
	for (size_t i = 0; i < ARRAY_SIZE(extra); i++) {
		snprintf(path, sizeof(path), "%s/%s", fake.dir, extra[i]);
		unlink(path);
	}
	rmdir(fake.dir);
	unsetenv(WGCTL_UAPI_DIR_ENV);
	return 0;
}

void test_uapi_client(void **state)
{
	struct exchange ex[] = {
		{.response = full_response},
		{.response = "errno=0\n\n"},
		{.response = "errno=-22\n\n"},
		{.response = "listen_port=1\n"}, /* then closes: truncated */
	};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(4242)};
	struct wgctl_device *dev = NULL;
	uint8_t pub[WGCTL_KEY_LEN];
	bool found;
	char **names;
	size_t n;

	hex_key(pub, PEER2_HEX);
	inet_pton(AF_INET6, "2001:db8::7", &in6.sin6_addr);
	fake_start(ex, ARRAY_SIZE(ex));

	/* Discovery: the live socket is found (each probe is an empty connection). */
	assert_ptr_equal(wgctl_for("wgfake0"), &wgctl_uapi);
	assert_int_equal(wgctl_uapi.list(&names, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "wgfake0");
	wgctl_names_free(names, n);
	assert_int_equal(wgctl_list_all(&names, &n), 0);
	found = false;
	for (size_t i = 0; i < n; i++)
		found |= !strcmp(names[i], "wgfake0");
	assert_true(found);
	wgctl_names_free(names, n);

	assert_int_equal(wgctl_uapi.get("wgfake0", &dev), 0);
	check_full_device(dev, "wgfake0");
	wgctl_device_free(dev);
	dev = NULL;

	assert_int_equal(
		wgctl_uapi.set_endpoint("wgfake0", pub, (struct sockaddr *)&in6, sizeof(in6)), 0);
	assert_int_equal(
		wgctl_uapi.set_endpoint("wgfake0", pub, (struct sockaddr *)&in6, sizeof(in6)),
		-EINVAL);
	assert_int_equal(wgctl_uapi.get("wgfake0", &dev), -EBADMSG);
	assert_null(dev);
	pthread_join(fake.thread, NULL);

	assert_string_equal(ex[0].request, "get=1\n\n");
	assert_string_equal(ex[1].request, "set=1\npublic_key=" PEER2_HEX "\n"
					   "update_only=true\n"
					   "endpoint=[2001:db8::7]:4242\n\n");
	assert_string_equal(ex[2].request, ex[1].request);
	assert_string_equal(ex[3].request, "get=1\n\n");

	/* Bad arguments never reach the socket. */
	assert_int_equal(wgctl_uapi.get("../wgfake0", &dev), -EINVAL);
	in6.sin6_family = AF_UNIX;
	assert_int_equal(
		wgctl_uapi.set_endpoint("wgfake0", pub, (struct sockaddr *)&in6, sizeof(in6)),
		-EAFNOSUPPORT);
}

void test_uapi_timeout(void **state)
{
	struct exchange ex[] = {{.response = NULL}};
	struct wgctl_device *dev = NULL;
	struct timespec t0, t1;
	double elapsed;

	fake_start(ex, ARRAY_SIZE(ex));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(wgctl_uapi.get("wgfake0", &dev), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_null(dev);
	assert_int_equal(write(fake.release[1], "x", 1), 1);
	pthread_join(fake.thread, NULL);
	assert_string_equal(ex[0].request, "get=1\n\n");
	elapsed = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(elapsed >= WGCTL_UAPI_TIMEOUT_MS - 10);
	assert_true(elapsed < WGCTL_UAPI_TIMEOUT_MS + 1000);
}

void test_uapi_stale_and_plain_files(void **state)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct wgctl_device *dev = NULL;
	char path[192];
	char **names;
	size_t n;
	int fd;

	/* A socket file whose owner died (bound, never unlinked), and a regular file. */
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/stale0.sock", fake.dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/file0.sock", fake.dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	close(fake.listen_fd); /* wgfake0.sock is now stale too */
	fake.listen_fd = -1;

	assert_int_equal(wgctl_uapi.list(&names, &n), 0);
	assert_int_equal(n, 0);
	wgctl_names_free(names, n);
	assert_ptr_equal(wgctl_for("stale0"), &wgctl_kernel);
	assert_ptr_equal(wgctl_for("file0"), &wgctl_kernel);
	assert_int_equal(wgctl_uapi.get("stale0", &dev), -ECONNREFUSED);
	assert_int_equal(wgctl_uapi.get("nothere0", &dev), -ENOENT);
	assert_null(dev);

	/* No directory at all is no interfaces, not an error. */
	setenv(WGCTL_UAPI_DIR_ENV, "/nonexistent/wgctl-test", 1);
	assert_int_equal(wgctl_uapi.list(&names, &n), 0);
	assert_int_equal(n, 0);
	wgctl_names_free(names, n);
	setenv(WGCTL_UAPI_DIR_ENV, fake.dir, 1);
}
