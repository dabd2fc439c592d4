// Issue 13, finding 2 (R9): the state root of an unprivileged tsrt in a directory another user can write.
// Without XDG_RUNTIME_DIR (batch jobs, cron, su) the default root was /tmp/tsrt-<uid>, accepted whoever made
// it; `delete` then ran the poststop hooks of whatever state.json was there, as the victim. Now tsrt refuses
// without XDG_RUNTIME_DIR (naming --root and XDG_RUNTIME_DIR), verifies $XDG_RUNTIME_DIR (the caller's,
// mode 0700, not a symlink) and every state root it reuses (the caller's, no group/other write), and uses
// it by fd. The victim is the test user, the attacker a second unprivileged user.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { TSRT } from '../helpers.js';
import { multiUser, plant, type User } from '../multiuser-kit.js';

const mu = multiUser(t);
const { victim, attacker } = mu;

/** A stopped container record as tsrt writes it, whose poststop hook writes the uid it runs as to `proof`. */
function plantedRecord(id: string, proof: string): string {
  return JSON.stringify({
    ociVersion: '1.2.0',
    id,
    pid: 0,
    bundle: '/',
    rootfs: '/',
    created: new Date().toISOString(),
    owner: '',
    initStartTime: '0',
    privatePidns: false,
    rootless: true,
    hooks: { poststop: [{ path: '/bin/sh', args: ['sh', '-c', `id -u > ${proof}`] }] },
  });
}

/** A directory the attacker owns (0777) where the planted hook writes its proof. */
function proofFile(): string {
  return path.join(mu.owned(attacker, 0o777, 'tsrt-mu-proof-'), 'hook-ran-as');
}

/** Plants <stateRoot>/<id>/state.json as the attacker; returns the file the planted hook would write. */
function plantContainer(stateRoot: string, id: string, owner: User = attacker): string {
  const proof = proofFile();
  plant(mu, owner, path.join(stateRoot, id, 'state.json'), plantedRecord(id, proof), 0o666);
  mu.give(owner, path.join(stateRoot, id), 0o777);
  return proof;
}

const deleteAs = (args: string[], env: Record<string, string> = {}) => mu.as(victim, [TSRT, ...args], { env });

t.test('finding 2: without XDG_RUNTIME_DIR an unprivileged tsrt refuses; nothing planted in /tmp/tsrt-<uid> runs', async tt => {
  // The old fallback name, made first by the attacker, world-writable, holding a stopped container.
  const fallback = `/tmp/tsrt-${victim.uid}`;
  const mine = (): boolean => fs.existsSync(fallback) && [victim.uid, attacker.uid].includes(fs.lstatSync(fallback).uid);
  if (mine()) fs.rmSync(fallback, { recursive: true, force: true });
  tt.teardown(() => {
    if (mine()) fs.rmSync(fallback, { recursive: true, force: true });
  });
  fs.mkdirSync(fallback);
  mu.give(attacker, fallback, 0o777);
  const proof = plantContainer(fallback, 'planted');

  const r = deleteAs(['delete', 'planted']);
  tt.not(r.code, 0, 'delete is refused');
  tt.match(r.stderr, /XDG_RUNTIME_DIR/, 'the error names XDG_RUNTIME_DIR');
  tt.match(r.stderr, /--root/, 'and --root, the two ways to give a state directory');
  tt.notOk(
    fs.existsSync(proof),
    `the planted poststop hook never ran as the victim (${fs.existsSync(proof) ? `it ran as uid ${fs.readFileSync(proof, 'utf8').trim()}` : 'no proof file'})`,
  );
  tt.ok(fs.existsSync(path.join(fallback, 'planted', 'state.json')), 'the planted record is left alone');

  const list = deleteAs(['list']);
  tt.not(list.code, 0, 'list is refused the same way');
  tt.match(list.stderr, /XDG_RUNTIME_DIR/);
  const spec = mu.as(victim, [TSRT, 'spec', '--rootless', '-b', mu.owned(victim)]);
  tt.equal(spec.code, 0, `spec needs no state directory and still works: ${spec.stderr}`);
});

t.test('finding 2: a --root another user made in a shared sticky directory is refused; its hooks never run', async tt => {
  // A site's /run/tsrt-slurm (1777) where the attacker made the victim's per-user directory first.
  const shared = mu.shared();
  const root = path.join(shared, victim.name);
  fs.mkdirSync(root);
  mu.give(attacker, root, 0o777);
  const proof = plantContainer(root, 'planted');
  const r = deleteAs(['--root', root, 'delete', 'planted']);
  tt.not(r.code, 0, 'delete is refused');
  tt.match(r.stderr, new RegExp(`${root}.*owned by uid ${attacker.uid}`), 'the error names the directory and its owner');
  tt.notOk(fs.existsSync(proof), 'the planted poststop hook never ran');
});

