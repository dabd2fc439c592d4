// What tsrt says to systemd, as runc's libcontainer/cgroups/systemd: the unit properties for a container's
// resources and annotations (pure, tested byte for byte), which manager to talk to, and SystemdBus, the calls
// made over dbus.ts. The manager that uses them is systemd-manager.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import type { LinuxResources } from '../spec/types.gen.js';
import { blkioToIoWeight, resourceError, sharesToWeight, swapToV2 } from './convert.js';
import { Connection, DBusError, type DBusValue, type Message, type Variant } from './dbus.js';
import { deviceRules } from './devices.js';
import { SLICE, type SystemdUnit } from './systemd-unit.js';
import type { Placement, SystemdAddress } from './types.js';

/** "0-3,8" -> the byte mask systemd's AllowedCPUs/AllowedMemoryNodes take (cpu n is bit n%8 of byte n/8). */
export function rangeToBits(list: string, field: string): Uint8Array {
  const bits: number[] = [];
  for (const part of list
    .split(',')
    .map(s => s.trim())
    .filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
    if (!m || hi < lo || hi > 65535) {
      throw resourceError(field, `invalid list ${JSON.stringify(list)}`);
    }
    for (let n = lo; n <= hi; n++) bits.push(n);
  }
  const out = new Uint8Array(bits.length ? Math.floor(Math.max(...bits) / 8) + 1 : 0);
  for (const n of bits) out[n >> 3]! |= 1 << (n & 7);
  return out;
}

export type Property = [string, Variant];

const prop = (name: string, sig: string, value: DBusValue): Property => [name, { sig, value }];
/** systemd's "infinity" for a limit: the largest uint64. */
const INFINITY = 0xffffffffffffffffn;
const limitOf = (v: number): bigint => (v === -1 ? INFINITY : BigInt(v));

/** Where a controller is served: a v1 hierarchy, or cgroup2. */
const inV1 = (p: Placement, controller: string): boolean => p.v1.has(controller);

/** The device rules as systemd's DevicePolicy/DeviceAllow, as far as an allow-list can say them. */
export function deviceProperties(list: LinuxResources['devices'], procDevices: string): Property[] {
  // /proc/devices: "Character devices:" / "Block devices:" sections of "major name" lines.
  const names = new Map<string, string>();
  let section = '';
  for (const line of procDevices.split('\n')) {
    if (/^Character/.test(line)) section = 'char';
    else if (/^Block/.test(line)) section = 'block';
    const m = /^\s*(\d+)\s+(\S+)$/.exec(line);
    if (m && section) names.set(`${section}:${m[1]}`, m[2]!);
  }
  // Replay the rules in order: an "a" rule resets everything; systemd cannot deny inside an allow-all, and
  // the cgroupfs writes that follow enforce the exact list anyway.
  let allowAll = false;
  let allow = new Map<string, string>();
  for (const r of deviceRules(list)) {
    if (r.type === 'a') {
      allowAll = r.allow;
      allow = new Map();
      continue;
    }
    const kind = r.type === 'c' ? 'char' : 'block';
    let spec: string | undefined;
    if (r.major < 0) spec = `${kind}-*`;
    else if (r.minor < 0) {
      const name = names.get(`${kind}:${r.major}`);
      spec = name ? `${kind}-${name}` : undefined;
    } else spec = `/dev/${kind}/${r.major}:${r.minor}`;
    if (!spec) continue;
    if (r.allow) allow.set(spec, [...new Set((allow.get(spec) ?? '') + r.access)].join(''));
    else allow.delete(spec);
  }
  if (allowAll) return [prop('DevicePolicy', 's', 'auto'), prop('DeviceAllow', 'a(ss)', [])];
  return [
    prop('DevicePolicy', 's', 'strict'),
    prop(
      'DeviceAllow',
      'a(ss)',
      [...allow].map(([k, v]) => [k, v]),
    ),
  ];
}

