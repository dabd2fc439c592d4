// tsrt-singularity's spec builder (src/singularity/spec.ts): action flags + image facts + host facts -> the
// OCI config.json and what the session must make for it, checked against golden files, one per named case,
// plus the requests it must refuse before anything is made.
//
// Golden files live in test/unit/golden/singularity/<name>.json. After an intended change to the spec, regenerate
// them and review the diff:
//
//   UPDATE_GOLDEN=1 npx tap --disable-coverage --allow-empty-coverage -R base test/unit/singularity-spec.test.ts
//
// No root and no image: the host and the image are fake facts objects (src/singularity/host.ts), so every
// answer about them (the user, which paths exist, the site's configuration) is fixed here.
import t from 'tap';
import * as path from 'node:path';

import { golden } from '../golden-kit.js';
import { RuntimeError } from '../../src/errors.js';
import type { Mount } from '../../src/index.js';
import type { HostFacts, ImageFacts, OverlayFacts } from '../../src/singularity/host.js';
import { parseActionArgs } from '../../src/singularity/options.js';
import { parseSiteConfig } from '../../src/singularity/siteconfig.js';
import { buildSpec, type BuiltSpec } from '../../src/singularity/spec.js';
import type { Action } from '../../src/singularity/environment.js';

const SESSION = '/run/user/1000/tsrt-singularity/sessions/sing-1';
const SITE_FILE = '/etc/tsrt-singularity/singularity.conf';

/** Host paths the fake host has. */
const HOST_PATHS = new Set(['/root', '/home/alice', '/home/alice/project', '/data', '/scratch/alice', '/srv/overlay', '/srv/base-layer']);

interface HostOver {
  uid?: number;
  cwd?: string;
  site?: string;
  env?: NodeJS.ProcessEnv;
  gpuMounts?: Mount[];
  subids?: boolean;
  shareGroup?: string;
}

function fakeHost(over: HostOver = {}): HostFacts {
  const uid = over.uid ?? 1000;
  const user =
    uid === 0
      ? { name: 'root', uid: 0, gid: 0, gecos: 'root', home: '/root', shell: '/bin/bash' }
      : { name: 'alice', uid, gid: 1000, gecos: 'Alice', home: '/home/alice', shell: '/bin/bash' };
  const env = over.env ?? { PATH: '/usr/bin:/bin', HOME: user.home, USER: user.name, TERM: 'xterm', LANG: 'C.UTF-8' };
  return {
    user,
    cwd: over.cwd ?? '/home/alice/project',
    umask: 0o022,
    env,
    site: parseSiteConfig(over.site ?? 'bind path = /etc/localtime\nbind path = /etc/hosts\n', SITE_FILE),
    groupLines: ['root:x:0:', 'alice:x:1000:', 'video:x:44:alice', 'staff:x:50:bob'],
    ...(over.subids === false ? {} : { subuid: { start: 100000, count: 65536 }, subgid: { start: 100000, count: 65536 } }),
    siteBinds: [
      { source: '/usr/share/zoneinfo/Etc/UTC', destination: '/etc/localtime', readonly: false, directory: false },
      { source: '/etc/hosts', destination: '/etc/hosts', readonly: false, directory: false },
      { source: '/etc/resolv.conf', destination: '/etc/resolv.conf', readonly: true, directory: false },
    ],
    hostfsPoints: [],
    gpuMounts: over.gpuMounts ?? [],
    envOverrides: [],
    ...(over.shareGroup ? { shareGroup: over.shareGroup } : {}),
    exists: p => HOST_PATHS.has(path.posix.normalize(p)),
  };
}

/** Paths the fake image has (besides /): an Alpine-like root with an app and a home for the cwd fallback. */
const IMAGE_PATHS = new Set([
  '/etc',
  '/etc/passwd',
  '/etc/group',
  '/etc/hosts',
  '/etc/localtime',
  '/etc/resolv.conf',
  '/bin/sh',
  '/scif/apps/hello',
  '/opt',
  '/home',
  '/proc',
  '/sys',
  '/dev',
  '/tmp',
  '/var/tmp',
]);

function fakeImage(over: Partial<ImageFacts> = {}): ImageFacts {
  return {
    path: '/home/alice/alpine.sif',
    kind: 'sif',
    rootfs: '/var/cache/tsrt/sandbox/alpine',
    passwd: ['root:x:0:0:root:/root:/bin/ash', 'nobody:x:65534:65534:nobody:/:/sbin/nologin'],
    group: ['root:x:0:', 'video:x:44:', 'nogroup:x:65534:'],
    hasShell: true,
    apps: ['hello'],
    exists: p => IMAGE_PATHS.has(path.posix.normalize(`/${p}`)),
    existsInRoot: p => path.posix.normalize(p) === '/' || IMAGE_PATHS.has(path.posix.normalize(p)),
    ...over,
  };
}

