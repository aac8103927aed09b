// SPDX-License-Identifier: MIT
/*
 * The sticky source (wg_endpoint.src): on the loopback's 127.0.0.0/8, a datagram sent to
 * 127.0.0.2 reaches a socket from udp_open, udp_pktinfo_get reads 127.0.0.2 as its local
 * address, and a reply with udp_pktinfo_put leaves from it (routing alone picks 127.0.0.1).
 * And what send.c relies on: a source the host does not have is refused, ENETUNREACH for
 * IPv4 and EINVAL for IPv6 (send.c retries without it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include "wg/udp.h"

union control {
	char buf[UDP_PKTINFO_SPACE + CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

/* Sends one byte from fd to to, from ep's src if it has one. 0 or -errno. */
static int send_from(int fd, const struct wg_endpoint *to)
{
	union control c;
	char byte = 'x';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr h = {
		.msg_name = (void *)&to->sa,
		.msg_namelen = endpoint_len(to),
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = c.buf,
		.msg_controllen = sizeof(c.buf),
	};

	h.msg_controllen = udp_pktinfo_put(CMSG_FIRSTHDR(&h), to);
	if (!h.msg_controllen)
		h.msg_control = NULL;
	return sendmsg(fd, &h, 0) < 0 ? -errno : 0;
}

/* Receives one datagram on fd: its sender and, through udp_pktinfo_get, its local address. */
static void recv_one(int fd, struct wg_endpoint *from)
{
	union control c;
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr h = {
		.msg_name = &from->sa,
		.msg_namelen = sizeof(from->in6),
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = c.buf,
		.msg_controllen = sizeof(c.buf),
	};
	struct timeval tv = {.tv_sec = 2};

	memset(from, 0, sizeof(*from));
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(recvmsg(fd, &h, 0), 1);
	udp_pktinfo_get(&h, from);
}

static int plain_socket(int family, struct wg_endpoint *bound)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;
	socklen_t sl = sizeof(bound->in6);

	assert_true(fd >= 0);
	if (family == AF_INET)
		assert_int_equal(setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)), 0);
	else
		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)),
				 0);
	memset(bound, 0, sizeof(*bound));
	bound->sa.sa_family = (sa_family_t)family;
	assert_int_equal(bind(fd, &bound->sa, endpoint_len(bound)), 0);
	assert_int_equal(getsockname(fd, &bound->sa, &sl), 0);
	return fd;
}

static void test_ipv4_reply_from_the_address_sent_to(void **state)
{
	struct wg_endpoint client, to = {0}, from, back;
	uint16_t port;
	bool gro;
	int srv4, srv6, cli;

	(void)state;
	assert_int_equal(udp_open(0, 0, &srv4, &srv6, &port, &gro), 0);
	cli = plain_socket(AF_INET, &client);
	to.in4.sin_family = AF_INET;
	to.in4.sin_port = htons(port);
	inet_pton(AF_INET, "127.0.0.2", &to.in4.sin_addr);
	assert_int_equal(send_from(cli, &to), 0);

	recv_one(srv4, &from);
	assert_true(endpoint_has_src(&from));
	assert_int_equal(from.src4.s_addr, to.in4.sin_addr.s_addr);
	assert_int_equal(from.in4.sin_port, client.in4.sin_port);

	/* Routing alone: the loopback route's preferred source, 127.0.0.1. */
	from.src4.s_addr = 0;
	assert_int_equal(send_from(srv4, &from), 0);
	recv_one(cli, &back);
	assert_int_equal(back.in4.sin_addr.s_addr, htonl(INADDR_LOOPBACK));

	/* With the sticky source: from 127.0.0.2, where the client sent. */
	from.src4 = to.in4.sin_addr;
	assert_int_equal(send_from(srv4, &from), 0);
	recv_one(cli, &back);
	assert_int_equal(back.in4.sin_addr.s_addr, to.in4.sin_addr.s_addr);
	assert_int_equal(back.in4.sin_port, htons(port));

	/* A source the host does not have (TEST-NET-1): no route from it. */
	inet_pton(AF_INET, "192.0.2.1", &from.src4);
	int r = send_from(srv4, &from);

	assert_int_equal(r, -ENETUNREACH);
	close(cli);
	close(srv4);
	if (srv6 >= 0)
		close(srv6);
}

static void test_ipv6_source(void **state)
{
	struct wg_endpoint client, to = {0}, from, back;
	uint16_t port;
	bool gro;
	int srv4, srv6, cli;

	(void)state;
	assert_int_equal(udp_open(0, 0, &srv4, &srv6, &port, &gro), 0);
	if (srv6 < 0) {
		close(srv4);
		skip();
	}
	cli = plain_socket(AF_INET6, &client);
	to.in6.sin6_family = AF_INET6;
	to.in6.sin6_port = htons(port);
	to.in6.sin6_addr = in6addr_loopback;
	assert_int_equal(send_from(cli, &to), 0);

	recv_one(srv6, &from);
	assert_true(endpoint_has_src(&from));
	assert_memory_equal(&from.src6, &in6addr_loopback, sizeof(from.src6));
	assert_int_equal(send_from(srv6, &from), 0);
	recv_one(cli, &back);
	assert_memory_equal(&back.in6.sin6_addr, &in6addr_loopback, 16);

	inet_pton(AF_INET6, "2001:db8::1", &from.src6);
	int r = send_from(srv6, &from);

	assert_int_equal(r, -EINVAL);
	close(cli);
	close(srv4);
	close(srv6);
}

static void test_no_src_no_control(void **state)
{
	struct wg_endpoint ep = {0};
	union control c;

	(void)state;
	ep.in4.sin_family = AF_INET;
	assert_false(endpoint_has_src(&ep));
	assert_int_equal(udp_pktinfo_put(&c.align, &ep), 0);
	ep.in6.sin6_family = AF_INET6;
	assert_int_equal(udp_pktinfo_put(&c.align, &ep), 0);
	/* The remote address and port alone are not "equal" once the sources differ. */
	struct wg_endpoint a = {0}, b = {0};

	a.in4.sin_family = b.in4.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.2", &b.src4);
	assert_false(endpoint_equal(&a, &b));
	b.src4.s_addr = 0;
	assert_true(endpoint_equal(&a, &b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_reply_from_the_address_sent_to),
		cmocka_unit_test(test_ipv6_source),
		cmocka_unit_test(test_no_src_no_control),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
