/* SPDX-License-Identifier: MIT */
/*
 * Backend dispatch by URL scheme, the inprocess: backend and the multiplexer (backend.h).
 *
 * inprocess: a process-wide registry of buses under one mutex. A publish collects its
 * targets with the lock held, pinning each with an in-flight count, and delivers after
 * unlocking, so on_receive never runs under the registry lock and may itself publish. close
 * unlinks the backend (no new deliveries can find it) and then waits for the pinned ones.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "signal/backend.h"

int signal_backend_open(const char *url, const struct signal_backend_config *cfg,
			struct signal_backend **ret)
{
	const struct signal_backend_ops *const table[] = {
		&signal_backend_inprocess, &signal_backend_grpc, &signal_backend_grpcs,
		&signal_backend_ws,	   &signal_backend_wss,
	};
	const struct signal_backend_ops *ops = NULL;
	struct signal_backend *b;
	const char *colon;
	char *copy;
	int r;

	if (!url || !cfg || !cfg->key || !cfg->on_receive || !(colon = strchr(url, ':')))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		size_t n = strlen(table[i]->scheme);

		if (n == (size_t)(colon - url) && !strncmp(url, table[i]->scheme, n))
			ops = table[i];
	}
	if (!ops || !ops->open)
		return -EPROTONOSUPPORT;
	copy = strdup(url);
	if (!copy)
		return -ENOMEM;
	r = ops->open(url, cfg, &b);
	if (r < 0) {
		free(copy);
		return r;
	}
	b->ops = ops;
	b->url = copy;
	*ret = b;
	return 0;
}

int signal_backend_publish(struct signal_backend *b, const uint8_t *envelope, size_t len)
{
	return b->ops->publish(b, envelope, len);
}

void signal_backend_close(struct signal_backend *b)
{
	char *url;

	if (!b)
		return;
	url = b->url;
	b->ops->close(b);
	free(url);
}

/* ---- inprocess: ---- */

struct bus {
	struct bus *next;
	struct inproc *members;
	char name[SIGNAL_INPROCESS_NAME_MAX + 1];
};

struct inproc {
	struct signal_backend base;
	struct inproc *next; /* on the bus */
	struct bus *bus;
	uint8_t key[WG_KEY_LEN];
	signal_receive_fn on_receive;
	void *ctx;
	unsigned int in_flight; /* deliveries pinned by a publisher; under registry_lock */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t registry_idle = PTHREAD_COND_INITIALIZER;
static struct bus *buses;

static struct bus *bus_get(const char *name)
{
	struct bus *bus;

	for (bus = buses; bus; bus = bus->next)
		if (!strcmp(bus->name, name))
			return bus;
	bus = calloc(1, sizeof(*bus));
	if (!bus)
		return NULL;
	strcpy(bus->name, name);
	bus->next = buses;
	buses = bus;
	return bus;
}

static void bus_put(struct bus *bus)
{
	struct bus **p;

	if (bus->members)
		return;
	for (p = &buses; *p != bus; p = &(*p)->next)
		;
	*p = bus->next;
	free(bus);
}

static int inproc_open(const char *url, const struct signal_backend_config *cfg,
		       struct signal_backend **ret)
{
	const char *name = url + strlen("inprocess:");
	struct inproc *ip;
	size_t n = strlen(name);

	if (!n || n > SIGNAL_INPROCESS_NAME_MAX)
		return -EINVAL;
	ip = calloc(1, sizeof(*ip));
	if (!ip)
		return -ENOMEM;
	ip->base.ops = &signal_backend_inprocess;
	memcpy(ip->key, cfg->key->public_key, WG_KEY_LEN);
	ip->on_receive = cfg->on_receive;
	ip->ctx = cfg->ctx;

	pthread_mutex_lock(&registry_lock);
	ip->bus = bus_get(name);
	if (ip->bus) {
		ip->next = ip->bus->members;
		ip->bus->members = ip;
	}
	pthread_mutex_unlock(&registry_lock);
	if (!ip->bus) {
		free(ip);
		return -ENOMEM;
	}
	*ret = &ip->base;
	if (cfg->on_state)
		cfg->on_state(cfg->ctx, &ip->base, true);
	return 0;
}

/* Pins every other member keyed recipient. Returns how many, or -ENOMEM. */
static int collect_targets(struct inproc *self, const uint8_t recipient[static WG_KEY_LEN],
			   struct inproc ***targets)
{
	struct inproc **t = NULL, **grown;
	size_t n = 0, cap = 0;

