// Issue 13, finding 5 (R9): the cache of unpacked images (the sandbox an unprivileged user without FUSE runs a
// SIF from) trusted any entry with a `.complete` file, whoever made it, under a key that did not depend on the
// user; with the cache under a shared parent (the README's Slurm recipe) another user planted a rootfs the
// victim then ran. A SIF whose squashfs was corrupted in the middle was unpacked with errors ignored and cached
// as complete. Now the cache is per user in a verified private directory, an entry is made in a private
// temporary directory and renamed into place only after an extraction that reported no error, and it is
// verified before use (its owner, and the identity and digest of what it was unpacked from). Concurrent runs
// of one image (the ranks of a job on a node) share one extraction.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inspectImage, sandboxKey } from '../../src/sif/mount.js';
import { type Result } from '../helpers.js';
import { multiUser, type MultiUser, type User } from '../multiuser-kit.js';
import { SINGULARITY, kit, sandbox, sif } from '../singularity-run-kit.js';

const mu = multiUser(t);
const k = kit(t);
const { victim, attacker } = mu;
const MARKER = 'planted by another user';

/**
 * PATH for the victim without squashfuse and fuse2fs, so the extracted sandbox is what runs the image, as for
 * a user without access to /dev/fuse (as on this host, where /dev/fuse is root's: then this changes nothing).
 */
const noFuseBin = ((): string => {
  const dir = mu.owned(victim, 0o755, 'tsrt-mu-bin-');
  for (const name of fs.readdirSync('/usr/bin')) {
    if (!/^(squashfuse|fuse2fs)/.test(name)) fs.symlinkSync(path.join('/usr/bin', name), path.join(dir, name));
  }
  return dir;
})();

const image = sif(k, sandbox(k, { files: { 'etc/origin': "the victim's image\n" } }));
/** The files planted entries are made of (a second busybox sandbox). */
const sandboxOf = sandbox(k);
// -v: the INFO line saying whether the sandbox was unpacked now or taken from the cache.
const showRoot = ['-v', 'exec', image, 'sh', '-c', 'cat /etc/origin /planted 2>/dev/null; true'];

function singAs(cacheDir: string, args: string[]): Result {
  const env = { PATH: noFuseBin, XDG_RUNTIME_DIR: mu.owned(victim, 0o700, 'tsrt-mu-xdg-'), HOME: k.home, SINGULARITY_CACHEDIR: cacheDir };
  return mu.as(victim, [SINGULARITY, ...args], { env });
}

/** An unpacked rootfs that is not the image's: the busybox sandbox with /planted. */
function plantEntry(m: MultiUser, entry: string, owner: User): void {
  fs.mkdirSync(entry, { recursive: true });
  const rootfs = path.join(entry, 'rootfs');
  fs.cpSync(sandboxOf, rootfs, { recursive: true, verbatimSymlinks: true });
  fs.writeFileSync(path.join(rootfs, 'planted'), `${MARKER}\n`);
  // Every mount target the victim's run binds already there: overlayfs cannot copy up a directory owned by
  // an id the victim's user namespace does not map, so a planted tree that needs none runs as it is.
  for (const f of ['etc/hosts', 'etc/localtime', 'etc/resolv.conf']) fs.writeFileSync(path.join(rootfs, f), '');
  fs.mkdirSync(path.join(rootfs, k.home), { recursive: true });
  fs.writeFileSync(path.join(entry, '.complete'), `${image}\n`);
  m.give(owner, entry, 0o755, true);
}

/** The key the old cache used: anyone who can stat the image computes it. */
function oldKey(): string {
  const src = inspectImage(image);
  const st = fs.statSync(image, { bigint: true });
  const id = [fs.realpathSync(image), st.dev, st.ino, st.size, st.mtimeNs, src.offset, src.size].join('\0');
  return createHash('sha256').update(id).digest('hex').slice(0, 32);
}

t.test('finding 5: an entry another user planted under a shared cache parent is never run', async tt => {
  // The README's Slurm recipe: a shared cache parent (1777) with a directory per user, made here by the
  // attacker first, holding an entry for the victim's image.
  const cache = path.join(mu.shared('tsrt-mu-cache-'), victim.name);
  plantEntry(mu, path.join(cache, 'cache', 'sandbox', oldKey()), attacker);
  mu.give(attacker, cache, 0o777);
  mu.give(attacker, path.join(cache, 'cache', 'sandbox'), 0o777);
  const r = singAs(cache, showRoot);
  tt.notMatch(r.stdout, MARKER, 'the victim never runs the planted rootfs');
  tt.equal(r.code, 255, 'the cache is refused');
  tt.match(r.stderr, new RegExp(`FATAL: .*${cache}.*owned by uid ${attacker.uid}`), 'naming the directory and its owner');
});

