// The constants both languages use, written once. hack/gen-abi.ts turns this table into
// native/generated/tsrt-abi.h, native/generated/tsrt-exec-abi.h and src/native-abi/abi.gen.ts (generated at
// build, never committed); the TypeScript core imports the module, the C front door (native/frontdoor) the
// first header, the executor (native/executor/plan.h, sync.h) and the addon the second, and
// test/unit/abi.test.ts compiles the headers to check that all say the same.
//
// A group is a name prefix with scalar constants, string lists and number lists. The groups of EXEC_ABI are
// what the sealed executor shares with the core (plan format and flags, limits, sync messages, step ids):
// they go to native/generated/tsrt-exec-abi.h as scalars only (plain #defines, no includes), which
// native/executor/plan.h and sync.h include; their lists (the step texts) are for TypeScript alone.

export type AbiScalar = number | string;

export interface AbiGroup {
  /** Prefix of every name in the group, in both languages: TSRT_LCR_VERSION. */
  prefix: string;
  /** One line for the generated files. */
  doc: string;
  constants?: Record<string, AbiScalar>;
  strings?: Record<string, readonly string[]>;
  numbers?: Record<string, readonly number[]>;
  /** Fixed-size fields, in order from offset 0: the generator gives each an OFF_<name> and SIZE_<name>. */
  layout?: readonly (readonly [name: string, size: number])[];
  /** Names of slots in a table of (u32 offset, u32 length) pairs: SLOT_<name> is each one's index. */
  slots?: readonly string[];
  /** C writes the numbers unsigned (0x10u), as the fields they are compared with and masked into are. */
  unsigned?: boolean;
  /** C writes the numbers in hex: bit flags. */
  hex?: boolean;
}

/**
 * The lifecycle record (<state dir>/<id>/lifecycle.bin): what the front door needs for state, start, kill,
 * delete and list, decided by the core at create. Little-endian; a header, then SLOT_COUNT slots of
 * (u32 offset, u32 length) into the bytes that follow. CHECKSUM is FNV-1a (32 bit) of the whole record with
 * the checksum field read as zero. A record whose magic, version, size or checksum is not this one's is
 * ignored by the front door, which then hands the command to the core.
 */
const lifecycle: AbiGroup = {
  prefix: 'TSRT_LCR_',
  doc: 'the lifecycle record written at create beside state.json',
  constants: {
    FILE: 'lifecycle.bin',
    MAGIC: 'tsrt-lcr',
    VERSION: 1,
    MAX_SIZE: 65536,
    FNV_OFFSET: 0x811c9dc5,
    FNV_PRIME: 0x01000193,
    /** Flags: what the front door may do alone. */
    FLAG_START: 1,
    FLAG_DELETE: 2,
    /** Joiners of the pre-rendered state (head, pid, joiner, status, quote, tail). */
    PRETTY_STATUS: ',\n  "status": "',
    COMPACT_STATUS: ',"status":"',
    STATUS_END: '"',
    /** Prefixes of a CGROUP_REMOVE entry: a leaf removed with its children, or a parent that may stay busy. */
    CGROUP_LEAF: 'L',
    CGROUP_PARENT: 'P',
  },
  layout: [
    ['MAGIC', 8],
    ['VERSION', 4],
    ['SIZE', 4],
    ['CHECKSUM', 4],
    ['FLAGS', 4],
    ['PID', 4],
    ['RESERVED', 4],
    ['START_TIME', 8],
  ],
  slots: [
    'ID',
    'BUNDLE',
    'CREATED',
    'OWNER',
    // The state document with everything but pid and status rendered: head + pid + joiner + status + '"' + tail.
    'PRETTY_HEAD',
    'PRETTY_TAIL',
    'COMPACT_HEAD',
    'COMPACT_TAIL',
    // How the status is derived: the fifo's name in the container's directory (created while it exists), the
    // freezer file (absolute) and what it reads when frozen (paused).
    'FIFO',
    'FREEZER_FILE',
    'FREEZER_FROZEN',
    // delete: the directory whose cgroup.procs must be empty, then the cgroup directories to remove in
    // order, each prefixed by CGROUP_LEAF or CGROUP_PARENT and ended by a NUL.
    'PROCS_DIR',
    'CGROUP_REMOVE',
  ],
};

const status: AbiGroup = {
  prefix: 'TSRT_STATUS_',
  doc: 'container status names, by number',
  constants: { CREATING: 0, CREATED: 1, RUNNING: 2, PAUSED: 3, STOPPED: 4 },
  strings: { NAMES: ['creating', 'created', 'running', 'paused', 'stopped'] },
};

