/* SPDX-License-Identifier: MIT */
/*
 * One connection is two sockets and two fixed buffers:
 *
 *   libnice --TCP-- local_fd --[up buffer]--> SSL(remote_fd) --TLS-- TURN server
 *           <------------------[down buffer]--
 *
 * Every event runs conn_pump(), which moves bytes until nothing moves, then conn_watch() sets
 * what to poll for from what would let bytes move again. A side is read only while the buffer
 * it fills has room: that is the backpressure, and the reason memory per connection is fixed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "ice/tls_relay.h"
#include "util/log.h"

#define TLS_RELAY_ADDR_MAX 8 /* resolved server addresses tried in turn */

enum conn_state { CONN_RESOLVING, CONN_CONNECTING, CONN_HANDSHAKE, CONN_OPEN };

struct buf {
	size_t head, tail; /* bytes in [head, tail) */
	uint8_t data[TLS_RELAY_BUF_MAX];
};

struct lookup; /* a pending GResolver query, outlives its connection if cancelled */

struct conn_source {
	GSource base;
	struct conn *conn;
};

struct conn {
	struct tls_relay *relay;
	struct conn *prev, *next;
	enum conn_state state;
	int local_fd, remote_fd;
	GSource *source;
	gpointer local_tag, remote_tag;
	GSource *timer;
	struct lookup *lookup;
	struct sockaddr_storage addrs[TLS_RELAY_ADDR_MAX];
	socklen_t addr_lens[TLS_RELAY_ADDR_MAX];
	unsigned int n_addrs, next_addr;
	SSL *ssl;
	int hs_want, read_want, write_want; /* SSL_ERROR_WANT_READ/WRITE of the last call, or 0 */
	bool local_eof, remote_eof;
	struct buf up, down;
};

struct lookup {
	struct conn *conn; /* NULL once the connection is gone */
	GCancellable *cancel;
};

struct tls_relay {
	GMainContext *ctx;
	char *host, *name; /* connect to host, verify name */
	uint16_t server_port, port;
	bool name_is_ip;
	struct sockaddr_storage literal; /* host when it is an IP literal */
	socklen_t literal_len;
	SSL_CTX *ssl_ctx;
	int listen_fd;
	GSource *listen_source;
	struct conn *conns;
	struct tls_relay_stats stats;
};

/* ---- buffers ---- */

static size_t buf_len(const struct buf *b)
{
	return b->tail - b->head;
}

/* Room at the end, after moving the data to the front when the end is full. Moving is safe
 * under a pending SSL_write: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, and the bytes only grow. */
static size_t buf_room(struct buf *b)
{
	if (b->head == b->tail)
		b->head = b->tail = 0;
	else if (b->tail == sizeof(b->data) && b->head > 0) {
		memmove(b->data, b->data + b->head, buf_len(b));
		b->tail -= b->head;
		b->head = 0;
	}
	return sizeof(b->data) - b->tail;
}

/* ---- closing ---- */

static void conn_free(struct conn *c)
{
	struct tls_relay *r = c->relay;

	if (c->lookup) {
		c->lookup->conn = NULL;
		g_cancellable_cancel(c->lookup->cancel);
	}
	if (c->timer) {
		g_source_destroy(c->timer);
		g_source_unref(c->timer);
	}
	g_source_destroy(c->source);
	g_source_unref(c->source);
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->remote_fd >= 0)
		close(c->remote_fd);
	close(c->local_fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	r->stats.connections--;
	/* The buffers held plaintext TURN messages, credentials' MACs among them. */
	OPENSSL_cleanse(c, sizeof(*c));
	g_free(c);
}

/* After the server side is done: try to say close_notify once, without waiting for it. */
static void conn_close(struct conn *c)
{
	if (c->ssl && c->state == CONN_OPEN && !(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN)) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);
	}
	conn_free(c);
}

static void conn_fail(struct conn *c)
{
	c->relay->stats.failures++;
	conn_free(c);
}

/* ---- connecting ---- */

static int conn_handshake_start(struct conn *c)
{
	struct tls_relay *r = c->relay;

	c->ssl = SSL_new(r->ssl_ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->remote_fd))
		return -ENOMEM;
	SSL_set_connect_state(c->ssl);
	/* RFC 6066 §3: literal IP addresses are not permitted in SNI. */
	if (!r->name_is_ip && !SSL_set_tlsext_host_name(c->ssl, r->name))
		return -ENOMEM;
	c->state = CONN_HANDSHAKE;
	return 0;
}

