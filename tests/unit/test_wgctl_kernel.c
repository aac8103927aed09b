// SPDX-License-Identifier: MIT
/*
 * wgctl, kernel: the dump parser on dumps built here with libmnl (including the kernel's split
 * of one device over several messages), the SET message, and the kernel backend's clean
 * refusal where the module is missing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/rtnetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include "daemon/wgctl.h"
#include "daemon/wgctl_internal.h"
#include "test_wgctl.h"

/* ---- kernel: canned dumps ---- */

#define FAMILY 0x1b
#define PORTID 4242
#define SEQ    77

struct nlbuf {
	uint8_t data[16384] __attribute__((aligned(8)));
	size_t len;
};

static struct nlmsghdr *msg_begin(struct nlbuf *b, uint16_t type, uint8_t cmd)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(b->data + b->len);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_MULTI;
	nlh->nlmsg_seq = SEQ;
	nlh->nlmsg_pid = PORTID;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = WG_GENL_VERSION;
	return nlh;
}

static struct nlmsghdr *dev_begin(struct nlbuf *b)
{
	struct nlmsghdr *nlh = msg_begin(b, FAMILY, WG_CMD_GET_DEVICE);

	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 9);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	return nlh;
}

static void msg_end(struct nlbuf *b, struct nlmsghdr *nlh)
{
	b->len += MNL_ALIGN(nlh->nlmsg_len);
}

static void put_done(struct nlbuf *b)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(b->data + b->len);
	int zero = 0;

	nlh->nlmsg_type = NLMSG_DONE;
	nlh->nlmsg_flags = NLM_F_MULTI;
	nlh->nlmsg_seq = SEQ;
	nlh->nlmsg_pid = PORTID;
	memcpy(mnl_nlmsg_put_extra_header(nlh, sizeof(zero)), &zero, sizeof(zero));
	msg_end(b, nlh);
}

static void put_key(struct nlmsghdr *nlh, uint16_t type, const char *hex)
{
	uint8_t key[WGCTL_KEY_LEN];

	hex_key(key, hex);
	mnl_attr_put(nlh, type, sizeof(key), key);
}

static void put_aip(struct nlmsghdr *nlh, const char *addr, uint8_t cidr)
{
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	struct nlattr *nest = mnl_attr_nest_start(nlh, 0);
	uint8_t a[16];

	assert_int_equal(inet_pton(family, addr, a), 1);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, (uint16_t)family);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, family == AF_INET ? 4 : 16, a);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, cidr);
	mnl_attr_nest_end(nlh, nest);
}

/* The first message the kernel sends for a peer: everything but the rest of its allowed IPs. */
static void put_peer_head(struct nlmsghdr *nlh, const char *pub_hex, const char *psk_hex,
			  const struct sockaddr *ep, size_t ep_len)
{
	struct __kernel_timespec hs = {.tv_sec = 1700000000, .tv_nsec = 42};

	put_key(nlh, WGPEER_A_PUBLIC_KEY, pub_hex);
	put_key(nlh, WGPEER_A_PRESHARED_KEY, psk_hex);
	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(hs), &hs);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
	mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, 2000);
	mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 1000);
	mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 1);
	if (ep)
		mnl_attr_put(nlh, WGPEER_A_ENDPOINT, ep_len, ep);
}

#define ZERO_HEX "0000000000000000000000000000000000000000000000000000000000000000"

/*
 * A device split the way the kernel splits it: message 1 has the device, peer 1 whole and the
 * start of peer 2's allowed IPs; message 2 repeats only the name, then peer 2's key with the
 * rest of its allowed IPs, then peer 3.
 */
