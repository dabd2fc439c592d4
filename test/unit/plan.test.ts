// buildPlan(config, host facts) -> LaunchPlan, checked against golden files, plus one test per rule that must
// reject a config before anything is created.
//
// Golden files live in test/unit/golden/<name>.json. After an intended change to plan building, regenerate
// them and review the diff:
//
//   UPDATE_GOLDEN=1 npx tap --disable-coverage --allow-empty-coverage -R base test/unit/plan.test.ts
//
// A missing golden file is a failure unless UPDATE_GOLDEN=1 is set. No root needed: the host is a fake
// HostFacts object, so every answer about the host (ids, cgroup layout, which paths exist) is fixed here.
import t, { type Test } from 'tap';
import * as path from 'node:path';

import { golden } from '../golden-kit.js';
import { RuntimeError, SpecError } from '../../src/errors.js';
import { buildPlan, type BuildOptions } from '../../src/plan/build.js';
import type { HostFacts } from '../../src/plan/facts.js';
import { ATTR, CLONE, makedev, MS, RLIMIT } from '../../src/plan/linux.js';
import { MountFlag, PlanFlag, type CreatePlan, type PlanStep } from '../../src/plan/types.js';
import type { Spec } from '../../src/spec/types.gen.js';
import { specTemplate } from '../../src/spec/template.js';

const BUNDLE = '/bundle';
const ROOTFS = '/bundle/rootfs';
const USER_UID = 1000;
const USER_GID = 1000;

/** Host paths the fake host has: true = directory, false = any other file. */
const HOST_PATHS: Record<string, boolean> = {
  '/bundle': true,
  '/bundle/rootfs': true,
  '/bundle/data': true,
  '/bundle/config.txt': false,
  '/etc/resolv.conf': false,
  '/srv/shared': true,
  '/sys': true,
  '/dev/mqueue': true,
  '/proc/1234/ns/net': false,
  '/proc/1234/ns/user': false,
  '/proc/4321/ns/user': false,
  '/proc/1234/ns/ipc': false,
  '/proc/1234/ns/mnt': false,
  '/proc/1/ns/net': false,
  '/proc/1/ns/uts': false,
  '/var/run/netns/blue': false,
  '/sys/class/net/eth1': false,
  '/sys/class/net/eth2': false,
};

type Layout = 'hybrid' | 'v2';

function cgroupFacts(layout: Layout): HostFacts['cgroup'] {
  if (layout === 'v2') {
    return { layout: 'v2', v1: [], unifiedMountPoint: '/sys/fs/cgroup', unifiedOwnPath: '/user.slice/user-1000.slice/session-1.scope' };
  }
  return {
    layout: 'hybrid',
    v1: [
      { mountPoint: '/sys/fs/cgroup/cpu,cpuacct', options: 'cpu,cpuacct', ownPath: '/user.slice' },
      { mountPoint: '/sys/fs/cgroup/memory', options: 'memory', ownPath: '/user.slice/user-1000.slice' },
      { mountPoint: '/sys/fs/cgroup/systemd', options: 'name=systemd', ownPath: '/user.slice/user-1000.slice/session-1.scope' },
    ],
    unifiedMountPoint: '/sys/fs/cgroup/unified',
    unifiedOwnPath: '/user.slice/user-1000.slice/session-1.scope',
  };
}

function fakeFacts(opts: { euid?: number; egid?: number; layout?: Layout } = {}): HostFacts {
  return {
    euid: opts.euid ?? 0,
    egid: opts.egid ?? 0,
    capLastCap: 40,
    capBounding: (1n << 41n) - 1n,
    defaultNofile: { soft: 1024n, hard: 4096n },
    cgroup: cgroupFacts(opts.layout ?? 'hybrid'),
    isDirectory: p => HOST_PATHS[path.posix.normalize(p)],
    exists: p => HOST_PATHS[path.posix.normalize(p)] !== undefined,
    // The fake runtime runs in pid 1's namespaces.
    isRuntimeNamespace: p => p.startsWith('/proc/1/ns/'),
    // pid 4321 made its user namespace unprivileged (its own ids only): setgroups is denied there.
    setgroupsDenied: p => p === '/proc/4321/ns/user',
    apparmorEnabled: false,
    selinuxEnabled: false,
  };
}

const rootFacts = (layout: Layout = 'hybrid') => fakeFacts({ layout });
const userFacts = (layout: Layout = 'hybrid') => fakeFacts({ euid: USER_UID, egid: USER_GID, layout });

function buildOpts(over: Partial<BuildOptions> = {}): BuildOptions {
  return {
    bundle: BUNDLE,
    rootfs: ROOTFS,
    console: false,
    startFifo: true,
    preserveFds: 0,
    noPivot: false,
    noNewKeyring: false,
    ...over,
  };
}

/** The `tsrt spec` config exactly as written (terminal on: it needs a console socket). */
function defaultSpec(): Spec {
  return specTemplate({ rootless: false, uid: 0, gid: 0 });
}

function rootlessSpec(): Spec {
  const spec = specTemplate({ rootless: true, uid: USER_UID, gid: USER_GID });
  spec.process!.terminal = false;
  return spec;
}

/** A small config with only what the rules need: a mount namespace, /proc, sh. */
function minimalSpec(): any {
  return {
    ociVersion: '1.2.0',
    root: { path: 'rootfs' },
    process: { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0 }, env: ['PATH=/bin'] },
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
    linux: { namespaces: [{ type: 'mount' }, { type: 'pid' }] },
  };
}

function stepAt(plan: CreatePlan, dest: string, kind?: PlanStep['kind']): PlanStep {
  const s = plan.container.steps.find(x => x.dest === dest && (!kind || x.kind === kind));
  if (!s) throw new Error(`no ${kind ?? ''} step for ${dest}`);
  return s;
}

function capBit(n: number): bigint {
  return 1n << BigInt(n);
}
const CAP_KILL = 5;
const CAP_NET_BIND_SERVICE = 10;
const CAP_AUDIT_WRITE = 29;

/** Expects buildPlan to refuse the config with exactly this message. */
function rejects(t: Test, spec: unknown, message: string, facts = rootFacts(), opts = buildOpts()): void {
  let thrown: unknown;
  try {
    buildPlan(spec as Spec, facts, opts);
  } catch (e) {
    thrown = e;
  }
  t.ok(thrown instanceof RuntimeError, 'throws a RuntimeError');
  t.equal((thrown as Error | undefined)?.message, message);
}

// ---------------------------------------------------------------------------------------------------------
// Golden plans
// ---------------------------------------------------------------------------------------------------------

t.test('golden: the `tsrt spec` default config as root (hybrid host)', async t => {
  const plan = buildPlan(defaultSpec(), rootFacts(), buildOpts({ console: true }));
  golden(t, 'default-root-hybrid', plan);
  t.ok(plan.flags & PlanFlag.terminal, 'terminal');
  t.ok(plan.flags & PlanFlag.newMountns, 'new mount namespace');
  t.notOk(plan.flags & PlanFlag.newUserns, 'no user namespace as root');
  t.ok(plan.flags & PlanFlag.newCgroupns, 'the default config has a cgroup namespace');
  t.ok(plan.flags & PlanFlag.readonlyRoot, 'root.readonly');
  t.ok(plan.flags & PlanFlag.noNewPrivs, 'noNewPrivileges');
  t.ok(plan.flags & PlanFlag.setHostname, 'hostname set');
  t.ok(plan.flags & PlanFlag.startFifo, 'create waits on the fifo');
  t.equal(plan.container.unshareFlags, CLONE.NEWPID | CLONE.NEWNET | CLONE.NEWIPC | CLONE.NEWUTS | CLONE.NEWNS);
  t.equal(plan.container.hostname, 'tsrt');
  t.equal(plan.container.rootfs, ROOTFS);
  t.same(plan.process.args, ['sh']);
  t.equal(plan.process.umask, 0o022, 'umask defaults to 022');
});

t.test('golden: the `tsrt spec` default config on a cgroup v2 host', async t => {
  const plan = buildPlan(defaultSpec(), rootFacts('v2'), buildOpts({ console: true }));
  golden(t, 'default-root-v2', plan);
  const cg = plan.container.steps.filter(s => s.dest.startsWith('/sys/fs/cgroup'));
  t.equal(cg.length, 1, 'one cgroup2 mount on a v2 host');
  t.match(cg[0], { kind: 'fs', fstype: 'cgroup2', source: 'cgroup2' });
});

t.test('golden: the rootless spec as an unprivileged user', async t => {
  const plan = buildPlan(rootlessSpec(), userFacts(), buildOpts());
  golden(t, 'rootless-user-hybrid', plan);
  t.ok(plan.flags & PlanFlag.newUserns, 'new user namespace');
  t.notOk(plan.flags & PlanFlag.newCgroupns, 'no cgroup namespace in the rootless template');
  t.notOk(plan.flags & PlanFlag.setgroups, 'single own-gid mapping: setgroups is denied (written directly)');
  t.same(plan.parent.uidMappings, [{ containerID: 0, hostID: USER_UID, size: 1 }]);
  t.same(plan.parent.gidMappings, [{ containerID: 0, hostID: USER_GID, size: 1 }]);
  t.notOk(plan.container.unshareFlags & CLONE.NEWNET, 'no network namespace');
  t.notOk(plan.container.unshareFlags & CLONE.NEWUSER, 'the user namespace is a plan flag, not an unshare flag');
  const sys = stepAt(plan, '/sys');
  t.equal(sys.kind, 'bind', '/sys is a bind of the host sysfs');
  t.equal(sys.source, '/sys');
  t.ok(sys.flags & MountFlag.recursive, 'rbind');
  t.equal(sys.attrSet, ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC, 'nosuid, nodev, noexec on the mount itself');
  const sysTree = stepAt(plan, '/sys', 'setattr');
  t.equal(sysTree.attrSet, ATTR.RDONLY, 'rro: read-only...');
  t.ok(sysTree.flags & MountFlag.attrRecursive, '...all the way down');
  // devpts: the template drops gid=5, which the single mapping could not honour.
  t.notMatch(stepAt(plan, '/dev/pts').data, /gid=/);
  // mqueue in a user namespace may fall back to binding the host's.
  const mq = stepAt(plan, '/dev/mqueue');
  t.ok(mq.flags & MountFlag.fallbackBind);
  t.equal(mq.fallback, '/dev/mqueue');
  // Devices are bound from the host: mknod is refused in a user namespace.
  t.equal(plan.container.steps.filter(s => s.kind === 'mknod').length, 0, 'no mknod');
  t.equal(plan.container.steps.filter(s => s.kind === 'bindDevice').length, 6, 'the six default devices are bound');
});

