// The core of the action commands: an image plus Singularity's options becomes an OCI spec (native-mode
// defaults, asserted one by one in test/singularity/run-actions.test.ts), written as a bundle in a per-run
// session directory and run in-process with the tsrt library, unprivileged, in a user namespace.
//
// The image is never written to (except with --writable): the root is an overlay whose lower layer is the
// image and whose upper layer is the session's (or the writable --overlay's). Mount points for $HOME, $PWD and
// binds are created in that upper layer, so read-only images need no pre-made directories.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { passwdEntry, type PasswdEntry } from '../passwd.js';
import { run as runContainer } from '../runtime/run.js';
import type { Mount, Spec } from '../spec/types.gen.js';
import { specTemplate } from '../spec/template.js';
import { actionScript, baseEnvironment, environmentOverrides, type Action } from './environment.js';
import { gpuMounts } from './gpu.js';
import { resolveImage, type ResolvedImage } from './image.js';
import type { ActionOptions } from './options.js';
import { acquireOverlayLock } from './overlay-lock.js';
import { mountImage } from '../sif/mount.js';
import { siteConfig } from './siteconfig.js';
import { addNetwork, networkPlan, resolvConf } from './network.js';
import { shareGroup, shareUserNamespace } from './sharens.js';
import { applyMountPolicy, checkImageAllowed, hostfsMounts, restrictOptions, siteBinds } from './sitepolicy.js';
import { openPrivateDir, verifiedRuntimeDir, type PrivateDir } from '../private-dir.js';

export const PROMPT = 'Singularity> ';

const NO_RUNTIME_DIR = 'tsrt-singularity keeps its sessions and instances in $XDG_RUNTIME_DIR/tsrt-singularity: set XDG_RUNTIME_DIR to a directory of yours with mode 0700 (a login session has /run/user/<uid>)';

let runtime: PrivateDir | undefined;

/**
 * $XDG_RUNTIME_DIR/tsrt-singularity: sessions, tsrt state and instances. Both verified (R9: the caller's own,
 * not writable by others, reached only through directories root or the caller controls), so no one else can
 * plant or swap a session's config.json or an instance record there. There is no fallback: a fixed
 * name in /tmp is one any other user can make first.
 */
export function runtimeDir(): string {
  runtime ??= openPrivateDir(path.join(runtimeParent(), 'tsrt-singularity'), {
    what: 'runtime directory', create: true, trustedPath: true, fix: 'remove it, or use another XDG_RUNTIME_DIR',
  });
  return runtime.path;
}

/**
 * Root without a login session (a batch job's prolog, cron, sudo) has /run, which only root can write, as runc
 * and tsrt itself do; everyone else needs their own $XDG_RUNTIME_DIR.
 */
function runtimeParent(): string {
  if (process.geteuid!() === 0 && !process.env['XDG_RUNTIME_DIR']) return '/run';
  return verifiedRuntimeDir(process.env, NO_RUNTIME_DIR);
}

export function stateRoot(): string {
  return path.join(runtimeDir(), 'tsrt');
}

/** The user running the session, as their passwd entry (or the environment) says. */
export type HostUser = PasswdEntry;

export function hostUser(): HostUser {
  const uid = process.getuid!();
  const gid = process.getgid!();
  const info = os.userInfo();
  const entry = passwdEntry(uid);
  // The passwd entry first: os.userInfo() in a Bun executable answers from $USER, which may be unset.
  return {
    name: entry?.name || process.env['USER'] || info.username, uid, gid, gecos: entry?.gecos ?? '',
    home: process.env['HOME'] || entry?.home || info.homedir, shell: entry?.shell || '/bin/sh',
  };
}

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(l => l !== '');
  } catch {
    return [];
  }
}

/** The image's /etc/passwd with the calling user's line (rewritten, keeping the image's shell, if the uid exists). */
export function passwdFor(imagePasswd: string[], u: HostUser, home: string): string {
  let shell = u.shell;
  const kept = imagePasswd.filter(l => {
    const f = l.split(':');
    if (f[2] === String(u.uid) || f[0] === u.name) {
      if (f[2] === String(u.uid) && f[6]) shell = f[6];
      return false;
    }
    return true;
  });
  kept.push([u.name, 'x', u.uid, u.gid, u.gecos, home, shell].join(':'));
  return `${kept.join('\n')}\n`;
}

