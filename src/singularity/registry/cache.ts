// Singularity's image cache, laid out as Singularity lays it out: $SINGULARITY_CACHEDIR/cache (default
// ~/.singularity/cache) holding blob/blobs/sha256/HEX (OCI blobs by digest), oci-tmp/KEY (SIFs converted from
// OCI images) and oras/HEX (SIFs pulled with oras), listed and cleaned by `cache list` / `cache clean`.
//
// Security rule R9: the cache and each of its directories must be the caller's own and private. Each directory
// is opened without following a symlink and checked on the descriptor (owner the caller or root, no group or
// other write) before anything in it is used; new directories are made 0700. Entries are written under a
// private temporary name and renamed into place only once complete and verified, so nobody (including a
// concurrent pull of our own) ever sees half of one. A blob is checked against its digest whenever it is used.
import type { Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nodeCrypto } from '../../lazy-crypto.js';
import { native } from '../../native.js';
import type { Descriptor, RegistryClient } from '../../oci-dist/client.js';
import { DigestMismatch } from '../../oci-dist/client.js';
import type { Progress } from '../../oci-dist/progress.js';

/** Cache types as `cache list` and `cache clean --type` name them; blob entries sit one level deeper. */
export const FILE_TYPES = ['library', 'oci-tmp', 'shub', 'oras', 'net'] as const;
export type CacheType = (typeof FILE_TYPES)[number] | 'blob';
export const ALL_TYPES: CacheType[] = ['blob', ...FILE_TYPES];

