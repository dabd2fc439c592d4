// What the site configuration (siteconfig.ts) does to one container, in Singularity's words: which images may
// run (limit container paths/owners/groups, allow container TYPE), which of the user's binds are taken (user bind
// control, mount home, mount tmp), whether an overlay may be used (enable overlay), what the site binds into
// every container (bind path, config resolv_conf, mount hostfs), and which memory filesystem backs the
// container's scratch space (memory fs type). Everything here removes or adds mounts; nothing grants a right.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Mount, Spec } from '../index.js';
import { FsType, SifImage } from '../sif/index.js';
import { inspectImage } from '../sif/mount.js';
import type { ActionOptions, BindSpec } from './options.js';
import { type SiteConfig, SiteConfigError } from './siteconfig.js';
import { RuntimeError } from '../errors.js';

interface Reporter {
  warn(m: string): void;
  info(m: string): void;
}

type ContainerType = 'sif' | 'squashfs' | 'extfs' | 'dir' | 'encrypted';

const TYPE_WORDS: Record<ContainerType, string> = {
  sif: 'unencrypted SIF',
  squashfs: 'squashFS',
  extfs: 'extFS',
  dir: 'sandbox',
  encrypted: 'encrypted SIF',
};

function containerType(file: string, st: fs.Stats): ContainerType {
  if (st.isDirectory()) return 'dir';
  if (SifImage.isSif(file)) {
    const sif = SifImage.open(file);
    try {
      return sif.primaryPartition()?.partition?.fsType === FsType.EncryptedSquashfs ? 'encrypted' : 'sif';
    } finally {
      sif.close();
    }
  }
  return inspectImage(file).kind === 'ext3' ? 'extfs' : 'squashfs';
}

/** The ids of the named users or groups (from /etc/passwd or /etc/group); an unknown name is a config error. */
function idsOf(names: string[], db: '/etc/passwd' | '/etc/group', c: SiteConfig): number[] {
  let lines: string[] = [];
  try {
    lines = fs.readFileSync(db, 'utf8').split('\n');
  } catch {
    /* every name is unknown */
  }
  return names.map(name => {
    const f = lines.map(l => l.split(':')).find(e => e[0] === name);
    if (!f)
      throw new SiteConfigError(
        `${c.file}: ${db === '/etc/passwd' ? 'user' : 'group'} ${JSON.stringify(name)} of a "limit container" line does not exist`,
      );
    return Number(f[2]);
  });
}

/** A listed directory as it resolves on this host (one that does not exist holds no image either way). */
function realpathOrSelf(p: string): string {
  try {
    return fs.realpathSync(path.resolve(p));
  } catch {
    return path.resolve(p);
  }
}

