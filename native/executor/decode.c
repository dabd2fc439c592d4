/*
 * Plan decoder. Runs in the runtime process before any clone, and again in the sealed executor (main.c) on the
 * same bytes: every length is checked against the bytes that are left and against fixed maxima, every string
 * must carry its terminating NUL and no NUL inside, and the buffer must be consumed exactly. A plan that fails any check is rejected whole; nothing is guessed.
 * (CVE-2021-43784 was a 16-bit length that wrapped in runc's equivalent of this message.)
 */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

struct reader {
	const unsigned char *p;
	size_t left;
	const char *why;
};

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

/* Strings are u32 length + bytes + NUL; the length 0xffffffff stands for "absent". */
static const char *get_str(struct reader *r)
{
	uint32_t n = get_u32(r);
	const char *s;
	if (r->why || n == NULL_STRING)
		return NULL;
	if (n > TSRT_MAX_STR)
		return fail(r, "string longer than the plan limit"), NULL;
	if ((size_t)n + 1 > r->left)
		return fail(r, "truncated plan"), NULL;
	s = (const char *)r->p;
	if (memchr(s, 0, n) != NULL || s[n] != 0)
		return fail(r, "malformed string in plan"), NULL;
	r->p += (size_t)n + 1;
	r->left -= (size_t)n + 1;
	return s;
}

static const char *need_str(struct reader *r)
{
	const char *s = get_str(r);
	if (!s && !r->why)
		fail(r, "missing required string in plan");
	return s;
}

static uint32_t get_count(struct reader *r)
{
	uint32_t n = get_u32(r);
	if (!r->why && n > TSRT_MAX_LIST)
		fail(r, "list longer than the plan limit");
	return r->why ? 0 : n;
}

static void *alloc_array(struct reader *r, size_t n, size_t size)
{
	void *a;
	if (r->why)
		return NULL;
	a = calloc(n + 1, size); /* +1: string lists stay NULL terminated */
	if (!a)
		fail(r, "out of memory");
	return a;
}

