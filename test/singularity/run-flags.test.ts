// The action flags of exec/run/shell (as SingularityCE 4 and Apptainer take them), one test per flag, each asserted from inside a
// container run by the unprivileged test user; bad values give a clear FATAL line and a non-zero exit.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kit, sandbox, siteConfigSetup } from '../singularity-run-kit.js';

const k = kit(t);
const image = sandbox(k, { runscript: 'echo run' });
const hostUts = fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();

/** A directory owned by the test user holding one file. */
function dataDir(content: string): string {
  const d = k.dir('singrun-data-');
  fs.writeFileSync(path.join(d, 'file'), content);
  fs.chownSync(path.join(d, 'file'), k.user.uid, k.user.gid);
  return d;
}

t.test('-B/--bind: src, src:dst, :ro, comma lists and repeats', async t => {
  const a = dataDir('A');
  const b = dataDir('B');
  const c = dataDir('C');
  const r = k.sing([
    'exec',
    '-B',
    `${a},${b}:/mnt/b:ro`,
    '--bind',
    `${c}:/mnt/c:rw`,
    image,
    'sh',
    '-c',
    `cat ${a}/file /mnt/b/file /mnt/c/file; echo; touch /mnt/b/x 2>&1 || echo b-readonly; touch /mnt/c/new && echo c-writable; echo "$SINGULARITY_BIND"`,
  ]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^ABC\n.*Read-only file system\nb-readonly\nc-writable\n/);
  t.match(r.stdout, new RegExp(`${b}:/mnt/b:ro`));
  t.ok(fs.existsSync(path.join(c, 'new')), 'the rw bind wrote to the host directory');
  const env = k.sing(['exec', image, 'cat', '/mnt/env/file'], { env: { SINGULARITY_BIND: `${a}:/mnt/env` } });
  t.equal(env.stdout, 'A', '$SINGULARITY_BIND binds too');
  const missing = k.sing(['exec', '-B', '/no/such/dir:/mnt', image, 'true']);
  t.equal(missing.code, 255);
  t.match(missing.stderr, /FATAL: +mount \/no\/such\/dir->\/mnt error: .*doesn't exist/);
  const bad = k.sing(['exec', '-B', `${a}:/mnt:rx`, image, 'true']);
  t.equal(bad.code, 255);
  t.match(bad.stderr, /^FATAL: +invalid bind option "rx"/m, 'a bad bind is FATAL, not a usage error');
  const relative = k.sing(['exec', '-B', `${a}:mnt`, image, 'true']);
  t.equal(relative.code, 255);
  t.match(relative.stderr, /^FATAL: +invalid bind specification ".*:mnt": source and destination must be absolute paths/m);
});

t.test('--mount binds with docker syntax', async t => {
  const a = dataDir('M');
  const r = k.sing([
    'exec',
    '--mount',
    `type=bind,source=${a},destination=/mnt/m,ro`,
    image,
    'sh',
    '-c',
    'cat /mnt/m/file; touch /mnt/m/y 2>/dev/null || echo ro',
  ]);
  t.equal(r.stdout, 'Mro\n', r.stderr);
  const bad = k.sing(['exec', '--mount', 'type=tmpfs,destination=/x', image, 'true']);
  t.equal(bad.code, 255);
  t.match(bad.stderr, /only type=bind/);
});

t.test('-c/--contain: fresh /tmp, /var/tmp and home, a minimal /dev, cwd in home', async t => {
  const stamp = `singrun-contain-${process.pid}-${randomBytes(6).toString('hex')}`;
  // R9: a random name, created exclusively (never through something another user put there first).
  fs.writeFileSync(`/tmp/${stamp}`, 'x', { flag: 'wx' });
  t.teardown(() => fs.rmSync(`/tmp/${stamp}`, { force: true }));
  const r = k.sing([
    'exec',
    '-c',
    image,
    'sh',
    '-c',
    `ls -A /tmp /var/tmp "$HOME" | grep -c . ; pwd; ls /dev | tr '\\n' ' '; test -e /tmp/${stamp} || echo no-host-tmp`,
  ]);
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  t.equal(lines[0], '3', 'three empty directories (only their headers are listed)');
  t.equal(lines[1], k.home);
  t.notMatch(lines[2], /\bvda\b|\bkmsg\b/, 'host block devices and kmsg are not there');
  t.match(lines[2], /null .*pts .*shm .*tty .*urandom/);
  t.match(r.stdout, /no-host-tmp/);
});

t.test('-C/--containall: contain plus PID and IPC namespaces and a clean environment', async t => {
  const r = k.sing(['exec', '-C', image, 'sh', '-c', 'echo $$; echo "${HOSTVAR:-unset} $LANG"; readlink /proc/self/ns/ipc'], {
    env: { HOSTVAR: 'leaks', TERM: 'xterm' },
  });
  t.equal(r.code, 0, r.stderr);
  const [pid, env, ipc] = r.stdout.trim().split('\n');
  t.equal(pid, '1', 'PID 1 in its own namespace');
  t.equal(env, 'unset C');
  t.not(ipc, fs.readlinkSync('/proc/self/ns/ipc'));
});

t.test('-e/--cleanenv keeps only TERM and the proxy variables, LANG=C', async t => {
  const r = k.sing(['exec', '-e', image, 'sh', '-c', 'echo "${HOSTVAR:-unset}|$TERM|$http_proxy|$LANG"'], {
    env: { HOSTVAR: 'x', TERM: 'vt100', http_proxy: 'http://p:3128' },
  });
  t.equal(r.stdout, 'unset|vt100|http://p:3128|C\n', r.stderr);
});

t.test('--env and --env-file set variables, --env winning over the file and the file over SINGULARITYENV_', async t => {
  const d = k.dir('singrun-envfile-');
  const file = path.join(d, 'vars.env');
  fs.writeFileSync(file, '# comment\nA=from-file\nB="quoted value"\nC=from-file\n');
  const r = k.sing(['exec', '--env-file', file, '--env', 'C=from-flag,D=d', image, 'sh', '-c', 'echo "$A|$B|$C|$D"'], {
    env: { SINGULARITYENV_A: 'prefixed' },
  });
  t.equal(r.stdout, 'from-file|quoted value|from-flag|d\n', r.stderr);
  const bad = k.sing(['exec', '--env', 'NOEQUALS', image, 'true']);
  t.equal(bad.code, 255);
  t.match(bad.stderr, /--env: "NOEQUALS" is not KEY=VALUE/);
  const missing = k.sing(['exec', '--env-file', '/no/such/file', image, 'true']);
  t.match(missing.stderr, /could not read --env-file \/no\/such\/file/);
});

t.test('-H/--home picks the home directory and where it appears', async t => {
  const h = dataDir('H');
  const r = k.sing([
    'exec',
    '-H',
    `${h}:/myhome`,
    image,
    'sh',
    '-c',
    'echo $HOME; cat /myhome/file; grep "^' + k.user.name + ':" /etc/passwd | cut -d: -f6',
  ]);
  t.equal(r.stdout, '/myhome\nH/myhome\n', r.stderr);
  const same = k.sing(['exec', '--home', h, image, 'sh', '-c', 'echo $HOME; cat file'], { cwd: h });
  t.equal(same.stdout, `${h}\nH`);
  const missing = k.sing(['exec', '-H', '/no/such/home', image, 'true']);
  t.equal(missing.code, 255);
  t.match(missing.stderr, /home directory \/no\/such\/home does not exist/);
});

t.test('--no-home leaves the host home out', async t => {
  fs.writeFileSync(path.join(k.home, '.singrun-home-marker'), 'x');
  t.teardown(() => fs.rmSync(path.join(k.home, '.singrun-home-marker'), { force: true }));
  const r = k.sing(['exec', '--no-home', image, 'sh', '-c', 'test -e "$HOME/.singrun-home-marker" && echo visible || echo hidden'], {
    cwd: '/',
  });
  t.equal(r.stdout, 'hidden\n', r.stderr);
});

t.test('--pwd sets the working directory; a missing one is made in the session layer, not the image', async t => {
  t.equal(k.sing(['exec', '--pwd', '/etc', image, 'pwd']).stdout, '/etc\n');
  const made = k.sing(['exec', '--pwd', '/not/in/image', image, 'pwd']);
  t.equal(made.stdout, '/not/in/image\n', made.stderr);
  t.notOk(fs.existsSync(path.join(image, 'not')));
});

t.test('-w/--writable writes into a sandbox', async t => {
  const w = sandbox(k);
  const r = k.sing(['exec', '-w', w, 'sh', '-c', 'echo persisted > /written']);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(path.join(w, 'written'), 'utf8'), 'persisted\n');
});

