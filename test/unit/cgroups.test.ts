// cgroups without a kernel: layout detection from mountinfo, where cgroupsPath puts the container in each
// hierarchy, the (file, value) writes for every linux.resources field on v1, v2 and hybrid placements against a
// fake tree, the device rules as v1 writes and as an eBPF program, and the update command's flags.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { deviceProgram, deviceRules, ruleText, runDeviceProgram, v1DeviceWrites } from '../../src/cgroups/devices.js';
import { blkioToIoWeight, sharesToWeight, swapToV2 } from '../../src/cgroups/convert.js';
import { cgroupDirs, cleanCgroupPath } from '../../src/cgroups/paths.js';
import { controllersNeeded, mergeResources, resourceWrites, type FileTree, type Write } from '../../src/cgroups/resources.js';
import type { Placement } from '../../src/cgroups/types.js';
import { fillCpuset, frozenOrFreezing } from '../../src/cgroups/v1.js';
import { frozenHereOrAbove } from '../../src/cgroups/v2.js';
import { ramInBytes, resourcesFromFlags } from '../../src/cli/update.js';
import { cgroupLayout } from '../../src/runtime/host.js';
import type { LinuxResources } from '../../src/spec/types.gen.js';
import { errorOf } from '../helpers.js';

// ---- fixtures ----

const HYBRID_MOUNTINFO = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
  '34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices',
  '37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer',
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');
const HYBRID_SELF = '9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/user.slice/session-1.scope\n';

const V2_MOUNTINFO = '30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate';
const V1_MOUNTINFO = [
  '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
  '35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
].join('\n');

const hybrid = cgroupLayout(HYBRID_MOUNTINFO, HYBRID_SELF);
const V1_ALL = new Set([
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'devices',
  'freezer',
  'blkio',
  'pids',
  'hugetlb',
  'net_cls',
  'net_prio',
  'rdma',
]);
const onV1: Placement = { v1: V1_ALL, v2: undefined };
const onV2: Placement = { v1: new Set(), v2: new Set(['cpu', 'cpuset', 'io', 'memory', 'pids', 'hugetlb', 'rdma']) };
/** This project's host: everything v1 except hugetlb, which cgroup2 owns; no net_cls/net_prio/rdma. */
const onHybrid: Placement = {
  v1: new Set(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids']),
  v2: new Set(['hugetlb']),
};

/** A fake cgroup tree: "key/file" -> content. Files not listed do not exist. */
function tree(files: Record<string, string>): FileTree {
  return {
    exists: (key, file) => `${key}/${file}` in files,
    read: (key, file) => files[`${key}/${file}`],
  };
}

const V1_FILES = tree(
  Object.fromEntries(
    [
      'memory/memory.limit_in_bytes',
      'memory/memory.memsw.limit_in_bytes',
      'memory/memory.kmem.limit_in_bytes',
      'memory/memory.kmem.tcp.limit_in_bytes',
      'cpu/cpu.cfs_burst_us',
      'cpu/cpu.rt_period_us',
      'cpu/cpu.rt_runtime_us',
      'cpu/cpu.idle',
      'blkio/blkio.weight',
      'blkio/blkio.leaf_weight',
      'blkio/blkio.weight_device',
      'blkio/blkio.leaf_weight_device',
      'hugetlb/hugetlb.2MB.limit_in_bytes',
    ].map(f => [f, f.endsWith('memory.limit_in_bytes') ? '9223372036854771712\n' : f.endsWith('rt_runtime_us') ? '0\n' : '0\n']),
  ),
);
const V2_FILES = tree({
  'unified/memory.swap.max': 'max\n',
  'unified/memory.max': 'max\n',
  'unified/memory.current': '1000\n',
  'unified/hugetlb.2MB.max': 'max\n',
  'unified/hugetlb.2MB.rsvd.max': 'max\n',
});

const writes = (w: Write[]): string[] => w.map(x => `${x.key}/${x.file}=${x.value}`);

// ---- layout and paths ----

t.test('layout detection (mountinfo + /proc/self/cgroup)', async t => {
  t.test('hybrid: v1 hierarchies plus cgroup2 at unified', async t => {
    t.equal(hybrid.layout, 'hybrid');
    t.equal(hybrid.unifiedMountPoint, '/sys/fs/cgroup/unified');
    t.same(
      hybrid.v1.map(h => h.options),
      ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'pids', 'name=systemd'],
    );
    t.equal(hybrid.v1.find(h => h.options === 'memory')?.ownPath, '/process_api/abc', 'own cgroup per hierarchy');
    t.equal(hybrid.unifiedOwnPath, '/user.slice/session-1.scope');
  });
  t.test('v2 only', async t => {
    const l = cgroupLayout(V2_MOUNTINFO, '0::/init.scope\n');
    t.equal(l.layout, 'v2');
    t.equal(l.unifiedMountPoint, '/sys/fs/cgroup');
  });
  t.test("a container's cgroup mounts prepared in this namespace are not the host's hierarchies", async t => {
    const l = cgroupLayout(['40 23 0:50 / /srv/b/rootfs/sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu', V2_MOUNTINFO].join('\n'), '0::/x\n');
    t.equal(l.layout, 'v2', "the host is v2: the rootfs's v1 mount is ignored");
    t.same(l.v1, []);
  });
  t.test('a cgroup2 mounted over /sys/fs/cgroup hides the v1 hierarchies below it', async t => {
    const l = cgroupLayout([HYBRID_MOUNTINFO, '90 23 0:60 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw'].join('\n'), '0::/x\n');
    t.equal(l.layout, 'v2');
    t.equal(l.unifiedMountPoint, '/sys/fs/cgroup');
  });
  t.test('v1 only, joint hierarchies', async t => {
    const l = cgroupLayout(V1_MOUNTINFO, '2:cpu,cpuacct:/x\n1:memory:/\n');
    t.equal(l.layout, 'v1');
    t.same(
      l.v1.map(h => [h.options, h.ownPath]),
      [
        ['cpu,cpuacct', '/x'],
        ['memory', '/'],
      ],
    );
  });
});

