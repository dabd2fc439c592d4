// linux.resources -> the (file, value) writes that apply them (pure). Each resource goes to the hierarchy that
// owns its controller: a v1 hierarchy when the host mounts one for it, else cgroup2 (on this project's hybrid
// host, hugetlb). What the host has is asked through a FileTree, so tests run against a fake one.
import type { LinuxResources, LinuxThrottleDevice } from '../spec/types.gen.js';
import { blkioToIoWeight, resourceError, sharesToWeight, swapToV2 } from './convert.js';
import { UNIFIED, type Placement } from './types.js';

/** The container's cgroup files, by hierarchy: a v1 controller name, or "unified". */
export interface FileTree {
  exists(key: string, file: string): boolean;
  read(key: string, file: string): string | undefined;
}

export interface Write {
  /** A v1 controller name ("memory") or "unified". */
  key: string;
  file: string;
  value: string;
  /** The resource this write applies, for error messages: "memory.limit". */
  resource: string;
  /**
   * The kernel may refuse this value until a later write of the same group lands (a smaller CFS period
   * under the old quota): on EINVAL try it again after the others.
   */
  retryOnEinval?: boolean;
}

export type Where = { kind: 'v1'; key: string } | { kind: 'v2'; key: typeof UNIFIED };

function fail(resource: string, why: string): never {
  throw resourceError(resource, why);
}

/** The hierarchy that owns a controller, or an error naming the resource that needs it. */
export function locate(p: Placement, controller: string, resource: string): Where {
  if (p.v1.has(controller)) return { kind: 'v1', key: controller };
  if (p.v2?.has(controller)) return { kind: 'v2', key: UNIFIED };
  return fail(resource, `the ${controller} cgroup controller is not available on this host`);
}

const maxOr = (v: number): string => (v === -1 ? 'max' : String(v));

/** Page size as the hugetlb files spell it: "2MB", "1GB", "64KB". */
function checkPageSize(s: string, i: number): string {
  if (!/^\d+(KB|MB|GB|TB|PB)$/.test(s))
    fail(`hugepageLimits[${i}].pageSize`, `invalid page size ${JSON.stringify(s)} (want e.g. 2MB or 1GB)`);
  return s;
}

