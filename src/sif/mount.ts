/**
 * Making an image's filesystem available as a directory: a SIF (its primary partition, or a chosen partition
 * object), a plain squashfs file, a plain ext3 image, or a sandbox directory (returned as it is).
 *
 *   const m = mountImage('alpine.sif');          // logs one line saying which path was taken
 *   m.dir                                         // the image's root directory
 *   m.method                                      // 'loop' | 'squashfuse' | 'fuse2fs' | 'sandbox' | 'directory'
 *   m.release();                                  // unmounts (loop devices auto-clear), removes a temp mount point
 *
 * The image file is opened once (without blocking: never a FIFO) and everything after works on that fd: the
 * SIF header, the loop device (attached to the fd), squashfuse and fuse2fs (handed the fd), the unpacked
 * sandbox. A caller that checked the file itself passes its fd (opts.fd), so nothing resolves the path again.
 *
 * Paths, in order: as root a kernel loop mount (read-only loop device at the partition's offset and size,
 * auto-clear, so the kernel frees it at unmount, even if this process dies); otherwise, or when that fails,
 * squashfuse (`-o offset=`) or fuse2fs (ext3); for squashfs, an unpacked sandbox as the last resort, from the
 * per-user cache under $XDG_CACHE_HOME/tsrt-singularity/sandbox (./unpack-cache.ts).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RuntimeError, fromSystemError } from '../errors.js';
import { native } from '../native.js';
import { FsType, SifImage, openRegularFile } from './index.js';
import { cachedUnpack, type CachedSandbox } from './unpack-cache.js';

export { sandboxKey } from './unpack-cache.js';

export type ImageKind = 'sif' | 'squashfs' | 'ext3' | 'directory';
export type MountMethod = 'loop' | 'squashfuse' | 'fuse2fs' | 'sandbox' | 'directory';

/** Where an image's filesystem lives inside its file. */
export interface ImageSource {
  /** The image file (or directory), as given. */
  path: string;
  kind: ImageKind;
  /** Filesystem type at [offset, offset+size): 'squashfs' or 'ext3'; 'directory' for sandboxes. */
  fsType: 'squashfs' | 'ext3' | 'directory';
  offset: number;
  size: number;
  /** SIF object id of the partition, 0 for plain images. */
  objectId: number;
}

export interface MountOptions {
  /** Mount point to use; a fresh directory under the temp dir (removed at release) by default. */
  target?: string;
  /** Methods to try in order; by default loop (root only), then squashfuse/fuse2fs, then sandbox. */
  methods?: MountMethod[];
  /** Mount a SIF partition other than the primary one. */
  objectId?: number;
  /** ext3 only: mount read-write (loop or fuse2fs); squashfs is always read-only. */
  writable?: boolean;
  /** Sandbox cache directory; default $XDG_CACHE_HOME/tsrt-singularity/sandbox (~/.cache/...). */
  cacheDir?: string;
  /** Size limit of the sandbox cache in bytes (least recently used entries not in use go); none by default. */
  cacheMaxBytes?: number;
  /**
   * The image, already open (read-only, or read-write for a writable ext3) and checked by the caller: used
   * instead of opening `image` again, and left open.
   */
  fd?: number;
  /** Receives the one-line "which path was taken" message; default prints it to stderr as INFO. */
  log?: (line: string) => void;
}

export interface MountedImage {
  source: ImageSource;
  /** The image's root directory. */
  dir: string;
  method: MountMethod;
  /** The loop device used (already set to auto-clear), for loop mounts. */
  loopDevice?: string;
  /** The one-line message that was logged. */
  message: string;
  /** Undoes the mount; idempotent. A sandbox stays in the cache: release lets go of its use lock. */
  release(): void;
}

const SQUASHFS_MAGIC = Buffer.from('hsqs');
const EXT_MAGIC_OFFSET = 1080;
const EXT_MAGIC = 0xef53;

function fsTypeAt(fd: number, offset: number): 'squashfs' | 'ext3' | undefined {
  const head = Buffer.alloc(EXT_MAGIC_OFFSET + 2);
  const n = fs.readSync(fd, head, 0, head.length, offset);
  if (n >= 4 && head.subarray(0, 4).equals(SQUASHFS_MAGIC)) return 'squashfs';
  if (n === head.length && head.readUInt16LE(EXT_MAGIC_OFFSET) === EXT_MAGIC) return 'ext3';
  return undefined;
}