static void build_split_dump(struct nlbuf *b1, struct nlbuf *b2)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(51820)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(51821)};
	struct nlattr *peers, *peer, *aips;
	struct nlmsghdr *nlh;

	inet_pton(AF_INET, "192.0.2.1", &in.sin_addr);
	inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);

	nlh = dev_begin(b1);
	put_key(nlh, WGDEVICE_A_PRIVATE_KEY, PRIV_HEX);
	put_key(nlh, WGDEVICE_A_PUBLIC_KEY, PUB_HEX);
	mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
	mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, 0x42);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	put_peer_head(nlh, PEER1_HEX, ZERO_HEX, (struct sockaddr *)&in, sizeof(in));
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_aip(nlh, "10.0.0.2", 32);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	peer = mnl_attr_nest_start(nlh, 1);
	put_peer_head(nlh, PEER2_HEX, PSK_HEX, (struct sockaddr *)&in6, sizeof(in6));
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_aip(nlh, "10.0.3.0", 24);
	put_aip(nlh, "fd00:3::", 64);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	msg_end(b1, nlh);

	nlh = msg_begin(b2, FAMILY, WG_CMD_GET_DEVICE);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	put_key(nlh, WGPEER_A_PUBLIC_KEY, PEER2_HEX);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_aip(nlh, "10.9.0.0", 16);
	put_aip(nlh, "2001:db8:9::", 48);
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	peer = mnl_attr_nest_start(nlh, 1);
	put_peer_head(nlh, PEER3_HEX, ZERO_HEX, NULL, 0);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	msg_end(b2, nlh);
	put_done(b2);
}

static void check_split_device(const struct wgctl_device *dev)
{
	const struct wgctl_peer *p;

	assert_string_equal(dev->name, "wg0");
	assert_int_equal(dev->ifindex, 9);
	assert_true(dev->has_private_key);
	assert_key(dev->private_key, PRIV_HEX);
	assert_key(dev->public_key, PUB_HEX);
	assert_int_equal(dev->listen_port, 51820);
	assert_int_equal(dev->fwmark, 0x42);
	assert_int_equal(dev->n_peers, 3);

	p = &dev->peers[0];
	assert_key(p->public_key, PEER1_HEX);
	assert_false(p->has_preshared_key);
	assert_ep4(&p->endpoint, "192.0.2.1", 51820);
	assert_int_equal(p->last_handshake.tv_sec, 1700000000);
	assert_int_equal(p->last_handshake.tv_nsec, 42);
	assert_int_equal(p->persistent_keepalive, 25);
	assert_int_equal(p->rx_bytes, 1000);
	assert_int_equal(p->tx_bytes, 2000);
	assert_int_equal(p->n_allowed_ips, 1);
	assert_aip(&p->allowed_ips[0], "10.0.0.2", 32);

	/* Peer 2 continued across the messages: one peer, four allowed IPs, head intact. */
	p = &dev->peers[1];
	assert_key(p->public_key, PEER2_HEX);
	assert_true(p->has_preshared_key);
	assert_key(p->preshared_key, PSK_HEX);
	assert_ep6(&p->endpoint, "2001:db8::1", 51821, 0);
	assert_int_equal(p->rx_bytes, 1000);
	assert_int_equal(p->n_allowed_ips, 4);
	assert_aip(&p->allowed_ips[0], "10.0.3.0", 24);
	assert_aip(&p->allowed_ips[1], "fd00:3::", 64);
	assert_aip(&p->allowed_ips[2], "10.9.0.0", 16);
	assert_aip(&p->allowed_ips[3], "2001:db8:9::", 48);

	p = &dev->peers[2];
	assert_key(p->public_key, PEER3_HEX);
	assert_int_equal(p->endpoint.ss_family, AF_UNSPEC);
	assert_int_equal(p->n_allowed_ips, 0);
}

void test_kernel_parse_split_dump(void **state)
{
	static struct nlbuf b1, b2, all;
	struct wgctl_device *dev;

	b1.len = b2.len = all.len = 0;
	build_split_dump(&b1, &b2);

	/* As two reads. */
	dev = wgctl_device_new();
	assert_int_equal(wgctl_kernel_parse_dump(b1.data, b1.len, SEQ, PORTID, dev), 1);
	assert_int_equal(wgctl_kernel_parse_dump(b2.data, b2.len, SEQ, PORTID, dev), 0);
	check_split_device(dev);
	wgctl_device_free(dev);

	/* As one read. */
	memcpy(all.data, b1.data, b1.len);
	memcpy(all.data + b1.len, b2.data, b2.len);
	all.len = b1.len + b2.len;
	dev = wgctl_device_new();
	assert_int_equal(wgctl_kernel_parse_dump(all.data, all.len, 0, 0, dev), 0);
	check_split_device(dev);
	wgctl_device_free(dev);
}

/* Builders of bad dumps: each yields one message (or a few bytes) that must be refused. */
typedef void (*bad_builder)(struct nlbuf *b);

