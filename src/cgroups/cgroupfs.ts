// The cgroupfs manager: the container's cgroup made, limited, joined, frozen, signalled and removed through
// the cgroup file systems on v1, v2 and hybrid hosts. Hybrid is the general case: every operation goes to the
// hierarchy that owns it (v1.ts for a controller the host mounts as a v1 hierarchy, v2.ts for cgroup2), so a
// v1-only or a v2-only host is the same code with one side empty. Everything it needs later is in the
// CgroupRecord kept in the container's state.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, fromSystemError } from '../errors.js';
import type { LinuxResources } from '../spec/types.gen.js';
import { deviceRules, v1DeviceWrites } from './devices.js';
import { controllersIn, errnoOf, notPermitted, readText, sleepMs } from './files.js';
import { cgroupDirs, controllersOf } from './paths.js';
import { controllersNeeded, mergeResources, resourceWrites, type FileTree, type Write } from './resources.js';
import {
  UNIFIED,
  type CgroupManager,
  type LifecycleFacts,
  type CgroupPlacement,
  type CgroupRecord,
  type CgroupRequest,
  type HierarchyDir,
  type Layout,
  type Placement,
} from './types.js';
import * as v1 from './v1.js';
import * as v2 from './v2.js';

/** A record of no directories yet: what the host offers, and the resources to apply. */
export function newRecord(layout: Layout, rootless: boolean, resources: LinuxResources | undefined): CgroupRecord {
  const record: CgroupRecord = {
    layout: layout.layout,
    dirs: [],
    created: [],
    v1Controllers: layout.v1.flatMap(h => controllersOf(h.options)),
    rootless,
    resources,
  };
  if (layout.unifiedMountPoint) record.v2Controllers = controllersIn(layout.unifiedMountPoint);
  return record;
}

/**
 * Whether an unprivileged runtime can make and use `h`, as makeDir will find: the directory is there with a
 * cgroup.procs we may write, or its nearest existing parent takes new directories from us (a cgroup we make
 * is ours, files included).
 */
