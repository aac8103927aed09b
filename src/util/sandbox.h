/* SPDX-License-Identifier: MIT */
/*
 * sandbox: a seccomp deny-list for the daemon (docs/daemon.md, "Least privilege"). After
 * privs_drop and before any thread starts (a filter is inherited by threads made later), the
 * system calls the daemon never makes and an attacker who took it over would want fail with
 * EPERM: running programs (execve, execveat), reading or steering other processes (ptrace,
 * process_vm_readv/writev, pidfd_getfd), new namespaces (unshare, setns, clone with a
 * CLONE_NEW* flag), mounts, kernel modules and kexec, bpf, perf_event_open, userfaultfd,
 * io_uring, keyrings, file handles, the clock, swap, reboot and acct. clone3 fails with ENOSYS
 * instead: its flags are in memory, where a filter cannot read them, and glibc then falls
 * back to clone, whose flags it can.
 *
 * A deny-list, not an allow-list, on purpose: the daemon's libraries (GLib, libnice, gRPC,
 * libwebsockets, OpenSSL, libnftables, glibc's resolver and NSS) change which calls they make
 * between versions and on rare paths; a call missing from an allow-list would break the daemon
 * on such a path. What is denied here none of them needs.
 */
#ifndef WICE_UTIL_SANDBOX_H
#define WICE_UTIL_SANDBOX_H

/*
 * Loads the filter into this thread (and the threads it starts later). Needs no_new_privs or
 * CAP_SYS_ADMIN. 0 or -errno (logged).
 */
int sandbox_apply(void);

#endif
