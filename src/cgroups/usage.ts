// A container's usage in runc's stats shape (runc's types.Stats, as `runc events` prints it): each controller
// read from the hierarchy that owns it on this host, with runc's file choices and conversions for v1 and v2.
// Counters are uint64 in the kernel and in runc (an unlimited v1 memory limit is 9223372036854771712), more
// than a double holds exactly, so every counter is a bigint here; goJson() prints them digit for digit.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readText } from './files.js';
import { UNIFIED, type CgroupManager } from './types.js';

export interface MemoryEntry {
  limit: bigint;
  usage?: bigint;
  max?: bigint;
  failcnt: bigint;
}

export interface BlkioEntry {
  major?: bigint;
  minor?: bigint;
  op?: string;
  value?: bigint;
}

export interface RuncStats {
  cpu: {
    usage: { total?: bigint; percpu?: bigint[]; percpu_kernel?: bigint[]; percpu_user?: bigint[]; kernel: bigint; user: bigint };
    throttling: { periods?: bigint; throttledPeriods?: bigint; throttledTime?: bigint };
  };
  cpuset: {
    cpus?: number[];
    cpu_exclusive: bigint;
    mems?: number[];
    mem_hardwall: bigint;
    mem_exclusive: bigint;
    memory_migrate: bigint;
    memory_spread_page: bigint;
    memory_spread_slab: bigint;
    memory_pressure: bigint;
    sched_load_balance: bigint;
    sched_relax_domain_level: bigint;
  };
  memory: {
    cache?: bigint;
    usage: MemoryEntry;
    swap: MemoryEntry;
    kernel: MemoryEntry;
    kernelTCP: MemoryEntry;
    raw?: Record<string, bigint>;
  };
  pids: { current?: bigint; limit?: bigint };
  blkio: Partial<Record<BlkioKey, BlkioEntry[]>>;
  /** Per page size ("2MB"), sorted as Go sorts map keys. */
  hugetlb: Record<string, { usage?: bigint; max?: bigint; failcnt: bigint }>;
  /** Filled in from resctrl (src/runtime/resctrl.ts) for a container with linux.intelRdt. */
  intel_rdt: object;
  network_interfaces: null;
}

type BlkioKey =
  | 'ioServiceBytesRecursive'
  | 'ioServicedRecursive'
  | 'ioQueueRecursive'
  | 'ioServiceTimeRecursive'
  | 'ioWaitTimeRecursive'
  | 'ioMergedRecursive'
  | 'ioTimeRecursive'
  | 'sectorsRecursive';

const MAX_UINT64 = (1n << 64n) - 1n;
const NS_PER_TICK = 10_000_000n; // USER_HZ is 100 on Linux: cpuacct.stat counts 10 ms ticks

/** runc's GetCgroupParamUint: "max" is the largest uint64, a negative number (v1 "-1") is 0. */
function uint(text: string | undefined): bigint | undefined {
  const t = text?.trim();
  if (t === undefined || t === '') return undefined;
  if (t === 'max') return MAX_UINT64;
  if (/^-\d+$/.test(t)) return 0n;
  return /^\d+$/.test(t) ? BigInt(t) : undefined;
}

function int(text: string | undefined): bigint | undefined {
  const t = text?.trim();
  return t !== undefined && /^-?\d+$/.test(t) ? BigInt(t) : undefined;
}

function fileUint(dir: string, file: string): bigint | undefined {
  return uint(readText(path.join(dir, file)));
}

/** "key value" lines (memory.stat, cpu.stat, memory.events) as exact counters. */
function keyedBig(text: string | undefined): Map<string, bigint> {
  const m = new Map<string, bigint>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) m.set(k, BigInt(v));
  }
  return m;
}

/** A cpuset list ("0-3,8") as runc reports it: every cpu or node number. */
export function parseCpuList(text: string | undefined): number[] | undefined {
  const out: number[] = [];
  for (const part of (text ?? '').trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || !Number.isInteger(a)) continue;
    for (let n = a; n <= (b !== undefined && Number.isInteger(b) ? b : a); n++) out.push(n);
  }
  return out.length ? out : undefined;
}

