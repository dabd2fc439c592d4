/*
 * One /proc/self/mountinfo line, split in place. Pure (no syscalls, no ctx): pivot.c runs it on the lines the
 * kernel writes, test/unit/mountinfo.test.ts on random and mutated ones under ASan and UBSan.
 */
#include "executor_int.h"

/* The kernel escapes space, tab, newline and backslash in paths as \ooo; undone in place. */
static void unescape_octal(char *s)
{
	char *out = s;
	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = 0;
}

/* Splits one line (len bytes, no newline, NUL-terminated at len) in place; 0 when it is not a mountinfo line:
 * "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER". R10: the text names paths other
 * users chose, so every field is found within len and nothing is read past it. */
int parse_mountinfo(char *line, size_t len, struct mountinfo_entry *e)
{
	char *field[64];
	size_t n = 0, i = 0, dash;
	uint64_t id = 0;
	while (i < len && n < sizeof(field) / sizeof(field[0])) {
		while (i < len && line[i] == ' ')
			line[i++] = 0;
		if (i >= len)
			break;
		field[n++] = line + i;
		while (i < len && line[i] != ' ')
			i++;
	}
	if (i < len)
		return 0; /* more fields than any mount has */
	for (dash = 6; dash < n && strcmp(field[dash], "-") != 0; dash++)
		;
	if (dash + 1 >= n || !field[0][0])
		return 0;
	for (i = 0; field[0][i]; i++) {
		if (field[0][i] < '0' || field[0][i] > '9' || id > UINT64_MAX / 10 - 1)
			return 0;
		id = id * 10 + (uint64_t)(field[0][i] - '0');
	}
	unescape_octal(field[3]);
	unescape_octal(field[4]);
	e->id = id;
	e->root = field[3];
	e->point = field[4];
	e->fstype = field[dash + 1];
	return 1;
}
