// `overlay create` as the unprivileged test user: an ext3 image of --size MiB (--sparse: not allocated) holding
// upper/ and work/ (and --create-dir directories) owned by the user, or by root with --fakeroot; or the same
// appended to a SIF as its overlay partition. Then used with --overlay: by the user where FUSE lets them mount
// it, and by root (a loop mount) either way, writes seen from inside and kept between runs.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { kit, sandbox, SINGULARITY, sif } from '../singularity-run-kit.js';
import { sifObjects } from '../singbuild-kit.js';

t.setTimeout(10 * 60_000);
const k = kit(t);
const image = sandbox(k);

/** `debugfs ls -l DIR` of an ext3 file (at an offset inside a SIF): name -> "uid:gid mode". */
function listing(file: string, dir: string): Record<string, string> {
  const r = spawnSync('/usr/sbin/debugfs', ['-R', `ls -l ${dir}`, file], { encoding: 'utf8' });
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 9) out[f[f.length - 1]!] = `${f[3]}:${f[4]} ${f[1]}`;
  }
  return out;
}

const leftovers = (dir: string): string[] => fs.readdirSync(dir).filter(n => n.includes('.overlay-'));

t.test('overlay create: a --size MiB ext3 image whose upper/ and work/ belong to the user; --create-dir', async t => {
  const dir = k.dir('singrun-ovc-');
  const r = k.sing(['overlay', 'create', '--size', '80', '--create-dir', '/data/in', 'ov.img'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const file = path.join(dir, 'ov.img');
  t.equal(fs.statSync(file).size, 80 * 1024 * 1024, '80 MiB');
  t.equal(fs.statSync(file).uid, k.user.uid);
  const root = listing(file, '/');
  t.equal(root['upper'], `${k.user.uid}:${k.user.gid} 40755`);
  t.equal(root['work'], `${k.user.uid}:${k.user.gid} 40755`);
  t.equal(listing(file, '/upper/data')['in'], `${k.user.uid}:${k.user.gid} 40755`, '--create-dir made upper/data/in');
  t.same(leftovers(dir), [], 'no scratch left');
  const again = k.sing(['overlay', 'create', 'ov.img'], { cwd: dir });
  t.equal(again.code, 255);
  t.match(again.stderr, `FATAL:   ${file} already exists and is not a SIF image (an overlay image is created new)`);
});

t.test("--sparse allocates nothing up front; --fakeroot makes the layout root's; below 64 MiB is refused", async t => {
  const dir = k.dir('singrun-ovc-');
  t.equal(k.sing(['overlay', 'create', '-S', 'sparse.img'], { cwd: dir }).code, 0);
  const st = fs.statSync(path.join(dir, 'sparse.img'));
  t.equal(st.size, 64 * 1024 * 1024);
  t.ok(st.blocks * 512 < 16 * 1024 * 1024, `only what mkfs wrote is allocated (${st.blocks * 512} bytes)`);
  t.equal(k.sing(['overlay', 'create', '--fakeroot', 'root.img'], { cwd: dir }).code, 0);
  t.equal(listing(path.join(dir, 'root.img'), '/')['upper'], '0:0 40755', "upper/ is root's in the image");
  const small = k.sing(['overlay', 'create', '--size', '10', 'small.img'], { cwd: dir });
  t.equal(small.code, 255);
  t.match(small.stderr, 'FATAL:   image size must be equal or greater than 64 MiB');
  t.notOk(fs.existsSync(path.join(dir, 'small.img')));
  t.same(leftovers(dir), []);
});

t.test('overlay create on a SIF appends an ext3 overlay partition (once; never to a signed SIF)', async t => {
  const file = sif(k, image);
  const r = k.sing(['overlay', 'create', '--size', '64', file]);
  t.equal(r.code, 0, r.stderr);
  const part = sifObjects(file).objects.find(o => o.partition?.partType === 4);
  t.ok(part, 'an Overlay partition');
  t.equal(part?.partition?.fsType, 2, 'ext3');
  t.equal(part?.size, 64 * 1024 * 1024);
  const twice = k.sing(['overlay', 'create', file]);
  t.equal(twice.code, 255);
  t.match(
    twice.stderr,
    `FATAL:   a writable overlay partition already exists in ${file} (ID: ${part?.id}), delete it first with "singularity sif del ${part?.id} ${file}"`,
  );
  const signedFile = sif(k, image);
  const key = path.join(path.dirname(signedFile), 'key.pem');
  fs.writeFileSync(key, crypto.generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.chownSync(key, k.user.uid, k.user.gid);
  t.equal(k.sing(['sign', '--key', key, signedFile]).code, 0);
  const signed = k.sing(['overlay', 'create', signedFile]);
  t.equal(signed.code, 255);
  t.match(signed.stderr, `FATAL:   SIF image ${signedFile} is signed: a writable overlay cannot be added`);
});

t.test('--overlay with the image: writes inside are kept between runs (the user where FUSE allows; root by loop mount)', async t => {
  const dir = k.dir('singrun-ovc-');
  t.equal(k.sing(['overlay', 'create', '--create-dir', '/data', 'ov.img'], { cwd: dir }).code, 0);
  const ov = path.join(dir, 'ov.img');
  const write = k.sing(['exec', '--overlay', ov, image, 'sh', '-c', 'echo kept > /data/persisted && id -u']);
  if (write.code === 0) {
    t.comment('branch: the user can mount the overlay image (FUSE is open to users here)');
    t.equal(write.stdout, `${k.user.uid}\n`);
    t.equal(k.sing(['exec', '--overlay', ov, image, 'cat', '/data/persisted']).stdout, 'kept\n');
  } else {
    t.comment('branch: FUSE is closed to users here: the user is told, and root uses an image of its own');
    t.match(write.stderr, `FATAL:   overlay image ${ov} cannot be mounted here`);
    const asRoot = (args: string[]) => spawnSync(SINGULARITY, args, { encoding: 'utf8', cwd: dir });
    t.equal(asRoot(['overlay', 'create', '--create-dir', '/data', 'root.img']).status, 0);
    const rootOv = path.join(dir, 'root.img');
    const w = asRoot(['exec', '--overlay', rootOv, image, 'sh', '-c', 'echo kept > /data/persisted']);
    t.equal(w.status, 0, w.stderr);
    t.equal(asRoot(['exec', '--overlay', rootOv, image, 'cat', '/data/persisted']).stdout, 'kept\n', 'seen from inside the next container');
  }
  t.notOk(fs.existsSync(path.join(image, 'data')), 'the image itself is untouched');
});