static void bad_port_width(struct nlbuf *b)
{
	struct nlmsghdr *nlh = dev_begin(b);

	mnl_attr_put_u32(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
	msg_end(b, nlh);
}

static void bad_key_len(struct nlbuf *b)
{
	struct nlmsghdr *nlh = dev_begin(b);
	uint8_t key[31] = {1};

	mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, sizeof(key), key);
	msg_end(b, nlh);
}

static void bad_ifname_unterminated(struct nlbuf *b)
{
	struct nlmsghdr *nlh = msg_begin(b, FAMILY, WG_CMD_GET_DEVICE);

	mnl_attr_put(nlh, WGDEVICE_A_IFNAME, 3, "wg0");
	msg_end(b, nlh);
}

static void bad_ifname_long(struct nlbuf *b)
{
	struct nlmsghdr *nlh = msg_begin(b, FAMILY, WG_CMD_GET_DEVICE);

	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "0123456789abcdefghij");
	msg_end(b, nlh);
}

/* Attribute length running past the end of the message. */
static void bad_attr_overrun(struct nlbuf *b)
{
	struct nlmsghdr *nlh = dev_begin(b);
	struct nlattr *a = mnl_nlmsg_get_payload_tail(nlh);

	mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, 1);
	a->nla_len = 64;
	msg_end(b, nlh);
}

/* Inside a nest: mnl_attr_for_each_nested would stop quietly here. */
static void bad_nested_overrun(struct nlbuf *b)
{
	struct nlmsghdr *nlh = dev_begin(b);
	struct nlattr *peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	struct nlattr *peer = mnl_attr_nest_start(nlh, 0);
	struct nlattr *a;

	put_key(nlh, WGPEER_A_PUBLIC_KEY, PEER1_HEX);
	a = mnl_nlmsg_get_payload_tail(nlh);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 1);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, 1); /* bytes after the nest */
	a->nla_len = 12;
	msg_end(b, nlh);
}

static void bad_msg_overrun(struct nlbuf *b)
{
	struct nlmsghdr *nlh = dev_begin(b);

	msg_end(b, nlh);
	nlh->nlmsg_len += 8;
}

static void put_one_peer(struct nlbuf *b, void (*fill)(struct nlmsghdr *nlh))
{
	struct nlmsghdr *nlh = dev_begin(b);
	struct nlattr *peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	struct nlattr *peer = mnl_attr_nest_start(nlh, 0);

	fill(nlh);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	msg_end(b, nlh);
}

static void fill_no_key(struct nlmsghdr *nlh)
{
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 1);
}

static void fill_ep_family_mismatch(struct nlmsghdr *nlh)
{
	struct sockaddr_in in = {.sin_family = AF_INET6};

	put_key(nlh, WGPEER_A_PUBLIC_KEY, PEER1_HEX);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(in), &in);
}

static void fill_ep_short(struct nlmsghdr *nlh)
{
	struct sockaddr_in in = {.sin_family = AF_INET};

	put_key(nlh, WGPEER_A_PUBLIC_KEY, PEER1_HEX);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(in) - 1, &in);
}

static void fill_handshake_nsec(struct nlmsghdr *nlh)
{
	struct __kernel_timespec hs = {.tv_sec = 1, .tv_nsec = 1000000000};

	put_key(nlh, WGPEER_A_PUBLIC_KEY, PEER1_HEX);
	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(hs), &hs);
}

static void fill_aip_with(struct nlmsghdr *nlh, uint16_t family, size_t addr_len, uint8_t cidr)
{
	uint8_t addr[16] = {10};
	struct nlattr *aips, *aip;

	put_key(nlh, WGPEER_A_PUBLIC_KEY, PEER1_HEX);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	aip = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, family);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, addr_len, addr);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, cidr);
	mnl_attr_nest_end(nlh, aip);
	mnl_attr_nest_end(nlh, aips);
}

static void fill_aip_v4_long_addr(struct nlmsghdr *nlh)
{
	fill_aip_with(nlh, AF_INET, 16, 8);
}

static void fill_aip_v4_cidr33(struct nlmsghdr *nlh)
{
	fill_aip_with(nlh, AF_INET, 4, 33);
}

static void fill_aip_bad_family(struct nlmsghdr *nlh)
{
	fill_aip_with(nlh, AF_UNIX, 4, 8);
}

