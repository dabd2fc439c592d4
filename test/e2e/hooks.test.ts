// OCI hooks run in the runtime's namespaces: prestart and createRuntime during create (before pivot_root),
// poststart after start, poststop at delete; each gets the state JSON on stdin.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeBundle, tmpdir, tsrt, uniqueId } from '../helpers.js';

const root = tmpdir('tsrt-hooks-root-');
const logDir = tmpdir('tsrt-hooks-log-');
const hookScript = path.join(logDir, 'hook.sh');
fs.writeFileSync(hookScript, '#!/bin/sh\nstate=$(cat)\nprintf "%s %s\\n" "$1" "$state" >> "$HOOK_LOG"\nexit ${HOOK_EXIT:-0}\n', { mode: 0o755 });

function hook(kind: string, log: string, extraEnv: string[] = []) {
  return { path: hookScript, args: ['hook.sh', kind], env: [`HOOK_LOG=${log}`, ...extraEnv] };
}

function entries(log: string): { kind: string; state: any }[] {
  if (!fs.existsSync(log)) return [];
  return fs.readFileSync(log, 'utf8').trim().split('\n').map(line => {
    const i = line.indexOf(' ');
    return { kind: line.slice(0, i), state: JSON.parse(line.slice(i + 1)) };
  });
}

t.test('hooks run in lifecycle order with the container state on stdin', async t => {
  const log = path.join(logDir, 'order.log');
  const id = uniqueId('hooks');
  const bundle = makeBundle(['sleep', '30'], {
    edit: spec => {
      spec.hooks = {
        prestart: [hook('prestart', log)],
        createRuntime: [hook('createRuntime', log)],
        poststart: [hook('poststart', log)],
        poststop: [hook('poststop', log)],
      };
    },
  });
  t.teardown(() => tsrt(['delete', '--force', id], { root }));
  t.equal(tsrt(['create', '-b', bundle, id], { root }).code, 0, 'create');
  t.same(entries(log).map(e => e.kind), ['prestart', 'createRuntime'], 'prestart then createRuntime during create');
  const first = entries(log)[0]!.state;
  t.equal(first.id, id, 'state names the container');
  t.ok(first.pid > 0, 'state carries the init pid');
  t.equal(first.bundle, bundle, 'state carries the bundle');
  t.equal(tsrt(['start', id], { root }).code, 0, 'start');
  t.same(entries(log).map(e => e.kind), ['prestart', 'createRuntime', 'poststart'], 'poststart after start');
  t.equal(entries(log)[2]!.state.status, 'running', 'poststart sees a running container');
  t.equal(tsrt(['kill', id, 'KILL'], { root }).code, 0, 'kill');
  t.equal(tsrt(['delete', id], { root }).code, 0, 'delete');
  const all = entries(log);
  t.equal(all.at(-1)!.kind, 'poststop', 'poststop at delete');
  t.equal(all.at(-1)!.state.status, 'stopped', 'poststop sees a stopped container');
});

t.test('a failing createRuntime hook fails create and leaves nothing behind', async t => {
  const log = path.join(logDir, 'fail.log');
  const id = uniqueId('hookfail');
  const bundle = makeBundle(['true'], {
    edit: spec => { spec.hooks = { createRuntime: [hook('createRuntime', log, ['HOOK_EXIT=3'])] }; },
  });
  const r = tsrt(['create', '-b', bundle, id], { root });
  t.equal(r.code, 1, 'create fails');
  t.match(r.stderr, /error running createRuntime hook #0: exit status 3/, 'the error names the hook and its status');
  t.notOk(fs.existsSync(path.join(root, id)), 'no state dir left');
  t.match(tsrt(['state', id], { root }).stderr, /container does not exist/, 'the container does not exist');
});

t.test('a hook that outlives its timeout is killed and fails create', async t => {
  const id = uniqueId('hooktimeout');
  const bundle = makeBundle(['true'], {
    edit: spec => { spec.hooks = { prestart: [{ path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }] }; },
  });
  const r = tsrt(['create', '-b', bundle, id], { root });
  t.equal(r.code, 1, 'create fails');
  t.match(r.stderr, /prestart hook #0: timeout/, 'the error says the hook timed out');
  t.notOk(fs.existsSync(path.join(root, id)), 'no state dir left');
});

t.test('a failing poststart hook is a warning: the container keeps running', async t => {
  const log = path.join(logDir, 'poststart.log');
  const id = uniqueId('poststart');
  const bundle = makeBundle(['sleep', '30'], {
    edit: spec => { spec.hooks = { poststart: [hook('poststart', log, ['HOOK_EXIT=1'])] }; },
  });
  t.teardown(() => tsrt(['delete', '--force', id], { root }));
  t.equal(tsrt(['create', '-b', bundle, id], { root }).code, 0, 'create');
  const r = tsrt(['start', id], { root });
  t.equal(r.code, 0, 'start still succeeds');
  t.match(r.stderr, /level=warning.*poststart hook #0/, 'the failure is logged as a warning');
  t.match(tsrt(['state', id], { root }).stdout, /"status": "running"/, 'the container runs');
});

t.test('hooks inside the container are refused, not ignored', async t => {
  const id = uniqueId('incontainer');
  const bundle = makeBundle(['true'], {
    edit: spec => { spec.hooks = { createContainer: [{ path: '/bin/true' }] }; },
  });
  const r = tsrt(['run', '-b', bundle, id], { root });
  t.equal(r.code, 1, 'run fails');
  t.match(r.stderr, /hooks\/createContainer: hooks inside the container are not supported/, 'clear error');
  t.notOk(fs.existsSync(path.join(root, id)), 'no state dir left');
});
