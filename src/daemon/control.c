/* SPDX-License-Identifier: MIT */
/* control: the control socket's server on the GLib loop, and its blocking client for the CLI. */
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "daemon/control.h"
#include "util/log.h"

#define REQUEST_STATUS "status"
#define BUSY_ANSWER    "{\"error\":\"busy: too many clients\"}\n"
#define LISTEN_BACKLOG 16
#define CLIENT_CHUNK   4096

struct client {
	struct control_server *srv;
	GList link; /* in srv->clients */
	int fd;
	GSource *io, *timer;
	char req[CONTROL_MAX_REQUEST];
	size_t req_len;
	char *out;
	size_t out_len, out_off;
};

struct control_server {
	GMainContext *ctx;
	struct control_server_config cfg;
	char *path;
	int fd;
	dev_t dev;
	ino_t ino;
	GSource *listen;
	GQueue clients;
};

/* ---- clients ---- */

static void source_drop(GSource **s)
{
	if (*s) {
		g_source_destroy(*s);
		g_source_unref(*s);
		*s = NULL;
	}
}

static void client_free(struct client *c)
{
	g_queue_unlink(&c->srv->clients, &c->link);
	source_drop(&c->io);
	source_drop(&c->timer);
	close(c->fd);
	g_free(c->out);
	g_free(c);
}

static gboolean on_client_timeout(gpointer data)
{
	struct client *c = data;

	log_debug("control: client timed out, closing");
	g_source_unref(c->timer);
	c->timer = NULL;
	client_free(c);
	return G_SOURCE_REMOVE;
}

/* Returns true while more is to be written. */
static bool client_flush(struct client *c, int *ret_err)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n < 0) {
			*ret_err = -errno;
			return false;
		}
		c->out_off += (size_t)n;
	}
	*ret_err = 0;
	return false;
}

static gboolean on_client_writable(gint fd, GIOCondition cond, gpointer data)
{
	struct client *c = data;
	int r;

	if (client_flush(c, &r))
		return G_SOURCE_CONTINUE;
	if (r < 0)
		log_debug("control: client went away: %s", g_strerror(-r));
	/* Returning REMOVE would race client_free's destroy of the same source. */
	client_free(c);
	return G_SOURCE_CONTINUE;
}

static void client_watch(struct client *c, GIOCondition cond, GUnixFDSourceFunc fn)
{
	source_drop(&c->io);
	c->io = g_unix_fd_source_new(c->fd, cond);
	g_source_set_callback(c->io, (GSourceFunc)(void (*)(void))fn, c, NULL);
	g_source_attach(c->io, c->srv->ctx);
}

/* Hands the answer over (takes out) and writes what the socket takes now, the rest later. */
static void client_answer(struct client *c, char *out, size_t len)
{
	int r;

	c->out = out;
	c->out_len = len;
	if (client_flush(c, &r)) {
		client_watch(c, G_IO_OUT, on_client_writable);
		return;
	}
	client_free(c);
}

static void client_error(struct client *c, const char *msg)
{
	char *out = g_strdup_printf("{\"error\":\"%s\"}\n", msg); /* msg: our constants only */

	client_answer(c, out, strlen(out));
}

static void client_status(struct client *c)
{
	struct control_server *srv = c->srv;
	struct control_status st = {0};
	char *json, *msg;
	size_t len;
	int r;

	r = srv->cfg.get_status(&st, srv->cfg.userdata);
	if (r == 0)
		r = control_status_to_json(&st, &json, &len);
	control_status_clear(&st);
	if (r < 0) {
		msg = g_strdup_printf("status unavailable: %s", g_strerror(-r));
		client_error(c, msg);
		g_free(msg);
		return;
	}
	if (len + 1 > srv->cfg.max_response) {
		log_warn("control: status of %zu bytes exceeds %zu, refusing", len,
			 srv->cfg.max_response);
		g_free(json);
		client_error(c, "response too large");
		return;
	}
	json = g_realloc(json, len + 2);
	json[len++] = '\n';
	json[len] = '\0';
	client_answer(c, json, len);
}

