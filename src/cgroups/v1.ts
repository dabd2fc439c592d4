// What only cgroup v1 hierarchies have: freezer.state, and cpusets that start empty. The writes for
// resources come from resources.ts and devices.ts; cgroupfs.ts sends each to its hierarchy, and usage.ts reads
// what the container used.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, fromSystemError } from '../errors.js';
import { notPermitted, readText, sleepMs } from './files.js';

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
  throw new RuntimeError(`unable to ${frozen ? 'freeze' : 'thaw'} the container: ${file} stays ${readText(file)?.trim()}`, {
    op: 'pause',
    path: file,
  });
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
      if (rootless && notPermitted(e)) return false;
      throw fromSystemError('write', file, e);
    }
  }
  return true;
}