static const char **get_str_list(struct reader *r, uint32_t *count)
{
	uint32_t n = get_count(r), i;
	const char **list = alloc_array(r, n, sizeof(char *));
	for (i = 0; list && i < n && !r->why; i++)
		list[i] = need_str(r);
	*count = n;
	return list;
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
	unsigned char *copy;
	uint32_t i;

	memset(plan, 0, sizeof(*plan));
	plan->console_socket = -1;
	plan->fifo_fd = -1;
	if (len < 12 || len > TSRT_MAX_PLAN_BYTES) {
		*why = "plan size out of range";
		return -1;
	}
	copy = malloc(len);
	if (!copy) {
		*why = "out of memory";
		return -1;
	}
	memcpy(copy, buf, len);
	plan->arena = copy;
	r.p = copy;
	r.left = len;
	r.why = NULL;

	if (get_u32(&r) != TSRT_PLAN_MAGIC)
		fail(&r, "bad plan magic");
	if (get_u32(&r) != TSRT_PLAN_VERSION)
		fail(&r, "unsupported plan version");
	if (get_u32(&r) != len)
		fail(&r, "plan length does not match its header");

	plan->flags = get_u32(&r);
	plan->unshare_flags = get_u64(&r);
	plan->njoin = get_count(&r);
	plan->join = alloc_array(&r, plan->njoin, sizeof(*plan->join));
	for (i = 0; plan->join && i < plan->njoin && !r.why; i++) {
		plan->join[i].type = get_u32(&r);
		plan->join[i].path = need_str(&r);
		must_be_absolute(&r, plan->join[i].path);
	}
	plan->time_monotonic_sec = (int64_t)get_u64(&r);
	plan->time_monotonic_nsec = get_u32(&r);
	plan->time_boottime_sec = (int64_t)get_u64(&r);
	plan->time_boottime_nsec = get_u32(&r);

	plan->rootfs = need_str(&r);
	must_be_absolute(&r, plan->rootfs);
	plan->root_propagation = get_u32(&r);
	plan->rootfs_propagation = get_u32(&r);
	plan->hostname = get_str(&r);
	plan->domainname = get_str(&r);

	plan->nsteps = get_count(&r);
	plan->steps = alloc_array(&r, plan->nsteps, sizeof(*plan->steps));
	for (i = 0; plan->steps && i < plan->nsteps && !r.why; i++) {
		struct tsrt_step *s = &plan->steps[i];
		s->kind = get_u32(&r);
		s->flags = get_u32(&r);
		s->source = get_str(&r);
		s->dest = need_str(&r);
		s->fstype = get_str(&r);
		s->data = get_str(&r);
		s->fallback = get_str(&r);
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
		case STEP_SETATTR:
			break;
		default:
			fail(&r, "unknown step kind");
		}
	}
	plan->masked = get_str_list(&r, &plan->nmasked);
	plan->readonly = get_str_list(&r, &plan->nreadonly);
	for (i = 0; !r.why && i < plan->nmasked; i++)
		must_be_absolute(&r, plan->masked[i]);
	for (i = 0; !r.why && i < plan->nreadonly; i++)
		must_be_absolute(&r, plan->readonly[i]);
	plan->nsysctl = get_count(&r);
	plan->sysctl = alloc_array(&r, plan->nsysctl, sizeof(*plan->sysctl));
	for (i = 0; plan->sysctl && i < plan->nsysctl && !r.why; i++) {
		plan->sysctl[i].key = need_str(&r);
		plan->sysctl[i].value = need_str(&r);
		if (plan->sysctl[i].key && (plan->sysctl[i].key[0] == '/' || strstr(plan->sysctl[i].key, "..")))
			fail(&r, "sysctl key escapes /proc/sys");
	}
	plan->console_socket = (int32_t)get_u32(&r);
	plan->console_rows = get_u32(&r);
	plan->console_cols = get_u32(&r);
	plan->oom_score_adj = (int32_t)get_u32(&r);
	plan->nrlimits = get_count(&r);
	plan->rlimits = alloc_array(&r, plan->nrlimits, sizeof(*plan->rlimits));
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
	plan->ngroups = get_count(&r);
	plan->groups = alloc_array(&r, plan->ngroups, sizeof(uint32_t));
	for (i = 0; plan->groups && i < plan->ngroups && !r.why; i++)
		plan->groups[i] = get_u32(&r);
	plan->cwd = need_str(&r);
	must_be_absolute(&r, plan->cwd);
	plan->args = get_str_list(&r, &plan->nargs);
	plan->env = get_str_list(&r, &plan->nenv);
	if (!r.why && plan->nargs == 0)
		fail(&r, "plan has no process arguments");
	plan->fifo_fd = (int32_t)get_u32(&r);
	plan->preserve_fds = get_u32(&r);
	if (!r.why && plan->preserve_fds > 65536)
		fail(&r, "preserve_fds out of range");
	plan->seccomp_len = get_u32(&r);
	if (!r.why) {
		if (plan->seccomp_len % 8 != 0 || plan->seccomp_len / 8 > 65535 || plan->seccomp_len > r.left)
			fail(&r, "malformed seccomp program");
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
	plan->nidmaps = get_count(&r);
	if (!r.why && plan->nidmaps > TSRT_MAX_IDMAPS)
		fail(&r, "too many idmapped mounts in plan");
	plan->idmaps = alloc_array(&r, plan->nidmaps, sizeof(*plan->idmaps));
	for (i = 0; plan->idmaps && i < plan->nidmaps && !r.why; i++) {
		struct tsrt_idmap *m = &plan->idmaps[i];
		uint32_t j;
		m->step = get_u32(&r);
		m->userns_fd = (int32_t)get_u32(&r);
		m->recursive = get_bool(&r);
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
	if (!r.why && r.left != 0)
		fail(&r, "trailing bytes after plan");
	if (!r.why && (plan->flags & PF_EXEC) && plan->join_pidfd < 0)
		fail(&r, "exec plan without the container init's pidfd");
	if (!r.why && !(plan->flags & PF_EXEC) && (plan->join_pidfd >= 0 || plan->join_nsflags))
		fail(&r, "namespace pidfd in a plan that is not an exec");
	if (!r.why && (plan->flags & PF_EXEC) &&
	    (plan->nsteps || plan->njoin || plan->unshare_flags || plan->nsysctl || plan->nmasked || plan->nreadonly ||
	     plan->nidmaps || plan->fifo_fd >= 0 ||
	     (plan->flags & (PF_NEW_USERNS | PF_NEW_MOUNTNS | PF_NEW_CGROUPNS | PF_NEW_TIMENS | PF_NEW_PIDNS |
			     PF_SET_HOSTNAME | PF_SET_DOMAINNAME | PF_SYNC_PREPIVOT | PF_START_FIFO | PF_READONLY_ROOT |
			     PF_SHARED_MOUNTNS))))
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
	free(plan->join);
	free(plan->steps);
	free((void *)plan->masked);
	free((void *)plan->readonly);
	free(plan->sysctl);
	free(plan->rlimits);
	free(plan->groups);
	free(plan->idmaps);
	free((void *)plan->args);
	free((void *)plan->env);
	free(plan->arena);
	memset(plan, 0, sizeof(*plan));
	plan->console_socket = -1;
	plan->fifo_fd = -1;
	plan->join_pidfd = -1;
}
