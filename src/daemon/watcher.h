/* SPDX-License-Identifier: MIT */
/*
 * watcher: which WireGuard interfaces exist, told as they come and go, on a GMainContext.
 *
 * Interfaces are seen by events, not by polling:
 *   - kernel interfaces by rtnetlink (RTNLGRP_LINK): RTM_NEWLINK / RTM_DELLINK of a link whose
 *     IFLA_INFO_KIND is "wireguard", followed by ifindex so that a rename is a removal and an
 *     addition;
 *   - userspace interfaces (wice wg-userspace, wireguard-go, boringtun) by inotify on the UAPI
 *     directory (wgctl_uapi_dir(), created 0755 when missing, as wireguard-go does): a NAME.sock
 *     created, deleted or moved. A socket file appears at bind(), before its owner listens, so
 *     a socket that refuses connections is re-tried for WATCHER_SETTLE_MS before it is taken
 *     for a stale one; a TUN link of the same name appearing later checks it again.
 * A full re-enumeration runs at start and whenever an event queue overflowed (ENOBUFS on the
 * netlink socket, IN_Q_OVERFLOW on inotify), so a lost event costs a re-read, never a missed
 * interface.
 *
 * Peers change without any event: neither the WireGuard generic netlink family nor the UAPI
 * protocol notifies anyone of a `wg set`, and inotify reports nothing for traffic on a socket.
 * So peers are found by re-reading each managed interface's configuration (wgctl get):
 *   - at once after the interface is added, and on watcher_poke() (the daemon pokes after
 *     its own changes, after a link event, or when a peer signals it exists);
 *   - every reread_ms (default WATCHER_REREAD_MS, one second) while at least one interface is
 *     managed, and not at all while none is. This is a timer, not busy polling: one read per
 *     interface per second, nothing when idle; it is what makes a `wg set` visible within a
 *     second on both backends. Setting reread_ms to WATCHER_REREAD_OFF leaves only pokes.
 * Reads run on a worker thread, so a stuck userspace implementation (whose UAPI exchange may
 * take up to WGCTL_UAPI_TIMEOUT_MS) never stalls the main loop; one read per interface is in
 * flight at a time, and an interface that times out is re-read less often (up to
 * WATCHER_BACKOFF_MAX ticks apart). on_interface_changed is called when what the daemon acts
 * on (keys, port, peers, their endpoints and allowed IPs; not counters or handshakes) differs
 * from the previous read.
 *
 * Local addresses: RTM_NEWADDR / RTM_DELADDR (RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR), except
 * on WireGuard links and of link or host scope (IPv6 link-local, loopback), call
 * on_addresses_changed once WATCHER_ADDR_SETTLE_MS after the first of a burst (an address
 * replaced is a deletion and an addition, a new prefix several events): one call per burst,
 * never more than one per WATCHER_ADDR_SETTLE_MS. Lost events (ENOBUFS) call it too.
 *
 * Caveat: network namespaces share the filesystem, so the UAPI directory shows userspace
 * interfaces of every namespace; give each daemon its own WICE_UAPI_DIR or name its
 * interfaces.
 *
 * Callbacks run on the watcher's context, never from inside a watcher_* call and never with a
 * lock held. A callback must not free the watcher.
 */
#ifndef WICE_DAEMON_WATCHER_H
#define WICE_DAEMON_WATCHER_H

#include <glib.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "daemon/wgctl.h"

#define WATCHER_SETTLE_MS      1000 /* how long a new socket may refuse connections */
#define WATCHER_SETTLE_MIN_MS  10   /* first re-try; each doubles */
#define WATCHER_REREAD_MS      1000 /* peer re-read period while interfaces are managed */
#define WATCHER_REREAD_OFF     UINT32_MAX
#define WATCHER_BACKOFF_MAX    32  /* ticks skipped at most after timeouts */
#define WATCHER_READ_THREADS   2   /* concurrent configuration reads */
#define WATCHER_MAX_FILTER     256 /* names or globs */
#define WATCHER_NL_RCVBUF      (1 << 20)
#define WATCHER_ADDR_SETTLE_MS 500 /* address events gathered into one call */

