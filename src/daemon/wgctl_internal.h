/* SPDX-License-Identifier: MIT */
/*
 * What the wgctl backends share, and the pure parsers and builders they are made of, exposed
 * so that unit tests and fuzzers can feed them bytes without a kernel module or a socket.
 */
#ifndef WICE_DAEMON_WGCTL_INTERNAL_H
#define WICE_DAEMON_WGCTL_INTERNAL_H

#include <linux/netlink.h>
#include "daemon/wgctl.h"

/* Large enough that the kernel never truncates a dump message (it sizes them to our reads). */
#define WGCTL_NL_BUFSIZE   32768
#define WGCTL_DUMP_RETRIES 3 /* a dump interrupted by a concurrent change starts over */
#define WGCTL_KERNEL_KIND  "wireguard"

/* ---- shared helpers (wgctl.c) ---- */

/* A growing list of interface names; finish sorts, drops duplicates and hands it over. */
struct wgctl_names {
	char **v;
	size_t n, cap;
};

int wgctl_names_add(struct wgctl_names *names, const char *name);
void wgctl_names_finish(struct wgctl_names *names, char ***ret_names, size_t *ret_n);
void wgctl_names_clear(struct wgctl_names *names);

struct wgctl_device *wgctl_device_new(void);
/* Appends a peer with this key; -E2BIG past WGCTL_MAX_PEERS. */
int wgctl_device_add_peer(struct wgctl_device *dev, const uint8_t pub[static WGCTL_KEY_LEN],
			  struct wgctl_peer **ret);
/* -E2BIG past WGCTL_MAX_ALLOWED_IPS; -EBADMSG for a family or prefix length that is wrong. */
int wgctl_peer_add_allowedip(struct wgctl_peer *peer, const struct wgctl_allowedip *aip);
/* 0 for a sockaddr_in or sockaddr_in6 of exactly its size, else -EINVAL / -EAFNOSUPPORT. */
int wgctl_endpoint_check(const struct sockaddr *ep, socklen_t len);
void wgctl_wipe(void *p, size_t n);

/* ---- UAPI (wgctl_uapi.c) ---- */

/* True when DIR/NAME.sock is a socket that accepts a connection (not a stale file). */
bool wgctl_uapi_present(const char *ifname);

/*
 * Parses a complete get=1 response (through the blank line). The device is named ifname.
 * Returns 0, the response's own errno negated, or -EBADMSG / -E2BIG / -EPROTO.
 */
int wgctl_uapi_parse(const char *buf, size_t len, const char *ifname, struct wgctl_device **ret);
/* endpoint= syntax: A.B.C.D:PORT, [V6]:PORT or [V6%SCOPE]:PORT. */
int wgctl_uapi_parse_endpoint(const char *s, struct sockaddr_storage *ret);
int wgctl_uapi_format_endpoint(char *buf, size_t size, const struct sockaddr *ep, socklen_t len);
/* The whole set=1 request for set_endpoint; returns its length or a negative errno. */
int wgctl_uapi_format_set_endpoint(char *buf, size_t size, const uint8_t pub[static WGCTL_KEY_LEN],
				   const struct sockaddr *ep, socklen_t len);

/* ---- kernel (wgctl_kernel.c) ---- */

/*
 * Feeds one read of a WG_CMD_GET_DEVICE dump into dev, coalescing a device that the kernel
 * split over several messages. seq and portid are checked when non-zero. Returns 1 when more
 * messages are to come, 0 after NLMSG_DONE, or a negative errno (-EINTR: the dump was
 * interrupted by a change and must be restarted with a fresh dev).
 */
int wgctl_kernel_parse_dump(const void *buf, size_t len, uint32_t seq, uint32_t portid,
			    struct wgctl_device *dev);
/* Same contract for an RTM_GETLINK dump: collects the names of links of kind "wireguard". */
int wgctl_kernel_parse_links(const void *buf, size_t len, uint32_t seq, uint32_t portid,
			     struct wgctl_names *names);
/* Builds the WG_CMD_SET_DEVICE request that set_endpoint sends, in buf. */
int wgctl_kernel_build_set_endpoint(void *buf, size_t size, uint16_t family_id, uint32_t seq,
				    const char *ifname, const uint8_t pub[static WGCTL_KEY_LEN],
				    const struct sockaddr *ep, socklen_t len,
				    struct nlmsghdr **ret_nlh);

#endif