function sortedRecord<T>(entries: Iterable<[string, T]>): Record<string, T> {
  // Go's encoder sorts map keys bytewise; none of these keys is an integer, so insertion order holds in JS.
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function emptyEntry(): MemoryEntry {
  return { limit: 0n, failcnt: 0n };
}

function entry(limit: bigint | undefined, usage: bigint | undefined, max: bigint | undefined, failcnt: bigint | undefined): MemoryEntry {
  // Go's field order, usage and max omitted when zero.
  return { limit: limit ?? 0n, ...(usage ? { usage } : {}), ...(max ? { max } : {}), failcnt: failcnt ?? 0n };
}

/** v1 memory.<module>.{usage_in_bytes,max_usage_in_bytes,failcnt,limit_in_bytes}; a missing module is zeros. */
function v1MemoryEntry(dir: string, module: string): MemoryEntry {
  const prefix = module ? `memory.${module}.` : 'memory.';
  if (!fs.existsSync(path.join(dir, `${prefix}usage_in_bytes`))) return emptyEntry();
  const f = (name: string) => fileUint(dir, prefix + name);
  return entry(f('limit_in_bytes'), f('usage_in_bytes'), f('max_usage_in_bytes'), f('failcnt'));
}

function v1Memory(dir: string): RuncStats['memory'] {
  const raw = keyedBig(readText(path.join(dir, 'memory.stat')));
  const mem: RuncStats['memory'] = {
    usage: v1MemoryEntry(dir, ''),
    swap: v1MemoryEntry(dir, 'memsw'),
    kernel: v1MemoryEntry(dir, 'kmem'),
    kernelTCP: v1MemoryEntry(dir, 'kmem.tcp'),
  };
  return withRaw(mem, raw, raw.get('cache'));
}

function withRaw(mem: RuncStats['memory'], raw: Map<string, bigint>, cache: bigint | undefined): RuncStats['memory'] {
  const out: RuncStats['memory'] = cache ? { cache, ...mem } : mem;
  if (raw.size) out.raw = sortedRecord(raw);
  return out;
}

/** v2 memory.{current,max,peak} and memory.swap.*; swap is reported with memory included, as v1 does. */
function v2Memory(dir: string): RuncStats['memory'] {
  const raw = keyedBig(readText(path.join(dir, 'memory.stat')));
  const failcnt = keyedBig(readText(path.join(dir, 'memory.events'))).get('max');
  const usage = entry(fileUint(dir, 'memory.max'), fileUint(dir, 'memory.current'), fileUint(dir, 'memory.peak'), failcnt);
  let swap = emptyEntry();
  if (fs.existsSync(path.join(dir, 'memory.swap.current'))) {
    const swapLimit = fileUint(dir, 'memory.swap.max') ?? 0n;
    swap = entry(
      swapLimit === MAX_UINT64 ? swapLimit : (swapLimit + usage.limit) & MAX_UINT64,
      (fileUint(dir, 'memory.swap.current') ?? 0n) + (usage.usage ?? 0n),
      fileUint(dir, 'memory.swap.peak'),
      keyedBig(readText(path.join(dir, 'memory.swap.events'))).get('max'),
    );
  }
  return withRaw({ usage, swap, kernel: emptyEntry(), kernelTCP: emptyEntry() }, raw, raw.get('file'));
}

function v1Cpu(cpuacct: string | undefined, cpu: string | undefined): RuncStats['cpu'] {
  const usage: RuncStats['cpu']['usage'] = {} as RuncStats['cpu']['usage'];
  if (cpuacct) {
    const total = fileUint(cpuacct, 'cpuacct.usage');
    if (total) usage.total = total;
    const percpu = (readText(path.join(cpuacct, 'cpuacct.usage_percpu')) ?? '')
      .trim()
      .split(/\s+/)
      .filter(x => /^\d+$/.test(x))
      .map(BigInt);
    if (percpu.length) usage.percpu = percpu;
    // cpuacct.usage_all: a "cpu user system" header, then one line per cpu, in nanoseconds.
    const rows = (readText(path.join(cpuacct, 'cpuacct.usage_all')) ?? '')
      .trim()
      .split('\n')
      .slice(1)
      .map(l => l.trim().split(/\s+/));
    const perMode = rows.filter(r => r.length === 3 && r.every(x => /^\d+$/.test(x)));
    if (perMode.length) {
      usage.percpu_kernel = perMode.map(r => BigInt(r[2]!));
      usage.percpu_user = perMode.map(r => BigInt(r[1]!));
    }
  }
  const st = keyedBig(cpuacct ? readText(path.join(cpuacct, 'cpuacct.stat')) : undefined);
  usage.kernel = (st.get('system') ?? 0n) * NS_PER_TICK;
  usage.user = (st.get('user') ?? 0n) * NS_PER_TICK;
  return { usage, throttling: cpu ? throttling(keyedBig(readText(path.join(cpu, 'cpu.stat'))), 'throttled_time', 1n) : {} };
}

function throttling(st: Map<string, bigint>, timeKey: string, timeScale: bigint): RuncStats['cpu']['throttling'] {
  const t: RuncStats['cpu']['throttling'] = {};
  if (st.get('nr_periods')) t.periods = st.get('nr_periods')!;
  if (st.get('nr_throttled')) t.throttledPeriods = st.get('nr_throttled')!;
  if (st.get(timeKey)) t.throttledTime = st.get(timeKey)! * timeScale;
  return t;
}

/** cgroup2's cpu.stat, in microseconds there; runc reports nanoseconds and no per-cpu figures. */
function v2Cpu(dir: string): RuncStats['cpu'] {
  const st = keyedBig(readText(path.join(dir, 'cpu.stat')));
  const usage: RuncStats['cpu']['usage'] = { kernel: (st.get('system_usec') ?? 0n) * 1000n, user: (st.get('user_usec') ?? 0n) * 1000n };
  const total = (st.get('usage_usec') ?? 0n) * 1000n;
  return { usage: total ? { total, ...usage } : usage, throttling: throttling(st, 'throttled_usec', 1000n) };
}

function v1Cpuset(dir: string | undefined): RuncStats['cpuset'] {
  const f = (name: string) => (dir ? fileUint(dir, `cpuset.${name}`) : undefined) ?? 0n;
  const s = {} as RuncStats['cpuset'];
  const cpus = dir ? parseCpuList(readText(path.join(dir, 'cpuset.cpus'))) : undefined;
  if (cpus) s.cpus = cpus;
  s.cpu_exclusive = f('cpu_exclusive');
  const mems = dir ? parseCpuList(readText(path.join(dir, 'cpuset.mems'))) : undefined;
  if (mems) s.mems = mems;
  s.mem_hardwall = f('mem_hardwall');
  s.mem_exclusive = f('mem_exclusive');
  s.memory_migrate = f('memory_migrate');
  s.memory_spread_page = f('memory_spread_page');
  s.memory_spread_slab = f('memory_spread_slab');
  s.memory_pressure = f('memory_pressure');
  s.sched_load_balance = f('sched_load_balance');
  s.sched_relax_domain_level = (dir ? int(readText(path.join(dir, 'cpuset.sched_relax_domain_level'))) : undefined) ?? 0n;
  return s;
}

function pidsStats(dir: string, processes: () => number[]): RuncStats['pids'] {
  // Without the pids controller (cgroup2 without it enabled) runc counts the cgroup's processes instead.
  const current = fileUint(dir, 'pids.current') ?? BigInt(processes().length);
  const max = fileUint(dir, 'pids.max');
  const p: RuncStats['pids'] = {};
  if (current) p.current = current;
  // "max" (no limit) is 0 in runc's stats.
  if (max && max !== MAX_UINT64) p.limit = max;
  return p;
}

/** One blkio stats file ("maj:min Op value" lines; the "Total" line skipped); undefined when absent or empty. */
function blkioFile(dir: string, file: string): BlkioEntry[] | undefined {
  const text = readText(path.join(dir, file));
  if (text === undefined) return undefined;
  const out: BlkioEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(/[\s:]+/).filter(Boolean);
    // "Total N" closes the file; anything else not "maj:min [Op] value" is not a device line.
    const numbers = fields.length === 4 ? [fields[0], fields[1], fields[3]] : fields;
    if (fields.length < 3 || fields.length > 4 || !numbers.every(f => /^\d+$/.test(f!))) continue;
    const [major, minor] = [BigInt(fields[0]!), BigInt(fields[1]!)];
    const op = fields.length === 4 ? fields[2]! : '';
    const value = BigInt(fields[fields.length === 4 ? 3 : 2]!);
    const e: BlkioEntry = {};
    if (major) e.major = major;
    if (minor) e.minor = minor;
    if (op) e.op = op;
    if (value) e.value = value;
    out.push(e);
  }
  return out.length ? out : undefined;
}

