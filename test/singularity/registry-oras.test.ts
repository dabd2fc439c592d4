// push of a SIF to an OCI registry with oras://, as Singularity pushes it (its media types, the file name as the
// layer's title), and the way back: pull oras:// (byte-identical), exec/run on an oras:// URI, Bootstrap: oras,
// and clear errors for what cannot be pushed or pulled that way. Against docker-registry on 127.0.0.1, as the
// unprivileged test user.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kit, sandbox, sif, type Kit } from '../singularity-run-kit.js';
import { busyboxImages, push, rawManifest, requireTools, sha256, singAsync, startRegistry } from '../registry-kit.js';

const k: Kit = kit(t);
requireTools(t);
t.setTimeout(20 * 60_000);

const reg = await startRegistry(t);
const H = reg.host;
const env = { SINGULARITY_NOHTTPS: '1' };
const image = sif(k, sandbox(k, { runscript: 'echo "runscript of the pushed image: $*"', labels: { 'org.example.pushed': 'yes' } }));

t.test(
  'push oras:// stores the SIF as Singularity does: config {} of the SIF config type, one SIF layer titled with the file name',
  async t => {
    const r = await singAsync(k, ['push', image, `oras://${H}/tsrt/pushed:1`], { env });
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /INFO: {4}Upload complete \(sha256:[0-9a-f]{64}\)/);
    const manifest = await rawManifest(reg, 'tsrt/pushed:1');
    t.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    t.same(manifest.config, {
      mediaType: 'application/vnd.sylabs.sif.config.v1+json',
      digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
      size: 2,
    });
    t.equal(manifest.layers.length, 1);
    t.same(manifest.layers[0], {
      mediaType: 'application/vnd.sylabs.sif.layer.v1.sif',
      digest: `sha256:${sha256(image)}`,
      size: fs.statSync(image).size,
      annotations: { 'org.opencontainers.image.title': path.basename(image) },
    });
    const again = await singAsync(k, ['push', image, `oras://${H}/tsrt/pushed:2`], { env });
    t.equal(again.code, 0, `a second push of the same file (blob already there): ${again.stderr}`);
  },
);

t.test('pull oras:// gives back the same bytes; exec and run take the oras:// URI directly', async t => {
  const cwd = k.dir();
  const r = await singAsync(k, ['pull', `oras://${H}/tsrt/pushed:1`], { env, cwd });
  t.equal(r.code, 0, r.stderr);
  t.equal(sha256(path.join(cwd, 'pushed_1.sif')), sha256(image), 'pushed_1.sif is byte-identical to what was pushed');
  t.equal(fs.statSync(path.join(cwd, 'pushed_1.sif')).mode & 0o777, 0o755, 'executable, as Singularity leaves a pulled SIF');
  const run = await singAsync(k, ['run', `oras://${H}/tsrt/pushed:1`, 'a', 'b'], { env, cwd });
  t.equal(run.stdout, 'runscript of the pushed image: a b\n', run.stderr);
  t.match(run.stderr, /Using cached image/, 'the pull left it in the cache');
  const cache = path.join(k.runtime, 'cache', 'cache', 'oras', sha256(image));
  t.ok(fs.existsSync(cache), 'cached as cache/oras/HEX of its digest');
  const exec = await singAsync(k, ['exec', `oras://${H}/tsrt/pushed:2`, 'cat', '/.singularity.d/labels.json'], { env, cwd });
  t.match(exec.stdout, /"org\.example\.pushed": "yes"/, exec.stderr);
});

t.test('Bootstrap: oras builds on a SIF from the registry', async t => {
  const cwd = k.dir();
  fs.writeFileSync(
    path.join(cwd, 'on-oras.def'),
    `Bootstrap: oras\nFrom: ${H}/tsrt/pushed:1\n\n%runscript\n    echo built on the oras image\n`,
  );
  const r = await singAsync(k, ['build', 'on-oras.sif', 'on-oras.def'], { env, cwd });
  t.equal(r.code, 0, r.stderr);
  t.equal((await singAsync(k, ['run', 'on-oras.sif'], { cwd })).stdout, 'built on the oras image\n');
  t.match(
    (await singAsync(k, ['exec', 'on-oras.sif', 'cat', '/.singularity.d/labels.json'], { cwd })).stdout,
    /org\.example\.pushed/,
    "with the base image's content",
  );
});

t.test('what cannot go through oras:// is refused by name', async t => {
  const cwd = k.dir();
  const images = busyboxImages(t);
  await push(`oci-archive:${images.ociArchive}`, reg, 'tsrt/oci-image:1');
  const notSif = await singAsync(k, ['pull', 'x.sif', `oras://${H}/tsrt/oci-image:1`], { env, cwd });
  t.equal(notSif.code, 255);
  t.match(
    notSif.stderr,
    /is not a SIF pushed with oras: it needs exactly one layer of type application\/vnd\.sylabs\.sif\.layer\.v1\.sif \(its layers: application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip\)/,
  );
  fs.writeFileSync(path.join(cwd, 'notes.txt'), 'not an image');
  const file = await singAsync(k, ['push', 'notes.txt', `oras://${H}/tsrt/notes:1`], { env, cwd });
  t.equal(file.code, 255);
  t.match(file.stderr, /FATAL: {3}notes\.txt is not a SIF image: only SIF files can be pushed with oras:\/\//);
  const docker = await singAsync(k, ['push', image, `docker://${H}/tsrt/x:1`], { env, cwd });
  t.equal(docker.code, 255);
  t.match(docker.stderr, /docker:\/\/ takes OCI images .*; push a SIF to an OCI registry with oras:\/\/ instead/);
  const library = await singAsync(k, ['push', image, 'library://user/c/x:1'], { env, cwd });
  t.match(library.stderr, /library:\/\/ images need the Sylabs Cloud Library, which tsrt-singularity does not talk to/);
  const digest = await singAsync(k, ['push', image, `oras://${H}/tsrt/x@sha256:${'0'.repeat(64)}`], { env, cwd });
  t.match(digest.stderr, /push needs a tag, not a digest/);
});
