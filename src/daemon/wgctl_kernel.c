/* SPDX-License-Identifier: MIT */
/*
 * wgctl over generic netlink to the WireGuard kernel module (the protocol is documented in
 * linux/wireguard.h), and rtnetlink to find the module's interfaces.
 *
 * Everything the kernel sends is length-checked before it is read, and a malformed attribute
 * anywhere fails the whole call with -EBADMSG: mnl_attr_for_each() would stop quietly at a bad
 * header and hand back half a device, so attributes are walked by attr_walk() instead.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/rtnetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include "daemon/wgctl_internal.h"

#define NL_MAX_ERRNO 4095
#define NL_REQ_SIZE  512 /* our requests: a name, a key and an address at most */

typedef int (*attr_cb)(const struct nlattr *a, void *data);
typedef int (*msg_cb)(const struct nlmsghdr *nlh, void *data);

/* ---- walking messages and attributes ---- */

static int attr_walk(const void *start, size_t len, attr_cb cb, void *data)
{
	const struct nlattr *a = start;
	int rem, r;

	if (len > INT_MAX)
		return -EBADMSG;
	rem = (int)len;
	while (rem > 0) {
		if (!mnl_attr_ok(a, rem))
			return -EBADMSG;
		r = cb(a, data);
		if (r < 0)
			return r;
		rem -= (int)MNL_ALIGN(a->nla_len);
		a = mnl_attr_next(a);
	}
	return 0;
}

static int nested_walk(const struct nlattr *a, attr_cb cb, void *data)
{
	if (mnl_attr_validate(a, MNL_TYPE_NESTED) < 0)
		return -EBADMSG;
	return attr_walk(mnl_attr_get_payload(a), mnl_attr_get_payload_len(a), cb, data);
}

/* The attributes after a fixed header of hdrlen bytes (genlmsghdr, ifinfomsg). */
static int msg_walk(const struct nlmsghdr *nlh, size_t hdrlen, attr_cb cb, void *data)
{
	size_t plen = mnl_nlmsg_get_payload_len(nlh);

	if (plen < MNL_ALIGN(hdrlen))
		return -EBADMSG;
	return attr_walk(mnl_nlmsg_get_payload_offset(nlh, hdrlen), plen - MNL_ALIGN(hdrlen), cb,
			 data);
}

static int nl_error(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*err) || err->error > 0 ||
	    err->error < -NL_MAX_ERRNO)
		return -EBADMSG;
	return err->error; /* 0 is the ACK that ends a request */
}

/* A dump that failed part-way says so in NLMSG_DONE's payload. */
static int nl_done(const struct nlmsghdr *nlh)
{
	int err;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(err))
		return 0;
	memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
	return err < 0 && err >= -NL_MAX_ERRNO ? err : 0;
}

/* One read's worth of messages: 1 when more are to come, 0 at the end, or -errno. */
static int nl_run(const void *buf, size_t len, uint32_t seq, uint32_t portid, msg_cb cb, void *data)
{
	const struct nlmsghdr *nlh = buf;
	int rem, r;

	if (len > INT_MAX)
		return -EBADMSG;
	rem = (int)len;
	while (rem > 0) {
		/* Not mnl_nlmsg_ok(): it casts nlmsg_len to int, so 0xfffffff0 "fits". */
		if ((size_t)rem < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) ||
		    nlh->nlmsg_len > (uint32_t)rem)
			return -EBADMSG;
		if (!mnl_nlmsg_seq_ok(nlh, seq) || !mnl_nlmsg_portid_ok(nlh, portid))
			return -EPROTO;
		if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
			return -EINTR;
		switch (nlh->nlmsg_type) {
		case NLMSG_NOOP:
			break;
		case NLMSG_ERROR:
			return nl_error(nlh);
		case NLMSG_DONE:
			return nl_done(nlh);
		case NLMSG_OVERRUN:
			return -ENOBUFS;
		default:
			r = cb(nlh, data);
			if (r < 0)
				return r;
		}
		nlh = mnl_nlmsg_next(nlh, &rem);
	}
	return 1;
}

