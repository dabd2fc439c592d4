// The systemd manager, as runc's: the container's cgroup is a transient unit systemd starts with the init's
// pid in it (join), limited by the unit properties systemd understands, and stopped by delete. Every file
// write, in the directories systemd made and in the hierarchies it leaves alone, is the cgroupfs manager's,
// which this one wraps.
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import type { LinuxResources } from '../spec/types.gen.js';
import { CgroupfsManager, newRecord } from './cgroupfs.js';
import { readText } from './files.js';
import { cgroupDirs, requireSystemd } from './paths.js';
import { mergeResources } from './resources.js';
import { annotationProperties, resourceProperties, systemdAddress, unitProperties, withBus } from './systemd.js';
import { systemdUnitOf } from './systemd-unit.js';
import type { CgroupManager, CgroupPlacement, CgroupRecord, CgroupRequest, Layout, LifecycleFacts, SystemdRecord } from './types.js';

export class SystemdManager implements CgroupManager {
  private readonly files: CgroupfsManager;

  constructor(readonly record: CgroupRecord & { systemd: SystemdRecord }) {
    this.files = new CgroupfsManager(record);
  }

  /**
   * The unit's cgroup below the manager's root, which is asked for over the bus (so systemd must be reachable);
   * cgroupsPath and the annotations are checked now, before anything runs.
   */
  static place(layout: Layout, req: CgroupRequest): CgroupPlacement {
    requireSystemd(req);
    const address = systemdAddress(req.rootless);
    systemdUnitOf(req.cgroupsPath, req.id, req.rootless);
    annotationProperties(req.annotations);
    const placed = { ...req, systemdRoot: withBus(address, bus => bus.managerCgroup()) };
    return { req: placed, dirs: cgroupDirs(layout, placed) };
  }

  /**
   * Only the record of where the unit's cgroup will be: the unit itself needs the init's pid, so join() starts
   * it and applies the resources.
   */
  static create(layout: Layout, placement: CgroupPlacement, resources: LinuxResources | undefined): SystemdManager {
    const { req } = placement;
    const address = systemdAddress(req.rootless);
    const unit = systemdUnitOf(req.cgroupsPath, req.id, req.rootless);
    const extra = Object.fromEntries(Object.entries(req.annotations ?? {}).filter(([k]) => k.startsWith('org.systemd.property.')));
    const systemd: SystemdRecord = {
      ...address,
      unit: unit.unit,
      slice: unit.slice,
      cgroup: path.posix.join('/', req.systemdRoot ?? '/', unit.cgroupPath),
      started: false,
      id: req.id,
    };
    if (Object.keys(extra).length) systemd.annotations = extra;
    const record = { ...newRecord(layout, req.rootless, resources), systemd };
    record.dirs = [...placement.dirs];
    return new SystemdManager(record);
  }

  /**
   * Starts the container's unit with `pid` in it, checks that systemd put it where the plan expects, makes
   * and joins the unit's cgroup in the hierarchies systemd left alone (v1 cpuset, say), and applies the
   * resources through cgroupfs too.
   */
  private startUnit(pid: number): void {
    const sd = this.record.systemd;
    const procDevices = readText('/proc/devices') ?? '';
    withBus(sd, bus => {
      bus.startUnit(
        sd.unit,
        unitProperties(
          { slice: sd.slice, unit: sd.unit, cgroupPath: sd.cgroup },
          sd.id,
          pid,
          this.record.resources,
          this.files.placement,
          procDevices,
          sd.annotations,
        ),
      );
      sd.started = true;
      const actual = bus.unitCgroup(sd.unit);
      if (actual !== sd.cgroup) {
        // None of the expected directories is the container's: stopping the unit is all the cleanup there is.
        this.record.dirs = [];
        throw new RuntimeError(`systemd put unit ${sd.unit} in cgroup ${actual}, not ${sd.cgroup} where the container's mounts expect it`, {
          op: 'cgroup',
        });
      }
    });
    this.files.makeDirs();
    this.files.join(pid);
    this.files.configure();
  }

  /** A transient unit is the container's alone (starting it fails when the name is taken); before it started there is nothing to signal. */
  ownsCgroup(): boolean {
    return this.record.systemd.started;
  }

  /** None: the unit is started with the init's pid. */
  selfJoinDirs(): string[] {
    return [];
  }

  /** The init's join starts the unit with it; later ones (exec) are cgroupfs writes. */
  join(pid: number): void {
    if (this.record.systemd.started) this.files.join(pid);
    else this.startUnit(pid);
  }

  /**
   * systemd first: it rewrites its own limits into the cgroup on every reload, so it must know the new ones.
   * Devices only when the update has them: systemd resets the device list before it writes the new one, so
   * the container is frozen meanwhile (as runc does) and never sees a spurious EPERM.
   */
  update(change: LinuxResources): void {
    const sd = this.record.systemd;
    const merged = mergeResources(this.record.resources, change);
    const props = resourceProperties({ ...merged, devices: change.devices }, this.files.placement, readText('/proc/devices') ?? '');
    const freeze = change.devices !== undefined && this.canFreeze() && !this.isFrozen();
    if (freeze) this.setFrozen(true);
    try {
      if (props.length) withBus(sd, bus => bus.setUnitProperties(sd.unit, props));
      this.files.update(change);
    } finally {
      if (freeze) this.setFrozen(false);
    }
  }

  /**
   * systemd kills what is left in the unit and removes the cgroups it made; what we made follows, even when
   * systemd cannot be reached (the first error is still reported).
   */
  destroy(): void {
    let first: unknown;
    const sd = this.record.systemd;
    if (sd.started) {
      try {
        withBus(sd, bus => bus.stopUnit(sd.unit));
        sd.started = false;
      } catch (e) {
        first = e;
      }
    }
    try {
      this.files.destroy();
    } catch (e) {
      first ??= e;
    }
    if (first) throw first;
  }

  dirOf(key: string): string | undefined {
    return this.files.dirOf(key);
  }

  joinSub(pid: number, sub: Map<string, string>): void {
    this.files.joinSub(pid, sub);
  }

  lifecycleFacts(): LifecycleFacts {
    return this.files.lifecycleFacts();
  }

  canFreeze(): boolean {
    return this.files.canFreeze();
  }

  isFrozen(): boolean {
    return this.files.isFrozen();
  }

  frozenForNewcomers(): boolean {
    return this.files.frozenForNewcomers();
  }

  releaseFromFreezer(pid: number): void {
    this.files.releaseFromFreezer(pid);
  }

  setFrozen(frozen: boolean): void {
    this.files.setFrozen(frozen);
  }

  pids(): number[] {
    return this.files.pids();
  }

  signalAll(sig: number): void {
    this.files.signalAll(sig);
  }
}
