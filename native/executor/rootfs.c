/*
 * The rootfs: the plan's steps (binds, filesystems, symlinks, device nodes, directories, attribute changes) in
 * the order the plan gives, each onto a destination paths.c resolved and checked; then the readonly and masked
 * paths. The new mount API throughout: a tree is made detached, configured, and moved onto a verified fd.
 * Host handles this needs (private procfs R2, /dev/null verified 1:3 R3) are opened first, before any mount
 * of the container could stand in their way.
 */
#include "copyup.h"
#include "executor_int.h"

#include <linux/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

int set_attrs(int fd, uint64_t set, uint64_t clr, uint32_t propagation, int recursive)
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
	tree = (int)syscall(SYS_open_tree, fd, "",
			    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
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
	if (fsfd < 0 ||
	    fs_configure(fsfd, s->source, s->data, (s->flags & MF_MOUNT_LABEL) ? c->plan->mount_label : NULL) < 0) {
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
		if (syscall(SYS_newfstatat, c->rootfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode)) {
			char d[64];
			sappend(d, sizeof(d), sappend(d, sizeof(d), 0, "/"), names[i]);
			fail_errno(c, S_ROOTFS, ELOOP, d);
		}
	}
}

void open_private_proc(struct ctx *c)
{
	struct statfs sfs;
	int fsfd = (int)syscall(SYS_fsopen, "proc", FSOPEN_CLOEXEC);
	c->procfd = -1;
	if (fsfd >= 0 && syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
		c->procfd = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC,
					 MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
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
void do_setattr(struct ctx *c, const struct tsrt_step *s)
{
	int fd = open_in_root(c->rootfd, s->dest, O_PATH);
	if (fd < 0 || set_attrs(fd, s->attr_set, s->attr_clr, 0, !!(s->flags & MF_ATTR_RECURSIVE)) < 0)
		fail(c, S_MOUNT, s->dest);
	syscall(SYS_close, fd);
}

void setup_rootfs(struct ctx *c)
{
	const struct tsrt_plan *p = c->plan;
	int tree;
	uint32_t i;

	if (!(p->flags & PF_SHARED_MOUNTNS) &&
	    syscall(SYS_mount, NULL, "/", NULL, p->root_propagation ? p->root_propagation : MS_SLAVE | MS_REC, NULL) <
		    0)
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
		case STEP_MOUNT_BIND: do_bind(c, s, s->source, !!(s->flags & MF_RECURSIVE)); break;
		case STEP_MOUNT_FS:
			do_fs(c, s);
			/* A filesystem mounted on "/" (an overlay over the image) becomes the root: later steps and
			 * pivot_root work on it, so mount points they create land in its upper layer. */
			if (s->dest[0] == '/' && s->dest[1] == 0) {
				syscall(SYS_close, c->rootfd);
				c->rootfd =
					(int)syscall(SYS_openat, AT_FDCWD, p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
				if (c->rootfd < 0)
					fail(c, S_ROOTFS, p->rootfs);
			}
			break;
		case STEP_SYMLINK: do_symlink(c, s); break;
		case STEP_MKNOD: do_mknod(c, s); break;
		case STEP_BIND_DEVICE: do_bind_device(c, s); break;
		case STEP_MKDIR: syscall(SYS_close, mkdir_all(c, c->rootfd, s->dest, S_MKDIR)); break;
		case STEP_SETATTR:
			if (!(s->flags & MF_DEFERRED))
				do_setattr(c, s);
			break;
		}
	}
}

void apply_readonly_paths(struct ctx *c)
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
		tree = (int)syscall(SYS_open_tree, fd, "",
				    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
		if (tree < 0 || set_attrs(tree, MOUNT_ATTR_RDONLY, 0, 0, 1) < 0 ||
		    syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			fail(c, S_READONLY, p->readonly[i]);
		syscall(SYS_close, tree);
		syscall(SYS_close, fd);
	}
}

void apply_masked_paths(struct ctx *c)
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
			tree = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC,
					    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
						    MOUNT_ATTR_NOEXEC);
			syscall(SYS_close, fsfd);
		} else {
			/* The host's /dev/null, verified 1:3 before pivot_root: never the container's (CVE-2025-31133). */
			tree = (int)syscall(SYS_open_tree, c->devnull, "",
					    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
		}
		if (tree < 0 ||
		    syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			fail(c, S_MASK, p->masked[i]);
		syscall(SYS_close, tree);
		syscall(SYS_close, fd);
	}
}

/*
 * Idmapped binds: MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the mapping's user namespace, which we only have
 * while still in the host's. So the trees are cloned and mapped now, kept as detached mounts, and attached
 * in the rootfs later (a detached tree may be moved into any mount namespace we administer).
 */
void prepare_idmapped_trees(struct ctx *c)
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
		if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (m->recursive ? AT_RECURSIVE : 0), &a,
			    sizeof(a)) < 0)
			fail(c, S_IDMAP, s->dest);
		syscall(SYS_close, m->userns_fd);
		p->idmaps[i].tree = tree;
	}
}
