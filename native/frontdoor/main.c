/*
 * The front door's entry: runc's global flags as src/cli/main.ts reads them, the verbs it does itself, and the
 * hand-over of everything else to dist/tsrt-core.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "frontdoor.h"

struct globals g;

/* true|1|t -> 1, false|0|f -> 0 (any case), anything else -1: urfave's booleans (src/cli/args.ts). */
int bool_value(const char *v)
{
	if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "t"))
		return 1;
	if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "f"))
		return 0;
	return -1;
}

/*
 * Whether `arg` is the flag `name` (or `shortname`) in any of the core's spellings: -name, --name, with or
 * without =value. *value is what follows '=', or NULL.
 */
int flag_is(const char *arg, const char *name, const char *shortname, const char **value)
{
	if (arg[0] != '-')
		return 0;
	const char *body = arg + 1 + (arg[1] == '-');
	const char *eq = strchr(body, '=');
	size_t n = eq ? (size_t)(eq - body) : strlen(body);
	int match = (strlen(name) == n && !strncmp(body, name, n)) ||
		    (shortname && strlen(shortname) == n && !strncmp(body, shortname, n));
	if (match)
		*value = eq ? eq + 1 : NULL;
	return match;
}

/* Owners a directory or binary on the way to the core may have: root, the caller, unmapped root in a user namespace. */
static int trusted_owner(uid_t uid)
{
	return uid == 0 || uid == geteuid() || (in_userns() && uid == overflow_uid());
}

/*
 * Runs dist/tsrt-core from the front door's own directory with argv unchanged. Refused when another user
 * could have put something else there: the core or its directory writable by group or others, or owned by
 * someone but root or the caller. Opened once and executed by that fd, so what was checked is what runs.
 */
static void exec_core(char **argv, char **envp)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		_exit(fail("cannot find the tsrt core: readlink /proc/self/exe: %s", strerror(errno)));
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (!slash)
		_exit(fail("cannot find the tsrt core beside %s", self));
	*slash = 0;
	int dir = open(self[0] ? self : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (dir < 0 || fstat(dir, &st) != 0)
		_exit(fail("cannot open %s: %s", self, strerror(errno)));
	if (!trusted_owner(st.st_uid) || (st.st_mode & 022)) {
		_exit(fail(
			"refusing to run %s/tsrt-core: its directory may be changed by another user (owner uid %u, mode 0%o)",
			self, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777)));
	}
	int core = openat(dir, "tsrt-core", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (core < 0 || fstat(core, &st) != 0)
		_exit(fail("cannot open %s/tsrt-core: %s", self, strerror(errno)));
	if (!S_ISREG(st.st_mode) || !trusted_owner(st.st_uid) || (st.st_mode & 022)) {
		_exit(fail("refusing to run %s/tsrt-core: it may be changed by another user (owner uid %u, mode 0%o)",
			   self, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777)));
	}
	syscall(SYS_execveat, core, "", argv, envp, AT_EMPTY_PATH);
	_exit(fail("cannot run %s/tsrt-core: %s", self, strerror(errno)));
}

/* The global flags the front door knows (main.ts's globalFlags less --cgroup-manager, --criu and --help). */
enum global {
	G_ROOT,
	G_LOG,
	G_LOG_FORMAT,
	G_ROOTLESS,
	G_DEBUG,
	G_SYSTEMD_CGROUP,
	G_VERSION
};
static const struct {
	const char *name, *shortname;
	int takes_value;
} global_flags[] = {
	[G_ROOT] = { "root", NULL, 1 },
	[G_LOG] = { "log", NULL, 1 },
	[G_LOG_FORMAT] = { "log-format", NULL, 1 },
	[G_ROOTLESS] = { "rootless", NULL, 1 },
	[G_DEBUG] = { "debug", NULL, 0 },
	[G_SYSTEMD_CGROUP] = { "systemd-cgroup", NULL, 0 },
	[G_VERSION] = { "version", "v", 0 },
};

/* The global flags as main.ts's splitGlobals and parseArgs read them; TO_CORE for any other or a bad value. */
static int parse_globals(int argc, char **argv, int *verb, int *version)
{
	int i = 1;
	*version = 0;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *v = NULL;
		int which = -1;
		for (int k = 0; k < (int)(sizeof(global_flags) / sizeof(global_flags[0])) && which < 0; k++) {
			if (flag_is(argv[i], global_flags[k].name, global_flags[k].shortname, &v))
				which = k;
		}
		if (which < 0)
			return TO_CORE;
		if (global_flags[which].takes_value && !v) {
			if (i + 1 >= argc)
				return TO_CORE;
			v = argv[++i];
		}
		int b = 1;
		if (!global_flags[which].takes_value && v && (b = bool_value(v)) < 0)
			return TO_CORE;
		switch (which) {
		case G_ROOT: g.root = v; break;
		case G_LOG: g.log = v; break;
		case G_LOG_FORMAT:
			if (!v || (strcmp(v, "text") && strcmp(v, "json")))
				return TO_CORE;
			g.json = !strcmp(v, "json");
			break;
		case G_ROOTLESS:
			if (!v || (strcmp(v, "auto") && strcmp(v, "true") && strcmp(v, "false")))
				return TO_CORE;
			break;
		case G_DEBUG: g.debug = b; break;
		case G_VERSION: *version = b; break;
		default: break; /* --systemd-cgroup: only create and run use the cgroup manager */
		}
	}
	*verb = i;
	return 0;
}

static int front_door(int argc, char **argv)
{
	int verb, version;
	if (parse_globals(argc, argv, &verb, &version) != 0)
		return TO_CORE;
	if (version) {
		g.debug = 0; /* the core prints the version before its debug line */
		char text[512];
		int n = snprintf(text, sizeof(text), TSRT_TEXT_VERSION, TSRT_BUILD_VERSION, TSRT_BUILD_COMMIT,
				 TSRT_TEXT_SPEC_VERSION);
		out(text, (size_t)n);
		return TSRT_EXIT_OK;
	}
	if (verb >= argc)
		return TO_CORE;
	size_t line = 0;
	for (int i = 1; i < argc; i++)
		line += strlen(argv[i]) + 1;
	if (g.debug && line > 3000)
		return TO_CORE; /* a debug line longer than the front door writes whole */
	for (int i = verb + 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return TO_CORE;
	}
	static const struct {
		const char *name;
		int (*run)(int, char **);
	} verbs[] = {
		{ "state", verb_state },   { "start", verb_start }, { "kill", verb_kill },
		{ "delete", verb_delete }, { "list", verb_list },
	};
	for (size_t k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++) {
		if (!strcmp(argv[verb], verbs[k].name))
			return verbs[k].run(argc - verb - 1, argv + verb + 1);
	}
	return TO_CORE;
}

int main(int argc, char **argv, char **envp)
{
	g.argc = argc;
	g.argv = argv;
	int rc = front_door(argc, argv);
	if (rc == TO_CORE)
		exec_core(argv, envp);
	return rc;
}