t.test('--writable-tmpfs allows writes that vanish with the container', async t => {
  const r = k.sing(['exec', '--writable-tmpfs', image, 'sh', '-c', 'echo temp > /scratchfile && cat /scratchfile']);
  t.equal(r.stdout, 'temp\n', r.stderr);
  t.notOk(fs.existsSync(path.join(image, 'scratchfile')));
  t.equal(k.sing(['exec', image, 'cat', '/scratchfile']).code, 1, 'the next run does not see it');
  // As in Singularity the layer is a tmpfs of `sessiondir max size` (64 MiB): it cannot fill the host's disk.
  const full = k.sing([
    'exec',
    '--writable-tmpfs',
    image,
    'sh',
    '-c',
    "dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null; echo $?; ls -l /big | awk '{print $5}'",
  ]);
  const [status, size] = full.stdout.trim().split('\n');
  t.not(status, '0', 'writing 100 MiB fails');
  t.ok(Number(size) <= 64 * 1024 * 1024 && Number(size) > 32 * 1024 * 1024, `it stops near 64 MiB (${size} bytes)`);
  t.equal(full.code, 0, full.stderr);
});

t.test('-o/--overlay keeps writes in a directory overlay across runs, and shares it read-only', async t => {
  const ov = k.dir('singrun-overlay-');
  const first = k.sing(['exec', '-o', ov, image, 'sh', '-c', 'echo kept > /etc/overlaid']);
  t.equal(first.code, 0, first.stderr);
  t.equal(fs.readFileSync(path.join(ov, 'upper/etc/overlaid'), 'utf8'), 'kept\n');
  t.notOk(fs.existsSync(path.join(image, 'etc/overlaid')), 'the image is untouched');
  t.equal(k.sing(['exec', '--overlay', ov, image, 'cat', '/etc/overlaid']).stdout, 'kept\n');
  const ro = k.sing(['exec', '-o', `${ov}:ro`, image, 'sh', '-c', 'cat /etc/overlaid; touch /etc/x 2>/dev/null || echo ro']);
  t.equal(ro.stdout, 'kept\nro\n', ro.stderr);
  const file = path.join(k.dir('singrun-ext3-'), 'overlay.img');
  fs.writeFileSync(file, Buffer.alloc(4096));
  const img = k.sing(['exec', '-o', file, image, 'true']);
  t.equal(img.code, 255);
  t.match(img.stderr, /FATAL: +overlay image .*overlay.img cannot be mounted here .*use a directory overlay/);
});

