// R9: no predictable name in a directory another user can write. Every directory tsrt and tsrt-singularity
// keep state, sessions, mount points, caches, locks or logs in is opened here: the last component with
// O_NOFOLLOW|O_DIRECTORY, checked on the fd (the caller's own, no group or other write), and then used through
// that fd (`at`) by this process.
//
// Where a path below the directory is handed to another program as a string (an unpacked rootfs as an
// overlay's lower layer, a session's upper layer), `trustedPath` also requires that the directory is reached
// only through directories root or the caller can change: each owned by either and not writable by group or
// others unless sticky (where an entry can only be renamed by its owner). Through such a chain the canonical
// path keeps naming the verified directory. It is asked only for the places tsrt picks itself or that sit in
// shared trees by design ($XDG_RUNTIME_DIR, the unpack cache): a state root given with --root may well lie in
// a project directory the caller's group shares, which the caller chose to trust.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, fromSystemError } from './errors.js';
import { inUserNamespace } from './runtime/host.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
/** The sticky bit (Node's fs.constants has no S_ISVTX). */
const S_ISVTX = 0o1000;

export interface PrivateDir {
  /** The canonical path (what the fd resolved to when it was opened). */
  readonly path: string;
  /** The directory's fd (close-on-exec), held until close(). */
  readonly fd: number;
  /** A path to `name` (relative) inside the directory that resolves through the fd, not through `path`. */
  at(name: string): string;
  close(): void;
}

export interface PrivateDirOptions {
  /** What the directory is, for errors: "state directory", "XDG_RUNTIME_DIR". */
  what: string;
  /** Makes it (and missing parents, with the same mode) when it does not exist. */
  create?: boolean;
  /** Mode of what create makes; 0700 by default. */
  mode?: number;
  /** No group or other permission at all (XDG_RUNTIME_DIR must be 0700), not only no write. */
  exclusive?: boolean;
  /** The way out, appended to every refusal: "pass --root DIR". */
  fix?: string;
  /** Refuse it also when a directory on its canonical path could be changed by someone but root or the caller. */
  trustedPath?: boolean;
}

function refuse(o: PrivateDirOptions, dir: string, why: string): RuntimeError {
  return new RuntimeError(`${o.what} ${dir} ${why}${o.fix ? `: ${o.fix}` : ''}`, { op: 'open', path: dir });
}

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;

/** Owners an ancestor may have: root, the caller, and in a user namespace the overflow id unmapped owners show as. */
function trustedOwners(): Set<number> {
  const owners = new Set([0, process.geteuid!()]);
  if (inUserNamespace()) {
    // Rootless podman runs us as root of a user namespace where the host's root (owner of /, /run, /run/user)
    // is unmapped and shows as the overflow uid.
    try {
      owners.add(Number(fs.readFileSync('/proc/sys/kernel/overflowuid', 'utf8').trim()));
    } catch {
      owners.add(65534);
    }
  }
  return owners;
}

