// create: a container's plan is built, and checked, before the host is touched; then the state directory,
// the image mount, the cgroup and the fds the plan refers to are made, the executor is spawned and answered
// until the init waits for start. A failure undoes all of it, the last thing made first.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CgroupManager, type CgroupPlacement } from '../cgroups/manager.js';
import { systemdRunning } from '../cgroups/systemd.js';
import { RuntimeError, configError, describeErrno } from '../errors.js';
import { native } from '../native.js';
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
import { imageRootfsSource, mountImageRootfs, planImageRootfs, type ImageRootfsRecord } from './image-rootfs.js';
import { moveIntoContainer, netnsPinPath } from './netdev.js';
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
    throw new RuntimeError(`invalid rootfs: stat ${rootfs}: ${describeErrno((e as NodeJS.ErrnoException).code ?? '') ?? String(e)}`, { op: 'rootfs', path: rootfs });
  }
  if (!st.isDirectory()) throw new RuntimeError(`invalid rootfs: ${rootfs}: not a directory`, { op: 'rootfs', path: rootfs, errno: 'ENOTDIR' });
  return fs.realpathSync(rootfs);
}

/** Everything create decides before it makes anything. */
interface Prepared {
  dir: ContainerDir;
  bundle: string;
  spec: Spec;
  rootfs: string;
  imageRootfs?: ImageRootfsRecord | undefined;
  facts: HostFacts;
  rootless: boolean;
  placement?: CgroupPlacement | undefined;
  plan: CreatePlan;
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
  const imageRootfs = imageSource ? planImageRootfs(dir.dir, imageSource, !!spec.root?.readonly) : undefined;
  const rootfs = imageRootfs ? imageRootfs.rootfs : resolveRootfs(bundle, spec);
  const facts = hostFacts();
  const rootless = opts.rootless ?? facts.euid !== 0;
  // Where the cgroup will be is known before it is made: its directories are what the cgroup mounts show.
  const placement = opts.cgroupManager === 'disabled' ? undefined : CgroupManager.place(facts.cgroup, {
    cgroupsPath: spec.linux?.cgroupsPath, id: opts.id, systemd: opts.cgroupManager === 'systemd',
    systemdRunning: systemdRunning(), rootless,
  }, spec.annotations ?? undefined);
  const plan = buildPlan(spec, facts, {
    bundle, rootfs, console: !!opts.consoleSocket || wantPty, startFifo: mode === 'fifo', preserveFds: opts.preserveFds ?? 0,
    noPivot: !!opts.noPivot, noNewKeyring: !!opts.noNewKeyring,
    cgroupDirs: placement ? Object.fromEntries(placement.dirs.map(d => [d.mountPoint, d.dir])) : undefined,
  });
  // libseccomp may still refuse a syscall name the plan could not check.
  const seccompProgram = plan.process.seccomp ? compileSeccomp(plan.process.seccomp, f => native().compileSeccomp(f)) : undefined;
  return { dir, bundle, spec, rootfs, imageRootfs, facts, rootless, placement, plan, seccompProgram };
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
    owner: p.facts.euid === 0 ? '' : passwdEntry(p.facts.euid)?.name ?? String(p.facts.euid),
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

/** Creates the container: on return its init waits for start (mode), and the caller holds its lock. */
export function launch(opts: CreateOptions, mode: StartMode, wantPty: boolean): Launched {
  const p = prepare(opts, mode, wantPty);
  const { dir, plan } = p;
  const a = native();
  const undo = new Undo();
  dir.create();
  crashPoint('dir-made');
  const rec = firstRecord(opts, p);
  const undoWarn = (m: string) => opts.warn(`cleanup after a failed create: ${m}`);
  // The record says what has been made, so the undo of a failed create is delete's own teardown.
  undo.push(() => teardown(dir, rec, undoWarn, false));
  try {
    // Saved before anything is mounted or made: a create killed from here on leaves what delete needs.
    dir.save(rec);
    crashPoint('record-saved');
    if (p.imageRootfs) mountImageRootfs(p.imageRootfs, opts.debug ?? (() => {}));
    // Made (and limited) before the init exists; the init joins it before it runs anything of the config.
    const cgroup = p.placement ? CgroupManager.create(p.facts.cgroup, p.placement, p.spec.linux?.resources, p.spec.annotations ?? undefined) : undefined;
    if (cgroup) {
      rec.cgroup = cgroup.record;
      dir.save(rec);
      crashPoint('cgroup-made');
    }

    // The fds the plan refers to: the executor's once it is spawned (handOver), ours until then.
    const handOver: number[] = [];
    const peer: number[] = [];
    undo.push(() => [...handOver.splice(0), ...peer.splice(0)].forEach(fd => a.closeFd(fd)));
    let consoleFd: number | undefined;
    if (opts.consoleSocket) {
      handOver.push(consoleFd = a.connectUnix(path.resolve(opts.consoleSocket)));
    } else if (wantPty && p.spec.process?.terminal) {
      const [ours, theirs] = a.socketPair();
      peer.push(ours);
      handOver.push(consoleFd = theirs);
    }
    const fifo = mode === 'fifo' ? a.makeFifo(dir.fifoPath, 0o622) : undefined;
    if (fifo !== undefined) handOver.push(fifo);
    const userns = makeIdmapNamespaces(plan);
    handOver.push(...userns.made);
    const encoded = encodePlan(plan, {
      // A console socket given for a process without a terminal is connected, as runc does, but not used.
      console: plan.flags & PlanFlag.terminal ? consoleFd : undefined,
      fifo,
      userns: userns.userns,
    }, p.seccompProgram);
    if (rec.sharedMountns && !plan.container.join.some(j => j.type === CLONE.NEWNS)) {
      // What the executor mounts without a mount namespace of its own stays on the host: delete unmounts it.
      rec.rootfsMountedHere = true;
      dir.save(rec);
    }

    const lost = () => new RuntimeError('unable to start container process: container init exited unexpectedly', { op: 'init' });
    const session = Session.spawn(encoded, { handOver, peer, errors: { lost, failed: executorError }, observe: crashPoint }, undo);
    session.untilReady({
      userns: pid => writeIdMaps(pid, plan),
      pid: pid => {
        rec.pid = pid;
        rec.initStartTime = procStat(pid)?.startTime ?? '';
        // From here on the init outlives us (it stops dying with its parent before `ready`): delete needs its pid.
        dir.save(rec);
        crashPoint('pid-saved');
        cgroup?.join(pid);
        const { netDevices, intelRdt } = plan.parent;
        if (netDevices) {
          moveIntoContainer(pid, netDevices, netnsPinPath(dir.dir));
          rec.netDevices = netDevices;
        }
        if (intelRdt) rec.resctrl = joinResctrl(intelRdt, opts.id, pid);
        if (rec.netDevices || rec.resctrl) dir.save(rec);
      },
      prepivot: () => {
        const state = ociState(rec, 'creating');
        if (!plan.parent.prestartAtStart) runHooks('prestart', p.spec.hooks?.prestart, state);
        runHooks('createRuntime', p.spec.hooks?.createRuntime, state);
        runHooks('createContainer', p.spec.hooks?.createContainer, state, rec.pid);
      },
      seccomp: fd => sendSeccompListener(plan.process.seccomp?.listener, rec, fd),
    });
    // The pid file first: the record without `creating` is the last write, so a container shows as created
    // only when everything create promises exists.
    crashPoint('before-pid-file');
    if (opts.pidFile) writeFileAtomic(path.resolve(opts.pidFile), String(rec.pid), 0o644);
    crashPoint('before-state');
    delete rec.creating;
    dir.save(rec);
    crashPoint('state-saved');
    undo.clear();
    return { dir, rec, session };
  } catch (e) {
    undo.run(undoWarn);
    throw e;
  }
}

export function create(opts: CreateOptions): void {
  const { dir, session } = launch(opts, 'fifo', false);
  session.release();
  dir.unlock();
}
