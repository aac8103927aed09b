// SPDX-License-Identifier: MIT
/*
 * watcher: the rtnetlink link parser on messages built here with libmnl (the kernel module is
 * absent here, so a "wireguard" link can only be canned); the filter; and the UAPI path live,
 * against fake implementations on unix sockets in a temporary WICE_UAPI_DIR: found at start,
 * added and removed within a second of the socket, filtered, a socket that listens late, peer
 * changes seen by the re-read and at once on a poke. As root, also a TUN link whose socket was
 * already there, and the real `wice wg-userspace` in /var/run/wireguard.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "daemon/watcher.h"

#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))
#define PEER1_HEX     "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
#define PEER2_HEX     "0101010101010101010101010101010101010101010101010101010101010101"
#define WITHIN_MS     1000 /* the promise */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- canned rtnetlink messages ---- */

static struct nlmsghdr *put_link(char *buf, uint16_t type, int ifindex, const char *name,
				 const char *kind)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;
	struct nlattr *nest;

	nlh->nlmsg_type = type;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_index = ifindex;
	mnl_attr_put_u32(nlh, IFLA_MTU, 1420);
	if (name)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (kind) {
		nest = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
		mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
		mnl_attr_nest_end(nlh, nest);
	}
	return nlh;
}

static void test_parse_link(void **state)
{
	char buf[8192];
	struct watcher_link link;
	struct nlmsghdr *nlh;

	nlh = put_link(buf, RTM_NEWLINK, 7, "wg0", "wireguard");
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len, &link), 0);
	assert_false(link.removed);
	assert_int_equal(link.ifindex, 7);
	assert_string_equal(link.name, "wg0");
	assert_string_equal(link.kind, "wireguard");

	nlh = put_link(buf, RTM_DELLINK, 7, "wg0", "wireguard");
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len, &link), 0);
	assert_true(link.removed);

	nlh = put_link(buf, RTM_NEWLINK, 3, "eth0", NULL);
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len, &link), 0);
	assert_string_equal(link.kind, "");

	/* A kind longer than any we know is none, never a truncated match. */
	nlh = put_link(buf, RTM_NEWLINK, 3, "x", "wireguardwireguardwireguard");
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len, &link), 0);
	assert_string_equal(link.kind, "");

	nlh = put_link(buf, RTM_NEWADDR, 3, "wg0", "wireguard");
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len, &link), -ENOMSG);
}

static void test_parse_link_bad(void **state)
{
	char buf[8192];
	struct watcher_link link = {.ifindex = 99};
	struct nlmsghdr *nlh;
	struct nlattr *a;

	nlh = put_link(buf, RTM_NEWLINK, 7, "wg0", "wireguard");
	/* Shorter than the header says: a read cut short. */
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len - 1, &link), -EBADMSG);
	assert_int_equal(watcher_parse_link(buf, 8, &link), -EBADMSG);
	/* No ifinfomsg. */
	nlh->nlmsg_len = (uint32_t)mnl_nlmsg_size(2);
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len, &link), -EBADMSG);
	/* No name, a bad name, index 0. */
	nlh = put_link(buf, RTM_NEWLINK, 7, NULL, "wireguard");
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len, &link), -EBADMSG);
	nlh = put_link(buf, RTM_NEWLINK, 7, "a/b", "wireguard");
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len, &link), -EBADMSG);
	nlh = put_link(buf, RTM_NEWLINK, 0, "wg0", "wireguard");
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len, &link), -EBADMSG);
	/* A name without its NUL. */
	nlh = put_link(buf, RTM_NEWLINK, 7, NULL, NULL);
	mnl_attr_put(nlh, IFLA_IFNAME, 3, "wg0");
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len, &link), -EBADMSG);
	/* An attribute claiming more than the message holds. */
	nlh = put_link(buf, RTM_NEWLINK, 7, "wg0", "wireguard");
	a = (struct nlattr *)((char *)nlh + mnl_nlmsg_size(sizeof(struct ifinfomsg)));
	a->nla_len = 2000;
	assert_int_equal(watcher_parse_link(buf, nlh->nlmsg_len, &link), -EBADMSG);
	assert_int_equal(link.ifindex, 99); /* untouched on failure */
}

