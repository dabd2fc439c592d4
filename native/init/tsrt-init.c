/*
 * tsrt-init: the sealed helper through which every container process is execed.
 *
 * The executor execs this tiny static program from a sealed memfd, and it execs the user's program. So during
 * and after the hand-over, /proc/<pid>/exe points at an anonymous sealed memfd, never at a host binary (the
 * JS runtime, the addon or dist/tsrt): nothing in the container can reopen and overwrite those
 * (CVE-2019-5736). It refuses to run unless argv[0] is the runtime's magic word, so an image cannot reach it
 * with `#!/proc/self/exe`.
 *
 * No libc: raw syscalls only, so the program is a few KiB and has no loader or library to trust.
 */
#include <asm/unistd.h>

#define MAGIC "tsrt-init:exec"

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

__attribute__((used)) void tsrt_init_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	long err;

	/* execve made us dumpable again: until the user's program replaces us, nothing in the container may ptrace
	 * us (a tracer's SIGSTOP would leave the process stopped) or open our /proc files. A profile that denies
	 * prctl leaves only these few instructions exposed; its error is ignored. */
	sys3(__NR_prctl, 4 /* PR_SET_DUMPABLE */, 0, 0);
	if (argc < 3 || !same(argv[0], MAGIC)) {
		say("tsrt-init: refusing to run: not started by the tsrt executor\n");
		sys3(__NR_exit_group, 126, 0, 0);
	}
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
