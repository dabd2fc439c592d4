// The cache of unpacked images as a user without FUSE meets it (issue 16, "Many ranks, one node, no FUSE"):
// a type of the image cache that `cache list` shows and `cache clean --type sandbox` empties, kept within a size
// limit by removing the least recently used entries, and never losing an entry a running container uses.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kit, sandbox, sif, siteConfigSetup, type SingOptions } from '../singularity-run-kit.js';

const k = kit(t);
t.setTimeout(10 * 60_000);

/** PATH without squashfuse and fuse2fs: runs use the unpacked sandbox, as for a user without /dev/fuse. */
const noFuseBin = ((): string => {
  const dir = k.dir('singrun-nofuse-');
  fs.chmodSync(dir, 0o755);
  for (const name of fs.readdirSync('/usr/bin')) {
    if (!/^(squashfuse|fuse2fs)/.test(name)) fs.symlinkSync(path.join('/usr/bin', name), path.join(dir, name));
  }
  return dir;
})();

const images = Object.fromEntries(['a', 'b', 'c'].map(n => [n, sif(k, sandbox(k, { files: { 'etc/which': `image ${n}\n` } }))])) as Record<
  'a' | 'b' | 'c',
  string
>;

/** A fresh cache for one test: the SINGULARITY_CACHEDIR and where its sandboxes are. */
function freshCache(): { env: Record<string, string>; sandboxes: string } {
  const dir = k.dir('singrun-cachedir-');
  return { env: { PATH: noFuseBin, SINGULARITY_CACHEDIR: dir }, sandboxes: path.join(dir, 'cache', 'sandbox') };
}

/** The entries (by the image they hold) in a sandbox cache. */
function cached(sandboxes: string): string[] {
  if (!fs.existsSync(sandboxes)) return [];
  return fs
    .readdirSync(sandboxes)
    .filter(n => /^[0-9a-f]{32}$/.test(n))
    .map(n =>
      fs
        .readFileSync(path.join(sandboxes, n, 'rootfs', 'etc', 'which'), 'utf8')
        .trim()
        .slice('image '.length),
    )
    .sort();
}

function which(image: string, o: SingOptions): string {
  const r = k.sing(['-v', 'exec', image, 'cat', '/etc/which'], o);
  if (r.code !== 0) throw new Error(`exec ${image}: ${r.stderr}`);
  return r.stderr;
}

/** Bytes the unpacked tree of one image takes (all three are the same size, give or take a block). */
function entryBytes(sandboxes: string): number {
  const key = fs.readdirSync(sandboxes).find(n => /^[0-9a-f]{32}$/.test(n))!;
  return JSON.parse(fs.readFileSync(path.join(sandboxes, key, 'source.json'), 'utf8')).bytes as number;
}

t.test('cache list shows unpacked sandboxes; cache clean --type sandbox keeps the one a running instance uses', async t => {
  const { env, sandboxes } = freshCache();
  which(images.a, { env });
  const start = k.sing(['instance', 'start', images.b, 'tsrtcache1'], { env });
  t.equal(start.code, 0, `instance start: ${start.stderr}`);
  t.teardown(() => k.sing(['instance', 'stop', 'tsrtcache1'], { env }));
  t.same(cached(sandboxes), ['a', 'b']);

  const list = k.sing(['cache', 'list', '--type', 'sandbox'], { env });
  t.match(list.stdout, /^There are 2 unpacked image sandbox\(es\) using \d+(\.\d+)? [KM]iB of space$/m, list.stderr);
  const all = k.sing(['cache', 'list'], { env });
  t.match(all.stdout, /^There are 2 unpacked image sandbox\(es\)/m, 'the default list counts them too');

  const dry = k.sing(['cache', 'clean', '--type', 'sandbox', '--dry-run'], { env });
  t.equal(dry.code, 0, dry.stderr);
  t.same(cached(sandboxes), ['a', 'b'], '--dry-run removes nothing');

  const clean = k.sing(['cache', 'clean', '--force', '--type', 'sandbox'], { env });
  t.equal(clean.code, 0, clean.stderr);
  t.match(clean.stderr, /Keeping sandbox cache entry [0-9a-f]{32}: a running container uses it/);
  t.same(cached(sandboxes), ['b'], "the unused entry went, the instance's stayed");
  const run = k.sing(['exec', 'instance://tsrtcache1', 'cat', '/etc/which'], { env });
  t.equal(run.stdout, 'image b\n', `the instance still runs from it: ${run.stderr}`);

  t.equal(k.sing(['instance', 'stop', 'tsrtcache1'], { env }).code, 0);
  t.equal(k.sing(['cache', 'clean', '--force', '--type', 'sandbox'], { env }).code, 0);
  t.same(cached(sandboxes), [], 'once the instance stopped, clean removes it');
  t.same(fs.readdirSync(sandboxes), [], 'no lock or leftover remains');

  const other = k.sing(['cache', 'clean', '--force', '--type', 'oci,sandbox,bootstrap'], { env });
  t.equal(other.code, 0, `the new types combine with Singularity's: ${other.stderr}`);
  const bad = k.sing(['cache', 'clean', '--force', '--type', 'sandboxes'], { env });
  t.match(bad.stderr, /invalid cache type "sandboxes" \(valid: library, oci, shub, blob, net, oras, sandbox, bootstrap, all\)/);
});

