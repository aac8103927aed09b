// SPDX-License-Identifier: MIT
/*
 * Sealed envelopes: every Message field survives the round trip; only the addressed recipient
 * opens; any rewritten routing field or flipped bit is refused; replays, stale and future
 * envelopes are refused while reordered ones are accepted once; malformed input is refused
 * without leaks; the replay cache stays within its bounds and fails safe beyond them. One test
 * rebuilds an envelope from the construction in docs/signaling.md with libsodium alone.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>
#include "signal/envelope.h"
#include "util/key.h"

#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))
#define NOW	      1800000000000ull /* a fixed wall clock, ms */
#define W	      ENVELOPE_REPLAY_WINDOW_MS

static void key_make(struct envelope_key *k)
{
	assert_int_equal(key_generate_private(k->private_key), 0);
	assert_int_equal(key_public_from_private(k->public_key, k->private_key), 0);
}

static const struct {
	Wice__Signaling__Candidate__Type type;
	Wice__Signaling__Candidate__Transport transport;
	Wice__Signaling__Candidate__TCPType tcp_type;
	const char *address, *related;
	uint32_t port, related_port;
} cand_table[] = {
	{WICE__SIGNALING__CANDIDATE__TYPE__HOST, WICE__SIGNALING__CANDIDATE__TRANSPORT__UDP,
	 WICE__SIGNALING__CANDIDATE__TCPTYPE__TCP_TYPE_UNSPECIFIED, "192.0.2.10", "", 51820, 0},
	{WICE__SIGNALING__CANDIDATE__TYPE__SERVER_REFLEXIVE,
	 WICE__SIGNALING__CANDIDATE__TRANSPORT__UDP,
	 WICE__SIGNALING__CANDIDATE__TCPTYPE__TCP_TYPE_UNSPECIFIED, "203.0.113.5", "192.0.2.10",
	 40001, 51820},
	{WICE__SIGNALING__CANDIDATE__TYPE__PEER_REFLEXIVE,
	 WICE__SIGNALING__CANDIDATE__TRANSPORT__UDP,
	 WICE__SIGNALING__CANDIDATE__TCPTYPE__TCP_TYPE_UNSPECIFIED, "198.51.100.7", "192.0.2.10",
	 40002, 51820},
	{WICE__SIGNALING__CANDIDATE__TYPE__RELAY, WICE__SIGNALING__CANDIDATE__TRANSPORT__UDP,
	 WICE__SIGNALING__CANDIDATE__TCPTYPE__TCP_TYPE_UNSPECIFIED, "203.0.113.9", "203.0.113.5",
	 49152, 40001},
	{WICE__SIGNALING__CANDIDATE__TYPE__HOST, WICE__SIGNALING__CANDIDATE__TRANSPORT__TCP,
	 WICE__SIGNALING__CANDIDATE__TCPTYPE__ACTIVE, "2001:db8::1", "", 9, 0},
	{WICE__SIGNALING__CANDIDATE__TYPE__HOST, WICE__SIGNALING__CANDIDATE__TRANSPORT__TCP,
	 WICE__SIGNALING__CANDIDATE__TCPTYPE__PASSIVE, "2001:db8::1", "", 443, 0},
	{WICE__SIGNALING__CANDIDATE__TYPE__SERVER_REFLEXIVE,
	 WICE__SIGNALING__CANDIDATE__TRANSPORT__TCP,
	 WICE__SIGNALING__CANDIDATE__TCPTYPE__SIMULTANEOUS_OPEN, "203.0.113.5", "2001:db8::1",
	 40003, 443},
	{WICE__SIGNALING__CANDIDATE__TYPE__RELAY, WICE__SIGNALING__CANDIDATE__TRANSPORT__TCP,
	 WICE__SIGNALING__CANDIDATE__TCPTYPE__PASSIVE, "203.0.113.9", "203.0.113.5", 443, 40003},
};

/* A Message with every field set, in storage owned by the struct. */
struct full_msg {
	Wice__Signaling__Message m;
	Wice__Signaling__Credentials cred;
	Wice__Signaling__PeerDescription peer;
	Wice__Signaling__Candidate c[ARRAY_SIZE(cand_table)];
	Wice__Signaling__Candidate *cp[ARRAY_SIZE(cand_table)];
	char foundation[ARRAY_SIZE(cand_table)][8];
	char *addresses[2];
	uint8_t management[5];
};

