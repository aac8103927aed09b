/* SPDX-License-Identifier: MIT */
#include <cap-ng.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include "util/privs.h"
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

/* Appends sep and "CAP_NAME" (libcap-ng names capabilities in lower case) to buf. */
static void append_name(char *buf, size_t size, const char *sep, const char *name)
{
	size_t n = strlen(buf);

	n += (size_t)snprintf(buf + n, size - n, "%sCAP_", sep);
	for (const char *c = name ? name : "?"; *c && n + 1 < size; c++)
		buf[n++] = (char)toupper((unsigned char)*c);
	buf[n < size ? n : size - 1] = '\0';
}

int privs_drop(const unsigned int *keep, size_t n_keep)
{
	char kept[256] = "";
	bool setpcap, any = false;
	bool have[64] = {false};
	int r, threads;

	if (capng_get_caps_process() < 0) {
		log_error("privileges: cannot read this process's capabilities");
		return -EPERM;
	}
	for (size_t i = 0; i < n_keep; i++)
		have[keep[i] & 63] = capng_have_capability(CAPNG_PERMITTED, keep[i]);
	/* The bounding set only shrinks with CAP_SETPCAP (root has it; a service given only
	 * the capabilities it keeps has not, and its bounding set is then its manager's). */
	setpcap = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
	capng_clear(CAPNG_SELECT_ALL);
	for (size_t i = 0; i < n_keep; i++) {
		const char *name = capng_capability_to_name(keep[i]);

		if (!have[keep[i] & 63])
			continue;
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
			     keep[i]);
		append_name(kept, sizeof(kept), any ? ", " : "", name);
		any = true;
	}
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
		 any ? kept : "no capability", setpcap ? ", bounding" : "");
	return 0;
}
