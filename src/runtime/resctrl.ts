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
    throw new RuntimeError(`config.json: /linux/intelRdt/closID: resctrl group ${group} does not exist`, {
      op: 'resctrl',
      path: group,
      errno: 'ENOENT',
    });
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

/** The counters of one monitoring domain (mon_data/mon_L3_NN), in runc's names. */
type MonDomain = Record<string, bigint>;

export interface ResctrlStats {
  l3_cache_info?: { cbm_mask?: string; min_cbm_bits?: bigint; num_closids?: bigint };
  l3_cache_schema_root?: string;
  l3_cache_schema?: string;
  mem_bw_info?: { bandwidth_gran?: bigint; delay_linear?: bigint; min_bandwidth?: bigint; num_closids?: bigint };
  mem_bw_schema_root?: string;
  mem_bw_schema?: string;
  mbm_stats?: MonDomain[];
  cmt_stats?: MonDomain[];
}

function readOr(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Numbers from resctrl's info files, left out when absent or zero (runc's omitempty). */
function infoNumbers<K extends string>(dir: string, names: K[]): Partial<Record<K, bigint>> {
  const out: Partial<Record<K, bigint>> = {};
  for (const n of names) {
    const t = readOr(path.join(dir, n))?.trim();
    if (t && /^\d+$/.test(t) && BigInt(t) !== 0n) out[n] = BigInt(t);
  }
  return out;
}

/**
 * runc's intel_rdt stats for a container in a resctrl group: the cache (L3) and memory bandwidth (MB) info
 * and schemata lines of the root and of the group, where the host has them, and the group's monitoring
 * counters (the container's own monitoring group when it has one) per L3 domain.
 */
export function resctrlStats(rec: ResctrlRecord): ResctrlStats {
  const root = path.dirname(rec.group);
  const schemaLine = (dir: string, resource: string) =>
    (readOr(path.join(dir, 'schemata')) ?? '')
      .split('\n')
      .map(l => l.trim())
      .find(l => l.startsWith(`${resource}:`));
  const out: ResctrlStats = {};
  const l3 = path.join(root, 'info', 'L3');
  if (fs.existsSync(l3)) {
    const mask = readOr(path.join(l3, 'cbm_mask'))?.trim();
    out.l3_cache_info = { ...(mask ? { cbm_mask: mask } : {}), ...infoNumbers(l3, ['min_cbm_bits', 'num_closids']) };
    const rootLine = schemaLine(root, 'L3');
    const line = schemaLine(rec.group, 'L3');
    if (rootLine) out.l3_cache_schema_root = rootLine;
    if (line) out.l3_cache_schema = line;
  }
  const mb = path.join(root, 'info', 'MB');
  if (fs.existsSync(mb)) {
    out.mem_bw_info = infoNumbers(mb, ['bandwidth_gran', 'delay_linear', 'min_bandwidth', 'num_closids']);
    const rootLine = schemaLine(root, 'MB');
    const line = schemaLine(rec.group, 'MB');
    if (rootLine) out.mem_bw_schema_root = rootLine;
    if (line) out.mem_bw_schema = line;
  }
  const features = (readOr(path.join(root, 'info', 'L3_MON', 'mon_features')) ?? '').split('\n');
  const monData = path.join(rec.monGroup ?? rec.group, 'mon_data');
  let domains: string[] = [];
  try {
    domains = fs
      .readdirSync(monData)
      .filter(d => d.startsWith('mon_L3_'))
      .sort();
  } catch {
    /* no monitoring here */
  }
  const counter = (domain: string, name: string) => {
    const t = readOr(path.join(monData, domain, name))?.trim();
    return t && /^\d+$/.test(t) ? BigInt(t) : 0n;
  };
  if (domains.length && features.includes('mbm_total_bytes')) {
    out.mbm_stats = domains.map(d => ({ mbm_total_bytes: counter(d, 'mbm_total_bytes'), mbm_local_bytes: counter(d, 'mbm_local_bytes') }));
  }
  if (domains.length && features.includes('llc_occupancy')) {
    out.cmt_stats = domains.map(d => ({ llc_occupancy: counter(d, 'llc_occupancy') }));
  }
  return out;
}
