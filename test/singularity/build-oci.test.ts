// The OCI bootstrap agents: oci (layout directory, path[:tag]), oci-archive and docker-archive, on images the
// test assembles from busybox with two layers (the second deleting through whiteouts), and the image config
// turned into Singularity metadata (ENV -> 10-docker2singularity.sh, ENTRYPOINT/CMD -> runscript, labels).
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { scratchDir, singularity, writeFiles } from '../singbuild-kit.js';

if (process.geteuid?.() !== 0) {
  t.plan(0, 'builds as root');
  process.exit(0);
}
t.setTimeout(10 * 60_000);

const CONFIG = {
  architecture: 'amd64',
  os: 'linux',
  config: {
    Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello "oci"', 'NOT;A NAME=x'],
    Entrypoint: ['/bin/echo', 'ep'],
    Cmd: ['default'],
    Labels: { 'org.example.layer': 'two' },
  },
  rootfs: { type: 'layers', diff_ids: [] },
};

function sh(cmd: string, cwd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
}

/** Two layer tarballs: busybox with files to delete, then whiteouts of them (the second one gzipped). */
function makeLayers(dir: string): string[] {
  const one = path.join(dir, 'layer1');
  fs.mkdirSync(path.join(one, 'bin'), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(one, 'bin/busybox'));
  fs.chmodSync(path.join(one, 'bin/busybox'), 0o755);
  fs.symlinkSync('busybox', path.join(one, 'bin/sh'));
  writeFiles(one, { 'etc/remove-me': 'gone', 'etc/keep-me': 'kept', 'opaque/old': 'old' });
  const two = path.join(dir, 'layer2');
  writeFiles(two, { 'etc/.wh.remove-me': '', 'opaque/.wh..wh..opq': '', 'opaque/new': 'new' });
  sh('tar -C layer1 -cf layer1.tar . && tar -C layer2 -czf layer2.tar.gz .', dir);
  return [path.join(dir, 'layer1.tar'), path.join(dir, 'layer2.tar.gz')];
}

function addBlob(layout: string, data: Buffer): { digest: string; size: number } {
  const hex = crypto.createHash('sha256').update(data).digest('hex');
  fs.mkdirSync(path.join(layout, 'blobs/sha256'), { recursive: true });
  fs.writeFileSync(path.join(layout, 'blobs/sha256', hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

/** An OCI image layout at dir/layout holding the image tagged v1. */
function makeOciLayout(dir: string): string {
  const layout = path.join(dir, 'layout');
  const [l1, l2] = makeLayers(dir);
  const layers = [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar', ...addBlob(layout, fs.readFileSync(l1!)) },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...addBlob(layout, fs.readFileSync(l2!)) },
  ];
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', ...addBlob(layout, Buffer.from(JSON.stringify(CONFIG))) };
  const manifest = addBlob(
    layout,
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers })),
  );
  writeFiles(layout, {
    'oci-layout': '{"imageLayoutVersion":"1.0.0"}',
    'index.json': JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  });
  return layout;
}

/** A `docker save`-style tarball at dir/image.tar. */
function makeDockerArchive(dir: string): string {
  const archive = path.join(dir, 'archive');
  const [l1, l2] = makeLayers(dir);
  fs.mkdirSync(path.join(archive, 'l1'), { recursive: true });
  fs.mkdirSync(path.join(archive, 'l2'), { recursive: true });
  fs.copyFileSync(l1!, path.join(archive, 'l1/layer.tar'));
  fs.copyFileSync(l2!, path.join(archive, 'l2/layer.tar'));
  writeFiles(archive, {
    'config.json': JSON.stringify(CONFIG),
    'manifest.json': JSON.stringify([{ Config: 'config.json', RepoTags: ['demo:v1'], Layers: ['l1/layer.tar', 'l2/layer.tar'] }]),
  });
  sh('tar -C archive -cf image.tar .', dir);
  return path.join(dir, 'image.tar');
}

function checkImage(t: Test, sandbox: string): void {
  t.ok(fs.existsSync(path.join(sandbox, 'bin/busybox')), 'the first layer is there');
  t.equal(fs.readFileSync(path.join(sandbox, 'etc/keep-me'), 'utf8'), 'kept');
  t.notOk(fs.existsSync(path.join(sandbox, 'etc/remove-me')), 'a .wh. whiteout deletes the file');
  t.notOk(fs.existsSync(path.join(sandbox, 'opaque/old')), 'an opaque directory hides what lower layers put there');
  t.equal(fs.readFileSync(path.join(sandbox, 'opaque/new'), 'utf8'), 'new');
  t.same(spawnSync('find', [sandbox, '-name', '.wh.*'], { encoding: 'utf8' }).stdout, '', 'no whiteout files in the image');
  const env = fs.readFileSync(path.join(sandbox, '.singularity.d/env/10-docker2singularity.sh'), 'utf8');
  const probe = spawnSync(
    'sh',
    ['-c', `. "$1"; printf '%s|%s' "$GREETING" "$PATH"`, 'sh', path.join(sandbox, '.singularity.d/env/10-docker2singularity.sh')],
    { encoding: 'utf8', env: { PATH: '/bin' } },
  );
  t.equal(
    probe.stdout,
    'hello "oci"|/usr/sbin:/usr/bin:/sbin:/bin',
    `ENV values are quoted; the image's PATH replaces the runtime's, as in Singularity:\n${env}`,
  );
  t.notMatch(env, /NOT;A NAME/, 'an entry that is not a variable name is left out');
  const runscript = path.join(sandbox, '.singularity.d/runscript');
  t.equal(spawnSync('sh', [runscript], { encoding: 'utf8' }).stdout, 'ep default\n', 'no arguments: ENTRYPOINT + CMD');
  t.equal(spawnSync('sh', [runscript, 'a b', 'c'], { encoding: 'utf8' }).stdout, 'ep a b c\n', 'arguments replace CMD');
  t.equal(
    JSON.parse(fs.readFileSync(path.join(sandbox, '.singularity.d/labels.json'), 'utf8'))['org.example.layer'],
    'two',
    'image labels',
  );
}

