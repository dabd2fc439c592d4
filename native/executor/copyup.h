#ifndef TSRT_COPYUP_H
#define TSRT_COPYUP_H

/*
 * tmpcopyup: copies the entries of the image's directory src_dir into the fresh tmpfs dst_dir (both directory
 * fds), without following any symlink of the image and without resolving any name outside src_dir. procfd is
 * the executor's private procfs, through which each regular file is reopened from the fd it was checked on.
 * Returns 0, or -1 with errno set (EUCLEAN for a malformed directory entry).
 */
int copyup_tree(int procfd, int src_dir, int dst_dir);

#endif
