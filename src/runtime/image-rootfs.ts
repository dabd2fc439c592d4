// A bundle whose root filesystem is an image file (a SIF, a squashfs or an ext3 image) instead of a
// directory: root.path names the file, or the annotation org.tsrt.sif names it (then root.path is not used),
// so engines that always pass a rootfs directory can still run a Singularity image through tsrt.
//
// The image is mounted read-only with root.readonly=true, otherwise as the lower layer of an overlay whose
// upper and work directories live in the container's state directory, so writes stay with the container and
// vanish at delete. As root the mount points live in a traversable directory of their own (/run/tsrt-images),
// not in the 0700 state root: a container with a user namespace must reach its rootfs as a mapped uid. Without
// root they live in the container's state directory, below the caller's own verified state root, which the
// container's user namespace (it maps the caller) reaches as well: never under a fixed name in a shared temp
// directory, which any other user could make first (R9). Every mount point is recorded before it is mounted;
// delete (and a failed create) unmount them, and the loop devices, set to auto-clear, go with them.
import { spawnSync } from 'node:child_process';
import { nodeCrypto } from '../lazy-crypto.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import { native } from '../native.js';
import { openPrivateDir } from '../private-dir.js';
import type { Spec } from '../spec/types.gen.js';
import { openRegularFile } from '../sif/index.js';
import { isImageFile, mountImage } from '../sif/mount.js';
import { inUserNamespace, mountsBelow } from './host.js';
import { siteConfig } from './site-config.js';

/** Annotation naming the image file (absolute, or relative to the bundle) to use as the root filesystem. */
export const SIF_ROOTFS_ANNOTATION = 'org.tsrt.sif';

export interface ImageRootfsRecord {
  /** The image file. */
  image: string;
  /** The config field that named it, for error messages: /root/path or /annotations/org.tsrt.sif. */
  field: string;
  /** <state dir>/image-rootfs: the overlay's upper and work directories. */
  base: string;
  /** The container's own directory of mount points (lower, merged): unmounted and removed at delete. */
  mountDir: string;
  /** Where the container's root is: mountDir/lower (read-only), mountDir/merged (overlay), or a cached sandbox. */
  rootfs: string;
  overlay: boolean;
}

const privileged = (): boolean => process.getuid?.() === 0;

/**
 * containerd's CRI marks a pod's sandbox (pause) container with this annotation set to "sandbox". A Pod's own
 * annotations reach the sandbox's config.json as well as every container's (pod_annotations), and the
 * sandbox image's /pause is not in the user's SIF, so the SIF annotation is for the pod's containers only.
 */
const CRI_CONTAINER_TYPE_ANNOTATION = 'io.kubernetes.cri.container-type';

/** The image the bundle asks for as its rootfs: the field naming it, and the file opened once, read-only. */
export interface ImageRootfsSource {
  image: string;
  field: string;
  /** Everything after this (checks, the loop device, FUSE, unpacking) uses this fd, never the path again. */
  fd: number;
}

/** The image file the bundle asks for as its rootfs, or undefined for a directory. */
export function imageRootfsSource(bundle: string, spec: Spec): ImageRootfsSource | undefined {
  const annotated = spec.annotations?.[SIF_ROOTFS_ANNOTATION];
  if (annotated !== undefined && spec.annotations?.[CRI_CONTAINER_TYPE_ANNOTATION] !== 'sandbox') {
    const field = `/annotations/${SIF_ROOTFS_ANNOTATION}`;
    const image = path.resolve(bundle, annotated);
    const bad = (why: string): RuntimeError => new RuntimeError(`config.json: ${field}: ${why}`, { op: 'config.json', path: field });
    if (!fs.existsSync(image)) throw bad(`image ${image} does not exist`);
    let fd: number;
    try {
      fd = openRegularFile(image);
    } catch (e) {
      throw bad((e as RuntimeError).errno ? (e as Error).message : `${image} is not an image file`);
    }
    try {
      if (privileged() && !inUserNamespace()) checkAnnotatedImage(image, fd, bundle, bad);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    return { image, field, fd };
  }
  // Any other file keeps the usual "not a directory" error from the rootfs checks.
  const rootPath = path.resolve(bundle, spec.root!.path);
  return isImageFile(rootPath) ? { image: rootPath, field: '/root/path', fd: openRegularFile(rootPath) } : undefined;
}

/**
 * As root, the annotation reaches files the bundle's owner (or whoever wrote a Pod manifest) may not read: the
 * image must lie inside a directory the site config allows, belong to root or to the bundle's owner, and be
 * writable by nobody else. Checked on the open fd, so the file checked is the file mounted.
 */
function checkAnnotatedImage(image: string, fd: number, bundle: string, bad: (why: string) => RuntimeError): void {
  const config = siteConfig();
  const real = fs.readlinkSync(`/proc/self/fd/${fd}`);
  const shown = real === image ? image : `${image} (${real})`;
  const inside = config.sifAnnotationDirs.some(dir => {
    const allowed = fs.existsSync(dir) ? fs.realpathSync(dir) : dir;
    return real.startsWith(allowed.endsWith('/') ? allowed : `${allowed}/`);
  });
  if (!inside) {
    const allowed = config.sifAnnotationDirs.length ? config.sifAnnotationDirs.join(', ') : 'none';
    throw bad(
      `image ${shown} is not in a directory that ${config.file} allows for a root tsrt (sif annotation dir = ...; allowed: ${allowed})`,
    );
  }
  const st = fs.fstatSync(fd);
  const bundleOwner = fs.statSync(bundle).uid;
  if (st.uid !== 0 && st.uid !== bundleOwner)
    throw bad(`image ${shown} is owned by uid ${st.uid}, neither root nor the bundle's owner (uid ${bundleOwner})`);
  if (st.mode & 0o022) throw bad(`image ${shown} is writable by group or others (mode 0${(st.mode & 0o777).toString(8)})`);
}

/** Root's directory of image mount points (traversable, 0711). */
const IMAGE_MOUNTS = '/run/tsrt-images';

export function planImageRootfs(stateDir: string, source: { image: string; field: string }, readonly: boolean): ImageRootfsRecord {
  const { image, field } = source;
  const base = path.resolve(stateDir, 'image-rootfs');
  // Unique per state dir and id: two runtimes (--root) may use the same container id.
  const tag = nodeCrypto().createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 12);
  const mountDir = privileged() ? path.join(IMAGE_MOUNTS, `${path.basename(stateDir)}-${tag}`) : path.join(stateDir, 'image-mnt');
  return { image, field, base, mountDir, rootfs: path.join(mountDir, readonly ? 'lower' : 'merged'), overlay: !readonly };
}

