// Instances: background containers running %startscript. `instance start` spawns a monitor (this program
// again, detached, its stdout/stderr going to the instance's log files) that creates the container in a new
// PID namespace, records it under <runtime dir>/instances/<name>.json, waits for it to end and cleans up the
// session. exec/run/shell instance://NAME join the container through the tsrt library's exec.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exec as execInContainer } from '../runtime/exec.js';
import { remove, run as runContainer, state } from '../runtime/container.js';
import type { Reporter } from './command.js';
import { actionScript, environmentOverrides, type Action } from './environment.js';
import { PROMPT, prepare, removeSession, runtimeDir, stateRoot } from './launch.js';
import { localImage } from './registry/convert.js';
import { parseActionArgs, type ActionOptions } from './options.js';

export interface InstanceRecord {
  name: string;
  /** The container's init (PID 1 of its namespace) as the host sees it. */
  pid: number;
  /** The monitor that owns the container and its session. */
  monitorPid: number;
  image: string;
  id: string;
  cwd: string;
  started: string;
  logOutPath: string;
  logErrPath: string;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function instancesDir(): string {
  const dir = path.join(runtimeDir(), 'instances');
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true, mode: 0o700 });
  return dir;
}

function recordFile(name: string): string {
  return path.join(instancesDir(), `${name}.json`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readInstance(name: string): InstanceRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(recordFile(name), 'utf8')) as InstanceRecord;
  } catch {
    return undefined;
  }
}

/** Every live instance; records whose monitor is gone ("ghosts") are pruned on the way. */
export function listInstances(): InstanceRecord[] {
  const out: InstanceRecord[] = [];
  for (const file of fs.readdirSync(instancesDir()).filter(f => f.endsWith('.json')).sort()) {
    const rec = readInstance(file.slice(0, -5));
    if (!rec) continue;
    if (!alive(rec.monitorPid)) {
      fs.rmSync(path.join(instancesDir(), file), { force: true });
      continue;
    }
    out.push(rec);
  }
  return out;
}

/** argv for running this program again (a compiled single executable, or node/bun with a script). */
function selfArgv(): [string, string[]] {
  const script = process.argv[1];
  if (script && /\.(m?js|ts)$/.test(script)) return [process.execPath, [script]];
  return [process.execPath, []];
}

/** `instance start`: returns once the instance runs (0) or its monitor failed (its log explains). */
export async function startInstance(given: string[], r: Reporter): Promise<number> {
  const { options, rest } = parseActionArgs(given);
  const [uri, name] = rest;
  if (!uri || !name) throw new Error('instance start needs an image and an instance name');
  // A docker:// (or other URI) image is made a cached SIF here; the monitor is given its path.
  const image = await localImage(uri, options.registry, { quiet: false, info: m => process.stderr.write(`INFO:    ${m}\n`), warn: r.warn });
  const argv = [...given.slice(0, given.length - rest.length), image, ...rest.slice(1)];
  if (!NAME_PATTERN.test(name)) throw new Error(`instance name ${JSON.stringify(name)} is not valid: use letters, digits, _ . -`);
  const existing = readInstance(name);
  if (existing && alive(existing.monitorPid)) throw new Error(`instance ${name} already exists`);
  const logs = path.join(instancesDir(), 'logs');
  const out = path.join(logs, `${name}.out`);
  const err = path.join(logs, `${name}.err`);
  const outFd = fs.openSync(out, 'w', 0o600);
  const errFd = fs.openSync(err, 'w', 0o600);
  const [cmd, pre] = selfArgv();
  const child = spawn(cmd, [...pre, 'instance', '__monitor', ...argv], { detached: true, stdio: ['ignore', outFd, errFd] });
  fs.closeSync(outFd);
  fs.closeSync(errFd);
  let exited: number | null | undefined;
  child.on('exit', code => { exited = code; });
  child.unref();
  for (;;) {
    const rec = readInstance(name);
    if (rec && rec.monitorPid === child.pid) {
      r.info(`instance ${name} logs to ${out} and ${err}`);
      return 0;
    }
    if (exited !== undefined) {
      // The monitor's last line is its own FATAL message: shown once, and the logs of an instance that never
      // ran are not left behind.
      const why = (fs.readFileSync(err, 'utf8').trim().split('\n').pop() ?? '').replace(/^FATAL: +/, '');
      fs.rmSync(out, { force: true });
      fs.rmSync(err, { force: true });
      throw new Error(`failed to start instance ${name}: ${why || `monitor exited with ${exited}`}`);
    }
    await new Promise(res => setTimeout(res, 100));
  }
}

