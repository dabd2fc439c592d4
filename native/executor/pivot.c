/*
 * Entering the rootfs: pivot_root (and the old root detached without propagating to the host), chroot for a
 * shared mount namespace, or --no-pivot's MS_MOVE + chroot after every mount outside the new root has been
 * taken away (detach_old_root, by /proc/self/mountinfo: R10, those lines name paths other users chose).
 */
#include "executor_int.h"

#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/stat.h>

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
			tree = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC,
					    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
						    MOUNT_ATTR_NOEXEC);
		if (tree < 0 ||
		    syscall(SYS_move_mount, tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
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
	if (!parse_mountinfo(line, len, &e) || !strcmp(e.point, "/") ||
	    starts_with_dir(e.point, rootfs, slen(rootfs)) || starts_with_dir(rootfs, e.point, slen(e.point)))
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

void pivot(struct ctx *c)
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
