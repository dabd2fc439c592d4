/*
 * The executor's small tools: strings without libc formatting, the raw syscalls glibc would wrap with state of
 * its own, and the sync socket. fail() is the one way out of a failed step: one fixed-size {step, errno,
 * detail} message to the runtime, then exit_group. Nothing here allocates.
 */
#include "executor_int.h"
#include "fdmsg.h"

#include <linux/openat2.h>
#include <sys/socket.h>

size_t slen(const char *s)
{
	size_t n = 0;
	while (s && s[n])
		n++;
	return n;
}

/* Appends src to buf (capacity cap), always NUL-terminating; returns the new length. */
size_t sappend(char *buf, size_t cap, size_t at, const char *src)
{
	while (src && *src && at + 1 < cap)
		buf[at++] = *src++;
	if (at < cap)
		buf[at] = 0;
	return at;
}

size_t sappend_u64(char *buf, size_t cap, size_t at, uint64_t v, int negative)
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

size_t sappend_i64(char *buf, size_t cap, size_t at, int64_t v)
{
	return v < 0 ? sappend_u64(buf, cap, at, (uint64_t)(-(v + 1)) + 1, 1)
		     : sappend_u64(buf, cap, at, (uint64_t)v, 0);
}

int starts_with_dir(const char *path, const char *dir, size_t dirlen)
{
	size_t i;
	for (i = 0; i < dirlen; i++)
		if (path[i] != dir[i])
			return 0;
	return path[dirlen] == 0 || path[dirlen] == '/';
}

/* ---- raw syscalls ---- */

long sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
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

void die_exit(int code)
{
	syscall(SYS_exit_group, code);
	/* Only a seccomp filter that denies exit_group (a config's profile, loaded before the start signal) gets
	 * here. Spinning would hang the runtime on the sync socket forever: a fault kills us without a syscall,
	 * since the kernel forces its signal even when blocked, and the runtime then sees EOF. */
	for (;;)
		__builtin_trap();
}

long send_msg(int sock, uint32_t type, int step, int err, int pid, const char *detail)
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

void fail(struct ctx *c, int step, const char *detail)
{
	send_msg(c->sock, MSG_ERROR, step, errno, 0, detail);
	die_exit(1);
}

void fail_errno(struct ctx *c, int step, int err, const char *detail)
{
	errno = err;
	fail(c, step, detail);
}

/* Waits for one message of the expected type; EOF means the runtime died or gave up: leave quietly. */
void expect(struct ctx *c, uint32_t type, int step)
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
int expect_fd(struct ctx *c, uint32_t type, int step)
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

/* One sendmsg of `len` bytes with `fd` attached (SCM_RIGHTS). */
long send_with_fd(int sock, void *data, size_t len, int fd)
{
	struct fdmsg m;
	return syscall(SYS_sendmsg, sock, fdmsg_init(&m, data, len, fd), MSG_NOSIGNAL);
}

void write_all(struct ctx *c, int fd, const char *buf, size_t n, int step, const char *what)
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
