// The plan for `exec`: a smaller plan for the same executor. It makes nothing (no container part): the process
// joins every namespace of the container init through a pidfd, and then gets exactly the process set-up the init got
// (cwd checked inside the root, identity, capabilities, rlimits, no_new_privs, the container's seccomp
// filter, LSM labels, oom score, scheduler, I/O priority, CPU affinity). Pure, like buildPlan.
import * as path from 'node:path';
import { RuntimeError, SpecError, configError } from '../errors.js';
import type { Spec } from '../spec/types.gen.js';
import { checkLsmLabels, planProcess, withinCodecLimits } from './build.js';
import type { HostFacts } from './facts.js';
import { processViolations } from './limits.js';
import { CLONE } from './linux.js';
import { CONFIG_PROCESS, type ProcessSource } from './process.js';
import { PlanFlag, type LaunchPlan } from './types.js';

type Process = NonNullable<Spec['process']>;

export interface ExecPlanOptions {
  /** A terminal's pty master will have somewhere to go (a console socket, or the runtime's own pty proxy). */
  console: boolean;
  preserveFds: number;
  /** CLONE_NEW* of the init's namespaces that are not the runtime's own: the ones to join. */
  nsFlags: number;
  /** Whether setgroups(2) is allowed in the container's user namespace (/proc/<init>/setgroups). */
  setgroups: boolean;
  /** The container was created with --no-new-keyring: exec'd processes keep the caller's keyring too. */
  noNewKeyring: boolean;
  /** Where `proc` came from (an exec -p document, or the container's config), for errors. */
  at?: ProcessSource;
}

/** `proc` is the process to run (from -p, or the container's process with the command-line overrides). */
export function buildExecPlan(proc: Process, linux: NonNullable<Spec['linux']>, facts: HostFacts, opts: ExecPlanOptions): LaunchPlan {
  const at = opts.at ?? CONFIG_PROCESS;
  // runc's validateProcessSpec texts.
  if (!proc.cwd) throw new SpecError('Cwd property must not be empty', `${at.pointer}/cwd`);
  if (!path.posix.isAbsolute(proc.cwd)) throw new SpecError('Cwd must be an absolute path', `${at.pointer}/cwd`);
  if (!proc.args || proc.args.length === 0) throw new SpecError('args must not be empty', `${at.pointer}/args`);
  if (!(opts.nsFlags & CLONE.NEWNS)) throw new RuntimeError('the container has no mount namespace of its own to exec in', { op: 'exec' });
  const over = processViolations(proc, facts.execStack ?? (1n << 64n) - 1n, at.pointer).find(v => v !== undefined);
  if (over) throw configError(over.pointer, over.message, at.file);
  checkLsmLabels(proc, facts, at);
  const processPlan = planProcess(proc, linux, facts, {
    console: opts.console,
    userns: (opts.nsFlags & CLONE.NEWUSER) !== 0,
    preserveFds: opts.preserveFds,
    at,
  });
  let flags = processPlan.flags | PlanFlag.exec;
  if (opts.setgroups) flags |= PlanFlag.setgroups;
  if (!opts.noNewKeyring) flags |= PlanFlag.newKeyring;
  const plan: LaunchPlan = { flags, process: processPlan.process, joinNsFlags: opts.nsFlags };
  withinCodecLimits(plan);
  return plan;
}
