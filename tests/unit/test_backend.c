// SPDX-License-Identifier: MIT
/*
 * Backends: the inprocess: bus delivers to the recipient only, in both directions, refuses
 * forged senders and garbage like the server does, and may be published to from a receive
 * callback; URLs dispatch by scheme; the multiplexer delivers an envelope that arrives through
 * two buses once; closing a backend while others publish to it never lets a callback run late.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <sodium.h>
#include "signal/backend.h"
#include "util/key.h"

struct client {
	struct envelope_key key;
	struct signal_backend *b;
	struct signal_mux *mux;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int received, states;
	uint8_t last[1024];
	size_t last_len;
	struct client *reply_to; /* when set, answer every envelope from the callback */
	atomic_int inside;	 /* a callback is running */
};

static void client_receive(void *ctx, const uint8_t *env, size_t len)
{
	struct client *c = ctx;
	bool reply;

	atomic_fetch_add(&c->inside, 1);
	pthread_mutex_lock(&c->lock);
	c->received++;
	c->last_len = len < sizeof(c->last) ? len : sizeof(c->last);
	memcpy(c->last, env, c->last_len);
	reply = c->reply_to && c->received == 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (reply) {
		Wice__Signaling__Message m = WICE__SIGNALING__MESSAGE__INIT;
		uint8_t *buf;
		size_t blen;

		assert_int_equal(
			envelope_seal(&c->key, c->reply_to->key.public_key, &m, &buf, &blen), 0);
		assert_int_equal(signal_backend_publish(c->b, buf, blen), 0);
		free(buf);
	}
	atomic_fetch_sub(&c->inside, 1);
}

static void client_state(void *ctx, struct signal_backend *b, bool connected)
{
	struct client *c = ctx;

	pthread_mutex_lock(&c->lock);
	c->states += connected;
	pthread_mutex_unlock(&c->lock);
}

static struct client *client_new(void)
{
	struct client *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	assert_int_equal(key_generate_private(c->key.private_key), 0);
	assert_int_equal(key_public_from_private(c->key.public_key, c->key.private_key), 0);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	return c;
}

static struct signal_backend_config client_cfg(struct client *c)
{
	return (struct signal_backend_config){
		.key = &c->key,
		.on_receive = client_receive,
		.on_state = client_state,
		.ctx = c,
	};
}

static struct client *client_open(const char *url)
{
	struct client *c = client_new();
	struct signal_backend_config cfg = client_cfg(c);

	assert_int_equal(signal_backend_open(url, &cfg, &c->b), 0);
	assert_string_equal(c->b->url, url);
	assert_int_equal(c->states, 1);
	return c;
}

