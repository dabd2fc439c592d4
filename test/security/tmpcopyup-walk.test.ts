// Issue 13, finding 1 (R10): tmpcopyup's directory walk (copy_tree in native/executor/executor.c) reused the
// getdents byte count as readlinkat's result. A short link target ended the batch early, so the entries after
// the first symlink of a batch were never copied; a target longer than the getdents buffer made the walk
// parse past the bytes getdents returned, into the link target itself, so an image could name `../..` paths
// that were resolved on the host before pivot_root and copied (by root) into the container.
//
// Each test fills the image's directory at a tmpcopyup tmpfs destination, creates the container (the init then
// waits on exec.fifo, every mount done) and compares the tmpfs, read from the host through /proc/<init>/root,
// with the image's directory: names, types, modes, owners, link targets, device numbers and file contents.
//
// The property test is seeded: TSRT_TMPCOPYUP_SEED=<seed> replays a run, TSRT_TMPCOPYUP_TREES resizes it.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Scope } from '../helpers.js';
import { rtFiles, securityRoot, treeSnapshot } from '../security-kit.js';
import { Rng } from '../robustness/fixtures/configgen.js';
import { randomTree } from './fixtures/random-tree.js';

const sec = securityRoot(t, 'tmpcopyup-walk');
t.setTimeout(15 * 60_000);

const SEED = Number(process.env['TSRT_TMPCOPYUP_SEED'] ?? Math.floor(Math.random() * 2 ** 32));
const TREES = Number(process.env['TSRT_TMPCOPYUP_TREES'] ?? 8);

/** The image's directory behind a tmpcopyup tmpfs at /seed, filled by `fill` before the container is created. */
function seededBundle(s: Scope, fill: (seed: string) => void): { bundle: string; seed: string } {
  const bundle = s.bundle(['true'], spec => {
    spec.mounts.push({ destination: '/seed', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'tmpcopyup', 'mode=755'] });
  });
  const seed = path.join(bundle, 'rootfs', 'seed');
  fs.mkdirSync(seed, { mode: 0o755 });
  fs.chmodSync(seed, 0o755);
  fill(seed);
  return { bundle, seed };
}

/** Creates the container and returns its init's pid, or the create error. */
function createdInit(s: Scope, bundle: string): { pid?: number; error?: string } {
  const id = s.id();
  const r = rtFiles(sec.root, s, ['create', '-b', bundle, id]);
  if (r.code !== 0) return { error: `create exited ${r.code}: ${r.stderr}` };
  const st = sec.rt(['state', id]);
  return { pid: JSON.parse(st.stdout).pid };
}

/** The lines of two tree snapshots that differ (a few of each side), or [] when the trees are the same. */
function treeDiff(copy: string, source: string): string[] {
  const a = copy.split('\n');
  const b = source.split('\n');
  const inB = new Set(b);
  const inA = new Set(a);
  return [
    ...a
      .filter(l => !inB.has(l))
      .slice(0, 5)
      .map(l => `only in the copy:  ${l.slice(0, 300)}`),
    ...b
      .filter(l => !inA.has(l))
      .slice(0, 5)
      .map(l => `only in the image: ${l.slice(0, 300)}`),
  ];
}

/** The tmpfs of a created container is exactly the image's directory. */
function copiesExactly(tt: any, s: Scope, seed: string, bundle: string, what: string): number | undefined {
  const { pid, error } = createdInit(s, bundle);
  tt.notOk(error, `create succeeds${error ? `: ${error}` : ''}`);
  if (pid === undefined) return undefined;
  const diff = treeDiff(treeSnapshot(`/proc/${pid}/root/seed`), treeSnapshot(seed));
  tt.same(diff, [], what);
  return pid;
}

/** The size of a directory's getdents64 record for an entry called `name` (8-byte aligned, header 19 bytes). */
function recordBytes(name: string): number {
  return (19 + Buffer.byteLength(name) + 1 + 7) & ~7;
}

