/* SPDX-License-Identifier: MIT */
/* watcher: rtnetlink link messages, parsed one at a time, and the link dump at start. */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include "daemon/watcher.h"
#include "daemon/watcher_netlink.h"

/* ---- rtnetlink messages ---- */

static int linkinfo_cb(const struct nlattr *a, void *data)
{
	struct watcher_link *link = data;
	const char *kind;

	if (mnl_attr_get_type(a) != IFLA_INFO_KIND)
		return MNL_CB_OK;
	if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_ERROR;
	kind = mnl_attr_get_str(a);
	/* A kind too long for the buffer is none we act on: leave it empty, never truncate. */
	if (strlen(kind) < sizeof(link->kind))
		strcpy(link->kind, kind);
	return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *a, void *data)
{
	struct watcher_link *link = data;
	const char *name;

	switch (mnl_attr_get_type(a)) {
	case IFLA_IFNAME:
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
			return MNL_CB_ERROR;
		name = mnl_attr_get_str(a);
		if (!wgctl_ifname_valid(name))
			return MNL_CB_ERROR;
		strcpy(link->name, name);
		return MNL_CB_OK;
	case IFLA_LINKINFO:
		if (mnl_attr_validate(a, MNL_TYPE_NESTED) < 0)
			return MNL_CB_ERROR;
		return mnl_attr_parse_nested(a, linkinfo_cb, link);
	}
	return MNL_CB_OK;
}

int watcher_parse_link(const void *buf, size_t len, struct watcher_link *ret)
{
	const struct nlmsghdr *nlh = buf;
	const struct ifinfomsg *ifm;
	struct watcher_link link = {0};

	if (len < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > len)
		return -EBADMSG;
	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return -ENOMSG;
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifm)))
		return -EBADMSG;
	ifm = mnl_nlmsg_get_payload(nlh);
	if (ifm->ifi_index <= 0)
		return -EBADMSG;
	link.removed = nlh->nlmsg_type == RTM_DELLINK;
	link.ifindex = (uint32_t)ifm->ifi_index;
	if (mnl_attr_parse(nlh, sizeof(*ifm), link_attr_cb, &link) != MNL_CB_OK || !link.name[0])
		return -EBADMSG;
	*ret = link;
	return 0;
}

int watcher_parse_addr(const void *buf, size_t len, struct watcher_addr *ret)
{
	const struct nlmsghdr *nlh = buf;
	const struct ifaddrmsg *ifa;

	if (len < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > len)
		return -EBADMSG;
	if (nlh->nlmsg_type != RTM_NEWADDR && nlh->nlmsg_type != RTM_DELADDR)
		return -ENOMSG;
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)))
		return -EBADMSG;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (!ifa->ifa_index || (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
		return -EBADMSG;
	*ret = (struct watcher_addr){
		.removed = nlh->nlmsg_type == RTM_DELADDR,
		.ifindex = ifa->ifa_index,
		.family = ifa->ifa_family,
		.scope = ifa->ifa_scope,
	};
	return 0;
}

struct dump {
	GHashTable *kernel;
	GPtrArray *names;
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump *d = data;
	struct watcher_link link;

	if (watcher_parse_link(nlh, nlh->nlmsg_len, &link) < 0)
		return MNL_CB_OK; /* one odd link is not a reason to lose the others */
	if (!strcmp(link.kind, WATCHER_KIND_WIREGUARD)) {
		g_hash_table_insert(d->kernel, GUINT_TO_POINTER(link.ifindex), g_strdup(link.name));
		g_ptr_array_add(d->names, g_strdup(link.name));
	}
	return MNL_CB_OK;
}

/* An RTM_GETLINK dump on a socket of its own; the kernel answers at once. */
int watcher_dump_links(GHashTable *kernel, GPtrArray *names)
{
	struct dump d = {.kernel = kernel, .names = names};
	char *buf = g_malloc(WATCHER_NL_BUFSIZE);
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	struct nlmsghdr *nlh;
	struct rtgenmsg *rt;
	uint32_t seq = (uint32_t)g_get_monotonic_time() | 1, portid;
	int r = -errno;

	if (!nl)
		goto out;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	rt = mnl_nlmsg_put_extra_header(nlh, sizeof(*rt));
	rt->rtgen_family = AF_UNSPEC;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	do {
		ssize_t n = mnl_socket_recvfrom(nl, buf, WATCHER_NL_BUFSIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		r = mnl_cb_run(buf, (size_t)n, seq, portid, dump_cb, &d);
	} while (r == MNL_CB_OK);
	r = r == MNL_CB_STOP ? 0 : (errno ? -errno : -EBADMSG);
out:
	if (nl)
		mnl_socket_close(nl);
	g_free(buf);
	return r;
}
