// linux.seccomp -> the filter descriptor the addon compiles with libseccomp (native/addon/seccomp.cc), plus how
// the executor loads it. Pure: names become numbers here, and every rule a profile can break is checked here,
// with the JSON pointer of the field in the message. Only what libseccomp alone knows (syscall names, which
// architectures it was built with) is left to the compile step.
import { configError } from '../errors.js';
import {
  TSRT_SECCOMP_FLAG_LOG,
  TSRT_SECCOMP_FLAG_NEW_LISTENER,
  TSRT_SECCOMP_FLAG_SPEC_ALLOW,
  TSRT_SECCOMP_FLAG_TSYNC,
  TSRT_SECCOMP_FLAG_WAIT_KILLABLE_RECV,
} from '../native-abi/abi.gen.js';
import type { LinuxSeccomp } from '../spec/types.gen.js';
import { BPF_MAXINSNS } from './limits.js';

/** Filter return values (SCMP_ACT_* = SECCOMP_RET_*); ERRNO and TRACE carry 16 bits of data. */
export const SCMP_ACT: Record<string, number> = {
  SCMP_ACT_KILL: 0x00000000, // libseccomp's KILL is KILL_THREAD
  SCMP_ACT_KILL_THREAD: 0x00000000,
  SCMP_ACT_KILL_PROCESS: 0x80000000,
  SCMP_ACT_TRAP: 0x00030000,
  SCMP_ACT_ERRNO: 0x00050000,
  SCMP_ACT_TRACE: 0x7ff00000,
  SCMP_ACT_LOG: 0x7ffc0000,
  SCMP_ACT_ALLOW: 0x7fff0000,
  SCMP_ACT_NOTIFY: 0x7fc00000,
};

/** libseccomp's enum scmp_compare. */
export const SCMP_CMP: Record<string, number> = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
};

/** seccomp(2) SECCOMP_FILTER_FLAG_* bits, as the executor's decoder knows them. */
export const FILTER_FLAG = {
  TSYNC: TSRT_SECCOMP_FLAG_TSYNC,
  LOG: TSRT_SECCOMP_FLAG_LOG,
  SPEC_ALLOW: TSRT_SECCOMP_FLAG_SPEC_ALLOW,
  NEW_LISTENER: TSRT_SECCOMP_FLAG_NEW_LISTENER,
  WAIT_KILLABLE_RECV: TSRT_SECCOMP_FLAG_WAIT_KILLABLE_RECV,
} as const;

/** The runtime-spec flag names this runtime knows (what `features` reports as knownFlags). */
export const SECCOMP_FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: FILTER_FLAG.TSYNC,
  SECCOMP_FILTER_FLAG_LOG: FILTER_FLAG.LOG,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: FILTER_FLAG.SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: FILTER_FLAG.WAIT_KILLABLE_RECV,
};

/** The runtime-spec architecture names; libseccomp's token is the lower-cased suffix (SCMP_ARCH_X86_64 -> x86_64). */
export const ARCHES: ReadonlySet<string> = new Set([
  'SCMP_ARCH_X86',
  'SCMP_ARCH_X86_64',
  'SCMP_ARCH_X32',
  'SCMP_ARCH_ARM',
  'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_LOONGARCH64',
  'SCMP_ARCH_M68K',
  'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64',
  'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL',
  'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC',
  'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE',
  'SCMP_ARCH_S390',
  'SCMP_ARCH_S390X',
  'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64',
  'SCMP_ARCH_RISCV64',
  'SCMP_ARCH_SH',
  'SCMP_ARCH_SHEB',
]);

const EPERM = 1;
const ENOSYS = 38;
/** Default actions under which a syscall the profile does not name runs anyway (runc: "allow actions"). */
const PERMISSIVE = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE']);
/** The kernel turns SECCOMP_RET_ERRNO data above MAX_ERRNO into 4095 anyway; a bigger value is a mistake. */
const MAX_ERRNO = 4095;
const U64_MAX = (1n << 64n) - 1n;
const SYSCALL_ARGS = 6;
/** The syscall the executor hands the listener fd over with: a notification on it could never be answered. */
const HANDOFF_SYSCALL = 'sendmsg';

