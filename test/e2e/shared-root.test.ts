// Docker 20.10 hands every runtime runc's state root, so tsrt shares a --root with runc there. A runc
// container in it is not tsrt's: list skips it, state/kill say it does not exist, delete --force succeeds
// without touching it, and runc keeps managing it.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { e2eFile, errorMessage } from '../helpers.js';

const { ROOT, scope, rt, rtFiles } = e2eFile(t, {
  name: 'sharedroot',
  idPrefix: 'shr',
  needsRoot: 'sharing a root with runc needs root',
  timeoutMinutes: 5,
});

const runc = (args: string[]) =>
  spawnSync('/usr/sbin/runc', ['--root', ROOT, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });

/** runc run -d with the container's stdio on /dev/null: on a pipe, the container's sleep holds it open and
 * spawnSync waits for its end until the timeout (60 s of every suite run, reported as a success). */
const runcDetached = (args: string[]) => {
  const nul = fs.openSync('/dev/null', 'r+');
  try {
    return spawnSync('/usr/sbin/runc', ['--root', ROOT, ...args], { stdio: ['ignore', nul, nul], timeout: 60_000 });
  } finally {
    fs.closeSync(nul);
  }
};

t.test('a runc container in the same root', async tt => {
  const s = scope(tt);
  const foreign = s.id('runc');
  tt.teardown(() => runc(['delete', '--force', foreign]));
  const bundle = s.bundle(['sleep', '1000']);
  const started = runcDetached(['run', '-d', '-b', bundle, foreign]);
  tt.equal(started.error, undefined, 'runc run -d returns (no timeout)');
  tt.equal(started.status, 0, 'runc run -d works');
  const own = s.id();
  tt.equal(rtFiles(s, ['run', '-d', '-b', s.bundle(['sleep', '1000']), own]).code, 0, 'a tsrt container beside it');

  const list = rt(['list', '-q']);
  tt.equal(list.code, 0, 'list succeeds');
  tt.same(list.stdout.split('\n').filter(Boolean), [own], "list shows only tsrt's container");
  const json = rt(['list', '-f', 'json']);
  tt.same(
    (JSON.parse(json.stdout) as { id: string }[]).map(c => c.id),
    [own],
    'list -f json too',
  );

  const state = rt(['state', foreign]);
  tt.equal(state.code, 1, "state of runc's container fails");
  tt.equal(errorMessage(state.stderr), 'container does not exist', 'as for an unknown id');
  tt.equal(errorMessage(rt(['kill', foreign, 'KILL']).stderr), 'container does not exist', 'kill does not reach it');
  tt.equal(rt(['delete', '--force', foreign]).code, 0, 'delete --force succeeds, as for an unknown id');
  tt.ok(fs.existsSync(path.join(ROOT, foreign, 'state.json')), "and leaves runc's state alone");
  const runcState = runc(['state', foreign]);
  tt.equal(JSON.parse(runcState.stdout.toString()).status, 'running', 'runc still runs its container');
  tt.equal(rt(['delete', '--force', own]).code, 0, 'tsrt deletes its own');
});