static void full_msg_init(struct full_msg *f, uint64_t ts)
{
	static const Wice__Signaling__Message m0 = WICE__SIGNALING__MESSAGE__INIT;
	static const Wice__Signaling__Credentials cr0 = WICE__SIGNALING__CREDENTIALS__INIT;
	static const Wice__Signaling__PeerDescription p0 = WICE__SIGNALING__PEER_DESCRIPTION__INIT;
	static const Wice__Signaling__Candidate c0 = WICE__SIGNALING__CANDIDATE__INIT;

	memset(f, 0, sizeof(*f));
	f->m = m0;
	f->cred = cr0;
	f->peer = p0;
	f->cred.ufrag = "Fz3k";
	f->cred.pwd = "asd88fgpdd777uzjYhagZg0123456789";
	for (size_t i = 0; i < ARRAY_SIZE(cand_table); i++) {
		Wice__Signaling__Candidate *c = &f->c[i];

		*c = c0;
		snprintf(f->foundation[i], sizeof(f->foundation[i]), "f%zu", i);
		c->foundation = f->foundation[i];
		c->component = 1;
		c->transport = cand_table[i].transport;
		c->tcp_type = cand_table[i].tcp_type;
		c->priority = 2130706431u - (uint32_t)i;
		c->address = (char *)cand_table[i].address;
		c->port = cand_table[i].port;
		c->type = cand_table[i].type;
		c->related_address = (char *)cand_table[i].related;
		c->related_port = cand_table[i].related_port;
		f->cp[i] = c;
	}
	f->peer.name = "alpha";
	f->addresses[0] = "100.64.0.1";
	f->addresses[1] = "fd00::1";
	f->peer.addresses = f->addresses;
	f->peer.n_addresses = 2;
	memcpy(f->management, "\x01\x02\x00\xff\x7f", 5);
	f->m.timestamp_ms = ts;
	f->m.session_id = 0x1122334455667788ull;
	f->m.credentials = &f->cred;
	f->m.candidates = f->cp;
	f->m.n_candidates = ARRAY_SIZE(cand_table);
	f->m.end_of_candidates = true;
	f->m.peer = &f->peer;
	f->m.management.data = f->management;
	f->m.management.len = sizeof(f->management);
}

/* A small sealed Message from a to b with timestamp ts. */
static void seal_small(const struct envelope_key *a, const struct envelope_key *b, uint64_t ts,
		       uint8_t **buf, size_t *len)
{
	Wice__Signaling__Message m = WICE__SIGNALING__MESSAGE__INIT;

	m.timestamp_ms = ts;
	m.session_id = 7;
	m.end_of_candidates = true;
	assert_int_equal(envelope_seal(a, b->public_key, &m, buf, len), 0);
}

static int open_free(const struct envelope_key *self, struct envelope_replay *r, uint64_t now,
		     const uint8_t *buf, size_t len)
{
	Wice__Signaling__Message *m = NULL;
	uint8_t sender[WG_KEY_LEN];
	int ret = envelope_open(self, r, now, buf, len, sender, &m);

	if (ret == 0)
		wice__signaling__message__free_unpacked(m, NULL);
	return ret;
}

/* Re-encodes buf after fn changed its decoded Envelope. */
static void rewrite(uint8_t **buf, size_t *len, void (*fn)(Wice__Signaling__Envelope *, void *),
		    void *arg)
{
	Wice__Signaling__Envelope *e = wice__signaling__envelope__unpack(NULL, *len, *buf);

	assert_non_null(e);
	fn(e, arg);
	free(*buf);
	*len = wice__signaling__envelope__get_packed_size(e);
	*buf = malloc(*len);
	assert_non_null(*buf);
	wice__signaling__envelope__pack(e, *buf);
	wice__signaling__envelope__free_unpacked(e, NULL);
}

static void set_recipient(Wice__Signaling__Envelope *e, void *key)
{
	memcpy(e->recipient.data, key, WG_KEY_LEN);
}

static void set_sender(Wice__Signaling__Envelope *e, void *key)
{
	memcpy(e->sender.data, key, WG_KEY_LEN);
}

