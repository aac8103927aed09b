/* SPDX-License-Identifier: MIT */
/* genkey, genpsk, pubkey: byte-for-byte what wg(8) prints and reads. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "cli/cli.h"
#include "util/key.h"
#include "wg/crypto.h"

static int print_key(const uint8_t key[static WG_KEY_LEN])
{
	char b64[WG_KEY_B64_LEN + 1];

	key_to_base64(b64, key);
	puts(b64);
	wgcrypto_wipe(b64, sizeof(b64));
	return fflush(stdout) ? 1 : 0;
}

static void warn_if_readable(void)
{
	struct stat st;

	/* Like wg(8): a secret written to a file others can read deserves a warning. */
	if (!fstat(fileno(stdout), &st) && S_ISREG(st.st_mode) && (st.st_mode & 0077))
		fprintf(stderr, "Warning: writing to world accessible file.\n"
				"Consider setting the umask to 077 and trying again.\n");
}

static int generate(int argc, char **argv, const char *usage, bool clamp)
{
	uint8_t key[WG_KEY_LEN];
	int r;

	if (cli_wants_help(argc, argv, usage))
		return 0;
	if (argc > 1) {
		fputs(usage, stderr);
		return 1;
	}
	if (wgcrypto_init() || (clamp ? key_generate_private(key) : key_generate_preshared(key))) {
		fprintf(stderr, "wice: cannot generate a key\n");
		return 1;
	}
	warn_if_readable();
	r = print_key(key);
	wgcrypto_wipe(key, sizeof(key));
	return r;
}

int cmd_genkey(int argc, char **argv)
{
	return generate(argc, argv,
			"Usage: wice genkey\n\nPrints a new Curve25519 private key, base64.\n",
			true);
}

int cmd_genpsk(int argc, char **argv)
{
	return generate(argc, argv,
			"Usage: wice genpsk\n\nPrints a new random pre-shared key, base64.\n",
			false);
}

int cmd_pubkey(int argc, char **argv)
{
	static const char usage[] = "Usage: wice pubkey < private.key\n\n"
				    "Reads a base64 private key on stdin, prints its public key.\n";
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	char in[WG_KEY_B64_LEN + 2];
	size_t n = 0;
	int c, r = 1;

	if (cli_wants_help(argc, argv, usage))
		return 0;
	if (argc > 1) {
		fputs(usage, stderr);
		return 1;
	}
	/* Exactly like wg pubkey: the key, optionally surrounded by whitespace. */
	while ((c = getchar()) != EOF && isspace(c))
		;
	while (c != EOF && !isspace(c) && n < sizeof(in) - 1) {
		in[n++] = (char)c;
		c = getchar();
	}
	in[n] = '\0';
	while (c != EOF && isspace(c))
		c = getchar();
	if (c == EOF && n == WG_KEY_B64_LEN && !wgcrypto_init() && !key_from_base64(priv, in) &&
	    !key_public_from_private(pub, priv))
		r = print_key(pub);
	else
		fprintf(stderr, "wice: Key is not the correct length or format\n");
	wgcrypto_wipe(priv, sizeof(priv));
	wgcrypto_wipe(in, sizeof(in));
	return r;
}
