// Which manager a container's cgroup has, and the only door the runtime uses to get one: systemd's when it
// was asked for (and then recorded), cgroupfs otherwise. A test puts a fake driver (fake.ts) in their place.
import type { LinuxResources } from '../spec/types.gen.js';
import { CgroupfsManager } from './cgroupfs.js';
import { SystemdManager } from './systemd-manager.js';
import type { CgroupDriver, CgroupManager, CgroupPlacement, CgroupRecord, CgroupRequest, Layout, SystemdRecord } from './types.js';

/** The managers of this host's cgroup file systems and its systemd. */
export const hostCgroups: CgroupDriver = {
  place: (layout, req) => (req.systemd ? SystemdManager.place(layout, req) : CgroupfsManager.place(layout, req)),
  create: (layout, placement, resources) =>
    placement.req.systemd ? SystemdManager.create(layout, placement, resources) : CgroupfsManager.create(layout, placement, resources),
  load: record => (isSystemd(record) ? new SystemdManager(record) : new CgroupfsManager(record)),
};

function isSystemd(record: CgroupRecord): record is CgroupRecord & { systemd: SystemdRecord } {
  return record.systemd !== undefined;
}

let driver: CgroupDriver = hostCgroups;

/** Puts `d` in place of the host's managers (tests of lifecycle logic); returns the driver it replaced. */
export function useCgroupDriver(d: CgroupDriver): CgroupDriver {
  const old = driver;
  driver = d;
  return old;
}

/**
 * Where create will put the container, checked (cgroupsPath, systemd's annotations) without making anything;
 * systemd's manager root is the one thing asked of the host.
 */
export function placeCgroup(layout: Layout, req: CgroupRequest): CgroupPlacement {
  return driver.place(layout, req);
}

/** Makes the container's cgroup where placeCgroup put it and applies `resources`; on failure nothing made stays. */
export function createCgroup(layout: Layout, placement: CgroupPlacement, resources: LinuxResources | undefined): CgroupManager {
  return driver.create(layout, placement, resources);
}

/** The manager of a cgroup create made, from the record kept in the container's state. */
export function loadCgroup(record: CgroupRecord): CgroupManager {
  return driver.load(record);
}

/** Whether the container's cgroup is frozen (state says "paused"); without a directory it has no freezer. */
export function cgroupFrozen(record: CgroupRecord | undefined): boolean {
  return !!record?.dirs.length && loadCgroup(record).isFrozen();
}
