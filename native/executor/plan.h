/*
 * The launch plan as the executor sees it: flat, fully resolved, no decisions left.
 *
 * The TypeScript side encodes it (src/plan/codec.ts) into a length-framed byte buffer; plan_decode() turns the
 * buffer into this struct in the runtime process, before clone, so a malformed plan is rejected before any
 * child exists, and once more in the sealed executor, from a sealed memfd of the same bytes. Strings point into
 * the buffer itself (NUL-terminated by the codec), which must outlive the plan; arrays are sized from the plan's
 * own counts and live in one anonymous mapping the decoder makes (no malloc, so the executor uses it too).
 */
#ifndef TSRT_PLAN_H
#define TSRT_PLAN_H

#include <stdint.h>
#include <stddef.h>

/*
 * The plan's constants (TSRT_PLAN_MAGIC/VERSION, the limits TSRT_PATH_MAX and TSRT_ARG_STRLEN, the STEP_* kinds,
 * MF_* step flags, PF_* plan flags, TSRT_SECCOMP_FLAG*) are written once, with why each exists, in
 * src/native-abi/table.ts; npm run build generates this header from it (hack/gen-abi.ts). The only length
 * limits are the kernel's: a path is at most PATH_MAX bytes with its NUL, one argument or environment string at
 * most MAX_ARG_STRLEN (execve refuses longer ones). Other strings and every count are bounded by the plan's own
 * bytes (a count promising more elements than bytes remain is refused before anything is allocated), and the
 * plan by its 32-bit length field.
 */
#include "../generated/tsrt-exec-abi.h"

struct tsrt_step {
	uint32_t kind;
	uint32_t flags;
	const char *source;   /* bind / device: host path; fs: source name shown in mountinfo */
	const char *dest;     /* absolute path inside the container */
	const char *fstype;   /* fs mounts */
	const char *data;     /* fs mounts: comma separated fsconfig parameters; symlink: link target */
	const char *fallback; /* MF_FALLBACK_BIND source */
	uint64_t attr_set;    /* MOUNT_ATTR_* */
	uint64_t attr_clr;
	uint32_t propagation; /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE or 0 */
	uint32_t mode;	      /* mknod: S_IFCHR/S_IFBLK/S_IFIFO | perms */
	uint64_t rdev;	      /* mknod / bind device: device number (makedev) */
	uint32_t uid, gid;    /* mknod owner */
};

/* An idmapped bind: its tree is cloned and given MOUNT_ATTR_IDMAP before the executor leaves the host's user
 * namespace (it needs CAP_SYS_ADMIN over userns_fd), and attached later in place of a fresh clone. */
struct tsrt_idmap {
	uint32_t step;	    /* index of a STEP_MOUNT_BIND step */
	int32_t userns_fd;  /* a user namespace carrying the mount's maps, made by the runtime */
	uint32_t recursive; /* ridmap: AT_RECURSIVE */
	int32_t tree;	    /* not in the plan: the executor's idmapped tree fd until attached, -1 before */
};

struct tsrt_nsjoin {
	uint32_t type; /* CLONE_NEW* */
	const char *path;
};

struct tsrt_sysctl {
	const char *key; /* already turned into a path under /proc/sys: net/ipv4/ip_forward */
	const char *value;
};

struct tsrt_rlimit {
	uint32_t resource;
	uint64_t soft, hard;
};

/* Every CLONE_NEW* namespace flag (TIME, NS, CGROUP, UTS, IPC, USER, PID, NET): what join_nsflags may hold. */
#define TSRT_CLONE_NS_ALL 0x7e020080u

struct tsrt_plan {
	uint32_t flags;
	uint64_t unshare_flags; /* CLONE_NEW* to create, except USER (PF_NEW_USERNS), CGROUP and TIME */
	uint32_t njoin;
	struct tsrt_nsjoin *join;
	int64_t time_monotonic_sec, time_boottime_sec;
	uint32_t time_monotonic_nsec, time_boottime_nsec;

	const char *rootfs;	     /* absolute host path */
	uint32_t root_propagation;   /* MS_* | MS_REC applied to "/" before any mount */
	uint32_t rootfs_propagation; /* rootfsPropagation applied to the new root after pivot, 0 if unset */
	const char *hostname, *domainname;

	uint32_t nsteps;
	struct tsrt_step *steps;
	uint32_t nmasked, nreadonly, nsysctl;
	const char **masked;
	const char **readonly;
	struct tsrt_sysctl *sysctl;

	int32_t console_socket; /* fd, or -1 */
	uint32_t console_rows, console_cols;
	int32_t oom_score_adj;
	uint32_t nrlimits;
	struct tsrt_rlimit *rlimits;
	uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
	uint32_t uid, gid, umask;
	uint32_t ngroups;
	uint32_t *groups;
	const char *cwd;
	uint32_t nargs, nenv;
	const char **args; /* NULL terminated */
	const char **env;  /* NULL terminated */
	/* args with two free slots in front: the argv of the sealed helper (its magic and the resolved path),
	 * written by the executor just before execveat. */
	const char **helper_argv;
	int32_t fifo_fd; /* O_PATH fd of exec.fifo, or -1 */
	uint32_t preserve_fds;
	uint32_t seccomp_len; /* bytes of struct sock_filter */
	const unsigned char *seccomp;
	uint32_t seccomp_flags; /* SECCOMP_FILTER_FLAG_* for seccomp(2); NEW_LISTENER: hand the fd to the runtime */

	/* Process attributes (runtime-spec 1.2). Each has_* says whether the config asked for it. */
	uint32_t has_sched, has_ioprio, has_personality, has_mempolicy;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
	uint32_t ioprio;					/* class << 13 | level */
	uint32_t affinity_initial_len, affinity_final_len;	/* bytes; 0 = unset; multiples of 8 */
	const unsigned char *affinity_initial, *affinity_final; /* CPU bitmaps */
	uint32_t personality;
	uint32_t mempolicy_mode; /* MPOL_* | MPOL_F_* */
	uint32_t mempolicy_nodes_len;
	const unsigned char *mempolicy_nodes;
	const char *apparmor_profile; /* NULL = none */
	const char *selinux_label;    /* NULL = none */
	const char *mount_label;      /* for MF_MOUNT_LABEL steps */
	uint32_t nidmaps;
	struct tsrt_idmap *idmaps;
	int32_t join_pidfd;    /* PF_EXEC: pidfd of the container init, or -1 */
	uint32_t join_nsflags; /* PF_EXEC: CLONE_NEW* of the init's namespaces that differ from the runtime's */
	/* The `tasks` files of the container's v1 cgroups, opened by the runtime: the init writes "0" to each, a move
	 * of itself that takes no global lock (the runtime's write of its pid to cgroup.procs waits for an RCU grace
	 * period). */
	uint32_t ncgroup_tasks;
	int32_t *cgroup_tasks;

	/* Room for the executor's list of fds to keep across set-up: 8 + nidmaps + ncgroup_tasks entries. */
	int32_t *keep_fds;

	/* Decoder-owned storage: the mapping every array above lives in. */
	void *arena;
	size_t arena_size;
};

/* Returns 0, or -1 with a static reason in *why (never NULL on failure). buf must outlive the plan. */
int plan_decode(const unsigned char *buf, size_t len, struct tsrt_plan *plan, const char **why);
void plan_free(struct tsrt_plan *plan);

#endif
