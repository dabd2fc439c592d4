// The cache of unpacked images: what an image runs from when no mount is possible (an unprivileged user
// without FUSE). Per user, in a verified private directory (R9):
//
//   <cache>/<key>/rootfs         the unpacked tree
//   <cache>/<key>/source.json    what it was unpacked from: the image's identity and the partition's sha256
//   <cache>/<key>.lock           flock'd while an entry is checked and made
//
// The key names the image (the user, its path, inode, size and mtime, and the partition's place), so a rebuilt
// image gets a new entry while containers still run from the old one. An entry is made in a private temporary
// directory and renamed into place only after unsquashfs reported no error (a damaged image fails instead of
// leaving a partial tree behind), and it is used only when it is the caller's own and its source record still
// describes the image: same identity, and the same digest whenever the file's ctime says it was touched since.
// Concurrent runs of one image (the ranks of a job on a node) wait on the lock, so one unpacks and the others
// use its entry.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import { nodeCrypto } from '../lazy-crypto.js';
import { native } from '../native.js';
import { openOwnFile, openPrivateDir, type PrivateDir } from '../private-dir.js';

/** Where an image's squashfs is: the open image file and the partition's byte range. */
export interface UnpackSource {
  /** The image as named (for messages and the key). */
  path: string;
  /** The image, open for reading: everything read and unpacked comes from this fd. */
  fd: number;
  offset: number;
  size: number;
}

/** What source.json records (bigints as decimal strings). */
interface SourceRecord {
  version: 1;
  uid: number;
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  offset: number;
  partSize: number;
  sha256: string;
}

/** The cache key of an image's partition for `uid`: a name, not a proof (source.json is what is checked). */
export function sandboxKey(src: { path: string; offset: number; size: number }, uid = process.geteuid!()): string {
  const st = fs.statSync(src.path, { bigint: true });
  const id = ['v2', uid, fs.realpathSync(src.path), st.dev, st.ino, st.size, st.mtimeNs, src.offset, src.size].join('\0');
  return nodeCrypto().createHash('sha256').update(id).digest('hex').slice(0, 32);
}

const CHUNK = 1 << 20;

/** sha256 of the partition's bytes, read from the fd. */
function partitionDigest(src: UnpackSource): string {
  const h = nodeCrypto().createHash('sha256');
  const buf = Buffer.alloc(CHUNK);
  for (let done = 0; done < src.size;) {
    const n = fs.readSync(src.fd, buf, 0, Math.min(CHUNK, src.size - done), src.offset + done);
    if (n === 0) throw new RuntimeError(`${src.path}: the image ends inside its partition`, { op: 'unpack', path: src.path });
    h.update(buf.subarray(0, n));
    done += n;
  }
  return h.digest('hex');
}

function sourceRecord(src: UnpackSource, st: fs.BigIntStats, sha256: string): SourceRecord {
  return {
    version: 1, uid: process.geteuid!(), dev: String(st.dev), ino: String(st.ino), size: String(st.size),
    mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs), offset: src.offset, partSize: src.size, sha256,
  };
}

/** Removes a tree the caller owns, including directories the image made read-only. */
function removeTree(p: string): void {
  spawnSync('chmod', ['-R', 'u+rwX', p], { stdio: 'ignore' });
  fs.rmSync(p, { recursive: true, force: true });
}

type EntryState = 'valid' | 'missing' | 'stale';

