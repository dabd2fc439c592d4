// exec, run, shell, test, run-help and inspect with native-mode defaults (Singularity's, without --oci), run by an
// unprivileged user on a sandbox and on a squashfs image the test builds; every default asserted from inside.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { SINGULARITY, kit, sandbox, sif, squashfs } from '../singularity-run-kit.js';
import { waitScale } from '../helpers.js';

const k = kit(t);
const image = sandbox(k, {
  runscript: 'echo "runscript got: $*"; exit 7',
  startscript: 'echo start',
  test: 'echo "test ran as $(id -u)"; exit 0',
  help: 'Usage: run me with words',
  labels: { maintainer: 'singrun', version: '1.2' },
  environment: 'export FROM_IMAGE=image-value\nexport OVERRIDDEN=image',
  deffile: 'Bootstrap: scratch\n',
  apps: { hello: { runscript: 'echo "hello app: $SINGULARITY_APPNAME $*"', help: 'hello help', environment: 'export APPVAR=app-value' } },
});

t.test('exec runs the command as the calling user, with its uid and gid', async t => {
  const r = k.sing(['exec', image, 'id']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^uid=${k.user.uid}\\(${k.user.name}\\) gid=${k.user.gid}\\(${k.user.name}\\)`));
});

t.test("/etc/passwd and /etc/group get the user's entries, the image's own kept", async t => {
  const r = k.sing(['exec', image, 'cat', '/etc/passwd', '/etc/group']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^root:x:0:0:/m);
  t.match(r.stdout, new RegExp(`^${k.user.name}:x:${k.user.uid}:${k.user.gid}:[^:]*:${k.home}:`, 'm'));
  t.match(r.stdout, new RegExp(`^${k.user.name}:x:${k.user.gid}:`, 'm'));
  t.equal(fs.readFileSync(path.join(image, 'etc/passwd'), 'utf8').includes(k.user.name), false, 'the image itself is untouched');
});

t.test("$HOME, /tmp, /var/tmp and $PWD are the host's, and the cwd is kept", async t => {
  const work = k.dir('singrun-cwd-');
  fs.writeFileSync(path.join(work, 'here.txt'), 'cwd file');
  const stamp = `singrun-${process.pid}-${randomBytes(6).toString('hex')}`;
  // R9: a random name, created exclusively (never through something another user put there first).
  fs.writeFileSync(`/tmp/${stamp}`, 'tmp file', { flag: 'wx' });
  t.teardown(() => fs.rmSync(`/tmp/${stamp}`, { force: true }));
  const r = k.sing(
    [
      'exec',
      image,
      'sh',
      '-c',
      `echo "$HOME"; pwd; cat here.txt; echo; cat /tmp/${stamp}; echo; test -d /var/tmp && echo vartmp; touch "$HOME/.singrun-probe" && echo home-writable`,
    ],
    { cwd: work },
  );
  t.equal(r.code, 0, r.stderr);
  t.same(r.stdout.split('\n').slice(0, 6), [k.home, work, 'cwd file', 'tmp file', 'vartmp', 'home-writable']);
  t.ok(fs.existsSync(path.join(k.home, '.singrun-probe')), 'the write landed in the host home');
  fs.rmSync(path.join(k.home, '.singrun-probe'), { force: true });
});

t.test('/proc, /sys, /dev, /etc/hosts, /etc/localtime and /etc/resolv.conf come from the host', async t => {
  const r = k.sing([
    'exec',
    image,
    'sh',
    '-c',
    'cat /etc/hosts; echo ---; test -c /dev/null && echo devnull; test -d /sys/kernel && echo sys; test -e /etc/localtime && echo localtime; test -e /etc/resolv.conf && echo resolv; echo $$; cat /proc/1/comm',
  ]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.split('---\n')[0], fs.readFileSync('/etc/hosts', 'utf8'));
  t.match(r.stdout, /devnull\nsys\n/);
  if (fs.existsSync('/etc/localtime')) t.match(r.stdout, /localtime/);
  if (fs.existsSync('/etc/resolv.conf')) t.match(r.stdout, /resolv/);
  t.equal(r.stdout.trim().split('\n').pop(), fs.readFileSync('/proc/1/comm', 'utf8').trim(), 'the host PID namespace is shared');
});

t.test('the root filesystem is read-only and the image untouched', async t => {
  const r = k.sing(['exec', image, 'touch', '/created-by-test']);
  t.not(r.code, 0);
  t.match(r.stderr, /Read-only file system/);
  t.notOk(fs.existsSync(path.join(image, 'created-by-test')));
  t.notOk(fs.existsSync(path.join(image, k.home.slice(1))), 'mount points went to the session layer, not the image');
});

t.test("the host environment passes through; the image's env scripts and SINGULARITYENV_* override it in order", async t => {
  const r = k.sing(
    [
      'exec',
      image,
      'sh',
      '-c',
      'echo "$HOSTVAR|$FROM_IMAGE|$OVERRIDDEN|$APPTVAR|$PATH|$LD_LIBRARY_PATH|$SINGULARITY_NAME|$SINGULARITY_CONTAINER"',
    ],
    {
      env: {
        HOSTVAR: 'host-value',
        OVERRIDDEN: 'host',
        SINGULARITYENV_OVERRIDDEN: 'prefixed',
        APPTAINERENV_APPTVAR: 'apptainer',
        LD_LIBRARY_PATH: '/host/lib',
      },
    },
  );
  t.equal(r.code, 0, r.stderr);
  t.equal(
    r.stdout.trim(),
    `host-value|image-value|prefixed|apptainer|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin||image|${image}`,
  );
});

t.test('SINGULARITYENV_PREPEND_PATH and APPEND_PATH edit PATH; SINGULARITYENV_HOME is refused', async t => {
  const r = k.sing(['exec', image, 'sh', '-c', 'echo "$PATH|$HOME"'], {
    env: { SINGULARITYENV_PREPEND_PATH: '/first', SINGULARITYENV_APPEND_PATH: '/last', SINGULARITYENV_HOME: '/elsewhere' },
  });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), `/first:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/last|${k.home}`);
  t.match(r.stderr, /HOME.*not permitted/);
});

t.test("the caller's umask is kept", async t => {
  const env = `HOME=${k.home} XDG_RUNTIME_DIR=${k.runtime} PATH=/usr/bin:/bin`;
  const r = spawnSync(
    'runuser',
    ['-u', k.user.name, '--', 'sh', '-c', `umask 0027; exec env -i ${env} ${SINGULARITY} exec ${image} sh -c umask`],
    { encoding: 'utf8', cwd: '/' },
  );
  t.equal(r.stdout, '0027\n', r.stderr);
});

t.test('stdin, stdout and pipes pass straight through', async t => {
  const r = k.sing(['exec', image, 'sh', '-c', 'wc -l; echo to-stderr >&2'], { input: 'a\nb\nc\n' });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), '3');
  t.match(r.stderr, /to-stderr/);
});

t.test('the exit code propagates, and a signal gives 128+N', async t => {
  t.equal(k.sing(['exec', image, 'sh', '-c', 'exit 42']).code, 42);
  t.equal(k.sing(['exec', image, 'sh', '-c', 'kill -TERM $$']).code, 128 + 15);
});

t.test('a signal sent to tsrt-singularity reaches the payload, which exits 128+N, and the session is cleaned up', async t => {
  const marker = `singrun-signal-${process.pid}`;
  const env = `HOME=${k.home} XDG_RUNTIME_DIR=${k.runtime} PATH=/usr/bin:/bin`;
  const child = spawn('runuser', [
    '-u',
    k.user.name,
    '--',
    'sh',
    '-c',
    `exec env -i ${env} ${SINGULARITY} exec ${image} sh -c 'trap "echo got-term; exit 143" TERM; echo ${marker}; while :; do sleep 1; done'`,
  ]);
  let out = '';
  child.stdout.on('data', d => {
    out += d;
  });
  const exited = new Promise<number | null>(res => child.on('exit', code => res(code)));
  for (let i = 0; i < 600 * waitScale() && !out.includes(marker); i++) await new Promise(res => setTimeout(res, 100));
  t.match(out, marker, 'the payload started');
  const launcher = spawnSync('pgrep', ['-u', k.user.name, '-f', `tsrt-singularity exec ${image} sh -c trap`])
    .stdout.toString()
    .trim()
    .split('\n')[0];
  process.kill(Number(launcher), 'SIGTERM');
  t.equal(await exited, 143);
  t.match(out, /got-term/, 'the payload saw SIGTERM');
  t.same(fs.readdirSync(path.join(k.runtime, 'tsrt-singularity', 'sessions')), []);
});

t.test('exec of a missing program fails clearly with a non-zero status', async t => {
  const r = k.sing(['exec', image, '/no/such/program']);
  t.not(r.code, 0);
  t.match(r.stderr, /no\/such\/program/);
});

t.test('run runs the runscript with the arguments and returns its status', async t => {
  const r = k.sing(['run', image, 'one', 'two words']);
  t.equal(r.code, 7);
  t.equal(r.stdout, 'runscript got: one two words\n');
});

t.test('run on an image without a runscript falls back to /bin/sh', async t => {
  const bare = sandbox(k);
  const r = k.sing(['run', bare, '-c', 'echo from-sh']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'from-sh\n');
  t.match(r.stderr, /No runscript/);
});

t.test("--app runs the app's runscript with its environment", async t => {
  const r = k.sing(['run', '--app', 'hello', image, 'x']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'hello app: hello x\n');
  const e = k.sing(['exec', '--app', 'hello', image, 'sh', '-c', 'echo $APPVAR']);
  t.equal(e.stdout, 'app-value\n');
  const bad = k.sing(['run', '--app', 'nope', image]);
  t.equal(bad.code, 255);
  t.match(bad.stderr, /FATAL: +no app "nope".*has: hello/);
});

t.test('shell reads commands from stdin with the Singularity> prompt set', async t => {
  const r = k.sing(['shell', image], { input: 'echo "prompt=$PS1"; id -u\n' });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `prompt=Singularity> \n${k.user.uid}\n`);
  const custom = k.sing(['shell', '--shell', '/bin/ash', image], { input: 'echo $0\n' });
  t.equal(custom.stdout, '/bin/ash\n');
  t.equal(k.sing(['shell', image], { input: 'echo $0\n', env: { SINGULARITY_SHELL: '/bin/ash' } }).stdout, '/bin/ash\n');
  // On a terminal (script(1) gives one) the shell is interactive and shows the prompt.
  const env = `HOME=${k.home} XDG_RUNTIME_DIR=${k.runtime} PATH=/usr/bin:/bin`;
  const tty = spawnSync(
    'runuser',
    ['-u', k.user.name, '--', 'script', '-qec', `env -i ${env} ${SINGULARITY} shell ${image}`, '/dev/null'],
    { input: 'echo "uid=$(id -u)"\nexit 0\n', timeout: 60_000 },
  );
  t.match(tty.stdout.toString(), new RegExp(`Singularity> echo .*\\r\\nuid=${k.user.uid}\\r\\nSingularity> exit 0`));
});

t.test('test runs %test, and an image without one passes', async t => {
  const r = k.sing(['test', image]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `test ran as ${k.user.uid}\n`);
  t.equal(k.sing(['test', sandbox(k)]).code, 0);
  const failing = sandbox(k, { test: 'exit 3' });
  t.equal(k.sing(['test', failing]).code, 3);
});

t.test('run-help prints %help, also for an app', async t => {
  t.equal(k.sing(['run-help', image]).stdout, 'Usage: run me with words\n');
  t.equal(k.sing(['run-help', '--app', 'hello', image]).stdout, 'hello help\n');
  t.match(k.sing(['run-help', sandbox(k)]).stdout, /No help sections/);
});

t.test('inspect shows labels by default and each part on request', async t => {
  t.equal(k.sing(['inspect', image]).stdout, 'maintainer: singrun\nversion: 1.2\n');
  t.equal(k.sing(['inspect', '-l', image]).stdout, 'maintainer: singrun\nversion: 1.2\n');
  t.equal(k.sing(['inspect', '-r', image]).stdout, '#!/bin/sh\necho "runscript got: $*"; exit 7\n');
  t.equal(k.sing(['inspect', '-d', image]).stdout, 'Bootstrap: scratch\n');
  t.equal(k.sing(['inspect', '-t', image]).stdout, '#!/bin/sh\necho "test ran as $(id -u)"; exit 0\n');
  t.equal(k.sing(['inspect', '-H', image]).stdout, 'Usage: run me with words\n');
  t.match(
    k.sing(['inspect', '-e', image]).stdout,
    /=== \/.singularity.d\/env\/90-environment.sh ===\n#!\/bin\/sh\nexport FROM_IMAGE=image-value/,
  );
  t.equal(k.sing(['inspect', '--list-apps', image]).stdout, 'hello\n');
  t.equal(k.sing(['inspect', '-H', '--app', 'hello', image]).stdout, 'hello help\n');
  const json = JSON.parse(k.sing(['inspect', '--json', '-l', '-r', image]).stdout);
  t.same(json, {
    data: { attributes: { labels: { maintainer: 'singrun', version: '1.2' }, runscript: '#!/bin/sh\necho "runscript got: $*"; exit 7\n' } },
    type: 'container',
  });
  const all = JSON.parse(k.sing(['inspect', '--all', '--json', image]).stdout);
  t.same(Object.keys(all.data.attributes).sort(), [
    'apps',
    'deffile',
    'environment',
    'helpfile',
    'labels',
    'runscript',
    'startscript',
    'test',
  ]);
  const bad = k.sing(['inspect', '/no/such/image']);
  t.equal(bad.code, 255);
  t.match(bad.stderr, /FATAL: +could not open image \/no\/such\/image/);
});

t.test("a plain squashfs image runs the same way (extracted once into the user's cache)", async t => {
  const sqfs = squashfs(k, image);
  const r = k.sing(['-v', 'run', sqfs, 'from', 'squashfs']);
  t.equal(r.code, 7, r.stderr);
  t.equal(r.stdout, 'runscript got: from squashfs\n');
  t.match(
    r.stderr,
    /INFO: +.*image.sqfs: (squashfuse mount|using a newly extracted sandbox)/,
    '-v says which path was taken (FUSE where the user may use it)',
  );
  t.equal(k.sing(['exec', sqfs, 'cat', '/proc/self/uid_map']).stdout.trim().split(/\s+/).join(' '), `${k.user.uid} ${k.user.uid} 1`);
  t.equal(k.sing(['inspect', sqfs]).stdout, 'maintainer: singrun\nversion: 1.2\n');
  const w = k.sing(['exec', '-w', sqfs, 'true']);
  t.equal(w.code, 255);
  t.match(w.stderr, /--writable needs a sandbox directory/);
});

t.test('a SIF file runs from its primary partition', async t => {
  const file = sif(k, image);
  const r = k.sing(['-v', 'run', file, 'from', 'sif']);
  t.equal(r.code, 7, r.stderr);
  t.equal(r.stdout, 'runscript got: from sif\n');
  t.match(r.stderr, /INFO: +.*image.sif \(SIF partition \d+, squashfs\)/, '-v says how the partition was reached');
  t.equal(k.sing(['exec', file, 'sh', '-c', 'echo $SINGULARITY_CONTAINER; id -u']).stdout, `${file}\n${k.user.uid}\n`);
  t.equal(k.sing(['inspect', '-H', file]).stdout, 'Usage: run me with words\n');
});

t.test('nothing is left behind: no session directories, no tsrt state', async t => {
  const sessions = path.join(k.runtime, 'tsrt-singularity', 'sessions');
  t.same(fs.existsSync(sessions) ? fs.readdirSync(sessions) : [], []);
  const state = path.join(k.runtime, 'tsrt-singularity', 'tsrt');
  t.same(fs.existsSync(state) ? fs.readdirSync(state).filter(f => !f.startsWith('.')) : [], []);
});
