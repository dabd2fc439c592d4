// Crash consistency: `create` SIGKILLed at each of its steps (TSRT_TEST_CRASH_AT, a test-only injection point in
// src/runtime/create.ts and its executor session), then what engines do after a failed create: list/state, and
// delete --force.
//
// What a half-made container shows: nothing before its first record is written (the state dir alone), then
// "stopped" (pid 0) until the last record write, which is what makes it "created". It can never be started,
// and delete --force removes the state dir, the cgroup, an init left waiting on the sync socket or on
// exec.fifo, and its mounts; the id can be created again at once.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeBundle, tmpdir, tsrt, waitFor } from '../helpers.js';
import * as left from './fixtures/leftovers.js';

t.setTimeout(10 * 60_000);

if (process.geteuid?.() !== 0) {
  t.plan(0, 'crash tests need root');
  process.exit(0);
}

const ROOT = tmpdir('tsrt-crash-root-');
const ID_PREFIX = `crash${process.pid}-`;
const MARK = `crash-${process.pid}`;
const plain = makeBundle(['true']);
const userns = makeBundle(['true'], {
  edit: spec => {
    spec.linux.namespaces.push({ type: 'user' });
    spec.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
    spec.linux.gidMappings = [{ containerID: 0, hostID: 0, size: 65536 }];
  },
});
const hooked = makeBundle(['true'], { edit: spec => (spec.hooks = { createRuntime: [{ path: '/bin/true' }] }) });
const scope: left.Scope = {
  root: ROOT,
  idPrefix: ID_PREFIX,
  paths: [ROOT, ...[plain, userns, hooked].map(b => path.dirname(b))],
  mark: MARK,
};
t.teardown(() => {
  for (const id of fs.existsSync(ROOT) ? fs.readdirSync(ROOT) : []) tsrt(['delete', '--force', id], { root: ROOT });
  for (const b of [plain, userns, hooked]) fs.rmSync(path.dirname(b), { recursive: true, force: true });
  fs.rmSync(ROOT, { recursive: true, force: true });
});

/** Every crash point of create, in order, with the bundle whose create passes through it. */
const POINTS: [point: string, bundle: string][] = [
  ['dir-made', plain],
  ['record-saved', plain],
  ['cgroup-made', plain],
  ['spawned', plain],
  ['recv-userns', userns],
  ['recv-pid', plain],
  ['pid-saved', plain],
  ['go-sent', plain],
  ['recv-prepivot', hooked],
  ['recv-ready', plain],
  ['before-pid-file', plain],
  ['before-state', plain],
  ['state-saved', plain],
];

/** From `ready` on, the init no longer dies with its parent (it must outlive a successful create). */
const OUTLIVES_CREATE = ['recv-ready', 'before-pid-file', 'before-state', 'state-saved'];

function listed(id: string): { status: string; pid: number } | undefined {
  const r = tsrt(['list', '-f', 'json'], { root: ROOT });
  if (r.code !== 0) throw new Error(`list failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { id: string; status: string; pid: number }[]).find(s => s.id === id);
}

for (const [point, bundle] of POINTS) {
  t.test(`kill -9 at ${point}`, async t => {
    const id = `${ID_PREFIX}${point}`;
    const pidFile = path.join(path.dirname(bundle), `${id}.pid`);
    const crashed = left.tsrtFiles(['create', '-b', bundle, '--pid-file', pidFile, id], {
      root: ROOT,
      env: { ...process.env, TSRT_TEST_CRASH_AT: point, TSRT_ROBUST_MARK: MARK },
    });
    t.equal(crashed.signal, 'SIGKILL', `create died at ${point} (${crashed.stderr.trim()})`);
    if (point === 'go-sent' && !waitFor(() => left.processes(scope).length === 0, 100, 50)) {
      // go is the last message before the executor's own set-up. When the killed create is descheduled
      // between sending go and dying (heavy load), the executor can finish set-up and report ready into a
      // socket nobody reads: then it is exactly the recv-ready case, an init waiting on exec.fifo that
      // delete --force must remove (asserted below). Otherwise it must die with create.
      t.equal(left.processes(scope).length, 1, 'only the init, past set-up, outlived create');
    } else if (OUTLIVES_CREATE.includes(point)) {
      t.ok(left.processes(scope).length > 0, 'the init, past set-up, waits on exec.fifo for delete to kill it');
    } else {
      // Blocked on the sync socket it sees EOF, and until set-up is done it has PR_SET_PDEATHSIG anyway.
      t.ok(
        waitFor(() => left.processes(scope).length === 0, 600, 50),
        `the executor died with create: ${left.processes(scope).join('; ')}`,
      );
    }

    const entry = listed(id);
    if (point === 'state-saved') {
      t.equal(entry?.status, 'created', 'every step done: the container is created');
    } else {
      t.not(entry?.status, 'running', 'list never shows it running');
      t.not(entry?.status, 'created', 'nor created');
      if (entry) {
        t.equal(entry.status, 'stopped', 'a half-made container is listed as stopped');
        t.equal(entry.pid, 0, 'with no pid');
        const st = tsrt(['state', id], { root: ROOT });
        t.equal(JSON.parse(st.stdout).status, 'stopped', 'state agrees');
        const start = tsrt(['start', id], { root: ROOT });
        t.equal(start.code, 1, 'start refuses it');
        t.match(left.errorMessage(start.stderr), /cannot start a container that has stopped/);
      }
    }

    const del = tsrt(['delete', '--force', id], { root: ROOT });
    t.equal(del.code, 0, `delete --force succeeds ${del.stderr}`);
    t.notOk(listed(id), 'list no longer has it');
    t.same(left.settled(scope), [], 'no state dir, mount, cgroup or process left');
    fs.rmSync(pidFile, { force: true });

    const again = left.tsrtFiles(['create', '-b', bundle, id], { root: ROOT });
    t.equal(again.code, 0, `the id can be created again ${again.stderr}`);
    t.equal(tsrt(['delete', '--force', id], { root: ROOT }).code, 0);
    t.same(left.settled(scope), [], 'and removed again without a trace');
  });
}

t.test('an unknown crash point is ignored: create completes', async t => {
  const id = `${ID_PREFIX}none`;
  const r = left.tsrtFiles(['create', '-b', plain, id], { root: ROOT, env: { ...process.env, TSRT_TEST_CRASH_AT: 'no-such-point' } });
  t.equal(r.code, 0, r.stderr);
  t.equal(listed(id)?.status, 'created');
  t.equal(tsrt(['delete', '--force', id], { root: ROOT }).code, 0);
  t.same(left.settled(scope), []);
});

t.test('a state dir without state.json (create died before its first record) is removed by delete', async t => {
  const id = `${ID_PREFIX}bare`;
  fs.mkdirSync(path.join(ROOT, id), { recursive: true });
  t.notOk(listed(id), 'not listed');
  t.equal(tsrt(['state', id], { root: ROOT }).code, 1, 'state: does not exist');
  const del = tsrt(['delete', id], { root: ROOT });
  t.equal(del.code, 1, 'delete without --force: container does not exist');
  t.match(left.errorMessage(del.stderr), /container does not exist/);
  t.same(left.stateDirs(scope), [], 'but the empty directory is gone, so the id is free again');
});