export interface SeccompArgCmp {
  index: number;
  op: number;
  /** u64 operands as decimal strings (JSON numbers and N-API numbers stop at 2^53). */
  value: string;
  valueTwo: string;
}

export interface SeccompRule {
  syscall: string;
  action: number;
  args: SeccompArgCmp[];
  /** JSON pointer of the rule in config.json, for errors only libseccomp can find. */
  where: string;
}

/** What native/addon/seccomp.cc compiles. */
export interface SeccompFilter {
  defaultAction: number;
  /** Added beside the native architecture, which libseccomp always includes. */
  architectures: { token: string; where: string }[];
  rules: SeccompRule[];
  /**
   * runc's ENOSYS stub: per architecture, syscalls numbered above the highest of these names get ENOSYS
   * instead of the default action. Absent: no stub.
   */
  enosysNames?: string[];
}

export interface SeccompPlan {
  filter: SeccompFilter;
  /** SECCOMP_FILTER_FLAG_* for seccomp(2) in the executor. */
  flags: number;
  /** SCMP_ACT_NOTIFY: where the runtime sends the listener fd with the container state. */
  listener?: { path: string; metadata: string };
}

const POINTER = '/linux/seccomp';

function errnoData(value: number | undefined, action: string, pointer: string): number {
  if (value === undefined) return action === 'SCMP_ACT_ERRNO' || action === 'SCMP_ACT_TRACE' ? EPERM : 0;
  if (action !== 'SCMP_ACT_ERRNO' && action !== 'SCMP_ACT_TRACE') {
    throw configError(pointer, `${action} does not return an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)`);
  }
  if (!Number.isInteger(value) || value < 0 || value > MAX_ERRNO)
    throw configError(pointer, `errno ${value} is out of range (0-${MAX_ERRNO})`);
  return value;
}

function action(name: string, errnoRet: number | undefined, pointer: string, errnoPointer: string): number {
  const base = SCMP_ACT[name];
  if (base === undefined) throw configError(pointer, `unknown seccomp action "${name}"`);
  return (base | errnoData(errnoRet, name, errnoPointer)) >>> 0;
}

/** JSON numbers above 2^53 arrive rounded; 2^64-1 (the one such value a profile plausibly means) rounds up. */
function u64(value: number | undefined, pointer: string): string {
  if (value === undefined) return '0';
  if (!Number.isInteger(value) || value < 0) throw configError(pointer, `${value} is not an unsigned 64-bit integer`);
  const v = BigInt(value);
  return (v > U64_MAX ? U64_MAX : v).toString();
}

