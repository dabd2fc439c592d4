// The container's systemd unit from "slice:prefix:name" of linux.cgroupsPath, named as runc names it (pure):
// what paths.ts needs to predict the unit's cgroup, without the D-Bus side of systemd.ts.
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';

/** Where the container's unit lives: "slice:prefix:name" of linux.cgroupsPath, resolved. */
export interface SystemdUnit {
  /** The parent slice ("system.slice", "-.slice"). */
  slice: string;
  /** "prefix-name.scope", or a slice unit when name ends in ".slice". */
  unit: string;
  /** The unit's cgroup below the manager's root: "/system.slice/tsrt-abc.scope". */
  cgroupPath: string;
}

export const SLICE = '.slice';

/**
 * A slice name as the cgroup path systemd gives it: each "-" nests, "a-b-c.slice" is
 * /a.slice/a-b.slice/a-b-c.slice; "-.slice" is the root slice.
 */
export function expandSlice(slice: string): string {
  const bad = (): never => {
    throw new RuntimeError(`invalid slice name: ${slice}`, { op: 'cgroup', path: '/linux/cgroupsPath' });
  };
  if (!slice.endsWith(SLICE) || slice.length <= SLICE.length || slice.includes('/')) bad();
  const base = slice.slice(0, -SLICE.length);
  if (base === '-') return '/';
  let out = '';
  let prefix = '';
  for (const part of base.split('-')) {
    if (part === '') bad();
    out += `/${prefix}${part}${SLICE}`;
    prefix += `${part}-`;
  }
  return out;
}

/**
 * cgroupsPath "slice:prefix:name" -> the unit. Empty parts take runc's defaults: system.slice (user.slice
 * unprivileged), prefix "tsrt", name the container id.
 */
export function systemdUnitOf(cgroupsPath: string | undefined, id: string, rootless: boolean): SystemdUnit {
  const parts = cgroupsPath ? cgroupsPath.split(':') : ['', '', ''];
  if (parts.length !== 3) {
    throw new RuntimeError(
      `expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got ${JSON.stringify(cgroupsPath)} instead`,
      { op: 'cgroup', path: '/linux/cgroupsPath' },
    );
  }
  const [sliceGiven, prefixGiven, nameGiven] = parts as [string, string, string];
  const slice = sliceGiven || (rootless ? 'user.slice' : 'system.slice');
  const name = nameGiven || id;
  if (name.includes('/')) {
    throw new RuntimeError(`invalid unit name ${JSON.stringify(name)} in cgroupsPath: it must not contain "/"`, {
      op: 'cgroup',
      path: '/linux/cgroupsPath',
    });
  }
  const sliceDir = expandSlice(slice);
  if (name.endsWith(SLICE)) {
    // A slice of its own: systemd places it by its name, the given parent only orders it (Wants=).
    return { slice, unit: name, cgroupPath: expandSlice(name) };
  }
  const unit = `${prefixGiven || 'tsrt'}-${name}.scope`;
  return { slice, unit, cgroupPath: path.posix.join(sliceDir, unit) };
}