static void fill_protocol_2(struct nlmsghdr *nlh)
{
	put_key(nlh, WGPEER_A_PUBLIC_KEY, PEER1_HEX);
	mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 2);
}

static void bad_peer_no_key(struct nlbuf *b)
{
	put_one_peer(b, fill_no_key);
}
static void bad_ep_family(struct nlbuf *b)
{
	put_one_peer(b, fill_ep_family_mismatch);
}
static void bad_ep_short(struct nlbuf *b)
{
	put_one_peer(b, fill_ep_short);
}
static void bad_handshake(struct nlbuf *b)
{
	put_one_peer(b, fill_handshake_nsec);
}
static void bad_aip_len(struct nlbuf *b)
{
	put_one_peer(b, fill_aip_v4_long_addr);
}
static void bad_aip_cidr(struct nlbuf *b)
{
	put_one_peer(b, fill_aip_v4_cidr33);
}
static void bad_aip_family(struct nlbuf *b)
{
	put_one_peer(b, fill_aip_bad_family);
}
static void bad_protocol(struct nlbuf *b)
{
	put_one_peer(b, fill_protocol_2);
}

static void bad_wrong_cmd(struct nlbuf *b)
{
	struct nlmsghdr *nlh = msg_begin(b, FAMILY, WG_CMD_SET_DEVICE);

	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	msg_end(b, nlh);
}

static void bad_only_done(struct nlbuf *b)
{
	put_done(b);
}

static void bad_nlmsg_error(struct nlbuf *b)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(b->data + b->len);
	struct nlmsgerr *err = mnl_nlmsg_put_extra_header(nlh, sizeof(*err));

	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = SEQ;
	nlh->nlmsg_pid = PORTID;
	err->error = -ENODEV;
	msg_end(b, nlh);
}

static void bad_dump_intr(struct nlbuf *b)
{
	struct nlmsghdr *nlh = dev_begin(b);

	nlh->nlmsg_flags |= NLM_F_DUMP_INTR;
	msg_end(b, nlh);
}

static void bad_seq(struct nlbuf *b)
{
	struct nlmsghdr *nlh = dev_begin(b);

	nlh->nlmsg_seq = SEQ + 1;
	msg_end(b, nlh);
}

/* Found by fuzzing: libmnl's own check reads this length as negative and lets it through. */
static void bad_msg_len_huge(struct nlbuf *b)
{
	struct nlmsghdr *nlh = dev_begin(b);

	msg_end(b, nlh);
	nlh->nlmsg_len = 0xfffffff0;
}

static void bad_trailing_bytes(struct nlbuf *b)
{
	struct nlmsghdr *nlh = dev_begin(b);

	msg_end(b, nlh);
	memset(b->data + b->len, 0, 8);
	b->len += 8; /* too short for a header */
}

void test_kernel_parse_malformed(void **state)
{
	static const struct {
		const char *name;
		bad_builder build;
		int want;
	} cases[] = {
		{"listen port as u32", bad_port_width, -EBADMSG},
		{"31-byte key", bad_key_len, -EBADMSG},
		{"unterminated name", bad_ifname_unterminated, -EBADMSG},
		{"name too long", bad_ifname_long, -EBADMSG},
		{"attribute overruns message", bad_attr_overrun, -EBADMSG},
		{"attribute overruns nest", bad_nested_overrun, -EBADMSG},
		{"message overruns read", bad_msg_overrun, -EBADMSG},
		{"message length 0xfffffff0", bad_msg_len_huge, -EBADMSG},
		{"trailing bytes", bad_trailing_bytes, -EBADMSG},
		{"peer without key", bad_peer_no_key, -EBADMSG},
		{"endpoint family/length mismatch", bad_ep_family, -EBADMSG},
		{"endpoint too short", bad_ep_short, -EBADMSG},
		{"handshake nsec", bad_handshake, -EBADMSG},
		{"v4 allowed IP with 16 bytes", bad_aip_len, -EBADMSG},
		{"v4 allowed IP /33", bad_aip_cidr, -EBADMSG},
		{"allowed IP family", bad_aip_family, -EBADMSG},
		{"protocol version 2", bad_protocol, -EPROTO},
		{"wrong command", bad_wrong_cmd, -EBADMSG},
		{"DONE without a device", bad_only_done, -EBADMSG},
		{"NLMSG_ERROR", bad_nlmsg_error, -ENODEV},
		{"dump interrupted", bad_dump_intr, -EINTR},
		{"sequence number", bad_seq, -EPROTO},
	};
	static struct nlbuf b;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct wgctl_device *dev = wgctl_device_new();
		int r;

		memset(&b, 0, sizeof(b));
		cases[i].build(&b);
		r = wgctl_kernel_parse_dump(b.data, b.len, SEQ, PORTID, dev);
		if (r != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].name, r, cases[i].want);
		wgctl_device_free(dev);
	}
}

