// create: a container's plan is built, and checked, before the host is touched; then the state directory,
// the image mount, the cgroup and the fds the plan refers to are made, the executor is spawned and answered
// until the init waits for start. A failure undoes all of it, the last thing made first.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCgroup, placeCgroup } from '../cgroups/manager.js';
import type { CgroupPlacement } from '../cgroups/types.js';
import { systemdRunning } from '../cgroups/systemd.js';
import { RuntimeError, configError, describeErrno } from '../errors.js';
import { native, type SyncMessage } from '../native.js';
import { passwdEntry } from '../passwd.js';
import { buildPlan } from '../plan/build.js';
import { encodePlan } from '../plan/codec.js';
import type { HostFacts } from '../plan/facts.js';
import { CLONE } from '../plan/linux.js';
import { compileSeccomp } from '../plan/seccomp.js';
import { PlanFlag, type CreatePlan } from '../plan/types.js';
import type { Spec } from '../spec/types.gen.js';
import { readConfig } from '../spec/validate.js';
import { runHooks } from './hooks.js';
import { hostFacts } from './host.js';
import { makeIdmapNamespaces, writeIdMaps } from './idmap.js';
import { imageRootfsSource, mountImageRootfs, planImageRootfs, type ImageRootfsRecord, type ImageRootfsSource } from './image-rootfs.js';
import { moveIntoContainer, netnsPinPath } from './netdev.js';
import { writeLifecycleRecord } from './lifecycle-record.js';
import { joinResctrl } from './resctrl.js';
import { Session, Undo, executorError, sendSeccompListener } from './session.js';
import { ContainerDir, OCI_VERSION, ociState, procStat, writeFileAtomic, type ContainerRecord } from './state.js';
import { teardown } from './teardown.js';

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

/** How the init is told to exec its program: create's exec.fifo, or run's sync socket. */
type StartMode = 'fifo' | 'socket';

/** A created container, and the session with its init (which waits for start). */
export interface Launched {
  dir: ContainerDir;
  rec: ContainerRecord;
  session: Session;
}

/**
 * Test-only fault injection (test/robustness/crash.test.ts): TSRT_TEST_CRASH_AT=<point> makes `create` SIGKILL
 * itself at that point, to prove a create killed anywhere leaves nothing that delete --force cannot remove.
 * Without the variable (as in production) this does nothing.
 */
const CRASH_AT = process.env['TSRT_TEST_CRASH_AT'];
function crashPoint(point: string): void {
  if (CRASH_AT === point) process.kill(process.pid, 'SIGKILL');
}

function readSpec(bundle: string): Spec {
  const spec = readConfig(bundle);
  if (!/^1\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(spec.ociVersion)) {
    throw configError('/ociVersion', `unsupported runtime-spec version ${JSON.stringify(spec.ociVersion)} (tsrt implements 1.x)`);
  }
  if (!spec.root?.path) throw configError('/root', 'a root filesystem path is required');
  return spec;
}

function resolveRootfs(bundle: string, spec: Spec): string {
  const rootfs = path.resolve(bundle, spec.root!.path);
  let st: fs.Stats;
  try {
    st = fs.statSync(rootfs);
  } catch (e) {
    throw new RuntimeError(`invalid rootfs: stat ${rootfs}: ${describeErrno((e as NodeJS.ErrnoException).code ?? '') ?? String(e)}`, {
      op: 'rootfs',
      path: rootfs,
    });
  }
  if (!st.isDirectory())
    throw new RuntimeError(`invalid rootfs: ${rootfs}: not a directory`, { op: 'rootfs', path: rootfs, errno: 'ENOTDIR' });
  return fs.realpathSync(rootfs);
}

