// The front door (dist/tsrt, C) against the core (dist/tsrt-core, TypeScript), issue 17: every verb and
// global flag the front door handles, on the same containers in every state, gives the same stdout, stderr,
// log lines and exit status through both. Each case also says who must have done it: 'front' (the front door
// alone, no exec of the core) or 'core' (handed over, argv unchanged), seen by strace's execveat.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DIST, TSRT, e2eFile } from '../helpers.js';
import * as abi from '../../src/native-abi/abi.gen.js';

const CORE = path.join(DIST, 'tsrt-core');
const { ROOT, scope, rt, rtFiles, waitFor } = e2eFile(t, {
  name: 'frontdoor',
  idPrefix: 'fd',
  needsRoot: 'containers in every state need root',
  timeoutMinutes: 10,
});
type S = ReturnType<typeof scope>;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  log: string;
  handedOver: boolean;
}

/** Log lines without their time (the two runs are not in the same second). */
const untimed = (text: string): string => text.replace(/time="[^"]+"/g, 'time="T"').replace(/"time":"[^"]+"/g, '"time":"T"');

/** One run of `bin` with `args` (a {log} in args is replaced by a fresh log file), traced for an exec of the core. */
function runOne(s: S, bin: string, args: string[]): Outcome {
  const d = s.dir();
  const log = path.join(d, 'log');
  const trace = path.join(d, 'trace');
  const argv = args.map(a => a.replace('{log}', log));
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=execveat', '-o', trace, bin, ...argv], { encoding: 'utf8', timeout: 60_000 });
  const traced = fs.existsSync(trace) ? fs.readFileSync(trace, 'utf8') : '';
  // Each run has a log file of its own, which the --debug line names.
  const unlogged = (text: string) => untimed(text).split(log).join('{log}');
  return {
    code: r.status ?? -1,
    stdout: r.stdout,
    stderr: unlogged(r.stderr),
    log: fs.existsSync(log) ? unlogged(fs.readFileSync(log, 'utf8')) : '',
    handedOver: /execveat\(/.test(traced),
  };
}

/** The same command through the front door and through the core: identical outcomes, and the expected path. */
function same(tt: Test, s: S, args: string[], via: 'front' | 'core', what: string, twin?: { front: string; core: string }): Outcome {
  const frontArgs = twin ? args.map(a => a.replace('{id}', twin.front)) : args;
  const coreArgs = twin ? args.map(a => a.replace('{id}', twin.core)) : args;
  const front = runOne(s, TSRT, frontArgs);
  const core = runOne(s, CORE, coreArgs);
  const unify = (o: Outcome, id: string | undefined): Omit<Outcome, 'handedOver'> => {
    // Twins differ in their id, their creation time and their init's pid (not whether they have one), nothing else.
    const swap = (text: string) =>
      id
        ? text
            .split(id)
            .join('{id}')
            .replace(/"created": ?"[^"]+"/g, '"created":"C"')
            .replace(/"pid": ?[1-9]\d*/g, '"pid":P')
        : text;
    return { code: o.code, stdout: swap(o.stdout), stderr: swap(o.stderr), log: swap(o.log) };
  };
  tt.same(unify(front, twin?.front), unify(core, twin?.core), `${what}: same stdout, stderr, log and exit status`);
  tt.equal(front.handedOver, via === 'core', `${what}: ${via === 'front' ? 'done by the front door alone' : 'handed to the core'}`);
  tt.notOk(core.handedOver, `${what}: the core never execs anything`);
  return front;
}

const statusOf = (id: string): string => JSON.parse(rt(['state', id]).stdout).status;

/** A container in `status`: created, running (sleeping), paused, or stopped (ran `true`). */
function container(tt: Test, s: S, status: Status, edit?: (spec: any) => void, bundle?: string): string {
  bundle ??= s.bundle(status === 'stopped' ? ['true'] : ['sleep', '1000'], edit);
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  if (c.code !== 0) throw new Error(`create: ${c.stderr}`);
  if (status !== 'created') tt.equal(rt(['start', id]).code, 0, 'started');
  if (status === 'paused') tt.equal(rt(['pause', id]).code, 0, 'paused');
  if (status === 'stopped')
    tt.ok(
      waitFor(() => statusOf(id) === 'stopped'),
      'ran to its end',
    );
  tt.equal(statusOf(id), status, `a ${status} container`);
  return id;
}

type Status = 'created' | 'running' | 'paused' | 'stopped';

/** Two containers in `status` from one bundle: one for the front door, one for the core. */
function twins(tt: Test, s: S, status: Status, edit?: (spec: any) => void): { front: string; core: string } {
  const bundle = s.bundle(status === 'stopped' ? ['true'] : ['sleep', '1000'], edit);
  return { front: container(tt, s, status, undefined, bundle), core: container(tt, s, status, undefined, bundle) };
}

const GLOBALS: [string, string[]][] = [
  ['no global flags', []],
  ['--log FILE', ['--log', '{log}']],
  ['--log FILE --log-format json', ['--log={log}', '--log-format', 'json']],
  ['--log-format json --debug', ['--log-format=json', '--debug']],
  ['--debug --log FILE', ['-debug', '--log', '{log}']],
  ['--systemd-cgroup --rootless true', ['--systemd-cgroup', '--rootless', 'true']],
];

t.test('state, list and --version: every global flag, every state', async tt => {
  const s = scope(tt);
  const ids = {
    created: container(tt, s, 'created'),
    running: container(tt, s, 'running'),
    paused: container(tt, s, 'paused'),
    stopped: container(tt, s, 'stopped'),
  };
  for (const [name, globals] of GLOBALS) {
    const g = ['--root', ROOT, ...globals];
    for (const [status, id] of Object.entries(ids)) same(tt, s, [...g, 'state', id], 'front', `${name}: state of a ${status} container`);
    same(tt, s, [...g, 'state', 'fd-unknown'], 'front', `${name}: state of an unknown id`);
    same(tt, s, [...g, 'state', 'bad id'], 'front', `${name}: state of an invalid id`);
    same(tt, s, [...g, 'state', ''], 'front', `${name}: state of an empty id`);
    same(tt, s, [...g, 'list'], 'front', `${name}: list`);
    same(tt, s, [...g, 'list', '-f', 'json'], 'front', `${name}: list -f json`);
    same(tt, s, [...g, 'list', '--quiet'], 'front', `${name}: list --quiet`);
    same(tt, s, [...globals, '--version'], 'front', `${name}: --version`);
  }
  same(tt, s, ['-v'], 'front', '-v');
  same(tt, s, ['--root', ROOT, 'state'], 'core', 'state without an id (usage error)');
  same(tt, s, ['--root', ROOT, 'state', ids.running, '--help'], 'core', 'state --help');
  same(tt, s, ['--root', ROOT, '--log-format', 'yaml', 'state', ids.running], 'core', 'an invalid --log-format');
  same(tt, s, ['--root', ROOT, 'list', '-f', 'yaml'], 'core', 'list -f yaml');
  same(tt, s, ['--root', 'relative/root', 'state', ids.running], 'core', 'a relative --root');
  same(tt, s, ['--root', ROOT, 'ps', ids.running], 'core', 'a verb of the core (ps)');
  same(tt, s, ['state', 'fd-unknown-default-root'], 'front', 'the default root (/run/tsrt for root)');
});

t.test("kill: one signal in every state; --all and unknown signals are the core's", async tt => {
  const s = scope(tt);
  const ids = {
    created: container(tt, s, 'created'),
    running: container(tt, s, 'running'),
    paused: container(tt, s, 'paused'),
    stopped: container(tt, s, 'stopped'),
  };
  for (const [name, globals] of GLOBALS.slice(0, 3)) {
    const g = ['--root', ROOT, ...globals];
    for (const [status, id] of Object.entries(ids)) {
      same(tt, s, [...g, 'kill', id, '0'], 'front', `${name}: kill 0 of a ${status} container`);
      same(tt, s, [...g, 'kill', id, 'cont'], 'front', `${name}: kill cont of a ${status} container`);
    }
    same(tt, s, [...g, 'kill', 'fd-unknown', 'KILL'], 'front', `${name}: kill of an unknown id`);
    same(tt, s, [...g, 'kill', 'a/b'], 'front', `${name}: kill of an invalid id`);
    same(tt, s, [...g, 'kill', ids.running, 'SIGNOPE'], 'core', `${name}: an unknown signal`);
    same(tt, s, [...g, 'kill', ids.running, 'RTMIN+40'], 'core', `${name}: a real-time signal out of range`);
  }
  same(tt, s, ['--root', ROOT, 'kill', '--all', ids.running, '0'], 'core', 'kill --all');
  same(tt, s, ['--root', ROOT, 'kill', ids.running, 'SIGRTMIN+1', 'extra'], 'core', 'kill with three arguments');
  // A signal that ends it, through each: both containers end the same way.
  const twin = twins(tt, s, 'running');
  same(tt, s, ['--root', ROOT, 'kill', '{id}', 'KILL'], 'front', 'kill KILL of a running container', twin);
  tt.ok(
    waitFor(() => statusOf(twin.front) === 'stopped' && statusOf(twin.core) === 'stopped'),
    'both stopped',
  );
});

t.test('start: a created container through each, and the refusals in every other state', async tt => {
  const s = scope(tt);
  const twin = twins(tt, s, 'created');
  same(tt, s, ['--root', ROOT, '--debug', 'start', '{id}'], 'front', 'start of a created container', twin);
  tt.equal(statusOf(twin.front), 'running', 'the front door started it');
  tt.equal(statusOf(twin.core), 'running', 'the core started it');
  for (const status of ['running', 'paused', 'stopped'] as const) {
    const id = container(tt, s, status);
    same(tt, s, ['--root', ROOT, 'start', id], 'front', `start of a ${status} container`);
    same(
      tt,
      s,
      ['--root', ROOT, '--log', '{log}', '--log-format', 'json', 'start', id],
      'front',
      `start of a ${status} container, json log`,
    );
  }
  same(tt, s, ['--root', ROOT, 'start', 'fd-unknown'], 'front', 'start of an unknown id');
  same(tt, s, ['--root', ROOT, 'start', '..'], 'front', 'start of an invalid id');
  const hooked = twins(tt, s, 'created', spec => {
    spec.hooks = { poststart: [{ path: '/bin/true' }] };
  });
  same(tt, s, ['--root', ROOT, 'start', '{id}'], 'core', 'start of a container with a poststart hook (policy)', hooked);
});

t.test('delete: a stopped container through each, the refusals, --force', async tt => {
  const s = scope(tt);
  const stopped = twins(tt, s, 'stopped');
  same(tt, s, ['--root', ROOT, '--debug', 'delete', '{id}'], 'front', 'delete of a stopped container', stopped);
  for (const id of [stopped.front, stopped.core]) {
    tt.notOk(fs.existsSync(path.join(ROOT, id)), `${id}: its state directory is gone`);
    tt.same(
      fs.readdirSync('/sys/fs/cgroup').flatMap(h => (fs.existsSync(path.join('/sys/fs/cgroup', h, id)) ? [h] : [])),
      [],
      `${id}: no cgroup left`,
    );
  }
  for (const status of ['created', 'running', 'paused'] as const) {
    const id = container(tt, s, status);
    same(tt, s, ['--root', ROOT, 'delete', id], 'front', `delete of a ${status} container`);
    same(tt, s, ['--root', ROOT, '--log', '{log}', 'delete', id], 'front', `delete of a ${status} container, logged`);
  }
  const live = twins(tt, s, 'running');
  same(tt, s, ['--root', ROOT, 'delete', '--force', '{id}'], 'core', 'delete --force of a running container', live);
  same(tt, s, ['--root', ROOT, 'delete', 'fd-unknown'], 'front', 'delete of an unknown id');
  same(tt, s, ['--root', ROOT, 'delete', '-f', 'fd-unknown'], 'front', 'delete -f of an unknown id');
  same(tt, s, ['--root', ROOT, 'delete', 'bad id'], 'front', 'delete of an invalid id');
  const hooked = twins(tt, s, 'stopped', spec => {
    spec.hooks = { poststop: [{ path: '/bin/true' }] };
  });
  same(tt, s, ['--root', ROOT, 'delete', '{id}'], 'core', 'delete of a container with a poststop hook (policy)', hooked);
});

/** Rewrites a container's lifecycle record with `change` applied to its bytes. */
function alterRecord(id: string, change: (b: Buffer) => void): void {
  const file = path.join(ROOT, id, abi.TSRT_LCR_FILE);
  const b = fs.readFileSync(file);
  change(b);
  fs.writeFileSync(file, b);
}

t.test('a record of an older version, a damaged one, none: the core decides, the same way', async tt => {
  const s = scope(tt);
  const cases: [string, (b: Buffer) => void][] = [
    ['a record of an older version', b => b.writeUInt32LE(abi.TSRT_LCR_VERSION - 1, abi.TSRT_LCR_OFF_VERSION)],
    [
      'a record with a damaged byte',
      b => {
        b[b.length - 2] ^= 0x20;
      },
    ],
    ['a record whose slot points outside it', b => b.writeUInt32LE(0xffff_fff0, abi.TSRT_LCR_HEADER_SIZE)],
  ];
  for (const [what, change] of cases) {
    const twin = twins(tt, s, 'stopped');
    alterRecord(twin.front, change);
    alterRecord(twin.core, change);
    same(tt, s, ['--root', ROOT, 'state', '{id}'], 'core', `${what}: state`, twin);
    same(tt, s, ['--root', ROOT, 'kill', '{id}', '0'], 'core', `${what}: kill`, twin);
    same(tt, s, ['--root', ROOT, 'list', '-q'], 'core', `${what}: list`);
    same(tt, s, ['--root', ROOT, 'delete', '{id}'], 'core', `${what}: delete`, twin);
  }
  const twin = twins(tt, s, 'created');
  for (const id of [twin.front, twin.core]) fs.rmSync(path.join(ROOT, id, abi.TSRT_LCR_FILE));
  same(tt, s, ['--root', ROOT, 'state', '{id}'], 'core', 'no record (an older tsrt made it): state', twin);
  same(tt, s, ['--root', ROOT, 'start', '{id}'], 'core', 'no record: start', twin);
});

t.test('a container locked by another command: both wait for the lock, then do the same', async tt => {
  const s = scope(tt);
  const id = container(tt, s, 'running');
  for (const bin of [TSRT, CORE]) {
    // flock(1) holds the same lock every command takes (an exclusive flock on the container's directory).
    const holder = spawn('/usr/bin/flock', ['-x', path.join(ROOT, id), 'sleep', '1'], { stdio: 'ignore' });
    tt.ok(
      waitFor(() => spawnSync('/usr/bin/flock', ['-n', '-x', path.join(ROOT, id), 'true']).status !== 0, 100),
      'the lock is held',
    );
    const r = runOne(s, bin, ['--root', ROOT, 'kill', id, '0']);
    tt.equal(r.code, 0, `${path.basename(bin)}: kill waited for the lock and succeeded`);
    tt.equal(r.stderr, '', `${path.basename(bin)}: nothing on stderr`);
    tt.equal(r.handedOver, false, `${path.basename(bin)}: no hand-over while locked`);
    await new Promise(resolve => (holder.exitCode !== null ? resolve(null) : holder.on('exit', resolve)));
  }
  same(tt, s, ['--root', ROOT, 'state', id], 'front', 'state after the lock was released');
});
