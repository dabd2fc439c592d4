// config.mounts -> ordered mount steps. Option words follow runc: known flags become mount attributes or
// propagation, recursive (r*) variants apply to the whole tree, anything else is passed to the filesystem.
import { RuntimeError } from '../errors.js';
import type { Mount } from '../spec/types.gen.js';
import type { HostFacts } from './facts.js';
import { ATTR, MS } from './linux.js';
import { MountFlag, type IdMapping, type PlanStep } from './types.js';
import * as path from 'node:path';

interface ParsedOptions {
  bind: boolean;
  recursive: boolean;
  attrSet: number;
  attrClr: number;
  attrRecursive: boolean;
  propagation: number;
  propagationRecursive: boolean;
  /** Left for the filesystem (fsconfig): mode=755, size=65536k, newinstance, and superblock flags. */
  data: string[];
}

const setFlags: Record<string, number> = {
  ro: ATTR.RDONLY,
  nosuid: ATTR.NOSUID,
  nodev: ATTR.NODEV,
  noexec: ATTR.NOEXEC,
  nodiratime: ATTR.NODIRATIME,
  nosymfollow: ATTR.NOSYMFOLLOW,
};
const clearFlags: Record<string, number> = {
  rw: ATTR.RDONLY,
  suid: ATTR.NOSUID,
  dev: ATTR.NODEV,
  exec: ATTR.NOEXEC,
  diratime: ATTR.NODIRATIME,
  symfollow: ATTR.NOSYMFOLLOW,
};
const atimeModes: Record<string, number> = {
  relatime: ATTR.RELATIME,
  noatime: ATTR.NOATIME,
  strictatime: ATTR.STRICTATIME,
};
const propagations: Record<string, [number, boolean]> = {
  private: [MS.PRIVATE, false],
  rprivate: [MS.PRIVATE, true],
  shared: [MS.SHARED, false],
  rshared: [MS.SHARED, true],
  slave: [MS.SLAVE, false],
  rslave: [MS.SLAVE, true],
  unbindable: [MS.UNBINDABLE, false],
  runbindable: [MS.UNBINDABLE, true],
};
/** Words that mean "default" or are handled elsewhere: accepted, no effect (as in runc). */
const ignoredWords = new Set(['defaults', 'remount', 'atime', 'norelatime', 'nostrictatime', 'loud', 'nofail']);

export function parseMountOptions(options: string[], where: string): ParsedOptions {
  const o: ParsedOptions = {
    bind: false, recursive: false, attrSet: 0, attrClr: 0, attrRecursive: false,
    propagation: 0, propagationRecursive: false, data: [],
  };
  for (const word of options) {
    if (word === 'bind' || word === 'rbind') {
      o.bind = true;
      o.recursive ||= word === 'rbind';
      continue;
    }
    // rro, rnosuid, ... : the recursive attribute variants.
    const recursiveAttr = word.length > 2 && word.startsWith('r') && (setFlags[word.slice(1)] !== undefined ||
      clearFlags[word.slice(1)] !== undefined || atimeModes[word.slice(1)] !== undefined) && word !== 'relatime';
    const flagWord = recursiveAttr ? word.slice(1) : word;
    if (recursiveAttr) o.attrRecursive = true;
    if (setFlags[flagWord] !== undefined) {
      o.attrSet |= setFlags[flagWord]!;
      o.attrClr &= ~setFlags[flagWord]!;
    } else if (clearFlags[flagWord] !== undefined) {
      o.attrClr |= clearFlags[flagWord]!;
      o.attrSet &= ~clearFlags[flagWord]!;
    } else if (atimeModes[flagWord] !== undefined) {
      o.attrSet = (o.attrSet & ~ATTR.ATIME_MASK) | atimeModes[flagWord]!;
      o.attrClr |= ATTR.ATIME_MASK;
    } else if (propagations[word]) {
      [o.propagation, o.propagationRecursive] = propagations[word]!;
    } else if (word === 'idmap' || word === 'ridmap') {
      throw new RuntimeError(`${where}: option "${word}": idmapped mounts are not supported`, { op: 'mount' });
    } else if (word === 'tmpcopyup') {
      throw new RuntimeError(`${where}: option "tmpcopyup" is a crun extension that tsrt does not support`, { op: 'mount' });
    } else if (ignoredWords.has(word)) {
      continue;
    } else {
      // Filesystem options and superblock flags (sync, dirsync, lazytime...), which fsconfig parses itself.
      o.data.push(word);
    }
  }
  return o;
}