/** Everything create decides before it makes anything. */
interface Prepared {
  dir: ContainerDir;
  bundle: string;
  spec: Spec;
  rootfs: string;
  /** The image opened (its fd the one thing open before the state dir is made), when the rootfs is one. */
  imageSource?: ImageRootfsSource | undefined;
  imageRootfs?: ImageRootfsRecord | undefined;
  facts: HostFacts;
  rootless: boolean;
  placement?: CgroupPlacement | undefined;
  plan: CreatePlan;
  /** The same plan for another rootfs: an image that could only be unpacked is not where it was planned. */
  planFor: (rootfs: string) => CreatePlan;
  seccompProgram?: Uint8Array | undefined;
}

/**
 * Reads the bundle and the host and plans the container, checking every rule a config can break: an error
 * here leaves no state dir, cgroup, mount or fd behind, since nothing was made yet.
 */
function prepare(opts: CreateOptions, mode: StartMode, wantPty: boolean): Prepared {
  const dir = new ContainerDir(opts.root, opts.id);
  if (dir.exists()) throw new RuntimeError(`container with id exists: ${opts.id}`, { op: 'create' });
  const bundle = path.resolve(opts.bundle);
  const spec = readSpec(bundle);
  const imageSource = imageRootfsSource(bundle, spec);
  try {
    return planContainer(opts, mode, wantPty, dir, bundle, spec, imageSource);
  } catch (e) {
    if (imageSource) fs.closeSync(imageSource.fd);
    throw e;
  }
}

function planContainer(
  opts: CreateOptions,
  mode: StartMode,
  wantPty: boolean,
  dir: ContainerDir,
  bundle: string,
  spec: Spec,
  imageSource: ImageRootfsSource | undefined,
): Prepared {
  const imageRootfs = imageSource ? planImageRootfs(dir.dir, imageSource, !!spec.root?.readonly) : undefined;
  const rootfs = imageRootfs ? imageRootfs.rootfs : resolveRootfs(bundle, spec);
  const facts = hostFacts();
  const rootless = opts.rootless ?? facts.euid !== 0;
  // Where the cgroup will be is known before it is made: its directories are what the cgroup mounts show.
  const placement =
    opts.cgroupManager === 'disabled'
      ? undefined
      : placeCgroup(facts.cgroup, {
          cgroupsPath: spec.linux?.cgroupsPath,
          id: opts.id,
          systemd: opts.cgroupManager === 'systemd',
          systemdRunning: systemdRunning(),
          rootless,
          annotations: spec.annotations ?? undefined,
        });
  const planFor = (root: string) =>
    buildPlan(spec, facts, {
      bundle,
      rootfs: root,
      console: !!opts.consoleSocket || wantPty,
      startFifo: mode === 'fifo',
      preserveFds: opts.preserveFds ?? 0,
      noPivot: !!opts.noPivot,
      noNewKeyring: !!opts.noNewKeyring,
      cgroupDirs: placement ? Object.fromEntries(placement.dirs.map(d => [d.mountPoint, d.dir])) : undefined,
    });
  const plan = planFor(rootfs);
  // libseccomp may still refuse a syscall name the plan could not check.
  const seccompProgram = plan.process.seccomp ? compileSeccomp(plan.process.seccomp, f => native().compileSeccomp(f)) : undefined;
  return { dir, bundle, spec, rootfs, imageSource, imageRootfs, facts, rootless, placement, plan, planFor, seccompProgram };
}

/** The record a new container starts with, marked `creating` until create is done. */
function firstRecord(opts: CreateOptions, p: Prepared): ContainerRecord {
  const { spec, plan } = p;
  return {
    ociVersion: OCI_VERSION,
    id: opts.id,
    pid: 0,
    bundle: p.bundle,
    rootfs: p.rootfs,
    imageRootfs: p.imageRootfs,
    created: new Date().toISOString(),
    owner: p.facts.euid === 0 ? '' : (passwdEntry(p.facts.euid)?.name ?? String(p.facts.euid)),
    annotations: spec.annotations ?? undefined,
    initStartTime: '',
    privatePidns: !!spec.linux?.namespaces?.some(n => n.type === 'pid' && !n.path),
    hooks: spec.hooks,
    prestartAtStart: plan.parent.prestartAtStart,
    rootless: p.rootless,
    sharedMountns: !!(plan.flags & PlanFlag.sharedMountns),
    creating: true,
    exec: {
      process: spec.process,
      linux: {
        seccomp: spec.linux?.seccomp,
        personality: spec.linux?.personality,
        memoryPolicy: spec.linux?.memoryPolicy,
      },
      setgroups: (plan.flags & PlanFlag.setgroups) !== 0,
      noNewKeyring: !!opts.noNewKeyring,
    },
  };
}