static void test_round_trip_every_field(void **state)
{
	struct envelope_key a, b;
	struct envelope_replay *r = envelope_replay_new();
	Wice__Signaling__Message *out = NULL;
	uint8_t sender[WG_KEY_LEN], peek_s[WG_KEY_LEN], peek_r[WG_KEY_LEN], *buf, *p1, *p2;
	struct full_msg f;
	size_t len, l1, l2;

	key_make(&a);
	key_make(&b);
	full_msg_init(&f, 0);
	assert_int_equal(envelope_seal(&a, b.public_key, &f.m, &buf, &len), 0);
	assert_true(f.m.timestamp_ms > 0); /* zero means now */
	assert_true(len <= ENVELOPE_MAX_SIZE);

	assert_int_equal(envelope_peek(buf, len, peek_s, peek_r), 0);
	assert_memory_equal(peek_s, a.public_key, WG_KEY_LEN);
	assert_memory_equal(peek_r, b.public_key, WG_KEY_LEN);

	assert_int_equal(envelope_open(&b, r, envelope_now_ms(), buf, len, sender, &out), 0);
	assert_memory_equal(sender, a.public_key, WG_KEY_LEN);
	assert_int_equal(out->session_id, 0x1122334455667788ull);
	assert_string_equal(out->credentials->pwd, f.cred.pwd);
	assert_int_equal(out->n_candidates, ARRAY_SIZE(cand_table));
	for (size_t i = 0; i < ARRAY_SIZE(cand_table); i++) {
		assert_int_equal(out->candidates[i]->type, cand_table[i].type);
		assert_int_equal(out->candidates[i]->transport, cand_table[i].transport);
		assert_int_equal(out->candidates[i]->tcp_type, cand_table[i].tcp_type);
		assert_string_equal(out->candidates[i]->address, cand_table[i].address);
		assert_string_equal(out->candidates[i]->related_address, cand_table[i].related);
		assert_int_equal(out->candidates[i]->related_port, cand_table[i].related_port);
	}
	assert_true(out->end_of_candidates);
	/* Everything else: both encode to the same bytes. */
	l1 = wice__signaling__message__get_packed_size(&f.m);
	l2 = wice__signaling__message__get_packed_size(out);
	assert_int_equal(l1, l2);
	p1 = malloc(l1);
	p2 = malloc(l2);
	wice__signaling__message__pack(&f.m, p1);
	wice__signaling__message__pack(out, p2);
	assert_memory_equal(p1, p2, l1);
	free(p1);
	free(p2);
	wice__signaling__message__free_unpacked(out, NULL);
	free(buf);
	envelope_replay_free(r);
}