function usableUnprivileged(h: HierarchyDir): boolean {
  let dir = h.dir;
  while (!fs.existsSync(dir)) {
    if (dir === h.mountPoint || dir === '/') return false;
    dir = path.dirname(dir);
  }
  try {
    if (dir === h.dir) fs.accessSync(path.join(dir, 'cgroup.procs'), fs.constants.W_OK);
    else fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export class CgroupfsManager implements CgroupManager {
  constructor(readonly record: CgroupRecord) {}

  /** Unprivileged, a hierarchy we may not use is left out, and the container does without it. */
  static place(layout: Layout, req: CgroupRequest): CgroupPlacement {
    const dirs = cgroupDirs(layout, req);
    return { req, dirs: req.rootless ? dirs.filter(usableUnprivileged) : dirs };
  }

  /**
   * Makes the container's cgroup where `place` put it, in every hierarchy, and applies `resources`.
   * Unprivileged, a hierarchy we may not write to after all is skipped quietly, unless a resource needs it.
   * On failure nothing made stays.
   */
  static create(layout: Layout, placement: CgroupPlacement, resources: LinuxResources | undefined): CgroupfsManager {
    const record = newRecord(layout, placement.req.rootless, resources);
    record.dirs = [...placement.dirs];
    const m = new CgroupfsManager(record);
    try {
      m.makeDirs();
      m.configure();
    } catch (e) {
      m.destroy();
      throw e;
    }
    return m;
  }

  /** Makes the recorded directories that do not exist yet; those we may not use (unprivileged) are dropped. */
  makeDirs(): void {
    this.record.dirs = this.record.dirs.filter(h => this.makeDir(h));
  }

  /**
   * Applies the recorded resources to the directories made. On a cgroup2-only host every controller is
   * enabled (as runc does), so usage can be read for all of them; on a hybrid host only what a resource needs,
   * since that changes the shared unified tree.
   */
  configure(): void {
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
          if (this.record.rootless && notPermitted(e)) return false;
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
    return this.record.dirs.every(d => this.record.created.includes(d.dir));
  }

  /** Where the host has each controller (a hierarchy we could not use still counts: see write()). */
  get placement(): Placement {
    const v1 = new Set(this.record.v1Controllers);
    const v2 = this.record.v2Controllers;
    return { v1, v2: v2 ? new Set(v2.filter(c => !v1.has(c))) : undefined };
  }

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
        throw new RuntimeError(`unable to set memory limit to ${w.value} (current usage: ${usage}, peak usage: ${peak})`, {
          op: 'cgroup',
          path: file,
          errno: code,
        });
      }
      throw fromSystemError(`linux.resources.${w.resource}: write ${JSON.stringify(w.value)} to`, file, e, 'cgroup');
    }
  }

  /**
   * Applies resources. `update`: a running container (memory.checkBeforeUpdate, devices replaced in place).
   * `devices`: whether to (re)write the device rules; an update without a devices list leaves them alone.
   */
  private apply(resources: LinuxResources | undefined, update: boolean, devices: boolean): void {
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
        if (w.retryOnEinval && e instanceof RuntimeError && e.errno === 'EINVAL') retry.push(w);
        else throw e;
      }
    }
    for (const w of retry) this.write(w);
    if (devices) this.applyDevices(resources?.devices);
  }

  private applyDevices(list: LinuxResources['devices']): void {
    const rules = deviceRules(list);
    const v1Dir = this.dirOf('devices');
    try {
      if (v1Dir) {
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

  /** Writes `pid` into `dir`'s cgroup.procs; unprivileged, a cgroup we may not write is skipped. */
  private addProcess(dir: string, pid: number, action: string): void {
    const file = path.join(dir, 'cgroup.procs');
    try {
      fs.writeFileSync(file, String(pid));
    } catch (e) {
      if (this.record.rootless && notPermitted(e)) return;
      throw fromSystemError(action, file, e, 'cgroup');
    }
  }

  selfJoinDirs(): string[] {
    return this.record.rootless ? [] : this.record.dirs.filter(d => d.key !== UNIFIED).map(d => d.dir);
  }

  join(pid: number, joinedByInit?: ReadonlySet<string>): void {
    for (const d of this.record.dirs) if (!joinedByInit?.has(d.dir)) this.addProcess(d.dir, pid, 'write');
  }

  /** Hierarchies with neither their own entry in `sub` nor a '' one get the container's directory itself. */
  joinSub(pid: number, sub: Map<string, string>): void {
    const keyFor = (d: HierarchyDir): string | undefined => {
      const names = d.key === UNIFIED ? [UNIFIED] : [...controllersOf(d.key), d.key];
      return names.find(n => sub.has(n)) ?? (sub.has('') ? '' : undefined);
    };
    for (const c of sub.keys()) {
      const known =
        c === '' ||
        this.record.dirs.some(
          d => d.key === c || (d.key !== UNIFIED && controllersOf(d.key).includes(c)) || (c === UNIFIED && d.key === UNIFIED),
        );
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
      this.addProcess(dir, pid, `error adding pid ${pid} to cgroups: write`);
    }
  }

  update(change: LinuxResources): void {
    const merged = mergeResources(this.record.resources, change);
    this.apply(merged, true, change.devices !== undefined);
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

  canFreeze(): boolean {
    return this.freezer() !== undefined;
  }

  isFrozen(): boolean {
    const f = this.freezer();
    if (!f) return false;
    return f.kind === 'v1' ? v1.isFrozen(f.dir) : v2.isFrozen(f.dir);
  }

  /** Any freezer the container has (the v1 freezer and cgroup2's, both on a hybrid host), by itself or above. */
  frozenForNewcomers(): boolean {
    const d1 = this.dirOf('freezer');
    const d2 = this.dirOf(UNIFIED);
    return (d1 !== undefined && v1.frozenOrFreezing(d1)) || (d2 !== undefined && v2.frozenHereOrAbove(d2));
  }

  /** To the root of the v1 freezer hierarchy, which is never frozen (cgroup2's freezer lets fatal signals through). */
  releaseFromFreezer(pid: number): void {
    const h = this.record.dirs.find(d => d.key !== UNIFIED && controllersOf(d.key).includes('freezer'));
    if (!h) return;
    try {
      fs.writeFileSync(path.join(h.mountPoint, 'cgroup.procs'), String(pid));
    } catch {
      /* gone already, or not ours to move (unprivileged): nothing more to do here */
    }
  }

  setFrozen(frozen: boolean): void {
    const f = this.freezer();
    if (!f) throw new RuntimeError('cannot freeze: the container has no freezer cgroup', { op: 'pause' });
    if (f.kind === 'v1') v1.setFrozen(f.dir, frozen);
    else v2.setFrozen(f.dir, frozen);
  }

  lifecycleFacts(): LifecycleFacts {
    const f = this.freezer();
    const freezer = f && (f.kind === 'v1' ? v1.FREEZER : v2.FREEZER);
    const leaves = new Set(this.record.dirs.map(d => d.dir));
    return {
      freezer: f && freezer && { file: path.join(f.dir, freezer.file), frozen: freezer.frozen },
      procsDir: this.procsDir(),
      remove: [...this.record.created].reverse().map(dir => ({ dir, leaf: leaves.has(dir) })),
    };
  }

  /** The directory whose cgroup.procs lists the container's processes. */
  private procsDir(): string | undefined {
    return this.dirOf(UNIFIED) ?? this.dirOf('pids') ?? this.dirOf('freezer') ?? this.record.dirs[0]?.dir;
  }

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
   * SIGKILL on cgroup2 uses cgroup.kill (no fork can escape); otherwise the cgroup is frozen while we signal,
   * so nothing forks past the list, and thawed so the signal lands.
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

  /**
   * Removes the directories we made, deepest first. The container's own directory goes with any sub-cgroups
   * the container made in it; a parent we made goes only when empty, since another container may have
   * made its cgroup beside ours there since.
   */
  destroy(): void {
    let first: unknown;
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
        if (!leaves.has(dir) && e instanceof RuntimeError && e.errno === 'EBUSY') continue;
        first ??= e;
      }
    }
    if (first) throw first;
  }
}
