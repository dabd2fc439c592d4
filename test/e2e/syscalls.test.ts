// What the small commands ask of the kernel, counted with strace: a regression guard for issue 7 that does not
// time anything. state, kill, start and delete must start no process (a syscall does the job), touch the
// container's state directory and its /proc entry no more often than the baseline below, and the JS process
// must never be written into the container's cgroup.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TSRT, e2eFile } from '../helpers.js';

const { ROOT, scope, rt, rtFiles, waitFor } = e2eFile(t, {
  name: 'syscalls',
  idPrefix: 'sy',
  needsRoot: 'syscall counts need root (strace of containers)',
  timeoutMinutes: 5,
});

/**
 * Syscalls that name the container's state directory / its init's /proc entry, per command, as measured when
 * this guard was written. More means a command started doing extra file work on every call.
 */
const BASELINE: Record<string, { stateDir: number; procPid: number }> = {
  state: { stateDir: 3, procPid: 1 },
  kill: { stateDir: 4, procPid: 2 },
  start: { stateDir: 7, procPid: 2 },
  delete: { stateDir: 8, procPid: 2 },
};

interface Trace {
  lines: string[];
  mainPid: number;
}

function straced(s: ReturnType<typeof scope>, args: string[]): Trace {
  const out = path.join(s.dir(), 'strace');
  const r = spawnSync('strace', ['-f', '-s', '256', '-o', out, TSRT, '--root', ROOT, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`strace ${args.join(' ')}: ${r.stderr}`);
  // strace pads the pid column to five characters: one space after a 5-digit pid, two after a 4-digit one.
  const raw = fs
    .readFileSync(out, 'utf8')
    .split('\n')
    .filter(l => l !== '')
    .map(l => l.replace(/^(\d+) +/, '$1 '));
  const lines = joinInterrupted(raw);
  return { lines, mainPid: Number(lines[0]!.split(' ')[0]) };
}

/**
 * strace -f splits a call another thread interrupts into "PID call(args <unfinished ...>" and, later,
 * "PID <... call resumed>rest". Under load that happens to any call, so each pair is joined back into the one
 * line the patterns below expect.
 */
function joinInterrupted(raw: string[]): string[] {
  const pending = new Map<string, string>();
  const lines: string[] = [];
  for (const l of raw) {
    const start = /^(\d+) (.*) <unfinished \.\.\.>$/.exec(l);
    if (start) {
      pending.set(start[1]!, start[2]!);
      continue;
    }
    const end = /^(\d+) <\.\.\. \S+ resumed>(.*)$/.exec(l);
    if (end && pending.has(end[1]!)) {
      lines.push(`${end[1]} ${pending.get(end[1]!)}${end[2]}`);
      pending.delete(end[1]!);
      continue;
    }
    lines.push(l);
  }
  for (const [pid, call] of pending) lines.push(`${pid} ${call}`);
  return lines;
}

/** Processes (not threads) the command started: clone/clone3/fork/vfork without CLONE_THREAD. */
function processesStarted(tr: Trace): string[] {
  return tr.lines.filter(l => /\b(clone3?|fork|vfork)\(/.test(l) && !l.includes('CLONE_THREAD') && !l.includes('resumed>'));
}

function count(tr: Trace, fragment: string): number {
  return tr.lines.filter(l => l.includes(fragment) && !l.includes('resumed>')).length;
}

function idle(s: ReturnType<typeof scope>): { id: string; pid: number; dir: string } {
  const bundle = s.bundle(['sleep', '1000']);
  const id = s.id();
  const r = rtFiles(s, ['run', '-d', '-b', bundle, id]);
  if (r.code !== 0) throw new Error(`run -d failed: ${r.stderr}`);
  return { id, pid: JSON.parse(rt(['state', id]).stdout).pid, dir: path.join(ROOT, id) };
}

t.test('strace is installed (hack/deps.sh)', async tt => {
  tt.equal(spawnSync('strace', ['-V']).status, 0);
});

for (const verb of ['state', 'kill'] as const) {
  t.test(`${verb} of a running container: no process started, state and /proc read within the baseline`, async tt => {
    const s = scope(tt);
    const c = idle(s);
    const tr = straced(s, verb === 'kill' ? ['kill', c.id, 'CONT'] : ['state', c.id]);
    tt.same(processesStarted(tr), [], 'no clone/fork of a process');
    tt.equal(count(tr, 'execve('), 1, 'only tsrt itself is executed');
    tt.ok(count(tr, c.dir) <= BASELINE[verb]!.stateDir, `state dir named ${count(tr, c.dir)} times (baseline ${BASELINE[verb]!.stateDir})`);
    tt.ok(
      count(tr, `/proc/${c.pid}/`) <= BASELINE[verb]!.procPid,
      `/proc/${c.pid} named ${count(tr, `/proc/${c.pid}/`)} times (baseline ${BASELINE[verb]!.procPid})`,
    );
  });
}

t.test('start and delete: no process started, state and /proc read within the baseline', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['true']);
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  tt.equal(c.code, 0, c.stderr);
  const pid = JSON.parse(rt(['state', id]).stdout).pid as number;
  const dir = path.join(ROOT, id);
  const start = straced(s, ['start', id]);
  tt.same(processesStarted(start), [], 'start: no clone/fork of a process');
  tt.ok(count(start, dir) <= BASELINE['start']!.stateDir, `start: state dir named ${count(start, dir)} times`);
  tt.ok(count(start, `/proc/${pid}/`) <= BASELINE['start']!.procPid, `start: /proc/${pid} named ${count(start, `/proc/${pid}/`)} times`);
  tt.ok(
    waitFor(() => JSON.parse(rt(['state', id]).stdout).status === 'stopped'),
    'the container ran to its end',
  );
  const del = straced(s, ['delete', id]);
  tt.same(processesStarted(del), [], 'delete: no clone/fork of a process');
  tt.ok(count(del, dir) <= BASELINE['delete']!.stateDir, `delete: state dir named ${count(del, dir)} times`);
  tt.ok(count(del, `/proc/${pid}/`) <= BASELINE['delete']!.procPid, `delete: /proc/${pid} named ${count(del, `/proc/${pid}/`)} times`);
  tt.notOk(fs.existsSync(dir), 'delete removed the state directory');
});

