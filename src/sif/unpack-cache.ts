// The cache of unpacked images: what an image runs from when no mount is possible (an unprivileged user
// without FUSE). Per user, in a verified private directory (R9):
//
//   <cache>/<key>/rootfs         the unpacked tree
//   <cache>/<key>/source.json    what it was unpacked from (the image's identity, the partition's sha256) and
//                                the tree's size on disk
//   <cache>/<key>/use.lock       flock'd shared by every run using the entry, for as long as it runs; its
//                                mtime is the entry's last use
//   <cache>/<key>.lock           flock'd exclusively while the entry is checked and made, replaced or evicted
//
// The key names the image (the user, its path, inode, size and mtime, and the partition's place), so a rebuilt
// image gets a new entry while containers still run from the old one. An entry is made in a private temporary
// directory and renamed into place only after unsquashfs reported no error (a damaged image fails instead of
// leaving a partial tree behind), and it is used only when it is the caller's own and its source record still
// describes the image: same identity, and the same digest whenever the file's ctime says it was touched since.
// Concurrent runs of one image (the ranks of a job on a node) wait on the lock, so one unpacks and the others
// use its entry.
//
// Entries go when `cache clean` removes them or when the cache grows past its size limit (least recently used
// first). Neither ever removes an entry in use: only one whose use.lock can be taken exclusively, which no run
// holding it shared allows. A lock file is removed only by whoever holds it exclusively, and a lock taken is
// kept only when the file is still the one at its name (else it guarded a file already gone, and is retried).
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
  /** The unpacked tree's size on disk (what the size limit counts); absent in entries of older versions. */
  bytes?: number;
}

/** The cache key of an image's partition for `uid`: a name, not a proof (source.json is what is checked). */
export function sandboxKey(src: { path: string; offset: number; size: number }, uid = process.geteuid!()): string {
  const st = fs.statSync(src.path, { bigint: true });
  const id = ['v2', uid, fs.realpathSync(src.path), st.dev, st.ino, st.size, st.mtimeNs, src.offset, src.size].join('\0');
  return nodeCrypto().createHash('sha256').update(id).digest('hex').slice(0, 32);
}

/** Entry names: keys as sandboxKey makes them. Everything else in the cache is a lock or a leftover. */
const KEY = /^[0-9a-f]{32}$/;

const { O_RDONLY, O_RDWR, O_CREAT, O_DIRECTORY, O_NOFOLLOW } = fs.constants;

const CHUNK = 1 << 20;

/** sha256 of the partition's bytes, read from the fd. */
function partitionDigest(src: UnpackSource): string {
  const h = nodeCrypto().createHash('sha256');
  const buf = Buffer.alloc(CHUNK);
  for (let done = 0; done < src.size; ) {
    const n = fs.readSync(src.fd, buf, 0, Math.min(CHUNK, src.size - done), src.offset + done);
    if (n === 0) throw new RuntimeError(`${src.path}: the image ends inside its partition`, { op: 'unpack', path: src.path });
    h.update(buf.subarray(0, n));
    done += n;
  }
  return h.digest('hex');
}

function sourceRecord(src: UnpackSource, st: fs.BigIntStats, sha256: string, bytes: number): SourceRecord {
  return {
    version: 1,
    uid: process.geteuid!(),
    dev: String(st.dev),
    ino: String(st.ino),
    size: String(st.size),
    mtimeNs: String(st.mtimeNs),
    ctimeNs: String(st.ctimeNs),
    offset: src.offset,
    partSize: src.size,
    sha256,
    bytes,
  };
}

/** Removes a tree the caller owns, including directories the image made read-only. */
function removeTree(p: string): void {
  spawnSync('chmod', ['-R', 'u+rwX', p], { stdio: 'ignore' });
  fs.rmSync(p, { recursive: true, force: true });
}

/** Bytes a tree takes on disk (allocated blocks, symlinks not followed; what cannot be read is not counted). */
export function diskUsage(top: string): number {
  let total = 0;
  const dirs = [top];
  for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      total += st.blocks * 512;
      if (st.isDirectory()) dirs.push(p);
    }
  }
  return total;
}