/** Texts both print, as runc words them; %s is replaced by the arguments in order. */
const texts: AbiGroup = {
  prefix: 'TSRT_TEXT_',
  doc: 'error texts, log line formats and the version text',
  constants: {
    NOT_EXIST: 'container does not exist',
    ID_EMPTY: 'container id cannot be empty',
    ID_FORMAT: 'invalid id format: %s',
    NOT_RUNNING: 'container not running',
    START_STOPPED: 'cannot start a container that has stopped',
    START_ALREADY: 'cannot start an already %s container',
    DELETE_NOT_STOPPED: 'cannot delete container %s that is not stopped: %s',
    LOG_TEXT: 'time="%s" level=%s msg=%s\n',
    LOG_JSON: '{"level":"%s","msg":%s,"time":"%s"}\n',
    DEBUG_ARGV: 'tsrt %s',
    VERSION: 'tsrt version %s\ncommit: %s\nspec: %s\n',
    SPEC_VERSION: '1.2.0',
    /** Characters an id may have besides ASCII letters and digits. */
    ID_PUNCT: '_+-.',
  },
};

const exit: AbiGroup = {
  prefix: 'TSRT_EXIT_',
  doc: 'exit statuses of the command line',
  constants: { OK: 0, FAILURE: 1 },
};

/** Signal names as runc accepts them (with or without SIG, any case), and the real-time range. */
const signals: AbiGroup = {
  prefix: 'TSRT_SIG_',
  doc: 'signal names and numbers',
  constants: { RTMIN: 34, RTMAX: 64 },
  strings: {
    NAMES: [
      'SIGHUP',
      'SIGINT',
      'SIGQUIT',
      'SIGILL',
      'SIGTRAP',
      'SIGABRT',
      'SIGIOT',
      'SIGBUS',
      'SIGFPE',
      'SIGKILL',
      'SIGUSR1',
      'SIGSEGV',
      'SIGUSR2',
      'SIGPIPE',
      'SIGALRM',
      'SIGTERM',
      'SIGSTKFLT',
      'SIGCHLD',
      'SIGCLD',
      'SIGCONT',
      'SIGSTOP',
      'SIGTSTP',
      'SIGTTIN',
      'SIGTTOU',
      'SIGURG',
      'SIGXCPU',
      'SIGXFSZ',
      'SIGVTALRM',
      'SIGPROF',
      'SIGWINCH',
      'SIGIO',
      'SIGPOLL',
      'SIGPWR',
      'SIGSYS',
    ],
  },
  numbers: {
    NUMBERS: [1, 2, 3, 4, 5, 6, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 29, 30, 31],
  },
};

export const ABI: readonly AbiGroup[] = [lifecycle, status, texts, exit, signals];

// ---- The executor's groups: native/generated/tsrt-exec-abi.h ----

/** The plan buffer's header (src/plan/codec.ts writes it, native/executor/decode.c refuses any other). */
const plan: AbiGroup = {
  prefix: 'TSRT_PLAN_',
  doc: 'the launch plan buffer: magic ("TSRT" little-endian) and format version',
  unsigned: true,
  hex: true,
  constants: { MAGIC: 0x54535254, VERSION: 1 },
};

/**
 * The kernel's length limits the plan is held to: TS refuses a config past them (plan/limits.ts, with the JSON
 * pointer) and the decoder refuses a plan past them, so both must draw the same line.
 */
const limits: AbiGroup = {
  prefix: 'TSRT_',
  doc: 'length limits of the plan and of a sync message',
  unsigned: true,
  constants: {
    /** include/uapi/linux/limits.h PATH_MAX: the longest path a syscall takes, with its NUL. */
    PATH_MAX: 4096,
    /** include/uapi/linux/binfmts.h MAX_ARG_STRLEN (32 pages): the longest argv or envp string, with its NUL. */
    ARG_STRLEN: 131072,
    /** The detail text of a sync message (a path, a key): cut there by the executor. */
    DETAIL_MAX: 512,
  },
};

/** What each plan step does; the codec writes the number, the executor switches on it. */
const stepKinds: AbiGroup = {
  prefix: 'STEP_',
  doc: 'plan step kinds',
  unsigned: true,
  constants: {
    /** open_tree(source) -> setattr -> move_mount onto dest */
    MOUNT_BIND: 1,
    /** fsopen(fstype) + fsconfig(data) -> fsmount -> move_mount onto dest */
    MOUNT_FS: 2,
    /** symlink(target, dest) unless dest exists */
    SYMLINK: 3,
    /** mknod dest (mode, rdev), chown uid:gid */
    MKNOD: 4,
    /** bind a host device node onto dest, verified by rdev first */
    BIND_DEVICE: 5,
    /** mkdir -p dest inside the rootfs */
    MKDIR: 6,
    /** mount_setattr(attr_set, attr_clr) on the mount at dest (a tmpfs made read-only last, rnosuid over a
     * bind's tree); MF_ATTR_RECURSIVE applies it to the tree */
    SETATTR: 7,
  },
};

