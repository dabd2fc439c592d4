// Lifecycle over a launch plan: create, start, run, kill, delete. Each operation validates everything it can
// before touching the system, and undoes what it made when it fails.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CgroupManager } from '../cgroups/manager.js';
import { systemdRunning } from '../cgroups/systemd.js';
import { RuntimeError, describeErrno, fromSystemError } from '../errors.js';
import { Msg, native, type ExitStatus, type SyncMessage } from '../native.js';
import { buildPlan } from '../plan/build.js';
import { CLONE } from '../plan/linux.js';
import { encodePlan } from '../plan/codec.js';
import { FILTER_FLAG, compileSeccomp, planSeccomp } from '../plan/seccomp.js';
import { MountFlag, PlanFlag, type IdMapping, type LaunchPlan, type PlanStep } from '../plan/types.js';
import { readConfig } from '../spec/validate.js';
import type { LinuxResources, Spec } from '../spec/types.gen.js';
import { hostFacts, mountsBelow } from './host.js';
import { makeIdmapNamespaces } from './idmap.js';
import { imageRootfsSource, mountImageRootfs, planImageRootfs, unmountImageRootfs } from './image-rootfs.js';
import { moveIntoContainer, netnsPinPath, returnToHost } from './netdev.js';
import { joinResctrl, leaveResctrl } from './resctrl.js';
import { runHooks, runHooksWarning, type InContainer } from './hooks.js';
import { writeLifecycleRecord } from './lifecycle-record.js';
import { parseSignal } from './signals.js';
import {
  TSRT_TEXT_DELETE_NOT_STOPPED, TSRT_TEXT_KILL_ERRNO, TSRT_TEXT_NOT_RUNNING, TSRT_TEXT_START_ALREADY, TSRT_TEXT_START_STOPPED,
} from '../native-abi/abi.gen.js';
import { fill } from '../native-abi/text.js';
import {
  ContainerDir, OCI_VERSION, notExist, ociState, procStat, writeFileAtomic,
  type ContainerRecord, type Status,
} from './state.js';

export interface CreateOptions {
  root: string;
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  preserveFds?: number;
  /** Who manages the cgroup (--cgroup-manager); cgroupfs when not given. */
  cgroupManager?: 'cgroupfs' | 'systemd' | 'disabled';
  /** Cgroups the runtime may not make are done without (--rootless); when not given: unprivileged. */
  rootless?: boolean;
  /** Warnings (failed poststart/poststop hooks) go here. */
  warn: (msg: string) => void;
  /** Debug lines (how an image rootfs was mounted) go here. */
  debug?: (msg: string) => void;
}

/** Executor step ids (native/executor/sync.h) as runc-like phrases. */
const STEP_TEXT = [
  '', 'set up the init process', 'join namespace', 'create user namespace', 'create namespaces',
  'set time namespace offsets', 'fork into the pid namespace', 'set hostname', 'prepare rootfs',
  'error mounting', 'create symlink', 'create device', 'create directory', 'pivot_root', 'set up console',
  'write sysctl', 'make path read-only', 'mask path', 'make rootfs read-only', 'write oom_score_adj',
  'set rlimit', 'set capabilities', 'set additional gids', 'set user', 'chdir to cwd', 'exec',
  'wait for start', 'set no_new_privs', 'load seccomp filter', 'exec', 'create cgroup namespace',
  'set scheduler', 'set io priority', 'set cpu affinity', 'set personality', 'set memory policy',
  'apply LSM label', 'make idmapped mount', 'bring up loopback interface',
];
export const S_EXEC_LOOKUP = 25;
const S_ROOTFS = 8;
const S_MOUNT = 9;
/** Message names for crash points (crashPoint). */
const MSG_NAME: Record<number, string> = Object.fromEntries(Object.entries(Msg).map(([name, type]) => [type, name]));

/**
 * runc's text for proc or sysfs refused on a symlink or a non-directory (R7): the executor names only the
 * destination and the errno, the plan knows the mount. Undefined for any other failure.
 */
function procMountRefusal(m: SyncMessage, steps: PlanStep[]): string | undefined {
  if (!((m.step === S_ROOTFS && m.errname === 'ELOOP') || (m.step === S_MOUNT && (m.errname === 'ELOOP' || m.errname === 'ENOTDIR')))) return undefined;
  const step = steps.find(st => st.kind === 'fs' && st.flags & MountFlag.procOrSys && st.dest === m.detail);
  if (!step) return undefined;
  return `error mounting ${JSON.stringify(step.source ?? step.fstype)} to rootfs at ${JSON.stringify(step.dest)}: ` +
    `filesystem ${JSON.stringify(step.fstype)} must be mounted on ordinary directory`;
}

/** The error an executor reported; `steps`, the plan's, let a refused proc or sysfs mount read as in runc. */
export function executorError(m: SyncMessage, steps: PlanStep[] = []): RuntimeError {
  const reason = describeErrno(m.errname) ?? (m.errname || `errno ${m.err}`);
  let text: string;
  const procRefusal = procMountRefusal(m, steps);
  if (procRefusal) {
    text = `error during container init: ${procRefusal}`;
  } else if (m.step === S_EXEC_LOOKUP) {
    const name = JSON.stringify(m.detail);
    if (m.err === -1) text = `exec: ${name}: executable file not found in $PATH`;
    else if (m.errname === 'ENOENT' || m.errname === 'ENOTDIR') text = `exec: ${name}: stat ${m.detail}: ${reason}`;
    else text = `exec: ${name}: ${reason}`;
  } else {
    const step = STEP_TEXT[m.step] ?? `step ${m.step}`;
    text = `error during container init: ${step} ${JSON.stringify(m.detail)}: ${reason}`;
  }
  return new RuntimeError(`unable to start container process: ${text}`, { op: 'init', path: m.detail, errno: m.errname });
}