t.test('cgroupsPath', async t => {
  const req = { id: 'c1', systemd: false, systemdRunning: false };
  t.test('clean: no climbing out of a relative path', async t => {
    t.equal(cleanCgroupPath('../../x/./y/'), 'x/y');
    t.equal(cleanCgroupPath('/a/../b//c/'), '/b/c');
    t.equal(cleanCgroupPath('/../..'), '/');
    t.equal(cleanCgroupPath(''), '');
  });
  t.test('absolute: under each hierarchy root', async t => {
    const dirs = cgroupDirs(hybrid, { ...req, cgroupsPath: '/cgrouptest' });
    t.equal(dirs.find(d => d.key === 'memory')?.dir, '/sys/fs/cgroup/memory/cgrouptest', 'not under our own /process_api/abc');
    t.equal(dirs.find(d => d.key === 'unified')?.dir, '/sys/fs/cgroup/unified/cgrouptest');
    t.equal(dirs.length, hybrid.v1.length + 1, 'every v1 hierarchy (name=systemd too) and cgroup2');
  });
  t.test('relative: under our own cgroup (cgroup2: beside it)', async t => {
    const dirs = cgroupDirs(hybrid, { ...req, cgroupsPath: 'testdir/cgrouptest/container' });
    t.equal(dirs.find(d => d.key === 'memory')?.dir, '/sys/fs/cgroup/memory/process_api/abc/testdir/cgrouptest/container');
    t.equal(dirs.find(d => d.key === 'pids')?.dir, '/sys/fs/cgroup/pids/testdir/cgrouptest/container');
    t.equal(dirs.find(d => d.key === 'unified')?.dir, '/sys/fs/cgroup/unified/user.slice/testdir/cgrouptest/container');
  });
  t.test('absent: the container id, relative (runc)', async t => {
    const dirs = cgroupDirs(hybrid, req);
    t.equal(dirs.find(d => d.key === 'memory')?.dir, '/sys/fs/cgroup/memory/process_api/abc/c1');
    t.equal(dirs.find(d => d.key === 'cpu')?.dir, '/sys/fs/cgroup/cpu/c1');
  });
  t.test('the host root is refused', async t => {
    t.match(
      errorOf(t, () => cgroupDirs(hybrid, { ...req, cgroupsPath: '/' })),
      /cgroupsPath: "\/" is the root cgroup/,
    );
  });
  t.test("systemd manager without systemd: runc's message", async t => {
    t.equal(
      errorOf(t, () => cgroupDirs(hybrid, { ...req, systemd: true, cgroupsPath: 'system.slice:tsrt:c1' })),
      'systemd not running on this host, cannot use systemd cgroups manager',
    );
  });
  t.test('systemd manager: slice:prefix:name form', async t => {
    t.match(
      errorOf(t, () => cgroupDirs(hybrid, { ...req, systemd: true, systemdRunning: true, cgroupsPath: '/a/b' })),
      /expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "\/a\/b" instead/,
    );
  });
});

