/*
 * tsrt-executor: the program the runtime's cloned child execs at once from a sealed memfd (R5: the container
 * never sees a host executable), reading a serialised plan instead of running C inside the addon.
 * argv: EXECUTOR_MAGIC, the sync socket fd, the sealed plan memfd, the sealed helper memfd.
 * The environment is empty; every signal is still blocked from the clone (the executor unblocks them only for
 * the user's execve).
 *
 * The runtime already decoded and checked the same plan bytes before cloning; decoding them again here is the
 * same length-checked decoder, so a plan that reaches stage1 is the plan the runtime validated.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "executor.h"
#include "plan.h"
#include "sync.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void refuse(const char *why)
{
	static const char prefix[] = "tsrt-executor: refusing to run: ";
	if (write(2, prefix, sizeof(prefix) - 1) < 0 || write(2, why, strlen(why)) < 0 || write(2, "\n", 1) < 0) {
	}
	_exit(126);
}

/* A non-negative decimal fd number and nothing else. */
static int parse_fd(const char *s)
{
	long v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 1000000)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return (int)v;
}

static void report(int sock, int err, const char *detail)
{
	struct tsrt_msg m;
	memset(&m, 0, sizeof(m));
	m.type = MSG_ERROR;
	m.step = S_SETUP;
	m.err = err;
	strncpy(m.detail, detail, sizeof(m.detail) - 1);
	send(sock, &m, sizeof(m), MSG_NOSIGNAL);
	_exit(1);
}

/* The sealed plan memfd, mapped: decoded in place, so its strings are the mapping's bytes (no malloc, no copy). */
static const unsigned char *map_plan(int fd, size_t *len)
{
	struct stat st;
	void *p;
	if (fstat(fd, &st) < 0)
		return NULL;
	if (st.st_size <= 0 || (unsigned long long)st.st_size > 0xffffffffu) {
		errno = EPROTO;
		return NULL;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	*len = (size_t)st.st_size;
	return p;
}

#ifdef TSRT_SANITIZE
#include <stdlib.h>
/* The sanitized variant (TSRT_SANITIZE=1, test-only): its environment is empty, so the sanitizers' options are
 * compiled in. A report goes to stderr and ends the executor with SIGABRT, which the runtime reports as a failed
 * start; leak checking is off because the executor ends in execveat, and LeakSanitizer's ptrace-based scan
 * cannot run under the seccomp filter or in a user namespace anyway. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "abort_on_error=1:halt_on_error=1:detect_leaks=0:print_summary=1";
}
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "abort_on_error=1:halt_on_error=1:print_stacktrace=1";
}

/* Proof the sanitizer is in the binary: run the sanitized executor itself with TSRT_SANITIZE_SELFTEST=1 (the
 * runtime always starts it with an empty environment) and it reads one byte past an 8-byte heap block, through
 * a pointer UBSan's bounds check cannot see, so only ASan can report it (and must abort). */
static void sanitize_selftest(void)
{
	const char *on = getenv("TSRT_SANITIZE_SELFTEST");
	char *volatile block;
	volatile int i = 8;
	if (!on || strcmp(on, "1") != 0)
		return;
	block = calloc(8, 1);
	if (block && block[i] == 0x7f)
		_exit(3);
	_exit(2);
}
#endif

int main(int argc, char **argv)
{
	struct tsrt_plan plan;
	const char *why = NULL;
	const unsigned char *bytes;
	size_t len = 0;
	int sock, plan_fd, shim_fd;

	/* R5, first: until the user's execve nothing in a container may ptrace us or open our /proc files. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#ifdef TSRT_SANITIZE
	sanitize_selftest();
#endif
	if (argc != 4 || strcmp(argv[0], EXECUTOR_MAGIC) != 0)
		refuse("not started by the tsrt runtime");
	sock = parse_fd(argv[1]);
	plan_fd = parse_fd(argv[2]);
	shim_fd = parse_fd(argv[3]);
	if (sock < 0 || plan_fd < 0 || shim_fd < 0)
		refuse("bad fd arguments");

	bytes = map_plan(plan_fd, &len);
	if (!bytes)
		report(sock, errno, "reading the launch plan");
	close(plan_fd);
	if (plan_decode(bytes, len, &plan, &why) != 0)
		report(sock, EPROTO, why);
	executor_run(&plan, sock, shim_fd);
}
