// mountImage(): a SIF's primary partition, a plain squashfs and an ext3 image made available as a directory,
// by each path (kernel loop mount as root, squashfuse, the cached unsquashfs sandbox), as root and as an
// unprivileged user, with the one-line message saying which path was taken, and nothing left behind.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataType, FsType, PartType, SifImage } from '../../src/sif/index.js';
import { inspectImage, mountImage, sandboxKey } from '../../src/sif/mount.js';
import { REPO, hostMountsContaining, testUser, tmpdir } from '../helpers.js';
import { FIXTURES } from '../sif-helpers.js';

if (process.geteuid?.() !== 0) {
  t.plan(0, 'mount tests need root (they also switch to the unprivileged test user)');
  process.exit(0);
}
t.setTimeout(10 * 60_000);

const user = testUser();
const work = tmpdir('tsrt-sif-mount-');
fs.chmodSync(work, 0o755);
t.teardown(() => {
  if (hostMountsContaining(work).length === 0) fs.rmSync(work, { recursive: true, force: true });
});

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

// One small tree, packed three ways.
const tree = path.join(work, 'tree');
fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
fs.writeFileSync(path.join(tree, 'etc', 'greeting'), 'hello from the image\n');
const squashfs = path.join(work, 'plain.sqfs');
run('mksquashfs', [tree, squashfs, '-quiet', '-noappend', '-all-root']);
const ext3 = path.join(work, 'plain.ext3');
run('mkfs.ext3', ['-q', '-F', '-d', tree, ext3, '4M']);
const sif = path.join(work, 'image.sif');
SifImage.create(sif, [
  { dataType: DataType.Deffile, data: Buffer.from('Bootstrap: scratch\n') },
  { dataType: DataType.Partition, data: { path: squashfs }, partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys } },
]).close();
for (const f of [squashfs, ext3, sif]) fs.chmodSync(f, 0o644);

const loopsOf = (file: string): string => spawnSync('losetup', ['-j', file], { encoding: 'utf8' }).stdout.trim();
// The host facilities the mount paths need, detected first: each test asserts what is right either way and says
// which branch it ran. Loop devices need /dev/loop-control; FUSE needs /dev/fuse, open to users (0666) or
// root-only.
const LOOP = fs.existsSync('/dev/loop-control');
const FUSE = fs.existsSync('/dev/fuse');
const FUSE_FOR_USERS = FUSE && (fs.statSync('/dev/fuse').mode & 0o006) === 0o006;
const cacheDir = path.join(work, 'cache-root');
const quiet = { cacheDir, log: () => {} };

t.test('inspectImage finds the filesystem and where it sits', async t => {
  const s = inspectImage(sif);
  t.same([s.kind, s.fsType, s.objectId, s.size], ['sif', 'squashfs', 2, fs.statSync(squashfs).size]);
  t.equal(s.offset % 4096, 0, 'the partition offset inside the SIF');
  t.same([inspectImage(squashfs).kind, inspectImage(squashfs).offset], ['squashfs', 0]);
  t.equal(inspectImage(ext3).fsType, 'ext3');
  t.equal(inspectImage(tree).kind, 'directory');
  t.throws(() => inspectImage(path.join(FIXTURES, 'keys', 'rsa-public.pem')), /not a SIF, squashfs or ext3 image/);
  t.throws(() => inspectImage(path.join(FIXTURES, 'images', 'one-object-sbom.sif')), /SIF has no primary system partition/);
  t.throws(() => inspectImage(sif, 1), /SIF object 1 is not a partition/);
});

t.test('as root: kernel loop mount, read-only, loop device freed at release', async t => {
  if (!LOOP) {
    t.comment('branch: this host has no loop devices (/dev/loop-control)');
    t.throws(() => mountImage(sif, { ...quiet, methods: ['loop'] }), /cannot mount .*: kernel loop mount: /, 'refused, saying why');
    return;
  }
  t.comment('branch: this host has loop devices');
  for (const image of [sif, squashfs, ext3]) {
    const lines: string[] = [];
    const m = mountImage(image, { ...quiet, log: l => lines.push(l) });
    t.equal(m.method, 'loop', `${path.basename(image)}: loop`);
    t.match(m.loopDevice, /^\/dev\/loop\d+$/);
    t.equal(fs.readFileSync(path.join(m.dir, 'etc', 'greeting'), 'utf8'), 'hello from the image\n');
    t.throws(() => fs.writeFileSync(path.join(m.dir, 'x'), ''), /EROFS|read-only/i, 'read-only');
    t.equal(lines.length, 1, 'one line');
    t.match(lines[0], `kernel loop mount (read-only) on ${m.dir} via ${m.loopDevice}`);
    m.release();
    m.release();
    t.equal(hostMountsContaining(m.dir).length, 0, 'unmounted');
    t.notOk(fs.existsSync(m.dir), 'its temporary mount point removed');
    t.equal(loopsOf(image), '', 'no loop device left on the image');
  }
});

t.test('as root: ext3 mounted writable on request', async t => {
  const copy = path.join(work, 'rw.ext3');
  fs.copyFileSync(ext3, copy);
  const m = mountImage(copy, { ...quiet, writable: true });
  t.comment(`branch: mounted by ${m.method} (${LOOP ? 'loop devices' : 'no loop devices, so fuse2fs'} on this host)`);
  fs.writeFileSync(path.join(m.dir, 'written'), 'yes');
  m.release();
  const again = mountImage(copy, quiet);
  t.equal(fs.readFileSync(path.join(again.dir, 'written'), 'utf8'), 'yes', 'the write is in the image');
  again.release();
  t.equal(loopsOf(copy), '');
});

