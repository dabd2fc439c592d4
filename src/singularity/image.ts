// Turns what the user named as an image into a directory tsrt can use as a root filesystem. Sandbox
// directories are used in place; squashfs images are extracted once into the user's cache, keyed by the
// file's identity, because an unprivileged user can neither loop-mount them nor (with /dev/fuse closed to
// users, as on this machine) squashfuse them.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type ImageKind = 'sandbox' | 'squashfs' | 'sif';

export interface ResolvedImage {
  /** The path the user gave, made absolute (SINGULARITY_CONTAINER). */
  path: string;
  kind: ImageKind;
  /** A directory holding the image's root filesystem. */
  rootfs: string;
  /** How the root filesystem was obtained, for -v/-d output. */
  how: string;
}

const SQUASHFS_MAGIC = Buffer.from('hsqs');
const SIF_LAUNCH = Buffer.from('#!/usr/bin/env run-singularity\n');
const SIF_MAGIC = Buffer.from('SIF_MAGIC');

function readHead(file: string, n: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const got = fs.readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

export function imageKind(file: string): ImageKind {
  const st = fs.statSync(file);
  if (st.isDirectory()) return 'sandbox';
  const head = readHead(file, 64);
  if (head.subarray(0, 4).equals(SQUASHFS_MAGIC)) return 'squashfs';
  const afterLaunch = head.subarray(0, SIF_LAUNCH.length).equals(SIF_LAUNCH) ? SIF_LAUNCH.length : 0;
  if (head.subarray(afterLaunch, afterLaunch + SIF_MAGIC.length).equals(SIF_MAGIC)) return 'sif';
  throw new Error(`could not open image ${file}: not a sandbox directory, a squashfs image or a SIF file`);
}

/** $SINGULARITY_CACHEDIR (or APPTAINER_), else ~/.singularity/cache, as Singularity places its cache. */
export function cacheDir(): string {
  return process.env['APPTAINER_CACHEDIR'] || process.env['SINGULARITY_CACHEDIR'] ||
    path.join(os.homedir(), '.singularity', 'cache');
}

/** Extracts a squashfs stream at `offset` in `file` into the cache once; later runs reuse the directory. */
export function extractSquashfs(file: string, offset = 0): string {
  const st = fs.statSync(file);
  const key = createHash('sha256').update(`${fs.realpathSync(file)}\0${st.size}\0${st.mtimeMs}\0${st.ino}\0${offset}`).digest('hex').slice(0, 32);
  const dir = path.join(cacheDir(), 'sandbox', key);
  if (fs.existsSync(path.join(dir, '.tsrt-complete'))) return path.join(dir, 'rootfs');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const partial = fs.mkdtempSync(path.join(dir, 'extract-'));
  const rootfs = path.join(partial, 'rootfs');
  const args = ['-no-xattrs', '-ignore-errors', '-quiet', '-no-progress', '-d', rootfs];
  if (offset) args.unshift('-offset', String(offset));
  const r = spawnSync('unsquashfs', [...args, file], { encoding: 'utf8' });
  if (r.error || !fs.existsSync(rootfs)) {
    fs.rmSync(partial, { recursive: true, force: true });
    throw new Error(`could not extract ${file} with unsquashfs (apt-get install squashfs-tools): ${r.error?.message ?? r.stderr.trim()}`);
  }
  // Two users of the same image may race here: the first rename wins, the loser's copy is dropped.
  try {
    fs.renameSync(rootfs, path.join(dir, 'rootfs'));
    fs.writeFileSync(path.join(dir, '.tsrt-complete'), `${file}\n`);
  } catch {
    /* another extraction finished first */
  }
  fs.rmSync(partial, { recursive: true, force: true });
  return path.join(dir, 'rootfs');
}

export function resolveImage(spec: string): ResolvedImage {
  const abs = path.resolve(spec);
  if (!fs.existsSync(abs)) throw new Error(`could not open image ${abs}: failed to retrieve path for ${spec}: no such file or directory`);
  const kind = imageKind(abs);
  if (kind === 'sandbox') return { path: abs, kind, rootfs: abs, how: 'sandbox directory used in place' };
  if (kind === 'squashfs') {
    return { path: abs, kind, rootfs: extractSquashfs(abs), how: `squashfs image extracted into ${cacheDir()}/sandbox (unprivileged: no loop or FUSE mount)` };
  }
  throw new Error(`could not open image ${abs}: SIF images need the SIF reader (src/sif), which this build lacks`);
}