export interface MountContext {
  bundle: string;
  facts: HostFacts;
  userns: boolean;
  newCgroupns: boolean;
  gidMappings: IdMapping[];
  /** The container's own cgroup per hierarchy mount point; without one, the runtime's own cgroup is shown. */
  cgroupDirs?: Record<string, string> | undefined;
}

function describe(m: Mount): string {
  return `mount ${JSON.stringify(m.source ?? m.type ?? '')} to rootfs at ${JSON.stringify(m.destination)}`;
}

function baseStep(dest: string): PlanStep {
  return {
    kind: 'fs', flags: 0, dest, attrSet: 0, attrClr: 0, propagation: 0, mode: 0, rdev: 0n, uid: 0, gid: 0,
  };
}

/** A gid= option naming a group the user namespace does not map cannot be honoured; runc drops it too. */
function dropUnmappedGid(data: string[], ctx: MountContext): string[] {
  if (!ctx.userns) return data;
  return data.filter(word => {
    const m = /^gid=(\d+)$/.exec(word);
    if (!m) return true;
    const gid = Number(m[1]);
    return ctx.gidMappings.some(r => gid >= r.containerID && gid < r.containerID + r.size);
  });
}

export function planMount(m: Mount, ctx: MountContext): PlanStep[] {
  const where = describe(m);
  if (!path.isAbsolute(m.destination)) {
    throw new RuntimeError(`${where}: mount destination must be an absolute path`, { op: 'mount', path: m.destination });
  }
  const dest = path.posix.normalize(m.destination);
  const opts = parseMountOptions(m.options ?? [], where);
  const isBind = opts.bind || m.type === 'bind';
  if (m.uidMappings?.length || m.gidMappings?.length) {
    throw new RuntimeError(`${where}: idmapped mounts (uidMappings/gidMappings) are not supported`, { op: 'mount' });
  }
  if (isBind) {
    if (!m.source) throw new RuntimeError(`${where}: bind mount without a source`, { op: 'mount' });
    const source = path.resolve(ctx.bundle, m.source);
    const dir = ctx.facts.isDirectory(source);
    if (dir === undefined) {
      throw new RuntimeError(`error mounting ${JSON.stringify(m.source)} to rootfs at ${JSON.stringify(m.destination)}: stat ${source}: no such file or directory`, { op: 'mount', path: source, errno: 'ENOENT' });
    }
    return [{
      ...baseStep(dest),
      kind: 'bind',
      source,
      // A fresh bind keeps the source's flags: only restrictions are added, never lifted (locked mounts in a
      // user namespace refuse that, and runc keeps them too). The atime mode is the exception.
      attrSet: opts.attrSet,
      attrClr: opts.attrClr & ATTR.ATIME_MASK,
      propagation: opts.propagation,
      flags: (opts.recursive ? MountFlag.recursive : 0) | (dir ? 0 : MountFlag.destFile) |
        (opts.attrRecursive ? MountFlag.attrRecursive : 0) |
        (opts.propagationRecursive ? MountFlag.propagationRecursive : 0),
    }];
  }
  const type = m.type;
  if (!type) throw new RuntimeError(`${where}: mount has no type`, { op: 'mount' });
  if (type === 'cgroup' || type === 'cgroup2') return planCgroupMount(m, dest, opts, ctx);

  const step: PlanStep = {
    ...baseStep(dest),
    kind: 'fs',
    fstype: type,
    source: m.source,
    data: dropUnmappedGid(opts.data, ctx).join(','),
    attrSet: opts.attrSet,
    attrClr: opts.attrClr & ATTR.ATIME_MASK,
    propagation: opts.propagation,
    flags: opts.propagationRecursive ? MountFlag.propagationRecursive : 0,
  };
  if (type === 'proc' || type === 'sysfs') step.flags |= MountFlag.procOrSys;
  // Without a network namespace of its own a user namespace may not mount sysfs (nor mqueue without an ipc
  // namespace): like runc, fall back to binding the host's, with the same restrictions.
  if (ctx.userns && type === 'sysfs') {
    // The host's /sys has cgroup mounts below it: their restrictions must hold in the whole bound tree.
    step.flags |= MountFlag.fallbackBind | MountFlag.attrRecursive;
    step.fallback = '/sys';
  } else if (ctx.userns && type === 'mqueue') {
    step.flags |= MountFlag.fallbackBind;
    step.fallback = '/dev/mqueue';
  }
  return [step];
}

