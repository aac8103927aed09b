/* SPDX-License-Identifier: MIT */
/* wice wg-userspace [-f] IFACE: a userspace WireGuard interface, as wireguard-go serves one. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "cli/cli.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/sandbox.h"
#include "wg/device.h"
#include "wg/tun.h"

static const char usage[] =
	"Usage: wice wg-userspace [-f] [-v] IFACE\n\n"
	"Creates the TUN interface IFACE and serves it as a WireGuard interface, configured\n"
	"through "
	"/var/run/wireguard/IFACE.sock with wg(8) or wg-quick(8), e.g.\n"
	"WG_QUICK_USERSPACE_IMPLEMENTATION='wice wg-userspace'.\n\n"
	"  -f, --foreground  stay in the foreground (default: daemonise once the interface "
	"exists)\n"
	"  -v, --verbose     log debug messages\n"
	"  -h, --help        this text\n";

static int serve(const char *name, int ready_fd)
{
	char ifname[IFNAMSIZ];
	struct wg_device *dev = NULL;
	sigset_t mask;
	int tun, sfd, r;
	struct pollfd pfd[2];

	/* Signals go to a signalfd, never to a handler in a random thread. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);

	tun = tun_create(name, ifname);
	if (tun < 0) {
		log_error("%s: cannot create the TUN device: %s", name, strerror(-tun));
		return 1;
	}
	if ((r = tun_set_mtu(ifname, WG_DEFAULT_MTU)) < 0)
		log_warn("%s: cannot set MTU %d: %s", ifname, WG_DEFAULT_MTU, strerror(-r));
	if ((r = device_new(ifname, tun, &dev)) < 0) {
		close(tun);
		log_error("%s: %s", ifname, strerror(-r));
		return 1;
	}
	/*
	 * Before the threads start (capabilities are per thread): CAP_NET_ADMIN for fwmark and
	 * the forced socket buffers, CAP_NET_BIND_SERVICE for a listen port below 1024, both
	 * settable at any time through the UAPI; nothing else, and the seccomp deny-list.
	 */
	if ((r = privs_drop((const unsigned int[]){CAP_NET_ADMIN, CAP_NET_BIND_SERVICE}, 2)) < 0 ||
	    (r = sandbox_apply()) < 0) {
		device_free(dev);
		return 1;
	}
	if ((r = device_start(dev)) < 0) {
		log_error("%s: cannot start: %s", ifname, strerror(-r));
		device_free(dev);
		return 1;
	}
	log_info("%s: UAPI listening on %s", ifname, dev->uapi_path);
	if (ready_fd >= 0) {
		char ok = 0;

		if (write(ready_fd, &ok, 1) != 1)
			log_warn("%s: cannot report readiness", ifname);
		close(ready_fd);
	}

	pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = dev->stop_fd, .events = POLLIN};
	while (poll(pfd, 2, -1) < 0 && errno == EINTR)
		;
	if (pfd[0].revents & POLLIN)
		log_info("%s: shutting down", ifname);
	else
		log_info("%s: interface gone, shutting down", ifname);
	device_free(dev);
	close(sfd);
	return 0;
}

int cmd_wg_userspace(int argc, char **argv)
{
	bool foreground = false;
	const char *name = NULL;
	int pipefd[2];
	pid_t pid;
	char status;

	if (cli_wants_help(argc, argv, usage))
		return 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--foreground"))
			foreground = true;
		else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
			log_max_level = LOG_LVL_DEBUG;
		else if (argv[i][0] == '-' || name) {
			fputs(usage, stderr);
			return 1;
		} else
			name = argv[i];
	}
	if (!name) {
		fputs(usage, stderr);
		return 1;
	}
	if (strlen(name) >= IFNAMSIZ) {
		fprintf(stderr, "wice: interface name too long (at most %d characters)\n",
			IFNAMSIZ - 1);
		return 1;
	}
	if (getenv("WG_PROCESS_FOREGROUND") && !strcmp(getenv("WG_PROCESS_FOREGROUND"), "1"))
		foreground = true;
	if (foreground)
		return serve(name, -1);

	/* Daemonise, but return only once the interface exists, so that wg-quick can go on
	 * configuring it; the child reports through a pipe. */
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		close(pipefd[0]);
		setsid();
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			if (!getenv("WICE_LOG_STDERR"))
				dup2(null, 2);
		}
		_exit(serve(name, pipefd[1]));
	}
	close(pipefd[1]);
	if (read(pipefd[0], &status, 1) != 1) {
		fprintf(stderr, "wice: %s failed to start (run with -f to see why)\n", name);
		return 1;
	}
	return 0;
}