// ---- resources -> writes ----

t.test('conversions', async t => {
  t.test('cpu.shares -> cpu.weight', async t => {
    t.equal(sharesToWeight(0), 0);
    t.equal(sharesToWeight(2), 1);
    t.equal(sharesToWeight(1024), 39);
    t.equal(sharesToWeight(262144), 10000);
  });
  t.test('blkio weight -> io.weight', async t => {
    t.equal(blkioToIoWeight(10), 1);
    t.equal(blkioToIoWeight(500), 4950);
    t.equal(blkioToIoWeight(1000), 10000);
  });
  t.test('memory+swap -> memory.swap.max', async t => {
    t.equal(swapToV2(200, 100), 100);
    t.equal(swapToV2(-1, 100), -1);
    t.equal(swapToV2(0, -1), -1, 'unlimited memory, swap unset: both unlimited');
    t.match(
      errorOf(t, () => swapToV2(50, 100)),
      /memory\+swap limit \(50\) must be >= memory limit \(100\)/,
    );
    t.match(
      errorOf(t, () => swapToV2(50, 0)),
      /a swap limit needs a memory limit/,
    );
  });
});

t.test('memory', async t => {
  t.test('limit, swap, reservation, kernel, kernelTCP, swappiness, disableOOMKiller, useHierarchy (v1)', async t => {
    const r: LinuxResources = {
      memory: {
        limit: 1000,
        swap: 2000,
        reservation: 500,
        kernel: 4000,
        kernelTCP: 3000,
        swappiness: 10,
        disableOOMKiller: true,
        useHierarchy: true,
      },
    };
    t.same(writes(resourceWrites(r, onV1, V1_FILES)), [
      'memory/memory.limit_in_bytes=1000',
      'memory/memory.memsw.limit_in_bytes=2000',
      'memory/memory.soft_limit_in_bytes=500',
      'memory/memory.kmem.limit_in_bytes=4000',
      'memory/memory.kmem.tcp.limit_in_bytes=3000',
      'memory/memory.swappiness=10',
      'memory/memory.oom_control=1',
      'memory/memory.use_hierarchy=1',
    ]);
  });
  t.test('v1: swap first when it grows past the current limit', async t => {
    const small = tree({ 'memory/memory.limit_in_bytes': '100\n', 'memory/memory.memsw.limit_in_bytes': '100\n' });
    t.same(writes(resourceWrites({ memory: { limit: 1000, swap: 2000 } }, onV1, small)), [
      'memory/memory.memsw.limit_in_bytes=2000',
      'memory/memory.limit_in_bytes=1000',
    ]);
    const big = tree({ 'memory/memory.limit_in_bytes': '5000\n', 'memory/memory.memsw.limit_in_bytes': '9000\n' });
    t.same(
      writes(resourceWrites({ memory: { limit: 1000, swap: 2000 } }, onV1, big)),
      ['memory/memory.limit_in_bytes=1000', 'memory/memory.memsw.limit_in_bytes=2000'],
      'shrinking: limit first',
    );
  });
  t.test('v1: -1 limit takes swap to -1 too', async t => {
    t.same(writes(resourceWrites({ memory: { limit: -1 } }, onV1, V1_FILES)), [
      'memory/memory.memsw.limit_in_bytes=-1',
      'memory/memory.limit_in_bytes=-1',
    ]);
  });
  t.test('kernel memory files missing: skipped quietly (runc)', async t => {
    t.same(writes(resourceWrites({ memory: { kernel: 1, kernelTCP: 1 } }, onV1, tree({}))), []);
  });
  t.test('swap without swap accounting is an error naming the field', async t => {
    t.match(
      errorOf(t, () => resourceWrites({ memory: { limit: 10, swap: 20 } }, onV1, tree({ 'memory/memory.limit_in_bytes': '0' }))),
      /^linux\.resources\.memory\.swap: the host has no swap accounting/,
    );
  });
  t.test('swappiness out of range', async t => {
    t.match(
      errorOf(t, () => resourceWrites({ memory: { swappiness: 101 } }, onV1, V1_FILES)),
      /memory\.swappiness: invalid value 101: valid memory swappiness range is 0-100/,
    );
  });
  t.test('v2: memory.max, memory.swap.max (swap only), memory.low; v1-only knobs ignored', async t => {
    const r: LinuxResources = { memory: { limit: 1000, swap: 3000, reservation: 500, kernel: 1, swappiness: 5, disableOOMKiller: true } };
    t.same(writes(resourceWrites(r, onV2, V2_FILES)), [
      'unified/memory.swap.max=2000',
      'unified/memory.max=1000',
      'unified/memory.low=500',
    ]);
    t.same(writes(resourceWrites({ memory: { limit: -1 } }, onV2, V2_FILES)), ['unified/memory.swap.max=max', 'unified/memory.max=max']);
  });
  t.test('checkBeforeUpdate (v2, update only)', async t => {
    const r: LinuxResources = { memory: { limit: 10, checkBeforeUpdate: true } };
    t.match(
      errorOf(t, () => resourceWrites(r, onV2, V2_FILES, true)),
      /rejecting memory limit 10 below usage 1000/,
    );
    t.same(writes(resourceWrites(r, onV2, V2_FILES, false)), ['unified/memory.max=10'], 'not at create');
  });
  t.test('no memory controller', async t => {
    t.match(
      errorOf(t, () => resourceWrites({ memory: { limit: 1 } }, { v1: new Set(), v2: undefined }, tree({}))),
      /^linux\.resources\.memory: the memory cgroup controller is not available on this host/,
    );
  });
});

