// docker:// against a real registry (Debian's docker-registry, distribution 2.8, plain HTTP on 127.0.0.1), used
// as the unprivileged test user: pull, exec/run/shell/inspect on a URI, build from docker://, the OCI and
// Docker schema 2 manifest formats, image indexes and manifest lists, layer whiteouts, the image config, digest
// checks, Range resumption, parallel layers, the progress bar, the cache and its commands, and local OCI
// archives and layouts given straight to exec and run. Images are pushed with skopeo from hack/engines/image.sh's
// busybox rootfs plus layers made here.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kit, type Kit } from '../singularity-run-kit.js';
import {
  busyboxImages,
  gzipFile,
  Layout,
  push,
  rawManifest,
  requireTools,
  runAsync,
  singAsync,
  startProxy,
  startRegistry,
  storedBlob,
  tarLayer,
} from '../registry-kit.js';
import { SifImage } from '../../src/sif/index.js';

const k: Kit = kit(t);
requireTools(t);
t.setTimeout(20 * 60_000);

const reg = await startRegistry(t);
const images = busyboxImages(t);
const layout = new Layout(path.join(images.dir, 'layout'));
const base = gzipFile(images.rootfsTar);
const greet = { content: '#!/bin/sh\necho "greet: $GREETING [$*]"\n', mode: 0o755 };
layout.tag(
  'v1',
  layout.image(
    {
      config: {
        Env: ['PATH=/custom/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello "oci"'],
        Entrypoint: ['/custom/bin/greet'],
        Cmd: ['default-arg'],
        WorkingDir: '/opaque',
        User: '65534',
        Labels: { 'org.example.label': 'layers-v1' },
      },
    },
    [
      base,
      tarLayer({ 'etc/remove-me': 'gone', 'etc/keep-me': 'kept', 'opaque/old': 'old', 'custom/bin/greet': greet }),
      tarLayer({ 'etc/.wh.remove-me': '', 'opaque/.wh..wh..opq': '', 'opaque/new': 'new' }),
    ],
  ),
);
const platformImage = (architecture: string) =>
  layout.image({ architecture, config: { Cmd: ['/bin/sh'] } }, [base, tarLayer({ platform: architecture })]);
