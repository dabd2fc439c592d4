// Unprivileged builds (the test user, through runuser): --fakeroot makes the builder root in the image, with
// the user's /etc/subuid range behind uids 1.., so %post can hand files to other users. Without --fakeroot the
// build is the same (it is implied for users, see build-unprivileged.test.ts).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { testUser } from '../helpers.js';
import { leftovers, scratchDir, singularity, squashfsListing, writeFiles } from '../singbuild-kit.js';

if (process.geteuid?.() !== 0) {
  t.plan(0, 'needs root to create the unprivileged test user and switch to it');
  process.exit(0);
}
t.setTimeout(10 * 60_000);

const user = testUser();
const subuidStart = Number(
  fs
    .readFileSync('/etc/subuid', 'utf8')
    .split('\n')
    .find(l => l.startsWith(`${user.name}:`))!
    .split(':')[1],
);

function userBuild(tt: { teardown(fn: () => void): void }, def: string, args: string[]) {
  const dir = scratchDir(tt, user);
  writeFiles(dir, { 'image.def': def });
  fs.chownSync(path.join(dir, 'image.def'), user.uid, user.gid);
  const r = singularity(['build', ...args, 'image.def'], {
    cwd: dir,
    user: user.name,
    env: { SINGULARITY_CACHEDIR: path.join(dir, 'cache') },
  });
  return { dir, r };
}

t.test('--fakeroot: %post runs as root in the image; other ids come from the subuid range', async t => {
  const def = `Bootstrap: busybox
%post
id -u > /uid.txt
touch /owned-by-1234 && chown 1234:1234 /owned-by-1234
`;
  const { dir, r } = userBuild(t, def, ['--fakeroot', '--sandbox', 'sb']);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(path.join(dir, 'sb/uid.txt'), 'utf8').trim(), '0', 'uid 0 inside');
  t.equal(fs.statSync(path.join(dir, 'sb/uid.txt')).uid, user.uid, "root's files belong to the user on the host");
  t.equal(fs.statSync(path.join(dir, 'sb/owned-by-1234')).uid, subuidStart + 1233, 'uid 1234 is subuid start + 1233 on the host');
  t.same(leftovers(path.join(dir, 'sb')), ['sb'], 'no scratch left (the user could remove what the build made)');
});

t.test('--fakeroot SIF: ownership inside the image is as %post set it', async t => {
  const def = 'Bootstrap: busybox\n%post\ntouch /mine /theirs && chown 1234:1234 /theirs\n%test\ntest "$(id -u)" = 0\n';
  const { dir, r } = userBuild(t, def, ['--fakeroot', 'image.sif']);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.statSync(path.join(dir, 'image.sif')).uid, user.uid, 'the SIF belongs to the user');
  const listing = squashfsListing(path.join(dir, 'image.sif'));
  t.match(listing, /\s0\/0\s.*squashfs-root\/mine\n/, '/mine is root-owned in the image');
  t.match(listing, /\s1234\/1234\s.*squashfs-root\/theirs\n/, '/theirs is 1234-owned in the image');
  t.same(leftovers(path.join(dir, 'image.sif')), ['image.sif']);
});

t.test('--fakeroot: a failing %post leaves nothing behind, even files of subordinate ids', async t => {
  const { dir, r } = userBuild(t, 'Bootstrap: busybox\n%post\nmkdir /d && touch /d/f && chown -R 1234 /d\nexit 4\n', [
    '--fakeroot',
    'image.sif',
  ]);
  t.equal(r.code, 255);
  t.match(r.stderr, /image\.def line 2: %post failed with exit status 4/);
  t.same(leftovers(path.join(dir, 'image.sif')), []);
});

t.test('without --fakeroot: %post runs as root all the same (--fakeroot is implied for users)', async t => {
  const { dir, r } = userBuild(t, 'Bootstrap: busybox\n\n%post\nid -u > /uid.txt\n', ['--sandbox', 'sb']);
  t.equal(r.code, 0, r.stderr);
  t.equal(fs.readFileSync(path.join(dir, 'sb/uid.txt'), 'utf8').trim(), '0');
  t.same(leftovers(path.join(dir, 'sb')), ['sb']);
});

t.test('without --fakeroot: files, metadata, %test build as before', async t => {
  const def = 'Bootstrap: busybox\n%labels\nBuiltBy user\n%runscript\necho hi\n%test\ntest -x /bin/sh\n';
  const { dir, r } = userBuild(t, def, ['image.sif']);
  t.equal(r.code, 0, r.stderr);
  t.match(squashfsListing(path.join(dir, 'image.sif')), /\s0\/0\s.*squashfs-root\/bin\/busybox\n/, 'files are root-owned in the image');
});
