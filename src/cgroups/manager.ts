// The cgroup manager: one interface over v1, v2 and hybrid hosts (cgroupfs). It makes the container's
// directories, applies resources, places a pid, freezes, signals, reports usage and removes exactly what it
// made. Everything it needs later is in a CgroupRecord kept in the container's state.
//
// With the systemd manager (systemd.ts) the directories are systemd's: the unit is started with the init's
// pid at join(), its properties carry the limits systemd knows, and the same cgroupfs writes follow.
//
// Hybrid is the general case: every operation goes to the hierarchy that owns it (v1.ts for a controller the
// host mounts as a v1 hierarchy, v2.ts for cgroup2), so a v1-only or a v2-only host is the same code with
// one side empty.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, fromSystemError } from '../errors.js';
import type { LinuxResources } from '../spec/types.gen.js';
import { deviceRules, v1DeviceWrites } from './devices.js';
import { UNIFIED, cgroupDirs, controllersOf, requireSystemd, type CgroupPathRequest, type HierarchyDir, type Layout } from './paths.js';
import { errnoOf, numberIn, readText, sleepMs } from './files.js';
import { controllersNeeded, resourceWrites, type FileTree, type Placement, type Write } from './resources.js';
import { SystemdBus, annotationProperties, systemdAddress, systemdUnitOf, resourceProperties, unitProperties, type SystemdAddress } from './systemd.js';
import * as v1 from './v1.js';
import * as v2 from './v2.js';

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
  /** Present when systemd manages the cgroup. */
  systemd?: SystemdRecord;
}

