/* linux.netDevices over rtnetlink (native/addon/netdev.c). */
#ifndef TSRT_NETDEV_H
#define TSRT_NETDEV_H

/*
 * Moves interface `name` from the network namespace from_ns to to_ns (fds; -1 = the caller's own), renamed
 * to new_name, keeping its addresses and up state. Returns 0, or -errno with *why saying which step failed.
 */
int netdev_move(int from_ns, const char *name, int to_ns, const char *new_name, const char **why);

#endif
