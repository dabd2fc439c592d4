// The runtime-spec schemas and the ahead-of-time validators built from them (run `node hack/gen-spec.mjs` first).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { SpecError } from '../../src/errors.js';
import { fixture } from '../helpers.js';
import type { Features, Spec, State } from '../../src/spec/types.gen.js';
import {
  formatValidationError,
  parseConfig,
  parseProcess,
  validateConfig,
  validateFeatures,
  validateProcess,
  validateState,
} from '../../src/spec/validate.js';

type Json = any; // test fixtures are mutated freely

/** A complete, valid config touching most of the v1.2 Linux surface. */
function fullConfig(): Spec {
  return {
    ociVersion: '1.2.0',
    root: { path: 'rootfs', readonly: true },
    hostname: 'tsrt',
    domainname: 'example.org',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755'] },
      {
        destination: '/data',
        source: '/srv/data',
        options: ['rbind', 'idmap'],
        uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
        gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      },
    ],
    process: {
      terminal: false,
      consoleSize: { height: 24, width: 80 },
      user: { uid: 0, gid: 0, umask: 18, additionalGids: [10, 4294967295] },
      args: ['sh', '-c', 'true'],
      env: ['PATH=/usr/bin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: ['CAP_KILL'],
        effective: ['CAP_KILL'],
        inheritable: [],
        permitted: ['CAP_KILL'],
        ambient: [],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 1024 }],
      noNewPrivileges: true,
      apparmorProfile: 'tsrt-default',
      oomScoreAdj: -500,
      scheduler: { policy: 'SCHED_BATCH', nice: 5, flags: ['SCHED_FLAG_RESET_ON_FORK'] },
      selinuxLabel: 'system_u:system_r:container_t:s0',
      ioPriority: { class: 'IOPRIO_CLASS_BE', priority: 4 },
      execCPUAffinity: { initial: '0', final: '0-3, 7' },
    },
    hooks: {
      prestart: [{ path: '/usr/bin/true' }],
      createRuntime: [{ path: '/usr/bin/true', args: ['true'], env: ['A=1'], timeout: 5 }],
      createContainer: [],
      startContainer: [],
      poststart: [],
      poststop: [{ path: '/usr/bin/true' }],
    },
    annotations: { 'org.example.key': 'value' },
    linux: {
      devices: [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 438, uid: 0, gid: 0 }],
      uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
      gidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
      sysctl: { 'net.ipv4.ip_forward': '1' },
      resources: {
        devices: [
          { allow: false, access: 'rwm' },
          { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
        ],
        memory: { limit: 536870912, reservation: 0, swap: -1, checkBeforeUpdate: true, disableOOMKiller: false },
        cpu: { shares: 1024, quota: 50000, burst: 10000, period: 100000, cpus: '0-1', mems: '0', idle: 0 },
        pids: { limit: 100 },
        blockIO: {
          weight: 500,
          weightDevice: [{ major: 8, minor: 0, weight: 300 }],
          throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
        },
        hugepageLimits: [{ pageSize: '2MB', limit: 0 }],
        network: { classID: 1048577, priorities: [{ name: 'eth0', priority: 5 }] },
        rdma: { mlx5_1: { hcaHandles: 3, hcaObjects: 10000 } },
        unified: { 'memory.high': 'max' },
      },
      cgroupsPath: '/tsrt/test',
      namespaces: [
        { type: 'pid' },
        { type: 'network', path: '/var/run/netns/test' },
        { type: 'mount' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'user' },
        { type: 'cgroup' },
        { type: 'time' },
      ],
      rootfsPropagation: 'rslave',
      seccomp: {
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 1,
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
        flags: ['SECCOMP_FILTER_FLAG_LOG'],
        listenerPath: '/run/seccomp-agent.sock',
        listenerMetadata: 'x',
        syscalls: [
          { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
          { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
          {
            names: ['clone'],
            action: 'SCMP_ACT_ERRNO',
            errnoRet: 38,
            args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
          },
        ],
      },
      maskedPaths: ['/proc/kcore'],
      readonlyPaths: ['/proc/sys'],
      mountLabel: 'system_u:object_r:container_file_t:s0',
      intelRdt: { closID: 'guaranteed', l3CacheSchema: 'L3:0=ff', memBwSchema: 'MB:0=50', enableCMT: true, enableMBM: false },
      personality: { domain: 'LINUX32', flags: [] },
      timeOffsets: { monotonic: { secs: 3600, nanosecs: 0 }, boottime: { secs: -10 } },
      memoryPolicy: { mode: 'MPOL_INTERLEAVE', nodes: '0-1', flags: ['MPOL_F_STATIC_NODES'] },
      netDevices: { eth1: { name: 'net1' }, eth2: {} },
    },
  };
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    return e.message;
  }
  return '(accepted)';
}

