/*
 * The process the container runs, set up after the rootfs: its console (R3: the pty verified), sysctls,
 * rlimits, scheduling and memory attributes, LSM labels (through the private procfs, never a path), the user
 * switch with the capability sets (empty inheritable unless asked), the seccomp filter and its listener, the
 * cwd (R4: checked to be inside the root).
 */
#include "executor_int.h"
#include "fdmsg.h"

#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>

void setup_console(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	struct stat st;
	int master, slave, target, tree, unlock = 0;
	char payload[] = "/dev/ptmx";

	master = open_in_root(c->rootfd, "/dev/ptmx", O_RDWR | O_NOCTTY);
	if (master < 0)
		fail(c, S_CONSOLE, "/dev/ptmx");
	if (fstat(master, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 || minor(st.st_rdev) != 2)
		fail_errno(c, S_CONSOLE, ENODEV, "/dev/ptmx");
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		fail(c, S_CONSOLE, "/dev/ptmx");
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		fail(c, S_CONSOLE, "pty slave");
	/* R3: the slave we hand out and bind must be a pts device (major 136..143). */
	if (fstat(slave, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) < 136 || major(st.st_rdev) > 143)
		fail_errno(c, S_CONSOLE, ENODEV, "pty slave");
	/* The terminal is the process's, as runc makes it (engines with -t -u rely on it): only the owner changes,
	 * devpts' gid= stays. As runc, an owner the user namespace cannot map (EINVAL, EPERM) or a read-only
	 * /dev (EROFS) leaves it as it is rather than failing the start. */
	if (st.st_uid != p->uid && syscall(SYS_fchown, slave, p->uid, (gid_t)-1) < 0 && errno != EINVAL &&
	    errno != EPERM && errno != EROFS)
		fail(c, S_CONSOLE, "pty slave owner");
	if (p->console_rows || p->console_cols) {
		struct winsize ws;
		memset(&ws, 0, sizeof(ws));
		ws.ws_row = (unsigned short)p->console_rows;
		ws.ws_col = (unsigned short)p->console_cols;
		if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
			fail(c, S_CONSOLE, "consoleSize");
	}
	/* /dev/console is the slave itself, bound by fd: no path in the container is trusted (CVE-2025-52565).
	 * An exec'd process gets a terminal of its own; the container's console stays the init's. */
	if (!(p->flags & PF_EXEC)) {
		tree = (int)syscall(SYS_open_tree, slave, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
		if (tree < 0)
			fail(c, S_CONSOLE, "/dev/console");
		/* An image's /dev/console -> elsewhere would get the pty bound over its target (crun's CVE-2026-88264). */
		refuse_symlink(c, "/dev/console", S_CONSOLE);
		target = resolve_target(c, c->rootfd, "/dev/console", 1, S_CONSOLE);
		if (syscall(SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) <
		    0)
			fail(c, S_CONSOLE, "/dev/console");
		syscall(SYS_close, tree);
		syscall(SYS_close, target);
	}

	if (send_with_fd(p->console_socket, payload, sizeof(payload) - 1, master) < 0)
		fail(c, S_CONSOLE, "console socket");
	syscall(SYS_close, master);
	syscall(SYS_close, p->console_socket);
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		fail(c, S_CONSOLE, "TIOCSCTTY");
	if (syscall(SYS_dup3, slave, 0, 0) < 0 || syscall(SYS_dup3, slave, 1, 0) < 0 ||
	    syscall(SYS_dup3, slave, 2, 0) < 0)
		fail(c, S_CONSOLE, "stdio");
	if (slave > 2)
		syscall(SYS_close, slave);
}

void apply_sysctls(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	uint32_t i;
	for (i = 0; i < p->nsysctl; i++) {
		char path[4 + TSRT_PATH_MAX]; /* "sys/" and a key the decoder held to PATH_MAX */
		int fd;
		sappend(path, sizeof(path), sappend(path, sizeof(path), 0, "sys/"), p->sysctl[i].key);
		fd = (int)sys_openat2(c->procfd, path, O_WRONLY,
				      RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH | RESOLVE_NO_XDEV);
		if (fd < 0)
			fail(c, S_SYSCTL, p->sysctl[i].key);
		write_all(c, fd, p->sysctl[i].value, slen(p->sysctl[i].value), S_SYSCTL, p->sysctl[i].key);
		syscall(SYS_close, fd);
	}
}

/* ---- process attributes ---- */

void apply_rlimits(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	uint32_t i;
	for (i = 0; i < p->nrlimits; i++) {
		struct rlimit64 {
			uint64_t cur, max;
		} rl = { p->rlimits[i].soft, p->rlimits[i].hard };
		if (syscall(SYS_prlimit64, 0, p->rlimits[i].resource, &rl, NULL) < 0) {
			char d[32];
			sappend_u64(d, sizeof(d), sappend(d, sizeof(d), 0, "resource "), p->rlimits[i].resource, 0);
			fail(c, S_RLIMIT, d);
		}
	}
}

/* Made in the new network namespace, an AF_INET socket reaches its "lo", which starts down. */
void loopback_up(struct ctx *c)
{
	struct ifreq req;
	int fd = (int)syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail(c, S_LOOPBACK, "lo");
	memset(&req, 0, sizeof(req));
	memcpy(req.ifr_name, "lo", 3);
	if (syscall(SYS_ioctl, fd, SIOCGIFFLAGS, &req) < 0)
		fail(c, S_LOOPBACK, "lo");
	req.ifr_flags |= IFF_UP;
	if (syscall(SYS_ioctl, fd, SIOCSIFFLAGS, &req) < 0)
		fail(c, S_LOOPBACK, "lo");
	syscall(SYS_close, fd);
}

void apply_oom_score_adj(struct ctx *c)
{
	char v[24];
	size_t n = sappend_i64(v, sizeof(v), 0, c->plan->oom_score_adj);
	int fd = proc_open(c, "self/oom_score_adj", O_WRONLY);
	if (fd < 0)
		fail(c, S_OOM, "oom_score_adj");
	write_all(c, fd, v, n, S_OOM, "oom_score_adj");
	syscall(SYS_close, fd);
}

void set_affinity(struct ctx *c, const unsigned char *mask, uint32_t len, const char *which)
{
	if (len && syscall(SYS_sched_setaffinity, 0, len, mask) < 0)
		fail(c, S_AFFINITY, which);
}

/* Scheduling, I/O priority, personality and memory policy survive execve: set them while we still hold the
 * privileges some of them need (CAP_SYS_NICE for real-time policies, CAP_SYS_ADMIN for the RT I/O class). */
void apply_process_attributes(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	if (p->has_personality && syscall(SYS_personality, (unsigned long)p->personality) < 0)
		fail(c, S_PERSONALITY, "personality");
	if (p->has_mempolicy) {
		unsigned long maxnode = p->mempolicy_nodes_len ? (unsigned long)p->mempolicy_nodes_len * 8 + 1 : 0;
		if (syscall(SYS_set_mempolicy, (int)p->mempolicy_mode, p->mempolicy_nodes, maxnode) < 0)
			fail(c, S_MEMPOLICY, "memoryPolicy");
	}
	/* IOPRIO_WHO_PROCESS, ourselves. */
	if (p->has_ioprio && syscall(SYS_ioprio_set, 1, 0, (int)p->ioprio) < 0)
		fail(c, S_IOPRIO, "ioPriority");
	if (p->has_sched) {
		/* struct sched_attr in its first (48-byte) layout: the spec carries no utilisation clamps. */
		struct {
			uint32_t size, policy;
			uint64_t flags;
			int32_t nice;
			uint32_t priority;
			uint64_t runtime, deadline, period;
		} attr;
		memset(&attr, 0, sizeof(attr));
		attr.size = sizeof(attr);
		attr.policy = p->sched_policy;
		attr.flags = p->sched_flags;
		attr.nice = p->sched_nice;
		attr.priority = p->sched_priority;
		attr.runtime = p->sched_runtime;
		attr.deadline = p->sched_deadline;
		attr.period = p->sched_period;
		if (syscall(SYS_sched_setattr, 0, &attr, 0) < 0)
			fail(c, S_SCHED, "scheduler");
	}
}

/* The LSM labels take effect at our execve; written through the private procfs handle, never a path. */
void apply_lsm_labels(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	if (p->apparmor_profile) {
		/* One write: the kernel reads a page of it and refuses a second write to the same open file. */
		char buf[4096 + 1];
		size_t n = sappend(buf, sizeof(buf), sappend(buf, sizeof(buf), 0, "exec "), p->apparmor_profile);
		if (n < 5 + slen(p->apparmor_profile))
			fail_errno(c, S_LSM, E2BIG, p->apparmor_profile);
		/* The LSM-specific file since Linux 5.8; attr/exec when AppArmor is the only LSM on older kernels. */
		int fd = proc_open(c, "self/attr/apparmor/exec", O_WRONLY);
		if (fd < 0 && errno == ENOENT)
			fd = proc_open(c, "self/attr/exec", O_WRONLY);
		if (fd < 0)
			fail(c, S_LSM, p->apparmor_profile);
		write_all(c, fd, buf, n, S_LSM, p->apparmor_profile);
		syscall(SYS_close, fd);
	}
	if (p->selinux_label) {
		int fd = proc_open(c, "self/attr/exec", O_WRONLY);
		if (fd < 0)
			fail(c, S_LSM, p->selinux_label);
		write_all(c, fd, p->selinux_label, slen(p->selinux_label), S_LSM, p->selinux_label);
		syscall(SYS_close, fd);
	}
}

/* Bounding set, groups and ids. Permitted capabilities survive the id change (keepcaps) until
 * set_capabilities(); *held receives what we had before it. */
void switch_user(struct ctx *c, struct __user_cap_data_struct held[2])
{
	const struct tsrt_plan *p = c->plan;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	int cap;

	if (syscall(SYS_capget, &hdr, held) < 0)
		fail(c, S_CAPS, "capget");
	if (syscall(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fail(c, S_CAPS, "keepcaps");
	for (cap = 0; cap < 64; cap++) {
		if (p->cap_bounding & (1ULL << cap))
			continue;
		if (syscall(SYS_prctl, PR_CAPBSET_READ, cap, 0, 0, 0) <= 0)
			continue; /* beyond the kernel's last cap, or already gone */
		if (syscall(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			fail(c, S_CAPS, "bounding set");
	}
	if (p->flags & PF_SETGROUPS) {
		/* gid_t is the plan's u32. */
		if (syscall(SYS_setgroups, p->ngroups, p->groups) < 0)
			fail(c, S_GROUPS, "additionalGids");
	} else if (p->ngroups) {
		fail_errno(c, S_GROUPS, EPERM, "additionalGids (setgroups is denied in this user namespace)");
	}
	if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
		fail(c, S_USER, "gid");
	if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
		fail(c, S_USER, "uid");
}

void set_capabilities(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	int cap;

	memset(data, 0, sizeof(data));
	data[0].effective = (uint32_t)p->cap_effective;
	data[1].effective = (uint32_t)(p->cap_effective >> 32);
	data[0].permitted = (uint32_t)p->cap_permitted;
	data[1].permitted = (uint32_t)(p->cap_permitted >> 32);
	data[0].inheritable = (uint32_t)p->cap_inheritable;
	data[1].inheritable = (uint32_t)(p->cap_inheritable >> 32);
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail(c, S_CAPS, "capset");
	if (syscall(SYS_prctl, PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		fail(c, S_CAPS, "keepcaps");
	for (cap = 0; cap < 64; cap++) {
		/* As runc: an ambient cap missing from permitted or inheritable is simply not raised. */
		if (p->cap_ambient & (1ULL << cap))
			syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
	}
}

/* A new non-root uid clears the effective set even with keepcaps; the permitted set is still ours. */
void raise_permitted(struct ctx *c, const struct __user_cap_data_struct held[2])
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memcpy(data, held, sizeof(data));
	data[0].effective = data[0].permitted;
	data[1].effective = data[1].permitted;
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail(c, S_SECCOMP, "capset");
}

/* Sends the filter's listener fd to the runtime, which passes it on to listenerPath. Until the runtime
 * answers, no notified syscall may run: nobody could answer it yet (sendmsg itself may not be notified;
 * plan/seccomp.ts refuses that). */
static void hand_over_listener(struct ctx *c, int listener)
{
	struct tsrt_msg m;

	memset(&m, 0, sizeof(m));
	m.type = MSG_SECCOMP;
	if (send_with_fd(c->sock, &m, sizeof(m), listener) < 0)
		fail(c, S_SECCOMP, "seccomp listener");
	syscall(SYS_close, listener);
	expect(c, MSG_ACK, S_SECCOMP);
}

/* After this, every syscall we make meets the container's profile: callers keep what follows to a few
 * (see stage2), all in every engine's default allow-list. */
void load_seccomp(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	struct sock_fprog prog = { (unsigned short)(p->seccomp_len / 8), (struct sock_filter *)p->seccomp };
	long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, &prog);
	if (listener < 0)
		fail(c, S_SECCOMP, "seccomp");
	if (p->seccomp_flags & TSRT_SECCOMP_FLAG_NEW_LISTENER)
		hand_over_listener(c, (int)listener);
}

/* Before the user switch: a cwd only root can enter is entered now, as runc does. 1 when it was; 0 when only
 * permissions stopped it (the process's user may still be allowed, after the switch); any other error fails. */
int enter_cwd_privileged(struct ctx *c)
{
	if (syscall(SYS_chdir, c->plan->cwd) == 0)
		return 1;
	if (errno != EACCES && errno != EPERM)
		fail(c, S_CWD, c->plan->cwd);
	return 0;
}

/* After the user switch: enter the cwd unless that was done already, and check where we are either way. */
void enter_cwd(struct ctx *c, int entered)
{
	char buf[4096];
	long n;
	if (!entered && syscall(SYS_chdir, c->plan->cwd) < 0)
		fail(c, S_CWD, c->plan->cwd);
	/* R4 / CVE-2024-21626: a cwd reached through a leaked fd is outside the root; the kernel says so. */
	n = syscall(SYS_getcwd, buf, sizeof(buf));
	if (n < 0)
		fail(c, S_CWD, c->plan->cwd);
	if (buf[0] != '/') {
		/* Name the path the config gave: the kernel's answer here is "(unreachable)/...", which names nothing. */
		char d[TSRT_DETAIL_MAX];
		sappend(d, sizeof(d), sappend(d, sizeof(d), 0, c->plan->cwd), " is outside the container root");
		fail_errno(c, S_CWD, ENOENT, d);
	}
}
