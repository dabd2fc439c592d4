// The launch plan: everything the executor needs, resolved and numeric. Built by plan/build.ts (pure), encoded by
// plan/codec.ts, decoded and applied by native/executor. Field meanings mirror native/executor/plan.h.

import type { SeccompPlan } from './seccomp.js';

export const StepKind = {
  bind: 1,
  fs: 2,
  symlink: 3,
  mknod: 4,
  bindDevice: 5,
  mkdir: 6,
  setattr: 7,
} as const;
export type StepKindName = keyof typeof StepKind;

export const MountFlag = {
  recursive: 0x1,
  destFile: 0x2,
  attrRecursive: 0x4,
  fallbackBind: 0x8,
  procOrSys: 0x10,
  propagationRecursive: 0x20,
  /** The plan's mountLabel goes to this filesystem as its SELinux context= option. */
  mountLabel: 0x40,
  /** tmpcopyup: the new tmpfs starts with a copy of what the image has at its destination (runc, crun). */
  copyUp: 0x80,
  /** A setattr step applied last, after the console is bound: the read-only of a tmpfs or /dev (runc). */
  deferred: 0x100,
} as const;

export const PlanFlag = {
  newUserns: 0x1,
  newMountns: 0x2,
  noPivot: 0x4,
  readonlyRoot: 0x8,
  terminal: 0x10,
  noNewPrivs: 0x20,
  setHostname: 0x40,
  setDomainname: 0x80,
  oomScoreAdj: 0x100,
  syncPrepivot: 0x200,
  startFifo: 0x400,
  setUmask: 0x800,
  setgroups: 0x1000,
  newCgroupns: 0x2000,
  newTimens: 0x4000,
  newPidns: 0x8000,
  newKeyring: 0x10000,
  /** exec: join the namespaces of the container init (joinPidfd) instead of making a container. */
  exec: 0x20000,
  /** The rootfs work happens in a mount namespace shared with others: no propagation change, chroot. */
  sharedMountns: 0x40000,
  /** A new network namespace: its loopback interface is brought up (runc's and crun's "loopback" network). */
  loopbackUp: 0x80000,
} as const;

export interface PlanStep {
  kind: StepKindName;
  flags: number;
  source?: string;
  dest: string;
  fstype?: string;
  /** fs mounts: fsconfig parameters "a=b,c"; symlink: the link target. */
  data?: string;
  fallback?: string;
  attrSet: number;
  attrClr: number;
  propagation: number;
  mode: number;
  rdev: bigint;
  uid: number;
  gid: number;
  /** Bind mounts only: make the bound tree an idmapped mount (encoded after the plan's other fields). */
  idmap?: Idmap;
}

/**
 * An idmapped mount: the bound tree gets MOUNT_ATTR_IDMAP with a user namespace carrying these maps (an id
 * on disk is read as a containerID and shown as the hostID). The runtime makes that namespace and fills in
 * usernsFd before encoding.
 */
export interface Idmap {
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /** ridmap: every mount of an rbind tree, not only its top. */
  recursive: boolean;
  usernsFd?: number;
}

export interface SchedulerAttr {
  policy: number;
  flags: number;
  nice: number;
  priority: number;
  runtime: bigint;
  deadline: bigint;
  period: bigint;
}

export interface ResctrlPlan {
  /** The resctrl mount point, e.g. /sys/fs/resctrl. */
  mountPoint: string;
  /** The group (directory) name: closID, or the container id when the config names none. */
  closID?: string;
  /** Lines for the group's schemata file (l3CacheSchema, memBwSchema, schemata). */
  schemata: string[];
  /** A monitoring group of the container's own under mon_groups (enableMonitoring, enableCMT, enableMBM). */
  monitoring: boolean;
  /** mon_features the host must offer: llc_occupancy for enableCMT, mbm_*_bytes for enableMBM. */
  requiredMonFeatures: string[];
}

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface LaunchPlan {
  flags: number;
  /** CLONE_NEW* to unshare in the executor (not USER, CGROUP or TIME: those have their own flags). */
  unshareFlags: number;
  join: { type: number; path: string }[];
  timeOffsets: { monotonic: [bigint, number]; boottime: [bigint, number] };
  rootfs: string;
  rootPropagation: number;
  rootfsPropagation: number;
  hostname?: string;
  domainname?: string;
  steps: PlanStep[];
  maskedPaths: string[];
  readonlyPaths: string[];
  /** [path under /proc/sys, value] */
  sysctl: [string, string][];
  consoleSocket: number;
  consoleSize: { rows: number; cols: number };
  oomScoreAdj: number;
  rlimits: { resource: number; soft: bigint; hard: bigint }[];
  caps: { bounding: bigint; effective: bigint; permitted: bigint; inheritable: bigint; ambient: bigint };
  uid: number;
  gid: number;
  umask: number;
  additionalGids: number[];
  cwd: string;
  args: string[];
  env: string[];
  fifoFd: number;
  preserveFds: number;
  /** linux.seccomp: the filter (compiled right before spawn), its load flags and listener. */
  seccomp?: SeccompPlan;
  /** sched_setattr(2) for the process, applied while the executor still has its privileges. */
  scheduler?: SchedulerAttr;
  /** ioprio_set(2) value: class << 13 | level. */
  ioPriority?: number;
  /** CPU bitmaps (bit n = CPU n) for sched_setaffinity: at the executor's start, and right before exec. */
  cpuAffinity?: { initial?: Uint8Array; final?: Uint8Array };
  /** personality(2) domain. */
  personality?: number;
  /** set_mempolicy(2): mode with its MPOL_F_* flags, and the node bitmap (bit n = node n). */
  memoryPolicy?: { mode: number; nodes: Uint8Array };
  /** AppArmor profile the exec switches to (written to the process's attr/apparmor/exec). */
  apparmorProfile?: string;
  /** SELinux context the exec switches to (written to the process's attr/exec). */
  selinuxLabel?: string;
  /** SELinux context for the filesystems mounted with MountFlag.mountLabel (only when SELinux is on). */
  mountLabel?: string;
  /** exec: a pidfd of the container init whose namespaces the process joins, and which (CLONE_NEW*). */
  joinPidfd?: number;
  joinNsFlags?: number;
  /** Not sent to the executor: what the parent does between the executor's messages. */
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /** Whether the runtime writes each map itself (else newuidmap/newgidmap does). */
  idMapsDirect: { uid: boolean; gid: boolean };
  /** linux.intelRdt: the resctrl group the runtime puts the init in (not sent to the executor). */
  intelRdt?: ResctrlPlan;
  /** Host interfaces the runtime moves into the container's network namespace (and back on delete). */
  netDevices?: { hostName: string; name: string }[];
}
