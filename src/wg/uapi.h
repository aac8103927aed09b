/* SPDX-License-Identifier: MIT */
/*
 * The cross-platform userspace API (wireguard.com/xplatform): "get=1" and "set=1" requests of
 * key=value lines on a unix socket at /var/run/wireguard/NAME.sock, answered with "errno=N".
 * This is what wg(8) and wg-quick speak to userspace implementations.
 */
#ifndef WICE_WG_UAPI_H
#define WICE_WG_UAPI_H

#include <stddef.h>
#include <stdio.h>

struct wg_device;

#define UAPI_DIR	       "/var/run/wireguard"
#define UAPI_MAX_REQUEST       (64u << 20) /* a set with ~1M allowed IPs still fits */
#define UAPI_MAX_LINE	       4096
#define UAPI_MAX_CONNECTIONS   1 /* served one at a time; each has a read timeout */
#define UAPI_READ_TIMEOUT_SECS 5

int uapi_listen(struct wg_device *dev);
void uapi_close(struct wg_device *dev);
void *uapi_thread(void *arg);

/*
 * Handles one request: req/len is everything up to and including the blank line that ends
 * it. Writes the whole response (including "errno=N\n\n") to out and returns 0 or the
 * negative errno it reported.
 */
int uapi_request(struct wg_device *dev, const char *req, size_t len, FILE *out);

#endif
