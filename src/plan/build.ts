// config.json + host facts -> CreatePlan. Pure: no syscalls, no fs writes; every question about the host goes
// through HostFacts. Every rule a config can break is checked here, before anything is created; the plan holds
// no fds, so it is built before the runtime opens any.
import * as path from 'node:path';
import { SpecError, configError, pointerToken } from '../errors.js';
import type { LinuxIDMapping, LinuxIntelRdt, LinuxNetDevice, Spec } from '../spec/types.gen.js';
import { planDevices } from './devices.js';
import type { HostFacts } from './facts.js';
import { pathViolation, processViolations, refuseConfig, type LimitViolation } from './limits.js';
import { CAPABILITIES, MS, namespaceFlag, RLIMIT } from './linux.js';
import { planMount } from './mounts.js';
import { CONFIG_PROCESS, failIn, planProcessAttributes, type Fail, type ProcessSource } from './process.js';
import { hookTiming } from './hooks.js';
import { planSeccomp } from './seccomp.js';
import {
  PlanFlag,
  planStep,
  type ContainerPlan,
  type CreatePlan,
  type IdMapping,
  type ParentPlan,
  type PlanStep,
  type ProcessPlan,
  type ResctrlPlan,
} from './types.js';

export interface BuildOptions {
  /** Absolute bundle directory. */
  bundle: string;
  /** The rootfs, resolved (realpath) by the caller. */
  rootfs: string;
  /** A terminal's pty master will have somewhere to go: a console socket, or (run) the runtime itself. */
  console: boolean;
  /** create: the init waits on exec.fifo for `start`; run starts it over the sync socket instead. */
  startFifo: boolean;
  preserveFds: number;
  noPivot: boolean;
  noNewKeyring: boolean;
  /** The container's cgroup directory per hierarchy mount point, when the runtime makes one. */
  cgroupDirs?: Record<string, string> | undefined;
}

/** A path inside the container that the spec requires to be absolute, normalised. */
function absoluteIn(pointer: string, p: string): string {
  if (!p.startsWith('/')) throw configError(pointer, `path must be absolute: ${JSON.stringify(p)}`);
  return path.posix.normalize(p);
}

/**
 * Capability names -> a bit mask. R6: an unknown name is an error, never silently dropped; so is a capability
 * this host cannot grant: one the kernel does not know, or, outside a user namespace, one missing from the
 * runtime's own bounding set (capset would refuse it later with a bare EPERM).
 */
function capMask(names: string[] | undefined, at: ProcessSource, lastCap: number, grantable: bigint | undefined): bigint {
  let mask = 0n;
  (names ?? []).forEach((name, i) => {
    const fail = (why: string): never => {
      throw configError(`${at.pointer}/${i}`, why, at.file);
    };
    const bit = CAPABILITIES.indexOf(name as (typeof CAPABILITIES)[number]);
    if (bit < 0) fail(`unknown capability "${name}"`);
    if (bit > lastCap) fail(`${name} is not known to the host's kernel (its last capability is ${CAPABILITIES[lastCap] ?? lastCap})`);
    if (grantable !== undefined && !(grantable & (1n << BigInt(bit)))) {
      fail(`${name} is not in the host's capability bounding set, so the container cannot have it`);
    }
    mask |= 1n << BigInt(bit);
  });
  return mask;
}

/** An interface name the kernel accepts (dev_valid_name): 1-15 bytes, no '/', ':' or whitespace, not . or .. */
function validIfName(name: string): boolean {
  return /^[^/:\s]{1,15}$/.test(name) && Buffer.byteLength(name) <= 15 && name !== '.' && name !== '..';
}

function planNetDevices(
  devices: Record<string, LinuxNetDevice> | undefined,
  facts: HostFacts,
  hasNetns: boolean,
  unprivileged: boolean,
): ParentPlan['netDevices'] {
  const entries = Object.entries(devices ?? {});
  if (entries.length === 0) return undefined;
  if (unprivileged) throw configError('/linux/netDevices', 'moving host network devices needs a root runtime');
  if (!hasNetns) throw configError('/linux/netDevices', "network devices need a network namespace of the container's own");
  const names = new Set<string>();
  return entries.map(([hostName, dev]) => {
    const at = `/linux/netDevices/${pointerToken(hostName)}`;
    if (!validIfName(hostName)) throw configError(at, `invalid host device name ${JSON.stringify(hostName)}`);
    const name = dev?.name || hostName;
    if (!validIfName(name)) throw configError(`${at}/name`, `invalid device name ${JSON.stringify(name)}`);
    if (names.has(name)) throw configError(`${at}/name`, `device name "${name}" is used twice in the container`);
    names.add(name);
    if (!facts.exists(`/sys/class/net/${hostName}`)) throw configError(at, `host network device "${hostName}" does not exist`);
    return { hostName, name };
  });
}

