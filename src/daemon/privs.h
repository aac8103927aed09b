/* SPDX-License-Identifier: MIT */
/*
 * privs: the daemon's least privilege (docs/daemon.md). Once its configuration is read, and
 * before any thread starts (capabilities are per thread; threads inherit them), the daemon
 * keeps CAP_NET_ADMIN alone, in its effective, permitted and bounding sets, clears the
 * inheritable and ambient ones, and sets no_new_privs, so no execve can gain anything.
 *
 * CAP_NET_ADMIN is what its run time needs: nftables (the direct path's chains), generic
 * netlink to kernel WireGuard (reading a device shows its private key: admin only, like
 * setting an endpoint). Nothing else: the user id stays 0, so the root-owned UAPI sockets
 * under /var/run/wireguard (mode 0700) and /run/wice stay reachable as their owner, without
 * CAP_DAC_OVERRIDE; every port it binds is ephemeral or on the loopback; an interface it
 * creates (own_iface.c: a kernel link, or a TUN device for its userspace WireGuard) needs
 * CAP_NET_ADMIN too.
 */
#ifndef WICE_DAEMON_PRIVS_H
#define WICE_DAEMON_PRIVS_H

/*
 * Drops every capability but CAP_NET_ADMIN (kept only if the process has it) and sets
 * no_new_privs; logs what was kept. 0 or -errno (logged; the daemon should not run on).
 */
int privs_drop(void);

#endif
