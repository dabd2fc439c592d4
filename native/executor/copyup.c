/*
 * tmpcopyup: the image's directory at a tmpfs destination is copied into the new (still detached) tmpfs.
 *
 * The directory entries are bytes the image chose (R10). getdents64 records are walked only within the bytes
 * the call returned, each record's length checked before it is read; a name must be one path component (not
 * empty, no '/', not "." or "..") and is only ever looked up relative to the directory fd it came from. Each
 * entry is opened once without following it (O_PATH|O_NOFOLLOW), its type taken from that fd, and copied
 * through it: a directory is reopened as "." below it, a regular file through the private procfs, so a file
 * swapped for a device node between the check and the open is never opened. Link targets get a buffer of
 * their own (the old walk reused the getdents count for readlinkat's, and read the image's link bytes as
 * directory entries: issue 13, finding 1).
 *
 * Raw syscalls, no malloc: the per-level getdents buffers live in one anonymous mapping, touched only as deep
 * as the tree goes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "copyup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A getdents64 record: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, then the NUL-terminated name. */
#define DIRENT_RECLEN_AT 16
#define DIRENT_NAME_AT 19

#define DIRBUF_BYTES 4096
/* An entry deeper than PATH_MAX / 2 levels has no path the kernel takes (every level adds at least "x/"): runc
 * and crun, which copy by path, fail there too. It also bounds the recursion and the mapping below. */
#define MAX_DEPTH (4096 / 2)
/* The longest target readlink returns: PATH_MAX less the NUL. One byte more is read to see truncation. */
#define LINK_MAX_BYTES 4095

struct walk {
	int procfd;
	char *dirbufs; /* MAX_DEPTH buffers of DIRBUF_BYTES */
	char link[LINK_MAX_BYTES + 2];
};

static int fail_with(int err)
{
	errno = err;
	return -1;
}

static void close_fd(int fd)
{
	if (fd >= 0)
		syscall(SYS_close, fd);
}

/* "self/fd/<fd>" */
static void fd_link(char out[32], int fd)
{
	char digits[16];
	int n = 0, at = 0;
	memcpy(out, "self/fd/", 8);
	at = 8;
	do
		digits[n++] = (char)('0' + fd % 10);
	while ((fd /= 10) > 0);
	while (n > 0)
		out[at++] = digits[--n];
	out[at] = 0;
}

/* Owner, then mode: chown clears the set-id bits. */
static int own_fd(int fd, const struct stat *st)
{
	if (syscall(SYS_fchown, fd, st->st_uid, st->st_gid) < 0)
		return -1;
	return (int)syscall(SYS_fchmod, fd, st->st_mode & 07777);
}