/** linux.intelRdt -> the resctrl group to join. The writes happen in the runtime once the init exists. */
function planIntelRdt(rdt: LinuxIntelRdt, facts: HostFacts, unprivileged: boolean): ResctrlPlan {
  if (!facts.resctrlMountPoint) {
    throw configError('/linux/intelRdt', 'Intel RDT is not supported or not enabled on the host (no resctrl filesystem is mounted)');
  }
  if (unprivileged) throw configError('/linux/intelRdt', 'resctrl groups need a root runtime');
  const closID = rdt.closID || undefined;
  if (closID !== undefined && (closID.includes('/') || closID === '.' || closID === '..' || /\s/.test(closID))) {
    throw configError('/linux/intelRdt/closID', `invalid resctrl group name ${JSON.stringify(closID)}`);
  }
  const schemata: string[] = [];
  const lines = (text: string | undefined, pointer: string, prefix?: { re: RegExp; name: string }) => {
    for (const line of (text ?? '')
      .split('\n')
      .map(l => l.trim())
      .filter(Boolean)) {
      if (prefix && !prefix.re.test(line)) throw configError(pointer, `${JSON.stringify(line)} is not a ${prefix.name} schema line`);
      schemata.push(line);
    }
  };
  lines(rdt.l3CacheSchema, '/linux/intelRdt/l3CacheSchema', { re: /^L3(CODE|DATA)?:/, name: 'L3' });
  lines(rdt.memBwSchema, '/linux/intelRdt/memBwSchema', { re: /^MB:/, name: 'MB' });
  for (const [i, line] of (rdt.schemata ?? []).entries()) lines(line, `/linux/intelRdt/schemata/${i}`);
  const requiredMonFeatures: string[] = [];
  if (rdt.enableCMT) requiredMonFeatures.push('llc_occupancy');
  if (rdt.enableMBM) requiredMonFeatures.push('mbm_total_bytes');
  return {
    mountPoint: facts.resctrlMountPoint,
    closID,
    schemata,
    monitoring: !!(rdt.enableMonitoring || rdt.enableCMT || rdt.enableMBM),
    requiredMonFeatures,
  };
}

function idMappings(list: LinuxIDMapping[] | undefined): IdMapping[] {
  return (list ?? []).map(m => ({ containerID: m.containerID, hostID: m.hostID, size: m.size }));
}

/** Which sysctls a namespace isolates (runc's validator rules). */
function sysctlNamespace(key: string): 'ipc' | 'network' | 'uts' | undefined {
  if (
    /^kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced|sem_next_id|msg_next_id|shm_next_id)$/.test(key) ||
    key.startsWith('fs.mqueue.')
  )
    return 'ipc';
  if (key.startsWith('net.')) return 'network';
  if (key === 'kernel.hostname' || key === 'kernel.domainname') return 'uts';
  return undefined;
}

/** JSON numbers lose precision above 2^53: 2^64-1 (RLIM_INFINITY) arrives as 2^64 and must stay unlimited. */
const RLIM_INFINITY = (1n << 64n) - 1n;
function rlimitValue(v: number): bigint {
  const b = BigInt(v);
  return b >= RLIM_INFINITY ? RLIM_INFINITY : b;
}

function parseTimeOffset(v: { secs?: number; nanosecs?: number } | undefined): [bigint, number] {
  return [BigInt(v?.secs ?? 0), v?.nanosecs ?? 0];
}

type Process = NonNullable<Spec['process']>;

