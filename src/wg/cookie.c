/* SPDX-License-Identifier: MIT */
/* mac1, mac2 and cookie replies: the WireGuard paper, section 5.4.7. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <netinet/in.h>
#include "wg/cookie.h"
#include "wg/crypto.h"
#include "wg/device.h"

static const uint8_t label_mac1[8] = "mac1----";
static const uint8_t label_cookie[8] = "cookie--";

/* A cookie stays usable for two minutes less the time a reply takes to arrive. */
#define COOKIE_SECRET_LATENCY 5

static void precompute_key(uint8_t key[static WG_KEY_LEN], const uint8_t label[static 8],
			   const uint8_t pub[static WG_KEY_LEN])
{
	wgcrypto_hash(key, label, 8, pub, WG_KEY_LEN);
}

void cookie_checker_init(struct cookie_checker *c, const uint8_t local_public[static WG_KEY_LEN])
{
	precompute_key(c->message_mac1_key, label_mac1, local_public);
	precompute_key(c->cookie_encryption_key, label_cookie, local_public);
}

void cookie_maker_init(struct cookie_maker *m, const uint8_t remote_public[static WG_KEY_LEN])
{
	memset(m, 0, sizeof(*m));
	precompute_key(m->message_mac1_key, label_mac1, remote_public);
	precompute_key(m->cookie_decryption_key, label_cookie, remote_public);
}

static size_t mac1_offset(size_t len)
{
	return len - sizeof(struct wg_message_macs);
}

static size_t mac2_offset(size_t len)
{
	return len - WG_COOKIE_LEN;
}

/* The cookie is a MAC of the sender's address and port under a secret that changes every two
 * minutes: proof that the sender receives at that address. */
static void make_cookie(struct cookie_checker *c, uint8_t cookie[static WG_COOKIE_LEN],
			const struct sockaddr *src)
{
	uint8_t buf[18];
	size_t n;
	uint64_t now = now_ns();

	if (!c->secret_birthdate_ns ||
	    now - c->secret_birthdate_ns > (uint64_t)WG_COOKIE_SECRET_MAX_AGE * 1000000000ULL) {
		wgcrypto_random(c->secret, sizeof(c->secret));
		c->secret_birthdate_ns = now;
	}
	if (src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)src;

		memcpy(buf, &in6->sin6_addr, 16);
		memcpy(buf + 16, &in6->sin6_port, 2);
		n = 18;
	} else {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)src;

		memcpy(buf, &in4->sin_addr, 4);
		memcpy(buf + 4, &in4->sin_port, 2);
		n = 6;
	}
	wgcrypto_mac(cookie, c->secret, sizeof(c->secret), buf, n);
}

enum cookie_mac_state cookie_validate(struct cookie_checker *c, const uint8_t *msg, size_t len,
				      const struct sockaddr *src, bool check_cookie)
{
	uint8_t mac[WG_COOKIE_LEN], cookie[WG_COOKIE_LEN];

	if (len < sizeof(struct wg_message_macs))
		return COOKIE_INVALID_MAC;
	wgcrypto_mac(mac, c->message_mac1_key, WG_KEY_LEN, msg, mac1_offset(len));
	if (!wgcrypto_equal(mac, msg + mac1_offset(len), WG_COOKIE_LEN))
		return COOKIE_INVALID_MAC;
	if (!check_cookie)
		return COOKIE_VALID_MAC_BUT_NO_COOKIE;
	make_cookie(c, cookie, src);
	wgcrypto_mac(mac, cookie, WG_COOKIE_LEN, msg, mac2_offset(len));
	if (!wgcrypto_equal(mac, msg + mac2_offset(len), WG_COOKIE_LEN))
		return COOKIE_VALID_MAC_BUT_NO_COOKIE;
	return COOKIE_VALID_MAC_WITH_COOKIE;
}

void cookie_add_macs(struct cookie_maker *m, uint8_t *msg, size_t len)
{
	uint64_t now = now_ns();
	uint64_t max_age =
		(uint64_t)(WG_COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY) * 1000000000ULL;

	wgcrypto_mac(msg + mac1_offset(len), m->message_mac1_key, WG_KEY_LEN, msg,
		     mac1_offset(len));
	memcpy(m->last_mac1_sent, msg + mac1_offset(len), WG_COOKIE_LEN);
	m->have_sent_mac1 = true;
	if (m->cookie_birthdate_ns && now - m->cookie_birthdate_ns < max_age)
		wgcrypto_mac(msg + mac2_offset(len), m->cookie, WG_COOKIE_LEN, msg,
			     mac2_offset(len));
	else
		memset(msg + mac2_offset(len), 0, WG_COOKIE_LEN);
}

void cookie_make_reply(struct cookie_checker *c, struct wg_message_handshake_cookie *reply,
		       const uint8_t *msg, size_t len, uint32_t receiver_index,
		       const struct sockaddr *src)
{
	uint8_t cookie[WG_COOKIE_LEN];

	reply->header.type = htole32(WG_MSG_HANDSHAKE_COOKIE);
	reply->receiver_index = htole32(receiver_index);
	wgcrypto_random(reply->nonce, sizeof(reply->nonce));
	make_cookie(c, cookie, src);
	wgcrypto_xaead_seal(reply->encrypted_cookie, cookie, WG_COOKIE_LEN, msg + mac1_offset(len),
			    WG_COOKIE_LEN, reply->nonce, c->cookie_encryption_key);
	wgcrypto_wipe(cookie, sizeof(cookie));
}

int cookie_consume_reply(struct cookie_maker *m, const struct wg_message_handshake_cookie *reply)
{
	uint8_t cookie[WG_COOKIE_LEN];

	if (!m->have_sent_mac1)
		return -EBADMSG;
	if (wgcrypto_xaead_open(cookie, reply->encrypted_cookie, sizeof(reply->encrypted_cookie),
				m->last_mac1_sent, WG_COOKIE_LEN, reply->nonce,
				m->cookie_decryption_key))
		return -EBADMSG;
	memcpy(m->cookie, cookie, WG_COOKIE_LEN);
	m->cookie_birthdate_ns = now_ns();
	m->have_sent_mac1 = false;
	wgcrypto_wipe(cookie, sizeof(cookie));
	return 0;
}
