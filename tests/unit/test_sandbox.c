// SPDX-License-Identifier: MIT
/*
 * The daemon's seccomp deny-list, applied in a child process: what it denies fails with the
 * errno it names, and what the daemon does keeps working (threads, which glibc starts with
 * clone3 and, refused with ENOSYS, with clone; fork; sockets).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <netinet/in.h>
#include "util/sandbox.h"

enum { EXEC, UNSHARE, CLONE_USER, CLONE_NET, CLONE3, BPF, IO_URING, PTRACE, FORK, THREAD, UDP, N };

static const char *const names[N] = {
	"execve",
	"unshare",
	"clone(CLONE_NEWUSER)",
	"clone(CLONE_NEWNET)",
	"clone3",
	"bpf",
	"io_uring_setup",
	"ptrace",
	"fork",
	"pthread_create",
	"UDP socket",
};

static void *thread_main(void *arg)
{
	return arg;
}

/* 0 when the call worked, else its errno. */
static int err_of(long r)
{
	return r < 0 ? errno : 0;
}

static int raw_clone(unsigned long flags)
{
	long r = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);

	if (r == 0)
		_exit(0); /* it should not have worked: the child leaves at once */
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return err_of(r);
}

/* A datagram to ourselves on the loopback: 0, or the errno of what failed. */
static int udp_to_self(struct sockaddr_in *lo)
{
	socklen_t sl = sizeof(*lo);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), r = 0;
	char c;

	if (fd < 0)
		return errno;
	if (bind(fd, (struct sockaddr *)lo, sl) < 0 ||
	    getsockname(fd, (struct sockaddr *)lo, &sl) < 0 ||
	    sendto(fd, "x", 1, 0, (struct sockaddr *)lo, sl) < 0 || recv(fd, &c, 1, 0) != 1)
		r = errno ? errno : EIO;
	close(fd);
	return r;
}

static void probe(int out[N])
{
	char *const argv[] = {"true", NULL}, *const envp[] = {NULL};
	struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	uint64_t clone_args[11] = {0};
	pthread_t t;
	pid_t pid;

	out[EXEC] = err_of(execve("/bin/true", argv, envp));
	out[UNSHARE] = err_of(unshare(CLONE_NEWNET));
	out[CLONE_USER] = raw_clone(CLONE_NEWUSER);
	out[CLONE_NET] = raw_clone(CLONE_NEWNET);
	clone_args[4] = SIGCHLD; /* exit_signal */
	out[CLONE3] = err_of(syscall(SYS_clone3, clone_args, sizeof(clone_args)));
	out[BPF] = err_of(syscall(SYS_bpf, 0, NULL, 0));
	out[IO_URING] = err_of(syscall(SYS_io_uring_setup, 1, NULL));
	out[PTRACE] = err_of(ptrace(PTRACE_TRACEME, 0, NULL, NULL));
	pid = fork();
	if (pid == 0)
		_exit(7);
	out[FORK] = pid < 0 ? errno : 0;
	if (pid > 0) {
		int st = 0;

		waitpid(pid, &st, 0);
		out[FORK] = WIFEXITED(st) && WEXITSTATUS(st) == 7 ? 0 : -1;
	}
	out[THREAD] = pthread_create(&t, NULL, thread_main, NULL);
	if (!out[THREAD])
		pthread_join(t, NULL);
	out[UDP] = udp_to_self(&lo);
}

static void test_deny_list(void **state)
{
	static const int want[N] = {
		[EXEC] = EPERM,	   [UNSHARE] = EPERM, [CLONE_USER] = EPERM, [CLONE_NET] = EPERM,
		[CLONE3] = ENOSYS, [BPF] = EPERM,     [IO_URING] = EPERM,   [PTRACE] = EPERM,
	};
	int got[N], p[2], st = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int out[N];

		close(p[0]);
		if (sandbox_apply() < 0)
			_exit(2);
		probe(out);
		_exit(write(p[1], out, sizeof(out)) == sizeof(out) ? 0 : 3);
	}
	close(p[1]);
	assert_int_equal(read(p[0], got, sizeof(got)), sizeof(got));
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (int i = 0; i < N; i++) {
#if defined(__SANITIZE_ADDRESS__)
		if (i == PTRACE)
			continue; /* allowed under ASan: LeakSanitizer needs it */
#endif
		if (got[i] != want[i])
			fail_msg("%s: errno %d (%s), want %d (%s)", names[i], got[i],
				 strerror(got[i]), want[i], strerror(want[i]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deny_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