t.test('golden: rootless spec on a cgroup v2 host: read-only bind of the own cgroup (CVE-2023-25809)', async t => {
  const plan = buildPlan(rootlessSpec(), userFacts('v2'), buildOpts());
  golden(t, 'rootless-user-v2', plan);
  const cg = stepAt(plan, '/sys/fs/cgroup');
  t.equal(cg.kind, 'bind');
  t.equal(cg.source, '/sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope');
  t.ok(cg.attrSet & ATTR.RDONLY, 'read-only');
});

t.test('golden: bind mounts (file and dir sources, relative source, ro/rbind/rprivate/rro)', async t => {
  const spec = minimalSpec();
  spec.mounts.push(
    { destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'ro', 'rprivate'] },
    { destination: '/etc/app.conf', type: 'none', source: 'config.txt', options: ['bind', 'ro'] },
    { destination: '/etc/resolv.conf', source: '/etc/resolv.conf', options: ['bind', 'nosuid', 'nodev'] },
    { destination: '/shared/../shared', type: 'bind', source: '/srv/shared', options: ['rbind', 'rro', 'rnosuid', 'rslave'] },
    { destination: '/atime', type: 'bind', source: '/srv/shared', options: ['bind', 'noatime', 'rw'] },
  );
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'bind-mounts', plan);

  const data = stepAt(plan, '/data');
  t.match(data, { kind: 'bind', source: '/bundle/data' }, 'relative source resolved against the bundle');
  t.ok(data.flags & MountFlag.recursive, 'rbind is recursive');
  t.notOk(data.flags & MountFlag.destFile, 'a directory source');
  t.equal(data.attrSet, ATTR.RDONLY, 'ro');
  t.notOk(data.flags & MountFlag.attrRecursive, 'plain ro is not recursive');
  t.equal(data.propagation, MS.PRIVATE, 'rprivate');

  const file = stepAt(plan, '/etc/app.conf');
  t.match(file, { kind: 'bind', source: '/bundle/config.txt' });
  t.ok(file.flags & MountFlag.destFile, 'a file source makes a file destination');
  t.notOk(file.flags & MountFlag.recursive, 'bind (not rbind)');

  const resolv = stepAt(plan, '/etc/resolv.conf');
  t.equal(resolv.kind, 'bind', 'the "bind" option alone makes a bind mount');
  t.equal(resolv.attrSet, ATTR.NOSUID | ATTR.NODEV);

  const shared = stepAt(plan, '/shared');
  t.ok(shared, 'destination normalised');
  t.ok(shared.flags & MountFlag.attrRecursive, 'rro applies to the whole tree');
  t.equal(shared.attrSet, ATTR.RDONLY | ATTR.NOSUID);
  t.equal(shared.propagation, MS.SLAVE);

  const atime = stepAt(plan, '/atime');
  t.equal(atime.attrSet, ATTR.NOATIME, 'an atime mode is set');
  t.equal(atime.attrClr, ATTR.ATIME_MASK, 'and the other atime modes cleared');
  t.notOk(atime.attrClr & ATTR.RDONLY, '"rw" never lifts a restriction of a fresh bind');
});

t.test('golden: recursive and plain mount attributes side by side', async t => {
  const spec = minimalSpec();
  spec.mounts.push(
    {
      destination: '/tree',
      type: 'bind',
      source: '/srv/shared',
      options: ['rbind', 'ro', 'rnosuid', 'rnodev', 'rnoexec', 'rnosymfollow', 'rnoatime'],
    },
    { destination: '/file', type: 'bind', source: 'config.txt', options: ['bind', 'nodev', 'rstrictatime'] },
    { destination: '/only-r', type: 'bind', source: '/srv/shared', options: ['rbind', 'rrelatime', 'rro'] },
    { destination: '/noop', type: 'bind', source: '/srv/shared', options: ['rbind', 'ratime', 'rnorelatime', 'rnostrictatime'] },
    { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'rro', 'rnoexec', 'size=1m'] },
  );
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'mount-attributes', plan);

  const tree = stepAt(plan, '/tree', 'bind');
  t.equal(tree.attrSet, ATTR.RDONLY, 'plain ro on the mount itself');
  t.notOk(tree.flags & MountFlag.attrRecursive);
  const treeAll = stepAt(plan, '/tree', 'setattr');
  t.equal(treeAll.attrSet, ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC | ATTR.NOSYMFOLLOW | ATTR.NOATIME, 'the r* words over the tree');
  t.equal(treeAll.attrClr, ATTR.ATIME_MASK, 'an atime mode replaces the others');
  t.ok(treeAll.flags & MountFlag.attrRecursive);

  const file = stepAt(plan, '/file', 'setattr');
  t.equal(file.attrSet, ATTR.STRICTATIME, 'a file bind gets its recursive step too');

  const onlyR = plan.container.steps.filter(x => x.dest === '/only-r');
  t.equal(onlyR.length, 1, 'only recursive words: one step');
  t.equal(onlyR[0]!.attrSet, ATTR.RDONLY | ATTR.RELATIME);
  t.ok(onlyR[0]!.flags & MountFlag.attrRecursive);

  const noop = plan.container.steps.filter(x => x.dest === '/noop');
  t.same(
    [noop.length, noop[0]!.attrSet, noop[0]!.attrClr, noop[0]!.data],
    [1, 0, 0, undefined],
    'ratime, rnorelatime, rnostrictatime are known words with no effect, never filesystem data',
  );

  const scratch = stepAt(plan, '/scratch');
  t.equal(scratch.attrSet, ATTR.NOSUID | ATTR.NOEXEC, 'a new filesystem has no tree: both kinds at once');
  t.match(
    stepAt(plan, '/scratch', 'setattr'),
    { attrSet: ATTR.RDONLY, flags: MountFlag.deferred | MountFlag.attrRecursive },
    'but a tmpfs becomes read-only last (runc)',
  );
  t.equal(scratch.data, 'size=1m');
});

t.test('golden: tmpfs with data options', async t => {
  const spec = minimalSpec();
  spec.mounts.push(
    { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755', 'size=64m', 'uid=0', 'noexec'] },
    { destination: '/scratch', type: 'tmpfs', source: 'scratch', options: ['rw', 'strictatime', 'nr_inodes=1k', 'sync', 'defaults'] },
  );
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'tmpfs', plan);
  const run = stepAt(plan, '/run');
  t.match(run, { kind: 'fs', fstype: 'tmpfs', source: 'tmpfs', data: 'mode=755,size=64m,uid=0' });
  t.equal(run.attrSet, ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC);
  const scratch = stepAt(plan, '/scratch');
  t.equal(scratch.data, 'nr_inodes=1k,sync', 'superblock words go to the filesystem, "defaults" is dropped');
  t.equal(scratch.attrSet, ATTR.STRICTATIME);
  t.equal(scratch.attrClr, ATTR.ATIME_MASK, 'rw only clears what a new mount has anyway; atime mask cleared');
});

t.test('an overlay whose upper and work dirs lie inside the rootfs gets them made there, just before it', async t => {
  const spec = minimalSpec();
  spec.mounts.unshift(
    { destination: '/', type: 'tmpfs', source: 'tmpfs', options: ['size=64m'] },
    {
      destination: '/',
      type: 'overlay',
      source: 'overlay',
      options: [`lowerdir=/srv/shared`, `upperdir=${ROOTFS}/upper`, `workdir=${ROOTFS}/w/work`],
    },
  );
  spec.mounts.push({
    destination: '/data',
    type: 'overlay',
    source: 'overlay',
    options: ['lowerdir=/srv/shared', 'upperdir=/bundle/data/u', 'workdir=/bundle/data/w'],
  });
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  t.same(
    plan.container.steps.slice(0, 4).map(s => [s.kind, s.dest]),
    [
      ['fs', '/'],
      ['mkdir', '/upper'],
      ['mkdir', '/w/work'],
      ['fs', '/'],
    ],
    'tmpfs on /, then the dirs inside it, then the overlay',
  );
  const before = plan.container.steps.findIndex(s => s.dest === '/data');
  t.not(plan.container.steps[before - 1]?.kind, 'mkdir', "upper and work dirs outside the rootfs are the caller's to make");
});

t.test('mounts[].options tmpcopyup: a copy-up tmpfs step; refused on binds and other filesystems', async t => {
  const spec = minimalSpec();
  spec.mounts.push({ destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'tmpcopyup', 'nosuid', 'mode=755'] });
  const run = stepAt(buildPlan(spec, rootFacts(), buildOpts()), '/run');
  t.match(run, { kind: 'fs', fstype: 'tmpfs', data: 'mode=755', attrSet: ATTR.NOSUID });
  t.ok(run.flags & MountFlag.copyUp, "the executor copies the image's /run into it");
  for (const [m, why] of [
    [{ destination: '/data', type: 'bind', source: '/srv/shared', options: ['rbind', 'tmpcopyup'] }, 'is only valid for tmpfs mounts'],
    [{ destination: '/data', type: 'proc', source: 'proc', options: ['tmpcopyup'] }, 'is only valid for tmpfs mounts'],
  ] as const) {
    const bad = minimalSpec();
    bad.mounts.push(m);
    rejects(t, bad, `mount ${JSON.stringify(m.source)} to rootfs at "/data": option "tmpcopyup" ${why}`);
  }
  const ro = minimalSpec();
  ro.mounts.push({ destination: '/data', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'tmpcopyup'] });
  const steps = buildPlan(ro, rootFacts(), buildOpts()).container.steps.filter(st => st.dest === '/data');
  t.match(
    steps,
    [
      { kind: 'fs', attrSet: 0 },
      { kind: 'setattr', attrSet: ATTR.RDONLY },
    ],
    'a read-only one is filled first, made read-only last',
  );
});

