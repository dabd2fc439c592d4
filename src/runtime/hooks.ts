// Running OCI hooks: the state JSON on stdin, the hook's own args and env, and its timeout. prestart,
// createRuntime, poststart and poststop run in the runtime's namespaces; createContainer and startContainer
// inside the container's, joined through the container process. Early hooks fail the operation; poststart
// and poststop failures are the caller's to log as warnings.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { RuntimeError } from '../errors.js';
import { native } from '../native.js';
import { NAMESPACE_FILES } from '../plan/linux.js';
import type { Hook } from '../spec/types.gen.js';

export const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type HookKind = typeof HOOK_KINDS[number];

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
  if (r.signal) return { why: `signal: ${r.signal}`, output };
  if (r.status !== 0) return { why: `exit status ${r.status}`, output };
  return { output };
}

function runJoined(hook: Hook, input: string, pid: number): Outcome {
  const r = native().runJoined({
    pid, nsFlags: namespacesOf(pid), path: hook.path, args: hook.args ?? [hook.path], env: hook.env ?? [],
    input, timeoutMs: hook.timeout ? hook.timeout * 1000 : 0,
  });
  const output = `output: ${r.output.trim()}`;
  if (r.timedOut) return { why: `timeout after ${hook.timeout}s`, output };
  if (r.signal) return { why: `signal: ${r.signal}`, output };
  if (r.code !== 0) return { why: `exit status ${r.code}`, output };
  return { output };
}

/** Runs the hooks in order; `insidePid` runs them in that process's namespaces. Throws on the first failure. */
export function runHooks(kind: HookKind, hooks: Hook[] | undefined, state: object, insidePid?: number): void {
  forEachHook(kind, hooks, state, insidePid, e => {
    throw e;
  });
}

/**
 * poststart and poststop: a failure is a warning, and "the remaining hooks and lifecycle continue as if the hook
 * had succeeded" (runtime.md).
 */
export function runHooksWarning(kind: HookKind, hooks: Hook[] | undefined, state: object, warn: (m: string) => void): void {
  forEachHook(kind, hooks, state, undefined, e => warn(e.message));
}

function forEachHook(kind: HookKind, hooks: Hook[] | undefined, state: object, insidePid: number | undefined,
  failed: (e: RuntimeError) => void): void {
  if (!hooks?.length) return;
  const input = JSON.stringify(state);
  hooks.forEach((hook, i) => {
    const r = insidePid === undefined ? runHere(hook, input) : runJoined(hook, input, insidePid);
    if (r.why) failed(new RuntimeError(`error running ${kind} hook #${i}: ${r.why}, ${r.output}`, { op: kind, path: hook.path }));
  });
}