export interface SystemdRecord extends SystemdAddress {
  unit: string;
  slice: string;
  /** The unit's cgroup as systemd will name it (below its own root): checked against ControlGroup. */
  cgroup: string;
  /** Whether the unit was started (delete stops it). */
  started: boolean;
  id: string;
  /** The config's org.systemd.property.* annotations: extra unit properties. */
  annotations?: Record<string, string>;
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

const PERMISSION = new Set(['EACCES', 'EPERM', 'EROFS']);

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
  static create(layout: Layout, req: CgroupPathRequest, resources: LinuxResources | undefined, rootless: boolean, annotations?: Record<string, string>): CgroupManager {
    if (req.systemd) return CgroupManager.createSystemd(layout, req, resources, rootless, annotations);
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

  /**
   * systemd: only where the unit's cgroup will be, and that systemd can be reached; the unit itself needs the
   * init's pid, so join() starts it and applies the resources.
   */
  private static createSystemd(layout: Layout, req: CgroupPathRequest, resources: LinuxResources | undefined, rootless: boolean, annotations?: Record<string, string>): CgroupManager {
    requireSystemd(req);
    const address = systemdAddress(rootless);
    const unit = systemdUnitOf(req.cgroupsPath, req.id, rootless);
    // Checked now, before anything runs; sent when the unit starts.
    annotationProperties(annotations);
    const extra = Object.fromEntries(Object.entries(annotations ?? {}).filter(([k]) => k.startsWith('org.systemd.property.')));
    const bus = SystemdBus.connect(address);
    let root: string;
    try {
      root = bus.managerCgroup();
    } finally {
      bus.close();
    }
    const v2Controllers = layout.unifiedMountPoint
      ? (readText(path.join(layout.unifiedMountPoint, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean)
      : undefined;
    const record: CgroupRecord = {
      layout: layout.layout, dirs: cgroupDirs(layout, { ...req, systemdRoot: root, rootless }), created: [],
      v1Controllers: layout.v1.flatMap(h => controllersOf(h.options)), rootless, resources,
      systemd: { ...address, unit: unit.unit, slice: unit.slice, cgroup: path.posix.join('/', root, unit.cgroupPath), started: false, id: req.id },
    };
    if (Object.keys(extra).length) record.systemd!.annotations = extra;
    if (v2Controllers) record.v2Controllers = v2Controllers;
    return new CgroupManager(record);
  }

  /**
   * Starts the container's unit with `pid` in it, checks that systemd put it where the plan expects, places
   * the pid in the hierarchies systemd left alone, and applies the resources through cgroupfs too.
   */
  private startSystemdUnit(pid: number): void {
    const sd = this.record.systemd!;
    const placement = this.placement;
    const procDevices = readText('/proc/devices') ?? '';
    const bus = SystemdBus.connect(sd);
    try {
      bus.startUnit(sd.unit, unitProperties({ slice: sd.slice, unit: sd.unit, cgroupPath: sd.cgroup }, sd.id, pid, this.record.resources, placement, procDevices, sd.annotations));
      sd.started = true;
      const actual = bus.unitCgroup(sd.unit);
      if (actual !== sd.cgroup) {
        // None of the expected directories is the container's: stopping the unit is all the cleanup there is.
        this.record.dirs = [];
        throw new RuntimeError(`systemd put unit ${sd.unit} in cgroup ${actual}, not ${sd.cgroup} where the container's mounts expect it`, { op: 'cgroup' });
      }
    } finally {
      bus.close();
    }
    // systemd makes the unit's cgroup in the hierarchies it manages; the others (v1 cpuset, say) get it here.
    const usable: HierarchyDir[] = [];
    for (const h of this.record.dirs) if (this.makeDir(h)) usable.push(h);
    this.record.dirs = usable;
    this.joinDirs(pid);
    if (this.record.layout === 'v2') this.enableV2(this.record.v2Controllers ?? []);
    this.apply(this.record.resources, false, true);
  }

  /** mkdir -p below the mount point, remembering what we made; false when unprivileged and not allowed. */
  private makeDir(h: HierarchyDir): boolean {
    const rel = path.relative(h.mountPoint, h.dir);
    let cur = h.mountPoint;
    const cpuset = controllersOf(h.key).includes('cpuset');
    for (const part of rel.split('/').filter(Boolean)) {
      const parent = cur;
      cur = path.join(cur, part);
      try {
        fs.mkdirSync(cur);
        this.record.created.push(cur);
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST') {
          if (this.record.rootless && PERMISSION.has(errnoOf(e))) return false;
          throw fromSystemError('mkdir', cur, e);
        }
      }
      // A v1 cpuset starts with no cpus and no mems, and no task can join it: every empty level, made here or
      // before us (a kubelet's pod cgroups), takes its parent's, so the nearest ancestor that has some wins (runc).
      if (cpuset && !v1.fillCpuset(cur, parent, this.record.rootless)) return false;
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

  /** Whether every directory the container is in was made by us (not a pre-existing, maybe shared, one). */
  ownsCgroup(): boolean {
    // A transient unit is the container's alone (starting it fails when the name is taken); before it
    // started there is nothing to signal.
    if (this.record.systemd) return this.record.systemd.started;
    return this.record.dirs.every(d => this.record.created.includes(d.dir));
  }

  /** Where the host has each controller (a hierarchy we could not use still counts: see write()). */
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

  private enableV2(controllers: string[]): void {
    const h = this.record.dirs.find(d => d.key === UNIFIED);
    if (h) v2.enableControllers(h.mountPoint, h.dir, controllers);
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
        v2.setDevices(dir, rules);
      }
    } catch (e) {
      // Unprivileged, the devices cgroup is not expected to work (runc ignores it too): the user namespace
      // already keeps device nodes out of reach.
      if (!this.record.rootless) throw e;
    }
  }

  /**
   * Moves `pid` into the container's cgroup in every hierarchy (never the runtime itself). With systemd this
   * is where the unit starts, with `pid` in it.
   */
  join(pid: number): void {
    if (this.record.systemd && !this.record.systemd.started) {
      this.startSystemdUnit(pid);
      return;
    }
    this.joinDirs(pid);
  }

  private joinDirs(pid: number): void {
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

  /**
   * Moves `pid` into existing sub-cgroups of the container's (exec --cgroup). `sub` maps a controller, or ''
   * for every hierarchy without its own entry, to a path below the container's directory; hierarchies with
   * neither get the container's directory itself. runc's texts for a bad controller or path.
   */
  joinSub(pid: number, sub: Map<string, string>): void {
    const keyFor = (d: HierarchyDir): string | undefined => {
      const names = d.key === UNIFIED ? [UNIFIED] : [...controllersOf(d.key), d.key];
      return names.find(n => sub.has(n)) ?? (sub.has('') ? '' : undefined);
    };
    for (const c of sub.keys()) {
      const known = c === '' || this.record.dirs.some(d => d.key === c || (d.key !== UNIFIED && controllersOf(d.key).includes(c)) || (c === UNIFIED && d.key === UNIFIED));
      if (!known) throw new RuntimeError(`unknown controller ${c} in SubCgroupPaths`, { op: 'cgroup' });
    }
    for (const d of this.record.dirs) {
      const key = keyFor(d);
      let dir = d.dir;
      if (key !== undefined) {
        const rel = sub.get(key)!;
        dir = path.posix.join(d.dir, rel);
        if (dir !== d.dir && !dir.startsWith(`${d.dir}/`)) throw new RuntimeError(`${rel} is not a sub cgroup path`, { op: 'cgroup' });
      }
      const file = path.join(dir, 'cgroup.procs');
      try {
        fs.writeFileSync(file, String(pid));
      } catch (e) {
        if (this.record.rootless && PERMISSION.has(errnoOf(e))) continue;
        const err = fromSystemError(`error adding pid ${pid} to cgroups: write`, file, e);
        throw new RuntimeError(err.message, { op: 'cgroup', path: file, errno: errnoOf(e) });
      }
    }
  }

  /** Updates resources in force: merged into the recorded ones, applied, and recorded (caller saves). */
  update(change: LinuxResources): void {
    const merged = mergeResources(this.record.resources, change);
    const sd = this.record.systemd;
    if (!sd) {
      this.apply(merged, true, change.devices !== undefined);
      this.record.resources = merged;
      return;
    }
    // systemd first: it rewrites its own limits into the cgroup on every reload, so it must know the new ones.
    // Devices only when the update has them: systemd resets the device list before it writes the new one,
    // so the container is frozen meanwhile (as runc does) and never sees a spurious EPERM.
    const props = resourceProperties({ ...merged, devices: change.devices }, this.placement, readText('/proc/devices') ?? '');
    const freeze = change.devices !== undefined && this.canFreeze() && !this.isFrozen();
    if (freeze) this.setFrozen(true);
    try {
      if (props.length) {
        const bus = SystemdBus.connect(sd);
        try {
          bus.setUnitProperties(sd.unit, props);
        } finally {
          bus.close();
        }
      }
      this.apply(merged, true, change.devices !== undefined);
    } finally {
      if (freeze) this.setFrozen(false);
    }
    this.record.resources = merged;
  }

  /** The v1 freezer when the host mounts one, else cgroup2's cgroup.freeze. */
  private freezer(): { kind: 'v1' | 'v2'; dir: string } | undefined {
    const d1 = this.dirOf('freezer');
    if (d1) return { kind: 'v1', dir: d1 };
    const d2 = this.dirOf(UNIFIED);
    if (d2 && v2.canFreeze(d2)) return { kind: 'v2', dir: d2 };
    return undefined;
  }

  /**
   * What the lifecycle record needs to tell a paused container and to delete a stopped one without a manager:
   * the freezer file and its frozen text, the directory whose cgroup.procs lists the container's processes,
   * and the directories destroy() removes, in its order (a leaf goes with any children it has).
   */
  lifecycleFacts(): { freezer?: { file: string; frozen: string }; procsDir?: string; remove: { dir: string; leaf: boolean }[] } {
    const f = this.freezer();
    const freezer = f && (f.kind === 'v1' ? v1.FREEZER : v2.FREEZER);
    const leaves = new Set(this.record.dirs.map(d => d.dir));
    return {
      freezer: f && freezer && { file: path.join(f.dir, freezer.file), frozen: freezer.frozen },
      procsDir: this.procsDir(),
      remove: [...this.record.created].reverse().map(dir => ({ dir, leaf: leaves.has(dir) })),
    };
  }

  canFreeze(): boolean {
    return this.freezer() !== undefined;
  }

  isFrozen(): boolean {
    const f = this.freezer();
    if (!f) return false;
    return f.kind === 'v1' ? v1.isFrozen(f.dir) : v2.isFrozen(f.dir);
  }

  /**
   * Whether a process placed in the container's cgroup would stop where it stands: any freezer it has (the
   * v1 freezer and cgroup2's, both on a hybrid host) frozen or freezing, by itself or by an ancestor.
   */
  frozenForNewcomers(): boolean {
    const d1 = this.dirOf('freezer');
    const d2 = this.dirOf(UNIFIED);
    return (d1 !== undefined && v1.frozenOrFreezing(d1)) || (d2 !== undefined && v2.frozenHereOrAbove(d2));
  }

  /**
   * Moves `pid` to the root of the v1 freezer hierarchy, which is never frozen: a task frozen by the v1
   * freezer does not die even of SIGKILL (cgroup2's freezer lets fatal signals through).
   */
  releaseFromFreezer(pid: number): void {
    const h = this.record.dirs.find(d => d.key !== UNIFIED && controllersOf(d.key).includes('freezer'));
    if (!h) return;
    try {
      fs.writeFileSync(path.join(h.mountPoint, 'cgroup.procs'), String(pid));
    } catch {
      /* gone already, or not ours to move (unprivileged): nothing more to do here */
    }
  }

  /** Freezes (true) or thaws (false), and waits until the kernel says it is done. */
  setFrozen(frozen: boolean): void {
    const f = this.freezer();
    if (!f) throw new RuntimeError('cannot freeze: the container has no freezer cgroup', { op: 'pause' });
    if (f.kind === 'v1') v1.setFrozen(f.dir, frozen);
    else v2.setFrozen(f.dir, frozen);
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
    if (sig === 9 && unified && v2.killAll(unified)) {
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

  /** Usage from whichever hierarchy owns each controller. */
  stats(): CgroupStats {
    const p = this.placement;
    const unified = this.dirOf(UNIFIED);
    const d = (c: string) => (p.v1.has(c) ? this.dirOf(c) : undefined);
    const inV2 = (c: string) => (p.v2?.has(c) && unified ? unified : undefined);
    const s: CgroupStats = {};
    const mem = d('memory') ? v1.memoryStats(d('memory')!) : inV2('memory') ? v2.memoryStats(unified!) : {};
    if (mem.memory) s.memory = mem.memory;
    if (mem.oom) s.oom = mem.oom;
    // cpu.stat is a core cgroup2 file: usage is there even without the cpu controller.
    const cpu = d('cpuacct') ? v1.cpuStats(d('cpuacct')!, d('cpu')) : unified ? v2.cpuStats(unified) : undefined;
    if (cpu) s.cpu = cpu;
    const pidsDir = d('pids') ?? inV2('pids');
    const current = pidsDir ? numberIn(readText(path.join(pidsDir, 'pids.current'))) : undefined;
    if (current !== undefined) {
      s.pids = { current };
      const max = numberIn(readText(path.join(pidsDir!, 'pids.max')));
      if (max !== undefined) s.pids.limit = max;
    }
    const io = d('blkio') ? v1.blkioStats(d('blkio')!) : inV2('io') ? v2.ioStats(unified!) : undefined;
    if (io) s.blkio = io;
    const huge = d('hugetlb') ? v1.hugetlbStats(d('hugetlb')!) : inV2('hugetlb') ? v2.hugetlbStats(unified!) : undefined;
    if (huge) s.hugetlb = huge;
    return s;
  }

  /**
   * Removes the directories we made, deepest first. The container's own directory goes with any sub-cgroups
   * the container made in it; a parent we made goes only when empty, since another container may have
   * made its cgroup beside ours there since.
   */
  destroy(): void {
    let first: unknown;
    const sd = this.record.systemd;
    if (sd?.started) {
      // systemd kills what is left in the unit and removes the cgroups it made; what we made follows below,
      // even when systemd cannot be reached (the error is still reported).
      try {
        const bus = SystemdBus.connect(sd);
        try {
          bus.stopUnit(sd.unit);
        } finally {
          bus.close();
        }
        sd.started = false;
      } catch (e) {
        first = e;
      }
    }
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