function memoryWrites(r: NonNullable<LinuxResources['memory']>, p: Placement, tree: FileTree, update: boolean): Write[] {
  const w: Write[] = [];
  const has = (k: keyof typeof r) => r[k] !== undefined && r[k] !== null;
  const anyLimit =
    has('limit') ||
    has('reservation') ||
    has('swap') ||
    has('kernel') ||
    has('kernelTCP') ||
    has('swappiness') ||
    r.disableOOMKiller ||
    r.useHierarchy;
  if (!anyLimit) return w;
  const where = locate(p, 'memory', 'memory');
  const limit = r.limit ?? 0;
  let swap = r.swap ?? 0;
  if (r.swappiness !== undefined && r.swappiness !== -1 && (r.swappiness < 0 || r.swappiness > 100)) {
    fail('memory.swappiness', `invalid value ${r.swappiness}: valid memory swappiness range is 0-100`);
  }
  if (where.kind === 'v1') {
    const k = where.key;
    if (limit === -1 && swap === 0 && tree.exists(k, 'memory.memsw.limit_in_bytes')) swap = -1;
    const setLimit = (): void => {
      if (limit !== 0) w.push({ key: k, file: 'memory.limit_in_bytes', value: String(limit), resource: 'memory.limit' });
    };
    const setSwap = (): void => {
      if (swap === 0) return;
      if (!tree.exists(k, 'memory.memsw.limit_in_bytes'))
        fail('memory.swap', 'the host has no swap accounting (memory.memsw.limit_in_bytes)');
      w.push({ key: k, file: 'memory.memsw.limit_in_bytes', value: String(swap), resource: 'memory.swap' });
    };
    // The kernel keeps limit <= memory+swap at every step: raise swap first when growing.
    const current = Number(tree.read(k, 'memory.limit_in_bytes')?.trim() ?? 0);
    if (limit !== 0 && swap !== 0 && (swap === -1 || current < swap)) {
      setSwap();
      setLimit();
    } else {
      setLimit();
      setSwap();
    }
    if (r.reservation) w.push({ key: k, file: 'memory.soft_limit_in_bytes', value: String(r.reservation), resource: 'memory.reservation' });
    // Kernel memory limits are deprecated: written where the host still has the files, skipped (as runc
    // does) where it does not.
    if (r.kernel && tree.exists(k, 'memory.kmem.limit_in_bytes')) {
      w.push({ key: k, file: 'memory.kmem.limit_in_bytes', value: String(r.kernel), resource: 'memory.kernel' });
    }
    if (r.kernelTCP && tree.exists(k, 'memory.kmem.tcp.limit_in_bytes')) {
      w.push({ key: k, file: 'memory.kmem.tcp.limit_in_bytes', value: String(r.kernelTCP), resource: 'memory.kernelTCP' });
    }
    if (r.swappiness !== undefined && r.swappiness !== -1) {
      w.push({ key: k, file: 'memory.swappiness', value: String(r.swappiness), resource: 'memory.swappiness' });
    }
    if (r.disableOOMKiller) w.push({ key: k, file: 'memory.oom_control', value: '1', resource: 'memory.disableOOMKiller' });
    // Kernels since 5.x only have hierarchical accounting; 0 is refused there, so only "on" is written.
    if (r.useHierarchy) w.push({ key: k, file: 'memory.use_hierarchy', value: '1', resource: 'memory.useHierarchy' });
    return w;
  }
  // cgroup2: no kernel memory, swappiness, OOM-killer switch or hierarchy switch exist; runc ignores them too.
  if (update && r.checkBeforeUpdate && limit > 0) {
    const usage = Number(tree.read(UNIFIED, 'memory.current')?.trim() ?? 0);
    if (limit < usage) fail('memory.limit', `rejecting memory limit ${limit} below usage ${usage}`);
  }
  const swapV2 = swapToV2(swap, limit);
  if (swapV2 !== 0) {
    if (!tree.exists(UNIFIED, 'memory.swap.max')) fail('memory.swap', 'the host has no swap accounting (memory.swap.max)');
    w.push({ key: UNIFIED, file: 'memory.swap.max', value: maxOr(swapV2), resource: 'memory.swap' });
  }
  if (limit !== 0) w.push({ key: UNIFIED, file: 'memory.max', value: maxOr(limit), resource: 'memory.limit' });
  if (r.reservation) w.push({ key: UNIFIED, file: 'memory.low', value: maxOr(r.reservation), resource: 'memory.reservation' });
  return w;
}

function cpuWrites(r: NonNullable<LinuxResources['cpu']>, p: Placement, tree: FileTree): Write[] {
  const w: Write[] = [];
  const quota = r.quota ?? 0;
  const period = r.period ?? 0;
  const cfs = r.shares || quota || period || r.burst !== undefined || r.realtimePeriod || r.realtimeRuntime || r.idle !== undefined;
  if (cfs) {
    const where = locate(p, 'cpu', 'cpu');
    if (r.burst !== undefined && quota > 0 && r.burst > quota) fail('cpu.burst', `burst (${r.burst}) must not exceed quota (${quota})`);
    if (where.kind === 'v1') {
      const k = where.key;
      if (r.shares) w.push({ key: k, file: 'cpu.shares', value: String(r.shares), resource: 'cpu.shares' });
      if (period) w.push({ key: k, file: 'cpu.cfs_period_us', value: String(period), resource: 'cpu.period', retryOnEinval: quota !== 0 });
      if (quota) w.push({ key: k, file: 'cpu.cfs_quota_us', value: String(quota), resource: 'cpu.quota' });
      if (r.burst !== undefined && tree.exists(k, 'cpu.cfs_burst_us')) {
        w.push({ key: k, file: 'cpu.cfs_burst_us', value: String(r.burst), resource: 'cpu.burst' });
      }
      if (r.realtimePeriod || r.realtimeRuntime) {
        if (!tree.exists(k, 'cpu.rt_period_us'))
          fail('cpu.realtimePeriod', 'the kernel has no realtime group scheduling (CONFIG_RT_GROUP_SCHED)');
        // runtime <= period must hold after each write: pick the order from the current values.
        const curRuntime = Number(tree.read(k, 'cpu.rt_runtime_us')?.trim() ?? 0);
        const rtPeriod = r.realtimePeriod
          ? { key: k, file: 'cpu.rt_period_us', value: String(r.realtimePeriod), resource: 'cpu.realtimePeriod' }
          : undefined;
        const rtRuntime = r.realtimeRuntime
          ? { key: k, file: 'cpu.rt_runtime_us', value: String(r.realtimeRuntime), resource: 'cpu.realtimeRuntime' }
          : undefined;
        const periodFirst = !r.realtimePeriod || r.realtimePeriod >= curRuntime;
        for (const x of periodFirst ? [rtPeriod, rtRuntime] : [rtRuntime, rtPeriod]) if (x) w.push(x);
      }
      if (r.idle !== undefined) {
        if (!tree.exists(k, 'cpu.idle')) fail('cpu.idle', 'the kernel has no cpu.idle');
        w.push({ key: k, file: 'cpu.idle', value: String(r.idle), resource: 'cpu.idle' });
      }
    } else {
      if (r.realtimePeriod || r.realtimeRuntime) fail('cpu.realtimeRuntime', 'realtime scheduling limits do not exist in cgroup v2');
      if (r.shares) w.push({ key: UNIFIED, file: 'cpu.weight', value: String(sharesToWeight(r.shares)), resource: 'cpu.shares' });
      if (quota || period) {
        const q = quota > 0 ? String(quota) : 'max';
        w.push({ key: UNIFIED, file: 'cpu.max', value: period ? `${q} ${period}` : q, resource: 'cpu.quota' });
      }
      if (r.burst !== undefined) w.push({ key: UNIFIED, file: 'cpu.max.burst', value: String(r.burst), resource: 'cpu.burst' });
      if (r.idle !== undefined) w.push({ key: UNIFIED, file: 'cpu.idle', value: String(r.idle), resource: 'cpu.idle' });
    }
  }
  if (r.cpus || r.mems) {
    const where = locate(p, 'cpuset', 'cpu.cpus');
    const k = where.key;
    if (r.cpus) w.push({ key: k, file: 'cpuset.cpus', value: r.cpus, resource: 'cpu.cpus' });
    if (r.mems) w.push({ key: k, file: 'cpuset.mems', value: r.mems, resource: 'cpu.mems' });
  }
  return w;
}

