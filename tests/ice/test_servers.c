/* SPDX-License-Identifier: MIT */
/*
 * ICE server addresses: literals parsed into addrs, names resolved off the loop (resolver.h)
 * and what a session accepts. URL parsing and REST credentials: test_session.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <glib.h>
#include "ice/resolver.h"
#include "ice/servers.h"
#include "ice/session.h"

static GMainContext *ctx;

/* What parsing leaves in addrs: the literal itself, nothing for a name. */
static void test_parse_addrs(void **state)
{
	static const struct {
		const char *url, *addr; /* addr NULL: a name, not resolved */
	} cases[] = {
		{"stun:192.0.2.1:3478", "192.0.2.1"},
		{"stun:[2001:db8::1]:19302", "2001:db8::1"},
		{"turn:u:p@[2001:db8::2]?transport=tcp", "2001:db8::2"},
		{"turn:198.51.100.7?secret=s", "198.51.100.7"},
		{"stun:stun.example.org", NULL},
		{"turn:u:p@relay.wice.test:3478", NULL},
		{"turns:u:p@localhost", NULL},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct ice_server srv;

		assert_int_equal(ice_server_parse(cases[i].url, &srv), 0);
		if (!cases[i].addr) {
			assert_true(ice_server_is_name(&srv));
			assert_int_equal(srv.n_addrs, 0);
			continue;
		}
		assert_false(ice_server_is_name(&srv));
		assert_int_equal(srv.n_addrs, 1);
		assert_string_equal(srv.addrs[0], cases[i].addr);
	}
}

/* From a resolver's answer: the first of each family, IPv4 first; nothing usable changes nothing.
 */
static void test_set_addrs(void **state)
{
	static const struct {
		const char *in[5];
		size_t n;
		int ret;
		const char *out[2];
	} cases[] = {
		{{"2001:db8::1", "192.0.2.1", "192.0.2.2", "2001:db8::2"},
		 4,
		 0,
		 {"192.0.2.1", "2001:db8::1"}},
		{{"2001:db8::1"}, 1, 0, {"2001:db8::1"}},
		{{"192.0.2.9", "192.0.2.1"}, 2, 0, {"192.0.2.9"}},
		{{"relay.example", "198.51.100.1"}, 2, 0, {"198.51.100.1"}},
		{{NULL, "::1"}, 2, 0, {"::1"}},
		{{"relay.example", "192.0.2.1/24", "[2001:db8::1]"}, 3, -EADDRNOTAVAIL, {NULL}},
		{{"0000:0000:0000:0000:0000:ffff:192.000.002.001"}, 1, -EADDRNOTAVAIL, {NULL}},
		{{NULL}, 0, -EADDRNOTAVAIL, {NULL}},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct ice_server srv;
		size_t n_out = 0;

		assert_int_equal(ice_server_parse("stun:203.0.113.5", &srv), 0);
		assert_int_equal(ice_server_set_addrs(&srv, cases[i].in, cases[i].n), cases[i].ret);
		if (cases[i].ret < 0) { /* untouched */
			assert_int_equal(srv.n_addrs, 1);
			assert_string_equal(srv.addrs[0], "203.0.113.5");
			continue;
		}
		while (n_out < 2 && cases[i].out[n_out])
			n_out++;
		assert_int_equal(srv.n_addrs, n_out);
		for (size_t k = 0; k < n_out; k++)
			assert_string_equal(srv.addrs[k], cases[i].out[k]);
	}
}

static void on_candidate(void *data, const struct ice_candidate *c)
{
}

static const struct ice_session_callbacks callbacks = {.on_local_candidate = on_candidate};

/*
 * Names resolve through the system resolver (localhost from /etc/hosts), a name under .invalid
 * (RFC 6761: never resolves) fails the round without touching the others, and a session takes
 * a server only once it has addresses.
 */
