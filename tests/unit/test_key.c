// SPDX-License-Identifier: MIT
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "util/key.h"

#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void from_hex_or_fail(uint8_t key[WG_KEY_LEN], const char *hex)
{
	assert_int_equal(key_from_hex(key, hex), 0);
}

/* Base64 encodings computed independently (Python's base64 module). */
static const struct {
	const char *hex;
	const char *b64;
} known[] = {
	{"0000000000000000000000000000000000000000000000000000000000000000",
	 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
	{"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	 "//////////////////////////////////////////8="},
	{"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
	{"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
	 "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="},
	{"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
	 "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="},
};

static void test_base64_known(void **state)
{
	char out[WG_KEY_B64_LEN + 1];
	uint8_t key[WG_KEY_LEN], back[WG_KEY_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
		from_hex_or_fail(key, known[i].hex);
		key_to_base64(out, key);
		assert_string_equal(out, known[i].b64);
		assert_int_equal(key_from_base64(back, known[i].b64), 0);
		assert_memory_equal(back, key, WG_KEY_LEN);
	}
}

static void test_base64_round_trip(void **state)
{
	char out[WG_KEY_B64_LEN + 1];
	uint8_t key[WG_KEY_LEN], back[WG_KEY_LEN];

	for (int i = 0; i < 1000; i++) {
		assert_int_equal(key_generate_preshared(key), 0);
		key_to_base64(out, key);
		assert_int_equal(strlen(out), WG_KEY_B64_LEN);
		assert_int_equal(out[WG_KEY_B64_LEN - 1], '=');
		assert_int_equal(key_from_base64(back, out), 0);
		assert_memory_equal(back, key, WG_KEY_LEN);
	}
}

static void test_base64_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"=",
		/* 43 and 45 characters */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=A",
		/* no padding, double padding, padding in the middle */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
		"AAAAAAAAAAAAAAAAAAAA=AAAAAAAAAAAAAAAAAAAAAA=",
		/* URL-safe alphabet, whitespace, non-ASCII */
		"-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA A=",
		" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\xc3\xa9=",
		/* non-canonical: the last character carries bits past the 256th */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAD=",
		"//////////////////////////////////////////9=",
		"///////////////////////////////////////////=",
	};
	uint8_t key[WG_KEY_LEN], before[WG_KEY_LEN];

	memset(key, 0xa5, sizeof(key));
	memcpy(before, key, sizeof(key));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (key_from_base64(key, bad[i]) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_memory_equal(key, before, WG_KEY_LEN);
	}
}

/* Every byte value in every kind of position against a plain reference classification. */
static void test_base64_every_character(void **state)
{
	char s[WG_KEY_B64_LEN + 1];
	uint8_t key[WG_KEY_LEN];

	for (int c = 1; c < 256; c++) {
		const char *p = strchr(b64_alphabet, c);
		int value = p ? (int)(p - b64_alphabet) : -1;

		/* A full-group position: any alphabet character is fine. */
		memcpy(s, known[0].b64, sizeof(s));
		s[4] = (char)c;
		assert_int_equal(key_from_base64(key, s), value >= 0 ? 0 : -EINVAL);
		if (value >= 0)
			assert_int_equal(key[3], (uint8_t)(value << 2));

		/* The last data character: only values whose low two bits are zero. */
		memcpy(s, known[0].b64, sizeof(s));
		s[42] = (char)c;
		assert_int_equal(key_from_base64(key, s),
				 value >= 0 && (value & 3) == 0 ? 0 : -EINVAL);
		if (value >= 0 && (value & 3) == 0)
			assert_int_equal(key[31], (value >> 2) & 0xf);

		/* The padding position accepts only '='. */
		memcpy(s, known[0].b64, sizeof(s));
		s[43] = (char)c;
		assert_int_equal(key_from_base64(key, s), c == '=' ? 0 : -EINVAL);
	}
}

static void test_hex(void **state)
{
	static const char lower[] =
		"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
	static const char upper[] =
		"77076D0A7318A57D3C16C17251B26645DF4C2F87EBC0992AB177FBA51DB92C2A";
	static const char mixed[] =
		"77076d0A7318a57D3c16C17251b26645Df4c2F87ebc0992AB177fba51DB92c2a";
	char out[2 * WG_KEY_LEN + 1];
	uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN], c[WG_KEY_LEN];

	assert_int_equal(key_from_hex(a, lower), 0);
	assert_int_equal(key_from_hex(b, upper), 0);
	assert_int_equal(key_from_hex(c, mixed), 0);
	assert_memory_equal(a, b, WG_KEY_LEN);
	assert_memory_equal(a, c, WG_KEY_LEN);
	assert_int_equal(a[0], 0x77);
	assert_int_equal(a[31], 0x2a);
	key_to_hex(out, b);
	assert_string_equal(out, lower);

	for (int i = 0; i < WG_KEY_LEN; i++)
		a[i] = (uint8_t)(i * 0x11 + 0x0f);
	key_to_hex(out, a);
	assert_int_equal(strlen(out), 2 * WG_KEY_LEN);
	assert_int_equal(key_from_hex(b, out), 0);
	assert_memory_equal(a, b, WG_KEY_LEN);
}

