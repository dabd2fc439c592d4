// The launch plan: everything the executor needs, resolved and numeric, and what the runtime does beside it.
// Built by plan/build.ts (pure), encoded by plan/codec.ts, decoded and applied by native/executor. Field
// meanings mirror native/executor/plan.h; the numbers (step kinds, step and plan flags) come from the table
// both languages are generated from (src/native-abi/table.ts).

import {
  MF_ATTR_RECURSIVE,
  MF_COPY_UP,
  MF_DEFERRED,
  MF_DEST_FILE,
  MF_FALLBACK_BIND,
  MF_MOUNT_LABEL,
  MF_PROC_OR_SYS,
  MF_PROP_RECURSIVE,
  MF_RECURSIVE,
  PF_EXEC,
  PF_LOOPBACK_UP,
  PF_NEW_CGROUPNS,
  PF_NEW_KEYRING,
  PF_NEW_MOUNTNS,
  PF_NEW_PIDNS,
  PF_NEW_TIMENS,
  PF_NEW_USERNS,
  PF_NO_NEW_PRIVS,
  PF_NO_PIVOT,
  PF_OOM_SCORE_ADJ,
  PF_READONLY_ROOT,
  PF_SET_DOMAINNAME,
  PF_SET_HOSTNAME,
  PF_SET_UMASK,
  PF_SETGROUPS,
  PF_SHARED_MOUNTNS,
  PF_START_FIFO,
  PF_SYNC_PREPIVOT,
  PF_TERMINAL,
  STEP_BIND_DEVICE,
  STEP_MKDIR,
  STEP_MKNOD,
  STEP_MOUNT_BIND,
  STEP_MOUNT_FS,
  STEP_SETATTR,
  STEP_SYMLINK,
} from '../native-abi/abi.gen.js';
import type { SeccompPlan } from './seccomp.js';

export const StepKind = {
  bind: STEP_MOUNT_BIND,
  fs: STEP_MOUNT_FS,
  symlink: STEP_SYMLINK,
  mknod: STEP_MKNOD,
  bindDevice: STEP_BIND_DEVICE,
  mkdir: STEP_MKDIR,
  setattr: STEP_SETATTR,
} as const;
export type StepKindName = keyof typeof StepKind;

export const MountFlag = {
  recursive: MF_RECURSIVE,
  destFile: MF_DEST_FILE,
  attrRecursive: MF_ATTR_RECURSIVE,
  fallbackBind: MF_FALLBACK_BIND,
  procOrSys: MF_PROC_OR_SYS,
  propagationRecursive: MF_PROP_RECURSIVE,
  /** The plan's mountLabel goes to this filesystem as its SELinux context= option. */
  mountLabel: MF_MOUNT_LABEL,
  /** tmpcopyup: the new tmpfs starts with a copy of what the image has at its destination (runc, crun). */
  copyUp: MF_COPY_UP,
  /** A setattr step applied last, after the console is bound: the read-only of a tmpfs or /dev (runc). */
  deferred: MF_DEFERRED,
} as const;

export const PlanFlag = {
  newUserns: PF_NEW_USERNS,
  newMountns: PF_NEW_MOUNTNS,
  noPivot: PF_NO_PIVOT,
  readonlyRoot: PF_READONLY_ROOT,
  terminal: PF_TERMINAL,
  noNewPrivs: PF_NO_NEW_PRIVS,
  setHostname: PF_SET_HOSTNAME,
  setDomainname: PF_SET_DOMAINNAME,
  oomScoreAdj: PF_OOM_SCORE_ADJ,
  syncPrepivot: PF_SYNC_PREPIVOT,
  startFifo: PF_START_FIFO,
  setUmask: PF_SET_UMASK,
  setgroups: PF_SETGROUPS,
  newCgroupns: PF_NEW_CGROUPNS,
  newTimens: PF_NEW_TIMENS,
  newPidns: PF_NEW_PIDNS,
  newKeyring: PF_NEW_KEYRING,
  /** exec: join the namespaces of the container init (joinPidfd) instead of making a container. */
  exec: PF_EXEC,
  /** The rootfs work happens in a mount namespace shared with others: no propagation change, chroot. */
  sharedMountns: PF_SHARED_MOUNTNS,
  /** A new network namespace: its loopback interface is brought up (runc's and crun's "loopback" network). */
  loopbackUp: PF_LOOPBACK_UP,
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

/** A step of `kind` at `dest`: no flags, attributes, propagation, mode, device or owner but what `set` gives. */
export function planStep(kind: StepKindName, dest: string, set: Partial<Omit<PlanStep, 'kind' | 'dest'>> = {}): PlanStep {
  return { kind, flags: 0, dest, attrSet: 0, attrClr: 0, propagation: 0, mode: 0, rdev: 0n, uid: 0, gid: 0, ...set };
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
  /** The `tasks` files of the container's v1 cgroups, which the init writes "0" to: a move of itself. */
  cgroupTasks?: number[];
}
