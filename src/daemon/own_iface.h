/* SPDX-License-Identifier: MIT */
/*
 * An interface named on the command line that does not exist: the daemon creates it and owns
 * it until it stops. A kernel WireGuard link where the module is there, else wice's userspace
 * WireGuard inside the daemon's process (its UAPI socket in /var/run/wireguard, so that wg(8)
 * configures it and the watcher finds it like any other). Keys, peers and addresses stay the
 * user's to set; the daemon changes nothing but peer endpoints, as on adopted interfaces.
 */
#ifndef WICE_DAEMON_OWN_IFACE_H
#define WICE_DAEMON_OWN_IFACE_H

#include <glib.h>

struct own_iface;

/*
 * Creates name unless a link of that name exists (-EEXIST, nothing made). Kernel first, then
 * userspace. Returns 0 and the interface, or a negative errno.
 */
int own_iface_new(GMainContext *ctx, const char *name, struct own_iface **ret);
/* "kernel" or "userspace". */
const char *own_iface_kind(const struct own_iface *o);
/* Removes the interface (NULL accepted); returns NULL. */
struct own_iface *own_iface_free(struct own_iface *o);

#endif
