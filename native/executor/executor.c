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
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "copyup.h"
#include "executor.h"
#include "fdmsg.h"
#include "plan.h"
#include "sync.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif
#ifndef MS_REC
#define MS_REC 16384
#define MS_BIND 4096
#define MS_MOVE 8192
#define MS_PRIVATE (1 << 18)
#define MS_SLAVE (1 << 19)
#define MS_SHARED (1 << 20)
#endif
#ifndef MNT_DETACH
#define MNT_DETACH 2
#endif

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* The magic argv[0] the sealed helper (native/init) insists on before it execs anything. */
#define SHIM_MAGIC "tsrt-init:exec"
/* ...and followed by the exec fifo's fd number: wait for `start` on that fifo first. */
#define SHIM_WAIT_MAGIC "tsrt-init:wait:"

struct ctx {
	const struct tsrt_plan *plan;
	int sock;
	int shim_fd;
	int procfd;   /* private procfs handle (R2) */
	int devnull;  /* host /dev/null, verified 1:3 (R3) */
	int rootfd;   /* the container rootfs mount, before pivot_root */
	int rootlen;
	int timens_fd; /* /proc/self/timens_offsets, opened while we were still dumpable */
	int helper_waits; /* the sealed helper waits for `start` (wait_for_start) */
};

/* ---- tiny string helpers (no libc formatting in the child) ---- */

static size_t slen(const char *s)
{
	size_t n = 0;
	while (s && s[n])
		n++;
	return n;
}

/* Appends src to buf (capacity cap), always NUL-terminating; returns the new length. */
static size_t sappend(char *buf, size_t cap, size_t at, const char *src)
{
	while (src && *src && at + 1 < cap)
		buf[at++] = *src++;
	if (at < cap)
		buf[at] = 0;
	return at;
}

static size_t sappend_u64(char *buf, size_t cap, size_t at, uint64_t v, int negative)
{
	char tmp[24];
	int i = 0;
	if (negative && at + 1 < cap)
		buf[at++] = '-';
	do {
		tmp[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i > 0 && at + 1 < cap)
		buf[at++] = tmp[--i];
	if (at < cap)
		buf[at] = 0;
	return at;
}

static size_t sappend_i64(char *buf, size_t cap, size_t at, int64_t v)
{
	return v < 0 ? sappend_u64(buf, cap, at, (uint64_t)(-(v + 1)) + 1, 1) : sappend_u64(buf, cap, at, (uint64_t)v, 0);
}

static int starts_with_dir(const char *path, const char *dir, size_t dirlen)
{
	size_t i;
	for (i = 0; i < dirlen; i++)
		if (path[i] != dir[i])
			return 0;
	return path[dirlen] == 0 || path[dirlen] == '/';
}

/* ---- raw syscalls ---- */

static long sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
	struct open_how how;
	long fd;
	int tries = 0;
	memset(&how, 0, sizeof(how));
	how.flags = flags | O_CLOEXEC;
	how.resolve = resolve;
	if (flags & O_CREAT)
		how.mode = 0644;
	/* With RESOLVE_IN_ROOT or RESOLVE_BENEATH, a ".." walked while any rename or mount happens anywhere on the
	 * host fails with EAGAIN (the kernel cannot prove the walk stayed inside): the caller is meant to retry. */
	do
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN && ++tries < 1000);
	return fd;
}

static void die_exit(int code) __attribute__((noreturn));
static void die_exit(int code)
{
	syscall(SYS_exit_group, code);
	/* Only a seccomp filter that denies exit_group (a config's profile, loaded before the start signal) gets
	 * here. Spinning would hang the runtime on the sync socket forever: a fault kills us without a syscall,
	 * since the kernel forces its signal even when blocked, and the runtime then sees EOF. */
	for (;;)
		__builtin_trap();
}

static long send_msg(int sock, uint32_t type, int step, int err, int pid, const char *detail)
{
	struct tsrt_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.step = step;
	m.err = err;
	m.pid = pid;
	sappend(m.detail, sizeof(m.detail), 0, detail);
	/* MSG_NOSIGNAL: the runtime may be gone; a pending SIGPIPE would kill the init later. */
	return syscall(SYS_sendto, sock, &m, sizeof(m), MSG_NOSIGNAL, NULL, 0);
}

static void fail(struct ctx *c, int step, const char *detail)
{
	send_msg(c->sock, MSG_ERROR, step, errno, 0, detail);
	die_exit(1);
}

static void fail_errno(struct ctx *c, int step, int err, const char *detail)
{
	errno = err;
	fail(c, step, detail);
}

/* Waits for one message of the expected type; EOF means the runtime died or gave up: leave quietly. */
static void expect(struct ctx *c, uint32_t type, int step)
{
	struct tsrt_msg m;
	long n;
	do
		n = syscall(SYS_recvfrom, c->sock, &m, sizeof(m), 0, NULL, NULL);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		die_exit(1);
	if (n != (long)sizeof(m) || m.type != type)
		fail_errno(c, step, EPROTO, "unexpected message from the runtime");
}

