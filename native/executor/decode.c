/*
 * Plan decoder. Runs in the runtime process before any clone, and again in the sealed executor (main.c) on the
 * same bytes: every length is checked against the bytes that are left (and path and exec strings against the
 * kernel's own limits), every string must carry its terminating NUL and no NUL inside, and the buffer must be
 * consumed exactly. A plan that fails any check is rejected whole; nothing is guessed.
 * (CVE-2021-43784 was a 16-bit length that wrapped in runc's equivalent of this message.)
 *
 * No malloc: strings stay where they are in the buffer, and arrays come from one anonymous mapping sized from
 * the plan's length. Every element of a list takes at least half as many plan bytes as its decoded form (a
 * string pointer 8 bytes for at least 4, a step 88 for at least 68, ...), and a count is refused unless that
 * many elements could still follow, so the lists never need more than twice the plan's bytes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "plan.h"

#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/bpf_common.h>

struct reader {
	const unsigned char *p;
	size_t left;
	const char *why;
	unsigned char *arena;
	size_t arena_size, arena_used;
};

/* Arrays beyond twice the plan's bytes: the slots every list gets for free (NULL terminators, the helper's
 * argv slots, the fds to keep). */
#define ARENA_SLACK 4096u

static int fail(struct reader *r, const char *why)
{
	if (!r->why)
		r->why = why;
	return -1;
}

static int get_bytes(struct reader *r, void *out, size_t n)
{
	if (r->why)
		return -1;
	if (n > r->left)
		return fail(r, "truncated plan");
	memcpy(out, r->p, n);
	r->p += n;
	r->left -= n;
	return 0;
}

