/* SPDX-License-Identifier: MIT */
/* wice signal: the signaling server. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "cli/cli.h"
#include "server/server.h"
#include "util/log.h"

static const char usage[] =
	"Usage: wice signal [--grpc ADDR:PORT] [--ws ADDR:PORT] [--tls-cert FILE --tls-key FILE]\n"
	"                   [--rate N] [--burst N] [-v]\n\n"
	"Routes sealed signaling envelopes between wice daemons by recipient public key. It\n"
	"cannot read or forge them; subscribers prove they hold the key they subscribe to.\n\n"
	"  --grpc ADDR:PORT   serve gRPC (grpcs with --tls-*), e.g. 0.0.0.0:8443 or [::]:8443\n"
	"  --ws ADDR:PORT     serve WebSocket (wss with --tls-*)\n"
	"  --tls-cert FILE    PEM certificate chain, with --tls-key: serve TLS on both\n"
	"  --tls-key FILE     PEM private key\n"
	"  --rate N           publishes per connection per second (default 10000)\n"
	"  --burst N          burst allowance of the rate limit (default 20000)\n"
	"  -v, --verbose      debug logging\n"
	"SIGTERM or SIGINT stop it cleanly; SIGUSR1 logs the counters.\n";

static void log_stats(const struct signal_server *s)
{
	const struct server_stats *st = &s->stats;

	log_info("stats: connects=%" PRIu64 " disconnects=%" PRIu64 " published=%" PRIu64
		 " delivered=%" PRIu64 " no_recipient=%" PRIu64 " queue_full=%" PRIu64
		 " malformed=%" PRIu64 " oversized=%" PRIu64 " forged_sender=%" PRIu64
		 " bad_proof=%" PRIu64 " rate_limited=%" PRIu64 " stalled=%" PRIu64
		 " publish_streams=%" PRIu64,
		 (uint64_t)st->connects, (uint64_t)st->disconnects, (uint64_t)st->published,
		 (uint64_t)st->delivered, (uint64_t)st->no_recipient, (uint64_t)st->queue_full,
		 (uint64_t)st->malformed, (uint64_t)st->oversized, (uint64_t)st->forged_sender,
		 (uint64_t)st->bad_proof, (uint64_t)st->rate_limited, (uint64_t)st->stalled,
		 (uint64_t)st->publish_streams);
}

static int parse_uint(const char *v, unsigned int *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || !*v || n > 100000000UL)
		return -EINVAL;
	*out = (unsigned int)n;
	return 0;
}

/* Every subscriber is a socket: take all the descriptors the hard limit allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("signal: cannot raise the file descriptor limit: %s",
				 strerror(errno));
	}
}

int cmd_signal(int argc, char **argv)
{
	static const struct option opts[] = {
		{"grpc", required_argument, NULL, 'g'},
		{"ws", required_argument, NULL, 'w'},
		{"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'k'},
		{"rate", required_argument, NULL, 'r'},
		{"burst", required_argument, NULL, 'b'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *grpc_addr = NULL, *ws_addr = NULL, *cert = NULL, *key = NULL;
	struct signal_server srv = {0};
	struct signalfd_siginfo si;
	sigset_t mask;
	int c, r, sfd, ret = 1;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			grpc_addr = optarg;
			break;
		case 'w':
			ws_addr = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'r':
			if (parse_uint(optarg, &srv.rate_per_sec))
				goto bad_usage;
			break;
		case 'b':
			if (parse_uint(optarg, &srv.rate_burst))
				goto bad_usage;
			break;
		case 'v':
			log_max_level = LOG_LVL_DEBUG;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			goto bad_usage;
		}
	}
	if (optind != argc || (!grpc_addr && !ws_addr) || !cert != !key)
		goto bad_usage;

	raise_fd_limit();
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	srv.router = router_new();
	srv.auth = auth_server_new();
	if (sfd < 0 || !srv.router || !srv.auth) {
		log_error("signal: cannot initialise");
		goto out;
	}
	if (grpc_addr && (r = server_grpc_start(&srv, grpc_addr, cert, key)) < 0) {
		log_error("signal: gRPC on %s: %s", grpc_addr, strerror(-r));
		goto out;
	}
	if (ws_addr && (r = server_ws_start(&srv, ws_addr, cert, key)) < 0) {
		log_error("signal: WebSocket on %s: %s", ws_addr, strerror(-r));
		goto out;
	}
	log_info("signal: serving%s%s%s%s%s", grpc_addr ? " gRPC on " : "",
		 grpc_addr ? grpc_addr : "", ws_addr ? " WebSocket on " : "",
		 ws_addr ? ws_addr : "", cert ? " with TLS" : "");
	for (;;) {
		if (read(sfd, &si, sizeof(si)) != sizeof(si)) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (si.ssi_signo == SIGUSR1) {
			log_stats(&srv);
			continue;
		}
		log_info("signal: shutting down");
		break;
	}
	ret = 0;
out:
	atomic_store(&srv.stopping, true);
	if (ws_addr)
		server_ws_stop(&srv);
	if (grpc_addr)
		server_grpc_stop(&srv);
	log_stats(&srv);
	router_free(srv.router);
	auth_server_free(srv.auth);
	if (sfd >= 0)
		close(sfd);
	return ret;
bad_usage:
	fputs(usage, stderr);
	return 1;
}
