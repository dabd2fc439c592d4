// Turns what the user named as an image into a directory tsrt can use as a root filesystem, through the SIF
// library's mountImage: sandbox directories in place; SIF files and plain squashfs images by a kernel loop
// mount (root), squashfuse, or a cached extracted sandbox, with one line saying which path was taken.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mountImage, type MountedImage } from '../sif/mount.js';
import { cacheRoot } from './registry/cache.js';
import { parseSize, siteConfig } from './siteconfig.js';
import { isImageUri, unsupportedSource } from './registry/source.js';
import { RuntimeError } from '../errors.js';

export interface ResolvedImage {
  /** The path the user gave, made absolute (SINGULARITY_CONTAINER). */
  path: string;
  kind: 'sandbox' | 'squashfs' | 'sif' | 'ext3';
  /** A directory holding the image's root filesystem. */
  rootfs: string;
  /** Undoes the mount (nothing for sandboxes and cached extractions). */
  release(): void;
}

/** The cache of unpacked images: a type of the user's image cache, listed and cleaned with the others. */
export function sandboxCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheRoot(env), 'sandbox');
}

/** The sandbox cache's size limit when neither the site nor the user sets one. */
export const DEFAULT_SANDBOX_CACHE_MAX = 10 * 2 ** 30;

const LIMIT_VARS = ['APPTAINER_SANDBOX_CACHE_MAXSIZE', 'SINGULARITY_SANDBOX_CACHE_MAXSIZE'];

/**
 * The sandbox cache's size limit in bytes (0: none). The user's $SINGULARITY_SANDBOX_CACHE_MAXSIZE can lower the
 * site's `sandbox cache max size`, never raise it; with neither, DEFAULT_SANDBOX_CACHE_MAX.
 */
export function sandboxCacheLimit(env: NodeJS.ProcessEnv = process.env): number {
  const name = LIMIT_VARS.find(n => env[n]);
  const user = name === undefined ? undefined : parseSize(env[name]!);
  if (name !== undefined && user === undefined)
    throw new RuntimeError(`${name}=${env[name]}: not a size (MiB, or with a K, M, G or T suffix; 0 for no limit)`, { op: 'env' });
  const site = siteConfig().sandboxCacheMaxSize;
  if (site === undefined) return user ?? DEFAULT_SANDBOX_CACHE_MAX;
  if (site === 0 || !user) return site || (user ?? 0);
  return Math.min(site, user);
}

export function resolveImage(spec: string, info: (m: string) => void, writable = false): ResolvedImage {
  // Commands that take URIs turn them into cached SIFs first; here one would only become a bogus path.
  if (isImageUri(spec))
    throw new RuntimeError(
      unsupportedSource(spec) ?? `${spec}: this command takes a local image; pull it first (singularity pull ${spec})`,
      { op: 'image', path: spec },
    );
  const abs = path.resolve(spec);
  if (!fs.existsSync(abs))
    throw new RuntimeError(`could not open image ${abs}: failed to retrieve path for ${spec}: no such file or directory`, {
      op: 'image',
      path: abs,
      errno: 'ENOENT',
    });
  let m: MountedImage;
  try {
    m = mountImage(abs, { log: info, cacheDir: sandboxCacheDir(), cacheMaxBytes: sandboxCacheLimit(), writable });
  } catch (e) {
    throw new RuntimeError(`could not open image ${abs}: ${(e as Error).message}`, { op: 'image', path: abs, cause: e });
  }
  const kind = m.source.kind === 'directory' ? 'sandbox' : m.source.kind;
  return { path: abs, kind, rootfs: m.dir, release: () => m.release() };
}