/** The image's /etc/group plus the user's primary group and a line per host group the user belongs to. */
export function groupFor(imageGroup: string[], hostGroup: string[], u: HostUser): string {
  const mine = hostGroup.map(l => l.split(':')).filter(f => f[2] === String(u.gid) || (f[3] ?? '').split(',').includes(u.name));
  const gids = new Set(mine.map(f => f[2]));
  const kept = imageGroup.filter(l => !gids.has(l.split(':')[2]));
  for (const f of mine) kept.push(`${f[0]}:x:${f[2]}:${f[2] === String(u.gid) ? '' : u.name}`);
  if (!gids.has(String(u.gid))) kept.push(`${u.name}:x:${u.gid}:`);
  return `${kept.join('\n')}\n`;
}

/** Host directories that an image always has and that must not be covered by a bind of the cwd. */
const SYSTEM_DIRS = ['/', '/bin', '/boot', '/dev', '/etc', '/lib', '/lib64', '/opt', '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/usr', '/var'];

function isBelow(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

function bind(source: string, destination: string, readonly = false, recursive = true): Mount {
  const options = [recursive ? 'rbind' : 'bind', 'nosuid', 'nodev'];
  if (readonly) options.push('ro');
  return { destination, type: 'bind', source, options };
}

function subuidRange(file: string, u: HostUser): { start: number; count: number } | undefined {
  for (const line of readLines(file)) {
    const [who, start, count] = line.split(':');
    if ((who === u.name || who === String(u.uid)) && start && count) return { start: Number(start), count: Number(count) };
  }
  return undefined;
}

export interface Session {
  dir: string;
  id: string;
  spec: Spec;
  image: ResolvedImage;
  /** Overlay locks and image mounts, undone in reverse order when the session ends. */
  releases: (() => void)[];
}

export interface LaunchRequest {
  image: string;
  action: Action;
  /** The command (exec) or the arguments (run, test, shell, start). */
  args: string[];
  options: ActionOptions;
  warn: (m: string) => void;
  info: (m: string) => void;
  /** Container id; a fresh one when not given. */
  id?: string;
  extraEnv?: Record<string, string>;
}

function writeFile(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text, { mode: 0o644 });
  return file;
}

/** Builds the session directory and the OCI spec for one container. The caller runs it and cleans up. */
export function prepare(given: LaunchRequest): Session {
  const site = siteConfig();
  checkImageAllowed(site, given.image);
  const req = { ...given, options: restrictOptions(site, given.options, given) };
  const image = resolveImage(req.image, req.info);
  const releases: (() => void)[] = [() => image.release()];
  try {
    return prepareWith(req, image, releases);
  } catch (e) {
    for (const release of releases.reverse()) release();
    throw e;
  }
}

function prepareWith(req: LaunchRequest, image: ResolvedImage, releases: (() => void)[]): Session {
  const o = req.options;
  if (o.app && !fs.existsSync(path.join(image.rootfs, 'scif', 'apps', o.app))) {
    throw new Error(`no app ${JSON.stringify(o.app)} in ${image.path} (it has: ${listApps(image.rootfs).join(', ') || 'none'})`);
  }
  if (o.writable && image.kind !== 'sandbox') {
    throw new Error(`--writable needs a sandbox directory; ${image.path} is a read-only ${image.kind} image (use --writable-tmpfs or --overlay)`);
  }
  if (o.writable && (o.writableTmpfs || o.overlays.length)) throw new Error('--writable cannot be combined with --writable-tmpfs or --overlay');
  const id = req.id ?? `sing-${process.pid}-${randomBytes(4).toString('hex')}`;
  const dir = path.join(runtimeDir(), 'sessions', id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    const spec = buildSpec(req, image, dir, releases);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2));
    return { dir, id, spec, image, releases };
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

export function listApps(rootfs: string): string[] {
  try {
    return fs.readdirSync(path.join(rootfs, 'scif', 'apps')).sort();
  } catch {
    return [];
  }
}

