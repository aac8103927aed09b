/* SPDX-License-Identifier: MIT */
/* Device lifetime, configuration entry points and the control thread. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "util/key.h"
#include "util/log.h"
#include "wg/crypto.h"
#include "wg/device.h"
#include "wg/timers.h"
#include "wg/tun.h"
#include "wg/uapi.h"
#include "wg/udp.h"

int device_new(const char *name, int tun_fd, struct wg_device **ret)
{
	pthread_rwlockattr_t attr;
	struct wg_device *dev;
	int r;

	if ((r = wgcrypto_init()))
		return r;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	snprintf(dev->name, sizeof(dev->name), "%s", name);
	/* Writers (handshakes, configuration) must not starve behind the data path. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&dev->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&dev->hs_lock, NULL);
	allowedips_init(&dev->allowedips);
	wgcrypto_random(&dev->peer_hash_seed, sizeof(dev->peer_hash_seed));
	dev->tun_fd = tun_fd;
	dev->udp4 = dev->udp6 = dev->uapi_fd = -1;
	dev->mtu = WG_DEFAULT_MTU;
	dev->udp_gso = true;
	dev->hs_queue = calloc(WG_MAX_QUEUED_HANDSHAKES, sizeof(*dev->hs_queue));
	dev->ctrl_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	dev->rx_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	dev->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!dev->hs_queue || dev->ctrl_kick < 0 || dev->rx_kick < 0 || dev->stop_fd < 0 ||
	    ratelimit_init(&dev->handshake_limit) < 0) {
		dev->tun_fd = -1;
		device_free(dev);
		return -ENOMEM;
	}
	*ret = dev;
	return 0;
}

void device_free(struct wg_device *dev)
{
	if (!dev)
		return;
	device_stop(dev);
	while (dev->peers_head)
		peer_remove(dev->peers_head);
	allowedips_free(&dev->allowedips);
	if (dev->udp4 >= 0)
		close(dev->udp4);
	if (dev->udp6 >= 0)
		close(dev->udp6);
	if (dev->tun_fd >= 0)
		close(dev->tun_fd);
	for (int *fd = &dev->ctrl_kick; fd <= &dev->stop_fd; fd++)
		if (*fd >= 0)
			close(*fd);
	free(dev->hs_queue);
	ratelimit_free(&dev->handshake_limit);
	wgcrypto_data_ctx_free(&dev->ctrl_cipher);
	pthread_rwlock_destroy(&dev->lock);
	pthread_mutex_destroy(&dev->hs_lock);
	wgcrypto_wipe(&dev->identity, sizeof(dev->identity));
	wgcrypto_wipe(&dev->cookie_checker, sizeof(dev->cookie_checker));
	free(dev);
}

void device_kick_ctrl(struct wg_device *dev)
{
	uint64_t one = 1;

	/* One wake-up per control-loop pass, however many requests come in. */
	if (atomic_exchange(&dev->ctrl_kicked, true))
		return;
	if (write(dev->ctrl_kick, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("%s: cannot wake the control thread: %s", dev->name, strerror(errno));
}

int device_set_private_key(struct wg_device *dev, const uint8_t key[static WG_KEY_LEN])
{
	struct wg_peer *self;

	if (dev->identity.has_identity &&
	    wgcrypto_equal(dev->identity.static_private, key, WG_KEY_LEN))
		return 0;
	if (key_is_zero(key))
		wgcrypto_wipe(&dev->identity, sizeof(dev->identity));
	else
		noise_identity_set(&dev->identity, key);
	/* A peer with our own public key makes no sense: drop it, as the kernel does. */
	if (dev->identity.has_identity && (self = peer_lookup(dev, dev->identity.static_public)))
		peer_remove(self);
	cookie_checker_init(&dev->cookie_checker, dev->identity.static_public);
	for (struct wg_peer *p = dev->peers_head; p; p = p->next) {
		noise_handshake_precompute(&p->handshake, &dev->identity);
		/* Sessions made with the old key are void. */
		noise_keypairs_clear(dev, &p->keypairs);
		noise_handshake_clear(dev, &p->handshake);
	}
	return 0;
}

int device_bind(struct wg_device *dev, uint16_t port)
{
	int fd4 = -1, fd6 = -1, r;
	uint16_t bound;
	bool gro;
	uint64_t one = 1;

	if (dev->udp4 >= 0 || dev->udp6 >= 0) {
		if (port == dev->listen_port)
			return 0;
	}
	r = udp_open(port, dev->fwmark, &fd4, &fd6, &bound, &gro);
	if (r < 0)
		return r;
	if (dev->udp4 >= 0)
		close(dev->udp4);
	if (dev->udp6 >= 0)
		close(dev->udp6);
	dev->udp4 = fd4;
	dev->udp6 = fd6;
	dev->listen_port = bound;
	dev->udp_gro = gro;
	if (write(dev->rx_kick, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

int device_set_fwmark(struct wg_device *dev, uint32_t mark)
{
	int r;

	if ((r = udp_set_fwmark(dev->udp4, mark)) || (r = udp_set_fwmark(dev->udp6, mark)))
		return r;
	dev->fwmark = mark; /* only once applied, so get never shows a mark that is not */
	return 0;
}

/* ---- The control thread ---- */

static void handle_initiation(struct wg_device *dev, const struct wg_queued_handshake *q)
{
	struct wg_peer *peer;
	uint64_t now = now_ns();

	peer = noise_consume_initiation(dev, (const void *)q->msg);
	if (!peer) {
		atomic_fetch_add_explicit(&dev->dropped_invalid, 1, memory_order_relaxed);
		return;
	}
	peer_set_endpoint(peer, &q->src);
	atomic_fetch_add_explicit(&peer->rx_bytes, q->len, memory_order_relaxed);
	timers_any_authenticated_packet_received(peer);
	timers_any_authenticated_packet_traversal(peer, now);
	send_handshake_response(peer);
}

static void handle_response(struct wg_device *dev, const struct wg_queued_handshake *q)
{
	struct wg_peer *peer;
	uint64_t now = now_ns();

	peer = noise_consume_response(dev, (const void *)q->msg);
	if (!peer) {
		atomic_fetch_add_explicit(&dev->dropped_invalid, 1, memory_order_relaxed);
		return;
	}
	peer_set_endpoint(peer, &q->src);
	atomic_fetch_add_explicit(&peer->rx_bytes, q->len, memory_order_relaxed);
	if (noise_begin_session(dev, peer))
		return;
	timers_session_derived(peer, now);
	timers_handshake_complete(peer);
	timers_any_authenticated_packet_received(peer);
	timers_any_authenticated_packet_traversal(peer, now);
	/* Confirm the session to the responder: staged data if any, else a keepalive. */
	send_keepalive(peer);
}

static void handle_cookie(struct wg_device *dev, const struct wg_queued_handshake *q)
{
	const struct wg_message_handshake_cookie *c = (const void *)q->msg;
	struct wg_index_entry *e;

	e = index_lookup(&dev->index, le32toh(c->receiver_index), INDEX_HANDSHAKE | INDEX_KEYPAIR);
	if (!e || cookie_consume_reply(&e->peer->cookie, c))
		atomic_fetch_add_explicit(&dev->dropped_invalid, 1, memory_order_relaxed);
}

static void process_handshakes(struct wg_device *dev)
{
	struct wg_queued_handshake q;

	/* A bounded number per pass so timers and configuration get their turn. */
	for (int budget = 256; budget > 0; budget--) {
		uint32_t type;

		pthread_mutex_lock(&dev->hs_lock);
		if (!dev->hs_count) {
			pthread_mutex_unlock(&dev->hs_lock);
			return;
		}
		q = dev->hs_queue[dev->hs_head];
		dev->hs_head = (dev->hs_head + 1) % WG_MAX_QUEUED_HANDSHAKES;
		dev->hs_count--;
		pthread_mutex_unlock(&dev->hs_lock);

		memcpy(&type, q.msg, sizeof(type));
		pthread_rwlock_wrlock(&dev->lock);
		switch (le32toh(type)) {
		case WG_MSG_HANDSHAKE_INITIATION:
			handle_initiation(dev, &q);
			break;
		case WG_MSG_HANDSHAKE_RESPONSE:
			handle_response(dev, &q);
			break;
		case WG_MSG_HANDSHAKE_COOKIE:
			handle_cookie(dev, &q);
			break;
		}
		pthread_rwlock_unlock(&dev->lock);
	}
	device_kick_ctrl(dev); /* more left: come back after the timers */
}

static void process_requests(struct wg_peer *peer)
{
	unsigned int req = atomic_exchange(&peer->requests, 0);

	if (req & PEER_REQ_CONFIRM) {
		struct noise_keypair *next = peer->keypairs.next;

		if (next && next->id == atomic_load(&peer->confirm_keypair_id)) {
			noise_keypairs_confirm(peer->dev, peer, next);
			timers_handshake_complete(peer);
			send_staged(peer);
		}
	}
	/* Renewal (keep_key_fresh) or no session at all: initiate, at most once per
	 * REKEY_TIMEOUT; what is staged goes out once the new session exists. */
	if (req & PEER_REQ_HANDSHAKE)
		send_handshake_initiation(peer, false);
	if (req & PEER_REQ_KEEPALIVE)
		send_keepalive(peer);
}

static uint64_t process_peers(struct wg_device *dev)
{
	uint64_t next = 0, now = now_ns();

	pthread_rwlock_wrlock(&dev->lock);
	for (struct wg_peer *p = dev->peers_head; p; p = p->next) {
		uint64_t t;

		if (atomic_load_explicit(&p->requests, memory_order_relaxed))
			process_requests(p);
		t = timers_run(p, now);
		if (t && (!next || t < next))
			next = t;
	}
	pthread_rwlock_unlock(&dev->lock);
	return next;
}

void ctrl_run_once(struct wg_device *dev)
{
	atomic_store(&dev->ctrl_kicked, false);
	process_handshakes(dev);
	process_peers(dev);
}

void *ctrl_thread(void *arg)
{
	struct wg_device *dev = arg;
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct pollfd pfd[3] = {
		{.fd = dev->ctrl_kick, .events = POLLIN},
		{.fd = tfd, .events = POLLIN},
		{.fd = dev->stop_fd, .events = POLLIN},
	};
	uint64_t v;

	if (tfd < 0) {
		log_error("%s: timerfd: %s", dev->name, strerror(errno));
		return NULL;
	}
	while (!atomic_load(&dev->stopping)) {
		struct itimerspec its = {0};
		uint64_t next;

		if (read(dev->ctrl_kick, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		if (read(tfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		atomic_store(&dev->ctrl_kicked, false);
		process_handshakes(dev);
		next = process_peers(dev);
		/* Sleep until the earliest deadline; with none, until something happens. */
		if (next) {
			its.it_value.tv_sec = (time_t)(next / NSEC_PER_SEC);
			its.it_value.tv_nsec = (long)(next % NSEC_PER_SEC);
		}
		timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
		if (poll(pfd, 3, -1) < 0 && errno != EINTR)
			break;
	}
	close(tfd);
	return NULL;
}

/* ---- Lifetime ---- */

int device_start(struct wg_device *dev)
{
	int r;

	pthread_rwlock_wrlock(&dev->lock);
	r = dev->udp4 < 0 && dev->udp6 < 0 ? device_bind(dev, 0) : 0;
	pthread_rwlock_unlock(&dev->lock);
	if (r < 0)
		return r;
	if ((r = uapi_listen(dev)) < 0)
		return r;
	if ((r = -pthread_create(&dev->ctrl_thread, NULL, ctrl_thread, dev)))
		return r;
	if ((r = -pthread_create(&dev->rx_thread, NULL, receive_thread, dev)))
		return r;
	if (dev->tun_fd >= 0 && (r = -pthread_create(&dev->tx_thread, NULL, send_thread, dev)))
		return r;
	if ((r = -pthread_create(&dev->uapi_thread, NULL, uapi_thread, dev)))
		return r;
	dev->threads_started = true;
	return 0;
}

void device_wait(struct wg_device *dev)
{
	struct pollfd pfd = {.fd = dev->stop_fd, .events = POLLIN};

	while (!atomic_load(&dev->stopping))
		if (poll(&pfd, 1, -1) > 0)
			break;
}

void device_stop(struct wg_device *dev)
{
	uint64_t one = 1;

	atomic_store(&dev->stopping, true);
	if (write(dev->stop_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("%s: cannot signal stop: %s", dev->name, strerror(errno));
	if (!dev->threads_started)
		goto out;
	dev->threads_started = false;
	pthread_join(dev->ctrl_thread, NULL);
	pthread_join(dev->rx_thread, NULL);
	if (dev->tun_fd >= 0)
		pthread_join(dev->tx_thread, NULL);
	pthread_join(dev->uapi_thread, NULL);
out:
	uapi_close(dev);
}