t.test('mounts[].options ro on a tmpfs or /dev: mounted writable, made read-only last (after the console), as runc', async t => {
  const spec = minimalSpec();
  spec.mounts.push({ destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'ro', 'mode=755'] });
  spec.mounts.push({ destination: '/etc/ro-tmp', type: 'tmpfs', source: 'tmpfs', options: ['rro'] });
  spec.mounts.push({ destination: '/srv', type: 'bind', source: '/srv/shared', options: ['bind', 'ro'] });
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  const dev = plan.container.steps.filter(st => st.dest === '/dev');
  t.match(dev, [
    { kind: 'fs', fstype: 'tmpfs', attrSet: ATTR.NOSUID },
    { kind: 'setattr', attrSet: ATTR.RDONLY, flags: MountFlag.deferred },
  ]);
  t.ok(
    plan.container.steps.some((st, i) => st.dest.startsWith('/dev/') && i > plan.container.steps.indexOf(dev[0]!)),
    'devices are made in it',
  );
  const tmp = plan.container.steps.filter(st => st.dest === '/etc/ro-tmp');
  t.match(
    tmp,
    [
      { kind: 'fs', attrSet: 0 },
      { kind: 'setattr', attrSet: ATTR.RDONLY, flags: MountFlag.deferred | MountFlag.attrRecursive },
    ],
    'rro: the tree',
  );
  t.match(stepAt(plan, '/srv'), { kind: 'bind', attrSet: ATTR.RDONLY }, 'a bind stays read-only from the start');
  t.notOk(plan.container.steps.some(st => st.dest === '/srv' && st.kind === 'setattr'));
});

t.test('golden: devices in a user namespace are bound from the host', async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'user' });
  spec.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  spec.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  spec.linux.devices = [
    { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
    { path: '/dev/loop0', type: 'b', major: 7, minor: 0 },
    { path: '/dev/myfifo', type: 'p' },
  ];
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'devices-userns', plan);
  const fuse = stepAt(plan, '/dev/fuse');
  t.match(fuse, { kind: 'bindDevice', source: '/dev/fuse' });
  t.equal(fuse.rdev, makedev(10, 229), 'bound only after checking the device number');
  t.equal(stepAt(plan, '/dev/null').kind, 'bindDevice');
  t.equal(stepAt(plan, '/dev/loop0').kind, 'bindDevice');
  t.equal(stepAt(plan, '/dev/myfifo').kind, 'mknod', 'a fifo can still be made in a user namespace');
  t.ok(plan.flags & PlanFlag.setgroups, 'root writes the maps: setgroups stays allowed');
});

t.test('devices when the runtime itself runs in a user namespace (rootless podman): bound from the host', async t => {
  const spec = minimalSpec();
  spec.linux.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }];
  const plan = buildPlan(spec, { ...rootFacts(), inUserns: true }, buildOpts());
  t.equal(stepAt(plan, '/dev/null').kind, 'bindDevice', 'a default device');
  t.equal(stepAt(plan, '/dev/fuse').kind, 'bindDevice', 'a configured device');
  t.equal(stepAt(buildPlan(spec, rootFacts(), buildOpts()), '/dev/null').kind, 'mknod', 'the real root still uses mknod');
});

t.test('linux.devices fileMode with the file type bits (podman --device and --privileged): the permission bits are used', async t => {
  const spec = minimalSpec();
  spec.linux.devices = [
    { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o020666, uid: 0, gid: 0 },
    { path: '/dev/loop0', type: 'b', major: 7, minor: 0, fileMode: 0o060660 },
  ];
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  t.equal(stepAt(plan, '/dev/fuse').mode, 0o020666, 'char device, 0666');
  t.equal(stepAt(plan, '/dev/loop0').mode, 0o060660, 'block device, 0660');
  const bad = minimalSpec();
  bad.linux.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o060666 }];
  rejects(t, bad, 'linux.devices[0] (/dev/fuse): fileMode has the file type bits 0o60000, not those of type "c"');
});

t.test('golden: devices as root are made with mknod', async t => {
  const spec = minimalSpec();
  spec.linux.devices = [
    { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o640, uid: 0, gid: 5 },
    { path: '/dev/loop0', type: 'b', major: 7, minor: 0 },
    { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o600 },
  ];
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'devices-root', plan);
  t.equal(plan.container.steps.filter(s => s.kind === 'bindDevice').length, 0, 'nothing bound');
  t.match(stepAt(plan, '/dev/fuse'), { kind: 'mknod', mode: 0o020640, gid: 5, rdev: makedev(10, 229) });
  t.match(stepAt(plan, '/dev/loop0'), { kind: 'mknod', mode: 0o060666 });
  t.equal(stepAt(plan, '/dev/null').mode, 0o020600, 'a config device overrides the default one');
  t.equal(plan.container.steps.filter(s => s.dest === '/dev/null').length, 1, 'and is made once');
  t.match(stepAt(plan, '/dev/ptmx'), { kind: 'symlink', data: 'pts/ptmx' });
});

t.test('golden: a bound /dev gets no device steps', async t => {
  const spec = minimalSpec();
  spec.mounts.push({ destination: '/dev', type: 'bind', source: '/srv/shared', options: ['rbind'] });
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  t.equal(plan.container.steps.filter(s => s.kind === 'mknod' || s.kind === 'bindDevice').length, 0);
});

t.test('golden: namespaces joined by path', async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'network', path: '/var/run/netns/blue' }, { type: 'ipc', path: '/proc/1234/ns/ipc' }, { type: 'uts' });
  spec.hostname = 'joined';
  spec.linux.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '65536' };
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'join-namespaces', plan);
  t.same(plan.container.join, [
    { type: CLONE.NEWNET, path: '/var/run/netns/blue' },
    { type: CLONE.NEWIPC, path: '/proc/1234/ns/ipc' },
  ]);
  t.notOk(plan.container.unshareFlags & (CLONE.NEWNET | CLONE.NEWIPC), 'joined namespaces are not unshared too');
  t.ok(plan.container.unshareFlags & CLONE.NEWUTS);
  t.notOk(plan.flags & PlanFlag.loopbackUp, "a joined network namespace's interfaces are left alone");
});

t.test('a user namespace joined by path: setgroups only where it is not denied (as runc checks /proc/self/setgroups)', async t => {
  const joining = (userns: string) => {
    const spec = rootlessSpec() as any;
    spec.linux.namespaces = spec.linux.namespaces.map((n: { type: string }) => (n.type === 'user' ? { type: 'user', path: userns } : n));
    delete spec.linux.uidMappings;
    delete spec.linux.gidMappings;
    return buildPlan(spec, userFacts(), buildOpts());
  };
  t.notOk(joining('/proc/4321/ns/user').flags & PlanFlag.setgroups, 'denied there: not called');
  t.ok(joining('/proc/1234/ns/user').flags & PlanFlag.setgroups, 'allowed there (newuidmap-written maps)');
  const asked = rootlessSpec() as any;
  asked.linux.namespaces = asked.linux.namespaces.map((n: { type: string }) =>
    n.type === 'user' ? { type: 'user', path: '/proc/4321/ns/user' } : n,
  );
  delete asked.linux.uidMappings;
  delete asked.linux.gidMappings;
  asked.process.user.additionalGids = [5];
  t.notOk(
    buildPlan(asked, userFacts(), buildOpts()).flags & PlanFlag.setgroups,
    'additional gids there then fail in the executor, naming why',
  );
});

t.test('a new network namespace has its loopback interface brought up (runc\'s and crun\'s "loopback" network)', async t => {
  const withNet = minimalSpec();
  withNet.linux.namespaces.push({ type: 'network' });
  t.ok(buildPlan(withNet, rootFacts(), buildOpts()).flags & PlanFlag.loopbackUp);
  t.notOk(buildPlan(minimalSpec(), rootFacts(), buildOpts()).flags & PlanFlag.loopbackUp, 'none without a network namespace of its own');
});

t.test('golden: time namespace with offsets', async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'time' });
  spec.linux.timeOffsets = { monotonic: { secs: 86400, nanosecs: 5 }, boottime: { secs: -3600 } };
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'time-namespace', plan);
  t.ok(plan.flags & PlanFlag.newTimens);
  t.notOk(plan.container.unshareFlags & CLONE.NEWTIME, 'the time namespace has its own plan flag');
  t.same(plan.container.timeOffsets, { monotonic: [86400n, 5], boottime: [-3600n, 0] });
});

t.test('golden: sysctls in their namespaces', async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'network' }, { type: 'ipc' }, { type: 'uts' });
  spec.linux.sysctl = {
    'net.ipv4.ip_forward': '1',
    'net.core.somaxconn': '1024',
    'kernel.msgmax': '8192',
    'fs.mqueue.queues_max': '32',
    'kernel.domainname': 'example.org',
  };
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'sysctl', plan);
  t.same(plan.container.sysctl, [
    ['net/ipv4/ip_forward', '1'],
    ['net/core/somaxconn', '1024'],
    ['kernel/msgmax', '8192'],
    ['fs/mqueue/queues_max', '32'],
    ['kernel/domainname', 'example.org'],
  ]);
});

t.test('golden: capabilities', async t => {
  const spec = minimalSpec();
  spec.process.capabilities = {
    bounding: ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN', 'CAP_CHECKPOINT_RESTORE'],
    effective: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
    permitted: ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
    inheritable: ['CAP_KILL'],
    ambient: ['CAP_NET_BIND_SERVICE'],
  };
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'capabilities', plan);
  t.equal(plan.process.caps.bounding, capBit(0) | capBit(CAP_KILL) | capBit(CAP_NET_BIND_SERVICE) | capBit(21) | capBit(40));
  t.equal(plan.process.caps.effective, capBit(CAP_KILL) | capBit(CAP_NET_BIND_SERVICE));
  t.equal(plan.process.caps.permitted, capBit(CAP_KILL) | capBit(CAP_NET_BIND_SERVICE));
  t.equal(plan.process.caps.inheritable, capBit(CAP_KILL));
  t.equal(plan.process.caps.ambient, capBit(CAP_NET_BIND_SERVICE));
});

t.test('R8: the inheritable set is empty when the config names none', async t => {
  const plan = buildPlan(defaultSpec(), rootFacts(), buildOpts({ console: true }));
  t.equal(plan.process.caps.inheritable, 0n);
  const expected = capBit(CAP_AUDIT_WRITE) | capBit(CAP_KILL) | capBit(CAP_NET_BIND_SERVICE);
  t.equal(plan.process.caps.bounding, expected);
  t.equal(plan.process.caps.ambient, expected, 'the other sets are as configured');
  const spec = minimalSpec();
  spec.process.capabilities = { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'], inheritable: [] };
  t.equal(buildPlan(spec, rootFacts(), buildOpts()).process.caps.inheritable, 0n, 'an empty list too');
});

t.test('golden: rlimits, explicit and the default NOFILE', async t => {
  const spec = minimalSpec();
  spec.process.rlimits = [
    { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
    { type: 'RLIMIT_NPROC', soft: 512, hard: 1024 },
    { type: 'RLIMIT_MEMLOCK', soft: 65536, hard: 65536 },
  ];
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'rlimits-default-nofile', plan);
  t.same(
    plan.process.rlimits,
    [
      { resource: RLIMIT['RLIMIT_CORE'], soft: 0n, hard: 0n },
      { resource: RLIMIT['RLIMIT_NPROC'], soft: 512n, hard: 1024n },
      { resource: RLIMIT['RLIMIT_MEMLOCK'], soft: 65536n, hard: 65536n },
      { resource: RLIMIT['RLIMIT_NOFILE'], soft: 1024n, hard: 4096n },
    ],
    'no NOFILE in the config: the host default is set explicitly',
  );

  const explicit = minimalSpec();
  explicit.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }];
  const plan2 = buildPlan(explicit, rootFacts(), buildOpts());
  golden(t, 'rlimits-explicit-nofile', plan2);
  t.same(plan2.process.rlimits, [{ resource: RLIMIT['RLIMIT_NOFILE'], soft: 100n, hard: 200n }], 'the configured NOFILE only');
});