t.test('Bootstrap: oci (layout directory, path:tag)', async t => {
  const dir = scratchDir(t);
  const layout = makeOciLayout(dir);
  writeFiles(dir, { 'image.def': `Bootstrap: oci\nFrom: ${layout}:v1\n%post\necho on-top > /post.txt\n` });
  const r = singularity(['build', '-s', 'sb', 'image.def'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  checkImage(t, path.join(dir, 'sb'));
  t.equal(fs.readFileSync(path.join(dir, 'sb/post.txt'), 'utf8'), 'on-top\n', '%post runs on top of the unpacked image');
  const missing = singularity(['build', '-s', 'sb2', `oci:${layout}:v2`], { cwd: dir });
  t.equal(missing.code, 255);
  t.match(missing.stderr, /line 2: the OCI layout .* has no image tagged "v2"/);
});

t.test('Bootstrap: oci-archive (the layout as a tarball), and oci-archive: as SPEC', async t => {
  const dir = scratchDir(t);
  makeOciLayout(dir);
  sh('tar -C layout -cf layout.tar .', dir);
  writeFiles(dir, { 'image.def': `Bootstrap: oci-archive\nFrom: ${path.join(dir, 'layout.tar')}\n` });
  const r = singularity(['build', '-s', 'sb', 'image.def'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  checkImage(t, path.join(dir, 'sb'));
  const uri = singularity(['build', '-s', 'sb-uri', 'oci-archive:layout.tar:v1'], { cwd: dir });
  t.equal(uri.code, 0, uri.stderr);
  t.ok(fs.existsSync(path.join(dir, 'sb-uri/opaque/new')));
});

t.test('Bootstrap: docker-archive (docker save tarball)', async t => {
  const dir = scratchDir(t);
  const archive = makeDockerArchive(dir);
  writeFiles(dir, { 'image.def': `Bootstrap: docker-archive\nFrom: ${archive}\n%runscript\necho mine\n` });
  const r = singularity(['build', '-s', 'sb', 'image.def'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  t.equal(
    fs.readFileSync(path.join(dir, 'sb/.singularity.d/runscript'), 'utf8'),
    '#!/bin/sh\n\necho mine\n',
    "%runscript replaces the image's ENTRYPOINT/CMD script",
  );
  const plain = singularity(['build', '-s', 'plain', `docker-archive:${archive}`], { cwd: dir });
  t.equal(plain.code, 0, plain.stderr);
  checkImage(t, path.join(dir, 'plain'));
  writeFiles(path.join(dir, 'escape'), { 'manifest.json': JSON.stringify([{ Config: '../../../../etc/hostname', Layers: [] }]) });
  sh('tar -C escape -cf escape.tar .', dir);
  const escaping = singularity(['build', '-s', 'esc', 'docker-archive:escape.tar'], { cwd: dir });
  t.equal(escaping.code, 255);
  t.match(escaping.stderr, /manifest\.json names "\.\.\/\.\.\/\.\.\/\.\.\/etc\/hostname", outside the archive/);
  const bad = singularity(['build', '-s', 'bad', 'docker-archive:/nonexistent.tar'], { cwd: dir });
  t.equal(bad.code, 255);
  t.match(bad.stderr, /line 2: \/nonexistent\.tar does not exist/);
});

t.test('a layer cannot write through a symlink an earlier layer left (building as root)', async t => {
  const dir = scratchDir(t);
  const canary = scratchDir(t);
  const one = path.join(dir, 'evil1');
  fs.mkdirSync(path.join(one, 'bin'), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(one, 'bin/busybox'));
  fs.symlinkSync(canary, path.join(one, 'escape'));
  fs.mkdirSync(path.join(one, canary), { recursive: true });
  writeFiles(path.join(dir, 'evil2'), { 'escape/pwned': 'written through the link' });
  sh('tar -C evil1 -cf l1.tar . && tar -C evil2 -cf l2.tar .', dir);
  const archive = path.join(dir, 'archive');
  fs.mkdirSync(archive);
  fs.copyFileSync(path.join(dir, 'l1.tar'), path.join(archive, 'l1.tar'));
  fs.copyFileSync(path.join(dir, 'l2.tar'), path.join(archive, 'l2.tar'));
  writeFiles(archive, {
    'config.json': JSON.stringify(CONFIG),
    'manifest.json': JSON.stringify([{ Config: 'config.json', Layers: ['l1.tar', 'l2.tar'] }]),
  });
  sh('tar -C archive -cf evil.tar .', dir);
  const r = singularity(['build', '-s', 'sb', 'docker-archive:evil.tar'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  t.same(fs.readdirSync(canary), [], 'nothing was written on the host through the link');
  t.equal(
    fs.readFileSync(path.join(dir, 'sb', canary, 'pwned'), 'utf8'),
    'written through the link',
    'the link resolved inside the image instead',
  );
  t.equal(fs.readlinkSync(path.join(dir, 'sb/escape')), canary, 'and stays a link');
});