enum watcher_kind {
	WATCHER_KIND_KERNEL, /* the kernel module, over generic netlink */
	WATCHER_KIND_UAPI,   /* a userspace implementation, over DIR/NAME.sock */
};

struct watcher;

struct watcher_config {
	/*
	 * The filter. With names, exactly those interfaces are managed (interfaces named on the
	 * command line are the only ones managed); else with globs (fnmatch(3)), those matching
	 * any; else every WireGuard interface. Copied by watcher_new.
	 */
	const char *const *names;
	size_t n_names;
	const char *const *globs;
	size_t n_globs;

	uint32_t reread_ms; /* 0: WATCHER_REREAD_MS */
	/*
	 * A UAPI socket counts only while a link of its name exists in this network namespace:
	 * network namespaces share /var/run/wireguard, and another namespace's userspace
	 * interface is not ours to manage (its TUN device is made before its socket).
	 */
	bool uapi_needs_link;

	void (*on_interface_added)(struct watcher *w, const char *name, enum watcher_kind kind,
				   void *userdata);
	void (*on_interface_removed)(struct watcher *w, const char *name, void *userdata);
	/* Optional. dev is valid only during the call. */
	void (*on_interface_changed)(struct watcher *w, const char *name, enum watcher_kind kind,
				     const struct wgctl_device *dev, void *userdata);
	/* Optional: after every successful read, changed or not (counters, handshakes). */
	void (*on_interface_read)(struct watcher *w, const char *name,
				  const struct wgctl_device *dev, void *userdata);
	/* Optional: local addresses changed (see above); what they are now is the caller's. */
	void (*on_addresses_changed)(struct watcher *w, void *userdata);
	void *userdata;
};

/*
 * Opens the netlink and inotify sources on ctx (NULL: the global default context) and queues
 * the initial enumeration, whose additions arrive from the loop like any other. Returns 0,
 * -EINVAL for a bad filter, or the errno of the socket, inotify or directory that failed.
 */
int watcher_new(GMainContext *ctx, const struct watcher_config *cfg, struct watcher **ret);
/* Accepts NULL, returns NULL. Waits for configuration reads in flight (bounded by wgctl). */
struct watcher *watcher_free(struct watcher *w);

/*
 * Asks for name to be looked at again soon: its presence, and when managed, its configuration
 * (on_interface_changed follows if it differs). -ENOENT for a name the filter excludes,
 * -EINVAL for an invalid name.
 */
int watcher_poke(struct watcher *w, const char *name);

/* Whether cfg's filter lets name be managed. */
bool watcher_config_allows(const struct watcher_config *cfg, const char *name);

/* Whether name is managed now, and its kind (ret_kind may be NULL). */
bool watcher_has(struct watcher *w, const char *name, enum watcher_kind *ret_kind);

/* ---- exposed for tests and fuzzers: one rtnetlink link message, parsed ---- */

struct watcher_link {
	bool removed; /* RTM_DELLINK */
	uint32_t ifindex;
	char name[IFNAMSIZ];
	char kind[16]; /* IFLA_INFO_KIND, "" when the link has none */
};

/* 0 and *ret filled for RTM_NEWLINK / RTM_DELLINK; -ENOMSG for other types; -EBADMSG. */
int watcher_parse_link(const void *buf, size_t len, struct watcher_link *ret);

struct watcher_addr {
	bool removed; /* RTM_DELADDR */
	uint32_t ifindex;
	uint8_t family; /* AF_INET, AF_INET6 */
	uint8_t scope;	/* RT_SCOPE_* */
};

/* 0 and *ret filled for RTM_NEWADDR / RTM_DELADDR; -ENOMSG for other types; -EBADMSG. */
int watcher_parse_addr(const void *buf, size_t len, struct watcher_addr *ret);

#endif