layout.tag(
  'multi',
  layout.index([
    { manifest: platformImage('amd64'), platform: { os: 'linux', architecture: 'amd64' } },
    { manifest: platformImage('arm64'), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ]),
);
layout.tag('tamper', layout.image({ config: {} }, [base, tarLayer({ tamper: crypto.randomBytes(64 * 1024).toString('base64') })]));
layout.tag('fresh', layout.image({ config: {} }, [base, tarLayer({ fresh: crypto.randomBytes(64 * 1024).toString('base64') })]));
await push(`oci-archive:${images.ociArchive}`, reg, 'tsrt/busybox:1');
await push(`oci:${layout.dir}:v1`, reg, 'tsrt/layers:v1');
await push(`oci:${layout.dir}:v1`, reg, 'tsrt/layers:v2s2', {}, ['--format', 'v2s2']);
await push(`oci:${layout.dir}:multi`, reg, 'tsrt/multi:1', {}, ['--all']);
await push(`oci:${layout.dir}:multi`, reg, 'tsrt/multi:list', {}, ['--all', '--format', 'v2s2']);
await push(`oci:${layout.dir}:tamper`, reg, 'tsrt/tamper:1');
await push(`oci:${layout.dir}:fresh`, reg, 'tsrt/fresh:1');

const H = reg.host;
const NOHTTPS = { SINGULARITY_NOHTTPS: '1' };
/** A cache of its own for a test (SINGULARITY_CACHEDIR; the cache itself is DIR/cache). */
const freshCache = () => k.dir('regcache-');

t.test('a plain-HTTP registry is refused without --no-https, with a message saying to use it', async t => {
  const r = await singAsync(k, ['pull', 'x.sif', `docker://${H}/tsrt/busybox:1`], { cwd: k.dir() });
  t.equal(r.code, 255);
  t.match(r.stderr, /FATAL: {3}https:\/\/127\.0\.0\.1:\d+ does not speak TLS: for a plain-HTTP registry use --no-https/);
});

t.test('pull docker:// writes NAME_TAG.sif through the cache: blobs by digest and the converted SIF, private to the user', async t => {
  const cwd = k.dir();
  const cache = freshCache();
  const r = await singAsync(k, ['pull', '--no-https', `docker://${H}/tsrt/busybox:1`], { cwd, env: { SINGULARITY_CACHEDIR: cache } });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /INFO: {4}Converting OCI blobs to SIF format/);
  const sif = path.join(cwd, 'busybox_1.sif');
  t.ok(SifImage.isSif(sif), 'busybox_1.sif is a SIF');
  t.equal(fs.statSync(sif).uid, k.user.uid, 'owned by the user who pulled it');
  const manifest = await rawManifest(reg, 'tsrt/busybox:1');
  const layer = manifest.layers[0].digest.slice(7);
  const root = path.join(cache, 'cache');
  t.ok(fs.existsSync(path.join(root, 'blob/blobs/sha256', layer)), 'the layer is cached under its digest');
  t.ok(fs.existsSync(path.join(root, 'blob/blobs/sha256', manifest.config.digest.slice(7))), 'so is the config');
  t.equal(fs.readdirSync(path.join(root, 'oci-tmp')).filter(n => !n.startsWith('.')).length, 1, 'one converted SIF');
  for (const dir of ['', 'blob', 'blob/blobs/sha256', 'oci-tmp']) {
    const st = fs.statSync(path.join(root, dir));
    t.equal(st.mode & 0o777, 0o700, `cache/${dir} is 0700`);
    t.equal(st.uid, k.user.uid, `cache/${dir} is the user's`);
  }
  const run = await singAsync(k, ['exec', sif, 'busybox', 'echo', 'pulled image runs'], { cwd });
  t.equal(run.stdout, 'pulled image runs\n', run.stderr);

  const again = await singAsync(k, ['pull', '--nohttps', 'second.sif', `docker://${H}/tsrt/busybox:1`], {
    cwd,
    env: { SINGULARITY_CACHEDIR: cache },
  });
  t.equal(again.code, 0, again.stderr);
  t.match(again.stderr, /Using cached SIF image/, 'the second pull (--nohttps, the older spelling) uses the cache');
  t.notMatch(again.stderr, /Converting/);
  t.equal(fs.readFileSync(path.join(cwd, 'second.sif')).equals(fs.readFileSync(sif)), true, 'the same SIF');

  const exists = await singAsync(k, ['pull', '--no-https', `docker://${H}/tsrt/busybox:1`], { cwd, env: { SINGULARITY_CACHEDIR: cache } });
  t.equal(exists.code, 255);
  t.match(exists.stderr, /FATAL: {3}Image file already exists: "busybox_1\.sif" - will not overwrite/);
  const forced = await singAsync(k, ['pull', '-F', '--no-https', `docker://${H}/tsrt/busybox:1`], {
    cwd,
    env: { SINGULARITY_CACHEDIR: cache },
  });
  t.equal(forced.code, 0, forced.stderr);
  const sub = path.join(cwd, 'images');
  fs.mkdirSync(sub);
  fs.chownSync(sub, k.user.uid, k.user.gid);
  const named = await singAsync(k, ['pull', '--dir', sub, '--name', 'named.sif', '--no-https', `docker://${H}/tsrt/busybox:1`], {
    cwd,
    env: { SINGULARITY_CACHEDIR: cache },
  });
  t.equal(named.code, 0, named.stderr);
  t.ok(SifImage.isSif(path.join(sub, 'named.sif')), '--dir and --name place the file');
});

t.test('Docker schema 2 and OCI manifests give the same image', async t => {
  t.equal((await rawManifest(reg, 'tsrt/layers:v1')).mediaType, 'application/vnd.oci.image.manifest.v1+json');
  t.equal((await rawManifest(reg, 'tsrt/layers:v2s2')).mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  for (const tag of ['v1', 'v2s2']) {
    const r = await singAsync(k, ['exec', `docker://${H}/tsrt/layers:${tag}`, 'cat', '/etc/keep-me', '/opaque/new'], {
      env: NOHTTPS,
      cwd: k.dir(),
    });
    t.equal(r.stdout, 'keptnew', `${tag}: ${r.stderr}`);
  }
});

t.test('layer whiteouts delete files, opaque directories hide lower layers, and no whiteout file remains', async t => {
  const r = await singAsync(
    k,
    [
      'exec',
      `docker://${H}/tsrt/layers:v1`,
      'sh',
      '-c',
      'test -e /etc/remove-me && echo remove-me-present; test -e /opaque/old && echo old-present; ls /opaque; find / -xdev -name ".wh.*"',
    ],
    { env: NOHTTPS, cwd: k.dir() },
  );
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'new\n', "only the top layer's file is in the opaque directory; nothing deleted is back");
});

