/*
 * linux.netDevices: moving a network interface between network namespaces over rtnetlink, with no `ip` child.
 *
 * The move and the rename are one RTM_NEWLINK (IFLA_NET_NS_FD + IFLA_IFNAME), so the device is never seen in
 * the target under a name that could clash. The kernel flushes a device's addresses when it changes
 * namespace; the spec asks for them to be kept, so they are read before the move and added back after it,
 * and an interface that was up is brought up again.
 *
 * Runs in the runtime process (any thread): setns(CLONE_NEWNET) is per thread and allowed in a threaded
 * process; the calling thread returns to its own network namespace before this returns.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ADDRS 64
#define BUF_SIZE 32768

struct saved_addr {
	struct ifaddrmsg ifa;
	unsigned char local[16], address[16];
	int has_local, has_address, len;
};

struct nlreq {
	struct nlmsghdr h;
	union {
		struct ifinfomsg ifi;
		struct ifaddrmsg ifa;
	} u;
	char attrs[256];
};

static void add_attr(struct nlreq *r, unsigned short type, const void *data, size_t len)
{
	struct rtattr *rta = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->h.nlmsg_len));
	rta->rta_type = type;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* A NETLINK_ROUTE socket that lives in the namespace of ns_fd (or ours when ns_fd < 0). */
static int route_socket(int ns_fd)
{
	int own = -1, sock, err;
	if (ns_fd >= 0) {
		own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (own < 0)
			return -1;
		if (setns(ns_fd, CLONE_NEWNET) < 0) {
			err = errno;
			close(own);
			errno = err;
			return -1;
		}
	}
	sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	err = errno;
	if (own >= 0) {
		/* Going back cannot fail for a namespace we were in; if it somehow did, this thread must not go on. */
		if (setns(own, CLONE_NEWNET) < 0)
			abort();
		close(own);
	}
	errno = err;
	return sock;
}

/* Sends one request to the kernel: 0, or -errno. */
static int send_request(int sock, const struct nlreq *r)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(sock, r, r->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	return 0;
}

/* One datagram of replies (a signal that interrupts the wait is not an answer): its length, or -errno. */
static ssize_t recv_reply(int sock, char *buf, size_t size)
{
	for (;;) {
		ssize_t n = recv(sock, buf, size, 0);
		if (n >= 0 || errno != EINTR)
			return n < 0 ? -errno : n;
	}
}

/* Whether message h (already within the datagram: NLMSG_OK) holds a payload of `size` bytes. */
static int has_payload(const struct nlmsghdr *h, size_t size)
{
	return h->nlmsg_len >= NLMSG_LENGTH(size);
}

/* An NLMSG_ERROR's errno: 0 (an ACK) or negative. A short message or a positive "errno" is not the kernel's. */
static int error_of(const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	if (!has_payload(h, sizeof(*e)) || e->error > 0)
		return -EPROTO;
	return e->error;
}

/*
 * One datagram (n bytes) of replies, as the kernel wrote it, to request seq: the request's answer once it is
 * in (0 or -errno), or 1 when more must be read. When link is not NULL the request is a GETLINK: its RTM_NEWLINK
 * is copied to *link (*got_link set), and is the answer itself unless the request asked for an ACK; an answer
 * of 0 without one is EPROTO. R10: every message's payload is checked to be as long as what is read of it.
 * Pure: the fuzz harness (test/security/fixtures/fuzz/netlink-fuzz.c) runs it on any bytes.
 */
static int link_reply(const char *buf, ssize_t n, uint32_t seq, int ack, struct ifinfomsg *link, int *got_link)
{
	const struct nlmsghdr *h;
	for (h = (const struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_seq != seq)
			continue;
		if (h->nlmsg_type == NLMSG_ERROR) {
			int err = error_of(h);
			return err == 0 && link && !*got_link ? -EPROTO : err;
		}
		if (h->nlmsg_type == RTM_NEWLINK && link) {
			if (!has_payload(h, sizeof(*link)))
				return -EPROTO;
			memcpy(link, NLMSG_DATA(h), sizeof(*link));
			*got_link = 1;
			if (!ack)
				return 0;
		}
	}
	return 1;
}

/* Sends one request and reads until its ACK (or error). For a GETLINK, the reply is copied to *link. */
static int transact(int sock, struct nlreq *r, struct ifinfomsg *link)
{
	static __thread char buf[BUF_SIZE];
	static __thread unsigned seq;
	int err, got_link = 0;
	r->h.nlmsg_seq = ++seq;
	if ((err = send_request(sock, r)) < 0)
		return err;
	for (;;) {
		ssize_t n = recv_reply(sock, buf, sizeof(buf));
		if (n < 0)
			return (int)n;
		err = link_reply(buf, n, r->h.nlmsg_seq, (r->h.nlmsg_flags & NLM_F_ACK) != 0, link, &got_link);
		if (err <= 0)
			return err;
	}
}

static int get_link(int sock, const char *name, struct ifinfomsg *out)
{
	struct nlreq r;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_GETLINK;
	r.h.nlmsg_flags = NLM_F_REQUEST;
	r.u.ifi.ifi_family = AF_UNSPEC;
	add_attr(&r, IFLA_IFNAME, name, strlen(name) + 1);
	return transact(sock, &r, out);
}

/*
 * One datagram (n bytes) of an address dump: the addresses of interface ifindex appended to out (count so far
 * in *count), except IPv6 link-local ones (the kernel makes those itself). 0 at the dump's end, -errno, or 1
 * when more must be read. Pure and bounds-checked, like link_reply.
 */
