// SPDX-License-Identifier: MIT
/*
 * control: a server on its own GMainContext (run by a thread of this test), asked by the real
 * client. A status round trip through JSON; socket and directory modes; a stalled reader and a
 * silent client not holding anyone else up and being timed out; garbage, over-long and unknown
 * requests, an answer over the size limit, too many clients; stale and live sockets at the path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <json-glib/json-glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "daemon/control.h"

#define KEY_A "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
#define KEY_B "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="

#define STALL_TIMEOUT_MS 3000

static char tmpdir[64], sock_path[128];

struct fixture {
	GMainContext *ctx;
	GMainLoop *loop;
	GThread *thread;
	struct control_server *srv;
	size_t n_peers; /* per interface, for big answers */
	int fail;	/* get_status returns this when non-zero */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int get_status(struct control_status *st, void *userdata)
{
	struct fixture *f = userdata;
	struct control_interface *in;
	struct control_peer *p;
	struct sockaddr_in6 *in6;
	int r;

	if (f->fail)
		return f->fail;
	r = control_status_add_interface(st, &in);
	if (r < 0)
		return r;
	strcpy(in->name, "wg0");
	strcpy(in->kind, "kernel");
	in->has_public_key = true;
	memset(in->public_key, 0x11, sizeof(in->public_key));
	in->listen_port = 51820;
	in->signaling_backends = 2;
	in->signaling_connected = 1;
	in->signaling_disconnects = 7;
	for (size_t i = 0; i < (f->n_peers ? f->n_peers : 2); i++) {
		r = control_interface_add_peer(in, &p);
		if (r < 0)
			return r;
		memset(p->public_key, (int)(0x20 + i % 200), sizeof(p->public_key));
		p->public_key[0] = (uint8_t)(i >> 8);
		strcpy(p->state, i == 0 ? "connected" : "checking");
		p->last_handshake = i == 0 ? 1700000000 : 0;
		p->rx_bytes = 123456789012ULL;
		p->tx_bytes = UINT64_MAX; /* clamped, never negative */
		if (i != 0)
			continue;
		p->has_selected_pair = true;
		strcpy(p->local.type, "relay");
		strcpy(p->local.address, "203.0.113.5");
		p->local.port = 49152;
		strcpy(p->local.transport, "tcp");
		strcpy(p->remote.type, "srflx");
		strcpy(p->remote.address, "2001:db8::7");
		p->remote.port = 3478;
		strcpy(p->remote.transport, "udp");
		p->relayed = true;
		strcpy(p->relay_reason, "symmetric NAT \"both\" sides\n");
		p->ice_restarts = UINT32_MAX;
		p->last_restart = 1700000100;
		strcpy(p->last_restart_reason, "local address change");
		p->pair_changes = 3;
		p->pair_selected = 1700000200;
		p->connected_since = 1700000050;
		p->recoveries = 2;
		p->last_recovery = 1700000150;
		p->last_outage_ms = 4321;
		in6 = (struct sockaddr_in6 *)&p->endpoint;
		in6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, "fe80::1", &in6->sin6_addr);
		in6->sin6_port = htons(51820);
		in6->sin6_scope_id = 2;
	}
	r = control_status_add_interface(st, &in);
	if (r < 0)
		return r;
	strcpy(in->name, "wgu");
	strcpy(in->kind, "uapi");
	return 0;
}

static gpointer loop_thread(gpointer data)
{
	struct fixture *f = data;

	g_main_context_push_thread_default(f->ctx);
	g_main_loop_run(f->loop);
	g_main_context_pop_thread_default(f->ctx);
	return NULL;
}

static void start(struct fixture *f, unsigned int max_clients, unsigned int timeout_ms,
		  size_t max_response)
{
	struct control_server_config cfg = {
		.path = sock_path,
		.get_status = get_status,
		.userdata = f,
		.max_clients = max_clients,
		.timeout_ms = timeout_ms,
		.max_response = max_response,
	};

	f->ctx = g_main_context_new();
	f->loop = g_main_loop_new(f->ctx, FALSE);
	assert_int_equal(control_server_new(f->ctx, &cfg, &f->srv), 0);
	f->thread = g_thread_new("control", loop_thread, f);
}

static void stop(struct fixture *f)
{
	g_main_loop_quit(f->loop);
	g_thread_join(f->thread);
	control_server_free(f->srv);
	g_main_loop_unref(f->loop);
	g_main_context_unref(f->ctx);
}