/* ---- the device dump ---- */

static int get_u16(const struct nlattr *a, uint16_t *ret)
{
	if (mnl_attr_validate(a, MNL_TYPE_U16) < 0)
		return -EBADMSG;
	*ret = mnl_attr_get_u16(a);
	return 0;
}

static int get_u32(const struct nlattr *a, uint32_t *ret)
{
	if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
		return -EBADMSG;
	*ret = mnl_attr_get_u32(a);
	return 0;
}

static int get_u64(const struct nlattr *a, uint64_t *ret)
{
	if (mnl_attr_validate(a, MNL_TYPE_U64) < 0)
		return -EBADMSG;
	*ret = mnl_attr_get_u64(a);
	return 0;
}

static int get_exact(const struct nlattr *a, void *out, size_t len)
{
	if (mnl_attr_validate2(a, MNL_TYPE_BINARY, len) < 0)
		return -EBADMSG;
	memcpy(out, mnl_attr_get_payload(a), len);
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static int get_ifname(const struct nlattr *a, char ret[static IFNAMSIZ])
{
	if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0 || mnl_attr_get_payload_len(a) > IFNAMSIZ)
		return -EBADMSG;
	memcpy(ret, mnl_attr_get_payload(a), mnl_attr_get_payload_len(a));
	return 0;
}

/* A struct sockaddr_in or sockaddr_in6 of exactly its own size. */
static int get_endpoint(const struct nlattr *a, struct sockaddr_storage *ret)
{
	size_t len = mnl_attr_get_payload_len(a);
	struct sockaddr_storage ss = {0};

	if (len < sizeof(struct sockaddr_in) || len > sizeof(struct sockaddr_in6))
		return -EBADMSG;
	memcpy(&ss, mnl_attr_get_payload(a), len);
	if (wgctl_endpoint_check((struct sockaddr *)&ss, (socklen_t)len) < 0)
		return -EBADMSG;
	*ret = ss;
	return 0;
}

static int get_handshake(const struct nlattr *a, struct timespec *ret)
{
	struct __kernel_timespec kts;
	int r = get_exact(a, &kts, sizeof(kts));

	if (r < 0)
		return r;
	if (kts.tv_sec < 0 || kts.tv_nsec < 0 || kts.tv_nsec >= 1000000000)
		return -EBADMSG;
	ret->tv_sec = (time_t)kts.tv_sec;
	ret->tv_nsec = (long)kts.tv_nsec;
	return 0;
}

struct aip_parse {
	struct wgctl_allowedip aip;
	size_t addr_len;
	bool has_family, has_cidr;
};

static int allowedip_attr_cb(const struct nlattr *a, void *data)
{
	struct aip_parse *ap = data;
	size_t len;
	uint8_t cidr;

	switch (mnl_attr_get_type(a)) {
	case WGALLOWEDIP_A_FAMILY:
		ap->has_family = true;
		return get_u16(a, &ap->aip.family);
	case WGALLOWEDIP_A_IPADDR:
		len = mnl_attr_get_payload_len(a);
		if (len != sizeof(struct in_addr) && len != sizeof(struct in6_addr))
			return -EBADMSG;
		memcpy(&ap->aip.ip6, mnl_attr_get_payload(a), len);
		ap->addr_len = len;
		return 0;
	case WGALLOWEDIP_A_CIDR_MASK:
		if (mnl_attr_validate(a, MNL_TYPE_U8) < 0)
			return -EBADMSG;
		cidr = mnl_attr_get_u8(a);
		ap->aip.cidr = cidr;
		ap->has_cidr = true;
		return 0;
	}
	return 0; /* newer attributes (flags) say nothing about what is routed */
}

static int allowedips_cb(const struct nlattr *a, void *data)
{
	struct aip_parse ap = {0};
	int r;

	r = nested_walk(a, allowedip_attr_cb, &ap);
	if (r < 0)
		return r;
	if (!ap.has_family || !ap.has_cidr ||
	    !((ap.aip.family == AF_INET && ap.addr_len == sizeof(struct in_addr)) ||
	      (ap.aip.family == AF_INET6 && ap.addr_len == sizeof(struct in6_addr))))
		return -EBADMSG;
	return wgctl_peer_add_allowedip(data, &ap.aip);
}