t.test('the image config: ENV (PATH included), ENTRYPOINT and CMD as the runscript; WORKDIR and USER kept in the SIF', async t => {
  const cwd = k.dir();
  const pulled = await singAsync(k, ['pull', '--no-https', 'layers.sif', `docker://${H}/tsrt/layers:v1`], { cwd });
  t.equal(pulled.code, 0, pulled.stderr);
  const env = await singAsync(k, ['exec', 'layers.sif', 'sh', '-c', 'echo "$GREETING"; command -v greet'], { cwd });
  t.equal(env.stdout, 'hello "oci"\n/custom/bin/greet\n', `ENV values, and the image's PATH finding its tools: ${env.stderr}`);
  t.equal((await singAsync(k, ['run', 'layers.sif'], { cwd })).stdout, 'greet: hello "oci" [default-arg]\n', 'run: ENTRYPOINT with CMD');
  t.equal(
    (await singAsync(k, ['run', 'layers.sif', 'a b', 'c'], { cwd })).stdout,
    'greet: hello "oci" [a b c]\n',
    'run ARGS: the arguments replace CMD',
  );
  const img = SifImage.open(path.join(cwd, 'layers.sif'));
  const object = img.descriptors().find(d => d.name === 'oci-config.json');
  const config = object ? JSON.parse(img.readObject(object.id).toString()) : {};
  img.close();
  t.equal(config.WorkingDir, '/opaque', 'WORKDIR is kept in the SIF (oci-config.json)');
  t.equal(config.User, '65534', 'USER is kept in the SIF');
  const who = await singAsync(k, ['exec', 'layers.sif', 'sh', '-c', 'id -u; pwd'], { cwd });
  t.equal(
    who.stdout,
    `${k.user.uid}\n${cwd}\n`,
    "as in Singularity's native mode, the container runs as the caller in the caller's directory",
  );
  const labels = await singAsync(k, ['inspect', 'layers.sif'], { cwd });
  t.match(labels.stdout, /^org\.example\.label: layers-v1$/m, "image labels are the SIF's labels");
});

t.test('exec, run, shell, inspect and run-help take docker:// directly: converted into the cache once, then found there', async t => {
  const env = { ...NOHTTPS, SINGULARITY_CACHEDIR: freshCache() };
  const cwd = k.dir();
  const exec = await singAsync(k, ['exec', `docker://${H}/tsrt/busybox:1`, 'echo', 'exec on a URI'], { env, cwd });
  t.equal(exec.stdout, 'exec on a URI\n', exec.stderr);
  t.match(exec.stderr, /Converting OCI blobs to SIF format/);
  const run = await singAsync(k, ['run', `docker://${H}/tsrt/busybox:1`, 'sh', '-c', 'echo run on a URI'], { env, cwd });
  t.equal(run.stdout, 'run on a URI\n', run.stderr);
  t.match(run.stderr, /Using cached SIF image/);
  t.notMatch(run.stderr, /Converting/);
  const shell = await singAsync(k, ['shell', `docker://${H}/tsrt/busybox:1`], { env, cwd, input: 'echo shell on a URI\n' });
  t.equal(shell.stdout, 'shell on a URI\n', shell.stderr);
  const inspect = await singAsync(k, ['inspect', `docker://${H}/tsrt/layers:v1`], { env, cwd });
  t.match(inspect.stdout, /^org\.example\.label: layers-v1$/m, inspect.stderr);
  const help = await singAsync(k, ['run-help', `docker://${H}/tsrt/busybox:1`], { env, cwd });
  t.equal(help.stdout, 'No help sections were defined for this image\n', `run-help on a URI: ${help.stderr}`);
  const quiet = await singAsync(k, ['exec', '-q', `docker://${H}/tsrt/layers:v1`, 'true'], { env, cwd });
  t.equal(quiet.stderr, '', `exec -q: no conversion messages (${quiet.code})`);
  const flag = await singAsync(k, ['exec', '--no-https', `docker://${H}/tsrt/busybox:1`, 'true'], {
    env: { SINGULARITY_CACHEDIR: env.SINGULARITY_CACHEDIR },
    cwd,
  });
  t.equal(flag.code, 0, `--no-https as an exec flag: ${flag.stderr}`);
});

