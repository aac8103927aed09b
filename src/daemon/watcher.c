/* SPDX-License-Identifier: MIT */
/* watcher: WireGuard interfaces from rtnetlink and inotify events; peers by re-reading. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glib-unix.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "daemon/watcher.h"
#include "daemon/watcher_netlink.h"
#include "util/log.h"

#define SOCK_SUFFIX ".sock"
#define INOTIFY_BUF 4096
#define DIGEST_LEN  32
#define INOTIFY_DIR_EVENTS                                                                         \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |     \
	 IN_ONLYDIR)

/* One name the watcher knows about: managed (reported added), or waiting for its socket. */
struct iface {
	char name[IFNAMSIZ];
	uint64_t id; /* tells a read's result from one meant for an earlier entry of this name */
	bool managed;
	enum watcher_kind kind;

	GSource *settle; /* re-try of a socket that refused connections */
	unsigned int settle_delay, settle_spent;

	bool reading, read_again;
	unsigned int skip, backoff; /* ticks to skip after a timed-out read */
	bool has_digest;
	uint8_t digest[DIGEST_LEN];
};

/*
 * What a read on a worker thread needs to hand its result back. The watcher clears w when it
 * is freed, on the loop's thread, which is also the only thread that looks at w. Results
 * still queued on ctx then free themselves when they run or when ctx is destroyed.
 */
struct hub {
	gatomicrefcount refs;
	struct watcher *w;
	GMainContext *ctx;
};

struct read_job {
	struct hub *hub;
	char name[IFNAMSIZ];
	uint64_t id;
	enum watcher_kind kind;
	struct wgctl_device *dev;
	int r;
	uint8_t digest[DIGEST_LEN];
};

struct watcher {
	GMainContext *ctx;
	char **names, **globs;
	size_t n_names, n_globs;
	struct watcher_config cfg; /* callbacks, userdata; filter pointers into names/globs */

	struct mnl_socket *nl;
	GSource *nl_source;
	int ino_fd, ino_wd;
	GSource *ino_source;
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

	GHashTable *ifaces; /* name -> struct iface */
	GHashTable *kernel; /* ifindex -> name of a link of kind wireguard */
	GHashTable *pokes;  /* names to look at from the idle source */
	GSource *idle;	    /* pokes and resync */
	bool resync_pending;
	GSource *tick;	      /* re-reads while something is managed */
	GSource *addr_settle; /* on_addresses_changed, WATCHER_ADDR_SETTLE_MS after an event */
	size_t n_managed;
	uint64_t next_id;

	struct hub *hub;
	GThreadPool *pool;
};

static void reconsider(struct watcher *w, const char *name);
static void request_read(struct watcher *w, struct iface *it);

/* ---- the filter ---- */

static bool filter_allows(const char *const *names, size_t n_names, const char *const *globs,
			  size_t n_globs, const char *name)
{
	if (n_names) {
		for (size_t i = 0; i < n_names; i++)
			if (!strcmp(names[i], name))
				return true;
		return false;
	}
	if (n_globs) {
		for (size_t i = 0; i < n_globs; i++)
			if (!fnmatch(globs[i], name, 0))
				return true;
		return false;
	}
	return true;
}

bool watcher_config_allows(const struct watcher_config *cfg, const char *name)
{
	return wgctl_ifname_valid(name) &&
	       filter_allows(cfg->names, cfg->n_names, cfg->globs, cfg->n_globs, name);
}

/* ---- what exists ---- */

enum sock_state { SOCK_ABSENT, SOCK_REFUSED, SOCK_LIVE };

static int sock_path(const struct watcher *w, const char *name, struct sockaddr_un *sun)
{
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s" SOCK_SUFFIX, w->dir, name);
	return n < 0 || (size_t)n >= sizeof(sun->sun_path) ? -ENAMETOOLONG : 0;
}

/*
 * A non-blocking connect: it never waits, even on an implementation too busy to accept (a full
 * backlog answers EAGAIN, which still means someone listens).
 */