t.test('an unlimited rlimit (2^64-1 in config.json) stays RLIM_INFINITY', async t => {
  // config.json is parsed with JSON.parse, so 18446744073709551615 arrives as the double 2^64. It must reach the
  // plan as RLIM_INFINITY (2^64-1), not as 2^64, which the u64 codec would wrap to 0 (a limit of zero).
  const spec = minimalSpec();
  spec.process.rlimits = JSON.parse(
    '[{"type":"RLIMIT_NOFILE","soft":1024,"hard":18446744073709551615},' +
      '{"type":"RLIMIT_CORE","soft":18446744073709551615,"hard":18446744073709551615}]',
  );
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  const RLIM_INFINITY = (1n << 64n) - 1n;
  t.same(plan.process.rlimits, [
    { resource: RLIMIT['RLIMIT_NOFILE'], soft: 1024n, hard: RLIM_INFINITY },
    { resource: RLIMIT['RLIMIT_CORE'], soft: RLIM_INFINITY, hard: RLIM_INFINITY },
  ]);
});

t.test('golden: terminal with a console socket', async t => {
  const spec = minimalSpec();
  spec.process.terminal = true;
  spec.process.consoleSize = { height: 40, width: 120 };
  const plan = buildPlan(spec, rootFacts(), buildOpts({ console: true }));
  golden(t, 'terminal-console-socket', plan);
  t.ok(plan.flags & PlanFlag.terminal);
  t.same(plan.process.consoleSize, { rows: 40, cols: 120 });
  const noTty = buildPlan(minimalSpec(), rootFacts(), buildOpts({ console: true }));
  t.notOk(noTty.flags & PlanFlag.terminal, 'a console socket alone makes no terminal (create binds it only to one)');
});

function cgroupSpec(opts: { cgroupns: boolean; userns?: boolean; ro?: boolean }): any {
  const spec = minimalSpec();
  spec.mounts.push({
    destination: '/sys/fs/cgroup',
    type: 'cgroup',
    source: 'cgroup',
    options: ['nosuid', 'noexec', 'nodev', 'relatime', ...(opts.ro ? ['ro'] : [])],
  });
  if (opts.cgroupns) spec.linux.namespaces.push({ type: 'cgroup' });
  if (opts.userns) {
    spec.linux.namespaces.push({ type: 'user' });
    spec.linux.uidMappings = [{ containerID: 0, hostID: USER_UID, size: 1 }];
    spec.linux.gidMappings = [{ containerID: 0, hostID: USER_GID, size: 1 }];
  }
  return spec;
}

t.test('golden: cgroup mount with a cgroup namespace (hybrid)', async t => {
  const plan = buildPlan(cgroupSpec({ cgroupns: true, ro: true }), rootFacts('hybrid'), buildOpts());
  golden(t, 'cgroup-ns-hybrid', plan);
  const cg = plan.container.steps.filter(s => s.dest.startsWith('/sys/fs/cgroup'));
  t.match(cg[0], { kind: 'fs', fstype: 'tmpfs', dest: '/sys/fs/cgroup', data: 'mode=755' });
  t.match(stepAt(plan, '/sys/fs/cgroup/cpu,cpuacct'), { kind: 'fs', fstype: 'cgroup', data: 'cpu,cpuacct' });
  t.match(stepAt(plan, '/sys/fs/cgroup/cpu'), { kind: 'symlink', data: 'cpu,cpuacct' });
  t.match(stepAt(plan, '/sys/fs/cgroup/cpuacct'), { kind: 'symlink', data: 'cpu,cpuacct' });
  t.match(stepAt(plan, '/sys/fs/cgroup/memory'), { kind: 'fs', fstype: 'cgroup', data: 'memory' });
  t.match(stepAt(plan, '/sys/fs/cgroup/systemd'), { kind: 'fs', fstype: 'cgroup', data: 'name=systemd' });
  t.match(stepAt(plan, '/sys/fs/cgroup/unified'), { kind: 'fs', fstype: 'cgroup2' });
  t.match(cg[cg.length - 1], { kind: 'setattr', dest: '/sys/fs/cgroup', attrSet: ATTR.RDONLY }, 'made read-only last');
});

t.test('golden: cgroup mount without a cgroup namespace (hybrid)', async t => {
  const plan = buildPlan(cgroupSpec({ cgroupns: false }), rootFacts('hybrid'), buildOpts());
  golden(t, 'cgroup-nons-hybrid', plan);
  t.match(
    stepAt(plan, '/sys/fs/cgroup/memory'),
    { kind: 'bind', source: '/sys/fs/cgroup/memory/user.slice/user-1000.slice' },
    'only the own cgroup is shown',
  );
  t.match(stepAt(plan, '/sys/fs/cgroup/unified'), {
    kind: 'bind',
    source: '/sys/fs/cgroup/unified/user.slice/user-1000.slice/session-1.scope',
  });
  t.notOk(
    plan.container.steps.some(s => s.kind === 'setattr'),
    'no ro option: the tmpfs stays writable',
  );
});

t.test('golden: cgroup mount in a user namespace without a cgroup namespace (hybrid) is read-only', async t => {
  const plan = buildPlan(cgroupSpec({ cgroupns: false, userns: true }), userFacts('hybrid'), buildOpts());
  golden(t, 'cgroup-nons-userns-hybrid', plan);
  const binds = plan.container.steps.filter(s => s.dest.startsWith('/sys/fs/cgroup/') && s.kind === 'bind');
  t.equal(binds.length, 4, 'three v1 hierarchies and the unified one');
  for (const b of binds) t.ok(b.attrSet & ATTR.RDONLY, `${b.dest} is read-only even without "ro" (CVE-2023-25809)`);
});

t.test('golden: cgroup mount with a cgroup namespace (v2)', async t => {
  const plan = buildPlan(cgroupSpec({ cgroupns: true }), rootFacts('v2'), buildOpts());
  golden(t, 'cgroup-ns-v2', plan);
  const cg = plan.container.steps.filter(s => s.dest.startsWith('/sys/fs/cgroup'));
  t.equal(cg.length, 1);
  t.match(cg[0], { kind: 'fs', fstype: 'cgroup2', source: 'cgroup2', dest: '/sys/fs/cgroup' });
  t.equal(cg[0]!.attrSet, ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC);
});

t.test('golden: cgroup mount without a cgroup namespace (v2)', async t => {
  const plan = buildPlan(cgroupSpec({ cgroupns: false }), rootFacts('v2'), buildOpts());
  golden(t, 'cgroup-nons-v2', plan);
  const cg = plan.container.steps.filter(s => s.dest.startsWith('/sys/fs/cgroup'));
  t.equal(cg.length, 1);
  t.match(cg[0], { kind: 'bind', source: '/sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope' });
  t.ok(cg[0]!.flags & MountFlag.recursive);
  t.notOk(cg[0]!.attrSet & ATTR.RDONLY, 'root without "ro": writable');
});

t.test('golden: cgroup v2 mount in a user namespace without a cgroup namespace is read-only', async t => {
  const plan = buildPlan(cgroupSpec({ cgroupns: false, userns: true }), userFacts('v2'), buildOpts());
  golden(t, 'cgroup-nons-userns-v2', plan);
  t.ok(stepAt(plan, '/sys/fs/cgroup').attrSet & ATTR.RDONLY);
});

t.test('golden: process details (user, umask, cwd, env, oom, no-pivot, keyring, hooks)', async t => {
  const spec = minimalSpec();
  spec.process.user = { uid: 1000, gid: 1000, umask: 0o077, additionalGids: [10, 20] };
  spec.process.cwd = '/home/user/../app/';
  spec.process.oomScoreAdj = -500;
  spec.process.env = ['PATH=/bin', 'HOME=/app'];
  spec.linux.maskedPaths = ['/proc/kcore', '/proc/../proc/keys'];
  spec.linux.readonlyPaths = ['/proc/sys/'];
  spec.linux.rootfsPropagation = 'rshared';
  spec.hooks = { createRuntime: [{ path: '/bin/true' }] };
  const plan = buildPlan(spec, rootFacts(), buildOpts({ noPivot: true, noNewKeyring: true, startFifo: false, preserveFds: 2 }));
  golden(t, 'process-details', plan);
  t.equal(plan.process.cwd, '/home/app/');
  t.match(stepAt(plan, '/home/app/'), { kind: 'mkdir' }, 'a cwd other than / is created');
  t.equal(plan.process.umask, 0o077);
  t.same(plan.process.additionalGids, [10, 20]);
  t.ok(plan.flags & PlanFlag.oomScoreAdj);
  t.ok(plan.flags & PlanFlag.noPivot);
  t.notOk(plan.flags & PlanFlag.newKeyring);
  t.ok(plan.flags & PlanFlag.syncPrepivot);
  t.notOk(plan.flags & PlanFlag.startFifo, 'run (socket start) has no fifo');
  t.same(plan.container.maskedPaths, ['/proc/kcore', '/proc/keys']);
  t.equal(plan.container.rootfsPropagation, MS.SHARED | MS.REC);
  t.equal(plan.container.rootPropagation, MS.SLAVE | MS.REC, '"/" is made a slave first; shared only after pivot');
});