static int setup(void **state)
{
	strcpy(tmpdir, "/tmp/wice-control-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	/* A directory that does not exist yet: the server makes it 0700. */
	snprintf(sock_path, sizeof(sock_path), "%s/run/wice.sock", tmpdir);
	*state = g_new0(struct fixture, 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	g_free(*state);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static int raw_connect(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sun.sun_path, sock_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Sends req, reads to EOF; returns the byte count. */
static size_t raw_exchange(const void *req, size_t len, char *out, size_t size)
{
	int fd = raw_connect();
	size_t got = 0;
	ssize_t n;

	/* Not checked: a server that refuses us may close before we have sent. */
	if (len)
		(void)!send(fd, req, len, MSG_NOSIGNAL);
	while ((n = recv(fd, out + got, size - 1 - got, 0)) > 0) {
		got += (size_t)n;
		assert_true(got + 1 < size);
	}
	/* The server closed (a reset when it answered before reading it all): not a timeout. */
	if (!(n == 0 || (errno == ECONNRESET && got)))
		fail_msg("recv: n=%zd errno=%d got=%zu", n, errno, got);
	out[got] = '\0';
	close(fd);
	return got;
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct control_status st;
	char *json, *error = NULL, dir[128];
	struct stat sb;
	size_t len;

	start(f, 0, 0, 0);
	assert_int_equal(stat(sock_path, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(dir, sizeof(dir), "%s/run", tmpdir);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);

	assert_int_equal(control_client_status(sock_path, 2000, &json, &len), 0);
	assert_int_equal(strlen(json), len);
	assert_int_equal(json[len - 1], '\n');
	/* The wire format itself, as other tools read it. */
	assert_non_null(
		strstr(json, "\"public_key\":\"ERERERERERERERERERERERERERERERERERERERERERE=\""));
	assert_non_null(strstr(json, "\"endpoint\":\"[fe80::1%2]:51820\""));
	assert_non_null(strstr(json, "\"selected_pair\":null"));
	assert_non_null(strstr(json, "\"relay_reason\":\"symmetric NAT \\\"both\\\" sides\\n\""));
	assert_non_null(strstr(json, "\"tx_bytes\":9223372036854775807"));
	assert_non_null(strstr(json, "\"last_handshake\":1700000000"));
	assert_non_null(strstr(json, "\"ice_restarts\":4294967295"));
	assert_non_null(strstr(json, "\"signaling_disconnects\":7"));
	assert_non_null(strstr(json, "\"last_restart_reason\":\"local address change\""));
	assert_non_null(strstr(json, "\"recoveries\":2"));
	assert_non_null(strstr(json, "\"last_outage_ms\":4321"));
	/* A peer with no history: zeros and a null reason. */
	assert_non_null(strstr(json, "\"ice_restarts\":0,\"last_restart\":0,"
				     "\"last_restart_reason\":null"));

	assert_int_equal(control_status_from_json(json, len, &st, &error), 0);
	assert_int_equal(st.n_interfaces, 2);
	assert_string_equal(st.interfaces[0].name, "wg0");
	assert_string_equal(st.interfaces[0].kind, "kernel");
	assert_true(st.interfaces[0].has_public_key);
	assert_int_equal(st.interfaces[0].listen_port, 51820);
	assert_int_equal(st.interfaces[0].signaling_backends, 2);
	assert_int_equal(st.interfaces[0].signaling_connected, 1);
	assert_int_equal(st.interfaces[0].signaling_disconnects, 7);
	assert_int_equal(st.interfaces[1].signaling_backends, 0);
	assert_int_equal(st.interfaces[0].n_peers, 2);
	{
		const struct control_peer *p = &st.interfaces[0].peers[0];
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&p->endpoint;

		assert_true(p->has_selected_pair);
		assert_string_equal(p->local.type, "relay");
		assert_string_equal(p->local.address, "203.0.113.5");
		assert_int_equal(p->local.port, 49152);
		assert_string_equal(p->local.transport, "tcp");
		assert_string_equal(p->remote.type, "srflx");
		assert_string_equal(p->remote.address, "2001:db8::7");
		assert_true(p->relayed);
		assert_string_equal(p->relay_reason, "symmetric NAT \"both\" sides\n");
		assert_int_equal(p->last_handshake, 1700000000);
		assert_int_equal(p->rx_bytes, 123456789012ULL);
		assert_int_equal(p->ice_restarts, UINT32_MAX);
		assert_int_equal(p->last_restart, 1700000100);
		assert_string_equal(p->last_restart_reason, "local address change");
		assert_int_equal(p->pair_changes, 3);
		assert_int_equal(p->pair_selected, 1700000200);
		assert_int_equal(p->connected_since, 1700000050);
		assert_int_equal(p->recoveries, 2);
		assert_int_equal(p->last_recovery, 1700000150);
		assert_int_equal(p->last_outage_ms, 4321);
		assert_int_equal(st.interfaces[0].peers[1].ice_restarts, 0);
		assert_string_equal(st.interfaces[0].peers[1].last_restart_reason, "");
		assert_int_equal(in6->sin6_family, AF_INET6);
		assert_int_equal(ntohs(in6->sin6_port), 51820);
		assert_int_equal(in6->sin6_scope_id, 2);
		assert_false(st.interfaces[0].peers[1].has_selected_pair);
		assert_int_equal(st.interfaces[0].peers[1].endpoint.ss_family, AF_UNSPEC);
	}
	assert_string_equal(st.interfaces[1].name, "wgu");
	assert_false(st.interfaces[1].has_public_key);
	assert_int_equal(st.interfaces[1].n_peers, 0);
	control_status_clear(&st);
	g_free(json);
	stop(f);
	/* The server removes the socket it made. */
	assert_int_equal(stat(sock_path, &sb), -1);
}

/*
 * One client asks for a big status and never reads it; another is silent. Neither holds up a
 * third, and both are cut off at the deadline.
 */
static void test_stalled_clients(void **state)
{
	struct fixture *f = *state;
	char *json, buf[4096];
	size_t len, full, got = 0;
	int64_t t0;
	int stalled, silent;
	ssize_t n;

	f->n_peers = 6000; /* over 1 MB: far more than a unix socket buffers */
	start(f, 0, STALL_TIMEOUT_MS, 0);
	stalled = raw_connect();
	assert_int_equal(send(stalled, "status\n", 7, 0), 7);
	silent = raw_connect();
	usleep(100 * 1000); /* let the server fill the stalled client's socket */

	t0 = now_ms();
	assert_int_equal(control_client_status(sock_path, 2000, &json, &len), 0);
	/*
	 * Served well before the stalled client's deadline: had the server waited on it, this
	 * answer could only have come after that client was cut off.
	 */
	print_message("answered in %lld ms beside a stalled client\n", (long long)(now_ms() - t0));
	assert_true(now_ms() - t0 < STALL_TIMEOUT_MS - 500);
	assert_true(len > 1000000); /* 6000 peers with every status field */
	full = len;
	g_free(json);

	/* The silent one is closed at its deadline, unanswered. */
	assert_int_equal(recv(silent, buf, sizeof(buf), 0), 0);
	assert_true(now_ms() - t0 < STALL_TIMEOUT_MS + 500);
	close(silent);
	/* The stalled one got part of its answer, then the connection ended. */
	usleep(200 * 1000);
	while ((n = recv(stalled, buf, sizeof(buf), 0)) > 0)
		got += (size_t)n;
	assert_true(n == 0 || errno == ECONNRESET);
	assert_true(got < full);
	close(stalled);
	stop(f);
}

static const struct {
	const char *req;
	size_t len;
	const char *answer;
} bad_requests[] = {
	{"hello\n", 6, "{\"error\":\"unknown request\"}\n"},
	{"status \n", 8, "{\"error\":\"unknown request\"}\n"},
	{"STATUS\n", 7, "{\"error\":\"unknown request\"}\n"},
	{"sta\0tus\n", 8, "{\"error\":\"malformed request\"}\n"},
	{"\n", 1, "{\"error\":\"unknown request\"}\n"},
	{"\xff\xfe\x00\x01garbage\x80\n", 13, "{\"error\":\"malformed request\"}\n"},
	{"", 0, ""}, /* says nothing: cut off at the deadline */
};

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	char out[256], big[CONTROL_MAX_REQUEST * 4];

	start(f, 0, 300, 0);
	for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
		raw_exchange(bad_requests[i].req, bad_requests[i].len, out, sizeof(out));
		if (strcmp(out, bad_requests[i].answer))
			fail_msg("case %zu: got '%s'", i, out);
	}
	/* No newline within the limit: refused at the limit, whatever follows. */
	memset(big, 'a', sizeof(big));
	raw_exchange(big, CONTROL_MAX_REQUEST, out, sizeof(out));
	assert_string_equal(out, "{\"error\":\"request too long\"}\n");
	stop(f);
}

static void test_answer_limits(void **state)
{
	struct fixture *f = *state;
	struct control_status st;
	char *json, *error = NULL;
	size_t len;

	start(f, 0, 0, 200); /* the test status is larger than this */
	assert_int_equal(control_client_status(sock_path, 2000, &json, &len), 0);
	assert_int_equal(control_status_from_json(json, len, &st, &error), -EREMOTEIO);
	assert_string_equal(error, "response too large");
	g_free(error);
	g_free(json);

	f->fail = -EIO;
	assert_int_equal(control_client_status(sock_path, 2000, &json, &len), 0);
	assert_non_null(strstr(json, "status unavailable"));
	g_free(json);
	stop(f);
}

static void test_max_clients(void **state)
{
	struct fixture *f = *state;
	struct control_status st;
	char out[4096], *json, *error = NULL;
	size_t len;
	int a, b;

	start(f, 2, 2000, 0);
	a = raw_connect();
	b = raw_connect();
	raw_exchange("status\n", 7, out, sizeof(out));
	assert_string_equal(out, "{\"error\":\"busy: too many clients\"}\n");
	/* The real client reports the refusal, not the reset that follows it. */
	assert_int_equal(control_client_status(sock_path, 2000, &json, &len), 0);
	assert_int_equal(control_status_from_json(json, len, &st, &error), -EREMOTEIO);
	assert_string_equal(error, "busy: too many clients");
	g_free(error);
	g_free(json);
	close(a);
	close(b);
	/* Slots come back when clients go. */
	for (int tries = 0; tries < 50; tries++) {
		raw_exchange("status\n", 7, out, sizeof(out));
		if (strncmp(out, "{\"error\"", 8))
			break;
		usleep(10 * 1000);
	}
	assert_non_null(strstr(out, "\"interfaces\""));
	stop(f);
}

static void test_path_taken(void **state)
{
	struct fixture *f = *state;
	struct control_server_config cfg = {.path = sock_path, .get_status = get_status};
	struct control_server *srv = (void *)0x1;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char *json;
	size_t len;
	int fd;

	/* A live server holds the path: refused, and the live socket stays. */
	start(f, 0, 0, 0);
	assert_int_equal(control_server_new(NULL, &cfg, &srv), -EADDRINUSE);
	assert_ptr_equal(srv, (void *)0x1);
	assert_int_equal(control_client_status(sock_path, 2000, &json, &len), 0);
	g_free(json);
	stop(f);

	/* A crashed server's socket (bound, nobody listening) is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sun.sun_path, sock_path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	assert_int_equal(control_server_new(NULL, &cfg, &srv), 0);
	control_server_free(srv);

	/* Not a socket: someone else's file, left alone. */
	fclose(fopen(sock_path, "w"));
	assert_int_equal(control_server_new(NULL, &cfg, &srv), -EEXIST);
	unlink(sock_path);
	assert_int_equal(control_client_status(sock_path, 500, &json, &len), -ENOENT);
}

static const char *const bad_documents[] = {
	"",
	"[]",
	"{}",
	"{\"interfaces\": {}}",
	"{\"interfaces\": [1]}",
	"{\"interfaces\": [{\"name\": \"a/b\", \"kind\": \"uapi\", \"public_key\": null, "
	"\"listen_port\": 1, \"peers\": []}]}",
	"{\"interfaces\": [{\"name\": \"wg0\", \"kind\": \"uapi\", \"public_key\": null, "
	"\"listen_port\": 65536, \"peers\": []}]}",
	"{\"interfaces\": [{\"name\": \"wg0\", \"kind\": \"uapi\", \"public_key\": \"short\", "
	"\"listen_port\": 1, \"peers\": []}]}",
	"{\"interfaces\": [{\"name\": \"wg0\", \"kind\": \"uapi\", \"public_key\": null, "
	"\"listen_port\": 1, \"peers\": [{\"public_key\": \"" KEY_A "\"}]}]}",
	"{\"interfaces\": [{\"name\": \"wg0\", \"kind\": \"uapi\", \"public_key\": null, "
	"\"listen_port\": 1, \"peers\": [{\"public_key\": \"" KEY_B "\", \"state\": \"x\", "
	"\"selected_pair\": 7, \"relayed\": false, \"relay_reason\": null, "
	"\"last_handshake\": 0, \"rx_bytes\": 0, \"tx_bytes\": 0, \"endpoint\": null}]}]}",
	"{\"interfaces\": [{\"name\": \"wg0\", \"kind\": \"uapi\", \"public_key\": null, "
	"\"listen_port\": 1, \"peers\": [{\"public_key\": \"" KEY_B "\", \"state\": \"x\", "
	"\"selected_pair\": null, \"relayed\": 1, \"relay_reason\": null, "
	"\"last_handshake\": 0, \"rx_bytes\": 0, \"tx_bytes\": 0, \"endpoint\": null}]}]}",
	"{\"interfaces\": [{\"name\": \"wg0\", \"kind\": \"uapi\", \"public_key\": null, "
	"\"listen_port\": 1, \"peers\": [{\"public_key\": \"" KEY_B "\", \"state\": \"x\", "
	"\"selected_pair\": null, \"relayed\": false, \"relay_reason\": null, "
	"\"last_handshake\": 0, \"rx_bytes\": -1, \"tx_bytes\": 0, \"endpoint\": null}]}]}",
	"{\"interfaces\": [{\"name\": \"wg0\", \"kind\": \"uapi\", \"public_key\": null, "
	"\"listen_port\": 1, \"peers\": [{\"public_key\": \"" KEY_B "\", \"state\": \"x\", "
	"\"selected_pair\": null, \"relayed\": false, \"relay_reason\": null, "
	"\"last_handshake\": 0, \"rx_bytes\": 0, \"tx_bytes\": 0, \"endpoint\": \"1.2.3\"}]}]}",
	"{\"error\": 5}",
	/* The members added later are optional, but never of the wrong type or range. */
	"{\"interfaces\": [{\"name\": \"wg0\", \"kind\": \"uapi\", \"public_key\": null, "
	"\"listen_port\": 1, \"peers\": [{\"public_key\": \"" KEY_B "\", \"state\": \"x\", "
	"\"selected_pair\": null, \"relayed\": false, \"relay_reason\": null, "
	"\"last_handshake\": 0, \"rx_bytes\": 0, \"tx_bytes\": 0, \"endpoint\": null, "
	"\"ice_restarts\": 4294967296}]}]}",
	"{\"interfaces\": [{\"name\": \"wg0\", \"kind\": \"uapi\", \"public_key\": null, "
	"\"listen_port\": 1, \"peers\": [{\"public_key\": \"" KEY_B "\", \"state\": \"x\", "
	"\"selected_pair\": null, \"relayed\": false, \"relay_reason\": null, "
	"\"last_handshake\": 0, \"rx_bytes\": 0, \"tx_bytes\": 0, \"endpoint\": null, "
	"\"last_restart_reason\": 1}]}]}",
	"{\"interfaces\": [{\"name\": \"wg0\", \"kind\": \"uapi\", \"public_key\": null, "
	"\"listen_port\": 1, \"peers\": [{\"public_key\": \"" KEY_B "\", \"state\": \"x\", "
	"\"selected_pair\": null, \"relayed\": false, \"relay_reason\": null, "
	"\"last_handshake\": 0, \"rx_bytes\": 0, \"tx_bytes\": 0, \"endpoint\": null, "
	"\"recoveries\": -1}]}]}",
};

static void test_document_strict(void **state)
{
	const char *good = "{\"interfaces\": [{\"name\": \"wg0\", \"kind\": \"uapi\", "
			   "\"public_key\": null, \"listen_port\": 1, \"peers\": [{"
			   "\"public_key\": \"" KEY_B "\", \"state\": \"x\", "
			   "\"selected_pair\": null, \"relayed\": false, \"relay_reason\": null, "
			   "\"last_handshake\": 0, \"rx_bytes\": 0, \"tx_bytes\": 0, "
			   "\"endpoint\": \"192.0.2.1:9\"}]}]}";
	struct control_status st;

	for (size_t i = 0; i < sizeof(bad_documents) / sizeof(bad_documents[0]); i++)
		if (control_status_from_json(bad_documents[i], strlen(bad_documents[i]), &st,
					     NULL) != -EBADMSG)
			fail_msg("document %zu accepted", i);
	assert_int_equal(control_status_from_json(good, strlen(good), &st, NULL), 0);
	assert_int_equal(st.interfaces[0].peers[0].endpoint.ss_family, AF_INET);
	/* An older daemon's answer, without the recovery members: read as none. */
	assert_int_equal(st.interfaces[0].peers[0].ice_restarts, 0);
	assert_int_equal(st.interfaces[0].peers[0].recoveries, 0);
	control_status_clear(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stalled_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_taken, setup, teardown),
		cmocka_unit_test(test_document_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
