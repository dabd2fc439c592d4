// Shared plumbing of the tsrt-singularity run tests: busybox sandbox images laid out as Singularity builds
// them (built by the test user, as a user would), plain squashfs images of them, and dist/tsrt-singularity
// run as that unprivileged user with a private runtime directory and cache.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataType, FsType, PartType, SifImage } from '../src/sif/index.js';
import { REPO, testUser, tmpdir, type Result } from './helpers.js';

export const SINGULARITY = path.join(REPO, 'dist', 'tsrt-singularity');

export interface SingOptions {
  env?: Record<string, string>;
  cwd?: string;
  input?: string;
  timeout?: number;
  hostSetup?: string;
}

export interface Kit {
  user: { name: string; uid: number; gid: number };
  /** A scratch directory owned by the test user (removed at teardown). */
  dir(prefix?: string): string;
  /**
   * Runs tsrt-singularity as the test user; `env` adds to a minimal login-like environment. `hostSetup` is a
   * shell script root runs first in a private mount namespace the run then happens in: how a test gives the
   * user a site configuration, a /dev node or /etc file of its own without touching the host's.
   */
  sing(args: string[], o?: SingOptions): Result;
  /** The command line sing() runs (for callers that must not block, such as tests serving HTTP themselves). */
  command(args: string[], o?: SingOptions): { file: string; argv: string[]; cwd: string; input: string; timeout: number };
  /** The private XDG_RUNTIME_DIR of this test file. */
  runtime: string;
  home: string;
}

export interface SingOptions {
  env?: Record<string, string>;
  cwd?: string;
  input?: string;
  timeout?: number;
}

/** The tests create the unprivileged user and switch to it: without root the file is skipped. */
export function kit(t: { teardown(fn: () => void): void; plan(n: number, why: string): void }): Kit {
  if (process.geteuid?.() !== 0) {
    t.plan(0, 'needs root to create the unprivileged test user and switch to it');
    process.exit(0);
  }
  const user = testUser();
  const made: string[] = [];
  const dir = (prefix = 'singrun-'): string => {
    const d = tmpdir(prefix);
    fs.chownSync(d, user.uid, user.gid);
    made.push(d);
    return d;
  };
  const runtime = dir('singrun-rt-');
  // An XDG_RUNTIME_DIR as logind makes it: the user's own, mode 0700 (tsrt-singularity refuses any other).
  fs.chmodSync(runtime, 0o700);
  const home = `/home/${user.name}`;
  t.teardown(() => {
    // Instances this file left running are stopped by their owner before the directories go.
    spawnSync('runuser', ['-u', user.name, '--', 'env', `XDG_RUNTIME_DIR=${runtime}`, SINGULARITY, 'instance', 'stop', '--all', '-F'], {
      stdio: 'ignore',
      timeout: 60_000,
    });
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  });
  const command: Kit['command'] = (args, o = {}) => {
    const env = {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HOME: home,
      USER: user.name,
      LOGNAME: user.name,
      XDG_RUNTIME_DIR: runtime,
      SINGULARITY_CACHEDIR: path.join(runtime, 'cache'),
      ...o.env,
    };
    const argv = ['runuser', '-u', user.name, '--', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), SINGULARITY, ...args];
    const full =
      o.hostSetup === undefined
        ? argv
        : ['unshare', '-m', '--propagation', 'private', 'sh', '-ec', `${o.hostSetup}\nexec "$@"`, 'host-setup', ...argv];
    return { file: full[0]!, argv: full.slice(1), cwd: o.cwd ?? home, input: o.input ?? '', timeout: o.timeout ?? 120_000 };
  };
  const sing: Kit['sing'] = (args, o = {}) => {
    const c = command(args, o);
    const opts: SpawnSyncOptions = { cwd: c.cwd, input: c.input, timeout: c.timeout };
    const r = spawnSync(c.file, c.argv, opts);
    return { code: r.status ?? -1, signal: r.signal ?? null, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '' };
  };
  return { user, dir, sing, command, runtime, home };
}

/** The directory tsrt-singularity reads its site configuration from (for every user but root). */
export const SITE_CONFIG_DIR = '/etc/tsrt-singularity';

/**
 * A site configuration directory holding `files` (singularity.conf, nvliblist.conf, ...), made and owned by root
 * as an administrator's would be, and the hostSetup script that shows it at /etc/tsrt-singularity in the run's
 * private mount namespace only: other runs on the machine keep the host's (normally absent) configuration.
 */
