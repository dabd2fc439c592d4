// The site configuration, /etc/tsrt-singularity/singularity.conf: where it is (buildcfg), who may use another one
// (root only), and each directive honoured, seen from inside the container run by the unprivileged test user.
// Each configuration is shown at /etc/tsrt-singularity in the run's private mount namespace only (siteConfigSetup),
// as an administrator would have installed it.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { tmpdir } from '../helpers.js';
import { kit, sandbox, SINGULARITY, sif, siteConfigSetup, squashfs, type SingOptions } from '../singularity-run-kit.js';

t.setTimeout(10 * 60_000);
const k = kit(t);
const image = sandbox(k, { files: { 'opt/in-image.txt': 'image\n' } });
const sifImage = sif(k, image);
const CONF_FILE = '/etc/tsrt-singularity/singularity.conf';

/** Runs tsrt-singularity as the user with `conf` as the site's singularity.conf (and more root set-up). */
function withSite(tt: { teardown(fn: () => void): void }, conf: string, args: string[], o: SingOptions & { setup?: string } = {}) {
  const site = siteConfigSetup(tt, { 'singularity.conf': conf });
  return k.sing(args, { ...o, hostSetup: [site.hostSetup, o.setup ?? ''].join('\n') });
}

/** A root-owned directory holding `files`, removed at the end of the test. */
function rootDir(tt: { teardown(fn: () => void): void }, files: Record<string, string>, mode = 0o755): string {
  const dir = tmpdir('tsrt-sitedata-');
  tt.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  fs.chmodSync(dir, mode);
  return dir;
}

const warnings = (stderr: string): string[] => stderr.split('\n').filter(l => l.startsWith('WARNING: '));

t.test('buildcfg names the site configuration file; without it every directive has its default', async t => {
  const all = k.sing(['buildcfg']);
  t.equal(all.code, 0, all.stderr);
  t.match(all.stdout, `SINGULARITY_CONFDIR=/etc/tsrt-singularity\nSINGULARITY_CONF_FILE=${CONF_FILE}\n`);
  t.equal(k.sing(['buildcfg', 'SINGULARITY_CONF_FILE']).stdout, `${CONF_FILE}\n`);
  t.match(k.sing(['help', 'buildcfg']).stdout, /only root may use\n  another one/);
  const unknown = k.sing(['buildcfg', 'NOPE']);
  t.equal(unknown.code, 255);
  t.match(unknown.stderr, /unknown build configuration variable "NOPE"/);
});

t.test('only root may use another configuration: --config and $TSRT_SINGULARITY_CONFDIR are refused or ignored for a user', async t => {
  const mine = path.join(k.dir('singrun-myconf-'), 'singularity.conf');
  fs.writeFileSync(mine, 'user bind control = yes\n');
  const refused = k.sing(['--config', mine, 'exec', image, 'true']);
  t.equal(refused.code, 255);
  t.equal(refused.stderr, `FATAL:   --config is only for root: the site configuration is ${CONF_FILE}\n`);
  t.equal(
    k.sing(['buildcfg', 'SINGULARITY_CONF_FILE'], { env: { TSRT_SINGULARITY_CONFDIR: path.dirname(mine) } }).stdout,
    `${CONF_FILE}\n`,
    'the variable is ignored',
  );
  // Root of a user namespace the user made is not root.
  const userns = spawnSync(
    'runuser',
    ['-u', k.user.name, '--', 'unshare', '-r', SINGULARITY, '--config', mine, 'buildcfg', 'SINGULARITY_CONF_FILE'],
    { encoding: 'utf8' },
  );
  t.equal(userns.status, 255);
  t.match(userns.stderr, /--config is only for root/);
  const asRoot = spawnSync(SINGULARITY, ['--config', '/srv/site.conf', 'buildcfg', 'SINGULARITY_CONF_FILE'], { encoding: 'utf8' });
  t.equal(asRoot.stdout, '/srv/site.conf\n', 'root may');
});

t.test('a configuration the site cannot vouch for stops everything: not root-owned, or a bad value (file and line named)', async t => {
  const site = siteConfigSetup(t, { 'singularity.conf': 'mount home = no\n' });
  fs.chownSync(path.join(site.dir, 'singularity.conf'), k.user.uid, k.user.gid);
  const owned = k.sing(['exec', image, 'true'], { hostSetup: site.hostSetup });
  t.equal(owned.code, 255);
  t.match(owned.stderr, `FATAL:   the site configuration ${CONF_FILE} must be a regular file owned by root and writable only by root`);
  const bad = withSite(t, '# comment\nmount home = maybe\n', ['exec', image, 'true']);
  t.equal(bad.code, 255);
  t.match(bad.stderr, `FATAL:   ${CONF_FILE} line 2: "mount home" must be yes, no, got "maybe"`);
});

