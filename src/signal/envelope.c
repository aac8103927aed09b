/* SPDX-License-Identifier: MIT */
/*
 * Sealed signaling envelopes (docs/signaling.md, "Envelopes"). From sender S to recipient R,
 * with a fresh ephemeral key E per envelope:
 *
 *   k  = BLAKE2b-256(ENVELOPE_DOMAIN || X25519(e, R) || X25519(s, R) || S || R || E)
 *   ct = XChaCha20-Poly1305(k, nonce, ad = S || R || E || nonce, encoded Message)
 *
 * The ephemeral term gives every envelope its own key; the static-static term is what
 * authenticates the sender: only the holders of s or r can compute it. Binding S, R and E into
 * both the key and the AD means no routing field can be swapped without the tag failing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "signal/envelope.h"

#define AD_LEN	       (3 * WG_KEY_LEN + ENVELOPE_NONCE_LEN)
#define TAG_LEN	       crypto_aead_xchacha20poly1305_ietf_ABYTES
#define REPLAY_INITIAL 16 /* nonces per sender before the first growth */

struct replay_sender {
	struct replay_sender *prev, *next; /* most recently seen first */
	uint8_t key[WG_KEY_LEN];
	uint64_t min_ts; /* timestamps below were evicted unseen: refuse them */
	size_t n, cap;
	uint64_t *digest; /* keyed SipHash of the nonce */
	uint64_t *ts;
};

struct envelope_replay {
	pthread_mutex_t lock;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct replay_sender *head, *tail;
	size_t n_senders;
	size_t count;	     /* nonces over all senders */
	uint64_t min_ts_new; /* a sender with no state must be at least this new */
};

uint64_t envelope_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool string_ok(const char *s)
{
	return s && strnlen(s, ENVELOPE_MAX_STRING + 1) <= ENVELOPE_MAX_STRING;
}

/*
 * What a Message may carry; the same rules for what we seal and what we accept. Sealing also
 * refuses unknown fields: we only vouch for what we understand, and protobuf-c 1.4 keeps some
 * it should have refused (a field number 0 in an overlong tag) and then re-encodes them into
 * bytes it cannot decode. Opening ignores them, for newer peers' fields.
 */
static int message_check(const Wice__Signaling__Message *m, bool sealing)
{
	size_t unknown = m->base.n_unknown_fields;

	if (m->credentials) {
		if (!string_ok(m->credentials->ufrag) || !string_ok(m->credentials->pwd))
			return -1;
		unknown += m->credentials->base.n_unknown_fields;
	}
	if (m->n_candidates > ENVELOPE_MAX_CANDIDATES)
		return -1;
	for (size_t i = 0; i < m->n_candidates; i++) {
		const Wice__Signaling__Candidate *c = m->candidates[i];

		if (!c || !string_ok(c->foundation) || !string_ok(c->address) ||
		    !string_ok(c->related_address) || c->port > 65535 || c->related_port > 65535)
			return -1;
		unknown += c->base.n_unknown_fields;
	}
	if (m->peer) {
		if (!string_ok(m->peer->name) || m->peer->n_addresses > ENVELOPE_MAX_PEER_ADDRESSES)
			return -1;
		for (size_t i = 0; i < m->peer->n_addresses; i++)
			if (!string_ok(m->peer->addresses[i]))
				return -1;
		unknown += m->peer->base.n_unknown_fields;
	}
	return sealing && unknown ? -1 : 0;
}

/* Exact sizes of the routing fields, checked before any of them is used. */
static int routing_check(const Wice__Signaling__Envelope *e)
{
	if (e->sender.len != WG_KEY_LEN || e->recipient.len != WG_KEY_LEN ||
	    e->ephemeral.len != WG_KEY_LEN || e->nonce.len != ENVELOPE_NONCE_LEN)
		return -1;
	if (e->ciphertext.len < TAG_LEN || e->ciphertext.len > ENVELOPE_MAX_MESSAGE + TAG_LEN)
		return -1;
	return 0;
}