static enum sock_state sock_state(const struct watcher *w, const char *name)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, r;

	if (sock_path(w, name, &sun) < 0 || stat(sun.sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return SOCK_ABSENT;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return SOCK_ABSENT;
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? errno : 0;
	close(fd);
	if (r == 0 || r == EAGAIN || r == EINPROGRESS)
		return SOCK_LIVE;
	return r == ECONNREFUSED ? SOCK_REFUSED : SOCK_ABSENT;
}

static bool kernel_has(struct watcher *w, const char *name)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, w->kernel);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		if (!strcmp(value, name))
			return true;
	return false;
}

/* ---- interfaces ---- */

static struct iface *iface_get(struct watcher *w, const char *name, bool create)
{
	struct iface *it = g_hash_table_lookup(w->ifaces, name);

	if (it || !create)
		return it;
	it = g_new0(struct iface, 1);
	g_strlcpy(it->name, name, sizeof(it->name));
	it->id = ++w->next_id;
	g_hash_table_insert(w->ifaces, it->name, it);
	return it;
}

static void iface_free(gpointer data)
{
	struct iface *it = data;

	if (it->settle) {
		g_source_destroy(it->settle);
		g_source_unref(it->settle);
	}
	g_free(it);
}

/* An entry neither managed nor waiting for its socket is forgotten. */
static void iface_maybe_drop(struct watcher *w, struct iface *it)
{
	if (!it->managed && !it->settle)
		g_hash_table_remove(w->ifaces, it->name);
}

static gboolean on_tick(gpointer data)
{
	struct watcher *w = data;
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, w->ifaces);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		struct iface *it = value;

		if (!it->managed)
			continue;
		if (it->skip) {
			it->skip--;
			continue;
		}
		request_read(w, it);
	}
	return G_SOURCE_CONTINUE;
}

static void tick_update(struct watcher *w)
{
	if (w->n_managed && !w->tick && w->cfg.reread_ms != WATCHER_REREAD_OFF) {
		w->tick = g_timeout_source_new(w->cfg.reread_ms);
		g_source_set_callback(w->tick, on_tick, w, NULL);
		g_source_attach(w->tick, w->ctx);
	} else if (!w->n_managed && w->tick) {
		g_source_destroy(w->tick);
		g_source_unref(w->tick);
		w->tick = NULL;
	}
}

static void set_managed(struct watcher *w, struct iface *it, bool managed, enum watcher_kind kind)
{
	char name[IFNAMSIZ];

	/* The callbacks may poke, which never touches it; copy the name for them anyway. */
	g_strlcpy(name, it->name, sizeof(name));
	if (it->managed) {
		it->managed = false;
		w->n_managed--;
		log_info("%s: WireGuard interface gone", name);
		if (w->cfg.on_interface_removed)
			w->cfg.on_interface_removed(w, name, w->cfg.userdata);
	}
	if (managed) {
		it->managed = true;
		it->kind = kind;
		it->has_digest = false;
		it->skip = it->backoff = 0;
		w->n_managed++;
		log_info("%s: WireGuard interface found (%s)", name,
			 kind == WATCHER_KIND_KERNEL ? "kernel" : "uapi");
		if (w->cfg.on_interface_added)
			w->cfg.on_interface_added(w, name, kind, w->cfg.userdata);
		request_read(w, it);
	}
	tick_update(w);
}

struct settle_ctx {
	struct watcher *w;
	char name[IFNAMSIZ];
};

static gboolean on_settle_fire(gpointer data)
{
	struct settle_ctx *sc = data;
	struct iface *it = iface_get(sc->w, sc->name, false);

	if (!it || !it->settle)
		return G_SOURCE_REMOVE;
	it->settle_spent += it->settle_delay;
	it->settle_delay *= 2;
	g_source_unref(it->settle);
	it->settle = NULL;
	reconsider(sc->w, sc->name);
	return G_SOURCE_REMOVE;
}

static void settle_later(struct watcher *w, struct iface *it)
{
	struct settle_ctx *sc;

	if (it->settle || it->settle_spent >= WATCHER_SETTLE_MS)
		return;
	if (!it->settle_delay)
		it->settle_delay = WATCHER_SETTLE_MIN_MS;
	it->settle_delay = MIN(it->settle_delay, WATCHER_SETTLE_MS - it->settle_spent);
	sc = g_new0(struct settle_ctx, 1);
	sc->w = w;
	g_strlcpy(sc->name, it->name, sizeof(sc->name));
	it->settle = g_timeout_source_new(it->settle_delay);
	g_source_set_callback(it->settle, on_settle_fire, sc, g_free);
	g_source_attach(it->settle, w->ctx);
}