static void test_resolve(void **state)
{
	struct ice_server srv[3];
	struct ice_resolver *r = NULL;
	struct ice_session_config cfg = {.udp = true, .cb = &callbacks, .servers = srv};
	struct ice_session *s = NULL;
	int ret;

	assert_int_equal(ice_server_parse("stun:localhost:3478", &srv[0]), 0);
	assert_int_equal(ice_server_parse("turn:u:p@192.0.2.1", &srv[1]), 0);
	assert_int_equal(ice_server_parse("turn:u:p@wice-test.invalid", &srv[2]), 0);
	cfg.n_servers = 1;
	assert_int_equal(ice_session_new(ctx, &cfg, &s), -EINVAL); /* not resolved yet */
	assert_null(s);

	assert_int_equal(ice_resolver_new(ctx, srv, 3, &r), 0);
	ret = ice_resolver_wait(r);
	assert_true(ret == -EADDRNOTAVAIL || ret == -EAGAIN); /* .invalid; -EAGAIN: no DNS */
	assert_true(srv[0].n_addrs >= 1);
	assert_true(!strcmp(srv[0].addrs[0], "127.0.0.1") || !strcmp(srv[0].addrs[0], "::1"));
	assert_int_equal(srv[1].n_addrs, 1);
	assert_string_equal(srv[1].addrs[0], "192.0.2.1");
	assert_int_equal(srv[2].n_addrs, 0);

	assert_int_equal(ice_session_new(ctx, &cfg, &s), 0);
	s = ice_session_free(s);
	cfg.n_servers = 3;
	assert_int_equal(ice_session_new(ctx, &cfg, &s), -EINVAL); /* srv[2] has no address */

	/* A failed round keeps what a name had. */
	assert_int_equal(ice_server_set_addrs(&srv[2], (const char *const[]){"192.0.2.3"}, 1), 0);
	ret = ice_resolver_wait(r);
	assert_true(ret < 0);
	assert_int_equal(srv[2].n_addrs, 1);
	assert_string_equal(srv[2].addrs[0], "192.0.2.3");
	assert_int_equal(ice_session_new(ctx, &cfg, &s), 0);
	s = ice_session_free(s);

	/* Only literals: nothing to look up, done never called. */
	r = ice_resolver_free(r);
	assert_int_equal(ice_resolver_new(ctx, &srv[1], 1, &r), 0);
	assert_int_equal(ice_resolver_run(r, NULL, NULL), 0);
	assert_int_equal(ice_resolver_wait(r), 0);
	r = ice_resolver_free(r);
}

/* Freed with lookups under way: they finish in the background and touch nothing. */
static void test_resolver_free_pending(void **state)
{
	struct ice_server srv;
	struct ice_resolver *r = NULL;
	gint64 until;

	assert_int_equal(ice_server_parse("stun:localhost", &srv), 0);
	assert_int_equal(ice_resolver_new(ctx, &srv, 1, &r), 0);
	assert_int_equal(ice_resolver_run(r, NULL, NULL), 1);
	assert_int_equal(ice_resolver_run(r, NULL, NULL), -EALREADY);
	r = ice_resolver_free(r);
	memset(&srv, 0xa5, sizeof(srv));
	until = g_get_monotonic_time() + 200 * 1000;
	while (g_get_monotonic_time() < until)
		g_main_context_iteration(ctx, FALSE);
	assert_int_equal(srv.port, 0xa5a5); /* not written after the free */
}

/* The periodic round looks a name up again: an address the name no longer has goes. */
static void test_resolver_refresh(void **state)
{
	struct ice_server srv;
	struct ice_resolver *r = NULL;
	gint64 t0 = g_get_monotonic_time(), until = t0 + 3 * G_USEC_PER_SEC;

	assert_int_equal(ice_server_parse("stun:localhost", &srv), 0);
	assert_int_equal(ice_server_set_addrs(&srv, (const char *const[]){"192.0.2.7"}, 1), 0);
	assert_int_equal(ice_resolver_new(ctx, &srv, 1, &r), 0);
	ice_resolver_refresh_every(r, 1);
	while (!strcmp(srv.addrs[0], "192.0.2.7") && g_get_monotonic_time() < until)
		g_main_context_iteration(ctx, TRUE);
	assert_true(!strcmp(srv.addrs[0], "127.0.0.1") || !strcmp(srv.addrs[0], "::1"));
	assert_true(g_get_monotonic_time() - t0 >= G_USEC_PER_SEC / 2); /* not at once */
	r = ice_resolver_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_addrs),
		cmocka_unit_test(test_set_addrs),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_resolver_free_pending),
		cmocka_unit_test(test_resolver_refresh),
	};
	int r;

	ctx = g_main_context_new();
	r = cmocka_run_group_tests(tests, NULL, NULL);
	g_main_context_unref(ctx);
	return r;
}
