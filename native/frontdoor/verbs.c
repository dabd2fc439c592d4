/*
 * The verbs the front door does itself, each as src/runtime/container.ts does it for a container whose
 * lifecycle record allows it. Every TO_CORE comes before the first output and the first change.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "frontdoor.h"

#define STATUS_NAME(s) TSRT_STATUS_NAMES[s]

/*
 * The positional arguments of a verb whose only flags are `bools` (NULL-terminated pairs of name and short
 * name; *set[i] becomes the value): TO_CORE for any other flag, "--", or a count outside [min, max].
 */
static int positionals(int argc, char **argv, int min, int max, const char *const *bools, int *set, char **pos)
{
	int n = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1]) {
			const char *v;
			int k = 0;
			for (; bools && bools[2 * k]; k++) {
				if (flag_is(a, bools[2 * k], bools[2 * k + 1], &v))
					break;
			}
			if (!bools || !bools[2 * k])
				return TO_CORE;
			int b = v ? bool_value(v) : 1;
			if (b < 0)
				return TO_CORE;
			set[k] = b;
			continue;
		}
		if (n >= max)
			return TO_CORE;
		pos[n++] = argv[i];
	}
	return n < min ? TO_CORE : n;
}

/* What a verb on one container opens first, as loadLocked does. */
struct opened {
	int root, dir;
	struct record rec;
	int status;
};

/*
 * Root, id, directory, state.json, lock (when `lock`), record and status. Returns 0, an exit status already
 * reported, TO_CORE, or -ENOENT when the container does not exist (the caller words that).
 */
static int open_one(const char *id, int lock, struct opened *o)
{
	int rc;
	if (!g.root) {
		/* The default root is worked out (and may be refused) before the id is looked at, as ctx.root is. */
		if ((rc = state_root(&o->root)) != 0)
			return rc;
		if ((rc = valid_id(id)) != 0) {
			close(o->root);
			return rc;
		}
	} else {
		if ((rc = valid_id(id)) != 0)
			return rc;
		if ((rc = state_root(&o->root)) != 0)
			return rc;
	}
	if ((rc = open_container(o->root, id, &o->dir)) != 0) {
		close(o->root);
		return rc;
	}
	if (!has_state_file(o->dir)) {
		close(o->dir);
		close(o->root);
		return -ENOENT;
	}
	if ((lock && lock_container(o->dir) != 0) || read_record(o->dir, &o->rec) != 0) {
		close(o->dir); /* releases the lock: the core takes it again */
		close(o->root);
		return TO_CORE;
	}
	o->status = status_of(o->dir, &o->rec);
	return 0;
}

static struct opened one;

/* The state document: head + pid + joiner + status + '"' + tail, pretty (state) or compact (list --format json). */
static size_t render_state(const struct record *r, int status, int pretty, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s%d%s%s%s%s",
			 r->slot[pretty ? TSRT_LCR_SLOT_PRETTY_HEAD : TSRT_LCR_SLOT_COMPACT_HEAD],
			 status == TSRT_STATUS_STOPPED ? 0 : (int)r->pid,
			 pretty ? TSRT_LCR_PRETTY_STATUS : TSRT_LCR_COMPACT_STATUS, STATUS_NAME(status),
			 TSRT_LCR_STATUS_END, r->slot[pretty ? TSRT_LCR_SLOT_PRETTY_TAIL : TSRT_LCR_SLOT_COMPACT_TAIL]);
	return n < 0 ? 0 : (size_t)n;
}

int verb_state(int argc, char **argv)
{
	char *id = NULL;
	if (positionals(argc, argv, 1, 1, NULL, NULL, &id) < 0)
		return TO_CORE;
	int rc = open_one(id, 0, &one);
	if (rc == -ENOENT)
		return fail("%s", TSRT_TEXT_NOT_EXIST);
	if (rc != 0)
		return rc;
	static char text[TSRT_LCR_MAX_SIZE + 64];
	size_t n = render_state(&one.rec, one.status, 1, text, sizeof(text) - 1);
	if (n >= sizeof(text) - 1)
		return TO_CORE;
	text[n++] = '\n';
	out(text, n);
	return TSRT_EXIT_OK;
}

