// Concurrency: commands on one id are serialised by the per-container lock (state.ts), and creates of
// distinct ids do not get in each other's way. Every race is run a few times; each round asserts the outcome
// that any interleaving must give, never an order or a duration.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeBundle, tmpdir, tsrt, waitFor } from '../helpers.js';
import * as left from './fixtures/leftovers.js';

t.setTimeout(10 * 60_000);

if (process.geteuid?.() !== 0) {
  t.plan(0, 'concurrency tests need root');
  process.exit(0);
}

const ROOT = tmpdir('tsrt-conc-root-');
const ID_PREFIX = `conc${process.pid}-`;
const MARK = `conc-${process.pid}`;
const ROUNDS = 4;
const sleeper = makeBundle(['sleep', '600']);
const scratch = tmpdir('tsrt-conc-');
const scope: left.Scope = { root: ROOT, idPrefix: ID_PREFIX, paths: [ROOT, path.dirname(sleeper), scratch], mark: MARK };
const env = { ...process.env, TSRT_ROBUST_MARK: MARK };
t.teardown(() => {
  for (const id of fs.existsSync(ROOT) ? fs.readdirSync(ROOT) : []) tsrt(['delete', '--force', id], { root: ROOT });
  for (const d of [path.dirname(sleeper), scratch, ROOT]) fs.rmSync(d, { recursive: true, force: true });
});

let n = 0;
const newId = (what: string) => `${ID_PREFIX}${what}-${++n}`;
const run = (args: string[]) => left.tsrtAsync(args, { root: ROOT, env });
const runSync = (args: string[]) => left.tsrtFiles(args, { root: ROOT, env });

function statusOf(id: string): string | undefined {
  const r = tsrt(['state', id], { root: ROOT });
  return r.code === 0 ? (JSON.parse(r.stdout) as { status: string }).status : undefined;
}

function listedIds(): string[] {
  const r = tsrt(['list', '-q'], { root: ROOT });
  return r.stdout.split('\n').filter(Boolean);
}

t.test('start twice in parallel: exactly one succeeds', async t => {
  for (let round = 0; round < ROUNDS; round++) {
    const id = newId('start');
    t.equal(runSync(['create', '-b', sleeper, id]).code, 0, 'created');
    const results = await Promise.all([run(['start', id]), run(['start', id])]);
    const ok = results.filter(r => r.code === 0);
    const failed = results.filter(r => r.code !== 0);
    t.equal(ok.length, 1, 'one start wins');
    t.equal(failed.length, 1, 'the other fails');
    t.equal(failed[0]?.code, 1, 'with exit 1');
    t.match(left.errorMessage(failed[0]?.stderr ?? ''), /^cannot start an already running container$/, 'and says why');
    t.equal(statusOf(id), 'running');
    t.equal(runSync(['delete', '--force', id]).code, 0);
  }
  t.same(left.settled(scope), []);
});

t.test('kill and delete --force racing: delete always completes, kill succeeds or finds no container', async t => {
  for (let round = 0; round < ROUNDS; round++) {
    const id = newId('killdel');
    t.equal(runSync(['run', '-d', '-b', sleeper, id]).code, 0, 'running');
    const [killed, deleted] = await Promise.all([run(['kill', id, 'KILL']), run(['delete', '--force', id])]);
    t.equal(deleted.code, 0, `delete --force succeeds ${deleted.stderr}`);
    if (killed.code !== 0) {
      t.equal(killed.code, 1, 'a kill that lost the race exits 1');
      t.match(left.errorMessage(killed.stderr), /^(container not running|container does not exist)$/, 'saying the container is gone');
    }
    t.equal(statusOf(id), undefined, 'the container is gone');
  }
  t.same(left.settled(scope), []);
});

t.test('two creates of one id in parallel: one container, one "container with id exists"', async t => {
  for (let round = 0; round < ROUNDS; round++) {
    const id = newId('dup');
    const results = await Promise.all([run(['create', '-b', sleeper, id]), run(['create', '-b', sleeper, id])]);
    const ok = results.filter(r => r.code === 0);
    const failed = results.filter(r => r.code !== 0);
    t.equal(ok.length, 1, 'one create succeeds');
    t.equal(failed.length, 1, 'the other fails');
    t.equal(failed[0]?.code, 1, 'with exit 1');
    t.equal(left.errorMessage(failed[0]?.stderr ?? ''), `container with id exists: ${id}`, "and runc's message");
    t.same(
      listedIds().filter(x => x === id),
      [id],
      'exactly one container has the id',
    );
    t.equal(statusOf(id), 'created', 'and it is intact');
    t.equal(runSync(['start', id]).code, 0, 'it starts');
    t.equal(runSync(['delete', '--force', id]).code, 0);
  }
  t.same(left.settled(scope), []);
});

t.test('20 creates of distinct ids in parallel all succeed', async t => {
  const ids = Array.from({ length: 20 }, () => newId('many'));
  const results = await Promise.all(ids.map(id => run(['create', '-b', sleeper, id])));
  results.forEach((r, i) => {
    t.equal(r.code, 0, `${ids[i]} created ${r.stderr}`);
  });
  t.same(
    listedIds()
      .filter(x => ids.includes(x))
      .sort(),
    [...ids].sort(),
    'all listed',
  );
  t.ok(
    ids.every(id => statusOf(id) === 'created'),
    'all created',
  );
  const deleted = await Promise.all(ids.map(id => run(['delete', '--force', id])));
  t.ok(
    deleted.every(r => r.code === 0),
    'and all deleted in parallel',
  );
  t.same(left.settled(scope), []);
});

t.test('commands on a container that is still being created wait for the create', async t => {
  // A createRuntime hook holds the create (and so the lock) until the test lets it go.
  const gate = path.join(scratch, 'gate');
  const inHook = path.join(scratch, 'in-hook');
  const bundle = makeBundle(['sleep', '600'], {
    edit: spec =>
      (spec.hooks = {
        createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${inHook}; while [ ! -e ${gate} ]; do sleep 0.05; done`] }],
      }),
  });
  t.teardown(() => fs.rmSync(path.dirname(bundle), { recursive: true, force: true }));
  const id = newId('slow');
  const creating = run(['create', '-b', bundle, id]);
  t.ok(
    waitFor(() => fs.existsSync(inHook), 600, 50),
    'create reached its hook',
  );
  t.equal(statusOf(id), 'creating', 'state says creating meanwhile');
  t.same(
    listedIds().filter(x => x === id),
    [id],
    'and list shows it',
  );
  const started = run(['start', id]);
  const deleted = run(['delete', '--force', id]);
  fs.writeFileSync(gate, '');
  const [c, s, d] = await Promise.all([creating, started, deleted]);
  t.equal(c.code, 0, `the create completes untouched ${c.stderr}`);
  t.equal(d.code, 0, `delete --force then removes the container ${d.stderr}`);
  // start ran either before delete (it started the container) or after it (nothing left to start).
  if (s.code !== 0) t.match(left.errorMessage(s.stderr), /^container does not exist$/, 'a start after the delete finds nothing');
  t.equal(statusOf(id), undefined, 'nothing is left of it');
  fs.rmSync(gate);
  fs.rmSync(inHook);
  t.same(left.settled(scope), []);
});
