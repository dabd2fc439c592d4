/*
 * Output as src/cli/report.ts writes it: with --log FILE a log line goes to the file and an error's bare message
 * to stderr; without it the line goes to stderr. The --debug line the core writes before running a verb is
 * written when the front door commits to the command (its first output or change), never before a hand-over.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "frontdoor.h"

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { fd, POLLOUT, 0 };
			poll(&p, 1, -1);
			continue;
		}
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* JSON.stringify of a string: quotes, backslash and control characters escaped, other bytes as they are. */
static size_t json_quote(const char *s, char *dst, size_t cap)
{
	size_t n = 0;
#define PUT(c)                                                                                                         \
	do {                                                                                                           \
		if (n + 1 < cap)                                                                                       \
			dst[n] = (c);                                                                                  \
		n++;                                                                                                   \
	} while (0)
	PUT('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		const char *esc = NULL;
		switch (*p) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default: break;
		}
		char u[8];
		if (!esc && *p < 0x20) {
			snprintf(u, sizeof(u), "\\u%04x", *p);
			esc = u;
		}
		if (esc) {
			for (; *esc; esc++)
				PUT(*esc);
		} else {
			PUT((char)*p);
		}
	}
	PUT('"');
#undef PUT
	dst[n < cap ? n : cap - 1] = 0;
	return n;
}

static void emit(const char *level, const char *msg, int also_stderr)
{
	char when[32], quoted[8192], line[8448];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_quote(msg, quoted, sizeof(quoted));
	int n = g.json ? snprintf(line, sizeof(line), TSRT_TEXT_LOG_JSON, level, quoted, when)
		       : snprintf(line, sizeof(line), TSRT_TEXT_LOG_TEXT, when, level, quoted);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	if (g.log && g.log[0]) {
		int fd = open(g.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
		if (fd >= 0) {
			write_all(fd, line, len);
			close(fd);
		} else {
			write_all(2, line, len);
		}
		if (also_stderr) {
			write_all(2, msg, strlen(msg));
			write_all(2, "\n", 1);
		}
	} else {
		write_all(2, line, len);
	}
}

void committed(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	if (!g.debug)
		return;
	char args[4096];
	size_t n = 0;
	args[0] = 0;
	for (int i = 1; i < g.argc; i++) {
		int w = snprintf(args + n, sizeof(args) - n, "%s%s", i > 1 ? " " : "", g.argv[i]);
		if (w < 0 || (size_t)w >= sizeof(args) - n)
			break;
		n += (size_t)w;
	}
	char msg[4200];
	snprintf(msg, sizeof(msg), TSRT_TEXT_DEBUG_ARGV, args);
	emit("debug", msg, 0);
}

void out(const char *text, size_t len)
{
	committed();
	write_all(1, text, len);
}

/* Reports an error as the core's main() does and returns the exit status it gives. */
int fail(const char *fmt, ...)
{
	committed();
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit("error", msg, 1);
	return TSRT_EXIT_FAILURE;
}