static Wice__Signaling__Envelope *envelope_decode(const uint8_t *buf, size_t len)
{
	Wice__Signaling__Envelope *e;

	if (!buf || !len || len > ENVELOPE_MAX_SIZE)
		return NULL;
	e = wice__signaling__envelope__unpack(NULL, len, buf);
	if (e && routing_check(e)) {
		wice__signaling__envelope__free_unpacked(e, NULL);
		return NULL;
	}
	return e;
}

/* X25519 that refuses an all-zero result (a low-order point: no secret in it). */
static int dh(uint8_t out[static WG_KEY_LEN], const uint8_t priv[static WG_KEY_LEN],
	      const uint8_t pub[static WG_KEY_LEN])
{
	if (crypto_scalarmult(out, priv, pub) || sodium_is_zero(out, WG_KEY_LEN))
		return -1;
	return 0;
}

static void derive_key(uint8_t k[static WG_KEY_LEN], const uint8_t dh_eph[static WG_KEY_LEN],
		       const uint8_t dh_static[static WG_KEY_LEN],
		       const uint8_t sender[static WG_KEY_LEN],
		       const uint8_t recipient[static WG_KEY_LEN],
		       const uint8_t ephemeral[static WG_KEY_LEN])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, WG_KEY_LEN);
	crypto_generichash_update(&st, (const uint8_t *)ENVELOPE_DOMAIN,
				  sizeof(ENVELOPE_DOMAIN) - 1);
	crypto_generichash_update(&st, dh_eph, WG_KEY_LEN);
	crypto_generichash_update(&st, dh_static, WG_KEY_LEN);
	crypto_generichash_update(&st, sender, WG_KEY_LEN);
	crypto_generichash_update(&st, recipient, WG_KEY_LEN);
	crypto_generichash_update(&st, ephemeral, WG_KEY_LEN);
	crypto_generichash_final(&st, k, WG_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
}

static void build_ad(uint8_t ad[static AD_LEN], const uint8_t *sender, const uint8_t *recipient,
		     const uint8_t *ephemeral, const uint8_t *nonce)
{
	memcpy(ad, sender, WG_KEY_LEN);
	memcpy(ad + WG_KEY_LEN, recipient, WG_KEY_LEN);
	memcpy(ad + 2 * WG_KEY_LEN, ephemeral, WG_KEY_LEN);
	memcpy(ad + 3 * WG_KEY_LEN, nonce, ENVELOPE_NONCE_LEN);
}

static int seal_with(const struct envelope_key *self, const uint8_t recipient[static WG_KEY_LEN],
		     const uint8_t *plain, size_t plen, uint8_t *ct, Wice__Signaling__Envelope *env,
		     uint8_t eph_pub[static WG_KEY_LEN], uint8_t nonce[static ENVELOPE_NONCE_LEN])
{
	uint8_t eph[WG_KEY_LEN], dh_eph[WG_KEY_LEN], dh_static[WG_KEY_LEN], k[WG_KEY_LEN];
	uint8_t ad[AD_LEN];
	int r = -EINVAL;

	randombytes_buf(eph, sizeof(eph));
	crypto_scalarmult_base(eph_pub, eph);
	randombytes_buf(nonce, ENVELOPE_NONCE_LEN);
	if (dh(dh_eph, eph, recipient) || dh(dh_static, self->private_key, recipient))
		goto wipe;
	derive_key(k, dh_eph, dh_static, self->public_key, recipient, eph_pub);
	build_ad(ad, self->public_key, recipient, eph_pub, nonce);
	crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, plain, plen, ad, sizeof(ad), NULL,
						   nonce, k);
	env->sender = (ProtobufCBinaryData){WG_KEY_LEN, (uint8_t *)self->public_key};
	env->recipient = (ProtobufCBinaryData){WG_KEY_LEN, (uint8_t *)recipient};
	env->ephemeral = (ProtobufCBinaryData){WG_KEY_LEN, eph_pub};
	env->nonce = (ProtobufCBinaryData){ENVELOPE_NONCE_LEN, nonce};
	env->ciphertext = (ProtobufCBinaryData){plen + TAG_LEN, ct};
	r = 0;
