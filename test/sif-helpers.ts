// Shared by the tsrt-singularity tests: the reference fixtures and the built dist/tsrt-singularity.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as path from 'node:path';
import { REPO, fixture, type Result } from './helpers.js';

/** The sylabs/sif test images and keys, vendored (test/fixtures/sif/PROVENANCE.md). */
export const FIXTURES = fixture('sif');
export const IMAGES = fixture('sif', 'images');
export const KEYS = fixture('sif', 'keys');
export const REPO_DIST = path.join(REPO, 'dist');
export const SINGULARITY = path.join(REPO_DIST, 'tsrt-singularity');

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
