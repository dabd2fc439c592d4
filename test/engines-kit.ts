// What the engine test files share: a private daemon per file (started by hack/engines/<engine>.sh, stopped by
// pid in the file's teardown), a bounded way to run the engine's CLI, and `sameAsRunc`: every scenario runs
// once with runc and once with tsrt under the same daemon, and both must give the expected result — the same.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Test } from 'tap';
import { REPO, TSRT, type Result } from './helpers.js';

export const RUNTIMES = ['runc', 'tsrt'] as const;
export type Runtime = (typeof RUNTIMES)[number];

export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): Result {
  const r = spawnSync(cmd, args, { timeout: 120_000, ...opts });
  return { code: r.status ?? -1, signal: r.signal ?? null, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '' };
}

/** Which of the engines' packages (hack/deps.sh installs them) are missing. */
export function missingCommands(commands: string[]): string[] {
  return commands.filter(c => !fs.existsSync(c));
}

/**
 * Starts the engine's private daemon for this file (`hack/engines/<script> up` with ENGINE_PREFIX) and stops it
 * in the file's teardown. Returns the script's `KEY=value` output lines as an object.
 */
export function engineDaemon(t: Test, script: string, prefix: string, extraEnv: Record<string, string> = {}): Record<string, string> {
  const env = { ...process.env, ENGINE_PREFIX: prefix, TSRT_BIN: TSRT, ...extraEnv };
  const file = path.join(REPO, 'hack', 'engines', script);
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

/** The non-empty lines of an engine's output, trimmed: what is compared across runtimes. */
export const lines = (text: string): string[] => text.split('\n').map(l => l.trim()).filter(Boolean);

/** The namespace inode links of a process, as `readlink /proc/<pid>/ns/<name>` gives them. */
export function hostNamespace(pid: number | 'self', name: string): string {
  return fs.readlinkSync(`/proc/${pid}/ns/${name}`);
}
