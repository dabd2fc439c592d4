// The launch plan: everything the executor needs, resolved and numeric, and what the runtime does beside it.
// Built by plan/build.ts (pure), encoded by plan/codec.ts, decoded and applied by native/executor. Field
// meanings mirror native/executor/plan.h.

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
 * on disk is read as a containerID and shown as the hostID). The runtime makes that namespace and binds it
 * when the plan is encoded (PlanFds.userns).
 */
export interface Idmap {
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /** ridmap: every mount of an rbind tree, not only its top. */
  recursive: boolean;
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

/** What the executor makes for a new container: namespaces, the rootfs, masks and sysctls. */
export interface ContainerPlan {
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
  /** SELinux context for the filesystems mounted with MountFlag.mountLabel (only when SELinux is on). */
  mountLabel?: string;
}

/** The process the executor sets up and execs: the same for a container's init and for an exec'd process. */
export interface ProcessPlan {
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
  preserveFds: number;
  /** linux.seccomp: the filter (compiled before anything is made), its load flags and listener. */
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
}

/** What the runtime itself does between the executor's messages; never sent to the executor. */
export interface ParentPlan {
  /** The new user namespace's maps, written when the executor asks for them (MSG_USERNS). */
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /** Whether the runtime writes each map itself (else newuidmap/newgidmap does). */
  idMapsDirect: { uid: boolean; gid: boolean };
  /** linux.intelRdt: the resctrl group the runtime puts the init in. */
  intelRdt?: ResctrlPlan;
  /** Host interfaces the runtime moves into the container's network namespace (and back on delete). */
  netDevices?: { hostName: string; name: string }[];
  /** prestart hooks run at `start` (configs before runtime-spec 1.0.2), not before pivot_root. */
  prestartAtStart: boolean;
}

/**
 * A plan for the executor: one flag word, the process, and either a container to make or (exec) the init's
 * namespaces to join. It holds no fds: those are bound when it is encoded (PlanFds), so it can be built, and
 * refused, before the runtime opens or makes anything.
 */
export interface LaunchPlan {
  flags: number;
  /** Absent for exec, whose process joins the namespaces of the container init instead. */
  container?: ContainerPlan;
  process: ProcessPlan;
  /** exec: CLONE_NEW* of the init's namespaces to join through its pidfd (PlanFds.joinPidfd). */
  joinNsFlags?: number;
}

/** A new container's plan: the executor's part, and the runtime's own. */
export interface CreatePlan extends LaunchPlan {
  container: ContainerPlan;
  parent: ParentPlan;
}

/** The fds a plan refers to, bound when it is encoded; the runtime makes them once the plan is accepted. */
export interface PlanFds {
  /** Where the pty master goes: a console socket connection, or the runtime's end of a socket pair. */
  console?: number;
  /** exec.fifo, which the init opens to wait for `start` (PlanFlag.startFifo). */
  fifo?: number;
  /** exec: a pidfd of the container init. */
  joinPidfd?: number;
  /** For each idmapped step, in step order, a user namespace carrying its maps. */
  userns?: number[];
}