static struct nlmsghdr *put_addr(char *buf, uint16_t type, int family, int ifindex, int scope)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;

	nlh->nlmsg_type = type;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)family;
	ifa->ifa_prefixlen = family == AF_INET ? 24 : 64;
	ifa->ifa_scope = (uint8_t)scope;
	ifa->ifa_index = (uint32_t)ifindex;
	mnl_attr_put_u32(nlh, IFA_ADDRESS, htonl(0x0a000002));
	return nlh;
}

static const struct {
	uint16_t type;
	int family, ifindex, scope;
	int want;
	bool removed;
} addr_cases[] = {
	{RTM_NEWADDR, AF_INET, 3, RT_SCOPE_UNIVERSE, 0, false},
	{RTM_DELADDR, AF_INET6, 4, RT_SCOPE_LINK, 0, true},
	{RTM_NEWLINK, AF_INET, 3, RT_SCOPE_UNIVERSE, -ENOMSG, false},
	{RTM_NEWADDR, AF_INET, 0, RT_SCOPE_UNIVERSE, -EBADMSG, false}, /* no interface */
	{RTM_NEWADDR, AF_PACKET, 3, RT_SCOPE_UNIVERSE, -EBADMSG, false},
};

static void test_parse_addr(void **state)
{
	char buf[512];
	struct watcher_addr a;
	struct nlmsghdr *nlh;

	for (size_t i = 0; i < ARRAY_SIZE(addr_cases); i++) {
		memset(&a, 0x5a, sizeof(a));
		nlh = put_addr(buf, addr_cases[i].type, addr_cases[i].family, addr_cases[i].ifindex,
			       addr_cases[i].scope);
		if (watcher_parse_addr(buf, nlh->nlmsg_len, &a) != addr_cases[i].want)
			fail_msg("case %zu", i);
		if (addr_cases[i].want)
			continue;
		assert_int_equal(a.removed, addr_cases[i].removed);
		assert_int_equal(a.ifindex, addr_cases[i].ifindex);
		assert_int_equal(a.family, addr_cases[i].family);
		assert_int_equal(a.scope, addr_cases[i].scope);
	}
	/* Cut short: before the header's end, before the ifaddrmsg's. */
	nlh = put_addr(buf, RTM_NEWADDR, AF_INET, 3, RT_SCOPE_UNIVERSE);
	assert_int_equal(watcher_parse_addr(buf, nlh->nlmsg_len - 1, &a), -EBADMSG);
	nlh->nlmsg_len = (uint32_t)mnl_nlmsg_size(2);
	assert_int_equal(watcher_parse_addr(buf, nlh->nlmsg_len, &a), -EBADMSG);
}

static void test_filter(void **state)
{
	const char *names[] = {"wg0", "wg*"};
	const char *globs[] = {"wg*", "tun[0-9]"};
	struct watcher_config all = {0};
	struct watcher_config by_name = {
		.names = names, .n_names = 2, .globs = globs, .n_globs = 2};
	struct watcher_config by_glob = {.globs = globs, .n_globs = 2};

	assert_true(watcher_config_allows(&all, "anything"));
	assert_false(watcher_config_allows(&all, "a/b"));
	/* Names are exact, even one that looks like a glob; they win over globs. */
	assert_true(watcher_config_allows(&by_name, "wg0"));
	assert_true(watcher_config_allows(&by_name, "wg*"));
	assert_false(watcher_config_allows(&by_name, "wg1"));
	assert_true(watcher_config_allows(&by_glob, "wg1"));
	assert_true(watcher_config_allows(&by_glob, "tun3"));
	assert_false(watcher_config_allows(&by_glob, "tun33"));
	assert_false(watcher_config_allows(&by_glob, "eth0"));
}

/* ---- fake userspace implementations ---- */

