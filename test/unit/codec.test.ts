// encodePlan (TypeScript) against plan_decode (native/executor/decode.c), through the addon's checkPlan, which
// runs the C decoder alone: a reason string when the plan is refused, {steps, args, rootfs} when it decodes.
// Needs build/Release/tsrt.node (npm run build). No root needed, nothing is cloned.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildPlan } from '../../src/plan/build.js';
import { encodePlan } from '../../src/plan/codec.js';
import type { HostFacts } from '../../src/plan/facts.js';
import { CLONE } from '../../src/plan/linux.js';
import { FILTER_FLAG } from '../../src/plan/seccomp.js';
import {
  MountFlag,
  PlanFlag,
  StepKind,
  planStep,
  type ContainerPlan,
  type CreatePlan,
  type LaunchPlan,
  type PlanStep,
  type ProcessPlan,
} from '../../src/plan/types.js';
import { specTemplate } from '../../src/spec/template.js';
import { MAX_ARG_STRLEN, PATH_MAX } from '../../src/plan/limits.js';
import { native, type DecodedPlan } from '../../src/native.js';
import { tmpdir } from '../helpers.js';

const ADDON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/Release/tsrt.node');
if (!fs.existsSync(ADDON)) {
  t.fail(`${ADDON} is missing: build the addon first (npm run build)`);
  process.exit(1);
}

type Decoded = DecodedPlan;
const check = (buf: Buffer): string | Decoded => native().checkPlan(buf);

const MAGIC = 0x54535254;
/**
 * The plan's last fields, after the idmapped mounts: the exec target (i32 pidfd, u32 namespace flags) and the
 * cgroup tasks fds (u32 count, here 0).
 */
const EXEC_TAIL = 4 + 4 + 4;

/** A plan's fields as the wire format lays them out, one level: what a test changes in smallPlan. */
type FlatPlan = Partial<Pick<LaunchPlan, 'flags' | 'joinNsFlags'> & ContainerPlan & ProcessPlan>;
const CONTAINER_FIELDS = new Set([
  'unshareFlags',
  'join',
  'timeOffsets',
  'rootfs',
  'rootPropagation',
  'rootfsPropagation',
  'hostname',
  'domainname',
  'steps',
  'maskedPaths',
  'readonlyPaths',
  'sysctl',
  'mountLabel',
]);

/** A small, valid plan: no steps, one arg. Every field present, nothing optional set; `over` changes fields. */
function smallPlan(over: FlatPlan = {}): LaunchPlan {
  const container: ContainerPlan = {
    unshareFlags: CLONE.NEWNS,
    join: [],
    timeOffsets: { monotonic: [0n, 0], boottime: [0n, 0] },
    rootfs: '/r',
    rootPropagation: 0,
    rootfsPropagation: 0,
    steps: [],
    maskedPaths: [],
    readonlyPaths: [],
    sysctl: [],
  };
  const process: ProcessPlan = {
    consoleSize: { rows: 0, cols: 0 },
    oomScoreAdj: 0,
    rlimits: [],
    caps: { bounding: 0n, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n },
    uid: 0,
    gid: 0,
    umask: 0o022,
    additionalGids: [],
    cwd: '/',
    args: ['sh'],
    env: [],
    preserveFds: 0,
  };
  const plan: LaunchPlan = { flags: 0x2, container, process };
  for (const [field, value] of Object.entries(over)) {
    const part: object = field === 'flags' || field === 'joinNsFlags' ? plan : CONTAINER_FIELDS.has(field) ? container : process;
    Object.assign(part, { [field]: value });
  }
  return plan;
}

/** A realistic plan: the `tsrt spec` config built on a fixed fake host. */
function fullPlan(): CreatePlan {
  const spec = specTemplate({ rootless: false, uid: 0, gid: 0 });
  spec.process!.terminal = false;
  spec.process!.args = ['sh', '-c', 'echo hi'];
  spec.linux!.namespaces!.push({ type: 'time' });
  spec.linux!.timeOffsets = { monotonic: { secs: -5, nanosecs: 7 } };
  spec.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
  const facts: HostFacts = {
    euid: 0,
    egid: 0,
    capLastCap: 40,
    defaultNofile: { soft: 1024n, hard: 4096n },
    cgroup: {
      layout: 'hybrid',
      v1: [
        { mountPoint: '/sys/fs/cgroup/cpu,cpuacct', options: 'cpu,cpuacct', ownPath: '/' },
        { mountPoint: '/sys/fs/cgroup/memory', options: 'memory', ownPath: '/' },
      ],
      unifiedMountPoint: '/sys/fs/cgroup/unified',
      unifiedOwnPath: '/',
    },
    capBounding: (1n << 41n) - 1n,
    isDirectory: () => true,
    exists: () => true,
    isRuntimeNamespace: () => false,
    setgroupsDenied: () => false,
    apparmorEnabled: false,
    selinuxEnabled: false,
  };
  return buildPlan(spec, facts, {
    bundle: '/bundle',
    rootfs: '/bundle/rootfs',
    console: false,
    startFifo: true,
    preserveFds: 0,
    noPivot: false,
    noNewKeyring: false,
  });
}

/** Offset of a marker string's u32 length field in an encoded plan. */
function lengthFieldOf(buf: Buffer, marker: string): number {
  const at = buf.indexOf(Buffer.from(marker, 'utf8'));
  if (at < 4) throw new Error(`marker ${marker} not found`);
  if (buf.readUInt32LE(at - 4) !== Buffer.byteLength(marker)) throw new Error(`marker ${marker} is not a whole string`);
  return at - 4;
}

/** Rewrites the header's total length to the buffer's real length. */
function fixHeader(buf: Buffer): Buffer {
  if (buf.length >= 12) buf.writeUInt32LE(buf.length, 8);
  return buf;
}

