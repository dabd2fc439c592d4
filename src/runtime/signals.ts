// Signal names as runc accepts them: "KILL", "SIGKILL", "sigkill" or a number (0: only check the process exists).
// The names and numbers are the front door's too (src/native-abi/table.ts).
import { RuntimeError } from '../errors.js';
import { TSRT_SIG_NAMES, TSRT_SIG_NUMBERS, TSRT_SIG_RTMAX as SIGRTMAX, TSRT_SIG_RTMIN as SIGRTMIN } from '../native-abi/abi.gen.js';

const SIGNALS: Record<string, number> = Object.fromEntries(TSRT_SIG_NAMES.map((name, i) => [name, TSRT_SIG_NUMBERS[i]!]));

export function parseSignal(raw: string): number {
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    // 0 sends nothing: kill(2)'s check that the process exists, which runc accepts too.
    if (n >= 0 && n <= SIGRTMAX) return n;
    throw new RuntimeError(`unknown signal "${raw}"`, { op: 'kill' });
  }
  let name = raw.toUpperCase();
  if (!name.startsWith('SIG')) name = `SIG${name}`;
  const known = SIGNALS[name];
  if (known !== undefined) return known;
  const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(name) ?? /^SIGRTMAX(?:-(\d+))?$/.exec(name);
  if (rt) {
    const off = Number(rt[1] ?? 0);
    const n = name.startsWith('SIGRTMIN') ? SIGRTMIN + off : SIGRTMAX - off;
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
  }
  throw new RuntimeError(`unknown signal "${raw}"`, { op: 'kill' });
}

/** What Go (and so runc) prints for a process killed by a signal: "signal: killed", "signal: bad system call". */
const DESCRIPTIONS = [
  '',
  'hangup',
  'interrupt',
  'quit',
  'illegal instruction',
  'trace/breakpoint trap',
  'aborted',
  'bus error',
  'floating point exception',
  'killed',
  'user defined signal 1',
  'segmentation fault',
  'user defined signal 2',
  'broken pipe',
  'alarm clock',
  'terminated',
  'stack fault',
  'child exited',
  'continued',
  'stopped (signal)',
  'stopped',
  'stopped (tty input)',
  'stopped (tty output)',
  'urgent I/O condition',
  'CPU time limit exceeded',
  'file size limit exceeded',
  'virtual timer expired',
  'profiling timer expired',
  'window changed',
  'I/O possible',
  'power failure',
  'bad system call',
];

/** A signal number or name (SIGSYS) as runc describes it; an unknown one by its number. */
export function signalText(sig: number | string): string {
  const n = typeof sig === 'number' ? sig : (SIGNALS[sig] ?? Number.NaN);
  return DESCRIPTIONS[n] || (Number.isNaN(n) ? String(sig) : `signal ${n}`);
}