t.test('cpu', async t => {
  t.test('shares, period, quota, burst, realtime, idle, cpus, mems (v1)', async t => {
    const r: LinuxResources = {
      cpu: {
        shares: 512,
        period: 100000,
        quota: 50000,
        burst: 10000,
        realtimePeriod: 1000000,
        realtimeRuntime: 950000,
        idle: 1,
        cpus: '0-1',
        mems: '0',
      },
    };
    const w = resourceWrites(r, onV1, V1_FILES);
    t.same(writes(w), [
      'cpu/cpu.shares=512',
      'cpu/cpu.cfs_period_us=100000',
      'cpu/cpu.cfs_quota_us=50000',
      'cpu/cpu.cfs_burst_us=10000',
      'cpu/cpu.rt_period_us=1000000',
      'cpu/cpu.rt_runtime_us=950000',
      'cpu/cpu.idle=1',
      'cpuset/cpuset.cpus=0-1',
      'cpuset/cpuset.mems=0',
    ]);
    t.equal(w[1]!.retryOnEinval, true, 'a period the old quota refuses is retried after the quota');
  });
  t.test('realtime: runtime first when the new period is below the current runtime', async t => {
    const cur = tree({ 'cpu/cpu.rt_period_us': '1000000', 'cpu/cpu.rt_runtime_us': '900000' });
    t.same(writes(resourceWrites({ cpu: { realtimePeriod: 500000, realtimeRuntime: 400000 } }, onV1, cur)), [
      'cpu/cpu.rt_runtime_us=400000',
      'cpu/cpu.rt_period_us=500000',
    ]);
  });
  t.test('realtime without RT group scheduling', async t => {
    t.match(
      errorOf(t, () => resourceWrites({ cpu: { realtimeRuntime: 1 } }, onV1, tree({}))),
      /cpu\.realtimePeriod: the kernel has no realtime group scheduling/,
    );
  });
  t.test('burst above quota', async t => {
    t.match(
      errorOf(t, () => resourceWrites({ cpu: { quota: 10, burst: 20 } }, onV1, V1_FILES)),
      /cpu\.burst: burst \(20\) must not exceed quota \(10\)/,
    );
  });
  t.test('v2: cpu.weight converted, cpu.max "quota period", cpu.max.burst', async t => {
    t.same(writes(resourceWrites({ cpu: { shares: 1024, quota: 50000, period: 100000, burst: 1000, idle: 0 } }, onV2, tree({}))), [
      'unified/cpu.weight=39',
      'unified/cpu.max=50000 100000',
      'unified/cpu.max.burst=1000',
      'unified/cpu.idle=0',
    ]);
    t.same(writes(resourceWrites({ cpu: { quota: -1, period: 100000 } }, onV2, tree({}))), ['unified/cpu.max=max 100000']);
  });
  t.test('v2: realtime refused', async t => {
    t.match(
      errorOf(t, () => resourceWrites({ cpu: { realtimeRuntime: 5 } }, onV2, tree({}))),
      /realtime scheduling limits do not exist in cgroup v2/,
    );
  });
});

