// Shared test plumbing: the built binary, bundles from busybox-static, an unprivileged user, and runs.
import { spawn, spawnSync, type SpawnSyncOptions, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Test } from 'tap';
import { RuntimeError } from '../src/errors.js';
import { procStat } from '../src/runtime/state.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const TSRT = path.join(REPO, 'dist', 'tsrt');
export const TSRT_JS = path.join(REPO, 'dist', 'tsrt.js');
export const TEST_USER = 'tsrtuser';

export interface Result {
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
}

function finish(r: ReturnType<typeof spawnSync>): Result {
  return {
    code: r.status ?? -1,
    signal: r.signal ?? null,
    stdout: r.stdout?.toString() ?? '',
    stderr: r.stderr?.toString() ?? '',
  };
}

/** Runs dist/tsrt with the given arguments (as root unless `user` is set). */
export function tsrt(args: string[], opts: SpawnSyncOptions & { user?: string; root?: string } = {}): Result {
  const { user, root, ...spawnOpts } = opts;
  const full = root ? ['--root', root, ...args] : args;
  const cmd = user ? 'runuser' : TSRT;
  const argv = user ? ['-u', user, '--', TSRT, ...full] : full;
  return finish(spawnSync(cmd, argv, { timeout: 60_000, ...spawnOpts }));
}

export function sh(command: string, opts: SpawnSyncOptions = {}): Result {
  return finish(spawnSync('sh', ['-c', command], { timeout: 60_000, ...opts }));
}

/**
 * A fresh temp directory (removed by the caller's t.teardown if wanted). R9: mkdtemp picks a random name and
 * makes it itself, so no other user can have made it first, and in the sticky /tmp none can swap it.
 */
export function tmpdir(prefix = 'tsrt-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  return dir;
}

export interface BundleOptions {
  rootless?: boolean;
  /** Owner (user name) of the bundle: needed for rootless runs. */
  owner?: string;
  /** Edit the generated config before it is written back. */
  edit?: (spec: any) => void;
}

/** Builds a busybox bundle in a new temp dir running `args`; returns the bundle path. */
export function makeBundle(args: string[], opts: BundleOptions = {}): string {
  const parent = tmpdir();
  if (opts.owner) spawnSync('chown', [opts.owner, parent]);
  const dir = path.join(parent, 'bundle');
  const flags = [dir];
  if (opts.rootless) flags.push('--rootless');
  const r = opts.owner
    ? spawnSync('runuser', ['-u', opts.owner, '--', 'bash', path.join(REPO, 'hack/mkbundle.sh'), ...flags, '--', ...args])
    : spawnSync('bash', [path.join(REPO, 'hack/mkbundle.sh'), ...flags, '--', ...args]);
  if (r.status !== 0) throw new Error(`mkbundle failed: ${r.stderr}`);
  if (opts.edit) editConfig(dir, opts.edit);
  return dir;
}

export function editConfig(bundle: string, edit: (spec: any) => void): void {
  const file = path.join(bundle, 'config.json');
  const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(spec);
  fs.writeFileSync(file, JSON.stringify(spec, null, 2));
}

/** A second unprivileged user, for the multi-user tests: the neighbour who attacks TEST_USER. */
export const ATTACKER_USER = 'tsrtattacker';

/** Makes sure an unprivileged user exists (with subordinate id ranges when given) and returns its ids. */
function ensureUser(name: string, subidStart?: number): { name: string; uid: number; gid: number } {
  if (spawnSync('id', ['-u', name]).status !== 0) {
    const r = spawnSync('useradd', ['-m', name]);
    // Another test file may have made it meanwhile (useradd exits 9 then): only a user still missing is an error.
    if (r.status !== 0 && spawnSync('id', ['-u', name]).status !== 0) throw new Error(`useradd failed: ${r.stderr}`);
  }
  const uid = Number(spawnSync('id', ['-u', name]).stdout.toString().trim());
  const gid = Number(spawnSync('id', ['-g', name]).stdout.toString().trim());
  for (const file of subidStart === undefined ? [] : ['/etc/subuid', '/etc/subgid']) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (!text.split('\n').some(l => l.startsWith(`${name}:`))) fs.appendFileSync(file, `${name}:${subidStart}:65536\n`);
  }
  return { name, uid, gid };
}

/** The unprivileged test user (with subordinate id ranges) and its ids. */
export function testUser(): { name: string; uid: number; gid: number } {
  return ensureUser(TEST_USER, 200000);
}

/** The attacking neighbour of the multi-user tests (no subordinate ids: it never runs containers of its own). */
export function attackerUser(): { name: string; uid: number; gid: number } {
  return ensureUser(ATTACKER_USER);
}

/** A unique container id for this test process. */
let counter = 0;
export function uniqueId(prefix = 't'): string {
  return `${prefix}-${process.pid}-${++counter}`;
}

