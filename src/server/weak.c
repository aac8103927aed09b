/* SPDX-License-Identifier: MIT */
/* Temporary: link-time defaults while the transports are being written (removed once they
 * land). Each refuses with -EPROTONOSUPPORT. */
#include <errno.h>
#include "server/server.h"
#include "signal/auth.h"

__attribute__((weak)) int server_ws_start(struct signal_server *s, const char *addr,
					  const char *tls_cert, const char *tls_key)
{
	return -EPROTONOSUPPORT;
}
__attribute__((weak)) void server_ws_stop(struct signal_server *s)
{
}
