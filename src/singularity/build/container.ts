// Runs build scripts (%post, %appinstall, %test) inside the rootfs being built, in-process through the tsrt
// library: a generated OCI bundle whose root is the sandbox, the host's network (so apt reaches its mirror), and
// for unprivileged builds a user namespace in which the builder is root (--fakeroot).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, type Spec } from '../../index.js';
import { RuntimeError } from '../../errors.js';

/**
 * What %post gets: root's usual capabilities, so package managers can chown, setuid to _apt and mknod. Not
 * CAP_LINUX_IMMUTABLE: an immutable file would make the build's scratch impossible to remove.
 */
const BUILD_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_RAW',
  'CAP_SYS_CHROOT',
  'CAP_MKNOD',
  'CAP_AUDIT_WRITE',
  'CAP_SETFCAP',
  'CAP_SYS_PTRACE',
  'CAP_IPC_LOCK',
];

export interface IdRange {
  hostID: number;
  size: number;
}

/**
 * How the builder's identity maps into build containers: undefined when building as real root; otherwise the
 * builder is root inside, and (when /etc/subuid and /etc/subgid give it ranges) uids/gids 1.. come from those
 * ranges so that package managers can hand files to other users.
 */
export interface FakerootMapping {
  uid: number;
  gid: number;
  subuid?: IdRange;
  subgid?: IdRange;
}

function subordinateRange(file: string, name: string | undefined, id: number): IdRange | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if (owner !== name && owner !== String(id)) continue;
    const hostID = Number(start);
    const size = Number(count);
    if (Number.isInteger(hostID) && Number.isInteger(size) && size > 0) return { hostID, size };
  }
  return undefined;
}

export const SUBID_FILES = '/etc/subuid and /etc/subgid';

/** The calling user's name from /etc/passwd (a Bun executable's os.userInfo() answers from $USER). */
function userName(uid: number): string | undefined {
  let passwd = '';
  try {
    passwd = fs.readFileSync('/etc/passwd', 'utf8');
  } catch {
    /* no passwd: only a numeric /etc/subuid entry can match */
  }
  return passwd
    .split('\n')
    .map(l => l.split(':'))
    .find(f => f[2] === String(uid))?.[0];
}

/**
 * The mapping for the calling user (undefined for root). Ranges are used only when both files have one and
 * `ignoreSubuid` is not set; without them the user's own id is root and the only id (a root-mapped namespace).
 */
export function fakerootMapping(o: { ignoreSubuid?: boolean } = {}): FakerootMapping | undefined {
  const uid = process.geteuid!();
  if (uid === 0) return undefined;
  const gid = process.getegid!();
  if (o.ignoreSubuid) return { uid, gid };
  const name = userName(uid);
  const subuid = subordinateRange('/etc/subuid', name, uid);
  const subgid = subordinateRange('/etc/subgid', name, uid);
  return subuid && subgid ? { uid, gid, subuid, subgid } : { uid, gid };
}

export interface ScriptRun {
  /** Absolute path of the rootfs (the sandbox being built). */
  rootfs: string;
  argv: string[];
  env: string[];
  cwd?: string;
  readonly?: boolean;
  mapping?: FakerootMapping;
  /** Private state and bundle directory (under the build's temp dir). */
  workDir: string;
}

function idMappings(own: number, range: IdRange | undefined) {
  const maps = [{ containerID: 0, hostID: own, size: 1 }];
  if (range) maps.push({ containerID: 1, hostID: range.hostID, size: range.size });
  return maps;
}

/** Host files bound into the build container when the rootfs can take them (DNS for apt and friends). */
const HOST_FILES = ['/etc/resolv.conf', '/etc/hosts'];

function buildSpec(r: ScriptRun, created: string[]): Spec {
  const mounts: NonNullable<Spec['mounts']> = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'rro'] },
  ];
  for (const file of HOST_FILES) {
    const inRoot = path.join(r.rootfs, file);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(inRoot);
    } catch {
      st = undefined;
    }
    // A symlink (Debian's resolv.conf may point into /run) is left alone rather than followed out of the rootfs.
    if (st?.isSymbolicLink()) continue;
    if (!st) {
      if (r.readonly || !fs.existsSync(path.dirname(inRoot))) continue;
      fs.writeFileSync(inRoot, '');
      created.push(inRoot);
    }
    mounts.push({ destination: file, type: 'none', source: file, options: ['bind', 'ro', 'nosuid', 'nodev'] });
  }
  const namespaces: NonNullable<NonNullable<Spec['linux']>['namespaces']> = [
    { type: 'pid' },
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
  ];
  const linux: NonNullable<Spec['linux']> = { namespaces };
  if (r.mapping) {
    namespaces.push({ type: 'user' });
    linux.uidMappings = idMappings(r.mapping.uid, r.mapping.subuid);
    linux.gidMappings = idMappings(r.mapping.gid, r.mapping.subgid);
  }
  return {
    ociVersion: '1.2.0',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: r.argv,
      env: r.env,
      cwd: r.cwd ?? '/',
      capabilities: { bounding: BUILD_CAPS, effective: BUILD_CAPS, permitted: BUILD_CAPS },
      noNewPrivileges: false,
    },
    root: { path: r.rootfs, readonly: !!r.readonly },
    hostname: os.hostname(),
    mounts,
    linux,
  };
}