function isDecoded(r: string | Decoded): r is Decoded {
  return typeof r === 'object' && r !== null;
}

// ---------------------------------------------------------------------------------------------------------

t.test('a valid plan round-trips through the C decoder', async t => {
  const plan = fullPlan();
  const r = check(encodePlan(plan, { fifo: 3 }));
  t.same(r, {
    steps: plan.container.steps.length,
    args: 3,
    env: plan.process.env.length,
    rootfs: '/bundle/rootfs',
    cwd: '/',
    join: [],
    argBytes: 'sh'.length + '-c'.length + 'echo hi'.length,
  });
  t.ok(plan.container.steps.length > 20, 'with a realistic number of steps');

  const small = check(encodePlan(smallPlan()));
  t.same(small, { steps: 0, args: 1, env: 0, rootfs: '/r', cwd: '/', join: [], argBytes: 2 });
});

t.test('a plan holds no fds: they are bound when it is encoded, into their fields and nowhere else', async t => {
  const plan = smallPlan({ flags: 0x2 | 0x400 | 0x10 });
  const one = encodePlan(plan, { console: 7, fifo: 8 });
  const other = encodePlan(plan, { console: 0x11121314, fifo: 0x21222324 });
  t.match(check(one), { steps: 0, args: 1, rootfs: '/r' });
  t.equal(one.length, other.length);
  const differ = [...one.keys()].filter(i => one[i] !== other[i]);
  t.same(
    differ.map(i => other[i]),
    [0x14, 0x13, 0x12, 0x11, 0x24, 0x23, 0x22, 0x21],
    'only the two little-endian i32 fd fields differ',
  );
});

t.test('the header is what the decoder expects', async t => {
  const buf = encodePlan(smallPlan());
  t.equal(buf.readUInt32LE(0), MAGIC, 'magic "TSRT"');
  t.equal(buf.readUInt32LE(4), 1, 'version 1');
  t.equal(buf.readUInt32LE(8), buf.length, 'total length');
});

t.test('optional fields and a seccomp program decode', async t => {
  const plan = smallPlan({
    hostname: 'h',
    domainname: 'd',
    join: [{ type: CLONE.NEWNET, path: '/proc/1/ns/net' }],
    maskedPaths: ['/proc/kcore'],
    readonlyPaths: ['/proc/sys'],
    sysctl: [['net/ipv4/ip_forward', '1']],
    rlimits: [{ resource: 7, soft: (1n << 64n) - 1n, hard: (1n << 64n) - 1n }],
    additionalGids: [1, 2, 3],
    env: ['A=1', ''],
    args: ['sh', ''],
    flags: 0x2 | 0x400,
    steps: [planStep('symlink', '/dev/fd', { data: '/proc/self/fd' })],
  });
  t.match(check(encodePlan(plan, { fifo: 4 }, new Uint8Array(16))), { steps: 1, args: 2, rootfs: '/r' }, 'empty strings are valid strings');
});

t.test('process attributes (scheduler, ioPriority, affinity, personality, memory policy, labels) decode', async t => {
  const plan = smallPlan({
    scheduler: { policy: 6, flags: 1, nice: -5, priority: 0, runtime: 1n, deadline: 2n, period: 3n },
    ioPriority: (1 << 13) | 4,
    cpuAffinity: { initial: new Uint8Array(8).fill(1), final: new Uint8Array(16) },
    personality: 8,
    memoryPolicy: { mode: 2, nodes: new Uint8Array(8).fill(1) },
    apparmorProfile: 'p',
    selinuxLabel: 'a:b:c:s0:c1,c2',
    mountLabel: 'x',
    steps: [planStep('fs', '/tmp', { flags: MountFlag.mountLabel, fstype: 'tmpfs' })],
  });
  t.match(check(encodePlan(plan)), { steps: 1, args: 1, rootfs: '/r' });
  t.match(
    check(encodePlan(smallPlan({ cpuAffinity: { final: new Uint8Array(0) } }))),
    { steps: 0, args: 1, rootfs: '/r' },
    'an empty bitmap means unset',
  );
});

t.test('bitmaps that are not whole longs, or too large, are refused', async t => {
  t.equal(check(encodePlan(smallPlan({ cpuAffinity: { initial: new Uint8Array(3) } }))), 'malformed bitmap in plan');
  t.equal(check(encodePlan(smallPlan({ cpuAffinity: { final: new Uint8Array(1032) } }))), 'malformed bitmap in plan');
  t.equal(check(encodePlan(smallPlan({ memoryPolicy: { mode: 2, nodes: new Uint8Array(136) } }))), 'malformed bitmap in plan');
});

t.test('idmapped binds decode; a missing fd, a non-bind step or a repeated step is refused', async t => {
  const bind = (idmap?: PlanStep['idmap']) => planStep('bind', '/mnt', { source: '/srv', idmap });
  const maps = {
    uidMappings: [{ containerID: 0, hostID: 1, size: 1 }],
    gidMappings: [{ containerID: 0, hostID: 1, size: 1 }],
    recursive: true,
  };
  t.match(check(encodePlan(smallPlan({ steps: [bind(maps), bind()] }), { userns: [9] })), { steps: 2, args: 1, rootfs: '/r' });
  t.equal(check(encodePlan(smallPlan({ steps: [bind(maps)] }))), 'idmapped mount without a user namespace fd');
  // A hostile buffer: the idmap entry points at a symlink step, then at the same step twice.
  const symlink = planStep('symlink', '/l', { data: '/x' });
  const buf = encodePlan(smallPlan({ steps: [symlink, bind(maps)] }), { userns: [9] });
  buf.writeUInt32LE(0, buf.length - EXEC_TAIL - 12);
  t.equal(check(buf), 'idmapped mount that is not a bind step');
  const twice = encodePlan(smallPlan({ steps: [bind(maps), bind(maps)] }), { userns: [9, 9] });
  twice.writeUInt32LE(0, twice.length - EXEC_TAIL - 12);
  t.equal(check(twice), 'idmapped mount given twice');
});

