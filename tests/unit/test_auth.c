// SPDX-License-Identifier: MIT
/*
 * Subscription proofs: a good proof is accepted exactly once, even when raced from several
 * threads; wrong client or server keys, expired, foreign and tampered nonces are refused; the
 * set of used nonces is bounded and frees itself as they expire.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>
#include "signal/auth.h"
#include "util/key.h"

#define NOW  1800000000000ull
#define LIFE AUTH_NONCE_LIFETIME_MS

static void key_make(struct envelope_key *k)
{
	assert_int_equal(key_generate_private(k->private_key), 0);
	assert_int_equal(key_public_from_private(k->public_key, k->private_key), 0);
}

struct fixture {
	struct auth_server *a;
	uint8_t server_pub[WG_KEY_LEN];
	struct envelope_key client;
	uint8_t nonce[AUTH_NONCE_LEN], proof[AUTH_PROOF_LEN];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->a = auth_server_new();
	assert_non_null(f->a);
	auth_server_public_key(f->a, f->server_pub);
	key_make(&f->client);
	auth_challenge(f->a, f->client.public_key, NOW, f->nonce);
	assert_int_equal(auth_prove(&f->client, f->server_pub, f->nonce, f->proof), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	auth_server_free(f->a);
	free(f);
	return 0;
}

static int verify(struct fixture *f, const uint8_t *pub, uint64_t now, const uint8_t *nonce,
		  const uint8_t *proof)
{
	return auth_verify(f->a, pub, now, nonce, AUTH_NONCE_LEN, proof, AUTH_PROOF_LEN);
}

static void test_good_proof_once(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(verify(f, f->client.public_key, NOW + 10, f->nonce, f->proof), 0);
	assert_int_equal(verify(f, f->client.public_key, NOW + 20, f->nonce, f->proof), -EACCES);
	/* A second challenge for the same key works. */
	auth_challenge(f->a, f->client.public_key, NOW + 30, f->nonce);
	assert_int_equal(auth_prove(&f->client, f->server_pub, f->nonce, f->proof), 0);
	assert_int_equal(verify(f, f->client.public_key, NOW + 40, f->nonce, f->proof), 0);
}

static void test_wrong_client_key(void **state)
{
	struct fixture *f = *state;
	struct envelope_key other;
	uint8_t proof[AUTH_PROOF_LEN];

	/* Someone without client's private key proves with their own for client's public key. */
	key_make(&other);
	memcpy(other.public_key, f->client.public_key, WG_KEY_LEN);
	assert_int_equal(auth_prove(&other, f->server_pub, f->nonce, proof), 0);
	assert_int_equal(verify(f, f->client.public_key, NOW, f->nonce, proof), -EACCES);
	/* A failed attempt does not use the nonce up. */
	assert_int_equal(verify(f, f->client.public_key, NOW, f->nonce, f->proof), 0);
}

static void test_wrong_server_key(void **state)
{
	struct fixture *f = *state;
	struct auth_server *other = auth_server_new();
	uint8_t other_pub[WG_KEY_LEN], proof[AUTH_PROOF_LEN], zero[WG_KEY_LEN] = {0};

	auth_server_public_key(other, other_pub);
	assert_int_equal(auth_prove(&f->client, other_pub, f->nonce, proof), 0);
	assert_int_equal(verify(f, f->client.public_key, NOW, f->nonce, proof), -EACCES);
	/* Nor does the other server accept a proof (or a nonce) made for this one. */
	assert_int_equal(auth_verify(other, f->client.public_key, NOW, f->nonce, AUTH_NONCE_LEN,
				     f->proof, AUTH_PROOF_LEN),
			 -EACCES);
	assert_int_equal(auth_prove(&f->client, zero, f->nonce, proof), -EINVAL);
	auth_server_free(other);
}

static void test_expiry(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(verify(f, f->client.public_key, NOW + LIFE + 1, f->nonce, f->proof),
			 -EACCES);
	/* Issued in our future (the clock went back): refused too. */
	assert_int_equal(verify(f, f->client.public_key, NOW - 1, f->nonce, f->proof), -EACCES);
	/* The last moment of its lifetime is still good. */
	assert_int_equal(verify(f, f->client.public_key, NOW + LIFE, f->nonce, f->proof), 0);
}

static void test_nonce_of_another_key(void **state)
{
	struct fixture *f = *state;
	struct envelope_key other;
	uint8_t proof[AUTH_PROOF_LEN];

	key_make(&other);
	assert_int_equal(auth_prove(&other, f->server_pub, f->nonce, proof), 0);
	assert_int_equal(verify(f, other.public_key, NOW, f->nonce, proof), -EACCES);
}