static void client_request(struct client *c, const char *line)
{
	if (!strcmp(line, REQUEST_STATUS))
		client_status(c);
	else
		client_error(c, "unknown request");
}

static gboolean on_client_readable(gint fd, GIOCondition cond, gpointer data)
{
	struct client *c = data;
	char *nl;
	ssize_t n;

	n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - c->req_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return G_SOURCE_CONTINUE;
	if (n <= 0) { /* gone before asking anything */
		client_free(c);
		return G_SOURCE_CONTINUE;
	}
	c->req_len += (size_t)n;
	nl = memchr(c->req, '\n', c->req_len);
	if (nl) {
		*nl = '\0';
		/* A request is text: a NUL inside it makes it garbage, not a shorter request. */
		if (strlen(c->req) != (size_t)(nl - c->req))
			client_error(c, "malformed request");
		else
			client_request(c, c->req);
	} else if (c->req_len == sizeof(c->req)) {
		client_error(c, "request too long");
	}
	return G_SOURCE_CONTINUE;
}

static void client_new(struct control_server *srv, int fd)
{
	struct client *c = g_new0(struct client, 1);

	c->srv = srv;
	c->fd = fd;
	c->link.data = c;
	g_queue_push_tail_link(&srv->clients, &c->link);
	c->timer = g_timeout_source_new(srv->cfg.timeout_ms);
	g_source_set_callback(c->timer, on_client_timeout, c, NULL);
	g_source_attach(c->timer, srv->ctx);
	client_watch(c, G_IO_IN, on_client_readable);
}

static gboolean on_listen(gint fd, GIOCondition cond, gpointer data)
{
	struct control_server *srv = data;

	for (;;) {
		int cfd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0 && errno == EINTR)
			continue;
		if (cfd < 0)
			break;
		if (srv->clients.length >= srv->cfg.max_clients) {
			/* A fresh socket's buffer always holds this much: never blocks. */
			(void)!send(cfd, BUSY_ANSWER, strlen(BUSY_ANSWER),
				    MSG_NOSIGNAL | MSG_DONTWAIT);
			close(cfd);
			log_warn("control: %u clients already, refusing one", srv->cfg.max_clients);
			continue;
		}
		client_new(srv, cfd);
	}
	return G_SOURCE_CONTINUE;
}

/* ---- the listening socket ---- */