interface Case {
  name: string;
  what: string;
  flags?: string[];
  action?: Action;
  args?: string[];
  host?: HostOver;
  image?: Partial<ImageFacts>;
  overlays?: OverlayFacts[];
  extraEnv?: Record<string, string>;
  /** Warnings the build must give, in order. */
  warnings?: string[];
}

function build(c: Case, warnings: string[] = []): BuiltSpec {
  const { options, rest } = parseActionArgs([...(c.flags ?? []), 'image.sif'], {});
  if (rest.length !== 1) throw new Error(`case ${c.name}: flags left ${rest.join(' ')}`);
  return buildSpec(
    { action: c.action ?? 'exec', args: c.args ?? ['echo', 'hi'], options, extraEnv: c.extraEnv, warn: m => warnings.push(m) },
    fakeImage(c.image),
    fakeHost(c.host),
    SESSION,
    c.overlays ?? [],
  );
}

const NVIDIA_LIB: Mount = {
  destination: '/.singularity.d/libs/libcuda.so.1',
  type: 'bind',
  source: '/usr/lib/x86_64-linux-gnu/libcuda.so.550',
  options: ['bind', 'nosuid', 'nodev', 'ro'],
};

const CASES: Case[] = [
  { name: 'default-user', what: 'a user, no flags: overlay root, host /proc /sys /dev, home, tmp, cwd bound, own ids in a user namespace' },
  { name: 'root', what: 'root: no user namespace, trusted.* overlay xattrs, default capabilities', host: { uid: 0, cwd: '/root/work' } },
  {
    name: 'fakeroot',
    what: '--fakeroot: root in a user namespace with the subordinate ranges, home /root, no passwd/group binds',
    flags: ['--fakeroot'],
  },
  {
    name: 'fakeroot-no-subids',
    what: '--fakeroot without /etc/subuid ranges: one id mapped',
    flags: ['--fakeroot'],
    host: { subids: false },
  },
  {
    name: 'contain',
    what: '--contain: fresh /dev, home, /tmp and /var/tmp in the session, only hosts/localtime site binds, cwd = home',
    flags: ['--contain'],
  },
  {
    name: 'containall-workdir',
    what: '-C with --workdir and --scratch: namespaces, clean env, backing dirs under the workdir',
    flags: ['-C', '--workdir', '/scratch/alice', '--scratch', '/job'],
    host: { env: { PATH: '/usr/bin', HOME: '/home/alice', TERM: 'xterm', SECRET: 'x' } },
  },
  { name: 'writable-tmpfs', what: '--writable-tmpfs: a session tmpfs under the overlay', flags: ['--writable-tmpfs'] },
  {
    name: 'writable-sandbox',
    what: '--writable on a sandbox: the image itself is the writable root',
    flags: ['--writable'],
    image: { kind: 'sandbox', path: '/home/alice/sandbox', rootfs: '/home/alice/sandbox' },
  },
  {
    name: 'overlays',
    what: 'a writable persistent overlay over a read-only one (its upper/) and a plain directory layer',
    flags: ['--overlay', '/srv/overlay', '--overlay', '/srv/base-layer:ro', '--overlay', '/srv/plain:ro'],
    overlays: [
      { dir: '/srv/overlay', readonly: false, hasUpper: true },
      { dir: '/srv/base-layer', readonly: true, hasUpper: true },
      { dir: '/srv/plain', readonly: true, hasUpper: false },
    ],
  },
  {
    name: 'binds',
    what: '-B and --mount: user binds (the cwd is not bound again below one), SINGULARITY_BIND',
    flags: ['-B', '/data:/mnt/data:ro,/home/alice/project:/job', '--mount', 'type=bind,src=/data,dst=/data'],
  },
  { name: 'home-and-pwd', what: '--home src:dst and --pwd', flags: ['--home', '/data:/home/user', '--pwd', '/opt'] },
  {
    name: 'no-home-no-mount',
    what: '--no-home and --no-mount tmp,cwd,sys,/etc/hosts: those mounts are left out, cwd falls back to home',
    flags: ['--no-home', '--no-mount', 'tmp,cwd,sys,/etc/hosts'],
    host: { cwd: '/srv/elsewhere' },
  },
  { name: 'system-cwd', what: "a cwd under /usr is not bound: it is the image's own /usr", host: { cwd: '/usr/share' } },
  {
    name: 'namespaces',
    what: '-p -i --uts --hostname: new PID, IPC and UTS namespaces, a fresh /proc',
    flags: ['-p', '-i', '--uts', '--hostname', 'node1'],
  },
  {
    name: 'net-none-dns',
    what: "--net --network none --dns: a network namespace, fresh sysfs, a session resolv.conf instead of the host's",
    flags: ['--net', '--network', 'none', '--dns', '1.1.1.1,9.9.9.9'],
  },
  {
    name: 'net-pasta',
    what: '--net (pasta): the session starts pasta; the spec asks for the namespaces it will join',
    flags: ['--net', '--network-args', 'portmap=8080:80/tcp'],
  },
  {
    name: 'sharens-mpi',
    what: "a rank of an MPI job: the session is asked to share the job's user namespace",
    host: { shareGroup: 'mpi:4242' },
  },
  {
    name: 'sharens-pasta',
    what: "--sharens with --network pasta: the network's user namespace wins, with a warning",
    flags: ['--sharens', '--net'],
    host: { shareGroup: 'parent:77:1234' },
    warnings: ['--sharens is not used with --network pasta: the container is in the user namespace of its network'],
  },
  {
    name: 'gpu',
    what: '--nv: the driver libraries found on the host, LD_LIBRARY_PATH in the action script',
    flags: ['--nv'],
    host: { gpuMounts: [NVIDIA_LIB] },
  },
  {
    name: 'app-run',
    what: 'run --app: SCIF app variables and the run action script with arguments',
    flags: ['--app', 'hello'],
    action: 'run',
    args: ['a', 'b c'],
  },
  {
    name: 'instance-start',
    what: 'an instance (start, PID namespace, SINGULARITY_INSTANCE)',
    flags: ['-p'],
    action: 'start',
    args: [],
    extraEnv: { SINGULARITY_INSTANCE: 'web', APPTAINER_INSTANCE: 'web' },
  },
  {
    name: 'exec-no-shell',
    what: 'exec in an image without /bin/sh: the command runs unprepared',
    image: { hasShell: false },
    args: ['/hello'],
  },
  {
    name: 'site-no-overlay',
    what: 'enable overlay = no: the image is the read-only root; mounts whose destination it lacks are skipped',
    host: { site: 'enable overlay = no\nbind path = /etc/hosts\n' },
    flags: ['-B', '/data:/data'],
    warnings: [
      `Skipping mount of /home/alice on /home/alice: it does not exist in the image, and overlays are disabled (enable overlay = no in ${SITE_FILE})`,
      `Skipping mount of /data on /data: it does not exist in the image, and overlays are disabled (enable overlay = no in ${SITE_FILE})`,
    ],
  },
  {
    name: 'site-ramfs',
    what: 'memory fs type = ramfs: the contained /dev and /dev/shm are ramfs',
    host: { site: 'memory fs type = ramfs\n' },
    flags: ['--contain'],
  },
];

