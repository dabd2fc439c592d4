/*
 * The state root, a container's directory, its lifecycle record and status, as src/runtime/state.ts and
 * src/private-dir.ts have them. Whatever these checks refuse (a root that is not the caller's own, a record
 * that is missing, of another version or damaged) goes to the core, which says why or handles it.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "frontdoor.h"

static int read_small(int dirfd, const char *path, char *buf, size_t cap)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	return (int)n;
}

/* host.ts's inUserNamespace: anything but the initial namespace's single full map. */
int in_userns(void)
{
	static int known = -1;
	if (known >= 0)
		return known;
	char map[256];
	unsigned long a, b, c;
	char rest;
	if (read_small(AT_FDCWD, "/proc/self/uid_map", map, sizeof(map)) < 0)
		return known = 0;
	known = !(sscanf(map, " %lu %lu %lu %c", &a, &b, &c, &rest) == 3 && a == 0 && b == 0 && c == 4294967295UL);
	return known;
}

uid_t overflow_uid(void)
{
	char text[32];
	if (read_small(AT_FDCWD, "/proc/sys/kernel/overflowuid", text, sizeof(text)) <= 0)
		return 65534;
	return (uid_t)strtoul(text, NULL, 10);
}

/*
 * An absolute path in the form path.resolve() leaves it (no empty, "." or ".." component, no trailing slash),
 * not "/" itself: the only spelling the front door takes, so it names what the core would.
 */
static int clean_absolute(const char *p)
{
	size_t n = strlen(p);
	if (p[0] != '/' || n < 2 || n >= PATH_MAX - 64 || p[n - 1] == '/')
		return 0;
	for (const char *c = p; *c; c++) {
		if (c[0] != '/')
			continue;
		if (c[1] == '/')
			return 0;
		if (c[1] == '.' && (c[2] == '/' || c[2] == 0))
			return 0;
		if (c[1] == '.' && c[2] == '.' && (c[3] == '/' || c[3] == 0))
			return 0;
	}
	return 1;
}

/* private-dir.ts's checkAncestors: every directory above `real` is root's or the caller's and not open to others. */
static int trusted_path(const char *real, const struct stat *verified)
{
	char copy[PATH_MAX];
	snprintf(copy, sizeof(copy), "%s", real);
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char *save = NULL;
	char *part = strtok_r(copy, "/", &save);
	for (;;) {
		struct stat st;
		if (fstat(fd, &st) != 0)
			break;
		if (!part) {
			close(fd);
			return st.st_dev == verified->st_dev && st.st_ino == verified->st_ino;
		}
		int owner_ok = st.st_uid == 0 || st.st_uid == geteuid() || (in_userns() && st.st_uid == overflow_uid());
		if (!owner_ok || ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)))
			break;
		int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = next;
		if (fd < 0)
			return 0;
		part = strtok_r(NULL, "/", &save);
	}
	close(fd);
	return 0;
}

/* state.ts's defaultRoot, with verifiedRuntimeDir for an unprivileged caller; TO_CORE where the core would refuse. */
static int default_root(char *out, size_t cap)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (geteuid() == 0) {
		const char *user = getenv("USER");
		if (!(xdg && xdg[0] && in_userns() && !(user && !strcmp(user, "root")))) {
			snprintf(out, cap, "/run/tsrt");
			return 0;
		}
	}
	if (!xdg || !clean_absolute(xdg))
		return TO_CORE;
	int fd = open(xdg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return TO_CORE;
	struct stat st;
	char proc[64], real[PATH_MAX];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = fstat(fd, &st) == 0 ? readlink(proc, real, sizeof(real) - 1) : -1;
	close(fd);
	if (n <= 0 || st.st_uid != geteuid() || (st.st_mode & 077))
		return TO_CORE;
	real[n] = 0;
	if (!trusted_path(real, &st))
		return TO_CORE;
	if ((size_t)snprintf(out, cap, "%s/tsrt", strcmp(real, "/") ? real : "") >= cap)
		return TO_CORE;
	return 0;
}

