/* SPDX-License-Identifier: MIT */
/*
 * wgctl: read and steer WireGuard interfaces that someone else made.
 *
 * Two backends behind one table: the kernel module over generic netlink, and any userspace
 * implementation (wice wg-userspace, wireguard-go, boringtun) over the cross-platform UAPI
 * socket DIR/NAME.sock. The daemon adopts interfaces made by wg, wg-quick, systemd-networkd,
 * NetworkManager or those implementations, so the only write this API offers is a peer's
 * endpoint: nothing else about an interface is ours to change.
 *
 * Calls are synchronous and bounded: netlink to the kernel answers at once, and a UAPI
 * exchange gives up after WGCTL_UAPI_TIMEOUT_MS, so a stuck implementation cannot hang the
 * caller's main loop for longer than that.
 */
#ifndef WICE_DAEMON_WGCTL_H
#define WICE_DAEMON_WGCTL_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define WGCTL_KEY_LEN 32

/* Where UAPI sockets live; the environment variable overrides it (tests, namespaces). */
#define WGCTL_UAPI_DIR_DEFAULT "/var/run/wireguard"
#define WGCTL_UAPI_DIR_ENV     "WICE_UAPI_DIR"

/*
 * Limits on what an implementation can make us allocate. Generous for real meshes; they exist
 * so that a broken or hostile responder cannot exhaust memory.
 */
#define WGCTL_MAX_PEERS	      (1U << 16)
#define WGCTL_MAX_ALLOWED_IPS (1U << 16) /* per peer */
#define WGCTL_MAX_INTERFACES  4096
#define WGCTL_UAPI_MAX_LINE   256 /* longest key=value line, newline excluded */
#define WGCTL_UAPI_MAX_LINES  (1U << 22)
#define WGCTL_UAPI_TIMEOUT_MS 1000 /* a whole exchange, connect to last byte */

struct wgctl_allowedip {
	uint16_t family; /* AF_INET or AF_INET6 */
	uint8_t cidr;
	union {
		struct in_addr ip4;
		struct in6_addr ip6;
	};
};

struct wgctl_peer {
	uint8_t public_key[WGCTL_KEY_LEN];
	uint8_t preshared_key[WGCTL_KEY_LEN];
	bool has_preshared_key;
	struct sockaddr_storage endpoint; /* ss_family AF_UNSPEC when there is none */
	uint16_t persistent_keepalive;	  /* seconds, 0 when off */
	struct timespec last_handshake;	  /* wall clock; zero when never */
	uint64_t rx_bytes, tx_bytes;
	struct wgctl_allowedip *allowed_ips;
	size_t n_allowed_ips;
};

struct wgctl_device {
	char name[IFNAMSIZ];
	uint32_t ifindex; /* 0 for UAPI devices: the socket does not say */
	uint8_t private_key[WGCTL_KEY_LEN];
	uint8_t public_key[WGCTL_KEY_LEN];
	bool has_private_key; /* public_key is valid exactly when this is set */
	uint16_t listen_port;
	uint32_t fwmark;
	struct wgctl_peer *peers;
	size_t n_peers;
};

struct wgctl_ops {
	const char *name;
	/* Names of this backend's interfaces, sorted; free with wgctl_names_free(). */
	int (*list)(char ***ret_names, size_t *ret_n);
	/* Everything about one interface; free with wgctl_device_free(). */
	int (*get)(const char *ifname, struct wgctl_device **ret);
	/*
	 * Points one existing peer at ep (struct sockaddr_in or sockaddr_in6, len its size) and
	 * changes nothing else. A peer that does not exist is not created; neither backend
	 * reports that as an error, so callers that care check with get first.
	 */
	int (*set_endpoint)(const char *ifname, const uint8_t pub[static WGCTL_KEY_LEN],
			    const struct sockaddr *ep, socklen_t len);
};

extern const struct wgctl_ops wgctl_kernel, wgctl_uapi;

/*
 * A kernel WireGuard interface made or removed through rtnetlink. -EOPNOTSUPP where the
 * module is missing, -EEXIST when the name is taken.
 */
int wgctl_kernel_create(const char *ifname);
int wgctl_kernel_delete(const char *ifname);

/* The UAPI socket directory: $WICE_UAPI_DIR when set and non-empty, else the default. */
const char *wgctl_uapi_dir(void);

/* Linux's rules for an interface name (also what keeps NAME.sock inside the directory). */
bool wgctl_ifname_valid(const char *ifname);

/* The backend that serves ifname: UAPI when a live NAME.sock exists, else the kernel. */
const struct wgctl_ops *wgctl_for(const char *ifname);

/* Kernel and UAPI interfaces together, sorted, each name once. */
int wgctl_list_all(char ***ret_names, size_t *ret_n);

/* Both accept NULL and return NULL. The device's keys are wiped before its memory is freed. */
char **wgctl_names_free(char **names, size_t n);
struct wgctl_device *wgctl_device_free(struct wgctl_device *dev);

/* The peer with this public key, or NULL. */
struct wgctl_peer *wgctl_device_find_peer(struct wgctl_device *dev,
					  const uint8_t pub[static WGCTL_KEY_LEN]);

#endif
