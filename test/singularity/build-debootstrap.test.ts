// Bootstrap: debootstrap against the Debian mirror this machine reaches (bookworm, minbase), with %post using
// apt over the host's network, as root (debootstrap) and as the unprivileged test user (mmdebstrap's unshare
// mode under --fakeroot). The downloaded .debs stay under BUILD_CACHE between runs, so only the first run of
// the suite on a machine downloads the base system.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { testUser } from '../helpers.js';
import { BUILD_CACHE, leftovers, scratchDir, sifObjects, singularity, writeFiles } from '../singbuild-kit.js';

if (process.geteuid?.() !== 0) {
  t.plan(0, 'debootstrap runs as root');
  process.exit(0);
}
t.setTimeout(20 * 60_000);

t.test('Bootstrap: debootstrap (OSVersion, MirrorURL, Include) with apt in %post', async t => {
  const dir = scratchDir(t);
  writeFiles(dir, {
    'debian.def': `Bootstrap: debootstrap
OSVersion: bookworm
MirrorURL: http://deb.debian.org/debian
Include: less

%post
apt-get update
apt-cache policy less > /less-policy.txt

%environment
export LC_ALL=C

%test
test -x /usr/bin/less
`,
  });
  const r = singularity(['build', 'debian.sif', 'debian.def'], { cwd: dir, timeoutMs: 15 * 60_000 });
  t.equal(r.code, 0, r.stderr.slice(-3000));
  const sif = path.join(dir, 'debian.sif');
  const part = sifObjects(sif).objects.find(o => o.partition?.partType === 2)!;
  const cat = (file: string) => spawnSync('unsquashfs', ['-offset', String(part.offset), '-cat', sif, file], { encoding: 'utf8' }).stdout;
  t.match(cat('usr/lib/os-release'), /VERSION_CODENAME=bookworm/, 'a bookworm root filesystem');
  t.match(cat('var/lib/dpkg/status'), /Package: less\nStatus: install ok installed/, 'Include: packages are installed');
  t.match(cat('less-policy.txt'), /deb\.debian\.org/, '%post reached the mirror through the host network (apt-get update)');
  t.match(cat('.singularity.d/env/90-environment.sh'), /export LC_ALL=C/);
  t.ok(
    fs.readdirSync(path.join(BUILD_CACHE, 'debootstrap')).some(d => d.startsWith('bookworm-')),
    'downloaded packages are cached for the next build',
  );
  t.same(leftovers(sif), ['debian.sif']);
});

t.test('Bootstrap: debootstrap as an unprivileged user with --fakeroot (mmdebstrap unshare mode)', async t => {
  const user = testUser();
  const dir = scratchDir(t, user);
  const cache = `${BUILD_CACHE}-${user.name}`;
  fs.mkdirSync(cache, { recursive: true });
  fs.chownSync(cache, user.uid, user.gid);
  writeFiles(dir, {
    'debian.def': `Bootstrap: debootstrap
OSVersion: bookworm
Include: less

%post
chown _apt /etc/motd

%test
test -x /usr/bin/less
`,
  });
  fs.chownSync(path.join(dir, 'debian.def'), user.uid, user.gid);
  const r = singularity(['build', '--fakeroot', 'debian.sif', 'debian.def'], {
    cwd: dir,
    user: user.name,
    env: { SINGULARITY_CACHEDIR: cache },
    timeoutMs: 15 * 60_000,
  });
  t.equal(r.code, 0, r.stderr.slice(-3000));
  const sif = path.join(dir, 'debian.sif');
  t.equal(fs.statSync(sif).uid, user.uid);
  const part = sifObjects(sif).objects.find(o => o.partition?.partType === 2)!;
  const listing = spawnSync('unsquashfs', ['-lln', '-offset', String(part.offset), sif], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  }).stdout;
  t.match(listing, /\s0\/0\s.*squashfs-root\/usr\/bin\/less\n/, 'packages are root-owned in the image');
  t.match(listing, /\s42\/0\s.*squashfs-root\/etc\/motd\n/, "%post's chown to _apt (uid 42) is kept");
  t.ok(
    fs.readdirSync(path.join(cache, 'mmdebstrap')).some(d => d.startsWith('bookworm-')),
    'packages are cached for the next build',
  );
  t.same(leftovers(sif), ['debian.sif']);
});

t.test('Bootstrap: debootstrap without OSVersion names the Bootstrap line', async t => {
  const dir = scratchDir(t);
  writeFiles(dir, { 'bad.def': '# no release\nBootstrap: debootstrap\nMirrorURL: http://deb.debian.org/debian\n' });
  const r = singularity(['build', '-s', 'sb', 'bad.def'], { cwd: dir });
  t.equal(r.code, 255);
  t.match(r.stderr, /bad\.def line 2: Bootstrap: debootstrap needs an OSVersion: header/);
  t.same(leftovers(path.join(dir, 'sb')), []);
});
