/*
 * One buffer and at most one fd (SCM_RIGHTS) per sendmsg/recvmsg: how the runtime, the executor and the
 * runtime's joined children pass fds (the console master, the seccomp listener, a bind source). Inline and
 * allocation-free, for the executor; the kernel's cmsg is checked field by field before an fd is taken (R10).
 */
#ifndef TSRT_FDMSG_H
#define TSRT_FDMSG_H

#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define FDMSG_NONE (-1) /* no control buffer */
#define FDMSG_RECV (-2) /* room for one fd to be received */

struct fdmsg {
	struct msghdr mh;
	struct iovec iov;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
};

/* Prepares m for len bytes at data and, by fd: an fd to send (>= 0), room for one (FDMSG_RECV), or none. */
static inline struct msghdr *fdmsg_init(struct fdmsg *m, void *data, size_t len, int fd)
{
	memset(m, 0, sizeof(*m));
	m->iov.iov_base = data;
	m->iov.iov_len = len;
	m->mh.msg_iov = &m->iov;
	m->mh.msg_iovlen = 1;
	if (fd != FDMSG_NONE) {
		m->mh.msg_control = m->u.buf;
		m->mh.msg_controllen = sizeof(m->u.buf);
	}
	if (fd >= 0) {
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m->mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return &m->mh;
}

/* The one fd a received message carried, or -1 (none, a truncated control buffer, or anything else). */
static inline int fdmsg_fd(struct fdmsg *m)
{
	struct cmsghdr *cm = (m->mh.msg_flags & MSG_CTRUNC) ? NULL : CMSG_FIRSTHDR(&m->mh);
	int fd = -1;
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

#endif
