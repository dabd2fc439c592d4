// The kernel's limits on what a plan carries. tsrt has none of its own: counts (mounts, arguments, rules) are
// bounded by memory, and a string or a program the kernel takes goes through whole. One the kernel would
// refuse fails here, before anything is created, with the JSON pointer of the field and the kernel's limit;
// runc meets the same refusal later, from the syscall.
import * as path from 'node:path';
import { SpecError } from '../errors.js';
import { TSRT_ARG_STRLEN, TSRT_PATH_MAX } from '../native-abi/abi.gen.js';

/** include/uapi/linux/limits.h PATH_MAX: the longest path a syscall takes, with its NUL (the plan decoder's too). */
export const PATH_MAX = TSRT_PATH_MAX;
/** include/uapi/linux/binfmts.h MAX_ARG_STRLEN (32 pages): the longest argv or envp string execve takes, with its NUL (the decoder's too). */
export const MAX_ARG_STRLEN = TSRT_ARG_STRLEN;
/** include/uapi/linux/bpf_common.h BPF_MAXINSNS: the most instructions of one classic BPF program (a seccomp filter). */
export const BPF_MAXINSNS = 4096;
/** include/uapi/linux/limits.h NGROUPS_MAX: the most supplementary groups setgroups(2) takes. */
export const NGROUPS_MAX = 65536;
/** /proc/<pid>/attr/* take one page per write (a second write to the same open file is refused). */
export const ATTR_WRITE_MAX = 4096;

/** fs/exec.c bprm_stack_limits: argv and envp may use a quarter of the stack limit, at most 3/4 of _STK_LIM. */
const EXEC_STRINGS_CEILING = 6n << 20n;
/** ...and never less than ARG_MAX (32 pages), whatever the stack limit. */
const ARG_MAX = 131072n;
const POINTER_BYTES = 8n;

/** One field the kernel would refuse: its JSON pointer and why. */
export interface LimitViolation {
  pointer: string;
  message: string;
}

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** A path the kernel takes: fewer than PATH_MAX bytes (it needs room for the NUL). */
export function pathViolation(pointer: string, p: string | undefined): LimitViolation | undefined {
  if (p === undefined || bytes(p) < PATH_MAX) return undefined;
  return {
    pointer,
    message: `a path of ${bytes(p)} bytes is longer than the kernel takes (PATH_MAX: ${PATH_MAX} bytes with its NUL)`,
  };
}

/**
 * What execve will say of the process's arguments and environment, with `stackSoft` the soft RLIMIT_STACK the
 * process execs under: each string at most MAX_ARG_STRLEN with its NUL, and all strings with their pointers
 * within the kernel's share of the stack. The file name execve also counts is not known here (the executor
 * looks it up in the container's PATH), so this is the kernel's test without it: a plan that fails it would
 * fail execve whatever the name; one just under the line still meets the kernel's own E2BIG.
 */
export function execViolation(proc: { args?: string[]; env?: string[] }, stackSoft: bigint, base: string): LimitViolation | undefined {
  let total = 0n;
  const lists: [string, string[]][] = [
    ['args', proc.args ?? []],
    ['env', proc.env ?? []],
  ];
  for (const [field, list] of lists) {
    for (const [i, s] of list.entries()) {
      const n = bytes(s);
      if (n + 1 > MAX_ARG_STRLEN) {
        return {
          pointer: `${base}/${field}/${i}`,
          message: `a string of ${n} bytes is longer than the kernel takes for one argument or environment string (MAX_ARG_STRLEN: ${MAX_ARG_STRLEN} bytes with its NUL)`,
        };
      }
      total += BigInt(n + 1);
    }
  }
  const quarter = stackSoft / 4n;
  const limit = quarter < EXEC_STRINGS_CEILING ? (quarter > ARG_MAX ? quarter : ARG_MAX) : EXEC_STRINGS_CEILING;
  const argc = BigInt(Math.max(proc.args?.length ?? 0, 1));
  const used = total + (argc + BigInt(proc.env?.length ?? 0)) * POINTER_BYTES;
  if (used <= limit) return undefined;
  return {
    pointer: base,
    message: `the arguments and environment take ${used} bytes with their pointers, more than execve takes under a stack limit of ${stackSoft === (1n << 64n) - 1n ? 'unlimited' : `${stackSoft} bytes`} (a quarter of it, at most ${EXEC_STRINGS_CEILING} and at least ${ARG_MAX} bytes: ${limit})`,
  };
}

/** The soft RLIMIT_STACK a process execs under: its own from the config, else the runtime's. */
export function execStackLimit(rlimits: { type: string; soft: number }[] | undefined, runtimeStack: bigint): bigint {
  const own = rlimits?.find(r => r.type === 'RLIMIT_STACK');
  if (!own) return runtimeStack;
  const v = BigInt(own.soft);
  return v > (1n << 64n) - 1n ? (1n << 64n) - 1n : v;
}

export function groupsViolation(pointer: string, gids: number[] | undefined): LimitViolation | undefined {
  if (!gids || gids.length <= NGROUPS_MAX) return undefined;
  return { pointer, message: `${gids.length} groups are more than setgroups takes (NGROUPS_MAX: ${NGROUPS_MAX})` };
}

/** A label written to /proc/self/attr/exec in one write (AppArmor's with its "exec " command in front). */
export function attrViolation(pointer: string, value: string | undefined, prefixBytes: number): LimitViolation | undefined {
  if (!value || prefixBytes + bytes(value) <= ATTR_WRITE_MAX) return undefined;
  return {
    pointer,
    message: `a label of ${bytes(value)} bytes is longer than the kernel reads from one write to /proc/self/attr/exec (${ATTR_WRITE_MAX - prefixBytes} bytes)`,
  };
}

/** The process fields every plan (create's and exec's) carries to the kernel, under the JSON pointer `base`. */
export function processViolations(
  proc: {
    args?: string[];
    env?: string[];
    cwd: string;
    rlimits?: { type: string; soft: number }[];
    user?: { additionalGids?: number[] };
    apparmorProfile?: string;
    selinuxLabel?: string;
  },
  runtimeStack: bigint,
  base: string,
): (LimitViolation | undefined)[] {
  return [
    execViolation(proc, execStackLimit(proc.rlimits, runtimeStack), base),
    pathViolation(`${base}/cwd`, path.posix.normalize(proc.cwd)),
    groupsViolation(`${base}/user/additionalGids`, proc.user?.additionalGids),
    attrViolation(`${base}/apparmorProfile`, proc.apparmorProfile, 'exec '.length),
    attrViolation(`${base}/selinuxLabel`, proc.selinuxLabel, 0),
  ];
}

/** The first violation, as a config error naming the field. */
export function refuseConfig(violations: (LimitViolation | undefined)[]): void {
  const v = violations.find(x => x !== undefined);
  if (v) throw new SpecError(`config.json: ${v.pointer}: ${v.message}`, v.pointer);
}