/** Debian's runc and crun, by path: /usr/local/bin may hold other versions. */
const RUNC = '/usr/sbin/runc';
const CRUN = '/usr/bin/crun';

/** A skip reason when Debian's `bin` is not installed (hack/deps.sh installs it), or false. */
function missing(bin: string): string | false {
  try {
    accessSync(bin, constants.X_OK);
    return false;
  } catch {
    return `${bin} is not installed (hack/deps.sh installs it)`;
  }
}

t.test('a config using the whole v1.2 Linux surface validates', async t => {
  const spec = fullConfig();
  t.equal(validateConfig(spec), spec, 'returns the same document, typed');
  t.equal(validateConfig({ ociVersion: '1.0.0' }).ociVersion, '1.0.0', 'only ociVersion is required');
  const withUnknown = { ...fullConfig(), vendorExtension: { x: 1 }, solaris: {}, windows: { layerFolders: [] } };
  t.doesNotThrow(() => validateConfig(withUnknown), 'unknown top-level fields are allowed, as upstream');
  const nested: Json = fullConfig();
  nested.process.futureField = true;
  nested.linux.resources.memory.futureField = 1;
  t.doesNotThrow(() => validateConfig(nested), 'unknown nested fields are allowed too');
  const nullAnnotations: Json = fullConfig();
  nullAnnotations.annotations = null;
  t.doesNotThrow(() => validateConfig(nullAnnotations), 'annotations may be null, as upstream');
});

