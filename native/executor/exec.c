/*
 * The last steps before the user's program: find it on the container's PATH as the container user, wait for
 * `start` (or hand the wait to the sealed helper), leave only stdio and the preserved fds open across exec
 * (R4), and execveat the sealed helper, which execs the program (R5).
 */
#include "executor_int.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>

static const char *env_path(const struct tsrt_plan *p)
{
	uint32_t i;
	for (i = 0; i < p->nenv; i++)
		if (p->env[i][0] == 'P' && p->env[i][1] == 'A' && p->env[i][2] == 'T' && p->env[i][3] == 'H' &&
		    p->env[i][4] == '=')
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
void lookup_executable(struct ctx *c, char *out, size_t cap)
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

void wait_for_start(struct ctx *c, const char *path)
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
			sappend_u64(magic, sizeof(magic), sappend(magic, sizeof(magic), 0, SHIM_WAIT_MAGIC),
				    (uint64_t)p->fifo_fd, 0);
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
int helper_can_wait(struct ctx *c)
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
void prepare_exec_fds(struct ctx *c)
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
void exec_user_process(struct ctx *c, const char *path, const char *magic)
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
	fail(c, S_EXEC,
	     p->seccomp_len ? "execveat of the sealed helper (does the seccomp profile allow execveat?)"
			    : "execveat of the sealed helper");
}
