/*
 * Messages on the SOCK_SEQPACKET pair between the runtime (parent) and the cloned executor. One fixed-size
 * struct per packet, so a short or long read is itself a protocol error.
 */
#ifndef TSRT_SYNC_H
#define TSRT_SYNC_H

#include <stdint.h>

enum tsrt_msg_type {
	/* child -> parent */
	MSG_USERNS = 1,	      /* the user namespace exists: write uid_map/gid_map, then send MSG_ACK */
	MSG_PID = 2,	      /* host pid of the process that becomes the container init (pid field) */
	MSG_PREPIVOT = 3,     /* mounts done, before pivot_root: run prestart/createRuntime hooks, then MSG_ACK */
	MSG_READY = 4,	      /* set-up complete, waiting for start (fifo or MSG_START) */
	MSG_ERROR = 5,	      /* step, err and detail say what failed */
	MSG_SECCOMP = 6,      /* carries the seccomp listener fd (SCM_RIGHTS): pass it to listenerPath, then MSG_ACK */
	MSG_MOUNT_SOURCE = 7, /* open the source of bind step `pid` (an index into the plan's steps) in our mount
			       * namespace with the runtime's credentials; MSG_ACK carries the O_PATH fd */
	/* parent -> child */
	MSG_ACK = 16,
	MSG_GO = 17,	/* after MSG_PID: the parent has placed the init (cgroups); continue */
	MSG_START = 18, /* run: exec now */
};

enum tsrt_step_id {
	S_NONE = 0,
	S_SETUP,   /* signals, fds, dumpable */
	S_JOIN_NS, /* setns(path) */
	S_USERNS,  /* unshare(CLONE_NEWUSER) / id maps */
	S_UNSHARE, /* unshare of the other namespaces */
	S_TIMENS,  /* timens_offsets */
	S_FORK,	   /* the second clone into the pid namespace */
	S_HOSTNAME,
	S_ROOTFS, /* propagation, rootfs bind, procfs handle */
	S_MOUNT,
	S_SYMLINK,
	S_DEVICE,
	S_MKDIR,
	S_PIVOT,
	S_CONSOLE,
	S_SYSCTL,
	S_READONLY,
	S_MASK,
	S_ROOT_RO,
	S_OOM,
	S_RLIMIT,
	S_CAPS,
	S_GROUPS,
	S_USER,
	S_CWD,
	S_EXEC_LOOKUP,
	S_WAIT_START,
	S_NNP,
	S_SECCOMP,
	S_EXEC,
	S_CGROUPNS,
	S_SCHED,    /* sched_setattr */
	S_IOPRIO,   /* ioprio_set */
	S_AFFINITY, /* sched_setaffinity (execCPUAffinity) */
	S_PERSONALITY,
	S_MEMPOLICY, /* set_mempolicy */
	S_LSM,	     /* AppArmor profile / SELinux label for the exec */
	S_IDMAP,     /* MOUNT_ATTR_IDMAP on an idmapped bind's tree */
	S_LOOPBACK,  /* bring "lo" up in a new network namespace */
};

#define TSRT_DETAIL_MAX 512

struct tsrt_msg {
	uint32_t type;
	int32_t step;
	int32_t err;
	int32_t pid;
	char detail[TSRT_DETAIL_MAX];
};

#endif
