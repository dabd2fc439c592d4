// Where a container's cgroup lives in each hierarchy (pure). The layout comes from host facts (mountinfo and
// /proc/self/cgroup); cgroupsPath follows runc: absolute is taken under each hierarchy's root, relative (and
// the default, the container id) under the runtime's own cgroup, and "slice:prefix:name" only for systemd.
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import type { HostFacts } from '../plan/facts.js';

export type Layout = HostFacts['cgroup'];

/** One hierarchy the container gets a directory in. */
export interface HierarchyDir {
  /** "cpu,cpuacct", "memory", "name=systemd" for v1 hierarchies; "unified" for cgroup2. */
  key: string;
  /** Where the hierarchy is mounted on the host. */
  mountPoint: string;
  /** The container's directory in it (absolute host path). */
  dir: string;
}

export const UNIFIED = 'unified';

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

export interface CgroupPathRequest {
  cgroupsPath?: string | undefined;
  id: string;
  /** --systemd-cgroup or --cgroup-manager=systemd */
  systemd: boolean;
  /** Whether systemd is pid 1 on this host (/run/systemd/system exists). */
  systemdRunning: boolean;
}

/**
 * The container's directory in every hierarchy of the layout. With the systemd manager a cgroupsPath must be
 * "slice:prefix:name"; without systemd running that manager cannot be used at all (runc's message).
 */
export function cgroupDirs(layout: Layout, req: CgroupPathRequest): HierarchyDir[] {
  if (req.systemd) {
    if (!req.systemdRunning) {
      throw new RuntimeError('systemd not running on this host, cannot use systemd cgroups manager', { op: 'cgroup' });
    }
    if (req.cgroupsPath !== undefined && req.cgroupsPath !== '' && req.cgroupsPath.split(':').length !== 3) {
      throw new RuntimeError(`expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got ${JSON.stringify(req.cgroupsPath)} instead`, { op: 'cgroup', path: '/linux/cgroupsPath' });
    }
    throw new RuntimeError('the systemd cgroup manager (D-Bus) is not supported by this tsrt build; use the cgroupfs manager', { op: 'cgroup' });
  }
  const inner = cleanCgroupPath(req.cgroupsPath ?? '') || req.id;
  if (inner === '/') {
    throw new RuntimeError('config.json: /linux/cgroupsPath: "/" is the root cgroup of the host, not a container cgroup', { op: 'config.json', path: '/linux/cgroupsPath' });
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
