/*
 * The executor: what runs in the process cloned from the runtime, up to the user's execve.
 *
 * The runtime process is multi-threaded (a JS engine), so namespace work cannot happen there. The runtime
 * clones a fork-like child that at once execs this code as its own small static program (tsrt-executor) from a
 * sealed memfd (R5: a waiting init is never a copy of the runtime's binary; see main.c). The rules here still
 * hold: raw syscalls only, no malloc, no stdio, no glibc id-changing wrappers, buffers on the stack, every
 * failure reported as one fixed-size {step, errno, detail} message. The pid-namespace fork below is a raw
 * clone3, after which glibc's cached state (tid, locks) no longer describes the process; and the waiting init
 * should stay this small. No policy lives here: the plan already says what to do.
 *
 * stage1: fds, namespaces (joined, then made), the pid-namespace fork. stage2: rootfs, pivot, process set-up,
 * the wait for `start`, exec. README.md walks through both with the messages they exchange.
 */
#include "executor.h"
#include "executor_int.h"

#include <linux/mount.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>

static void reset_signals(void)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} sa;
	int sig;
	memset(&sa, 0, sizeof(sa)); /* SIG_DFL */
	for (sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		syscall(SYS_rt_sigaction, sig, &sa, NULL, 8);
	}
}

static int cmp_int(int a, int b)
{
	return a < b ? -1 : a > b;
}

/* Close every fd except the allowlist (sorted in place), right away: the waiting init must not pin the
 * runtime's fds. */
static void close_other_fds(int32_t *keep, int nkeep, int preserve)
{
	int32_t *sorted = keep;
	int n = 0, i, j, from;
	for (i = 0; i < nkeep; i++)
		if (keep[i] >= 3 + preserve)
			sorted[n++] = keep[i];
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && cmp_int(sorted[j - 1], sorted[j]) > 0; j--) {
			int t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	from = 3 + preserve;
	for (i = 0; i < n; i++) {
		if (sorted[i] > from)
			syscall(SYS_close_range, from, sorted[i] - 1, 0);
		if (sorted[i] + 1 > from)
			from = sorted[i] + 1;
	}
	syscall(SYS_close_range, from, ~0U, 0);
}

static void write_timens_offsets(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	char buf[128];
	size_t n = 0;
	n = sappend(buf, sizeof(buf), n, "monotonic ");
	n = sappend_i64(buf, sizeof(buf), n, p->time_monotonic_sec);
	n = sappend(buf, sizeof(buf), n, " ");
	n = sappend_u64(buf, sizeof(buf), n, p->time_monotonic_nsec, 0);
	n = sappend(buf, sizeof(buf), n, "\nboottime ");
	n = sappend_i64(buf, sizeof(buf), n, p->time_boottime_sec);
	n = sappend(buf, sizeof(buf), n, " ");
	n = sappend_u64(buf, sizeof(buf), n, p->time_boottime_nsec, 0);
	n = sappend(buf, sizeof(buf), n, "\n");
	write_all(c, c->timens_fd, buf, n, S_TIMENS, "timens_offsets");
	syscall(SYS_close, c->timens_fd);
	c->timens_fd = -1;
}