t.test("hook timing is the plan's: prestart at start before runtime-spec 1.0.2, else before pivot_root", async t => {
  const timing = (ociVersion: string, hooks: object) => {
    const spec = minimalSpec();
    spec.ociVersion = ociVersion;
    spec.hooks = hooks;
    const plan = buildPlan(spec, rootFacts(), buildOpts());
    return { prestartAtStart: plan.parent.prestartAtStart, prepivot: !!(plan.flags & PlanFlag.syncPrepivot) };
  };
  const prestart = { prestart: [{ path: '/bin/true' }] };
  t.same(timing('1.0.1', prestart), { prestartAtStart: true, prepivot: false }, '1.0.1: prestart runs at start');
  t.same(timing('1.0.2-dev', prestart), { prestartAtStart: true, prepivot: false }, '1.0.2-dev precedes 1.0.2');
  t.same(timing('1.0.2', prestart), { prestartAtStart: false, prepivot: true }, '1.0.2: prestart runs in create');
  t.same(timing('1.2.0', {}), { prestartAtStart: false, prepivot: false }, 'no hooks: no stop before pivot_root');
  t.same(
    timing('1.0.0', { createContainer: [{ path: '/bin/true' }] }),
    { prestartAtStart: true, prepivot: true },
    'createContainer always runs before pivot_root',
  );
  t.same(
    timing('1.2.0', { startContainer: [{ path: '/bin/true' }], poststart: [{ path: '/bin/true' }] }),
    { prestartAtStart: false, prepivot: false },
    'hooks of start need no stop',
  );
});

t.test('golden: a seccomp profile becomes a filter descriptor, load flags and a listener', async t => {
  const spec = minimalSpec();
  spec.linux.seccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 38,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
    flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'],
    listenerPath: '/run/agent.sock',
    listenerMetadata: 'tenant=a',
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
      { names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' },
    ],
  };
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'seccomp', plan);
  t.equal(plan.process.seccomp?.filter.defaultAction, 0x00050000 | 38, 'SCMP_ACT_ERRNO(38)');
  t.equal(plan.process.seccomp?.flags, 0x2 | 0x8 | 0x20, 'LOG | NEW_LISTENER | WAIT_KILLABLE_RECV');
  t.same(plan.process.seccomp?.listener, { path: '/run/agent.sock', metadata: 'tenant=a' });
});

t.test('golden: no seccomp section, no filter', async t => {
  t.equal(buildPlan(minimalSpec(), rootFacts(), buildOpts()).process.seccomp, undefined);
});

// ---------------------------------------------------------------------------------------------------------
// Rules that must reject the config
// ---------------------------------------------------------------------------------------------------------

t.test('reject: relative maskedPaths and readonlyPaths (the executor would refuse the plan)', async t => {
  const masked = minimalSpec();
  masked.linux.maskedPaths = ['proc/kcore'];
  rejects(t, masked, 'config.json: /linux/maskedPaths/0: path must be absolute: "proc/kcore"');
  const readonly = minimalSpec();
  readonly.linux.readonlyPaths = ['sys'];
  rejects(t, readonly, 'config.json: /linux/readonlyPaths/0: path must be absolute: "sys"');
});

t.test('reject: a value the plan codec cannot carry (a NUL inside); long values and long lists pass', async t => {
  const nul = minimalSpec();
  nul.process.args = ['sh', 'a\u0000b'];
  rejects(t, nul, 'a value contains a NUL character: "a\\u0000b"');
  // The Slurm failure of issue 18: an inherited 4.3 KB variable (Lmod's module table) was refused.
  const long = minimalSpec();
  long.process.env = [`_ModuleTable001_=${'x'.repeat(4367)}`, `A=${'x'.repeat(5000)}`];
  long.process.args = ['sh', '-c', 'y'.repeat(20_000)];
  t.doesNotThrow(() => buildPlan(long as Spec, rootFacts(), buildOpts()), 'values over 4096 bytes');
  const many = minimalSpec();
  many.process.env = Array.from({ length: 4097 }, (_, i) => `V${i}=1`);
  t.doesNotThrow(() => buildPlan(many as Spec, rootFacts(), buildOpts()), 'lists over 4096 entries');
});

t.test("no mount namespace: the rootfs is prepared in the runtime's, entered with chroot", async t => {
  const spec = minimalSpec();
  spec.linux.namespaces = [{ type: 'pid' }];
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  t.ok(plan.flags & PlanFlag.newMountns, 'rootfs work happens');
  t.ok(plan.flags & PlanFlag.sharedMountns, 'in a shared mount namespace');
  t.equal(plan.container.unshareFlags & CLONE.NEWNS, 0, 'no new mount namespace');
});

t.test('a mount namespace joined by path is shared: chroot, no propagation change', async t => {
  const spec = minimalSpec();
  spec.linux.namespaces = [{ type: 'mount', path: '/proc/1234/ns/mnt' }];
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  t.ok(plan.flags & PlanFlag.sharedMountns);
  t.same(plan.container.join, [{ type: CLONE.NEWNS, path: '/proc/1234/ns/mnt' }]);
});

t.test('reject: rootless without a user namespace', async t => {
  rejects(t, minimalSpec(), 'rootless container requires user namespaces', userFacts());
});

t.test('reject: a user namespace without mappings', async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'user' });
  rejects(t, spec, 'config.json: /linux/uidMappings: user namespaces enabled, but no uid or gid mappings found');
  spec.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
  rejects(t, spec, 'config.json: /linux/gidMappings: user namespaces enabled, but no uid or gid mappings found');
});

t.test('reject: mappings without a user namespace', async t => {
  const spec = minimalSpec();
  spec.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
  spec.linux.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
  rejects(t, spec, 'config.json: /linux/uidMappings: uidMappings/gidMappings given without a new user namespace');
});

t.test('reject: duplicate namespace type', async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'pid' });
  rejects(t, spec, 'config.json: /linux/namespaces/2/type: duplicate namespace type "pid"');
});

t.test('reject: hostname without a UTS namespace', async t => {
  const spec = minimalSpec();
  spec.hostname = 'box';
  rejects(t, spec, 'config.json: /hostname: unable to set hostname without a private UTS namespace');
});

t.test('reject: a sysctl that no namespace isolates (kernel.panic)', async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'network' }, { type: 'ipc' }, { type: 'uts' });
  spec.linux.sysctl = { 'kernel.panic': '1' };
  rejects(t, spec, 'config.json: /linux/sysctl/kernel.panic: sysctl "kernel.panic" is not in a separate kernel namespace');
});

t.test("reject: sysctls, hostname and network devices in the runtime's own namespace joined by path", async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'network', path: '/proc/1/ns/net' }, { type: 'uts', path: '/proc/1/ns/uts' });
  spec.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
  rejects(
    t,
    spec,
    'config.json: /linux/sysctl/net.ipv4.ip_forward: sysctl "net.ipv4.ip_forward" is not allowed as it conflicts with the host\'s network namespace',
  );
  spec.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
  spec.linux.namespaces[2] = { type: 'network', path: '/proc/1234/ns/net' };
  t.same(buildPlan(spec, rootFacts(), buildOpts()).container.sysctl, [['net/ipv4/ip_forward', '1']], "another process's namespace is fine");
  delete spec.linux.sysctl;
  spec.hostname = 'box';
  rejects(t, spec, 'config.json: /hostname: unable to set hostname without a private UTS namespace');
  delete spec.hostname;
  spec.linux.namespaces[2] = { type: 'network', path: '/proc/1/ns/net' };
  spec.linux.netDevices = { eth1: {} };
  rejects(t, spec, "config.json: /linux/netDevices: network devices need a network namespace of the container's own");
});

t.test('reject: a net sysctl without a network namespace', async t => {
  const spec = minimalSpec();
  spec.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
  rejects(
    t,
    spec,
    'config.json: /linux/sysctl/net.ipv4.ip_forward: sysctl "net.ipv4.ip_forward" is not allowed as it conflicts with the host\'s network namespace',
  );
});

t.test('config errors are SpecErrors naming the field by JSON pointer, in the message and in `path`', async t => {
  const thrown = (spec: any, facts = rootFacts()): SpecError => {
    try {
      buildPlan(spec as Spec, facts, buildOpts());
    } catch (e) {
      if (e instanceof SpecError) return e;
      throw e;
    }
    throw new Error('not refused');
  };
  const caps = minimalSpec();
  caps.process.capabilities = { bounding: ['CAP_KILL', 'CAP_BOGUS'] };
  const e = thrown(caps);
  t.equal(e.op, 'config.json');
  t.equal(e.path, '/process/capabilities/bounding/1');
  t.equal(e.message, 'config.json: /process/capabilities/bounding/1: unknown capability "CAP_BOGUS"');
  const keys = minimalSpec();
  keys.linux.namespaces.push({ type: 'network' });
  keys.linux.netDevices = { 'a/b~c': {} };
  t.equal(thrown(keys).path, '/linux/netDevices/a~1b~0c', 'a map key is escaped as RFC 6901 says');
  // runc's own texts stay runc's; the pointer is still there for a library caller.
  const runcText = thrown(minimalSpec(), userFacts());
  t.equal(runcText.message, 'rootless container requires user namespaces');
  t.equal(runcText.path, '/linux/namespaces');
});

t.test('reject: an unknown capability', async t => {
  const spec = minimalSpec();
  spec.process.capabilities = { bounding: ['CAP_KILL', 'CAP_BOGUS'] };
  rejects(t, spec, 'config.json: /process/capabilities/bounding/1: unknown capability "CAP_BOGUS"');
  spec.process.capabilities = { inheritable: ['kill'] };
  rejects(t, spec, 'config.json: /process/capabilities/inheritable/0: unknown capability "kill"');
});

t.test('reject: a capability the host kernel does not know (above cap_last_cap)', async t => {
  const spec = minimalSpec();
  spec.process.capabilities = { bounding: ['CAP_KILL', 'CAP_CHECKPOINT_RESTORE'] };
  rejects(
    t,
    spec,
    "config.json: /process/capabilities/bounding/1: CAP_CHECKPOINT_RESTORE is not known to the host's kernel (its last capability is CAP_AUDIT_READ)",
    { ...rootFacts(), capLastCap: 37 },
  );
});

t.test("reject: without a user namespace, a capability missing from the host's bounding set", async t => {
  const CAP_SYS_RESOURCE = 24;
  const facts = { ...rootFacts(), capBounding: ((1n << 41n) - 1n) & ~capBit(CAP_SYS_RESOURCE) };
  const spec = minimalSpec();
  spec.process.capabilities = { bounding: ['CAP_KILL'], permitted: ['CAP_KILL', 'CAP_SYS_RESOURCE'] };
  rejects(
    t,
    spec,
    "config.json: /process/capabilities/permitted/1: CAP_SYS_RESOURCE is not in the host's capability bounding set, so the container cannot have it",
    facts,
  );
  // A new user namespace starts with every capability: the host's bounding set is no limit there.
  spec.linux.namespaces.push({ type: 'user' });
  spec.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  spec.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  t.equal(buildPlan(spec, facts, buildOpts()).process.caps.permitted, capBit(CAP_KILL) | capBit(CAP_SYS_RESOURCE));
});