/* parseSignal for what it accepts; TO_CORE for anything else (the core reports the unknown signal). */
static int parse_signal(const char *raw)
{
	size_t len = strlen(raw);
	if (!len || len > 32)
		return TO_CORE;
	if (strspn(raw, "0123456789") == len) {
		int n = len > 3 ? 1000 : atoi(raw);
		return n <= TSRT_SIG_RTMAX ? n : TO_CORE;
	}
	char name[40];
	size_t at = 0;
	if (strncasecmp(raw, "SIG", 3) != 0)
		at = (size_t)snprintf(name, sizeof(name), "SIG");
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)raw[i];
		if (c >= 0x80)
			return TO_CORE;
		name[at++] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
	}
	for (int i = 0; i < TSRT_SIG_NAMES_COUNT; i++) {
		if (!strcmp(name, TSRT_SIG_NAMES[i]))
			return TSRT_SIG_NUMBERS[i];
	}
	int rt = -1;
	const char *num = NULL;
	if (!strncmp(name, "SIGRTMIN", 8)) {
		rt = TSRT_SIG_RTMIN;
		num = name[8] == '+' ? name + 9 : name[8] ? "x" : "";
	} else if (!strncmp(name, "SIGRTMAX", 8)) {
		rt = TSRT_SIG_RTMAX;
		num = name[8] == '-' ? name + 9 : name[8] ? "x" : "";
	}
	if (rt < 0 || (num[0] && (strspn(num, "0123456789") != strlen(num) || strlen(num) > 3)))
		return TO_CORE;
	if ((num == name + 9) && !num[0])
		return TO_CORE;
	int off = num[0] ? atoi(num) : 0;
	int sig = rt == TSRT_SIG_RTMIN ? rt + off : rt - off;
	return sig >= TSRT_SIG_RTMIN && sig <= TSRT_SIG_RTMAX ? sig : TO_CORE;
}

int verb_kill(int argc, char **argv)
{
	char *pos[2];
	/* --all walks the cgroup or the pid namespace: the core's. */
	int n = positionals(argc, argv, 1, 2, NULL, NULL, pos);
	if (n < 0)
		return TO_CORE;
	int sig = parse_signal(n == 2 ? pos[1] : "SIGTERM");
	if (sig < 0)
		return TO_CORE;
	int rc = open_one(pos[0], 1, &one);
	if (rc == -ENOENT)
		return fail("%s", TSRT_TEXT_NOT_EXIST);
	if (rc != 0)
		return rc;
	if (one.status == TSRT_STATUS_STOPPED)
		return fail("%s", TSRT_TEXT_NOT_RUNNING);
	int pidfd = init_pidfd(&one.rec);
	if (pidfd < 0)
		return fail("%s", TSRT_TEXT_NOT_RUNNING);
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) != 0) {
		if (errno == ESRCH)
			return fail("%s", TSRT_TEXT_NOT_RUNNING);
		/* Nothing was sent: the core tries again and words the errno as it does. */
		close(pidfd);
		close(one.dir);
		return TO_CORE;
	}
	committed();
	return TSRT_EXIT_OK;
}

int verb_start(int argc, char **argv)
{
	char *id = NULL;
	if (positionals(argc, argv, 1, 1, NULL, NULL, &id) < 0)
		return TO_CORE;
	int rc = open_one(id, 1, &one);
	if (rc == -ENOENT)
		return fail("%s", TSRT_TEXT_NOT_EXIST);
	if (rc != 0)
		return rc;
	if (one.status == TSRT_STATUS_STOPPED)
		return fail("%s", TSRT_TEXT_START_STOPPED);
	if (one.status != TSRT_STATUS_CREATED)
		return fail(TSRT_TEXT_START_ALREADY, STATUS_NAME(one.status));
	if (!(one.rec.flags & TSRT_LCR_FLAG_START)) {
		close(one.dir);
		return TO_CORE;
	}
	int pidfd = init_pidfd(&one.rec);
	if (pidfd < 0)
		return fail("%s", TSRT_TEXT_START_STOPPED);
	const char *fifo = one.rec.slot[TSRT_LCR_SLOT_FIFO];
	int fd = openat(one.dir, fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return fail("%s", TSRT_TEXT_START_STOPPED);
	if (fd < 0) {
		close(one.dir);
		return TO_CORE;
	}
	committed();
	/* The init's byte, or its death: start on a dead container cannot hang (the addon's startFifo). */
	int started = 0;
	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
		int r = poll(p, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (p[0].revents & POLLIN) {
			char c;
			started = read(fd, &c, 1) == 1;
			break;
		}
		if (p[1].revents || (p[0].revents & POLLHUP))
			break;
	}
	close(fd);
	if (!started)
		return fail("%s", TSRT_TEXT_START_STOPPED);
	unlinkat(one.dir, fifo, 0);
	return TSRT_EXIT_OK;
}

/* Whether cgroup.procs in `dir` lists any process (an unreadable one lists none, as readText gives). */
static int has_processes(const char *dir)
{
	if (!dir[0])
		return 0;
	char path[4200], buf[64];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	return n > 0;
}

/* fs.rmSync(recursive, force) of what is left in a container's directory, then the directory. */
static void remove_tree(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		if (d) {
			struct dirent *e;
			while ((e = readdir(d))) {
				if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
					continue;
				if (unlinkat(fd, e->d_name, 0) != 0 && (errno == EISDIR || errno == EPERM))
					remove_tree(fd, e->d_name);
			}
			closedir(d);
		} else {
			close(fd);
		}
	}
	unlinkat(parent, name, AT_REMOVEDIR);
}

