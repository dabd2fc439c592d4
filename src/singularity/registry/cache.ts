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
import { openOwnFile, openPrivateDir } from '../../private-dir.js';
import { diskUsage, sandboxEntries } from '../../sif/unpack-cache.js';
import { RuntimeError } from '../../errors.js';

/** Cache types as `cache list` and `cache clean --type` name them; blob entries sit one level deeper. */
export const FILE_TYPES = ['library', 'oci-tmp', 'shub', 'oras', 'net'] as const;
export type FileType = (typeof FILE_TYPES)[number];
/**
 * Singularity's types, and two of tsrt-singularity's own: `sandbox`, images unpacked for users who cannot mount
 * them (../../sif/unpack-cache.ts; Apptainer unpacks into a temporary directory per run instead), and
 * `bootstrap`, the packages debootstrap and mmdebstrap builds downloaded (../build/agents.ts).
 */
export type CacheType = FileType | 'blob' | 'sandbox' | 'bootstrap';
export const ALL_TYPES: CacheType[] = ['blob', ...FILE_TYPES, 'sandbox', 'bootstrap'];

/** $SINGULARITY_CACHEDIR (or APPTAINER_CACHEDIR, which wins as in Apptainer) plus /cache, else ~/.singularity/cache. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const parent = env['APPTAINER_CACHEDIR'] || env['SINGULARITY_CACHEDIR'];
  return parent ? path.join(path.resolve(parent), 'cache') : path.join(os.homedir(), '.singularity', 'cache');
}

/** A directory of the cache: made 0700 when missing, else the caller's own and writable by nobody else (R9). */
export function privateCacheDir(dir: string): string {
  const opened = openPrivateDir(dir, {
    what: 'cache directory',
    create: true,
    fix: 'remove it or chmod go-w it, or set SINGULARITY_CACHEDIR to a directory of your own',
  });
  opened.close();
  return dir;
}

function hashFd(hash: Hash, fd: number): Hash {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let n: number; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  return hash;
}

/**
 * An entry file we made: a regular file of ours (./private-dir.ts's openOwnFile) that nobody else can write and,
 * given `digest`, whose bytes, read through that same descriptor, hash to it.
 */
function ownFile(file: string, digest?: string): boolean {
  const dir = path.dirname(file);
  let fd: number;
  try {
    fd = openOwnFile({ path: dir, at: name => path.join(dir, name) }, path.basename(file), fs.constants.O_RDONLY);
  } catch {
    return false;
  }
  try {
    if (fs.fstatSync(fd).mode & 0o022) return false;
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
  if (!m) throw new RuntimeError(`unsupported digest ${JSON.stringify(digest)}`, { op: 'cache' });
  return m[1]!;
}

function uniqueName(prefix: string): string {
  return `${prefix}${process.pid}-${nodeCrypto().randomBytes(6).toString('hex')}`;
}

export class ImageCache {
  private constructor(
    readonly root: string,
    private readonly temporary: boolean,
  ) {}

  /** The user's cache, or (disabled) a private throwaway one in `tmpParent` that dispose() removes. */
  static open(opts: { disabled?: boolean; tmpParent?: string; env?: NodeJS.ProcessEnv } = {}): ImageCache {
    if (opts.disabled) return new ImageCache(fs.mkdtempSync(path.join(opts.tmpParent ?? os.tmpdir(), 'tsrt-nocache-')), true);
    const root = cacheRoot(opts.env);
    privateCacheDir(root);
    return new ImageCache(root, false);
  }

  dispose(): void {
    if (this.temporary) fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** The directory of a cache type (checked, made when missing). */
  typeDir(type: FileType | 'blob'): string {
    const dir = privateCacheDir(path.join(this.root, type));
    return type === 'blob' ? privateCacheDir(path.join(privateCacheDir(path.join(dir, 'blobs')), 'sha256')) : dir;
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
    const partials = privateCacheDir(path.join(this.root, 'blob', '.partial'));
    const final = path.join(this.typeDir('blob'), hexOf(desc.digest));
    let partial = path.join(partials, hexOf(desc.digest));
    let fd = fs.openSync(partial, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
    if (!native().flock(fd, true, false)) {
      fs.closeSync(fd);
      partial = path.join(partials, uniqueName('.busy-'));
      fd = fs.openSync(partial, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    }
    try {
      if (!ownFile(partial))
        throw new RuntimeError(`refusing the partial download ${partial}: not a private file of yours`, { op: 'cache', path: partial });
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
  entry(type: FileType, key: string): string | undefined {
    const file = path.join(this.typeDir(type), key);
    return ownFile(file) ? file : undefined;
  }

  /** Makes an entry: `produce` writes the given private temporary path, which is renamed to the entry. */
  async store(type: FileType, key: string, produce: (tmp: string) => Promise<void>): Promise<string> {
    const dir = this.typeDir(type);
    const tmp = path.join(dir, uniqueName('.tmp-'));
    try {
      await produce(tmp);
      if (!ownFile(tmp)) throw new RuntimeError(`the new cache entry ${tmp} is not a private file of yours`, { op: 'cache', path: tmp });
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

/** The directory a type's entries are in. */
export function typePath(root: string, type: CacheType): string {
  return type === 'blob' ? path.join(root, 'blob', 'blobs', 'sha256') : path.join(root, type);
}

function names(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** The entries of the given types (temporary and partial files are not entries). */
export function listEntries(root: string, types: CacheType[]): CacheEntry[] {
  const out: CacheEntry[] = [];
  for (const type of types) {
    const dir = typePath(root, type);
    if (type === 'sandbox') {
      out.push(...sandboxEntries(dir).map(e => ({ type, name: e.key, size: e.bytes, mtime: e.lastUse, path: e.path })));
      continue;
    }
    for (const name of names(dir)) {
      if (name.startsWith('.')) continue;
      const file = path.join(dir, name);
      const st = fs.lstatSync(file);
      out.push({ type, name, size: st.isDirectory() ? diskUsage(file) : st.size, mtime: st.mtime, path: file });
    }
  }
  return out;
}

/** Whether the process that made a temporary name (uniqueName: PREFIX<pid>-<random>) may still be writing it. */
function writerAlive(name: string): boolean {
  const pid = Number(/^\.[a-z]+-(\d+)-[0-9a-f]+$/.exec(name)?.[1]);
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH, or EPERM: the pid is another user's now, so ours is gone.
    return false;
  }
}

/** What interrupted pulls and conversions of a type left: temporary files whose writer is gone. */
export function leftovers(root: string, type: CacheType): string[] {
  const dirs =
    type === 'blob' ? [path.join(root, 'blob', '.partial')] : type === 'sandbox' || type === 'bootstrap' ? [] : [path.join(root, type)];
  return dirs.flatMap(dir =>
    names(dir)
      .filter(n => /^\.(tmp|busy)-/.test(n) && !writerAlive(n))
      .map(n => path.join(dir, n)),
  );
}