/** Mount points currently on the host whose path contains `fragment`. */
export function hostMountsContaining(fragment: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(l => l.includes(fragment));
}

/** Waits (polling, bounded) until the predicate holds; returns whether it did. Not a timing assertion. */
export function waitFor(pred: () => boolean, tries = 100, delayMs = 50): boolean {
  for (let i = 0; i < tries; i++) {
    if (pred()) return true;
    spawnSync('sleep', [String(delayMs / 1000)]);
  }
  return pred();
}

export type Edit = (spec: any) => void;

/** Per-test resources that are cleaned up in the test's teardown. */
export interface Scope {
  /** A fresh container id, deleted (--force) at the end of the test. */
  id(prefix?: string): string;
  /** A busybox bundle running `args`, removed at the end of the test. */
  bundle(args: string[], edit?: Edit): string;
  /** A scratch directory, removed at the end of the test. */
  dir(): string;
}

export function testScope(tt: { teardown(fn: () => void): void }, root: string, idPrefix: string): Scope {
  const ids: string[] = [];
  const dirs: string[] = [];
  tt.teardown(() => {
    for (const id of ids) tsrt(['delete', '--force', id], { root });
    for (const d of dirs) {
      // Never rm -rf through a mount that leaked onto the host (it could be a bind of a host directory).
      if (hostMountsContaining(d).length === 0) fs.rmSync(d, { recursive: true, force: true });
    }
  });
  return {
    id(prefix = idPrefix) {
      const id = uniqueId(prefix);
      ids.push(id);
      return id;
    },
    bundle(args, edit) {
      const b = makeBundle(args, edit ? { edit } : {});
      dirs.push(path.dirname(b));
      return b;
    },
    dir() {
      const d = tmpdir();
      dirs.push(d);
      return d;
    },
  };
}

/** Runs tsrt with stdout/stderr on files in a scope directory; `out` keeps receiving what a left process writes. */
export function tsrtToFiles(
  root: string, s: Scope, args: string[], opts: SpawnSyncOptions & { root?: string } = {},
): Result & { out: string } {
  const d = s.dir();
  const out = path.join(d, 'stdout');
  const err = path.join(d, 'stderr');
  const outFd = fs.openSync(out, 'w');
  const errFd = fs.openSync(err, 'w');
  let r: Result;
  try {
    r = tsrt(args, { root, stdio: ['ignore', outFd, errFd], ...opts });
  } finally {
    fs.closeSync(outFd);
    fs.closeSync(errFd);
  }
  return { ...r, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8'), out };
}

/** What an end-to-end test file shares: its private state root and the ways to run tsrt against it. */
export interface E2eFile {
  /** The file's own --root, removed when the file's tests end. */
  ROOT: string;
  /** Ids, bundles and directories of one test, cleaned in its teardown; ids start with the file's idPrefix. */
  scope(tt: { teardown(fn: () => void): void }): Scope;
  /** tsrt with ROOT, for commands that leave no container process holding our pipes. */
  rt(args: string[], opts?: SpawnSyncOptions): Result;
  /**
   * tsrt with ROOT and its stdio on files, for commands that leave a container process behind (create, run -d):
   * a pipe of ours kept open by it would make spawnSync wait for it.
   */
  rtFiles(s: Scope, args: string[], opts?: SpawnSyncOptions & { root?: string }): Result & { out: string };
  /** Bounded polling (up to ~20s by default, for a loaded machine); never a timing assertion. */
  waitFor(pred: () => boolean, tries?: number): boolean;
}

/**
 * The set-up of an end-to-end file that needs root: the file's timeout, a skip (plan 0, exit) when not root,
 * and a private state root removed in the file's teardown.
 */
export function e2eFile(
  t: { setTimeout(ms: number): void; plan(n: number, comment?: string): void; teardown(fn: () => void): void },
  opts: { name: string; idPrefix: string; needsRoot: string; timeoutMinutes?: number; rootPrefix?: string },
): E2eFile {
  if (opts.timeoutMinutes !== undefined) t.setTimeout(opts.timeoutMinutes * 60_000);
  if (process.geteuid?.() !== 0) {
    t.plan(0, opts.needsRoot);
    process.exit(0);
  }
  const ROOT = tmpdir(opts.rootPrefix ?? `tsrt-e2e-${opts.name}-root-`);
  t.teardown(() => fs.rmSync(ROOT, { recursive: true, force: true }));
  return {
    ROOT,
    scope: tt => testScope(tt, ROOT, opts.idPrefix),
    rt: (args, o = {}) => tsrt(args, { root: ROOT, ...o }),
    rtFiles: (s, args, o = {}) => tsrtToFiles(ROOT, s, args, o),
    waitFor: (pred, tries = 400) => waitFor(pred, tries, 50),
  };
}

/** A file's text, or '' when it cannot be read (yet): for polling files a container or a helper writes. */
export function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The message of the first runc-style `msg="..."` on stderr, or all of stderr (trimmed) when there is none. */
export function errorMessage(stderr: string): string {
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(stderr);
  return m ? (JSON.parse(`"${m[1]}"`) as string) : stderr.trim();
}

/** The message of stderr's last line when that is a `level=error msg="..."` line in the text log format. */
export function lastErrorMessage(stderr: string): string | undefined {
  const lines = stderr.trimEnd().split('\n');
  const m = /^time="[^"]+" level=error msg=(".*")$/.exec(lines[lines.length - 1] ?? '');
  return m ? (JSON.parse(m[1]!) as string) : undefined;
}

