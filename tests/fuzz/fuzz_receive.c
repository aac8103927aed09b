// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the receive path: one datagram per input into receive_one, then the
 * control thread's work (ctrl_run_once), on a device without TUN or sockets (every send fails
 * with -ENETUNREACH before a system call). The device ("R") has fixed keys and one peer ("I")
 * with fixed keys too, so a captured initiation from I is valid here, as are the seeds that
 * tests/fuzz/gen_seeds.c writes.
 *
 * Input: one mode byte, then the datagram. Mode bits:
 *   0  (odd byte) handshake message: recompute mac1 for R so the fuzzer reaches Noise
 *   1  data message: seal bytes 16.. as the payload under the fixed session named by the
 *      receiver index (or "current"), so the fuzzer reaches the replay window, cryptokey
 *      routing and GRO
 *   2  R first sends an initiation; a response or cookie reply is addressed to it
 *   3  R is under load (mac2 needed: cookie replies)
 *   4  deliver the datagram twice
 * Every input starts from the same state: the peer's handshake, sessions and timers are reset
 * and two fixed sessions installed ("current" and an unconfirmed "next").
 *
 * Build (tests/fuzz/run.sh does): clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc
 * tests/fuzz/fuzz_receive.c with every .c file of src/wg and src/util, -lcrypto -lsodium
 * -lpthread; run as ./fuzz_receive tests/fuzz/corpus/receive
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/key.h"
#include "util/log.h"
#include "wg/crypto.h"
#include "wg/device.h"
#include "wg/uapi.h"

#define MODE_REMAC	0x01
#define MODE_SEAL	0x02
#define MODE_INITIATE	0x04
#define MODE_UNDER_LOAD 0x08
#define MODE_TWICE	0x10

/* The fixed sessions: R receives with these keys under these indices. */
#define FUZZ_IDX_CURRENT 0x11223344u
#define FUZZ_IDX_NEXT	 0x55667788u
#define FUZZ_KEY_CURRENT 0xc1
#define FUZZ_KEY_NEXT	 0xc2
#define FUZZ_SRC_PORT	 51820

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Private keys from constant bytes; clamped when used. */
static void fuzz_private_key(uint8_t key[static WG_KEY_LEN], uint8_t fill)
{
	memset(key, fill, WG_KEY_LEN);
	key_clamp(key);
}

static void fuzz_responder_key(uint8_t key[static WG_KEY_LEN])
{
	fuzz_private_key(key, 0x52); /* 'R' */
}

static void fuzz_initiator_key(uint8_t key[static WG_KEY_LEN])
{
	fuzz_private_key(key, 0x49); /* 'I' */
}

static struct wg_device *dev;
static struct wg_peer *peer;
static struct wg_endpoint src;
static struct cookie_maker mac_maker; /* makes mac1 as I would for R */