t.test('exec plans: the init pidfd is required, container set-up work and unknown namespace flags are refused', async t => {
  const joinNsFlags = CLONE.NEWNS | CLONE.NEWPID;
  const init = { joinPidfd: 5 };
  const execPlan = (over: FlatPlan = {}) => smallPlan({ flags: 0x20000, unshareFlags: 0, rootfs: '/', joinNsFlags, ...over });
  const { process } = smallPlan();
  t.match(
    check(encodePlan({ flags: 0x20000, process, joinNsFlags }, init)),
    { steps: 0, args: 1, rootfs: '/' },
    'a plain exec plan (no container part) decodes, checked against "/"',
  );
  t.same(encodePlan({ flags: 0x20000, process, joinNsFlags }, init), encodePlan(execPlan(), init), 'as an empty container part would');
  t.equal(check(encodePlan(execPlan())), "exec plan without the container init's pidfd");
  t.equal(check(encodePlan(execPlan({ joinNsFlags: CLONE.NEWNS | 0x1 }), init)), 'unknown namespace flag in plan');
  t.equal(check(encodePlan(execPlan({ unshareFlags: CLONE.NEWNET }), init)), 'exec plan with container set-up work', 'unshare');
  t.equal(check(encodePlan(execPlan({ flags: 0x20000 | 0x2 }), init)), 'exec plan with container set-up work', 'new mount ns');
  t.equal(check(encodePlan(execPlan({ sysctl: [['net/ipv4/ip_forward', '1']] }), init)), 'exec plan with container set-up work', 'sysctl');
  t.equal(check(encodePlan(execPlan({ maskedPaths: ['/proc/kcore'] }), init)), 'exec plan with container set-up work', 'masks');
  t.equal(check(encodePlan(smallPlan({ joinNsFlags: CLONE.NEWNS }), init)), 'namespace pidfd in a plan that is not an exec');
});

t.test('cgroup tasks fds: decoded for a new container; a missing fd, too many, or any in an exec plan are refused', async t => {
  t.match(check(encodePlan(smallPlan(), { cgroupTasks: [7, 8] })), { rootfs: '/r' }, 'two tasks fds');
  t.equal(check(encodePlan(smallPlan(), { cgroupTasks: [7, -1] })), 'cgroup tasks entry without an fd');
  t.equal(check(encodePlan(smallPlan(), { cgroupTasks: Array.from({ length: 33 }, (_, i) => 10 + i) })), 'too many cgroup tasks fds');
  const exec = smallPlan({ flags: 0x20000, unshareFlags: 0, rootfs: '/', joinNsFlags: CLONE.NEWPID });
  t.equal(check(encodePlan(exec, { joinPidfd: 5, cgroupTasks: [7] })), 'exec plan with container set-up work', 'exec joins by pid');
});

t.test('a mount-label step without a mount label is refused', async t => {
  const plan = smallPlan({
    steps: [planStep('fs', '/tmp', { flags: MountFlag.mountLabel, fstype: 'tmpfs' })],
  });
  t.equal(check(encodePlan(plan)), 'mount label flag without a mount label');
});

t.test('strings: paths up to PATH_MAX and exec strings up to MAX_ARG_STRLEN decode; one byte more is refused', async t => {
  // The kernel's limits, with the NUL: a path of PATH_MAX - 1 bytes, an argument or environment string of
  // MAX_ARG_STRLEN - 1 bytes.
  const path = `/${'a'.repeat(PATH_MAX - 2)}`;
  t.match(check(encodePlan(smallPlan({ rootfs: path, cwd: path }))), { rootfs: path, cwd: path }, `a ${PATH_MAX - 1}-byte path`);
  t.equal(check(encodePlan(smallPlan({ rootfs: `${path}a` }))), 'path longer than PATH_MAX in plan', 'rootfs');
  t.equal(check(encodePlan(smallPlan({ cwd: `${path}a` }))), 'path longer than PATH_MAX in plan', 'cwd');
  t.equal(check(encodePlan(smallPlan({ maskedPaths: [`${path}a`] }))), 'path longer than PATH_MAX in plan', 'masked path');
  const step = planStep('bind', '/d', { source: '/s' });
  t.equal(
    check(encodePlan(smallPlan({ steps: [{ ...step, dest: `${path}a` }] }))),
    'path longer than PATH_MAX in plan',
    'mount destination',
  );
  t.equal(check(encodePlan(smallPlan({ steps: [{ ...step, source: `${path}a` }] }))), 'path longer than PATH_MAX in plan', 'bind source');

  const arg = 'x'.repeat(MAX_ARG_STRLEN - 1);
  t.match(
    check(encodePlan(smallPlan({ args: ['sh', arg], env: [`V=${arg.slice(2)}`] }))),
    { args: 2, env: 1, argBytes: 2 + arg.length },
    `a ${MAX_ARG_STRLEN - 1}-byte argument and environment string`,
  );
  t.equal(check(encodePlan(smallPlan({ args: ['sh', `${arg}x`] }))), 'argument longer than MAX_ARG_STRLEN in plan');
  t.equal(check(encodePlan(smallPlan({ env: [`V=${arg}`] }))), 'environment string longer than MAX_ARG_STRLEN in plan');

  // Strings the kernel takes whole at any length (fsconfig data, sysctl values, labels) are bounded by the plan.
  const data = 'd'.repeat(300_000);
  t.match(
    check(encodePlan(smallPlan({ sysctl: [['kernel/shmmax', data]], hostname: data }))),
    { steps: 0 },
    'a 300 kB hostname and sysctl value',
  );
});

