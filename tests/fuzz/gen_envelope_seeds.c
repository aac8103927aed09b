// SPDX-License-Identifier: MIT
/*
 * Writes the seed corpus of fuzz_envelope.c into DIR: envelopes sealed with the target's own
 * fixed keys (so they open), the same as XOR-mode inputs, and encoded Messages. Run once:
 *
 * cc -Isrc -Ibuild tests/fuzz/gen_envelope_seeds.c src/signal/envelope.c \
 *	build/signaling.pb-c.c -lprotobuf-c -lsodium -o /tmp/gen && /tmp/gen
 *tests/fuzz/corpus/envelope
 */
#include <stdio.h>

#include "fuzz_envelope.c"

static int write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *buf,
		      size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fputc(mode, f) == EOF || fwrite(buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	Wice__Signaling__Message full, small = WICE__SIGNALING__MESSAGE__INIT;
	Wice__Signaling__Credentials cr;
	Wice__Signaling__Candidate c[2], *cp[2];
	uint8_t *env, *msg, zeros[8] = {0};
	size_t len, mlen;
	int r = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	init();
	fuzz_full_message(&full, &cr, c, cp);
	small.timestamp_ms = FUZZ_NOW;
	small.end_of_candidates = 1;

	if (envelope_seal(&sender, recipient.public_key, &full, &env, &len))
		return 1;
	r |= write_seed(argv[1], "open_full", 0, env, len);
	r |= write_seed(argv[1], "open_full_replay", 4, env, len);
	free(env);
	if (envelope_seal(&sender, recipient.public_key, &small, &env, &len))
		return 1;
	r |= write_seed(argv[1], "open_small", 0, env, len);
	free(env);
	/* Not addressed to the recipient: the target's sender sealing to itself. */
	if (envelope_seal(&sender, sender.public_key, &small, &env, &len))
		return 1;
	r |= write_seed(argv[1], "open_other_recipient", 0, env, len);
	free(env);
	r |= write_seed(argv[1], "xor_small", 1, zeros, sizeof(zeros));
	r |= write_seed(argv[1], "xor_full", 1 | 8, zeros, sizeof(zeros));

	mlen = wice__signaling__message__get_packed_size(&full);
	msg = malloc(mlen);
	if (!msg)
		return 1;
	wice__signaling__message__pack(&full, msg);
	r |= write_seed(argv[1], "message_full", 2, msg, mlen);
	free(msg);
	return r ? 1 : 0;
}
