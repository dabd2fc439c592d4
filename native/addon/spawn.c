/*
 * The runtime's half of design B: clone a fork-like child and have it exec the sealed executor at once, so
 * the process that becomes a container's init (or an exec'd process) never runs the runtime's own image
 * beyond a handful of raw syscalls (R5).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../executor/executor.h"
#include "../executor/plan.h"
#include "../executor/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

/* The plan bytes in a sealed memfd: the executor reads them back whatever their size (a pipe would need a
 * writer running beside the clone), and no one can change them after the runtime decoded them. */
static int plan_memfd(const unsigned char *bytes, size_t len, int *err)
{
	size_t off = 0;
	int fd = (int)syscall(SYS_memfd_create, "tsrt-plan", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
	if (fd < 0 && errno == EINVAL) /* before Linux 6.3 */
		fd = (int)syscall(SYS_memfd_create, "tsrt-plan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, bytes + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			*err = w < 0 ? errno : EIO;
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
		*err = errno;
		close(fd);
		return -1;
	}
	return fd;
}

int executor_spawn(const struct tsrt_plan *plan, const unsigned char *plan_bytes, size_t plan_len, int executor_fd,
		   int shim_fd, int *pidfd_out, int *sock_out, int *err_out, const char **what_out)
{
	int sp[2], pidfd = -1, plan_fd, *keep, nkeep = 0, i;
	unsigned int inherit_upto = 3 + plan->preserve_fds, fd;
	char sock_arg[16], plan_arg[16], shim_arg[16];
	char *argv[] = { EXECUTOR_MAGIC, sock_arg, plan_arg, shim_arg, NULL };
	char *envp[] = { NULL };
	struct tsrt_msg failed;
	struct clone_args ca;
	sigset_t all, old;
	long pid;
	uint32_t k;

	/* Every fd the executor uses besides stdio and the preserved ones: what stage1 keeps, plus the plan. Made
	 * here, before the clone: the child only reads it. */
	keep = calloc(8 + (size_t)plan->nidmaps + (size_t)plan->ncgroup_tasks, sizeof(*keep));
	if (!keep) {
		*err_out = ENOMEM;
		*what_out = "fd list for the executor";
		return -1;
	}
	plan_fd = plan_memfd(plan_bytes, plan_len, err_out);
	if (plan_fd < 0) {
		*what_out = "memfd for the launch plan";
		free(keep);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		*err_out = errno;
		*what_out = "socketpair";
		close(plan_fd);
		free(keep);
		return -1;
	}
	snprintf(sock_arg, sizeof(sock_arg), "%d", sp[1]);
	snprintf(plan_arg, sizeof(plan_arg), "%d", plan_fd);
	snprintf(shim_arg, sizeof(shim_arg), "%d", shim_fd);
	keep[nkeep++] = sp[1];
	keep[nkeep++] = plan_fd;
	keep[nkeep++] = shim_fd;
	if (plan->console_socket >= 0)
		keep[nkeep++] = plan->console_socket;
	if (plan->fifo_fd >= 0)
		keep[nkeep++] = plan->fifo_fd;
	if (plan->join_pidfd >= 0)
		keep[nkeep++] = plan->join_pidfd;
	for (k = 0; k < plan->nidmaps; k++)
		keep[nkeep++] = plan->idmaps[k].userns_fd;
	for (k = 0; k < plan->ncgroup_tasks; k++)
		keep[nkeep++] = plan->cgroup_tasks[k];
	/* What the child reports if the exec itself fails (it can only fill in errno). */
	memset(&failed, 0, sizeof(failed));
	failed.type = MSG_ERROR;
	failed.step = S_SETUP;
	snprintf(failed.detail, sizeof(failed.detail), "execveat of the sealed executor");

	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_PIDFD;
	ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
	ca.exit_signal = SIGCHLD;
	/* No JS-runtime signal handler may run in the child: block everything across the clone. The mask survives
	 * the exec; the executor unblocks signals only for the user's execve. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0) {
		/* A fork of a multi-threaded process: raw syscalls on prepared data only, up to the exec. */
		syscall(SYS_close, sp[0]);
		syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
		/* R4: none of the runtime's fds reaches the executor, even one the runtime inherited without
		 * close-on-exec; then exactly the ones it needs are let through. */
		syscall(SYS_close_range, inherit_upto, ~0U, CLOSE_RANGE_CLOEXEC);
		for (fd = 0; fd < inherit_upto; fd++)
			syscall(SYS_fcntl, fd, F_SETFD, 0);
		for (i = 0; i < nkeep; i++)
			syscall(SYS_fcntl, keep[i], F_SETFD, 0);
		syscall(SYS_execveat, executor_fd, "", argv, envp, AT_EMPTY_PATH);
		failed.err = errno;
		syscall(SYS_sendto, sp[1], &failed, sizeof(failed), MSG_NOSIGNAL, NULL, 0);
		syscall(SYS_exit_group, 1);
	}
	*err_out = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(keep);
	close(sp[1]);
	close(plan_fd);
	if (pid < 0) {
		*what_out = "clone3";
		close(sp[0]);
		return -1;
	}
	*pidfd_out = pidfd;
	*sock_out = sp[0];
	return (int)pid;
}