/* Starts a non-blocking connect to the next address; -EHOSTUNREACH when none is left. */
static int conn_connect_next(struct conn *c)
{
	if (c->remote_fd >= 0) {
		g_source_remove_unix_fd(c->source, c->remote_tag);
		close(c->remote_fd);
		c->remote_fd = -1;
	}
	while (c->next_addr < c->n_addrs) {
		unsigned int i = c->next_addr++;
		int one = 1, fd;

		fd = socket(c->addrs[i].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		/* STUN transactions are small and latency-bound. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, (struct sockaddr *)&c->addrs[i], c->addr_lens[i]) < 0 &&
		    errno != EINPROGRESS) {
			close(fd);
			continue;
		}
		c->remote_fd = fd;
		c->remote_tag = g_source_add_unix_fd(c->source, fd, G_IO_OUT);
		c->state = CONN_CONNECTING;
		return 0;
	}
	return -EHOSTUNREACH;
}

/* The remote socket became writable or failed: the connect finished one way or the other. */
static int conn_connected(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->remote_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		if (conn_connect_next(c) < 0) {
			log_info("tls_relay: %s:%u: connect: %s", c->relay->host,
				 c->relay->server_port, strerror(err));
			return -err;
		}
		return 0;
	}
	return conn_handshake_start(c);
}

static void lookup_done(GObject *resolver, GAsyncResult *res, gpointer data)
{
	struct lookup *lk = data;
	struct conn *c = lk->conn;
	GError *error = NULL;
	GList *addrs;

	addrs = g_resolver_lookup_by_name_finish(G_RESOLVER(resolver), res, &error);
	g_object_unref(lk->cancel);
	g_free(lk);
	if (!c)
		goto out;
	c->lookup = NULL;
	if (!addrs) {
		log_info("tls_relay: %s: %s", c->relay->host, error->message);
		conn_fail(c);
		goto out;
	}
	for (GList *l = addrs; l && c->n_addrs < TLS_RELAY_ADDR_MAX; l = l->next) {
		GSocketAddress *sa = g_inet_socket_address_new(l->data, c->relay->server_port);
		gssize len = g_socket_address_get_native_size(sa);

		if (len > 0 && g_socket_address_to_native(sa, &c->addrs[c->n_addrs],
							  sizeof(c->addrs[0]), NULL)) {
			c->addr_lens[c->n_addrs] = (socklen_t)len;
			c->n_addrs++;
		}
		g_object_unref(sa);
	}
	if (conn_connect_next(c) < 0) {
		log_info("tls_relay: %s:%u: no address to connect to", c->relay->host,
			 c->relay->server_port);
		conn_fail(c);
	}
out:
	g_resolver_free_addresses(addrs);
	g_clear_error(&error);
}

static int conn_resolve(struct conn *c)
{
	struct tls_relay *r = c->relay;
	GResolver *resolver;
	struct lookup *lk;

	if (r->literal_len) {
		c->addrs[0] = r->literal;
		c->addr_lens[0] = r->literal_len;
		c->n_addrs = 1;
		return conn_connect_next(c);
	}
	lk = g_new0(struct lookup, 1);
	lk->conn = c;
	lk->cancel = g_cancellable_new();
	c->lookup = lk;
	c->state = CONN_RESOLVING;
	/* GResolver answers on the thread-default context of the caller: make it ours. */
	g_main_context_push_thread_default(r->ctx);
	resolver = g_resolver_get_default();
	g_resolver_lookup_by_name_async(resolver, r->host, lk->cancel, lookup_done, lk);
	g_object_unref(resolver);
	g_main_context_pop_thread_default(r->ctx);
	return 0;
}

/* ---- moving bytes ---- */

static int local_read(struct conn *c, bool *progress)
{
	while (!c->local_eof) {
		size_t room = buf_room(&c->up);
		ssize_t n;

		if (!room)
			return 0;
		n = recv(c->local_fd, c->up.data + c->up.tail, room, 0);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (n == 0)
			c->local_eof = true;
		c->up.tail += (size_t)n;
		*progress = true;
	}
	return 0;
}

static int local_write(struct conn *c, bool *progress)
{
	while (buf_len(&c->down)) {
		ssize_t n = send(c->local_fd, c->down.data + c->down.head, buf_len(&c->down),
				 MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		c->down.head += (size_t)n;
		*progress = true;
	}
	return 0;
}

static void log_tls_failure(struct conn *c)
{
	struct tls_relay *r = c->relay;
	long v = SSL_get_verify_result(c->ssl);
	char reason[128];

	if (v != X509_V_OK) {
		r->stats.verify_failures++;
		log_warn("tls_relay: %s:%u: certificate rejected for \"%s\": %s; closing the TURN "
			 "connection",
			 r->host, r->server_port, r->name, X509_verify_cert_error_string(v));
		return;
	}
	r->stats.failures++;
	ERR_error_string_n(ERR_peek_last_error(), reason, sizeof(reason));
	log_warn("tls_relay: %s:%u: TLS handshake failed: %s", r->host, r->server_port, reason);
}

/* Returns 0, or -EPROTO after logging why. */
static int tls_handshake(struct conn *c, bool *progress)
{
	int ret, err;

	ERR_clear_error();
	ret = SSL_do_handshake(c->ssl);
	if (ret == 1) {
		c->state = CONN_OPEN;
		c->hs_want = 0;
		if (c->timer) {
			g_source_destroy(c->timer);
			g_source_unref(c->timer);
			c->timer = NULL;
		}
		*progress = true;
		return 0;
	}
	err = SSL_get_error(c->ssl, ret);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		c->hs_want = err;
		return 0;
	}
	log_tls_failure(c);
	return -EPROTO;
}

static int tls_write(struct conn *c, bool *progress)
{
	c->write_want = 0;
	while (buf_len(&c->up)) {
		size_t len = buf_len(&c->up);
		int n, err;

		ERR_clear_error();
		n = SSL_write(c->ssl, c->up.data + c->up.head, (int)len);
		if (n > 0) {
			c->up.head += (size_t)n;
			c->relay->stats.bytes_up += (uint64_t)n;
			*progress = true;
			continue;
		}
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			c->write_want = err;
			return 0;
		}
		return -EPIPE;
	}
	return 0;
}

static int tls_read(struct conn *c, bool *progress)
{
	c->read_want = 0;
	while (!c->remote_eof) {
		size_t room = buf_room(&c->down);
		int n, err;

		if (!room)
			return 0;
		ERR_clear_error();
		n = SSL_read(c->ssl, c->down.data + c->down.tail, (int)room);
		if (n > 0) {
			c->down.tail += (size_t)n;
			c->relay->stats.bytes_down += (uint64_t)n;
			*progress = true;
			continue;
		}
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			c->read_want = err;
			return 0;
		}
		if (err != SSL_ERROR_ZERO_RETURN)
			return -ECONNRESET;
		c->remote_eof = true;
		*progress = true;
	}
	return 0;
}

