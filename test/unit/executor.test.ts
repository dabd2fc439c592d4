// native/executor/tsrt-executor on its own: the program every cloned child execs from a sealed memfd. It runs
// only when started the way the runtime starts it (its magic argv[0] and three fd numbers), and a plan its
// decoder refuses is reported on the sync socket, never run. Needs npm run build. No root needed.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { REPO, tmpdir } from '../helpers.js';
import { S_SETUP } from '../../src/native-abi/abi.gen.js';
import { Msg, native } from '../../src/native.js';

const EXECUTOR = path.join(REPO, 'native', 'executor', 'tsrt-executor');
const MAGIC = 'tsrt-executor:plan';
if (!fs.existsSync(EXECUTOR)) {
  t.fail(`${EXECUTOR} is missing: build first (npm run build)`);
  process.exit(1);
}

function runExecutor(argv0: string, args: string[], extraFds: number[] = []) {
  const r = spawnSync(EXECUTOR, args, { argv0, env: {}, stdio: ['ignore', 'pipe', 'pipe', ...extraFds], timeout: 30_000 });
  return { code: r.status, stderr: r.stderr.toString() };
}

t.test("argv[0]: anything but the runtime's magic name is refused with 126", async t => {
  const r = runExecutor('tsrt-executor', ['3', '4', '5']);
  t.equal(r.code, 126);
  t.match(r.stderr, /^tsrt-executor: refusing to run: not started by the tsrt runtime$/m);
});

t.test('argv: fd numbers must be plain decimals', async t => {
  for (const args of [
    ['3', '4'],
    ['3', '4', 'x'],
    ['3', '-4', '5'],
    ['3', '', '5'],
  ]) {
    const r = runExecutor(MAGIC, args);
    t.equal(r.code, 126, `${JSON.stringify(args)} is refused`);
    t.match(r.stderr, /refusing to run: (bad fd arguments|not started by the tsrt runtime)/);
  }
});

t.test('plan: bytes the decoder refuses are reported on the sync socket as a set-up error, and nothing runs', async t => {
  const dir = tmpdir('tsrt-executor-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const planFile = path.join(dir, 'plan');
  fs.writeFileSync(planFile, Buffer.alloc(64, 0x41));
  const planFd = fs.openSync(planFile, 'r');
  const [ours, theirs] = native().socketPair();
  t.teardown(() => {
    native().closeFd(ours);
    fs.closeSync(planFd);
  });
  // The child gets the socket as fd 3 and the plan as fd 4; fd 5 (the sealed helper) is never reached.
  const r = runExecutor(MAGIC, ['3', '4', '5'], [theirs, planFd]);
  native().closeFd(theirs);
  t.equal(r.code, 1, r.stderr);
  const m = native().recv(ours);
  t.ok(m, 'one message arrived');
  t.equal(m?.type, Msg.error);
  t.equal(m?.step, S_SETUP, 'the set-up step (S_SETUP)');
  t.equal(m?.errname, 'EPROTO');
  t.equal(m?.detail, 'bad plan magic');
});