function isBelow(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * limit container paths/owners/groups and allow container TYPE for the image about to run. The image is
 * checked as opened (its resolved path and owner from the fd), as Apptainer does. Root is exempt, as there.
 */
export function checkImageAllowed(c: SiteConfig, image: string): void {
  const limited = c.limitContainerPaths.length || c.limitContainerOwners.length || c.limitContainerGroups.length;
  if (process.geteuid?.() === 0 || (!limited && Object.values(c.allowContainer).every(Boolean))) return;
  let fd: number;
  try {
    // Non-blocking: a FIFO named as the image must not hang the check.
    fd = fs.openSync(image, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return; // not there: resolving the image reports that
  }
  try {
    const real = fs.readlinkSync(`/proc/self/fd/${fd}`);
    const st = fs.fstatSync(fd);
    if (c.limitContainerPaths.length && !c.limitContainerPaths.some(p => isBelow(real, realpathOrSelf(p)))) {
      throw new RuntimeError(`${real} is not in an allowed configured path (limit container paths in ${c.file})`, {
        op: 'image',
        path: real,
      });
    }
    if (c.limitContainerOwners.length && !idsOf(c.limitContainerOwners, '/etc/passwd', c).includes(st.uid)) {
      throw new RuntimeError(`${real} is not owned by required user(s) (limit container owners in ${c.file})`, { op: 'image', path: real });
    }
    if (c.limitContainerGroups.length && !idsOf(c.limitContainerGroups, '/etc/group', c).includes(st.gid)) {
      throw new RuntimeError(`${real} is not owned by required group(s) (limit container groups in ${c.file})`, {
        op: 'image',
        path: real,
      });
    }
    const type = containerType(real, st);
    if (!c.allowContainer[type])
      throw new RuntimeError(
        `configuration disallows users from running ${TYPE_WORDS[type]} containers (allow container ${type} = no in ${c.file})`,
        { op: 'image', path: real },
      );
  } finally {
    fs.closeSync(fd);
  }
}

const BY_ADMIN = 'user bind control is disabled by the system administrator';

/** The action options as the site allows them; what is dropped is said (a warning, or verbose for scratch). */
export function restrictOptions(c: SiteConfig, given: ActionOptions, r: Reporter): ActionOptions {
  const o: ActionOptions = { ...given, binds: [...given.binds], noMount: new Set(given.noMount), scratch: [...given.scratch] };
  if (!c.userBindControl) {
    if (o.home)
      throw new RuntimeError(`not mounting the requested home ${o.home.source}: ${BY_ADMIN}`, { op: 'home', path: o.home.source });
    for (const b of o.binds) r.warn(`Ignoring ${b.source} bind mount: ${BY_ADMIN}`);
    o.binds = [];
    if (o.scratch.length) r.info(`Not mounting scratch: ${BY_ADMIN}`);
    o.scratch = [];
    if (o.workdir) r.warn(`Ignoring --workdir ${o.workdir}: ${BY_ADMIN}`);
    delete o.workdir;
    if (!o.contain && !o.noMount.has('cwd')) r.warn(`Not mounting current directory: ${BY_ADMIN}`);
    o.noMount.add('cwd');
    if (o.nv || o.rocm) r.warn(`Ignoring libraries bind request: ${BY_ADMIN}`);
    o.nv = o.rocm = false;
  }
  if (!c.mountHome && !o.home) {
    r.info(`Skipping home directory mount (mount home = no in ${c.file})`);
    o.noHome = true;
  }
  if (!c.mountTmp) o.noMount.add('tmp');
  if (c.enableOverlay === 'no') {
    const wanted = o.writableTmpfs ? '--writable-tmpfs' : o.overlays.length ? '--overlay' : undefined;
    if (wanted)
      throw new RuntimeError(`${wanted} needs an overlay, and the site disabled them (enable overlay = no in ${c.file})`, {
        op: 'overlay',
      });
  }
  return o;
}

/**
 * The host paths the site binds into every container: `bind path` entries (with --contain only /etc/hosts and
 * /etc/localtime of them, as in Singularity) and /etc/resolv.conf under `config resolv_conf`. Sources that do
 * not exist are skipped, with a warning for the administrator's own entries.
 */
export function siteBinds(c: SiteConfig, contain: boolean, warn: (m: string) => void): BindSpec[] {
  const out: BindSpec[] = [];
  for (const b of c.bindPath) {
    if (contain && b.destination !== '/etc/hosts' && b.destination !== '/etc/localtime') continue;
    if (!fs.existsSync(b.source)) {
      if (c.present) warn(`Skipping bind path ${b.source}: it does not exist on this host (${c.file})`);
      continue;
    }
    out.push({ ...b, source: fs.realpathSync(b.source) });
  }
  if (c.configResolvConf && fs.existsSync('/etc/resolv.conf'))
    out.push({ source: fs.realpathSync('/etc/resolv.conf'), destination: '/etc/resolv.conf', readonly: true });
  return out;
}

/** Mount points under which `mount hostfs` does not look, as in Singularity (kernel and per-boot trees). */
const HOSTFS_SKIPPED = ['/proc', '/sys', '/dev', '/run', '/boot', '/var'];

/**
 * mount hostfs: every host filesystem mounted directly on the root filesystem (from /proc/self/mountinfo), at
 * the same path, except those under HOSTFS_SKIPPED; none when the site does not ask for them.
 */
export function hostfsPoints(c: SiteConfig): string[] {
  if (!c.mountHostfs) return [];
  const entries = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(l => l !== '')
    .map(l => {
      const f = l.split(' ');
      // Mount points escape space, tab, newline and backslash as octal.
      return { id: f[0]!, parent: f[1]!, point: f[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))) };
    });
  const root = [...entries].reverse().find(e => e.point === '/');
  if (!root) return [];
  return entries
    .filter(e => e.parent === root.id && e.point !== '/' && !HOSTFS_SKIPPED.some(s => isBelow(e.point, s)) && fs.existsSync(e.point))
    .map(e => e.point);
}

/** The hostfs binds for the mount points whose destinations are not taken yet (each once). */
export function hostfsMounts(points: string[], taken: Set<string>): Mount[] {
  const out: Mount[] = [];
  for (const point of points) {
    if (taken.has(point)) continue;
    taken.add(point);
    out.push({ destination: point, type: 'bind', source: point, options: ['rbind', 'nosuid', 'nodev'] });
  }
  return out;
}

/**
 * The spec's mounts as the site wants them. Under `enable overlay = no` the image itself is the (read-only)
 * root, so nothing can be created in it: a mount whose destination the image lacks is skipped with a warning,
 * as Singularity does without overlay (and underlay), and a working directory that is then missing becomes /.
 * Under `memory fs type = ramfs` the container's memory filesystems are ramfs (which ignores size= options).
 */
export function applyMountPolicy(
  c: SiteConfig,
  spec: Spec,
  existsInRoot: (p: string) => boolean,
  overlayRoot: boolean,
  warn: (m: string) => void,
): void {
  let mounts = spec.mounts ?? [];
  if (c.enableOverlay === 'no' && !overlayRoot) {
    mounts = mounts.filter(m => {
      if (m.destination === '/' || existsInRoot(m.destination)) return true;
      warn(
        `Skipping mount of ${m.source ?? m.type} on ${m.destination}: it does not exist in the image, and overlays are disabled (enable overlay = no in ${c.file})`,
      );
      return false;
    });
    const cwd = spec.process?.cwd ?? '/';
    if (!mounts.some(m => isBelow(cwd, m.destination)) && !existsInRoot(cwd)) spec.process!.cwd = '/';
  }
  if (c.memoryFsType === 'ramfs') mounts = mounts.map(m => (m.type === 'tmpfs' ? { ...m, type: 'ramfs', source: 'ramfs' } : m));
  spec.mounts = mounts;
}
