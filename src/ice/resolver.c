/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <gio/gio.h>
#include "ice/resolver.h"
#include "util/log.h"

struct ice_resolver {
	GMainContext *ctx;
	struct ice_server *servers;
	size_t n_servers;
	GCancellable *cancel; /* of the round under way; NULL between rounds */
	size_t pending;
	int result;
	ice_resolver_done_fn done;
	void *data;
	GSource *refresh;
};

/* One server's lookup; outlives the resolver when cancelled (GIO still calls back). */
struct lookup {
	struct ice_resolver *r;
	GCancellable *cancel;
	size_t i;
};

static int lookup_errno(const GError *e)
{
	if (e->domain == G_RESOLVER_ERROR && e->code == G_RESOLVER_ERROR_TEMPORARY_FAILURE)
		return -EAGAIN;
	return -EADDRNOTAVAIL;
}

/* Results as numeric strings, in the resolver's order, into the server. */
static int store(struct ice_server *srv, GList *addrs)
{
	const char *strs[16] = {NULL};
	char *owned[G_N_ELEMENTS(strs)];
	size_t n = 0;
	int r;

	for (GList *a = addrs; a && n < G_N_ELEMENTS(strs); a = a->next) {
		owned[n] = g_inet_address_to_string(a->data);
		strs[n] = owned[n];
		n++;
	}
	r = ice_server_set_addrs(srv, strs, n);
	for (size_t i = 0; i < n; i++)
		g_free(owned[i]);
	return r;
}

static void lookup_done(GObject *src, GAsyncResult *res, gpointer data)
{
	struct lookup *lk = data;
	struct ice_resolver *r = lk->r;
	GError *e = NULL;
	GList *addrs;
	int err = 0;

	addrs = g_resolver_lookup_by_name_finish(G_RESOLVER(src), res, &e);
	if (g_cancellable_is_cancelled(lk->cancel)) {
		/* the resolver is gone or started over: touch nothing of it */
		g_clear_error(&e);
		g_resolver_free_addresses(addrs);
		g_object_unref(lk->cancel);
		g_free(lk);
		return;
	}
	if (addrs) {
		err = store(&r->servers[lk->i], addrs);
		g_resolver_free_addresses(addrs);
	} else {
		err = lookup_errno(e);
	}
	if (err < 0) {
		const struct ice_server *srv = &r->servers[lk->i];

		log_warn("ICE server %s: cannot resolve: %s%s%s", srv->host,
			 e ? e->message : "no IPv4 or IPv6 address",
			 srv->n_addrs ? ", keeping " : "", srv->n_addrs ? srv->addrs[0] : "");
		if (!r->result)
			r->result = err;
	} else {
		log_debug("ICE server %s: %s%s%s", r->servers[lk->i].host,
			  r->servers[lk->i].addrs[0], r->servers[lk->i].n_addrs > 1 ? " " : "",
			  r->servers[lk->i].n_addrs > 1 ? r->servers[lk->i].addrs[1] : "");
	}
	g_clear_error(&e);
	g_object_unref(lk->cancel);
	g_free(lk);
	if (--r->pending)
		return;
	g_clear_object(&r->cancel);
	if (r->done)
		r->done(r->data, r->result);
}

int ice_resolver_new(GMainContext *ctx, struct ice_server *servers, size_t n_servers,
		     struct ice_resolver **ret)
{
	struct ice_resolver *r = g_try_new0(struct ice_resolver, 1);

	if (!r)
		return -ENOMEM;
	r->ctx = ctx;
	r->servers = servers;
	r->n_servers = n_servers;
	*ret = r;
	return 0;
}

int ice_resolver_run(struct ice_resolver *r, ice_resolver_done_fn done, void *data)
{
	GResolver *res;

	if (r->cancel)
		return -EALREADY;
	r->done = done;
	r->data = data;
	r->result = 0;
	r->pending = 0;
	r->cancel = g_cancellable_new();
	res = g_resolver_get_default();
	/* GIO calls back on the thread-default context at the time of the call. */
	g_main_context_push_thread_default(r->ctx);
	for (size_t i = 0; i < r->n_servers; i++) {
		struct lookup *lk;

		if (!ice_server_is_name(&r->servers[i]))
			continue;
		lk = g_new0(struct lookup, 1);
		lk->r = r;
		lk->cancel = g_object_ref(r->cancel);
		lk->i = i;
		r->pending++;
		g_resolver_lookup_by_name_async(res, r->servers[i].host, r->cancel, lookup_done,
						lk);
	}
	g_main_context_pop_thread_default(r->ctx);
	g_object_unref(res);
	if (!r->pending)
		g_clear_object(&r->cancel);
	return (int)r->pending;
}

struct wait {
	bool done;
	int result;
};

static void wait_done(void *data, int result)
{
	struct wait *w = data;

	w->done = true;
	w->result = result;
}

int ice_resolver_wait(struct ice_resolver *r)
{
	struct wait w = {0};
	int n = ice_resolver_run(r, wait_done, &w);

	if (n <= 0)
		return n;
	while (!w.done)
		g_main_context_iteration(r->ctx, TRUE);
	return w.result;
}

static gboolean on_refresh(gpointer data)
{
	ice_resolver_run(data, NULL, NULL); /* -EALREADY: the round under way will do */
	return G_SOURCE_CONTINUE;
}

void ice_resolver_refresh_every(struct ice_resolver *r, unsigned int interval_s)
{
	if (r->refresh) {
		g_source_destroy(r->refresh);
		g_source_unref(r->refresh);
		r->refresh = NULL;
	}
	for (size_t i = 0; interval_s && i < r->n_servers; i++) {
		if (!ice_server_is_name(&r->servers[i]))
			continue;
		r->refresh = g_timeout_source_new_seconds(interval_s);
		g_source_set_callback(r->refresh, on_refresh, r, NULL);
		g_source_attach(r->refresh, r->ctx);
		return;
	}
}

struct ice_resolver *ice_resolver_free(struct ice_resolver *r)
{
	if (!r)
		return NULL;
	ice_resolver_refresh_every(r, 0);
	if (r->cancel) {
		g_cancellable_cancel(r->cancel);
		g_object_unref(r->cancel);
	}
	g_free(r);
	return NULL;
}
