// The cgroup manager: one interface over v1, v2 and hybrid hosts (cgroupfs). It makes the container's
// directories, applies resources, places a pid, freezes, signals, reports usage and removes exactly what it
// made. Everything it needs later is in a CgroupRecord kept in the container's state.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, fromSystemError } from '../errors.js';
import { native } from '../native.js';
import type { LinuxResources } from '../spec/types.gen.js';
import { deviceProgram, deviceRules, v1DeviceWrites } from './devices.js';
import { UNIFIED, cgroupDirs, controllersOf, type CgroupPathRequest, type HierarchyDir, type Layout } from './paths.js';
import { controllersNeeded, resourceWrites, type FileTree, type Placement, type Write } from './resources.js';

export interface CgroupRecord {
  layout: Layout['layout'];
  /** The container's directory in each hierarchy it could use. */
  dirs: HierarchyDir[];
  /** Directories this runtime made (parents first): delete removes these and nothing else. */
  created: string[];
  /** Controllers the host mounts as v1 hierarchies, whether or not we could use them (rootless). */
  v1Controllers: string[];
  /** Controllers the cgroup2 hierarchy offers (hybrid and v2 hosts); absent without cgroup2. */
  v2Controllers?: string[];
  /** The resources in force, so an update can merge into them (cpu quota and period belong together). */
  resources?: LinuxResources;
  rootless: boolean;
}

export interface CgroupStats {
  memory?: { usage: number; maxUsage?: number; limit?: number; swapUsage?: number };
  cpu?: { usageNs: number; userNs?: number; systemNs?: number; throttledPeriods?: number; throttledNs?: number };
  pids?: { current: number; limit?: number };
  /** Bytes read and written per "major:minor". */
  blkio?: Record<string, { read: number; write: number }>;
  /** Usage and limit per page size ("2MB"). */
  hugetlb?: Record<string, { usage: number; limit?: number }>;
  /** How often the cgroup hit its memory limit (oom) and how many tasks the OOM killer took (oomKill). */
  oom?: { oom: number; oomKill: number };
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? '';
}

const PERMISSION = new Set(['EACCES', 'EPERM', 'EROFS']);

/** Flat "key value" files (memory.stat, cpu.stat, memory.events). */
function keyed(text: string | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) m.set(k, Number(v));
  }
  return m;
}