t.test("bind path: the site's binds appear in every container (only /etc/hosts and /etc/localtime of them with --contain)", async t => {
  const data = rootDir(t, { 'f.txt': 'site data\n' });
  const conf = `bind path = ${data}:/site-data\nbind path = /etc/hosts\nbind path = /nonexistent-tsrt-site\n`;
  const r = withSite(t, conf, [
    'exec',
    image,
    'sh',
    '-c',
    'cat /site-data/f.txt; test -e /etc/hosts && echo hosts; test -e /etc/localtime || echo no-localtime',
  ]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'site data\nhosts\nno-localtime\n', 'a file without the default list binds only what it names');
  t.same(warnings(r.stderr), [`WARNING: Skipping bind path /nonexistent-tsrt-site: it does not exist on this host (${CONF_FILE})`]);
  const contained = withSite(t, conf, [
    'exec',
    '--contain',
    image,
    'sh',
    '-c',
    'test -e /site-data/f.txt || echo no-site-data; test -e /etc/hosts && echo hosts',
  ]);
  t.equal(contained.stdout, 'no-site-data\nhosts\n', contained.stderr);
  const none = k.sing(['exec', image, 'sh', '-c', 'test -e /etc/localtime && echo localtime']);
  t.equal(
    none.stdout,
    fs.existsSync('/etc/localtime') ? 'localtime\n' : '',
    'with no site file at all, the default list (/etc/localtime, /etc/hosts)',
  );
});

t.test("mount home = no: no home unless --home names one; mount tmp = no: the image's own /tmp", async t => {
  const marker = path.join('/tmp', `tsrt-site-marker-${process.pid}`);
  fs.writeFileSync(marker, 'host tmp\n');
  t.teardown(() => fs.rmSync(marker, { force: true }));
  const conf = 'mount home = no\nmount tmp = no\n';
  const r = withSite(
    t,
    conf,
    ['exec', image, 'sh', '-c', `test -d "$HOME" && echo home || echo no-home; test -e ${marker} && echo host-tmp || echo image-tmp`],
    { cwd: '/' },
  );
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'no-home\nimage-tmp\n');
  const explicit = withSite(t, conf, ['exec', '--home', k.home, image, 'sh', '-c', 'test -d "$HOME" && echo home'], { cwd: '/' });
  t.equal(explicit.stdout, 'home\n', explicit.stderr);
  const dflt = k.sing(['exec', image, 'sh', '-c', `test -e ${marker} && echo host-tmp`], { cwd: '/' });
  t.equal(dflt.stdout, 'host-tmp\n', "by default /tmp is the host's");
});

t.test("mount hostfs = yes: the host's file systems mounted on / appear at the same path", async t => {
  const point = `/mnt/tsrt-hostfs-${process.pid}`;
  fs.mkdirSync(point, { recursive: true });
  t.teardown(() => fs.rmSync(point, { recursive: true, force: true }));
  // A file system mounted on the host (in the run's private namespace), holding a marker.
  const setup = `mount -t tmpfs -o mode=755 tsrt-hostfs ${point}\necho on-the-host > ${point}/marker`;
  const on = withSite(t, 'mount hostfs = yes\n', ['exec', image, 'cat', `${point}/marker`], { setup });
  t.equal(on.code, 0, on.stderr);
  t.equal(on.stdout, 'on-the-host\n');
  const off = withSite(t, 'mount hostfs = no\n', ['exec', image, 'sh', '-c', `test -e ${point}/marker || echo absent`], { setup });
  t.equal(off.stdout, 'absent\n', off.stderr);
  const noMount = withSite(
    t,
    'mount hostfs = yes\n',
    ['exec', '--no-mount', 'hostfs', image, 'sh', '-c', `test -e ${point}/marker || echo absent`],
    { setup },
  );
  t.equal(noMount.stdout, 'absent\n', '--no-mount hostfs');
});