t.test('a writable overlay has one writer at a time; readers share it', async t => {
  const ov = k.dir('singrun-shared-');
  const img2 = sandbox(k, { startscript: 'true' });
  const started = k.sing(['instance', 'start', '-o', ov, img2, 'ovwriter']);
  t.equal(started.code, 0, started.stderr);
  const second = k.sing(['exec', '-o', ov, image, 'true']);
  t.equal(second.code, 255);
  t.match(second.stderr, /FATAL: +overlay .* is in use by another writer .*add :ro to share it read-only/);
  t.equal(k.sing(['exec', '-o', `${ov}:ro`, image, 'true']).code, 0, 'a reader is let in');
  t.equal(k.sing(['instance', 'stop', 'ovwriter']).code, 0);
  t.equal(k.sing(['exec', '-o', ov, image, 'true']).code, 0, 'the next writer gets it once the first is gone');
  t.notOk(fs.existsSync(path.join(ov, '.tsrt-writer.lock')), 'the lock is released');
});

t.test('-p/--pid gives a PID namespace with a fresh /proc', async t => {
  const r = k.sing(['exec', '-p', image, 'sh', '-c', 'echo $$; ls /proc | grep -c "^[0-9]"']);
  t.equal(r.code, 0, r.stderr);
  const [pid, count] = r.stdout.trim().split('\n');
  t.equal(pid, '1');
  t.ok(Number(count) <= 3, `only the container's processes are listed (${count})`);
});