static uint32_t get_u32(struct reader *r)
{
	unsigned char b[4] = { 0 };
	get_bytes(r, b, 4);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get_u64(struct reader *r)
{
	uint64_t lo = get_u32(r);
	uint64_t hi = get_u32(r);
	return lo | hi << 32;
}

#define NULL_STRING 0xffffffffu
/* A string with no limit but the plan's bytes. */
#define ANY_LENGTH 0

/* Strings are u32 length + bytes + NUL; the length 0xffffffff stands for "absent". limit counts the NUL. */
static const char *get_str_max(struct reader *r, size_t limit, const char *too_long)
{
	uint32_t n = get_u32(r);
	const char *s;
	if (r->why || n == NULL_STRING)
		return NULL;
	if (limit && (size_t)n + 1 > limit)
		return fail(r, too_long), NULL;
	if ((size_t)n + 1 > r->left)
		return fail(r, "truncated plan"), NULL;
	s = (const char *)r->p;
	if (memchr(s, 0, n) != NULL || s[n] != 0)
		return fail(r, "malformed string in plan"), NULL;
	r->p += (size_t)n + 1;
	r->left -= (size_t)n + 1;
	return s;
}

static const char *get_str(struct reader *r)
{
	return get_str_max(r, ANY_LENGTH, NULL);
}

static const char *get_path(struct reader *r)
{
	return get_str_max(r, TSRT_PATH_MAX, "path longer than PATH_MAX in plan");
}

static const char *required(struct reader *r, const char *s)
{
	if (!s && !r->why)
		fail(r, "missing required string in plan");
	return s;
}

static const char *need_str(struct reader *r)
{
	return required(r, get_str(r));
}

static const char *need_path(struct reader *r)
{
	return required(r, get_path(r));
}

/* A list count: no more elements than the bytes left could hold, each taking at least min_bytes. */
static uint32_t get_count(struct reader *r, size_t min_bytes)
{
	uint32_t n = get_u32(r);
	if (!r->why && n > r->left / min_bytes)
		fail(r, "list longer than the plan");
	return r->why ? 0 : n;
}

/* Zeroed room for n elements of size bytes, plus `extra` more. */
static void *alloc_array(struct reader *r, size_t n, size_t extra, size_t size)
{
	size_t bytes;
	void *a;
	if (r->why)
		return NULL;
	if (n + extra < n || n + extra > (r->arena_size - r->arena_used) / size)
		return fail(r, "plan arrays larger than their bound"), NULL;
	bytes = ((n + extra) * size + 7) & ~(size_t)7;
	a = r->arena + r->arena_used;
	r->arena_used += bytes;
	return a;
}

/* The wire size of the smallest string: its u32 length alone (absent) or with a NUL (empty). */
#define MIN_STR_BYTES 4u

/* A list of strings, NULL terminated, with `front` free slots before its first element. */
static const char **get_str_list(struct reader *r, uint32_t *count, size_t limit, const char *too_long, size_t front)
{
	uint32_t n = get_count(r, MIN_STR_BYTES), i;
	const char **list = alloc_array(r, n, front + 1, sizeof(char *));
	for (i = 0; list && i < n && !r->why; i++)
		list[front + i] = required(r, get_str_max(r, limit, too_long));
	*count = n;
	return list ? list + front : NULL;
}

/* A u32 length and that many bytes, kept in place; the length must be a multiple of 8 (arrays of longs). */
static const unsigned char *get_bitmap(struct reader *r, uint32_t *len, uint32_t max)
{
	const unsigned char *p;
	*len = get_u32(r);
	if (r->why)
		return *len = 0, NULL;
	if (*len % 8 != 0 || *len > max)
		return fail(r, "malformed bitmap in plan"), *len = 0, NULL;
	if (*len > r->left)
		return fail(r, "truncated plan"), *len = 0, NULL;
	p = *len ? r->p : NULL;
	r->p += *len;
	r->left -= *len;
	return p;
}

static uint32_t get_bool(struct reader *r)
{
	uint32_t v = get_u32(r);
	if (!r->why && v > 1)
		fail(r, "malformed flag in plan");
	return v;
}

static int must_be_absolute(struct reader *r, const char *path)
{
	if (path && path[0] != '/')
		return fail(r, "relative path in plan");
	return 0;
}

int plan_decode(const unsigned char *buf, size_t len, struct tsrt_plan *plan, const char **why)
{
	struct reader r;
	uint32_t i, seen_ns = 0;
	long arena;

	memset(plan, 0, sizeof(*plan));
	plan->console_socket = -1;
	plan->fifo_fd = -1;
	plan->join_pidfd = -1;
	/* The header's length field is 32 bits: nothing longer can be a plan. */
	if (len < 12 || len > 0xffffffffu) {
		*why = "plan size out of range";
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.p = buf;
	r.left = len;
	r.arena_size = 2 * len + ARENA_SLACK;
	/* Reserved, not committed: pages are touched only as far as the arrays reach. */
	arena = syscall(SYS_mmap, NULL, r.arena_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (arena == -1) {
		*why = "out of memory";
		return -1;
	}
	r.arena = (unsigned char *)arena;
	plan->arena = r.arena;
	plan->arena_size = r.arena_size;

	if (get_u32(&r) != TSRT_PLAN_MAGIC)
		fail(&r, "bad plan magic");
	if (get_u32(&r) != TSRT_PLAN_VERSION)
		fail(&r, "unsupported plan version");
	if (get_u32(&r) != len)
		fail(&r, "plan length does not match its header");

	plan->flags = get_u32(&r);
	plan->unshare_flags = get_u64(&r);
	plan->njoin = get_count(&r, 8);
	plan->join = alloc_array(&r, plan->njoin, 0, sizeof(*plan->join));
	for (i = 0; plan->join && i < plan->njoin && !r.why; i++) {
		uint32_t type = get_u32(&r);
		plan->join[i].type = type;
		plan->join[i].path = need_path(&r);
		must_be_absolute(&r, plan->join[i].path);
		/* One namespace of each type: the executor holds one fd per type while it joins them. */
		if (!r.why && (type == 0 || (type & (type - 1)) || (type & ~(uint32_t)TSRT_CLONE_NS_ALL)))
			fail(&r, "unknown namespace type in plan");
		else if (!r.why && (seen_ns & type))
			fail(&r, "namespace joined twice in plan");
		seen_ns |= type;
	}
	plan->time_monotonic_sec = (int64_t)get_u64(&r);
	plan->time_monotonic_nsec = get_u32(&r);
	plan->time_boottime_sec = (int64_t)get_u64(&r);
	plan->time_boottime_nsec = get_u32(&r);

	plan->rootfs = need_path(&r);
	must_be_absolute(&r, plan->rootfs);
	plan->root_propagation = get_u32(&r);
	plan->rootfs_propagation = get_u32(&r);
	plan->hostname = get_str(&r);
	plan->domainname = get_str(&r);

	/* kind, flags, five absent strings, attributes, propagation, mode, rdev, uid, gid */
	plan->nsteps = get_count(&r, 68);
	plan->steps = alloc_array(&r, plan->nsteps, 0, sizeof(*plan->steps));
	for (i = 0; plan->steps && i < plan->nsteps && !r.why; i++) {
		struct tsrt_step *s = &plan->steps[i];
		s->kind = get_u32(&r);
		s->flags = get_u32(&r);
		s->source = get_path(&r);
		s->dest = need_path(&r);
		s->fstype = get_str(&r);
		s->data = get_str(&r);
		s->fallback = get_path(&r);
		s->attr_set = get_u64(&r);
		s->attr_clr = get_u64(&r);
		s->propagation = get_u32(&r);
		s->mode = get_u32(&r);
		s->rdev = get_u64(&r);
		s->uid = get_u32(&r);
		s->gid = get_u32(&r);
		must_be_absolute(&r, s->dest);
		if (r.why)
			break;
		switch (s->kind) {
		case STEP_MOUNT_BIND:
		case STEP_BIND_DEVICE:
			if (!s->source)
				fail(&r, "bind step without source");
			break;
		case STEP_MOUNT_FS:
			if (!s->fstype)
				fail(&r, "mount step without filesystem type");
			if ((s->flags & MF_FALLBACK_BIND) && !s->fallback)
				fail(&r, "fallback flag without fallback source");
			break;
		case STEP_SYMLINK:
			if (!s->data)
				fail(&r, "symlink step without target");
			break;
		case STEP_MKNOD:
		case STEP_MKDIR:
		case STEP_SETATTR: break;
		default: fail(&r, "unknown step kind");
		}
	}
	plan->masked = get_str_list(&r, &plan->nmasked, TSRT_PATH_MAX, "path longer than PATH_MAX in plan", 0);
	plan->readonly = get_str_list(&r, &plan->nreadonly, TSRT_PATH_MAX, "path longer than PATH_MAX in plan", 0);
	for (i = 0; !r.why && i < plan->nmasked; i++)
		must_be_absolute(&r, plan->masked[i]);
	for (i = 0; !r.why && i < plan->nreadonly; i++)
		must_be_absolute(&r, plan->readonly[i]);
	plan->nsysctl = get_count(&r, 8);
	plan->sysctl = alloc_array(&r, plan->nsysctl, 0, sizeof(*plan->sysctl));
	for (i = 0; plan->sysctl && i < plan->nsysctl && !r.why; i++) {
		plan->sysctl[i].key = need_path(&r);
		plan->sysctl[i].value = need_str(&r);
		if (plan->sysctl[i].key && (plan->sysctl[i].key[0] == '/' || strstr(plan->sysctl[i].key, "..")))
			fail(&r, "sysctl key escapes /proc/sys");
	}
	plan->console_socket = (int32_t)get_u32(&r);
	plan->console_rows = get_u32(&r);
	plan->console_cols = get_u32(&r);
	plan->oom_score_adj = (int32_t)get_u32(&r);
	plan->nrlimits = get_count(&r, 20);
	plan->rlimits = alloc_array(&r, plan->nrlimits, 0, sizeof(*plan->rlimits));
	for (i = 0; plan->rlimits && i < plan->nrlimits && !r.why; i++) {
		plan->rlimits[i].resource = get_u32(&r);
		plan->rlimits[i].soft = get_u64(&r);
		plan->rlimits[i].hard = get_u64(&r);
	}
	plan->cap_bounding = get_u64(&r);
	plan->cap_effective = get_u64(&r);
	plan->cap_permitted = get_u64(&r);
	plan->cap_inheritable = get_u64(&r);
	plan->cap_ambient = get_u64(&r);
	plan->uid = get_u32(&r);
	plan->gid = get_u32(&r);
	plan->umask = get_u32(&r);
	plan->ngroups = get_count(&r, 4);
	plan->groups = alloc_array(&r, plan->ngroups, 0, sizeof(uint32_t));
	for (i = 0; plan->groups && i < plan->ngroups && !r.why; i++)
		plan->groups[i] = get_u32(&r);
	plan->cwd = need_path(&r);
	must_be_absolute(&r, plan->cwd);
	/* Two slots in front of the arguments: the sealed helper's argv is [magic, path, args...]. */
	plan->args = get_str_list(&r, &plan->nargs, TSRT_ARG_STRLEN, "argument longer than MAX_ARG_STRLEN in plan", 2);
	plan->helper_argv = plan->args ? plan->args - 2 : NULL;
	plan->env = get_str_list(&r, &plan->nenv, TSRT_ARG_STRLEN,
				 "environment string longer than MAX_ARG_STRLEN in plan", 0);
	if (!r.why && plan->nargs == 0)
		fail(&r, "plan has no process arguments");
	plan->fifo_fd = (int32_t)get_u32(&r);
	plan->preserve_fds = get_u32(&r);
	/* An fd number is an int: 3 + preserve_fds must be one. */
	if (!r.why && plan->preserve_fds > 0x7fffffffu - 3)
		fail(&r, "preserve_fds out of range");
	plan->seccomp_len = get_u32(&r);
	if (!r.why) {
		if (plan->seccomp_len % 8 != 0 || plan->seccomp_len > r.left)
			fail(&r, "malformed seccomp program");
		else if (plan->seccomp_len / 8 > BPF_MAXINSNS)
			fail(&r, "seccomp program longer than BPF_MAXINSNS in plan");
		else {
			plan->seccomp = plan->seccomp_len ? r.p : NULL;
			r.p += plan->seccomp_len;
			r.left -= plan->seccomp_len;
		}
	}
	plan->seccomp_flags = get_u32(&r);
	if (!r.why && (plan->seccomp_flags & ~TSRT_SECCOMP_FLAGS_KNOWN))
		fail(&r, "unknown seccomp filter flag");
	if (!r.why && plan->seccomp_flags && !plan->seccomp_len)
		fail(&r, "seccomp flags without a seccomp program");
	if (!r.why && (plan->seccomp_flags & TSRT_SECCOMP_FLAG_WAIT_KILLABLE_RECV) &&
	    !(plan->seccomp_flags & TSRT_SECCOMP_FLAG_NEW_LISTENER))
		fail(&r, "seccomp wait-killable flag without a listener");
	plan->has_sched = get_bool(&r);
	if (plan->has_sched) {
		plan->sched_policy = get_u32(&r);
		plan->sched_flags = get_u64(&r);
		plan->sched_nice = (int32_t)get_u32(&r);
		plan->sched_priority = get_u32(&r);
		plan->sched_runtime = get_u64(&r);
		plan->sched_deadline = get_u64(&r);
		plan->sched_period = get_u64(&r);
	}
	plan->has_ioprio = get_bool(&r);
	plan->ioprio = get_u32(&r);
	/* 8192 CPUs and 1024 NUMA nodes: the kernel's own ceilings. */
	plan->affinity_initial = get_bitmap(&r, &plan->affinity_initial_len, 1024);
	plan->affinity_final = get_bitmap(&r, &plan->affinity_final_len, 1024);
	plan->has_personality = get_bool(&r);
	plan->personality = get_u32(&r);
	plan->has_mempolicy = get_bool(&r);
	plan->mempolicy_mode = get_u32(&r);
	plan->mempolicy_nodes = get_bitmap(&r, &plan->mempolicy_nodes_len, 128);
	plan->apparmor_profile = get_str(&r);
	plan->selinux_label = get_str(&r);
	plan->mount_label = get_str(&r);
	for (i = 0; !r.why && i < plan->nsteps; i++)
		if ((plan->steps[i].flags & MF_MOUNT_LABEL) && !plan->mount_label)
			fail(&r, "mount label flag without a mount label");
	plan->nidmaps = get_count(&r, 12);
	plan->idmaps = alloc_array(&r, plan->nidmaps, 0, sizeof(*plan->idmaps));
	for (i = 0; plan->idmaps && i < plan->nidmaps && !r.why; i++) {
		struct tsrt_idmap *m = &plan->idmaps[i];
		uint32_t j;
		m->step = get_u32(&r);
		m->userns_fd = (int32_t)get_u32(&r);
		m->recursive = get_bool(&r);
		m->tree = -1;
		if (r.why)
			break;
		if (m->step >= plan->nsteps || plan->steps[m->step].kind != STEP_MOUNT_BIND)
			fail(&r, "idmapped mount that is not a bind step");
		else if (m->userns_fd < 0)
			fail(&r, "idmapped mount without a user namespace fd");
		for (j = 0; j < i; j++)
			if (plan->idmaps[j].step == m->step)
				fail(&r, "idmapped mount given twice");
	}
	plan->join_pidfd = (int32_t)get_u32(&r);
	plan->join_nsflags = get_u32(&r);
	if (!r.why && (plan->join_nsflags & ~(uint32_t)(TSRT_CLONE_NS_ALL)))
		fail(&r, "unknown namespace flag in plan");
	/* One per v1 hierarchy: the kernel has at most 16 controllers and names. */
	plan->ncgroup_tasks = get_count(&r, 4);
	if (!r.why && plan->ncgroup_tasks > 32)
		fail(&r, "too many cgroup tasks fds");
	plan->cgroup_tasks = alloc_array(&r, plan->ncgroup_tasks, 0, sizeof(int32_t));
	for (i = 0; plan->cgroup_tasks && i < plan->ncgroup_tasks && !r.why; i++) {
		plan->cgroup_tasks[i] = (int32_t)get_u32(&r);
		if (!r.why && plan->cgroup_tasks[i] < 0)
			fail(&r, "cgroup tasks entry without an fd");
	}
	if (!r.why && plan->nidmaps > UINT32_MAX - 8 - plan->ncgroup_tasks)
		fail(&r, "too many fds to keep");
	plan->keep_fds = alloc_array(&r, plan->nidmaps + plan->ncgroup_tasks, 8, sizeof(int32_t));
	if (!r.why && r.left != 0)
		fail(&r, "trailing bytes after plan");
	if (!r.why && (plan->flags & PF_EXEC) && plan->join_pidfd < 0)
		fail(&r, "exec plan without the container init's pidfd");
	if (!r.why && !(plan->flags & PF_EXEC) && (plan->join_pidfd >= 0 || plan->join_nsflags))
		fail(&r, "namespace pidfd in a plan that is not an exec");
	if (!r.why && (plan->flags & PF_EXEC) &&
	    (plan->nsteps || plan->njoin || plan->unshare_flags || plan->nsysctl || plan->nmasked || plan->nreadonly ||
	     plan->nidmaps || plan->ncgroup_tasks || plan->fifo_fd >= 0 ||
	     (plan->flags &
	      (PF_NEW_USERNS | PF_NEW_MOUNTNS | PF_NEW_CGROUPNS | PF_NEW_TIMENS | PF_NEW_PIDNS | PF_SET_HOSTNAME |
	       PF_SET_DOMAINNAME | PF_SYNC_PREPIVOT | PF_START_FIFO | PF_READONLY_ROOT | PF_SHARED_MOUNTNS))))
		fail(&r, "exec plan with container set-up work");
	if ((plan->flags & PF_START_FIFO) && plan->fifo_fd < 0)
		fail(&r, "fifo start without fifo fd");

	if (r.why) {
		*why = r.why;
		plan_free(plan);
		return -1;
	}
	return 0;
}

void plan_free(struct tsrt_plan *plan)
{
	if (plan->arena)
		syscall(SYS_munmap, plan->arena, plan->arena_size);
	memset(plan, 0, sizeof(*plan));
	plan->console_socket = -1;
	plan->fifo_fd = -1;
	plan->join_pidfd = -1;
}