t.test('pids.limit', async t => {
  t.same(writes(resourceWrites({ pids: { limit: 30 } }, onV1, tree({}))), ['pids/pids.max=30']);
  t.same(writes(resourceWrites({ pids: { limit: -1 } }, onV2, tree({}))), ['unified/pids.max=max']);
  t.same(writes(resourceWrites({ pids: { limit: 0 } }, onV1, tree({}))), [], '0 leaves it alone');
});

t.test('blockIO', async t => {
  const r: LinuxResources = {
    blockIO: {
      weight: 500,
      leafWeight: 300,
      weightDevice: [{ major: 8, minor: 0, weight: 600, leafWeight: 200 }],
      throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1000 }],
      throttleWriteBpsDevice: [{ major: 8, minor: 0, rate: 2000 }],
      throttleReadIOPSDevice: [{ major: 8, minor: 0, rate: 30 }],
      throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 40 }],
    },
  };
  t.test('weight, leafWeight, weightDevice, throttles (v1)', async t => {
    t.same(writes(resourceWrites(r, onV1, V1_FILES)), [
      'blkio/blkio.weight=500',
      'blkio/blkio.leaf_weight=300',
      'blkio/blkio.weight_device=8:0 600',
      'blkio/blkio.leaf_weight_device=8:0 200',
      'blkio/blkio.throttle.read_bps_device=8:0 1000',
      'blkio/blkio.throttle.write_bps_device=8:0 2000',
      'blkio/blkio.throttle.read_iops_device=8:0 30',
      'blkio/blkio.throttle.write_iops_device=8:0 40',
    ]);
  });
  t.test('BFQ hosts: blkio.bfq.weight', async t => {
    const bfq = tree({ 'blkio/blkio.bfq.weight': '100', 'blkio/blkio.bfq.weight_device': '' });
    t.same(writes(resourceWrites({ blockIO: { weight: 500, weightDevice: [{ major: 8, minor: 0, weight: 600 }] } }, onV1, bfq)), [
      'blkio/blkio.bfq.weight=500',
      'blkio/blkio.bfq.weight_device=8:0 600',
    ]);
  });
  t.test('no weight file (scheduler none): error naming the field', async t => {
    t.match(
      errorOf(t, () => resourceWrites({ blockIO: { leafWeight: 10 } }, onV1, tree({}))),
      /^linux\.resources\.blockIO\.leafWeight: the host's I\/O scheduler has no blkio\.leaf_weight/,
    );
  });
  t.test('v2: io.weight converted, io.max per throttle', async t => {
    t.same(writes(resourceWrites(r, onV2, tree({}))), [
      'unified/io.weight=default 4950',
      'unified/io.weight=8:0 5960',
      'unified/io.max=8:0 rbps=1000',
      'unified/io.max=8:0 wbps=2000',
      'unified/io.max=8:0 riops=30',
      'unified/io.max=8:0 wiops=40',
    ]);
  });
});

t.test('hugepageLimits', async t => {
  t.test('v1: limit_in_bytes', async t => {
    t.same(writes(resourceWrites({ hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }] }, onV1, V1_FILES)), [
      'hugetlb/hugetlb.2MB.limit_in_bytes=4194304',
    ]);
  });
  t.test('hybrid: in cgroup2, with the reservation limit', async t => {
    t.same(writes(resourceWrites({ hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }] }, onHybrid, V2_FILES)), [
      'unified/hugetlb.2MB.max=4194304',
      'unified/hugetlb.2MB.rsvd.max=4194304',
    ]);
  });
  t.test('unknown page size', async t => {
    t.match(
      errorOf(t, () => resourceWrites({ hugepageLimits: [{ pageSize: '3MB', limit: 1 }] }, onHybrid, V2_FILES)),
      /hugepageLimits\[0\]\.pageSize: the host has no 3MB huge pages/,
    );
    t.match(
      errorOf(t, () => resourceWrites({ hugepageLimits: [{ pageSize: '2M', limit: 1 }] }, onHybrid, V2_FILES)),
      /invalid page size "2M"/,
    );
  });
});

