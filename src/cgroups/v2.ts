// What only cgroup2 has: subtree_control, cgroup.freeze, cgroup.kill, device filters as eBPF programs. On a
// hybrid host it serves the controllers cgroup2 owns (hugetlb here) and the container's place in the
// unified tree; usage.ts reads what the container used.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import { native } from '../native.js';
import { deviceProgram, type DeviceRule } from './devices.js';
import { errnoOf, keyed, readText, sleepMs } from './files.js';

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
    throw new RuntimeError(
      `config.json: /linux/resources/devices: load the device filter (eBPF) into ${dir}: ${e instanceof Error ? e.message : String(e)}`,
      { op: 'cgroup', path: dir, errno: errnoOf(e) },
    );
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
  throw new RuntimeError(`unable to ${frozen ? 'freeze' : 'thaw'} the container: ${events} never reported it`, {
    op: 'pause',
    path: events,
  });
}

/** SIGKILL to every process in the cgroup at once (no fork can escape); false where the kernel lacks it. */
export function killAll(dir: string): boolean {
  const file = path.join(dir, 'cgroup.kill');
  if (!fs.existsSync(file)) return false;
  fs.writeFileSync(file, '1');
  return true;
}
