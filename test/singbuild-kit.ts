// What the test/singularity/build-*.test.ts files share: dist/tsrt-singularity runs (as root or as the test user),
// scratch directories, and ways to look inside what a build produced (SIF objects, the squashfs partition).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, tmpdir, type Result } from './helpers.js';

export const SINGULARITY = path.join(REPO, 'dist', 'tsrt-singularity');

/** Where the debootstrap tests keep downloaded .debs between runs (SINGULARITY_CACHEDIR of the builds). */
export const BUILD_CACHE = '/var/cache/tsrt-tests/singularity-build';

export function singularity(args: string[], opts: { cwd?: string; user?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Result {
  const cmd = opts.user ? 'runuser' : SINGULARITY;
  const argv = opts.user ? ['-u', opts.user, '--', SINGULARITY, ...args] : args;
  const r = spawnSync(cmd, argv, {
    cwd: opts.cwd, timeout: opts.timeoutMs ?? 600_000, encoding: 'utf8',
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

export interface SifObject {
  id: number;
  dataType: number;
  groupId: number;
  name: string;
  offset: number;
  size: number;
  extra: Buffer;
}

/** The used descriptors of a SIF, read from the bytes as docs/singularity.md §2.3 lays them out. */
export function sifObjects(file: string): { header: Buffer; objects: SifObject[] } {
  const data = fs.readFileSync(file);
  const header = data.subarray(0, 128);
  const total = Number(header.readBigInt64LE(88));
  const table = Number(header.readBigInt64LE(96));
  const objects: SifObject[] = [];
  for (let i = 0; i < total; i++) {
    const d = data.subarray(table + i * 585, table + (i + 1) * 585);
    if (d.readUInt8(4) !== 1) continue;
    objects.push({
      id: d.readUInt32LE(5), dataType: d.readInt32LE(0), groupId: d.readUInt32LE(9),
      name: d.subarray(73, 201).toString('utf8').replace(/\0+$/, ''),
      offset: Number(d.readBigInt64LE(17)), size: Number(d.readBigInt64LE(25)), extra: d.subarray(201, 585),
    });
  }
  return { header, objects };
}

export function sifObjectData(file: string, o: SifObject): Buffer {
  return fs.readFileSync(file).subarray(o.offset, o.offset + o.size);
}

/** Unpacks the SIF's primary squashfs partition into dir/rootfs (unsquashfs); returns that path. */
export function unpackSif(file: string, dir: string): string {
  const part = sifObjects(file).objects.find(o => o.dataType === 0x4004 && o.extra.readInt32LE(4) === 2);
  if (!part) throw new Error(`${file} has no primary partition`);
  const sqfs = path.join(dir, 'partition.sqfs');
  fs.writeFileSync(sqfs, sifObjectData(file, part));
  const rootfs = path.join(dir, 'rootfs');
  const r = spawnSync('unsquashfs', ['-n', '-d', rootfs, sqfs], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`unsquashfs failed: ${r.stderr}`);
  return rootfs;
}

/** Files in dir whose names start with `.`+base+`.build-` (a build's scratch left behind) and DEST itself. */
export function leftovers(dest: string): string[] {
  const dir = path.dirname(dest);
  const base = path.basename(dest);
  return fs.readdirSync(dir).filter(n => n === base || n.startsWith(`.${base}.build-`));
}