/* One pass over everything that can move; sets *progress when anything did. */
static int conn_step(struct conn *c, bool *progress)
{
	int ret;

	ret = local_read(c, progress);
	if (ret < 0)
		return ret;
	if (c->state == CONN_HANDSHAKE) {
		ret = tls_handshake(c, progress);
		if (ret < 0)
			return ret;
	}
	if (c->state == CONN_OPEN) {
		ret = tls_write(c, progress);
		if (ret < 0)
			return ret;
		ret = tls_read(c, progress);
		if (ret < 0)
			return ret;
	}
	return local_write(c, progress);
}

/* What to poll for: exactly the events that would let conn_step() move a byte. */
static void conn_watch(struct conn *c)
{
	GIOCondition local = 0, remote = 0;

	if (!c->local_eof && sizeof(c->up.data) - buf_len(&c->up) > 0)
		local |= G_IO_IN;
	if (buf_len(&c->down))
		local |= G_IO_OUT;
	g_source_modify_unix_fd(c->source, c->local_tag, local);
	if (c->remote_fd < 0)
		return;
	switch (c->state) {
	case CONN_RESOLVING:
		break;
	case CONN_CONNECTING:
		remote = G_IO_OUT;
		break;
	case CONN_HANDSHAKE:
		remote = c->hs_want == SSL_ERROR_WANT_WRITE ? G_IO_OUT : G_IO_IN;
		break;
	case CONN_OPEN:
		if (c->write_want == SSL_ERROR_WANT_READ || c->read_want == SSL_ERROR_WANT_READ)
			remote |= G_IO_IN;
		if (c->write_want == SSL_ERROR_WANT_WRITE || c->read_want == SSL_ERROR_WANT_WRITE)
			remote |= G_IO_OUT;
		break;
	}
	g_source_modify_unix_fd(c->source, c->remote_tag, remote);
}