static int addr_reply(const char *buf, ssize_t n, int ifindex, struct saved_addr *out, int *count)
{
	const struct nlmsghdr *h;
	for (h = (const struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		const struct ifaddrmsg *ifa;
		const struct rtattr *rta;
		int alen;
		struct saved_addr *a;
		if (h->nlmsg_type == NLMSG_DONE)
			return 0;
		if (h->nlmsg_type == NLMSG_ERROR)
			return error_of(h);
		if (h->nlmsg_type != RTM_NEWADDR)
			continue;
		if (!has_payload(h, sizeof(*ifa)))
			return -EPROTO;
		ifa = NLMSG_DATA(h);
		if ((int)ifa->ifa_index != ifindex || ifa->ifa_scope == RT_SCOPE_LINK)
			continue;
		if (*count >= MAX_ADDRS)
			return -E2BIG;
		a = &out[*count];
		memset(a, 0, sizeof(*a));
		a->ifa = *ifa;
		a->len = ifa->ifa_family == AF_INET ? 4 : 16;
		alen = (int)IFA_PAYLOAD(h);
		for (rta = IFA_RTA(ifa); RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen)) {
			if (RTA_PAYLOAD(rta) != (unsigned)a->len)
				continue;
			if (rta->rta_type == IFA_LOCAL) {
				memcpy(a->local, RTA_DATA(rta), (size_t)a->len);
				a->has_local = 1;
			} else if (rta->rta_type == IFA_ADDRESS) {
				memcpy(a->address, RTA_DATA(rta), (size_t)a->len);
				a->has_address = 1;
			}
		}
		(*count)++;
	}
	return 1;
}

/* The addresses of one interface (addr_reply says which). */
static int dump_addrs(int sock, int ifindex, struct saved_addr *out, int *count)
{
	static __thread char buf[BUF_SIZE];
	struct nlreq r;
	int err;
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r.h.nlmsg_type = RTM_GETADDR;
	r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	r.h.nlmsg_seq = 0x7fff0001;
	r.u.ifa.ifa_family = AF_UNSPEC;
	*count = 0;
	if ((err = send_request(sock, &r)) < 0)
		return err;
	for (;;) {
		ssize_t n = recv_reply(sock, buf, sizeof(buf));
		if (n < 0)
			return (int)n;
		err = addr_reply(buf, n, ifindex, out, count);
		if (err <= 0)
			return err;
	}
}

int netdev_move(int from_ns, const char *name, int to_ns, const char *new_name, const char **why)
{
	struct saved_addr addrs[MAX_ADDRS];
	struct ifinfomsg link, moved;
	struct nlreq r;
	int from = -1, to = -1, naddrs = 0, err, i, own_to = -1;

	/* A name goes into a fixed-size request: one the kernel could not take is refused before it is copied. */
	*why = "device name longer than IFNAMSIZ";
	if (strnlen(name, IFNAMSIZ) >= IFNAMSIZ || strnlen(new_name, IFNAMSIZ) >= IFNAMSIZ)
		return -EINVAL;
	*why = "open a netlink socket";
	from = route_socket(from_ns);
	if (from < 0)
		return -errno;
	if (to_ns < 0) {
		own_to = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (own_to < 0) {
			err = -errno;
			goto out;
		}
		to_ns = own_to;
	}
	to = route_socket(to_ns);
	if (to < 0) {
		err = -errno;
		goto out;
	}
	*why = "find the device";
	err = get_link(from, name, &link);
	if (err < 0)
		goto out;
	*why = "check the name in the target namespace";
	err = get_link(to, new_name, &moved);
	if (err == 0) {
		err = -EEXIST;
		goto out;
	}
	if (err != -ENODEV)
		goto out;
	*why = "read the device's addresses";
	err = dump_addrs(from, link.ifi_index, addrs, &naddrs);
	if (err < 0)
		goto out;

	*why = "move the device";
	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_NEWLINK;
	r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	r.u.ifi.ifi_family = AF_UNSPEC;
	r.u.ifi.ifi_index = link.ifi_index;
	{
		uint32_t fd = (uint32_t)to_ns;
		add_attr(&r, IFLA_NET_NS_FD, &fd, sizeof(fd));
	}
	add_attr(&r, IFLA_IFNAME, new_name, strlen(new_name) + 1);
	err = transact(from, &r, NULL);
	if (err < 0)
		goto out;

	*why = "find the moved device";
	err = get_link(to, new_name, &moved);
	if (err < 0)
		goto out;
	*why = "restore the device's addresses";
	for (i = 0; i < naddrs; i++) {
		memset(&r, 0, sizeof(r));
		r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
		r.h.nlmsg_type = RTM_NEWADDR;
		r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
		r.u.ifa = addrs[i].ifa;
		r.u.ifa.ifa_index = (unsigned)moved.ifi_index;
		if (addrs[i].has_local)
			add_attr(&r, IFA_LOCAL, addrs[i].local, (size_t)addrs[i].len);
		if (addrs[i].has_address)
			add_attr(&r, IFA_ADDRESS, addrs[i].address, (size_t)addrs[i].len);
		err = transact(to, &r, NULL);
		if (err < 0 && err != -EEXIST)
			goto out;
	}
	err = 0;
	if (link.ifi_flags & IFF_UP) {
		*why = "bring the device up";
		memset(&r, 0, sizeof(r));
		r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
		r.h.nlmsg_type = RTM_NEWLINK;
		r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
		r.u.ifi.ifi_family = AF_UNSPEC;
		r.u.ifi.ifi_index = moved.ifi_index;
		r.u.ifi.ifi_flags = IFF_UP;
		r.u.ifi.ifi_change = IFF_UP;
		err = transact(to, &r, NULL);
	}
out:
	if (from >= 0)
		close(from);
	if (to >= 0)
		close(to);
	if (own_to >= 0)
		close(own_to);
	return err;
}