/** Checks each directory from / down to (not including) the last component of the canonical path `real`. */
function checkAncestors(o: PrivateDirOptions, real: string, verified: fs.Stats): void {
  const owners = trustedOwners();
  const parts = real.split('/').filter(Boolean);
  let fd = fs.openSync('/', O_RDONLY | O_DIRECTORY);
  try {
    let at = '/';
    for (let i = 0; ; i++) {
      const st = fs.fstatSync(fd);
      if (i === parts.length) {
        if (st.dev !== verified.dev || st.ino !== verified.ino) throw refuse(o, real, 'was replaced while it was being checked');
        return;
      }
      if (!owners.has(st.uid)) throw refuse(o, real, `is inside ${at}, which is owned by uid ${st.uid} (neither root nor you)`);
      if (st.mode & 0o022 && !(st.mode & S_ISVTX)) {
        throw refuse(o, real, `is inside ${at}, which others may write to (mode ${octal(st.mode)}, not sticky)`);
      }
      at = path.join(at, parts[i]!);
      const next = fs.openSync(`/proc/self/fd/${fd}/${parts[i]}`, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      fs.closeSync(fd);
      fd = next;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function openFinal(o: PrivateDirOptions, dir: string): number | undefined {
  try {
    return fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    // O_NOFOLLOW|O_DIRECTORY on a symlink fails with ENOTDIR as often as ELOOP: lstat says which it is.
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      throw refuse(o, dir, fs.lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink() ? 'is a symbolic link' : 'is not a directory');
    }
    throw fromSystemError('open', dir, e);
  }
}

/**
 * Opens `dir` as a directory of the caller's own: refused (a RuntimeError naming it and why) when it is a
 * symlink, not the caller's, writable by group or others (any group/other bit with `exclusive`), or, with
 * `trustedPath`, reached through a directory someone else could change. Returns undefined when it does not
 * exist and create is off.
 */
export function openPrivateDir(dir: string, o: PrivateDirOptions & { create: true }): PrivateDir;
export function openPrivateDir(dir: string, o: PrivateDirOptions): PrivateDir | undefined;
export function openPrivateDir(dir: string, o: PrivateDirOptions): PrivateDir | undefined {
  const given = path.resolve(dir);
  let fd = openFinal(o, given);
  if (fd === undefined) {
    if (!o.create) return undefined;
    try {
      fs.mkdirSync(given, { recursive: true, mode: o.mode ?? 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError('mkdir', given, e);
    }
    fd = openFinal(o, given);
    if (fd === undefined) throw refuse(o, given, 'vanished right after it was made');
  }
  try {
    const st = fs.fstatSync(fd);
    const euid = process.geteuid!();
    if (st.uid !== euid) throw refuse(o, given, `is owned by uid ${st.uid}, not by you (uid ${euid})`);
    if (o.exclusive && st.mode & 0o077) throw refuse(o, given, `has mode ${octal(st.mode)}: it must be 0700, accessible to you only`);
    if (st.mode & 0o022) throw refuse(o, given, `is writable by group or others (mode ${octal(st.mode)})`);
    const real = fs.readlinkSync(`/proc/self/fd/${fd}`);
    if (o.trustedPath) checkAncestors(o, real, st);
    const opened = fd;
    return {
      path: real,
      fd: opened,
      at: name => `/proc/self/fd/${opened}/${name}`,
      close: () => fs.closeSync(opened),
    };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/**
 * Opens `name` in a verified directory without following a symlink there and without blocking on a FIFO, and
 * requires a regular file of the caller's own: what logs, locks and records are opened with.
 */
export function openOwnFile(dir: Pick<PrivateDir, 'path' | 'at'>, name: string, flags: number, mode = 0o600): number {
  const shown = path.join(dir.path, name);
  let fd: number;
  try {
    fd = fs.openSync(dir.at(name), flags | O_NOFOLLOW | O_NONBLOCK, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new RuntimeError(`${shown} is a symbolic link`, { op: 'open', path: shown });
    throw fromSystemError('open', shown, e);
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile() || st.uid !== process.geteuid!()) {
    fs.closeSync(fd);
    throw new RuntimeError(`${shown} is not a regular file of yours`, { op: 'open', path: shown });
  }
  return fd;
}

/**
 * $XDG_RUNTIME_DIR verified as logind makes it (the caller's own, mode 0700, not a symlink); its canonical
 * path. `fix` says what to do without one.
 */
export function verifiedRuntimeDir(env: NodeJS.ProcessEnv, fix: string): string {
  const xdg = env['XDG_RUNTIME_DIR'];
  if (!xdg) throw new RuntimeError(`XDG_RUNTIME_DIR is not set: ${fix}`, { op: 'open' });
  const dir = openPrivateDir(xdg, { what: 'XDG_RUNTIME_DIR', exclusive: true, trustedPath: true, fix });
  if (!dir) throw new RuntimeError(`XDG_RUNTIME_DIR ${xdg} does not exist: ${fix}`, { op: 'open', path: xdg });
  dir.close();
  return dir.path;
}