t.test("reject: process.oomScoreAdj outside the kernel's -1000..1000", async t => {
  const spec = minimalSpec();
  spec.process.oomScoreAdj = 1001;
  rejects(t, spec, 'config.json: /process/oomScoreAdj: 1001 is outside -1000..1000');
  spec.process.oomScoreAdj = -1001;
  rejects(t, spec, 'config.json: /process/oomScoreAdj: -1001 is outside -1000..1000');
  spec.process.oomScoreAdj = -1000;
  t.equal(buildPlan(spec, rootFacts(), buildOpts()).process.oomScoreAdj, -1000, 'the bounds themselves are fine');
});

t.test('reject: an unknown rlimit', async t => {
  const spec = minimalSpec();
  spec.process.rlimits = [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }];
  rejects(t, spec, 'config.json: /process/rlimits/0/type: unknown rlimit type "RLIMIT_BOGUS"');
});

t.test('reject: an rlimit whose soft limit is above the hard one', async t => {
  const spec = minimalSpec();
  spec.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 2048, hard: 1024 }];
  rejects(t, spec, 'config.json: /process/rlimits/0: RLIMIT_NOFILE soft limit 2048 is above the hard limit 1024');
});

t.test('reject: a duplicate rlimit', async t => {
  const spec = minimalSpec();
  spec.process.rlimits = [
    { type: 'RLIMIT_NOFILE', soft: 1, hard: 1 },
    { type: 'RLIMIT_NOFILE', soft: 2, hard: 2 },
  ];
  rejects(t, spec, 'config.json: /process/rlimits/1/type: duplicate rlimit type "RLIMIT_NOFILE"');
});

t.test('reject: a relative cwd', async t => {
  const spec = minimalSpec();
  spec.process.cwd = 'tmp';
  rejects(t, spec, 'config.json: /process/cwd: cwd property must be an absolute path: "tmp"');
});

t.test('reject: empty args', async t => {
  const spec = minimalSpec();
  spec.process.args = [];
  rejects(t, spec, 'config.json: /process/args: args must not be empty');
});

t.test('reject: a terminal without a console socket', async t => {
  const spec = minimalSpec();
  spec.process.terminal = true;
  rejects(t, spec, 'cannot allocate tty if tsrt will detach without setting console socket');
});

t.test('reject: a bind mount whose source is missing', async t => {
  const spec = minimalSpec();
  spec.mounts.push({ destination: '/mnt', type: 'bind', source: 'missing', options: ['rbind'] });
  rejects(t, spec, 'error mounting "missing" to rootfs at "/mnt": stat /bundle/missing: no such file or directory');
});

t.test('reject: a relative mount destination', async t => {
  const spec = minimalSpec();
  spec.mounts.push({ destination: 'mnt', type: 'tmpfs', source: 'tmpfs' });
  rejects(t, spec, 'mount "tmpfs" to rootfs at "mnt": mount destination must be an absolute path');
});

t.test("golden: idmapped bind mounts (own maps, the container's maps via idmap, ridmap)", async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'user' });
  spec.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  spec.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  spec.mounts.push(
    {
      destination: '/own',
      type: 'bind',
      source: '/srv/shared',
      options: ['rbind'],
      uidMappings: [{ containerID: 1000, hostID: 100007, size: 1 }],
      gidMappings: [{ containerID: 1000, hostID: 100008, size: 1 }],
    },
    { destination: '/theirs', type: 'bind', source: '/srv/shared', options: ['rbind', 'idmap'] },
    { destination: '/tree', type: 'bind', source: '/srv/shared', options: ['rbind', 'ridmap', 'ro'] },
  );
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'idmapped-mounts', plan);
  t.same(stepAt(plan, '/own').idmap, {
    uidMappings: [{ containerID: 1000, hostID: 100007, size: 1 }],
    gidMappings: [{ containerID: 1000, hostID: 100008, size: 1 }],
    recursive: false,
  });
  t.same(stepAt(plan, '/theirs').idmap?.uidMappings, spec.linux.uidMappings, "idmap alone: the container's maps");
  t.equal(stepAt(plan, '/tree').idmap?.recursive, true, 'ridmap');
  t.equal(stepAt(plan, '/proc').idmap, undefined);
});

t.test('reject: idmapped mount rules', async t => {
  const cases: [unknown, string][] = [
    [
      { destination: '/mnt', type: 'bind', source: '/srv/shared', options: ['rbind', 'idmap'] },
      'mount "/srv/shared" to rootfs at "/mnt": option "idmap" without uidMappings/gidMappings needs the container\'s own user namespace mappings',
    ],
    [
      { destination: '/mnt', type: 'tmpfs', source: 'tmpfs', options: ['idmap'] },
      'mount "tmpfs" to rootfs at "/mnt": idmapped mounts are only supported for bind mounts',
    ],
    [
      { destination: '/mnt', type: 'bind', source: '/srv/shared', uidMappings: [{ containerID: 0, hostID: 1, size: 1 }] },
      'mount "/srv/shared" to rootfs at "/mnt": an idmapped mount needs both uidMappings and gidMappings',
    ],
    [
      {
        destination: '/mnt',
        type: 'bind',
        source: '/srv/shared',
        uidMappings: [{ containerID: 0, hostID: 1, size: 0 }],
        gidMappings: [{ containerID: 0, hostID: 1, size: 1 }],
      },
      'mount "/srv/shared" to rootfs at "/mnt": an id mapping needs a size of at least 1',
    ],
  ];
  for (const [mount, message] of cases) {
    const spec = minimalSpec();
    spec.mounts.push(mount);
    rejects(t, spec, message);
  }
  const spec = rootlessSpec();
  spec.mounts!.push({ destination: '/mnt', type: 'bind', source: '/srv/shared', options: ['rbind', 'idmap'] });
  rejects(t, spec, 'mount "/srv/shared" to rootfs at "/mnt": idmapped mounts need a root runtime', userFacts());
  // No count of tsrt's: each idmapped tree is one fd in the executor, so RLIMIT_NOFILE is the limit.
  const many = minimalSpec();
  for (let i = 0; i < 200; i++) {
    many.mounts.push({
      destination: `/m${i}`,
      type: 'bind',
      source: '/srv/shared',
      uidMappings: [{ containerID: 0, hostID: 1, size: 1 }],
      gidMappings: [{ containerID: 0, hostID: 1, size: 1 }],
    });
  }
  t.equal(buildPlan(many, rootFacts(), buildOpts()).container.steps.filter(st => st.idmap).length, 200, '200 idmapped mounts');
});

t.test('reject: time offsets without a time namespace', async t => {
  const spec = minimalSpec();
  spec.linux.timeOffsets = { monotonic: { secs: 1 } };
  rejects(t, spec, 'config.json: /linux/timeOffsets: time offsets need a new time namespace');
});

t.test("reject: a sysctl key that climbs out of its namespace's tree", async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'network' });
  spec.linux.sysctl = { 'net.ipv4.conf.all/../../../../kernel/core_pattern': '|/evil' };
  rejects(
    t,
    spec,
    'config.json: /linux/sysctl/net.ipv4.conf.all~1..~1..~1..~1..~1kernel~1core_pattern: invalid sysctl key "net.ipv4.conf.all/../../../../kernel/core_pattern"',
  );
  spec.linux.sysctl = { 'net..ipv4': '1' };
  rejects(t, spec, 'config.json: /linux/sysctl/net..ipv4: invalid sysctl key "net..ipv4"');
});

t.test('reject: a namespace path that is relative or does not exist', async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'network', path: 'netns/blue' });
  rejects(t, spec, 'config.json: /linux/namespaces/2/path: network namespace path must be absolute: netns/blue');
  spec.linux.namespaces[2] = { type: 'network', path: '/var/run/netns/missing' };
  rejects(t, spec, 'config.json: /linux/namespaces/2/path: network namespace path /var/run/netns/missing does not exist');
});

t.test('reject: a device outside /dev', async t => {
  const spec = minimalSpec();
  spec.linux.devices = [{ path: '/etc/passwd', type: 'c', major: 1, minor: 3 }];
  rejects(t, spec, 'linux.devices[0] (/etc/passwd): device path must be under /dev');
  // The same rule may not be side-stepped with "..": the executor resolves the destination inside the rootfs,
  // which would put the node at /etc/passwd.
  spec.linux.devices = [{ path: '/dev/../etc/passwd', type: 'c', major: 1, minor: 3 }];
  rejects(t, spec, 'linux.devices[0] (/dev/../etc/passwd): device path must be under /dev');
});

// ---------------------------------------------------------------------------------------------------------
// Process attributes (runtime-spec 1.2): scheduler, ioPriority, execCPUAffinity, personality, memoryPolicy
// ---------------------------------------------------------------------------------------------------------

t.test('golden: scheduler, ioPriority, execCPUAffinity, personality, memoryPolicy', async t => {
  const spec = minimalSpec();
  spec.process.scheduler = { policy: 'SCHED_RR', priority: 10, flags: ['SCHED_FLAG_RESET_ON_FORK'] };
  spec.process.ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 6 };
  spec.process.execCPUAffinity = { initial: '0-1', final: ' 1, 3 ' };
  spec.linux.personality = { domain: 'LINUX32' };
  spec.linux.memoryPolicy = { mode: 'MPOL_INTERLEAVE', nodes: '0-2,65', flags: ['MPOL_F_STATIC_NODES'] };
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'process-attributes', plan);
  t.same(plan.process.scheduler, { policy: 2, flags: 1, nice: 0, priority: 10, runtime: 0n, deadline: 0n, period: 0n });
  t.equal(plan.process.ioPriority, (2 << 13) | 6, 'class << IOPRIO_CLASS_SHIFT | level');
  t.same([...plan.process.cpuAffinity!.initial!], [0b11, 0, 0, 0, 0, 0, 0, 0], 'CPUs 0-1, one long');
  t.same([...plan.process.cpuAffinity!.final!], [0b1010, 0, 0, 0, 0, 0, 0, 0], 'CPUs 1 and 3 (spaces allowed)');
  t.equal(plan.process.personality, 8, 'PER_LINUX32');
  t.equal(plan.process.memoryPolicy!.mode, 3 | (1 << 15), 'MPOL_INTERLEAVE | MPOL_F_STATIC_NODES');
  t.equal(plan.process.memoryPolicy!.nodes.length, 16, 'node 65 needs a second long');
  t.equal(plan.process.memoryPolicy!.nodes[0], 0b111);
  t.equal(plan.process.memoryPolicy!.nodes[8], 0b10);
});