t.test('as root: squashfuse at the partition offset, on a given mount point', async t => {
  const target = path.join(work, 'fuse-target');
  fs.mkdirSync(target);
  if (!FUSE) {
    t.comment('branch: this host has no FUSE (/dev/fuse)');
    t.throws(
      () => mountImage(sif, { ...quiet, methods: ['squashfuse'], target }),
      /cannot mount .*: squashfuse mount: squashfuse: /,
      'refused, saying why',
    );
    return;
  }
  t.comment('branch: this host has FUSE');
  const m = mountImage(sif, { ...quiet, methods: ['squashfuse'], target });
  t.equal(m.method, 'squashfuse');
  t.equal(m.dir, target);
  t.equal(fs.readFileSync(path.join(target, 'etc', 'greeting'), 'utf8'), 'hello from the image\n');
  t.match(m.message, 'squashfuse mount (read-only)');
  m.release();
  t.equal(hostMountsContaining(target).length, 0, 'unmounted');
  t.ok(fs.existsSync(target), "a caller's mount point is kept");
});

t.test('the sandbox fallback is extracted once and keyed by the image', async t => {
  const dir = path.join(work, 'cache-sandbox');
  const copy = path.join(work, 'sandbox.sif');
  fs.copyFileSync(sif, copy);
  const first = mountImage(copy, { cacheDir: dir, methods: ['sandbox'], log: () => {} });
  t.equal(first.method, 'sandbox');
  t.match(first.message, 'using a newly extracted sandbox');
  t.equal(fs.readFileSync(path.join(first.dir, 'etc', 'greeting'), 'utf8'), 'hello from the image\n');
  t.ok(first.dir.startsWith(path.join(dir, sandboxKey(inspectImage(copy)))), 'under the cache, by key');
  const second = mountImage(copy, { cacheDir: dir, methods: ['sandbox'], log: () => {} });
  t.equal(second.dir, first.dir);
  t.match(second.message, 'using the cached extracted sandbox');
  fs.utimesSync(copy, new Date(), new Date(Date.now() + 5000));
  const third = mountImage(copy, { cacheDir: dir, methods: ['sandbox'], log: () => {} });
  t.not(third.dir, first.dir, 'a changed image gets a fresh sandbox');
  t.same(
    fs.readdirSync(dir).filter(f => f.startsWith('.')),
    [],
    'no half-extracted directories left',
  );
});

t.test('failures say what was tried', async t => {
  const notImage = path.join(work, 'not-an-image');
  fs.writeFileSync(notImage, 'plain text');
  t.throws(() => mountImage(notImage, quiet), /not a SIF, squashfs or ext3 image/);
  const encrypted = path.join(work, 'encrypted.sif');
  SifImage.create(encrypted, [
    { dataType: DataType.Partition, data: { path: squashfs }, partition: { fsType: FsType.EncryptedSquashfs, partType: PartType.PrimSys } },
  ]).close();
  t.throws(() => mountImage(encrypted, quiet), /is an encrypted squashfs, which cannot be mounted/);
  const broken = path.join(work, 'broken.sif');
  SifImage.create(broken, [
    { dataType: DataType.Partition, data: Buffer.alloc(4096), partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys } },
  ]).close();
  t.throws(() => mountImage(broken, quiet), /does not start with a squashfs superblock/);
  t.throws(() => mountImage(ext3, { ...quiet, methods: ['sandbox'] }), /cannot mount .*sandbox: only squashfs images can be extracted/);
});

/** mountImage() in a process of the unprivileged test user (test/singularity/fixtures/mount-probe.ts). */
function probeAsUser(image: string, cache: string): { method?: string; content?: string; error?: string; lines: string[] } {
  const bun = path.join(REPO, 'node_modules', '.bin', 'bun');
  const probe = path.join(REPO, 'test', 'singularity', 'fixtures', 'mount-probe.ts');
  const r = spawnSync('runuser', ['-u', user.name, '--', bun, probe, image, 'etc/greeting', cache], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

t.test('as an unprivileged user: squashfuse when FUSE is open to users, else the cached sandbox', async t => {
  const cache = path.join(work, 'cache-user');
  fs.mkdirSync(cache);
  fs.chownSync(cache, user.uid, user.gid);
  // /dev/fuse is usually 0666; on hosts where it is root-only (or missing), squashfuse cannot work for users.
  const fuseOpen = FUSE_FOR_USERS;
  t.comment(`branch: /dev/fuse is ${fuseOpen ? 'open to users' : FUSE ? 'root-only' : 'missing'} on this host`);
  for (const image of [sif, squashfs]) {
    const r = probeAsUser(image, cache);
    t.equal(r.error, undefined, `${path.basename(image)}: mounted`);
    t.equal(r.content, 'hello from the image\n', `${path.basename(image)}: content through the mount`);
    t.equal(r.method, fuseOpen ? 'squashfuse' : 'sandbox', `${path.basename(image)}: ${fuseOpen ? 'squashfuse' : 'sandbox'}`);
    t.equal(r.lines.length, 1, 'one message line');
    if (!fuseOpen) {
      t.match(
        r.lines[0],
        FUSE ? /extracted sandbox .* \(squashfuse mount: .*\/dev\/fuse/ : /extracted sandbox .* \(squashfuse mount: squashfuse: /,
        'the message says why squashfuse was not used',
      );
    }
  }
  t.equal(loopsOf(sif), '', 'no loop device');
  const ext = probeAsUser(ext3, cache);
  if (fuseOpen) t.equal(ext.method, 'fuse2fs');
  else t.match(ext.error, /cannot mount .*fuse2fs mount: /, 'ext3 without FUSE fails with the reason');
});
