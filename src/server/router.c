/* SPDX-License-Identifier: MIT */
/*
 * The signal server's router: recipient public key -> subscribers, and session token -> key.
 * It never opens an envelope; it only reads the recipient the transport hands it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sodium.h>
#include "server/server.h"

#define ROUTER_BUCKETS 16384

struct topic {
	struct topic *next;
	uint8_t key[WG_KEY_LEN];
	struct router_sub *subs;
	unsigned int n_subs;
};

struct token {
	struct token *next;
	struct router_sub *sub;
};

struct router {
	pthread_mutex_t lock;
	uint8_t seed[crypto_shorthash_KEYBYTES];
	struct topic *topics[ROUTER_BUCKETS];
	struct token *tokens[ROUTER_BUCKETS];
	size_t n_topics;
};

/* Keys and tokens come from clients, so bucket them by a keyed hash (SipHash). */
static size_t bucket(const struct router *r, const uint8_t *data, size_t len)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, data, len, r->seed);
	memcpy(&v, h, sizeof(v));
	return (size_t)(v % ROUTER_BUCKETS);
}

struct router *router_new(void)
{
	struct router *r;

	if (sodium_init() < 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	randombytes_buf(r->seed, sizeof(r->seed));
	return r;
}

struct router *router_free(struct router *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < ROUTER_BUCKETS; i++) {
		while (r->topics[i]) {
			struct topic *t = r->topics[i];

			r->topics[i] = t->next;
			free(t);
		}
		while (r->tokens[i]) {
			struct token *t = r->tokens[i];

			r->tokens[i] = t->next;
			free(t);
		}
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
	return NULL;
}

static struct topic **find_topic(struct router *r, const uint8_t key[static WG_KEY_LEN])
{
	struct topic **p = &r->topics[bucket(r, key, WG_KEY_LEN)];

	while (*p && memcmp((*p)->key, key, WG_KEY_LEN))
		p = &(*p)->next;
	return p;
}

int router_subscribe(struct router *r, struct router_sub *s)
{
	struct topic **tp, *t;
	struct token *tok;
	size_t b;

	tok = calloc(1, sizeof(*tok));
	if (!tok)
		return -ENOMEM;
	pthread_mutex_lock(&r->lock);
	tp = find_topic(r, s->key);
	t = *tp;
	if (t && t->n_subs >= SERVER_MAX_SUBS_PER_KEY) {
		pthread_mutex_unlock(&r->lock);
		free(tok);
		return -ENOSPC;
	}
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			pthread_mutex_unlock(&r->lock);
			free(tok);
			return -ENOMEM;
		}
		memcpy(t->key, s->key, WG_KEY_LEN);
		*tp = t;
		r->n_topics++;
	}
	s->next = t->subs;
	t->subs = s;
	t->n_subs++;
	s->subscribed = true;
	tok->sub = s;
	b = bucket(r, s->session_token, sizeof(s->session_token));
	tok->next = r->tokens[b];
	r->tokens[b] = tok;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

void router_unsubscribe(struct router *r, struct router_sub *s)
{
	struct topic **tp, *t;
	struct token **kp;

	pthread_mutex_lock(&r->lock);
	if (!s->subscribed)
		goto out;
	s->subscribed = false;
	for (kp = &r->tokens[bucket(r, s->session_token, sizeof(s->session_token))]; *kp;
	     kp = &(*kp)->next)
		if ((*kp)->sub == s) {
			struct token *dead = *kp;

			*kp = dead->next;
			free(dead);
			break;
		}
	tp = find_topic(r, s->key);
	t = *tp;
	if (!t)
		goto out;
	for (struct router_sub **sp = &t->subs; *sp; sp = &(*sp)->next)
		if (*sp == s) {
			*sp = s->next;
			t->n_subs--;
			break;
		}
	s->next = NULL;
	if (!t->n_subs) {
		/* The last subscriber left: the topic goes, nothing is kept for the key. */
		*tp = t->next;
		free(t);
		r->n_topics--;
	}
out:
	pthread_mutex_unlock(&r->lock);
}

int router_token_key(struct router *r, const uint8_t token[static 32],
		     uint8_t ret_key[static WG_KEY_LEN])
{
	int ret = -EACCES;

	pthread_mutex_lock(&r->lock);
	for (struct token *t = r->tokens[bucket(r, token, 32)]; t; t = t->next)
		if (!sodium_memcmp(t->sub->session_token, token, 32)) {
			memcpy(ret_key, t->sub->key, WG_KEY_LEN);
			ret = 0;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* ServerFrame{envelope = 2}: the field's tag, its length as a varint, then the Envelope bytes
 * unchanged (protobuf encoding of an embedded message), so nothing is decoded or re-encoded. */
static size_t frame_header(uint8_t hdr[static 6], size_t len)
{
	size_t n = 0;

	hdr[n++] = (2 << 3) | 2;
	do {
		hdr[n] = (uint8_t)(len & 0x7f);
		len >>= 7;
		if (len)
			hdr[n] |= 0x80;
		n++;
	} while (len);
	return n;
}

int router_publish(struct router *r, const uint8_t recipient[static WG_KEY_LEN],
		   const uint8_t *envelope, size_t len, struct server_stats *stats)
{
	uint8_t stackbuf[2048], *frame = stackbuf, hdr[6];
	size_t hl = frame_header(hdr, len);
	struct topic *t;
	int delivered = 0;

	if (hl + len > sizeof(stackbuf) && !(frame = malloc(hl + len)))
		return -ENOMEM;
	memcpy(frame, hdr, hl);
	memcpy(frame + hl, envelope, len);
	atomic_fetch_add_explicit(&stats->published, 1, memory_order_relaxed);

	pthread_mutex_lock(&r->lock);
	t = *find_topic(r, recipient);
	for (struct router_sub *s = t ? t->subs : NULL; s; s = s->next) {
		if (s->ops->deliver(s, frame, hl + len) == 0)
			delivered++;
		else
			atomic_fetch_add_explicit(&stats->queue_full, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&r->lock);

	if (!t)
		atomic_fetch_add_explicit(&stats->no_recipient, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&stats->delivered, (uint64_t)delivered, memory_order_relaxed);
	if (frame != stackbuf)
		free(frame);
	return delivered;
}

size_t router_topics(struct router *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->n_topics;
	pthread_mutex_unlock(&r->lock);
	return n;
}

bool rate_limit_take(struct rate_limit *rl, const struct signal_server *s, uint64_t now_ms)
{
	double rate = s->rate_per_sec ? s->rate_per_sec : SERVER_RATE_PER_SEC;
	double burst = s->rate_burst ? s->rate_burst : SERVER_RATE_BURST;

	if (!rl->last_ms) {
		rl->tokens = burst;
		rl->last_ms = now_ms;
	}
	rl->tokens += (double)(now_ms - rl->last_ms) * rate / 1000.0;
	if (rl->tokens > burst)
		rl->tokens = burst;
	rl->last_ms = now_ms;
	if (rl->tokens < 1.0)
		return false;
	rl->tokens -= 1.0;
	return true;
}