/** The unit properties for linux.resources (runc's mapping; v1 names where the controller is v1). */
export function resourceProperties(r: LinuxResources | undefined, p: Placement, procDevices: string): Property[] {
  const out: Property[] = [];
  const mem = r?.memory;
  if (mem) {
    const limit = mem.limit ?? 0;
    if (inV1(p, 'memory')) {
      if (limit !== 0) out.push(prop('MemoryLimit', 't', limitOf(limit)));
    } else {
      if (limit !== 0) out.push(prop('MemoryMax', 't', limitOf(limit)));
      if (mem.reservation) out.push(prop('MemoryLow', 't', limitOf(mem.reservation)));
      const swap = swapToV2(mem.swap ?? 0, limit);
      if (swap !== 0) out.push(prop('MemorySwapMax', 't', limitOf(swap)));
    }
  }
  const cpu = r?.cpu;
  if (cpu) {
    if (cpu.shares)
      out.push(inV1(p, 'cpu') ? prop('CPUShares', 't', BigInt(cpu.shares)) : prop('CPUWeight', 't', BigInt(sharesToWeight(cpu.shares))));
    const quota = cpu.quota ?? 0;
    let period = cpu.period ?? 0;
    if (quota !== 0 || period !== 0) {
      if (period !== 0) out.push(prop('CPUQuotaPeriodUSec', 't', BigInt(period)));
      let perSec = INFINITY;
      if (quota > 0) {
        if (period === 0) period = 100000;
        // systemd keeps the quota in 10 ms steps per second: round up so the limit is never tighter.
        perSec = (BigInt(quota) * 1000000n) / BigInt(period);
        if (perSec % 10000n !== 0n) perSec = (perSec / 10000n + 1n) * 10000n;
      }
      out.push(prop('CPUQuotaPerSecUSec', 't', perSec));
    }
    if (cpu.cpus) out.push(prop('AllowedCPUs', 'ay', rangeToBits(cpu.cpus, 'cpu.cpus')));
    if (cpu.mems) out.push(prop('AllowedMemoryNodes', 'ay', rangeToBits(cpu.mems, 'cpu.mems')));
  }
  const pids = r?.pids?.limit;
  if (pids !== undefined && (pids > 0 || pids === -1)) out.push(prop('TasksMax', 't', limitOf(pids)));
  const weight = r?.blockIO?.weight;
  if (weight)
    out.push(inV1(p, 'blkio') ? prop('BlockIOWeight', 't', BigInt(weight)) : prop('IOWeight', 't', BigInt(blkioToIoWeight(weight))));
  if (r?.devices !== undefined) out.push(...deviceProperties(r.devices, procDevices));
  return out;
}

/** Everything StartTransientUnit gets for a container's unit. */
export function unitProperties(
  u: SystemdUnit,
  id: string,
  pid: number,
  r: LinuxResources | undefined,
  p: Placement,
  procDevices: string,
  annotations?: Record<string, string>,
): Property[] {
  const out: Property[] = [prop('Description', 's', `tsrt container ${id}`)];
  if (u.unit.endsWith(SLICE)) {
    out.push(prop('Wants', 'as', [u.slice]));
  } else {
    // The container manages its own sub-cgroups (nested runtimes, systemd inside): systemd stays out of them.
    out.push(prop('Slice', 's', u.slice), prop('Delegate', 'b', true));
  }
  out.push(
    prop('PIDs', 'au', [pid]),
    prop('DefaultDependencies', 'b', false),
    prop('MemoryAccounting', 'b', true),
    prop('CPUAccounting', 'b', true),
    prop(inV1(p, 'blkio') ? 'BlockIOAccounting' : 'IOAccounting', 'b', true),
    prop('TasksAccounting', 'b', true),
  );
  // Devices are listed even without a config list: the default ones every container gets.
  out.push(...resourceProperties({ ...r, devices: r?.devices ?? [] }, p, procDevices));
  out.push(...annotationProperties(annotations));
  return out;
}