/*
 * Decides what name is now from the sources of truth (a live socket wins over a kernel link
 * of the same name, as wgctl_for() decides) and reports the difference.
 */
static void reconsider(struct watcher *w, const char *name)
{
	enum sock_state ss = sock_state(w, name);
	bool live = ss == SOCK_LIVE && (!w->cfg.uapi_needs_link || if_nametoindex(name));
	bool present = live || kernel_has(w, name);
	enum watcher_kind kind = live ? WATCHER_KIND_UAPI : WATCHER_KIND_KERNEL;
	struct iface *it;

	if (!filter_allows((const char *const *)w->names, w->n_names, (const char *const *)w->globs,
			   w->n_globs, name))
		return;
	it = iface_get(w, name, present || ss == SOCK_REFUSED);
	if (!it)
		return;
	if (present) {
		if (!it->managed || it->kind != kind)
			set_managed(w, it, true, kind);
	} else if (it->managed) {
		set_managed(w, it, false, kind);
	}
	if (!present && ss == SOCK_REFUSED)
		settle_later(w, it);
	iface_maybe_drop(w, it);
}

/* A socket file was just created: give its owner the full settle time to listen(). */
static void socket_created(struct watcher *w, const char *name)
{
	struct iface *it = iface_get(w, name, false);

	if (it && !it->settle)
		it->settle_spent = it->settle_delay = 0;
	reconsider(w, name);
}

/* ---- configuration reads, on a worker thread ---- */

static int cmp_peer_ptr(const void *a, const void *b)
{
	const struct wgctl_peer *const *pa = a, *const *pb = b;

	return memcmp((*pa)->public_key, (*pb)->public_key, WGCTL_KEY_LEN);
}

static void digest_endpoint(GChecksum *c, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

	g_checksum_update(c, (const guchar *)&ss->ss_family, sizeof(ss->ss_family));
	if (ss->ss_family == AF_INET) {
		g_checksum_update(c, (const guchar *)&in->sin_addr, sizeof(in->sin_addr));
		g_checksum_update(c, (const guchar *)&in->sin_port, sizeof(in->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		g_checksum_update(c, (const guchar *)&in6->sin6_addr, sizeof(in6->sin6_addr));
		g_checksum_update(c, (const guchar *)&in6->sin6_port, sizeof(in6->sin6_port));
		g_checksum_update(c, (const guchar *)&in6->sin6_scope_id,
				  sizeof(in6->sin6_scope_id));
	}
}

/* What the daemon acts on, in a canonical order; counters and handshakes left out. */
static int device_digest(const struct wgctl_device *dev, uint8_t out[static DIGEST_LEN])
{
	GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
	const struct wgctl_peer **sorted = g_new(const struct wgctl_peer *, dev->n_peers + 1);
	gsize len = DIGEST_LEN;

	g_checksum_update(c, (const guchar *)&dev->has_private_key, sizeof(dev->has_private_key));
	if (dev->has_private_key)
		g_checksum_update(c, dev->public_key, WGCTL_KEY_LEN);
	g_checksum_update(c, (const guchar *)&dev->listen_port, sizeof(dev->listen_port));
	g_checksum_update(c, (const guchar *)&dev->fwmark, sizeof(dev->fwmark));
	for (size_t i = 0; i < dev->n_peers; i++)
		sorted[i] = &dev->peers[i];
	if (dev->n_peers)
		qsort(sorted, dev->n_peers, sizeof(*sorted), cmp_peer_ptr);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wgctl_peer *p = sorted[i];

		g_checksum_update(c, p->public_key, WGCTL_KEY_LEN);
		g_checksum_update(c, (const guchar *)&p->has_preshared_key,
				  sizeof(p->has_preshared_key));
		g_checksum_update(c, (const guchar *)&p->persistent_keepalive,
				  sizeof(p->persistent_keepalive));
		digest_endpoint(c, &p->endpoint);
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			const struct wgctl_allowedip *a = &p->allowed_ips[j];

			g_checksum_update(c, (const guchar *)&a->family, sizeof(a->family));
			g_checksum_update(c, &a->cidr, sizeof(a->cidr));
			g_checksum_update(c,
					  a->family == AF_INET ? (const guchar *)&a->ip4
							       : (const guchar *)&a->ip6,
					  a->family == AF_INET ? sizeof(a->ip4) : sizeof(a->ip6));
		}
	}
	g_checksum_get_digest(c, out, &len);
	g_checksum_free(c);
	g_free(sorted);
	return len == DIGEST_LEN ? 0 : -EINVAL;
}

