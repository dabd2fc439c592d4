/*
 * dist/tsrt, the front door: state, start, kill (one signal), delete of a container whose lifecycle record
 * allows it, list and --version done with a few syscalls; every other verb, flag or case goes, argv unchanged,
 * to the TypeScript core (dist/tsrt-core) beside it. No policy is decided here: what the core decided at create
 * is in the lifecycle record (src/runtime/lifecycle-record.ts), and every constant and text comes from
 * native/generated/tsrt-abi.h (src/native-abi/table.ts).
 *
 * The rule that keeps both identical: a case the front door does not handle returns TO_CORE before it has
 * written anything or changed anything, and the core then does the whole command itself.
 */
#ifndef TSRT_FRONTDOOR_H
#define TSRT_FRONTDOOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tsrt-abi.h"

/* A verb's answer when the core must do the command. */
#define TO_CORE (-1)

struct globals {
	const char *root; /* --root, or NULL */
	const char *log;  /* --log, or NULL */
	int json;	  /* --log-format json */
	int debug;	  /* --debug */
	int argc;	  /* the whole command line, for the debug line */
	char **argv;
};

extern struct globals g;

/* report.c: output as the core's Reporter writes it. */
void committed(void);
void out(const char *text, size_t len);
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A decoded lifecycle record; its strings are NUL-terminated copies. */
struct record {
	uint32_t flags;
	int32_t pid;
	uint64_t start_time;
	const char *slot[TSRT_LCR_SLOT_COUNT];
	uint32_t len[TSRT_LCR_SLOT_COUNT];
	char raw[TSRT_LCR_MAX_SIZE];
	char strings[TSRT_LCR_MAX_SIZE + TSRT_LCR_SLOT_COUNT];
};

/* state.c: the state root, a container's directory, its record and status. */
int in_userns(void);
uid_t overflow_uid(void);
int state_root(int *fd);
int valid_id(const char *id);
int open_container(int rootfd, const char *id, int *dirfd);
int has_state_file(int dirfd);
int lock_container(int dirfd);
int read_record(int dirfd, struct record *r);
int status_of(int dirfd, const struct record *r);
int init_pidfd(const struct record *r);

/* verbs.c */
int verb_state(int argc, char **argv);
int verb_start(int argc, char **argv);
int verb_kill(int argc, char **argv);
int verb_delete(int argc, char **argv);
int verb_list(int argc, char **argv);

/* main.c: one flag of a verb's, as the core's parser reads it. */
enum flag_result {
	FLAG_NONE,
	FLAG_BOOL,
	FLAG_VALUE,
	FLAG_UNKNOWN
};
int bool_value(const char *v);
int flag_is(const char *arg, const char *name, const char *shortname, const char **value);

#endif
