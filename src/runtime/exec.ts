// exec: run one more process in a live container. A smaller plan for the same executor (plan/exec.ts): it
// joins every namespace of the container init through a pidfd, is placed in the container's cgroup before it
// runs anything, and gets the process set-up the init got. In the foreground its exit status is ours.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, fromSystemError } from '../errors.js';
import { S_EXEC_LOOKUP } from '../native-abi/abi.gen.js';
import { native, type ExitStatus, type SyncMessage } from '../native.js';
import { buildExecPlan } from '../plan/exec.js';
import { encodePlan } from '../plan/codec.js';
import { CLONE, NAMESPACE_FILES } from '../plan/linux.js';
import { compileSeccomp } from '../plan/seccomp.js';
import { parseProcess } from '../spec/validate.js';
import type { Linux, Process } from '../spec/types.gen.js';
import { cgroupOf, initPidfd, withContainer, type Locked } from './container.js';
import { hostFacts } from './host.js';
import { Session, Undo, executorError, sendSeccompListener } from './session.js';
import { writeFileAtomic } from './state.js';

/** What the command line may change in the container's process (runc's exec flags). */
export interface ProcessOverrides {
  /** The command: required unless a process document is given. */
  args: string[];
  cwd?: string;
  /** Appended to the container's env. */
  env?: string[];
  tty?: boolean;
  user?: { uid?: number; gid?: number };
  /** Appended to the container's additionalGids. */
  additionalGids?: number[];
  /** Added to the bounding, effective and permitted sets (ambient too when the config has inheritable). */
  caps?: string[];
  noNewPrivs?: boolean;
  apparmor?: string;
  processLabel?: string;
}

export interface ExecOptions {
  root: string;
  id: string;
  /** -p: a process document that replaces the container's process; the overrides are then ignored. */
  processFile?: string;
  overrides: ProcessOverrides;
  detach?: boolean;
  consoleSocket?: string;
  pidFile?: string;
  preserveFds?: number;
  /** --cgroup: [<controller>[,<controller>...]:]<path>, each a sub-cgroup of the container's. */
  cgroups?: string[];
  ignorePaused?: boolean;
}

/** runc's user spec for -u: <uid>[:<gid>], decimal, nothing else (CVE-2026-30892 came from a lax parser). */
export function parseUserSpec(spec: string): { uid?: number; gid?: number } {
  const parts = spec.split(':');
  const num = (text: string, what: 'uid' | 'gid'): number => {
    if (!/^\d+$/.test(text))
      throw new RuntimeError(`parsing ${text} as int for ${what} failed: strconv.Atoi: parsing ${JSON.stringify(text)}: invalid syntax`, {
        op: 'exec',
      });
    const n = Number(text);
    if (n > 2147483647) throw new RuntimeError('uids and gids must be in range 0-2147483647', { op: 'exec' });
    return n;
  };
  if (parts.length > 2)
    throw new RuntimeError(
      `parsing ${parts.slice(1).join(':')} as int for gid failed: strconv.Atoi: parsing ${JSON.stringify(parts.slice(1).join(':'))}: invalid syntax`,
      { op: 'exec' },
    );
  const uid = num(parts[0]!, 'uid');
  return parts.length === 2 ? { uid, gid: num(parts[1]!, 'gid') } : { uid };
}

/** --cgroup arguments -> controller ('' for all) -> sub path, with runc's checks and texts. */
export function parseSubCgroups(args: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const arg of args) {
    const colon = arg.indexOf(':');
    if (colon < 0) {
      if (out.has('')) throw new RuntimeError('invalid --cgroup argument(s): multiple <controller>-less arguments', { op: 'exec' });
      out.set('', arg);
      continue;
    }
    const sub = arg.slice(colon + 1);
    for (const controller of arg.slice(0, colon).split(',')) {
      if (controller === '') throw new RuntimeError(`invalid --cgroup argument: ${arg} (empty <controller> prefix)`, { op: 'exec' });
      if (out.has(controller))
        throw new RuntimeError(`invalid --cgroup argument(s): controller ${controller} specified multiple times`, { op: 'exec' });
      out.set(controller, sub);
    }
  }
  return out;
}

