// `singularity build image.sif image.def` as a plain user, without --fakeroot, as Apptainer >= 1.1 does it (and
// as spython's build(sudo=False) calls it): a fakeroot build with the user's /etc/subuid and /etc/subgid ranges
// when present, otherwise in a root-mapped namespace where the user's id is the only one, with one line saying
// which. The images are then run by the same user, and what %post did is checked from inside.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { tmpdir } from '../helpers.js';
import { squashfsListing } from '../singbuild-kit.js';
import { kit } from '../singularity-run-kit.js';

t.setTimeout(10 * 60_000);
const k = kit(t);

/** A scratch directory of the user's holding image.def. */
function defDir(def: string): string {
  const dir = k.dir('singbuild-user-');
  fs.writeFileSync(path.join(dir, 'image.def'), def);
  fs.chownSync(path.join(dir, 'image.def'), k.user.uid, k.user.gid);
  return dir;
}

/** Root's script for the run's private mount namespace: /etc/subuid and /etc/subgid without the test user. */
function withoutSubids(tt: { teardown(fn: () => void): void }): string {
  const dir = tmpdir('tsrt-nosubid-');
  tt.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const f of ['subuid', 'subgid']) {
    const kept = fs
      .readFileSync(`/etc/${f}`, 'utf8')
      .split('\n')
      .filter(l => l !== '' && !l.startsWith(`${k.user.name}:`) && !l.startsWith(`${k.user.uid}:`));
    fs.writeFileSync(path.join(dir, f), kept.map(l => `${l}\n`).join(''));
  }
  return `mount --bind ${dir}/subuid /etc/subuid\nmount --bind ${dir}/subgid /etc/subgid`;
}

const POST = `Bootstrap: busybox
%post
id -u > /post-uid
touch /theirs && chown 1234:1234 /theirs
%runscript
echo "post ran as $(cat /post-uid); I am $(id -u)"
`;

t.test('with /etc/subuid ranges: %post is root, other ids come from the ranges, one line says so', async t => {
  const dir = defDir(POST);
  const built = k.sing(['build', 'image.sif', 'image.def'], { cwd: dir });
  t.equal(built.code, 0, built.stderr);
  t.match(
    built.stderr,
    /INFO: +Building as root in a user namespace, with your \/etc\/subuid and \/etc\/subgid ranges behind the other ids \(fakeroot\)\n/,
  );
  t.notMatch(built.stderr, /root-mapped/);
  const run = k.sing(['run', 'image.sif'], { cwd: dir });
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout, `post ran as 0; I am ${k.user.uid}\n`, 'seen from inside the image, run by the user');
  t.match(squashfsListing(path.join(dir, 'image.sif')), /\s1234\/1234\s.*squashfs-root\/theirs\n/, '/theirs is 1234-owned in the image');
});

t.test('without /etc/subuid ranges: a root-mapped namespace, and one line says so', async t => {
  const dir = defDir('Bootstrap: busybox\n%post\nid -u > /post-uid\ntouch /mine\n%runscript\necho "post ran as $(cat /post-uid)"\n');
  const hostSetup = withoutSubids(t);
  const built = k.sing(['build', 'image.sif', 'image.def'], { cwd: dir, hostSetup });
  t.equal(built.code, 0, built.stderr);
  t.match(
    built.stderr,
    /INFO: +User not listed in \/etc\/subuid and \/etc\/subgid: building in a root-mapped namespace, where your own id is the only one/,
  );
  const run = k.sing(['run', 'image.sif'], { cwd: dir });
  t.equal(run.stdout, 'post ran as 0\n', run.stderr);
  t.match(squashfsListing(path.join(dir, 'image.sif')), /\s0\/0\s.*squashfs-root\/mine\n/, '/mine is root-owned in the image');
  const chown = defDir(POST);
  const failed = k.sing(['build', 'image.sif', 'image.def'], { cwd: chown, hostSetup });
  t.equal(failed.code, 255, 'handing a file to another id cannot work with one id mapped');
  t.match(failed.stderr, /image\.def line 2: %post failed with exit status 1/);
  t.same(fs.readdirSync(chown), ['image.def'], 'nothing left behind');
});

t.test('--ignore-subuid: the root-mapped namespace even with ranges', async t => {
  const dir = defDir('Bootstrap: busybox\n%post\nid -u > /post-uid\n%runscript\ncat /post-uid\n');
  const built = k.sing(['build', '--ignore-subuid', 'image.sif', 'image.def'], { cwd: dir });
  t.equal(built.code, 0, built.stderr);
  t.match(built.stderr, /INFO: +--ignore-subuid given: building in a root-mapped namespace/);
  t.equal(k.sing(['run', 'image.sif'], { cwd: dir }).stdout, '0\n');
});

t.test('--fakeroot is accepted and changes nothing for a user (it is implied)', async t => {
  const dir = defDir('Bootstrap: busybox\n%post\nid -u > /post-uid\n%runscript\ncat /post-uid\n');
  const built = k.sing(['build', '--fakeroot', '--sandbox', 'sb', 'image.def'], { cwd: dir });
  t.equal(built.code, 0, built.stderr);
  t.match(built.stderr, /with your \/etc\/subuid and \/etc\/subgid ranges/);
  t.equal(k.sing(['run', 'sb'], { cwd: dir }).stdout, '0\n');
});