static void hub_unref(struct hub *hub)
{
	if (g_atomic_ref_count_dec(&hub->refs))
		g_free(hub);
}

static void read_job_free(gpointer data)
{
	struct read_job *job = data;

	wgctl_device_free(job->dev);
	hub_unref(job->hub);
	g_free(job);
}

static void read_done(struct watcher *w, struct read_job *job)
{
	struct iface *it = iface_get(w, job->name, false);

	if (!it || it->id != job->id)
		return;
	it->reading = false;
	if (!it->managed || it->kind != job->kind)
		return;
	if (job->r == 0) {
		it->backoff = it->skip = 0;
		if (!it->has_digest || memcmp(it->digest, job->digest, DIGEST_LEN)) {
			memcpy(it->digest, job->digest, DIGEST_LEN);
			it->has_digest = true;
			if (w->cfg.on_interface_changed)
				w->cfg.on_interface_changed(w, job->name, job->kind, job->dev,
							    w->cfg.userdata);
		}
		if (w->cfg.on_interface_read && iface_get(w, job->name, false) == it)
			w->cfg.on_interface_read(w, job->name, job->dev, w->cfg.userdata);
	} else if (job->r == -ETIMEDOUT) {
		it->backoff = MIN(it->backoff * 2 + 1, WATCHER_BACKOFF_MAX);
		it->skip = it->backoff;
		log_warn("%s: configuration read timed out, next in %u ticks", job->name,
			 it->skip + 1);
	} else {
		/* Most likely the interface is going away; its event may not have arrived yet. */
		log_debug("%s: configuration read failed: %s", job->name, g_strerror(-job->r));
		reconsider(w, job->name);
		return;
	}
	it = iface_get(w, job->name, false);
	if (it && it->read_again) {
		it->read_again = false;
		request_read(w, it);
	}
}

static gboolean read_deliver(gpointer data)
{
	struct read_job *job = data;

	if (job->hub->w)
		read_done(job->hub->w, job);
	return G_SOURCE_REMOVE;
}

static void read_run(gpointer data, gpointer pool_data)
{
	struct read_job *job = data;
	const struct wgctl_ops *ops = job->kind == WATCHER_KIND_UAPI ? &wgctl_uapi : &wgctl_kernel;
	GSource *src;

	job->r = ops->get(job->name, &job->dev);
	if (job->r == 0)
		job->r = device_digest(job->dev, job->digest);
	/* Not g_main_context_invoke(): it would run read_deliver here when nobody owns ctx. */
	src = g_idle_source_new();
	g_source_set_callback(src, read_deliver, job, read_job_free);
	g_source_attach(src, job->hub->ctx);
	g_source_unref(src);
}

static void request_read(struct watcher *w, struct iface *it)
{
	struct read_job *job;

	if (it->reading) {
		it->read_again = true;
		return;
	}
	job = g_new0(struct read_job, 1);
	job->hub = w->hub;
	g_atomic_ref_count_inc(&w->hub->refs);
	g_strlcpy(job->name, it->name, sizeof(job->name));
	job->id = it->id;
	job->kind = it->kind;
	it->reading = true;
	g_thread_pool_push(w->pool, job, NULL);
}

/* ---- full enumeration ---- */

static void list_sockets(struct watcher *w, GPtrArray *names)
{
	const size_t suffix_len = strlen(SOCK_SUFFIX);
	struct dirent *de;
	DIR *d = opendir(w->dir);

	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char name[IFNAMSIZ];

		if (len <= suffix_len || len - suffix_len >= sizeof(name) ||
		    strcmp(de->d_name + len - suffix_len, SOCK_SUFFIX))
			continue;
		memcpy(name, de->d_name, len - suffix_len);
		name[len - suffix_len] = '\0';
		if (wgctl_ifname_valid(name))
			g_ptr_array_add(names, g_strdup(name));
	}
	if (d)
		closedir(d);
}

