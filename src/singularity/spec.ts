// An image plus Singularity's options becomes an OCI spec (native-mode defaults, asserted one by one in
// test/singularity/run-actions.test.ts). Pure: a function of the request, the image's and the host's facts
// (host.ts) and the session's directory, one function per concern, so test/unit/singularity-spec.test.ts holds
// every case to a golden file with no root and no image. What the session must make on the host for the spec
// to hold (directories, the passwd and group files, the network helpers) comes back beside it, as effects.
//
// The image is never written to (except with --writable): the root is an overlay whose lower layer is the
// image and whose upper layer is the session's (or the writable --overlay's). Mount points for $HOME, $PWD and
// binds are created in that upper layer, so read-only images need no pre-made directories.
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import { specTemplate, type Mount, type Spec } from '../index.js';
import { actionScript, baseEnvironment, type Action } from './environment.js';
import type { HostFacts, HostUser, ImageFacts, OverlayFacts } from './host.js';
import { addNetwork, networkPlan, resolvConf, type NetworkPlan } from './network.js';
import type { ActionOptions } from './options.js';
import { applyMountPolicy, hostfsMounts } from './sitepolicy.js';

export const PROMPT = 'Singularity> ';

/** Singularity's default `sessiondir max size` (singularity.conf): what --writable-tmpfs can hold. */
const SESSION_TMPFS_SIZE = '64m';

/** Host directories that an image always has and that must not be covered by a bind of the cwd. */
const SYSTEM_DIRS = [
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/lib',
  '/lib64',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/sys',
  '/usr',
  '/var',
];

export interface SpecRequest {
  action: Action;
  /** The command (exec) or the arguments (run, test, shell, start). */
  args: string[];
  options: ActionOptions;
  extraEnv?: Record<string, string>;
  warn: (m: string) => void;
}

/** What the session makes on the host before the container runs. */
export interface Effects {
  /** Directories to make (with their parents), with the mode when it is not the default. */
  dirs: { path: string; mode?: number }[];
  /** Files to write, mode 0644. */
  files: { path: string; text: string }[];
  /** --network pasta: helpers to start, whose namespaces the container then joins. */
  pasta?: NetworkPlan;
  /** --sharens (or a rank of an MPI or Slurm job): the user namespace to share with the group's other containers. */
  sharens?: { group: string; asked: boolean };
}

export interface BuiltSpec {
  spec: Spec;
  effects: Effects;
}

/** Everything one concern may read; each returns its part of the spec and adds what it needs made to `effects`. */
interface Context {
  req: SpecRequest;
  o: ActionOptions;
  image: ImageFacts;
  host: HostFacts;
  session: string;
  effects: Effects;
  /** Root itself, not --fakeroot: keeps its ids and capabilities and needs no user namespace. */
  asRoot: boolean;
  /** Where $HOME is in the container. */
  home: string;
}