function numberIn(text: string | undefined): number | undefined {
  const t = text?.trim();
  if (t === undefined || t === '' || t === 'max') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** Merges an update into the resources in force: a field given replaces, a field left out stays. */
export function mergeResources(base: LinuxResources | undefined, change: LinuxResources): LinuxResources {
  const out: LinuxResources = structuredClone(base ?? {});
  for (const [k, v] of Object.entries(change) as [keyof LinuxResources, unknown][]) {
    if (v === undefined || v === null) continue;
    const cur = out[k];
    if (cur && typeof cur === 'object' && !Array.isArray(cur) && typeof v === 'object' && !Array.isArray(v) && k !== 'unified' && k !== 'rdma') {
      (out as Record<string, unknown>)[k] = { ...cur, ...(v as object) };
    } else {
      (out as Record<string, unknown>)[k] = structuredClone(v);
    }
  }
  return out;
}

export class CgroupManager {
  private constructor(readonly record: CgroupRecord) {}

  static load(record: CgroupRecord): CgroupManager {
    return new CgroupManager(record);
  }

  /**
   * Makes the container's cgroup in every hierarchy and applies `resources`. Unprivileged, a hierarchy we
   * may not write to is skipped quietly, unless a resource needs it. On failure nothing made stays.
   */
  static create(layout: Layout, req: CgroupPathRequest, resources: LinuxResources | undefined, rootless: boolean): CgroupManager {
    const wanted = cgroupDirs(layout, req);
    const v2Controllers = layout.unifiedMountPoint
      ? (readText(path.join(layout.unifiedMountPoint, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean)
      : undefined;
    const v1Controllers = layout.v1.flatMap(h => controllersOf(h.options));
    const record: CgroupRecord = { layout: layout.layout, dirs: [], created: [], v1Controllers, rootless, resources };
    if (v2Controllers) record.v2Controllers = v2Controllers;
    const m = new CgroupManager(record);
    try {
      for (const h of wanted) {
        if (m.makeDir(h)) record.dirs.push(h);
      }
      // On a cgroup2-only host every controller is enabled (as runc does), so usage can be read for all of
      // them; on a hybrid host only what a resource needs, since that changes the shared unified tree.
      if (layout.layout === 'v2') m.enableV2(v2Controllers ?? []);
      m.apply(resources, false, true);
    } catch (e) {
      m.destroy();
      throw e;
    }
    return m;
  }

  /** mkdir -p below the mount point, remembering what we made; false when unprivileged and not allowed. */
  private makeDir(h: HierarchyDir): boolean {
    const rel = path.relative(h.mountPoint, h.dir);
    let cur = h.mountPoint;
    for (const part of rel.split('/').filter(Boolean)) {
      const parent = cur;
      cur = path.join(cur, part);
      try {
        fs.mkdirSync(cur);
        this.record.created.push(cur);
        // A new v1 cpuset starts with no cpus and no mems: no task could join it. Inherit the parent's.
        if (controllersOf(h.key).includes('cpuset')) {
          for (const f of ['cpuset.cpus', 'cpuset.mems']) {
            if (!readText(path.join(cur, f))?.trim()) fs.writeFileSync(path.join(cur, f), readText(path.join(parent, f))?.trim() ?? '');
          }
        }
      } catch (e) {
        if (errnoOf(e) === 'EEXIST') continue;
        if (this.record.rootless && PERMISSION.has(errnoOf(e))) return false;
        throw fromSystemError('mkdir', cur, e);
      }
    }
    if (this.record.rootless) {
      // Delegated means we may also write its files; a directory we cannot use is as good as none.
      try {
        fs.accessSync(path.join(h.dir, 'cgroup.procs'), fs.constants.W_OK);
      } catch {
        return false;
      }
    }
    return true;
  }

  /** Where the host has each controller (a hierarchy we could not use still counts: see write()). */
  /** Whether every directory the container is in was made by us (not a pre-existing, maybe shared, one). */
  ownsCgroup(): boolean {
    return this.record.dirs.every(d => this.record.created.includes(d.dir));
  }

  private get placement(): Placement {
    const v1 = new Set(this.record.v1Controllers);
    const v2 = this.record.v2Controllers;
    return { v1, v2: v2 ? new Set(v2.filter(c => !v1.has(c))) : undefined };
  }

  /** The directory holding a v1 controller's files, or the cgroup2 directory for "unified". */
  dirOf(key: string): string | undefined {
    if (key === UNIFIED) return this.record.dirs.find(d => d.key === UNIFIED)?.dir;
    return this.record.dirs.find(d => controllersOf(d.key).includes(key))?.dir;
  }

  private get tree(): FileTree {
    return {
      exists: (key, file) => {
        const dir = this.dirOf(key);
        return dir !== undefined && fs.existsSync(path.join(dir, file));
      },
      read: (key, file) => {
        const dir = this.dirOf(key);
        return dir === undefined ? undefined : readText(path.join(dir, file));
      },
    };
  }

  /** Turns on cgroup2 controllers in every ancestor's subtree_control; failures surface at the write. */
  private enableV2(controllers: string[]): void {
    const h = this.record.dirs.find(d => d.key === UNIFIED);
    if (!h || !controllers.length) return;
    const rel = path.relative(h.mountPoint, h.dir).split('/').filter(Boolean);
    let cur = h.mountPoint;
    for (const part of rel) {
      const control = path.join(cur, 'cgroup.subtree_control');
      const on = new Set((readText(control) ?? '').trim().split(/\s+/));
      for (const c of controllers) {
        if (on.has(c)) continue;
        try {
          fs.writeFileSync(control, `+${c}`);
        } catch {
          /* not enableable here (e.g. processes in this cgroup): the resource write below says so */
        }
      }
      cur = path.join(cur, part);
    }
  }

  private write(w: Write): void {
    const dir = this.dirOf(w.key);
    if (!dir) {
      // Unprivileged without a delegated cgroup: runc's message, naming the controller.
      const controller = w.key === UNIFIED ? w.file.slice(0, w.file.indexOf('.')) : w.key;
      throw new RuntimeError(`cannot set ${controller} limit: container could not join or create cgroup`, { op: 'cgroup' });
    }
    const file = path.join(dir, w.file);
    try {
      fs.writeFileSync(file, w.value);
    } catch (e) {
      const code = errnoOf(e);
      if (code === 'EBUSY' && (w.file === 'memory.limit_in_bytes' || w.file === 'memory.memsw.limit_in_bytes')) {
        const usage = readText(path.join(dir, 'memory.usage_in_bytes'))?.trim() ?? '?';
        const peak = readText(path.join(dir, 'memory.max_usage_in_bytes'))?.trim() ?? '?';
        throw new RuntimeError(`unable to set memory limit to ${w.value} (current usage: ${usage}, peak usage: ${peak})`, { op: 'cgroup', path: file, errno: code });
      }
      const err = fromSystemError(`linux.resources.${w.resource}: write ${JSON.stringify(w.value)} to`, file, e);
      throw new RuntimeError(err.message, { op: 'cgroup', path: file, errno: code });
    }
  }

  /**
   * Applies resources. `update`: a running container (memory.checkBeforeUpdate, devices replaced in place).
   * `devices`: whether to (re)write the device rules; an update without a devices list leaves them alone.
   */
  apply(resources: LinuxResources | undefined, update: boolean, devices: boolean): void {
    // cgroup2 files appear only once the parents enable their controller: enable first (asking a tree where
    // every file exists which controllers the writes will need), then map against the real files.
    const everything: FileTree = { exists: () => true, read: () => undefined };
    this.enableV2(controllersNeeded(resourceWrites(resources, this.placement, everything, update)));
    const writes = resourceWrites(resources, this.placement, this.tree, update);
    const retry: Write[] = [];
    for (const w of writes) {
      try {
        this.write(w);
      } catch (e) {
        if (w.retryOnEinval && (e as RuntimeError).errno === 'EINVAL') retry.push(w);
        else throw e;
      }
    }
    for (const w of retry) this.write(w);
    if (devices) this.applyDevices(resources?.devices);
  }

  private applyDevices(list: LinuxResources['devices']): void {
    const rules = deviceRules(list);
    const v1 = this.dirOf('devices');
    try {
      if (v1) {
        for (const w of v1DeviceWrites(rules)) this.write({ key: 'devices', file: w.file, value: w.value, resource: 'devices' });
      } else if (this.record.layout === 'v2') {
        const dir = this.dirOf(UNIFIED);
        if (!dir) throw new RuntimeError('cannot set devices limit: container could not join or create cgroup', { op: 'cgroup' });
        try {
          native().attachDeviceFilter(dir, deviceProgram(rules));
        } catch (e) {
          throw new RuntimeError(`linux.resources.devices: load the device filter (eBPF) into ${dir}: ${(e as Error).message}`, { op: 'cgroup', path: dir, errno: errnoOf(e) });
        }
      }
    } catch (e) {
      // Unprivileged, the devices cgroup is not expected to work (runc ignores it too): the user namespace
      // already keeps device nodes out of reach.
      if (!this.record.rootless) throw e;
    }
  }

  /** Moves `pid` into the container's cgroup in every hierarchy (never the runtime itself). */
  join(pid: number): void {
    for (const d of this.record.dirs) {
      const file = path.join(d.dir, 'cgroup.procs');
      try {
        fs.writeFileSync(file, String(pid));
      } catch (e) {
        if (this.record.rootless && PERMISSION.has(errnoOf(e))) continue;
        throw fromSystemError('write', file, e);
      }
    }
  }

  /** Updates resources in force: merged into the recorded ones, applied, and recorded (caller saves). */
  update(change: LinuxResources): void {
    const merged = mergeResources(this.record.resources, change);
    this.apply(merged, true, change.devices !== undefined);
    this.record.resources = merged;
  }

  private freezer(): { kind: 'v1' | 'v2'; dir: string } | undefined {
    const v1 = this.dirOf('freezer');
    if (v1) return { kind: 'v1', dir: v1 };
    const v2 = this.dirOf(UNIFIED);
    if (v2 && fs.existsSync(path.join(v2, 'cgroup.freeze'))) return { kind: 'v2', dir: v2 };
    return undefined;
  }

  canFreeze(): boolean {
    return this.freezer() !== undefined;
  }

  isFrozen(): boolean {
    const f = this.freezer();
    if (!f) return false;
    if (f.kind === 'v1') return readText(path.join(f.dir, 'freezer.state'))?.trim() === 'FROZEN';
    return readText(path.join(f.dir, 'cgroup.freeze'))?.trim() === '1';
  }

  /** Freezes (true) or thaws (false), and waits until the kernel says it is done. */
  setFrozen(frozen: boolean): void {
    const f = this.freezer();
    if (!f) throw new RuntimeError('cannot freeze: the container has no freezer cgroup', { op: 'pause' });
    if (f.kind === 'v1') {
      const file = path.join(f.dir, 'freezer.state');
      const want = frozen ? 'FROZEN' : 'THAWED';
      for (let i = 0; i < 1000; i++) {
        // Re-writing FROZEN restarts a freeze that a task racing through fork left in FREEZING.
        fs.writeFileSync(file, want);
        const now = readText(file)?.trim();
        if (now === want) return;
        sleepMs(i < 25 ? 1 : 10);
      }
      if (frozen) fs.writeFileSync(file, 'THAWED');
      throw new RuntimeError(`unable to ${frozen ? 'freeze' : 'thaw'} the container: ${file} stays ${readText(file)?.trim()}`, { op: 'pause', path: file });
    }
    fs.writeFileSync(path.join(f.dir, 'cgroup.freeze'), frozen ? '1' : '0');
    const events = path.join(f.dir, 'cgroup.events');
    for (let i = 0; i < 1000; i++) {
      if (keyed(readText(events)).get('frozen') === (frozen ? 1 : 0)) return;
      sleepMs(i < 25 ? 1 : 10);
    }
    throw new RuntimeError(`unable to ${frozen ? 'freeze' : 'thaw'} the container: ${events} never reported it`, { op: 'pause', path: events });
  }

  /** The directory whose cgroup.procs lists the container's processes. */
  private procsDir(): string | undefined {
    return this.dirOf(UNIFIED) ?? this.dirOf('pids') ?? this.dirOf('freezer') ?? this.record.dirs[0]?.dir;
  }

  /** Every process in the container's cgroup (including any sub-cgroups it made). */
  pids(): number[] {
    const dir = this.procsDir();
    if (!dir) return [];
    const out: number[] = [];
    const walk = (d: string): void => {
      for (const line of (readText(path.join(d, 'cgroup.procs')) ?? '').split('\n')) if (/^\d+$/.test(line)) out.push(Number(line));
      let entries: fs.Dirent[] = [];
      try {
        entries = fs.readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
    };
    walk(dir);
    return out;
  }

  /**
   * Signals every process in the cgroup. SIGKILL on cgroup2 uses cgroup.kill (no fork can escape); otherwise
   * the cgroup is frozen while we signal, so nothing forks past the list, and thawed so the signal lands.
   */
  signalAll(sig: number): void {
    const unified = this.dirOf(UNIFIED);
    if (sig === 9 && unified && fs.existsSync(path.join(unified, 'cgroup.kill'))) {
      fs.writeFileSync(path.join(unified, 'cgroup.kill'), '1');
      // On a hybrid host a paused container is frozen by the v1 freezer, where even SIGKILL waits.
      if (this.dirOf('freezer') && this.isFrozen()) this.setFrozen(false);
      return;
    }
    const freeze = this.canFreeze();
    const wasFrozen = freeze && this.isFrozen();
    if (freeze && !wasFrozen) this.setFrozen(true);
    try {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, sig);
        } catch {
          /* exited meanwhile */
        }
      }
    } finally {
      // A frozen v1 task cannot die: thaw after SIGKILL even when it was paused before.
      if (freeze && (!wasFrozen || sig === 9)) this.setFrozen(false);
    }
  }

  stats(): CgroupStats {
    const s: CgroupStats = {};
    const v2 = this.dirOf(UNIFIED);
    const p = this.placement;
    const read = (key: string, file: string): string | undefined => {
      const d = this.dirOf(key);
      return d === undefined ? undefined : readText(path.join(d, file));
    };
    if (p.v1.has('memory')) {
      const usage = numberIn(read('memory', 'memory.usage_in_bytes'));
      if (usage !== undefined) {
        s.memory = { usage };
        const max = numberIn(read('memory', 'memory.max_usage_in_bytes'));
        const limit = numberIn(read('memory', 'memory.limit_in_bytes'));
        const memsw = numberIn(read('memory', 'memory.memsw.usage_in_bytes'));
        if (max !== undefined) s.memory.maxUsage = max;
        if (limit !== undefined) s.memory.limit = limit;
        if (memsw !== undefined) s.memory.swapUsage = Math.max(0, memsw - usage);
      }
      // v1 counts limit hits in memory.failcnt and kills in oom_control's oom_kill.
      const oom = keyed(read('memory', 'memory.oom_control'));
      s.oom = { oom: numberIn(read('memory', 'memory.failcnt')) ?? 0, oomKill: oom.get('oom_kill') ?? 0 };
    } else if (p.v2?.has('memory') && v2) {
      const usage = numberIn(readText(path.join(v2, 'memory.current')));
      if (usage !== undefined) {
        s.memory = { usage };
        const max = numberIn(readText(path.join(v2, 'memory.peak')));
        const limit = numberIn(readText(path.join(v2, 'memory.max')));
        const swap = numberIn(readText(path.join(v2, 'memory.swap.current')));
        if (max !== undefined) s.memory.maxUsage = max;
        if (limit !== undefined) s.memory.limit = limit;
        if (swap !== undefined) s.memory.swapUsage = swap;
      }
      const ev = keyed(readText(path.join(v2, 'memory.events')));
      s.oom = { oom: ev.get('oom') ?? 0, oomKill: ev.get('oom_kill') ?? 0 };
    }
    const cpuacct = numberIn(read('cpuacct', 'cpuacct.usage'));
    if (cpuacct !== undefined) {
      const st = keyed(read('cpuacct', 'cpuacct.stat'));
      const tick = 1e7; // USER_HZ 100: one tick is 10 ms
      s.cpu = { usageNs: cpuacct, userNs: (st.get('user') ?? 0) * tick, systemNs: (st.get('system') ?? 0) * tick };
      const thr = keyed(read('cpu', 'cpu.stat'));
      if (thr.has('nr_throttled')) {
        s.cpu.throttledPeriods = thr.get('nr_throttled')!;
        s.cpu.throttledNs = thr.get('throttled_time') ?? 0;
      }
    } else if (v2) {
      const st = keyed(readText(path.join(v2, 'cpu.stat')));
      if (st.has('usage_usec')) {
        s.cpu = { usageNs: st.get('usage_usec')! * 1000, userNs: (st.get('user_usec') ?? 0) * 1000, systemNs: (st.get('system_usec') ?? 0) * 1000 };
        if (st.has('nr_throttled')) {
          s.cpu.throttledPeriods = st.get('nr_throttled')!;
          s.cpu.throttledNs = (st.get('throttled_usec') ?? 0) * 1000;
        }
      }
    }
    const pidsCurrent = numberIn(read(p.v1.has('pids') ? 'pids' : UNIFIED, 'pids.current'));
    if (pidsCurrent !== undefined) {
      s.pids = { current: pidsCurrent };
      const max = numberIn(read(p.v1.has('pids') ? 'pids' : UNIFIED, 'pids.max'));
      if (max !== undefined) s.pids.limit = max;
    }
    if (p.v1.has('blkio')) {
      const text = read('blkio', 'blkio.throttle.io_service_bytes_recursive') ?? '';
      const io: Record<string, { read: number; write: number }> = {};
      for (const line of text.split('\n')) {
        const [dev, op, v] = line.trim().split(/\s+/);
        if (!dev || !/^\d+:\d+$/.test(dev) || v === undefined) continue;
        io[dev] ??= { read: 0, write: 0 };
        if (op === 'Read') io[dev].read = Number(v);
        if (op === 'Write') io[dev].write = Number(v);
      }
      s.blkio = io;
    } else if (v2 && fs.existsSync(path.join(v2, 'io.stat'))) {
      const io: Record<string, { read: number; write: number }> = {};
      for (const line of (readText(path.join(v2, 'io.stat')) ?? '').split('\n')) {
        const [dev, ...kv] = line.trim().split(/\s+/);
        if (!dev) continue;
        const f = new Map(kv.map(x => x.split('=') as [string, string]));
        io[dev] = { read: Number(f.get('rbytes') ?? 0), write: Number(f.get('wbytes') ?? 0) };
      }
      s.blkio = io;
    }
    const hugeKey = p.v1.has('hugetlb') ? 'hugetlb' : p.v2?.has('hugetlb') ? UNIFIED : undefined;
    const hugeDir = hugeKey && this.dirOf(hugeKey);
    if (hugeDir) {
      const h: Record<string, { usage: number; limit?: number }> = {};
      const v1 = hugeKey !== UNIFIED;
      for (const name of fs.readdirSync(hugeDir)) {
        const m = v1 ? /^hugetlb\.(\w+)\.usage_in_bytes$/.exec(name) : /^hugetlb\.(\w+)\.current$/.exec(name);
        if (!m) continue;
        const size = m[1]!;
        const entry: { usage: number; limit?: number } = { usage: numberIn(readText(path.join(hugeDir, name))) ?? 0 };
        const limit = numberIn(readText(path.join(hugeDir, v1 ? `hugetlb.${size}.limit_in_bytes` : `hugetlb.${size}.max`)));
        if (limit !== undefined) entry.limit = limit;
        h[size] = entry;
      }
      s.hugetlb = h;
    }
    return s;
  }

  /**
   * Removes the directories we made, deepest first. The container's own directory goes with any sub-cgroups
   * the container made in it; a parent we made goes only when empty, since another container may have
   * made its cgroup beside ours there since.
   */
  destroy(): void {
    const leaves = new Set(this.record.dirs.map(d => d.dir));
    const rmdir = (dir: string, waitBusy: boolean): void => {
      // Tasks killed a moment ago may still be leaving: EBUSY for a short while.
      for (let i = 0; ; i++) {
        try {
          fs.rmdirSync(dir);
          return;
        } catch (e) {
          const code = errnoOf(e);
          if (code === 'ENOENT') return;
          if (code !== 'EBUSY' || !waitBusy || i >= 100) throw fromSystemError('remove cgroup', dir, e);
          sleepMs(i < 10 ? 5 : 50);
        }
      }
    };
    const removeTree = (dir: string): void => {
      let entries: fs.Dirent[] = [];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch (e) {
        if (errnoOf(e) === 'ENOENT') return;
      }
      for (const e of entries) if (e.isDirectory()) removeTree(path.join(dir, e.name));
      rmdir(dir, true);
    };
    let first: unknown;
    for (const dir of [...this.record.created].reverse()) {
      try {
        if (leaves.has(dir)) removeTree(dir);
        else rmdir(dir, false);
      } catch (e) {
        // A parent still holding someone else's cgroup stays, quietly: it is in use, not leaked.
        if (!leaves.has(dir) && (e as RuntimeError).errno === 'EBUSY') continue;
        first ??= e;
      }
    }
    if (first) throw first;
  }
}