t.test('finding 1: the entries after a symlink in the same getdents batch are copied too', async tt => {
  const s = sec.scope(tt);
  // 30 files and three symlinks with short targets in one small directory: one batch, and whatever order the
  // filesystem returns, at least one symlink has entries after it unless all three come last.
  const { bundle, seed } = seededBundle(s, dir => {
    for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(dir, `file${i}`), `content ${i}\n`);
    for (const [name, target] of [
      ['la', 'a'],
      ['lb', 'b'],
      ['lc', '/c'],
    ])
      fs.symlinkSync(target!, path.join(dir, name!));
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.symlinkSync('x', path.join(dir, 'sub', 'link'));
    fs.writeFileSync(path.join(dir, 'sub', 'after'), 'after the link\n');
  });
  copiesExactly(tt, s, seed, bundle, "all 35 entries and the subdirectory's two are in the tmpfs");
});

t.test('finding 1: a link target longer than the getdents buffer cannot make the walk read a host file', async tt => {
  const s = sec.scope(tt);
  // The canary: a host file the attacker names. It is readable by root only, as a host secret would be.
  const hostDir = s.dir();
  const canary = path.join(hostDir, 'canary');
  fs.writeFileSync(canary, `host secret ${process.pid}\n`, { mode: 0o600 });
  // The crafted directory. The old walk read 2048-byte getdents batches into a buffer followed on its stack by
  // the link-target buffer. The entries add up to exactly 2048 bytes of records, so after the last real one the
  // walk (still going, up to the link's length) read the link target as the next record: 19 bytes of header
  // ('A's: d_reclen 0x4141 ends the walk after it) and then a "name" that climbs out of the image's directory
  // to the canary. Its copy lands in the tmpfs at the canary's host path (".." stops at the tmpfs root), which
  // is why the image's directory holds that path's directories.
  const hostRel = hostDir.replace(/^\/+/, '');
  const name = `${'./'.repeat(1100)}${'../'.repeat(40)}${hostRel}/canary`;
  const target = `${'A'.repeat(19)}${name}`;
  tt.ok(target.length > 2048 && target.length < 4096, `a ${target.length}-byte link target`);
  const { bundle, seed } = seededBundle(s, dir => {
    fs.mkdirSync(path.join(dir, hostRel), { recursive: true });
    fs.symlinkSync(target, path.join(dir, 'L'));
    const fixed = ['.', '..', hostRel.split('/')[0]!, 'L'];
    let left = 2048 - fixed.reduce((sum, n) => sum + recordBytes(n), 0);
    for (let i = 0; left > 0; i++) {
      // 32-byte records (5-character names), and one last record of whatever size is left (24 to 48 bytes).
      const last = left < 24 + 32;
      const file = last ? `z${'y'.repeat(left - 21)}` : `f${String(i).padStart(4, '0')}`;
      fs.writeFileSync(path.join(dir, file), '');
      left -= recordBytes(file);
    }
    tt.equal(left, 0, 'the records fill one 2048-byte batch exactly');
  });
  const pid = copiesExactly(tt, s, seed, bundle, "the tmpfs holds exactly the image's directory");
  if (pid !== undefined) {
    const leaked = `/proc/${pid}/root/seed/${hostRel}/canary`;
    tt.notOk(fs.existsSync(leaked), `the host canary is not in the container (${leaked.replace(`/proc/${pid}/root`, '')})`);
    tt.equal(fs.readlinkSync(`/proc/${pid}/root/seed/L`), target, 'the long link is copied byte for byte');
  }
});

t.test('finding 1, property: random trees are copied exactly by tmpcopyup', async tt => {
  tt.comment(`tmpcopyup seed ${SEED} (replay with TSRT_TMPCOPYUP_SEED=${SEED})`);
  const rng = new Rng(SEED);
  for (let i = 0; i < TREES; i++) {
    const s = sec.scope(tt);
    const budget = { entries: 600 + rng.int(4000), bigDirs: 1 };
    const { bundle, seed } = seededBundle(s, dir => randomTree(rng, dir, budget, 0));
    const id = s.id();
    const r = rtFiles(sec.root, s, ['create', '-b', bundle, id]);
    tt.equal(r.code, 0, `tree ${i}: create succeeds ${r.stderr}`);
    if (r.code !== 0) continue;
    const pid = JSON.parse(sec.rt(['state', id]).stdout).pid;
    const diff = treeDiff(treeSnapshot(`/proc/${pid}/root/seed`), treeSnapshot(seed));
    tt.same(diff, [], `tree ${i} (seed ${SEED}): the tmpfs is the image's directory`);
    // Each tree's container and files go now: a scope's teardown would keep them all until the end.
    sec.rt(['delete', '--force', id]);
    fs.rmSync(path.dirname(bundle), { recursive: true, force: true });
  }
});