wipe:
	sodium_memzero(eph, sizeof(eph));
	sodium_memzero(dh_eph, sizeof(dh_eph));
	sodium_memzero(dh_static, sizeof(dh_static));
	sodium_memzero(k, sizeof(k));
	return r;
}

int envelope_seal(const struct envelope_key *self, const uint8_t recipient[static WG_KEY_LEN],
		  Wice__Signaling__Message *msg, uint8_t **ret_buf, size_t *ret_len)
{
	Wice__Signaling__Envelope env = WICE__SIGNALING__ENVELOPE__INIT;
	uint8_t eph_pub[WG_KEY_LEN], nonce[ENVELOPE_NONCE_LEN];
	uint8_t *plain = NULL, *ct = NULL, *out;
	size_t plen, olen;
	int r;

	if (sodium_init() < 0)
		return -ENOMEM;
	if (message_check(msg, true))
		return -EINVAL;
	if (!msg->timestamp_ms)
		msg->timestamp_ms = envelope_now_ms();
	plen = wice__signaling__message__get_packed_size(msg);
	if (plen > ENVELOPE_MAX_MESSAGE)
		return -EINVAL;
	plain = malloc(plen + 1);
	ct = malloc(plen + TAG_LEN);
	r = -ENOMEM;
	if (!plain || !ct)
		goto out;
	wice__signaling__message__pack(msg, plain);
	r = seal_with(self, recipient, plain, plen, ct, &env, eph_pub, nonce);
	if (r)
		goto out;
	olen = wice__signaling__envelope__get_packed_size(&env);
	r = -ENOMEM;
	out = malloc(olen);
	if (!out)
		goto out;
	wice__signaling__envelope__pack(&env, out);
	*ret_buf = out;
	*ret_len = olen;
	r = 0;
out:
	if (plain) {
		sodium_memzero(plain, plen);
		free(plain);
	}
	free(ct);
	return r;
}

/* Authenticates and decrypts e (routing already checked) into a malloc'd Message. */
static int open_with(const struct envelope_key *self, const Wice__Signaling__Envelope *e,
		     Wice__Signaling__Message **ret_msg)
{
	uint8_t dh_eph[WG_KEY_LEN], dh_static[WG_KEY_LEN], k[WG_KEY_LEN], ad[AD_LEN];
	size_t plen = e->ciphertext.len - TAG_LEN;
	Wice__Signaling__Message *m = NULL;
	uint8_t *plain;
	int r = -EBADMSG;

	plain = malloc(plen + 1);
	if (!plain)
		return -ENOMEM;
	if (dh(dh_eph, self->private_key, e->ephemeral.data) ||
	    dh(dh_static, self->private_key, e->sender.data))
		goto wipe;
	derive_key(k, dh_eph, dh_static, e->sender.data, e->recipient.data, e->ephemeral.data);
	build_ad(ad, e->sender.data, e->recipient.data, e->ephemeral.data, e->nonce.data);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, e->ciphertext.data,
						       e->ciphertext.len, ad, sizeof(ad),
						       e->nonce.data, k))
		goto wipe;
	m = wice__signaling__message__unpack(NULL, plen, plain);
	if (!m)
		goto wipe;
	if (message_check(m, false)) {
		wice__signaling__message__free_unpacked(m, NULL);
		goto wipe;
	}
	*ret_msg = m;
	r = 0;
wipe:
	sodium_memzero(dh_eph, sizeof(dh_eph));
	sodium_memzero(dh_static, sizeof(dh_static));
	sodium_memzero(k, sizeof(k));
	sodium_memzero(plain, plen);
	free(plain);
	return r;
}

