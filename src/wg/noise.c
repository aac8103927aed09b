/* SPDX-License-Identifier: MIT */
/*
 * The handshake of the WireGuard paper, section 5.4.2-5.4.4. Every consume function works on
 * local copies and commits to the peer's state only after the whole message authenticated,
 * so a bad message changes nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "util/key.h"
#include "wg/crypto.h"
#include "wg/device.h"
#include "wg/noise.h"
#include "wg/peer.h"

static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";

static uint8_t initial_ck[WG_HASH_LEN], initial_hash[WG_HASH_LEN];
static pthread_once_t initial_once = PTHREAD_ONCE_INIT;

static void initial_compute(void)
{
	wgcrypto_hash(initial_ck, (const uint8_t *)construction, sizeof(construction) - 1, NULL, 0);
	wgcrypto_hash(initial_hash, initial_ck, WG_HASH_LEN, (const uint8_t *)identifier,
		      sizeof(identifier) - 1);
}

static void mix_hash(uint8_t hash[static WG_HASH_LEN], const uint8_t *in, size_t len)
{
	wgcrypto_hash(hash, hash, WG_HASH_LEN, in, len);
}

static void mix_key(uint8_t ck[static WG_HASH_LEN], const uint8_t *in, size_t len)
{
	wgcrypto_kdf(ck, NULL, NULL, ck, in, len);
}

/* (ck, k) = KDF2(ck, DH(priv, pub)); -EINVAL for a low-order point. */
static int mix_dh(uint8_t ck[static WG_HASH_LEN], uint8_t key[static WG_KEY_LEN],
		  const uint8_t priv[static WG_KEY_LEN], const uint8_t pub[static WG_KEY_LEN])
{
	uint8_t dh[WG_KEY_LEN];
	int r = wgcrypto_dh(dh, priv, pub);

	if (!r)
		wgcrypto_kdf(ck, key, NULL, ck, dh, sizeof(dh));
	wgcrypto_wipe(dh, sizeof(dh));
	return r;
}

static void mix_precomputed(uint8_t ck[static WG_HASH_LEN], uint8_t key[static WG_KEY_LEN],
			    const uint8_t ss[static WG_KEY_LEN])
{
	wgcrypto_kdf(ck, key, NULL, ck, ss, WG_KEY_LEN);
}

static void handshake_init(uint8_t ck[static WG_HASH_LEN], uint8_t hash[static WG_HASH_LEN],
			   const uint8_t responder_static[static WG_KEY_LEN])
{
	pthread_once(&initial_once, initial_compute);
	memcpy(ck, initial_ck, WG_HASH_LEN);
	memcpy(hash, initial_hash, WG_HASH_LEN);
	mix_hash(hash, responder_static, WG_KEY_LEN);
}

static void seal_and_hash(uint8_t *out, const uint8_t *in, size_t len,
			  const uint8_t key[static WG_KEY_LEN], uint8_t hash[static WG_HASH_LEN])
{
	wgcrypto_aead_seal(out, in, len, hash, WG_HASH_LEN, 0, key);
	mix_hash(hash, out, len + WG_AUTHTAG_LEN);
}

static int open_and_hash(uint8_t *out, const uint8_t *in, size_t len,
			 const uint8_t key[static WG_KEY_LEN], uint8_t hash[static WG_HASH_LEN])
{
	if (wgcrypto_aead_open(out, in, len, hash, WG_HASH_LEN, 0, key))
		return -EBADMSG;
	mix_hash(hash, in, len);
	return 0;
}

