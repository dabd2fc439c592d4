// runc events: the container's usage as {"type":"stats",...} events, once (--stats) or every interval, and an
// {"type":"oom",...} event whenever the OOM killer takes a process in its memory cgroup; the stream ends when
// the container stops. OOM kills are seen by polling the cgroup's oom_kill counter (v1 memory.oom_control,
// cgroup2 memory.events), which the synchronous CLI can do without an eventfd or inotify of its own.
import { RuntimeError } from '../errors.js';
import type { CgroupManager } from '../cgroups/types.js';
import { sleepMs } from '../cgroups/files.js';
import { goJson, oomKillCount, runcStats, type RuncStats } from '../cgroups/usage.js';
import { cgroupOf } from './container.js';
import { resctrlStats } from './resctrl.js';
import { ContainerDir, notExist, type ContainerRecord } from './state.js';

export interface ContainerEvent {
  type: 'stats' | 'oom';
  id: string;
  data?: RuncStats;
}

export interface EventsOptions {
  /** Nanoseconds between stats events (runc's --interval, 5s by default). */
  intervalNs: number;
  /** Only one stats event, then return (runc's --stats). */
  statsOnly: boolean;
  /** Receives each event; returning false ends the stream (the reader went away). */
  emit: (e: ContainerEvent) => boolean;
}

/** One event as runc prints it: a JSON line with Go's field order, counters exact. */
export function formatEvent(e: ContainerEvent): string {
  return `${goJson({ type: e.type, id: e.id, data: e.data })}\n`;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's time.ParseDuration ("5s", "100ms", "1m30s", "1.5h", "-2s", "0"), in nanoseconds. */
export function parseGoDuration(text: string): number {
  const signed = /^([-+]?)(.*)$/s.exec(text)!;
  let rest = signed[2]!;
  if (rest === '0') return 0;
  if (rest === '') throw new Error(`time: invalid duration ${JSON.stringify(text)}`);
  let total = 0;
  while (rest !== '') {
    const m = /^(\d*)(?:\.(\d*))?([^\d.]*)/.exec(rest)!;
    const [whole, int = '', frac = '', unit = ''] = m;
    if (int === '' && frac === '') throw new Error(`time: invalid duration ${JSON.stringify(text)}`);
    if (unit === '') throw new Error(`time: missing unit in duration ${JSON.stringify(text)}`);
    const scale = DURATION_UNITS[unit];
    if (scale === undefined) throw new Error(`time: unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(text)}`);
    total += Number(`${int || '0'}.${frac || '0'}`) * scale;
    rest = rest.slice(whole.length);
  }
  if (total > 2 ** 63) throw new Error(`time: invalid duration ${JSON.stringify(text)}`);
  return signed[1] === '-' ? -total : total;
}

interface Watched {
  dir: ContainerDir;
  rec: ContainerRecord;
  cgroup: CgroupManager;
}

function noCgroup(rec: ContainerRecord): RuntimeError {
  const why = rec.rootless ? ' (unprivileged, without a delegated cgroup)' : '';
  return new RuntimeError(`unable to get container cgroup stats: container ${rec.id} has no cgroup${why}`, { op: 'events' });
}

function statsEvent(w: Watched): ContainerEvent {
  const data = runcStats(w.cgroup);
  // linux.intelRdt lives in resctrl, not in a cgroup.
  if (w.rec.resctrl) data.intel_rdt = resctrlStats(w.rec.resctrl);
  return { type: 'stats', id: w.rec.id, data };
}

/** One stats event for a container that is not stopped (what `events --stats` prints). */
export function containerStats(root: string, id: string): ContainerEvent {
  return statsEvent(watch(root, id));
}

function watch(root: string, id: string, intervalNs?: number): Watched {
  const dir = new ContainerDir(root, id);
  if (!dir.exists()) throw notExist();
  const rec = dir.load();
  // runc's order of checks: the container, the interval, then whether it still runs.
  if (intervalNs !== undefined && !(intervalNs > 0)) throw new RuntimeError('duration interval must be greater than 0', { op: 'events' });
  if (dir.status(rec) === 'stopped') throw new RuntimeError(`container with id ${id} is not running`, { op: 'events' });
  const cgroup = cgroupOf(rec);
  if (!cgroup) throw noCgroup(rec);
  return { dir, rec, cgroup };
}

/** The longest the stream sleeps between looks at the OOM counter and the container's status. */
const POLL_MS = 100;

/**
 * runc events: one stats event (statsOnly), or stats every interval (the first after one interval, as Go's
 * ticker) with OOM events in between, until the container stops or is deleted. An OOM kill that stopped
 * the container is still reported before the stream ends.
 */
export function events(root: string, id: string, opts: EventsOptions): void {
  const w = watch(root, id, opts.intervalNs);
  if (opts.statsOnly) {
    opts.emit(statsEvent(w));
    return;
  }
  const intervalMs = opts.intervalNs / 1e6;
  let kills = oomKillCount(w.cgroup) ?? 0n;
  const newOom = (): boolean => {
    const now = oomKillCount(w.cgroup);
    if (now === undefined || now <= kills) return true;
    kills = now;
    return opts.emit({ type: 'oom', id });
  };
  let due = performance.now() + intervalMs;
  for (;;) {
    sleepMs(Math.max(0, Math.min(POLL_MS, due - performance.now())));
    if (!newOom()) return;
    const now = performance.now();
    if (now >= due) {
      if (!opts.emit(statsEvent(w))) return;
      due += intervalMs;
      // A tick missed while the machine was busy is dropped, as Go's ticker drops it.
      if (due <= now) due = now + intervalMs;
    }
    if (!w.dir.exists() || w.dir.status(w.rec) === 'stopped') {
      newOom();
      return;
    }
  }
}
