#ifndef TSRT_EXECUTOR_H
#define TSRT_EXECUTOR_H

#include "plan.h"

/*
 * Clones the executor (fork-like clone3 with CLONE_PIDFD). Returns the child's pid, with its pidfd and the
 * runtime's end of the SOCK_SEQPACKET sync pair; or -1 with *err_out set. The child never returns.
 */
int executor_spawn(const struct tsrt_plan *plan, int shim_fd, int *pidfd_out, int *sock_out, int *err_out);

#endif
