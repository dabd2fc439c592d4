// Shared by the tsrt-singularity tests: the reference fixtures and the built dist/tsrt-singularity.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Test } from 'tap';
import { DataType, FsType, PartType, SifImage } from '../src/sif/index.js';
import { REPO, editConfig, fixture, hostMountsContaining, testUser, userBundle, type Result } from './helpers.js';

/** The sylabs/sif test images and keys, vendored (test/fixtures/sif/PROVENANCE.md). */
export const FIXTURES = fixture('sif');
export const IMAGES = fixture('sif', 'images');
export const KEYS = fixture('sif', 'keys');
export const REPO_DIST = path.join(REPO, 'dist');
export const SINGULARITY = path.join(REPO_DIST, 'tsrt-singularity');

/** `tsrt-singularity sif add`'s arguments that add a squashfs file as the image's primary system partition. */
export function primaryPartitionArgs(image: string, squashfs: string): string[] {
  return ['sif', 'add', '--datatype', '4', '--partfs', '1', '--parttype', '2', '--partarch', '2', '--groupid', '1', image, squashfs];
}

/** Runs dist/tsrt-singularity (as `user` through runuser when given). */
export function singularity(args: string[], opts: SpawnSyncOptions & { user?: string } = {}): Result {
  const { user, ...spawnOpts } = opts;
  const r = user
    ? spawnSync('runuser', ['-u', user, '--', SINGULARITY, ...args], { timeout: 120_000, ...spawnOpts })
    : spawnSync(SINGULARITY, args, { timeout: 120_000, ...spawnOpts });
  return {
    code: r.status ?? -1,
    signal: r.signal ?? null,
    stdout: r.stdout?.toString() ?? '',
    stderr: r.stderr?.toString() ?? '',
  };
}

/**
 * The unprivileged test user's bundle whose root is a read-only SIF image (squashfs of a busybox rootfs that
 * has /etc/greeting "hello from the SIF") running `args`, in a home of theirs removed at the end unless
 * something is still mounted under it.
 */
export function userSifBundle(t: Test, prefix: string, args: string[]) {
  const user = testUser();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(home, 0o755);
  fs.chownSync(home, user.uid, user.gid);
  t.teardown(() => {
    if (hostMountsContaining(home).length === 0) fs.rmSync(home, { recursive: true, force: true });
  });
  const bundle = userBundle(home, user, args);
  fs.writeFileSync(path.join(bundle, 'rootfs', 'etc', 'greeting'), 'hello from the SIF\n');
  const squashfs = path.join(home, 'rootfs.sqfs');
  const mk = spawnSync('runuser', ['-u', user.name, '--', 'mksquashfs', path.join(bundle, 'rootfs'), squashfs, '-quiet', '-noappend'], {
    encoding: 'utf8',
  });
  if (mk.status !== 0) throw new Error(`mksquashfs: ${mk.stderr}`);
  const image = path.join(bundle, 'image.sif');
  SifImage.create(image, [
    { dataType: DataType.Partition, data: { path: squashfs }, partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys } },
  ]).close();
  fs.chownSync(image, user.uid, user.gid);
  editConfig(bundle, spec => {
    spec.root = { path: 'image.sif', readonly: true };
  });
  return { user, home, bundle };
}
