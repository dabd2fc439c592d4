// Plumbing for test/security/: host canaries, the static attacker binary, runs whose stdio are files, and the
// "nothing left behind" check. Lives beside helpers.ts (not under test/security/) so tap never runs it as a test.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Test } from 'tap';
import {
  REPO,
  TSRT,
  e2eFile,
  errorMessage,
  hostMountsContaining,
  startConsoleReceiver,
  tmpdir,
  tsrt,
  tsrtToFiles,
  waitFor,
  type Result,
  type Scope,
} from './helpers.js';

export { TSRT };

/**
 * The set-up of a security test file: skipped (plan 0) unless root, with a private state root removed when the
 * file's tests end, a scope maker and tsrt against that root.
 */
export function securityRoot(
  t: Parameters<typeof e2eFile>[0],
  name: string,
): {
  root: string;
  scope(tt: { teardown(fn: () => void): void }): Scope;
  rt(args: string[], opts?: SpawnSyncOptions): Result;
} {
  const file = e2eFile(t, {
    name,
    idPrefix: name.toLowerCase().replace(/[^a-z0-9]+/g, ''),
    needsRoot: 'security tests need root',
    rootPrefix: `tsrt-sec-${name}-`,
  });
  return { root: file.ROOT, scope: file.scope, rt: file.rt };
}

/**
 * Runs tsrt with stdout/stderr going to files: a container left running (create, run -d) must never hold a
 * pipe of ours open, or spawnSync would wait for it.
 */
export function rtFiles(root: string, s: Scope, args: string[], opts: SpawnSyncOptions = {}): Result {
  return tsrtToFiles(root, s, args, opts);
}

export function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Every entry below dir (type, mode, owner, size, content hash or link target): equal snapshots = untouched. */
export function treeSnapshot(dir: string): string {
  const lines: string[] = [];
  const walk = (p: string, rel: string): void => {
    const st = fs.lstatSync(p);
    let what = `${rel} mode=${st.mode.toString(8)} uid=${st.uid} gid=${st.gid}`;
    if (st.isSymbolicLink()) what += ` -> ${fs.readlinkSync(p)}`;
    else if (st.isFile()) what += ` size=${st.size} sha=${sha256(p)}`;
    else if (st.isCharacterDevice() || st.isBlockDevice()) what += ` rdev=${st.rdev}`;
    lines.push(what);
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e), `${rel}/${e}`);
  };
  walk(dir, '.');
  return lines.join('\n');
}

/**
 * A host directory an attack would like to reach: a few files (one named like what runtimes create in /dev,
 * so a redirected unlink would show) and a subdirectory. `untouched()` compares it with its first snapshot.
 */
export interface Canary {
  dir: string;
  untouched(): boolean;
  /** The current listing, for a failure message. */
  listing(): string;
}

export function makeCanary(s: Scope): Canary {
  const dir = path.join(s.dir(), 'hostcanary');
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'canary'), `host canary ${process.pid} ${Date.now()}\n`);
  fs.writeFileSync(path.join(dir, 'ptmx'), 'not a device\n');
  fs.writeFileSync(path.join(dir, 'sub', 'file'), 'nested canary\n');
  const before = treeSnapshot(dir);
  return { dir, untouched: () => treeSnapshot(dir) === before, listing: () => treeSnapshot(dir) };
}

/** Host binaries an escape would overwrite: dist/tsrt and the node running the tests. */
export function hostBinaries(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of [TSRT, fs.realpathSync(process.execPath)]) out[f] = sha256(f);
  return out;
}

let attacker: string | undefined;
/** test/security/fixtures/attacker.c, built static once per test process. */
export function attackerBinary(): string {
  if (attacker) return attacker;
  const dir = tmpdir('tsrt-attacker-');
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'attacker');
  const r = spawnSync('gcc', ['-static', '-O2', '-Wall', '-o', out, path.join(REPO, 'test/security/fixtures/attacker.c')]);
  if (r.status !== 0) throw new Error(`gcc -static attacker.c: ${r.stderr}`);
  attacker = out;
  return out;
}

/** Copies the attacker into a bundle's rootfs as /attacker. */
export function plantAttacker(bundle: string): void {
  const dest = path.join(bundle, 'rootfs', 'attacker');
  fs.copyFileSync(attackerBinary(), dest);
  fs.chmodSync(dest, 0o755);
}