t.test("an image index or manifest list: the host's platform by default, --arch for another, an error naming what there is", async t => {
  const cwd = k.dir();
  for (const tag of ['1', 'list']) {
    const mt = (await rawManifest(reg, `tsrt/multi:${tag}`)).mediaType;
    const host = await singAsync(k, ['exec', `docker://${H}/tsrt/multi:${tag}`, 'cat', '/platform'], { env: NOHTTPS, cwd });
    t.equal(host.stdout, 'amd64', `${mt}: this machine's platform: ${host.stderr}`);
    const arm = await singAsync(k, ['pull', '--arch', 'arm64', `arm-${tag}.sif`, `docker://${H}/tsrt/multi:${tag}`], { env: NOHTTPS, cwd });
    t.equal(arm.code, 0, arm.stderr);
    t.equal(
      (await singAsync(k, ['exec', `arm-${tag}.sif`, 'cat', '/platform'], { cwd })).stdout,
      'arm64',
      `${mt}: --arch arm64 takes the arm64 image`,
    );
    const img = SifImage.open(path.join(cwd, `arm-${tag}.sif`));
    t.equal(img.primaryPartition()?.partition?.arch, 'arm64', 'and the SIF says arm64');
    img.close();
  }
  const none = await singAsync(k, ['pull', '--arch', 's390x', 'x.sif', `docker://${H}/tsrt/multi:1`], { env: NOHTTPS, cwd });
  t.equal(none.code, 255);
  t.match(none.stderr, /has no image for linux\/s390x \(it has: linux\/amd64, linux\/arm64\/v8\); choose one with --arch/);
});

t.test('a blob whose bytes do not match its digest fails the pull with a clear error, and none of it is cached', async t => {
  const manifest = await rawManifest(reg, 'tsrt/tamper:1');
  const digest: string = manifest.layers[1].digest;
  const stored = storedBlob(reg, digest);
  const bytes = fs.readFileSync(stored);
  bytes[bytes.length >> 1] ^= 0xff;
  fs.writeFileSync(stored, bytes);
  const cache = freshCache();
  const cwd = k.dir();
  const r = await singAsync(k, ['pull', 'tampered.sif', `docker://${H}/tsrt/tamper:1`], {
    env: { ...NOHTTPS, SINGULARITY_CACHEDIR: cache },
    cwd,
  });
  t.equal(r.code, 255);
  t.match(
    r.stderr,
    new RegExp(
      `blob ${digest} of ${H}/tsrt/tamper: the downloaded bytes hash to sha256:[0-9a-f]{64}, not to the digest that names them; the registry sent a corrupt or tampered blob, which was not kept`,
    ),
  );
  const hex = digest.slice(7);
  t.notOk(fs.existsSync(path.join(cache, 'cache/blob/blobs/sha256', hex)), 'not in the blob cache');
  t.notOk(fs.existsSync(path.join(cache, 'cache/blob/.partial', hex)), 'no partial download kept');
  t.same(fs.readdirSync(path.join(cache, 'cache/oci-tmp')), [], 'no converted SIF');
  t.same(fs.readdirSync(cwd), [], 'no output file');
});