/* ---- replay protection ---- */

struct envelope_replay *envelope_replay_new(void)
{
	struct envelope_replay *r;

	if (sodium_init() < 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	randombytes_buf(r->hash_key, sizeof(r->hash_key));
	return r;
}

static void sender_free(struct replay_sender *s)
{
	free(s->digest);
	free(s->ts);
	free(s);
}

struct envelope_replay *envelope_replay_free(struct envelope_replay *r)
{
	struct replay_sender *s, *next;

	if (!r)
		return NULL;
	for (s = r->head; s; s = next) {
		next = s->next;
		sender_free(s);
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
	return NULL;
}

size_t envelope_replay_count(struct envelope_replay *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->count;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static bool expired(uint64_t ts, uint64_t now_ms)
{
	return ts + ENVELOPE_REPLAY_WINDOW_MS < now_ms;
}

static void lru_unlink(struct envelope_replay *r, struct replay_sender *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		r->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		r->tail = s->prev;
	s->prev = s->next = NULL;
}

static void lru_push_front(struct envelope_replay *r, struct replay_sender *s)
{
	s->next = r->head;
	if (r->head)
		r->head->prev = s;
	r->head = s;
	if (!r->tail)
		r->tail = s;
}

static struct replay_sender *sender_find(struct envelope_replay *r,
					 const uint8_t key[static WG_KEY_LEN])
{
	for (struct replay_sender *s = r->head; s; s = s->next)
		if (!memcmp(s->key, key, WG_KEY_LEN))
			return s;
	return NULL;
}

/* Forget the least recently seen sender. Anything it remembered that is still inside the
 * window becomes unknowable, so new senders must be newer than all of it. */
static void sender_evict(struct envelope_replay *r, uint64_t now_ms)
{
	struct replay_sender *s = r->tail;
	uint64_t floor = expired(s->min_ts, now_ms) ? 0 : s->min_ts;

	for (size_t i = 0; i < s->n; i++)
		if (!expired(s->ts[i], now_ms) && s->ts[i] + 1 > floor)
			floor = s->ts[i] + 1;
	if (floor > r->min_ts_new)
		r->min_ts_new = floor;
	lru_unlink(r, s);
	r->n_senders--;
	r->count -= s->n;
	sender_free(s);
}

static struct replay_sender *sender_new(struct envelope_replay *r,
					const uint8_t key[static WG_KEY_LEN], uint64_t now_ms)
{
	struct replay_sender *s;

	if (r->n_senders >= ENVELOPE_REPLAY_SENDERS)
		sender_evict(r, now_ms);
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->digest = malloc(REPLAY_INITIAL * sizeof(*s->digest));
	s->ts = malloc(REPLAY_INITIAL * sizeof(*s->ts));
	if (!s->digest || !s->ts) {
		sender_free(s);
		return NULL;
	}
	s->cap = REPLAY_INITIAL;
	memcpy(s->key, key, WG_KEY_LEN);
	s->min_ts = r->min_ts_new;
	lru_push_front(r, s);
	r->n_senders++;
	return s;
}

static void sender_remove(struct envelope_replay *r, struct replay_sender *s, size_t i)
{
	s->n--;
	s->digest[i] = s->digest[s->n];
	s->ts[i] = s->ts[s->n];
	r->count--;
}

/*
 * Make room for one more nonce of s: drop expired ones, else grow, else evict the oldest
 * (raising s->min_ts past it). -ESTALE when ts is itself no newer than everything held.
 */
static int sender_make_room(struct envelope_replay *r, struct replay_sender *s, uint64_t ts,
			    uint64_t now_ms)
{
	size_t i, oldest = 0;

	if (s->n < s->cap)
		return 0;
	for (i = 0; i < s->n;) {
		if (expired(s->ts[i], now_ms))
			sender_remove(r, s, i);
		else
			i++;
	}
	if (s->n < s->cap)
		return 0;
	if (s->cap < ENVELOPE_REPLAY_PER_SENDER) {
		size_t cap = s->cap * 2;
		uint64_t *d = realloc(s->digest, cap * sizeof(*d)), *t;

		if (!d)
			return -ENOMEM;
		s->digest = d;
		t = realloc(s->ts, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		s->ts = t;
		s->cap = cap;
		return 0;
	}
	for (i = 1; i < s->n; i++)
		if (s->ts[i] < s->ts[oldest])
			oldest = i;
	if (ts <= s->ts[oldest])
		return -ESTALE;
	s->min_ts = s->ts[oldest] + 1;
	sender_remove(r, s, oldest);
	return 0;
}

static int replay_record(struct envelope_replay *r, const uint8_t sender[static WG_KEY_LEN],
			 uint64_t ts, const uint8_t nonce[static ENVELOPE_NONCE_LEN],
			 uint64_t now_ms)
{
	struct replay_sender *s;
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t digest;
	int ret = 0;

	/* Both directions: a future timestamp would otherwise outlive its remembered nonce. */
	if (ts > now_ms + ENVELOPE_REPLAY_WINDOW_MS || expired(ts, now_ms))
		return -ESTALE;
	crypto_shorthash(h, nonce, ENVELOPE_NONCE_LEN, r->hash_key);
	memcpy(&digest, h, sizeof(digest));

	pthread_mutex_lock(&r->lock);
	s = sender_find(r, sender);
	if (s) {
		lru_unlink(r, s);
		lru_push_front(r, s);
	} else if (ts < r->min_ts_new) {
		ret = -ESTALE;
		goto out;
	} else if (!(s = sender_new(r, sender, now_ms))) {
		ret = -ENOMEM;
		goto out;
	}
	if (ts < s->min_ts) {
		ret = -ESTALE;
		goto out;
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->digest[i] == digest) {
			ret = -EALREADY;
			goto out;
		}
	ret = sender_make_room(r, s, ts, now_ms);
	if (ret)
		goto out;
	s->digest[s->n] = digest;
	s->ts[s->n] = ts;
	s->n++;
	r->count++;
out:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int envelope_open(const struct envelope_key *self, struct envelope_replay *replay, uint64_t now_ms,
		  const uint8_t *buf, size_t len, uint8_t ret_sender[static WG_KEY_LEN],
		  Wice__Signaling__Message **ret_msg)
{
	Wice__Signaling__Message *m = NULL;
	Wice__Signaling__Envelope *e;
	int r;

	if (sodium_init() < 0)
		return -ENOMEM;
	e = envelope_decode(buf, len);
	if (!e)
		return -EBADMSG;
	if (memcmp(e->recipient.data, self->public_key, WG_KEY_LEN)) {
		r = -ENOENT;
		goto out;
	}
	r = open_with(self, e, &m);
	if (r)
		goto out;
	/* Only now is the envelope known to be authentic: record nothing earlier. */
	if (replay) {
		r = replay_record(replay, e->sender.data, m->timestamp_ms, e->nonce.data, now_ms);
		if (r) {
			wice__signaling__message__free_unpacked(m, NULL);
			goto out;
		}
	}
	memcpy(ret_sender, e->sender.data, WG_KEY_LEN);
	*ret_msg = m;
out:
	wice__signaling__envelope__free_unpacked(e, NULL);
	return r;
}

int envelope_peek(const uint8_t *buf, size_t len, uint8_t ret_sender[static WG_KEY_LEN],
		  uint8_t ret_recipient[static WG_KEY_LEN])
{
	Wice__Signaling__Envelope *e = envelope_decode(buf, len);

	if (!e)
		return -EBADMSG;
	memcpy(ret_sender, e->sender.data, WG_KEY_LEN);
	memcpy(ret_recipient, e->recipient.data, WG_KEY_LEN);
	wice__signaling__envelope__free_unpacked(e, NULL);
	return 0;
}