/** `tsrt exec` exists in this build (it lands on another branch). */
export function hasExec(): boolean {
  const r = tsrt(['exec', '--help']);
  return r.code === 0 && r.stdout.includes('USAGE');
}

/** The pid in a --pid-file. */
export function pidOf(pidFile: string): number {
  return Number(fs.readFileSync(pidFile, 'utf8').trim());
}

/**
 * After a refused create: `state` does not know the id, no state dir remains, and no mount of the bundle is
 * left on the host.
 */
export function assertNoLeftovers(t: Pick<Test, 'equal' | 'notOk' | 'same'>, root: string, id: string, bundle: string): void {
  const st = tsrt(['state', id], { root });
  t.notOk(st.code === 0, `state ${id} fails after the refused create`);
  t.notOk(fs.existsSync(path.join(root, id)), 'no state directory is left');
  t.same(hostMountsContaining(bundle), [], 'no mount of the bundle is left on the host');
}

/** The process's own mount table as the host sees it, for "nothing new on the host". */
export function hostMountPoints(): Set<string> {
  return new Set(
    fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(l => l.split(' ')[4]!),
  );
}

/** The message of runc's log line on stderr (time="…" level=error msg="…"), or the raw text. */
export const errorText = errorMessage;

/** create must fail with `pattern` in its error, exit non-zero, and leave nothing behind. */
export function expectRefused(tt: any, root: string, s: Scope, bundle: string, pattern: RegExp, flags: string[] = []): Result {
  const id = s.id();
  const r = rtFiles(root, s, ['create', ...flags, '-b', bundle, id]);
  tt.not(r.code, 0, 'create fails');
  tt.match(errorText(r.stderr), pattern, `the error says why: ${errorText(r.stderr)}`);
  assertNoLeftovers(tt, root, id, bundle);
  return r;
}

/** Drops the config's own /dev mount, so devices are made in the image's /dev (the shape crun and runc missed). */
export function imageDev(spec: any): void {
  spec.mounts = spec.mounts.filter((m: any) => m.destination !== '/dev');
}

/** dev:ino of the host binaries an escape would overwrite, as the attacker's `watch` mode takes them. */
export function hostBinaryIds(): string[] {
  return Object.keys(hostBinaries()).map(f => {
    const st = fs.statSync(f);
    // The attacker compares with st_dev as the kernel reports it to a process (new_encode_dev of the same).
    return `${st.dev}:${st.ino}`;
  });
}