t.test('no tsrt limit on counts: 10,000 steps, 100,000 arguments, 65,536 groups, a 20 MiB plan', async t => {
  const step = (i: number) => planStep('bind', `/m/${i}`, { source: '/srv' });
  const steps = Array.from({ length: 10_000 }, (_, i) => step(i));
  const args = ['sh', ...Array.from({ length: 99_999 }, () => 'a')];
  const additionalGids = Array.from({ length: 65_536 }, (_, i) => i);
  t.match(check(encodePlan(smallPlan({ steps, args, additionalGids }))), { steps: 10_000, args: 100_000, argBytes: 2 + 99_999 });
  // Over the old 16 MiB cap: 180 environment strings of 120 kB.
  const env = Array.from({ length: 180 }, (_, i) => `V${i}=${'e'.repeat(120_000)}`);
  const big = encodePlan(smallPlan({ env }));
  t.ok(big.length > 20 << 20, `${big.length} bytes`);
  t.match(check(big), { env: 180 });
});

t.test('CVE-2021-43784: a 70 kB namespace path is refused cleanly, never parsed as something else', async t => {
  // runc's netlink message used a 16-bit length: 70000 wrapped to 4464 and the rest of the path was read as
  // further attributes. The plan's lengths are 32-bit and a path is held to PATH_MAX, so this must be a plain
  // refusal.
  for (const size of [70_000, 65_536 + 5, 65_536, 131_072 + 300]) {
    const evil = `/${'A'.repeat(size - 1)}`;
    const plan = smallPlan({ join: [{ type: CLONE.NEWNET, path: evil }] });
    const buf = encodePlan(plan);
    t.equal(buf.readUInt32LE(buf.indexOf('/AAAA') - 4), size, `the length field holds all ${size} bytes`);
    t.equal(check(buf), 'path longer than PATH_MAX in plan', `${size}-byte path refused`);
  }
  // The same bytes smuggled as a would-be second attribute: still one string, still refused.
  const inner = encodePlan(smallPlan({ rootfs: '/evil' }));
  const evil = `/${'B'.repeat(65_535)}${inner.toString('latin1')}`;
  t.equal(check(encodePlan(smallPlan({ join: [{ type: CLONE.NEWNET, path: evil }] }))), 'path longer than PATH_MAX in plan');
  // Where a long string is legal (an argument), a length past 16 bits is carried whole: never wrapped to
  // 70000 - 65536 = 4464 bytes with the rest read as the next fields.
  for (const size of [70_000, 65_536, 65_536 + 4464]) {
    const r = check(encodePlan(smallPlan({ args: ['sh', 'B'.repeat(size)], cwd: '/CWDMARK' })));
    t.match(r, { args: 2, argBytes: 2 + size, cwd: '/CWDMARK', env: 0 }, `a ${size}-byte argument decodes whole`);
  }
  const withInner = check(encodePlan(smallPlan({ args: ['sh', `${'B'.repeat(65_536)}${inner.toString('latin1')}`] })));
  t.equal(withInner, 'malformed string in plan', 'a plan smuggled into an argument (its NULs) is refused, not read as fields');
});

t.test('namespaces to join: each type once, and only namespace types', async t => {
  const join = (type: number) => ({ type, path: '/proc/1/ns/net' });
  t.match(check(encodePlan(smallPlan({ join: [join(CLONE.NEWNET), join(CLONE.NEWIPC)] }))), { join: ['/proc/1/ns/net', '/proc/1/ns/net'] });
  t.equal(check(encodePlan(smallPlan({ join: [join(CLONE.NEWNET), join(CLONE.NEWNET)] }))), 'namespace joined twice in plan');
  t.equal(check(encodePlan(smallPlan({ join: [join(CLONE.NEWNET | CLONE.NEWIPC)] }))), 'unknown namespace type in plan');
  t.equal(check(encodePlan(smallPlan({ join: [join(0x1)] }))), 'unknown namespace type in plan');
  t.equal(check(encodePlan(smallPlan({ join: [join(0)] }))), 'unknown namespace type in plan');
});

t.test('every truncation of a valid plan is refused', async t => {
  const buf = encodePlan(smallPlan({ hostname: 'host', env: ['A=1'], rlimits: [{ resource: 7, soft: 1n, hard: 2n }] }));
  t.ok(isDecoded(check(buf)), 'the whole plan decodes');
  let raw = 0;
  let walked = 0;
  for (let len = 0; len < buf.length; len++) {
    // As cut: the header's length no longer matches (or there is no header at all).
    const cut = Buffer.from(buf.subarray(0, len));
    const r1 = check(cut);
    if (typeof r1 === 'string') raw++;
    else t.fail(`truncated to ${len} bytes, the plan decoded: ${JSON.stringify(r1)}`);
    // With the header's length patched, so the decoder walks into the missing bytes.
    if (len >= 12) {
      const r2 = check(fixHeader(Buffer.from(buf.subarray(0, len))));
      // A cut inside a list is seen either at the next read or already at the list's count.
      if (r2 === 'truncated plan' || r2 === 'list longer than the plan') walked++;
      else t.fail(`truncated to ${len} bytes with a patched header: ${JSON.stringify(r2)}`);
    }
  }
  t.equal(raw, buf.length, `all ${buf.length} cut buffers refused`);
  t.equal(walked, buf.length - 12, 'all patched cuts refused as truncated');
  t.equal(check(Buffer.alloc(0)), 'plan size out of range');
  t.equal(check(Buffer.from(buf.subarray(0, 11))), 'plan size out of range');
});

