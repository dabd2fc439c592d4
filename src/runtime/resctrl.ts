// linux.intelRdt in the lifecycle: the init joins a resctrl group (the config's closID, or one named after
// the container) before it is let go, optionally with a monitoring group of its own; delete removes what
// the runtime made. The plan has already checked that resctrl is mounted and the names are sane.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, fromSystemError } from '../errors.js';
import type { ResctrlPlan } from '../plan/types.js';

/** What delete must undo: the group when the runtime made it, and the container's monitoring group. */
export interface ResctrlRecord {
  group: string;
  createdGroup: boolean;
  monGroup?: string;
}

function write(file: string, data: string): void {
  try {
    fs.writeFileSync(file, data);
  } catch (e) {
    // resctrl explains a refused schema line in info/last_cmd_status.
    const status = (() => {
      try {
        return fs.readFileSync(path.join(path.dirname(path.dirname(file)), 'info', 'last_cmd_status'), 'utf8').trim();
      } catch {
        return '';
      }
    })();
    const err = fromSystemError('write', file, e);
    if (status && status !== 'ok') err.message += ` (resctrl: ${status})`;
    throw err;
  }
}

export function joinResctrl(plan: ResctrlPlan, containerId: string, pid: number): ResctrlRecord {
  const group = path.join(plan.mountPoint, plan.closID ?? containerId);
  const exists = fs.existsSync(group);
  if (plan.closID && !exists && plan.schemata.length === 0) {
    // A closID with no schema names a group the administrator prepared: it must be there.
    throw new RuntimeError(`linux.intelRdt.closID: resctrl group ${group} does not exist`, { op: 'resctrl', path: group, errno: 'ENOENT' });
  }
  if (plan.requiredMonFeatures.length) {
    const features = (() => {
      try {
        return fs.readFileSync(path.join(plan.mountPoint, 'info', 'L3_MON', 'mon_features'), 'utf8').split('\n');
      } catch {
        return [];
      }
    })();
    for (const f of plan.requiredMonFeatures) {
      if (!features.includes(f)) {
        const field = f === 'llc_occupancy' ? 'enableCMT' : 'enableMBM';
        throw new RuntimeError(`linux.intelRdt.${field}: the host's resctrl does not offer ${f} monitoring`, { op: 'resctrl' });
      }
    }
  }
  const rec: ResctrlRecord = { group, createdGroup: false };
  try {
    if (!exists) {
      try {
        fs.mkdirSync(group);
      } catch (e) {
        throw fromSystemError('mkdir', group, e);
      }
      rec.createdGroup = true;
    }
    // One write per line: the kernel parses one resource per line and reports the first bad one.
    for (const line of plan.schemata) write(path.join(group, 'schemata'), `${line}\n`);
    write(path.join(group, 'tasks'), String(pid));
    if (plan.monitoring) {
      const mon = path.join(group, 'mon_groups', containerId);
      try {
        fs.mkdirSync(mon);
      } catch (e) {
        throw fromSystemError('mkdir', mon, e);
      }
      rec.monGroup = mon;
      write(path.join(mon, 'tasks'), String(pid));
    }
  } catch (e) {
    leaveResctrl(rec);
    throw e;
  }
  return rec;
}

/** Removes the monitoring group, and the group itself when the runtime made it; returns the failures. */
export function leaveResctrl(rec: ResctrlRecord): string[] {
  const failures: string[] = [];
  for (const dir of [rec.monGroup, rec.createdGroup ? rec.group : undefined]) {
    if (!dir) continue;
    try {
      fs.rmdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failures.push(`remove resctrl group ${dir}: ${(e as Error).message}`);
    }
  }
  return failures;
}