static void put_link(struct nlbuf *b, const char *name, const char *kind)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(b->data + b->len);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_MULTI;
	nlh->nlmsg_seq = SEQ;
	nlh->nlmsg_pid = PORTID;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put_u32(nlh, IFLA_MTU, 1420);
	if (kind) {
		struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);

		mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
		mnl_attr_nest_end(nlh, li);
	}
	msg_end(b, nlh);
}

void test_kernel_parse_links(void **state)
{
	static struct nlbuf b;
	struct wgctl_names names = {0};
	char **v;
	size_t n;

	b.len = 0;
	put_link(&b, "lo", NULL);
	put_link(&b, "wg1", "wireguard");
	put_link(&b, "veth0", "veth");
	put_link(&b, "wg0", "wireguard");
	put_done(&b);
	assert_int_equal(wgctl_kernel_parse_links(b.data, b.len, SEQ, PORTID, &names), 0);
	wgctl_names_finish(&names, &v, &n);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "wg0");
	assert_string_equal(v[1], "wg1");
	wgctl_names_free(v, n);
}

/* ---- kernel: the SET message ---- */

struct set_seen {
	char ifname[IFNAMSIZ];
	int n_dev_attrs, n_peers, n_peer_attrs;
	bool peers_nested_flag, peer_nested_flag;
	uint8_t pub[WGCTL_KEY_LEN];
	uint32_t flags;
	uint8_t ep[sizeof(struct sockaddr_in6)];
	size_t ep_len;
};

static int set_peer_attr_cb(const struct nlattr *a, void *data)
{
	struct set_seen *s = data;

	s->n_peer_attrs++;
	switch (mnl_attr_get_type(a)) {
	case WGPEER_A_PUBLIC_KEY:
		assert_int_equal(mnl_attr_validate2(a, MNL_TYPE_BINARY, WGCTL_KEY_LEN), 0);
		memcpy(s->pub, mnl_attr_get_payload(a), WGCTL_KEY_LEN);
		break;
	case WGPEER_A_FLAGS:
		assert_int_equal(mnl_attr_validate(a, MNL_TYPE_U32), 0);
		s->flags = mnl_attr_get_u32(a);
		break;
	case WGPEER_A_ENDPOINT:
		s->ep_len = mnl_attr_get_payload_len(a);
		assert_true(s->ep_len <= sizeof(s->ep));
		memcpy(s->ep, mnl_attr_get_payload(a), s->ep_len);
		break;
	default:
		fail_msg("unexpected peer attribute %u", mnl_attr_get_type(a));
	}
	return MNL_CB_OK;
}

static int set_peers_cb(const struct nlattr *a, void *data)
{
	struct set_seen *s = data;

	s->n_peers++;
	s->peer_nested_flag = a->nla_type & NLA_F_NESTED;
	return mnl_attr_parse_nested(a, set_peer_attr_cb, s);
}

static int set_dev_attr_cb(const struct nlattr *a, void *data)
{
	struct set_seen *s = data;

	s->n_dev_attrs++;
	switch (mnl_attr_get_type(a)) {
	case WGDEVICE_A_IFNAME:
		assert_int_equal(mnl_attr_validate(a, MNL_TYPE_NUL_STRING), 0);
		snprintf(s->ifname, sizeof(s->ifname), "%s", mnl_attr_get_str(a));
		break;
	case WGDEVICE_A_PEERS:
		s->peers_nested_flag = a->nla_type & NLA_F_NESTED;
		return mnl_attr_parse_nested(a, set_peers_cb, s);
	default: /* no private key, port, fwmark or REPLACE_PEERS: only the endpoint changes */
		fail_msg("unexpected device attribute %u", mnl_attr_get_type(a));
	}
	return MNL_CB_OK;
}