t.test('huge length fields are refused', async t => {
  const base = encodePlan(smallPlan({ rootfs: '/ROOTFSMARK', hostname: 'HOSTMARK', args: ['ARGMARK'] }));
  t.ok(isDecoded(check(base)));
  const rootfsLen = lengthFieldOf(base, '/ROOTFSMARK');
  for (const n of [0xfffffffe, 0x7fffffff, 0x80000000, PATH_MAX, 0x10000 + 11]) {
    const b = Buffer.from(base);
    b.writeUInt32LE(n, rootfsLen);
    t.equal(check(b), 'path longer than PATH_MAX in plan', `path length 0x${n.toString(16)}`);
  }
  // A length within the limit but past the end of the buffer.
  const b = Buffer.from(base);
  b.writeUInt32LE(PATH_MAX - 1, rootfsLen);
  t.equal(check(b), 'truncated plan', 'path length past the end');
  // A string with no limit but the plan's: lengths that would wrap 16 or 32 bits, or sit just past the end.
  const hostLen = lengthFieldOf(base, 'HOSTMARK');
  for (const n of [0xfffffffe, 0x80000000, 0x10000 + 8, base.length - hostLen - 4]) {
    const h = Buffer.from(base);
    h.writeUInt32LE(n, hostLen);
    t.equal(check(h), 'truncated plan', `string length 0x${n.toString(16)}`);
  }
  const argLen = lengthFieldOf(base, 'ARGMARK');
  for (const n of [0xfffffffe, 0x10000 + 'ARGMARK'.length, MAX_ARG_STRLEN]) {
    const h = Buffer.from(base);
    h.writeUInt32LE(n, argLen);
    t.match(check(h), /^(truncated plan|argument longer than MAX_ARG_STRLEN in plan)$/, `argument length 0x${n.toString(16)}`);
  }

  // 0xffffffff is "absent": fine for the hostname, not for the rootfs.
  const noRootfs = Buffer.from(base);
  noRootfs.writeUInt32LE(0xffffffff, rootfsLen);
  t.equal(check(noRootfs), 'missing required string in plan');

  // List counts: the join list (right after the header, flags and unshare flags), steps and args. A count is
  // refused unless that many elements could still follow, before anything is allocated for them.
  const joinCount = 24;
  t.equal(base.readUInt32LE(joinCount), 0);
  const stepsCount = hostLen + 4 + 'HOSTMARK'.length + 1 + 4; // after the hostname and the absent domainname
  t.equal(base.readUInt32LE(stepsCount), 0);
  const argsCount = argLen - 4;
  t.equal(base.readUInt32LE(argsCount), 1);
  for (const [name, at, min] of [
    ['join', joinCount, 8],
    ['steps', stepsCount, 68],
    ['args', argsCount, 4],
  ] as const) {
    const left = base.length - at - 4;
    for (const n of [0xffffffff, 0xfffffffe, 0x7fffffff, 0x40000000, 0x10000, Math.floor(left / min) + 1]) {
      const b2 = Buffer.from(base);
      b2.writeUInt32LE(n, at);
      t.equal(check(b2), 'list longer than the plan', `${name} count 0x${n.toString(16)}`);
    }
    // A count the bytes could hold, with the wrong bytes behind it: refused, whatever the reason.
    const b3 = Buffer.from(base);
    b3.writeUInt32LE(Math.floor(left / min), at);
    t.type(
      check(b3),
      'string',
      `${name} count ${Math.floor(left / min)} (as many as the bytes allow) with the wrong bytes behind it: refused`,
    );
  }
});

t.test('a string without its NUL, or with a NUL inside, is refused', async t => {
  const base = encodePlan(smallPlan({ rootfs: '/ROOTFSMARK', args: ['ARGMARK'] }));
  const rootfsAt = lengthFieldOf(base, '/ROOTFSMARK') + 4;
  const noNul = Buffer.from(base);
  t.equal(noNul[rootfsAt + '/ROOTFSMARK'.length], 0, 'the encoder writes the NUL');
  noNul[rootfsAt + '/ROOTFSMARK'.length] = 0x41;
  t.equal(check(noNul), 'malformed string in plan', 'missing NUL');

  const inner = Buffer.from(base);
  inner[rootfsAt + 3] = 0;
  t.equal(check(inner), 'malformed string in plan', 'embedded NUL (would have cut the path short)');

  const argAt = lengthFieldOf(base, 'ARGMARK') + 4;
  const innerArg = Buffer.from(base);
  innerArg[argAt + 3] = 0;
  t.equal(check(innerArg), 'malformed string in plan', 'embedded NUL in an argument');

  // The encoder itself must not produce one: a JS string with a NUL in it is refused by the decoder too.
  t.equal(check(encodePlan(smallPlan({ args: ['a\u0000b'] }))), 'malformed string in plan');
});

t.test('relative paths are refused', async t => {
  t.equal(check(encodePlan(smallPlan({ rootfs: 'rootfs' }))), 'relative path in plan', 'rootfs');
  t.equal(check(encodePlan(smallPlan({ rootfs: '' }))), 'relative path in plan', 'empty rootfs');
  t.equal(check(encodePlan(smallPlan({ cwd: 'tmp' }))), 'relative path in plan', 'cwd');
  t.equal(check(encodePlan(smallPlan({ maskedPaths: ['proc/kcore'] }))), 'relative path in plan', 'masked path');
  const step = planStep('mkdir', 'tmp');
  t.equal(check(encodePlan(smallPlan({ steps: [step] }))), 'relative path in plan', 'step destination');
});

