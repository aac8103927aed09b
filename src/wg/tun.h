/* SPDX-License-Identifier: MIT */
/* The TUN device: created with the virtio-net header and the offloads the data path uses. */
#ifndef WICE_WG_TUN_H
#define WICE_WG_TUN_H

#include <net/if.h>

/* Creates (or attaches to) TUN interface name; ret_name gets the kernel's name. Returns a
 * non-blocking fd or negative errno. */
int tun_create(const char *name, char ret_name[static IFNAMSIZ]);
int tun_set_mtu(const char *name, int mtu);
int tun_get_mtu(const char *name);

#endif