	for (struct inproc *m = self->bus->members; m; m = m->next) {
		if (m == self || memcmp(m->key, recipient, WG_KEY_LEN))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 4;
			grown = realloc(t, cap * sizeof(*t));
			if (!grown) {
				for (size_t i = 0; i < n; i++)
					t[i]->in_flight--;
				free(t);
				return -ENOMEM;
			}
			t = grown;
		}
		m->in_flight++;
		t[n++] = m;
	}
	*targets = t;
	return (int)n;
}

static int inproc_publish(struct signal_backend *b, const uint8_t *envelope, size_t len)
{
	struct inproc *self = (struct inproc *)b, **targets = NULL;
	uint8_t sender[WG_KEY_LEN], recipient[WG_KEY_LEN], *copy;
	int n;

	if (envelope_peek(envelope, len, sender, recipient))
		return -EBADMSG;
	if (memcmp(sender, self->key, WG_KEY_LEN))
		return -EPERM;
	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, envelope, len);

	pthread_mutex_lock(&registry_lock);
	n = collect_targets(self, recipient, &targets);
	pthread_mutex_unlock(&registry_lock);
	if (n < 0) {
		free(copy);
		return n;
	}
	for (int i = 0; i < n; i++)
		targets[i]->on_receive(targets[i]->ctx, copy, len);

	pthread_mutex_lock(&registry_lock);
	for (int i = 0; i < n; i++)
		if (!--targets[i]->in_flight)
			pthread_cond_broadcast(&registry_idle);
	pthread_mutex_unlock(&registry_lock);
	free(targets);
	free(copy);
	return 0;
}

static void inproc_close(struct signal_backend *b)
{
	struct inproc *self = (struct inproc *)b, **p;

	pthread_mutex_lock(&registry_lock);
	for (p = &self->bus->members; *p != self; p = &(*p)->next)
		;
	*p = self->next;
	bus_put(self->bus);
	while (self->in_flight)
		pthread_cond_wait(&registry_idle, &registry_lock);
	pthread_mutex_unlock(&registry_lock);
	free(self);
}

const struct signal_backend_ops signal_backend_inprocess = {
	.scheme = "inprocess",
	.open = inproc_open,
	.publish = inproc_publish,
	.close = inproc_close,
};

/* ---- multiplexer ---- */

#define DEDUP_DIGEST_LEN 16
#define DEDUP_BUCKETS	 4096 /* a power of two */

struct dedup_entry {
	uint8_t digest[DEDUP_DIGEST_LEN];
	uint64_t at_ms;
	int32_t next; /* in its bucket; -1 ends */
};

struct signal_mux {
	struct signal_backend_config cfg; /* the user's */
	pthread_mutex_t add_lock;	  /* serialises signal_mux_add */
	struct signal_backend *backends[SIGNAL_MUX_MAX_BACKENDS];
	atomic_size_t n_backends; /* slots below are filled; published with release */

	/* Recently received digests: a ring in arrival order, chained by bucket. Keyed, so
	 * that whoever sends envelopes cannot pile them into one bucket. */
	pthread_mutex_t dedup_lock;
	uint8_t dedup_key[crypto_generichash_KEYBYTES];
	size_t head, count;
	int32_t buckets[DEDUP_BUCKETS];
	struct dedup_entry ring[SIGNAL_MUX_DEDUP_MAX];
};

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t dedup_bucket(const uint8_t digest[static DEDUP_DIGEST_LEN])
{
	uint32_t h;

	memcpy(&h, digest, sizeof(h));
	return h & (DEDUP_BUCKETS - 1);
}

static void dedup_drop_oldest(struct signal_mux *mux)
{
	int32_t i = (int32_t)mux->head, *p = &mux->buckets[dedup_bucket(mux->ring[i].digest)];

	while (*p != i)
		p = &mux->ring[*p].next;
	*p = mux->ring[i].next;
	mux->head = (mux->head + 1) % SIGNAL_MUX_DEDUP_MAX;
	mux->count--;
}