/**
 * The `tasks` file of each directory, by directory, for the init to move itself in through: a move of oneself
 * takes no global lock, where our write of its pid to cgroup.procs waits for an RCU grace period (15 to 24 ms
 * on this kind of host).
 */
function openTasksFiles(dirs: string[]): Map<string, number> {
  const files = new Map<string, number>();
  try {
    for (const dir of dirs) files.set(dir, fs.openSync(path.join(dir, 'tasks'), fs.constants.O_WRONLY));
  } catch {
    // Joined by pid as before: the init's own move is an optimisation, never a requirement.
    for (const fd of files.values()) fs.closeSync(fd);
    files.clear();
  }
  return files;
}

/** Creates the container: on return its init waits for start (mode), and the caller holds its lock. */
export function launch(opts: CreateOptions, mode: StartMode, wantPty: boolean): Launched {
  const p = prepare(opts, mode, wantPty);
  const { dir, facts } = p;
  let plan = p.plan;
  const a = native();
  const debug = opts.debug ?? (() => {});
  debug(`create: ${opts.id}: bundle ${p.bundle}, rootfs ${p.rootfs}, ${p.rootless ? 'rootless' : 'as root'}`);
  const undo = new Undo();
  const undoWarn = (m: string) => opts.warn(`cleanup after a failed create: ${m}`);
  // The image's fd is ours until mountImageRootfs takes it.
  let imageFd = p.imageSource?.fd;
  undo.push(() => {
    if (imageFd !== undefined) fs.closeSync(imageFd);
  });
  const rec = firstRecord(opts, p);
  try {
    dir.create();
    crashPoint('dir-made');
    // The record says what has been made, so the undo of a failed create is delete's own teardown.
    undo.push(() => teardown(dir, rec, undoWarn, false));
    // Saved before anything is mounted or made: a create killed from here on leaves what delete needs.
    dir.save(rec);
    crashPoint('record-saved');
    if (p.imageRootfs) {
      const fd = imageFd!;
      imageFd = undefined;
      mountImageRootfs(p.imageRootfs, fd, debug);
      if (p.imageRootfs.rootfs !== rec.rootfs) {
        // Unpacked to a sandbox instead of mounted where it was planned: the same plan, for that directory.
        rec.rootfs = p.imageRootfs.rootfs;
        plan = p.planFor(rec.rootfs);
        dir.save(rec);
      }
    }
    debug(`plan: ${describePlan(plan)}`);
    // Made (and limited) before the init exists; the init joins it before it runs anything of the config.
    const cgroup = p.placement ? createCgroup(facts.cgroup, p.placement, p.spec.linux?.resources) : undefined;
    if (cgroup) {
      rec.cgroup = cgroup.record;
      dir.save(rec);
      crashPoint('cgroup-made');
      // runc's two checks, in its words: a shared cgroup is allowed but worth a warning; a frozen one would stop
      // the init before it ran anything, and create would wait for it for ever.
      const found = cgroup.pids().length;
      if (found) opts.warn(`container's cgroup is not empty: ${found} process(es) found`);
      if (cgroup.frozenForNewcomers()) throw new RuntimeError(FROZEN, { op: 'cgroup' });
      debug(
        `cgroup: ${cgroup.record.dirs.map(d => d.dir).join(', ') || '(none usable)'}${cgroup.record.systemd ? ` (systemd unit ${cgroup.record.systemd.unit})` : ''}`,
      );
    }

    // The fds the plan refers to: the executor's once it is spawned (handOver), ours until then.
    const handOver: number[] = [];
    const peer: number[] = [];
    undo.push(() => {
      for (const fd of [...handOver.splice(0), ...peer.splice(0)]) a.closeFd(fd);
    });
    let consoleFd: number | undefined;
    if (opts.consoleSocket) {
      handOver.push((consoleFd = a.connectUnix(path.resolve(opts.consoleSocket))));
    } else if (wantPty && p.spec.process?.terminal) {
      const [ours, theirs] = a.socketPair();
      peer.push(ours);
      handOver.push((consoleFd = theirs));
    }
    const fifo = mode === 'fifo' ? a.makeFifo(dir.fifoPath, 0o622) : undefined;
    if (fifo !== undefined) handOver.push(fifo);
    const userns = makeIdmapNamespaces(plan);
    handOver.push(...userns.made);
    const selfJoin = openTasksFiles(cgroup && facts.euid === 0 ? cgroup.selfJoinDirs() : []);
    handOver.push(...selfJoin.values());
    const encoded = encodePlan(
      plan,
      {
        // A console socket given for a process without a terminal is connected, as runc does, but not used.
        console: plan.flags & PlanFlag.terminal ? consoleFd : undefined,
        fifo,
        userns: userns.userns,
        cgroupTasks: [...selfJoin.values()],
      },
      p.seccompProgram,
    );
    if (rec.sharedMountns && !plan.container.join.some(j => j.type === CLONE.NEWNS)) {
      // What the executor mounts without a mount namespace of its own stays on the host: delete unmounts it.
      rec.rootfsMountedHere = true;
      dir.save(rec);
    }

    const lost = () => new RuntimeError('unable to start container process: container init exited unexpectedly', { op: 'init' });
    const failed = (m: SyncMessage) => executorError(m, plan.container.steps);
    const session = Session.spawn(encoded, { handOver, peer, errors: { lost, failed }, observe: crashPoint }, undo);
    debug(
      `spawn: executor pid ${session.stagePid}${p.seccompProgram ? `, seccomp program of ${p.seccompProgram.length / 8} instructions` : ''}`,
    );
    // Undone before the session is: a frozen init cannot die, and killing it would wait for ever.
    if (cgroup) {
      undo.push(() => {
        if (rec.pid > 0 && cgroup.frozenForNewcomers()) cgroup.releaseFromFreezer(rec.pid);
      });
    }
    session.untilReady({
      userns: pid => {
        debug(`executor: user namespace made by pid ${pid}: writing its id maps`);
        writeIdMaps(pid, plan);
      },
      pid: pid => {
        debug(`executor: the container init is pid ${pid}`);
        rec.pid = pid;
        rec.initStartTime = procStat(pid)?.startTime ?? '';
        // From here on the init outlives us (it stops dying with its parent before `ready`): delete needs its pid.
        dir.save(rec);
        crashPoint('pid-saved');
        if (cgroup) {
          cgroup.join(pid, new Set(selfJoin.keys()));
          debug(`cgroup: pid ${pid} joined${selfJoin.size ? ` (it moved itself into ${selfJoin.size} v1 hierarchies)` : ''}`);
        }
        const { netDevices, intelRdt } = plan.parent;
        if (netDevices) {
          moveIntoContainer(pid, netDevices, netnsPinPath(dir.dir));
          rec.netDevices = netDevices;
        }
        if (intelRdt) rec.resctrl = joinResctrl(intelRdt, opts.id, pid);
        if (rec.netDevices || rec.resctrl) dir.save(rec);
      },
      prepivot: () => {
        debug('executor: mounts done, waiting before pivot_root for the hooks');
        const state = ociState(rec, 'creating');
        if (!plan.parent.prestartAtStart) runHooks('prestart', p.spec.hooks?.prestart, state, { debug });
        runHooks('createRuntime', p.spec.hooks?.createRuntime, state, { debug });
        // runc runs them from its init with the rootfs as working directory: a relative path stays inside.
        runHooks('createContainer', p.spec.hooks?.createContainer, state, { inside: { pid: rec.pid, cwd: rec.rootfs }, debug });
      },
      mountSource: index => {
        const fd = openMountSource(plan, index, rec.pid, facts.euid === 0);
        debug(`executor: bind source ${plan.container.steps[index]!.source} opened for it by the runtime`);
        return fd;
      },
      seccomp: fd => {
        debug(`executor: seccomp filter loaded; its listener goes to ${plan.process.seccomp?.listener?.path}`);
        sendSeccompListener(plan.process.seccomp?.listener, rec, fd);
      },
      // A cgroup frozen after the check above (by someone else, or by a hook) holds the init where it stands.
      whileWaiting:
        cgroup &&
        (() => {
          if (rec.pid > 0 && cgroup.frozenForNewcomers()) throw new RuntimeError(FROZEN, { op: 'cgroup' });
        }),
    });
    debug(`executor: set-up done, ready to exec ${JSON.stringify(plan.process.args[0] ?? '')} on start`);
    // The pid file first: the record without `creating` is the last write, so a container shows as created
    // only when everything create promises exists.
    crashPoint('before-pid-file');
    if (opts.pidFile) writeFileAtomic(path.resolve(opts.pidFile), String(rec.pid), 0o644);
    crashPoint('before-state');
    delete rec.creating;
    dir.save(rec);
    crashPoint('state-saved');
    writeLifecycleRecord(dir, rec, cgroup);
    undo.clear();
    return { dir, rec, session };
  } catch (e) {
    undo.run(undoWarn);
    throw e;
  }
}