t.test('an interrupted layer download resumes with a Range request where it stopped', async t => {
  const manifest = await rawManifest(reg, 'tsrt/busybox:1');
  const layer = manifest.layers[0];
  const proxy = await startProxy(t, H, { cut: { digest: layer.digest, after: Math.floor(layer.size / 2) } });
  const cwd = k.dir();
  const r = await singAsync(k, ['pull', 'resumed.sif', `docker://${proxy.host}/tsrt/busybox:1`], {
    env: { ...NOHTTPS, SINGULARITY_CACHEDIR: freshCache() },
    cwd,
  });
  t.equal(r.code, 0, r.stderr);
  const gets = proxy.log.filter(e => e.method === 'GET' && e.path.endsWith(layer.digest));
  t.equal(gets.length, 2, 'the layer was asked for twice');
  t.equal(gets[0]?.range, undefined, 'first from the start');
  const from = Number(/^bytes=(\d+)-$/.exec(gets[1]?.range ?? '')?.[1]);
  t.ok(from > 0 && from <= layer.size / 2, `then from byte ${from}, where the first stopped`);
  t.equal(gets[1]?.status, 206, 'the registry sent the rest (206 Partial Content)');
  t.equal((await singAsync(k, ['exec', 'resumed.sif', 'busybox', 'true'], { cwd })).code, 0, 'and the image is whole');
});

t.test('a pull that gave up keeps its partial download, and the next pull resumes it', async t => {
  const manifest = await rawManifest(reg, 'tsrt/layers:v1');
  const layer = manifest.layers[0];
  const step = Math.floor(layer.size / 10);
  const broken = await startProxy(t, H, { cut: { digest: layer.digest, after: step, times: 100 } });
  const cache = freshCache();
  const cwd = k.dir();
  const first = await singAsync(k, ['pull', 'r.sif', `docker://${broken.host}/tsrt/layers:v1`], {
    env: { ...NOHTTPS, SINGULARITY_CACHEDIR: cache },
    cwd,
  });
  t.equal(first.code, 255);
  t.match(
    first.stderr,
    new RegExp(
      `blob ${layer.digest} of ${broken.host}/tsrt/layers: download incomplete after 5 attempts \\(\\d+ of ${layer.size} bytes; .*\\); run the command again to resume`,
    ),
  );
  const partial = path.join(cache, 'cache/blob/.partial', layer.digest.slice(7));
  const kept = fs.statSync(partial).size;
  t.ok(kept > 0 && kept < layer.size, `${kept} bytes kept in cache/blob/.partial`);
  const working = await startProxy(t, H);
  const second = await singAsync(k, ['pull', 'r.sif', `docker://${working.host}/tsrt/layers:v1`], {
    env: { ...NOHTTPS, SINGULARITY_CACHEDIR: cache },
    cwd,
  });
  t.equal(second.code, 0, second.stderr);
  const get = working.log.find(e => e.method === 'GET' && e.path.endsWith(layer.digest));
  t.equal(get?.range, `bytes=${kept}-`, 'the next pull asked only for the rest');
  t.notOk(fs.existsSync(partial), 'the finished blob left .partial');
  t.ok(fs.existsSync(path.join(cache, 'cache/blob/blobs/sha256', layer.digest.slice(7))), 'and is in the cache');
});

t.test('a cached blob that no longer matches its digest is not used: it is fetched again', async t => {
  const cache = freshCache();
  const cwd = k.dir();
  const env = { ...NOHTTPS, SINGULARITY_CACHEDIR: cache };
  t.equal((await singAsync(k, ['pull', 'a.sif', `docker://${H}/tsrt/busybox:1`], { env, cwd })).code, 0);
  const layer = (await rawManifest(reg, 'tsrt/busybox:1')).layers[0].digest.slice(7);
  const cached = path.join(cache, 'cache/blob/blobs/sha256', layer);
  fs.appendFileSync(cached, 'garbage');
  for (const f of fs.readdirSync(path.join(cache, 'cache/oci-tmp'))) fs.rmSync(path.join(cache, 'cache/oci-tmp', f));
  const proxy = await startProxy(t, H);
  const r = await singAsync(k, ['pull', 'b.sif', `docker://${proxy.host}/tsrt/busybox:1`], { env, cwd });
  t.equal(r.code, 0, r.stderr);
  t.ok(
    proxy.log.some(e => e.method === 'GET' && e.path.endsWith(layer)),
    'the layer was downloaded again',
  );
  t.equal(crypto.createHash('sha256').update(fs.readFileSync(cached)).digest('hex'), layer, 'and the cache holds the right bytes');
});