/* openStateRoot: the verified state root by its fd; TO_CORE for a missing or refused one. */
int state_root(int *fd)
{
	char root[PATH_MAX];
	if (g.root) {
		if (!clean_absolute(g.root))
			return TO_CORE;
		snprintf(root, sizeof(root), "%s", g.root);
	} else if (default_root(root, sizeof(root)) != 0) {
		return TO_CORE;
	}
	*fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return TO_CORE;
	struct stat st;
	if (fstat(*fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
		close(*fd);
		return TO_CORE;
	}
	return 0;
}

/* validateId: 0 when valid, else the exit status of the error reported; TO_CORE for what the core reads differently. */
int valid_id(const char *id)
{
	if (!id[0])
		return fail("%s", TSRT_TEXT_ID_EMPTY);
	int ok = strcmp(id, ".") && strcmp(id, "..");
	for (const unsigned char *c = (const unsigned char *)id; *c; c++) {
		if (*c >= 0x80)
			return TO_CORE; /* decoded as UTF-8 by the core: its message is the core's to write */
		if (!isalnum(*c) && !strchr(TSRT_TEXT_ID_PUNCT, *c))
			ok = 0;
	}
	return ok ? 0 : fail(TSRT_TEXT_ID_FORMAT, id);
}

/* The container's directory beneath the root, never through a symlink: 0, -ENOENT, or TO_CORE. */
int open_container(int rootfd, const char *id, int *dirfd)
{
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, rootfd, id, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : TO_CORE;
	*dirfd = (int)fd;
	return 0;
}

int has_state_file(int dirfd)
{
	return faccessat(dirfd, "state.json", F_OK, 0) == 0;
}

/* ContainerDir.lock: the same exclusive flock on the container's directory that every command of the core takes. */
int lock_container(int dirfd)
{
	while (flock(dirfd, LOCK_EX) != 0) {
		if (errno != EINTR)
			return TO_CORE;
	}
	return 0;
}

static uint32_t u32_at(const char *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t checksum(const unsigned char *p, size_t len)
{
	uint32_t h = TSRT_LCR_FNV_OFFSET;
	for (size_t i = 0; i < len; i++) {
		int in_field = i >= TSRT_LCR_OFF_CHECKSUM && i < TSRT_LCR_OFF_CHECKSUM + TSRT_LCR_SIZE_CHECKSUM;
		h = (h ^ (in_field ? 0 : p[i])) * TSRT_LCR_FNV_PRIME;
	}
	return h;
}

/* The record, every offset and length checked against its size (R10): 0, or TO_CORE for anything else. */
int read_record(int dirfd, struct record *r)
{
	int fd = openat(dirfd, TSRT_LCR_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return TO_CORE;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_size < TSRT_LCR_DATA_OFF ||
	    st.st_size > TSRT_LCR_MAX_SIZE) {
		close(fd);
		return TO_CORE;
	}
	size_t size = (size_t)st.st_size, n = 0;
	while (n < size) {
		ssize_t got = read(fd, r->raw + n, size - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	if (n != size || memcmp(r->raw + TSRT_LCR_OFF_MAGIC, TSRT_LCR_MAGIC, TSRT_LCR_SIZE_MAGIC) != 0 ||
	    u32_at(r->raw + TSRT_LCR_OFF_VERSION) != TSRT_LCR_VERSION || u32_at(r->raw + TSRT_LCR_OFF_SIZE) != size ||
	    u32_at(r->raw + TSRT_LCR_OFF_CHECKSUM) != checksum((const unsigned char *)r->raw, size)) {
		return TO_CORE;
	}
	r->flags = u32_at(r->raw + TSRT_LCR_OFF_FLAGS);
	memcpy(&r->pid, r->raw + TSRT_LCR_OFF_PID, sizeof(r->pid));
	memcpy(&r->start_time, r->raw + TSRT_LCR_OFF_START_TIME, sizeof(r->start_time));
	if (r->pid <= 0)
		return TO_CORE;
	char *dst = r->strings;
	size_t used = 0;
	for (int i = 0; i < TSRT_LCR_SLOT_COUNT; i++) {
		const char *slot = r->raw + TSRT_LCR_HEADER_SIZE + i * TSRT_LCR_SLOT_SIZE;
		uint64_t off = u32_at(slot), len = u32_at(slot + 4);
		/* Slots may not overlap into more than the record holds: their copies fit r->strings. */
		if (off < TSRT_LCR_DATA_OFF || off + len > size || (used += len + 1) > sizeof(r->strings))
			return TO_CORE;
		/* Only the cgroup list holds NULs (each entry ends with one); any other string is one C string. */
		if (i != TSRT_LCR_SLOT_CGROUP_REMOVE && memchr(r->raw + off, 0, len))
			return TO_CORE;
		if (i == TSRT_LCR_SLOT_CGROUP_REMOVE && len && r->raw[off + len - 1] != 0)
			return TO_CORE;
		memcpy(dst, r->raw + off, len);
		dst[len] = 0;
		r->slot[i] = dst;
		r->len[i] = (uint32_t)len;
		dst += len + 1;
	}
	const char *freezer = r->slot[TSRT_LCR_SLOT_FREEZER_FILE], *procs = r->slot[TSRT_LCR_SLOT_PROCS_DIR];
	if ((freezer[0] && freezer[0] != '/') || (procs[0] && procs[0] != '/'))
		return TO_CORE;
	if (!r->slot[TSRT_LCR_SLOT_FIFO][0] || strchr(r->slot[TSRT_LCR_SLOT_FIFO], '/'))
		return TO_CORE;
	const char *list = r->slot[TSRT_LCR_SLOT_CGROUP_REMOVE];
	for (const char *e = list; e < list + r->len[TSRT_LCR_SLOT_CGROUP_REMOVE]; e += strlen(e) + 1) {
		if ((e[0] != TSRT_LCR_CGROUP_LEAF[0] && e[0] != TSRT_LCR_CGROUP_PARENT[0]) || e[1] != '/')
			return TO_CORE;
	}
	return 0;
}

/* procStat: state letter and start time (field 22) of `pid`, or -1 when it has none. */
static int proc_stat(int32_t pid, char *state, uint64_t *start)
{
	char path[64], text[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(AT_FDCWD, path, text, sizeof(text)) <= 0)
		return -1;
	char *close_paren = strrchr(text, ')');
	if (!close_paren || !close_paren[1] || !close_paren[2])
		return -1;
	char *p = close_paren + 2;
	*state = *p;
	for (int field = 0; field < 19; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	if (!isdigit((unsigned char)*p))
		return -1;
	*start = strtoull(p, NULL, 10);
	return 0;
}

static int is_frozen(const struct record *r)
{
	const char *file = r->slot[TSRT_LCR_SLOT_FREEZER_FILE];
	if (!file[0])
		return 0;
	char text[64];
	if (read_small(AT_FDCWD, file, text, sizeof(text)) < 0)
		return 0;
	char *s = text, *e = text + strlen(text);
	while (*s && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	*e = 0;
	return !strcmp(s, r->slot[TSRT_LCR_SLOT_FREEZER_FROZEN]);
}

/* ContainerDir.status for a complete container (the record is written only once create finished). */
int status_of(int dirfd, const struct record *r)
{
	char state;
	uint64_t start;
	if (proc_stat(r->pid, &state, &start) != 0 || start != r->start_time || state == 'Z' || state == 'X') {
		return TSRT_STATUS_STOPPED;
	}
	if (is_frozen(r))
		return TSRT_STATUS_PAUSED;
	if (faccessat(dirfd, r->slot[TSRT_LCR_SLOT_FIFO], F_OK, 0) == 0)
		return TSRT_STATUS_CREATED;
	return TSRT_STATUS_RUNNING;
}

/* initPidfd: a pidfd for the init, or -1 when its pid now names another process (or none). */
int init_pidfd(const struct record *r)
{
	long fd = syscall(SYS_pidfd_open, r->pid, 0);
	if (fd < 0)
		return -1;
	char state;
	uint64_t start;
	if (proc_stat(r->pid, &state, &start) != 0 || start != r->start_time) {
		close((int)fd);
		return -1;
	}
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	return (int)fd;
}
