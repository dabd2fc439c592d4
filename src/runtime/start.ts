// start: the hooks between start and the user's program, then the init's exec.fifo opened, which lets it
// exec; poststart hooks follow once the program runs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError } from '../errors.js';
import { TSRT_TEXT_START_ALREADY, TSRT_TEXT_START_STOPPED } from '../native-abi/abi.gen.js';
import { fill } from '../native-abi/text.js';
import { native } from '../native.js';
import { initPidfd, withContainer } from './container.js';
import { FILTER_FLAG, compileSeccomp, planSeccomp } from '../plan/seccomp.js';
import { runHooks, runHooksWarning, type InContainer } from './hooks.js';
import { ociState, type ContainerDir, type ContainerRecord } from './state.js';
import { destroy, killAndWait } from './teardown.js';

/**
 * The hooks between `start` and the user program: prestart (for pre-1.0.2 configs), then startContainer
 * inside the container. On failure the container is stopped and destroyed, as the spec's lifecycle says.
 */
export function runStartHooks(dir: ContainerDir, rec: ContainerRecord, warn: (m: string) => void, debug?: (m: string) => void): void {
  try {
    const state = ociState(rec, 'created');
    if (rec.prestartAtStart) runHooks('prestart', rec.hooks?.prestart, state, { debug });
    if (rec.hooks?.startContainer?.length) {
      runHooks('startContainer', rec.hooks.startContainer, state, { inside: startContainerPlace(rec), debug });
    }
  } catch (e) {
    killAndWait(rec);
    destroy(dir, rec, warn);
    throw e;
  }
}

/**
 * Where runc runs startContainer hooks: from its init, after the seccomp filter is loaded, in the process's
 * working directory. So here: the container's namespaces, that directory, and the same filter (compiled from
 * the profile create recorded; a notification could not be answered, so notifying rules fail with ENOSYS).
 */
function startContainerPlace(rec: ContainerRecord): InContainer {
  const cwd = rec.exec.process?.cwd ?? '/';
  // Without a mount namespace of its own the init only chroot()ed: joining leaves the hook at the host's /.
  const place: InContainer = { pid: rec.pid, cwd: rec.sharedMountns ? path.join(rec.rootfs, cwd) : cwd };
  const profile = rec.exec.linux.seccomp;
  if (profile) {
    const plan = planSeccomp(profile);
    place.seccomp = {
      seccomp: Buffer.from(compileSeccomp(plan, f => native().compileSeccomp(f))),
      seccompFlags: plan.flags & ~(FILTER_FLAG.NEW_LISTENER | FILTER_FLAG.WAIT_KILLABLE_RECV),
      noNewPrivs: !!rec.exec.process?.noNewPrivileges,
    };
  }
  return place;
}

/**
 * Waits (briefly) until the user's program has replaced the executor and the sealed helper in `pid`: poststart
 * hooks run "after the user-specified process is executed" (config.md), and the exec fifo and the sync socket
 * only say that the last step before exec began. Until then /proc/<pid>/exe is a memfd: the sealed executor,
 * then the sealed helper (or unreadable to an unprivileged runtime, while the init is not dumpable).
 */
export function waitForUserExec(pid: number): void {
  const self = fs.readlinkSync('/proc/self/exe');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 2000; i++) {
    let exe = '';
    try {
      exe = fs.readlinkSync(`/proc/${pid}/exe`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // already gone
    }
    if (exe && exe !== self && !exe.startsWith('/memfd:')) return;
    Atomics.wait(pause, 0, 0, 1);
  }
}

export function start(root: string, id: string, warn: (m: string) => void, debug?: (m: string) => void): void {
  withContainer(root, id, ({ dir, rec, status }) => {
    if (status === 'stopped') throw new RuntimeError(TSRT_TEXT_START_STOPPED, { op: 'start' });
    if (status !== 'created') throw new RuntimeError(fill(TSRT_TEXT_START_ALREADY, status), { op: 'start' });
    runStartHooks(dir, rec, warn, debug);
    const pidfd = initPidfd(rec);
    if (pidfd < 0) throw new RuntimeError(TSRT_TEXT_START_STOPPED, { op: 'start' });
    const result = native().startFifo(dir.fifoPath, pidfd);
    native().closeFd(pidfd);
    if (result !== 'ok') throw new RuntimeError(TSRT_TEXT_START_STOPPED, { op: 'start' });
    fs.rmSync(dir.fifoPath, { force: true });
    if (rec.hooks?.poststart?.length) waitForUserExec(rec.pid);
    runHooksWarning('poststart', rec.hooks?.poststart, ociState(rec, 'running'), warn);
  });
}