/** The detached monitor of one instance (the hidden `instance __monitor` command). */
export async function monitorInstance(argv: string[], r: Reporter): Promise<number> {
  const { options, rest } = parseActionArgs(argv);
  const [image, name, ...args] = rest as [string, string, ...string[]];
  // Instances always have their own PID namespace: PID 1 reaps and `instance stop` signals it.
  options.pid = true;
  const session = prepare({
    image, action: 'start', args, options, ...r, id: `instance-${name}`,
    extraEnv: { SINGULARITY_INSTANCE: name, APPTAINER_INSTANCE: name },
  });
  const root = stateRoot();
  try {
    runContainer({ root, id: session.id, bundle: session.dir, warn: r.warn, detach: true });
    const pid = Number(state(root, session.id)['pid']);
    const rec: InstanceRecord = {
      name, pid, monitorPid: process.pid, image: session.image.path, id: session.id, cwd: session.spec.process!.cwd,
      started: new Date().toISOString(),
      logOutPath: path.join(instancesDir(), 'logs', `${name}.out`), logErrPath: path.join(instancesDir(), 'logs', `${name}.err`),
    };
    fs.writeFileSync(recordFile(name), JSON.stringify(rec, null, 2), { mode: 0o600 });
    while (state(root, session.id)['status'] !== 'stopped') await new Promise(res => setTimeout(res, 250));
    return 0;
  } finally {
    try {
      remove(root, session.id, true, r.warn);
    } catch (e) {
      r.warn(`could not remove container ${session.id}: ${(e as Error).message}`);
    }
    const rec = readInstance(name);
    if (rec?.monitorPid === process.pid) fs.rmSync(recordFile(name), { force: true });
    removeSession(session);
  }
}

/** exec/run/shell instance://NAME: a new process in the instance's namespaces, with the same preparation. */
export function joinInstance(name: string, action: Exclude<Action, 'start'>, args: string[], o: ActionOptions, r: Reporter): number {
  const rec = readInstance(name);
  if (!rec || !alive(rec.monitorPid)) throw new Error(`no instance found with name ${name}`);
  const script = actionScript({
    action, overrides: environmentOverrides(process.env, o, r.warn), app: o.app, libs: o.nv || o.rocm, prompt: PROMPT,
    shell: o.shell ?? (process.env['APPTAINER_SHELL'] || process.env['SINGULARITY_SHELL'] || undefined),
  });
  const status = execInContainer({
    root: stateRoot(), id: rec.id,
    overrides: { args: ['/bin/sh', '-c', script, 'singularity', ...args], cwd: o.pwd ?? rec.cwd, env: [`SINGULARITY_COMMAND=${action}`, `APPTAINER_COMMAND=${action}`] },
  });
  return status.code;
}

/** Sends `signal` to the instance and waits (up to `timeoutSec`) for its monitor to finish; then SIGKILL. */
export async function stopInstance(rec: InstanceRecord, signal: string | number, timeoutSec: number): Promise<void> {
  try {
    process.kill(rec.pid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
  const deadline = Date.now() + timeoutSec * 1000;
  while (alive(rec.monitorPid) && Date.now() < deadline) await new Promise(res => setTimeout(res, 100));
  if (alive(rec.monitorPid)) {
    try {
      process.kill(rec.pid, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
    while (alive(rec.monitorPid)) await new Promise(res => setTimeout(res, 100));
  }
}
