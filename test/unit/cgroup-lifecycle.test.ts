// The lifecycle's cgroup decisions without root and without the host's cgroups: create's two checks (runc's
// "not empty" warning, a frozen cgroup refused), pause and resume, state's "paused", update, kill --all and
// delete --force, against the fake driver (src/cgroups/fake.ts). The containers' inits are real processes
// (sleep) started here, so signals and pidfds are the kernel's; only the cgroup is in memory.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { FakeCgroups, type FakeCgroup } from '../../src/cgroups/fake.js';
import { useCgroupDriver } from '../../src/cgroups/manager.js';
import type { Layout } from '../../src/cgroups/types.js';
import { create, kill, pause, remove, resume, state, update } from '../../src/index.js';
import { ContainerDir, OCI_VERSION, procStat, type ContainerRecord } from '../../src/runtime/state.js';
import { specTemplate } from '../../src/spec/template.js';
import type { LinuxResources } from '../../src/spec/types.gen.js';

const LAYOUT: Layout = { layout: 'v2', v1: [], unifiedMountPoint: '/sys/fs/cgroup', unifiedOwnPath: '/' };

interface Setup {
  root: string;
  fake: FakeCgroups;
}

function setup(t: Test): Setup {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-unit-cglife-'));
  const fake = new FakeCgroups();
  const host = useCgroupDriver(fake);
  t.teardown(() => {
    useCgroupDriver(host);
    fs.rmSync(root, { recursive: true, force: true });
  });
  return { root, fake };
}

/** A process that stays until killed; reaped by node when it dies (or by delete, when it is an init). */
function sleeper(t: Test): ChildProcess {
  const p = spawn('/usr/bin/sleep', ['1000'], { stdio: 'ignore' });
  t.teardown(() => {
    // Only while it is still ours: an init delete reaped has no pid left to kill.
    if (alive(p) && procStat(p.pid!)?.ppid === process.pid) p.kill('SIGKILL');
  });
  return p;
}

function exited(p: ChildProcess): Promise<NodeJS.Signals | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.signalCode);
  return new Promise(resolve => p.once('exit', (_code, signal) => resolve(signal)));
}

const alive = (p: ChildProcess): boolean => p.exitCode === null && p.signalCode === null;

/**
 * Whether delete killed and reaped `init` (it does, since the library caller is the parent of the inits it
 * created). Node never sees that exit, so the handle is let go or it would keep the test running.
 */
function reapedByDelete(init: ChildProcess): boolean {
  init.unref();
  return procStat(init.pid!) === undefined;
}

/**
 * A created-and-started container as create would leave it: its init (a sleep) in a fake cgroup made for it,
 * or joined when `cgroupsPath` names one the test made beforehand.
 */
function running(
  t: Test,
  s: Setup,
  id: string,
  opts: { cgroupsPath?: string; resources?: LinuxResources } = {},
): { init: ChildProcess; cgroup: FakeCgroup } {
  const init = sleeper(t);
  const req = { id, cgroupsPath: opts.cgroupsPath, systemd: false, systemdRunning: false, rootless: false };
  const cg = s.fake.create(LAYOUT, s.fake.place(LAYOUT, req), opts.resources);
  cg.join(init.pid!);
  const rec: ContainerRecord = {
    ociVersion: OCI_VERSION,
    id,
    pid: init.pid!,
    bundle: s.root,
    rootfs: s.root,
    created: new Date().toISOString(),
    owner: 'root',
    initStartTime: procStat(init.pid!)!.startTime,
    privatePidns: false,
    rootless: false,
    cgroup: cg.record,
    exec: { linux: {}, noNewKeyring: false },
  };
  const dir = new ContainerDir(s.root, id);
  dir.create();
  dir.save(rec);
  dir.unlock();
  return { init, cgroup: s.fake.cgroups.get(opts.cgroupsPath || id)! };
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}

t.test("create: a cgroup with processes in it is worth runc's warning; a frozen one is refused, and nothing stays", async t => {
  const s = setup(t);
  const neighbour = sleeper(t);
  const shared = s.fake.existing('shared', { members: [neighbour.pid!], frozen: true });
  const bundle = path.join(s.root, 'bundle');
  fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
  const spec = specTemplate({ rootless: false, uid: 0, gid: 0 });
  spec.process!.terminal = false;
  spec.linux!.cgroupsPath = 'shared';
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
  const warnings: string[] = [];
  const message = errorOf(() => create({ root: s.root, id: 'c1', bundle, warn: m => warnings.push(m) }));
  t.equal(message, "container's cgroup unexpectedly frozen");
  t.same(warnings, ["container's cgroup is not empty: 1 process(es) found"]);
  t.notOk(fs.existsSync(path.join(s.root, 'c1')), 'no state directory left');
  t.same(shared.signals, [], 'a cgroup create joined and did not make is never signalled');
  t.ok(shared.destroyed, 'the manager was told to undo what it made (of a joined cgroup: nothing)');
  t.ok(alive(neighbour), 'the process that was there before is untouched');
});

