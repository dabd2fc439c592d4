// Namespaces made before the container: a holder process (`unshare`, then `sleep`) owns a user namespace with
// the container's id maps (and, for --network pasta, a network namespace), and containers join it by path.
// --network pasta needs one because pasta must attach before the container's process starts; --sharens because
// the ranks of a job join one that outlives any single rank's start. The runtime's own init cannot serve: it
// stays non-dumpable until its execve (security rule R5), so its /proc/PID/ns files are closed to the user.
//
// Helpers are children of this process with a parent-death signal, and are stopped through the session's
// release list. Debian's programs are found by absolute path first.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import { procStat } from '../index.js';
import type { Undo } from './undo.js';

export type IdMaps = { containerID: number; hostID: number; size: number }[];

/** What a helper is for, in every error: the option ("--network pasta"), and what else the user can do. */
export interface Purpose {
  option: string;
  /** "use --network none": appended to "needs PROGRAM (apt-get install PACKAGE), or ...". */
  otherwise?: string;
}

function findProgram(name: string): string | undefined {
  for (const dir of ['/usr/bin', '/usr/sbin', '/bin', '/sbin', ...(process.env['PATH'] ?? '').split(':')]) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

export function need(name: string, pkg: string, p: Purpose): string {
  const file = findProgram(name);
  if (!file)
    throw new RuntimeError(`${p.option} needs ${name} (apt-get install ${pkg})${p.otherwise ? `, or ${p.otherwise}` : ''}`, {
      op: 'spawn',
      path: name,
      errno: 'ENOENT',
    });
  return file;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** A child that has exited (a zombie until the event loop reaps it) or is gone. */
function ended(pid: number): boolean {
  const st = procStat(pid);
  return !st || st.state === 'Z' || st.state === 'X';
}

/** Polls (10 ms steps, bounded) until `ready` holds or the process ends; returns whether it became ready. */
export function waitUntil(pid: number, ready: () => boolean, steps = 1000): boolean {
  for (let i = 0; i < steps; i++) {
    if (ready()) return true;
    if (ended(pid)) return ready();
    Atomics.wait(pause, 0, 0, 10);
  }
  return ready();
}

/** Stops a helper of ours: SIGTERM, a bounded wait, then SIGKILL. */
function stop(pid: number): void {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    if (waitUntil(pid, () => false, 200) || ended(pid)) return;
  }
}

/**
 * Starts `argv` as a child that dies with this process (setpriv's parent-death signal), its stderr in `errFile`.
 * Returns its pid (the same through setpriv's and unshare's execs).
 */
export function startHelper(argv: string[], errFile: string, undo: Undo, p: Purpose): number {
  const err = fs.openSync(errFile, 'w', 0o600);
  const child = spawn(need('setpriv', 'util-linux', p), ['--pdeathsig', 'KILL', '--', ...argv], { stdio: ['ignore', 'ignore', err] });
  fs.closeSync(err);
  child.unref();
  if (child.pid === undefined) throw new RuntimeError(`could not start ${argv[0]}`, { op: 'spawn', path: argv[0] });
  const pid = child.pid;
  undo.push(() => stop(pid));
  return pid;
}

export function helperError(p: Purpose, what: string, errFile: string): Error {
  const text = fs
    .readFileSync(errFile, 'utf8')
    .split('\n')
    .filter(l => l && !/syslog/.test(l))
    .join('; ');
  return new RuntimeError(`${p.option}: ${what}${text ? `: ${text}` : ''}`, { op: 'spawn' });
}

/** Writes the holder's id maps as the spec would have had them written (newuidmap/newgidmap, as the runtime does). */
function writeMaps(pid: number, uid: IdMaps, gid: IdMaps, p: Purpose, what: string): void {
  for (const [tool, maps] of [
    ['newuidmap', uid],
    ['newgidmap', gid],
  ] as const) {
    const args = [String(pid), ...maps.flatMap(m => [String(m.containerID), String(m.hostID), String(m.size)])];
    const r = spawnSync(need(tool, 'uidmap', p), args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    const why = r.error ? r.error.message : r.status !== 0 ? r.stderr.trim() || `exit status ${r.status}` : undefined;
    if (why) throw new RuntimeError(`${p.option}: ${tool} for the ${what}'s user namespace failed: ${why}`, { op: 'spawn', path: tool });
  }
}

export interface HolderRequest {
  /** Also a network namespace, owned by the user namespace. */
  net: boolean;
  uid: IdMaps;
  gid: IdMaps;
  errFile: string;
  releases: Undo;
  purpose: Purpose;
  /** What the namespaces are for, in errors: "network" gives "could not make the network namespaces". */
  what: string;
}

/** Starts a holder of a new user namespace (with the given maps written) and, with `net`, a network namespace; its pid. */
export function startNamespaceHolder(r: HolderRequest): number {
  const p = r.purpose;
  const holder = startHelper(
    [need('unshare', 'util-linux', p), '--user', ...(r.net ? ['--net'] : []), '--', need('sleep', 'coreutils', p), 'infinity'],
    r.errFile,
    r.releases,
    p,
  );
  const own = fs.readlinkSync('/proc/self/ns/user');
  // Past unshare's exec of sleep, both namespaces are made.
  const entered = () => {
    try {
      return fs.readlinkSync(`/proc/${holder}/ns/user`) !== own && fs.readFileSync(`/proc/${holder}/comm`, 'utf8').trim() === 'sleep';
    } catch {
      return false;
    }
  };
  if (!waitUntil(holder, entered)) throw helperError(p, `could not make the ${r.what} namespaces`, r.errFile);
  writeMaps(holder, r.uid, r.gid, p, r.what);
  return holder;
}
