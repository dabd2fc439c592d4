// The constants both languages use, written once. hack/gen-abi.ts turns this table into
// native/generated/tsrt-abi.h and src/native-abi/abi.gen.ts (both generated at build, never committed); the
// TypeScript core imports the latter, the C front door (native/frontdoor) the former, and
// test/unit/abi.test.ts compiles the header to check that both say the same.
//
// A group is a name prefix with scalar constants, string lists and number lists. Everything the executor
// shares with the core (message types, step ids, plan flags, limits) is meant to move here as more groups.

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