// runc's order of preference: BFQ with its debug files, BFQ, CFQ, then the throttle files (recursive or not).
// A group is used when its first file has entries.
const BLKIO_GROUPS: [string, BlkioKey][][] = [
  [
    ['blkio.bfq.sectors_recursive', 'sectorsRecursive'],
    ['blkio.bfq.io_service_time_recursive', 'ioServiceTimeRecursive'],
    ['blkio.bfq.io_wait_time_recursive', 'ioWaitTimeRecursive'],
    ['blkio.bfq.io_merged_recursive', 'ioMergedRecursive'],
    ['blkio.bfq.io_queued_recursive', 'ioQueueRecursive'],
    ['blkio.bfq.time_recursive', 'ioTimeRecursive'],
    ['blkio.bfq.io_serviced_recursive', 'ioServicedRecursive'],
    ['blkio.bfq.io_service_bytes_recursive', 'ioServiceBytesRecursive'],
  ],
  [
    ['blkio.bfq.io_serviced_recursive', 'ioServicedRecursive'],
    ['blkio.bfq.io_service_bytes_recursive', 'ioServiceBytesRecursive'],
  ],
  [
    ['blkio.sectors_recursive', 'sectorsRecursive'],
    ['blkio.io_service_time_recursive', 'ioServiceTimeRecursive'],
    ['blkio.io_wait_time_recursive', 'ioWaitTimeRecursive'],
    ['blkio.io_merged_recursive', 'ioMergedRecursive'],
    ['blkio.io_queued_recursive', 'ioQueueRecursive'],
    ['blkio.time_recursive', 'ioTimeRecursive'],
    ['blkio.io_serviced_recursive', 'ioServicedRecursive'],
    ['blkio.io_service_bytes_recursive', 'ioServiceBytesRecursive'],
  ],
  [
    ['blkio.throttle.io_serviced_recursive', 'ioServicedRecursive'],
    ['blkio.throttle.io_service_bytes_recursive', 'ioServiceBytesRecursive'],
  ],
  [
    ['blkio.throttle.io_serviced', 'ioServicedRecursive'],
    ['blkio.throttle.io_service_bytes', 'ioServiceBytesRecursive'],
  ],
];
const BLKIO_ORDER: BlkioKey[] = [
  'ioServiceBytesRecursive',
  'ioServicedRecursive',
  'ioQueueRecursive',
  'ioServiceTimeRecursive',
  'ioWaitTimeRecursive',
  'ioMergedRecursive',
  'ioTimeRecursive',
  'sectorsRecursive',
];