/** How a step is carried out: decided by TS (plan/mounts.ts), obeyed by the executor. */
const mountFlags: AbiGroup = {
  prefix: 'MF_',
  doc: 'plan step flags',
  unsigned: true,
  hex: true,
  constants: {
    /** rbind / AT_RECURSIVE for attribute changes */
    RECURSIVE: 0x1,
    /** the destination must be a file (source is not a directory) */
    DEST_FILE: 0x2,
    /** rro, rnosuid...: apply attributes to the whole tree */
    ATTR_RECURSIVE: 0x4,
    /** if the fs mount is refused (EPERM), bind fallback_source instead */
    FALLBACK_BIND: 0x8,
    /** proc/sysfs: the destination must be a real directory (R7) */
    PROC_OR_SYS: 0x10,
    /** rprivate, rshared...: propagation for the whole tree */
    PROP_RECURSIVE: 0x20,
    /** fs mounts: pass the plan's mount_label as the SELinux context= option */
    MOUNT_LABEL: 0x40,
    /** tmpcopyup: fill the new tmpfs with a copy of what the rootfs has at dest */
    COPY_UP: 0x80,
    /** setattr: applied last, once the console is bound too (runc's finalizeRootfs) */
    DEFERRED: 0x100,
  },
};

/** What the executor does at all: each bit is a decision TS made (plan/build.ts, plan/exec.ts). */
const planFlags: AbiGroup = {
  prefix: 'PF_',
  doc: 'plan flags',
  unsigned: true,
  hex: true,
  constants: {
    /** unshare(CLONE_NEWUSER); the parent writes the id maps */
    NEW_USERNS: 0x1,
    /** rootfs work happens (a new mount ns is required for it) */
    NEW_MOUNTNS: 0x2,
    /** MS_MOVE + chroot instead of pivot_root */
    NO_PIVOT: 0x4,
    READONLY_ROOT: 0x8,
    TERMINAL: 0x10,
    NO_NEW_PRIVS: 0x20,
    SET_HOSTNAME: 0x40,
    SET_DOMAINNAME: 0x80,
    OOM_SCORE_ADJ: 0x100,
    /** stop before pivot_root so the parent runs prestart/createRuntime hooks */
    SYNC_PREPIVOT: 0x200,
    /** wait for `start` on the exec fifo; otherwise on the sync socket */
    START_FIFO: 0x400,
    SET_UMASK: 0x800,
    /** setgroups() is allowed (not denied in the user namespace) */
    SETGROUPS: 0x1000,
    NEW_CGROUPNS: 0x2000,
    NEW_TIMENS: 0x4000,
    NEW_PIDNS: 0x8000,
    /** join a fresh session keyring (runc's default; --no-new-keyring clears it) */
    NEW_KEYRING: 0x10000,
    /** exec: join the namespaces of join_pidfd's process (join_nsflags) and run a process there; no namespace
     * is made, no rootfs, device, hostname or sysctl work is done */
    EXEC: 0x20000,
    /** the rootfs is prepared in a mount namespace shared with others (the runtime's own, or one joined by
     * path): its root propagation is left alone and the rootfs entered with chroot, since pivot_root would move
     * the root of every other process in that namespace */
    SHARED_MOUNTNS: 0x40000,
    /** a new network namespace: bring its loopback interface up, as runc and crun do (it starts down) */
    LOOPBACK_UP: 0x80000,
  },
};

/**
 * seccomp(2)'s SECCOMP_FILTER_FLAG_* bits as the plan carries them. TS decides which a config gets
 * (plan/seccomp.ts); the decoder refuses any outside FLAGS_KNOWN (TSYNC is dropped by TS: the executor is
 * single-threaded) and WAIT_KILLABLE_RECV without NEW_LISTENER.
 */
const seccompFlags: AbiGroup = {
  prefix: 'TSRT_SECCOMP_',
  doc: 'seccomp filter flags of the plan',
  unsigned: true,
  hex: true,
  constants: {
    FLAG_TSYNC: 0x1,
    FLAG_LOG: 0x2,
    FLAG_SPEC_ALLOW: 0x4,
    FLAG_NEW_LISTENER: 0x8,
    FLAG_WAIT_KILLABLE_RECV: 0x20,
    FLAGS_KNOWN: 0x2 | 0x4 | 0x8 | 0x20,
  },
};

