// Turns what the user named as an image into a directory tsrt can use as a root filesystem, through the SIF
// library's mountImage: sandbox directories in place; SIF files and plain squashfs images by a kernel loop
// mount (root), squashfuse, or a cached extracted sandbox, with one line saying which path was taken.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultCacheDir, mountImage, type MountedImage } from '../sif/mount.js';
import { isImageUri, unsupportedSource } from './registry/source.js';

export interface ResolvedImage {
  /** The path the user gave, made absolute (SINGULARITY_CONTAINER). */
  path: string;
  kind: 'sandbox' | 'squashfs' | 'sif' | 'ext3';
  /** A directory holding the image's root filesystem. */
  rootfs: string;
  /** Undoes the mount (nothing for sandboxes and cached extractions). */
  release(): void;
}

/** $SINGULARITY_CACHEDIR/sandbox (or APPTAINER_), else the SIF library's default cache. */
function sandboxCache(): string {
  const dir = process.env['APPTAINER_CACHEDIR'] || process.env['SINGULARITY_CACHEDIR'];
  return dir ? path.join(dir, 'sandbox') : defaultCacheDir();
}

export function resolveImage(spec: string, info: (m: string) => void, writable = false): ResolvedImage {
  // Commands that take URIs turn them into cached SIFs first; here one would only become a bogus path.
  if (isImageUri(spec)) throw new Error(unsupportedSource(spec) ?? `${spec}: this command takes a local image; pull it first (singularity pull ${spec})`);
  const abs = path.resolve(spec);
  if (!fs.existsSync(abs)) throw new Error(`could not open image ${abs}: failed to retrieve path for ${spec}: no such file or directory`);
  let m: MountedImage;
  try {
    m = mountImage(abs, { log: info, cacheDir: sandboxCache(), writable });
  } catch (e) {
    throw new Error(`could not open image ${abs}: ${(e as Error).message}`);
  }
  const kind = m.source.kind === 'directory' ? 'sandbox' : m.source.kind;
  return { path: abs, kind, rootfs: m.dir, release: () => m.release() };
}
