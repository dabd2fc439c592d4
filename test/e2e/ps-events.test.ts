// ps and events end to end through dist/tsrt, as runc answers them: ps lists the container's processes (as
// JSON for docker top, or as the host's ps table cut to them), events prints runc's stats document and
// streams stats and OOM kills until the container stops. On this hybrid host memory and pids are v1
// controllers; the cgroup2-only case runs in a private mount namespace. Every test deletes what it made.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  TSRT,
  e2eFile,
  editConfig,
  errorMessage,
  onCgroup2Only,
  readOrEmpty,
  testCgroupPath,
  testScope,
  testUser,
  tmpdir,
  tsrt,
  waitFor,
  waitScale,
  within,
  type Edit,
  type Scope,
  userBundle,
} from '../helpers.js';

const { ROOT, rt } = e2eFile(t, {
  name: 'psevents',
  idPrefix: 'ps',
  needsRoot: 'ps and events tests need root (cgroups)',
  timeoutMinutes: 10,
});

const CG = '/sys/fs/cgroup';
const read = (file: string): string => readOrEmpty(file).trim();

/** A fresh absolute cgroupsPath; whatever is left of it is removed at the end of the test. */
const cgPath = (tt: Test): string => testCgroupPath(tt, 'tsrt-e2e-psev');

const withCgroup =
  (cgroupsPath: string, resources: any = {}): Edit =>
  spec => {
    spec.linux.cgroupsPath = cgroupsPath;
    spec.linux.resources = { ...(spec.linux.resources ?? {}), ...resources };
  };

/** The init forks one `sleep`, says "ready" and waits: two processes, neither ever exits by itself. */
const INIT_AND_CHILD = ['sh', '-c', 'sleep 1000 & echo ready; wait'];