/** A config edit: the container joins the pid namespace of host pid `pid` instead of making its own. */
export function joinPidnsOf(pid: number): (spec: any) => void {
  return spec => {
    spec.linux.namespaces = spec.linux.namespaces.map((n: any) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${pid}/ns/pid` } : n));
  };
}

/**
 * Starts a container that joins `pid`'s pid namespace and runs `/attacker watch SECONDS <host binaries>`
 * (detached; its output in a file). Returns a function that waits for it to finish and gives its output.
 */
export function startWatcher(tt: any, root: string, s: Scope, pid: number, seconds: number): () => { output: string; stopped: boolean } {
  const bundle = s.bundle(['/attacker', 'watch', String(seconds), ...hostBinaryIds()], joinPidnsOf(pid));
  plantAttacker(bundle);
  const id = s.id();
  const out = path.join(s.dir(), 'watch.out');
  const fd = fs.openSync(out, 'w');
  let r: Result;
  try {
    r = tsrt(['run', '-d', '-b', bundle, id], { root, stdio: ['ignore', fd, fd] });
  } finally {
    fs.closeSync(fd);
  }
  tt.equal(r.code, 0, `the watcher runs: ${fs.readFileSync(out, 'utf8')}`);
  return () => {
    let stopped = false;
    for (let i = 0; i < 4 * (seconds + 60) && !stopped; i++) {
      const st = tsrt(['state', id], { root });
      stopped = st.code !== 0 || JSON.parse(st.stdout).status === 'stopped';
      if (!stopped) spawnSync('sleep', ['0.25']);
    }
    return { output: fs.readFileSync(out, 'utf8'), stopped };
  };
}

/**
 * A running victim, the watcher in its pid namespace, and 20 `tsrt exec`s into it for the watcher to attack as
 * they appear; asserts each exec succeeded and the watcher finished, and gives back what the watcher printed.
 */
export function watchedExecs(tt: any, root: string, s: Scope): string {
  const victim = s.id();
  const pidFile = path.join(s.dir(), 'pid');
  const c = rtFiles(root, s, ['run', '-d', '--pid-file', pidFile, '-b', s.bundle(['sleep', '1000']), victim]);
  tt.equal(c.code, 0, c.stderr);
  const finish = startWatcher(tt, root, s, pidOf(pidFile), 20);
  for (let i = 0; i < 20; i++) {
    const e = rtFiles(root, s, ['exec', victim, 'sh', '-c', 'exit 0']);
    tt.equal(e.code, 0, `exec ${i}: ${e.stderr}`);
  }
  const { output, stopped } = finish();
  tt.ok(stopped, 'the watcher finished');
  tt.match(output, /^watched [1-9]\d* processes/m, `the watcher saw the container's processes: ${output}`);
  return output;
}
/** A console socket: `sock` to pass as --console-socket; `ptn()` the received master's pts number; `output()`. */
export function consoleReceiver(
  tt: { teardown(fn: () => void): void },
  s: Scope,
): {
  sock: string;
  ptn(): number | undefined;
  output(): string;
} {
  const { sock, out } = startConsoleReceiver(tt, s);
  waitFor(() => fs.existsSync(sock), 200, 50);
  const read = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
  return {
    sock,
    ptn: () => (read(`${out}.ptn`) ? Number(read(`${out}.ptn`).trim()) : undefined),
    output: () => read(out),
  };
}

/** Waits (bounded polling, scaled with the load, not a timing assertion) until the predicate holds. */
export function poll(pred: () => boolean, tries = 400): boolean {
  return waitFor(pred, tries, 50);
}

/** A host directory laid out like the /proc files runtimes write, each holding a canary value. */
export function fakeProcTree(s: Scope): Canary {
  const c = makeCanary(s);
  for (const f of [
    'self/attr/current',
    'self/attr/exec',
    'self/attr/apparmor/exec',
    'self/oom_score_adj',
    '1/oom_score_adj',
    'sys/net/ipv4/ip_unprivileged_port_start',
    'net/ipv4/ip_unprivileged_port_start',
    'sys/kernel/core_pattern',
    'sysrq-trigger',
  ]) {
    fs.mkdirSync(path.join(c.dir, path.dirname(f)), { recursive: true });
    fs.writeFileSync(path.join(c.dir, f), 'canary\n');
  }
  const before = treeSnapshot(c.dir);
  return { dir: c.dir, untouched: () => treeSnapshot(c.dir) === before, listing: () => treeSnapshot(c.dir) };
}

/** A file of the real procfs in pid's network namespace (nsenter), as the host reads it. */
export function readInNetns(pid: number, file: string): string {
  const r = spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'cat', file]);
  return r.stdout.toString().trim();
}

/**
 * A container that binds `volume` at /vol and runs `/attacker exchange /vol/A /vol/B` forever (detached; the
 * scope's teardown deletes it). Returns its id once the racer runs.
 */
export function startExchangeRacer(tt: any, root: string, s: Scope, volume: string, a: string, b: string): string {
  const bundle = s.bundle(['/attacker', 'exchange', `/vol/${a}`, `/vol/${b}`], spec => {
    spec.mounts.push({ destination: '/vol', type: 'bind', source: volume, options: ['rbind', 'rw'] });
  });
  plantAttacker(bundle);
  const id = s.id();
  const r = rtFiles(root, s, ['run', '-d', '-b', bundle, id]);
  tt.equal(r.code, 0, `the racer runs: ${r.stderr}`);
  const st = tsrt(['state', id], { root });
  tt.equal(st.code === 0 && JSON.parse(st.stdout).status, 'running', 'the racer is running');
  return id;
}

/** The mount points of a live process's mount table (as that process sees them) whose source root is `root`. */
export function mountPointsOf(pid: number, sourceRoot: string): string[] {
  return fs
    .readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(l => l.split(' '))
    .filter(f => f[3] === sourceRoot)
    .map(f => f[4]!);
}