const INT_RANGE: Record<string, [bigint, bigint]> = {
  y: [0n, 255n],
  n: [-32768n, 32767n],
  q: [0n, 65535n],
  i: [-2147483648n, 2147483647n],
  u: [0n, 4294967295n],
  x: [-9223372036854775808n, 9223372036854775807n],
  t: [0n, 18446744073709551615n],
};
const TYPE_WORD: Record<string, string> = {
  byte: 'y',
  int16: 'n',
  uint16: 'q',
  int32: 'i',
  uint32: 'u',
  int64: 'x',
  uint64: 't',
  double: 'd',
  boolean: 'b',
  string: 's',
  objectpath: 'o',
};

/**
 * The GVariant text format as runc reads org.systemd.property.* annotations, for the values unit properties
 * take: numbers (int32 unless typed: "uint64 123", "@t 123"), true/false, 'strings', [arrays].
 */
export function parseGVariant(text: string): Variant {
  let pos = 0;
  const fail = (why: string): never => {
    throw new Error(`${why} at offset ${pos} of ${JSON.stringify(text)}`);
  };
  const skip = (): void => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const value = (want: string | undefined): Variant => {
    skip();
    if (text[pos] === '@') {
      const m = /^@([a-z()]+)\s*/.exec(text.slice(pos)) ?? fail('a type after @');
      pos += m[0].length;
      return value(m[1]);
    }
    const word = /^[a-z][a-z0-9]*/.exec(text.slice(pos))?.[0];
    if (word && word in TYPE_WORD && want === undefined) {
      pos += word.length;
      return value(TYPE_WORD[word]);
    }
    if (word === 'true' || word === 'false') {
      if (want !== undefined && want !== 'b') fail(`a ${want}, not a boolean,`);
      pos += word.length;
      return { sig: 'b', value: word === 'true' };
    }
    const c = text[pos];
    if (c === "'" || c === '"') {
      if (want !== undefined && want !== 's' && want !== 'o') fail(`a ${want}, not a string,`);
      let out = '';
      pos++;
      while (text[pos] !== c) {
        if (pos >= text.length) fail('an unterminated string');
        if (text[pos] === '\\') {
          const e = text[++pos];
          out += e === 'n' ? '\n' : e === 't' ? '\t' : (e ?? '');
        } else out += text[pos];
        pos++;
      }
      pos++;
      return { sig: want ?? 's', value: out };
    }
    if (c === '[') {
      if (want !== undefined && want[0] !== 'a') fail(`a ${want}, not an array,`);
      pos++;
      let elem = want?.slice(1);
      const items: DBusValue[] = [];
      for (;;) {
        skip();
        if (text[pos] === ']') break;
        if (items.length) {
          if (text[pos] !== ',') fail('"," or "]"');
          pos++;
        }
        const v = value(elem);
        if (elem !== undefined && v.sig !== elem) fail(`array elements of one type (${elem}, not ${v.sig})`);
        elem = v.sig;
        items.push(v.value);
      }
      pos++;
      if (elem === undefined) fail('a typed empty array (e.g. @as [])');
      return { sig: `a${elem}`, value: elem === 'y' ? Uint8Array.from(items as number[]) : items };
    }
    const num = /^[+-]?(\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+)/.exec(text.slice(pos))?.[0] ?? fail('a value');
    pos += num.length;
    const type = want ?? (/^[+-]?\d+$/.test(num) ? 'i' : 'd');
    if (type === 'd') return { sig: 'd', value: Number(num) };
    const range = INT_RANGE[type] ?? fail(`a ${type}, not a number,`);
    if (!/^[+-]?\d+$/.test(num)) fail(`an integer for ${type}`);
    const big = BigInt(num);
    if (big < range[0] || big > range[1]) fail(`${num} out of range for ${type}`);
    return { sig: type, value: type === 'x' || type === 't' ? big : Number(big) };
  };
  const v = value(undefined);
  skip();
  if (pos !== text.length) fail('the end');
  return v;
}

const PROPERTY_PREFIX = 'org.systemd.property.';

