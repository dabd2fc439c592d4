// Running OCI hooks in the runtime's namespaces: the state JSON on stdin, the hook's own args and env, and
// its timeout. Early hooks (prestart, createRuntime) fail the operation; poststart and poststop failures
// are the caller's to log as warnings.
import { spawnSync } from 'node:child_process';
import { RuntimeError } from '../errors.js';
import type { Hook } from '../spec/types.gen.js';

export type HookKind = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';

function envObject(env: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env ?? []) {
    const i = entry.indexOf('=');
    if (i > 0) out[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return out;
}

export function runHooks(kind: HookKind, hooks: Hook[] | undefined, state: object): void {
  (hooks ?? []).forEach((hook, i) => {
    const args = hook.args ?? [hook.path];
    const r = spawnSync(hook.path, args.slice(1), {
      argv0: args[0] ?? hook.path,
      env: envObject(hook.env),
      input: JSON.stringify(state),
      timeout: hook.timeout ? hook.timeout * 1000 : undefined,
      killSignal: 'SIGKILL',
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 1 << 20,
    });
    const out = `stdout: ${r.stdout?.toString().trim() ?? ''}, stderr: ${r.stderr?.toString().trim() ?? ''}`;
    let why: string | undefined;
    if (r.error) {
      const code = (r.error as NodeJS.ErrnoException).code;
      why = code === 'ETIMEDOUT' ? `timeout after ${hook.timeout}s` : r.error.message;
    } else if (r.signal) {
      why = `signal: ${r.signal}`;
    } else if (r.status !== 0) {
      why = `exit status ${r.status}`;
    }
    if (why) throw new RuntimeError(`error running ${kind} hook #${i}: ${why}, ${out}`, { op: kind, path: hook.path });
  });
}