t.test("user bind control = no: the user's binds, workdir, cwd and libraries are dropped (said), the site's stay", async t => {
  const data = rootDir(t, { 'f.txt': 'site data\n' });
  // Somewhere neither /tmp nor the home (both bound) shows.
  const mine = `/mnt/tsrt-mine-${process.pid}`;
  fs.mkdirSync(mine);
  t.teardown(() => fs.rmSync(mine, { recursive: true, force: true }));
  fs.writeFileSync(path.join(mine, 'f.txt'), 'mine\n');
  fs.chownSync(mine, k.user.uid, k.user.gid);
  const conf = `user bind control = no\nbind path = ${data}:/site-data\n`;
  const workdir = k.dir('singrun-wd-');
  const r = withSite(
    t,
    conf,
    [
      '-v',
      'exec',
      '-B',
      `${mine}:/mine`,
      '-W',
      workdir,
      '-S',
      '/scratch',
      '--nv',
      image,
      'sh',
      '-c',
      'test -e /mine/f.txt || echo no-user-bind; test -e /scratch || echo no-scratch; cat /site-data/f.txt; pwd',
    ],
    { cwd: mine },
  );
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `no-user-bind\nno-scratch\nsite data\n${k.home}\n`, 'the cwd is not bound: the shell starts in the home');
  t.same(warnings(r.stderr), [
    `WARNING: Ignoring ${mine} bind mount: user bind control is disabled by the system administrator`,
    `WARNING: Ignoring --workdir ${workdir}: user bind control is disabled by the system administrator`,
    'WARNING: Not mounting current directory: user bind control is disabled by the system administrator',
    'WARNING: Ignoring libraries bind request: user bind control is disabled by the system administrator',
  ]);
  t.match(r.stderr, /INFO: +Not mounting scratch: user bind control is disabled by the system administrator/);
  const home = withSite(t, conf, ['exec', '--home', mine, image, 'true']);
  t.equal(home.code, 255);
  t.match(home.stderr, `FATAL:   not mounting the requested home ${mine}: user bind control is disabled by the system administrator`);
  const env = withSite(t, conf, ['exec', image, 'sh', '-c', 'test -e /mine || echo ignored'], {
    env: { SINGULARITY_BIND: `${mine}:/mine` },
  });
  t.equal(env.stdout, 'ignored\n', '$SINGULARITY_BIND too');
});

t.test('enable overlay = no: the image is the root, read-only; overlays are refused; mounts it has no place for are skipped', async t => {
  const conf = 'enable overlay = no\n';
  const r = withSite(t, conf, [
    'exec',
    '-B',
    `${k.home}:/root`,
    '-B',
    `${k.home}:/nowhere`,
    image,
    'sh',
    '-c',
    'cut -d" " -f5,9 /proc/self/mountinfo | grep -c "^/ overlay"; touch /x 2>/dev/null || echo read-only; test -d /root && echo root-bound; pwd',
  ]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '0\nread-only\nroot-bound\n/\n', 'no overlay, a read-only image, binds onto what exists, and / for a cwd it lacks');
  t.ok(
    warnings(r.stderr).includes(
      `WARNING: Skipping mount of ${k.home} on /nowhere: it does not exist in the image, and overlays are disabled (enable overlay = no in ${CONF_FILE})`,
    ),
    r.stderr,
  );
  for (const flag of [['--writable-tmpfs'], ['--overlay', k.dir('singrun-ov-')]]) {
    const refused = withSite(t, conf, ['exec', ...flag, image, 'true']);
    t.equal(refused.code, 255);
    t.match(refused.stderr, `FATAL:   ${flag[0]} needs an overlay, and the site disabled them (enable overlay = no in ${CONF_FILE})`);
  }
  t.equal(
    k.sing(['exec', image, 'sh', '-c', 'cut -d" " -f5,9 /proc/self/mountinfo | grep -c "^/ overlay"']).stdout,
    '1\n',
    'by default the root is an overlay',
  );
});

t.test('limit container paths: images outside the listed directories are refused (a directory, not a prefix)', async t => {
  const allowed = k.dir('singrun-allowed-');
  const inside = path.join(allowed, 'image.sif');
  fs.copyFileSync(sifImage, inside);
  fs.chownSync(inside, k.user.uid, k.user.gid);
  const conf = `limit container paths = /nonexistent-tsrt, ${allowed}\n`;
  const ok = withSite(t, conf, ['exec', inside, 'cat', '/opt/in-image.txt']);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.stdout, 'image\n');
  const outside = withSite(t, conf, ['exec', sifImage, 'true']);
  t.equal(outside.code, 255);
  t.match(outside.stderr, `FATAL:   ${sifImage} is not in an allowed configured path (limit container paths in ${CONF_FILE})`);
  const sibling = `${allowed}2`;
  fs.mkdirSync(sibling);
  t.teardown(() => fs.rmSync(sibling, { recursive: true, force: true }));
  fs.copyFileSync(sifImage, path.join(sibling, 'image.sif'));
  t.equal(withSite(t, conf, ['exec', path.join(sibling, 'image.sif'), 'true']).code, 255, `${allowed}2 is not below ${allowed}`);
  const link = path.join(allowed, 'link.sif');
  fs.symlinkSync(sifImage, link);
  t.match(withSite(t, conf, ['exec', link, 'true']).stderr, 'is not in an allowed configured path', 'a symlink counts where it points');
});