struct fake {
	char name[IFNAMSIZ];
	char path[108];
	int fd;
	pthread_t thread;
	bool threaded;
	pthread_mutex_t lock;
	int n_peers; /* what get=1 shows */
};

static void fake_serve_one(struct fake *fk, int c)
{
	char buf[512], resp[1024];
	size_t got = 0;
	ssize_t n;
	int peers, len;

	while (got < sizeof(buf) - 1 && (n = recv(c, buf + got, sizeof(buf) - 1 - got, 0)) > 0) {
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\n\n"))
			break;
	}
	pthread_mutex_lock(&fk->lock);
	peers = fk->n_peers;
	pthread_mutex_unlock(&fk->lock);
	len = snprintf(resp, sizeof(resp), "listen_port=51820\n");
	if (peers >= 1)
		len += snprintf(resp + len, sizeof(resp) - (size_t)len,
				"public_key=" PEER1_HEX "\nallowed_ip=10.0.0.2/32\n");
	if (peers >= 2)
		len += snprintf(resp + len, sizeof(resp) - (size_t)len,
				"public_key=" PEER2_HEX "\nendpoint=192.0.2.1:51820\n");
	len += snprintf(resp + len, sizeof(resp) - (size_t)len, "errno=0\n\n");
	(void)!send(c, resp, (size_t)len, MSG_NOSIGNAL);
}

static void *fake_thread(void *data)
{
	struct fake *fk = data;
	int c;

	while ((c = accept(fk->fd, NULL, NULL)) >= 0) {
		fake_serve_one(fk, c);
		close(c);
	}
	return NULL;
}