static void test_hex_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2",
		"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a0",
		"g7076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2G",
		" 7076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		"0x076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
	};
	char s[2 * WG_KEY_LEN + 1];
	uint8_t key[WG_KEY_LEN], before[WG_KEY_LEN];

	memset(key, 0x5a, sizeof(key));
	memcpy(before, key, sizeof(key));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (key_from_hex(key, bad[i]) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_memory_equal(key, before, WG_KEY_LEN);
	}
	/* Every byte value in the low and the high nibble position. */
	for (int c = 1; c < 256; c++) {
		int ok = strchr("0123456789abcdefABCDEF", c) != NULL;

		memset(s, '0', 2 * WG_KEY_LEN);
		s[2 * WG_KEY_LEN] = '\0';
		s[10] = (char)c;
		assert_int_equal(key_from_hex(key, s), ok ? 0 : -EINVAL);
		memset(s, '0', 2 * WG_KEY_LEN);
		s[63] = (char)c;
		assert_int_equal(key_from_hex(key, s), ok ? 0 : -EINVAL);
	}
}

static void test_zero_and_equal(void **state)
{
	uint8_t a[WG_KEY_LEN] = {0}, b[WG_KEY_LEN] = {0};

	assert_true(key_is_zero(a));
	assert_true(key_equal(a, b));
	/* A single bit anywhere makes a key non-zero and unequal. */
	for (int i = 0; i < WG_KEY_LEN * 8; i++) {
		memset(b, 0, sizeof(b));
		b[i / 8] = (uint8_t)(1 << (i % 8));
		assert_false(key_is_zero(b));
		assert_false(key_equal(a, b));
		assert_false(key_equal(b, a));
		memcpy(a, b, sizeof(a));
		assert_true(key_equal(a, b));
		memset(a, 0, sizeof(a));
	}
}

static void test_clamp(void **state)
{
	uint8_t key[WG_KEY_LEN];

	memset(key, 0xff, sizeof(key));
	key_clamp(key);
	assert_int_equal(key[0], 0xf8);
	assert_int_equal(key[31], 0x7f);
	for (int i = 1; i < 31; i++)
		assert_int_equal(key[i], 0xff);
	memset(key, 0, sizeof(key));
	key_clamp(key);
	assert_int_equal(key[0], 0);
	assert_int_equal(key[31], 0x40);
}

static void test_generate(void **state)
{
	uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN], c[WG_KEY_LEN];

	for (int i = 0; i < 64; i++) {
		assert_int_equal(key_generate_private(a), 0);
		assert_int_equal(a[0] & 7, 0);
		assert_int_equal(a[31] & 0xc0, 0x40);
	}
	assert_int_equal(key_generate_private(b), 0);
	assert_false(key_equal(a, b));
	assert_int_equal(key_generate_preshared(a), 0);
	assert_int_equal(key_generate_preshared(b), 0);
	assert_false(key_equal(a, b));
	assert_false(key_is_zero(a));

	/* A generated key's public key is well defined and not the private key itself. */
	assert_int_equal(key_generate_private(a), 0);
	assert_int_equal(key_public_from_private(b, a), 0);
	assert_int_equal(key_public_from_private(c, a), 0);
	assert_memory_equal(b, c, WG_KEY_LEN);
	assert_false(key_equal(a, b));
}

/* RFC 7748, section 6.1: Alice's and Bob's key pairs. */
static void test_public_key_rfc7748(void **state)
{
	static const struct {
		const char *priv, *pub;
	} vectors[] = {
		{"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		 "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"},
		{"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
		 "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"},
	};
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN], want[WG_KEY_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
		from_hex_or_fail(priv, vectors[i].priv);
		from_hex_or_fail(want, vectors[i].pub);
		assert_int_equal(key_public_from_private(pub, priv), 0);
		assert_memory_equal(pub, want, WG_KEY_LEN);
		/* Clamping first changes nothing: X25519 clamps the scalar itself. */
		key_clamp(priv);
		assert_int_equal(key_public_from_private(pub, priv), 0);
		assert_memory_equal(pub, want, WG_KEY_LEN);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_known),
		cmocka_unit_test(test_base64_round_trip),
		cmocka_unit_test(test_base64_rejects),
		cmocka_unit_test(test_base64_every_character),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_hex_rejects),
		cmocka_unit_test(test_zero_and_equal),
		cmocka_unit_test(test_clamp),
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_public_key_rfc7748),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