t.test('golden: SCHED_DEADLINE with runtime, deadline and period', async t => {
  const spec = minimalSpec();
  spec.process.scheduler = { policy: 'SCHED_DEADLINE', runtime: 10_000_000, deadline: 20_000_000, period: 30_000_000 };
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  t.same(plan.process.scheduler, {
    policy: 6,
    flags: 0,
    nice: 0,
    priority: 0,
    runtime: 10_000_000n,
    deadline: 20_000_000n,
    period: 30_000_000n,
  });
  t.equal(plan.process.ioPriority, undefined, 'fields the config leaves out stay out of the plan');
  t.equal(plan.process.cpuAffinity, undefined);
  t.equal(plan.process.personality, undefined);
  t.equal(plan.process.memoryPolicy, undefined);
});

t.test('reject: process.scheduler rules', async t => {
  const cases: [unknown, string][] = [
    [{ policy: 'SCHED_ISO' }, 'config.json: /process/scheduler/policy: SCHED_ISO is not implemented by the Linux kernel'],
    [{ policy: 'SCHED_OTHER', nice: 20 }, 'config.json: /process/scheduler/nice: 20 is outside -20..19'],
    [{ policy: 'SCHED_OTHER', nice: -21 }, 'config.json: /process/scheduler/nice: -21 is outside -20..19'],
    [{ policy: 'SCHED_FIFO' }, 'config.json: /process/scheduler/priority: SCHED_FIFO needs a priority in 1..99, not 0'],
    [{ policy: 'SCHED_RR', priority: 100 }, 'config.json: /process/scheduler/priority: SCHED_RR needs a priority in 1..99, not 100'],
    [
      { policy: 'SCHED_BATCH', priority: 5 },
      'config.json: /process/scheduler/priority: only SCHED_FIFO and SCHED_RR take a priority (SCHED_BATCH given)',
    ],
    [
      { policy: 'SCHED_OTHER', runtime: 5 },
      'config.json: /process/scheduler: runtime, deadline and period are for SCHED_DEADLINE only (SCHED_OTHER given)',
    ],
    [{ policy: 'SCHED_DEADLINE', runtime: 5 }, 'config.json: /process/scheduler: SCHED_DEADLINE needs runtime and deadline'],
    [
      { policy: 'SCHED_DEADLINE', runtime: 5, deadline: 4 },
      'config.json: /process/scheduler: SCHED_DEADLINE needs runtime <= deadline <= period',
    ],
    [
      { policy: 'SCHED_DEADLINE', runtime: 5, deadline: 6, period: 5 },
      'config.json: /process/scheduler: SCHED_DEADLINE needs runtime <= deadline <= period',
    ],
    [
      { policy: 'SCHED_OTHER', flags: ['SCHED_FLAG_UTIL_CLAMP_MIN'] },
      'config.json: /process/scheduler/flags: SCHED_FLAG_UTIL_CLAMP_MIN/MAX need clamp values the runtime spec does not carry',
    ],
    [{ policy: 'SCHED_OTHER', flags: ['SCHED_FLAG_BOGUS'] }, 'config.json: /process/scheduler/flags/0: unknown flag "SCHED_FLAG_BOGUS"'],
  ];
  for (const [scheduler, message] of cases) {
    const spec = minimalSpec();
    spec.process.scheduler = scheduler;
    rejects(t, spec, message);
  }
});

t.test('reject: process.ioPriority level outside 0..7', async t => {
  const spec = minimalSpec();
  spec.process.ioPriority = { class: 'IOPRIO_CLASS_RT', priority: 8 };
  rejects(t, spec, 'config.json: /process/ioPriority/priority: 8 is outside 0..7');
  spec.process.ioPriority = { class: 'IOPRIO_CLASS_RT', priority: -1 };
  rejects(t, spec, 'config.json: /process/ioPriority/priority: -1 is outside 0..7');
});

t.test('reject: process.execCPUAffinity lists that are not CPU lists', async t => {
  const spec = minimalSpec();
  spec.process.execCPUAffinity = { initial: '3-1' };
  rejects(t, spec, 'config.json: /process/execCPUAffinity/initial: invalid range "3-1" in "3-1"');
  spec.process.execCPUAffinity = { final: '0,,1' };
  rejects(t, spec, 'config.json: /process/execCPUAffinity/final: invalid list "0,,1" (expected numbers and ranges such as "0-3,7")');
  spec.process.execCPUAffinity = { final: '1-2-3' };
  rejects(t, spec, 'config.json: /process/execCPUAffinity/final: invalid list "1-2-3" (expected numbers and ranges such as "0-3,7")');
  spec.process.execCPUAffinity = { initial: '8192' };
  rejects(t, spec, 'config.json: /process/execCPUAffinity/initial: 8192 in "8192" is above the kernel\'s limit of 8191');
});

t.test('reject: linux.personality flags (the spec defines none)', async t => {
  const spec = minimalSpec();
  spec.linux.personality = { domain: 'LINUX', flags: ['ADDR_NO_RANDOMIZE'] };
  rejects(t, spec, 'config.json: /linux/personality/flags/0: unknown flag "ADDR_NO_RANDOMIZE" (the runtime spec defines none)');
});

t.test('reject: linux.memoryPolicy rules', async t => {
  const cases: [unknown, string][] = [
    [{ mode: 'MPOL_BIND' }, 'config.json: /linux/memoryPolicy/nodes: MPOL_BIND needs nodes'],
    [{ mode: 'MPOL_DEFAULT', nodes: '0' }, 'config.json: /linux/memoryPolicy/nodes: MPOL_DEFAULT takes no nodes'],
    [{ mode: 'MPOL_LOCAL', flags: ['MPOL_F_STATIC_NODES'] }, 'config.json: /linux/memoryPolicy/flags: MPOL_LOCAL takes no flags'],
    [
      { mode: 'MPOL_BIND', nodes: '0', flags: ['MPOL_F_STATIC_NODES', 'MPOL_F_RELATIVE_NODES'] },
      'config.json: /linux/memoryPolicy/flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other',
    ],
    [{ mode: 'MPOL_BIND', nodes: '1024' }, 'config.json: /linux/memoryPolicy/nodes: 1024 in "1024" is above the kernel\'s limit of 1023'],
    [
      { mode: 'MPOL_BIND', nodes: 'all' },
      'config.json: /linux/memoryPolicy/nodes: invalid list "all" (expected numbers and ranges such as "0-3,7")',
    ],
  ];
  for (const [memoryPolicy, message] of cases) {
    const spec = minimalSpec();
    spec.linux.memoryPolicy = memoryPolicy;
    rejects(t, spec, message);
  }
  const spec = minimalSpec();
  spec.linux.memoryPolicy = { mode: 'MPOL_PREFERRED' };
  t.same(
    buildPlan(spec, rootFacts(), buildOpts()).process.memoryPolicy,
    { mode: 1, nodes: new Uint8Array(0) },
    'MPOL_PREFERRED without nodes is the local node',
  );
});

// ---------------------------------------------------------------------------------------------------------
// LSM labels: applied when the LSM is on, refused when it is not; a mount label is meaningless without SELinux
// ---------------------------------------------------------------------------------------------------------

t.test('reject: process.apparmorProfile when AppArmor is not enabled', async t => {
  const spec = minimalSpec();
  spec.process.apparmorProfile = 'tsrt-test';
  rejects(
    t,
    spec,
    'config.json: /process/apparmorProfile: apparmor: config provided but apparmor not supported (AppArmor is not enabled on the host; profile "tsrt-test")',
  );
  const plan = buildPlan(spec, { ...rootFacts(), apparmorEnabled: true }, buildOpts());
  t.equal(plan.process.apparmorProfile, 'tsrt-test', 'with AppArmor on, the profile goes to the executor');
});

t.test('reject: process.selinuxLabel when SELinux is disabled', async t => {
  const spec = minimalSpec();
  spec.process.selinuxLabel = 'system_u:system_r:container_t:s0:c1,c2';
  rejects(
    t,
    spec,
    'config.json: /process/selinuxLabel: selinux label is specified in config, but selinux is disabled or not supported (label "system_u:system_r:container_t:s0:c1,c2")',
  );
  const plan = buildPlan(spec, { ...rootFacts(), selinuxEnabled: true }, buildOpts());
  t.equal(plan.process.selinuxLabel, 'system_u:system_r:container_t:s0:c1,c2');
});

t.test('linux.mountLabel: ignored without SELinux, passed to the filesystems with it', async t => {
  const spec = minimalSpec();
  spec.linux.mountLabel = 'system_u:object_r:container_file_t:s0:c1,c2';
  spec.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['mode=1777'] });
  const off = buildPlan(spec, rootFacts(), buildOpts());
  t.equal(off.container.mountLabel, undefined, 'no SELinux: no label in the plan');
  t.equal(stepAt(off, '/tmp').flags & MountFlag.mountLabel, 0);
  const on = buildPlan(spec, { ...rootFacts(), selinuxEnabled: true }, buildOpts());
  t.equal(on.container.mountLabel, 'system_u:object_r:container_file_t:s0:c1,c2');
  t.equal(stepAt(on, '/tmp').flags & MountFlag.mountLabel, MountFlag.mountLabel, 'tmpfs gets context=');
  t.equal(stepAt(on, '/proc').flags & MountFlag.mountLabel, 0, "proc keeps the kernel's label");
});

// ---------------------------------------------------------------------------------------------------------
// linux.netDevices
// ---------------------------------------------------------------------------------------------------------

t.test('golden: linux.netDevices, renamed and kept', async t => {
  const spec = minimalSpec();
  spec.linux.namespaces.push({ type: 'network' });
  spec.linux.netDevices = { eth1: { name: 'ctr0' }, eth2: {} };
  const plan = buildPlan(spec, rootFacts(), buildOpts());
  golden(t, 'net-devices', plan);
  t.same(
    plan.parent.netDevices,
    [
      { hostName: 'eth1', name: 'ctr0' },
      { hostName: 'eth2', name: 'eth2' },
    ],
    'no name: the host name',
  );
  t.equal(buildPlan(minimalSpec(), rootFacts(), buildOpts()).parent.netDevices, undefined, 'none asked, none planned');
});