t.test('-i/--ipc gives an IPC namespace', async t => {
  const r = k.sing(['exec', '-i', image, 'readlink', '/proc/self/ns/ipc']);
  t.equal(r.code, 0, r.stderr);
  t.not(r.stdout.trim(), fs.readlinkSync('/proc/self/ns/ipc'));
  t.equal(
    k.sing(['exec', image, 'readlink', '/proc/self/ns/ipc']).stdout.trim(),
    fs.readlinkSync('/proc/self/ns/ipc'),
    'shared by default',
  );
});

t.test('--uts and --hostname give a UTS namespace', async t => {
  t.equal(k.sing(['exec', '--hostname', 'singbox', image, 'hostname']).stdout, 'singbox\n');
  const uts = k.sing(['exec', '--uts', image, 'sh', '-c', 'readlink /proc/self/ns/uts; hostname']);
  const [ns, name] = uts.stdout.trim().split('\n');
  t.not(ns, fs.readlinkSync('/proc/self/ns/uts'));
  t.equal(name, hostUts, 'the namespace starts with the host name');
});

t.test('-f/--fakeroot makes the user root, with the subordinate id range mapped', async t => {
  const r = k.sing([
    'exec',
    '-f',
    image,
    'sh',
    '-c',
    'id -u; cat /proc/self/uid_map; echo $HOME; touch /root/.x && echo root-home-writable',
  ]);
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines[0], '0');
  t.equal(lines[1]!.trim().split(/\s+/).join(' '), `0 ${k.user.uid} 1`);
  const range = fs
    .readFileSync('/etc/subuid', 'utf8')
    .split('\n')
    .find(l => l.startsWith(`${k.user.name}:`))!
    .split(':');
  t.equal(lines[2]!.trim().split(/\s+/).join(' '), `1 ${range[1]} ${range[2]}`);
  t.equal(lines[3], '/root');
  t.equal(lines[4], 'root-home-writable', 'the host home is /root');
  fs.rmSync(path.join(k.home, '.x'), { force: true });
});

t.test('-u/--userns runs in a user namespace (always the case here)', async t => {
  const r = k.sing(['exec', '-u', image, 'readlink', '/proc/self/ns/user']);
  t.equal(r.code, 0, r.stderr);
  t.not(r.stdout.trim(), fs.readlinkSync('/proc/self/ns/user'));
});

t.test('--no-mount leaves out the named mounts', async t => {
  const r = k.sing(
    [
      'exec',
      '--no-mount',
      'tmp,/etc/hosts,home',
      image,
      'sh',
      '-c',
      `cat /etc/hosts 2>&1 | head -1; grep -c " /tmp " /proc/self/mountinfo; test -d "$HOME" && echo home || echo no-home`,
    ],
    { cwd: '/' },
  );
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /No such file or directory\n0\nno-home\n/);
});

t.test('-S/--scratch adds empty writable directories; --workdir backs them on the host', async t => {
  const r = k.sing([
    'exec',
    '-S',
    '/scratch1',
    '--scratch',
    '/scratch2',
    image,
    'sh',
    '-c',
    'find /scratch1 /scratch2 -mindepth 1 | wc -l; echo x > /scratch1/f && echo writable',
  ]);
  t.equal(r.stdout, '0\nwritable\n', r.stderr);
  const wd = k.dir('singrun-workdir-');
  const w = k.sing([
    'exec',
    '-c',
    '-W',
    wd,
    '-S',
    '/scratch',
    image,
    'sh',
    '-c',
    'echo s > /scratch/s; echo t > /tmp/t; echo h > "$HOME/h"',
  ]);
  t.equal(w.code, 0, w.stderr);
  t.equal(fs.readFileSync(path.join(wd, 'scratch/0/s'), 'utf8'), 's\n');
  t.equal(fs.readFileSync(path.join(wd, 'tmp/t'), 'utf8'), 't\n');
  t.equal(fs.readFileSync(path.join(wd, 'home/h'), 'utf8'), 'h\n');
  const rel = k.sing(['exec', '-S', 'relative', image, 'true']);
  t.equal(rel.code, 255);
  t.match(rel.stderr, /--scratch relative: must be an absolute path/);
});