static int copy_regular(struct walk *w, int src, int dst_dir, const char *name, const struct stat *st)
{
	char link[32];
	int in, out, ret = -1;
	long n;
	fd_link(link, src);
	in = (int)syscall(SYS_openat, w->procfd, link, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	out = (int)syscall(SYS_openat, dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out >= 0) {
		do
			n = syscall(SYS_sendfile, out, in, NULL, 1 << 20);
		while (n > 0 || (n < 0 && errno == EINTR));
		ret = n < 0 ? -1 : own_fd(out, st);
		close_fd(out);
	}
	close_fd(in);
	return ret;
}

static int copy_link(struct walk *w, int src, int dst_dir, const char *name, const struct stat *st)
{
	long n = syscall(SYS_readlinkat, src, "", w->link, (size_t)LINK_MAX_BYTES + 1);
	if (n < 0)
		return -1;
	if (n > LINK_MAX_BYTES)
		return fail_with(ENAMETOOLONG);
	w->link[n] = 0;
	if (syscall(SYS_symlinkat, w->link, dst_dir, name) < 0)
		return -1;
	return (int)syscall(SYS_fchownat, dst_dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
}

/* FIFOs, sockets and device nodes: made anew (never opened), then owned and moded as in the image. */
static int copy_special(int dst_dir, const char *name, const struct stat *st)
{
	if (syscall(SYS_mknodat, dst_dir, name, st->st_mode & (S_IFMT | 0600), st->st_rdev) < 0 ||
	    syscall(SYS_fchownat, dst_dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	/* Follows nothing: the name is the node just made in our own, still unreachable, tmpfs. */
	return (int)syscall(SYS_fchmodat, dst_dir, name, st->st_mode & 07777);
}

static int copy_dir(struct walk *w, int src_dir, int dst_dir, int depth);

static int copy_subdir(struct walk *w, int src, int dst_dir, const char *name, const struct stat *st, int depth)
{
	int sub_src, sub_dst, ret = -1;
	if (syscall(SYS_mkdirat, dst_dir, name, 0700) < 0)
		return -1;
	sub_src = (int)syscall(SYS_openat, src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sub_dst = (int)syscall(SYS_openat, dst_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub_src >= 0 && sub_dst >= 0 && copy_dir(w, sub_src, sub_dst, depth + 1) == 0)
		ret = own_fd(sub_dst, st);
	close_fd(sub_src);
	close_fd(sub_dst);
	return ret;
}

static int copy_entry(struct walk *w, int src_dir, int dst_dir, const char *name, int depth)
{
	struct stat st;
	int src, ret;
	src = (int)syscall(SYS_openat, src_dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (src < 0)
		return -1;
	if (fstat(src, &st) < 0)
		ret = -1;
	else if (S_ISDIR(st.st_mode))
		ret = copy_subdir(w, src, dst_dir, name, &st, depth);
	else if (S_ISREG(st.st_mode))
		ret = copy_regular(w, src, dst_dir, name, &st);
	else if (S_ISLNK(st.st_mode))
		ret = copy_link(w, src, dst_dir, name, &st);
	else
		ret = copy_special(dst_dir, name, &st);
	close_fd(src);
	return ret;
}

/*
 * The name of the record at buf[off], len bytes of records returned: NULL with errno EUCLEAN unless the
 * record lies wholly within them and holds a NUL-terminated name that is one path component. *reclen gets
 * the record's length.
 */
static const char *record_name(const char *buf, long len, long off, unsigned *reclen)
{
	unsigned short rl;
	const char *name;
	size_t room, n;
	if (len - off < DIRENT_NAME_AT + 1)
		return errno = EUCLEAN, NULL;
	memcpy(&rl, buf + off + DIRENT_RECLEN_AT, sizeof(rl));
	if (rl < DIRENT_NAME_AT + 1 || rl > len - off)
		return errno = EUCLEAN, NULL;
	name = buf + off + DIRENT_NAME_AT;
	room = rl - DIRENT_NAME_AT;
	n = strnlen(name, room);
	if (n == 0 || n == room || memchr(name, '/', n))
		return errno = EUCLEAN, NULL;
	*reclen = rl;
	return name;
}

static int copy_dir(struct walk *w, int src_dir, int dst_dir, int depth)
{
	char *buf;
	long len, off;
	if (depth >= MAX_DEPTH)
		return fail_with(ENAMETOOLONG);
	buf = w->dirbufs + (size_t)depth * DIRBUF_BYTES;
	while ((len = syscall(SYS_getdents64, src_dir, buf, DIRBUF_BYTES)) > 0) {
		if (len > DIRBUF_BYTES)
			return fail_with(EUCLEAN);
		for (off = 0; off < len;) {
			unsigned reclen;
			const char *name = record_name(buf, len, off, &reclen);
			if (!name)
				return -1;
			off += reclen;
			if (!strcmp(name, ".") || !strcmp(name, ".."))
				continue;
			if (copy_entry(w, src_dir, dst_dir, name, depth) < 0)
				return -1;
		}
	}
	return len < 0 ? -1 : 0;
}

int copyup_tree(int procfd, int src_dir, int dst_dir)
{
	struct walk w;
	int ret, err;
	w.procfd = procfd;
	w.dirbufs = (char *)syscall(SYS_mmap, NULL, (size_t)MAX_DEPTH * DIRBUF_BYTES, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (w.dirbufs == MAP_FAILED)
		return -1;
	ret = copy_dir(&w, src_dir, dst_dir, 0);
	err = errno;
	syscall(SYS_munmap, w.dirbufs, (size_t)MAX_DEPTH * DIRBUF_BYTES);
	errno = err;
	return ret;
}
