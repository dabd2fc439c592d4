/*
 * R1: every path the plan names inside the container is resolved under the rootfs fd (openat2 with
 * RESOLVE_IN_ROOT), one component at a time where directories are made, and what was opened is checked to be
 * still below the rootfs. No host path is ever built from a container path.
 */
#include "executor_int.h"

#include <linux/openat2.h>
#include <sys/stat.h>

#define RESOLVE_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

int open_in_root(int rootfd, const char *path, int flags)
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
	if (!starts_with_dir(target, c->plan->rootfs, (size_t)c->rootlen) && !(c->rootlen == 1 && target[0] == '/'))
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

int mkdir_all(struct ctx *c, int rootfd, const char *path, int step)
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
const char *split_base(const char *path, char *dir, size_t cap)
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
int resolve_target(struct ctx *c, int rootfd, const char *dest, int is_file, int step)
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
void refuse_symlink(struct ctx *c, const char *dest, int step)
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

int proc_open(struct ctx *c, const char *path, int flags)
{
	return (int)sys_openat2(c->procfd, path, (uint64_t)flags,
				RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH | RESOLVE_NO_XDEV);
}
