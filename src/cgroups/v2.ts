// The cgroup v2 driver: what only cgroup2 has (subtree_control, cgroup.freeze, cgroup.kill, device filters
// as eBPF programs, its usage files). On a hybrid host it serves the controllers cgroup2 owns (hugetlb
// here) and the container's place in the unified tree.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import { native } from '../native.js';
import { deviceProgram, type DeviceRule } from './devices.js';
import { errnoOf, keyed, numberIn, readText, sleepMs } from './files.js';
import type { CgroupStats } from './manager.js';

/** Turns controllers on in every ancestor's subtree_control; a failure surfaces at the resource write. */
export function enableControllers(mountPoint: string, dir: string, controllers: string[]): void {
  if (!controllers.length) return;
  let cur = mountPoint;
  for (const part of path.relative(mountPoint, dir).split('/').filter(Boolean)) {
    const control = path.join(cur, 'cgroup.subtree_control');
    const on = new Set((readText(control) ?? '').trim().split(/\s+/));
    for (const c of controllers) {
      if (on.has(c)) continue;
      try {
        fs.writeFileSync(control, `+${c}`);
      } catch {
        /* not enableable here (e.g. processes in this cgroup): the resource write says so */
      }
    }
    cur = path.join(cur, part);
  }
}

/** Loads the rules as a device eBPF program and swaps it in for whatever filter the cgroup had. */
export function setDevices(dir: string, rules: DeviceRule[]): void {
  try {
    native().attachDeviceFilter(dir, deviceProgram(rules));
  } catch (e) {
    throw new RuntimeError(`linux.resources.devices: load the device filter (eBPF) into ${dir}: ${(e as Error).message}`, { op: 'cgroup', path: dir, errno: errnoOf(e) });
  }
}

export function canFreeze(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'cgroup.freeze'));
}

/** The freezer's file and what it reads, trimmed, when frozen (the lifecycle record carries both). */
export const FREEZER = { file: 'cgroup.freeze', frozen: '1' };

export function isFrozen(dir: string): boolean {
  return readText(path.join(dir, FREEZER.file))?.trim() === FREEZER.frozen;
}

/** Frozen by its own cgroup.freeze, or by an ancestor's (cgroup.events then says "frozen 1"). */
export function frozenHereOrAbove(dir: string): boolean {
  return isFrozen(dir) || keyed(readText(path.join(dir, 'cgroup.events'))).get('frozen') === 1;
}

/** Freezes (true) or thaws (false) and waits until cgroup.events says so. */
export function setFrozen(dir: string, frozen: boolean): void {
  fs.writeFileSync(path.join(dir, 'cgroup.freeze'), frozen ? '1' : '0');
  const events = path.join(dir, 'cgroup.events');
  for (let i = 0; i < 1000; i++) {
    if (keyed(readText(events)).get('frozen') === (frozen ? 1 : 0)) return;
    sleepMs(i < 25 ? 1 : 10);
  }
  throw new RuntimeError(`unable to ${frozen ? 'freeze' : 'thaw'} the container: ${events} never reported it`, { op: 'pause', path: events });
}

/** SIGKILL to every process in the cgroup at once (no fork can escape); false where the kernel lacks it. */
export function killAll(dir: string): boolean {
  const file = path.join(dir, 'cgroup.kill');
  if (!fs.existsSync(file)) return false;
  fs.writeFileSync(file, '1');
  return true;
}

export function memoryStats(dir: string): Pick<CgroupStats, 'memory' | 'oom'> {
  const f = (name: string) => numberIn(readText(path.join(dir, name)));
  const out: Pick<CgroupStats, 'memory' | 'oom'> = {};
  const usage = f('memory.current');
  if (usage !== undefined) {
    out.memory = { usage };
    const max = f('memory.peak');
    const limit = f('memory.max');
    const swap = f('memory.swap.current');
    if (max !== undefined) out.memory.maxUsage = max;
    if (limit !== undefined) out.memory.limit = limit;
    if (swap !== undefined) out.memory.swapUsage = swap;
  }
  const ev = keyed(readText(path.join(dir, 'memory.events')));
  out.oom = { oom: ev.get('oom') ?? 0, oomKill: ev.get('oom_kill') ?? 0 };
  return out;
}

export function cpuStats(dir: string): CgroupStats['cpu'] {
  const st = keyed(readText(path.join(dir, 'cpu.stat')));
  if (!st.has('usage_usec')) return undefined;
  const cpu: NonNullable<CgroupStats['cpu']> = { usageNs: st.get('usage_usec')! * 1000, userNs: (st.get('user_usec') ?? 0) * 1000, systemNs: (st.get('system_usec') ?? 0) * 1000 };
  if (st.has('nr_throttled')) {
    cpu.throttledPeriods = st.get('nr_throttled')!;
    cpu.throttledNs = (st.get('throttled_usec') ?? 0) * 1000;
  }
  return cpu;
}

export function ioStats(dir: string): CgroupStats['blkio'] {
  if (!fs.existsSync(path.join(dir, 'io.stat'))) return undefined;
  const io: Record<string, { read: number; write: number }> = {};
  for (const line of (readText(path.join(dir, 'io.stat')) ?? '').split('\n')) {
    const [dev, ...kv] = line.trim().split(/\s+/);
    if (!dev) continue;
    const f = new Map(kv.map(x => x.split('=') as [string, string]));
    io[dev] = { read: Number(f.get('rbytes') ?? 0), write: Number(f.get('wbytes') ?? 0) };
  }
  return io;
}

export function hugetlbStats(dir: string): CgroupStats['hugetlb'] {
  const h: NonNullable<CgroupStats['hugetlb']> = {};
  for (const name of fs.readdirSync(dir)) {
    const m = /^hugetlb\.(\w+)\.current$/.exec(name);
    if (!m) continue;
    const entry: { usage: number; limit?: number } = { usage: numberIn(readText(path.join(dir, name))) ?? 0 };
    const limit = numberIn(readText(path.join(dir, `hugetlb.${m[1]}.max`)));
    if (limit !== undefined) entry.limit = limit;
    h[m[1]!] = entry;
  }
  return h;
}
