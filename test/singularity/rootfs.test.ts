// tsrt with a SIF as the bundle's root filesystem: root.path naming the image, or the org.tsrt.sif annotation.
// Asserted from inside the container (the image's files, read-only or written through the overlay), and from the
// host (no mount and no loop device left after delete, after a failed create, or after a bad config).
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataType, FsType, PartType, SifImage } from '../../src/sif/index.js';
import { e2eFile, editConfig, hostMountsContaining, tsrt, waitFor, type Result, type Scope } from '../helpers.js';
import { userSifBundle } from '../sif-helpers.js';

const { ROOT, scope, rt, rtFiles } = e2eFile(t, {
  name: 'sif-rootfs',
  idPrefix: 'sifroot',
  needsRoot: 'SIF rootfs tests need root',
  timeoutMinutes: 10,
});

const loopsOf = (file: string): string => spawnSync('losetup', ['-j', file], { encoding: 'utf8' }).stdout.trim();

/** A busybox bundle whose rootfs is packed into bundle/image.sif (and then removed); returns bundle and image. */
function sifBundle(s: Scope, args: string[], edit?: (spec: any) => void): { bundle: string; image: string } {
  const bundle = s.bundle(args);
  const rootfs = path.join(bundle, 'rootfs');
  fs.writeFileSync(path.join(rootfs, 'etc', 'greeting'), 'hello from the SIF\n');
  const squashfs = path.join(bundle, 'rootfs.sqfs');
  const r = spawnSync('mksquashfs', [rootfs, squashfs, '-quiet', '-noappend', '-all-root'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mksquashfs: ${r.stderr}`);
  const image = path.join(bundle, 'image.sif');
  SifImage.create(image, [
    { dataType: DataType.Deffile, data: Buffer.from('Bootstrap: scratch\n') },
    { dataType: DataType.Partition, data: { path: squashfs }, partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys } },
  ]).close();
  fs.rmSync(squashfs);
  fs.rmSync(rootfs, { recursive: true });
  editConfig(bundle, spec => {
    spec.root = { path: 'image.sif', readonly: true };
    edit?.(spec);
  });
  return { bundle, image };
}

/** The container's mount points live in /run/tsrt-images/<id>-<hash of the state dir>. */
const mountsOf = (id: string): string[] => hostMountsContaining(`/tsrt-images/${id}-`);

function nothingLeft(t: Test, image: string, id: string): void {
  t.same(mountsOf(id), [], 'no mount left');
  t.same(
    fs.readdirSync('/run/tsrt-images').filter(d => d.startsWith(`${id}-`)),
    [],
    'no mount point left',
  );
  t.equal(loopsOf(image), '', 'no loop device left on the image');
  t.notOk(fs.existsSync(path.join(ROOT, id)), 'no state left');
}

/**
 * `tsrt run` of a SIF bundle in the foreground; checks that nothing is left behind afterwards. With
 * `allowBundleDir`, a site config (TSRT_CONFIG) lets the org.tsrt.sif annotation name images in the bundle.
 */
function runSifBundle(t: Test, args: string[], edit?: (spec: any) => void, allowBundleDir = false): Result {
  const s = scope(t);
  const { bundle, image } = sifBundle(s, args, edit);
  const id = s.id();
  const env = { ...process.env };
  if (allowBundleDir) {
    env['TSRT_CONFIG'] = path.join(s.dir(), 'tsrt.conf');
    fs.writeFileSync(env['TSRT_CONFIG'], `sif annotation dir = ${bundle}\n`, { mode: 0o644 });
  }
  const r = rt(['run', '-b', bundle, id], { env });
  nothingLeft(t, image, id);
  return r;
}

t.test('root.path: a SIF mounted read-only', async t => {
  const r = runSifBundle(t, ['sh', '-c', 'cat /etc/greeting; touch /new 2>/dev/null && echo writable || echo read-only']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'hello from the SIF\nread-only\n');
});

t.test('root.readonly=false: an overlay whose writes stay with the container', async t => {
  const s = scope(t);
  const { bundle, image } = sifBundle(
    s,
    ['sh', '-c', 'echo changed > /etc/greeting && touch /new && cat /etc/greeting && ls /new'],
    spec => {
      spec.root.readonly = false;
    },
  );
  const before = fs.readFileSync(image);
  const id = s.id();
  const c = rtFiles(s, ['create', '-b', bundle, id]);
  t.equal(c.code, 0, c.stderr);
  const state = JSON.parse(rt(['state', id]).stdout);
  t.ok(
    mountsOf(id).some(l => l.includes(' overlay ')),
    'the overlay is mounted',
  );
  t.ok(fs.existsSync(path.join(ROOT, id, 'image-rootfs', 'upper')), 'its upper dir is in the state dir');
  t.equal(state.status, 'created');
  t.equal(rt(['start', id]).code, 0);
  t.ok(waitForStopped(id), 'the container ran');
  t.equal(fs.readFileSync(c.out, 'utf8'), 'changed\n/new\n', 'writes are visible inside');
  t.equal(rt(['delete', id]).code, 0);
  t.ok(fs.readFileSync(image).equals(before), 'the image file is unchanged');
  nothingLeft(t, image, id);
});

function waitForStopped(id: string): boolean {
  return waitFor(
    () => {
      const r = rt(['state', id]);
      return r.code === 0 && JSON.parse(r.stdout).status === 'stopped';
    },
    400,
    50,
  );
}

t.test('annotation org.tsrt.sif names the image; root.path is then not used', async t => {
  const r = runSifBundle(
    t,
    ['cat', '/etc/greeting'],
    spec => {
      spec.root.path = 'unused-rootfs';
      spec.annotations = { 'org.tsrt.sif': 'image.sif' };
    },
    true,
  );
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'hello from the SIF\n');
});

t.test('a container with a user namespace reaches its image root as a mapped uid', async t => {
  const r = runSifBundle(t, ['sh', '-c', 'id -u; cat /etc/greeting'], spec => {
    spec.linux.namespaces.push({ type: 'user' });
    spec.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    spec.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '0\nhello from the SIF\n');
});

t.test('a create that fails after mounting leaves no mount and no loop device', async t => {
  const r = runSifBundle(t, ['/no/such/binary']);
  t.not(r.code, 0);
  t.match(r.stderr, 'no such file or directory');
});

t.test('delete --force of a running container unmounts its image', async t => {
  const s = scope(t);
  const { bundle, image } = sifBundle(s, ['sh', '-c', 'echo ready; while :; do sleep 1; done'], spec => {
    spec.root.readonly = false;
  });
  const id = s.id();
  t.equal(rtFiles(s, ['run', '-d', '-b', bundle, id]).code, 0);
  t.ok(loopsOf(image) !== '', 'a loop device while it runs');
  t.equal(rt(['delete', '--force', id]).code, 0);
  nothingLeft(t, image, id);
});

t.test('bad images are refused naming the config field', async t => {
  const s = scope(t);
  const { bundle, image } = sifBundle(s, ['true']);
  // A SIF whose primary partition is not a squashfs: found by its magic, refused when mounted.
  SifImage.create(image, [
    { dataType: DataType.Partition, data: Buffer.alloc(8192), partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys } },
  ]).close();
  const id = s.id();
  const bad = rt(['run', '-b', bundle, id]);
  t.not(bad.code, 0);
  t.match(bad.stderr, 'invalid rootfs: /root/path: cannot mount image');
  t.match(bad.stderr, 'does not start with a squashfs superblock');
  t.notOk(fs.existsSync(path.join(ROOT, id)), 'no state left');
  const notImage = path.join(bundle, 'notes.txt');
  fs.writeFileSync(notImage, 'not an image');
  editConfig(bundle, spec => {
    spec.root.path = 'notes.txt';
  });
  const plain = rt(['run', '-b', bundle, s.id()]);
  t.not(plain.code, 0);
  t.match(plain.stderr, `invalid rootfs: ${notImage}: not a directory`, 'any other file is still "not a directory"');
  editConfig(bundle, spec => {
    spec.annotations = { 'org.tsrt.sif': 'missing.sif' };
  });
  const missing = rt(['run', '-b', bundle, s.id()]);
  t.not(missing.code, 0);
  t.match(missing.stderr, '/annotations/org.tsrt.sif: image');
  t.match(missing.stderr, 'does not exist');
});

t.test('unprivileged tsrt: a read-only SIF root through squashfuse or the cached sandbox; no overlay', async t => {
  const { user, home, bundle } = userSifBundle(t, 'tsrt-sif-rootless-', ['sh', '-c', 'id -u; cat /etc/greeting']);
  const env = { ...process.env, XDG_CACHE_HOME: path.join(home, 'cache') };
  const root = path.join(home, 'state');
  const r = tsrt(['run', '-b', bundle, 'sif-rootless-ro'], { user: user.name, root, env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '0\nhello from the SIF\n', "the image as the container's root, as the user mapped to root");
  t.same(hostMountsContaining(home), [], 'nothing left mounted');
  t.notOk(fs.existsSync(path.join(home, 'tsrt-images')), "the mount points were in the container's state directory, not beside it");
  t.same(fs.readdirSync(root), [], 'and went with it');
  editConfig(bundle, spec => {
    spec.root.readonly = false;
  });
  const w = tsrt(['run', '-b', bundle, 'sif-rootless-rw'], { user: user.name, root, env });
  t.not(w.code, 0, 'a writable image root needs root');
  t.match(w.stderr, /invalid rootfs: \/root\/path: cannot mount image .*(needs root for its overlay|squashfuse)/);
  t.notOk(fs.existsSync(path.join(root, 'sif-rootless-rw')), 'no state left');
});