/** Whether the front door (dist/tsrt) ran the TypeScript core: an exec of any kind after its own. */
function coreExecs(tr: Trace): string[] {
  return tr.lines.filter(l => /\bexecve(at)?\(/.test(l)).slice(1);
}

t.test('the front door does state, kill, start, delete, list and --version itself: the core is never executed', async tt => {
  const s = scope(tt);
  const c = idle(s);
  const bundle = s.bundle(['true']);
  const id = s.id();
  tt.equal(rtFiles(s, ['create', '-b', bundle, id]).code, 0, 'created');
  const fast: [string, string[]][] = [
    ['state', ['state', c.id]],
    ['kill', ['kill', c.id, 'CONT']],
    ['list', ['list']],
    ['list -f json', ['list', '-f', 'json']],
    ['--version', ['--version']],
    ['start', ['start', id]],
  ];
  for (const [what, args] of fast) {
    const tr = straced(s, args);
    tt.same(coreExecs(tr), [], `${what}: only the front door was executed`);
    tt.same(processesStarted(tr), [], `${what}: no process started`);
  }
  tt.ok(
    waitFor(() => JSON.parse(rt(['state', id]).stdout).status === 'stopped'),
    'the container ran to its end',
  );
  const del = straced(s, ['delete', id]);
  tt.same(coreExecs(del), [], 'delete: only the front door was executed');
  // The other way round, so the check above can fail: a verb of the core's is handed over by one exec.
  const features = straced(s, ['features']);
  tt.equal(coreExecs(features).length, 1, 'features: the core is executed once');
  tt.match(coreExecs(features)[0], /execveat\(\d+, "", \[/, 'by the fd the front door checked');
});

t.test('run: the JS process is never written into the container cgroup', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['true']);
  const tr = straced(s, ['run', '-b', bundle, s.id()]);
  const threads = new Set([tr.mainPid]);
  for (const l of tr.lines) {
    const m = /^(\d+) .*clone3?\(.*CLONE_THREAD.*= (\d+)$/.exec(l) ?? /^(\d+) .*clone3? resumed>.*= (\d+)$/.exec(l);
    if (m && threads.has(Number(m[1])) && l.includes('CLONE_THREAD')) threads.add(Number(m[2]));
  }
  // fd -> cgroup membership file, per process, then every write to one of them
  const cgroupFds = new Map<string, string>();
  const written: { file: string; pid: number }[] = [];
  for (const l of tr.lines) {
    const open = /^(\d+) openat\(.*"(\/sys\/fs\/cgroup\/[^"]*\/(cgroup\.procs|tasks))".*= (\d+)$/.exec(l);
    if (open) cgroupFds.set(`${open[1]}:${open[4]}`, open[2]!);
    const w = /^(\d+) write\((\d+), "(\d+)"/.exec(l);
    if (w && cgroupFds.has(`${w[1]}:${w[2]}`)) written.push({ file: cgroupFds.get(`${w[1]}:${w[2]}`)!, pid: Number(w[3]) });
  }
  tt.ok(written.length > 0, 'the container was placed in its cgroup');
  tt.same(
    written.filter(x => threads.has(x.pid)),
    [],
    'no write names the tsrt process or one of its threads',
  );
});

t.test('create as root: the init moves itself into the v1 hierarchies; the runtime writes its pid to cgroup2 only', async tt => {
  const v1 = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some(l => / - cgroup /.test(l));
  const s = scope(tt);
  const tr = straced(s, ['run', '-b', s.bundle(['true']), s.id()]);
  // The runtime opens each v1 directory's tasks file; the init, which inherits the fd, writes "0" to it.
  const tasksFds = new Map<string, string>();
  const procsWrites: string[] = [];
  const procsFds = new Map<string, string>();
  for (const l of tr.lines) {
    const open = /^(\d+) openat\(.*"(\/sys\/fs\/cgroup\/[^"]*\/(cgroup\.procs|tasks))".*= (\d+)$/.exec(l);
    if (open && Number(open[1]) === tr.mainPid) (open[3] === 'tasks' ? tasksFds : procsFds).set(open[4]!, open[2]!);
    const w = /^(\d+) write\((\d+), "(\d+)"/.exec(l);
    if (w && Number(w[1]) === tr.mainPid && procsFds.has(w[2]!)) procsWrites.push(procsFds.get(w[2]!)!);
  }
  const selfMoves = tr.lines.filter(l => {
    const w = /^(\d+) write\((\d+), "0", 1\) += 1$/.exec(l);
    return w && Number(w[1]) !== tr.mainPid && tasksFds.has(w[2]!);
  });
  if (!v1) {
    tt.same([...tasksFds.values()], [], 'a cgroup2-only host: no v1 hierarchy, no tasks file opened');
    return;
  }
  tt.ok(tasksFds.size > 0, `a v1 host: the tasks files are opened (${[...tasksFds.values()].join(' ')})`);
  tt.equal(selfMoves.length, tasksFds.size, 'the init writes "0" to each of them');
  tt.same(
    procsWrites.filter(f => !f.startsWith('/sys/fs/cgroup/unified/')),
    [],
    'the runtime writes the pid to no v1 cgroup.procs (that write waits for an RCU grace period)',
  );
});
