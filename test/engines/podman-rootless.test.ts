// Rootless podman: an unprivileged user (subuid/subgid ranges in /etc/subuid, /etc/subgid) runs containers through
// tsrt and through runc, with its own storage under the file's private podman setup. Podman runs the runtime as
// uid 0 inside the user namespace it made for the user, so the runtime must find its state dir, skip the cgroups
// it may not make (cgroup v1 has no delegation) and bind devices instead of making them. --network none
// throughout: slirp4netns cannot open /dev/net/tun for an unprivileged user on this host.
import t from 'tap';
import * as fs from 'node:fs';
import { testUser } from '../helpers.js';
import { bothRuntimes, containerName, podman, podmanSetup, type Runtime } from './fixtures/podman.js';

const user = testUser();
/** The user's first subordinate uid: podman maps container uid 1 onwards there. */
const subuid = Number(
  fs
    .readFileSync('/etc/subuid', 'utf8')
    .split('\n')
    .find(l => l.startsWith(`${user.name}:`))!
    .split(':')[1],
);
const env = podmanSetup(t, 'podman-tsrt-rootless', '10.89.215', user.name);
const IMG = env.image;
const pm = (args: string[], opts = {}) => podman(env, args, { user: user.name, ...opts });

function runRm(rt: Runtime, flags: string[], args: string[], opts = {}) {
  return pm(['--runtime', rt, 'run', '--rm', '--network', 'none', ...flags, IMG, ...args], opts);
}

function detached(tt: { teardown(fn: () => void): void }, rt: Runtime, what: string) {
  const name = containerName(rt, what);
  pm(['rm', '-f', '-t', '0', name]);
  const r = pm(['--runtime', rt, 'run', '-d', '--network', 'none', '--name', name, IMG, 'sleep', '1000']);
  if (r.code !== 0) throw new Error(`podman run -d ${name} (${rt}): ${r.stderr}`);
  tt.teardown(() => void pm(['rm', '-f', '-t', '0', name]));
  return name;
}

const inspect = (name: string, format: string) => pm(['inspect', '--format', format, name]).stdout.trim();

t.test('run --rm as an unprivileged user: root inside maps to the user, the rest to its subordinate range', async t => {
  await bothRuntimes(
    t,
    rt => {
      const r = runRm(rt, [], ['sh', '-c', 'id; cat /proc/self/uid_map | tr -s " "; ls -n /dev/null | cut -c1']);
      return { code: r.code, stdout: r.stdout };
    },
    { code: 0, stdout: `uid=0(root) gid=0(root)\n 0 ${user.uid} 1\n 1 ${subuid} 65536\nc\n` },
  );
});

t.test('exit codes 3, 127 and 126 as an unprivileged user', async t => {
  await bothRuntimes(
    t,
    rt => [runRm(rt, [], ['sh', '-c', 'exit 3']).code, runRm(rt, [], ['/no/such/binary']).code, runRm(rt, [], ['/etc/passwd']).code],
    [3, 127, 126],
  );
});

t.test('detached run, exec (plain, -t, -u), stop with a timeout, rm', async t => {
  await bothRuntimes(
    t,
    rt => {
      const name = detached(t, rt, 'rl');
      const observed = {
        status: inspect(name, '{{.State.Status}}'),
        exec: pm(['exec', name, 'echo', 'hi']).stdout,
        tty: pm(['exec', '-t', '-u', '65534', name, 'sh', '-c', 'tty; id -u']).stdout.replace(/\r/g, ''),
        execExit: pm(['exec', name, 'sh', '-c', 'exit 4']).code,
        stop: pm(['stop', '-t', '1', name]).code,
        exitCode: inspect(name, '{{.State.ExitCode}}'),
        rm: pm(['rm', name]).code,
      };
      return observed;
    },
    { status: 'running', exec: 'hi\n', tty: '/dev/pts/0\n65534\n', execExit: 4, stop: 0, exitCode: '137', rm: 0 },
  );
});

t.test("run -t, rootless: the pty belongs to group tty (devpts gid=5, mapped in podman's namespace)", async t => {
  await bothRuntimes(t, rt => runRm(rt, ['-t'], ['stat', '-c', '%n %g %a', '/dev/pts/0']).stdout.replace(/\r/g, ''), '/dev/pts/0 5 620\n');
});

t.test('--userns keep-id: the user is itself inside', async t => {
  await bothRuntimes(t, rt => runRm(rt, ['--userns', 'keep-id'], ['sh', '-c', 'id -u; id -g']).stdout, `${user.uid}\n${user.gid}\n`);
});

t.test("--uidmap inside the user's range: a second user namespace, mapped from podman's", async t => {
  // uid_map is relative to the parent namespace (podman's, where uid 1 is the user's first subordinate uid)
  await bothRuntimes(
    t,
    rt => runRm(rt, ['--uidmap', '0:1:1000', '--gidmap', '0:1:1000'], ['sh', '-c', 'cat /proc/self/uid_map | tr -s " "; id -u']).stdout,
    ' 0 1 1000\n0\n',
  );
});

t.test('kill with a signal and the default seccomp profile, rootless', async t => {
  await bothRuntimes(
    t,
    rt => {
      const name = detached(t, rt, 'rlkill');
      return {
        seccomp: pm(['exec', name, 'grep', '^Seccomp:', '/proc/self/status']).stdout,
        kill: pm(['kill', '--signal', 'KILL', name]).code,
        exit: pm(['wait', name]).stdout.trim(),
      };
    },
    { seccomp: 'Seccomp:\t2\n', kill: 0, exit: '137' },
  );
});
