// config.mounts -> ordered mount steps. Option words follow runc: known flags become mount attributes or
// propagation, recursive (r*) variants apply to the whole tree, anything else is passed to the filesystem.
import { RuntimeError } from '../errors.js';
import type { Mount } from '../spec/types.gen.js';
import type { HostFacts } from './facts.js';
import { ATTR, MS } from './linux.js';
import { MountFlag, planStep, type IdMapping, type Idmap, type PlanStep } from './types.js';
import * as path from 'node:path';

/** Mount attributes to set and clear (MOUNT_ATTR_*), as mount_setattr takes them. */
interface Attrs {
  set: number;
  clr: number;
}

interface ParsedOptions {
  bind: boolean;
  recursive: boolean;
  /** ro, nosuid, relatime...: the mount itself. */
  attrs: Attrs;
  /** rro, rnosuid, rrelatime...: the mount and every mount below it (mount_setattr AT_RECURSIVE). */
  recursiveAttrs: Attrs;
  propagation: number;
  propagationRecursive: boolean;
  /** The idmap / ridmap option, if given (the last one wins). */
  idmap?: 'idmap' | 'ridmap';
  /** tmpcopyup: podman asks for it on the tmpfs mounts of --read-only containers (/run, /tmp, /var/tmp). */
  copyUp: boolean;
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
/** The recursive forms of the attribute words (runc's list): "r" + the word. */
const recursiveWords = new Set(
  [...Object.keys(setFlags), ...Object.keys(clearFlags), ...Object.keys(atimeModes), 'atime', 'norelatime', 'nostrictatime'].map(
    w => `r${w}`,
  ),
);

/** Every mount option word tsrt understands itself (filesystem data options excluded), for `features`. */
export function mountOptionWords(): string[] {
  return [
    'bind',
    'rbind',
    'idmap',
    'ridmap',
    'tmpcopyup',
    ...Object.keys(setFlags),
    ...Object.keys(clearFlags),
    ...Object.keys(atimeModes),
    ...Object.keys(propagations),
    ...ignoredWords,
    ...recursiveWords,
  ];
}

/** Applies one attribute word to a set/clear pair; false when the word is not an attribute. */
function applyAttr(a: Attrs, word: string): boolean {
  if (setFlags[word] !== undefined) {
    a.set |= setFlags[word]!;
    a.clr &= ~setFlags[word]!;
  } else if (clearFlags[word] !== undefined) {
    a.clr |= clearFlags[word]!;
    a.set &= ~clearFlags[word]!;
  } else if (atimeModes[word] !== undefined) {
    a.set = (a.set & ~ATTR.ATIME_MASK) | atimeModes[word]!;
    a.clr |= ATTR.ATIME_MASK;
  } else {
    return ignoredWords.has(word);
  }
  return true;
}

export function parseMountOptions(options: string[]): ParsedOptions {
  const o: ParsedOptions = {
    bind: false,
    recursive: false,
    attrs: { set: 0, clr: 0 },
    recursiveAttrs: { set: 0, clr: 0 },
    propagation: 0,
    propagationRecursive: false,
    data: [],
    copyUp: false,
  };
  for (const word of options) {
    if (word === 'bind' || word === 'rbind') {
      o.bind = true;
      o.recursive ||= word === 'rbind';
      continue;
    }
    if (recursiveWords.has(word)) {
      applyAttr(o.recursiveAttrs, word.slice(1));
    } else if (propagations[word]) {
      [o.propagation, o.propagationRecursive] = propagations[word]!;
    } else if (word === 'idmap' || word === 'ridmap') {
      o.idmap = word;
    } else if (word === 'tmpcopyup') {
      o.copyUp = true;
    } else if (!applyAttr(o.attrs, word)) {
      // Filesystem options and superblock flags (sync, dirsync, lazytime...), which fsconfig parses itself.
      o.data.push(word);
    }
  }
  return o;
}

/**
 * mounts[].uidMappings/gidMappings and the idmap/ridmap options -> the idmapped mount to make, if any. Maps
 * given make the mount idmapped; the options alone take the container's own user namespace maps.
 */
function planIdmap(m: Mount, opts: ParsedOptions, isBind: boolean, where: string, ctx: MountContext): Idmap | undefined {
  const given = !!(m.uidMappings?.length || m.gidMappings?.length);
  if (!given && !opts.idmap) return undefined;
  const fail = (why: string): never => {
    throw new RuntimeError(`${where}: ${why}`, { op: 'mount' });
  };
  if (!isBind) fail('idmapped mounts are only supported for bind mounts');
  if (ctx.facts.euid !== 0) fail('idmapped mounts need a root runtime');
  let uidMappings: IdMapping[];
  let gidMappings: IdMapping[];
  if (given) {
    if (!m.uidMappings?.length || !m.gidMappings?.length) fail('an idmapped mount needs both uidMappings and gidMappings');
    uidMappings = m.uidMappings!.map(x => ({ containerID: x.containerID, hostID: x.hostID, size: x.size }));
    gidMappings = m.gidMappings!.map(x => ({ containerID: x.containerID, hostID: x.hostID, size: x.size }));
  } else {
    if (!ctx.userns || ctx.uidMappings.length === 0)
      fail(`option "${opts.idmap}" without uidMappings/gidMappings needs the container's own user namespace mappings`);
    uidMappings = ctx.uidMappings;
    gidMappings = ctx.gidMappings;
  }
  for (const list of [uidMappings, gidMappings]) {
    if (list.length > 340) fail('too many id mappings for one user namespace (the kernel takes 340)');
    if (list.some(x => x.size < 1)) fail('an id mapping needs a size of at least 1');
  }
  return { uidMappings, gidMappings, recursive: opts.idmap === 'ridmap' };
}

export interface MountContext {
  bundle: string;
  facts: HostFacts;
  userns: boolean;
  newCgroupns: boolean;
  gidMappings: IdMapping[];
  /** The container's user namespace maps (for idmap without maps of its own). */
  uidMappings: IdMapping[];
  /** SELinux context for mounted filesystems; undefined when SELinux is off (the label is then ignored). */
  mountLabel?: string;
  /** The container's own cgroup per hierarchy mount point; without one, the runtime's own cgroup is shown. */
  cgroupDirs?: Record<string, string> | undefined;
  /** The container's rootfs on the host (resolved), to tell which host paths lie inside it. */
  rootfs?: string;
}

/** The attributes a mount and its tree get together; an atime mode given recursively wins. */
function mergedSet(o: ParsedOptions): number {
  const atime = o.recursiveAttrs.clr & ATTR.ATIME_MASK ? o.recursiveAttrs.set & ATTR.ATIME_MASK : o.attrs.set & ATTR.ATIME_MASK;
  return ((o.attrs.set | o.recursiveAttrs.set) & ~ATTR.ATIME_MASK) | atime;
}

function describe(m: Mount): string {
  return `mount ${JSON.stringify(m.source ?? m.type ?? '')} to rootfs at ${JSON.stringify(m.destination)}`;
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
  const opts = parseMountOptions(m.options ?? []);
  const isBind = opts.bind || m.type === 'bind';
  if (opts.copyUp && (isBind || m.type !== 'tmpfs')) {
    throw new RuntimeError(`${where}: option "tmpcopyup" is only valid for tmpfs mounts`, { op: 'mount' });
  }
  const idmap = planIdmap(m, opts, isBind, where, ctx);
  if (isBind) {
    if (!m.source) throw new RuntimeError(`${where}: bind mount without a source`, { op: 'mount' });
    const source = path.resolve(ctx.bundle, m.source);
    const dir = ctx.facts.isDirectory(source);
    if (dir === undefined) {
      throw new RuntimeError(
        `error mounting ${JSON.stringify(m.source)} to rootfs at ${JSON.stringify(m.destination)}: stat ${source}: no such file or directory`,
        { op: 'mount', path: source, errno: 'ENOENT' },
      );
    }
    // A fresh bind keeps the source's flags: only restrictions are added, never lifted (locked mounts in a
    // user namespace refuse that, and runc keeps them too). The atime mode is the exception.
    const keep = (a: Attrs): Attrs => ({ set: a.set, clr: a.clr & ATTR.ATIME_MASK });
    const own = keep(opts.attrs);
    const tree = keep(opts.recursiveAttrs);
    const hasOwn = own.set !== 0 || own.clr !== 0;
    const hasTree = tree.set !== 0 || tree.clr !== 0;
    // Only recursive attributes: one step that applies them to the whole tree. Both kinds: the mount's own
    // first, then the recursive ones over the tree, so "ro,rnosuid" leaves submounts writable.
    const first = hasOwn || !hasTree ? own : tree;
    const steps: PlanStep[] = [
      planStep('bind', dest, {
        source,
        attrSet: first.set,
        attrClr: first.clr,
        propagation: opts.propagation,
        flags:
          (opts.recursive ? MountFlag.recursive : 0) |
          (dir ? 0 : MountFlag.destFile) |
          (!hasOwn && hasTree ? MountFlag.attrRecursive : 0) |
          (opts.propagationRecursive ? MountFlag.propagationRecursive : 0),
      }),
    ];
    if (idmap) steps[0]!.idmap = idmap;
    if (hasOwn && hasTree) {
      steps.push(planStep('setattr', dest, { attrSet: tree.set, attrClr: tree.clr, flags: MountFlag.attrRecursive }));
    }
    return steps;
  }
  const type = m.type;
  if (!type) throw new RuntimeError(`${where}: mount has no type`, { op: 'mount' });
  if (type === 'cgroup' || type === 'cgroup2') return planCgroupMount(m, dest, opts, ctx);

  const step = planStep('fs', dest, {
    fstype: type,
    source: m.source,
    data: dropUnmappedGid(opts.data, ctx).join(','),
    // A new filesystem has no submounts yet: its own and its recursive attributes are the same thing.
    attrSet: mergedSet(opts),
    attrClr: (opts.attrs.clr | opts.recursiveAttrs.clr) & ATTR.ATIME_MASK,
    propagation: opts.propagation,
    flags: opts.propagationRecursive ? MountFlag.propagationRecursive : 0,
  });
  if (type === 'proc' || type === 'sysfs') step.flags |= MountFlag.procOrSys;
  // A label is a superblock property: proc and sysfs keep the kernel's own (as in runc).
  else if (ctx.mountLabel) step.flags |= MountFlag.mountLabel;
  if (opts.copyUp) step.flags |= MountFlag.copyUp;
  // As runc: a read-only tmpfs, or /dev of any type, is mounted writable and made read-only last, after the
  // console: mount points, device nodes and a copy-up have to be made in it first.
  const deferred: PlanStep[] = [];
  if (step.attrSet & ATTR.RDONLY && (type === 'tmpfs' || dest === '/dev')) {
    step.attrSet &= ~ATTR.RDONLY;
    const tree = opts.recursiveAttrs.set & ATTR.RDONLY ? MountFlag.attrRecursive : 0;
    deferred.push(planStep('setattr', dest, { attrSet: ATTR.RDONLY, flags: MountFlag.deferred | tree }));
  }
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
  return [...overlayDirsInsideRootfs(type, opts.data, ctx), step, ...deferred];
}

/**
 * An overlay's upperdir and workdir below the rootfs are created inside the container's mount namespace just
 * before the overlay is mounted, the way mount destinations are: they can then live on a filesystem an
 * earlier mount put on the rootfs (a size-limited tmpfs on "/" as a throwaway upper layer), which does not
 * exist on the host to create them in beforehand.
 */
function overlayDirsInsideRootfs(type: string, data: string[], ctx: MountContext): PlanStep[] {
  if (type !== 'overlay' || !ctx.rootfs) return [];
  const steps: PlanStep[] = [];
  for (const word of data) {
    const m = /^(upperdir|workdir)=(.+)$/.exec(word);
    if (!m) continue;
    const inside = path.relative(ctx.rootfs, path.resolve(m[2]!));
    if (inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) continue;
    steps.push(planStep('mkdir', path.posix.join('/', inside)));
  }
  return steps;
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
  const restrict = (mergedSet(opts) | ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC) & ~ATTR.ATIME_MASK;
  const cgroupStep = (at: string, fstype: string, data: string, hostDir: string): PlanStep => {
    if (ctx.newCgroupns) {
      return planStep('fs', at, { fstype, source: fstype, data, attrSet: restrict });
    }
    // No cgroup namespace: show only the container's own cgroup, read-only (CVE-2023-25809 for rootless).
    return planStep('bind', at, {
      source: hostDir,
      flags: MountFlag.recursive,
      attrSet: restrict | (ctx.userns ? ATTR.RDONLY : 0),
    });
  };
  if (cgroup.layout === 'v2' || m.type === 'cgroup2') {
    const mp = cgroup.unifiedMountPoint ?? '/sys/fs/cgroup';
    return [cgroupStep(dest, 'cgroup2', '', own(mp, cgroup.unifiedOwnPath))];
  }
  const steps: PlanStep[] = [
    planStep('fs', dest, {
      fstype: 'tmpfs',
      source: 'tmpfs',
      data: 'mode=755',
      attrSet: ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC,
    }),
  ];
  for (const h of cgroup.v1) {
    const name = path.basename(h.mountPoint);
    steps.push(cgroupStep(path.join(dest, name), 'cgroup', h.options, own(h.mountPoint, h.ownPath)));
    // cpu -> cpu,cpuacct and friends, as the host has them.
    if (name.includes(',')) {
      for (const single of name.split(',')) {
        steps.push(planStep('symlink', path.join(dest, single), { data: name }));
      }
    }
  }
  if (cgroup.layout === 'hybrid' && cgroup.unifiedMountPoint) {
    steps.push(cgroupStep(path.join(dest, 'unified'), 'cgroup2', '', own(cgroup.unifiedMountPoint, cgroup.unifiedOwnPath)));
  }
  if (mergedSet(opts) & ATTR.RDONLY) steps.push(planStep('setattr', dest, { attrSet: ATTR.RDONLY }));
  return steps;
}
