// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for envelope.c: decoding, opening and the replay cache. The first byte
 * picks what the rest is:
 *   bit 0 set:   bytes XORed into an envelope sealed properly from the fixed sender (bit 3
 *                picks a small or a full Message; bit 4 drops the last byte), so that mutations
 *                reach the AEAD and, when they leave it intact, the Message checks;
 *   bit 0 clear, bit 1 clear: an encoded Envelope, opened as is (and peeked);
 *   bit 0 clear, bit 1 set:   an encoded Message, sealed and opened again (without a replay
 *                cache), which must give back the same Message.
 * Bit 2 runs the other opens through a replay cache that lives as long as the process.
 * An envelope that opens must come from the fixed sender (nobody else can seal to the fixed
 * recipient here).
 *
 * clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -Ibuild tests/fuzz/fuzz_envelope.c \
 *	src/signal/envelope.c build/signaling.pb-c.c -lprotobuf-c -lsodium -o fuzz_envelope
 * ./fuzz_envelope tests/fuzz/corpus/envelope
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "signal/envelope.h"

#define FUZZ_NOW 1800000000000ull /* every seed and sealed envelope carries this timestamp */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct envelope_key sender, recipient;
static struct envelope_replay *replay;
static uint8_t *sealed[2];
static size_t sealed_len[2];

/* Deterministic keys, so that the seed generator makes envelopes this target can open. */
static void fuzz_key(struct envelope_key *k, const char *label)
{
	crypto_generichash(k->private_key, WG_KEY_LEN, (const uint8_t *)label, strlen(label), NULL,
			   0);
	k->private_key[0] &= 248;
	k->private_key[31] = (k->private_key[31] & 127) | 64;
	crypto_scalarmult_base(k->public_key, k->private_key);
}

/* A Message with every kind of field, for the seeds and the "full" sealed envelope. */
static void fuzz_full_message(Wice__Signaling__Message *m, Wice__Signaling__Credentials *cr,
			      Wice__Signaling__Candidate c[2], Wice__Signaling__Candidate *cp[2])
{
	static const Wice__Signaling__Message m0 = WICE__SIGNALING__MESSAGE__INIT;
	static const Wice__Signaling__Credentials cr0 = WICE__SIGNALING__CREDENTIALS__INIT;
	static const Wice__Signaling__Candidate c0 = WICE__SIGNALING__CANDIDATE__INIT;

	*m = m0;
	*cr = cr0;
	cr->ufrag = "Fz3k";
	cr->pwd = "asd88fgpdd777uzjYhagZg";
	c[0] = c0;
	c[0].foundation = "1";
	c[0].component = 1;
	c[0].transport = WICE__SIGNALING__CANDIDATE__TRANSPORT__UDP;
	c[0].priority = 2130706431;
	c[0].address = "192.0.2.10";
	c[0].port = 51820;
	c[0].type = WICE__SIGNALING__CANDIDATE__TYPE__HOST;
	c[1] = c0;
	c[1].foundation = "2";
	c[1].component = 1;
	c[1].transport = WICE__SIGNALING__CANDIDATE__TRANSPORT__TCP;
	c[1].tcp_type = WICE__SIGNALING__CANDIDATE__TCPTYPE__PASSIVE;
	c[1].priority = 1694498815;
	c[1].address = "203.0.113.5";
	c[1].port = 443;
	c[1].type = WICE__SIGNALING__CANDIDATE__TYPE__SERVER_REFLEXIVE;
	c[1].related_address = "192.0.2.10";
	c[1].related_port = 51820;
	cp[0] = &c[0];
	cp[1] = &c[1];
	m->timestamp_ms = FUZZ_NOW;
	m->session_id = 42;
	m->credentials = cr;
	m->candidates = cp;
	m->n_candidates = 2;
	m->end_of_candidates = 1;
}

static void init(void)
{
	Wice__Signaling__Message m = WICE__SIGNALING__MESSAGE__INIT, full;
	Wice__Signaling__Credentials cr;
	Wice__Signaling__Candidate c[2], *cp[2];

	if (sodium_init() < 0)
		abort();
	fuzz_key(&sender, "wice fuzz sender");
	fuzz_key(&recipient, "wice fuzz recipient");
	replay = envelope_replay_new();
	m.timestamp_ms = FUZZ_NOW;
	m.session_id = 1;
	fuzz_full_message(&full, &cr, c, cp);
	if (!replay ||
	    envelope_seal(&sender, recipient.public_key, &m, &sealed[0], &sealed_len[0]) ||
	    envelope_seal(&sender, recipient.public_key, &full, &sealed[1], &sealed_len[1]))
		abort();
}

static void try_open(const uint8_t *buf, size_t len, bool with_replay)
{
	Wice__Signaling__Message *m = NULL;
	uint8_t s[WG_KEY_LEN], r[WG_KEY_LEN];

	if (envelope_open(&recipient, with_replay ? replay : NULL, FUZZ_NOW, buf, len, s, &m) ==
	    0) {
		if (memcmp(s, sender.public_key, WG_KEY_LEN))
			abort();
		wice__signaling__message__free_unpacked(m, NULL);
	}
	if (envelope_peek(buf, len, s, r) == 0 && len > ENVELOPE_MAX_SIZE)
		abort();
}

static void xor_sealed(const uint8_t *data, size_t size, uint8_t mode)
{
	const uint8_t *base = sealed[(mode >> 3) & 1];
	size_t base_len = sealed_len[(mode >> 3) & 1];
	size_t len = size > base_len ? size : base_len;
	uint8_t *buf = malloc(len);

	if (!buf)
		return;
	memcpy(buf, base, base_len);
	if (size > base_len)
		memcpy(buf + base_len, data + base_len, size - base_len);
	for (size_t i = 0; i < size && i < base_len; i++)
		buf[i] ^= data[i];
	if (mode & 16)
		len--;
	try_open(buf, len, mode & 4);
	free(buf);
}

/* Whatever decodes as a Message and may be sealed must come back unchanged. */
static void seal_message(const uint8_t *data, size_t size)
{
	Wice__Signaling__Message *in = wice__signaling__message__unpack(NULL, size, data), *out;
	uint8_t *buf, *p1, *p2, s[WG_KEY_LEN];
	size_t len, l1, l2;

	if (!in)
		return;
	in->timestamp_ms = FUZZ_NOW;
	if (envelope_seal(&sender, recipient.public_key, in, &buf, &len)) {
		wice__signaling__message__free_unpacked(in, NULL);
		return;
	}
	if (envelope_open(&recipient, NULL, FUZZ_NOW, buf, len, s, &out))
		abort();
	l1 = wice__signaling__message__get_packed_size(in);
	l2 = wice__signaling__message__get_packed_size(out);
	p1 = malloc(l1 + 1);
	p2 = malloc(l2 + 1);
	if (!p1 || !p2)
		abort();
	wice__signaling__message__pack(in, p1);
	wice__signaling__message__pack(out, p2);
	if (l1 != l2 || memcmp(p1, p2, l1))
		abort();
	free(p1);
	free(p2);
	free(buf);
	wice__signaling__message__free_unpacked(out, NULL);
	wice__signaling__message__free_unpacked(in, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mode;

	if (!replay)
		init();
	if (!size)
		return 0;
	mode = data[0];
	data++;
	size--;
	if (mode & 1)
		xor_sealed(data, size, mode);
	else if (mode & 2)
		seal_message(data, size);
	else
		try_open(data, size, mode & 4);
	return 0;
}