/** Whether <cache>/<key> is an entry of the caller's own unpacked from this very partition. */
function checkEntry(cache: PrivateDir, key: string, src: UnpackSource): EntryState {
  const shown = path.join(cache.path, key);
  let fd: number;
  try {
    fd = fs.openSync(cache.at(key), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'stale';
  }
  try {
    const st = fs.fstatSync(fd);
    // Only root could have made it in the caller's private directory; it is not the caller's to use or remove.
    if (st.uid !== process.geteuid!()) {
      throw new RuntimeError(`image cache entry ${shown} is owned by uid ${st.uid}, not by you: remove it`, { op: 'unpack', path: shown });
    }
    if (st.mode & 0o022) return 'stale';
    let rec: Partial<SourceRecord>;
    try {
      const recFd = openOwnFile({ path: shown, at: name => `/proc/self/fd/${fd}/${name}` }, 'source.json', fs.constants.O_RDONLY);
      try {
        rec = JSON.parse(fs.readFileSync(recFd, 'utf8')) as Partial<SourceRecord>;
      } finally {
        fs.closeSync(recFd);
      }
    } catch {
      return 'stale';
    }
    if (!fs.statSync(`/proc/self/fd/${fd}/rootfs`, { throwIfNoEntry: false })?.isDirectory()) return 'stale';
    const now = fs.fstatSync(src.fd, { bigint: true });
    const same = rec.version === 1 && rec.uid === process.geteuid!() && rec.dev === String(now.dev) && rec.ino === String(now.ino)
      && rec.size === String(now.size) && rec.mtimeNs === String(now.mtimeNs) && rec.offset === src.offset && rec.partSize === src.size;
    if (!same) return 'stale';
    // A write, a chmod or a touch back to the old mtime all change the ctime: then the bytes must still match.
    if (rec.ctimeNs === String(now.ctimeNs)) return 'valid';
    return rec.sha256 === partitionDigest(src) ? 'valid' : 'stale';
  } finally {
    fs.closeSync(fd);
  }
}

/** Device nodes in the squashfs: an unprivileged unsquashfs cannot make them, so they are left out, by name. */
function deviceNodes(src: UnpackSource): string[] {
  const r = spawnSync('unsquashfs', ['-lln', '-offset', String(src.offset), '/proc/self/fd/3'], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', src.fd], maxBuffer: 1 << 30,
  });
  if (r.error || r.status !== 0) throw unsquashfsError(r);
  const out: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^[cb]\S+\s+\S+\s+\d+,\s*\d+\s+\S+\s+\S+\s+squashfs-root\/(.+)$/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

function unsquashfsError(r: ReturnType<typeof spawnSync>): Error {
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return new Error('unsquashfs is not installed');
  const why = String(r.stderr ?? '').trim().split('\n').filter(Boolean).pop();
  return new Error(`unsquashfs: ${why ?? r.error?.message ?? `exit status ${r.status}`}`);
}

/** Unpacks the partition into <cache>/<tmp>/rootfs; throws on any error unsquashfs reports. */
function unpack(cache: PrivateDir, tmp: string, src: UnpackSource): void {
  // The image and the cache go to unsquashfs as fds 3 and 4, so it reads and writes exactly what was checked.
  const args = ['-no-progress', '-quiet', '-offset', String(src.offset), '-d', `/proc/self/fd/4/${tmp}/rootfs`];
  if (process.geteuid!() !== 0) {
    // Ownership is not restored without root (unsquashfs does not try), security.* xattrs cannot be set, and
    // device nodes cannot be made: those are left out up front, so every error that remains is fatal.
    args.push('-no-xattrs');
    const devices = deviceNodes(src);
    if (devices.length) {
      fs.writeFileSync(cache.at(`${tmp}/exclude`), `${devices.join('\n')}\n`, { mode: 0o600 });
      args.push('-no-wildcards', '-exclude-file', `/proc/self/fd/4/${tmp}/exclude`);
    }
  }
  const r = spawnSync('unsquashfs', [...args, '/proc/self/fd/3'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', src.fd, cache.fd] });
  if (r.error || r.status !== 0) throw unsquashfsError(r);
  fs.rmSync(cache.at(`${tmp}/exclude`), { force: true });
}

/** Makes the entry: unpack into a private temporary directory, record the source, rename into place. */
function makeEntry(cache: PrivateDir, key: string, src: UnpackSource, state: EntryState): void {
  const before = fs.fstatSync(src.fd, { bigint: true });
  const sha256 = partitionDigest(src);
  const tmp = path.basename(fs.mkdtempSync(cache.at(`.${key}-`)));
  try {
    unpack(cache, tmp, src);
    const after = fs.fstatSync(src.fd, { bigint: true });
    if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs) {
      throw new Error(`${src.path} changed while it was being unpacked`);
    }
    fs.writeFileSync(cache.at(`${tmp}/source.json`), JSON.stringify(sourceRecord(src, before, sha256)), { mode: 0o600 });
    if (state === 'stale') {
      const old = path.basename(fs.mkdtempSync(cache.at(`.${key}-stale-`)));
      fs.renameSync(cache.at(key), cache.at(`${old}/entry`));
      removeTree(cache.at(old));
    }
    fs.renameSync(cache.at(tmp), cache.at(key));
  } catch (e) {
    removeTree(cache.at(tmp));
    throw e;
  }
}

/**
 * The unpacked rootfs of the partition, from the cache under `cacheDir` (made if need be); whether it was there
 * already. Throws with what unsquashfs said when the image cannot be unpacked without errors.
 */
export function cachedUnpack(src: UnpackSource, cacheDir: string): { dir: string; cached: boolean } {
  const cache = openPrivateDir(cacheDir, { what: 'image cache directory', create: true, trustedPath: true, fix: 'use a cache directory of your own (SINGULARITY_CACHEDIR or XDG_CACHE_HOME)' });
  try {
    const key = sandboxKey(src);
    const dir = path.join(cache.path, key, 'rootfs');
    if (checkEntry(cache, key, src) === 'valid') return { dir, cached: true };
    const lock = openOwnFile(cache, `${key}.lock`, fs.constants.O_RDWR | fs.constants.O_CREAT);
    try {
      native().flock(lock, true, true);
      // Another run may have made it while we waited.
      const state = checkEntry(cache, key, src);
      if (state === 'valid') return { dir, cached: true };
      makeEntry(cache, key, src, state);
      return { dir, cached: false };
    } finally {
      fs.closeSync(lock);
    }
  } finally {
    cache.close();
  }
}
