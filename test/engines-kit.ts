// What the engine test files share: a private daemon per file (started by hack/engines/<engine>.sh, stopped by
// pid in the file's teardown), a bounded way to run the engine's CLI, and `sameAsRunc`: every scenario runs
// once with runc and once with tsrt under the same daemon, and both must give the expected result — the same.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Test } from 'tap';
import { native } from '../src/native.js';
import { REPO, TSRT, readOrEmpty, waitFor, type Result } from './helpers.js';

export const RUNTIMES = ['runc', 'tsrt'] as const;
export type Runtime = (typeof RUNTIMES)[number];

export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): Result {
  const r = spawnSync(cmd, args, { timeout: 120_000, ...opts });
  return { code: r.status ?? -1, signal: r.signal ?? null, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '' };
}

/**
 * The set-up of an engine test file: its timeout, and a skip (plan 0, exit) when not root or when something
 * hack/deps.sh installs is missing (`files` by path, `pythonModules` importable by Debian's python3).
 */
export function engineFile(t: Test, what: string, minutes: number, files: string[], pythonModules: string[] = []): void {
  t.setTimeout(minutes * 60_000);
  if (process.geteuid?.() !== 0) {
    t.plan(0, `the ${what} tests start a private daemon: they need root`);
    process.exit(0);
  }
  const missing = files.filter(f => !fs.existsSync(f));
  if (pythonModules.length && run('/usr/bin/python3', ['-c', `import ${pythonModules.join(', ')}`]).code !== 0) {
    missing.push(`python3 modules ${pythonModules.join(', ')}`);
  }
  if (missing.length) {
    t.plan(0, `hack/deps.sh installs the engines: ${missing.join(', ')} missing`);
    process.exit(0);
  }
}

/**
 * Starts the engine's private daemon for this file (`hack/engines/<script> up` with ENGINE_PREFIX) and stops it
 * in the file's teardown. Returns the script's `KEY=value` output lines as an object.
 */
export function engineDaemon(t: Test, script: string, prefix: string, extraEnv: Record<string, string> = {}): Record<string, string> {
  const env = { ...process.env, ENGINE_PREFIX: prefix, TSRT_BIN: TSRT, ...extraEnv };
  const file = path.join(REPO, 'hack', 'engines', script);
  // The prefix names host-wide things (paths, cgroups, bridge, subnet): a suite run from another checkout at the
  // same time waits here instead of sharing them. The lock goes with this process.
  const lockFd = fs.openSync(`/run/lock/${prefix}.lock`, 'w');
  native().flock(lockFd, true, true);
  t.teardown(() => {
    const down = run('bash', [file, 'down'], { env });
    if (down.code !== 0) console.error(`${script} down: ${down.stderr}`);
  });
  const up = run('bash', [file, 'up'], { env, timeout: 300_000 });
  if (up.code !== 0) throw new Error(`${script} up failed (${up.code}): ${up.stderr}`);
  const vars: Record<string, string> = {};
  for (const line of up.stdout.split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m) vars[m[1]!] = m[2]!;
  }
  return vars;
}

/**
 * One scenario, named after the engine feature it covers: `measure` runs with runc and with tsrt (in that
 * order, under the same daemon) and returns what the scenario observed. runc's result must match `expected`
 * (so the scenario really tests something on this host), and tsrt's must equal runc's.
 */
export function sameAsRunc<T>(t: Test, name: string, expected: unknown, measure: (rt: Runtime, tt: Test) => T): void {
  t.test(name, async tt => {
    const results = {} as Record<Runtime, T>;
    for (const rt of RUNTIMES) results[rt] = measure(rt, tt);
    tt.match(results.runc, expected, 'runc gives the expected result on this host');
    tt.match(results.tsrt, expected, 'tsrt gives the expected result');
    tt.same(results.tsrt, results.runc, 'tsrt gives what runc gives');
  });
}

/**
 * The runtime's part of an engine's "OCI runtime create failed: …" message, without the "runc create failed: "
 * runc puts before its own errors, so runc's and tsrt's messages compare.
 */
export const createError = (stderr: string): string =>
  (/OCI runtime create failed: (.*)$/m.exec(stderr)?.[1] ?? stderr.trim()).replace(/^runc create failed: /, '');

/** The non-empty lines of an engine's output, trimmed: what is compared across runtimes. */
export const lines = (text: string): string[] =>
  text
    .split('\n')
    .map(l => l.trim())
    .filter(Boolean);

/**
 * Whether a line of `output` is what tty(1) prints for a pty, "/dev/pts/<n>". A terminal (script's) may put a
 * stray "^@" before it, so only the line's end is anchored; n depends on the ptys the container still holds.
 */
export const isPtyName = (output: string): boolean => lines(output.replace(/[\r\0]/g, '')).some(l => /\/dev\/pts\/\d+$/.test(l));

/**
 * Runs an engine CLI command line that starts a container with a terminal (`docker run -it IMAGE`, `ctr run
 * -t IMAGE NAME`) under script(1), which gives the CLI a terminal of its own. The container reports its tty and
 * echoes a typed line back through it.
 */
export function throughPty(commandLine: string, env: NodeJS.ProcessEnv = process.env): { code: number; tty: boolean; echoed: boolean } {
  const r = run('/usr/bin/script', ['-qec', `${commandLine} sh -c 'tty; read l; echo "got:$l"'`, '/dev/null'], {
    env,
    input: 'through the pty\n',
  });
  const out = lines(r.stdout.replace(/[\r\0]/g, ''));
  return { code: r.code, tty: isPtyName(r.stdout), echoed: out.some(l => l.endsWith('got:through the pty')) };
}

/**
 * Waits until the init `pid` runs `cmd`. An engine's start returns once the init is released, maybe before it
 * has exec'd (runc's init is then still Go, whose SIGTERM default ends it with status 2), so scenarios that
 * signal an init wait for its exec first.
 */
export function waitForExec(pid: number, cmd: string[]): void {
  waitFor(() => readOrEmpty(`/proc/${pid}/cmdline`) === `${cmd.join('\0')}\0`, 200, 50);
}

/** The namespace inode links of a process, as `readlink /proc/<pid>/ns/<name>` gives them. */
export function hostNamespace(pid: number | 'self', name: string): string {
  return fs.readlinkSync(`/proc/${pid}/ns/${name}`);
}
