// runc ps: the container's processes as host pids, from its cgroup (or, without a cgroup of its own, its pid
// namespace, as kill --all finds them), and the host's ps(1) table cut down to those pids.
import { spawnSync } from 'node:child_process';
import { RuntimeError } from '../errors.js';
import { cgroupOf, containerPids } from './container.js';
import { ContainerDir, notExist } from './state.js';

/**
 * Host pids of every process in the container. A stopped container has none (runc answers with an empty
 * list, not an error, while its state is still there).
 */
export function containerProcesses(root: string, id: string): number[] {
  const dir = new ContainerDir(root, id);
  if (!dir.exists()) throw notExist();
  const rec = dir.load();
  const cgroup = cgroupOf(rec);
  if (cgroup) return cgroup.pids();
  return dir.status(rec) === 'stopped' ? [] : containerPids(rec);
}

/**
 * Keeps ps(1)'s header and the lines whose PID column (found by name in the header) is one of `pids`. As in
 * runc, columns are split at blanks, so a column with blanks before PID (args first) cannot be filtered.
 */
export function filterPsOutput(output: string, pids: number[]): string {
  const lines = output.split('\n');
  const header = lines[0] ?? '';
  const pidIndex = header.trim().split(/\s+/).indexOf('PID');
  if (pidIndex < 0) throw new RuntimeError("couldn't find PID field in ps output", { op: 'ps' });
  const wanted = new Set(pids);
  let out = `${header}\n`;
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const field = line.trim().split(/\s+/)[pidIndex];
    if (field === undefined || !/^[+-]?\d+$/.test(field)) {
      const why =
        field === undefined
          ? `line ${JSON.stringify(line)} has no column ${pidIndex + 1}`
          : `strconv.Atoi: parsing ${JSON.stringify(field)}: invalid syntax`;
      throw new RuntimeError(`unable to parse pid: ${why}`, { op: 'ps' });
    }
    if (wanted.has(Number(field))) out += `${line}\n`;
  }
  return out;
}

/** Runs the host's ps with `psArgs` (runc's default: -ef) and filters its table to `pids`. */
export function psTable(pids: number[], psArgs: string[]): string {
  const args = psArgs.length ? psArgs : ['-ef'];
  const r = spawnSync('ps', args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
  const output = `${r.stdout?.toString() ?? ''}${r.stderr?.toString() ?? ''}`;
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'exec: "ps": executable file not found in $PATH' : r.error.message;
    throw new RuntimeError(`${why}: ${output}`, { op: 'ps', errno: code ?? '' });
  }
  // runc's message is Go's exec error followed by everything ps printed.
  if (r.signal) throw new RuntimeError(`signal: ${r.signal}: ${output}`, { op: 'ps' });
  if (r.status !== 0) throw new RuntimeError(`exit status ${r.status}: ${output}`, { op: 'ps' });
  return filterPsOutput(r.stdout.toString(), pids);
}