/**
 * runc's org.systemd.property.NAME annotations: extra unit properties, sent after tsrt's own (so they win).
 * A NAME ending in a lowercase letter + "Sec" is given in seconds and sent as NAMEUSec in microseconds.
 */
export function annotationProperties(annotations: Record<string, string> | undefined): Property[] {
  const out: Property[] = [];
  for (const [key, text] of Object.entries(annotations ?? {})) {
    if (!key.startsWith(PROPERTY_PREFIX)) continue;
    let name = key.slice(PROPERTY_PREFIX.length);
    const where = { op: 'config.json', path: `/annotations/${key.replaceAll('~', '~0').replaceAll('/', '~1')}` };
    if (!/^[A-Z][A-Za-z0-9]{2,}$/.test(name)) {
      throw new RuntimeError(
        `annotations: ${key}: ${JSON.stringify(name)} is not a systemd property name (an uppercase letter, then letters and digits)`,
        where,
      );
    }
    let v: Variant;
    try {
      v = parseGVariant(text);
    } catch (e) {
      throw new RuntimeError(`annotations: ${key}: the value is not a GVariant: expected ${(e as Error).message}`, where);
    }
    if (/[a-z]Sec$/.test(name)) {
      if (typeof v.value !== 'number' && typeof v.value !== 'bigint') {
        throw new RuntimeError(`annotations: ${key}: seconds must be a number, not ${JSON.stringify(text)}`, where);
      }
      const usec = typeof v.value === 'bigint' ? v.value * 1000000n : BigInt(Math.round(v.value * 1e6));
      if (usec < 0n) throw new RuntimeError(`annotations: ${key}: seconds must not be negative`, where);
      name = `${name.slice(0, -3)}USec`;
      v = { sig: 't', value: usec };
    }
    out.push([name, v]);
  }
  return out;
}

/**
 * The system manager for root (its private socket, else the system bus), the user's manager on the session
 * bus when unprivileged (runc's systemdUser). TSRT_SYSTEMD_BUS points at another bus: for tests only, with
 * a fake systemd on a private dbus-daemon.
 */
export function systemdAddress(rootless: boolean, env: NodeJS.ProcessEnv = process.env): SystemdAddress {
  if (env.TSRT_SYSTEMD_BUS) return { address: env.TSRT_SYSTEMD_BUS, bus: true };
  if (!rootless) {
    if (fs.existsSync('/run/systemd/private')) return { address: 'unix:path=/run/systemd/private', bus: false };
    return { address: env.DBUS_SYSTEM_BUS_ADDRESS || 'unix:path=/run/dbus/system_bus_socket', bus: true };
  }
  if (env.DBUS_SESSION_BUS_ADDRESS) return { address: env.DBUS_SESSION_BUS_ADDRESS, bus: true };
  if (env.XDG_RUNTIME_DIR) return { address: `unix:path=${path.join(env.XDG_RUNTIME_DIR, 'bus')}`, bus: true };
  throw new RuntimeError('systemd cgroup manager for an unprivileged user: neither $DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR is set', {
    op: 'cgroup',
  });
}

/** Whether systemd runs on this host (runc's check). TSRT_ASSUME_SYSTEMD=1 says yes: for tests only. */
export function systemdRunning(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TSRT_ASSUME_SYSTEMD === '1' || fs.existsSync('/run/systemd/system');
}

const DEST = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const PROPERTIES = 'org.freedesktop.DBus.Properties';
/** How long a job (start, stop) may take; runc waits 30 s too. */
const JOB_TIMEOUT_MS = 30000;

function systemdError(what: string, e: unknown): RuntimeError {
  if (e instanceof DBusError) return new RuntimeError(`systemd: ${what}: ${e.name}: ${e.message}`, { op: 'cgroup' });
  if (e instanceof RuntimeError) return new RuntimeError(`systemd: ${what}: ${e.message}`, { op: 'cgroup', errno: e.errno });
  return new RuntimeError(`systemd: ${what}: ${e instanceof Error ? e.message : String(e)}`, { op: 'cgroup' });
}

