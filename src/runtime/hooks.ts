// Running OCI hooks: the state JSON on stdin, the hook's own args and env, and its timeout. prestart,
// createRuntime, poststart and poststop run in the runtime's namespaces; createContainer and startContainer
// inside the container's, joined through the container process, in a working directory of the container's
// (as runc), and startContainer under the container's seccomp filter (runc runs it from its init, after the
// filter is loaded). Early hooks fail the operation; poststart and poststop failures are the caller's to log
// as warnings.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { RuntimeError } from '../errors.js';
import { native, type SeccompForHook } from '../native.js';
import { NAMESPACE_FILES } from '../plan/linux.js';
import type { Hook } from '../spec/types.gen.js';
import { signalText } from './signals.js';

export const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type HookKind = (typeof HOOK_KINDS)[number];

function envObject(env: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env ?? []) {
    const i = entry.indexOf('=');
    if (i > 0) out[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return out;
}

/** The namespaces in which `pid` differs from us: joining one we are already in is an error for some types. */
export function namespacesOf(pid: number): number {
  let flags = 0;
  for (const [name, flag] of NAMESPACE_FILES) {
    let theirs: string;
    try {
      theirs = fs.readlinkSync(`/proc/${pid}/ns/${name}`);
    } catch {
      continue;
    }
    let ours = '';
    try {
      ours = fs.readlinkSync(`/proc/self/ns/${name}`);
    } catch {
      /* a namespace type this kernel lacks for us cannot differ */
    }
    if (theirs !== ours) flags |= flag;
  }
  return flags;
}

interface Outcome {
  why?: string;
  output: string;
}

function runHere(hook: Hook, input: string): Outcome {
  const args = hook.args ?? [hook.path];
  const r = spawnSync(hook.path, args.slice(1), {
    argv0: args[0] ?? hook.path,
    env: envObject(hook.env),
    input,
    timeout: hook.timeout ? hook.timeout * 1000 : undefined,
    killSignal: 'SIGKILL',
    stdio: ['pipe', 'pipe', 'pipe'],
    maxBuffer: 1 << 20,
  });
  const output = `stdout: ${r.stdout?.toString().trim() ?? ''}, stderr: ${r.stderr?.toString().trim() ?? ''}`;
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return { why: code === 'ETIMEDOUT' ? `timeout after ${hook.timeout}s` : r.error.message, output };
  }
  if (r.signal) return { why: `signal: ${signalText(r.signal)}`, output };
  if (r.status !== 0) return { why: `exit status ${r.status}`, output };
  return { output };
}

/** Where a hook runs "in the container". */
export interface InContainer {
  /** The container process whose namespaces the hook joins. */
  pid: number;
  /** The hook's working directory, as a path in those namespaces. */
  cwd: string;
  /** The container's filter, loaded right before the hook's execve. */
  seccomp?: SeccompForHook;
}

function runJoined(hook: Hook, input: string, inside: InContainer): Outcome {
  const r = native().runJoined({
    pid: inside.pid,
    nsFlags: namespacesOf(inside.pid),
    path: hook.path,
    args: hook.args ?? [hook.path],
    env: hook.env ?? [],
    input,
    timeoutMs: hook.timeout ? hook.timeout * 1000 : 0,
    cwd: inside.cwd,
    ...inside.seccomp,
  });
  const output = `output: ${r.output.trim()}`;
  if (r.timedOut) return { why: `timeout after ${hook.timeout}s`, output };
  if (r.signal) return { why: `signal: ${signalText(r.signal)}`, output };
  if (r.code !== 0) return { why: `exit status ${r.code}`, output };
  return { output };
}

export interface HookOptions {
  /** Run them in the container (createContainer, startContainer); otherwise in the runtime's namespaces. */
  inside?: InContainer;
  debug?: (msg: string) => void;
}

/** Runs the hooks in order. Throws on the first failure. */
export function runHooks(kind: HookKind, hooks: Hook[] | undefined, state: object, opts: HookOptions = {}): void {
  forEachHook(kind, hooks, state, opts, e => {
    throw e;
  });
}

/**
 * poststart and poststop: a failure is a warning, and "the remaining hooks and lifecycle continue as if the hook
 * had succeeded" (runtime.md).
 */
export function runHooksWarning(
  kind: HookKind,
  hooks: Hook[] | undefined,
  state: object,
  warn: (m: string) => void,
  debug?: (msg: string) => void,
): void {
  forEachHook(kind, hooks, state, { debug }, e => warn(e.message));
}

function forEachHook(kind: HookKind, hooks: Hook[] | undefined, state: object, opts: HookOptions, failed: (e: RuntimeError) => void): void {
  if (!hooks?.length) return;
  const input = JSON.stringify(state);
  hooks.forEach((hook, i) => {
    opts.debug?.(
      `hook: ${kind} #${i}: ${JSON.stringify([hook.path, ...(hook.args ?? []).slice(1)])}${
        opts.inside
          ? ` in the namespaces of pid ${opts.inside.pid}, cwd ${opts.inside.cwd}${opts.inside.seccomp ? ", under the container's seccomp filter" : ''}`
          : ''
      }`,
    );
    const r = opts.inside === undefined ? runHere(hook, input) : runJoined(hook, input, opts.inside);
    if (r.why) failed(new RuntimeError(`error running ${kind} hook #${i}: ${r.why}, ${r.output}`, { op: kind, path: hook.path }));
  });
}
