#ifndef TSRT_JOINED_H
#define TSRT_JOINED_H

/* What joined_spawn runs: a program inside the namespaces of the process behind target_pidfd. */
struct joined_spec {
	int target_pidfd;
	int ns_flags; /* CLONE_NEW* to join; 0 runs in the runtime's own namespaces */
	int stdin_fd;
	int output_fd; /* stdout and stderr */
	const char *path;
	char *const *argv;
	char *const *envp;
	const char *cwd; /* entered after joining, or NULL to stay at the namespace's root */
	/* A classic BPF program (struct sock_filter[]) loaded just before execve, with these seccomp(2) flags. */
	const void *seccomp;
	unsigned int seccomp_len; /* in instructions; 0: no filter */
	unsigned int seccomp_flags;
	int no_new_privs;
};

/* Fork-like clone3 with CLONE_PIDFD; returns the pid and its pidfd, or -1 with *err_out set. */
int joined_spawn(const struct joined_spec *s, int *pidfd_out, int *err_out);

/* open(path, O_PATH) in the mount namespace of the process behind target_pidfd, with our credentials; the fd
 * in our table, or -1 with *err_out set. */
int joined_open(int target_pidfd, const char *path, int *err_out);

#endif
