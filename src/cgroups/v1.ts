// The cgroup v1 driver: what only v1 hierarchies have (freezer.state, per-controller usage files). The
// writes for resources come from resources.ts and devices.ts; the manager sends each to its hierarchy.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, fromSystemError } from '../errors.js';
import { errnoOf, keyed, numberIn, readText, sleepMs } from './files.js';
import type { CgroupStats } from './manager.js';

/** The freezer's state file and what it reads, trimmed, when frozen (the lifecycle record carries both). */
export const FREEZER = { file: 'freezer.state', frozen: 'FROZEN' };

export function isFrozen(freezerDir: string): boolean {
  return readText(path.join(freezerDir, FREEZER.file))?.trim() === FREEZER.frozen;
}

/** FROZEN or FREEZING, by its own freezer.state or an ancestor's (the file shows the effective state). */
export function frozenOrFreezing(freezerDir: string): boolean {
  const state = readText(path.join(freezerDir, 'freezer.state'))?.trim();
  return state === 'FROZEN' || state === 'FREEZING';
}

/** Freezes (true) or thaws (false) and waits until freezer.state says so. */
export function setFrozen(freezerDir: string, frozen: boolean): void {
  const file = path.join(freezerDir, 'freezer.state');
  const want = frozen ? 'FROZEN' : 'THAWED';
  for (let i = 0; i < 1000; i++) {
    // Re-writing FROZEN restarts a freeze that a task racing through fork left in FREEZING.
    fs.writeFileSync(file, want);
    if (readText(file)?.trim() === want) return;
    sleepMs(i < 25 ? 1 : 10);
  }
  if (frozen) fs.writeFileSync(file, 'THAWED');
  throw new RuntimeError(`unable to ${frozen ? 'freeze' : 'thaw'} the container: ${file} stays ${readText(file)?.trim()}`, { op: 'pause', path: file });
}

/**
 * Copies cpuset.cpus and cpuset.mems from `parent` into `dir` where dir's are empty. False when an
 * unprivileged runtime may not write them (the hierarchy is then unusable to it); any other failure throws.
 */
export function fillCpuset(dir: string, parent: string, rootless: boolean): boolean {
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    if (readText(path.join(dir, f))?.trim()) continue;
    const file = path.join(dir, f);
    try {
      fs.writeFileSync(file, readText(path.join(parent, f))?.trim() ?? '');
    } catch (e) {
      if (rootless && ['EACCES', 'EPERM', 'EROFS'].includes(errnoOf(e))) return false;
      throw fromSystemError('write', file, e);
    }
  }
  return true;
}

export function memoryStats(dir: string): Pick<CgroupStats, 'memory' | 'oom'> {
  const f = (name: string) => numberIn(readText(path.join(dir, name)));
  const out: Pick<CgroupStats, 'memory' | 'oom'> = {};
  const usage = f('memory.usage_in_bytes');
  if (usage !== undefined) {
    out.memory = { usage };
    const max = f('memory.max_usage_in_bytes');
    const limit = f('memory.limit_in_bytes');
    const memsw = f('memory.memsw.usage_in_bytes');
    if (max !== undefined) out.memory.maxUsage = max;
    if (limit !== undefined) out.memory.limit = limit;
    if (memsw !== undefined) out.memory.swapUsage = Math.max(0, memsw - usage);
  }
  // v1 counts limit hits in memory.failcnt and kills in oom_control's oom_kill.
  out.oom = { oom: f('memory.failcnt') ?? 0, oomKill: keyed(readText(path.join(dir, 'memory.oom_control'))).get('oom_kill') ?? 0 };
  return out;
}

export function cpuStats(cpuacctDir: string, cpuDir: string | undefined): CgroupStats['cpu'] {
  const usage = numberIn(readText(path.join(cpuacctDir, 'cpuacct.usage')));
  if (usage === undefined) return undefined;
  const st = keyed(readText(path.join(cpuacctDir, 'cpuacct.stat')));
  const tick = 1e7; // USER_HZ 100: one tick is 10 ms
  const cpu: NonNullable<CgroupStats['cpu']> = { usageNs: usage, userNs: (st.get('user') ?? 0) * tick, systemNs: (st.get('system') ?? 0) * tick };
  const thr = cpuDir ? keyed(readText(path.join(cpuDir, 'cpu.stat'))) : new Map<string, number>();
  if (thr.has('nr_throttled')) {
    cpu.throttledPeriods = thr.get('nr_throttled')!;
    cpu.throttledNs = thr.get('throttled_time') ?? 0;
  }
  return cpu;
}

export function blkioStats(dir: string): CgroupStats['blkio'] {
  const io: Record<string, { read: number; write: number }> = {};
  for (const line of (readText(path.join(dir, 'blkio.throttle.io_service_bytes_recursive')) ?? '').split('\n')) {
    const [dev, op, v] = line.trim().split(/\s+/);
    if (!dev || !/^\d+:\d+$/.test(dev) || v === undefined) continue;
    io[dev] ??= { read: 0, write: 0 };
    if (op === 'Read') io[dev].read = Number(v);
    if (op === 'Write') io[dev].write = Number(v);
  }
  return io;
}

export function hugetlbStats(dir: string): CgroupStats['hugetlb'] {
  const h: NonNullable<CgroupStats['hugetlb']> = {};
  for (const name of fs.readdirSync(dir)) {
    const m = /^hugetlb\.(\w+)\.usage_in_bytes$/.exec(name);
    if (!m) continue;
    const entry: { usage: number; limit?: number } = { usage: numberIn(readText(path.join(dir, name))) ?? 0 };
    const limit = numberIn(readText(path.join(dir, `hugetlb.${m[1]}.limit_in_bytes`)));
    if (limit !== undefined) entry.limit = limit;
    h[m[1]!] = entry;
  }
  return h;
}