int verb_delete(int argc, char **argv)
{
	char *id = NULL;
	static const char *const bools[] = { "force", "f", NULL, NULL };
	int force = 0;
	if (positionals(argc, argv, 1, 1, bools, &force, &id) < 0)
		return TO_CORE;
	int rc = open_one(id, 1, &one);
	if (rc == -ENOENT) {
		/* No state.json in a directory that exists: a create in progress or dead, which the core settles. */
		int probe;
		if (state_root(&probe) != 0)
			return TO_CORE;
		int dir;
		int there = open_container(probe, id, &dir) == 0;
		if (there)
			close(dir);
		close(probe);
		if (there)
			return TO_CORE;
		if (force) {
			committed();
			return TSRT_EXIT_OK;
		}
		return fail("%s", TSRT_TEXT_NOT_EXIST);
	}
	if (rc != 0)
		return rc;
	if (one.status != TSRT_STATUS_STOPPED) {
		if (force) {
			close(one.dir);
			return TO_CORE; /* killing what runs, and waiting for it, is the core's */
		}
		return fail(TSRT_TEXT_DELETE_NOT_STOPPED, id, STATUS_NAME(one.status));
	}
	if (!(one.rec.flags & TSRT_LCR_FLAG_DELETE) || has_processes(one.rec.slot[TSRT_LCR_SLOT_PROCS_DIR])) {
		close(one.dir);
		return TO_CORE;
	}
	/* destroy()'s order. A busy leaf (children, or tasks still leaving) or any other error: the core retries
   * and reports it, from where this left off (what is removed stays removed). */
	const char *list = one.rec.slot[TSRT_LCR_SLOT_CGROUP_REMOVE];
	for (const char *e = list; e < list + one.rec.len[TSRT_LCR_SLOT_CGROUP_REMOVE]; e += strlen(e) + 1) {
		int leaf = e[0] == TSRT_LCR_CGROUP_LEAF[0];
		if (rmdir(e + 1) == 0 || errno == ENOENT || (!leaf && errno == EBUSY))
			continue;
		close(one.dir);
		return TO_CORE;
	}
	committed();
	unlinkat(one.dir, TSRT_LCR_FILE, 0);
	unlinkat(one.dir, "state.json", 0);
	close(one.dir);
	remove_tree(one.root, id);
	return TSRT_EXIT_OK;
}

static int ascii(const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s >= 0x80)
			return 0;
	}
	return 1;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

#define LIST_MAX 4096

/* A row of list's table: the header for NULL. The pid is kept in a buffer per call, used before the next. */
static void table_row(const struct record *r, int status, const char *cell[6])
{
	static char pid[16];
	if (!r) {
		const char *head[6] = { "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER" };
		memcpy(cell, head, sizeof(head));
		return;
	}
	snprintf(pid, sizeof(pid), "%d", status == TSRT_STATUS_STOPPED ? 0 : (int)r->pid);
	const char *owner = r->slot[TSRT_LCR_SLOT_OWNER];
	const char *row[6] = { r->slot[TSRT_LCR_SLOT_ID],
			       pid,
			       STATUS_NAME(status),
			       r->slot[TSRT_LCR_SLOT_BUNDLE],
			       r->slot[TSRT_LCR_SLOT_CREATED],
			       owner[0] ? owner : "root" };
	memcpy(cell, row, sizeof(row));
}

