// Issue 13, finding 3 (R9): tsrt-singularity kept sessions, instance state and logs in
// /tmp/tsrt-singularity-<uid> when XDG_RUNTIME_DIR was unset, whoever made it. Another user could truncate the
// victim's files through a planted log symlink, make `instance stop --all` kill an unrelated process of the
// victim's, and race a session's config.json. Now: no /tmp fallback (a clear error naming XDG_RUNTIME_DIR),
// the runtime directory verified on its fd, instance logs where Singularity puts them
// (~/.singularity/instances/logs/<host>/<user>/, opened without following symlinks), and `instance stop`
// signals only a process proven to be the instance (pid and start time recorded and checked again).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { alive, waitFor } from '../helpers.js';
import { multiUser, plant } from '../multiuser-kit.js';
import { SINGULARITY, kit, sandbox } from '../singularity-run-kit.js';

const mu = multiUser(t);
const k = kit(t);
const { victim, attacker } = mu;
const image = sandbox(k, { startscript: 'echo "instance $SINGULARITY_INSTANCE up"; exec sleep 1000' });
/** A file of the victim's that an attack would truncate. */
function precious(): string {
  const file = path.join(mu.owned(victim, 0o755, 'tsrt-mu-precious-'), 'precious');
  plant(mu, victim, file, "the victim's data\n", 0o644);
  return file;
}
const sing = (args: string[], env: Record<string, string>) => mu.as(victim, [SINGULARITY, ...args], { env });
/** A private runtime dir and home for the victim: what logind and the passwd entry give. */
function victimEnv(): Record<string, string> {
  return { XDG_RUNTIME_DIR: mu.owned(victim, 0o700, 'tsrt-mu-xdg-'), HOME: mu.owned(victim, 0o700, 'tsrt-mu-home-') };
}
/** Stops the victim's instances (by their owner) when the test ends. */
const stopAllAtEnd = (tt: { teardown(fn: () => void): void }, env: Record<string, string>) =>
  tt.teardown(() => {
    sing(['instance', 'stop', '--all', '-F'], env);
  });

t.test('finding 3: without XDG_RUNTIME_DIR tsrt-singularity refuses; a log symlink planted in /tmp truncates nothing', async tt => {
  const fallback = `/tmp/tsrt-singularity-${victim.uid}`;
  const ours = (): boolean => fs.existsSync(fallback) && [victim.uid, attacker.uid].includes(fs.lstatSync(fallback).uid);
  if (ours()) fs.rmSync(fallback, { recursive: true, force: true });
  const env = { HOME: mu.owned(victim, 0o700, 'tsrt-mu-home-') };
  tt.teardown(() => {
    // Where the fallback is still used, an instance the test started there is stopped before its state goes.
    sing(['instance', 'stop', '--all', '-F'], env);
    if (ours()) fs.rmSync(fallback, { recursive: true, force: true });
  });
  // The attacker makes the whole tree first, world-writable, with the victim's log names as symlinks.
  const logs = path.join(fallback, 'instances', 'logs');
  fs.mkdirSync(logs, { recursive: true });
  for (const d of [fallback, path.join(fallback, 'instances'), logs]) mu.give(attacker, d, 0o777);
  const file = precious();
  for (const ext of ['out', 'err']) {
    fs.symlinkSync(file, path.join(logs, `web.${ext}`));
    mu.give(attacker, path.join(logs, `web.${ext}`));
  }
  const r = sing(['instance', 'start', image, 'web'], env);
  tt.equal(r.code, 255, 'instance start fails');
  tt.match(r.stderr, /^FATAL: .*XDG_RUNTIME_DIR/m, 'the error names XDG_RUNTIME_DIR');
  tt.equal(fs.readFileSync(file, 'utf8'), "the victim's data\n", "the victim's file was not truncated through the planted symlink");
  const e = sing(['exec', image, 'true'], env);
  tt.equal(e.code, 255, 'exec is refused the same way (its session would live there too)');
  tt.match(e.stderr, /XDG_RUNTIME_DIR/);
});