t.test('network', async t => {
  t.test('classID and priorities (v1)', async t => {
    t.same(
      writes(
        resourceWrites(
          {
            network: {
              classID: 1048577,
              priorities: [
                { name: 'eth0', priority: 500 },
                { name: 'lo', priority: 1 },
              ],
            },
          },
          onV1,
          tree({}),
        ),
      ),
      ['net_cls/net_cls.classid=1048577', 'net_prio/net_prio.ifpriomap=eth0 500', 'net_prio/net_prio.ifpriomap=lo 1'],
    );
  });
  t.test('not mounted (this host): error naming the field', async t => {
    t.match(
      errorOf(t, () => resourceWrites({ network: { classID: 1 } }, onHybrid, tree({}))),
      /^linux\.resources\.network\.classID: the net_cls cgroup controller is not available/,
    );
  });
});

t.test('rdma', async t => {
  t.same(writes(resourceWrites({ rdma: { mlx5_1: { hcaHandles: 3, hcaObjects: 10000 }, rxe3: { hcaObjects: 5 } } }, onV2, tree({}))), [
    'unified/rdma.max=mlx5_1 hca_handle=3 hca_object=10000',
    'unified/rdma.max=rxe3 hca_object=5',
  ]);
  t.match(
    errorOf(t, () => resourceWrites({ rdma: { x: {} } }, onV2, tree({}))),
    /rdma\.x: needs hcaHandles or hcaObjects/,
  );
  t.match(
    errorOf(t, () => resourceWrites({ rdma: { x: { hcaHandles: 1 } } }, onHybrid, tree({}))),
    /the rdma cgroup controller is not available/,
  );
});

t.test('unified', async t => {
  t.test('written last, to cgroup2', async t => {
    const w = resourceWrites({ pids: { limit: 5 }, unified: { 'pids.max': '7', 'cgroup.max.depth': '3' } }, onV2, tree({}));
    t.same(writes(w), ['unified/pids.max=5', 'unified/pids.max=7', 'unified/cgroup.max.depth=3']);
    t.same(controllersNeeded(w), ['pids'], 'pids enabled in the parents; cgroup.* is core');
  });
  t.test('hybrid: only controllers cgroup2 owns', async t => {
    t.same(writes(resourceWrites({ unified: { 'hugetlb.2MB.max': '0' } }, onHybrid, tree({}))), ['unified/hugetlb.2MB.max=0']);
    t.equal(
      errorOf(t, () => resourceWrites({ unified: { 'memory.max': '1' } }, onHybrid, tree({}))),
      'linux.resources.unified: invalid configuration: cannot use unified on cgroup v1 ("memory.max": the host has the memory controller in a v1 hierarchy)',
      "runc's text, then the file and why",
    );
  });
  t.test('v1-only host: an error', async t => {
    t.equal(
      errorOf(t, () => resourceWrites({ unified: { 'memory.max': '1' } }, onV1, tree({}))),
      'linux.resources.unified: invalid configuration: cannot use unified on cgroup v1 (this host has no cgroup2 hierarchy)',
    );
  });
  t.test('no paths', async t => {
    t.match(
      errorOf(t, () => resourceWrites({ unified: { '../cgroup.procs': '1' } }, onV2, tree({}))),
      /is not a cgroup2 file name/,
    );
  });
  t.test('no membership or kill files: a host pid must never join the container', async t => {
    for (const file of ['cgroup.procs', 'cgroup.threads', 'cgroup.kill']) {
      t.match(
        errorOf(t, () => resourceWrites({ unified: { [file]: '1' } }, onV2, tree({}))),
        /moves or kills processes; it is not a resource/,
        file,
      );
    }
  });
});

// ---- devices ----