/* Moves bytes until nothing moves. Returns false when the connection was freed. */
static bool conn_pump(struct conn *c, GIOCondition local_ev, GIOCondition remote_ev)
{
	bool progress, any = false;
	int ret;

	if (c->state == CONN_CONNECTING && remote_ev) {
		ret = conn_connected(c);
		if (ret < 0) {
			conn_fail(c);
			return false;
		}
		any = true;
	}
	do {
		progress = false;
		ret = conn_step(c, &progress);
		if (ret == -EPROTO) { /* counted and logged */
			conn_free(c);
			return false;
		}
		if (ret < 0) {
			conn_fail(c);
			return false;
		}
		any |= progress;
	} while (progress);

	/* libnice closed: what it sent is delivered. The server closed: what it sent is. */
	if ((c->local_eof && !buf_len(&c->up)) || (c->remote_eof && !buf_len(&c->down))) {
		conn_close(c);
		return false;
	}
	/* poll() reports a reset whatever we asked for; if it moved nothing, nothing will. */
	if (!any && ((local_ev | remote_ev) & (G_IO_ERR | G_IO_HUP))) {
		conn_fail(c);
		return false;
	}
	conn_watch(c);
	return true;
}

static gboolean conn_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
	struct conn *c = ((struct conn_source *)source)->conn;
	GIOCondition local_ev, remote_ev = 0;

	local_ev = g_source_query_unix_fd(source, c->local_tag);
	if (c->remote_fd >= 0)
		remote_ev = g_source_query_unix_fd(source, c->remote_tag);
	conn_pump(c, local_ev, remote_ev);
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs conn_source_funcs = {
	.dispatch = conn_dispatch,
};

static gboolean conn_timeout(gpointer data)
{
	struct conn *c = data;

	log_info("tls_relay: %s:%u: no TLS session within %d ms", c->relay->host,
		 c->relay->server_port, TLS_RELAY_HANDSHAKE_TIMEOUT_MS);
	conn_fail(c);
	return G_SOURCE_REMOVE;
}

/* ---- accepting ---- */

static void conn_new(struct tls_relay *r, int fd)
{
	struct conn *c = g_new0(struct conn, 1);
	int one = 1;

	c->relay = r;
	c->local_fd = fd;
	c->remote_fd = -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->source = g_source_new(&conn_source_funcs, sizeof(struct conn_source));
	((struct conn_source *)c->source)->conn = c;
	c->local_tag = g_source_add_unix_fd(c->source, fd, G_IO_IN);
	g_source_attach(c->source, r->ctx);
	c->timer = g_timeout_source_new(TLS_RELAY_HANDSHAKE_TIMEOUT_MS);
	g_source_set_callback(c->timer, conn_timeout, c, NULL);
	g_source_attach(c->timer, r->ctx);
	c->next = r->conns;
	if (c->next)
		c->next->prev = c;
	r->conns = c;
	r->stats.connections++;
	r->stats.accepted++;
	if (conn_resolve(c) < 0) {
		log_info("tls_relay: %s:%u: cannot connect", r->host, r->server_port);
		conn_fail(c);
		return;
	}
	conn_watch(c);
}

static gboolean relay_accept(gint listen_fd, GIOCondition cond, gpointer data)
{
	struct tls_relay *r = data;

	for (;;) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int fd;

		fd = accept4(listen_fd, (struct sockaddr *)&peer, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			break;
		/* Leaving a connection in the backlog would wake us forever: take it, close it. */
		if (r->stats.connections >= TLS_RELAY_CONN_MAX) {
			if (r->stats.refused++ == 0)
				log_warn("tls_relay: %s:%u: more than %d connections, refusing",
					 r->host, r->server_port, TLS_RELAY_CONN_MAX);
			close(fd);
			continue;
		}
		conn_new(r, fd);
	}
	return G_SOURCE_CONTINUE;
}

/* ---- the relay ---- */

