/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib-unix.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/own_iface.h"
#include "daemon/wgctl.h"
#include "util/log.h"
#include "wg/device.h"
#include "wg/tun.h"

struct own_iface {
	char name[IFNAMSIZ];
	bool kernel;
	struct wg_device *dev; /* userspace: serves the TUN device on its own threads */
	GSource *gone;	       /* userspace: the device stopped (the link was deleted) */
};

/* `ip link del` on a userspace interface stops its threads; the daemon goes on without it. */
static gboolean on_gone(gint fd, GIOCondition cond, gpointer data)
{
	struct own_iface *o = data;

	log_info("%s: the interface this daemon created was deleted", o->name);
	g_source_unref(o->gone);
	o->gone = NULL;
	return G_SOURCE_REMOVE;
}

static int userspace_new(GMainContext *ctx, struct own_iface *o)
{
	char ifname[IFNAMSIZ];
	int tun, r;

	tun = tun_create(o->name, ifname);
	if (tun < 0)
		return tun;
	r = tun_set_mtu(ifname, WG_DEFAULT_MTU);
	if (r < 0)
		log_warn("%s: cannot set MTU %d: %s, ignoring", ifname, WG_DEFAULT_MTU,
			 strerror(-r));
	r = device_new(ifname, tun, &o->dev);
	if (r < 0) {
		close(tun);
		return r;
	}
	r = device_start(o->dev);
	if (r < 0)
		return r;
	o->gone = g_unix_fd_source_new(o->dev->stop_fd, G_IO_IN);
	g_source_set_callback(o->gone, (GSourceFunc)(void (*)(void))on_gone, o, NULL);
	g_source_attach(o->gone, ctx);
	return 0;
}

int own_iface_new(GMainContext *ctx, const char *name, struct own_iface **ret)
{
	struct own_iface *o;
	int r;

	if (!wgctl_ifname_valid(name))
		return -EINVAL;
	if (if_nametoindex(name))
		return -EEXIST;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	g_strlcpy(o->name, name, sizeof(o->name));
	r = wgctl_kernel_create(name);
	if (r == 0) {
		o->kernel = true;
	} else if (r == -EOPNOTSUPP || r == -EPROTONOSUPPORT) {
		r = userspace_new(ctx, o);
	}
	if (r < 0) {
		own_iface_free(o);
		return r;
	}
	*ret = o;
	return 0;
}

const char *own_iface_kind(const struct own_iface *o)
{
	return o->kernel ? "kernel" : "userspace";
}

struct own_iface *own_iface_free(struct own_iface *o)
{
	int r;

	if (!o)
		return NULL;
	if (o->gone) {
		g_source_destroy(o->gone);
		g_source_unref(o->gone);
	}
	if (o->dev)
		device_free(o->dev); /* closes the TUN device: the link goes with it */
	if (o->kernel) {
		r = wgctl_kernel_delete(o->name);
		if (r < 0 && r != -ENODEV)
			log_warn("%s: cannot delete the interface: %s", o->name, strerror(-r));
	}
	free(o);
	return NULL;
}