static void resync(struct watcher *w)
{
	GHashTable *kernel = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	gpointer key;
	int r;

	r = watcher_dump_links(kernel, names);
	if (r < 0) {
		/* Keep what the events told us; the next overflow or poke tries again. */
		log_warn("watcher: listing links failed: %s, ignoring", g_strerror(-r));
		g_hash_table_unref(kernel);
	} else {
		g_hash_table_unref(w->kernel);
		w->kernel = kernel;
	}
	list_sockets(w, names);
	g_hash_table_iter_init(&iter, w->ifaces);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		g_ptr_array_add(names, g_strdup(key));
	for (guint i = 0; i < names->len; i++)
		reconsider(w, names->pdata[i]);
	g_ptr_array_unref(names);
}

/* ---- the idle source: pokes and resyncs, never run from inside an API call ---- */

static gboolean on_idle(gpointer data)
{
	struct watcher *w = data;
	GHashTable *pokes = w->pokes;
	GHashTableIter iter;
	gpointer key;

	g_source_unref(w->idle);
	w->idle = NULL;
	w->pokes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (w->resync_pending) {
		w->resync_pending = false;
		resync(w);
	}
	g_hash_table_iter_init(&iter, pokes);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		struct iface *it;

		reconsider(w, key);
		it = iface_get(w, key, false);
		if (it && it->managed) {
			it->skip = 0;
			request_read(w, it);
		}
	}
	g_hash_table_unref(pokes);
	return G_SOURCE_REMOVE;
}

static void idle_schedule(struct watcher *w)
{
	if (w->idle)
		return;
	w->idle = g_idle_source_new();
	g_source_set_callback(w->idle, on_idle, w, NULL);
	g_source_attach(w->idle, w->ctx);
}

static void resync_schedule(struct watcher *w)
{
	w->resync_pending = true;
	idle_schedule(w);
}

int watcher_poke(struct watcher *w, const char *name)
{
	if (!wgctl_ifname_valid(name))
		return -EINVAL;
	if (!filter_allows((const char *const *)w->names, w->n_names, (const char *const *)w->globs,
			   w->n_globs, name))
		return -ENOENT;
	g_hash_table_add(w->pokes, g_strdup(name));
	idle_schedule(w);
	return 0;
}

bool watcher_has(struct watcher *w, const char *name, enum watcher_kind *ret_kind)
{
	struct iface *it = name ? iface_get(w, name, false) : NULL;

	if (!it || !it->managed)
		return false;
	if (ret_kind)
		*ret_kind = it->kind;
	return true;
}

/* ---- netlink events ---- */

static void kernel_forget(struct watcher *w, uint32_t ifindex)
{
	char *old = g_hash_table_lookup(w->kernel, GUINT_TO_POINTER(ifindex));
	char name[IFNAMSIZ];

	if (!old)
		return;
	g_strlcpy(name, old, sizeof(name));
	g_hash_table_remove(w->kernel, GUINT_TO_POINTER(ifindex));
	reconsider(w, name);
}

static void link_event(struct watcher *w, const struct watcher_link *link)
{
	const char *old = g_hash_table_lookup(w->kernel, GUINT_TO_POINTER(link->ifindex));

	if (link->removed || strcmp(link->kind, WATCHER_KIND_WIREGUARD)) {
		kernel_forget(w, link->ifindex);
		/* A userspace interface's TUN: its socket may have become live meanwhile. */
		if (!strcmp(link->kind, WATCHER_KIND_TUN))
			reconsider(w, link->name);
		return;
	}
	if (old && strcmp(old, link->name))
		kernel_forget(w, link->ifindex); /* renamed: the old name is gone */
	g_hash_table_insert(w->kernel, GUINT_TO_POINTER(link->ifindex), g_strdup(link->name));
	reconsider(w, link->name);
}

static gboolean on_addr_settled(gpointer data)
{
	struct watcher *w = data;

	g_source_unref(w->addr_settle);
	w->addr_settle = NULL;
	if (w->cfg.on_addresses_changed)
		w->cfg.on_addresses_changed(w, w->cfg.userdata);
	return G_SOURCE_REMOVE;
}