t.test('limit container owners / groups: only images owned by the listed users or groups run', async t => {
  const rootOwned = path.join(rootDir(t, {}), 'image.sif');
  fs.copyFileSync(sifImage, rootOwned);
  fs.chmodSync(rootOwned, 0o644);
  const owners = 'limit container owners = root\n';
  t.equal(withSite(t, owners, ['exec', rootOwned, 'true']).code, 0, 'a root-owned image runs');
  const mine = withSite(t, owners, ['exec', sifImage, 'true']);
  t.equal(mine.code, 255);
  t.match(mine.stderr, `FATAL:   ${sifImage} is not owned by required user(s) (limit container owners in ${CONF_FILE})`);
  const groups = withSite(t, 'limit container groups = root\n', ['exec', sifImage, 'true']);
  t.match(groups.stderr, 'is not owned by required group(s) (limit container groups');
  const unknown = withSite(t, 'limit container owners = tsrt-no-such-user\n', ['exec', rootOwned, 'true']);
  t.equal(unknown.code, 255);
  t.match(unknown.stderr, 'user "tsrt-no-such-user" of a "limit container" line does not exist');
});

t.test('allow container sif / dir / squashfs / extfs = no: images of that kind are refused before anything is mounted', async t => {
  const ext3 = path.join(k.dir('singrun-ext3-'), 'image.ext3');
  spawnSync('mkfs.ext3', ['-q', '-F', '-d', image, ext3, '16M']);
  fs.chownSync(ext3, k.user.uid, k.user.gid);
  const cases: [string, string, string][] = [
    ['sif', sifImage, 'unencrypted SIF'],
    ['dir', image, 'sandbox'],
    ['squashfs', squashfs(k, image), 'squashFS'],
    ['extfs', ext3, 'extFS'],
  ];
  for (const [type, img, words] of cases) {
    const refused = withSite(t, `allow container ${type} = no\n`, ['exec', img, 'true']);
    t.equal(refused.code, 255, type);
    t.match(
      refused.stderr,
      `FATAL:   configuration disallows users from running ${words} containers (allow container ${type} = no in ${CONF_FILE})`,
    );
  }
  const other = withSite(t, 'allow container dir = no\n', ['exec', sifImage, 'cat', '/opt/in-image.txt']);
  t.equal(other.stdout, 'image\n', 'other kinds still run');
});

t.test("memory fs type = ramfs: the container's memory file systems are ramfs", async t => {
  const r = withSite(t, 'memory fs type = ramfs\n', [
    'exec',
    '--contain',
    '--writable-tmpfs',
    image,
    'sh',
    '-c',
    'grep -E " /dev | /dev/shm " /proc/self/mountinfo | cut -d" " -f5,9; touch /new && echo writable',
  ]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '/dev ramfs\n/dev/shm ramfs\nwritable\n');
  const dflt = k.sing(['exec', '--contain', image, 'sh', '-c', 'grep -E " /dev " /proc/self/mountinfo | cut -d" " -f9']);
  t.equal(dflt.stdout, 'tmpfs\n');
});

t.test('nothing in the site file lets the user do more than the kernel lets them', async t => {
  const secret = rootDir(t, { 'f.txt': 'root only\n' }, 0o700);
  const conf = [
    'allow setuid = yes',
    'root default capabilities = full',
    'allow net users = tsrtuser',
    'allow net networks = bridge',
    `bind path = ${secret}:/secret`,
    'user bind control = yes',
  ].join('\n');
  const r = withSite(t, conf, [
    'exec',
    image,
    'sh',
    '-c',
    'cat /secret/f.txt 2>&1; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status; id -u',
  ]);
  t.equal(r.code, 0, r.stderr);
  t.equal(
    r.stdout,
    `cat: can't open '/secret/f.txt': Permission denied\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n${k.user.uid}\n`,
    "a root-only directory the site binds stays unreadable; no capabilities; no privilege gain; the user's own uid",
  );
});
