/* SPDX-License-Identifier: MIT */
#include <cap-ng.h>
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include "daemon/privs.h"
#include "util/log.h"

/* Threads of this process: those started before the drop would keep their capabilities. */
static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

int privs_drop(void)
{
	bool admin, setpcap;
	int r, threads;

	if (capng_get_caps_process() < 0) {
		log_error("privileges: cannot read this process's capabilities");
		return -EPERM;
	}
	admin = capng_have_capability(CAPNG_PERMITTED, CAP_NET_ADMIN);
	/* The bounding set only shrinks with CAP_SETPCAP (root has it; a service given
	 * CAP_NET_ADMIN alone has not, and its bounding set is then its manager's business). */
	setpcap = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
	capng_clear(CAPNG_SELECT_ALL);
	if (admin)
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
			     CAP_NET_ADMIN);
	r = capng_apply(setpcap ? CAPNG_SELECT_ALL : CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT);
	if (r < 0) {
		log_error("privileges: dropping capabilities failed (libcap-ng: %d)", r);
		return -EPERM;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		r = -errno;
		log_error("privileges: no_new_privs: %s", strerror(-r));
		return r;
	}
	threads = thread_count();
	if (threads > 1)
		log_warn("privileges: %d threads started before the drop keep their capabilities",
			 threads - 1);
	log_info("privileges: kept %s (effective, permitted%s), dropped the rest; inheritable "
		 "and ambient empty, no_new_privs set",
		 admin ? "CAP_NET_ADMIN" : "no capability", setpcap ? ", bounding" : "");
	return 0;
}
