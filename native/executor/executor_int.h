/*
 * The executor's private header: the context every stage passes along, the one way out (fail), and the
 * functions one file of the executor calls in another. The files, in the order a create runs them (README.md
 * says what each holds and why the rules below hold):
 *   util.c      strings, raw syscalls, sync messages, fail()
 *   stages.c    stage1 (namespaces, the pid-namespace fork) and stage2 (everything up to the execve)
 *   paths.c     R1: every path inside the rootfs resolved under its fd, never through a host path
 *   rootfs.c    mounts, devices, masks, idmapped trees: the plan's rootfs steps
 *   copyup.c    tmpcopyup's walk (R10: getdents records and link targets are the image's bytes)
 *   mountinfo.c the /proc/self/mountinfo line parser (R10), pure
 *   pivot.c     pivot_root, or --no-pivot's detaching of the old root's mounts
 *   process.c   console, sysctls, rlimits, attributes, LSM labels, credentials, capabilities, seccomp, cwd
 *   exec.c      the executable lookup, the wait for `start`, the fds across exec, the execveat
 *
 * The rules here: raw syscalls only, no malloc, no stdio, no glibc id-changing wrappers, buffers on the stack,
 * every failure reported as one fixed-size {step, errno, detail} message.
 */
#ifndef TSRT_EXECUTOR_INT_H
#define TSRT_EXECUTOR_INT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "plan.h"
#include "sync.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
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
	int procfd;  /* private procfs handle (R2) */
	int devnull; /* host /dev/null, verified 1:3 (R3) */
	int rootfd;  /* the container rootfs mount, before pivot_root */
	int rootlen;
	int timens_fd;	  /* /proc/self/timens_offsets, opened while we were still dumpable */
	int helper_waits; /* the sealed helper waits for `start` (wait_for_start) */
};

/* An fd closed when its variable goes out of scope (errno kept): for fds a function opens and is done with by
 * its end. Never for fds the ctx or the plan holds, whose close is a step of its own (R4). fail() does not
 * return, so on a failure nothing runs: the process exits and the kernel closes everything. */
static inline void close_fdp(int *fd)
{
	if (*fd >= 0) {
		int err = errno;
		syscall(SYS_close, *fd);
		errno = err;
	}
}
#define AUTO_CLOSE __attribute__((cleanup(close_fdp)))

/* util.c: strings (no libc formatting in the child) */
size_t slen(const char *s);
size_t sappend(char *buf, size_t cap, size_t at, const char *src);
size_t sappend_u64(char *buf, size_t cap, size_t at, uint64_t v, int negative);
size_t sappend_i64(char *buf, size_t cap, size_t at, int64_t v);
int starts_with_dir(const char *path, const char *dir, size_t dirlen);
/* util.c: raw syscalls and the sync socket */
long sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve);
void die_exit(int code) __attribute__((noreturn));
long send_msg(int sock, uint32_t type, int step, int err, int pid, const char *detail);
long send_with_fd(int sock, void *data, size_t len, int fd);
void fail(struct ctx *c, int step, const char *detail) __attribute__((noreturn));
void fail_errno(struct ctx *c, int step, int err, const char *detail) __attribute__((noreturn));
void expect(struct ctx *c, uint32_t type, int step);
int expect_fd(struct ctx *c, uint32_t type, int step);
void write_all(struct ctx *c, int fd, const char *buf, size_t n, int step, const char *what);

/* paths.c (R1) */
int open_in_root(int rootfd, const char *path, int flags);
int mkdir_all(struct ctx *c, int rootfd, const char *path, int step);
const char *split_base(const char *path, char *dir, size_t cap);
int resolve_target(struct ctx *c, int rootfd, const char *dest, int is_file, int step);
void refuse_symlink(struct ctx *c, const char *dest, int step);
int proc_open(struct ctx *c, const char *path, int flags);

/* rootfs.c */
int set_attrs(int fd, uint64_t set, uint64_t clr, uint32_t propagation, int recursive);
void open_private_proc(struct ctx *c);
void prepare_idmapped_trees(struct ctx *c);
void setup_rootfs(struct ctx *c);
void apply_readonly_paths(struct ctx *c);
void apply_masked_paths(struct ctx *c);
void do_setattr(struct ctx *c, const struct tsrt_step *s);

/* mountinfo.c: the fields of one /proc/self/mountinfo line that detaching needs; the strings point into the
 * line. */
struct mountinfo_entry {
	uint64_t id;
	const char *root;  /* the mount's root within its filesystem: "/" for a full mount */
	const char *point; /* its mount point */
	const char *fstype;
};
int parse_mountinfo(char *line, size_t len, struct mountinfo_entry *e);

/* pivot.c */
void pivot(struct ctx *c);

/* process.c */
void setup_console(struct ctx *c);
void loopback_up(struct ctx *c);
void apply_sysctls(struct ctx *c);
void apply_oom_score_adj(struct ctx *c);
void apply_rlimits(struct ctx *c);
void set_affinity(struct ctx *c, const unsigned char *mask, uint32_t len, const char *which);
void apply_process_attributes(struct ctx *c);
void apply_lsm_labels(struct ctx *c);
int enter_cwd_privileged(struct ctx *c);
void switch_user(struct ctx *c, struct __user_cap_data_struct held[2]);
void enter_cwd(struct ctx *c, int entered);
void raise_permitted(struct ctx *c, const struct __user_cap_data_struct held[2]);
void load_seccomp(struct ctx *c);
void set_capabilities(struct ctx *c);

/* exec.c */
int helper_can_wait(struct ctx *c);
void prepare_exec_fds(struct ctx *c);
void lookup_executable(struct ctx *c, char *out, size_t cap);
void wait_for_start(struct ctx *c, const char *path);
void exec_user_process(struct ctx *c, const char *path, const char *magic);

#endif