/* Not restarted by later events: a burst is one call, and endless churn still gets calls. */
static void addr_changed(struct watcher *w)
{
	if (w->addr_settle || !w->cfg.on_addresses_changed)
		return;
	w->addr_settle = g_timeout_source_new(WATCHER_ADDR_SETTLE_MS);
	g_source_set_callback(w->addr_settle, on_addr_settled, w, NULL);
	g_source_attach(w->addr_settle, w->ctx);
}

/* WireGuard's own addresses and link-local or loopback ones never carry ICE candidates. */
static void addr_event(struct watcher *w, const struct watcher_addr *a)
{
	if (g_hash_table_contains(w->kernel, GUINT_TO_POINTER(a->ifindex)) ||
	    a->scope == RT_SCOPE_LINK || a->scope == RT_SCOPE_HOST)
		return;
	addr_changed(w);
}

static gboolean on_netlink(gint fd, GIOCondition cond, gpointer data)
{
	struct watcher *w = data;
	char buf[WATCHER_NL_BUFSIZE];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
		int len = (int)n;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			log_warn("watcher: netlink events lost, listing links again");
			resync_schedule(w);
			addr_changed(w);
			continue;
		}
		if (n < 0)
			break;
		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			struct watcher_link link;
			struct watcher_addr addr;

			if (watcher_parse_link(nlh, nlh->nlmsg_len, &link) == 0)
				link_event(w, &link);
			else if (watcher_parse_addr(nlh, nlh->nlmsg_len, &addr) == 0)
				addr_event(w, &addr);
		}
	}
	return G_SOURCE_CONTINUE;
}

static int netlink_open(struct watcher *w)
{
	int fd, size = WATCHER_NL_RCVBUF;

	w->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!w->nl)
		return -errno;
	fd = mnl_socket_get_fd(w->nl);
	/* A burst of link changes (a namespace torn down) should not overflow into a resync. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (mnl_socket_bind(w->nl, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
			    MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	w->nl_source = g_unix_fd_source_new(fd, G_IO_IN);
	g_source_set_callback(w->nl_source, (GSourceFunc)(void (*)(void))on_netlink, w, NULL);
	g_source_attach(w->nl_source, w->ctx);
	return 0;
}

/* ---- inotify events ---- */

static int dir_watch(struct watcher *w)
{
	/* wireguard-go creates it 0755: sockets inside carry their own permissions. */
	if (g_mkdir_with_parents(w->dir, 0755) < 0)
		return -errno;
	w->ino_wd = inotify_add_watch(w->ino_fd, w->dir, INOTIFY_DIR_EVENTS);
	return w->ino_wd < 0 ? -errno : 0;
}

static void sock_event(struct watcher *w, const struct inotify_event *ev)
{
	const size_t suffix_len = strlen(SOCK_SUFFIX);
	size_t len = strnlen(ev->name, ev->len);
	char name[IFNAMSIZ];

	if (len <= suffix_len || len - suffix_len >= sizeof(name) ||
	    strcmp(ev->name + len - suffix_len, SOCK_SUFFIX))
		return;
	memcpy(name, ev->name, len - suffix_len);
	name[len - suffix_len] = '\0';
	if (!wgctl_ifname_valid(name))
		return;
	if (ev->mask & (IN_CREATE | IN_MOVED_TO))
		socket_created(w, name);
	else
		reconsider(w, name);
}

static void ino_event(struct watcher *w, const struct inotify_event *ev)
{
	int r;

	if (ev->mask & IN_Q_OVERFLOW) {
		log_warn("watcher: inotify events lost, listing %s again", w->dir);
		resync_schedule(w);
	} else if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
		/* The directory went away: every socket in it with it. Make it again. */
		if (ev->mask & IN_MOVE_SELF)
			inotify_rm_watch(w->ino_fd, ev->wd);
		if (ev->mask & IN_IGNORED) {
			r = dir_watch(w);
			if (r < 0)
				log_error("watcher: cannot watch %s again: %s", w->dir,
					  g_strerror(-r));
			resync_schedule(w);
		}
	} else if (ev->len) {
		sock_event(w, ev);
	}
}