static int peer_attr_cb(const struct nlattr *a, void *data)
{
	struct wgctl_peer *peer = data;
	uint32_t version;
	int r;

	switch (mnl_attr_get_type(a)) {
	case WGPEER_A_PUBLIC_KEY:
		return 0; /* already consumed by peer_key_cb */
	case WGPEER_A_PRESHARED_KEY:
		r = get_exact(a, peer->preshared_key, WGCTL_KEY_LEN);
		peer->has_preshared_key = r == 0 && !all_zero(peer->preshared_key, WGCTL_KEY_LEN);
		return r;
	case WGPEER_A_ENDPOINT:
		return get_endpoint(a, &peer->endpoint);
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		return get_u16(a, &peer->persistent_keepalive);
	case WGPEER_A_LAST_HANDSHAKE_TIME:
		return get_handshake(a, &peer->last_handshake);
	case WGPEER_A_RX_BYTES:
		return get_u64(a, &peer->rx_bytes);
	case WGPEER_A_TX_BYTES:
		return get_u64(a, &peer->tx_bytes);
	case WGPEER_A_ALLOWEDIPS:
		return nested_walk(a, allowedips_cb, peer);
	case WGPEER_A_PROTOCOL_VERSION:
		r = get_u32(a, &version);
		return r < 0 ? r : version == 1 ? 0 : -EPROTO;
	}
	return 0;
}

static int peer_key_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) != WGPEER_A_PUBLIC_KEY)
		return 0;
	return get_exact(a, data, WGCTL_KEY_LEN);
}

/*
 * When a peer's allowed IPs do not fit in one message, the kernel repeats the peer's public
 * key at the start of the next message and continues the list there: the same key as the last
 * peer means the same peer.
 */
static int peers_cb(const struct nlattr *a, void *data)
{
	struct wgctl_device *dev = data;
	uint8_t pub[WGCTL_KEY_LEN] = {0};
	struct wgctl_peer *peer;
	int r;

	r = nested_walk(a, peer_key_cb, pub);
	if (r < 0)
		return r;
	if (all_zero(pub, sizeof(pub)))
		return -EBADMSG;
	if (dev->n_peers && !memcmp(dev->peers[dev->n_peers - 1].public_key, pub, sizeof(pub))) {
		peer = &dev->peers[dev->n_peers - 1];
	} else {
		r = wgctl_device_add_peer(dev, pub, &peer);
		if (r < 0)
			return r;
	}
	return nested_walk(a, peer_attr_cb, peer);
}

static int device_attr_cb(const struct nlattr *a, void *data)
{
	struct wgctl_device *dev = data;
	int r;

	switch (mnl_attr_get_type(a)) {
	case WGDEVICE_A_IFINDEX:
		return get_u32(a, &dev->ifindex);
	case WGDEVICE_A_IFNAME:
		return get_ifname(a, dev->name);
	case WGDEVICE_A_PRIVATE_KEY:
		r = get_exact(a, dev->private_key, WGCTL_KEY_LEN);
		dev->has_private_key = r == 0 && !all_zero(dev->private_key, WGCTL_KEY_LEN);
		return r;
	case WGDEVICE_A_PUBLIC_KEY:
		return get_exact(a, dev->public_key, WGCTL_KEY_LEN);
	case WGDEVICE_A_LISTEN_PORT:
		return get_u16(a, &dev->listen_port);
	case WGDEVICE_A_FWMARK:
		return get_u32(a, &dev->fwmark);
	case WGDEVICE_A_PEERS:
		return nested_walk(a, peers_cb, dev);
	}
	return 0;
}

static int device_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct genlmsghdr *genl = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < GENL_HDRLEN || genl->cmd != WG_CMD_GET_DEVICE)
		return -EBADMSG;
	return msg_walk(nlh, GENL_HDRLEN, device_attr_cb, data);
}