int verb_list(int argc, char **argv)
{
	/* -f/--format takes a value: read here, the rest as booleans. */
	const char *format = "table";
	int quiet = 0;
	for (int i = 0; i < argc; i++) {
		const char *v;
		if (flag_is(argv[i], "format", "f", &v)) {
			if (!v) {
				if (i + 1 >= argc)
					return TO_CORE;
				v = argv[++i];
			}
			format = v;
		} else if (flag_is(argv[i], "quiet", "q", &v)) {
			if ((quiet = v ? bool_value(v) : 1) < 0)
				return TO_CORE;
		} else {
			return TO_CORE;
		}
	}
	if (strcmp(format, "table") && strcmp(format, "json"))
		return TO_CORE;
	int root;
	if (state_root(&root) != 0)
		return TO_CORE;
	int scan = dup(root);
	DIR *d = scan >= 0 ? fdopendir(scan) : NULL;
	if (!d)
		return TO_CORE;
	static char *ids[LIST_MAX];
	int count = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		int valid = 1;
		for (const char *c = n; *c; c++) {
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
			      strchr(TSRT_TEXT_ID_PUNCT, *c)))
				valid = 0;
		}
		if (!valid)
			continue;
		if (count == LIST_MAX)
			return TO_CORE;
		ids[count++] = strdup(n);
	}
	closedir(d);
	qsort(ids, (size_t)count, sizeof(ids[0]), by_name);
	/* Every container's record first: one the front door cannot read sends the whole list to the core. */
	static int status[LIST_MAX];
	static const struct record *rec_of[LIST_MAX];
	int shown = 0;
	char *text = NULL;
	struct record *heap = calloc((size_t)(count ? count : 1), sizeof(struct record));
	if (!heap)
		return TO_CORE;
	for (int i = 0; i < count; i++) {
		int dir;
		if (open_container(root, ids[i], &dir) != 0)
			continue;
		if (!has_state_file(dir)) {
			close(dir);
			continue;
		}
		struct record *r = &heap[shown];
		if (read_record(dir, r) != 0) {
			close(dir);
			goto to_core;
		}
		status[shown] = status_of(dir, r);
		rec_of[shown++] = r;
		close(dir);
	}
	size_t cap = 1024 + (size_t)shown * (TSRT_LCR_MAX_SIZE / 4);
	text = malloc(cap);
	if (!text)
		goto to_core;
	size_t len = 0;
#define ADD(...)                                                                                                       \
	do {                                                                                                           \
		int w_ = snprintf(text + len, cap - len, __VA_ARGS__);                                                 \
		if (w_ < 0 || (size_t)w_ >= cap - len)                                                                 \
			goto to_core;                                                                                  \
		len += (size_t)w_;                                                                                     \
	} while (0)
	if (quiet) {
		for (int i = 0; i < shown; i++)
			ADD("%s\n", rec_of[i]->slot[TSRT_LCR_SLOT_ID]);
	} else if (!strcmp(format, "json")) {
		ADD("[");
		for (int i = 0; i < shown; i++) {
			if (i)
				ADD(",");
			size_t w = render_state(rec_of[i], status[i], 0, text + len, cap - len);
			if (w >= cap - len)
				goto to_core;
			len += w;
		}
		ADD("]\n");
	} else {
		/* Go's tabwriter as runc sets it: each column as wide as its widest cell plus 3, at least 12. */
		size_t width[6] = { 12, 12, 12, 12, 12, 12 };
		const char *cell[6];
		for (int pass = 0; pass < 2; pass++) {
			for (int row = -1; row < shown; row++) {
				table_row(row < 0 ? NULL : rec_of[row], row < 0 ? 0 : status[row], cell);
				for (int c = 0; c < 6 && pass == 0; c++) {
					if (!ascii(cell[c]))
						goto to_core; /* the core counts widths in UTF-16 units */
					if (strlen(cell[c]) + 3 > width[c])
						width[c] = strlen(cell[c]) + 3;
				}
				if (pass == 0)
					continue;
				for (int c = 0; c < 5; c++)
					ADD("%-*s", (int)width[c], cell[c]);
				ADD("%s\n", cell[5]);
			}
		}
	}
#undef ADD
	out(text, len);
	free(text);
	free(heap);
	return TSRT_EXIT_OK;
/* The core answers instead; what was allocated goes first, as every other way out of this verb. */
to_core:
	free(text);
	free(heap);
	return TO_CORE;
}
