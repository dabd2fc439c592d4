#ifndef TSRT_EXECUTOR_H
#define TSRT_EXECUTOR_H

#include <stddef.h>

#include "plan.h"

/*
 * The runtime side (native/addon/spawn.c). Clones a fork-like child (clone3 with CLONE_PIDFD) that only clears
 * close-on-exec on the fds the executor needs and execs the sealed executor memfd, handing it the encoded plan
 * (a sealed memfd of plan_bytes), the sync socket and the sealed helper. plan is the runtime's own decoded copy
 * of the same bytes: it names the fds to keep. Returns the child's pid, with its pidfd and the runtime's end of
 * the SOCK_SEQPACKET sync pair; or -1 with *err_out set and *what_out naming the call that failed.
 */
int executor_spawn(const struct tsrt_plan *plan, const unsigned char *plan_bytes, size_t plan_len, int executor_fd,
		   int shim_fd, int *pidfd_out, int *sock_out, int *err_out, const char **what_out);

/* The executor side (native/executor/main.c): runs the decoded plan. Never returns. */
void executor_run(const struct tsrt_plan *plan, int sock, int shim_fd) __attribute__((noreturn));

/* argv[0] of the executor: main() refuses to run under any other name. */
#define EXECUTOR_MAGIC "tsrt-executor:plan"

#endif