t.test("finding 2: a state root of the victim's own that others can write is refused", async tt => {
  const root = mu.owned(victim, 0o777);
  const proof = plantContainer(root, 'planted');
  const r = deleteAs(['--root', root, 'delete', 'planted']);
  tt.not(r.code, 0, 'delete is refused');
  tt.match(r.stderr, new RegExp(`${root}.*writable by group or others`), 'the error says why');
  tt.notOk(fs.existsSync(proof), 'the planted poststop hook never ran');
});

t.test("finding 2: $XDG_RUNTIME_DIR is verified: the caller's own, mode 0700, not a symlink", async tt => {
  tt.test("another user's directory", async t3 => {
    const xdg = mu.owned(attacker, 0o777);
    fs.mkdirSync(path.join(xdg, 'tsrt'));
    mu.give(attacker, path.join(xdg, 'tsrt'), 0o777);
    const proof = plantContainer(path.join(xdg, 'tsrt'), 'planted');
    const r = deleteAs(['delete', 'planted'], { XDG_RUNTIME_DIR: xdg });
    t3.not(r.code, 0, 'delete is refused');
    t3.match(r.stderr, new RegExp(`XDG_RUNTIME_DIR ${xdg}.*owned by uid ${attacker.uid}`));
    t3.notOk(fs.existsSync(proof), 'the planted poststop hook never ran');
  });
  tt.test("the victim's own, but readable by others (0755)", async t3 => {
    const xdg = mu.owned(victim, 0o755);
    const r = deleteAs(['list'], { XDG_RUNTIME_DIR: xdg });
    t3.not(r.code, 0);
    t3.match(r.stderr, new RegExp(`XDG_RUNTIME_DIR ${xdg}.*mode 0755.*0700`));
  });
  tt.test("a symlink (planted in a shared directory) to the victim's own private directory", async t3 => {
    const target = mu.owned(victim, 0o700);
    const link = path.join(mu.shared(), 'xdg');
    fs.symlinkSync(target, link);
    mu.give(attacker, link);
    const r = deleteAs(['list'], { XDG_RUNTIME_DIR: link });
    t3.not(r.code, 0);
    t3.match(r.stderr, new RegExp(`XDG_RUNTIME_DIR ${link}.*symbolic link`));
    t3.same(fs.readdirSync(target), [], 'nothing was made through the link');
  });
  tt.test("the victim's own 0700 directory inside one the attacker owns (who could swap it)", async t3 => {
    const parent = mu.owned(attacker, 0o777);
    const xdg = path.join(parent, 'xdg');
    fs.mkdirSync(xdg);
    mu.give(victim, xdg, 0o700);
    const r = deleteAs(['list'], { XDG_RUNTIME_DIR: xdg });
    t3.not(r.code, 0);
    t3.match(r.stderr, new RegExp(`XDG_RUNTIME_DIR ${xdg} is inside ${parent}, which is owned by uid ${attacker.uid}`));
  });
  tt.test("the victim's own 0700 directory works", async t3 => {
    const xdg = mu.owned(victim, 0o700);
    const r = deleteAs(['list', '-q'], { XDG_RUNTIME_DIR: xdg });
    t3.equal(r.code, 0, r.stderr);
    t3.equal(r.stdout, '');
  });
});

t.test("finding 2: root on a state root a user owns (Slurm's RunTimeQuery/Kill/Delete) acts as that user, never as root", async tt => {
  // The user's own root, made as tsrt makes it; the record in it is the user's to write, hooks included.
  const root = path.join(mu.owned(attacker, 0o755, 'tsrt-mu-slurm-'), 'tsrt-cn1-user');
  fs.mkdirSync(root, { mode: 0o700 });
  mu.give(attacker, root, 0o700);
  const proof = proofFile();
  plant(mu, attacker, path.join(root, 'job1', 'state.json'), plantedRecord('job1', proof), 0o600);
  mu.give(attacker, path.join(root, 'job1'), 0o700);

  const asRoot = (args: string[]) => spawnSync(TSRT, ['--root', root, ...args], { encoding: 'utf8' });
  const state = asRoot(['state', 'job1']);
  tt.equal(state.status, 0, `root can query the user's container (${state.stderr.trim()})`);
  tt.equal(JSON.parse(state.stdout || '{}').status, 'stopped');
  const del = asRoot(['delete', '--force', 'job1']);
  tt.equal(del.status, 0, del.stderr);
  tt.equal(
    fs.existsSync(proof) ? fs.readFileSync(proof, 'utf8').trim() : 'no proof file',
    String(attacker.uid),
    "the user's poststop hook ran as the user, not as root",
  );
  tt.notOk(fs.existsSync(path.join(root, 'job1')), 'the container is gone');
});