/** A directory of the cache, opened by fd: what the lock and record helpers work in. */
type Dir = Pick<PrivateDir, 'path' | 'at'>;

/**
 * Takes the flock on `name` in `dir` (making the file with `create`): the fd, or undefined when the file does
 * not exist or, without `wait`, someone else holds a conflicting lock. A lock file is removed only by whoever
 * holds it exclusively, so a lock won on a file no longer at its name guards nothing: it is let go and taken
 * again on the file that is there now.
 */
function lockFile(dir: Dir, name: string, how: { exclusive: boolean; wait: boolean; create?: boolean }): number | undefined {
  for (;;) {
    let fd: number;
    try {
      fd = openOwnFile(dir, name, how.create ? O_RDWR | O_CREAT : O_RDWR);
    } catch (e) {
      if ((e as RuntimeError).errno === 'ENOENT') return undefined;
      throw e;
    }
    if (!native().flock(fd, how.exclusive, how.wait)) {
      fs.closeSync(fd);
      return undefined;
    }
    const held = fs.fstatSync(fd);
    const now = fs.lstatSync(dir.at(name), { throwIfNoEntry: false });
    if (now && now.dev === held.dev && now.ino === held.ino) return fd;
    fs.closeSync(fd);
  }
}

/** <cache>/<key> opened without following a symlink, or undefined when there is none; refused when not the caller's. */
function openEntry(cache: PrivateDir, key: string): (Dir & { fd: number; close(): void }) | undefined {
  const shown = path.join(cache.path, key);
  let fd: number;
  try {
    fd = fs.openSync(cache.at(key), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RuntimeError(`image cache entry ${shown} is not a directory: remove it`, { op: 'unpack', path: shown });
  }
  const st = fs.fstatSync(fd);
  // Only root could have made it in the caller's private directory; it is not the caller's to use or remove.
  if (st.uid !== process.geteuid!()) {
    fs.closeSync(fd);
    throw new RuntimeError(`image cache entry ${shown} is owned by uid ${st.uid}, not by you: remove it`, { op: 'unpack', path: shown });
  }
  return { path: shown, fd, at: name => `/proc/self/fd/${fd}/${name}`, close: () => fs.closeSync(fd) };
}

function readRecord(entry: Dir): Partial<SourceRecord> | undefined {
  try {
    const fd = openOwnFile(entry, 'source.json', O_RDONLY);
    try {
      return JSON.parse(fs.readFileSync(fd, 'utf8')) as Partial<SourceRecord>;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

type EntryState = 'valid' | 'missing' | 'stale';

/** Whether <cache>/<key> is an entry of the caller's own unpacked from this very partition. */
function checkEntry(cache: PrivateDir, key: string, src: UnpackSource): EntryState {
  const entry = openEntry(cache, key);
  if (!entry) return 'missing';
  try {
    if (fs.fstatSync(entry.fd).mode & 0o022) return 'stale';
    const rec = readRecord(entry);
    if (!rec) return 'stale';
    if (!fs.statSync(entry.at('rootfs'), { throwIfNoEntry: false })?.isDirectory()) return 'stale';
    // An entry of an older version, without the lock its users hold, could not be protected while in use.
    if (!fs.lstatSync(entry.at('use.lock'), { throwIfNoEntry: false })?.isFile()) return 'stale';
    const now = fs.fstatSync(src.fd, { bigint: true });
    const same =
      rec.version === 1 &&
      rec.uid === process.geteuid!() &&
      rec.dev === String(now.dev) &&
      rec.ino === String(now.ino) &&
      rec.size === String(now.size) &&
      rec.mtimeNs === String(now.mtimeNs) &&
      rec.offset === src.offset &&
      rec.partSize === src.size;
    if (!same) return 'stale';
    // A write, a chmod or a touch back to the old mtime all change the ctime: then the bytes must still match.
    if (rec.ctimeNs === String(now.ctimeNs)) return 'valid';
    return rec.sha256 === partitionDigest(src) ? 'valid' : 'stale';
  } finally {
    entry.close();
  }
}

/** Device nodes in the squashfs: an unprivileged unsquashfs cannot make them, so they are left out, by name. */
function deviceNodes(src: UnpackSource): string[] {
  const r = spawnSync('unsquashfs', ['-lln', '-offset', String(src.offset), '/proc/self/fd/3'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', src.fd],
    maxBuffer: 1 << 30,
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
  const why = String(r.stderr ?? '')
    .trim()
    .split('\n')
    .filter(Boolean)
    .pop();
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
  const r = spawnSync('unsquashfs', [...args, '/proc/self/fd/3'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', src.fd, cache.fd],
  });
  if (r.error || r.status !== 0) throw unsquashfsError(r);
  fs.rmSync(cache.at(`${tmp}/exclude`), { force: true });
}

/** Marks an entry used now: its use.lock's mtime is what the size limit orders entries by. */
function touch(fd: number): void {
  const now = new Date();
  fs.futimesSync(fd, now, now);
}

/**
 * Moves a stale entry out of its name (the caller holds <key>.lock) and removes it unless a run still uses it;
 * then it is left under .<key>-stale-* for a later sweep.
 */
function retire(cache: PrivateDir, key: string): void {
  const old = path.basename(fs.mkdtempSync(cache.at(`.${key}-stale-`)));
  fs.renameSync(cache.at(key), cache.at(`${old}/entry`));
  removeIfUnused(cache, old);
}

/** Removes the retired entry .<key>-stale-*\/entry when no run holds its use.lock. */
function removeIfUnused(cache: PrivateDir, old: string): boolean {
  const dir: Dir = { path: path.join(cache.path, old, 'entry'), at: name => cache.at(`${old}/entry/${name}`) };
  const exists = fs.lstatSync(dir.at('use.lock'), { throwIfNoEntry: false });
  const use = exists ? lockFile(dir, 'use.lock', { exclusive: true, wait: false }) : undefined;
  if (exists && use === undefined) return false;
  if (use !== undefined) fs.closeSync(use);
  removeTree(cache.at(old));
  return true;
}

/**
 * Makes the entry (the caller holds <key>.lock): unpack into a private temporary directory, record the source,
 * take the new entry's use lock, rename it into place. Returns the use lock's fd: the entry is in use from the
 * moment it has its name.
 */
function makeEntry(cache: PrivateDir, key: string, src: UnpackSource, state: EntryState): number {
  const before = fs.fstatSync(src.fd, { bigint: true });
  const sha256 = partitionDigest(src);
  const tmp = path.basename(fs.mkdtempSync(cache.at(`.${key}-`)));
  let use: number | undefined;
  try {
    unpack(cache, tmp, src);
    const after = fs.fstatSync(src.fd, { bigint: true });
    if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs) {
      throw new Error(`${src.path} changed while it was being unpacked`);
    }
    const record = sourceRecord(src, before, sha256, diskUsage(cache.at(`${tmp}/rootfs`)));
    fs.writeFileSync(cache.at(`${tmp}/source.json`), JSON.stringify(record), { mode: 0o600 });
    use = openOwnFile({ path: path.join(cache.path, tmp), at: name => cache.at(`${tmp}/${name}`) }, 'use.lock', O_RDWR | O_CREAT);
    native().flock(use, false, true);
    touch(use);
    if (state === 'stale') retire(cache, key);
    fs.renameSync(cache.at(tmp), cache.at(key));
    return use;
  } catch (e) {
    if (use !== undefined) fs.closeSync(use);
    removeTree(cache.at(tmp));
    throw e;
  }
}

/**
 * Takes the use lock of a valid entry (shared, waiting while it is being made or evicted) and marks it used;
 * undefined when there is no valid entry.
 */
function useEntry(cache: PrivateDir, key: string, src: UnpackSource): number | undefined {
  const entry = openEntry(cache, key);
  if (!entry) return undefined;
  let use: number | undefined;
  try {
    use = lockFile(entry, 'use.lock', { exclusive: false, wait: true });
  } finally {
    entry.close();
  }
  if (use === undefined) return undefined;
  // Checked by name once the lock is held: an eviction renames the entry away before it lets go of the lock.
  const held = fs.fstatSync(use);
  const now = fs.lstatSync(cache.at(`${key}/use.lock`), { throwIfNoEntry: false });
  if (!now || now.dev !== held.dev || now.ino !== held.ino || checkEntry(cache, key, src) !== 'valid') {
    fs.closeSync(use);
    return undefined;
  }
  touch(use);
  return use;
}

/** An unpacked image in use: its rootfs stays until release() (cache clean and the size limit pass it by). */
export interface CachedSandbox {
  dir: string;
  /** Whether it was in the cache already (else it was unpacked now). */
  cached: boolean;
  /** Keys of the entries removed to keep the cache within its size limit. */
  evicted: string[];
  /** Lets go of the entry's use lock; idempotent. The tree stays in the cache. */
  release(): void;
}

export interface UnpackOptions {
  /** Keep the cache at or below this many bytes, removing least recently used entries not in use; 0: no limit. */
  maxBytes?: number;
}

const CACHE_FIX = 'use a cache directory of your own (SINGULARITY_CACHEDIR or XDG_CACHE_HOME)';

/** How often the entry may vanish between being made or found and being locked (evictions by other runs). */
const ATTEMPTS = 8;

/**
 * The unpacked rootfs of the partition, from the cache under `cacheDir` (made if need be), in use until
 * released. Throws with what unsquashfs said when the image cannot be unpacked without errors.
 */
export function cachedUnpack(src: UnpackSource, cacheDir: string, o: UnpackOptions = {}): CachedSandbox {
  const cache = openPrivateDir(cacheDir, { what: 'image cache directory', create: true, trustedPath: true, fix: CACHE_FIX });
  try {
    const key = sandboxKey(src);
    const dir = path.join(cache.path, key, 'rootfs');
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const found = useEntry(cache, key, src);
      if (found !== undefined) return inUse(dir, true, found, []);
      const make = lockFile(cache, `${key}.lock`, { exclusive: true, wait: true, create: true })!;
      let made: number;
      try {
        // Another run may have made it while we waited: then use that one.
        const state = checkEntry(cache, key, src);
        if (state === 'valid') continue;
        made = makeEntry(cache, key, src, state);
      } finally {
        fs.closeSync(make);
      }
      return inUse(dir, false, made, o.maxBytes ? evictOver(cache, o.maxBytes) : []);
    }
    throw new RuntimeError(
      `image cache entry ${path.join(cache.path, key)} was removed ${ATTEMPTS} times while it was being opened: is the cache size limit smaller than the image?`,
      { op: 'unpack', path: cacheDir },
    );
  } finally {
    cache.close();
  }
}

function inUse(dir: string, cached: boolean, use: number, evicted: string[]): CachedSandbox {
  let held = true;
  return {
    dir,
    cached,
    evicted,
    release: () => {
      if (held) fs.closeSync(use);
      held = false;
    },
  };
}

/** What `cache list` shows of an entry. */
export interface SandboxEntry {
  key: string;
  path: string;
  /** Size on disk of the unpacked tree. */
  bytes: number;
  /** When a run last started from it. */
  lastUse: Date;
}

function entries(cache: PrivateDir): SandboxEntry[] {
  const out: SandboxEntry[] = [];
  for (const key of fs
    .readdirSync(cache.at('.'))
    .filter(n => KEY.test(n))
    .sort()) {
    const entry = openEntry(cache, key);
    if (!entry) continue;
    try {
      const recorded = readRecord(entry)?.bytes;
      const stamp = fs.lstatSync(entry.at('use.lock'), { throwIfNoEntry: false }) ?? fs.fstatSync(entry.fd);
      out.push({
        key,
        path: entry.path,
        lastUse: stamp.mtime,
        bytes: typeof recorded === 'number' && recorded >= 0 ? recorded : diskUsage(entry.at('.')),
      });
    } finally {
      entry.close();
    }
  }
  return out;
}

/**
 * Removes the entry unless a run uses it or is making it (then false). Its lock files go with it, removed while
 * held exclusively.
 */
function removeEntry(cache: PrivateDir, key: string): boolean {
  const make = lockFile(cache, `${key}.lock`, { exclusive: true, wait: false, create: true });
  if (make === undefined) return false;
  let gone: string | undefined;
  try {
    const entry = openEntry(cache, key);
    if (entry) {
      try {
        const exists = fs.lstatSync(entry.at('use.lock'), { throwIfNoEntry: false });
        const use = exists ? lockFile(entry, 'use.lock', { exclusive: true, wait: false }) : undefined;
        if (exists && use === undefined) return false;
        gone = path.basename(fs.mkdtempSync(cache.at(`.${key}-gone-`)));
        fs.renameSync(cache.at(key), cache.at(`${gone}/entry`));
        if (use !== undefined) fs.closeSync(use);
      } finally {
        entry.close();
      }
    }
    fs.rmSync(cache.at(`${key}.lock`), { force: true });
  } finally {
    fs.closeSync(make);
  }
  if (gone) removeTree(cache.at(gone));
  return true;
}

/** Removes least recently used entries not in use until the cache holds at most maxBytes; their keys. */
function evictOver(cache: PrivateDir, maxBytes: number): string[] {
  const all = entries(cache).sort((a, b) => a.lastUse.getTime() - b.lastUse.getTime());
  let total = all.reduce((n, e) => n + e.bytes, 0);
  const evicted: string[] = [];
  for (const e of all) {
    if (total <= maxBytes) break;
    if (!removeEntry(cache, e.key)) continue;
    total -= e.bytes;
    evicted.push(e.key);
  }
  return evicted;
}

/**
 * What an interrupted run left behind: unpackings whose maker is gone (its <key>.lock is free), retired
 * entries nobody uses any more, half-removed ones, and lock files of entries that are gone.
 */
function sweep(cache: PrivateDir): void {
  for (const name of fs.readdirSync(cache.at('.'))) {
    const m = /^\.([0-9a-f]{32})-(?:(stale|gone)-)?[A-Za-z0-9]{6}$/.exec(name);
    if (m?.[2] === 'gone') {
      removeTree(cache.at(name));
    } else if (m?.[2] === 'stale') {
      removeIfUnused(cache, name);
    } else if (m || /^[0-9a-f]{32}\.lock$/.test(name)) {
      const key = m ? m[1]! : name.slice(0, 32);
      if (!m && fs.existsSync(cache.at(key))) continue;
      // Held by a run making the entry, or by one removing it: theirs to finish.
      const make = lockFile(cache, `${key}.lock`, { exclusive: true, wait: false, create: true });
      if (make === undefined) continue;
      try {
        if (m) removeTree(cache.at(name));
        if (!fs.existsSync(cache.at(key))) fs.rmSync(cache.at(`${key}.lock`), { force: true });
      } finally {
        fs.closeSync(make);
      }
    }
  }
}

function openExisting(cacheDir: string): PrivateDir | undefined {
  return openPrivateDir(cacheDir, { what: 'image cache directory', trustedPath: true, fix: CACHE_FIX });
}

/** The entries of the cache under `cacheDir` (none when it does not exist). */
export function sandboxEntries(cacheDir: string): SandboxEntry[] {
  const cache = openExisting(cacheDir);
  if (!cache) return [];
  try {
    return entries(cache);
  } finally {
    cache.close();
  }
}

/** `cache clean`: removes the entry unless a run uses it or is making it (false then). */
export function removeSandboxEntry(cacheDir: string, key: string): boolean {
  const cache = openExisting(cacheDir);
  if (!cache) return true;
  try {
    return removeEntry(cache, key);
  } finally {
    cache.close();
  }
}

/** Removes what interrupted runs left in the cache under `cacheDir` (never anything in use or being made). */
export function sweepSandboxCache(cacheDir: string): void {
  const cache = openExisting(cacheDir);
  if (!cache) return;
  try {
    sweep(cache);
  } finally {
    cache.close();
  }
}
