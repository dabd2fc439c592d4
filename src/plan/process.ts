// The runtime-spec 1.2 process attributes that are kernel calls on the container process: scheduler, I/O
// priority, CPU affinity, personality and NUMA memory policy. Each is checked here, so a config the kernel
// would refuse fails before anything is created, with the JSON path of the field at fault.
import { configError } from '../errors.js';
import type { Spec } from '../spec/types.gen.js';
import { IOPRIO_CLASS, IOPRIO_CLASS_SHIFT, MPOL_FLAG, MPOL_MODE, PERSONALITY_DOMAIN, SCHED_FLAG, SCHED_POLICY } from './linux.js';
import type { ProcessPlan, SchedulerAttr } from './types.js';

type Process = NonNullable<Spec['process']>;
type Linux = NonNullable<Spec['linux']>;

/** Where a process comes from, for errors: config.json's /process, or the root of an exec -p document. */
export interface ProcessSource {
  file: string;
  pointer: string;
}
export const CONFIG_PROCESS: ProcessSource = { file: 'config.json', pointer: '/process' };

/** Throws the config error for a field below `at` (a pointer relative to the process). */
export type Fail = (pointer: string, why: string) => never;
export function failIn(at: ProcessSource): Fail {
  return (pointer, why) => {
    throw configError(`${at.pointer}${pointer}`, why, at.file);
  };
}
const inConfig: Fail = failIn({ file: 'config.json', pointer: '' });

/** The kernel's CONFIG_NR_CPUS ceiling and MAX_NUMNODES ceiling: no list may name anything above. */
const MAX_CPUS = 8192;
const MAX_NODES = 1024;

/**
 * "0-3,7" -> a little-endian bitmap (bit n of byte n/8), the layout sched_setaffinity and set_mempolicy take
 * (as arrays of longs, which on a little-endian machine is the same bytes). The bitmap is padded to 8 bytes.
 */
export function parseIdList(list: string, limit: number, pointer: string, fail: Fail): Uint8Array {
  const ids: number[] = [];
  for (const raw of list.split(',')) {
    const part = raw.trim();
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) fail(pointer, `invalid list ${JSON.stringify(list)} (expected numbers and ranges such as "0-3,7")`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) fail(pointer, `invalid range "${part}" in ${JSON.stringify(list)}`);
    if (to >= limit) fail(pointer, `${to} in ${JSON.stringify(list)} is above the kernel's limit of ${limit - 1}`);
    for (let i = from; i <= to; i++) ids.push(i);
  }
  const bytes = new Uint8Array(Math.ceil((Math.max(...ids) + 1) / 64) * 8);
  for (const i of ids) bytes[i >> 3]! |= 1 << (i & 7);
  return bytes;
}

function planScheduler(s: NonNullable<Process['scheduler']>, fail: Fail): SchedulerAttr {
  const policy = SCHED_POLICY[s.policy];
  if (policy === undefined) fail('/scheduler/policy', `unknown policy "${s.policy}"`);
  if (s.policy === 'SCHED_ISO') fail('/scheduler/policy', 'SCHED_ISO is not implemented by the Linux kernel');
  let flags = 0;
  (s.flags ?? []).forEach((f, i) => {
    const bit = SCHED_FLAG[f];
    if (bit === undefined) fail(`/scheduler/flags/${i}`, `unknown flag "${f}"`);
    flags |= bit;
  });
  // sched_attr carries the clamp values only in its larger layout, and the spec has no field for them.
  if (flags & (SCHED_FLAG['SCHED_FLAG_UTIL_CLAMP_MIN']! | SCHED_FLAG['SCHED_FLAG_UTIL_CLAMP_MAX']!)) {
    fail('/scheduler/flags', 'SCHED_FLAG_UTIL_CLAMP_MIN/MAX need clamp values the runtime spec does not carry');
  }
  const nice = s.nice ?? 0;
  if (nice < -20 || nice > 19) fail('/scheduler/nice', `${nice} is outside -20..19`);
  const priority = s.priority ?? 0;
  const realtime = s.policy === 'SCHED_FIFO' || s.policy === 'SCHED_RR';
  if (realtime && (priority < 1 || priority > 99)) fail('/scheduler/priority', `${s.policy} needs a priority in 1..99, not ${priority}`);
  if (!realtime && priority !== 0) fail('/scheduler/priority', `only SCHED_FIFO and SCHED_RR take a priority (${s.policy} given)`);
  const runtime = BigInt(s.runtime ?? 0);
  const deadline = BigInt(s.deadline ?? 0);
  const period = BigInt(s.period ?? 0);
  if (s.policy === 'SCHED_DEADLINE') {
    if (runtime === 0n || deadline === 0n) fail('/scheduler', 'SCHED_DEADLINE needs runtime and deadline');
    if (runtime > deadline || (period !== 0n && deadline > period)) {
      fail('/scheduler', 'SCHED_DEADLINE needs runtime <= deadline <= period');
    }
  } else if (runtime || deadline || period) {
    fail('/scheduler', `runtime, deadline and period are for SCHED_DEADLINE only (${s.policy} given)`);
  }
  return { policy, flags, nice, priority, runtime, deadline, period };
}