function blockIOWrites(r: NonNullable<LinuxResources['blockIO']>, p: Placement, tree: FileTree): Write[] {
  const w: Write[] = [];
  const throttles: [keyof typeof r, string, string][] = [
    ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device', 'rbps'],
    ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device', 'wbps'],
    ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device', 'riops'],
    ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device', 'wiops'],
  ];
  const any = r.weight || r.leafWeight || r.weightDevice?.length || throttles.some(([f]) => (r[f] as unknown[] | undefined)?.length);
  if (!any) return w;
  const where = locate(p, p.v1.has('blkio') ? 'blkio' : 'io', 'blockIO');
  if (where.kind === 'v1') {
    const k = where.key;
    // Hosts with BFQ have blkio.bfq.weight instead of blkio.weight (runc picks whichever exists).
    const bfq = !tree.exists(k, 'blkio.weight') && tree.exists(k, 'blkio.bfq.weight');
    const weightFile = bfq ? 'blkio.bfq.weight' : 'blkio.weight';
    const weightDeviceFile = bfq ? 'blkio.bfq.weight_device' : 'blkio.weight_device';
    const need = (file: string, resource: string): void => {
      if (!tree.exists(k, file)) fail(resource, `the host's I/O scheduler has no ${file}`);
    };
    if (r.weight) {
      need(weightFile, 'blockIO.weight');
      w.push({ key: k, file: weightFile, value: String(r.weight), resource: 'blockIO.weight' });
    }
    if (r.leafWeight) {
      need('blkio.leaf_weight', 'blockIO.leafWeight');
      w.push({ key: k, file: 'blkio.leaf_weight', value: String(r.leafWeight), resource: 'blockIO.leafWeight' });
    }
    (r.weightDevice ?? []).forEach((d, i) => {
      if (d.weight) {
        need(weightDeviceFile, `blockIO.weightDevice[${i}].weight`);
        w.push({ key: k, file: weightDeviceFile, value: `${d.major}:${d.minor} ${d.weight}`, resource: `blockIO.weightDevice[${i}]` });
      }
      if (d.leafWeight) {
        need('blkio.leaf_weight_device', `blockIO.weightDevice[${i}].leafWeight`);
        w.push({
          key: k,
          file: 'blkio.leaf_weight_device',
          value: `${d.major}:${d.minor} ${d.leafWeight}`,
          resource: `blockIO.weightDevice[${i}]`,
        });
      }
    });
    for (const [field, file] of throttles) {
      ((r[field] as LinuxThrottleDevice[] | undefined) ?? []).forEach((d, i) => {
        w.push({ key: k, file, value: `${d.major}:${d.minor} ${d.rate ?? 0}`, resource: `blockIO.${field}[${i}]` });
      });
    }
    return w;
  }
  const bfq = tree.exists(UNIFIED, 'io.bfq.weight');
  if (r.weight) {
    w.push(
      bfq
        ? { key: UNIFIED, file: 'io.bfq.weight', value: String(r.weight), resource: 'blockIO.weight' }
        : { key: UNIFIED, file: 'io.weight', value: `default ${blkioToIoWeight(r.weight)}`, resource: 'blockIO.weight' },
    );
  }
  (r.weightDevice ?? []).forEach((d, i) => {
    if (!d.weight) return;
    w.push(
      bfq
        ? { key: UNIFIED, file: 'io.bfq.weight', value: `${d.major}:${d.minor} ${d.weight}`, resource: `blockIO.weightDevice[${i}]` }
        : {
            key: UNIFIED,
            file: 'io.weight',
            value: `${d.major}:${d.minor} ${blkioToIoWeight(d.weight)}`,
            resource: `blockIO.weightDevice[${i}]`,
          },
    );
  });
  for (const [field, , name] of throttles) {
    ((r[field] as LinuxThrottleDevice[] | undefined) ?? []).forEach((d, i) => {
      w.push({ key: UNIFIED, file: 'io.max', value: `${d.major}:${d.minor} ${name}=${d.rate ?? 0}`, resource: `blockIO.${field}[${i}]` });
    });
  }
  return w;
}