static void check_set_message(const struct sockaddr *ep, socklen_t len)
{
	uint8_t buf[512], pub[WGCTL_KEY_LEN];
	struct set_seen seen = {0};
	struct nlmsghdr *nlh = NULL;
	const struct genlmsghdr *genl;

	hex_key(pub, PEER1_HEX);
	assert_int_equal(wgctl_kernel_build_set_endpoint(buf, sizeof(buf), FAMILY, SEQ, "wg0", pub,
							 ep, len, &nlh),
			 0);
	assert_ptr_equal(nlh, buf);
	assert_int_equal(nlh->nlmsg_type, FAMILY);
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
	assert_int_equal(nlh->nlmsg_seq, SEQ);
	genl = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(genl->cmd, WG_CMD_SET_DEVICE);
	assert_int_equal(genl->version, WG_GENL_VERSION);
	assert_int_equal(mnl_attr_parse(nlh, sizeof(*genl), set_dev_attr_cb, &seen), MNL_CB_OK);
	assert_string_equal(seen.ifname, "wg0");
	assert_int_equal(seen.n_dev_attrs, 2);
	assert_int_equal(seen.n_peers, 1);
	assert_true(seen.peers_nested_flag);
	assert_true(seen.peer_nested_flag);
	assert_int_equal(seen.n_peer_attrs, 3);
	assert_memory_equal(seen.pub, pub, WGCTL_KEY_LEN);
	assert_int_equal(seen.flags, WGPEER_F_UPDATE_ONLY);
	assert_int_equal(seen.ep_len, len);
	assert_memory_equal(seen.ep, ep, len);
}

void test_kernel_build_set_endpoint(void **state)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(51820)};
	struct sockaddr_in6 in6 = {
		.sin6_family = AF_INET6, .sin6_port = htons(1), .sin6_scope_id = 3};
	uint8_t buf[512], pub[WGCTL_KEY_LEN] = {0};
	struct nlmsghdr *nlh = NULL;

	inet_pton(AF_INET, "203.0.113.9", &in.sin_addr);
	inet_pton(AF_INET6, "fe80::9", &in6.sin6_addr);
	check_set_message((struct sockaddr *)&in, sizeof(in));
	check_set_message((struct sockaddr *)&in6, sizeof(in6));

	assert_int_equal(wgctl_kernel_build_set_endpoint(buf, 40, FAMILY, SEQ, "wg0", pub,
							 (struct sockaddr *)&in, sizeof(in), &nlh),
			 -ENOBUFS);
	assert_int_equal(wgctl_kernel_build_set_endpoint(buf, sizeof(buf), FAMILY, SEQ, "wg0", pub,
							 (struct sockaddr *)&in, sizeof(in6), &nlh),
			 -EINVAL);
	assert_int_equal(wgctl_kernel_build_set_endpoint(buf, sizeof(buf), FAMILY, SEQ, "a/b", pub,
							 (struct sockaddr *)&in, sizeof(in), &nlh),
			 -EINVAL);
	in.sin_family = AF_UNIX;
	assert_int_equal(wgctl_kernel_build_set_endpoint(buf, sizeof(buf), FAMILY, SEQ, "wg0", pub,
							 (struct sockaddr *)&in, sizeof(in), &nlh),
			 -EAFNOSUPPORT);
	assert_null(nlh);
}

/* ---- kernel: the real thing, where there is no module ---- */

void test_kernel_without_module(void **state)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(1)};
	struct wgctl_device *dev = NULL;
	uint8_t pub[WGCTL_KEY_LEN] = {1};
	struct stat st;
	char **names;
	size_t n;

	if (stat("/sys/module/wireguard", &st) == 0)
		skip();
	assert_int_equal(wgctl_kernel.get("wg0", &dev), -EPROTONOSUPPORT);
	assert_null(dev);
	assert_int_equal(wgctl_kernel.set_endpoint("wg0", pub, (struct sockaddr *)&in, sizeof(in)),
			 -EPROTONOSUPPORT);
	/* Listing goes by link kind over rtnetlink: it works, and there is nothing to find. */
	assert_int_equal(wgctl_kernel.list(&names, &n), 0);
	assert_int_equal(n, 0);
	wgctl_names_free(names, n);
	assert_int_equal(wgctl_kernel.get("../x", &dev), -EINVAL);
}