t.test('--nv and --rocm bind the host driver libraries and programs found through ldconfig', async t => {
  // A fake driver tree: libraries, an ldconfig that reports them, and driver programs on PATH.
  const tree = k.dir('singrun-gpu-');
  const lib = path.join(tree, 'lib');
  const bin = path.join(tree, 'bin');
  fs.mkdirSync(lib);
  fs.mkdirSync(bin);
  for (const name of ['libcuda.so.1', 'libnvidia-ml.so.1', 'libamdhip64.so.5', 'libunrelated.so.1'])
    fs.writeFileSync(path.join(lib, name), `fake ${name}\n`);
  for (const name of ['nvidia-smi', 'rocm-smi']) fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho fake ${name}\n`, { mode: 0o755 });
  const entries = ['libcuda.so.1', 'libnvidia-ml.so.1', 'libamdhip64.so.5', 'libunrelated.so.1']
    .map(n => `\\t${n} (libc6,x86-64) => ${lib}/${n}`)
    .join('\\n');
  fs.writeFileSync(path.join(tree, 'ldconfig'), `#!/bin/sh\nprintf '4 libs found in cache\\n${entries}\\n'\n`, { mode: 0o755 });
  spawnChown(tree);
  // The site's singularity.conf names the fake ldconfig (only the site's configuration can).
  const site = siteConfigSetup(t, { 'singularity.conf': `ldconfig path = ${tree}/ldconfig\n` });
  const env = { PATH: `${bin}:/usr/bin:/bin` };
  const nv = k.sing(
    [
      'exec',
      '--nv',
      image,
      'sh',
      '-c',
      'ls /.singularity.d/libs; cat /.singularity.d/libs/libcuda.so.1; echo $LD_LIBRARY_PATH; /usr/bin/nvidia-smi',
    ],
    { env, hostSetup: site.hostSetup },
  );
  t.equal(nv.code, 0, nv.stderr);
  t.equal(nv.stdout, `libcuda.so.1\nlibnvidia-ml.so.1\nfake libcuda.so.1\n/.singularity.d/libs\nfake nvidia-smi\n`);
  const rocm = k.sing(['exec', '--rocm', image, 'sh', '-c', 'ls /.singularity.d/libs; /usr/bin/rocm-smi'], {
    env,
    hostSetup: site.hostSetup,
  });
  t.equal(rocm.stdout, 'libamdhip64.so.5\nfake rocm-smi\n', rocm.stderr);
  const noDriver = siteConfigSetup(t, { 'nvliblist.conf': '# nothing of this exists\nlibsingrun-absent.so\nsingrun-absent-smi\n' });
  const none = k.sing(['exec', '--nv', image, 'true'], { env: { PATH: '/usr/bin:/bin' }, hostSetup: noDriver.hostSetup });
  t.equal(none.code, 0);
  t.match(none.stderr, /WARNING: could not find any NVIDIA driver on this host/);
});

function spawnChown(dir: string): void {
  for (const e of fs.readdirSync(dir, { recursive: true }) as string[]) fs.chownSync(path.join(dir, e), k.user.uid, k.user.gid);
}

t.test("an unknown flag is a usage error, reported as Singularity reports one (status 1, not FATAL's 255)", async t => {
  const r = k.sing(['exec', '--no-such-flag', image, 'true']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^Error for command "exec": unknown flag: --no-such-flag\n\nUsage:\n  singularity exec /);
  t.match(r.stderr, /\nRun 'singularity --help' for more detailed usage information\.\n$/);
  const missing = k.sing(['run']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^Error for command "run": requires at least 1 arg\(s\), only received 0/);
  const shellOnly = k.sing(['exec', '-s', '/bin/ash', image, 'true']);
  t.equal(shellOnly.code, 1);
  t.match(shellOnly.stderr, /only the shell command takes it/);
});