static void join_namespaces(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	int fds[8]; /* one per namespace type: the decoder admits each type once */
	uint32_t i, n = p->njoin;
	int pass;
	if (n > sizeof(fds) / sizeof(fds[0]))
		fail_errno(c, S_JOIN_NS, EINVAL, "namespaces to join");
	/* Open every path first: after joining a mount namespace, paths would resolve somewhere else. */
	for (i = 0; i < n; i++) {
		fds[i] = (int)syscall(SYS_openat, AT_FDCWD, p->join[i].path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			fail(c, S_JOIN_NS, p->join[i].path);
	}
	/* The user namespace first (it grants the rights for the rest), the mount namespace last. */
	for (pass = 0; pass < 3; pass++) {
		for (i = 0; i < n; i++) {
			uint32_t t = p->join[i].type;
			int this_pass = t == CLONE_NEWUSER ? 0 : t == CLONE_NEWNS ? 2 : 1;
			if (this_pass != pass)
				continue;
			if (syscall(SYS_setns, fds[i], t) < 0)
				fail(c, S_JOIN_NS, p->join[i].path);
			syscall(SYS_close, fds[i]);
		}
	}
}

/*
 * exec: every namespace of the container init that is not already ours, in one setns(pidfd) call. The kernel
 * joins the user namespace first (its capabilities then grant the rest) and takes every namespace from the
 * same live process, so no /proc/<pid>/ns path can be swapped or reused by another pid in between. The root
 * and cwd become the init's mount namespace root, i.e. the container's (pivoted) rootfs.
 */
static void join_init_namespaces(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	if (p->join_nsflags && syscall(SYS_setns, p->join_pidfd, p->join_nsflags) < 0)
		fail(c, S_JOIN_NS, "the container init's namespaces");
	syscall(SYS_close, p->join_pidfd);
	/* Without the mount namespace (a container sharing the runtime's), the root is still the host's: the
	 * init's root is where the process must run. */
	if (!(p->join_nsflags & CLONE_NEWNS))
		fail_errno(c, S_JOIN_NS, EINVAL, "the container has no mount namespace of its own");
}

static void stage2(struct ctx *c) __attribute__((noreturn));

static void stage2(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	struct __user_cap_data_struct held[2];
	char path[4096];
	int entered;

	expect(c, MSG_GO, S_SETUP);
	if ((p->flags & PF_NEW_CGROUPNS) && syscall(SYS_unshare, CLONE_NEWCGROUP) < 0)
		fail(c, S_CGROUPNS, "cgroup namespace");
	if (syscall(SYS_setsid) < 0)
		fail(c, S_SETUP, "setsid");
	/* KEYCTL_JOIN_SESSION_KEYRING with no name: an anonymous keyring, so no host keys are reachable. */
	if ((p->flags & PF_NEW_KEYRING) && syscall(SYS_keyctl, 1, NULL, 0, 0, 0) < 0 && errno != ENOSYS)
		fail(c, S_SETUP, "session keyring");
	syscall(SYS_umask, 0);
	if ((p->flags & PF_SET_HOSTNAME) && syscall(SYS_sethostname, p->hostname, slen(p->hostname)) < 0)
		fail(c, S_HOSTNAME, "hostname");
	if ((p->flags & PF_SET_DOMAINNAME) && syscall(SYS_setdomainname, p->domainname, slen(p->domainname)) < 0)
		fail(c, S_HOSTNAME, "domainname");

	if (p->flags & PF_NEW_MOUNTNS) {
		setup_rootfs(c);
		if (p->flags & PF_SYNC_PREPIVOT) {
			send_msg(c->sock, MSG_PREPIVOT, 0, 0, 0, "");
			expect(c, MSG_ACK, S_PIVOT);
		}
		/* Still before pivot_root: the host /dev/null we mask with can only be cloned while its mount is in
		 * our namespace, and every path is resolved under the rootfs fd anyway. */
		apply_readonly_paths(c);
		apply_masked_paths(c);
		/* R4: the host's /dev/null was only needed for the masks; the waiting init keeps no host file. */
		syscall(SYS_close, c->devnull);
		c->devnull = -1;
		pivot(c);
	} else {
		open_private_proc(c);
		c->rootfd = (int)syscall(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (p->flags & PF_SYNC_PREPIVOT) {
			send_msg(c->sock, MSG_PREPIVOT, 0, 0, 0, "");
			expect(c, MSG_ACK, S_PIVOT);
		}
	}
	if (p->flags & PF_TERMINAL)
		setup_console(c);
	if (p->flags & PF_LOOPBACK_UP)
		loopback_up(c);
	apply_sysctls(c);
	if (p->flags & PF_NEW_MOUNTNS) {
		uint32_t i;
		/* A read-only tmpfs or /dev only now: devices, /dev/pts and the console had to be made in it. */
		for (i = 0; i < p->nsteps; i++)
			if (p->steps[i].kind == STEP_SETATTR && (p->steps[i].flags & MF_DEFERRED))
				do_setattr(c, &p->steps[i]);
		if ((p->flags & PF_READONLY_ROOT) && set_attrs(c->rootfd, MOUNT_ATTR_RDONLY, 0, 0, 0) < 0)
			fail(c, S_ROOT_RO, "/");
	}
	if (p->flags & PF_OOM_SCORE_ADJ)
		apply_oom_score_adj(c);
	apply_rlimits(c);
	apply_process_attributes(c);
	apply_lsm_labels(c);
	entered = enter_cwd_privileged(c);
	switch_user(c, held);
	/* The cwd check needs getcwd, which a profile may deny: it runs before any filter. */
	enter_cwd(c, entered);
	/* The init outlives `create`. Reset before any filter, so the profile meets one syscall fewer. */
	syscall(SYS_prctl, PR_SET_PDEATHSIG, 0, 0, 0, 0);
	/* execCPUAffinity.final: after the cgroup moves (a cpuset resets affinity), before a filter may forbid it. */
	set_affinity(c, p->affinity_final, p->affinity_final_len, "execCPUAffinity.final");
	c->helper_waits = (p->flags & PF_START_FIFO) && helper_can_wait(c);
	prepare_exec_fds(c);
	if (p->seccomp_len && !(p->flags & PF_NO_NEW_PRIVS)) {
		/* Without no_new_privs, loading a filter takes CAP_SYS_ADMIN: load it as late as we still have it. */
		raise_permitted(c, held);
		load_seccomp(c);
	}
	set_capabilities(c);
	lookup_executable(c, path, sizeof(path));
	if (p->flags & PF_NO_NEW_PRIVS) {
		if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			fail(c, S_NNP, "no_new_privs");
		/* As late as possible while the runtime is still there to take the listener fd and hear errors: from
		 * here to the user's program only sendto, recvfrom or openat/write/close (the start signal),
		 * rt_sigprocmask and execveat run, then execve in the sealed helper. */
		if (p->seccomp_len)
			load_seccomp(c);
	}

	/* Unheard, the runtime would wait for this forever: a config's filter may deny sendto (or fake success with
	 * errnoRet 0), or the runtime died since PR_SET_PDEATHSIG was reset. Give up; the runtime sees EOF. */
	if (send_msg(c->sock, MSG_READY, 0, 0, 0, "") != (long)sizeof(struct tsrt_msg))
		die_exit(1);
	wait_for_start(c, path);
	exec_user_process(c, path, SHIM_MAGIC);
	die_exit(1);
}

/* The init moves itself into the container's v1 cgroups through the tasks files the runtime opened: "0" moves
 * the calling thread (we have no other) and takes no global lock, where the runtime's write of our pid to
 * cgroup.procs waits for an RCU grace period (15 to 24 ms here). Done by the process that becomes the init,
 * after the fork into a new pid namespace, so that a pids limit of 1 still holds: nothing else is charged. */
static void join_cgroups(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	uint32_t i;
	for (i = 0; i < p->ncgroup_tasks; i++) {
		if (syscall(SYS_write, p->cgroup_tasks[i], "0", 1) != 1)
			fail(c, S_CGROUP_JOIN, "tasks");
		syscall(SYS_close, p->cgroup_tasks[i]);
	}
}

static void stage1(struct ctx *c) __attribute__((noreturn));

static void stage1(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	int32_t *keep = p->keep_fds; /* 8 + nidmaps + ncgroup_tasks entries */
	int nkeep = 0;
	uint32_t i;
	uint64_t flags;
	int need_fork;

	/* Opened while our /proc files are ours: not dumpable, they belong to the host's root, which a new user
	 * namespace's root (rootless) is not. main() made us non-dumpable before anything else, so we are dumpable
	 * again for this one open only, still in the runtime's namespaces where no container process can reach us.
	 * The write later is checked against the opener's credentials, which own the user namespace the time
	 * namespace will belong to. */
	c->timens_fd = -1;
	if (p->flags & PF_NEW_TIMENS) {
		syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0);
		c->timens_fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
		if (c->timens_fd < 0)
			fail(c, S_TIMENS, "timens_offsets");
	}
	/* R5: nothing in a container may ptrace us or open our /proc files until the user's execve (main() did
	 * this first; repeated here so stage1 holds the rule on its own). */
	syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	reset_signals();
	keep[nkeep++] = c->sock;
	keep[nkeep++] = c->shim_fd;
	if (c->timens_fd >= 0)
		keep[nkeep++] = c->timens_fd;
	if (p->join_pidfd >= 0)
		keep[nkeep++] = p->join_pidfd;
	if (p->fifo_fd >= 0)
		keep[nkeep++] = p->fifo_fd;
	if (p->console_socket >= 0)
		keep[nkeep++] = p->console_socket;
	for (i = 0; i < p->nidmaps; i++)
		keep[nkeep++] = p->idmaps[i].userns_fd;
	for (i = 0; i < p->ncgroup_tasks; i++)
		keep[nkeep++] = p->cgroup_tasks[i];
	close_other_fds(keep, nkeep, (int)p->preserve_fds);
	/* execCPUAffinity.initial: from the start, so namespace and rootfs set-up already runs there. */
	set_affinity(c, p->affinity_initial, p->affinity_initial_len, "execCPUAffinity.initial");
	prepare_idmapped_trees(c);

	join_namespaces(c);
	if (p->flags & PF_EXEC)
		join_init_namespaces(c);
	if (p->flags & PF_NEW_USERNS) {
		if (syscall(SYS_unshare, CLONE_NEWUSER) < 0)
			fail(c, S_USERNS, "user namespace");
		/* The runtime writes our maps through /proc/<pid>: it must be able to open them meanwhile. */
		syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0);
		send_msg(c->sock, MSG_USERNS, 0, 0, (int)syscall(SYS_getpid), "");
		expect(c, MSG_ACK, S_USERNS);
		syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);
		/* Become the namespace's root when it is mapped; otherwise stay who we are (own-id mappings). */
		if (syscall(SYS_setresgid, 0, 0, 0) < 0 && errno != EINVAL)
			fail(c, S_USERNS, "setresgid");
		if (syscall(SYS_setresuid, 0, 0, 0) < 0 && errno != EINVAL)
			fail(c, S_USERNS, "setresuid");
	}
	flags = p->unshare_flags;
	if (p->flags & PF_NEW_TIMENS)
		flags |= CLONE_NEWTIME;
	if (flags && syscall(SYS_unshare, flags) < 0)
		fail(c, S_UNSHARE, "namespaces");
	if (p->flags & PF_NEW_TIMENS)
		write_timens_offsets(c);

	/* New pid and time namespaces only apply to children: fork once more, as a sibling of ourselves. */
	need_fork = (p->flags & (PF_NEW_PIDNS | PF_NEW_TIMENS)) != 0;
	if (p->join_nsflags & (CLONE_NEWPID | CLONE_NEWTIME))
		need_fork = 1;
	if (!need_fork) {
		for (i = 0; i < p->njoin; i++)
			if (p->join[i].type == CLONE_NEWPID || p->join[i].type == CLONE_NEWTIME)
				need_fork = 1;
	}
	if (need_fork) {
		struct clone_args ca;
		long pid;
		memset(&ca, 0, sizeof(ca));
		ca.flags = CLONE_PARENT;
		ca.exit_signal = 0; /* clone3 insists: CLONE_PARENT inherits our SIGCHLD exit signal */
		pid = syscall(SYS_clone3, &ca, sizeof(ca));
		if (pid < 0)
			fail(c, S_FORK, "clone");
		if (pid > 0) {
			send_msg(c->sock, MSG_PID, 0, 0, (int)pid, "");
			die_exit(0);
		}
		/* The runtime's thread is our parent now too: die with it until set-up is done. */
		syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		join_cgroups(c);
	} else {
		join_cgroups(c);
		send_msg(c->sock, MSG_PID, 0, 0, (int)syscall(SYS_getpid), "");
	}
	stage2(c);
}

void executor_run(const struct tsrt_plan *plan, int sock, int shim_fd)
{
	struct ctx c;
	memset(&c, 0, sizeof(c));
	c.plan = plan;
	c.sock = sock;
	c.shim_fd = shim_fd;
	c.procfd = -1;
	c.devnull = -1;
	c.rootfd = -1;
	c.rootlen = (int)slen(plan->rootfs);
	stage1(&c);
}
