// What the spec builder (spec.ts) knows about the world, gathered in one place before it runs: the host (the
// calling user, their working directory, umask and environment, the site configuration, which of the site's
// binds exist, the host filesystems, GPU libraries, /etc/group and the subordinate id ranges) and the image
// (its passwd and group files, apps, whether it has /bin/sh, which paths exist in it). Everything that reads the
// machine is here; spec.ts is a function of these facts, so test/unit/singularity-spec.test.ts replaces them.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Mount } from '../index.js';
import { passwdEntry, type PasswdEntry } from '../passwd.js';
import { inRootfs } from './build/layout.js';
import { environmentOverrides } from './environment.js';
import { gpuMounts } from './gpu.js';
import type { ResolvedImage } from './image.js';
import type { ActionOptions, BindSpec } from './options.js';
import type { SiteConfig } from './siteconfig.js';
import { shareGroup } from './sharens.js';
import { hostfsPoints, siteBinds } from './sitepolicy.js';

/** The user running the session, as their passwd entry (or the environment) says. */
export type HostUser = PasswdEntry;

export interface IdRange {
  start: number;
  count: number;
}

export interface HostFacts {
  user: HostUser;
  /** The working directory the command was started in. */
  cwd: string;
  umask: number;
  /** The environment the container's is made from (and SINGULARITYENV_/APPTAINERENV_ taken from). */
  env: NodeJS.ProcessEnv;
  site: SiteConfig;
  /** The host's /etc/group lines. */
  groupLines: string[];
  /** The user's /etc/subuid and /etc/subgid ranges, for --fakeroot's id maps. */
  subuid?: IdRange;
  subgid?: IdRange;
  /** The site's `bind path` (and resolv.conf) sources that exist here, resolved, and whether each is a directory. */
  siteBinds: (BindSpec & { directory: boolean })[];
  /** `mount hostfs`: the host's top-level mount points that would be bound (empty when the site says no). */
  hostfsPoints: string[];
  /** --nv/--rocm: the driver libraries, programs and (with --contain) devices found here. */
  gpuMounts: Mount[];
  /** The group whose ranks share a user namespace with this container (sharens.ts), if any. */
  shareGroup?: string;
  /** SINGULARITYENV_*, --env-file and --env, in increasing precedence, invalid names dropped. */
  envOverrides: [string, string][];
  /** Whether a host path exists (a bind or home source). */
  exists(p: string): boolean;
}

export interface ImageFacts {
  /** The path the user gave, made absolute (SINGULARITY_CONTAINER). */
  path: string;
  kind: ResolvedImage['kind'];
  /** The directory holding the image's root filesystem. */
  rootfs: string;
  /** The image's /etc/passwd and /etc/group lines. */
  passwd: string[];
  group: string[];
  /** Whether /bin/sh exists (maybe as a symlink): the action scripts need it. */
  hasShell: boolean;
  apps: string[];
  /** Whether a path exists under the image's root, as the host resolves it. */
  exists(p: string): boolean;
  /** Whether a path exists in the image with its symlinks resolved inside the image (what a mount would reach). */
  existsInRoot(p: string): boolean;
}

/** A --overlay as the session made it available: a directory (an overlay image is mounted first). */
export interface OverlayFacts {
  dir: string;
  readonly: boolean;
  /** Whether the directory has an upper/ (a persistent overlay's layout) or is itself the layer. */
  hasUpper: boolean;
}

function readLines(file: string): string[] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(l => l !== '');
  } catch {
    return [];
  }
}

export function hostUser(): HostUser {
  const uid = process.getuid!();
  const gid = process.getgid!();
  const info = os.userInfo();
  const entry = passwdEntry(uid);
  // The passwd entry first: os.userInfo() in a Bun executable answers from $USER, which may be unset.
  return {
    name: entry?.name || process.env['USER'] || info.username,
    uid,
    gid,
    gecos: entry?.gecos ?? '',
    home: process.env['HOME'] || entry?.home || info.homedir,
    shell: entry?.shell || '/bin/sh',
  };
}

function subidRange(file: string, u: HostUser): IdRange | undefined {
  for (const line of readLines(file)) {
    const [who, start, count] = line.split(':');
    if ((who === u.name || who === String(u.uid)) && start && count) return { start: Number(start), count: Number(count) };
  }
  return undefined;
}

/** The host's answers for one launch; warnings (site binds, GPU drivers, environment names) are said here. */
export function gatherHostFacts(o: ActionOptions, site: SiteConfig, warn: (m: string) => void): HostFacts {
  const user = hostUser();
  const binds = siteBinds(site, o.contain, warn).map(b => ({ ...b, directory: fs.statSync(b.source).isDirectory() }));
  const gpu = gpuMounts({ nv: o.nv, rocm: o.rocm, contain: o.contain, warn });
  return {
    user,
    cwd: process.cwd(),
    umask: process.umask(),
    env: process.env,
    site,
    groupLines: readLines('/etc/group'),
    subuid: subidRange('/etc/subuid', user),
    subgid: subidRange('/etc/subgid', user),
    siteBinds: binds,
    hostfsPoints: hostfsPoints(site),
    gpuMounts: gpu,
    envOverrides: environmentOverrides(process.env, o, warn),
    shareGroup: shareGroup(o.sharens),
    exists: p => fs.existsSync(p),
  };
}

export function listApps(rootfs: string): string[] {
  try {
    return fs.readdirSync(path.join(rootfs, 'scif', 'apps')).sort();
  } catch {
    return [];
  }
}

export function imageFacts(image: ResolvedImage): ImageFacts {
  const root = image.rootfs;
  return {
    path: image.path,
    kind: image.kind,
    rootfs: root,
    passwd: readLines(path.join(root, 'etc/passwd')),
    group: readLines(path.join(root, 'etc/group')),
    hasShell: !!fs.lstatSync(path.join(root, 'bin/sh'), { throwIfNoEntry: false }),
    apps: listApps(root),
    exists: p => fs.existsSync(path.join(root, p)),
    existsInRoot: p => fs.existsSync(inRootfs(root, p)),
  };
}