function hugetlbWrites(list: NonNullable<LinuxResources['hugepageLimits']>, p: Placement, tree: FileTree): Write[] {
  if (!list.length) return [];
  const where = locate(p, 'hugetlb', 'hugepageLimits');
  const w: Write[] = [];
  list.forEach((h, i) => {
    const size = checkPageSize(h.pageSize, i);
    const [limitFile, rsvdFile] =
      where.kind === 'v1'
        ? [`hugetlb.${size}.limit_in_bytes`, `hugetlb.${size}.rsvd.limit_in_bytes`]
        : [`hugetlb.${size}.max`, `hugetlb.${size}.rsvd.max`];
    if (!tree.exists(where.key, limitFile)) fail(`hugepageLimits[${i}].pageSize`, `the host has no ${size} huge pages (${limitFile})`);
    w.push({ key: where.key, file: limitFile, value: String(h.limit), resource: `hugepageLimits[${i}]` });
    // Reservation accounting, where the kernel has it, is what stops a SIGBUS at fault time.
    if (tree.exists(where.key, rsvdFile))
      w.push({ key: where.key, file: rsvdFile, value: String(h.limit), resource: `hugepageLimits[${i}]` });
  });
  return w;
}

function networkWrites(r: NonNullable<LinuxResources['network']>, p: Placement): Write[] {
  const w: Write[] = [];
  if (r.classID !== undefined && r.classID !== 0) {
    const where = locate(p, 'net_cls', 'network.classID');
    if (where.kind !== 'v1') fail('network.classID', 'net_cls exists only in cgroup v1');
    w.push({ key: where.key, file: 'net_cls.classid', value: String(r.classID), resource: 'network.classID' });
  }
  if (r.priorities?.length) {
    const where = locate(p, 'net_prio', 'network.priorities');
    if (where.kind !== 'v1') fail('network.priorities', 'net_prio exists only in cgroup v1');
    r.priorities.forEach((x, i) => {
      if (!/^[^\s/]+$/.test(x.name)) fail(`network.priorities[${i}].name`, `invalid interface name ${JSON.stringify(x.name)}`);
      w.push({ key: where.key, file: 'net_prio.ifpriomap', value: `${x.name} ${x.priority}`, resource: `network.priorities[${i}]` });
    });
  }
  return w;
}

function rdmaWrites(r: NonNullable<LinuxResources['rdma']>, p: Placement): Write[] {
  const names = Object.keys(r);
  if (!names.length) return [];
  const where = locate(p, 'rdma', 'rdma');
  return names.map(name => {
    const x = r[name]!;
    if (!/^[^\s/]+$/.test(name)) fail('rdma', `invalid device name ${JSON.stringify(name)}`);
    if (x.hcaHandles === undefined && x.hcaObjects === undefined) fail(`rdma.${name}`, 'needs hcaHandles or hcaObjects');
    const parts = [name];
    if (x.hcaHandles !== undefined) parts.push(`hca_handle=${x.hcaHandles}`);
    if (x.hcaObjects !== undefined) parts.push(`hca_object=${x.hcaObjects}`);
    return { key: where.key, file: 'rdma.max', value: parts.join(' '), resource: `rdma.${name}` };
  });
}