/* Waits for one message of the expected type carrying an fd (SCM_RIGHTS); returns the fd. */
static int expect_fd(struct ctx *c, uint32_t type, int step)
{
	struct tsrt_msg m;
	struct fdmsg fm;
	struct msghdr *mh = fdmsg_init(&fm, &m, sizeof(m), FDMSG_RECV);
	int fd;
	long n;
	do
		n = syscall(SYS_recvmsg, c->sock, mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		die_exit(1);
	fd = n > 0 ? fdmsg_fd(&fm) : -1;
	if (n != (long)sizeof(m) || m.type != type || fd < 0)
		fail_errno(c, step, EPROTO, "unexpected message from the runtime");
	return fd;
}

/* ---- paths inside the rootfs (R1) ---- */

#define RESOLVE_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

static int open_in_root(int rootfd, const char *path, int flags)
{
	return (int)sys_openat2(rootfd, rel(path), (uint64_t)flags, RESOLVE_ROOT);
}

/* The path the kernel reports for fd must still be below the rootfs (a rename race could have moved it). */
static void check_inside_root(struct ctx *c, int fd, int step, const char *what)
{
	char link[32], target[4096];
	size_t n = sappend(link, sizeof(link), 0, "self/fd/");
	long len;
	sappend_u64(link, sizeof(link), n, (uint64_t)fd, 0);
	len = syscall(SYS_readlinkat, c->procfd, link, target, sizeof(target) - 1);
	if (len < 0)
		fail(c, step, what);
	target[len] = 0;
	if (!starts_with_dir(target, c->plan->rootfs, (size_t)c->rootlen) &&
	    !(c->rootlen == 1 && target[0] == '/'))
		fail_errno(c, step, EXDEV, what);
}

/* mkdir -p inside the root, one component at a time, each lookup confined to the root. Returns an O_PATH fd. */
static int mkdir_all_depth(struct ctx *c, int rootfd, const char *path, int step, int depth);

/* A dangling symlink in the way: make its target, resolved as the kernel would with the rootfs as "/"
 * (absolute from the root, relative from the link's directory), never anywhere outside. */
static void mkdir_link_target(struct ctx *c, int rootfd, int dirfd, const char *comp, const char *parent,
			      size_t parent_len, const char *whole, int step, int depth)
{
	char link[4096], target[4096];
	size_t t = 0;
	long n = syscall(SYS_readlinkat, dirfd, comp, link, sizeof(link) - 1);
	if (n < 0)
		fail(c, step, whole); /* the whole destination: a component alone names nothing the user wrote */
	link[n] = 0;
	if (link[0] != '/') {
		if (parent_len + 2 >= sizeof(target))
			fail_errno(c, step, ENAMETOOLONG, whole);
		target[t++] = '/';
		memcpy(target + t, parent, parent_len);
		t += parent_len;
		target[t] = 0;
		t = sappend(target, sizeof(target), t, "/");
	}
	t = sappend(target, sizeof(target), t, link);
	if (t + 1 >= sizeof(target))
		fail_errno(c, step, ENAMETOOLONG, whole);
	syscall(SYS_close, mkdir_all_depth(c, rootfd, target, step, depth + 1));
}

static int mkdir_all(struct ctx *c, int rootfd, const char *path, int step)
{
	return mkdir_all_depth(c, rootfd, path, step, 0);
}

static int mkdir_all_depth(struct ctx *c, int rootfd, const char *path, int step, int depth)
{
	char prefix[4096];
	size_t at = 0, parent_at;
	const char *p = path;
	int cur = (int)sys_openat2(rootfd, ".", O_PATH | O_DIRECTORY, RESOLVE_ROOT);
	if (cur < 0)
		fail(c, step, path);
	for (;;) {
		char comp[256];
		size_t n = 0;
		int next;
		while (*p == '/')
			p++;
		if (!*p)
			break;
		while (p[n] && p[n] != '/') {
			if (n + 1 >= sizeof(comp))
				fail_errno(c, step, ENAMETOOLONG, path);
			comp[n] = p[n];
			n++;
		}
		comp[n] = 0;
		p += n;
		parent_at = at;
		if (at)
			at = sappend(prefix, sizeof(prefix), at, "/");
		at = sappend(prefix, sizeof(prefix), at, comp);
		if (at + 1 >= sizeof(prefix))
			fail_errno(c, step, ENAMETOOLONG, path);
		next = (int)sys_openat2(rootfd, prefix, O_PATH | O_DIRECTORY, RESOLVE_ROOT);
		if (next < 0 && errno == ENOENT) {
			if (syscall(SYS_mkdirat, cur, comp, 0755) < 0 && errno != EEXIST)
				fail(c, step, path);
			next = (int)sys_openat2(rootfd, prefix, O_PATH | O_DIRECTORY, RESOLVE_ROOT);
			if (next < 0 && errno == ENOENT) {
				if (depth >= 40)
					fail_errno(c, step, ELOOP, path);
				mkdir_link_target(c, rootfd, cur, comp, prefix, parent_at, path, step, depth);
				next = (int)sys_openat2(rootfd, prefix, O_PATH | O_DIRECTORY, RESOLVE_ROOT);
			}
		}
		if (next < 0)
			fail(c, step, path);
		syscall(SYS_close, cur);
		cur = next;
	}
	return cur;
}

/* Splits "/a/b/c" into parent "/a/b" (in dir) and base "c". */
static const char *split_base(const char *path, char *dir, size_t cap)
{
	size_t n = slen(path), cut;
	while (n > 1 && path[n - 1] == '/')
		n--;
	cut = n;
	while (cut > 0 && path[cut - 1] != '/')
		cut--;
	if (cut >= cap)
		cut = cap - 1;
	memcpy(dir, path, cut);
	dir[cut] = 0;
	return path + cut;
}

/* Opens (creating if missing) a mount destination inside the root as an O_PATH fd. */
static int resolve_target(struct ctx *c, int rootfd, const char *dest, int is_file, int step)
{
	char dir[4096], base[256];
	const char *b;
	size_t bl;
	int fd = open_in_root(rootfd, dest, O_PATH), dfd;
	if (fd >= 0) {
		check_inside_root(c, fd, step, dest);
		return fd;
	}
	if (errno != ENOENT)
		fail(c, step, dest);
	b = split_base(dest, dir, sizeof(dir));
	bl = slen(b);
	if (bl == 0 || bl >= sizeof(base))
		fail_errno(c, step, EINVAL, dest);
	memcpy(base, b, bl);
	base[bl] = 0;
	if (base[bl - 1] == '/')
		base[bl - 1] = 0;
	dfd = mkdir_all(c, rootfd, dir, step);
	if (is_file) {
		if (syscall(SYS_mknodat, dfd, base, S_IFREG | 0644, 0) < 0 && errno != EEXIST)
			fail(c, step, dest);
	} else if (syscall(SYS_mkdirat, dfd, base, 0755) < 0 && errno != EEXIST) {
		fail(c, step, dest);
	}
	syscall(SYS_close, dfd);
	fd = open_in_root(rootfd, dest, O_PATH);
	if (fd < 0)
		fail(c, step, dest);
	check_inside_root(c, fd, step, dest);
	return fd;
}

/* R7: the final component of dest must not be a symlink (an image's /proc, /dev/pts, /dev/console, /dev/null).
 * Symlinks in the parent directories are still followed inside the root, as for any mount destination. */
static void refuse_symlink(struct ctx *c, const char *dest, int step)
{
	struct stat st;
	int fd = open_in_root(c->rootfd, dest, O_PATH | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		fail(c, step, dest);
	}
	if (fstat(fd, &st) < 0)
		fail(c, step, dest);
	if (S_ISLNK(st.st_mode))
		fail_errno(c, step, ELOOP, dest);
	syscall(SYS_close, fd);
}

/* ---- mounts (new mount API, always onto a verified fd) ---- */

static int set_attrs(int fd, uint64_t set, uint64_t clr, uint32_t propagation, int recursive)
{
	struct mount_attr a;
	memset(&a, 0, sizeof(a));
	a.attr_set = set;
	a.attr_clr = clr;
	a.propagation = propagation;
	return (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof(a));
}

static void attach(struct ctx *c, int tree, int target, const struct tsrt_step *s, int step)
{
	if (syscall(SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		fail(c, step, s->dest);
	if (s->propagation && set_attrs(tree, 0, 0, s->propagation, !!(s->flags & MF_PROP_RECURSIVE)) < 0)
		fail(c, step, s->dest);
}

static int bind_tree(const char *source, int recursive)
{
	return (int)syscall(SYS_open_tree, AT_FDCWD, source,
			    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
}

/* A bind step's tree: the idmapped one made early, or a fresh clone of the source. */
static int step_tree(struct ctx *c, const struct tsrt_step *s, const char *source, int recursive)
{
	uint32_t i;
	for (i = 0; i < c->plan->nidmaps; i++) {
		if (&c->plan->steps[c->plan->idmaps[i].step] == s) {
			int tree = c->plan->idmaps[i].tree;
			c->plan->idmaps[i].tree = -1;
			return tree;
		}
	}
	return bind_tree(source, recursive);
}

/*
 * A bind source the container's root may not reach from its user namespace (below a 0700 root-owned
 * directory): the runtime opens it, in our mount namespace and with its own credentials, and hands over an
 * O_PATH fd (as runc does); cloning the tree from the fd needs no search permission on the way to it. The
 * mount is the one in our namespace, so what a user namespace locks stays locked.
 */
static int tree_from_runtime(struct ctx *c, const struct tsrt_step *s, int recursive)
{
	int fd, tree, err;
	send_msg(c->sock, MSG_MOUNT_SOURCE, S_MOUNT, 0, (int)(s - c->plan->steps), "");
	fd = expect_fd(c, MSG_ACK, S_MOUNT);
	tree = (int)syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
	err = errno;
	syscall(SYS_close, fd);
	errno = err;
	return tree;
}

static void do_bind(struct ctx *c, const struct tsrt_step *s, const char *source, int recursive)
{
	int target, tree;
	tree = step_tree(c, s, source, recursive);
	if (tree < 0 && (errno == EACCES || errno == EPERM) && source == s->source && (c->plan->flags & PF_NEW_USERNS))
		tree = tree_from_runtime(c, s, recursive);
	if (tree < 0)
		fail(c, S_MOUNT, s->dest);
	if ((s->attr_set || s->attr_clr) &&
	    set_attrs(tree, s->attr_set, s->attr_clr, 0, !!(s->flags & MF_ATTR_RECURSIVE)) < 0)
		fail(c, S_MOUNT, s->dest);
	target = resolve_target(c, c->rootfd, s->dest, !!(s->flags & MF_DEST_FILE), S_MOUNT);
	attach(c, tree, target, s, S_MOUNT);
	syscall(SYS_close, target);
	syscall(SYS_close, tree);
}

static int fs_configure(int fsfd, const char *source, const char *data, const char *label)
{
	char opt[4096];
	if (source && syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "source", source, 0) < 0)
		return -1;
	/* Set on its own: an SELinux context has commas in it, which the data list would split. */
	if (label && syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "context", label, 0) < 0)
		return -1;
	while (data && *data) {
		size_t n = 0;
		char *eq;
		while (data[n] && data[n] != ',')
			n++;
		if (n >= sizeof(opt)) {
			errno = E2BIG;
			return -1;
		}
		memcpy(opt, data, n);
		opt[n] = 0;
		data += n;
		if (*data == ',')
			data++;
		if (n == 0)
			continue;
		eq = memchr(opt, '=', n);
		if (eq) {
			*eq = 0;
			if (syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, opt, eq + 1, 0) < 0)
				return -1;
		} else if (syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_FLAG, opt, NULL, 0) < 0) {
			return -1;
		}
	}
	return (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
}

/* ---- tmpcopyup (the walk is copyup.c) ---- */

/* mnt is the detached tmpfs, target the O_PATH destination in the rootfs (not yet covered). */
static void copy_up(struct ctx *c, int mnt, int target, const char *dest)
{
	int src = (int)syscall(SYS_openat, target, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int dst = (int)syscall(SYS_openat, mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src < 0 || dst < 0 || copyup_tree(c->procfd, src, dst) < 0)
		fail(c, S_MOUNT, dest);
	syscall(SYS_close, src);
	syscall(SYS_close, dst);
}

static void do_fs(struct ctx *c, const struct tsrt_step *s)
{
	int fsfd, mnt, target, err;
	struct stat st;
	/* CVE-2019-19921, CVE-2025-52565: proc, sysfs and devpts never land where an image's symlink points. */
	if ((s->flags & MF_PROC_OR_SYS) || !strcmp(s->fstype, "devpts"))
		refuse_symlink(c, s->dest, S_MOUNT);
	fsfd = (int)syscall(SYS_fsopen, s->fstype, FSOPEN_CLOEXEC);
	if (fsfd < 0 || fs_configure(fsfd, s->source, s->data, (s->flags & MF_MOUNT_LABEL) ? c->plan->mount_label : NULL) < 0) {
		err = errno;
		if ((s->flags & MF_FALLBACK_BIND) && (err == EPERM || err == EACCES || err == EINVAL)) {
			if (fsfd >= 0)
				syscall(SYS_close, fsfd);
			do_bind(c, s, s->fallback, 1);
			return;
		}
		fail_errno(c, S_MOUNT, err, s->dest);
	}
	mnt = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, (unsigned)s->attr_set);
	if (mnt < 0)
		fail(c, S_MOUNT, s->dest);
	syscall(SYS_close, fsfd);
	target = resolve_target(c, c->rootfd, s->dest, 0, S_MOUNT);
	if (s->flags & MF_PROC_OR_SYS) {
		/* R7: proc and sysfs go onto a real directory, never through a symlink. */
		if (fstat(target, &st) < 0 || !S_ISDIR(st.st_mode))
			fail_errno(c, S_MOUNT, ENOTDIR, s->dest);
	}
	if (s->flags & MF_COPY_UP)
		copy_up(c, mnt, target, s->dest);
	attach(c, mnt, target, s, S_MOUNT);
	syscall(SYS_close, target);
	syscall(SYS_close, mnt);
}

static void do_symlink(struct ctx *c, const struct tsrt_step *s)
{
	char dir[4096];
	const char *base = split_base(s->dest, dir, sizeof(dir));
	int dfd = mkdir_all(c, c->rootfd, dir, S_SYMLINK);
	if (syscall(SYS_symlinkat, s->data, dfd, base) < 0 && errno != EEXIST)
		fail(c, S_SYMLINK, s->dest);
	syscall(SYS_close, dfd);
}

static void do_mknod(struct ctx *c, const struct tsrt_step *s)
{
	char dir[4096];
	struct stat st;
	const char *base = split_base(s->dest, dir, sizeof(dir));
	int dfd = mkdir_all(c, c->rootfd, dir, S_DEVICE);
	if (syscall(SYS_mknodat, dfd, base, s->mode, s->rdev) < 0) {
		if (errno != EEXIST)
			fail(c, S_DEVICE, s->dest);
		/* Something is already there (an image's own node, or a planted symlink): replace, never follow. */
		if (syscall(SYS_unlinkat, dfd, base, 0) < 0 || syscall(SYS_mknodat, dfd, base, s->mode, s->rdev) < 0)
			fail(c, S_DEVICE, s->dest);
	}
	if (syscall(SYS_fchownat, dfd, base, s->uid, s->gid, AT_SYMLINK_NOFOLLOW) < 0)
		fail(c, S_DEVICE, s->dest);
	if (syscall(SYS_newfstatat, dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (st.st_mode & S_IFMT) != (s->mode & S_IFMT) ||
	    ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && st.st_rdev != s->rdev))
		fail_errno(c, S_DEVICE, EXDEV, s->dest);
	syscall(SYS_close, dfd);
}

static void do_bind_device(struct ctx *c, const struct tsrt_step *s)
{
	struct stat st;
	int src, tree, target;
	src = (int)syscall(SYS_openat, AT_FDCWD, s->source, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (src < 0)
		fail(c, S_DEVICE, s->source);
	/* R3: the host node must be the device the plan names, not whatever sits at that path. */
	if (fstat(src, &st) < 0 || !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) || st.st_rdev != s->rdev)
		fail_errno(c, S_DEVICE, ENODEV, s->source);
	tree = (int)syscall(SYS_open_tree, src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0)
		fail(c, S_DEVICE, s->dest);
	/* An image's /dev/null -> /proc/... would put the node over a procfs file and leave the link (CVE-2025-31133). */
	refuse_symlink(c, s->dest, S_DEVICE);
	target = resolve_target(c, c->rootfd, s->dest, 1, S_DEVICE);
	if (syscall(SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		fail(c, S_DEVICE, s->dest);
	syscall(SYS_close, target);
	syscall(SYS_close, tree);
	syscall(SYS_close, src);
}

/* R7: these must be real directories (or absent) in the image, never symlinks. */
static void refuse_symlinked_dirs(struct ctx *c)
{
	static const char *const names[] = { "proc", "sys", "dev" };
	struct stat st;
	unsigned i;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (syscall(SYS_newfstatat, c->rootfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
			char d[64];
			sappend(d, sizeof(d), sappend(d, sizeof(d), 0, "/"), names[i]);
			fail_errno(c, S_ROOTFS, ELOOP, d);
		}
	}
}

static void open_private_proc(struct ctx *c)
{
	struct statfs sfs;
	int fsfd = (int)syscall(SYS_fsopen, "proc", FSOPEN_CLOEXEC);
	c->procfd = -1;
	if (fsfd >= 0 && syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
		c->procfd = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (fsfd >= 0)
		syscall(SYS_close, fsfd);
	/* No new pid namespace of our own (rootless without pidns): use the host's procfs, still verified. */
	if (c->procfd < 0)
		c->procfd = (int)syscall(SYS_openat, AT_FDCWD, "/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->procfd < 0)
		fail(c, S_ROOTFS, "/proc");
	if (fstatfs(c->procfd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)
		fail_errno(c, S_ROOTFS, EXDEV, "/proc");
}

static int proc_open(struct ctx *c, const char *path, int flags)
{
	return (int)sys_openat2(c->procfd, path, (uint64_t)flags,
				RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH | RESOLVE_NO_XDEV);
}

static void open_devnull(struct ctx *c)
{
	struct stat st;
	c->devnull = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (c->devnull < 0)
		fail(c, S_ROOTFS, "/dev/null");
	if (fstat(c->devnull, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
		fail_errno(c, S_ROOTFS, ENODEV, "/dev/null");
}

/* The mount at dest, a directory or a bound file; MF_ATTR_RECURSIVE: every mount below it too. */
static void do_setattr(struct ctx *c, const struct tsrt_step *s)
{
	int fd = open_in_root(c->rootfd, s->dest, O_PATH);
	if (fd < 0 || set_attrs(fd, s->attr_set, s->attr_clr, 0, !!(s->flags & MF_ATTR_RECURSIVE)) < 0)
		fail(c, S_MOUNT, s->dest);
	syscall(SYS_close, fd);
}

static void setup_rootfs(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	int tree;
	uint32_t i;

	if (!(p->flags & PF_SHARED_MOUNTNS) &&
	    syscall(SYS_mount, NULL, "/", NULL, p->root_propagation ? p->root_propagation : MS_SLAVE | MS_REC, NULL) < 0)
		fail(c, S_ROOTFS, "/");
	open_devnull(c);
	open_private_proc(c);
	/* The rootfs must be a mount point for pivot_root: bind it onto itself. */
	tree = bind_tree(p->rootfs, 1);
	if (tree < 0 || syscall(SYS_move_mount, tree, "", AT_FDCWD, p->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		fail(c, S_ROOTFS, p->rootfs);
	syscall(SYS_close, tree);
	c->rootfd = (int)syscall(SYS_openat, AT_FDCWD, p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->rootfd < 0)
		fail(c, S_ROOTFS, p->rootfs);
	refuse_symlinked_dirs(c);

	for (i = 0; i < p->nsteps; i++) {
		const struct tsrt_step *s = &p->steps[i];
		switch (s->kind) {
		case STEP_MOUNT_BIND:
			do_bind(c, s, s->source, !!(s->flags & MF_RECURSIVE));
			break;
		case STEP_MOUNT_FS:
			do_fs(c, s);
			/* A filesystem mounted on "/" (an overlay over the image) becomes the root: later steps and
			 * pivot_root work on it, so mount points they create land in its upper layer. */
			if (s->dest[0] == '/' && s->dest[1] == 0) {
				syscall(SYS_close, c->rootfd);
				c->rootfd = (int)syscall(SYS_openat, AT_FDCWD, p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
				if (c->rootfd < 0)
					fail(c, S_ROOTFS, p->rootfs);
			}
			break;
		case STEP_SYMLINK:
			do_symlink(c, s);
			break;
		case STEP_MKNOD:
			do_mknod(c, s);
			break;
		case STEP_BIND_DEVICE:
			do_bind_device(c, s);
			break;
		case STEP_MKDIR:
			syscall(SYS_close, mkdir_all(c, c->rootfd, s->dest, S_MKDIR));
			break;
		case STEP_SETATTR:
			if (!(s->flags & MF_DEFERRED))
				do_setattr(c, s);
			break;
		}
	}
}

/* ---- --no-pivot: take away what pivot_root would have ---- */

/* The fields of one /proc/self/mountinfo line that detaching needs; the strings point into the line. */
struct mountinfo_entry {
	uint64_t id;
	const char *root;  /* the mount's root within its filesystem: "/" for a full mount */
	const char *point; /* its mount point */
	const char *fstype;
};

/* The kernel escapes space, tab, newline and backslash in paths as \ooo; undone in place. */
static void unescape_octal(char *s)
{
	char *out = s;
	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = 0;
}

/* Splits one line (len bytes, no newline, NUL-terminated at len) in place; 0 when it is not a mountinfo line:
 * "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER". R10: the text names paths other
 * users chose, so every field is found within len and nothing is read past it. */
static int parse_mountinfo(char *line, size_t len, struct mountinfo_entry *e)
{
	char *field[64];
	size_t n = 0, i = 0, dash;
	uint64_t id = 0;
	while (i < len && n < sizeof(field) / sizeof(field[0])) {
		while (i < len && line[i] == ' ')
			line[i++] = 0;
		if (i >= len)
			break;
		field[n++] = line + i;
		while (i < len && line[i] != ' ')
			i++;
	}
	if (i < len)
		return 0; /* more fields than any mount has */
	for (dash = 6; dash < n && strcmp(field[dash], "-") != 0; dash++)
		;
	if (dash + 1 >= n || !field[0][0])
		return 0;
	for (i = 0; field[0][i]; i++) {
		if (field[0][i] < '0' || field[0][i] > '9' || id > UINT64_MAX / 10 - 1)
			return 0;
		id = id * 10 + (uint64_t)(field[0][i] - '0');
	}
	unescape_octal(field[3]);
	unescape_octal(field[4]);
	e->id = id;
	e->root = field[3];
	e->point = field[4];
	e->fstype = field[dash + 1];
	return 1;
}

/* umount2 of exactly the mount behind fd, by its magic link in our private procfs (relative to it as cwd,
 * which pivot() sets again): the path it was found at may have changed meanwhile, the fd cannot. */
static int umount_fd(struct ctx *c, int fd)
{
	char link[32];
	sappend_u64(link, sizeof(link), sappend(link, sizeof(link), 0, "self/fd/"), (uint64_t)fd, 0);
	if (syscall(SYS_fchdir, c->procfd) < 0)
		return -1;
	return (int)syscall(SYS_umount2, link, MNT_DETACH);
}

/* Detaches one mount outside the new root; 1 if it did, 0 if the mount is gone or elsewhere now. */
static int detach_outside(struct ctx *c, const struct mountinfo_entry *e)
{
	struct statx stx;
	int fd, full_pseudo = (!strcmp(e->fstype, "proc") || !strcmp(e->fstype, "sysfs")) && !strcmp(e->root, "/");
	fd = (int)sys_openat2(AT_FDCWD, e->point, O_PATH, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	if (fd < 0) {
		/* Gone with a parent detached before it (mountinfo lists parents first). */
		if (errno == ENOENT || !full_pseudo)
			return 0;
		fail(c, S_PIVOT, e->point);
	}
	memset(&stx, 0, sizeof(stx));
	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 || !(stx.stx_mask & STATX_MNT_ID) ||
	    stx.stx_mnt_id != e->id) {
		/* Another mount is on top at that path: it gets its turn, this one on a later pass. */
		syscall(SYS_close, fd);
		return 0;
	}
	/* Never let the unmount propagate to the host: only our copy becomes a slave. */
	if (set_attrs(fd, 0, 0, MS_SLAVE, 1) < 0 && full_pseudo)
		fail(c, S_PIVOT, e->point);
	if (umount_fd(c, fd) == 0) {
		syscall(SYS_close, fd);
		return 1;
	}
	/* A mount locked by a user namespace (rootless) cannot be taken away; as runc does, a proc or sysfs
	 * that would let a nested namespace mount a fresh one is covered by an empty tmpfs instead. */
	if (full_pseudo) {
		int fsfd = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC), tree = -1;
		if (fsfd >= 0 && syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "size", "0", 0) == 0 &&
		    syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
			tree = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
		if (tree < 0 || syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			fail(c, S_PIVOT, e->point);
		syscall(SYS_close, tree);
		if (fsfd >= 0)
			syscall(SYS_close, fsfd);
	}
	syscall(SYS_close, fd);
	return 0;
}

/* One mountinfo line: detached when it is a mount outside the new root's path; 1 if it was. */
static int detach_line(struct ctx *c, char *line, size_t len)
{
	const char *rootfs = c->plan->rootfs;
	struct mountinfo_entry e;
	if (!parse_mountinfo(line, len, &e) || !strcmp(e.point, "/") || starts_with_dir(e.point, rootfs, slen(rootfs)) ||
	    starts_with_dir(rootfs, e.point, slen(e.point)))
		return 0;
	return detach_outside(c, &e);
}

/*
 * pivot_root leaves the old root's mounts behind; MS_MOVE + chroot keeps all of them in the namespace, where a
 * nested user namespace finds a fully visible proc or sysfs and may mount a fresh one, without the masks
 * (runc's no_pivot.bats). So every mount that is neither the new root, nor below it, nor above it on the way
 * from "/" is detached first. A pass detaches the top one of mounts stacked on one point; passes repeat until
 * nothing changes. What cannot be detached is left, except a full proc or sysfs, which gets covered.
 */
static void detach_old_root(struct ctx *c)
{
	char buf[1 << 16];
	int pass;
	for (pass = 0; pass < 16; pass++) {
		int fd = proc_open(c, "self/mountinfo", O_RDONLY), detached = 0, skipping = 0;
		size_t have = 0;
		if (fd < 0)
			fail(c, S_PIVOT, "/proc/self/mountinfo");
		for (;;) {
			size_t start = 0, i;
			long n = syscall(SYS_read, fd, buf + have, sizeof(buf) - 1 - have);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				fail(c, S_PIVOT, "/proc/self/mountinfo");
			have += (size_t)n;
			for (i = 0; i < have; i++) {
				if (buf[i] != '\n')
					continue;
				buf[i] = 0;
				if (!skipping)
					detached |= detach_line(c, buf + start, i - start);
				skipping = 0;
				start = i + 1;
			}
			if (n == 0) {
				buf[have] = 0;
				if (start < have && !skipping)
					detached |= detach_line(c, buf + start, have - start);
				break;
			}
			if (start == 0 && have == sizeof(buf) - 1) {
				/* Longer than any mountinfo line can be: drop it up to its newline. */
				skipping = 1;
				start = have;
			}
			memmove(buf, buf + start, have - start);
			have -= start;
		}
		syscall(SYS_close, fd);
		if (!detached)
			break;
	}
}

static void pivot(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	if ((p->flags & PF_NO_PIVOT) && !(p->flags & PF_SHARED_MOUNTNS))
		detach_old_root(c);
	if (syscall(SYS_fchdir, c->rootfd) < 0)
		fail(c, S_PIVOT, p->rootfs);
	if (p->flags & PF_SHARED_MOUNTNS) {
		if (syscall(SYS_chroot, ".") < 0)
			fail(c, S_PIVOT, p->rootfs);
	} else if (p->flags & PF_NO_PIVOT) {
		if (syscall(SYS_mount, ".", "/", NULL, MS_MOVE, NULL) < 0 || syscall(SYS_chroot, ".") < 0)
			fail(c, S_PIVOT, p->rootfs);
	} else {
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			fail(c, S_PIVOT, p->rootfs);
		/* Detach the old root without letting the unmount propagate back to the host. */
		if (syscall(SYS_mount, NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0 ||
		    syscall(SYS_umount2, ".", MNT_DETACH) < 0)
			fail(c, S_PIVOT, "old root");
	}
	if (syscall(SYS_chdir, "/") < 0)
		fail(c, S_PIVOT, "/");
	c->rootlen = 1; /* from here on the kernel reports container paths: "inside" means below "/" */
	syscall(SYS_close, c->rootfd);
	c->rootfd = (int)syscall(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->rootfd < 0)
		fail(c, S_PIVOT, "/");
	if (p->rootfs_propagation && syscall(SYS_mount, NULL, "/", NULL, p->rootfs_propagation, NULL) < 0)
		fail(c, S_PIVOT, "rootfsPropagation");
}

/* ---- after pivot_root ---- */

/* One sendmsg of `len` bytes with `fd` attached (SCM_RIGHTS). */
static long send_with_fd(int sock, void *data, size_t len, int fd)
{
	struct fdmsg m;
	return syscall(SYS_sendmsg, sock, fdmsg_init(&m, data, len, fd), MSG_NOSIGNAL);
}

static void setup_console(struct ctx *c)
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
	if (st.st_uid != p->uid && syscall(SYS_fchown, slave, p->uid, (gid_t)-1) < 0 &&
	    errno != EINVAL && errno != EPERM && errno != EROFS)
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
		if (syscall(SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
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
	if (syscall(SYS_dup3, slave, 0, 0) < 0 || syscall(SYS_dup3, slave, 1, 0) < 0 || syscall(SYS_dup3, slave, 2, 0) < 0)
		fail(c, S_CONSOLE, "stdio");
	if (slave > 2)
		syscall(SYS_close, slave);
}

static void write_all(struct ctx *c, int fd, const char *buf, size_t n, int step, const char *what)
{
	while (n > 0) {
		long w = syscall(SYS_write, fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail(c, step, what);
		buf += w;
		n -= (size_t)w;
	}
}

static void apply_sysctls(struct ctx *c)
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

static void apply_readonly_paths(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	uint32_t i;
	for (i = 0; i < p->nreadonly; i++) {
		int fd = open_in_root(c->rootfd, p->readonly[i], O_PATH | O_NOFOLLOW), tree;
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			fail(c, S_READONLY, p->readonly[i]);
		}
		tree = (int)syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
		if (tree < 0 || set_attrs(tree, MOUNT_ATTR_RDONLY, 0, 0, 1) < 0 ||
		    syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			fail(c, S_READONLY, p->readonly[i]);
		syscall(SYS_close, tree);
		syscall(SYS_close, fd);
	}
}

static void apply_masked_paths(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	uint32_t i;
	for (i = 0; i < p->nmasked; i++) {
		struct stat st;
		int fd = open_in_root(c->rootfd, p->masked[i], O_PATH | O_NOFOLLOW), tree;
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			fail(c, S_MASK, p->masked[i]);
		}
		if (fstat(fd, &st) < 0)
			fail(c, S_MASK, p->masked[i]);
		if (S_ISDIR(st.st_mode)) {
			int fsfd = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
			if (fsfd < 0 || syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING, "size", "0", 0) < 0 ||
			    syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
				fail(c, S_MASK, p->masked[i]);
			tree = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
			syscall(SYS_close, fsfd);
		} else {
			/* The host's /dev/null, verified 1:3 before pivot_root: never the container's (CVE-2025-31133). */
			tree = (int)syscall(SYS_open_tree, c->devnull, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
		}
		if (tree < 0 || syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			fail(c, S_MASK, p->masked[i]);
		syscall(SYS_close, tree);
		syscall(SYS_close, fd);
	}
}

/* ---- process attributes ---- */

static void apply_rlimits(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	uint32_t i;
	for (i = 0; i < p->nrlimits; i++) {
		struct rlimit64 { uint64_t cur, max; } rl = { p->rlimits[i].soft, p->rlimits[i].hard };
		if (syscall(SYS_prlimit64, 0, p->rlimits[i].resource, &rl, NULL) < 0) {
			char d[32];
			sappend_u64(d, sizeof(d), sappend(d, sizeof(d), 0, "resource "), p->rlimits[i].resource, 0);
			fail(c, S_RLIMIT, d);
		}
	}
}

/* Made in the new network namespace, an AF_INET socket reaches its "lo", which starts down. */
static void loopback_up(struct ctx *c)
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

static void apply_oom_score_adj(struct ctx *c)
{
	char v[24];
	size_t n = sappend_i64(v, sizeof(v), 0, c->plan->oom_score_adj);
	int fd = proc_open(c, "self/oom_score_adj", O_WRONLY);
	if (fd < 0)
		fail(c, S_OOM, "oom_score_adj");
	write_all(c, fd, v, n, S_OOM, "oom_score_adj");
	syscall(SYS_close, fd);
}

static void set_affinity(struct ctx *c, const unsigned char *mask, uint32_t len, const char *which)
{
	if (len && syscall(SYS_sched_setaffinity, 0, len, mask) < 0)
		fail(c, S_AFFINITY, which);
}

/* Scheduling, I/O priority, personality and memory policy survive execve: set them while we still hold the
 * privileges some of them need (CAP_SYS_NICE for real-time policies, CAP_SYS_ADMIN for the RT I/O class). */
static void apply_process_attributes(struct ctx *c)
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
static void apply_lsm_labels(struct ctx *c)
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
static void switch_user(struct ctx *c, struct __user_cap_data_struct held[2])
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

static void set_capabilities(struct ctx *c)
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
static void raise_permitted(struct ctx *c, const struct __user_cap_data_struct held[2])
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
static void load_seccomp(struct ctx *c)
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
static int enter_cwd_privileged(struct ctx *c)
{
	if (syscall(SYS_chdir, c->plan->cwd) == 0)
		return 1;
	if (errno != EACCES && errno != EPERM)
		fail(c, S_CWD, c->plan->cwd);
	return 0;
}

/* After the user switch: enter the cwd unless that was done already, and check where we are either way. */
static void enter_cwd(struct ctx *c, int entered)
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

static const char *env_path(const struct tsrt_plan *p)
{
	uint32_t i;
	for (i = 0; i < p->nenv; i++)
		if (p->env[i][0] == 'P' && p->env[i][1] == 'A' && p->env[i][2] == 'T' && p->env[i][3] == 'H' && p->env[i][4] == '=')
			return p->env[i] + 5;
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

static int is_executable(const char *path, int *err)
{
	struct stat st;
	if (syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) < 0) {
		*err = errno;
		return 0;
	}
	if (S_ISDIR(st.st_mode) || !(st.st_mode & 0111)) {
		*err = EACCES;
		return 0;
	}
	if (syscall(SYS_faccessat, AT_FDCWD, path, X_OK) < 0) {
		*err = errno;
		return 0;
	}
	return 1;
}

/* exec.LookPath semantics, with the container's PATH, as the container user. */
static void lookup_executable(struct ctx *c, char *out, size_t cap)
{
	const char *name = c->plan->args[0], *path;
	int err = ENOENT;
	if (!name[0])
		fail_errno(c, S_EXEC_LOOKUP, ENOENT, "");
	if (memchr(name, '/', slen(name))) {
		if (slen(name) + 1 > cap)
			fail_errno(c, S_EXEC_LOOKUP, ENAMETOOLONG, name);
		sappend(out, cap, 0, name);
		if (!is_executable(out, &err))
			fail_errno(c, S_EXEC_LOOKUP, err, name);
		return;
	}
	path = env_path(c->plan);
	while (1) {
		size_t n = 0, at;
		while (path[n] && path[n] != ':')
			n++;
		/* A candidate longer than PATH_MAX is one the kernel refuses: skipped, never cut short into another. */
		if ((n ? n : 1) + 1 + slen(name) >= cap) {
			err = ENAMETOOLONG;
		} else {
			if (n == 0)
				at = sappend(out, cap, 0, ".");
			else {
				memcpy(out, path, n);
				out[n] = 0;
				at = n;
			}
			at = sappend(out, cap, at, "/");
			sappend(out, cap, at, name);
			if (is_executable(out, &err))
				return;
		}
		if (!path[n])
			break;
		path += n + 1;
	}
	errno = ENOENT;
	send_msg(c->sock, MSG_ERROR, S_EXEC_LOOKUP, -1 /* not found in $PATH */, 0, name);
	die_exit(1);
}

static void exec_user_process(struct ctx *c, const char *path, const char *magic);

static void wait_for_start(struct ctx *c, const char *path)
{
	const struct tsrt_plan *p = c->plan;
	if (p->flags & PF_START_FIFO) {
		char link[32], magic[40];
		int fd;
		/*
		 * The waiting init should hold stdio and the fifo and nothing else, as runc's does (issue 13, finding 7):
		 * where the container's /proc shows the fifo (helper_can_wait), the sealed helper waits instead of us.
		 * Our root, private procfs, sync socket and the helper's memfd are close-on-exec, so none of them waits
		 * with it. Without such a /proc (a config that mounts none), we wait here, through the private procfs.
		 */
		if (c->helper_waits) {
			sappend_u64(magic, sizeof(magic), sappend(magic, sizeof(magic), 0, SHIM_WAIT_MAGIC), (uint64_t)p->fifo_fd, 0);
			exec_user_process(c, path, magic);
		}
		syscall(SYS_close, c->rootfd);
		c->rootfd = -1;
		sappend_u64(link, sizeof(link), sappend(link, sizeof(link), 0, "self/fd/"), (uint64_t)p->fifo_fd, 0);
		/* Blocks until `start` opens the read side. */
		do
			fd = (int)syscall(SYS_openat, c->procfd, link, O_WRONLY | O_CLOEXEC);
		while (fd < 0 && errno == EINTR);
		if (fd < 0)
			fail(c, S_WAIT_START, "exec.fifo");
		if (syscall(SYS_write, fd, "0", 1) != 1)
			fail(c, S_WAIT_START, "exec.fifo");
		syscall(SYS_close, fd);
		syscall(SYS_close, p->fifo_fd);
	} else {
		expect(c, MSG_START, S_WAIT_START);
	}
}

/*
 * Whether the sealed helper can wait for `start` itself: the container's own /proc must be a procfs that shows
 * our exec fifo as /proc/self/fd/<fd>, the same inode, as the helper will open it. Checked before any seccomp
 * filter (a profile may deny fstat), and as the container's user, who the helper will be.
 */
static int helper_can_wait(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	struct statfs sfs;
	struct stat a, b;
	char link[32];
	int fd, ok;
	fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ok = fstatfs(fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
	syscall(SYS_close, fd);
	if (!ok)
		return 0;
	sappend_u64(link, sizeof(link), sappend(link, sizeof(link), 0, "/proc/self/fd/"), (uint64_t)p->fifo_fd, 0);
	fd = (int)syscall(SYS_openat, AT_FDCWD, link, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ok = fstat(fd, &a) == 0 && fstat(p->fifo_fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	syscall(SYS_close, fd);
	return ok;
}

/* R4: only stdio and the preserved fds survive exec; libuv/JS fds are marked close-on-exec. Done before the
 * filter is loaded: close_range (Linux 5.9) is missing from older allow-lists such as runtime-tools'. */
static void prepare_exec_fds(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	int fd;
	if (syscall(SYS_close_range, 3 + p->preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		fail(c, S_EXEC, "close_range");
	for (fd = 0; fd < 3 + (int)p->preserve_fds; fd++) {
		int fl = (int)syscall(SYS_fcntl, fd, F_GETFL, 0);
		syscall(SYS_fcntl, fd, F_SETFD, 0);
		/* A JS runtime may have made a shared stdio pipe non-blocking; the container must not inherit it. */
		if (fd < 3 && fl >= 0 && (fl & O_NONBLOCK))
			syscall(SYS_fcntl, fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	/* The helper that waits for `start` opens the fifo through this fd (wait_for_start) and closes it. */
	if (c->helper_waits)
		syscall(SYS_fcntl, p->fifo_fd, F_SETFD, 0);
	syscall(SYS_umask, (p->flags & PF_SET_UMASK) ? p->umask : 022);
}

/* magic: SHIM_MAGIC, or the wait magic with the fifo's fd (wait_for_start). */
static void exec_user_process(struct ctx *c, const char *path, const char *magic)
{
	const struct tsrt_plan *p = c->plan;
	uint64_t empty = 0;

	/* The decoder left these two slots in front of the (NULL-terminated) arguments. */
	p->helper_argv[0] = magic;
	p->helper_argv[1] = path;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, 8);
	/* The sealed helper (a memfd) replaces this image, so /proc/<pid>/exe never reaches a host binary. */
	syscall(SYS_execveat, c->shim_fd, "", p->helper_argv, p->env, AT_EMPTY_PATH);
	/* Only the hand-over to the helper failed here (the helper reports the user's program itself). A profile
	 * written before execveat existed (Linux 3.19) denies it; engines' and runtime-tools' profiles allow it. */
	fail(c, S_EXEC, p->seccomp_len ? "execveat of the sealed helper (does the seccomp profile allow execveat?)"
				       : "execveat of the sealed helper");
}

/* ---- stages ---- */

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

/*
 * Idmapped binds: MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the mapping's user namespace, which we only have
 * while still in the host's. So the trees are cloned and mapped now, kept as detached mounts, and attached
 * in the rootfs later (a detached tree may be moved into any mount namespace we administer).
 */
static void prepare_idmapped_trees(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	uint32_t i;
	for (i = 0; i < p->nidmaps; i++) {
		const struct tsrt_idmap *m = &p->idmaps[i];
		const struct tsrt_step *s = &p->steps[m->step];
		struct mount_attr a;
		int tree = bind_tree(s->source, !!(s->flags & MF_RECURSIVE));
		if (tree < 0)
			fail(c, S_MOUNT, s->dest);
		memset(&a, 0, sizeof(a));
		a.attr_set = MOUNT_ATTR_IDMAP;
		a.userns_fd = (uint64_t)m->userns_fd;
		if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (m->recursive ? AT_RECURSIVE : 0), &a, sizeof(a)) < 0)
			fail(c, S_IDMAP, s->dest);
		syscall(SYS_close, m->userns_fd);
		p->idmaps[i].tree = tree;
	}
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

static void stage1(struct ctx *c) __attribute__((noreturn));

static void stage1(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	int32_t *keep = p->keep_fds; /* 8 + nidmaps entries */
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
	} else {
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
