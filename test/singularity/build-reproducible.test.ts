// Reproducible builds: the same definition file and inputs built with the same SOURCE_DATE_EPOCH give a
// byte-identical SIF (squashfs times, SIF header and descriptor times, the build-date label, and a SIF id
// derived from the contents), built by the unprivileged test user in two different directories.
import t from 'tap';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { kit } from '../singularity-run-kit.js';
import { sifObjects } from '../singbuild-kit.js';

t.setTimeout(10 * 60_000);
const k = kit(t);

const EPOCH = 1700000000;
const DEF = `Bootstrap: busybox
%files
input.txt /opt/input.txt
%post
echo "made in %post at epoch $SOURCE_DATE_EPOCH" > /opt/post.txt
mkdir -p /opt/dir && touch /opt/dir/empty
%labels
Maintainer tests
%runscript
stat -c '%Y %n' /opt/input.txt /opt/post.txt /opt/dir /bin/busybox
cat /opt/post.txt
`;

/** Builds DEF (with input.txt) in a fresh directory of the user's; returns the SIF's path and the run's result. */
function buildIn(env: Record<string, string>) {
  const dir = k.dir('singbuild-repro-');
  for (const [name, text] of [
    ['image.def', DEF],
    ['input.txt', 'input\n'],
  ]) {
    fs.writeFileSync(path.join(dir, name!), text!);
    fs.chownSync(path.join(dir, name!), k.user.uid, k.user.gid);
  }
  const r = k.sing(['build', 'image.sif', 'image.def'], { cwd: dir, env });
  return { sif: path.join(dir, 'image.sif'), r };
}

const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

t.test('same inputs and SOURCE_DATE_EPOCH: byte-identical SIFs, whatever directory and time they were built in', async t => {
  const a = buildIn({ SOURCE_DATE_EPOCH: String(EPOCH) });
  t.equal(a.r.code, 0, a.r.stderr);
  const b = buildIn({ SOURCE_DATE_EPOCH: String(EPOCH) });
  t.equal(b.r.code, 0, b.r.stderr);
  t.equal(sha256(a.sif), sha256(b.sif), 'the two SIFs are identical');
  const { header, objects } = sifObjects(a.sif);
  t.equal(header.createdAt, EPOCH, 'header created at the epoch');
  t.equal(header.modifiedAt, EPOCH);
  t.ok(
    objects.every(o => o.createdAt === EPOCH && o.modifiedAt === EPOCH),
    'every descriptor at the epoch',
  );
  t.not(header.id.toString('hex'), '0'.repeat(32), 'the id is not the all-zero one');
  t.equal(header.id[6]! >> 4, 8, 'a version-8 (derived) UUID');
  const run = k.sing(['run', a.sif]);
  t.equal(run.code, 0, run.stderr);
  t.equal(
    run.stdout,
    `${EPOCH} /opt/input.txt\n${EPOCH} /opt/post.txt\n${EPOCH} /opt/dir\n${EPOCH} /bin/busybox\nmade in %post at epoch ${EPOCH}\n`,
    'inside the image every file carries the epoch, and %post saw SOURCE_DATE_EPOCH',
  );
  const labels = k.sing(['inspect', '--json', a.sif]);
  t.equal(JSON.parse(labels.stdout).data.attributes.labels['org.label-schema.build-date'], 'Tuesday_14_November_2023_22:13:20_UTC');
});

t.test('another epoch, or none, gives another image', async t => {
  const a = buildIn({ SOURCE_DATE_EPOCH: String(EPOCH) });
  const other = buildIn({ SOURCE_DATE_EPOCH: String(EPOCH + 1) });
  t.equal(other.r.code, 0, other.r.stderr);
  t.not(sha256(other.sif), sha256(a.sif));
  t.not(sifObjects(other.sif).header.id.toString('hex'), sifObjects(a.sif).header.id.toString('hex'), 'and another id');
  const plain1 = buildIn({});
  const plain2 = buildIn({});
  t.equal(plain1.r.code, 0, plain1.r.stderr);
  t.not(sha256(plain1.sif), sha256(plain2.sif), 'without SOURCE_DATE_EPOCH the id is random, as Singularity makes it');
  t.not(sifObjects(plain1.sif).header.createdAt, EPOCH);
});

t.test('a SOURCE_DATE_EPOCH that is not a number of seconds is refused before anything is built', async t => {
  const bad = buildIn({ SOURCE_DATE_EPOCH: 'yesterday' });
  t.equal(bad.r.code, 255);
  t.match(bad.r.stderr, /FATAL: +SOURCE_DATE_EPOCH="yesterday": expected a number of seconds since 1970/);
  t.notOk(fs.existsSync(bad.sif));
});