function v1Blkio(dir: string): RuncStats['blkio'] {
  const found: RuncStats['blkio'] = {};
  for (const group of BLKIO_GROUPS) {
    const first = blkioFile(dir, group[0]![0]);
    if (!first) continue;
    found[group[0]![1]] = first;
    for (const [file, key] of group.slice(1)) {
      const entries = blkioFile(dir, file);
      if (!entries) break;
      found[key] = entries;
    }
    break;
  }
  const out: RuncStats['blkio'] = {};
  for (const k of BLKIO_ORDER) if (found[k]) out[k] = found[k];
  return out;
}

/** cgroup2's io.stat: bytes and operations per device, as Read and Write entries. */
function v2Io(dir: string): RuncStats['blkio'] {
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  for (const line of (readText(path.join(dir, 'io.stat')) ?? '').split('\n')) {
    const [dev, ...kv] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m) continue;
    for (const pair of kv) {
      const [k, v] = pair.split('=');
      if (v === undefined || !/^\d+$/.test(v)) continue;
      const target = k === 'rbytes' || k === 'wbytes' ? bytes : k === 'rios' || k === 'wios' ? ios : undefined;
      if (!target) continue;
      const e: BlkioEntry = {};
      if (BigInt(m[1]!)) e.major = BigInt(m[1]!);
      if (BigInt(m[2]!)) e.minor = BigInt(m[2]!);
      e.op = k!.startsWith('r') ? 'Read' : 'Write';
      if (BigInt(v)) e.value = BigInt(v);
      target.push(e);
    }
  }
  const out: RuncStats['blkio'] = {};
  if (bytes.length) out.ioServiceBytesRecursive = bytes;
  if (ios.length) out.ioServicedRecursive = ios;
  return out;
}

