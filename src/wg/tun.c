/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "util/log.h"
#include "wg/offload.h"
#include "wg/tun.h"

int tun_create(const char *name, char ret_name[static IFNAMSIZ])
{
	struct ifreq ifr = {0};
	int fd, hdrsz = OFFLOAD_VNET_HDR_LEN, r;
	unsigned int offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6;

	if (strlen(name) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0)
		goto fail;
	/* Ask for segmentation offloads so the kernel hands us 64 KiB superpackets; kernels
	 * before 6.2 lack USO, so fall back to TCP only. */
	if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0 &&
	    ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0)
		log_warn("%s: TUN offloads unavailable (%s); slower", name, strerror(errno));
	memcpy(ret_name, ifr.ifr_name, IFNAMSIZ);
	ret_name[IFNAMSIZ - 1] = '\0';
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}

static int ifreq_ioctl(const char *name, unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	if (s < 0)
		return -errno;
	strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(s, req, ifr) < 0)
		r = -errno;
	close(s);
	return r;
}

int tun_set_mtu(const char *name, int mtu)
{
	struct ifreq ifr = {.ifr_mtu = mtu};

	return ifreq_ioctl(name, SIOCSIFMTU, &ifr);
}

int tun_get_mtu(const char *name)
{
	struct ifreq ifr = {0};
	int r = ifreq_ioctl(name, SIOCGIFMTU, &ifr);

	return r < 0 ? r : ifr.ifr_mtu;
}