static void test_seal_limits(void **state)
{
	struct envelope_key a, b;
	struct full_msg f;
	char long_str[ENVELOPE_MAX_STRING + 2];
	Wice__Signaling__Candidate *many[ENVELOPE_MAX_CANDIDATES + 1];
	uint8_t *buf = NULL, zero[WG_KEY_LEN] = {0};
	size_t len;

	key_make(&a);
	key_make(&b);
	memset(long_str, 'x', sizeof(long_str) - 1);
	long_str[sizeof(long_str) - 1] = '\0';

	full_msg_init(&f, NOW);
	f.cred.ufrag = long_str;
	assert_int_equal(envelope_seal(&a, b.public_key, &f.m, &buf, &len), -EINVAL);
	long_str[ENVELOPE_MAX_STRING] = '\0'; /* exactly the limit */
	assert_int_equal(envelope_seal(&a, b.public_key, &f.m, &buf, &len), 0);
	free(buf);

	full_msg_init(&f, NOW);
	for (size_t i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = &f.c[0];
	f.m.candidates = many;
	f.m.n_candidates = ARRAY_SIZE(many);
	assert_int_equal(envelope_seal(&a, b.public_key, &f.m, &buf, &len), -EINVAL);
	f.m.n_candidates = ENVELOPE_MAX_CANDIDATES;
	assert_int_equal(envelope_seal(&a, b.public_key, &f.m, &buf, &len), 0);
	free(buf);

	full_msg_init(&f, NOW);
	f.c[1].port = 65536;
	assert_int_equal(envelope_seal(&a, b.public_key, &f.m, &buf, &len), -EINVAL);

	/* Unknown fields (here field 15, and a field 0 protobuf-c lets through in an overlong
	 * tag): we seal only what we understand. */
	for (int i = 0; i < 2; i++) {
		static const uint8_t enc[2][7] = {{0x78, 0x01},
						  {0x85, 0x00, 0x32, 0x00, 0x32, 0x00}};
		Wice__Signaling__Message *u =
			wice__signaling__message__unpack(NULL, i ? 6 : 2, enc[i]);

		assert_non_null(u);
		assert_int_equal(envelope_seal(&a, b.public_key, u, &buf, &len), -EINVAL);
		wice__signaling__message__free_unpacked(u, NULL);
	}

	/* A low-order recipient key: the Diffie-Hellman would be zero. */
	full_msg_init(&f, NOW);
	assert_int_equal(envelope_seal(&a, zero, &f.m, &buf, &len), -EINVAL);
}

static void test_third_key(void **state)
{
	struct envelope_key a, b, c;
	uint8_t *buf;
	size_t len;

	key_make(&a);
	key_make(&b);
	key_make(&c);
	seal_small(&a, &b, NOW, &buf, &len);
	assert_int_equal(open_free(&c, NULL, NOW, buf, len), -ENOENT);
	/* Re-addressed to c: c still lacks b's half of both Diffie-Hellmans. */
	rewrite(&buf, &len, set_recipient, c.public_key);
	assert_int_equal(open_free(&c, NULL, NOW, buf, len), -EBADMSG);
	assert_int_equal(open_free(&b, NULL, NOW, buf, len), -ENOENT);
	free(buf);
}

static void test_forged_sender(void **state)
{
	struct envelope_key a, b, c;
	uint8_t *buf;
	size_t len;

	key_make(&a);
	key_make(&b);
	key_make(&c);
	/* c seals to b, then claims a sent it. */
	seal_small(&c, &b, NOW, &buf, &len);
	assert_int_equal(open_free(&b, NULL, NOW, buf, len), 0);
	rewrite(&buf, &len, set_sender, a.public_key);
	assert_int_equal(open_free(&b, NULL, NOW, buf, len), -EBADMSG);
	free(buf);
	/* a's genuine envelope re-labelled as c's. */
	seal_small(&a, &b, NOW, &buf, &len);
	rewrite(&buf, &len, set_sender, c.public_key);
	assert_int_equal(open_free(&b, NULL, NOW, buf, len), -EBADMSG);
	free(buf);
}

static void test_every_bit_flip(void **state)
{
	struct envelope_key a, b;
	struct envelope_replay *r = envelope_replay_new();
	struct full_msg f;
	uint8_t *buf;
	size_t len;

	key_make(&a);
	key_make(&b);
	full_msg_init(&f, NOW);
	f.m.n_candidates = 2;
	assert_int_equal(envelope_seal(&a, b.public_key, &f.m, &buf, &len), 0);
	for (size_t bit = 0; bit < len * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (open_free(&b, r, NOW, buf, len) == 0)
			fail_msg("bit %zu flipped was accepted", bit);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* Nothing was recorded for the refused ones: the original still opens, once. */
	assert_int_equal(envelope_replay_count(r), 0);
	assert_int_equal(open_free(&b, r, NOW, buf, len), 0);
	assert_int_equal(open_free(&b, r, NOW, buf, len), -EALREADY);
	free(buf);
	envelope_replay_free(r);
}

static void test_replay(void **state)
{
	struct envelope_key a, b;
	struct envelope_replay *r = envelope_replay_new();
	uint8_t *buf, *re;
	size_t len, relen;

	key_make(&a);
	key_make(&b);
	seal_small(&a, &b, NOW, &buf, &len);
	assert_int_equal(open_free(&b, r, NOW, buf, len), 0);
	assert_int_equal(open_free(&b, r, NOW, buf, len), -EALREADY);
	assert_int_equal(open_free(&b, r, NOW + W / 2, buf, len), -EALREADY);
	/* Different bytes, same envelope (an unknown field appended): still the same nonce. */
	relen = len + 3;
	re = malloc(relen);
	memcpy(re, buf, len);
	memcpy(re + len, "\x78\x01\x00", 3); /* field 15 = 1, then a tag 0: malformed */
	assert_int_equal(open_free(&b, r, NOW, re, relen), -EBADMSG);
	relen = len + 2;
	assert_int_equal(open_free(&b, r, NOW, re, relen), -EALREADY);
	free(re);
	/* Without a replay cache nothing is checked. */
	assert_int_equal(open_free(&b, NULL, NOW, buf, len), 0);
	free(buf);
	envelope_replay_free(r);
}

static void test_out_of_order(void **state)
{
	struct envelope_key a, b;
	struct envelope_replay *r = envelope_replay_new();
	uint8_t *buf[100];
	size_t len[100], order[100];

	key_make(&a);
	key_make(&b);
	for (size_t i = 0; i < 100; i++) {
		seal_small(&a, &b, NOW - W / 2 + i * 100, &buf[i], &len[i]);
		order[i] = i;
	}
	for (size_t i = 99; i > 0; i--) {
		size_t j = randombytes_uniform((uint32_t)i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(open_free(&b, r, NOW, buf[order[i]], len[order[i]]), 0);
	for (size_t i = 0; i < 100; i++) {
		assert_int_equal(open_free(&b, r, NOW, buf[i], len[i]), -EALREADY);
		free(buf[i]);
	}
	assert_int_equal(envelope_replay_count(r), 100);
	envelope_replay_free(r);
}

static void test_stale_and_future(void **state)
{
	static const struct {
		int64_t offset; /* timestamp - now */
		int want;
	} cases[] = {
		{-(int64_t)W - 1, -ESTALE},
		{-(int64_t)W, 0},
		{0, 0},
		{(int64_t)W, 0},
		{(int64_t)W + 1, -ESTALE},
		{-(int64_t)NOW / 2, -ESTALE},
	};
	struct envelope_key a, b;
	struct envelope_replay *r = envelope_replay_new();
	uint8_t *buf;
	size_t len;

	key_make(&a);
	key_make(&b);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		seal_small(&a, &b, (uint64_t)((int64_t)NOW + cases[i].offset), &buf, &len);
		assert_int_equal(open_free(&b, r, NOW, buf, len), cases[i].want);
		if (cases[i].want) /* not recorded: it opens once its time is right */
			assert_int_equal(open_free(&b, r,
						   (uint64_t)((int64_t)NOW + cases[i].offset), buf,
						   len),
					 0);
		free(buf);
	}
	envelope_replay_free(r);
}

static void test_malformed(void **state)
{
	struct envelope_key a, b;
	uint8_t *buf, *big, s[WG_KEY_LEN], rc[WG_KEY_LEN];
	size_t len;

	key_make(&a);
	key_make(&b);
	seal_small(&a, &b, NOW, &buf, &len);
	for (size_t n = 0; n < len; n++) {
		assert_int_equal(open_free(&b, NULL, NOW, buf, n), -EBADMSG);
		assert_int_equal(envelope_peek(buf, n, s, rc), -EBADMSG);
	}
	assert_int_equal(open_free(&b, NULL, NOW, NULL, 0), -EBADMSG);

	big = calloc(1, ENVELOPE_MAX_SIZE + 1);
	memcpy(big, buf, len);
	assert_int_equal(open_free(&b, NULL, NOW, big, ENVELOPE_MAX_SIZE + 1), -EBADMSG);
	assert_int_equal(envelope_peek(big, ENVELOPE_MAX_SIZE + 1, s, rc), -EBADMSG);
	for (int i = 0; i < 2000; i++) {
		size_t n = 1 + randombytes_uniform(512);

		randombytes_buf(big, n);
		assert_int_equal(open_free(&b, NULL, NOW, big, n), -EBADMSG);
	}
	free(big);
	free(buf);
}

/* The construction in docs/signaling.md, written out with libsodium: seals plain from a to b. */
static void seal_by_hand(const struct envelope_key *a, const uint8_t b_pub[WG_KEY_LEN],
			 const uint8_t eph_priv[WG_KEY_LEN], const uint8_t *plain, size_t plen,
			 uint8_t **ret, size_t *ret_len)
{
	Wice__Signaling__Envelope e = WICE__SIGNALING__ENVELOPE__INIT;
	uint8_t eph_pub[32], dh1[32], dh2[32], k[32], nonce[24], ad[120], *ct;
	crypto_generichash_state st;

	crypto_scalarmult_base(eph_pub, eph_priv);
	assert_int_equal(crypto_scalarmult(dh1, eph_priv, b_pub), 0);
	assert_int_equal(crypto_scalarmult(dh2, a->private_key, b_pub), 0);
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8_t *)"wice-signaling-v1 envelope", 26);
	crypto_generichash_update(&st, dh1, 32);
	crypto_generichash_update(&st, dh2, 32);
	crypto_generichash_update(&st, a->public_key, 32);
	crypto_generichash_update(&st, b_pub, 32);
	crypto_generichash_update(&st, eph_pub, 32);
	crypto_generichash_final(&st, k, 32);
	randombytes_buf(nonce, sizeof(nonce));
	memcpy(ad, a->public_key, 32);
	memcpy(ad + 32, b_pub, 32);
	memcpy(ad + 64, eph_pub, 32);
	memcpy(ad + 96, nonce, 24);
	ct = malloc(plen + 16);
	crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, plain, plen, ad, sizeof(ad), NULL,
						   nonce, k);
	e.sender = (ProtobufCBinaryData){32, (uint8_t *)a->public_key};
	e.recipient = (ProtobufCBinaryData){32, (uint8_t *)b_pub};
	e.ephemeral = (ProtobufCBinaryData){32, eph_pub};
	e.nonce = (ProtobufCBinaryData){24, nonce};
	e.ciphertext = (ProtobufCBinaryData){plen + 16, ct};
	*ret_len = wice__signaling__envelope__get_packed_size(&e);
	*ret = malloc(*ret_len);
	wice__signaling__envelope__pack(&e, *ret);
	free(ct);
}