t.test("finding 5: a cache of the victim's own below a directory another user owns is refused (its path could be swapped)", async tt => {
  // The attacker made only the per-user directory, empty: the victim's tsrt makes its cache inside, but the
  // attacker could rename it away after the checks and put a tree of theirs at the path handed to the mount.
  const parent = path.join(mu.shared('tsrt-mu-cache-'), victim.name);
  fs.mkdirSync(parent);
  mu.give(attacker, parent, 0o777);
  const r = singAs(parent, showRoot);
  tt.equal(r.code, 255, 'the cache is refused');
  tt.match(r.stderr, new RegExp(`FATAL: .*${parent}/cache/sandbox is inside ${parent}, which is owned by uid ${attacker.uid}`));
  tt.same(fs.readdirSync(path.join(parent, 'cache', 'sandbox')), [], 'nothing was unpacked there');
});

t.test("finding 5: in the victim's own cache, an entry is used only when its owner and source record check out", async tt => {
  tt.test('an entry owned by someone else (root) is refused, not run', async t3 => {
    const cache = mu.owned(victim, 0o700, 'tsrt-mu-cache-');
    plantEntry(mu, path.join(cache, 'cache', 'sandbox', sandboxKey(inspectImage(image), victim.uid)), { uid: 0, gid: 0, name: 'root' });
    fs.chownSync(path.join(cache, 'cache', 'sandbox'), victim.uid, victim.gid);
    const r = singAs(cache, showRoot);
    t3.notMatch(r.stdout, MARKER, 'the entry is not run');
    t3.equal(r.code, 255, r.stdout);
    t3.match(r.stderr, /FATAL: .*owned by uid 0/, 'the error says whose it is');
  });
  tt.test("an entry of the victim's with `.complete` but no record of its source is unpacked again", async t3 => {
    const cache = mu.owned(victim, 0o700, 'tsrt-mu-cache-');
    plantEntry(mu, path.join(cache, 'cache', 'sandbox', sandboxKey(inspectImage(image), victim.uid)), victim);
    mu.give(victim, path.join(cache, 'cache', 'sandbox'), 0o700);
    const r = singAs(cache, showRoot);
    t3.equal(r.code, 0, r.stderr);
    t3.equal(r.stdout, "the victim's image\n", "the image's own files, freshly unpacked");
    t3.match(r.stderr, /a newly extracted sandbox/);
  });
});

t.test('finding 5: a SIF whose squashfs is corrupted in the middle fails, and nothing is cached', async tt => {
  // Text compresses, so its blocks are stored compressed and a damaged one cannot be decompressed.
  const text = Array.from({ length: 200_000 }, (_, i) => `line ${i} ${(i * 7919) % 104729}`).join('\n');
  const bad = sif(k, sandbox(k, { files: { 'data/big.txt': text } }));
  const part = inspectImage(bad);
  const fd = fs.openSync(bad, 'r+');
  for (const at of [0.4, 0.5, 0.6]) fs.writeSync(fd, Buffer.alloc(64, 0xff), 0, 64, part.offset + Math.floor(part.size * at));
  fs.closeSync(fd);
  const cache = mu.owned(victim, 0o700, 'tsrt-mu-cache-');
  const r = singAs(cache, ['exec', bad, 'true']);
  tt.equal(r.code, 255, `exec fails: ${r.stderr}`);
  tt.match(r.stderr, /FATAL: .*unsquashfs/, 'the error says the unpacking failed');
  const entries = fs.existsSync(path.join(cache, 'cache', 'sandbox')) ? fs.readdirSync(path.join(cache, 'cache', 'sandbox')) : [];
  tt.same(
    entries.filter(e => !e.endsWith('.lock')),
    [],
    'no entry (complete or partial) is left in the cache',
  );
});

t.test('finding 5: concurrent runs of one image (the ranks of a job on a node) unpack it once', async tt => {
  const cache = mu.owned(victim, 0o700, 'tsrt-mu-cache-');
  const env = [
    `PATH=${noFuseBin}`,
    `XDG_RUNTIME_DIR=${mu.owned(victim, 0o700, 'tsrt-mu-xdg-')}`,
    `HOME=${k.home}`,
    `SINGULARITY_CACHEDIR=${cache}`,
  ];
  const ranks = 4;
  const runs = await Promise.all(
    Array.from(
      { length: ranks },
      () =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>(resolve => {
          const c = spawn(
            '/usr/sbin/runuser',
            ['-u', victim.name, '--', '/usr/bin/env', '-i', ...env, SINGULARITY, '-v', 'exec', image, 'cat', '/etc/origin'],
            { stdio: ['ignore', 'pipe', 'pipe'] },
          );
          let stdout = '';
          let stderr = '';
          c.stdout.on('data', d => {
            stdout += d;
          });
          c.stderr.on('data', d => {
            stderr += d;
          });
          c.on('close', code => resolve({ code, stdout, stderr }));
        }),
    ),
  );
  for (const r of runs) tt.match(r, { code: 0, stdout: "the victim's image\n" }, r.stderr);
  const fresh = runs.filter(r => /a newly extracted sandbox/.test(r.stderr)).length;
  const cached = runs.filter(r => /the cached extracted sandbox/.test(r.stderr)).length;
  tt.same({ fresh, cached }, { fresh: 1, cached: ranks - 1 }, 'one rank unpacked the image, the others waited for it and used its copy');
  tt.same(fs.readdirSync(path.join(cache, 'cache', 'sandbox')).filter(e => !e.endsWith('.lock')).length, 1, 'one entry in the cache');
});