/** The message of the RuntimeError fn throws (fails the test when it throws something else or nothing). */
export function errorOf(t: Test, fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    t.ok(e instanceof RuntimeError, 'a RuntimeError');
    return (e as Error).message;
  }
  t.fail('did not throw');
  return undefined;
}

/** Removes the cgroup `rel` and every cgroup below it, in each hierarchy under /sys/fs/cgroup that has it. */
export function removeCgroupEverywhere(rel: string): void {
  const cg = '/sys/fs/cgroup';
  for (const h of fs.readdirSync(cg)) {
    const d = path.join(cg, h, rel);
    if (fs.existsSync(d)) spawnSync('sh', ['-c', `find ${d} -depth -type d -exec rmdir {} \\;`]);
  }
}

let cgroupCounter = 0;
/** A fresh absolute cgroupsPath starting with `prefix`; whatever is left of it is removed at the end of the test. */
export function testCgroupPath(tt: { teardown(fn: () => void): void }, prefix: string): string {
  const p = `/${prefix}-${process.pid}-${++cgroupCounter}`;
  tt.teardown(() => removeCgroupEverywhere(p));
  return p;
}

/**
 * Runs `steps` (sh; $T is tsrt with `root`) in a private mount namespace where /sys/fs/cgroup shows only
 * cgroup2, after `run -d` of `bundle` as `id` (its output in `out`) has printed "ready" (bounded wait).
 */
export function onCgroup2Only(o: { root: string; bundle: string; id: string; out: string; steps: string }): SpawnSyncReturns<string> {
  const cg = '/sys/fs/cgroup';
  const script = `
set -e
umount -R ${cg}
mount -t cgroup2 cgroup2 ${cg}
T="${TSRT} --root ${o.root}"
$T run -d -b ${o.bundle} ${o.id} > ${o.out} 2>&1 < /dev/null
for i in $(seq 1 200); do grep -q ready ${o.out} && break; sleep 0.05; done
${o.steps}`;
  return spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 120_000 });
}

// Node cannot receive SCM_RIGHTS: python takes the pty master, writes `out.ptn` (its pts number, TIOCGPTN) and
// then `out.fds` ("<fds received> <payload>"), and copies what it reads to `out` until the container side closes.
const CONSOLE_RECEIVER = `
import fcntl, os, socket, struct, sys
path, out = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
conn, _ = srv.accept()
msg, fds, flags, addr = socket.recv_fds(conn, 4096, 4)
ptn = struct.unpack('I', fcntl.ioctl(fds[0], 0x80045430, b'\\0' * 4))[0] if fds else -1
with open(out + '.ptn', 'w') as f:
    f.write('%d\\n' % ptn)
with open(out + '.fds', 'w') as f:
    f.write('%d %s\\n' % (len(fds), msg.decode()))
with open(out, 'ab', buffering=0) as f:
    while fds:
        try:
            data = os.read(fds[0], 4096)
        except OSError:
            break
        if not data:
            break
        f.write(data)
`;

/**
 * Starts the console-socket receiver above as `python3 script sock out` in a fresh scope directory; it is
 * killed at the end of the test. The caller waits for `sock` to exist.
 */
export function startConsoleReceiver(
  tt: { teardown(fn: () => void): void }, s: Scope,
): { sock: string; out: string } {
  const dir = s.dir();
  const script = path.join(dir, 'receiver.py');
  const sock = path.join(dir, 'console.sock');
  const out = path.join(dir, 'console.out');
  fs.writeFileSync(script, CONSOLE_RECEIVER);
  const receiver = spawn('python3', [script, sock, out], { stdio: 'ignore' });
  tt.teardown(() => {
    if (receiver.exitCode === null && receiver.pid) process.kill(receiver.pid, 'SIGKILL');
  });
  return { sock, out };
}

/** A live (not zombie) process. */
export function alive(pid: number): boolean {
  const st = procStat(pid);
  return !!st && st.state !== 'Z' && st.state !== 'X';
}
