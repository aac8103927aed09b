/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <string.h>
#include "util/sandbox.h"
#include "util/log.h"

#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))

/* Denied with EPERM, by name: libseccomp skips a name this kernel or architecture lacks. */
static const char *const denied[] = {
	/* other programs and processes */
	"execve",
	"execveat",
	"ptrace",
	"process_vm_readv",
	"process_vm_writev",
	"pidfd_getfd",
	/* namespaces and mounts */
	"unshare",
	"setns",
	"mount",
	"umount2",
	"pivot_root",
	"chroot",
	"fsopen",
	"fsconfig",
	"fsmount",
	"fspick",
	"move_mount",
	"open_tree",
	"mount_setattr",
	/* the kernel itself */
	"init_module",
	"finit_module",
	"delete_module",
	"kexec_load",
	"kexec_file_load",
	"bpf",
	"perf_event_open",
	"userfaultfd",
	"io_uring_setup",
	"io_uring_enter",
	"io_uring_register",
	"iopl",
	"ioperm",
	"uselib",
	"syslog",
	"lookup_dcookie",
	"quotactl",
	"acct",
	"swapon",
	"swapoff",
	"reboot",
	/* keyrings, file handles, the clock */
	"add_key",
	"request_key",
	"keyctl",
	"open_by_handle_at",
	"name_to_handle_at",
	"settimeofday",
	"clock_settime",
};

/* clone with any of these flags: EPERM (flags: its first argument, on x86-64 and most). */
static const unsigned long clone_new[] = {
	CLONE_NEWUSER, CLONE_NEWNS,  CLONE_NEWPID,    CLONE_NEWNET,
	CLONE_NEWUTS,  CLONE_NEWIPC, CLONE_NEWCGROUP,
};

static int add_rules(scmp_filter_ctx ctx)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(denied); i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);

		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
#if defined(__SANITIZE_ADDRESS__)
		/* LeakSanitizer stops the world with ptrace at exit. */
		if (!strcmp(denied[i], "ptrace"))
			continue;
#endif
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	}
	/* Rules for one call with different conditions: any that matches applies. */
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(clone_new); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, clone_new[i], clone_new[i]));
	if (r >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	return r;
}

int sandbox_apply(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;

	if (!ctx) {
		log_error("sandbox: cannot make a seccomp filter");
		return -ENOMEM;
	}
	r = add_rules(ctx);
	if (r >= 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r < 0) {
		log_error("sandbox: loading the seccomp filter failed: %s", strerror(-r));
		return r;
	}
	log_info("sandbox: seccomp filter loaded (%zu system calls denied, clone3 ENOSYS, no "
		 "new namespaces)",
		 ARRAY_SIZE(denied));
	return 0;
}