t.test('configs written by `runc spec` and `crun spec` validate', async t => {
  const generators: Array<[string, string[]]> = [
    [RUNC, ['spec']],
    [RUNC, ['spec', '--rootless']],
    [CRUN, ['spec']],
    [CRUN, ['spec', '--rootless']],
  ];
  for (const [bin, args] of generators) {
    const name = `${bin.split('/').pop()} ${args.join(' ')}`;
    const skip = missing(bin);
    t.test(name, { skip }, async t => {
      const dir = mkdtempSync(join(tmpdir(), 'tsrt-schema-'));
      try {
        execFileSync(bin, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
        const spec = parseConfig(readFileSync(join(dir, 'config.json'), 'utf8'));
        t.ok(spec.process?.args?.length, 'validates, with a process');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

t.test('configs and exec process documents captured from engines validate (test/fixtures/engine-configs)', async t => {
  const dir = fixture('engine-configs');
  const files = readdirSync(dir).sort();
  const configs = files.filter(f => f.endsWith('.config.json'));
  const processes = files.filter(f => f.endsWith('.process.json'));
  t.ok(configs.length > 0, 'there are captured configs');
  t.ok(processes.length > 0, 'there are captured exec process files');
  for (const f of configs) {
    t.doesNotThrow(() => parseConfig(readFileSync(join(dir, f), 'utf8')), f);
  }
  for (const f of processes) {
    t.doesNotThrow(() => parseProcess(readFileSync(join(dir, f), 'utf8'), f), f);
  }
});

// Each case breaks fullConfig() in one way and names the exact message.
const malformed: Array<[string, (c: Json) => unknown, string]> = [
  ['document is not an object', () => ['ociVersion'], 'config.json: /: must be object'],
  ['missing ociVersion', c => void delete c.ociVersion, "config.json: /: must have required property 'ociVersion'"],
  ['ociVersion is a number', c => void (c.ociVersion = 1.2), 'config.json: /ociVersion: must be string'],
  ['hostname is a number', c => void (c.hostname = 7), 'config.json: /hostname: must be string'],
  ['root without path', c => void delete c.root.path, "config.json: /root: must have required property 'path'"],
  ['root.readonly is a string', c => void (c.root.readonly = 'true'), 'config.json: /root/readonly: must be boolean'],
  ['mounts is an object', c => void (c.mounts = { '/proc': {} }), 'config.json: /mounts: must be array'],
  [
    'mount without destination',
    c => void delete c.mounts[1].destination,
    "config.json: /mounts/1: must have required property 'destination'",
  ],
  ['mount options is a string', c => void (c.mounts[0].options = 'ro,nosuid'), 'config.json: /mounts/0/options: must be array'],
  [
    'idmapped mount without size',
    c => void delete c.mounts[2].uidMappings[0].size,
    "config.json: /mounts/2/uidMappings/0: must have required property 'size'",
  ],
  ['missing process.cwd', c => void delete c.process.cwd, "config.json: /process: must have required property 'cwd'"],
  ['process.args is a string', c => void (c.process.args = 'sh -c true'), 'config.json: /process/args: must be array'],
  ['process.args is empty', c => void (c.process.args = []), 'config.json: /process/args: must NOT have fewer than 1 items'],
  ['process.args holds a number', c => void (c.process.args = ['sleep', 10]), 'config.json: /process/args/1: must be string'],
  ['env entry is not a string', c => void c.process.env.push({ FOO: 'bar' }), 'config.json: /process/env/2: must be string'],
  ['terminal is a string', c => void (c.process.terminal = 'yes'), 'config.json: /process/terminal: must be boolean'],
  ['negative uid', c => void (c.process.user.uid = -1), 'config.json: /process/user/uid: must be >= 0'],
  ['uid above 2^32-1', c => void (c.process.user.uid = 4294967296), 'config.json: /process/user/uid: must be <= 4294967295'],
  ['fractional gid', c => void (c.process.user.gid = 1.5), 'config.json: /process/user/gid: must be integer'],
  [
    'additional gid as a string',
    c => void (c.process.user.additionalGids = ['10']),
    'config.json: /process/user/additionalGids/0: must be integer',
  ],
  [
    'consoleSize without width',
    c => void delete c.process.consoleSize.width,
    "config.json: /process/consoleSize: must have required property 'width'",
  ],
  [
    'capabilities set is a string',
    c => void (c.process.capabilities.bounding = 'CAP_KILL'),
    'config.json: /process/capabilities/bounding: must be array',
  ],
  [
    'rlimit without hard',
    c => void delete c.process.rlimits[0].hard,
    "config.json: /process/rlimits/0: must have required property 'hard'",
  ],
  [
    'rlimit type without the RLIMIT_ prefix',
    c => void (c.process.rlimits[0].type = 'NOFILE'),
    'config.json: /process/rlimits/0/type: must match pattern "^RLIMIT_[A-Z]+$"',
  ],
  ['negative rlimit', c => void (c.process.rlimits[0].soft = -1), 'config.json: /process/rlimits/0/soft: must be >= 0'],
  ['oomScoreAdj is a string', c => void (c.process.oomScoreAdj = '-500'), 'config.json: /process/oomScoreAdj: must be integer'],
  [
    'unknown scheduler policy',
    c => void (c.process.scheduler.policy = 'SCHED_FAST'),
    'config.json: /process/scheduler/policy: must be equal to one of the allowed values: SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE',
  ],
  [
    'ioPriority without class',
    c => void delete c.process.ioPriority.class,
    "config.json: /process/ioPriority: must have required property 'class'",
  ],
  [
    'execCPUAffinity is not a CPU list',
    c => void (c.process.execCPUAffinity.initial = 'all'),
    'config.json: /process/execCPUAffinity/initial: must match pattern "^[0-9, -]*$"',
  ],
  [
    'hook without path',
    c => void (c.hooks.poststart = [{ args: ['x'] }]),
    "config.json: /hooks/poststart/0: must have required property 'path'",
  ],
  ['hook timeout of 0', c => void (c.hooks.createRuntime[0].timeout = 0), 'config.json: /hooks/createRuntime/0/timeout: must be >= 1'],
  ['hooks list is an object', c => void (c.hooks.prestart = { path: '/bin/true' }), 'config.json: /hooks/prestart: must be array'],
  [
    'annotation value is a number',
    c => void (c.annotations['org.example.n'] = 1),
    'config.json: /annotations/org.example.n: must be string',
  ],
  [
    'annotation key with a newline (the message stays one line)',
    c => void (c.annotations['a\nb'] = 1),
    'config.json: /annotations/a\\nb: must be string',
  ],
  ['linux is an array', c => void (c.linux = []), 'config.json: /linux: must be object'],
  [
    'unknown namespace type',
    c => void (c.linux.namespaces[1].type = 'net'),
    'config.json: /linux/namespaces/1/type: must be equal to one of the allowed values: pid, network, mount, ipc, uts, user, cgroup, time',
  ],
  [
    'namespace without type',
    c => void (c.linux.namespaces[0] = { path: '/proc/1/ns/pid' }),
    "config.json: /linux/namespaces/0: must have required property 'type'",
  ],
  [
    'uid mapping with negative hostID',
    c => void (c.linux.uidMappings[0].hostID = -1000),
    'config.json: /linux/uidMappings/0/hostID: must be >= 0',
  ],
  [
    'gid mapping without containerID',
    c => void delete c.linux.gidMappings[0].containerID,
    "config.json: /linux/gidMappings/0: must have required property 'containerID'",
  ],
  [
    'sysctl value is a number',
    c => void (c.linux.sysctl['net.ipv4.ip_forward'] = 1),
    'config.json: /linux/sysctl/net.ipv4.ip_forward: must be string',
  ],
  [
    'unknown rootfsPropagation',
    c => void (c.linux.rootfsPropagation = 'recursive'),
    'config.json: /linux/rootfsPropagation: must be equal to one of the allowed values: private, shared, slave, unbindable, rprivate, rshared, rslave, runbindable',
  ],
  [
    'device of unknown type',
    c => void (c.linux.devices[0].type = 'x'),
    'config.json: /linux/devices/0/type: must match pattern "^[cbup]$"',
  ],
  ['device without path', c => void delete c.linux.devices[0].path, "config.json: /linux/devices/0: must have required property 'path'"],
  [
    'device cgroup rule without allow',
    c => void delete c.linux.resources.devices[1].allow,
    "config.json: /linux/resources/devices/1: must have required property 'allow'",
  ],
  [
    'memory limit as a string',
    c => void (c.linux.resources.memory.limit = '512M'),
    'config.json: /linux/resources/memory/limit: must be integer',
  ],
  [
    'checkBeforeUpdate as a string',
    c => void (c.linux.resources.memory.checkBeforeUpdate = 'yes'),
    'config.json: /linux/resources/memory/checkBeforeUpdate: must be boolean',
  ],
  ['negative cpu shares', c => void (c.linux.resources.cpu.shares = -2), 'config.json: /linux/resources/cpu/shares: must be >= 0'],
  ['negative cpu burst', c => void (c.linux.resources.cpu.burst = -1), 'config.json: /linux/resources/cpu/burst: must be >= 0'],
  [
    'pids without limit',
    c => void (c.linux.resources.pids = {}),
    "config.json: /linux/resources/pids: must have required property 'limit'",
  ],
  [
    'blkio weight above uint16',
    c => void (c.linux.resources.blockIO.weight = 70000),
    'config.json: /linux/resources/blockIO/weight: must be <= 65535',
  ],
  [
    'throttle device without minor',
    c => void delete c.linux.resources.blockIO.throttleReadBpsDevice[0].minor,
    "config.json: /linux/resources/blockIO/throttleReadBpsDevice/0: must have required property 'minor'",
  ],
  [
    'hugepage limit without pageSize',
    c => void delete c.linux.resources.hugepageLimits[0].pageSize,
    "config.json: /linux/resources/hugepageLimits/0: must have required property 'pageSize'",
  ],
  ['rdma limit is a number', c => void (c.linux.resources.rdma.mlx5_1 = 3), 'config.json: /linux/resources/rdma/mlx5_1: must be object'],
  [
    'unified value is a number',
    c => void (c.linux.resources.unified['memory.high'] = 5),
    'config.json: /linux/resources/unified/memory.high: must be string',
  ],
  [
    'seccomp without defaultAction',
    c => void delete c.linux.seccomp.defaultAction,
    "config.json: /linux/seccomp: must have required property 'defaultAction'",
  ],
  [
    'unknown seccomp defaultAction',
    c => void (c.linux.seccomp.defaultAction = 'SCMP_ACT_DENY'),
    'config.json: /linux/seccomp/defaultAction: must be equal to one of the allowed values: SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY',
  ],
  [
    'unknown seccomp rule action',
    c => void (c.linux.seccomp.syscalls[0].action = 'ALLOW'),
    'config.json: /linux/seccomp/syscalls/0/action: must be equal to one of the allowed values: SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY',
  ],
  [
    'unknown seccomp architecture',
    c => void c.linux.seccomp.architectures.push('x86_64'),
    'config.json: /linux/seccomp/architectures/2: must be equal to one of the allowed values: SCMP_ARCH_X86, SCMP_ARCH_X86_64, SCMP_ARCH_X32, SCMP_ARCH_ARM, SCMP_ARCH_AARCH64, SCMP_ARCH_LOONGARCH64, SCMP_ARCH_M68K, SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64, SCMP_ARCH_MIPS64N32, SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64, SCMP_ARCH_MIPSEL64N32, SCMP_ARCH_PPC, SCMP_ARCH_PPC64, SCMP_ARCH_PPC64LE, SCMP_ARCH_S390, SCMP_ARCH_S390X, SCMP_ARCH_PARISC, SCMP_ARCH_PARISC64, SCMP_ARCH_RISCV64, SCMP_ARCH_SH, SCMP_ARCH_SHEB',
  ],
  [
    'unknown seccomp flag',
    c => void (c.linux.seccomp.flags = ['SECCOMP_FILTER_FLAG_NEW_LISTENER']),
    'config.json: /linux/seccomp/flags/0: must be equal to one of the allowed values: SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
  ],
  [
    'seccomp rule with no names',
    c => void (c.linux.seccomp.syscalls[0].names = []),
    'config.json: /linux/seccomp/syscalls/0/names: must NOT have fewer than 1 items',
  ],
  [
    'seccomp rule without action',
    c => void delete c.linux.seccomp.syscalls[0].action,
    "config.json: /linux/seccomp/syscalls/0: must have required property 'action'",
  ],
  [
    'unknown seccomp operator',
    c => void (c.linux.seccomp.syscalls[1].args[0].op = 'SCMP_CMP_IN'),
    'config.json: /linux/seccomp/syscalls/1/args/0/op: must be equal to one of the allowed values: SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ',
  ],
  [
    'seccomp arg without index',
    c => void delete c.linux.seccomp.syscalls[1].args[0].index,
    "config.json: /linux/seccomp/syscalls/1/args/0: must have required property 'index'",
  ],
  [
    'negative errnoRet',
    c => void (c.linux.seccomp.syscalls[2].errnoRet = -1),
    'config.json: /linux/seccomp/syscalls/2/errnoRet: must be >= 0',
  ],
  [
    'memBwSchema without the MB: prefix',
    c => void (c.linux.intelRdt.memBwSchema = '0=50'),
    'config.json: /linux/intelRdt/memBwSchema: must match pattern "^MB:[^\\n]*$"',
  ],
  [
    'unknown personality domain',
    c => void (c.linux.personality.domain = 'BSD'),
    'config.json: /linux/personality/domain: must be equal to one of the allowed values: LINUX, LINUX32',
  ],
  [
    'negative time offset nanosecs',
    c => void (c.linux.timeOffsets.monotonic.nanosecs = -1),
    'config.json: /linux/timeOffsets/monotonic/nanosecs: must be >= 0',
  ],
  [
    'memory policy without mode',
    c => void delete c.linux.memoryPolicy.mode,
    "config.json: /linux/memoryPolicy: must have required property 'mode'",
  ],
  [
    'unknown memory policy flag',
    c => void (c.linux.memoryPolicy.flags = ['MPOL_F_LOCAL']),
    'config.json: /linux/memoryPolicy/flags/0: must be equal to one of the allowed values: MPOL_F_NUMA_BALANCING, MPOL_F_RELATIVE_NODES, MPOL_F_STATIC_NODES',
  ],
  ['net device entry is a string', c => void (c.linux.netDevices.eth1 = 'net1'), 'config.json: /linux/netDevices/eth1: must be object'],
  ['maskedPaths holds a number', c => void (c.linux.maskedPaths = [1]), 'config.json: /linux/maskedPaths/0: must be string'],
];

t.test('malformed configs are refused with an exact message', async t => {
  t.ok(malformed.length >= 25, `${malformed.length} cases`);
  for (const [name, breakIt, expected] of malformed) {
    const doc: Json = fullConfig();
    const replaced = breakIt(doc);
    const input = replaced === undefined ? doc : replaced;
    t.equal(
      messageOf(() => validateConfig(input)),
      expected,
      name,
    );
  }
});

t.test('the error carries the JSON pointer and the SpecError type', async t => {
  const doc: Json = fullConfig();
  doc.linux.seccomp.syscalls[1].args[0].op = 'bogus';
  try {
    validateConfig(doc);
    t.fail('accepted');
  } catch (e) {
    t.ok(e instanceof SpecError, 'a SpecError');
    const err = e as SpecError;
    t.equal(err.name, 'SpecError');
    t.equal(err.path, '/linux/seccomp/syscalls/1/args/0/op');
  }
  const slashKey: Json = fullConfig();
  slashKey.linux.sysctl['kernel/shm'] = 0;
  t.equal(
    messageOf(() => validateConfig(slashKey)),
    'config.json: /linux/sysctl/kernel~1shm: must be string',
    'keys with a slash are escaped as in RFC 6901',
  );
});

t.test('parseConfig turns JSON syntax errors into SpecError', async t => {
  for (const text of ['{', '{"ociVersion": "1.0.0",}', '', 'nul']) {
    let detail = '';
    try {
      JSON.parse(text);
    } catch (e) {
      detail = (e as Error).message;
    }
    t.equal(
      messageOf(() => parseConfig(text)),
      `config.json: invalid JSON: ${detail}`,
      JSON.stringify(text),
    );
  }
  t.equal(
    messageOf(() => parseConfig('"just a string"')),
    'config.json: /: must be object',
  );
  t.equal(parseConfig('{"ociVersion":"1.2.0"}').ociVersion, '1.2.0');
});

t.test('process documents (exec --process) are validated and named by file', async t => {
  const proc = fullConfig().process!;
  t.equal(validateProcess(proc, 'p.json'), proc);
  const noCwd: Json = { args: ['sh'] };
  t.equal(
    messageOf(() => validateProcess(noCwd, 'exec.json')),
    "exec.json: /: must have required property 'cwd'",
  );
  t.equal(
    messageOf(() => validateProcess({ cwd: '/', args: 'sh' })),
    'process.json: /args: must be array',
    'default file name',
  );
  t.equal(
    messageOf(() => validateProcess({ cwd: '/', args: ['sh'], user: { uid: 4294967296 } }, '/tmp/p.json')),
    '/tmp/p.json: /user/uid: must be <= 4294967295',
  );
  t.equal(messageOf(() => parseProcess('{"cwd": }', 'x.json')).startsWith('x.json: invalid JSON: '), true);
});

t.test('enum and additionalProperties errors spell out the detail', async t => {
  t.equal(
    formatValidationError('config.json', {
      instancePath: '/linux',
      schemaPath: '#/additionalProperties',
      keyword: 'additionalProperties',
      params: { additionalProperty: 'sekurity' },
      message: 'must NOT have additional properties',
    }),
    "config.json: /linux: must NOT have additional properties: 'sekurity'",
  );
  t.equal(
    formatValidationError('state.json', {
      instancePath: '',
      schemaPath: '#/properties/status/enum',
      keyword: 'enum',
      params: { allowedValues: ['a', 'b'] },
      message: 'must be equal to one of the allowed values',
    }),
    'state.json: /: must be equal to one of the allowed values: a, b',
  );
});

t.test('state documents', async t => {
  const state: State = {
    ociVersion: '1.2.0',
    id: 'c1',
    status: 'running',
    pid: 4242,
    bundle: '/run/bundles/c1',
    annotations: { 'org.example': 'x' },
  };
  t.equal(validateState(state), state);
  t.doesNotThrow(
    () => validateState({ ociVersion: '1.2.0', id: 'c1', status: 'stopped', bundle: '/b', rootfs: '/b/rootfs', owner: '' }),
    'runc extras and no pid',
  );
  t.equal(
    messageOf(() => validateState({ ...state, status: 'paused' })),
    'state.json: /status: must be equal to one of the allowed values: creating, created, running, stopped',
  );
  const { bundle: _bundle, ...noBundle } = state;
  t.equal(
    messageOf(() => validateState(noBundle)),
    "state.json: /: must have required property 'bundle'",
  );
  t.equal(
    messageOf(() => validateState({ ...state, pid: -1 }, 'hook stdin')),
    'hook stdin: /pid: must be >= 0',
  );
});

t.test('features documents', async t => {
  const features: Features = {
    ociVersionMin: '1.0.0',
    ociVersionMax: '1.2.0',
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: ['ro', 'rbind', 'idmap'],
    annotations: { 'org.tsrt.version': '0.1.0' },
    potentiallyUnsafeConfigAnnotations: ['org.tsrt.'],
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts', 'time'],
      capabilities: ['CAP_CHOWN', 'CAP_SYS_ADMIN'],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: true },
      seccomp: {
        enabled: true,
        actions: ['SCMP_ACT_ALLOW', 'SCMP_ACT_NOTIFY'],
        operators: ['SCMP_CMP_EQ'],
        archs: ['SCMP_ARCH_X86_64'],
        knownFlags: ['SECCOMP_FILTER_FLAG_LOG'],
        supportedFlags: ['SECCOMP_FILTER_FLAG_LOG'],
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: true } },
      netDevices: { enabled: true },
      memoryPolicy: { modes: ['MPOL_BIND'], flags: ['MPOL_F_STATIC_NODES'] },
    },
  };
  t.equal(validateFeatures(features), features);
  t.equal(
    messageOf(() => validateFeatures({ ociVersionMin: '1.0.0' })),
    "features.json: /: must have required property 'ociVersionMax'",
  );
  const badNs: Json = structuredClone(features);
  badNs.linux.namespaces.push('net');
  t.equal(
    messageOf(() => validateFeatures(badNs)),
    'features.json: /linux/namespaces/8: must be equal to one of the allowed values: pid, network, mount, ipc, uts, user, cgroup, time',
  );
  const badCap: Json = structuredClone(features);
  badCap.linux.capabilities = ['chown'];
  t.equal(
    messageOf(() => validateFeatures(badCap)),
    'features.json: /linux/capabilities/0: must match pattern "^CAP_[A-Z_]+$"',
  );

  t.test('the output of `runc features` validates', { skip: missing(RUNC) }, async t => {
    const out = execFileSync(RUNC, ['features'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    t.equal(validateFeatures(JSON.parse(out), 'runc features').ociVersionMin, '1.0.0');
  });
});

t.test('the generated validator module is self-contained', async t => {
  const js = readFileSync(new URL('../../src/spec/validators.gen.js', import.meta.url), 'utf8');
  t.notMatch(js, /\brequire\(|^\s*import\s/m, 'no imports: ajv is not loaded at run time');
  const ts = readFileSync(new URL('../../src/spec/validate.ts', import.meta.url), 'utf8');
  t.notMatch(ts, /from 'ajv/, 'validate.ts does not import ajv');
});