static void test_construction_as_documented(void **state)
{
	struct envelope_key a, b;
	struct full_msg f;
	Wice__Signaling__Candidate *many[ENVELOPE_MAX_CANDIDATES + 1];
	uint8_t eph[WG_KEY_LEN], *plain, *buf;
	size_t plen, len;

	key_make(&a);
	key_make(&b);
	randombytes_buf(eph, sizeof(eph));
	full_msg_init(&f, NOW);
	plen = wice__signaling__message__get_packed_size(&f.m);
	plain = malloc(plen);
	wice__signaling__message__pack(&f.m, plain);
	seal_by_hand(&a, b.public_key, eph, plain, plen, &buf, &len);
	assert_int_equal(open_free(&b, NULL, NOW, buf, len), 0);
	free(buf);
	free(plain);

	/* An authentic Message over the limits is still refused. */
	for (size_t i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = &f.c[0];
	f.m.candidates = many;
	f.m.n_candidates = ARRAY_SIZE(many);
	plen = wice__signaling__message__get_packed_size(&f.m);
	plain = malloc(plen);
	wice__signaling__message__pack(&f.m, plain);
	seal_by_hand(&a, b.public_key, eph, plain, plen, &buf, &len);
	assert_int_equal(open_free(&b, NULL, NOW, buf, len), -EBADMSG);
	free(buf);
	free(plain);

	/* Authentic bytes that are not a Message. */
	seal_by_hand(&a, b.public_key, eph, (const uint8_t *)"\xff\xff\xff", 3, &buf, &len);
	assert_int_equal(open_free(&b, NULL, NOW, buf, len), -EBADMSG);
	free(buf);
}

static void set_zero_ephemeral(Wice__Signaling__Envelope *e, void *arg)
{
	memset(e->ephemeral.data, 0, WG_KEY_LEN);
}

static void test_low_order_points(void **state)
{
	struct envelope_key a, b;
	uint8_t *buf, zero[WG_KEY_LEN] = {0};
	size_t len;

	key_make(&a);
	key_make(&b);
	seal_small(&a, &b, NOW, &buf, &len);
	rewrite(&buf, &len, set_zero_ephemeral, NULL);
	assert_int_equal(open_free(&b, NULL, NOW, buf, len), -EBADMSG);
	rewrite(&buf, &len, set_sender, zero);
	assert_int_equal(open_free(&b, NULL, NOW, buf, len), -EBADMSG);
	free(buf);
}

/* One sender beyond ENVELOPE_REPLAY_PER_SENDER: bounded, and what fell out is refused. */
static void test_replay_bounds_per_sender(void **state)
{
	const size_t n = ENVELOPE_REPLAY_PER_SENDER + 100;
	struct envelope_key a, b;
	struct envelope_replay *r = envelope_replay_new();
	uint8_t *buf, *first, *late;
	size_t len, first_len, late_len;

	key_make(&a);
	key_make(&b);
	/* ts = NOW - W/2 + i: all inside the window, so nothing expires to make room. */
	seal_small(&a, &b, NOW - W / 2, &first, &first_len);
	seal_small(&a, &b, NOW - W / 2 + 50, &late, &late_len); /* sealed, delivered at the end */
	assert_int_equal(open_free(&b, r, NOW, first, first_len), 0);
	for (size_t i = 1; i < n; i++) {
		seal_small(&a, &b, NOW - W / 2 + i, &buf, &len);
		assert_int_equal(open_free(&b, r, NOW, buf, len), 0);
		free(buf);
		assert_true(envelope_replay_count(r) <= ENVELOPE_REPLAY_PER_SENDER);
	}
	assert_int_equal(envelope_replay_count(r), ENVELOPE_REPLAY_PER_SENDER);
	/* The first 100 were evicted: their replays, and anything as old, cannot be told apart. */
	assert_int_equal(open_free(&b, r, NOW, first, first_len), -ESTALE);
	assert_int_equal(open_free(&b, r, NOW, late, late_len), -ESTALE);
	/* Newer ones still go through. */
	seal_small(&a, &b, NOW - W / 2 + n, &buf, &len);
	assert_int_equal(open_free(&b, r, NOW, buf, len), 0);
	assert_int_equal(open_free(&b, r, NOW, buf, len), -EALREADY);
	free(buf);
	/* Once the window has moved past them, expired entries make room instead. */
	seal_small(&a, &b, NOW + W / 2 + n + 1, &buf, &len);
	assert_int_equal(open_free(&b, r, NOW + W, buf, len), 0);
	assert_true(envelope_replay_count(r) < ENVELOPE_REPLAY_PER_SENDER);
	free(buf);
	free(first);
	free(late);
	envelope_replay_free(r);
}

/* More senders than ENVELOPE_REPLAY_SENDERS: the oldest is forgotten, its replays refused. */
static void test_replay_bounds_senders(void **state)
{
	const size_t n = ENVELOPE_REPLAY_SENDERS + 8;
	struct envelope_key b, s, first;
	struct envelope_replay *r = envelope_replay_new();
	uint8_t *buf, *first_buf, *old;
	size_t len, first_len, old_len;

	key_make(&b);
	key_make(&first);
	seal_small(&first, &b, NOW, &first_buf, &first_len);
	assert_int_equal(open_free(&b, r, NOW, first_buf, first_len), 0);
	for (size_t i = 1; i < n; i++) {
		key_make(&s);
		seal_small(&s, &b, NOW + i, &buf, &len);
		assert_int_equal(open_free(&b, r, NOW, buf, len), 0);
		free(buf);
	}
	assert_true(envelope_replay_count(r) <= ENVELOPE_REPLAY_SENDERS);
	assert_int_not_equal(open_free(&b, r, NOW, first_buf, first_len), 0);
	/* A new sender with an envelope older than what was forgotten: refused, fail safe. */
	key_make(&s);
	seal_small(&s, &b, NOW, &old, &old_len);
	assert_int_equal(open_free(&b, r, NOW, old, old_len), -ESTALE);
	seal_small(&s, &b, NOW + n, &buf, &len);
	assert_int_equal(open_free(&b, r, NOW, buf, len), 0);
	free(buf);
	/* The forgotten sender comes back: new envelopes pass, its old ones still do not. */
	seal_small(&first, &b, NOW + n, &buf, &len);
	assert_int_equal(open_free(&b, r, NOW, buf, len), 0);
	assert_int_equal(open_free(&b, r, NOW, first_buf, first_len), -ESTALE);
	free(buf);
	free(old);
	free(first_buf);
	envelope_replay_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_every_field),
		cmocka_unit_test(test_seal_limits),
		cmocka_unit_test(test_third_key),
		cmocka_unit_test(test_forged_sender),
		cmocka_unit_test(test_every_bit_flip),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_stale_and_future),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_construction_as_documented),
		cmocka_unit_test(test_low_order_points),
		cmocka_unit_test(test_replay_bounds_per_sender),
		cmocka_unit_test(test_replay_bounds_senders),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