export function planSeccomp(seccomp: LinuxSeccomp): SeccompPlan {
  if (seccomp.defaultAction === 'SCMP_ACT_NOTIFY') {
    throw configError(`${POINTER}/defaultAction`, 'SCMP_ACT_NOTIFY cannot be the default action');
  }
  const defaultAction = action(seccomp.defaultAction, seccomp.defaultErrnoRet, `${POINTER}/defaultAction`, `${POINTER}/defaultErrnoRet`);

  const architectures = (seccomp.architectures ?? []).map((name, i) => {
    const where = `${POINTER}/architectures/${i}`;
    if (!ARCHES.has(name)) throw configError(where, `unknown seccomp architecture "${name}"`);
    return { token: name.slice('SCMP_ARCH_'.length).toLowerCase(), where };
  });

  const rules: SeccompRule[] = [];
  let notify = false;
  (seccomp.syscalls ?? []).forEach((sc, i) => {
    const where = `${POINTER}/syscalls/${i}`;
    const act = action(sc.action, sc.errnoRet, `${where}/action`, `${where}/errnoRet`);
    const args = (sc.args ?? []).map((a, j) => {
      const at = `${where}/args/${j}`;
      const op = SCMP_CMP[a.op];
      if (op === undefined) throw configError(`${at}/op`, `unknown seccomp operator "${a.op}"`);
      if (!Number.isInteger(a.index) || a.index < 0 || a.index >= SYSCALL_ARGS) {
        throw configError(`${at}/index`, `argument index ${a.index} is out of range (a syscall has arguments 0-${SYSCALL_ARGS - 1})`);
      }
      return { index: a.index, op, value: u64(a.value, `${at}/value`), valueTwo: u64(a.valueTwo, `${at}/valueTwo`) };
    });
    if (sc.action === 'SCMP_ACT_NOTIFY') {
      notify = true;
      if (sc.names.includes(HANDOFF_SYSCALL)) {
        throw configError(
          `${where}/names`,
          `SCMP_ACT_NOTIFY cannot be used for ${HANDOFF_SYSCALL}: tsrt hands the listener fd over with it`,
        );
      }
    }
    // libseccomp refuses a rule whose action is the default one; it would change nothing anyway (runc skips it too).
    if (act === defaultAction) return;
    // Several conditions on one argument cannot be ANDed by libseccomp: as runc does, each becomes its own rule
    // (so any one of them matches). Conditions on distinct arguments stay one rule (all must match).
    const perIndex = new Map<number, number>();
    for (const a of args) perIndex.set(a.index, (perIndex.get(a.index) ?? 0) + 1);
    const split = [...perIndex.values()].some(n => n > 1);
    for (const syscall of sc.names) {
      if (split) for (const a of args) rules.push({ syscall, action: act, args: [a], where });
      else rules.push({ syscall, action: act, args, where });
    }
  });

  let flags = 0;
  (seccomp.flags ?? []).forEach((name, i) => {
    const bit = SECCOMP_FLAGS[name];
    if (bit === undefined) throw configError(`${POINTER}/flags/${i}`, `unknown seccomp flag "${name as string}"`);
    // The executor is single-threaded when it loads the filter: there are no other threads to sync (runc
    // ignores TSYNC too).
    if (bit === FILTER_FLAG.TSYNC) return;
    // WAIT_KILLABLE_RECV changes how a notifying process waits for the listener, so it means nothing without
    // one; the kernel refuses it alone.
    if (bit === FILTER_FLAG.WAIT_KILLABLE_RECV && !notify) return;
    flags |= bit;
  });

  let listener: SeccompPlan['listener'];
  if (notify) {
    if (!seccomp.listenerPath)
      throw configError(`${POINTER}/listenerPath`, 'SCMP_ACT_NOTIFY needs a listenerPath to send the listener fd to');
    flags |= FILTER_FLAG.NEW_LISTENER;
    listener = { path: seccomp.listenerPath, metadata: seccomp.listenerMetadata ?? '' };
  }
  const filter: SeccompFilter = { defaultAction, architectures, rules };
  // A syscall newer than every one the profile names is one its author could not know about: as in runc it
  // gets ENOSYS, and the libc falls back to the older call (clone3, openat2, faccessat2 in old images under
  // old profiles). Pointless under a permissive default, or one that already answers ENOSYS.
  const answersEnosys = seccomp.defaultAction === 'SCMP_ACT_ERRNO' && seccomp.defaultErrnoRet === ENOSYS;
  if (!PERMISSIVE.has(seccomp.defaultAction) && !answersEnosys) {
    filter.enosysNames = [...new Set((seccomp.syscalls ?? []).flatMap(sc => sc.names))];
  }
  return { filter, flags, listener };
}

/** The compile step, injected so that plans stay buildable (and testable) without the addon. */
export type SeccompCompiler = (filter: SeccompFilter) => Uint8Array;

/**
 * Compiles a plan's filter; a libseccomp refusal names the config field it came from. The rule count has no
 * limit of tsrt's: what the kernel refuses is a program over BPF_MAXINSNS instructions, which runc meets as
 * "error loading seccomp filter: invalid argument" at start.
 */
export function compileSeccomp(plan: SeccompPlan, compiler: SeccompCompiler): Uint8Array {
  let program: Uint8Array;
  try {
    program = compiler(plan.filter);
  } catch (e) {
    const err = e as Error & { where?: string };
    if (typeof err.where === 'string') throw configError(err.where || POINTER, err.message);
    throw e;
  }
  const instructions = program.length / 8;
  if (instructions > BPF_MAXINSNS) {
    throw configError(
      `${POINTER}/syscalls`,
      `the ${plan.filter.rules.length} rules compile to a filter of ${instructions} BPF instructions; the kernel loads at most ${BPF_MAXINSNS} (BPF_MAXINSNS)`,
    );
  }
  return program;
}