/* True when digest was seen recently; otherwise remembers it. Under dedup_lock. */
static bool dedup_seen(struct signal_mux *mux, const uint8_t digest[static DEDUP_DIGEST_LEN],
		       uint64_t now_ms)
{
	size_t b = dedup_bucket(digest), slot;

	while (mux->count && mux->ring[mux->head].at_ms + SIGNAL_MUX_DEDUP_MS < now_ms)
		dedup_drop_oldest(mux);
	for (int32_t i = mux->buckets[b]; i >= 0; i = mux->ring[i].next)
		if (!memcmp(mux->ring[i].digest, digest, DEDUP_DIGEST_LEN))
			return true;
	if (mux->count == SIGNAL_MUX_DEDUP_MAX)
		dedup_drop_oldest(mux);
	slot = (mux->head + mux->count) % SIGNAL_MUX_DEDUP_MAX;
	memcpy(mux->ring[slot].digest, digest, DEDUP_DIGEST_LEN);
	mux->ring[slot].at_ms = now_ms;
	mux->ring[slot].next = mux->buckets[b];
	mux->buckets[b] = (int32_t)slot;
	mux->count++;
	return false;
}

static void mux_receive(void *ctx, const uint8_t *envelope, size_t len)
{
	struct signal_mux *mux = ctx;
	uint8_t digest[DEDUP_DIGEST_LEN];
	bool seen;

	crypto_generichash(digest, sizeof(digest), envelope, len, mux->dedup_key,
			   sizeof(mux->dedup_key));
	pthread_mutex_lock(&mux->dedup_lock);
	seen = dedup_seen(mux, digest, monotonic_ms());
	pthread_mutex_unlock(&mux->dedup_lock);
	if (!seen)
		mux->cfg.on_receive(mux->cfg.ctx, envelope, len);
}

static void mux_state(void *ctx, struct signal_backend *b, bool connected)
{
	struct signal_mux *mux = ctx;

	if (mux->cfg.on_state)
		mux->cfg.on_state(mux->cfg.ctx, b, connected);
}

struct signal_mux *signal_mux_new(const struct signal_backend_config *cfg)
{
	struct signal_mux *mux;

	if (!cfg || !cfg->key || !cfg->on_receive || sodium_init() < 0)
		return NULL;
	mux = calloc(1, sizeof(*mux));
	if (!mux)
		return NULL;
	mux->cfg = *cfg;
	pthread_mutex_init(&mux->add_lock, NULL);
	pthread_mutex_init(&mux->dedup_lock, NULL);
	randombytes_buf(mux->dedup_key, sizeof(mux->dedup_key));
	for (size_t i = 0; i < DEDUP_BUCKETS; i++)
		mux->buckets[i] = -1;
	return mux;
}

int signal_mux_add(struct signal_mux *mux, const char *url)
{
	struct signal_backend_config inner = mux->cfg;
	struct signal_backend *b;
	size_t n;
	int r;

	inner.on_receive = mux_receive;
	inner.on_state = mux_state;
	inner.ctx = mux;
	pthread_mutex_lock(&mux->add_lock);
	n = atomic_load_explicit(&mux->n_backends, memory_order_relaxed);
	r = -ENOSPC;
	if (n < SIGNAL_MUX_MAX_BACKENDS)
		r = signal_backend_open(url, &inner, &b);
	if (!r) {
		mux->backends[n] = b;
		atomic_store_explicit(&mux->n_backends, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&mux->add_lock);
	return r;
}

int signal_mux_publish(struct signal_mux *mux, const uint8_t *envelope, size_t len)
{
	size_t n = atomic_load_explicit(&mux->n_backends, memory_order_acquire);
	int first_err = -ENOTCONN;
	bool accepted = false;

	for (size_t i = 0; i < n; i++) {
		int r = signal_backend_publish(mux->backends[i], envelope, len);

		if (!r)
			accepted = true;
		else if (first_err == -ENOTCONN)
			first_err = r;
	}
	return accepted ? 0 : first_err;
}

struct signal_mux *signal_mux_free(struct signal_mux *mux)
{
	size_t n;

	if (!mux)
		return NULL;
	n = atomic_load_explicit(&mux->n_backends, memory_order_acquire);
	for (size_t i = 0; i < n; i++)
		signal_backend_close(mux->backends[i]);
	pthread_mutex_destroy(&mux->add_lock);
	pthread_mutex_destroy(&mux->dedup_lock);
	free(mux);
	return NULL;
}