/** The container's process with the command line's changes, as runc's exec makes it. */
export function overrideProcess(base: Process, o: ProcessOverrides): Process {
  const p: Process = structuredClone(base);
  p.args = o.args;
  if (o.cwd) p.cwd = o.cwd;
  if (o.apparmor) p.apparmorProfile = o.apparmor;
  if (o.processLabel) p.selinuxLabel = o.processLabel;
  if (o.caps?.length) {
    const c = (p.capabilities ??= {});
    for (const cap of o.caps) {
      for (const set of ['bounding', 'effective', 'permitted'] as const) c[set] = [...(c[set] ?? []), cap];
      // R8 (CVE-2022-29162): --cap never adds to inheritable; ambient only works with inheritable, so a cap
      // goes there only when the config already uses inheritable capabilities.
      if (c.inheritable) c.ambient = [...(c.ambient ?? []), cap];
    }
  }
  p.env = [...(p.env ?? []), ...(o.env ?? [])];
  p.terminal = !!o.tty;
  if (o.noNewPrivs !== undefined) p.noNewPrivileges = o.noNewPrivs;
  const user = p.user ?? { uid: 0, gid: 0 };
  if (o.user) p.user = { ...user, uid: o.user.uid ?? user.uid, gid: o.user.gid ?? user.gid };
  if (o.additionalGids?.length) p.user = { ...user, ...p.user, additionalGids: [...(user.additionalGids ?? []), ...o.additionalGids] };
  return p;
}

/**
 * A -p process document: validated against the schema; the fields it leaves out that runc takes from the
 * container (capabilities, rlimits, LSM labels, scheduling, affinity, oom score) come from `base`.
 */
export function processFromFile(file: string, base: Process | undefined): Process {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw fromSystemError('open', file, e);
  }
  const p = parseProcess(text, path.basename(file));
  if (!base) return p;
  return {
    ...p,
    capabilities: p.capabilities ?? base.capabilities,
    rlimits: p.rlimits?.length ? p.rlimits : base.rlimits,
    apparmorProfile: p.apparmorProfile || base.apparmorProfile,
    selinuxLabel: p.selinuxLabel || base.selinuxLabel,
    scheduler: p.scheduler ?? base.scheduler,
    ioPriority: p.ioPriority ?? base.ioPriority,
    execCPUAffinity: p.execCPUAffinity ?? base.execCPUAffinity,
    oomScoreAdj: p.oomScoreAdj ?? base.oomScoreAdj,
  };
}

/** CLONE_NEW* of every namespace of `pid` that is not the runtime's own (the ones an exec must join). */
function foreignNamespaces(pid: number): number {
  let flags = 0;
  for (const [file, flag] of NAMESPACE_FILES) {
    let theirs: fs.Stats;
    let ours: fs.Stats;
    try {
      ours = fs.statSync(`/proc/self/ns/${file}`);
    } catch {
      continue; // a kernel without this namespace type
    }
    try {
      theirs = fs.statSync(`/proc/${pid}/ns/${file}`);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') {
        // R5 (CVE-2016-9962): a created container whose init waits in the executor (a container without a
        // /proc of its own) is non-dumpable and of the host's user namespace until start, so only a privileged
        // runtime may look at it or join it.
        throw new RuntimeError('cannot exec in a created container without privileges: its init cannot be joined before start', {
          op: 'exec',
          errno: code,
        });
      }
      throw fromSystemError('stat', `/proc/${pid}/ns/${file}`, e);
    }
    if (theirs.dev !== ours.dev || theirs.ino !== ours.ino) flags |= flag;
  }
  return flags;
}

