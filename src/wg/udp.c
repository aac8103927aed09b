/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "wg/udp.h"

#define SOCKET_BUFFER (4 << 20)

int udp_set_fwmark(int fd, uint32_t fwmark)
{
	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof(fwmark)) < 0)
		return -errno;
	return 0;
}

static int open_one(int family, uint16_t port, uint32_t fwmark, bool *gro, uint16_t *bound)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int fd, one = 1, buf = SOCKET_BUFFER, r;

	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0)
		return -errno;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		sl = sizeof(*a);
	}
	/* Large buffers absorb bursts (FORCE needs CAP_NET_ADMIN; fall back quietly). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (fwmark && (r = udp_set_fwmark(fd, fwmark)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		goto fail_errno;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		goto fail_errno;
	*bound = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					  : ((struct sockaddr_in *)&ss)->sin_port);
	*gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
	/* The local address of each datagram, for the replies' source (wg_endpoint.src). */
	if (family == AF_INET6)
		r = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	else
		r = setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	if (r < 0)
		goto fail_errno;
	return fd;
fail_errno:
	r = -errno;
fail:
	close(fd);
	return r;
}

size_t udp_pktinfo_put(struct cmsghdr *cm, const struct wg_endpoint *ep)
{
	if (!endpoint_has_src(ep))
		return 0;
	if (ep->sa.sa_family == AF_INET6) {
		struct in6_pktinfo pi = {.ipi6_addr = ep->src6};

		/* A link-local source means nothing without its link. */
		if (IN6_IS_ADDR_LINKLOCAL(&ep->src6))
			pi.ipi6_ifindex = (unsigned int)ep->src_ifindex;
		cm->cmsg_level = IPPROTO_IPV6;
		cm->cmsg_type = IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	/* ipi_ifindex 0: routing picks the device, for the source ipi_spec_dst. */
	struct in_pktinfo pi = {.ipi_spec_dst = ep->src4};

	cm->cmsg_level = IPPROTO_IP;
	cm->cmsg_type = IP_PKTINFO;
	cm->cmsg_len = CMSG_LEN(sizeof(pi));
	memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	return CMSG_SPACE(sizeof(pi));
}

void udp_pktinfo_get(const struct msghdr *h, struct wg_endpoint *ep)
{
	memset(&ep->src6, 0, sizeof(ep->src6));
	ep->src_ifindex = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR((struct msghdr *)h, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			/* spec_dst: the local address a reply would come from (for a broadcast
			 * destination, the interface's address). */
			ep->src4 = pi.ipi_spec_dst;
			ep->src_ifindex = pi.ipi_ifindex;
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
			   cm->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			if (IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr))
				continue;
			ep->src6 = pi.ipi6_addr;
			ep->src_ifindex = (int)pi.ipi6_ifindex;
		}
	}
}

int udp_open(uint16_t port, uint32_t fwmark, int *ret_fd4, int *ret_fd6, uint16_t *ret_port,
	     bool *ret_gro)
{
	bool gro4 = false, gro6 = false;
	uint16_t bound = port;
	int fd4, fd6 = -1;

	/* With port 0 the kernel picks for IPv4; IPv6 must then get the same one. Retry a few
	 * times in the rare case it is taken for IPv6. */
	for (int attempt = 0; attempt < 10; attempt++) {
		fd4 = open_one(AF_INET, port, fwmark, &gro4, &bound);
		if (fd4 < 0 && fd4 != -EAFNOSUPPORT)
			return fd4;
		fd6 = open_one(AF_INET6, fd4 >= 0 ? bound : port, fwmark, &gro6, &bound);
		if (fd6 >= 0 || fd6 == -EAFNOSUPPORT) {
			if (fd4 < 0 && fd6 < 0)
				return -EAFNOSUPPORT;
			break;
		}
		if (fd4 >= 0)
			close(fd4);
		if (fd6 != -EADDRINUSE || port)
			return fd6;
		fd4 = -1;
	}
	if (fd6 < 0)
		fd6 = -1;
	if (fd4 < 0 && fd6 < 0)
		return -EADDRINUSE;
	*ret_fd4 = fd4;
	*ret_fd6 = fd6;
	*ret_port = bound;
	*ret_gro = (fd4 < 0 || gro4) && (fd6 < 0 || gro6);
	return 0;
}
