/*
 * tsrt-init: the sealed helper through which every container process is execed.
 *
 * The executor execs this tiny static program from a sealed memfd, and it execs the user's program. So during
 * and after the hand-over, /proc/<pid>/exe points at an anonymous sealed memfd, never at a host binary (the
 * JS runtime, the addon or dist/tsrt): nothing in the container can reopen and overwrite those
 * (CVE-2019-5736). It refuses to run unless argv[0] is the runtime's magic word, so an image cannot reach it
 * with `#!/proc/self/exe`.
 *
 * A created container's init is this helper too, waiting for `start` (argv[0] "tsrt-init:wait:<fd>", fd the
 * O_PATH handle of exec.fifo): it opens the fifo for writing through the container's /proc, which blocks
 * until `start` opens the other end, makes sure it opened that fifo and no other file, writes the byte
 * `start` waits for and execs. So while it waits it holds stdio and the fifo and nothing else, as runc's init
 * does (issue 13, finding 7): the executor's root, private procfs and sync socket were close-on-exec.
 *
 * No libc: raw syscalls only, so the program is a few KiB and has no loader or library to trust.
 */
#include <asm/unistd.h>

#define MAGIC "tsrt-init:exec"
#define WAIT_MAGIC "tsrt-init:wait:"
#define AT_FDCWD -100
#define O_WRONLY 01
#define O_CLOEXEC 02000000
#define EINTR 4

static long sys3(long n, long a, long b, long c)
{
	long ret;
#if defined(__x86_64__)
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	ret = x0;
#else
#error "unsupported architecture"
#endif
	return ret;
}

static unsigned long len(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

static void say(const char *s)
{
	sys3(__NR_write, 2, (long)s, (long)len(s));
}

static int same(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static const char *errname(long e)
{
	switch (e) {
	case 2: return "no such file or directory";
	case 7: return "argument list too long";
	case 8: return "exec format error";
	case 13: return "permission denied";
	case 20: return "not a directory";
	case 26: return "text file busy";
	case 40: return "too many levels of symbolic links";
	default: return "exec failed";
	}
}

/* The text after prefix in s, or 0 when s does not start with it. */
static const char *after(const char *s, const char *prefix)
{
	while (*prefix && *s == *prefix)
		s++, prefix++;
	return *prefix ? 0 : s;
}

static void die(const char *what, long err)
{
	say("tsrt-init: ");
	say(what);
	say(": ");
	say(err ? errname(err) : "not the container's exec fifo");
	say("\n");
	sys3(__NR_exit_group, 126, 0, 0);
}

/* Whether two fds are one file (st_dev and st_ino lead struct stat on every architecture here); -1 when a
 * seccomp filter denies fstat. */
static int same_file(long a, long b)
{
	unsigned long sa[32], sb[32];
	/* The two words compared start known: fstat fills them through inline assembly no analyzer follows, and
	 * a zeroed array would need a memset this freestanding program does not have. */
	sa[0] = sa[1] = sb[0] = sb[1] = 0;
	if (sys3(__NR_fstat, a, (long)sa, 0) < 0 || sys3(__NR_fstat, b, (long)sb, 0) < 0)
		return -1;
	return sa[0] == sb[0] && sa[1] == sb[1];
}

/* Blocks until `start` opens exec.fifo (fd, an O_PATH handle; digits its number) for reading, then answers. */
static void wait_for_start(const char *digits)
{
	char path[48] = "/proc/self/fd/";
	long fifo = 0, fd, n = 14, i;
	for (i = 0; digits[i]; i++) {
		if (digits[i] < '0' || digits[i] > '9' || i > 9)
			die("exec.fifo", 22 /* EINVAL */);
		fifo = fifo * 10 + (digits[i] - '0');
		path[n++] = digits[i];
	}
	if (i == 0)
		die("exec.fifo", 22);
	path[n] = 0;
	do
		fd = sys3(__NR_openat, AT_FDCWD, (long)path, O_WRONLY | O_CLOEXEC);
	while (fd == -EINTR);
	if (fd < 0)
		die("exec.fifo", -fd);
	/* The executor checked the same before the container's seccomp filter; a filter without fstat leaves it
	 * at that one check. */
	if (same_file(fd, fifo) == 0)
		die("exec.fifo", 0);
	if (sys3(__NR_write, fd, (long)"0", 1) != 1)
		die("exec.fifo", 5 /* EIO */);
	sys3(__NR_close, fd, 0, 0);
	sys3(__NR_close, fifo, 0, 0);
}

__attribute__((used)) void tsrt_init_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	const char *fifo;
	long err;

	/* execve made us dumpable again: until the user's program replaces us, nothing in the container may ptrace
	 * us (a tracer's SIGSTOP would leave the process stopped) or open our /proc files. A profile that denies
	 * prctl leaves only these few instructions exposed; its error is ignored. */
	sys3(__NR_prctl, 4 /* PR_SET_DUMPABLE */, 0, 0);
	fifo = argc >= 3 ? after(argv[0], WAIT_MAGIC) : 0;
	if (argc < 3 || (!fifo && !same(argv[0], MAGIC))) {
		say("tsrt-init: refusing to run: not started by the tsrt executor\n");
		sys3(__NR_exit_group, 126, 0, 0);
	}
	if (fifo)
		wait_for_start(fifo);
	err = -sys3(__NR_execve, (long)argv[1], (long)(argv + 2), (long)envp);
	say("tsrt-init: exec ");
	say(argv[1]);
	say(": ");
	say(errname(err));
	say("\n");
	sys3(__NR_exit_group, err == 2 ? 127 : 126, 0, 0);
}

#if defined(__x86_64__)
__asm__(".globl _start\n_start:\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall tsrt_init_main\n\thlt\n");
#elif defined(__aarch64__)
__asm__(".globl _start\n_start:\n\tmov x0, sp\n\tbl tsrt_init_main\n");
#endif