/** Whether setgroups(2) works in the user namespace of `pid` (a rootless single-id map denies it). */
function setgroupsAllowed(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/setgroups`, 'utf8').trim() !== 'deny';
  } catch {
    return true;
  }
}

/**
 * The executor's error as a RuntimeError. A program that cannot be found or executed gets op "exec-lookup"
 * (errno ENOENT for not found), so the CLI can exit 127 or 126 as shells and engines expect.
 */
function execFailure(m: SyncMessage): RuntimeError {
  const e = executorError(m);
  if (m.step !== S_EXEC_LOOKUP) return e;
  return new RuntimeError(e.message, { op: 'exec-lookup', path: e.path, errno: m.err === -1 ? 'ENOENT' : e.errno });
}

/** The checks runc makes on terminal flags before anything starts. */
function checkTerminal(terminal: boolean, detach: boolean, consoleSocket: string | undefined): void {
  if (detach && terminal && !consoleSocket) {
    throw new RuntimeError('cannot allocate tty if tsrt will detach without setting console socket', { op: 'exec' });
  }
  if ((!detach || !terminal) && consoleSocket) {
    throw new RuntimeError('cannot use console socket if tsrt will not detach or allocate tty', { op: 'exec' });
  }
}

/**
 * Runs a process in the container. Detached: returns once it runs (pid file written), with status 0.
 * Foreground: waits and returns its exit status (128+N after signal N), forwarding signals meanwhile.
 */
export function exec(opts: ExecOptions): ExitStatus {
  // The container's lock is held until the process runs, not while it runs.
  const session = withContainer(opts.root, opts.id, c => startProcess(opts, c));
  if (opts.detach) {
    session.release();
    return { code: 0, signal: 0 };
  }
  return session.waitForeground();
}

/** Everything of exec up to the process running; nothing of a failed one stays behind: no process, no fd. */
function startProcess(opts: ExecOptions, { rec, status }: Locked): Session {
  if (status === 'stopped') throw new RuntimeError('cannot exec in a stopped container', { op: 'exec' });
  // Joining its namespaces would not put a process inside its root, which is a chroot, not a namespace's own.
  if (rec.sharedMountns) throw new RuntimeError('cannot exec in a container without a mount namespace of its own', { op: 'exec' });
  if (status === 'paused' && !opts.ignorePaused) {
    throw new RuntimeError('cannot exec in a paused container (use --ignore-paused to override)', { op: 'exec' });
  }
  const config = rec.exec;
  let proc: Process;
  if (opts.processFile) {
    proc = processFromFile(path.resolve(opts.processFile), config.process);
  } else {
    if (opts.overrides.args.length === 0) throw new RuntimeError('process args cannot be empty', { op: 'exec' });
    if (!config.process)
      throw new RuntimeError('config.json: /process: the container has no process to take defaults from; use -p', { op: 'exec' });
    proc = overrideProcess(config.process, opts.overrides);
  }
  checkTerminal(!!proc.terminal, !!opts.detach, opts.consoleSocket);
  const subCgroups = opts.cgroups?.length ? parseSubCgroups(opts.cgroups) : undefined;
  const cgroup = cgroupOf(rec);
  if (subCgroups && !cgroup) throw new RuntimeError('cannot use --cgroup: the container has no cgroup', { op: 'exec' });

  const a = native();
  const undo = new Undo();
  // The executor's fds once it is spawned; ours (closed by undo) until then.
  const handOver: number[] = [];
  const peer: number[] = [];
  undo.push(() => {
    for (const fd of [...handOver.splice(0), ...peer.splice(0)]) a.closeFd(fd);
  });
  try {
    // Held before the init is looked at: a pid reused meanwhile is refused, not joined.
    const initFd = initPidfd(rec);
    if (initFd < 0) throw new RuntimeError('cannot exec in a stopped container', { op: 'exec' });
    handOver.push(initFd);
    const nsFlags = foreignNamespaces(rec.pid);
    const linux: Linux = { ...config.linux };
    const plan = buildExecPlan(proc, linux, hostFacts(), {
      at: opts.processFile ? { file: path.basename(opts.processFile), pointer: '' } : undefined,
      console: !!proc.terminal,
      preserveFds: opts.preserveFds ?? 0,
      nsFlags,
      setgroups: (nsFlags & CLONE.NEWUSER) === 0 || (config.setgroups ?? setgroupsAllowed(rec.pid)),
      noNewKeyring: config.noNewKeyring,
    });
    const seccompProgram = plan.process.seccomp ? compileSeccomp(plan.process.seccomp, f => a.compileSeccomp(f)) : undefined;
    let consoleFd: number | undefined;
    if (proc.terminal) {
      if (opts.consoleSocket) {
        handOver.push((consoleFd = a.connectUnix(path.resolve(opts.consoleSocket))));
      } else {
        const [ours, theirs] = a.socketPair();
        peer.push(ours);
        handOver.push((consoleFd = theirs));
      }
    }
    const encoded = encodePlan(plan, { console: consoleFd, joinPidfd: initFd }, seccompProgram);
    const lost = () => new RuntimeError('exec: the process exited during set-up', { op: 'exec' });
    const session = Session.spawn(encoded, { handOver, peer, errors: { lost, failed: execFailure } }, undo);

    // A paused container's cgroup would freeze the process mid set-up, with us waiting on it: it joins once
    // set-up is done, and runs when the container is resumed.
    const joinAtReady = status === 'paused';
    const joinCgroup = (pid: number) => {
      if (!cgroup) return;
      if (subCgroups) cgroup.joinSub(pid, subCgroups);
      else cgroup.join(pid);
    };
    session.untilReady({
      pid: pid => {
        if (!joinAtReady) joinCgroup(pid);
      },
      seccomp: fd => sendSeccompListener(plan.process.seccomp?.listener, rec, fd, status),
    });
    if (joinAtReady) joinCgroup(session.pid);
    // Our end of the socket sees EOF when the process execs (close-on-exec); an error means exec failed. In a
    // paused container the process is frozen until resume: the program was already found and checked before
    // MSG_READY, so only the hand-over to the sealed helper is left unconfirmed (its failure is exit status 1).
    session.start(!joinAtReady);
    // A task joining a frozen cgroup leaves it FREEZING until that task is frozen too: wait for it, so the
    // container reads as paused (and `resume` works) the moment we return.
    if (joinAtReady) cgroup?.setFrozen(true);
    if (opts.pidFile) writeFileAtomic(path.resolve(opts.pidFile), String(session.pid), 0o644);
    undo.clear();
    return session;
  } catch (e) {
    undo.run(() => {});
    throw e;
  }
}
