// The plan for `exec`: a smaller plan for the same executor. It makes nothing: the process joins every
// namespace of the container init through a pidfd, and then gets exactly the process set-up the init got
// (cwd checked inside the root, identity, capabilities, rlimits, no_new_privs, the container's seccomp
// filter, LSM labels, oom score, scheduler, I/O priority, CPU affinity). Pure, like buildPlan.
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import type { Spec } from '../spec/types.gen.js';
import { checkLsmLabels, planProcess, withinCodecLimits } from './build.js';
import type { HostFacts } from './facts.js';
import { processViolations } from './limits.js';
import { CLONE } from './linux.js';
import { planSeccomp } from './seccomp.js';
import { PlanFlag, type LaunchPlan } from './types.js';

type Process = NonNullable<Spec['process']>;

export interface ExecPlanOptions {
  /** Where the pty master goes (-1: no terminal). */
  consoleSocket: number;
  preserveFds: number;
  /** A pidfd of the container init. */
  initPidfd: number;
  /** CLONE_NEW* of the init's namespaces that are not the runtime's own: the ones to join. */
  nsFlags: number;
  /** Whether setgroups(2) is allowed in the container's user namespace (/proc/<init>/setgroups). */
  setgroups: boolean;
  /** The container was created with --no-new-keyring: exec'd processes keep the caller's keyring too. */
  noNewKeyring: boolean;
}

function bad(message: string): never {
  throw new RuntimeError(message, { op: 'exec' });
}

/** `proc` is the process to run (from -p, or the container's process with the command-line overrides). */
export function buildExecPlan(proc: Process, linux: NonNullable<Spec['linux']>, facts: HostFacts, opts: ExecPlanOptions): LaunchPlan {
  // runc's validateProcessSpec texts.
  if (!proc.cwd) bad('Cwd property must not be empty');
  if (!path.posix.isAbsolute(proc.cwd)) bad('Cwd must be an absolute path');
  if (!proc.args || proc.args.length === 0) bad('args must not be empty');
  if (!(opts.nsFlags & CLONE.NEWNS)) bad('the container has no mount namespace of its own to exec in');
  const over = processViolations(proc, facts.execStack ?? (1n << 64n) - 1n, '/process').find(v => v !== undefined);
  if (over) bad(`${over.pointer}: ${over.message}`);
  checkLsmLabels(proc, facts);
  const processPlan = planProcess(proc, linux, facts, {
    consoleSocket: opts.consoleSocket,
    userns: (opts.nsFlags & CLONE.NEWUSER) !== 0,
  });
  let flags = processPlan.flags | PlanFlag.exec;
  if (opts.setgroups) flags |= PlanFlag.setgroups;
  if (!opts.noNewKeyring) flags |= PlanFlag.newKeyring;
  const plan: LaunchPlan = {
    ...processPlan,
    flags,
    unshareFlags: 0,
    join: [],
    timeOffsets: { monotonic: [0n, 0], boottime: [0n, 0] },
    // After the join the process's root is the container's: paths are checked against "/".
    rootfs: '/',
    rootPropagation: 0,
    rootfsPropagation: 0,
    steps: [],
    maskedPaths: [],
    readonlyPaths: [],
    sysctl: [],
    fifoFd: -1,
    preserveFds: opts.preserveFds,
    // As runc: an exec'd process is held to the container's seccomp profile, whatever -p says.
    seccomp: linux.seccomp ? planSeccomp(linux.seccomp) : undefined,
    uidMappings: [],
    gidMappings: [],
    idMapsDirect: { uid: true, gid: true },
    joinPidfd: opts.initPidfd,
    joinNsFlags: opts.nsFlags,
  };
  withinCodecLimits(plan);
  return plan;
}