t.test('a size limit: the least recently used entries not in use are removed when a new one is unpacked', async t => {
  const { env, sandboxes } = freshCache();
  which(images.a, { env });
  // Room for one and a half images: every new entry pushes out the older ones no run holds.
  const limited = { ...env, SINGULARITY_SANDBOX_CACHE_MAXSIZE: `${Math.floor((entryBytes(sandboxes) * 1.5) / 1024)}K` };
  t.match(
    which(images.b, { env: limited }),
    /using a newly extracted sandbox .*; 1 least recently used sandbox\(es\) removed to stay within the cache's size limit/,
  );
  t.same(cached(sandboxes), ['b'], 'a, the older one, went');

  const start = k.sing(['instance', 'start', images.b, 'tsrtcache2'], { env: limited });
  t.equal(start.code, 0, `instance start: ${start.stderr}`);
  t.teardown(() => k.sing(['instance', 'stop', 'tsrtcache2'], { env }));
  t.notMatch(which(images.c, { env: limited }), /removed to stay within/, 'over the limit, but b is in use and c was just made');
  t.same(cached(sandboxes), ['b', 'c'], 'an entry in use is never evicted');

  t.equal(k.sing(['instance', 'stop', 'tsrtcache2'], { env }).code, 0);
  t.match(which(images.a, { env: limited }), /2 least recently used sandbox\(es\) removed/);
  t.same(cached(sandboxes), ['a'], 'b (least recently used) and then c went');

  const bad = k.sing(['exec', images.a, 'true'], { env: { ...env, SINGULARITY_SANDBOX_CACHE_MAXSIZE: 'lots' } });
  t.match(bad.stderr, /SINGULARITY_SANDBOX_CACHE_MAXSIZE=lots: not a size/, 'a bad limit is an error naming it');
});

t.test('the site\'s "sandbox cache max size" is the most a user gets: the environment can lower it, not raise it', async t => {
  const { env, sandboxes } = freshCache();
  const site = siteConfigSetup(t, { 'singularity.conf': 'sandbox cache max size = 1K\n' });
  const siteRun = (image: string, extra: Record<string, string> = {}) =>
    which(image, { env: { ...env, ...extra }, hostSetup: site.hostSetup });
  siteRun(images.a);
  t.match(siteRun(images.b, { SINGULARITY_SANDBOX_CACHE_MAXSIZE: '10G' }), /1 least recently used sandbox\(es\) removed/);
  t.same(cached(sandboxes), ['b'], "the user's 10G did not raise the site's 1K");

  const badSite = siteConfigSetup(t, { 'singularity.conf': 'sandbox cache max size = huge\n' });
  const r = k.sing(['exec', images.a, 'true'], { env, hostSetup: badSite.hostSetup });
  t.match(r.stderr, /"sandbox cache max size" must be a size in MiB \(or with a K, M, G or T suffix\), got "huge"/);
  t.not(r.code, 0);
});