int wgctl_kernel_parse_dump(const void *buf, size_t len, uint32_t seq, uint32_t portid,
			    struct wgctl_device *dev)
{
	int r = nl_run(buf, len, seq, portid, device_msg_cb, dev);

	/* The first message always names the device: a dump without one is not a device. */
	if (r == 0 && !dev->name[0])
		return -EBADMSG;
	return r;
}

/* ---- the link dump ---- */

struct link_parse {
	char name[IFNAMSIZ];
	bool is_wireguard;
};

static int linkinfo_cb(const struct nlattr *a, void *data)
{
	struct link_parse *lp = data;

	if (mnl_attr_get_type(a) != IFLA_INFO_KIND)
		return 0;
	if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
		return -EBADMSG;
	lp->is_wireguard = !strcmp(mnl_attr_get_str(a), WGCTL_KERNEL_KIND);
	return 0;
}

static int link_attr_cb(const struct nlattr *a, void *data)
{
	struct link_parse *lp = data;

	switch (mnl_attr_get_type(a)) {
	case IFLA_IFNAME:
		return get_ifname(a, lp->name);
	case IFLA_LINKINFO:
		return nested_walk(a, linkinfo_cb, lp);
	}
	return 0;
}

static int link_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_parse lp = {0};
	int r;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return 0;
	r = msg_walk(nlh, sizeof(struct ifinfomsg), link_attr_cb, &lp);
	if (r < 0 || !lp.is_wireguard)
		return r;
	if (!wgctl_ifname_valid(lp.name))
		return -EBADMSG;
	return wgctl_names_add(data, lp.name);
}

int wgctl_kernel_parse_links(const void *buf, size_t len, uint32_t seq, uint32_t portid,
			     struct wgctl_names *names)
{
	return nl_run(buf, len, seq, portid, link_msg_cb, names);
}

/* ---- requests ---- */

static struct nlmsghdr *put_genl_header(void *buf, uint16_t type, uint16_t flags, uint32_t seq,
					uint8_t cmd, uint8_t version)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

/* The kernel's nla_parse_nested() rejects nests without NLA_F_NESTED; not every libmnl sets it. */
static struct nlattr *nest_start(struct nlmsghdr *nlh, size_t size, uint16_t type)
{
	struct nlattr *nest = mnl_attr_nest_start_check(nlh, size, type);

	if (nest)
		nest->nla_type |= NLA_F_NESTED;
	return nest;
}

int wgctl_kernel_build_set_endpoint(void *buf, size_t size, uint16_t family_id, uint32_t seq,
				    const char *ifname, const uint8_t pub[static WGCTL_KEY_LEN],
				    const struct sockaddr *ep, socklen_t len,
				    struct nlmsghdr **ret_nlh)
{
	struct nlattr *peers, *peer;
	struct nlmsghdr *nlh;
	int r;

	r = wgctl_endpoint_check(ep, len);
	if (r < 0)
		return r;
	if (!wgctl_ifname_valid(ifname))
		return -EINVAL;
	if (size < MNL_NLMSG_HDRLEN + GENL_HDRLEN)
		return -ENOBUFS;
	nlh = put_genl_header(buf, family_id, NLM_F_REQUEST | NLM_F_ACK, seq, WG_CMD_SET_DEVICE,
			      WG_GENL_VERSION);
	if (!mnl_attr_put_strz_check(nlh, size, WGDEVICE_A_IFNAME, ifname) ||
	    !(peers = nest_start(nlh, size, WGDEVICE_A_PEERS)) ||
	    !(peer = nest_start(nlh, size, 0)) ||
	    !mnl_attr_put_check(nlh, size, WGPEER_A_PUBLIC_KEY, WGCTL_KEY_LEN, pub) ||
	    /* UPDATE_ONLY: a peer removed meanwhile is not brought back. */
	    !mnl_attr_put_u32_check(nlh, size, WGPEER_A_FLAGS, WGPEER_F_UPDATE_ONLY) ||
	    !mnl_attr_put_check(nlh, size, WGPEER_A_ENDPOINT, len, ep))
		return -ENOBUFS;
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	*ret_nlh = nlh;
	return 0;
}