/** R6 for LSM labels: applied or refused, never skipped while the LSM is active, never asked of one that is off. */
export function checkLsmLabels(proc: Process, facts: HostFacts, at: ProcessSource = CONFIG_PROCESS): void {
  if (proc.apparmorProfile && !facts.apparmorEnabled) {
    throw configError(
      `${at.pointer}/apparmorProfile`,
      `apparmor: config provided but apparmor not supported (AppArmor is not enabled on the host; profile ${JSON.stringify(proc.apparmorProfile)})`,
      at.file,
    );
  }
  if (proc.selinuxLabel && !facts.selinuxEnabled) {
    throw configError(
      `${at.pointer}/selinuxLabel`,
      `selinux label is specified in config, but selinux is disabled or not supported (label ${JSON.stringify(proc.selinuxLabel)})`,
      at.file,
    );
  }
}

/**
 * The process half of a plan: identity, capabilities, rlimits, terminal, seccomp and the runtime-spec 1.2
 * attributes, with the plan flags they set. `userns`: the process runs in a user namespace (a new or joined
 * one), where every capability exists. `console`: a terminal's pty master will have somewhere to go.
 */
export function planProcess(
  proc: Process,
  linux: NonNullable<Spec['linux']>,
  facts: HostFacts,
  ctx: { console: boolean; userns: boolean; preserveFds: number; at?: ProcessSource },
): { flags: number; process: ProcessPlan } {
  const at = ctx.at ?? CONFIG_PROCESS;
  const fail: Fail = failIn(at);
  let flags = 0;
  if (proc.terminal) {
    // runc's text.
    if (!ctx.console)
      throw new SpecError('cannot allocate tty if tsrt will detach without setting console socket', `${at.pointer}/terminal`);
    flags |= PlanFlag.terminal;
  }
  if (proc.noNewPrivileges) flags |= PlanFlag.noNewPrivs;
  if (proc.oomScoreAdj !== undefined) {
    // The kernel's OOM_SCORE_ADJ_MIN..MAX: anything else would only fail later, inside the executor.
    if (proc.oomScoreAdj < -1000 || proc.oomScoreAdj > 1000) fail('/oomScoreAdj', `${proc.oomScoreAdj} is outside -1000..1000`);
    flags |= PlanFlag.oomScoreAdj;
  }
  if (proc.user?.umask !== undefined) flags |= PlanFlag.setUmask;

  const rlimits: ProcessPlan['rlimits'] = [];
  const rlimitSeen = new Set<string>();
  (proc.rlimits ?? []).forEach((r, i) => {
    const resource = RLIMIT[r.type];
    if (resource === undefined) fail(`/rlimits/${i}/type`, `unknown rlimit type "${r.type}"`);
    if (rlimitSeen.has(r.type)) fail(`/rlimits/${i}/type`, `duplicate rlimit type "${r.type}"`);
    rlimitSeen.add(r.type);
    const soft = rlimitValue(r.soft);
    const hard = rlimitValue(r.hard);
    if (soft > hard) fail(`/rlimits/${i}`, `${r.type} soft limit ${r.soft} is above the hard limit ${r.hard}`);
    rlimits.push({ resource, soft, hard });
  });
  // The JS runtime raised its own RLIMIT_NOFILE; the container must not inherit that by accident.
  if (!rlimitSeen.has('RLIMIT_NOFILE')) {
    rlimits.push({ resource: RLIMIT['RLIMIT_NOFILE']!, soft: facts.defaultNofile.soft, hard: facts.defaultNofile.hard });
  }

  const c = proc.capabilities ?? {};
  // A new (or joined) user namespace starts with every capability; without one, the host's set is the limit.
  const grantable = ctx.userns ? undefined : facts.capBounding;
  const mask = (field: keyof typeof c) =>
    capMask(c[field], { file: at.file, pointer: `${at.pointer}/capabilities/${field}` }, facts.capLastCap, grantable);
  const caps = {
    bounding: mask('bounding'),
    effective: mask('effective'),
    permitted: mask('permitted'),
    // R8: inheritable stays empty unless the config names it.
    inheritable: mask('inheritable'),
    ambient: mask('ambient'),
  };

  const user = proc.user ?? { uid: 0, gid: 0 };
  return {
    flags,
    process: {
      consoleSize: { rows: proc.consoleSize?.height ?? 0, cols: proc.consoleSize?.width ?? 0 },
      oomScoreAdj: proc.oomScoreAdj ?? 0,
      rlimits,
      caps,
      uid: user.uid ?? 0,
      gid: user.gid ?? 0,
      umask: user.umask ?? 0o022,
      additionalGids: user.additionalGids ?? [],
      cwd: path.posix.normalize(proc.cwd),
      args: proc.args!,
      env: proc.env ?? [],
      preserveFds: ctx.preserveFds,
      // As runc: an exec'd process is held to the container's seccomp profile, whatever -p says.
      seccomp: linux.seccomp ? planSeccomp(linux.seccomp) : undefined,
      ...planProcessAttributes(proc, linux, at),
      apparmorProfile: proc.apparmorProfile || undefined,
      selinuxLabel: proc.selinuxLabel || undefined,
    },
  };
}