/** One connection to systemd's manager for the length of a command. */
export class SystemdBus {
  private constructor(private readonly conn: Connection) {}

  static connect(addr: SystemdAddress): SystemdBus {
    try {
      return new SystemdBus(Connection.open({ address: addr.address, bus: addr.bus }));
    } catch (e) {
      throw systemdError(`connect to ${addr.address}`, e);
    }
  }

  close(): void {
    this.conn.close();
  }

  private manager(member: string, signature: string, body: DBusValue[]): DBusValue[] {
    return this.conn.call({ destination: DEST, path: MANAGER_PATH, interface: MANAGER, member, signature, body });
  }

  private getProperty(objectPath: string, iface: string, name: string): DBusValue {
    const [v] = this.conn.call({
      destination: DEST,
      path: objectPath,
      interface: PROPERTIES,
      member: 'Get',
      signature: 'ss',
      body: [iface, name],
    });
    return (v as Variant).value;
  }

  /** The manager's own cgroup: "/" for the host's pid 1, deeper for a nested or a user manager. */
  managerCgroup(): string {
    try {
      const v = this.getProperty(MANAGER_PATH, MANAGER, 'ControlGroup') as string;
      return v === '' ? '/' : v;
    } catch (e) {
      // A manager too old to say is the host's pid 1, whose root is the hierarchy's root.
      if (e instanceof DBusError && /UnknownProperty|InvalidArgs/.test(e.name)) return '/';
      throw systemdError("read the manager's ControlGroup", e);
    }
  }

  /** Runs a job-returning method and waits for its JobRemoved; anything but "done" is an error. */
  private job(what: string, member: string, signature: string, body: DBusValue[]): void {
    try {
      this.conn.addMatch(`type='signal',sender='${DEST}',path='${MANAGER_PATH}',interface='${MANAGER}',member='JobRemoved'`);
      const [jobPath] = this.manager(member, signature, body);
      const done: Message = this.conn.waitSignal(
        m => m.interface === MANAGER && m.member === 'JobRemoved' && m.body[1] === jobPath,
        JOB_TIMEOUT_MS,
        `${member} job`,
      );
      const result = done.body[3] as string;
      if (result !== 'done') throw new RuntimeError(`job ${String(jobPath)} ended "${result}"`, { op: 'cgroup' });
    } catch (e) {
      throw systemdError(what, e);
    }
  }

  startUnit(unit: string, props: Property[]): void {
    this.job(`start unit ${unit}`, 'StartTransientUnit', 'ssa(sv)a(sa(sv))', [unit, 'replace', props, []]);
  }

  /** Stops the unit; one that is already gone counts as stopped. */
  stopUnit(unit: string): void {
    try {
      this.job(`stop unit ${unit}`, 'StopUnit', 'ss', [unit, 'replace']);
    } catch (e) {
      if (e instanceof RuntimeError && /NoSuchUnit/.test(e.message)) return;
      throw e;
    }
  }

  setUnitProperties(unit: string, props: Property[]): void {
    try {
      this.manager('SetUnitProperties', 'sba(sv)', [unit, true, props]);
    } catch (e) {
      throw systemdError(`set properties of unit ${unit}`, e);
    }
  }

  /** The unit's cgroup, as systemd names it (below its own root). */
  unitCgroup(unit: string): string {
    try {
      const [objectPath] = this.manager('GetUnit', 's', [unit]);
      const iface = unit.endsWith(SLICE) ? 'org.freedesktop.systemd1.Slice' : 'org.freedesktop.systemd1.Scope';
      return this.getProperty(objectPath as string, iface, 'ControlGroup') as string;
    } catch (e) {
      throw systemdError(`read the ControlGroup of unit ${unit}`, e);
    }
  }
}

/** Runs `fn` over one connection to the manager at `addr`, closed whatever happens. */
export function withBus<T>(addr: SystemdAddress, fn: (bus: SystemdBus) => T): T {
  const bus = SystemdBus.connect(addr);
  try {
    return fn(bus);
  } finally {
    bus.close();
  }
}