t.test('devices', async t => {
  const rules = deviceRules([
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' },
    { allow: true, type: 'b', major: 8, minor: 20, access: 'rw' },
    { allow: false, type: 'c', major: 1, minor: 9, access: 'w' },
  ]);
  t.test('v1: deny all, then every rule in order, then the always-allowed', async t => {
    const w = v1DeviceWrites(rules).map(x => `${x.file}: ${x.value}`);
    t.same(w.slice(0, 5), [
      'devices.deny: a',
      'devices.deny: a',
      'devices.allow: c 10:229 rwm',
      'devices.allow: b 8:20 rw',
      'devices.deny: c 1:9 w',
    ]);
    t.same(w.slice(5, 8), ['devices.allow: c *:* m', 'devices.allow: b *:* m', 'devices.allow: c 1:3 rwm']);
    t.equal(ruleText({ allow: true, type: 'c', major: 136, minor: -1, access: 'rwm' }), 'c 136:* rwm');
  });
  t.test('bad rules name the field', async t => {
    t.match(
      errorOf(t, () => deviceRules([{ allow: true, type: 'x' }])),
      /^linux\.resources\.devices\[0\]\.type: invalid device type "x"/,
    );
    t.match(
      errorOf(t, () => deviceRules([{ allow: true, access: 'rwx' }])),
      /^linux\.resources\.devices\[0\]\.access: invalid access "rwx"/,
    );
  });
  t.test('v2 program: default deny, last matching rule wins', async t => {
    const prog = deviceProgram(rules);
    t.equal(prog.length % 8, 0, 'whole instructions');
    t.equal(runDeviceProgram(prog, 'c', 10, 229, 'rw'), true, 'allowed by its rule');
    t.equal(runDeviceProgram(prog, 'b', 8, 20, 'r'), true, 'allowed access subset');
    t.equal(runDeviceProgram(prog, 'b', 8, 20, 'm'), true, 'mknod of anything (always allowed)');
    t.equal(runDeviceProgram(prog, 'c', 4, 1, 'rw'), false, 'not listed: denied');
    t.equal(runDeviceProgram(prog, 'c', 1, 3, 'rw'), true, '/dev/null always allowed');
    t.equal(runDeviceProgram(prog, 'c', 136, 7, 'rw'), true, 'pts wildcard minor');
    t.equal(runDeviceProgram(prog, 'c', 1, 9, 'w'), true, 'the later always-allowed urandom rule wins over the deny');
    const denyLast = deviceProgram([
      { allow: true, type: 'a', major: -1, minor: -1, access: 'rwm' },
      { allow: false, type: 'c', major: 1, minor: 5, access: 'w' },
    ]);
    t.equal(runDeviceProgram(denyLast, 'c', 1, 5, 'rw'), false, 'a deny covering one requested bit denies');
    t.equal(runDeviceProgram(denyLast, 'c', 1, 5, 'r'), true, 'other bits fall through to allow-all');
    t.equal(runDeviceProgram(denyLast, 'b', 7, 0, 'rwm'), true);
  });
  t.test('v2 program: a rule matching everything ends it (the verifier refuses unreachable code)', async t => {
    const all = { allow: true, type: 'a' as const, major: -1, minor: -1, access: 'rwm' };
    const prog = deviceProgram([{ allow: true, type: 'c', major: 1, minor: 3, access: 'r' }, all]);
    t.equal(prog.length / 8, 6 + 2, 'prologue, then the match-all verdict; nothing after it');
    t.equal(runDeviceProgram(prog, 'b', 9, 9, 'w'), true);
    const denyAll = deviceProgram([{ ...all, allow: false }]);
    t.equal(runDeviceProgram(denyAll, 'c', 1, 3, 'r'), false);
  });
});

// ---- update ----