/** Where --contain's fresh /tmp, /var/tmp, home and --scratch dirs live: --workdir, else the session. */
function backingDir(o: ActionOptions, session: string, name: string): string {
  const base = o.workdir ? path.resolve(o.workdir) : path.join(session, 'contained');
  const dir = path.join(base, name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** An overlay directory as given, or an overlay image (ext3) mounted by the SIF library where the host allows. */
function overlayDirectory(file: string, readonly: boolean, info: (m: string) => void, releases: (() => void)[]): string {
  if (!fs.existsSync(file)) throw new Error(`overlay ${file}: no such file or directory`);
  if (fs.statSync(file).isDirectory()) return file;
  try {
    const m = mountImage(file, { writable: !readonly, log: info });
    releases.push(() => m.release());
    return m.dir;
  } catch (e) {
    throw new Error(`overlay image ${file} cannot be mounted here (${(e as Error).message}); without root, use a directory overlay`);
  }
}

function overlayLayout(dir: string, readonly: boolean): { upper: string; work: string } {
  const upper = path.join(dir, 'upper');
  const work = path.join(dir, 'work');
  if (!readonly) {
    fs.mkdirSync(upper, { recursive: true });
    fs.mkdirSync(work, { recursive: true });
  }
  return { upper: fs.existsSync(upper) ? upper : dir, work };
}

/** Singularity's default `sessiondir max size` (singularity.conf): what --writable-tmpfs can hold. */
const SESSION_TMPFS_SIZE = '64m';

function buildSpec(req: LaunchRequest, image: ResolvedImage, session: string, releases: (() => void)[]): Spec {
  const o = req.options;
  const site = siteConfig();
  const u = hostUser();
  const fakeroot = o.fakeroot;
  const asRoot = u.uid === 0;
  const spec = specTemplate({ rootless: true, uid: u.uid, gid: u.gid });
  const noMount = (what: string): boolean => o.noMount.has(what);
  const mounts: Mount[] = [];

  // The root: the image itself with --writable, otherwise an overlay over it.
  let readonlyRoot = !o.writable;
  let rootDir = image.rootfs;
  const overlayRoot = !o.writable && site.enableOverlay !== 'no';
  if (overlayRoot) {
    const lowers: string[] = [];
    let upper = path.join(session, 'upper');
    let work = path.join(session, 'work');
    const writableOverlays = o.overlays.filter(ov => !ov.readonly);
    if (o.writableTmpfs && !writableOverlays.length) {
      // Singularity's throwaway layer lives in its session tmpfs: changes vanish with the container and
      // cannot fill the host's disk. The tmpfs covers the session's root directory first; the overlay's
      // upper and work directories are made inside it (see plan/mounts.ts) and the overlay goes on top.
      rootDir = path.join(session, 'root');
      fs.mkdirSync(rootDir);
      upper = path.join(rootDir, 'upper');
      work = path.join(rootDir, 'work');
      mounts.push({ destination: '/', type: 'tmpfs', source: 'tmpfs', options: ['mode=755', `size=${SESSION_TMPFS_SIZE}`] });
    } else {
      fs.mkdirSync(upper, { recursive: true });
      fs.mkdirSync(work, { recursive: true });
    }
    if (writableOverlays.length > 1) throw new Error('only one --overlay may be writable (add :ro to the others)');
    for (const ov of o.overlays) {
      const abs = overlayDirectory(path.resolve(ov.path), ov.readonly, req.info, releases);
      const layout = overlayLayout(abs, ov.readonly);
      if (ov.readonly) {
        lowers.unshift(layout.upper);
      } else {
        const lock = acquireOverlayLock(abs);
        releases.push(() => lock.release());
        upper = layout.upper;
        work = layout.work;
        readonlyRoot = false;
      }
    }
    if (o.writableTmpfs) readonlyRoot = false;
    lowers.push(image.rootfs);
    mounts.push({
      destination: '/', type: 'overlay', source: 'overlay',
      // In a user namespace overlayfs keeps its metadata in user.* xattrs; root's overlay uses trusted.*.
      options: [`lowerdir=${lowers.join(':')}`, `upperdir=${upper}`, `workdir=${work}`, ...(asRoot && !fakeroot ? [] : ['userxattr'])],
    });
  }
  spec.root = { path: rootDir, readonly: readonlyRoot };

  // Kernel filesystems and /dev.
  if (!noMount('proc')) mounts.push(o.pid ? { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'nodev', 'noexec'] } : bind('/proc', '/proc'));
  // A network namespace of its own shows its own interfaces in a fresh sysfs (the host's would show the host's).
  if (!noMount('sys')) mounts.push(o.net ? { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'nodev', 'noexec'] } : { ...bind('/sys', '/sys'), options: ['rbind', 'nosuid', 'nodev', 'noexec'] });
  if (!noMount('dev')) {
    if (o.contain) {
      mounts.push({ destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755', 'size=65536k'] });
      for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty']) mounts.push(bind(`/dev/${d}`, `/dev/${d}`, false, false));
      if (!noMount('devpts')) mounts.push({ destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] });
      mounts.push({ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] });
    } else {
      mounts.push({ ...bind('/dev', '/dev'), options: ['rbind', 'nosuid'] });
    }
  }
  // What the site binds into every container (bind path, resolv.conf), then its host filesystems (mount hostfs).
  for (const b of siteBinds(site, o.contain, req.warn)) {
    if (noMount(b.destination) || (b.destination !== '/etc/resolv.conf' && noMount('bind-paths')) || (b.destination === '/etc/resolv.conf' && o.dns.length)) continue;
    mounts.push(bind(b.source, b.destination, b.readonly, fs.statSync(b.source).isDirectory()));
  }
  if (o.dns.length) mounts.push(bind(writeFile(session, 'resolv.conf', resolvConf(o.dns)), '/etc/resolv.conf', true, false));
  if (!noMount('hostfs')) mounts.push(...hostfsMounts(site, new Set(mounts.map(m => m.destination))));

  // Identity and home.
  const homeDest = o.home?.destination ?? (fakeroot ? '/root' : u.home);
  if (!fakeroot) {
    writeFile(session, 'passwd', passwdFor(readLines(path.join(image.rootfs, 'etc/passwd')), u, homeDest));
    writeFile(session, 'group', groupFor(readLines(path.join(image.rootfs, 'etc/group')), readLines('/etc/group'), u));
    mounts.push(bind(path.join(session, 'passwd'), '/etc/passwd', true, false));
    mounts.push(bind(path.join(session, 'group'), '/etc/group', true, false));
  }
  const visible: string[] = [];
  if (!o.noHome && !noMount('home')) {
    // --contain hides the host home unless --home names one explicitly.
    const source = o.home?.source ?? (o.contain ? backingDir(o, session, 'home') : u.home);
    if (!fs.existsSync(source)) throw new Error(`home directory ${source} does not exist`);
    mounts.push(bind(source, homeDest));
    if (source === u.home || o.home) visible.push(homeDest);
  }
  if (!noMount('tmp')) {
    // The host's /tmp and /var/tmp are bound as they are (Singularity's default): tsrt makes no name there (R9).
    mounts.push(bind(o.contain ? backingDir(o, session, 'tmp') : '/tmp', '/tmp'));
    mounts.push(bind(o.contain ? backingDir(o, session, 'var_tmp') : '/var/tmp', '/var/tmp'));
    if (!o.contain) visible.push('/tmp', '/var/tmp');
  }
  o.scratch.forEach((dest, i) => {
    if (!dest.startsWith('/')) throw new Error(`--scratch ${dest}: must be an absolute path`);
    mounts.push(bind(backingDir(o, session, `scratch/${i}`), dest));
  });

  // User binds (-B, --mount, $SINGULARITY_BIND), then GPU libraries.
  if (!noMount('bind-paths') || o.binds.length) {
    for (const b of o.binds) {
      if (!fs.existsSync(b.source)) throw new Error(`mount ${b.source}->${b.destination} error: while mounting ${b.source}: mount source ${b.source} doesn't exist`);
      mounts.push(bind(b.source, b.destination, b.readonly));
      visible.push(b.destination);
    }
  }
  const gpu = gpuMounts({ nv: o.nv, rocm: o.rocm, contain: o.contain, warn: req.warn });
  mounts.push(...gpu);

  // The working directory: host $PWD, bound at the same path when nothing else shows it.
  const hostCwd = process.cwd();
  let cwd: string;
  if (o.pwd) {
    cwd = o.pwd;
  } else if (o.contain) {
    cwd = homeDest;
  } else {
    cwd = hostCwd;
    const shown = visible.some(v => isBelow(hostCwd, v));
    if (!shown && !noMount('cwd') && !SYSTEM_DIRS.includes(hostCwd) && !SYSTEM_DIRS.some(d => d !== '/' && isBelow(hostCwd, d))) {
      mounts.push(bind(hostCwd, hostCwd));
    } else if (!shown && !fs.existsSync(path.join(image.rootfs, hostCwd))) {
      cwd = homeDest;
    }
  }

  // Namespaces and identity: the user's own ids (or root with --fakeroot) in a user namespace. Root itself
  // needs none (as with Singularity run by root): it keeps its ids and capabilities.
  const userns = !asRoot || fakeroot;
  const namespaces: { type: 'user' | 'mount' | 'pid' | 'ipc' | 'uts' }[] = userns ? [{ type: 'user' }, { type: 'mount' }] : [{ type: 'mount' }];
  if (o.pid) namespaces.push({ type: 'pid' });
  if (o.ipc) namespaces.push({ type: 'ipc' });
  if (o.uts) namespaces.push({ type: 'uts' });
  const linux = spec.linux!;
  linux.namespaces = namespaces;
  delete linux.maskedPaths;
  delete linux.readonlyPaths;
  if (fakeroot) {
    // Root inside; the rest of the id space from /etc/subuid and /etc/subgid when the user has ranges.
    const subuid = subuidRange('/etc/subuid', u);
    const subgid = subuidRange('/etc/subgid', u);
    linux.uidMappings = [{ containerID: 0, hostID: u.uid, size: 1 }];
    linux.gidMappings = [{ containerID: 0, hostID: u.gid, size: 1 }];
    if (subuid && subgid) {
      linux.uidMappings.push({ containerID: 1, hostID: subuid.start, size: subuid.count });
      linux.gidMappings.push({ containerID: 1, hostID: subgid.start, size: subgid.count });
    }
  } else if (userns) {
    linux.uidMappings = [{ containerID: u.uid, hostID: u.uid, size: 1 }];
    linux.gidMappings = [{ containerID: u.gid, hostID: u.gid, size: 1 }];
  } else {
    delete linux.uidMappings;
    delete linux.gidMappings;
  }
  if (o.hostname) spec.hostname = o.hostname;
  else delete spec.hostname;
  const network = networkPlan(o);
  const group = shareGroup(o.sharens);
  if (group && network?.mode === 'pasta') {
    if (o.sharens) req.warn('--sharens is not used with --network pasta: the container is in the user namespace of its network');
  } else if (group) {
    shareUserNamespace(spec, { group, asked: !!o.sharens, image: image.path, runtimeDir: runtimeDir(), session, releases, warn: req.warn, info: req.info });
  }
  if (network) addNetwork(spec, network, session, releases);

  const name = path.basename(image.path);
  const command = req.action === 'start' ? 'start' : req.action;
  const vars: Record<string, string> = {
    HOME: homeDest,
    SINGULARITY_CONTAINER: image.path, APPTAINER_CONTAINER: image.path,
    SINGULARITY_NAME: name, APPTAINER_NAME: name,
    SINGULARITY_COMMAND: command, APPTAINER_COMMAND: command,
    SINGULARITY_ENVIRONMENT: '/.singularity.d/env/91-environment.sh', APPTAINER_ENVIRONMENT: '/.singularity.d/env/91-environment.sh',
    ...req.extraEnv,
  };
  if (o.binds.length) vars['SINGULARITY_BIND'] = vars['APPTAINER_BIND'] = o.binds.map(b => `${b.source}:${b.destination}${b.readonly ? ':ro' : ''}`).join(',');
  if (o.app) vars['SINGULARITY_APPNAME'] = vars['APPTAINER_APPNAME'] = o.app;
  const overrides = environmentOverrides(process.env, o, req.warn);
  const script = actionScript({
    action: req.action, overrides, app: o.app, libs: gpu.length > 0, prompt: PROMPT,
    shell: o.shell ?? (process.env['APPTAINER_SHELL'] || process.env['SINGULARITY_SHELL'] || undefined),
  });
  const process_ = spec.process!;
  process_.terminal = false;
  // The environment scripts need a shell; an image without one can still exec a program, unprepared.
  if (fs.lstatSync(path.join(image.rootfs, 'bin/sh'), { throwIfNoEntry: false })) {
    process_.args = ['/bin/sh', '-c', script, 'singularity', ...req.args];
  } else if (req.action === 'exec') {
    process_.args = req.args;
  } else {
    throw new Error(`${image.path} has no /bin/sh, which ${req.action} needs`);
  }
  process_.env = baseEnvironment(process.env, o, vars);
  process_.cwd = cwd;
  process_.user = fakeroot ? { uid: 0, gid: 0 } : { uid: u.uid, gid: u.gid };
  delete process_.rlimits;
  // Root (namespaced with --fakeroot, as `unshare -r` gives) keeps the default capabilities; a user none.
  if (!fakeroot && !asRoot) delete process_.capabilities;
  else process_.capabilities = Object.fromEntries(Object.entries(process_.capabilities!).filter(([k]) => k !== 'ambient'));
  process_.noNewPrivileges = true;
  // The host's umask, as Singularity propagates it.
  const mask = process.umask();
  process_.user.umask = mask;
  spec.mounts = mounts;
  applyMountPolicy(site, spec, image.rootfs, overlayRoot, req.warn);
  return spec;
}

/** Removes a session directory; the overlay's upper layer there may hold files the container made read-only. */
export function removeSession(s: Session): void {
  for (const release of s.releases.reverse()) release();
  spawnSync('chmod', ['-R', 'u+rwX', s.dir], { stdio: 'ignore' });
  fs.rmSync(s.dir, { recursive: true, force: true });
}

/** Runs an action in the foreground and returns its exit status (128+N when a signal ended it). */
export function launch(req: LaunchRequest): number {
  const session = prepare(req);
  try {
    const status = runContainer({ root: stateRoot(), id: session.id, bundle: session.dir, warn: req.warn });
    return status.code;
  } finally {
    removeSession(session);
  }
}