/* ---- the socket ---- */

struct nl {
	struct mnl_socket *sock;
	uint32_t portid;
	uint8_t *buf; /* WGCTL_NL_BUFSIZE; it receives private keys and is wiped */
};

typedef int (*nl_parse_fn)(const void *buf, size_t len, uint32_t seq, uint32_t portid, void *data);

static void nl_close(struct nl *nl)
{
	if (nl->buf) {
		wgctl_wipe(nl->buf, WGCTL_NL_BUFSIZE);
		free(nl->buf);
	}
	if (nl->sock)
		mnl_socket_close(nl->sock);
	*nl = (struct nl){0};
}

static int nl_open(struct nl *nl, int bus)
{
	int r;

	*nl = (struct nl){0};
	nl->buf = malloc(WGCTL_NL_BUFSIZE);
	nl->sock = mnl_socket_open2(bus, SOCK_CLOEXEC);
	if (!nl->buf || !nl->sock) {
		r = nl->buf ? -errno : -ENOMEM;
		nl_close(nl);
		return r;
	}
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		nl_close(nl);
		return r;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	return 0;
}

static uint32_t next_seq(void)
{
	static _Atomic uint32_t seq;
	uint32_t s = ++seq;

	return s ? s : ++seq; /* 0 would switch off the sequence check */
}

static int nl_transact(struct nl *nl, const struct nlmsghdr *req, nl_parse_fn parse, void *data)
{
	int r = 1;

	if (mnl_socket_sendto(nl->sock, req, req->nlmsg_len) < 0)
		return -errno;
	while (r > 0) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, WGCTL_NL_BUFSIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		r = parse(nl->buf, (size_t)n, req->nlmsg_seq, nl->portid, data);
	}
	return r;
}

static int family_attr_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) != CTRL_ATTR_FAMILY_ID)
		return 0;
	return get_u16(a, data);
}

static int family_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	return msg_walk(nlh, GENL_HDRLEN, family_attr_cb, data);
}

static int parse_family(const void *buf, size_t len, uint32_t seq, uint32_t portid, void *data)
{
	return nl_run(buf, len, seq, portid, family_msg_cb, data);
}

static int parse_dump(const void *buf, size_t len, uint32_t seq, uint32_t portid, void *data)
{
	return wgctl_kernel_parse_dump(buf, len, seq, portid, data);
}

static int parse_links(const void *buf, size_t len, uint32_t seq, uint32_t portid, void *data)
{
	return wgctl_kernel_parse_links(buf, len, seq, portid, data);
}

static int ignore_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	return 0;
}

static int parse_ack(const void *buf, size_t len, uint32_t seq, uint32_t portid, void *data)
{
	return nl_run(buf, len, seq, portid, ignore_msg_cb, NULL);
}

/* Without the module the controller knows no "wireguard" family: -EPROTONOSUPPORT. */
static int resolve_family(struct nl *nl, uint16_t *ret_id)
{
	uint8_t buf[NL_REQ_SIZE];
	struct nlmsghdr *nlh;
	uint16_t id = 0;
	int r;

	nlh = put_genl_header(buf, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, next_seq(),
			      CTRL_CMD_GETFAMILY, 1);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	r = nl_transact(nl, nlh, parse_family, &id);
	if (r == -ENOENT)
		return -EPROTONOSUPPORT;
	if (r < 0)
		return r;
	if (!id)
		return -EBADMSG;
	*ret_id = id;
	return 0;
}