function readSpec(bundle: string): Spec {
  const spec = readConfig(bundle);
  if (!/^1\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(spec.ociVersion)) {
    throw new RuntimeError(`config.json: /ociVersion: unsupported runtime-spec version ${JSON.stringify(spec.ociVersion)} (tsrt implements 1.x)`, { op: 'config.json' });
  }
  if (!spec.root?.path) throw new RuntimeError('config.json: /root: a root filesystem path is required', { op: 'config.json' });
  return spec;
}

function resolveRootfs(bundle: string, spec: Spec): string {
  const rootfs = path.resolve(bundle, spec.root!.path);
  let st: fs.Stats;
  try {
    st = fs.statSync(rootfs);
  } catch (e) {
    throw new RuntimeError(`invalid rootfs: stat ${rootfs}: ${describeErrno((e as NodeJS.ErrnoException).code ?? '') ?? String(e)}`, { op: 'rootfs', path: rootfs });
  }
  if (!st.isDirectory()) throw new RuntimeError(`invalid rootfs: ${rootfs}: not a directory`, { op: 'rootfs', path: rootfs, errno: 'ENOTDIR' });
  return fs.realpathSync(rootfs);
}

function formatMap(maps: IdMapping[]): string {
  return maps.map(m => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

/** Writes the new user namespace's maps the way the plan decided: directly, or through newuidmap/newgidmap. */
function writeIdMaps(pid: number, plan: LaunchPlan): void {
  const helper = (tool: string, maps: IdMapping[]) => {
    const args = [String(pid), ...maps.flatMap(m => [String(m.containerID), String(m.hostID), String(m.size)])];
    const r = spawnSync(tool, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.error || r.status !== 0) {
      const why = r.error ? ((r.error as NodeJS.ErrnoException).code === 'ENOENT' ? `${tool} not found (install the uidmap package)` : r.error.message) : r.stderr.toString().trim();
      throw new RuntimeError(`failed to write user namespace mappings with ${tool}: ${why}`, { op: 'userns' });
    }
  };
  const write = (file: string, data: string) => {
    try {
      native().procWrite(pid, file, data);
    } catch (e) {
      throw fromSystemError('write', `/proc/${pid}/${file}`, e);
    }
  };
  if (plan.idMapsDirect.uid) write('uid_map', formatMap(plan.uidMappings));
  else helper('newuidmap', plan.uidMappings);
  if (plan.idMapsDirect.gid) {
    if (!(plan.flags & PlanFlag.setgroups)) write('setgroups', 'deny');
    write('gid_map', formatMap(plan.gidMappings));
  } else {
    helper('newgidmap', plan.gidMappings);
  }
}

interface Launched {
  dir: ContainerDir;
  rec: ContainerRecord;
  spec: Spec;
  initPidfd: number;
  sock: number;
  /** Our end of the in-process console pair (foreground `run` of a terminal container). */
  consolePeer: number;
}

type StartMode = 'fifo' | 'socket';

/**
 * Test-only fault injection (test/robustness/crash.test.ts): TSRT_TEST_CRASH_AT=<point> makes `create` SIGKILL
 * itself at that point, to prove a create killed anywhere leaves nothing that delete --force cannot remove.
 * Without the variable (as in production) this does nothing.
 */
const CRASH_AT = process.env['TSRT_TEST_CRASH_AT'];
function crashPoint(point: string): void {
  if (CRASH_AT === point) process.kill(process.pid, 'SIGKILL');
}

function launch(opts: CreateOptions, mode: StartMode, wantPty: boolean): Launched {
  const dir = new ContainerDir(opts.root, opts.id);
  if (dir.exists()) throw new RuntimeError(`container with id exists: ${opts.id}`, { op: 'create' });
  const bundle = path.resolve(opts.bundle);
  const spec = readSpec(bundle);
  const imageSource = imageRootfsSource(bundle, spec);
  const imageRootfs = imageSource ? planImageRootfs(dir.dir, imageSource, !!spec.root?.readonly) : undefined;
  let rootfs = imageRootfs ? imageRootfs.rootfs : resolveRootfs(bundle, spec);
  const facts = hostFacts();
  const rootless = opts.rootless ?? facts.euid !== 0;
  const fds: number[] = [];
  let consoleFd = -1;
  let consolePeer = -1;
  const a = native();
  const debug = opts.debug ?? (() => {});
  debug(`create: ${opts.id}: bundle ${bundle}, rootfs ${rootfs}, ${rootless ? 'rootless' : 'as root'}`);

  dir.create();
  crashPoint('dir-made');
  let stagePidfd = -1;
  let initPidfd = -1;
  let sock = -1;
  let movedNetDevices: NonNullable<LaunchPlan['netDevices']> | undefined;
  let resctrlJoined: ContainerRecord['resctrl'];
  let cgroup: CgroupManager | undefined;
  const prestartAtStart = precedesPrestartInCreate(spec.ociVersion);
  const rec: ContainerRecord = {
    ociVersion: OCI_VERSION,
    id: opts.id,
    pid: 0,
    bundle,
    rootfs,
    imageRootfs,
    created: new Date().toISOString(),
    owner: ownerName(facts.euid),
    annotations: spec.annotations ?? undefined,
    initStartTime: '',
    privatePidns: !!spec.linux?.namespaces?.some(n => n.type === 'pid' && !n.path),
    hooks: spec.hooks,
    prestartAtStart,
    rootless,
    creating: true,
    exec: {
      process: spec.process,
      linux: {
        seccomp: spec.linux?.seccomp,
        personality: spec.linux?.personality,
        memoryPolicy: spec.linux?.memoryPolicy,
      },
      noNewKeyring: !!opts.noNewKeyring,
    },
  };
  try {
    dir.save(rec);
    crashPoint('record-saved');
    if (imageRootfs) {
      // Recorded (above) before anything is mounted, so delete finds the mounts even after a crash here.
      mountImageRootfs(imageRootfs, imageSource!.fd, opts.debug ?? (() => {}));
      rec.rootfs = rootfs = imageRootfs.rootfs;
      dir.save(rec);
    }
    // Made (and limited) before the init exists; the init joins it before it runs anything of the config.
    if (opts.cgroupManager !== 'disabled') {
      cgroup = CgroupManager.create(facts.cgroup, {
        cgroupsPath: spec.linux?.cgroupsPath, id: opts.id, systemd: opts.cgroupManager === 'systemd',
        systemdRunning: systemdRunning(), rootless,
      }, spec.linux?.resources, rootless, spec.annotations ?? undefined);
      rec.cgroup = cgroup.record;
      dir.save(rec);
      crashPoint('cgroup-made');
      // runc's two checks, in its words: a shared cgroup is allowed but worth a warning; a frozen one would stop
      // the init before it ran anything, and create would wait for it for ever.
      const found = cgroup.pids().length;
      if (found) opts.warn(`container's cgroup is not empty: ${found} process(es) found`);
      if (cgroup.frozenForNewcomers()) throw new RuntimeError(FROZEN, { op: 'cgroup' });
      debug(`cgroup: ${cgroup.record.dirs.map(d => d.dir).join(', ') || '(none usable)'}${cgroup.record.systemd ? ` (systemd unit ${cgroup.record.systemd.unit})` : ''}`);
    }
    if (opts.consoleSocket) {
      consoleFd = a.connectUnix(path.resolve(opts.consoleSocket));
      fds.push(consoleFd);
    } else if (wantPty && spec.process?.terminal) {
      [consolePeer, consoleFd] = a.socketPair();
      fds.push(consoleFd);
    }
    const fifoFd = mode === 'fifo' ? a.makeFifo(dir.fifoPath, 0o622) : -1;
    if (fifoFd >= 0) fds.push(fifoFd);
    const prepivotHooks = !!((!prestartAtStart && spec.hooks?.prestart?.length)
      || spec.hooks?.createRuntime?.length || spec.hooks?.createContainer?.length);
    const plan = buildPlan(spec, facts, {
      bundle, rootfs, consoleSocket: consoleFd, fifoFd, preserveFds: opts.preserveFds ?? 0,
      noPivot: !!opts.noPivot, noNewKeyring: !!opts.noNewKeyring, prepivotHooks,
      cgroupDirs: cgroup ? Object.fromEntries(cgroup.record.dirs.map(d => [d.mountPoint, d.dir])) : undefined,
    });
    rec.sharedMountns = !!(plan.flags & PlanFlag.sharedMountns);
    rec.rootfsMountedHere = rec.sharedMountns && !plan.join.some(j => j.type === CLONE.NEWNS);
    rec.exec!.setgroups = (plan.flags & PlanFlag.setgroups) !== 0;
    debug(`plan: ${describePlan(plan)}`);
    // Saved before anything is mounted: a create killed from here on leaves what delete needs to undo it.
    dir.save(rec);
    fds.push(...makeIdmapNamespaces(plan));
    const seccompProgram = plan.seccomp ? compileSeccomp(plan.seccomp, f => a.compileSeccomp(f)) : undefined;
    const child = a.spawn(encodePlan(plan, seccompProgram));
    stagePidfd = child.pidfd;
    sock = child.sock;
    crashPoint('spawned');
    debug(`spawn: executor pid ${child.pid}${seccompProgram ? `, seccomp program of ${seccompProgram.length / 8} instructions` : ''}`);
    for (const fd of fds) a.closeFd(fd);
    fds.length = 0;

    for (;;) {
      if (cgroup && rec.pid > 0) awaitUnfrozen(sock, cgroup);
      const m = a.recv(sock);
      if (m === null) {
        throw new RuntimeError('unable to start container process: container init exited unexpectedly', { op: 'init' });
      }
      crashPoint(`recv-${MSG_NAME[m.type] ?? m.type}`);
      if (m.fd >= 0 && m.type !== Msg.seccomp) a.closeFd(m.fd);
      if (m.type === Msg.error) throw executorError(m, plan.steps);
      if (m.type === Msg.userns) {
        debug(`executor: user namespace made by pid ${m.pid}: writing its id maps`);
        writeIdMaps(m.pid, plan);
        a.send(sock, Msg.ack);
      } else if (m.type === Msg.pid) {
        debug(`executor: the container init is pid ${m.pid}`);
        rec.pid = m.pid;
        initPidfd = adoptReported(stagePidfd, child.pid, m.pid);
        stagePidfd = -1;
        if (initPidfd < 0) throw new RuntimeError('unable to start container process: container init exited unexpectedly', { op: 'init' });
        rec.initStartTime = procStat(m.pid)?.startTime ?? '';
        // From here on the init outlives us (it stops dying with its parent before `ready`): delete needs its pid.
        dir.save(rec);
        crashPoint('pid-saved');
        cgroup?.join(m.pid);
        if (cgroup) debug(`cgroup: pid ${m.pid} joined`);
        if (plan.netDevices) {
          moveIntoContainer(m.pid, plan.netDevices, netnsPinPath(dir.dir));
          movedNetDevices = plan.netDevices;
          rec.netDevices = plan.netDevices;
        }
        if (plan.intelRdt) rec.resctrl = resctrlJoined = joinResctrl(plan.intelRdt, opts.id, m.pid);
        if (rec.netDevices || rec.resctrl) dir.save(rec);
        a.send(sock, Msg.go);
        crashPoint('go-sent');
      } else if (m.type === Msg.prepivot) {
        debug('executor: mounts done, waiting before pivot_root for the hooks');
        const state = ociState(rec, 'creating');
        if (!prestartAtStart) runHooks('prestart', spec.hooks?.prestart, state, { debug });
        runHooks('createRuntime', spec.hooks?.createRuntime, state, { debug });
        // runc runs them from its init with the rootfs as working directory: a relative path stays inside.
        runHooks('createContainer', spec.hooks?.createContainer, state, { inside: { pid: rec.pid, cwd: rootfs }, debug });
        a.send(sock, Msg.ack);
      } else if (m.type === Msg.mountSource) {
        const fd = openMountSource(plan, m.pid, rec.pid, facts.euid === 0);
        debug(`executor: bind source ${plan.steps[m.pid]!.source} opened for it by the runtime`);
        try {
          a.send(sock, Msg.ack, fd);
        } finally {
          a.closeFd(fd);
        }
      } else if (m.type === Msg.seccomp) {
        debug(`executor: seccomp filter loaded; its listener goes to ${plan.seccomp?.listener?.path}`);
        try {
          sendSeccompListener(plan, rec, m.fd);
        } finally {
          if (m.fd >= 0) a.closeFd(m.fd);
        }
        a.send(sock, Msg.ack);
      } else if (m.type === Msg.ready) {
        debug(`executor: set-up done, ready to exec ${JSON.stringify(plan.args[0] ?? '')} on start`);
        break;
      }
    }
    // The pid file first: the record without `creating` is the last write, so a container shows as created
    // only when everything create promises exists.
    crashPoint('before-pid-file');
    if (opts.pidFile) writeFileAtomic(path.resolve(opts.pidFile), String(rec.pid), 0o644);
    crashPoint('before-state');
    delete rec.creating;
    dir.save(rec);
    crashPoint('state-saved');
    writeLifecycleRecord(dir, rec, cgroup);
    return { dir, rec, spec, initPidfd, sock, consolePeer };
  } catch (e) {
    for (const fd of fds) a.closeFd(fd);
    if (movedNetDevices) returnToHost(netnsPinPath(dir.dir), movedNetDevices).forEach(opts.warn);
    if (resctrlJoined) leaveResctrl(resctrlJoined).forEach(opts.warn);
    if (rec.rootfsMountedHere) unmountRootfs(rootfs, opts.warn);
    if (cgroup && rec.pid > 0 && cgroup.frozenForNewcomers()) cgroup.releaseFromFreezer(rec.pid);
    killAndReap([stagePidfd, initPidfd]);
    if (rec.imageRootfs) unmountImageRootfs(rec.imageRootfs, opts.warn);
    if (sock >= 0) a.closeFd(sock);
    if (consolePeer >= 0) a.closeFd(consolePeer);
    if (cgroup) {
      try {
        // A cgroup we joined but did not make holds other processes: never signal those.
        if (cgroup.ownsCgroup()) cgroup.signalAll(9);
      } catch (ce) {
        opts.warn(`cleanup after a failed create: ${(ce as Error).message}`);
      }
      try {
        // Even when signalling failed: a systemd unit left behind would keep the name taken.
        cgroup.destroy();
      } catch (ce) {
        opts.warn(`cleanup after a failed create: ${(ce as Error).message}`);
      }
    }
    dir.remove();
    throw e;
  }
}

/**
 * The source of bind step `index`, opened O_PATH in the mount namespace of the init (`pid`) with the runtime's
 * credentials: the container's root could not reach it from its user namespace (runc does the same).
 */
function openMountSource(plan: LaunchPlan, index: number, pid: number, asRoot: boolean): number {
  const step = plan.steps[index];
  if (!step || step.kind !== 'bind' || !step.source) {
    throw new RuntimeError(`unable to start container process: the container init asked for the source of step ${index}, which is no bind mount`, { op: 'init' });
  }
  const refused = (code: string, why: string) => new RuntimeError(
    `unable to start container process: error mounting ${JSON.stringify(step.source)} to rootfs at ${JSON.stringify(step.dest)}: ${why}`,
    { op: 'mount', path: step.source, errno: code });
  // An unprivileged runtime can reach no more than the container's root, which it is.
  if (!asRoot) throw refused('EACCES', describeErrno('EACCES')!);
  try {
    return native().openInMountns(pid, step.source);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw refused(code, `open ${step.source}: ${describeErrno(code) ?? (e as Error).message}`);
  }
}

const FROZEN = "container's cgroup unexpectedly frozen";

/**
 * Waits for the executor's next message in slices, looking at the cgroup in between: one frozen after create
 * checked it (by someone else, or by a hook) holds the init where it stands, and the message never comes.
 */
function awaitUnfrozen(sock: number, cgroup: CgroupManager): void {
  while (!native().waitReadable(sock, 250)) {
    if (cgroup.frozenForNewcomers()) throw new RuntimeError(FROZEN, { op: 'cgroup' });
  }
}

/** One line for --debug: what the plan will do. */
function describePlan(plan: LaunchPlan): string {
  const kinds = new Map<string, number>();
  for (const step of plan.steps) kinds.set(step.kind, (kinds.get(step.kind) ?? 0) + 1);
  const steps = [...kinds].map(([k, n]) => `${n} ${k}`).join(', ') || 'none';
  const ns = Object.entries(CLONE).filter(([, bit]) => plan.unshareFlags & bit).map(([name]) => (name === 'NEWNS' ? 'mount' : name.slice(3).toLowerCase()));
  if (plan.flags & PlanFlag.newUserns) ns.push('user');
  if (plan.flags & PlanFlag.newCgroupns) ns.push('cgroup');
  if (plan.flags & PlanFlag.newTimens) ns.push('time');
  return `steps: ${steps}; new namespaces: ${[...new Set(ns)].join(' ') || 'none'}; joined: ${plan.join.map(j => j.path).join(' ') || 'none'}; ` +
    `user ${plan.uid}:${plan.gid}; ${plan.seccomp ? `seccomp with ${plan.seccomp.filter.rules.length} rules` : 'no seccomp'}; ` +
    `${plan.flags & PlanFlag.noPivot ? 'MS_MOVE + chroot' : plan.flags & PlanFlag.sharedMountns ? 'chroot' : 'pivot_root'}`;
}

/**
 * The pidfd of the process the executor reported (MSG_PID), or -1 if it is already gone. When the first stage
 * forked it into a new pid namespace, the first stage exits: it is reaped and its pidfd closed here.
 */
export function adoptReported(stagePidfd: number, stagePid: number, reported: number): number {
  if (reported === stagePid) return stagePidfd;
  const a = native();
  a.wait(stagePidfd);
  a.closeFd(stagePidfd);
  return a.pidfdOpen(reported);
}

/** SIGKILLs, reaps and closes the processes behind these pidfds (-1: none), after a failed create or exec. */
export function killAndReap(pidfds: number[]): void {
  const a = native();
  for (const pidfd of pidfds) {
    if (pidfd < 0) continue;
    a.pidfdSignal(pidfd, 9);
    try {
      a.wait(pidfd);
    } catch {
      /* not our child any more: it is dying anyway */
    }
    a.closeFd(pidfd);
  }
}

/**
 * Whether a config's runtime-spec version puts prestart hooks after `start` is called: 1.0.0 and 1.0.1 say
 * so, 1.0.2 moved them into `create` (before pivot_root). Pre-releases of 1.0.2 (the "1.0.2-dev" that
 * runc's `spec` and runtime-tools write) precede 1.0.2 by semver, so they keep the older timing.
 */
export function precedesPrestartInCreate(ociVersion: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)(-[^+]*)?/.exec(ociVersion);
  if (!m) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (major !== 1 || minor !== 0) return false;
  return patch < 2 || (patch === 2 && m[4] !== undefined);
}

/**
 * The hooks between `start` and the user program: prestart (for pre-1.0.2 configs), then startContainer
 * inside the container. On failure the container is stopped and destroyed, as the spec's lifecycle says.
 */
function runStartHooks(dir: ContainerDir, rec: ContainerRecord, warn: (m: string) => void, debug?: (m: string) => void): void {
  try {
    const state = ociState(rec, 'created');
    if (rec.prestartAtStart) runHooks('prestart', rec.hooks?.prestart, state, { debug });
    if (rec.hooks?.startContainer?.length) {
      runHooks('startContainer', rec.hooks.startContainer, state, { inside: startContainerPlace(rec), debug });
    }
  } catch (e) {
    killAndWait(rec);
    destroy(dir, rec, warn);
    throw e;
  }
}

/**
 * Where runc runs startContainer hooks: from its init, after the seccomp filter is loaded, in the process's
 * working directory. So here: the container's namespaces, that directory, and the same filter (compiled from
 * the profile create recorded; a notification could not be answered, so notifying rules fail with ENOSYS).
 */
function startContainerPlace(rec: ContainerRecord): InContainer {
  const cwd = rec.exec?.process?.cwd ?? '/';
  // Without a mount namespace of its own the init only chroot()ed: joining leaves the hook at the host's /.
  const place: InContainer = { pid: rec.pid, cwd: rec.sharedMountns ? path.join(rec.rootfs, cwd) : cwd };
  const profile = rec.exec?.linux.seccomp;
  if (profile) {
    const plan = planSeccomp(profile);
    place.seccomp = {
      seccomp: Buffer.from(compileSeccomp(plan, f => native().compileSeccomp(f))),
      seccompFlags: plan.flags & ~(FILTER_FLAG.NEW_LISTENER | FILTER_FLAG.WAIT_KILLABLE_RECV),
      noNewPrivs: !!rec.exec?.process?.noNewPrivileges,
    };
  }
  return place;
}

/**
 * The listener fd goes to the agent at listenerPath with the container process state (runtime-spec
 * config-linux.md "seccomp", state.md "ContainerProcessState"), while the container is still being created.
 */
export function sendSeccompListener(plan: LaunchPlan, rec: ContainerRecord, fd: number, status: Status = 'creating'): void {
  const listener = plan.seccomp?.listener;
  if (fd < 0 || !listener) {
    throw new RuntimeError('unable to start container process: unexpected seccomp listener from the container init', { op: 'init' });
  }
  const processState = {
    ociVersion: OCI_VERSION,
    fds: ['seccompFd'],
    pid: rec.pid,
    metadata: listener.metadata || undefined,
    state: ociState(rec, status),
  };
  try {
    native().sendFdTo(listener.path, JSON.stringify(processState), fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    const reason = describeErrno(code) ?? (e as Error).message;
    // runc's texts (Go's dial error inside), which scripts look for.
    const why = (e as NodeJS.ErrnoException).syscall === 'connect'
      ? `failed to connect with seccomp agent specified in the seccomp profile: dial unix ${listener.path}: connect: ${reason}`
      : `cannot send seccomp fd to ${listener.path}: ${reason}`;
    throw new RuntimeError(`unable to start container process: ${why}`, { op: 'seccomp', path: listener.path, errno: code });
  }
}

function ownerName(uid: number): string {
  if (uid === 0) return '';
  try {
    const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find(l => l.split(':')[2] === String(uid));
    return line?.split(':')[0] ?? String(uid);
  } catch {
    return String(uid);
  }
}

export function create(opts: CreateOptions): void {
  const l = launch(opts, 'fifo', false);
  const a = native();
  a.closeFd(l.sock);
  a.closeFd(l.initPidfd);
  l.dir.unlock();
}

/** Opens a pidfd for the container init, refusing a pid that now belongs to another process. */
export function initPidfd(rec: ContainerRecord): number {
  const fd = native().pidfdOpen(rec.pid);
  if (fd < 0) return -1;
  const st = procStat(rec.pid);
  if (!st || st.startTime !== rec.initStartTime) {
    native().closeFd(fd);
    return -1;
  }
  return fd;
}

export function loadLocked(root: string, id: string): { dir: ContainerDir; rec: ContainerRecord; status: Status } {
  const dir = new ContainerDir(root, id);
  if (!dir.exists()) throw notExist();
  dir.lock();
  const rec = dir.load();
  return { dir, rec, status: dir.status(rec) };
}

/**
 * Waits (briefly) until the user's program has replaced the executor and the sealed helper in `pid`: poststart
 * hooks run "after the user-specified process is executed" (config.md), and the exec fifo and the sync socket
 * only say that the last step before exec began. Until then /proc/<pid>/exe is a memfd: the sealed executor,
 * then the sealed helper (or unreadable to an unprivileged runtime, while the init is not dumpable).
 */
function waitForUserExec(pid: number): void {
  const self = fs.readlinkSync('/proc/self/exe');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 2000; i++) {
    let exe = '';
    try {
      exe = fs.readlinkSync(`/proc/${pid}/exe`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // already gone
    }
    if (exe && exe !== self && !exe.startsWith('/memfd:')) return;
    Atomics.wait(pause, 0, 0, 1);
  }
}

export function start(root: string, id: string, warn: (m: string) => void, debug?: (m: string) => void): void {
  const { dir, rec, status } = loadLocked(root, id);
  if (status === 'stopped') throw new RuntimeError(TSRT_TEXT_START_STOPPED, { op: 'start' });
  if (status !== 'created') throw new RuntimeError(fill(TSRT_TEXT_START_ALREADY, status), { op: 'start' });
  runStartHooks(dir, rec, warn, debug);
  const pidfd = initPidfd(rec);
  if (pidfd < 0) throw new RuntimeError(TSRT_TEXT_START_STOPPED, { op: 'start' });
  const result = native().startFifo(dir.fifoPath, pidfd);
  native().closeFd(pidfd);
  if (result !== 'ok') throw new RuntimeError(TSRT_TEXT_START_STOPPED, { op: 'start' });
  fs.rmSync(dir.fifoPath, { force: true });
  if (rec.hooks?.poststart?.length) waitForUserExec(rec.pid);
  runHooksWarning('poststart', rec.hooks?.poststart, ociState(rec, 'running'), warn);
  dir.unlock();
}

export interface RunOptions extends CreateOptions {
  detach?: boolean;
  keep?: boolean;
}

/** create + start in one process; in the foreground, wait and return the container's exit status. */
export function run(opts: RunOptions): ExitStatus {
  const a = native();
  const l = launch(opts, 'socket', !opts.detach);
  try {
    runStartHooks(l.dir, l.rec, opts.warn, opts.debug);
  } catch (e) {
    a.closeFd(l.sock);
    a.closeFd(l.initPidfd);
    throw e;
  }
  a.send(l.sock, Msg.start);
  // The init's end closes at exec (close-on-exec): EOF here means the user process is running; an error
  // message means exec itself failed.
  const m = a.recv(l.sock);
  a.closeFd(l.sock);
  if (m && m.type === Msg.error) {
    try {
      a.wait(l.initPidfd);
    } catch {
      /* already reaped */
    }
    removeCgroup(l.rec, opts.warn);
    releaseHostResources(l.dir, l.rec, opts.warn);
    l.dir.remove();
    throw executorError(m);
  }
  if (l.rec.hooks?.poststart?.length) waitForUserExec(l.rec.pid);
  runHooksWarning('poststart', l.rec.hooks?.poststart, ociState(l.rec, 'running'), opts.warn);
  if (opts.detach) {
    a.closeFd(l.initPidfd);
    l.dir.unlock();
    return { code: 0, signal: 0 };
  }
  l.dir.unlock();
  let status: ExitStatus;
  if (l.consolePeer >= 0) {
    const master = a.recvFd(l.consolePeer);
    a.closeFd(l.consolePeer);
    status = a.ptyProxy(master, l.initPidfd);
    a.closeFd(master);
  } else {
    status = a.waitForeground(l.initPidfd);
  }
  a.closeFd(l.initPidfd);
  if (!opts.keep) destroy(l.dir, l.rec, opts.warn);
  return status;
}

/** Every process in the container's pid namespace (when it has its own), init first. */
export function containerPids(rec: ContainerRecord): number[] {
  if (!rec.privatePidns) return [rec.pid];
  let nsLink: string;
  try {
    nsLink = fs.readlinkSync(`/proc/${rec.pid}/ns/pid`);
  } catch {
    return [rec.pid];
  }
  const pids = [rec.pid];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === rec.pid) continue;
    try {
      if (fs.readlinkSync(`/proc/${name}/ns/pid`) === nsLink) pids.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** The container's cgroup manager, when it has a cgroup that holds its processes. */
export function cgroupOf(rec: ContainerRecord): CgroupManager | undefined {
  return rec.cgroup && rec.cgroup.dirs.length ? CgroupManager.load(rec.cgroup) : undefined;
}

/** The cgroup of a container by id (for ps, events and stats): undefined when it has none. */
export function containerCgroup(root: string, id: string): CgroupManager | undefined {
  const dir = new ContainerDir(root, id);
  if (!dir.exists()) throw notExist();
  return cgroupOf(dir.load());
}

export function kill(root: string, id: string, signal: string, all: boolean): void {
  const sig = parseSignal(signal);
  const { dir, rec, status } = loadLocked(root, id);
  const cgroup = cgroupOf(rec);
  if (status === 'stopped') {
    if (!all) throw new RuntimeError(TSRT_TEXT_NOT_RUNNING, { op: 'kill' });
    // As runc: the init is gone but what it left in the cgroup (daemonized children) still gets the signal.
    if (cgroup?.pids().length) cgroup.signalAll(sig);
    dir.unlock();
    return;
  }
  const a = native();
  if (all && cgroup) {
    // The cgroup holds every process of the container, with or without a pid namespace of its own.
    cgroup.signalAll(sig);
    dir.unlock();
    return;
  }
  const pidfd = initPidfd(rec);
  if (pidfd < 0) throw new RuntimeError(TSRT_TEXT_NOT_RUNNING, { op: 'kill' });
  const r = a.pidfdSignal(pidfd, sig);
  a.closeFd(pidfd);
  const ESRCH = 3;
  if (r === -ESRCH) throw new RuntimeError(TSRT_TEXT_NOT_RUNNING, { op: 'kill' });
  if (r < 0) throw new RuntimeError(fill(TSRT_TEXT_KILL_ERRNO, -r), { op: 'kill' });
  if (all) {
    for (const pid of containerPids(rec).slice(1)) {
      const fd = a.pidfdOpen(pid);
      if (fd >= 0) {
        a.pidfdSignal(fd, sig);
        a.closeFd(fd);
      }
    }
  }
  dir.unlock();
}

/** SIGKILL everything in the container and wait until the init is gone. */
function killAndWait(rec: ContainerRecord): void {
  const a = native();
  const pidfd = initPidfd(rec);
  if (pidfd < 0) return;
  const cgroup = cgroupOf(rec);
  // Only a cgroup we made holds nothing but the container: a pre-existing one given as cgroupsPath may hold
  // other processes, which delete must not touch.
  if (cgroup?.ownsCgroup()) {
    cgroup.signalAll(9);
    a.pidfdExited(pidfd, 10_000);
    a.closeFd(pidfd);
    return;
  }
  for (const pid of containerPids(rec).slice(1)) {
    const fd = a.pidfdOpen(pid);
    if (fd >= 0) {
      a.pidfdSignal(fd, 9);
      a.closeFd(fd);
    }
  }
  a.pidfdSignal(pidfd, 9);
  // A paused container's init cannot die frozen in a v1 freezer.
  if (cgroup?.isFrozen()) cgroup.setFrozen(false);
  a.pidfdExited(pidfd, 10_000);
  a.closeFd(pidfd);
}

/** Gives back what the container took from the host outside its state directory: devices, resctrl groups. */
function releaseHostResources(dir: ContainerDir, rec: ContainerRecord, warn: (m: string) => void): void {
  // The pinned network namespace outlives the init: its devices go home now, whether it exited or was killed.
  if (rec.netDevices) returnToHost(netnsPinPath(dir.dir), rec.netDevices).forEach(warn);
  if (rec.resctrl) leaveResctrl(rec.resctrl).forEach(warn);
  if (rec.rootfsMountedHere) unmountRootfs(rec.rootfs, warn);
  if (rec.imageRootfs) unmountImageRootfs(rec.imageRootfs, warn);
}

/** What a container without a mount namespace mounted on its rootfs stays on the host until taken down here. */
function unmountRootfs(rootfs: string, warn: (m: string) => void): void {
  for (const point of mountsBelow(rootfs)) {
    try {
      native().unmount(point);
    } catch (e) {
      warn((e as Error).message);
    }
  }
}

/** Kills what is left in the container's cgroup and removes the directories create made. */
function removeCgroup(rec: ContainerRecord, warn: (m: string) => void): void {
  if (!rec.cgroup) return;
  const cgroup = CgroupManager.load(rec.cgroup);
  try {
    if (cgroup.ownsCgroup() && cgroup.pids().length) cgroup.signalAll(9);
    cgroup.destroy();
  } catch (e) {
    warn((e as Error).message);
  }
}

/**
 * A library caller is the parent of the inits it created (the CLI exits and leaves them to pid 1): an init
 * that has exited stays a zombie until its parent reaps it.
 */
function reapInit(rec: ContainerRecord): void {
  const st = rec.pid > 0 ? procStat(rec.pid) : undefined;
  if (!st || st.state !== 'Z' || st.ppid !== process.pid || st.startTime !== rec.initStartTime) return;
  const pidfd = native().pidfdOpen(rec.pid);
  if (pidfd < 0) return;
  try {
    native().wait(pidfd);
  } catch {
    /* reaped meanwhile */
  }
  native().closeFd(pidfd);
}

function destroy(dir: ContainerDir, rec: ContainerRecord, warn: (m: string) => void): void {
  reapInit(rec);
  removeCgroup(rec, warn);
  releaseHostResources(dir, rec, warn);
  runHooksWarning('poststop', rec.hooks?.poststop, ociState(rec, 'stopped'), warn);
  dir.remove();
}

export function remove(root: string, id: string, force: boolean, warn: (m: string) => void): void {
  const dir = new ContainerDir(root, id);
  if (!dir.exists() && !dir.settleWithoutRecord()) {
    if (force) return;
    throw notExist();
  }
  // The lock is taken on `dir` itself, which destroy() releases: a library caller must not keep its fd.
  let rec: ContainerRecord;
  try {
    dir.lock();
    rec = dir.load();
  } catch (e) {
    dir.unlock();
    // Removed by the command that held the lock before us.
    if (force && e instanceof RuntimeError && e.errno === 'ENOENT') return;
    throw e;
  }
  const status = dir.status(rec);
  if (rec.creating) {
    // A create that died half-way: its init (when it got that far) may still wait on the fifo, and may not be
    // in the cgroup yet. It has not exec'd, so it has no children: killing it alone is enough.
    const pidfd = rec.pid > 0 ? initPidfd(rec) : -1;
    if (pidfd >= 0) {
      native().pidfdSignal(pidfd, 9);
      native().pidfdExited(pidfd, 10_000);
      native().closeFd(pidfd);
    }
  } else if (status === 'running' || status === 'paused') {
    if (!force) throw new RuntimeError(fill(TSRT_TEXT_DELETE_NOT_STOPPED, id, status), { op: 'delete' });
    killAndWait(rec);
  } else if (status === 'created') {
    // The spec wants an error here; engines always follow with `delete --force`, which still works.
    if (!force) throw new RuntimeError(fill(TSRT_TEXT_DELETE_NOT_STOPPED, id, 'created'), { op: 'delete' });
    killAndWait(rec);
  }
  destroy(dir, rec, warn);
}

export function state(root: string, id: string): Record<string, unknown> {
  const dir = new ContainerDir(root, id);
  if (!dir.exists()) throw notExist();
  const rec = dir.load();
  return ociState(rec, dir.status(rec));
}

function frozenCgroup(rec: ContainerRecord, verb: string): CgroupManager {
  const cgroup = cgroupOf(rec);
  if (!cgroup?.canFreeze()) {
    throw new RuntimeError(`cannot ${verb} container ${rec.id}: it has no freezer cgroup${rec.rootless ? ' (unprivileged, without a delegated cgroup)' : ''}`, { op: verb });
  }
  return cgroup;
}

/** Freezes every process of a created or running container. */
export function pause(root: string, id: string): void {
  const { dir, rec, status } = loadLocked(root, id);
  if (status !== 'running' && status !== 'created') throw new RuntimeError('container not running', { op: 'pause' });
  frozenCgroup(rec, 'pause').setFrozen(true);
  dir.unlock();
}

/** Thaws a paused container. */
export function resume(root: string, id: string): void {
  const { dir, rec, status } = loadLocked(root, id);
  if (status !== 'paused') throw new RuntimeError('container not paused', { op: 'resume' });
  frozenCgroup(rec, 'resume').setFrozen(false);
  dir.unlock();
}

/** Changes the resources of a live container; what is not given stays as it is. */
export function update(root: string, id: string, change: LinuxResources): void {
  const { dir, rec, status } = loadLocked(root, id);
  if (status === 'stopped') throw new RuntimeError('container not running', { op: 'update' });
  const cgroup = cgroupOf(rec);
  if (!cgroup) {
    throw new RuntimeError(`cannot update container ${id}: it has no cgroup${rec.rootless ? ' (unprivileged, without a delegated cgroup)' : ''}`, { op: 'update' });
  }
  cgroup.update(change);
  rec.cgroup = cgroup.record;
  dir.save(rec);
  dir.unlock();
}