/** True for a file that starts like a SIF, squashfs or ext2/3/4 image (what inspectImage accepts). */
export function isImageFile(file: string): boolean {
  let fd: number;
  try {
    fd = openRegularFile(file);
  } catch {
    return false;
  }
  try {
    return SifImage.isSif(`/proc/self/fd/${fd}`) || fsTypeAt(fd, 0) !== undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Works out what an image is and where its filesystem sits, checking the filesystem magic at that offset. */
export function inspectImage(image: string, objectId?: number): ImageSource {
  let st: fs.Stats;
  try {
    st = fs.statSync(image);
  } catch (e) {
    throw fromSystemError('image', image, e);
  }
  if (st.isDirectory()) return { path: image, kind: 'directory', fsType: 'directory', offset: 0, size: 0, objectId: 0 };
  const fd = openRegularFile(image);
  try {
    return inspectOpenImage(image, fd, objectId);
  } finally {
    fs.closeSync(fd);
  }
}

/** inspectImage for an image file already open as `fd` (`image` names it in messages). */
export function inspectOpenImage(image: string, fd: number, objectId?: number): ImageSource {
  const size = fs.fstatSync(fd).size;
  if (SifImage.isSif(`/proc/self/fd/${fd}`)) {
    const sif = SifImage.openFd(image, fd);
    try {
      const part = objectId !== undefined ? sif.descriptor(objectId) : sif.primaryPartition();
      if (!part) throw new RuntimeError(`${image}: SIF has no primary system partition`, { op: 'image', path: image });
      if (!part.partition) {
        throw new RuntimeError(`${image}: SIF object ${part.id} is not a partition`, { op: 'image', path: image });
      }
      const { fsType } = part.partition;
      if (fsType !== FsType.Squashfs && fsType !== FsType.Ext3) {
        const what = fsType === FsType.EncryptedSquashfs ? 'an encrypted squashfs' : `filesystem type ${fsType}`;
        throw new RuntimeError(`${image}: SIF partition ${part.id} is ${what}, which cannot be mounted`, {
          op: 'image',
          path: image,
        });
      }
      const want = fsType === FsType.Squashfs ? 'squashfs' : 'ext3';
      if (fsTypeAt(fd, part.offset) !== want) {
        throw new RuntimeError(`${image}: SIF partition ${part.id} does not start with a ${want} superblock`, {
          op: 'image',
          path: image,
        });
      }
      return { path: image, kind: 'sif', fsType: want, offset: part.offset, size: part.size, objectId: part.id };
    } finally {
      sif.close();
    }
  }
  const fsType = fsTypeAt(fd, 0);
  if (!fsType) {
    throw new RuntimeError(`${image}: not a SIF, squashfs or ext3 image, nor a directory`, { op: 'image', path: image });
  }
  return { path: image, kind: fsType, fsType, offset: 0, size, objectId: 0 };
}

/**
 * Runs a helper tool; returns its trimmed stdout and stderr, or throws with the last line it complained with.
 * `fd` is handed to it as its fd 3 (/proc/self/fd/3 there).
 */
function run(cmd: string, args: string[], fd?: number): { out: string; err: string } {
  const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe'];
  if (fd !== undefined) stdio.push(fd);
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${cmd} is not installed`);
    throw new Error(`${cmd}: ${r.error.message}`);
  }
  const out = r.stdout.trim();
  const err = r.stderr.trim();
  if (r.status !== 0) throw new Error(`${cmd}: ${err.split('\n').pop() || `exit status ${r.status}`}`);
  return { out, err };
}

function unmount(dir: string, fuse: boolean): void {
  if (fuse && process.getuid?.() !== 0) {
    try {
      run('fusermount3', ['-u', dir]);
    } catch {
      run('fusermount', ['-u', dir]);
    }
    return;
  }
  native().unmountNow(dir);
}

function loopMount(src: ImageSource, fd: number, dir: string, writable: boolean): string {
  // Attached to the open image (no path resolved after the checks), auto-clear: the kernel frees the device
  // at unmount, so none outlives the mount even when this process is killed; unmounted, it goes at close.
  const loop = native().loopAttach(fd, src.offset, src.size, !writable);
  try {
    native().mountDevice(loop.device, dir, src.fsType, !writable);
  } finally {
    native().closeFd(loop.fd);
  }
  return loop.device;
}

function fuseMount(src: ImageSource, fd: number, dir: string, writable: boolean): void {
  const tool = src.fsType === 'squashfs' ? 'squashfuse' : 'fuse2fs';
  const image = '/proc/self/fd/3';
  const { err } =
    src.fsType === 'squashfs'
      ? run(tool, ['-o', `offset=${src.offset}`, image, dir], fd)
      : run(tool, ['-o', `${writable ? 'rw' : 'ro'},offset=${src.offset}`, image, dir], fd);
  // fuse2fs reports some failures (no access to /dev/fuse) on stderr yet exits 0: trust only a mount.
  if (!isMountPoint(dir)) throw new Error(`${tool}: ${err.split('\n').pop() || 'nothing was mounted'}`);
}

function isMountPoint(dir: string): boolean {
  return fs.statSync(dir).dev !== fs.statSync(path.dirname(dir)).dev;
}

export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'tsrt-singularity', 'sandbox');
}

function extractSandbox(src: ImageSource, fd: number, cacheDir: string, maxBytes?: number): CachedSandbox {
  if (src.fsType !== 'squashfs') throw new Error('only squashfs images can be extracted');
  return cachedUnpack({ path: src.path, fd, offset: src.offset, size: src.size }, cacheDir, { maxBytes });
}

function defaultMethods(src: ImageSource): MountMethod[] {
  const fuse: MountMethod = src.fsType === 'squashfs' ? 'squashfuse' : 'fuse2fs';
  const methods: MountMethod[] = process.getuid?.() === 0 ? ['loop', fuse] : [fuse];
  if (src.fsType === 'squashfs') methods.push('sandbox');
  return methods;
}

const describe: Record<MountMethod, string> = {
  loop: 'kernel loop mount',
  squashfuse: 'squashfuse mount',
  fuse2fs: 'fuse2fs mount',
  sandbox: 'extracted sandbox',
  directory: 'sandbox directory',
};

/** Makes the image's filesystem available as a directory, trying each method in turn. */
export function mountImage(image: string, opts: MountOptions = {}): MountedImage {
  if (opts.fd !== undefined) return mountOpenImage(image, opts.fd, opts);
  let st: fs.Stats;
  try {
    st = fs.statSync(image);
  } catch (e) {
    throw fromSystemError('image', image, e);
  }
  if (st.isDirectory()) return mountOpenImage(image, -1, opts);
  let fd: number;
  try {
    fd = openRegularFile(image, !!opts.writable);
  } catch (e) {
    // Only an ext3 image is ever mounted writable: anything the caller may not write is still readable.
    if (!opts.writable || !['EACCES', 'EPERM', 'EROFS'].includes((e as RuntimeError).errno)) throw e;
    fd = openRegularFile(image);
  }
  try {
    return mountOpenImage(image, fd, opts);
  } finally {
    fs.closeSync(fd);
  }
}

function mountOpenImage(image: string, fd: number, opts: MountOptions): MountedImage {
  const src = fd < 0 ? inspectImage(image) : inspectOpenImage(image, fd, opts.objectId);
  const log = opts.log ?? ((line: string) => process.stderr.write(`INFO:    ${line}\n`));
  const label = src.kind === 'sif' ? `${image} (SIF partition ${src.objectId}, ${src.fsType})` : image;
  if (src.kind === 'directory') {
    const message = `using ${image} as a sandbox directory`;
    log(message);
    return { source: src, dir: image, method: 'directory', message, release: () => {} };
  }
  const writable = !!opts.writable && src.fsType === 'ext3';
  const failures: string[] = [];
  for (const method of opts.methods ?? defaultMethods(src)) {
    if (method === 'sandbox') {
      try {
        const sandbox = extractSandbox(src, fd, opts.cacheDir ?? defaultCacheDir(), opts.cacheMaxBytes);
        const why = failures.length ? ` (${failures.join('; ')})` : '';
        const evicted = sandbox.evicted.length
          ? `; ${sandbox.evicted.length} least recently used sandbox(es) removed to stay within the cache's size limit`
          : '';
        const message = `${label}: using ${sandbox.cached ? 'the cached' : 'a newly'} extracted sandbox ${sandbox.dir}${why}${evicted}`;
        log(message);
        return { source: src, dir: sandbox.dir, method, message, release: () => sandbox.release() };
      } catch (e) {
        failures.push(`sandbox: ${(e as Error).message}`);
        continue;
      }
    }
    if (method === 'directory') continue;
    const ownTarget = opts.target === undefined;
    // R9: mkdtemp makes a random name itself, mode 0700; in the sticky temp dir no other user can rename or
    // replace it, so the mount point handed to mount and FUSE stays ours.
    const dir = opts.target ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-sif-'));
    try {
      const loopDevice = method === 'loop' ? loopMount(src, fd, dir, writable) : undefined;
      if (method !== 'loop') fuseMount(src, fd, dir, writable);
      const via = loopDevice ? ` via ${loopDevice}` : '';
      const why = failures.length ? ` (${failures.join('; ')})` : '';
      const message = `${label}: ${describe[method]}${writable ? '' : ' (read-only)'} on ${dir}${via}${why}`;
      log(message);
      let released = false;
      const release = (): void => {
        if (released) return;
        unmount(dir, method !== 'loop');
        released = true;
        if (ownTarget) fs.rmdirSync(dir);
      };
      return { source: src, dir, method, loopDevice, message, release };
    } catch (e) {
      failures.push(`${describe[method]}: ${(e as Error).message}`);
      if (ownTarget) fs.rmdirSync(dir);
    }
  }
  throw new RuntimeError(`cannot mount ${label}: ${failures.join('; ')}`, { op: 'mount', path: image });
}