static void test_tampered(void **state)
{
	struct fixture *f = *state;
	uint8_t nonce[AUTH_NONCE_LEN], proof[AUTH_PROOF_LEN];

	for (size_t bit = 0; bit < AUTH_NONCE_LEN * 8; bit++) {
		memcpy(nonce, f->nonce, sizeof(nonce));
		nonce[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		/* Even with a proof computed correctly over the tampered nonce. */
		assert_int_equal(auth_prove(&f->client, f->server_pub, nonce, proof), 0);
		assert_int_equal(verify(f, f->client.public_key, NOW + 1, nonce, proof), -EACCES);
		assert_int_equal(verify(f, f->client.public_key, NOW + 1, nonce, f->proof),
				 -EACCES);
	}
	for (size_t bit = 0; bit < AUTH_PROOF_LEN * 8; bit++) {
		memcpy(proof, f->proof, sizeof(proof));
		proof[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(verify(f, f->client.public_key, NOW + 1, f->nonce, proof),
				 -EACCES);
	}
	assert_int_equal(auth_verify(f->a, f->client.public_key, NOW, f->nonce, AUTH_NONCE_LEN - 1,
				     f->proof, AUTH_PROOF_LEN),
			 -EACCES);
	assert_int_equal(auth_verify(f->a, f->client.public_key, NOW, f->nonce, AUTH_NONCE_LEN,
				     f->proof, AUTH_PROOF_LEN + 1),
			 -EACCES);
	assert_int_equal(auth_verify(f->a, f->client.public_key, NOW, NULL, 0, NULL, 0), -EACCES);
	assert_int_equal(verify(f, f->client.public_key, NOW + 1, f->nonce, f->proof), 0);
}

struct race {
	struct fixture *f;
	pthread_barrier_t *go;
	int result;
};

static void *race_verify(void *arg)
{
	struct race *r = arg;

	pthread_barrier_wait(r->go);
	r->result = verify(r->f, r->f->client.public_key, NOW + 1, r->f->nonce, r->f->proof);
	return NULL;
}

static void test_concurrent_use_once(void **state)
{
	struct fixture *f = *state;
	pthread_barrier_t go;
	pthread_t t[8];
	struct race r[8];
	int ok = 0;

	pthread_barrier_init(&go, NULL, 8);
	for (int i = 0; i < 8; i++) {
		r[i] = (struct race){.f = f, .go = &go};
		assert_int_equal(pthread_create(&t[i], NULL, race_verify, &r[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		if (r[i].result == 0)
			ok++;
		else
			assert_int_equal(r[i].result, -EACCES);
	}
	assert_int_equal(ok, 1);
	pthread_barrier_destroy(&go);
}

/* AUTH_MAX_USED_NONCES in use: the next proof waits (-EBUSY) until old ones expire. */
static void test_used_nonces_bounded(void **state)
{
	struct fixture *f = *state;
	uint64_t t0 = (NOW / LIFE + 1) * LIFE; /* the start of an epoch */
	uint8_t nonce[AUTH_NONCE_LEN], proof[AUTH_PROOF_LEN];

	for (unsigned int i = 0; i < AUTH_MAX_USED_NONCES; i++) {
		uint64_t now = t0 + (uint64_t)i * (LIFE / 2) / AUTH_MAX_USED_NONCES;

		auth_challenge(f->a, f->client.public_key, now, nonce);
		assert_int_equal(auth_prove(&f->client, f->server_pub, nonce, proof), 0);
		if (verify(f, f->client.public_key, now, nonce, proof))
			fail_msg("proof %u refused", i);
	}
	auth_challenge(f->a, f->client.public_key, t0 + LIFE / 2, nonce);
	assert_int_equal(auth_prove(&f->client, f->server_pub, nonce, proof), 0);
	assert_int_equal(verify(f, f->client.public_key, t0 + LIFE / 2, nonce, proof), -EBUSY);
	/* Used nonces are kept for one to two lifetimes: still busy a lifetime later. */
	assert_int_equal(verify(f, f->client.public_key, t0 + LIFE, nonce, proof), -EBUSY);
	/* Two epochs on, both sets are gone and a fresh proof goes through once. */
	auth_challenge(f->a, f->client.public_key, t0 + 2 * LIFE, nonce);
	assert_int_equal(auth_prove(&f->client, f->server_pub, nonce, proof), 0);
	assert_int_equal(verify(f, f->client.public_key, t0 + 2 * LIFE, nonce, proof), 0);
	assert_int_equal(verify(f, f->client.public_key, t0 + 2 * LIFE, nonce, proof), -EACCES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_proof_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_client_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_server_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_of_another_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_use_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_used_nonces_bounded, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