/**
 * The source of bind step `index`, opened O_PATH in the mount namespace of the init (`pid`) with the runtime's
 * credentials: the container's root could not reach it from its user namespace (runc does the same).
 */
function openMountSource(plan: CreatePlan, index: number, pid: number, asRoot: boolean): number {
  const step = plan.container.steps[index];
  if (step?.kind !== 'bind' || !step.source) {
    throw new RuntimeError(
      `unable to start container process: the container init asked for the source of step ${index}, which is no bind mount`,
      { op: 'init' },
    );
  }
  const refused = (code: string, why: string) =>
    new RuntimeError(
      `unable to start container process: error mounting ${JSON.stringify(step.source)} to rootfs at ${JSON.stringify(step.dest)}: ${why}`,
      { op: 'mount', path: step.source, errno: code },
    );
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

/** One line for --debug: what the plan will do. */
function describePlan(plan: CreatePlan): string {
  const { container: c, process: proc } = plan;
  const kinds = new Map<string, number>();
  for (const step of c.steps) kinds.set(step.kind, (kinds.get(step.kind) ?? 0) + 1);
  const steps = [...kinds].map(([k, n]) => `${n} ${k}`).join(', ') || 'none';
  const ns = Object.entries(CLONE)
    .filter(([, bit]) => c.unshareFlags & bit)
    .map(([name]) => (name === 'NEWNS' ? 'mount' : name.slice(3).toLowerCase()));
  if (plan.flags & PlanFlag.newUserns) ns.push('user');
  if (plan.flags & PlanFlag.newCgroupns) ns.push('cgroup');
  if (plan.flags & PlanFlag.newTimens) ns.push('time');
  return (
    `steps: ${steps}; new namespaces: ${[...new Set(ns)].join(' ') || 'none'}; joined: ${c.join.map(j => j.path).join(' ') || 'none'}; ` +
    `user ${proc.uid}:${proc.gid}; ${proc.seccomp ? `seccomp with ${proc.seccomp.filter.rules.length} rules` : 'no seccomp'}; ` +
    `${plan.flags & PlanFlag.noPivot ? 'MS_MOVE + chroot' : plan.flags & PlanFlag.sharedMountns ? 'chroot' : 'pivot_root'}`
  );
}

export function create(opts: CreateOptions): void {
  const { dir, session } = launch(opts, 'fifo', false);
  session.release();
  dir.unlock();
}