t.test('pause freezes the cgroup and state says paused; resume thaws it', async t => {
  const s = setup(t);
  const { cgroup } = running(t, s, 'c1');
  t.equal(state(s.root, 'c1')['status'], 'running');
  pause(s.root, 'c1');
  t.ok(cgroup.frozen);
  t.equal(state(s.root, 'c1')['status'], 'paused', 'state asks the cgroup');
  resume(s.root, 'c1');
  t.notOk(cgroup.frozen);
  t.equal(state(s.root, 'c1')['status'], 'running');
  t.equal(
    errorOf(() => resume(s.root, 'c1')),
    'container not paused',
  );
});

t.test('a paused container cannot be paused again', async t => {
  const s = setup(t);
  const { cgroup } = running(t, s, 'c1');
  pause(s.root, 'c1');
  t.equal(
    errorOf(() => pause(s.root, 'c1')),
    'container not running',
  );
  t.ok(cgroup.frozen, 'still frozen');
});

t.test('pause without a freezer: an error naming the container', async t => {
  const s = setup(t);
  const { cgroup } = running(t, s, 'c1');
  cgroup.freezer = false;
  t.equal(
    errorOf(() => pause(s.root, 'c1')),
    'cannot pause container c1: it has no freezer cgroup',
  );
  t.equal(state(s.root, 'c1')['status'], 'running');
});

t.test('update merges into the resources in force and saves them with the container', async t => {
  const s = setup(t);
  const { cgroup } = running(t, s, 'c1', { resources: { cpu: { quota: 1000, period: 10000 }, pids: { limit: 5 } } });
  update(s.root, 'c1', { cpu: { quota: 5000 } });
  t.same(cgroup.applied.at(-1), { cpu: { quota: 5000 } }, 'the manager got the change');
  const saved = new ContainerDir(s.root, 'c1').load().cgroup!.resources;
  t.same(saved, { cpu: { quota: 5000, period: 10000 }, pids: { limit: 5 } }, 'the period and the pids limit stay');
});

t.test('kill --all signals every process through the cgroup', async t => {
  const s = setup(t);
  const { init, cgroup } = running(t, s, 'c1');
  const child = sleeper(t);
  cgroup.members.push(child.pid!);
  kill(s.root, 'c1', 'TERM', true);
  t.same(cgroup.signals, [15]);
  t.equal(await exited(init), 'SIGTERM');
  t.equal(await exited(child), 'SIGTERM');
});

t.test('kill --all of a stopped container still reaches what its init left in the cgroup (runc)', async t => {
  const s = setup(t);
  const { init, cgroup } = running(t, s, 'c1');
  const orphan = sleeper(t);
  cgroup.members.push(orphan.pid!);
  init.kill('SIGKILL');
  await exited(init);
  t.equal(state(s.root, 'c1')['status'], 'stopped');
  kill(s.root, 'c1', 'KILL', true);
  t.same(cgroup.signals, [9]);
  t.equal(await exited(orphan), 'SIGKILL');
  t.equal(
    errorOf(() => kill(s.root, 'c1', 'KILL', false)),
    'container not running',
    "without --all: runc's error",
  );
  t.same(cgroup.signals, [9], 'and nothing sent');
});

t.test('delete --force: a cgroup create made is killed whole and removed', async t => {
  const s = setup(t);
  const { init, cgroup } = running(t, s, 'c1');
  const child = sleeper(t);
  cgroup.members.push(child.pid!);
  remove(s.root, 'c1', true, m => t.fail(m));
  t.same(cgroup.signals, [9], 'SIGKILL through the cgroup, once');
  t.ok(cgroup.destroyed);
  t.ok(reapedByDelete(init), 'the init is gone, reaped by delete (the library caller is its parent)');
  t.equal(await exited(child), 'SIGKILL');
  t.notOk(fs.existsSync(path.join(s.root, 'c1')));
});

t.test('delete --force: a cgroup the container joined is never signalled; only the init is killed', async t => {
  const s = setup(t);
  const neighbour = sleeper(t);
  const shared = s.fake.existing('shared', { members: [neighbour.pid!] });
  const { init } = running(t, s, 'c1', { cgroupsPath: 'shared' });
  t.same(shared.members, [neighbour.pid, init.pid], 'the init joined the cgroup that was there');
  remove(s.root, 'c1', true, m => t.fail(m));
  t.ok(reapedByDelete(init), 'the init is gone, reaped by delete');
  t.same(shared.signals, []);
  t.ok(alive(neighbour), 'the neighbour lives on');
  t.notOk(fs.existsSync(path.join(s.root, 'c1')));
});