t.test(
  'finding 3: root without XDG_RUNTIME_DIR (a batch prolog, sudo) keeps its sessions in /run/tsrt-singularity, which only root can write',
  async tt => {
    const { XDG_RUNTIME_DIR: _, ...env } = process.env;
    const r = spawnSync(SINGULARITY, ['exec', image, 'true'], { encoding: 'utf8', env });
    tt.equal(r.status, 0, r.stderr);
    const st = fs.lstatSync('/run/tsrt-singularity');
    tt.ok(st.isDirectory() && st.uid === 0 && (st.mode & 0o077) === 0, 'root-owned, mode 0700');
  },
);

t.test('finding 3: a runtime directory that others can write is refused', async tt => {
  const env = victimEnv();
  const dir = path.join(env['XDG_RUNTIME_DIR']!, 'tsrt-singularity');
  fs.mkdirSync(dir);
  mu.give(victim, dir, 0o777);
  const r = sing(['exec', image, 'true'], env);
  tt.equal(r.code, 255);
  tt.match(r.stderr, new RegExp(`${dir}.*writable by group or others`), 'the error names the directory and why');
  tt.same(fs.readdirSync(dir), [], 'no session was made in it');
});

t.test('finding 3: instance stop --all signals only a process proven to be the instance', async tt => {
  const env = victimEnv();
  // An unrelated long-running process of the victim's, and an instance record naming its pid: a record whose
  // instance died and whose pid was reused (or, before, a record another user planted).
  const unrelated = mu.background(victim, ['/usr/bin/sleep', '1000']);
  tt.ok(
    waitFor(() => alive(unrelated)),
    'the unrelated process runs',
  );
  const instances = path.join(env['XDG_RUNTIME_DIR']!, 'tsrt-singularity', 'instances');
  fs.mkdirSync(instances, { recursive: true });
  plant(
    mu,
    victim,
    path.join(instances, 'ghost.json'),
    JSON.stringify({
      name: 'ghost',
      pid: unrelated,
      monitorPid: unrelated,
      pidStartTime: '1',
      monitorStartTime: '1',
      image,
      id: 'instance-ghost',
      cwd: '/',
      started: new Date().toISOString(),
      logOutPath: '/dev/null',
      logErrPath: '/dev/null',
    }),
    0o600,
  );
  for (const d of [path.dirname(instances), instances]) mu.give(victim, d, 0o700);
  const r = mu.as(victim, [SINGULARITY, 'instance', 'stop', '--all', '-t', '2'], { env, timeout: 60_000 });
  tt.equal(r.code, 0, `instance stop --all: ${r.stderr}`);
  tt.ok(alive(unrelated), 'the unrelated process was not signalled');
  tt.notMatch(r.stderr, /Stopping ghost/, 'the stale record is not taken for an instance');
});

t.test('finding 3: instance logs go to ~/.singularity/instances/logs/<host>/<user>/, never through a symlink', async tt => {
  const env = victimEnv();
  stopAllAtEnd(tt, env);
  const logs = path.join(env['HOME']!, '.singularity', 'instances', 'logs', os.hostname(), victim.name);
  const r = sing(['instance', 'start', image, 'web'], env);
  tt.equal(r.code, 0, r.stderr);
  tt.ok(
    waitFor(() => fs.existsSync(path.join(logs, 'web.out')) && fs.readFileSync(path.join(logs, 'web.out'), 'utf8').includes('up')),
    "the startscript's output is in Singularity's log directory",
  );
  tt.equal(fs.statSync(path.join(logs, 'web.out')).mode & 0o777, 0o600, 'the log is private');
  const listed = JSON.parse(sing(['instance', 'list', '--json'], env).stdout).instances;
  tt.match(
    listed,
    [{ instance: 'web', logOutPath: path.join(logs, 'web.out'), logErrPath: path.join(logs, 'web.err') }],
    'list names them',
  );
  tt.notOk(fs.existsSync(path.join(env['XDG_RUNTIME_DIR']!, 'tsrt-singularity', 'instances', 'logs')), 'no logs in the runtime directory');

  const file = precious();
  fs.symlinkSync(file, path.join(logs, 'web2.out'));
  mu.give(victim, path.join(logs, 'web2.out'));
  const s = sing(['instance', 'start', image, 'web2'], env);
  tt.equal(s.code, 255, 'a symlink at the log path is refused');
  tt.match(s.stderr, /web2\.out.*symbolic link/);
  tt.equal(fs.readFileSync(file, 'utf8'), "the victim's data\n", 'and not followed');
});