t.test('reject: linux.netDevices rules', async t => {
  const withNetns = () => {
    const spec = minimalSpec();
    spec.linux.namespaces.push({ type: 'network' });
    return spec;
  };
  let spec = minimalSpec();
  spec.linux.netDevices = { eth1: {} };
  rejects(t, spec, "config.json: /linux/netDevices: network devices need a network namespace of the container's own");
  spec = withNetns();
  spec.linux.netDevices = { eth9: {} };
  rejects(t, spec, 'config.json: /linux/netDevices/eth9: host network device "eth9" does not exist');
  spec.linux.netDevices = { 'eth1/../x': {} };
  rejects(t, spec, 'config.json: /linux/netDevices/eth1~1..~1x: invalid host device name "eth1/../x"');
  spec.linux.netDevices = { eth1: { name: 'a-name-longer-than-15' } };
  rejects(t, spec, 'config.json: /linux/netDevices/eth1/name: invalid device name "a-name-longer-than-15"');
  spec.linux.netDevices = { eth1: { name: 'ctr0' }, eth2: { name: 'ctr0' } };
  rejects(t, spec, 'config.json: /linux/netDevices/eth2/name: device name "ctr0" is used twice in the container');
  spec = withNetns();
  spec.linux.namespaces.push({ type: 'user' });
  spec.linux.uidMappings = [{ containerID: 0, hostID: USER_UID, size: 1 }];
  spec.linux.gidMappings = [{ containerID: 0, hostID: USER_GID, size: 1 }];
  spec.linux.netDevices = { eth1: {} };
  rejects(t, spec, 'config.json: /linux/netDevices: moving host network devices needs a root runtime', userFacts());
});

// ---------------------------------------------------------------------------------------------------------
// linux.intelRdt
// ---------------------------------------------------------------------------------------------------------

const rdtFacts = () => ({ ...rootFacts(), resctrlMountPoint: '/sys/fs/resctrl' });

t.test('golden: linux.intelRdt with closID, schemas and monitoring', async t => {
  const spec = minimalSpec();
  spec.linux.intelRdt = {
    closID: 'guaranteed',
    l3CacheSchema: 'L3:0=7f0;1=1f\nL3CODE:0=f',
    memBwSchema: 'MB:0=20;1=70',
    schemata: ['SMBA:0=50'],
    enableCMT: true,
  };
  const plan = buildPlan(spec, rdtFacts(), buildOpts());
  golden(t, 'intel-rdt', plan);
  t.same(plan.parent.intelRdt, {
    mountPoint: '/sys/fs/resctrl',
    closID: 'guaranteed',
    schemata: ['L3:0=7f0;1=1f', 'L3CODE:0=f', 'MB:0=20;1=70', 'SMBA:0=50'],
    monitoring: true,
    requiredMonFeatures: ['llc_occupancy'],
  });
  spec.linux.intelRdt = { enableMonitoring: true };
  t.same(
    buildPlan(spec, rdtFacts(), buildOpts()).parent.intelRdt,
    { mountPoint: '/sys/fs/resctrl', schemata: [], monitoring: true, requiredMonFeatures: [] },
    'no closID: the runtime names the group after the container',
  );
});

t.test('reject: linux.intelRdt on a host without resctrl', async t => {
  const spec = minimalSpec();
  spec.linux.intelRdt = { l3CacheSchema: 'L3:0=f' };
  rejects(
    t,
    spec,
    'config.json: /linux/intelRdt: Intel RDT is not supported or not enabled on the host (no resctrl filesystem is mounted)',
  );
});

t.test('reject: linux.intelRdt closID and schema lines that are not what they claim', async t => {
  const spec = minimalSpec();
  spec.linux.intelRdt = { closID: '../info' };
  rejects(t, spec, 'config.json: /linux/intelRdt/closID: invalid resctrl group name "../info"', rdtFacts());
  spec.linux.intelRdt = { l3CacheSchema: 'MB:0=20' };
  rejects(t, spec, 'config.json: /linux/intelRdt/l3CacheSchema: "MB:0=20" is not a L3 schema line', rdtFacts());
  spec.linux.intelRdt = { memBwSchema: 'MB:0=20\nL3:0=f' };
  rejects(t, spec, 'config.json: /linux/intelRdt/memBwSchema: "L3:0=f" is not a MB schema line', rdtFacts());
});

// ---------------------------------------------------------------------------------------------------------
// The kernel's limits, not tsrt's (issue 18): what the kernel takes passes whole; what it refuses is refused
// here naming the field and the kernel's limit.
// ---------------------------------------------------------------------------------------------------------

const longPath = (bytes: number): string => {
  let p = '';
  while (p.length < bytes) p += `/${'d'.repeat(Math.min(200, Math.max(1, bytes - p.length - 1)))}`;
  return p.slice(0, bytes);
};

t.test('limits: arguments and environment strings up to MAX_ARG_STRLEN, counts without limit', async t => {
  const spec = minimalSpec();
  spec.process.args = ['sh', ...Array.from({ length: 99_999 }, () => 'a')];
  spec.process.env = ['PATH=/bin', `BIG=${'v'.repeat(131_071 - 4)}`, `LMOD=${'m'.repeat(4367)}`];
  spec.mounts.push(...Array.from({ length: 10_000 }, (_, i) => ({ destination: `/m/${i}`, type: 'tmpfs', source: 'tmpfs' })));
  spec.process.user.additionalGids = Array.from({ length: 65_536 }, (_, i) => i);
  const plan = buildPlan(spec, { ...rootFacts(), execStack: 8n << 20n }, buildOpts());
  t.equal(plan.process.args.length, 100_000);
  t.equal(plan.process.env[1]!.length, 131_071, 'a 131071-byte environment string (with its NUL: MAX_ARG_STRLEN)');
  t.equal(plan.container.steps.filter(s => s.dest.startsWith('/m/')).length, 10_000, '10,000 mounts');

  spec.process.env[1] += 'v';
  rejects(
    t,
    spec,
    'config.json: /process/env/1: a string of 131072 bytes is longer than the kernel takes for one argument or environment string (MAX_ARG_STRLEN: 131072 bytes with its NUL)',
  );
  spec.process.env = [];
  spec.process.args[7] = 'a'.repeat(131_072);
  rejects(
    t,
    spec,
    'config.json: /process/args/7: a string of 131072 bytes is longer than the kernel takes for one argument or environment string (MAX_ARG_STRLEN: 131072 bytes with its NUL)',
  );
});

t.test('limits: the arguments and environment together, against the stack limit the process execs under', async t => {
  const spec = minimalSpec();
  // 20 strings of 120000 bytes: 2.4 MB, more than a quarter of an 8 MiB stack, less than 6 MiB.
  spec.process.env = Array.from({ length: 20 }, (_, i) => `V${String(i).padStart(2, '0')}=${'x'.repeat(119_995)}`);
  const used = 20 * 120_000 + 'sh\0'.length + 8 * (1 + 20); // the strings with their NULs, then one pointer each
  rejects(
    t,
    spec,
    `config.json: /process: the arguments and environment take ${used} bytes with their pointers, more than execve takes under a stack limit of 8388608 bytes (a quarter of it, at most 6291456 and at least 131072 bytes: 2097152)`,
    { ...rootFacts(), execStack: 8n << 20n },
  );
  t.ok(buildPlan(spec, { ...rootFacts(), execStack: (1n << 64n) - 1n }, buildOpts()), 'an unlimited stack: up to 6 MiB');
  spec.process.rlimits = [{ type: 'RLIMIT_STACK', soft: 16 * 1024 * 1024, hard: 16 * 1024 * 1024 }];
  t.ok(
    buildPlan(spec, { ...rootFacts(), execStack: 8n << 20n }, buildOpts()),
    "the config's own RLIMIT_STACK of 16 MiB counts, not the runtime's",
  );
});

t.test('limits: paths up to PATH_MAX - 1 bytes, each named by its field', async t => {
  const ok = longPath(4095);
  const over = longPath(4096);
  const spec = minimalSpec();
  spec.process.cwd = ok;
  spec.mounts.push({ destination: ok, type: 'tmpfs', source: 'tmpfs' });
  t.ok(buildPlan(spec, rootFacts(), buildOpts()), 'a 4095-byte cwd and mount destination');
  const why = 'a path of 4096 bytes is longer than the kernel takes (PATH_MAX: 4096 bytes with its NUL)';
  const cases: [string, (s: any) => void][] = [
    [
      '/process/cwd',
      s => {
        s.process.cwd = over;
      },
    ],
    [
      '/mounts/1/destination',
      s => {
        s.mounts.push({ destination: over, type: 'tmpfs', source: 'tmpfs' });
      },
    ],
    [
      '/mounts/1/source',
      s => {
        s.mounts.push({ destination: '/data', type: 'bind', source: over, options: ['rbind'] });
      },
    ],
    [
      '/linux/namespaces/2/path',
      s => {
        s.linux.namespaces.push({ type: 'network', path: over });
      },
    ],
    [
      '/linux/maskedPaths/0',
      s => {
        s.linux.maskedPaths = [over];
      },
    ],
    [
      '/linux/readonlyPaths/0',
      s => {
        s.linux.readonlyPaths = [over];
      },
    ],
    [
      '/linux/devices/0/path',
      s => {
        s.linux.devices = [{ path: over, type: 'c', major: 1, minor: 3 }];
      },
    ],
  ];
  for (const [pointer, edit] of cases) {
    const s = minimalSpec();
    edit(s);
    rejects(t, s, `config.json: ${pointer}: ${why}`);
  }
  rejects(t, minimalSpec(), `config.json: /root/path: ${why}`, rootFacts(), buildOpts({ rootfs: over }));
  const dots = minimalSpec();
  dots.process.cwd = `${'/.'.repeat(3000)}/tmp`;
  t.equal(buildPlan(dots, rootFacts(), buildOpts()).process.cwd, '/tmp', 'what counts is the path the kernel gets (normalised)');
});

t.test('limits: groups up to NGROUPS_MAX, labels up to one page of /proc/self/attr/exec', async t => {
  const spec = minimalSpec();
  spec.process.user.additionalGids = Array.from({ length: 65_537 }, (_, i) => i);
  rejects(t, spec, 'config.json: /process/user/additionalGids: 65537 groups are more than setgroups takes (NGROUPS_MAX: 65536)');
  const labelled = minimalSpec();
  labelled.process.apparmorProfile = 'p'.repeat(4092);
  rejects(
    t,
    labelled,
    'config.json: /process/apparmorProfile: a label of 4092 bytes is longer than the kernel reads from one write to /proc/self/attr/exec (4091 bytes)',
    { ...rootFacts(), apparmorEnabled: true },
  );
});