t.test('layers are downloaded in parallel', async t => {
  const proxy = await startProxy(t, H, { holdUntil: 2 });
  const r = await singAsync(k, ['pull', 'p.sif', `docker://${proxy.host}/tsrt/layers:v1`], {
    env: { ...NOHTTPS, SINGULARITY_CACHEDIR: freshCache() },
    cwd: k.dir(),
  });
  t.equal(r.code, 0, r.stderr);
  t.ok(proxy.maxInFlight >= 2, `${proxy.maxInFlight} blob downloads were in progress at once`);
});

t.test('a progress bar is drawn on a terminal, and nothing of it otherwise', async t => {
  const cwd = k.dir();
  const args = ['pull', 'tty.sif', `docker://${H}/tsrt/fresh:1`];
  const c = k.command(args, { env: { ...NOHTTPS, SINGULARITY_CACHEDIR: freshCache() }, cwd });
  const line = [c.file, ...c.argv].map(a => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const tty = await runAsync('/usr/bin/script', ['-qec', line, '/dev/null'], { cwd });
  t.equal(tty.code, 0, tty.stdout);
  t.match(tty.stdout, /\rCopying blobs \[[=> ]{30}\] [\d.]+ (KiB|MiB) \/ [\d.]+ (KiB|MiB)/, 'a bar redrawn in place (carriage return)');
  const piped = await singAsync(k, ['pull', 'pipe.sif', `docker://${H}/tsrt/fresh:1`], {
    env: { ...NOHTTPS, SINGULARITY_CACHEDIR: freshCache() },
    cwd,
  });
  t.equal(piped.code, 0, piped.stderr);
  t.notMatch(piped.stderr, /Copying blobs|\r/, 'stderr is a pipe: no bar');
});

t.test('cache list and cache clean (--type, --days, --dry-run, and the question without --force)', async t => {
  const cache = freshCache();
  const env = { ...NOHTTPS, SINGULARITY_CACHEDIR: cache };
  const cwd = k.dir();
  for (const tag of ['busybox:1', 'layers:v1'])
    t.equal((await singAsync(k, ['pull', `${tag.replace(':', '-')}.sif`, `docker://${H}/tsrt/${tag}`], { env, cwd })).code, 0);
  const summary = await singAsync(k, ['cache', 'list'], { env });
  t.match(
    summary.stdout,
    /^There are 2 container file\(s\) using [\d.]+ MiB and \d+ oci blob file\(s\) using [\d.]+ (KiB|MiB) of space\nTotal space used: [\d.]+ MiB\n$/,
    summary.stderr,
  );
  const verbose = await singAsync(k, ['cache', 'list', '-v', '--type', 'oci'], { env });
  t.match(
    verbose.stdout,
    /^NAME +DATE CREATED +SIZE +TYPE\n[0-9a-f]{22} +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +[\d.]+ MiB +oci-tmp\n[0-9a-f]{22} .* oci-tmp\n\nThere are 2 container file\(s\) using [\d.]+ MiB of space\n/,
    'one line per SIF, only the type asked for',
  );

  const root = path.join(cache, 'cache');
  const [older] = fs.readdirSync(path.join(root, 'oci-tmp'));
  const tenDaysAgo = new Date(Date.now() - 10 * 24 * 3600 * 1000);
  fs.utimesSync(path.join(root, 'oci-tmp', older!), tenDaysAgo, tenDaysAgo);

  const asked = await singAsync(k, ['cache', 'clean'], { env, input: 'n\n' });
  t.match(asked.stdout, /Do you want to continue\? \[y\/N\] $/);
  t.match(asked.stderr, /Handle cleanup canceled/);
  const dry = await singAsync(k, ['cache', 'clean', '--dry-run'], { env });
  t.match(dry.stdout, /User requested a dry run/);
  t.match(dry.stderr, /Removing oci-tmp cache entry: /);
  t.equal(fs.readdirSync(path.join(root, 'oci-tmp')).length, 2, 'a dry run removes nothing');

  const byAge = await singAsync(k, ['cache', 'clean', '-f', '--days', '5', '--type', 'oci'], { env });
  t.equal(byAge.code, 0, byAge.stderr);
  t.same(
    fs.readdirSync(path.join(root, 'oci-tmp')).filter(n => n !== older),
    fs.readdirSync(path.join(root, 'oci-tmp')),
    '--days 5 removed the 10-day-old SIF',
  );
  t.equal(fs.readdirSync(path.join(root, 'oci-tmp')).length, 1, 'and kept the new one');
  const blobs = fs.readdirSync(path.join(root, 'blob/blobs/sha256')).length;
  t.ok(blobs > 0, '--type oci left the blobs');

  const blobClean = await singAsync(k, ['cache', 'clean', '-f', '-T', 'blob'], { env });
  t.equal(blobClean.code, 0, blobClean.stderr);
  t.equal(fs.readdirSync(path.join(root, 'blob/blobs/sha256')).length, 0, '--type blob removed the blobs');
  t.equal(fs.readdirSync(path.join(root, 'oci-tmp')).length, 1, 'and left the SIF');
  const all = await singAsync(k, ['cache', 'clean', '--force'], { env });
  t.equal(all.code, 0, all.stderr);
  t.match(
    (await singAsync(k, ['cache', 'list'], { env })).stdout,
    /^There are 0 container file\(s\) using 0\.00 KiB and 0 oci blob file\(s\) using 0\.00 KiB of space/,
  );
  const bad = await singAsync(k, ['cache', 'clean', '-f', '--type', 'nonsense'], { env });
  t.equal(bad.code, 1);
  t.match(bad.stderr, /invalid cache type "nonsense"/);
});

t.test('build: a docker:// source, and Bootstrap: docker with Registry: and Namespace: in front of From:', async t => {
  const cwd = k.dir();
  const direct = await singAsync(k, ['build', '--no-https', 'direct.sif', `docker://${H}/tsrt/busybox:1`], { cwd });
  t.equal(direct.code, 0, direct.stderr);
  t.equal((await singAsync(k, ['exec', 'direct.sif', 'busybox', 'true'], { cwd })).code, 0);
  fs.writeFileSync(
    path.join(cwd, 'image.def'),
    `Bootstrap: docker\nRegistry: ${H}\nNamespace: tsrt\nFrom: layers:v1\n\n%runscript\n    echo "from the def file: $GREETING"\n`,
  );
  const def = await singAsync(k, ['build', 'def.sif', 'image.def'], { cwd, env: NOHTTPS });
  t.equal(def.code, 0, def.stderr);
  t.equal(
    (await singAsync(k, ['run', 'def.sif'], { cwd })).stdout,
    'from the def file: hello "oci"\n',
    "the image's ENV under the def file's runscript",
  );
  t.equal((await singAsync(k, ['exec', 'def.sif', 'cat', '/opaque/new'], { cwd })).stdout, 'new', 'its layers');
  const missing = await singAsync(k, ['build', 'm.sif', `docker://${H}/tsrt/nothere:1`], { cwd, env: NOHTTPS });
  t.equal(missing.code, 255);
  t.match(
    missing.stderr,
    /FATAL: {3}docker:\/\/127\.0\.0\.1:\d+\/tsrt\/nothere:1 line 2: manifest of 127\.0\.0\.1:\d+\/tsrt\/nothere:1: not found in 127\.0\.0\.1:\d+ \(HTTP 404 MANIFEST_UNKNOWN/,
  );
});

t.test('docker-archive:, oci-archive: and oci: go straight to exec and run', async t => {
  const cwd = k.dir();
  const layoutDir = path.join(cwd, 'layout');
  fs.mkdirSync(layoutDir);
  t.equal(spawnSync('tar', ['-xf', images.ociArchive, '-C', layoutDir]).status, 0);
  spawnSync('chmod', ['-R', 'a+rX', layoutDir]);
  for (const [source, what] of [
    [`docker-archive:${images.dockerArchive}`, 'docker-archive'],
    [`oci-archive:${images.ociArchive}`, 'oci-archive'],
    [`oci:${layoutDir}`, 'oci layout'],
  ]) {
    const r = await singAsync(k, ['exec', source!, 'busybox', 'echo', what!], { cwd });
    t.equal(r.stdout, `${what}\n`, `${source}: ${r.stderr}`);
  }
  const tagged = await singAsync(k, ['run', `oci:${layout.dir}:v1`, 'from', 'a layout'], { cwd });
  t.equal(tagged.stdout, 'greet: hello "oci" [from a layout]\n', `oci:DIR:TAG picks the tagged image: ${tagged.stderr}`);
  const absent = await singAsync(k, ['exec', 'docker-archive:/nonexistent.tar', 'true'], { cwd });
  t.equal(absent.code, 255);
  t.match(
    absent.stderr,
    /^FATAL: {3}docker-archive:\/nonexistent\.tar: \/nonexistent\.tar does not exist$/m,
    'named as given, not as a path under the cwd',
  );
});

t.test('library://, shub:// and docker-daemon: are refused by name: there is no service here to serve them', async t => {
  const cwd = k.dir();
  for (const args of [
    ['exec', 'library://alpine', 'true'],
    ['pull', 'library://alpine'],
    ['build', 'x.sif', 'library://alpine'],
    ['run', 'shub://a/b'],
    ['exec', 'docker-daemon:alpine:latest', 'true'],
  ]) {
    const r = await singAsync(k, args, { cwd });
    t.equal(r.code, 255, args.join(' '));
    t.match(
      r.stderr,
      /^FATAL: {3}(library:\/\/alpine: library:\/\/ images need the Sylabs Cloud Library, which tsrt-singularity does not talk to|shub:\/\/a\/b: shub:\/\/ images come from Singularity Hub, which is retired|docker-daemon:alpine:latest: docker-daemon: images are read from a Docker daemon)/m,
      args.join(' '),
    );
  }
});

t.test('--disable-cache pulls without leaving anything in the cache', async t => {
  const cache = freshCache();
  const cwd = k.dir();
  const r = await singAsync(k, ['pull', '--disable-cache', 'nc.sif', `docker://${H}/tsrt/busybox:1`], {
    env: { ...NOHTTPS, SINGULARITY_CACHEDIR: cache },
    cwd,
  });
  t.equal(r.code, 0, r.stderr);
  t.ok(SifImage.isSif(path.join(cwd, 'nc.sif')));
  t.same(fs.readdirSync(cache), [], 'no cache directory was even made');
});

t.test("the cache must be the user's own and private (R9): a shared or symlinked cache directory is refused", async t => {
  const parent = k.dir();
  fs.mkdirSync(path.join(parent, 'cache'), { mode: 0o777 });
  fs.chmodSync(path.join(parent, 'cache'), 0o777);
  fs.chownSync(path.join(parent, 'cache'), k.user.uid, k.user.gid);
  const open = await singAsync(k, ['exec', `docker://${H}/tsrt/busybox:1`, 'true'], { env: { ...NOHTTPS, SINGULARITY_CACHEDIR: parent } });
  t.equal(open.code, 255);
  t.match(open.stderr, /cache directory .*\/cache is writable by group or others \(mode 0777\): remove it or chmod go-w it/);
  const linked = k.dir();
  fs.symlinkSync(path.join(parent, 'cache'), path.join(linked, 'cache'));
  const link = await singAsync(k, ['exec', `docker://${H}/tsrt/busybox:1`, 'true'], { env: { ...NOHTTPS, SINGULARITY_CACHEDIR: linked } });
  t.equal(link.code, 255);
  t.match(link.stderr, /cache directory .*\/cache is a symbolic link/);
  const foreign = k.dir();
  fs.mkdirSync(path.join(foreign, 'cache'), { mode: 0o700 });
  fs.chownSync(path.join(foreign, 'cache'), k.user.uid, k.user.gid);
  fs.mkdirSync(path.join(foreign, 'cache', 'oci-tmp'), { mode: 0o755 });
  fs.chownSync(path.join(foreign, 'cache', 'oci-tmp'), 65534, 65534);
  const other = await singAsync(k, ['exec', `docker://${H}/tsrt/busybox:1`, 'true'], {
    env: { ...NOHTTPS, SINGULARITY_CACHEDIR: foreign },
  });
  t.equal(other.code, 255);
  t.match(
    other.stderr,
    /cache directory .*\/cache\/oci-tmp is owned by uid 65534, not by you \(uid \d+\)/,
    'a directory planted by another user',
  );
});
