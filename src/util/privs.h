/* SPDX-License-Identifier: MIT */
/*
 * privs: least privilege for wice's long-running processes. Once set up, and before any
 * thread starts (capabilities are per thread; threads inherit them), a process keeps only the
 * capabilities it names, in its effective, permitted and bounding sets, clears the
 * inheritable and ambient ones, and sets no_new_privs, so no execve can gain anything.
 *
 * The daemon (docs/daemon.md) keeps CAP_NET_ADMIN: nftables (the direct path's chains),
 * generic netlink to kernel WireGuard (reading a device shows its private key: admin only,
 * like setting an endpoint), creating an interface. The userspace WireGuard
 * (docs/userspace-wireguard.md) keeps CAP_NET_ADMIN (SO_MARK for fwmark, SO_RCVBUFFORCE) and
 * CAP_NET_BIND_SERVICE (a listen port below 1024, set at any time through the UAPI). Nothing
 * else: the user id stays 0, so the root-owned UAPI sockets under /var/run/wireguard (mode
 * 0700) and /run/wice stay reachable as their owner, without CAP_DAC_OVERRIDE.
 */
#ifndef WICE_UTIL_PRIVS_H
#define WICE_UTIL_PRIVS_H

#include <stddef.h>

/*
 * Drops every capability but those in keep (each kept only if the process has it) and sets
 * no_new_privs; logs what was kept ("privileges: kept CAP_A, CAP_B (...)"). 0 or -errno
 * (logged; the process should not run on).
 */
int privs_drop(const unsigned int *keep, size_t n_keep);

#endif
