// Where a container's cgroup lives in each hierarchy (pure). The layout comes from host facts (mountinfo and
// /proc/self/cgroup); cgroupsPath follows runc: absolute is taken under each hierarchy's root, relative (and
// the default, the container id) under the runtime's own cgroup, and "slice:prefix:name" only for systemd.
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import { systemdUnitOf } from './systemd-unit.js';
import { UNIFIED, type CgroupPathRequest, type HierarchyDir, type Layout } from './types.js';

/** runc's CleanPath: lexical clean, and a relative path can never climb above its start. */
export function cleanCgroupPath(p: string): string {
  if (p === '') return '';
  if (path.posix.isAbsolute(p)) return path.posix.normalize(p).replace(/(.)\/$/, '$1');
  const rooted = path.posix.normalize(`/${p}`);
  return rooted === '/' ? '' : rooted.slice(1).replace(/\/$/, '');
}

/** The controllers a v1 hierarchy key names (name=systemd names none). */
export function controllersOf(key: string): string[] {
  return key === UNIFIED ? [] : key.split(',').filter(c => !c.startsWith('name='));
}

/** The systemd manager is only for hosts where systemd runs (runc's message otherwise). */
export function requireSystemd(req: CgroupPathRequest): void {
  if (!req.systemdRunning) throw new RuntimeError('systemd not running on this host, cannot use systemd cgroups manager', { op: 'cgroup' });
}

/**
 * The container's directory in every hierarchy of the layout. With the systemd manager a cgroupsPath must be
 * "slice:prefix:name", and the unit's cgroup is the same path below the manager's root in every hierarchy;
 * without systemd running that manager cannot be used at all (runc's message).
 */
export function cgroupDirs(layout: Layout, req: CgroupPathRequest): HierarchyDir[] {
  if (req.systemd) {
    requireSystemd(req);
    const unit = systemdUnitOf(req.cgroupsPath, req.id, !!req.rootless);
    const below = path.posix.join('/', req.systemdRoot ?? '/', unit.cgroupPath);
    const dirs = layout.v1.map(h => ({ key: h.options, mountPoint: h.mountPoint, dir: path.posix.join(h.mountPoint, below) }));
    if (layout.unifiedMountPoint)
      dirs.push({ key: UNIFIED, mountPoint: layout.unifiedMountPoint, dir: path.posix.join(layout.unifiedMountPoint, below) });
    return dirs;
  }
  const inner = cleanCgroupPath(req.cgroupsPath ?? '') || req.id;
  if (inner === '/') {
    throw new RuntimeError('config.json: /linux/cgroupsPath: "/" is the root cgroup of the host, not a container cgroup', {
      op: 'config.json',
      path: '/linux/cgroupsPath',
    });
  }
  const absolute = path.posix.isAbsolute(inner);
  const out: HierarchyDir[] = [];
  for (const h of layout.v1) {
    out.push({ key: h.options, mountPoint: h.mountPoint, dir: path.posix.join(h.mountPoint, absolute ? '' : h.ownPath, inner) });
  }
  if (layout.unifiedMountPoint) {
    // A relative cgroup goes next to our own, not under it: on cgroup2 a cgroup with processes cannot hand
    // controllers to children (runc does the same).
    const base = absolute ? '' : path.posix.dirname(layout.unifiedOwnPath ?? '/');
    out.push({ key: UNIFIED, mountPoint: layout.unifiedMountPoint, dir: path.posix.join(layout.unifiedMountPoint, base, inner) });
  }
  return out;
}
