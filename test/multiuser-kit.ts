// Plumbing of the multi-user tests (test/security/issue13-*): a victim (the test user) and an attacking
// neighbour (a second unprivileged user), commands run as either with a minimal login-like environment, and
// the places a multi-user node shares (a root-owned sticky world-writable directory, as /tmp, /var/tmp or a
// site's /run/tsrt-slurm are). What the attacker plants is made by root and handed to the attacker (chown):
// the same owner, mode and content the attacker could make alone.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, attackerUser, editConfig, testUser, tmpdir, type Result } from './helpers.js';
import { SINGULARITY, primaryPartitionArgs } from './sif-helpers.js';

export interface User {
  name: string;
  uid: number;
  gid: number;
}

export interface MultiUser {
  victim: User;
  attacker: User;
  /** A fresh root-owned directory with mode 1777 (like /tmp), removed at the end of the file. */
  shared(prefix?: string): string;
  /** A fresh directory owned by `u` with `mode`, removed at the end of the file. */
  owned(u: User, mode?: number, prefix?: string): string;
  /** Runs argv as `u` with only PATH, HOME, USER, LOGNAME and `env` in its environment. */
  as(u: User, argv: string[], o?: { env?: Record<string, string>; cwd?: string; timeout?: number }): Result;
  /** Starts argv as `u` in the background (stdio ignored), killed by pid at the end of the file; returns its pid. */
  background(u: User, argv: string[]): number;
  /** Gives path (and, with recursive, everything below it) to `u`, with `mode` on path itself when given. */
  give(u: User, file: string, mode?: number, recursive?: boolean): void;
}

/** The file's two users; the file is skipped (plan 0) unless it runs as root, which may create and become them. */
export function multiUser(t: { teardown(fn: () => void): void; plan(n: number, why: string): void }): MultiUser {
  if (process.geteuid?.() !== 0) {
    t.plan(0, 'multi-user tests need root to create the two users and switch between them');
    process.exit(0);
  }
  const victim = testUser();
  const attacker = attackerUser();
  const made: string[] = [];
  const pids: number[] = [];
  t.teardown(() => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  });
  const give: MultiUser['give'] = (u, file, mode, recursive = false) => {
    if (recursive) spawnSync('/usr/bin/chown', ['-hR', `${u.uid}:${u.gid}`, file]);
    else fs.lchownSync(file, u.uid, u.gid);
    if (mode !== undefined) fs.chmodSync(file, mode);
  };
  const env = (u: User, extra: Record<string, string> = {}): string[] =>
    Object.entries({
      PATH: '/usr/bin:/bin',
      HOME: `/home/${u.name}`,
      USER: u.name,
      LOGNAME: u.name,
      ...extra,
    }).map(([k, v]) => `${k}=${v}`);
  return {
    victim,
    attacker,
    shared(prefix = 'tsrt-mu-shared-') {
      const d = tmpdir(prefix);
      fs.chmodSync(d, 0o1777);
      made.push(d);
      return d;
    },
    owned(u, mode = 0o700, prefix = 'tsrt-mu-own-') {
      const d = tmpdir(prefix);
      give(u, d, mode);
      made.push(d);
      return d;
    },
    as(u, argv, o = {}) {
      const r = spawnSync('/usr/sbin/runuser', ['-u', u.name, '--', '/usr/bin/env', '-i', ...env(u, o.env), ...argv], {
        cwd: o.cwd ?? '/',
        timeout: o.timeout ?? 120_000,
        input: '',
      });
      return { code: r.status ?? -1, signal: r.signal ?? null, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '' };
    },
    background(u, argv) {
      // setpriv execs in place: the pid we get is the program's own, so the teardown kills exactly it.
      const child = spawn('/usr/bin/setpriv', ['--reuid', String(u.uid), '--regid', String(u.gid), '--clear-groups', '--', ...argv], {
        stdio: 'ignore',
        detached: true,
      });
      child.unref();
      pids.push(child.pid!);
      return child.pid!;
    },
    give,
  };
}

/** Writes a file (making its directory) and gives both to `u`: what the attacker plants. */
export function plant(mu: MultiUser, u: User, file: string, text: string, mode = 0o666): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  mu.give(u, file, mode);
}

/**
 * A rootless busybox bundle of `u` (in a directory of theirs) whose root filesystem is image.sif, read-only:
 * the squashfs of its rootfs (with /etc/greeting) as the SIF's primary partition. Returns the bundle.
 */
export function sifBundleOf(mu: MultiUser, u: User, args: string[]): string {
  const bundle = path.join(mu.owned(u, 0o755, 'tsrt-mu-bundle-'), 'bundle');
  const step = (argv: string[]): void => {
    const r = mu.as(u, argv);
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  };
  step(['/bin/bash', path.join(REPO, 'hack', 'mkbundle.sh'), bundle, '--rootless', '--', ...args]);
  step(['/bin/sh', '-c', `echo 'hello from the SIF' > ${bundle}/rootfs/etc/greeting`]);
  step(['/usr/bin/mksquashfs', path.join(bundle, 'rootfs'), path.join(bundle, 'rootfs.sqfs'), '-quiet', '-noappend']);
  step([SINGULARITY, 'sif', 'new', path.join(bundle, 'image.sif')]);
  step([SINGULARITY, ...primaryPartitionArgs(path.join(bundle, 'image.sif'), path.join(bundle, 'rootfs.sqfs'))]);
  fs.rmSync(path.join(bundle, 'rootfs.sqfs'));
  editConfig(bundle, spec => {
    spec.root = { path: 'image.sif', readonly: true };
  });
  return bundle;
}