let sequence = 0;

/** Where the stop guard records the signal that stopped a script (a host file bound into the container). */
const STOP_NOTE = '/dev/.tsrt-build-stopped';

/**
 * The container's pid 1 while a script runs. The builder forwards the signals it gets to pid 1, and a pid 1
 * without a handler ignores them: a SIGTERM to the builder would leave %post running. This guard handles
 * them instead: it notes which signal came and exits, and its exit ends every process in the container.
 * The script keeps the builder's stdin (a background job would get /dev/null).
 */
const STOP_GUARD = [
  ...['INT', 'TERM', 'HUP'].map((sig, i) => `trap 'echo ${sig} > ${STOP_NOTE}; exit ${[130, 143, 129][i]}' ${sig}`),
  'exec 3<&0',
  '"$@" <&3 3<&- &',
  'wait $!',
].join('\n');

/** A script run that a signal to the builder stopped; the build stops with that signal. */
export class ScriptStopped extends RuntimeError {
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}`, { op: 'build' });
  }
}

/**
 * Runs argv in the rootfs with our stdio; returns the exit code (128+N for a signal). Throws ScriptStopped when
 * SIGINT, SIGTERM or SIGHUP to the builder stopped it (the container is gone by then).
 */
export function runInRootfs(r: ScriptRun): number {
  const bundle = path.join(r.workDir, `bundle-${++sequence}`);
  const stateRoot = path.join(r.workDir, 'state');
  fs.mkdirSync(bundle, { recursive: true, mode: 0o700 });
  fs.mkdirSync(stateRoot, { recursive: true, mode: 0o700 });
  const created: string[] = [];
  const stopNote = path.join(bundle, 'stopped');
  const guarded = fs.existsSync(path.join(r.rootfs, 'bin/sh'));
  try {
    const spec = buildSpec(guarded ? { ...r, argv: ['/bin/sh', '-c', STOP_GUARD, 'build-guard', ...r.argv] } : r, created);
    if (guarded) {
      fs.writeFileSync(stopNote, '', { mode: 0o600 });
      if (r.mapping) fs.chownSync(stopNote, r.mapping.uid, r.mapping.gid);
      spec.mounts!.push({ destination: STOP_NOTE, type: 'none', source: stopNote, options: ['bind', 'nosuid', 'nodev', 'noexec'] });
    }
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
    const status = run({
      root: stateRoot,
      id: `singbuild-${process.pid}-${sequence}`,
      bundle,
      cgroupManager: 'disabled',
      warn: m => process.stderr.write(`WARNING: ${m}\n`),
    });
    const stoppedBy = guarded ? fs.readFileSync(stopNote, 'utf8').trim() : '';
    if (stoppedBy) throw new ScriptStopped(`SIG${stoppedBy}` as NodeJS.Signals);
    return status.signal ? 128 + status.signal : status.code;
  } finally {
    for (const file of created) fs.rmSync(file, { force: true });
    fs.rmSync(bundle, { recursive: true, force: true });
  }
}

/**
 * Runs a host command (mksquashfs, rm, cp) as the build containers' root: inside a user namespace with the
 * same mapping when building unprivileged, so files the build handed to subordinate ids stay readable.
 */
export function hostCommand(
  argv: string[],
  mapping: FakerootMapping | undefined,
  opts: { stdio?: 'inherit' | 'pipe'; env?: NodeJS.ProcessEnv } = {},
) {
  const full = mapping ? ['unshare', mapping.subuid ? '--map-auto' : '', '--map-root-user', '--', ...argv].filter(a => a !== '') : argv;
  return spawnSync(full[0]!, full.slice(1), { stdio: opts.stdio ?? 'pipe', encoding: 'utf8', env: opts.env ?? process.env });
}

/** Removes a tree the build made (files of subordinate ids included); never fails the caller. */
export function removeTree(dir: string, mapping: FakerootMapping | undefined): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  } catch {
    /* owned by subordinate ids: remove from inside the namespace below */
  }
  hostCommand(['rm', '-rf', '--', dir], mapping);
}