static int relay_listen(struct tls_relay *r)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* libnice binds its TCP socket to a host candidate's address (say 192.0.2.2) before
	 * connecting to us, so the source address says nothing. The device does: with the
	 * socket bound to lo, a packet for 127.0.0.1 arriving from outside (route_localnet=1)
	 * is never ours. Unprivileged since Linux 5.7; on older kernels 127.0.0.1 alone. */
	setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", sizeof("lo"));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(fd, TLS_RELAY_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	r->listen_fd = fd;
	r->port = ntohs(sin.sin_port);
	r->listen_source = g_unix_fd_source_new(fd, G_IO_IN);
	g_source_set_callback(r->listen_source, G_SOURCE_FUNC(relay_accept), r, NULL);
	g_source_attach(r->listen_source, r->ctx);
	return 0;
}

static int relay_ssl_ctx(struct tls_relay *r, const char *ca_file)
{
	X509_VERIFY_PARAM *param;

	r->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!r->ssl_ctx)
		return -ENOMEM;
	if (!SSL_CTX_set_min_proto_version(r->ssl_ctx, TLS1_2_VERSION))
		return -EIO;
	SSL_CTX_set_verify(r->ssl_ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file ? !SSL_CTX_load_verify_locations(r->ssl_ctx, ca_file, NULL)
		    : !SSL_CTX_set_default_verify_paths(r->ssl_ctx)) {
		ERR_clear_error();
		return ca_file && access(ca_file, R_OK) < 0 ? -ENOENT : -EIO;
	}
	param = SSL_CTX_get0_param(r->ssl_ctx);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (r->name_is_ip ? !X509_VERIFY_PARAM_set1_ip_asc(param, r->name)
			  : !X509_VERIFY_PARAM_set1_host(param, r->name, 0))
		return -EINVAL;
	/* Partial writes let the up buffer drain record by record; moving is buf_room()'s. */
	SSL_CTX_set_mode(r->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					     SSL_MODE_RELEASE_BUFFERS);
	/* A TURN server that drops TCP without close_notify ends the stream, as a FIN would
	 * for libnice's plain turn:?transport=tcp; STUN framing carries its own lengths. */
	SSL_CTX_set_options(r->ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	return 0;
}

static bool parse_literal(const char *host, uint16_t port, struct sockaddr_storage *ss,
			  socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return true;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return true;
	}
	return false;
}

int tls_relay_new(GMainContext *ctx, const char *server_host, uint16_t server_port,
		  const char *ca_file, const char *sni, struct tls_relay **ret)
{
	struct sockaddr_storage unused;
	struct tls_relay *r;
	socklen_t unused_len;
	int err;

	if (!server_host || !*server_host || !server_port || (sni && !*sni) || !ret)
		return -EINVAL;
	r = g_new0(struct tls_relay, 1);
	r->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
	r->listen_fd = -1;
	r->host = g_strdup(server_host);
	r->name = g_strdup(sni ? sni : server_host);
	r->server_port = server_port;
	if (!parse_literal(r->host, server_port, &r->literal, &r->literal_len))
		r->literal_len = 0;
	r->name_is_ip = parse_literal(r->name, 0, &unused, &unused_len);
	err = relay_ssl_ctx(r, ca_file);
	if (err < 0)
		goto fail;
	err = relay_listen(r);
	if (err < 0)
		goto fail;
	*ret = r;
	return 0;
fail:
	tls_relay_free(r);
	return err;
}

uint16_t tls_relay_port(const struct tls_relay *relay)
{
	return relay->port;
}

void tls_relay_get_stats(const struct tls_relay *relay, struct tls_relay_stats *ret)
{
	*ret = relay->stats;
	ret->buffered = 0;
	for (const struct conn *c = relay->conns; c; c = c->next)
		ret->buffered += buf_len(&c->up) + buf_len(&c->down);
}

struct tls_relay *tls_relay_free(struct tls_relay *relay)
{
	if (!relay)
		return NULL;
	while (relay->conns)
		conn_free(relay->conns);
	if (relay->listen_source) {
		g_source_destroy(relay->listen_source);
		g_source_unref(relay->listen_source);
	}
	if (relay->listen_fd >= 0)
		close(relay->listen_fd);
	SSL_CTX_free(relay->ssl_ctx);
	g_main_context_unref(relay->ctx);
	g_free(relay->host);
	g_free(relay->name);
	g_free(relay);
	return NULL;
}