t.test('semantic checks on steps and the process', async t => {
  const base = planStep('fs', '/x');
  t.equal(check(encodePlan(smallPlan({ steps: [{ ...base, kind: 'bind' }] }))), 'bind step without source');
  t.equal(check(encodePlan(smallPlan({ steps: [{ ...base, kind: 'fs' }] }))), 'mount step without filesystem type');
  t.equal(
    check(encodePlan(smallPlan({ steps: [{ ...base, kind: 'fs', fstype: 'sysfs', flags: 0x8 }] }))),
    'fallback flag without fallback source',
  );
  t.equal(check(encodePlan(smallPlan({ steps: [{ ...base, kind: 'symlink' }] }))), 'symlink step without target');
  t.equal(check(encodePlan(smallPlan({ steps: [{ ...base, kind: 'bogus' as any }] }))), 'unknown step kind');
  t.equal(check(encodePlan(smallPlan({ args: [] }))), 'plan has no process arguments');
  t.equal(check(encodePlan(smallPlan({ sysctl: [['../../etc/passwd', 'x']] }))), 'sysctl key escapes /proc/sys');
  t.equal(check(encodePlan(smallPlan({ sysctl: [['/etc/passwd', 'x']] }))), 'sysctl key escapes /proc/sys');
  t.match(check(encodePlan(smallPlan({ preserveFds: 65537 }))), { args: 1 }, 'preserve_fds beyond 65536 (fds go to RLIMIT_NOFILE)');
  t.equal(check(encodePlan(smallPlan({ preserveFds: 0x7ffffffd }))), 'preserve_fds out of range', 'an fd past INT_MAX');
  t.equal(check(encodePlan(smallPlan({ flags: 0x2 | 0x400 }))), 'fifo start without fifo fd');
});

t.test('trailing bytes are refused', async t => {
  const buf = encodePlan(smallPlan());
  t.equal(check(fixHeader(Buffer.concat([buf, Buffer.from([0])]))), 'trailing bytes after plan');
  t.equal(check(fixHeader(Buffer.concat([buf, Buffer.alloc(64, 0x41)]))), 'trailing bytes after plan');
  t.equal(check(Buffer.concat([buf, Buffer.from([0])])), 'plan length does not match its header', 'header not patched');
});

t.test('wrong magic, version or header length is refused', async t => {
  const buf = encodePlan(smallPlan());
  const magic = Buffer.from(buf);
  magic.writeUInt32LE(0x54535255, 0);
  t.equal(check(magic), 'bad plan magic');
  const bigEndian = Buffer.from(buf);
  bigEndian.writeUInt32BE(MAGIC, 0);
  t.equal(check(bigEndian), 'bad plan magic', 'byte-swapped magic');
  for (const v of [0, 2, 0xffffffff]) {
    const version = Buffer.from(buf);
    version.writeUInt32LE(v, 4);
    t.equal(check(version), 'unsupported plan version', `version ${v}`);
  }
  for (const n of [0, buf.length - 1, buf.length + 1, 0xffffffff]) {
    const len = Buffer.from(buf);
    len.writeUInt32LE(n, 8);
    t.equal(check(len), 'plan length does not match its header', `header length ${n}`);
  }
  const tooBig = Buffer.alloc((16 << 20) + 1);
  buf.copy(tooBig);
  t.equal(check(tooBig), 'plan length does not match its header', 'a buffer longer than its header says');
});

t.test('a seccomp program whose length is not a multiple of 8 is refused', async t => {
  for (const n of [1, 7, 9, 15]) {
    t.equal(check(encodePlan(smallPlan(), {}, new Uint8Array(n))), 'malformed seccomp program', `${n} bytes`);
  }
  t.match(check(encodePlan(smallPlan(), {}, new Uint8Array(8))), { steps: 0, args: 1, rootfs: '/r' }, 'one instruction');
  t.match(check(encodePlan(smallPlan(), {}, new Uint8Array(8 * 4096))), { args: 1 }, 'BPF_MAXINSNS (4096) instructions');
  t.equal(check(encodePlan(smallPlan(), {}, new Uint8Array(8 * 4097))), 'seccomp program longer than BPF_MAXINSNS in plan', 'one more');
  t.equal(
    check(encodePlan(smallPlan(), {}, new Uint8Array(8 * 65536))),
    'seccomp program longer than BPF_MAXINSNS in plan',
    '65536: would wrap sock_fprog.len',
  );
  // A seccomp length claiming more bytes than remain. In smallPlan the program is followed by the u32 filter
  // flags and the unset process attributes: scheduler presence, ioPriority and personality presence+value,
  // two empty affinity bitmaps, memory policy presence+mode+empty bitmap, three absent label strings, no
  // idmapped mounts, no exec target.
  const buf = encodePlan(smallPlan(), {}, new Uint8Array(8));
  const afterSeccomp = 4 + 4 + 8 + 8 + 8 + 12 + 12 + 4 + EXEC_TAIL;
  buf.writeUInt32LE(8 * 1000, buf.length - 8 - afterSeccomp - 4);
  t.equal(check(buf), 'malformed seccomp program', 'length past the end');
});

/** A plan with a seccomp filter loaded with these seccomp(2) flags (the filter itself is not looked at here). */
function filteredPlan(flags: number): LaunchPlan {
  return smallPlan({ seccomp: { filter: { defaultAction: 0x7fff0000, architectures: [], rules: [] }, flags } });
}

t.test('seccomp filter flags: the known ones decode, anything else is refused', async t => {
  const program = new Uint8Array(8);
  const ok = { steps: 0, args: 1, rootfs: '/r' };
  t.match(check(encodePlan(filteredPlan(FILTER_FLAG.LOG | FILTER_FLAG.SPEC_ALLOW), {}, program)), ok, 'LOG | SPEC_ALLOW');
  t.match(
    check(encodePlan(filteredPlan(FILTER_FLAG.NEW_LISTENER | FILTER_FLAG.WAIT_KILLABLE_RECV), {}, program)),
    ok,
    'NEW_LISTENER | WAIT_KILLABLE_RECV',
  );
  t.equal(check(encodePlan(filteredPlan(FILTER_FLAG.TSYNC), {}, program)), 'unknown seccomp filter flag', 'TSYNC is never sent');
  t.equal(check(encodePlan(filteredPlan(0x10), {}, program)), 'unknown seccomp filter flag', 'TSYNC_ESRCH');
  t.equal(check(encodePlan(filteredPlan(FILTER_FLAG.WAIT_KILLABLE_RECV), {}, program)), 'seccomp wait-killable flag without a listener');
  const noProgram = encodePlan(filteredPlan(FILTER_FLAG.LOG), {}, program);
  // Cut the program out: length 0 and no bytes, the flags (and the process attributes after them) kept.
  const tail = 4 + 4 + 8 + 8 + 8 + 12 + 12 + 4 + EXEC_TAIL;
  const end = noProgram.length - tail;
  const cut = Buffer.concat([noProgram.subarray(0, end - 12), Buffer.from([0, 0, 0, 0]), noProgram.subarray(end)]);
  cut.writeUInt32LE(cut.length, 8);
  t.equal(check(cut), 'seccomp flags without a seccomp program');
});