function hugetlb(dir: string, v2: boolean): RuncStats['hugetlb'] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return {};
  }
  const sizes: [string, RuncStats['hugetlb'][string]][] = [];
  for (const name of names) {
    const m = (v2 ? /^hugetlb\.(\w+)\.current$/ : /^hugetlb\.(\w+)\.usage_in_bytes$/).exec(name);
    if (!m) continue;
    const size = m[1]!;
    const usage = fileUint(dir, name);
    const max = v2 ? undefined : fileUint(dir, `hugetlb.${size}.max_usage_in_bytes`);
    const failcnt = v2 ? keyedBig(readText(path.join(dir, `hugetlb.${size}.events`))).get('max') : fileUint(dir, `hugetlb.${size}.failcnt`);
    sizes.push([size, { ...(usage ? { usage } : {}), ...(max ? { max } : {}), failcnt: failcnt ?? 0n }]);
  }
  return sortedRecord(sizes);
}

/** Where each controller's files are: its v1 hierarchy, or the cgroup2 directory when cgroup2 owns it. */
function locator(m: CgroupManager): {
  v1: (c: string) => string | undefined;
  v2: (c: string) => string | undefined;
  unified: string | undefined;
} {
  const v1Set = new Set(m.record.v1Controllers);
  const v2Set = new Set((m.record.v2Controllers ?? []).filter(c => !v1Set.has(c)));
  const unified = m.dirOf(UNIFIED);
  return {
    v1: c => (v1Set.has(c) ? m.dirOf(c) : undefined),
    v2: c => (v2Set.has(c) && unified ? unified : undefined),
    unified,
  };
}

/** The container's usage as runc's stats document (what `runc events --stats` prints under "data"). */
export function runcStats(m: CgroupManager): RuncStats {
  const at = locator(m);
  const memV1 = at.v1('memory');
  const memV2 = at.v2('memory');
  const memory = memV1
    ? v1Memory(memV1)
    : memV2
      ? v2Memory(memV2)
      : { usage: emptyEntry(), swap: emptyEntry(), kernel: emptyEntry(), kernelTCP: emptyEntry() };
  // cpu.stat is a core cgroup2 file: usage is there even without the cpu controller enabled.
  const cpu =
    at.v1('cpuacct') || at.v1('cpu') ? v1Cpu(at.v1('cpuacct'), at.v1('cpu')) : at.unified ? v2Cpu(at.unified) : v1Cpu(undefined, undefined);
  const pidsDir = at.v1('pids') ?? at.v2('pids') ?? at.unified;
  const blkioV1 = at.v1('blkio');
  const ioV2 = at.v2('io');
  const hugeV1 = at.v1('hugetlb');
  const hugeV2 = at.v2('hugetlb');
  return {
    cpu,
    cpuset: v1Cpuset(at.v1('cpuset')),
    memory,
    pids: pidsDir ? pidsStats(pidsDir, () => m.pids()) : {},
    blkio: blkioV1 ? v1Blkio(blkioV1) : ioV2 ? v2Io(ioV2) : {},
    hugetlb: hugeV1 ? hugetlb(hugeV1, false) : hugeV2 ? hugetlb(hugeV2, true) : {},
    intel_rdt: {},
    network_interfaces: null,
  };
}

/**
 * How many processes the OOM killer has taken in the container's memory cgroup: v1 memory.oom_control and
 * cgroup2 memory.events both count them in "oom_kill". Undefined when the container has no memory cgroup.
 */
export function oomKillCount(m: CgroupManager): bigint | undefined {
  const at = locator(m);
  const v1 = at.v1('memory');
  if (v1) return keyedBig(readText(path.join(v1, 'memory.oom_control'))).get('oom_kill') ?? 0n;
  const v2 = at.v2('memory');
  if (v2) return keyedBig(readText(path.join(v2, 'memory.events'))).get('oom_kill') ?? 0n;
  return undefined;
}

/** Go's encoding/json for these documents: bigints as exact digits, and <, >, & escaped in strings as Go does. */
export function goJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string')
    return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (Array.isArray(value)) return `[${value.map(goJson).join(',')}]`;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (v !== undefined) parts.push(`${goJson(k)}:${goJson(v)}`);
  return `{${parts.join(',')}}`;
}
