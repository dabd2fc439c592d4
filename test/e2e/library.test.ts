// The library surface (src/index.ts) called in-process, as tsrt-singularity and other programs call it. A
// refused or failed call throws runc's error and leaves nothing open in the caller: the CLI exits and takes a
// leaked fd with it, a long-lived library caller keeps it, and a leaked lock fd blocks its own next call on
// that container for good.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, create, kill, pause, remove, resume, run, start, state, update } from '../../src/index.js';
import { DataType, FsType, PartType, SifImage } from '../../src/sif/index.js';
import { e2eFile, editConfig, uniqueId, waitFor } from '../helpers.js';

const { ROOT, scope } = e2eFile(t, { name: 'library', idPrefix: 'lib', needsRoot: 'library tests need root', timeoutMinutes: 5 });
const warnings: string[] = [];
const warn = (m: string) => warnings.push(m);

function openFds(): string[] {
  return fs.readdirSync('/proc/self/fd').flatMap(fd => {
    try {
      return [`${fd} -> ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`];
    } catch {
      return []; // the directory fd readdirSync itself used
    }
  });
}

/**
 * `call` throws `message`, and every fd open after it was open before it. A leaked one is closed here, so the
 * rest of the test can go on: the next call on a container whose lock fd leaked would wait on it for ever.
 */
function refuses(tt: Test, what: string, call: () => void, message: string | RegExp): void {
  const before = openFds();
  let thrown: unknown;
  try {
    call();
  } catch (e) {
    thrown = e;
  }
  tt.ok(thrown instanceof RuntimeError, `${what}: a RuntimeError`);
  tt.match((thrown as Error | undefined)?.message, message, `${what}: runc's message`);
  const left = openFds().filter(fd => !before.includes(fd));
  tt.same(left, [], `${what}: no fd left open`);
  for (const fd of left) fs.closeSync(Number(fd.split(' ')[0]));
}

t.test('refused calls on a running, then a stopped container leave no fd open in the caller', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['sleep', '1000']);
  const id = uniqueId('lib');
  // Deleted in-process: this test is the init's parent, and delete reaps it only for its parent.
  tt.teardown(() => remove(ROOT, id, true, warn));
  create({ root: ROOT, id, bundle, warn });
  start(ROOT, id, warn);
  tt.equal(state(ROOT, id).status, 'running');

  const calls: [string, () => void, string][] = [
    ['start', () => start(ROOT, id, warn), 'cannot start an already running container'],
    ['resume', () => resume(ROOT, id), 'container not paused'],
    ['delete', () => remove(ROOT, id, false, warn), `cannot delete container ${id} that is not stopped: running`],
  ];
  for (const [what, call, message] of calls) refuses(tt, what, call, message);

  kill(ROOT, id, 'KILL', false);
  tt.ok(
    waitFor(() => state(ROOT, id).status === 'stopped'),
    'stopped after SIGKILL',
  );
  const stopped: [string, () => void, string][] = [
    ['start', () => start(ROOT, id, warn), 'cannot start a container that has stopped'],
    ['kill', () => kill(ROOT, id, 'KILL', false), 'container not running'],
    ['pause', () => pause(ROOT, id), 'container not running'],
    ['update', () => update(ROOT, id, { pids: { limit: 10 } }), 'container not running'],
  ];
  for (const [what, call, message] of stopped) refuses(tt, what, call, message);
  tt.same(warnings, [], 'no warnings');
});

t.test('run of a terminal container whose start fails (a startContainer hook) leaves no fd open', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['true'], spec => {
    spec.process.terminal = true;
    spec.hooks = { startContainer: [{ path: '/bin/false' }] };
  });
  const id = uniqueId('lib');
  tt.teardown(() => remove(ROOT, id, true, warn));
  // In the foreground with a terminal: the pty master would come to this process over a socket pair.
  refuses(tt, 'run', () => run({ root: ROOT, id, bundle, warn }), /^error running startContainer hook #0: exit status 1/);
  tt.notOk(fs.existsSync(`${ROOT}/${id}`), 'the container is gone');
});

t.test('create refused by its config with an image as root: the image, opened first, is closed again', async tt => {
  const s = scope(tt);
  const bundle = s.bundle(['true']);
  const squashfs = path.join(bundle, 'rootfs.sqfs');
  const r = spawnSync('mksquashfs', [path.join(bundle, 'rootfs'), squashfs, '-quiet', '-noappend', '-all-root'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mksquashfs: ${r.stderr}`);
  SifImage.create(path.join(bundle, 'image.sif'), [
    { dataType: DataType.Partition, data: { path: squashfs }, partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys } },
  ]).close();
  editConfig(bundle, spec => {
    spec.root = { path: 'image.sif', readonly: true };
    spec.process.capabilities.bounding.push('CAP_NO_SUCH_THING');
  });
  const id = uniqueId('lib');
  refuses(tt, 'create', () => create({ root: ROOT, id, bundle, warn }), /CAP_NO_SUCH_THING/);
  tt.notOk(fs.existsSync(`${ROOT}/${id}`), 'no state dir');
});