function planIoPriority(io: NonNullable<Process['ioPriority']>, fail: Fail): number {
  const cls = IOPRIO_CLASS[io.class];
  if (cls === undefined) fail('/ioPriority/class', `unknown class "${io.class}"`);
  const level = io.priority ?? 0;
  if (level < 0 || level > 7) fail('/ioPriority/priority', `${level} is outside 0..7`);
  return (cls << IOPRIO_CLASS_SHIFT) | level;
}

function planPersonality(p: NonNullable<Linux['personality']>): number {
  const domain = PERSONALITY_DOMAIN[p.domain];
  if (domain === undefined) inConfig('/linux/personality/domain', `unknown domain "${p.domain}"`);
  // The spec defines no flag values yet: a name we cannot apply is refused, never dropped.
  for (const [i, f] of (p.flags ?? []).entries())
    inConfig(`/linux/personality/flags/${i}`, `unknown flag "${f}" (the runtime spec defines none)`);
  return domain;
}

function planMemoryPolicy(mp: NonNullable<Linux['memoryPolicy']>): { mode: number; nodes: Uint8Array } {
  const base = MPOL_MODE[mp.mode];
  if (base === undefined) inConfig('/linux/memoryPolicy/mode', `unknown mode "${mp.mode}"`);
  let flags = 0;
  (mp.flags ?? []).forEach((f, i) => {
    const bit = MPOL_FLAG[f];
    if (bit === undefined) inConfig(`/linux/memoryPolicy/flags/${i}`, `unknown flag "${f}"`);
    flags |= bit;
  });
  if (flags & MPOL_FLAG['MPOL_F_STATIC_NODES']! && flags & MPOL_FLAG['MPOL_F_RELATIVE_NODES']!) {
    inConfig('/linux/memoryPolicy/flags', 'MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other');
  }
  const nodes = mp.nodes?.trim() ?? '';
  if (mp.mode === 'MPOL_DEFAULT' || mp.mode === 'MPOL_LOCAL') {
    if (nodes) inConfig('/linux/memoryPolicy/nodes', `${mp.mode} takes no nodes`);
    if (flags) inConfig('/linux/memoryPolicy/flags', `${mp.mode} takes no flags`);
    return { mode: base, nodes: new Uint8Array(0) };
  }
  // MPOL_PREFERRED alone may go without nodes: the kernel then prefers the local node.
  if (!nodes && mp.mode !== 'MPOL_PREFERRED') inConfig('/linux/memoryPolicy/nodes', `${mp.mode} needs nodes`);
  return { mode: base | flags, nodes: nodes ? parseIdList(nodes, MAX_NODES, '/linux/memoryPolicy/nodes', inConfig) : new Uint8Array(0) };
}

/** The plan fields for the process attributes the config names (absent ones stay undefined). */
export function planProcessAttributes(proc: Process, linux: Linux, at: ProcessSource = CONFIG_PROCESS): Partial<ProcessPlan> {
  const fail = failIn(at);
  const out: Partial<ProcessPlan> = {};
  if (proc.scheduler) out.scheduler = planScheduler(proc.scheduler, fail);
  if (proc.ioPriority) out.ioPriority = planIoPriority(proc.ioPriority, fail);
  const affinity = proc.execCPUAffinity;
  if (affinity?.initial?.trim() || affinity?.final?.trim()) {
    out.cpuAffinity = {};
    if (affinity.initial?.trim()) out.cpuAffinity.initial = parseIdList(affinity.initial, MAX_CPUS, '/execCPUAffinity/initial', fail);
    if (affinity.final?.trim()) out.cpuAffinity.final = parseIdList(affinity.final, MAX_CPUS, '/execCPUAffinity/final', fail);
  }
  if (linux.personality) out.personality = planPersonality(linux.personality);
  if (linux.memoryPolicy) out.memoryPolicy = planMemoryPolicy(linux.memoryPolicy);
  return out;
}