function isBelow(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

function bind(source: string, destination: string, readonly = false, recursive = true): Mount {
  const options = [recursive ? 'rbind' : 'bind', 'nosuid', 'nodev'];
  if (readonly) options.push('ro');
  return { destination, type: 'bind', source, options };
}

function noMount(c: Context, what: string): boolean {
  return c.o.noMount.has(what);
}

function writeFile(c: Context, name: string, text: string): string {
  const file = path.join(c.session, name);
  c.effects.files.push({ path: file, text });
  return file;
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

/**
 * What the request asks that the image cannot give, refused before the session makes anything: an app it does
 * not have, --writable on a read-only image, two writable layers.
 */
export function checkRequest(o: ActionOptions, image: Pick<ImageFacts, 'path' | 'kind' | 'apps' | 'exists'>): void {
  if (o.app && !image.exists(path.join('scif', 'apps', o.app))) {
    throw new RuntimeError(`no app ${JSON.stringify(o.app)} in ${image.path} (it has: ${image.apps.join(', ') || 'none'})`, {
      op: 'app',
      path: image.path,
    });
  }
  if (o.writable && image.kind !== 'sandbox') {
    throw new RuntimeError(
      `--writable needs a sandbox directory; ${image.path} is a read-only ${image.kind} image (use --writable-tmpfs or --overlay)`,
      { op: 'writable', path: image.path },
    );
  }
  if (o.writable && (o.writableTmpfs || o.overlays.length))
    throw new RuntimeError('--writable cannot be combined with --writable-tmpfs or --overlay', { op: 'writable' });
  if (o.overlays.filter(ov => !ov.readonly).length > 1)
    throw new RuntimeError('only one --overlay may be writable (add :ro to the others)', { op: 'overlay' });
}

/** Whether the root is an overlay over the image (everything but --writable, unless the site disabled overlays). */
export function overlayRoot(o: ActionOptions, host: Pick<HostFacts, 'site'>): boolean {
  return !o.writable && host.site.enableOverlay !== 'no';
}

/** The root: the image itself with --writable, otherwise an overlay over it (the session's, a tmpfs, or --overlay's). */
function rootParts(c: Context, overlays: OverlayFacts[]): { root: Spec['root']; mounts: Mount[] } {
  const { o, session, image } = c;
  if (!overlayRoot(o, c.host)) return { root: { path: image.rootfs, readonly: !o.writable }, mounts: [] };
  const mounts: Mount[] = [];
  let rootDir = image.rootfs;
  let readonly = true;
  const lowers: string[] = [];
  let upper = path.join(session, 'upper');
  let work = path.join(session, 'work');
  if (o.writableTmpfs && !o.overlays.some(ov => !ov.readonly)) {
    // Singularity's throwaway layer lives in its session tmpfs: changes vanish with the container and
    // cannot fill the host's disk. The tmpfs covers the session's root directory first; the overlay's
    // upper and work directories are made inside it (see plan/mounts.ts) and the overlay goes on top.
    rootDir = path.join(session, 'root');
    c.effects.dirs.push({ path: rootDir });
    upper = path.join(rootDir, 'upper');
    work = path.join(rootDir, 'work');
    mounts.push({ destination: '/', type: 'tmpfs', source: 'tmpfs', options: ['mode=755', `size=${SESSION_TMPFS_SIZE}`] });
  } else {
    c.effects.dirs.push({ path: upper }, { path: work });
  }
  for (const ov of overlays) {
    if (ov.readonly) {
      lowers.unshift(ov.hasUpper ? path.join(ov.dir, 'upper') : ov.dir);
    } else {
      upper = path.join(ov.dir, 'upper');
      work = path.join(ov.dir, 'work');
      c.effects.dirs.push({ path: upper }, { path: work });
      readonly = false;
    }
  }
  if (o.writableTmpfs) readonly = false;
  lowers.push(image.rootfs);
  mounts.push({
    destination: '/',
    type: 'overlay',
    source: 'overlay',
    // In a user namespace overlayfs keeps its metadata in user.* xattrs; root's overlay uses trusted.*.
    options: [`lowerdir=${lowers.join(':')}`, `upperdir=${upper}`, `workdir=${work}`, ...(c.asRoot ? [] : ['userxattr'])],
  });
  return { root: { path: rootDir, readonly }, mounts };
}

/** /proc, /sys and /dev: the host's, or fresh ones for a new PID or network namespace and --contain. */
function kernelMounts(c: Context): Mount[] {
  const { o } = c;
  const mounts: Mount[] = [];
  if (!noMount(c, 'proc'))
    mounts.push(
      o.pid ? { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'nodev', 'noexec'] } : bind('/proc', '/proc'),
    );
  // A network namespace of its own shows its own interfaces in a fresh sysfs (the host's would show the host's).
  if (!noMount(c, 'sys'))
    mounts.push(
      o.net
        ? { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'nodev', 'noexec'] }
        : { ...bind('/sys', '/sys'), options: ['rbind', 'nosuid', 'nodev', 'noexec'] },
    );
  if (noMount(c, 'dev')) return mounts;
  if (!o.contain) return [...mounts, { ...bind('/dev', '/dev'), options: ['rbind', 'nosuid'] }];
  mounts.push({ destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755', 'size=65536k'] });
  for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty']) mounts.push(bind(`/dev/${d}`, `/dev/${d}`, false, false));
  if (!noMount(c, 'devpts'))
    mounts.push({
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    });
  mounts.push({
    destination: '/dev/shm',
    type: 'tmpfs',
    source: 'shm',
    options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
  });
  return mounts;
}

/** What the site binds into every container (bind path, resolv.conf or --dns's), then its host filesystems (mount hostfs). */
function siteMounts(c: Context, taken: Mount[]): Mount[] {
  const { o } = c;
  const mounts: Mount[] = [];
  for (const b of c.host.siteBinds) {
    if (
      noMount(c, b.destination) ||
      (b.destination !== '/etc/resolv.conf' && noMount(c, 'bind-paths')) ||
      (b.destination === '/etc/resolv.conf' && o.dns.length)
    )
      continue;
    mounts.push(bind(b.source, b.destination, b.readonly, b.directory));
  }
  if (o.dns.length) mounts.push(bind(writeFile(c, 'resolv.conf', resolvConf(o.dns)), '/etc/resolv.conf', true, false));
  if (!noMount(c, 'hostfs')) mounts.push(...hostfsMounts(c.host.hostfsPoints, new Set([...taken, ...mounts].map(m => m.destination))));
  return mounts;
}

/** The user's own line in the image's passwd and group files (not with --fakeroot: root is in the image's). */
function identityMounts(c: Context): Mount[] {
  if (c.o.fakeroot) return [];
  const u = c.host.user;
  const passwd = writeFile(c, 'passwd', passwdFor(c.image.passwd, u, c.home));
  const group = writeFile(c, 'group', groupFor(c.image.group, c.host.groupLines, u));
  return [bind(passwd, '/etc/passwd', true, false), bind(group, '/etc/group', true, false)];
}

/** Where --contain's fresh /tmp, /var/tmp, home and --scratch dirs live: --workdir, else the session. */
function backingDir(c: Context, name: string): string {
  const base = c.o.workdir ? path.resolve(c.host.cwd, c.o.workdir) : path.join(c.session, 'contained');
  const dir = path.join(base, name);
  c.effects.dirs.push({ path: dir, mode: 0o700 });
  return dir;
}

/** $HOME, /tmp, /var/tmp and --scratch; `visible` are the destinations that show the host's own directories. */
function homeAndTmpMounts(c: Context): { mounts: Mount[]; visible: string[] } {
  const { o } = c;
  const u = c.host.user;
  const mounts: Mount[] = [];
  const visible: string[] = [];
  if (!o.noHome && !noMount(c, 'home')) {
    // --contain hides the host home unless --home names one explicitly.
    const source = o.home?.source ?? (o.contain ? backingDir(c, 'home') : u.home);
    if (!(o.contain && !o.home) && !c.host.exists(source))
      throw new RuntimeError(`home directory ${source} does not exist`, { op: 'home', path: source, errno: 'ENOENT' });
    mounts.push(bind(source, c.home));
    if (source === u.home || o.home) visible.push(c.home);
  }
  if (!noMount(c, 'tmp')) {
    // The host's /tmp and /var/tmp are bound as they are (Singularity's default): tsrt makes no name there (R9).
    mounts.push(bind(o.contain ? backingDir(c, 'tmp') : '/tmp', '/tmp'));
    mounts.push(bind(o.contain ? backingDir(c, 'var_tmp') : '/var/tmp', '/var/tmp'));
    if (!o.contain) visible.push('/tmp', '/var/tmp');
  }
  o.scratch.forEach((dest, i) => {
    if (!dest.startsWith('/')) throw new RuntimeError(`--scratch ${dest}: must be an absolute path`, { op: 'scratch', path: dest });
    mounts.push(bind(backingDir(c, `scratch/${i}`), dest));
  });
  return { mounts, visible };
}

/** -B, --mount and $SINGULARITY_BIND (unless --no-mount bind-paths without any). */
function userBindMounts(c: Context): Mount[] {
  const { o } = c;
  if (noMount(c, 'bind-paths') && !o.binds.length) return [];
  return o.binds.map(b => {
    if (!c.host.exists(b.source)) {
      throw new RuntimeError(
        `mount ${b.source}->${b.destination} error: while mounting ${b.source}: mount source ${b.source} doesn't exist`,
        { op: 'mount', path: b.source, errno: 'ENOENT' },
      );
    }
    return bind(b.source, b.destination, b.readonly);
  });
}

/** The working directory: --pwd, the home with --contain, else the host's, bound at the same path when nothing else shows it. */
function workingDir(c: Context, visible: string[]): { cwd: string; mounts: Mount[] } {
  const { o } = c;
  if (o.pwd) return { cwd: o.pwd, mounts: [] };
  if (o.contain) return { cwd: c.home, mounts: [] };
  const hostCwd = c.host.cwd;
  const shown = visible.some(v => isBelow(hostCwd, v));
  if (!shown && !noMount(c, 'cwd') && !SYSTEM_DIRS.includes(hostCwd) && !SYSTEM_DIRS.some(d => d !== '/' && isBelow(hostCwd, d))) {
    return { cwd: hostCwd, mounts: [bind(hostCwd, hostCwd)] };
  }
  if (!shown && !c.image.exists(hostCwd)) return { cwd: c.home, mounts: [] };
  return { cwd: hostCwd, mounts: [] };
}

/**
 * Namespaces and identity: the user's own ids (or root with --fakeroot, the rest of the id space from
 * /etc/subuid and /etc/subgid when the user has ranges) in a user namespace. Root itself needs none (as with
 * Singularity run by root): it keeps its ids and capabilities.
 */
function namespacesAndIds(c: Context, linux: NonNullable<Spec['linux']>): void {
  const { o } = c;
  const u = c.host.user;
  const userns = !c.asRoot;
  const namespaces: { type: 'user' | 'mount' | 'pid' | 'ipc' | 'uts' }[] = userns
    ? [{ type: 'user' }, { type: 'mount' }]
    : [{ type: 'mount' }];
  if (o.pid) namespaces.push({ type: 'pid' });
  if (o.ipc) namespaces.push({ type: 'ipc' });
  if (o.uts) namespaces.push({ type: 'uts' });
  linux.namespaces = namespaces;
  delete linux.maskedPaths;
  delete linux.readonlyPaths;
  if (o.fakeroot) {
    linux.uidMappings = [{ containerID: 0, hostID: u.uid, size: 1 }];
    linux.gidMappings = [{ containerID: 0, hostID: u.gid, size: 1 }];
    const { subuid, subgid } = c.host;
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
}

/** The process: the action script (or the bare command in an image without /bin/sh), environment, user, capabilities. */
function processPart(c: Context, process_: NonNullable<Spec['process']>, cwd: string): void {
  const { o, req, image, host } = c;
  const u = host.user;
  const name = path.basename(image.path);
  const command = req.action;
  const vars: Record<string, string> = {
    HOME: c.home,
    SINGULARITY_CONTAINER: image.path,
    APPTAINER_CONTAINER: image.path,
    SINGULARITY_NAME: name,
    APPTAINER_NAME: name,
    SINGULARITY_COMMAND: command,
    APPTAINER_COMMAND: command,
    SINGULARITY_ENVIRONMENT: '/.singularity.d/env/91-environment.sh',
    APPTAINER_ENVIRONMENT: '/.singularity.d/env/91-environment.sh',
    ...req.extraEnv,
  };
  if (o.binds.length)
    vars['SINGULARITY_BIND'] = vars['APPTAINER_BIND'] = o.binds
      .map(b => `${b.source}:${b.destination}${b.readonly ? ':ro' : ''}`)
      .join(',');
  if (o.app) vars['SINGULARITY_APPNAME'] = vars['APPTAINER_APPNAME'] = o.app;
  const script = actionScript({
    action: req.action,
    overrides: host.envOverrides,
    app: o.app,
    libs: host.gpuMounts.length > 0,
    prompt: PROMPT,
    shell: o.shell ?? (host.env['APPTAINER_SHELL'] || host.env['SINGULARITY_SHELL'] || undefined),
  });
  process_.terminal = false;
  // The environment scripts need a shell; an image without one can still exec a program, unprepared.
  if (image.hasShell) {
    process_.args = ['/bin/sh', '-c', script, 'singularity', ...req.args];
  } else if (req.action === 'exec') {
    process_.args = req.args;
  } else {
    throw new RuntimeError(`${image.path} has no /bin/sh, which ${req.action} needs`, {
      op: req.action,
      path: path.join(image.path, 'bin/sh'),
      errno: 'ENOENT',
    });
  }
  process_.env = baseEnvironment(host.env, o, vars);
  process_.cwd = cwd;
  // The host's umask, as Singularity propagates it.
  process_.user = o.fakeroot ? { uid: 0, gid: 0, umask: host.umask } : { uid: u.uid, gid: u.gid, umask: host.umask };
  delete process_.rlimits;
  // Root (namespaced with --fakeroot, as `unshare -r` gives) keeps the default capabilities; a user none.
  if (!o.fakeroot && !c.asRoot) delete process_.capabilities;
  else process_.capabilities = Object.fromEntries(Object.entries(process_.capabilities!).filter(([k]) => k !== 'ambient'));
  process_.noNewPrivileges = true;
}

/**
 * The spec for one container, and what the session must make for it. `overlays` are the --overlay layers as
 * the session made them available (in the order given); `session` is the session's directory.
 */
export function buildSpec(req: SpecRequest, image: ImageFacts, host: HostFacts, session: string, overlays: OverlayFacts[]): BuiltSpec {
  const o = req.options;
  checkRequest(o, image);
  const effects: Effects = { dirs: [], files: [] };
  const c: Context = {
    req,
    o,
    image,
    host,
    session,
    effects,
    asRoot: host.user.uid === 0 && !o.fakeroot,
    home: o.home?.destination ?? (o.fakeroot ? '/root' : host.user.home),
  };
  const spec = specTemplate({ rootless: true, uid: host.user.uid, gid: host.user.gid });
  const root = rootParts(c, overlays);
  spec.root = root.root;
  const mounts = [...root.mounts, ...kernelMounts(c)];
  mounts.push(...siteMounts(c, mounts));
  mounts.push(...identityMounts(c));
  const homeTmp = homeAndTmpMounts(c);
  mounts.push(...homeTmp.mounts);
  const binds = userBindMounts(c);
  mounts.push(...binds, ...host.gpuMounts);
  const wd = workingDir(c, [...homeTmp.visible, ...binds.map(b => b.destination)]);
  mounts.push(...wd.mounts);
  namespacesAndIds(c, spec.linux!);
  if (o.hostname) spec.hostname = o.hostname;
  else delete spec.hostname;
  const network = networkPlan(o);
  const group = host.shareGroup;
  if (group && network?.mode === 'pasta') {
    if (o.sharens) req.warn('--sharens is not used with --network pasta: the container is in the user namespace of its network');
  } else if (group) {
    effects.sharens = { group, asked: !!o.sharens };
  }
  if (network) {
    addNetwork(spec, network, host.user.uid === 0);
    if (network.mode === 'pasta') effects.pasta = network;
  }
  processPart(c, spec.process!, wd.cwd);
  spec.mounts = mounts;
  applyMountPolicy(host.site, spec, image.existsInRoot, overlayRoot(o, host), req.warn);
  return { spec, effects };
}