/** The sync messages on the SOCK_SEQPACKET pair (native/executor/sync.h struct tsrt_msg's type). */
const messages: AbiGroup = {
  prefix: 'MSG_',
  doc: 'sync message types: child -> parent below 16, parent -> child from 16',
  constants: {
    /** the user namespace exists: write uid_map/gid_map, then send MSG_ACK */
    USERNS: 1,
    /** host pid of the process that becomes the container init (pid field) */
    PID: 2,
    /** mounts done, before pivot_root: run prestart/createRuntime hooks, then MSG_ACK */
    PREPIVOT: 3,
    /** set-up complete, waiting for start (fifo or MSG_START) */
    READY: 4,
    /** step, err and detail say what failed */
    ERROR: 5,
    /** carries the seccomp listener fd (SCM_RIGHTS): pass it to listenerPath, then MSG_ACK */
    SECCOMP: 6,
    /** open the source of bind step `pid` (an index into the plan's steps) in our mount namespace with the
     * runtime's credentials; MSG_ACK carries the O_PATH fd */
    MOUNT_SOURCE: 7,
    ACK: 16,
    /** after MSG_PID: the parent has placed the init (cgroups); continue */
    GO: 17,
    /** run: exec now */
    START: 18,
  },
};

/**
 * The executor's steps, in id order (S_NONE is 0), each with the runc-like phrase the runtime puts in front
 * of the failing detail: "error during container init: <text> <detail>: <errno text>".
 */
const STEPS: readonly (readonly [name: string, text: string])[] = [
  ['NONE', ''],
  /** signals, fds, dumpable */
  ['SETUP', 'set up the init process'],
  /** setns(path) */
  ['JOIN_NS', 'join namespace'],
  /** unshare(CLONE_NEWUSER) / id maps */
  ['USERNS', 'create user namespace'],
  /** unshare of the other namespaces */
  ['UNSHARE', 'create namespaces'],
  /** timens_offsets */
  ['TIMENS', 'set time namespace offsets'],
  /** the second clone into the pid namespace */
  ['FORK', 'fork into the pid namespace'],
  ['HOSTNAME', 'set hostname'],
  /** propagation, rootfs bind, procfs handle */
  ['ROOTFS', 'prepare rootfs'],
  ['MOUNT', 'error mounting'],
  ['SYMLINK', 'create symlink'],
  ['DEVICE', 'create device'],
  ['MKDIR', 'create directory'],
  ['PIVOT', 'pivot_root'],
  ['CONSOLE', 'set up console'],
  ['SYSCTL', 'write sysctl'],
  ['READONLY', 'make path read-only'],
  ['MASK', 'mask path'],
  ['ROOT_RO', 'make rootfs read-only'],
  ['OOM', 'write oom_score_adj'],
  ['RLIMIT', 'set rlimit'],
  ['CAPS', 'set capabilities'],
  ['GROUPS', 'set additional gids'],
  ['USER', 'set user'],
  ['CWD', 'chdir to cwd'],
  /** the runtime words this one itself, as Go's exec.LookPath does */
  ['EXEC_LOOKUP', 'exec'],
  ['WAIT_START', 'wait for start'],
  ['NNP', 'set no_new_privs'],
  ['SECCOMP', 'load seccomp filter'],
  ['EXEC', 'exec'],
  ['CGROUPNS', 'create cgroup namespace'],
  /** sched_setattr */
  ['SCHED', 'set scheduler'],
  /** ioprio_set */
  ['IOPRIO', 'set io priority'],
  /** sched_setaffinity (execCPUAffinity) */
  ['AFFINITY', 'set cpu affinity'],
  ['PERSONALITY', 'set personality'],
  /** set_mempolicy */
  ['MEMPOLICY', 'set memory policy'],
  /** AppArmor profile / SELinux label for the exec */
  ['LSM', 'apply LSM label'],
  /** MOUNT_ATTR_IDMAP on an idmapped bind's tree */
  ['IDMAP', 'make idmapped mount'],
  /** bring "lo" up in a new network namespace */
  ['LOOPBACK', 'bring up loopback interface'],
  /** the init moves itself into the container's v1 cgroups (their tasks files, opened by the runtime) */
  ['CGROUP_JOIN', 'join cgroup'],
];

/** Step ids: the executor reports which step failed (MSG_ERROR's step), the runtime words it (S_TEXT). */
const steps: AbiGroup = {
  prefix: 'S_',
  doc: 'executor step ids, reported in MSG_ERROR',
  constants: Object.fromEntries(STEPS.map(([name], i) => [name, i])),
  strings: { TEXT: STEPS.map(([, text]) => text) },
};

export const EXEC_ABI: readonly AbiGroup[] = [plan, limits, stepKinds, mountFlags, planFlags, seccompFlags, messages, steps];