void tai64n_now(uint8_t out[static WG_TIMESTAMP_LEN])
{
	struct timespec ts;
	uint64_t secs;
	uint32_t nsecs;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* Round down so the timestamp does not leak a fine clock (as the kernel driver does):
	 * to the largest power of two below 1e9 / INITIATIONS_PER_SECOND ns. */
	nsecs = (uint32_t)ts.tv_nsec & ~((1u << 24) - 1);
	secs = 0x400000000000000aULL + (uint64_t)ts.tv_sec;
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(secs >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		out[8 + i] = (uint8_t)(nsecs >> (24 - 8 * i));
}

void noise_identity_set(struct noise_static_identity *id, const uint8_t priv[static WG_KEY_LEN])
{
	memcpy(id->static_private, priv, WG_KEY_LEN);
	key_clamp(id->static_private);
	id->has_identity = key_public_from_private(id->static_public, id->static_private) == 0;
	if (!id->has_identity) {
		wgcrypto_wipe(id->static_private, WG_KEY_LEN);
		wgcrypto_wipe(id->static_public, WG_KEY_LEN);
	}
}

void noise_handshake_precompute(struct noise_handshake *hs, const struct noise_static_identity *id)
{
	if (!id->has_identity ||
	    wgcrypto_dh(hs->precomputed_static_static, id->static_private, hs->remote_static))
		wgcrypto_wipe(hs->precomputed_static_static, WG_KEY_LEN);
}

void noise_handshake_clear(struct wg_device *dev, struct noise_handshake *hs)
{
	index_remove(&dev->index, &hs->entry);
	hs->state = HANDSHAKE_ZEROED;
	hs->remote_index = 0;
	wgcrypto_wipe(hs->ephemeral_private, WG_KEY_LEN);
	wgcrypto_wipe(hs->remote_ephemeral, WG_KEY_LEN);
	wgcrypto_wipe(hs->hash, WG_HASH_LEN);
	wgcrypto_wipe(hs->chaining_key, WG_HASH_LEN);
}

static bool handshake_usable(struct wg_device *dev, const struct noise_handshake *hs)
{
	return dev->identity.has_identity && !key_is_zero(hs->precomputed_static_static);
}

int noise_create_initiation(struct wg_device *dev, struct wg_peer *peer,
			    struct wg_message_handshake_initiation *msg)
{
	struct noise_handshake *hs = &peer->handshake;
	uint8_t key[WG_KEY_LEN], ts[WG_TIMESTAMP_LEN];
	int r = -EINVAL;

	if (!handshake_usable(dev, hs))
		return -ENOKEY;
	memset(msg, 0, sizeof(*msg));
	msg->header.type = htole32(WG_MSG_HANDSHAKE_INITIATION);
	handshake_init(hs->chaining_key, hs->hash, hs->remote_static);

	/* e */
	key_generate_private(hs->ephemeral_private);
	if (key_public_from_private(msg->unencrypted_ephemeral, hs->ephemeral_private))
		goto out;
	mix_key(hs->chaining_key, msg->unencrypted_ephemeral, WG_KEY_LEN);
	mix_hash(hs->hash, msg->unencrypted_ephemeral, WG_KEY_LEN);
	/* es */
	if (mix_dh(hs->chaining_key, key, hs->ephemeral_private, hs->remote_static))
		goto out;
	/* s */
	seal_and_hash(msg->encrypted_static, dev->identity.static_public, WG_KEY_LEN, key,
		      hs->hash);
	/* ss */
	mix_precomputed(hs->chaining_key, key, hs->precomputed_static_static);
	/* {t} */
	tai64n_now(ts);
	seal_and_hash(msg->encrypted_timestamp, ts, WG_TIMESTAMP_LEN, key, hs->hash);

	index_remove(&dev->index, &hs->entry);
	msg->sender_index = htole32(index_insert(&dev->index, &hs->entry, INDEX_HANDSHAKE, peer));
	hs->state = HANDSHAKE_CREATED_INITIATION;
	r = 0;
out:
	wgcrypto_wipe(key, sizeof(key));
	if (r)
		noise_handshake_clear(dev, hs);
	return r;
}

static struct wg_peer *lookup_initiator(struct wg_device *dev, const uint8_t s[static WG_KEY_LEN])
{
	struct wg_peer *peer = peer_lookup(dev, s);

	return peer && handshake_usable(dev, &peer->handshake) ? peer : NULL;
}

struct wg_peer *noise_consume_initiation(struct wg_device *dev,
					 const struct wg_message_handshake_initiation *msg)
{
	uint8_t ck[WG_HASH_LEN], hash[WG_HASH_LEN], key[WG_KEY_LEN], s[WG_KEY_LEN];
	uint8_t t[WG_TIMESTAMP_LEN];
	struct wg_peer *peer = NULL, *ret = NULL;
	struct noise_handshake *hs;
	uint64_t now;

	if (!dev->identity.has_identity)
		return NULL;
	handshake_init(ck, hash, dev->identity.static_public);
	/* e */
	mix_key(ck, msg->unencrypted_ephemeral, WG_KEY_LEN);
	mix_hash(hash, msg->unencrypted_ephemeral, WG_KEY_LEN);
	/* es */
	if (mix_dh(ck, key, dev->identity.static_private, msg->unencrypted_ephemeral))
		goto out;
	/* s */
	if (open_and_hash(s, msg->encrypted_static, sizeof(msg->encrypted_static), key, hash))
		goto out;
	peer = lookup_initiator(dev, s);
	if (!peer)
		goto out;
	hs = &peer->handshake;
	/* ss */
	mix_precomputed(ck, key, hs->precomputed_static_static);
	/* {t} */
	if (open_and_hash(t, msg->encrypted_timestamp, sizeof(msg->encrypted_timestamp), key, hash))
		goto out;

	/* Paper 5.1: a replayed initiation carries a timestamp not newer than the last one, and
	 * more than INITIATIONS_PER_SECOND of them are flooding. Big-endian TAI64N compares as
	 * bytes. */
	now = now_ns();
	if (memcmp(t, hs->latest_timestamp, WG_TIMESTAMP_LEN) <= 0)
		goto out;
	if (hs->last_initiation_consumption_ns &&
	    now - hs->last_initiation_consumption_ns < 1000000000ULL / WG_INITIATIONS_PER_SECOND)
		goto out;

	memcpy(hs->remote_ephemeral, msg->unencrypted_ephemeral, WG_KEY_LEN);
	memcpy(hs->latest_timestamp, t, WG_TIMESTAMP_LEN);
	memcpy(hs->hash, hash, WG_HASH_LEN);
	memcpy(hs->chaining_key, ck, WG_HASH_LEN);
	hs->remote_index = le32toh(msg->sender_index);
	hs->last_initiation_consumption_ns = now;
	hs->state = HANDSHAKE_CONSUMED_INITIATION;
	ret = peer;
out:
	wgcrypto_wipe(key, sizeof(key));
	wgcrypto_wipe(hash, sizeof(hash));
	wgcrypto_wipe(ck, sizeof(ck));
	wgcrypto_wipe(t, sizeof(t));
	return ret;
}

int noise_create_response(struct wg_device *dev, struct wg_peer *peer,
			  struct wg_message_handshake_response *msg)
{
	struct noise_handshake *hs = &peer->handshake;
	uint8_t key[WG_KEY_LEN], tau[WG_HASH_LEN];
	int r = -EINVAL;

	if (hs->state != HANDSHAKE_CONSUMED_INITIATION)
		return -EINVAL;
	memset(msg, 0, sizeof(*msg));
	msg->header.type = htole32(WG_MSG_HANDSHAKE_RESPONSE);
	msg->receiver_index = htole32(hs->remote_index);

	/* e */
	key_generate_private(hs->ephemeral_private);
	if (key_public_from_private(msg->unencrypted_ephemeral, hs->ephemeral_private))
		goto out;
	mix_key(hs->chaining_key, msg->unencrypted_ephemeral, WG_KEY_LEN);
	mix_hash(hs->hash, msg->unencrypted_ephemeral, WG_KEY_LEN);
	/* ee, se */
	if (mix_dh(hs->chaining_key, key, hs->ephemeral_private, hs->remote_ephemeral) ||
	    mix_dh(hs->chaining_key, key, hs->ephemeral_private, hs->remote_static))
		goto out;
	/* psk */
	wgcrypto_kdf(hs->chaining_key, tau, key, hs->chaining_key, hs->preshared_key, WG_KEY_LEN);
	mix_hash(hs->hash, tau, WG_HASH_LEN);
	/* {} */
	seal_and_hash(msg->encrypted_nothing, NULL, 0, key, hs->hash);

	index_remove(&dev->index, &hs->entry);
	msg->sender_index = htole32(index_insert(&dev->index, &hs->entry, INDEX_HANDSHAKE, peer));
	hs->state = HANDSHAKE_CREATED_RESPONSE;
	r = 0;
out:
	wgcrypto_wipe(key, sizeof(key));
	wgcrypto_wipe(tau, sizeof(tau));
	if (r)
		noise_handshake_clear(dev, hs);
	return r;
}

struct wg_peer *noise_consume_response(struct wg_device *dev,
				       const struct wg_message_handshake_response *msg)
{
	uint8_t ck[WG_HASH_LEN], hash[WG_HASH_LEN], key[WG_KEY_LEN], tau[WG_HASH_LEN];
	uint8_t dh[WG_KEY_LEN];
	struct wg_index_entry *e;
	struct noise_handshake *hs;
	struct wg_peer *ret = NULL;

	e = index_lookup(&dev->index, le32toh(msg->receiver_index), INDEX_HANDSHAKE);
	if (!e || !dev->identity.has_identity)
		return NULL;
	hs = &e->peer->handshake;
	if (hs->state != HANDSHAKE_CREATED_INITIATION)
		return NULL;
	memcpy(ck, hs->chaining_key, WG_HASH_LEN);
	memcpy(hash, hs->hash, WG_HASH_LEN);

	/* e */
	mix_key(ck, msg->unencrypted_ephemeral, WG_KEY_LEN);
	mix_hash(hash, msg->unencrypted_ephemeral, WG_KEY_LEN);
	/* ee */
	if (wgcrypto_dh(dh, hs->ephemeral_private, msg->unencrypted_ephemeral))
		goto out;
	mix_key(ck, dh, WG_KEY_LEN);
	/* se */
	if (wgcrypto_dh(dh, dev->identity.static_private, msg->unencrypted_ephemeral))
		goto out;
	mix_key(ck, dh, WG_KEY_LEN);
	/* psk */
	wgcrypto_kdf(ck, tau, key, ck, hs->preshared_key, WG_KEY_LEN);
	mix_hash(hash, tau, WG_HASH_LEN);
	/* {} */
	if (open_and_hash(NULL, msg->encrypted_nothing, sizeof(msg->encrypted_nothing), key, hash))
		goto out;

	memcpy(hs->remote_ephemeral, msg->unencrypted_ephemeral, WG_KEY_LEN);
	memcpy(hs->hash, hash, WG_HASH_LEN);
	memcpy(hs->chaining_key, ck, WG_HASH_LEN);
	hs->remote_index = le32toh(msg->sender_index);
	hs->state = HANDSHAKE_CONSUMED_RESPONSE;
	ret = e->peer;
out:
	wgcrypto_wipe(dh, sizeof(dh));
	wgcrypto_wipe(key, sizeof(key));
	wgcrypto_wipe(tau, sizeof(tau));
	wgcrypto_wipe(hash, sizeof(hash));
	wgcrypto_wipe(ck, sizeof(ck));
	return ret;
}

uint64_t noise_keypair_next_id(void)
{
	/* Process-wide: the cipher caches (wgcrypto_data_ctx) re-key only when the id changes,
	 * and a thread may serve several devices. */
	static _Atomic uint64_t last_id;

	return atomic_fetch_add(&last_id, 1) + 1;
}

void noise_keypair_free(struct wg_device *dev, struct noise_keypair *kp)
{
	if (!kp)
		return;
	index_remove(&dev->index, &kp->entry);
	wgcrypto_wipe(kp, sizeof(*kp));
	free(kp);
}

void noise_keypairs_clear(struct wg_device *dev, struct noise_keypairs *kps)
{
	noise_keypair_free(dev, kps->previous);
	noise_keypair_free(dev, kps->current);
	noise_keypair_free(dev, kps->next);
	kps->previous = kps->current = kps->next = NULL;
}

int noise_begin_session(struct wg_device *dev, struct wg_peer *peer)
{
	struct noise_handshake *hs = &peer->handshake;
	struct noise_keypairs *kps = &peer->keypairs;
	struct noise_keypair *kp;
	bool initiator;

	if (hs->state != HANDSHAKE_CREATED_RESPONSE && hs->state != HANDSHAKE_CONSUMED_RESPONSE)
		return -EINVAL;
	kp = calloc(1, sizeof(*kp));
	if (!kp)
		return -ENOMEM;
	initiator = hs->state == HANDSHAKE_CONSUMED_RESPONSE;
	/* Paper 5.4.5: (T_send, T_recv) = KDF2(C, empty), swapped for the responder. */
	if (initiator)
		wgcrypto_kdf(kp->send_key, kp->recv_key, NULL, hs->chaining_key, NULL, 0);
	else
		wgcrypto_kdf(kp->recv_key, kp->send_key, NULL, hs->chaining_key, NULL, 0);
	kp->i_am_initiator = initiator;
	kp->remote_index = hs->remote_index;
	kp->birthdate_ns = now_ns();
	kp->id = noise_keypair_next_id();
	kp->peer = peer;
	replay_init(&kp->recv_window);
	index_replace(&dev->index, &hs->entry, &kp->entry, INDEX_KEYPAIR);
	noise_handshake_clear(dev, hs);

	if (initiator) {
		if (kps->next) {
			/* An unconfirmed responder session loses to ours; keep it as previous. */
			noise_keypair_free(dev, kps->previous);
			kps->previous = kps->next;
			kps->next = NULL;
			noise_keypair_free(dev, kps->current);
		} else {
			noise_keypair_free(dev, kps->previous);
			kps->previous = kps->current;
		}
		kps->current = kp;
	} else {
		/* Usable only once the initiator's first data message confirms it. */
		noise_keypair_free(dev, kps->next);
		kps->next = kp;
		noise_keypair_free(dev, kps->previous);
		kps->previous = NULL;
	}
	return 0;
}

void noise_keypairs_confirm(struct wg_device *dev, struct wg_peer *peer, struct noise_keypair *kp)
{
	struct noise_keypairs *kps = &peer->keypairs;

	if (!kp || kps->next != kp)
		return;
	noise_keypair_free(dev, kps->previous);
	kps->previous = kps->current;
	kps->current = kp;
	kps->next = NULL;
}
