// What the plan needs to know about the host. Gathered once per command by runtime/host.ts; tests pass
// their own, which is what keeps plan building pure.

export interface CgroupHierarchy {
  /** Where the host has it mounted, e.g. /sys/fs/cgroup/cpu,cpuacct */
  mountPoint: string;
  /** The controllers (or name=) options that identify it, e.g. "cpu,cpuacct" or "name=systemd". */
  options: string;
  /** The runtime's own cgroup inside this hierarchy, e.g. "/user.slice". */
  ownPath: string;
}

export interface HostFacts {
  euid: number;
  egid: number;
  /** The runtime itself runs in a user namespace someone made (rootless podman's): no mknod, binds instead. */
  inUserns?: boolean;
  /** /proc/sys/kernel/cap_last_cap */
  capLastCap: number;
  /** The runtime's own capability bounding set (CapBnd): without a user namespace nothing beyond it exists. */
  capBounding: bigint;
  /** The RLIMIT_NOFILE the container gets when the config names none. */
  defaultNofile: { soft: bigint; hard: bigint };
  /** The runtime's soft RLIMIT_STACK (2^64-1: unlimited), which a container process execs under unless its
   * config sets one: it decides how much argv and envp execve takes. Unknown: only the per-string limit is checked. */
  execStack?: bigint;
  cgroup: {
    layout: 'v1' | 'v2' | 'hybrid';
    v1: CgroupHierarchy[];
    /** Mount point of cgroup2: /sys/fs/cgroup (v2) or /sys/fs/cgroup/unified (hybrid). */
    unifiedMountPoint?: string;
    unifiedOwnPath?: string;
  };
  /** Whether a host path is a directory; undefined when it does not exist. */
  isDirectory(path: string): boolean | undefined;
  /** Whether the host has the path at all (lstat, no following). */
  exists(path: string): boolean;
  /** Whether a namespace path is the runtime's own namespace of that type (the host's, joined by path). */
  isRuntimeNamespace(path: string, type: string): boolean;
  /**
   * Whether the user namespace at a path (/proc/PID/ns/user) has setgroups denied, as one an unprivileged
   * process mapped its own gid in must; false when that cannot be told (then setgroups is tried).
   */
  setgroupsDenied(userNsPath: string): boolean;
  /** Where the resctrl filesystem (Intel RDT) is mounted; undefined when the host has none. */
  resctrlMountPoint?: string;
  /** Whether an LSM is active, so a requested label must be applied (or refused), never skipped. */
  apparmorEnabled: boolean;
  selinuxEnabled: boolean;
}