/**
 * The cgroup filesystem as the container should see it. cgroup2 hosts get one cgroup2 mount; v1 and hybrid
 * hosts get a tmpfs with one mount per hierarchy (the container's own cgroup namespace view when it has one,
 * otherwise a read-only bind of its cgroup), plus the unified hierarchy on hybrid hosts.
 */
function planCgroupMount(m: Mount, dest: string, opts: ParsedOptions, ctx: MountContext): PlanStep[] {
  const { cgroup } = ctx.facts;
  const own = (mountPoint: string, ownPath: string | undefined): string =>
    ctx.cgroupDirs?.[mountPoint] ?? path.join(mountPoint, ownPath ?? '/');
  const restrict = (opts.attrSet | ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC) & ~ATTR.ATIME_MASK;
  const cgroupStep = (at: string, fstype: string, data: string, hostDir: string): PlanStep => {
    if (ctx.newCgroupns) {
      return { ...baseStep(at), kind: 'fs', fstype, source: fstype, data, attrSet: restrict };
    }
    // No cgroup namespace: show only the container's own cgroup, read-only (CVE-2023-25809 for rootless).
    return {
      ...baseStep(at), kind: 'bind', source: hostDir, flags: MountFlag.recursive,
      attrSet: restrict | (ctx.userns ? ATTR.RDONLY : 0),
    };
  };
  if (cgroup.layout === 'v2' || m.type === 'cgroup2') {
    const mp = cgroup.unifiedMountPoint ?? '/sys/fs/cgroup';
    return [cgroupStep(dest, 'cgroup2', '', own(mp, cgroup.unifiedOwnPath))];
  }
  const steps: PlanStep[] = [{
    ...baseStep(dest), kind: 'fs', fstype: 'tmpfs', source: 'tmpfs', data: 'mode=755',
    attrSet: ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC,
  }];
  for (const h of cgroup.v1) {
    const name = path.basename(h.mountPoint);
    steps.push(cgroupStep(path.join(dest, name), 'cgroup', h.options, own(h.mountPoint, h.ownPath)));
    // cpu -> cpu,cpuacct and friends, as the host has them.
    if (name.includes(',')) {
      for (const single of name.split(',')) {
        steps.push({ ...baseStep(path.join(dest, single)), kind: 'symlink', data: name });
      }
    }
  }
  if (cgroup.layout === 'hybrid' && cgroup.unifiedMountPoint) {
    steps.push(cgroupStep(path.join(dest, 'unified'), 'cgroup2', '', own(cgroup.unifiedMountPoint, cgroup.unifiedOwnPath)));
  }
  if (opts.attrSet & ATTR.RDONLY) steps.push({ ...baseStep(dest), kind: 'setattr', attrSet: ATTR.RDONLY });
  return steps;
}