const MEMBERSHIP_FILES = new Set(['cgroup.procs', 'cgroup.threads', 'cgroup.kill']);

function unifiedWrites(u: NonNullable<LinuxResources['unified']>, p: Placement): Write[] {
  const keys = Object.keys(u);
  if (!keys.length) return [];
  // runc's text first, for scripts that look for it; then what exactly is wrong.
  const V1 = 'invalid configuration: cannot use unified on cgroup v1';
  if (!p.v2) fail('unified', `${V1} (this host has no cgroup2 hierarchy)`);
  return keys.map(file => {
    if (file.includes('/') || file === '.' || file === '..' || !file.includes('.')) {
      fail('unified', `${JSON.stringify(file)} is not a cgroup2 file name`);
    }
    // Membership and kill files are not resources: a pid written there would pull a host process into the
    // container's cgroup, where delete and kill --all would signal it.
    if (MEMBERSHIP_FILES.has(file)) fail('unified', `${JSON.stringify(file)} moves or kills processes; it is not a resource`);
    const controller = file.slice(0, file.indexOf('.'));
    if (controller !== 'cgroup' && !p.v2!.has(controller)) {
      if (p.v1.has(controller))
        fail('unified', `${V1} (${JSON.stringify(file)}: the host has the ${controller} controller in a v1 hierarchy)`);
      fail('unified', `${JSON.stringify(file)}: the ${controller} controller is not available in the cgroup v2 hierarchy`);
    }
    return { key: UNIFIED, file, value: u[file]!, resource: `unified.${file}` };
  });
}

/** pids.max: a positive limit, "max" for a negative one, nothing for 0 (runc). */
function pidsWrites(r: NonNullable<LinuxResources['pids']>, p: Placement): Write[] {
  if (!r.limit) return [];
  const where = locate(p, 'pids', 'pids.limit');
  return [{ key: where.key, file: 'pids.max', value: r.limit > 0 ? String(r.limit) : 'max', resource: 'pids.limit' }];
}

/** The v2 controllers a set of writes needs enabled in the parents' cgroup.subtree_control. */
export function controllersNeeded(writes: Write[]): string[] {
  const out = new Set<string>();
  for (const w of writes) {
    if (w.key !== UNIFIED) continue;
    const c = w.file.slice(0, w.file.indexOf('.'));
    if (c !== 'cgroup') out.add(c);
  }
  return [...out];
}

/**
 * Every write for `r`, in the order to apply them (devices are separate: see devices.ts). `update` marks a
 * change to a running container (memory.checkBeforeUpdate applies only then).
 */
export function resourceWrites(r: LinuxResources | undefined, p: Placement, tree: FileTree, update = false): Write[] {
  if (!r) return [];
  return [
    ...(r.memory ? memoryWrites(r.memory, p, tree, update) : []),
    ...(r.cpu ? cpuWrites(r.cpu, p, tree) : []),
    ...(r.pids ? pidsWrites(r.pids, p) : []),
    ...(r.blockIO ? blockIOWrites(r.blockIO, p, tree) : []),
    ...(r.hugepageLimits ? hugetlbWrites(r.hugepageLimits, p, tree) : []),
    ...(r.network ? networkWrites(r.network, p) : []),
    ...(r.rdma ? rdmaWrites(r.rdma, p) : []),
    // Last, so an explicit cgroup2 value wins over a converted one (runc's order).
    ...(r.unified ? unifiedWrites(r.unified, p) : []),
  ];
}

/** Merges an update into the resources in force: a field given replaces, a field left out stays. */
export function mergeResources(base: LinuxResources | undefined, change: LinuxResources): LinuxResources {
  const out: LinuxResources = structuredClone(base ?? {});
  for (const [k, v] of Object.entries(change) as [keyof LinuxResources, unknown][]) {
    if (v === undefined || v === null) continue;
    const cur = out[k];
    if (
      cur &&
      typeof cur === 'object' &&
      !Array.isArray(cur) &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      k !== 'unified' &&
      k !== 'rdma'
    ) {
      (out as Record<string, unknown>)[k] = { ...cur, ...(v as object) };
    } else {
      (out as Record<string, unknown>)[k] = structuredClone(v);
    }
  }
  return out;
}