static gboolean on_inotify(gint fd, GIOCondition cond, gpointer data)
{
	struct watcher *w = data;
	char buf[INOTIFY_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			ino_event(w, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
	return G_SOURCE_CONTINUE;
}

static int inotify_open(struct watcher *w)
{
	int r;

	w->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ino_fd < 0)
		return -errno;
	r = dir_watch(w);
	if (r < 0)
		return r;
	w->ino_source = g_unix_fd_source_new(w->ino_fd, G_IO_IN);
	g_source_set_callback(w->ino_source, (GSourceFunc)(void (*)(void))on_inotify, w, NULL);
	g_source_attach(w->ino_source, w->ctx);
	return 0;
}

/* ---- life ---- */

static char **strv_copy(const char *const *v, size_t n)
{
	char **out = g_new0(char *, n + 1);

	for (size_t i = 0; i < n; i++)
		out[i] = g_strdup(v[i]);
	return out;
}

static int config_check(const struct watcher_config *cfg)
{
	if (cfg->n_names > WATCHER_MAX_FILTER || cfg->n_globs > WATCHER_MAX_FILTER)
		return -E2BIG;
	if ((cfg->n_names && !cfg->names) || (cfg->n_globs && !cfg->globs))
		return -EINVAL;
	for (size_t i = 0; i < cfg->n_names; i++)
		if (!wgctl_ifname_valid(cfg->names[i]))
			return -EINVAL;
	for (size_t i = 0; i < cfg->n_globs; i++)
		if (!cfg->globs[i] || !cfg->globs[i][0])
			return -EINVAL;
	return 0;
}

static void source_drop(GSource **s)
{
	if (*s) {
		g_source_destroy(*s);
		g_source_unref(*s);
		*s = NULL;
	}
}

struct watcher *watcher_free(struct watcher *w)
{
	if (!w)
		return NULL;
	/* Results still in flight find no watcher; waiting keeps their threads off our memory. */
	if (w->hub)
		w->hub->w = NULL;
	if (w->pool)
		g_thread_pool_free(w->pool, FALSE, TRUE);
	if (w->hub)
		hub_unref(w->hub);
	source_drop(&w->nl_source);
	source_drop(&w->ino_source);
	source_drop(&w->idle);
	source_drop(&w->tick);
	source_drop(&w->addr_settle);
	if (w->nl)
		mnl_socket_close(w->nl);
	if (w->ino_fd >= 0)
		close(w->ino_fd);
	if (w->ifaces)
		g_hash_table_unref(w->ifaces);
	if (w->kernel)
		g_hash_table_unref(w->kernel);
	if (w->pokes)
		g_hash_table_unref(w->pokes);
	g_strfreev(w->names);
	g_strfreev(w->globs);
	if (w->ctx)
		g_main_context_unref(w->ctx);
	g_free(w);
	return NULL;
}

int watcher_new(GMainContext *ctx, const struct watcher_config *cfg, struct watcher **ret)
{
	struct watcher *w;
	int r;

	r = config_check(cfg);
	if (r < 0)
		return r;
	w = g_new0(struct watcher, 1);
	w->ino_fd = -1;
	w->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
	w->cfg = *cfg;
	if (!w->cfg.reread_ms)
		w->cfg.reread_ms = WATCHER_REREAD_MS;
	w->names = strv_copy(cfg->names, cfg->n_names);
	w->n_names = cfg->n_names;
	w->globs = strv_copy(cfg->globs, cfg->n_globs);
	w->n_globs = cfg->n_globs;
	w->cfg.names = (const char *const *)w->names;
	w->cfg.globs = (const char *const *)w->globs;
	w->ifaces = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, iface_free);
	w->kernel = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	w->pokes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	w->hub = g_new0(struct hub, 1);
	g_atomic_ref_count_init(&w->hub->refs);
	w->hub->w = w;
	w->hub->ctx = w->ctx; /* no reference: watcher_free waits for every worker */
	w->pool = g_thread_pool_new(read_run, NULL, WATCHER_READ_THREADS, FALSE, NULL);
	if (g_strlcpy(w->dir, wgctl_uapi_dir(), sizeof(w->dir)) >= sizeof(w->dir))
		r = -ENAMETOOLONG;
	if (r == 0)
		r = netlink_open(w);
	if (r == 0)
		r = inotify_open(w);
	if (r < 0) {
		watcher_free(w);
		return r;
	}
	/* Subscribed first, listed second: nothing can fall between the two. */
	resync_schedule(w);
	*ret = w;
	return 0;
}