static int sun_fill(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (!path[0] || strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

/* Replaces a socket nobody accepts on (a crashed daemon's); keeps a live one. */
static int clear_stale(const char *path)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	r = sun_fill(&sun, path);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? errno : 0;
	close(fd);
	if (r != ECONNREFUSED)
		return -EADDRINUSE;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

static int listen_on(struct control_server *srv)
{
	char *dir = g_path_get_dirname(srv->path);
	struct sockaddr_un sun;
	struct stat st;
	int r;

	/* Ours to create 0700; a directory that exists is someone's choice and left alone. */
	r = g_mkdir_with_parents(dir, 0700) < 0 ? -errno : 0;
	g_free(dir);
	if (r == 0)
		r = sun_fill(&sun, srv->path);
	if (r == 0)
		r = clear_stale(srv->path);
	if (r < 0)
		return r;
	srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv->fd < 0)
		return -errno;
	/* bind() creates the file with the socket inode's mode: 0600 from birth, umask or not. */
	if (fchmod(srv->fd, 0600) < 0 || bind(srv->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return -errno;
	if (stat(srv->path, &st) < 0)
		return -errno;
	srv->dev = st.st_dev;
	srv->ino = st.st_ino;
	if (listen(srv->fd, LISTEN_BACKLOG) < 0)
		return -errno;
	srv->listen = g_unix_fd_source_new(srv->fd, G_IO_IN);
	g_source_set_callback(srv->listen, (GSourceFunc)(void (*)(void))on_listen, srv, NULL);
	g_source_attach(srv->listen, srv->ctx);
	return 0;
}

struct control_server *control_server_free(struct control_server *srv)
{
	struct stat st;

	if (!srv)
		return NULL;
	while (srv->clients.head)
		client_free(srv->clients.head->data);
	source_drop(&srv->listen);
	if (srv->fd >= 0) {
		/* Only the file we made: a successor may already have replaced it. */
		if (srv->ino && stat(srv->path, &st) == 0 && st.st_dev == srv->dev &&
		    st.st_ino == srv->ino)
			unlink(srv->path);
		close(srv->fd);
	}
	g_free(srv->path);
	g_main_context_unref(srv->ctx);
	g_free(srv);
	return NULL;
}

int control_server_new(GMainContext *ctx, const struct control_server_config *cfg,
		       struct control_server **ret)
{
	struct control_server *srv;
	int r;

	if (!cfg->get_status)
		return -EINVAL;
	srv = g_new0(struct control_server, 1);
	srv->fd = -1;
	srv->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
	srv->cfg = *cfg;
	srv->path = g_strdup(cfg->path ? cfg->path : CONTROL_SOCKET_DEFAULT);
	srv->cfg.path = srv->path;
	if (!srv->cfg.max_clients)
		srv->cfg.max_clients = CONTROL_MAX_CLIENTS;
	if (!srv->cfg.timeout_ms)
		srv->cfg.timeout_ms = CONTROL_CLIENT_TIMEOUT_MS;
	if (!srv->cfg.max_response || srv->cfg.max_response > CONTROL_MAX_RESPONSE)
		srv->cfg.max_response = CONTROL_MAX_RESPONSE;
	g_queue_init(&srv->clients);
	r = listen_on(srv);
	if (r < 0) {
		control_server_free(srv);
		return r;
	}
	*ret = srv;
	return 0;
}

size_t control_server_n_clients(const struct control_server *srv)
{
	return srv->clients.length;
}

/* ---- the client ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_for(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int64_t left;
	int n;

	do {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)MIN(left, INT32_MAX));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

static int client_connect(const char *path, int64_t deadline, int *ret_fd)
{
	struct sockaddr_un sun;
	socklen_t elen = sizeof(int);
	int fd, r, err = 0;

	r = sun_fill(&sun, path);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		if (r == -EAGAIN || r == -EINPROGRESS) {
			r = wait_for(fd, POLLOUT, deadline);
			if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0)
				r = -err;
		}
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static int client_send(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (n < 0) {
			r = wait_for(fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int client_recv_all(int fd, int64_t deadline, GString *out)
{
	char buf[CLIENT_CHUNK];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		/*
		 * A server that answers before reading all we sent (it refused us as busy)
		 * resets the connection after its answer: the answer is what counts.
		 */
		if (n < 0 && errno == ECONNRESET && out->len)
			return 0;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (n == 0)
			return 0;
		if (n < 0) {
			r = wait_for(fd, POLLIN, deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (out->len + (size_t)n > CONTROL_MAX_RESPONSE)
			return -EMSGSIZE;
		g_string_append_len(out, buf, n);
	}
}

int control_client_status(const char *path, unsigned int timeout_ms, char **ret_json,
			  size_t *ret_len)
{
	static const char req[] = REQUEST_STATUS "\n";
	int64_t deadline = now_ms() + (timeout_ms ? timeout_ms : CONTROL_CLIENT_TIMEOUT_MS);
	GString *out;
	int fd = -1, r;

	r = client_connect(path ? path : CONTROL_SOCKET_DEFAULT, deadline, &fd);
	if (r < 0)
		return r;
	out = g_string_new(NULL);
	r = client_send(fd, req, sizeof(req) - 1, deadline);
	/* A server that refused us (busy) may have answered and closed before we asked. */
	if (r == 0 || r == -EPIPE || r == -ECONNRESET)
		r = client_recv_all(fd, deadline, out);
	close(fd);
	if (r == 0 && out->len == 0)
		r = -EPROTO;
	if (r < 0) {
		g_string_free(out, TRUE);
		return r;
	}
	*ret_len = out->len;
	*ret_json = g_string_free(out, FALSE);
	return 0;
}
