// Instances: background containers running %startscript. `instance start` spawns a monitor (this program
// again, detached, its stdout/stderr going to the instance's log files) that creates the container in a new
// PID namespace, records it under <runtime dir>/instances/<name>.json, waits for it to end and cleans up the
// session. exec/run/shell instance://NAME join the container through the tsrt library's exec.
//
// A record names processes by pid and start time: a pid alone may belong to another process of the user's by
// the time it is read (the instance ended, the pid was reused), so nothing is signalled or joined unless both
// still match. Logs go where Singularity keeps them, ~/.singularity/instances/logs/<host>/<user>/, in a
// directory verified as the user's own and opened without following symlinks.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../native.js';
import { openOwnFile, openPrivateDir, type PrivateDir } from '../private-dir.js';
import { exec as execInContainer, parseSignal, procStat, remove, run as runContainer, state } from '../index.js';
import type { Reporter } from './command.js';
import { actionScript, environmentOverrides, type Action } from './environment.js';
import { hostUser } from './host.js';
import { prepare, removeSession, runtimeDir, stateRoot } from './session.js';
import { PROMPT } from './spec.js';
import { localImage } from './registry/convert.js';
import { parseActionArgs, type ActionOptions } from './options.js';
import { selfArgv } from '../self.js';
import { RuntimeError } from '../errors.js';