static void client_free(struct client *c)
{
	signal_backend_close(c->b);
	signal_mux_free(c->mux);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

static unsigned int received(struct client *c)
{
	unsigned int n;

	pthread_mutex_lock(&c->lock);
	n = c->received;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* Waits until c has received at least n, for at most 5 s. */
static bool wait_received(struct client *c, unsigned int n)
{
	struct timespec deadline;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	pthread_mutex_lock(&c->lock);
	while (c->received < n && ok)
		ok = pthread_cond_timedwait(&c->cond, &c->lock, &deadline) == 0;
	ok = c->received >= n;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

static void seal(struct client *from, struct client *to, uint64_t session, uint8_t **buf,
		 size_t *len)
{
	Wice__Signaling__Message m = WICE__SIGNALING__MESSAGE__INIT;

	m.session_id = session;
	assert_int_equal(envelope_seal(&from->key, to->key.public_key, &m, buf, len), 0);
}

/* c's last envelope opens as one from `from` with the given session. */
static void assert_last_from(struct client *c, struct client *from, uint64_t session)
{
	Wice__Signaling__Message *m;
	uint8_t sender[WG_KEY_LEN];

	assert_int_equal(envelope_open(&c->key, NULL, 0, c->last, c->last_len, sender, &m), 0);
	assert_memory_equal(sender, from->key.public_key, WG_KEY_LEN);
	assert_int_equal(m->session_id, session);
	wice__signaling__message__free_unpacked(m, NULL);
}

static void test_inprocess_exchange(void **state)
{
	struct client *a = client_open("inprocess:exchange");
	struct client *b = client_open("inprocess:exchange");
	struct client *c = client_open("inprocess:exchange");
	uint8_t *buf;
	size_t len;

	seal(a, b, 1, &buf, &len);
	assert_int_equal(signal_backend_publish(a->b, buf, len), 0);
	assert_int_equal(received(b), 1);
	assert_last_from(b, a, 1);
	/* The third client on the bus cannot pass a's envelope off as its own, nor garbage. */
	assert_int_equal(signal_backend_publish(c->b, buf, len), -EPERM);
	assert_int_equal(signal_backend_publish(c->b, (const uint8_t *)"junk", 4), -EBADMSG);
	free(buf);

	seal(b, a, 2, &buf, &len);
	assert_int_equal(signal_backend_publish(b->b, buf, len), 0);
	assert_int_equal(received(a), 1);
	assert_last_from(a, b, 2);
	free(buf);

	/* Nothing reached the third client, nor came back to a publisher. */
	assert_int_equal(received(c), 0);
	assert_int_equal(received(a), 1);
	assert_int_equal(received(b), 1);

	/* A recipient nobody holds: accepted and dropped, as a server would. */
	client_free(c);
	seal(a, c = client_new(), 3, &buf, &len);
	assert_int_equal(signal_backend_publish(a->b, buf, len), 0);
	free(buf);
	client_free(c);
	client_free(a);
	client_free(b);
}

static void test_reply_from_callback(void **state)
{
	struct client *a = client_open("inprocess:reply");
	struct client *b = client_open("inprocess:reply");
	uint8_t *buf;
	size_t len;

	b->reply_to = a;
	seal(a, b, 1, &buf, &len);
	assert_int_equal(signal_backend_publish(a->b, buf, len), 0);
	free(buf);
	assert_int_equal(received(b), 1);
	assert_int_equal(received(a), 1);
	assert_last_from(a, b, 0);
	client_free(a);
	client_free(b);
}

static void test_buses_are_separate(void **state)
{
	struct client *a = client_open("inprocess:one");
	struct client *b = client_open("inprocess:two");
	uint8_t *buf;
	size_t len;

	seal(a, b, 1, &buf, &len);
	assert_int_equal(signal_backend_publish(a->b, buf, len), 0);
	assert_int_equal(received(b), 0);
	free(buf);
	client_free(a);
	client_free(b);
}

static void test_urls(void **state)
{
	static const struct {
		const char *url;
		int want;
	} cases[] = {
		{"nope:x", -EPROTONOSUPPORT},
		{"inproc:x", -EPROTONOSUPPORT},
		{"inprocessx:x", -EPROTONOSUPPORT},
		{":x", -EPROTONOSUPPORT},
		{"inprocess", -EINVAL},
		{"inprocess:", -EINVAL},
		{"", -EINVAL},
	};
	struct client *c = client_new();
	struct signal_backend_config cfg = client_cfg(c);
	struct signal_backend *b = NULL;
	char long_name[SIGNAL_INPROCESS_NAME_MAX + 20] = "inprocess:";

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(signal_backend_open(cases[i].url, &cfg, &b), cases[i].want);
	memset(long_name + 10, 'n', SIGNAL_INPROCESS_NAME_MAX + 1);
	assert_int_equal(signal_backend_open(long_name, &cfg, &b), -EINVAL);
	long_name[10 + SIGNAL_INPROCESS_NAME_MAX] = '\0';
	assert_int_equal(signal_backend_open(long_name, &cfg, &b), 0);
	signal_backend_close(b);
	cfg.key = NULL;
	assert_int_equal(signal_backend_open("inprocess:x", &cfg, &b), -EINVAL);
	signal_backend_close(NULL);
	client_free(c);
}

static void mux_open(struct client *c, const char *const *urls, size_t n)
{
	struct signal_backend_config cfg = client_cfg(c);

	c->mux = signal_mux_new(&cfg);
	assert_non_null(c->mux);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(signal_mux_add(c->mux, urls[i]), 0);
}

static void test_mux_drops_duplicates(void **state)
{
	static const char *const urls[] = {"inprocess:mux1", "inprocess:mux2"};
	struct client *a = client_new(), *b = client_new(), *lonely = client_new();
	uint8_t *buf;
	size_t len;

	mux_open(a, urls, 2);
	mux_open(b, urls, 2);
	assert_int_equal(b->states, 2);
	seal(a, b, 1, &buf, &len);
	assert_int_equal(signal_mux_publish(a->mux, buf, len), 0);
	assert_int_equal(received(b), 1); /* through both buses, delivered once */
	assert_last_from(b, a, 1);
	assert_int_equal(signal_mux_publish(a->mux, buf, len), 0);
	assert_int_equal(received(b), 1);
	free(buf);
	seal(a, b, 2, &buf, &len);
	assert_int_equal(signal_mux_publish(a->mux, buf, len), 0);
	assert_int_equal(received(b), 2);
	free(buf);
	seal(b, a, 3, &buf, &len);
	assert_int_equal(signal_mux_publish(b->mux, buf, len), 0);
	assert_int_equal(received(a), 1);
	assert_last_from(a, b, 3);
	/* One backend refusing does not fail the publish; all refusing does. */
	assert_int_equal(signal_mux_publish(a->mux, buf, len), -EPERM);

	mux_open(lonely, NULL, 0);
	assert_int_equal(signal_mux_publish(lonely->mux, buf, len), -ENOTCONN);
	for (int i = 0; i < SIGNAL_MUX_MAX_BACKENDS; i++)
		assert_int_equal(signal_mux_add(lonely->mux, "inprocess:many"), 0);
	assert_int_equal(signal_mux_add(lonely->mux, "inprocess:many"), -ENOSPC);
	assert_int_equal(signal_mux_add(b->mux, "bogus:x"), -EPROTONOSUPPORT);
	free(buf);
	client_free(a);
	client_free(b);
	client_free(lonely);
}

struct publisher {
	struct client *c;
	const uint8_t *to;
	atomic_bool *stop;
	unsigned long sent;
};

static void *publish_loop(void *arg)
{
	struct publisher *p = arg;
	Wice__Signaling__Message m = WICE__SIGNALING__MESSAGE__INIT;
	uint8_t *buf;
	size_t len;

	assert_int_equal(envelope_seal(&p->c->key, p->to, &m, &buf, &len), 0);
	while (!atomic_load(p->stop)) {
		assert_int_equal(signal_backend_publish(p->c->b, buf, len), 0);
		p->sent++;
	}
	free(buf);
	return NULL;
}

/* b is opened and closed over and over while two threads publish to its key. Its context is
 * freed right after each close, so a late callback is a use-after-free ASan reports. */
static void test_close_during_traffic(void **state)
{
	struct client *a1 = client_open("inprocess:race"), *a2 = client_open("inprocess:race");
	struct client *b = client_new();
	struct publisher p[2] = {{.c = a1}, {.c = a2}};
	atomic_bool stop = false;
	pthread_t t[2];

	for (int i = 0; i < 2; i++) {
		p[i].to = b->key.public_key;
		p[i].stop = &stop;
		assert_int_equal(pthread_create(&t[i], NULL, publish_loop, &p[i]), 0);
	}
	for (int round = 0; round < 200; round++) {
		struct client *ctx = client_new();
		struct signal_backend_config cfg = client_cfg(ctx);

		ctx->key = b->key;
		assert_int_equal(signal_backend_open("inprocess:race", &cfg, &ctx->b), 0);
		assert_true(wait_received(ctx, 1 + (unsigned int)round % 8));
		signal_backend_close(ctx->b);
		ctx->b = NULL;
		assert_int_equal(atomic_load(&ctx->inside), 0);
		client_free(ctx);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_true(p[0].sent > 0 && p[1].sent > 0);
	client_free(a1);
	client_free(a2);
	client_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inprocess_exchange),
		cmocka_unit_test(test_reply_from_callback),
		cmocka_unit_test(test_buses_are_separate),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_mux_drops_duplicates),
		cmocka_unit_test(test_close_during_traffic),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