/** run -d with stdio in a file; waits for "ready". */
function startDetached(s: Scope, args: string[], edit: Edit) {
  const bundle = s.bundle(args, edit);
  const id = s.id();
  const out = path.join(s.dir(), 'out');
  const fd = fs.openSync(out, 'w');
  const r = tsrt(['run', '-d', '-b', bundle, id], { root: ROOT, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const ready = r.code === 0 && waitFor(() => read(out).split('\n').includes('ready'), 400);
  const state = JSON.parse(rt(['state', id]).stdout || '{}');
  return { id, bundle, out, code: r.code, ready, pid: (state.pid ?? 0) as number, output: () => read(out) };
}

function ppidOf(pid: number): number {
  return Number(/^PPid:\s*(\d+)/m.exec(read(`/proc/${pid}/status`))?.[1] ?? -1);
}

function commOf(pid: number): string {
  return read(`/proc/${pid}/comm`);
}

/** A running `tsrt events ...`: its stdout lines as they come, and its end. */
function eventsStream(args: string[]) {
  const child = spawn(TSRT, ['--root', ROOT, 'events', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => {
    partial += b.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  return {
    lines,
    stderr: () => stderr,
    exited,
    running: () => !done,
    kill: () => child.kill('SIGKILL'),
  };
}

/** Waits (bounded, scaled with the load, without blocking the event loop) until the predicate holds. */
async function until(pred: () => boolean, tries = 600, delayMs = 50): Promise<boolean> {
  const bound = tries * waitScale();
  for (let i = 0; i < bound && !pred(); i++) await new Promise(r => setTimeout(r, delayMs));
  return pred();
}

/**
 * The exit status of an events stream once the container has been killed, or, if it has not ended within a
 * bound scaled with the load, what was going on: the init's state and kernel wait channel, and events' stderr.
 */
async function streamEnd(ev: ReturnType<typeof eventsStream>, initPid: number): Promise<number | null | string> {
  const boundMs = 60_000 * waitScale();
  const code = await within(ev.exited, boundMs);
  if (code !== 'timeout') return code;
  const stat =
    read(`/proc/${initPid}/stat`)
      .replace(/^.*\) /, '')
      .split(' ')[0] ?? 'gone';
  return `still running after ${boundMs / 1000} s: init ${initPid} state ${stat}, wchan ${read(`/proc/${initPid}/wchan`)}; events stderr: ${ev.stderr()}`;
}

/** The event lines parsed; counters beyond 2^53 lose digits here, so exact ones are read from the text. */
const parsed = (lines: string[]) => lines.filter(Boolean).map(l => JSON.parse(l));

// ---------------------------------------------------------------------------------------------------------
// ps

t.test('ps --format json: the init and the child it forked, as host pids (what docker top asks for)', async tt => {
  const s = testScope(tt, ROOT, 'ps');
  const p = cgPath(tt);
  const c = startDetached(s, INIT_AND_CHILD, withCgroup(p));
  tt.equal(c.code, 0);
  tt.ok(c.ready, 'container ready');
  const r = rt(['ps', '--format', 'json', c.id]);
  tt.equal(r.code, 0, r.stderr);
  tt.match(r.stdout, /^\[\d+(,\d+)*\]\n$/, 'one JSON array on one line');
  const pids: number[] = JSON.parse(r.stdout);
  tt.equal(pids.length, 2, `two processes: ${r.stdout.trim()}`);
  tt.ok(pids.includes(c.pid), 'the init');
  const child = pids.find(x => x !== c.pid)!;
  tt.equal(ppidOf(child), c.pid, "the other is the init's child");
  tt.equal(commOf(child), 'sleep');
  tt.same(
    [...pids].sort(),
    read(path.join(CG, 'pids', p, 'cgroup.procs'))
      .split('\n')
      .map(Number)
      .sort(),
    "exactly the cgroup's processes",
  );
  tt.same(JSON.parse(rt(['ps', '-f', 'json', c.id]).stdout), pids, '-f is --format');
});

t.test("ps (table): the host ps header and exactly the container's lines, by default -ef and with ps options", async tt => {
  const s = testScope(tt, ROOT, 'ps');
  const c = startDetached(s, INIT_AND_CHILD, withCgroup(cgPath(tt)));
  tt.ok(c.ready, 'container ready');
  const pids = JSON.parse(rt(['ps', '-f', 'json', c.id]).stdout) as number[];

  const r = rt(['ps', c.id]);
  tt.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  tt.equal(lines[0], spawnSync('ps', ['-ef'], { encoding: 'utf8' }).stdout.split('\n')[0], 'the header of ps -ef');
  const pidColumn = lines[0]!.trim().split(/\s+/).indexOf('PID');
  tt.same(
    lines
      .slice(1)
      .map(l => Number(l.trim().split(/\s+/)[pidColumn]))
      .sort(),
    [...pids].sort(),
    'one line per container process, no other',
  );
  tt.ok(
    lines.some(l => l.endsWith('sleep 1000')),
    "the child's command line",
  );

  const o = rt(['ps', c.id, '-o', 'pid,comm']);
  tt.equal(o.code, 0, o.stderr);
  const rows = o.stdout
    .split('\n')
    .filter(Boolean)
    .map(l => l.trim().split(/\s+/));
  tt.same(rows[0], ['PID', 'COMMAND'], 'ps options after the id go to ps');
  tt.same(
    rows.slice(1).sort((a, b) => Number(a[0]) - Number(b[0])),
    pids.sort((a, b) => a - b).map(pid => [String(pid), commOf(pid)]),
    'pid and command of each container process',
  );
  tt.same(
    rows
      .slice(1)
      .map(r2 => r2[1])
      .sort(),
    ['sh', 'sleep'],
  );
});

t.test('ps errors as runc prints them; a stopped container has no processes', async tt => {
  const s = testScope(tt, ROOT, 'ps');
  const c = startDetached(s, INIT_AND_CHILD, withCgroup(cgPath(tt)));
  tt.ok(c.ready, 'container ready');

  const noPid = rt(['ps', c.id, '-o', 'comm']);
  tt.equal(noPid.code, 1);
  tt.equal(errorMessage(noPid.stderr), "couldn't find PID field in ps output");
  tt.equal(noPid.stdout, '', 'nothing printed');

  const bad = rt(['ps', '-f', 'xml', c.id]);
  tt.equal(bad.code, 1);
  tt.equal(errorMessage(bad.stderr), 'invalid format option');

  const psFails = rt(['ps', c.id, '--no-such-ps-option']);
  tt.equal(psFails.code, 1);
  tt.match(errorMessage(psFails.stderr), /^exit status 1: error: unknown gnu long option/, "ps's own exit status and output");

  const none = rt(['ps', 'no-such-container']);
  tt.equal(none.code, 1);
  tt.equal(errorMessage(none.stderr), 'container does not exist');
  tt.notOk(fs.existsSync(path.join(ROOT, 'no-such-container')), 'no state left for it');
  tt.equal(errorMessage(rt(['ps', '--format', 'json', 'no-such-container']).stderr), 'container does not exist');
  tt.equal(errorMessage(rt(['ps']).stderr), '"ps" requires a minimum of 1 argument(s)');

  tt.equal(rt(['kill', c.id, 'KILL']).code, 0);
  tt.ok(
    waitFor(() => JSON.parse(rt(['state', c.id]).stdout).status === 'stopped', 400),
    'stopped',
  );
  const json = rt(['ps', '-f', 'json', c.id]);
  tt.equal(json.code, 0, 'runc answers a stopped container too');
  tt.equal(json.stdout, 'null\n', "with Go's empty list");
  const table = rt(['ps', c.id]);
  tt.equal(table.code, 0);
  tt.equal(table.stdout.split('\n').filter(Boolean).length, 1, 'the header alone');
});

t.test('ps of a rootless container without a cgroup of its own: the processes of its pid namespace', async tt => {
  const user = testUser();
  const parent = tmpdir('tsrt-e2e-psev-rootless-');
  tt.teardown(() => fs.rmSync(parent, { recursive: true, force: true }));
  fs.chownSync(parent, user.uid, user.gid);
  const bundle = userBundle(parent, user, [...INIT_AND_CHILD]);
  editConfig(bundle, spec => {
    delete spec.linux.cgroupsPath;
  });
  const root = path.join(parent, 'state');
  const id = `psev-rootless-${process.pid}`;
  const out = path.join(parent, 'out');
  fs.writeFileSync(out, '');
  fs.chownSync(out, user.uid, user.gid);
  const fd = fs.openSync(out, 'w');
  const r = tsrt(['run', '-d', '-b', bundle, id], { user: user.name, root, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  tt.teardown(() => tsrt(['delete', '--force', id], { user: user.name, root }));
  tt.equal(r.code, 0, read(out));
  tt.ok(
    waitFor(() => read(out).split('\n').includes('ready'), 400),
    'container ready',
  );
  const init = JSON.parse(tsrt(['state', id], { user: user.name, root }).stdout).pid as number;
  tt.notOk(read(`/proc/${init}/cgroup`).includes(id), 'it has no cgroup of its own (the user may not make one here)');

  const ps = tsrt(['ps', '-f', 'json', id], { user: user.name, root });
  tt.equal(ps.code, 0, ps.stderr);
  const pids: number[] = JSON.parse(ps.stdout);
  tt.equal(pids[0], init, 'the init first');
  tt.equal(pids.length, 2, 'and its child');
  tt.equal(ppidOf(pids[1]!), init);

  const ev = tsrt(['events', '--stats', id], { user: user.name, root });
  tt.equal(ev.code, 1);
  tt.equal(
    errorMessage(ev.stderr),
    `unable to get container cgroup stats: container ${id} has no cgroup (unprivileged, without a delegated cgroup)`,
  );
});

// ---------------------------------------------------------------------------------------------------------
// events

t.test("events --stats: one stats event whose numbers are the cgroup files'", async tt => {
  const s = testScope(tt, ROOT, 'ev');
  const p = cgPath(tt);
  const c = startDetached(s, INIT_AND_CHILD, withCgroup(p, { memory: { limit: 67108864 }, pids: { limit: 20 } }));
  tt.ok(c.ready, 'container ready');
  const r = rt(['events', '--stats', c.id]);
  tt.equal(r.code, 0, r.stderr);
  tt.equal(r.stdout.split('\n').length, 2, 'one line');
  const e = JSON.parse(r.stdout);
  tt.same(Object.keys(e), ['type', 'id', 'data']);
  tt.equal(e.type, 'stats');
  tt.equal(e.id, c.id);
  tt.same(
    Object.keys(e.data),
    ['cpu', 'cpuset', 'memory', 'pids', 'blkio', 'hugetlb', 'intel_rdt', 'network_interfaces'],
    "runc's fields, in runc's order",
  );
  const mem = path.join(CG, 'memory', p);
  tt.equal(e.data.memory.usage.limit, 67108864, "memory.usage.limit: the config's limit");
  tt.equal(String(e.data.memory.usage.limit), read(path.join(mem, 'memory.limit_in_bytes')), 'as memory.limit_in_bytes says');
  tt.equal(e.data.memory.raw.hierarchical_memory_limit, 67108864, 'memory.raw is memory.stat');
  tt.ok(e.data.memory.usage.usage > 0, 'memory in use');
  tt.equal(e.data.memory.usage.failcnt, Number(read(path.join(mem, 'memory.failcnt'))));
  const memswLimit = read(path.join(mem, 'memory.memsw.limit_in_bytes'));
  tt.match(r.stdout, new RegExp(`"swap":\\{"limit":${memswLimit},`), `swap.limit printed digit for digit (${memswLimit})`);
  tt.equal(e.data.pids.current, 2, 'pids.current: the shell and its sleep');
  tt.equal(String(e.data.pids.current), read(path.join(CG, 'pids', p, 'pids.current')), 'as pids.current says');
  tt.equal(e.data.pids.limit, 20);
  tt.ok(e.data.cpu.usage.total > 0, 'cpu time');
  tt.equal(e.data.cpu.usage.total, Number(read(path.join(CG, 'cpuacct', p, 'cpuacct.usage'))), 'cpuacct.usage');
  tt.equal(
    e.data.cpu.usage.percpu.length,
    read(path.join(CG, 'cpuacct', p, 'cpuacct.usage_percpu')).split(/\s+/).length,
    'one figure per cpu',
  );
  const cpus = read(path.join(CG, 'cpuset', p, 'cpuset.cpus'))
    .split(',')
    .flatMap(part => {
      const [a, b = a] = part.split('-').map(Number);
      return Array.from({ length: b! - a! + 1 }, (_, i) => a! + i);
    });
  tt.same(e.data.cpuset.cpus, cpus, 'cpuset.cpus as a list of cpus');
  tt.ok('2MB' in e.data.hugetlb, 'hugetlb per page size (from cgroup2 on this host)');
  tt.equal(e.data.network_interfaces, null);
});

t.test('events: a stats event every --interval until the container stops, then exit 0', async tt => {
  const s = testScope(tt, ROOT, 'ev');
  const c = startDetached(s, INIT_AND_CHILD, withCgroup(cgPath(tt)));
  tt.ok(c.ready, 'container ready');
  const ev = eventsStream(['--interval', '200ms', c.id]);
  tt.teardown(() => ev.kill());
  tt.ok(await until(() => ev.lines.length >= 2), `two stats lines (${ev.stderr()})`);
  tt.ok(ev.running(), 'still streaming while the container runs');
  tt.equal(rt(['kill', c.id, 'KILL']).code, 0);
  tt.equal(await streamEnd(ev, c.pid), 0, 'ends by itself with status 0 once the container has stopped');
  const events = parsed(ev.lines);
  tt.ok(events.length >= 2);
  tt.ok(
    events.every(e => e.type === 'stats' && e.id === c.id && e.data.pids !== undefined),
    'all of them stats events for it',
  );
  tt.equal(ev.stderr(), '');
});

t.test('events: an oom event when the OOM killer takes a process of the container (memory limit, v1 here)', async tt => {
  const s = testScope(tt, ROOT, 'ev');
  const p = cgPath(tt);
  // tail keeps the whole newline-free input in memory: far beyond the 32 MiB limit once the test says go.
  // head and tail get oom_score_adj 1000: head's pipe writes can hit the limit again before the kernel has
  // freed the killed tail's memory, and that second OOM kill otherwise takes the next biggest, the init.
  const c = startDetached(
    s,
    [
      'sh',
      '-c',
      'echo ready; until [ -e /tmp/go ]; do sleep 0.05; done; (echo 1000 > /proc/self/oom_score_adj; head -c 200m /dev/zero | tail); echo survived; while :; do sleep 1; done',
    ],
    withCgroup(p, { memory: { limit: 33554432, swap: 33554432 } }),
  );
  tt.ok(c.ready, 'container ready');
  const ev = eventsStream(['--interval', '200ms', c.id]);
  tt.teardown(() => ev.kill());
  tt.ok(await until(() => ev.lines.length >= 1), `streaming (${ev.stderr()})`);
  tt.notOk(
    parsed(ev.lines).some(e => e.type === 'oom'),
    'no oom event before anything ran out of memory',
  );
  fs.writeFileSync(path.join(c.bundle, 'rootfs', 'tmp', 'go'), '');
  tt.ok(
    await until(() => parsed(ev.lines).some(e => e.type === 'oom')),
    `an oom event (${ev.lines.length} lines, memory.oom_control: ${read(path.join(CG, 'memory', p, 'memory.oom_control'))}, failcnt ${read(path.join(CG, 'memory', p, 'memory.memsw.failcnt'))}, events stderr: ${ev.stderr()}, container: ${c.output()})`,
  );
  const oom = parsed(ev.lines).find(e => e.type === 'oom');
  tt.same(oom, { type: 'oom', id: c.id }, "runc's oom event: no data");
  tt.ok(
    Number(/oom_kill (\d+)/.exec(read(path.join(CG, 'memory', p, 'memory.oom_control')))?.[1]) >= 1,
    'memory.oom_control counted the kill',
  );
  tt.ok(await until(() => c.output().includes('survived')), 'the init lived on: the OOM killer took tail');
  tt.equal(rt(['kill', c.id, 'KILL']).code, 0);
  tt.equal(await streamEnd(ev, c.pid), 0, 'ends with status 0 once the container has stopped');
});

t.test('events errors as runc prints them', async tt => {
  const s = testScope(tt, ROOT, 'ev');
  const id = s.id();
  const r = rt(['run', '--keep', '-b', s.bundle(['true'], withCgroup(cgPath(tt))), id]);
  tt.equal(r.code, 0, r.stderr);
  for (const args of [['--stats', id], [id]]) {
    const e = rt(['events', ...args]);
    tt.equal(e.code, 1);
    tt.equal(errorMessage(e.stderr), `container with id ${id} is not running`, `stopped: events ${args.join(' ')}`);
    tt.equal(e.stdout, '');
  }
  const none = rt(['events', '--stats', 'no-such-container']);
  tt.equal(none.code, 1);
  tt.equal(errorMessage(none.stderr), 'container does not exist');
  tt.notOk(fs.existsSync(path.join(ROOT, 'no-such-container')), 'no state left for it');
  tt.equal(errorMessage(rt(['events', '--interval', 'abc', id]).stderr), 'invalid value "abc" for flag -interval: parse error');
  tt.equal(
    errorMessage(rt(['events', '--interval', '5', id]).stderr),
    'invalid value "5" for flag -interval: parse error',
    'a duration needs a unit',
  );
  for (const zero of ['0', '0s', '-1s']) {
    tt.equal(errorMessage(rt(['events', '--interval', zero, id]).stderr), 'duration interval must be greater than 0', zero);
  }
  tt.equal(errorMessage(rt(['events']).stderr), '"events" requires exactly 1 argument(s)');
  tt.equal(errorMessage(rt(['events', id, id]).stderr), '"events" requires exactly 1 argument(s)');
});

// ---------------------------------------------------------------------------------------------------------
// cgroup2 only

t.test('cgroup v2 host (private mount namespace): ps and events --stats read cgroup2', async tt => {
  const s = testScope(tt, ROOT, 'ev');
  const p = `/tsrt-e2e-psev-v2-${process.pid}`;
  tt.teardown(() => spawnSync('rmdir', [path.join(CG, 'unified', p)]));
  const bundle = s.bundle(INIT_AND_CHILD, withCgroup(p, { hugepageLimits: [{ pageSize: '2MB', limit: 2097152 }] }));
  const id = s.id();
  const out = path.join(s.dir(), 'out');
  const steps = `
echo "procs=$(sort -n ${CG}${p}/cgroup.procs | tr '\\n' ,)"
echo "ps=$($T ps -f json ${id})"
echo "stats=$($T events --stats ${id})"
$T delete --force ${id}
`;
  const r = onCgroup2Only({ root: ROOT, bundle, id, out, steps });
  tt.equal(r.status, 0, r.stderr);
  const procs = /^procs=(.*),$/m.exec(r.stdout)?.[1]?.split(',').map(Number) ?? [];
  tt.equal(procs.length, 2, 'the init and its child in cgroup2');
  const ps = JSON.parse(/^ps=(.*)$/m.exec(r.stdout)?.[1] ?? 'null');
  tt.same(
    [...(ps ?? [])].sort((a: number, b: number) => a - b),
    procs,
    "ps lists cgroup2's cgroup.procs",
  );
  const stats = JSON.parse(/^stats=(.*)$/m.exec(r.stdout)?.[1] ?? '{}');
  tt.equal(stats.type, 'stats');
  tt.equal(stats.data.pids.current, 2, 'without the pids controller, the processes of cgroup.procs counted');
  tt.ok(stats.data.cpu.usage.total > 0, 'cpu.usage.total from cpu.stat usage_usec');
  tt.equal(stats.data.cpu.usage.percpu, undefined, 'cgroup2 has no per-cpu figures');
  tt.same(stats.data.hugetlb['2MB'], { failcnt: 0 }, "hugetlb.2MB.current (0, omitted) and its events' max");
});
