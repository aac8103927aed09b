/* SPDX-License-Identifier: MIT */
/* wice daemon: connect this host's WireGuard peers through NATs with ICE. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "daemon/config.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "util/log.h"

static const char usage[] =
	"Usage: wice daemon [--config FILE] [--backend URL]... [--ice-server URL]...\n"
	"                   [--interfaces GLOB]... [--socket PATH] [--log-level LEVEL] "
	"[IFACE...]\n\n"
	"Finds the WireGuard interfaces of this host and connects every peer without a hand-set\n"
	"endpoint through ICE, trading candidates through the signaling backends.\n\n"
	"  --backend URL      signaling backend: grpc://HOST:PORT, ws://HOST:PORT/, grpcs:, wss:\n"
	"  --ice-server URL   stun:HOST:PORT, turn:USER:PASS@HOST:PORT?transport=udp|tcp,\n"
	"                     turn:HOST:PORT?secret=S (TURN REST)\n"
	"  --interfaces GLOB  manage the interfaces matching GLOB (default: all)\n"
	"  --socket PATH      control socket (default " CONTROL_SOCKET_DEFAULT ")\n"
	"  --log-level LEVEL  error, warn, info, debug\n"
	"  --config FILE      YAML file with the same keys\n"
	"  IFACE...           manage exactly these interfaces\n";

int cmd_daemon(int argc, char **argv)
{
	struct config cfg;
	struct config_error err = {0};
	int r;

	if (cli_wants_help(argc, argv, usage))
		return 0;
	r = config_parse_args(argc, argv, &cfg, &err);
	if (r < 0) {
		if (err.line)
			fprintf(stderr, "wice daemon: config line %zu, column %zu: %s\n", err.line,
				err.column, err.msg);
		else
			fprintf(stderr, "wice daemon: %s\n", err.msg[0] ? err.msg : strerror(-r));
		fputs(usage, stderr);
		return 1;
	}
	if (cfg.log_level >= 0)
		log_max_level = (enum log_level)cfg.log_level;
	r = daemon_run(&cfg);
	config_free(&cfg);
	return r < 0 ? 1 : 0;
}