/** $SINGULARITY_CACHEDIR (or APPTAINER_CACHEDIR, which wins as in Apptainer) plus /cache, else ~/.singularity/cache. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const parent = env['APPTAINER_CACHEDIR'] || env['SINGULARITY_CACHEDIR'];
  return parent ? path.join(path.resolve(parent), 'cache') : path.join(os.homedir(), '.singularity', 'cache');
}

/** A directory that exists, is ours (or root's) and that nobody else can write, checked on its descriptor. */
export function privateDir(dir: string): string {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
      return privateDir(dir);
    }
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot create the cache directory ${dir}: ${(e as Error).message}`);
  }
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ELOOP' || code === 'ENOTDIR' ? 'it is a symbolic link or not a directory' : (e as Error).message;
    throw new Error(`refusing the cache directory ${dir}: ${why}`);
  }
  try {
    const st = fs.fstatSync(fd);
    const uid = process.getuid!();
    if (st.uid !== uid && st.uid !== 0) throw new Error(`refusing the cache directory ${dir}: it belongs to uid ${st.uid}, not to you (uid ${uid})`);
    if (st.mode & 0o022) throw new Error(`refusing the cache directory ${dir}: others can write to it (mode ${(st.mode & 0o7777).toString(8)}); chmod go-w it`);
  } finally {
    fs.closeSync(fd);
  }
  return dir;
}

function hashFd(hash: Hash, fd: number): Hash {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let n: number; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  return hash;
}

/**
 * An entry file we made: a regular file of ours that nobody else can write, checked on its descriptor, and
 * (given `digest`) whose bytes, read through that same descriptor, hash to it.
 */
function ownFile(file: string, digest?: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return false;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== process.getuid!() || st.mode & 0o022) return false;
    return digest === undefined || `sha256:${hashFd(nodeCrypto().createHash('sha256'), fd).digest('hex')}` === digest;
  } finally {
    fs.closeSync(fd);
  }
}

/** Feeds a file's bytes to `hash` (not following a symlink in its place). */
export function hashFileInto(hash: Hash, file: string): Hash {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return hashFd(hash, fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function sha256File(file: string): string {
  return `sha256:${hashFileInto(nodeCrypto().createHash('sha256'), file).digest('hex')}`;
}

function hexOf(digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new Error(`unsupported digest ${JSON.stringify(digest)}`);
  return m[1]!;
}

function uniqueName(prefix: string): string {
  return `${prefix}${process.pid}-${nodeCrypto().randomBytes(6).toString('hex')}`;
}

export class ImageCache {
  private constructor(readonly root: string, private readonly temporary: boolean) {}

  /** The user's cache, or (disabled) a private throwaway one in `tmpParent` that dispose() removes. */
  static open(opts: { disabled?: boolean; tmpParent?: string; env?: NodeJS.ProcessEnv } = {}): ImageCache {
    if (opts.disabled) return new ImageCache(fs.mkdtempSync(path.join(opts.tmpParent ?? os.tmpdir(), 'tsrt-nocache-')), true);
    const root = cacheRoot(opts.env);
    privateDir(root);
    return new ImageCache(root, false);
  }

  dispose(): void {
    if (this.temporary) fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** The directory of a cache type (checked, made when missing). */
  typeDir(type: CacheType): string {
    const dir = privateDir(path.join(this.root, type));
    return type === 'blob' ? privateDir(path.join(privateDir(path.join(dir, 'blobs')), 'sha256')) : dir;
  }

  /** A blob of ours whose bytes hash to its name, or undefined (one that does not is removed). */
  blob(digest: string): string | undefined {
    const file = path.join(this.typeDir('blob'), hexOf(digest));
    if (ownFile(file, digest)) return file;
    fs.rmSync(file, { force: true });
    return undefined;
  }

  /**
   * The blob from the cache, else downloaded into it. The partial download is kept under blob/.partial
   * (resumed by the next attempt) and locked while in use; a second process pulling the same blob at once
   * downloads its own copy instead, and both rename identical bytes into place.
   */
  async fetchBlob(client: RegistryClient, desc: Descriptor, progress?: Progress): Promise<string> {
    const cached = this.blob(desc.digest);
    if (cached) {
      progress?.advance(desc.size);
      return cached;
    }
    const partials = privateDir(path.join(this.root, 'blob', '.partial'));
    const final = path.join(this.typeDir('blob'), hexOf(desc.digest));
    let partial = path.join(partials, hexOf(desc.digest));
    let fd = fs.openSync(partial, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
    if (!native().flock(fd, true, false)) {
      fs.closeSync(fd);
      partial = path.join(partials, uniqueName('.busy-'));
      fd = fs.openSync(partial, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    }
    try {
      if (!ownFile(partial)) throw new Error(`refusing the partial download ${partial}: not a private file of yours`);
      await client.downloadBlob(desc, partial, progress);
      fs.renameSync(partial, final);
    } catch (e) {
      // A broken download stays to be resumed; bytes that failed their digest are gone already.
      if (e instanceof DigestMismatch || path.basename(partial).startsWith('.busy-')) fs.rmSync(partial, { force: true });
      throw e;
    } finally {
      fs.closeSync(fd);
    }
    return final;
  }

  /** A cached file (a SIF) of ours, or undefined. */
  entry(type: Exclude<CacheType, 'blob'>, key: string): string | undefined {
    const file = path.join(this.typeDir(type), key);
    return ownFile(file) ? file : undefined;
  }

  /** Makes an entry: `produce` writes the given private temporary path, which is renamed to the entry. */
  async store(type: Exclude<CacheType, 'blob'>, key: string, produce: (tmp: string) => Promise<void>): Promise<string> {
    const dir = this.typeDir(type);
    const tmp = path.join(dir, uniqueName('.tmp-'));
    try {
      await produce(tmp);
      if (!ownFile(tmp)) throw new Error(`the new cache entry ${tmp} is not a private file of yours`);
      fs.renameSync(tmp, path.join(dir, key));
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    return path.join(dir, key);
  }
}

export interface CacheEntry {
  type: CacheType;
  name: string;
  size: number;
  mtime: Date;
  path: string;
}

/** The entries of the given types (temporary and partial files are not entries). */
export function listEntries(root: string, types: CacheType[]): CacheEntry[] {
  const out: CacheEntry[] = [];
  for (const type of types) {
    const dir = type === 'blob' ? path.join(root, 'blob', 'blobs', 'sha256') : path.join(root, type);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      if (name.startsWith('.')) continue;
      const st = fs.lstatSync(path.join(dir, name));
      out.push({ type, name, size: st.size, mtime: st.mtime, path: path.join(dir, name) });
    }
  }
  return out;
}