t.test('a plan with a seccomp filter is never encoded without its program', async t => {
  t.throws(() => encodePlan(filteredPlan(0)), /seccomp filter but no compiled program/);
});

/** mulberry32: a tiny seeded PRNG, so the mutations are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('2000 random single-byte mutations never crash the decoder', async t => {
  const buf = encodePlan(fullPlan(), { fifo: 3 });
  const rand = prng(0x7352_7421);
  let refused = 0;
  let decoded = 0;
  const bad: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(buf);
    const at = Math.floor(rand() * b.length);
    const old = b[at]!;
    let v = Math.floor(rand() * 256);
    if (v === old) v = (v + 1) & 0xff;
    b[at] = v;
    const r = check(b);
    if (typeof r === 'string') {
      refused++;
      if (r.length === 0) bad.push(`#${i} @${at}: empty reason`);
    } else if (isDecoded(r) && typeof r.steps === 'number' && typeof r.args === 'number' && typeof r.rootfs === 'string') {
      decoded++;
      if (!r.rootfs.startsWith('/')) bad.push(`#${i} @${at}: decoded a relative rootfs ${r.rootfs}`);
      if (r.args < 1) bad.push(`#${i} @${at}: decoded without args`);
    } else {
      bad.push(`#${i} @${at}: unexpected result ${JSON.stringify(r)}`);
    }
  }
  t.same(bad, [], 'every result is a reason or a well-formed decoded plan');
  t.equal(refused + decoded, 2000);
  t.ok(refused > 0 && decoded > 0, `both outcomes occur (${refused} refused, ${decoded} decoded)`);
});

/**
 * The field order: every field of a plan whose fields all differ, as test/unit/fixtures/plan-dump.c prints the
 * decoded struct tsrt_plan. Truncations and trailing bytes (above) catch fields of different sizes out of
 * order; this catches two of the same size (uid and gid, two flag words) read in each other's place.
 */
