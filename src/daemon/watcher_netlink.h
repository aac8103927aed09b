/* SPDX-License-Identifier: MIT */
/* watcher internals shared by watcher.c and watcher_netlink.c. */
#ifndef WICE_DAEMON_WATCHER_NETLINK_H
#define WICE_DAEMON_WATCHER_NETLINK_H

#include <glib.h>

#define WATCHER_NL_BUFSIZE     32768 /* the kernel sizes dump messages to this; never truncated */
#define WATCHER_KIND_WIREGUARD "wireguard"
#define WATCHER_KIND_TUN       "tun"

/*
 * An RTM_GETLINK dump on a socket of its own (the kernel answers at once): kernel gets
 * ifindex -> name of every link of kind "wireguard", names those names. 0 or a negative errno.
 */
int watcher_dump_links(GHashTable *kernel, GPtrArray *names);

#endif