t.test('update', async t => {
  t.test('merge: given fields replace, others stay', async t => {
    const base: LinuxResources = { memory: { limit: 100, swap: 200 }, cpu: { quota: 5, period: 10 }, pids: { limit: 3 } };
    t.same(mergeResources(base, { cpu: { quota: 7 }, memory: { limit: 150 } }), {
      memory: { limit: 150, swap: 200 },
      cpu: { quota: 7, period: 10 },
      pids: { limit: 3 },
    });
    t.same(base.cpu, { quota: 5, period: 10 }, 'the base is not changed');
  });
  t.test('sizes as runc reads them', async t => {
    t.equal(ramInBytes('64m'), 64 * 1024 * 1024);
    t.equal(ramInBytes('1.5g'), 1.5 * 1024 ** 3);
    t.equal(ramInBytes('512KiB'), 512 * 1024);
    t.equal(ramInBytes('1024'), 1024);
    t.throws(() => ramInBytes('lots'), /invalid size: 'lots'/);
  });
  t.test('flags', async t => {
    t.same(
      resourcesFromFlags({
        'blkio-weight': '300',
        'cpu-period': '100000',
        'cpu-quota': '-1',
        'cpu-share': '512',
        'cpu-rt-period': '1000',
        'cpu-rt-runtime': '500',
        'cpuset-cpus': '0',
        'cpuset-mems': '0',
        memory: '64m',
        'memory-swap': '128m',
        'memory-reservation': '32m',
        'kernel-memory': '1g',
        'kernel-memory-tcp': '1m',
        'pids-limit': '10',
      }),
      {
        blockIO: { weight: 300 },
        cpu: { cpus: '0', mems: '0', period: 100000, realtimePeriod: 1000, shares: 512, quota: -1, realtimeRuntime: 500 },
        memory: { limit: 67108864, swap: 134217728, reservation: 33554432, kernel: 1073741824, kernelTCP: 1048576 },
        pids: { limit: 10 },
      },
    );
    t.same(resourcesFromFlags({ memory: '-1' }), { memory: { limit: -1, swap: -1 } }, 'unlimited memory: unlimited swap');
    t.same(resourcesFromFlags({ 'pids-limit': '0', 'blkio-weight': '0' }), {}, 'zero means unchanged');
    t.match(
      errorOf(t, () => resourcesFromFlags({ 'cpu-period': 'x' })),
      /invalid value for cpu-period/,
    );
    t.match(
      errorOf(t, () => resourcesFromFlags({ memory: 'lots' })),
      /invalid value for memory: invalid size: 'lots'/,
    );
  });
});

t.test("v1 cpuset: an empty level takes its parent's cpus and mems, a set one keeps its own", async t => {
  const top = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-unit-cpuset-'));
  t.teardown(() => fs.rmSync(top, { recursive: true, force: true }));
  // A cgroupfs stand-in: the root has cpus and mems, a pre-made pod level is empty, the container's own is new.
  const pod = path.join(top, 'pod');
  const ctr = path.join(pod, 'ctr');
  fs.mkdirSync(ctr, { recursive: true });
  const put = (dir: string, cpus: string, mems: string) => {
    fs.writeFileSync(path.join(dir, 'cpuset.cpus'), cpus);
    fs.writeFileSync(path.join(dir, 'cpuset.mems'), mems);
  };
  const get = (dir: string) => ['cpus', 'mems'].map(f => fs.readFileSync(path.join(dir, `cpuset.${f}`), 'utf8').trim());
  put(top, '0-3\n', '0\n');
  put(pod, '\n', '');
  put(ctr, '', '\n');
  t.ok(fillCpuset(pod, top, false) && fillCpuset(ctr, pod, false), 'filled');
  t.same(get(pod), ['0-3', '0'], "the empty pod level took the root's");
  t.same(get(ctr), ['0-3', '0'], 'and passed them down');
  put(ctr, '1', '0');
  t.ok(fillCpuset(ctr, pod, false));
  t.same(get(ctr), ['1', '0'], 'a level that has cpus keeps them');
});

t.test('frozen for a newcomer: the v1 freezer FROZEN or FREEZING, cgroup2 frozen by itself or an ancestor', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-unit-freezer-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const state = (v: string) => fs.writeFileSync(path.join(dir, 'freezer.state'), `${v}\n`);
  for (const [v, frozen] of [
    ['THAWED', false],
    ['FREEZING', true],
    ['FROZEN', true],
  ] as const) {
    state(v);
    t.equal(frozenOrFreezing(dir), frozen, `v1 ${v}`);
  }
  const v2files = (freeze: string, events: string) => {
    fs.writeFileSync(path.join(dir, 'cgroup.freeze'), freeze);
    fs.writeFileSync(path.join(dir, 'cgroup.events'), events);
  };
  v2files('0\n', 'populated 0\nfrozen 0\n');
  t.equal(frozenHereOrAbove(dir), false, 'v2 thawed');
  v2files('1\n', 'populated 0\nfrozen 0\n');
  t.equal(frozenHereOrAbove(dir), true, 'v2 freezing itself (not yet frozen)');
  v2files('0\n', 'populated 0\nfrozen 1\n');
  t.equal(frozenHereOrAbove(dir), true, 'v2 frozen by an ancestor');
});