t.test("the decoder reads every field where the codec wrote it: each of plan.h's fields holds the plan's value", async t => {
  const dir = tmpdir('tsrt-plan-dump-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const dump = path.join(dir, 'plan-dump');
  const cc = spawnSync(
    'cc',
    [
      '-Wall',
      '-Werror',
      '-D_GNU_SOURCE',
      '-o',
      dump,
      path.join(REPO, 'test/unit/fixtures/plan-dump.c'),
      path.join(REPO, 'native/executor/decode.c'),
    ],
    { encoding: 'utf8' },
  );
  t.equal(cc.status, 0, `the dump program compiles: ${cc.stderr}`);
  const decode = (buf: Buffer): Map<string, string> => {
    const out = spawnSync(dump, { input: buf, encoding: 'utf8' });
    t.equal(out.status, 0, out.stderr);
    return new Map(
      out.stdout
        .trimEnd()
        .split('\n')
        .map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  };
  const hex = (b?: Uint8Array): string => Buffer.from(b ?? []).toString('hex');
  const step = (over: Partial<PlanStep>): PlanStep => ({ ...planStep('bind', '/'), ...over });
  const plan = smallPlan({
    flags: PlanFlag.newMountns | PlanFlag.startFifo | PlanFlag.terminal,
    unshareFlags: CLONE.NEWNS | CLONE.NEWUTS,
    join: [{ type: CLONE.NEWNET, path: '/proc/7/ns/net' }],
    timeOffsets: { monotonic: [-11n, 12], boottime: [13n, 14] },
    rootPropagation: 15,
    rootfsPropagation: 16,
    hostname: 'h',
    domainname: 'd',
    steps: [
      step({
        flags: MountFlag.recursive | MountFlag.procOrSys,
        source: '/src',
        dest: '/dst',
        data: 'dat',
        fallback: '/fb',
        attrSet: 18,
        attrClr: 19,
        propagation: 20,
        mode: 21,
        rdev: 22n,
        uid: 23,
        gid: 24,
        idmap: { uidMappings: [], gidMappings: [], recursive: true },
      }),
      step({
        kind: 'fs',
        flags: MountFlag.mountLabel,
        source: 'tmpfs',
        dest: '/t',
        fstype: 'tmpfs',
        data: 'size=1',
        attrSet: 25,
        attrClr: 26,
        propagation: 27,
        mode: 28,
        rdev: 29n,
        uid: 30,
        gid: 31,
      }),
    ],
    maskedPaths: ['/m'],
    readonlyPaths: ['/ro'],
    sysctl: [['k/x', 'v']],
    consoleSize: { rows: 35, cols: 36 },
    oomScoreAdj: -37,
    rlimits: [{ resource: 7, soft: 38n, hard: 39n }],
    caps: { bounding: 40n, effective: 41n, permitted: 42n, inheritable: 43n, ambient: 44n },
    uid: 45,
    gid: 46,
    umask: 47,
    additionalGids: [48, 49],
    cwd: '/c',
    args: ['a0', 'a1'],
    env: ['E=1'],
    preserveFds: 50,
    seccomp: { filter: { defaultAction: 0x7fff0000, architectures: [], rules: [] }, flags: FILTER_FLAG.LOG },
    scheduler: { policy: 51, flags: 52, nice: -53, priority: 54, runtime: 55n, deadline: 56n, period: 57n },
    ioPriority: 58,
    cpuAffinity: { initial: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), final: Uint8Array.from([9, 10, 11, 12, 13, 14, 15, 16]) },
    personality: 59,
    memoryPolicy: { mode: 60, nodes: Uint8Array.from([17, 18, 19, 20, 21, 22, 23, 24]) },
    apparmorProfile: 'aa',
    selinuxLabel: 'se',
    mountLabel: 'ml',
  });
  const fds = { console: 32, fifo: 33, userns: [34], cgroupTasks: [35, 36] };
  const program = Uint8Array.from({ length: 16 }, (_, i) => 0x60 + i);
  const c = plan.container!;
  const pr = plan.process;
  const expected: Record<string, string | number | bigint> = {
    flags: plan.flags,
    unshare_flags: c.unshareFlags,
    'join[0].type': c.join[0]!.type,
    'join[0].path': c.join[0]!.path,
    time_monotonic_sec: c.timeOffsets.monotonic[0],
    time_monotonic_nsec: c.timeOffsets.monotonic[1],
    time_boottime_sec: c.timeOffsets.boottime[0],
    time_boottime_nsec: c.timeOffsets.boottime[1],
    rootfs: c.rootfs,
    root_propagation: c.rootPropagation,
    rootfs_propagation: c.rootfsPropagation,
    hostname: c.hostname!,
    domainname: c.domainname!,
    'masked[0]': c.maskedPaths[0]!,
    'readonly[0]': c.readonlyPaths[0]!,
    'sysctl[0].key': c.sysctl[0]![0],
    'sysctl[0].value': c.sysctl[0]![1],
    console_socket: fds.console,
    console_rows: pr.consoleSize.rows,
    console_cols: pr.consoleSize.cols,
    oom_score_adj: pr.oomScoreAdj,
    'rlimits[0].resource': pr.rlimits[0]!.resource,
    'rlimits[0].soft': pr.rlimits[0]!.soft,
    'rlimits[0].hard': pr.rlimits[0]!.hard,
    cap_bounding: pr.caps.bounding,
    cap_effective: pr.caps.effective,
    cap_permitted: pr.caps.permitted,
    cap_inheritable: pr.caps.inheritable,
    cap_ambient: pr.caps.ambient,
    uid: pr.uid,
    gid: pr.gid,
    umask: pr.umask,
    'groups[0]': pr.additionalGids[0]!,
    'groups[1]': pr.additionalGids[1]!,
    cwd: pr.cwd,
    'args[0]': pr.args[0]!,
    'args[1]': pr.args[1]!,
    'env[0]': pr.env[0]!,
    fifo_fd: fds.fifo,
    preserve_fds: pr.preserveFds,
    seccomp: hex(program),
    seccomp_flags: pr.seccomp!.flags,
    has_sched: 1,
    sched_policy: pr.scheduler!.policy,
    sched_flags: pr.scheduler!.flags,
    sched_nice: pr.scheduler!.nice,
    sched_priority: pr.scheduler!.priority,
    sched_runtime: pr.scheduler!.runtime,
    sched_deadline: pr.scheduler!.deadline,
    sched_period: pr.scheduler!.period,
    has_ioprio: 1,
    ioprio: pr.ioPriority!,
    affinity_initial: hex(pr.cpuAffinity!.initial),
    affinity_final: hex(pr.cpuAffinity!.final),
    has_personality: 1,
    personality: pr.personality!,
    has_mempolicy: 1,
    mempolicy_mode: pr.memoryPolicy!.mode,
    mempolicy_nodes: hex(pr.memoryPolicy!.nodes),
    apparmor_profile: pr.apparmorProfile!,
    selinux_label: pr.selinuxLabel!,
    mount_label: c.mountLabel!,
    'idmaps[0].step': 0,
    'idmaps[0].userns_fd': fds.userns[0]!,
    'idmaps[0].recursive': 1,
    join_pidfd: -1,
    join_nsflags: 0,
    'cgroup_tasks[0]': fds.cgroupTasks[0]!,
    'cgroup_tasks[1]': fds.cgroupTasks[1]!,
  };
  for (const [k, s] of c.steps.entries()) {
    const fields: Record<string, string | number | bigint> = {
      kind: StepKind[s.kind],
      flags: s.flags,
      source: s.source ?? '(absent)',
      dest: s.dest,
      fstype: s.fstype ?? '(absent)',
      data: s.data ?? '(absent)',
      fallback: s.fallback ?? '(absent)',
      attr_set: s.attrSet,
      attr_clr: s.attrClr,
      propagation: s.propagation,
      mode: s.mode,
      rdev: s.rdev,
      uid: s.uid,
      gid: s.gid,
    };
    for (const [f, v] of Object.entries(fields)) expected[`steps[${k}].${f}`] = v;
  }
  const got = decode(encodePlan(plan, fds, program));
  t.same([...got.keys()].sort(), Object.keys(expected).sort(), 'the dump names every field the plan sets');
  for (const [name, v] of Object.entries(expected)) t.equal(got.get(name), String(v), name);

  // The exec target is the plan's tail, set only in an exec plan.
  const exec = smallPlan({ flags: PlanFlag.exec, unshareFlags: 0, joinNsFlags: CLONE.NEWPID | CLONE.NEWIPC });
  const tail = decode(encodePlan(exec, { joinPidfd: 61 }));
  t.equal(tail.get('join_pidfd'), '61', 'join_pidfd');
  t.equal(tail.get('join_nsflags'), String(CLONE.NEWPID | CLONE.NEWIPC), 'join_nsflags');
  t.equal(tail.get('flags'), String(PlanFlag.exec), 'flags of an exec plan');
});