export interface InstanceRecord {
  name: string;
  /** The container's init (PID 1 of its namespace) as the host sees it. */
  pid: number;
  /** /proc/<pid>/stat start time of the init, to tell it from a process that reused its pid. */
  pidStartTime: string;
  /** The monitor that owns the container and its session. */
  monitorPid: number;
  monitorStartTime: string;
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
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** ~/.singularity/instances/logs/<host>/<user>, where Singularity's clients look for an instance's logs. */
function logsDir(): PrivateDir {
  const u = hostUser();
  return openPrivateDir(path.join(u.home, '.singularity', 'instances', 'logs', os.hostname(), u.name), {
    what: 'instance log directory',
    create: true,
  });
}

function recordFile(name: string): string {
  return path.join(instancesDir(), `${name}.json`);
}

/** Whether pid is still the process that started at startTime (a pid reused by another process is not). */
function isProcess(pid: number, startTime: string): boolean {
  const st = procStat(pid);
  return !!st && st.startTime === startTime && st.state !== 'Z' && st.state !== 'X';
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isPid = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;

/** A record as the monitor writes it; anything else (a record of an older version, a damaged file) is none. */
function isRecord(r: unknown): r is InstanceRecord {
  const o = r as Record<string, unknown>;
  return (
    !!o &&
    typeof o === 'object' &&
    isPid(o['pid']) &&
    isPid(o['monitorPid']) &&
    isString(o['pidStartTime']) &&
    isString(o['monitorStartTime']) &&
    ['name', 'image', 'id', 'cwd', 'started', 'logOutPath', 'logErrPath'].every(k => isString(o[k]))
  );
}

export function readInstance(name: string): InstanceRecord | undefined {
  try {
    const rec: unknown = JSON.parse(fs.readFileSync(recordFile(name), 'utf8'));
    return isRecord(rec) ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** The instance is still running: its monitor is the very process that wrote the record. */
function running(rec: InstanceRecord): boolean {
  return isProcess(rec.monitorPid, rec.monitorStartTime);
}

/** Every live instance; records whose monitor is gone ("ghosts") or that prove nothing are pruned on the way. */
export function listInstances(): InstanceRecord[] {
  const out: InstanceRecord[] = [];
  for (const file of fs
    .readdirSync(instancesDir())
    .filter(f => f.endsWith('.json'))
    .sort()) {
    const rec = readInstance(file.slice(0, -5));
    if (!rec || !running(rec)) {
      fs.rmSync(path.join(instancesDir(), file), { force: true });
      continue;
    }
    out.push(rec);
  }
  return out;
}

/**
 * `instance start`: returns once the instance runs (0) or its monitor failed (its log explains). `quiet` (-q,
 * before or after `instance start`) leaves out what a docker:// image's conversion says.
 */
export async function startInstance(given: string[], r: Reporter, quiet = false): Promise<number> {
  const { options, rest } = parseActionArgs(given);
  const silent = quiet || options.quiet;
  const [uri, name] = rest;
  if (!uri || !name) throw new RuntimeError('instance start needs an image and an instance name', { op: 'instance start' });
  // A docker:// (or other URI) image is made a cached SIF here; the monitor is given its path.
  const image = await localImage(uri, options.registry, {
    quiet: silent,
    info: m => {
      if (!silent) process.stderr.write(`INFO:    ${m}\n`);
    },
    warn: r.warn,
  });
  const argv = [...given.slice(0, given.length - rest.length), image, ...rest.slice(1)];
  if (!NAME_PATTERN.test(name))
    throw new RuntimeError(`instance name ${JSON.stringify(name)} is not valid: use letters, digits, _ . -`, { op: 'instance start' });
  const existing = readInstance(name);
  if (existing && running(existing)) throw new RuntimeError(`instance ${name} already exists`, { op: 'instance start' });
  const logs = logsDir();
  try {
    return await startMonitor(argv, name, logs, r);
  } finally {
    logs.close();
  }
}

/** Spawns the monitor with its stdout and stderr on the instance's logs; returns once it recorded the instance. */
async function startMonitor(argv: string[], name: string, logs: PrivateDir, r: Reporter): Promise<number> {
  const out = path.join(logs.path, `${name}.out`);
  const err = path.join(logs.path, `${name}.err`);
  const { O_WRONLY, O_CREAT, O_TRUNC } = fs.constants;
  const outFd = openOwnFile(logs, `${name}.out`, O_WRONLY | O_CREAT | O_TRUNC);
  let errFd: number;
  try {
    errFd = openOwnFile(logs, `${name}.err`, O_WRONLY | O_CREAT | O_TRUNC);
  } catch (e) {
    fs.closeSync(outFd);
    fs.rmSync(logs.at(`${name}.out`), { force: true });
    throw e;
  }
  const [cmd, pre] = selfArgv();
  const child = spawn(cmd, [...pre, 'instance', '__monitor', ...argv], { detached: true, stdio: ['ignore', outFd, errFd] });
  fs.closeSync(outFd);
  fs.closeSync(errFd);
  let exited: number | null | undefined;
  child.on('exit', code => {
    exited = code;
  });
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
      const why = (
        fs
          .readFileSync(logs.at(`${name}.err`), 'utf8')
          .trim()
          .split('\n')
          .pop() ?? ''
      ).replace(/^FATAL: +/, '');
      fs.rmSync(logs.at(`${name}.out`), { force: true });
      fs.rmSync(logs.at(`${name}.err`), { force: true });
      throw new RuntimeError(`failed to start instance ${name}: ${why || `monitor exited with ${exited}`}`, { op: 'instance start' });
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
    image,
    action: 'start',
    args,
    options,
    ...r,
    id: `instance-${name}`,
    extraEnv: { SINGULARITY_INSTANCE: name, APPTAINER_INSTANCE: name },
  });
  const root = stateRoot();
  try {
    runContainer({ root, id: session.id, bundle: session.dir, warn: r.warn, detach: true });
    const { pid } = state(root, session.id);
    const logs = logsDir();
    logs.close();
    // The init is our unreaped child here: its pid cannot have been reused yet.
    const rec: InstanceRecord = {
      name,
      pid,
      pidStartTime: procStat(pid)?.startTime ?? '',
      monitorPid: process.pid,
      monitorStartTime: procStat(process.pid)?.startTime ?? '',
      image: session.image.path,
      id: session.id,
      cwd: session.spec.process!.cwd,
      started: new Date().toISOString(),
      logOutPath: path.join(logs.path, `${name}.out`),
      logErrPath: path.join(logs.path, `${name}.err`),
    };
    fs.writeFileSync(recordFile(name), JSON.stringify(rec, null, 2), { mode: 0o600 });
    while (state(root, session.id).status !== 'stopped') await new Promise(res => setTimeout(res, 250));
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
  if (!rec || !running(rec)) throw new RuntimeError(`no instance found with name ${name}`, { op: 'instance' });
  const script = actionScript({
    action,
    overrides: environmentOverrides(process.env, o, r.warn),
    app: o.app,
    libs: o.nv || o.rocm,
    prompt: PROMPT,
    shell: o.shell ?? (process.env['APPTAINER_SHELL'] || process.env['SINGULARITY_SHELL'] || undefined),
  });
  const status = execInContainer({
    root: stateRoot(),
    id: rec.id,
    overrides: {
      args: ['/bin/sh', '-c', script, 'singularity', ...args],
      cwd: o.pwd ?? rec.cwd,
      env: [`SINGULARITY_COMMAND=${action}`, `APPTAINER_COMMAND=${action}`],
    },
  });
  return status.code;
}

/**
 * Signals the instance's init, only while it is provably the process the record names: the pidfd is taken
 * first, then the start time checked, so the signal cannot reach a process that reused the pid in between.
 */
function signalInit(rec: InstanceRecord, sig: number): void {
  const fd = native().pidfdOpen(rec.pid);
  if (fd < 0) return;
  try {
    if (isProcess(rec.pid, rec.pidStartTime)) native().pidfdSignal(fd, sig);
  } finally {
    native().closeFd(fd);
  }
}

/** Sends `signal` to the instance and waits (up to `timeoutSec`) for its monitor to finish; then SIGKILL. */
export async function stopInstance(rec: InstanceRecord, signal: string | number, timeoutSec: number): Promise<void> {
  signalInit(rec, typeof signal === 'number' ? signal : parseSignal(signal));
  const deadline = Date.now() + timeoutSec * 1000;
  while (running(rec) && Date.now() < deadline) await new Promise(res => setTimeout(res, 100));
  if (running(rec)) {
    signalInit(rec, 9);
    while (running(rec)) await new Promise(res => setTimeout(res, 100));
  }
}
