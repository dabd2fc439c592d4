/*
 * A program run inside the namespaces of a running container process (createContainer and startContainer
 * hooks), and a path opened in its mount namespace (a bind source its root cannot reach). The JS runtime is
 * multi-threaded and may not setns into a mount or user namespace, so the work happens in a fork-like clone3
 * child that uses raw syscalls only until it execs or exits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdmsg.h"
#include "joined.h"

static void say(int fd, const char *a, const char *b, int err)
{
	const char *parts[4] = { a, b, ": ", strerrorname_np(err) };
	for (int i = 0; i < 4; i++)
		if (parts[i] && syscall(SYS_write, fd, parts[i], strlen(parts[i]))) {
		}
	if (syscall(SYS_write, fd, "\n", 1)) {
	}
}

static void reset_signals(void)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < 65; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	uint64_t none = 0;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
}

/* Becomes the child's exit status as a shell would see it: the code, or death by the same signal. */
static _Noreturn void mirror_status(int status)
{
	if (WIFSIGNALED(status)) {
		syscall(SYS_kill, syscall(SYS_getpid), WTERMSIG(status));
		syscall(SYS_exit_group, 128 + WTERMSIG(status));
	}
	syscall(SYS_exit_group, WEXITSTATUS(status));
	__builtin_unreachable();
}

static _Noreturn void child(const struct joined_spec *s)
{
	reset_signals();
	if (s->stdin_fd != 0 && syscall(SYS_dup2, s->stdin_fd, 0) < 0)
		syscall(SYS_exit_group, 125);
	if (s->output_fd != 1 && syscall(SYS_dup2, s->output_fd, 1) < 0)
		syscall(SYS_exit_group, 125);
	if (s->output_fd != 2 && syscall(SYS_dup2, s->output_fd, 2) < 0)
		syscall(SYS_exit_group, 125);
	/* One call joins every namespace at once, user namespace first, as the kernel orders it for pidfds. */
	if (s->ns_flags && syscall(SYS_setns, s->target_pidfd, s->ns_flags) < 0) {
		say(2, "tsrt: join the container's namespaces", "", errno);
		syscall(SYS_exit_group, 125);
	}
	if (s->ns_flags & CLONE_NEWUSER) {
		/* Act as the container's root when it has one; otherwise stay the unmapped id the kernel gave us. */
		if (syscall(SYS_setresgid, 0, 0, 0) == 0) {
			syscall(SYS_setgroups, 0, NULL);
			syscall(SYS_setresuid, 0, 0, 0);
		}
	}
	if (s->cwd && syscall(SYS_chdir, s->cwd) < 0) {
		say(2, "tsrt: chdir to ", s->cwd, errno);
		syscall(SYS_exit_group, 125);
	}
	/* Before any fork: a copy of the stdin pipe's write end held by the waiting parent would keep the
	 * hook from ever seeing EOF. */
	syscall(SYS_close_range, 3, ~0U, 0);
	if (s->ns_flags & CLONE_NEWPID) {
		/* setns(CLONE_NEWPID) only places our children: fork once more and pass its status through. */
		struct clone_args ca;
		memset(&ca, 0, sizeof(ca));
		ca.exit_signal = SIGCHLD;
		long pid = syscall(SYS_clone3, &ca, sizeof(ca));
		if (pid < 0) {
			say(2, "tsrt: fork into the container's pid namespace", "", errno);
			syscall(SYS_exit_group, 125);
		}
		if (pid > 0) {
			/* The hook must not outlive us when the runtime kills us for its timeout. */
			int status = 0;
			long r;
			do
				r = syscall(SYS_wait4, pid, &status, 0, NULL);
			while (r < 0 && errno == EINTR);
			if (r < 0)
				syscall(SYS_exit_group, 125);
			mirror_status(status);
		}
		syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	}
	/* Last, in the process that execs: the waiting parent above must not meet the container's filter. */
	if (s->no_new_privs && syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		say(2, "tsrt: set no_new_privs", "", errno);
		syscall(SYS_exit_group, 125);
	}
	if (s->seccomp_len) {
		struct sock_fprog prog = { (unsigned short)s->seccomp_len, (struct sock_filter *)s->seccomp };
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, s->seccomp_flags, &prog) < 0) {
			say(2, "tsrt: load the container's seccomp filter", "", errno);
			syscall(SYS_exit_group, 125);
		}
	}
	syscall(SYS_execve, s->path, s->argv, s->envp);
	say(2, "tsrt: exec ", s->path, errno);
	syscall(SYS_exit_group, errno == ENOENT ? 127 : 126);
	__builtin_unreachable();
}

int joined_spawn(const struct joined_spec *s, int *pidfd_out, int *err_out)
{
	struct clone_args ca;
	int pidfd = -1;
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_PIDFD;
	ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
	ca.exit_signal = SIGCHLD;
	long pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0) {
		*err_out = errno;
		return -1;
	}
	if (pid == 0)
		child(s);
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	*pidfd_out = pidfd;
	return (int)pid;
}

/* The child of joined_open: its errno (0 on success) as the payload, the fd attached when there is one. */
static _Noreturn void open_child(int target_pidfd, const char *path, int sock)
{
	struct fdmsg m;
	int err = 0, fd = -1;
	reset_signals();
	if (syscall(SYS_setns, target_pidfd, CLONE_NEWNS) < 0)
		err = errno;
	else if ((fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_PATH | O_CLOEXEC)) < 0)
		err = errno;
	syscall(SYS_exit_group, syscall(SYS_sendmsg, sock, fdmsg_init(&m, &err, sizeof(err), fd < 0 ? FDMSG_NONE : fd),
					MSG_NOSIGNAL) == (long)sizeof(err)
					? 0
					: 1);
	__builtin_unreachable();
}

int joined_open(int target_pidfd, const char *path, int *err_out)
{
	struct clone_args ca;
	struct fdmsg m;
	struct msghdr *mh;
	siginfo_t si;
	int sv[2], pidfd = -1, err = 0, fd = -1;
	long pid, n;
	if (syscall(SYS_socketpair, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		*err_out = errno;
		return -1;
	}
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_PIDFD;
	ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
	ca.exit_signal = SIGCHLD;
	pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0)
		open_child(target_pidfd, path, sv[1]);
	syscall(SYS_close, sv[1]);
	if (pid < 0) {
		*err_out = errno;
		syscall(SYS_close, sv[0]);
		return -1;
	}
	mh = fdmsg_init(&m, &err, sizeof(err), FDMSG_RECV);
	do
		n = syscall(SYS_recvmsg, sv[0], mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == (long)sizeof(err))
		fd = fdmsg_fd(&m);
	syscall(SYS_close, sv[0]);
	while (syscall(SYS_waitid, 3 /* P_PIDFD */, pidfd, &si, WEXITED, NULL) < 0 && errno == EINTR)
		;
	syscall(SYS_close, pidfd);
	if (fd >= 0 && err == 0)
		return fd;
	if (fd >= 0)
		syscall(SYS_close, fd);
	*err_out = n != (long)sizeof(err) ? EPROTO : err ? err : EPROTO;
	return -1;
}