static int kernel_get_once(const char *ifname, struct wgctl_device **ret)
{
	uint8_t buf[NL_REQ_SIZE];
	struct wgctl_device *dev = NULL;
	struct nlmsghdr *nlh;
	struct nl nl;
	uint16_t family;
	int r;

	r = nl_open(&nl, NETLINK_GENERIC);
	if (r < 0)
		return r;
	r = resolve_family(&nl, &family);
	if (r < 0)
		goto out_close;
	nlh = put_genl_header(buf, family, NLM_F_REQUEST | NLM_F_DUMP, next_seq(),
			      WG_CMD_GET_DEVICE, WG_GENL_VERSION);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	dev = wgctl_device_new();
	if (!dev) {
		r = -ENOMEM;
		goto out_close;
	}
	r = nl_transact(&nl, nlh, parse_dump, dev);
	if (r < 0)
		goto out_free;
	*ret = dev;
	dev = NULL;
out_free:
	wgctl_device_free(dev);
out_close:
	nl_close(&nl);
	return r;
}

static int kernel_get(const char *ifname, struct wgctl_device **ret)
{
	int r = -EINTR;

	if (!wgctl_ifname_valid(ifname))
		return -EINVAL;
	for (int i = 0; i < WGCTL_DUMP_RETRIES && r == -EINTR; i++)
		r = kernel_get_once(ifname, ret);
	return r;
}

static int kernel_list_once(struct wgctl_names *names)
{
	uint8_t buf[NL_REQ_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct nl nl;
	int r;

	r = nl_open(&nl, NETLINK_ROUTE);
	if (r < 0)
		return r;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = next_seq();
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	r = nl_transact(&nl, nlh, parse_links, names);
	nl_close(&nl);
	return r;
}

/* By link kind, so that it works (and finds nothing) where the module is not loaded. */
static int kernel_list(char ***ret_names, size_t *ret_n)
{
	struct wgctl_names names = {0};
	int r = -EINTR;

	for (int i = 0; i < WGCTL_DUMP_RETRIES && r == -EINTR; i++) {
		wgctl_names_clear(&names);
		r = kernel_list_once(&names);
	}
	if (r < 0) {
		wgctl_names_clear(&names);
		return r;
	}
	wgctl_names_finish(&names, ret_names, ret_n);
	return 0;
}

static int kernel_set_endpoint(const char *ifname, const uint8_t pub[static WGCTL_KEY_LEN],
			       const struct sockaddr *ep, socklen_t len)
{
	uint8_t buf[NL_REQ_SIZE];
	struct nlmsghdr *nlh;
	struct nl nl;
	uint16_t family;
	int r;

	r = nl_open(&nl, NETLINK_GENERIC);
	if (r < 0)
		return r;
	r = resolve_family(&nl, &family);
	if (r == 0)
		r = wgctl_kernel_build_set_endpoint(buf, sizeof(buf), family, next_seq(), ifname,
						    pub, ep, len, &nlh);
	if (r == 0)
		r = nl_transact(&nl, nlh, parse_ack, NULL);
	nl_close(&nl);
	return r;
}

/*
 * RTM_NEWLINK (kind "wireguard", exclusive create) or RTM_DELLINK for ifname. Without the
 * module the kernel knows no such link kind: -EOPNOTSUPP.
 */
static int kernel_link(const char *ifname, bool add)
{
	uint8_t buf[NL_REQ_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct nlattr *info;
	struct nl nl;
	int r;

	if (!wgctl_ifname_valid(ifname))
		return -EINVAL;
	r = nl_open(&nl, NETLINK_ROUTE);
	if (r < 0)
		return r;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = add ? RTM_NEWLINK : RTM_DELLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	nlh->nlmsg_seq = next_seq();
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	if (add) {
		info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
		mnl_attr_put_strz(nlh, IFLA_INFO_KIND, WGCTL_KERNEL_KIND);
		mnl_attr_nest_end(nlh, info);
	}
	r = nl_transact(&nl, nlh, parse_ack, NULL);
	nl_close(&nl);
	return r;
}

int wgctl_kernel_create(const char *ifname)
{
	return kernel_link(ifname, true);
}

int wgctl_kernel_delete(const char *ifname)
{
	return kernel_link(ifname, false);
}

const struct wgctl_ops wgctl_kernel = {
	.name = "kernel",
	.list = kernel_list,
	.get = kernel_get,
	.set_endpoint = kernel_set_endpoint,
};