for (const c of CASES) {
  t.test(`golden: ${c.what}`, async t => {
    const warnings: string[] = [];
    golden(t, `singularity/${c.name}`, build(c, warnings), 'spec');
    t.same(warnings, c.warnings ?? [], 'warnings');
  });
}

/** Requests the builder refuses, each with Singularity's message (the FATAL line users see). */
const REFUSED: (Case & { message: string })[] = [
  {
    name: 'no-app',
    what: '--app the image does not have',
    flags: ['--app', 'nope'],
    message: 'no app "nope" in /home/alice/alpine.sif (it has: hello)',
  },
  {
    name: 'writable-sif',
    what: '--writable on a SIF',
    flags: ['--writable'],
    message: '--writable needs a sandbox directory; /home/alice/alpine.sif is a read-only sif image (use --writable-tmpfs or --overlay)',
  },
  {
    name: 'writable-tmpfs-too',
    what: '--writable with --writable-tmpfs',
    flags: ['--writable', '--writable-tmpfs'],
    image: { kind: 'sandbox' },
    message: '--writable cannot be combined with --writable-tmpfs or --overlay',
  },
  {
    name: 'two-writable',
    what: 'two writable overlays',
    flags: ['--overlay', '/srv/a', '--overlay', '/srv/b'],
    message: 'only one --overlay may be writable (add :ro to the others)',
  },
  {
    name: 'bind-missing',
    what: 'a bind whose source does not exist',
    flags: ['-B', '/nope:/mnt'],
    message: "mount /nope->/mnt error: while mounting /nope: mount source /nope doesn't exist",
  },
  {
    name: 'home-missing',
    what: '--home whose source does not exist',
    flags: ['--home', '/nope'],
    message: 'home directory /nope does not exist',
  },
  {
    name: 'scratch-relative',
    what: 'a relative --scratch',
    flags: ['--scratch', 'rel'],
    message: '--scratch rel: must be an absolute path',
  },
  {
    name: 'run-no-shell',
    what: 'run in an image without /bin/sh',
    action: 'run',
    image: { hasShell: false },
    message: '/home/alice/alpine.sif has no /bin/sh, which run needs',
  },
  {
    name: 'pasta-root',
    what: '--network pasta as root',
    flags: ['--net', '--network', 'pasta'],
    host: { uid: 0, cwd: '/root' },
    message: '--network pasta is user-mode networking for users other than root; as root, use --network none',
  },
];

for (const c of REFUSED) {
  t.test(`refused: ${c.what}`, async t => {
    let thrown: unknown;
    try {
      build(c);
    } catch (e) {
      thrown = e;
    }
    t.ok(thrown instanceof RuntimeError, 'throws a RuntimeError');
    t.equal((thrown as Error | undefined)?.message, c.message);
  });
}