/**
 * Mounts the image open as `fd` (imageRootfsSource's; closed here) and the overlay, setting rec.rootfs; on
 * failure undoes what it mounted and throws an error naming the config field.
 */
export function mountImageRootfs(rec: ImageRootfsRecord, fd: number, log: (msg: string) => void): void {
  const lower = path.join(rec.mountDir, 'lower');
  try {
    if (privileged()) openPrivateDir(IMAGE_MOUNTS, { what: 'image mount directory', create: true, mode: 0o711 }).close();
    fs.mkdirSync(rec.mountDir, { mode: 0o711 });
    fs.mkdirSync(lower, { mode: 0o755 });
    fs.mkdirSync(rec.base, { mode: 0o700 });
    // As root: a kernel or FUSE mount. Without root, the extracted sandbox is the last resort: it is shared
    // by every container of the image, so it only serves read-only roots.
    const methods = privileged()
      ? (['loop', 'squashfuse', 'fuse2fs'] as const)
      : rec.overlay
        ? (['squashfuse', 'fuse2fs'] as const)
        : (['squashfuse', 'fuse2fs', 'sandbox'] as const);
    const mounted = mountImage(rec.image, { target: lower, log, methods: [...methods], fd });
    if (mounted.method === 'sandbox') {
      rec.rootfs = mounted.dir;
      return;
    }
    if (!rec.overlay) return;
    if (!privileged()) throw new Error('a writable image root needs root for its overlay: set root.readonly to true');
    const upper = path.join(rec.base, 'upper');
    const work = path.join(rec.base, 'work');
    fs.mkdirSync(upper, { mode: 0o755 });
    fs.mkdirSync(work, { mode: 0o700 });
    fs.mkdirSync(rec.rootfs, { mode: 0o755 });
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, rec.rootfs], {
      encoding: 'utf8',
    });
    if (r.error || r.status !== 0) throw new Error(`overlay mount: ${(r.error?.message ?? r.stderr).trim()}`);
  } catch (e) {
    unmountImageRootfs(rec, () => {});
    const why = e instanceof Error ? e.message : String(e);
    throw new RuntimeError(`invalid rootfs: ${rec.field}: cannot mount image ${rec.image}: ${why}`, { op: 'rootfs', path: rec.field });
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Unmounts everything below mountDir (deepest first) and removes its empty mount points; warnings go to warn.
 * Safe to call repeatedly, and on a create that died before mounting anything.
 */
export function unmountImageRootfs(rec: ImageRootfsRecord, warn: (msg: string) => void): void {
  let unmounted = true;
  for (const point of mountsBelow(rec.mountDir)) {
    try {
      if (privileged()) native().unmount(point);
      else unmountFuse(point);
    } catch (e) {
      unmounted = false;
      warn((e as Error).message);
    }
  }
  if (!unmounted) return;
  // rmdir, never a recursive removal: whatever is still mounted or filled is left alone, not deleted through.
  for (const dir of [path.join(rec.mountDir, 'merged'), path.join(rec.mountDir, 'lower'), rec.mountDir]) {
    try {
      fs.rmdirSync(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') warn(`remove ${dir}: ${(e as Error).message}`);
    }
  }
}

/** Without root only FUSE mounts are ours, and only the setuid fusermount may take them down. */
function unmountFuse(point: string): void {
  for (const tool of ['fusermount3', 'fusermount']) {
    const r = spawnSync(tool, ['-u', '-z', point], { encoding: 'utf8' });
    if (!r.error && r.status === 0) return;
    if (!r.error) throw new Error(`${tool} -u ${point}: ${r.stderr.trim()}`);
  }
  throw new Error(`cannot unmount ${point}: fusermount is not installed`);
}