export function siteConfigSetup(tt: { teardown(fn: () => void): void }, files: Record<string, string>): { dir: string; hostSetup: string } {
  const dir = tmpdir('tsrt-siteconf-');
  tt.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text, { mode: 0o644 });
  // The mount point must exist; an empty directory there is the same as no configuration.
  fs.mkdirSync(SITE_CONFIG_DIR, { recursive: true, mode: 0o755 });
  return { dir, hostSetup: `mount --bind ${dir} ${SITE_CONFIG_DIR}` };
}

export interface ImageParts {
  runscript?: string;
  startscript?: string;
  test?: string;
  help?: string;
  labels?: Record<string, string>;
  environment?: string;
  deffile?: string;
  apps?: Record<string, { runscript?: string; help?: string; environment?: string }>;
  /** Extra files, path inside the image -> content. */
  files?: Record<string, string>;
}

/** A busybox sandbox with /.singularity.d as Singularity lays it out, owned by the test user. */
export function sandbox(k: Kit, parts: ImageParts = {}): string {
  const root = path.join(k.dir('singrun-img-'), 'image');
  const w = (rel: string, text: string, mode = 0o644): void => {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text, { mode });
  };
  for (const d of [
    'bin',
    'dev',
    'proc',
    'sys',
    'tmp',
    'var/tmp',
    'etc',
    'home',
    'root',
    '.singularity.d/env',
    '.singularity.d/actions',
    '.singularity.d/libs',
  ]) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
  const applets = spawnSync('/bin/busybox', ['--list'])
    .stdout.toString()
    .split('\n')
    .filter(a => a && a !== 'busybox');
  for (const a of applets) fs.symlinkSync('busybox', path.join(root, 'bin', a));
  w('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  w('etc/group', 'root:x:0:\nnogroup:x:65534:\n');
  w('.singularity.d/env/01-base.sh', '#!/bin/sh\n');
  w('.singularity.d/env/99-base.sh', '#!/bin/sh\nPS1="Singularity> "\nexport PS1\n');
  if (parts.environment !== undefined) w('.singularity.d/env/90-environment.sh', `#!/bin/sh\n${parts.environment}\n`);
  if (parts.runscript !== undefined) w('.singularity.d/runscript', `#!/bin/sh\n${parts.runscript}\n`, 0o755);
  if (parts.startscript !== undefined) w('.singularity.d/startscript', `#!/bin/sh\n${parts.startscript}\n`, 0o755);
  if (parts.test !== undefined) w('.singularity.d/test', `#!/bin/sh\n${parts.test}\n`, 0o755);
  if (parts.help !== undefined) w('.singularity.d/runscript.help', `${parts.help}\n`);
  if (parts.deffile !== undefined) w('.singularity.d/Singularity', parts.deffile);
  w('.singularity.d/labels.json', JSON.stringify(parts.labels ?? {}, null, 2));
  for (const [name, app] of Object.entries(parts.apps ?? {})) {
    fs.mkdirSync(path.join(root, 'scif/apps', name, 'bin'), { recursive: true });
    if (app.runscript !== undefined) w(`scif/apps/${name}/scif/runscript`, `#!/bin/sh\n${app.runscript}\n`, 0o755);
    if (app.help !== undefined) w(`scif/apps/${name}/scif/runscript.help`, `${app.help}\n`);
    if (app.environment !== undefined) w(`scif/apps/${name}/scif/env/90-environment.sh`, `#!/bin/sh\n${app.environment}\n`);
  }
  for (const [rel, text] of Object.entries(parts.files ?? {})) w(rel, text);
  spawnSync('chown', ['-R', `${k.user.uid}:${k.user.gid}`, path.dirname(root)]);
  return root;
}

/** The sandbox packed as a plain squashfs image (what `build` writes inside a SIF), owned by the test user. */
export function squashfs(k: Kit, sandboxDir: string): string {
  const file = path.join(k.dir('singrun-sqfs-'), 'image.sqfs');
  const r = spawnSync('mksquashfs', [sandboxDir, file, '-noappend', '-quiet', '-no-progress', '-all-root'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mksquashfs failed: ${r.stderr}`);
  fs.chownSync(file, k.user.uid, k.user.gid);
  return file;
}

/** The sandbox as a SIF file: its squashfs as the primary system partition, written with the SIF library. */
export function sif(k: Kit, sandboxDir: string): string {
  const sqfs = squashfs(k, sandboxDir);
  const file = path.join(path.dirname(sqfs), 'image.sif');
  SifImage.create(file, [
    { dataType: DataType.Partition, data: { path: sqfs }, partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys } },
  ]).close();
  fs.chownSync(file, k.user.uid, k.user.gid);
  fs.chmodSync(file, 0o755);
  return file;
}