static void fuzz_setup(void)
{
	uint8_t priv[WG_KEY_LEN], ipub[WG_KEY_LEN];
	char hex[2 * WG_KEY_LEN + 1], req[512];
	FILE *null = fopen("/dev/null", "w");

	log_max_level = LOG_LVL_ERROR;
	if (!null || device_new("fuzz", -1, &dev))
		abort();
	fuzz_responder_key(priv);
	if (device_set_private_key(dev, priv))
		abort();
	fuzz_initiator_key(priv);
	if (key_public_from_private(ipub, priv))
		abort();
	key_to_hex(hex, ipub);
	snprintf(req, sizeof(req),
		 "set=1\npublic_key=%s\nendpoint=127.0.0.1:%u\nallowed_ip=10.0.0.2/32\n"
		 "allowed_ip=fd00::2/128\n\n",
		 hex, FUZZ_SRC_PORT);
	if (uapi_request(dev, req, strlen(req), null))
		abort();
	fclose(null);
	peer = peer_lookup(dev, ipub);
	if (!peer || dev->udp4 >= 0 || dev->udp6 >= 0)
		abort();
	cookie_maker_init(&mac_maker, dev->identity.static_public);
	src.in4.sin_family = AF_INET;
	src.in4.sin_port = htons(FUZZ_SRC_PORT);
	src.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static struct noise_keypair *install_keypair(uint8_t key, uint32_t index)
{
	struct wg_index_entry fixed = {.index = index, .peer = peer};
	struct noise_keypair *kp = calloc(1, sizeof(*kp));

	if (!kp)
		abort();
	memset(kp->send_key, key ^ 0xff, WG_KEY_LEN);
	memset(kp->recv_key, key, WG_KEY_LEN);
	kp->id = noise_keypair_next_id();
	kp->birthdate_ns = now_ns();
	kp->remote_index = ~index;
	kp->peer = peer;
	replay_init(&kp->recv_window);
	/* index_replace moves fixed's number to kp (fixed itself is not in the table). */
	index_replace(&dev->index, &fixed, &kp->entry, INDEX_KEYPAIR);
	return kp;
}

/* Back to the same state before every input: no handshake, two fixed sessions. */
static void fuzz_reset(void)
{
	pthread_rwlock_wrlock(&dev->lock);
	noise_keypairs_clear(dev, &peer->keypairs);
	noise_handshake_clear(dev, &peer->handshake);
	memset(peer->handshake.latest_timestamp, 0, WG_TIMESTAMP_LEN);
	peer->handshake.last_initiation_consumption_ns = 0;
	cookie_maker_init(&peer->cookie, peer->public_key);
	peer_purge_staged(peer);
	peer_set_endpoint(peer, &src);
	atomic_store(&peer->requests, 0);
	atomic_store(&peer->last_sent_handshake, 0);
	atomic_store(&peer->t_send_keepalive, 0);
	atomic_store(&peer->t_need_another_keepalive, false);
	atomic_store(&peer->t_new_handshake, 0);
	atomic_store(&peer->t_persistent_keepalive, 0);
	atomic_store(&peer->sent_lastminute_handshake, false);
	peer->t_retransmit_handshake = 0;
	peer->t_zero_key_material = 0;
	peer->handshake_attempts = 0;
	peer->keypairs.current = install_keypair(FUZZ_KEY_CURRENT, FUZZ_IDX_CURRENT);
	peer->keypairs.next = install_keypair(FUZZ_KEY_NEXT, FUZZ_IDX_NEXT);
	pthread_rwlock_unlock(&dev->lock);

	pthread_mutex_lock(&dev->hs_lock);
	dev->hs_head = dev->hs_count = 0;
	pthread_mutex_unlock(&dev->hs_lock);
	atomic_store(&dev->under_load_until, 0);
	ratelimit_expire(&dev->handshake_limit, UINT64_MAX); /* forget every source */
}

static void seal_data(uint8_t *msg, size_t len)
{
	uint32_t idx;
	uint64_t counter;
	uint8_t key[WG_KEY_LEN];

	if (len < WG_DATA_OVERHEAD)
		return;
	memcpy(&idx, msg + 4, sizeof(idx));
	memcpy(&counter, msg + 8, sizeof(counter));
	memset(key, le32toh(idx) == FUZZ_IDX_NEXT ? FUZZ_KEY_NEXT : FUZZ_KEY_CURRENT, sizeof(key));
	wgcrypto_aead_seal(msg + WG_DATA_HEADER_LEN, msg + WG_DATA_HEADER_LEN,
			   len - WG_DATA_OVERHEAD, NULL, 0, le64toh(counter), key);
}

/* R sends an initiation (to nowhere); responses and cookie replies then name its index. */
static void initiate(uint8_t *msg, size_t len, uint32_t type)
{
	uint32_t idx;

	pthread_rwlock_wrlock(&dev->lock);
	send_handshake_initiation(peer, false);
	idx = htole32(peer->handshake.entry.index);
	pthread_rwlock_unlock(&dev->lock);
	if (type == WG_MSG_HANDSHAKE_RESPONSE && len >= 12)
		memcpy(msg + 8, &idx, sizeof(idx));
	else if (type == WG_MSG_HANDSHAKE_COOKIE && len >= 8)
		memcpy(msg + 4, &idx, sizeof(idx));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mode, *msg;
	uint32_t type = 0;
	size_t len;

	if (!size)
		return 0;
	if (!dev)
		fuzz_setup();
	mode = data[0];
	len = size - 1;
	msg = malloc(len ? len : 1); /* exact size: ASan sees any overread */
	if (!msg)
		return 0;
	memcpy(msg, data + 1, len);
	if (len >= 4)
		type = (uint32_t)msg[0] | (uint32_t)msg[1] << 8 | (uint32_t)msg[2] << 16 |
		       (uint32_t)msg[3] << 24;

	fuzz_reset();
	if (mode & MODE_UNDER_LOAD)
		atomic_store(&dev->under_load_until, UINT64_MAX);
	if (mode & MODE_INITIATE)
		initiate(msg, len, type);
	if ((mode & MODE_REMAC) && len >= sizeof(struct wg_message_macs))
		cookie_add_macs(&mac_maker, msg, len);
	if ((mode & MODE_SEAL) && type == WG_MSG_DATA)
		seal_data(msg, len);

	for (int i = 0; i < (mode & MODE_TWICE ? 2 : 1); i++) {
		uint8_t *copy = malloc(len ? len : 1);

		if (!copy)
			break;
		memcpy(copy, msg, len);
		receive_one(dev, copy, len, &src);
		free(copy);
		ctrl_run_once(dev);
	}
	free(msg);
	return 0;
}