export function buildPlan(spec: Spec, facts: HostFacts, opts: BuildOptions): CreatePlan {
  const proc = spec.process;
  if (!proc) throw configError('/process', 'a container needs a process to run');
  if (!proc.args || proc.args.length === 0) throw configError('/process/args', 'args must not be empty');
  if (!path.isAbsolute(proc.cwd)) throw configError('/process/cwd', `cwd property must be an absolute path: ${JSON.stringify(proc.cwd)}`);
  const linux = spec.linux ?? {};
  refuseConfig([
    ...processViolations(proc, facts.execStack ?? RLIM_INFINITY, '/process'),
    pathViolation('/root/path', opts.rootfs),
    ...(linux.namespaces ?? []).map((ns, i) => pathViolation(`/linux/namespaces/${i}/path`, ns.path)),
    ...(linux.maskedPaths ?? []).map((p, i) => pathViolation(`/linux/maskedPaths/${i}`, path.posix.normalize(p))),
    ...(linux.readonlyPaths ?? []).map((p, i) => pathViolation(`/linux/readonlyPaths/${i}`, path.posix.normalize(p))),
    ...(linux.devices ?? []).map((d, i) => pathViolation(`/linux/devices/${i}/path`, path.posix.normalize(d.path))),
  ]);
  const unprivileged = facts.euid !== 0;
  let flags = 0;

  // ---- namespaces ----
  const seen = new Set<string>();
  const join: ContainerPlan['join'] = [];
  let unshareFlags = 0;
  for (const [i, ns] of (linux.namespaces ?? []).entries()) {
    const at = `/linux/namespaces/${i}`;
    if (seen.has(ns.type)) throw configError(`${at}/type`, `duplicate namespace type "${ns.type}"`);
    seen.add(ns.type);
    const flag = namespaceFlag[ns.type];
    if (flag === undefined) throw configError(`${at}/type`, `unknown namespace type "${ns.type}"`);
    if (ns.path) {
      if (!path.isAbsolute(ns.path)) throw configError(`${at}/path`, `${ns.type} namespace path must be absolute: ${ns.path}`);
      if (!facts.exists(ns.path)) throw configError(`${at}/path`, `${ns.type} namespace path ${ns.path} does not exist`);
      join.push({ type: flag, path: ns.path });
      continue;
    }
    switch (ns.type) {
      case 'user':
        flags |= PlanFlag.newUserns;
        break;
      case 'cgroup':
        flags |= PlanFlag.newCgroupns;
        break;
      case 'time':
        flags |= PlanFlag.newTimens;
        break;
      case 'pid':
        flags |= PlanFlag.newPidns;
        unshareFlags |= flag;
        break;
      case 'mount':
        flags |= PlanFlag.newMountns;
        unshareFlags |= flag;
        break;
      default:
        unshareFlags |= flag;
    }
  }
  // Joining the runtime's own namespace by path is no isolation at all: sysctls, names and devices set
  // there would land on the host.
  const hostJoined = (type: string) => join.some(j => j.type === namespaceFlag[type] && facts.isRuntimeNamespace(j.path, type));
  const has = (type: string) => seen.has(type) && !hostJoined(type);
  const newNs = (type: string) => has(type) && !(linux.namespaces ?? []).find(n => n.type === type)?.path;
  // Without a mount namespace of its own the container still gets its rootfs, prepared in the namespace it
  // shares (the runtime's, or one joined by path), as runc and crun do; `delete` unmounts what was mounted
  // in the runtime's.
  if (!newNs('mount')) flags |= PlanFlag.newMountns | PlanFlag.sharedMountns;
  if (newNs('network')) flags |= PlanFlag.loopbackUp;
  const userns = has('user');
  // runc's text.
  if (unprivileged && !userns) throw new SpecError('rootless container requires user namespaces', '/linux/namespaces');

  const uidMappings = idMappings(linux.uidMappings);
  const gidMappings = idMappings(linux.gidMappings);
  if (newNs('user')) {
    if (uidMappings.length === 0 || gidMappings.length === 0) {
      throw configError(
        uidMappings.length === 0 ? '/linux/uidMappings' : '/linux/gidMappings',
        'user namespaces enabled, but no uid or gid mappings found',
      );
    }
  } else if (uidMappings.length || gidMappings.length) {
    throw configError(
      uidMappings.length ? '/linux/uidMappings' : '/linux/gidMappings',
      'uidMappings/gidMappings given without a new user namespace',
    );
  }
  // Root writes any map itself; an unprivileged runtime only its own id, mapped once, and that needs setgroups
  // denied first. Anything else goes through the setuid newuidmap/newgidmap, which keep setgroups usable.
  const direct = (maps: IdMapping[], own: number) => !unprivileged || (maps.length === 1 && maps[0]!.size === 1 && maps[0]!.hostID === own);
  const idMapsDirect = { uid: direct(uidMappings, facts.euid), gid: direct(gidMappings, facts.egid) };
  // A user namespace joined by path may be one whose maps its unprivileged maker wrote (setgroups denied):
  // calling setgroups there would fail, so it is skipped, as runc skips it.
  const joinedUserns = (linux.namespaces ?? []).find(n => n.type === 'user' && n.path)?.path;
  const setgroupsDenied = newNs('user') ? unprivileged && idMapsDirect.gid : !!joinedUserns && facts.setgroupsDenied(joinedUserns);
  if (!setgroupsDenied) flags |= PlanFlag.setgroups;

  const timeOffsets = {
    monotonic: parseTimeOffset(linux.timeOffsets?.['monotonic']),
    boottime: parseTimeOffset(linux.timeOffsets?.['boottime']),
  };
  if (linux.timeOffsets && Object.keys(linux.timeOffsets).length && !newNs('time')) {
    throw configError('/linux/timeOffsets', 'time offsets need a new time namespace');
  }

  // ---- hostname, sysctl ----
  if (spec.hostname !== undefined && spec.hostname !== '') {
    if (!newNs('uts') && !has('uts')) throw configError('/hostname', 'unable to set hostname without a private UTS namespace');
    flags |= PlanFlag.setHostname;
  }
  if (spec.domainname !== undefined && spec.domainname !== '') {
    if (!newNs('uts') && !has('uts')) throw configError('/domainname', 'unable to set domainname without a private UTS namespace');
    flags |= PlanFlag.setDomainname;
  }
  const sysctl: [string, string][] = [];
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) {
    const at = `/linux/sysctl/${pointerToken(key)}`;
    const ns = sysctlNamespace(key);
    if (!ns) throw configError(at, `sysctl "${key}" is not in a separate kernel namespace`);
    if (!has(ns)) throw configError(at, `sysctl "${key}" is not allowed as it conflicts with the host's ${ns} namespace`);
    if (key.includes('/') || key.split('.').some(p => p === '' || p === '..')) throw configError(at, `invalid sysctl key "${key}"`);
    sysctl.push([key.replaceAll('.', '/'), value]);
  }

  checkLsmLabels(proc, facts);
  // Without SELinux a mount label means nothing to the kernel: ignored, as crun and the engines expect.
  const mountLabel = facts.selinuxEnabled && linux.mountLabel ? linux.mountLabel : undefined;
  const intelRdt = linux.intelRdt ? planIntelRdt(linux.intelRdt, facts, unprivileged) : undefined;
  const netDevices = planNetDevices(linux.netDevices, facts, has('network'), unprivileged);

  // ---- rootfs ----
  const steps: PlanStep[] = [];
  const mountCtx = {
    bundle: opts.bundle,
    facts,
    userns,
    newCgroupns: newNs('cgroup'),
    uidMappings,
    gidMappings,
    mountLabel,
    cgroupDirs: opts.cgroupDirs,
    rootfs: opts.rootfs,
  };
  const mounts = spec.mounts ?? [];
  for (const [i, m] of mounts.entries()) {
    // A bind source is looked up on the host while planning: one the kernel cannot take is named first.
    const bind = m.type === 'bind' || (m.options ?? []).some(o => o === 'bind' || o === 'rbind');
    if (bind && m.source) refuseConfig([pathViolation(`/mounts/${i}/source`, path.resolve(opts.bundle, m.source))]);
    const planned = planMount(m, mountCtx);
    refuseConfig(
      planned.flatMap((step): (LimitViolation | undefined)[] => [
        pathViolation(`/mounts/${i}/destination`, step.dest),
        pathViolation(`/mounts/${i}/source`, step.kind === 'bind' ? step.source : step.fallback),
      ]),
    );
    steps.push(...planned);
  }
  const devIsBound = mounts.some(
    m =>
      path.posix.normalize(m.destination) === '/dev' && (m.type === 'bind' || (m.options ?? []).some(o => o === 'bind' || o === 'rbind')),
  );
  // In any user namespace but the initial one mknod is refused: the host's nodes are bound, as runc does.
  if (!devIsBound) steps.push(...planDevices(linux.devices ?? [], userns || !!facts.inUserns));
  if (proc.cwd !== '/') {
    steps.push(planStep('mkdir', path.posix.normalize(proc.cwd)));
  }
  const propagationOf: Record<string, number> = {
    shared: MS.SHARED,
    rshared: MS.SHARED | MS.REC,
    slave: MS.SLAVE,
    rslave: MS.SLAVE | MS.REC,
    private: MS.PRIVATE,
    rprivate: MS.PRIVATE | MS.REC,
    unbindable: MS.UNBINDABLE,
    runbindable: MS.UNBINDABLE | MS.REC,
  };
  const rp = linux.rootfsPropagation;
  // "/" is made a slave (or private) before any mount so nothing propagates back to the host; a shared
  // rootfsPropagation is applied to the new root after pivot_root, where it cannot.
  const rootPropagation = rp && /private/.test(rp) ? MS.PRIVATE | MS.REC : MS.SLAVE | MS.REC;
  const rootfsPropagation = rp ? (propagationOf[rp] ?? 0) : 0;
  if (spec.root?.readonly) flags |= PlanFlag.readonlyRoot;
  if (opts.noPivot) flags |= PlanFlag.noPivot;
  if (!opts.noNewKeyring) flags |= PlanFlag.newKeyring;

  // ---- process, hooks ----
  if (opts.startFifo) flags |= PlanFlag.startFifo;
  const hooks = hookTiming(spec);
  if (hooks.prepivot) flags |= PlanFlag.syncPrepivot;
  const processPlan = planProcess(proc, linux, facts, { console: opts.console, userns, preserveFds: opts.preserveFds });

  const plan: CreatePlan = {
    flags: flags | processPlan.flags,
    container: {
      unshareFlags,
      join,
      timeOffsets,
      rootfs: opts.rootfs,
      rootPropagation,
      rootfsPropagation,
      hostname: spec.hostname || undefined,
      domainname: spec.domainname || undefined,
      steps,
      maskedPaths: (linux.maskedPaths ?? []).map((p, i) => absoluteIn(`/linux/maskedPaths/${i}`, p)),
      readonlyPaths: (linux.readonlyPaths ?? []).map((p, i) => absoluteIn(`/linux/readonlyPaths/${i}`, p)),
      sysctl,
      mountLabel,
    },
    process: processPlan.process,
    parent: { uidMappings, gidMappings, idMapsDirect, netDevices, intelRdt, prestartAtStart: hooks.prestartAtStart },
  };
  withinCodecLimits(plan);
  return plan;
}

/**
 * The plan's strings are C strings, which end at a NUL: a config that would put one inside a value fails here,
 * with the value, instead of as a refused plan after the cgroup is made. (Lengths are the kernel's business:
 * plan/limits.ts.)
 */
export function withinCodecLimits(value: unknown): void {
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
    // The plan no longer knows which field a value came from: no pointer.
    if (value.includes('\u0000')) throw new SpecError(`a value contains a NUL character: ${quoted}`);
  } else if (Array.isArray(value)) {
    for (const v of value) withinCodecLimits(v);
  } else if (value && typeof value === 'object' && !(value instanceof Uint8Array)) {
    for (const v of Object.values(value)) withinCodecLimits(v);
  }
}
