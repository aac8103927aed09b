/* SPDX-License-Identifier: MIT */
/*
 * daemon: `wice daemon`, the wiring. On the default GMainContext: the watcher finds the
 * WireGuard interfaces the filter allows; for each, a signal_mux opened with the interface's
 * key and every configured backend; for each peer without a hand-set endpoint, a peer_link
 * (ICE session + proxy); the control socket answers `wice status`. Runs until SIGTERM or
 * SIGINT.
 *
 * Envelopes arrive on the backends' threads and are handed to the loop (g_main_context_invoke)
 * before anything else is done with them: nothing of ICE or of the daemon's state is touched
 * off the loop. On the loop an envelope is peeked first and dropped unless its sender is a
 * managed peer of the interface it came for, then opened against the interface's replay cache.
 */
#ifndef WICE_DAEMON_DAEMON_H
#define WICE_DAEMON_DAEMON_H

#include "daemon/config.h"

#define DAEMON_SHUTDOWN_MS	 500 /* given to ICE sessions to release their TURN allocations */
#define DAEMON_RESOLVE_REFRESH_S 60  /* ICE server names looked up again this often */

/* Runs the daemon with cfg until a signal stops it. Returns 0 or a negative errno. */
int daemon_run(const struct config *cfg);

#endif
