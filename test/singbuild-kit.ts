// What the test/singularity/build-*.test.ts files share: dist/tsrt-singularity runs (as root or as the test user),
// scratch directories, and ways to look inside what a build produced (SIF objects, the squashfs partition).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SifImage, type Descriptor, type SifHeader } from '../src/sif/index.js';
import { REPO, tmpdir, type Result } from './helpers.js';

export const SINGULARITY = path.join(REPO, 'dist', 'tsrt-singularity');

/** Where the debootstrap tests keep downloaded .debs between runs (SINGULARITY_CACHEDIR of the builds). */
export const BUILD_CACHE = '/var/cache/tsrt-tests/singularity-build';

export function singularity(
  args: string[],
  opts: { cwd?: string; user?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Result {
  const cmd = opts.user ? 'runuser' : SINGULARITY;
  const argv = opts.user ? ['-u', opts.user, '--', SINGULARITY, ...args] : args;
  const r = spawnSync(cmd, argv, {
    cwd: opts.cwd,
    timeout: opts.timeoutMs ?? 600_000,
    encoding: 'utf8',
    env: { ...process.env, SINGULARITY_CACHEDIR: BUILD_CACHE, ...opts.env },
  });
  return { code: r.status ?? -1, signal: r.signal ?? null, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** A scratch directory removed when the test ends (owned by `uid` when given). */
export function scratchDir(t: { teardown(fn: () => void): void }, owner?: { uid: number; gid: number }): string {
  const dir = tmpdir('tsrt-singbuild-');
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `files` (name -> text) into dir; returns dir. */
export function writeFiles(dir: string, files: Record<string, string>): string {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

/** The SIF's header and used descriptors (through the SIF library). */
export function sifObjects(file: string): { header: SifHeader; objects: Descriptor[] } {
  const img = SifImage.open(file);
  try {
    return { header: img.header, objects: img.descriptors() };
  } finally {
    img.close();
  }
}

export function sifObjectData(file: string, o: Descriptor): Buffer {
  const img = SifImage.open(file);
  try {
    return img.readObject(o.id);
  } finally {
    img.close();
  }
}

/** Unpacks the SIF's primary squashfs partition into dir/rootfs (unsquashfs at the partition's offset). */
export function unpackSif(file: string, dir: string): string {
  const img = SifImage.open(file);
  const part = img.primaryPartition();
  img.close();
  if (!part) throw new Error(`${file} has no primary partition`);
  const rootfs = path.join(dir, 'rootfs');
  const r = spawnSync('unsquashfs', ['-n', '-offset', String(part.offset), '-d', rootfs, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`unsquashfs failed: ${r.stderr}`);
  return rootfs;
}

/** `unsquashfs -lln` of a SIF's primary partition: numeric owners as the image records them. */
export function squashfsListing(sif: string): string {
  const part = sifObjects(sif).objects.find(o => o.partition?.partType === 2)!;
  return spawnSync('unsquashfs', ['-lln', '-offset', String(part.offset), sif], { encoding: 'utf8' }).stdout;
}

/** Files in dir whose names start with `.`+base+`.build-` (a build's scratch left behind) and DEST itself. */
export function leftovers(dest: string): string[] {
  const dir = path.dirname(dest);
  const base = path.basename(dest);
  return fs.readdirSync(dir).filter(n => n === base || n.startsWith(`.${base}.build-`));
}