/* Binds dir/name.sock; listens and serves at once when listen_now. */
static void fake_start(struct fake *fk, const char *dir, const char *name, bool listen_now)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	memset(fk, 0, sizeof(*fk));
	pthread_mutex_init(&fk->lock, NULL);
	strcpy(fk->name, name);
	snprintf(fk->path, sizeof(fk->path), "%s/%s.sock", dir, name);
	strcpy(sun.sun_path, fk->path);
	fk->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fk->fd >= 0);
	assert_int_equal(bind(fk->fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	if (listen_now) {
		assert_int_equal(listen(fk->fd, 8), 0);
		assert_int_equal(pthread_create(&fk->thread, NULL, fake_thread, fk), 0);
		fk->threaded = true;
	}
}

static void fake_listen(struct fake *fk)
{
	assert_int_equal(listen(fk->fd, 8), 0);
	assert_int_equal(pthread_create(&fk->thread, NULL, fake_thread, fk), 0);
	fk->threaded = true;
}

static void fake_set_peers(struct fake *fk, int n)
{
	pthread_mutex_lock(&fk->lock);
	fk->n_peers = n;
	pthread_mutex_unlock(&fk->lock);
}

/* As an implementation exits: the socket file goes, then the socket. */
static void fake_stop(struct fake *fk)
{
	unlink(fk->path);
	shutdown(fk->fd, SHUT_RDWR);
	if (fk->threaded)
		pthread_join(fk->thread, NULL);
	close(fk->fd);
	pthread_mutex_destroy(&fk->lock);
}

/* ---- the watcher, live ---- */

#define MAX_EVENTS 64

struct event {
	char name[IFNAMSIZ];
	char what; /* 'a'dded, 'r'emoved, 'c'hanged */
	enum watcher_kind kind;
	size_t n_peers;
	int64_t at;
};

struct fx {
	char dir[96];
	GMainContext *ctx;
	GSource *wake;
	struct watcher *w;
	struct event ev[MAX_EVENTS];
	size_t n_ev;
};

static void record(struct fx *f, char what, const char *name, enum watcher_kind kind,
		   size_t n_peers)
{
	assert_true(f->n_ev < MAX_EVENTS);
	f->ev[f->n_ev++] =
		(struct event){.what = what, .kind = kind, .n_peers = n_peers, .at = now_ms()};
	strcpy(f->ev[f->n_ev - 1].name, name);
}

static void on_added(struct watcher *w, const char *name, enum watcher_kind kind, void *ud)
{
	record(ud, 'a', name, kind, 0);
}

static void on_removed(struct watcher *w, const char *name, void *ud)
{
	record(ud, 'r', name, 0, 0);
}

static void on_changed(struct watcher *w, const char *name, enum watcher_kind kind,
		       const struct wgctl_device *dev, void *ud)
{
	assert_string_equal(dev->name, name);
	record(ud, 'c', name, kind, dev->n_peers);
}

/* The index of the first event after from for name, or -1 when none came within ms. */
static int wait_event(struct fx *f, size_t from, char what, const char *name, int ms)
{
	int64_t deadline = now_ms() + ms;

	for (;;) {
		for (size_t i = from; i < f->n_ev; i++)
			if (f->ev[i].what == what && !strcmp(f->ev[i].name, name))
				return (int)i;
		if (now_ms() > deadline)
			return -1;
		g_main_context_iteration(f->ctx, TRUE);
	}
}

static bool saw(struct fx *f, size_t from, char what, const char *name)
{
	for (size_t i = from; i < f->n_ev; i++)
		if (f->ev[i].what == what && !strcmp(f->ev[i].name, name))
			return true;
	return false;
}

static void run_for(struct fx *f, int ms)
{
	int64_t deadline = now_ms() + ms;

	while (now_ms() < deadline)
		g_main_context_iteration(f->ctx, TRUE);
}

static gboolean wake(gpointer data)
{
	return G_SOURCE_CONTINUE;
}

static void fx_start(struct fx *f, const char *const *globs, size_t n_globs, uint32_t reread)
{
	struct watcher_config cfg = {
		.globs = globs,
		.n_globs = n_globs,
		.reread_ms = reread,
		.on_interface_added = on_added,
		.on_interface_removed = on_removed,
		.on_interface_changed = on_changed,
		.userdata = f,
	};

	f->ctx = g_main_context_new();
	/* Iterations wake often enough to check deadlines. */
	f->wake = g_timeout_source_new(5);
	g_source_set_callback(f->wake, wake, NULL, NULL);
	g_source_attach(f->wake, f->ctx);
	assert_int_equal(watcher_new(f->ctx, &cfg, &f->w), 0);
}

static void fx_stop(struct fx *f)
{
	watcher_free(f->w);
	g_source_destroy(f->wake);
	g_source_unref(f->wake);
	g_main_context_unref(f->ctx);
}

static int setup(void **state)
{
	struct fx *f = g_new0(struct fx, 1);
	char tmpl[] = "/tmp/wice-watcher-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	/* Not there yet: the watcher makes it. */
	snprintf(f->dir, sizeof(f->dir), "%s/wireguard", tmpl);
	setenv("WICE_UAPI_DIR", f->dir, 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %.*s", (int)(strlen(f->dir) - strlen("/wireguard")),
		 f->dir);
	assert_int_equal(system(cmd), 0);
	unsetenv("WICE_UAPI_DIR");
	g_free(f);
	return 0;
}

static void test_uapi_lifecycle(void **state)
{
	static const char *const globs[] = {"wg*"};
	struct fx *f = *state;
	struct fake pre, a, other;
	enum watcher_kind kind;
	struct stat st;
	int64_t t0;
	size_t mark;
	int i;

	/* Made before the watcher: found by the initial enumeration. */
	assert_int_equal(mkdir(f->dir, 0700), 0);
	fake_start(&pre, f->dir, "wgpre", true);
	fx_start(f, globs, 1, 0);
	i = wait_event(f, 0, 'a', "wgpre", WITHIN_MS);
	assert_true(i >= 0);
	assert_int_equal(f->ev[i].kind, WATCHER_KIND_UAPI);
	assert_true(watcher_has(f->w, "wgpre", &kind));
	/* Its configuration follows the addition. */
	assert_true(wait_event(f, (size_t)i, 'c', "wgpre", WITHIN_MS) >= 0);

	/* Made after: seen within a second of the socket appearing. */
	mark = f->n_ev;
	t0 = now_ms();
	fake_start(&a, f->dir, "wga", true);
	fake_set_peers(&a, 1);
	fake_start(&other, f->dir, "other0", true); /* the filter keeps it out */
	i = wait_event(f, mark, 'a', "wga", WITHIN_MS);
	assert_true(i >= 0);
	assert_true(f->ev[i].at - t0 < WITHIN_MS);
	i = wait_event(f, (size_t)i, 'c', "wga", WITHIN_MS);
	assert_true(i >= 0);
	assert_int_equal(f->ev[i].n_peers, 1);

	/* A `wg set` adding a peer: found by the re-read within a second (plus one read). */
	mark = f->n_ev;
	t0 = now_ms();
	fake_set_peers(&a, 2);
	i = wait_event(f, mark, 'c', "wga", WATCHER_REREAD_MS + 500);
	assert_true(i >= 0);
	assert_int_equal(f->ev[i].n_peers, 2);
	/* Unchanged configurations are not reported again. */
	mark = f->n_ev;
	run_for(f, WATCHER_REREAD_MS + 300);
	assert_false(saw(f, mark, 'c', "wga"));
	/* A poke reads at once. */
	fake_set_peers(&a, 0);
	t0 = now_ms();
	assert_int_equal(watcher_poke(f->w, "wga"), 0);
	i = wait_event(f, mark, 'c', "wga", 300);
	assert_true(i >= 0);
	assert_int_equal(f->ev[i].n_peers, 0);
	assert_true(f->ev[i].at - t0 < 300);
	assert_int_equal(watcher_poke(f->w, "other0"), -ENOENT);
	assert_int_equal(watcher_poke(f->w, "a/b"), -EINVAL);

	/* Gone within a second. */
	mark = f->n_ev;
	t0 = now_ms();
	fake_stop(&a);
	i = wait_event(f, mark, 'r', "wga", WITHIN_MS);
	assert_true(i >= 0);
	assert_true(f->ev[i].at - t0 < WITHIN_MS);
	assert_false(watcher_has(f->w, "wga", NULL));
	assert_false(saw(f, 0, 'a', "other0"));

	/* The directory removed under us is made again and watched. */
	fake_stop(&pre);
	fake_stop(&other);
	assert_true(wait_event(f, mark, 'r', "wgpre", WITHIN_MS) >= 0);
	assert_int_equal(rmdir(f->dir), 0);
	run_for(f, 100);
	assert_int_equal(stat(f->dir, &st), 0);
	mark = f->n_ev;
	fake_start(&a, f->dir, "wgb", true);
	assert_true(wait_event(f, mark, 'a', "wgb", WITHIN_MS) >= 0);
	fake_stop(&a);
	assert_true(wait_event(f, mark, 'r', "wgb", WITHIN_MS) >= 0);
	fx_stop(f);
}

/* bind() makes the file; the owner listens a little later. Still seen, within the second. */
static void test_uapi_late_listen(void **state)
{
	struct fx *f = *state;
	struct fake late, stale;
	int64_t t0;
	int i;

	fx_start(f, NULL, 0, WATCHER_REREAD_OFF);
	run_for(f, 50);
	t0 = now_ms();
	fake_start(&late, f->dir, "wglate", false);
	fake_start(&stale, f->dir, "wgstale", false); /* never listens: a crash's leftover */
	run_for(f, 150);
	assert_false(saw(f, 0, 'a', "wglate"));
	fake_listen(&late);
	i = wait_event(f, 0, 'a', "wglate", WITHIN_MS);
	assert_true(i >= 0);
	assert_true(f->ev[i].at - t0 < WITHIN_MS);
	run_for(f, WATCHER_SETTLE_MS);
	assert_false(saw(f, 0, 'a', "wgstale"));
	fake_stop(&late);
	fake_stop(&stale);
	fx_stop(f);
}

static int tun_open(const char *name)
{
	struct ifreq ifr = {0};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	strcpy(ifr.ifr_name, name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The rtnetlink path, live: a socket past its settle time (so inotify has nothing more to say)
 * becomes live and its TUN link appears: the RTM_NEWLINK of kind "tun" finds it.
 */
static void test_tun_link_event(void **state)
{
	struct fx *f = *state;
	struct fake late;
	char name[IFNAMSIZ];
	int64_t t0;
	int tun, i;

	snprintf(name, sizeof(name), "wwt%d", getpid() % 100000);
	tun = tun_open("wwtprobe");
	if (tun < 0)
		skip(); /* needs CAP_NET_ADMIN and /dev/net/tun */
	close(tun);
	fx_start(f, NULL, 0, WATCHER_REREAD_OFF);
	run_for(f, 50);
	fake_start(&late, f->dir, name, false);
	run_for(f, WATCHER_SETTLE_MS + 200);
	fake_listen(&late);
	run_for(f, 100);
	assert_false(saw(f, 0, 'a', name)); /* nothing told the watcher yet */
	t0 = now_ms();
	tun = tun_open(name);
	assert_true(tun >= 0);
	i = wait_event(f, 0, 'a', name, WITHIN_MS);
	assert_true(i >= 0);
	assert_true(f->ev[i].at - t0 < WITHIN_MS);
	fake_stop(&late);
	close(tun);
	assert_true(wait_event(f, (size_t)i, 'r', name, WITHIN_MS) >= 0);
	fx_stop(f);
}

/* The real thing: `wice wg-userspace -f NAME`, which always uses /var/run/wireguard. */
static void test_wg_userspace(void **state)
{
	struct fx *f = *state;
	char exe[4096], wice[4200], name[IFNAMSIZ];
	const char *globs[1] = {name};
	int64_t t0;
	ssize_t n;
	pid_t pid;
	int i, tun, status;

	tun = tun_open("wwtprobe");
	if (tun < 0)
		skip();
	close(tun);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0'; /* build/tests/unit */
	snprintf(wice, sizeof(wice), "%s/../../wice", exe);
	if (access(wice, X_OK) < 0)
		skip();
	snprintf(name, sizeof(name), "wwu%d", getpid() % 100000);
	unsetenv("WICE_UAPI_DIR");
	fx_start(f, globs, 1, 0);
	run_for(f, 50);
	t0 = now_ms();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 2);
		execl(wice, wice, "wg-userspace", "-f", name, (char *)NULL);
		_exit(127);
	}
	i = wait_event(f, 0, 'a', name, 3000);
	if (i < 0) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
		fail_msg("wice wg-userspace %s never appeared", name);
	}
	assert_int_equal(f->ev[i].kind, WATCHER_KIND_UAPI);
	print_message("wice wg-userspace %s seen %lld ms after exec\n", name,
		      (long long)(f->ev[i].at - t0));
	assert_true(wait_event(f, (size_t)i, 'c', name, WITHIN_MS) >= 0);
	t0 = now_ms();
	kill(pid, SIGTERM);
	i = wait_event(f, (size_t)i, 'r', name, WITHIN_MS);
	waitpid(pid, &status, 0);
	assert_true(i >= 0);
	assert_true(f->ev[i].at - t0 < WITHIN_MS);
	fx_stop(f);
}

static void test_bad_config(void **state)
{
	const char *names[] = {"a/b"};
	const char *globs[] = {""};
	struct watcher_config bad_name = {.names = names, .n_names = 1};
	struct watcher_config bad_glob = {.globs = globs, .n_globs = 1};
	struct watcher *w = (void *)0x1;

	assert_int_equal(watcher_new(NULL, &bad_name, &w), -EINVAL);
	assert_int_equal(watcher_new(NULL, &bad_glob, &w), -EINVAL);
	assert_ptr_equal(w, (void *)0x1);
	assert_null(watcher_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_link),
		cmocka_unit_test(test_parse_link_bad),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test_setup_teardown(test_uapi_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uapi_late_listen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tun_link_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wg_userspace, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
